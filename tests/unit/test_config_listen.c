/*
 * test_config_listen.c — the `listen:` list (router/config_listen.c): host:port entries
 * and {address, tls} ones, the TLS context made at load, and the errors, each naming
 * its field: a missing or unreadable file, a key of another certificate, a bad
 * min_version, a tls block that is not a mapping, a duplicate address. The files are
 * made with the openssl command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/config_fixture.h"
#include "tests/unit/tmpdir_fixture.h"


static int make_files(void) {
  return run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout srv.key -out srv.pem -days 2 -subj '/CN=srv' && "
             "openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out other.key");
}

/* The config with `listen:` lines `listen` (DIR: the files' directory). */
static const char *with_listen(const char *listen) {
  static char buf[2048];
  snprintf(buf, sizeof buf, "listen:\n%supstreams: {u: {servers: [127.0.0.1:9001]}}\n", listen);
  for (char *p; (p = strstr(buf, "DIR")) != NULL;) {
    memmove(p + strlen(dir), p + 3, strlen(p + 3) + 1);
    memcpy(p, dir, strlen(dir));
  }
  return buf;
}

static void parse_err(const char *listen, const char *want_prefix, const char *want_part) {
  char err[512];
  sy_config_t *cfg = NULL;
  const char *yaml = with_listen(listen);
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

#define TLS_OK "{cert_file: DIR/srv.pem, key_file: DIR/srv.key}"

static void test_forms(void) {
  sy_config_t *cfg = parse_ok(with_listen("  - 127.0.0.1:8080\n"
                                          "  - {address: \"[::1]:8443\", tls: " TLS_OK "}\n"
                                          "  - address: 0.0.0.0:8081\n"));
  if (cfg == NULL)
    return;
  CHECK(cfg->nlisteners == 3);
  CHECK(strcmp(cfg->listeners[0].host, "127.0.0.1") == 0 && cfg->listeners[0].port == 8080);
  CHECK(!cfg->listeners[0].tls && cfg->listen_tls[0].ctx == NULL);
  CHECK(strcmp(cfg->listeners[1].host, "::1") == 0 && cfg->listeners[1].port == 8443);
  CHECK(cfg->listeners[1].tls && cfg->listen_tls[1].ctx != NULL);
  CHECK(!cfg->listen_tls[1].tls13_only);
  CHECK(!cfg->listeners[2].tls && cfg->listen_tls[2].ctx == NULL);
  sy_config_free(cfg);
  cfg = parse_ok(with_listen("  - address: 127.0.0.1:8443\n"
                             "    tls: {cert_file: DIR/srv.pem, key_file: DIR/srv.key, "
                             "min_version: \"1.3\"}\n"));
  CHECK(cfg != NULL && cfg->listen_tls[0].tls13_only);
  sy_config_free(cfg);
}

static void test_errors(void) {
  parse_err("  - {tls: " TLS_OK "}\n", "t.yaml:2: listen[0].address: required key is missing",
            "");
  parse_err("  - {address: 127.0.0.1:8443, tls: {cert_file: DIR/srv.pem}}\n",
            "t.yaml:2: listen[0].tls.key_file: required key is missing", "");
  parse_err("  - {address: 127.0.0.1:8443, tls: {cert_file: DIR/nope.pem, key_file: DIR/srv.key}}\n",
            "t.yaml:2: listen[0].tls.cert_file: cannot read ", "No such file");
  parse_err("  - {address: 127.0.0.1:8443, tls: {cert_file: DIR/srv.pem, key_file: DIR/nope.key}}\n",
            "t.yaml:2: listen[0].tls.key_file: cannot read ", "No such file");
  parse_err("  - 127.0.0.1:8080\n"
            "  - {address: 127.0.0.1:8443, tls: {cert_file: DIR/srv.pem, key_file: DIR/other.key}}\n",
            "t.yaml:3: listen[1].tls.key_file: the key does not match the certificate", "");
  parse_err("  - {address: 127.0.0.1:8443, tls: {cert_file: DIR/srv.key, key_file: DIR/srv.key}}\n",
            "t.yaml:2: listen[0].tls.cert_file: cannot load the certificate", "");
  parse_err("  - {address: 127.0.0.1:8443, tls: {cert_file: DIR/srv.pem, key_file: DIR/srv.key, "
            "min_version: \"1.1\"}}\n",
            "t.yaml:2: listen[0].tls.min_version: must be \"1.2\" or \"1.3\"", "");
  parse_err("  - {address: 127.0.0.1:8443, tls: yes}\n",
            "t.yaml:2: listen[0].tls: must be a mapping", "");
  parse_err("  - {address: 127.0.0.1:8443, tsl: {}}\n", "t.yaml:2: listen[0]", "tsl");
  parse_err("  - 127.0.0.1:8443\n  - {address: 127.0.0.1:8443, tls: " TLS_OK "}\n",
            "t.yaml:3: listen[1]: duplicate address (same as entry 0)", "");
}

int main(void) {
  if (dir_make("cfg-listen") != 0 || make_files() != 0) {
    fprintf(stderr, "cannot make files in %s\n", dir);
    return 1;
  }
  test_forms();
  test_errors();
  test_out_of_memory("listen:\n  - 127.0.0.1:8080\n  - {address: 127.0.0.1:8081}\n"
                     "upstreams: {u: {servers: [127.0.0.1:9001]}}\n");
  dir_remove();
  return CHECK_DONE();
}
