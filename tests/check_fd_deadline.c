/*
 * check_fd_deadline.c — per-descriptor deadlines (ringo_fd_deadline_set),
 * Go's net.Conn SetReadDeadline / SetWriteDeadline.
 *
 * Covered, with loopback TCP: a read blocked on a proc, the same or another
 * one, ended by a read deadline set in the past by another goroutine or a
 * plain thread (-ETIMEDOUT, the fd usable after); a future deadline
 * reached while blocked; a deadline cleared (RINGO_NEVER) or moved later
 * while a read is blocked, which keeps it blocked until data comes; a
 * write deadline leaving a blocked read alone; the earlier of the
 * goroutine's and the fd's deadline winning, and cancellation winning over
 * both; a multishot accept ended by its listener's read deadline; poll by
 * direction; ringo_close clearing the deadlines for the next file with the
 * number; one submission per call with a far fd deadline; bad arguments;
 * a close or a deadline change on one descriptor of a file leaving the
 * operations on its dups waiting; a poll in no direction (hang-up only)
 * outliving a deadline change; a MSG_WAITALL receive (recv, recvmsg)
 * with a first piece outliving deadline changes and a dup's close; the
 * count of closes that tells a read ended by its descriptor's close from
 * one to make again (one close counted once; many closes of the number
 * while a read waits do not look like none).
 * Orderings decide: the "later" events happen after sleeps that are
 * longer than the deadlines they outlast.
 */
#include "testutil.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "internal.h" /* fdl_close, fdl_get: the close count */

static unsigned nprocs_param = 1;

static uint64_t submissions(void)
{
    struct ringo_stats st;
    ck_assert_int_eq(ringo_stats(&st), 0);
    return st.submissions;
}

/* A reader goroutine: one read on fd, result and buffer kept. */
struct reader {
    int fd;
    int proc;               /* -1: any */
    atomic_int started;
    atomic_int done;
    ssize_t result;
    char buf[16];
};

static void reader_main(void *arg)
{
    struct reader *r = arg;
    atomic_store(&r->started, 1);
    r->result = ringo_read(r->fd, r->buf, sizeof r->buf);
    atomic_store(&r->done, 1);
}

static void reader_start(struct reader *r)
{
    ck_assert_int_gt(r->proc < 0 ? ringo_go(reader_main, r) : ringo_go_on(r->proc, reader_main, r), 0);
    while (!atomic_load(&r->started))
        ringo_sleep(100 * US);
    ringo_sleep(5 * MS); /* now blocked in the read (or about to be: either way it must end) */
}

static void reader_wait(struct reader *r)
{
    while (!atomic_load(&r->done))
        ringo_sleep(1 * MS);
}

/* ------------------------------------------------------------------ */

/* A deadline in the past ends a blocked read, on the setter's proc and on
 * another; the fd is usable afterwards. */
static void main_past(void *arg)
{
    (void)arg;
    for (int where = 0; where < (ringo_nprocs() > 1 ? 2 : 1); where++) {
        int a, b;
        test_tcp_pair(&a, &b, NULL);
        struct reader r = { .fd = b, .proc = where == 0 ? ringo_proc() : 1 - ringo_proc() };
        reader_start(&r);
        ck_assert_int_eq(atomic_load(&r.done), 0);
        ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_READ, ringo_now() - 1), 0);
        reader_wait(&r);
        ck_assert_int_eq(r.result, -ETIMEDOUT);
        /* still past: a new read does not even start */
        char c;
        ck_assert_int_eq(ringo_read(b, &c, 1), -ETIMEDOUT);
        /* cleared: the fd works, nothing was lost */
        ck_assert_int_eq(write(a, "hi", 2), 2);
        ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_READ, RINGO_NEVER), 0);
        char buf[4];
        ck_assert_int_eq(ringo_read(b, buf, sizeof buf), 2);
        ck_assert(memcmp(buf, "hi", 2) == 0);
        ck_assert_int_eq(ringo_close(a), 0);
        ck_assert_int_eq(ringo_close(b), 0);
    }
}

