/*
 * io.c — POSIX-shaped blocking I/O for goroutines: each call is one io_uring
 * submission on the caller's proc, batched with the rest of the scheduler
 * round, that parks only the calling goroutine.
 *
 * One operation, start to end (io_wait()):
 *
 *   1. block_check(): a cancelled goroutine gets -ECANCELED, one past its
 *      deadline -ETIMEDOUT, and the operation is not attempted.
 *   2. The SQE is prepared with user_data = a struct rop on the goroutine's
 *      stack.  With a finite deadline it carries IOSQE_IO_LINK and is
 *      followed by an IORING_OP_LINK_TIMEOUT at the deadline (absolute,
 *      CLOCK_MONOTONIC, the clock of ringo_now()).  ring_reserve() first
 *      makes room for both, so no submit can fall between them and cut the
 *      link.  The timeout's own CQE has user_data UD_IGNORE: it refers to
 *      nothing on the stack, is not counted in p->inflight, and may arrive
 *      before or after the operation's CQE, or after the goroutine moved on.
 *   3. The goroutine parks non-interruptibly (ring_wait_op's protocol): the
 *      only thing that ends the wait is the operation's own CQE, so the call
 *      returns only after the kernel has let go of the caller's buffer and
 *      the rop.  A deadline ends the wait through the link timeout (the
 *      operation completes with -ECANCELED), cancellation through the
 *      IORING_OP_ASYNC_CANCEL that cancel_interrupt() (sched.c) submits for
 *      g->io_op.
 *   4. -ECANCELED (or -EINTR from an io-wq worker that was interrupted) is
 *      translated: -ECANCELED if the goroutine is cancelled (cancellation
 *      wins), else -ETIMEDOUT when the deadline has passed, else -EBADF:
 *      the only other canceller is ringo_close() of the fd (below).  An
 *      operation that completed before the cancel or timeout hit keeps its
 *      result, so data that was read is never dropped.
 *
 * The cancel handshake.  ringo_cancel() stores cancel_id (seq_cst) and then
 * loads the park word; if it finds the goroutine not parked it leaves the
 * cancel for "the next blocking call".  A cancel that lands between step 1
 * and the park would thus be seen by nobody, and the operation could block
 * for ever.  So after park_prepare()'s seq_cst store of the park word,
 * ring_wait_op_on() (ring.c, shared with futex waits) loads cancel_id with seq_cst and, if set, queues the ASYNC_CANCEL itself
 * (behind the operation, in the same submit):
 *
 *        goroutine g                          ringo_cancel (any thread)
 *        -----------                          -------------------------
 *        park_prepare: store park (seq_cst)   store cancel_id (seq_cst)
 *        load cancel_id (seq_cst)   (A) <---> load park (seq_cst)      (B)
 *
 * At least one side sees the other's store: either g queues the cancel, or
 * the canceller sees g parked and has g's proc cancel g->io_op.  Both may
 * happen; the second cancel finds nothing (-ENOENT/-EALREADY) and its CQE
 * is ignored.
 *
 * Outside the runtime, or on a plain thread (no proc, or the proc's
 * scheduler loop rather than a goroutine), each call is the plain system
 * call with -errno.  File descriptors should be in blocking mode: io_uring
 * returns -EAGAIN at once for an O_NONBLOCK file that is not ready.
 *
 * ringo_close() is deliberately exempt from the deadline and cancellation
 * checks (as Go's Close is): a goroutine that timed out must still be able
 * to release its descriptors.
 *
 * Closing a descriptor that is in use.  An operation in flight holds its
 * own reference to the file, so close(2) alone would leave a goroutine
 * blocked on it for ever (and a listener listening).  As Go's Close does,
 * ringo_close() first ends every operation on the fd: each proc counts its
 * goroutines' operations per fd (fdops.c); procs other than the closer's
 * that have some get a task that submits IORING_OP_ASYNC_CANCEL with
 * IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL at once, and the closer
 * waits until every such cancel has been submitted; then its own proc's
 * cancel (if it has operations on the fd) and the close go in one submit,
 * in that order.  A cancel by fd matches requests by the file the fd names
 * when the cancel is issued, so every cancel must be issued before the
 * close: afterwards the number may already name a new file, whose
 * operations the cancel would end.  The cancelled operations complete with
 * -ECANCELED, which step 4 turns into -EBADF.
 *
 * The exception to one SQE per call: ringo_accept() without an address
 * buffer waits on its proc's multishot acceptor for the listener
 * (accept.c), parked interruptibly since it lends the kernel nothing; and
 * ringo_close() of a listener marked by it first cancels the acceptors
 * (those are requests of the runtime's, not goroutine operations, so the
 * counts above do not see them).
 *
 * Rejected.  An interruptible park (PARK_INTERRUPTIBLE) with the goroutine
 * timer for the deadline: it would resume the goroutine before the kernel
 * is done with the buffer, which then has to be copied or leaked.
 * Readiness polling plus a nonblocking system call (epoll style): two steps
 * and a system call per operation instead of one SQE in a batched enter.
 */
