/*
 * tls.c — the TLS engine for upstream connections (see tls.h).
 *
 * Each connection is an SSL object between two memory BIOs: rbio holds ciphertext
 * the caller fed from the socket, wbio what OpenSSL wants sent. Nothing here
 * touches a socket or a file after sy_tls_ctx_new, so every call returns at once.
 *
 * Sessions: the context asks OpenSSL to hand it every session a server issues
 * (TLS 1.3 tickets arrive after the handshake, inside later reads) and keeps the
 * newest per host name in a small table; the next connection to that host offers
 * it (a copy of it: see sy_tls_new). Resumption therefore follows the pool
 * naturally: the first connection does a full handshake, the ones after resume,
 * however many open at once.
 *
 * Server contexts (the client-facing listener) keep OpenSSL's own session
 * handling: stateless tickets under a key made with the context (made before the
 * workers fork, so every worker resumes the others' sessions until a reload).
 */
#include "router/tls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define SESSION_SLOTS 32
#define RECORD_PLAIN 16384 /* a TLS record's plaintext at most */
#define HOST_MAX 256

typedef struct session_slot_s {
  char host[HOST_MAX];
  SSL_SESSION *sess;
  uint64_t used; /* for replacing the least recently stored */
} session_slot_t;

struct sy_tls_ctx_s {
  SSL_CTX *ssl;
  session_slot_t slots[SESSION_SLOTS];
  uint64_t tick;
  uint64_t handshakes, resumed;
  int insecure;
  unsigned refs; /* the owner's and one per connection */
};

struct sy_tls_s {
  sy_tls_ctx_t *ctx;
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  int done;         /* handshake complete */
  int server;       /* made by sy_tls_accept */
  int not_tls;      /* the last failure: the peer does not speak TLS */
  char host[HOST_MAX];
  char error[400];
};

static int ex_index = -1; /* SSL ex_data slot holding the sy_tls_t */

/* ---- errors --------------------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *what, const char *file) {
  unsigned long e = ERR_peek_last_error();
  char detail[200] = "";
  if (e != 0)
    ERR_error_string_n(e, detail, sizeof detail);
  snprintf(err, errlen, "%s%s%s%s%s", what, file ? " " : "", file ? file : "",
           detail[0] ? ": " : "", detail);
  ERR_clear_error();
}

/* A failed handshake or read, in words an operator can act on. */
static void explain(sy_tls_t *t) {
  long v = SSL_get_verify_result(t->ssl);
  if (v != X509_V_OK) {
    const char *what;
    switch (v) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: what = "unknown CA"; break;
    case X509_V_ERR_CERT_HAS_EXPIRED: what = "certificate expired"; break;
    case X509_V_ERR_CERT_NOT_YET_VALID: what = "certificate not yet valid"; break;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH: what = "certificate is for another name"; break;
    default: what = "certificate rejected";
    }
    snprintf(t->error, sizeof t->error, "%s (%.120s): %s", what, t->host,
             X509_verify_cert_error_string(v));
    ERR_clear_error();
    return;
  }
  unsigned long e = ERR_peek_last_error();
  int reason = ERR_GET_REASON(e);
  if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
      (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
       reason == SSL_R_RECORD_LENGTH_MISMATCH || reason == SSL_R_HTTP_REQUEST ||
       reason == SSL_R_HTTPS_PROXY_REQUEST)) {
    t->not_tls = 1;
    if (t->server)
      snprintf(t->error, sizeof t->error, "the client does not speak TLS (plain HTTP sent to "
                                          "the TLS port?)");
    else
      snprintf(t->error, sizeof t->error,
               "the server does not speak TLS (%.120s: a plain HTTP port?)", t->host);
  } else if (e != 0) {
    char detail[200];
    ERR_error_string_n(e, detail, sizeof detail);
    snprintf(t->error, sizeof t->error, "TLS failed (%.120s): %s", t->host, detail);
  } else {
    snprintf(t->error, sizeof t->error, "TLS failed (%.120s)", t->host);
  }
  ERR_clear_error();
}

/* ---- the context ------------------------------------------------------------------------ */

