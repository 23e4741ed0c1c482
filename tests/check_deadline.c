/*
 * check_deadline.c — what a deadline and a cancellation cost, and what they
 * end.
 *
 * An I/O call with a deadline costs the same one SQE as one without: the
 * deadline is an entry in the proc's timer heap, and only when it fires is
 * an IORING_OP_ASYNC_CANCEL submitted for the operation.  These tests count
 * submissions with ringo_stats() (no wall-clock bounds): each call with a
 * far deadline against the same call without one; 10,000 reads; a read that
 * times out (its SQE and one cancel, and the fd stays usable); and bytes
 * written while reads keep timing out, every byte received once and in
 * order.  The 10,000 reads look at CLOCK_MONOTONIC a handful of times, not
 * twice each (timer.c "Reading the clock less"), and a deadline just
 * passed still ends a read that has data.  Sync waits ignore cancellation (API.md): a cancelled goroutine
 * waiting on a Mutex, RWMutex, WaitGroup or Cond submits one wait, not a
 * stream of them, and a cancelled goroutine that locks a mutex it holds is
 * a deadlock, reported as one.
 */
#include "testutil.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

static unsigned nprocs_param = 1;

/* Every clock_gettime of this program, the runtime's included (it is
 * linked in statically), passes here: CLOCK_MONOTONIC readings are
 * counted per thread, then the system call made. */
static _Thread_local unsigned long fine_reads;

int clock_gettime(clockid_t id, struct timespec *ts)
{
    if (id == CLOCK_MONOTONIC)
        fine_reads++;
    return (int)syscall(SYS_clock_gettime, id, ts);
}

static uint64_t submissions(void)
{
    struct ringo_stats st;
    ck_assert_int_eq(ringo_stats(&st), 0);
    return st.submissions;
}

/* ------------------------------------------------------------------ */
/* One SQE per call, deadline or not */

/* Each call made once without a deadline and once with a far one; both
 * complete, and both cost exactly one submission. */
struct calls {
    int a, b;           /* connected TCP sockets */
    int p[2];           /* a pipe */
    int file;           /* a temporary file */
    int lfd;            /* a listener for accept/connect */
    struct sockaddr_in lsa;
};

static void calls_open(struct calls *c)
{
    test_tcp_pair(&c->a, &c->b, &c->lfd);
    socklen_t len = sizeof c->lsa;
    ck_assert_int_eq(getsockname(c->lfd, (struct sockaddr *)&c->lsa, &len), 0);
    ck_assert_int_eq(pipe2(c->p, O_CLOEXEC), 0);
    char path[] = "/tmp/ringo-deadline-XXXXXX";
    c->file = mkstemp(path);
    ck_assert_int_ge(c->file, 0);
    unlink(path);
}

static void calls_close(struct calls *c)
{
    close(c->a);
    close(c->b);
    close(c->lfd);
    close(c->p[0]);
    close(c->p[1]);
    close(c->file);
}

/* Makes call number k; returns its result (> 0 or 0 expected). */
static long one_call(struct calls *c, int k)
{
    char buf[16] = "0123456789abcdef";
    struct iovec iov = { buf, 4 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    switch (k) {
    case 0: return ringo_write(c->p[1], buf, 4);
    case 1: return ringo_read(c->p[0], buf, 4);
    case 2: return ringo_writev(c->p[1], &iov, 1);
    case 3: return ringo_readv(c->p[0], &iov, 1);
    case 4: return ringo_pwrite(c->file, buf, 4, 0);
    case 5: return ringo_pread(c->file, buf, 4, 0);
    case 6: return ringo_send(c->a, buf, 4, 0);
    case 7: return ringo_recv(c->b, buf, 4, 0);
    case 8: return ringo_sendmsg(c->a, &msg, 0);
    case 9: return ringo_recvmsg(c->b, &msg, 0);
    case 10: return ringo_write_all(c->a, buf, 4);
    case 11: return ringo_poll(c->b, POLLIN) & POLLIN;
    case 12: return ringo_read(c->b, buf, 4); /* what poll saw */
    case 13: {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        int r = ringo_connect(fd, (struct sockaddr *)&c->lsa, sizeof c->lsa);
        int s = r == 0 ? accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC) : -1;
        close(fd);
        if (s >= 0)
            close(s);
        return r == 0 && s >= 0 ? 1 : r;
    }
    case 14: {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&c->lsa, sizeof c->lsa), 0);
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        int s = ringo_accept(c->lfd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
        close(fd);
        if (s >= 0)
            close(s);
        return s >= 0 ? 1 : s;
    }
    case 15: return ringo_fsync(c->file) == 0 ? 1 : -1;
    }
    return -1;
}
#define NCALLS 16

