/*
 * check_accept.c — ringo_accept through the multishot acceptors (accept.c)
 * and, with RINGO_NO_MULTISHOT=1 (tests/check_accept_single.sh), through
 * single-shot accept: many concurrent clients served by several accept
 * goroutines, each connection accepted exactly once; far fewer submissions
 * than accepts (and -EINVAL from a socket that does not listen leaves
 * multishot on); deadlines and cancellation of parked accepts; ringo_close
 * of a listener frees its port and closes the descriptors accepted for
 * nobody; no descriptor leaks across a run; a goroutine waiting in accept
 * is not a deadlock; ringo_dump names the fd.  Loopback only.
 */
#include "testutil.h"

#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <semaphore.h>
#include <sys/socket.h>

#include "internal.h" /* teardown_seam, acc_count */

static unsigned nprocs_param = 1;

/* Does ringo_accept use multishot requests here (io_uring, and not
 * turned off)?  In a run or after one. */
static bool multishot(void)
{
    const char *e = getenv("RINGO_NO_MULTISHOT");
    return !(e && *e && strcmp(e, "0") != 0) && !on_epoll();
}

/* A listener on 127.0.0.1, any port, without SO_REUSEADDR. */
static int listen_plain(struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)sa, sizeof *sa), 0);
    socklen_t len = sizeof *sa;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)sa, &len), 0);
    ck_assert_int_eq(listen(fd, 256), 0);
    return fd;
}

/* A plain blocking connect: on loopback it completes without the
 * listener's accept, and costs no submission. */
static int connect_plain(const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(connect(fd, (const struct sockaddr *)sa, sizeof *sa), 0);
    return fd;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------ */
/* many clients, several accept goroutines */

#define MANY_MAX 400
static struct sockaddr_in many_sa;
static int many_lfd, many_n;
static atomic_int many_seen[MANY_MAX];
static atomic_int many_accepted, many_clients_ok;

static void many_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    uint32_t id;
    ck_assert_int_eq(ringo_read(fd, &id, sizeof id), (ssize_t)sizeof id);
    ck_assert_uint_lt(id, (unsigned)many_n);
    atomic_fetch_add(&many_seen[id], 1);
    char reply[64];
    int n = snprintf(reply, sizeof reply, "hello %u", id);
    ck_assert_int_eq(ringo_write_all(fd, reply, (size_t)n), n);
    ringo_close(fd);
}

static void many_acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        int c = ringo_accept(many_lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c == -ECANCELED)
            return;
        ck_assert_int_ge(c, 0);
        atomic_fetch_add(&many_accepted, 1);
        ck_assert_int_gt(ringo_go(many_conn, (void *)(intptr_t)c), 0);
    }
}

static void many_client(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ringo_connect(fd, (struct sockaddr *)&many_sa, sizeof many_sa), 0);
    ck_assert_int_eq(ringo_write_all(fd, &id, sizeof id), (ssize_t)sizeof id);
    char want[64], got[64];
    int n = snprintf(want, sizeof want, "hello %u", id);
    size_t have = 0;
    ssize_t r;
    while ((r = ringo_read(fd, got + have, sizeof got - have)) > 0)
        have += (size_t)r;
    ck_assert_int_eq(r, 0);
    ck_assert_uint_eq(have, (size_t)n);
    ck_assert(memcmp(got, want, (size_t)n) == 0);
    ringo_close(fd);
    atomic_fetch_add(&many_clients_ok, 1);
}

static void main_many(void *arg)
{
    (void)arg;
    many_n = test_quick() ? 200 : MANY_MAX;
    many_lfd = listen_plain(&many_sa);
    int64_t acc[4];
    for (int i = 0; i < 4; i++) {
        acc[i] = ringo_go_on(i % ringo_nprocs(), many_acceptor, NULL);
        ck_assert_int_gt(acc[i], 0);
    }
    ringo_sleep(2 * MS);
    for (int i = 0; i < many_n; i++)
        ck_assert_int_gt(ringo_go_on(i % ringo_nprocs(), many_client, (void *)(uintptr_t)i), 0);
    for (int t = 0; t < 20000 && atomic_load(&many_clients_ok) < many_n; t++)
        ringo_sleep(1 * MS);
    ck_assert_int_eq(atomic_load(&many_clients_ok), many_n);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(ringo_cancel(acc[i]), 0);
    ringo_sleep(5 * MS);
    ck_assert_int_eq(atomic_load(&many_accepted), many_n);
    for (int i = 0; i < many_n; i++)
        ck_assert_int_eq(atomic_load(&many_seen[i]), 1);
    ringo_close(many_lfd);
}

