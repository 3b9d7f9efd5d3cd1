/*
 * event5.c — schema 5's compact event value: the builder, the ref ids and the decoder
 * (see event5.h for the layout).
 */
#include "proto/event5.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/grow.h"
#include "base/numfmt.h"

const char sy_event_type_codes[SY_EVT_COUNT] = {'q', 'f', 'o', 's', 'd'};
const char *const sy_event_type_names[SY_EVT_COUNT] = {"request", "feedback", "outcome",
                                                       "shadow", "decision"};

/* The fields folded into the head (0) or into the ref (1..7: their place in the ref). */
static const struct {
  sy_event_field_t f;
  int ref; /* 0: head; else the ref slot, 1-based */
} folded[] = {
    {SY_EF_event_id, 0},      {SY_EF_event_type, 0},       {SY_EF_schema_version, 0},
    {SY_EF_router_instance, 0}, {SY_EF_timestamp, 0},      {SY_EF_experiment, 1},
    {SY_EF_variant, 2},       {SY_EF_variant_version, 3},  {SY_EF_prompt_version, 4},
    {SY_EF_model_id, 5},      {SY_EF_task_type, 6},      {SY_EF_config_hash, 7},
};
#define NFOLDED (sizeof folded / sizeof folded[0])
#define NREF 7

static signed char slot_of[SY_EVT_COUNT][SY_EF_COUNT];
static sy_event_field_t field_at[SY_EVT_COUNT][SY_EF_COUNT]; /* slot - SY_EV5_HEAD -> field */
static int nslots[SY_EVT_COUNT];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int folded_ref(int f) { /* -1: not folded; 0: head; 1..7: ref */
  for (size_t i = 0; i < NFOLDED; i++)
    if ((int)folded[i].f == f)
      return folded[i].ref;
  return -1;
}

static void init_slots(void) {
  for (int t = 0; t < SY_EVT_COUNT; t++) {
    int s = SY_EV5_HEAD;
    for (int f = 0; f < SY_EF_COUNT; f++) {
      slot_of[t][f] = -1;
      if (!(sy_event_fields[f].applies & (1u << t)) || folded_ref(f) >= 0)
        continue;
      field_at[t][s - SY_EV5_HEAD] = (sy_event_field_t)f;
      slot_of[t][f] = (signed char)s++;
    }
    nslots[t] = s;
  }
}

int sy_ev5_slot(sy_event_type_t type, sy_event_field_t f) {
  pthread_once(&once, init_slots);
  if ((int)type < 0 || type >= SY_EVT_COUNT || (int)f < 0 || f >= SY_EF_COUNT)
    return -1;
  return slot_of[type][f];
}

/* ---- building ------------------------------------------------------------------------ */

static int reserve(sy_ev5_t *b, size_t more) {
  if (sy_grow(&b->p, &b->cap, b->len + more, 512) < 0) {
    b->oom = 1;
    return -1;
  }
  return 0;
}

/* The bytes a string escapes as %XX: the separators '%', '|' and ',', control bytes
 * and DEL. */
static const unsigned char escape_tab[256] = {
    [0] = 1, [1] = 1, [2] = 1, [3] = 1, [4] = 1, [5] = 1, [6] = 1, [7] = 1,
    [8] = 1, [9] = 1, [10] = 1, [11] = 1, [12] = 1, [13] = 1, [14] = 1, [15] = 1,
    [16] = 1, [17] = 1, [18] = 1, [19] = 1, [20] = 1, [21] = 1, [22] = 1, [23] = 1,
    [24] = 1, [25] = 1, [26] = 1, [27] = 1, [28] = 1, [29] = 1, [30] = 1, [31] = 1,
    ['%'] = 1, ['|'] = 1, [','] = 1, [0x7f] = 1};

static void put_escaped(sy_ev5_t *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  if (reserve(b, 3 * n) < 0)
    return;
  char *o = b->p + b->len;
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  if (n > 0 && u[0] == '~') { /* '~' first: a packed id (below) */
    *o++ = '%', *o++ = '7', *o++ = 'E';
    i = 1;
  }
  while (i < n) {
    size_t run = i;
    while (run < n && !escape_tab[u[run]])
      run++;
    memcpy(o, u + i, run - i);
    o += run - i;
    if (run == n)
      break;
    *o++ = '%';
    *o++ = hex[u[run] >> 4];
    *o++ = hex[u[run] & 15];
    i = run + 1;
  }
  b->len = (size_t)(o - b->p);
}

