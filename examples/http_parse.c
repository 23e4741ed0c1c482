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
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/* Header names and the request line are compared a word at a time, not
 * with strncasecmp and memcmp: their calls cost more than the few bytes
 * they compare.  The loads go through memcpy, for any alignment. */
static inline bool eq4(const char *p, const char *s)
{
    uint32_t a, b;
    memcpy(&a, p, 4);
    memcpy(&b, s, 4);
    return a == b;
}

static inline bool eq8(const char *p, const char *s)
{
    uint64_t a, b;
    memcpy(&a, p, 8);
    memcpy(&b, s, 8);
    return a == b;
}

/* Whether the n (4 or 8) bytes at p are those at lower in any case, where
 * lower has its letters in lower case and other bytes without bit 0x40 (as
 * '-' and ':'): bit 0x40 marks lower's letters, and OR-ing 0x20 into just
 * those bytes of p turns each capital into its small letter, as tolower in
 * the C locale, and nothing else into a letter.  A constant lower folds
 * into the code. */
static inline bool case_eq8(const char *p, const char *lower)
{
    uint64_t w, l;
    memcpy(&w, p, 8);
    memcpy(&l, lower, 8);
    return (w | (l & 0x4040404040404040u) >> 1) == l;
}

static inline bool case_eq4(const char *p, const char *lower)
{
    uint32_t w, l;
    memcpy(&w, p, 4);
    memcpy(&l, lower, 4);
    return (w | (l & 0x40404040u) >> 1) == l;
}

/* Is the header line [line, eol) the header `name` (n bytes with its colon,
 * at least 4, letters in lower case), in any case?  The last word of the
 * compare overlaps the one before rather than going past the name. */
static inline bool is_header(const char *line, const char *eol, const char *name, size_t n)
{
    if ((size_t)(eol - line) < n)
        return false;
    if (n <= 8)
        return case_eq4(line, name) && case_eq4(line + n - 4, name + n - 4);
    for (size_t i = 0; i + 8 < n; i += 8)
        if (!case_eq8(line + i, name + i))
            return false;
    return case_eq8(line + n - 8, name + n - 8);
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
        if (!hs->conn && is_header(line, eol, "connection:", 11)) {
            hs->conn = header_value(line, eol, 10, &hs->conn_len);
        } else if (is_header(line, eol, "content-length:", 15)) {
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
        hs->host = hs->host || is_header(line, eol, "host:", 5);
        break;
    case 't':
        hs->te = hs->te || is_header(line, eol, "transfer-encoding:", 18);
        break;
    }
}

/* Is there a space in [p, e)?  Most request targets are short, where a
 * loop costs less than memchr's call. */
static inline bool has_space(const char *p, const char *e)
{
    if (e - p > 16)
        return memchr(p, ' ', (size_t)(e - p)) != NULL;
    for (; p < e; p++)
        if (*p == ' ')
            return true;
    return false;
}

/* Parse one request head [buf, eol) (its request line) with its headers
 * as scanned. */
static int parse(const char *buf, const char *eol, const struct head_scan *hs,
                 struct http_request *req)
{
    /* The method: capital letters up to the first space (the '\n' at eol
     * stops the walk), most often GET. */
    const char *sp1;
    bool head = false;
    if (eol - buf >= 4 && eq4(buf, "GET ")) {
        sp1 = buf + 3;
    } else {
        for (sp1 = buf; *sp1 >= 'A' && *sp1 <= 'Z'; sp1++)
            ;
        if (sp1 == buf || *sp1 != ' ')
            return HTTP_BAD;
        head = sp1 - buf == 4 && eq4(buf, "HEAD");
    }
    /* The line ends in " HTTP/1.x\r" after a target without a space: its
     * first space after the target is that one.  Checked from the end, the
     * target is the only part of any length to walk. */
    const char *target = sp1 + 1;
    if (eol - target < 11)
        return HTTP_BAD;
    const char *ver = eol - 9;
    if (ver[-1] != ' ' || (!eq8(ver, "HTTP/1.1") && !eq8(ver, "HTTP/1.0")) || ver[8] != '\r')
        return HTTP_BAD;
    if ((*target != '/' && *target != '*' && *target != 'h') || has_space(target, ver - 1))
        return HTTP_BAD;
    bool http11 = ver[7] == '1';
    req->head_only = head;
    if (http11)
        req->keep = !(hs->conn && has_token(hs->conn, hs->conn_len, "close"));
    else
        req->keep = req->keep_10 = hs->conn && has_token(hs->conn, hs->conn_len, "keep-alive");
    if (http11 && !hs->host)
        return HTTP_BAD; /* RFC 9112 3.2: a 1.1 request without Host is 400 */
    if (hs->te)
        return HTTP_CHUNKED;
    if (hs->cl_bad)
        return HTTP_BAD;
    req->body_len = hs->body_len;
    return HTTP_REQUEST;
}

