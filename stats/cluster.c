/*
 * cluster.c — the Redis Cluster client (see cluster.h).
 *
 * Nodes are found from the seeds and from CLUSTER SLOTS (and MOVED/ASK replies);
 * each has its own redis.h link, with that file's reconnection, timeouts and
 * backoff. The slot table maps each of the 16384 slots to a node (index + 1, 0 for
 * none). A command is one allocation holding a copy of its arguments, so that it
 * can be sent again after a redirection, a NOSCRIPT or a fail-over. One timer
 * (TICK_MS) sends parked commands again, expires those that waited park_ms, and
 * reads the slot map when one was asked for or SY_CLUSTER_REFRESH_MS has passed.
 */
#include "stats/cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "base/log.h"

#define TICK_MS 100
#define MAX_REDIRECTS 16
#define MAX_SCRIPTS 16

typedef struct node_s {
  sy_redis_t r; /* first: a link's callback finds its node */
  sy_cluster_t *c;
  char host[64];
  unsigned port;
  int in_map;
  unsigned replicas; /* in the map: a primary's replicas (WAIT only where there are some) */
  /* SY_CLUSTER_DURABLE commands answered, waiting for a WAIT: `next` are those the
   * next WAIT will cover; `covered` those of the WAIT in flight (one at most: a WAIT
   * covers every write before it on the link, so one serves all that came before) */
  struct cmd_s *next_head, *next_tail, *covered;
  int wait_inflight;
} node_t;

typedef struct cmd_s {
  struct cmd_s *next; /* parked, or in a node's WAIT lists */
  sy_cluster_t *c;
  sy_redis_reply_cb cb;
  void *data;
  unsigned slot, flags;
  int redirects, script_loaded;
  uint64_t deadline;
  node_t *ask;       /* the next send goes there, after ASKING */
  redisReply *saved; /* SY_CLUSTER_DURABLE: the reply, while WAIT runs */
  int argc;
  const char **argv;
  size_t *lens;
} cmd_t;

struct sy_cluster_s {
  uv_loop_t *loop;
  sy_cluster_opts_t opts;
  node_t *nodes[SY_CLUSTER_MAX_NODES];
  unsigned nnodes, next_ask;
  uint8_t slots[SY_CLUSTER_SLOTS];
  unsigned covered; /* slots with a primary in the map */
  int mapped, refreshing, refresh_wanted, closing;
  uint64_t last_refresh, down_since;
  uv_timer_t tick;
  cmd_t *parked, *parked_tail;
  struct {
    char sha[41];
    const char *body;
  } scripts[MAX_SCRIPTS];
  unsigned nscripts;
  sy_cluster_change_cb on_change;
  void *data;
  unsigned handles;
  void (*done)(void *data);
  void *done_data;
  char error[400];
  sy_cluster_counters_t k;
};

/* ---- key slots ------------------------------------------------------------------------ */

static uint16_t crc16(const char *p, size_t n) {
  uint16_t crc = 0;
  for (size_t i = 0; i < n; i++) {
    crc ^= (uint16_t)((unsigned char)p[i] << 8);
    for (int b = 0; b < 8; b++)
      crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
  }
  return crc;
}

unsigned sy_keyslot(const char *key, size_t len) {
  const char *open = memchr(key, '{', len);
  if (open != NULL) {
    size_t from = (size_t)(open - key) + 1;
    const char *close = memchr(key + from, '}', len - from);
    if (close != NULL && close > key + from) /* a non-empty tag */
      return crc16(key + from, (size_t)(close - key) - from) & (SY_CLUSTER_SLOTS - 1);
  }
  return crc16(key, len) & (SY_CLUSTER_SLOTS - 1);
}

