/*
 * test_http1client.c — the upstream request builder (router/http1client.h): which
 * client headers go on, what is added, and how the body is framed.
 */
#include <string.h>

#include "router/http1client.h"
#include "tests/unit/check.h"

static void add(sy_head_t *h, const char *name, const char *value) {
  sy_head_field(h, name, strlen(name));
  sy_head_done(h);
  sy_head_value(h, value, strlen(value));
  sy_head_done(h);
}

/* The request as a NUL-terminated string (the caller frees), or NULL. */
static char *build(const sy_h1_request_t *rq) {
  sy_buf_t *b = sy_h1_build_request(rq);
  if (b == NULL)
    return NULL;
  char *s = malloc(b->len + 1);
  memcpy(s, b->data, b->len);
  s[b->len] = '\0';
  sy_buf_unref(b);
  return s;
}

static const char *TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static void test_headers(void) {
  sy_head_t h;
  sy_head_init(&h, 65536);
  sy_head_line(&h, "/v1/chat", 8);
  sy_head_done(&h);
  add(&h, "Host", "a");
  add(&h, "Connection", "x-hop, keep-alive");
  add(&h, "X-Hop", "1");
  add(&h, "Content-Length", "2");
  add(&h, "Expect", "100-continue");
  add(&h, "traceparent", "00-old");
  add(&h, "X-Forwarded-For", "10.0.0.1");
  add(&h, "Authorization", "client");
  add(&h, "x-switchyard-shadow", "off");
  sy_kv_t extra[] = {{"authorization", "variant"}};
  sy_h1_request_t rq = {"POST", h.buf + h.line_off, h.line_len, &h, extra, 1, "127.0.0.9", TP, 1,
                        "{}", 2, 2, 0};
  char *s = build(&rq);
  CHECK(s != NULL);
  const char *start = "POST /v1/chat HTTP/1.1\r\nHost: a\r\n";
  CHECK(strncmp(s, start, strlen(start)) == 0);
  CHECK(strstr(s, "X-Hop") == NULL && strstr(s, "Connection") == NULL);
  CHECK(strstr(s, "Expect") == NULL && strstr(s, "00-old") == NULL);
  CHECK(strstr(s, "X-Forwarded-For: 10.0.0.1, 127.0.0.9\r\n") != NULL);
  CHECK(strstr(s, "client") == NULL && strstr(s, "authorization: variant\r\n") != NULL);
  CHECK(strstr(s, "x-switchyard-shadow: off") == NULL);
  CHECK(strstr(s, "x-switchyard-shadow: 1\r\n") != NULL);
  CHECK(strstr(s, "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"));
  const char *end = "Content-Length: 2\r\n\r\n{}";
  size_t n = strlen(s);
  CHECK(n > strlen(end) && strcmp(s + n - strlen(end), end) == 0);
  free(s);
  sy_head_free(&h);
}

static void test_framing(void) {
  sy_head_t h;
  sy_head_init(&h, 65536);
  sy_head_line(&h, "/", 1);
  sy_head_done(&h);
  sy_h1_request_t rq = {"GET", "/", 1, &h, NULL, 0, "p", TP, 0, NULL, 0, 0, 0};
  char *s = build(&rq);
  /* A bodiless GET keeps no Content-Length; a new X-Forwarded-For names the peer. */
  CHECK(s != NULL && strstr(s, "Content-Length") == NULL);
  CHECK(s != NULL && strstr(s, "X-Forwarded-For: p\r\n\r\n") != NULL);
  CHECK(s != NULL && strstr(s, "x-switchyard-shadow") == NULL);
  free(s);
  rq.method = "POST";
  s = build(&rq);
  CHECK(s != NULL && strstr(s, "Content-Length: 0\r\n\r\n") != NULL);
  free(s);
  rq.declared = -1; /* a streamed chunked body follows */
  s = build(&rq);
  CHECK(s != NULL && strstr(s, "Transfer-Encoding: chunked\r\n\r\n") != NULL);
  free(s);
  sy_head_free(&h);
}

static void test_connection_names(void) {
  sy_head_t h;
  sy_head_init(&h, 65536);
  add(&h, "Connection", "close");
  CHECK(sy_h1_connection_names(&h).v == NULL);
  sy_head_reset(&h);
  add(&h, "Connection", "Foo, Bar");
  sy_h1_conn_names_t cn = sy_h1_connection_names(&h);
  CHECK(sy_h1_named_by_connection(cn, "bar", 3));
  CHECK(!sy_h1_named_by_connection(cn, "baz", 3));
  sy_head_free(&h);
}

int main(void) {
  test_headers();
  test_framing();
  test_connection_names();
  return CHECK_DONE();
}
