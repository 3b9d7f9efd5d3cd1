/*
 * summary.c — per-variant summary statistics for `switchyard status` (see summary.h):
 * outcome intervals, P(best) by Monte Carlo, and parsing of the `sy:{E}:v:V` hash.
 * Pure: no I/O; the only allocation is the GSL generator and a scratch array inside
 * sy_prob_best, both freed before it returns.
 */
#include "stats/summary.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

/*
 * The Beta quantiles are computed here, not with gsl_cdf_beta_Pinv: its Newton steps
 * fail to converge for counts a live experiment reaches (Beta(3, 1e6), i.e. 2 of a
 * million; Beta(1001, 999001)), and GSL's default error handler then aborts the
 * process (the router too: its admin API runs this), or it runs for longer than
 * 30 s (Beta(1e6, 1e6)).
 */

/* The continued fraction of the regularised incomplete beta function (modified
 * Lentz), converging fast for x < (a + 1) / (a + b + 2). */
static double beta_cf(double a, double b, double x) {
  const double tiny = 1e-300;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  d = 1 / (fabs(d) < tiny ? tiny : d);
  double h = d;
  for (int m = 1; m <= 20000; m++) {
    for (int odd = 0; odd < 2; odd++) {
      double aa = odd ? -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1 + 2 * m))
                      : m * (b - m) * x / ((a - 1 + 2 * m) * (a + 2 * m));
      d = 1 + aa * d;
      d = 1 / (fabs(d) < tiny ? tiny : d);
      c = 1 + aa / c;
      c = fabs(c) < tiny ? tiny : c;
      h *= d * c;
      if (odd && fabs(d * c - 1) < 1e-15)
        return h;
    }
  }
  return h;
}

/* P(X <= x) for X ~ Beta(a, b), a, b >= 1 and a + b <= 1e10 (lgamma stays precise). */
static double beta_cdf(double x, double a, double b) {
  if (x <= 0)
    return 0;
  if (x >= 1)
    return 1;
  int sg;
  double lbt = lgamma_r(a + b, &sg) - lgamma_r(a, &sg) - lgamma_r(b, &sg) + a * log(x) +
               b * log1p(-x);
  if (x < (a + 1) / (a + b + 2))
    return exp(lbt) * beta_cf(a, b, x) / a;
  return 1 - exp(lbt) * beta_cf(b, a, 1 - x) / b;
}

/* Quantile p of Beta(a, b), a, b >= 1, in [0, 1]: bisection of the CDF; when both
 * shapes are large (or the counts are beyond lgamma's precision) the normal
 * approximation with the Cornish-Fisher skewness term, which is then exact to
 * display precision. */
static double beta_quantile(double p, double a, double b) {
  double t = a + b, m = a / t;
  if ((a > 1e5 && b > 1e5) || t > 1e10) {
    double z = p < 0.5 ? -1.959963984540054 : 1.959963984540054; /* p = 0.025, 0.975 */
    double v = m * (1 - m), sd = sqrt(v / (t + 1));
    double skew = 2 * (1 - 2 * m) * sqrt(t + 1) / ((t + 2) * sqrt(v));
    double q = m + sd * (z + skew / 6 * (z * z - 1));
    return !isfinite(q) ? m : q < 0 ? 0 : q > 1 ? 1 : q;
  }
  double lo = 0, hi = 1;
  for (int i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
    double mid = lo + (hi - lo) / 2;
    if (beta_cdf(mid, a, b) < p)
      lo = mid;
    else
      hi = mid;
  }
  return lo + (hi - lo) / 2;
}

static sy_interval_t binary_interval(double n, double sum) {
  if (!(n > 0))
    n = 0;
  double s = sum < 0 ? 0 : (sum > n ? n : sum);
  double a = 1 + s, b = 1 + n - s;
  sy_interval_t r = {a / (a + b), beta_quantile(0.025, a, b), beta_quantile(0.975, a, b)};
  /* The mean always lies between the two; keep it so where rounding says otherwise. */
  r.lo = r.lo < r.mean ? r.lo : r.mean;
  r.hi = r.hi > r.mean ? r.hi : r.mean;
  return r;
}

/* Sample variance of weighted totals (n as the number of observations), clamped at 0. */
static double sample_var(double n, double sum, double sumsq) {
  double ss = sumsq - sum * sum / n;
  return ss > 0 ? ss / (n - 1) : 0;
}

static sy_interval_t continuous_interval(double n, double sum, double sumsq) {
  sy_interval_t r = {NAN, NAN, NAN};
  if (!(n > 0))
    return r;
  r.mean = sum / n;
  if (n < 2)
    return r;
  double half = gsl_cdf_tdist_Pinv(0.975, n - 1) * sqrt(sample_var(n, sum, sumsq) / n);
  r.lo = r.mean - half;
  r.hi = r.mean + half;
  return r;
}

sy_interval_t sy_outcome_interval(const sy_varstats_t *v, int continuous) {
  return continuous ? continuous_interval(v->n, v->sum, v->sumsq) : binary_interval(v->n, v->sum);
}

/* One posterior family per variant, fixed before the draws. */
typedef struct arm_s {
  int beta;          /* 1: Beta(a, b); 0: Normal(a, b) with b the standard deviation */
  double a, b;
} arm_t;