START_TEST(past_deadline_ends_a_blocked_read)
{
    RUN(main_past, NULL, nprocs_param);
}
END_TEST

/* The same, set from a plain thread. */
struct plain_set { int fd; int r; };
static void *plain_setter(void *arg)
{
    struct plain_set *ps = arg;
    ps->r = ringo_fd_deadline_set(ps->fd, RINGO_READ | RINGO_WRITE, ringo_now() - 1);
    return NULL;
}

static void main_plain(void *arg)
{
    (void)arg;
    int a, b;
    test_tcp_pair(&a, &b, NULL);
    struct reader r = { .fd = b, .proc = -1 };
    reader_start(&r);
    struct plain_set ps = { b, -1 };
    pthread_t t;
    ck_assert_int_eq(test_thread_create(&t, plain_setter, &ps), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(ps.r, 0);
    reader_wait(&r);
    ck_assert_int_eq(r.result, -ETIMEDOUT);
    close(a);
    ringo_close(b);
}

START_TEST(set_from_a_plain_thread)
{
    RUN(main_plain, NULL, nprocs_param);
}
END_TEST

/* A future deadline set while a read is blocked is reached. */
static void main_future(void *arg)
{
    (void)arg;
    int a, b;
    test_tcp_pair(&a, &b, NULL);
    struct reader r = { .fd = b, .proc = -1 };
    reader_start(&r);
    int64_t when = ringo_now() + 20 * MS;
    ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_READ, when), 0);
    reader_wait(&r);
    ck_assert_int_eq(r.result, -ETIMEDOUT);
    ck_assert_int_ge(ringo_now(), when);
    close(a);
    ringo_close(b);
}

START_TEST(future_deadline_is_reached)
{
    RUN(main_future, NULL, nprocs_param);
}
END_TEST

/* Moved later or cleared while blocked: the read waits on for its data,
 * which comes after the first deadline has passed.  A run counts only if
 * the move was made before the first deadline (checked with the clock
 * after the fact); a loaded machine that was too slow for that gets a run
 * with a longer first deadline. */
static void main_moved(void *arg)
{
    (void)arg;
    for (int clear = 0; clear < 2; clear++) {
        int64_t first_len = 10 * MS;
        for (int attempt = 0;; attempt++) {
            ck_assert_int_lt(attempt, 12);
            int a, b;
            test_tcp_pair(&a, &b, NULL);
            int64_t first = ringo_now() + first_len;
            ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_READ, first), 0);
            struct reader r = { .fd = b, .proc = -1 };
            ck_assert_int_gt(ringo_go(reader_main, &r), 0);
            while (!atomic_load(&r.started))
                ringo_sleep(100 * US);
            ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_READ,
                                                   clear ? RINGO_NEVER : ringo_now() + 60000 * MS), 0);
            bool in_time = ringo_now() < first;
            while (ringo_now() < first + 10 * MS) /* past the first deadline */
                ringo_sleep(1 * MS);
            if (in_time)
                ck_assert_msg(!atomic_load(&r.done), "clear %d: read returned %zd", clear, r.result);
            ck_assert_int_eq(write(a, "late", 4), 4);
            reader_wait(&r);
            close(a);
            ringo_close(b);
            if (!in_time) {
                first_len *= 2;
                continue;
            }
            ck_assert_int_eq(r.result, 4);
            ck_assert(memcmp(r.buf, "late", 4) == 0);
            break;
        }
    }
}

START_TEST(deadline_moved_or_cleared_while_blocked)
{
    RUN(main_moved, NULL, nprocs_param);
}
END_TEST

/* Descriptors of one file (dup(2)): io_uring cancels by file, so a close
 * or a deadline change on one number ends the operations waiting on the
 * others as well; those are made again, not reported as closed.  A read
 * blocked on each number, on this proc and on another; ringo_close of the
 * dup ends its own read with -EBADF and leaves the other waiting, which
 * then reads what comes.  The same with a deadline set far ahead on the
 * original while a read waits on a dup numbered in another page of the
 * deadline table (4096 descriptors a page), which has no entry: it keeps
 * waiting.  (The epoll engine cancels by number: the same results.) */
