/*
 * gate-sim-bandit.c — the bandit gate (sy_gate_bandit_check, policies/gate.h) under the
 * router's Thompson sampling: `gate-sim bandit ...` (gate-sim.c hands the arguments over).
 *
 * One repetition is one experiment. K arms; the allocation is Thompson sampling with an
 * exploration floor f, as policies/thompson.c does it: propensity_k = f + (1 - K f) q_k with
 * q_k = P(arm k is the argmax of one posterior draw), recomputed every `refresh` requests
 * from the outcomes that have arrived, constant in between. q_k is computed here by
 * quadrature over normal approximations of the posteriors (Beta(1 + s, 1 + n - s) for binary
 * outcomes, mean +- s/sqrt(n) for continuous ones) instead of the router's 10,000 Monte Carlo
 * draws: only its speed differs, and it does not matter for what is measured, because each
 * request's arm is drawn with exactly the propensity that is logged for it (what the router
 * does). Requests are simulated in chunks of 100 (a multinomial draw of the arms, then each
 * request's outcome), and the gate looks every 200 requests, up to 50,000 requests per arm
 * (K x 50,000 in all). Arms the gate marks worse are removed, one per look, as
 * router/gate_run.c does; a winner ends the run.
 *
 * The gate gets what the router's Redis counters hold: per arm the outcome count and the
 * inverse-propensity sums iw, iwy, iw2, iw2y, iw2y2 (proto/KEYS.md), the requests, and the
 * sample-ratio check's counters: the requests assigned to each arm, and the sums over every
 * request of each arm's logged propensity (its expected count), of its square, and over its
 * own assignments.
 *
 * The A/A grid (`gate-sim bandit grid`): every arm has the same outcome rate, so any arm
 * marked worse and any winner is a false decision; a repetition stops at the first one.
 * Cells: outcome rate x K x floor x refresh, by default rates 0.01 0.03 0.1 0.3 0.5, K 2 3 5
 * 10, floor 0, 0.1/K, 0.5/K and 1/K (1/K: uniform, nothing adapts), refresh 100 and 1000
 * (--rates, --ks, --floors (as fractions of 1/K), --refresh select a part). The worst cell is
 * the one with the highest false decision rate; it is printed as
 * `bandit_aa_false_decision_rate=` with its standard error sqrt(r (1 - r) / reps). Finding
 * it cheaply: run the grid with few repetitions (--reps 100: a standard error of ~0.02 at
 * 0.05) to rank the cells, then rerun the highest few, each alone (--only =NAME), with a
 * fresh --seed (the screen's maximum is biased upwards by the selection) and --reps 2000 (a
 * standard error <= 0.005 at a rate of 0.05), and report the highest of those. A floor the
 * gate refuses (a floor of 0: bandit mode needs one) is reported as refused and counts for
 * nothing.
 * Extra A/A cells (`gate-sim bandit extra`): log-normal outcomes (sigma 1 and 2, mean 1,
 * clipped at the declared range's top, --ymax) and delayed outcomes (exponential delays of
 * mean 2,000 requests: posteriors and gate see only what has arrived).
 *
 * The A/B cells (`gate-sim bandit ab`): one best arm of rate 0.12 among arms of 0.10, K 3 and
 * 5, floor 0.1, refresh 100: how often the best arm is ever removed, how often a winner is
 * declared and it is the best, and the median requests (all arms) to the winner (a run
 * without one counts as the horizon). Also a best arm of 0.3 among 0.25 (K 3, floor 0.1),
 * and the truths of deploy/quickstart and of test_gate_e2e's bandit case.
 *
 * Output: name=value lines per cell, then the headline lines.
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
#include "policies/gate_bandit.h"
#include "policies/rng.h"
#include "policies/thompson.h"

#define KMAX 10
#define CHUNK_REQ 100
#define LOOK_EVERY 200
#define PER_ARM_MAX 50000
#define RING 512 /* chunks of pending outcomes: delays beyond 51,200 requests are dropped */
#define QUAD 24  /* quadrature points per arm */
#define MAX_CELLS 512
#define TASK_REPS 25

typedef enum { OUT_BIN, OUT_LOGN } outk_t;

typedef struct cell_s {
  char name[64];
  outk_t kind;
  int k;
  double rate[KMAX]; /* binary: success rates; log-normal: unused */
  double sigma;      /* log-normal */
  double floor;
  int refresh;
  double delay; /* mean, in requests; 0: immediate */
  int aa;       /* 1: every arm equal */
  int refused;  /* the gate refused its parameters */
} cell_t;

