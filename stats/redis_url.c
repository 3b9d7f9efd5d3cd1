/*
 * redis_url.c — the `redis.url` parser (see redis_url.h for the accepted forms).
 *
 * The URL is split by hand rather than with a general URI library: the grammar is
 * small, and the parser must never put the password into an error message, which a
 * generic "cannot parse '<url>'" would do.
 */
#include "stats/redis_url.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/err.h"

#define SY_PORT_DEFAULT 6379u

/* Longest piece of user text quoted back in an error message. */
#define QUOTE_MAX 64

/* Parses n decimal digits (n > 0, nothing else) into *out if the value is <= max. */
static int parse_uint(const char *s, size_t n, unsigned long max, unsigned long *out) {
  unsigned long v = 0;
  if (n == 0 || n > 10)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (unsigned long)(s[i] - '0');
  }
  if (v > max)
    return -1;
  *out = v;
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/*
 * Percent-decodes s[0..n) into out (size outsz, NUL-terminated). `what` names the
 * part in error messages; the part's text itself is never quoted (it may be a secret).
 */
static int percent_decode(const char *s, size_t n, char *out, size_t outsz, const char *what,
                          char *err, size_t errlen) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
      int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return sy_errf(err, errlen, "bad percent-encoding in the %s (%%XX with two hex digits)", what);
      c = hi * 16 + lo;
      if (c == 0)
        return sy_errf(err, errlen, "the %s contains %%00 (a NUL byte)", what);
      i += 2;
    }
    if (o + 1 >= outsz)
      return sy_errf(err, errlen, "the %s is too long (at most %zu bytes)", what, outsz - 1);
    out[o++] = (char)c;
  }
  out[o] = '\0';
  return 0;
}

/* Parses the port text p[0..n) (after the ':'). */
static int parse_port(const char *p, size_t n, sy_redis_addr_t *a, char *err, size_t errlen) {
  unsigned long v;
  if (parse_uint(p, n, 65535, &v) < 0 || v == 0)
    return sy_errf(err, errlen, "bad port '%.*s' (1-65535)", (int)(n > QUOTE_MAX ? QUOTE_MAX : n), p);
  a->port = (unsigned)v;
  return 0;
}

/* Checks an IPv6 literal (the text between the brackets). */
static int valid_v6(const char *s, size_t n) {
  if (n == 0 || memchr(s, ':', n) == NULL)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (hexval(s[i]) < 0 && s[i] != ':' && s[i] != '.')
      return 0;
  return 1;
}

/* Checks a host name or IPv4 address. */
static int valid_name(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '.' || c == '_';
    if (!ok)
      return 0;
  }
  return n > 0;
}

/* Parses "[v6]:port", "[v6]", "host:port" or "host" (s[0..n)). */
static int parse_hostport(const char *s, size_t n, sy_redis_addr_t *a, char *err, size_t errlen) {
  const char *host = s, *port = NULL;
  size_t hlen;
  if (n > 0 && s[0] == '[') {
    const char *close = memchr(s, ']', n);
    if (close == NULL)
      return sy_errf(err, errlen, "unterminated '[' in the host");
    host = s + 1;
    hlen = (size_t)(close - host);
    if (!valid_v6(host, hlen))
      return sy_errf(err, errlen, "bad IPv6 address '[%.*s]'",
                  (int)(hlen > QUOTE_MAX ? QUOTE_MAX : hlen), host);
    if (close + 1 < s + n && close[1] != ':')
      return sy_errf(err, errlen, "unexpected '%c' after ']' (expected ':PORT')", close[1]);
    if (close + 1 < s + n)
      port = close + 2;
  } else {
    const char *colon = memchr(s, ':', n);
    hlen = colon != NULL ? (size_t)(colon - s) : n;
    if (hlen == 0 && colon != NULL && memchr(colon + 1, ':', n - hlen - 1) != NULL)
      return sy_errf(err, errlen,
                  "missing host (an IPv6 address goes in brackets: "
                  "redis://[::1]:6379)");
    if (hlen == 0)
      return sy_errf(err, errlen, "missing host (redis://HOST[:PORT][/DB])");
    if (!valid_name(host, hlen))
      return sy_errf(err, errlen, "bad host '%.*s'", (int)(hlen > QUOTE_MAX ? QUOTE_MAX : hlen), host);
    if (colon != NULL)
      port = colon + 1;
  }
  if (hlen >= sizeof(a->host))
    return sy_errf(err, errlen, "the host is too long (at most %zu bytes)", sizeof(a->host) - 1);
  memcpy(a->host, host, hlen);
  a->host[hlen] = '\0';
  return port == NULL ? 0 : parse_port(port, (size_t)(s + n - port), a, err, errlen);
}

