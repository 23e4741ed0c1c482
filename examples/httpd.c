/*
 * httpd.c — a small HTTP/1.1 server answering every request with a fixed
 * body, written in plain blocking style: one accept loop per proc on its own
 * SO_REUSEPORT listener (ringo_go_on), one goroutine per connection.
 *
 *   httpd [-a ADDR] [-p PORT] [-t PROCS]    (default 127.0.0.1:8080)
 *
 * HTTP: keep-alive (HTTP/1.1 default, "Connection: close" honoured; HTTP/1.0
 * only with "Connection: keep-alive"), pipelined requests (every complete
 * request in the buffer is answered, and the answers go out in one write),
 * request heads up to 8 KiB (beyond: 431 and close), malformed requests 400
 * and close, request bodies with Content-Length are skipped, chunked request
 * bodies get 501.  A client must send each whole request head within
 * REQUEST_NS of its first byte, and may stay idle between requests for at
 * most IDLE_NS; past either deadline the connection is dropped (slow-loris
 * clients cannot hold goroutines for ever).  The parsing of requests is in
 * http_parse.c, where tests/check_http_parse and `make fuzz` reach it.
 *
 * On SIGINT or SIGTERM it prints requests served and the runtime's
 * counters (io_uring_enter calls per request) and exits.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <ringo.h>

#include "http_parse.h"

#define SEC 1000000000LL
#define IDLE_NS (30 * SEC)     /* keep-alive connection with no request */
#define REQUEST_NS (10 * SEC)  /* from a request's first byte to its end of head */

/* The deadlines in use: the defaults above, or -i. */
static int64_t idle_ns = IDLE_NS;
static int64_t request_ns = REQUEST_NS;
#define OUT_MAX 16384          /* pipelined answers batched per write */
#define MAX_PROCS 256

static const char *addr = "127.0.0.1";
static const char *port = "8080";

static const char body[] = "Hello, World!\n";

/* Requests answered, per proc: each slot is written only by goroutines of
 * its proc (cooperatively, so no two at once); padded against false sharing. */
static struct { _Atomic uint64_t n; char pad[56]; } served[MAX_PROCS];

static const char resp_400[] =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static const char resp_431[] =
    "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static const char resp_501[] =
    "HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

static size_t put_response(char *out, bool keep, bool head_only)
{
    return (size_t)sprintf(out,
                           "HTTP/1.1 200 OK\r\nServer: ringo\r\nContent-Type: text/plain\r\n"
                           "Content-Length: %zu\r\n%s\r\n%s",
                           sizeof body - 1, keep ? "" : "Connection: close\r\n",
                           head_only ? "" : body);
}

static void conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char in[HTTP_HEAD_MAX + 1024];
    char out[OUT_MAX];
    size_t have = 0;          /* bytes in `in` */
    size_t skip = 0;          /* request body bytes still to discard */
    bool keep = true;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int proc = ringo_proc();

    ringo_deadline_set(ringo_now() + idle_ns);
    while (keep) {
        ssize_t n = ringo_read(fd, in + have, sizeof in - have);
        if (n <= 0)
            break; /* EOF, reset, or a deadline passed */
        if (have == 0)
            ringo_deadline_set(ringo_now() + request_ns); /* a request has begun */
        have += (size_t)n;

        size_t pos = 0, olen = 0;
        for (;;) {
            struct http_request req;
            int st = http_next_request(in, have, &pos, &skip, &req);
            if (st == HTTP_MORE)
                break;
            if (st != HTTP_REQUEST) {
                ringo_write_all(fd, out, olen);
                if (st == HTTP_TOO_LARGE)
                    ringo_write_all(fd, resp_431, sizeof resp_431 - 1);
                else if (st == HTTP_BAD)
                    ringo_write_all(fd, resp_400, sizeof resp_400 - 1);
                else
                    ringo_write_all(fd, resp_501, sizeof resp_501 - 1);
                goto done;
            }
            keep = req.keep;
            if (olen + 256 > sizeof out) {
                if (ringo_write_all(fd, out, olen) < 0)
                    goto done;
                olen = 0;
            }
            olen += put_response(out + olen, keep, req.head_only);
            atomic_fetch_add_explicit(&served[proc].n, 1, memory_order_relaxed);
            if (!keep)
                break;
        }
        if (olen && ringo_write_all(fd, out, olen) < 0)
            break;
        memmove(in, in + pos, have - pos);
        have -= pos;
        if (have == 0 && skip == 0)
            ringo_deadline_set(ringo_now() + idle_ns); /* idle between requests */
    }
