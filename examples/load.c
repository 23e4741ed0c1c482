/*
 * load.c — an HTTP/1.1 load client written with ringo: CONNS keep-alive
 * connections, each a goroutine sending GET requests one after another for
 * SECONDS, then requests per second and latency percentiles.
 *
 *   load [-c CONNS] [-d SECONDS] [-t PROCS] URL      (URL: http://host[:port]/path)
 *
 * Connections are spread over the procs with ringo_go_on; each records its
 * latencies in its proc's histogram (goroutines of one proc never run at
 * once, so the histogram needs no lock).  The run ends by deadline: every
 * connection goroutine sets its deadline to the end of the run, so a
 * request in flight at the end is cut off with -ETIMEDOUT and not counted.
 * A connection the server ends (Connection: close, an HTTP/1.0 answer, a
 * body that ends with the connection) is dialled again; bodies of any
 * length, or chunked, are read through and dropped.  A progress line on
 * stderr is refreshed every second.  Responses and the URL are parsed by
 * http_parse.c (tests/check_http_parse, `make fuzz`).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ringo.h>

#include "http_parse.h"

#define SEC 1000000000LL
#define MAX_PROCS 256

/* Latency histogram: 64 sub-buckets per power of two of nanoseconds, so
 * every recorded value is within 1/64 (1.6%) of the truth, from 1 ns up. */
#define SUB_BITS 6
#define SUB (1 << SUB_BITS)
#define NBUCKETS (64 * SUB)

struct hist {
    uint64_t count[NBUCKETS];
    uint64_t n, errors, bytes;
    int last_error;             /* the errno of the latest error, 0 for none */
    _Atomic uint64_t done;      /* read by the progress line from another proc; relaxed counter */
};

static struct hist *hists;      /* one per proc */
static const char *host, *port;
static char request[1024];
static size_t request_len;
static int64_t t_end;
static unsigned conns = 10;
static int seconds = 10;
static int run_procs;          /* procs of the run, for the report */

static unsigned bucket_of(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);        /* v in [2^e, 2^(e+1)) */
    unsigned sub = (unsigned)(v >> (e - SUB_BITS)) & (SUB - 1);
    return (e - SUB_BITS + 1) * SUB + sub;
}

static uint64_t value_of(unsigned b)
{
    if (b < SUB)
        return b;
    unsigned e = b / SUB + SUB_BITS - 1, sub = b % SUB;
    return ((uint64_t)1 << e) + ((uint64_t)sub << (e - SUB_BITS));
}

/* Reads one response from fd: its head into buf (which holds `*have`
 * bytes already read, left over from the previous one), its body read
 * through and dropped, whatever its length.  Returns the response's
 * length, 0 on end of file before its first byte, or -errno; *keep says
 * whether the connection may carry another request (RFC 9112 9.3: not
 * after "Connection: close", an HTTP/1.0 answer that does not say
 * keep-alive, or a body that ends with the connection). */
static ssize_t read_response(int fd, char *buf, size_t cap, size_t *have, bool *keep)
{
    struct http_response r;
    for (;;) {
        int h = http_response_head(buf, *have, cap, &r);
        if (h < 0)
            return h;
        if (h > 0)
            break;
        ssize_t got = ringo_recv(fd, buf + *have, cap - *have, 0);
        if (got < 0)
            return got;
        if (got == 0)
            return *have ? -ECONNRESET : 0; /* cut off within the head */
        *have += (size_t)got;
    }
    *keep = r.keep;
    uint64_t total = r.head_len;
    size_t pos = r.head_len; /* where the body's bytes start in buf */
    struct http_body body;
    http_body_start(&body, &r);
    for (;;) {
        bool done;
        ssize_t used = http_body_feed(&body, buf + pos, *have - pos, &done);
        if (used < 0)
            return used;
        pos += (size_t)used;
        total += (uint64_t)used;
        if (done)
            break;
        /* Every byte read is the body's: read on into the whole buffer. */
        pos = *have = 0;
        ssize_t got = ringo_recv(fd, buf, cap, 0);
        if (got < 0)
            return got;
        if (got == 0) {
            if (r.body != HTTP_BODY_CLOSE)
                return -ECONNRESET; /* cut off within the body */
            break;
        }
        *have = (size_t)got;
    }
    memmove(buf, buf + pos, *have - pos); /* the next response's first bytes */
    *have -= pos;
    return total > SSIZE_MAX ? SSIZE_MAX : (ssize_t)total;
}

static void conn(void *arg)
{
    (void)arg;
    struct hist *h = &hists[ringo_proc()];
    enum { BUF = 65536 };
    char *buf = malloc(BUF); /* not on the goroutine's stack, 64 KiB by default */
    if (!buf) {
        h->errors++;
        h->last_error = ENOMEM;
        return;
    }
    ringo_deadline_set(t_end);
    while (ringo_now() < t_end) {
        int fd = ringo_tcp_dial(host, port);
        if (fd < 0) {
            if (fd != -ETIMEDOUT) {
                h->errors++;
                h->last_error = -fd;
            }
            if (fd == -ETIMEDOUT || ringo_sleep(10 * 1000000LL) < 0)
                break; /* and free buf */
            continue;
        }
        size_t have = 0;
        bool keep = true;
        while (keep) {
            int64_t t0 = ringo_now();
            ssize_t n = ringo_send_all(fd, request, request_len, 0);
            if (n >= 0)
                n = read_response(fd, buf, BUF, &have, &keep);
            if (n <= 0) {
                /* The end of the run cuts the last request off (not
                 * counted); anything else, a connection closed before
                 * the answer among them, is an error. */
                if (n != -ETIMEDOUT) {
                    h->errors++;
                    h->last_error = n == 0 ? ECONNRESET : (int)-n;
                }
                break;
            }
            uint64_t lat = (uint64_t)(ringo_now() - t0);
            h->count[bucket_of(lat)]++;
            h->n++;
            h->bytes += (uint64_t)n;
            atomic_fetch_add_explicit(&h->done, 1, memory_order_relaxed);
        }
        ringo_close(fd); /* and a new connection, unless the run is over */
    }
    free(buf);
}

