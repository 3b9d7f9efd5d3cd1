/*
 * test_keys.c — the Redis key contract: proto/keys.h (what the C code builds names
 * with) and proto/KEYS.md (what dashboards and operators read) list the same keys.
 *
 * Every builder declared in keys.h and every SY_KEY_* name there is found by reading
 * the header, so a builder added without a case here fails; each is called with the
 * placeholders KEYS.md uses (E, V, S, T, I) and its output must be a key of KEYS.md's
 * table (the prefix sy:{E}: must be named in KEYS.md). Every key of that table must be
 * produced by some builder or name. Then the convention of keys.h: the length, or -1
 * and "" when the name does not fit or an argument is NULL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/keys.h"
#include "tests/unit/check.h"

#define MAX_NAMES 64
#define NAME_LEN 160

typedef struct names_s {
  size_t n;
  char s[MAX_NAMES][NAME_LEN];
} names_t;

static void names_add(names_t *l, const char *s, size_t len) {
  CHECK_MSG(l->n < MAX_NAMES && len < NAME_LEN, "too many or too long names (%.*s)", (int)len, s);
  if (l->n < MAX_NAMES && len < NAME_LEN)
    snprintf(l->s[l->n++], NAME_LEN, "%.*s", (int)len, s);
}

static int names_has(const names_t *l, const char *s) {
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->s[i], s) == 0)
      return 1;
  return 0;
}

/* Builder `name` called with the placeholders into out; -2 for a builder this test does
 * not know (a new one needs a case here). */
static int build(const char *name, char *out, size_t n) {
  static const char *const one[] = {"prefix",   "meta",       "segments", "pending",
                                    "state",    "audit",      "lease",    "versions",
                                    "exp_events", "exp_refs"};
  static int (*const one_fn[])(char *, size_t, const char *) = {
      sy_key_prefix, sy_key_meta,     sy_key_segments,   sy_key_pending, sy_key_state,
      sy_key_audit,  sy_key_lease,    sy_key_versions,   sy_key_exp_events, sy_key_exp_refs};
  const char *fam = strncmp(name, "sy_key_", 7) == 0 ? name + 7 : "";
  for (size_t i = 0; i < sizeof one / sizeof one[0]; i++)
    if (strcmp(fam, one[i]) == 0)
      return one_fn[i](out, n, "E");
  if (strcmp(fam, "variant") == 0)
    return sy_key_variant(out, n, "E", "V");
  if (strcmp(fam, "segment") == 0)
    return sy_key_segment(out, n, "E", "V", "S");
  if (strcmp(fam, "applied") == 0)
    return sy_key_applied(out, n, "E", "T");
  if (strcmp(fam, "trace") == 0)
    return sy_key_trace(out, n, "T");
  if (strcmp(fam, "journal") == 0)
    return sy_key_journal(out, n, "I");
  if (strcmp(fam, "exp_journal") == 0)
    return sy_key_exp_journal(out, n, "E", "I");
  if (strcmp(fam, "exp_trace_slice") == 0)
    return sy_key_exp_trace_slice(out, n, "E");
  return -2;
}

/* The value of SY_KEY_* string `name`, or NULL for one this test does not know. */
static const char *literal(const char *name) {
  static const struct {
    const char *name, *value;
  } lits[] = {{"SY_KEY_EXPERIMENTS", SY_KEY_EXPERIMENTS},
              {"SY_KEY_CONTROL", SY_KEY_CONTROL},
              {"SY_KEY_EVENTS", SY_KEY_EVENTS},
              {"SY_KEY_TRACE_PREFIX", SY_KEY_TRACE_PREFIX},
              {"SY_KEY_TRACE_SLICE", SY_KEY_TRACE_SLICE},
              {"SY_KEY_REFS", SY_KEY_REFS}};
  for (size_t i = 0; i < sizeof lits / sizeof lits[0]; i++)
    if (strcmp(name, lits[i].name) == 0)
      return lits[i].value;
  return NULL;
}

