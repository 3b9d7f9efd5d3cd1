/*
 * gate-sim.c — the gate's statistics (policies/gate.h) under continuous monitoring: false
 * decisions in A/A tests, stopping times and power, sample-ratio false alarms, guardrail
 * error rates, against a naive z-test repeated at every look.
 *
 * Every look calls sy_gate_evaluate, the function the router calls, with the default
 * parameters (--tuning-n, --alpha and --promote-share override them, to tune them); nothing
 * here computes a boundary of its own. The naive baseline uses the gate's own mean and variance
 * (sy_gate_arm_mean, sy_gate_arm_var) and stops at |z| > 1.96.
 *
 * Traffic: each look adds 40 users, each sent to control or candidate by a fair coin (so
 * 20 per arm per look on average: "per arm" below means 20 x looks), up to 50,000 per arm
 * (2,500 looks). Scenarios:
 *   aa_binary     outcome Bernoulli(0.10) in both arms; binomial draws per look.
 *   aa_lognormal  outcome exp(N(0, 1)) in both arms; the draws summed per look.
 *   aa_delayed    Bernoulli(0.10), each outcome delayed by Exp(mean 2,000 users' arrivals),
 *                 users spread over three router instances; each router adds its counts to
 *                 the shared totals every 5 looks (router r when (look + r) % 5 == 0), and
 *                 the gate sees only the shared totals, without pending outcomes. Latency
 *                 (log-normal, median 800 ms, sigma 0.6), errors (2%) and tokens
 *                 (log-normal, median 300, sigma 0.5) are the same in both arms, so every
 *                 guardrail runs and any rollback is false.
 *   power_011, power_012  Bernoulli 0.10 against 0.11 / 0.12, until the first decision.
 *   harm_008      Bernoulli 0.10 against 0.08: how soon the outcome test rolls back.
 *   guard_*       one router, immediate outcomes, A/A outcome; the candidate's latency x1.2
 *                 (p95 ratio exactly at the limit: a breach would be false), x1.5 (a real
 *                 breach), error rate +0.02 (at the limit), +0.04 (a breach), tokens x1.5
 *                 (at the limit). --reps / 10 repetitions each.
 * A/A scenarios and the at-the-limit guard scenarios run to the horizon whatever the gate
 * decides, to count SRM alarms and naive crossings over the whole run; a repetition's fate
 * is its first decision other than continue (a halt included). Repetitions are spread over
 * --jobs forked processes; each has its own seeds derived from --seed.
 *
 * Output: name=value lines; the last one is
 * `aa_false_decision_rate=A median_stop_012=M power_011_at_14760=P`, where A is the worst
 * of the three A/A scenarios (promotions + rollbacks, guardrail rollbacks included).
 *
 * `gate-sim bandit grid|extra|ab [options]` runs the bandit gate under Thompson sampling
 * instead (gate-sim-bandit.c: the A/A grid over outcome rates, K, floors and posterior
 * refreshes, and how its worst cell is found; heavy-tailed and delayed outcomes; the best
 * arm's removal rate and the requests to a winner in A/B settings).
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

#include "bench/gate-sim-bandit.h"
#include "policies/gate.h"
#include "policies/rng.h"
#include "policies/thompson.h"

#define USERS_PER_LOOK 40
#define PER_ARM_PER_LOOK (USERS_PER_LOOK / 2)
#define MAX_PER_ARM 50000
#define LOOKS (MAX_PER_ARM / PER_ARM_PER_LOOK)
#define POWER_AT 14760 /* per arm: look 738 */
#define MAX_ROUTERS 3
#define MAX_JOBS 64
#define CHUNK 50 /* repetitions per task */

typedef enum { K_BIN, K_LOG, K_USR } kind_t; /* binomial, log-normal per look; per user */
typedef enum { S_FULL, S_FATE, S_GUARD } stop_t;

typedef struct scen_s {
  const char *name;
  kind_t kind;
  stop_t stop;
  int reps_div;
  double p[2]; /* outcome rates (binary, users) */
  /* K_USR only */
  int routers, sync_every;
  double mean_delay;                   /* in users' arrivals; 0: immediate */
  double lat_scale, err[2], tok_scale; /* the candidate's latency and tokens multipliers */
} scen_t;

