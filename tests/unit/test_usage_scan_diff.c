/*
 * test_usage_scan_diff.c — the usage scanner (stats/usage_scan.h) against its frozen
 * reference (tests/unit/usage_scan_ref.h): over bodies generated from a seeded PRNG
 * (JSON-ish documents, SSE-ish streams of them, mutated copies and plain garbage),
 * each fed whole, byte by byte and in random pieces (empty ones included), the two
 * must hold the same results after every piece: prompt_tokens, completion_tokens,
 * id, model (the whole buffers, bytes after the NUL included) and documents.
 *
 * The generator leans towards what the scanner tells apart: the keys "id", "model",
 * "usage", "prompt_tokens" and "completion_tokens" (also spelt with escapes, cut, or
 * too long), "usage" objects at every depth up to past SY_USAGE_MAX_DEPTH, long ids
 * and models with multibyte UTF-8 around the 79-byte cut, \u escapes (surrogates,
 * NUL, bad hex, cut short), numbers with signs, fractions, exponents and overflow,
 * raw newlines and "data:" inside strings, CRLF, comments and cut events.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "stats/usage_scan.h"
#include "tests/unit/check.h"
#include "tests/unit/usage_scan_ref.h"

#define CAP 8192

static uint64_t rng = 0x243F6A8885A308D3ull;

static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static unsigned below(unsigned n) { return (unsigned)(next() % n); }

/* ---- generating --------------------------------------------------------- */

typedef struct {
  char b[CAP];
  size_t n;
} buf_t;

static void put(buf_t *o, const char *s, size_t n) {
  if (o->n >= CAP) return;
  if (n > CAP - o->n) n = CAP - o->n;
  memcpy(o->b + o->n, s, n);
  o->n += n;
}

static void puts_(buf_t *o, const char *s) { put(o, s, strlen(s)); }

static void pick(buf_t *o, const char *const *list, size_t count) {
  puts_(o, list[below((unsigned)count)]);
}
#define PICK(o, list) pick(o, list, sizeof list / sizeof list[0])

static const char *const ws[] = {"", "", "", " ", "  ", "\t", "\n", "\r\n", " \n  "};

static const char *const keys[] = {
    "id", "model", "usage", "prompt_tokens", "completion_tokens", "id", "model", "usage",
    "prompt_tokens", "completion_tokens", "total_tokens", "choices", "object", "data",
    "\\u0069d", "mod\\u0065l", "\\u0075sage", "prompt_\\u0074okens", "usag", "usagee",
    "i\\d", "model\\n", "idd", "", "a_key_that_is_much_longer_than_twenty_four",
    "prompt_tokens_details_xx", "completion_tokens\\u0020", "data:", "\\\"id\\\"",
};

/* Pieces of string contents: plain, multibyte UTF-8, escapes good and bad. */
static const char *const str_parts[] = {
    "a", "chatcmpl-", "xyz", "0123456789", "gpt-4o", "\xc3\xa9", "\xe2\x82\xac",
    "\xf0\x9f\x98\x80", "\xc3", "\xff", "\x80", "\\n", "\\\"", "\\\\", "\\/", "\\t", "\\b",
    "\\f", "\\r", "\\u00e9", "\\u20AC", "\\u0041", "\\u0000", "\\ud83d", "\\ude00", "\\u12",
    "\\u12G4", "\\u", "\\x", "\\", "\n", "\r", "\ndata:", "\ndata: {", "\r\ndata:{\"id\":",
    "{", "}", "[", "]", ":", ",", " ", "usage", "data", "\\u00", "\\uD83D\\uDE00", "\\\n",
};

static const char *const numbers[] = {
    "0", "1", "12", "345", "9223372036854775807", "9223372036854775808",
    "18446744073709551616", "99999999999999999999999", "-1", "-0", "1.5", "1e3", "2E+2",
    "3e-1", "4.0", "+5", "00", "07", "1-2", "12x", "1.", ".5", "-",
};

static const char *const literals[] = {"null", "true", "false", "nul", "tru", "NaN", "x"};

