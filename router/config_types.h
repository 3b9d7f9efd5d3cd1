/*
 * config_types.h — the types of a loaded configuration (sy_config_t and its parts),
 * and nothing else: the config loader's files and every user of a config include
 * it, so that the loader's pieces (config.c, config_exp.c, config_stats.c, ...)
 * share types without depending on each other. The API that loads and frees a
 * config is config.h.
 */
#ifndef SY_CONFIG_TYPES_H
#define SY_CONFIG_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct sy_kv_s {
  char *name;
  char *value;
} sy_kv_t;

/* An HTTP proxy an upstream server is reached through: a tunnel (CONNECT) to the
 * server, then TLS end to end inside it for an https:// server. */
typedef struct sy_egress_proxy_s {
  char *host;   /* a numeric address or a name (resolved like a server's) */
  uint16_t port;
  char *auth;   /* the Proxy-Authorization value ("Basic ..."), or NULL; never logged */
  char *origin; /* where it was given: "proxy" or the environment variable's name */
} sy_egress_proxy_t;

typedef struct sy_hostport_s {
  char *host; /* a numeric address, or a name (upstreams: resolved by upstream.c) */
  uint16_t port;
  int tls; /* upstream servers: given as https:// */
  sy_egress_proxy_t *proxy; /* upstream servers: reached through it (owned), or NULL: direct */
} sy_hostport_t;

/* What an upstream request's Host header carries (`host_header:`). */
typedef enum {
  SY_HOST_AUTO = 0, /* default: the server's name (SERVER) for a server given by name or
                       with tls.server_name, the client's (CLIENT) for a numeric address */
  SY_HOST_CLIENT,   /* the client's Host, as it came */
  SY_HOST_SERVER,   /* tls.server_name, else the server's host; ":port" unless the
                       scheme's default */
  SY_HOST_LITERAL,  /* host_literal */
} sy_host_mode_t;

/* An upstream's `tls:` block (for its https:// servers). */
typedef struct sy_upstream_tls_s {
  char *ca_file;     /* PEM bundle to verify against; NULL: the system's */
  char *cert_file;   /* client certificate (mTLS), with key_file */
  char *key_file;
  char *server_name; /* SNI and the name the certificate must carry; NULL: the server's host */
  int insecure;      /* no verification at all (logged at load) */
} sy_upstream_tls_t;

/* `retry:` of an upstream: what is tried again, only before any response byte went
 * to the client and only for a request whose body is kept (router/retry.h). */
#define SY_RETRY_MAX_STATUSES 8
enum {
  SY_RETRY_CONNECT = 1, /* no connection could be made (nothing was sent) */
  SY_RETRY_RESET = 2,   /* the connection closed or reset before the first response byte */
  SY_RETRY_TIMEOUT = 4, /* no first byte in first_byte_timeout_ms (the backend may be at work) */
};
typedef struct sy_retry_conf_s {
  unsigned attempts;          /* tries on this upstream, the first included; default 2 */
  unsigned on;                /* SY_RETRY_* bits; default connect, reset */
  int statuses[SY_RETRY_MAX_STATUSES]; /* answers retried elsewhere; default 429 502 503 504 */
  size_t nstatuses;
  unsigned backoff_ms;         /* before a retry: doubled each time, +-25% jitter; default 50 */
  unsigned backoff_max_ms;     /* default 1000 */
  unsigned retry_after_max_ms; /* a longer Retry-After is not waited for: the answer goes
                                  to the client (or the fallback is tried); default 5000 */
  unsigned budget_percent;     /* requests waiting for or on a retry: at most this share of
                                  the upstream's requests in flight (Envoy's budget);
                                  default 20 */
  unsigned budget_min;         /* ... or this many, whichever is more; default 3 */
} sy_retry_conf_t;

