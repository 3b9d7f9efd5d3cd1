/*
 * export-fill.c — fills a Redis events stream with N synthetic traces in schema 5's
 * layout (proto/event5.h), as routers write them: per trace a request event, every
 * 4th trace a feedback event, every 5th an outcome; the refs in sy:refs (--refs: another
 * hash, e.g. sy:{E}:refs beside a cluster's sy:{E}:events). For
 * bench/export-rate and tests/integration/test_export.py (a backlog big enough to
 * kill the exporter in the middle of it).
 *
 *   export-fill --redis URL [-n N] [--stream KEY] [--refs KEY] [--ts-ms MS] [--seed S]
 *               [--tenants a,b] [--experiment E]
 *
 * Trace i: trace id = 32 hex digits of (seed, i); variant a or b (i % 2); tenant
 * tenants[i % count]; consent content / metrics / none by i % 3; feedback thumbs
 * value 1 weight 1 with a comment; outcome value i % 2 of metric resolved; every
 * event at ts_ms + i (default: now - N ms); config hash c0ffee00c0ffee00 in the refs.
 * Prints `filled_events=` and `traces=`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/event5.h"
#include "stats/redis_sync.h"

#define PIPE 1000

typedef struct {
  sy_rsync_t r;
  const char *stream;
  long queued, written;
} fill_t;

static int drain(fill_t *f) {
  for (; f->queued > 0; f->queued--) {
    redisReply *x = sy_rsync_get_reply(&f->r);
    if (x == NULL) {
      fprintf(stderr, "export-fill: %s\n", f->r.err);
      return -1;
    }
    freeReplyObject(x);
    f->written++;
  }
  return 0;
}

static int add(fill_t *f, const sy_ev5_t *b) {
  if (b->oom)
    return -1;
  redisAppendCommand(f->r.c, "XADD %s * e %b", f->stream, b->p, b->len);
  return ++f->queued >= PIPE ? drain(f) : 0;
}

static void envelope(sy_ev5_t *b, const char *tid, long i, const char *tenant) {
  static const char *const consent[] = {"content", "metrics", "none"};
  char uid[33];
  snprintf(uid, sizeof uid, "%016lx%016lx", 0xabcdefUL, (unsigned long)i);
  sy_ev5_cstr(b, SY_EF_trace_id, tid);
  if (i % 3 != 2) { /* routers leave ids out with consent none */
    sy_ev5_cstr(b, SY_EF_session_id, uid);
    sy_ev5_cstr(b, SY_EF_user_id, uid);
  }
  sy_ev5_cstr(b, SY_EF_tenant_id, tenant);
  sy_ev5_cstr(b, SY_EF_consent_scope, consent[i % 3]);
}

