#include "stats/feedback.h"

#include <string.h>

#include "base/numfmt.h"
#include "proto/keys.h"
#include "stats/scripts.h"

int sy_stats_trace_get(sy_stats_t *s, const char *trace_id, sy_redis_reply_cb cb, void *data) {
  unsigned char tid[16];
  char back[SY_NUMFMT_MAX + 1];
  if (sy_trace_bin(trace_id, tid) < 0)
    return -1;
  back[sy_fmt_u64(back, s->trace_back_ms)] = '\0';
  const char *argv[] = {"EVAL", SY_LUA_TRACE_GET, "0", (const char *)tid, trace_id, back};
  size_t lens[] = {4, strlen(SY_LUA_TRACE_GET), 1, 16, strlen(trace_id), strlen(back)};
  return sy_redis_command(&s->redis, cb, data, 6, argv, lens) < 0 ? -1 : 0;
}

int sy_stats_feedback_apply(sy_stats_t *s, const sy_fb_apply_t *fa, sy_redis_reply_cb cb,
                            void *data) {
  char k_trace[SY_KEY_MAX], k_applied[SY_KEY_MAX], k_var[SY_KEY_MAX], k_seg[SY_KEY_MAX];
  char k_segs[SY_KEY_MAX], k_pend[SY_KEY_MAX];
  const char *seg = fa->segment != NULL ? fa->segment : "";
  if (sy_key_trace(k_trace, sizeof k_trace, fa->trace_id) < 0 ||
      sy_key_applied(k_applied, sizeof k_applied, fa->experiment, fa->trace_id) < 0 ||
      sy_key_variant(k_var, sizeof k_var, fa->experiment, fa->variant) < 0 ||
      sy_key_segments(k_segs, sizeof k_segs, fa->experiment) < 0 ||
      sy_key_pending(k_pend, sizeof k_pend, fa->experiment) < 0)
    return -1;
  k_seg[0] = '\0';
  if (seg[0] != '\0' && sy_key_segment(k_seg, sizeof k_seg, fa->experiment, fa->variant, seg) < 0)
    return -1;
  sy_argv_t a;
  sy_argv_init(&a);
  sy_argv_add(&a, "EVAL");
  sy_argv_add(&a, SY_LUA_FEEDBACK);
  sy_argv_add(&a, "7");
  const char *keys[] = {k_trace, k_applied, k_var, k_seg, k_segs, k_pend, s->stream};
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
    rc = sy_redis_command(&s->redis, cb, data, (int)a.n, (const char **)a.v, a.l);
  sy_argv_free(&a);
  return rc < 0 ? -1 : 0;
}