typedef struct sy_upstream_conf_s {
  char *name;
  sy_hostport_t *servers;
  size_t nservers;
  unsigned pool_size;             /* max idle keep-alive connections per server (default 64) */
  unsigned connect_timeout_ms;    /* default 2000 */
  unsigned first_byte_timeout_ms; /* default 60000: request sent -> first response byte */
  unsigned idle_timeout_ms;       /* default 60000: longest silence while a response streams;
                                     also how long an idle pooled connection is kept */
  /* passive health: a server that answers eject_after consecutive 5xx (or first-byte
   * timeouts) is ejected for eject_ms, doubled for each ejection in a row (at most
   * eject_max_ms), while at most eject_max_percent of the servers are out */
  unsigned eject_after;       /* default 5; 0: never */
  unsigned eject_ms;          /* default 10000 */
  unsigned eject_max_ms;      /* default 300000 */
  unsigned eject_max_percent; /* default 50 */
  sy_kv_t *headers;             /* sent with every request to this upstream (credentials,
                                   ${env:NAME} expanded at load); a variant's own win */
  size_t nheaders;
  int auth_passthrough;         /* authorization: passthrough — the client's Authorization
                                   is kept when it sent one; default replace */
  int auth_drop;                /* authorization: drop — the client's never goes upstream */
  char *path_strip;             /* path: {strip_prefix, add_prefix, query} — a target that
                                   starts with strip_prefix loses it, */
  char *path_add;               /* then gets add_prefix in front */
  char *path_query;             /* and query appended (after & or ?); NULL: none of these */
  unsigned resolve_interval_ms; /* a server named by host name is resolved again this often
                                   (and after a connect failure); default 30000 */
  sy_upstream_tls_t tls;
  sy_egress_proxy_t *proxy; /* `proxy:` for every server (owned), or NULL: the environment's */
  int proxy_none;           /* `proxy: none`: direct, whatever the environment says */
  /* Made at load (files read then, never during a handshake) when a server is
   * https://; NULL otherwise. Holds the resumable sessions of the config's life
   * (router/tls.h), so unlike the rest of the config it changes as it is used. */
  struct sy_tls_ctx_s *tls_ctx;
  sy_host_mode_t host_mode;
  char *host_literal; /* SY_HOST_LITERAL */
  sy_retry_conf_t retry;
  int line;
} sy_upstream_conf_t;

typedef enum {
  SY_POLICY_SPLIT = 0,
  SY_POLICY_FIXED,    /* everything to the control */
  SY_POLICY_THOMPSON, /* Thompson sampling over the posterior of the outcome metric */
} sy_policy_kind_t;

/* `thompson:` of an experiment with policy: thompson (see policies/thompson.h). */
typedef struct sy_thompson_conf_s {
  int continuous;     /* outcome: binary (0, default) | continuous (1) */
  double prior_alpha; /* binary: Beta(alpha, beta) prior, default 1, 1 */
  double prior_beta;
  double prior_mu;    /* continuous: Normal-inverse-gamma prior, default */
  double prior_kappa; /*   mu 0, kappa 0.01, alpha 1, beta 1 */
  double prior_a;     /*   (YAML prior: {mu, kappa, alpha, beta}) */
  double prior_b;
  int minimise;               /* direction: maximize (0, default) | minimize (1) */
  int log_scale;              /* continuous only: model ln x of a positive metric */
  double floor;               /* minimum share of each variant, default 0; floor * K <= 1 */
  int top_two;                /* top-two Thompson sampling, default off */
  double top_two_beta;        /* default 0.5, in (0, 1) */
  unsigned sticky_ttl_ms;     /* with sticky_header: a session keeps its variant this
                                 long (default 1800000); 0 turns sessions off */
  char *segment_header;       /* NULL: no segments (lower-cased) */
  double segment_min_samples; /* a segment's own posterior is used from this many
                                 observations on (default 100) */
} sy_thompson_conf_t;

/* `shadow:` of a variant (router/shadow.c): the variant receives mirrored copies of
 * requests routed live to another variant of its experiment, with probability
 * `fraction`; the copies never touch the client's path. */
typedef struct sy_shadow_conf_s {
  int on;                     /* the variant has a shadow: block */
  double fraction;            /* share of the other variants' requests mirrored, 0..1 */
  unsigned max_inflight;      /* shadow exchanges in flight per worker process, default 16 */
  uint64_t tokens_per_minute; /* usage tokens of completed shadows per minute, over all
                                 workers (split evenly); 0 (default): unlimited */
  unsigned timeout_ms;        /* the whole shadow exchange, default 30000 */
} sy_shadow_conf_t;

