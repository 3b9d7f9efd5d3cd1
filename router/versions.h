/*
 * versions.h — `switchyard versions EXP`: which configs and variant versions served an
 * experiment, and when (the version registry, proto/KEYS.md: sy:{E}:versions).
 */
#ifndef SY_VERSIONS_H
#define SY_VERSIONS_H

/* The command with its arguments (after "versions"). Returns the exit status: 0, 1 when
 * Redis cannot be read or holds nothing for the experiment, 2 for bad usage. */
int sy_versions_main(int argc, char **argv);

#endif