/* r, started, is still waiting a while later (what: what would have
 * ended it), and then reads the three bytes written to its peer. */
static void still_waiting_then_reads(struct reader *r, int peer, const char *what)
{
    ringo_sleep(20 * MS);
    ck_assert_msg(!atomic_load(&r->done), "%s: %zd", what, r->result);
    ck_assert_int_eq(write(peer, "one", 3), 3);
    reader_wait(r);
    ck_assert_int_eq(r->result, 3);
}

static void main_dups(void *arg)
{
    (void)arg;
    for (int where = 0; where < (ringo_nprocs() > 1 ? 2 : 1); where++) {
        int other = where == 0 ? ringo_proc() : 1 - ringo_proc();
        int a, b;
        test_tcp_pair(&a, &b, NULL);
        int d = dup(b);
        ck_assert_int_ge(d, 0);
        struct reader rb = { .fd = b, .proc = other }, rd = { .fd = d, .proc = other };
        reader_start(&rb);
        reader_start(&rd);
        ck_assert_int_eq(ringo_close(d), 0);
        reader_wait(&rd);
        ck_assert_int_eq(rd.result, -EBADF);
        still_waiting_then_reads(&rb, a, "the close of a dup ended a read of the original");

        /* A number in the table's next page, if the limit allows one. */
        struct rlimit rl;
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_cur <= 4200 && rl.rlim_max > 4200) {
            rl.rlim_cur = 4201;
            ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        }
        int far = fcntl(b, F_DUPFD_CLOEXEC, 4100);
        if (far >= 0) {
            struct reader rf = { .fd = far, .proc = other };
            reader_start(&rf);
            ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_READ, ringo_now() + 60000 * MS), 0);
            still_waiting_then_reads(&rf, a, "a deadline set on the original ended a read of a dup");
            ck_assert_int_eq(ringo_close(far), 0);
        }
        ck_assert_int_eq(ringo_close(a), 0);
        ck_assert_int_eq(ringo_close(b), 0);
    }
}

/* The count of closes of a number, in its sequence word. */
static uint32_t closes_of(int fd)
{
    uint32_t seq;
    fdl_get(fd, RINGO_READ, &seq);
    return seq & FDL_CLOSES;
}

/* A read blocked on a number gets -EBADF from its close, however many
 * closes of the number are counted meanwhile (files that had it while the
 * read's proc was busy: simulated with the count's own increment), and
 * never the data of the number's next file.  And one ringo_close, with
 * reads of the descriptor waiting on its own proc and another, counts
 * itself once. */
static void main_close_count(void *arg)
{
    (void)arg;
    static const uint32_t extra[] = { 0, 0x3fff, 0xffff };
    for (unsigned k = 0; k < sizeof extra / sizeof *extra; k++) {
        int a, b;
        test_tcp_pair(&a, &b, NULL);
        ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_READ, RINGO_NEVER), 0); /* an entry */
        struct reader r = { .fd = b, .proc = ringo_proc() };
        reader_start(&r);
        for (uint32_t i = 0; i < extra[k]; i++)
            fdl_close(b);
        ck_assert_int_eq(ringo_close(b), 0);
        int c, d;
        test_tcp_pair(&c, &d, NULL); /* one of them likely takes b's number */
        ck_assert_int_eq(write(c, "next", 4), 4);
        ck_assert_int_eq(write(d, "next", 4), 4);
        reader_wait(&r);
        ck_assert_msg(r.result == -EBADF, "after %u closes: %zd", (unsigned)extra[k], r.result);
        ringo_close(a);
        ringo_close(c);
        ringo_close(d);
    }
}

