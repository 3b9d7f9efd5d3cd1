/*
 * ope.c — build/bench/ope-sim (run by bench/ope): how well the off-policy estimators of policies/ope.h cover a known
 * truth on logs like the router's.
 *
 * Each replication simulates one experiment's log: K Bernoulli arms with known rates; the
 * router's own Thompson sampling policy (policies/thompson.c: Beta(1, 1) priors, the
 * exploration floor, Monte Carlo propensities, an arm drawn with its cached propensity so
 * that the logged propensity is exactly the probability it was chosen with) picks each
 * request's arm; the posterior is updated in batches (the router applies outcomes as its
 * statistics sync brings them, not one by one). Every row logs (arm, propensity, reward).
 * Then each target policy is evaluated on the log with IPS, SNIPS and DR, and its 95%
 * intervals are checked against the truth, sum_a pi(a) rate(a) (for greedy, cross-fitted,
 * the truth of the policy it actually judged: the mean over rows of the rate of the arm
 * their fold was judged against).
 *
 * The logs are adaptive (each propensity depends on earlier rewards), which the normal
 * intervals do not model; with no floor, arms that fall behind get propensities near 0 and
 * the intervals for targets that favour them under-cover. So the bench runs the configured
 * floor (default 0.05, the examples' value) and, for comparison, floor 0.
 *
 * Output: `name=value` lines, the settings first, then per floor setting and target policy
 * ope_coverage_{ips,snips,dr}_<target>, ope_bias_*, ope_ci_width_*, the coverage over the
 * runs where evaluate raised no warning (_unwarned) and the fraction of runs it warned on,
 * the mean ESS and the smallest logged propensity; the headline ope_coverage_{ips,snips,dr}= and ope_ci_width_*=
 * are over all (target, replication) pairs of the configured floor, ope_bias_*= is the mean
 * over targets of each target's |bias|. Export throughput is not
 * this program's: bench/events and the exporter's own bench measure it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policies/ope.h"
#include "policies/policy.h"
#include "policies/rng.h"
#include "policies/thompson.h"

#define MAX_K 16
#define NTARGETS 5

typedef struct bench_opts_s {
  double rates[MAX_K];
  size_t k;
  size_t n, reps, batch;
  double floor;
  unsigned draws;
  uint64_t seed;
} bench_opts_t;

/* Accumulated over replications for one (floor, target, estimator). */
typedef struct acc_s {
  double cover, bias, width, count;
} acc_t;

typedef struct target_res_s {
  acc_t est[3];      /* ips, snips, dr */
  acc_t unwarned[3]; /* the same over the runs where evaluate raised no warning */
  double ess, minp, runs, warned;
} target_res_t;

static const char *const target_names[NTARGETS] = {"uniform", "always_best", "always_worst",
                                                   "split", "greedy"};
static const char *const est_names[3] = {"ips", "snips", "dr"};

static void usage(void) {
  fputs("usage: ope-sim [--rates R,R,...] [--n ROWS] [--reps N] [--batch B] [--floor F]\n"
        "           [--draws D] [--seed S]\n"
        "defaults: --rates 0.2,0.35,0.5,0.55 --n 2000 --reps 2000 --batch 100 --floor 0.05\n"
        "          --draws 1000 --seed 1\n",
        stderr);
}

static int parse_opts(int argc, char **argv, bench_opts_t *o) {
  *o = (bench_opts_t){{0.2, 0.35, 0.5, 0.55}, 4, 2000, 2000, 100, 0.05, 1000, 1};
  for (int i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL) {
      usage();
      return -1;
    }
    if (strcmp(argv[i], "--rates") == 0) {
      o->k = 0;
      for (char *s = (char *)v, *end; *s && o->k < MAX_K; s = *end ? end + 1 : end) {
        o->rates[o->k++] = strtod(s, &end);
        if (end == s)
          return usage(), -1;
      }
    } else if (strcmp(argv[i], "--n") == 0) {
      o->n = strtoul(v, NULL, 10);
    } else if (strcmp(argv[i], "--reps") == 0) {
      o->reps = strtoul(v, NULL, 10);
    } else if (strcmp(argv[i], "--batch") == 0) {
      o->batch = strtoul(v, NULL, 10);
    } else if (strcmp(argv[i], "--floor") == 0) {
      o->floor = strtod(v, NULL);
    } else if (strcmp(argv[i], "--draws") == 0) {
      o->draws = (unsigned)strtoul(v, NULL, 10);
    } else if (strcmp(argv[i], "--seed") == 0) {
      o->seed = strtoull(v, NULL, 10);
    } else {
      usage();
      return -1;
    }
    i++;
  }
  if (o->k < 2 || o->n < 10 || o->reps < 1 || o->batch < 1 || o->floor * (double)o->k > 1) {
    usage();
    return -1;
  }
  return 0;
}

