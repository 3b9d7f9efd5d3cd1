/*
 * test_worker_loop.c — a worker's event loop, run in this process: a proxied
 * exchange, exchanges cut short by their client (mid-request-body and mid-stream),
 * and a shadowed one, then SIGTERM. The worker must drain and close its loop with
 * no handle or request left behind: sy_worker_run returns 3 when uv_loop_close()
 * fails (it logs each handle left), so `rc == 0` is the libuv-style assertion that
 * every handle was closed and every request finished.
 *
 * The upstream is the project's mock LLM backend (bench/mock-llm, path from
 * SY_MOCK_LLM), a real process on loopback; the client is a thread of this test
 * with plain blocking sockets. A watchdog (alarm) ends a test that hangs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "router/config.h"
#include "router/metrics.h"
#include "router/server.h"
#include "tests/unit/check.h"
#include "tests/unit/loopback.h"

static int port, mock_port;
static pid_t mock_pid, redis_pid;
static char redis_sock[128];

/* Sends req on a new connection and reads the response until `until` appears (or
 * the peer closes, or 5 s). Returns the bytes read (NUL-terminated in out). */
static size_t exchange(int p, const char *req, const char *until, char *out, size_t cap) {
  int s = sy_test_dial(p);
  size_t have = 0;
  out[0] = '\0';
  if (s < 0)
    return 0;
  if (send(s, req, strlen(req), MSG_NOSIGNAL) < 0) {
    close(s);
    return 0;
  }
  while (have + 1 < cap) {
    ssize_t n = recv(s, out + have, cap - have - 1, 0);
    if (n <= 0)
      break;
    have += (size_t)n;
    out[have] = '\0';
    if (until != NULL && strstr(out, until) != NULL)
      break;
  }
  close(s);
  return have;
}

static long mock_requests(void) {
  char buf[4096];
  exchange(mock_port, "GET /stats HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n", NULL, buf,
           sizeof buf);
  const char *p = strstr(buf, "\"requests\":");
  return p ? strtol(p + 11, NULL, 10) : -1;
}

