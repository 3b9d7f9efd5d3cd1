/*
 * event.c — a stream entry as named fields, consent-filtered, as JSON (event.h).
 */
#include "warehouse/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include "proto/event5.h"

/* Field name -> index, hashed: sy_event_field_index() compares names one by one, and
 * every field of every entry is looked up. */
enum { NSLOT = 256 };
static signed char slot_field[NSLOT];
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;

static unsigned name_hash(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static void make_slots(void) {
  memset(slot_field, -1, sizeof slot_field);
  for (int i = 0; i < SY_EF_COUNT; i++) {
    unsigned h = name_hash(sy_event_fields[i].name) % NSLOT;
    while (slot_field[h] >= 0)
      h = (h + 1) % NSLOT;
    slot_field[h] = (signed char)i;
  }
}

static int field_index(const char *name) {
  pthread_once(&slots_once, make_slots);
  for (unsigned h = name_hash(name) % NSLOT; slot_field[h] >= 0; h = (h + 1) % NSLOT)
    if (strcmp(sy_event_fields[slot_field[h]].name, name) == 0)
      return slot_field[h];
  return -1;
}

static const char *const type_names[] = {"request", "feedback", "outcome", "shadow",
                                         "decision"};

/* Appends n bytes to the arena (no NUL); 0, or -1 when out of memory (ev->oom). */
static int append(sy_wh_event_t *ev, const char *s, size_t n) {
  if (ev->oom)
    return -1;
  if (ev->alen + n + 1 > ev->acap) {
    size_t cap = ev->acap ? ev->acap : 4096;
    while (cap < ev->alen + n + 1)
      cap *= 2;
    char *a = realloc(ev->arena, cap);
    if (a == NULL) {
      ev->oom = 1;
      return -1;
    }
    ev->arena = a;
    ev->acap = cap;
  }
  memcpy(ev->arena + ev->alen, s, n);
  ev->alen += n;
  return 0;
}

/* The length of the valid UTF-8 sequence at s (n bytes left), or 0 if there is none
 * (overlongs, surrogates and code points above U+10FFFF are not valid). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80)
    return 1;
  size_t need = c >= 0xC2 && c <= 0xDF   ? 1
                : c >= 0xE0 && c <= 0xEF ? 2
                : c >= 0xF0 && c <= 0xF4 ? 3
                                         : 0;
  if (need == 0 || need >= n)
    return 0;
  for (size_t i = 1; i <= need; i++)
    if ((s[i] & 0xC0) != 0x80)
      return 0;
  if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
      (c == 0xF4 && s[1] > 0x8F))
    return 0;
  return need + 1;
}

/* Keeps s[0, n) with a NUL in the arena as valid UTF-8: each byte that starts no
 * valid sequence becomes U+FFFD (a database's text column, PostgreSQL's at least,
 * refuses anything else, and one refused row would stop the export). Stops at a NUL.
 * Returns the offset (meaningless once ev->oom is set). */
static size_t keep_utf8(sy_wh_event_t *ev, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t off = ev->alen, i = 0, run = 0; /* run: valid bytes not yet appended */
  while (i < n && u[i] != 0) {
    size_t k = utf8_seq(u + i, n - i);
    if (k > 0) {
      i += k;
      run += k;
      continue;
    }
    append(ev, s + i - run, run);
    append(ev, "\xEF\xBF\xBD", 3);
    run = 0;
    i++;
  }
  append(ev, s + i - run, run);
  append(ev, "", 1);
  return off;
}

/* Adds a field; with dedupe, a repeated name's last value wins, in the first one's
 * place (XADD takes repeated names; the schema 5 decoder never repeats one). */
static void add(sy_wh_event_t *ev, const char *name, const char *value, size_t vlen,
                int dedupe) {
  if (ev->n >= SY_WH_EV_MAXF || ev->oom)
    return;
  size_t at = keep_utf8(ev, name, strlen(name)), i = 0;
  if (ev->oom)
    return;
  /* names compared as kept (two invalid ones may become the same) */
  while (dedupe && i < ev->n && strcmp(ev->arena + ev->off_name[i], ev->arena + at) != 0)
    i++;
  i = dedupe ? i : ev->n;
  if (i == ev->n)
    ev->off_name[ev->n++] = at;
  else
    ev->alen = at; /* a repeated name: its copy is dropped */
  ev->off_value[i] = keep_utf8(ev, value, vlen);
}

static void on_field(void *data, const char *name, const char *value) {
  add(data, name, value, strlen(value), 0);
}

int sy_wh_ev5_ref(const char *v, size_t n, char *id, size_t cap) {
  if (n < 2 || v[0] != '5' || v[1] != '|')
    return -1;
  size_t slot = 0, i = 0;
  while (i < n && slot < 5)
    if (v[i++] == '|')
      slot++;
  if (slot < 5)
    return 0;
  size_t j = i;
  while (j < n && v[j] != '|')
    j++;
  if (j - i + 1 > cap)
    return -1;
  memcpy(id, v + i, j - i);
  id[j - i] = '\0';
  return (int)(j - i);
}

int64_t sy_wh_rfc3339_ms(const char *s) {
  struct tm tm;
  int ms = 0, nread = 0;
  memset(&tm, 0, sizeof tm);
  if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                          &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &nread) != 6)
    return -1;
  const char *p = s + nread;
  if (*p == '.') {
    int digits = 0;
    for (p++; *p >= '0' && *p <= '9'; p++, digits++)
      if (digits < 3)
        ms = ms * 10 + (*p - '0');
    for (; digits < 3; digits++)
      ms *= 10;
  }
  if (*p != 'Z' && *p != '\0' && strcmp(p, "+00:00") != 0)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  time_t t = timegm(&tm);
  return t < 0 ? -1 : (int64_t)t * 1000 + ms;
}