int sy_cluster_parse_seed(const char *seed, char *host, size_t n, unsigned *port) {
  const char *colon, *h = seed;
  size_t hl;
  if (seed[0] == '[') {
    const char *end = strchr(seed, ']');
    if (end == NULL || end[1] != ':')
      return -1;
    h = seed + 1;
    hl = (size_t)(end - h);
    colon = end + 1;
  } else {
    colon = strrchr(seed, ':');
    if (colon == NULL || strchr(seed, ':') != colon)
      return -1;
    hl = (size_t)(colon - seed);
  }
  if (hl == 0 || hl >= n)
    return -1;
  for (size_t i = 0; i < hl; i++)
    if ((unsigned char)h[i] <= 0x20 || h[i] == '/' || h[i] == '@')
      return -1;
  char *end;
  unsigned long p = strtoul(colon + 1, &end, 10);
  if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || p == 0 || p > 65535)
    return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = (unsigned)p;
  return 0;
}

/* ---- nodes ----------------------------------------------------------------------------- */

static void dispatch(cmd_t *m);
static void refresh_now(sy_cluster_t *c);

static void run_parked(sy_cluster_t *c) {
  cmd_t *m = c->parked;
  c->parked = c->parked_tail = NULL;
  while (m != NULL) {
    cmd_t *next = m->next;
    m->next = NULL;
    dispatch(m);
    m = next;
  }
}

static void on_node_state(sy_redis_t *r, int up, void *data) {
  node_t *n = data;
  sy_cluster_t *c = n->c;
  if (c->closing)
    return;
  if (!up) {
    c->refresh_wanted = 1; /* a fail-over may follow: read the map from a live node */
    if (n->in_map)
      sy_log_warn("redis cluster: primary %s:%u down: %s; its slots' events wait in memory "
                  "and in the spool (a replica may take over)",
                  n->host, n->port, r->last_error);
    return;
  }
  if (n->in_map && r->disconnects > 0)
    sy_log_info("redis cluster: %s:%u back after %.1f s", n->host, n->port,
                (double)r->last_outage_ms / 1000.0);
  if (!c->mapped || c->refresh_wanted)
    refresh_now(c);
  run_parked(c);
  if (c->on_change)
    c->on_change(c, c->data);
}

static node_t *node_get(sy_cluster_t *c, const char *host, unsigned port) {
  for (unsigned i = 0; i < c->nnodes; i++)
    if (c->nodes[i]->port == port && strcmp(c->nodes[i]->host, host) == 0)
      return c->nodes[i];
  if (c->nnodes >= SY_CLUSTER_MAX_NODES || strlen(host) >= sizeof c->nodes[0]->host)
    return NULL;
  node_t *n = calloc(1, sizeof *n);
  if (n == NULL)
    return NULL;
  n->c = c;
  snprintf(n->host, sizeof n->host, "%s", host);
  n->port = port;
  sy_redis_addr_t a;
  memset(&a, 0, sizeof a);
  snprintf(a.host, sizeof a.host, "%s", host);
  a.port = port;
  snprintf(a.username, sizeof a.username, "%s", c->opts.username);
  snprintf(a.password, sizeof a.password, "%s", c->opts.password);
  if (sy_redis_open(&n->r, c->loop, &a, &c->opts.redis, on_node_state, n) < 0) {
    free(n);
    return NULL;
  }
  c->nodes[c->nnodes++] = n;
  c->handles++;
  return n;
}

static node_t *node_of(const sy_cluster_t *c, unsigned slot) {
  unsigned i = c->slots[slot];
  return i == 0 ? NULL : c->nodes[i - 1];
}

static unsigned node_index(const sy_cluster_t *c, const node_t *n) {
  for (unsigned i = 0; i < c->nnodes; i++)
    if (c->nodes[i] == n)
      return i;
  return 0;
}

/* ---- the slot map ---------------------------------------------------------------------- */

static int int_of(const redisReply *r, long long *out) {
  if (r->type == REDIS_REPLY_INTEGER)
    *out = r->integer;
  else if (r->type == REDIS_REPLY_STRING)
    *out = strtoll(r->str, NULL, 10);
  else
    return -1;
  return 0;
}

