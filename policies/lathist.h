/*
 * lathist.h — latency histograms read as a continuous survival curve, and the one
 * latency quantile switchyard reports: the gate's p95 guardrail (gate.h), `switchyard
 * status` (text and JSON), the admin API and the dashboard all call sy_lat_quantile, so
 * the p95 an operator reads is the p95 the gate acted on.
 *
 * A histogram is SY_LAT_BUCKETS counts over the buckets of proto/latency.h. The curve
 * S(x) = P(latency > x) is a monotone cubic (PCHIP) of log S over log x through the
 * bucket bounds (lathist.c says why: the gate's guardrail test needs it). Pure: no I/O,
 * no allocation. Counts that are negative or NaN count as 0 (the gate refuses such arms
 * before it reads a curve; a reporter shows what the valid counts say); a histogram with
 * an infinite count has no curve.
 */
#ifndef SY_LATHIST_H
#define SY_LATHIST_H

#include "proto/latency.h"

/* The q-quantile (0 < q < 1) of the histogram, ms, from its survival curve; a quantile in
 * the +inf bucket is its lower bound, 60,000. NaN for an empty histogram (or one without
 * a curve) or q outside (0, 1). */
double sy_lat_quantile(const double *hist, double q);

/* The fraction of the histogram above ms on the same curve; everything in the +inf bucket
 * counts as above any ms in it. NaN for an empty histogram or NaN ms. */
double sy_lat_frac_above(const double *hist, double ms);

/* The density of ln(latency) at ms, -dS/d(ln ms) on the same curve; NaN outside
 * (1 ms, 60,000 ms] (no curve there to differentiate) or for an empty histogram. */
double sy_lat_log_density(const double *hist, double ms);

#endif
