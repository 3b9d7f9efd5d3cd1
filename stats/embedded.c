/*
 * embedded.c — start and stop the embedded redis-server (see embedded.h for the
 * contract and the decisions: own process group, parent-death signal, one server per
 * data directory through a lock that the server itself holds).
 *
 * Start: create and resolve the data dir, find the binary, take DIR/embedded.lock,
 * make sure nothing answers on DIR/redis.sock (removing a stale socket file), fork,
 * exec, then poll PING over the socket with hiredis' blocking API until PONG, the
 * child's exit, or the deadline. Exec failures come back through a close-on-exec pipe,
 * so a missing or non-executable binary is reported as such, not as a timeout.
 */
#include "stats/embedded.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "base/err.h"

#define DEFAULT_START_MS 10000u
#define PING_TIMEOUT_MS 500u
#define POLL_MS 10u
#define TAIL_LINES 3
#define TAIL_BYTES 1024

/* The descriptors the server gets: 0 /dev/null, 1 and 2 the log, 3 the lock. */
#define CHILD_LOCK_FD 3
#define CHILD_ERR_FD 4

typedef struct spawn_s {
  const char *bin;
  char **argv;
  int nullfd, logfd, lockfd, errfd;
  pid_t parent;
  long maxfd;
} spawn_t;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
  nanosleep(&ts, NULL);
}

/* waitpid on one pid, retried on EINTR. */
static pid_t reap(pid_t pid, int *st, int flags) {
  pid_t r;
  do
    r = waitpid(pid, st, flags);
  while (r < 0 && errno == EINTR);
  return r;
}

/* A wait status as the shell shows it: the exit code, or 128 + signal; -1 otherwise. */
static int status_code(int st) {
  if (WIFEXITED(st))
    return WEXITSTATUS(st);
  if (WIFSIGNALED(st))
    return 128 + WTERMSIG(st);
  return -1;
}

/* ---- the data directory ---- */

/* mkdir -p with mode 0700 for every directory it creates. */
static int make_dirs(const char *path, char *err, size_t errlen) {
  char buf[PATH_MAX];
  size_t n = strlen(path);
  if (n >= sizeof(buf))
    return sy_errf(err, errlen, "data dir path is too long (%zu bytes)", n);
  memcpy(buf, path, n + 1);
  for (char *p = buf + 1;; p++) {
    if (*p != '/' && *p != '\0')
      continue;
    char c = *p;
    *p = '\0';
    if (mkdir(buf, 0700) < 0 && errno != EEXIST)
      return sy_errf(err, errlen, "cannot create data dir %s: %s", buf, strerror(errno));
    *p = c;
    if (c == '\0')
      break;
  }
  struct stat st;
  if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
    return sy_errf(err, errlen, "data dir %s is not a directory", path);
  return 0;
}

/* Creates the data dir and fills e->dir (absolute, resolved) and e->sock. */
static int set_paths(sy_embedded_t *e, const char *data_dir, char *err, size_t errlen) {
  if (make_dirs(data_dir, err, errlen) < 0)
    return -1;
  char *real = realpath(data_dir, NULL);
  if (real == NULL)
    return sy_errf(err, errlen, "cannot resolve data dir %s: %s", data_dir, strerror(errno));
  size_t n = strlen(real);
  if (n >= sizeof(e->dir)) {
    free(real);
    return sy_errf(err, errlen, "data dir path is too long (%zu bytes)", n);
  }
  memcpy(e->dir, real, n + 1);
  free(real);
  int w = snprintf(e->sock, sizeof(e->sock), "%s/redis.sock", e->dir);
  if (w < 0 || (size_t)w >= sizeof(e->sock))
    return sy_errf(err, errlen,
                "socket path %s/redis.sock is %d bytes, more than a unix socket allows "
                "(%zu); use a shorter data_dir",
                e->dir, w, sizeof(e->sock) - 1);
  return 0;
}

/* DIR/NAME into buf (which is large enough: e->dir is shorter than PATH_MAX). */
static void dir_file(const sy_embedded_t *e, const char *name, char *buf, size_t len) {
  snprintf(buf, len, "%s/%s", e->dir, name);
}

/* The pid in DIR/redis.pid, or -1. */
static long read_pidfile(const sy_embedded_t *e) {
  char path[PATH_MAX + 16], buf[32];
  dir_file(e, "redis.pid", path, sizeof(path));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  long pid = strtol(buf, NULL, 10);
  return pid > 0 ? pid : -1;
}

