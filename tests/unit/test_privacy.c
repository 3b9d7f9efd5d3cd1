/*
 * test_privacy.c — unit tests of stats/privacy.c: scrubbing e-mails, phones, cards and
 * API keys out of free text (and leaving ordinary numbers alone), redaction flag
 * names, the keyed hash (checked against values computed independently with Python's
 * hashlib.blake2b), and a seeded random-input run of the scrubber.
 */
#include "stats/privacy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"

/* Scrubs in[0..n) and compares with want[0..wn) and the flags it set. */
static int scrub_mem_is(const char *in, size_t n, const char *want, size_t wn,
                        unsigned want_flags)
{
  size_t len = (size_t)-1;
  unsigned fl = 0;
  char *out = sy_scrub(in, n, &len, &fl);
  int ok = out && len == wn && memcmp(out, want, wn) == 0 && out[len] == '\0' &&
           fl == want_flags;
  if (!ok)
    fprintf(stderr, "  scrub(\"%.*s\") = \"%.*s\" flags %u; want \"%.*s\" flags %u\n", (int)n,
            in, out ? (int)len : 6, out ? out : "(null)", fl, (int)wn, want, want_flags);
  free(out);
  return ok;
}

static int scrub_is(const char *in, const char *want, unsigned want_flags)
{
  return scrub_mem_is(in, strlen(in), want, strlen(want), want_flags);
}

#define SCRUB(in, want, fl) CHECK_MSG(scrub_is(in, want, fl), "%s", in)
#define KEEP(in) CHECK_MSG(scrub_is(in, in, 0), "%s", in)

static void test_email(void)
{
  const unsigned E = SY_REDACT_EMAIL;
  SCRUB("a@example.com", "[email]", E);
  SCRUB("mail me at a.b+c@example.co.uk.", "mail me at [email].", E);
  SCRUB("(john_doe@mail.example.org)", "([email])", E);
  SCRUB("<x@y.io>, Z.Last%tag@sub-domain.example.com; bye", "<[email]>, [email]; bye", E);
  SCRUB("mailto:a-b@c.de?", "mailto:[email]?", E);
  SCRUB("\xc3\xa9t\xc3\xa9 a@b.cd \xe2\x9c\x93", "\xc3\xa9t\xc3\xa9 [email] \xe2\x9c\x93", E);
  SCRUB("a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7@example.com", "[email]", E);
  SCRUB("5551234567@txt.example.net", "[email]", E);
  SCRUB("x@example.com.123", "[email].123", E);
  KEEP("foo@bar");
  KEEP("foo@bar.c");
  KEEP("@example.com");
  KEEP("user@.com");
  KEEP("user@example.");
  KEEP("...@example.com");
  KEEP("me @ example.com");
  KEEP("a@b.c0m");
}

static void test_phone(void)
{
  const unsigned P = SY_REDACT_PHONE;
  SCRUB("+1 (415) 555-0100", "[phone]", P);
  SCRUB("call 020 7946 0958 now", "call [phone] now", P);
  SCRUB("+44 20 7946 0958", "[phone]", P);
  SCRUB("ring (415)555-0100.", "ring [phone].", P);
  SCRUB("415.555.0100", "[phone]", P);
  SCRUB("tel:+14155550100", "tel:[phone]", P);
  SCRUB("4155550100", "[phone]", P);
  SCRUB("555-0100, thanks", "[phone], thanks", P);
  SCRUB("+33 1 23 45 67 89", "[phone]", P);
  SCRUB("+1-800-555-0199", "[phone]", P);
  SCRUB("on 2024-01-15 555 0100", "on 2024-01-15 [phone]", P);
  SCRUB("+44 20 7946 0958 12345", "[phone] 12345", P); /* 17 digits: longest prefix */
  SCRUB("020 7946 0958 2024 2025", "[phone] 2025", P);      /* 15 digits, then 4 */
  KEEP("2024-01-15");
  KEEP("on 2024-01-15 10:30");
  KEEP("15.01.2024 and 01-15-2024");
  KEEP("2024.01.15");
  KEEP("3 days");
  KEEP("v1.2.3");
  KEEP("version 1.2.3");
  KEEP("took 1500 ms");
  KEEP("took 1500000 ms");
  KEEP("1500000ms");
  KEEP("42");
  KEEP("12 34");
  KEEP("1 2 3 4 5 6 7 8");
  KEEP("$1,299.99 or $1299.99");
  KEEP("$1234567");
  KEEP("1 234 567 \xe2\x82\xac");
  KEEP("\xe2\x82\xac""1.500.000");
  KEEP("12.345.678 people");
  KEEP("1234567.89");
  KEEP("99.9999999%");
  KEEP("10.20.30.40");
  KEEP("192.168.10.100");
  KEEP("build 10.0.19045.1234");
  KEEP("ISBN 978-3-16-148410-0");
  KEEP("ref-1234567");
  KEEP("abc4155550100");
  KEEP("4155550100abc");
  KEEP("1-800-FLOWERS");
}

