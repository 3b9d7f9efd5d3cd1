/*
 * test_embedded.c — the Redis URL parser (stats/redis_url.c) and the embedded
 * redis-server (stats/embedded.c), the latter against the real /usr/bin/redis-server.
 *
 * URL parsing: a table of good URLs checked field by field and of bad ones checked
 * for their message (and that the password never shows up in it).
 * Embedded: start in a fresh temp dir, PING, SET, stop with exit status 0, start again
 * and GET the key back from the AOF; the child's process group, signal mask and
 * descriptors; a second start on a served dir is refused naming the pid; a foreign
 * server on the socket is refused; a stale socket file is removed; a missing binary,
 * a server that exits at once and one that never answers fail with clear errors and
 * leave no child; a too-long socket path is refused; the server dies (cleanly, AOF
 * kept) with its parent.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "stats/embedded.h"
#include "stats/redis_url.h"
#include "tests/unit/check.h"

#define REDIS_SERVER "/usr/bin/redis-server"

/* ---- URL parsing ---- */

typedef struct good_url_s {
  const char *url;
  int is_unix;
  const char *host;
  unsigned port;
  const char *path;
  unsigned db;
  const char *password;
  const char *username;
} good_url_t;

static const good_url_t good_urls[] = {
    {"redis://localhost", 0, "localhost", 6379, "", 0, "", ""},
    {"redis://:pw@10.0.0.1:6380/2", 0, "10.0.0.1", 6380, "", 2, "pw", ""},
    {"redis://user:p%40ss@h/0", 0, "h", 6379, "", 0, "p@ss", "user"},
    {"redis://[::1]:7000", 0, "::1", 7000, "", 0, "", ""},
    {"redis://[fe80::1:2]", 0, "fe80::1:2", 6379, "", 0, "", ""},
    {"unix:///tmp/r.sock?db=3", 1, "", 0, "/tmp/r.sock", 3, "", ""},
    {"unix:///tmp/r.sock", 1, "", 0, "/tmp/r.sock", 0, "", ""},
    {"unix:///tmp/r.sock?db=1&password=a%26b%3D", 1, "", 0, "/tmp/r.sock", 1, "a&b=", ""},
    {"unix:///run/my%20dir/r.sock?password=x", 1, "", 0, "/run/my dir/r.sock", 0, "x", ""},
    {"REDIS://Cache-1.example.com:65535/", 0, "Cache-1.example.com", 65535, "", 0, "", ""},
    {"redis://u%3Ax:@h:1/15", 0, "h", 1, "", 15, "", "u:x"},
    {"redis://:a:b@c@h", 0, "h", 6379, "", 0, "a:b@c", ""},
};

static void test_url_good(void) {
  for (size_t i = 0; i < sizeof(good_urls) / sizeof(good_urls[0]); i++) {
    const good_url_t *g = &good_urls[i];
    sy_redis_addr_t a;
    char err[256] = "";
    int rc = sy_redis_url_parse(g->url, &a, err, sizeof(err));
    CHECK_MSG(rc == 0, "%s: %s", g->url, err);
    if (rc != 0)
      continue;
    CHECK_MSG(a.is_unix == g->is_unix, "%s", g->url);
    CHECK_MSG(strcmp(a.host, g->host) == 0, "%s: host '%s'", g->url, a.host);
    CHECK_MSG(a.port == g->port, "%s: port %u", g->url, a.port);
    CHECK_MSG(strcmp(a.path, g->path) == 0, "%s: path '%s'", g->url, a.path);
    CHECK_MSG(a.db == g->db, "%s: db %u", g->url, a.db);
    CHECK_MSG(strcmp(a.password, g->password) == 0, "%s: password '%s'", g->url, a.password);
    CHECK_MSG(strcmp(a.username, g->username) == 0, "%s: username '%s'", g->url, a.username);
  }
}

typedef struct bad_url_s {
  const char *url;
  const char *msg; /* a substring of the error (the whole message where it is fixed) */
} bad_url_t;

