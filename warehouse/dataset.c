/*
 * dataset.c — `switchyard dataset build` (dataset.h): selects `trace` rows with the filter
 * of dataset_filter.h, in the order ts_ms, trace_id, writes each as one canonical JSON line
 * (cjson.h) while hashing the bytes with SHA-256, then writes the manifest: the filter as
 * given and as resolved, the query and its parameters, the row count and hash, the config
 * hashes and variant versions the rows carry. Nothing in either file depends on the clock,
 * the machine or the run, so building the same manifest again gives the same bytes.
 *
 * A filter without `until` is pinned before the rows are read: until becomes the largest
 * selected ts_ms + 1, and the manifest records the pinned filter, so that rows exported
 * later do not enter a rebuild. Rows that change afterwards (a late outcome or feedback
 * joined into a trace already in the dataset) do change a rebuild: it then writes the new
 * files and exits 1, saying that the hash no longer matches.
 */
#include "warehouse/dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "warehouse/cjson.h"
#include "warehouse/dataset_filter.h"
#include "warehouse/wh_read.h"

#define DS_FORMAT "switchyard-dataset/1"

static const char usage_ds[] =
    "usage: switchyard dataset build --from sqlite:FILE --to DIR [--where FILTER]\n"
    "       switchyard dataset build --manifest DIR/manifest.json --to DIR2 [--from URL]\n"
    "\n"
    "Writes DIR/rows.jsonl (one trace row per line, ordered by ts_ms then trace_id, keys\n"
    "sorted) and DIR/manifest.json (the filter, the query, the row count, the SHA-256 of\n"
    "rows.jsonl, the config hashes and variant versions involved). Building from a\n"
    "manifest again gives byte-identical files, or exits 1 if the warehouse's rows changed.\n"
    "DIR is created if missing (its parent must exist). Sources: sqlite:FILE or\n"
    "postgresql://USER@HOST/DB (password from PGPASSWORD or ~/.pgpass).\n"
    "\n"
    "FILTER: comma-separated KEY=VALUE, each key at most once:\n"
    "  experiment=ID  variant=ID  tenant=ID\n"
    "  since=T  until=T        T: ms since the epoch, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC);\n"
    "                          since inclusive, until exclusive (pinned when not given)\n"
    "  outcome=present|missing|any\n"
    "\n"
    "example:\n"
    "  switchyard dataset build --from sqlite:warehouse.db --to ds/chat-a \\\n"
    "      --where experiment=chat,variant=a,since=2026-12-01,outcome=present\n";

/* The columns a dataset row carries: the trace table's, less updated_ms (when the exporter
 * last touched the row says nothing about the data and would change with a re-export). */
static const char *const columns[] = {
    "trace_id",          "experiment",      "variant",       "variant_version",
    "config_hash",       "prompt_version",  "model_id",      "model_version",
    "task_type",         "task_id",         "tenant_id",     "user_id",
    "session_id",        "consent_scope",   "country",       "ts_ms",
    "propensity",        "status",          "server_latency_ms", "input_tokens",
    "output_tokens",     "outcome_metric",  "outcome_value", "outcome_missing",
    "outcome_ts_ms",     "feedback",        "feedback_n",    "feedback_comment",
    "shadow",            "request_event_id"};
#define NCOLS (sizeof columns / sizeof columns[0])

typedef struct ds_build_s {
  const char *from, *where, *to;
  sy_ds_filter_t f;
  const char *expect_sha; /* rebuild: the manifest's */
  json_int_t expect_rows;
} ds_build_t;

/* What the rows carry, for the manifest. */
typedef struct ds_stats_s {
  json_int_t rows, no_config_hash;
  json_t *config_hashes;    /* hash -> rows */
  json_t *variant_versions; /* experiment -> variant -> version -> rows */
} ds_stats_t;

