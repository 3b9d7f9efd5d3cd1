/*
 * fuzz_check.h — what the fuzz targets share: REQUIRE (abort, so that libFuzzer and
 * the corpus driver report the input), and their own UTF-8 validator: an oracle
 * written apart from the code under test (router/api_parse.c has the product's), so
 * that the two can disagree when one of them is wrong.
 */
#ifndef SY_FUZZ_CHECK_H
#define SY_FUZZ_CHECK_H

#include <stddef.h>
#include <stdlib.h>

#define REQUIRE(c)                                                                                 \
  do {                                                                                             \
    if (!(c))                                                                                      \
      abort();                                                                                     \
  } while (0)

/* True if s[0, n) is valid UTF-8 (no overlongs, surrogates or code points > U+10FFFF). */
static inline int valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i], need, min;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF)
      need = 1, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
      need = 2, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
      need = 3, min = 0x10000;
    else
      return 0;
    if (n - i <= need)
      return 0;
    unsigned cp = c & (0x3F >> need);
    for (unsigned k = 1; k <= need; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return 0;
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
      return 0;
    i += need + 1;
  }
  return 1;
}

#endif