static const bad_url_t bad_urls[] = {
    {"http://x", "unsupported scheme 'http' (redis:// or unix://)"},
    {"rediss://x", "rediss:// (TLS) is not supported"},
    {"redis://h:99999", "bad port '99999' (1-65535)"},
    {"", "empty Redis URL"},
    {"redis://h:0", "bad port '0'"},
    {"redis://h:", "bad port ''"},
    {"redis://h:12ab", "bad port '12ab'"},
    {"redis://", "missing host"},
    {"redis://:pw@", "missing host"},
    {"redis://::1:6379", "IPv6 address goes in brackets"},
    {"redis://[::1", "unterminated '['"},
    {"redis://[::1]x", "unexpected 'x' after ']'"},
    {"redis://[zz]", "bad IPv6 address"},
    {"redis://h_st$/", "bad host 'h_st$'"},
    {"redis://secret@h", "userinfo without ':' is ambiguous"},
    {"redis://:se%zzret@h", "bad percent-encoding in the password"},
    {"redis://:se%2@h", "bad percent-encoding in the password"},
    {"redis://:se%00cret@h", "the password contains %00"},
    {"redis://h/x", "bad database number 'x'"},
    {"redis://h/1/2", "bad database number '1/2'"},
    {"redis://h/99999999999", "bad database number"},
    {"redis://h?db=1", "query parameters are only supported in unix:// URLs"},
    {"redis://h/0#frag", "fragment"},
    {"redis://h x", "space or a control character"},
    {"localhost:6379", "has no scheme"},
    {"unix://tmp/r.sock", "unix:// needs an absolute path"},
    {"unix:///", "names a directory"},
    {"unix:///tmp/r.sock?foo=1", "unknown parameter 'foo' (db, password)"},
    {"unix:///tmp/r.sock?db", "parameter 'db' has no value"},
    {"unix:///tmp/r.sock?db=1&db=2", "parameter 'db' is given twice"},
    {"unix:///tmp/r.sock?db=-1", "bad database number '-1'"},
    {"unix:///tmp/r.sock?password=%4", "bad percent-encoding in the password"},
};

static void test_url_bad(void) {
  for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
    sy_redis_addr_t a;
    memset(&a, 0x5a, sizeof(a));
    char err[256] = "";
    int rc = sy_redis_url_parse(bad_urls[i].url, &a, err, sizeof(err));
    CHECK_MSG(rc == -1, "'%s' was accepted", bad_urls[i].url);
    CHECK_MSG(strstr(err, bad_urls[i].msg) != NULL, "'%s': got '%s', want '%s'", bad_urls[i].url,
              err, bad_urls[i].msg);
    CHECK_MSG(strchr(err, '\n') == NULL, "'%s': message has a newline", bad_urls[i].url);
    unsigned char *p = (unsigned char *)&a;
    size_t touched = 0;
    for (size_t k = 0; k < sizeof(a); k++)
      touched += p[k] != 0x5a;
    CHECK_MSG(touched == 0, "'%s': *out was modified on error", bad_urls[i].url);
  }
}

