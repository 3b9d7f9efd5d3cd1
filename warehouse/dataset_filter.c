/*
 * dataset_filter.c — the `--where` grammar (dataset_filter.h): a fixed set of keys with
 * restricted values, turned into a parameterised condition. Nothing a user types becomes
 * SQL text: the keys choose among fixed fragments, the values are bound.
 */
#include "warehouse/dataset_filter.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int value_char(int c) {
  return isalnum(c) || c == '_' || c == '.' || c == ':' || c == '@' || c == '/' || c == '+' ||
         c == '-';
}

/* ms since the epoch of a UTC civil time (days from civil, no time zone involved). */
static int64_t utc_ms(int y, int mo, int d, int h, int mi, int s, int ms) {
  y -= mo <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = era * 146097 + doe - 719468;
  return ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)s * 1000 + ms;
}

/* Parses a since/until value (dataset_filter.h). */
int sy_ds_parse_time(const char *s, int64_t *ms) {
  size_t n = strlen(s);
  if (n > 0 && n <= 15 && strspn(s, "0123456789") == n) {
    long long v = 0;
    sscanf(s, "%lld", &v);
    *ms = v;
    return 0;
  }
  int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, used = 0;
  if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10)
    return -1;
  if (n != 10) {
    int u2 = 0;
    if (sscanf(s + 10, "T%2d:%2d:%2d%n", &h, &mi, &sec, &u2) != 3 || u2 != 9)
      return -1;
    const char *rest = s + 19;
    if (rest[0] == '.') {
      if (strlen(rest) != 5 || strspn(rest + 1, "0123456789") != 3)
        return -1;
      sscanf(rest + 1, "%3d", &frac);
      rest += 4;
    }
    if (strcmp(rest, "Z") != 0)
      return -1;
  }
  /* Before 1970 is refused: ms since the epoch are non-negative here, as in the canonical
   * text (digits only). */
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return -1;
  *ms = utc_ms(y, mo, d, h, mi, sec, frac);
  return 0;
}

/* One clause "key=value" of length len into f. */
static int parse_clause(const char *c, size_t len, sy_ds_filter_t *f, unsigned *seen,
                        char *err, size_t errlen) {
  static const char *const keys[] = {"experiment", "variant", "tenant",
                                     "since",      "until",   "outcome"};
  const char *eq = memchr(c, '=', len);
  if (eq == NULL) {
    snprintf(err, errlen, "--where: expected KEY=VALUE, got '%.*s'", (int)len, c);
    return -1;
  }
  size_t klen = (size_t)(eq - c), vlen = len - klen - 1;
  int k = -1;
  for (int i = 0; i < 6; i++)
    if (strlen(keys[i]) == klen && memcmp(keys[i], c, klen) == 0)
      k = i;
  if (k < 0) {
    snprintf(err, errlen,
             "--where: unknown key '%.*s' (experiment, variant, tenant, since, until, outcome)",
             (int)klen, c);
    return -1;
  }
  if (*seen & (1u << k)) {
    snprintf(err, errlen, "--where: %s given twice", keys[k]);
    return -1;
  }
  *seen |= 1u << k;
  char v[SY_DS_VALUE_MAX];
  if (vlen == 0 || vlen >= sizeof v) {
    snprintf(err, errlen, "--where: %s needs a value of 1 to %d characters", keys[k],
             SY_DS_VALUE_MAX - 1);
    return -1;
  }
  for (size_t i = 0; i < vlen; i++)
    if (!value_char((unsigned char)eq[1 + i])) {
      snprintf(err, errlen, "--where: %s: character '%c' not allowed (letters, digits, _.:@/+-)",
               keys[k], eq[1 + i]);
      return -1;
    }
  memcpy(v, eq + 1, vlen);
  v[vlen] = 0;
  char *dst[] = {f->experiment, f->variant, f->tenant};
  if (k < 3) {
    memcpy(dst[k], v, vlen + 1);
  } else if (k < 5) {
    if (sy_ds_parse_time(v, k == 3 ? &f->since_ms : &f->until_ms) < 0) {
      snprintf(err, errlen,
               "--where: %s: '%s' is not ms since the epoch, YYYY-MM-DD or "
               "YYYY-MM-DDTHH:MM:SS[.mmm]Z",
               keys[k], v);
      return -1;
    }
    *(k == 3 ? &f->has_since : &f->has_until) = 1;
  } else if (strcmp(v, "present") == 0 || strcmp(v, "missing") == 0 || strcmp(v, "any") == 0) {
    f->outcome = v[0] == 'p' ? SY_DS_OUTCOME_PRESENT
                 : v[0] == 'm' ? SY_DS_OUTCOME_MISSING
                               : SY_DS_OUTCOME_ANY;
  } else {
    snprintf(err, errlen, "--where: outcome must be present, missing or any, got '%s'", v);
    return -1;
  }
  return 0;
}