static void main_one_sqe(void *arg)
{
    (void)arg;
    struct calls c;
    calls_open(&c);
    for (int k = 0; k < NCALLS; k++) {
        for (int with = 0; with < 2; with++) {
            ringo_deadline_set(with ? ringo_now() + 60000 * MS : RINGO_NEVER);
            uint64_t s0 = submissions();
            long r = one_call(&c, k);
            uint64_t d = submissions() - s0;
            ck_assert_msg(r > 0, "call %d (deadline %d) returned %ld", k, with, r);
            /* on epoll, a call that had to wait for readiness is one */
            ck_assert_msg(on_epoll() ? d <= 1 : d == 1,
                          "call %d (deadline %d) made %llu submissions", k, with,
                          (unsigned long long)d);
        }
    }
    ringo_deadline_set(RINGO_NEVER);
    calls_close(&c);
}

START_TEST(one_sqe_per_call_with_deadline)
{
    RUN(main_one_sqe, NULL, nprocs_param);
}
END_TEST

/* 10,000 one-byte reads with a far deadline, fed by a plain thread that
 * makes no ringo call (so no SQE but the reads' is counted). */
#define NREADS 10000
struct feeder { int fd; };

static void *feed(void *arg)
{
    struct feeder *f = arg;
    for (int i = 0; i < NREADS; i++) {
        unsigned char b = (unsigned char)i;
        ck_assert_int_eq(write(f->fd, &b, 1), 1);
        if (i % 64 == 0)
            sched_yield(); /* now and then a read parks before its byte */
    }
    return NULL;
}

static void main_many_reads(void *arg)
{
    (void)arg;
    int a, b, lfd;
    test_tcp_pair(&a, &b, &lfd);
    struct feeder f = { a };
    pthread_t t;
    uint64_t s0 = submissions();
    ck_assert_int_eq(pthread_create(&t, NULL, feed, &f), 0);
    ringo_deadline_set(ringo_now() + 600000 * MS);
    for (int i = 0; i < NREADS; i++) {
        unsigned char got;
        ck_assert_int_eq(ringo_read(b, &got, 1), 1);
        ck_assert_int_eq(got, (unsigned char)i);
    }
    uint64_t d = submissions() - s0;
    ck_assert_msg(on_epoll() ? d <= NREADS : d == NREADS, "%d reads made %llu submissions",
                  NREADS, (unsigned long long)d);
    pthread_join(t, NULL);
    close(a);
    close(b);
    close(lfd);
}

START_TEST(ten_thousand_reads_ten_thousand_sqes)
{
    RUN(main_many_reads, NULL, nprocs_param);
}
END_TEST

/* 10,000 reads with a far deadline whose bytes are there already: the
 * deadline is checked against the coarse clock, and neither the reads nor
 * the proc's timer runs between them read CLOCK_MONOTONIC (twice a read
 * each before: the goroutine's deadline, then the earlier of it and the
 * fd's).  A read whose deadline passed a nanosecond ago, inside the coarse
 * clock's slack, still fails with -ETIMEDOUT although its byte is there,
 * and the byte is the next read's. */
static void main_clock_reads(void *arg)
{
    (void)arg;
    int a, b, lfd;
    test_tcp_pair(&a, &b, &lfd);
    static unsigned char buf[NREADS];
    for (int i = 0; i < NREADS; i++)
        buf[i] = (unsigned char)i;
    ck_assert_int_eq(write(a, buf, NREADS), NREADS);
    ringo_deadline_set(ringo_now() + 600000 * MS);
    unsigned long f0 = fine_reads;
    for (int i = 0; i < NREADS; i++) {
        unsigned char got;
        ck_assert_int_eq(ringo_read(b, &got, 1), 1);
        ck_assert_int_eq(got, (unsigned char)i);
    }
    unsigned long f = fine_reads - f0;
    ck_assert_msg(f < NREADS / 10, "%d reads read CLOCK_MONOTONIC %lu times", NREADS, f);
    ck_assert_int_eq(write(a, "z", 1), 1);
    ringo_deadline_set(ringo_now() - 1);
    char c;
    ck_assert_int_eq(ringo_read(b, &c, 1), -ETIMEDOUT);
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_eq(ringo_read(b, &c, 1), 1);
    ck_assert_int_eq(c, 'z');
    close(a);
    close(b);
    close(lfd);
}

