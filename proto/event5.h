/*
 * event5.h — schema 5's compact stream entry: an event as one string in one stream
 * field, its fields by position, with what is constant per variant version written
 * once in the refs hash (proto/KEYS.md: sy:refs) and named by a short id. The layout
 * and how to read it field by field are in proto/EVENTS.md ("Schema 5 in Redis").
 *
 *   5|TYPE|EVENT_ID|ROUTER_INSTANCE|TIMESTAMP_MS|REF|slot 6|slot 7|...
 *
 * TYPE is one letter (sy_event_type_codes); slots 6.. are the fields of events.def
 * that the type carries, in events.def's order, minus the folded ones (the envelope
 * and the ref's); trailing empty slots are left out; an empty slot is a field without
 * a value. Strings are percent-escaped for '%', '|', ',' and control bytes (and a
 * leading '~'); a string of 32 lowercase hex digits (trace ids, keyed hashes) is '~'
 * and its 16 bytes in unpadded base64url; consent_scope a digit (0 none, 1 metrics,
 * 2 content); int and real in decimal (real: 6
 * significant digits); bool 1/0; list: its items joined by ','. An empty EVENT_ID:
 * the event's id is its stream entry id (the journal's events, which Redis applies
 * exactly once). A ref's definition is experiment|variant|variant_version|prompt_version|
 * model_id|task_type|config_hash, escaped the same way; refs written before config_hash
 * existed have the first six, and a missing part is a field without a value.
 *
 * Pure: no I/O; the builder allocates only its own buffer.
 */
#ifndef SY_EVENT5_H
#define SY_EVENT5_H

#include <stddef.h>
#include <stdint.h>

#include "proto/events.h"

#define SY_EV5_FIELD "e"    /* the stream field that holds a compact event */
#define SY_EV5_REF_LEN 12   /* hex characters of a ref id */
#define SY_EV5_HEAD 6       /* slots before the type's own fields */
#define SY_EV5_ID_HEX 32    /* a string of this many lowercase hex digits ... */
#define SY_EV5_ID_PACKED 23 /* ... is stored as '~' and 22 base64url characters */

typedef enum {
  SY_EVT_REQUEST = 0,
  SY_EVT_FEEDBACK,
  SY_EVT_OUTCOME,
  SY_EVT_SHADOW,
  SY_EVT_DECISION,
  SY_EVT_COUNT
} sy_event_type_t;

extern const char sy_event_type_codes[SY_EVT_COUNT];            /* "qfosd" */
extern const char *const sy_event_type_names[SY_EVT_COUNT];     /* "request", ... */

typedef struct sy_ev5_s {
  char *p;
  size_t len, cap;
  int type;
  int slot; /* slots written so far */
  int oom;  /* an allocation failed: the value is incomplete, do not use it */
} sy_ev5_t;

/* Starts an event in b (whose memory is reused across events; zero it before the
 * first use, sy_ev5_free it after the last). event_id NULL: the stream entry's id will
 * be the event's. ref: the variant version's id, or "". */
void sy_ev5_begin(sy_ev5_t *b, sy_event_type_t type, const char *event_id,
                  const char *router_instance, uint64_t ts_ms, const char *ref);
/* Adds a field. Fields must come in events.def order; one the type does not carry, a
 * folded one, or one out of order is not written and the call returns -1 (0 if
 * written). An empty string or a NULL is no value. */
int sy_ev5_str(sy_ev5_t *b, sy_event_field_t f, const char *s, size_t n);
int sy_ev5_cstr(sy_ev5_t *b, sy_event_field_t f, const char *s);
int sy_ev5_int(sy_ev5_t *b, sy_event_field_t f, long long v);
int sy_ev5_real(sy_ev5_t *b, sy_event_field_t f, double v);
int sy_ev5_bool(sy_ev5_t *b, sy_event_field_t f, int v);
int sy_ev5_list(sy_ev5_t *b, sy_event_field_t f, const char *const *items, size_t n);
void sy_ev5_free(sy_ev5_t *b);

/* The slot of field f in events of the given type (>= SY_EV5_HEAD), or -1 when the
 * type does not carry it in a slot of its own. */
int sy_ev5_slot(sy_event_type_t type, sy_event_field_t f);

/* A ref's definition into out (cap bytes; NUL-terminated); returns its length, or 0
 * if it did not fit. NULL strings are empty. */
size_t sy_ev5_ref_def(char *out, size_t cap, const char *experiment, const char *variant,
                      const char *variant_version, const char *prompt_version,
                      const char *model_id, const char *task_type, const char *config_hash);
/* The ref id of a definition: SY_EV5_REF_LEN hex characters and a NUL. */
void sy_ev5_ref_id(const char *def, size_t n, char id[SY_EV5_REF_LEN + 1]);

/* Decoding: cb gets each field of the event as schema 4 wrote it (names of
 * events.def; values as schema 4's: bool true/false, list a JSON array, time RFC
 * 3339), the ref's fields included when ref_def is given (the type's own only), and
 * entry_id (the stream entry's id, may be NULL) as the event_id of an event without
 * its own. value is NUL-terminated. Returns the number of fields, or -1 if v is not a
 * schema 5 value. */
typedef void (*sy_ev5_field_cb)(void *data, const char *name, const char *value);
int sy_ev5_decode(const char *v, size_t n, const char *entry_id, const char *ref_def,
                  sy_ev5_field_cb cb, void *data);

#endif
