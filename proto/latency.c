/*
 * latency.c — the latency buckets of latency.h.
 */
#include "proto/latency.h"

#include <math.h>

const double sy_lat_bounds[SY_LAT_BUCKETS] = {1,   2,    5,    10,   20,    50,    100,   200,
                                              500, 1000, 2000, 5000, 10000, 30000, 60000, INFINITY};

const char *const sy_lat_fields[SY_LAT_BUCKETS] = {
    "lat:1",     "lat:2",     "lat:5",     "lat:10",   "lat:20",   "lat:50",
    "lat:100",   "lat:200",   "lat:500",   "lat:1000", "lat:2000", "lat:5000",
    "lat:10000", "lat:30000", "lat:60000", "lat:inf"};

size_t sy_lat_bucket(double ms) {
  size_t i = 0;
  while (i < SY_LAT_BUCKETS - 1 && !(ms <= sy_lat_bounds[i]))
    i++;
  return i;
}
