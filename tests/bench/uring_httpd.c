/*
 * uring_httpd — the raw io_uring baseline for the HTTP rows: what a server
 * gets from liburing directly, without fibers or a runtime (the no-runtime
 * limit ringo is measured against).  One thread and one ring per CPU
 * (BENCH_PROCS overrides), each with its own SO_REUSEPORT listener; a
 * multishot accept where the kernel has it (5.19+), else one accept re-armed
 * after each connection; then per connection a recv SQE, a send SQE for the
 * responses, and a recv again (keep-alive).  Each loop is one
 * io_uring_submit_and_wait that submits everything prepared since the last.
 * Rings use SINGLE_ISSUER | DEFER_TASKRUN where the kernel has them.
 *
 *     uring_httpd PORT     (prints its counters on SIGTERM; see httpd_common.h)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "httpd_common.h"

enum { OP_ACCEPT = 0, OP_RECV = 1, OP_SEND = 2 };
#define OP_MASK 3ull

struct conn {
    int fd;
    size_t in_len;
    char *out;              /* responses being sent: out[out_off..out_len) */
    size_t out_len, out_off;
    char in[CONN_BUF];
    char outbuf[16 * HTTP_RESPONSE_LEN];
};

struct worker {
    int idx;
    int lfd;
    struct io_uring ring;
    bool multishot;         /* accept is multishot (until the kernel says otherwise) */
    unsigned long enters, sqes;
};

static struct io_uring_sqe *get_sqe(struct worker *w)
{
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&w->ring))) {
        io_uring_submit(&w->ring); /* SQ full: submit what is queued */
        w->enters++;
    }
    w->sqes++;
    return sqe;
}

static void arm_accept(struct worker *w)
{
    struct io_uring_sqe *sqe = get_sqe(w);
    if (w->multishot)
        io_uring_prep_multishot_accept(sqe, w->lfd, NULL, NULL, SOCK_CLOEXEC);
    else
        io_uring_prep_accept(sqe, w->lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, OP_ACCEPT);
}

static void arm_recv(struct worker *w, struct conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(w);
    io_uring_prep_recv(sqe, c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_RECV);
}

static void arm_send(struct worker *w, struct conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(w);
    io_uring_prep_send(sqe, c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_SEND);
}

/* Only one operation per connection is ever in flight, so closing from its
 * completion frees nothing the kernel still uses. */
static void conn_close(struct conn *c)
{
    close(c->fd);
    if (c->out != c->outbuf)
        free(c->out);
    free(c);
}

static void on_accept(struct worker *w, struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        if (cqe->res == -EINVAL && w->multishot)
            w->multishot = false; /* no multishot accept on this kernel */
        arm_accept(w);
    }
    if (cqe->res < 0)
        return;
    int one = 1;
    setsockopt(cqe->res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = malloc(sizeof *c);
    if (!c) {
        close(cqe->res);
        return;
    }
    c->fd = cqe->res;
    c->in_len = 0;
    c->out = c->outbuf;
    c->out_len = c->out_off = 0;
    arm_recv(w, c);
}

static unsigned long on_recv(struct worker *w, struct conn *c, int res)
{
    if (res <= 0) {
        conn_close(c);
        return 0;
    }
    c->in_len += (size_t)res;
    size_t n = http_take_requests(c->in, &c->in_len);
    if (c->in_len == sizeof c->in) {
        conn_close(c); /* a request header larger than the buffer */
        return n;
    }
    if (n == 0) {
        arm_recv(w, c);
        return 0;
    }
    size_t len = n * HTTP_RESPONSE_LEN;
    c->out = len <= sizeof c->outbuf ? c->outbuf : malloc(len);
    if (!c->out) {
        c->out = c->outbuf;
        conn_close(c);
        return n;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(c->out + i * HTTP_RESPONSE_LEN, http_response, HTTP_RESPONSE_LEN);
    c->out_len = len;
    c->out_off = 0;
    arm_send(w, c);
    return n;
}

static void on_send(struct worker *w, struct conn *c, int res)
{
    if (res < 0) {
        conn_close(c);
        return;
    }
    c->out_off += (size_t)res;
    if (c->out_off < c->out_len) {
        arm_send(w, c); /* short send */
        return;
    }
    if (c->out != c->outbuf)
        free(c->out);
    c->out = c->outbuf;
    c->out_len = c->out_off = 0;
    arm_recv(w, c);
}

static int ring_init(struct io_uring *ring)
{
    struct io_uring_params p;
    static const unsigned flag_sets[] = {
#ifdef IORING_SETUP_DEFER_TASKRUN
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
#endif
#ifdef IORING_SETUP_COOP_TASKRUN
        IORING_SETUP_COOP_TASKRUN,
#endif
        0,
    };
    int r = -EINVAL;
    for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++) {
        memset(&p, 0, sizeof p);
        p.flags = flag_sets[i] | IORING_SETUP_CQSIZE;
        p.cq_entries = 8192;
        r = io_uring_queue_init_params(2048, ring, &p);
        if (r != -EINVAL)
            break;
    }
    return r;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    int r = ring_init(&w->ring);
    if (r < 0) {
        fprintf(stderr, "uring_httpd: io_uring_queue_init: %s\n", strerror(-r));
        _exit(1);
    }
    arm_accept(w);
    for (;;) {
        io_uring_submit_and_wait(&w->ring, 1);
        w->enters++;
        unsigned long reqs = 0;
        unsigned seen = 0, head;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(&w->ring, head, cqe) {
            seen++;
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            struct conn *c = (struct conn *)(uintptr_t)(ud & ~OP_MASK);
            switch (ud & OP_MASK) {
            case OP_ACCEPT: on_accept(w, cqe); break;
            case OP_RECV: reqs += on_recv(w, c, cqe->res); break;
            case OP_SEND: on_send(w, c, cqe->res); break;
            }
        }
        io_uring_cq_advance(&w->ring, seen);
        http_count_add(w->idx, reqs, w->enters, w->sqes);
        w->enters = 0;
        w->sqes = 0;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int port = http_port(argc, argv, "uring_httpd");
    int nthreads = http_threads();
    sigset_t set;
    http_block_signals(&set);
    struct worker *ws = calloc((size_t)nthreads, sizeof *ws);
    if (!ws)
        return 1;
    for (int i = 0; i < nthreads; i++) {
        struct worker *w = &ws[i];
        w->idx = i;
        w->multishot = true;
        w->lfd = http_listen(port);
        if (w->lfd < 0) {
            perror("uring_httpd: listen");
            return 1;
        }
    }
    /* SINGLE_ISSUER rings belong to the thread that creates them, so each
     * worker sets its ring up itself; a failure there is reported and ends
     * the process. */
    for (int i = 0; i < nthreads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker_main, &ws[i]) != 0) {
            perror("uring_httpd: pthread_create");
            return 1;
        }
    }
    http_wait_and_report(&set, "uring");
    return 0;
}
