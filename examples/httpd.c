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
 * bodies get 501.  A client must send each whole request, head and body,
 * within REQUEST_NS of its first byte, and may stay idle between requests for at
 * most IDLE_NS; past either deadline the connection is dropped (slow-loris
 * clients cannot hold goroutines for ever).  The parsing of requests is in
 * http_parse.c, where tests/check_http_parse and `make fuzz` reach it.
 *
 * On SIGINT or SIGTERM it shuts down gracefully (Go's Server.Shutdown):
 * it stops accepting, closes the connections that wait between requests
 * (a read deadline in the past, set from the signal goroutine with
 * ringo_fd_deadline_set), lets the requests under way finish, answered
 * with "Connection: close", for up to GRACE_NS (-g: a timed wait on a
 * WaitGroup of the connections, ringo_waitgroup_wait_until), then ends
 * what is left the same way; ringo_run returns and it prints the requests
 * served and the runtime's counters (io_uring_enter calls per request, or
 * epoll_wait calls on the epoll engine).
 * SIGUSR1 prints the runtime's gauges and counters (ringo_stats) and goes
 * on serving.  Signals arrive as channel values (ringo_signal_notify).
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
#include <unistd.h>

#include <ringo.h>

#include "http_parse.h"

#define SEC 1000000000LL
#define IDLE_NS (30 * SEC)     /* keep-alive connection with no request */
#define REQUEST_NS (10 * SEC)  /* from a request's first byte to its end of head */

#define GRACE_NS (10 * SEC)    /* shutdown: how long requests under way may take */

/* The deadlines in use: the defaults above, or -i and -g. */
static int64_t idle_ns = IDLE_NS;
static int64_t request_ns = REQUEST_NS;
static int64_t grace_ns = GRACE_NS;
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

/* The six answers (close, keep-alive, or keep-alive said to an HTTP/1.0
 * client, which keeps a connection only when the answer says so; GET or
 * HEAD), formatted once by make_responses: a copy per request, not a
 * printf. */
enum { CLOSE, KEEP, KEEP_10 };
static struct { char text[256]; size_t len; } responses[3][2];

static void make_responses(void)
{
    static const char *const conn_line[3] = { "Connection: close\r\n", "",
                                              "Connection: keep-alive\r\n" };
    for (int keep = CLOSE; keep <= KEEP_10; keep++)
        for (int head_only = 0; head_only < 2; head_only++) {
            int n = snprintf(responses[keep][head_only].text, sizeof responses[keep][head_only].text,
                             "HTTP/1.1 200 OK\r\nServer: ringo\r\nContent-Type: text/plain\r\n"
                             "Content-Length: %zu\r\n%s\r\n%s",
                             sizeof body - 1, conn_line[keep], head_only ? "" : body);
            responses[keep][head_only].len = (size_t)n;
        }
}

static size_t put_response(char *out, int keep, bool head_only)
{
    memcpy(out, responses[keep][head_only].text, responses[keep][head_only].len);
    return responses[keep][head_only].len;
}

/* Shutdown.  Every connection is in a list under reg_lock, marked busy
 * from the first byte of a request until its answer is written, and
 * counted in the WaitGroup `live` until it is closed.  Shutdown sets
 * `draining`, closes the listeners, and ends the idle connections by
 * setting their read deadline in the past (under the lock); busy ones see
 * `draining` when they answer, say "Connection: close" and end.  Shutdown
 * waits for `live` up to the grace period, then ends the rest the same
 * way and waits for them.  A request whose first bytes arrive as its idle
 * connection is ended is lost, as with any server that closes idle
 * keep-alive connections; a request the server has begun to read is
 * answered.
 *
 * The request path takes no lock.  A connection that becomes busy stores
 * `busy` and then loads `draining`; shutdown stores `draining` and then,
 * under the lock, loads each `busy` (all seq_cst).  So shutdown sees it
 * busy and leaves it alone, or it sees `draining` and takes its read
 * deadline back, after taking the lock: the kick, if there was one, is
 * done by then. */
