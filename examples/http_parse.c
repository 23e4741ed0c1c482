/*
 * http_parse.c — HTTP/1.1 parsing for the examples: request heads and
 * pipelining for httpd, response heads and URLs for load.
 *
 * Every function reads only the bytes it is given (no buffer is assumed to
 * be NUL-terminated unless its comment says so) and writes only through its
 * arguments; tests/check_http_parse pins the results and tests/fuzz feeds
 * them arbitrary bytes under AddressSanitizer and UBSan.
 */
#define _GNU_SOURCE 1
#include "http_parse.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- requests */

/* The Content-Length value in [*v, *e): blanks around it are allowed,
 * nothing else but digits.  Narrows [*v, *e) to the digits and returns
 * their value (SIZE_MAX if it does not fit), or returns -1 when the value
 * is not a number. */
static int content_length(const char **v, const char **e, size_t *n)
{
    while (*v < *e && (**v == ' ' || **v == '\t'))
        (*v)++;
    while (*e > *v && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
    if (*v == *e)
        return -1;
    size_t x = 0;
    for (const char *p = *v; p < *e; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, (size_t)(*p - '0'), &x))
            x = SIZE_MAX; /* stays there: SIZE_MAX * 10 overflows again */
    }
    *n = x;
    return 0;
}

/* Whether the comma-separated list [v, v + len) (a Connection value) has
 * the token tok, in any case, with blanks around it (RFC 9110 5.6.1). */
static bool has_token(const char *v, size_t len, const char *tok)
{
    size_t tl = strlen(tok);
    const char *end = v + len;
    while (v < end) {
        const char *comma = memchr(v, ',', (size_t)(end - v));
        const char *e = comma ? comma : end;
        const char *b = v;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        const char *t = e;
        while (t > b && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - b) == tl && strncasecmp(b, tok, tl) == 0)
            return true;
        v = comma ? comma + 1 : end;
    }
    return false;
}

/* Is the header line [line, eol) the header `lname` (nl bytes, in lower
 * case), in any case, followed by its colon?  Compared inline: the names
 * are a few bytes, and strncasecmp's call and locale cost more than the
 * compare. */
static inline bool is_header(const char *line, const char *eol, const char *lname, size_t nl)
{
    if ((size_t)(eol - line) <= nl || line[nl] != ':')
        return false;
    for (size_t i = 0; i < nl; i++) {
        char c = line[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + ('a' - 'A'));
        if (c != lname[i])
            return false;
    }
    return true;
}

/* The value of the header line [line, eol) whose name is nl bytes: blanks
 * skipped before it, blanks and the CR trimmed after it. */
static const char *header_value(const char *line, const char *eol, size_t nl, size_t *len)
{
    const char *v = line + nl + 1;
    while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
    const char *ve = eol;
    while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    *len = (size_t)(ve - v);
    return v;
}

/* What parse needs of the header lines, gathered in the one walk over
 * them that also finds the end of the head. */
struct head_scan {
    const char *conn;           /* the first Connection value, or NULL */
    size_t conn_len;
    bool host, te;              /* a Host, a Transfer-Encoding header */
    bool cl_bad;                /* a Content-Length that is no number, or two that differ */
    const char *cl, *cl_end;    /* the digits of the (first) Content-Length */
    size_t body_len;
};

/* One header line [line, eol) into *hs. */
static void scan_header(const char *line, const char *eol, struct head_scan *hs)
{
    size_t len;
    switch (*line | 0x20) { /* the first letter in lower case (others don't matter) */
    case 'c':
        if (!hs->conn && is_header(line, eol, "connection", 10)) {
            hs->conn = header_value(line, eol, 10, &hs->conn_len);
        } else if (is_header(line, eol, "content-length", 14)) {
            /* RFC 9112 6.3: a number that fits, the same in every
             * Content-Length header, or 400. */
            const char *v = header_value(line, eol, 14, &len);
            const char *ve = v + len;
            size_t n;
            if (content_length(&v, &ve, &n) < 0 || n == SIZE_MAX ||
                (hs->cl && (ve - v != hs->cl_end - hs->cl ||
                            memcmp(v, hs->cl, (size_t)(ve - v)) != 0))) {
                hs->cl_bad = true;
            } else {
                hs->cl = v;
                hs->cl_end = ve;
                hs->body_len = n;
            }
        }
        break;
    case 'h':
        hs->host = hs->host || is_header(line, eol, "host", 4);
        break;
    case 't':
        hs->te = hs->te || is_header(line, eol, "transfer-encoding", 17);
        break;
    }
}

