/*
 * config_upstream.c — an upstream's servers, TLS and Host header (see
 * config_upstream.h).
 *
 * A server is `https://host[:port]` (port 443 by default), `http://host[:port]`
 * (80), or `host:port` (plain, as before URLs were accepted). The TLS context of an
 * upstream with an https:// server is made here, at load, so that a bad CA bundle
 * or client key is a check-config error naming its field, and so that no file is
 * read on a worker's loop during a handshake.
 */
#include "router/config_upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/config_util.h"
#include "router/tls.h"

/* ---- servers ------------------------------------------------------------------------ */

/* One server: a URL or host:port into hp. */
static int parse_server(sy__yaml_walk_t *w, yaml_node_t *n, sy_hostport_t *hp) {
  const char *s;
  if (sy__yaml_get_nonempty(w, n, &s) < 0)
    return -1;
  const char *sep = strstr(s, "://");
  if (sep == NULL)
    return sy__yaml_parse_hostport(w, n, s, 0, &hp->host, &hp->port);
  uint16_t dflt;
  if ((size_t)(sep - s) == 5 && strncmp(s, "https", 5) == 0)
    dflt = 443;
  else if ((size_t)(sep - s) == 4 && strncmp(s, "http", 4) == 0)
    dflt = 80;
  else
    return sy__yaml_fail(w, n, "unknown URL scheme '%.*s' (use https://, http:// or host:port)",
                         (int)(sep - s > 16 ? 16 : sep - s), s);
  hp->tls = dflt == 443;
  char rest[300];
  size_t len = strlen(sep + 3);
  if (len > 0 && sep[3 + len - 1] == '/')
    len--; /* https://api.example.com/ */
  if (len >= sizeof rest)
    return sy__yaml_fail(w, n, "server URL too long");
  memcpy(rest, sep + 3, len);
  rest[len] = '\0';
  if (strpbrk(rest, "/?#@") != NULL)
    return sy__yaml_fail(w, n,
                         "a server URL is scheme://host[:port], without a path, query or user "
                         "(the path is the request's), got '%.64s'",
                         s);
  return sy__yaml_parse_hostport(w, n, rest, dflt, &hp->host, &hp->port);
}

/* See config_upstream.h: a non-empty list of distinct addresses. */
int sy__cfg_hostport_list(sy__yaml_walk_t *w, yaml_node_t *v, sy_hostport_t **arr, size_t *n,
                          int urls) {
  const char *what = urls ? "server" : "host:port";
  if (v->type != YAML_SEQUENCE_NODE)
    return sy__yaml_fail(w, v, "must be a list of %s",
                         urls ? "servers (https://host, "
                                "http://host:port, host:port)"
                              : what);
  if (sy__yaml_nitems(v) == 0)
    return sy__yaml_fail(w, v, "needs at least one %s", what);
  *arr = calloc(sy__yaml_nitems(v), sizeof **arr);
  if (*arr == NULL)
    return sy__yaml_fail(w, v, "out of memory");
  *n = sy__yaml_nitems(v);
  for (size_t i = 0; i < *n; i++) {
    yaml_node_t *item = sy__yaml_item(w, v, i);
    size_t old = sy__yaml_path_index(w, i);
    sy_hostport_t *hp = &(*arr)[i];
    int rc =
        urls ? parse_server(w, item, hp) : sy__yaml_get_hostport(w, item, &hp->host, &hp->port);
    for (size_t j = 0; rc == 0 && j < i; j++)
      if (strcmp((*arr)[j].host, hp->host) == 0 && (*arr)[j].port == hp->port)
        rc = sy__yaml_fail(w, item, "duplicate address (same as entry %zu)", j);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* See config_upstream.h. */
int sy__cfg_p_servers(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_upstream_conf_t *u = obj;
  (void)f;
  return sy__cfg_hostport_list(w, v, &u->servers, &u->nservers, 1);
}

/* ---- host_header ---------------------------------------------------------------------- */

/* A Host value: a name or address with an optional port, nothing else. */
static int is_host_value(const char *s) {
  if (*s == '\0' || strlen(s) > 255)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          strchr(".-_:[]", *s) != NULL))
      return 0;
  return 1;
}

/* See config_upstream.h: client | server | a literal host. */
int sy__cfg_p_host_header(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                          const sy__yaml_field_t *f) {
  sy_upstream_conf_t *u = obj;
  const char *s;
  (void)f;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  if (strcmp(s, "client") == 0) {
    u->host_mode = SY_HOST_CLIENT;
    return 0;
  }
  if (strcmp(s, "server") == 0) {
    u->host_mode = SY_HOST_SERVER;
    return 0;
  }
  if (!is_host_value(s))
    return sy__yaml_fail(w, v, "must be client, server or a host[:port], got '%.64s'", s);
  u->host_mode = SY_HOST_LITERAL;
  return sy__yaml_set_str(w, v, &u->host_literal, s);
}

/* ---- tls ---------------------------------------------------------------------------------- */

