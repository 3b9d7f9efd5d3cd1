/*
 * runtime.c — what a loaded config becomes in a worker: resolved upstream
 * addresses with their connection pools, and the prepared splits.
 *
 * A runtime is reference-counted. The worker holds one reference to the current
 * runtime and every exchange in flight holds one to the runtime it started on;
 * a reload replaces the worker's reference, and the old runtime — with its pools
 * — goes away when its last exchange ends.
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "router/log.h"
#include "router/proxy.h"

static int resolve(const sy_hostport_t *hp, struct sockaddr_storage *out, char *err,
                   size_t errlen) {
  struct addrinfo hints, *res = NULL;
  char port[8];
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(port, sizeof(port), "%u", (unsigned)hp->port);
  /* Resolution happens once per load (start and reload), never per request. */
  int r = getaddrinfo(hp->host, port, &hints, &res);
  if (r != 0 || res == NULL) {
    snprintf(err, errlen, "cannot resolve upstream server %s:%u: %s", hp->host,
             (unsigned)hp->port, gai_strerror(r));
    return -1;
  }
  memcpy(out, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return 0;
}

static int build_pools(sy_runtime_t *rt, char *err, size_t errlen) {
  const sy_config_t *cfg = rt->cfg;
  rt->pools = calloc(cfg->nupstreams, sizeof(*rt->pools));
  if (rt->pools == NULL && cfg->nupstreams > 0)
    return -1;
  for (size_t i = 0; i < cfg->nupstreams; i++) {
    const sy_upstream_conf_t *uc = &cfg->upstreams[i];
    sy_uppool_t *p = &rt->pools[i];
    p->conf = uc;
    p->rt = rt;
    p->servers = calloc(uc->nservers, sizeof(*p->servers));
    if (p->servers == NULL)
      return -1;
    p->nservers = uc->nservers;
    for (size_t j = 0; j < uc->nservers; j++) {
      sy_upserver_t *s = &p->servers[j];
      s->pool = p;
      snprintf(s->label, sizeof(s->label), "%s:%u", uc->servers[j].host,
               (unsigned)uc->servers[j].port);
      if (resolve(&uc->servers[j], &s->addr, err, errlen) < 0)
        return -1;
    }
  }
  return 0;
}

static int build_splits(sy_runtime_t *rt, char *err, size_t errlen) {
  const sy_config_t *cfg = rt->cfg;
  rt->splits = calloc(cfg->nexperiments ? cfg->nexperiments : 1, sizeof(*rt->splits));
  if (rt->splits == NULL)
    return -1;
  for (size_t i = 0; i < cfg->nexperiments; i++) {
    const sy_experiment_conf_t *e = &cfg->experiments[i];
    const char *ids[SY_SPLIT_MAX_VARIANTS];
    double weights[SY_SPLIT_MAX_VARIANTS];
    for (size_t v = 0; v < e->nvariants && v < SY_SPLIT_MAX_VARIANTS; v++) {
      ids[v] = e->variants[v].id;
      weights[v] = e->variants[v].weight;
    }
    if (e->policy == SY_POLICY_FIXED) {
      for (size_t v = 0; v < e->nvariants; v++)
        weights[v] = v == e->control ? 1.0 : 0.0;
    }
    if (sy_split_init(&rt->splits[i], e->salt, ids, weights, e->nvariants) < 0) {
      snprintf(err, errlen, "experiment %s: invalid split weights", e->id);
      return -1;
    }
  }
  return 0;
}

static void runtime_free(sy_runtime_t *rt) {
  if (rt->pools != NULL) {
    for (size_t i = 0; i < rt->cfg->nupstreams; i++) {
      sy_uppool_t *p = &rt->pools[i];
      for (size_t j = 0; p->servers != NULL && j < p->nservers; j++) {
        while (p->servers[j].idle != NULL)
          sy__upstream_close(p->servers[j].idle, 0);
      }
      free(p->servers);
    }
    free(rt->pools);
  }
  free(rt->splits);
  sy_config_free(rt->cfg);
  free(rt);
}

sy_runtime_t *sy__runtime_new(sy_worker_t *w, sy_config_t *cfg, char *err, size_t errlen) {
  sy_runtime_t *rt = calloc(1, sizeof(*rt));
  if (rt == NULL) {
    sy_config_free(cfg);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  rt->refs = 1;
  rt->w = w;
  rt->cfg = cfg;
  rt->generation = ++w->generation;
  err[0] = '\0';
  if (build_pools(rt, err, errlen) < 0 || build_splits(rt, err, errlen) < 0) {
    if (err[0] == '\0')
      snprintf(err, errlen, "out of memory");
    runtime_free(rt);
    return NULL;
  }
  return rt;
}

void sy__runtime_unref(sy_runtime_t *rt) {
  if (rt != NULL && --rt->refs == 0)
    runtime_free(rt);
}
