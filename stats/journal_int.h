/*
 * journal_int.h — the journal's insides, shared by its two files: journal.c builds and
 * closes batches (and owns the journal's life), journal_send.c sends them, keeps the
 * spool file and takes Redis's answers. Nothing outside stats/journal*.c includes it.
 * The functions declared here are journal_send.c's.
 */
#ifndef SY_JOURNAL_INT_H
#define SY_JOURNAL_INT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "stats/journal.h"
#include "stats/spoolfile.h"

#define MAX_INFLIGHT 32
#define AGG_SLOTS 512
#define AGG_MAX 384              /* close the batch before the table is this full */
#define BATCH_MAX_BYTES (1u << 20)
#define COUNT_WIDTH 6            /* "000012": the X / T argument count, patched at the end */
#define TRIM_AFTER_BYTES (1u << 20) /* a backlog this large is given back once drained */
#define REFS_MAX 16              /* refs remembered as written in the open batch */
#define REF_ID_MAX 24

typedef struct batch_s {
  struct batch_s *next;
  uint64_t seq;
  uint32_t nevents;
  size_t len; /* bytes of data */
  char data[];
} batch_t;

typedef struct agg_s {
  uint64_t hash;
  size_t off; /* into agg_arena: "key\0field\0" */
  double delta;
  int used;
} agg_t;

struct sy_journal_row_s {
  uint64_t hash;
  size_t off; /* of the key in row_arena */
  int used;
  const char *const *fields;
  uint32_t nfields, touched; /* bit i: fields[i] was added to */
  double v[SY_JOURNAL_ROW_MAX];
};

#define ROW_SLOTS 64
#define ROW_MAX 48 /* close the batch before the row table is this full */

typedef struct send_s {
  sy_journal_t *j;
  unsigned gen;
  batch_t *b;       /* memory batch, or NULL */
  uint64_t end_off; /* spool batch: file offset just past it */
  uint64_t seq;
  uint32_t nevents;
} send_t;

typedef struct buf_s {
  char *p;
  size_t len, cap;
} buf_t;

struct sy_journal_s {
  uv_loop_t *loop;
  sy_redis_t *redis;
  char *stream, *instance, *jkey;
  char maxlen[24];
  unsigned batch_max, flush_ms;
  size_t queue_bytes_max;
  uv_timer_t flush_timer;
  int closing;

  /* the open batch */
  buf_t cur;
  uint32_t cur_nargs, cur_nevents;
  size_t count_off; /* offset of the open X / T count argument, or 0 */
  size_t count_start;
  agg_t agg[AGG_SLOTS];
  unsigned nagg;
  buf_t agg_arena;
  sy_journal_row_t rows[ROW_SLOTS];
  unsigned nrows;
  buf_t row_arena;
  uint64_t next_seq, next_event;
  char next_id[80];
  char refs[REFS_MAX][REF_ID_MAX]; /* refs the open batch has written */
  unsigned nrefs;

  /* memory queue */
  batch_t *head, *tail, *next_send;
  size_t queued_bytes;
  size_t queued_peak; /* the most bytes queued since the queue was last empty */
  uint64_t queued_events;

  /* spool: the file, and how far into it sending and acknowledgements have come */
  sy_spoolfile_t spool;
  uint64_t send_off, ack_off;

  /* sending */
  int script_ready;
  char sha[48];
  unsigned gen, inflight;
  uint64_t force_seq;
  const char **argv;
  size_t *argvlen;
  size_t argcap;
  uint64_t last_drop_log;

  sy_journal_counters_t c;
};

/* Appends a batch blob to the spool file (stats/spoolfile.h); -1 with j->spool.err. */
int sy__journal_spool_append(sy_journal_t *j, const char *data, size_t len, uint32_t nevents);
/* Counts nevents as lost and says so (at most once a second). */
void sy__journal_drop(sy_journal_t *j, uint32_t nevents, const char *why);
/* Number of X and E operations in a blob (for counters). */
uint32_t sy__journal_blob_events(const char *p, size_t len);
/* Moves every memory batch to the spool (in order); sending restarts from the file. */
void sy__journal_spill(sy_journal_t *j);
/* Sends what may be sent now: the spool's oldest first, then memory, in order. */
void sy__journal_pump(sy_journal_t *j);

#endif
