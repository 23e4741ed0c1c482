/*
 * harness.c — the drivers declared in harness.h.
 *
 * Each driver runs its parser twice over the same bytes: once with every
 * read returning as much as fits, once with short reads (a byte at a time
 * for small inputs), and requires the same summary from both: a parser
 * whose verdict depends on how TCP split the stream is wrong whatever the
 * bytes.  Buffers are allocated at their exact size, so that AddressSanitizer
 * sees any read past the end.
 */
#define _GNU_SOURCE 1
#include "harness.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

#define GET_CAP 1024 /* load's request buffer */

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("harness: invariant broken: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

#define CHECK(cond) ((cond) ? (void)0 : fail("%s (%s:%d)", #cond, __FILE__, __LINE__))

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        fail("out of memory");
    return p;
}

/* A summary under construction: words separated by spaces, truncated (and
 * marked with "...") rather than overflowing. */
struct summary {
    char *s;
    size_t cap, len;
};

static void word(struct summary *sm, const char *fmt, ...)
{
    if (sm->cap == 0)
        return;
    char w[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w, sizeof w, fmt, ap);
    va_end(ap);
    int n = snprintf(sm->s + sm->len, sm->cap - sm->len, "%s%s", sm->len ? " " : "", w);
    if (n < 0 || (size_t)n >= sm->cap - sm->len) {
        sm->len = sm->cap - 1;
        if (sm->cap > 4)
            memcpy(sm->s + sm->cap - 4, "...", 4);
        return;
    }
    sm->len += (size_t)n;
}

static void same(const char *what, const char *a, const char *b)
{
    if (strcmp(a, b) != 0)
        fail("%s: whole reads give \"%s\", short reads give \"%s\"", what, a, b);
}

/* The second pass's read size. */
static size_t short_read(size_t size)
{
    return size <= 1024 ? 1 : 97;
}

/* ---------------------------------------------------------------- requests */

/* httpd's conn(): reads of at most `step` bytes into in[HTTP_HEAD_MAX + 1024],
 * every complete request answered, the rest moved to the front. */
static void run_request(const uint8_t *data, size_t size, size_t step, char *out, size_t cap)
{
    struct summary sm = { out, cap, 0 };
    if (cap)
        out[0] = '\0';
    const size_t in_cap = HTTP_HEAD_MAX + 1024;
    char *in = xmalloc(in_cap);
    size_t have = 0, skip = 0, off = 0;
    bool keep = true;
    while (keep) {
        size_t n = size - off;
        if (n > step)
            n = step;
        if (n > in_cap - have)
            n = in_cap - have;
        if (n == 0) {
            /* The buffer is never full here: a head longer than
             * HTTP_HEAD_MAX is refused before, and skipped body bytes leave. */
            CHECK(off == size);
            word(&sm, "eof");
            break;
        }
        memcpy(in + have, data + off, n);
        off += n;
        have += n;
        size_t pos = 0;
        for (;;) {
            struct http_request req;
            size_t pos0 = pos, skip0 = skip;
            int st = http_next_request(in, have, &pos, &skip, &req);
            CHECK(pos >= pos0 && pos <= have);
            if (st == HTTP_MORE) {
                CHECK(skip <= skip0);
                CHECK(skip == 0 || pos == have);
                break;
            }
            if (st == HTTP_BAD || st == HTTP_TOO_LARGE || st == HTTP_CHUNKED) {
                word(&sm, st == HTTP_BAD ? "400" : st == HTTP_TOO_LARGE ? "431" : "501");
                goto done;
            }
            CHECK(st == HTTP_REQUEST);
            CHECK(skip == req.body_len);
            /* The head: after the skipped body and perhaps an empty line,
             * at most HTTP_HEAD_MAX bytes, ending in the blank line. */
            size_t head0 = pos0 + (skip0 < have - pos0 ? skip0 : have - pos0);
            while (have - head0 >= 2 && in[head0] == '\r' && in[head0 + 1] == '\n')
                head0 += 2;
            CHECK(pos >= head0 + 4 && pos - head0 <= HTTP_HEAD_MAX);
            CHECK(memcmp(in + pos - 4, "\r\n\r\n", 4) == 0);
            keep = req.keep;
            CHECK(!req.keep_10 || keep);
            const char *how = !keep ? "close" : req.keep_10 ? "keep10" : "keep";
            if (req.body_len)
                word(&sm, "ok:%s%s:body=%zu", how, req.head_only ? ":head" : "", req.body_len);
            else
                word(&sm, "ok:%s%s", how, req.head_only ? ":head" : "");
            if (!keep)
                break;
        }
        memmove(in, in + pos, have - pos);
        have -= pos;
    }
done:
    free(in);
}

