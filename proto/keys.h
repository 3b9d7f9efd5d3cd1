/*
 * keys.h — the name of everything switchyard keeps in Redis (proto/KEYS.md), spelled in
 * one place. C code that names a key, a channel or the default stream goes through
 * these; nothing else writes "sy:". tests/unit/test_keys.c checks that the builders
 * and KEYS.md list the same names.
 *
 * Convention: a builder writes the NUL-terminated name into out[0..n) and returns its
 * length (without the NUL). It returns -1 when the name does not fit in n bytes or an
 * argument is NULL; out is then "" (when n > 0), so a cut name is never used. The caller
 * owns out; the builders keep nothing. Ids come from the config (at most 64 characters)
 * and trace ids are 32 hex digits, so SY_KEY_MAX bytes hold any name built from them.
 *
 * Names without arguments are string literals, so that the Lua scripts (stats/scripts.h)
 * can splice them in at compile time.
 */
#ifndef SY_KEYS_H
#define SY_KEYS_H

#include <stddef.h>

#define SY_KEY_MAX 256

#define SY_KEY_EXPERIMENTS "sy:experiments" /* set: the experiment ids routers serve */
#define SY_KEY_CONTROL "sy:control"         /* channel: a message per state change */
#define SY_KEY_EVENTS "sy:events"           /* stream: the default of events.stream */
#define SY_KEY_TRACE_PREFIX "sy:trace:"     /* sy:trace:T without T (schema 4's records) */
#define SY_KEY_TRACE_SLICE "sy:tr:"         /* sy:tr:SLICE and sy:tr:SLICE:B: trace records */
#define SY_KEY_REFS "sy:refs"               /* hash: ref id -> a variant version's constants */
#define SY_TRACE_SLICE_MS 3600000ull        /* a trace slice: an hour of request times */
#define SY_TRACE_SLICE_MS_STR "3600000"     /* the same, for the scripts */

/* sy:{E}: — the prefix of experiment E's keys, which the scripts extend (KEYS.md). */
int sy_key_prefix(char *out, size_t n, const char *exp);

/* sy:{E}:meta — the hash of E as the routers see it. */
int sy_key_meta(char *out, size_t n, const char *exp);

/* sy:{E}:v:V — variant V's statistics. */
int sy_key_variant(char *out, size_t n, const char *exp, const char *var);

/* sy:{E}:v:V:s:S — variant V's outcome statistics in segment S. */
int sy_key_segment(char *out, size_t n, const char *exp, const char *var, const char *seg);

/* sy:{E}:segments — the segments of E that have statistics. */
int sy_key_segments(char *out, size_t n, const char *exp);

/* sy:{E}:pending — E's binary trials waiting for their outcome. */
int sy_key_pending(char *out, size_t n, const char *exp);

/* sy:{E}:applied:T — what was applied already for trace T. */
int sy_key_applied(char *out, size_t n, const char *exp, const char *trace);

/* sy:trace:T — the trace record of trace T. */
int sy_key_trace(char *out, size_t n, const char *trace);

/* The 16 bytes of a trace id of 32 hex digits (the field of its record in a trace
 * bucket, proto/KEYS.md); -1 if trace is not 32 hex digits. */
int sy_trace_bin(const char *trace, unsigned char out[16]);

/* sy:{E}:state — E's control state. */
int sy_key_state(char *out, size_t n, const char *exp);

/* sy:{E}:audit — the stream of E's state changes. */
int sy_key_audit(char *out, size_t n, const char *exp);
/* sy:{E}:versions — the version registry: which config and variant versions served E, when. */
int sy_key_versions(char *out, size_t n, const char *exp);

/* sy:{E}:gate:lease — the router instance that decides for E. */
int sy_key_lease(char *out, size_t n, const char *exp);

/* sy:journal:I — the last batch applied for router instance I. */
int sy_key_journal(char *out, size_t n, const char *instance);

/* Redis Cluster mode (proto/KEYS.md "Cluster layout"): what is global on one server
 * lives under each experiment's hash tag instead, so that every script touches one
 * slot. */

/* sy:{E}:events — E's events stream (cluster mode). */
int sy_key_exp_events(char *out, size_t n, const char *exp);

/* sy:{E}:journal:I — the last batch of E's journal applied for instance I (cluster mode). */
int sy_key_exp_journal(char *out, size_t n, const char *exp, const char *instance);

/* sy:{E}:refs — the refs E's trace records and events name (cluster mode). */
int sy_key_exp_refs(char *out, size_t n, const char *exp);

/* sy:{E}:tr: — the prefix of E's trace slices and buckets (cluster mode); the scripts
 * add SLICE and SLICE:G:B. */
int sy_key_exp_trace_slice(char *out, size_t n, const char *exp);

#endif