static uint64_t total_done(int nprocs)
{
    uint64_t s = 0;
    for (int i = 0; i < nprocs; i++)
        s += atomic_load_explicit(&hists[i].done, memory_order_relaxed);
    return s;
}

static void start(void *arg)
{
    (void)arg;
    int np = ringo_nprocs();
    hists = calloc((size_t)np, sizeof *hists); /* one per proc, however many */
    if (!hists) {
        perror("load");
        return;
    }
    run_procs = np;
    int64_t t0 = ringo_now();
    t_end = t0 + seconds * SEC;
    for (unsigned i = 0; i < conns; i++)
        if (ringo_go_on((int)(i % (unsigned)np), conn, NULL) < 0) {
            fprintf(stderr, "load: cannot start connection %u\n", i);
            break;
        }
    uint64_t last = 0;
    for (int s = 1; ringo_now() < t_end; s++) {
        ringo_sleep_until(t0 + s * SEC < t_end ? t0 + s * SEC : t_end);
        uint64_t d = total_done(np);
        fprintf(stderr, "\r[%3ds] %10" PRIu64 " requests  %9" PRIu64 " req/s   ",
                s, d, d - last);
        last = d;
    }
    fputc('\n', stderr);
}

/* The report; false when nothing was answered. */
static bool report(double wall, int np)
{
    static struct hist all;
    for (int i = 0; i < np; i++) {
        if (hists[i].last_error)
            all.last_error = hists[i].last_error;
        for (unsigned b = 0; b < NBUCKETS; b++)
            all.count[b] += hists[i].count[b];
        all.n += hists[i].n;
        all.errors += hists[i].errors;
        all.bytes += hists[i].bytes;
    }
    double pct[] = { 50, 90, 99, 99.9 };
    uint64_t at[4] = { 0 };
    uint64_t seen = 0, max = 0;
    unsigned k = 0;
    for (unsigned b = 0; b < NBUCKETS; b++) {
        if (!all.count[b])
            continue;
        seen += all.count[b];
        max = value_of(b);
        while (k < 4 && (double)seen >= all.n * pct[k] / 100.0)
            at[k++] = value_of(b);
    }
    printf("%" PRIu64 " requests in %.2fs over %u connections, %" PRIu64 " errors\n",
           all.n, wall, conns, all.errors);
    printf("Requests/sec: %.0f   Transfer/sec: %.2f MB\n", (double)all.n / wall,
           (double)all.bytes / wall / 1e6);
    printf("Latency p50 %.1f us  p90 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us\n",
           at[0] / 1e3, at[1] / 1e3, at[2] / 1e3, at[3] / 1e3, max / 1e3);
    if (all.last_error)
        printf("Last error: %s\n", strerror(all.last_error));
    return all.n > 0;
}

/* A command-line count: digits only, 1 to max; else -1. */
static long number(const char *s, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return *s >= '0' && *s <= '9' && !*end && !errno && v >= 1 && v <= max ? v : -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: load [-c CONNS] [-d SECONDS] [-t PROCS] URL\n"
               "  -c CONNS    concurrent keep-alive connections (default 10)\n"
               "  -d SECONDS  duration (default 10)\n"
               "  -t PROCS    scheduler threads (default: one per CPU)\n"
               "  URL         http://host[:port]/path\n");
}

int main(int argc, char **argv)
{
    struct ringo_config cfg = { 0 };
    int c;
    while ((c = getopt(argc, argv, "c:d:t:h")) != -1) {
        switch (c) {
        case 'c':
        case 'd':
        case 't': {
            long n = number(optarg, c == 'd' ? 365L * 24 * 3600 : 1 << 20);
            if (n < 0) {
                usage(stderr);
                return 2;
            }
            if (c == 'c')
                conns = (unsigned)n;
            else if (c == 'd')
                seconds = (int)n;
            else
                cfg.procs = (unsigned)n;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1 || conns == 0 || seconds <= 0) {
        usage(stderr);
        return 2;
    }
    struct http_url u;
    int e = http_url_parse(argv[optind], &u);
    if (e == -EPROTONOSUPPORT) {
        fprintf(stderr, "load: only http:// URLs are supported\n");
        return 2;
    }
    if (e < 0) {
        fprintf(stderr, "load: bad URL\n");
        return 2;
    }
    ssize_t len = http_get_request(request, sizeof request, &u);
    if (len < 0) {
        fprintf(stderr, "load: URL too long\n");
        return 2;
    }
    request_len = (size_t)len;
    host = strndup(u.host, u.host_len);
    port = strndup(u.port, u.port_len);
    if (!host || !port) {
        perror("load");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    int64_t t0 = ringo_now();
    if (cfg.procs > MAX_PROCS)
        cfg.procs = MAX_PROCS;
    int r = ringo_run(start, NULL, &cfg);
    double wall = (double)(ringo_now() - t0) / 1e9;
    if (r < 0) {
        fprintf(stderr, "load: %s\n", strerror(-r));
        return 1;
    }
    return report(wall, run_procs) ? 0 : 1;
}
