/*
 * event.h — one stream entry as the warehouse sees it: its fields by name (schema 4's
 * names and values, whichever layout the entry has: schema 5's one field `e`, decoded
 * by proto/event5.h, or one stream field per event field), the consent rules applied,
 * and the JSON object the events table stores. Pure: no I/O; memory is the event's
 * own, reused across entries.
 */
#ifndef SY_WH_EVENT_H
#define SY_WH_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/events.h"

#define SY_WH_EV_MAXF 128 /* fields kept per event */

typedef struct sy_wh_event_s {
  int type;                   /* sy_event_type_t (proto/event5.h), or -1 if unknown */
  const char *f[SY_EF_COUNT]; /* the contract's fields by index; NULL: no value */
  const char *config_hash;    /* a field outside events.def that the trace row keeps */
  int64_t ts_ms;              /* from timestamp; -1 if absent or unreadable */
  /* every field in arrival order (the contract's and any other), for the JSON;
   * a field dropped by consent has its value NULL */
  size_t n;
  const char *name[SY_WH_EV_MAXF], *value[SY_WH_EV_MAXF];
  /* private: the strings (offsets until the event is complete) */
  size_t off_name[SY_WH_EV_MAXF], off_value[SY_WH_EV_MAXF];
  char *arena;
  size_t alen, acap;
  int oom;
} sy_wh_event_t;

/* The ref id of a schema 5 value (its 6th '|'-separated slot) into id (cap bytes);
 * returns its length (0: none), or -1 if v is not a schema 5 value. */
int sy_wh_ev5_ref(const char *v, size_t n, char *id, size_t cap);

/* Fills ev from a stream entry. A schema 5 entry (a field `e`) is decoded with
 * ref_def (the ref's definition from sy:refs, or NULL when it is not known: the
 * ref's fields are then missing); other entries are read field by field. entry_id
 * is the event's id when it has none of its own. Returns 0, or -1 with why in err
 * (not an event; out of memory). */
int sy_wh_event_parse(sy_wh_event_t *ev, const char *const *names, const char *const *values,
                      const size_t *lens, size_t nfields, const char *entry_id,
                      const char *ref_def, char *err, size_t cap);

/* Applies the consent rules: feedback_comment only when consent_scope is content;
 * with consent none, no user_id or session_id either. */
void sy_wh_event_consent(sy_wh_event_t *ev);

/* The fields that are left as a JSON object of strings, into *out (grown with
 * realloc; *cap its size). Returns the length, or -1 when out of memory. */
long sy_wh_event_json(const sy_wh_event_t *ev, char **out, size_t *cap);

/* Milliseconds since the epoch of an RFC 3339 UTC time ("2026-12-07T21:32:47.123Z"),
 * or -1. */
int64_t sy_wh_rfc3339_ms(const char *s);

/* Frees ev's memory (ev can be used again). */
void sy_wh_event_free(sy_wh_event_t *ev);

#endif
