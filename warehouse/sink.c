/*
 * sink.c — opening a sink by its URL and making sure its tables exist (sink.h).
 */
#include "warehouse/sink.h"

#include <stdio.h>
#include <string.h>

int sy_wh_sink_scheme_ok(const char *to) {
  return to != NULL && ((strncmp(to, "sqlite:", 7) == 0 && to[7] != '\0') ||
                        strncmp(to, "postgresql://", 13) == 0 ||
                        strncmp(to, "postgres://", 11) == 0);
}

/* Creates what is missing and records the schema version, in one transaction. */
static int ensure_schema(sy_wh_sink_t *s, char *err, size_t cap) {
  char ver[16];
  snprintf(ver, sizeof ver, "%d", SY_WH_SCHEMA_VERSION);
  sy_wh_val_t kv[2] = {{SY_WH_TEXT, "warehouse_schema_version", 0, 0}, {SY_WH_TEXT, ver, 0, 0}};
  if (s->ops->begin(s, err, cap) < 0)
    return -1;
  if (s->ops->exec_raw(s, sy_wh_ddl(s->dialect), err, cap) < 0 ||
      s->ops->exec(s, SY_WH_META_SET, kv, 2, err, cap) < 0 || s->ops->commit(s, err, cap) < 0) {
    s->ops->rollback(s);
    return -1;
  }
  return 0;
}

sy_wh_sink_t *sy_wh_sink_open(const char *to, char *err, size_t cap) {
  sy_wh_sink_t *s = NULL;
  if (to != NULL && strncmp(to, "sqlite:", 7) == 0 && to[7] != '\0')
    s = sy__wh_sqlite_open(to + 7, err, cap);
  else if (sy_wh_sink_scheme_ok(to))
    s = sy__wh_pg_open(to, err, cap);
  else {
    snprintf(err, cap, "--to: unknown sink (sqlite:PATH or postgresql://...)");
    return NULL;
  }
  if (s != NULL && ensure_schema(s, err, cap) < 0) {
    s->ops->close(s);
    return NULL;
  }
  return s;
}