#include "config.h"

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ringo.h"

/* io_uring lengths are 32-bit; Linux itself caps one read or write at
 * MAX_RW_COUNT (INT_MAX rounded down to a page), so a larger n simply
 * becomes a short read or write, as with read(2). */
#define IO_MAX_LEN 0x7ffff000u

static inline unsigned io_len(size_t n)
{
    return n > IO_MAX_LEN ? IO_MAX_LEN : (unsigned)n;
}

/* The caller's goroutine, or NULL for the plain-system-call path. */
static inline struct rg *io_self(struct rproc **pp)
{
    struct rproc *p = tls_proc;
    *pp = p;
    return p ? p->cur : NULL;
}

/* An SQE for the caller's operation, with room for its link timeout. */
static struct io_uring_sqe *io_sqe(struct rproc *p, struct rg *g)
{
    ring_reserve(p, g->deadline != RINGO_NEVER ? 2 : 1);
    return ring_sqe(p);
}

/* Steps 2-4 of the design comment; sqe comes from io_sqe(). */
static int io_wait(struct rproc *p, struct rg *g, struct io_uring_sqe *sqe)
{
    struct __kernel_timespec ts;
    int64_t dl = g->deadline;

    if (dl != RINGO_NEVER) {
        /* ts is read by the kernel when the SQE is submitted, which happens
         * before the operation's CQE, while this frame is parked. */
        ts.tv_sec = dl / 1000000000;
        ts.tv_nsec = dl % 1000000000;
        sqe->flags |= IOSQE_IO_LINK;
        struct io_uring_sqe *t = ring_sqe(p); /* reserved by io_sqe() */
        io_uring_prep_link_timeout(t, &ts, IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data64(t, UD_IGNORE);
    }
    /* Counted for ringo_close (fdops.c).  openat's fd is a directory. */
    _Atomic uint32_t *busy = sqe->fd >= 0 && sqe->opcode != IORING_OP_OPENAT
                                 ? fdops_inc(p, sqe->fd) : NULL;
    int r = ring_wait_op_on(p, g, sqe, W_IO, NULL);
    if (busy)
        fdops_dec(busy);
    if (r == -ECANCELED || r == -EINTR) {
        if (g_cancelled(g))
            r = -ECANCELED;
        else if (dl != RINGO_NEVER && now_ns() >= dl)
            r = -ETIMEDOUT;
        else
            r = -EBADF; /* ended by ringo_close of its fd */
    }
    return r;
}

/* The common prologue: plain-call path, entry check, SQE. */
#define IO_BEGIN(plain)                                                    \
    struct rproc *p;                                                       \
    struct rg *g = io_self(&p);                                            \
    if (!g) {                                                              \
        long pr_ = (long)(plain);                                          \
        return pr_ < 0 ? -errno : pr_;                                     \
    }                                                                      \
    int chk_ = block_check(g);                                             \
    if (chk_)                                                              \
        return chk_;                                                       \
    struct io_uring_sqe *sqe = io_sqe(p, g)

ssize_t ringo_read(int fd, void *buf, size_t n)
{
    IO_BEGIN(read(fd, buf, n));
    io_uring_prep_read(sqe, fd, buf, io_len(n), (uint64_t)-1);
    return io_wait(p, g, sqe);
}

ssize_t ringo_write(int fd, const void *buf, size_t n)
{
    IO_BEGIN(write(fd, buf, n));
    io_uring_prep_write(sqe, fd, buf, io_len(n), (uint64_t)-1);
    return io_wait(p, g, sqe);
}

ssize_t ringo_pread(int fd, void *buf, size_t n, off_t off)
{
    if (off < 0)
        return -EINVAL; /* -1 would mean "current position" to io_uring */
    IO_BEGIN(pread(fd, buf, n, off));
    io_uring_prep_read(sqe, fd, buf, io_len(n), (uint64_t)off);
    return io_wait(p, g, sqe);
}

ssize_t ringo_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (off < 0)
        return -EINVAL;
    IO_BEGIN(pwrite(fd, buf, n, off));
    io_uring_prep_write(sqe, fd, buf, io_len(n), (uint64_t)off);
    return io_wait(p, g, sqe);
}