static void test_url_edges(void) {
  sy_redis_addr_t a;
  char err[256] = "";
  /* exact messages from the brief */
  CHECK(sy_redis_url_parse("http://x", &a, err, sizeof(err)) == -1);
  CHECK(strcmp(err, "unsupported scheme 'http' (redis:// or unix://)") == 0);
  CHECK(sy_redis_url_parse("rediss://x", &a, err, sizeof(err)) == -1);
  CHECK(strcmp(err, "rediss:// (TLS) is not supported") == 0);
  CHECK(sy_redis_url_parse(NULL, &a, err, sizeof(err)) == -1);
  CHECK(sy_redis_url_parse("redis://h", &a, NULL, 0) == 0);
  CHECK(sy_redis_url_parse("http://h", &a, NULL, 0) == -1);
  /* the password is never echoed, whatever else is wrong */
  CHECK(sy_redis_url_parse("redis://:hunter2@h:99999", &a, err, sizeof(err)) == -1);
  CHECK_MSG(strstr(err, "hunter2") == NULL, "%s", err);
  CHECK(sy_redis_url_parse("redis://hunter2@h", &a, err, sizeof(err)) == -1);
  CHECK_MSG(strstr(err, "hunter2") == NULL, "%s", err);
  /* lengths: 255 password bytes fit, 256 do not; 107 path bytes fit, 108 do not */
  char url[700], pw[300];
  memset(pw, 'p', 256);
  pw[255] = '\0';
  snprintf(url, sizeof(url), "redis://:%s@h", pw);
  CHECK(sy_redis_url_parse(url, &a, err, sizeof(err)) == 0 && strlen(a.password) == 255);
  pw[255] = 'p';
  pw[256] = '\0';
  snprintf(url, sizeof(url), "redis://:%s@h", pw);
  CHECK(sy_redis_url_parse(url, &a, err, sizeof(err)) == -1);
  CHECK_MSG(strstr(err, "password is too long") != NULL, "%s", err);
  char path[200] = "/";
  memset(path + 1, 's', 106);
  path[107] = '\0';
  snprintf(url, sizeof(url), "unix://%s", path);
  CHECK(sy_redis_url_parse(url, &a, err, sizeof(err)) == 0 && strlen(a.path) == 107);
  snprintf(url, sizeof(url), "unix://%ss", path);
  CHECK(sy_redis_url_parse(url, &a, err, sizeof(err)) == -1);
  CHECK_MSG(strstr(err, "socket path is too long") != NULL, "%s", err);
  /* a short error buffer is still terminated */
  char small[8];
  CHECK(sy_redis_url_parse("http://x", &a, small, sizeof(small)) == -1);
  CHECK(strlen(small) == 7);
}

/* ---- helpers for the embedded tests ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static void rm_rf(const char *dir) {
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Runs one command on the socket; returns the reply (caller frees) or NULL. */
static redisReply *command(const char *sock, const char *fmt, const char *a1, const char *a2) {
  struct timeval tv = {.tv_sec = 2};
  redisContext *c = redisConnectUnixWithTimeout(sock, tv);
  redisReply *r = NULL;
  if (c != NULL && c->err == 0)
    r = redisCommand(c, fmt, a1, a2);
  if (c != NULL)
    redisFree(c);
  return r;
}

/* 1 if the reply is a status or string equal to want. */
static int reply_is(redisReply *r, const char *want) {
  int ok = r != NULL && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING) &&
           strcmp(r->str, want) == 0;
  if (r != NULL)
    freeReplyObject(r);
  return ok;
}

static int pings(const char *sock) {
  return reply_is(command(sock, "PING", NULL, NULL), "PONG");
}

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

/* The "SigBlk:" line of /proc/PID/status, or "". */
static void sig_blocked(pid_t pid, char *out, size_t len) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  out[0] = '\0';
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, "SigBlk:", 7) == 0)
      snprintf(out, len, "%s", line + 7 + strspn(line + 7, " \t"));
  fclose(f);
}

/* 1 if any descriptor of pid points at target. */
static int has_fd_to(pid_t pid, const char *target) {
  char dpath[64], lpath[PATH_MAX], link[PATH_MAX];
  snprintf(dpath, sizeof(dpath), "/proc/%d/fd", (int)pid);
  DIR *d = opendir(dpath);
  int found = 0;
  struct dirent *de;
  while (d != NULL && (de = readdir(d)) != NULL) {
    snprintf(lpath, sizeof(lpath), "%s/%s", dpath, de->d_name);
    ssize_t n = readlink(lpath, link, sizeof(link) - 1);
    if (n > 0) {
      link[n] = '\0';
      found |= strcmp(link, target) == 0;
    }
  }
  if (d != NULL)
    closedir(d);
  return found;
}

/* The target of /proc/PID/fd/FD, or "". */
static void fd_target(pid_t pid, int fd, char *out, size_t len) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
  ssize_t n = readlink(path, out, len - 1);
  out[n > 0 ? n : 0] = '\0';
}

/* ---- embedded ---- */

