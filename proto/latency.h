/*
 * latency.h — the latency buckets, the one definition every layer uses: the gate's
 * histograms (policies/gate.h, lathist.h), the `lat:B` fields of the variant hash
 * (proto/KEYS.md, written by router/events.c and read by stats/summary.c and the gate),
 * and the Prometheus duration histograms (router/metrics.c, in seconds).
 *
 * Bucket i holds latencies in (sy_lat_bounds[i-1], sy_lat_bounds[i]] ms, the first from
 * 0 and the last, +inf, everything above 60,000 ms. Pure data and one pure function.
 */
#ifndef SY_LATENCY_H
#define SY_LATENCY_H

#include <stddef.h>

#define SY_LAT_BUCKETS 16

/* Upper bounds (ms, inclusive): 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000,
 * 10000, 30000, 60000, INFINITY. */
extern const double sy_lat_bounds[SY_LAT_BUCKETS];

/* The bucket's field in the variant hash (KEYS.md): "lat:1" ... "lat:60000", "lat:inf". */
extern const char *const sy_lat_fields[SY_LAT_BUCKETS];

/* The bucket of ms: the first i with ms <= sy_lat_bounds[i]. Negative ms goes to bucket 0,
 * NaN to the last. */
size_t sy_lat_bucket(double ms);

#endif