/* The last TAIL_LINES lines of DIR/redis.log on one line, joined by " | ". */
static void log_tail(const sy_embedded_t *e, char *out, size_t outlen) {
  char path[PATH_MAX + 16], buf[TAIL_BYTES + 1];
  dir_file(e, "redis.log", path, sizeof(path));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  off_t size = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);
  off_t from = size > TAIL_BYTES ? size - TAIL_BYTES : 0;
  ssize_t n = size <= 0 ? 0 : pread(fd, buf, (size_t)(size - from), from);
  if (fd >= 0)
    close(fd);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    n--;
  ssize_t start = n;
  for (int lines = 0; start > 0; start--)
    if (buf[start - 1] == '\n' && ++lines == TAIL_LINES)
      break;
  size_t o = 0;
  for (ssize_t i = start; i < n && o + 4 < outlen; i++) {
    unsigned char c = (unsigned char)buf[i];
    if (c == '\n') {
      memcpy(out + o, " | ", 3);
      o += 3;
    } else {
      out[o++] = c < ' ' ? ' ' : (char)c;
    }
  }
  if (outlen > 0)
    snprintf(out + o, outlen - o, "%s", n > 0 ? "" : "(empty)");
}

/* ---- one server per directory ---- */

/* Takes an exclusive lock on DIR/embedded.lock; *fd gets the (close-on-exec) descriptor. */
static int lock_dir(const sy_embedded_t *e, int *fd, char *err, size_t errlen) {
  char path[PATH_MAX + 16];
  dir_file(e, "embedded.lock", path, sizeof(path));
  *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (*fd < 0)
    return sy_errf(err, errlen, "cannot open %s: %s", path, strerror(errno));
  if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
    return 0;
  int en = errno;
  close(*fd);
  *fd = -1;
  if (en != EWOULDBLOCK)
    return sy_errf(err, errlen, "cannot lock %s: %s", path, strerror(en));
  long pid = read_pidfile(e);
  if (pid > 0)
    return sy_errf(err, errlen,
                "data dir %s is already served by redis-server pid %ld (another switchyard, "
                "or one left running); refusing to start a second server on it",
                e->dir, pid);
  return sy_errf(err, errlen, "data dir %s is in use: another process holds %s", e->dir, path);
}

/* 1 if something accepts connections on e->sock, 0 if not (a stale file is removed). */
static int probe_socket(const sy_embedded_t *e, char *err, size_t errlen) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  memcpy(sa.sun_path, e->sock, strlen(e->sock) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return sy_errf(err, errlen, "socket: %s", strerror(errno));
  struct timeval tv = {.tv_sec = 1}; /* bounds connect() when the backlog is full */
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
  int en = errno;
  close(fd);
  if (rc == 0)
    return 1;
  if (en == ENOENT)
    return 0;
  if (en != ECONNREFUSED)
    return sy_errf(err, errlen, "cannot probe %s: %s", e->sock, strerror(en));
  if (unlink(e->sock) < 0 && errno != ENOENT)
    return sy_errf(err, errlen, "cannot remove stale socket %s: %s", e->sock, strerror(errno));
  return 0;
}

/* The process_id from INFO of the server on sock, or -1. */
static long socket_server_pid(const char *sock) {
  struct timeval tv = {.tv_sec = 1};
  long pid = -1;
  redisContext *c = redisConnectUnixWithTimeout(sock, tv);
  if (c != NULL && c->err == 0 && redisSetTimeout(c, tv) == REDIS_OK) {
    redisReply *r = redisCommand(c, "INFO server");
    const char *p =
        r != NULL && r->type == REDIS_REPLY_STRING ? strstr(r->str, "process_id:") : NULL;
    if (p != NULL)
      pid = strtol(p + strlen("process_id:"), NULL, 10);
    if (r != NULL)
      freeReplyObject(r);
  }
  if (c != NULL)
    redisFree(c);
  return pid;
}

/* Refuses when a server (not started by a switchyard holding the lock) answers on DIR. */
static int check_no_server(const sy_embedded_t *e, char *err, size_t errlen) {
  int rc = probe_socket(e, err, errlen);
  if (rc <= 0)
    return rc;
  long pid = socket_server_pid(e->sock);
  if (pid > 0)
    return sy_errf(err, errlen,
                "a server (pid %ld) already answers on %s; refusing to start a second one "
                "on data dir %s",
                pid, e->sock, e->dir);
  return sy_errf(err, errlen, "something already accepts connections on %s; refusing to start",
              e->sock);
}

/* ---- fork and exec ---- */

