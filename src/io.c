/*
 * io.c — POSIX-shaped blocking I/O for goroutines: each call is one io_uring
 * submission on the caller's proc, batched with the rest of the scheduler
 * round, that parks only the calling goroutine.
 *
 * One operation, start to end (io_wait()):
 *
 *   1. block_check(): a cancelled goroutine gets -ECANCELED, one past its
 *      deadline -ETIMEDOUT, and the operation is not attempted.
 *   2. The call is described as a struct eng_io and started (eng_start,
 *      engine.h) with a struct rop on the goroutine's stack as its record;
 *      on io_uring it is the call's only SQE, deadline or not.
 *   3. The goroutine parks non-interruptibly (io_wait):
 *      the only thing that ends the wait is the operation's own CQE, so the
 *      call returns only after the kernel has let go of the caller's buffer
 *      and the rop.  A finite deadline is an entry in the proc's timer heap
 *      (g->timer, armed by park_commit); if it fires while the operation is
 *      in flight, the proc submits an IORING_OP_ASYNC_CANCEL for it
 *      (op_deadline_fire, park.c).  Cancellation does the same through
 *      cancel_interrupt() (cancel.c) for g->io_op.  Most deadlines never fire
 *      (a keep-alive read gets its request): those cost a heap insert and
 *      removal, no SQE, no CQE and no kernel timer.
 *   4. -ECANCELED (or -EINTR from an io-wq worker that was interrupted) is
 *      translated: -ECANCELED if the goroutine is cancelled (cancellation
 *      wins), else -ETIMEDOUT when the deadline has passed, else -EBADF:
 *      the only other canceller is ringo_close() of the fd (below).  An
 *      operation that completed before the cancel hit keeps its result, so
 *      data that was read is never dropped; a cancelled read took no data,
 *      which the next read returns.
 *
 * The cancel handshake.  ringo_cancel() stores cancel_id (seq_cst) and then
 * loads the park word; if it finds the goroutine not parked it leaves the
 * cancel for "the next blocking call".  A cancel that lands between step 1
 * and the park would thus be seen by nobody, and the operation could block
 * for ever.  So after park_prepare()'s store of the park word and barrier,
 * io_wait() loads cancel_id with seq_cst and, if set,
 * queues the ASYNC_CANCEL itself (behind the operation, in the same
 * submit):
 *
 *        goroutine g                          ringo_cancel (any thread)
 *        -----------                          -------------------------
 *        park_prepare: store park; smp_mb()   store cancel_id (seq_cst)
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
 * Closing a descriptor that is in use: close.c.
 *
 * The exception to one SQE per call: ringo_accept() without an address
 * buffer waits on its proc's multishot acceptor for the listener
 * (accept.c), parked interruptibly since it lends the kernel nothing; and
 * ringo_close() of a listener marked by it first cancels the acceptors
 * (those are requests of the runtime's, not goroutine operations, so the
 * counts above do not see them).
 *
 * Rejected.  An IORING_OP_LINK_TIMEOUT linked to every operation with a
 * deadline: two SQEs and two CQEs per call and a kernel hrtimer armed and
 * cancelled each time, for a deadline that almost never fires (it cost
 * examples/httpd 20-30% of its requests per second).  An interruptible park (PARK_INTERRUPTIBLE) with the goroutine
 * timer for the deadline: it would resume the goroutine before the kernel
 * is done with the buffer, which then has to be copied or leaked.
 * Readiness polling plus a nonblocking system call (epoll style): two steps
 * and a system call per operation instead of one SQE in a batched enter.
 */
#include "config.h"

#include "internal.h"
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>
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

/* io_wait's answers when the call is to be made again, never values a
 * system call returns: IO_AGAIN, a change of its descriptor's deadline
 * ended the operation in the kernel (fddeadline.c); IO_RESTART, the
 * operation never reached the kernel (a close of its fd was in progress,
 * close.c "Closing marks"). */
#define IO_AGAIN   (-0x7fff1000)
#define IO_RESTART (-0x7fff1001)

