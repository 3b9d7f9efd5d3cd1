/*
 * test_rewrite.c — the request-body rewrite for a variant (model, system prompt,
 * retrieval fields), on hand-built sy_variant_conf_t values. Outputs are checked
 * both byte-for-byte (compact, key order kept) and by parsing them back.
 */
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

static void test_model(void) {
  sy_variant_conf_t v = make_variant("model-b", NULL, NULL);
  CHECK(sy_rewrite_needs_body(&v));
  /* Replaced in place: the key keeps its position. */
  expect(&v, "{\"stream\": true, \"model\": \"model-a\", \"n\": 1}",
         "{\"stream\":true,\"model\":\"model-b\",\"n\":1}", NULL);
  expect(&v, "{\"messages\":[]}", "{\"messages\":[],\"model\":\"model-b\"}", NULL);
  expect(&v, "{}", "{\"model\":\"model-b\"}", NULL);
  drop_variant(&v);
}

static void test_system_prompt(void) {
  sy_variant_conf_t v = make_variant(NULL, "Be brief.", NULL);
  CHECK(sy_rewrite_needs_body(&v));
  /* The first system message is replaced; the others, and their order, stay. */
  expect(&v,
         "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
         "{\"role\":\"system\",\"content\":\"old\",\"name\":\"s\"},"
         "{\"role\":\"assistant\",\"content\":\"yo\"},"
         "{\"role\":\"system\",\"content\":\"second\"}],\"model\":\"m\"}",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
         "{\"role\":\"system\",\"content\":\"Be brief.\",\"name\":\"s\"},"
         "{\"role\":\"assistant\",\"content\":\"yo\"},"
         "{\"role\":\"system\",\"content\":\"second\"}],\"model\":\"m\"}",
         NULL);
  /* Absent: inserted at index 0. Non-object elements and odd roles are skipped. */
  expect(&v, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},3,{\"role\":7}]}",
         "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
         "{\"role\":\"user\",\"content\":\"hi\"},3,{\"role\":7}]}",
         NULL);
  expect(&v, "{\"messages\":[]}",
         "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"}]}", NULL);
  /* Structured content (an array of parts) is replaced by the prompt text. */
  expect(&v, "{\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"text\"}]}]}",
         "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"}]}", NULL);
  /* No messages (a /v1/completions body): nothing is created. */
  expect(&v, "{\"prompt\":\"x\",\"model\":\"m\"}", "{\"prompt\":\"x\",\"model\":\"m\"}", NULL);
  expect(&v, "{\"messages\":{\"role\":\"user\"}}", NULL, "messages must be an array");
  expect(&v, "{\"messages\":\"hi\"}", NULL, "messages must be an array");
  expect(&v, "{\"messages\":null}", NULL, "messages must be an array");
  drop_variant(&v);
}

static void test_not_an_object(void) {
  sy_variant_conf_t v = make_variant("m", NULL, NULL);
  expect(&v, "[1,2]", NULL, "request body is not a JSON object");
  expect(&v, "\"model\"", NULL, "not");
  expect(&v, "{\"model\":", NULL, "request body is not valid JSON");
  expect(&v, "", NULL, "request body is not valid JSON");
  expect(&v, "{} {}", NULL, "request body is not valid JSON");
  expect(&v, "{\"a\":1,}", NULL, "request body is not valid JSON");
  char err[128];
  char *out = NULL;
  size_t outlen = 0;
  /* Bytes after a NUL are part of the body: they must not be ignored. */
  CHECK(sy_rewrite_body(&v, "{}\0junk", 7, &out, &outlen, err, sizeof err) == -1);
  CHECK(out == NULL);
  /* A NULL err buffer is allowed. */
  CHECK(sy_rewrite_body(&v, "[]", 2, &out, &outlen, NULL, 0) == -1);
  drop_variant(&v);
}

static void test_body_fields(void) {
  sy_variant_conf_t v = make_variant(
      "model-b", "P",
      "{\"top_k\":5,\"index\":\"docs-v3\",\"filter\":{\"lang\":[\"en\",\"de\"],\"min\":0.5},"
      "\"rerank\":true,\"cutoff\":null}");
  CHECK(v.body_fields != NULL);
  expect(&v,
         "{\"model\":\"a\",\"top_k\":1,\"filter\":{\"old\":1},\"messages\":"
         "[{\"role\":\"user\",\"content\":\"q\"}]}",
         "{\"model\":\"model-b\",\"top_k\":5,\"filter\":{\"lang\":[\"en\",\"de\"],\"min\":0.5},"
         "\"messages\":[{\"role\":\"system\",\"content\":\"P\"},{\"role\":\"user\",\"content\":"
         "\"q\"}],\"index\":\"docs-v3\",\"rerank\":true,\"cutoff\":null}",
         NULL);
  /* The variant's own fields are left as they were: no change, no reference kept. */
  CHECK(json_object_size(v.body_fields) == 5);
  CHECK(json_integer_value(json_object_get(v.body_fields, "top_k")) == 5);
  CHECK(v.body_fields->refcount == 1);
  CHECK(json_object_get(v.body_fields, "filter")->refcount == 1);
  drop_variant(&v);

  sy_variant_conf_t only = make_variant(NULL, NULL, "{\"top_k\":3}");
  CHECK(sy_rewrite_needs_body(&only));
  expect(&only, "{\"q\":1}", "{\"q\":1,\"top_k\":3}", NULL);
  expect(&only, "[]", NULL, "request body is not a JSON object");
  drop_variant(&only);
}

