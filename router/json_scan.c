/*
 * json_scan.c — strict JSON validation and span walking without allocation.
 *
 * Validation is one iterative pass: a bit per open container (object or array)
 * replaces recursion, so depth costs stack bits, not frames. The walkers run on
 * documents that have passed validation and therefore only find boundaries
 * (string ends, matching brackets); they never read outside the span they walk,
 * whatever the input. Strings are checked as strictly as jansson checks them:
 * no control characters, known escapes only, \u surrogates in pairs, and UTF-8
 * without overlong forms, surrogates or code points above U+10FFFF.
 */
#include "router/json_scan.h"

#include <string.h>

/* Validation state: the buffer, the read position and where to report errors. */
typedef struct {
  const unsigned char *b;
  size_t len;
  size_t pos;
  sy_json_error_t *err;
} scan_t;

/* The open containers of a validation: bit i set if container i is an object. */
typedef struct {
  uint64_t is_obj[SY_JSON_MAX_DEPTH / 64];
  size_t depth;
} nest_t;

static int fail(scan_t *s, size_t pos, const char *reason) {
  if (s->err != NULL) {
    s->err->pos = pos;
    s->err->reason = reason;
  }
  return -1;
}

static int is_ws(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}

static void skip_ws(scan_t *s) {
  while (s->pos < s->len && is_ws(s->b[s->pos]))
    s->pos++;
}

/*
 * Length of the well-formed UTF-8 sequence at p (avail bytes readable), or 0 if
 * it is not one: overlong forms, surrogates and values above U+10FFFF are refused.
 */
static size_t utf8_seq(const unsigned char *p, size_t avail) {
  unsigned c = p[0];
  size_t n;
  uint32_t cp, min;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2, cp = c & 0x1F, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF)
    n = 3, cp = c & 0x0F, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4)
    n = 4, cp = c & 0x07, min = 0x10000;
  else
    return 0;
  if (avail < n)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

/* The value of the 4 hex digits at b[at] (len bytes in b), or -1. */
static long hex4(const unsigned char *b, size_t at, size_t len) {
  long v = 0;
  if (at > len || len - at < 4)
    return -1;
  for (size_t i = at; i < at + 4; i++) {
    unsigned char c = b[i];
    int d = is_digit(c)              ? c - '0'
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                     : -1;
    if (d < 0)
      return -1;
    v = v * 16 + d;
  }
  return v;
}

/* Validates the escape at b[*ip] (a backslash) and moves *ip past it. */
static int scan_escape(scan_t *s, size_t *ip) {
  size_t i = *ip;
  if (i + 1 >= s->len)
    return fail(s, i, "unterminated string");
  if (strchr("\"\\/bfnrt", s->b[i + 1]) != NULL && s->b[i + 1] != '\0') {
    *ip = i + 2;
    return 0;
  }
  if (s->b[i + 1] != 'u')
    return fail(s, i, "invalid escape");
  long u = hex4(s->b, i + 2, s->len);
  if (u < 0)
    return fail(s, i, "invalid \\u escape");
  if (u >= 0xDC00 && u <= 0xDFFF)
    return fail(s, i, "unpaired low surrogate");
  if (u < 0xD800 || u > 0xDBFF) {
    *ip = i + 6;
    return 0;
  }
  long lo = (i + 7 < s->len && s->b[i + 6] == '\\' && s->b[i + 7] == 'u')
                ? hex4(s->b, i + 8, s->len)
                : -1;
  if (lo < 0xDC00 || lo > 0xDFFF)
    return fail(s, i, "unpaired high surrogate");
  *ip = i + 12;
  return 0;
}

/* Validates the string token at s->pos (its opening quote) and moves past it. */
static int scan_string(scan_t *s) {
  size_t i = s->pos + 1;
  for (;;) {
    if (i >= s->len)
      return fail(s, s->pos, "unterminated string");
    unsigned char c = s->b[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      i++;
    } else if (c == '"') {
      s->pos = i + 1;
      return 0;
    } else if (c == '\\') {
      if (scan_escape(s, &i) != 0)
        return -1;
    } else if (c < 0x20) {
      return fail(s, i, "control character in string");
    } else {
      size_t n = utf8_seq(s->b + i, s->len - i);
      if (n == 0)
        return fail(s, i, "invalid UTF-8 in string");
      i += n;
    }
  }
}

/* Moves s->pos past the digits at it; returns how many there were. */
static size_t skip_digits(scan_t *s) {
  size_t start = s->pos;
  while (s->pos < s->len && is_digit(s->b[s->pos]))
    s->pos++;
  return s->pos - start;
}

