/*
 * regret.c — reproduces the simulations of Chapelle & Li 2011, "An Empirical Evaluation of
 * Thompson Sampling", with the policy code the router uses (policies/thompson.c).
 *
 * Figure 1: Bernoulli arms, the best at 0.5 and the other K-1 at 0.5 - eps, K in {10, 100},
 * eps in {0.02, 0.1}; the posterior is updated every 100 steps (--batch). Mean regret at
 * T = 1e4, 1e5, 1e6 (1e7 with --horizon 10000000), the Lai–Robbins constant
 * C = sum (p* - p_i) / KL(p_i || p*) and the slope of regret over ln T between 1e5 and 1e6,
 * which an asymptotically optimal policy brings down to C. UCB1 and eps_t-greedy (Auer et
 * al. 2002: eps_t = min(1, c K / (d^2 t)), c = --egreedy-c, default 1, d = the gap eps) run
 * on the same instances (same best-arm position, same per-arm reward streams).
 *
 * Table 1: 10 arms with rates drawn from Beta(4, 4); each step, with probability 1e-3, one
 * arm is retired and replaced by a fresh one (the policy is told: that arm's counts restart);
 * feedback reaches the policy in batches every delta in {1, 3, 10, 32, 100, 316, 1000} steps;
 * T = 1e6. Thompson sampling, the paper's UCB (its variance-aware bound with delta =
 * 1/sqrt(t)) and UCB1 see the same arms and the same replacements. Thompson sampling's prior
 * here is Beta(4, 4), the distribution new arms are drawn from (--table1-prior 1,1 for the
 * uninformative one); in Figure 1 it is Beta(1, 1).
 *
 * Regret is pseudo-regret, sum over steps of (best rate now - rate of the chosen arm), the
 * quantity the paper plots. Randomness: our xoshiro256** (policies/rng.h) everywhere; GSL's
 * samplers (gsl_ran_beta inside the policy, Beta(4,4) arms here) draw from it through
 * sy_gsl_rng_bind. Every (setting, repetition) has its own seeds derived from --seed, so the
 * figures do not depend on --jobs. Repetitions run in --jobs forked processes (default 2).
 *
 * Output: `name=value` lines; the last line is
 * `ts_regret_k10_e0.1_1e6=R slope_ratio_to_C=S`.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gsl/gsl_randist.h>

#include "policies/policy.h"
#include "policies/rng.h"
#include "policies/thompson.h"

#define MAX_CHECKS 8
#define MAX_JOBS 64
#define MAX_K 100

typedef enum { ALG_TS, ALG_UCB1, ALG_EGREEDY, ALG_UCB_CL, NALGS } alg_t;
static const char *const ALG_NAME[NALGS] = {"ts", "ucb1", "egreedy", "ucb"};
#define NFIG1_ALGS 3 /* Figure 1: TS, UCB1, eps_t-greedy */

typedef struct fig1_inst_s {
  const char *name;
  size_t k;
  double eps;
} fig1_inst_t;

static const fig1_inst_t FIG1[] = {{"k10_e0.1", 10, 0.1},
                                   {"k10_e0.02", 10, 0.02},
                                   {"k100_e0.1", 100, 0.1},
                                   {"k100_e0.02", 100, 0.02}};
#define NFIG1 (sizeof FIG1 / sizeof FIG1[0])

static const long DELTAS[] = {1, 3, 10, 32, 100, 316, 1000};
static const double PUBLISHED_TS[] = {9105, 9199, 9049, 9451, 11550, 21594, 59256};
static const double PUBLISHED_UCB[] = {24145, 24695, 25662, 28148, 37141, 77687, 226220};
#define NDELTAS (sizeof DELTAS / sizeof DELTAS[0])

typedef struct opts_s {
  int reps;
  long horizon;       /* Figure 1 */
  long table_horizon; /* Table 1 */
  long batch;         /* Figure 1 update period */
  uint64_t seed;
  int jobs;
  double egreedy_c;
  sy_beta_post_t table1_prior; /* TS prior in Table 1 */
  int fig1[NFIG1];             /* which instances run */
  int table1;
  int choose;
} opts_t;

