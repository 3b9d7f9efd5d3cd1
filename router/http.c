/*
 * http.c — header store, hop-by-hop rules and error responses (see http.h).
 */
#include "router/http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/grow.h"

void sy_head_init(sy_head_t *h, size_t limit) {
  memset(h, 0, sizeof(*h));
  h->limit = limit;
}

void sy_head_reset(sy_head_t *h) {
  h->len = 0;
  h->nhdrs = 0;
  h->line_off = h->line_len = 0;
  h->last = 0;
}

void sy_head_free(sy_head_t *h) {
  free(h->buf);
  free(h->hdrs);
  memset(h, 0, sizeof(*h));
}

static int head_put(sy_head_t *h, const char *p, size_t n) {
  if (h->len + n + 1 > h->limit)
    return -1;
  if (sy_grow(&h->buf, &h->cap, h->len + n + 1, 1024) < 0)
    return -1;
  memcpy(h->buf + h->len, p, n);
  h->len += n;
  return 0;
}

int sy_head_line(sy_head_t *h, const char *p, size_t n) {
  if (h->line_len == 0)
    h->line_off = (uint32_t)h->len;
  if (head_put(h, p, n) < 0)
    return -1;
  h->line_len += (uint32_t)n;
  return 0;
}

int sy_head_field(sy_head_t *h, const char *p, size_t n) {
  if (h->last != 1) {
    if (h->nhdrs == h->hcap) {
      size_t cap = h->hcap ? h->hcap * 2 : 16;
      sy_hdr_t *nh = realloc(h->hdrs, cap * sizeof(*nh));
      if (nh == NULL)
        return -1;
      h->hdrs = nh;
      h->hcap = cap;
    }
    sy_hdr_t *hd = &h->hdrs[h->nhdrs++];
    memset(hd, 0, sizeof(*hd));
    hd->name_off = (uint32_t)h->len;
    h->last = 1;
  }
  if (head_put(h, p, n) < 0)
    return -1;
  h->hdrs[h->nhdrs - 1].name_len += (uint32_t)n;
  return 0;
}

int sy_head_value(sy_head_t *h, const char *p, size_t n) {
  if (h->nhdrs == 0)
    return -1;
  sy_hdr_t *hd = &h->hdrs[h->nhdrs - 1];
  if (h->last != 2) {
    hd->val_off = (uint32_t)h->len;
    hd->val_len = 0;
    h->last = 2;
  }
  if (head_put(h, p, n) < 0)
    return -1;
  hd->val_len += (uint32_t)n;
  return 0;
}

int sy_head_done(sy_head_t *h) {
  /* NUL-terminate the token just finished so it is also a C string; an empty
   * header value (no on_header_value call) points at this NUL too. */
  if (h->last == 1 && h->nhdrs > 0)
    h->hdrs[h->nhdrs - 1].val_off = (uint32_t)h->len;
  h->last = 0;
  return head_put(h, "", 1);
}

int sy_token_eq(const char *p, size_t n, const char *lower) {
  size_t i = 0;
  for (; i < n; i++) {
    char c = p[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c + 32);
    if (lower[i] == '\0' || c != lower[i])
      return 0;
  }
  return lower[i] == '\0';
}

const char *sy_head_get(const sy_head_t *h, const char *lname, size_t *len) {
  for (size_t i = 0; i < h->nhdrs; i++) {
    const sy_hdr_t *hd = &h->hdrs[i];
    if (sy_token_eq(h->buf + hd->name_off, hd->name_len, lname)) {
      if (len != NULL)
        *len = hd->val_len;
      /* An empty value has val_off 0 if no on_header_value came; point at "". */
      return h->buf + hd->val_off;
    }
  }
  return NULL;
}

int sy_http_hop_by_hop(const char *name, size_t n) {
  static const char *const hop[] = {"connection",          "keep-alive", "proxy-connection",
                                    "proxy-authenticate",  "te",         "trailer",
                                    "transfer-encoding",   "upgrade",    NULL};
  for (int i = 0; hop[i] != NULL; i++)
    if (sy_token_eq(name, n, hop[i]))
      return 1;
  return 0;
}

