/*
 * export_args.c — `switchyard export`'s command line (export.h): every flag checked,
 * every problem named by its flag.
 */
#include "warehouse/export.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/keys.h"
#include "warehouse/sink.h"

const char sy_wh_export_usage[] =
    "usage: switchyard export --config FILE --to SINK (--once | --follow) [options]\n"
    "\n"
    "Copies the events stream(s) of FILE's Redis into a warehouse (proto/WAREHOUSE.md):\n"
    "an `events` row per stream entry and one wide `trace` row per trace (request,\n"
    "feedback, outcome, shadow comparisons). Reads through a Redis consumer group and\n"
    "acknowledges an entry only after its transaction commits; a crash at any point\n"
    "loses nothing and doubles nothing.\n"
    "\n"
    "  --to sqlite:PATH         an SQLite file (created if missing; WAL)\n"
    "  --to postgresql://...    a PostgreSQL database (libpq connection URI)\n"
    "  --once                   everything up to the stream's last entry now, then exit 0\n"
    "  --follow                 keep following; a lag line every --lag-every seconds;\n"
    "                           SIGTERM or SIGINT: finish the batch and exit 0\n"
    "  --retain DURATION        delete rows older than that (30d, 12h, 90m, 3600s), at\n"
    "                           start and every 10 minutes with --follow\n"
    "  --tenant T               only tenant T's events (the others are acknowledged)\n"
    "  --group NAME             the consumer group (default sy-export)\n"
    "  --consumer NAME          the consumer in it (default export)\n"
    "  --stream KEY             a stream to read (repeatable; default: the config's\n"
    "                           events.stream; with redis.cluster, sy:{E}:events for\n"
    "                           every experiment E of the config)\n"
    "  --batch N                entries per transaction (default 1000)\n"
    "  --lag-every S            seconds between --follow's lag lines (default 10)\n"
    "\n"
    "examples:\n"
    "  switchyard export --config prod.yaml --to sqlite:/var/lib/switchyard/warehouse.db --once\n"
    "  switchyard export --config prod.yaml --to postgresql://sy@db/warehouse --follow\n";

/* "30d" -> ms; -1 if malformed. */
static int64_t duration_ms(const char *s) {
  char *end = NULL;
  errno = 0;
  long long n = strtoll(s, &end, 10);
  if (errno != 0 || end == s || n <= 0 || end[0] == '\0' || end[1] != '\0')
    return -1;
  int64_t unit = end[0] == 'd' ? 86400000 : end[0] == 'h' ? 3600000 : end[0] == 'm' ? 60000
               : end[0] == 's' ? 1000 : 0;
  if (unit == 0 || n > INT64_MAX / unit)
    return -1;
  return (int64_t)n * unit;
}

static int positive(const char *s, unsigned max, unsigned *out) {
  char *end = NULL;
  unsigned long v = strtoul(s, &end, 10);
  if (end == s || *end != '\0' || v == 0 || v > max || s[0] == '-')
    return -1;
  *out = (unsigned)v;
  return 0;
}

/* The value of flag argv[*i] ("--flag V" or "--flag=V"), or NULL. */
static const char *value(int argc, char **argv, int *i, const char *flag) {
  size_t n = strlen(flag);
  if (strncmp(argv[*i], flag, n) != 0)
    return NULL;
  if (argv[*i][n] == '=')
    return argv[*i] + n + 1;
  if (argv[*i][n] == '\0' && *i + 1 < argc)
    return argv[++*i];
  return NULL;
}

static int bad(char *err, size_t cap, const char *fmt, const char *a) {
  snprintf(err, cap, fmt, a);
  return -1;
}

