#include "stats/posterior.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/events.h"
#include "proto/keys.h"
#include "stats/scripts.h"
#include "stats/store.h"

int sy_stats_sync(sy_stats_t *s, const sy_sync_exp_t *x, sy_redis_reply_cb cb, void *data) {
  char meta[SY_KEY_MAX], prefix[SY_KEY_MAX];
  if (sy_key_meta(meta, sizeof meta, x->id) < 0 || sy_key_prefix(prefix, sizeof prefix, x->id) < 0)
    return -1;
  sy_argv_t a;
  sy_argv_init(&a);
  sy_argv_add(&a, "EVAL");
  sy_argv_add(&a, SY_LUA_SYNC);
  /* one server: the script adds E to sy:experiments; in a cluster that set is on
   * another slot, so it gets its own SADD below */
  sy_argv_add(&a, s->cluster != NULL ? "1" : "2");
  sy_argv_add(&a, meta);
  if (s->cluster == NULL)
    sy_argv_add(&a, SY_KEY_EXPERIMENTS);
  sy_argv_add(&a, prefix);
  sy_argv_add(&a, x->id);
  sy_argv_num(&a, (double)x->nvariants);
  for (size_t k = 0; k < x->nvariants; k++)
    sy_argv_add(&a, x->variants[k]);
  sy_argv_append(&a, x->meta);
  char stream[SY_KEY_MAX];
  sy_argv_pair(&a, "stream", sy_stats_stream(s, x->id, stream, sizeof stream));
  sy_argv_pair(&a, "maxlen", s->maxlen);
  int rc = -1;
  if (sy_argv_ok(&a))
    rc = sy_stats_command(s, meta, 0, cb, data, (int)a.n, (const char **)a.v, a.l);
  sy_argv_free(&a);
  if (rc == 0 && s->cluster != NULL) {
    const char *argv[] = {"SADD", SY_KEY_EXPERIMENTS, x->id};
    size_t lens[] = {4, strlen(SY_KEY_EXPERIMENTS), strlen(x->id)};
    sy_stats_command(s, SY_KEY_EXPERIMENTS, 0, NULL, NULL, 3, argv, lens);
  }
  return rc < 0 ? -1 : 0;
}

/* See posterior.h. */
size_t sy_stats_version_field(char *out, size_t cap, const char *config_hash, const char *variant,
                              const char *version) {
  size_t o = 0;
  const char *parts[3] = {config_hash, variant, version};
  for (int k = 0; k < 3; k++) {
    for (const char *p = parts[k] != NULL ? parts[k] : ""; *p != '\0'; p++) {
      const char *esc = *p == '%' ? "%25" : *p == '|' ? "%7C" : NULL;
      size_t m = esc != NULL ? 3 : 1;
      if (o + m + 2 > cap)
        return 0;
      memcpy(out + o, esc != NULL ? esc : p, m);
      o += m;
    }
    if (k < 2)
      out[o++] = '|';
  }
  out[o] = '\0';
  return o;
}

/* See posterior.h. */
int sy_stats_versions(sy_stats_t *s, const char *exp, const char *config_hash, uint64_t now_ms,
                      const char *const *variants, const char *const *versions, size_t n,
                      sy_redis_reply_cb cb, void *data) {
  char key[SY_KEY_MAX], field[512];
  if (sy_key_versions(key, sizeof key, exp) < 0)
    return -1;
  sy_argv_t a;
  sy_argv_init(&a);
  sy_argv_add(&a, "EVAL");
  sy_argv_add(&a, SY_LUA_VERSIONS);
  sy_argv_add(&a, "1");
  sy_argv_add(&a, key);
  sy_argv_num(&a, (double)now_ms);
  for (size_t k = 0; k < n; k++)
    if (sy_stats_version_field(field, sizeof field, config_hash, variants[k], versions[k]) > 0)
      sy_argv_add(&a, field);
  int rc = -1;
  if (sy_argv_ok(&a))
    rc = sy_stats_command(s, key, 0, cb, data, (int)a.n, (const char **)a.v, a.l);
  sy_argv_free(&a);
  return rc < 0 ? -1 : 0;
}