void fuzz_request(const uint8_t *data, size_t size, char *out, size_t cap)
{
    char *b = xmalloc(cap);
    run_request(data, size, SIZE_MAX, out, cap);
    run_request(data, size, short_read(size), b, cap);
    same("request", out, b);
    free(b);
}

/* ---------------------------------------------------------------- responses */

/* A response head: up to its blank line, as the parser said. */
static void check_head(const char *buf, size_t have, const struct http_response *r)
{
    const char *eoh = memmem(buf, have, "\r\n\r\n", 4);
    CHECK(eoh != NULL);
    CHECK(r->head_len == (size_t)(eoh + 4 - buf));
    CHECK(r->body >= HTTP_BODY_NONE && r->body <= HTTP_BODY_CLOSE);
    CHECK(r->body == HTTP_BODY_LENGTH || r->body_len == 0);
    CHECK(r->body != HTTP_BODY_CLOSE || !r->keep);
}

/* The next read: up to `step` bytes of data[*off, size) into dst[0, room). */
static size_t read_into(const uint8_t *data, size_t size, size_t *off, size_t step, char *dst,
                        size_t room)
{
    size_t n = size - *off;
    if (n > step)
        n = step;
    if (n > room)
        n = room;
    memcpy(dst, data + *off, n);
    *off += n;
    return n;
}

/* load's conn() and read_response(): reads of at most `step` bytes into
 * buf[FUZZ_RESPONSE_CAP]; each head parsed there, its body fed through
 * (the buffer reused once it is all body), the rest moved to the front. */
static void run_response(const uint8_t *data, size_t size, size_t step, char *out, size_t cap)
{
    struct summary sm = { out, cap, 0 };
    if (cap)
        out[0] = '\0';
    const size_t bcap = FUZZ_RESPONSE_CAP;
    char *buf = xmalloc(bcap);
    size_t have = 0, off = 0;
    for (;;) {
        struct http_response r;
        int h = http_response_head(buf, have, bcap, &r);
        if (h < 0) {
            CHECK(h == -EPROTO || h == -EMSGSIZE);
            word(&sm, h == -EPROTO ? "EPROTO" : "EMSGSIZE");
            break;
        }
        if (h == 0) {
            CHECK(have < bcap);
            size_t n = read_into(data, size, &off, step, buf + have, bcap - have);
            if (n == 0) {
                word(&sm, "eof");
                break;
            }
            have += n;
            continue;
        }
        check_head(buf, have, &r);
        uint64_t total = r.head_len;
        size_t pos = r.head_len;
        struct http_body body;
        http_body_start(&body, &r);
        bool ended = false, bad = false;
        for (;;) {
            size_t avail = have - pos;
            bool done;
            ssize_t used = http_body_feed(&body, buf + pos, avail, &done);
            if (used < 0) {
                CHECK(used == -EPROTO && r.body == HTTP_BODY_CHUNKED);
                bad = true;
                break;
            }
            CHECK((size_t)used <= avail && (done || (size_t)used == avail));
            CHECK(!done || r.body != HTTP_BODY_CLOSE);
            pos += (size_t)used;
            total += (uint64_t)used;
            if (done)
                break;
            pos = have = 0;
            size_t n = read_into(data, size, &off, step, buf, bcap);
            if (n == 0) {
                ended = true;
                break;
            }
            have = n;
        }
        if (bad) {
            word(&sm, "EPROTO");
            break;
        }
        if (ended && r.body != HTTP_BODY_CLOSE) {
            word(&sm, "eof");
            break;
        }
        word(&sm, "ok:%llu%s", (unsigned long long)total, r.keep && !ended ? "" : ":close");
        if (!r.keep || ended)
            break;
        memmove(buf, buf + pos, have - pos);
        have -= pos;
    }
    free(buf);
}

