/*
 * tmpdir_fixture.h — a private temporary directory for the files a unit test makes
 * (certificates and keys with the openssl command), shared by the TLS and config
 * tests. Static: each test program includes it once.
 */
#ifndef SY_TMPDIR_FIXTURE_H
#define SY_TMPDIR_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

static char dir[64];

/* Makes /tmp/sy-NAME-XXXXXX as `dir`. Returns 0, or -1. */
__attribute__((unused)) static int dir_make(const char *name) {
  snprintf(dir, sizeof dir, "/tmp/sy-%s-XXXXXX", name);
  return mkdtemp(dir) != NULL ? 0 : -1;
}

/* Runs the shell command cmd in `dir`, its output discarded; system()'s status. */
__attribute__((unused)) static int run(const char *cmd) {
  char full[4096];
  snprintf(full, sizeof full, "cd %s && { %s ; } >/dev/null 2>&1", dir, cmd);
  return system(full);
}

/* Removes `dir` and what is in it. Returns 0, or system()'s status. */
__attribute__((unused)) static int dir_remove(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd);
}

#endif
