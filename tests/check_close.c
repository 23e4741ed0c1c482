/*
 * check_close.c — ringo_close of a descriptor that other goroutines are
 * blocked on: their operations end with -EBADF (on the closer's proc and
 * on others), a deadline that has not passed does not turn that into
 * -ETIMEDOUT, a listener's port is free again afterwards, a new
 * descriptor that reuses the number is not touched by the cancels, and an
 * operation that starts on another proc while the close is under way is
 * ended too.  Loopback, pipes and socketpairs only.
 */
#include "testutil.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "internal.h" /* close_seam, the procs and goroutines it waits on */

static unsigned nprocs_param = 1;

/* A goroutine blocked in a read, on a given proc. */
struct reader {
    int fd;
    int64_t deadline;
    atomic_int started;
    atomic_long result;
};

static void reading(void *arg)
{
    struct reader *r = arg;
    char buf[16];
    if (r->deadline)
        ringo_deadline_set(ringo_now() + r->deadline);
    atomic_store(&r->started, 1);
    atomic_store(&r->result, (long)ringo_read(r->fd, buf, sizeof buf));
}

static void wait_started(atomic_int *flag)
{
    while (!atomic_load(flag))
        ringo_sleep(1 * MS);
    ringo_sleep(5 * MS); /* let it reach the kernel */
}

static void wait_result(atomic_long *res)
{
    for (int i = 0; i < 5000 && atomic_load(res) == 1; i++)
        ringo_sleep(1 * MS);
}

static void main_read_closed(void *arg)
{
    int64_t deadline = (int64_t)(intptr_t)arg;
    for (unsigned proc = 0; proc < (unsigned)ringo_nprocs(); proc++) {
        int sv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        struct reader r = { .fd = sv[0], .deadline = deadline, .result = 1 };
        ck_assert_int_gt(ringo_go_on((int)proc, reading, &r), 0);
        wait_started(&r.started);
        ck_assert_int_eq(atomic_load(&r.result), 1); /* still blocked */
        ck_assert_int_eq(ringo_close(sv[0]), 0);
        wait_result(&r.result);
        ck_assert_int_eq(atomic_load(&r.result), -EBADF); /* the close ended it, not a deadline */
        ringo_close(sv[1]);
    }
}

START_TEST(close_ends_blocked_read)
{
    RUN(main_read_closed, (void *)(intptr_t)0, nprocs_param);
}
END_TEST

/* With a deadline far ahead, the result is still -EBADF. */
START_TEST(close_before_deadline_is_ebadf)
{
    RUN(main_read_closed, (void *)(intptr_t)(10000 * MS), nprocs_param);
}
END_TEST

/* A blocked accept (the single-shot path: it asks for the address) ends
 * with -EBADF, and the port is free for a new listener at once. */
struct acceptor {
    int fd;
    atomic_int started;
    atomic_long result;
};

static void accepting(void *arg)
{
    struct acceptor *a = arg;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    atomic_store(&a->started, 1);
    atomic_store(&a->result, (long)ringo_accept(a->fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC));
}

static void main_accept_closed(void *arg)
{
    (void)arg;
    for (unsigned proc = 0; proc < (unsigned)ringo_nprocs(); proc++) {
        int l = ringo_tcp_listen("127.0.0.1", "0", 16, 0);
        ck_assert_int_ge(l, 0);
        struct sockaddr_in sin;
        socklen_t sl = sizeof sin;
        ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &sl), 0);
        char port[16];
        snprintf(port, sizeof port, "%d", ntohs(sin.sin_port));

        struct acceptor a = { .fd = l, .result = 1 };
        ck_assert_int_gt(ringo_go_on((int)proc, accepting, &a), 0);
        wait_started(&a.started);
        ck_assert_int_eq(ringo_close(l), 0);
        wait_result(&a.result);
        ck_assert_int_eq(atomic_load(&a.result), -EBADF);
        /* Nothing holds the old socket: a new listener gets the port. */
        int l2 = ringo_tcp_listen("127.0.0.1", port, 16, 0);
        ck_assert_int_ge(l2, 0);
        ringo_close(l2);
    }
}

START_TEST(close_ends_blocked_accept)
{
    RUN(main_accept_closed, NULL, nprocs_param);
}
END_TEST

/* The number of a closed descriptor comes back at once from the next
 * socketpair; an operation on the new descriptor, on the proc that had to
 * cancel, must run normally. */
