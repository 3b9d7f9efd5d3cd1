/*
 * summary.h — the statistics behind `switchyard status`: per-variant totals as Redis
 * keeps them (proto/KEYS.md, `sy:{E}:v:V`, with the latency histogram whose quantiles
 * policies/lathist.h reads), the outcome mean with a 95% interval, and P(best) by Monte
 * Carlo.
 *
 * Pure: no I/O, no allocation that outlives a call. The caller reads the hashes and
 * hands the field/value strings to sy_varstats_from_hash.
 */
#ifndef SY_SUMMARY_H
#define SY_SUMMARY_H

#include <stddef.h>

#include "proto/latency.h"

typedef struct sy_varstats_s {
  char id[128];
  double requests, errors, n, sum, sumsq, outcomes, missing_failures;
  double retried, fallbacks; /* responses after retries; given by the variant's fallback */
  double lat[SY_LAT_BUCKETS]; /* histogram counts for the buckets of proto/latency.h */
  double lat_ms_sum, tokens_in, tokens_out;
  double share;               /* the policy's traffic share, 0..1; -1 if unknown */
} sy_varstats_t;

typedef struct sy_interval_s {
  double mean, lo, hi;
} sy_interval_t;

/*
 * The outcome mean of a variant with a 95% interval, from v->n, v->sum, v->sumsq
 * (n may be fractional: proxy feedback is weighted).
 *   binary (continuous == 0): the posterior Beta(1 + sum, 1 + n - sum) of the uniform prior;
 *     mean = its mean, [lo, hi] = its equal-tailed 95% credible interval. With n == 0 this
 *     is the prior itself: 0.5 [0.025, 0.975] (honest: nothing is known yet). sum is
 *     clamped to [0, n].
 *   continuous: the sample mean sum / n and mean ± t(0.975, n - 1) · s / √n, with
 *     s² = (sumsq - sum²/n) / (n - 1) (clamped at 0). n <= 0: all fields NAN;
 *     0 < n < 2: mean only, lo and hi NAN.
 */
sy_interval_t sy_outcome_interval(const sy_varstats_t *v, int continuous);

/*
 * P(best) of each of the k variants v[0..k): the share of `draws` joint posterior draws
 * in which the variant's draw is the highest (minimise == 1: the lowest). Ties split the
 * credit evenly, so the p[i] sum to 1.
 *   binary: draws from Beta(1 + sum, 1 + n - sum).
 *   continuous with n >= 2: draws from Normal(mean, s² / n) (the large-sample posterior
 *     of the mean under a flat prior). With n < 2 the variant's mean is unknown and it
 *     draws from a vague Normal(m0, (10 s0)²): m0 and s0 are the mean and standard
 *     deviation of all variants' observations pooled (s0 = max(1, |m0|) when the pooled
 *     standard deviation is 0 or unknown). So an arm without data is neither sure best
 *     nor sure worst.
 * The generator is GSL's mt19937 seeded with `seed`, so equal inputs give equal p.
 * draws == 0 (or no memory) writes NAN into every p[i]. k == 0 writes nothing.
 */
void sy_prob_best(const sy_varstats_t *v, size_t k, int continuous, int minimise, unsigned draws,
                  unsigned long seed, double *p);

/*
 * Fills v from the field/value strings of an HGETALL of `sy:{E}:v:V` (KEYS.md): fields
 * requests, errors, n, sum, sumsq, outcomes, missing_failures, lat_ms_sum, tokens_in,
 * tokens_out and the latency buckets' fields (sy_lat_fields: "lat:1" ... "lat:inf").
 * v->id is left as it is; every other field is reset first (counts to 0, share to -1, the
 * share lives in the meta hash). Unknown fields and values that are not finite decimal
 * numbers are ignored.
 */
void sy_varstats_from_hash(sy_varstats_t *v, const char *const *fields, const char *const *values,
                           size_t nfields);

#endif
