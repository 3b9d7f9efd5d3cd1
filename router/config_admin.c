/*
 * config_admin.c — the top-level `admin:` block: the admin API's listener and its
 * bearer token.
 *
 *   admin:
 *     listen: 127.0.0.1:9090      # default; loopback only unless you say otherwise
 *     token_env: SWITCHYARD_ADMIN_TOKEN
 *
 * The token itself never appears in the file: it is read from the environment
 * variable at load time, and a missing or short one is a config error with a line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/config_admin.h"
#include "router/config_util.h"

#define MIN_TOKEN_LEN 16

static int p_admin_listen(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                          const sy__yaml_field_t *f) {
  sy_admin_conf_t *a = obj;
  free(a->listen.host);
  a->listen.host = NULL;
  return sy__yaml_get_hostport(w, v, &a->listen.host, &a->listen.port);
}

static int p_token_env(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_admin_conf_t *a = obj;
  const char *name;
  if (sy__yaml_get_nonempty(w, v, &name) < 0)
    return -1;
  const char *val = getenv(name);
  if (val == NULL || val[0] == '\0')
    return sy__yaml_fail(w, v, "environment variable %s is not set (the admin token)", name);
  if (strlen(val) < MIN_TOKEN_LEN)
    return sy__yaml_fail(w, v, "the token in %s is shorter than %d characters", name,
                         MIN_TOKEN_LEN);
  return sy__yaml_set_str(w, v, &a->token, val);
}

static const sy__yaml_field_t admin_fields[] = {
    {"listen", p_admin_listen, 0, 0, 0, 0, NULL},
    {"token_env", p_token_env, 0, 0, 0, 1, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

int sy__cfg_p_admin(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_config_t *cfg = obj;
  sy_admin_conf_t *a = &cfg->admin;
  if (v->type != YAML_MAPPING_NODE)
    return sy__yaml_fail(w, v, "must be a mapping {listen, token_env}");
  a->on = 1;
  a->line = sy__yaml_line(v);
  if (sy__yaml_walk_map(w, v, admin_fields, a) < 0)
    return -1;
  if (a->listen.host == NULL) {
    a->listen.port = 9090;
    return sy__yaml_set_str(w, v, &a->listen.host, "127.0.0.1");
  }
  return 0;
}

void sy__cfg_admin_free(sy_admin_conf_t *a) {
  free(a->listen.host);
  if (a->token != NULL)
    memset(a->token, 0, strlen(a->token));
  free(a->token);
  a->listen.host = a->token = NULL;
}