static void main_reuse(void *arg)
{
    (void)arg;
    int other = ringo_nprocs() - 1;
    for (int round = 0; round < 20; round++) {
        int sv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        struct reader r = { .fd = sv[0], .result = 1 };
        ck_assert_int_gt(ringo_go_on(other, reading, &r), 0);
        wait_started(&r.started);
        int old = sv[0];
        ck_assert_int_eq(ringo_close(sv[0]), 0);

        int nv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, nv), 0);
        ck_assert_int_eq(nv[0], old); /* the lowest free number */
        struct reader r2 = { .fd = nv[0], .result = 1 };
        ck_assert_int_gt(ringo_go_on(other, reading, &r2), 0);
        wait_started(&r2.started);
        ck_assert_int_eq(ringo_write(nv[1], "new", 3), 3);
        wait_result(&r2.result);
        ck_assert_int_eq(atomic_load(&r2.result), 3);

        wait_result(&r.result);
        ck_assert_int_eq(atomic_load(&r.result), -EBADF);
        ringo_close(nv[0]);
        ringo_close(nv[1]);
        ringo_close(sv[1]);
    }
}

START_TEST(closed_number_reused_safely)
{
    RUN(main_reuse, NULL, nprocs_param);
}
END_TEST

/* Many readers on many procs, every descriptor closed by one goroutine:
 * all readers end and the run returns. */
#define MANY 64

static void main_many(void *arg)
{
    (void)arg;
    static struct reader rs[2 * MANY];
    int peer[MANY];
    int n = ringo_nprocs();
    for (int i = 0; i < MANY; i++) {
        int sv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        peer[i] = sv[1];
        /* two readers per descriptor, on different procs when there are */
        for (int k = 0; k < 2; k++) {
            struct reader *r = &rs[2 * i + k];
            memset(r, 0, sizeof *r);
            r->fd = sv[0];
            atomic_store(&r->result, 1);
            ck_assert_int_gt(ringo_go_on((i + k) % n, reading, r), 0);
        }
    }
    for (int i = 0; i < 2 * MANY; i++)
        wait_started(&rs[i].started);
    for (int i = 0; i < MANY; i++)
        ck_assert_int_eq(ringo_close(rs[2 * i].fd), 0);
    for (int i = 0; i < 2 * MANY; i++) {
        wait_result(&rs[i].result);
        ck_assert_int_eq(atomic_load(&rs[i].result), -EBADF);
    }
    for (int i = 0; i < MANY; i++)
        ringo_close(peer[i]);
}

START_TEST(close_many_blocked)
{
    RUN(main_many, NULL, nprocs_param);
}
END_TEST

/* One descriptor with a reader on each of ten procs: the closer asks nine
 * other procs, more than one round of cancel requests (CLOSE_BATCH in
 * io.c). */
#define WIDE 10

static void main_wide(void *arg)
{
    (void)arg;
    static struct reader rs[WIDE];
    int sv[2];
    int n = ringo_nprocs();
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    for (int i = 0; i < n; i++) {
        memset(&rs[i], 0, sizeof rs[i]);
        rs[i].fd = sv[0];
        atomic_store(&rs[i].result, 1);
        ck_assert_int_gt(ringo_go_on(i, reading, &rs[i]), 0);
    }
    for (int i = 0; i < n; i++)
        wait_started(&rs[i].started);
    ck_assert_int_eq(ringo_close(sv[0]), 0);
    for (int i = 0; i < n; i++) {
        wait_result(&rs[i].result);
        ck_assert_int_eq(atomic_load(&rs[i].result), -EBADF);
    }
    ringo_close(sv[1]);
}

START_TEST(close_across_ten_procs)
{
    /* More procs than CPUs is allowed; only a run capped at one proc
     * (valgrind) stays at one. */
    struct ringo_config cfg = { .procs = test_max_procs() > 1 ? WIDE : 1 };
    ck_assert_int_eq(ringo_run(main_wide, NULL, &cfg), 0);
}
END_TEST

/* An operation that starts on proc 1 while proc 0 closes its descriptor,
 * in the worst order: after the closer has had the other procs cancel what
 * they count on the fd, and before its close(2).  close_seam holds the
 * closer there until the late goroutine has parked and proc 1 has
 * submitted everything it prepared.  The operation must still end with
 * -EBADF, and leave nothing holding the file, as Go's Close guarantees:
 * a read on a pipe, and a multishot accept on a listener (whose port must
 * then be free). */
static int late_fd = -1;
static void (*late_fn)(void *);
static void *late_arg;
static atomic_int *late_started;