/* CLUSTER SLOTS: {{start, end, {host, port, id, ...}, replicas...}, ...}. */
static void apply_map(sy_cluster_t *c, node_t *from, const redisReply *reply) {
  uint8_t slots[SY_CLUSTER_SLOTS];
  unsigned covered = 0;
  memset(slots, 0, sizeof slots);
  for (unsigned i = 0; i < c->nnodes; i++)
    c->nodes[i]->in_map = 0, c->nodes[i]->replicas = 0;
  for (size_t i = 0; i < reply->elements; i++) {
    const redisReply *e = reply->element[i];
    long long lo, hi, port;
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || int_of(e->element[0], &lo) < 0 ||
        int_of(e->element[1], &hi) < 0 || e->element[2]->type != REDIS_REPLY_ARRAY ||
        e->element[2]->elements < 2 || int_of(e->element[2]->element[1], &port) < 0)
      continue;
    const redisReply *h = e->element[2]->element[0];
    const char *host = h->type == REDIS_REPLY_STRING && h->len > 0 && strcmp(h->str, "?") != 0
                           ? h->str
                           : from->host; /* "": the address we asked on */
    node_t *n = node_get(c, host, (unsigned)port);
    if (n == NULL || lo < 0 || hi >= SY_CLUSTER_SLOTS || lo > hi)
      continue;
    n->in_map = 1;
    n->replicas = (unsigned)(e->elements - 3);
    for (long long s = lo; s <= hi; s++) {
      if (slots[s] == 0)
        covered++;
      slots[s] = (uint8_t)(node_index(c, n) + 1);
    }
  }
  memcpy(c->slots, slots, sizeof slots);
  c->covered = covered;
  c->mapped = 1;
  if (covered < SY_CLUSTER_SLOTS)
    snprintf(c->error, sizeof c->error, "the cluster serves %u of %u slots", covered,
             SY_CLUSTER_SLOTS);
}

static void on_slots(sy_redis_t *r, redisReply *reply, void *data) {
  sy_cluster_t *c = data;
  node_t *from = (node_t *)r;
  c->refreshing = 0;
  if (c->closing)
    return;
  if (reply == NULL) {
    c->refresh_wanted = 1;
    return;
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    snprintf(c->error, sizeof c->error, "redis.cluster: %s:%u answered CLUSTER SLOTS with %.150s",
             from->host, from->port, reply->str);
    if (strstr(reply->str, "cluster support disabled") != NULL)
      snprintf(c->error, sizeof c->error,
               "redis.cluster: %s:%u is not a cluster node (%.150s)", from->host, from->port,
               reply->str);
    sy_log_error("%s", c->error);
    return;
  }
  if (reply->type != REDIS_REPLY_ARRAY)
    return;
  c->k.refreshes++;
  c->error[0] = '\0';
  apply_map(c, from, reply);
  run_parked(c);
  if (c->on_change)
    c->on_change(c, c->data);
}

static void refresh_now(sy_cluster_t *c) {
  if (c->refreshing || c->closing)
    return;
  for (unsigned k = 0; k < c->nnodes; k++) {
    node_t *n = c->nodes[(c->next_ask + k) % c->nnodes];
    if (!sy_redis_ready(&n->r))
      continue;
    c->next_ask = (c->next_ask + k + 1) % c->nnodes;
    const char *argv[] = {"CLUSTER", "SLOTS"};
    size_t lens[] = {7, 5};
    if (sy_redis_command(&n->r, on_slots, c, 2, argv, lens) == 0) {
      c->refreshing = 1;
      c->refresh_wanted = 0;
      c->last_refresh = uv_now(c->loop);
      return;
    }
  }
  c->refresh_wanted = 1; /* no node is up: the next link that comes up asks */
}

void sy_cluster_refresh(sy_cluster_t *c) { refresh_now(c); }

/* ---- commands ---------------------------------------------------------------------------- */

