/*
 * spool.h — the record format of the journal's spool file (stats/spoolfile.c): what
 * a batch looks like on disk, and the checks that decide whether bytes read back are
 * a record. Pure: no I/O, no allocation; spoolfile.c does the reading and writing.
 *
 * A spool file is a sequence of records, each a 12-byte header and a payload:
 *
 *   uint32 magic     SY_SPOOL_MAGIC ("SYJ1")
 *   uint32 len       payload bytes
 *   uint32 checksum  XXH32(payload, len, seed 0)
 *   len bytes        the batch blob, exactly as first sent to Redis
 *
 * The three words are in the host's byte order: a spool is read back only by a
 * router on the same machine (its own after a restart, or another one adopting it).
 * Records are appended whole; a crash or a full disk can leave a torn record at the
 * end, and a file can be damaged anywhere. A reader takes records while they check
 * out and treats the first one that does not as the end of the usable data.
 */
#ifndef SY_SPOOL_H
#define SY_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#define SY_SPOOL_MAGIC 0x53594a31u /* "SYJ1" */
#define SY_SPOOL_HDR 12            /* header bytes */

typedef enum {
  SY_SPOOL_OK = 0,    /* a whole record that checks out */
  SY_SPOOL_END,       /* no bytes left: the end of the file, exactly after a record */
  SY_SPOOL_TRUNCATED, /* the bytes left end inside the header or the payload */
  SY_SPOOL_CORRUPT,   /* a header without the magic, or a payload whose checksum differs */
} sy_spool_status_t;

/* A record: its header's fields, and (from sy_spool_next) where its payload is. */
typedef struct sy_spool_rec_s {
  uint32_t len;     /* payload bytes */
  uint32_t sum;     /* checksum from the header */
  const char *data; /* sy_spool_next: the payload inside the caller's buffer */
} sy_spool_rec_t;

/* Writes the header of a record whose payload is data[0, len) into hdr. */
void sy_spool_header_write(unsigned char hdr[SY_SPOOL_HDR], const void *data, uint32_t len);

/*
 * Reads a header: hdr holds the first min(avail, SY_SPOOL_HDR) bytes of a record
 * and avail is the number of bytes from the record's start to the end of the file.
 * Returns SY_SPOOL_END if avail is 0; SY_SPOOL_TRUNCATED if the header is not whole;
 * SY_SPOOL_CORRUPT if it lacks the magic; SY_SPOOL_TRUNCATED if the payload it
 * announces runs past the end; else SY_SPOOL_OK with rec->len and rec->sum set
 * (rec->data is left as it is). hdr may be NULL when avail is 0.
 */
sy_spool_status_t sy_spool_header_read(const unsigned char *hdr, uint64_t avail,
                                       sy_spool_rec_t *rec);

/* Checks the payload of a record whose header sy_spool_header_read accepted: data
 * holds rec->len bytes. Returns SY_SPOOL_OK, or SY_SPOOL_CORRUPT if the checksum
 * differs. */
sy_spool_status_t sy_spool_payload_check(const sy_spool_rec_t *rec, const void *data);

/*
 * Takes the record at *off of a spool held in buf[0, len) (a whole file read into
 * memory): the header check and then the payload check above. On SY_SPOOL_OK,
 * rec->data points at the payload inside buf, rec->len and rec->sum are set and *off
 * moves just past the record; on anything else *off is left where it was (and is
 * the offset of the bad record). *off > len counts as no bytes left. buf may be NULL
 * when len is 0.
 */
sy_spool_status_t sy_spool_next(const void *buf, size_t len, size_t *off, sy_spool_rec_t *rec);

#endif