struct conn_rec {
    struct conn_rec *prev, *next;
    int fd;
    atomic_bool busy;
};
static ringo_mutex reg_lock;
static struct conn_rec *conns;          /* under reg_lock */
static atomic_bool draining;
/* Connections accepted and not yet closed: added to before ringo_go, done
 * by the connection when it has closed its fd.  An accept that completes
 * as shutdown begins may add after the wait has started; harmless: the
 * wait counts it (it ends at once, see conn_register) or has returned
 * already, and ringo_run still waits for its goroutine. */
static ringo_waitgroup live;
static int listeners[MAX_PROCS];
static int nlisteners;

static void conn_register(struct conn_rec *c)
{
    ringo_mutex_lock(&reg_lock);
    c->prev = NULL;
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    bool late = atomic_load(&draining);
    ringo_mutex_unlock(&reg_lock);
    if (late) /* accepted as the listeners closed: idle, so ended at once */
        ringo_fd_deadline_set(c->fd, RINGO_READ, ringo_now() - 1);
}

static void conn_unregister(struct conn_rec *c)
{
    ringo_mutex_lock(&reg_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ringo_mutex_unlock(&reg_lock);
}

/* A request has begun (true) or been answered (false); see "Shutdown". */
static void conn_busy(struct conn_rec *c, bool busy)
{
    atomic_store(&c->busy, busy);
    if (busy && atomic_load(&draining)) {
        ringo_mutex_lock(&reg_lock); /* after any kick of ours */
        ringo_mutex_unlock(&reg_lock);
        ringo_fd_deadline_set(c->fd, RINGO_READ, RINGO_NEVER);
    }
}

static bool is_draining(void)
{
    return atomic_load_explicit(&draining, memory_order_relaxed); /* a hint, checked per request */
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
    struct conn_rec rec = { .fd = fd };
    conn_register(&rec);

    ringo_deadline_set(ringo_now() + idle_ns);
    while (keep) {
        ssize_t n = ringo_recv(fd, in + have, sizeof in - have, 0);
        if (n <= 0)
            break; /* EOF, reset, a deadline passed, or shutdown ended it idle */
        if (have == 0 && skip == 0) {
            /* A request has begun: its head and body are due by then (a
             * body's bytes come with have 0 too, and do not move it). */
            ringo_deadline_set(ringo_now() + request_ns);
            conn_busy(&rec, true);
        }
        have += (size_t)n;

        size_t pos = 0, olen = 0;
        for (;;) {
            struct http_request req;
            int st = http_next_request(in, have, &pos, &skip, &req);
            if (st == HTTP_MORE)
                break;
            if (st != HTTP_REQUEST) {
                ringo_send_all(fd, out, olen, 0);
                if (st == HTTP_TOO_LARGE)
                    ringo_send_all(fd, resp_431, sizeof resp_431 - 1, 0);
                else if (st == HTTP_BAD)
                    ringo_send_all(fd, resp_400, sizeof resp_400 - 1, 0);
                else
                    ringo_send_all(fd, resp_501, sizeof resp_501 - 1, 0);
                goto done;
            }
            keep = req.keep && !is_draining();
            if (olen + 256 > sizeof out) {
                if (ringo_send_all(fd, out, olen, 0) < 0)
                    goto done;
                olen = 0;
            }
            olen += put_response(out + olen, !keep ? CLOSE : req.keep_10 ? KEEP_10 : KEEP, req.head_only);
            /* RINGO_PROCS may ask for more procs than the table has: they share */
            atomic_fetch_add_explicit(&served[(unsigned)proc % MAX_PROCS].n, 1, memory_order_relaxed);
            if (!keep)
                break;
        }
        if (olen && ringo_send_all(fd, out, olen, 0) < 0)
            break;
        if (pos < have) /* a request's start is left: to the front */
            memmove(in, in + pos, have - pos);
        bool answered = pos > 0;
        have -= pos;
        if (have > 0 && answered && skip == 0)
            ringo_deadline_set(ringo_now() + request_ns); /* the next request began in this read */
        else if (have == 0 && skip == 0) {
            ringo_deadline_set(ringo_now() + idle_ns); /* idle between requests */
            conn_busy(&rec, false);
            if (is_draining())
                break;
        }
    }
done:
    conn_unregister(&rec);
    ringo_close(fd);
    ringo_waitgroup_done(&live);
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
        /* Shutdown closes the listeners one by one: after this one's
         * close its number may be another listener's connection already,
         * which accept refuses with something else than -EBADF. */
        if (fd == -EBADF || (fd < 0 && is_draining()))
            return;
        if (fd < 0) {
            if (fd != -ECONNABORTED)
                fprintf(stderr, "httpd: accept: %s\n", strerror(-fd));
            continue;
        }
        ringo_waitgroup_add(&live, 1);
        if (ringo_go(conn, (void *)(intptr_t)fd) < 0) {
            ringo_close(fd);
            ringo_waitgroup_done(&live);
        }
    }
}

