/*
 * server.c — a worker process (one libuv loop: listeners, signals, reload,
 * drain) and, for `workers: N > 1`, the master that forks and supervises N
 * workers sharing the listen ports through SO_REUSEPORT.
 *
 * Signals: SIGHUP reloads the config (a bad file is logged and the old config
 * stays); SIGTERM/SIGINT stop accepting, let exchanges in flight finish up to
 * limits.shutdown_timeout_ms, then close what is left and exit 0. The master
 * forwards both to its workers and restarts a worker that dies unexpectedly.
 */
#include "router/server.h"

#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "router/metrics.h"
#include "router/admin.h"
#include "router/admin_metrics.h"
#include "router/conn.h"
#include "router/listen.h"
#include "router/control.h"
#include "router/proxy.h"
#include "router/runtime.h"
#include "router/shadow.h"
#include "router/stats_file.h"
#include "router/stats_sync.h"
#include "router/tls.h"
#include "router/worker.h"
#include "router/shadow.h"

void sy__conn_settings(llhttp_settings_t *s);

/* ---- listeners ---- */

/* The proxy listener's connections: the exchange (proxy.c) handles each request;
 * the worker counts connections for the drain. */
static const sy_conn_ops_t proxy_conn_ops = {
    .head = sy__proxy_head,
    .stream_start = sy__proxy_stream_start,
    .body = sy__proxy_body,
    .start = sy__proxy_start,
    .cancel = sy__proxy_cancel,
    .drained = sy__proxy_client_drained,
    .backlog = sy__proxy_client_backlog,
    .end = sy__proxy_end,
    .reset = sy__req_reset,
    .gone = sy__worker_conn_gone,
};

static void on_connection(uv_stream_t *server, int status) {
  sy_worker_t *w = server->data;
  if (status < 0) {
    sy_log_warn("accept: %s", uv_strerror(status));
    return;
  }
  size_t i = (size_t)((uv_tcp_t *)server - w->listeners);
  sy__conn_accept(w, server, &proxy_conn_ops, w->listen_tls[i]);
}


/* ---- reload ---- */

static int same_listeners(const sy_config_t *a, const sy_config_t *b) {
  if (a->nlisteners != b->nlisteners)
    return 0;
  for (size_t i = 0; i < a->nlisteners; i++)
    if (a->listeners[i].port != b->listeners[i].port || a->listeners[i].tls != b->listeners[i].tls ||
        strcmp(a->listeners[i].host, b->listeners[i].host) != 0)
      return 0;
  return 1;
}

static void on_next_rt(uv_timer_t *t);

/* Each bound TLS listener takes the certificate of its address in cfg (a reload):
 * new connections get it, open ones keep the session they made with the old one
 * (each holds a reference to its context). A listener whose address is gone, or
 * that would turn TLS on or off, keeps what it has until a restart. */
static void adopt_listen_tls(sy_worker_t *w, const sy_config_t *cfg) {
  for (size_t i = 0; i < w->nlisteners; i++) {
    for (size_t j = 0; j < cfg->nlisteners; j++) {
      char addr[300];
      snprintf(addr, sizeof addr, "%s:%u", cfg->listeners[j].host,
               (unsigned)cfg->listeners[j].port);
      sy_tls_ctx_t *ctx = cfg->listen_tls[j].ctx;
      if (strcmp(addr, w->listen_addr[i]) != 0 || (ctx == NULL) != (w->listen_tls[i] == NULL))
        continue;
      if (ctx != NULL && ctx != w->listen_tls[i]) {
        char serial[80];
        sy_tls_ctx_free(w->listen_tls[i]);
        w->listen_tls[i] = sy_tls_ctx_ref(ctx);
        sy_tls_ctx_serial(ctx, serial, sizeof serial);
        sy_log_info("listener %s: new connections get the certificate from %s (serial %s)",
                    addr, cfg->listen_tls[j].cert_file, serial);
      }
    }
  }
}

static void reload(sy_worker_t *w) {
  char err[512];
  sy_config_t *cfg = NULL;
  if (sy_config_load(w->config_path, &cfg, err, sizeof(err)) < 0) {
    sy_log_error("reload rejected, keeping the running config: %s", err);
    return;
  }
  if (!same_listeners(cfg, w->rt->cfg))
    sy_log_warn("reload: listener changes take effect only after a restart");
  const sy_admin_conf_t *na = &cfg->admin, *oa = &w->rt->cfg->admin;
  if (na->on != oa->on || (na->on && (na->listen.port != oa->listen.port ||
                                      strcmp(na->listen.host, oa->listen.host) != 0)))
    sy_log_warn("reload: admin.listen changes take effect only after a restart (the token "
                "changes now)");
  sy_runtime_t *rt = sy__runtime_new(w, cfg, w->rt, err, sizeof(err));
  if (rt == NULL) {
    sy_log_error("reload rejected, keeping the running config: %s", err);
    return;
  }
  if (w->next_rt != NULL) /* a reload still waiting for its names: this one replaces it */
    sy__runtime_unref(w->next_rt);
  w->next_rt = rt;
  w->next_since = uv_now(&w->loop);
  on_next_rt(&w->next_timer);
}