/* One Thompson-sampled log of o->n rows into rows; 0, or -1 if the policy failed. */
static int simulate(const bench_opts_t *o, double floor, sy_rng_t *rng, sy_ope_row_t *rows) {
  sy_ts_conf_t c;
  sy_ts_conf_default(&c, SY_OUTCOME_BINARY);
  c.floor = floor;
  c.propensity_draws = o->draws;
  c.mc_seed = sy_rng_next(rng);
  sy_policy_t *p = sy_policy_thompson_new(&c, o->k);
  if (p == NULL)
    return -1;
  sy_arm_stats_t inc[MAX_K];
  memset(inc, 0, sizeof inc);
  for (size_t i = 0; i < o->n; i++) {
    sy_choice_t ch = sy_policy_choose(p, NULL, rng);
    double y = sy_rng_uniform(rng) < o->rates[ch.arm] ? 1 : 0;
    rows[i] = (sy_ope_row_t){ch.arm, ch.propensity, y};
    inc[ch.arm].n += 1;
    inc[ch.arm].sum += y;
    if ((i + 1) % o->batch == 0) {
      sy_policy_add(p, inc);
      memset(inc, 0, sizeof inc);
    }
  }
  sy_policy_destroy(p);
  return 0;
}

/* The target policies: their pi over the arms, and the arm indices of best and worst. */
static void make_targets(const bench_opts_t *o, sy_ope_target_t *t) {
  size_t best = 0, worst = 0;
  for (size_t a = 1; a < o->k; a++) {
    if (o->rates[a] > o->rates[best])
      best = a;
    if (o->rates[a] < o->rates[worst])
      worst = a;
  }
  for (int j = 0; j < NTARGETS; j++) {
    memset(&t[j], 0, sizeof t[j]);
    t[j].narms = o->k;
    t[j].kind = j == 4 ? SY_OPE_GREEDY : SY_OPE_SPLIT;
  }
  for (size_t a = 0; a < o->k; a++)
    t[0].pi[a] = 1.0 / (double)o->k;
  t[1].pi[best] = 1;
  t[2].pi[worst] = 1;
  t[3].pi[best] = 0.7; /* split:best=70,worst=30 */
  t[3].pi[worst] = 0.3;
}

static double truth_of(const bench_opts_t *o, const sy_ope_target_t *t,
                       const sy_ope_result_t *r) {
  if (t->kind == SY_OPE_GREEDY) {
    double n0 = (double)((o->n + 1) / 2), n1 = (double)(o->n / 2);
    return (n0 * o->rates[r->greedy_fold[0]] + n1 * o->rates[r->greedy_fold[1]]) / (n0 + n1);
  }
  double v = 0;
  for (size_t a = 0; a < o->k; a++)
    v += t->pi[a] * o->rates[a];
  return v;
}

static void add(acc_t *a, const sy_ope_est_t *e, double truth) {
  if (!isfinite(e->value) || !isfinite(e->se))
    return;
  a->cover += e->lo <= truth && truth <= e->hi;
  a->bias += e->value - truth;
  a->width += e->hi - e->lo;
  a->count += 1;
}

