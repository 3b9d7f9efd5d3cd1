/*
 * proxy_retry.h — retries and the fallback of one exchange (proxy_retry.c), as
 * proxy.c uses them: only before any response byte went to the client, and only for a
 * kept body (README "Retries and fallbacks"; the pure rules are router/retry.h).
 */
#ifndef SY_PROXY_RETRY_H
#define SY_PROXY_RETRY_H

#include <stdint.h>

#include "router/types.h"

enum { SY_TRY_NONE = 0, SY_TRY_HERE, SY_TRY_FALLBACK };

/* Where a failed try goes next: `why` is an SY_RETRY_* bit, or 0 for an answer with
 * `status` from `server` (the pool's object); retry_after_ms is the answer's
 * Retry-After (-1: none). SY_TRY_NONE: the failure goes to the client. */
int sy__retry_target(sy_conn_t *c, unsigned why, int status, const void *server,
                     int64_t retry_after_ms);
/* Records the last try's result ("503", "reset", ...), for the request event. */
void sy__retry_note(sy_req_t *r, const char *result);
/* Starts retry `target` after its wait (backoff, or Retry-After): restart(c) is
 * called then, unless the exchange went away first (sy__retry_drop). Returns 0, or
 * -1 when it cannot (the caller fails the exchange as it would have). */
int sy__retry_go(sy_conn_t *c, int target, const char *result, const void *server,
                 int64_t retry_after_ms, void (*restart)(sy_conn_t *c));
/* Forgets a retry waiting for its wait (the exchange ends, or the client left). */
void sy__retry_drop(sy_req_t *r);
/* Leaves the current pool's counts of requests in flight and retrying. */
void sy__retry_uncount(sy_req_t *r);

#endif
