/*
 * ctl.c — the operator's commands: `switchyard promote | rollback | pause | resume |
 * history`. They talk to Redis only (proto/KEYS.md), so they act on the whole fleet
 * and work with any router down; every router applies a change within a second
 * (router/control.c). Each change goes through the same script as the gate's
 * decisions (SY_LUA_CONTROL): state, audit entry, decision event and a message on
 * sy:control, in one step, against the version it was computed from (a concurrent
 * change makes it retry).
 *
 * Exit status: 0 done (or nothing to do), 1 Redis unreachable or failing, 2 bad
 * arguments, 3 refused (unknown experiment or variant, or a change that does not
 * apply to the experiment's state).
 */
#include "router/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "proto/events.h"
#include "proto/keys.h"
#include "router/cli_redis.h"
#include "router/control_state.h"
#include "stats/scripts.h"

#define MAX_TRIES 5

typedef struct ctl_opts_s {
  const char *cmd;
  const char *exp, *variant;
  const char *reason;
  const char *config, *redis;
  long limit;
  int json;
} ctl_opts_t;

static const char usage_ctl[] =
    "usage: switchyard promote EXP VARIANT [--reason TEXT] [--config FILE | --redis URL]\n"
    "       switchyard rollback EXP [VARIANT] [--reason TEXT] [...]\n"
    "       switchyard pause EXP [--reason TEXT] [...]\n"
    "       switchyard resume EXP [--reason TEXT] [...]\n"
    "       switchyard history EXP [--limit N] [--json] [...]\n"
    "\n"
    "Operator commands. They change the experiment's state in Redis, which every\n"
    "router applies within a second, and record who, when and why in its audit log.\n"
    "  promote   VARIANT gets all traffic; the experiment is concluded\n"
    "  rollback  VARIANT (a candidate) gets no more traffic; without VARIANT every\n"
    "            candidate is rolled back and the control gets everything\n"
    "  pause     everything to the control; the gate decides nothing until resume\n"
    "  resume    back to where it was before pause (also clears a halt)\n"
    "  history   the audit log, oldest first: the gate's decisions and operators'\n"
    "\n"
    "options:\n"
    "  --reason TEXT   why (recorded in the audit log; recommended)\n"
    "  --limit N       history: the last N entries (default 50)\n"
    "  --json          history: JSON lines\n"
    "  --config FILE   find Redis through FILE's redis section (url or sentinels)\n"
    "  --redis URL     redis://[[user]:password@]host[:port][/db] or unix:///path\n"
    "Without --config or --redis the URL comes from $SWITCHYARD_REDIS_URL.\n"
    "\n"
    "exit status: 0 done or nothing to do, 1 Redis unreachable, 2 bad arguments,\n"
    "3 refused (unknown experiment or variant, or not applicable in its state)\n"
    "\n"
    "examples:\n"
    "  switchyard promote chat b --reason 'gate says +2.1 pts' --config prod.yaml\n"
    "  switchyard rollback chat --reason 'complaints from support' --redis redis://10.0.0.5\n"
    "  switchyard history chat --limit 20 --config prod.yaml\n";

