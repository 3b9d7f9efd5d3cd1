/*
 * stats_file.c — sufficient statistics fed to the thompson experiments from a
 * JSON file, until the Redis stats layer supplies them (issue 4).
 *
 * The worker watches cfg->stats_file with uv_fs_poll (stat in libuv's thread
 * pool, every stats_poll_ms); when the file changes it is read — it is small, a
 * few counts per variant — and the snapshot is applied to the current runtime
 * and kept, so that a runtime built by a reload starts from it too. A file that
 * is missing or not valid JSON is logged and the last good snapshot stays.
 *
 * Format (absolute totals; binary outcomes: sum = successes, sumsq optional):
 *   {"experiments": {"chat": {"variants": {"a": {"n": 120, "sum": 31}, ...},
 *                             "segments": {"tenant-1": {"a": {...}, ...}}}}}
 */
#include "router/stats_file.h"

#include <string.h>

#include "base/log.h"
#include "router/runtime.h"
#include "router/worker.h"

static void load(sy_worker_t *w) {
  json_error_t jerr;
  json_t *snap = json_load_file(w->stats_path, 0, &jerr);
  if (snap == NULL) {
    sy_log_warn("stats file %s: %s (line %d); keeping the last statistics", w->stats_path,
                jerr.text, jerr.line);
    return;
  }
  json_decref(w->stats);
  w->stats = snap;
  int n = sy__runtime_apply_stats(w->rt, snap);
  sy_log_debug("stats file %s: applied to %d experiments", w->stats_path, n);
}

static void on_change(uv_fs_poll_t *h, int status, const uv_stat_t *prev, const uv_stat_t *curr) {
  sy_worker_t *w = h->data;
  (void)prev;
  (void)curr;
  if (status < 0) {
    sy_log_warn("stats file %s: %s", w->stats_path, uv_strerror(status));
    return;
  }
  load(w);
}

static void on_poll_closed(uv_handle_t *h) {
  (void)h;
}

static void on_recheck(uv_timer_t *t) { load(t->data); }

void sy__stats_file_stop(sy_worker_t *w) {
  if (w->stats_polling) {
    uv_fs_poll_stop(&w->stats_poll);
    uv_close((uv_handle_t *)&w->stats_poll, on_poll_closed);
    uv_timer_stop(&w->stats_recheck);
    uv_close((uv_handle_t *)&w->stats_recheck, on_poll_closed);
    w->stats_polling = 0;
  }
  free(w->stats_path);
  w->stats_path = NULL;
}

void sy__stats_file_configure(sy_worker_t *w) {
  const sy_config_t *cfg = w->rt->cfg;
  if (cfg->stats_file == NULL) {
    sy__stats_file_stop(w);
    return;
  }
  if (w->stats_path == NULL || strcmp(w->stats_path, cfg->stats_file) != 0) {
    sy__stats_file_stop(w);
    w->stats_path = strdup(cfg->stats_file);
    if (w->stats_path == NULL)
      return;
    unsigned every = cfg->stats_poll_ms ? cfg->stats_poll_ms : 1000;
    uv_fs_poll_init(&w->loop, &w->stats_poll);
    w->stats_poll.data = w;
    uv_fs_poll_start(&w->stats_poll, on_change, w->stats_path, every);
    uv_timer_init(&w->loop, &w->stats_recheck);
    w->stats_recheck.data = w;
    w->stats_polling = 1;
    load(w); /* do not wait a poll interval for the first snapshot */
    /* The poll reports changes against its first stat, which the thread pool takes a
     * moment later: a file rewritten in between (after the load above) would never be
     * reported. One more load once that first stat is surely in closes the gap. */
    uv_timer_start(&w->stats_recheck, on_recheck, 2 * (uint64_t)every + 100, 0);
    return;
  }
  /* Same file, new runtime (a reload): give it the statistics we have. */
  if (w->stats != NULL)
    sy__runtime_apply_stats(w->rt, w->stats);
}