/* Finds the binary: server itself if it has a '/', else the first match in PATH. */
static int find_server(const char *server, char *out, size_t outlen, char *err, size_t errlen) {
  if (strchr(server, '/') != NULL) {
    if (strlen(server) >= outlen)
      return sy_errf(err, errlen, "redis server path is too long");
    memcpy(out, server, strlen(server) + 1);
    return 0; /* a missing or non-executable file is reported by the exec */
  }
  const char *path = getenv("PATH");
  if (path == NULL || path[0] == '\0')
    path = "/usr/local/bin:/usr/bin:/bin";
  for (const char *p = path;; p += strcspn(p, ":") + 1) {
    int dlen = (int)strcspn(p, ":");
    int w = snprintf(out, outlen, "%.*s/%s", dlen, dlen > 0 ? p : ".", server);
    struct stat st;
    if (w > 0 && (size_t)w < outlen && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
        access(out, X_OK) == 0)
      return 0;
    if (p[dlen] == '\0')
      break;
  }
  return sy_errf(err, errlen, "redis server '%s' not found in PATH; set redis.server to its path",
              server);
}

static void child_fail(int fd, int en) __attribute__((noreturn));

static void child_fail(int fd, int en) {
  ssize_t w = write(fd, &en, sizeof(en));
  (void)w;
  _exit(127);
}

/* Sets up the descriptors: 0 /dev/null, 1-2 log, 3 lock, 4 error pipe; closes the rest. */
static void child_fds(const spawn_t *s) {
  int src[5] = {s->nullfd, s->logfd, s->logfd, s->lockfd, s->errfd};
  int hi[5];
  for (int i = 0; i < 5; i++) /* first out of the way of the targets 0..4 */
    if ((hi[i] = fcntl(src[i], F_DUPFD_CLOEXEC, CHILD_ERR_FD + 1)) < 0)
      child_fail(s->errfd, errno);
  for (int i = 0; i < CHILD_ERR_FD; i++) /* dup2 clears close-on-exec */
    if (dup2(hi[i], i) < 0)
      child_fail(hi[4], errno);
  if (dup3(hi[4], CHILD_ERR_FD, O_CLOEXEC) < 0)
    child_fail(hi[4], errno);
  if (close_range(CHILD_ERR_FD + 1, ~0u, 0) < 0)
    for (long fd = CHILD_ERR_FD + 1; fd < s->maxfd; fd++)
      close((int)fd);
}

/* In the child after fork: only async-signal-safe calls, then exec. */
static void child_exec(const spawn_t *s) __attribute__((noreturn));

static void child_exec(const spawn_t *s) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++)
    sigaction(sig, &sa, NULL); /* SIGKILL, SIGSTOP and libc's own fail harmlessly */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  setpgid(0, 0); /* own process group: see embedded.h */
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
    child_fail(s->errfd, errno);
  if (getppid() != s->parent) /* the master died before prctl took effect */
    child_fail(s->errfd, ESRCH);
  child_fds(s);
  execv(s->bin, s->argv);
  child_fail(CHILD_ERR_FD, errno);
}

/* Forks and execs; returns the pid, or -1 with err (exec errors included). */
static pid_t spawn(spawn_t *s, const char *logpath, char *err, size_t errlen) {
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0)
    return sy_errf(err, errlen, "pipe: %s", strerror(errno));
  s->errfd = pfd[1];
  s->logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int open_errno = errno;
  s->nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  s->parent = getpid();
  s->maxfd = sysconf(_SC_OPEN_MAX);
  pid_t pid = s->logfd >= 0 && s->nullfd >= 0 ? fork() : -1;
  int fork_errno = errno;
  if (pid == 0)
    child_exec(s);
  close(pfd[1]);
  if (s->logfd >= 0)
    close(s->logfd);
  if (s->nullfd >= 0)
    close(s->nullfd);
  int en = 0;
  ssize_t r = 0;
  if (pid > 0)
    do
      r = read(pfd[0], &en, sizeof(en));
    while (r < 0 && errno == EINTR);
  close(pfd[0]);
  if (s->logfd < 0)
    return sy_errf(err, errlen, "cannot open %s: %s", logpath, strerror(open_errno));
  if (pid < 0)
    return sy_errf(err, errlen, "cannot start %s: %s", s->bin, strerror(fork_errno));
  if (r == (ssize_t)sizeof(en)) {
    reap(pid, NULL, 0);
    return sy_errf(err, errlen, "cannot execute %s: %s", s->bin, strerror(en));
  }
  return pid;
}

/* Builds the server's command line and starts it; sets e->pid. */
static int launch(sy_embedded_t *e, const char *bin, int lockfd, char *err, size_t errlen) {
  char logpath[PATH_MAX + 16], pidpath[PATH_MAX + 16];
  dir_file(e, "redis.log", logpath, sizeof(logpath));
  dir_file(e, "redis.pid", pidpath, sizeof(pidpath));
  /* clang-format off */
  char *argv[] = {(char *)bin,
                  "--port", "0",
                  "--unixsocket", e->sock,
                  "--unixsocketperm", "700",
                  "--dir", e->dir,
                  "--appendonly", "yes",
                  "--appendfsync", "everysec",
                  "--save", "",
                  "--daemonize", "no",
                  "--logfile", logpath,
                  "--pidfile", pidpath,
                  NULL};
  /* clang-format on */
  spawn_t s = {.bin = bin, .argv = argv, .lockfd = lockfd};
  pid_t pid = spawn(&s, logpath, err, errlen);
  if (pid < 0)
    return -1;
  e->pid = pid;
  return 0;
}

