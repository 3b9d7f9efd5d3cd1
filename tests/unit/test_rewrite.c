/*
 * test_rewrite.c — the request-body rewrite for a variant (model, system prompt,
 * retrieval fields), on hand-built sy_variant_conf_t values and hand-written
 * expectations. Outputs are checked byte for byte (only the changed values may
 * differ from the input) and by parsing them back. The scanner under the rewrite,
 * and the comparisons with jansson on random documents, are in test_json_scan.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "router/json_scan.h"
#include "router/rewrite.h"
#include "tests/unit/check.h"
#include "tests/unit/rewrite_expect.h"

static void test_model(void) {
  sy_variant_conf_t v = make_variant("model-b", NULL, NULL);
  CHECK(sy_rewrite_needs_body(&v));
  /* Replaced in place: the key keeps its position, the rest keeps its bytes
   * (the old jansson version re-serialised the body compact). */
  expect(&v, "{\"stream\": true, \"model\": \"model-a\", \"n\": 1}",
         "{\"stream\": true, \"model\": \"model-b\", \"n\": 1}", NULL);
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
  /* Inserted strings: UTF-8 kept, minimal escapes. The client's own strings keep
   * their escapes byte for byte (the old jansson version decoded \u00e9, the
   * surrogate pair and \/ on the way through). */
  expect(&v,
         "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":"
         "\"caf\\u00e9 \\ud83d\\ude00 tab\\t quote\\\" back\\\\ nul\\u0000 slash\\/ "
         "\xe6\x97\xa5\xe6\x9c\xac\"}]}",
         "{\"model\":\"m\xc3\xa9-\\\"q\\\"\",\"messages\":[{\"role\":\"system\",\"content\":"
         "\"R\xc3\xa9ponds \xe2\x9c\x93 \\\\ \\\"vite\\\"\\n\"},{\"role\":\"user\",\"content\":"
         "\"caf\\u00e9 \\ud83d\\ude00 tab\\t quote\\\" back\\\\ nul\\u0000 slash\\/ "
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

/* sy_rewrite_body_to: the rewrite written into the caller's room (the upstream
 * request's buffer, behind its head), asked for once with the exact size. */
typedef struct {
  unsigned calls;
  size_t asked;
  char buf[256];
  int fail;
} room_t;

static char *room(void *ctx, size_t n) {
  room_t *r = ctx;
  r->calls++;
  r->asked = n;
  if (r->fail || n + 8 > sizeof r->buf)
    return NULL;
  memset(r->buf, '#', sizeof r->buf);
  return r->buf + 4; /* a head before it; what follows must stay untouched */
}

static void test_into(void) {
  sy_variant_conf_t v = make_variant("model-b", "Be brief.", NULL);
  const char *in = "{\"model\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}";
  char *want = NULL, err[256] = "";
  size_t wantlen = 0, n = 0;
  CHECK(sy_rewrite_body(&v, in, strlen(in), &want, &wantlen, err, sizeof err) == 0);
  room_t r = {0};
  CHECK(sy_rewrite_body_to(&v, in, strlen(in), room, &r, &n, err, sizeof err) == 0);
  CHECK(r.calls == 1 && r.asked == wantlen && n == wantlen);
  CHECK(want != NULL && memcmp(r.buf + 4, want, wantlen) == 0);
  CHECK(r.buf[3] == '#' && r.buf[4 + wantlen] == '#');
  /* A refused body never asks for room. */
  room_t r2 = {0};
  CHECK(sy_rewrite_body_to(&v, "[1]", 3, room, &r2, &n, err, sizeof err) == -1);
  CHECK(r2.calls == 0 && strstr(err, "not a JSON object") != NULL);
  /* No room: out of memory. */
  room_t r3 = {.fail = 1};
  CHECK(sy_rewrite_body_to(&v, in, strlen(in), room, &r3, &n, err, sizeof err) == -1);
  CHECK(r3.calls == 1 && strcmp(err, "out of memory") == 0);
  free(want);
  drop_variant(&v);
}

/* ---- fidelity: only the changed values differ from the input ---- */

static void test_bytes_kept(void) {
  sy_variant_conf_t v = make_variant("m", NULL, NULL);
  /* Numbers are never converted: what the client sent is what the upstream gets,
   * even where jansson would have rounded (0.7) or refused (1e400, > int64). */
  expect(&v,
         "{\"t\":0.7,\"big\":1e400,\"n\":12345678901234567890123,\"z\":-0,\"e\":1E-7,"
         "\"model\":\"x\",\"neg\":-12345678901234567890123.5e-3}",
         "{\"t\":0.7,\"big\":1e400,\"n\":12345678901234567890123,\"z\":-0,\"e\":1E-7,"
         "\"model\":\"m\",\"neg\":-12345678901234567890123.5e-3}",
         NULL);
  /* Whitespace and escapes outside the replaced value stay byte for byte. */
  expect(
      &v,
      " {\r\n\t\"a\" : [ 1 , 2 ] ,\n \"model\"\t:\t\"old\" , \"s\":\"\\u00e9\\/\\ud83d\\ude00\" "
      "}\n",
      " {\r\n\t\"a\" : [ 1 , 2 ] ,\n \"model\"\t:\t\"m\" , \"s\":\"\\u00e9\\/\\ud83d\\ude00\" }\n",
      NULL);
  /* Appended members go right after the last value; an empty object gets no comma. */
  expect(&v, "{ \"a\" : 1 }", "{ \"a\" : 1,\"model\":\"m\" }", NULL);
  expect(&v, "{ }", "{\"model\":\"m\" }", NULL);
  expect(&v, "\n{}\n", "\n{\"model\":\"m\"}\n", NULL);
  drop_variant(&v);
}

static void test_duplicates(void) {
  /* Every duplicate is replaced, so whichever one the upstream reads is right. */
  sy_variant_conf_t v = make_variant("m", "P", "{\"top_k\":3}");
  expect(&v, "{\"model\":\"a\",\"x\":1,\"model\":\"b\",\"top_k\":1,\"top_k\":2}",
         "{\"model\":\"m\",\"x\":1,\"model\":\"m\",\"top_k\":3,\"top_k\":3}", NULL);
  expect(&v, "{\"messages\":[],\"messages\":[{\"role\":\"system\",\"content\":\"x\"}],\"model\":1}",
         "{\"messages\":[{\"role\":\"system\",\"content\":\"P\"}],\"messages\":[{\"role\":"
         "\"system\",\"content\":\"P\"}],\"model\":\"m\",\"top_k\":3}",
         NULL);
  /* Every "messages" must be an array (the old version looked only at the last). */
  expect(&v, "{\"messages\":\"hi\",\"messages\":[]}", NULL, "messages must be an array");
  expect(&v, "{\"messages\":[],\"messages\":7}", NULL, "messages must be an array");
  /* Duplicate roles: the last one decides, as in jansson; every content is replaced. */
  expect(&v, "{\"messages\":[{\"role\":\"system\",\"role\":\"user\"}]}",
         "{\"messages\":[{\"role\":\"system\",\"content\":\"P\"},{\"role\":\"system\",\"role\":"
         "\"user\"}],\"model\":\"m\",\"top_k\":3}",
         NULL);
  expect(&v, "{\"messages\":[{\"role\":\"user\",\"role\":\"system\",\"content\":1,\"content\":2}]}",
         "{\"messages\":[{\"role\":\"user\",\"role\":\"system\",\"content\":\"P\",\"content\":"
         "\"P\"}],\"model\":\"m\",\"top_k\":3}",
         NULL);
  drop_variant(&v);
}

static void test_messages_edges(void) {
  sy_variant_conf_t v = make_variant(NULL, "P", NULL);
  const char *sys = "{\"role\":\"system\",\"content\":\"P\"}";
  char want[256];
  expect(&v, "{\"messages\":[]}", "{\"messages\":[{\"role\":\"system\",\"content\":\"P\"}]}", NULL);
  snprintf(want, sizeof want, "{\"messages\":[%s ]}", sys);
  expect(&v, "{\"messages\":[ ]}", want, NULL);
  snprintf(want, sizeof want, "{\"messages\" : [%s,\n {\"role\":\"user\"} ] }", sys);
  expect(&v, "{\"messages\" : [\n {\"role\":\"user\"} ] }", want, NULL);
  /* Non-objects, and objects whose role is not exactly the string "system". */
  const char *others =
      "1,\"system\",null,[{\"role\":\"system\"}],{\"role\":\"System\"},"
      "{\"role\":\"system\\u0000\"},{\"role\":[\"system\"]},{\"Role\":\"system\"},{}";
  char in[512];
  snprintf(in, sizeof in, "{\"messages\":[%s]}", others);
  snprintf(want, sizeof want, "{\"messages\":[%s,%s]}", sys, others);
  expect(&v, in, want, NULL);
  /* The first system message counts even when it is not first; escapes decode. */
  expect(&v,
         "{\"messages\":[{\"role\":\"user\"},{\"content\":\"old\",\"role\":\"sys\\u0074em\"},"
         "{\"role\":\"system\",\"content\":\"second\"}]}",
         "{\"messages\":[{\"role\":\"user\"},{\"content\":\"P\",\"role\":\"sys\\u0074em\"},"
         "{\"role\":\"system\",\"content\":\"second\"}]}",
         NULL);
  expect(&v, "{\"messages\":[{\"\\u0072ole\":\"system\",\"conten\\u0074\":{\"a\":[1]}}]}",
         "{\"messages\":[{\"\\u0072ole\":\"system\",\"conten\\u0074\":\"P\"}]}", NULL);
  /* A system message without content gets one. */
  expect(&v, "{\"messages\":[{ \"role\" : \"system\" }]}",
         "{\"messages\":[{ \"role\" : \"system\",\"content\":\"P\" }]}", NULL);
  drop_variant(&v);
}

static void test_escaped_keys(void) {
  sy_variant_conf_t v = make_variant("m", "P", "{\"top_k\":3,\"to\\\"p\":\"\\u00fc\"}");
  /* Keys match on their decoded text; the key's own bytes are kept. */
  expect(&v, "{\"mod\\u0065l\":\"a\",\"\\u006dessages\":[],\"top\\u005fk\":1,\"to\\\"p\":0}",
         "{\"mod\\u0065l\":\"m\",\"\\u006dessages\":[{\"role\":\"system\",\"content\":\"P\"}],"
         "\"top\\u005fk\":3,\"to\\\"p\":\"\xc3\xbc\"}",
         NULL);
  /* Near misses are other keys: the variant appends its own. */
  expect(&v, "{\"Model\":1,\"model \":2,\"mod\\u0065\":3}",
         "{\"Model\":1,\"model \":2,\"mod\\u0065\":3,\"model\":\"m\",\"top_k\":3,"
         "\"to\\\"p\":\"\xc3\xbc\"}",
         NULL);
  drop_variant(&v);
}

static void test_clashes(void) {
  /* Body fields are applied last and win, as in the old version. */
  sy_variant_conf_t v = make_variant("m", "P", "{\"model\":\"fm\",\"messages\":[],\"n\":2}");
  expect(&v, "{\"model\":\"a\",\"messages\":[{\"role\":\"user\"}],\"n\":1}",
         "{\"model\":\"fm\",\"messages\":[],\"n\":2}", NULL);
  expect(&v, "{}", "{\"model\":\"fm\",\"messages\":[],\"n\":2}", NULL);
  expect(&v, "{\"messages\":\"x\"}", NULL, "messages must be an array");
  drop_variant(&v);
  /* More than 64 body fields: presence is looked up by a second walk. */
  char fields[2048] = "{";
  for (int i = 0; i < 70; i++)
    snprintf(fields + strlen(fields), sizeof fields - strlen(fields), "%s\"k%d\":%d", i ? "," : "",
             i, i);
  strcat(fields, "}");
  sy_variant_conf_t many = make_variant(NULL, NULL, fields);
  char *out = NULL, err[128];
  size_t outlen = 0;
  const char *in = "{\"k66\":\"x\",\"k1\":\"y\"}";
  CHECK(sy_rewrite_body(&many, in, strlen(in), &out, &outlen, err, sizeof err) == 0);
  json_t *got = out ? json_loadb(out, outlen, 0, NULL) : NULL;
  CHECK(json_object_size(got) == 70);
  CHECK(json_integer_value(json_object_get(got, "k66")) == 66);
  CHECK_MSG(out != NULL && strncmp(out, "{\"k66\":66,\"k1\":1,\"k0\":0,\"k2\":2,", 31) == 0,
            "%.40s", out);
  json_decref(got);
  free(out);
  drop_variant(&many);
}

/* "{"a":" + n nested arrays (innermost holding `inner`) + "}". */
static char *nested(int n, const char *inner, size_t *len) {
  size_t cap = 2 * (size_t)n + 32;
  char *b = malloc(cap);
  size_t k = 0;
  memcpy(b, "{\"a\":", 5);
  k = 5;
  memset(b + k, '[', (size_t)n);
  k += (size_t)n;
  k += (size_t)snprintf(b + k, cap - k, "%s", inner);
  memset(b + k, ']', (size_t)n);
  k += (size_t)n;
  b[k++] = '}';
  *len = k;
  return b;
}

static void test_depth(void) {
  sy_variant_conf_t v = make_variant("m", NULL, NULL);
  /* A value's depth: containers around it + 1 (the object is 1, "a"'s value 2).
   * The limit is jansson's, so nothing the old version accepted is refused. */
  struct {
    int n;
    const char *inner;
    int ok;
  } cases[] = {{SY_JSON_MAX_DEPTH - 1, "", 1},
               {SY_JSON_MAX_DEPTH, "", 0},
               {SY_JSON_MAX_DEPTH - 2, "1", 1},
               {SY_JSON_MAX_DEPTH - 1, "1", 0},
               {SY_JSON_MAX_DEPTH - 2, "{}", 1},
               {SY_JSON_MAX_DEPTH - 1, "{}", 0},
               {100000, "", 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t len;
    char *b = nested(cases[i].n, cases[i].inner, &len);
    char *out = NULL, err[256] = "";
    size_t outlen = 0;
    int rc = sy_rewrite_body(&v, b, len, &out, &outlen, err, sizeof err);
    CHECK_MSG(rc == (cases[i].ok ? 0 : -1), "depth %d+%s: rc %d %s", cases[i].n, cases[i].inner, rc,
              err);
    CHECK(cases[i].ok || strstr(err, "nesting too deep") != NULL);
    json_t *j = json_loadb(b, len, 0, NULL);
    CHECK_MSG((j != NULL) == cases[i].ok, "jansson disagrees at depth %d+%s", cases[i].n,
              cases[i].inner);
    CHECK(!cases[i].ok ||
          (outlen == len + 12 && memcmp(out + outlen - 13, ",\"model\":\"m\"}", 13) == 0));
    json_decref(j);
    free(out);
    free(b);
  }
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
  test_into();
  test_bytes_kept();
  test_duplicates();
  test_messages_edges();
  test_escaped_keys();
  test_clashes();
  test_depth();
  return CHECK_DONE();
}