static void finish(cmd_t *m, sy_redis_t *r, redisReply *reply) {
  if (m->cb)
    m->cb(r, reply, m->data);
  if (m->saved != NULL)
    freeReplyObject(m->saved);
  free(m);
}

/* Appends m to the list head..tail (the parked commands, a node's WAIT list). */
static void append(cmd_t **head, cmd_t **tail, cmd_t *m) {
  m->next = NULL;
  if (*tail)
    (*tail)->next = m;
  else
    *head = m;
  *tail = m;
}

static void park(cmd_t *m) {
  sy_cluster_t *c = m->c;
  if (c->closing || uv_now(c->loop) >= m->deadline) {
    if (!c->closing)
      c->k.park_expired++;
    finish(m, NULL, NULL);
    return;
  }
  c->k.parked++;
  m->redirects = 0; /* the bound is on redirections in a row, without a pause */
  append(&c->parked, &c->parked_tail, m);
}

static void on_reply(sy_redis_t *r, redisReply *reply, void *data);

static void send_wait(node_t *n);

/* The WAIT in flight on node n answered (reply NULL: the link went, and whether the
 * writes survive is unknown): every command it covered is done. */
static void on_wait(sy_redis_t *r, redisReply *reply, void *data) {
  node_t *n = data;
  sy_cluster_t *c = n->c;
  unsigned want = c->opts.wait_replicas < n->replicas ? c->opts.wait_replicas : n->replicas;
  int short_of = reply == NULL || reply->type != REDIS_REPLY_INTEGER ||
                 reply->integer < (long long)want;
  cmd_t *m = n->covered;
  n->covered = NULL;
  n->wait_inflight = 0;
  while (m != NULL) {
    cmd_t *next = m->next;
    if (reply != NULL && short_of)
      c->k.unreplicated++;
    /* strict: a write not on enough replicas is not acknowledged (resent: DUP if kept) */
    finish(m, r, reply == NULL || (short_of && c->opts.wait_strict) ? NULL : m->saved);
    m = next;
  }
  if (n->next_head != NULL)
    send_wait(n);
}

/* Sends WAIT for every command answered since the last one. */
static void send_wait(node_t *n) {
  sy_cluster_t *c = n->c;
  char nr[16], ms[16];
  unsigned want = c->opts.wait_replicas < n->replicas ? c->opts.wait_replicas : n->replicas;
  snprintf(nr, sizeof nr, "%u", want ? want : 1);
  snprintf(ms, sizeof ms, "%u", c->opts.wait_ms);
  const char *argv[] = {"WAIT", nr, ms};
  size_t lens[] = {4, strlen(nr), strlen(ms)};
  n->covered = n->next_head;
  n->next_head = n->next_tail = NULL;
  if (sy_redis_command(&n->r, on_wait, n, 3, argv, lens) == 0) {
    n->wait_inflight = 1;
    return;
  }
  /* not sent: the link is gone (the writes' fate is unknown), or too busy */
  int up = sy_redis_ready(&n->r);
  cmd_t *m = n->covered;
  n->covered = NULL;
  while (m != NULL) {
    cmd_t *next = m->next;
    if (up)
      c->k.unreplicated++;
    finish(m, &n->r, up && !c->opts.wait_strict ? m->saved : NULL);
    m = next;
  }
}

static const char *script_body(const sy_cluster_t *c, const cmd_t *m) {
  /* the copied arguments are not NUL-terminated */
  if (m->argc < 2 || m->lens[0] != 7 || strncasecmp(m->argv[0], "EVALSHA", 7) != 0 ||
      m->lens[1] != 40)
    return NULL;
  for (unsigned i = 0; i < c->nscripts; i++)
    if (memcmp(c->scripts[i].sha, m->argv[1], 40) == 0)
      return c->scripts[i].body;
  return NULL;
}