static const char BODY[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

static void *client(void *arg) {
  (void)arg;
  char req[1024], out[65536];
  for (int i = 0; i < 200; i++) { /* the worker starts listening */
    int s = sy_test_dial(port);
    if (s >= 0) {
      close(s);
      break;
    }
    usleep(20000);
  }
  long before = mock_requests();

  /* 1. A proxied exchange; variant b shadows it (a mirrored copy to the mock). */
  snprintf(req, sizeof req,
           "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
           sizeof BODY - 1, BODY);
  exchange(port, req, NULL, out, sizeof out);
  CHECK_MSG(strncmp(out, "HTTP/1.1 200", 12) == 0 && strstr(out, "choices") != NULL, "%.300s",
            out);
  CHECK(strstr(out, "x-switchyard-variant: a") != NULL);
  /* the shadow copy reaches the mock too (it may land just after the answer) */
  long after = before;
  for (int i = 0; i < 100 && after < before + 2; i++) {
    usleep(20000);
    after = mock_requests();
  }
  CHECK_MSG(after == before + 2, "mock requests %ld -> %ld: the shadow copy is missing", before,
            after);

  /* 2. A client gone mid-body: the exchange is aborted before any upstream byte. */
  int s = sy_test_dial(port);
  snprintf(req, sizeof req,
           "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"mo");
  CHECK(s >= 0 && send(s, req, strlen(req), MSG_NOSIGNAL) > 0);
  usleep(50000);
  close(s);

  /* 3. A client gone mid-stream: the upstream leg must be closed. */
  const char sbody[] = "{\"model\":\"m\",\"stream\":true,\"messages\":[]}";
  snprintf(req, sizeof req,
           "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n"
           "x-mock-chunks: 200\r\nx-mock-interval-ms: 20\r\n\r\n%s",
           sizeof sbody - 1, sbody);
  s = sy_test_dial(port);
  CHECK(s >= 0 && send(s, req, strlen(req), MSG_NOSIGNAL) > 0);
  ssize_t n = recv(s, out, sizeof out - 1, 0);
  CHECK_MSG(n > 12 && strncmp(out, "HTTP/1.1 200", 12) == 0, "stream start: %zd", n);
  close(s);
  usleep(200000);

  /* 4. One more whole exchange after the aborts: the worker is still well. */
  snprintf(req, sizeof req,
           "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n"
           "Connection: close\r\n\r\n%s",
           sizeof BODY - 1, BODY);
  exchange(port, req, NULL, out, sizeof out);
  CHECK_MSG(strncmp(out, "HTTP/1.1 200", 12) == 0, "after the aborts: %.200s", out);

  kill(getpid(), SIGTERM); /* the worker's uv_signal: drain and stop */
  return NULL;
}

static int start_mock(void) {
  const char *exe = getenv("SY_MOCK_LLM");
  int fds[2];
  if (exe == NULL || pipe(fds) < 0)
    return -1;
  mock_pid = fork();
  if (mock_pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    execl(exe, exe, "--port", "0", "--name", "loopmock", (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  char line[256];
  size_t have = 0;
  while (have + 1 < sizeof line) {
    ssize_t n = read(fds[0], line + have, 1);
    if (n <= 0 || line[have] == '\n')
      break;
    have++;
  }
  line[have] = '\0';
  close(fds[0]);
  const char *colon = strrchr(line, ':');
  return colon ? atoi(colon + 1) : -1;
}

/* redis-server on a unix socket in a temporary directory (shadows are sent only
 * while events are on, and events need Redis). */
static int start_redis(void) {
  static char dir[64];
  snprintf(dir, sizeof dir, "/tmp/sy-loop-XXXXXX");
  if (mkdtemp(dir) == NULL)
    return -1;
  snprintf(redis_sock, sizeof redis_sock, "%s/r.sock", dir);
  redis_pid = fork();
  if (redis_pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", redis_sock, "--save", "",
           "--appendonly", "no", "--dir", dir, (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 200; i++) {
    if (access(redis_sock, F_OK) == 0)
      return 0;
    usleep(25000);
  }
  return -1;
}

static void on_alarm(int sig) {
  (void)sig;
  static const char m[] = "test_worker_loop: watchdog expired\n";
  if (write(2, m, sizeof m - 1) < 0)
    _exit(2);
  kill(mock_pid, SIGKILL);
  kill(redis_pid, SIGKILL);
  _exit(2);
}

int main(void) {
  signal(SIGALRM, on_alarm);
  alarm(60);
  mock_port = start_mock();
  if (mock_port <= 0) {
    fprintf(stderr, "cannot start the mock (SY_MOCK_LLM=%s)\n", getenv("SY_MOCK_LLM"));
    return 1;
  }
  if (start_redis() < 0) {
    fprintf(stderr, "cannot start redis-server\n");
    kill(mock_pid, SIGKILL);
    return 1;
  }
  port = sy_test_free_port();
  char yaml[2048];
  snprintf(yaml, sizeof yaml,
           "listen: [\"127.0.0.1:%d\"]\n"
           "redis: {url: \"unix://%s\"}\n"
           "data_dir: %.40s.data\n"
           "upstreams: {mock: {servers: [\"127.0.0.1:%d\"]}}\n"
           "experiments:\n"
           "  - id: chat\n"
           "    match: {method: POST, path_prefix: /v1/chat/completions}\n"
           "    control: a\n"
           "    variants:\n"
           "      - {id: a, upstream: mock, model: model-a, weight: 100}\n"
           "      - {id: b, upstream: mock, model: model-b, weight: 0, shadow: {fraction: 1.0}}\n",
           port, redis_sock, redis_sock, mock_port);
  sy_config_t *cfg = NULL;
  char err[1024];
  CHECK_MSG(sy_config_parse("loop.yaml", yaml, strlen(yaml), &cfg, err, sizeof err) == 0, "%s", err);
  sy_metrics_t m;
  CHECK(sy_metrics_create(&m, 1) == 0);
  pthread_t t;
  pthread_create(&t, NULL, client, NULL);
  int rc = cfg != NULL ? sy_worker_run("loop.yaml", cfg, &m, 0) : 1;
  CHECK_MSG(rc == 0, "sy_worker_run returned %d (3: handles left on the loop)", rc);
  pthread_join(t, NULL);
  sy_metrics_destroy(&m);
  kill(mock_pid, SIGTERM);
  waitpid(mock_pid, NULL, 0);
  kill(redis_pid, SIGTERM);
  waitpid(redis_pid, NULL, 0);
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf %.60s %.60s.data", redis_sock, redis_sock);
  if (system(cmd) != 0)
    fprintf(stderr, "cleanup failed\n");
  return CHECK_DONE();
}