typedef struct rec_s {
  int false_decision; /* A/A: an arm removed or a winner declared */
  int best_removed;   /* A/B: arm 0 ever removed */
  int winner;         /* index + 1, 0: none */
  double winner_req;  /* requests (all arms) when the winner was declared */
  int srm;            /* the propensity check halted the run */
} rec_t;

typedef struct bopts_s {
  int reps, jobs;
  uint64_t seed;
  double ymax;
  int given_best; /* --given-best 1: the gate's weaker promise (gate.h) */
  char mode[16];
  char only[64];
  double rates[8], ks[8], floors[8], refresh[8];
  int nrates, nks, nfloors, nrefresh;
} bopts_t;

/* ---- Thompson propensities ---- */

static double ncdf(double z) {
  return 0.5 * erfc(-z / M_SQRT2);
}

/* q[k] = P(k is the argmax) of independent normals N(m_k, s_k^2) over the active arms. */
static void argmax_probs(const double *m, const double *s, const int *act, int k, double *q) {
  static const double zmax = 5;
  double tot = 0;
  for (int i = 0; i < k; i++) {
    q[i] = 0;
    if (!act[i])
      continue;
    double h = 2 * zmax / QUAD;
    for (int g = 0; g < QUAD; g++) {
      double z = -zmax + (g + 0.5) * h, x = m[i] + s[i] * z;
      double pr = exp(-0.5 * z * z) / sqrt(2 * M_PI) * h;
      for (int j = 0; j < k && pr > 1e-300; j++)
        if (j != i && act[j])
          pr *= ncdf((x - m[j]) / s[j]);
      q[i] += pr;
    }
    tot += q[i];
  }
  for (int i = 0; i < k; i++)
    q[i] = tot > 0 ? q[i] / tot : 0;
}

typedef struct post_s {
  double n, s, s2; /* arrived outcomes: count, sum, sum of squares (posterior input) */
} post_t;

static void propensities(const cell_t *c, const post_t *po, const int *act, double *p) {
  double m[KMAX], s[KMAX], q[KMAX];
  int kact = 0;
  for (int i = 0; i < c->k; i++) {
    kact += act[i];
    if (c->kind == OUT_BIN) {
      double a = 1 + po[i].s, b = 1 + po[i].n - po[i].s;
      m[i] = a / (a + b);
      s[i] = sqrt(a * b / ((a + b) * (a + b) * (a + b + 1)));
    } else {
      double n = po[i].n, mean = n > 0 ? po[i].s / n : 0;
      double var = n > 1 ? fmax(po[i].s2 / n - mean * mean, 1e-12) : 1e6;
      m[i] = mean;
      s[i] = sqrt(var / fmax(n, 1));
    }
  }
  argmax_probs(m, s, act, c->k, q);
  for (int i = 0; i < c->k; i++)
    p[i] = act[i] ? c->floor + (1 - kact * c->floor) * q[i] : 0;
}

/* ---- one repetition ---- */

typedef struct contrib_s {
  double n, sw, swy, sw2, sw2y, sw2y2;
} contrib_t;

static void contrib_add(contrib_t *t, double y, double p) {
  double u = 1 / p;
  t->n += 1;
  t->sw += u;
  t->swy += u * y;
  t->sw2 += u * u;
  t->sw2y += u * u * y;
  t->sw2y2 += u * u * y * y;
}

static void arm_absorb(sy_gate_arm_t *a, const contrib_t *t) {
  a->n += t->n;
  a->sw += t->sw;
  a->swy += t->swy;
  a->sw2 += t->sw2;
  a->sw2y += t->sw2y;
  a->sw2y2 += t->sw2y2;
}

typedef struct run_s {
  sy_gate_arm_t arm[KMAX];
  post_t post[KMAX];
  int act[KMAX];
  double p[KMAX];
  contrib_t ring[RING][KMAX];
  post_t pring[RING][KMAX];
} run_t;

static double draw_y(const cell_t *c, gsl_rng *g, sy_rng_t *r, int arm, double ymax) {
  if (c->kind == OUT_BIN)
    return sy_rng_uniform(r) < c->rate[arm];
  double y = exp(c->sigma * gsl_ran_gaussian_ziggurat(g, 1.0) - 0.5 * c->sigma * c->sigma);
  return y > ymax ? ymax : y;
}

