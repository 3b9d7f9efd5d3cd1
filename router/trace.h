/*
 * trace.h — W3C Trace Context (traceparent) and the ids switchyard generates.
 *
 * A request's trace id comes from an incoming `traceparent` header when it is
 * valid, otherwise it is generated. switchyard acts as a span of its own: the
 * header it forwards upstream keeps the trace id and flags, with switchyard's
 * span id as the parent id.
 */
#ifndef SY_TRACE_H
#define SY_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "policies/rng.h"

#define SY_TRACE_ID_HEX 32
#define SY_SPAN_ID_HEX 16
#define SY_TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */

typedef struct sy_trace_s {
  char trace_id[SY_TRACE_ID_HEX + 1];
  char span_id[SY_SPAN_ID_HEX + 1]; /* switchyard's own span */
  uint8_t flags;
  int from_client; /* 1 if trace_id came from the request's traceparent */
} sy_trace_t;

/*
 * Parses a traceparent value (version 00 form; higher versions are read by their
 * first four fields as the spec asks). Returns 0 and fills trace_id and flags, or
 * -1 if the value is malformed or the trace id is all zeros.
 */
int sy_traceparent_parse(const char *v, size_t len, char trace_id[SY_TRACE_ID_HEX + 1],
                         uint8_t *flags);

/* Fills t: trace id from `traceparent` (may be NULL) or generated; a new span id. */
void sy_trace_init(sy_trace_t *t, const char *traceparent, size_t len, sy_rng_t *rng);

/* Writes the traceparent to forward ("00-trace-span-flags", NUL-terminated) into out. */
void sy_trace_format(const sy_trace_t *t, char out[SY_TRACEPARENT_LEN + 1]);

/* Writes 2*nbytes lower-case hex digits of randomness and a NUL into out. */
void sy_random_hex(char *out, size_t nbytes, sy_rng_t *rng);

#endif