/* The first '\n' in [p, limit), or NULL; [lo, limit) may be read, lo <= p.
 * Head lines are short: a memchr call per line costs more than the line's
 * bytes, so where SSE2 is (every x86-64) lines are searched 16 bytes at a
 * time inline, the last 16 bytes read from limit - 16 back over bytes
 * already searched rather than past limit.  Elsewhere, memchr. */
static inline const char *find_nl(const char *lo, const char *p, const char *limit)
{
#ifdef __SSE2__
    const __m128i nls = _mm_set1_epi8('\n');
    for (; limit - p >= 16; p += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, nls));
        if (m)
            return p + __builtin_ctz(m);
    }
    if (p < limit && limit - lo >= 16) {
        const char *q = limit - 16;
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, nls)) >> (p - q);
        return m ? p + __builtin_ctz(m) : NULL;
    }
#else
    (void)lo; /* only the 16-byte search reads before p */
#endif
    return p < limit ? memchr(p, '\n', (size_t)(limit - p)) : NULL;
}

/* The head ends at the first CR LF CR LF.  One walk over its lines finds
 * it and scans the header lines on the way (struct head_scan): each byte
 * is looked at by one search for '\n' and, in a line whose first letter
 * may start a header parse needs, one compare.  Out of line, so that
 * http_next_request's quick answers need none of its registers saved. */
__attribute__((noinline)) static int next_head(const char *start, size_t avail, size_t *pos,
                                               size_t *skip, struct http_request *req)
{
    /* Look no further than a head may be long, its CR LF CR LF included:
     * past it, 431. */
    const char *limit = start + (avail > HTTP_HEAD_MAX ? HTTP_HEAD_MAX : avail);
    struct head_scan hs = { 0 };
    const char *reqline_end = find_nl(start, start, limit);
    const char *endh = NULL;
    for (const char *nl = reqline_end; nl;) {
        /* nl ends a line; CR LF CR LF ends the head here */
        if (nl > start && limit - nl >= 3 && eq4(nl - 1, "\r\n\r\n")) {
            endh = nl + 3;
            break;
        }
        const char *line = nl + 1;
        nl = find_nl(start, line, limit);
        if (nl)
            scan_header(line, nl, &hs);
    }
    if (!endh)
        return avail > HTTP_HEAD_MAX ? HTTP_TOO_LARGE : HTTP_MORE;
    req->keep = false;
    req->keep_10 = false;
    req->head_only = false;
    req->body_len = 0;
    int r = parse(start, reqline_end, &hs, req);
    if (r != HTTP_REQUEST)
        return r;
    *pos += (size_t)(endh - start);
    *skip = req->body_len;
    return HTTP_REQUEST;
}

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
    /* Empty lines before a request line are ignored (RFC 9112 2.2: some
     * clients send CR LF after a POST body).  All of them, not only one:
     * a connection's reads may end between two, and nothing is kept of
     * what came before; and also when nothing follows yet, so that a
     * connection that sent only those is between requests (httpd: idle,
     * not in the middle of one). */
    while (have - *pos >= 2 && in[*pos] == '\r' && in[*pos + 1] == '\n')
        *pos += 2;
    /* No head is shorter than its CR LF CR LF.  This answer, given before
     * next_head saves any register, is the one httpd gets each time it has
     * answered every request it read. */
    if (have - *pos < 4)
        return HTTP_MORE;
    return next_head(in + *pos, have - *pos, pos, skip, req);
}

/* ---------------------------------------------------------------- responses */

/* Whether the last coding of the Transfer-Encoding list [v, e) is chunked. */
static bool last_coding_chunked(const char *v, const char *e)
{
    const char *comma = v;
    for (const char *p = v; p < e; p++)
        if (*p == ',')
            comma = p + 1;
    while (comma < e && (*comma == ' ' || *comma == '\t'))
        comma++;
    while (e > comma && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    return e - comma == 7 && strncasecmp(comma, "chunked", 7) == 0;
}

int http_response_head(const char *buf, size_t have, size_t cap, struct http_response *r)
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
    /* Each header line [l, eol) up to the blank line at eoh + 2; values
     * are read within their line, never past the head.  Two Content-Length
     * lines must agree (RFC 9112 6.3). */
    size_t clen = 0;
    const char *seen = NULL, *seen_end = NULL;
    bool te = false, chunked = false, close = false, keep_alive = false;
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
        } else if (e - l >= 18 && strncasecmp(l, "Transfer-Encoding:", 18) == 0) {
            te = true;
            chunked = last_coding_chunked(l + 18, e); /* the last line's last coding */
        } else if (e - l >= 11 && strncasecmp(l, "Connection:", 11) == 0) {
            close = close || has_token(l + 11, (size_t)(e - l - 11), "close");
            keep_alive = keep_alive || has_token(l + 11, (size_t)(e - l - 11), "keep-alive");
        }
        l = eol + 1;
    }
    r->head_len = head;
    r->body_len = 0;
    r->keep = !close && (buf[7] != '0' || keep_alive); /* HTTP/1.0 keeps only if it says so */
    if (buf[10] == '0' && buf[11] == '4') {
        r->body = HTTP_BODY_NONE; /* 204 No Content */
    } else if (te) {
        /* Transfer-Encoding wins over Content-Length; a body whose last
         * coding is not chunked ends with the connection (RFC 9112 6.3). */
        r->body = chunked ? HTTP_BODY_CHUNKED : HTTP_BODY_CLOSE;
    } else if (seen) {
        r->body = HTTP_BODY_LENGTH;
        r->body_len = clen;
    } else {
        r->body = HTTP_BODY_CLOSE;
    }
    if (r->body == HTTP_BODY_CLOSE)
        r->keep = false;
    return 1;
}

