/*
 * test_config_tls.c — an upstream's servers as URLs, its `tls:` block and its
 * `host_header:` (router/config_upstream.c): the forms a server takes and their
 * default ports, the TLS context made at load (against a CA bundle, with a client
 * certificate, or the system's), the errors that need real files (a file that is
 * not PEM, a key that does not match its certificate), and host_header's modes.
 * The certificates are made here with the openssl command; the error cases that
 * need no file are in test_config_errors.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/config_fixture.h"
#include "tests/unit/tmpdir_fixture.h"


/* A CA, a client certificate with its key, and a key of something else. */
static int make_files(void) {
  return run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout ca.key -out ca.pem -days 2 -subj '/CN=test CA' && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout client.key -out client.pem -days 2 -subj '/CN=client' && "
             "openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out other.key && "
             "echo 'not a certificate' > junk.pem");
}

/* The config with upstream u's block `up` (YAML lines indented by 4). */
static const char *with_upstream(const char *up) {
  static char buf[2048];
  snprintf(buf, sizeof buf, "listen: [127.0.0.1:8080]\nupstreams:\n  u:\n%s", up);
  for (char *p; (p = strstr(buf, "DIR")) != NULL;) { /* DIR -> the files' directory */
    memmove(p + strlen(dir), p + 3, strlen(p + 3) + 1);
    memcpy(p, dir, strlen(dir));
  }
  return buf;
}

static void parse_err(const char *yaml, const char *want_prefix, const char *want_part) {
  char err[512];
  sy_config_t *cfg = NULL;
  int rc = parse(yaml, &cfg, err, sizeof err);
  CHECK_MSG(rc == -1 && cfg == NULL, "parsed: %s", yaml);
  if (rc == 0) {
    sy_config_free(cfg);
    return;
  }
  CHECK_MSG(strncmp(err, want_prefix, strlen(want_prefix)) == 0, "got %s, want %s...", err,
            want_prefix);
  CHECK_MSG(strstr(err, want_part) != NULL, "got %s, want ...%s...", err, want_part);
}

static void test_server_forms(void) {
  sy_config_t *cfg = parse_ok(with_upstream(
      "    servers: [https://api.example.com, \"https://10.0.0.1:8443\", http://a.example/,\n"
      "              \"http://[::1]\", 10.0.0.6:8000, \"[::1]:9000\"]\n"
      "    tls: {server_name: api.example.com}\n"));
  if (cfg == NULL)
    return;
  const sy_upstream_conf_t *u = &cfg->upstreams[0];
  CHECK(u->nservers == 6);
  CHECK(strcmp(u->servers[0].host, "api.example.com") == 0 && u->servers[0].port == 443);
  CHECK(u->servers[0].tls);
  CHECK(strcmp(u->servers[1].host, "10.0.0.1") == 0 && u->servers[1].port == 8443);
  CHECK(u->servers[1].tls);
  CHECK(strcmp(u->servers[2].host, "a.example") == 0 && u->servers[2].port == 80);
  CHECK(!u->servers[2].tls);
  CHECK(strcmp(u->servers[3].host, "::1") == 0 && u->servers[3].port == 80);
  CHECK(strcmp(u->servers[4].host, "10.0.0.6") == 0 && u->servers[4].port == 8000);
  CHECK(!u->servers[4].tls && !u->servers[5].tls && u->servers[5].port == 9000);
  CHECK(u->tls_ctx != NULL); /* the system's CA bundle */
  CHECK(strcmp(u->tls.server_name, "api.example.com") == 0 && !u->tls.insecure);
  CHECK(u->host_mode == SY_HOST_AUTO && u->host_literal == NULL);
  sy_config_free(cfg);

  /* plain servers only: no context */
  cfg = parse_ok(with_upstream("    servers: [http://10.0.0.5:8000, 10.0.0.6:8000]\n"));
  if (cfg != NULL) {
    CHECK(cfg->upstreams[0].tls_ctx == NULL && !cfg->upstreams[0].servers[0].tls);
    sy_config_free(cfg);
  }
}