static void main_close_once(void *arg)
{
    (void)arg;
    if (ringo_nprocs() < 2)
        return;
    int a, b;
    test_tcp_pair(&a, &b, NULL);
    ck_assert_uint_eq(closes_of(b), 0); /* no entry: a run without deadlines set */
    struct reader here = { .fd = b, .proc = ringo_proc() }, there = { .fd = b, .proc = 1 - ringo_proc() };
    reader_start(&here);
    reader_start(&there);
    ck_assert_int_eq(ringo_close(b), 0);
    reader_wait(&here);
    reader_wait(&there);
    ck_assert_int_eq(here.result, -EBADF);
    ck_assert_int_eq(there.result, -EBADF);
    ck_assert_uint_eq(closes_of(b), 1);
    ringo_close(a);
}

START_TEST(close_counted_once_and_widely)
{
    RUN(main_close_once, NULL, nprocs_param);
    RUN(main_close_count, NULL, nprocs_param);
}
END_TEST

START_TEST(dups_are_separate)
{
    RUN(main_dups, NULL, nprocs_param);
}
END_TEST

/* A recv, and a recvmsg into two pieces, with MSG_WAITALL that has a
 * first piece when a cancel by descriptor comes that was not meant to
 * end it: a change of its read deadline, of its write deadline, of the
 * deadline of a dup (io_uring cancels by file), or the close of a dup.
 * It keeps waiting for the rest and returns all of it.  The dup's
 * cancels need an operation on the dup on the reader's proc: a poll for
 * urgent data, which never comes. */
struct waitall_reader {
    int fd, proc;
    bool use_msg;           /* ringo_recvmsg into two pieces of buf */
    atomic_int started, done;
    ssize_t result;
    char buf[100];
};

static void waitall_main(void *arg)
{
    struct waitall_reader *r = arg;
    atomic_store(&r->started, 1);
    if (r->use_msg) {
        struct iovec iov[2] = { { r->buf, 30 }, { r->buf + 30, 70 } };
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
        r->result = ringo_recvmsg(r->fd, &m, MSG_WAITALL);
    } else {
        r->result = ringo_recv(r->fd, r->buf, sizeof r->buf, MSG_WAITALL);
    }
    atomic_store(&r->done, 1);
}

struct urgent_poll {
    int fd;
    atomic_int started, done;
};

static void urgent_poll_main(void *arg)
{
    struct urgent_poll *u = arg;
    atomic_store(&u->started, 1);
    ringo_poll(u->fd, POLLPRI); /* a deadline change makes it again; a close ends it */
    atomic_store(&u->done, 1);
}

static void main_waitall(void *arg)
{
    (void)arg;
    char data[100];
    for (int i = 0; i < 100; i++)
        data[i] = (char)(i * 3 + 1);
    for (int where = 0; where < (ringo_nprocs() > 1 ? 2 : 1); where++) {
        int proc = where == 0 ? ringo_proc() : 1 - ringo_proc();
        for (int how = 0; how < 8; how++) {
            int a, b;
            test_tcp_pair(&a, &b, NULL);
            struct waitall_reader r = { .fd = b, .proc = proc, .use_msg = how >= 4 };
            ck_assert_int_gt(ringo_go_on(proc, waitall_main, &r), 0);
            int d = -1;
            struct urgent_poll u = { .fd = -1 };
            if (how % 4 >= 2) {
                d = dup(b);
                ck_assert_int_ge(d, 0);
                u.fd = d;
                ck_assert_int_gt(ringo_go_on(proc, urgent_poll_main, &u), 0);
                while (!atomic_load(&u.started))
                    ringo_sleep(100 * US);
            }
            while (!atomic_load(&r.started))
                ringo_sleep(100 * US);
            ck_assert_int_eq(write(a, data, 50), 50);
            ringo_sleep(5 * MS); /* the first piece taken, the rest waited for */
            switch (how % 4) {
            case 0:
                ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_READ, ringo_now() + 60000 * MS), 0);
                break;
            case 1:
                ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_WRITE, ringo_now() + 60000 * MS), 0);
                break;
            case 2:
                ck_assert_int_eq(ringo_fd_deadline_set(d, RINGO_READ, ringo_now() + 60000 * MS), 0);
                break;
            default:
                ck_assert_int_eq(ringo_close(d), 0);
                d = -1;
                break;
            }
            ringo_sleep(20 * MS);
            ck_assert_msg(!atomic_load(&r.done), "case %d: the receive returned %zd", how, r.result);
            ck_assert_int_eq(write(a, data + 50, 50), 50);
            while (!atomic_load(&r.done))
                ringo_sleep(1 * MS);
            ck_assert_int_eq(r.result, 100);
            ck_assert(memcmp(r.buf, data, 100) == 0);
            if (d >= 0)
                ck_assert_int_eq(ringo_close(d), 0); /* ends the poll */
            while (u.fd >= 0 && !atomic_load(&u.done))
                ringo_sleep(1 * MS);
            ck_assert_int_eq(ringo_close(a), 0);
            ck_assert_int_eq(ringo_close(b), 0);
        }
    }
}