/* A recv or send with MSG_WAITALL that a cancel meant for something else
 * cut short (io_wait): its count is in tls_io_part, and the call goes on
 * for the rest (recv_waitall, send_waitall).  The goroutine does not park
 * between the two, so it is on the same thread. */
#define IO_REST    (-0x7fff1002)
static __thread int tls_io_part __attribute__((tls_model("initial-exec")));

/* io is a receive or send that waits for all it asks (MSG_WAITALL), the
 * way io_uring's recv and send go on after a first piece: a recv, a send,
 * or a recvmsg without a control buffer, or a sendmsg (with a control
 * buffer, or with MSG_PEEK, a receive's engine flags lack MSG_WAITALL:
 * io_recv_flags, io_recvmsg_flags). */
static inline bool io_waitall(const struct eng_io *io)
{
    return (io->kind == ENG_RECV || io->kind == ENG_RECVMSG || io->kind == ENG_SEND ||
            io->kind == ENG_SENDMSG) &&
           (io->flags & (MSG_WAITALL | MSG_DONTWAIT | MSG_PEEK)) == MSG_WAITALL;
}

/* Whether fd is a socket whose receives and sends MSG_WAITALL makes wait
 * for all they ask: a stream's or a SOCK_SEQPACKET socket's, the two
 * io_uring's recv and send go on for (and the epoll engine's,
 * ep_waitall).  A datagram socket's receive is one datagram, MSG_WAITALL
 * or not (recv(2)): one that came back short was not cut short.  Asked
 * only of a call that came back short while a cancel by descriptor was
 * made (io_wait): a system call off the common path. */
static __attribute__((noinline)) bool io_fd_waits_all(int fd)
{
    int type = 0;
    socklen_t tl = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
           (type == SOCK_STREAM || type == SOCK_SEQPACKET);
}

/* What such a call asks for: its length, or its vector's, capped as
 * one call's count is (io_len). */
static size_t io_waitall_len(const struct eng_io *io)
{
    if (io->kind == ENG_RECV || io->kind == ENG_SEND)
        return io->len;
    const struct msghdr *m = io->u.cmsg;
    size_t n = 0;
    for (size_t i = 0; i < m->msg_iovlen && n < IO_MAX_LEN; i++)
        n += m->msg_iov[i].iov_len;
    return n < IO_MAX_LEN ? n : IO_MAX_LEN;
}

/* The deadline of an operation: the goroutine's, or its descriptor's for
 * the directions it goes in (RINGO_READ/RINGO_WRITE; 0: the goroutine's
 * only), whichever is earlier.  *seq receives the descriptor's sequence
 * word (fddeadline.c). */
static inline int64_t io_deadline(struct rg *g, int fd, int dirs, uint32_t *seq)
{
    int64_t d = g_run(g)->deadline;
    /* With no direction (fsync, a poll for hang-up only), no deadline of
     * fd's (fdl_get answers RINGO_NEVER), but its sequence word all the
     * same: a close ends these operations too. */
    int64_t f = fdl_get(fd, dirs, seq);
    return f < d ? f : d;
}

/* Step 1: -ECANCELED, -ETIMEDOUT, or 0 to go ahead: block_check's, for
 * the earlier of the goroutine's and the descriptor's deadline, with one
 * look at the clock, and that the coarse one unless the deadline is near
 * (timer.c "Reading the clock less"). */
static inline int io_check(struct rg *g, int fd, int dirs)
{
    if (g_cancelled(g))
        return -ECANCELED;
    uint32_t seq;
    int64_t d = dirs ? io_deadline(g, fd, dirs, &seq) : g_run(g)->deadline;
    return d != RINGO_NEVER && deadline_passed(d) ? -ETIMEDOUT : 0;
}