/* Parse one request head [buf, eol) (its request line) with its headers
 * as scanned. */
static int parse(const char *buf, const char *eol, const struct head_scan *hs,
                 struct http_request *req)
{
    if (eol == buf || eol[-1] != '\r')
        return HTTP_BAD;
    /* the method: capitals, then a space */
    const char *sp1 = buf;
    while (sp1 < eol && *sp1 >= 'A' && *sp1 <= 'Z')
        sp1++;
    if (sp1 == buf || sp1 == eol || *sp1 != ' ')
        return HTTP_BAD;
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', (size_t)(eol - target));
    if (!sp2 || sp2 == target || (*target != '/' && *target != '*' && *target != 'h'))
        return HTTP_BAD;
    const char *ver = sp2 + 1;
    if (eol - 1 - ver != 8)
        return HTTP_BAD;
    /* HTTP/1.0 or HTTP/1.1, as one 8-byte compare each (the constants'
     * memcpy folds away; the byte order is the same on both sides) */
    uint64_t v, v10, v11;
    memcpy(&v, ver, 8);
    memcpy(&v10, "HTTP/1.0", 8);
    memcpy(&v11, "HTTP/1.1", 8);
    if (v != v10 && v != v11)
        return HTTP_BAD;
    bool http11 = v == v11;
    req->head_only = (sp1 - buf == 4 && memcmp(buf, "HEAD", 4) == 0);
    if (http11)
        req->keep = !(hs->conn && has_token(hs->conn, hs->conn_len, "close"));
    else
        req->keep = hs->conn && has_token(hs->conn, hs->conn_len, "keep-alive");
    if (http11 && !hs->host)
        return HTTP_BAD; /* RFC 9112 3.2: a 1.1 request without Host is 400 */
    if (hs->te)
        return HTTP_CHUNKED;
    if (hs->cl_bad)
        return HTTP_BAD;
    req->body_len = hs->body_len;
    return HTTP_REQUEST;
}

/* The head ends at the first CR LF CR LF.  One walk over its lines finds
 * it and scans the header lines on the way (struct head_scan): each byte
 * is looked at by one memchr and, in a line whose first letter may start
 * a header parse needs, one compare. */
int http_next_request(const char *in, size_t have, size_t *pos, size_t *skip,
                      struct http_request *req)
{
    if (*skip) {
        size_t s = have - *pos < *skip ? have - *pos : *skip;
        *pos += s;
        *skip -= s;
        if (*skip)
            return HTTP_MORE;
    }
    if (*pos == have)
        return HTTP_MORE; /* all answered: the usual second call per read */
    const char *start = in + *pos;
    size_t avail = have - *pos;
    const char *end = start + avail;
    /* Look no further than a head may be long: past it, 431. */
    const char *limit = avail > HTTP_HEAD_MAX ? start + HTTP_HEAD_MAX : end;
    struct head_scan hs = { 0 };
    const char *reqline_end = memchr(start, '\n', (size_t)(limit - start));
    const char *endh = NULL;
    for (const char *nl = reqline_end; nl;) {
        /* nl ends a line; CR LF CR LF ends the head here */
        if (nl > start && nl[-1] == '\r' && end - nl >= 3 && nl[1] == '\r' && nl[2] == '\n') {
            endh = nl + 3;
            break;
        }
        const char *line = nl + 1;
        if (line >= limit)
            break;
        nl = memchr(line, '\n', (size_t)(limit - line));
        if (nl)
            scan_header(line, nl, &hs);
    }
    if (!endh || (size_t)(endh - start) > HTTP_HEAD_MAX)
        return avail > HTTP_HEAD_MAX ? HTTP_TOO_LARGE : HTTP_MORE;
    req->keep = false;
    req->head_only = false;
    req->body_len = 0;
    int r = parse(start, reqline_end, &hs, req);
    if (r != HTTP_REQUEST)
        return r;
    *pos = (size_t)(endh - in);
    *skip = req->body_len;
    return HTTP_REQUEST;
}