/* Splits "[USER]:PASSWORD" (s[0..n)) into the two decoded fields. */
static int parse_userinfo(const char *s, size_t n, sy_redis_addr_t *a, char *err, size_t errlen) {
  const char *colon = memchr(s, ':', n);
  if (colon == NULL)
    return sy_errf(err, errlen,
                "userinfo without ':' is ambiguous (write redis://:PASSWORD@HOST "
                "or redis://USER:PASSWORD@HOST)");
  size_t ulen = (size_t)(colon - s);
  if (percent_decode(s, ulen, a->username, sizeof(a->username), "username", err, errlen) < 0)
    return -1;
  return percent_decode(colon + 1, n - ulen - 1, a->password, sizeof(a->password), "password", err,
                        errlen);
}

/* Parses the "/DB" part (p points at the '/' or at the end). */
static int parse_db_path(const char *p, sy_redis_addr_t *a, char *err, size_t errlen) {
  unsigned long v;
  if (*p == '\0')
    return 0;
  p++; /* the '/' */
  size_t n = strlen(p);
  if (n == 0)
    return 0;
  if (parse_uint(p, n, INT_MAX, &v) < 0)
    return sy_errf(err, errlen, "bad database number '%.*s' (/DB: a decimal number)",
                (int)(n > QUOTE_MAX ? QUOTE_MAX : n), p);
  a->db = (unsigned)v;
  return 0;
}

/* Parses what follows "redis://". */
static int parse_tcp(const char *s, sy_redis_addr_t *a, char *err, size_t errlen) {
  size_t end = strcspn(s, "/?#");
  if (strpbrk(s, "?") != NULL)
    return sy_errf(err, errlen, "query parameters are only supported in unix:// URLs");
  const char *at = memrchr(s, '@', end);
  const char *hp = s;
  if (at != NULL) {
    if (parse_userinfo(s, (size_t)(at - s), a, err, errlen) < 0)
      return -1;
    hp = at + 1;
  }
  if (parse_hostport(hp, (size_t)(s + end - hp), a, err, errlen) < 0)
    return -1;
  return parse_db_path(s + end, a, err, errlen);
}

/* Applies one "key=value" query parameter of a unix:// URL; seen tracks repeats. */
static int unix_param(const char *s, size_t n, sy_redis_addr_t *a, unsigned *seen, char *err,
                      size_t errlen) {
  const char *eq = memchr(s, '=', n);
  size_t klen = eq != NULL ? (size_t)(eq - s) : n;
  int qk = (int)(klen > QUOTE_MAX ? QUOTE_MAX : klen);
  unsigned bit = klen == 2 && memcmp(s, "db", 2) == 0         ? 1u
                 : klen == 8 && memcmp(s, "password", 8) == 0 ? 2u
                                                              : 0u;
  if (bit == 0)
    return sy_errf(err, errlen, "unknown parameter '%.*s' (db, password)", qk, s);
  if (eq == NULL)
    return sy_errf(err, errlen, "parameter '%.*s' has no value", qk, s);
  if (*seen & bit)
    return sy_errf(err, errlen, "parameter '%.*s' is given twice", qk, s);
  *seen |= bit;
  const char *v = eq + 1;
  size_t vlen = n - klen - 1;
  if (bit == 2)
    return percent_decode(v, vlen, a->password, sizeof(a->password), "password", err, errlen);
  unsigned long db;
  if (parse_uint(v, vlen, INT_MAX, &db) < 0)
    return sy_errf(err, errlen, "bad database number '%.*s' (db=N: a decimal number)",
                (int)(vlen > QUOTE_MAX ? QUOTE_MAX : vlen), v);
  a->db = (unsigned)db;
  return 0;
}