/* `shadow_skip:` of an experiment: requests that are never mirrored. */
typedef struct sy_shadow_skip_s {
  char **body_keys; /* top-level members of the JSON body, e.g. tools, functions */
  size_t nbody_keys;
  sy_kv_t *headers; /* name lower-cased; value NULL: the header's presence is enough */
  size_t nheaders;
} sy_shadow_skip_t;

typedef struct sy_variant_conf_s {
  char *id;
  char *version;        /* free-form, default "1" */
  size_t upstream;      /* index into sy_config_t.upstreams */
  double weight;        /* split weight, >= 0; all zero is an error */
  char *model;          /* NULL: leave the body's model alone */
  char *prompt_version; /* NULL: leave the system prompt alone */
  char *system_prompt;  /* text of prompts[prompt_version]; NULL iff prompt_version is NULL */
  json_t
      *body_fields; /* JSON object: fields set on the request body (retrieval.body); NULL if none */
  sy_kv_t *headers; /* extra request headers: `headers:` then `retrieval.headers:` */
  size_t nheaders;
  sy_shadow_conf_t shadow; /* shadow.on == 0: no shadow copies */
  int has_fallback;        /* `fallback:` tried when the upstream's own retries are spent */
  size_t fallback;         /* its upstream (index into sy_config_t.upstreams) */
  char *fallback_model;    /* the model asked of it; NULL: the variant's own */
  char ref[13];            /* schema 5's ref id of this variant version (proto/event5.h) */
  char *ref_def;           /* and its definition */
  char *stats_key;         /* sy:{E}:v:V, its statistics hash (proto/keys.h) */
  int line;
} sy_variant_conf_t;

/* How an implicit or explicit feedback type counts toward the outcome metric. */
typedef struct sy_proxy_conf_s {
  int type;      /* SY_FB_* */
  double weight; /* observation weight (times the key's trust), > 0 */
  int has_as;    /* the signal stands for this outcome value, whatever it carries */
  double as;
} sy_proxy_conf_t;

typedef enum { SY_MISSING_IGNORE = 0, SY_MISSING_FAILURE } sy_missing_t;

/* `outcome:` of an experiment: its one outcome metric. */
typedef struct sy_outcome_conf_s {
  int given;            /* the experiment has an outcome: block */
  char *metric;         /* name the outcome API must use; default "outcome" */
  int continuous;       /* binary (0, default) | continuous (1) */
  int minimise;         /* direction: higher is better (0, default) | lower (1) */
  unsigned window_s;    /* attribution window, default 86400 */
  sy_missing_t missing; /* binary only: a trial whose window closes without an outcome */
  sy_proxy_conf_t *proxies;
  size_t nproxies;
} sy_outcome_conf_t;

/* Feedback types of POST /switchyard/v1/feedback (proto/API.md). */
enum {
  SY_FB_THUMBS = 0,
  SY_FB_RATING,
  SY_FB_EDIT,
  SY_FB_COPY,
  SY_FB_RETRY,
  SY_FB_ABANDON,
  SY_FB_ESCALATION,
  SY_FB_CUSTOM,
  SY_FB_NTYPES
};
extern const char *const sy_feedback_type_names[SY_FB_NTYPES];

typedef enum { SY_GATE_OFF = 0, SY_GATE_CANARY, SY_GATE_BANDIT } sy_gate_mode_t;

#define SY_GATE_MAX_STEPS 16

/* `gate:` of an experiment: when and how candidates are promoted or rolled back
 * (policies/gate.h does the statistics, router/gate_run.c the lifecycle). */
