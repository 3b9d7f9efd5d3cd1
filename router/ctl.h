/*
 * ctl.h — the operator's commands (promote, rollback, pause, resume, history), which
 * act on the control state in Redis for the whole fleet (router/ctl.c).
 */
#ifndef SY_CTL_H
#define SY_CTL_H

/* `switchyard CMD ...` for CMD in promote, rollback, pause, resume, history; argv are
 * the arguments after CMD. Returns the exit status (ctl.c's header). */
int sy_ctl_main(const char *cmd, int argc, char **argv);

#endif