static void continuous_arms(const sy_varstats_t *v, size_t k, arm_t *arms) {
  double N = 0, S = 0, SS = 0;
  for (size_t i = 0; i < k; i++) {
    if (v[i].n > 0) {
      N += v[i].n;
      S += v[i].sum;
      SS += v[i].sumsq;
    }
  }
  double m0 = N > 0 ? S / N : 0;
  double s0 = N >= 2 ? sqrt(sample_var(N, S, SS)) : 0;
  if (!(s0 > 0))
    s0 = fabs(m0) > 1 ? fabs(m0) : 1;
  for (size_t i = 0; i < k; i++) {
    arms[i].beta = 0;
    if (v[i].n >= 2) {
      arms[i].a = v[i].sum / v[i].n;
      arms[i].b = sqrt(sample_var(v[i].n, v[i].sum, v[i].sumsq) / v[i].n);
    } else {
      arms[i].a = m0;
      arms[i].b = 10 * s0;
    }
  }
}

static void binary_arms(const sy_varstats_t *v, size_t k, arm_t *arms) {
  for (size_t i = 0; i < k; i++) {
    double n = v[i].n > 0 ? v[i].n : 0;
    double s = v[i].sum < 0 ? 0 : (v[i].sum > n ? n : v[i].sum);
    arms[i].beta = 1;
    arms[i].a = 1 + s;
    arms[i].b = 1 + n - s;
  }
}

static double arm_draw(const arm_t *arm, gsl_rng *rng) {
  if (arm->beta)
    return gsl_ran_beta(rng, arm->a, arm->b);
  return arm->a + gsl_ran_gaussian(rng, arm->b);
}

/* One joint draw: credits the best arm (ties split evenly) in wins[]. x is scratch. */
static void one_round(const arm_t *arms, size_t k, int minimise, gsl_rng *rng, double *x,
                      double *wins) {
  double best = 0;
  for (size_t i = 0; i < k; i++) {
    x[i] = arm_draw(&arms[i], rng);
    if (minimise)
      x[i] = -x[i];
    if (i == 0 || x[i] > best)
      best = x[i];
  }
  size_t ties = 0;
  for (size_t i = 0; i < k; i++)
    ties += x[i] == best;
  for (size_t i = 0; i < k; i++)
    if (x[i] == best)
      wins[i] += 1.0 / (double)ties;
}

void sy_prob_best(const sy_varstats_t *v, size_t k, int continuous, int minimise, unsigned draws,
                  unsigned long seed, double *p) {
  if (k == 0)
    return;
  arm_t *arms = calloc(k, sizeof(*arms));
  double *x = calloc(k, sizeof(*x));
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  for (size_t i = 0; i < k; i++)
    p[i] = draws == 0 || !arms || !x || !rng ? NAN : 0;
  if (draws > 0 && arms && x && rng) {
    gsl_rng_set(rng, seed);
    if (continuous)
      continuous_arms(v, k, arms);
    else
      binary_arms(v, k, arms);
    for (unsigned d = 0; d < draws; d++)
      one_round(arms, k, minimise, rng, x, p);
    for (size_t i = 0; i < k; i++)
      p[i] /= draws;
  }
  if (rng)
    gsl_rng_free(rng);
  free(x);
  free(arms);
}

/* Parses a whole finite decimal number; returns 0 and leaves *out alone otherwise. */
static int parse_num(const char *s, double *out) {
  if (!s || !*s)
    return 0;
  char *end;
  double d = strtod(s, &end);
  if (*end != '\0' || !isfinite(d))
    return 0;
  *out = d;
  return 1;
}

/* The double that hash field `f` names in v, or NULL. */
static double *field_slot(sy_varstats_t *v, const char *f) {
  static const struct {
    const char *name;
    size_t off;
  } map[] = {
      {"requests", offsetof(sy_varstats_t, requests)},
      {"errors", offsetof(sy_varstats_t, errors)},
      {"retried", offsetof(sy_varstats_t, retried)},
      {"fallbacks", offsetof(sy_varstats_t, fallbacks)},
      {"n", offsetof(sy_varstats_t, n)},
      {"sum", offsetof(sy_varstats_t, sum)},
      {"sumsq", offsetof(sy_varstats_t, sumsq)},
      {"outcomes", offsetof(sy_varstats_t, outcomes)},
      {"missing_failures", offsetof(sy_varstats_t, missing_failures)},
      {"lat_ms_sum", offsetof(sy_varstats_t, lat_ms_sum)},
      {"tokens_in", offsetof(sy_varstats_t, tokens_in)},
      {"tokens_out", offsetof(sy_varstats_t, tokens_out)},
  };
  if (strncmp(f, "lat:", 4) == 0) {
    for (int i = 0; i < SY_LAT_BUCKETS; i++)
      if (strcmp(f, sy_lat_fields[i]) == 0)
        return &v->lat[i];
    return NULL;
  }
  for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
    if (strcmp(f, map[i].name) == 0)
      return (double *)((char *)v + map[i].off);
  return NULL;
}

void sy_varstats_from_hash(sy_varstats_t *v, const char *const *fields, const char *const *values,
                           size_t nfields) {
  char id[sizeof(v->id)];
  memcpy(id, v->id, sizeof(id));
  memset(v, 0, sizeof(*v));
  memcpy(v->id, id, sizeof(id));
  v->share = -1;
  for (size_t i = 0; i < nfields; i++) {
    if (!fields[i])
      continue;
    double *slot = field_slot(v, fields[i]);
    if (slot)
      parse_num(values[i], slot);
  }
}
