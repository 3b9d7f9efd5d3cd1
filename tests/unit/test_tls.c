/*
 * test_tls.c — the TLS engine (router/tls.c) against real `openssl s_server`
 * processes on loopback, with certificates this test makes with the openssl
 * command: a CA and, signed by it, a good certificate for localhost/127.0.0.1, one
 * for another name, an expired one, one for the SNI name beta.test, a client
 * certificate; and an unrelated CA.
 *
 * The engine does no I/O; here a blocking socket with poll() moves its bytes.
 * Checked: a verified handshake and a request through it, ALPN http/1.1, IP-address
 * verification, resumption on the next connection, two SNI names on one address
 * presenting two certificates, mTLS (with and without a client certificate), and
 * the errors an operator must be able to read: unknown CA, expired, another name,
 * a server that does not speak TLS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "router/tls.h"
#include "tests/unit/check.h"
#include "tests/unit/tmpdir_fixture.h"
#include "tests/unit/loopback.h"

/* s_server negotiates ALPN only on its first certificate's context: not on the SNI
 * one (-cert2), so that connection is not asked for it. */
static const char *no_alpn_host = "";

static void path(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", dir, name);
}

/* CA, server certificates (good, other name, expired, beta.test), client, other CA. */
static int make_certs(void) {
  const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
  char cmd[2048];
  snprintf(
      cmd, sizeof cmd,
      "openssl req -x509 %s -keyout ca.key -out ca.pem -days 30 -subj '/CN=switchyard test CA' "
      "&& openssl req -x509 %s -keyout other-ca.key -out other-ca.pem -days 30 "
      "-subj '/CN=another CA'",
      ec, ec);
  if (run(cmd) != 0)
    return -1;
  static const struct {
    const char *name, *san, *days;
  } certs[] = {{"good", "DNS:localhost,IP:127.0.0.1", "30"},
               {"othername", "DNS:other.example", "30"},
               {"expired", "DNS:localhost,IP:127.0.0.1", "-1"},
               {"beta", "DNS:beta.test", "30"},
               {"client", "DNS:client.test", "30"}};
  for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++) {
    snprintf(cmd, sizeof cmd,
             "openssl req %s -keyout %s.key -out %s.csr -subj '/CN=%s' && "
             "printf 'subjectAltName=%s\\n' > %s.ext && "
             "openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out %s.pem "
             "-days %s -extfile %s.ext",
             ec, certs[i].name, certs[i].name, certs[i].name, certs[i].san, certs[i].name,
             certs[i].name, certs[i].name, certs[i].days, certs[i].name);
    if (run(cmd) != 0)
      return -1;
  }
  return 0;
}