int sy_http_listed_in(const char *list, size_t len, const char *name, size_t n) {
  size_t i = 0;
  while (i < len) {
    while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
      i++;
    size_t start = i;
    while (i < len && list[i] != ',' && list[i] != ' ' && list[i] != '\t')
      i++;
    if (i - start == n && strncasecmp(list + start, name, n) == 0)
      return 1;
  }
  return 0;
}

const char *sy_http_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 201: return "Created";
  case 204: return "No Content";
  case 302: return "Found";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 413: return "Payload Too Large";
  case 414: return "URI Too Long";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Unknown";
  }
}

int sy_buf_append(sy_buf_t **bp, const char *p, size_t n) {
  sy_buf_t *b = *bp;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
      cap *= 2;
    sy_buf_t *nb = realloc(b, sizeof(*nb) + cap);
    if (nb == NULL)
      return -1;
    nb->cap = cap;
    *bp = b = nb;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

int sy_buf_appends(sy_buf_t **bp, const char *s) {
  return sy_buf_append(bp, s, strlen(s));
}

/* Appends s as a JSON string body (without quotes); messages are ours, but
 * may quote user input such as a path. */
static int append_json_escaped(sy_buf_t **bp, const char *s) {
  char tmp[8];
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    int r;
    if (*p == '"' || *p == '\\') {
      tmp[0] = '\\';
      tmp[1] = (char)*p;
      r = sy_buf_append(bp, tmp, 2);
    } else if (*p < 0x20) {
      snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
      r = sy_buf_append(bp, tmp, 6);
    } else {
      r = sy_buf_append(bp, (const char *)p, 1);
    }
    if (r < 0)
      return -1;
  }
  return 0;
}

sy_buf_t *sy_http_error(int status, const char *type, const char *code, const char *message,
                        const char *trace_id, int keepalive) {
  return sy_http_error_retry(status, type, code, message, trace_id, keepalive, 0);
}

sy_buf_t *sy_http_error_retry(int status, const char *type, const char *code, const char *message,
                              const char *trace_id, int keepalive, unsigned retry_after_s) {
  sy_buf_t *body = sy_buf_new(256);
  if (body == NULL)
    return NULL;
  int ok = sy_buf_appends(&body, "{\"error\":{\"message\":\"") == 0 &&
           append_json_escaped(&body, message) == 0 &&
           sy_buf_appends(&body, "\",\"type\":\"") == 0 && sy_buf_appends(&body, type) == 0 &&
           sy_buf_appends(&body, "\",\"code\":\"") == 0 && sy_buf_appends(&body, code) == 0 &&
           sy_buf_appends(&body, "\"}}\n") == 0;
  sy_buf_t *out = ok ? sy_buf_new(512 + body->len) : NULL;
  if (out != NULL) {
    char head[512], retry[48] = "";
    if (retry_after_s > 0)
      snprintf(retry, sizeof(retry), "Retry-After: %u\r\n", retry_after_s);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n%s%s%s%s%s\r\n",
                     status, sy_http_reason(status), body->len,
                     trace_id ? "x-switchyard-trace-id: " : "", trace_id ? trace_id : "",
                     trace_id ? "\r\n" : "", retry, keepalive ? "" : "Connection: close\r\n");
    if (sy_buf_append(&out, head, (size_t)n) < 0 || sy_buf_append(&out, body->data, body->len) < 0) {
      sy_buf_unref(out);
      out = NULL;
    }
  }
  sy_buf_unref(body);
  return out;
}

int sy__try_write(uv_stream_t *s, uv_buf_t *bufs, unsigned *n) {
  if (uv_stream_get_write_queue_size(s) > 0)
    return 0; /* keep the order: queue behind what is pending */
  int w = uv_try_write(s, bufs, *n);
  if (w == UV_EAGAIN)
    return 0;
  if (w < 0)
    return w;
  size_t done = (size_t)w;
  unsigned i = 0;
  while (i < *n && done >= bufs[i].len) {
    done -= bufs[i].len;
    i++;
  }
  if (i < *n) {
    bufs[i].base += done;
    bufs[i].len -= done;
  }
  unsigned left = *n - i;
  memmove(bufs, bufs + i, left * sizeof(*bufs));
  *n = left;
  return 0;
}
