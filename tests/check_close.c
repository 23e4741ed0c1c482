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

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>

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

/* Until the goroutine id has parked in its read, then a while for the
 * read to reach the kernel: a close may not come before the read begins
 * where the number is then reused (a read begun after it would find the
 * new descriptor).  Not a while alone: the reader's thread may be kept
 * off its CPU between its start and its read. */
static void wait_parked(int64_t id, atomic_int *started)
{
    for (long n = 0;; n++) {
        struct rg *g = gtable_lookup(id);
        if (atomic_load(started) && g &&
            atomic_load_explicit(&g->state, memory_order_relaxed) == G_WAITING)
            break;
        ck_assert_int_lt(n, 500000);
        ringo_sleep(10 * US);
    }
    ringo_sleep(5 * MS);
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
        int64_t id = ringo_go_on(other, reading, &r);
        ck_assert_int_gt(id, 0);
        wait_parked(id, &r.started);
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

/* On epoll, calls that readiness cannot wait for (regular files, openat,
 * fsync) run on helper threads, and name their descriptor by number.  A
 * call still queued for a helper when its descriptor is closed must not
 * run on the file that gets the number next: here an openat relative to
 * directory A waits behind helpers kept busy, A's descriptor is closed
 * (by a goroutine, or by a plain thread), and B is opened in its number.
 * On epoll the queued call ends with -EBADF, as an operation that starts
 * after the close; on io_uring the request holds its directory and may
 * have run.  Never does it create its file in B. */
#define BUSY_HELPERS 16 /* offload.c OFFLOAD_MAX_THREADS */
static int busy_pipe[2];
static int queued_dirfd;
static atomic_int queued_open_res;

static void block_on_pipe(void *arg)
{
    (void)arg;
    char c;
    ck_assert_int_eq(read(busy_pipe[0], &c, 1), 1);
}

static void busy_helper(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_offload(block_on_pipe, NULL), 0);
}

