/*
 * yaml_walk.c — the generic half of config loading: reading and parsing a YAML
 * document with libyaml, the table-driven mapping walker, key paths and
 * "FILE:LINE: PATH: problem" messages, scalar parsers (strings, bounded integers,
 * booleans, host:port) and YAML -> JSON conversion. See yaml_walk.h for the model; the
 * switchyard tables that drive it live in config.c.
 */
#include "router/yaml_walk.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE_BYTES (16u << 20)
#define JSON_MAX_DEPTH 32
#define JSON_MAX_NODES 100000 /* bounds alias expansion ("billion laughs") */

/* ---- state and messages ------------------------------------------------------ */

/* See yaml_walk.h. */
void sy__yaml_init(sy__yaml_walk_t *w, const char *name, const char *src, size_t len, void *user,
                   char *err, size_t errlen) {
  memset(w, 0, sizeof *w);
  w->name = name;
  w->src = src;
  w->srclen = len;
  w->user = user;
  w->json_budget = JSON_MAX_NODES;
  w->err = err;
  w->errlen = errlen;
  if (err != NULL && errlen > 0)
    err[0] = '\0';
}

/* See yaml_walk.h: "FILE:LINE: PATH: problem"; always -1. */
int sy__yaml_fail(sy__yaml_walk_t *w, const yaml_node_t *n, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (w->err != NULL && w->errlen > 0)
    snprintf(w->err, w->errlen, "%s:%d: %s: %s", w->name, sy__yaml_line(n),
             w->pathlen > 0 ? w->path : "(top level)", msg);
  return -1;
}

/* See yaml_walk.h: appends ".key" (or "key" at the top); returns the old length. */
size_t sy__yaml_path_key(sy__yaml_walk_t *w, const char *key) {
  size_t old = w->pathlen;
  int n = snprintf(w->path + old, sizeof w->path - old, old > 0 ? ".%s" : "%s", key);
  w->pathlen = (n < 0 || old + (size_t)n >= sizeof w->path) ? sizeof w->path - 1 : old + (size_t)n;
  return old;
}

/* See yaml_walk.h: appends "[i]"; returns the old length. */
size_t sy__yaml_path_index(sy__yaml_walk_t *w, size_t i) {
  size_t old = w->pathlen;
  int n = snprintf(w->path + old, sizeof w->path - old, "[%zu]", i);
  w->pathlen = (n < 0 || old + (size_t)n >= sizeof w->path) ? sizeof w->path - 1 : old + (size_t)n;
  return old;
}

/* See yaml_walk.h. */
void sy__yaml_path_pop(sy__yaml_walk_t *w, size_t old) {
  w->pathlen = old;
  w->path[old] = '\0';
}

/* See yaml_walk.h. */
void sy__yaml_one_line(char *s) {
  for (; s != NULL && *s != '\0'; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      *s = '?';
}

/* ---- loading ------------------------------------------------------------------- */

/* 1-based line of byte offset off in the source, clamped to the last line. */
static int src_line(const sy__yaml_walk_t *w, size_t off) {
  int line = 1;
  for (size_t i = 0; i < off && i < w->srclen; i++)
    if (w->src[i] == '\n' && i + 1 < w->srclen)
      line++;
  return line;
}

static int parser_fail(sy__yaml_walk_t *w, const yaml_parser_t *p) {
  /* libyaml reports the end of input one line past the last; clamp to a real line. */
  int last = src_line(w, w->srclen);
  int line = p->error == YAML_READER_ERROR ? src_line(w, p->problem_offset)
                                           : (int)p->problem_mark.line + 1;
  if (line > last)
    line = last;
  if (w->err == NULL || w->errlen == 0)
    return -1;
  const char *problem = p->problem != NULL ? p->problem : "out of memory";
  if (p->context != NULL)
    snprintf(w->err, w->errlen, "%s:%d: yaml: %s (%s at line %d)", w->name, line, problem,
             p->context, (int)p->context_mark.line + 1);
  else
    snprintf(w->err, w->errlen, "%s:%d: yaml: %s", w->name, line, problem);
  return -1;
}

/* Loads the one document of the stream into w->doc; a second document is an error. */
static int load_document(sy__yaml_walk_t *w, yaml_parser_t *p) {
  if (!yaml_parser_load(p, &w->doc))
    return parser_fail(w, p);
  yaml_document_t next;
  if (!yaml_parser_load(p, &next)) {
    yaml_document_delete(&w->doc);
    return parser_fail(w, p);
  }
  yaml_node_t *root = yaml_document_get_root_node(&next);
  int line = root != NULL ? sy__yaml_line(root) : 0;
  yaml_document_delete(&next);
  if (root != NULL) {
    yaml_document_delete(&w->doc);
    if (w->err != NULL && w->errlen > 0)
      snprintf(w->err, w->errlen, "%s:%d: yaml: only one document is allowed", w->name, line);
    return -1;
  }
  return 0;
}

/* See yaml_walk.h. The parser is gone on return: the document owns all its nodes. */
int sy__yaml_load(sy__yaml_walk_t *w) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser))
    return sy__yaml_fail(w, NULL, "out of memory");
  yaml_parser_set_input_string(&parser, (const unsigned char *)w->src, w->srclen);
  int rc = load_document(w, &parser);
  yaml_parser_delete(&parser);
  w->loaded = rc == 0;
  return rc;
}

