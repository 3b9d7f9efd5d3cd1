/*
 * usage_scan.c — the incremental usage/id/model scanner; see usage_scan.h.
 *
 * One pass, defined as one switch per byte on the lexical mode. The tokenizer keeps, per
 * nesting level up to SY_USAGE_MAX_DEPTH, whether the level is an object, whether
 * that object is the value of a "usage" member, and the class of its current key
 * (only the handful of keys we care about are told apart). For the current level
 * alone it keeps where it is (expecting a key, a colon, a value, or past a value):
 * when a nested container closes, the parent is always past a value, so a stack of
 * positions is not needed. String bytes go to a "sink": the key buffer, the id or
 * model result, or nowhere.
 *
 * That per-byte machine (step) is the definition; sy_usage_scan_feed runs it only
 * where it must (at line starts, in escapes that are decoded, in usage numbers) and
 * otherwise takes fast paths that do the same in bulk: outside strings a byte-class
 * table that passes over bytes which cannot change the state, inside strings a
 * search (16 bytes at a time with SSE2) for the next quote, backslash or line end,
 * and a key that arrives whole is classified where it lies, without being copied.
 * tests/unit/test_usage_scan_diff.c holds them to the per-byte machine's results.
 */
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "stats/usage_scan.h"

enum { M_TEXT, M_STR, M_ESC, M_UHEX, M_NUM };         /* lexical modes */
enum { SINK_NONE, SINK_KEY, SINK_ID, SINK_MODEL };    /* string destinations */
enum { P_KEY, P_COLON, P_VALUE, P_AFTER };            /* place in a container */
enum { K_OTHER, K_ID, K_MODEL, K_USAGE, K_PROMPT, K_COMPLETION }; /* key classes */
enum { L_OBJ = 1, L_USAGE = 2 };                      /* kind[] bits */
enum { F_ID = 1, F_MODEL = 2, F_ID_FULL = 4, F_MODEL_FULL = 8 }; /* flags bits */

/* SSE field that starts a document; `line` counts matched bytes, LINE_OFF = no match. */
#define DATA_FIELD "data:"
#define LINE_OFF 5

void sy_usage_scan_init(sy_usage_scan_t *s) {
  memset(s, 0, sizeof *s);
  s->mode = M_TEXT;
  s->sink = SINK_NONE;
  s->line = 0; /* the start of the body is a line start */
  s->prompt_tokens = -1;
  s->completion_tokens = -1;
}

/* ---- nesting ------------------------------------------------------------ */

/* kind[] of the current level; 0 (an array, as far as we care) outside 1..MAX. */
static inline unsigned cur_kind(const sy_usage_scan_t *s) {
  return s->depth - 1u < SY_USAGE_MAX_DEPTH ? s->kind[s->depth - 1] : 0;
}

static inline unsigned cur_key(const sy_usage_scan_t *s) {
  return s->depth - 1u < SY_USAGE_MAX_DEPTH ? s->key[s->depth - 1] : K_OTHER;
}

static void push(sy_usage_scan_t *s, unsigned kind) {
  if (s->depth < SY_USAGE_MAX_DEPTH) {
    s->kind[s->depth] = (uint8_t)kind;
    s->key[s->depth] = K_OTHER;
  }
  if (s->depth < UINT32_MAX) s->depth++;
}

/* An object that is the value of a "usage" member is marked as a usage object. */
static void open_object(sy_usage_scan_t *s) {
  unsigned kind = L_OBJ;
  if (s->depth == 0)
    s->documents++;
  if (s->pos == P_VALUE && (cur_kind(s) & L_OBJ) && cur_key(s) == K_USAGE) kind |= L_USAGE;
  push(s, kind);
  s->pos = P_KEY;
}

/* ---- string bytes ------------------------------------------------------- */