/* 0: run; 1: --help; -1: bad arguments (reported). */
static int parse_args(const char *cmd, int argc, char **argv, ctl_opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->cmd = cmd;
  o->limit = 50;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char **dst = NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
      return 1;
    if (strcmp(a, "--json") == 0) {
      o->json = 1;
      continue;
    }
    if (strcmp(a, "--reason") == 0)
      dst = &o->reason;
    else if (strcmp(a, "--config") == 0)
      dst = &o->config;
    else if (strcmp(a, "--redis") == 0)
      dst = &o->redis;
    else if (strcmp(a, "--limit") == 0) {
      char *end;
      if (i + 1 == argc || (o->limit = strtol(argv[i + 1], &end, 10)) <= 0 || *end != '\0') {
        fprintf(stderr, "switchyard %s: --limit needs a positive number\n\n", cmd);
        return -1;
      }
      i++;
      continue;
    }
    if (dst != NULL) {
      if (i + 1 == argc) {
        fprintf(stderr, "switchyard %s: %s needs a value\n\n", cmd, a);
        return -1;
      }
      *dst = argv[++i];
    } else if (a[0] != '-' && a[0] != '\0' && o->exp == NULL) {
      o->exp = a;
    } else if (a[0] != '-' && a[0] != '\0' && o->variant == NULL) {
      o->variant = a;
    } else {
      fprintf(stderr, "switchyard %s: unexpected argument '%s'\n\n", cmd, a);
      return -1;
    }
  }
  if (o->config && o->redis) {
    fprintf(stderr, "switchyard %s: give --config or --redis, not both\n\n", cmd);
    return -1;
  }
  if (o->exp == NULL) {
    fprintf(stderr, "switchyard %s: name the experiment\n\n", cmd);
    return -1;
  }
  int wants_variant = strcmp(cmd, "promote") == 0;
  int may_variant = wants_variant || strcmp(cmd, "rollback") == 0;
  if (wants_variant && o->variant == NULL) {
    fprintf(stderr, "switchyard %s: name the variant to promote\n\n", cmd);
    return -1;
  }
  if (!may_variant && o->variant != NULL) {
    fprintf(stderr, "switchyard %s: unexpected argument '%s'\n\n", cmd, o->variant);
    return -1;
  }
  return 0;
}

/* ---- what Redis holds of the experiment ---- */

typedef struct exp_s {
  json_t *meta;  /* {field: value} */
  json_t *state; /* {field: value} */
  char **variants;
  size_t nvariants;
  const char *control;
} exp_t;

static const char *field(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s != NULL ? s : "";
}

static void exp_free(exp_t *x) {
  for (size_t i = 0; i < x->nvariants; i++)
    free(x->variants[i]);
  free(x->variants);
  json_decref(x->meta);
  json_decref(x->state);
  memset(x, 0, sizeof(*x));
}

/* Loads meta and state. Returns 0, SY_CTL_REDIS or SY_CTL_UNKNOWN (reported). */
static int exp_load(sy_rsync_t *c, const char *id, exp_t *x) {
  memset(x, 0, sizeof(*x));
  char key[SY_KEY_MAX], k_state[SY_KEY_MAX];
  /* An id too long for the key names is longer than any config id: no router serves it. */
  if (sy_key_meta(key, sizeof key, id) < 0 || sy_key_state(k_state, sizeof k_state, id) < 0) {
    sy_rsync_fail(c, "unknown experiment '%s' (no router has served it on this Redis)", id);
    return SY_CTL_UNKNOWN;
  }
  redisReply *m = sy_rsync_command(c, "HGETALL %s", key);
  if (m == NULL)
    return 1;
  x->meta = sy_redis_hash_json(m);
  freeReplyObject(m);
  if (json_object_size(x->meta) == 0) {
    sy_rsync_fail(c, "unknown experiment '%s' (no router has served it on this Redis)", id);
    return SY_CTL_UNKNOWN;
  }
  redisReply *s = sy_rsync_command(c, "HGETALL %s", k_state);
  if (s == NULL)
    return 1;
  x->state = sy_redis_hash_json(s);
  freeReplyObject(s);
  char *list = strdup(field(x->meta, "variants"));
  for (char *save = NULL, *t = list ? strtok_r(list, ",", &save) : NULL; t != NULL;
       t = strtok_r(NULL, ",", &save)) {
    char **grown = realloc(x->variants, (x->nvariants + 1) * sizeof *grown);
    if (grown == NULL)
      break;
    x->variants = grown;
    x->variants[x->nvariants++] = strdup(t);
  }
  free(list);
  x->control = field(x->meta, "control");
  return 0;
}

static int has_variant(const exp_t *x, const char *v) {
  for (size_t i = 0; i < x->nvariants; i++)
    if (x->variants[i] && strcmp(x->variants[i], v) == 0)
      return 1;
  return 0;
}

static const char *stage_of(const exp_t *x, const char *v) {
  char f[160];
  snprintf(f, sizeof f, "v:%s", v);
  const char *s = field(x->state, f);
  return s[0] ? s : "live";
}

/* ---- changes ---- */

