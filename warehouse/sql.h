/*
 * sql.h — the warehouse's tables (proto/WAREHOUSE.md) and the fixed list of
 * statements the exporter runs against them, written once in the SQL that SQLite
 * (>= 3.24) and PostgreSQL (>= 9.5) share: `?` placeholders (the PostgreSQL sink
 * numbers them), INSERT ... ON CONFLICT. Only the DDL's types differ by dialect.
 * Pure: no I/O.
 */
#ifndef SY_WH_SQL_H
#define SY_WH_SQL_H

#include <stddef.h>

#define SY_WH_SCHEMA_VERSION 1
#define SY_WH_MAX_COLS 8 /* columns a query of sql.c reads back */

typedef enum { SY_WH_SQLITE = 0, SY_WH_PG } sy_wh_dialect_t;

typedef enum {
  SY_WH_EVENT_INSERT = 0, /* stream, entry_id, event_id, event_type, trace_id, experiment,
                             variant, ts_ms, fields: 1 row changed when new, 0 when seen */
  SY_WH_TRACE_REQUEST,    /* the request columns (SY_WH_REQ_*) */
  SY_WH_TRACE_OUTCOME,    /* trace_id, experiment, variant, variant_version, tenant_id,
                             consent_scope, outcome_metric, outcome_value, outcome_missing,
                             outcome_ts_ms, updated_ms */
  SY_WH_TRACE_EXTRAS,     /* query: trace_id, experiment -> feedback, feedback_n,
                             feedback_comment, shadow, consent_scope */
  SY_WH_TRACE_FEEDBACK,   /* trace_id, experiment, variant, variant_version, tenant_id,
                             consent_scope, feedback, feedback_n, feedback_comment, updated_ms */
  SY_WH_TRACE_SHADOW,     /* trace_id, experiment, variant (the primary), tenant_id,
                             consent_scope, shadow, updated_ms */
  SY_WH_RETAIN_EVENTS,    /* cutoff ms */
  SY_WH_RETAIN_TRACE,     /* cutoff ms */
  SY_WH_META_SET,         /* key, value */
  SY_WH_STMT_COUNT
} sy_wh_stmt_t;

/* The request columns of trace, in SY_WH_TRACE_REQUEST's parameter order. */
#define SY_WH_REQ_COLUMNS(X)                                                                    \
  X(trace_id) X(experiment) X(variant) X(variant_version) X(config_hash) X(prompt_version)      \
  X(model_id) X(model_version) X(task_type) X(task_id) X(tenant_id) X(user_id) X(session_id)    \
  X(consent_scope) X(country) X(ts_ms) X(propensity) X(status) X(server_latency_ms)             \
  X(input_tokens) X(output_tokens) X(request_event_id) X(updated_ms)
typedef enum {
#define SY_WH_X(c) SY_WH_REQ_##c,
  SY_WH_REQ_COLUMNS(SY_WH_X)
#undef SY_WH_X
  SY_WH_REQ_COUNT
} sy_wh_req_col_t;

/* Statement st's text (with `?` placeholders). */
const char *sy_wh_sql(sy_wh_stmt_t st);
/* The DDL in the dialect's types: statements separated by ";\n", each created only if
 * missing. */
const char *sy_wh_ddl(sy_wh_dialect_t d);

#endif
