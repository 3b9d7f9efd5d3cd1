/*
 * json_scan.h — a strict, non-allocating JSON scanner for request bodies.
 *
 * sy_json_validate() checks that a buffer is exactly one RFC 8259 JSON value:
 * strings with their escapes (\uXXXX surrogates paired) and strict UTF-8, numbers
 * by the grammar, the three literals, nesting at most SY_JSON_MAX_DEPTH deep, and
 * nothing but whitespace around it. Once a document has passed, the iterators walk
 * an object's members or an array's elements as spans (offsets into the buffer), so
 * that a caller can copy the document piecewise and change only what it must.
 * Nothing here allocates, and numbers are never converted: their text is the value.
 */
#ifndef SY_JSON_SCAN_H
#define SY_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

/*
 * Deepest nesting accepted: a value's depth is the number of arrays and objects
 * around it plus one, as jansson counts it (its JSON_PARSER_MAX_DEPTH is 2048), so
 * every body jansson accepted still passes. The scanner is iterative: the limit
 * costs 256 bytes of stack, not recursion.
 */
#define SY_JSON_MAX_DEPTH 2048

/* A piece of the document: bytes [off, off + len). */
typedef struct {
  size_t off;
  size_t len;
} sy_json_span_t;

typedef enum {
  SY_JSON_OBJECT,
  SY_JSON_ARRAY,
  SY_JSON_STRING,
  SY_JSON_NUMBER,
  SY_JSON_LITERAL /* true, false or null */
} sy_json_type_t;

/* Why and where validation failed; reason is a static string. */
typedef struct {
  size_t pos;
  const char *reason;
} sy_json_error_t;

/* Walks one object or array of a validated document. */
typedef struct {
  const char *buf;
  size_t pos; /* next byte to look at */
  size_t end; /* offset of the closing bracket */
} sy_json_iter_t;

/*
 * Validates buf[0, len) as one JSON value with optional whitespace around it.
 * Returns 0 and stores the value's span (whitespace excluded) in *root (if root is
 * not NULL), or -1 and fills *err (if err is not NULL).
 */
int sy_json_validate(const char *buf, size_t len, sy_json_span_t *root, sy_json_error_t *err);

/* The type of the value at span v of a validated document. */
sy_json_type_t sy_json_type(const char *buf, sy_json_span_t v);

/* Starts walking the object or array at span v of a validated document. */
void sy_json_iter_init(sy_json_iter_t *it, const char *buf, sy_json_span_t v);

/*
 * Object walk: returns 1 and the next member's key (the string token, quotes
 * included) and value spans, or 0 after the last member.
 */
int sy_json_next_member(sy_json_iter_t *it, sy_json_span_t *key, sy_json_span_t *value);

/* Array walk: returns 1 and the next element's span, or 0 after the last one. */
int sy_json_next_element(sy_json_iter_t *it, sy_json_span_t *value);

/*
 * True if span s of a validated document is a string token whose decoded text
 * (escapes resolved) is exactly the NUL-terminated text str.
 */
int sy_json_string_eq(const char *buf, sy_json_span_t s, const char *str);

/*
 * Writes text[0, n) as a JSON string token (quotes, minimal escapes, UTF-8 kept)
 * into dst when dst is not NULL. Returns the token's length, or SIZE_MAX if the
 * text is not valid UTF-8 (then nothing useful was written).
 */
size_t sy_json_quote(const char *text, size_t n, char *dst);

#endif