/* See yaml_walk.h. */
void sy__yaml_unload(sy__yaml_walk_t *w) {
  if (w->loaded)
    yaml_document_delete(&w->doc);
  w->loaded = 0;
}

/* See yaml_walk.h: the whole file in a malloc'd buffer, or NULL with errno set. */
char *sy__yaml_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  size_t cap = 0, n = 0;
  char *buf = NULL;
  int saved = 0;
  for (;;) {
    if (n == cap) {
      char *grown = cap >= MAX_FILE_BYTES ? NULL : realloc(buf, cap > 0 ? cap * 2 : 4096);
      if (grown == NULL) {
        saved = cap >= MAX_FILE_BYTES ? EFBIG : ENOMEM;
        break;
      }
      buf = grown;
      cap = cap > 0 ? cap * 2 : 4096;
    }
    errno = 0;
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) {
      saved = ferror(f) ? (errno != 0 ? errno : EIO) : 0;
      break;
    }
  }
  fclose(f);
  if (saved != 0) {
    free(buf);
    errno = saved;
    return NULL;
  }
  *len = n;
  return buf;
}

/* ---- node access and scalars ----------------------------------------------------- */

static int one_of(const char *s, const char *const *set) {
  for (; *set != NULL; set++)
    if (strcmp(s, *set) == 0)
      return 1;
  return 0;
}

/* YAML 1.1 plain scalars that mean true and false (retrieval.body and bool fields). */
static const char *const bool_trues[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                         "on",   "On",   "ON",   NULL};
static const char *const bool_falses[] = {"false", "False", "FALSE", "no", "No", "NO",
                                          "off",   "Off",   "OFF",   NULL};

/* YAML 1.1 plain scalars that mean null (an empty value included). */
static int is_null(const yaml_node_t *n) {
  static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
  return sy__yaml_is_plain(n) && one_of(sy__yaml_text(n), nulls);
}

/* See yaml_walk.h: the value node of `key` in mapping m, or NULL. */
yaml_node_t *sy__yaml_map_get(sy__yaml_walk_t *w, yaml_node_t *m, const char *key) {
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *k = sy__yaml_node(w, p->key);
    if (k->type == YAML_SCALAR_NODE && strcmp(sy__yaml_text(k), key) == 0)
      return sy__yaml_node(w, p->value);
  }
  return NULL;
}

/* See yaml_walk.h: a string scalar's text; null, collections and NUL bytes fail. */
int sy__yaml_get_str(sy__yaml_walk_t *w, yaml_node_t *n, const char **out) {
  if (n->type != YAML_SCALAR_NODE || is_null(n))
    return sy__yaml_fail(w, n, "must be a string");
  if (strlen(sy__yaml_text(n)) != n->data.scalar.length)
    return sy__yaml_fail(w, n, "must not contain a NUL character");
  *out = sy__yaml_text(n);
  return 0;
}