static void test_no_change(void) {
  sy_variant_conf_t v = make_variant(NULL, NULL, NULL);
  CHECK(!sy_rewrite_needs_body(&v));
  sy_variant_conf_t empty = make_variant(NULL, NULL, "{}");
  CHECK(!sy_rewrite_needs_body(&empty));
  /* Nothing to change: the body is passed on byte for byte, even if not JSON. */
  expect(&v, "{ \"model\" : \"a\" }", "{ \"model\" : \"a\" }", NULL);
  expect(&v, "not json", "not json", NULL);
  expect(&v, "", "", NULL);
  drop_variant(&empty);
}

static void test_strings_survive(void) {
  sy_variant_conf_t v = make_variant("m\xc3\xa9-\"q\"", "R\xc3\xa9ponds \xe2\x9c\x93 \\ \"vite\"\n",
                                     NULL);
  /* Escapes in, UTF-8 and minimal escapes out: the same strings, byte for byte. */
  expect(&v,
         "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":"
         "\"caf\\u00e9 \\ud83d\\ude00 tab\\t quote\\\" back\\\\ nul\\u0000 slash\\/ "
         "\xe6\x97\xa5\xe6\x9c\xac\"}]}",
         "{\"model\":\"m\xc3\xa9-\\\"q\\\"\",\"messages\":[{\"role\":\"system\",\"content\":"
         "\"R\xc3\xa9ponds \xe2\x9c\x93 \\\\ \\\"vite\\\"\\n\"},{\"role\":\"user\",\"content\":"
         "\"caf\xc3\xa9 \xf0\x9f\x98\x80 tab\\t quote\\\" back\\\\ nul\\u0000 slash/ "
         "\xe6\x97\xa5\xe6\x9c\xac\"}]}",
         NULL);
  /* Invalid UTF-8 in the body is a JSON error, not passed through half-parsed. */
  expect(&v, "{\"model\":\"\xff\"}", NULL, "request body is not valid JSON");
  drop_variant(&v);
}

/* A ~500 KB chat body: many messages and one long string. */
static char *large_body(size_t *len) {
  size_t cap = 700000, n = 0;
  char *b = malloc(cap);
  n += (size_t)snprintf(b + n, cap - n, "{\"model\":\"a\",\"messages\":[");
  for (int i = 0; i < 2000; i++)
    n += (size_t)snprintf(b + n, cap - n, "%s{\"role\":\"user\",\"content\":\"message %d %0100d\"}",
                          i ? "," : "", i, i);
  n += (size_t)snprintf(b + n, cap - n, ",{\"role\":\"user\",\"content\":\"");
  memset(b + n, 'x', 250000);
  n += 250000;
  n += (size_t)snprintf(b + n, cap - n, "\"}]}");
  *len = n;
  return b;
}

static void test_large(void) {
  sy_variant_conf_t v = make_variant("model-b", "S", "{\"top_k\":2}");
  size_t len;
  char *body = large_body(&len);
  CHECK(len > 450000 && len < 600000);
  char *out = NULL, err[256] = "";
  size_t outlen = 0;
  CHECK(sy_rewrite_body(&v, body, len, &out, &outlen, err, sizeof err) == 0);
  json_t *got = out ? json_loadb(out, outlen, 0, NULL) : NULL;
  CHECK(got != NULL);
  json_t *msgs = json_object_get(got, "messages");
  CHECK(json_array_size(msgs) == 2002);
  CHECK(strcmp(json_string_value(json_object_get(json_array_get(msgs, 0), "content")), "S") == 0);
  CHECK(json_string_length(json_object_get(json_array_get(msgs, 2001), "content")) == 250000);
  CHECK(strcmp(json_string_value(json_object_get(got, "model")), "model-b") == 0);
  CHECK(json_integer_value(json_object_get(got, "top_k")) == 2);
  /* Compact output of a compact input: only the additions change the length. */
  size_t added = strlen("{\"role\":\"system\",\"content\":\"S\"},") + strlen(",\"top_k\":2") +
                 strlen("model-b") - strlen("a");
  CHECK_MSG(outlen == len + added, "outlen %zu, want %zu", outlen, len + added);
  json_decref(got);
  free(out);
  free(body);
  drop_variant(&v);
}

int main(void) {
  test_model();
  test_system_prompt();
  test_not_an_object();
  test_body_fields();
  test_no_change();
  test_strings_survive();
  test_large();
  return CHECK_DONE();
}