/* `openssl s_server` on port with the given certificate and extra arguments. */
static pid_t start_server(int port, const char *cert, const char *extra) {
  char argv_s[2048];
  snprintf(argv_s, sizeof argv_s,
           "exec openssl s_server -accept 127.0.0.1:%d -cert %s/%s.pem -key %s/%s.key -www "
           "-alpn http/1.1 -quiet %s",
           port, dir, cert, dir, cert, extra);
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", 1);
    dup2(null, 1);
    dup2(null, 2);
    execl("/bin/sh", "sh", "-c", argv_s, (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 200; i++) { /* up to 10 s */
    int s = sy_test_dial(port);
    if (s >= 0) {
      close(s);
      return pid;
    }
    usleep(50000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

static void stop(pid_t pid) {
  if (pid > 0) {
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
  }
}

/* Sends whatever the engine has for the peer. */
static int flush_out(sy_tls_t *t, int s) {
  char buf[16384];
  size_t n;
  while ((n = sy_tls_drain(t, buf, sizeof buf)) > 0)
    if (send(s, buf, n, MSG_NOSIGNAL) != (ssize_t)n)
      return -1;
  return 0;
}

/* Reads what the socket has (waiting up to 5 s) into the engine; 0, or -1 on EOF,
 * error or timeout. */
static int pull_in(sy_tls_t *t, int s) {
  struct pollfd p = {.fd = s, .events = POLLIN};
  if (poll(&p, 1, 5000) != 1)
    return -1;
  char buf[16384];
  ssize_t n = recv(s, buf, sizeof buf, 0);
  if (n <= 0)
    return -1;
  return sy_tls_feed(t, buf, (size_t)n);
}

/* A handshake over socket s: SY_TLS_OK or SY_TLS_ERROR (also on a stall). */
static sy_tls_status_t handshake(sy_tls_t *t, int s) {
  for (int i = 0; i < 50; i++) {
    sy_tls_status_t st = sy_tls_handshake(t);
    if (flush_out(t, s) < 0)
      return SY_TLS_ERROR;
    if (st != SY_TLS_WANT)
      return st;
    if (pull_in(t, s) < 0)
      return sy_tls_handshake(t) == SY_TLS_OK ? SY_TLS_OK : SY_TLS_ERROR;
  }
  return SY_TLS_ERROR;
}

/* GET / through t; returns 1 if the answer starts "HTTP/1.0 200". */
static int get_ok(sy_tls_t *t, int s) {
  const char req[] = "GET / HTTP/1.0\r\n\r\n";
  if (sy_tls_write(t, req, sizeof req - 1) != SY_TLS_OK || flush_out(t, s) < 0)
    return 0;
  char resp[65536];
  size_t have = 0;
  for (int i = 0; i < 100 && have < 12; i++) {
    size_t got = 0;
    sy_tls_status_t st = sy_tls_read(t, resp + have, sizeof resp - have - 1, &got);
    if (st == SY_TLS_OK) {
      have += got;
      continue;
    }
    if (st != SY_TLS_WANT || flush_out(t, s) < 0 || pull_in(t, s) < 0)
      break;
  }
  /* Read on until the server closes: TLS 1.3 tickets come with the data. */
  for (int i = 0; i < 100; i++) {
    size_t got = 0;
    char sink[4096];
    sy_tls_status_t st = sy_tls_read(t, sink, sizeof sink, &got);
    if (st == SY_TLS_OK)
      continue;
    if (st != SY_TLS_WANT || pull_in(t, s) < 0)
      break;
  }
  resp[have] = '\0';
  return strncmp(resp, "HTTP/1.0 200", 12) == 0;
}

/* One connection to port as `host`; returns the handshake status and copies the
 * error; *resumed and *req_ok are set when it succeeds. */
static sy_tls_status_t connect_as(sy_tls_ctx_t *ctx, int port, const char *host, char *err,
                                  size_t errlen, int *resumed, int *req_ok) {
  int s = sy_test_dial(port);
  if (s < 0) {
    snprintf(err, errlen, "connect failed");
    return SY_TLS_ERROR;
  }
  sy_tls_t *t = sy_tls_new(ctx, host);
  sy_tls_status_t st = handshake(t, s);
  snprintf(err, errlen, "%s", sy_tls_error(t));
  if (st == SY_TLS_OK) {
    if (resumed)
      *resumed = sy_tls_resumed(t);
    char alpn[32];
    sy_tls_alpn(t, alpn, sizeof alpn);
    CHECK_MSG(strcmp(alpn, "http/1.1") == 0 || strcmp(host, no_alpn_host) == 0, "ALPN '%s' with %s",
              alpn, host);
    if (req_ok)
      *req_ok = get_ok(t, s);
  }
  sy_tls_free(t);
  close(s);
  return st;
}

static sy_tls_ctx_t *ctx_with(const char *ca, const char *cert) {
  char ca_p[256], cert_p[256], key_p[256], err[512];
  path(ca_p, sizeof ca_p, ca);
  sy_tls_conf_t c = {ca_p, NULL, NULL, 0, 0};
  if (cert != NULL) {
    snprintf(cert_p, sizeof cert_p, "%s/%s.pem", dir, cert);
    snprintf(key_p, sizeof key_p, "%s/%s.key", dir, cert);
    c.cert_file = cert_p;
    c.key_file = key_p;
  }
  sy_tls_ctx_t *ctx = sy_tls_ctx_new(&c, err, sizeof err);
  CHECK_MSG(ctx != NULL, "%s", err);
  return ctx;
}

static void test_good_resumed_ip(void) {
  int port = sy_test_free_port();
  pid_t srv = start_server(port, "good", "");
  CHECK(srv > 0);
  sy_tls_ctx_t *ctx = ctx_with("ca.pem", NULL);
  char err[400];
  int resumed = -1, ok = 0;
  CHECK_MSG(connect_as(ctx, port, "localhost", err, sizeof err, &resumed, &ok) == SY_TLS_OK, "%s",
            err);
  CHECK(ok == 1 && resumed == 0);
  /* the next connection to the same host offers the session it was given */
  resumed = -1, ok = 0;
  CHECK_MSG(connect_as(ctx, port, "localhost", err, sizeof err, &resumed, &ok) == SY_TLS_OK, "%s",
            err);
  CHECK_MSG(ok == 1 && resumed == 1, "ok %d resumed %d", ok, resumed);
  uint64_t hs, res;
  sy_tls_ctx_counts(ctx, &hs, &res);
  CHECK(hs == 2 && res == 1);
  /* an IP address is verified against the certificate's IP entries */
  CHECK_MSG(connect_as(ctx, port, "127.0.0.1", err, sizeof err, NULL, &ok) == SY_TLS_OK, "%s", err);
  sy_tls_ctx_free(ctx);
  stop(srv);
}

static void expect_error(const char *cert, const char *ca, const char *host, const char *words) {
  int port = sy_test_free_port();
  pid_t srv = start_server(port, cert, "");
  CHECK(srv > 0);
  sy_tls_ctx_t *ctx = ctx_with(ca, NULL);
  char err[400];
  sy_tls_status_t st = connect_as(ctx, port, host, err, sizeof err, NULL, NULL);
  CHECK_MSG(st == SY_TLS_ERROR && strstr(err, words) != NULL, "%s with %s as %s: status %d, '%s'",
            cert, ca, host, st, err);
  sy_tls_ctx_free(ctx);
  stop(srv);
}

static void test_errors(void) {
  expect_error("good", "other-ca.pem", "localhost", "unknown CA");
  expect_error("expired", "ca.pem", "localhost", "certificate expired");
  expect_error("othername", "ca.pem", "localhost", "certificate is for another name");
  expect_error("good", "ca.pem", "127.0.0.2", "certificate is for another name");
}

/* A plain HTTP server on a port where TLS was expected. */
static void test_plain_http_server(void) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t n = sizeof a;
  CHECK(bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 4) == 0);
  getsockname(ls, (struct sockaddr *)&a, &n);
  pid_t pid = fork();
  if (pid == 0) {
    int c = accept(ls, NULL, NULL);
    char buf[4096];
    if (recv(c, buf, sizeof buf, 0) > 0) {
      const char r[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
      if (send(c, r, sizeof r - 1, 0) < 0)
        _exit(1);
    }
    usleep(200000);
    _exit(0);
  }
  close(ls);
  sy_tls_ctx_t *ctx = ctx_with("ca.pem", NULL);
  char err[400];
  sy_tls_status_t st = connect_as(ctx, ntohs(a.sin_port), "localhost", err, sizeof err, NULL, NULL);
  CHECK_MSG(st == SY_TLS_ERROR && strstr(err, "does not speak TLS") != NULL, "status %d '%s'", st,
            err);
  sy_tls_ctx_free(ctx);
  waitpid(pid, NULL, 0);
}

/* Two names on one address: the server presents the certificate of the name asked. */
static void test_sni(void) {
  int port = sy_test_free_port();
  char extra[512];
  snprintf(extra, sizeof extra, "-servername beta.test -cert2 %s/beta.pem -key2 %s/beta.key", dir,
           dir);
  pid_t srv = start_server(port, "good", extra);
  CHECK(srv > 0);
  sy_tls_ctx_t *ctx = ctx_with("ca.pem", NULL);
  char err[400];
  int ok = 0;
  no_alpn_host = "beta.test";
  CHECK_MSG(connect_as(ctx, port, "beta.test", err, sizeof err, NULL, &ok) == SY_TLS_OK && ok,
            "beta.test: %s", err);
  ok = 0;
  CHECK_MSG(connect_as(ctx, port, "localhost", err, sizeof err, NULL, &ok) == SY_TLS_OK && ok,
            "localhost: %s", err);
  sy_tls_ctx_free(ctx);
  stop(srv);
}

static void test_mtls(void) {
  int port = sy_test_free_port();
  char extra[512];
  snprintf(extra, sizeof extra, "-Verify 1 -CAfile %s/ca.pem -verify_return_error", dir);
  pid_t srv = start_server(port, "good", extra);
  CHECK(srv > 0);
  sy_tls_ctx_t *with = ctx_with("ca.pem", "client"), *without = ctx_with("ca.pem", NULL);
  char err[400];
  int ok = 0;
  CHECK_MSG(connect_as(with, port, "localhost", err, sizeof err, NULL, &ok) == SY_TLS_OK && ok,
            "with a client certificate: %s", err);
  /* Without one the server refuses: at the handshake, or (TLS 1.3) at the first read. */
  ok = 0;
  sy_tls_status_t st = connect_as(without, port, "localhost", err, sizeof err, NULL, &ok);
  CHECK_MSG(st == SY_TLS_ERROR || ok == 0, "without a client certificate: %d %d", st, ok);
  sy_tls_ctx_free(with);
  sy_tls_ctx_free(without);
  stop(srv);
}

static void test_bad_files(void) {
  char err[512];
  sy_tls_conf_t c = {"/nonexistent/ca.pem", NULL, NULL, 0, 0};
  CHECK(sy_tls_ctx_new(&c, err, sizeof err) == NULL && strstr(err, "/nonexistent/ca.pem") != NULL);
  /* the system bundle loads */
  sy_tls_conf_t d = {NULL, NULL, NULL, 0, 0};
  sy_tls_ctx_t *ctx = sy_tls_ctx_new(&d, err, sizeof err);
  CHECK_MSG(ctx != NULL, "%s", err);
  sy_tls_ctx_free(ctx);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  if (dir_make("tls") != 0 || make_certs() < 0) {
    fprintf(stderr, "cannot make test certificates with the openssl command in %s\n", dir);
    return 1;
  }
  test_good_resumed_ip();
  test_errors();
  test_plain_http_server();
  test_sni();
  test_mtls();
  test_bad_files();
  if (dir_remove() != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return CHECK_DONE();
}