static void put_raw(sy_ev5_t *b, const char *s, size_t n) {
  if (reserve(b, n) < 0)
    return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

void sy_ev5_begin(sy_ev5_t *b, sy_event_type_t type, const char *event_id,
                  const char *router_instance, uint64_t ts_ms, const char *ref) {
  pthread_once(&once, init_slots);
  char num[SY_NUMFMT_MAX];
  b->len = 0;
  b->oom = 0;
  b->type = type;
  put_raw(b, "5|", 2);
  char code[2] = {sy_event_type_codes[type], '|'};
  put_raw(b, code, 2);
  if (event_id != NULL)
    put_escaped(b, event_id, strlen(event_id));
  put_raw(b, "|", 1);
  put_escaped(b, router_instance, strlen(router_instance));
  put_raw(b, "|", 1);
  put_raw(b, num, sy_fmt_u64(num, ts_ms));
  put_raw(b, "|", 1);
  put_escaped(b, ref != NULL ? ref : "", ref != NULL ? strlen(ref) : 0);
  b->slot = SY_EV5_HEAD;
}

/* Moves to field f's slot (writing the separators of the slots skipped); -1 if f
 * cannot be written now. */
static int seek(sy_ev5_t *b, sy_event_field_t f) {
  int s = sy_ev5_slot(b->type, f);
  if (s < b->slot)
    return -1;
  if (reserve(b, (size_t)(s - b->slot) + 1) < 0)
    return -1;
  while (b->slot <= s) {
    b->p[b->len++] = '|';
    b->slot++;
  }
  return 0;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int hexval(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A value of exactly 32 lowercase hex digits (trace ids, keyed hashes) is written as
 * '~' and its 16 bytes in unpadded base64url: 23 characters instead of 32. */
static int put_packed_id(sy_ev5_t *b, const char *s, size_t n) {
  unsigned char raw[18] = {0};
  if (n != SY_EV5_ID_HEX)
    return -1;
  for (size_t i = 0; i < n; i++) {
    int d = hexval(s[i]);
    if (d < 0)
      return -1;
    raw[i / 2] = (unsigned char)(raw[i / 2] | (i % 2 ? d : d << 4));
  }
  if (reserve(b, SY_EV5_ID_PACKED) < 0)
    return 0;
  char *o = b->p + b->len;
  *o++ = '~';
  for (int i = 0; i < 18; i += 3) { /* 6 groups of 3 bytes (the last padded): 22 chars kept */
    uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
    *o++ = b64url[v >> 18 & 63];
    *o++ = b64url[v >> 12 & 63];
    if (i < 15) {
      *o++ = b64url[v >> 6 & 63];
      *o++ = b64url[v & 63];
    }
  }
  b->len += SY_EV5_ID_PACKED;
  return 0;
}

static const char *const consent_names[] = {"none", "metrics", "content"};

int sy_ev5_str(sy_ev5_t *b, sy_event_field_t f, const char *s, size_t n) {
  if (s == NULL || n == 0)
    return sy_ev5_slot(b->type, f) >= b->slot ? 0 : -1;
  if (seek(b, f) < 0)
    return -1;
  if (f == SY_EF_consent_scope) /* one of three names: written as its digit */
    for (int i = 0; i < 3; i++)
      if (strlen(consent_names[i]) == n && memcmp(consent_names[i], s, n) == 0) {
        char d = (char)('0' + i);
        put_raw(b, &d, 1);
        return 0;
      }
  if (put_packed_id(b, s, n) < 0)
    put_escaped(b, s, n);
  return 0;
}

int sy_ev5_cstr(sy_ev5_t *b, sy_event_field_t f, const char *s) {
  return sy_ev5_str(b, f, s, s != NULL ? strlen(s) : 0);
}

int sy_ev5_int(sy_ev5_t *b, sy_event_field_t f, long long v) {
  char t[SY_NUMFMT_MAX];
  if (seek(b, f) < 0)
    return -1;
  put_raw(b, t, sy_fmt_i64(t, v));
  return 0;
}

int sy_ev5_real(sy_ev5_t *b, sy_event_field_t f, double v) {
  char t[SY_NUMFMT_MAX];
  if (seek(b, f) < 0)
    return -1;
  put_raw(b, t, sy_fmt_g6(t, v));
  return 0;
}

int sy_ev5_bool(sy_ev5_t *b, sy_event_field_t f, int v) {
  if (seek(b, f) < 0)
    return -1;
  put_raw(b, v ? "1" : "0", 1);
  return 0;
}

int sy_ev5_list(sy_ev5_t *b, sy_event_field_t f, const char *const *items, size_t n) {
  if (n == 0)
    return sy_ev5_slot(b->type, f) >= b->slot ? 0 : -1;
  if (seek(b, f) < 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (i > 0)
      put_raw(b, ",", 1);
    put_escaped(b, items[i], strlen(items[i]));
  }
  return 0;
}

void sy_ev5_free(sy_ev5_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

/* ---- refs ------------------------------------------------------------------------------ */

size_t sy_ev5_ref_def(char *out, size_t cap, const char *experiment, const char *variant,
                      const char *variant_version, const char *prompt_version,
                      const char *model_id, const char *task_type, const char *config_hash) {
  const char *parts[NREF] = {experiment, variant, variant_version, prompt_version, model_id,
                             task_type,  config_hash};
  sy_ev5_t b = {0};
  for (int i = 0; i < NREF; i++) {
    if (i > 0)
      put_raw(&b, "|", 1);
    if (parts[i] != NULL)
      put_escaped(&b, parts[i], strlen(parts[i]));
  }
  size_t n = b.oom || b.len >= cap ? 0 : b.len;
  if (n > 0) {
    memcpy(out, b.p, n);
    out[n] = '\0';
  } else if (cap > 0) {
    out[0] = '\0';
  }
  sy_ev5_free(&b);
  return n;
}

void sy_ev5_ref_id(const char *def, size_t n, char id[SY_EV5_REF_LEN + 1]) {
  static const char hex[] = "0123456789abcdef";
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, 64 bits; 48 of them are kept */
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)def[i];
    h *= 0x100000001b3ull;
  }
  for (int i = SY_EV5_REF_LEN - 1; i >= 0; i--, h >>= 4)
    id[i] = hex[h & 15];
  id[SY_EV5_REF_LEN] = '\0';
}

/* ---- decoding -------------------------------------------------------------------------- */

static int unhex(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                        : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Unescapes s[0..n) into out (at least n + 10 bytes); returns the length. A packed id
 * comes back as its 32 hex digits. */
static size_t unescape(const char *s, size_t n, char *out) {
  size_t o = 0;
  if (n == SY_EV5_ID_PACKED && s[0] == '~') {
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[18] = {0};
    uint32_t acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
      const char *p = memchr(b64url, s[i], 64);
      if (p == NULL)
        break;
      acc = acc << 6 | (uint32_t)(p - b64url);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        raw[k++] = (unsigned char)(acc >> bits);
      }
    }
    for (size_t i = 0; i < 16; i++) {
      out[o++] = hex[raw[i] >> 4];
      out[o++] = hex[raw[i] & 15];
    }
    out[o] = '\0';
    return o;
  }
  for (size_t i = 0; i < n; i++) {
    int h, l;
    if (s[i] == '%' && i + 2 < n && (h = unhex(s[i + 1])) >= 0 && (l = unhex(s[i + 2])) >= 0) {
      out[o++] = (char)(h * 16 + l);
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = '\0';
  return o;
}

/* Splits v[0..n) at '|' into at most max pieces; returns how many. */
static int split(const char *v, size_t n, char sep, const char **at, size_t *len, int max) {
  int k = 0;
  size_t start = 0;
  for (size_t i = 0; i <= n && k < max; i++) {
    if (i == n || v[i] == sep) {
      at[k] = v + start;
      len[k++] = i - start;
      start = i + 1;
    }
  }
  return k;
}

static void emit_json_list(const char *s, size_t n, char *tmp, char *out, size_t cap) {
  const char *at[64];
  size_t len[64];
  size_t o = 0;
  int k = n > 0 ? split(s, n, ',', at, len, 64) : 0;
  out[o++] = '[';
  for (int i = 0; i < k && o + 8 < cap; i++) {
    size_t m = unescape(at[i], len[i], tmp);
    if (i > 0)
      out[o++] = ',';
    out[o++] = '"';
    for (size_t j = 0; j < m && o + 8 < cap; j++) {
      unsigned char c = (unsigned char)tmp[j];
      if (c == '"' || c == '\\') {
        out[o++] = '\\';
        out[o++] = (char)c;
      } else if (c < 0x20) {
        static const char hex[] = "0123456789abcdef";
        if (o + 14 >= cap)
          break;
        memcpy(out + o, "\\u00", 4);
        o += 4;
        out[o++] = hex[c >> 4];
        out[o++] = hex[c & 15];
      } else {
        out[o++] = (char)c;
      }
    }
    out[o++] = '"';
  }
  out[o++] = ']';
  out[o] = '\0';
}

int sy_ev5_decode(const char *v, size_t n, const char *entry_id, const char *ref_def,
                  sy_ev5_field_cb cb, void *data) {
  pthread_once(&once, init_slots);
  enum { MAXSLOTS = SY_EV5_HEAD + SY_EF_COUNT };
  const char *at[MAXSLOTS];
  size_t len[MAXSLOTS];
  int k = split(v, n, '|', at, len, MAXSLOTS);
  if (k < SY_EV5_HEAD || len[0] != 1 || at[0][0] != '5' || len[1] != 1)
    return -1;
  int type = -1;
  for (int t = 0; t < SY_EVT_COUNT; t++)
    if (sy_event_type_codes[t] == at[1][0])
      type = t;
  if (type < 0)
    return -1;
  size_t tmpcap = 6 * n + 128;
  char *tmp = malloc(tmpcap), *out = malloc(tmpcap);
  if (tmp == NULL || out == NULL) {
    free(tmp);
    free(out);
    return -1;
  }
  int count = 0;
  if (len[2] > 0)
    cb(data, "event_id", (unescape(at[2], len[2], tmp), tmp)), count++;
  else if (entry_id != NULL)
    cb(data, "event_id", entry_id), count++;
  cb(data, "event_type", sy_event_type_names[type]), count++;
  cb(data, "schema_version", "5"), count++;
  cb(data, "router_instance", (unescape(at[3], len[3], tmp), tmp)), count++;
  {
    char ts[40];
    uint64_t ms = strtoull(at[4], NULL, 10);
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t m = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    ts[m++] = '.';
    ts[m++] = (char)('0' + (ms % 1000) / 100);
    ts[m++] = (char)('0' + (ms % 100) / 10);
    ts[m++] = (char)('0' + ms % 10);
    ts[m++] = 'Z';
    ts[m] = '\0';
    cb(data, "timestamp", ts), count++;
  }
  /* the ref's fields, in events.def order with the type's own fields */
  const char *rat[NREF];
  size_t rlen[NREF];
  int rk = ref_def != NULL ? split(ref_def, strlen(ref_def), '|', rat, rlen, NREF) : 0;
  for (int f = 0; f < SY_EF_COUNT; f++) {
    if (!(sy_event_fields[f].applies & (1u << type)))
      continue;
    int r = folded_ref(f);
    const char *s = NULL;
    size_t sl = 0;
    if (r > 0 && r <= rk) {
      s = rat[r - 1];
      sl = rlen[r - 1];
    } else if (r < 0 && slot_of[type][f] >= 0 && slot_of[type][f] < k) {
      s = at[slot_of[type][f]];
      sl = len[slot_of[type][f]];
    }
    if (s == NULL || sl == 0)
      continue;
    switch (sy_event_fields[f].type) {
    case SY_EV_BOOL:
      cb(data, sy_event_fields[f].name, s[0] == '1' ? "true" : "false");
      break;
    case SY_EV_LIST:
      emit_json_list(s, sl, tmp, out, tmpcap);
      cb(data, sy_event_fields[f].name, out);
      break;
    default:
      if (f == SY_EF_consent_scope && sl == 1 && s[0] >= '0' && s[0] <= '2') {
        cb(data, sy_event_fields[f].name, consent_names[s[0] - '0']);
        break;
      }
      unescape(s, sl, tmp);
      cb(data, sy_event_fields[f].name, tmp);
    }
    count++;
  }
  free(tmp);
  free(out);
  return count;
}
