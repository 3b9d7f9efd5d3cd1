/*
 * usage_scan_ref.h — the usage scanner (stats/usage_scan.c) as it was before its
 * fast paths (commit a3f69bd), frozen under the prefix ref_: the reference that
 * test_usage_scan_diff and bench/usage-scan compare the live scanner against. Its
 * results must stay bit-identical to sy_usage_scan_feed's for every input and split;
 * never change it to follow the live code.
 */
#ifndef SY_USAGE_SCAN_REF_H
#define SY_USAGE_SCAN_REF_H

#include <stddef.h>
#include <stdint.h>

#include "stats/usage_scan.h"

typedef struct ref_usage_scan_s {
  /* ---- private state: use the functions below ---- */
  uint64_t num;                        /* digits of a usage number being read */
  uint32_t depth;                      /* open objects and arrays */
  uint32_t cp;                         /* \uXXXX code point being read */
  uint8_t mode;                        /* lexical mode (text, string, escape, ...) */
  uint8_t sink;                        /* where string bytes go (none, key, id, model) */
  uint8_t pos;                         /* place in the current container */
  uint8_t line;                        /* progress matching "data:" at a line start */
  uint8_t num_key;                     /* which count the number is for */
  uint8_t num_ok;                      /* 0 once the number is not a plain integer */
  uint8_t hex_n;                       /* hex digits of \uXXXX read */
  uint8_t klen;                        /* bytes in kbuf; SY_USAGE_KEY_MAX + 1 = too long */
  uint8_t id_len, model_len;           /* bytes in id / model */
  uint8_t flags;                       /* id / model taken, id / model full */
  uint8_t kind[SY_USAGE_MAX_DEPTH];    /* per level: object? value of "usage"? */
  uint8_t key[SY_USAGE_MAX_DEPTH];     /* per level: class of the current member's key */
  char kbuf[SY_USAGE_KEY_MAX];         /* the key being read */

  /* ---- results: read them at any time; they only ever get filled in ---- */
  long long prompt_tokens;     /* -1 until seen */
  long long completion_tokens; /* -1 until seen */
  /*
   * The first "id" string value seen as a top-level member of a JSON object, ""
   * if none. Simple escapes and \uXXXX (BMP, not surrogates or NUL, which become
   * '?') are decoded; a value longer than 79 bytes is cut at a UTF-8 character
   * boundary and stays NUL-terminated. Filled in progressively as bytes arrive.
   */
  char id[SY_USAGE_STR_MAX];
  char model[SY_USAGE_STR_MAX]; /* the first top-level "model" string value; as id */
  /*
   * Top-level JSON objects begun: 1 for a JSON body, one per `data: {...}` event of an
   * SSE stream (`data: [DONE]` is not one). For a stream cut before its final usage
   * chunk, the chunks that did arrive are the only measure of what was produced.
   */
  long long documents;
} ref_usage_scan_t;

void ref_usage_scan_init(ref_usage_scan_t *s);
void ref_usage_scan_feed(ref_usage_scan_t *s, const char *p, size_t n);

#endif
