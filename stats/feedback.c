#include "stats/feedback.h"

#include <stdlib.h>
#include <string.h>

#include "base/numfmt.h"
#include "proto/keys.h"
#include "stats/scripts.h"
#include "stats/store.h"

/* Cluster mode: a trace record lives under its experiment's hash tag, and the API
 * call may not name the experiment, so the lookup asks every experiment served (one
 * single-slot script each, in parallel); at most one holds the record. The caller's
 * callback gets the first non-empty reply; if none has it, the last empty one, or
 * NULL if a shard could not answer (the record may be there). */
typedef struct fan_s {
  sy_redis_reply_cb cb;
  void *data;
  size_t left;
  int done, failed;
} fan_t;

static void on_fan(sy_redis_t *r, redisReply *reply, void *data) {
  fan_t *f = data;
  f->left--;
  if (!f->done) {
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
      f->done = 1;
      f->cb(r, reply, f->data);
    } else if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
      f->failed = 1;
    }
    if (!f->done && f->left == 0) {
      f->done = 1;
      f->cb(r, f->failed ? NULL : reply, f->data);
    }
  }
  if (f->left == 0)
    free(f);
}

static int trace_get_cluster(sy_stats_t *s, const unsigned char tid[16], const char *trace_id,
                             const char *back, sy_redis_reply_cb cb, void *data) {
  fan_t *f = calloc(1, sizeof *f);
  if (f == NULL || s->nexps == 0) {
    free(f);
    return -1;
  }
  f->cb = cb;
  f->data = data;
  f->left = 1; /* a hold until every command is queued (replies never come sooner) */
  size_t queued = 0;
  for (size_t i = 0; i < s->nexps; i++) {
    char refs[SY_KEY_MAX];
    if (sy_key_exp_refs(refs, sizeof refs, s->exps[i]) < 0)
      continue;
    const char *argv[] = {"EVAL", SY_LUA_TRACE_GET, "1", refs, (const char *)tid, trace_id, back};
    size_t lens[] = {4, strlen(SY_LUA_TRACE_GET), 1, strlen(refs), 16, strlen(trace_id),
                     strlen(back)};
    if (sy_stats_command(s, refs, 0, on_fan, f, 7, argv, lens) < 0) {
      f->failed = 1;
    } else {
      f->left++;
      queued++;
    }
  }
  if (queued == 0) {
    free(f);
    return -1;
  }
  f->left--;
  return 0;
}

int sy_stats_trace_get(sy_stats_t *s, const char *trace_id, sy_redis_reply_cb cb, void *data) {
  unsigned char tid[16];
  char back[SY_NUMFMT_MAX + 1];
  if (sy_trace_bin(trace_id, tid) < 0)
    return -1;
  back[sy_fmt_u64(back, s->trace_back_ms)] = '\0';
  if (s->cluster != NULL)
    return trace_get_cluster(s, tid, trace_id, back, cb, data);
  const char *argv[] = {"EVAL", SY_LUA_TRACE_GET, "1", SY_KEY_REFS, (const char *)tid, trace_id,
                        back};
  size_t lens[] = {4, strlen(SY_LUA_TRACE_GET), 1, strlen(SY_KEY_REFS), 16, strlen(trace_id),
                   strlen(back)};
  return sy_redis_command(&s->redis, cb, data, 7, argv, lens) < 0 ? -1 : 0;
}

int sy_stats_feedback_apply(sy_stats_t *s, const sy_fb_apply_t *fa, sy_redis_reply_cb cb,
                            void *data) {
  char k_refs[SY_KEY_MAX], k_stream[SY_KEY_MAX], k_applied[SY_KEY_MAX], k_var[SY_KEY_MAX], k_seg[SY_KEY_MAX];
  char k_segs[SY_KEY_MAX], k_pend[SY_KEY_MAX];
  const char *seg = fa->segment != NULL ? fa->segment : "";
  if (s->cluster != NULL)
    sy_key_exp_refs(k_refs, sizeof k_refs, fa->experiment);
  else
    snprintf(k_refs, sizeof k_refs, "%s", SY_KEY_REFS);
  sy_stats_stream(s, fa->experiment, k_stream, sizeof k_stream);
  if (k_refs[0] == '\0' ||
      sy_key_applied(k_applied, sizeof k_applied, fa->experiment, fa->trace_id) < 0 ||
      sy_key_variant(k_var, sizeof k_var, fa->experiment, fa->variant) < 0 ||
      sy_key_segments(k_segs, sizeof k_segs, fa->experiment) < 0 ||
      sy_key_pending(k_pend, sizeof k_pend, fa->experiment) < 0)
    return -1;
  /* no segment: KEYS[4] is not written, but must be in E's slot (a cluster checks) */
  snprintf(k_seg, sizeof k_seg, "%s", k_segs);
  if (seg[0] != '\0' && sy_key_segment(k_seg, sizeof k_seg, fa->experiment, fa->variant, seg) < 0)
    return -1;
  sy_argv_t a;
  sy_argv_init(&a);
  sy_argv_add(&a, "EVAL");
  sy_argv_add(&a, SY_LUA_FEEDBACK);
  sy_argv_add(&a, "7");
  const char *keys[] = {k_refs, k_applied, k_var, k_seg, k_segs, k_pend, k_stream};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    sy_argv_add(&a, keys[i]);
  sy_argv_add(&a, fa->tenant);
  sy_argv_add(&a, fa->applied);
  sy_argv_add(&a, fa->event_id);
  sy_argv_add(&a, fa->pending);
  sy_argv_add(&a, seg);
  sy_argv_add(&a, s->maxlen);
  sy_argv_add(&a, fa->variant);
  unsigned char tid[16];
  if (sy_trace_bin(fa->trace_id, tid) < 0) {
    sy_argv_free(&a);
    return -1;
  }
  sy_argv_addn(&a, (const char *)tid, 16);
  sy_argv_num(&a, (double)s->trace_back_ms);
  sy_argv_num(&a, (double)fa->nadds);
  for (size_t i = 0; i < fa->nadds; i++) {
    sy_argv_add(&a, fa->adds[i].field);
    sy_argv_num(&a, fa->adds[i].by);
    sy_argv_add(&a, fa->adds[i].segment_too ? "vs" : "v");
  }
  sy_argv_append(&a, fa->event);
  int rc = -1;
  if (sy_argv_ok(&a))
    rc = sy_stats_command(s, k_applied, SY_CLUSTER_DURABLE, cb, data, (int)a.n,
                          (const char **)a.v, a.l);
  sy_argv_free(&a);
  return rc < 0 ? -1 : 0;
}