static void test_card(void)
{
  const unsigned C = SY_REDACT_CARD;
  SCRUB("4111 1111 1111 1111", "[card]", C);
  SCRUB("pay with 4111-1111-1111-1111.", "pay with [card].", C);
  SCRUB("4111111111111111", "[card]", C);
  SCRUB("amex 3782 822463 10005 ok", "amex [card] ok", C);
  SCRUB("5555555555554444 and 4111 1111 1111 1111 2024", "[card] and [card] 2024", C);
  KEEP("card 4111 1111 1111 1112 ok");
  KEEP("4111111111111112");
  KEEP("order 1234567890123"); /* 13 digits, Luhn-invalid: card-shaped, not a phone */
  SCRUB("order 1234567890128", "order [card]", C);
  /* Luhn-valid, but a leading '+' makes it a phone number. */
  SCRUB("+1234567890128", "[phone]", SY_REDACT_PHONE);
  /* Luhn-invalid 4-4-4-3 has a short group, so it is not card-shaped: a phone. */
  SCRUB("4111 1111 1111 111", "[phone]", SY_REDACT_PHONE);
}

static void test_api_key(void)
{
  const unsigned K = SY_REDACT_API_KEY;
  SCRUB("key sk-proj-AbCdEf0123456789GhIjKl_mn-op", "key [api_key]", K);
  SCRUB("sk_live_51HxYzAbCdEfGhIjKlMn", "[api_key]", K);
  SCRUB("token: ghp_abcdefghijklmnopqrstuvwxyz0123456789!", "token: [api_key]!", K);
  SCRUB("gho_16charsxxxxxxxxx", "[api_key]", K);
  SCRUB("AKIAIOSFODNN7EXAMPLE", "[api_key]", K);
  SCRUB("id=AKIAIOSFODNN7EXAMPLE,", "id=[api_key],", K);
  SCRUB("AIzaSyA-1234567890abcdefghijklmnopqrstu", "[api_key]", K);
  SCRUB("xoxb-1234567890-abcdefghij", "[api_key]", K);
  SCRUB("glpat-abcdefghij0123456789", "[api_key]", K);
  SCRUB("github_pat_11ABCDEFG0123456789_abcdefghij", "[api_key]", K);
  SCRUB("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_abc+/=",
        "Authorization: Bearer [api_key]", K);
  SCRUB("bearer\tabcdefghijklmnop", "bearer\t[api_key]", K);
  SCRUB("token=Zx9fK2mQ7pL4vB8nR1tY6wE3sA5dG0hJ", "token=[api_key]", K);
  SCRUB("id 550e8400-e29b-41d4-a716-446655440000.", "id [api_key].", K);
  SCRUB("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx1", "[api_key]", K); /* 32 */
  KEEP("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx1");                   /* 31 */
  KEEP("sk-short");
  KEEP("task-abcdefghijklmnopqrstu");
  KEEP("mask_live_abcdefghijklmnopqrstu");
  KEEP("AKIAIOSFODNN7EXAMPL");
  KEEP("AKIAIOSFODNN7EXAMPLEX");
  KEEP("AKIAiosfodnn7example");
  KEEP("a Bearer token");
  KEEP("Bearer abcdef");
  KEEP("supercalifragilisticexpialidocious_and_more_letters");
}