/* Parses --where (dataset_filter.h). */
int sy_ds_filter_parse(const char *where, sy_ds_filter_t *f, char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  if (err && errlen)
    err[0] = 0;
  unsigned seen = 0;
  const char *s = where;
  while (*s) {
    const char *end = strchr(s, ',');
    if (end == NULL)
      end = s + strlen(s);
    const char *a = s, *b = end;
    while (a < b && isspace((unsigned char)*a))
      a++;
    while (b > a && isspace((unsigned char)b[-1]))
      b--;
    if (a == b) {
      snprintf(err, errlen, "--where: empty clause");
      return -1;
    }
    if (parse_clause(a, (size_t)(b - a), f, &seen, err, errlen) < 0)
      return -1;
    s = *end ? end + 1 : end;
    if (*end && *s == 0) {
      snprintf(err, errlen, "--where: empty clause after the last ','");
      return -1;
    }
  }
  if (f->has_since && f->has_until && f->until_ms <= f->since_ms) {
    snprintf(err, errlen, "--where: until must be after since");
    return -1;
  }
  return 0;
}

/* The canonical text (dataset_filter.h). */
size_t sy_ds_filter_canonical(const sy_ds_filter_t *f, char *buf, size_t len) {
  static const char *const oc[] = {"any", "present", "missing"};
  char t[4 * SY_DS_VALUE_MAX + 128];
  int n = 0;
  if (f->experiment[0])
    n += snprintf(t + n, sizeof t - (size_t)n, "experiment=%s,", f->experiment);
  if (f->variant[0])
    n += snprintf(t + n, sizeof t - (size_t)n, "variant=%s,", f->variant);
  if (f->tenant[0])
    n += snprintf(t + n, sizeof t - (size_t)n, "tenant=%s,", f->tenant);
  if (f->has_since)
    n += snprintf(t + n, sizeof t - (size_t)n, "since=%lld,", (long long)f->since_ms);
  if (f->has_until)
    n += snprintf(t + n, sizeof t - (size_t)n, "until=%lld,", (long long)f->until_ms);
  snprintf(t + n, sizeof t - (size_t)n, "outcome=%s", oc[f->outcome]);
  return (size_t)snprintf(buf, len, "%s", t);
}

/* The SQL condition (dataset_filter.h). */
size_t sy_ds_filter_sql(const sy_ds_filter_t *f, char *sql, size_t len, sy_whr_param_t *params) {
  size_t np = 0;
  int off = snprintf(sql, len, "ts_ms IS NOT NULL");
  const struct {
    const char *value, *cond;
  } text[] = {{f->experiment, " AND experiment = ?"},
              {f->variant, " AND variant = ?"},
              {f->tenant, " AND tenant_id = ?"}};
  for (size_t i = 0; i < 3; i++)
    if (text[i].value[0]) {
      off += snprintf(sql + off, len > (size_t)off ? len - (size_t)off : 0, "%s", text[i].cond);
      params[np++] = (sy_whr_param_t){0, 0, text[i].value};
    }
  if (f->has_since) {
    off += snprintf(sql + off, len > (size_t)off ? len - (size_t)off : 0, " AND ts_ms >= ?");
    params[np++] = (sy_whr_param_t){1, f->since_ms, NULL};
  }
  if (f->has_until) {
    off += snprintf(sql + off, len > (size_t)off ? len - (size_t)off : 0, " AND ts_ms < ?");
    params[np++] = (sy_whr_param_t){1, f->until_ms, NULL};
  }
  if (f->outcome != SY_DS_OUTCOME_ANY)
    snprintf(sql + off, len > (size_t)off ? len - (size_t)off : 0, "%s",
             f->outcome == SY_DS_OUTCOME_PRESENT ? " AND outcome_value IS NOT NULL"
                                                 : " AND outcome_value IS NULL");
  return np;
}