START_TEST(far_deadline_reads_use_the_coarse_clock)
{
    RUN(main_clock_reads, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A deadline that fires */

static void main_timeout(void *arg)
{
    (void)arg;
    int a, b, lfd;
    test_tcp_pair(&a, &b, &lfd);
    char buf[8];
    for (int round = 0; round < 3; round++) {
        int64_t t0 = ringo_now();
        ringo_deadline_set(t0 + 5 * MS);
        uint64_t s0 = submissions();
        ck_assert_int_eq(ringo_recv(b, buf, sizeof buf, 0), -ETIMEDOUT);
        /* the deadline is the deadline, not earlier */
        ck_assert_int_ge(ringo_now(), t0 + 5 * MS);
        /* the read, and the cancel its deadline submitted (on epoll the
         * read's wait; its end is no submission) */
        ck_assert_int_eq(submissions() - s0, on_epoll() ? 1 : 2);
        /* past the deadline nothing is submitted */
        s0 = submissions();
        ck_assert_int_eq(ringo_read(b, buf, sizeof buf), -ETIMEDOUT);
        ck_assert_int_eq(submissions() - s0, 0);
        /* the fd is usable: data written now is read whole */
        ringo_deadline_set(RINGO_NEVER);
        ck_assert_int_eq(write(a, "abc", 3), 3);
        ck_assert_int_eq(ringo_read(b, buf, sizeof buf), 3);
        ck_assert(memcmp(buf, "abc", 3) == 0);
    }
    close(a);
    close(b);
    close(lfd);
}

START_TEST(timed_out_read_keeps_the_fd)
{
    RUN(main_timeout, NULL, nprocs_param);
}
END_TEST

/* A plain thread writes the bytes 0, 1, 2, ... one at a time while a
 * goroutine reads them with deadlines about as long as the gaps, so reads
 * keep timing out as bytes arrive.  Every byte must be received exactly
 * once and in order: a read whose data came in as its deadline fired
 * returns it, or leaves it for the next read. */
struct trickle {
    int fd;
    atomic_int stop;
    atomic_long sent;
};

static void *trickle_write(void *arg)
{
    struct trickle *t = arg;
    long n = 0;
    while (!atomic_load(&t->stop) && n < 200000) {
        unsigned char b = (unsigned char)n;
        ck_assert_int_eq(write(t->fd, &b, 1), 1);
        n++;
        atomic_store(&t->sent, n);
        usleep(50);
    }
    return NULL;
}

static void main_trickle(void *arg)
{
    (void)arg;
    int a, b, lfd;
    test_tcp_pair(&a, &b, &lfd);
    struct trickle t = { .fd = a };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, trickle_write, &t), 0);
    long got = 0, timeouts = 0, reads = 0;
    unsigned char buf[64];
    /* Until both outcomes were seen often, or the writer ran out. */
    while ((timeouts < 300 || reads < 300) && atomic_load(&t.sent) < 200000) {
        ringo_deadline_set(ringo_now() + 40 * US);
        ssize_t r = ringo_read(b, buf, sizeof buf);
        if (r == -ETIMEDOUT) {
            timeouts++;
            continue;
        }
        ck_assert_int_gt(r, 0);
        for (ssize_t i = 0; i < r; i++)
            ck_assert_int_eq(buf[i], (unsigned char)(got + i));
        got += r;
        reads++;
    }
    atomic_store(&t.stop, 1);
    pthread_join(th, NULL);
    ringo_deadline_set(RINGO_NEVER);
    long sent = atomic_load(&t.sent);
    while (got < sent) {
        ssize_t r = ringo_read(b, buf, sizeof buf);
        ck_assert_int_gt(r, 0);
        for (ssize_t i = 0; i < r; i++)
            ck_assert_int_eq(buf[i], (unsigned char)(got + i));
        got += r;
    }
    ck_assert_int_eq(got, sent);
    /* nothing more: the last byte was the writer's last */
    ck_assert_int_eq(recv(b, buf, 1, MSG_DONTWAIT), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_gt(timeouts, 0);
    close(a);
    close(b);
    close(lfd);
}

START_TEST(bytes_at_the_deadline_are_kept)
{
    RUN(main_trickle, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Sync waits ignore cancellation */

enum { SY_MUTEX, SY_RWMUTEX_R, SY_RWMUTEX_W, SY_WAITGROUP, SY_COND, SY_N };

struct sync_case {
    int kind;
    ringo_mutex m;
    ringo_rwmutex rw;
    ringo_waitgroup wg;
    ringo_cond cv;
    int cond_ready;
    ringo_chan *parked;  /* the waiter says it is about to wait */
    atomic_ullong before, after;
    atomic_int done;
};

static void sync_waiter(void *arg)
{
    struct sync_case *sc = arg;
    int one = 1;
    ck_assert_int_eq(ringo_chan_send(sc->parked, &one), 0);
    ck_assert_int_eq(ringo_cancel(ringo_id()), 0);
    atomic_store(&sc->before, submissions());
    switch (sc->kind) {
    case SY_MUTEX:
        ringo_mutex_lock(&sc->m);
        ringo_mutex_unlock(&sc->m);
        break;
    case SY_RWMUTEX_R:
        ringo_rwmutex_rlock(&sc->rw);
        ringo_rwmutex_runlock(&sc->rw);
        break;
    case SY_RWMUTEX_W:
        ringo_rwmutex_lock(&sc->rw);
        ringo_rwmutex_unlock(&sc->rw);
        break;
    case SY_WAITGROUP:
        ringo_waitgroup_wait(&sc->wg);
        break;
    case SY_COND:
        ringo_mutex_lock(&sc->m);
        while (!sc->cond_ready)
            ringo_cond_wait(&sc->cv, &sc->m);
        ringo_mutex_unlock(&sc->m);
        break;
    }
    atomic_store(&sc->after, submissions());
    atomic_store(&sc->done, 1);
}

static void main_cancelled_sync(void *arg)
{
    (void)arg;
    for (int kind = 0; kind < SY_N; kind++) {
        struct sync_case sc = { .kind = kind };
        sc.parked = ringo_chan_make(sizeof(int), 0);
        ck_assert_ptr_nonnull(sc.parked);
        /* hold what the waiter will wait for */
        switch (kind) {
        case SY_MUTEX: ringo_mutex_lock(&sc.m); break;
        case SY_RWMUTEX_R:
        case SY_RWMUTEX_W: ringo_rwmutex_lock(&sc.rw); break;
        case SY_WAITGROUP: ringo_waitgroup_add(&sc.wg, 1); break;
        case SY_COND: break;
        }
        ck_assert_int_gt(ringo_go(sync_waiter, &sc), 0);
        int v;
        ck_assert_int_eq(ringo_chan_recv(sc.parked, &v), 0);
        /* Until the waiter has submitted its wait (or spun through many),
         * then as long again: a waiter that resubmits piles up SQEs. */
        while (atomic_load(&sc.before) == 0 || submissions() == atomic_load(&sc.before))
            ringo_sleep(1 * MS);
        ringo_sleep(20 * MS);
        ck_assert_int_eq(atomic_load(&sc.done), 0);
        switch (kind) {
        case SY_MUTEX: ringo_mutex_unlock(&sc.m); break;
        case SY_RWMUTEX_R:
        case SY_RWMUTEX_W: ringo_rwmutex_unlock(&sc.rw); break;
        case SY_WAITGROUP: ringo_waitgroup_done(&sc.wg); break;
        case SY_COND:
            ringo_mutex_lock(&sc.m);
            sc.cond_ready = 1;
            ringo_cond_signal(&sc.cv);
            ringo_mutex_unlock(&sc.m);
            break;
        }
        while (!atomic_load(&sc.done))
            ringo_sleep(1 * MS);
        uint64_t d = atomic_load(&sc.after) - atomic_load(&sc.before);
        /* one wait (a second if the word changed under the first); the
         * waker's FUTEX_WAKE is a system call, not an SQE */
        ck_assert_msg(d <= 4, "cancelled waiter of kind %d made %llu submissions", kind,
                      (unsigned long long)d);
        ringo_chan_release(sc.parked);
    }
}

START_TEST(cancelled_sync_wait_does_not_spin)
{
    RUN(main_cancelled_sync, NULL, nprocs_param);
}
END_TEST

/* A cancelled goroutine that locks a mutex it holds waits for ever: a
 * deadlock the runtime must report, not a hang. */
static void main_self_deadlock(void *arg)
{
    (void)arg;
    static ringo_mutex m;
    ringo_cancel(ringo_id());
    ringo_mutex_lock(&m);
    ringo_mutex_lock(&m);
}

static void self_deadlock_child(void)
{
    struct ringo_config cfg = { .procs = nprocs_param };
    _exit(ringo_run(main_self_deadlock, NULL, &cfg) == -EDEADLK ? 0 : 1);
}

START_TEST(cancelled_self_deadlock_is_reported)
{
    char err[4096];
    int st = run_captured(self_deadlock_child, err, sizeof err);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, err);
    ck_assert_msg(strstr(err, "deadlock") != NULL, "stderr: %s", err);
}
END_TEST

/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* A goroutine's deadline timer moves from wait to wait (timer.c "Moved
 * later"): each wait must still end at its own deadline. */

struct late_writer {
    int fd;
    int64_t after;
};

static void write_late(void *arg)
{
    struct late_writer *w = arg;
    ringo_sleep(w->after);
    ck_assert_int_eq(ringo_write(w->fd, "z", 1), 1);
}

static void main_moved(void *arg)
{
    (void)arg;
    int a, b, lfd;
    test_tcp_pair(&a, &b, &lfd);
    char c;
    for (int round = 0; round < 3; round++) {
        /* A read under a far deadline that completes: its timer stays. */
        ck_assert_int_eq(write(a, "x", 1), 1);
        ringo_deadline_set(ringo_now() + 60000 * MS);
        ck_assert_int_eq(ringo_read(b, &c, 1), 1);
        /* Earlier: a read with no data times out at the near deadline,
         * before the byte a goroutine writes a second later. */
        struct late_writer w = { a, 1000 * MS };
        ck_assert_int_gt(ringo_go(write_late, &w), 0);
        ringo_deadline_set(ringo_now() + 20 * MS);
        ck_assert_int_eq(ringo_read(b, &c, 1), -ETIMEDOUT);
        ringo_deadline_set(RINGO_NEVER);
        ck_assert_int_eq(ringo_read(b, &c, 1), 1); /* the late byte */
        /* Later: after a read under a near deadline that completed, a
         * read under a far one waits past the near one for its byte. */
        ck_assert_int_eq(write(a, "y", 1), 1);
        ringo_deadline_set(ringo_now() + 10 * MS);
        ck_assert_int_eq(ringo_read(b, &c, 1), 1);
        w.after = 100 * MS;
        ck_assert_int_gt(ringo_go(write_late, &w), 0);
        ringo_deadline_set(ringo_now() + 60000 * MS);
        ck_assert_int_eq(ringo_read(b, &c, 1), 1);
        ck_assert_int_eq(c, 'z');
    }
    ringo_deadline_set(RINGO_NEVER);
    close(a);
    close(b);
    close(lfd);
}

START_TEST(deadline_moves_between_waits)
{
    RUN(main_moved, NULL, nprocs_param);
}
END_TEST

/* A wait under a far deadline that ended leaves no timer that would keep
 * a deadlock from being reported: the run ends with -EDEADLK at once,
 * not when the old deadline passes (the test's timeout comes first). */
static void main_deadlock_after_deadline(void *arg)
{
    int a, b, lfd;
    test_tcp_pair(&a, &b, &lfd);
    char c;
    ck_assert_int_eq(write(a, "x", 1), 1);
    ringo_deadline_set(ringo_now() + 3600000 * MS);
    ck_assert_int_eq(ringo_read(b, &c, 1), 1);
    ringo_deadline_set(RINGO_NEVER);
    close(a);
    close(b);
    close(lfd);
    int v;
    ringo_chan_recv(arg, &v); /* nobody sends */
}

START_TEST(deadlock_reported_after_a_deadline_wait)
{
    struct ringo_config cfg = { .procs = nprocs_param };
    /* made and released here: the goroutine left blocked on it is not */
    ringo_chan *ch = ringo_chan_make(sizeof(int), 0);
    ck_assert_ptr_nonnull(ch);
    ck_assert_int_eq(ringo_run(main_deadlock_after_deadline, ch, &cfg), -EDEADLK);
    ringo_chan_release(ch);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("deadline");
    TCase *tc = tcase_create("deadline");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, one_sqe_per_call_with_deadline);
    tcase_add_test(tc, ten_thousand_reads_ten_thousand_sqes);
    tcase_add_test(tc, far_deadline_reads_use_the_coarse_clock);
    tcase_add_test(tc, timed_out_read_keeps_the_fd);
    tcase_add_test(tc, bytes_at_the_deadline_are_kept);
    tcase_add_test(tc, deadline_moves_between_waits);
    tcase_add_test(tc, deadlock_reported_after_a_deadline_wait);
    /* Sync waits make SQEs only on io_uring; on epoll they are in the
     * wait table (check_sync_fallback.sh). */
    if (test_engine() == RINGO_ENGINE_URING)
        tcase_add_test(tc, cancelled_sync_wait_does_not_spin);
    tcase_add_test(tc, cancelled_self_deadlock_is_reported);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    skip_without_io_uring();
    return run_per_procs(suite, &nprocs_param);
}