/* One chunk of CHUNK_REQ requests at chunk index ch: arms, outcomes (now or into the ring). */
static void chunk(const cell_t *c, const bopts_t *o, gsl_rng *g, sy_rng_t *r, run_t *s, long ch) {
  unsigned m[KMAX];
  gsl_ran_multinomial(g, (size_t)c->k, CHUNK_REQ, s->p, m);
  for (int i = 0; i < c->k; i++) {
    s->arm[i].requests += m[i];
    s->arm[i].assigned += m[i]; /* the sample-ratio check's counters (proto/KEYS.md) */
    s->arm[i].p_sum += CHUNK_REQ * s->p[i];
    s->arm[i].p_sum2 += CHUNK_REQ * s->p[i] * s->p[i];
    s->arm[i].p_own += m[i] * s->p[i];
    for (unsigned u = 0; u < m[i]; u++) {
      double y = draw_y(c, g, r, i, o->ymax);
      long due = ch;
      if (c->delay > 0)
        due += (long)floor(-c->delay * log1p(-sy_rng_uniform(r)) / CHUNK_REQ) + 1;
      if (due - ch >= RING)
        continue;
      contrib_add(&s->ring[due % RING][i], y, s->p[i]);
      post_t *pp = &s->pring[due % RING][i];
      pp->n += 1;
      pp->s += y;
      pp->s2 += y * y;
    }
  }
  /* what is due now arrives */
  for (int i = 0; i < c->k; i++) {
    contrib_t *t = &s->ring[ch % RING][i];
    post_t *pp = &s->pring[ch % RING][i];
    arm_absorb(&s->arm[i], t);
    s->post[i].n += pp->n;
    s->post[i].s += pp->s;
    s->post[i].s2 += pp->s2;
    memset(t, 0, sizeof *t);
    memset(pp, 0, sizeof *pp);
  }
}

/* Sets the gate's parameters for a cell (the defaults, plus what a bandit gate must know). */
static void cell_params(const cell_t *c, const bopts_t *o, sy_gate_params_t *p) {
  sy_gate_params_default(p);
  p->floor = c->floor;
  if (c->kind == OUT_LOGN)
    p->y_max = o->ymax; /* the declared range [0, ymax]; outcomes are clipped to it */
  /* no latency, errors or tokens here: guardrails are bench/gate-sim's canary scenarios' */
  p->lat_p95_ratio_max = p->error_delta_max = p->tokens_ratio_max = 0;
  p->given_best = o->given_best;
}

/* 1 if the gate refuses the parameters (a floor of 0 in bandit mode). */
static int refused(const sy_gate_params_t *p) {
  sy_gate_arm_t a[2];
  memset(a, 0, sizeof a);
  sy_gate_bandit_t out;
  sy_gate_bandit_arm_t per[2];
  return sy_gate_bandit_check(p, a, NULL, 2, 0, 0, &out, per) == SY_GATE_HALT &&
         strcmp(out.reason, "config") == 0;
}

/* The gate's look. Returns 1 when the run ends. */
static int gate_look(const cell_t *c, const sy_gate_params_t *p, run_t *s, double req, rec_t *rec) {
  sy_gate_bandit_t out;
  sy_gate_bandit_arm_t per[KMAX];
  sy_gate_decision_t d = sy_gate_bandit_check(p, s->arm, s->act, (size_t)c->k, 0, 0, &out, per);
  if (d == SY_GATE_HALT && strcmp(out.reason, "srm") == 0) {
    rec->srm = 1;
    return 1;
  }
  if (d == SY_GATE_HALT) {
    fprintf(stderr, "gate-sim bandit: %s: the gate halted: %s %s\n", c->name, out.reason,
            out.detail ? out.detail : "");
    _exit(1);
  }
  if (d == SY_GATE_PROMOTE) {
    rec->false_decision = c->aa;
    rec->winner = (int)out.winner + 1;
    rec->winner_req = req;
    return 1;
  }
  for (int a = 0; a < c->k; a++)
    if (per[a].remove) { /* one removal per look, as the router */
      rec->false_decision = c->aa;
      rec->best_removed |= a == 0;
      s->act[a] = 0;
      return c->aa;
    }
  return 0;
}

