/*
 * rewrite_expect.h — helpers shared by the rewrite's unit tests (test_rewrite.c,
 * test_json_scan.c): a hand-built variant, and expect(), which rewrites one body
 * and checks the result byte for byte or the error's text, counting one CHECK.
 * All static: each test program that includes it gets its own copy.
 */
#ifndef SY_TEST_REWRITE_EXPECT_H
#define SY_TEST_REWRITE_EXPECT_H

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "router/rewrite.h"
#include "tests/unit/check.h"

/* A variant with the given changes; body_fields is parsed from JSON text (or NULL). */
static sy_variant_conf_t make_variant(const char *model, const char *prompt, const char *fields) {
  sy_variant_conf_t v;
  memset(&v, 0, sizeof v);
  v.id = "v";
  v.version = "1";
  v.model = (char *)model;
  v.prompt_version = prompt ? "p1" : NULL;
  v.system_prompt = (char *)prompt;
  v.body_fields = fields ? json_loads(fields, 0, NULL) : NULL;
  return v;
}

static void drop_variant(sy_variant_conf_t *v) {
  json_decref(v->body_fields);
}

/*
 * Rewrites `in` with v and compares the result with `want` (NULL: expect an error
 * whose text contains `want_err`). Returns 1 if all matched.
 */
static int expect(const sy_variant_conf_t *v, const char *in, const char *want,
                  const char *want_err) {
  char *out = (char *)"sentinel";
  size_t outlen = 99;
  char err[256] = "";
  int rc = sy_rewrite_body(v, in, strlen(in), &out, &outlen, err, sizeof err);
  int ok;
  if (want != NULL) {
    ok = rc == 0 && out != NULL && outlen == strlen(want) && memcmp(out, want, outlen) == 0;
    CHECK_MSG(ok, "in %s\n  got  %.*s (rc %d, %s)\n  want %s", in, rc == 0 ? (int)outlen : 0,
              rc == 0 ? out : "", rc, err, want);
  } else {
    ok = rc == -1 && out == NULL && outlen == 0 && strstr(err, want_err) != NULL;
    CHECK_MSG(ok, "in %s: rc %d, err \"%s\", want error \"%s\"", in, rc, err, want_err);
  }
  if (rc == 0)
    free(out);
  return ok;
}

#endif
