/*
 * redis_url.h — parse the `redis.url` setting into an address that the Redis client
 * can connect to (TCP host and port, or a unix socket path), plus database number and
 * credentials. Pure: no I/O, no allocation.
 */
#ifndef SY_REDIS_URL_H
#define SY_REDIS_URL_H

#include <stddef.h>

/* A Sentinel setup names at most this many sentinels. */
#define SY_REDIS_MAX_SENTINELS 8

typedef struct sy_redis_hostport_s {
  char host[256]; /* a name, an IPv4 address, or an IPv6 address without brackets */
  unsigned port;
} sy_redis_hostport_t;

typedef struct sy_redis_addr_s {
  int is_unix;
  char host[256];     /* tcp: a name, an IPv4 address, or an IPv6 address without brackets */
  unsigned port;      /* tcp, default 6379; 0 for unix */
  char path[108];     /* unix socket path */
  unsigned db;        /* default 0 */
  char password[256]; /* "" if none */
  char username[128]; /* "" if none (ACL user) */
  /* Sentinel (redis.sentinels, redis.master): when nsentinels > 0 the primary's
   * host and port are not known in advance: they are asked of these sentinels
   * (SENTINEL get-master-addr-by-name MASTER) before each connection, and host/port
   * above hold the last answer ("" / 0 before the first). password, username and db
   * are the data nodes'; sentinel_password the sentinels' own AUTH ("" if none). */
  unsigned nsentinels;
  sy_redis_hostport_t sentinels[SY_REDIS_MAX_SENTINELS];
  char master[128];
  char sentinel_password[256];
} sy_redis_addr_t;

/*
 * Parses one Redis URL into *out. Accepted forms:
 *
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]   HOST is a name, an IPv4 address, or
 *                                                an IPv6 address in brackets ([::1])
 *   unix:///ABS/PATH[?db=N][&password=P]
 *
 * Schemes are case-insensitive. USER, PASSWORD and the unix PATH are percent-decoded
 * (%40 is '@'); a decoded NUL byte is refused. A userinfo without ':' ("redis://x@h")
 * is refused as ambiguous (password or user?): write ":PASSWORD@" or "USER:PASSWORD@".
 * PORT is 1..65535 (default 6379), DB a decimal number up to INT_MAX (default 0).
 * Query parameters are accepted on unix:// URLs only (db, password, each at most once);
 * fragments (#) and spaces or control characters are refused.
 *
 * Returns 0 and fills *out, or -1 with a one-line reason in err (e.g. "unsupported
 * scheme 'http' (redis:// or unix://)", "rediss:// (TLS) is not supported"); *out is
 * left untouched on error. The reason never contains the password, so it can be
 * logged. err may be NULL when errlen is 0.
 */
int sy_redis_url_parse(const char *url, sy_redis_addr_t *out, char *err, size_t errlen);

/*
 * Where Redis is, for the server and the CLI alike: `url` when it is given (parsed as
 * above), else the embedded redis-server's socket DATA_DIR/redis.sock, a relative
 * data_dir taken from the current directory and made absolute. Returns 0, or -1
 * with a one-line reason in err (no password in it).
 */
int sy_redis_addr_for(const char *url, const char *data_dir, sy_redis_addr_t *out, char *err,
                      size_t errlen);

#endif
