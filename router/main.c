/*
 * main.c — the `switchyard` command: serve, check-config, export, --version, --help.
 *
 * `serve` with workers: 1 runs the worker in this process. With workers: N > 1
 * this process becomes a small master (no event loop): it forks N workers that
 * each bind the listen ports with SO_REUSEPORT, forwards SIGHUP and SIGTERM to
 * them, and restarts a worker that dies unexpectedly.
 */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gsl/gsl_errno.h>

#include "router/config.h"
#include "router/cli_redis.h"
#include "base/log.h"
#include "router/metrics.h"
#include "router/server.h"
#include "router/cli_redis.h"
#include "router/ctl.h"
#include "router/status.h"
#include "router/versions.h"
#include "stats/embedded.h"
#include "warehouse/dataset.h"
#include "warehouse/evaluate.h"
#include "warehouse/export.h"

#ifndef SY_VERSION
#define SY_VERSION "0.1.0"
#endif

static const char usage_main[] =
    "usage: switchyard <command> [options]\n"
    "\n"
    "An LLM gateway that routes each request to a variant (prompt, model, retrieval\n"
    "config) of an experiment and streams the answer back.\n"
    "\n"
    "commands:\n"
    "  serve --config FILE     run the router\n"
    "  check-config FILE       validate a config file and exit (0: valid)\n"
    "  status [EXP] [--json]   per-variant numbers from Redis (see `status --help`)\n"
    "  promote EXP VARIANT     give VARIANT all traffic (fleet-wide, audited)\n"
    "  rollback EXP [VARIANT]  take a candidate (or every candidate) out\n"
    "  pause EXP / resume EXP  everything to the control, and back\n"
    "  history EXP             the audit log of decisions\n"
    "  versions EXP            which configs and variant versions served EXP, and when\n"
    "  evaluate EXP ...        off-policy evaluation from the warehouse (`evaluate --help`)\n"
    "  dataset build ...       a reproducible dataset with a manifest (`dataset --help`)\n"
    "\n"
    "options:\n"
    "  --version               print the version\n"
    "  --help                  this text; `switchyard <command> --help` for a command\n"
    "\n"
    "examples:\n"
    "  switchyard check-config deploy/examples/minimal.yaml\n"
    "  switchyard serve --config deploy/examples/minimal.yaml\n";

static const char usage_serve[] =
    "usage: switchyard serve --config FILE\n"
    "\n"
    "Runs the router with the YAML config FILE. Logs are JSON lines on stderr\n"
    "(SY_LOG_LEVEL=debug|info|warn|error).\n"
    "\n"
    "With an `admin:` block it also serves, on that listener (127.0.0.1:9090 by\n"
    "default), the admin API: /dashboard, /metrics (Prometheus), /healthz, /readyz\n"
    "and /api/experiments..., with `Authorization: Bearer $TOKEN` (admin.token_env).\n"
    "\n"
    "signals:\n"
    "  SIGHUP    reload FILE; a bad file is logged and the running config stays\n"
    "  SIGTERM   stop accepting, finish requests in flight (limits.shutdown_timeout_ms), exit 0\n"
    "\n"
    "examples:\n"
    "  switchyard serve --config deploy/examples/minimal.yaml\n"
    "  SWITCHYARD_ADMIN_TOKEN=$(openssl rand -hex 16) switchyard serve --config prod.yaml\n"
    "  curl -H \"Authorization: Bearer $SWITCHYARD_ADMIN_TOKEN\" 127.0.0.1:9090/metrics\n";

static const char usage_check[] =
    "usage: switchyard check-config FILE\n"
    "\n"
    "Validates FILE. Prints `FILE: ok` and exits 0, or prints the first problem as\n"
    "FILE:LINE: KEY: problem and exits 1.\n"
    "\n"
    "example:\n"
    "  switchyard check-config deploy/examples/minimal.yaml\n";

static int has_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
      return 1;
  return 0;
}

