/*
 * ctl.h — the operator's commands (promote, rollback, pause, resume, history), which
 * act on the control state in Redis for the whole fleet (router/ctl.c).
 */
#ifndef SY_CTL_H
#define SY_CTL_H

/* `switchyard CMD ...` for CMD in promote, rollback, pause, resume, history; argv are
 * the arguments after CMD. Returns the exit status (ctl.c's header). */
int sy_ctl_main(const char *cmd, int argc, char **argv);

#include <jansson.h>

#include "stats/redis_sync.h"

/* What sy_ctl_apply and sy_ctl_history return. */
enum {
  SY_CTL_DONE = 0,
  SY_CTL_REDIS = 1,   /* Redis unreachable or failing, or out of memory */
  SY_CTL_REFUSED = 3, /* not applicable in the experiment's state */
  SY_CTL_NOOP = 4,    /* nothing to do (already so) */
  SY_CTL_UNKNOWN = 5, /* no such experiment, or no such variant */
};

/* One change, as the CLI and the admin API ask for it. */
typedef struct sy_ctl_req_s {
  const char *cmd; /* promote | rollback | pause | resume */
  const char *exp;
  const char *variant; /* promote: required; rollback: optional; else NULL */
  const char *reason;  /* NULL: "(no reason given)" */
  const char *by;      /* who, as the audit log shows it: "operator:USER@HOST", "admin:..." */
} sy_ctl_req_t;

/*
 * Applies q over rc through the control script (state, audit entry, decision event,
 * publish), retrying on a concurrent change. On SY_CTL_DONE *version is the new state
 * version and msg says so; on SY_CTL_NOOP msg says why nothing changed; otherwise the
 * problem is in rc->err.
 */
int sy_ctl_apply(sy_rsync_t *rc, const sy_ctl_req_t *q, char *msg, size_t msglen,
                 long long *version);

/* The last `limit` audit entries of exp, oldest first, as an array of objects in *out
 * (id, time, and the entry's fields; stats parsed). Returns SY_CTL_DONE, SY_CTL_UNKNOWN
 * or SY_CTL_REDIS (the problem in rc->err). */
int sy_ctl_history(sy_rsync_t *rc, const char *exp, long limit, json_t **out);

#endif
