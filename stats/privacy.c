/*
 * privacy.c — scrubbing personal data out of free text, redaction flag names, and
 * the keyed hash for pseudonymous ids (see privacy.h for the detection rules).
 *
 * The scrubber scans by hand rather than with regex.h: the input is arbitrary bytes
 * (NULs included) and the rules need context a regex cannot express easily (Luhn,
 * date shapes, "longest prefix that is valid"). Every matcher starts only at a
 * "start" position of its own class, whose previous byte is outside the class, and
 * scans forward at most to the end of that class's run (numbers: at most 19 digits),
 * so the whole scan is linear in the input length.
 */
#include "stats/privacy.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- character classes (ASCII only; bytes >= 0x80 belong to none) ---- */

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static int is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static int is_alnum(unsigned char c) { return is_digit(c) || is_alpha(c); }
static int is_word(unsigned char c) { return is_alnum(c) || c == '_'; }
static int is_token(unsigned char c) { return is_word(c) || c == '-'; }
static int is_label(unsigned char c) { return is_alnum(c) || c == '-'; }

static int is_local(unsigned char c)
{
  return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static int is_bearer_char(unsigned char c)
{
  return is_token(c) || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

/* Length of the run of bytes of class `cls` starting at t[i]. */
static size_t run_of(const unsigned char *t, size_t n, size_t i, int (*cls)(unsigned char))
{
  size_t k = i;
  while (k < n && cls(t[k]))
    k++;
  return k - i;
}

/* ---- redaction names ---- */

static const char *const redaction_names[] = {"email", "phone", "api_key", "comment", "card"};
#define NREDACTION (sizeof redaction_names / sizeof redaction_names[0])

const char *sy_redaction_name(unsigned flag)
{
  for (size_t b = 0; b < NREDACTION; b++)
    if (flag == 1u << b)
      return redaction_names[b];
  return NULL;
}

/* Appends s to out (NUL-terminated) if it fits; 0 if not. */
static int json_put(char *out, size_t outlen, size_t *len, const char *s)
{
  size_t k = strlen(s);
  if (k >= outlen - *len)
    return 0;
  memcpy(out + *len, s, k + 1);
  *len += k;
  return 1;
}

int sy_redaction_json(unsigned flags, char *out, size_t outlen)
{
  size_t len = 0;
  int first = 1;
  if (!out || outlen == 0 || !json_put(out, outlen, &len, "["))
    return -1;
  for (size_t b = 0; b < NREDACTION; b++) {
    if (!(flags & (1u << b)))
      continue;
    if ((!first && !json_put(out, outlen, &len, ",")) || !json_put(out, outlen, &len, "\"") ||
        !json_put(out, outlen, &len, redaction_names[b]) || !json_put(out, outlen, &len, "\""))
      return -1;
    first = 0;
  }
  return json_put(out, outlen, &len, "]") ? (int)len : -1;
}

/* ---- output buffer ---- */

typedef struct outbuf_s {
  char *p;
  size_t len, cap; /* cap counts the byte kept for the NUL */
  int failed;
} outbuf_t;

static void ob_put(outbuf_t *o, const unsigned char *s, size_t k)
{
  if (o->failed || k == 0)
    return;
  if (k >= o->cap - o->len) {
    /* Not expected (the initial capacity is the documented bound), but stay safe. */
    size_t cap = o->cap * 2 > o->len + k + 1 ? o->cap * 2 : o->len + k + 1;
    char *p = cap > o->cap ? realloc(o->p, cap) : NULL;
    if (!p) {
      o->failed = 1;
      return;
    }
    o->p = p;
    o->cap = cap;
  }
  memcpy(o->p + o->len, s, k);
  o->len += k;
}

/* ---- matches ---- */

/* What matched at a position: `keep` bytes copied as they are, then `len` bytes
 * replaced by the placeholder of `flag`. flag 0 with keep > 0: a span (a date) that
 * is copied whole so that no matcher starts inside it; all 0: nothing. */
typedef struct span_s {
  size_t keep, len;
  unsigned flag;
} span_t;

static const span_t no_match = {0, 0, 0};

static const char *placeholder(unsigned flag)
{
  switch (flag) {
  case SY_REDACT_EMAIL: return "[email]";
  case SY_REDACT_PHONE: return "[phone]";
  case SY_REDACT_CARD: return "[card]";
  default: return "[api_key]";
  }
}

static span_t replace(size_t keep, size_t len, unsigned flag)
{
  span_t s = {keep, len, flag};
  return s;
}

/* ---- 1. keys with known prefixes, 4. generic tokens ---- */

typedef struct key_prefix_s {
  const char *prefix;
  size_t min_body;
  int aws; /* exactly 16 of [A-Z0-9] */
} key_prefix_t;

static const key_prefix_t key_prefixes[] = {
    {"sk-", 16, 0},      {"sk_live_", 16, 0}, {"sk_test_", 16, 0}, {"pk_live_", 16, 0},
    {"rk_live_", 16, 0}, {"ghp_", 16, 0},     {"gho_", 16, 0},     {"github_pat_", 16, 0},
    {"glpat-", 16, 0},   {"xoxb-", 16, 0},    {"xoxp-", 16, 0},    {"xoxa-", 16, 0},
    {"xoxs-", 16, 0},    {"AKIA", 16, 1},     {"AIza", 35, 0},
};

static int aws_body_ok(const unsigned char *b, size_t k)
{
  if (k != 16)
    return 0;
  for (size_t j = 0; j < k; j++)
    if (!is_upper(b[j]) && !is_digit(b[j]))
      return 0;
  return 1;
}

static span_t match_prefixed_key(const unsigned char *t, size_t n, size_t i)
{
  for (size_t p = 0; p < sizeof key_prefixes / sizeof key_prefixes[0]; p++) {
    const key_prefix_t *kp = &key_prefixes[p];
    size_t plen = strlen(kp->prefix);
    if (n - i < plen || memcmp(t + i, kp->prefix, plen) != 0)
      continue;
    size_t body = run_of(t, n, i + plen, is_token);
    size_t end = i + plen + body;
    if (body < kp->min_body || (kp->aws && !aws_body_ok(t + i + plen, body)) ||
        (end < n && t[end] == '@'))
      continue;
    return replace(0, plen + body, SY_REDACT_API_KEY);
  }
  return no_match;
}

static span_t match_bearer(const unsigned char *t, size_t n, size_t i)
{
  static const char word[] = "bearer";
  size_t k = i;
  for (size_t j = 0; j < sizeof word - 1; j++, k++)
    if (k >= n || (t[k] | 0x20) != (unsigned char)word[j])
      return no_match;
  if (k >= n || (t[k] != ' ' && t[k] != '\t'))
    return no_match;
  while (k < n && (t[k] == ' ' || t[k] == '\t'))
    k++;
  size_t len = run_of(t, n, k, is_bearer_char);
  return len >= 16 ? replace(k - i, len, SY_REDACT_API_KEY) : no_match;
}

static span_t match_generic_token(const unsigned char *t, size_t n, size_t i)
{
  size_t k = i;
  int alpha = 0, digit = 0;
  for (; k < n && is_token(t[k]); k++) {
    alpha |= is_alpha(t[k]);
    digit |= is_digit(t[k]);
  }
  if (k - i < 32 || !alpha || !digit || (k < n && t[k] == '@'))
    return no_match;
  return replace(0, k - i, SY_REDACT_API_KEY);
}

/* ---- 2. e-mail ---- */

/* End of the longest valid domain starting at t[k], or 0. */
static size_t domain_end(const unsigned char *t, size_t n, size_t k)
{
  size_t best = 0;
  for (int labels = 1;; labels++) {
    size_t len = run_of(t, n, k, is_label);
    if (len == 0)
      break;
    if (labels >= 2 && len >= 2 && run_of(t, n, k, is_alpha) == len)
      best = k + len;
    k += len;
    if (k + 1 >= n || t[k] != '.' || !is_label(t[k + 1]))
      break;
    k++;
  }
  return best;
}

static span_t match_email(const unsigned char *t, size_t n, size_t i)
{
  size_t local = run_of(t, n, i, is_local);
  size_t at = i + local;
  if (local == 0 || at >= n || t[at] != '@')
    return no_match;
  size_t j = i;
  while (j < at && !is_alnum(t[j]))
    j++;
  size_t end = j < at ? domain_end(t, n, at + 1) : 0;
  return end ? replace(0, end - i, SY_REDACT_EMAIL) : no_match;
}

/* ---- 3. numbers: dates, cards, phones ---- */

#define NUM_MAX_DIGITS 19

typedef struct num_group_s {
  size_t end;           /* just past the group (past its ')' if parenthesised) */
  unsigned char digits; /* 1..19 */
  unsigned char sep;    /* separator before it: ' ', '-', '.', ')' (none after a ')'), 0 first */
  unsigned char paren;
} num_group_t;

typedef struct num_run_s {
  size_t start;
  int plus;
  int ngroups;
  int digits; /* in all groups */
  num_group_t g[NUM_MAX_DIGITS];
} num_run_t;

/* Reads the separator before the next group at t[*k]; 0 if the run ends here. */
static int take_sep(const unsigned char *t, size_t n, size_t *k, int after_paren,
                    unsigned char *sep)
{
  unsigned char c = *k < n ? t[*k] : 0;
  if ((c == ' ' || c == '-' || c == '.') && *k + 1 < n &&
      (is_digit(t[*k + 1]) || t[*k + 1] == '(')) {
    *sep = c;
    (*k)++;
    return 1;
  }
  if (after_paren && is_digit(c)) {
    *sep = ')';
    return 1;
  }
  return 0;
}

/* Reads one group of digits, optionally in parentheses, at t[*k]; 0 if none. */
static int take_group(const unsigned char *t, size_t n, size_t *k, num_group_t *g)
{
  size_t j = *k;
  g->paren = j < n && t[j] == '(';
  j += g->paren;
  size_t d = 0;
  while (j < n && is_digit(t[j]) && d <= NUM_MAX_DIGITS) {
    j++;
    d++;
  }
  if (d == 0 || d > NUM_MAX_DIGITS)
    return 0;
  if (g->paren) {
    if (j >= n || t[j] != ')')
      return 0;
    j++;
  }
  g->digits = (unsigned char)d;
  g->end = j;
  *k = j;
  return 1;
}

static void scan_num_run(const unsigned char *t, size_t n, size_t i, num_run_t *r)
{
  size_t k = i;
  r->start = i;
  r->plus = t[i] == '+';
  r->ngroups = 0;
  r->digits = 0;
  if (r->plus)
    k++;
  while (r->ngroups < NUM_MAX_DIGITS) {
    num_group_t g = {0, 0, 0, 0};
    int after_paren = r->ngroups > 0 && r->g[r->ngroups - 1].paren;
    if (r->ngroups > 0 && !take_sep(t, n, &k, after_paren, &g.sep))
      break;
    if (!take_group(t, n, &k, &g) || r->digits + g.digits > NUM_MAX_DIGITS)
      break;
    r->digits += g.digits;
    r->g[r->ngroups++] = g;
  }
}

/* A number start: see privacy.h, rule 3. */
static int number_start(const unsigned char *t, size_t n, size_t i)
{
  unsigned char c = t[i], next = i + 1 < n ? t[i + 1] : 0;
  if (!is_digit(c) && !(c == '(' && is_digit(next)) &&
      !(c == '+' && (is_digit(next) || next == '(')))
    return 0;
  if (i == 0)
    return 1;
  unsigned char p = t[i - 1];
  if (is_word(p))
    return 0;
  if ((p == '.' || p == ',' || p == '-' || p == '/') && i >= 2 && is_word(t[i - 2]))
    return 0;
  return 1;
}

/* Value of a group of at most 4 digits. */
static int group_value(const unsigned char *t, const num_group_t *g)
{
  int v = 0;
  size_t end = g->end - g->paren;
  for (size_t j = end - g->digits; j < end; j++)
    v = v * 10 + (t[j] - '0');
  return v;
}

static int is_date(const unsigned char *t, const num_run_t *r)
{
  const num_group_t *g = r->g;
  if (r->ngroups < 3 || r->plus || g[0].paren || g[1].paren || g[2].paren ||
      g[1].sep != g[2].sep || (g[1].sep != '-' && g[1].sep != '.'))
    return 0;
  if (g[1].digits != 2 || !((g[0].digits == 4 && g[2].digits == 2) ||
                             (g[0].digits == 2 && g[2].digits == 4)))
    return 0;
  int a = group_value(t, &g[0]), b = group_value(t, &g[1]), c = group_value(t, &g[2]);
  if (g[0].digits == 4) /* YYYY-MM-DD */
    return b >= 1 && b <= 12 && c >= 1 && c <= 31;
  return a >= 1 && a <= 31 && b >= 1 && b <= 31 && (a <= 12 || b <= 12);
}

/* Not followed by a word byte, nor by '.' or ',' and a digit. */
static int end_ok(const unsigned char *t, size_t n, size_t end)
{
  if (end >= n)
    return 1;
  if (is_word(t[end]))
    return 0;
  return !((t[end] == '.' || t[end] == ',') && end + 1 < n && is_digit(t[end + 1]));
}

static int luhn_ok(const unsigned char *t, size_t start, size_t end)
{
  int sum = 0, dbl = 0;
  for (size_t j = end; j > start; j--) {
    if (!is_digit(t[j - 1]))
      continue;
    int d = t[j - 1] - '0';
    if (dbl)
      d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 == 0;
}

/* Groups 0..k-1 have no parentheses and only ' ' or '-' between them. */
static int card_layout(const num_run_t *r, int k)
{
  if (r->plus)
    return 0;
  for (int j = 0; j < k; j++)
    if (r->g[j].paren || (j > 0 && r->g[j].sep != ' ' && r->g[j].sep != '-'))
      return 0;
  return 1;
}

/* End of the longest Luhn-valid card prefix of the run, or 0. */
static size_t card_end(const unsigned char *t, size_t n, const num_run_t *r)
{
  int digits = 0;
  size_t best = 0;
  for (int k = 1; k <= r->ngroups && card_layout(r, k); k++) {
    const num_group_t *g = &r->g[k - 1];
    digits += g->digits;
    if (digits >= 13 && end_ok(t, n, g->end) && luhn_ok(t, r->start, g->end))
      best = g->end;
  }
  return best;
}

/* A Luhn-invalid run that is laid out like a card (see privacy.h, rule 3b). */
static int card_shaped(const num_run_t *r)
{
  if (r->digits < 13 || !card_layout(r, r->ngroups))
    return 0;
  for (int j = 0; j < r->ngroups; j++)
    if (r->g[j].digits < 4)
      return 0;
  return 1;
}

/* A currency sign or code right before t[start] or right after t[end - 1], with at
 * most one space between: the number is an amount, not a phone number. */
static int currency_near(const unsigned char *t, size_t n, size_t start, size_t end)
{
  static const char *const cur[] = {"$", "\xe2\x82\xac", "\xc2\xa3", "\xc2\xa5",
                                    "EUR", "USD", "GBP", "%"};
  size_t ncur = sizeof cur / sizeof cur[0];
  size_t b = start > 0 && t[start - 1] == ' ' ? start - 1 : start;
  size_t a = end < n && t[end] == ' ' ? end + 1 : end;
  for (size_t c = 0; c < ncur; c++) {
    size_t len = strlen(cur[c]);
    if (c + 1 < ncur && b >= len && memcmp(t + b - len, cur[c], len) == 0)
      return 1; /* '%' only counts after the number */
    if (n - a >= len && memcmp(t + a, cur[c], len) == 0)
      return 1;
  }
  return 0;
}

/* Groups 0..k-1, all separated by dots, look like a dotted phone number. */
static int dotted_phone_ok(const unsigned char *t, const num_run_t *r, int k)
{
  int ip = k == 4, thousands = r->g[0].digits <= 3;
  if (k < 3)
    return 0;
  for (int j = 0; j < k; j++) {
    int d = r->g[j].digits, min = j == 0 && r->plus ? 1 : 2, max = j == 0 && r->plus ? 3 : 4;
    if (d < min || d > max)
      return 0;
    ip = ip && d <= 3 && group_value(t, &r->g[j]) <= 255;
    thousands = thousands && (j == 0 || d == 3);
  }
  return !ip && !thousands;
}

static int phone_prefix_ok(const unsigned char *t, size_t n, const num_run_t *r, int k)
{
  int digits = 0, ones = 0, parens = 0, dots_only = 1;
  for (int j = 0; j < k; j++) {
    digits += r->g[j].digits;
    ones += r->g[j].digits == 1;
    parens |= r->g[j].paren;
    if (j > 0 && r->g[j].sep != '.')
      dots_only = 0;
  }
  size_t end = r->g[k - 1].end;
  if (digits < 7 || digits > 15 || ones > 1 || !end_ok(t, n, end))
    return 0;
  if (k == 1 && !r->plus && digits < 10)
    return 0;
  if (k >= 2 && dots_only && !parens && !dotted_phone_ok(t, r, k))
    return 0;
  return !currency_near(t, n, r->start, end);
}

static size_t phone_end(const unsigned char *t, size_t n, const num_run_t *r)
{
  for (int k = r->ngroups; k >= 1; k--) {
    if (k < r->ngroups && r->g[k].sep != ' ')
      continue;
    if (phone_prefix_ok(t, n, r, k))
      return r->g[k - 1].end;
  }
  return 0;
}

static span_t match_number(const unsigned char *t, size_t n, size_t i)
{
  num_run_t r;
  scan_num_run(t, n, i, &r);
  if (r.ngroups == 0)
    return no_match;
  if (is_date(t, &r))
    return replace(r.g[2].end - i, 0, 0);
  size_t end = card_end(t, n, &r);
  if (end)
    return replace(0, end - i, SY_REDACT_CARD);
  if (card_shaped(&r))
    return replace(r.g[r.ngroups - 1].end - i, 0, 0);
  end = phone_end(t, n, &r);
  return end ? replace(0, end - i, SY_REDACT_PHONE) : no_match;
}

/* ---- the scan ---- */

static span_t match_at(const unsigned char *t, size_t n, size_t i)
{
  unsigned char prev = i > 0 ? t[i - 1] : 0;
  int token_start = i == 0 || !is_token(prev);
  span_t m = no_match;
  if (token_start && is_alnum(t[i])) {
    m = match_prefixed_key(t, n, i);
    if (!m.flag)
      m = match_bearer(t, n, i);
  }
  if (!m.flag && (i == 0 || !is_local(prev)) && is_local(t[i]))
    m = match_email(t, n, i);
  if (!m.flag && number_start(t, n, i))
    m = match_number(t, n, i); /* may be a span to copy whole (a date) */
  if (!m.flag && token_start && is_token(t[i])) {
    span_t g = match_generic_token(t, n, i);
    if (g.flag)
      m = g;
  }
  return m;
}

char *sy_scrub(const char *text, size_t n, size_t *outlen, unsigned *flags)
{
  const unsigned char *t = (const unsigned char *)(text ? text : "");
  outbuf_t o = {NULL, 0, 0, 0};
  unsigned found = 0;
  size_t i = 0, lit = 0;
  if ((!text && n > 0) || n > (SIZE_MAX - 16) / 7 * 6)
    return NULL;
  o.cap = n + n / 6 + 16;
  o.p = malloc(o.cap);
  if (!o.p)
    return NULL;
  while (i < n) {
    span_t m = match_at(t, n, i);
    if (m.flag) {
      const char *ph = placeholder(m.flag);
      ob_put(&o, t + lit, i + m.keep - lit);
      ob_put(&o, (const unsigned char *)ph, strlen(ph));
      found |= m.flag;
      i += m.keep + m.len;
      lit = i;
    } else {
      i += m.keep ? m.keep : 1;
    }
  }
  ob_put(&o, t + lit, n - lit);
  if (o.failed) {
    free(o.p);
    return NULL;
  }
  o.p[o.len] = '\0';
  if (outlen)
    *outlen = o.len;
  if (flags)
    *flags |= found;
  return o.p;
}

/* ---- keyed hash ---- */

int sy_privacy_init(void)
{
  return sodium_init() < 0 ? -1 : 0;
}

/* The body hash's key: BLAKE2b-128 of a context string, keyed with k. */
static void derive_body_key(sy_hash_key_t *key)
{
  static const char context[] = "switchyard-input-hash-v1";
  crypto_generichash(key->body, sizeof key->body, (const unsigned char *)context,
                     sizeof context - 1, key->k, sizeof key->k);
}

int sy_hash_key_from_secret(sy_hash_key_t *key, const char *secret)
{
  static const char context[] = "switchyard-id-v1"; /* 16 bytes: a valid BLAKE2b key */
  if (!key || !secret || !*secret || sy_privacy_init() < 0)
    return -1;
  crypto_generichash(key->k, sizeof key->k, (const unsigned char *)secret, strlen(secret),
                     (const unsigned char *)context, sizeof context - 1);
  derive_body_key(key);
  return 0;
}

void sy_hash_key_random(sy_hash_key_t *key)
{
  /* randombytes_buf works (or aborts inside libsodium) even if init failed. */
  (void)sy_privacy_init();
  randombytes_buf(key->k, sizeof key->k);
  derive_body_key(key);
}

void sy_keyed_hash_hex(const sy_hash_key_t *key, const void *data, size_t n,
                       char out[SY_KEYED_HASH_HEX_SIZE])
{
  static const unsigned char empty[1] = {0};
  unsigned char digest[16];
  crypto_generichash(digest, sizeof digest, data ? data : empty, data ? n : 0, key->k,
                     sizeof key->k);
  sodium_bin2hex(out, SY_KEYED_HASH_HEX_SIZE, digest, sizeof digest);
}

void sy_body_hash_hex(const sy_hash_key_t *key, const void *data, size_t n,
                      char out[SY_KEYED_HASH_HEX_SIZE])
{
  static const unsigned char empty[1] = {0};
  unsigned char digest[crypto_shorthash_siphashx24_BYTES];
  crypto_shorthash_siphashx24(digest, data ? data : empty, data ? n : 0, key->body);
  sodium_bin2hex(out, SY_KEYED_HASH_HEX_SIZE, digest, sizeof digest);
}