/* The new runtime becomes current once the server names it did not know are resolved
 * (off the loop), or after RESOLVE_WAIT_MS with whatever it has: the old one serves
 * meanwhile, so a reload never sends a request to a server without an address. */
#define RESOLVE_WAIT_MS 5000

static void on_next_rt(uv_timer_t *t) {
  sy_worker_t *w = t->data;
  sy_runtime_t *rt = w->next_rt;
  if (rt == NULL)
    return;
  if (sy__runtime_resolving(rt) && uv_now(&w->loop) - w->next_since < RESOLVE_WAIT_MS) {
    uv_timer_start(&w->next_timer, on_next_rt, 10, 0);
    return;
  }
  w->next_rt = NULL;
  sy_runtime_t *old = w->rt;
  sy__runtime_adopt_sessions(rt, old);
  adopt_listen_tls(w, rt->cfg);
  w->rt = rt;
  sy__runtime_unref(old);
  sy__stats_file_configure(w);
  sy__control_reapply(w);
  sy_log_info("config reloaded from %s (generation %u)", w->config_path, rt->generation);
}

/* ---- drain and stop ---- */

static void close_walk_cb(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

static void leftover_walk_cb(uv_handle_t *h, void *arg) {
  (void)arg;
  sy_log_error("event loop not closed clean: a %s handle is left%s", uv_handle_type_name(h->type),
               uv_is_closing(h) ? " (closing)" : "");
}

static void finish_stop(sy_worker_t *w) {
  uv_timer_stop(&w->drain_timer);
  uv_close((uv_handle_t *)&w->drain_timer, NULL);
  uv_close((uv_handle_t *)&w->next_timer, NULL);
  if (w->next_rt != NULL) { /* a reload that never became current */
    sy__runtime_unref(w->next_rt);
    w->next_rt = NULL;
  }
  uv_close((uv_handle_t *)&w->sig_term, NULL);
  uv_close((uv_handle_t *)&w->sig_int, NULL);
  uv_close((uv_handle_t *)&w->sig_hup, NULL);
  sy__stats_file_stop(w);
  sy__shadow_stop(w); /* shadow legs still in flight: cancelled, recorded before the flush */
  sy__sync_close(w, NULL); /* waits a little for the journal to be acknowledged */
  /* Idle pooled upstream connections go with the runtime. */
  sy__runtime_unref(w->rt);
  w->rt = NULL;
}

void sy__worker_conn_gone(sy_worker_t *w) {
  if (w->draining == 1 && w->nconns == 0) {
    w->draining = 2;
    sy_log_info("drained; exiting");
    finish_stop(w);
  }
}

static void on_drain_deadline(uv_timer_t *t) {
  sy_worker_t *w = t->data;
  sy_log_warn("shutdown deadline reached with %zu connections open; closing them", w->nconns);
  while (w->conns != NULL)
    sy__conn_close(w->conns);
}

static void start_drain(sy_worker_t *w) {
  if (w->draining)
    return;
  w->draining = 1;
  sy_log_info("stopping: no new connections; draining %zu", w->nconns);
  for (size_t i = 0; i < w->nlisteners; i++)
    uv_close((uv_handle_t *)&w->listeners[i], NULL);
  sy__admin_close(w);
  sy_conn_t *c = w->conns;
  while (c != NULL) {
    sy_conn_t *next = c->next;
    sy__conn_close_if_idle(c);
    c = next;
  }
  if (w->nconns == 0) {
    w->draining = 2;
    finish_stop(w);
    return;
  }
  uv_timer_start(&w->drain_timer, on_drain_deadline, w->rt->cfg->limits.shutdown_timeout_ms, 0);
}

static void on_signal(uv_signal_t *s, int signum) {
  sy_worker_t *w = s->data;
  if (signum == SIGHUP) {
    if (!w->draining)
      reload(w);
    return;
  }
  start_drain(w);
}

/* ---- upstream read buffers ---- */

/* ---- the worker ---- */

int sy_worker_run(const char *config_path, sy_config_t *cfg, sy_metrics_t *m, unsigned index) {
  sy_worker_t *w = calloc(1, sizeof(*w));
  char err[512];
  size_t nl = 0; /* listeners of the first config */
  if (w == NULL)
    return 1;
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&w->loop);
  w->config_path = config_path;
  /* Each client connection may need a second descriptor for its upstream leg; keep
   * 64 for listeners, Redis, the spool and pooled connections, and 72 for the admin
   * API (its 64 connections and its jobs' Redis connections). */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    w->fd_conn_cap = rl.rlim_cur > 168 ? (size_t)(rl.rlim_cur - 136) / 2 : 16;
  w->metrics = m;
  w->mslot = sy_metrics_attach(m, index);
  w->report = &sy__metrics_report;
  w->held_pub = w->mslot != NULL ? w->mslot->held_body : NULL;
  /* Request bodies of up to limits.max_body_bytes come and go: from 1 MiB up, each
   * gets its own mapping, returned to the system when freed. (glibc's default
   * threshold rises after the first such free, and later bodies would then stay in
   * the heap, which is returned only from its top.) */
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  sy_rng_seed_os(&w->rng);
  sy__conn_settings(&w->req_settings);
  w->rt = sy__runtime_new(w, cfg, NULL, err, sizeof(err));
  int status = 1;
  if (w->rt == NULL) {
    sy_log_error("%s", err);
    goto out;
  }
  if (sy__sync_open(w, err, sizeof(err)) < 0) {
    sy_log_error("%s", err);
    uv_close((uv_handle_t *)&w->sync_timer, NULL);
    uv_close((uv_handle_t *)&w->stop_timer, NULL);
    sy__runtime_unref(w->rt);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    goto out;
  }
  nl = w->rt->cfg->nlisteners;
  w->listeners = calloc(nl, sizeof(*w->listeners));
  w->listen_tls = calloc(nl, sizeof(*w->listen_tls));
  w->listen_addr = calloc(nl, sizeof(*w->listen_addr));
  for (size_t i = 0; w->listen_tls != NULL && w->listen_addr != NULL && i < nl; i++) {
    const sy_hostport_t *hp = &w->rt->cfg->listeners[i];
    char addr[300];
    snprintf(addr, sizeof addr, "%s:%u", hp->host, (unsigned)hp->port);
    w->listen_addr[i] = strdup(addr);
    if (w->rt->cfg->listen_tls[i].ctx != NULL)
      w->listen_tls[i] = sy_tls_ctx_ref(w->rt->cfg->listen_tls[i].ctx);
  }
  for (size_t i = 0; w->listeners != NULL && w->listen_addr != NULL && i < nl; i++) {
    if (sy__listen_open(&w->loop, &w->listeners[i], &w->rt->cfg->listeners[i], on_connection, w, err,
                   sizeof(err)) < 0) {
      sy_log_error("%s", err);
      w->nlisteners = i;
      for (size_t j = 0; j < i; j++)
        uv_close((uv_handle_t *)&w->listeners[j], NULL);
      sy__sync_close(w, NULL);
      sy__runtime_unref(w->rt);
      uv_run(&w->loop, UV_RUN_DEFAULT);
      goto out;
    }
    sy_log_info("listening on %s:%u%s", w->rt->cfg->listeners[i].host,
                (unsigned)w->rt->cfg->listeners[i].port,
                w->listen_tls[i] != NULL ? " (TLS)" : "");
    w->nlisteners = i + 1;
  }
  if (sy__admin_open(w, err, sizeof(err)) < 0) {
    sy_log_error("%s", err);
    for (size_t j = 0; j < w->nlisteners; j++)
      uv_close((uv_handle_t *)&w->listeners[j], NULL);
    sy__sync_close(w, NULL);
    sy__runtime_unref(w->rt);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    goto out;
  }
  uv_timer_init(&w->loop, &w->drain_timer);
  w->drain_timer.data = w;
  uv_timer_init(&w->loop, &w->next_timer);
  w->next_timer.data = w;
  uv_signal_init(&w->loop, &w->sig_term);
  uv_signal_init(&w->loop, &w->sig_int);
  uv_signal_init(&w->loop, &w->sig_hup);
  w->sig_term.data = w->sig_int.data = w->sig_hup.data = w;
  uv_signal_start(&w->sig_term, on_signal, SIGTERM);
  uv_signal_start(&w->sig_int, on_signal, SIGINT);
  uv_signal_start(&w->sig_hup, on_signal, SIGHUP);
  sy__stats_file_configure(w);

  uv_run(&w->loop, UV_RUN_DEFAULT);
  status = 0;
  if (w->held_body_bytes != 0) /* every exchange and shadow leg has given its charge back */
    sy_log_error("held request bodies: %zu bytes still charged at exit", w->held_body_bytes);
out:
  if (uv_loop_close(&w->loop) != 0) {
    /* A handle or request outlived its owner's close: a bug. Name them, exit with
     * status 3 (the tests check the exit status), and still close what is left. */
    sy_log_error("event loop not closed clean: %u requests active", w->loop.active_reqs.count);
    uv_walk(&w->loop, leftover_walk_cb, NULL);
    status = 3;
    uv_walk(&w->loop, close_walk_cb, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
  }
  json_decref(w->stats);
  json_decref(w->control);
  free(w->key_buckets);
  while (w->nread_bufs > 0)
    free(w->read_bufs[--w->nread_bufs]);
  free(w->listeners);
  for (size_t i = 0; w->listen_addr != NULL && w->listen_tls != NULL && i < nl; i++) {
    sy_tls_ctx_free(w->listen_tls[i]);
    free(w->listen_addr[i]);
  }
  free(w->listen_tls);
  free(w->listen_addr);
  free(w);
  return status;
}