/* Steps 2-4 of the design comment: io, started as the call's only
 * operation.  Returns the result, IO_AGAIN or IO_RESTART; or, when
 * waitall says io is a MSG_WAITALL receive or send (io_waitall, computed
 * by the caller where it folds to a constant), IO_REST.
 *
 * Inlined into every call: a parked goroutine's frames are read back
 * when it resumes (saved registers, return addresses), and with many
 * goroutines taking turns each line of them is a cache miss.  As a frame
 * of its own, io_wait sat between the call's frame and park_commit's with
 * 208 bytes and six saved registers; merged, the call's frame grows by
 * less.  callgrind on tests/bench/httpd at -c1000, one proc, 512 KiB L2
 * simulated: 34.4 L2 misses per request as a call, 30.3 inlined, and 30
 * fewer instructions; the library's text grows by 13 KiB. */
static inline __attribute__((always_inline)) int io_wait(struct rproc *p, struct rg *g,
                                                         const struct eng_io *io, int dirs,
                                                         bool waitall)
{
    int fd = io->fd;
    /* Not an initializer: the epoll engine's fields are set by eng_try
     * where it runs, and zeroing them would cost io_uring's path. */
    struct rop op;
    op.rec.done = rop_done;
    op.g = g;
    op.res = 0;
    op.futex_wait = false;
    /* On epoll, the call made at once (engine.h); on io_uring, ENG_WAIT. */
    int now = eng_try(p, &op, io);
    if (now != ENG_WAIT)
        return now;
    /* Counted for ringo_close and fd deadlines (fdops.c).  openat's fd is
     * a directory. */
    _Atomic uint32_t *busy = fd >= 0 && io->kind != ENG_OPENAT ? fdops_inc(p, fd) : NULL;
    /* park_prepare's barrier is (A) of two handshakes: the cancel one (the
     * load of cancel_id below) and the fd deadline one (fdl_get in
     * io_deadline, fddeadline.c), both against stores made before it. */
    op.token = park_prepare(g, W_IO, 0);
    /* A close of fd in progress on another proc (close.c "Closing marks";
     * park_prepare's barrier is (B) there too): the operation is not
     * started; this wait ends before it began (our own claim), and the
     * call starts again once the close is done: it then fails with
     * -EBADF, or works on whatever file a later open gave the number, as
     * after close(2). */
    _Atomic uint32_t *mark = busy && rt.nprocs > 1 ? fdclose_look(fd) : NULL;
    if (__builtin_expect(mark != NULL, 0)) {
        claim(g, op.token);
        fdops_dec(busy);
        /* A recv with MSG_WAITALL whose call on epoll took a first piece
         * returns it: its bytes are in the buffer, and the call must not
         * be made again over them (engine_epoll.c ep_ended). */
        if (eng_epoll() && op.ep_done)
            return (int)op.ep_done;
        fdclose_wait(mark);
        return IO_RESTART;
    }
    store_relaxed(&g_run(g)->wait_fd, fd); /* for ringo_dump, relaxed as in park_prepare */
    eng_start(p, io, &op);
    owner_add(p->inflight, 1);
    /* Cancellation and the deadline end the operation through
     * eng_cancel of g->io_op (cancel_interrupt in cancel.c; the timer
     * park_commit arms at wake_at: op_deadline_fire). */
    g_wait(g)->io_op = &op;
    uint32_t seq;
    g_run(g)->wake_at = io_deadline(g, fd, dirs, &seq);
    /* The cancels by descriptor this proc makes from here on: one of them
     * may cut a MSG_WAITALL receive or send short (below). */
    uint32_t cancels = waitall ? load_relaxed(&p->fd_cancels) : 0;
    /* The load half of the cancel handshake for I/O (see the top): a
     * ringo_cancel that saw the park word still CLAIMED (we were running)
     * did not ask for an ASYNC_CANCEL, so we must see its cancel_id here
     * and ask ourselves.  The op's own CQE still ends the wait. */
    if (load_seqcst(&g->cancel_id) == load_relaxed(&g->id))
        eng_cancel_op(p, &op);
    tsan_io_release(); /* I/O orders like TSan's read/write (tsan.h) */
    struct vg_io vg;
    if (rt.valgrind)
        vg_io_start(&vg, io);
    park_commit(g, op.token, 0);
    tsan_io_acquire();
    if (rt.valgrind && op.res > 0)
        vg_io_done(&vg, op.res); /* engine_uring.c "Valgrind" */
    g_wait(g)->io_op = NULL;
    int r = op.res;
    if (busy)
        fdops_dec(busy);
    if (__builtin_expect(r == ENG_CLOSING, 0)) {
        /* Refused by the epoll engine's helpers: a close of fd is under
         * way (offload.c "Engine jobs and ringo_close").  Made again once
         * it is done; a closer that may be parked meanwhile has marked
         * fd (close.c), and with none left the close is over. */
        _Atomic uint32_t *m = fdclose_look(fd);
        if (m)
            fdclose_wait(m);
        return IO_RESTART;
    }
    if (__builtin_expect(waitall && r > 0, 0) && load_relaxed(&p->fd_cancels) != cancels &&
        (size_t)r < io_waitall_len(io) && io_fd_waits_all(fd)) {
        /* A MSG_WAITALL receive or send with a first piece, which a cancel by
         * descriptor may have cut short: one made for a change of its
         * deadline, or for another descriptor of the same file (as
         * below).  Unless the deadline has passed, or a cancel or a close
         * ended it, it goes on for the rest, as it would have without
         * the cancel (recv_waitall, send_waitall); were it the end of the
         * stream or an error instead, the next call finds that at once. */
        uint32_t now_seq;
        int64_t d = io_deadline(g, fd, dirs, &now_seq);
        if (!g_cancelled(g) && (d == RINGO_NEVER || now_ns() < d) &&
            !fdl_maybe_closed(seq, now_seq)) {
            tls_io_part = r;
            return IO_REST;
        }
    }
    if (r == -ECANCELED || r == -EINTR) {
        uint32_t now_seq;
        int64_t d = io_deadline(g, fd, dirs, &now_seq);
        if (g_cancelled(g))
            r = -ECANCELED;
        else if (d != RINGO_NEVER && now_ns() >= d)
            r = -ETIMEDOUT;
        else if (fdl_maybe_closed(seq, now_seq))
            r = -EBADF; /* ended by ringo_close of its fd */
        else
            r = IO_AGAIN; /* its fd's deadline changed, or a dup's: make it again */
    }
    return r;
}