static void test_flags(void)
{
  const char *in = "a@b.com, +1 415 555 0100, 4111111111111111, sk-abcdefghijklmnop1234";
  size_t len = 0;
  unsigned fl = SY_REDACT_COMMENT; /* set before: must be kept */
  char *out = sy_scrub(in, strlen(in), &len, &fl);
  CHECK(out && strcmp(out, "[email], [phone], [card], [api_key]") == 0);
  CHECK(len == strlen("[email], [phone], [card], [api_key]"));
  CHECK(fl == (SY_REDACT_COMMENT | SY_REDACT_EMAIL | SY_REDACT_PHONE | SY_REDACT_CARD |
               SY_REDACT_API_KEY));
  free(out);
  out = sy_scrub(in, strlen(in), NULL, NULL); /* both out-parameters optional */
  CHECK(out && strlen(out) == len);
  free(out);
}

static void test_edges(void)
{
  size_t len = 99;
  unsigned fl = 0;
  char *out = sy_scrub("", 0, &len, &fl);
  CHECK(out && out[0] == '\0' && len == 0 && fl == 0);
  free(out);
  out = sy_scrub(NULL, 0, &len, &fl);
  CHECK(out && out[0] == '\0' && len == 0 && fl == 0);
  free(out);
  CHECK(sy_scrub(NULL, 3, &len, &fl) == NULL);

  static const char nul_in[] = "a\0b@x.com\0+1 415 555 0100\0";
  static const char nul_want[] = "a\0[email]\0[phone]\0";
  CHECK(scrub_mem_is(nul_in, sizeof nul_in - 1, nul_want, sizeof nul_want - 1,
                     SY_REDACT_EMAIL | SY_REDACT_PHONE));
  static const char bad_utf8[] = "\xff\xfe a@b.cd \xc3 \x80\x80 4111111111111111\xc3";
  CHECK(scrub_mem_is(bad_utf8, sizeof bad_utf8 - 1, "\xff\xfe [email] \xc3 \x80\x80 [card]\xc3",
                     strlen("\xff\xfe [email] \xc3 \x80\x80 [card]\xc3"),
                     SY_REDACT_EMAIL | SY_REDACT_CARD));
  /* Matches at the very end of the input, cut mid-way. */
  KEEP("a@b.");
  KEEP("+1 (415");
  KEEP("Bearer");
  KEEP("call 555-");
  KEEP("x sk-");
}

static void test_redaction_json(void)
{
  char buf[SY_REDACTION_JSON_MAX];
  CHECK(sy_redaction_json(0, buf, sizeof buf) == 2 && strcmp(buf, "[]") == 0);
  CHECK(sy_redaction_json(SY_REDACT_EMAIL | SY_REDACT_PHONE, buf, sizeof buf) == 17 &&
        strcmp(buf, "[\"email\",\"phone\"]") == 0);
  const char *all = "[\"email\",\"phone\",\"api_key\",\"comment\",\"card\"]";
  unsigned every = SY_REDACT_EMAIL | SY_REDACT_PHONE | SY_REDACT_API_KEY | SY_REDACT_COMMENT |
                   SY_REDACT_CARD;
  CHECK(sy_redaction_json(every | 0x100u, buf, sizeof buf) == (int)strlen(all) &&
        strcmp(buf, all) == 0);
  CHECK(sy_redaction_json(SY_REDACT_CARD, buf, sizeof buf) == 8 &&
        strcmp(buf, "[\"card\"]") == 0);
  CHECK(sy_redaction_json(SY_REDACT_CARD, buf, 9) == 8);  /* exact fit */
  CHECK(sy_redaction_json(SY_REDACT_CARD, buf, 8) == -1); /* no room for the NUL */
  CHECK(sy_redaction_json(0, buf, 2) == -1);
  CHECK(sy_redaction_json(0, buf, 0) == -1);
  CHECK(sy_redaction_json(0, NULL, 10) == -1);
  CHECK(strcmp(sy_redaction_name(SY_REDACT_API_KEY), "api_key") == 0);
  CHECK(strcmp(sy_redaction_name(SY_REDACT_COMMENT), "comment") == 0);
  CHECK(sy_redaction_name(0) == NULL);
  CHECK(sy_redaction_name(SY_REDACT_EMAIL | SY_REDACT_PHONE) == NULL);
}

