/*
 * log.c — JSON-lines logging to stderr (see log.h).
 *
 * Each line is built in a stack buffer and written with one write(2), so lines
 * from several worker processes sharing stderr never interleave mid-line.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The threshold is process-wide by nature (stderr is too); set once at start. */
static sy_log_level_t threshold = SY_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sy_log_init(void) {
  const char *v = getenv("SY_LOG_LEVEL");
  if (v == NULL)
    return;
  for (int i = 0; i < 4; i++)
    if (strcmp(v, level_names[i]) == 0)
      threshold = (sy_log_level_t)i;
}

static size_t json_escape(char *out, size_t cap, const char *in) {
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)in; *p != '\0' && o + 7 < cap; p++) {
    if (*p == '"' || *p == '\\') {
      out[o++] = '\\';
      out[o++] = (char)*p;
    } else if (*p < 0x20) {
      o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p);
    } else {
      out[o++] = (char)*p;
    }
  }
  out[o] = '\0';
  return o;
}

void sy_log(sy_log_level_t level, const char *fmt, ...) {
  if (level < threshold)
    return;
  char msg[1024], esc[2048], line[2400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  json_escape(esc, sizeof(esc), msg);

  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof(line),
                   "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"pid\":%d,"
                   "\"msg\":\"%s\"}\n",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000, level_names[level], (int)getpid(), esc);
  if (n > (int)sizeof(line))
    n = (int)sizeof(line);
  ssize_t w = write(STDERR_FILENO, line, (size_t)n);
  (void)w;
}