done:
    ringo_close(fd);
}

static void accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = ringo_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            ringo_sleep(10 * 1000000LL); /* out of resources: back off */
            continue;
        }
        if (fd < 0) {
            if (fd != -ECONNABORTED)
                fprintf(stderr, "httpd: accept: %s\n", strerror(-fd));
            continue;
        }
        if (ringo_go(conn, (void *)(intptr_t)fd) < 0)
            ringo_close(fd);
    }
}

/* Waits for SIGINT/SIGTERM on a signalfd, prints the counters, exits. */
static void signals(void *arg)
{
    int sfd = (int)(intptr_t)arg;
    struct signalfd_siginfo si;
    if (ringo_read(sfd, &si, sizeof si) != sizeof si)
        return;
    struct ringo_stats st;
    ringo_stats(&st);
    uint64_t reqs = 0;
    for (int i = 0; i < MAX_PROCS; i++)
        reqs += atomic_load_explicit(&served[i].n, memory_order_relaxed);
    fprintf(stderr,
            "httpd: %llu requests; io_uring_enter calls %llu (%.3f per request), "
            "SQEs %llu, CQEs %llu, switches %llu, cross-proc wakes %llu\n",
            (unsigned long long)reqs, (unsigned long long)st.enters,
            reqs ? (double)st.enters / (double)reqs : 0.0,
            (unsigned long long)st.submissions, (unsigned long long)st.completions,
            (unsigned long long)st.switches, (unsigned long long)st.cross_wakes);
#ifdef HTTPD_BENCH_LINE /* tests/bench/httpd.c: the line make bench reads */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    unsigned long long cpu_us =
        (unsigned long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000ull +
        (unsigned long long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    printf("bench=http impl=ringo requests=%llu enters=%llu sqes=%llu cpu_us=%llu\n",
           (unsigned long long)reqs, (unsigned long long)st.enters,
           (unsigned long long)st.submissions, cpu_us);
    fflush(stdout);
#endif
    _exit(0);
}

static void start(void *arg)
{
    ringo_go(signals, arg);
    for (int i = 0; i < ringo_nprocs(); i++) {
        int lfd = ringo_tcp_listen(addr, port, 4096, RINGO_REUSEPORT);
        if (lfd < 0) {
            fprintf(stderr, "httpd: listen on %s:%s: %s\n", addr, port, strerror(-lfd));
            _exit(1);
        }
        ringo_go_on(i, accept_loop, (void *)(intptr_t)lfd);
    }
    fprintf(stderr, "httpd: listening on %s:%s with %d procs\n", addr, port, ringo_nprocs());
}

static void usage(FILE *f)
{
    fprintf(f, "usage: httpd [-a ADDR] [-p PORT] [-t PROCS] [-i SECONDS]\n"
               "  -a ADDR     address to listen on (default 127.0.0.1)\n"
               "  -p PORT     port (default 8080)\n"
               "  -t PROCS    scheduler threads (default: one per CPU)\n"
               "  -i SECONDS  drop a client idle, or slow to send a request, this long\n"
               "              (default: 30 s idle, 10 s per request)\n"
               "SIGINT or SIGTERM prints request and io_uring counters and exits.\n");
}

int main(int argc, char **argv)
{
    struct ringo_config cfg = { 0 };
    int c;
    while ((c = getopt(argc, argv, "a:p:t:i:h")) != -1) {
        switch (c) {
        case 'i': {
            long secs = atol(optarg);
            if (secs <= 0) {
                usage(stderr);
                return 2;
            }
            idle_ns = request_ns = secs * SEC;
            break;
        }
        case 'a': addr = optarg; break;
        case 'p': port = optarg; break;
        case 't': cfg.procs = (unsigned)atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (cfg.procs > MAX_PROCS)
        cfg.procs = MAX_PROCS;
    signal(SIGPIPE, SIG_IGN);
    /* Blocked here, so in every thread the runtime starts; read from a
     * signalfd by a goroutine. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        perror("httpd: signalfd");
        return 1;
    }
    int r = ringo_run(start, (void *)(intptr_t)sfd, &cfg);
    if (r < 0)
        fprintf(stderr, "httpd: %s\n", strerror(-r));
    return r < 0;
}
