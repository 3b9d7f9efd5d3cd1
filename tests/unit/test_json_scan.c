/*
 * test_json_scan.c — the strict JSON scanner under the body rewrite
 * (router/json_scan.h), with jansson as the reference: documents it must refuse
 * and accept (also through sy_rewrite_body), its API (spans, iteration, decoded
 * comparison, quoting, error positions), every proper prefix of a document, a
 * matrix of UTF-8 byte sequences and \u escapes, and a differential test on
 * random and mutated documents that compares the splice rewrite with the old
 * jansson tree rewrite (kept here as the oracle) and the scanner's verdict with
 * jansson's. The rewrite's hand-written cases are in test_rewrite.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "router/json_scan.h"
#include "router/rewrite.h"
#include "tests/unit/check.h"
#include "tests/unit/rewrite_expect.h"

/* ---- the scanner: rejections, its API, agreement with jansson ---- */

/*
 * Validates text with the scanner and with jansson (any top-level value). Where
 * they differ by design, *excluded is set: we accept numbers beyond int64/double
 * (passed through as text) and keys containing \u0000 (valid JSON). A raw NUL
 * byte is never valid JSON, but jansson skips one that directly follows a number
 * or a literal ("[1\0]" passes: its lexer takes the NUL for the end of its
 * look-ahead buffer); *theirs is corrected to a refusal there and *nul_quirk set.
 */
