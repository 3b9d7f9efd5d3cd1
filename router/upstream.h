/*
 * upstream.h — pooled keep-alive connections to the upstream servers (upstream.c),
 * plain or TLS (an https:// server: the handshake runs after the TCP connect,
 * before the connection is lent); the leg that uses one is router/http1client.h's.
 */
#ifndef SY_UPSTREAM_H
#define SY_UPSTREAM_H

#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "router/config.h"
#include "router/http1client.h"
#include "router/tls.h"
#include "router/types.h"
#include "router/upstream_proxy.h"

#define SY_UP_READ_BUF 16384 /* one upstream read: a ref-counted sy_buf_t */

#define SY_UP_MAX_ADDRS 8 /* addresses kept per server name */

struct sy_upresolve_s;

/* A server of a pool. Through an egress proxy, the proxy's host and port take the
 * server's place below (the server's name is the proxy's to resolve). A numeric
 * address is used as it is; a host name is resolved
 * off the loop (uv_getaddrinfo) every resolve_interval_ms and after a connect
 * failure, and every address it has is used in turn. A resolution that fails keeps
 * the last good set (logged once, and once when it works again). */
struct sy_upserver_s {
  sy_uppool_t *pool;
  const sy_hostport_t *hp; /* the config's host and port */
  int is_name;             /* hp->host is a name */
  struct sockaddr_storage addrs[SY_UP_MAX_ADDRS];
  unsigned naddrs, next;            /* the last good set, and the one to try next */
  uint64_t resolve_at;              /* loop time (ms) of the next resolution (names) */
  struct sy_upresolve_s *resolving; /* in flight, or NULL */
  int resolve_failing;              /* the last resolution failed (logged) */
  unsigned addr_gen;                /* bumped when the set changes: older connections retire */
  char label[300];                  /* host:port, for logs and errors */
  char host[300];                   /* the Host header its requests carry; "": the client's */
  const char *tls_name;             /* https://: SNI and the certificate's name; NULL: plain */
  const sy_egress_proxy_t *proxy;   /* reached through a CONNECT tunnel of it, or NULL */
  const char *dial_host;            /* what is resolved and connected to: the proxy's */
  uint16_t dial_port;               /* host and port, or the server's own */
  sy_upconn_t *idle;                /* idle keep-alive connections, most recently used first */
  unsigned nidle;
  uint64_t down_until;    /* loop time (ms) before which new connects avoid this server */
  unsigned fails;         /* consecutive 5xx answers or first-byte timeouts */
  unsigned ejections;     /* ejections in a row (no success in between) */
  uint64_t ejected_until; /* loop time (ms): ejected for its answers until then */
};

struct sy_uppool_s {
  const sy_upstream_conf_t *conf;
  sy_worker_t *w; /* the worker whose loop the pool's connections run on */
  sy_upserver_t *servers;
  size_t nservers;
  size_t rr;              /* round-robin cursor */
  unsigned active;        /* client requests in flight on this upstream (proxy.c) */
  unsigned retrying;      /* ... of them waiting for or on a retry (the retry budget) */
  uint64_t tls_logged_at; /* loop time (ms) a TLS failure was last logged (0: never) */
  unsigned tls_unlogged;  /* failures since, not logged */
};

typedef enum { SY_UP_CONNECTING = 0, SY_UP_ACTIVE, SY_UP_IDLE, SY_UP_CLOSING } sy_upstate_t;

struct sy_upconn_s {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t creq;
  sy_worker_t *w;
  sy_upserver_t *server;
  sy_upconn_t *next, *prev; /* idle list */
  sy_h1_leg_t *leg;         /* the upstream leg using it (router/http1client.h) */
  sy_upstate_t state;
  unsigned handles;  /* open handles; freed when the last close callback runs */
  unsigned addr_gen; /* its server's addr_gen when it connected */
  unsigned uses;     /* exchanges served (0 while on its first) */
  sy_tls_t *tls;     /* https:// servers: the TLS engine (NULL: plain, or closed) */
  sy_uptunnel_t *tunnel; /* CONNECT sent to the egress proxy, its answer being read */
};

/* Picks a server of the pool (round robin, skipping servers marked down unless
 * all are) not among avoid[0..navoid) while there is another, and returns an idle
 * connection to it (state ACTIVE, ready now: sy_h1_leg_ready is not called) or a new
 * one (state CONNECTING, which through an egress proxy lasts until its tunnel is open
 * and for TLS to the end of the handshake:
 * sy_h1_leg_ready, or sy_h1_leg_tls_failed, is called later), lent to leg. Returns
 * NULL with *err set (a libuv error) when no connection can be started: out of memory
 * or handles, or a server name with no address yet (UV_EAI_NONAME). */
sy_upconn_t *sy__upstream_acquire(sy_uppool_t *pool, const void *const *avoid, size_t navoid,
                                  sy_h1_leg_t *leg, int *err);
/* Sets s's Host header and TLS name from its config (host_header:, tls.server_name),
 * and what it dials (its egress proxy's host and port, or its own). */
void sy__upstream_server_names(sy_upserver_t *s);
/* Starts resolving s's name now (off the loop) unless a resolution is in flight. */
void sy__upstream_resolve(sy_upserver_t *s);
/* Fills s->addrs for a server that has none: a numeric address at once; a name with
 * a blocking lookup when may_block (a worker's first runtime, before its loop runs),
 * else off the loop (its first connects fail until the answer). Returns 0, or -1 with
 * err (only when blocking: an unknown name stops the start, as a typo should). */
int sy__upstream_server_init(sy_upserver_t *s, int may_block, char *err, size_t errlen);
/* The runtime that owns s goes away: a resolution in flight forgets it. */
void sy__upstream_server_free(sy_upserver_t *s);
/* Gives an active connection back to its server's idle list (or closes it if
 * the list is full or the runtime is going away). */
void sy__upstream_release(sy_upconn_t *u);
/* Closes a connection in any state, with a TCP reset if `reset`. The owner is
 * forgotten at once; callbacks for it never run again. */
void sy__upstream_close(sy_upconn_t *u, int reset);
/* Stops / restarts reading (client backpressure). A connection otherwise reads
 * all the time; while lent, what it reads goes to sy_h1_leg_read. */
void sy__upstream_pause(sy_upconn_t *u);
void sy__upstream_resume(sy_upconn_t *u);
/* Marks a server down for a while after a connect failure. */
void sy__upstream_mark_down(sy_upserver_t *s);
/* What server s answered: an HTTP status, or 504 for a first-byte timeout. Counts
 * consecutive failures and ejects the server after conf->eject_after of them. */
void sy__upstream_result(sy_upserver_t *s, int status);

#endif