enum { AA_BIN, AA_LOG, AA_DEL, POW11, POW12, HARM08, GLAT12, GLAT15, GERR02, GERR04, GTOK15, NSC };

/* The table reads best in columns, which clang-format would undo. Columns: name, kind, stop,
 * reps divisor, outcome rates; then for K_USR: routers, sync every, mean delay, candidate's
 * latency multiplier, error rates, candidate's tokens multiplier. */
/* clang-format off */
static const scen_t SCEN[NSC] = {
  [AA_BIN] = {"aa_binary",          K_BIN, S_FULL,  1,  {.1, .1},  0, 0, 0,   1,   {0, 0},     1},
  [AA_LOG] = {"aa_lognormal",       K_LOG, S_FULL,  1,  {0, 0},    0, 0, 0,   1,   {0, 0},     1},
  [AA_DEL] = {"aa_delayed",         K_USR, S_FULL,  1,  {.1, .1},  3, 5, 2e3, 1,   {.02, .02}, 1},
  [POW11]  = {"power_011",          K_BIN, S_FATE,  1,  {.1, .11}, 0, 0, 0,   1,   {0, 0},     1},
  [POW12]  = {"power_012",          K_BIN, S_FATE,  1,  {.1, .12}, 0, 0, 0,   1,   {0, 0},     1},
  [HARM08] = {"harm_008",           K_BIN, S_FATE,  1,  {.1, .08}, 0, 0, 0,   1,   {0, 0},     1},
  [GLAT12] = {"guard_latency_x1.2", K_USR, S_FULL,  10, {.1, .1},  1, 1, 0,   1.2, {.02, .02}, 1},
  [GLAT15] = {"guard_latency_x1.5", K_USR, S_GUARD, 10, {.1, .1},  1, 1, 0,   1.5, {.02, .02}, 1},
  [GERR02] = {"guard_errors_+0.02", K_USR, S_FULL,  10, {.1, .1},  1, 1, 0,   1,   {.02, .04}, 1},
  [GERR04] = {"guard_errors_+0.04", K_USR, S_GUARD, 10, {.1, .1},  1, 1, 0,   1,   {.02, .06}, 1},
  [GTOK15] = {"guard_tokens_x1.5",  K_USR, S_FULL,  10, {.1, .1},  1, 1, 0,   1,   {.02, .02}, 1.5},
};
/* clang-format on */

/* What one repetition leaves behind. Looks are 1-based; 0 means never. */
typedef struct rec_s {
  int fate; /* the first decision other than continue, else SY_GATE_CONTINUE */
  int fate_look;
  int fate_guard; /* that decision was a guardrail rollback */
  int naive_look; /* first look with |z| > 1.96 (both arms at min_n) */
  int srm;        /* the SRM test fired at some look */
  int guard_look[SY_GATE_NGUARDS];
  int looks; /* looks taken */
} rec_t;

typedef struct opts_s {
  int reps, jobs;
  uint64_t seed;
  double tuning_n, alpha, share;
  int on[NSC];
} opts_t;

/* ---- seeds and timing ---- */

