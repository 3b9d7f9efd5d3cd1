/*
 * sql.c — the warehouse's DDL and statements (sql.h). The DDL is written once with
 * placeholders for the two types that differ (INT8: INTEGER / BIGINT, REAL8: REAL /
 * DOUBLE PRECISION) and filled per dialect at first use.
 */
#include "warehouse/sql.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define T_COLS "trace_id, experiment"
#define ON_TRACE " ON CONFLICT (trace_id, experiment) DO UPDATE SET "
#define KEEP(c) c " = COALESCE(trace." c ", excluded." c ")"
#define NEWER(c) c " = COALESCE(excluded." c ", trace." c ")"

static const char *const stmts[SY_WH_STMT_COUNT] = {
    [SY_WH_EVENT_INSERT] =
        "INSERT INTO events (stream, entry_id, event_id, event_type, trace_id, experiment, "
        "variant, ts_ms, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    /* The request is authoritative for its columns; ids and content follow its consent
     * (a NULL id from a consent-none request clears one an earlier event left). */
    [SY_WH_TRACE_REQUEST] =
        "INSERT INTO trace (" T_COLS ", variant, variant_version, config_hash, prompt_version, "
        "model_id, model_version, task_type, task_id, tenant_id, user_id, session_id, "
        "consent_scope, country, ts_ms, propensity, status, server_latency_ms, input_tokens, "
        "output_tokens, request_event_id, updated_ms) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" ON_TRACE
        "variant = excluded.variant, " NEWER("variant_version") ", config_hash = excluded.config_hash, "
        NEWER("prompt_version") ", " NEWER("model_id") ", " NEWER("model_version") ", "
        NEWER("task_type") ", " NEWER("task_id") ", " NEWER("tenant_id") ", "
        "user_id = excluded.user_id, session_id = excluded.session_id, "
        "consent_scope = excluded.consent_scope, " NEWER("country") ", ts_ms = excluded.ts_ms, "
        "propensity = excluded.propensity, status = excluded.status, "
        "server_latency_ms = excluded.server_latency_ms, input_tokens = excluded.input_tokens, "
        "output_tokens = excluded.output_tokens, request_event_id = excluded.request_event_id, "
        "feedback_comment = CASE WHEN excluded.consent_scope = 'content' "
        "THEN trace.feedback_comment ELSE NULL END, updated_ms = excluded.updated_ms",
    [SY_WH_TRACE_OUTCOME] =
        "INSERT INTO trace (" T_COLS ", variant, variant_version, tenant_id, consent_scope, "
        "outcome_metric, outcome_value, outcome_missing, outcome_ts_ms, updated_ms) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" ON_TRACE KEEP("variant") ", " KEEP("variant_version")
        ", " KEEP("tenant_id") ", " KEEP("consent_scope") ", outcome_metric = excluded.outcome_metric, "
        "outcome_value = excluded.outcome_value, outcome_missing = excluded.outcome_missing, "
        "outcome_ts_ms = excluded.outcome_ts_ms, updated_ms = excluded.updated_ms",
    [SY_WH_TRACE_EXTRAS] =
        "SELECT feedback, feedback_n, feedback_comment, shadow, consent_scope FROM trace "
        "WHERE trace_id = ? AND experiment = ?",
    [SY_WH_TRACE_FEEDBACK] =
        "INSERT INTO trace (" T_COLS ", variant, variant_version, tenant_id, consent_scope, "
        "feedback, feedback_n, feedback_comment, updated_ms) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" ON_TRACE KEEP("variant") ", " KEEP("variant_version")
        ", " KEEP("tenant_id") ", " KEEP("consent_scope") ", feedback = excluded.feedback, "
        "feedback_n = excluded.feedback_n, feedback_comment = excluded.feedback_comment, "
        "updated_ms = excluded.updated_ms",
    [SY_WH_TRACE_SHADOW] =
        "INSERT INTO trace (" T_COLS ", variant, tenant_id, consent_scope, shadow, updated_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)" ON_TRACE KEEP("variant") ", " KEEP("tenant_id") ", "
        KEEP("consent_scope") ", shadow = excluded.shadow, updated_ms = excluded.updated_ms",
    [SY_WH_RETAIN_EVENTS] = "DELETE FROM events WHERE ts_ms < ?",
    [SY_WH_RETAIN_TRACE] = "DELETE FROM trace WHERE COALESCE(ts_ms, outcome_ts_ms, updated_ms) < ?",
    [SY_WH_META_SET] = "INSERT INTO meta (key, value) VALUES (?, ?) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
};

const char *sy_wh_sql(sy_wh_stmt_t st) { return st < SY_WH_STMT_COUNT ? stmts[st] : NULL; }

/* @I: a 64-bit integer, @R: a double. */
static const char ddl_template[] =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);\n"
    "CREATE TABLE IF NOT EXISTS events (stream TEXT NOT NULL, entry_id TEXT NOT NULL, "
    "event_id TEXT NOT NULL, event_type TEXT NOT NULL, trace_id TEXT, experiment TEXT, "
    "variant TEXT, ts_ms @I, fields TEXT, PRIMARY KEY (stream, entry_id), "
    "UNIQUE (event_id, event_type));\n"
    "CREATE TABLE IF NOT EXISTS trace (trace_id TEXT NOT NULL, experiment TEXT NOT NULL, "
    "variant TEXT, variant_version TEXT, config_hash TEXT, prompt_version TEXT, "
    "model_id TEXT, model_version TEXT, task_type TEXT, task_id TEXT, tenant_id TEXT, "
    "user_id TEXT, session_id TEXT, consent_scope TEXT, country TEXT, ts_ms @I, "
    "propensity @R, status @I, server_latency_ms @R, input_tokens @I, output_tokens @I, "
    "outcome_metric TEXT, outcome_value @R, outcome_missing @I, outcome_ts_ms @I, "
    "feedback TEXT, feedback_n @I, feedback_comment TEXT, shadow TEXT, "
    "request_event_id TEXT, updated_ms @I, PRIMARY KEY (trace_id, experiment));\n"
    "CREATE INDEX IF NOT EXISTS trace_experiment_ts ON trace (experiment, ts_ms)";

static char ddl[2][sizeof ddl_template * 2];
static pthread_once_t ddl_once = PTHREAD_ONCE_INIT;

static void fill(char *out, size_t cap, const char *i8, const char *r8) {
  size_t o = 0;
  for (const char *p = ddl_template; *p && o + 24 < cap; p++) {
    const char *rep = NULL;
    if (p[0] == '@' && p[1] == 'I')
      rep = i8;
    else if (p[0] == '@' && p[1] == 'R')
      rep = r8;
    if (rep != NULL) {
      o += (size_t)snprintf(out + o, cap - o, "%s", rep);
      p++;
    } else
      out[o++] = *p;
  }
  out[o] = '\0';
}

static void make_ddl(void) {
  fill(ddl[SY_WH_SQLITE], sizeof ddl[0], "INTEGER", "REAL");
  fill(ddl[SY_WH_PG], sizeof ddl[1], "BIGINT", "DOUBLE PRECISION");
}

const char *sy_wh_ddl(sy_wh_dialect_t d) {
  pthread_once(&ddl_once, make_ddl);
  return ddl[d == SY_WH_PG];
}