/* Whether a field called name was added. */
static int has(const sy_wh_event_t *ev, const char *name) {
  for (size_t i = 0; i < ev->n; i++)
    if (strcmp(ev->arena + ev->off_name[i], name) == 0)
      return 1;
  return 0;
}

/* The event_id of an event without one, then pointers from offsets, the index by
 * contract field, the type and the time. */
static int finish(sy_wh_event_t *ev, const char *entry_id, char *err, size_t cap) {
  if (entry_id != NULL && !ev->oom && !has(ev, "event_id"))
    add(ev, "event_id", entry_id, strlen(entry_id), 0);
  if (ev->oom) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < ev->n; i++) {
    ev->name[i] = ev->arena + ev->off_name[i];
    ev->value[i] = ev->arena + ev->off_value[i];
    int k = field_index(ev->name[i]);
    if (k >= 0)
      ev->f[k] = ev->value[i][0] ? ev->value[i] : NULL;
    /* by name, whether or not events.def lists it yet */
    if (strcmp(ev->name[i], "config_hash") == 0 && ev->value[i][0])
      ev->config_hash = ev->value[i];
  }
  const char *t = ev->f[SY_EF_event_type];
  ev->type = -1;
  for (int i = 0; t != NULL && i < (int)(sizeof type_names / sizeof *type_names); i++)
    if (strcmp(t, type_names[i]) == 0)
      ev->type = i;
  ev->ts_ms = sy_wh_rfc3339_ms(ev->f[SY_EF_timestamp]);
  if (ev->type < 0) {
    snprintf(err, cap, "no known event_type (%s)", t ? t : "none");
    return -1;
  }
  return 0;
}

int sy_wh_event_parse(sy_wh_event_t *ev, const char *const *names, const char *const *values,
                      const size_t *lens, size_t nfields, const char *entry_id,
                      const char *ref_def, char *err, size_t cap) {
  ev->n = ev->alen = 0;
  ev->oom = 0;
  ev->config_hash = NULL;
  memset(ev->f, 0, sizeof ev->f);
  for (size_t i = 0; i < nfields; i++)
    if (strcmp(names[i], SY_EV5_FIELD) == 0) {
      if (sy_ev5_decode(values[i], lens[i], entry_id, ref_def, on_field, ev) < 0) {
        snprintf(err, cap, "not a schema 5 value");
        return -1;
      }
      return finish(ev, entry_id, err, cap);
    }
  for (size_t i = 0; i < nfields; i++)
    add(ev, names[i], values[i], lens[i], 1);
  return finish(ev, entry_id, err, cap);
}

static void drop(sy_wh_event_t *ev, sy_event_field_t k) {
  for (size_t i = 0; i < ev->n; i++)
    if (ev->f[k] != NULL && ev->value[i] == ev->f[k])
      ev->value[i] = NULL;
  ev->f[k] = NULL;
}

void sy_wh_event_consent(sy_wh_event_t *ev) {
  const char *cs = ev->f[SY_EF_consent_scope];
  if (cs == NULL || strcmp(cs, "content") != 0)
    drop(ev, SY_EF_feedback_comment);
  if (cs != NULL && strcmp(cs, "none") == 0) {
    drop(ev, SY_EF_user_id);
    drop(ev, SY_EF_session_id);
  }
}

/* Appends s to out, escaped as a JSON string; returns the new length or -1. */
static long put(char **out, size_t *cap, size_t len, const char *s, int quote) {
  size_t need = len + strlen(s) * 6 + 4;
  if (need > *cap) {
    size_t c = *cap ? *cap : 1024;
    while (c < need)
      c *= 2;
    char *p = realloc(*out, c);
    if (p == NULL)
      return -1;
    *out = p;
    *cap = c;
  }
  char *o = *out + len;
  if (quote)
    *o++ = '"';
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (!quote)
      *o++ = (char)*p;
    else if (*p == '"' || *p == '\\')
      *o++ = '\\', *o++ = (char)*p;
    else if (*p < 0x20)
      o += sprintf(o, "\\u%04x", *p);
    else
      *o++ = (char)*p;
  }
  if (quote)
    *o++ = '"';
  *o = '\0';
  return (long)(o - *out);
}

long sy_wh_event_json(const sy_wh_event_t *ev, char **out, size_t *cap) {
  long len = put(out, cap, 0, "{", 0);
  int first = 1;
  for (size_t i = 0; i < ev->n && len >= 0; i++) {
    if (ev->value[i] == NULL)
      continue;
    if (!first)
      len = put(out, cap, (size_t)len, ",", 0);
    first = 0;
    if (len >= 0)
      len = put(out, cap, (size_t)len, ev->name[i], 1);
    if (len >= 0)
      len = put(out, cap, (size_t)len, ":", 0);
    if (len >= 0)
      len = put(out, cap, (size_t)len, ev->value[i], 1);
  }
  return len < 0 ? -1 : put(out, cap, (size_t)len, "}", 0);
}

void sy_wh_event_free(sy_wh_event_t *ev) {
  free(ev->arena);
  memset(ev, 0, sizeof *ev);
}