/* ---- seeds ---- */

/* A well-mixed 64-bit value from a seed and up to four small labels. */
static uint64_t derive(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  sy_rng_t r;
  sy_rng_seed(&r, seed ^ (a * UINT64_C(0x9e3779b97f4a7c15)));
  uint64_t x = sy_rng_next(&r) ^ (b << 48) ^ (c << 20) ^ d;
  sy_rng_seed(&r, x);
  return sy_rng_next(&r);
}

/* ---- agents: one interface over TS (the real policy), UCB1 and eps_t-greedy ---- */

typedef struct agent_s {
  alg_t alg;
  size_t k;
  sy_policy_t *ts;
  sy_arm_stats_t tot[MAX_K]; /* what the agent has been told */
  size_t best;               /* greedy: the arm with the best mean in `tot` */
  size_t zero[MAX_K];        /* arms with no observation yet: tried first */
  size_t nzero;
  double egreedy_scale; /* c K / d^2 */
} agent_t;

/* Recomputes what depends on the totals alone: untried arms, the greedy arm, the policy. */
static void agent_refresh(agent_t *a) {
  double best_v = -INFINITY;
  a->nzero = 0;
  for (size_t i = 0; i < a->k; i++) {
    if (a->tot[i].n == 0) {
      a->zero[a->nzero++] = i;
      continue;
    }
    double v = a->tot[i].sum / a->tot[i].n;
    if (v > best_v) {
      best_v = v;
      a->best = i;
    }
  }
  if (a->alg == ALG_TS && sy_policy_update(a->ts, a->tot) != 0) {
    fprintf(stderr, "regret: policy rejected the totals\n");
    exit(1);
  }
}

static void agent_init(agent_t *a, alg_t alg, size_t k, double egreedy_scale,
                       sy_beta_post_t prior) {
  memset(a, 0, sizeof *a);
  a->alg = alg;
  a->k = k;
  a->egreedy_scale = egreedy_scale;
  if (alg == ALG_TS) {
    sy_ts_conf_t c;
    sy_ts_conf_default(&c, SY_OUTCOME_BINARY);
    c.beta_prior = prior;
    c.propensity_draws = 0; /* simulations never log propensities */
    a->ts = sy_policy_thompson_new(&c, k);
    if (a->ts == NULL) {
      fprintf(stderr, "regret: cannot create the policy\n");
      exit(1);
    }
  }
  agent_refresh(a);
}

static size_t uniform_index(sy_rng_t *rng, size_t n) {
  return (size_t)(sy_rng_uniform(rng) * (double)n);
}

/*
 * The arm with the largest upper confidence bound, every arm tried; t is the number of
 * observations delivered about the current arms (with replacements, a new arm's clock
 * matters, not the simulation's). UCB1 (Auer et al. 2002): mean + sqrt(2 ln t / n). The
 * bound of Chapelle & Li's UCB column, delta = 1/sqrt(t), L = ln(1/delta):
 * mean + sqrt(2 mean L / n) + 2 L / n.
 */
static size_t ucb_choose(const agent_t *a) {
  double t = 0, best_v = -INFINITY;
  for (size_t i = 0; i < a->k; i++)
    t += a->tot[i].n;
  double lt = log(t);
  size_t best = 0;
  for (size_t i = 0; i < a->k; i++) {
    double n = a->tot[i].n, mean = a->tot[i].sum / n, v;
    if (a->alg == ALG_UCB1)
      v = mean + sqrt(2 * lt / n);
    else
      v = mean + sqrt(mean * lt / n) + lt / n; /* L = lt / 2 */
    if (v > best_v) {
      best_v = v;
      best = i;
    }
  }
  return best;
}

/* The arm for step t (1-based). Untried arms go first (UCB, greedy), in random order. */
static size_t agent_choose(const agent_t *a, sy_rng_t *rng, long t) {
  if (a->alg == ALG_TS)
    return sy_policy_choose(a->ts, NULL, rng).arm;
  if (a->alg == ALG_EGREEDY) {
    double eps = fmin(1.0, a->egreedy_scale / (double)t);
    if (sy_rng_uniform(rng) < eps)
      return uniform_index(rng, a->k);
  }
  if (a->nzero > 0)
    return a->zero[uniform_index(rng, a->nzero)];
  return a->alg == ALG_EGREEDY ? a->best : ucb_choose(a);
}

