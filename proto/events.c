/*
 * events.c — the event contract's field table (see events.h and events.def).
 */
#include "proto/events.h"

#include <string.h>

const sy_event_field_info_t sy_event_fields[SY_EF_COUNT] = {
#define SY_EVENT_FIELD(name, type, applies, doc) {#name, SY_EV_##type, SY_EV_##applies, doc},
#include "proto/events.def"
#undef SY_EVENT_FIELD
};

int sy_event_field_index(const char *name) {
  for (int i = 0; i < SY_EF_COUNT; i++)
    if (strcmp(sy_event_fields[i].name, name) == 0)
      return i;
  return -1;
}