static void late_seam(int fd)
{
    if (fd != late_fd)
        return;
    late_fd = -1; /* once */
    int64_t id = ringo_go_on(1, late_fn, late_arg);
    ck_assert_int_gt(id, 0);
    struct rproc *q = rt.procs[1];
    for (long n = 0;; n++) {
        struct rg *g = gtable_lookup(id);
        if (atomic_load(late_started) && g &&
            atomic_load_explicit(&g->state, memory_order_relaxed) == G_WAITING &&
            atomic_load_explicit(&q->unsubmitted, memory_order_relaxed) == 0)
            break;
        ck_assert_int_lt(n, 500000);
        ringo_sleep(10 * US);
    }
}

static void close_with_late(int fd, void (*fn)(void *), void *arg, atomic_int *started)
{
    late_fd = fd;
    late_fn = fn;
    late_arg = arg;
    late_started = started;
    close_seam = late_seam;
    ck_assert_int_eq(ringo_close(fd), 0);
    close_seam = NULL;
    ck_assert_int_eq(late_fd, -1); /* the seam ran */
}

static void main_late_read(void *arg)
{
    (void)arg;
    int pfd[2];
    ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
    struct reader r = { .fd = pfd[0], .result = 1 };
    close_with_late(pfd[0], reading, &r, &r.started);
    wait_result(&r.result);
    if (atomic_load(&r.result) == 1) {
        /* Still blocked, on the file the close let go of: unblock it,
         * to fail on its result rather than hang. */
        ck_assert_int_eq(write(pfd[1], "x", 1), 1);
        wait_result(&r.result);
    }
    ck_assert_int_eq(atomic_load(&r.result), -EBADF);
    ringo_close(pfd[1]);
}

static void accepting_multishot(void *arg)
{
    struct acceptor *a = arg;
    atomic_store(&a->started, 1);
    atomic_store(&a->result, (long)ringo_accept(a->fd, NULL, NULL, SOCK_CLOEXEC));
}

static void main_late_accept(void *arg)
{
    (void)arg;
    int l = ringo_tcp_listen("127.0.0.1", "0", 16, 0);
    ck_assert_int_ge(l, 0);
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &sl), 0);
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(sin.sin_port));
    struct acceptor a = { .fd = l, .result = 1 };
    close_with_late(l, accepting_multishot, &a, &a.started);
    /* Before anything can reuse the number: the accept started again
     * after the close finds it closed. */
    wait_result(&a.result);
    ck_assert_int_eq(atomic_load(&a.result), -EBADF);
    /* Nothing holds the old socket: a new listener gets the port. */
    int l2 = ringo_tcp_listen("127.0.0.1", port, 16, 0);
    ck_assert_int_ge(l2, 0);
    ringo_close(l2);
}

START_TEST(close_ends_operations_started_meanwhile)
{
    struct ringo_config cfg = { .procs = 2 };
    ck_assert_int_eq(ringo_run(main_late_read, NULL, &cfg), 0);
    ck_assert_int_eq(ringo_run(main_late_accept, NULL, &cfg), 0);
}
END_TEST

/* Closing a descriptor nobody waits on is one plain close, and the
 * descriptor is gone afterwards. */
static void main_plain(void *arg)
{
    (void)arg;
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(ringo_write(sv[1], "x", 1), 1);
    char c;
    ck_assert_int_eq(ringo_read(sv[0], &c, 1), 1);
    ck_assert_int_eq(ringo_close(sv[0]), 0);
    ck_assert_int_eq(ringo_close(sv[0]), -EBADF);
    ck_assert_int_eq(ringo_close(sv[1]), 0);
    ck_assert_int_eq(ringo_close(-1), -EBADF);
}

START_TEST(close_plain)
{
    RUN(main_plain, NULL, nprocs_param);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("close");
    TCase *tc = tcase_create("close");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, close_ends_blocked_read);
    tcase_add_test(tc, close_before_deadline_is_ebadf);
    tcase_add_test(tc, close_ends_blocked_accept);
    tcase_add_test(tc, closed_number_reused_safely);
    tcase_add_test(tc, close_many_blocked);
    tcase_add_test(tc, close_across_ten_procs);
    tcase_add_test(tc, close_plain);
    if (test_max_procs() > 1) /* two procs (not under valgrind) */
        tcase_add_test(tc, close_ends_operations_started_meanwhile);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    skip_without_io_uring();
    signal(SIGPIPE, SIG_IGN);
    return run_per_procs(suite, &nprocs_param);
}