/* Delivers a batch of feedback: adds `pending` to the totals and clears it. */
static void agent_deliver(agent_t *a, sy_arm_stats_t *pending) {
  for (size_t i = 0; i < a->k; i++) {
    a->tot[i].n += pending[i].n;
    a->tot[i].sum += pending[i].sum;
    pending[i] = (sy_arm_stats_t){0, 0, 0};
  }
  agent_refresh(a);
}

/* Arm i was replaced by a new one: its counts restart from the prior. */
static void agent_reset_arm(agent_t *a, size_t i) {
  a->tot[i] = (sy_arm_stats_t){0, 0, 0};
  agent_refresh(a);
}

static void agent_free(agent_t *a) {
  sy_policy_destroy(a->ts);
}

/* ---- Figure 1 ---- */

/* Checkpoints: 1e4, 1e5, ... up to horizon, and horizon itself. */
static int checkpoints(long horizon, long *out) {
  int n = 0;
  for (long c = 10000; c <= horizon && n < MAX_CHECKS - 1; c *= 10)
    out[n++] = c;
  if (n == 0 || out[n - 1] != horizon)
    out[n++] = horizon;
  return n;
}

static double kl_bern(double p, double q) {
  return p * log(p / q) + (1 - p) * log((1 - p) / (1 - q));
}

/* C = sum over suboptimal arms of (p* - p_i) / KL(p_i || p*). */
static double lai_robbins(const fig1_inst_t *in) {
  return (double)(in->k - 1) * in->eps / kl_bern(0.5 - in->eps, 0.5);
}

/* One repetition of one Figure 1 instance: regret at each checkpoint into out. */
static void fig1_run(const opts_t *o, const fig1_inst_t *in, size_t inst, alg_t alg, int rep,
                     double *out) {
  sy_rng_t stream[MAX_K]; /* per-arm reward streams, the same for every algorithm */
  sy_rng_t env, rng;
  sy_rng_seed(&env, derive(o->seed, 1, inst, (uint64_t)rep, 0));
  sy_rng_seed(&rng, derive(o->seed, 2, inst, (uint64_t)rep, alg));
  double p[MAX_K];
  size_t best = uniform_index(&env, in->k);
  for (size_t i = 0; i < in->k; i++) {
    p[i] = i == best ? 0.5 : 0.5 - in->eps;
    sy_rng_seed(&stream[i], derive(o->seed, 3, inst, (uint64_t)rep, i));
  }
  long checks[MAX_CHECKS];
  int nchecks = checkpoints(o->horizon, checks), next = 0;
  agent_t a;
  sy_arm_stats_t pending[MAX_K] = {{0, 0, 0}};
  agent_init(&a, alg, in->k, o->egreedy_c * (double)in->k / (in->eps * in->eps),
             (sy_beta_post_t){1, 1});
  double regret = 0;
  for (long t = 1; t <= o->horizon; t++) {
    size_t arm = agent_choose(&a, &rng, t);
    regret += 0.5 - p[arm];
    pending[arm].n += 1;
    pending[arm].sum += sy_rng_uniform(&stream[arm]) < p[arm];
    if (t % o->batch == 0)
      agent_deliver(&a, pending);
    if (next < nchecks && t == checks[next])
      out[next++] = regret;
  }
  agent_free(&a);
}

/* ---- Table 1 ---- */

/* The best rate among the arms. */
static double best_rate(const double *p, size_t k) {
  double m = p[0];
  for (size_t i = 1; i < k; i++)
    m = fmax(m, p[i]);
  return m;
}