static int on_new_session(SSL *ssl, SSL_SESSION *sess) {
  sy_tls_t *t = SSL_get_ex_data(ssl, ex_index);
  if (t == NULL || t->host[0] == '\0')
    return 0;
  sy_tls_ctx_t *c = t->ctx;
  session_slot_t *slot = NULL, *oldest = &c->slots[0];
  for (int i = 0; i < SESSION_SLOTS && slot == NULL; i++) {
    if (strcmp(c->slots[i].host, t->host) == 0)
      slot = &c->slots[i];
    else if (c->slots[i].used < oldest->used)
      oldest = &c->slots[i];
  }
  if (slot == NULL)
    slot = oldest;
  if (slot->sess != NULL)
    SSL_SESSION_free(slot->sess);
  snprintf(slot->host, sizeof slot->host, "%s", t->host);
  slot->sess = sess;
  slot->used = ++c->tick;
  return 1; /* we keep the reference */
}

/* A context of one reference for method, TLS 1.2 (or 1.3) minimum; NULL with err. */
static sy_tls_ctx_t *ctx_alloc(const SSL_METHOD *method, int tls13_only, char *err,
                               size_t errlen) {
  if (ex_index < 0)
    ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
  sy_tls_ctx_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->refs = 1;
  c->ssl = SSL_CTX_new(method);
  if (c->ssl == NULL) {
    set_err(err, errlen, "cannot make a TLS context", NULL);
    free(c);
    return NULL;
  }
  SSL_CTX_set_min_proto_version(c->ssl, tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
  return c;
}

sy_tls_ctx_t *sy_tls_ctx_new(const sy_tls_conf_t *conf, char *err, size_t errlen) {
  sy_tls_ctx_t *c = ctx_alloc(TLS_client_method(), conf->tls13_only, err, errlen);
  if (c == NULL)
    return NULL;
  c->insecure = conf->insecure;
  static const unsigned char alpn[] = "\x08http/1.1";
  SSL_CTX_set_alpn_protos(c->ssl, alpn, sizeof alpn - 1);
  SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(c->ssl, on_new_session);
  SSL_CTX_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
  if (!conf->insecure) {
    /* The bundle is read now, whole: no CA file is opened during a handshake (the
     * hashed-directory lookup would read files on the event loop). */
    const char *ca = conf->ca_file ? conf->ca_file : X509_get_default_cert_file();
    if (SSL_CTX_load_verify_locations(c->ssl, ca, NULL) != 1) {
      set_err(err, errlen, "cannot load the CA file", ca);
      sy_tls_ctx_free(c);
      return NULL;
    }
    SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
  }
  if (conf->cert_file != NULL) {
    if (SSL_CTX_use_certificate_chain_file(c->ssl, conf->cert_file) != 1) {
      set_err(err, errlen, "cannot load the client certificate", conf->cert_file);
      sy_tls_ctx_free(c);
      return NULL;
    }
    const char *key = conf->key_file ? conf->key_file : conf->cert_file;
    if (SSL_CTX_use_PrivateKey_file(c->ssl, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(c->ssl) != 1) {
      set_err(err, errlen, "cannot load the client key (or it does not match the certificate)",
              key);
      sy_tls_ctx_free(c);
      return NULL;
    }
  }
  return c;
}

/* ALPN on the listener: http/1.1 if the client offers it; a client that offers
 * only other protocols (h2 alone) gets no ALPN answer and may go on or give up. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg) {
  static const unsigned char ours[] = "\x08http/1.1";
  unsigned char *sel = NULL;
  (void)ssl;
  (void)arg;
  if (SSL_select_next_proto(&sel, outlen, ours, sizeof ours - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

sy_tls_ctx_t *sy_tls_server_ctx_new(const sy_tls_server_conf_t *conf, char *err, size_t errlen) {
  sy_tls_ctx_t *c = ctx_alloc(TLS_server_method(), conf->tls13_only, err, errlen);
  if (c == NULL)
    return NULL;
  /* No renegotiation (a TLS 1.2 client could make the server redo the costly half of
   * a handshake at will); the server's order of ciphers. */
  SSL_CTX_set_options(c->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(c->ssl, select_alpn, NULL);
  if (SSL_CTX_use_certificate_chain_file(c->ssl, conf->cert_file) != 1) {
    set_err(err, errlen, "cannot load the certificate", conf->cert_file);
    sy_tls_ctx_free(c);
    return NULL;
  }
  if (SSL_CTX_use_PrivateKey_file(c->ssl, conf->key_file, SSL_FILETYPE_PEM) != 1) {
    int mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    set_err(err, errlen,
            mismatch ? "the key does not match the certificate:" : "cannot load the key",
            conf->key_file);
    sy_tls_ctx_free(c);
    return NULL;
  }
  if (SSL_CTX_check_private_key(c->ssl) != 1) {
    set_err(err, errlen, "the key does not match the certificate:", conf->key_file);
    sy_tls_ctx_free(c);
    return NULL;
  }
  return c;
}

void sy_tls_ctx_serial(const sy_tls_ctx_t *c, char *buf, size_t cap) {
  X509 *x = SSL_CTX_get0_certificate(c->ssl);
  BIGNUM *bn = x != NULL ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL) : NULL;
  char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
  snprintf(buf, cap, "%s", hex != NULL ? hex : "");
  OPENSSL_free(hex);
  BN_free(bn);
}

sy_tls_ctx_t *sy_tls_ctx_ref(sy_tls_ctx_t *c) {
  c->refs++;
  return c;
}

void sy_tls_ctx_free(sy_tls_ctx_t *c) {
  if (c == NULL || --c->refs > 0)
    return;
  for (int i = 0; i < SESSION_SLOTS; i++)
    if (c->slots[i].sess != NULL)
      SSL_SESSION_free(c->slots[i].sess);
  SSL_CTX_free(c->ssl);
  free(c);
}

void sy_tls_ctx_counts(const sy_tls_ctx_t *c, uint64_t *handshakes, uint64_t *resumed) {
  *handshakes = c->handshakes;
  *resumed = c->resumed;
}

/* ---- a connection ------------------------------------------------------------------------ */

static int is_ip(const char *host) {
  unsigned char b[16];
  return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

/* A connection of ctx between two memory BIOs (NULL: out of memory). */
static sy_tls_t *conn_new(sy_tls_ctx_t *ctx) {
  sy_tls_t *t = calloc(1, sizeof *t);
  if (t == NULL)
    return NULL;
  t->ctx = ctx;
  t->ssl = SSL_new(ctx->ssl);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    SSL_free(t->ssl);
    free(t);
    ERR_clear_error();
    return NULL;
  }
  BIO_set_mem_eof_return(t->rbio, -1); /* empty means "wait", not end of stream */
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  SSL_set_ex_data(t->ssl, ex_index, t);
  ctx->refs++;
  return t;
}

sy_tls_t *sy_tls_accept(sy_tls_ctx_t *ctx) {
  sy_tls_t *t = conn_new(ctx);
  if (t == NULL)
    return NULL;
  t->server = 1;
  snprintf(t->host, sizeof t->host, "client");
  SSL_set_accept_state(t->ssl);
  ERR_clear_error();
  return t;
}

sy_tls_t *sy_tls_new(sy_tls_ctx_t *ctx, const char *host) {
  sy_tls_t *t = conn_new(ctx);
  if (t == NULL)
    return NULL;
  snprintf(t->host, sizeof t->host, "%s", host);
  SSL_set_connect_state(t->ssl);
  if (is_ip(host)) {
    if (!ctx->insecure)
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host);
  } else {
    SSL_set_tlsext_host_name(t->ssl, host);
    if (!ctx->insecure)
      SSL_set1_host(t->ssl, host);
  }
  /* A copy of the stored session is offered: OpenSSL marks a TLS 1.3 session
   * spent once a handshake resumed it (RFC 8446 asks clients not to reuse tickets,
   * for browsers' privacy), so with the original, connections opened together
   * would all but the first do a full handshake until the next ticket arrived. A
   * proxy's connections to its own upstream have nothing to hide from each other;
   * a server that insists on single use answers with a full handshake. */
  for (int i = 0; i < SESSION_SLOTS; i++)
    if (ctx->slots[i].sess != NULL && strcmp(ctx->slots[i].host, host) == 0) {
      SSL_SESSION *copy = SSL_SESSION_dup(ctx->slots[i].sess);
      if (copy != NULL) {
        SSL_set_session(t->ssl, copy);
        SSL_SESSION_free(copy); /* the SSL holds its own reference */
      }
    }
  ERR_clear_error();
  return t;
}