START_TEST(many_clients_each_accepted_once)
{
    atomic_store(&many_accepted, 0);
    atomic_store(&many_clients_ok, 0);
    for (int i = 0; i < MANY_MAX; i++)
        atomic_store(&many_seen[i], 0);
    RUN(main_many, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* one submission serves many accepts */

#define FEW_CONNS 48

static void main_few_submissions(void *arg)
{
    (void)arg;
    struct sockaddr_in sa;
    /* a socket that does not listen: -EINVAL, which must not turn
     * multishot off for the run (the kernel has it) */
    int bad = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(ringo_accept(bad, NULL, NULL, 0), -EINVAL);
    ringo_close(bad);
    int lfd = listen_plain(&sa);
    int cl[FEW_CONNS + 1], sv[FEW_CONNS + 1];
    cl[0] = connect_plain(&sa);
    sv[0] = ringo_accept(lfd, NULL, NULL, SOCK_CLOEXEC); /* arms the request */
    ck_assert_int_ge(sv[0], 0);
    struct ringo_stats a, b;
    ringo_stats(&a);
    for (int i = 1; i <= FEW_CONNS; i++)
        cl[i] = connect_plain(&sa);
    for (int i = 1; i <= FEW_CONNS; i++) {
        sv[i] = ringo_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(sv[i], 0);
    }
    ringo_stats(&b);
    uint64_t subs = b.submissions - a.submissions;
    if (multishot())
        ck_assert_uint_le(subs, FEW_CONNS / 6); /* arm, cancel at the queue bound, re-arm */
    else if (!on_epoll())
        ck_assert_uint_ge(subs, FEW_CONNS);
    else
        ck_assert_uint_le(subs, FEW_CONNS); /* only the accepts that waited */
    /* each accepted socket is the peer of one client */
    for (int i = 0; i <= FEW_CONNS; i++) {
        char ch = (char)('a' + i % 26), got = 0;
        ck_assert_int_eq(write(cl[i], &ch, 1), 1);
        bool found = false;
        for (int j = 0; j <= FEW_CONNS && !found; j++) {
            if (sv[j] < 0)
                continue;
            struct sockaddr_in x, y;
            socklen_t xl = sizeof x, yl = sizeof y;
            getsockname(cl[i], (struct sockaddr *)&x, &xl);
            getpeername(sv[j], (struct sockaddr *)&y, &yl);
            if (x.sin_port == y.sin_port) {
                ck_assert_int_eq(ringo_read(sv[j], &got, 1), 1);
                ck_assert_int_eq(got, ch);
                ringo_close(sv[j]);
                sv[j] = -1;
                found = true;
            }
        }
        ck_assert(found);
        ringo_close(cl[i]);
    }
    ringo_close(lfd);
}

START_TEST(few_submissions_for_many_accepts)
{
    RUN(main_few_submissions, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* deadlines and cancellation */

static void main_deadline(void *arg)
{
    (void)arg;
    struct sockaddr_in sa;
    int lfd = listen_plain(&sa);
    ringo_deadline_set(ringo_now() + 20 * MS);
    int64_t t0 = ringo_now();
    ck_assert_int_eq(ringo_accept(lfd, NULL, NULL, 0), -ETIMEDOUT);
    int64_t dt = ringo_now() - t0;
    ck_assert_int_ge(dt, 19 * MS); /* not before the deadline; nothing connects, so
                                      only the deadline could end it */
    ck_assert_int_eq(ringo_accept(lfd, NULL, NULL, 0), -ETIMEDOUT); /* entry check */
    ringo_deadline_set(RINGO_NEVER);
    /* the listener still works, from the same proc */
    int c = connect_plain(&sa);
    int s = ringo_accept(lfd, NULL, NULL, 0);
    ck_assert_int_ge(s, 0);
    ck_assert_int_eq(write(c, "d", 1), 1);
    char ch;
    ck_assert_int_eq(ringo_read(s, &ch, 1), 1);
    ck_assert_int_eq(ch, 'd');
    ringo_close(s);
    close(c);
    ringo_close(lfd);
}

START_TEST(deadline_on_accept)
{
    RUN(main_deadline, NULL, nprocs_param);
}
END_TEST

struct waiter { int lfd; atomic_int started; atomic_int result; };

static void waiting_acceptor(void *arg)
{
    struct waiter *w = arg;
    atomic_store(&w->started, 1);
    int r = ringo_accept(w->lfd, NULL, NULL, SOCK_CLOEXEC);
    atomic_store(&w->result, r == 0 ? 1000000 : r); /* an fd may be 0 */
}

/* An accept that ends by its deadline. */
static void timed_acceptor(void *arg)
{
    struct waiter *w = arg;
    atomic_store(&w->started, 1);
    ringo_deadline_set(ringo_now() + 5 * MS);
    atomic_store(&w->result, ringo_accept(w->lfd, NULL, NULL, SOCK_CLOEXEC));
}

static int wait_result(struct waiter *w)
{
    for (int t = 0; t < 5000 && atomic_load(&w->result) == 1; t++)
        ringo_sleep(1 * MS);
    return atomic_load(&w->result);
}

/* The descriptor a waiter accepted (it must have). */
static int wait_accepted(struct waiter *w)
{
    int r = wait_result(w);
    ck_assert_msg(r != 1, "the waiting accept got no connection");
    ck_assert_int_ge(r, 0);
    return r == 1000000 ? 0 : r;
}

/* Three goroutines parked on the same listener on one proc; the middle one
 * is cancelled; the two others get the next two connections. */
static void main_cancel(void *arg)
{
    (void)arg;
    struct sockaddr_in sa;
    int lfd = listen_plain(&sa);
    struct waiter w[3];
    int64_t id[3];
    for (int i = 0; i < 3; i++) {
        w[i].lfd = lfd;
        atomic_store(&w[i].started, 0);
        atomic_store(&w[i].result, 1);
        id[i] = ringo_go_on(ringo_nprocs() - 1, waiting_acceptor, &w[i]);
        while (!atomic_load(&w[i].started))
            ringo_sleep(1 * MS);
    }
    ringo_sleep(5 * MS);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(atomic_load(&w[i].result), 1);
    ck_assert_int_eq(ringo_cancel(id[1]), 0);
    ck_assert_int_eq(wait_result(&w[1]), -ECANCELED);
    int c1 = connect_plain(&sa), c2 = connect_plain(&sa);
    int r0 = wait_accepted(&w[0]), r2 = wait_accepted(&w[2]);
    ck_assert_int_ne(r0, r2);
    ringo_close(r0);
    ringo_close(r2);
    close(c1);
    close(c2);
    /* cancel again, as the only waiter: the listener keeps working for
     * an accept on another proc */
    atomic_store(&w[1].started, 0);
    atomic_store(&w[1].result, 1);
    id[1] = ringo_go_on(ringo_nprocs() - 1, waiting_acceptor, &w[1]);
    while (!atomic_load(&w[1].started))
        ringo_sleep(1 * MS);
    ringo_sleep(5 * MS);
    ck_assert_int_eq(ringo_cancel(id[1]), 0);
    ck_assert_int_eq(wait_result(&w[1]), -ECANCELED);
    int c = connect_plain(&sa);
    ringo_sleep(20 * MS); /* a request still armed on the other proc would take it now */
    ringo_deadline_set(ringo_now() + 5000 * MS);
    int s = ringo_accept(lfd, NULL, NULL, 0);
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_ge(s, 0);
    ringo_close(s);
    close(c);
    ringo_close(lfd);
}

START_TEST(cancel_one_of_several)
{
    RUN(main_cancel, NULL, nprocs_param);
}
END_TEST

/* A waiter whose cancel won, but which a completion reaped before it ran
 * passed over (finding nobody else to give the connection to), still
 * stops the request as the last waiter to leave: a later connection stays
 * in the listen backlog for whoever accepts next (here a plain accept),
 * instead of joining this proc's queue.  The proc is kept busy (yields)
 * throughout, so its idle hook, which would cancel the request too, does
 * not run; a read parked on a pipe keeps I/O in flight, so the periodic
 * polls enter the kernel as a server's do, and a request still armed
 * accepts there.  The completion is reaped by the periodic poll of the
 * switch that brings the proc's tick to a multiple of POLL_EVERY, after
 * the cancel readied the waiter and before the waiter runs. */
static void pipe_reader(void *arg)
{
    int *pfd = arg;
    char ch;
    ck_assert_int_eq(ringo_read(pfd[0], &ch, 1), 1);
    pfd[2] = 1;
}

/* The set-up of these tests: a listener, a read parked on a pipe and a
 * lone accept parked on the listener, both on this proc, the request
 * armed; the waiter's id.  busy_end lets the read go and cleans up. */
struct busy {
    struct sockaddr_in sa;
    int lfd;
    int pfd[3];                 /* the pipe, and whether the read ended */
    struct waiter w;
};

static int64_t busy_start(struct busy *b)
{
    b->lfd = listen_plain(&b->sa);
    b->pfd[2] = 0;
    ck_assert_int_eq(pipe2(b->pfd, O_CLOEXEC), 0);
    ck_assert_int_gt(ringo_go_on(tls_proc->idx, pipe_reader, b->pfd), 0);
    b->w.lfd = b->lfd;
    atomic_store(&b->w.started, 0);
    atomic_store(&b->w.result, 1);
    int64_t id = ringo_go_on(tls_proc->idx, waiting_acceptor, &b->w);
    ck_assert_int_gt(id, 0);
    while (!atomic_load(&b->w.started))
        ringo_sleep(1 * MS);
    ringo_sleep(5 * MS); /* both parked, the request armed */
    ck_assert_int_eq(atomic_load(&b->w.result), 1);
    return id;
}

/* The waiter's result, once it has run (yields only: the proc stays busy). */
static int busy_waiter_result(struct busy *b)
{
    for (int i = 0; i < 1000 && atomic_load(&b->w.result) == 1; i++)
        ringo_yield();
    return atomic_load(&b->w.result);
}

/* Whether a connection made now stays in the listen backlog while the
 * proc polls (a request still armed accepts it there). */
static bool busy_connection_stays(struct busy *b, int *c)
{
    *c = connect_plain(&b->sa);
    for (int i = 0; i < 2 * POLL_EVERY; i++)
        ringo_yield();
    struct pollfd pl = { .fd = b->lfd, .events = POLLIN };
    return poll(&pl, 1, 0) == 1;
}

static void busy_end(struct busy *b)
{
    ringo_close(b->lfd);
    ck_assert_int_eq(write(b->pfd[1], "x", 1), 1);
    while (!b->pfd[2])
        ringo_sleep(1 * MS);
    close(b->pfd[0]);
    close(b->pfd[1]);
}

static void main_passed_over(void *arg)
{
    (void)arg;
    if (!multishot())
        return; /* no acceptor: the accept is a request of its own */
    struct busy b;
    int64_t id = busy_start(&b);
    /* Alone on the run queue, each yield is one scheduling point. */
    while ((load_relaxed(&tls_proc->tick) + 1) % POLL_EVERY != 0)
        ringo_yield();
    int c1 = connect_plain(&b.sa);         /* its accept waits for the next reap */
    ck_assert_int_eq(ringo_cancel(id), 0); /* readies the waiter */
    ringo_yield();                         /* the poll reaps c1's accept, then the waiter runs */
    ck_assert_int_eq(busy_waiter_result(&b), -ECANCELED);
    int c2;
    ck_assert_msg(busy_connection_stays(&b, &c2), "the second connection was accepted for nobody");
    int s2 = accept4(b.lfd, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(s2, 0);
    close(s2);
    int s1 = ringo_accept(b.lfd, NULL, NULL, SOCK_CLOEXEC); /* c1, from the queue */
    ck_assert_int_ge(s1, 0);
    ringo_close(s1);
    close(c1);
    close(c2);
    busy_end(&b);
}

START_TEST(passed_over_waiter_cancels)
{
    RUN(main_passed_over, NULL, nprocs_param);
}
END_TEST

/* The same for a lone waiter woken to wait again, by a change of the
 * listener's read deadline, that leaves instead: the new deadline has
 * passed (Go's SetDeadline(now), to stop an Accept), or (arg) a cancel
 * came before it ran.  Kept busy with I/O in flight, as above. */
static void main_again_leaves(void *arg)
{
    bool cancel = arg != NULL;
    if (!multishot())
        return;
    struct busy b;
    int64_t id = busy_start(&b);
    if (cancel) {
        ck_assert_int_eq(ringo_fd_deadline_set(b.lfd, RINGO_READ, ringo_now() + 60000 * MS), 0);
        ck_assert_int_eq(ringo_cancel(id), 0);
    } else {
        ck_assert_int_eq(ringo_fd_deadline_set(b.lfd, RINGO_READ, ringo_now() - 1), 0);
    }
    ck_assert_int_eq(busy_waiter_result(&b), cancel ? -ECANCELED : -ETIMEDOUT);
    int c;
    ck_assert_msg(busy_connection_stays(&b, &c), "the connection was accepted for nobody");
    close(c);
    busy_end(&b);
}

START_TEST(waiter_woken_again_leaves_and_cancels)
{
    RUN(main_again_leaves, NULL, nprocs_param);
    RUN(main_again_leaves, (void *)1, nprocs_param);
}
END_TEST

/* A goroutine accepts once and moves on: once its proc is idle, a
 * connection is left for the accept of another goroutine (another proc,
 * or other flags), not taken for nobody. */
static void main_idle_cancels(void *arg)
{
    (void)arg;
    struct sockaddr_in sa;
    int lfd = listen_plain(&sa);
    int c0 = connect_plain(&sa);
    int s0 = ringo_accept(lfd, NULL, NULL, 0);
    ck_assert_int_ge(s0, 0);
    ringo_sleep(10 * MS); /* this proc goes idle with the request armed */
    struct waiter w = { .lfd = lfd };
    atomic_store(&w.result, 1);
    ck_assert_int_gt(ringo_go_on(ringo_nprocs() - 1, waiting_acceptor, &w), 0);
    while (!atomic_load(&w.started))
        ringo_sleep(1 * MS);
    ringo_sleep(5 * MS);
    int c1 = connect_plain(&sa);
    ringo_close(wait_accepted(&w));
    close(c1);
    close(c0);
    ringo_close(s0);
    ringo_close(lfd);
}

START_TEST(idle_proc_stops_accepting)
{
    RUN(main_idle_cancels, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* ringo_close of a listener */

static void rebind_ok(const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    int r = bind(fd, (const struct sockaddr *)sa, sizeof *sa);
    ck_assert_msg(r == 0, "bind to the closed listener's port: %s", strerror(errno));
    ck_assert_int_eq(listen(fd, 1), 0);
    close(fd);
}

static void main_close_frees_port(void *arg)
{
    (void)arg;
    struct sockaddr_in sa;
    int lfd = listen_plain(&sa);
    /* an armed request with no waiter: one connection accepted, then gone
     * (the client closes first, so no TIME_WAIT holds the port) */
    int c = connect_plain(&sa);
    int s = ringo_accept(lfd, NULL, NULL, 0);
    ck_assert_int_ge(s, 0);
    close(c);
    char ch;
    ck_assert_int_eq(ringo_read(s, &ch, 1), 0);
    ringo_close(s);
    ringo_close(lfd);
    rebind_ok(&sa);

    if (!multishot())
        return; /* a single-shot accept in flight keeps its listener */
    /* waiters parked on every proc: they get -EBADF, and the port is free */
    lfd = listen_plain(&sa);
    struct waiter w[2];
    unsigned n = (unsigned)ringo_nprocs();
    for (unsigned i = 0; i < n; i++) {
        w[i].lfd = lfd;
        atomic_store(&w[i].started, 0);
        atomic_store(&w[i].result, 1);
        ck_assert_int_gt(ringo_go_on((int)i, waiting_acceptor, &w[i]), 0);
        while (!atomic_load(&w[i].started))
            ringo_sleep(1 * MS);
    }
    ringo_sleep(5 * MS);
    ck_assert_int_eq(ringo_close(lfd), 0);
    for (unsigned i = 0; i < n; i++)
        ck_assert_int_eq(wait_result(&w[i]), -EBADF);
    rebind_ok(&sa);
}

START_TEST(close_frees_port)
{
    RUN(main_close_frees_port, NULL, nprocs_param);
}
END_TEST

/* The same, with the close on a plain thread. */
static atomic_int plain_closed;

static void *plain_close(void *arg)
{
    int fd = (int)(intptr_t)arg;
    int r = ringo_close(fd);
    atomic_store(&plain_closed, 1);
    return (void *)(intptr_t)r;
}

static void main_close_plain(void *arg)
{
    (void)arg;
    struct sockaddr_in sa;
    struct waiter w = { .lfd = listen_plain(&sa) };
    atomic_store(&w.result, 1);
    ck_assert_int_gt(ringo_go_on(ringo_nprocs() - 1, waiting_acceptor, &w), 0);
    while (!atomic_load(&w.started))
        ringo_sleep(1 * MS);
    ringo_sleep(5 * MS);
    pthread_t t;
    atomic_store(&plain_closed, 0);
    ck_assert_int_eq(test_thread_create(&t, plain_close, (void *)(intptr_t)w.lfd), 0);
    /* the close needs every proc's help: keep this one scheduling */
    for (int i = 0; i < 5000 && !atomic_load(&plain_closed); i++)
        ringo_sleep(1 * MS);
    ck_assert(atomic_load(&plain_closed));
    void *r;
    pthread_join(t, &r);
    ck_assert_int_eq((int)(intptr_t)r, 0);
    if (multishot() || on_epoll()) {
        /* (on epoll the close ended the wait for readiness) */
        ck_assert_int_eq(wait_result(&w), -EBADF);
    } else {
        /* the single-shot accept keeps the socket until it ends */
        int c = connect_plain(&sa);
        ringo_close(wait_accepted(&w));
        close(c);
        return;
    }
    rebind_ok(&sa);
}

START_TEST(close_from_plain_thread)
{
    RUN(main_close_plain, NULL, nprocs_param);
}
END_TEST

/* An accept loop that tries again at once after -EBADF (as a server's
 * second accept goroutine would): its second accept starts while the
 * close is still waiting for the cancelled request, on the closer's own
 * proc.  It must not arm a request that keeps the port listening after
 * ringo_close returns; it waits for the close and fails. */
struct retrier { int lfd; atomic_int started, first, second, closed; };

static void retrying_acceptor(void *arg)
{
    struct retrier *w = arg;
    atomic_store(&w->started, 1);
    atomic_store(&w->first, ringo_accept(w->lfd, NULL, NULL, SOCK_CLOEXEC));
    ringo_deadline_set(ringo_now() + 2000 * MS); /* bounds the run if it arms */
    atomic_store(&w->second, ringo_accept(w->lfd, NULL, NULL, SOCK_CLOEXEC));
}

static void closing_goroutine(void *arg)
{
    struct retrier *w = arg;
    ck_assert_int_eq(ringo_close(w->lfd), 0);
    atomic_store(&w->closed, 1);
}

static void *closing_thread(void *arg)
{
    struct retrier *w = arg;
    ck_assert_int_eq(ringo_close(w->lfd), 0);
    atomic_store(&w->closed, 1);
    return NULL;
}

static void main_accept_again(void *arg)
{
    bool plain = arg != NULL;
    /* From a plain thread, ringo_close ends multishot requests, and
     * otherwise is close(2) (ringo_openat(3)). */
    if (plain && !multishot())
        return;
    struct sockaddr_in sa;
    struct retrier w = { .lfd = listen_plain(&sa) };
    atomic_store(&w.first, 1);
    atomic_store(&w.second, 1);
    int last = ringo_nprocs() - 1;
    ck_assert_int_gt(ringo_go_on(last, retrying_acceptor, &w), 0);
    while (!atomic_load(&w.started))
        ringo_sleep(1 * MS);
    ringo_sleep(5 * MS);
    pthread_t t;
    if (plain)
        ck_assert_int_eq(test_thread_create(&t, closing_thread, &w), 0);
    else
        ck_assert_int_gt(ringo_go_on(last, closing_goroutine, &w), 0);
    for (int i = 0; i < 5000 && !atomic_load(&w.closed); i++)
        ringo_sleep(1 * MS);
    ck_assert(atomic_load(&w.closed));
    if (plain)
        pthread_join(t, NULL);
    /* No descriptor is made before the second accept ends: the closed
     * number stays free, so that accept must see -EBADF. */
    for (int i = 0; i < 5000 && atomic_load(&w.second) == 1; i++)
        ringo_sleep(1 * MS);
    ck_assert_int_eq(atomic_load(&w.first), -EBADF);
    ck_assert_int_eq(atomic_load(&w.second), -EBADF);
    rebind_ok(&sa);
}

START_TEST(accept_again_while_closing)
{
    RUN(main_accept_again, NULL, nprocs_param);
}
END_TEST

START_TEST(accept_again_while_plain_thread_closes)
{
    RUN(main_accept_again, (void *)1, nprocs_param);
}
END_TEST

/* A plain thread closes a listener with acceptors as the run ends (the
 * procs have left their loops: teardown_seam), so the tasks its close
 * posted are discarded after it has stopped waiting for them.  Their
 * count-down must not land in the thread's stack, which it has gone on to
 * use: it paints it, and looks at it again once the run is over. */
#define PAINT_WORDS 4096
#define PAINT 0x5a5a5a5au
static int late_lfd;
static sem_t late_painted, late_run_done;
static atomic_int late_close_result, late_changed;

static __attribute__((noinline)) void paint_and_look(void)
{
    volatile uint32_t a[PAINT_WORDS];
    for (int i = 0; i < PAINT_WORDS; i++)
        a[i] = PAINT;
    sem_post(&late_painted);
    sem_wait(&late_run_done);
    int changed = 0;
    for (int i = 0; i < PAINT_WORDS; i++)
        changed += a[i] != PAINT;
    atomic_store(&late_changed, changed);
}

static __attribute__((noinline)) void late_close(void)
{
    atomic_store(&late_close_result, ringo_close(late_lfd));
}

static void *late_closer(void *arg)
{
    (void)arg;
    late_close();
    paint_and_look(); /* the frames late_close used, and more */
    return NULL;
}

static pthread_t late_thread;

static void close_at_teardown(void)
{
    ck_assert_int_eq(pthread_create(&late_thread, NULL, late_closer, NULL), 0);
    sem_wait(&late_painted); /* its close has returned */
}

static void main_late_close(void *arg)
{
    (void)arg;
    /* an acceptor on every proc, its waiter gone by its deadline */
    for (int i = 0; i < ringo_nprocs(); i++) {
        struct waiter w = { .lfd = late_lfd };
        atomic_store(&w.result, 1);
        ck_assert_int_gt(ringo_go_on(i, timed_acceptor, &w), 0);
        ck_assert_int_eq(wait_result(&w), -ETIMEDOUT);
    }
}

START_TEST(plain_close_as_the_run_ends)
{
    struct sockaddr_in sa;
    late_lfd = listen_plain(&sa);
    sem_init(&late_painted, 0, 0);
    sem_init(&late_run_done, 0, 0);
    atomic_store(&late_close_result, 1);
    atomic_store(&late_changed, -1);
    teardown_seam = close_at_teardown;
    RUN(main_late_close, NULL, nprocs_param);
    teardown_seam = NULL;
    sem_post(&late_run_done);
    pthread_join(late_thread, NULL);
    ck_assert_int_eq(atomic_load(&late_close_result), 0);
    ck_assert_int_eq(atomic_load(&late_changed), 0);
    rebind_ok(&sa);
}
END_TEST

#define QUEUED 5

static void main_close_queued(void *arg)
{
    (void)arg;
    struct sockaddr_in sa;
    int lfd = listen_plain(&sa);
    /* all in the backlog when the request is armed: it accepts them in
     * one go, one for the caller and QUEUED for nobody */
    int c0 = connect_plain(&sa);
    int cl[QUEUED];
    for (int i = 0; i < QUEUED; i++)
        cl[i] = connect_plain(&sa);
    int s0 = ringo_accept(lfd, NULL, NULL, 0);
    ck_assert_int_ge(s0, 0);
    int before = count_fds();
    ringo_close(lfd);
    int after = count_fds();
    ck_assert_int_eq(before - after, multishot() ? 1 + QUEUED : 1);
    for (int i = 0; i < QUEUED; i++) {
        char ch;
        ssize_t r = read(cl[i], &ch, 1); /* closed by the server: EOF or reset */
        ck_assert(r == 0 || (r < 0 && errno == ECONNRESET));
        close(cl[i]);
    }
    close(c0);
    ringo_close(s0);
}

START_TEST(close_closes_queued)
{
    RUN(main_close_queued, NULL, nprocs_param);
}
END_TEST

/* The run ends with descriptors queued: nothing leaks. */
static int leak_lfd, leak_lfd2, leak_cl[QUEUED + 1];

static void main_leak(void *arg)
{
    (void)arg;
    struct sockaddr_in sa;
    leak_lfd = listen_plain(&sa);
    for (int i = 0; i <= QUEUED; i++)
        leak_cl[i] = connect_plain(&sa);
    int s = ringo_accept(leak_lfd, NULL, NULL, 0); /* and QUEUED accepted for nobody */
    ck_assert_int_ge(s, 0);
    ringo_close(s);
    /* and a listener whose only waiter timed out */
    leak_lfd2 = listen_plain(&sa);
    ringo_deadline_set(ringo_now() + 5 * MS);
    ck_assert_int_eq(ringo_accept(leak_lfd2, NULL, NULL, SOCK_NONBLOCK), -ETIMEDOUT);
    ringo_deadline_set(RINGO_NEVER);
}

START_TEST(no_fd_leak_across_run)
{
    int before = count_fds();
    RUN(main_leak, NULL, nprocs_param);
    for (int i = 0; i <= QUEUED; i++)
        close(leak_cl[i]);
    close(leak_lfd);
    close(leak_lfd2);
    ck_assert_int_eq(count_fds(), before);
}
END_TEST

/* ------------------------------------------------------------------ */
/* not a deadlock; ringo_dump */

static int dl_lfd;

static void main_alone_in_accept(void *arg)
{
    (void)arg;
    int s = ringo_accept(dl_lfd, NULL, NULL, 0); /* no deadline, nobody else */
    ck_assert_int_ge(s, 0);
    ringo_close(s);
    ringo_close(dl_lfd);
}

START_TEST(accept_is_not_deadlock)
{
    struct sockaddr_in sa;
    dl_lfd = listen_plain(&sa);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        usleep(100000);
        int c = socket(AF_INET, SOCK_STREAM, 0);
        _exit(connect(c, (struct sockaddr *)&sa, sizeof sa) == 0 ? 0 : 1);
    }
    RUN(main_alone_in_accept, NULL, nprocs_param);
    int st;
    waitpid(pid, &st, 0);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
END_TEST

static void main_dump(void *arg)
{
    (void)arg;
    struct sockaddr_in sa;
    struct waiter w = { .lfd = listen_plain(&sa) };
    atomic_store(&w.result, 1);
    int64_t id = ringo_go(waiting_acceptor, &w);
    char want[64];
    snprintf(want, sizeof want, "goroutine %lld [io, fd %d, ", (long long)id, w.lfd);
    /* Dumped until the acceptor shows parked in its accept (another
     * proc's thread may be kept off its CPU a while after the goroutine
     * began), for 5 s at most. */
    char buf[4096];
    for (int tries = 0; tries < 5000; tries++) {
        ringo_sleep(1 * MS);
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        ringo_dump(p[1]);
        close(p[1]);
        ssize_t n = read(p[0], buf, sizeof buf - 1);
        ck_assert_int_gt(n, 0);
        buf[n] = '\0';
        close(p[0]);
        if (strstr(buf, want))
            break;
    }
    ck_assert_msg(strstr(buf, want) != NULL, "dump lacks \"%s\":\n%s", want, buf);
    ringo_cancel(id);
    ck_assert_int_eq(wait_result(&w), -ECANCELED);
    ringo_close(w.lfd);
}

START_TEST(dump_names_fd)
{
    RUN(main_dump, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* An accept with an address beside an armed multishot request: the
 * request takes the connection, so the call must find it there (and give
 * its peer's address) rather than wait for a connection that never comes
 * to its own accept.  The deadline only keeps a failing run short. */

static void main_addr_beside_multishot(void *arg)
{
    (void)arg;
    struct sockaddr_in sa;
    int lfd = listen_plain(&sa);
    /* Both wait in the backlog; the request armed by the first accept
     * takes both, and queues the second. */
    int c1 = connect_plain(&sa);
    int c2 = connect_plain(&sa);
    int s1 = ringo_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(s1, 0);
    struct sockaddr_in local, peer;
    socklen_t llen = sizeof local, plen = sizeof peer;
    ck_assert_int_eq(getsockname(c2, (struct sockaddr *)&local, &llen), 0);
    ringo_deadline_set(ringo_now() + 5000 * MS);
    int s2 = ringo_accept(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_ge(s2, 0);
    ck_assert_uint_eq(plen, sizeof peer);
    ck_assert_uint_eq(peer.sin_port, local.sin_port);
    ck_assert_uint_eq(peer.sin_addr.s_addr, local.sin_addr.s_addr);
    /* the accepted socket is c2's other end */
    ck_assert_int_eq(write(c2, "p", 1), 1);
    char c;
    ck_assert_int_eq(ringo_read(s2, &c, 1), 1);
    close(c1);
    close(c2);
    ringo_close(s1);
    ringo_close(s2);
    ck_assert_int_eq(ringo_close(lfd), 0);
}

START_TEST(address_accept_beside_multishot)
{
    RUN(main_addr_beside_multishot, NULL, nprocs_param);
}
END_TEST

/* A change of the listener's deadline (Go's SetDeadline moved later) while
 * another operation on it (here an accept with an address and other
 * flags, which makes its own) is open on the same proc cancels that proc's
 * operations on the fd, the multishot request among them; its waiters are
 * not cancelled and no deadline of theirs passed, so they go on waiting
 * for the next connection.  Everything on main's proc: when main's
 * sleep ends, both waiters have run to their park. */
static void address_acceptor(void *arg)
{
    struct waiter *w = arg;
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    atomic_store(&w->started, 1);
    int r = ringo_accept(w->lfd, (struct sockaddr *)&peer, &len, 0);
    atomic_store(&w->result, r == 0 ? 1000000 : r);
}

static void main_deadline_moved(void *arg)
{
    (void)arg;
    struct sockaddr_in sa;
    int lfd = listen_plain(&sa);
    struct waiter w[2] = { { .lfd = lfd }, { .lfd = lfd } };
    for (int i = 0; i < 2; i++) {
        atomic_store(&w[i].started, 0);
        atomic_store(&w[i].result, 1);
    }
    int me = ringo_proc();
    ck_assert_int_gt(ringo_go_on(me, waiting_acceptor, &w[0]), 0); /* multishot */
    ck_assert_int_gt(ringo_go_on(me, address_acceptor, &w[1]), 0);  /* its own accept */
    ringo_sleep(2 * MS);
    ck_assert_int_eq(atomic_load(&w[0].started) + atomic_load(&w[1].started), 2);
    ck_assert_int_eq(ringo_fd_deadline_set(lfd, RINGO_READ, ringo_now() + 60000 * MS), 0);
    ringo_sleep(2 * MS); /* the cancel's completions come back */
    int res0 = atomic_load(&w[0].result), res1 = atomic_load(&w[1].result);
    ck_assert_int_eq(res0, 1); /* both still waiting */
    ck_assert_int_eq(res1, 1);
    /* A connection goes to one of them (the kernel picks); the close of
     * the listener ends the other. */
    int c = connect_plain(&sa);
    for (int t = 0; t < 5000 && atomic_load(&w[0].result) == 1 && atomic_load(&w[1].result) == 1; t++)
        ringo_sleep(1 * MS);
    int got = atomic_load(&w[0].result) != 1 ? 0 : 1;
    int s = atomic_load(&w[got].result);
    ck_assert_msg(s != 1, "no waiter got the connection");
    ck_assert_int_ge(s, 0);
    ck_assert_int_eq(ringo_close(lfd), 0);
    ck_assert_int_eq(wait_result(&w[1 - got]), -EBADF);
    ringo_close(s == 1000000 ? 0 : s);
    close(c);
}

START_TEST(listener_deadline_moved_under_waiters)
{
    RUN(main_deadline_moved, NULL, nprocs_param);
}
END_TEST

/* Accepts on a descriptor that cannot accept (a pipe: -ENOTSOCK), each
 * with its own flags, leave no acceptor behind on the proc: its request
 * failed with nobody waiting.  Nor do flags that are not accept4's.  A multishot acceptor is the proc's record
 * of a (fd, flags) pair (accept.c); every call walks the list. */
static void main_failed_pairs(void *arg)
{
    (void)arg;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    unsigned before = acc_count(tls_proc);
    static const int flags[] = { 0, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_CLOEXEC | SOCK_NONBLOCK };
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
            ck_assert_int_eq(ringo_accept(fds[0], NULL, NULL, flags[i]), -ENOTSOCK);
    ck_assert_uint_eq(acc_count(tls_proc), before);
    /* flags accept4(2) does not know: -EINVAL before the descriptor is
     * looked at, on either engine, and no acceptor */
    ck_assert_int_eq(ringo_accept(-1, NULL, NULL, 0x40000000), -EINVAL);
    ck_assert_int_eq(ringo_accept(fds[0], NULL, NULL, SOCK_CLOEXEC | 0x40000000), -EINVAL);
    ck_assert_uint_eq(acc_count(tls_proc), before);
    ringo_close(fds[0]);
    ringo_close(fds[1]);
}

START_TEST(failed_accepts_leave_no_acceptor)
{
    RUN(main_failed_pairs, NULL, nprocs_param);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create(multishot() ? "accept (multishot)" : "accept (single-shot)");
    TCase *tc = tcase_create("accept");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, many_clients_each_accepted_once);
    tcase_add_test(tc, few_submissions_for_many_accepts);
    tcase_add_test(tc, deadline_on_accept);
    tcase_add_test(tc, cancel_one_of_several);
    tcase_add_test(tc, passed_over_waiter_cancels);
    tcase_add_test(tc, waiter_woken_again_leaves_and_cancels);
    tcase_add_test(tc, idle_proc_stops_accepting);
    tcase_add_test(tc, close_frees_port);
    tcase_add_test(tc, close_from_plain_thread);
    tcase_add_test(tc, accept_again_while_closing);
    tcase_add_test(tc, accept_again_while_plain_thread_closes);
    tcase_add_test(tc, plain_close_as_the_run_ends);
    tcase_add_test(tc, close_closes_queued);
    tcase_add_test(tc, no_fd_leak_across_run);
    tcase_add_test(tc, accept_is_not_deadlock);
    tcase_add_test(tc, dump_names_fd);
    tcase_add_test(tc, address_accept_beside_multishot);
    tcase_add_test(tc, listener_deadline_moved_under_waiters);
    tcase_add_test(tc, failed_accepts_leave_no_acceptor);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    skip_without_io_uring();
    return run_per_procs(suite, &nprocs_param);
}
