/*
 * test_upstream_names.c — what a pooled server sends as Host and as its TLS name
 * (router/upstream.c, sy__upstream_server_names), for every host_header mode and
 * server form: a name (the scheme's default port left out, another kept), a numeric
 * address (the client's Host by default), IPv6 in brackets, tls.server_name, a
 * literal. The leg writes that Host in place of the client's (test_tls_upstream).
 */
#include <string.h>

#include "router/upstream.h"
#include "tests/unit/check.h"

typedef struct {
  const char *host;
  uint16_t port;
  int tls;
  sy_host_mode_t mode;
  const char *server_name, *literal;
  const char *want_host, *want_tls_name; /* want_tls_name NULL: plain */
} name_case_t;

static const name_case_t CASES[] = {
    {"api.example.com", 443, 1, SY_HOST_AUTO, NULL, NULL, "api.example.com", "api.example.com"},
    {"api.example.com", 8443, 1, SY_HOST_AUTO, NULL, NULL, "api.example.com:8443",
     "api.example.com"},
    {"llm.internal", 80, 0, SY_HOST_AUTO, NULL, NULL, "llm.internal", NULL},
    {"llm.internal", 443, 0, SY_HOST_AUTO, NULL, NULL, "llm.internal:443", NULL},
    {"10.0.0.5", 8000, 0, SY_HOST_AUTO, NULL, NULL, "", NULL},
    {"10.0.0.5", 443, 1, SY_HOST_AUTO, NULL, NULL, "", "10.0.0.5"},
    {"10.0.0.5", 443, 1, SY_HOST_AUTO, "api.internal", NULL, "api.internal", "api.internal"},
    {"10.0.0.5", 8000, 0, SY_HOST_AUTO, "api.internal", NULL, "", NULL}, /* plain: no TLS name */
    {"10.0.0.5", 8000, 0, SY_HOST_SERVER, NULL, NULL, "10.0.0.5:8000", NULL},
    {"::1", 8443, 1, SY_HOST_SERVER, NULL, NULL, "[::1]:8443", "::1"},
    {"api.example.com", 443, 1, SY_HOST_CLIENT, NULL, NULL, "", "api.example.com"},
    {"api.example.com", 443, 1, SY_HOST_LITERAL, NULL, "gw.example:8080", "gw.example:8080",
     "api.example.com"},
};

int main(void) {
  for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
    const name_case_t *c = &CASES[i];
    sy_upstream_conf_t conf;
    memset(&conf, 0, sizeof conf);
    conf.host_mode = c->mode;
    conf.tls.server_name = (char *)c->server_name;
    conf.host_literal = (char *)c->literal;
    sy_hostport_t hp = {(char *)c->host, c->port, c->tls, NULL};
    sy_uppool_t pool;
    memset(&pool, 0, sizeof pool);
    pool.conf = &conf;
    sy_upserver_t s;
    memset(&s, 0, sizeof s);
    s.pool = &pool;
    s.hp = &hp;
    sy__upstream_server_names(&s);
    CHECK_MSG(strcmp(s.host, c->want_host) == 0, "case %zu: Host '%s', wanted '%s'", i, s.host,
              c->want_host);
    CHECK_MSG(c->want_tls_name == NULL
                  ? s.tls_name == NULL
                  : s.tls_name != NULL && strcmp(s.tls_name, c->want_tls_name) == 0,
              "case %zu: TLS name %s, wanted %s", i, s.tls_name ? s.tls_name : "(none)",
              c->want_tls_name ? c->want_tls_name : "(none)");
  }
  return CHECK_DONE();
}