static void bump(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  json_object_set_new(obj, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

static json_t *child(json_t *obj, const char *key) {
  json_t *c = json_object_get(obj, key);
  if (c == NULL) {
    c = json_object();
    json_object_set_new(obj, key, c);
  }
  return c;
}

/* The current row as a JSON object; the JSON-text columns embedded when they parse. */
static json_t *row_json(sy_whr_t *w) {
  json_t *o = json_object();
  for (size_t i = 0; i < NCOLS; i++) {
    json_t *v;
    switch (sy_whr_type(w, (int)i)) {
    case SY_WHR_INT:
      v = json_integer(sy_whr_int(w, (int)i));
      break;
    case SY_WHR_REAL:
      v = json_real(sy_whr_real(w, (int)i));
      break;
    case SY_WHR_TEXT: {
      const char *s = sy_whr_text(w, (int)i);
      v = NULL;
      if (strcmp(columns[i], "feedback") == 0 || strcmp(columns[i], "shadow") == 0)
        v = json_loads(s, JSON_DECODE_ANY, NULL);
      if (v == NULL)
        v = json_stringn_nocheck(s, strlen(s));
      break;
    }
    default:
      v = json_null();
    }
    json_object_set_new(o, columns[i], v ? v : json_null());
  }
  return o;
}

static void note_row(sy_whr_t *w, ds_stats_t *st) {
  st->rows++;
  const char *h = sy_whr_text(w, 4);
  if (h == NULL)
    st->no_config_hash++;
  else
    bump(st->config_hashes, h);
  const char *e = sy_whr_text(w, 1), *v = sy_whr_text(w, 2), *ver = sy_whr_text(w, 3);
  bump(child(child(st->variant_versions, e ? e : ""), v ? v : ""), ver ? ver : "");
}

/* Writes buf to path through path.tmp and a rename. */
static int write_file(const char *path, const char *buf, size_t len, char *err, size_t errlen) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0 || rename(tmp, path) != 0) {
    snprintf(err, errlen, "%.900s: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

/* Pins an open until to the largest selected ts_ms + 1 (no rows: left open). */
static int pin_until(sy_whr_t *w, sy_ds_filter_t *f, char *err, size_t errlen) {
  if (f->has_until)
    return 0;
  char cond[1024], sql[1200];
  sy_whr_param_t p[SY_DS_MAX_PARAMS];
  size_t np = sy_ds_filter_sql(f, cond, sizeof cond, p);
  snprintf(sql, sizeof sql, "SELECT MAX(ts_ms) FROM trace WHERE %s", cond);
  if (sy_whr_query(w, sql, p, np, err, errlen) < 0 || sy_whr_step(w, err, errlen) < 0)
    return -1;
  if (sy_whr_type(w, 0) != SY_WHR_NULL) {
    f->has_until = 1;
    f->until_ms = sy_whr_int(w, 0) + 1;
  }
  return 0;
}

/* Streams the rows into dir/rows.jsonl; the hex SHA-256 into sha. */
static int write_rows(sy_whr_t *w, const char *sql, const sy_whr_param_t *p, size_t np,
                      const char *to, ds_stats_t *st, char sha[65], char *err, size_t errlen) {
  char path[4096], tmp[4200];
  snprintf(path, sizeof path, "%s/rows.jsonl", to);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  if (sy_whr_query(w, sql, p, np, err, errlen) < 0)
    return -1;
  FILE *f = fopen(tmp, "wb");
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  sy_cjson_buf_t b = {0};
  int rc = f && md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? 0 : -1;
  if (rc < 0)
    snprintf(err, errlen, "%.900s: %s", tmp, f ? "sha256 unavailable" : strerror(errno));
  int more;
  while (rc == 0 && (more = sy_whr_step(w, err, errlen)) != 0) {
    if (more < 0) {
      rc = -1;
      break;
    }
    json_t *row = row_json(w);
    b.len = 0;
    note_row(w, st);
    if (sy_cjson_dump(&b, row, 0) < 0 || sy_cjson_raw(&b, "\n", 1) < 0 ||
        fwrite(b.p, 1, b.len, f) != b.len || EVP_DigestUpdate(md, b.p, b.len) != 1) {
      snprintf(err, errlen, "%.900s: write failed", tmp);
      rc = -1;
    }
    json_decref(row);
  }
  unsigned char dg[32];
  unsigned dlen = 0;
  if (rc == 0 && EVP_DigestFinal_ex(md, dg, &dlen) == 1)
    for (unsigned i = 0; i < dlen; i++)
      snprintf(sha + 2 * i, 3, "%02x", dg[i]);
  if (f != NULL && fclose(f) != 0 && rc == 0) {
    snprintf(err, errlen, "%.900s: %s", tmp, strerror(errno));
    rc = -1;
  }
  if (rc == 0 && rename(tmp, path) != 0) {
    snprintf(err, errlen, "%.900s: %s", path, strerror(errno));
    rc = -1;
  }
  EVP_MD_CTX_free(md);
  free(b.p);
  return rc;
}

static json_t *params_json(const sy_whr_param_t *p, size_t np) {
  json_t *a = json_array();
  for (size_t i = 0; i < np; i++)
    json_array_append_new(a, p[i].is_int ? json_integer(p[i].i) : json_string(p[i].s));
  return a;
}

static int write_manifest(const ds_build_t *bd, const char *schema, const char *sql,
                          const sy_whr_param_t *p, size_t np, ds_stats_t *st,
                          const char *sha, char *err, size_t errlen) {
  char canon[1024], path[4096];
  sy_ds_filter_canonical(&bd->f, canon, sizeof canon);
  json_t *cols = json_array();
  for (size_t i = 0; i < NCOLS; i++)
    json_array_append_new(cols, json_string(columns[i]));
  char from[1024];
  sy_whr_redact_url(bd->from, from, sizeof from);
  json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:I,s:s,s:s,s:o,s:I,s:o,s:s}", "format",
                        DS_FORMAT, "from", from, "where", bd->where, "filter", canon,
                        "query", sql, "query_params", params_json(p, np), "columns", cols,
                        "row_count", st->rows, "rows_file", "rows.jsonl", "rows_sha256", sha,
                        "config_hashes", json_incref(st->config_hashes),
                        "rows_without_config_hash", st->no_config_hash, "variant_versions",
                        json_incref(st->variant_versions), "warehouse_schema_version", schema);
  sy_cjson_buf_t b = {0};
  int rc = m && sy_cjson_dump(&b, m, 2) == 0 && sy_cjson_raw(&b, "\n", 1) == 0 ? 0 : -1;
  snprintf(path, sizeof path, "%s/manifest.json", bd->to);
  if (rc < 0)
    snprintf(err, errlen, "manifest: out of memory");
  else
    rc = write_file(path, b.p, b.len, err, errlen);
  free(b.p);
  json_decref(m);
  return rc;
}

/* Builds a dataset; returns the exit status (dataset.h). */
static int build(ds_build_t *bd) {
  char err[1024], schema[64], cond[1024], sql[2048], sha[65] = "";
  sy_whr_t *w = NULL;
  if (sy_whr_open(bd->from, &w, err, sizeof err) < 0) {
    fprintf(stderr, "switchyard dataset: %s\n", err);
    return 2;
  }
  sy_whr_schema_version(w, schema, sizeof schema);
  if (mkdir(bd->to, 0755) < 0 && errno != EEXIST) {
    fprintf(stderr, "switchyard dataset: --to %s: %s\n", bd->to, strerror(errno));
    sy_whr_close(w);
    return 1;
  }
  ds_stats_t st = {0, 0, json_object(), json_object()};
  int rc = 1;
  if (pin_until(w, &bd->f, err, sizeof err) < 0)
    goto fail;
  sy_whr_param_t p[SY_DS_MAX_PARAMS];
  size_t np = sy_ds_filter_sql(&bd->f, cond, sizeof cond, p);
  int off = snprintf(sql, sizeof sql, "SELECT ");
  for (size_t i = 0; i < NCOLS; i++)
    off += snprintf(sql + off, sizeof sql - (size_t)off, "%s%s", i ? ", " : "", columns[i]);
  snprintf(sql + off, sizeof sql - (size_t)off, " FROM trace WHERE %s ORDER BY ts_ms, trace_id",
           cond);
  if (write_rows(w, sql, p, np, bd->to, &st, sha, err, sizeof err) < 0 ||
      write_manifest(bd, schema, sql, p, np, &st, sha, err, sizeof err) < 0)
    goto fail;
  rc = 0;
  if (bd->expect_sha != NULL &&
      (strcmp(bd->expect_sha, sha) != 0 || bd->expect_rows != st.rows)) {
    fprintf(stderr,
            "switchyard dataset: the rebuilt rows differ from the manifest's (%lld rows, "
            "sha256 %s; the manifest has %lld rows, sha256 %s): the warehouse changed since\n",
            (long long)st.rows, sha, (long long)bd->expect_rows, bd->expect_sha);
    rc = 1;
  } else {
    printf("%s: %lld rows, sha256 %s\n", bd->to, (long long)st.rows, sha);
  }
  goto done;
fail:
  fprintf(stderr, "switchyard dataset: %s\n", err);
done:
  json_decref(st.config_hashes);
  json_decref(st.variant_versions);
  sy_whr_close(w);
  return rc;
}

/* Fills bd from a manifest (its from unless from_flag, its where and resolved filter). */
static int from_manifest(const char *path, const char *from_flag, ds_build_t *bd,
                         json_t **keep) {
  json_error_t je;
  json_t *m = json_load_file(path, 0, &je);
  if (m == NULL) {
    fprintf(stderr, "switchyard dataset: --manifest %s: %s (line %d)\n", path, je.text,
            je.line);
    return 2;
  }
  *keep = m;
  const char *fmt = json_string_value(json_object_get(m, "format"));
  const char *from = json_string_value(json_object_get(m, "from"));
  const char *where = json_string_value(json_object_get(m, "where"));
  const char *filter = json_string_value(json_object_get(m, "filter"));
  const char *sha = json_string_value(json_object_get(m, "rows_sha256"));
  json_t *rows = json_object_get(m, "row_count");
  if (fmt == NULL || strcmp(fmt, DS_FORMAT) != 0 || from == NULL || where == NULL ||
      filter == NULL || sha == NULL || !json_is_integer(rows)) {
    fprintf(stderr,
            "switchyard dataset: --manifest %s: not a %s manifest (format, from, where, "
            "filter, rows_sha256 and row_count are required)\n",
            path, DS_FORMAT);
    return 2;
  }
  char err[512];
  if (sy_ds_filter_parse(filter, &bd->f, err, sizeof err) < 0) {
    fprintf(stderr, "switchyard dataset: --manifest %s: filter: %s\n", path, err);
    return 2;
  }
  bd->from = from_flag ? from_flag : from;
  bd->where = where;
  bd->expect_sha = sha;
  bd->expect_rows = json_integer_value(rows);
  return 0;
}

/* The command (dataset.h). */
int sy_dataset_main(int argc, char **argv) {
  if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
    fputs(usage_ds, stdout);
    return 0;
  }
  if (argc < 1 || strcmp(argv[0], "build") != 0) {
    fprintf(stderr, "switchyard dataset: expected `build`\n\n%s", usage_ds);
    return 2;
  }
  const char *from = NULL, *to = NULL, *where = NULL, *manifest = NULL;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
      fputs(usage_ds, stdout);
      return 0;
    }
    const char **dst = strcmp(s, "--from") == 0       ? &from
                       : strcmp(s, "--to") == 0       ? &to
                       : strcmp(s, "--where") == 0    ? &where
                       : strcmp(s, "--manifest") == 0 ? &manifest
                                                      : NULL;
    if (dst == NULL || i + 1 >= argc) {
      fprintf(stderr, "switchyard dataset: %s '%s'\n\n%s",
              dst ? "a value is needed after" : "unknown argument", s, usage_ds);
      return 2;
    }
    *dst = argv[++i];
  }
  if (to == NULL || (from == NULL && manifest == NULL)) {
    fprintf(stderr, "switchyard dataset: %s is required\n\n%s",
            to == NULL ? "--to DIR" : "--from sqlite:FILE (or --manifest FILE)", usage_ds);
    return 2;
  }
  if (manifest != NULL && where != NULL) {
    fprintf(stderr, "switchyard dataset: --where cannot be used with --manifest (the "
                    "manifest's filter is rebuilt)\n");
    return 2;
  }
  ds_build_t bd = {.from = from, .where = where ? where : "", .to = to};
  json_t *keep = NULL;
  int rc;
  if (manifest != NULL) {
    rc = from_manifest(manifest, from, &bd, &keep);
  } else {
    char err[512];
    rc = sy_ds_filter_parse(bd.where, &bd.f, err, sizeof err) < 0 ? 2 : 0;
    if (rc != 0)
      fprintf(stderr, "switchyard dataset: %s\n", err);
  }
  if (rc == 0)
    rc = build(&bd);
  json_decref(keep);
  return rc;
}