/* A fail-over or a migration in progress. "non local key" is a script's fence
 * (stats/scripts.h SY_LUA_FENCE) refused while its slot migrates: nothing was written. */
static int retryable(const char *e) {
  return strncmp(e, "TRYAGAIN", 8) == 0 || strncmp(e, "CLUSTERDOWN", 11) == 0 ||
         strncmp(e, "MASTERDOWN", 10) == 0 || strncmp(e, "LOADING", 7) == 0 ||
         strncmp(e, "READONLY", 8) == 0 ||
         strstr(e, "Script attempted to access a non local key") != NULL;
}

/* MOVED/ASK: the node named in "MOVED 3999 127.0.0.1:6381"; NULL if unparsable. */
static node_t *redirect_target(sy_cluster_t *c, const char *e, unsigned *slot) {
  const char *sp = strchr(e, ' ');
  if (sp == NULL)
    return NULL;
  char *end;
  unsigned long s = strtoul(sp + 1, &end, 10);
  if (*end != ' ' || s >= SY_CLUSTER_SLOTS)
    return NULL;
  char host[64];
  unsigned port;
  if (sy_cluster_parse_seed(end + 1, host, sizeof host, &port) < 0)
    return NULL;
  *slot = (unsigned)s;
  return node_get(c, host, port);
}

/* An error reply that is the cluster's business; 1 if handled (m is taken). */
static int handle_error(cmd_t *m, node_t *n, const char *e) {
  sy_cluster_t *c = m->c;
  int moved = strncmp(e, "MOVED ", 6) == 0, ask = strncmp(e, "ASK ", 4) == 0;
  if ((moved || ask) && m->redirects < MAX_REDIRECTS) {
    unsigned slot;
    node_t *to = redirect_target(c, e, &slot);
    if (to == NULL)
      return 0;
    m->redirects++;
    if (moved) {
      c->k.moved++;
      c->slots[slot] = (uint8_t)(node_index(c, to) + 1);
      to->in_map = 1;
      c->refresh_wanted = 1;
    } else {
      c->k.ask++;
      m->ask = to;
    }
    dispatch(m);
    return 1;
  }
  if (strncmp(e, "NOSCRIPT", 8) == 0 && !m->script_loaded) {
    const char *body = script_body(c, m);
    if (body == NULL)
      return 0;
    c->k.noscript++;
    m->script_loaded = 1;
    const char *argv[] = {"SCRIPT", "LOAD", body};
    size_t lens[] = {6, 4, strlen(body)};
    sy_redis_command(&n->r, NULL, NULL, 3, argv, lens); /* answered before the resend */
    if (sy_redis_command(&n->r, on_reply, m, m->argc, m->argv, m->lens) < 0)
      park(m);
    return 1;
  }
  if (retryable(e)) {
    c->refresh_wanted = 1;
    park(m);
    return 1;
  }
  return 0;
}

static void on_reply(sy_redis_t *r, redisReply *reply, void *data) {
  cmd_t *m = data;
  sy_cluster_t *c = m->c;
  node_t *n = (node_t *)r;
  if (reply == NULL) {
    c->refresh_wanted = 1;
    finish(m, r, NULL);
    return;
  }
  if (reply->type == REDIS_REPLY_ERROR && !c->closing && handle_error(m, n, reply->str))
    return;
  /* WAIT blocks the link until the replicas answer or wait_ms: only where the map
   * says there are replicas (after a fail-over the new primary has none until the old
   * one comes back), and for no more of them than there are */
  if ((m->flags & SY_CLUSTER_DURABLE) && c->opts.wait_replicas > 0 && n->replicas > 0 &&
      reply->type != REDIS_REPLY_ERROR && !c->closing &&
      (m->saved = sy_redis_reply_copy(reply)) != NULL) {
    append(&n->next_head, &n->next_tail, m);
    if (!n->wait_inflight)
      send_wait(n);
    return;
  }
  finish(m, r, m->saved != NULL ? m->saved : reply);
}

