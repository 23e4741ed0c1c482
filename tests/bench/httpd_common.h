/*
 * httpd_common.h — what the C baseline HTTP servers (epoll_httpd.c,
 * uring_httpd.c) share: the fixed response, request framing, the
 * SO_REUSEPORT listener, the thread count and the exit report.
 *
 * The servers answer every request header (up to "\r\n\r\n"; wrk sends
 * GETs without a body) with the same keep-alive response, like the Go
 * peers in go/httpd_*.go.  They run until SIGTERM or SIGINT, then print
 *
 *     bench=http impl=NAME requests=N enters=E [sqes=S]
 *
 * (enters: io_uring_enter or epoll_wait calls; sqes: submissions, io_uring
 * only) so that run.sh can report them per request.  On SIGUSR1 they print
 * the same counters as a "bench=http-mark" line and go on: run.sh marks the
 * start and the end of its measured run, and reports the counts between
 * the two marks (the warm-up left out).
 */
#ifndef RINGO_HTTPD_COMMON_H
#define RINGO_HTTPD_COMMON_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char http_response[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "Hello, World!";
#define HTTP_RESPONSE_LEN (sizeof http_response - 1)

/* Per-connection buffers.  A request header larger than CONN_BUF closes the
 * connection (hello-world clients send ~100 bytes). */
#define CONN_BUF 4096

/* Each thread counts in its own cache line (relaxed: only the final
 * report reads them, after the load is over). */
#define HTTP_MAX_THREADS 256
static struct http_counters {
    _Atomic unsigned long requests, enters, sqes;
    char pad[64 - 3 * sizeof(unsigned long)];
} http_count[HTTP_MAX_THREADS];

static inline void http_count_add(int t, unsigned long requests, unsigned long enters,
                                  unsigned long sqes)
{
    struct http_counters *c = &http_count[t];
    atomic_store_explicit(&c->sqes, atomic_load_explicit(&c->sqes, memory_order_relaxed) + sqes,
                          memory_order_relaxed);
    atomic_store_explicit(&c->requests, atomic_load_explicit(&c->requests, memory_order_relaxed) + requests,
                          memory_order_relaxed);
    atomic_store_explicit(&c->enters, atomic_load_explicit(&c->enters, memory_order_relaxed) + enters,
                          memory_order_relaxed);
}

/* Count the complete request headers at the front of buf[0..*len), drop
 * them (moving any partial request to the front) and return the count. */
static inline size_t http_take_requests(char *buf, size_t *len)
{
    size_t n = 0, start = 0;
    for (size_t i = 3; i < *len; i++) {
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r' &&
            i - 3 >= start) {
            n++;
            start = i + 1;
        }
    }
    if (start) {
        memmove(buf, buf + start, *len - start);
        *len -= start;
    }
    return n;
}

/* A non-blocking TCP listener on 127.0.0.1:port with SO_REUSEPORT, so each
 * thread can have its own and the kernel spreads connections over them. */
static inline int http_listen(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        close(fd);
        return -1;
    }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Threads: BENCH_PROCS, or one per CPU. */
static inline int http_threads(void)
{
    const char *v = getenv("BENCH_PROCS");
    int n = v ? atoi(v) : 0;
    if (n <= 0)
        n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n > HTTP_MAX_THREADS)
        n = HTTP_MAX_THREADS;
    return n > 0 ? n : 1;
}

/* Block SIGTERM/SIGINT/SIGUSR1 in every thread (call before creating
 * them); the main thread then waits for them in http_wait_and_report. */
static inline void http_block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static inline void http_wait_and_report(sigset_t *set, const char *impl)
{
    for (;;) {
        int sig;
        sigwait(set, &sig);
        unsigned long requests = 0, enters = 0, sqes = 0;
        for (int t = 0; t < HTTP_MAX_THREADS; t++) {
            requests += atomic_load_explicit(&http_count[t].requests, memory_order_relaxed);
            enters += atomic_load_explicit(&http_count[t].enters, memory_order_relaxed);
            sqes += atomic_load_explicit(&http_count[t].sqes, memory_order_relaxed);
        }
        const char *what = sig == SIGUSR1 ? "http-mark" : "http";
        if (sqes)
            printf("bench=%s impl=%s requests=%lu enters=%lu sqes=%lu\n", what, impl, requests, enters,
                   sqes);
        else
            printf("bench=%s impl=%s requests=%lu enters=%lu\n", what, impl, requests, enters);
        fflush(stdout);
        if (sig != SIGUSR1)
            _exit(0);
    }
}

static inline int http_port(int argc, char **argv, const char *prog)
{
    int port = argc == 2 ? atoi(argv[1]) : 0;
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: %s PORT\n", prog);
        exit(2);
    }
    return port;
}

#endif /* RINGO_HTTPD_COMMON_H */