static void run_rep(const cell_t *c, const bopts_t *o, uint64_t seed, run_t *s, rec_t *rec) {
  sy_rng_t r;
  gsl_rng g;
  sy_rng_seed(&r, seed);
  sy_gsl_rng_bind(&g, &r);
  memset(s, 0, sizeof *s);
  memset(rec, 0, sizeof *rec);
  for (int i = 0; i < c->k; i++)
    s->act[i] = 1;
  sy_gate_params_t p;
  cell_params(c, o, &p);
  long chunks = (long)c->k * PER_ARM_MAX / CHUNK_REQ;
  for (long ch = 0; ch < chunks; ch++) {
    if (ch * CHUNK_REQ % c->refresh == 0)
      propensities(c, s->post, s->act, s->p);
    chunk(c, o, &g, &r, s, ch);
    double req = (double)(ch + 1) * CHUNK_REQ;
    if ((long)req % LOOK_EVERY == 0 && gate_look(c, &p, s, req, rec))
      return;
  }
}

/* ---- cells ---- */

/* Names say the absolute floor: f0.033 is a floor of 0.033 (0.1/K for K = 3). */
static void cell_name(cell_t *c) {
  if (c->kind == OUT_BIN)
    snprintf(c->name, sizeof c->name, "%s_r%g_k%d_f%.3g_R%d%s", c->aa ? "aa" : "ab", c->rate[0],
             c->k, c->floor, c->refresh, c->delay > 0 ? "_delayed" : "");
  else
    snprintf(c->name, sizeof c->name, "aa_lognormal_s%g_k%d_f%.3g_R%d", c->sigma, c->k, c->floor,
             c->refresh);
}

static cell_t mk(outk_t kind, double rate, int k, double ffrac, int refresh) {
  cell_t c;
  memset(&c, 0, sizeof c);
  c.kind = kind;
  c.k = k;
  c.floor = ffrac / k;
  c.refresh = refresh;
  c.aa = 1;
  for (int i = 0; i < k; i++)
    c.rate[i] = rate;
  return c;
}

static int make_cells(const bopts_t *o, cell_t *cells) {
  int n = 0;
  if (strcmp(o->mode, "grid") == 0) {
    for (int a = 0; a < o->nrates; a++)
      for (int b = 0; b < o->nks; b++)
        for (int f = 0; f < o->nfloors; f++)
          for (int d = 0; d < o->nrefresh && n < MAX_CELLS; d++) {
            cells[n] = mk(OUT_BIN, o->rates[a], (int)o->ks[b], o->floors[f], (int)o->refresh[d]);
            cell_name(&cells[n]);
            n++;
          }
  } else if (strcmp(o->mode, "extra") == 0) {
    static const double sig[] = {1, 2};
    for (int i = 0; i < 2; i++)
      for (int kk = 3; kk <= 5; kk += 2) {
        cells[n] = mk(OUT_LOGN, 0, kk, 0.5, 100);
        cells[n].sigma = sig[i];
        cell_name(&cells[n]);
        n++;
      }
    static const double rates[] = {0.03, 0.1};
    for (int i = 0; i < 2; i++)
      for (int kk = 3; kk <= 5; kk += 2) {
        cells[n] = mk(OUT_BIN, rates[i], kk, 0.5, 100);
        cells[n].delay = 2000;
        cell_name(&cells[n]);
        n++;
      }
  } else if (strcmp(o->mode, "ab") == 0) {
    static const int ks[] = {3, 5};
    for (int i = 0; i < 2; i++) {
      cells[n] = mk(OUT_BIN, 0.10, ks[i], 0.1 * ks[i], 100);
      cells[n].rate[0] = 0.12;
      cells[n].aa = 0;
      snprintf(cells[n].name, sizeof cells[n].name, "ab_012_vs_010_k%d_f0.1", ks[i]);
      n++;
    }
    cells[n] = mk(OUT_BIN, 0.25, 3, 0.3, 100);
    cells[n].rate[0] = 0.3;
    cells[n].aa = 0;
    snprintf(cells[n].name, sizeof cells[n].name, "ab_030_vs_025_k3_f0.1");
    n++;
    /* deploy/quickstart's truth (0.40, 0.30, 0.22; floor 0.1) and test_gate_e2e's bandit
     * (0.38, 0.30, 0.05; floor 0.05): how many requests their stories need */
    cells[n] = mk(OUT_BIN, 0.30, 3, 0.3, 100);
    cells[n].rate[0] = 0.40, cells[n].rate[2] = 0.22, cells[n].aa = 0;
    snprintf(cells[n].name, sizeof cells[n].name, "ab_quickstart_040_030_022_f0.1");
    n++;
    cells[n] = mk(OUT_BIN, 0.30, 3, 0.15, 100);
    cells[n].rate[0] = 0.38, cells[n].rate[2] = 0.05, cells[n].aa = 0;
    snprintf(cells[n].name, sizeof cells[n].name, "ab_e2e_038_030_005_f0.05");
    n++;
  }
  int m = 0;
  for (int i = 0; i < n; i++)
    if (o->only[0] == '\0' || strstr(cells[i].name, o->only) != NULL ||
        (o->only[0] == '=' && strcmp(cells[i].name, o->only + 1) == 0))
      cells[m++] = cells[i];
  return m;
}

