/*
 * log.h — structured logs: one JSON object per line on stderr. base/ is the lowest
 * layer: every other (proto/, policies/, stats/, router/) may use it; it uses none.
 *
 *   {"ts":"2026-11-24T06:40:00.123Z","level":"info","pid":123,"msg":"..."}
 *
 * The message is formatted printf-style and JSON-escaped. Levels below the
 * process's threshold (SY_LOG_LEVEL=debug|info|warn|error, default info) cost a
 * comparison and nothing else.
 */
#ifndef SY_LOG_H
#define SY_LOG_H

typedef enum { SY_LOG_DEBUG = 0, SY_LOG_INFO, SY_LOG_WARN, SY_LOG_ERROR } sy_log_level_t;

/* Reads SY_LOG_LEVEL from the environment. Call once at start (and after fork). */
void sy_log_init(void);

void sy_log(sy_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define sy_log_debug(...) sy_log(SY_LOG_DEBUG, __VA_ARGS__)
#define sy_log_info(...) sy_log(SY_LOG_INFO, __VA_ARGS__)
#define sy_log_warn(...) sy_log(SY_LOG_WARN, __VA_ARGS__)
#define sy_log_error(...) sy_log(SY_LOG_ERROR, __VA_ARGS__)

#endif