static int is_lower_hex32(const char *s)
{
  if (strlen(s) != 32)
    return 0;
  for (size_t i = 0; i < 32; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

/* The body hash: SipHash-2-4-128 under key->body, derived from key->k. */
static void test_body_hash(void)
{
  sy_hash_key_t k1, k3, kv;
  char a[SY_KEYED_HASH_HEX_SIZE], b[SY_KEYED_HASH_HEX_SIZE];
  CHECK(sy_hash_key_from_secret(&k1, "correct horse battery staple") == 0);
  CHECK(sy_hash_key_from_secret(&k3, "correct horse battery stapler") == 0);
  CHECK(memcmp(k1.body, k3.body, sizeof k1.body) != 0);
  sy_body_hash_hex(&k1, "{\"model\":\"x\"}", 13, a);
  sy_keyed_hash_hex(&k1, "{\"model\":\"x\"}", 13, b);
  CHECK(is_lower_hex32(a) && strcmp(a, b) != 0); /* not the ids' BLAKE2b */
  sy_body_hash_hex(&k3, "{\"model\":\"x\"}", 13, b);
  CHECK(strcmp(a, b) != 0); /* another key, another hash */
  sy_body_hash_hex(&k1, "{\"model\":\"y\"}", 13, b);
  CHECK(strcmp(a, b) != 0);
  /* SipHash-2-4-128's reference vector: key 00..0f, empty message */
  for (int i = 0; i < 16; i++)
    kv.body[i] = (unsigned char)i;
  sy_body_hash_hex(&kv, NULL, 0, a);
  CHECK_MSG(strcmp(a, "a3817f04ba25a8e66df67214c7550293") == 0, "siphash-2-4-128('') = %s", a);
}

static void test_keyed_hash(void)
{
  sy_hash_key_t k1, k2, k3, kr;
  char a[SY_KEYED_HASH_HEX_SIZE], b[SY_KEYED_HASH_HEX_SIZE];
  CHECK(sy_privacy_init() == 0);
  CHECK(sy_hash_key_from_secret(&k1, "correct horse battery staple") == 0);
  CHECK(sy_hash_key_from_secret(&k2, "correct horse battery staple") == 0);
  CHECK(sy_hash_key_from_secret(&k3, "correct horse battery stapler") == 0);
  CHECK(memcmp(k1.k, k2.k, sizeof k1.k) == 0);
  CHECK(memcmp(k1.k, k3.k, sizeof k1.k) != 0);
  CHECK(sy_hash_key_from_secret(&kr, "") == -1);
  CHECK(sy_hash_key_from_secret(&kr, NULL) == -1);

  /* Known answers, from Python: k = blake2b(secret, key=b"switchyard-id-v1",
   * digest_size=32); blake2b(data, key=k, digest_size=16).hexdigest(). */
  static const unsigned char k1_want[32] = {
      0x0c, 0x0d, 0x5e, 0xdb, 0x37, 0xd3, 0x36, 0x45, 0x46, 0x8f, 0x3d, 0x86, 0x80, 0xa6, 0x9a, 0x63,
      0x03, 0x0d, 0xac, 0x0d, 0xba, 0x06, 0x5c, 0x14, 0xb4, 0xd5, 0x72, 0x52, 0xd2, 0xf1, 0xf9, 0x42};
  CHECK(memcmp(k1.k, k1_want, 32) == 0);
  sy_keyed_hash_hex(&k1, "user-42", 7, a);
  CHECK(strcmp(a, "dcbc2d400f1d19537f8ee0a057191fbd") == 0);
  sy_keyed_hash_hex(&k1, NULL, 0, a);
  CHECK(strcmp(a, "4d437ddd5de8a1c4367c1729e3af2c96") == 0);
  sy_keyed_hash_hex(&k1, "", 0, b);
  CHECK(strcmp(a, b) == 0);

  sy_keyed_hash_hex(&k1, "user-42", 7, a);
  sy_keyed_hash_hex(&k2, "user-42", 7, b);
  CHECK(strcmp(a, b) == 0 && is_lower_hex32(a));
  sy_keyed_hash_hex(&k3, "user-42", 7, b);
  CHECK(strcmp(a, b) != 0 && is_lower_hex32(b));
  sy_keyed_hash_hex(&k1, "user-43", 7, b);
  CHECK(strcmp(a, b) != 0);
  sy_keyed_hash_hex(&k1, "a\0b", 3, a); /* binary data: the NUL counts */
  sy_keyed_hash_hex(&k1, "a\0c", 3, b);
  CHECK(strcmp(a, b) != 0);

  sy_hash_key_random(&kr);
  sy_hash_key_random(&k2);
  CHECK(memcmp(kr.k, k2.k, sizeof kr.k) != 0);
  sy_keyed_hash_hex(&kr, "user-42", 7, a);
  sy_keyed_hash_hex(&k1, "user-42", 7, b);
  CHECK(is_lower_hex32(a) && strcmp(a, b) != 0);
}

static uint64_t next_rand(uint64_t *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Random bytes biased towards what the matchers look at, with pieces of real matches
 * planted now and then (and cut off when they run past the end). */
static void fill_random(uint64_t *seed, char *buf, size_t n, int allow_nul)
{
  static const char alphabet[] = "0123456789 -.+()@_abcxyzAKIsk:$/,%\t";
  static const char *const plant[] = {"4111 1111 1111 1111", "sk-abcdefghijklmnop12",
                                      "AKIAIOSFODNN7EXAMPLE", "a.b@example.com",
                                      "Bearer abcdefghijklmnop1", "2024-01-15"};
  for (size_t i = 0; i < n; i++) {
    uint64_t r = next_rand(seed);
    if ((r & 0xff) < 4) {
      const char *p = plant[(r >> 8) % (sizeof plant / sizeof plant[0])];
      for (; *p && i < n; p++)
        buf[i++] = *p;
      i--;
      continue;
    }
    char c = (r & 3) ? alphabet[(r >> 8) % (sizeof alphabet - 1)] : (char)(r >> 16);
    if (allow_nul && (r >> 24) % 32 == 0)
      c = '\0';
    buf[i] = (!allow_nul && c == '\0') ? 'q' : c;
  }
}

static void test_fuzz(void)
{
  uint64_t seed = 0x5eed5eedULL;
  char buf[256];
  int bad_len = 0, bad_copy = 0, bad_flags = 0, bad_bound = 0, nulls = 0;
  unsigned seen = 0;
  for (int iter = 0; iter < 20000; iter++) {
    size_t n = next_rand(&seed) % sizeof buf;
    int allow_nul = iter % 4 == 0;
    fill_random(&seed, buf, n, allow_nul);
    size_t len = (size_t)-1;
    unsigned fl = 0;
    char *out = sy_scrub(buf, n, &len, &fl);
    if (!out) {
      bad_len++;
      continue;
    }
    if (out[len] != '\0' || (!allow_nul && strlen(out) != len))
      bad_len++;
    if (fl == 0 && (len != n || memcmp(out, buf, n) != 0))
      bad_copy++; /* nothing replaced: must be an exact copy */
    if (fl != 0 && len == n && memcmp(out, buf, n) == 0)
      bad_flags++;
    if (fl & ~(unsigned)(SY_REDACT_EMAIL | SY_REDACT_PHONE | SY_REDACT_API_KEY | SY_REDACT_CARD))
      bad_flags++;
    if (len > n + n / 6)
      bad_bound++;
    seen |= fl;
    nulls += allow_nul && memchr(buf, 0, n) != NULL;
    free(out);
  }
  CHECK_MSG(bad_len == 0, "%d outputs with a wrong length or terminator", bad_len);
  CHECK_MSG(bad_copy == 0, "%d outputs changed without a flag", bad_copy);
  CHECK_MSG(bad_flags == 0, "%d outputs with wrong flags", bad_flags);
  CHECK_MSG(bad_bound == 0, "%d outputs longer than n + n/6", bad_bound);
  CHECK(nulls > 1000); /* the run did include inputs with NUL bytes */
  /* ... and exercised every matcher */
  CHECK_MSG(seen == (SY_REDACT_EMAIL | SY_REDACT_PHONE | SY_REDACT_API_KEY | SY_REDACT_CARD),
            "flags seen: %#x", seen);
}

int main(void)
{
  test_email();
  test_phone();
  test_card();
  test_api_key();
  test_flags();
  test_edges();
  test_redaction_json();
  test_keyed_hash();
  test_body_hash();
  test_fuzz();
  return CHECK_DONE();
}