int main(int argc, char **argv) {
  const char *url = NULL, *tenants = "acme,other", *exp = "chat";
  long n = 10000;
  unsigned long seed = 1;
  int64_t ts = -1;
  fill_t f = {.stream = "sy:events"};
  const char *refs_key = "sy:refs";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL) {
      fprintf(stderr, "export-fill: %s needs a value\n", a);
      return 2;
    }
    i++;
    if (strcmp(a, "--redis") == 0) url = v;
    else if (strcmp(a, "-n") == 0) n = atol(v);
    else if (strcmp(a, "--stream") == 0) f.stream = v;
    else if (strcmp(a, "--refs") == 0) refs_key = v;
    else if (strcmp(a, "--ts-ms") == 0) ts = atoll(v);
    else if (strcmp(a, "--seed") == 0) seed = strtoul(v, NULL, 10);
    else if (strcmp(a, "--tenants") == 0) tenants = v;
    else if (strcmp(a, "--experiment") == 0) exp = v;
    else {
      fprintf(stderr, "export-fill: unknown argument %s\n", a);
      return 2;
    }
  }
  sy_redis_addr_t addr;
  char err[256];
  if (url == NULL || sy_redis_url_parse(url, &addr, err, sizeof err) < 0) {
    fprintf(stderr, "export-fill: --redis URL: %s\n", url ? err : "required");
    return 2;
  }
  if (sy_rsync_connect(&f.r, &addr, 10000) < 0) {
    fprintf(stderr, "export-fill: %s\n", f.r.err);
    return 1;
  }
  if (ts < 0) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    ts = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - n;
  }
  /* tenants: split the list */
  char tbuf[256];
  const char *tn[16];
  size_t nt = 0;
  snprintf(tbuf, sizeof tbuf, "%s", tenants);
  for (char *save = NULL, *t = strtok_r(tbuf, ",", &save); t && nt < 16; t = strtok_r(NULL, ",", &save))
    tn[nt++] = t;
  if (nt == 0)
    tn[nt++] = "acme";
  /* one ref per variant */
  char refs[2][SY_EV5_REF_LEN + 1];
  for (int v = 0; v < 2; v++) {
    char def[256];
    size_t dl = sy_ev5_ref_def(def, sizeof def, exp, v ? "b" : "a", v ? "2" : "1", "p1",
                               v ? "model-b" : "model-a", "chat", "c0ffee00c0ffee00");
    sy_ev5_ref_id(def, dl, refs[v]);
    redisReply *x = sy_rsync_command(&f.r, "HSET %s %s %s", refs_key, refs[v], def);
    if (x == NULL) {
      fprintf(stderr, "export-fill: %s\n", f.r.err);
      return 1;
    }
    freeReplyObject(x);
  }
  sy_ev5_t b;
  memset(&b, 0, sizeof b);
  for (long i = 0; i < n; i++) {
    char tid[33], id[64];
    snprintf(tid, sizeof tid, "%016lx%016lx", seed, (unsigned long)i);
    const char *tenant = tn[i % (long)nt];
    uint64_t t = (uint64_t)(ts + i);
    sy_ev5_begin(&b, SY_EVT_REQUEST, NULL, "fill:1", t, refs[i % 2]);
    envelope(&b, tid, i, tenant);
    sy_ev5_real(&b, SY_EF_propensity, 0.5);
    sy_ev5_cstr(&b, SY_EF_model_version, i % 2 ? "model-b-2026" : "model-a-2026");
    sy_ev5_cstr(&b, SY_EF_input_hash, "00112233445566778899aabbccddeeff");
    sy_ev5_cstr(&b, SY_EF_output_id, "chatcmpl-123");
    sy_ev5_int(&b, SY_EF_status, 200);
    sy_ev5_int(&b, SY_EF_output_tokens, 10 + i % 7);
    sy_ev5_int(&b, SY_EF_input_tokens, 20);
    sy_ev5_real(&b, SY_EF_server_latency_ms, 1.5 + (double)(i % 10));
    if (add(&f, &b) < 0)
      return 1;
    if (i % 4 == 0) {
      snprintf(id, sizeof id, "fb-%lu-%ld", seed, i);
      sy_ev5_begin(&b, SY_EVT_FEEDBACK, id, "fill:1", t + 1, refs[i % 2]);
      envelope(&b, tid, i, tenant);
      sy_ev5_cstr(&b, SY_EF_feedback_type, "thumbs");
      sy_ev5_real(&b, SY_EF_feedback_value, 1);
      sy_ev5_real(&b, SY_EF_feedback_weight, 1);
      if (i % 3 == 0)
        sy_ev5_cstr(&b, SY_EF_feedback_comment, "useful answer");
      if (add(&f, &b) < 0)
        return 1;
    }
    if (i % 5 == 0) {
      snprintf(id, sizeof id, "out-%lu-%ld", seed, i);
      sy_ev5_begin(&b, SY_EVT_OUTCOME, id, "fill:1", t + 2, refs[i % 2]);
      envelope(&b, tid, i, tenant);
      sy_ev5_cstr(&b, SY_EF_outcome_metric_name, "resolved");
      sy_ev5_real(&b, SY_EF_outcome_metric_value, (double)(i % 2));
      if (add(&f, &b) < 0)
        return 1;
    }
  }
  if (drain(&f) < 0)
    return 1;
  sy_ev5_free(&b);
  sy_rsync_close(&f.r);
  printf("filled_events=%ld\ntraces=%ld\n", f.written, n);
  return 0;
}