enum {
    CK_SIZE0,   /* the first digit of a chunk's size */
    CK_SIZE,    /* more digits, or what ends them */
    CK_SIZE_WS, /* blanks after the size */
    CK_EXT,     /* a chunk extension, up to the CR */
    CK_SIZE_LF, /* the LF of the size line */
    CK_DATA,    /* the chunk's data */
    CK_DATA_CR, /* the CR LF after it */
    CK_DATA_LF,
    CK_TRAILER0, /* after the last chunk: a trailer line, or the empty line */
    CK_TRAILER,  /* a trailer line, up to its LF */
    CK_END_LF,   /* the LF of the empty line */
    CK_DONE,
};

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
        return (ch | 0x20) - 'a' + 10;
    return -1;
}

static ssize_t chunked_feed(struct http_body *c, const char *in, size_t n, bool *done)
{
    size_t i = 0;
    *done = c->state == CK_DONE;
    while (i < n && c->state != CK_DONE) {
        char ch = in[i];
        switch (c->state) {
        case CK_DATA: {
            size_t take = n - i < c->left ? n - i : (size_t)c->left;
            c->left -= take;
            i += take;
            if (!c->left)
                c->state = CK_DATA_CR;
            continue;
        }
        case CK_SIZE0:
        case CK_SIZE: {
            int d = hex_digit(ch);
            if (d >= 0) {
                if (c->left >> 60)
                    return -EPROTO; /* past 2^64 */
                c->left = c->left * 16 + (uint64_t)d;
                c->state = CK_SIZE;
            } else if (c->state == CK_SIZE0) {
                return -EPROTO;
            } else if (ch == ' ' || ch == '\t') {
                c->state = CK_SIZE_WS;
            } else if (ch == ';') {
                c->state = CK_EXT;
            } else if (ch == '\r') {
                c->state = CK_SIZE_LF;
            } else {
                return -EPROTO;
            }
            break;
        }
        case CK_SIZE_WS:
            if (ch == ';')
                c->state = CK_EXT;
            else if (ch == '\r')
                c->state = CK_SIZE_LF;
            else if (ch != ' ' && ch != '\t')
                return -EPROTO;
            break;
        case CK_EXT:
            if (ch == '\r')
                c->state = CK_SIZE_LF;
            else if (ch == '\n')
                return -EPROTO;
            break;
        case CK_SIZE_LF:
            if (ch != '\n')
                return -EPROTO;
            c->state = c->left ? CK_DATA : CK_TRAILER0;
            break;
        case CK_DATA_CR:
            if (ch != '\r')
                return -EPROTO;
            c->state = CK_DATA_LF;
            break;
        case CK_DATA_LF:
            if (ch != '\n')
                return -EPROTO;
            c->state = CK_SIZE0;
            break;
        case CK_TRAILER0:
            c->state = ch == '\r' ? CK_END_LF : CK_TRAILER;
            break;
        case CK_TRAILER:
            if (ch == '\n')
                c->state = CK_TRAILER0;
            break;
        case CK_END_LF:
            if (ch != '\n')
                return -EPROTO;
            c->state = CK_DONE;
            break;
        }
        i++;
    }
    *done = c->state == CK_DONE;
    return (ssize_t)i;
}

void http_body_start(struct http_body *b, const struct http_response *r)
{
    b->framing = r->body;
    b->state = CK_SIZE0;
    b->left = r->body == HTTP_BODY_LENGTH ? r->body_len : 0;
}

ssize_t http_body_feed(struct http_body *b, const char *in, size_t n, bool *done)
{
    switch (b->framing) {
    case HTTP_BODY_NONE:
        *done = true;
        return 0;
    case HTTP_BODY_LENGTH: {
        size_t used = n < b->left ? n : (size_t)b->left;
        b->left -= used;
        *done = b->left == 0;
        return (ssize_t)used;
    }
    case HTTP_BODY_CHUNKED:
        return chunked_feed(b, in, n, done);
    default:
        *done = false; /* the connection's end ends it */
        return (ssize_t)n;
    }
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