static void dispatch(cmd_t *m) {
  sy_cluster_t *c = m->c;
  node_t *n = m->ask != NULL ? m->ask : node_of(c, m->slot);
  if (c->closing) {
    finish(m, NULL, NULL);
    return;
  }
  if (n == NULL || !sy_redis_ready(&n->r)) {
    if (n == NULL)
      c->refresh_wanted = 1;
    park(m);
    return;
  }
  if (m->ask != NULL) {
    const char *argv[] = {"ASKING"};
    size_t lens[] = {6};
    m->ask = NULL;
    if (sy_redis_command(&n->r, NULL, NULL, 1, argv, lens) < 0) {
      park(m);
      return;
    }
  }
  if (sy_redis_command(&n->r, on_reply, m, m->argc, m->argv, m->lens) < 0)
    park(m);
}

int sy_cluster_command(sy_cluster_t *c, const char *key, size_t keylen, unsigned flags,
                       sy_redis_reply_cb cb, void *data, int argc, const char **argv,
                       const size_t *lens) {
  if (c->closing || argc <= 0)
    return -1;
  size_t bytes = 0;
  for (int i = 0; i < argc; i++)
    bytes += lens[i];
  size_t arr = (size_t)argc * (sizeof(char *) + sizeof(size_t));
  cmd_t *m = malloc(sizeof *m + arr + bytes);
  if (m == NULL)
    return -1;
  memset(m, 0, sizeof *m);
  m->c = c;
  m->cb = cb;
  m->data = data;
  m->flags = flags;
  m->slot = sy_keyslot(key, keylen);
  m->deadline = uv_now(c->loop) + c->opts.park_ms;
  m->argc = argc;
  m->argv = (const char **)(m + 1);
  m->lens = (size_t *)(m->argv + argc);
  char *p = (char *)(m->lens + argc);
  for (int i = 0; i < argc; i++) {
    memcpy(p, argv[i], lens[i]);
    m->argv[i] = p;
    m->lens[i] = lens[i];
    p += lens[i];
  }
  dispatch(m);
  return 0;
}

/* ---- state ------------------------------------------------------------------------------- */

int sy_cluster_ready_for(const sy_cluster_t *c, const char *key, size_t keylen) {
  const node_t *n = node_of(c, sy_keyslot(key, keylen));
  return n != NULL && sy_redis_ready(&n->r);
}

int sy_cluster_ready(const sy_cluster_t *c) {
  if (!c->mapped || c->covered < SY_CLUSTER_SLOTS)
    return 0;
  for (unsigned i = 0; i < c->nnodes; i++)
    if (c->nodes[i]->in_map && !sy_redis_ready(&c->nodes[i]->r))
      return 0;
  return 1;
}

uint64_t sy_cluster_down_ms(const sy_cluster_t *c) {
  return c->down_since == 0 ? 0 : uv_now(c->loop) - c->down_since;
}

const char *sy_cluster_error(const sy_cluster_t *c) {
  if (c->error[0] != '\0' || sy_cluster_ready(c))
    return c->error;
  if (!c->mapped)
    return "no slot map yet (no seed node answered)";
  for (unsigned i = 0; i < c->nnodes; i++)
    if (c->nodes[i]->in_map && !sy_redis_ready(&c->nodes[i]->r))
      return c->nodes[i]->r.last_error[0] ? c->nodes[i]->r.last_error : "a primary is down";
  return "";
}

size_t sy_cluster_primaries(const sy_cluster_t *c, char (*labels)[64], int *up, size_t n) {
  size_t k = 0;
  for (unsigned i = 0; i < c->nnodes; i++) {
    if (!c->nodes[i]->in_map)
      continue;
    if (k < n) {
      snprintf(labels[k], 64, "%.50s:%u", c->nodes[i]->host, c->nodes[i]->port & 0xffff);
      up[k] = sy_redis_ready(&c->nodes[i]->r);
    }
    k++;
  }
  return k;
}

