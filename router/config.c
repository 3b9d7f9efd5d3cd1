/*
 * config.c — loads and validates the YAML config into an immutable sy_config_t.
 *
 * This file holds what is switchyard's own: the key tables of each mapping, the
 * parsers for its fields (ids, header names and values, methods, path prefixes,
 * weights, policies, the `thompson:` block), the checks across fields (duplicate
 * ids, ambiguous matches, all-zero weights, a prior's keys against the outcome,
 * floor * variants <= 1) and the resolution of names (upstream -> index, control ->
 * variant index, prompt_version -> prompt text). The document loading, the table
 * walker, the error messages and the generic scalar parsers are in yaml_walk.c.
 *
 * The walker visits fields in table order, not file order, so a name can be
 * resolved the moment it is read: upstreams and prompts come before experiments,
 * variants before control. Adding a key is one table row, plus a parser function
 * if none of the generic ones fits.
 *
 * The walk stops at the first problem and leaves one line "FILE:LINE: PATH: problem"
 * in the caller's buffer; the half-built config is then released by
 * sy_config_free(), which copes with any partly filled state (arrays are allocated
 * zeroed with their final count before their elements are parsed).
 */
#include "router/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "router/config_admin.h"
#include "router/config_exp.h"
#include "router/config_listen.h"
#include "router/config_retry.h"
#include "router/config_stats.h"
#include "router/config_proxy.h"
#include "router/config_upstream.h"
#include "router/config_util.h"
#include "router/yaml_walk.h"

/* ---- upstreams and prompts -------------------------------------------------------- */

static int p_up_headers(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                        const sy__yaml_field_t *f) {
  sy_upstream_conf_t *u = obj;
  return sy__cfg_parse_headers(w, v, &u->headers, &u->nheaders, "upstream");
}

static int p_up_auth(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  static const char *const modes[] = {"replace", "passthrough", "drop", NULL};
  int m;
  if (sy__cfg_choice(w, v, modes, &m) < 0)
    return -1;
  ((sy_upstream_conf_t *)obj)->auth_passthrough = m == 1;
  ((sy_upstream_conf_t *)obj)->auth_drop = m == 2;
  return 0;
}

/* A path piece: starts with '/', no spaces or control characters, no '?' or '#'. */
static int p_path_piece(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  if (s[0] != '/')
    return sy__yaml_fail(w, v, "must start with '/'");
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#')
      return sy__yaml_fail(w, v, "must be a path without spaces, '?' or '#'");
  return sy__yaml_set_str(w, v, SY__YAML_FIELD_PTR(obj, f, char *), s);
}

/* query: name=value pairs joined by '&', as they go on the wire (no spaces, '#'). */
static int p_path_query(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '#' || *p == '?')
      return sy__yaml_fail(w, v, "must be name=value pairs joined by '&' (no spaces, '?' or '#')");
  return sy__yaml_set_str(w, v, SY__YAML_FIELD_PTR(obj, f, char *), s);
}

