/*
 * check_http_parse.c — the HTTP parsing of examples/httpd and examples/load
 * (examples/http_parse.c), pinned: hand-written cases with the summary each
 * must give, then every seed of the fuzz corpus (tests/fuzz/corpus/TARGET/)
 * against its summary in tests/fuzz/expected.txt.  The drivers are those of
 * the fuzz targets (tests/fuzz/harness.c), so each case also runs their
 * invariant checks and compares whole reads with short ones.  Last, the
 * request parser against the reference (tests/http_parse_ref.c) on the
 * request seeds and a few hundred thousand mutations of them.  Built with
 * the normal compiler: libFuzzer is not needed.
 *
 *   check_http_parse                          the tests (make check)
 *   check_http_parse describe TARGET FILE...  print each file's summary
 */
#define _GNU_SOURCE 1
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "http_parse.h"
#include "http_parse_ref.h"

typedef void driver_fn(const uint8_t *, size_t, char *, size_t);

static driver_fn *driver(const char *target)
{
    if (strcmp(target, "request") == 0)
        return fuzz_request;
    if (strcmp(target, "response") == 0)
        return fuzz_response;
    if (strcmp(target, "url") == 0)
        return fuzz_url;
    return NULL;
}

static const char *const targets[] = { "request", "response", "url" };

static int failures;

static void expect(const char *target, const char *name, const void *data, size_t size,
                   const char *want)
{
    char got[4096];
    driver(target)(data, size, got, sizeof got);
    if (strcmp(got, want) != 0) {
        printf("FAIL: %s %s: expected \"%s\", got \"%s\"\n", target, name, want, got);
        failures++;
    } else {
        printf("ok: %s %s: %s\n", target, name, got);
    }
}

static void check_n(const char *target, const char *name, long got, long want)
{
    if (got != want) {
        printf("FAIL: %s %s: expected %ld, got %ld\n", target, name, want, got);
        failures++;
    } else {
        printf("ok: %s %s: %ld\n", target, name, got);
    }
}

#define CASE(target, input, want) expect(target, #input, input, sizeof input - 1, want)

