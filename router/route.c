/*
 * route.c — experiment matching (see route.h).
 */
#include "router/route.h"

#include <string.h>

static int header_matches(const sy_experiment_conf_t *e, const sy_head_t *head) {
  size_t n;
  const char *v = sy_head_get(head, e->match_header, &n);
  if (v == NULL)
    return 0;
  if (e->match_header_value == NULL)
    return 1;
  return strlen(e->match_header_value) == n && memcmp(v, e->match_header_value, n) == 0;
}

static int path_has_prefix(const char *path, size_t pathlen, const char *prefix) {
  size_t plen = strlen(prefix);
  size_t q = 0;
  while (q < pathlen && path[q] != '?')
    q++;
  return plen <= q && memcmp(path, prefix, plen) == 0;
}

int sy_route_match(const sy_config_t *cfg, const char *method, const char *path, size_t pathlen,
                   const sy_head_t *head) {
  int best = -1;
  int best_hdr = 0;
  size_t best_len = 0;
  for (size_t i = 0; i < cfg->nexperiments; i++) {
    const sy_experiment_conf_t *e = &cfg->experiments[i];
    if (e->method != NULL && strcmp(e->method, method) != 0)
      continue;
    if (!path_has_prefix(path, pathlen, e->path_prefix))
      continue;
    int has_hdr = e->match_header != NULL;
    if (has_hdr && !header_matches(e, head))
      continue;
    size_t len = strlen(e->path_prefix);
    if (best < 0 || has_hdr > best_hdr || (has_hdr == best_hdr && len > best_len)) {
      best = (int)i;
      best_hdr = has_hdr;
      best_len = len;
    }
  }
  return best;
}
