/*
 * config_fixture.h — what the config tests share: the allocation-failure injection
 * (plain builds), the YAML fragments BASE / EXP_HEAD / VAR_A, parse helpers, the
 * error-case table type and the out-of-memory walk. Included by exactly one file
 * per test program (it replaces malloc and friends).
 */
#ifndef SY_CONFIG_FIXTURE_H
#define SY_CONFIG_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "router/config.h"
#include "tests/unit/check.h"

/*
 * Allocation-failure injection (plain builds only: the sanitizers own malloc).
 * The test replaces malloc and friends with glibc's own functions plus a countdown
 * that makes the n-th allocation fail, and counts live blocks, so that every
 * out-of-memory path of sy_config_parse can be shown to return -1 and free
 * everything it allocated.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FAULT_INJECTION 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define FAULT_INJECTION 0
#endif
#endif
#ifndef FAULT_INJECTION
#define FAULT_INJECTION 1
#endif

#if FAULT_INJECTION
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static long fi_countdown = -1; /* the allocation that fails when this reaches 0; -1: none */
static long fi_live;          /* blocks allocated minus blocks freed */

static int fi_should_fail(void) { return fi_countdown >= 0 && fi_countdown-- == 0; }

/* malloc with failure injection and live-block counting (test only). */
void *malloc(size_t n) {
  void *p = fi_should_fail() ? NULL : __libc_malloc(n);
  fi_live += p != NULL;
  return p;
}

/* calloc with failure injection and live-block counting (test only). */
void *calloc(size_t n, size_t size) {
  void *p = fi_should_fail() ? NULL : __libc_calloc(n, size);
  fi_live += p != NULL;
  return p;
}

/* realloc with failure injection; never called with n == 0 by the code under test. */
void *realloc(void *p, size_t n) {
  void *q = fi_should_fail() ? NULL : __libc_realloc(p, n);
  fi_live += q != NULL && p == NULL;
  return q;
}

/* free with live-block counting (test only). */
void free(void *p) {
  fi_live -= p != NULL;
  __libc_free(p);
}
#endif

#define BASE                                                                                     \
  "listen: [127.0.0.1:8080]\n"                                                                   \
  "upstreams: {u: {servers: [127.0.0.1:9001]}}\n"

/* Lines 3..7; variants follow from line 8. */
#define EXP_HEAD                                                                                 \
  "experiments:\n"                                                                               \
  "  - id: e\n"                                                                                  \
  "    match: {path_prefix: /x}\n"                                                               \
  "    control: a\n"                                                                             \
  "    variants:\n"

#define VAR_A "      - {id: a, upstream: u}\n"
/* An experiment with two thompson variants, its thompson: block open. */
#define TS_HEAD                                                                                  \
  BASE EXP_HEAD VAR_A "      - {id: b, upstream: u}\n"                                           \
                      "    policy: thompson\n"                                                   \
                      "    thompson:\n"
#define TS_CONT TS_HEAD "      outcome: continuous\n"

static int parse(const char *yaml, sy_config_t **cfg, char *err, size_t errlen) {
  return sy_config_parse("t.yaml", yaml, strlen(yaml), cfg, err, errlen);
}

/* Parses a config that must be valid; reports the message if it is not. */
static sy_config_t *parse_ok(const char *yaml) {
  char err[512];
  sy_config_t *cfg = NULL;
  int rc = parse(yaml, &cfg, err, sizeof err);
  CHECK_MSG(rc == 0 && cfg != NULL, "unexpected error: %s", err);
  return cfg;
}

typedef struct {
  const char *yaml;
  const char *want; /* the complete message */
} err_case_t;

/* Makes each allocation of a parse fail in turn: a clean -1, never a leak. */
__attribute__((unused)) static void test_out_of_memory(const char *yaml) {
#if FAULT_INJECTION
  long n, failures = 0;
  for (n = 0; n < 100000; n++) {
    char err[512];
    sy_config_t *cfg = NULL;
    long live = fi_live;
    fi_countdown = n;
    int rc = parse(yaml, &cfg, err, sizeof err);
    int injected = fi_countdown < 0;
    fi_countdown = -1;
    if (rc == 0)
      sy_config_free(cfg);
    CHECK_MSG(rc == -1 || !injected, "allocation %ld failed but the parse succeeded", n);
    if (rc != 0)
      failures += cfg == NULL && strstr(err, "t.yaml:") == err;
    /* libyaml 0.2.5's composer leaks a node's item stack when it cannot push the node
       (loader.c, yaml_parser_load_sequence/_mapping error paths): not ours to fix. */
    int in_libyaml = rc != 0 && strstr(err, ": yaml: out of memory") != NULL;
    CHECK_MSG(fi_live == live || in_libyaml, "allocation %ld: %ld blocks leaked (rc %d: %s)", n,
              fi_live - live, rc, rc == 0 ? "" : err);
    if (!injected)
      break; /* the parse needed fewer than n + 1 allocations: every one has failed once */
  }
  CHECK_MSG(n > 50 && failures == n, "%ld allocations, %ld clean failures", n, failures);
#endif
}

#endif