/* Drops a UTF-8 sequence left incomplete at the end of buf[0, *len). */
static void trim_partial_utf8(char *buf, uint8_t *len) {
  for (unsigned k = 1; k <= 3 && k <= *len; k++) {
    unsigned char b = (unsigned char)buf[*len - k];
    if (b < 0x80) return;
    if (b >= 0xC0) {
      unsigned need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
      if (need > k) *len = (uint8_t)(*len - k);
      buf[*len] = '\0';
      return;
    }
  }
}

/*
 * Sends n decoded bytes to the current sink, at once or byte by byte alike: a key
 * that overflows is "too long"; a result is filled to its last byte, then marked
 * full and cut back to a whole UTF-8 character.
 */
static void emit(sy_usage_scan_t *s, const unsigned char *b, size_t n) {
  if (s->sink == SINK_NONE) return;
  if (s->sink == SINK_KEY) {
    if (s->klen + n <= SY_USAGE_KEY_MAX) {
      memcpy(s->kbuf + s->klen, b, n);
      s->klen = (uint8_t)(s->klen + n);
    } else {
      s->klen = SY_USAGE_KEY_MAX + 1;
    }
    return;
  }
  bool id = s->sink == SINK_ID;
  unsigned full = id ? F_ID_FULL : F_MODEL_FULL;
  char *buf = id ? s->id : s->model;
  uint8_t *len = id ? &s->id_len : &s->model_len;
  if (s->flags & full) return;
  size_t room = SY_USAGE_STR_MAX - 1 - *len, take = n < room ? n : room;
  memcpy(buf + *len, b, take);
  *len = (uint8_t)(*len + take);
  buf[*len] = '\0';
  if (take < n) {
    s->flags |= full;
    trim_partial_utf8(buf, len);
  }
}

/* The class of the key k[0, n); a key longer than SY_USAGE_KEY_MAX is K_OTHER. */
static inline unsigned classify(const char *k, size_t n) {
  switch (n) {
  case 2: return memcmp(k, "id", 2) == 0 ? K_ID : K_OTHER;
  case 5:
    if (memcmp(k, "model", 5) == 0) return K_MODEL;
    return memcmp(k, "usage", 5) == 0 ? K_USAGE : K_OTHER;
  case 13: return memcmp(k, "prompt_tokens", 13) == 0 ? K_PROMPT : K_OTHER;
  case 17: return memcmp(k, "completion_tokens", 17) == 0 ? K_COMPLETION : K_OTHER;
  default: return K_OTHER;
  }
}

/*
 * A string starts. In an object where a key is due it is a key; as the value of a
 * top-level "id" or "model" member not yet taken, its bytes go to the result.
 */
static inline void open_string(sy_usage_scan_t *s) {
  unsigned kind = cur_kind(s);
  s->mode = M_STR;
  s->sink = SINK_NONE;
  if ((kind & L_OBJ) && s->pos == P_KEY) {
    s->sink = SINK_KEY;
    s->klen = 0;
    s->pos = P_COLON;
    return;
  }
  if (s->pos == P_VALUE && s->depth == 1 && (kind & L_OBJ)) {
    if (s->key[0] == K_ID && !(s->flags & F_ID)) {
      s->flags |= F_ID;
      s->sink = SINK_ID;
    } else if (s->key[0] == K_MODEL && !(s->flags & F_MODEL)) {
      s->flags |= F_MODEL;
      s->sink = SINK_MODEL;
    }
  }
  s->pos = P_AFTER;
}

static void close_string(sy_usage_scan_t *s) {
  if (s->sink == SINK_KEY && (cur_kind(s) & L_OBJ))
    s->key[s->depth - 1] = (uint8_t)classify(s->kbuf, s->klen);
  s->sink = SINK_NONE;
  s->mode = M_TEXT;
}

static void str_byte(sy_usage_scan_t *s, unsigned char c) {
  if (c == '"') {
    close_string(s);
  } else if (c == '\\') {
    s->mode = M_ESC;
  } else {
    emit(s, &c, 1);
  }
}