START_TEST(waitall_receive_outlives_other_cancels)
{
    RUN(main_waitall, NULL, nprocs_param);
}
END_TEST

/* An operation that waits in no direction (a poll for hang-up only) has
 * no deadline of its descriptor's, and a deadline set meanwhile does not
 * end it as though the descriptor were closed: it is made again, and
 * returns when the peer goes. */
struct hup_watch {
    int fd;
    atomic_int started, done;
    int result;
};

static void hup_watcher(void *arg)
{
    struct hup_watch *w = arg;
    atomic_store(&w->started, 1);
    w->result = ringo_poll(w->fd, POLLHUP);
    atomic_store(&w->done, 1);
}

static void main_hup(void *arg)
{
    (void)arg;
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct hup_watch w = { .fd = sv[0] };
    ck_assert_int_gt(ringo_go(hup_watcher, &w), 0);
    while (!atomic_load(&w.started))
        ringo_sleep(100 * US);
    ringo_sleep(5 * MS);
    ck_assert_int_eq(ringo_fd_deadline_set(sv[0], RINGO_READ, ringo_now() + 60000 * MS), 0);
    ringo_sleep(20 * MS);
    ck_assert_msg(!atomic_load(&w.done), "a deadline ended a poll for hang-up: %d", w.result);
    ck_assert_int_eq(close(sv[1]), 0);
    while (!atomic_load(&w.done))
        ringo_sleep(1 * MS);
    ck_assert_int_eq(w.result, POLLHUP); /* what poll(2) gives: asked for, or HUP/ERR/NVAL */
    ck_assert_int_eq(ringo_close(sv[0]), 0);
}

START_TEST(poll_without_direction_survives_a_deadline)
{
    RUN(main_hup, NULL, nprocs_param);
}
END_TEST

/* A write deadline does not end a read. */
static void main_direction(void *arg)
{
    (void)arg;
    int a, b;
    test_tcp_pair(&a, &b, NULL);
    struct reader r = { .fd = b, .proc = -1 };
    reader_start(&r);
    ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_WRITE, ringo_now() - 1), 0);
    ringo_sleep(10 * MS);
    ck_assert_int_eq(atomic_load(&r.done), 0);
    ck_assert_int_eq(write(a, "r", 1), 1);
    reader_wait(&r);
    ck_assert_int_eq(r.result, 1);
    /* ... but ends a write, and poll for output */
    ck_assert_int_eq(ringo_write(b, "w", 1), -ETIMEDOUT);
    ck_assert_int_eq(ringo_poll(b, POLLOUT), -ETIMEDOUT);
    ck_assert_int_ge(ringo_poll(a, POLLOUT), 0); /* the other end has none */
    /* poll for input honours the read deadline only */
    ck_assert_int_eq(write(a, "x", 1), 1);
    ck_assert_int_gt(ringo_poll(b, POLLIN) & POLLIN, 0);
    ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_READ, ringo_now() - 1), 0);
    ck_assert_int_eq(ringo_poll(b, POLLIN), -ETIMEDOUT);
    close(a);
    ringo_close(b);
}

START_TEST(directions_are_separate)
{
    RUN(main_direction, NULL, nprocs_param);
}
END_TEST