/* The builders ("sy_key_meta", ...) and string names ("SY_KEY_CONTROL", ...) of keys.h. */
static void read_header(names_t *builders, names_t *lits) {
  FILE *f = fopen("proto/keys.h", "r");
  CHECK_MSG(f != NULL, "proto/keys.h not readable (run from the project root)");
  char line[512];
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    const char *p = line;
    if (strncmp(p, "int sy_key_", 11) == 0) {
      p += 4;
      names_add(builders, p, strcspn(p, "("));
    } else if (strncmp(p, "#define SY_KEY_", 15) == 0) {
      p += 8;
      size_t len = strcspn(p, " ");
      if (strchr(p + len, '"') != NULL) /* a string, not SY_KEY_MAX */
        names_add(lits, p, len);
    }
  }
  if (f != NULL)
    fclose(f);
}

/* The first column of KEYS.md's key table, and the whole text (for the prefix). */
static char *read_doc(names_t *keys) {
  FILE *f = fopen("proto/KEYS.md", "r");
  CHECK_MSG(f != NULL, "proto/KEYS.md not readable (run from the project root)");
  if (f == NULL)
    return NULL;
  size_t cap = 1 << 16, len = 0;
  char *text = calloc(1, cap), line[4096];
  while (text != NULL && fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "| `sy:", 6) == 0) {
      const char *k = line + 3;
      names_add(keys, k, strcspn(k, "`"));
    }
    size_t l = strlen(line);
    if (len + l < cap) {
      memcpy(text + len, line, l + 1);
      len += l;
    }
  }
  fclose(f);
  return text;
}

static void test_doc_matches_code(void) {
  names_t builders = {0}, lits = {0}, doc = {0}, made = {0};
  read_header(&builders, &lits);
  char *text = read_doc(&doc);
  CHECK_MSG(builders.n >= 10 && lits.n >= 3 && doc.n >= 10,
            "read %zu builders, %zu names, %zu keys", builders.n, lits.n, doc.n);
  for (size_t i = 0; i < builders.n; i++) {
    char out[SY_KEY_MAX];
    int r = build(builders.s[i], out, sizeof out);
    CHECK_MSG(r != -2, "%s: a builder this test does not call", builders.s[i]);
    if (r == -2)
      continue;
    CHECK_MSG(r == (int)strlen(out) && r > 0, "%s returned %d for '%s'", builders.s[i], r, out);
    char ticked[SY_KEY_MAX + 2];
    snprintf(ticked, sizeof ticked, "`%s`", out);
    if (strcmp(builders.s[i], "sy_key_prefix") == 0) {
      CHECK_MSG(text != NULL && strstr(text, ticked) != NULL, "prefix %s not in KEYS.md", ticked);
    } else if (strcmp(builders.s[i], "sy_key_exp_trace_slice") == 0) {
      /* a prefix: the scripts add the rest */
      char rows[2][SY_KEY_MAX + 16];
      snprintf(rows[0], sizeof rows[0], "%.200sSLICE", out);
      snprintf(rows[1], sizeof rows[1], "%.200sSLICE:G:B", out);
      for (size_t k = 0; k < 2; k++) {
        CHECK_MSG(names_has(&doc, rows[k]), "KEYS.md's table lacks %s", rows[k]);
        names_add(&made, rows[k], strlen(rows[k]));
      }
      continue;
    } else
      CHECK_MSG(names_has(&doc, out), "%s builds %s, which KEYS.md's table lacks", builders.s[i],
                out);
    names_add(&made, out, strlen(out));
  }
  for (size_t i = 0; i < lits.n; i++) {
    const char *v = literal(lits.s[i]);
    CHECK_MSG(v != NULL, "%s: a name this test does not know", lits.s[i]);
    if (v == NULL)
      continue;
    if (strcmp(lits.s[i], "SY_KEY_TRACE_PREFIX") == 0) {
      char t[SY_KEY_MAX];
      sy_key_trace(t, sizeof t, "T");
      CHECK_MSG(strlen(t) == strlen(v) + 1 && strncmp(t, v, strlen(v)) == 0,
                "SY_KEY_TRACE_PREFIX %s is not sy_key_trace's %s", v, t);
      continue;
    }
    if (strcmp(lits.s[i], "SY_KEY_TRACE_SLICE") == 0) { /* a prefix: the scripts add the rest */
      static const char *const rows[] = {SY_KEY_TRACE_SLICE "SLICE", SY_KEY_TRACE_SLICE "SLICE:G:B"};
      for (size_t k = 0; k < 2; k++) {
        CHECK_MSG(names_has(&doc, rows[k]), "KEYS.md's table lacks %s", rows[k]);
        names_add(&made, rows[k], strlen(rows[k]));
      }
      continue;
    }
    CHECK_MSG(names_has(&doc, v), "%s is %s, which KEYS.md's table lacks", lits.s[i], v);
    names_add(&made, v, strlen(v));
  }
  for (size_t i = 0; i < doc.n; i++)
    CHECK_MSG(names_has(&made, doc.s[i]), "KEYS.md lists %s, which no builder of keys.h makes",
              doc.s[i]);
  free(text);
}

