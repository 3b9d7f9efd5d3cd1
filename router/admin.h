/*
 * admin.h — the admin API on its own listener (admin.c).
 */
#ifndef SY_ADMIN_H
#define SY_ADMIN_H

#include <stddef.h>

#include "router/types.h"

/* Opens the admin listener if the config has one. Returns 0 or -1 with err. */
int sy__admin_open(sy_worker_t *w, char *err, size_t errlen);
/* Stops accepting and closes admin connections (drain). */
void sy__admin_close(sy_worker_t *w);

#endif