static int cmd_check(int argc, char **argv) {
  if (has_help(argc, argv)) {
    fputs(usage_check, stdout);
    return 0;
  }
  if (argc != 1) {
    fputs(usage_check, stderr);
    return 2;
  }
  char err[1024];
  sy_config_t *cfg = NULL;
  if (sy_config_load(argv[0], &cfg, err, sizeof(err)) < 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  printf("%s: ok (%zu listeners, %zu upstreams, %zu experiments)\n", argv[0], cfg->nlisteners,
         cfg->nupstreams, cfg->nexperiments);
  sy_config_free(cfg);
  return 0;
}

/* ---- master for workers > 1 ---- */

static pid_t spawn_worker(const char *path, sy_config_t *cfg, const sigset_t *oldmask,
                          pid_t *pids, time_t *started, sy_metrics_t *m, unsigned index) {
  pid_t pid = fork();
  if (pid != 0)
    return pid;
  sigprocmask(SIG_SETMASK, oldmask, NULL);
  /* The master's bookkeeping arrays came along with fork(); the worker never uses
   * them, and without this free LeakSanitizer reports them when the worker exits. */
  free(pids);
  free(started);
  /* The child owns its copy of the config. */
  exit(sy_worker_run(path, cfg, m, index));
}

/* The embedded Redis (no redis.url, no redis.sentinels): started before any worker,
 * stopped last. */
static int embedded_start(const sy_config_t *cfg, sy_embedded_t *emb) {
  char err[1024];
  memset(emb, 0, sizeof *emb);
  if (!cfg->redis.enabled || cfg->redis.url != NULL || cfg->redis.nsentinels > 0 ||
      cfg->redis.ncluster > 0)
    return 0;
  if (sy_embedded_start(emb, cfg->data_dir, cfg->redis.server, 10000, err, sizeof err) < 0) {
    fprintf(stderr, "switchyard: embedded redis: %s\n", err);
    sy_log_error("embedded redis: %s", err);
    return -1;
  }
  sy_log_info("embedded redis (pid %d) on %s", (int)emb->pid, emb->sock);
  return 0;
}

static void embedded_stop(sy_embedded_t *emb) {
  if (emb->pid > 0) {
    int st = sy_embedded_stop(emb, 10000);
    sy_log_info("embedded redis stopped (status %d)", st);
  }
}

static int run_master(const char *path, sy_config_t *cfg, sy_embedded_t *emb, sy_metrics_t *m) {
  unsigned n = cfg->workers;
  pid_t *pids = calloc(n, sizeof(*pids));
  time_t *started = calloc(n, sizeof(*started));
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, &old);
  for (unsigned i = 0; i < n; i++) {
    pids[i] = spawn_worker(path, cfg, &old, pids, started, m, i);
    started[i] = time(NULL);
  }
  sy_log_info("master: %u workers started", n);
  int stopping = 0, status = 0;
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0)
      continue;
    if (sig == SIGHUP && !stopping) {
      char err[1024];
      sy_config_t *ncfg = NULL;
      if (sy_config_load(path, &ncfg, err, sizeof(err)) < 0) {
        sy_log_error("reload rejected, keeping the running config: %s", err);
        continue;
      }
      sy_config_free(cfg);
      cfg = ncfg; /* what a restarted worker will start with */
      for (unsigned i = 0; i < n; i++)
        if (pids[i] > 0)
          kill(pids[i], SIGHUP);
    } else if (sig == SIGTERM || sig == SIGINT) {
      stopping = 1;
      for (unsigned i = 0; i < n; i++)
        if (pids[i] > 0)
          kill(pids[i], SIGTERM);
    } else if (sig == SIGCHLD) {
      int st;
      pid_t pid;
      while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        if (emb->pid > 0 && pid == emb->pid && !stopping) {
          /* Workers keep serving meanwhile: their events wait in memory or the spool. */
          sy_log_error("embedded redis (pid %d) died (status %d); restarting it", (int)pid, st);
          emb->pid = 0;
          sy_embedded_t fresh;
          if (embedded_start(cfg, &fresh) == 0)
            *emb = fresh;
          continue;
        }
        for (unsigned i = 0; i < n; i++) {
          if (pids[i] != pid)
            continue;
          pids[i] = 0;
          if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
            status = 1;
          if (stopping)
            break;
          sy_log_error("worker %d died (status %d); restarting", (int)pid, st);
          if (time(NULL) - started[i] < 1)
            sleep(1); /* a worker that dies at once must not spin the master */
          pids[i] = spawn_worker(path, cfg, &old, pids, started, m, i);
          started[i] = time(NULL);
        }
      }
    }
    if (stopping) {
      unsigned alive = 0;
      for (unsigned i = 0; i < n; i++)
        alive += pids[i] > 0;
      if (alive == 0)
        break;
    }
  }
  sy_log_info("master: all workers stopped");
  sy_config_free(cfg);
  free(pids);
  free(started);
  return stopping ? 0 : status;
}

static int cmd_serve(int argc, char **argv) {
  const char *path = NULL;
  if (has_help(argc, argv)) {
    fputs(usage_serve, stdout);
    return 0;
  }
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
      path = argv[++i];
    else if (strncmp(argv[i], "--config=", 9) == 0)
      path = argv[i] + 9;
    else {
      fprintf(stderr, "switchyard serve: unknown argument '%s'\n\n%s", argv[i], usage_serve);
      return 2;
    }
  }
  if (path == NULL) {
    fprintf(stderr, "switchyard serve: --config FILE is required\n\n%s", usage_serve);
    return 2;
  }
  char err[1024];
  sy_config_t *cfg = NULL;
  if (sy_config_load(path, &cfg, err, sizeof(err)) < 0) {
    fprintf(stderr, "%s\n", err);
    sy_log_error("%s", err);
    return 1;
  }