typedef struct sy_gate_conf_s {
  sy_gate_mode_t mode; /* off (no gate: block), canary (split/fixed), bandit (thompson) */
  double alpha;        /* outcome test level, default 0.05 */
  double min_samples;  /* outcomes per arm before any decision, default 100 */
  double tuning_n;     /* the confidence sequence's tuning sample size; 0: gate.h's */
  double ramp[SY_GATE_MAX_STEPS]; /* canary shares, percent, increasing (default 1 5 25 50) */
  size_t nramp;
  unsigned step_min_s;        /* least time on a ramp step before the next, default 60 */
  double step_min_requests;   /* least candidate requests on a step, default 100 */
  unsigned interval_ms;       /* how often the decider looks, default 5000 */
  unsigned max_stale_s;       /* statistics older than this halt decisions, default 300 */
  double shadow_min_requests; /* shadow responses before a shadowed candidate goes canary */
  double latency_p95_ratio;   /* guardrail: candidate p95 <= ratio x control's; 0 off */
  double error_rate_delta;    /* guardrail: candidate error rate - control's <= this; 0 off */
  double tokens_ratio;        /* guardrail: tokens per request ratio <= this; 0 off */
  double guard_alpha;         /* guardrails' total level (Bonferroni), default 0.05 */
  double srm_alpha;           /* sample-ratio mismatch test level, default 0.001 */
  double promote_share;       /* share of alpha spent on promotions (policies/gate.h), 0.9 */
  double outcome_min;         /* bandit: the outcome's declared range, default [0, 1]; */
  double outcome_max;         /*   required for a continuous outcome (policies/gate.h) */
  int outcome_range_given;
  int line;
} sy_gate_conf_t;

typedef struct sy_experiment_conf_s {
  char *id;
  char *method;             /* NULL: any method */
  char *path_prefix;        /* required */
  char *match_header;       /* NULL: no header condition (lower-cased) */
  char *match_header_value; /* NULL: header presence is enough */
  char *sticky_header;      /* NULL: random assignment (lower-cased) */
  char *salt;               /* default: the experiment id */
  sy_policy_kind_t policy;
  sy_thompson_conf_t thompson; /* meaningful iff policy == SY_POLICY_THOMPSON */
  sy_outcome_conf_t outcome;
  sy_gate_conf_t gate;
  size_t control; /* index into variants */
  sy_variant_conf_t *variants;
  size_t nvariants;
  sy_shadow_skip_t shadow_skip; /* default: no rules */
  int line;
} sy_experiment_conf_t;

typedef enum {
  SY_DEFAULT_NOT_FOUND = 0, /* 404 with a JSON error */
  SY_DEFAULT_PASS,          /* pass through to default_upstream */
} sy_default_kind_t;

typedef struct sy_limits_s {
  size_t max_header_bytes;      /* default 16384 -> 431 */
  size_t max_body_bytes;        /* default 32 MiB -> 413, for bodies held in memory */
  size_t held_body_bytes;       /* default 256 MiB: bodies held at once by one worker
                                   (router/bodycap.h); a request beyond it gets 503 */
  size_t max_stream_body_bytes; /* default 100 MiB -> 413: bodies over 64 KiB that no
                                   rewrite needs are streamed upstream, not held */
  unsigned header_timeout_ms;   /* default 10000 -> 408: first byte to end of headers (also body) */
  unsigned idle_timeout_ms;     /* default 60000: idle keep-alive client, closed silently */
  unsigned shutdown_timeout_ms; /* default 30000: SIGTERM drain deadline */
  unsigned max_connections;     /* client connections per worker; over it: 503 and close.
                                   0 (default): from the file descriptor limit, which
                                   each connection and its upstream leg must fit in */
} sy_limits_t;

/* An API key of the feedback and outcome API. */
typedef struct sy_apikey_conf_s {
  char *name;
  char *secret; /* read from the environment variable secret_env at load time */
  char *tenant;
  double trust;      /* weight of what this key reports, in (0, 1], default 1 */
  double rate_limit; /* calls per second per worker; 0 (default): no limit */
  double burst;      /* calls allowed at once, default 2 x rate_limit (at least 1) */
} sy_apikey_conf_t;