static void test_trace_slice(void) {
  CHECK(strtoull(SY_TRACE_SLICE_MS_STR, NULL, 10) == SY_TRACE_SLICE_MS);
  unsigned char b[16];
  CHECK(sy_trace_bin("0af7651916cd43dd8448eb211c80319c", b) == 0 && b[0] == 0x0a && b[15] == 0x9c);
  CHECK(sy_trace_bin("0af7651916cd43dd8448eb211c80319", b) == -1);
  CHECK(sy_trace_bin("0af7651916cd43dd8448eb211c80319cc", b) == -1);
  CHECK(sy_trace_bin("0af7651916cd43dd8448eb211c80319g", b) == -1);
  CHECK(sy_trace_bin(NULL, b) == -1);
}

static void test_convention(void) {
  char out[32];
  CHECK(sy_key_variant(out, sizeof out, "chat", "b") == 13 && strcmp(out, "sy:{chat}:v:b") == 0);
  CHECK(sy_key_state(out, 16, "chat") == 15 && strcmp(out, "sy:{chat}:state") == 0);
  CHECK(sy_key_state(out, 15, "chat") == -1 && out[0] == '\0');
  CHECK(sy_key_segment(out, sizeof out, "chat", "b", NULL) == -1 && out[0] == '\0');
  CHECK(sy_key_trace(out, sizeof out, NULL) == -1 && out[0] == '\0');
  CHECK(sy_key_meta(NULL, 0, "chat") == -1 && sy_key_meta(out, 0, "chat") == -1);
  CHECK(sy_key_prefix(out, sizeof out, "x.y-1") == 11 && strcmp(out, "sy:{x.y-1}:") == 0);
  /* the longest name from config ids (64) and a segment (64) fits SY_KEY_MAX */
  char id[65], big[SY_KEY_MAX];
  memset(id, 'a', 64);
  id[64] = '\0';
  CHECK(sy_key_segment(big, sizeof big, id, id, id) == 203);
}

/* The variant-hash fields the bandit gate's sample-ratio check reads (router/gate_run.c) and
 * the router writes (router/events.c) are documented in KEYS.md's fields table. */
static void test_srm_fields_documented(void) {
  static const char *const fields[] = {"`assigned`", "`p_sum`", "`p_sum_sq`", "`p_own`",
                                       "`requests`", "`iw`"};
  names_t doc = {0};
  char *text = read_doc(&doc);
  const char *table = text != NULL ? strstr(text, "## `sy:{E}:v:V` fields") : NULL;
  CHECK_MSG(table != NULL, "KEYS.md has no fields table for sy:{E}:v:V");
  for (size_t i = 0; table != NULL && i < sizeof fields / sizeof fields[0]; i++) {
    const char *at = strstr(table, fields[i]);
    CHECK_MSG(at != NULL && (at == table || at[-1] == '|' || at[-1] == ' '),
              "KEYS.md's fields table lacks %s", fields[i]);
  }
  free(text);
}

int main(void) {
  test_doc_matches_code();
  test_srm_fields_documented();
  test_convention();
  test_trace_slice();
  return CHECK_DONE();
}