static void gen_string(buf_t *o, int longish) {
  put(o, "\"", 1);
  unsigned n = longish ? 20 + below(90) : below(6);
  for (unsigned i = 0; i < n; i++) {
    if (below(3) == 0) PICK(o, str_parts);
    else put(o, &"abcdefghij"[below(10)], 1);
  }
  if (below(40) != 0) put(o, "\"", 1);
}

static void gen_value(buf_t *o, unsigned depth);

/* An object of counts, as the value of a "usage" member. */
static void gen_usage(buf_t *o, unsigned depth) {
  static const char *const count_keys[] = {"\"prompt_tokens\"", "\"completion_tokens\"",
                                            "\"total_tokens\"", "\"prompt_\\u0074okens\""};
  put(o, "{", 1);
  for (unsigned i = 0, n = 1 + below(4); i < n; i++) {
    if (i) put(o, ",", 1);
    PICK(o, ws);
    PICK(o, count_keys);
    PICK(o, ws);
    put(o, ":", 1);
    PICK(o, ws);
    if (below(5)) PICK(o, numbers);
    else gen_value(o, depth + 1);
    PICK(o, ws);
  }
  if (below(10)) put(o, "}", 1);
}

/* "usage" wrapped in `levels` objects and arrays. */
static void gen_deep_usage(buf_t *o, unsigned levels) {
  char closers[16];
  unsigned n = 0;
  for (; n < levels && n < sizeof closers; n++) {
    int obj = below(2);
    puts_(o, obj ? "{\"a\":" : "[");
    closers[n] = obj ? '}' : ']';
  }
  puts_(o, "{\"id\":\"deep\",\"usage\":");
  gen_usage(o, levels + 1);
  put(o, "}", 1);
  while (n > 0) put(o, &closers[--n], 1);
}

static void gen_object(buf_t *o, unsigned depth) {
  put(o, "{", 1);
  unsigned n = below(depth > 10 ? 2 : 6);
  for (unsigned i = 0; i < n; i++) {
    if (i) puts_(o, below(30) ? "," : "");
    PICK(o, ws);
    if (below(25) == 0) {
      gen_value(o, depth + 1); /* a non-string where a key is due */
      PICK(o, ws);
      put(o, ":", 1);
      gen_value(o, depth + 1);
      continue;
    }
    const char *key = keys[below(sizeof keys / sizeof keys[0])];
    put(o, "\"", 1);
    puts_(o, key);
    put(o, "\"", 1);
    PICK(o, ws);
    if (below(30)) put(o, ":", 1);
    PICK(o, ws);
    if (strstr(key, "sage") && below(3)) gen_usage(o, depth + 1);
    else gen_value(o, depth + 1);
    PICK(o, ws);
  }
  if (below(20)) put(o, "}", 1);
}

static void gen_value(buf_t *o, unsigned depth) {
  if (o->n > CAP / 2) {
    put(o, "1", 1);
    return;
  }
  switch (below(depth > 14 ? 4 : 8)) {
  case 0: gen_string(o, below(3) == 0); break;
  case 1: PICK(o, numbers); break;
  case 2: PICK(o, literals); break;
  case 3: PICK(o, numbers); PICK(o, ws); break;
  case 4: case 5: gen_object(o, depth); break;
  default: {
    put(o, "[", 1);
    unsigned n = below(4);
    for (unsigned i = 0; i < n; i++) {
      if (i) put(o, ",", 1);
      PICK(o, ws);
      gen_value(o, depth + 1);
    }
    if (below(20)) put(o, "]", 1);
  }
  }
}

static const char *const sse_glue[] = {
    "data: ", "data:", "data: ", "data:  ", "event: message\n", ": ping\n", ": keep {x}\r\n",
    "\n", "\r\n", "dat", "data", "ddata: ", " data: ", "data: [DONE]\n\n", "id: 7\n",
};