/* One call: the plain system call outside the runtime; else, until it is
 * not to be made again (IO_AGAIN, IO_RESTART), step 1 and io_wait of the
 * operation the designated initializers in the variable arguments
 * describe (struct eng_io). */
#define IO_CALL(plain, fd_, dirs_, ...)                                    \
    do {                                                                   \
        struct rproc *p;                                                   \
        struct rg *g = io_self(&p);                                        \
        if (!g) {                                                          \
            long pr_ = (long)(plain);                                      \
            return pr_ < 0 ? -errno : pr_;                                 \
        }                                                                  \
        const struct eng_io io_ = { __VA_ARGS__ };                         \
        /* Here, where the initializer makes it constant for most calls:  \
         * once io_'s address has gone to a call, the compiler loads it    \
         * again. */                                                       \
        const bool waitall_ = io_waitall(&io_);                       \
        for (;;) {                                                         \
            int chk_ = io_check(g, (fd_), (dirs_));                        \
            if (chk_)                                                      \
                return chk_;                                               \
            int r_ = io_wait(p, g, &io_, (dirs_), waitall_);              \
            if (r_ != IO_AGAIN && r_ != IO_RESTART)                        \
                return r_;                                                 \
        }                                                                  \
    } while (0)

ssize_t ringo_read(int fd, void *buf, size_t n)
{
    IO_CALL(read(fd, buf, n), fd, RINGO_READ,
            .kind = ENG_READ, .fd = fd, .u.buf = buf, .len = io_len(n), .off = (uint64_t)-1);
}

ssize_t ringo_write(int fd, const void *buf, size_t n)
{
    IO_CALL(write(fd, buf, n), fd, RINGO_WRITE,
            .kind = ENG_WRITE, .fd = fd, .u.cbuf = buf, .len = io_len(n), .off = (uint64_t)-1);
}