static void esc_byte(sy_usage_scan_t *s, unsigned char c) {
  unsigned char out = c;
  s->mode = M_STR;
  switch (c) {
  case 'u': s->mode = M_UHEX; s->hex_n = 0; s->cp = 0; return;
  case 'n': out = '\n'; break;
  case 't': out = '\t'; break;
  case 'r': out = '\r'; break;
  case 'b': out = '\b'; break;
  case 'f': out = '\f'; break;
  default: break; /* \" \\ \/ and anything else stand for themselves */
  }
  emit(s, &out, 1);
}

/* Emits a \u code point as UTF-8; NUL and lone surrogates become '?'. */
static void emit_cp(sy_usage_scan_t *s, uint32_t cp) {
  unsigned char u[3];
  if (cp == 0 || (cp >= 0xD800 && cp < 0xE000)) {
    u[0] = '?';
    emit(s, u, 1);
  } else if (cp < 0x80) {
    u[0] = (unsigned char)cp;
    emit(s, u, 1);
  } else if (cp < 0x800) {
    u[0] = (unsigned char)(0xC0 | cp >> 6);
    u[1] = (unsigned char)(0x80 | (cp & 0x3F));
    emit(s, u, 2);
  } else {
    u[0] = (unsigned char)(0xE0 | cp >> 12);
    u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    u[2] = (unsigned char)(0x80 | (cp & 0x3F));
    emit(s, u, 3);
  }
}

/* One byte of \uXXXX; false if it is not a hex digit (then it is a string byte). */
static bool uhex_byte(sy_usage_scan_t *s, unsigned char c) {
  unsigned v;
  if (c >= '0' && c <= '9') v = c - '0';
  else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
  else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
  else {
    s->mode = M_STR;
    return false;
  }
  s->cp = s->cp << 4 | v;
  if (++s->hex_n == 4) {
    s->mode = M_STR;
    emit_cp(s, s->cp);
  }
  return true;
}

/* ---- numbers ------------------------------------------------------------ */

/* A digit where a value is due: read it if it is a usage count. */
static void num_start(sy_usage_scan_t *s, unsigned char c) {
  unsigned key = cur_key(s);
  if (s->pos == P_VALUE && (cur_kind(s) & L_USAGE) && (key == K_PROMPT || key == K_COMPLETION)) {
    s->mode = M_NUM;
    s->num_key = (uint8_t)key;
    s->num = c - '0';
    s->num_ok = 1;
  }
  s->pos = P_AFTER;
}

/*
 * One byte of a usage count. Returns true when the number has ended and c must
 * be read again as text. Fractions and exponents spoil the number; it is stored
 * only if it ends at whitespace, ',', '}' or ']'.
 */
static bool num_byte(sy_usage_scan_t *s, unsigned char c) {
  if (c >= '0' && c <= '9') {
    unsigned d = c - '0';
    if (s->num > (uint64_t)(LLONG_MAX - d) / 10) s->num_ok = 0;
    else s->num = s->num * 10 + d;
    return false;
  }
  if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
    s->num_ok = 0;
    return false;
  }
  bool end = c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\r' ||
             c == '\n';
  if (end && s->num_ok) {
    if (s->num_key == K_PROMPT) s->prompt_tokens = (long long)s->num;
    else s->completion_tokens = (long long)s->num;
  }
  s->mode = M_TEXT;
  return true;
}

/* ---- structure ---------------------------------------------------------- */

/* A byte outside strings and usage numbers. At depth 0 only '{' matters. */
static void text_byte(sy_usage_scan_t *s, unsigned char c) {
  if (s->depth == 0) {
    if (c == '{') open_object(s);
    return;
  }
  switch (c) {
  case '{': open_object(s); break;
  case '[': push(s, 0); s->pos = P_VALUE; break;
  case '}':
  case ']': s->depth--; s->pos = P_AFTER; break;
  case '"': open_string(s); break;
  case ':':
    if (cur_kind(s) & L_OBJ) s->pos = P_VALUE;
    break;
  case ',':
    if (cur_kind(s) & L_OBJ) {
      s->pos = P_KEY;
      s->key[s->depth - 1] = K_OTHER;
    } else {
      s->pos = P_VALUE;
    }
    break;
  case ' ': case '\t': case '\r': case '\n': break;
  default:
    if (c >= '0' && c <= '9') num_start(s, c);
    else if (s->pos == P_VALUE) s->pos = P_AFTER; /* true, false, null, '-', junk */
    break;
  }
}