void sy_tls_free(sy_tls_t *t) {
  if (t == NULL)
    return;
  /* A connection closed without close_notify (a pooled connection that idled out,
   * a response read to its end) is no reason to distrust its session: without
   * this, SSL_free would mark the session not resumable and the next connection
   * would do a full handshake. A connection that failed keeps OpenSSL's rule. */
  if (t->done && t->error[0] == '\0')
    SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(t->ssl); /* frees both BIOs */
  sy_tls_ctx_free(t->ctx);
  free(t);
}

int sy_tls_feed(sy_tls_t *t, const void *data, size_t len) {
  while (len > 0) {
    int n = BIO_write(t->rbio, data, len > (size_t)INT32_MAX ? INT32_MAX : (int)len);
    if (n <= 0)
      return -1;
    data = (const char *)data + n;
    len -= (size_t)n;
  }
  return 0;
}

/* Maps the result of an SSL call. */
static sy_tls_status_t status(sy_tls_t *t, int rc) {
  switch (SSL_get_error(t->ssl, rc)) {
  case SSL_ERROR_NONE: return SY_TLS_OK;
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE: return SY_TLS_WANT;
  case SSL_ERROR_ZERO_RETURN: return SY_TLS_CLOSED;
  default: explain(t); return SY_TLS_ERROR;
  }
}