void fuzz_response(const uint8_t *data, size_t size, char *out, size_t cap)
{
    /* The parser alone on exactly the bytes given, with room to spare and
     * with none: nothing past them may be read. */
    char *exact = xmalloc(size ? size : 1);
    memcpy(exact, data, size);
    struct http_response ra, rb;
    int a = http_response_head(exact, size, size, &ra);
    int b = http_response_head(exact, size, SIZE_MAX / 4, &rb);
    CHECK(a == 0 || a == 1 || a == -EPROTO || a == -EMSGSIZE);
    CHECK(b == 0 || b == 1 || b == -EPROTO);
    CHECK(a == b || (a == -EMSGSIZE && b == 0));
    if (b == 1) {
        check_head(exact, size, &rb);
        CHECK(ra.head_len == rb.head_len && ra.body == rb.body && ra.body_len == rb.body_len &&
              ra.keep == rb.keep);
    }
    /* A chunked body fed whole and a byte at a time: the same answer. */
    struct http_response chunked = { .body = HTTP_BODY_CHUNKED };
    struct http_body c1, c2;
    http_body_start(&c1, &chunked);
    http_body_start(&c2, &chunked);
    bool d1 = false, d2 = false;
    ssize_t u1 = http_body_feed(&c1, exact, size, &d1), u2 = 0;
    for (size_t i = 0; i < size && !d2; i++) {
        ssize_t u = http_body_feed(&c2, exact + i, 1, &d2);
        if (u < 0) {
            u2 = u;
            break;
        }
        CHECK(u == 1);
        u2++;
    }
    CHECK(u1 == u2 && d1 == d2);
    free(exact);

    char *o2 = xmalloc(cap);
    run_response(data, size, SIZE_MAX, out, cap);
    run_response(data, size, short_read(size), o2, cap);
    same("response", out, o2);
    free(o2);
}

/* ---------------------------------------------------------------- URLs */

static void field(struct summary *sm, const char *name, const char *p, size_t n)
{
    char v[96];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 5 < sizeof v; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c > ' ' && c < 0x7f && c != '\\')
            v[k++] = (char)c;
        else
            k += (size_t)snprintf(v + k, sizeof v - k, "\\x%02x", c);
    }
    v[k] = '\0';
    word(sm, "%s=%s", name, v);
}

static bool inside(const char *p, size_t n, const char *s, size_t len)
{
    return p >= s && p <= s + len && n <= (size_t)(s + len - p);
}

void fuzz_url(const uint8_t *data, size_t size, char *out, size_t cap)
{
    struct summary sm = { out, cap, 0 };
    if (cap)
        out[0] = '\0';
    char *url = xmalloc(size + 1);
    memcpy(url, data, size);
    url[size] = '\0';
    size_t len = strlen(url);

    struct http_url u;
    int r = http_url_parse(url, &u);
    if (r < 0) {
        CHECK(r == -EINVAL || r == -EPROTONOSUPPORT);
        word(&sm, r == -EINVAL ? "EINVAL" : "EPROTONOSUPPORT");
        free(url);
        return;
    }
    CHECK(r == 0);
    CHECK(inside(u.host, u.host_len, url, len));
    CHECK(inside(u.authority, u.authority_len, url, len));
    CHECK(inside(u.port, u.port_len, url, len) || (u.port_len == 2 && memcmp(u.port, "80", 2) == 0));
    CHECK(inside(u.path, u.path_len, url, len) || (u.path_len == 1 && u.path[0] == '/'));
    CHECK(u.path_len > 0 && u.path[0] == '/');

    /* The request load sends must fit its buffer, and httpd must read it as
     * one keep-alive GET with nothing left over. */
    char *req = xmalloc(GET_CAP);
    ssize_t n = http_get_request(req, GET_CAP, &u);
    if (n < 0) {
        CHECK(n == -EMSGSIZE);
        word(&sm, "EMSGSIZE");
    } else {
        CHECK(n > 0 && (size_t)n <= GET_CAP);
        size_t pos = 0, skip = 0;
        struct http_request hr;
        int st = http_next_request(req, (size_t)n, &pos, &skip, &hr);
        if (st != HTTP_REQUEST || pos != (size_t)n || !hr.keep || hr.head_only || skip)
            fail("httpd does not read load's request \"%.*s\" as one GET (verdict %d)", (int)n,
                 req, st);
        field(&sm, "host", u.host, u.host_len);
        field(&sm, "port", u.port, u.port_len);
        field(&sm, "authority", u.authority, u.authority_len);
        field(&sm, "path", u.path, u.path_len);
    }
    free(req);
    free(url);
}