static uint64_t derive(uint64_t seed, uint64_t a, uint64_t b) {
  sy_rng_t r;
  sy_rng_seed(&r, seed ^ (a * UINT64_C(0x9e3779b97f4a7c15)));
  uint64_t x = sy_rng_next(&r) ^ (b << 20);
  sy_rng_seed(&r, x);
  return sy_rng_next(&r);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- one look ---- */

/* Adds m plain (weight 1) outcomes with these sums: m calls of sy_gate_arm_add at once. */
static void add_plain(sy_gate_arm_t *a, double m, double sum, double sumsq) {
  a->n += m;
  a->sw += m;
  a->swy += sum;
  a->sw2 += m;
  a->sw2y += sum;
  a->sw2y2 += sumsq;
}

/* Runs the gate on the totals and records what it said. Returns 1 when the repetition may
 * stop here. */
static int look(const sy_gate_params_t *p, const scen_t *sc, const sy_gate_arm_t *arm, int j,
                rec_t *rec) {
  sy_gate_result_t res;
  sy_gate_decision_t d = sy_gate_evaluate(p, &arm[0], &arm[1], 0, &res);
  rec->looks = j;
  if (rec->fate == SY_GATE_CONTINUE && d != SY_GATE_CONTINUE) {
    rec->fate = d;
    rec->fate_look = j;
    rec->fate_guard = strncmp(res.reason, "guardrail:", 10) == 0;
  }
  if (res.srm_ran && res.srm_log_bf >= res.srm_log_threshold)
    rec->srm = 1;
  int guard = 0;
  for (int g = 0; g < SY_GATE_NGUARDS; g++) {
    if (res.guard[g].breached && rec->guard_look[g] == 0)
      rec->guard_look[g] = j;
    guard |= rec->guard_look[g] != 0;
  }
  if (rec->naive_look == 0 && arm[0].n >= p->min_n && arm[1].n >= p->min_n) {
    double v = sy_gate_arm_var(&arm[0]) + sy_gate_arm_var(&arm[1]);
    double z = (sy_gate_arm_mean(&arm[1]) - sy_gate_arm_mean(&arm[0])) / sqrt(v);
    if (v > 0 && fabs(z) > 1.96)
      rec->naive_look = j;
  }
  if (sc->stop == S_FATE)
    return rec->fate != SY_GATE_CONTINUE;
  if (sc->stop == S_GUARD)
    return guard;
  return 0;
}

/* ---- aggregate scenarios: binomial or summed log-normal draws per look ---- */

static void run_aggregate(const sy_gate_params_t *p, const scen_t *sc, uint64_t seed, rec_t *rec) {
  sy_rng_t r;
  gsl_rng g;
  sy_rng_seed(&r, seed);
  sy_gsl_rng_bind(&g, &r);
  sy_gate_arm_t arm[2];
  memset(arm, 0, sizeof arm);
  arm[0].expected_share = arm[1].expected_share = 0.5;
  for (int j = 1; j <= LOOKS; j++) {
    unsigned m[2];
    m[0] = gsl_ran_binomial(&g, 0.5, USERS_PER_LOOK);
    m[1] = USERS_PER_LOOK - m[0];
    for (int a = 0; a < 2; a++) {
      arm[a].requests += m[a];
      if (sc->kind == K_BIN) {
        double s = m[a] ? gsl_ran_binomial(&g, sc->p[a], m[a]) : 0;
        add_plain(&arm[a], m[a], s, s);
      } else {
        double s = 0, s2 = 0;
        for (unsigned u = 0; u < m[a]; u++) {
          double y = exp(gsl_ran_gaussian_ziggurat(&g, 1.0));
          s += y;
          s2 += y * y;
        }
        add_plain(&arm[a], m[a], s, s2);
      }
    }
    if (look(p, sc, arm, j, rec))
      return;
  }
}

/* ---- per-user scenarios: delays, router instances, guardrail inputs ---- */

/* Outcomes due at each look, per router and arm: count and successes. */
typedef struct pending_s {
  double n[MAX_ROUTERS][2][LOOKS + 2];
  double s[MAX_ROUTERS][2][LOOKS + 2];
} pending_t;

/* One user at time t on router `ro`, arm a: request, latency, error and tokens now; the
 * outcome when its delay has passed. */
static void user(const scen_t *sc, gsl_rng *g, sy_rng_t *r, long t, int ro, int a,
                 sy_gate_arm_t *local, pending_t *pend) {
  local->requests += 1;
  double lat = exp(log(800) + 0.6 * gsl_ran_gaussian_ziggurat(g, 1.0));
  if (a == 1)
    lat *= sc->lat_scale;
  local->lat_hist[sy_lat_bucket(lat)] += 1;
  local->errors += sy_rng_uniform(r) < sc->err[a];
  double tok =
      round(exp(log(300) + 0.5 * gsl_ran_gaussian_ziggurat(g, 1.0)) * (a == 1 ? sc->tok_scale : 1));
  local->tokens_n += 1;
  local->tokens_sum += tok;
  local->tokens_sumsq += tok * tok;
  double y = sy_rng_uniform(r) < sc->p[a];
  double due = (double)t;
  if (sc->mean_delay > 0)
    due += -sc->mean_delay * log1p(-sy_rng_uniform(r));
  double dl = floor(due / USERS_PER_LOOK) + 1; /* the first look at or after `due` */
  if (dl <= LOOKS) {
    pend->n[ro][a][(int)dl] += 1;
    pend->s[ro][a][(int)dl] += y;
  }
}

static void run_users(const sy_gate_params_t *p, const scen_t *sc, uint64_t seed, pending_t *pend,
                      rec_t *rec) {
  sy_rng_t r;
  gsl_rng g;
  sy_rng_seed(&r, seed);
  sy_gsl_rng_bind(&g, &r);
  memset(pend, 0, sizeof *pend);
  sy_gate_arm_t shared[2], local[MAX_ROUTERS][2];
  memset(shared, 0, sizeof shared);
  memset(local, 0, sizeof local);
  shared[0].expected_share = shared[1].expected_share = 0.5;
  for (int j = 1; j <= LOOKS; j++) {
    for (int u = 0; u < USERS_PER_LOOK; u++) {
      uint64_t bits = sy_rng_next(&r);
      int a = (int)(bits & 1), ro = (int)((bits >> 1) % (uint64_t)sc->routers);
      user(sc, &g, &r, (long)(j - 1) * USERS_PER_LOOK + u, ro, a, &local[ro][a], pend);
    }
    for (int ro = 0; ro < sc->routers; ro++) {
      for (int a = 0; a < 2; a++) {
        double s = pend->s[ro][a][j];
        add_plain(&local[ro][a], pend->n[ro][a][j], s, s);
      }
      if ((j + ro) % sc->sync_every != 0)
        continue;
      for (int a = 0; a < 2; a++) {
        sy_gate_arm_merge(&shared[a], &local[ro][a]);
        memset(&local[ro][a], 0, sizeof local[ro][a]);
      }
    }
    if (look(p, sc, shared, j, rec))
      return;
  }
}

/* ---- tasks over forked workers ---- */

typedef struct task_s {
  int scen, rep0, nreps;
} task_t;

typedef struct shared_s {
  atomic_int next;
  double cpu[NSC]; /* seconds per scenario, summed by the workers (under the lock below) */
  atomic_flag lock;
  rec_t rec[];
} shared_t;

static int reps_of(const opts_t *o, int s) {
  int n = o->reps / SCEN[s].reps_div;
  return n < 1 ? 1 : n;
}

/* Record index of (scenario, rep): scenarios one after the other. */
static int rec_index(const opts_t *o, int s, int rep) {
  int base = 0;
  for (int i = 0; i < s; i++)
    base += o->on[i] ? reps_of(o, i) : 0;
  return base + rep;
}

static void run_task(const opts_t *o, const sy_gate_params_t *p, const task_t *t, pending_t *pend,
                     shared_t *sh) {
  const scen_t *sc = &SCEN[t->scen];
  double t0 = now_s();
  for (int k = 0; k < t->nreps; k++) {
    int rep = t->rep0 + k;
    rec_t *rec = &sh->rec[rec_index(o, t->scen, rep)];
    memset(rec, 0, sizeof *rec);
    rec->fate = SY_GATE_CONTINUE;
    uint64_t seed = derive(o->seed, (uint64_t)t->scen + 1, (uint64_t)rep);
    if (sc->kind == K_USR)
      run_users(p, sc, seed, pend, rec);
    else
      run_aggregate(p, sc, seed, rec);
  }
  double dt = now_s() - t0;
  while (atomic_flag_test_and_set(&sh->lock))
    ;
  sh->cpu[t->scen] += dt;
  atomic_flag_clear(&sh->lock);
}

static void worker(const opts_t *o, const sy_gate_params_t *p, const task_t *tasks, int ntasks,
                   shared_t *sh) {
  pending_t *pend = malloc(sizeof *pend);
  if (pend == NULL)
    _exit(1);
  for (int i = atomic_fetch_add(&sh->next, 1); i < ntasks; i = atomic_fetch_add(&sh->next, 1))
    run_task(o, p, &tasks[i], pend, sh);
  free(pend);
  _exit(0);
}

/* Runs every task on o->jobs processes; returns the shared area (records and CPU times) or
 * NULL if a worker failed. */
static shared_t *run_all(const opts_t *o, const sy_gate_params_t *p, const task_t *tasks,
                         int ntasks, int nrec, size_t *size) {
  *size = sizeof(shared_t) + (size_t)nrec * sizeof(rec_t);
  shared_t *sh = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED)
    return NULL;
  atomic_init(&sh->next, 0);
  atomic_flag_clear(&sh->lock);
  fflush(stdout);
  int ok = 1, started = 0;
  pid_t pids[MAX_JOBS];
  for (int j = 0; j < o->jobs && ok; j++) {
    pids[j] = fork();
    if (pids[j] == 0)
      worker(o, p, tasks, ntasks, sh);
    ok = pids[j] > 0;
    started += ok;
  }
  for (int j = 0; j < started; j++) {
    int status;
    ok &= waitpid(pids[j], &status, 0) == pids[j] && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  if (!ok) {
    munmap(sh, *size);
    return NULL;
  }
  return sh;
}

/* ---- report ---- */

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* Median of per-arm sample sizes at the looks in v[0..n) (0 = never: the horizon). */
static double median_per_arm(int *v, int n) {
  for (int i = 0; i < n; i++)
    v[i] = v[i] == 0 ? LOOKS : v[i];
  qsort(v, (size_t)n, sizeof *v, cmp_int);
  double m = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  return m * PER_ARM_PER_LOOK;
}

typedef struct headline_s {
  double aa_worst, median12, power11;
} headline_t;

static const char *const GUARD_NAME[SY_GATE_NGUARDS] = {"latency_p95", "error_rate", "tokens"};

static void report(const opts_t *o, int s, const rec_t *rec, double cpu, headline_t *h) {
  const scen_t *sc = &SCEN[s];
  int n = reps_of(o, s), prom = 0, roll = 0, halt = 0, gr = 0, srm = 0, naive = 0, by = 0;
  int roll_by = 0, early = 0; /* decisions before 1,000 per arm */
  int guard_any[SY_GATE_NGUARDS] = {0};
  int *stop = malloc((size_t)n * sizeof *stop), *gstop = malloc((size_t)n * sizeof *gstop);
  int power_look = POWER_AT / PER_ARM_PER_LOOK;
  for (int i = 0; i < n; i++) {
    const rec_t *r = &rec[i];
    prom += r->fate == SY_GATE_PROMOTE;
    roll += r->fate == SY_GATE_ROLLBACK;
    halt += r->fate == SY_GATE_HALT;
    gr += r->fate_guard;
    srm += r->srm;
    naive += r->naive_look != 0;
    by += r->fate == SY_GATE_PROMOTE && r->fate_look <= power_look;
    roll_by += r->fate == SY_GATE_ROLLBACK && r->fate_look <= power_look;
    early += (r->fate == SY_GATE_PROMOTE || r->fate == SY_GATE_ROLLBACK) &&
             r->fate_look * PER_ARM_PER_LOOK < 1000;
    stop[i] = r->fate_look;
    gstop[i] = 0;
    for (int g = 0; g < SY_GATE_NGUARDS; g++) {
      guard_any[g] += r->guard_look[g] != 0;
      if (r->guard_look[g] && (gstop[i] == 0 || r->guard_look[g] < gstop[i]))
        gstop[i] = r->guard_look[g];
    }
  }
  const char *nm = sc->name;
  double dn = n;
  printf("%s_reps=%d\n", nm, n);
  printf("%s_promote_rate=%.4f\n%s_rollback_rate=%.4f\n", nm, prom / dn, nm, roll / dn);
  printf("%s_halt_rate=%.4f\n%s_guardrail_rollback_rate=%.4f\n", nm, halt / dn, nm, gr / dn);
  if (sc->stop == S_FULL)
    printf("%s_srm_alarm_rate=%.4f\n", nm, srm / dn);
  for (int g = 0; g < SY_GATE_NGUARDS && sc->kind == K_USR; g++)
    printf("%s_guard_%s_breach_rate=%.4f\n", nm, GUARD_NAME[g], guard_any[g] / dn);
  if (s == AA_BIN || s == AA_LOG || s == AA_DEL) {
    double rate = (prom + roll) / dn;
    printf("%s_false_decision_rate=%.4f\n", nm, rate);
    printf("%s_false_decision_se=%.4f\n", nm, sqrt(rate * (1 - rate) / dn));
    printf("%s_false_decision_before_1000_per_arm_rate=%.4f\n", nm, early / dn);
    if (sc->kind != K_USR)
      printf("%s_naive_z_false_decision_rate=%.4f\n", nm, naive / dn);
    h->aa_worst = fmax(isnan(h->aa_worst) ? 0 : h->aa_worst, rate);
  }
  if (sc->stop == S_FATE) {
    double med = median_per_arm(stop, n);
    printf("%s_median_stop_per_arm=%.0f\n", nm, med);
    printf("%s_power_at_%d=%.4f\n", nm, POWER_AT, by / dn);
    printf("%s_rolled_back_by_%d=%.4f\n", nm, POWER_AT, roll_by / dn);
    if (s == POW12)
      h->median12 = med;
    if (s == POW11)
      h->power11 = by / dn;
  }
  if (sc->stop == S_GUARD) {
    int caught = 0;
    for (int i = 0; i < n; i++)
      caught += gstop[i] != 0;
    printf("%s_detected_rate=%.4f\n", nm, caught / dn);
    printf("%s_median_detect_per_arm=%.0f\n", nm, median_per_arm(gstop, n));
  }
  printf("%s_cpu_s=%.1f\n", nm, cpu);
  free(stop);
  free(gstop);
}

/* Nanoseconds per sy_gate_evaluate on realistic totals (all guardrails running). */
static void time_evaluate(const sy_gate_params_t *p) {
  sy_gate_arm_t a[2];
  memset(a, 0, sizeof a);
  for (int i = 0; i < 2; i++) {
    add_plain(&a[i], 5000, 500 + 10 * i, 500 + 10 * i);
    a[i].requests = 5000 + 30 * i;
    a[i].expected_share = 0.5;
    a[i].errors = 100;
    for (int b = 5; b < 12; b++)
      a[i].lat_hist[b] = 700;
    a[i].tokens_n = 5000;
    a[i].tokens_sum = 5000 * 300.0;
    a[i].tokens_sumsq = 5000 * 300.0 * 300 * 1.3;
  }
  sy_gate_result_t res;
  long n = 200000, promotes = 0;
  double t0 = now_s();
  for (long i = 0; i < n; i++) {
    a[1].swy += 1e-9; /* keep the call from being hoisted */
    promotes += sy_gate_evaluate(p, &a[0], &a[1], 0, &res) == SY_GATE_PROMOTE;
  }
  printf("evaluate_ns=%.0f\n", (now_s() - t0) * 1e9 / (double)n);
  if (promotes < 0)
    printf("#\n");
}

/* ---- options ---- */

static void usage(void) {
  fprintf(stderr,
          "usage: gate-sim [--reps N] [--seed S] [--jobs J] [--setting LIST]\n"
          "                [--tuning-n X] [--alpha A] [--promote-share F]\n"
          "  LIST: comma-separated of all, aa, power (with harm_008), guard, or scenario names\n"
          "  --tuning-n, --alpha, --promote-share override the gate's defaults (to tune them)\n");
  exit(2);
}

static int parse_settings(opts_t *o, char *list) {
  memset(o->on, 0, sizeof o->on);
  for (char *s = strtok(list, ","); s != NULL; s = strtok(NULL, ",")) {
    int known = 0;
    for (int i = 0; i < NSC; i++) {
      const char *nm = SCEN[i].name;
      int grp = (strcmp(s, "aa") == 0 && strncmp(nm, "aa_", 3) == 0) ||
                (strcmp(s, "power") == 0 &&
                 (strncmp(nm, "power_", 6) == 0 || strncmp(nm, "harm_", 5) == 0)) ||
                (strcmp(s, "guard") == 0 && strncmp(nm, "guard_", 6) == 0);
      if (strcmp(s, "all") == 0 || grp || strcmp(s, nm) == 0)
        o->on[i] = known = 1;
    }
    if (!known)
      return -1;
  }
  return 0;
}

static void parse_opts(opts_t *o, int argc, char **argv) {
  *o = (opts_t){.reps = 10000, .jobs = 2, .seed = 1, .tuning_n = 0};
  for (int i = 0; i < NSC; i++)
    o->on[i] = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    char *v = i + 1 < argc ? argv[++i] : NULL;
    if (v == NULL)
      usage();
    if (strcmp(a, "--reps") == 0)
      o->reps = atoi(v);
    else if (strcmp(a, "--seed") == 0)
      o->seed = strtoull(v, NULL, 0);
    else if (strcmp(a, "--jobs") == 0)
      o->jobs = atoi(v);
    else if (strcmp(a, "--tuning-n") == 0)
      o->tuning_n = strtod(v, NULL);
    else if (strcmp(a, "--alpha") == 0)
      o->alpha = strtod(v, NULL);
    else if (strcmp(a, "--promote-share") == 0)
      o->share = strtod(v, NULL);
    else if (strcmp(a, "--setting") != 0 || parse_settings(o, v) < 0)
      usage();
  }
  if (o->reps < 1 || o->jobs < 1 || o->jobs > MAX_JOBS || o->tuning_n < 0)
    usage();
}