/* Runs every replication at one floor into res[NTARGETS]. */
static int run_floor(const bench_opts_t *o, double floor, uint64_t seed, target_res_t *res) {
  sy_ope_row_t *rows = malloc(o->n * sizeof *rows);
  sy_ope_target_t t[NTARGETS];
  sy_ope_opts_t oo;
  sy_ope_opts_default(&oo);
  make_targets(o, t);
  memset(res, 0, NTARGETS * sizeof *res);
  sy_rng_t rng;
  sy_rng_seed(&rng, seed);
  char err[256];
  for (size_t rep = 0; rep < o->reps; rep++) {
    if (rows == NULL || simulate(o, floor, &rng, rows) < 0) {
      free(rows);
      return -1;
    }
    for (int j = 0; j < NTARGETS; j++) {
      sy_ope_result_t r;
      if (sy_ope_evaluate(rows, o->n, &t[j], &oo, &r, err, sizeof err) < 0) {
        fprintf(stderr, "ope: %s\n", err);
        free(rows);
        return -1;
      }
      double truth = truth_of(o, &t[j], &r);
      add(&res[j].est[0], &r.ips, truth);
      add(&res[j].est[1], &r.snips, truth);
      add(&res[j].est[2], &r.dr, truth);
      if (r.warnings == 0) {
        add(&res[j].unwarned[0], &r.ips, truth);
        add(&res[j].unwarned[1], &r.snips, truth);
        add(&res[j].unwarned[2], &r.dr, truth);
      } else {
        res[j].warned += 1;
      }
      res[j].ess += r.ess;
      if (res[j].runs == 0 || r.min_p < res[j].minp)
        res[j].minp = r.min_p;
      res[j].runs += 1;
    }
  }
  free(rows);
  return 0;
}

static void print_floor(const char *suffix, const target_res_t *res) {
  for (int j = 0; j < NTARGETS; j++) {
    for (int e = 0; e < 3; e++) {
      const acc_t *a = &res[j].est[e];
      double c = a->count > 0 ? a->count : NAN;
      printf("ope_coverage_%s_%s%s=%.4f\n", est_names[e], target_names[j], suffix, a->cover / c);
      printf("ope_bias_%s_%s%s=%.5f\n", est_names[e], target_names[j], suffix, a->bias / c);
      printf("ope_ci_width_%s_%s%s=%.4f\n", est_names[e], target_names[j], suffix, a->width / c);
    }
    for (int e = 0; e < 3; e++)
      printf("ope_coverage_%s_%s_unwarned%s=%.4f\n", est_names[e], target_names[j], suffix,
             res[j].unwarned[e].count > 0 ? res[j].unwarned[e].cover / res[j].unwarned[e].count
                                          : NAN);
    printf("ope_warned_fraction_%s%s=%.4f\n", target_names[j], suffix,
           res[j].warned / res[j].runs);
    printf("ope_ess_%s%s=%.1f\n", target_names[j], suffix, res[j].ess / res[j].runs);
    printf("ope_min_propensity_%s%s=%.3g\n", target_names[j], suffix, res[j].minp);
  }
}

int main(int argc, char **argv) {
  bench_opts_t o;
  if (parse_opts(argc, argv, &o) < 0)
    return 2;
  printf("ope_arms=%zu\nope_rates=", o.k);
  for (size_t a = 0; a < o.k; a++)
    printf("%s%g", a ? "," : "", o.rates[a]);
  printf("\nope_rows=%zu\nope_reps=%zu\nope_batch=%zu\nope_floor=%g\nope_propensity_draws=%u\n"
         "ope_seed=%llu\nope_targets=uniform,always_best,always_worst,split(best=70,worst=30),"
         "greedy(cross-fitted)\n",
         o.n, o.reps, o.batch, o.floor, o.draws, (unsigned long long)o.seed);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  target_res_t res[NTARGETS], res0[NTARGETS];
  if (run_floor(&o, o.floor, o.seed, res) < 0 ||
      (o.floor > 0 && run_floor(&o, 0, o.seed, res0) < 0)) {
    fprintf(stderr, "ope: simulation failed\n");
    return 1;
  }
  print_floor("", res);
  if (o.floor > 0)
    print_floor("_floor0", res0);
  for (int e = 0; e < 3; e++) {
    acc_t all = {0, 0, 0, 0};
    for (int j = 0; j < NTARGETS; j++) {
      all.cover += res[j].est[e].cover;
      all.bias += fabs(res[j].est[e].bias / res[j].est[e].count);
      all.width += res[j].est[e].width;
      all.count += res[j].est[e].count;
    }
    printf("ope_coverage_%s=%.4f\n", est_names[e], all.cover / all.count);
    printf("ope_bias_%s=%.5f\n", est_names[e], all.bias / NTARGETS);
    printf("ope_ci_width_%s=%.4f\n", est_names[e], all.width / all.count);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("ope_seconds=%.1f\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  return 0;
}