/* Parses what follows "unix://": an absolute path and an optional query. */
static int parse_unix(const char *s, sy_redis_addr_t *a, char *err, size_t errlen) {
  if (s[0] != '/')
    return sy_errf(err, errlen, "unix:// needs an absolute path, as in unix:///run/redis.sock");
  size_t plen = strcspn(s, "?");
  if (percent_decode(s, plen, a->path, sizeof(a->path), "socket path", err, errlen) < 0)
    return -1;
  size_t dlen = strlen(a->path);
  if (dlen < 2 || a->path[dlen - 1] == '/')
    return sy_errf(err, errlen, "the socket path names a directory, not a socket");
  a->is_unix = 1;
  a->port = 0;
  unsigned seen = 0;
  const char *q = s + plen;
  while (*q != '\0') {
    q++; /* the '?' or '&' */
    size_t n = strcspn(q, "&");
    if (n > 0 && unix_param(q, n, a, &seen, err, errlen) < 0)
      return -1;
    q += n;
  }
  return 0;
}

/* Refuses characters that never belong in our URLs (they would also end up in logs). */
static int check_chars(const char *url, char *err, size_t errlen) {
  for (const unsigned char *p = (const unsigned char *)url; *p != '\0'; p++) {
    if (*p <= ' ' || *p == 0x7f)
      return sy_errf(err, errlen, "the Redis URL contains a space or a control character");
    if (*p == '#')
      return sy_errf(err, errlen, "the Redis URL has a fragment ('#'); percent-encode it as %%23");
  }
  return 0;
}

int sy_redis_url_parse(const char *url, sy_redis_addr_t *out, char *err, size_t errlen) {
  sy_redis_addr_t a;
  memset(&a, 0, sizeof(a));
  a.port = SY_PORT_DEFAULT;
  if (url == NULL || url[0] == '\0')
    return sy_errf(err, errlen, "empty Redis URL (redis://HOST[:PORT][/DB] or unix:///PATH)");
  if (check_chars(url, err, errlen) < 0)
    return -1;
  const char *sep = strstr(url, "://");
  if (sep == NULL)
    return sy_errf(err, errlen,
                "the Redis URL has no scheme (redis://HOST[:PORT][/DB] or "
                "unix:///PATH)");
  size_t slen = (size_t)(sep - url);
  const char *rest = sep + 3;
  int rc;
  if (slen == 5 && strncasecmp(url, "redis", 5) == 0)
    rc = parse_tcp(rest, &a, err, errlen);
  else if (slen == 4 && strncasecmp(url, "unix", 4) == 0)
    rc = parse_unix(rest, &a, err, errlen);
  else if (slen == 6 && strncasecmp(url, "rediss", 6) == 0)
    rc = sy_errf(err, errlen, "rediss:// (TLS) is not supported");
  else
    rc = sy_errf(err, errlen, "unsupported scheme '%.*s' (redis:// or unix://)",
              (int)(slen > QUOTE_MAX ? QUOTE_MAX : slen), url);
  if (rc == 0)
    *out = a;
  return rc;
}

/* See redis_url.h. */
int sy_redis_addr_for(const char *url, const char *data_dir, sy_redis_addr_t *out, char *err,
                      size_t errlen) {
  if (url != NULL)
    return sy_redis_url_parse(url, out, err, errlen);
  char abs[4096] = "";
  if (data_dir == NULL || data_dir[0] == '\0')
    data_dir = "switchyard-data";
  if (data_dir[0] == '/') {
    snprintf(abs, sizeof abs, "%s", data_dir);
  } else if (getcwd(abs, sizeof abs) != NULL) {
    size_t n = strlen(abs);
    snprintf(abs + n, sizeof abs - n, "/%s", data_dir);
  } else {
    snprintf(abs, sizeof abs, "%s", data_dir);
  }
  memset(out, 0, sizeof *out);
  out->is_unix = 1;
  if (snprintf(out->path, sizeof out->path, "%s/redis.sock", abs) >= (int)sizeof out->path) {
    if (errlen > 0)
      snprintf(err, errlen, "data_dir: %.200s/redis.sock is too long for a unix socket path", abs);
    return -1;
  }
  return 0;
}