#ifdef __GLIBC__
  /* Pin glibc's mmap threshold at its default. Left dynamic, it rises after the first
   * large buffer is freed, and from then on the journal's batch buffers (up to 1 MiB)
   * come from the heap, where a backlog's worth stays resident after it drains
   * (bench/soak: RSS 3-5x after a Redis hiccup). Pinned, they are mapped and unmapped. */
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
  if (cfg->redis.enabled && cfg->redis.ncluster > 0 &&
      sy_cli_cluster_check(cfg, err, sizeof err) < 0) {
    fprintf(stderr, "switchyard: %s\n", err);
    sy_log_error("%s", err);
    sy_config_free(cfg);
    return 1;
  }
  sy_embedded_t emb;
  if (embedded_start(cfg, &emb) < 0) {
    sy_config_free(cfg);
    return 1;
  }
  /* The metrics table is mapped before the workers are forked, so that they share
   * it and any of them can answer a scrape for all (metrics.h). */
  sy_metrics_t metrics = {0};
  if (sy_metrics_create(&metrics, cfg->workers > 0 ? cfg->workers : 1) < 0)
    sy_log_warn("metrics table: %s; /metrics will be empty", strerror(errno));
  int rc = cfg->workers > 1 ? run_master(path, cfg, &emb, &metrics)
                            : sy_worker_run(path, cfg, &metrics, 0);
  sy_metrics_destroy(&metrics);
  embedded_stop(&emb);
  return rc;
}

/* `export`: the arguments are the warehouse's (warehouse/export.h); where Redis is
 * and which stream to read come from the config, read here. */
static int cmd_export(int argc, char **argv) {
  sy_wh_opts_t o;
  char err[1024];
  int prc = sy_wh_export_parse(argc, argv, &o, err, sizeof err);
  if (prc == 1) {
    fputs(sy_wh_export_usage, stdout);
    return 0;
  }
  if (prc < 0) {
    fprintf(stderr, "switchyard export: %s\n\n%s", err, sy_wh_export_usage);
    return 2;
  }
  sy_config_t *cfg = NULL;
  if (sy_config_load(o.config, &cfg, err, sizeof(err)) < 0) {
    fprintf(stderr, "switchyard export: %s\n", err);
    return 1;
  }
  int rc = 1;
  if (!cfg->redis.enabled)
    fprintf(stderr, "switchyard export: %s: redis.enabled is false: there are no events\n",
            o.config);
  else if (sy_config_redis_addr(cfg, &o.redis, err, sizeof err) < 0) /* sentinels too */
    fprintf(stderr, "switchyard export: %s\n", err);
  else {
    o.timeout_ms = cfg->redis.timeout_ms;
    const char *exps[SY_WH_MAX_STREAMS];
    size_t nexps = 0;
    for (size_t i = 0; i < cfg->nexperiments && nexps < SY_WH_MAX_STREAMS; i++)
      exps[nexps++] = cfg->experiments[i].id;
    if (cfg->nexperiments > SY_WH_MAX_STREAMS)
      nexps = SY_WH_MAX_STREAMS + 1; /* refused by sy_wh_export_keys, unless --stream */
    if (sy_wh_export_keys(&o, cfg->redis.ncluster > 0, cfg->events.stream, exps,
                          nexps, err, sizeof err) < 0)
      fprintf(stderr, "switchyard export: %s\n", err);
    else
      rc = sy_wh_export_run(&o);
  }
  sy_config_free(cfg);
  return rc;
}

int main(int argc, char **argv) {
  sy_log_init();
  /* GSL's default error handler aborts the process. A numerical routine that does
   * not converge (an inverse CDF at extreme counts) must cost one NaN in a report,
   * never the router: every caller checks what it gets back. */
  gsl_set_error_handler_off();
  if (argc < 2) {
    fputs(usage_main, stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
    printf("switchyard %s\n", SY_VERSION);
    return 0;
  }
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    fputs(usage_main, stdout);
    return 0;
  }
  if (strcmp(cmd, "serve") == 0)
    return cmd_serve(argc - 2, argv + 2);
  if (strcmp(cmd, "check-config") == 0)
    return cmd_check(argc - 2, argv + 2);
  if (strcmp(cmd, "export") == 0)
    return cmd_export(argc - 2, argv + 2);
  if (strcmp(cmd, "status") == 0)
    return sy_status_main(argc - 2, argv + 2);
  if (strcmp(cmd, "versions") == 0)
    return sy_versions_main(argc - 2, argv + 2);
  if (strcmp(cmd, "evaluate") == 0)
    return sy_evaluate_main(argc - 2, argv + 2);
  if (strcmp(cmd, "dataset") == 0)
    return sy_dataset_main(argc - 2, argv + 2);
  static const char *const ctl[] = {"promote", "rollback", "pause", "resume", "history"};
  for (size_t i = 0; i < sizeof ctl / sizeof ctl[0]; i++)
    if (strcmp(cmd, ctl[i]) == 0)
      return sy_ctl_main(cmd, argc - 2, argv + 2);
  fprintf(stderr, "switchyard: unknown command '%s'\n\n%s", cmd, usage_main);
  return 2;
}