/* End the connections that are idle (all of them with `all`): a read
 * deadline in the past ends a blocked read at once, on whatever proc. */
static void end_conns(bool all)
{
    ringo_mutex_lock(&reg_lock);
    for (struct conn_rec *c = conns; c; c = c->next)
        if (all || !atomic_load(&c->busy))
            ringo_fd_deadline_set(c->fd, all ? RINGO_READ | RINGO_WRITE : RINGO_READ,
                                  ringo_now() - 1);
    ringo_mutex_unlock(&reg_lock);
}

static uint64_t requests_served(void)
{
    uint64_t reqs = 0;
    for (int i = 0; i < MAX_PROCS; i++)
        reqs += atomic_load_explicit(&served[i].n, memory_order_relaxed);
    return reqs;
}

/* SIGUSR1: what a server author would graph. */
static void print_stats(void)
{
    struct ringo_stats st;
    ringo_stats(&st);
    /* what st.enters counts */
    const char *waits = st.engine == RINGO_ENGINE_EPOLL ? "epoll_wait" : "io_uring_enter";
    fprintf(stderr,
            "httpd: stats: %llu requests; goroutines %llu (running %llu, runnable %llu, "
            "waiting %llu); procs idle %.1f ms, spinning %.1f ms; donations %llu, "
            "cross-proc wakes %llu; SQEs %llu, CQEs %llu, %s calls %llu; "
            "offload jobs %llu; watchdog reports %llu\n",
            (unsigned long long)requests_served(), (unsigned long long)st.goroutines,
            (unsigned long long)st.running, (unsigned long long)st.runnable,
            (unsigned long long)st.waiting, (double)st.idle_ns / 1e6, (double)st.spin_ns / 1e6,
            (unsigned long long)st.donations, (unsigned long long)st.cross_wakes,
            (unsigned long long)st.submissions, (unsigned long long)st.completions, waits,
            (unsigned long long)st.enters, (unsigned long long)st.offload_jobs,
            (unsigned long long)st.watchdog_reports);
}

/* Prints the statistics on SIGUSR1; on SIGINT or SIGTERM, shuts down (see
 * "Shutdown" above) and prints the counters. */
