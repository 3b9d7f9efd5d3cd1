/*
 * versions.c — `switchyard versions EXP`: the version registry of an experiment
 * (proto/KEYS.md: sy:{E}:versions), which config (by its hash, the `config_hash` of
 * events) and which variant versions served it, and from when to when. Every router
 * refreshes the registry at each sync (router/stats_sync.c), so an entry whose last
 * time is recent is still being served.
 *
 * The command only reads Redis; it blocks, as a one-shot command may (never on a loop).
 */
#include "router/versions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <jansson.h>

#include "proto/keys.h"
#include "router/cli_redis.h"
#include "stats/redis_sync.h"

static const char usage_versions[] =
    "usage: switchyard versions EXP [--json] [--config FILE | --redis URL]\n"
    "\n"
    "The version registry of experiment EXP: each config (by the hash events carry as\n"
    "config_hash) and variant version that served it, first and last time served, oldest\n"
    "first. Routers refresh it every events.sync_ms while they serve, so a recent last time\n"
    "means it is serving now.\n"
    "\n"
    "  --json          one JSON object per line: config_hash, variant, variant_version,\n"
    "                  first_ms, last_ms\n"
    "  --config FILE   find Redis as the router with this config does\n"
    "  --redis URL     or name it (else $SWITCHYARD_REDIS_URL)\n"
    "\n"
    "Exit status: 0; 1 when Redis cannot be read or has nothing for EXP; 2 for bad usage.\n"
    "\n"
    "Example:\n"
    "  switchyard versions chat --config prod.yaml\n";

typedef struct entry_s {
  char *config, *variant, *version;
  unsigned long long first, last;
} entry_t;

/* Undoes the registry field's escaping (%25, %7C) in place. */
static void unescape(char *s) {
  char *o = s;
  for (; *s != '\0'; s++) {
    if (s[0] == '%' && s[1] == '2' && s[2] == '5')
      *o++ = '%', s += 2;
    else if (s[0] == '%' && s[1] == '7' && (s[2] == 'C' || s[2] == 'c'))
      *o++ = '|', s += 2;
    else
      *o++ = *s;
  }
  *o = '\0';
}

/* Splits field CONFIG|VARIANT|VERSION and value FIRST|LAST into e (pointers into the
 * strings, which it modifies). Returns 0, or -1 when either is malformed. */
static int parse_entry(char *field, char *value, entry_t *e) {
  char *b1 = strchr(field, '|');
  char *b2 = b1 != NULL ? strchr(b1 + 1, '|') : NULL;
  char *end = NULL;
  if (b2 == NULL)
    return -1;
  *b1 = *b2 = '\0';
  e->config = field;
  e->variant = b1 + 1;
  e->version = b2 + 1;
  unescape(e->version);
  e->first = strtoull(value, &end, 10);
  if (end == value || *end != '|')
    return -1;
  char *last = end + 1;
  e->last = strtoull(last, &end, 10);
  return end == last || *end != '\0' ? -1 : 0;
}

static int by_time(const void *a, const void *b) {
  const entry_t *x = a, *y = b;
  if (x->first != y->first)
    return x->first < y->first ? -1 : 1;
  int c = strcmp(x->config, y->config);
  return c != 0 ? c : strcmp(x->variant, y->variant);
}

static void fmt_ms(unsigned long long ms, char *out, size_t n) {
  time_t sec = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  size_t m = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + m, n - m, ".%03lluZ", ms % 1000);
}

