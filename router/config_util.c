/*
 * config_util.c — the config loader's shared rules and scalar parsers (config_util.h).
 */
#include "router/config_util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- switchyard's string rules ------------------------------------------------- */

int sy__cfg_is_token(const char *s) {
  if (*s == '\0')
    return 0;
  for (; *s != '\0'; s++)
    if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
      return 0;
  return 1;
}

/* Identifiers (experiment, variant and upstream names): [A-Za-z0-9_.-]{1,64}. */
int sy__cfg_is_id(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > MAX_ID_LEN)
    return 0;
  for (; *s != '\0'; s++)
    if (!isalnum((unsigned char)*s) && strchr("_.-", *s) == NULL)
      return 0;
  return 1;
}

int sy__cfg_is_header_value(const char *s) {
  for (; *s != '\0'; s++)
    if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
      return 0;
  return 1;
}

void sy__cfg_ascii_case(char *s, int upper) {
  for (; *s != '\0'; s++)
    *s = (char)(upper ? toupper((unsigned char)*s) : tolower((unsigned char)*s));
}

int sy__cfg_streq_null(const char *a, const char *b) {
  return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* ---- scalars: choices and real numbers ------------------------------------------ */

/* Stores in *out the index of n's text in the NULL-terminated list `names`; any
 * other text fails with "must be one of: a, b, c". */
int sy__cfg_choice(sy__yaml_walk_t *w, yaml_node_t *n, const char *const *names, int *out) {
  const char *s;
  char list[128] = "";
  size_t len = 0;
  if (sy__yaml_get_nonempty(w, n, &s) < 0)
    return -1;
  for (int i = 0; names[i] != NULL; i++) {
    if (strcmp(s, names[i]) == 0) {
      *out = i;
      return 0;
    }
    if (len < sizeof list)
      len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i > 0 ? ", " : "", names[i]);
  }
  return sy__yaml_fail(w, n, "must be one of: %s", list);
}

/* Stores in *out the value of n, a plain decimal integer or real that is finite;
 * anything else fails with "must be WHAT". */
int sy__cfg_number(sy__yaml_walk_t *w, yaml_node_t *n, const char *what, double *out) {
  const char *s = sy__yaml_is_plain(n) ? sy__yaml_text(n) : "";
  if (!sy__yaml_is_int_text(s) && !sy__yaml_is_float_text(s))
    return sy__yaml_fail(w, n, "must be %s", what);
  double x = strtod(s, NULL);
  if (!isfinite(x))
    return sy__yaml_fail(w, n, "must be %s", what);
  *out = x;
  return 0;
}

/* Field parsers storing a `double` at obj + f->off, each with its own range. */
int sy__cfg_p_real(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  return sy__cfg_number(w, v, "a number", SY__YAML_FIELD_PTR(obj, f, double));
}

int sy__cfg_p_positive(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  double x;
  if (sy__cfg_number(w, v, "a number > 0", &x) < 0)
    return -1;
  if (!(x > 0))
    return sy__yaml_fail(w, v, "must be a number > 0");
  *SY__YAML_FIELD_PTR(obj, f, double) = x;
  return 0;
}

int sy__cfg_p_nonnegative(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                          const sy__yaml_field_t *f) {
  double x;
  if (sy__cfg_number(w, v, "a number >= 0", &x) < 0)
    return -1;
  if (!(x >= 0))
    return sy__yaml_fail(w, v, "must be a number >= 0");
  *SY__YAML_FIELD_PTR(obj, f, double) = x;
  return 0;
}

/* A number strictly between 0 and 1. */
int sy__cfg_p_fraction(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  double x;
  if (sy__cfg_number(w, v, "a number > 0 and < 1", &x) < 0)
    return -1;
  if (!(x > 0 && x < 1))
    return sy__yaml_fail(w, v, "must be a number > 0 and < 1");
  *SY__YAML_FIELD_PTR(obj, f, double) = x;
  return 0;
}

/* ---- field parsers shared by several tables ------------------------------------ */

int sy__cfg_p_id(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  if (!sy__cfg_is_id(s))
    return sy__yaml_fail(w, v, "must be 1..%d characters of [A-Za-z0-9_.-]", MAX_ID_LEN);
  return sy__yaml_set_str(w, v, SY__YAML_FIELD_PTR(obj, f, char *), s);
}

/* A header name, stored lower-cased. */
int sy__cfg_p_header_name(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                          const sy__yaml_field_t *f) {
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  if (!sy__cfg_is_token(s))
    return sy__yaml_fail(w, v, "must be a valid header name");
  char **dst = SY__YAML_FIELD_PTR(obj, f, char *);
  if (sy__yaml_set_str(w, v, dst, s) < 0)
    return -1;
  sy__cfg_ascii_case(*dst, 0);
  return 0;
}