/* See yaml_walk.h: sy__yaml_get_str, not empty. */
int sy__yaml_get_nonempty(sy__yaml_walk_t *w, yaml_node_t *n, const char **out) {
  if (sy__yaml_get_str(w, n, out) < 0)
    return -1;
  return **out == '\0' ? sy__yaml_fail(w, n, "must not be empty") : 0;
}

/* See yaml_walk.h: replaces *dst by a copy of s. */
int sy__yaml_set_str(sy__yaml_walk_t *w, yaml_node_t *n, char **dst, const char *s) {
  char *d = strdup(s);
  if (d == NULL)
    return sy__yaml_fail(w, n, "out of memory");
  free(*dst);
  *dst = d;
  return 0;
}

/* See yaml_walk.h: decimal integer text. */
int sy__yaml_is_int_text(const char *s) {
  if (*s == '-' || *s == '+')
    s++;
  if (*s == '0')
    return s[1] == '\0';
  if (*s < '1' || *s > '9')
    return 0;
  while (isdigit((unsigned char)*s))
    s++;
  return *s == '\0';
}

static const char *skip_digits(const char *s) {
  while (isdigit((unsigned char)*s))
    s++;
  return s;
}

/* See yaml_walk.h: real-number text with a dot or an exponent. */
int sy__yaml_is_float_text(const char *s) {
  if (*s == '-' || *s == '+')
    s++;
  const char *d = skip_digits(s);
  int mant = d > s, dot = *d == '.';
  if (dot) {
    const char *f = skip_digits(d + 1);
    mant = mant || f > d + 1;
    d = f;
  }
  if (!mant)
    return 0;
  if (*d == 'e' || *d == 'E') {
    d++;
    if (*d == '-' || *d == '+')
      d++;
    const char *e = skip_digits(d);
    if (e == d)
      return 0;
    return *e == '\0';
  }
  return dot && *d == '\0';
}

/* See yaml_walk.h: a plain decimal integer within [min, max]. */
int sy__yaml_get_int(sy__yaml_walk_t *w, yaml_node_t *n, long long min, long long max,
                     long long *out) {
  if (!sy__yaml_is_plain(n) || !sy__yaml_is_int_text(sy__yaml_text(n)) ||
      n->data.scalar.length > 18)
    return sy__yaml_fail(w, n, "must be an integer in %lld..%lld", min, max);
  long long v = strtoll(sy__yaml_text(n), NULL, 10);
  if (v < min || v > max)
    return sy__yaml_fail(w, n, "must be an integer in %lld..%lld", min, max);
  *out = v;
  return 0;
}

/* See yaml_walk.h: a plain YAML 1.1 boolean. */
int sy__yaml_get_bool(sy__yaml_walk_t *w, yaml_node_t *n, int *out) {
  if (sy__yaml_is_plain(n) && one_of(sy__yaml_text(n), bool_trues))
    *out = 1;
  else if (sy__yaml_is_plain(n) && one_of(sy__yaml_text(n), bool_falses))
    *out = 0;
  else
    return sy__yaml_fail(w, n, "must be true or false");
  return 0;
}

/* ---- host:port ------------------------------------------------------------------- */

static int is_hostname(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && strchr("-._", s[i]) == NULL)
      return 0;
  return 1;
}

/* Checks the inside of "[...]": an IPv6 address, optionally with a %zone. */
static int is_ipv6(const char *s, size_t n) {
  char buf[INET6_ADDRSTRLEN + 1];
  unsigned char addr[16];
  const char *pct = memchr(s, '%', n);
  size_t alen = pct != NULL ? (size_t)(pct - s) : n;
  if (alen == 0 || alen >= sizeof buf ||
      (pct != NULL && (alen + 1 == n || !is_hostname(pct + 1, n - alen - 1))))
    return 0;
  memcpy(buf, s, alen);
  buf[alen] = '\0';
  return inet_pton(AF_INET6, buf, addr) == 1;
}

