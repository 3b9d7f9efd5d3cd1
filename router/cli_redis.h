/*
 * cli_redis.h — how the one-shot commands (status, promote, rollback, pause, resume,
 * history) find and talk to Redis: synchronous hiredis, one connection, messages on
 * stderr prefixed with the command's name. Never part of the router's event loop.
 */
#ifndef SY_CLI_REDIS_H
#define SY_CLI_REDIS_H

#include <stdarg.h>

#include <hiredis/hiredis.h>

#include "stats/redis_url.h"

#define SY_CLI_TIMEOUT_MS 2000u

/*
 * Reports a problem of `prog`: on stderr as "PROG: message", or, between
 * sy_cli_capture_begin and _end on the calling thread, into the caller's buffer
 * (message only, the last one wins). The admin API runs the same code as the
 * commands on a thread-pool thread and answers with the captured message.
 */
void sy_cli_err(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sy_cli_capture_begin(char *buf, size_t len);
void sy_cli_capture_end(void);

/*
 * Where Redis is: the URL `url` if given, else the redis section of the config at
 * `config` (its url, or the embedded server's socket DATA_DIR/redis.sock), else
 * $SWITCHYARD_REDIS_URL. Sets *timeout_ms (the config's, else SY_CLI_TIMEOUT_MS).
 * Returns 0, or -1 after a message naming `prog` (a URL's text is never printed: it
 * may hold a password).
 */
int sy_cli_redis_addr(const char *prog, const char *url, const char *config,
                      sy_redis_addr_t *addr, unsigned *timeout_ms);

/* A ready connection (authenticated, database selected), or NULL after a message. */
redisContext *sy_cli_connect(const char *prog, const sy_redis_addr_t *a, unsigned timeout_ms);

/* Reports a failed read or write on c (a timeout says so). */
void sy_cli_report(const char *prog, const redisContext *c);

/* A command's reply; NULL (reported) on a connection error or an error reply. */
redisReply *sy_cli_vcommand(const char *prog, redisContext *c, const char *fmt, va_list ap);
redisReply *sy_cli_command(const char *prog, redisContext *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with an argument vector. */
redisReply *sy_cli_argv(const char *prog, redisContext *c, int argc, const char **argv,
                        const size_t *lens);

#endif
