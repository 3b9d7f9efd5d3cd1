/*
 * cjson.h — canonical JSON text, for files that must come out byte-identical when built
 * again (datasets and their manifests): object keys sorted by their bytes, no whitespace
 * (or a fixed indentation), integers as decimal, reals in the shortest of %.15g, %.16g and
 * %.17g that reads back to the same double (with ".0" added when that text would read as
 * an integer), non-finite reals as null, strings with only ", \ and control characters
 * escaped (\n, \t, ... or \u00XX; other bytes, UTF-8 included, as they are). Pure: no I/O.
 *
 * Errors: 0 / -1 (out of memory, or a json_t kind it does not know).
 */
#ifndef SY_CJSON_H
#define SY_CJSON_H

#include <stddef.h>

#include <jansson.h>

/* A growable byte buffer; zero-initialise it, free p when done. */
typedef struct sy_cjson_buf_s {
  char *p;
  size_t len, cap;
} sy_cjson_buf_t;

/* Appends n bytes of s to b. */
int sy_cjson_raw(sy_cjson_buf_t *b, const char *s, size_t n);

/* Appends v as canonical JSON; indent 0: compact, else that many spaces per level with
 * one member or element per line. */
int sy_cjson_dump(sy_cjson_buf_t *b, const json_t *v, int indent);

/* Appends the canonical text of a real (above). */
int sy_cjson_real(sy_cjson_buf_t *b, double v);

#endif
