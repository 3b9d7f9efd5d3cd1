/*
 * listen.c — the listening sockets of the proxy and admin listeners (see listen.h).
 */
#include "router/listen.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A listening socket with SO_REUSEPORT, so that every worker binds its own and
 * the kernel spreads connections across them. */
int sy__listen_open(uv_loop_t *loop, uv_tcp_t *t, const sy_hostport_t *hp, uv_connection_cb cb,
                    void *data, char *err, size_t errlen) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  if (uv_ip4_addr(hp->host, hp->port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(hp->host, hp->port, (struct sockaddr_in6 *)&ss) != 0) {
    snprintf(err, errlen, "listen %s:%u: not a numeric address", hp->host, (unsigned)hp->port);
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
      bind(fd, (struct sockaddr *)&ss,
           ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) <
          0) {
    snprintf(err, errlen, "listen %s:%u: %s", hp->host, (unsigned)hp->port, strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  uv_tcp_init(loop, t);
  t->data = data;
  int r = uv_tcp_open(t, fd);
  if (r == 0)
    r = uv_listen((uv_stream_t *)t, 4096, cb);
  if (r < 0) {
    snprintf(err, errlen, "listen %s:%u: %s", hp->host, (unsigned)hp->port, uv_strerror(r));
    uv_close((uv_handle_t *)t, NULL);
    return -1;
  }
  return 0;
}