static void validity(const char *text, size_t len, int *ours, int *theirs, int *excluded,
                     int *nul_quirk) {
  json_error_t je;
  json_t *j = json_loadb(text, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
  enum json_error_code code = json_error_code(&je);
  *ours = sy_json_validate(text, len, NULL, NULL) == 0;
  *nul_quirk = j != NULL && memchr(text, '\0', len) != NULL;
  *theirs = j != NULL && !*nul_quirk;
  *excluded =
      j == NULL && (code == json_error_numeric_overflow || code == json_error_null_byte_in_key);
  json_decref(j);
}

static void test_invalid(void) {
  sy_variant_conf_t v = make_variant("m", NULL, NULL);
  static const char *const bad[] = {
      "{\"a\":1,}",
      "{\"a\":[1,]}",
      "{\"a\":[,1]}",
      "{'a':1}",
      "{\"a\":'x'}",
      "{\"a\":NaN}",
      "{\"a\":Infinity}",
      "{\"a\":-Infinity}",
      "{\"a\":\"abc}",
      "{\"a\":\"abc\\\"}",
      "{\"a\":\"\\ud800\"}",
      "{\"a\":\"\\udc00\"}",
      "{\"a\":\"\\ud800\\u0041\"}",
      "{\"a\":\"\\ud800\\\"}",
      "{\"a\":\"\\udbff\\ud800\"}",
      "{\"a\":\"x\x01y\"}",
      "{\"a\":\"tab\there\"}",
      "{\"a\":\"nl\nhere\"}",
      "{\"a\":1}x",
      "{\"a\":1}}",
      "{\"a\":1} 1",
      "{\"a\":\"\xff\"}",
      "{\"a\":\"\xc0\xaf\"}",
      "{\"a\":\"\xe0\x80\xaf\"}",
      "{\"a\":\"\xed\xa0\x80\"}",
      "{\"a\":\"\xf4\x90\x80\x80\"}",
      "{\"a\":\"\xe6\x97\"}",
      "{\"a\":\"\xc3\"}",
      "{\"\xff\":1}",
      "{\"a\":01}",
      "{\"a\":-}",
      "{\"a\":1.}",
      "{\"a\":.5}",
      "{\"a\":+1}",
      "{\"a\":1e}",
      "{\"a\":1e+}",
      "{\"a\":0x1}",
      "{\"a\":- 1}",
      "{\"a\":1 /*c*/}",
      "\xef\xbb\xbf{}",
      "{a:1}",
      "{\"a\" 1}",
      "{\"a\":1 \"b\":2}",
      "{\"a\":[1 2]}",
      "{\"a\":\"\\x\"}",
      "{\"a\":\"\\u12G4\"}",
      "{\"a\":\"\\u12\"}",
      "{\"a\":tru}",
      "{\"a\":nul}",
      "{\"a\":True}",
      "{\"a\":truex}",
      "{\"a\":[}",
      "{\"a\":{]}",
      "{\"a\":[1}",
      "{",
      "}",
      "[",
      "{\"a\"}",
      "{\"a\":}",
      "{,}",
      "{\"a\":1,,\"b\":2}",
      "\f{}",
      "{}\v",
      "{\"a\":\"\\U0041\"}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    expect(&v, bad[i], NULL, "request body is not valid JSON");
    int ours, theirs, excluded, quirk;
    validity(bad[i], strlen(bad[i]), &ours, &theirs, &excluded, &quirk);
    CHECK_MSG(!theirs, "jansson accepts %s", bad[i]);
  }
  /* Valid, if unusual: accepted (and jansson agrees, bar the documented cases). */
  static const char *const good[] = {
      "{\"a\":\"\\\\\"}",
      "{\"a\":\"\\\\\\\\\\\"\"}",
      "{\"a\":-0.0e+0}",
      "{\"a\":\"\\u0000\"}",
      "{\"a\":1E400}",
      "{\"a\":-99999999999999999999}",
      "{\"a\\u0000b\":1}",
      "{\"a\":\"\\uD83D\\uDE00\\u00E9\\u20ac\"}",
      "{\"a\":\"\x7f\xf4\x8f\xbf\xbf\xee\x80\x80\"}",
      "{\"\":{\"\":[[],{},\"\",0,true,false,null]}}",
      "\t\r\n {\"a\":1} \t\r\n",
      "{\"a\":\"/\\/\\b\\f\\n\\r\\t\"}",
      "{\"a\":1e-400}",
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    size_t len = strlen(good[i]);
    char want[256];
    snprintf(want, sizeof want, "%.*s,\"model\":\"m\"}%s", (int)(strrchr(good[i], '}') - good[i]),
             good[i], strrchr(good[i], '}') + 1);
    expect(&v, good[i], want, NULL);
    int ours, theirs, excluded, quirk;
    validity(good[i], len, &ours, &theirs, &excluded, &quirk);
    CHECK_MSG(ours && (theirs || excluded), "%s: ours %d jansson %d", good[i], ours, theirs);
  }
  char err[200];
  char *out = NULL;
  size_t outlen = 0;
  /* jansson skipped a NUL byte right after a number or literal (so the old version
   * accepted this body and dropped the NUL); it is not JSON. */
  CHECK(sy_rewrite_body(&v, "{\"n\":1\0}", 8, &out, &outlen, err, sizeof err) == -1);
  CHECK(sy_rewrite_body(&v, "{\"a\":\"x\x01\"}", 10, &out, &outlen, err, sizeof err) == -1);
  CHECK_MSG(
      strcmp(err, "request body is not valid JSON (at byte 7): control character in string") == 0,
      "%s", err);
  drop_variant(&v);
}

/* The text of span s of buf, for comparisons (static buffer: tests only). */
static const char *span_text(const char *buf, sy_json_span_t s, char *tmp, size_t cap) {
  snprintf(tmp, cap, "%.*s", (int)s.len, buf + s.off);
  return tmp;
}

static void test_scanner_api(void) {
  const char *doc =
      " { \"a\" : 1 , \"b\":[1,{\"c\":\"]\\\\\"}, \"x\\\"]\"],\"d\\\"\":\"x\\\\\",\"e\":-1.5e3}\n";
  sy_json_span_t root, key, val, el;
  sy_json_error_t err;
  char t1[64], t2[64];
  CHECK(sy_json_validate(doc, strlen(doc), &root, &err) == 0);
  CHECK(root.off == 1 && root.len == strlen(doc) - 2);
  CHECK(sy_json_type(doc, root) == SY_JSON_OBJECT);
  static const char *const want[][2] = {{"\"a\"", "1"},
                                        {"\"b\"", "[1,{\"c\":\"]\\\\\"}, \"x\\\"]\"]"},
                                        {"\"d\\\"\"", "\"x\\\\\""},
                                        {"\"e\"", "-1.5e3"}};
  sy_json_iter_t it;
  sy_json_iter_init(&it, doc, root);
  size_t n = 0;
  while (sy_json_next_member(&it, &key, &val)) {
    CHECK_MSG(n < 4 && strcmp(span_text(doc, key, t1, sizeof t1), want[n][0]) == 0 &&
                  strcmp(span_text(doc, val, t2, sizeof t2), want[n][1]) == 0,
              "member %zu: %s = %s", n, t1, t2);
    if (n == 1) {
      sy_json_iter_t ai;
      sy_json_iter_init(&ai, doc, val);
      int k = 0;
      while (sy_json_next_element(&ai, &el))
        k++;
      CHECK(k == 3 && sy_json_type(doc, el) == SY_JSON_STRING);
    }
    n++;
  }
  CHECK(n == 4);
  CHECK(sy_json_next_member(&it, &key, &val) == 0);
  /* Decoded comparison. */
  const char *s = "\"sys\\u0074em\\/\\ud83d\\ude00\\u00e9\"";
  sy_json_span_t sp = {0, strlen(s)};
  CHECK(sy_json_string_eq(s, sp, "system/\xf0\x9f\x98\x80\xc3\xa9"));
  CHECK(!sy_json_string_eq(s, sp, "system/\xf0\x9f\x98\x80"));
  CHECK(!sy_json_string_eq(s, sp, "system/\xf0\x9f\x98\x80\xc3\xa9!"));
  const char *z = "\"a\\u0000\"";
  sy_json_span_t zp = {0, strlen(z)};
  CHECK(!sy_json_string_eq(z, zp, "a"));
  /* Quoting, as jansson writes strings. */
  char q[64];
  size_t ql = sy_json_quote("a\"\\\b\f\n\r\t\x01\x1f/\x7f\xc3\xa9", 14, q);
  CHECK_MSG(ql == 33 &&
                memcmp(q, "\"a\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001F/\x7f\xc3\xa9\"", ql) == 0,
            "%.*s", (int)ql, q);
  CHECK(sy_json_quote("a\xc3", 2, NULL) == SIZE_MAX);
  CHECK(sy_json_quote("\xed\xa0\x80", 3, NULL) == SIZE_MAX);
  CHECK(sy_json_quote("", 0, q) == 2 && memcmp(q, "\"\"", 2) == 0);
  /* Error positions. */
  CHECK(sy_json_validate("[1,2,]", 6, &root, &err) == -1 && err.pos == 5);
  CHECK(sy_json_validate("{} x", 4, &root, &err) == -1 && err.pos == 3);
  CHECK(sy_json_validate("", 0, &root, &err) == -1 && err.pos == 0);
  CHECK(sy_json_validate("\"x\"", 3, &root, NULL) == 0 &&
        sy_json_type("\"x\"", root) == SY_JSON_STRING);
}

/* Every proper prefix of a document is refused, reading inside its exact buffer. */
static void test_prefixes(void) {
  const char *doc = "{\"a\":\"x\\\\\\\"\\u00e9\\ud83d\\ude00\xc3\xa9\xf0\x9f\x98\x80\\\\\",\"b\":"
                    "[1.5e-3,-0,10,true,false,null,{},\"\"],\"c\":{\"d\":[]},\"e\":-1E+2}";
  size_t len = strlen(doc), refused = 0;
  CHECK(sy_json_validate(doc, len, NULL, NULL) == 0);
  for (size_t k = 0; k < len; k++) {
    char *p = malloc(k ? k : 1); /* exact size: ASan sees any read past the end */
    memcpy(p, doc, k);
    refused += sy_json_validate(p, k, NULL, NULL) != 0;
    free(p);
  }
  CHECK_MSG(refused == len, "%zu of %zu prefixes refused", refused, len);
}

/* Counts UTF-8 byte sequences inside a string on which the scanner and jansson disagree. */
static void test_utf8_matrix(void) {
  static const unsigned char tails[] = {0x00, 0x22, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
                                        0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xff};
  size_t tried = 0, differ = 0;
  for (unsigned b1 = 0x80; b1 <= 0xff; b1++) {
    for (unsigned b2 = 0; b2 <= 0xff; b2++) {
      for (size_t t3 = 0; t3 < sizeof tails; t3++) {
        int four = b1 >= 0xf0 && b1 <= 0xf4; /* the 4th byte matters */
        for (size_t t4 = 0; t4 < sizeof tails; t4 += four ? 1 : sizeof tails) {
          char doc[16];
          int k = snprintf(doc, sizeof doc, "{\"a\":\"%c%c%c%c\"}", (char)b1, (char)b2,
                           (char)tails[t3], four ? (char)tails[t4] : 'z');
          int ours, theirs, excluded, quirk;
          validity(doc, (size_t)k, &ours, &theirs, &excluded, &quirk);
          tried++;
          if (ours != theirs && differ++ < 5)
            fprintf(stderr, "utf8 %02x %02x %02x: ours %d jansson %d\n", b1, b2, tails[t3], ours,
                    theirs);
        }
      }
    }
  }
  CHECK_MSG(differ == 0, "%zu of %zu UTF-8 cases differ from jansson", differ, tried);
  /* \u escapes around the surrogate ranges, alone and in pairs. */
  static const char *const cps[] = {"0000", "d7ff", "D800", "dbff", "dc00", "DFFF", "e000", "ffff"};
  differ = 0;
  for (size_t i = 0; i < 8; i++) {
    for (size_t j = 0; j < 9; j++) {
      char doc[40];
      int len = snprintf(doc, sizeof doc, "[\"\\u%s%s%s\"]", cps[i], j < 8 ? "\\u" : "x",
                         j < 8 ? cps[j] : "");
      int ours, theirs, excluded, quirk;
      validity(doc, (size_t)len, &ours, &theirs, &excluded, &quirk);
      differ += ours != theirs;
    }
  }
  CHECK_MSG(differ == 0, "%zu \\u cases differ from jansson", differ);
}

/* ---- differential test: the splice rewrite against the old tree rewrite ---- */

/* The old jansson implementation, kept as the oracle: 0, or -1 where it failed. */
static int oracle_is_system(const json_t *msg) {
  const json_t *role = json_object_get(msg, "role");
  return json_is_string(role) && json_string_length(role) == 6 &&
         memcmp(json_string_value(role), "system", 6) == 0;
}

static int oracle_prompt(json_t *root, const char *text) {
  json_t *messages = json_object_get(root, "messages");
  size_t i;
  json_t *msg;
  if (messages == NULL)
    return 0;
  if (!json_is_array(messages))
    return -1;
  json_array_foreach(messages, i, msg) {
    if (oracle_is_system(msg))
      return json_object_set_new(msg, "content", json_string(text));
  }
  return json_array_insert_new(messages, 0,
                               json_pack("{s:s,s:s}", "role", "system", "content", text));
}

static int oracle_apply(const sy_variant_conf_t *v, json_t *root) {
  const char *key;
  json_t *value;
  if (!json_is_object(root))
    return -1;
  if (v->model != NULL && json_object_set_new(root, "model", json_string(v->model)) != 0)
    return -1;
  if (v->system_prompt != NULL && oracle_prompt(root, v->system_prompt) != 0)
    return -1;
  json_object_foreach(v->body_fields, key, value) {
    if (json_object_set_new(root, key, json_deep_copy(value)) != 0)
      return -1;
  }
  return 0;
}

typedef struct {
  uint64_t s;
} rng_t;

static uint64_t rnd(rng_t *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 2685821657736338717ULL;
}

static unsigned pick(rng_t *r, unsigned n) {
  return (unsigned)(rnd(r) % n);
}

/* A growable text buffer. */
typedef struct {
  char *p;
  size_t n, cap;
} sb_t;

static void sb_add(sb_t *b, const char *s, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = 2 * (b->n + n) + 64;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

static void sb_puts(sb_t *b, const char *s) {
  sb_add(b, s, strlen(s));
}

/* Random JSON documents: keys that matter to the rewrite, escapes, whitespace. */
typedef struct {
  rng_t rng;
  sb_t out;
} gen_t;

enum { GEN_ANY, GEN_TOP, GEN_MSG };

typedef struct {
  const char *text; /* as written in the document */
  const char *name; /* decoded */
} gen_key_t;

static const gen_key_t gen_keys[] = {
    {"model", "model"},
    {"mod\\u0065l", "model"},
    {"messages", "messages"},
    {"\\u006dessages", "messages"},
    {"top_k", "top_k"},
    {"k66", "k66"},
    {"role", "role"},
    {"ro\\u006ce", "role"},
    {"content", "content"},
    {"conte\\u006et", "content"},
    {"name", "name"},
    {"index", "index"},
    {"filter", "filter"},
    {"k3", "k3"},
    {"", ""},
    {"a", "a"},
    {"x\\ny", "x\ny"},
    {"\\u00e9", "\xc3\xa9"},
    {"to\\\"p", "to\"p"},
    {"stream", "stream"},
    {"Model", "Model"},
};

static void gen_ws(gen_t *g) {
  if (pick(&g->rng, 4) != 0)
    return;
  for (unsigned n = 1 + pick(&g->rng, 3); n > 0; n--)
    sb_add(&g->out, &" \t\n\r"[pick(&g->rng, 4)], 1);
}

static void gen_string(gen_t *g) {
  static const char *const pieces[] = {"a",
                                       "hello",
                                       " ",
                                       "/",
                                       "\\n",
                                       "\\\"",
                                       "\\\\",
                                       "\\/",
                                       "\\t",
                                       "\\b",
                                       "\\f",
                                       "\\r",
                                       "\\u00e9",
                                       "\\u0041",
                                       "\\ud83d\\ude00",
                                       "\\u0000",
                                       "\\u001f",
                                       "\xc3\xa9",
                                       "\xe6\x97\xa5",
                                       "\xf0\x9f\x98\x80",
                                       "system",
                                       "\\u0074",
                                       "'",
                                       "\x7f",
                                       "\\uDBFF\\uDFFF",
                                       "]}",
                                       "\\u2028"};
  sb_puts(&g->out, "\"");
  for (unsigned n = pick(&g->rng, 6); n > 0; n--)
    sb_puts(&g->out, pieces[pick(&g->rng, sizeof pieces / sizeof pieces[0])]);
  sb_puts(&g->out, "\"");
}

/* Numbers jansson reads exactly as it would read them back: int64 and plain reals. */
static void gen_number(gen_t *g) {
  static const char *const fixed[] = {"0",
                                      "-0",
                                      "0.7",
                                      "1e-5",
                                      "-2.5E+3",
                                      "3.14159",
                                      "1E2",
                                      "0.0",
                                      "-0.0",
                                      "1e-400",
                                      "9223372036854775807",
                                      "-9223372036854775808",
                                      "123456789.123456789e-20"};
  char buf[64];
  /* Drawn in a fixed order (argument evaluation order is unspecified). */
  unsigned kind = pick(&g->rng, 4), sign = pick(&g->rng, 2), shift = 1 + pick(&g->rng, 63);
  unsigned a = pick(&g->rng, 2001), b = pick(&g->rng, 100000), e = pick(&g->rng, 40);
  uint64_t u = rnd(&g->rng) >> shift; /* <= INT64_MAX */
  switch (kind) {
  case 0: sb_puts(&g->out, fixed[a % (sizeof fixed / sizeof fixed[0])]); return;
  case 1: snprintf(buf, sizeof buf, "%d", (int)a - 1000); break;
  case 2: snprintf(buf, sizeof buf, "%s%llu", sign ? "-" : "", (unsigned long long)u); break;
  default: snprintf(buf, sizeof buf, "%d.%u%s%u", (int)(a % 200) - 100, b, sign ? "e" : "E-", e);
  }
  sb_puts(&g->out, buf);
}

static void gen_object(gen_t *g, int depth, int kind);
static void gen_array(gen_t *g, int depth, int messages);

static void gen_value(gen_t *g, int depth, int no_array) {
  unsigned k = depth >= 5 ? 2 + pick(&g->rng, 4) : pick(&g->rng, 6);
  static const char *const literals[] = {"true", "false", "null"};
  if (k == 1 && no_array)
    k = 0;
  switch (k) {
  case 0: gen_object(g, depth + 1, GEN_ANY); break;
  case 1: gen_array(g, depth + 1, 0); break;
  case 3: gen_number(g); break;
  case 4: sb_puts(&g->out, literals[pick(&g->rng, 3)]); break;
  default: gen_string(g);
  }
}

static void gen_array(gen_t *g, int depth, int messages) {
  sb_puts(&g->out, "[");
  gen_ws(g);
  for (unsigned i = 0, n = pick(&g->rng, 5); i < n; i++) {
    if (i > 0)
      sb_puts(&g->out, ",");
    gen_ws(g);
    if (messages && pick(&g->rng, 4) != 0)
      gen_object(g, depth + 1, GEN_MSG);
    else
      gen_value(g, depth, 0);
    gen_ws(g);
  }
  sb_puts(&g->out, "]");
}

static const gen_key_t *gen_pick_key(gen_t *g, int kind) {
  size_t n = sizeof gen_keys / sizeof gen_keys[0];
  if (kind == GEN_TOP && pick(&g->rng, 2))
    return &gen_keys[pick(&g->rng, 6)];
  if (kind == GEN_MSG && pick(&g->rng, 4))
    return &gen_keys[6 + pick(&g->rng, 5)];
  return &gen_keys[pick(&g->rng, (unsigned)n)];
}

static void gen_member_value(gen_t *g, const gen_key_t *k, int depth, int kind) {
  static const char *const roles[] = {
      "\"system\"", "\"sys\\u0074em\"", "\"user\"",    "\"assistant\"",    "\"System\"", "3",
      "null",       "[\"system\"]",     "\"system \"", "\"system\\u0000\""};
  if (kind == GEN_TOP && strcmp(k->name, "messages") == 0) {
    if (pick(&g->rng, 8) != 0)
      gen_array(g, depth, 1);
    else
      gen_value(g, depth, 1);
  } else if (kind == GEN_MSG && strcmp(k->name, "role") == 0 && pick(&g->rng, 8) != 0) {
    sb_puts(&g->out, roles[pick(&g->rng, sizeof roles / sizeof roles[0])]);
  } else {
    gen_value(g, depth, 0);
  }
}

static void gen_object(gen_t *g, int depth, int kind) {
  sb_puts(&g->out, "{");
  gen_ws(g);
  for (unsigned i = 0, n = pick(&g->rng, kind == GEN_TOP ? 7 : 5); i < n; i++) {
    if (i > 0) {
      sb_puts(&g->out, ",");
      gen_ws(g);
    }
    const gen_key_t *k = gen_pick_key(g, kind);
    sb_puts(&g->out, "\"");
    sb_puts(&g->out, k->text);
    sb_puts(&g->out, "\"");
    gen_ws(g);
    sb_puts(&g->out, ":");
    gen_ws(g);
    gen_member_value(g, k, depth, kind);
    gen_ws(g);
  }
  sb_puts(&g->out, "}");
}

static void gen_doc(gen_t *g) {
  g->out.n = 0;
  gen_ws(g);
  gen_object(g, 1, GEN_TOP);
  gen_ws(g);
}

/* Mutates src into m: deletions, insertions of telling tokens, replacements, cuts. */
static void mutate(rng_t *r, const char *src, size_t n, sb_t *m) {
#define TOKEN(s)                                                                                   \
  { s, sizeof(s) - 1 }
  static const struct {
    const char *s;
    size_t n;
  } tokens[] = {TOKEN(","),
                TOKEN("]"),
                TOKEN("}"),
                TOKEN("["),
                TOKEN("{"),
                TOKEN("\""),
                TOKEN("\\"),
                TOKEN("\\u"),
                TOKEN("\\ud800"),
                TOKEN("\\udc00"),
                TOKEN("0"),
                TOKEN("-"),
                TOKEN("."),
                TOKEN("e"),
                TOKEN("E+"),
                TOKEN("1e999"),
                TOKEN("99999999999999999999"),
                TOKEN("tru"),
                TOKEN("null"),
                TOKEN(":"),
                TOKEN("\x00"),
                TOKEN("\x1f"),
                TOKEN("\x80"),
                TOKEN("\xc3"),
                TOKEN("\xed\xa0\x80"),
                TOKEN("\xf4\x90\x80\x80"),
                TOKEN("'"),
                TOKEN("NaN"),
                TOKEN(" "),
                TOKEN("\t"),
                TOKEN("\\u0000"),
                TOKEN("\"a\":1,"),
                TOKEN("\xc3\xa9"),
                TOKEN("\xe0\x80\x80"),
                TOKEN("\\x"),
                TOKEN("/")};
#undef TOKEN
  m->n = 0;
  sb_add(m, src, n);
  for (unsigned k = 1 + pick(r, 3); k > 0; k--) {
    size_t pos = pick(r, (unsigned)m->n + 1), rest = m->n - pos;
    unsigned t = pick(r, sizeof tokens / sizeof tokens[0]);
    char c = (char)rnd(r);
    switch (pick(r, 5)) {
    case 0: /* delete one byte */
      if (rest > 0) {
        memmove(m->p + pos, m->p + pos + 1, rest - 1);
        m->n--;
      }
      break;
    case 1: /* insert a token */
      sb_add(m, tokens[t].s, tokens[t].n);
      memmove(m->p + pos + tokens[t].n, m->p + pos, rest);
      memcpy(m->p + pos, tokens[t].s, tokens[t].n);
      break;
    case 2: /* replace one byte, by a random one */
      if (rest > 0)
        m->p[pos] = c;
      break;
    case 3: /* cut */ m->n = pos; break;
    default: /* replace one byte by a token's first */
      if (rest > 0 && tokens[t].n > 0)
        m->p[pos] = tokens[t].s[0];
    }
  }
}

/* Top-level "messages" members that are not arrays (by the scanner; 0 if invalid). */
static int nonarray_messages(const char *doc, size_t len) {
  sy_json_span_t root, key, val;
  sy_json_iter_t it;
  int n = 0;
  if (sy_json_validate(doc, len, &root, NULL) != 0 || sy_json_type(doc, root) != SY_JSON_OBJECT)
    return 0;
  sy_json_iter_init(&it, doc, root);
  while (sy_json_next_member(&it, &key, &val))
    n += sy_json_string_eq(doc, key, "messages") && sy_json_type(doc, val) != SY_JSON_ARRAY;
  return n;
}

typedef struct {
  size_t equal;        /* rewritten, and json_equal to the oracle's tree */
  size_t both_refused; /* the oracle and the splice both refused the change */
  size_t dup_messages; /* refused: a non-array "messages" that jansson's last-wins hid */
  size_t excluded;     /* jansson refused a big number or a NUL in a key; we accept */
  size_t nul_quirk;    /* jansson accepted a raw NUL after a number or literal; we refuse */
  size_t mut_valid, mut_invalid;
  size_t mismatch;
} diff_stats_t;

static void mismatch(diff_stats_t *st, const char *what, const char *doc, size_t len) {
  if (st->mismatch++ >= 5)
    return;
  fprintf(stderr, "differential: %s: ", what);
  for (size_t i = 0; i < len && i < 300; i++)
    fprintf(stderr,
            (unsigned char)doc[i] < 0x20 || (unsigned char)doc[i] >= 0x7f ? "\\x%02x" : "%c",
            (unsigned char)doc[i]);
  fputc('\n', stderr);
}

/* Rewrites doc with v and with the oracle, and compares the outcomes. */
static void diff_one(const sy_variant_conf_t *v, const char *doc, size_t len, diff_stats_t *st) {
  json_error_t je;
  json_t *root = json_loadb(doc, len, JSON_ALLOW_NUL, &je);
  char *out = NULL, err[256] = "";
  size_t outlen = 0;
  int rc = sy_rewrite_body(v, doc, len, &out, &outlen, err, sizeof err);
  enum json_error_code code = json_error_code(&je);
  if (root != NULL && memchr(doc, '\0', len) != NULL) { /* see validity() */
    json_decref(root);
    root = NULL;
  }
  if (root == NULL && (code == json_error_numeric_overflow || code == json_error_null_byte_in_key))
    st->excluded++;
  else if (root == NULL && rc == 0)
    mismatch(st, "jansson refused, splice accepted", doc, len);
  else if (root != NULL) {
    int orc = oracle_apply(v, root);
    if (rc != 0 && orc != 0)
      st->both_refused++;
    else if (rc != 0 && strstr(err, "messages must be an array") && nonarray_messages(doc, len))
      st->dup_messages++;
    else if (rc != 0 || orc != 0)
      mismatch(st, rc != 0 ? err : "oracle refused, splice accepted", doc, len);
    else {
      json_t *got = json_loadb(out, outlen, JSON_ALLOW_NUL, NULL);
      if (got != NULL && json_equal(got, root) && sy_json_validate(out, outlen, NULL, NULL) == 0)
        st->equal++;
      else
        mismatch(st, "output differs from the oracle", doc, len);
      json_decref(got);
    }
  }
  json_decref(root);
  free(out);
}

/* Compares the scanner's and jansson's verdicts on a mutated document. */
static void diff_mutant(const sy_variant_conf_t *v, const char *doc, size_t len, diff_stats_t *st) {
  int ours, theirs, excluded, quirk;
  validity(doc, len, &ours, &theirs, &excluded, &quirk);
  st->nul_quirk += (size_t)quirk;
  if (excluded) {
    st->excluded++;
    return;
  }
  if (ours != theirs)
    mismatch(st, ours ? "mutant: only jansson refused" : "mutant: only splice refused", doc, len);
  if (theirs)
    st->mut_valid++;
  else
    st->mut_invalid++;
  diff_one(v, doc, len, st);
}

static void test_differential(void) {
  char many[2048] = "{";
  for (int i = 0; i < 70; i++)
    snprintf(many + strlen(many), sizeof many - strlen(many), "%s\"k%d\":%d", i ? "," : "", i, i);
  strcat(many, "}");
  sy_variant_conf_t vars[] = {
      make_variant("model-b", NULL, NULL),
      make_variant(NULL, "Be brief.", NULL),
      make_variant(NULL, NULL, "{\"top_k\":5,\"index\":\"docs\",\"filter\":{\"lang\":[\"en\"]}}"),
      make_variant("m\xc3\xa9-\"q\"", "R\xc3\xa9ponds \\ \"vite\"\n\t\x01 \xf0\x9f\x98\x80",
                   "{\"top_k\":0.5,\"rerank\":true,\"cutoff\":null}"),
      make_variant(
          "mm", "P",
          "{\"model\":\"fm\",\"messages\":[{\"role\":\"user\"}],\"content\":1,\"role\":2}"),
      make_variant("m", NULL, "{\"to\\\"p\":1,\"\\u00e9\":\"\\u00fc\",\"x\\ny\":[]}"),
      make_variant(NULL, "S", many),
  };
  size_t nv = sizeof vars / sizeof vars[0];
  gen_t g = {{0x9e3779b97f4a7c15ULL}, {NULL, 0, 0}};
  sb_t m = {NULL, 0, 0};
  diff_stats_t st;
  memset(&st, 0, sizeof st);
  size_t docs = 20000, bytes = 0;
  for (size_t i = 0; i < docs; i++) {
    gen_doc(&g);
    bytes += g.out.n;
    diff_one(&vars[pick(&g.rng, (unsigned)nv)], g.out.p, g.out.n, &st);
    diff_one(&vars[pick(&g.rng, (unsigned)nv)], g.out.p, g.out.n, &st);
    mutate(&g.rng, g.out.p, g.out.n, &m);
    diff_mutant(&vars[pick(&g.rng, (unsigned)nv)], m.p, m.n, &st);
  }
  printf("differential: %zu documents (%zu bytes), %zu rewrites equal to the oracle, %zu refused "
         "by both, %zu duplicate-messages refusals; mutants: %zu valid, %zu invalid, %zu "
         "excluded, %zu raw-NUL quirks; %zu mismatches\n",
         docs, bytes, st.equal, st.both_refused, st.dup_messages, st.mut_valid, st.mut_invalid,
         st.excluded, st.nul_quirk, st.mismatch);
  CHECK_MSG(st.mismatch == 0, "%zu mismatches", st.mismatch);
  /* The generator must exercise every branch, not just produce easy documents. */
  CHECK(st.equal > 30000 && st.both_refused > 500 && st.dup_messages > 10);
  CHECK(st.mut_valid > 1000 && st.mut_invalid > 10000 && st.excluded > 50);
  for (size_t i = 0; i < nv; i++)
    drop_variant(&vars[i]);
  free(g.out.p);
  free(m.p);
}

int main(void) {
  test_invalid();
  test_scanner_api();
  test_prefixes();
  test_utf8_matrix();
  test_differential();
  return CHECK_DONE();
}