/* One repetition for one delay: the total regret into out[0]. */
static void table1_run(const opts_t *o, size_t di, alg_t alg, int rep, double *out) {
  enum { K = 10 };
  sy_rng_t env, rng, rew;
  gsl_rng genv;
  sy_rng_seed(&env, derive(o->seed, 4, 0, (uint64_t)rep, 0)); /* same arms for every delta */
  sy_rng_seed(&rew, derive(o->seed, 5, di, (uint64_t)rep, 0));
  sy_rng_seed(&rng, derive(o->seed, 6, di, (uint64_t)rep, alg));
  sy_gsl_rng_bind(&genv, &env);
  double p[K];
  for (size_t i = 0; i < K; i++)
    p[i] = gsl_ran_beta(&genv, 4, 4);
  double pmax = best_rate(p, K), regret = 0;
  agent_t a;
  sy_arm_stats_t pending[MAX_K] = {{0, 0, 0}};
  agent_init(&a, alg, K, 0, o->table1_prior);
  long delta = DELTAS[di];
  for (long t = 1; t <= o->table_horizon; t++) {
    if (sy_rng_uniform(&env) < 1e-3) {
      size_t j = uniform_index(&env, K);
      p[j] = gsl_ran_beta(&genv, 4, 4);
      pmax = best_rate(p, K);
      pending[j] = (sy_arm_stats_t){0, 0, 0}; /* feedback about the retired arm is void */
      agent_reset_arm(&a, j);
    }
    size_t arm = agent_choose(&a, &rng, t);
    regret += pmax - p[arm];
    pending[arm].n += 1;
    pending[arm].sum += sy_rng_uniform(&rew) < p[arm];
    if (t % delta == 0)
      agent_deliver(&a, pending);
  }
  out[0] = regret;
  agent_free(&a);
}

/* ---- tasks, spread over forked workers ---- */

typedef struct task_s {
  int table; /* 0: Figure 1, 1: Table 1 */
  size_t inst;
  alg_t alg;
  int rep;
  double cost;
} task_t;

typedef struct record_s {
  int task;
  double r[MAX_CHECKS];
} record_t;

static int by_cost_desc(const void *x, const void *y) {
  double a = ((const task_t *)x)->cost, b = ((const task_t *)y)->cost;
  return (a < b) - (a > b);
}

/* Lists every (setting, algorithm, repetition) to run, costliest first. Returns the count. */
static int make_tasks(const opts_t *o, task_t **out) {
  int n = 0, cap = (int)(NFIG1 * NFIG1_ALGS + NDELTAS * NALGS) * o->reps;
  task_t *t = calloc((size_t)cap, sizeof *t);
  if (t == NULL) {
    fprintf(stderr, "regret: out of memory\n");
    exit(1);
  }
  for (size_t i = 0; i < NFIG1; i++)
    for (int alg = 0; alg < NFIG1_ALGS && o->fig1[i]; alg++)
      for (int r = 0; r < o->reps; r++)
        t[n++] = (task_t){0, i, (alg_t)alg, r,
                          (double)o->horizon * (alg == ALG_TS ? (double)FIG1[i].k : 1.0)};
  for (size_t d = 0; d < NDELTAS && o->table1; d++)
    for (int alg = 0; alg < NALGS; alg++)
      for (int r = 0; r < o->reps && alg != ALG_EGREEDY; r++)
        t[n++] = (task_t){1, d, (alg_t)alg, r, (double)o->table_horizon * (alg ? 3 : 10)};
  qsort(t, (size_t)n, sizeof *t, by_cost_desc);
  *out = t;
  return n;
}

static void run_task(const opts_t *o, const task_t *t, double *r) {
  if (t->table)
    table1_run(o, t->inst, t->alg, t->rep, r);
  else
    fig1_run(o, &FIG1[t->inst], t->inst, t->alg, t->rep, r);
}

/*
 * What the workers share (an anonymous shared mapping): the next task to claim and one
 * record per task. Claiming with an atomic counter balances the load whatever each task
 * costs; each record is written by exactly one worker and read after all have exited.
 */
typedef struct shared_s {
  atomic_int next;
  record_t rec[];
} shared_t;

/* A worker: claims tasks until none are left, writing each one's record. */
static void worker(const opts_t *o, const task_t *tasks, int ntasks, shared_t *sh) {
  for (int i = atomic_fetch_add(&sh->next, 1); i < ntasks; i = atomic_fetch_add(&sh->next, 1)) {
    run_task(o, &tasks[i], sh->rec[i].r);
    sh->rec[i].task = i;
  }
  _exit(0);
}