static void queued_openat(void *arg)
{
    (void)arg;
    atomic_store(&queued_open_res,
                 ringo_openat(queued_dirfd, "made", O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
}

/* An openat of an absolute path names no directory: queued with the
 * other, it is not ended by the close of the descriptor it was passed. */
static char queued_abs_path[64];
static atomic_int queued_abs_res;

static void queued_abs_openat(void *arg)
{
    (void)arg;
    atomic_store(&queued_abs_res, ringo_openat(queued_dirfd, queued_abs_path,
                                               O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
}

static struct ringo_stats stats_now(void)
{
    struct ringo_stats st;
    ck_assert_int_eq(ringo_stats(&st), 0);
    return st;
}

static atomic_int plain_closed;

static void *plain_close(void *arg)
{
    ck_assert_int_eq(ringo_close(*(int *)arg), 0);
    atomic_store(&plain_closed, 1);
    return NULL;
}

static void main_queued_call(void *arg)
{
    bool by_plain_thread = arg != NULL;
    char a[] = "/tmp/ringo-close-A-XXXXXX", b[] = "/tmp/ringo-close-B-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(a));
    ck_assert_ptr_nonnull(mkdtemp(b));
    ck_assert_int_eq(pipe2(busy_pipe, O_CLOEXEC), 0);
    for (int i = 0; i < BUSY_HELPERS; i++)
        ck_assert_int_gt(ringo_go(busy_helper, NULL), 0);
    /* Each busy job has a helper of its own, started for it (the pool
     * starts one per job that finds none idle): every helper is taken. */
    while (stats_now().offload_jobs < BUSY_HELPERS)
        ringo_yield();
    queued_dirfd = open(a, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(queued_dirfd, 0);
    atomic_store(&queued_open_res, 1);
    atomic_store(&queued_abs_res, 1);
    snprintf(queued_abs_path, sizeof queued_abs_path, "%s/abs", a);
    ck_assert_int_gt(ringo_go(queued_abs_openat, NULL), 0);
    ck_assert_int_gt(ringo_go(queued_openat, NULL), 0);
    /* The openats' goroutines wait (on epoll, queued behind the busy
     * jobs), or have their results. */
    while (atomic_load(&queued_open_res) == 1 &&
           stats_now().waiting < BUSY_HELPERS + 1 + (atomic_load(&queued_abs_res) == 1))
        ringo_yield();
    if (by_plain_thread) {
        pthread_t t;
        atomic_store(&plain_closed, 0);
        ck_assert_int_eq(pthread_create(&t, NULL, plain_close, &queued_dirfd), 0);
        /* The close may wait for the openat, whose result this proc
         * delivers: not blocked in the join meanwhile. */
        for (int i = 0; i < 30000 && !atomic_load(&plain_closed); i++)
            ringo_sleep(MS);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
    } else {
        ck_assert_int_eq(ringo_close(queued_dirfd), 0);
    }
    int dirb = open(b, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_eq(dirb, queued_dirfd); /* the number names B now */
    char ones[BUSY_HELPERS];
    memset(ones, 1, sizeof ones);
    ck_assert_int_eq(write(busy_pipe[1], ones, sizeof ones), (ssize_t)sizeof ones);
    for (int i = 0; i < 30000 && atomic_load(&queued_open_res) == 1; i++)
        ringo_sleep(MS);
    for (int i = 0; i < 30000 && atomic_load(&queued_abs_res) == 1; i++)
        ringo_sleep(MS);
    int afd = atomic_load(&queued_abs_res);
    ck_assert_int_ge(afd, 0);
    close(afd);
    ck_assert_int_eq(unlink(queued_abs_path), 0);
    int fd = atomic_load(&queued_open_res);
    ck_assert_int_ne(fd, 1);
    ck_assert_int_eq(faccessat(dirb, "made", F_OK, 0), -1); /* never in B */
    int dira = open(a, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(dira, 0);
    if (on_epoll())
        ck_assert_int_eq(fd, -EBADF);
    if (fd >= 0) {
        close(fd);
        ck_assert_int_eq(unlinkat(dira, "made", 0), 0); /* in A */
    }
    close(dira);
    close(dirb);
    while (ringo_count() > 1)
        ringo_sleep(MS);
    close(busy_pipe[0]);
    close(busy_pipe[1]);
    ck_assert_int_eq(rmdir(a), 0);
    ck_assert_int_eq(rmdir(b), 0);
}

START_TEST(queued_call_never_runs_on_the_next_file)
{
    RUN(main_queued_call, NULL, 1);
    RUN(main_queued_call, (void *)1, 1);
}
END_TEST

/* A call that a helper thread has begun when its descriptor is closed:
 * the close waits until it has returned (a call taken from the helpers'
 * queue may not have reached the kernel yet, where it would hold the
 * file).  offload_io_seam holds the helper as it begins an fsync; a
 * goroutine closes meanwhile; the helper, let go, finds the close not
 * yet returned and the descriptor still open.  (On io_uring there are no
 * helpers: the fsync holds its file, and the close need not wait.) */
static int held_fd = -1;
static int held_announce[2], held_release[2];
static atomic_int held_closed, held_seen_closed = -1, held_seen_open = -1;
static atomic_long held_fsync_res = 1;

static atomic_int held_once;

static void held_seam(int fd)
{
    if (fd != held_fd || atomic_exchange(&held_once, 1))
        return; /* the first fsync only (the second is made after the close) */
    ck_assert_int_eq(write(held_announce[1], "a", 1), 1);
    char c;
    ck_assert_int_eq(read(held_release[0], &c, 1), 1);
    atomic_store(&held_seen_closed, atomic_load(&held_closed));
    atomic_store(&held_seen_open, fcntl(fd, F_GETFD) >= 0);
}

static void held_fsync(void *arg)
{
    (void)arg;
    atomic_store(&held_fsync_res, ringo_fsync(held_fd));
}

static void held_closer(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_close(held_fd), 0);
    atomic_store(&held_closed, 1);
}

/* A second fsync, started while the close waits for the first: the
 * helpers' queue refuses it, and it is made again once the close is done
 * (then -EBADF), not before: the descriptor is closed when it returns. */
static atomic_long late_fsync_res = 1;
static atomic_int late_fsync_saw_open = -1;

static void late_fsync(void *arg)
{
    (void)arg;
    long r = ringo_fsync(held_fd);
    atomic_store(&late_fsync_saw_open, fcntl(held_fd, F_GETFD) >= 0);
    atomic_store(&late_fsync_res, r);
}

static void yield_until_waiting(int64_t id, atomic_long *res)
{
    for (;;) {
        struct rg *g = gtable_lookup(id);
        if (atomic_load(res) != 1 ||
            (g && atomic_load_explicit(&g->state, memory_order_relaxed) == G_WAITING))
            return;
        ringo_yield();
    }
}

static void main_running_call(void *arg)
{
    (void)arg;
    if (!on_epoll())
        return; /* helpers make calls on the epoll engine only */
    char path[] = "/tmp/ringo-close-held-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(pipe2(held_announce, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(held_release, O_CLOEXEC), 0);
    held_fd = fd;
    atomic_store(&held_once, 0);
    offload_io_seam = held_seam;
    ck_assert_int_gt(ringo_go(held_fsync, NULL), 0);
    char c;
    ck_assert_int_eq(ringo_read(held_announce[0], &c, 1), 1); /* the helper has begun */
    size_t before = stats_now().waiting; /* the fsync's goroutine */
    ck_assert_int_gt(ringo_go(held_closer, NULL), 0);
    while (!atomic_load(&held_closed) && stats_now().waiting < before + 1)
        ringo_yield();
    atomic_store(&late_fsync_res, 1);
    int64_t late = ringo_go(late_fsync, NULL);
    ck_assert_int_gt(late, 0);
    yield_until_waiting(late, &late_fsync_res);
    ck_assert_int_eq(write(held_release[1], "r", 1), 1);
    for (int i = 0; i < 30000 && !atomic_load(&held_closed); i++)
        ringo_sleep(MS);
    offload_io_seam = NULL;
    ck_assert_int_eq(atomic_load(&held_closed), 1);
    ck_assert_int_eq(atomic_load(&held_seen_closed), 0); /* the close waited */
    ck_assert_int_eq(atomic_load(&held_seen_open), 1);
    for (int i = 0; i < 30000 && atomic_load(&held_fsync_res) == 1; i++)
        ringo_sleep(MS);
    ck_assert_int_eq(atomic_load(&held_fsync_res), 0);
    ck_assert_int_eq(fcntl(fd, F_GETFD), -1); /* closed */
    for (int i = 0; i < 30000 && atomic_load(&late_fsync_res) == 1; i++)
        ringo_sleep(MS);
    ck_assert_int_eq(atomic_load(&late_fsync_res), -EBADF);
    ck_assert_int_eq(atomic_load(&late_fsync_saw_open), 0);
    for (int i = 0; i < 2; i++) {
        close(held_announce[i]);
        close(held_release[i]);
    }
}

START_TEST(close_waits_for_a_running_helper_call)
{
    RUN(main_running_call, NULL, 1);
}
END_TEST

/* A read of a file of which only the start is in the page cache, at the
 * file position, waits for its rest on a helper (epoll: the call that
 * does not wait read the start), behind helpers kept busy, when its
 * descriptor is closed.  The bytes it read are not lost: it returns as
 * many as it moved the file position by (a duplicate shares it), on
 * both engines.  (Where nothing is evicted the read is whole at once.) */
#define PART_SZ (8 << 20)
static int part_fd;
static char *part_buf;
static atomic_long part_res;

static void part_reader(void *arg)
{
    (void)arg;
    atomic_store(&part_res, (long)ringo_read(part_fd, part_buf, PART_SZ));
}

static void main_partial_read(void *arg)
{
    (void)arg;
    char path[] = "/tmp/ringo-close-part-XXXXXX";
    int w = mkstemp(path);
    ck_assert_int_ge(w, 0);
    part_buf = malloc(PART_SZ);
    ck_assert_ptr_nonnull(part_buf);
    memset(part_buf, 'x', PART_SZ);
    ck_assert_int_eq(write(w, part_buf, PART_SZ), PART_SZ);
    ck_assert_int_eq(fsync(w), 0);
    ck_assert_int_eq(close(w), 0);
    part_fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(part_fd, 0);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(posix_fadvise(part_fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    ck_assert_int_eq(posix_fadvise(part_fd, 0, 0, POSIX_FADV_RANDOM), 0);
    char page[4096];
    ck_assert_int_eq(pread(part_fd, page, sizeof page, 0), (ssize_t)sizeof page); /* the start cached */
    int dupfd = dup(part_fd); /* shares the file position */
    ck_assert_int_ge(dupfd, 0);
    ck_assert_int_eq(pipe2(busy_pipe, O_CLOEXEC), 0);
    for (int i = 0; i < BUSY_HELPERS; i++)
        ck_assert_int_gt(ringo_go(busy_helper, NULL), 0);
    while (stats_now().offload_jobs < BUSY_HELPERS)
        ringo_yield();
    atomic_store(&part_res, 1);
    int64_t id = ringo_go(part_reader, NULL);
    ck_assert_int_gt(id, 0);
    yield_until_waiting(id, &part_res);
    ck_assert_int_eq(ringo_close(part_fd), 0);
    char ones[BUSY_HELPERS];
    memset(ones, 1, sizeof ones);
    ck_assert_int_eq(write(busy_pipe[1], ones, sizeof ones), (ssize_t)sizeof ones);
    for (int i = 0; i < 30000 && atomic_load(&part_res) == 1; i++)
        ringo_sleep(MS);
    long r = atomic_load(&part_res);
    off_t moved = lseek(dupfd, 0, SEEK_CUR);
    ck_assert_int_gt(r, 0);
    ck_assert_int_eq(r, (long)moved);
    long same = 0;
    while (same < r && part_buf[same] == 'x')
        same++;
    ck_assert_int_eq(same, r); /* the bytes it returned are the file's */
    while (ringo_count() > 1)
        ringo_sleep(MS);
    close(dupfd);
    close(busy_pipe[0]);
    close(busy_pipe[1]);
    free(part_buf);
}

START_TEST(closed_partial_read_keeps_its_part)
{
    RUN(main_partial_read, NULL, 1);
}
END_TEST

/* An openat relative to a directory descriptor names the directory by
 * number; io_uring resolves it only when the request runs (an O_CREAT
 * open runs on the kernel's worker), and the epoll engine on a helper
 * thread.  So ringo_close of the directory waits until the openats
 * relative to it have returned.  Here one is held in the kernel: an
 * O_CREAT open of a FIFO that has no writer yet.  The close must not
 * return before the FIFO's writer comes, and the open then succeeds. */
static int fifo_dirfd;
static atomic_int fifo_open_res, fifo_closed;

static atomic_int fifo_open_begun;

static void fifo_seam(int fd)
{
    if (fd == fifo_dirfd)
        atomic_store(&fifo_open_begun, 1);
}

static void fifo_opener(void *arg)
{
    (void)arg;
    atomic_store(&fifo_open_res, ringo_openat(fifo_dirfd, "fifo", O_RDONLY | O_CREAT | O_CLOEXEC, 0600));
}

static void fifo_closer(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_close(fifo_dirfd), 0);
    atomic_store(&fifo_closed, 1);
}

static void main_openat_in_progress(void *arg)
{
    (void)arg;
    char dir[] = "/tmp/ringo-close-fifo-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[sizeof dir + 8];
    snprintf(path, sizeof path, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    fifo_dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(fifo_dirfd, 0);
    atomic_store(&fifo_open_res, 1);
    atomic_store(&fifo_closed, 0);
    atomic_store(&fifo_open_begun, 0);
    offload_io_seam = fifo_seam;
    ck_assert_int_gt(ringo_go(fifo_opener, NULL), 0);
    /* The opener has counted itself on the directory (close.c
     * "Directories"), and waits for a writer; on epoll, its helper has
     * begun the call (a call still queued for a helper
     * would end with -EBADF: queued_call_never_runs_on_the_next_file). */
    while (!fdclose_dir_busy(fifo_dirfd) || (on_epoll() && !atomic_load(&fifo_open_begun)))
        ringo_yield();
    offload_io_seam = NULL;
    ck_assert_int_eq(atomic_load(&fifo_open_res), 1);
    int64_t closer = ringo_go(fifo_closer, NULL);
    ck_assert_int_gt(closer, 0);
    /* The closer returns, or waits too. */
    for (;;) {
        struct rg *g = gtable_lookup(closer);
        if (atomic_load(&fifo_closed) ||
            (g && atomic_load_explicit(&g->state, memory_order_relaxed) == G_WAITING))
            break;
        ringo_yield();
    }
    ck_assert_int_eq(atomic_load(&fifo_closed), 0); /* the close waits */
    ck_assert_int_eq(fcntl(fifo_dirfd, F_GETFD), FD_CLOEXEC);
    /* A writer, which waits for the opener if it has not reached the
     * FIFO yet (O_CREAT: on io_uring the open waits on the kernel's
     * worker, as the opener's). */
    int w = ringo_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ck_assert_int_ge(w, 0);
    for (int i = 0; i < 30000 && !atomic_load(&fifo_closed); i++)
        ringo_sleep(MS);
    ck_assert_int_eq(atomic_load(&fifo_closed), 1);
    int r = atomic_load(&fifo_open_res);
    ck_assert_int_ge(r, 0);
    close(r);
    close(w);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}

START_TEST(close_waits_for_an_openat_in_its_directory)
{
    RUN(main_openat_in_progress, NULL, nprocs_param);
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
    tcase_add_test(tc, queued_call_never_runs_on_the_next_file);
    tcase_add_test(tc, close_waits_for_a_running_helper_call);
    tcase_add_test(tc, closed_partial_read_keeps_its_part);
    tcase_add_test(tc, close_waits_for_an_openat_in_its_directory);
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