/* Validates a number by RFC 8259's grammar; its value is never computed. */
static int scan_number(scan_t *s) {
  size_t start = s->pos;
  if (s->b[s->pos] == '-')
    s->pos++;
  if (s->pos < s->len && s->b[s->pos] == '0')
    s->pos++;
  else if (skip_digits(s) == 0)
    return fail(s, start, "invalid number");
  if (s->pos < s->len && s->b[s->pos] == '.') {
    s->pos++;
    if (skip_digits(s) == 0)
      return fail(s, start, "invalid number");
  }
  if (s->pos < s->len && (s->b[s->pos] == 'e' || s->b[s->pos] == 'E')) {
    s->pos++;
    if (s->pos < s->len && (s->b[s->pos] == '+' || s->b[s->pos] == '-'))
      s->pos++;
    if (skip_digits(s) == 0)
      return fail(s, start, "invalid number");
  }
  return 0;
}

/* Validates true, false or null at s->pos. */
static int scan_literal(scan_t *s) {
  static const char *const words[] = {"true", "false", "null"};
  for (size_t i = 0; i < 3; i++) {
    size_t n = strlen(words[i]);
    if (s->len - s->pos >= n && memcmp(s->b + s->pos, words[i], n) == 0) {
      s->pos += n;
      return 0;
    }
  }
  return fail(s, s->pos, "invalid literal");
}

/* Validates a string, number or literal at s->pos (whitespace already skipped). */
static int scan_scalar(scan_t *s) {
  unsigned char c = s->b[s->pos];
  if (c == '"')
    return scan_string(s);
  if (c == '-' || is_digit(c))
    return scan_number(s);
  if (c == 't' || c == 'f' || c == 'n')
    return scan_literal(s);
  return fail(s, s->pos, "unexpected character");
}

/* Validates `"key" :` inside an object, leaving s->pos before the value. */
static int scan_key(scan_t *s) {
  skip_ws(s);
  if (s->pos >= s->len || s->b[s->pos] != '"')
    return fail(s, s->pos, "expected a string key");
  if (scan_string(s) != 0)
    return -1;
  skip_ws(s);
  if (s->pos >= s->len || s->b[s->pos] != ':')
    return fail(s, s->pos, "expected ':'");
  s->pos++;
  return 0;
}

static int top_is_obj(const nest_t *n) {
  size_t i = n->depth - 1;
  return (int)((n->is_obj[i / 64] >> (i % 64)) & 1);
}

/*
 * Called after a complete value: closes the containers that end here and consumes
 * the ',' (and, in an object, the next key) that announce another value. Returns
 * 1 if a value must follow, 0 if the outermost value is complete, -1 on error.
 */
