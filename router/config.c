/*
 * config.c — loads and validates the YAML config into an immutable sy_config_t.
 *
 * libyaml's document API gives a node tree in which every node knows its line. A
 * small table-driven walker visits that tree: each mapping with fixed keys is
 * described by a table of field_t rows (key, parser, offset into the struct being
 * filled, integer range, required?). walk_map() rejects unknown and duplicate keys,
 * reports missing required ones and calls each row's parser. Fields are visited in
 * table order, not file order, so a name can be resolved the moment it is read:
 * upstreams and prompts come before experiments, variants before control. Adding a
 * key is one table row, plus a parser function if none of the generic ones fits.
 *
 * The walk stops at the first problem and leaves one line "FILE:LINE: PATH: problem"
 * in the caller's buffer; the half-built config is then released by
 * sy_config_free(), which copes with any partly filled state (arrays are allocated
 * zeroed with their final count before their elements are parsed).
 */
#include "router/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#define PATH_CAP 256
#define MAX_FILE_BYTES (16u << 20)
#define MAX_VARIANTS 64
#define MAX_ID_LEN 64
#define MAX_WEIGHT 1e6
#define MAX_MS 86400000LL     /* one day */
#define MAX_BYTES (1LL << 30) /* 1 GiB */
#define JSON_MAX_DEPTH 32
#define JSON_MAX_NODES 100000 /* bounds alias expansion ("billion laughs") */

/* The walk's state: where we are (for messages) and what later fields need. */
typedef struct ctx_s {
  const char *name;     /* file name used in messages */
  const char *src;      /* the YAML text, to count lines for some syntax errors */
  size_t srclen;
  yaml_document_t *doc;
  sy_config_t *cfg;     /* the config being built */
  yaml_node_t *prompts; /* the `prompts` mapping, NULL if absent */
  size_t json_budget;   /* nodes retrieval.body conversion may still create */
  char *err;
  size_t errlen;
  size_t pathlen;
  char path[PATH_CAP];  /* key path of the node being parsed, e.g. "upstreams.mock" */
} ctx_t;

typedef struct field_s field_t;

/* Parses value node v for field f into obj (the struct the field's table describes). */
typedef int (*field_fn)(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f);

struct field_s {
  const char *key;
  field_fn parse;
  size_t off;          /* where the value goes in obj (generic parsers) */
  long long min, max;  /* range of integer fields */
  int required;
  const field_t *sub;  /* table of a nested mapping (p_struct) */
};

/* ---- messages and key paths ---------------------------------------------- */

static int line_of(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 1; }

/* Formats "FILE:LINE: PATH: problem" into c->err. Always returns -1. */
static int fail(ctx_t *c, const yaml_node_t *n, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (c->err != NULL && c->errlen > 0)
    snprintf(c->err, c->errlen, "%s:%d: %s: %s", c->name, line_of(n),
             c->pathlen > 0 ? c->path : "(top level)", msg);
  return -1;
}

/* Appends ".key" (or "key" at the top) to the path; returns the length to restore. */
static size_t path_key(ctx_t *c, const char *key) {
  size_t old = c->pathlen;
  int n = snprintf(c->path + old, sizeof c->path - old, old > 0 ? ".%s" : "%s", key);
  c->pathlen = (n < 0 || old + (size_t)n >= sizeof c->path) ? sizeof c->path - 1 : old + (size_t)n;
  return old;
}

/* Appends "[i]" to the path; returns the length to restore. */
static size_t path_index(ctx_t *c, size_t i) {
  size_t old = c->pathlen;
  int n = snprintf(c->path + old, sizeof c->path - old, "[%zu]", i);
  c->pathlen = (n < 0 || old + (size_t)n >= sizeof c->path) ? sizeof c->path - 1 : old + (size_t)n;
  return old;
}

static void path_pop(ctx_t *c, size_t old) {
  c->pathlen = old;
  c->path[old] = '\0';
}

/* ---- node access and scalar helpers --------------------------------------- */

static yaml_node_t *node(ctx_t *c, int index) { return yaml_document_get_node(c->doc, index); }