static void who(char *buf, size_t len) {
  char host[128] = "?";
  const char *user = getenv("USER");
  gethostname(host, sizeof host - 1);
  snprintf(buf, len, "operator:%s@%s", user && *user ? user : "unknown", host);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void timestamp(uint64_t ms, char *buf, size_t len) {
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, len - n, ".%03uZ", (unsigned)(ms % 1000));
}

/* Fills c with the change o->cmd makes to x. Returns 0 (c ready), SY_CTL_NOOP
 * (nothing to do, *msg says why), SY_CTL_UNKNOWN (no such variant) or SY_CTL_REFUSED
 * (reported), SY_CTL_REDIS (out of memory). */
static int plan(sy_rsync_t *rc, const sy_ctl_req_t *o, const exp_t *x, sy_ctl_change_t *c,
                const char *by, char *msg, size_t msglen) {
  const char *status = field(x->state, "status"), *winner = field(x->state, "winner");
  const char *reason = o->reason ? o->reason : "(no reason given)";
  char f[160];
  if (status[0] == '\0')
    status = "running";
  if (o->variant && !has_variant(x, o->variant)) {
    sy_rsync_fail(rc, "experiment %s has no variant '%s' (it has: %s)", o->exp, o->variant,
               field(x->meta, "variants"));
    return SY_CTL_UNKNOWN;
  }
  if (strcmp(o->cmd, "promote") == 0) {
    if (strcmp(status, "concluded") == 0 && strcmp(winner, o->variant) == 0) {
      snprintf(msg, msglen, "%s is already the winner of %s", o->variant, o->exp);
      return SY_CTL_NOOP;
    }
    if (sy_ctl_change_init(c, "promote", o->variant, by, reason, NULL, now_ms()) < 0)
      return SY_CTL_REDIS;
    snprintf(f, sizeof f, "v:%s", o->variant);
    sy_ctl_change_set(c, f, "promoted");
    sy_ctl_change_set(c, "status", "concluded");
    sy_ctl_change_set(c, "winner", o->variant);
    return 0;
  }
  if (strcmp(o->cmd, "rollback") == 0) {
    if (o->variant && strcmp(o->variant, x->control) == 0) {
      sy_rsync_fail(rc,
                 "%s is the control of %s; to end the experiment on another variant, promote it",
                 o->variant, o->exp);
      return SY_CTL_REFUSED;
    }
    if (o->variant && strcmp(stage_of(x, o->variant), "rolled_back") == 0) {
      snprintf(msg, msglen, "%s is already rolled back", o->variant);
      return SY_CTL_NOOP;
    }
    if (sy_ctl_change_init(c, "rollback", o->variant ? o->variant : "", by, reason, NULL,
                           now_ms()) < 0)
      return SY_CTL_REDIS;
    for (size_t i = 0; i < x->nvariants; i++) {
      const char *v = x->variants[i];
      if (strcmp(v, x->control) == 0 || (o->variant && strcmp(v, o->variant) != 0))
        continue;
      snprintf(f, sizeof f, "v:%s", v);
      sy_ctl_change_set(c, f, "rolled_back");
    }
    if (o->variant == NULL || strcmp(winner, o->variant) == 0) {
      sy_ctl_change_set(c, "status", "concluded");
      sy_ctl_change_set(c, "winner", "");
    }
    return 0;
  }
  if (strcmp(o->cmd, "pause") == 0) {
    if (strcmp(status, "paused") == 0) {
      snprintf(msg, msglen, "%s is already paused", o->exp);
      return SY_CTL_NOOP;
    }
    if (sy_ctl_change_init(c, "pause", "", by, reason, NULL, now_ms()) < 0)
      return SY_CTL_REDIS;
    sy_ctl_change_set(c, "status", "paused");
    sy_ctl_change_set(c, "paused_from", status);
    return 0;
  }
  /* resume */
  if (strcmp(status, "concluded") == 0) {
    sy_rsync_fail(rc, "%s is concluded (winner: %s); there is nothing to resume", o->exp,
               winner[0] ? winner : "the control, everything rolled back");
    return SY_CTL_REFUSED;
  }
  if (strcmp(status, "running") == 0) {
    snprintf(msg, msglen, "%s is running; nothing to resume", o->exp);
    return 4;
  }
  const char *back = strcmp(status, "paused") == 0 ? field(x->state, "paused_from") : "running";
  if (back[0] == '\0' || strcmp(back, "halted") == 0)
    back = "running"; /* a resume is the operator's word that the halt is understood */
  if (sy_ctl_change_init(c, "resume", "", by, reason, NULL, now_ms()) < 0)
    return SY_CTL_REDIS;
  sy_ctl_change_set(c, "status", back);
  return 0;
}

