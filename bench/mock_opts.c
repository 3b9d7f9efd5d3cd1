/*
 * mock_opts.c — bench/mock-llm's command line (mock_opts.h).
 */
#include "mock_opts.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- command line ------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f,
    "usage: mock-llm --port N [--host 127.0.0.1] [--latency-ms N] [--chunks N]\n"
    "                [--interval-ms N] [--error-rate P] [--error-status N]\n"
    "                [--reset-after K] [--seed S] [--name NAME] [--outcome-rate P]\n"
    "                [--retry-after S]\n"
    "--reset-after -2 (or x-mock-reset-after: -2) resets before any response byte;\n"
    "--retry-after S adds Retry-After: S to error responses\n"
    "endpoints: POST /v1/chat/completions, POST /v1/completions, GET /health, GET /stats\n"
    "per-request headers: x-mock-latency-ms, x-mock-chunks, x-mock-interval-ms,\n"
    "  x-mock-status, x-mock-reset-after, x-mock-close: 1, x-mock-echo: 1,\n"
    "  x-mock-digest: 1 (the answer carries the request body's length and SHA-256)\n");
}

static bool opt_long(const char *arg, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(arg, &end, 10);
  if (errno || end == arg || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

static bool valid_name(const char *n) {
  size_t len = strlen(n);
  if (len == 0 || len > 64) return false;
  for (size_t i = 0; i < len; i++)
    if (n[i] < 0x21 || n[i] > 0x7e) return false;
  return true;
}

static bool parse_opt(mock_opts_t *o, int ch, const char *arg) {
  long v;
  char *end;
  switch (ch) {
  case 'p': return opt_long(arg, 0, 65535, &v) && ((o->port = (int)v), true);
  case 'H': o->host = arg; return true;
  case 'l': return opt_long(arg, 0, MOCK_MAX_MS, &v) && ((o->dflt.latency_ms = (int)v), true);
  case 'c': return opt_long(arg, 0, MOCK_MAX_CHUNKS, &v) && ((o->dflt.chunks = (int)v), true);
  case 'i': return opt_long(arg, 0, MOCK_MAX_MS, &v) && ((o->dflt.interval_ms = (int)v), true);
  case 's': return opt_long(arg, 400, 599, &v) && ((o->error_status = (int)v), true);
  case 'r':
    return opt_long(arg, -2, MOCK_MAX_CHUNKS, &v) && ((o->dflt.reset_after = (int)v), true);
  case 'R': o->retry_after = arg; return opt_long(arg, 0, 86400, &v);
  case 'S': return opt_long(arg, 0, LONG_MAX, &v) && ((o->seed = (uint64_t)v), true);
  case 'n': o->name = arg; return valid_name(arg);
  case 'e':
    o->error_rate = strtod(arg, &end);
    return end != arg && !*end && o->error_rate >= 0 && o->error_rate <= 1;
  case 'o': {
    double p = strtod(arg, &end);
    o->outcome_rate = arg;
    return end != arg && !*end && p >= 0 && p <= 1;
  }
  default: return false;
  }
}

/* See mock_opts.h. */
int mock_parse_args(mock_opts_t *o, int argc, char **argv) {
  static const struct option longs[] = {
    {"port", 1, NULL, 'p'}, {"host", 1, NULL, 'H'}, {"latency-ms", 1, NULL, 'l'},
    {"chunks", 1, NULL, 'c'}, {"interval-ms", 1, NULL, 'i'}, {"error-rate", 1, NULL, 'e'},
    {"error-status", 1, NULL, 's'}, {"reset-after", 1, NULL, 'r'}, {"seed", 1, NULL, 'S'},
    {"name", 1, NULL, 'n'}, {"outcome-rate", 1, NULL, 'o'}, {"retry-after", 1, NULL, 'R'},
    {"help", 0, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  *o = (mock_opts_t){.host = "127.0.0.1", .port = -1, .dflt = {.chunks = 5, .reset_after = -1},
                .error_status = 500, .name = "mock"};
  int ch, idx = 0;
  while ((ch = getopt_long(argc, argv, "", longs, &idx)) != -1) {
    if (ch == 'h') {
      usage(stdout);
      exit(0);
    }
    if (ch == '?' || !parse_opt(o, ch, optarg)) {
      if (ch != '?') fprintf(stderr, "mock-llm: bad value for --%s: %s\n",
                             longs[idx].name, optarg);
      usage(stderr);
      return -1;
    }
  }
  if (optind < argc || o->port < 0) {
    fprintf(stderr, "mock-llm: %s\n", o->port < 0 ? "--port is required" : "stray argument");
    usage(stderr);
    return -1;
  }
  return 0;
}