/* ---- workers ---- */

typedef struct shared_s {
  atomic_int next;
  rec_t rec[];
} shared_t;

static uint64_t derive(uint64_t seed, uint64_t a, uint64_t b) {
  sy_rng_t r;
  sy_rng_seed(&r, seed ^ (a * UINT64_C(0x9e3779b97f4a7c15)) ^ (b << 24) ^ 0xb4d17);
  return sy_rng_next(&r);
}

static void worker(const bopts_t *o, const cell_t *cells, int ncells, shared_t *sh) {
  run_t *s = malloc(sizeof *s);
  if (s == NULL)
    _exit(1);
  int per_cell = (o->reps + TASK_REPS - 1) / TASK_REPS, ntasks = ncells * per_cell;
  for (int t = atomic_fetch_add(&sh->next, 1); t < ntasks; t = atomic_fetch_add(&sh->next, 1)) {
    int ci = t / per_cell, r0 = (t % per_cell) * TASK_REPS;
    if (cells[ci].refused)
      continue;
    for (int r = r0; r < r0 + TASK_REPS && r < o->reps; r++)
      run_rep(&cells[ci], o, derive(o->seed, (uint64_t)ci + 1, (uint64_t)r), s,
              &sh->rec[(size_t)ci * (size_t)o->reps + (size_t)r]);
  }
  free(s);
  _exit(0);
}

static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int parse_list(char *v, double *out) {
  int n = 0;
  for (char *s = strtok(v, ","); s != NULL && n < 8; s = strtok(NULL, ","))
    out[n++] = strtod(s, NULL);
  return n;
}

static void bandit_usage(void) {
  fprintf(stderr, "usage: gate-sim bandit grid|extra|ab [--reps N] [--jobs J] [--seed S]\n"
                  "       [--rates L] [--ks L] [--floors L (x 1/K)] [--refresh L]\n"
                  "       [--only SUBSTRING|=NAME]"
                  " [--ymax Y] [--given-best 0|1]\n");
  exit(2);
}

static void parse(bopts_t *o, int argc, char **argv) {
  static const double rates[] = {0.01, 0.03, 0.1, 0.3, 0.5}, ks[] = {2, 3, 5, 10};
  static const double floors[] = {0, 0.1, 0.5, 1}, refresh[] = {100, 1000};
  memset(o, 0, sizeof *o);
  o->reps = 200;
  o->jobs = 2;
  o->seed = 1;
  o->ymax = 50;
  memcpy(o->rates, rates, sizeof rates);
  o->nrates = 5;
  memcpy(o->ks, ks, sizeof ks);
  o->nks = 4;
  memcpy(o->floors, floors, sizeof floors);
  o->nfloors = 4;
  memcpy(o->refresh, refresh, sizeof refresh);
  o->nrefresh = 2;
  if (argc < 1)
    bandit_usage();
  snprintf(o->mode, sizeof o->mode, "%s", argv[0]);
  for (int i = 1; i + 1 < argc + 1; i += 2) {
    if (i + 1 >= argc)
      bandit_usage();
    const char *a = argv[i];
    char *v = argv[i + 1];
    if (strcmp(a, "--reps") == 0)
      o->reps = atoi(v);
    else if (strcmp(a, "--jobs") == 0)
      o->jobs = atoi(v);
    else if (strcmp(a, "--seed") == 0)
      o->seed = strtoull(v, NULL, 0);
    else if (strcmp(a, "--given-best") == 0)
      o->given_best = atoi(v);
    else if (strcmp(a, "--ymax") == 0)
      o->ymax = strtod(v, NULL);
    else if (strcmp(a, "--only") == 0)
      snprintf(o->only, sizeof o->only, "%s", v);
    else if (strcmp(a, "--rates") == 0)
      o->nrates = parse_list(v, o->rates);
    else if (strcmp(a, "--ks") == 0)
      o->nks = parse_list(v, o->ks);
    else if (strcmp(a, "--floors") == 0)
      o->nfloors = parse_list(v, o->floors);
    else if (strcmp(a, "--refresh") == 0)
      o->nrefresh = parse_list(v, o->refresh);
    else
      bandit_usage();
  }
  if (o->reps < 1 || o->jobs < 1 || o->jobs > 64)
    bandit_usage();
}