/* The earlier deadline wins; cancellation wins over both. */
static void main_earlier(void *arg)
{
    (void)arg;
    int a, b;
    test_tcp_pair(&a, &b, NULL);
    char c;
    /* goroutine's earlier */
    ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_READ, ringo_now() + 60000 * MS), 0);
    int64_t when = ringo_now() + 10 * MS;
    ringo_deadline_set(when);
    ck_assert_int_eq(ringo_read(b, &c, 1), -ETIMEDOUT);
    ck_assert_int_ge(ringo_now(), when);
    /* fd's earlier */
    ringo_deadline_set(ringo_now() + 60000 * MS);
    when = ringo_now() + 10 * MS;
    ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_READ, when), 0);
    ck_assert_int_eq(ringo_read(b, &c, 1), -ETIMEDOUT);
    ck_assert_int_ge(ringo_now(), when);
    ringo_deadline_set(RINGO_NEVER);
    close(a);
    ringo_close(b);
}

START_TEST(earlier_deadline_wins)
{
    RUN(main_earlier, NULL, nprocs_param);
}
END_TEST

static void cancelled_reader(void *arg)
{
    struct reader *r = arg;
    atomic_store(&r->started, 1);
    r->result = ringo_read(r->fd, r->buf, sizeof r->buf);
    atomic_store(&r->done, 1);
}

static void main_cancel_wins(void *arg)
{
    (void)arg;
    int a, b;
    test_tcp_pair(&a, &b, NULL);
    struct reader r = { .fd = b };
    int64_t id = ringo_go(cancelled_reader, &r);
    ck_assert_int_gt(id, 0);
    while (!atomic_load(&r.started))
        ringo_sleep(100 * US);
    ringo_sleep(5 * MS);
    ck_assert_int_eq(ringo_cancel(id), 0);
    ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_READ, ringo_now() - 1), 0);
    reader_wait(&r);
    ck_assert_int_eq(r.result, -ECANCELED);
    close(a);
    ringo_close(b);
}

START_TEST(cancellation_wins)
{
    RUN(main_cancel_wins, NULL, nprocs_param);
}
END_TEST

/* A multishot accept (no address) waiting on a listener ends at the
 * listener's read deadline, and accepts again once it is cleared. */
struct acceptor { int lfd; atomic_int started; atomic_int done; int result; };

static void acceptor_main(void *arg)
{
    struct acceptor *ac = arg;
    atomic_store(&ac->started, 1);
    ac->result = ringo_accept(ac->lfd, NULL, NULL, SOCK_CLOEXEC);
    atomic_store(&ac->done, 1);
}

static void main_accept(void *arg)
{
    (void)arg;
    struct sockaddr_in sa;
    int lfd = test_listen_loopback(&sa, 64);
    struct acceptor ac = { .lfd = lfd };
    ck_assert_int_gt(ringo_go(acceptor_main, &ac), 0);
    while (!atomic_load(&ac.started))
        ringo_sleep(100 * US);
    ringo_sleep(5 * MS);
    ck_assert_int_eq(atomic_load(&ac.done), 0);
    ck_assert_int_eq(ringo_fd_deadline_set(lfd, RINGO_READ, ringo_now() - 1), 0);
    while (!atomic_load(&ac.done))
        ringo_sleep(1 * MS);
    ck_assert_int_eq(ac.result, -ETIMEDOUT);
    /* a future deadline that is reached, set before the call */
    int64_t when = ringo_now() + 10 * MS;
    ck_assert_int_eq(ringo_fd_deadline_set(lfd, RINGO_READ, when), 0);
    ck_assert_int_eq(ringo_accept(lfd, NULL, NULL, SOCK_CLOEXEC), -ETIMEDOUT);
    ck_assert_int_ge(ringo_now(), when);
    /* cleared: a connection is accepted */
    ck_assert_int_eq(ringo_fd_deadline_set(lfd, RINGO_READ, RINGO_NEVER), 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
    int s = ringo_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(s, 0);
    close(s);
    close(c);
    ck_assert_int_eq(ringo_close(lfd), 0);
}

START_TEST(accept_ends_at_the_listener_deadline)
{
    RUN(main_accept, NULL, nprocs_param);
}
END_TEST

/* ringo_close clears the deadlines: the next file with the number has
 * none. */
static void main_close_clears(void *arg)
{
    (void)arg;
    int a, b;
    test_tcp_pair(&a, &b, NULL);
    int num = b;
    ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_READ | RINGO_WRITE, ringo_now() - 1), 0);
    ck_assert_int_eq(ringo_close(b), 0);
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    /* the read end gets the number, the write end one above it */
    int w = fcntl(p[1], F_DUPFD_CLOEXEC, num + 1);
    ck_assert_int_gt(w, num);
    close(p[1]);
    p[1] = w;
    if (p[0] != num) {
        ck_assert_int_eq(dup2(p[0], num), num);
        close(p[0]);
        p[0] = num;
    }
    ck_assert_int_eq(write(p[1], "z", 1), 1);
    char c;
    ck_assert_int_eq(ringo_read(p[0], &c, 1), 1);
    close(p[0]);
    close(p[1]);
    close(a);
}

