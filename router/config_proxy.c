/*
 * config_proxy.c — an upstream's egress proxy (see config_proxy.h).
 *
 * The environment follows curl: https_proxy (then HTTPS_PROXY) for https://
 * servers; for plain http:// servers only the lower-case http_proxy, because the
 * upper-case HTTP_PROXY can be set by a request's `Proxy:` header in CGI-like
 * setups (httpoxy); no_proxy (then NO_PROXY) excludes hosts. ALL_PROXY and
 * socks:// proxies are not read. What a server gets is settled here, once, so a
 * worker never reads the environment and check-config shows the same result.
 */
#include "router/config_proxy.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_PROXY_PORT 1080 /* curl's */

/* ---- pure parsing -------------------------------------------------------------------- */

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = tolower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n) into out (at least n+1 bytes). Returns the length, or -1
 * for a bad escape or a decoded NUL. */
static int pct_decode(const char *s, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '%') {
      out[o++] = s[i];
      continue;
    }
    int hi = i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
    int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
    if (hi < 0 || lo < 0 || (hi | lo) == 0)
      return -1;
    out[o++] = (char)(hi * 16 + lo);
    i += 2;
  }
  out[o] = '\0';
  return (int)o;
}

static void base64(const unsigned char *in, size_t n, char *out) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                 (i + 2 < n ? in[i + 2] : 0);
    out[o++] = tab[v >> 18 & 63];
    out[o++] = tab[v >> 12 & 63];
    out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
    out[o++] = i + 2 < n ? tab[v & 63] : '=';
  }
  out[o] = '\0';
}

/* A host name or an IPv4 address: letters, digits, dots, dashes, underscores. */
static int is_host_name(const char *s, size_t n) {
  if (n == 0 || n > 253)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && strchr(".-_", s[i]) == NULL)
      return 0;
  return 1;
}

/* Splits "host", "host:port", "[v6]" or "[v6]:port" (s[0..n)) into host (at most
 * hostcap bytes with its NUL) and *port (dflt if absent). Returns 0 or -1. */
static int split_hostport(const char *s, size_t n, char *host, size_t hostcap, unsigned *port,
                          unsigned dflt) {
  const char *h = s, *colon = NULL;
  size_t hl;
  if (n > 0 && s[0] == '[') {
    const char *end = memchr(s, ']', n);
    if (end == NULL)
      return -1;
    h = s + 1;
    hl = (size_t)(end - h);
    if (hl == 0 || strspn(h, "0123456789abcdefABCDEF:.") < hl)
      return -1;
    if ((size_t)(end + 1 - s) < n) {
      if (end[1] != ':')
        return -1;
      colon = end + 1;
    }
  } else {
    colon = memchr(s, ':', n);
    hl = colon != NULL ? (size_t)(colon - s) : n;
    if (!is_host_name(h, hl))
      return -1;
  }
  if (hl >= hostcap)
    return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = dflt;
  if (colon != NULL) {
    size_t pl = n - (size_t)(colon + 1 - s);
    char digits[8];
    if (pl == 0 || pl > 5 || strspn(colon + 1, "0123456789") < pl)
      return -1;
    memcpy(digits, colon + 1, pl);
    digits[pl] = '\0';
    *port = (unsigned)atoi(digits);
    if (*port == 0 || *port > 65535)
      return -1;
  }
  return 0;
}

/* Sets p->auth to "Basic base64(user:password)" from the URL's userinfo u[0..n). */
static int set_auth(sy_egress_proxy_t *p, const char *u, size_t n, char *err, size_t errlen) {
  char *dec = malloc(n + 1);
  int len = dec != NULL ? pct_decode(u, n, dec) : -1;
  if (len < 0 || strchr(dec, ':') == NULL) {
    free(dec);
    snprintf(err, errlen, "the proxy's credentials must be user:password (percent-encoded)");
    return -1;
  }
  p->auth = malloc(6 + ((size_t)len + 2) / 3 * 4 + 1);
  if (p->auth != NULL) {
    memcpy(p->auth, "Basic ", 6);
    base64((const unsigned char *)dec, (size_t)len, p->auth + 6);
  }
  memset(dec, 0, (size_t)len);
  free(dec);
  if (p->auth == NULL)
    snprintf(err, errlen, "out of memory");
  return p->auth == NULL ? -1 : 0;
}

int sy__cfg_proxy_parse(const char *url, const char *origin, sy_egress_proxy_t *p, char *err,
                        size_t errlen) {
  memset(p, 0, sizeof *p);
  const char *s = url, *sep = strstr(url, "://");
  if (sep != NULL) {
    size_t sl = (size_t)(sep - url);
    if (sl != 4 || strncasecmp(url, "http", 4) != 0) {
      snprintf(err, errlen,
               "an egress proxy is http://[user:password@]host[:port] (a TLS or SOCKS proxy is "
               "not supported), got scheme '%.*s'",
               (int)(sl > 16 ? 16 : sl), url);
      return -1;
    }
    s = sep + 3;
  }
  size_t n = strlen(s);
  if (n > 0 && s[n - 1] == '/')
    n--;
  const char *at = NULL;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '@')
      at = s + i;
  const char *hp = at != NULL ? at + 1 : s;
  size_t hn = n - (size_t)(hp - s);
  if (memchr(hp, '/', hn) != NULL || memchr(hp, '?', hn) != NULL || memchr(hp, '#', hn) != NULL) {
    snprintf(err, errlen, "an egress proxy URL has no path or query");
    return -1;
  }
  char host[256];
  unsigned port;
  if (split_hostport(hp, hn, host, sizeof host, &port, DEFAULT_PROXY_PORT) < 0) {
    snprintf(err, errlen, "an egress proxy is http://[user:password@]host[:port], got host '%.*s'",
             (int)(hn > 64 ? 64 : hn), hp);
    return -1;
  }
  if (at != NULL && set_auth(p, s, (size_t)(at - s), err, errlen) < 0)
    return -1;
  p->host = strdup(host);
  p->port = (uint16_t)port;
  p->origin = strdup(origin);
  if (p->host == NULL || p->origin == NULL) {
    free(p->host);
    free(p->origin);
    free(p->auth);
    memset(p, 0, sizeof *p);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  return 0;
}