ssize_t ringo_pread(int fd, void *buf, size_t n, off_t off)
{
    if (off < 0)
        return -EINVAL; /* -1 would mean "current position" to io_uring */
    IO_CALL(pread(fd, buf, n, off), fd, RINGO_READ,
            .kind = ENG_READ, .fd = fd, .u.buf = buf, .len = io_len(n), .off = (uint64_t)off);
}

ssize_t ringo_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (off < 0)
        return -EINVAL;
    IO_CALL(pwrite(fd, buf, n, off), fd, RINGO_WRITE,
            .kind = ENG_WRITE, .fd = fd, .u.cbuf = buf, .len = io_len(n), .off = (uint64_t)off);
}

ssize_t ringo_readv(int fd, const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || iovcnt > IOV_MAX)
        return -EINVAL;
    IO_CALL(readv(fd, iov, iovcnt), fd, RINGO_READ,
            .kind = ENG_READV, .fd = fd, .u.iov = iov, .len = (unsigned)iovcnt, .off = (uint64_t)-1);
}

ssize_t ringo_writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || iovcnt > IOV_MAX)
        return -EINVAL;
    IO_CALL(writev(fd, iov, iovcnt), fd, RINGO_WRITE,
            .kind = ENG_WRITEV, .fd = fd, .u.iov = iov, .len = (unsigned)iovcnt, .off = (uint64_t)-1);
}

/* The flags a receive gives the engine: the caller's, less MSG_WAITALL
 * beside MSG_PEEK.  io_uring's recv goes on after a first piece into the
 * buffer past it, and a peek there takes the queue from its start again:
 * the bytes of the first piece twice, counted as new.  Without it the
 * peek returns what is queued, at least a byte, as the epoll engine's
 * calls (which do not wait) do; the plain system call keeps the flag. */
static inline int io_recv_flags(int flags)
{
    return (flags & MSG_PEEK) ? flags & ~MSG_WAITALL : flags;
}

/* eflags: the engine's (io_recv_flags), flags the plain call's. */
static inline __attribute__((always_inline)) ssize_t recv_once(int fd, void *buf, size_t n, int flags,
                                                               int eflags)
{
    IO_CALL(recv(fd, buf, n, flags), fd, RINGO_READ,
            .kind = ENG_RECV, .fd = fd, .u.buf = buf, .len = io_len(n), .flags = eflags);
}

/* A receive with MSG_WAITALL: one that a cancel meant for something else
 * cut short (IO_REST) goes on past what came.  What ends the rest (the
 * end of the stream, an error, the deadline) returns what came before
 * it, as the whole call would have. */
static __attribute__((noinline)) ssize_t recv_waitall(int fd, char *buf, size_t n, int flags)
{
    ssize_t r = recv_once(fd, buf, n, flags, io_recv_flags(flags));
    if (__builtin_expect(r != IO_REST, 1))
        return r;
    size_t got = 0;
    do {
        got += (size_t)tls_io_part;
        r = recv_once(fd, buf + got, n - got, flags, flags); /* not a peek (io_waitall) */
    } while (r == IO_REST);
    return r > 0 ? (ssize_t)(got + (size_t)r) : (ssize_t)got;
}

ssize_t ringo_recv(int fd, void *buf, size_t n, int flags)
{
    if (__builtin_expect(flags & MSG_WAITALL, 0))
        return recv_waitall(fd, buf, n, flags);
    /* The bit known clear: io_wait's checks for MSG_WAITALL fold away. */
    return recv_once(fd, buf, n, flags & ~MSG_WAITALL, flags & ~MSG_WAITALL);
}

static inline __attribute__((always_inline)) ssize_t send_once(int fd, const void *buf, size_t n,
                                                               int flags)
{
    IO_CALL(send(fd, buf, n, flags), fd, RINGO_WRITE,
            .kind = ENG_SEND, .fd = fd, .u.cbuf = buf, .len = io_len(n), .flags = flags);
}