/* See config_util.h. */
int sy__cfg_upstream_index(const sy_config_t *cfg, const char *name) {
  for (size_t i = 0; i < cfg->nupstreams; i++)
    if (cfg->upstreams[i].name != NULL && strcmp(cfg->upstreams[i].name, name) == 0)
      return (int)i;
  return -1;
}

/* An upstream name, resolved to its index (upstreams are parsed before any reference). */
int sy__cfg_p_upstream_ref(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                           const sy__yaml_field_t *f) {
  const sy__cfg_build_t *b = w->user;
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  int i = sy__cfg_upstream_index(b->cfg, s);
  if (i < 0)
    return sy__yaml_fail(w, v, "unknown upstream '%.64s'", s);
  *SY__YAML_FIELD_PTR(obj, f, size_t) = (size_t)i;
  return 0;
}

/* ---- header lists (variants' and upstreams') --------------------------------------------- */

static int is_reserved_header(const char *name) {
  static const char *const reserved[] = {"content-length", "transfer-encoding", "connection",
                                         "keep-alive",     "upgrade",           "te",
                                         "trailer",        "proxy-connection",  NULL};
  for (const char *const *r = reserved; *r != NULL; r++)
    if (strcasecmp(name, *r) == 0)
      return 1;
  return 0;
}

/* value with every ${env:NAME} replaced by that variable of the environment, into a
 * new string in *out; a variable that is not set fails, naming it. */
static int expand_env(sy__yaml_walk_t *w, yaml_node_t *v, const char *value, char **out) {
  size_t cap = strlen(value) + 1, len = 0;
  char *s = malloc(cap);
  if (s == NULL)
    return sy__yaml_fail(w, v, "out of memory");
  for (const char *p = value; *p != '\0';) {
    const char *add = p;
    size_t n = 1;
    if (strncmp(p, "${env:", 6) == 0) {
      const char *end = strchr(p + 6, '}');
      char name[128];
      size_t nl = end != NULL ? (size_t)(end - (p + 6)) : 0;
      if (end == NULL || nl == 0 || nl >= sizeof name) {
        free(s);
        return sy__yaml_fail(w, v, "${env:NAME}: an environment variable's name, then '}'");
      }
      memcpy(name, p + 6, nl);
      name[nl] = '\0';
      add = getenv(name);
      if (add == NULL) {
        free(s);
        return sy__yaml_fail(w, v, "environment variable %s is not set", name);
      }
      n = strlen(add);
      p = end + 1;
    } else {
      p++;
    }
    if (len + n + 1 > cap) {
      cap = (len + n + 1) * 2;
      char *g = realloc(s, cap);
      if (g == NULL) {
        free(s);
        return sy__yaml_fail(w, v, "out of memory");
      }
      s = g;
    }
    memcpy(s + len, add, n);
    len += n;
  }
  s[len] = '\0';
  *out = s;
  return 0;
}

int sy__cfg_parse_headers(sy__yaml_walk_t *w, yaml_node_t *v, sy_kv_t **hs, size_t *n,
                          const char *owner) {
  if (sy__yaml_check_free_map(w, v) < 0)
    return -1;
  if (*n + (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start) > MAX_HEADERS)
    return sy__yaml_fail(w, v, "at most %d headers for a%s %s", MAX_HEADERS,
                         owner[0] == 'u' ? "n" : "", owner);
  for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
    yaml_node_t *k = sy__yaml_node(w, p->key), *val = sy__yaml_node(w, p->value);
    const char *name = sy__yaml_text(k), *value;
    size_t old = sy__yaml_path_key(w, name);
    int rc = 0;
    char *expanded = NULL;
    if (!sy__cfg_is_token(name))
      rc = sy__yaml_fail(w, k, "not a valid header name");
    else if (is_reserved_header(name))
      rc = sy__yaml_fail(w, k, "header '%.64s' cannot be set by a%s %s", name,
                         owner[0] == 'u' ? "n" : "", owner);
    else if (sy__yaml_get_str(w, val, &value) < 0 || expand_env(w, val, value, &expanded) < 0)
      rc = -1;
    else if (!sy__cfg_is_header_value(expanded))
      rc = sy__yaml_fail(w, val,
                         "header value must not contain CR, LF or other control characters");
    for (size_t i = 0; rc == 0 && i < *n; i++)
      if (strcasecmp((*hs)[i].name, name) == 0)
        rc = sy__yaml_fail(w, k, "header '%.64s' is set twice for this %s", name, owner);
    if (rc == 0) {
      sy_kv_t *grown = realloc(*hs, (*n + 1) * sizeof *grown);
      if (grown == NULL) {
        rc = sy__yaml_fail(w, k, "out of memory");
      } else {
        *hs = grown;
        sy_kv_t *kv = &grown[*n];
        kv->name = strdup(name);
        kv->value = expanded;
        expanded = NULL;
        (*n)++; /* counted even if strdup failed, so that sy_config_free frees the value */
        if (kv->name == NULL)
          rc = sy__yaml_fail(w, k, "out of memory");
      }
    }
    free(expanded);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}