/*
 * Tracks line starts: a line that begins with "data:" begins a new document,
 * whatever state the previous one was left in. Returns true if c completed the
 * field name (c is then consumed).
 */
static inline bool line_byte(sy_usage_scan_t *s, unsigned char c) {
  if (c == '\n' || c == '\r') {
    s->line = 0;
  } else if (s->line < LINE_OFF) {
    if (c != (unsigned char)DATA_FIELD[s->line]) {
      s->line = LINE_OFF;
    } else if (++s->line == LINE_OFF) {
      s->depth = 0;
      s->mode = M_TEXT;
      s->sink = SINK_NONE;
      return true;
    }
  }
  return false;
}

static inline void step(sy_usage_scan_t *s, unsigned char c) {
  if (line_byte(s, c)) return;
  switch (s->mode) {
  case M_NUM:
    if (!num_byte(s, c)) return;
    /* fall through */
  case M_TEXT: text_byte(s, c); return;
  case M_UHEX:
    if (uhex_byte(s, c)) return;
    /* fall through */
  case M_STR: str_byte(s, c); return;
  case M_ESC: esc_byte(s, c); return;
  default: return;
  }
}

/* ---- fast paths ------------------------------------------------------- */

/*
 * What a byte outside strings does at depth > 0 (text_byte): C_PLAIN bytes (letters,
 * '-', junk) only end a value that is due; C_SPACE bytes do nothing; C_DIGIT bytes go
 * to num_start; C_LINE bytes are for step (line starts); the rest to text_byte.
 */
enum { C_PLAIN, C_SPACE, C_DIGIT, C_QUOTE, C_STRUCT, C_LINE };
static const uint8_t text_class[256] = {
    [' '] = C_SPACE, ['\t'] = C_SPACE, ['\n'] = C_LINE, ['\r'] = C_LINE,
    ['"'] = C_QUOTE, ['{'] = C_STRUCT, ['}'] = C_STRUCT, ['['] = C_STRUCT,
    [']'] = C_STRUCT, [':'] = C_STRUCT, [','] = C_STRUCT,
    ['0'] = C_DIGIT, ['1'] = C_DIGIT, ['2'] = C_DIGIT, ['3'] = C_DIGIT, ['4'] = C_DIGIT,
    ['5'] = C_DIGIT, ['6'] = C_DIGIT, ['7'] = C_DIGIT, ['8'] = C_DIGIT, ['9'] = C_DIGIT,
};

/* Bytes that end a run of plain string bytes: the quote, an escape, a line end. */
static const uint8_t str_stop[256] = {['"'] = 1, ['\\'] = 1, ['\n'] = 1, ['\r'] = 1};

/* The first byte in [b, end) that ends a run of plain string bytes, or end. */
static inline const unsigned char *skip_plain(const unsigned char *b, const unsigned char *end) {
#ifdef __SSE2__
  const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
  const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
  while (end - b >= 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)b);
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                               _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)));
    unsigned mask = (unsigned)_mm_movemask_epi8(hit);
    if (mask != 0) return b + __builtin_ctz(mask);
    b += 16;
  }
#endif
  while (b < end && !str_stop[*b]) b++;
  return b;
}

/*
 * Inside a string, off a line start: takes runs of plain bytes (to the sink), the
 * closing quote, and, when the bytes go nowhere, escapes whose second byte ends no
 * line. (Without a sink an escape only matters as two bytes that are not a closing
 * quote: after \u, hex digits and whatever else follows are plain bytes anyway.)
 * Returns where it stopped: at end, after the closing quote (mode is then M_TEXT),
 * or at a byte that step must take.
 */