/* Lists the tasks, chunks of CHUNK repetitions, costliest scenarios first. */
static int make_tasks(const opts_t *o, task_t *t, int *nrec) {
  static const int order[NSC] = {AA_DEL, AA_LOG, AA_BIN, GLAT12, GERR02, GTOK15,
                                 POW11,  GLAT15, GERR04, POW12,  HARM08};
  int n = 0;
  *nrec = 0;
  for (int k = 0; k < NSC; k++) {
    int s = order[k];
    if (!o->on[s])
      continue;
    int reps = reps_of(o, s);
    *nrec += reps;
    for (int r = 0; r < reps; r += CHUNK)
      t[n++] = (task_t){s, r, reps - r < CHUNK ? reps - r : CHUNK};
  }
  return n;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "bandit") == 0)
    return sy__gate_sim_bandit(argc - 2, argv + 2);
  opts_t o;
  parse_opts(&o, argc, argv);
  sy_gate_params_t p;
  sy_gate_params_default(&p);
  if (o.tuning_n > 0)
    p.tuning_n = o.tuning_n;
  if (o.alpha > 0)
    p.alpha = o.alpha;
  if (o.share > 0)
    p.promote_share = o.share;
  double t0 = now_s();
  printf("seed=%llu\nreps=%d\njobs=%d\nlook_every_per_arm=%d\nmax_per_arm=%d\n",
         (unsigned long long)o.seed, o.reps, o.jobs, PER_ARM_PER_LOOK, MAX_PER_ARM);
  double tn = sy_gate_tuning_n(&p), ap = p.promote_share * p.alpha, ar = p.alpha - ap;
  printf("alpha=%g\npromote_share=%g\ntuning_n=%g\n", p.alpha, p.promote_share, tn);
  if (p.promote_share == 0.5)
    printf("rho=%.6f\n", sy_seq_rho(tn, p.alpha));
  else
    printf("alpha_promote=%g\nalpha_rollback=%g\nrho_promote=%.6f\nrho_rollback=%.6f\n", ap, ar,
           sy_seq_rho(tn, 2 * ap), sy_seq_rho(tn, 2 * ar));
  printf("min_n=%g\nalpha_guard=%g\nalpha_srm=%g\nsrm_concentration=%g\n", p.min_n, p.alpha_guard,
         p.alpha_srm, p.srm_concentration);
  time_evaluate(&p);
  int ntask_max = 0;
  for (int s = 0; s < NSC; s++)
    ntask_max += reps_of(&o, s) / CHUNK + 1;
  task_t *tasks = calloc((size_t)ntask_max, sizeof *tasks);
  int nrec, ntasks = make_tasks(&o, tasks, &nrec);
  size_t size;
  shared_t *sh = tasks != NULL ? run_all(&o, &p, tasks, ntasks, nrec, &size) : NULL;
  if (sh == NULL) {
    fprintf(stderr, "gate-sim: a worker failed\n");
    return 1;
  }
  headline_t h = {NAN, NAN, NAN};
  int srm_n = 0, srm_alarms = 0;
  for (int s = 0; s < NSC; s++) {
    if (!o.on[s])
      continue;
    const rec_t *rec = &sh->rec[rec_index(&o, s, 0)];
    report(&o, s, rec, sh->cpu[s], &h);
    for (int i = 0; i < reps_of(&o, s) && SCEN[s].stop == S_FULL; i++, srm_n++)
      srm_alarms += rec[i].srm;
  }
  if (srm_n > 0)
    printf("srm_false_alarm_rate=%.5f\nsrm_runs=%d\n", (double)srm_alarms / srm_n, srm_n);
  printf("wall_s=%.1f\n", now_s() - t0);
  printf("aa_false_decision_rate=%.4f median_stop_012=%.0f power_011_at_14760=%.4f\n", h.aa_worst,
         h.median12, h.power11);
  munmap(sh, size);
  free(tasks);
  return 0;
}
