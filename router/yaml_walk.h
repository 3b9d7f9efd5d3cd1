/*
 * yaml_walk.h — a table-driven walker over a libyaml document, with the scalar
 * parsers and error messages a config file needs. Nothing in it knows switchyard's
 * keys; router/config.c supplies the tables.
 *
 * libyaml's document API gives a node tree in which every node knows its line. A
 * mapping with fixed keys is described by a table of sy__yaml_field_t rows (key,
 * parser, offset into the struct being filled, integer range, required?).
 * sy__yaml_walk_map() rejects unknown keys (with a "did you mean" hint) and
 * duplicate ones, reports missing required ones and calls each row's parser.
 * Fields are visited in table order, not file order, so that a table can put a
 * field after the ones it refers to.
 *
 * The walk stops at the first problem. Every failing function leaves one line
 * "FILE:LINE: KEY.PATH: problem" in the caller's error buffer (the key path is
 * kept in the walk state as the walk descends) and returns -1 or NULL.
 *
 * Nothing here allocates on its own behalf beyond libyaml's document and the
 * values it hands back to the caller (copied strings, JSON trees).
 */
#ifndef SY_YAML_WALK_H
#define SY_YAML_WALK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <yaml.h>

#define SY__YAML_PATH_CAP 256

/* The walk's state: the source, where we are (for messages) and the caller's data. */
typedef struct sy__yaml_walk_s {
  const char *name;     /* file name used in messages */
  const char *src;      /* the YAML text, to count lines for some syntax errors */
  size_t srclen;
  yaml_document_t doc;  /* valid between sy__yaml_load() == 0 and sy__yaml_unload() */
  int loaded;
  void *user;           /* the caller's state, for its field parsers */
  size_t json_budget;   /* nodes sy__yaml_to_json may still create in this walk */
  char *err;
  size_t errlen;
  size_t pathlen;
  char path[SY__YAML_PATH_CAP]; /* key path of the node being parsed, e.g. "upstreams.mock" */
} sy__yaml_walk_t;

typedef struct sy__yaml_field_s sy__yaml_field_t;

/* Parses value node v for field f into obj (the struct the field's table describes).
 * Returns 0, or -1 after sy__yaml_fail. */
typedef int (*sy__yaml_field_fn)(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                                 const sy__yaml_field_t *f);

/* One key of a mapping. A table is an array of rows ended by a row with key NULL. */
struct sy__yaml_field_s {
  const char *key;
  sy__yaml_field_fn parse;
  size_t off;                   /* where the value goes in obj (generic parsers) */
  long long min, max;           /* range of integer fields */
  int required;
  const sy__yaml_field_t *sub;  /* table of a nested mapping (sy__yaml_p_struct) */
};

/* The member of obj that field f describes, as a `type *`. */
#define SY__YAML_FIELD_PTR(obj, f, type) ((type *)(void *)((char *)(obj) + (f)->off))

/* ---- state, loading, messages ---- */

/* Prepares w to walk the YAML text src[0..len); `name` stands for the file in
 * messages, `user` is left for the caller's parsers. Empties err. Borrows name,
 * src and err: they must outlive the walk. */
void sy__yaml_init(sy__yaml_walk_t *w, const char *name, const char *src, size_t len, void *user,
                   char *err, size_t errlen);

/* Parses the source into w->doc. It must hold exactly one document (an empty
 * stream gives an empty document). Returns 0 (call sy__yaml_unload later), or -1
 * with "FILE:LINE: yaml: problem" in the error buffer and nothing to unload. */
int sy__yaml_load(sy__yaml_walk_t *w);

/* Frees the document of a successful sy__yaml_load; does nothing otherwise. */
void sy__yaml_unload(sy__yaml_walk_t *w);

/* Reads the whole file at path into a new buffer the caller frees, storing its
 * size in *len. Returns NULL with errno set on failure (EFBIG from 16 MiB up). */
char *sy__yaml_read_file(const char *path, size_t *len);

/* Writes "FILE:LINE: PATH: problem" into the error buffer, LINE being node n's (1
 * if n is NULL) and PATH the current key path ("(top level)" if empty). Always
 * returns -1. */