static inline const unsigned char *str_run(sy_usage_scan_t *s, const unsigned char *b,
                                           const unsigned char *end) {
  for (;;) {
    const unsigned char *run = b;
    b = skip_plain(b, end);
    if (b > run && s->sink != SINK_NONE) emit(s, run, (size_t)(b - run));
    if (b == end) return b;
    if (*b == '"') {
      close_string(s);
      return b + 1;
    }
    if (*b != '\\' || s->sink != SINK_NONE || end - b < 2 || b[1] == '\n' || b[1] == '\r')
      return b;
    b += 2;
  }
}

/*
 * A string has just opened at b. A key that ends in this piece without escapes or
 * line ends is classified where it lies; anything else goes through str_run.
 */
static const unsigned char *str_open(sy_usage_scan_t *s, const unsigned char *b,
                                     const unsigned char *end) {
  if (s->sink == SINK_KEY) {
    const unsigned char *q = skip_plain(b, end);
    if (q < end && *q == '"') {
      s->key[s->depth - 1] = (uint8_t)classify((const char *)b, (size_t)(q - b));
      s->sink = SINK_NONE;
      s->mode = M_TEXT;
      return q + 1;
    }
  }
  return str_run(s, b, end);
}

/*
 * At a '"' outside strings, depth > 0: the string, and as long as they come, the ':'
 * or ',' after it and the string after that, as in "k":"v","k2":"v2" (which would
 * otherwise take a trip through run's switch per byte of punctuation).
 */
static const unsigned char *strings(sy_usage_scan_t *s, const unsigned char *b,
                                    const unsigned char *end) {
  do {
    open_string(s);
    b = str_open(s, b + 1, end);
    if (s->mode != M_TEXT || b == end) return b;
    if (*b == ':') {
      if (cur_kind(s) & L_OBJ) s->pos = P_VALUE;
      b++;
    } else if (*b == ',') {
      text_byte(s, ',');
      b++;
    }
  } while (b < end && *b == '"');
  return b;
}

/*
 * Text and string bytes off a line start, in bulk. Returns end, or the first byte
 * it did not take (a line end, or a byte in an escape, \u or usage number mode),
 * which step must then take.
 */
static const unsigned char *run(sy_usage_scan_t *s, const unsigned char *b,
                                const unsigned char *end) {
  while (b < end) {
    if (s->mode == M_STR) {
      b = str_run(s, b, end);
      if (s->mode != M_TEXT) return b;
      continue;
    }
    if (s->mode != M_TEXT) return b;
    if (s->depth == 0) { /* between documents only '{' matters */
      while (b < end && *b != '{' && *b != '\n' && *b != '\r') b++;
      if (b == end || *b != '{') return b;
      open_object(s);
      b++;
      continue;
    }
    unsigned char c = *b;
    switch (text_class[c]) {
    case C_SPACE: b++; break;
    case C_PLAIN:
      if (s->pos == P_VALUE) s->pos = P_AFTER;
      b++;
      break;
    case C_DIGIT:
      num_start(s, c);
      b++;
      if (s->mode == M_TEXT) /* not a usage count: the digits after it do nothing */
        while (b < end && text_class[*b] == C_DIGIT) b++;
      break;
    case C_QUOTE: b = strings(s, b, end); break;
    case C_STRUCT: text_byte(s, c); b++; break;
    default: return b; /* C_LINE */
    }
  }
  return b;
}

void sy_usage_scan_feed(sy_usage_scan_t *s, const char *p, size_t n) {
  if (n == 0) return;
  const unsigned char *b = (const unsigned char *)p, *end = b + n;
  while (b < end) {
    if (s->line == LINE_OFF && (s->mode == M_TEXT || s->mode == M_STR)) {
      b = run(s, b, end);
      if (b == end) return;
    }
    step(s, *b++);
  }
}