/* The child's environment: process group, signal mask, descriptors. */
static void check_child_env(const sy_embedded_t *e, const char *marker) {
  char buf[PATH_MAX], want[PATH_MAX + 32];
  CHECK(getpgid(e->pid) == e->pid);
  CHECK(getpgid(e->pid) != getpgrp());
  sig_blocked(e->pid, buf, sizeof(buf));
  CHECK_MSG(strncmp(buf, "0000000000000000", 16) == 0, "SigBlk %s", buf);
  fd_target(e->pid, 0, buf, sizeof(buf));
  CHECK_MSG(strcmp(buf, "/dev/null") == 0, "fd 0 -> %s", buf);
  fd_target(e->pid, 3, buf, sizeof(buf));
  snprintf(want, sizeof(want), "%s/embedded.lock", e->dir);
  CHECK_MSG(strcmp(buf, want) == 0, "fd 3 -> %s", buf);
  snprintf(want, sizeof(want), "%s/redis.log", e->dir);
  fd_target(e->pid, 1, buf, sizeof(buf));
  CHECK_MSG(strcmp(buf, want) == 0, "fd 1 -> %s", buf);
  CHECK_MSG(!has_fd_to(e->pid, marker), "the server inherited an fd to %s", marker);
}

/* Start, PING, SET, stop (status 0), start again, GET back from the AOF, stop. */
static void test_start_stop_reuse(const char *tmp) {
  char dir[PATH_MAX], marker[PATH_MAX], path[PATH_MAX + 32];
  char err[1024] = "";
  snprintf(dir, sizeof(dir), "%s/data/sub", tmp);
  snprintf(marker, sizeof(marker), "%s/marker", tmp);
  /* deliberately not close-on-exec, and above the descriptors the child sets up */
  int mfd0 = open(marker, O_WRONLY | O_CREAT, 0600);
  int mfd = fcntl(mfd0, F_DUPFD, 20);
  close(mfd0);
  CHECK(mfd >= 20);
  /* as the master does before sigwait(): the server must not inherit the mask */
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, &old);

  sy_embedded_t e;
  int rc = sy_embedded_start(&e, dir, REDIS_SERVER, 10000, err, sizeof(err));
  CHECK_MSG(rc == 0, "%s", err);
  CHECK(e.pid > 0);
  struct stat st;
  CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
  snprintf(path, sizeof(path), "%s/data", tmp);
  CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0700);
  snprintf(path, sizeof(path), "%s/redis.sock", e.dir);
  CHECK(strcmp(e.sock, path) == 0);
  CHECK(e.dir[0] == '/');
  CHECK(pings(e.sock));
  CHECK(reply_is(command(e.sock, "SET %s %s", "sy:test", "hello"), "OK"));
  check_child_env(&e, marker);
  pid_t pid = e.pid;
  CHECK(sy_embedded_stop(&e, 5000) == 0);
  CHECK(e.pid == 0);
  CHECK(kill(pid, 0) == -1 && errno == ESRCH); /* reaped, not a zombie */
  CHECK(!exists(e.sock));
  snprintf(path, sizeof(path), "%s/appendonlydir", e.dir);
  CHECK(exists(path));

  rc = sy_embedded_start(&e, dir, REDIS_SERVER, 10000, err, sizeof(err));
  CHECK_MSG(rc == 0, "%s", err);
  CHECK(reply_is(command(e.sock, "GET %s", "sy:test", NULL), "hello"));
  CHECK(sy_embedded_stop(&e, 5000) == 0);
  sigprocmask(SIG_SETMASK, &old, NULL);
  close(mfd);
}

/* A second start on a dir whose server runs is refused and names the pid. */
static void test_second_start_refused(const char *tmp) {
  char dir[PATH_MAX], err[1024] = "", want[64];
  snprintf(dir, sizeof(dir), "%s/twice", tmp);
  sy_embedded_t a, b;
  int rc = sy_embedded_start(&a, dir, REDIS_SERVER, 10000, err, sizeof(err));
  CHECK_MSG(rc == 0, "%s", err);
  if (rc != 0)
    return;
  rc = sy_embedded_start(&b, dir, REDIS_SERVER, 10000, err, sizeof(err));
  CHECK(rc == -1);
  CHECK(b.pid == 0);
  snprintf(want, sizeof(want), "redis-server pid %d", (int)a.pid);
  CHECK_MSG(strstr(err, want) != NULL, "got '%s'", err);
  CHECK(exists(a.sock));
  CHECK(pings(a.sock));

  /* a server that holds no lock but answers on DIR/redis.sock: refused by the probe */
  char other[PATH_MAX], link[PATH_MAX + 32];
  snprintf(other, sizeof(other), "%s/foreign", tmp);
  mkdir(other, 0700);
  snprintf(link, sizeof(link), "%s/redis.sock", other);
  CHECK(symlink(a.sock, link) == 0);
  rc = sy_embedded_start(&b, other, REDIS_SERVER, 10000, err, sizeof(err));
  CHECK(rc == -1);
  snprintf(want, sizeof(want), "a server (pid %d) already answers", (int)a.pid);
  CHECK_MSG(strstr(err, want) != NULL, "got '%s'", err);
  CHECK(exists(link));
  CHECK(pings(a.sock));
  CHECK(sy_embedded_stop(&a, 5000) == 0);
}

