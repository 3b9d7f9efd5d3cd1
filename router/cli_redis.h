/*
 * cli_redis.h — how the one-shot commands (status, promote, rollback, pause, resume,
 * history) find Redis and report problems (on stderr, prefixed with the command's
 * name). They talk to it through stats/redis_sync.h, whose errors they print.
 */
#ifndef SY_CLI_REDIS_H
#define SY_CLI_REDIS_H

#include <stddef.h>

#include "stats/redis_url.h"

#define SY_CLI_TIMEOUT_MS 2000u

struct sy_config_s;

/*
 * Where the redis section of cfg says Redis is, for the routers, the admin API and
 * the one-shot commands alike: its Sentinel setup (sentinels, master, username,
 * password, db, sentinel password), else its url, else the embedded server's socket
 * in data_dir; with redis.cluster, its first seed node (with username and password),
 * from which redis_sync.h follows redirections (the routers use the seeds list). Returns 0, or -1 with a one-line reason in err (no password in it).
 */
int sy_config_redis_addr(const struct sy_config_s *cfg, sy_redis_addr_t *addr, char *err,
                         size_t errlen);

/* Reports a problem of `prog` on stderr as "PROG: message". */
void sy_cli_err(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Where Redis is: the URL `url` if given, else the redis section of the config at
 * `config` (its url, or the embedded server's socket DATA_DIR/redis.sock), else
 * $SWITCHYARD_REDIS_URL. Sets *timeout_ms (the config's, else SY_CLI_TIMEOUT_MS).
 * Returns 0, or -1 after a message naming `prog` (a URL's text is never printed: it
 * may hold a password).
 */
int sy_cli_redis_addr(const char *prog, const char *url, const char *config,
                      sy_redis_addr_t *addr, unsigned *timeout_ms);

/*
 * Before serving with redis.cluster (blocking, before any loop runs): asks each seed
 * for CLUSTER INFO. Returns -1 with err naming redis.cluster when a seed answers but
 * is not a cluster node (cluster support disabled); 0 otherwise, also when no seed
 * answers (the router starts and keeps trying, as with one server that is down).
 */
int sy_cli_cluster_check(const struct sy_config_s *cfg, char *err, size_t errlen);

#endif
