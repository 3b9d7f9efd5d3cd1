#include "router/retry.h"

#include <ctype.h>
#include <string.h>

int sy_retry_status_listed(const sy_retry_conf_t *rc, int status) {
  for (size_t i = 0; i < rc->nstatuses; i++)
    if (rc->statuses[i] == status)
      return 1;
  return 0;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" (IMF-fixdate, the form senders must use). */
static int64_t http_date(const char *v, size_t len, time_t now) {
  static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char s[40];
  if (len != 29 || len >= sizeof s)
    return -1;
  memcpy(s, v, len);
  s[len] = '\0';
  if (s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || s[25] != ' ' || strcmp(s + 26, "GMT") != 0)
    return -1;
  static const int digits[] = {5, 6, 12, 13, 14, 15, 17, 18, 20, 21, 23, 24};
  for (size_t i = 0; i < sizeof digits / sizeof digits[0]; i++)
    if (!isdigit((unsigned char)s[digits[i]]))
      return -1;
  int mon = -1;
  for (int m = 0; m < 12; m++)
    if (memcmp(s + 8, months[m], 3) == 0)
      mon = m;
  if (mon < 0)
    return -1;
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  tm.tm_mday = (s[5] - '0') * 10 + (s[6] - '0');
  tm.tm_mon = mon;
  tm.tm_year = (s[12] - '0') * 1000 + (s[13] - '0') * 100 + (s[14] - '0') * 10 + (s[15] - '0') - 1900;
  tm.tm_hour = (s[17] - '0') * 10 + (s[18] - '0');
  tm.tm_min = (s[20] - '0') * 10 + (s[21] - '0');
  tm.tm_sec = (s[23] - '0') * 10 + (s[24] - '0');
  if (tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
    return -1;
  time_t t = timegm(&tm);
  if (t == (time_t)-1)
    return -1;
  return t <= now ? 0 : (int64_t)(t - now) * 1000;
}

int64_t sy_retry_after_ms(const char *v, size_t len, time_t now) {
  while (len > 0 && (v[0] == ' ' || v[0] == '\t'))
    v++, len--;
  while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
    len--;
  if (len == 0)
    return -1;
  if (isdigit((unsigned char)v[0])) {
    int64_t s = 0;
    for (size_t i = 0; i < len; i++) {
      if (!isdigit((unsigned char)v[i]))
        return -1;
      if (s > 1000000000) /* more than 30 years: as good as never */
        return INT64_MAX / 2;
      s = s * 10 + (v[i] - '0');
    }
    return s * 1000;
  }
  return http_date(v, len, now);
}

uint64_t sy_retry_backoff_ms(const sy_retry_conf_t *rc, unsigned n, double u01) {
  uint64_t ms = rc->backoff_ms;
  for (unsigned i = 1; i < n && ms < rc->backoff_max_ms; i++)
    ms *= 2;
  if (ms > rc->backoff_max_ms)
    ms = rc->backoff_max_ms;
  return (uint64_t)((double)ms * (0.75 + 0.5 * u01));
}

int sy_retry_budget_ok(const sy_retry_conf_t *rc, unsigned active, unsigned retrying) {
  uint64_t cap = (uint64_t)active * rc->budget_percent / 100;
  if (cap < rc->budget_min)
    cap = rc->budget_min;
  return retrying < cap;
}