/* Runs all tasks on o->jobs forked processes; copies the records into results (indexed by
 * task). Returns 0, or -1 if a process could not be started or failed. */
static int run_all(const opts_t *o, const task_t *tasks, int ntasks, record_t *results) {
  size_t size = sizeof(shared_t) + (size_t)ntasks * sizeof(record_t);
  shared_t *sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED)
    return -1;
  atomic_init(&sh->next, 0);
  fflush(stdout);
  int ok = 1, started = 0;
  pid_t pids[MAX_JOBS];
  for (int j = 0; j < o->jobs && ok; j++) {
    pids[j] = fork();
    if (pids[j] == 0)
      worker(o, tasks, ntasks, sh);
    ok = pids[j] > 0;
    started += ok;
  }
  for (int j = 0; j < started; j++) {
    int status;
    ok &= waitpid(pids[j], &status, 0) == pids[j] && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  memcpy(results, sh->rec, (size_t)ntasks * sizeof(record_t));
  munmap(sh, size);
  return ok ? 0 : -1;
}

/* ---- report ---- */

typedef struct acc_s {
  double sum, sumsq;
  int n;
} acc_t;

static void acc_add(acc_t *a, double x) {
  a->sum += x;
  a->sumsq += x * x;
  a->n++;
}

static double acc_mean(const acc_t *a) {
  return a->n ? a->sum / a->n : NAN;
}

/* Standard error of the mean. */
static double acc_se(const acc_t *a) {
  if (a->n < 2)
    return NAN;
  double m = acc_mean(a), var = (a->sumsq - a->n * m * m) / (a->n - 1);
  return sqrt(fmax(var, 0) / a->n);
}

/* "1e6" for powers of ten, else the number. */
static void tname(char *buf, size_t cap, long t) {
  int e = 0;
  long x = t;
  while (x >= 10 && x % 10 == 0) {
    x /= 10;
    e++;
  }
  if (x == 1)
    snprintf(buf, cap, "1e%d", e);
  else
    snprintf(buf, cap, "%ld", t);
}

/* Mean regret of TS at 1e6 and the 1e5 -> 1e6 slope for the last line. */
typedef struct headline_s {
  double r1e6, slope_ratio;
} headline_t;

/* Prints one Figure 1 instance; fills h for k10_e0.1. */
static void report_fig1(const opts_t *o, size_t i, const task_t *tasks, int ntasks,
                        const record_t *res, headline_t *h) {
  long checks[MAX_CHECKS];
  int nc = checkpoints(o->horizon, checks);
  double c = lai_robbins(&FIG1[i]);
  printf("fig1_%s_lai_robbins_C=%.2f\n", FIG1[i].name, c);
  for (int alg = 0; alg < NFIG1_ALGS; alg++) {
    acc_t acc[MAX_CHECKS];
    memset(acc, 0, sizeof acc);
    for (int t = 0; t < ntasks; t++)
      if (!tasks[t].table && tasks[t].inst == i && tasks[t].alg == (alg_t)alg)
        for (int k = 0; k < nc; k++)
          acc_add(&acc[k], res[t].r[k]);
    double at[MAX_CHECKS];
    for (int k = 0; k < nc; k++) {
      char tn[32];
      tname(tn, sizeof tn, checks[k]);
      at[k] = acc_mean(&acc[k]);
      printf("fig1_%s_%s_regret_%s=%.1f\n", FIG1[i].name, ALG_NAME[alg], tn, at[k]);
      printf("fig1_%s_%s_regret_%s_se=%.1f\n", FIG1[i].name, ALG_NAME[alg], tn, acc_se(&acc[k]));
    }
    for (int k = 1; k < nc; k++) {
      char a[32], b[32];
      tname(a, sizeof a, checks[k - 1]);
      tname(b, sizeof b, checks[k]);
      double slope = (at[k] - at[k - 1]) / log((double)checks[k] / (double)checks[k - 1]);
      printf("fig1_%s_%s_slope_%s_%s=%.2f\n", FIG1[i].name, ALG_NAME[alg], a, b, slope);
      if (alg == ALG_TS)
        printf("fig1_%s_ts_slope_ratio_to_C_%s_%s=%.3f\n", FIG1[i].name, a, b, slope / c);
      if (alg == ALG_TS && i == 0 && checks[k - 1] == 100000 && checks[k] == 1000000)
        *h = (headline_t){at[k], slope / c};
    }
  }
}