/* Where statistics and events go (stats/). */
typedef struct sy_redis_conf_s {
  int enabled;                 /* default 1; false: no Redis at all (no events, no feedback API) */
  char *url;                   /* NULL: embedded redis-server on DATA_DIR/redis.sock */
  char *server;                /* embedded: the redis-server binary, default "redis-server" */
  unsigned timeout_ms;         /* per-command timeout, default 2000 */
  unsigned connect_timeout_ms; /* resolve + connect + handshake, default timeout_ms */
  unsigned reconnect_max_ms;   /* the longest wait between reconnect attempts, default 2000 */
  /* Sentinel: `sentinels: [host:port, ...]` and `master: NAME` instead of url (the
   * data nodes' AUTH and db from password_env / username / db). */
  char **sentinel_hosts;       /* nsentinels host names or addresses */
  uint16_t *sentinel_ports;    /* default 26379 */
  size_t nsentinels;
  char *master;
  char *username;              /* data nodes' ACL user, with password_env */
  char *password;              /* data nodes' AUTH, read from password_env */
  char *sentinel_password;     /* the sentinels' AUTH, read from sentinel_password_env */
  unsigned db;                 /* data nodes' database, default 0 */
  int has_db;                  /* db was given */
  unsigned wait_replicas;      /* a journal batch counts as written once on this many replicas
                                  (WAIT), default 0: on the primary alone */
  unsigned wait_timeout_ms;    /* the WAIT's timeout, default 100 */
  int wait_strict;             /* a short WAIT: batch not acknowledged (spooled, resent);
                                  default 0: acknowledged on the primary alone */
  char **cluster;              /* Redis Cluster seed nodes, "host:port" (none: not a cluster);
                                  wait_replicas / wait_timeout_ms apply there too */
  size_t ncluster;
} sy_redis_conf_t;

typedef struct sy_events_conf_s {
  int enabled;          /* default 1 */
  char *stream;         /* default "sy:events" */
  unsigned long maxlen; /* approximate stream cap, default 1000000 */
  unsigned batch_max;   /* events per pipelined batch, default 256 */
  unsigned flush_ms;    /* longest an event waits for its batch, default 5 */
  size_t queue_bytes;   /* memory queue while Redis is slow or away, default 64 MiB;
                           beyond it batches go to the spool file */
  size_t spool_bytes;   /* spool file cap, default 1 GiB; beyond it events are dropped */
  unsigned sync_ms;     /* posterior refresh and sweep period, default 1000 */
} sy_events_conf_t;

/* A listener's `tls:` (TLS on the client-facing listener; router/config_listen.c). */
typedef struct sy_listen_tls_s {
  char *cert_file;          /* PEM: the certificate chain, leaf first */
  char *key_file;           /* PEM: its private key */
  int tls13_only;           /* min_version: "1.3"; default "1.2" */
  struct sy_tls_ctx_s *ctx; /* made at load; NULL: a plain listener */
} sy_listen_tls_t;

/* `admin:` — the admin API's own listener (router/admin.c). */
typedef struct sy_admin_conf_s {
  int on;               /* the config has an admin: block */
  sy_hostport_t listen; /* default 127.0.0.1:9090 */
  char *token;          /* from the environment variable token_env (>= 16 characters) */
  int line;
} sy_admin_conf_t;

typedef struct sy_config_s {
  char *path;
  char config_hash[17]; /* the first 16 hex digits of the SHA-256 of the file's bytes: what
                           events and the version registry name this config by */
  sy_hostport_t *listeners; /* .tls: a TLS listener */
  sy_listen_tls_t *listen_tls; /* one per listener */
  size_t nlisteners;
  unsigned workers; /* default 1 */
  sy_limits_t limits;
  sy_upstream_conf_t *upstreams;
  size_t nupstreams;
  sy_experiment_conf_t *experiments;
  size_t nexperiments;
  char *stats_file;       /* NULL: none. Until the Redis stats layer supplies them, the
                             sufficient statistics of thompson experiments are read from
                             this JSON file whenever it changes (see router/stats_file.c) */
  unsigned stats_poll_ms; /* how often the file is checked, default 1000 */
  char *data_dir;         /* default "switchyard-data" (relative to the working directory):
                             embedded Redis, spool files */
  sy_redis_conf_t redis;
  sy_events_conf_t events;
  char *hash_key; /* keyed hashing of ids (from env privacy.hash_key_env); NULL: a
                     random key per process, logged as a warning */
  sy_apikey_conf_t *api_keys;
  size_t napi_keys;
  sy_admin_conf_t admin;
  sy_default_kind_t default_kind;
  size_t default_upstream; /* valid iff default_kind == SY_DEFAULT_PASS */
} sy_config_t;

#endif
