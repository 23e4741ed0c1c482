/*
 * http_parse_ref.c — the request parsing of examples/http_parse.c as it was
 * written first, one search per header over the head: the reference that
 * check_http_parse holds the one-walk parser to (ref_next_request must
 * give the same answers for every input).
 */
#define _GNU_SOURCE 1
#include "http_parse.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "http_parse_ref.h"

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

/* Case-insensitive search for header `name` in the head [h, end); returns
 * its value (leading blanks skipped) and length, or NULL. */
static const char *header(const char *h, const char *end, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    const char *line = memchr(h, '\n', (size_t)(end - h)); /* skip request line */
    while (line && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *len = (size_t)(ve - v);
            return v;
        }
        line = eol;
    }
    return NULL;
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

/* Parse one request head [buf, end) (ending in the blank line). */
static int parse(const char *buf, const char *end, struct http_request *req)
{
    const char *eol = memchr(buf, '\n', (size_t)(end - buf));
    if (!eol || eol == buf || eol[-1] != '\r')
        return HTTP_BAD;
    const char *sp1 = memchr(buf, ' ', (size_t)(eol - buf));
    if (!sp1 || sp1 == buf)
        return HTTP_BAD;
    for (const char *m = buf; m < sp1; m++)
        if (*m < 'A' || *m > 'Z')
            return HTTP_BAD;
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', (size_t)(eol - target));
    if (!sp2 || sp2 == target || (*target != '/' && *target != '*' && *target != 'h'))
        return HTTP_BAD;
    const char *ver = sp2 + 1;
    size_t vlen = (size_t)(eol - 1 - ver);
    if (vlen != 8 || memcmp(ver, "HTTP/1.", 7) != 0 || (ver[7] != '0' && ver[7] != '1'))
        return HTTP_BAD;
    bool http11 = ver[7] == '1';
    req->head_only = (sp1 - buf == 4 && memcmp(buf, "HEAD", 4) == 0);

    size_t len;
    const char *v = header(buf, end, "Connection", &len);
    if (http11)
        req->keep = !(v && has_token(v, len, "close"));
    else
        req->keep = req->keep_10 = v && has_token(v, len, "keep-alive");
    if (http11 && !header(buf, end, "Host", &len))
        return HTTP_BAD; /* RFC 9112 3.2: a 1.1 request without Host is 400 */
    if (header(buf, end, "Transfer-Encoding", &len))
        return HTTP_CHUNKED;
    /* Content-Length: a number that fits, the same in every Content-Length
     * header (RFC 9112 6.3: anything else is 400, or the length a proxy in
     * front saw may not be ours). */
    req->body_len = 0;
    const char *first = NULL, *first_end = NULL;
    for (v = header(buf, end, "Content-Length", &len); v;
         v = header(v, end, "Content-Length", &len)) {
        const char *ve = v + len;
        size_t n;
        if (content_length(&v, &ve, &n) < 0 || n == SIZE_MAX)
            return HTTP_BAD;
        if (first && (ve - v != first_end - first || memcmp(v, first, (size_t)(ve - v)) != 0))
            return HTTP_BAD;
        first = v;
        first_end = ve;
        req->body_len = n;
    }
    return HTTP_REQUEST;
}

int ref_next_request(const char *in, size_t have, size_t *pos, size_t *skip,
                      struct http_request *req)
{
    if (*skip) {
        size_t s = have - *pos < *skip ? have - *pos : *skip;
        *pos += s;
        *skip -= s;
        if (*skip)
            return HTTP_MORE;
    }
    /* Empty lines before the request line are skipped (RFC 9112 2.2). */
    while (have - *pos >= 2 && in[*pos] == '\r' && in[*pos + 1] == '\n')
        *pos += 2;
    const char *start = in + *pos;
    size_t avail = have - *pos;
    const char *endh = memmem(start, avail, "\r\n\r\n", 4);
    if (!endh)
        return avail > HTTP_HEAD_MAX ? HTTP_TOO_LARGE : HTTP_MORE;
    endh += 4;
    if ((size_t)(endh - start) > HTTP_HEAD_MAX)
        return HTTP_TOO_LARGE;
    req->keep = false;
    req->keep_10 = false;
    req->head_only = false;
    req->body_len = 0;
    int r = parse(start, endh, req);
    if (r != HTTP_REQUEST)
        return r;
    *pos = (size_t)(endh - in);
    *skip = req->body_len;
    return HTTP_REQUEST;
}