ssize_t ringo_readv(int fd, const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || iovcnt > IOV_MAX)
        return -EINVAL;
    IO_BEGIN(readv(fd, iov, iovcnt));
    io_uring_prep_readv(sqe, fd, iov, (unsigned)iovcnt, (uint64_t)-1);
    return io_wait(p, g, sqe);
}

ssize_t ringo_writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || iovcnt > IOV_MAX)
        return -EINVAL;
    IO_BEGIN(writev(fd, iov, iovcnt));
    io_uring_prep_writev(sqe, fd, iov, (unsigned)iovcnt, (uint64_t)-1);
    return io_wait(p, g, sqe);
}

ssize_t ringo_recv(int fd, void *buf, size_t n, int flags)
{
    IO_BEGIN(recv(fd, buf, n, flags));
    io_uring_prep_recv(sqe, fd, buf, n, flags);
    return io_wait(p, g, sqe);
}

ssize_t ringo_send(int fd, const void *buf, size_t n, int flags)
{
    IO_BEGIN(send(fd, buf, n, flags));
    io_uring_prep_send(sqe, fd, buf, n, flags);
    return io_wait(p, g, sqe);
}

ssize_t ringo_recvmsg(int fd, struct msghdr *msg, int flags)
{
    IO_BEGIN(recvmsg(fd, msg, flags));
    io_uring_prep_recvmsg(sqe, fd, msg, (unsigned)flags);
    return io_wait(p, g, sqe);
}

ssize_t ringo_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    IO_BEGIN(sendmsg(fd, msg, flags));
    io_uring_prep_sendmsg(sqe, fd, msg, (unsigned)flags);
    return io_wait(p, g, sqe);
}

ssize_t ringo_write_all(int fd, const void *buf, size_t n)
{
    const char *b = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t w = ringo_write(fd, b + done, n - done);
        if (w < 0)
            return w;
        if (w == 0)
            return -EIO; /* no progress: would loop for ever */
        done += (size_t)w;
    }
    return (ssize_t)n;
}

static int accept_single(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    IO_BEGIN(accept4(fd, addr, len, flags));
    io_uring_prep_accept(sqe, fd, addr, len, flags);
    return io_wait(p, g, sqe);
}

/* Without an address buffer, through the proc's multishot acceptor
 * (accept.c), unless it is turned off. */
int ringo_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    struct rproc *p;
    struct rg *g = io_self(&p);
    /* relaxed: a hint; a call that still sees 1 after a fallback only
     * finds out again */
    if (!g || addr || !load_relaxed(&rt.multishot_accept))
        return accept_single(fd, addr, len, flags);
    int chk = block_check(g);
    if (chk)
        return chk;
    int r = acc_accept(p, g, fd, flags);
    if (r == ACC_SINGLE)
        return accept_single(fd, addr, len, flags);
    if (r == ACC_FALLBACK) {
        r = accept_single(fd, addr, len, flags);
        if (r != -EINVAL)
            store_relaxed(&rt.multishot_accept, 0); /* the kernel lacks the flag */
    }
    return r;
}