static const sy__yaml_field_t path_fields[] = {
    {"strip_prefix", p_path_piece, offsetof(sy_upstream_conf_t, path_strip), 0, 0, 0, NULL},
    {"add_prefix", p_path_piece, offsetof(sy_upstream_conf_t, path_add), 0, 0, 0, NULL},
    {"query", p_path_query, offsetof(sy_upstream_conf_t, path_query), 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static int p_up_path(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  if (v->type != YAML_MAPPING_NODE)
    return sy__yaml_fail(w, v, "must be a mapping (strip_prefix, add_prefix, query)");
  return sy__yaml_walk_map(w, v, path_fields, obj);
}

static const sy__yaml_field_t upstream_fields[] = {
    {"servers", sy__cfg_p_servers, 0, 0, 0, 1, NULL},
    {"tls", sy__cfg_p_up_tls, 0, 0, 0, 0, NULL},
    {"host_header", sy__cfg_p_host_header, 0, 0, 0, 0, NULL},
    {"proxy", sy__cfg_p_proxy, 0, 0, 0, 0, NULL},
    {"headers", p_up_headers, 0, 0, 0, 0, NULL},
    {"authorization", p_up_auth, 0, 0, 0, 0, NULL},
    {"path", p_up_path, 0, 0, 0, 0, NULL},
    {"pool_size", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, pool_size), 0, 65535, 0, NULL},
    {"connect_timeout_ms", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, connect_timeout_ms), 1,
     MAX_MS, 0, NULL},
    {"first_byte_timeout_ms", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, first_byte_timeout_ms),
     1, MAX_MS, 0, NULL},
    {"idle_timeout_ms", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, idle_timeout_ms), 1, MAX_MS,
     0, NULL},
    {"eject_after", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, eject_after), 0, 1000, 0, NULL},
    {"eject_ms", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, eject_ms), 1, MAX_MS, 0, NULL},
    {"eject_max_ms", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, eject_max_ms), 1, MAX_MS, 0,
     NULL},
    {"eject_max_percent", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, eject_max_percent), 0, 100,
     0, NULL},
    {"resolve_interval_ms", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, resolve_interval_ms), 100,
     MAX_MS, 0, NULL},
    {"retry", sy__cfg_p_retry, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static int parse_upstream(sy__yaml_walk_t *w, yaml_node_t *k, yaml_node_t *v,
                          sy_upstream_conf_t *u) {
  u->pool_size = 64;
  u->connect_timeout_ms = 2000;
  u->first_byte_timeout_ms = 60000;
  u->eject_after = 5;
  u->eject_ms = 10000;
  u->eject_max_ms = 300000;
  u->eject_max_percent = 50;
  u->idle_timeout_ms = 60000;
  u->resolve_interval_ms = 30000;
  sy__cfg_retry_defaults(&u->retry);
  u->line = sy__yaml_line(k);
  if (!sy__cfg_is_id(sy__yaml_text(k)))
    return sy__yaml_fail(w, k, "upstream names must be 1..%d characters of [A-Za-z0-9_.-]",
                         MAX_ID_LEN);
  if (sy__yaml_set_str(w, k, &u->name, sy__yaml_text(k)) < 0)
    return -1;
  if (sy__yaml_walk_map(w, v, upstream_fields, u) < 0)
    return -1;
  if (sy__cfg_upstream_proxy(w, v, u) < 0)
    return -1;
  return sy__cfg_upstream_tls(w, v, u);
}

static int p_upstreams(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_config_t *cfg = obj;
  if (sy__yaml_check_free_map(w, v) < 0)
    return -1;
  if (sy__yaml_npairs(v) == 0)
    return sy__yaml_fail(w, v, "needs at least one upstream");
  cfg->upstreams = calloc(sy__yaml_npairs(v), sizeof *cfg->upstreams);
  if (cfg->upstreams == NULL)
    return sy__yaml_fail(w, v, "out of memory");
  cfg->nupstreams = sy__yaml_npairs(v);
  for (size_t i = 0; i < cfg->nupstreams; i++) {
    yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
    yaml_node_t *k = sy__yaml_node(w, p->key);
    size_t old = sy__yaml_path_key(w, sy__yaml_text(k));
    int rc = parse_upstream(w, k, sy__yaml_node(w, p->value), &cfg->upstreams[i]);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* Remembers the prompts mapping; its values must be strings. */
static int p_prompts(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy__cfg_build_t *b = w->user;
  if (sy__yaml_check_free_map(w, v) < 0)
    return -1;
  for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
    const char *s;
    size_t old = sy__yaml_path_key(w, sy__yaml_text(sy__yaml_node(w, p->key)));
    int rc = sy__yaml_get_str(w, sy__yaml_node(w, p->value), &s);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  b->prompts = v;
  return 0;
}

/* ---- default route and the top level ---------------------------------------------------- */

/* status: only 404 (a JSON error) is implemented so far. */
static int p_status(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  if (!sy__yaml_is_plain(v) || strcmp(sy__yaml_text(v), "404") != 0)
    return sy__yaml_fail(w, v, "only 404 is supported");
  return 0;
}

static const sy__yaml_field_t default_route_fields[] = {
    {"upstream", sy__cfg_p_upstream_ref, offsetof(sy_config_t, default_upstream), 0, 0, 0, NULL},
    {"status", p_status, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static int p_default_route(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                           const sy__yaml_field_t *f) {
  sy_config_t *cfg = obj;
  if (sy__yaml_walk_map(w, v, default_route_fields, cfg) < 0)
    return -1;
  int up = sy__yaml_map_get(w, v, "upstream") != NULL;
  int status = sy__yaml_map_get(w, v, "status") != NULL;
  if (up == status)
    return sy__yaml_fail(w, v, "needs exactly one of upstream, status");
  cfg->default_kind = up ? SY_DEFAULT_PASS : SY_DEFAULT_NOT_FOUND;
  return 0;
}

static const sy__yaml_field_t limits_fields[] = {
    {"max_header_bytes", sy__yaml_p_size, offsetof(sy_limits_t, max_header_bytes), 1, MAX_BYTES, 0,
     NULL},
    {"max_body_bytes", sy__yaml_p_size, offsetof(sy_limits_t, max_body_bytes), 1, MAX_BYTES, 0,
     NULL},
    {"held_body_bytes", sy__yaml_p_size, offsetof(sy_limits_t, held_body_bytes), 1,
     MAX_HELD_BYTES, 0, NULL},
    {"max_stream_body_bytes", sy__yaml_p_size, offsetof(sy_limits_t, max_stream_body_bytes), 1,
     MAX_STREAM_BYTES, 0, NULL},
    {"header_timeout_ms", sy__yaml_p_uint, offsetof(sy_limits_t, header_timeout_ms), 1, MAX_MS, 0,
     NULL},
    {"idle_timeout_ms", sy__yaml_p_uint, offsetof(sy_limits_t, idle_timeout_ms), 1, MAX_MS, 0,
     NULL},
    {"shutdown_timeout_ms", sy__yaml_p_uint, offsetof(sy_limits_t, shutdown_timeout_ms), 1, MAX_MS,
     0, NULL},
    {"max_connections", sy__yaml_p_uint, offsetof(sy_limits_t, max_connections), 0, 10000000, 0,
     NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* The limits, and the one rule between two of them: a worker must be able to hold
 * at least one body of the largest size it accepts. */
static int p_limits(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  if (sy__yaml_p_struct(w, v, obj, f) < 0)
    return -1;
  const sy_limits_t *l = (const sy_limits_t *)((char *)obj + f->off);
  if (l->held_body_bytes < l->max_body_bytes)
    return sy__yaml_fail(w, v, "held_body_bytes (%zu) must be at least max_body_bytes (%zu)",
                         l->held_body_bytes, l->max_body_bytes);
  return 0;
}

/* Order matters: upstreams and prompts before experiments and default_route. */
static const sy__yaml_field_t top_fields[] = {
    {"workers", sy__yaml_p_uint, offsetof(sy_config_t, workers), 1, 64, 0, NULL},
    {"listen", sy__cfg_p_listen, 0, 0, 0, 1, NULL},
    {"limits", p_limits, offsetof(sy_config_t, limits), 0, 0, 0, limits_fields},
    {"upstreams", p_upstreams, 0, 0, 0, 1, NULL},
    {"prompts", p_prompts, 0, 0, 0, 0, NULL},
    {"experiments", sy__cfg_p_experiments, 0, 0, 0, 0, NULL},
    {"default_route", p_default_route, 0, 0, 0, 0, NULL},
    {"stats_file", sy__yaml_p_str, offsetof(sy_config_t, stats_file), 0, 0, 0, NULL},
    {"stats_poll_ms", sy__yaml_p_uint, offsetof(sy_config_t, stats_poll_ms), MIN_STATS_POLL_MS,
     MAX_STATS_POLL_MS, 0, NULL},
    {"data_dir", sy__yaml_p_str, offsetof(sy_config_t, data_dir), 0, 0, 0, NULL},
    {"redis", sy__cfg_p_redis, 0, 0, 0, 0, NULL},
    {"events", sy__cfg_p_events, 0, 0, 0, 0, NULL},
    {"privacy", sy__cfg_p_privacy, 0, 0, 0, 0, NULL},
    {"api_keys", sy__cfg_p_api_keys, 0, 0, 0, 0, NULL},
    {"admin", sy__cfg_p_admin, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static void set_defaults(sy_config_t *cfg) {
  cfg->workers = 1;
  cfg->limits.max_header_bytes = 16384;
  /* Anthropic's Messages API takes requests up to 32 MB: a long document or a few
   * base64 images fit; more is refused upstream anyway. */
  cfg->limits.max_body_bytes = 32u << 20;
  cfg->limits.held_body_bytes = 256u << 20;
  cfg->limits.max_stream_body_bytes = 100u << 20;
  cfg->limits.header_timeout_ms = 10000;
  cfg->limits.idle_timeout_ms = 60000;
  cfg->limits.shutdown_timeout_ms = 30000;
  cfg->default_kind = SY_DEFAULT_NOT_FOUND;
  cfg->stats_poll_ms = 1000;
  sy__cfg_stats_defaults(cfg);
}

/* ---- loading ----------------------------------------------------------------------------- */

static int build(sy__yaml_walk_t *w, sy_config_t *cfg) {
  yaml_node_t *root = sy__yaml_root(w);
  if (root == NULL)
    return sy__yaml_fail(w, NULL, "the config is empty");
  set_defaults(cfg);
  cfg->path = strdup(w->name);
  if (cfg->path == NULL)
    return sy__yaml_fail(w, root, "out of memory");
  if (sy__yaml_walk_map(w, root, top_fields, cfg) < 0)
    return -1;
  return sy__cfg_stats_finish(w, cfg);
}

/* The config's name in events and the version registry: the first 16 hex digits of the
 * SHA-256 of its bytes as read (so an edit, even of a comment, is a new config). */
static void config_hash(const char *yaml, size_t len, char out[17]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char md[crypto_hash_sha256_BYTES]; /* libsodium's: allocates nothing */
  crypto_hash_sha256(md, (const unsigned char *)yaml, len);
  for (int i = 0; i < 8; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[16] = '\0';
}

/* See config.h: parses a YAML buffer; errors name `name` and a line. */
int sy_config_parse(const char *name, const char *yaml, size_t len, sy_config_t **out, char *err,
                    size_t errlen) {
  sy__cfg_build_t b = {NULL, NULL};
  sy__yaml_walk_t w;
  int rc = -1;
  *out = NULL;
  sy__yaml_init(&w, name, yaml, len, &b, err, errlen);
  if (sy__yaml_load(&w) == 0) {
    b.cfg = calloc(1, sizeof *b.cfg);
    if (b.cfg != NULL)
      config_hash(yaml, len, b.cfg->config_hash);
    rc = b.cfg == NULL ? sy__yaml_fail(&w, NULL, "out of memory") : build(&w, b.cfg);
    sy__yaml_unload(&w);
  }
  if (rc == 0)
    *out = b.cfg;
  else
    sy_config_free(b.cfg);
  if (errlen > 0)
    sy__yaml_one_line(err);
  return rc;
}

/* See config.h: reads the file at `path`, then sy_config_parse. */
int sy_config_load(const char *path, sy_config_t **out, char *err, size_t errlen) {
  size_t len = 0;
  *out = NULL;
  char *text_buf = sy__yaml_read_file(path, &len);
  if (text_buf == NULL) {
    if (err != NULL && errlen > 0) {
      snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
      sy__yaml_one_line(err);
    }
    return -1;
  }
  int rc = sy_config_parse(path, text_buf, len, out, err, errlen);
  free(text_buf);
  return rc;
}

/* ---- freeing and lookups ------------------------------------------------------------------- */

static void free_hostports(sy_hostport_t *hp, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(hp[i].host);
    sy__cfg_proxy_free(hp[i].proxy);
  }
  free(hp);
}

/* See config.h; also frees any partly built config (used on error paths). */
void sy_config_free(sy_config_t *cfg) {
  if (cfg == NULL)
    return;
  free(cfg->path);
  sy__cfg_listen_free(cfg);
  for (size_t i = 0; i < cfg->nupstreams; i++) {
    free(cfg->upstreams[i].name);
    free_hostports(cfg->upstreams[i].servers, cfg->upstreams[i].nservers);
    for (size_t j = 0; j < cfg->upstreams[i].nheaders; j++) {
      free(cfg->upstreams[i].headers[j].name);
      free(cfg->upstreams[i].headers[j].value);
    }
    free(cfg->upstreams[i].headers);
    sy__cfg_upstream_tls_free(&cfg->upstreams[i]);
    sy__cfg_proxy_free(cfg->upstreams[i].proxy);
    free(cfg->upstreams[i].path_strip);
    free(cfg->upstreams[i].path_add);
    free(cfg->upstreams[i].path_query);
  }
  free(cfg->upstreams);
  for (size_t i = 0; i < cfg->nexperiments; i++)
    sy__cfg_experiment_free(&cfg->experiments[i]);
  free(cfg->experiments);
  free(cfg->stats_file);
  sy__cfg_stats_free(cfg);
  sy__cfg_admin_free(&cfg->admin);
  free(cfg);
}

/* See config.h: index of upstream `name`, or -1. */
int sy_config_upstream_index(const sy_config_t *cfg, const char *name) {
  return sy__cfg_upstream_index(cfg, name);
}
