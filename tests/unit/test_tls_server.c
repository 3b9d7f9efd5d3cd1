/*
 * test_tls_server.c — the TLS engine's server side (router/tls.c: sy_tls_server_ctx_new,
 * sy_tls_accept) against its own client side, both in memory: the test moves the
 * ciphertext between them, as conn_tls.c and upstream_tls.c move it between an engine
 * and a socket. Certificates are made with the openssl command.
 *
 * Checked: a verified handshake (the client checks the server's name), ALPN http/1.1,
 * bytes both ways, close_notify seen as CLOSED; plain HTTP fed to a server connection
 * is an error that says so (sy_tls_not_tls); a connection outlives the context it was
 * made from (the reload case); sy_tls_writev gathers slices into as few records as fit
 * and the peer reads them back in order; the errors of bad files name what failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "router/tls.h"
#include "tests/unit/check.h"
#include "tests/unit/tmpdir_fixture.h"


static const char *path(const char *name) {
  static char buf[4][128];
  static int i;
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
  return buf[i];
}

static int make_certs(void) {
  return run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout ca.key -out ca.pem -days 2 -subj '/CN=test CA' && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key "
             "-out srv.csr -subj '/CN=srv' && "
             "printf 'subjectAltName=DNS:localhost\\n' > srv.ext && "
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out srv.pem -days 2 -extfile srv.ext && "
             "openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out other.key && "
             "echo junk > junk.pem");
}

/* Moves what a has for b into b. */
static void pump(sy_tls_t *a, sy_tls_t *b) {
  char buf[65536];
  size_t n;
  while ((n = sy_tls_drain(a, buf, sizeof buf)) > 0)
    CHECK(sy_tls_feed(b, buf, n) == 0);
}

/* Runs both handshakes to their end (or an error); returns the server's status. */
static sy_tls_status_t handshake(sy_tls_t *cl, sy_tls_t *sv) {
  sy_tls_status_t a = SY_TLS_WANT, b = SY_TLS_WANT;
  for (int i = 0; i < 10 && (a == SY_TLS_WANT || b == SY_TLS_WANT); i++) {
    a = sy_tls_handshake(cl);
    pump(cl, sv);
    b = sy_tls_handshake(sv);
    pump(sv, cl);
    if (a == SY_TLS_ERROR || b == SY_TLS_ERROR)
      break;
  }
  CHECK_MSG(a == SY_TLS_OK, "client: %d %s", a, sy_tls_error(cl));
  return b;
}

static sy_tls_ctx_t *client_ctx(void) {
  sy_tls_conf_t c = {path("ca.pem"), NULL, NULL, 0, 0};
  char err[400];
  sy_tls_ctx_t *ctx = sy_tls_ctx_new(&c, err, sizeof err);
  CHECK_MSG(ctx != NULL, "%s", err);
  return ctx;
}

static sy_tls_ctx_t *server_ctx(const char *cert, const char *key, char *err, size_t errlen) {
  sy_tls_server_conf_t c = {cert, key, 0};
  return sy_tls_server_ctx_new(&c, err, errlen);
}

static void test_exchange_and_outliving_ctx(void) {
  char err[400];
  sy_tls_ctx_t *sctx = server_ctx(path("srv.pem"), path("srv.key"), err, sizeof err);
  CHECK_MSG(sctx != NULL, "%s", err);
  if (sctx == NULL)
    return;
  char serial[80];
  sy_tls_ctx_serial(sctx, serial, sizeof serial);
  CHECK_MSG(strlen(serial) >= 8, "serial %s", serial);
  sy_tls_ctx_t *cctx = client_ctx();
  sy_tls_t *cl = sy_tls_new(cctx, "localhost");
  sy_tls_t *sv = sy_tls_accept(sctx);
  sy_tls_ctx_free(sctx); /* a reload drops the context; the connection holds its own */
  CHECK(!sy_tls_ready(sv));
  CHECK(handshake(cl, sv) == SY_TLS_OK);
  CHECK(sy_tls_ready(sv));
  char alpn[32];
  sy_tls_alpn(sv, alpn, sizeof alpn);
  CHECK_MSG(strcmp(alpn, "http/1.1") == 0, "server ALPN '%s'", alpn);
  CHECK(sy_tls_write(cl, "GET / HTTP/1.1\r\n\r\n", 18) == SY_TLS_OK);
  pump(cl, sv);
  char buf[100];
  size_t got = 0;
  CHECK(sy_tls_read(sv, buf, sizeof buf, &got) == SY_TLS_OK && got == 18 &&
        memcmp(buf, "GET /", 5) == 0);
  CHECK(sy_tls_read(sv, buf, sizeof buf, &got) == SY_TLS_WANT);
  CHECK(sy_tls_write(sv, "HTTP/1.1 200 OK\r\n", 17) == SY_TLS_OK);
  pump(sv, cl);
  sy_tls_status_t st = sy_tls_read(cl, buf, sizeof buf, &got); /* after the tickets */
  CHECK_MSG(st == SY_TLS_OK && got == 17, "client read %d %zu", st, got);
  sy_tls_shutdown(sv);
  pump(sv, cl);
  CHECK(sy_tls_read(cl, buf, sizeof buf, &got) == SY_TLS_CLOSED);
  sy_tls_free(sv); /* frees the server context with its last connection */
  sy_tls_free(cl);
  sy_tls_ctx_free(cctx);
}