static void signals(void *arg)
{
    ringo_chan *sigc = arg;
    int sig;
    for (;;) {
        if (ringo_chan_recv(sigc, &sig) != 0)
            return;
        if (sig != SIGUSR1)
            break;
        print_stats();
#ifdef HTTPD_BENCH_LINE /* tests/bench/httpd.c: make bench's marks (httpd_common.h) */
        struct ringo_stats mst;
        ringo_stats(&mst);
        printf("bench=http-mark impl=ringo requests=%llu enters=%llu sqes=%llu\n",
               (unsigned long long)requests_served(), (unsigned long long)mst.enters,
               (unsigned long long)mst.submissions);
        fflush(stdout);
#endif
    }
    ringo_signal_stop(sigc); /* a second ^C kills, as usual */
    ringo_mutex_lock(&reg_lock); /* a connection registering sees it, or is in the list */
    atomic_store(&draining, true);
    ringo_mutex_unlock(&reg_lock);
    for (int i = 0; i < nlisteners; i++)
        ringo_close(listeners[i]); /* the accept loops end (-EBADF) */
    end_conns(false);
    if (ringo_waitgroup_wait_until(&live, ringo_now() + grace_ns) == -ETIMEDOUT) {
        fprintf(stderr, "httpd: grace period over, ending the connections left\n");
        end_conns(true);
        ringo_waitgroup_wait(&live);
    }
    struct ringo_stats st;
    ringo_stats(&st);
    uint64_t reqs = requests_served();
    /* what st.enters counts */
    const char *waits = st.engine == RINGO_ENGINE_EPOLL ? "epoll_wait" : "io_uring_enter";
    fprintf(stderr,
            "httpd: %s: %llu requests; %s calls %llu (%.3f per request), "
            "SQEs %llu, CQEs %llu, switches %llu, cross-proc wakes %llu\n",
            strsignal(sig), (unsigned long long)reqs, waits, (unsigned long long)st.enters,
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
    ringo_chan_release(sigc);
}

/* The port the listeners take.  Another program listening on it is an
 * error, as for a server without SO_REUSEPORT (the listeners share it only
 * among themselves): a first listener without that flag finds out, and
 * picks the port when it is "0".  A string, in buf, or NULL after saying
 * why. */
static const char *claim_port(const char *name, char *buf, size_t size)
{
    int probe = ringo_tcp_listen(addr, port, 1, 0);
    if (probe < 0) {
        fprintf(stderr, "%s: listen on %s:%s: %s\n", name, addr, port, strerror(-probe));
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(probe, (struct sockaddr *)&ss, &len) < 0) {
        fprintf(stderr, "%s: getsockname: %s\n", name, strerror(errno));
        ringo_close(probe);
        return NULL;
    }
    unsigned n = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    snprintf(buf, size, "%u", n);
    ringo_close(probe);
    return buf;
}

static void start(void *arg)
{
    (void)arg;
    ringo_chan *sigc = ringo_chan_make(sizeof(int), 1);
    int sigs[] = { SIGINT, SIGTERM, SIGUSR1 };
    if (!sigc || ringo_signal_notify(sigc, sigs, 3) < 0) {
        fprintf(stderr, "httpd: cannot set up the signals\n");
        _exit(1);
    }
    ringo_go(signals, sigc);
    static char port_buf[8];
    if (!(port = claim_port("httpd", port_buf, sizeof port_buf)))
        _exit(1);
    for (int i = 0; i < ringo_nprocs() && i < MAX_PROCS; i++) {
        int lfd = ringo_tcp_listen(addr, port, 4096, RINGO_REUSEPORT);
        if (lfd < 0) {
            fprintf(stderr, "httpd: listen on %s:%s: %s\n", addr, port, strerror(-lfd));
            _exit(1);
        }
        listeners[nlisteners++] = lfd;
        ringo_go_on(i, accept_loop, (void *)(intptr_t)lfd);
    }
    fprintf(stderr, "httpd: listening on %s:%s with %d procs\n", addr, port, ringo_nprocs());
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
    fprintf(f, "usage: httpd [-a ADDR] [-p PORT] [-t PROCS] [-i SECONDS] [-g SECONDS]\n"
               "  -a ADDR     address to listen on (default 127.0.0.1)\n"
               "  -p PORT     port (default 8080)\n"
               "  -t PROCS    scheduler threads (default: one per CPU)\n"
               "  -i SECONDS  drop a client idle, or slow to send a request, this long\n"
               "              (default: 30 s idle, 10 s per request)\n"
               "  -g SECONDS  on SIGINT/SIGTERM, let requests under way finish this long\n"
               "              (default 10 s)\n"
               "SIGINT or SIGTERM stops accepting, closes idle connections, lets the\n"
               "requests under way finish, then prints request and io_uring counters.\n"
               "SIGUSR1 prints the runtime's statistics and goes on serving.\n");
}

int main(int argc, char **argv)
{
    struct ringo_config cfg = { 0 };
    int c;
    while ((c = getopt(argc, argv, "a:p:t:i:g:h")) != -1) {
        switch (c) {
        case 'g':
        case 'i': {
            long secs = number(optarg, 100L * 365 * 24 * 3600);
            if (secs < 0) {
                usage(stderr);
                return 2;
            }
            if (c == 'g')
                grace_ns = secs * SEC;
            else
                idle_ns = request_ns = secs * SEC;
            break;
        }
        case 'a': addr = optarg; break;
        case 'p': port = optarg; break;
        case 't': {
            long n = number(optarg, 1 << 20);
            if (n < 0) {
                usage(stderr);
                return 2;
            }
            cfg.procs = (unsigned)n;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (cfg.procs > MAX_PROCS)
        cfg.procs = MAX_PROCS;
    make_responses();
    int r = ringo_run(start, NULL, &cfg);
    if (r < 0)
        fprintf(stderr, "httpd: %s\n", strerror(-r));
    return r < 0;
}