static void report_table1(const task_t *tasks, int ntasks, const record_t *res) {
  for (size_t d = 0; d < NDELTAS; d++) {
    acc_t acc[NALGS];
    memset(acc, 0, sizeof acc);
    for (int t = 0; t < ntasks; t++)
      if (tasks[t].table && tasks[t].inst == d)
        acc_add(&acc[tasks[t].alg], res[t].r[0]);
    long dl = DELTAS[d];
    printf("table1_delta%ld_ts_regret=%.0f\n", dl, acc_mean(&acc[ALG_TS]));
    printf("table1_delta%ld_ts_regret_se=%.0f\n", dl, acc_se(&acc[ALG_TS]));
    printf("table1_delta%ld_ts_published=%.0f\n", dl, PUBLISHED_TS[d]);
    printf("table1_delta%ld_ucb_regret=%.0f\n", dl, acc_mean(&acc[ALG_UCB_CL]));
    printf("table1_delta%ld_ucb_regret_se=%.0f\n", dl, acc_se(&acc[ALG_UCB_CL]));
    printf("table1_delta%ld_ucb_published=%.0f\n", dl, PUBLISHED_UCB[d]);
    printf("table1_delta%ld_ratio_ucb_to_ts=%.2f\n", dl,
           acc_mean(&acc[ALG_UCB_CL]) / acc_mean(&acc[ALG_TS]));
    printf("table1_delta%ld_ucb1_regret=%.0f\n", dl, acc_mean(&acc[ALG_UCB1]));
  }
}

/* ---- timing choose() ---- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Nanoseconds per choose for a K-arm Beta policy with ~1,000 observations per arm; also
 * the milliseconds per update with the default 10,000 Monte Carlo draws. */
static void time_choose(size_t k, uint64_t seed) {
  sy_ts_conf_t c;
  sy_ts_conf_default(&c, SY_OUTCOME_BINARY);
  sy_policy_t *p = sy_policy_thompson_new(&c, k);
  sy_arm_stats_t tot[MAX_K];
  sy_rng_t rng;
  sy_rng_seed(&rng, seed);
  for (size_t i = 0; i < k; i++)
    tot[i] = (sy_arm_stats_t){1000, 400 + (double)(sy_rng_next(&rng) % 200), 0};
  double t0 = now_s();
  sy_policy_update(p, tot);
  double upd = now_s() - t0;
  long n = k <= 10 ? 2000000 : 200000;
  size_t sink = 0;
  t0 = now_s();
  for (long i = 0; i < n; i++)
    sink += sy_policy_choose(p, NULL, &rng).arm;
  double dt = now_s() - t0;
  printf("choose_ns_k%zu=%.0f\n", k, dt * 1e9 / (double)n);
  printf("update_ms_k%zu_draws%u=%.2f\n", k, c.propensity_draws, upd * 1e3);
  if (sink == (size_t)-1)
    printf("#\n"); /* keeps the loop from being optimised away */
  sy_policy_destroy(p);
}

/* ---- options ---- */

static void usage(void) {
  fprintf(
      stderr,
      "usage: regret [--reps N] [--horizon T] [--table-horizon T] [--seed S] [--jobs J]\n"
      "              [--batch B] [--egreedy-c C] [--table1-prior A,B] [--setting LIST]\n"
      "  LIST: comma-separated of all, fig1, table1, choose, k10_e0.1, k10_e0.02,\n"
      "        k100_e0.1, k100_e0.02 (default all). --horizon 10000000 runs Figure 1 to 1e7.\n");
  exit(2);
}