/* See yaml_walk.h: "host:port" or "[v6]:port" (host kept as text, without brackets). */
int sy__yaml_get_hostport(sy__yaml_walk_t *w, yaml_node_t *n, char **host_out,
                          uint16_t *port_out) {
  const char *s;
  if (sy__yaml_get_nonempty(w, n, &s) < 0)
    return -1;
  return sy__yaml_parse_hostport(w, n, s, 0, host_out, port_out);
}

/* See yaml_walk.h: s is "host[:port]" or "[v6]:port" (the port optional if
 * default_port is not 0). */
int sy__yaml_parse_hostport(sy__yaml_walk_t *w, yaml_node_t *n, const char *s,
                            uint16_t default_port, char **host_out, uint16_t *port_out) {
  const char *host, *colon;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (close == NULL || (close[1] != ':' && !(default_port != 0 && close[1] == '\0')))
      return sy__yaml_fail(w, n, "expected [address]:port, got '%.64s'", s);
    host = s + 1;
    colon = close + 1;
    if (!is_ipv6(host, (size_t)(close - host)))
      return sy__yaml_fail(w, n, "invalid IPv6 address in '%.64s'", s);
  } else {
    host = s;
    colon = strrchr(s, ':');
    if (colon == NULL && default_port != 0)
      colon = s + strlen(s);
    if (colon == NULL)
      return sy__yaml_fail(w, n, "expected host:port, got '%.64s'", s);
    if (memchr(s, ':', (size_t)(colon - s)) != NULL)
      return sy__yaml_fail(w, n, "an IPv6 address must be written [address]:port");
    if (colon == s || !is_hostname(s, (size_t)(colon - s)))
      return sy__yaml_fail(w, n, "invalid host in '%.64s'", s);
  }
  uint16_t port_num = default_port;
  if (*colon == ':') {
    const char *port = colon + 1;
    if (*port == '\0' || strlen(port) > 5 || *skip_digits(port) != '\0' || atoi(port) < 1 ||
        atoi(port) > 65535)
      return sy__yaml_fail(w, n, "port must be an integer in 1..65535, got '%.64s'", s);
    port_num = (uint16_t)atoi(port);
  }
  size_t hlen = (size_t)(colon - host) - (s[0] == '[');
  *host_out = strndup(host, hlen);
  if (*host_out == NULL)
    return sy__yaml_fail(w, n, "out of memory");
  *port_out = port_num;
  return 0;
}

/* ---- the table walker --------------------------------------------------------------- */

static const sy__yaml_field_t *field_find(const sy__yaml_field_t *table, const char *key) {
  for (const sy__yaml_field_t *f = table; f->key != NULL; f++)
    if (strcmp(f->key, key) == 0)
      return f;
  return NULL;
}

/* Edit distance of two short strings (for "did you mean"), capped at 9. */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), row[33];
  if (la > 32 || lb > 32)
    return 9;
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      diag = up;
      row[j] = best;
    }
  }
  return row[lb];
}

/* Reports key k as unknown, suggesting the nearest key of the table if one is close. */
static int fail_unknown(sy__yaml_walk_t *w, yaml_node_t *k, const sy__yaml_field_t *table) {
  size_t old = sy__yaml_path_key(w, sy__yaml_text(k));
  const char *near = NULL;
  size_t best = 4;
  for (const sy__yaml_field_t *f = table; f->key != NULL; f++) {
    size_t d = edit_distance(sy__yaml_text(k), f->key);
    if (d < best && 2 * d <= strlen(f->key)) {
      best = d;
      near = f->key;
    }
  }
  if (near != NULL)
    sy__yaml_fail(w, k, "unknown key (did you mean '%s'?)", near);
  else
    sy__yaml_fail(w, k, "unknown key");
  sy__yaml_path_pop(w, old);
  return -1;
}

/*
 * Checks mapping m's keys: all strings, none repeated, and (if table != NULL) all
 * named in the table.
 */