static int after_value(scan_t *s, nest_t *n) {
  while (n->depth > 0) {
    skip_ws(s);
    if (s->pos >= s->len)
      return fail(s, s->pos, "unexpected end of input");
    int obj = top_is_obj(n);
    unsigned char c = s->b[s->pos++];
    if (c == ',')
      return obj && scan_key(s) != 0 ? -1 : 1;
    if (c != (obj ? '}' : ']'))
      return fail(s, s->pos - 1, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    n->depth--;
  }
  return 0;
}

/*
 * Opens the container at s->pos. Returns 1 if a value (its first) must follow,
 * or what after_value() returns if it was empty.
 */
static int open_container(scan_t *s, nest_t *n) {
  unsigned char c = s->b[s->pos++];
  size_t i = n->depth++;
  uint64_t bit = (uint64_t)1 << (i % 64);
  if (i % 64 == 0)
    n->is_obj[i / 64] = 0; /* first use of this word: no bit of it is read before */
  n->is_obj[i / 64] = c == '{' ? n->is_obj[i / 64] | bit : n->is_obj[i / 64] & ~bit;
  skip_ws(s);
  if (s->pos < s->len && s->b[s->pos] == (c == '{' ? '}' : ']')) {
    s->pos++;
    n->depth--;
    return after_value(s, n);
  }
  return c == '{' && scan_key(s) != 0 ? -1 : 1;
}

/* Validates one complete value at s->pos, containers included. */
static int scan_value(scan_t *s) {
  nest_t n;
  n.depth = 0;
  int more = 1;
  while (more == 1) {
    skip_ws(s);
    if (s->pos >= s->len)
      return fail(s, s->pos, "unexpected end of input");
    if (n.depth >= SY_JSON_MAX_DEPTH)
      return fail(s, s->pos, "nesting too deep");
    unsigned char c = s->b[s->pos];
    if (c == '{' || c == '[')
      more = open_container(s, &n);
    else
      more = scan_scalar(s) != 0 ? -1 : after_value(s, &n);
  }
  return more;
}

/* Validates buf[0, len) as one JSON value with optional whitespace around it. */
int sy_json_validate(const char *buf, size_t len, sy_json_span_t *root, sy_json_error_t *err) {
  scan_t s = {(const unsigned char *)buf, len, 0, err};
  skip_ws(&s);
  size_t start = s.pos;
  if (scan_value(&s) != 0)
    return -1;
  size_t end = s.pos;
  skip_ws(&s);
  if (s.pos != len)
    return fail(&s, s.pos, "unexpected data after the value");
  if (root != NULL) {
    root->off = start;
    root->len = end - start;
  }
  return 0;
}

/* The type of the value at span v of a validated document. */
sy_json_type_t sy_json_type(const char *buf, sy_json_span_t v) {
  switch (v.len ? buf[v.off] : '\0') {
  case '{': return SY_JSON_OBJECT;
  case '[': return SY_JSON_ARRAY;
  case '"': return SY_JSON_STRING;
  case 't':
  case 'f':
  case 'n': return SY_JSON_LITERAL;
  default: return SY_JSON_NUMBER;
  }
}

/* First offset in [pos, end) that is not whitespace, or end. */
static size_t ws_end(const char *b, size_t pos, size_t end) {
  while (pos < end && is_ws((unsigned char)b[pos]))
    pos++;
  return pos;
}

/*
 * End (one past the closing quote) of the valid string token at pos. A quote
 * ends the string iff an even number of backslashes precede it: in valid JSON
 * the only escape that ends in a backslash is "\\".
 */
static size_t string_end(const char *b, size_t pos, size_t end) {
  size_t i = pos + 1;
  while (i < end) {
    const char *q = memchr(b + i, '"', end - i);
    if (q == NULL)
      break;
    size_t k = (size_t)(q - b), run = 0;
    while (k - run > pos + 1 && b[k - run - 1] == '\\')
      run++;
    if (run % 2 == 0)
      return k + 1;
    i = k + 1;
  }
  return end;
}

/* End of the valid value at pos, not looking at or past end. */
static size_t value_end(const char *b, size_t pos, size_t end) {
  char c = b[pos];
  if (c == '"')
    return string_end(b, pos, end);
  if (c != '{' && c != '[') {
    while (pos < end && b[pos] != ',' && b[pos] != ']' && b[pos] != '}' &&
           !is_ws((unsigned char)b[pos]))
      pos++;
    return pos;
  }
  size_t depth = 0;
  while (pos < end) {
    c = b[pos];
    if (c == '"') {
      pos = string_end(b, pos, end);
      continue;
    }
    if (c == '{' || c == '[')
      depth++;
    else if ((c == '}' || c == ']') && --depth == 0)
      return pos + 1;
    pos++;
  }
  return end;
}

/* Starts walking the object or array at span v of a validated document. */
void sy_json_iter_init(sy_json_iter_t *it, const char *buf, sy_json_span_t v) {
  it->buf = buf;
  it->pos = v.len >= 2 ? v.off + 1 : v.off + v.len;
  it->end = v.len >= 2 ? v.off + v.len - 1 : it->pos;
}

/* Moves past whitespace and a separating ',', returning 0 at the closing bracket. */
static int iter_step(sy_json_iter_t *it) {
  size_t p = ws_end(it->buf, it->pos, it->end);
  if (p < it->end && it->buf[p] == ',')
    p = ws_end(it->buf, p + 1, it->end);
  it->pos = p;
  return p < it->end;
}

/*
 * Reads the value at it->pos into *value and moves past it. A valid value is never
 * empty; should one be (a document that did not pass validation), the walk ends
 * there rather than loop.
 */
static void iter_value(sy_json_iter_t *it, sy_json_span_t *value) {
  value->off = it->pos;
  it->pos = it->pos < it->end ? value_end(it->buf, it->pos, it->end) : it->end;
  value->len = it->pos - value->off;
  if (value->len == 0)
    it->pos = it->end;
}

/* Object walk: the next member's key and value spans (1), or 0 at the end. */
int sy_json_next_member(sy_json_iter_t *it, sy_json_span_t *key, sy_json_span_t *value) {
  if (!iter_step(it))
    return 0;
  key->off = it->pos;
  it->pos = string_end(it->buf, it->pos, it->end);
  key->len = it->pos - key->off;
  it->pos = ws_end(it->buf, it->pos, it->end);
  if (it->pos < it->end && it->buf[it->pos] == ':')
    it->pos++;
  it->pos = ws_end(it->buf, it->pos, it->end);
  iter_value(it, value);
  return 1;
}

/* Array walk: the next element's span (1), or 0 at the end. */
int sy_json_next_element(sy_json_iter_t *it, sy_json_span_t *value) {
  if (!iter_step(it))
    return 0;
  iter_value(it, value);
  return 1;
}

/* Encodes code point cp as UTF-8 into u; returns the byte count. */
static size_t utf8_put(uint32_t cp, unsigned char *u) {
  if (cp < 0x80) {
    u[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    u[0] = (unsigned char)(0xC0 | (cp >> 6));
    u[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    u[0] = (unsigned char)(0xE0 | (cp >> 12));
    u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  u[0] = (unsigned char)(0xF0 | (cp >> 18));
  u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  u[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/*
 * Decodes the (valid) escape at b[*ip] into UTF-8 bytes in u, moves *ip past it
 * and returns the byte count.
 */
static size_t decode_escape(const unsigned char *b, size_t len, size_t *ip, unsigned char *u) {
  size_t i = *ip;
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  const char *e = strchr(from, b[i + 1]);
  if (b[i + 1] != 'u' && e != NULL) {
    *ip = i + 2;
    u[0] = (unsigned char)to[e - from];
    return 1;
  }
  long cp = hex4(b, i + 2, len);
  *ip = i + 6;
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    long lo = hex4(b, i + 8, len);
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    *ip = i + 12;
  }
  return cp < 0 ? 0 : utf8_put((uint32_t)cp, u);
}

/* True if string token s decodes to exactly the NUL-terminated text str. */
int sy_json_string_eq(const char *buf, sy_json_span_t s, const char *str) {
  if (s.len < 2 || buf[s.off] != '"')
    return 0;
  const unsigned char *b = (const unsigned char *)buf;
  const unsigned char *t = (const unsigned char *)str;
  size_t i = s.off + 1, end = s.off + s.len - 1;
  while (i < end) {
    unsigned char u[4];
    size_t n = 1;
    if (b[i] == '\\' && i + 1 < end)
      n = decode_escape(b, end, &i, u);
    else
      u[0] = b[i++];
    for (size_t k = 0; k < n; k++, t++) {
      if (*t == '\0' || *t != u[k])
        return 0;
    }
  }
  return *t == '\0';
}

/* Appends c to dst at *n when dst is not NULL; counts it either way. */
static void put(char *dst, size_t *n, char c) {
  if (dst != NULL)
    dst[*n] = c;
  (*n)++;
}

/* The two-character escape of c, or 0 if it has none. */
static char short_escape(unsigned char c) {
  switch (c) {
  case '"': return '"';
  case '\\': return '\\';
  case '\b': return 'b';
  case '\f': return 'f';
  case '\n': return 'n';
  case '\r': return 'r';
  case '\t': return 't';
  default: return 0;
  }
}

/* Appends n bytes to dst at *out when dst is not NULL; counts them either way. */
static void put_bytes(char *dst, size_t *out, const unsigned char *p, size_t n) {
  if (dst != NULL)
    memcpy(dst + *out, p, n);
  *out += n;
}

/* Writes text[0, n) as a quoted JSON string into dst (if not NULL); see json_scan.h. */
size_t sy_json_quote(const char *text, size_t n, char *dst) {
  static const char hex[] = "0123456789ABCDEF";
  const unsigned char *p = (const unsigned char *)text;
  size_t out = 0, i = 0;
  put(dst, &out, '"');
  while (i < n) {
    size_t run = i; /* bytes copied as they are: printable ASCII but " and \ */
    while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
      run++;
    put_bytes(dst, &out, p + i, run - i);
    if ((i = run) == n)
      break;
    unsigned char c = p[i];
    char esc = short_escape(c);
    size_t k = c < 0x80 ? 1 : utf8_seq(p + i, n - i);
    if (k == 0)
      return SIZE_MAX;
    if (esc != 0) {
      put(dst, &out, '\\');
      put(dst, &out, esc);
    } else if (c < 0x20) {
      const unsigned char u[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      put_bytes(dst, &out, u, sizeof u);
    } else {
      put_bytes(dst, &out, p + i, k);
    }
    i += k;
  }
  put(dst, &out, '"');
  return out;
}
