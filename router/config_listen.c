/*
 * config_listen.c — the top-level `listen:` list (see config_listen.h).
 *
 *   listen:
 *     - 127.0.0.1:8080                     # plain HTTP, as before
 *     - address: 0.0.0.0:8443              # TLS
 *       tls: {cert_file: /etc/switchyard/cert.pem, key_file: /etc/switchyard/key.pem,
 *             min_version: "1.2"}
 *
 * The TLS context is made here, at load: the files are read once (the certificate
 * chain, leaf first, and its key, which must match), so that a bad file is a
 * check-config error naming its field, a reload with a bad file is rejected whole
 * (the running certificate stays), and no file is read during a handshake.
 */
#include "router/config_listen.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/tls.h"

static int p_address(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_hostport_t *hp = obj;
  (void)f;
  return sy__yaml_get_hostport(w, v, &hp->host, &hp->port);
}

static int p_min_version(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                         const sy__yaml_field_t *f) {
  sy_listen_tls_t *t = obj;
  const char *s;
  (void)f;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  if (strcmp(s, "1.2") != 0 && strcmp(s, "1.3") != 0)
    return sy__yaml_fail(w, v, "must be \"1.2\" or \"1.3\", got '%.16s'", s);
  t->tls13_only = strcmp(s, "1.3") == 0;
  return 0;
}

static const sy__yaml_field_t tls_fields[] = {
    {"cert_file", sy__yaml_p_str, offsetof(sy_listen_tls_t, cert_file), 0, 0, 1, NULL},
    {"key_file", sy__yaml_p_str, offsetof(sy_listen_tls_t, key_file), 0, 0, 1, NULL},
    {"min_version", p_min_version, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* Fails at tls.KEY (its node in tm, else tm) with msg. */
static int tls_fail(sy__yaml_walk_t *w, yaml_node_t *tm, const char *key, const char *msg) {
  yaml_node_t *n = key != NULL ? sy__yaml_map_get(w, tm, key) : NULL;
  size_t old = key != NULL ? sy__yaml_path_key(w, key) : 0;
  sy__yaml_fail(w, n != NULL ? n : tm, "%s", msg);
  if (key != NULL)
    sy__yaml_path_pop(w, old);
  return -1;
}

/* The listener's TLS context from its walked `tls:` block tm. */
static int make_ctx(sy__yaml_walk_t *w, yaml_node_t *tm, sy_listen_tls_t *t) {
  const char *keys[] = {"cert_file", "key_file"};
  const char *paths[] = {t->cert_file, t->key_file};
  for (int i = 0; i < 2; i++) {
    FILE *fp = fopen(paths[i], "r");
    if (fp == NULL) {
      char msg[400];
      snprintf(msg, sizeof msg, "cannot read %.300s: %s", paths[i], strerror(errno));
      return tls_fail(w, tm, keys[i], msg);
    }
    fclose(fp);
  }
  sy_tls_server_conf_t c = {t->cert_file, t->key_file, t->tls13_only};
  char err[400];
  t->ctx = sy_tls_server_ctx_new(&c, err, sizeof err);
  if (t->ctx != NULL)
    return 0;
  /* Only the certificate's own problem is cert_file's; the key's (unreadable as a key,
   * or another certificate's) are key_file's. */
  return tls_fail(w, tm,
                  strncmp(err, "cannot load the certificate", 27) == 0 ? "cert_file" : "key_file",
                  err);
}

/* `tls:` of an entry: walked after its address, into the listener's sy_listen_tls_t. */
static int p_later(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  (void)w, (void)v, (void)obj, (void)f;
  return 0;
}

/* One entry: host:port, or {address, tls}. */
static int parse_entry(sy__yaml_walk_t *w, yaml_node_t *item, sy_hostport_t *hp,
                       sy_listen_tls_t *t) {
  if (item->type != YAML_MAPPING_NODE)
    return sy__yaml_get_hostport(w, item, &hp->host, &hp->port);
  const sy__yaml_field_t fields[] = {
      {"address", p_address, 0, 0, 0, 1, NULL},
      {"tls", p_later, 0, 0, 0, 0, NULL}, /* walked below, into t */
      {NULL, NULL, 0, 0, 0, 0, NULL},
  };
  yaml_node_t *tm = sy__yaml_map_get(w, item, "tls");
  if (sy__yaml_walk_map(w, item, fields, hp) < 0)
    return -1;
  if (tm == NULL)
    return 0;
  size_t old = sy__yaml_path_key(w, "tls");
  int rc = tm->type != YAML_MAPPING_NODE
               ? sy__yaml_fail(w, tm, "must be a mapping {cert_file, key_file, min_version}")
               : sy__yaml_walk_map(w, tm, tls_fields, t);
  if (rc == 0)
    rc = make_ctx(w, tm, t);
  sy__yaml_path_pop(w, old);
  hp->tls = t->ctx != NULL;
  return rc;
}

int sy__cfg_p_listen(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_config_t *cfg = obj;
  (void)f;
  if (v->type != YAML_SEQUENCE_NODE)
    return sy__yaml_fail(w, v, "must be a list of host:port or {address, tls}");
  size_t n = sy__yaml_nitems(v);
  if (n == 0)
    return sy__yaml_fail(w, v, "needs at least one host:port");
  cfg->listeners = calloc(n, sizeof *cfg->listeners);
  cfg->listen_tls = calloc(n, sizeof *cfg->listen_tls);
  if (cfg->listeners == NULL || cfg->listen_tls == NULL)
    return sy__yaml_fail(w, v, "out of memory");
  cfg->nlisteners = n;
  for (size_t i = 0; i < n; i++) {
    yaml_node_t *item = sy__yaml_item(w, v, i);
    size_t old = sy__yaml_path_index(w, i);
    sy_hostport_t *hp = &cfg->listeners[i];
    int rc = parse_entry(w, item, hp, &cfg->listen_tls[i]);
    for (size_t j = 0; rc == 0 && j < i; j++)
      if (strcmp(cfg->listeners[j].host, hp->host) == 0 && cfg->listeners[j].port == hp->port)
        rc = sy__yaml_fail(w, item, "duplicate address (same as entry %zu)", j);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

void sy__cfg_listen_free(sy_config_t *cfg) {
  for (size_t i = 0; i < cfg->nlisteners; i++) {
    free(cfg->listeners[i].host);
    if (cfg->listen_tls != NULL) {
      free(cfg->listen_tls[i].cert_file);
      free(cfg->listen_tls[i].key_file);
      sy_tls_ctx_free(cfg->listen_tls[i].ctx);
    }
  }
  free(cfg->listeners);
  free(cfg->listen_tls);
  cfg->listeners = NULL;
  cfg->listen_tls = NULL;
  cfg->nlisteners = 0;
}