static void test_tls_block(void) {
  sy_config_t *cfg = parse_ok(with_upstream(
      "    servers: [https://api.example.com]\n"
      "    tls: {ca_file: DIR/ca.pem, cert_file: DIR/client.pem, key_file: DIR/client.key}\n"));
  if (cfg != NULL) {
    const sy_upstream_conf_t *u = &cfg->upstreams[0];
    CHECK(u->tls_ctx != NULL);
    CHECK(strstr(u->tls.ca_file, "/ca.pem") != NULL && strstr(u->tls.key_file, "client.key"));
    sy_config_free(cfg);
  }
  cfg = parse_ok(with_upstream("    servers: [https://127.0.0.1]\n    tls: {insecure: true}\n"));
  if (cfg != NULL) {
    CHECK(cfg->upstreams[0].tls_ctx != NULL && cfg->upstreams[0].tls.insecure);
    sy_config_free(cfg);
  }
  /* errors that need files: each names its field */
  parse_err(
      with_upstream("    servers: [https://a.example]\n    tls:\n      ca_file: DIR/junk.pem\n"),
      "t.yaml:6: upstreams.u.tls.ca_file: cannot load the CA file ", "junk.pem");
  parse_err(with_upstream("    servers: [https://a.example]\n    tls:\n"
                          "      cert_file: DIR/junk.pem\n      key_file: DIR/client.key\n"),
            "t.yaml:6: upstreams.u.tls.cert_file: cannot load the client certificate ", "junk.pem");
  parse_err(with_upstream("    servers: [https://a.example]\n    tls:\n"
                          "      cert_file: DIR/client.pem\n      key_file: DIR/other.key\n"),
            "t.yaml:7: upstreams.u.tls.key_file: cannot load the client key (or it does not "
            "match the certificate) ",
            "other.key");
  parse_err(with_upstream("    servers: [https://a.example]\n    tls:\n"
                          "      cert_file: DIR/client.pem\n      key_file: DIR/none.key\n"),
            "t.yaml:7: upstreams.u.tls.key_file: cannot read ", "none.key: No such file");
}

static void test_host_header(void) {
  static const struct {
    const char *v;
    sy_host_mode_t mode;
    const char *literal;
  } cases[] = {{"client", SY_HOST_CLIENT, NULL},
               {"server", SY_HOST_SERVER, NULL},
               {"api.example.com", SY_HOST_LITERAL, "api.example.com"},
               {"\"10.0.0.1:8000\"", SY_HOST_LITERAL, "10.0.0.1:8000"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char up[256];
    snprintf(up, sizeof up, "    servers: [10.0.0.1:8000]\n    host_header: %s\n", cases[i].v);
    sy_config_t *cfg = parse_ok(with_upstream(up));
    if (cfg == NULL)
      continue;
    const sy_upstream_conf_t *u = &cfg->upstreams[0];
    CHECK_MSG(u->host_mode == cases[i].mode, "%s", cases[i].v);
    CHECK(cases[i].literal == NULL
              ? u->host_literal == NULL
              : u->host_literal != NULL && strcmp(u->host_literal, cases[i].literal) == 0);
    sy_config_free(cfg);
  }
}

int main(void) {
  if (dir_make("config-tls") != 0 || make_files() != 0) {
    fprintf(stderr, "cannot make test files with the openssl command in %s\n", dir);
    return 1;
  }
  test_server_forms();
  test_tls_block();
  test_host_header();
  test_out_of_memory("listen: [127.0.0.1:8080]\n"
                     "upstreams: {u: {servers: [http://a.example, 10.0.0.1:80], "
                     "host_header: a.example}}\n");
  CHECK(dir_remove() == 0);
  return CHECK_DONE();
}
