/*
 * test_cluster_slot.c — the pure parts of the Redis Cluster client (stats/cluster.h): the
 * key slot of a key, against values recorded from a real Redis 7.0
 * (`redis-cli -p PORT cluster keyslot KEY` on a cluster-enabled redis-server), hash
 * tags included; and the seed parser.
 */
#include <stdio.h>
#include <string.h>

#include "stats/cluster.h"
#include "tests/unit/check.h"

static void test_keyslot(void) {
  static const struct {
    const char *key;
    unsigned slot;
  } known[] = {
      {"", 0},
      {"foo", 12182},
      {"123456789", 12739},           /* CRC16/XMODEM's check value 0x31C3 */
      {"sy:{chat}:meta", 14028},
      {"sy:{chat}:v:a", 14028},       /* one experiment, one slot */
      {"{user1000}.following", 3443},
      {"foo{}{bar}", 8363},           /* an empty first tag: the whole key */
      {"foo{{bar}}zap", 4015},        /* the tag is "{bar" */
      {"foo{bar}{zap}", 5061},        /* the first tag only: "bar" */
      {"{}", 15257},
      {"sy:{E}:events", 6241},
      {"a{b", 13340},                 /* no closing brace: the whole key */
  };
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    unsigned got = sy_keyslot(known[i].key, strlen(known[i].key));
    CHECK_MSG(got == known[i].slot, "keyslot(%s) = %u, Redis says %u", known[i].key, got,
              known[i].slot);
  }
  /* the tag decides: every key of an experiment is in the slot of its id */
  CHECK(sy_keyslot("sy:{chat}:journal:abc", 21) == sy_keyslot("chat", 4));
  CHECK(sy_keyslot("foo", 3) < SY_CLUSTER_SLOTS);
}

static void test_parse_seed(void) {
  char host[64];
  unsigned port = 0;
  CHECK(sy_cluster_parse_seed("10.0.0.11:6379", host, sizeof host, &port) == 0 &&
        strcmp(host, "10.0.0.11") == 0 && port == 6379);
  CHECK(sy_cluster_parse_seed("redis-1.internal:7000", host, sizeof host, &port) == 0 &&
        strcmp(host, "redis-1.internal") == 0 && port == 7000);
  CHECK(sy_cluster_parse_seed("[fd00::13]:6380", host, sizeof host, &port) == 0 &&
        strcmp(host, "fd00::13") == 0 && port == 6380);
  const char *bad[] = {"10.0.0.11", "10.0.0.11:", ":6379", "10.0.0.11:0", "10.0.0.11:65536",
                       "10.0.0.11:63x", "fd00::13:6379", "[fd00::13]6379", "a b:1",
                       "redis://h:1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_MSG(sy_cluster_parse_seed(bad[i], host, sizeof host, &port) == -1, "accepted %s",
              bad[i]);
  char tiny[4];
  CHECK(sy_cluster_parse_seed("10.0.0.11:6379", tiny, sizeof tiny, &port) == -1);
}

int main(void) {
  test_keyslot();
  test_parse_seed();
  return CHECK_DONE();
}