static void print_entries(const entry_t *es, size_t n, int json) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  unsigned long long now = (unsigned long long)tv.tv_sec * 1000 + (unsigned long long)tv.tv_usec / 1000;
  if (!json)
    printf("%-16s  %-16s  %-12s  %-24s  %-24s  %s\n", "CONFIG", "VARIANT", "VERSION",
           "FIRST SERVED", "LAST SERVED", "AGO");
  for (size_t i = 0; i < n; i++) {
    const entry_t *e = &es[i];
    if (json) {
      json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I}", "config_hash", e->config, "variant",
                            e->variant, "variant_version", e->version, "first_ms",
                            (json_int_t)e->first, "last_ms", (json_int_t)e->last);
      char *s = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
      if (s != NULL)
        puts(s);
      free(s);
      json_decref(o);
      continue;
    }
    char first[40], last[40], ago[32];
    fmt_ms(e->first, first, sizeof first);
    fmt_ms(e->last, last, sizeof last);
    unsigned long long d = now > e->last ? (now - e->last) / 1000 : 0;
    if (d < 120)
      snprintf(ago, sizeof ago, "%llus", d);
    else if (d < 7200)
      snprintf(ago, sizeof ago, "%llum", d / 60);
    else
      snprintf(ago, sizeof ago, "%lluh", d / 3600);
    printf("%-16s  %-16s  %-12s  %-24s  %-24s  %s\n", e->config[0] ? e->config : "-",
           e->variant, e->version, first, last, ago);
  }
}

/* Reads and prints the registry. Returns the exit status. */
static int list_versions(sy_rsync_t *rc, const char *exp, int json) {
  char key[SY_KEY_MAX];
  if (sy_key_versions(key, sizeof key, exp) < 0) {
    sy_cli_err("versions", "experiment id '%s' is too long", exp);
    return 2;
  }
  redisReply *r = sy_rsync_command(rc, "HGETALL %s", key);
  if (r == NULL)
    return 1;
  int st = 0;
  size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements / 2 : 0;
  entry_t *es = n > 0 ? calloc(n, sizeof *es) : NULL;
  size_t k = 0;
  if (n == 0) {
    sy_cli_err("versions", "no versions recorded for experiment '%s' (no router has served it "
               "with this Redis, or the name is wrong)", exp);
    st = 1;
  } else if (es == NULL) {
    sy_cli_err("versions", "out of memory");
    st = 1;
  } else {
    for (size_t i = 0; i < n; i++) {
      redisReply *f = r->element[2 * i], *v = r->element[2 * i + 1];
      if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
          parse_entry(f->str, v->str, &es[k]) == 0)
        k++;
    }
    qsort(es, k, sizeof *es, by_time);
    print_entries(es, k, json);
  }
  free(es);
  freeReplyObject(r);
  return st;
}

/* See versions.h. */
int sy_versions_main(int argc, char **argv) {
  const char *exp = NULL, *config = NULL, *redis = NULL;
  int json = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage_versions, stdout);
      return 0;
    }
    if (strcmp(a, "--json") == 0) {
      json = 1;
    } else if (strcmp(a, "--config") == 0 || strcmp(a, "--redis") == 0) {
      if (i + 1 == argc) {
        fprintf(stderr, "switchyard versions: %s needs a value\n\n%s", a, usage_versions);
        return 2;
      }
      *(strcmp(a, "--config") == 0 ? &config : &redis) = argv[++i];
    } else if (a[0] != '-' && a[0] != '\0' && exp == NULL) {
      exp = a;
    } else {
      fprintf(stderr, "switchyard versions: unexpected argument '%s'\n\n%s", a, usage_versions);
      return 2;
    }
  }
  if (config != NULL && redis != NULL) {
    fprintf(stderr, "switchyard versions: give --config or --redis, not both\n\n%s",
            usage_versions);
    return 2;
  }
  if (exp == NULL) {
    fprintf(stderr, "switchyard versions: name the experiment\n\n%s", usage_versions);
    return 2;
  }
  sy_redis_addr_t addr;
  unsigned timeout_ms;
  if (sy_cli_redis_addr("versions", redis, config, &addr, &timeout_ms) < 0)
    return config || redis || getenv("SWITCHYARD_REDIS_URL") ? 1 : 2;
  sy_rsync_t conn = {0};
  if (sy_rsync_connect(&conn, &addr, timeout_ms) < 0) {
    sy_cli_err("versions", "%s", conn.err);
    return 1;
  }
  int st = list_versions(&conn, exp, json);
  if (st == 1 && conn.err[0] != '\0')
    sy_cli_err("versions", "%s", conn.err);
  sy_rsync_close(&conn);
  return st;
}