sy_tls_status_t sy_tls_handshake(sy_tls_t *t) {
  if (t->done)
    return SY_TLS_OK;
  ERR_clear_error();
  int rc = SSL_do_handshake(t->ssl);
  if (rc == 1) {
    t->done = 1;
    t->ctx->handshakes++;
    if (SSL_session_reused(t->ssl))
      t->ctx->resumed++;
    return SY_TLS_OK;
  }
  return status(t, rc);
}

sy_tls_status_t sy_tls_read(sy_tls_t *t, void *out, size_t cap, size_t *got) {
  *got = 0;
  ERR_clear_error();
  int rc = SSL_read_ex(t->ssl, out, cap, got);
  return rc == 1 ? SY_TLS_OK : status(t, rc);
}

sy_tls_status_t sy_tls_write(sy_tls_t *t, const void *data, size_t len) {
  while (len > 0) {
    size_t n = 0;
    ERR_clear_error();
    int rc = SSL_write_ex(t->ssl, data, len, &n);
    if (rc != 1)
      return status(t, rc) == SY_TLS_ERROR ? SY_TLS_ERROR : SY_TLS_WANT;
    data = (const char *)data + n;
    len -= n;
  }
  return SY_TLS_OK;
}

sy_tls_status_t sy_tls_writev(sy_tls_t *t, const struct iovec *iov, unsigned n) {
  /* One record per SSL_write: each one costs the peer a record to decrypt and
   * authenticate, so slices are gathered before they are written. */
  if (n == 1)
    return sy_tls_write(t, iov[0].iov_base, iov[0].iov_len);
  char one[RECORD_PLAIN];
  size_t at = 0;
  sy_tls_status_t st = SY_TLS_OK;
  for (unsigned i = 0; i < n && st == SY_TLS_OK; i++) {
    size_t len = iov[i].iov_len;
    if (at + len <= sizeof one) {
      memcpy(one + at, iov[i].iov_base, len);
      at += len;
      continue;
    }
    if (at > 0)
      st = sy_tls_write(t, one, at);
    at = 0;
    if (st == SY_TLS_OK && len < sizeof one) {
      memcpy(one, iov[i].iov_base, len);
      at = len;
    } else if (st == SY_TLS_OK) {
      st = sy_tls_write(t, iov[i].iov_base, len);
    }
  }
  return st == SY_TLS_OK && at > 0 ? sy_tls_write(t, one, at) : st;
}

size_t sy_tls_pending(const sy_tls_t *t) {
  return BIO_ctrl_pending(t->wbio);
}

size_t sy_tls_drain(sy_tls_t *t, void *buf, size_t cap) {
  int n = BIO_read(t->wbio, buf, cap > (size_t)INT32_MAX ? INT32_MAX : (int)cap);
  return n > 0 ? (size_t)n : 0;
}

const char *sy_tls_error(const sy_tls_t *t) {
  return t->error;
}

void sy_tls_shutdown(sy_tls_t *t) {
  if (t->done && !(SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN)) {
    SSL_shutdown(t->ssl);
    ERR_clear_error();
  }
}

int sy_tls_ready(const sy_tls_t *t) {
  return t->done;
}

int sy_tls_not_tls(const sy_tls_t *t) {
  return t->not_tls;
}

int sy_tls_resumed(const sy_tls_t *t) {
  return t->done && SSL_session_reused(t->ssl);
}

size_t sy_tls_alpn(const sy_tls_t *t, char *buf, size_t cap) {
  const unsigned char *p = NULL;
  unsigned n = 0;
  if (cap == 0)
    return 0;
  SSL_get0_alpn_selected(t->ssl, &p, &n);
  if (n >= cap)
    n = (unsigned)cap - 1;
  memcpy(buf, p ? (const char *)p : "", n);
  buf[n] = '\0';
  return n;
}
