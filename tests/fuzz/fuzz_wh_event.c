/*
 * fuzz_wh_event.c — libFuzzer target for the warehouse's reading of a stream entry
 * (warehouse/event.h): either layout, the consent rules, the events row's JSON.
 *
 * The input is an entry: when it starts with "5|" it is the value of one field `e`
 * (schema 5), decoded with the ref definition "chat|a|1|p|m|t"; otherwise its lines
 * are NAME=VALUE fields (schema 4's layout; a line without '=' is a name with an
 * empty value). The target aborts when:
 *   - an accepted event has a type outside request..decision, or a contract field
 *     whose value is empty (an empty value is no value);
 *   - after the consent rules, a feedback_comment is left without consent_scope
 *     content, or a user_id / session_id with consent_scope none;
 *   - the JSON is not a JSON object (jansson reads it back) or disagrees with the
 *     fields left: one member per field with a value, that value, nothing else.
 * Build with libFuzzer: tests/fuzz/run; without it: meson test --suite fuzz.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tests/fuzz/fuzz_check.h"
#include "warehouse/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAXF = 64 };

static void check_event(sy_wh_event_t *ev) {
  REQUIRE(ev->type >= 0 && ev->type <= 4);
  for (int k = 0; k < SY_EF_COUNT; k++)
    REQUIRE(ev->f[k] == NULL || ev->f[k][0] != '\0');
  sy_wh_event_consent(ev);
  const char *cs = ev->f[SY_EF_consent_scope];
  if (cs == NULL || strcmp(cs, "content") != 0)
    REQUIRE(ev->f[SY_EF_feedback_comment] == NULL);
  if (cs != NULL && strcmp(cs, "none") == 0)
    REQUIRE(ev->f[SY_EF_user_id] == NULL && ev->f[SY_EF_session_id] == NULL);
  char *buf = NULL;
  size_t cap = 0;
  long n = sy_wh_event_json(ev, &buf, &cap);
  REQUIRE(n > 0 && (size_t)n == strlen(buf));
  json_t *j = json_loads(buf, JSON_ALLOW_NUL, NULL);
  REQUIRE(json_is_object(j));
  size_t kept = 0;
  for (size_t i = 0; i < ev->n; i++) {
    if (ev->value[i] == NULL)
      continue;
    kept++;
    json_t *v = json_object_get(j, ev->name[i]);
    REQUIRE(json_is_string(v) && strcmp(json_string_value(v), ev->value[i]) == 0);
  }
  REQUIRE(json_object_size(j) == kept);
  json_decref(j);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *in = malloc(size + 1);
  if (in == NULL)
    return 0;
  memcpy(in, data, size);
  in[size] = '\0';
  const char *names[MAXF], *values[MAXF];
  size_t lens[MAXF], nf = 0;
  const char *def = NULL;
  if (size >= 2 && in[0] == '5' && in[1] == '|') {
    names[nf] = "e", values[nf] = in, lens[nf++] = size;
    def = "chat|a|1|p|m|t";
  } else {
    for (char *save = NULL, *line = strtok_r(in, "\n", &save); line && nf < MAXF;
         line = strtok_r(NULL, "\n", &save)) {
      char *eq = strchr(line, '=');
      if (eq != NULL)
        *eq = '\0';
      names[nf] = line;
      values[nf] = eq ? eq + 1 : "";
      lens[nf] = strlen(values[nf]);
      nf++;
    }
  }
  sy_wh_event_t ev;
  memset(&ev, 0, sizeof ev);
  char err[128];
  if (sy_wh_event_parse(&ev, names, values, lens, nf, "1-0", def, err, sizeof err) == 0)
    check_event(&ev);
  sy_wh_event_free(&ev);
  free(in);
  return 0;
}