/* A send with MSG_WAITALL: as recv_waitall, the rest past what went. */
static __attribute__((noinline)) ssize_t send_waitall(int fd, const char *buf, size_t n, int flags)
{
    ssize_t r = send_once(fd, buf, n, flags);
    if (__builtin_expect(r != IO_REST, 1))
        return r;
    size_t got = 0;
    do {
        got += (size_t)tls_io_part;
        r = send_once(fd, buf + got, n - got, flags);
    } while (r == IO_REST);
    return r > 0 ? (ssize_t)(got + (size_t)r) : (ssize_t)got;
}

ssize_t ringo_send(int fd, const void *buf, size_t n, int flags)
{
    if (__builtin_expect(flags & MSG_WAITALL, 0))
        return send_waitall(fd, buf, n, flags);
    /* The bit known clear, as in ringo_recv: the checks fold away. */
    return send_once(fd, buf, n, flags & ~MSG_WAITALL);
}

/* A recvmsg's engine flags: as a recv's (io_recv_flags), and without
 * MSG_WAITALL beside a control buffer too.  io_uring's recvmsg returns
 * the first piece then (a later piece's ancillary data, say descriptors
 * passed, would have nowhere to go), as it decides from the length the
 * caller gives; the epoll engine, whose first call the kernel answers by
 * setting that length to the ancillary data received (often none), could
 * not tell afterwards (engine_epoll.c ep_waitall). */
static inline int io_recvmsg_flags(const struct msghdr *msg, int flags)
{
    return msg && msg->msg_controllen ? flags & ~MSG_WAITALL : io_recv_flags(flags); /* NULL: -EFAULT */
}

/* As recv_once. */
static inline __attribute__((always_inline)) ssize_t recvmsg_once(int fd, struct msghdr *msg, int flags,
                                                                  int eflags)
{
    IO_CALL(recvmsg(fd, msg, flags), fd, RINGO_READ,
            .kind = ENG_RECVMSG, .fd = fd, .u.msg = msg, .flags = eflags);
}

static inline __attribute__((always_inline)) ssize_t sendmsg_once(int fd, const struct msghdr *msg,
                                                                  int flags)
{
    IO_CALL(sendmsg(fd, msg, flags), fd, RINGO_WRITE,
            .kind = ENG_SENDMSG, .fd = fd, .u.cmsg = msg, .flags = flags);
}

/* The rest of a recvmsg or sendmsg with MSG_WAITALL that a cancel cut
 * short (IO_REST): as recv_waitall, into or from the vector past what
 * moved (a copy of it, on the heap past a few entries), without a name (a
 * stream's peer has none to give, and a stream is connected) or ancillary
 * data (a receive's has nowhere to go; a send's went with its first byte,
 * as io_uring's sendmsg sends the rest without it).  No memory for the
 * copy: what moved. */
#define MSG_REST_IOV 8

static __attribute__((noinline)) ssize_t msg_waitall_rest(int fd, const struct msghdr *msg, int flags,
                                                          bool send)
{
    struct iovec small[MSG_REST_IOV];
    struct iovec *v = small;
    if (msg->msg_iovlen > MSG_REST_IOV && !(v = malloc(msg->msg_iovlen * sizeof *v)))
        return tls_io_part;
    size_t got = 0;
    ssize_t r;
    do {
        got += (size_t)tls_io_part;
        struct msghdr m = { .msg_iov = v, .msg_iovlen = eng_iov_past(msg->msg_iov, msg->msg_iovlen, got, v) };
        /* not a peek (io_waitall) */
        r = send ? sendmsg_once(fd, &m, flags) : recvmsg_once(fd, &m, flags, flags);
    } while (r == IO_REST);
    if (v != small)
        free(v);
    return r > 0 ? (ssize_t)(got + (size_t)r) : (ssize_t)got;
}

static __attribute__((noinline)) ssize_t recvmsg_waitall(int fd, struct msghdr *msg, int flags)
{
    ssize_t r = recvmsg_once(fd, msg, flags, io_recvmsg_flags(msg, flags));
    return __builtin_expect(r != IO_REST, 1) ? r : msg_waitall_rest(fd, msg, flags, false);
}