static void gen_sse(buf_t *o) {
  unsigned events = 1 + below(8);
  for (unsigned e = 0; e < events && o->n < CAP / 2; e++) {
    if (below(3) == 0) PICK(o, sse_glue);
    puts_(o, below(6) ? "data: " : "data:");
    size_t at = o->n;
    gen_object(o, 1);
    if (below(6) == 0) o->n = at + (o->n - at) / 2; /* cut event */
    puts_(o, below(4) ? "\n\n" : "\r\n\r\n");
  }
  if (below(2)) puts_(o, "data: [DONE]\n\n");
}

/* Plain garbage from tokens, or random bytes. */
static void gen_garbage(buf_t *o) {
  static const char *const tokens[] = {
      "{", "}", "[", "]", "\"", ":", ",", "\\", "\\\"", "\\u00", "\\ud83d", " ", "\n", "\r\n",
      "data:", "data: ", "\"id\"", "\"model\"", "\"usage\"", "\"prompt_tokens\"",
      "\"completion_tokens\"", "null", "12", "-", ".", "e", "9999999999999999999", "\xc3",
      "\xff", "a", "\"x\"",
  };
  unsigned n = below(600);
  int raw = below(4) == 0;
  for (unsigned i = 0; i < n; i++) {
    if (raw) {
      char c = (char)(next() & 0xFF);
      put(o, &c, 1);
    } else {
      PICK(o, tokens);
    }
  }
}

/* A few bytes overwritten, dropped, repeated, or a token put in. */
static void mutate(buf_t *o) {
  static const char *const bits[] = {"\"", "\\", "{", "}", "\n", "data:", ":", ",", "9"};
  for (unsigned m = 1 + below(4); m > 0 && o->n > 0; m--) {
    size_t at = next() % o->n;
    switch (below(4)) {
    case 0: o->b[at] = (char)(next() & 0xFF); break;
    case 1: memmove(o->b + at, o->b + at + 1, --o->n - at); break;
    case 2:
      if (o->n < CAP) {
        memmove(o->b + at + 1, o->b + at, o->n - at);
        o->n++;
      }
      break;
    default: {
      const char *t = bits[below(sizeof bits / sizeof bits[0])];
      size_t len = strlen(t);
      if (o->n + len <= CAP) {
        memmove(o->b + at + len, o->b + at, o->n - at);
        memcpy(o->b + at, t, len);
        o->n += len;
      }
    }
    }
  }
}

static void gen(buf_t *o) {
  o->n = 0;
  switch (below(7)) {
  case 6:
    if (below(2)) puts_(o, "data: ");
    gen_deep_usage(o, below(12));
    if (below(3) == 0) mutate(o);
    break;
  case 0: case 1: PICK(o, ws); gen_object(o, 1); PICK(o, ws); break;
  case 2: case 3: gen_sse(o); break;
  case 4: gen_garbage(o); break;
  default:
    if (below(2)) gen_object(o, 1);
    else gen_sse(o);
    mutate(o);
    break;
  }
}

/* ---- comparing ---------------------------------------------------------- */

static int same(const sy_usage_scan_t *a, const ref_usage_scan_t *b) {
  return a->prompt_tokens == b->prompt_tokens && a->completion_tokens == b->completion_tokens &&
         memcmp(a->id, b->id, sizeof a->id) == 0 &&
         memcmp(a->model, b->model, sizeof a->model) == 0 && a->documents == b->documents;
}

static void report(const char *how, const buf_t *o, size_t at) {
  fprintf(stderr, "differs (%s) after byte %zu of %zu: ", how, at, o->n);
  for (size_t i = 0; i < o->n && i < 400; i++) {
    unsigned char c = (unsigned char)o->b[i];
    if (c >= 0x20 && c < 0x7F && c != '\\') fputc(c, stderr);
    else fprintf(stderr, "\\x%02x", c);
  }
  fputc('\n', stderr);
}

/*
 * Feeds o in pieces, cut before each size in sizes[] (cycled; 0 = an empty feed),
 * to both scanners; 1 if they agree after every piece.
 */