int sy_ctl_apply(sy_rsync_t *rc, const sy_ctl_req_t *o, char *msg, size_t msglen,
                 long long *version) {
  msg[0] = '\0';
  *version = 0;
  for (int attempt = 0; attempt < MAX_TRIES; attempt++) {
    exp_t x;
    int st = exp_load(rc, o->exp, &x);
    if (st != 0) {
      exp_free(&x);
      return st;
    }
    sy_ctl_change_t c;
    st = plan(rc, o, &x, &c, o->by, msg, msglen);
    if (st != 0) {
      exp_free(&x);
      return st;
    }
    char event_id[80], ts[40], keys[4][160];
    const char *argv[SY_CTL_ARGV_MAX];
    size_t lens[SY_CTL_ARGV_MAX];
    uint64_t t = now_ms();
    snprintf(event_id, sizeof event_id, "op-%llu-%d", (unsigned long long)t, (int)getpid());
    timestamp(t, ts, sizeof ts);
    const char *colon = strchr(o->by, ':'); /* "operator:USER@HOST": the instance is after it */
    sy_ctl_change_event(&c, o->exp, event_id, colon ? colon + 1 : o->by, ts,
                        SY_EVENT_SCHEMA_VERSION);
    const char *stream = field(x.meta, "stream");
    const char *maxlen = field(x.meta, "maxlen");
    const char *ver = field(x.state, "version");
    int argc = sy_ctl_change_argv(&c, SY_LUA_CONTROL, o->exp, ver[0] ? atoll(ver) : 0,
                                  stream[0] ? stream : SY_KEY_EVENTS,
                                  maxlen[0] ? maxlen : "1000000", keys, argv, lens);
    redisReply *r = sy_rsync_argv(rc, argc, argv, lens);
    sy_ctl_change_free(&c);
    exp_free(&x);
    if (r == NULL)
      return SY_CTL_REDIS;
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
             r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "OK") == 0;
    if (ok) {
      *version = r->element[1]->str ? atoll(r->element[1]->str) : 0;
      snprintf(msg, msglen, "%s %s%s%s: done (state version %lld); every router applies it within 1 s",
               o->cmd, o->exp, o->variant ? " " : "", o->variant ? o->variant : "", *version);
      freeReplyObject(r);
      return SY_CTL_DONE;
    }
    freeReplyObject(r); /* CONFLICT: the gate or another operator changed it; again */
  }
  sy_rsync_fail(rc, "the state of %s kept changing; try again", o->exp);
  return SY_CTL_REDIS;
}

static int apply_change(const ctl_opts_t *o, sy_rsync_t *rc) {
  char by[200], msg[300];
  long long version;
  who(by, sizeof by);
  sy_ctl_req_t q = {o->cmd, o->exp, o->variant, o->reason, by};
  int st = sy_ctl_apply(rc, &q, msg, sizeof msg, &version);
  if (st == SY_CTL_DONE || st == SY_CTL_NOOP) {
    printf("%s%s%s\n", st == SY_CTL_NOOP ? o->cmd : "", st == SY_CTL_NOOP ? ": " : "", msg);
    return 0;
  }
  return st == SY_CTL_UNKNOWN ? 3 : st;
}

/* ---- history ---- */

static const char *entry_field(const redisReply *kv, const char *k) {
  for (size_t i = 0; i + 1 < kv->elements; i += 2)
    if (kv->element[i]->type == REDIS_REPLY_STRING && strcmp(kv->element[i]->str, k) == 0)
      return kv->element[i + 1]->type == REDIS_REPLY_STRING ? kv->element[i + 1]->str : "";
  return "";
}