ssize_t ringo_recvmsg(int fd, struct msghdr *msg, int flags)
{
    if (__builtin_expect(flags & MSG_WAITALL, 0))
        return recvmsg_waitall(fd, msg, flags);
    return recvmsg_once(fd, msg, flags & ~MSG_WAITALL, flags & ~MSG_WAITALL); /* as ringo_recv */
}

static __attribute__((noinline)) ssize_t sendmsg_waitall(int fd, const struct msghdr *msg, int flags)
{
    ssize_t r = sendmsg_once(fd, msg, flags);
    return __builtin_expect(r != IO_REST, 1) ? r : msg_waitall_rest(fd, msg, flags, true);
}

ssize_t ringo_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (__builtin_expect(flags & MSG_WAITALL, 0))
        return sendmsg_waitall(fd, msg, flags);
    return sendmsg_once(fd, msg, flags & ~MSG_WAITALL); /* as ringo_send */
}

/* A write of nothing: the entry check every blocking call makes (the
 * goroutine's cancel, its deadline and fd's write deadline), and no system
 * call.  Also ringo_writev_all's and ringo_send_all's (bufio.c). */
static __attribute__((noinline)) ssize_t write_nothing(int fd)
{
    struct rproc *p;
    struct rg *g = io_self(&p);
    return g ? io_check(g, fd, RINGO_WRITE) : 0;
}

ssize_t ringo_write_all(int fd, const void *buf, size_t n)
{
    if (__builtin_expect(n == 0, 0))
        return write_nothing(fd);
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
    IO_CALL(accept4(fd, addr, len, flags), fd, RINGO_READ,
            .kind = ENG_ACCEPT, .fd = fd, .u.addr = addr, .alen = len, .flags = flags);
}

/* The peer of a descriptor from an acceptor, for a caller that asked for
 * its address; a peer already gone is the -ECONNABORTED accept4(2) gives. */
static int acc_peer(int c, struct sockaddr *addr, socklen_t *len)
{
    if (getpeername(c, addr, len) == 0)
        return c;
    int err = errno;
    close(c);
    return err == ENOTCONN ? -ECONNABORTED : -err;
}

/* Without an address buffer, through the proc's multishot acceptor
 * (accept.c), unless it is turned off.  With one, through the acceptor
 * too when this proc already has one for the listener: its armed request
 * takes the connections, which a single-shot accept beside it would wait
 * for in vain; the address then comes from getpeername(2). */
static int accept_any(struct rproc *p, struct rg *g, int fd, struct sockaddr *addr,
                      socklen_t *len, int flags)
{
    /* relaxed: a hint; a call that still sees 1 after a fallback only
     * finds out again */
    if (!g || !load_relaxed(&rt.multishot_accept) || (addr && !acc_has(p, fd, flags)))
        return accept_single(fd, addr, len, flags);
    int r;
    for (bool again = false;; again = true) {
        int chk = io_check(g, fd, RINGO_READ);
        if (chk) {
            if (again) /* woken to wait again, it leaves: the last waiter? */
                acc_left(p, fd, flags);
            return chk;
        }
        r = acc_accept(p, g, fd, flags);
        if (r != ACC_AGAIN) /* ACC_AGAIN: its deadline changed */
            break;
    }
    if (r == ACC_SINGLE)
        return accept_single(fd, addr, len, flags);
    if (r == ACC_FALLBACK) {
        r = accept_single(fd, addr, len, flags);
        if (r != -EINVAL)
            store_relaxed(&rt.multishot_accept, 0); /* the kernel lacks the flag */
        return r;
    }
    return r >= 0 && addr ? acc_peer(r, addr, len) : r;
}

int ringo_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    /* As accept4(2) checks them, before the descriptor: the same answer
     * on either engine, and no acceptor made for flags that fail. */
    if (flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK))
        return -EINVAL;
    struct rproc *p;
    struct rg *g = io_self(&p);
    int r = accept_any(p, g, fd, addr, len, flags);
    if (g && r >= 0)
        eng_fd_accepted(fd, r); /* ours until ringo_close (engine.h) */
    return r;
}

