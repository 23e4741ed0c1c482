/*
 * http_parse.h — the HTTP/1.1 parsing the examples run: request heads for
 * httpd, response heads and URLs for load.  Pure functions over buffers, no
 * I/O and no ringo, so that tests/check_http_parse and the fuzz targets in
 * tests/fuzz run the very code the programs run.
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---------------------------------------------------------------- httpd */

#define HTTP_HEAD_MAX 8192 /* request line + headers; beyond: 431 */

/* What http_next_request found. */
enum http_next {
    HTTP_MORE,      /* no complete request head yet, or body bytes still to skip */
    HTTP_REQUEST,   /* one request head: *req describes it */
    HTTP_BAD,       /* malformed request: answer 400 and close */
    HTTP_TOO_LARGE, /* head longer than HTTP_HEAD_MAX: answer 431 and close */
    HTTP_CHUNKED,   /* a Transfer-Encoding body: answer 501 and close */
};

struct http_request {
    bool keep;       /* keep the connection open after the answer */
    bool keep_10;    /* keep, for an HTTP/1.0 request that asked so: the
                      * answer must say "Connection: keep-alive" */
    bool head_only;  /* HEAD: the answer has no body */
    size_t body_len; /* Content-Length: body bytes after the head, to skip */
};

/* The next request in the bytes in[*pos, have) of a connection: first skips
 * up to *skip body bytes of the previous request (both advance), and empty
 * lines (CR LF) before a request line (RFC 9112 2.2), then looks for a
 * whole request head.  On HTTP_REQUEST, *pos is past the head and *skip is
 * the request's body length. */
int http_next_request(const char *in, size_t have, size_t *pos, size_t *skip,
                      struct http_request *req);

/* ---------------------------------------------------------------- load */

/* How a response's body ends (RFC 9112 6.3). */
enum http_framing {
    HTTP_BODY_NONE,    /* 204: no body */
    HTTP_BODY_LENGTH,  /* Content-Length bytes */
    HTTP_BODY_CHUNKED, /* Transfer-Encoding: ..., chunked */
    HTTP_BODY_CLOSE,   /* up to the end of the connection */
};

struct http_response {
    size_t head_len;   /* the head, its blank line included */
    int body;          /* enum http_framing */
    size_t body_len;   /* HTTP_BODY_LENGTH: the Content-Length (SIZE_MAX past it) */
    bool keep;         /* the connection may carry another request after it */
};

/* The response head at the start of buf: 1 with *r filled once buf's
 * `have` bytes hold the whole head; 0 while they do not and the buffer (of
 * `cap` bytes) has room for more; -EPROTO for a response that is not
 * HTTP/1.x 2xx, or whose Content-Length is not a number or disagrees with
 * another; -EMSGSIZE for a head longer than `cap`. */
int http_response_head(const char *buf, size_t have, size_t cap, struct http_response *r);

/* A response's body as it arrives, however it is framed; for a chunked
 * one (RFC 9112 7.1) its chunks, the last chunk, trailer lines and the
 * empty line. */
struct http_body {
    int framing;       /* enum http_framing */
    int state;         /* chunked: where in the chunk syntax */
    uint64_t left;     /* Content-Length: bytes left; chunked: the chunk's */
};

/* The body of the response whose head is *r. */
void http_body_start(struct http_body *b, const struct http_response *r);

/* Feeds in[0, n) to b: returns how many bytes belong to the body (all of
 * them unless it ends within), and sets *done once it has ended (never for
 * HTTP_BODY_CLOSE, which the connection's end ends); -EPROTO for a body
 * that is not chunked as it says. */
ssize_t http_body_feed(struct http_body *b, const char *in, size_t n, bool *done);

/* http://host[:port][/path], host a name, an IPv4 address or [IPv6]. */
struct http_url {
    const char *host;      /* without an IPv6 literal's brackets */
    size_t host_len;
    const char *port;      /* "80" when the URL has none */
    size_t port_len;
    const char *authority; /* host[:port] as written: the Host header */
    size_t authority_len;
    const char *path;      /* "/" when the URL has none */
    size_t path_len;
};

/* Splits the NUL-terminated url; the pointers in *u point into url (or to
 * static defaults).  Returns 0, -EPROTONOSUPPORT for a scheme other than
 * http://, or -EINVAL for a malformed URL: a space or control character,
 * an empty host or port, an unclosed '[' or something else than ":port"
 * after the ']'. */
int http_url_parse(const char *url, struct http_url *u);

/* Writes the GET request for *u into out[0, cap); returns its length, or
 * -EMSGSIZE when it does not fit. */
ssize_t http_get_request(char *out, size_t cap, const struct http_url *u);

#endif