static int p_server_name(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  if (!is_host_value(s) || strchr(s, ':') != NULL)
    return sy__yaml_fail(w, v, "must be a host name or IPv4 address, got '%.64s'", s);
  return sy__yaml_p_str(w, v, obj, f);
}

static const sy__yaml_field_t tls_fields[] = {
    {"ca_file", sy__yaml_p_str, offsetof(sy_upstream_tls_t, ca_file), 0, 0, 0, NULL},
    {"cert_file", sy__yaml_p_str, offsetof(sy_upstream_tls_t, cert_file), 0, 0, 0, NULL},
    {"key_file", sy__yaml_p_str, offsetof(sy_upstream_tls_t, key_file), 0, 0, 0, NULL},
    {"insecure", sy__yaml_p_bool, offsetof(sy_upstream_tls_t, insecure), 0, 0, 0, NULL},
    {"server_name", p_server_name, offsetof(sy_upstream_tls_t, server_name), 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* See config_upstream.h: the `tls:` mapping into u->tls. */
int sy__cfg_p_up_tls(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_upstream_conf_t *u = obj;
  (void)f;
  return sy__yaml_walk_map(w, v, tls_fields, &u->tls);
}

/* Fails at tls.KEY (its node in tm, or tm) with msg. */
static int tls_fail(sy__yaml_walk_t *w, yaml_node_t *tm, const char *key, const char *msg) {
  yaml_node_t *n = key != NULL && tm != NULL ? sy__yaml_map_get(w, tm, key) : NULL;
  size_t old = key != NULL && tm != NULL ? sy__yaml_path_key(w, key) : 0;
  sy__yaml_fail(w, n != NULL ? n : tm, "%s", msg);
  if (key != NULL && tm != NULL)
    sy__yaml_path_pop(w, old);
  return -1;
}

/* Each file given can be opened now (the error names the field and says why). */
static int files_readable(sy__yaml_walk_t *w, yaml_node_t *tm, const sy_upstream_tls_t *t) {
  const struct {
    const char *key, *path;
  } files[] = {{"ca_file", t->ca_file}, {"cert_file", t->cert_file}, {"key_file", t->key_file}};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    if (files[i].path == NULL)
      continue;
    FILE *fp = fopen(files[i].path, "r");
    if (fp != NULL) {
      fclose(fp);
      continue;
    }
    char msg[400];
    snprintf(msg, sizeof msg, "cannot read %.300s: %s", files[i].path, strerror(errno));
    return tls_fail(w, tm, files[i].key, msg);
  }
  return 0;
}

/* The field a sy_tls_ctx_new error is about (its messages name what failed). */
static const char *ctx_error_field(const char *err) {
  if (strstr(err, "CA file") != NULL)
    return "ca_file";
  if (strstr(err, "client certificate") != NULL)
    return "cert_file";
  if (strstr(err, "client key") != NULL)
    return "key_file";
  return NULL;
}

/* See config_upstream.h. */
int sy__cfg_upstream_tls(sy__yaml_walk_t *w, yaml_node_t *m, sy_upstream_conf_t *u) {
  yaml_node_t *tm = sy__yaml_map_get(w, m, "tls");
  int https = 0;
  for (size_t i = 0; i < u->nservers; i++)
    https |= u->servers[i].tls;
  if (!https)
    return tm == NULL ? 0 : tls_fail(w, m, "tls", "no server of this upstream is https://");
  const sy_upstream_tls_t *t = &u->tls;
  size_t old = tm != NULL ? sy__yaml_path_key(w, "tls") : 0;
  int rc = 0;
  if ((t->cert_file != NULL) != (t->key_file != NULL))
    rc = tls_fail(w, tm, NULL, "cert_file and key_file go together (mTLS): give both or neither");
  else if (t->insecure && t->ca_file != NULL)
    rc = tls_fail(w, tm, "insecure", "insecure: true verifies nothing: drop ca_file or insecure");
  else if (files_readable(w, tm, t) < 0)
    rc = -1;
  if (rc == 0) {
    sy_tls_conf_t c = {t->ca_file, t->cert_file, t->key_file, t->insecure, 0};
    char err[400];
    u->tls_ctx = sy_tls_ctx_new(&c, err, sizeof err);
    if (u->tls_ctx == NULL)
      rc = tm != NULL ? tls_fail(w, tm, ctx_error_field(err), err)
                      : sy__yaml_fail(w, sy__yaml_map_get(w, m, "servers"), "%s", err);
  }
  if (tm != NULL)
    sy__yaml_path_pop(w, old);
  return rc;
}

/* See config_upstream.h. */
void sy__cfg_upstream_tls_free(sy_upstream_conf_t *u) {
  sy_tls_ctx_free(u->tls_ctx);
  u->tls_ctx = NULL;
  free(u->tls.ca_file);
  free(u->tls.cert_file);
  free(u->tls.key_file);
  free(u->tls.server_name);
  free(u->host_literal);
}