/* A connect that a change of the fd's deadline cancelled, issued again,
 * found the first still in progress in the kernel (-EALREADY): wait for
 * it as for a non-blocking connect(2), writability and then SO_ERROR. */
static int connect_finish(int fd)
{
    int r = ringo_poll(fd, POLLOUT);
    if (r < 0)
        return r;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

int ringo_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct rproc *p;
    struct rg *g = io_self(&p);
    if (!g)
        return connect(fd, addr, len) < 0 ? -errno : 0;
    int r;
    bool again = false;
    for (;;) {
        r = io_check(g, fd, RINGO_WRITE);
        if (r)
            return r;
        const struct eng_io io = { .kind = ENG_CONNECT, .fd = fd, .u.caddr = addr, .len = len };
        r = io_wait(p, g, &io, RINGO_WRITE, false);
        if (r == IO_RESTART)
            continue; /* never issued: issue it now */
        if (r != IO_AGAIN)
            break;
        /* Ended by a change of the fd's deadline: the connect may have
         * gone on in the kernel, or have been stopped before it began (an
         * AF_UNIX listener's full backlog).  Issued again, it tells. */
        again = true;
    }
    if (again && r == -EISCONN)
        return 0; /* the first one completed */
    if (again && r == -EALREADY)
        return connect_finish(fd);
    return r;
}

static int openat_call(int dirfd, const char *path, int flags, mode_t mode)
{
    IO_CALL(openat(dirfd, path, flags, mode), dirfd, 0,
            .kind = ENG_OPENAT, .fd = dirfd, .u.path = path, .flags = flags, .len = mode);
}

int ringo_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    /* A relative path names its directory by number, which the request
     * (or the epoll engine's helper) resolves only when it runs: a
     * ringo_close of dirfd waits until the call is over (close.c
     * "Directories"), or this call waits for the close. */
    if (dirfd < 0 || !path || path[0] == '/' || !tls_proc || !tls_proc->cur)
        return openat_call(dirfd, path, flags, mode);
    _Atomic uint32_t *word;
    int r = fdclose_dir_enter(dirfd, &word);
    if (r)
        return r;
    r = openat_call(dirfd, path, flags, mode);
    fdclose_dir_exit(word);
    return r;
}

int ringo_fsync(int fd)
{
    IO_CALL(fsync(fd), fd, 0, .kind = ENG_FSYNC, .fd = fd);
}

static int plain_poll(int fd, short events)
{
    if (fd < 0) { /* poll(2) would skip it, and wait for ever */
        errno = EBADF;
        return -1;
    }
    struct pollfd pfd = { .fd = fd, .events = events };
    int r;
    do
        r = poll(&pfd, 1, -1);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : pfd.revents;
}

/* Which deadlines a poll honours: the read one for input, the write one
 * for output. */
static int poll_dirs(short events)
{
    int d = 0;
    if (events & (POLLIN | POLLPRI | POLLRDHUP))
        d |= RINGO_READ;
    if (events & POLLOUT)
        d |= RINGO_WRITE;
    return d;
}

static int poll_call(int fd, short events)
{
    IO_CALL(plain_poll(fd, events), fd, poll_dirs(events),
            .kind = ENG_POLL, .fd = fd, .len = (unsigned short)events);
}

int ringo_poll(int fd, short events)
{
    int r = poll_call(fd, events);
    /* A descriptor that is not open: poll(2) and the epoll engine's poll
     * say POLLNVAL, io_uring's -EBADF; ringo_poll says -EBADF. */
    if (r > 0 && (r & POLLNVAL))
        return -EBADF;
    /* As poll(2): what was asked for, and the conditions always reported.
     * IORING_OP_POLL_ADD also wakes for POLLRDHUP, asked for or not (the
     * kernel's IO_POLL_UNMASK), and reports it beside the others; alone,
     * it is returned as it is: polling again would find it at once, for
     * as long as it lasts. */
    int asked = r > 0 ? r & (events | POLLERR | POLLHUP) : 0;
    return asked ? asked : r;
}