static void hand_written(void)
{
    /* httpd: one request at a time, as tests/httpd.sh sends them. */
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "ok:keep eof");
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "ok:close");
    CASE("request", "GET / HTTP/1.1\r\nhost: x\r\nCONNECTION: Close\r\n\r\n", "ok:close");
    CASE("request", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "ok:keep:head eof");
    CASE("request", "GET / HTTP/1.0\r\n\r\n", "ok:close");
    CASE("request", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "ok:keep10 eof");
    CASE("request", "", "eof");
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\n", "eof");
    /* Pipelining: every request answered, in order; none after a close. */
    CASE("request",
         "GET / HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
         "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
         "ok:keep ok:keep:head ok:close");
    /* Bodies: skipped, whole or in part. */
    CASE("request",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n",
         "ok:keep:body=5 ok:keep eof");
    CASE("request", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nhello", "ok:keep:body=9 eof");
    CASE("request", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "ok:keep eof");
    CASE("request", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:   7  \r\n\r\n", "ok:keep:body=7 eof");
    /* 400: malformed request lines and headers. */
    CASE("request", "hello there\r\n\r\n", "400");
    CASE("request", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", "400");
    CASE("request", "GET / HTTP/1.1\r\n\r\n", "400"); /* 1.1 without Host */
    CASE("request", "get / HTTP/1.1\r\nHost: x\r\n\r\n", "400");
    CASE("request", "GET x HTTP/1.1\r\nHost: x\r\n\r\n", "400");
    CASE("request", "GET  HTTP/1.1\r\nHost: x\r\n\r\n", "400");
    CASE("request", "GET / HTTP/1.1\nHost: x\r\n\r\n", "400");
    CASE("request", "\r\n\r\n", "eof"); /* empty lines, skipped (below) */
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "400");
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n", "400");
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", "400");
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 123456789012345678901234\r\n\r\n",
         "400");
    /* Connection is a list of tokens: whole tokens, in any case. */
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n", "ok:close");
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade,CLOSE \r\n\r\n", "ok:close");
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n", "ok:keep eof");
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\nConnection: unclose\r\n\r\n", "ok:keep eof");
    CASE("request", "GET / HTTP/1.0\r\nConnection: TE, Keep-Alive\r\n\r\n", "ok:keep10 eof");
    CASE("request", "GET / HTTP/1.0\r\nConnection: keep-alive-ish\r\n\r\n", "ok:close");
    /* Empty lines before a request line are ignored (RFC 9112 2.2), as
     * after a POST body. */
    CASE("request", "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", "ok:keep eof");
    CASE("request",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi\r\n"
         "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
         "ok:keep:body=2 ok:keep eof");
    CASE("request", "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", "ok:keep eof");
    CASE("request", "\r\n\r\n\r\n", "eof");
    CASE("request", "\r\nX\r\n\r\n", "400");
    /* Content-Length: a number that fits in size_t, the same in every
     * Content-Length header. */
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n", "400");
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", "400");
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0000000000000000000000003\r\n\r\nabc",
         "ok:keep:body=3 eof");
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc",
         "ok:keep:body=3 eof");
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 0\r\n\r\nabc", "400");
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length:\r\n\r\nabc", "400");
    /* The first request answered, the second malformed. */
    CASE("request", "GET / HTTP/1.1\r\nHost: x\r\n\r\nBAD\r\n\r\n", "ok:keep 400");
    /* 501: a chunked body. */
    CASE("request", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "501");

    /* load: responses as httpd sends them, and what it refuses. */
    CASE("response", "HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nHello, World!\n", "ok:53 eof");
    CASE("response", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\n\r\n",
         "ok:40 ok:19:close"); /* the second, without a length, ends with the connection */
    CASE("response", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nh", "eof");
    CASE("response", "HTTP/1.1 200 OK\r\n", "eof");
    CASE("response", "HTTP/1.1 404 Not Found\r\n\r\n", "EPROTO");
    CASE("response", "HTTP/2 200\r\n\r\n", "EPROTO");
    CASE("response", "HTTP/1.1 2\r\n\r\n", "EPROTO");
    CASE("response", "HTTP/1.1 2000\r\n\r\n", "EPROTO");
    CASE("response", "HTTP/1.1 200\r\n\r\n", "ok:16:close");
    /* Content-Length: read within its line, a number, and no wrapping. */
    CASE("response", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n12", "EPROTO");
    CASE("response", "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nhi", "EPROTO");
    CASE("response", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nhi", "EPROTO");
    CASE("response", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "EPROTO");
    CASE("response", "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n", "eof");
    CASE("response", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", "eof");
    CASE("response", "HTTP/1.1 200 OK\r\nContent-Length: \t2 \r\n\r\nhi", "ok:42 eof");
    CASE("response", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", "ok:59 eof");
    CASE("response", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi", "EPROTO");
    CASE("response", "HTTP/1.1 200 OK\r\nX-Content-Length: 2\r\n\r\n", "ok:40:close");
    /* A body of any length is read through, the buffer reused (1024 bytes
     * here); only a head must fit. */
    CASE("response", "HTTP/1.1 200 OK\r\nContent-Length: 985\r\n\r\n", "eof");
    {
        static char big[64 + 3000 + 38];
        size_t n = (size_t)snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n");
        memset(big + n, 'x', 3000);
        memcpy(big + n + 3000, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 38);
        char want[64];
        snprintf(want, sizeof want, "ok:%zu ok:38 eof", n + 3000);
        expect("response", "a 3000-byte body", big, n + 3000 + 38, want);
    }
    {
        static char head[1100];
        size_t n = (size_t)snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nX: ");
        memset(head + n, 'h', sizeof head - n - 4);
        memcpy(head + sizeof head - 4, "\r\n\r\n", 4);
        expect("response", "a head over 1024 bytes", head, sizeof head, "EMSGSIZE");
    }
    /* Framing (RFC 9112 6.3): chunked, to the connection's end, none. */
    CASE("response",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nA;ext=\"x\"\r\n0123456789\r\n"
         "0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
         "ok:83 ok:27 eof");
    CASE("response", "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n1 \r\nz\r\n0\r\nT: 1\r\n\r\n",
         "ok:71 eof");
    CASE("response", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n0\r\n\r\n",
         "ok:72 eof"); /* Transfer-Encoding wins */
    CASE("response", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz", "ok:47:close");
    CASE("response", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", "EPROTO");
    CASE("response", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "EPROTO");
    CASE("response", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n", "EPROTO");
    CASE("response", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", "eof");
    /* Whether the connection carries another request. */
    CASE("response", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: Close\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
         "ok:57:close");
    CASE("response", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", "ok:38:close");
    CASE("response", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n", "ok:62 eof");

    /* load's URLs. */
    CASE("url", "http://127.0.0.1:8080/", "host=127.0.0.1 port=8080 authority=127.0.0.1:8080 path=/");
    CASE("url", "http://localhost", "host=localhost port=80 authority=localhost path=/");
    CASE("url", "http://h/a/b:c?d", "host=h port=80 authority=h path=/a/b:c?d");
    CASE("url", "http://[::1]:81/x", "host=::1 port=81 authority=[::1]:81 path=/x");
    CASE("url", "http://[fe80::1]", "host=fe80::1 port=80 authority=[fe80::1] path=/");
    CASE("url", "https://x/", "EPROTONOSUPPORT");
    CASE("url", "HTTP://x/", "EPROTONOSUPPORT");
    CASE("url", "", "EPROTONOSUPPORT");
    CASE("url", "http://[::1/", "EINVAL");
    /* What would break the request load sends, or cannot be dialled. */
    CASE("url", "http://h/a b", "EINVAL");
    CASE("url", "http://h/\r\nX: y", "EINVAL");
    CASE("url", "http://h\t/", "EINVAL");
    CASE("url", "http://h/\x7f", "EINVAL");
    CASE("url", "http://", "EINVAL");
    CASE("url", "http:///x", "EINVAL");
    CASE("url", "http://h:/", "EINVAL");
    CASE("url", "http://[]:80/", "EINVAL");
    CASE("url", "http://[::1]:/", "EINVAL");
    CASE("url", "http://[::1]80/", "EINVAL");
    CASE("url", "http://h:1:2/", "host=h:1 port=2 authority=h:1:2 path=/");
    /* The request fits load's 1024-byte buffer with its NUL, or the URL is
     * refused: "GET " path " HTTP/1.1\r\nHost: h\r\n\r\n" is 26 bytes
     * besides the path. */
    char url[1100] = "http://h/";
    memset(url + 9, 'a', 996);
    url[1005] = '\0'; /* a path of 997 bytes */
    struct http_url u;
    char req[1024];
    ssize_t n = http_url_parse(url, &u) == 0 ? http_get_request(req, sizeof req, &u) : -1;
    check_n("url", "997-byte path: request length", n, 1023);
    check_n("url", "997-byte path: the request's end",
            n == 1023 ? memcmp(req + 1001, " HTTP/1.1\r\nHost: h\r\n\r\n", 22) : -1, 0);
    url[1005] = 'a'; /* 998 bytes: one too many */
    n = http_url_parse(url, &u) == 0 ? http_get_request(req, sizeof req, &u) : -1;
    check_n("url", "998-byte path: request length", n, -EMSGSIZE);
    expect("url", "998-byte path", url, strlen(url), "EMSGSIZE");
    /* Empty lines with nothing after them yet are taken too: httpd counts
     * a connection that sent only those as between requests. */
    static const struct { const char *in; long pos; } lines[] = {
        { "\r\n", 2 }, { "\r\n\r\n\r\n", 6 }, { "\r", 0 }, { "\r\n\r", 2 }, { "\r\nGE", 2 },
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        size_t pos = 0, skip = 0;
        struct http_request r;
        char name[64];
        snprintf(name, sizeof name, "empty lines #%zu: answer", i);
        check_n("request", name, http_next_request(lines[i].in, strlen(lines[i].in), &pos, &skip, &r),
                HTTP_MORE);
        snprintf(name, sizeof name, "empty lines #%zu: taken", i);
        check_n("request", name, (long)pos, lines[i].pos);
    }
}

/* Every file of tests/fuzz/corpus/TARGET/ against its line in expected.txt
 * ("TARGET/FILE: SUMMARY"); a seed without a line, or a line without a
 * seed, fails too. */
static void corpus(const char *srcdir)
{
    char path[8192 + 512];
    snprintf(path, sizeof path, "%s/tests/fuzz/expected.txt", srcdir);
    FILE *ex = fopen(path, "r");
    if (!ex) {
        printf("FAIL: cannot open %s\n", path);
        failures++;
        return;
    }
    char line[8192];
    int listed = 0, seen = 0;
    while (fgets(line, sizeof line, ex)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *colon = strstr(line, ": ");
        char *slash = strchr(line, '/');
        if (!colon || !slash || slash > colon) {
            printf("FAIL: expected.txt: bad line \"%s\"\n", line);
            failures++;
            continue;
        }
        *colon = *slash = '\0';
        const char *target = line, *name = slash + 1, *want = colon + 2;
        if (!driver(target)) {
            printf("FAIL: expected.txt: no target \"%s\"\n", target);
            failures++;
            continue;
        }
        listed++;
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/%s/%s", srcdir, target, name);
        FILE *f = fopen(path, "rb");
        if (!f) {
            printf("FAIL: expected.txt lists %s/%s, which is not in the corpus\n", target, name);
            failures++;
            continue;
        }
        static uint8_t data[1 << 16];
        size_t n = fread(data, 1, sizeof data, f);
        fclose(f);
        char label[sizeof line + 16];
        snprintf(label, sizeof label, "corpus/%s", name);
        expect(target, label, data, n, want);
    }
    fclose(ex);
    for (size_t t = 0; t < sizeof targets / sizeof *targets; t++) {
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/%s", srcdir, targets[t]);
        DIR *d = opendir(path);
        if (!d) {
            printf("FAIL: cannot open %s\n", path);
            failures++;
            continue;
        }
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.')
                continue;
            seen++;
            /* Listed?  expected.txt is small: read it again. */
            snprintf(path, sizeof path, "%s/tests/fuzz/expected.txt", srcdir);
            ex = fopen(path, "r");
            char key[1024];
            snprintf(key, sizeof key, "%s/%s: ", targets[t], e->d_name);
            int found = 0;
            while (ex && fgets(line, sizeof line, ex))
                found |= strncmp(line, key, strlen(key)) == 0;
            if (ex)
                fclose(ex);
            if (!found) {
                printf("FAIL: seed %s/%s has no line in expected.txt\n", targets[t], e->d_name);
                failures++;
            }
        }
        closedir(d);
    }
    printf("corpus: %d seeds listed, %d in the tree\n", listed, seen);
}

static int describe(const char *target, int n, char **files)
{
    driver_fn *fn = driver(target);
    if (!fn) {
        fprintf(stderr, "check_http_parse: no target \"%s\"\n", target);
        return 2;
    }
    for (int i = 0; i < n; i++) {
        FILE *f = fopen(files[i], "rb");
        if (!f) {
            perror(files[i]);
            return 1;
        }
        static uint8_t data[1 << 20];
        size_t len = fread(data, 1, sizeof data, f);
        fclose(f);
        char out[4096];
        fn(data, len, out, sizeof out);
        const char *base = strrchr(files[i], '/');
        printf("%s/%s: %s\n", target, base ? base + 1 : files[i], out);
    }
    return 0;
}

/* ------------------------------------------------------------ reference */

/* Both parsers over buf, request after request as httpd calls them: every
 * answer, position, skip and request must be the same. */
static void compare_one(const char *buf, size_t len, const char *what, long n)
{
    size_t pos1 = 0, skip1 = 0, pos2 = 0, skip2 = 0;
    for (int k = 0; k < 64; k++) {
        struct http_request a = { 0 }, b = { 0 };
        int r1 = http_next_request(buf, len, &pos1, &skip1, &a);
        int r2 = ref_next_request(buf, len, &pos2, &skip2, &b);
        bool same = r1 == r2 && pos1 == pos2 && skip1 == skip2 && a.keep == b.keep &&
                    a.keep_10 == b.keep_10 && a.head_only == b.head_only &&
                    (r1 != HTTP_REQUEST || a.body_len == b.body_len);
        if (!same) {
            printf("FAIL: reference %s #%ld, request %d: got %d pos %zu skip %zu keep %d head %d "
                   "body %zu; the reference %d pos %zu skip %zu keep %d head %d body %zu; input:\n",
                   what, n, k, r1, pos1, skip1, a.keep, a.head_only, a.body_len, r2, pos2, skip2,
                   b.keep, b.head_only, b.body_len);
            for (size_t i = 0; i < len && i < 400; i++)
                printf(buf[i] >= 32 && buf[i] < 127 ? "%c" : "\\x%02x", (unsigned char)buf[i]);
            printf("\n");
            failures++;
            return;
        }
        if (r1 != HTTP_REQUEST)
            return;
    }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(uint64_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state % n;
}

/* Pieces that move a request between the parser's answers. */
static const char *const pieces[] = {
    "\r", "\n", "\r\n", "\r\n\r\n", " ", "\t", ":", ",", "0", "7", "12", "99999999999999999999999",
    "Connection:", "connection: close", "Connection: keep-alive", "Content-Length:",
    "content-length: 5", "Content-Length: 0", "Host:", "host: x", "Transfer-Encoding:",
    "Transfer-Encoding: chunked", "close", "keep-alive", "HTTP/1.1", "HTTP/1.0", "GET ", "HEAD ",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", "C", "H", "T",
};

static void mutate(char *buf, size_t *len, size_t cap)
{
    int ops = 1 + (int)rnd(4);
    for (int o = 0; o < ops; o++) {
        size_t at = *len ? rnd(*len + 1) : 0;
        switch (rnd(5)) {
        case 0: { /* insert a piece */
            const char *p = pieces[rnd(sizeof pieces / sizeof pieces[0])];
            size_t pl = strlen(p);
            if (*len + pl > cap)
                break;
            memmove(buf + at + pl, buf + at, *len - at);
            memcpy(buf + at, p, pl);
            *len += pl;
            break;
        }
        case 1: { /* delete a few bytes */
            size_t d = 1 + rnd(8);
            if (at + d > *len)
                d = *len - at;
            memmove(buf + at, buf + at + d, *len - at - d);
            *len -= d;
            break;
        }
        case 2: /* one byte changed */
            if (at < *len)
                buf[at] = (char)rnd(256);
            break;
        case 3: { /* a copy of a stretch appended (pipelining) */
            size_t from = *len ? rnd(*len) : 0, n = *len - from;
            if (*len + n > cap)
                break;
            memcpy(buf + *len, buf + from, n);
            *len += n;
            break;
        }
        case 4: /* cut short */
            *len = at;
            break;
        }
    }
}

static void against_reference(const char *srcdir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/request", srcdir);
    DIR *d = opendir(path);
    if (!d) {
        printf("FAIL: reference: cannot open %s\n", path);
        failures++;
        return;
    }
    static char seed[HTTP_HEAD_MAX * 3], buf[HTTP_HEAD_MAX * 3];
    long cases = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char file[8192];
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        FILE *f = fopen(file, "rb");
        if (!f)
            continue;
        size_t slen = fread(seed, 1, sizeof seed / 2, f);
        fclose(f);
        compare_one(seed, slen, e->d_name, 0);
        for (long i = 1; i <= 10000; i++) {
            size_t len = slen;
            memcpy(buf, seed, slen);
            if (rnd(64) == 0 && len + HTTP_HEAD_MAX + 16 < sizeof buf) {
                /* a head near the limit */
                size_t pad = HTTP_HEAD_MAX - 64 + rnd(128);
                memset(buf + len, 'a', pad);
                len += pad;
            }
            mutate(buf, &len, sizeof buf);
            compare_one(buf, len, e->d_name, i);
            cases++;
        }
    }
    closedir(d);
    printf("ok: the request parser agrees with the reference on %ld inputs\n", cases);
}

/* Heads whose CR LF CR LF ends just before, at and just after
 * HTTP_HEAD_MAX bytes, alone in the buffer or with more bytes after them
 * (where the parser stops looking is the edge): the random cases above
 * seldom land on it. */
static void against_reference_at_limit(void)
{
    static char buf[HTTP_HEAD_MAX + 64];
    const char *first = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    size_t fl = strlen(first);
    long cases = 0;
    for (size_t head = HTTP_HEAD_MAX - 6; head <= HTTP_HEAD_MAX + 6; head++) {
        for (size_t extra = 0; extra <= 8; extra++) {
            memcpy(buf, first, fl);
            memset(buf + fl, 'a', head - fl - 4);
            memcpy(buf + head - 4, "\r\n\r\n", 4);
            memset(buf + head, 'b', extra);
            compare_one(buf, head + extra, "at the limit", (long)(head * 100 + extra));
            cases++;
        }
    }
    printf("ok: the request parser agrees with the reference on %ld heads at the limit\n", cases);
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "describe") == 0)
        return describe(argv[2], argc - 3, argv + 3);
    if (argc != 1) {
        fprintf(stderr, "usage: check_http_parse [describe TARGET FILE...]\n");
        return 2;
    }
    const char *srcdir = getenv("top_srcdir");
    hand_written();
    corpus(srcdir && *srcdir ? srcdir : ".");
    against_reference(srcdir && *srcdir ? srcdir : ".");
    against_reference_at_limit();
    printf("%d failed\n", failures);
    return failures ? 1 : 0;
}