/* Whether host (a name or address, no brackets) matches the entry e[0..n). */
static int no_proxy_entry(const char *e, size_t n, const char *host, uint16_t port) {
  if (n == 1 && e[0] == '*')
    return 1;
  if (n > 0 && e[0] == '.') {
    e++;
    n--;
  }
  char eh[256];
  unsigned ep = 0;
  /* An IPv6 address without brackets has several colons and no port. */
  const char *c1 = memchr(e, ':', n);
  int bare_v6 = c1 != NULL && memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - e)) != NULL && e[0] != '[';
  if (bare_v6) {
    if (n >= sizeof eh)
      return 0;
    memcpy(eh, e, n);
    eh[n] = '\0';
  } else if (split_hostport(e, n, eh, sizeof eh, &ep, 0) < 0) {
    return 0; /* not a host: matches nothing, as in curl */
  }
  if (ep != 0 && ep != port)
    return 0;
  size_t hl = strlen(host), el = strlen(eh);
  if (hl == el)
    return strcasecmp(host, eh) == 0;
  return hl > el && host[hl - el - 1] == '.' && strcasecmp(host + hl - el, eh) == 0;
}

int sy__cfg_no_proxy_match(const char *list, const char *host, uint16_t port) {
  if (list == NULL)
    return 0;
  const char *p = list;
  while (*p != '\0') {
    p += strspn(p, ", \t");
    size_t n = strcspn(p, ", \t");
    if (n > 0 && no_proxy_entry(p, n, host, port))
      return 1;
    p += n;
  }
  return 0;
}

void sy__cfg_proxy_free(sy_egress_proxy_t *p) {
  if (p == NULL)
    return;
  free(p->host);
  free(p->origin);
  if (p->auth != NULL)
    memset(p->auth, 0, strlen(p->auth));
  free(p->auth);
  free(p);
}

/* ---- the config ------------------------------------------------------------------------ */

/* See config_proxy.h: `proxy: URL` or `proxy: none`. */
int sy__cfg_p_proxy(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_upstream_conf_t *u = obj;
  const char *s;
  (void)f;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  if (strcmp(s, "none") == 0) {
    u->proxy_none = 1;
    return 0;
  }
  char err[300];
  sy_egress_proxy_t *p = calloc(1, sizeof *p);
  if (p == NULL)
    return sy__yaml_fail(w, v, "out of memory");
  if (sy__cfg_proxy_parse(s, "proxy", p, err, sizeof err) < 0) {
    free(p);
    return sy__yaml_fail(w, v, "%s (or none)", err);
  }
  u->proxy = p;
  return 0;
}

/* A copy of p (NULL: out of memory). */
static sy_egress_proxy_t *proxy_dup(const sy_egress_proxy_t *p) {
  sy_egress_proxy_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->host = strdup(p->host);
  c->origin = strdup(p->origin);
  c->auth = p->auth != NULL ? strdup(p->auth) : NULL;
  c->port = p->port;
  if (c->host == NULL || c->origin == NULL || (p->auth != NULL && c->auth == NULL)) {
    sy__cfg_proxy_free(c);
    return NULL;
  }
  return c;
}

/* The environment's proxy for a server of scheme tls: its variable's name in *var
 * and its value, or NULL. */
static const char *env_proxy(int tls, const char **var) {
  static const char *const https[] = {"https_proxy", "HTTPS_PROXY", NULL};
  static const char *const http[] = {"http_proxy", NULL};
  for (const char *const *n = tls ? https : http; *n != NULL; n++) {
    const char *v = getenv(*n);
    if (v != NULL && v[0] != '\0') {
      *var = *n;
      return v;
    }
  }
  return NULL;
}

static const char *env_no_proxy(void) {
  const char *v = getenv("no_proxy");
  return v != NULL && v[0] != '\0' ? v : getenv("NO_PROXY");
}

/* See config_proxy.h. */
int sy__cfg_upstream_proxy(sy__yaml_walk_t *w, yaml_node_t *m, sy_upstream_conf_t *u) {
  if (u->proxy_none)
    return 0;
  const char *no = env_no_proxy();
  for (size_t i = 0; i < u->nservers; i++) {
    sy_hostport_t *hp = &u->servers[i];
    if (u->proxy != NULL) {
      if ((hp->proxy = proxy_dup(u->proxy)) == NULL)
        return sy__yaml_fail(w, m, "out of memory");
      continue;
    }
    const char *var, *url = env_proxy(hp->tls, &var);
    if (url == NULL || sy__cfg_no_proxy_match(no, hp->host, hp->port))
      continue;
    char err[300];
    sy_egress_proxy_t *p = calloc(1, sizeof *p);
    if (p == NULL)
      return sy__yaml_fail(w, m, "out of memory");
    if (sy__cfg_proxy_parse(url, var, p, err, sizeof err) < 0) {
      free(p);
      return sy__yaml_fail(w, sy__yaml_map_get(w, m, "servers"),
                           "the environment's %s: %s (set `proxy:` on this upstream, or "
                           "`proxy: none`)",
                           var, err);
    }
    hp->proxy = p;
  }
  return 0;
}
