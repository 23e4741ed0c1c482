/*
 * epoll_httpd — the plain epoll baseline for the HTTP rows: one thread per
 * CPU (BENCH_PROCS overrides), each with its own SO_REUSEPORT listener and
 * epoll instance, level-triggered, non-blocking sockets, keep-alive, a
 * fixed hello response.  No fibers, no io_uring: what a hand-written C
 * event loop reaches.
 *
 *     epoll_httpd PORT     (prints its counters on SIGTERM; see httpd_common.h)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include <stdbool.h>
#include <sys/epoll.h>

#include "httpd_common.h"

struct conn {
    int fd;
    size_t in_len;
    size_t out_len, out_off;   /* unsent response bytes in out (rare: a full socket buffer) */
    char *out;
    char in[CONN_BUF];
};

struct worker {
    int idx;
    int lfd;
    int ep;
};

static void conn_close(struct worker *w, struct conn *c)
{
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->out);
    free(c);
}

/* Send out[off..len); keep what the socket does not take and wait for
 * EPOLLOUT.  Returns -1 when the connection is dead. */
static int conn_send(struct worker *w, struct conn *c, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t r = write(c->fd, buf + off, len - off);
        if (r > 0) {
            off += (size_t)r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else if (r < 0 && errno == EAGAIN) {
            break;
        } else {
            return -1;
        }
    }
    if (off == len) {
        if (c->out) {
            free(c->out);
            c->out = NULL;
            c->out_len = c->out_off = 0;
            struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
            epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
        return 0;
    }
    char *rest = malloc(len - off);
    if (!rest)
        return -1;
    memcpy(rest, buf + off, len - off);
    bool was_waiting = c->out != NULL;
    free(c->out);
    c->out = rest;
    c->out_len = len - off;
    c->out_off = 0;
    if (!was_waiting) {
        struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
        epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return 0;
}

static unsigned long conn_readable(struct worker *w, struct conn *c)
{
    ssize_t r = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (r <= 0) {
        conn_close(w, c);
        return 0;
    }
    c->in_len += (size_t)r;
    size_t n = http_take_requests(c->in, &c->in_len);
    if (c->in_len == sizeof c->in) {
        conn_close(w, c); /* a request header larger than the buffer */
        return n;
    }
    if (n == 0)
        return 0;
    char stackbuf[16 * HTTP_RESPONSE_LEN];
    char *out = n <= 16 ? stackbuf : malloc(n * HTTP_RESPONSE_LEN);
    if (!out) {
        conn_close(w, c);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * HTTP_RESPONSE_LEN, http_response, HTTP_RESPONSE_LEN);
    if (conn_send(w, c, out, n * HTTP_RESPONSE_LEN) < 0)
        conn_close(w, c);
    if (out != stackbuf)
        free(out);
    return n;
}

static void accept_all(struct worker *w)
{
    for (;;) {
        int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a transient error: the listener stays armed */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(w->ep, evs, 256, -1);
        unsigned long reqs = 0;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == w) {
                accept_all(w);
                continue;
            }
            struct conn *c = evs[i].data.ptr;
            if (c->out && (evs[i].events & EPOLLOUT)) {
                char *buf = c->out;
                size_t len = c->out_len;
                c->out = NULL; /* conn_send re-stores any remainder */
                if (conn_send(w, c, buf, len) < 0) {
                    free(buf);
                    conn_close(w, c);
                    continue;
                }
                free(buf);
                if (!c->out) {
                    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
                    epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            } else if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                reqs += conn_readable(w, c);
            }
        }
        http_count_add(w->idx, reqs, 1, 0);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int port = http_port(argc, argv, "epoll_httpd");
    int nthreads = http_threads();
    sigset_t set;
    http_block_signals(&set);
    struct worker *ws = calloc((size_t)nthreads, sizeof *ws);
    if (!ws)
        return 1;
    for (int i = 0; i < nthreads; i++) {
        struct worker *w = &ws[i];
        w->idx = i;
        w->lfd = http_listen(port);
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        if (w->lfd < 0 || w->ep < 0) {
            perror("epoll_httpd: listen");
            return 1;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };
        epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd, &ev);
        pthread_t t;
        if (pthread_create(&t, NULL, worker_main, w) != 0) {
            perror("epoll_httpd: pthread_create");
            return 1;
        }
    }
    http_wait_and_report(&set, "epoll");
    return 0;
}