int sy__yaml_fail(sy__yaml_walk_t *w, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Append ".key" ("key" at the top) or "[i]" to the key path; each returns the old
 * length, to give back to sy__yaml_path_pop. A path that outgrows its buffer is
 * cut short. */
size_t sy__yaml_path_key(sy__yaml_walk_t *w, const char *key);
size_t sy__yaml_path_index(sy__yaml_walk_t *w, size_t i);
/* Restores the key path to length `old`. */
void sy__yaml_path_pop(sy__yaml_walk_t *w, size_t old);

/* Replaces control characters in s (NULL allowed) by '?': messages quote user
 * text and must stay one line whatever that text holds. */
void sy__yaml_one_line(char *s);

/* ---- nodes ---- */

/* The 1-based line where node n starts (1 if n is NULL). */
static inline int sy__yaml_line(const yaml_node_t *n) {
  return n ? (int)n->start_mark.line + 1 : 1;
}

/* The root node of the loaded document, NULL if the document is empty. */
static inline yaml_node_t *sy__yaml_root(sy__yaml_walk_t *w) {
  return yaml_document_get_root_node(&w->doc);
}

/* The node numbered `index` in the loaded document. */
static inline yaml_node_t *sy__yaml_node(sy__yaml_walk_t *w, int index) {
  return yaml_document_get_node(&w->doc, index);
}

/* The text of scalar node n (NUL-terminated, owned by the document). */
static inline const char *sy__yaml_text(const yaml_node_t *n) {
  return (const char *)n->data.scalar.value;
}

/* Number of pairs of mapping m / items of sequence s. */
static inline size_t sy__yaml_npairs(const yaml_node_t *m) {
  return (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
}
static inline size_t sy__yaml_nitems(const yaml_node_t *s) {
  return (size_t)(s->data.sequence.items.top - s->data.sequence.items.start);
}

/* Item i of sequence s (i < sy__yaml_nitems(s)). */
static inline yaml_node_t *sy__yaml_item(sy__yaml_walk_t *w, const yaml_node_t *s, size_t i) {
  return sy__yaml_node(w, s->data.sequence.items.start[i]);
}

/* Whether n is a plain (unquoted) scalar. */
static inline int sy__yaml_is_plain(const yaml_node_t *n) {
  return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* The value node of key `key` in mapping m, or NULL. */
yaml_node_t *sy__yaml_map_get(sy__yaml_walk_t *w, yaml_node_t *m, const char *key);

/* ---- scalars ---- */

/* Stores the text of scalar n in *out (owned by the document). A non-string (null,
 * collection, text with a NUL byte) fails. */
int sy__yaml_get_str(sy__yaml_walk_t *w, yaml_node_t *n, const char **out);
/* Same, and the string must not be empty. */
int sy__yaml_get_nonempty(sy__yaml_walk_t *w, yaml_node_t *n, const char **out);
/* Replaces *dst (freed) by a copy of s; n is the node blamed if memory runs out. */
int sy__yaml_set_str(sy__yaml_walk_t *w, yaml_node_t *n, char **dst, const char *s);
/* Stores in *out the value of n, which must be a plain decimal integer in [min, max]. */
int sy__yaml_get_int(sy__yaml_walk_t *w, yaml_node_t *n, long long min, long long max,
                     long long *out);
/* Stores in *out 1 or 0 for a plain YAML 1.1 boolean: true/false, yes/no or on/off,
 * each lower-case, Capitalised or UPPER-case (as sy__yaml_to_json types them).
 * Anything else, quoted text included, fails with "must be true or false". */
int sy__yaml_get_bool(sy__yaml_walk_t *w, yaml_node_t *n, int *out);
/* Whether s is, in full, a decimal integer [-+]?(0|[1-9][0-9]*). */
int sy__yaml_is_int_text(const char *s);
/* Whether s is, in full, a real [-+]?(digits.digits?|.digits|digits)([eE][-+]?digits)?
 * with a dot or an exponent. */
int sy__yaml_is_float_text(const char *s);

/* Parses scalar n, "host:port" or "[v6addr%zone]:port" with a port in 1..65535.
 * Stores a new string holding the host (without brackets) in *host and the port
 * in *port. */
int sy__yaml_get_hostport(sy__yaml_walk_t *w, yaml_node_t *n, char **host, uint16_t *port);
/* The same for text s (from node n, which errors name): "host:port", "[v6]:port", or
 * with default_port != 0 also "host" and "[v6]" alone (the port is then default_port). */
int sy__yaml_parse_hostport(sy__yaml_walk_t *w, yaml_node_t *n, const char *s,
                            uint16_t default_port, char **host, uint16_t *port);

/* Converts the subtree at n to a new JSON value, typing plain scalars as YAML 1.1
 * does (null, booleans, integers, reals; quoted scalars are strings). Bounded in
 * depth (aliases can loop) and, across the whole walk, in size. Returns NULL after
 * sy__yaml_fail (duplicate keys, infinities, too deep or large, out of memory). */
json_t *sy__yaml_to_json(sy__yaml_walk_t *w, yaml_node_t *n);

/* ---- mappings ---- */

/* Parses mapping m into obj by the rows of table, in table order: unknown, repeated
 * and non-string keys are errors, and so is a missing required key. Returns 0 or -1. */
int sy__yaml_walk_map(sy__yaml_walk_t *w, yaml_node_t *m, const sy__yaml_field_t *table,
                      void *obj);
/* Checks that v is a mapping whose keys are distinct strings (a free-form map). */
int sy__yaml_check_free_map(sy__yaml_walk_t *w, yaml_node_t *v);

/* Generic field parsers (sy__yaml_field_fn), storing at obj + f->off:
 * p_uint an `unsigned` and p_size a `size_t`, each an integer in [f->min, f->max];
 * p_bool an `int`, 1 or 0, by sy__yaml_get_bool;
 * p_str a new copy of a non-empty string (`char *`, any old value freed);
 * p_struct walks a nested mapping by table f->sub into the struct at obj + f->off. */
int sy__yaml_p_uint(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__yaml_p_size(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__yaml_p_bool(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__yaml_p_str(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__yaml_p_struct(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);

#endif