static const char *text(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static size_t npairs(const yaml_node_t *m) {
  return (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
}

static size_t nitems(const yaml_node_t *s) {
  return (size_t)(s->data.sequence.items.top - s->data.sequence.items.start);
}

static int is_plain(const yaml_node_t *n) {
  return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static int one_of(const char *s, const char *const *set) {
  for (; *set != NULL; set++)
    if (strcmp(s, *set) == 0)
      return 1;
  return 0;
}

/* YAML 1.1 plain scalars that mean null (an empty value included). */
static int is_null(const yaml_node_t *n) {
  static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
  return is_plain(n) && one_of(text(n), nulls);
}

/* The value node of key `key` in mapping m, or NULL. */
static yaml_node_t *map_get(ctx_t *c, yaml_node_t *m, const char *key) {
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(c, p->key);
    if (k->type == YAML_SCALAR_NODE && strcmp(text(k), key) == 0)
      return node(c, p->value);
  }
  return NULL;
}

/* Stores the text of scalar n in *out; a non-string (null, collection, NUL byte) fails. */
static int get_str(ctx_t *c, yaml_node_t *n, const char **out) {
  if (n->type != YAML_SCALAR_NODE || is_null(n))
    return fail(c, n, "must be a string");
  if (strlen(text(n)) != n->data.scalar.length)
    return fail(c, n, "must not contain a NUL character");
  *out = text(n);
  return 0;
}

static int get_nonempty(ctx_t *c, yaml_node_t *n, const char **out) {
  if (get_str(c, n, out) < 0)
    return -1;
  return **out == '\0' ? fail(c, n, "must not be empty") : 0;
}

/* Replaces *dst by a copy of s. */
static int set_str(ctx_t *c, yaml_node_t *n, char **dst, const char *s) {
  char *d = strdup(s);
  if (d == NULL)
    return fail(c, n, "out of memory");
  free(*dst);
  *dst = d;
  return 0;
}

/* Decimal integer: [-+]?(0|[1-9][0-9]*). */
static int is_int_text(const char *s) {
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

/* Real: [-+]?(digits.digits?|.digits|digits)([eE][-+]?digits)?, with a dot or an exponent. */
static int is_float_text(const char *s) {
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

/* An integer field: a plain decimal scalar within [min, max]. */
static int get_int(ctx_t *c, yaml_node_t *n, long long min, long long max, long long *out) {
  if (!is_plain(n) || !is_int_text(text(n)) || n->data.scalar.length > 18)
    return fail(c, n, "must be an integer in %lld..%lld", min, max);
  long long v = strtoll(text(n), NULL, 10);
  if (v < min || v > max)
    return fail(c, n, "must be an integer in %lld..%lld", min, max);
  *out = v;
  return 0;
}

/* RFC 9110 token (header names, methods). */
static int is_token(const char *s) {
  if (*s == '\0')
    return 0;
  for (; *s != '\0'; s++)
    if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
      return 0;
  return 1;
}

/* Identifiers (experiment, variant and upstream names): [A-Za-z0-9_.-]{1,64}. */
static int is_id(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > MAX_ID_LEN)
    return 0;
  for (; *s != '\0'; s++)
    if (!isalnum((unsigned char)*s) && strchr("_.-", *s) == NULL)
      return 0;
  return 1;
}

/* A header value: anything but control characters (tab allowed). */
static int is_header_value(const char *s) {
  for (; *s != '\0'; s++)
    if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
      return 0;
  return 1;
}

static void ascii_case(char *s, int upper) {
  for (; *s != '\0'; s++)
    *s = (char)(upper ? toupper((unsigned char)*s) : tolower((unsigned char)*s));
}

static int streq_null(const char *a, const char *b) {
  return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* ---- the table walker ------------------------------------------------------ */

static const field_t *field_find(const field_t *table, const char *key) {
  for (const field_t *f = table; f->key != NULL; f++)
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

static int fail_unknown(ctx_t *c, yaml_node_t *k, const field_t *table) {
  size_t old = path_key(c, text(k));
  const char *near = NULL;
  size_t best = 4;
  for (const field_t *f = table; f->key != NULL; f++) {
    size_t d = edit_distance(text(k), f->key);
    if (d < best && 2 * d <= strlen(f->key)) {
      best = d;
      near = f->key;
    }
  }
  if (near != NULL)
    fail(c, k, "unknown key (did you mean '%s'?)", near);
  else
    fail(c, k, "unknown key");
  path_pop(c, old);
  return -1;
}

/*
 * Checks mapping m's keys: all strings, none repeated, and (if table != NULL) all
 * named in the table.
 */
static int check_keys(ctx_t *c, yaml_node_t *m, const field_t *table) {
  yaml_node_pair_t *start = m->data.mapping.pairs.start;
  for (yaml_node_pair_t *p = start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(c, p->key);
    if (k->type != YAML_SCALAR_NODE || strlen(text(k)) != k->data.scalar.length)
      return fail(c, k, "keys must be strings");
    if (table != NULL && field_find(table, text(k)) == NULL)
      return fail_unknown(c, k, table);
    for (yaml_node_pair_t *q = start; q < p; q++) {
      yaml_node_t *prev = node(c, q->key);
      if (prev->type == YAML_SCALAR_NODE && strcmp(text(prev), text(k)) == 0) {
        size_t old = path_key(c, text(k));
        fail(c, k, "duplicate key (first at line %d)", line_of(prev));
        path_pop(c, old);
        return -1;
      }
    }
  }
  return 0;
}

/* Parses mapping m into obj by the rows of table (in table order). */
static int walk_map(ctx_t *c, yaml_node_t *m, const field_t *table, void *obj) {
  if (m->type != YAML_MAPPING_NODE)
    return fail(c, m, "must be a mapping");
  if (check_keys(c, m, table) < 0)
    return -1;
  for (const field_t *f = table; f->key != NULL; f++) {
    yaml_node_t *v = map_get(c, m, f->key);
    if (v == NULL && !f->required)
      continue;
    size_t old = path_key(c, f->key);
    int rc = v == NULL ? fail(c, m, "required key is missing") : f->parse(c, v, obj, f);
    path_pop(c, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* Checks that v is a mapping whose keys are distinct strings (free-form maps). */
static int check_free_map(ctx_t *c, yaml_node_t *v) {
  if (v->type != YAML_MAPPING_NODE)
    return fail(c, v, "must be a mapping");
  return check_keys(c, v, NULL);
}

/* ---- generic field parsers ------------------------------------------------- */

#define FIELD_PTR(obj, f, type) ((type *)(void *)((char *)(obj) + (f)->off))

static int p_uint(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  long long x;
  if (get_int(c, v, f->min, f->max, &x) < 0)
    return -1;
  *FIELD_PTR(obj, f, unsigned) = (unsigned)x;
  return 0;
}

static int p_size(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  long long x;
  if (get_int(c, v, f->min, f->max, &x) < 0)
    return -1;
  *FIELD_PTR(obj, f, size_t) = (size_t)x;
  return 0;
}

/* A non-empty string, copied. */
static int p_str(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  const char *s;
  if (get_nonempty(c, v, &s) < 0)
    return -1;
  return set_str(c, v, FIELD_PTR(obj, f, char *), s);
}

static int p_id(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  const char *s;
  if (get_nonempty(c, v, &s) < 0)
    return -1;
  if (!is_id(s))
    return fail(c, v, "must be 1..%d characters of [A-Za-z0-9_.-]", MAX_ID_LEN);
  return set_str(c, v, FIELD_PTR(obj, f, char *), s);
}

/* A header name, stored lower-cased. */
static int p_header_name(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  const char *s;
  if (get_nonempty(c, v, &s) < 0)
    return -1;
  if (!is_token(s))
    return fail(c, v, "must be a valid header name");
  char **dst = FIELD_PTR(obj, f, char *);
  if (set_str(c, v, dst, s) < 0)
    return -1;
  ascii_case(*dst, 0);
  return 0;
}

/* A nested mapping with its own table, filling the same obj at offset off. */
static int p_struct(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  return walk_map(c, v, f->sub, (char *)obj + f->off);
}

/* ---- host:port ---------------------------------------------------------------- */

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

/* Parses "host:port" or "[v6]:port" (host kept as text, without brackets). */
static int parse_hostport(ctx_t *c, yaml_node_t *n, sy_hostport_t *hp) {
  const char *s, *host, *colon;
  if (get_nonempty(c, n, &s) < 0)
    return -1;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (close == NULL || close[1] != ':')
      return fail(c, n, "expected [address]:port, got '%.64s'", s);
    host = s + 1;
    colon = close + 1;
    if (!is_ipv6(host, (size_t)(close - host)))
      return fail(c, n, "invalid IPv6 address in '%.64s'", s);
  } else {
    host = s;
    colon = strrchr(s, ':');
    if (colon == NULL)
      return fail(c, n, "expected host:port, got '%.64s'", s);
    if (memchr(s, ':', (size_t)(colon - s)) != NULL)
      return fail(c, n, "an IPv6 address must be written [address]:port");
    if (colon == s || !is_hostname(s, (size_t)(colon - s)))
      return fail(c, n, "invalid host in '%.64s'", s);
  }
  const char *port = colon + 1;
  if (*port == '\0' || strlen(port) > 5 || *skip_digits(port) != '\0' || atoi(port) < 1 ||
      atoi(port) > 65535)
    return fail(c, n, "port must be an integer in 1..65535, got '%.64s'", s);
  size_t hlen = (size_t)(colon - host) - (s[0] == '[');
  hp->host = strndup(host, hlen);
  if (hp->host == NULL)
    return fail(c, n, "out of memory");
  hp->port = (uint16_t)atoi(port);
  return 0;
}

/* A non-empty list of distinct host:port strings into a new array. */
static int parse_hostport_list(ctx_t *c, yaml_node_t *v, sy_hostport_t **arr, size_t *n) {
  if (v->type != YAML_SEQUENCE_NODE)
    return fail(c, v, "must be a list of host:port");
  if (nitems(v) == 0)
    return fail(c, v, "needs at least one host:port");
  *arr = calloc(nitems(v), sizeof **arr);
  if (*arr == NULL)
    return fail(c, v, "out of memory");
  *n = nitems(v);
  for (size_t i = 0; i < *n; i++) {
    yaml_node_t *item = node(c, v->data.sequence.items.start[i]);
    size_t old = path_index(c, i);
    int rc = parse_hostport(c, item, &(*arr)[i]);
    for (size_t j = 0; rc == 0 && j < i; j++)
      if (strcmp((*arr)[j].host, (*arr)[i].host) == 0 && (*arr)[j].port == (*arr)[i].port)
        rc = fail(c, item, "duplicate address (same as entry %zu)", j);
    path_pop(c, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

static int p_listen(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  sy_config_t *cfg = obj;
  return parse_hostport_list(c, v, &cfg->listeners, &cfg->nlisteners);
}

static int p_servers(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  sy_upstream_conf_t *u = obj;
  return parse_hostport_list(c, v, &u->servers, &u->nservers);
}

/* ---- upstreams and prompts -------------------------------------------------- */

static const field_t upstream_fields[] = {
    {"servers", p_servers, 0, 0, 0, 1, NULL},
    {"pool_size", p_uint, offsetof(sy_upstream_conf_t, pool_size), 0, 65535, 0, NULL},
    {"connect_timeout_ms", p_uint, offsetof(sy_upstream_conf_t, connect_timeout_ms), 1, MAX_MS, 0,
     NULL},
    {"first_byte_timeout_ms", p_uint, offsetof(sy_upstream_conf_t, first_byte_timeout_ms), 1,
     MAX_MS, 0, NULL},
    {"idle_timeout_ms", p_uint, offsetof(sy_upstream_conf_t, idle_timeout_ms), 1, MAX_MS, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static int parse_upstream(ctx_t *c, yaml_node_t *k, yaml_node_t *v, sy_upstream_conf_t *u) {
  u->pool_size = 64;
  u->connect_timeout_ms = 2000;
  u->first_byte_timeout_ms = 60000;
  u->idle_timeout_ms = 60000;
  u->line = line_of(k);
  if (!is_id(text(k)))
    return fail(c, k, "upstream names must be 1..%d characters of [A-Za-z0-9_.-]", MAX_ID_LEN);
  if (set_str(c, k, &u->name, text(k)) < 0)
    return -1;
  return walk_map(c, v, upstream_fields, u);
}

static int p_upstreams(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  sy_config_t *cfg = obj;
  if (check_free_map(c, v) < 0)
    return -1;
  if (npairs(v) == 0)
    return fail(c, v, "needs at least one upstream");
  cfg->upstreams = calloc(npairs(v), sizeof *cfg->upstreams);
  if (cfg->upstreams == NULL)
    return fail(c, v, "out of memory");
  cfg->nupstreams = npairs(v);
  for (size_t i = 0; i < cfg->nupstreams; i++) {
    yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
    yaml_node_t *k = node(c, p->key);
    size_t old = path_key(c, text(k));
    int rc = parse_upstream(c, k, node(c, p->value), &cfg->upstreams[i]);
    path_pop(c, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* An upstream name, resolved to its index (upstreams are parsed before any reference). */
static int p_upstream_ref(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  const char *s;
  if (get_nonempty(c, v, &s) < 0)
    return -1;
  int i = sy_config_upstream_index(c->cfg, s);
  if (i < 0)
    return fail(c, v, "unknown upstream '%.64s'", s);
  *FIELD_PTR(obj, f, size_t) = (size_t)i;
  return 0;
}

/* Remembers the prompts mapping; its values must be strings. */
static int p_prompts(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  if (check_free_map(c, v) < 0)
    return -1;
  for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
    const char *s;
    size_t old = path_key(c, text(node(c, p->key)));
    int rc = get_str(c, node(c, p->value), &s);
    path_pop(c, old);
    if (rc < 0)
      return -1;
  }
  c->prompts = v;
  return 0;
}

/* ---- variants: headers, retrieval body, references ---------------------------- */

/* Header names a variant may not set: they frame the message or are hop-by-hop. */
static int is_reserved_header(const char *name) {
  static const char *const reserved[] = {"content-length", "transfer-encoding", "connection",
                                         "keep-alive", "upgrade", "te", "trailer",
                                         "proxy-connection", NULL};
  for (const char *const *r = reserved; *r != NULL; r++)
    if (strcasecmp(name, *r) == 0)
      return 1;
  return 0;
}

static int add_header(ctx_t *c, yaml_node_t *k, sy_variant_conf_t *var, const char *name,
                      const char *value) {
  for (size_t i = 0; i < var->nheaders; i++)
    if (strcasecmp(var->headers[i].name, name) == 0)
      return fail(c, k, "header '%.64s' is set twice for this variant", name);
  sy_kv_t *grown = realloc(var->headers, (var->nheaders + 1) * sizeof *grown);
  if (grown == NULL)
    return fail(c, k, "out of memory");
  var->headers = grown;
  sy_kv_t *kv = &var->headers[var->nheaders];
  kv->name = strdup(name);
  kv->value = strdup(value);
  var->nheaders++; /* counted even if a strdup failed, so that sy_config_free frees the other */
  if (kv->name == NULL || kv->value == NULL)
    return fail(c, k, "out of memory");
  return 0;
}

static int parse_header(ctx_t *c, yaml_node_t *k, yaml_node_t *v, sy_variant_conf_t *var) {
  const char *value;
  if (!is_token(text(k)))
    return fail(c, k, "not a valid header name");
  if (is_reserved_header(text(k)))
    return fail(c, k, "header '%.64s' cannot be set by a variant", text(k));
  if (get_str(c, v, &value) < 0)
    return -1;
  if (!is_header_value(value))
    return fail(c, v, "header value must not contain CR, LF or other control characters");
  return add_header(c, k, var, text(k), value);
}

/* `headers` and `retrieval.headers`: appended to the variant's header list. */
static int p_headers(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  if (check_free_map(c, v) < 0)
    return -1;
  for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(c, p->key);
    size_t old = path_key(c, text(k));
    int rc = parse_header(c, k, node(c, p->value), obj);
    path_pop(c, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/*
 * Types scalar n as YAML 1.1 does for plain scalars (quoted ones are strings) and
 * stores the JSON value in *out (NULL if jansson ran out of memory). Returns -1
 * with a message if the value cannot be JSON.
 */
static int scalar_json_value(ctx_t *c, yaml_node_t *n, json_t **out) {
  static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                      "on", "On", "ON", NULL};
  static const char *const falses[] = {"false", "False", "FALSE", "no", "No", "NO",
                                       "off", "Off", "OFF", NULL};
  const char *s = text(n);
  int sign = s[0] == '-' || s[0] == '+';
  if (!is_plain(n)) {
    if (get_str(c, n, &s) < 0)
      return -1;
    *out = json_string(s);
  } else if (is_null(n)) {
    *out = json_null();
  } else if (one_of(s, trues) || one_of(s, falses)) {
    *out = json_boolean(one_of(s, trues));
  } else if (is_int_text(s)) {
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
      return fail(c, n, "integer out of range");
    *out = json_integer((json_int_t)v);
  } else if (is_float_text(s)) {
    double d = strtod(s, NULL);
    if (!isfinite(d))
      return fail(c, n, "number out of range");
    *out = json_real(d);
  } else if (strcasecmp(s + sign, ".inf") == 0 || strcasecmp(s, ".nan") == 0) {
    return fail(c, n, "infinity and NaN cannot be sent as JSON");
  } else {
    *out = json_string(s); /* plain scalars cannot hold a NUL */
  }
  return 0;
}

static json_t *scalar_to_json(ctx_t *c, yaml_node_t *n) {
  json_t *j = NULL;
  if (scalar_json_value(c, n, &j) < 0)
    return NULL;
  return j != NULL ? j : (fail(c, n, "out of memory"), NULL);
}

static json_t *node_to_json(ctx_t *c, yaml_node_t *n, int depth);

static json_t *seq_to_json(ctx_t *c, yaml_node_t *n, int depth) {
  json_t *arr = json_array();
  if (arr == NULL)
    return fail(c, n, "out of memory"), NULL;
  for (size_t i = 0; i < nitems(n); i++) {
    size_t old = path_index(c, i);
    json_t *item = node_to_json(c, node(c, n->data.sequence.items.start[i]), depth + 1);
    path_pop(c, old);
    if (item == NULL || json_array_append_new(arr, item) < 0) {
      json_decref(arr);
      return item == NULL ? NULL : (fail(c, n, "out of memory"), NULL);
    }
  }
  return arr;
}

static json_t *map_to_json(ctx_t *c, yaml_node_t *n, int depth) {
  if (check_keys(c, n, NULL) < 0)
    return NULL;
  json_t *obj = json_object();
  if (obj == NULL)
    return fail(c, n, "out of memory"), NULL;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(c, p->key);
    size_t old = path_key(c, text(k));
    json_t *val = node_to_json(c, node(c, p->value), depth + 1);
    path_pop(c, old);
    if (val == NULL || json_object_set_new(obj, text(k), val) < 0) {
      json_decref(obj);
      return val == NULL ? NULL : (fail(c, k, "key is not valid UTF-8"), NULL);
    }
  }
  return obj;
}

/* Converts a YAML subtree to JSON, bounded in depth (aliases can loop) and size. */
static json_t *node_to_json(ctx_t *c, yaml_node_t *n, int depth) {
  if (depth > JSON_MAX_DEPTH)
    return fail(c, n, "nested more than %d levels deep", JSON_MAX_DEPTH), NULL;
  if (c->json_budget == 0)
    return fail(c, n, "too large (more than %d values)", JSON_MAX_NODES), NULL;
  c->json_budget--;
  switch (n->type) {
  case YAML_SCALAR_NODE:
    return scalar_to_json(c, n);
  case YAML_SEQUENCE_NODE:
    return seq_to_json(c, n, depth);
  case YAML_MAPPING_NODE:
    return map_to_json(c, n, depth);
  default:
    return fail(c, n, "unsupported YAML node"), NULL;
  }
}

/* retrieval.body: a mapping of fields set on the JSON request body. */
static int p_body(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  sy_variant_conf_t *var = obj;
  if (v->type != YAML_MAPPING_NODE)
    return fail(c, v, "must be a mapping");
  json_t *j = node_to_json(c, v, 0);
  if (j == NULL)
    return -1;
  if (json_object_size(j) == 0)
    json_decref(j); /* nothing to set: leave body_fields NULL */
  else
    var->body_fields = j;
  return 0;
}

/* prompt_version: must name a key of `prompts`; its text becomes system_prompt. */
static int p_prompt_ref(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  sy_variant_conf_t *var = obj;
  const char *s;
  if (get_nonempty(c, v, &s) < 0)
    return -1;
  yaml_node_t *p = c->prompts != NULL ? map_get(c, c->prompts, s) : NULL;
  if (p == NULL)
    return fail(c, v, "unknown prompt_version '%.64s' (not a key of prompts)", s);
  if (set_str(c, v, &var->prompt_version, s) < 0)
    return -1;
  return set_str(c, v, &var->system_prompt, text(p));
}

static int p_weight(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  sy_variant_conf_t *var = obj;
  if (!is_plain(v) || !(is_int_text(text(v)) || is_float_text(text(v))))
    return fail(c, v, "must be a number >= 0");
  double w = strtod(text(v), NULL);
  if (!(w >= 0))
    return fail(c, v, "must be a number >= 0");
  if (w > MAX_WEIGHT)
    return fail(c, v, "must be at most %g", MAX_WEIGHT);
  var->weight = w;
  return 0;
}

static const field_t retrieval_fields[] = {
    {"body", p_body, 0, 0, 0, 0, NULL},
    {"headers", p_headers, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* Order matters: `headers` before `retrieval` puts its headers first. */
static const field_t variant_fields[] = {
    {"id", p_id, offsetof(sy_variant_conf_t, id), 0, 0, 1, NULL},
    {"version", p_str, offsetof(sy_variant_conf_t, version), 0, 0, 0, NULL},
    {"upstream", p_upstream_ref, offsetof(sy_variant_conf_t, upstream), 0, 0, 1, NULL},
    {"weight", p_weight, 0, 0, 0, 0, NULL},
    {"model", p_str, offsetof(sy_variant_conf_t, model), 0, 0, 0, NULL},
    {"prompt_version", p_prompt_ref, 0, 0, 0, 0, NULL},
    {"headers", p_headers, 0, 0, 0, 0, NULL},
    {"retrieval", p_struct, 0, 0, 0, 0, retrieval_fields},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static int parse_variant(ctx_t *c, yaml_node_t *n, sy_variant_conf_t *var) {
  var->weight = 1;
  var->line = line_of(n);
  if (walk_map(c, n, variant_fields, var) < 0)
    return -1;
  return var->version == NULL ? set_str(c, n, &var->version, "1") : 0;
}

/* The id node of an experiment or variant mapping (for messages about the id). */
static yaml_node_t *id_node(ctx_t *c, yaml_node_t *m) { return map_get(c, m, "id"); }

static int p_variants(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  sy_experiment_conf_t *e = obj;
  if (v->type != YAML_SEQUENCE_NODE)
    return fail(c, v, "must be a list of variants");
  if (nitems(v) == 0 || nitems(v) > MAX_VARIANTS)
    return fail(c, v, "must have 1..%d variants", MAX_VARIANTS);
  e->variants = calloc(nitems(v), sizeof *e->variants);
  if (e->variants == NULL)
    return fail(c, v, "out of memory");
  e->nvariants = nitems(v);
  for (size_t i = 0; i < e->nvariants; i++) {
    yaml_node_t *item = node(c, v->data.sequence.items.start[i]);
    size_t old = path_index(c, i);
    int rc = parse_variant(c, item, &e->variants[i]);
    for (size_t j = 0; rc == 0 && j < i; j++)
      if (strcmp(e->variants[j].id, e->variants[i].id) == 0) {
        size_t old_id = path_key(c, "id");
        rc = fail(c, id_node(c, item), "duplicate variant id '%s' (first at line %d)",
                  e->variants[i].id, e->variants[j].line);
        path_pop(c, old_id);
      }
    path_pop(c, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* ---- experiments ---------------------------------------------------------------- */

static int p_method(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  sy_experiment_conf_t *e = obj;
  const char *s;
  if (get_nonempty(c, v, &s) < 0)
    return -1;
  if (!is_token(s) || strlen(s) > 32)
    return fail(c, v, "must be an HTTP method such as POST");
  if (set_str(c, v, &e->method, s) < 0)
    return -1;
  ascii_case(e->method, 1);
  return 0;
}

static int p_path_prefix(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  sy_experiment_conf_t *e = obj;
  const char *s;
  if (get_nonempty(c, v, &s) < 0)
    return -1;
  if (s[0] != '/')
    return fail(c, v, "must start with '/'");
  for (const char *p = s; *p != '\0'; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f)
      return fail(c, v, "must not contain spaces or control characters");
  return set_str(c, v, &e->path_prefix, s);
}

static int p_header_value(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  sy_experiment_conf_t *e = obj;
  const char *s;
  if (e->match_header == NULL)
    return fail(c, v, "needs match.header");
  if (get_str(c, v, &s) < 0)
    return -1;
  if (!is_header_value(s))
    return fail(c, v, "header value must not contain CR, LF or other control characters");
  return set_str(c, v, &e->match_header_value, s);
}

static int p_policy(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  sy_experiment_conf_t *e = obj;
  const char *s;
  if (get_nonempty(c, v, &s) < 0)
    return -1;
  if (strcmp(s, "split") == 0)
    e->policy = SY_POLICY_SPLIT;
  else if (strcmp(s, "fixed") == 0)
    e->policy = SY_POLICY_FIXED;
  else
    return fail(c, v, "must be one of: split, fixed");
  return 0;
}

/* control: names a variant of this experiment (variants are parsed first). */
static int p_control(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  sy_experiment_conf_t *e = obj;
  const char *s;
  if (get_nonempty(c, v, &s) < 0)
    return -1;
  for (size_t i = 0; i < e->nvariants; i++)
    if (strcmp(e->variants[i].id, s) == 0) {
      e->control = i;
      return 0;
    }
  return fail(c, v, "'%.64s' is not a variant of this experiment", s);
}

static const field_t match_fields[] = {
    {"method", p_method, 0, 0, 0, 0, NULL},
    {"path_prefix", p_path_prefix, 0, 0, 0, 1, NULL},
    {"header", p_header_name, offsetof(sy_experiment_conf_t, match_header), 0, 0, 0, NULL},
    {"header_value", p_header_value, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* Order matters: variants before control. */
static const field_t experiment_fields[] = {
    {"id", p_id, offsetof(sy_experiment_conf_t, id), 0, 0, 1, NULL},
    {"match", p_struct, 0, 0, 0, 1, match_fields},
    {"sticky_header", p_header_name, offsetof(sy_experiment_conf_t, sticky_header), 0, 0, 0, NULL},
    {"salt", p_str, offsetof(sy_experiment_conf_t, salt), 0, 0, 0, NULL},
    {"policy", p_policy, 0, 0, 0, 0, NULL},
    {"variants", p_variants, 0, 0, 0, 1, NULL},
    {"control", p_control, 0, 0, 0, 1, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static int parse_experiment(ctx_t *c, yaml_node_t *n, sy_experiment_conf_t *e) {
  e->line = line_of(n);
  if (walk_map(c, n, experiment_fields, e) < 0)
    return -1;
  if (e->salt == NULL && set_str(c, n, &e->salt, e->id) < 0)
    return -1;
  double total = 0;
  for (size_t i = 0; i < e->nvariants; i++)
    total += e->variants[i].weight;
  if (e->policy == SY_POLICY_SPLIT && total <= 0) {
    size_t old = path_key(c, "variants");
    fail(c, map_get(c, n, "variants"), "weights are all zero (policy split needs a sum > 0)");
    path_pop(c, old);
    return -1;
  }
  return 0;
}

/* Experiment i against the earlier ones: unique id, no identical match. */
static int check_experiment(ctx_t *c, yaml_node_t *n, const sy_experiment_conf_t *ex, size_t i) {
  const sy_experiment_conf_t *e = &ex[i];
  for (size_t j = 0; j < i; j++) {
    const sy_experiment_conf_t *o = &ex[j];
    if (strcmp(o->id, e->id) == 0) {
      size_t old = path_key(c, "id");
      fail(c, id_node(c, n), "duplicate experiment id '%s' (first at line %d)", e->id, o->line);
      path_pop(c, old);
      return -1;
    }
    if (streq_null(o->method, e->method) && strcmp(o->path_prefix, e->path_prefix) == 0 &&
        streq_null(o->match_header, e->match_header) &&
        streq_null(o->match_header_value, e->match_header_value)) {
      size_t old = path_key(c, "match");
      fail(c, map_get(c, n, "match"), "same match as experiment '%s' (line %d): ambiguous", o->id,
           o->line);
      path_pop(c, old);
      return -1;
    }
  }
  return 0;
}

static int p_experiments(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  sy_config_t *cfg = obj;
  if (v->type != YAML_SEQUENCE_NODE)
    return fail(c, v, "must be a list of experiments");
  if (nitems(v) == 0)
    return 0;
  cfg->experiments = calloc(nitems(v), sizeof *cfg->experiments);
  if (cfg->experiments == NULL)
    return fail(c, v, "out of memory");
  cfg->nexperiments = nitems(v);
  for (size_t i = 0; i < cfg->nexperiments; i++) {
    yaml_node_t *item = node(c, v->data.sequence.items.start[i]);
    size_t old = path_index(c, i);
    int rc = parse_experiment(c, item, &cfg->experiments[i]);
    if (rc == 0)
      rc = check_experiment(c, item, cfg->experiments, i);
    path_pop(c, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* ---- default route and the top level ---------------------------------------------- */

/* status: only 404 (a JSON error) is implemented so far. */
static int p_status(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  if (!is_plain(v) || strcmp(text(v), "404") != 0)
    return fail(c, v, "only 404 is supported");
  return 0;
}

static const field_t default_route_fields[] = {
    {"upstream", p_upstream_ref, offsetof(sy_config_t, default_upstream), 0, 0, 0, NULL},
    {"status", p_status, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static int p_default_route(ctx_t *c, yaml_node_t *v, void *obj, const field_t *f) {
  sy_config_t *cfg = obj;
  if (walk_map(c, v, default_route_fields, cfg) < 0)
    return -1;
  int up = map_get(c, v, "upstream") != NULL, status = map_get(c, v, "status") != NULL;
  if (up == status)
    return fail(c, v, "needs exactly one of upstream, status");
  cfg->default_kind = up ? SY_DEFAULT_PASS : SY_DEFAULT_NOT_FOUND;
  return 0;
}

static const field_t limits_fields[] = {
    {"max_header_bytes", p_size, offsetof(sy_limits_t, max_header_bytes), 1, MAX_BYTES, 0, NULL},
    {"max_body_bytes", p_size, offsetof(sy_limits_t, max_body_bytes), 1, MAX_BYTES, 0, NULL},
    {"header_timeout_ms", p_uint, offsetof(sy_limits_t, header_timeout_ms), 1, MAX_MS, 0, NULL},
    {"idle_timeout_ms", p_uint, offsetof(sy_limits_t, idle_timeout_ms), 1, MAX_MS, 0, NULL},
    {"shutdown_timeout_ms", p_uint, offsetof(sy_limits_t, shutdown_timeout_ms), 1, MAX_MS, 0,
     NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* Order matters: upstreams and prompts before experiments and default_route. */
static const field_t top_fields[] = {
    {"workers", p_uint, offsetof(sy_config_t, workers), 1, 64, 0, NULL},
    {"listen", p_listen, 0, 0, 0, 1, NULL},
    {"limits", p_struct, offsetof(sy_config_t, limits), 0, 0, 0, limits_fields},
    {"upstreams", p_upstreams, 0, 0, 0, 1, NULL},
    {"prompts", p_prompts, 0, 0, 0, 0, NULL},
    {"experiments", p_experiments, 0, 0, 0, 0, NULL},
    {"default_route", p_default_route, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static void set_defaults(sy_config_t *cfg) {
  cfg->workers = 1;
  cfg->limits.max_header_bytes = 16384;
  cfg->limits.max_body_bytes = 1u << 20;
  cfg->limits.header_timeout_ms = 10000;
  cfg->limits.idle_timeout_ms = 60000;
  cfg->limits.shutdown_timeout_ms = 30000;
  cfg->default_kind = SY_DEFAULT_NOT_FOUND;
}

/* ---- YAML loading ------------------------------------------------------------------ */

/* 1-based line of byte offset off in the source, clamped to the last line. */
static int src_line(const ctx_t *c, size_t off) {
  int line = 1;
  for (size_t i = 0; i < off && i < c->srclen; i++)
    if (c->src[i] == '\n' && i + 1 < c->srclen)
      line++;
  return line;
}

static int yaml_fail(ctx_t *c, const yaml_parser_t *p) {
  /* libyaml reports the end of input one line past the last; clamp to a real line. */
  int last = src_line(c, c->srclen);
  int line = p->error == YAML_READER_ERROR ? src_line(c, p->problem_offset)
                                           : (int)p->problem_mark.line + 1;
  if (line > last)
    line = last;
  if (c->err == NULL || c->errlen == 0)
    return -1;
  const char *problem = p->problem != NULL ? p->problem : "out of memory";
  if (p->context != NULL)
    snprintf(c->err, c->errlen, "%s:%d: yaml: %s (%s at line %d)", c->name, line, problem,
             p->context, (int)p->context_mark.line + 1);
  else
    snprintf(c->err, c->errlen, "%s:%d: yaml: %s", c->name, line, problem);
  return -1;
}

/* Loads the one document of the stream into doc; a second document is an error. */
static int load_document(ctx_t *c, yaml_parser_t *p, yaml_document_t *doc) {
  if (!yaml_parser_load(p, doc))
    return yaml_fail(c, p);
  yaml_document_t next;
  if (!yaml_parser_load(p, &next)) {
    yaml_document_delete(doc);
    return yaml_fail(c, p);
  }
  yaml_node_t *root = yaml_document_get_root_node(&next);
  int line = root != NULL ? line_of(root) : 0;
  yaml_document_delete(&next);
  if (root != NULL) {
    yaml_document_delete(doc);
    if (c->err != NULL && c->errlen > 0)
      snprintf(c->err, c->errlen, "%s:%d: yaml: only one document is allowed", c->name, line);
    return -1;
  }
  return 0;
}

/* Messages quote user text; keep them one line whatever that text holds. */
static void one_line(char *s) {
  for (; s != NULL && *s != '\0'; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      *s = '?';
}

static int build(ctx_t *c, sy_config_t *cfg) {
  yaml_node_t *root = yaml_document_get_root_node(c->doc);
  if (root == NULL)
    return fail(c, NULL, "the config is empty");
  set_defaults(cfg);
  cfg->path = strdup(c->name);
  if (cfg->path == NULL)
    return fail(c, root, "out of memory");
  return walk_map(c, root, top_fields, cfg);
}

/* See config.h: parses a YAML buffer; errors name `name` and a line. */
int sy_config_parse(const char *name, const char *yaml, size_t len, sy_config_t **out, char *err,
                    size_t errlen) {
  ctx_t c = {.name = name, .src = yaml, .srclen = len, .json_budget = JSON_MAX_NODES,
             .err = err, .errlen = errlen};
  yaml_parser_t parser;
  yaml_document_t doc;
  int rc = -1;
  *out = NULL;
  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if (!yaml_parser_initialize(&parser))
    return fail(&c, NULL, "out of memory");
  yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
  if (load_document(&c, &parser, &doc) == 0) {
    c.doc = &doc;
    c.cfg = calloc(1, sizeof *c.cfg);
    rc = c.cfg == NULL ? fail(&c, NULL, "out of memory") : build(&c, c.cfg);
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);
  if (rc == 0)
    *out = c.cfg;
  else
    sy_config_free(c.cfg);
  if (errlen > 0)
    one_line(err);
  return rc;
}

/* Reads a whole file into a malloc'd buffer; returns NULL with errno set on failure. */
static char *read_all(const char *path, size_t *len) {
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

/* See config.h: reads the file at `path`, then sy_config_parse. */
int sy_config_load(const char *path, sy_config_t **out, char *err, size_t errlen) {
  size_t len = 0;
  *out = NULL;
  char *text_buf = read_all(path, &len);
  if (text_buf == NULL) {
    if (err != NULL && errlen > 0) {
      snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
      one_line(err);
    }
    return -1;
  }
  int rc = sy_config_parse(path, text_buf, len, out, err, errlen);
  free(text_buf);
  return rc;
}

/* ---- freeing and lookups ------------------------------------------------------------- */

static void free_hostports(sy_hostport_t *hp, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(hp[i].host);
  free(hp);
}

static void free_variant(sy_variant_conf_t *v) {
  free(v->id);
  free(v->version);
  free(v->model);
  free(v->prompt_version);
  free(v->system_prompt);
  json_decref(v->body_fields);
  for (size_t i = 0; i < v->nheaders; i++) {
    free(v->headers[i].name);
    free(v->headers[i].value);
  }
  free(v->headers);
}

static void free_experiment(sy_experiment_conf_t *e) {
  free(e->id);
  free(e->method);
  free(e->path_prefix);
  free(e->match_header);
  free(e->match_header_value);
  free(e->sticky_header);
  free(e->salt);
  for (size_t i = 0; i < e->nvariants; i++)
    free_variant(&e->variants[i]);
  free(e->variants);
}

/* See config.h; also frees any partly built config (used on error paths). */
void sy_config_free(sy_config_t *cfg) {
  if (cfg == NULL)
    return;
  free(cfg->path);
  free_hostports(cfg->listeners, cfg->nlisteners);
  for (size_t i = 0; i < cfg->nupstreams; i++) {
    free(cfg->upstreams[i].name);
    free_hostports(cfg->upstreams[i].servers, cfg->upstreams[i].nservers);
  }
  free(cfg->upstreams);
  for (size_t i = 0; i < cfg->nexperiments; i++)
    free_experiment(&cfg->experiments[i]);
  free(cfg->experiments);
  free(cfg);
}

/* See config.h: index of upstream `name`, or -1. */
int sy_config_upstream_index(const sy_config_t *cfg, const char *name) {
  for (size_t i = 0; i < cfg->nupstreams; i++)
    if (cfg->upstreams[i].name != NULL && strcmp(cfg->upstreams[i].name, name) == 0)
      return (int)i;
  return -1;
}