static int check_keys(sy__yaml_walk_t *w, yaml_node_t *m, const sy__yaml_field_t *table) {
  yaml_node_pair_t *start = m->data.mapping.pairs.start;
  for (yaml_node_pair_t *p = start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *k = sy__yaml_node(w, p->key);
    if (k->type != YAML_SCALAR_NODE || strlen(sy__yaml_text(k)) != k->data.scalar.length)
      return sy__yaml_fail(w, k, "keys must be strings");
    if (table != NULL && field_find(table, sy__yaml_text(k)) == NULL)
      return fail_unknown(w, k, table);
    for (yaml_node_pair_t *q = start; q < p; q++) {
      yaml_node_t *prev = sy__yaml_node(w, q->key);
      if (prev->type == YAML_SCALAR_NODE && strcmp(sy__yaml_text(prev), sy__yaml_text(k)) == 0) {
        size_t old = sy__yaml_path_key(w, sy__yaml_text(k));
        sy__yaml_fail(w, k, "duplicate key (first at line %d)", sy__yaml_line(prev));
        sy__yaml_path_pop(w, old);
        return -1;
      }
    }
  }
  return 0;
}

/* See yaml_walk.h: parses mapping m into obj by the rows of table (in table order). */
int sy__yaml_walk_map(sy__yaml_walk_t *w, yaml_node_t *m, const sy__yaml_field_t *table,
                      void *obj) {
  if (m->type != YAML_MAPPING_NODE)
    return sy__yaml_fail(w, m, "must be a mapping");
  if (check_keys(w, m, table) < 0)
    return -1;
  for (const sy__yaml_field_t *f = table; f->key != NULL; f++) {
    yaml_node_t *v = sy__yaml_map_get(w, m, f->key);
    if (v == NULL && !f->required)
      continue;
    size_t old = sy__yaml_path_key(w, f->key);
    int rc = v == NULL ? sy__yaml_fail(w, m, "required key is missing") : f->parse(w, v, obj, f);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* See yaml_walk.h: v is a mapping whose keys are distinct strings. */
int sy__yaml_check_free_map(sy__yaml_walk_t *w, yaml_node_t *v) {
  if (v->type != YAML_MAPPING_NODE)
    return sy__yaml_fail(w, v, "must be a mapping");
  return check_keys(w, v, NULL);
}

/* ---- generic field parsers ------------------------------------------------------------ */

/* See yaml_walk.h: an `unsigned` in [f->min, f->max]. */
int sy__yaml_p_uint(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  long long x;
  if (sy__yaml_get_int(w, v, f->min, f->max, &x) < 0)
    return -1;
  *SY__YAML_FIELD_PTR(obj, f, unsigned) = (unsigned)x;
  return 0;
}

/* See yaml_walk.h: a `size_t` in [f->min, f->max]. */
int sy__yaml_p_size(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  long long x;
  if (sy__yaml_get_int(w, v, f->min, f->max, &x) < 0)
    return -1;
  *SY__YAML_FIELD_PTR(obj, f, size_t) = (size_t)x;
  return 0;
}

/* See yaml_walk.h: an `int` set to 1 or 0 from a YAML boolean. */
int sy__yaml_p_bool(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  return sy__yaml_get_bool(w, v, SY__YAML_FIELD_PTR(obj, f, int));
}

/* See yaml_walk.h: a non-empty string, copied. */
int sy__yaml_p_str(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  return sy__yaml_set_str(w, v, SY__YAML_FIELD_PTR(obj, f, char *), s);
}

/* See yaml_walk.h: a nested mapping with its own table, filling obj at offset off. */
int sy__yaml_p_struct(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  return sy__yaml_walk_map(w, v, f->sub, (char *)obj + f->off);
}

/* ---- YAML -> JSON ----------------------------------------------------------------------- */

/*
 * Types scalar n as YAML 1.1 does for plain scalars (quoted ones are strings) and
 * stores the JSON value in *out (NULL if jansson ran out of memory). Returns -1
 * with a message if the value cannot be JSON.
 */
static int scalar_json_value(sy__yaml_walk_t *w, yaml_node_t *n, json_t **out) {
  const char *s = sy__yaml_text(n);
  int sign = s[0] == '-' || s[0] == '+';
  if (!sy__yaml_is_plain(n)) {
    if (sy__yaml_get_str(w, n, &s) < 0)
      return -1;
    *out = json_string(s);
  } else if (is_null(n)) {
    *out = json_null();
  } else if (one_of(s, bool_trues) || one_of(s, bool_falses)) {
    *out = json_boolean(one_of(s, bool_trues));
  } else if (sy__yaml_is_int_text(s)) {
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
      return sy__yaml_fail(w, n, "integer out of range");
    *out = json_integer((json_int_t)v);
  } else if (sy__yaml_is_float_text(s)) {
    double d = strtod(s, NULL);
    if (!isfinite(d))
      return sy__yaml_fail(w, n, "number out of range");
    *out = json_real(d);
  } else if (strcasecmp(s + sign, ".inf") == 0 || strcasecmp(s, ".nan") == 0) {
    return sy__yaml_fail(w, n, "infinity and NaN cannot be sent as JSON");
  } else {
    *out = json_string(s); /* plain scalars cannot hold a NUL */
  }
  return 0;
}

static json_t *scalar_to_json(sy__yaml_walk_t *w, yaml_node_t *n) {
  json_t *j = NULL;
  if (scalar_json_value(w, n, &j) < 0)
    return NULL;
  return j != NULL ? j : (sy__yaml_fail(w, n, "out of memory"), NULL);
}

static json_t *node_to_json(sy__yaml_walk_t *w, yaml_node_t *n, int depth);

static json_t *seq_to_json(sy__yaml_walk_t *w, yaml_node_t *n, int depth) {
  json_t *arr = json_array();
  if (arr == NULL)
    return sy__yaml_fail(w, n, "out of memory"), NULL;
  for (size_t i = 0; i < sy__yaml_nitems(n); i++) {
    size_t old = sy__yaml_path_index(w, i);
    json_t *item = node_to_json(w, sy__yaml_item(w, n, i), depth + 1);
    sy__yaml_path_pop(w, old);
    if (item == NULL || json_array_append_new(arr, item) < 0) {
      json_decref(arr);
      return item == NULL ? NULL : (sy__yaml_fail(w, n, "out of memory"), NULL);
    }
  }
  return arr;
}

static json_t *map_to_json(sy__yaml_walk_t *w, yaml_node_t *n, int depth) {
  if (check_keys(w, n, NULL) < 0)
    return NULL;
  json_t *obj = json_object();
  if (obj == NULL)
    return sy__yaml_fail(w, n, "out of memory"), NULL;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = sy__yaml_node(w, p->key);
    size_t old = sy__yaml_path_key(w, sy__yaml_text(k));
    json_t *val = node_to_json(w, sy__yaml_node(w, p->value), depth + 1);
    sy__yaml_path_pop(w, old);
    if (val == NULL || json_object_set_new(obj, sy__yaml_text(k), val) < 0) {
      json_decref(obj);
      return val == NULL ? NULL : (sy__yaml_fail(w, k, "key is not valid UTF-8"), NULL);
    }
  }
  return obj;
}

/* Converts a YAML subtree to JSON, bounded in depth (aliases can loop) and size. */
static json_t *node_to_json(sy__yaml_walk_t *w, yaml_node_t *n, int depth) {
  if (depth > JSON_MAX_DEPTH)
    return sy__yaml_fail(w, n, "nested more than %d levels deep", JSON_MAX_DEPTH), NULL;
  if (w->json_budget == 0)
    return sy__yaml_fail(w, n, "too large (more than %d values)", JSON_MAX_NODES), NULL;
  w->json_budget--;
  switch (n->type) {
  case YAML_SCALAR_NODE:
    return scalar_to_json(w, n);
  case YAML_SEQUENCE_NODE:
    return seq_to_json(w, n, depth);
  case YAML_MAPPING_NODE:
    return map_to_json(w, n, depth);
  default:
    return sy__yaml_fail(w, n, "unsupported YAML node"), NULL;
  }
}

/* See yaml_walk.h: a new JSON value for the subtree at n, or NULL after a message. */
json_t *sy__yaml_to_json(sy__yaml_walk_t *w, yaml_node_t *n) { return node_to_json(w, n, 0); }