static json_t *entry_json(const redisReply *e, const redisReply *kv) {
  char ts[40];
  timestamp(strtoull(entry_field(kv, "ts_ms"), NULL, 10), ts, sizeof ts);
  json_t *j = json_object();
  json_object_set_new(j, "id", json_string(e->element[0]->str));
  json_object_set_new(j, "time", json_string(ts));
  for (size_t i = 0; i + 1 < kv->elements; i += 2) {
    const char *key = kv->element[i]->str, *val = kv->element[i + 1]->str;
    if (key == NULL || val == NULL)
      continue;
    json_t *parsed = strcmp(key, "stats") == 0 ? json_loads(val, 0, NULL) : NULL;
    json_object_set_new(j, key, parsed ? parsed : json_string(val));
  }
  return j;
}

int sy_ctl_history(sy_rsync_t *rc, const char *exp, long limit, json_t **out) {
  *out = NULL;
  exp_t x;
  int st = exp_load(rc, exp, &x);
  exp_free(&x);
  if (st != 0)
    return st;
  char key[SY_KEY_MAX];
  sy_key_audit(key, sizeof key, exp); /* fits: as long as the state key exp_load built */
  redisReply *r = sy_rsync_command(rc, "XREVRANGE %s + - COUNT %ld", key, limit);
  if (r == NULL)
    return SY_CTL_REDIS;
  json_t *arr = json_array();
  for (size_t k = r->elements; arr != NULL && k-- > 0;) {
    const redisReply *e = r->element[k];
    if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 && e->element[0]->str != NULL &&
        e->element[1]->type == REDIS_REPLY_ARRAY)
      json_array_append_new(arr, entry_json(e, e->element[1]));
  }
  freeReplyObject(r);
  if (arr == NULL)
    return SY_CTL_REDIS;
  *out = arr;
  return SY_CTL_DONE;
}

static const char *jfield(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s != NULL ? s : "";
}

static int history(const ctl_opts_t *o, sy_rsync_t *rc) {
  json_t *arr;
  int st = sy_ctl_history(rc, o->exp, o->limit, &arr);
  if (st != SY_CTL_DONE)
    return st == SY_CTL_UNKNOWN ? 3 : st;
  if (json_array_size(arr) == 0 && !o->json)
    printf("%s: no decisions recorded yet\n", o->exp);
  size_t i;
  json_t *j;
  json_array_foreach(arr, i, j) {
    if (o->json) {
      char *line = json_dumps(j, JSON_COMPACT);
      printf("%s\n", line ? line : "{}");
      free(line);
      continue;
    }
    const char *var = jfield(j, "variant");
    json_t *sj = json_object_get(j, "stats");
    char *stats = sj != NULL ? json_dumps(sj, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    printf("%s  v%-4s %-9s %-10s %s\n    why: %s\n", jfield(j, "time"), jfield(j, "version"),
           jfield(j, "decision"), var[0] ? var : "-", jfield(j, "by"), jfield(j, "reason"));
    if (stats != NULL && strcmp(stats, "{}") != 0)
      printf("    numbers: %s\n", stats);
    free(stats);
  }
  json_decref(arr);
  return 0;
}

int sy_ctl_main(const char *cmd, int argc, char **argv) {
  ctl_opts_t o;
  int a = parse_args(cmd, argc, argv, &o);
  if (a == 1) {
    fputs(usage_ctl, stdout);
    return 0;
  }
  if (a < 0) {
    fputs(usage_ctl, stderr);
    return 2;
  }
  sy_redis_addr_t addr;
  unsigned timeout_ms;
  if (sy_cli_redis_addr(cmd, o.redis, o.config, &addr, &timeout_ms) < 0)
    return o.config || o.redis || getenv("SWITCHYARD_REDIS_URL") ? 1 : 2;
  sy_rsync_t conn = {0};
  if (sy_rsync_connect(&conn, &addr, timeout_ms) < 0) {
    sy_cli_err(cmd, "%s", conn.err);
    return 1;
  }
  int st = strcmp(cmd, "history") == 0 ? history(&o, &conn) : apply_change(&o, &conn);
  if (st != 0 && conn.err[0] != '\0')
    sy_cli_err(cmd, "%s", conn.err);
  sy_rsync_close(&conn);
  return st;
}
