/*
 * fuzz_rewrite.c — libFuzzer target for the splice rewrite (router/rewrite.c) and
 * the JSON scanner under it (router/json_scan.c).
 *
 * Each input is rewritten with three fixed variants. The target aborts when:
 *   - the scanner and jansson disagree on whether the input is JSON, outside the
 *     documented differences (numbers beyond int64/double and keys with \u0000,
 *     which we accept; a raw NUL after a number or literal, which jansson skips);
 *   - a rewrite succeeds but its output is not valid JSON, or (when jansson can
 *     read the input) not an object with the variant's model, its body fields and,
 *     if there are chat messages, the prompt in the first system message;
 *   - rewriting the output again changes it (the rewrite is idempotent).
 * Fuzz it with tests/fuzz/run; meson builds it with tests/fuzz/driver.c and runs
 * the checked-in corpus as a regression test (suite `fuzz`).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "router/json_scan.h"
#include "router/rewrite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
  const char *model, *prompt, *fields;
  const char *want_model; /* the model the output must carry */
} fuzz_variant_t;

static const fuzz_variant_t variants[] = {
    {"fz-model", "Be \"brief\"\n\t\x01 \xc3\xa9", "{\"top_k\":5,\"filter\":{\"a\":[1,2.5]}}",
     "fz-model"},
    {"m\xc3\xa9\xf0\x9f\x98\x80", NULL, NULL, "m\xc3\xa9\xf0\x9f\x98\x80"},
    {"x", "P", "{\"model\":\"fm\",\"content\":null,\"k\\\"\":[]}", "fm"},
};

/* True if msg is an object whose "role" is exactly the string "system". */
static int is_system(const json_t *msg) {
  const json_t *role = json_object_get(msg, "role");
  return json_is_string(role) && json_string_length(role) == 6 &&
         memcmp(json_string_value(role), "system", 6) == 0;
}

/* The checks that need jansson to read the input: model, fields, system prompt. */
static void check_tree(const sy_variant_conf_t *v, const char *want_model, const char *out,
                       size_t outlen) {
  json_t *got = json_loadb(out, outlen, JSON_ALLOW_NUL, NULL);
  if (!json_is_object(got))
    abort();
  const char *model = json_string_value(json_object_get(got, "model"));
  if (model == NULL || strcmp(model, want_model) != 0)
    abort();
  const char *key;
  json_t *value;
  json_object_foreach(v->body_fields, key, value) {
    if (!json_equal(json_object_get(got, key), value))
      abort();
  }
  json_t *msgs = json_object_get(got, "messages");
  if (v->system_prompt != NULL && json_object_get(v->body_fields, "messages") == NULL && msgs) {
    size_t i = 0;
    while (i < json_array_size(msgs) && !is_system(json_array_get(msgs, i)))
      i++;
    const char *content = json_string_value(json_object_get(json_array_get(msgs, i), "content"));
    if (content == NULL || strcmp(content, v->system_prompt) != 0)
      abort();
  }
  json_decref(got);
}

/*
 * Rewrites the input with one variant and checks the result. is_json: 1 or 0 as
 * jansson judges the input (corrected for its NUL quirk), -1 where we differ from
 * it by design.
 */
static void run_variant(const fuzz_variant_t *fv, const char *in, size_t len, int is_json) {
  sy_variant_conf_t v;
  memset(&v, 0, sizeof v);
  v.model = (char *)fv->model;
  v.system_prompt = (char *)fv->prompt;
  v.body_fields = fv->fields ? json_loads(fv->fields, 0, NULL) : NULL;
  char *out = NULL, *again = NULL, err[256];
  size_t outlen = 0, againlen = 0;
  int rc = sy_rewrite_body(&v, in, len, &out, &outlen, err, sizeof err);
  int not_json = rc != 0 && strncmp(err, "request body is not valid JSON", 30) == 0;
  if (is_json >= 0 && not_json == is_json)
    abort(); /* the scanner and jansson disagree */
  if (rc == 0) {
    if (sy_json_validate(out, outlen, NULL, NULL) != 0)
      abort();
    if (is_json == 1)
      check_tree(&v, fv->want_model, out, outlen);
    if (sy_rewrite_body(&v, out, outlen, &again, &againlen, err, sizeof err) != 0 ||
        againlen != outlen || memcmp(again, out, outlen) != 0)
      abort();
  }
  free(out);
  free(again);
  json_decref(v.body_fields);
}

/* libFuzzer entry point: see the file comment. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  json_error_t je;
  /* JSON_DECODE_ANY: "not an object" is not "not JSON", for both sides. */
  json_t *j = json_loadb(in, size, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
  enum json_error_code code = json_error_code(&je);
  int is_json = j != NULL && memchr(in, '\0', size) == NULL; /* a raw NUL is never JSON */
  if (j == NULL && (code == json_error_numeric_overflow || code == json_error_null_byte_in_key))
    is_json = -1;
  json_decref(j);
  for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
    run_variant(&variants[i], in, size, is_json);
  return 0;
}