int sy_wh_export_parse(int argc, char **argv, sy_wh_opts_t *o, char *err, size_t cap) {
  memset(o, 0, sizeof *o);
  o->group = "sy-export";
  o->consumer = "export";
  o->batch = 1000;
  o->lag_every_ms = 10000;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v;
    unsigned u;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
      return 1;
    if (strcmp(a, "--once") == 0)
      o->once = 1;
    else if (strcmp(a, "--follow") == 0)
      o->follow = 1;
    else if ((v = value(argc, argv, &i, "--config")) != NULL)
      o->config = v;
    else if ((v = value(argc, argv, &i, "--to")) != NULL) {
      if (!sy_wh_sink_scheme_ok(v)) {
        /* the scheme only: the rest may hold a password */
        char scheme[24];
        snprintf(scheme, sizeof scheme, "%.*s", (int)strcspn(v, ":"), v);
        return bad(err, cap, "--to: unknown scheme '%s' (sqlite:PATH or postgresql://...)",
                   scheme);
      }
      o->to = v;
    } else if ((v = value(argc, argv, &i, "--retain")) != NULL) {
      if ((o->retain_ms = duration_ms(v)) < 0)
        return bad(err, cap, "--retain: '%s' is not a duration (30d, 12h, 90m, 3600s)", v);
    } else if ((v = value(argc, argv, &i, "--tenant")) != NULL) {
      if (!*v)
        return bad(err, cap, "--tenant: empty%s", "");
      o->tenant = v;
    } else if ((v = value(argc, argv, &i, "--group")) != NULL) {
      if (!*v)
        return bad(err, cap, "--group: empty%s", "");
      o->group = v;
    } else if ((v = value(argc, argv, &i, "--consumer")) != NULL) {
      if (!*v)
        return bad(err, cap, "--consumer: empty%s", "");
      o->consumer = v;
    } else if ((v = value(argc, argv, &i, "--stream")) != NULL) {
      if (!*v || o->nstreams == SY_WH_MAX_STREAMS)
        return bad(err, cap, "--stream: empty, or more than 64%s", "");
      o->streams[o->nstreams++] = v;
    } else if ((v = value(argc, argv, &i, "--batch")) != NULL) {
      if (positive(v, 100000, &u) < 0)
        return bad(err, cap, "--batch: '%s' is not a number of entries (1..100000)", v);
      o->batch = u;
    } else if ((v = value(argc, argv, &i, "--lag-every")) != NULL) {
      if (positive(v, 86400, &u) < 0)
        return bad(err, cap, "--lag-every: '%s' is not a number of seconds (1..86400)", v);
      o->lag_every_ms = u * 1000;
    } else
      return bad(err, cap, "unknown argument '%s' (or a flag without its value)", a);
  }
  if (o->config == NULL)
    return bad(err, cap, "--config FILE is required%s", "");
  if (o->to == NULL)
    return bad(err, cap, "--to is required (sqlite:PATH or postgresql://...)%s", "");
  if (o->once == o->follow)
    return bad(err, cap, "give one of --once and --follow%s", o->once ? ", not both" : "");
  return 0;
}

/* E of "sy:{E}:events" into out (cap bytes); -1 if name is not such a name. */
static int cluster_stream_exp(const char *name, char *out, size_t cap) {
  static const char pre[] = "sy:{", suf[] = "}:events";
  size_t n = strlen(name), np = sizeof pre - 1, ns = sizeof suf - 1;
  if (n <= np + ns || strncmp(name, pre, np) != 0 || strcmp(name + n - ns, suf) != 0 ||
      n - np - ns >= cap)
    return -1;
  memcpy(out, name + np, n - np - ns);
  out[n - np - ns] = '\0';
  return strpbrk(out, "{}") == NULL ? 0 : -1;
}

int sy_wh_export_keys(sy_wh_opts_t *o, int cluster, const char *default_stream,
                      const char *const *exps, size_t nexps, char *err, size_t cap) {
  o->cluster = cluster;
  if (!cluster) {
    if (o->nstreams == 0)
      o->streams[o->nstreams++] = default_stream;
    for (size_t i = 0; i < o->nstreams; i++)
      o->refs[i] = SY_KEY_REFS;
    return 0;
  }
  if (o->nstreams == 0) {
    if (nexps == 0 || nexps > SY_WH_MAX_STREAMS)
      return bad(err, cap, "redis.cluster: the config has %s experiments (1..64 streams "
                 "sy:{E}:events): give --stream", nexps == 0 ? "no" : "more than 64");
    for (size_t i = 0; i < nexps; i++) {
      if (sy_key_exp_events(o->keys[i], sizeof o->keys[i], exps[i]) < 0)
        return bad(err, cap, "experiment id '%.100s' is too long for a stream name", exps[i]);
      o->streams[o->nstreams++] = o->keys[i];
    }
  }
  for (size_t i = 0; i < o->nstreams; i++) {
    char e[SY_WH_KEY_LEN];
    char *k = o->keys[SY_WH_MAX_STREAMS + i];
    if (cluster_stream_exp(o->streams[i], e, sizeof e) < 0 ||
        sy_key_exp_refs(k, SY_WH_KEY_LEN, e) < 0)
      return bad(err, cap, "--stream %.200s: with redis.cluster a stream is sy:{E}:events "
                 "(E an experiment id; its refs are sy:{E}:refs)", o->streams[i]);
    o->refs[i] = k;
  }
  return 0;
}
