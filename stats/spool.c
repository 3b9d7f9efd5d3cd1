/*
 * spool.c — the spool file's record format (see spool.h). The header words are
 * copied with memcpy: a record's offset in a file (or a buffer) need not be aligned.
 */
#include "stats/spool.h"

#include <string.h>

#include <xxhash.h>

void sy_spool_header_write(unsigned char hdr[SY_SPOOL_HDR], const void *data, uint32_t len) {
  uint32_t w[3] = {SY_SPOOL_MAGIC, len, XXH32(data, len, 0)};
  memcpy(hdr, w, sizeof w);
}

sy_spool_status_t sy_spool_header_read(const unsigned char *hdr, uint64_t avail,
                                       sy_spool_rec_t *rec) {
  uint32_t w[3];
  if (avail == 0)
    return SY_SPOOL_END;
  if (avail < SY_SPOOL_HDR)
    return SY_SPOOL_TRUNCATED;
  memcpy(w, hdr, sizeof w);
  if (w[0] != SY_SPOOL_MAGIC)
    return SY_SPOOL_CORRUPT;
  if (w[1] > avail - SY_SPOOL_HDR)
    return SY_SPOOL_TRUNCATED;
  rec->len = w[1];
  rec->sum = w[2];
  return SY_SPOOL_OK;
}

sy_spool_status_t sy_spool_payload_check(const sy_spool_rec_t *rec, const void *data) {
  return XXH32(data, rec->len, 0) == rec->sum ? SY_SPOOL_OK : SY_SPOOL_CORRUPT;
}

sy_spool_status_t sy_spool_next(const void *buf, size_t len, size_t *off, sy_spool_rec_t *rec) {
  const unsigned char *p = buf;
  if (*off >= len)
    return SY_SPOOL_END;
  sy_spool_rec_t r;
  sy_spool_status_t st = sy_spool_header_read(p + *off, len - *off, &r);
  if (st != SY_SPOOL_OK)
    return st;
  r.data = (const char *)p + *off + SY_SPOOL_HDR;
  if (sy_spool_payload_check(&r, r.data) != SY_SPOOL_OK)
    return SY_SPOOL_CORRUPT;
  *rec = r;
  *off += SY_SPOOL_HDR + (size_t)r.len;
  return SY_SPOOL_OK;
}