/* A socket file nobody listens on is removed and the start succeeds (relative dir). */
static void test_stale_socket(const char *tmp) {
  char dir[PATH_MAX], err[1024] = "";
  snprintf(dir, sizeof(dir), "%s/stale dir", tmp);
  mkdir(dir, 0700);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  char sock[PATH_MAX + 32];
  int n = snprintf(sock, sizeof(sock), "%s/redis.sock", dir);
  CHECK(n > 0 && (size_t)n < sizeof(sa.sun_path));
  memcpy(sa.sun_path, sock, strlen(sock) < sizeof(sa.sun_path) ? strlen(sock) + 1 : 0);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
  close(fd); /* the file stays; connecting to it is refused */
  CHECK(exists(sa.sun_path));

  char cwd[PATH_MAX];
  CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
  CHECK(chdir(tmp) == 0);
  sy_embedded_t e;
  int rc = sy_embedded_start(&e, "stale dir", REDIS_SERVER, 10000, err, sizeof(err));
  CHECK(chdir(cwd) == 0);
  CHECK_MSG(rc == 0, "%s", err);
  CHECK(e.dir[0] == '/' && strstr(e.dir, "/stale dir") != NULL);
  CHECK(pings(e.sock));
  CHECK(sy_embedded_stop(&e, 5000) == 0);
}

/* Writes an executable shell script. */
static void write_script(const char *path, const char *body) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return;
  fprintf(f, "#!/bin/sh\n%s\n", body);
  fclose(f);
  chmod(path, 0700);
}

/* Missing binaries, a server that exits at once, one that never answers. */
static void test_bad_servers(const char *tmp) {
  char dir[PATH_MAX], script[PATH_MAX + 32], err[1024] = "";
  snprintf(dir, sizeof(dir), "%s/bad", tmp);
  sy_embedded_t e;
  CHECK(sy_embedded_start(&e, dir, "/nonexistent/redis-server", 2000, err, sizeof(err)) == -1);
  CHECK(e.pid == 0);
  CHECK_MSG(strstr(err, "cannot execute /nonexistent/redis-server: No such file") != NULL,
            "got '%s'", err);
  CHECK(sy_embedded_start(&e, dir, "no-such-redis-server-xyz", 2000, err, sizeof(err)) == -1);
  CHECK_MSG(strstr(err, "'no-such-redis-server-xyz' not found in PATH") != NULL, "got '%s'", err);

  snprintf(script, sizeof(script), "%s/exits.sh", tmp);
  write_script(script, "echo 'fake: bad config' >&2\nexit 3");
  CHECK(sy_embedded_start(&e, dir, script, 5000, err, sizeof(err)) == -1);
  CHECK(e.pid == 0);
  CHECK_MSG(strstr(err, "exited during startup (exit status 3)") != NULL, "got '%s'", err);
  CHECK_MSG(strstr(err, "fake: bad config") != NULL, "got '%s'", err);

  snprintf(script, sizeof(script), "%s/hangs.sh", tmp);
  write_script(script, "echo 'fake: hanging'\nexec sleep 30");
  uint64_t t0 = now_ms();
  CHECK(sy_embedded_start(&e, dir, script, 300, err, sizeof(err)) == -1);
  uint64_t took = now_ms() - t0;
  CHECK(e.pid == 0);
  CHECK_MSG(took >= 300 && took < 3000, "took %llu ms", (unsigned long long)took);
  CHECK_MSG(strstr(err, "did not answer PING") != NULL && strstr(err, "fake: hanging") != NULL,
            "got '%s'", err);
  pid_t left = -1;
  const char *p = strstr(err, "pid ");
  if (p != NULL)
    left = (pid_t)atoi(p + 4);
  CHECK(left > 0 && kill(left, 0) == -1 && errno == ESRCH);
  CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD); /* no child left behind */
}

