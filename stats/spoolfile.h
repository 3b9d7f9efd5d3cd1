/*
 * spoolfile.h — the journal's spool file on disk: DIR/INSTANCE.spool, the batches
 * that Redis could not take yet, as records of stats/spool.h appended one after the
 * other. The journal (stats/journal.c) decides what goes in and when a record has
 * been acknowledged; this file does the file: creating it, locking it, appending,
 * reading back, cutting and removing it, and adopting the spool files of processes
 * that are gone.
 *
 * The file exists only while it holds something. It is created at the first append,
 * under "PATH.new" until it is locked (flock) and renamed, so that no other process
 * adopts it in between; it stays locked while open, and is unlinked while still
 * locked once replayed in full. A spool file that no live process holds (its lock is
 * free) is an orphan: a starting worker moves its records into its own file.
 *
 * Error convention (stats/): a call that fails returns -1 and leaves the errno value
 * that says why in sf->err (ENOSPC when the file would pass its byte cap); the caller
 * words it. Not thread-safe: one spool file per journal.
 */
#ifndef SY_SPOOLFILE_H
#define SY_SPOOLFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct sy_spoolfile_s {
  int fd;          /* the open, locked file, or -1 while it does not exist */
  char *path;      /* DIR/INSTANCE.spool (NULL until sy_spoolfile_open) */
  char *dir;       /* the spool directory */
  uint64_t size;   /* bytes in the file */
  uint64_t events; /* events in the file not yet acknowledged (approximate) */
  size_t cap;      /* the most bytes the file may hold (events.spool_bytes) */
  int err;         /* errno of the last call that failed */
  char *rec;       /* the payload of the record read last */
  size_t rec_cap;
} sy_spoolfile_t;

/* Counts the events in a record's payload (the journal knows the batch format). */
typedef uint32_t (*sy_spoolfile_count_cb)(const char *data, size_t len);

/* Makes sf empty and closed (fd -1), so that sy_spoolfile_close is safe on it. */
void sy_spoolfile_init(sy_spoolfile_t *sf);

/*
 * Prepares the spool of instance in dir (created if missing, mode 0700) with a cap of
 * cap bytes; the file itself is not created yet. sf must have been through
 * sy_spoolfile_init. Returns 0, or -1 with one line in err ("journal: cannot create
 * DIR: ...", "journal: cannot write in DIR: ..."); sf->path may be set even then, and
 * sy_spoolfile_close frees it.
 */
int sy_spoolfile_open(sy_spoolfile_t *sf, const char *dir, const char *instance, size_t cap,
                      char *err, size_t errlen);

/*
 * Moves the records of every orphaned *.spool file in sf->dir (one whose name does
 * not begin with instance, and whose lock no live process holds) to the end of sf's
 * file, in the order they are read, and unlinks the orphan; a torn or corrupt record
 * ends an orphan's usable part. count gives each record's events. Logs what it adopts
 * and what it cannot. Returns the number of events appended.
 */
uint64_t sy_spoolfile_adopt_orphans(sy_spoolfile_t *sf, const char *instance,
                                    sy_spoolfile_count_cb count);

/*
 * Appends one record holding data[0, len), which carries nevents events, creating
 * the file if it does not exist. Returns 0 (sf->size and sf->events grow), or -1 with
 * sf->err: ENOSPC if the record would take the file past sf->cap, or the error of
 * creating or writing the file. After a short write the file is cut back to sf->size.
 */
int sy_spoolfile_append(sy_spoolfile_t *sf, const char *data, size_t len, uint32_t nevents);

/*
 * Reads the record at off (a record boundary below sf->size) and checks it (stats/
 * spool.h). Returns its payload length with *data pointing at the payload, valid
 * until the next read or adoption; 0 if off is at or past sf->size; -1 if the record
 * is torn or corrupt.
 */
ssize_t sy_spoolfile_read(sy_spoolfile_t *sf, uint64_t off, const char **data);

/* Cuts the file to size bytes (after a corrupt record); logs if ftruncate fails.
 * sf->events is left as it is. */
void sy_spoolfile_truncate(sy_spoolfile_t *sf, uint64_t size);

/* nevents of the file's events were acknowledged: they are no longer counted. */
void sy_spoolfile_consumed(sy_spoolfile_t *sf, uint32_t nevents);

/* Unlinks the file while still holding its lock (so nobody adopts it meanwhile) and
 * closes it; sf->size and sf->events go back to 0. Nothing to unlink if it does not
 * exist. */
void sy_spoolfile_remove(sy_spoolfile_t *sf);

/* Whether events can still be spooled: the cap is not reached, and the file is open
 * or the directory writable. */
int sy_spoolfile_ok(const sy_spoolfile_t *sf);

/* Closes the file if open, leaving it on disk (its lock is released: the next start
 * adopts it), and frees what sf holds. sf can be opened again after this. */
void sy_spoolfile_close(sy_spoolfile_t *sf);

#endif
