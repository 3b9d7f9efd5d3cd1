/*
 * upstream_proxy.c — the CONNECT request to an egress proxy and the reading of its
 * answer head (see upstream_proxy.h).
 *
 * Only the status line matters: a 2xx opens the tunnel (RFC 9110 §9.3.6), and its
 * header fields are ignored. The head is bounded (SY_TUNNEL_HEAD_MAX); a proxy that
 * sends more, or something that is not HTTP/1.x, fails the connect.
 */
#include "router/upstream_proxy.h"

#include <stdio.h>
#include <string.h>

sy_buf_t *sy__uptunnel_request(const char *host, uint16_t port, const char *auth) {
  int v6 = strchr(host, ':') != NULL;
  char hp[300];
  snprintf(hp, sizeof hp, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)port);
  size_t cap = 2 * strlen(hp) + (auth != NULL ? strlen(auth) : 0) + 128;
  sy_buf_t *b = sy_buf_new(cap);
  if (b == NULL)
    return NULL;
  int n = snprintf(b->data, cap, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s%s%s\r\n", hp, hp,
                   auth != NULL ? "Proxy-Authorization: " : "", auth != NULL ? auth : "",
                   auth != NULL ? "\r\n" : "");
  b->len = (size_t)n;
  return b;
}

/* The reason phrase r[0..n), printable ASCII only, into out. */
static void reason_copy(const char *r, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 1 < cap && o < 80; i++)
    out[o++] = r[i] >= 0x20 && r[i] < 0x7f ? r[i] : '?';
  out[o] = '\0';
}

sy_tunnel_status_t sy__uptunnel_feed(sy_uptunnel_t *t, const char *p, size_t n, int *status,
                                     char *why, size_t whylen) {
  *status = 0;
  size_t room = sizeof t->head - t->len;
  size_t take = n < room ? n : room;
  memcpy(t->head + t->len, p, take);
  size_t old = t->len;
  t->len += take;
  /* The end of the head may straddle reads: look from 3 bytes before the new ones. */
  size_t from = old > 3 ? old - 3 : 0;
  const char *end = NULL;
  for (size_t i = from; i + 4 <= t->len && end == NULL; i++)
    if (memcmp(t->head + i, "\r\n\r\n", 4) == 0)
      end = t->head + i + 4;
  if (end == NULL) {
    if (t->len < sizeof t->head)
      return SY_TUNNEL_WANT;
    snprintf(why, whylen, "sent an answer head over %d bytes", SY_TUNNEL_HEAD_MAX);
    return SY_TUNNEL_FAILED;
  }
  const char *h = t->head;
  int st = 0;
  if (t->len < 12 || memcmp(h, "HTTP/1.", 7) != 0 || h[8] != ' ' ||
      sscanf(h + 9, "%3d", &st) != 1 || st < 100 || st > 599) {
    snprintf(why, whylen, "answered CONNECT with something that is not HTTP/1.x");
    return SY_TUNNEL_FAILED;
  }
  *status = st;
  const char *eol = memchr(h, '\r', (size_t)(end - h));
  const char *r = h + 12;
  if (r < eol && *r == ' ')
    r++;
  char reason[96];
  reason_copy(r, eol > r ? (size_t)(eol - r) : 0, reason, sizeof reason);
  if (st >= 200 && st < 300) {
    size_t extra = (size_t)(t->head + t->len - end) + (n - take);
    if (extra == 0)
      return SY_TUNNEL_UP;
    snprintf(why, whylen, "sent %zu bytes through the new tunnel before the server was asked",
             extra);
    return SY_TUNNEL_FAILED;
  }
  snprintf(why, whylen, "answered %d%s%s", st, reason[0] != '\0' ? " " : "", reason);
  return st >= 400 && st < 500 ? SY_TUNNEL_REFUSED : SY_TUNNEL_FAILED;
}