int ringo_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    IO_BEGIN(connect(fd, addr, len));
    io_uring_prep_connect(sqe, fd, addr, len);
    return io_wait(p, g, sqe);
}

int ringo_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    IO_BEGIN(openat(dirfd, path, flags, mode));
    io_uring_prep_openat(sqe, dirfd, path, flags, mode);
    return io_wait(p, g, sqe);
}

int ringo_fsync(int fd)
{
    IO_BEGIN(fsync(fd));
    io_uring_prep_fsync(sqe, fd, 0);
    return io_wait(p, g, sqe);
}

static int plain_poll(int fd, short events)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    int r;
    do
        r = poll(&pfd, 1, -1);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : pfd.revents;
}

int ringo_poll(int fd, short events)
{
    IO_BEGIN(plain_poll(fd, events));
    io_uring_prep_poll_add(sqe, fd, (unsigned)(unsigned short)events);
    return io_wait(p, g, sqe);
}

/* A request to another proc: cancel every operation on fd, then count
 * down the closer's close_wait. */
struct close_task {
    struct rtask t;
    int fd;
    struct close_wait *cw;
};

static void close_cancel_run(struct rproc *q, struct rtask *t)
{
    struct close_task *ct = (struct close_task *)t;
    struct io_uring_sqe *c = ring_sqe(q);
    io_uring_prep_cancel_fd(c, ct->fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(c, UD_IGNORE);
    /* Submitted now: the cancel finds its operations by the file the fd
     * names when it is issued, which must be before the closer's close. */
    ring_flush(q);
    close_wait_done(ct->cw);
}

/* Have every other proc with operations on fd cancel them, and wait until
 * each has issued its cancel: in rounds of up to CLOSE_BATCH procs, so the
 * tasks fit on the closer's stack.  The run cannot end while the closer
 * waits, so no task is ever discarded. */
#define CLOSE_BATCH 8

static void close_cancel_remote(struct rproc *p, struct rg *g, int fd)
{
    struct close_task tasks[CLOSE_BATCH];
    struct rproc *targets[CLOSE_BATCH];
    unsigned i = 0;
    while (i < rt.nprocs) {
        unsigned n = 0;
        for (; i < rt.nprocs && n < CLOSE_BATCH; i++)
            if (rt.procs[i] != p && fdops_busy(rt.procs[i], fd))
                targets[n++] = rt.procs[i];
        if (n == 0)
            continue;
        struct close_wait cw = { .g = g };
        cw.token = park_prepare(g, W_IO, 0);
        store_relaxed(&g->wait_fd, fd); /* for ringo_dump */
        store_relaxed(&cw.pending, (int)n); /* published by proc_post_task's release */
        for (unsigned k = 0; k < n; k++) {
            tasks[k].t.run = close_cancel_run;
            tasks[k].t.discard = NULL;
            tasks[k].fd = fd;
            tasks[k].cw = &cw;
            proc_post_task(targets[k], &tasks[k].t);
        }
        park_commit(g, cw.token, 0);
    }
}

int ringo_close(int fd)
{
    /* A listener with multishot acceptors: end their requests first, or
     * the kernel keeps the socket (accept.c). */
    if (__builtin_expect(acc_fd_marked(fd), 0))
        acc_release_fd(fd);
    struct rproc *p;
    struct rg *g = io_self(&p);
    if (!g)
        return close(fd) < 0 ? -errno : 0;
    /* No block_check(): see the design comment. */
    if (fd >= 0 && rt.nprocs > 1)
        close_cancel_remote(p, g, fd);
    bool cancel_here = fd >= 0 && fdops_busy(p, fd);
    ring_reserve(p, cancel_here ? 2 : 1);
    if (cancel_here) {
        /* Issued before the close, in the same submit. */
        struct io_uring_sqe *c = ring_sqe(p);
        io_uring_prep_cancel_fd(c, fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(c, UD_IGNORE);
    }
    struct io_uring_sqe *sqe = ring_sqe(p);
    io_uring_prep_close(sqe, fd);
    return ring_wait_op(p, g, sqe, W_IO);
}
