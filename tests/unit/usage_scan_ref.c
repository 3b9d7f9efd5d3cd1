/*
 * usage_scan_ref.c — the frozen reference scanner; see usage_scan_ref.h. The code
 * below is stats/usage_scan.c of commit a3f69bd with its public names renamed.
 */
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "tests/unit/usage_scan_ref.h"

enum { M_TEXT, M_STR, M_ESC, M_UHEX, M_NUM };         /* lexical modes */
enum { SINK_NONE, SINK_KEY, SINK_ID, SINK_MODEL };    /* string destinations */
enum { P_KEY, P_COLON, P_VALUE, P_AFTER };            /* place in a container */
enum { K_OTHER, K_ID, K_MODEL, K_USAGE, K_PROMPT, K_COMPLETION }; /* key classes */
enum { L_OBJ = 1, L_USAGE = 2 };                      /* kind[] bits */
enum { F_ID = 1, F_MODEL = 2, F_ID_FULL = 4, F_MODEL_FULL = 8 }; /* flags bits */

/* SSE field that starts a document; `line` counts matched bytes, LINE_OFF = no match. */
#define DATA_FIELD "data:"
#define LINE_OFF 5

void ref_usage_scan_init(ref_usage_scan_t *s) {
  memset(s, 0, sizeof *s);
  s->mode = M_TEXT;
  s->sink = SINK_NONE;
  s->line = 0; /* the start of the body is a line start */
  s->prompt_tokens = -1;
  s->completion_tokens = -1;
}

/* ---- nesting ------------------------------------------------------------ */

/* kind[] of the current level; 0 (an array, as far as we care) outside 1..MAX. */
static inline unsigned cur_kind(const ref_usage_scan_t *s) {
  return s->depth - 1u < SY_USAGE_MAX_DEPTH ? s->kind[s->depth - 1] : 0;
}

static inline unsigned cur_key(const ref_usage_scan_t *s) {
  return s->depth - 1u < SY_USAGE_MAX_DEPTH ? s->key[s->depth - 1] : K_OTHER;
}

static void push(ref_usage_scan_t *s, unsigned kind) {
  if (s->depth < SY_USAGE_MAX_DEPTH) {
    s->kind[s->depth] = (uint8_t)kind;
    s->key[s->depth] = K_OTHER;
  }
  if (s->depth < UINT32_MAX) s->depth++;
}

/* An object that is the value of a "usage" member is marked as a usage object. */
static void open_object(ref_usage_scan_t *s) {
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
static void emit(ref_usage_scan_t *s, const unsigned char *b, size_t n) {
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

static unsigned classify_key(const ref_usage_scan_t *s) {
#define IS(k) (s->klen == sizeof(k) - 1 && memcmp(s->kbuf, k, sizeof(k) - 1) == 0)
  if (IS("id")) return K_ID;
  if (IS("model")) return K_MODEL;
  if (IS("usage")) return K_USAGE;
  if (IS("prompt_tokens")) return K_PROMPT;
  if (IS("completion_tokens")) return K_COMPLETION;
  return K_OTHER;
#undef IS
}

/*
 * A string starts. In an object where a key is due it is a key; as the value of a
 * top-level "id" or "model" member not yet taken, its bytes go to the result.
 */
static void open_string(ref_usage_scan_t *s) {
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

static void close_string(ref_usage_scan_t *s) {
  if (s->sink == SINK_KEY && (cur_kind(s) & L_OBJ)) s->key[s->depth - 1] = (uint8_t)classify_key(s);
  s->sink = SINK_NONE;
  s->mode = M_TEXT;
}

static void str_byte(ref_usage_scan_t *s, unsigned char c) {
  if (c == '"') {
    close_string(s);
  } else if (c == '\\') {
    s->mode = M_ESC;
  } else {
    emit(s, &c, 1);
  }
}

static void esc_byte(ref_usage_scan_t *s, unsigned char c) {
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
static void emit_cp(ref_usage_scan_t *s, uint32_t cp) {
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
static bool uhex_byte(ref_usage_scan_t *s, unsigned char c) {
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
static void num_start(ref_usage_scan_t *s, unsigned char c) {
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
static bool num_byte(ref_usage_scan_t *s, unsigned char c) {
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
static void text_byte(ref_usage_scan_t *s, unsigned char c) {
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
static inline bool line_byte(ref_usage_scan_t *s, unsigned char c) {
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

static inline void step(ref_usage_scan_t *s, unsigned char c) {
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

/* The end of a run of string bytes that need no decoding and end no line. */
static inline const unsigned char *skip_plain(const unsigned char *b, const unsigned char *end) {
  while (b < end && *b != '"' && *b != '\\' && *b != '\n' && *b != '\r') b++;
  return b;
}

void ref_usage_scan_feed(ref_usage_scan_t *s, const char *p, size_t n) {
  if (n == 0) return;
  const unsigned char *b = (const unsigned char *)p, *end = b + n;
  while (b < end) {
    /* Inside a string, off the start of a line: the common case, done in runs. */
    if (s->mode == M_STR && s->line == LINE_OFF) {
      const unsigned char *run = b;
      b = skip_plain(b, end);
      if (b > run) emit(s, run, (size_t)(b - run));
      if (b == end) return;
    }
    step(s, *b++);
  }
}
