/*
 * mock_opts.h — bench/mock-llm's command line: its options and their parsing.
 */
#ifndef MOCK_OPTS_H
#define MOCK_OPTS_H

#include <stdint.h>

#include "mock_reply.h"

typedef struct {
  const char *host;
  int port;
  mock_defaults_t dflt;
  int error_status;
  double error_rate;
  const char *outcome_rate; /* --outcome-rate: echoed in x-mock-outcome-rate */
  const char *retry_after;  /* --retry-after: Retry-After of error responses, or NULL */
  uint64_t seed;
  const char *name;
} mock_opts_t;

/* Fills *o from argv (defaults first). Returns 0, or -1 after a message and the usage
 * on stderr; --help prints the usage and exits 0. */
int mock_parse_args(mock_opts_t *o, int argc, char **argv);

#endif
