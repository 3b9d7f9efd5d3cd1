/*
 * rewrite.h — what a variant changes in a request before it is forwarded.
 *
 * The body is rewritten by splicing, not re-serialising: router/json_scan.c
 * validates it (strict RFC 8259) and locates the members to change, and the
 * output is the client's bytes with only these replaced or inserted: the value
 * of `model`; the system message of a chat `messages` array (its content
 * replaced if a system message exists, otherwise one inserted first); retrieval
 * fields set on the top-level object. Numbers, escapes and spacing the client
 * sent reach the upstream unchanged. Headers are added by the proxy from
 * sy_variant_conf_t.headers.
 */
#ifndef SY_REWRITE_H
#define SY_REWRITE_H

#include <stddef.h>

#include "router/config.h"

/* True if the variant changes anything in the body (so the body must be held). */
int sy_rewrite_needs_body(const sy_variant_conf_t *v);

/*
 * Rewrites `body` (len bytes, not NUL-terminated) for variant v.
 * Returns 0 and stores a malloc'd body in *out and its length in *outlen (the
 * caller frees it). Returns -1 and writes a one-line reason into err if the body
 * is not a JSON object, or `messages` is present but not an array, when the
 * variant needs to change the body.
 */
int sy_rewrite_body(const sy_variant_conf_t *v, const char *body, size_t len, char **out,
                    size_t *outlen, char *err, size_t errlen);

/* Where the rewrite of sy_rewrite_body_to goes: room for exactly n bytes, or NULL. */
typedef char *(*sy_rewrite_alloc_fn)(void *ctx, size_t n);

/*
 * The same for a variant that changes the body (sy_rewrite_needs_body), written into
 * the room alloc(ctx, n) gives once the size n is known. Returns 0 with *outlen = n,
 * or -1 with err: before alloc was called (the body is refused), or after (the room
 * is then the caller's to free, with nothing meaningful in it).
 */
int sy_rewrite_body_to(const sy_variant_conf_t *v, const char *body, size_t len,
                       sy_rewrite_alloc_fn alloc, void *ctx, size_t *outlen, char *err,
                       size_t errlen);

#endif