void sy_cluster_counters(const sy_cluster_t *c, sy_cluster_counters_t *out) { *out = c->k; }

void sy_cluster_script(sy_cluster_t *c, const char *body, char sha[41]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  static const char hex[] = "0123456789abcdef";
  EVP_Digest(body, strlen(body), md, &mdlen, EVP_sha1(), NULL);
  for (unsigned i = 0; i < 20; i++) {
    sha[2 * i] = hex[md[i] >> 4];
    sha[2 * i + 1] = hex[md[i] & 15];
  }
  sha[40] = '\0';
  for (unsigned i = 0; i < c->nscripts; i++)
    if (strcmp(c->scripts[i].sha, sha) == 0)
      return;
  if (c->nscripts < MAX_SCRIPTS) {
    memcpy(c->scripts[c->nscripts].sha, sha, 41);
    c->scripts[c->nscripts++].body = body;
  }
}

static void on_tick(uv_timer_t *t) {
  sy_cluster_t *c = t->data;
  uint64_t now = uv_now(c->loop);
  if (c->refresh_wanted || now - c->last_refresh >= SY_CLUSTER_REFRESH_MS)
    refresh_now(c);
  if (c->parked != NULL)
    run_parked(c);
  if (sy_cluster_ready(c))
    c->down_since = 0;
  else if (c->down_since == 0)
    c->down_since = now ? now : 1;
}

/* ---- life cycle -------------------------------------------------------------------------- */

sy_cluster_t *sy_cluster_new(uv_loop_t *loop, const char *const *seeds, size_t nseeds,
                             const sy_cluster_opts_t *opts, sy_cluster_change_cb on_change,
                             void *data, char *err, size_t errlen) {
  if (nseeds == 0) {
    snprintf(err, errlen, "redis.cluster: no seed nodes");
    return NULL;
  }
  sy_cluster_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->loop = loop;
  c->opts = *opts;
  if (c->opts.park_ms == 0)
    c->opts.park_ms = 5000;
  if (c->opts.wait_ms == 0)
    c->opts.wait_ms = 200;
  c->on_change = on_change;
  c->data = data;
  c->down_since = uv_now(loop) ? uv_now(loop) : 1;
  uv_timer_init(loop, &c->tick);
  c->tick.data = c;
  c->handles = 1;
  for (size_t i = 0; i < nseeds; i++) {
    char host[64];
    unsigned port;
    if (sy_cluster_parse_seed(seeds[i], host, sizeof host, &port) < 0) {
      snprintf(err, errlen, "redis.cluster[%zu]: '%.100s' is not host:port", i, seeds[i]);
      sy_cluster_close(c, NULL, NULL);
      return NULL;
    }
    node_get(c, host, port);
  }
  uv_timer_start(&c->tick, on_tick, TICK_MS, TICK_MS);
  return c;
}

static void closed_one(sy_cluster_t *c) {
  if (--c->handles > 0)
    return;
  if (c->done)
    c->done(c->done_data);
  free(c);
}

static void on_node_closed(sy_redis_t *r) {
  node_t *n = (node_t *)r;
  sy_cluster_t *c = n->c;
  free(n);
  closed_one(c);
}

static void on_tick_closed(uv_handle_t *h) { closed_one(h->data); }

void sy_cluster_close(sy_cluster_t *c, void (*done)(void *data), void *data) {
  if (c == NULL || c->closing)
    return;
  c->closing = 1;
  c->done = done;
  c->done_data = data;
  cmd_t *m = c->parked;
  c->parked = c->parked_tail = NULL;
  while (m != NULL) {
    cmd_t *next = m->next;
    finish(m, NULL, NULL);
    m = next;
  }
  for (unsigned i = 0; i < c->nnodes; i++)
    sy_redis_close(&c->nodes[i]->r, on_node_closed);
  uv_close((uv_handle_t *)&c->tick, on_tick_closed);
}
