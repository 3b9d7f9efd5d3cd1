/*
 * fuzz_spool.c — libFuzzer target for the journal's spool file as it is read back
 * on replay and adoption (stats/spool.h, used by stats/journal.c).
 *
 * The input is a spool file. It is read record by record with sy_spool_next until
 * the first record that is not OK, and again the way the journal reads a file
 * (sy_spool_header_read on a header buffer of exactly the bytes that exist,
 * sy_spool_payload_check on a payload buffer of exactly its length), so that ASan
 * sees any read out of bounds. Then the input's bytes are cut into payloads, which
 * are written as a spool with sy_spool_header_write, read back, cut short and
 * damaged. The target aborts when:
 *   - a record is accepted whose header lacks the magic, whose length runs past the
 *     end, whose checksum is not XXH32 of its payload, or whose payload is not the
 *     bytes right after its header; the offset does not move by exactly the header
 *     and the payload; or a refusal moves it;
 *   - the status of a refusal is not the one spool.h names: END exactly at the end,
 *     TRUNCATED for a header or payload cut by the end, CORRUPT for a wrong magic or
 *     checksum; or the journal's way of reading disagrees with sy_spool_next;
 *   - a spool written from valid records does not read back as exactly those
 *     records and then END; cut anywhere, it does not give the whole records before
 *     the cut and then END (at a record boundary) or TRUNCATED; with one byte of a
 *     record changed (outside its length field), that record is accepted.
 * Build with libFuzzer: tests/fuzz/run; without it: meson test --suite fuzz.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "stats/spool.h"
#include "tests/fuzz/fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define MAX_RECORDS 16

static uint32_t word(const unsigned char *p) {
  uint32_t w;
  memcpy(&w, p, 4);
  return w;
}

/* The status spool.h gives the bytes buf[off, len), worked out from the format. */
static sy_spool_status_t expected(const unsigned char *buf, size_t len, size_t off) {
  if (off >= len)
    return SY_SPOOL_END;
  size_t avail = len - off;
  if (avail < SY_SPOOL_HDR)
    return SY_SPOOL_TRUNCATED;
  if (word(buf + off) != SY_SPOOL_MAGIC)
    return SY_SPOOL_CORRUPT;
  uint32_t n = word(buf + off + 4);
  if (n > avail - SY_SPOOL_HDR)
    return SY_SPOOL_TRUNCATED;
  if (XXH32(buf + off + SY_SPOOL_HDR, n, 0) != word(buf + off + 8))
    return SY_SPOOL_CORRUPT;
  return SY_SPOOL_OK;
}

/* The journal's way (stats/journal.c spool_read): header and payload in buffers of
 * their own, exactly as large as what is there. */
static sy_spool_status_t journal_read(const unsigned char *buf, size_t len, size_t off,
                                      uint32_t *plen) {
  sy_spool_rec_t rec;
  if (off >= len)
    return sy_spool_header_read(NULL, 0, &rec);
  size_t avail = len - off, hn = avail < SY_SPOOL_HDR ? avail : SY_SPOOL_HDR;
  unsigned char *hdr = malloc(hn);
  REQUIRE(hdr != NULL);
  memcpy(hdr, buf + off, hn);
  sy_spool_status_t st = sy_spool_header_read(hdr, avail, &rec);
  free(hdr);
  if (st != SY_SPOOL_OK)
    return st;
  REQUIRE(rec.len <= avail - SY_SPOOL_HDR);
  unsigned char *payload = malloc(rec.len > 0 ? rec.len : 1);
  REQUIRE(payload != NULL);
  memcpy(payload, buf + off + SY_SPOOL_HDR, rec.len);
  st = sy_spool_payload_check(&rec, payload);
  free(payload);
  *plen = rec.len;
  return st;
}

/*
 * Reads buf[0, len) to its first refusal, checking every step (see the file
 * comment). Fills ends[] with the offset after each accepted record (up to max);
 * returns the number accepted and the refusal in *last.
 */