/* 1 if the server on sock answers PING with PONG within ms. */
static int ping_once(const char *sock, unsigned ms) {
  struct timeval tv = {.tv_sec = ms / 1000u, .tv_usec = (long)(ms % 1000u) * 1000L};
  int ok = 0;
  redisContext *c = redisConnectUnixWithTimeout(sock, tv);
  if (c != NULL && c->err == 0 && redisSetTimeout(c, tv) == REDIS_OK) {
    redisReply *r = redisCommand(c, "PING");
    ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    if (r != NULL)
      freeReplyObject(r);
  }
  if (c != NULL)
    redisFree(c);
  return ok;
}

/* Describes a wait status for an error message. */
static void describe_status(int st, char *buf, size_t len) {
  if (WIFEXITED(st))
    snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
  else if (WIFSIGNALED(st))
    snprintf(buf, len, "killed by signal %d, %s", WTERMSIG(st), strsignal(WTERMSIG(st)));
  else
    snprintf(buf, len, "wait status %d", st);
}

/* Polls until PONG, the child's exit, or the deadline; on failure no child is left. */
static int wait_ready(sy_embedded_t *e, unsigned timeout_ms, char *err, size_t errlen) {
  char tail[512], how[96];
  uint64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    int st;
    pid_t r = reap(e->pid, &st, WNOHANG);
    if (r == e->pid || r < 0) {
      if (r < 0)
        snprintf(how, sizeof(how), "reaped elsewhere: %s", strerror(errno));
      else
        describe_status(st, how, sizeof(how));
      e->pid = 0;
      log_tail(e, tail, sizeof(tail));
      return sy_errf(err, errlen, "redis-server exited during startup (%s); %s/redis.log: %s", how,
                  e->dir, tail);
    }
    uint64_t now = now_ms();
    unsigned left = now < deadline ? (unsigned)(deadline - now) : 1u;
    if (ping_once(e->sock, left < PING_TIMEOUT_MS ? left : PING_TIMEOUT_MS))
      return 0;
    if (now_ms() >= deadline)
      break;
    sleep_ms(POLL_MS);
  }
  pid_t pid = e->pid;
  sy_embedded_stop(e, 1000);
  log_tail(e, tail, sizeof(tail));
  return sy_errf(err, errlen,
              "redis-server pid %d did not answer PING on %s within %u ms; "
              "%s/redis.log: %s",
              (int)pid, e->sock, timeout_ms, e->dir, tail);
}

int sy_embedded_start(sy_embedded_t *e, const char *data_dir, const char *server,
                      unsigned timeout_ms, char *err, size_t errlen) {
  char bin[PATH_MAX];
  memset(e, 0, sizeof(*e));
  if (data_dir == NULL || data_dir[0] == '\0')
    return sy_errf(err, errlen, "embedded redis: empty data dir");
  if (server == NULL || server[0] == '\0')
    server = "redis-server";
  if (timeout_ms == 0)
    timeout_ms = DEFAULT_START_MS;
  if (set_paths(e, data_dir, err, errlen) < 0 ||
      find_server(server, bin, sizeof(bin), err, errlen) < 0)
    return -1;
  int lockfd;
  if (lock_dir(e, &lockfd, err, errlen) < 0)
    return -1;
  int rc = check_no_server(e, err, errlen);
  if (rc == 0)
    rc = launch(e, bin, lockfd, err, errlen);
  if (rc == 0)
    rc = wait_ready(e, timeout_ms, err, errlen);
  close(lockfd); /* from now on only the server holds the lock */
  return rc;
}

int sy_embedded_stop(sy_embedded_t *e, unsigned timeout_ms) {
  if (e == NULL || e->pid <= 0)
    return -1;
  pid_t pid = e->pid;
  int st = 0;
  e->pid = 0;
  pid_t r = reap(pid, &st, WNOHANG);
  if (r != 0) /* it exited already, or someone else reaped it: send nothing */
    return r == pid ? status_code(st) : -1;
  kill(pid, SIGTERM);
  uint64_t deadline = now_ms() + timeout_ms;
  while (now_ms() < deadline) {
    sleep_ms(timeout_ms < 5u ? 1u : 5u);
    if ((r = reap(pid, &st, WNOHANG)) != 0)
      return r == pid ? status_code(st) : -1;
  }
  if (kill(-pid, SIGKILL) < 0) /* its group: an AOF-rewrite child too */
    kill(pid, SIGKILL);
  r = reap(pid, &st, 0);
  return r == pid ? status_code(st) : -1;
}
