/*
 * retry.h — the pure parts of retries and fallbacks (no I/O; proxy.c runs them):
 * which answers are tried again, how long to wait, and whether the retry budget
 * allows one more.
 *
 * The rules proxy.c keeps (README "Retries and fallbacks"):
 *   - only before any response byte went to the client, and only for a request whose
 *     body is kept whole (a streamed body is never sent twice);
 *   - an answer (a listed status) is retried on another server, never on the one that
 *     gave it; a failure without an answer (connect, reset) may go to any server;
 *   - the variant's upstream gets retry.attempts tries, then its `fallback:` gets its
 *     own upstream's retry.attempts; the outcome stays the chosen variant's.
 */
#ifndef SY_RETRY_H
#define SY_RETRY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "router/config_types.h"

/* Whether status is one of rc's retried answers. */
int sy_retry_status_listed(const sy_retry_conf_t *rc, int status);

/* A Retry-After value (RFC 9110 §10.2.3: delay-seconds or an HTTP-date) in ms from
 * `now` (seconds since the epoch); 0 for a date in the past; -1 when it is neither. */
int64_t sy_retry_after_ms(const char *v, size_t len, time_t now);

/* The wait before retry number n (1 = the first retry): backoff_ms doubled n-1
 * times, capped at backoff_max_ms, times a jitter factor in [0.75, 1.25) from u01
 * in [0, 1). */
uint64_t sy_retry_backoff_ms(const sy_retry_conf_t *rc, unsigned n, double u01);

/* Whether one more request may retry: `retrying` requests of the upstream are
 * waiting for or on a retry, `active` are in flight in all. */
int sy_retry_budget_ok(const sy_retry_conf_t *rc, unsigned active, unsigned retrying);

#endif