static size_t read_all(const unsigned char *buf, size_t len, size_t *ends, size_t max,
                       sy_spool_status_t *last) {
  size_t off = 0, n = 0;
  for (;;) {
    size_t before = off;
    sy_spool_rec_t rec;
    memset(&rec, 0, sizeof rec);
    sy_spool_status_t st = sy_spool_next(buf, len, &off, &rec);
    uint32_t jlen = 0;
    REQUIRE(st == expected(buf, len, before));
    REQUIRE(journal_read(buf, len, before, &jlen) == st);
    if (st != SY_SPOOL_OK) {
      REQUIRE(off == before);
      *last = st;
      return n;
    }
    REQUIRE(off > before && off - before == SY_SPOOL_HDR + (size_t)rec.len && off <= len);
    REQUIRE(rec.data == (const char *)buf + before + SY_SPOOL_HDR && rec.len == jlen);
    REQUIRE(word(buf + before) == SY_SPOOL_MAGIC && word(buf + before + 4) == rec.len &&
            word(buf + before + 8) == rec.sum && XXH32(rec.data, rec.len, 0) == rec.sum);
    if (n < max)
      ends[n] = off;
    n++;
  }
}

/* Writes the payloads (cut from src) as a spool into out; returns its length. */
static size_t build(const unsigned char *src, const size_t *plen, size_t nrec, unsigned char *out,
                    size_t *ends) {
  size_t off = 0, at = 0;
  for (size_t i = 0; i < nrec; i++) {
    sy_spool_header_write(out + off, src + at, (uint32_t)plen[i]);
    memcpy(out + off + SY_SPOOL_HDR, src + at, plen[i]);
    off += SY_SPOOL_HDR + plen[i];
    at += plen[i];
    ends[i] = off;
  }
  return off;
}

static void check_round_trip(const uint8_t *data, size_t size) {
  if (size < 4)
    return;
  /* The first byte: how many records; the last three: where to cut and what to damage. */
  size_t nrec = 1 + data[0] % MAX_RECORDS;
  size_t cut_pick = data[size - 3], flip_pick = (size_t)data[size - 2] << 8 | data[size - 1];
  const unsigned char *src = data + 1;
  size_t srclen = size - 4, plen[MAX_RECORDS], ends[MAX_RECORDS], got[MAX_RECORDS];
  for (size_t i = 0; i < nrec; i++)
    plen[i] = srclen / nrec + (i < srclen % nrec);
  unsigned char *spool = malloc(srclen + nrec * SY_SPOOL_HDR);
  REQUIRE(spool != NULL);
  size_t len = build(src, plen, nrec, spool, ends);
  sy_spool_status_t last;

  /* Whole: every record, then END. */
  REQUIRE(read_all(spool, len, got, MAX_RECORDS, &last) == nrec && last == SY_SPOOL_END);
  REQUIRE(memcmp(got, ends, nrec * sizeof ends[0]) == 0);

  /* Cut short, in a buffer of exactly the bytes left. */
  size_t cut = len * cut_pick / 255, whole = 0;
  while (whole < nrec && ends[whole] <= cut)
    whole++;
  unsigned char *part = malloc(cut > 0 ? cut : 1);
  REQUIRE(part != NULL);
  memcpy(part, spool, cut);
  REQUIRE(read_all(part, cut, got, MAX_RECORDS, &last) == whole);
  REQUIRE(last == ((whole > 0 ? ends[whole - 1] : 0) == cut ? SY_SPOOL_END : SY_SPOOL_TRUNCATED));
  free(part);

  /* One byte changed: the records before it stand, that one is refused. */
  if (len > 0) {
    size_t pos = flip_pick % len, k = 0;
    while (ends[k] <= pos)
      k++;
    size_t start = k > 0 ? ends[k - 1] : 0;
    spool[pos] ^= (unsigned char)(1 + data[0] % 255);
    size_t n = read_all(spool, len, got, MAX_RECORDS, &last);
    if (pos - start < 4 || pos - start >= 8) /* not the length field */
      REQUIRE(n == k && last != SY_SPOOL_OK && last != SY_SPOOL_END);
    else
      REQUIRE(n >= k);
  }
  free(spool);
}

/* libFuzzer entry point: see the file comment. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const unsigned char *buf = size > 0 ? data : (const unsigned char *)"";
  size_t ends[1];
  sy_spool_status_t last;
  read_all(buf, size, ends, 0, &last);
  REQUIRE(last != SY_SPOOL_OK);
  check_round_trip(data, size);
  return 0;
}