/* How many TLS records the n bytes of ciphertext at p hold (-1: not whole records). */
static int count_records(const unsigned char *p, size_t n) {
  int records = 0;
  size_t at = 0;
  while (at + 5 <= n) {
    at += 5 + ((size_t)p[at + 3] << 8 | p[at + 4]);
    records++;
  }
  return at == n ? records : -1;
}

/* Writes the slices with sy_tls_writev; checks the records it made and that sv reads
 * back their concatenation. */
static void writev_case(sy_tls_t *cl, sy_tls_t *sv, const struct iovec *iov, unsigned n,
                        int want_records) {
  static unsigned char wire[65536], plain[65536], back[65536];
  size_t total = 0;
  for (unsigned i = 0; i < n; i++) {
    memcpy(plain + total, iov[i].iov_base, iov[i].iov_len);
    total += iov[i].iov_len;
  }
  CHECK(sy_tls_writev(cl, iov, n) == SY_TLS_OK);
  size_t len = sy_tls_drain(cl, wire, sizeof wire);
  int records = count_records(wire, len);
  CHECK_MSG(records == want_records, "%u slices, %zu bytes: %d records, wanted %d", n, total,
            records, want_records);
  CHECK(sy_tls_feed(sv, wire, len) == 0);
  size_t got = 0, n1 = 0;
  while (got < sizeof back && sy_tls_read(sv, back + got, sizeof back - got, &n1) == SY_TLS_OK)
    got += n1;
  CHECK_MSG(got == total && memcmp(back, plain, total) == 0, "read back %zu of %zu", got, total);
}

static void test_writev_gathers(void) {
  char err[400];
  sy_tls_ctx_t *sctx = server_ctx(path("srv.pem"), path("srv.key"), err, sizeof err);
  if (sctx == NULL)
    return;
  sy_tls_ctx_t *cctx = client_ctx();
  sy_tls_t *cl = sy_tls_new(cctx, "localhost");
  sy_tls_t *sv = sy_tls_accept(sctx);
  CHECK(handshake(cl, sv) == SY_TLS_OK);
  char tmp[64];
  size_t got = 0;
  CHECK(sy_tls_read(cl, tmp, sizeof tmp, &got) == SY_TLS_WANT); /* takes the tickets */
  static char big[20000];
  memset(big, 'b', sizeof big);
  /* A request head written in three pieces (its Host line swapped): one record. */
  struct iovec head[3] = {{"POST / HTTP/1.1\r\n", 17}, {"Host: x\r\n", 9},
                          {"Content-Length: 0\r\n\r\n", 21}};
  writev_case(cl, sv, head, 3, 1);
  struct iovec one[1] = {{"x", 1}};
  writev_case(cl, sv, one, 1, 1);
  struct iovec empty[2] = {{"", 0}, {"", 0}};
  writev_case(cl, sv, empty, 2, 0);
  /* 16 KB fits one record exactly; a slice too big for one goes as it is (two
   * records), with what was gathered before it and what follows in their own. */
  struct iovec full[2] = {{big, 16000}, {big, 384}};
  writev_case(cl, sv, full, 2, 1);
  struct iovec mixed[3] = {{"abc", 3}, {big, sizeof big}, {"xyz", 3}};
  writev_case(cl, sv, mixed, 3, 4);
  sy_tls_free(sv);
  sy_tls_free(cl);
  sy_tls_ctx_free(cctx);
  sy_tls_ctx_free(sctx);
}

static void test_plain_http_to_server(void) {
  char err[400];
  sy_tls_ctx_t *sctx = server_ctx(path("srv.pem"), path("srv.key"), err, sizeof err);
  if (sctx == NULL)
    return;
  sy_tls_t *sv = sy_tls_accept(sctx);
  const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  CHECK(sy_tls_feed(sv, req, sizeof req - 1) == 0);
  CHECK(sy_tls_handshake(sv) == SY_TLS_ERROR);
  CHECK(sy_tls_not_tls(sv));
  CHECK_MSG(strstr(sy_tls_error(sv), "does not speak TLS") != NULL, "%s", sy_tls_error(sv));
  sy_tls_free(sv);
  sy_tls_ctx_free(sctx);
}

static void expect_ctx_error(const char *cert, const char *key, const char *words) {
  char err[400] = "";
  sy_tls_ctx_t *c = server_ctx(cert, key, err, sizeof err);
  CHECK_MSG(c == NULL, "made a context from %s %s", cert, key);
  sy_tls_ctx_free(c);
  CHECK_MSG(strstr(err, words) != NULL, "error '%s', wanted '%s'", err, words);
}

static void test_bad_files(void) {
  expect_ctx_error(path("srv.pem"), path("other.key"), "the key does not match the certificate");
  expect_ctx_error(path("junk.pem"), path("srv.key"), "cannot load the certificate");
  expect_ctx_error(path("missing.pem"), path("srv.key"), "cannot load the certificate");
  expect_ctx_error(path("srv.pem"), path("junk.pem"), "cannot load the key");
}

int main(void) {
  if (dir_make("tls-server") != 0 || make_certs() != 0) {
    fprintf(stderr, "cannot make certificates in %s\n", dir);
    return 1;
  }
  test_exchange_and_outliving_ctx();
  test_writev_gathers();
  test_plain_http_to_server();
  test_bad_files();
  dir_remove();
  return CHECK_DONE();
}