static int agree_pieces(const buf_t *o, const size_t *sizes, size_t nsizes, const char *how) {
  sy_usage_scan_t s;
  ref_usage_scan_t r;
  sy_usage_scan_init(&s);
  ref_usage_scan_init(&r);
  if (!same(&s, &r)) return report(how, o, 0), 0;
  for (size_t off = 0, i = 0; off < o->n; i++) {
    size_t k = sizes[i % nsizes];
    if (k > o->n - off) k = o->n - off;
    sy_usage_scan_feed(&s, k ? o->b + off : NULL, k);
    ref_usage_scan_feed(&r, k ? o->b + off : NULL, k);
    off += k;
    if (!same(&s, &r)) return report(how, o, off), 0;
  }
  return 1;
}

/* How many generated bodies reach each result, to show the generator covers them. */
static struct {
  long long counts, ids, long_ids, models, streams;
} seen;

static void tally(const buf_t *o) {
  ref_usage_scan_t r;
  ref_usage_scan_init(&r);
  ref_usage_scan_feed(&r, o->b, o->n);
  seen.counts += r.prompt_tokens >= 0 || r.completion_tokens >= 0;
  seen.ids += r.id[0] != '\0';
  seen.long_ids += strlen(r.id) >= SY_USAGE_STR_MAX - 4 || strlen(r.model) >= SY_USAGE_STR_MAX - 4;
  seen.models += r.model[0] != '\0';
  seen.streams += r.documents > 1;
}

static int agree_all(const buf_t *o) {
  size_t whole = o->n ? o->n : 1, one = 1, sizes[16];
  tally(o);
  if (!agree_pieces(o, &whole, 1, "whole") || !agree_pieces(o, &one, 1, "byte by byte"))
    return 0;
  for (int t = 0; t < 3; t++) {
    size_t n = 1 + below(16), max = 1 + below(t == 0 ? 8 : 300);
    for (size_t i = 0; i < n; i++) sizes[i] = next() % (max + 1);
    sizes[0] += 1; /* never all empty */
    if (!agree_pieces(o, sizes, n, "random pieces")) return 0;
  }
  return 1;
}

/* The documents the benchmark and real backends send, and where their fields begin. */
static void test_generated(void) {
  static buf_t o;
  int bad = 0, i = 0;
  long long bytes = 0;
  for (; i < 20000 && bad < 5; i++) {
    gen(&o);
    bytes += (long long)o.n;
    if (!agree_all(&o)) bad++;
  }
  CHECK_MSG(bad == 0, "%d generated bodies gave results unlike the reference's", bad);
  printf("usage_scan_diff_bodies=%d usage_scan_diff_bytes=%lld\n", i, bytes);
  printf("usage_scan_diff_with_counts=%lld with_id=%lld with_model=%lld with_cut_string=%lld "
         "with_documents_gt_1=%lld\n",
         seen.counts, seen.ids, seen.models, seen.long_ids, seen.streams);
}

/* Long ids and models cut around the 79-byte limit by characters of every width. */
static void test_cuts(void) {
  static const char *const chars[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                      "\\u00e9", "\\u20ac", "\\n", "\\ud83d"};
  static buf_t o;
  int bad = 0;
  for (unsigned pad = 70; pad < 82; pad++)
    for (size_t c = 0; c < sizeof chars / sizeof chars[0]; c++) {
      o.n = 0;
      puts_(&o, "{\"id\":\"");
      for (unsigned i = 0; i < pad; i++) put(&o, "x", 1);
      for (int i = 0; i < 4; i++) puts_(&o, chars[c]);
      puts_(&o, "\",\"model\":\"");
      for (unsigned i = 0; i < pad; i++) puts_(&o, i % 2 ? chars[c] : "m");
      puts_(&o, "\",\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}");
      if (!agree_all(&o)) bad++;
    }
  CHECK_MSG(bad == 0, "%d long ids or models were cut unlike the reference", bad);
}

int main(void) {
  test_cuts();
  test_generated();
  return CHECK_DONE();
}
