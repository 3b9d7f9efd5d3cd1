/*
 * test_egress_proxy.c — the pure parts of egress through a CONNECT proxy: proxy URLs
 * (router/config_proxy.c: scheme, credentials as Basic, default port, errors that
 * never quote the password), no_proxy matching, the CONNECT request and the reading
 * of the proxy's answer head in any split (router/upstream_proxy.c).
 */
#include <stdlib.h>
#include <string.h>

#include "router/config_proxy.h"
#include "router/upstream_proxy.h"
#include "tests/unit/check.h"

static void test_urls(void) {
  sy_egress_proxy_t p;
  char err[300];
  CHECK(sy__cfg_proxy_parse("http://u:p%40ss@proxy.corp:3128/", "proxy", &p, err, sizeof err) == 0);
  CHECK(strcmp(p.host, "proxy.corp") == 0 && p.port == 3128);
  CHECK(p.auth != NULL && strcmp(p.auth, "Basic dTpwQHNz") == 0); /* u:p@ss */
  CHECK(strcmp(p.origin, "proxy") == 0);
  free(p.host), free(p.auth), free(p.origin);
  CHECK(sy__cfg_proxy_parse("10.0.0.1", "HTTPS_PROXY", &p, err, sizeof err) == 0);
  CHECK(strcmp(p.host, "10.0.0.1") == 0 && p.port == 1080 && p.auth == NULL);
  free(p.host), free(p.origin);
  CHECK(sy__cfg_proxy_parse("HTTP://[::1]:8080", "x", &p, err, sizeof err) == 0);
  CHECK(strcmp(p.host, "::1") == 0 && p.port == 8080);
  free(p.host), free(p.origin);
  const char *bad[] = {"https://proxy:3128", "socks5://proxy",    "http://proxy:0",
                       "http://proxy:70000", "http://proxy/path", "http://user@proxy",
                       "http://u:%zz@proxy", "http://",           "http://a b:1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_MSG(sy__cfg_proxy_parse(bad[i], "x", &p, err, sizeof err) < 0, "%s accepted", bad[i]);
  CHECK(sy__cfg_proxy_parse("http://u:s3cret@proxy:x", "x", &p, err, sizeof err) < 0);
  CHECK(strstr(err, "s3cret") == NULL);
}

static void test_no_proxy(void) {
  CHECK(sy__cfg_no_proxy_match("*", "api.openai.com", 443));
  CHECK(sy__cfg_no_proxy_match("example.com,openai.com", "api.openai.com", 443));
  CHECK(sy__cfg_no_proxy_match(" .openai.com ", "API.OpenAI.com", 443));
  CHECK(sy__cfg_no_proxy_match("openai.com", "openai.com", 443));
  CHECK(!sy__cfg_no_proxy_match("openai.com", "notopenai.com", 443));
  CHECK(sy__cfg_no_proxy_match("localhost:8443", "localhost", 8443));
  CHECK(!sy__cfg_no_proxy_match("localhost:8443", "localhost", 443));
  CHECK(sy__cfg_no_proxy_match("10.0.0.5", "10.0.0.5", 80));
  CHECK(sy__cfg_no_proxy_match("::1,[fe80::1]:443", "::1", 80));
  CHECK(sy__cfg_no_proxy_match("[fe80::1]:443", "fe80::1", 443));
  CHECK(!sy__cfg_no_proxy_match("", "a.b", 1));
  CHECK(!sy__cfg_no_proxy_match(NULL, "a.b", 1));
}

static void test_connect_request(void) {
  sy_buf_t *b = sy__uptunnel_request("api.openai.com", 443, "Basic eDp5");
  CHECK(b != NULL);
  const char *want = "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n"
                     "Proxy-Authorization: Basic eDp5\r\n\r\n";
  CHECK(b->len == strlen(want) && memcmp(b->data, want, b->len) == 0);
  sy_buf_unref(b);
  b = sy__uptunnel_request("::1", 8443, NULL);
  want = "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n";
  CHECK(b != NULL && b->len == strlen(want) && memcmp(b->data, want, b->len) == 0);
  sy_buf_unref(b);
}

/* Feeds s in pieces of `step` bytes; returns the final state. */
static sy_tunnel_status_t feed(const char *s, size_t len, size_t step, int *status, char *why) {
  static sy_uptunnel_t t;
  t.len = 0;
  sy_tunnel_status_t st = SY_TUNNEL_WANT;
  for (size_t i = 0; i < len && st == SY_TUNNEL_WANT; i += step)
    st = sy__uptunnel_feed(&t, s + i, len - i < step ? len - i : step, status, why, 200);
  return st;
}

static void test_answers(void) {
  int status;
  char why[200];
  const char *ok = "HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\n";
  for (size_t step = 1; step <= strlen(ok); step++)
    CHECK_MSG(feed(ok, strlen(ok), step, &status, why) == SY_TUNNEL_UP && status == 200, "step %zu",
              step);
  const char *a407 = "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n";
  CHECK(feed(a407, strlen(a407), 5, &status, why) == SY_TUNNEL_REFUSED && status == 407);
  CHECK(strcmp(why, "answered 407 Proxy Authentication Required") == 0);
  const char *a502 = "HTTP/1.0 502\r\n\r\n";
  CHECK(feed(a502, strlen(a502), 100, &status, why) == SY_TUNNEL_FAILED && status == 502);
  CHECK(strcmp(why, "answered 502") == 0);
  const char *early = "HTTP/1.1 200 OK\r\n\r\n\x16\x03";
  CHECK(feed(early, strlen(early), 100, &status, why) == SY_TUNNEL_FAILED);
  const char *junk = "SSH-2.0-OpenSSH\r\n\r\n";
  CHECK(feed(junk, strlen(junk), 100, &status, why) == SY_TUNNEL_FAILED && status == 0);
  char big[SY_TUNNEL_HEAD_MAX + 10];
  memcpy(big, "HTTP/1.1 200 OK\r\n", 17);
  memset(big + 17, 'a', sizeof big - 17);
  CHECK(feed(big, sizeof big, 1000, &status, why) == SY_TUNNEL_FAILED);
}

int main(void) {
  test_urls();
  test_no_proxy();
  test_connect_request();
  test_answers();
  return CHECK_DONE();
}
