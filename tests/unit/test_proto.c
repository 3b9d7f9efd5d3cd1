/*
 * test_proto.c — the event contract: proto/events.def (what the C code is built
 * from) and proto/EVENTS.md (what readers and dashboards read) list the same
 * fields, in the same order, with the same types and event types; every field of
 * the seed article's schema (DESIGN.md) is there; names are unique snake_case.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/events.h"
#include "tests/unit/check.h"

static const char *const seed_fields[] = {
    "trace_id", "session_id", "user_id", "tenant_id", "task_type", "task_id", "input_hash",
    "prompt_version", "model_id", "model_version", "retrieval_ids", "knowledge_version",
    "output_id", "output_tokens", "client_latency_ms", "server_latency_ms", "feedback_type",
    "feedback_value", "outcome_metric_name", "outcome_metric_value", "redaction_flags",
    "consent_scope", "timestamp", "country",
    /* and what DESIGN.md adds */
    "experiment", "variant", "propensity", "event_type", "schema_version", "router_instance",
    "event_id", NULL};

static const char *const type_names[] = {"str", "int", "real", "bool", "list", "time"};

static unsigned applies_mask(const char *text) {
  static const struct {
    const char *name;
    unsigned bit;
  } names[] = {{"all", SY_EV_ALL}, {"req", SY_EV_REQ},       {"fb", SY_EV_FB},
               {"out", SY_EV_OUT}, {"shadow", SY_EV_SHADOW}, {"decision", SY_EV_DECISION}};
  unsigned mask = 0;
  char buf[128];
  snprintf(buf, sizeof(buf), "%s", text);
  for (char *tok = strtok(buf, ", "); tok != NULL; tok = strtok(NULL, ", ")) {
    unsigned bit = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
      if (strcmp(tok, names[i].name) == 0)
        bit = names[i].bit;
    if (bit == 0)
      return 0; /* unknown word: no mask matches */
    mask |= bit;
  }
  return mask;
}

/* Trims spaces and backticks in place. */
static char *trim(char *s) {
  while (*s == ' ' || *s == '`')
    s++;
  char *e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '`' || e[-1] == '\n'))
    *--e = '\0';
  return s;
}

static void test_doc_matches_code(void) {
  FILE *f = fopen("proto/EVENTS.md", "r");
  CHECK_MSG(f != NULL, "proto/EVENTS.md not readable (run from the project root)");
  if (f == NULL)
    return;
  char line[1024];
  int row = 0;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, "| `", 3) != 0)
      continue;
    /* | `name` | type | carried by | meaning | — split on the first four bars. */
    char *cols[4] = {0};
    char *p = line + 1;
    for (int i = 0; i < 3 && p != NULL; i++) {
      char *bar = strchr(p, '|');
      if (bar == NULL)
        break;
      *bar = '\0';
      cols[i] = trim(p);
      p = bar + 1;
    }
    CHECK_MSG(row < SY_EF_COUNT, "EVENTS.md has more fields than events.def");
    if (row >= SY_EF_COUNT || cols[2] == NULL)
      break;
    const sy_event_field_info_t *fi = &sy_event_fields[row];
    CHECK_MSG(strcmp(cols[0], fi->name) == 0, "row %d: EVENTS.md says %s, the code %s", row,
              cols[0], fi->name);
    CHECK_MSG(strcmp(cols[1], type_names[fi->type]) == 0, "%s: type %s in EVENTS.md, %s in code",
              fi->name, cols[1], type_names[fi->type]);
    CHECK_MSG(applies_mask(cols[2]) == fi->applies, "%s: carried by '%s' in EVENTS.md, mask %u",
              fi->name, cols[2], fi->applies);
    row++;
  }
  fclose(f);
  CHECK_MSG(row == SY_EF_COUNT, "EVENTS.md lists %d fields, events.def %d", row, SY_EF_COUNT);
}

static void test_seed_fields_present(void) {
  for (int i = 0; seed_fields[i] != NULL; i++)
    CHECK_MSG(sy_event_field_index(seed_fields[i]) >= 0, "seed field %s missing", seed_fields[i]);
}

static void test_names(void) {
  for (int i = 0; i < SY_EF_COUNT; i++) {
    const char *n = sy_event_fields[i].name;
    int ok = n[0] >= 'a' && n[0] <= 'z';
    for (const char *c = n; *c; c++)
      ok &= (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
    CHECK_MSG(ok, "field name %s is not snake_case", n);
    CHECK_MSG(sy_event_field_index(n) == i, "field %s listed twice", n);
    CHECK_MSG(sy_event_fields[i].applies != 0 && sy_event_fields[i].doc[0] != '\0',
              "field %s has no event type or no description", n);
  }
  CHECK(sy_event_field_index("no_such_field") == -1);
  CHECK(SY_EVENT_SCHEMA_VERSION == 5);
}

int main(void) {
  test_doc_matches_code();
  test_seed_fields_present();
  test_names();
  return CHECK_DONE();
}