static double num_of(const redisReply *r) {
  return r != NULL && r->type == REDIS_REPLY_STRING ? strtod(r->str, NULL) : 0;
}

/* HMGET n sum sumsq -> {n, sum, sumsq} (absent fields are 0). */
static json_t *suff_stats(const redisReply *hm) {
  json_t *o = json_object();
  const redisReply *e0 = hm && hm->elements > 0 ? hm->element[0] : NULL;
  const redisReply *e1 = hm && hm->elements > 1 ? hm->element[1] : NULL;
  const redisReply *e2 = hm && hm->elements > 2 ? hm->element[2] : NULL;
  json_object_set_new(o, "n", json_real(num_of(e0)));
  json_object_set_new(o, "sum", json_real(num_of(e1)));
  json_object_set_new(o, "sumsq", json_real(num_of(e2)));
  return o;
}

json_t *sy_stats_sync_snapshot(const redisReply *reply, const char *exp, char *const *variants,
                               size_t nvariants) {
  if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
    return NULL;
  const redisReply *vs = reply->element[0], *ss = reply->element[1];
  if (vs->type != REDIS_REPLY_ARRAY || ss->type != REDIS_REPLY_ARRAY || vs->elements != nvariants)
    return NULL;
  json_t *vars = json_object(), *segs = json_object();
  for (size_t i = 0; i < nvariants; i++)
    json_object_set_new(vars, variants[i], suff_stats(vs->element[i]));
  for (size_t i = 0; i < ss->elements; i++) {
    const redisReply *row = ss->element[i];
    if (row->type != REDIS_REPLY_ARRAY || row->elements != nvariants + 1 ||
        row->element[0]->type != REDIS_REPLY_STRING)
      continue;
    json_t *so = json_object();
    for (size_t k = 0; k < nvariants; k++)
      json_object_set_new(so, variants[k], suff_stats(row->element[k + 1]));
    json_object_set_new(segs, row->element[0]->str, so);
  }
  json_t *e = json_pack("{s:o,s:o}", "variants", vars, "segments", segs);
  return json_pack("{s:{s:o}}", "experiments", exp, e);
}

int sy_stats_sweep(sy_stats_t *s, const char *exp, const char *metric, unsigned limit,
                   sy_redis_reply_cb cb, void *data) {
  char pending[SY_KEY_MAX], prefix[SY_KEY_MAX], ts[32], ver[16], lim[16], back[24];
  char stream[SY_KEY_MAX], tpre[SY_KEY_MAX];
  sy_stats_stream(s, exp, stream, sizeof stream);
  sy_stats_trace_prefix(s, exp, tpre, sizeof tpre);
  if (sy_key_pending(pending, sizeof pending, exp) < 0 ||
      sy_key_prefix(prefix, sizeof prefix, exp) < 0)
    return -1;
  snprintf(ver, sizeof ver, "%d", SY_EVENT_SCHEMA_VERSION);
  snprintf(lim, sizeof lim, "%u", limit);
  snprintf(back, sizeof back, "%llu", (unsigned long long)s->trace_back_ms);
  sy_stats_timestamp(s, ts);
  const char *argv[] = {"EVAL",    SY_LUA_SWEEP, "2",    pending, stream,
                        prefix,    lim,          s->maxlen, exp, metric,
                        s->router_instance, ver, ts,     back,    tpre};
  size_t n = sizeof argv / sizeof argv[0], lens[sizeof argv / sizeof argv[0]];
  for (size_t k = 0; k < n; k++)
    lens[k] = strlen(argv[k]);
  return sy_stats_command(s, pending, 0, cb, data, (int)n, argv, lens) < 0 ? -1 : 0;
}