/* Turns on the settings named in a comma-separated list; returns -1 on an unknown name. */
static int parse_settings(opts_t *o, char *list) {
  memset(o->fig1, 0, sizeof o->fig1);
  o->table1 = o->choose = 0;
  for (char *s = strtok(list, ","); s != NULL; s = strtok(NULL, ",")) {
    int all = strcmp(s, "all") == 0, known = all;
    for (size_t i = 0; i < NFIG1; i++)
      if (all || strcmp(s, "fig1") == 0 || strcmp(s, FIG1[i].name) == 0)
        o->fig1[i] = known = 1;
    if (all || strcmp(s, "table1") == 0)
      o->table1 = known = 1;
    if (all || strcmp(s, "choose") == 0)
      o->choose = known = 1;
    if (!known)
      return -1;
  }
  return 0;
}

/* "A,B" -> Beta(A, B); leaves 0s (rejected later) if malformed. */
static void parse_prior(sy_beta_post_t *p, const char *v) {
  char *end;
  p->alpha = strtod(v, &end);
  p->beta = *end == ',' ? strtod(end + 1, NULL) : 0;
}

static void parse_opts(opts_t *o, int argc, char **argv) {
  *o = (opts_t){.reps = 20,
                .horizon = 1000000,
                .table_horizon = 1000000,
                .batch = 100,
                .seed = 1,
                .jobs = 2,
                .egreedy_c = 1,
                .table1_prior = {4, 4}};
  char all[] = "all";
  parse_settings(o, all);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL)
      usage();
    i++;
    if (strcmp(a, "--reps") == 0)
      o->reps = atoi(v);
    else if (strcmp(a, "--horizon") == 0)
      o->horizon = (long)strtod(v, NULL);
    else if (strcmp(a, "--table-horizon") == 0)
      o->table_horizon = (long)strtod(v, NULL);
    else if (strcmp(a, "--seed") == 0)
      o->seed = strtoull(v, NULL, 0);
    else if (strcmp(a, "--jobs") == 0)
      o->jobs = atoi(v);
    else if (strcmp(a, "--batch") == 0)
      o->batch = atol(v);
    else if (strcmp(a, "--egreedy-c") == 0)
      o->egreedy_c = strtod(v, NULL);
    else if (strcmp(a, "--table1-prior") == 0)
      parse_prior(&o->table1_prior, v);
    else if (strcmp(a, "--setting") != 0 || parse_settings(o, v) < 0)
      usage();
  }
  if (o->reps < 1 || o->horizon < 1 || o->table_horizon < 1 || o->batch < 1 || o->jobs < 1 ||
      o->jobs > MAX_JOBS || !(o->egreedy_c > 0) || !(o->table1_prior.alpha > 0) ||
      !(o->table1_prior.beta > 0))
    usage();
}

int main(int argc, char **argv) {
  opts_t o;
  parse_opts(&o, argc, argv);
  double t0 = now_s();
  printf("seed=%llu\nreps=%d\njobs=%d\nfig1_horizon=%ld\nfig1_batch=%ld\nfig1_ts_prior=1,1\n"
         "table1_horizon=%ld\ntable1_ts_prior=%g,%g\nrng=xoshiro256starstar\n",
         (unsigned long long)o.seed, o.reps, o.jobs, o.horizon, o.batch, o.table_horizon,
         o.table1_prior.alpha, o.table1_prior.beta);
  if (o.choose) {
    time_choose(10, o.seed);
    time_choose(100, o.seed);
  }
  task_t *tasks;
  int ntasks = make_tasks(&o, &tasks);
  record_t *res = calloc((size_t)ntasks + 1, sizeof *res);
  if (res == NULL || (ntasks > 0 && run_all(&o, tasks, ntasks, res) < 0)) {
    fprintf(stderr, "regret: a worker failed\n");
    return 1;
  }
  headline_t h = {NAN, NAN};
  for (size_t i = 0; i < NFIG1; i++)
    if (o.fig1[i])
      report_fig1(&o, i, tasks, ntasks, res, &h);
  if (o.table1)
    report_table1(tasks, ntasks, res);
  printf("wall_s=%.1f\n", now_s() - t0);
  printf("ts_regret_k10_e0.1_1e6=%.1f slope_ratio_to_C=%.3f\n", h.r1e6, h.slope_ratio);
  free(tasks);
  free(res);
  return 0;
}