/* ---------------------------------------------------------------- responses */

ssize_t http_response_length(const char *buf, size_t have, size_t cap)
{
    const char *eoh = memmem(buf, have, "\r\n\r\n", 4);
    if (!eoh)
        return have >= cap ? -EMSGSIZE : 0;
    size_t head = (size_t)(eoh + 4 - buf);
    /* "HTTP/1.x 2xx", then the reason phrase or the end of the line. */
    if (head < 16 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' || buf[9] != '2' ||
        buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9' ||
        (buf[12] != ' ' && buf[12] != '\r'))
        return -EPROTO;
    /* Each header line [l, eol) up to the blank line at eoh + 2; the value
     * of Content-Length is read within its line, never past the head.  Two
     * Content-Length lines must agree (RFC 9112 6.3). */
    size_t clen = 0;
    const char *seen = NULL, *seen_end = NULL;
    const char *hend = eoh + 2;
    for (const char *l = (const char *)memchr(buf, '\n', head) + 1; l < hend;) {
        const char *eol = memchr(l, '\n', (size_t)(hend - l));
        const char *e = eol[-1] == '\r' ? eol - 1 : eol;
        if (e - l >= 15 && strncasecmp(l, "Content-Length:", 15) == 0) {
            const char *v = l + 15;
            if (content_length(&v, &e, &clen) < 0)
                return -EPROTO;
            if (seen && (e - v != seen_end - seen || memcmp(v, seen, (size_t)(e - v)) != 0))
                return -EPROTO;
            seen = v;
            seen_end = e;
        }
        l = eol + 1;
    }
    if (head > cap || clen > cap - head)
        return -EMSGSIZE;
    return (ssize_t)(head + clen);
}

/* ---------------------------------------------------------------- URLs */

int http_url_parse(const char *url, struct http_url *u)
{
    if (strncmp(url, "http://", 7) != 0)
        return -EPROTONOSUPPORT;
    /* Spaces and control characters would break the request line or start
     * a header of their own in the request load sends. */
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return -EINVAL;
    const char *h = url + 7;
    const char *slash = strchr(h, '/');
    const char *end = slash ? slash : h + strlen(h);
    u->authority = h;
    u->authority_len = (size_t)(end - h);
    u->path = slash ? slash : "/";
    u->path_len = strlen(u->path);
    const char *hend; /* the end of the host, where ":port" may follow */
    if (h[0] == '[') { /* [v6]:port */
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb)
            return -EINVAL;
        u->host = h + 1;
        u->host_len = (size_t)(rb - h - 1);
        hend = rb + 1;
    } else {
        const char *colon = memrchr(h, ':', (size_t)(end - h));
        u->host = h;
        u->host_len = (size_t)((colon ? colon : end) - h);
        hend = colon ? colon : end;
    }
    if (hend == end) {
        u->port = "80";
        u->port_len = 2;
    } else if (*hend == ':') {
        u->port = hend + 1;
        u->port_len = (size_t)(end - u->port);
    } else {
        return -EINVAL; /* [v6] followed by something else than :port */
    }
    if (u->host_len == 0 || u->port_len == 0)
        return -EINVAL;
    return 0;
}

ssize_t http_get_request(char *out, size_t cap, const struct http_url *u)
{
    if (u->path_len > INT_MAX || u->authority_len > INT_MAX)
        return -EMSGSIZE;
    int n = snprintf(out, cap, "GET %.*s HTTP/1.1\r\nHost: %.*s\r\n\r\n", (int)u->path_len,
                     u->path, (int)u->authority_len, u->authority);
    if (n < 0 || (size_t)n >= cap)
        return -EMSGSIZE; /* snprintf returns the length it would have needed */
    return n;
}