static void report_cell(const bopts_t *o, const cell_t *c, const rec_t *rec, double *worst,
                        double *worst_se, const char **worst_name) {
  if (c->refused) {
    printf("%s_refused=1\n", c->name);
    return;
  }
  int fd = 0, br = 0, win = 0, right = 0, srm = 0;
  double *req = malloc((size_t)o->reps * sizeof *req);
  double horizon = (double)c->k * PER_ARM_MAX;
  for (int i = 0; i < o->reps; i++) {
    fd += rec[i].false_decision;
    br += rec[i].best_removed;
    win += rec[i].winner != 0;
    right += rec[i].winner == 1;
    srm += rec[i].srm;
    req[i] = rec[i].winner ? rec[i].winner_req : horizon;
  }
  double n = o->reps;
  printf("%s_srm_halt_rate=%.4f\n", c->name, srm / n);
  if (c->aa) {
    double rate = fd / n, se = sqrt(rate * (1 - rate) / n);
    printf("%s_false_decision_rate=%.4f\n%s_false_decision_se=%.4f\n", c->name, rate, c->name,
           se);
    if (rate > *worst) {
      *worst = rate;
      *worst_se = se;
      *worst_name = c->name;
    }
  } else {
    qsort(req, (size_t)o->reps, sizeof *req, cmp_dbl);
    double med = o->reps % 2 ? req[o->reps / 2] : 0.5 * (req[o->reps / 2 - 1] + req[o->reps / 2]);
    printf("%s_best_removed_rate=%.4f\n%s_winner_rate=%.4f\n%s_winner_is_best_rate=%.4f\n",
           c->name, br / n, c->name, win / n, c->name, right / n);
    printf("%s_median_requests_to_winner=%.0f\n", c->name, med);
  }
  free(req);
}

/* `gate-sim bandit ...`: argv[0] is the mode. Returns the exit status. */
int sy__gate_sim_bandit(int argc, char **argv) {
  bopts_t o;
  parse(&o, argc, argv);
  cell_t *cells = calloc(MAX_CELLS, sizeof *cells);
  int ncells = make_cells(&o, cells);
  if (ncells == 0)
    bandit_usage();
  for (int i = 0; i < ncells; i++) {
    sy_gate_params_t p;
    cell_params(&cells[i], &o, &p);
    cells[i].refused = sy_gate_params_check(&p) != NULL || refused(&p);
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  size_t size = sizeof(shared_t) + (size_t)ncells * (size_t)o.reps * sizeof(rec_t);
  shared_t *sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED)
    return 1;
  atomic_init(&sh->next, 0);
  fflush(stdout);
  pid_t pids[64];
  int ok = 1;
  for (int j = 0; j < o.jobs; j++)
    if ((pids[j] = fork()) == 0)
      worker(&o, cells, ncells, sh);
  for (int j = 0; j < o.jobs; j++) {
    int st;
    ok &= waitpid(pids[j], &st, 0) == pids[j] && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  if (!ok) {
    fprintf(stderr, "gate-sim bandit: a worker failed\n");
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("mode=%s\nreps=%d\nseed=%llu\nlook_every_requests=%d\nmax_per_arm=%d\ngiven_best=%d\n",
         o.mode, o.reps, (unsigned long long)o.seed, LOOK_EVERY, PER_ARM_MAX, o.given_best);
  double worst = -1, worst_se = NAN;
  const char *worst_name = "none";
  for (int i = 0; i < ncells; i++)
    report_cell(&o, &cells[i], &sh->rec[(size_t)i * (size_t)o.reps], &worst, &worst_se,
                &worst_name);
  printf("wall_s=%.1f\n", (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
  if (worst >= 0)
    printf("bandit_aa_worst_cell=%s\nbandit_aa_false_decision_rate=%.4f "
           "bandit_aa_false_decision_se=%.4f\n",
           worst_name, worst, worst_se);
  munmap(sh, size);
  free(cells);
  return 0;
}