START_TEST(close_clears_the_deadlines)
{
    RUN(main_close_clears, NULL, nprocs_param);
}
END_TEST

/* A far fd deadline costs no submission. */
static void main_cost(void *arg)
{
    (void)arg;
    int a, b;
    test_tcp_pair(&a, &b, NULL);
    ck_assert_int_eq(ringo_fd_deadline_set(b, RINGO_READ | RINGO_WRITE, ringo_now() + 60000 * MS), 0);
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(write(a, "q", 1), 1);
        uint64_t s0 = submissions();
        char c;
        ck_assert_int_eq(ringo_read(b, &c, 1), 1);
        ck_assert_int_eq(ringo_write(b, "r", 1), 1);
        /* on epoll both are made at once: the data is there, the
         * socket writable */
        ck_assert_int_eq(submissions() - s0, on_epoll() ? 0 : 2);
        ck_assert_int_eq(read(a, &c, 1), 1);
    }
    close(a);
    ringo_close(b);
}

START_TEST(far_deadline_costs_no_submission)
{
    RUN(main_cost, NULL, nprocs_param);
}
END_TEST

static void main_bad(void *arg)
{
    (void)arg;
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    ck_assert_int_eq(ringo_fd_deadline_set(p[0], 0, RINGO_NEVER), -EINVAL);
    ck_assert_int_eq(ringo_fd_deadline_set(p[0], 4, RINGO_NEVER), -EINVAL);
    ck_assert_int_eq(ringo_fd_deadline_set(-1, RINGO_READ, RINGO_NEVER), -EBADF);
    close(p[1]);
    ck_assert_int_eq(ringo_fd_deadline_set(p[1], RINGO_READ, RINGO_NEVER), -EBADF);
    close(p[0]);
}

START_TEST(bad_arguments)
{
    RUN(main_bad, NULL, nprocs_param);
    /* outside a run */
    ck_assert_int_eq(ringo_fd_deadline_set(0, RINGO_READ, RINGO_NEVER), -EINVAL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fd_deadline");
    TCase *tc = tcase_create("fd_deadline");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, past_deadline_ends_a_blocked_read);
    tcase_add_test(tc, set_from_a_plain_thread);
    tcase_add_test(tc, future_deadline_is_reached);
    tcase_add_test(tc, deadline_moved_or_cleared_while_blocked);
    tcase_add_test(tc, directions_are_separate);
    tcase_add_test(tc, earlier_deadline_wins);
    tcase_add_test(tc, cancellation_wins);
    tcase_add_test(tc, accept_ends_at_the_listener_deadline);
    tcase_add_test(tc, close_clears_the_deadlines);
    tcase_add_test(tc, far_deadline_costs_no_submission);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, dups_are_separate);
    tcase_add_test(tc, close_counted_once_and_widely);
    tcase_add_test(tc, poll_without_direction_survives_a_deadline);
    tcase_add_test(tc, waitall_receive_outlives_other_cancels);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    skip_without_io_uring();
    return run_per_procs(suite, &nprocs_param);
}
