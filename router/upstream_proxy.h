/*
 * upstream_proxy.h — the CONNECT exchange with an egress proxy that opens a tunnel
 * to an upstream server: the request, and reading the proxy's answer head. Pure:
 * no I/O (the pool, upstream.c, writes and reads); this module knows bytes only.
 *
 * Errors: -1 with a sentence in the caller's buffer.
 */
#ifndef SY_UPSTREAM_PROXY_H
#define SY_UPSTREAM_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "router/buf.h"

#define SY_TUNNEL_HEAD_MAX 8192 /* the proxy's answer head, at most */

/* Reading the proxy's answer: the head so far. */
typedef struct sy_uptunnel_s {
  size_t len;
  char head[SY_TUNNEL_HEAD_MAX];
} sy_uptunnel_t;

typedef enum {
  SY_TUNNEL_WANT = 0, /* more of the head is needed */
  SY_TUNNEL_UP,       /* a 2xx: the tunnel is open, bytes now go to the server */
  SY_TUNNEL_REFUSED,  /* a 4xx (*status): asking again will not help */
  SY_TUNNEL_FAILED,   /* a 5xx or another answer (*status), or not HTTP (*status 0) */
} sy_tunnel_status_t;

/* `CONNECT host:port HTTP/1.1` with Host (and Proxy-Authorization when auth is not
 * NULL) in a new buffer, or NULL when out of memory. An IPv6 host is bracketed. */
sy_buf_t *sy__uptunnel_request(const char *host, uint16_t port, const char *auth);
/* Feeds n bytes the proxy sent. Returns the state; when the head is complete,
 * *status is its status and, unless SY_TUNNEL_UP, why says what the proxy answered
 * ("answered 407 Proxy Authentication Required", or what was wrong with it). Bytes
 * after a 2xx head (the server speaking first through a fresh tunnel) are refused
 * as FAILED: neither TLS nor HTTP/1.1 servers do that. */
sy_tunnel_status_t sy__uptunnel_feed(sy_uptunnel_t *t, const char *p, size_t n, int *status,
                                     char *why, size_t whylen);

#endif