/* Not running: stop does nothing; a too-long socket path is refused. */
static void test_edges(const char *tmp) {
  sy_embedded_t e;
  memset(&e, 0, sizeof(e));
  CHECK(sy_embedded_stop(&e, 100) == -1);
  CHECK(sy_embedded_stop(NULL, 100) == -1);
  CHECK(e.pid == 0);

  char dir[PATH_MAX], err[1024] = "";
  int n = snprintf(dir, sizeof(dir), "%s/", tmp);
  memset(dir + n, 'd', 100);
  dir[n + 100] = '\0';
  CHECK(sy_embedded_start(&e, dir, REDIS_SERVER, 2000, err, sizeof(err)) == -1);
  CHECK(e.pid == 0);
  CHECK_MSG(strstr(err, "more than a unix socket allows (107)") != NULL, "got '%s'", err);
  CHECK(sy_embedded_start(&e, "", REDIS_SERVER, 2000, err, sizeof(err)) == -1);
}

/* The grandchild server dies with its parent (PR_SET_PDEATHSIG), flushing the AOF. */
static void test_parent_death(const char *tmp) {
  char dir[PATH_MAX], err[1024] = "";
  snprintf(dir, sizeof(dir), "%s/orphan", tmp);
  int pfd[2];
  CHECK(pipe(pfd) == 0);
  CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  pid_t mid = fork();
  if (mid == 0) {
    sy_embedded_t e;
    pid_t pid = 0;
    if (sy_embedded_start(&e, dir, REDIS_SERVER, 10000, err, sizeof(err)) == 0 &&
        reply_is(command(e.sock, "SET %s %s", "sy:orphan", "kept"), "OK"))
      pid = e.pid;
    ssize_t w = write(pfd[1], &pid, sizeof(pid));
    (void)w;
    raise(SIGKILL); /* a crash: no sy_embedded_stop */
  }
  close(pfd[1]);
  pid_t server = 0;
  CHECK(read(pfd[0], &server, sizeof(server)) == (ssize_t)sizeof(server));
  close(pfd[0]);
  CHECK(waitpid(mid, NULL, 0) == mid);
  CHECK(server > 0);
  /* The orphan is reparented to us (subreaper): reap it and see how it ended. */
  int st = -1;
  pid_t r = 0;
  uint64_t t0 = now_ms();
  while (server > 0 && (r = waitpid(server, &st, WNOHANG)) == 0 && now_ms() - t0 < 5000)
    usleep(10000);
  CHECK_MSG(r == server, "server %d outlived its parent", (int)server);
  CHECK_MSG(r == server && WIFEXITED(st) && WEXITSTATUS(st) == 0, "wait status %d", st);
  if (r == 0 && server > 0) { /* do not leave it running */
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
  }

  sy_embedded_t e;
  int rc = sy_embedded_start(&e, dir, REDIS_SERVER, 10000, err, sizeof(err));
  CHECK_MSG(rc == 0, "restart after the parent's death: %s", err);
  CHECK(reply_is(command(e.sock, "GET %s", "sy:orphan", NULL), "kept"));
  CHECK(sy_embedded_stop(&e, 5000) == 0);
}

int main(void) {
  test_url_good();
  test_url_bad();
  test_url_edges();

  char tmp[] = "/tmp/sy-embedded-XXXXXX";
  if (mkdtemp(tmp) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  test_start_stop_reuse(tmp);
  test_second_start_refused(tmp);
  test_stale_socket(tmp);
  test_bad_servers(tmp);
  test_edges(tmp);
  test_parent_death(tmp);
  rm_rf(tmp);
  CHECK(!exists(tmp));
  return CHECK_DONE();
}
