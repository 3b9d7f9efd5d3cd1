/*
 * loopback.h — the C tests' sockets on 127.0.0.1: a free port, and a blocking
 * connection with a 5 s receive timeout (a test never hangs on a silent peer).
 */
#ifndef SY_TEST_LOOPBACK_H
#define SY_TEST_LOOPBACK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A port nothing listens on now (another process may take it before the test). */
static inline int sy_test_free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t n = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(s, (struct sockaddr *)&a, &n) < 0)
    a.sin_port = 0;
  if (s >= 0)
    close(s);
  return ntohs(a.sin_port);
}

/* A connected socket to 127.0.0.1:port, or -1. */
static inline int sy_test_dial(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval tv = {5, 0};
  if (s < 0)
    return -1;
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
    close(s);
    return -1;
  }
  return s;
}

#endif
