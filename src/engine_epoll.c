/*
 * engine_epoll.c — the engine for hosts that refuse io_uring (a container's
 * default seccomp profile, kernel.io_uring_disabled): non-blocking system
 * calls, an epoll instance per proc for readiness, and the offload pool's
 * threads for what readiness cannot tell.  Go's netpoller is the model.
 *
 * One operation (io.c io_wait, through engine.h):
 *
 *   1. ep_try makes the call at once without blocking: recv/send/recvmsg/
 *      sendmsg with MSG_DONTWAIT, read/write and their vector and
 *      positioned forms with preadv2/pwritev2(RWF_NOWAIT), which sockets,
 *      pipes and the page cache honour, accept4 on a listener put in
 *      non-blocking mode, connect on a socket made non-blocking for the
 *      call, poll with a zero timeout.  Most calls of a busy server end
 *      here, with no park, no epoll call and no wake: a result, or an
 *      error, is returned at once.  (A read of a TCP socket of ours that
 *      an earlier read found empty goes straight to step 2: "Drained".)
 *   2. -EAGAIN: the goroutine parks as on io_uring (io_wait: counted per
 *      fd, deadline timer, cancel handshake) and ep_start puts its rop on
 *      its descriptor's list in this proc's table (struct ep_fd).  A
 *      descriptor the runtime made is registered with this proc's epoll
 *      set once, edge-triggered ("Registered once", below): the wait
 *      costs no system call.  Any other is armed for the readiness the
 *      list waits for: one epoll_ctl, EPOLLONESHOT, so a wake for a
 *      goroutine that has gone does not repeat and the descriptor needs
 *      no removal.  Arming checks readiness, so data that came after
 *      step 1 is not missed.
 *   3. Readiness: the proc (ep_poll, in its scheduler loop) makes the call
 *      of each waiting rop that the event concerns again, on the
 *      goroutine's behalf, into the goroutine's own buffer (the goroutine
 *      stays parked until its rop completes, as on io_uring), and
 *      completes those that did not get -EAGAIN; the others wait on (for
 *      the next edge, or armed one-shot again).
 *   4. The deadline and ringo_cancel end the wait through eng_cancel_op:
 *      the rop leaves its list and completes with -ECANCELED, which io.c
 *      translates as it does on io_uring.  No buffer is lent to the
 *      kernel, so the wait ends at once.  ringo_close's eng_cancel_fd ends
 *      every rop on the descriptor the same way and removes it from the
 *      epoll set.
 *
 * What readiness cannot tell goes to the offload pool (offload_io): a
 * file that epoll refuses (EPERM: regular files and directories) or that
 * cannot do a non-blocking read or write (EOPNOTSUPP: some character
 * devices), openat and fsync.  The helper makes the blocking call and the
 * completion comes back as a task; such an operation, like one in flight
 * on io_uring, ends only when the call returns.
 *
 * Completions are dispatched only from ep_poll (and a helper's completion
 * task), never while an operation is started or cancelled: eng_cancel_op
 * and a try that fails to arm put the rop on p->ep_done, which the next
 * poll empties.  eng_cq_ready (internal.h) tells the scheduler it must not
 * sleep meanwhile.
 *
 * Waking another proc: its eventfd, which its epoll set watches.  Timers:
 * the epoll wait's timeout (epoll_pwait2's nanoseconds where the kernel
 * has it, else milliseconds rounded up).
 *
 * Registered once.  A one-shot MOD is a system call per wait that
 * blocks: for a keep-alive server, one per request, beside the recv that
 * said -EAGAIN, the one that reads and the send.  Go's netpoller
 * registers each descriptor once, edge-triggered, for every readiness
 * (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET), and a wait then costs no
 * system call.  It can because Go owns every descriptor it polls and
 * removes it at its close.  ringo owns only the descriptors it made for
 * a goroutine (ringo_accept, ringo_tcp_listen, ringo_tcp_dial: eng_fd_-
 * created), which the program closes with ringo_close (eng_fd_closing);
 * the program may close(2) one of its own behind ringo's back and get
 * the number again for a new file, which a registration left in a
 * proc's table under that number would never report.  So:
 *
 *   - ep_own: a word per number for the run, odd while it names a file
 *     the runtime made and has not closed, its generation one more at
 *     each creation and each close.  A proc's struct ep_fd keeps the word
 *     it registered edge-triggered for (f->et).  A wait on an owned
 *     number whose word is f->et costs nothing; a different word (a new
 *     file of ours under the number, or the first wait on this proc)
 *     registers it, with MOD, or ADD where MOD says ENOENT (the old file
 *     is gone).  Procs that registered the old file and have no waiter
 *     on it are not told of a close: the new word tells them.
 *   - Any other number is armed one-shot as before, f->et cleared: a
 *     stale registration of ours that the kernel dropped at the file's
 *     last close is found by MOD's ENOENT.
 *
 * The edge is not lost between the try and the park.  Edge-triggered
 * epoll queues an event on the set's ready list when the file's
 * readiness grows (data, room, hang-up) and takes it off when epoll_wait
 * reports it; a waiter must have made its call after the last report it
 * may miss.  All of a proc's table is its own thread's, and nothing polls
 * the set between a try and its park (io_wait: eng_try, then eng_start
 * at once; a close in progress sends it back to the try):
 *
 *     proc P (goroutine g, then the scheduler)     the peer
 *     ep_try: recv -> -EAGAIN
 *                                                  send: data, edge E queued
 *     ep_start: g's rop on f's list (no syscall)
 *     ep_wait: takes E
 *     ep_ready: g's recv again -> data, g completes
 *
 * Had E come before the try, the try finds the data, or E was taken by
 * an earlier ep_wait and its data is what the try read.  A waiter whose
 * call says -EAGAIN again in ep_ready made it after E was taken, so the
 * next growth queues a new edge.  Every waiter the event concerns makes
 * its call (readers and writers of one descriptor from different
 * goroutines each get theirs), not only the first: an edge is not
 * repeated for those left.  A descriptor waited for on two procs is in
 * both sets, and each reports every edge to its own waiters.
 *
 * Drained.  A keep-alive server's goroutine reads a request, answers,
 * and reads again: that read finds nothing yet, a recv that says -EAGAIN
 * (a system call per request) before the park.  A read of a TCP socket
 * that returns fewer bytes than asked for has emptied the socket's
 * receive queue (the kernel stops copying only when the queue and its
 * backlog are empty), and so has one that says -EAGAIN; bytes that come
 * afterwards queue a new edge.  So when such a read was made after every
 * edge this proc has taken for the descriptor (f->drained, set by the
 * read and cleared by the next read edge ep_ready takes), the next read
 * parks at once, without the call, and the edge makes it, as after an
 * -EAGAIN:
 *
 *     proc P (goroutine g, then the scheduler)     the peer
 *     ep_ready: takes E1, g's recv -> 40 bytes of 4096 (drained)
 *     g: send the answer; recv: drained, park
 *                                                  send: data, edge E2 queued
 *     ep_wait: takes E2 (not drained)
 *     ep_ready: g's recv again -> data, g completes
 *
 * Data that came between the short read and the park is E2's.  Only
 * where the rule holds: plain reads (no MSG_PEEK, which leaves the bytes;
 * no MSG_DONTWAIT, which asks for the call), of files known to be TCP
 * sockets (ringo_tcp_listen, ringo_tcp_dial, and what ringo_accept takes
 * from the former: a SOCK_SEQPACKET socket's short read is one record of
 * several), on the proc whose registration saw the edges.  Urgent data
 * (MSG_OOB) stops a read short of what follows it: once an edge reports
 * it (EPOLLPRI), reads of that file never count as drained.  The end of
 * the stream or an error makes no edge after the one that reported it
 * (EPOLLRDHUP, EPOLLHUP, EPOLLERR), which a proc may take while nobody
 * reads; a short read of the data before it must not then park the next
 * read, which returns 0 or the error at once: once an edge reports one,
 * reads of that file never count as drained either.  nginx makes the same
 * inference from a short read.
 *
 * What the registration costs besides.  The set reports every edge of a
 * registered descriptor, waited for or not (an answer arriving while its
 * goroutine runs): ep_ready finds no waiter and does nothing.  A file of
 * ours that the program dup(2)s and ringo_closes lives on in the set
 * under the old number until the duplicate is closed: events for a new
 * file of that number may then come from it, which only makes the calls
 * once more for -EAGAIN.  A descriptor of ours closed with close(2)
 * instead of ringo_close, its number then given to a file of the
 * program's, leaves an owned word a proc's f->et matches: waits on the new
 * file are never reported (ringo_close(3), ringo(7) say so).
 *
 * Rejected.  Registering every descriptor edge-triggered (what Go does):
 * see the close(2) above.  Checking that a registration still stands at
 * each wait (kcmp, fstat): a system call, which is what is saved.  Putting the caller's descriptors in
 * O_NONBLOCK mode (also Go's way): the file status flags belong to the
 * program, which may share the descriptor with code outside ringo; only a
 * listener is switched (accept4 has no per-call non-blocking flag), and
 * a connecting socket for the duration of its connect(2).
 */
#include "config.h"

#include "internal.h"
#include "engine.h"
#include "tsan.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "ringo.h"

/* How a rop is carried out (rop.ep_mode). */
enum {
    EPM_POLL,       /* the call again on readiness */
    EPM_CONNECTING, /* connect(2) said EINPROGRESS: writability, then SO_ERROR */
    EPM_BLOCKING,   /* the blocking call on a helper thread */
    EPM_READY_BLOCKING, /* readiness, then the blocking call on a helper thread */
};

/* Where a rop is (rop.ep_where). */
enum {
    EPW_NONE,       /* completed and dispatched, or not started */
    EPW_FD,         /* on its descriptor's list */
    EPW_DONE,       /* on p->ep_done */
    EPW_HELPER,     /* with a helper thread */
};

/* A descriptor's waiting operations on one proc. */
struct ep_fd {
    struct rop *head, *tail;    /* FIFO, linked by rop.ep_next */
    uint32_t armed;             /* the one-shot interest armed and not yet reported; 0: none */
    uint32_t et;                /* registered edge-triggered for good, for the file whose
                                 * ownership word (ep_own) this is; 0: one-shot or none */
    uint32_t drained;           /* et when a read found the stream empty after the last
                                 * edge this proc took for it, else 0 ("Drained") */
    bool urgent;                /* an edge reported urgent data: no read counts as drained */
    bool ended;                 /* an edge reported the end of the stream or an error: the same */
    bool registered;            /* added to this proc's epoll set (may be stale: see ep_arm) */
    bool level;                 /* not ours, registered edge-triggered for `armed` after a
                                 * readiness that did not let a call go on ("Readiness that
                                 * stays"), its calls made again on a backoff */
    bool listed;                /* in the proc's list of such (ep_proc.level) */
};

/* The interest of an edge-triggered registration: every readiness an
 * operation may wait for, so that it is made once per descriptor. */
#define EP_ET_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLRDNORM | \
                      EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND | EPOLLET)

/* The bits of a descriptor's ownership word (ep_own_slot). */
#define EP_OWN 1u
#define EP_OWN_STREAM 2u
#define EP_OWN_GEN 4u

/* The events that tell a reader to make its call again. */
#define EP_READ_EDGE (EPOLLIN | EPOLLPRI | EPOLLRDNORM | EPOLLRDBAND | EPOLLRDHUP | \
                      EPOLLERR | EPOLLHUP)

#define EP_EVENTS 128
#define EP_EFD UINT64_MAX       /* the eventfd's epoll_data; a descriptor's is its number */

struct ep_proc {
    int epfd;
    struct ep_fd *fds;          /* indexed by descriptor, grown on demand */
    size_t nfds;
    struct rop *done_tail;      /* the last of p->ep_done */
    bool no_pwait2;             /* epoll_pwait2 is missing: millisecond timeouts */
    int *level;                 /* descriptors with ep_fd.listed ("Readiness that stays") */
    size_t nlevel, caplevel;
    int64_t level_at;           /* when their calls are made again */
    int64_t level_step;         /* and the time between two such rounds */
    struct epoll_event evs[EP_EVENTS];
};

/* "Readiness that stays": the backoff of the calls made again. */
#define EP_LEVEL_FIRST (1 * 1000000LL)
#define EP_LEVEL_MAX (64 * 1000000LL)

/* ------------------------------------------------------------------ */
/* The calls */

static inline int neg_errno(long r)
{
    return r < 0 ? -errno : (int)r;
}

/* A listener in non-blocking mode, so that accept4 never blocks the proc
 * (see "Rejected"); one fcntl per accept when it already is. */
static int ep_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

/* connect(2) without blocking, on a socket in either mode: a blocking one
 * is non-blocking for the call only (a socket being connected has no
 * other operation to disturb). */
static int ep_connect(const struct eng_io *io)
{
    int fl = fcntl(io->fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(io->fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    int r = neg_errno(connect(io->fd, io->u.caddr, (socklen_t)io->len));
    if (!(fl & O_NONBLOCK))
        fcntl(io->fd, F_SETFL, fl);
    return r;
}

/* A connect in progress: -EAGAIN until the socket is writable, then its
 * outcome. */
static int ep_connect_done(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    if (poll(&pfd, 1, 0) < 0)
        return -errno;
    if (!pfd.revents)
        return -EAGAIN;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

/*
 * The calls ep_call makes, by syscall(2) rather than through their libc
 * wrappers.  Those are cancellation points: each switches glibc's
 * asynchronous cancellation on and off around the call, two atomic
 * read-modify-writes and about 60 instructions per request of a server,
 * for a call that never blocks and a proc thread nobody cancels.
 * Sanitizer builds keep the wrappers, which the sanitizers intercept:
 * AddressSanitizer checks the buffers, and ThreadSanitizer orders what
 * one goroutine writes to a socket or pipe before what another reads
 * from it.  The offset of preadv2/pwritev2 is passed whole in its low
 * half on 64-bit Linux (the high half is shifted out), -1 meaning the
 * file position, as the wrappers pass it.
 */
#if defined(RINGO_TSAN) || defined(__SANITIZE_ADDRESS__)
#define EP_WRAPPERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EP_WRAPPERS 1
#endif
#endif
#if !defined(EP_WRAPPERS) && (!defined(__LP64__) || !defined(SYS_preadv2) || \
                              !defined(SYS_pwritev2) || !defined(SYS_accept4))
#define EP_WRAPPERS 1
#endif

#ifdef EP_WRAPPERS
#define ep_preadv2(fd, iov, n, off) preadv2((fd), (iov), (n), (off_t)(off), RWF_NOWAIT)
#define ep_pwritev2(fd, iov, n, off) pwritev2((fd), (iov), (n), (off_t)(off), RWF_NOWAIT)
#define ep_recvfrom(fd, buf, len, fl) recv((fd), (buf), (len), (fl))
#define ep_sendto(fd, buf, len, fl) send((fd), (buf), (len), (fl))
#define ep_recvmsg(fd, msg, fl) recvmsg((fd), (msg), (fl))
#define ep_sendmsg(fd, msg, fl) sendmsg((fd), (msg), (fl))
#define ep_accept4(fd, addr, alen, fl) accept4((fd), (addr), (alen), (fl))
#else
/* Every argument as a long: syscall(2) takes them so, and an int passed
 * through its varargs may leave the upper half of the register undefined. */
#define ep_preadv2(fd, iov, n, off) \
    syscall(SYS_preadv2, (long)(fd), (long)(iov), (long)(n), (long)(off), 0L, (long)RWF_NOWAIT)
#define ep_pwritev2(fd, iov, n, off) \
    syscall(SYS_pwritev2, (long)(fd), (long)(iov), (long)(n), (long)(off), 0L, (long)RWF_NOWAIT)
#define ep_recvfrom(fd, buf, len, fl) \
    syscall(SYS_recvfrom, (long)(fd), (long)(buf), (long)(len), (long)(fl), 0L, 0L)
#define ep_sendto(fd, buf, len, fl) \
    syscall(SYS_sendto, (long)(fd), (long)(buf), (long)(len), (long)(fl), 0L, 0L)
#define ep_recvmsg(fd, msg, fl) syscall(SYS_recvmsg, (long)(fd), (long)(msg), (long)(fl))
#define ep_sendmsg(fd, msg, fl) syscall(SYS_sendmsg, (long)(fd), (long)(msg), (long)(fl))
#define ep_accept4(fd, addr, alen, fl) \
    syscall(SYS_accept4, (long)(fd), (long)(addr), (long)(alen), (long)(fl))
#endif

/* The rest of a recvmsg or sendmsg with MSG_WAITALL that has moved done
 * bytes (ep_waitall): into or out of its vector past them, without the
 * name (a stream's) and without ancillary data (a recvmsg with a control
 * buffer does not go on; a sendmsg's went with its first piece, as
 * io_uring sends the rest).  ep_ready makes it, which may run on a
 * goroutine's stack (a scheduling point polls): the vector's copy on the
 * heap past a few entries.  A vector longer than IOV_MAX failed its first
 * call. */
#define EP_MSG_IOV 8
#define EP_IO_MAX 0x7ffff000u /* the most one call transfers (read(2), io.c IO_MAX_LEN) */

static __attribute__((noinline)) int ep_msg_rest(const struct eng_io *io, uint32_t done)
{
    const struct msghdr *msg = io->kind == ENG_SENDMSG ? io->u.cmsg : io->u.msg;
    struct iovec small[EP_MSG_IOV];
    struct iovec *v = small;
    if (msg->msg_iovlen > EP_MSG_IOV) {
        v = seam_malloc(msg->msg_iovlen * sizeof *v);
        if (!v)
            return -ENOMEM; /* ep_waitall returns what moved */
    }
    struct msghdr m = { .msg_iov = v, .msg_iovlen = eng_iov_past(msg->msg_iov, msg->msg_iovlen, done, v) };
    int fl = io->flags | MSG_DONTWAIT;
    int r = neg_errno(io->kind == ENG_SENDMSG ? ep_sendmsg(io->fd, &m, fl) : ep_recvmsg(io->fd, &m, fl));
    if (v != small)
        free(v);
    return r;
}

/* io without blocking: its result, or -EAGAIN.  done: what a recv or
 * send with MSG_WAITALL has moved already (ep_waitall). */
static int ep_call(const struct eng_io *io, int mode, uint32_t done)
{
    struct iovec one;
    switch ((enum eng_kind)io->kind) {
    case ENG_READ:
        one.iov_base = io->u.buf;
        one.iov_len = (size_t)io->len;
        return neg_errno(ep_preadv2(io->fd, &one, 1, io->off));
    case ENG_WRITE:
        one.iov_base = (void *)io->u.cbuf;
        one.iov_len = (size_t)io->len;
        return neg_errno(ep_pwritev2(io->fd, &one, 1, io->off));
    case ENG_READV:
        return neg_errno(ep_preadv2(io->fd, io->u.iov, (int)io->len, io->off));
    case ENG_WRITEV:
        return neg_errno(ep_pwritev2(io->fd, io->u.iov, (int)io->len, io->off));
    case ENG_RECV:
        return neg_errno(ep_recvfrom(io->fd, (char *)io->u.buf + done, (size_t)io->len - done,
                                     io->flags | MSG_DONTWAIT));
    case ENG_SEND:
        return neg_errno(ep_sendto(io->fd, (const char *)io->u.cbuf + done, (size_t)io->len - done,
                                   io->flags | MSG_DONTWAIT));
    case ENG_RECVMSG:
        if (done)
            return ep_msg_rest(io, done);
        return neg_errno(ep_recvmsg(io->fd, io->u.msg, io->flags | MSG_DONTWAIT));
    case ENG_SENDMSG:
        if (done)
            return ep_msg_rest(io, done);
        return neg_errno(ep_sendmsg(io->fd, io->u.cmsg, io->flags | MSG_DONTWAIT));
    case ENG_ACCEPT:
        return neg_errno(ep_accept4(io->fd, io->u.addr, io->alen, io->flags));
    case ENG_CONNECT:
        return mode == EPM_CONNECTING ? ep_connect_done(io->fd) : ep_connect(io);
    case ENG_POLL: {
        struct pollfd pfd = { .fd = io->fd, .events = (short)io->len };
        int r = poll(&pfd, 1, 0);
        if (r < 0)
            return -errno;
        return r ? pfd.revents : -EAGAIN;
    }
    case ENG_OPENAT:
    case ENG_FSYNC:
    case ENG_CLOSE:
        break;
    }
    return -EAGAIN;
}

/* The rest of a read of a regular file that the call without waiting
 * made in part (ep_file_short): op->ep_done bytes in, on a helper thread.
 * Its result: the whole count, or what was read before an error. */
static int ep_read_rest(const struct rop *op)
{
    const struct eng_io *io = op->io;
    size_t done = op->ep_done;
    bool here = io->off == (uint64_t)-1; /* at the file position, moved by the first part */
    off_t off = here ? 0 : (off_t)(io->off + done);
    ssize_t r;
    if (io->kind == ENG_READ) {
        char *buf = (char *)io->u.buf + done;
        size_t len = (size_t)io->len - done;
        r = here ? read(io->fd, buf, len) : pread(io->fd, buf, len, off);
    } else {
        /* The vector past its first done bytes, on this thread's stack. */
        struct iovec v[IOV_MAX];
        int n = 0;
        size_t skip = done;
        for (int i = 0; i < (int)io->len; i++) {
            size_t l = io->u.iov[i].iov_len;
            if (skip >= l) {
                skip -= l;
                continue;
            }
            v[n].iov_base = (char *)io->u.iov[i].iov_base + skip;
            v[n].iov_len = l - skip;
            skip = 0;
            n++;
        }
        r = here ? readv(io->fd, v, n) : preadv(io->fd, v, n, off);
    }
    return r >= 0 ? (int)(r + (ssize_t)done) : (int)done;
}

/* io the blocking way, on a helper thread. */
static int ep_call_blocking(void *arg)
{
    struct rop *op = arg;
    const struct eng_io *io = op->io;
    bool here = io->off == (uint64_t)-1; /* at the file position */
    if (op->ep_done && (io->kind == ENG_READ || io->kind == ENG_READV))
        return ep_read_rest(op);
    switch ((enum eng_kind)io->kind) {
    case ENG_READ:
        return neg_errno(here ? read(io->fd, io->u.buf, (size_t)io->len)
                              : pread(io->fd, io->u.buf, (size_t)io->len, (off_t)io->off));
    case ENG_WRITE:
        return neg_errno(here ? write(io->fd, io->u.cbuf, (size_t)io->len)
                              : pwrite(io->fd, io->u.cbuf, (size_t)io->len, (off_t)io->off));
    case ENG_READV:
        return neg_errno(here ? readv(io->fd, io->u.iov, (int)io->len)
                              : preadv(io->fd, io->u.iov, (int)io->len, (off_t)io->off));
    case ENG_WRITEV:
        return neg_errno(here ? writev(io->fd, io->u.iov, (int)io->len)
                              : pwritev(io->fd, io->u.iov, (int)io->len, (off_t)io->off));
    case ENG_RECV:
        return neg_errno(recv(io->fd, io->u.buf, (size_t)io->len, io->flags));
    case ENG_SEND:
        return neg_errno(send(io->fd, io->u.cbuf, (size_t)io->len, io->flags));
    case ENG_RECVMSG:
        return neg_errno(recvmsg(io->fd, io->u.msg, io->flags));
    case ENG_SENDMSG:
        return neg_errno(sendmsg(io->fd, io->u.cmsg, io->flags));
    case ENG_ACCEPT:
        return neg_errno(accept4(io->fd, io->u.addr, io->alen, io->flags));
    case ENG_CONNECT:
        return neg_errno(connect(io->fd, io->u.caddr, (socklen_t)io->len));
    case ENG_OPENAT:
        return neg_errno(openat(io->fd, io->u.path, io->flags, (mode_t)io->len));
    case ENG_FSYNC:
        return neg_errno(fsync(io->fd));
    case ENG_POLL: {
        struct pollfd pfd = { .fd = io->fd, .events = (short)io->len };
        int r;
        do
            r = poll(&pfd, 1, -1);
        while (r < 0 && errno == EINTR);
        return r < 0 ? -errno : pfd.revents;
    }
    case ENG_CLOSE:
        return neg_errno(close(io->fd));
    }
    return -EINVAL;
}

/* The readiness an operation waits for. */
static uint32_t ep_events_of(const struct eng_io *io, int mode)
{
    switch ((enum eng_kind)io->kind) {
    case ENG_READ:
    case ENG_READV:
    case ENG_RECV:
    case ENG_RECVMSG:
        return EPOLLIN | EPOLLRDHUP; /* the hang-up: ep_hangup_read */
    case ENG_ACCEPT:
        return EPOLLIN;
    case ENG_POLL:
        /* poll(2)'s bits are epoll's for the events both have */
        return (uint32_t)(unsigned short)io->len;
    case ENG_CONNECT:
        (void)mode;
        return EPOLLOUT;
    default:
        return EPOLLOUT;
    }
}

static struct ep_fd *ep_fd_grow(struct rproc *p, int fd);

/* fd's entry in p's table; past its end, NULL, or with grow a grown table
 * (NULL without memory).  Inline: three lookups per request. */
static inline struct ep_fd *ep_fd_of(struct rproc *p, int fd, bool grow)
{
    struct ep_proc *ep = p->ep;
    if (__builtin_expect((size_t)fd < ep->nfds, 1))
        return &ep->fds[fd];
    return grow && fd >= 0 ? ep_fd_grow(p, fd) : NULL;
}

static inline uint32_t ep_owned(int fd);

/* io is a plain read: read(2) at the file position, or recv with no
 * flags (MSG_PEEK leaves the bytes, MSG_DONTWAIT asks for the call). */
static inline bool ep_plain_read(const struct eng_io *io)
{
    return io->kind == ENG_RECV ? io->flags == 0
                                : io->kind == ENG_READ && io->off == (uint64_t)-1;
}

/* f, when io is a plain read of a TCP socket of ours that f is registered
 * edge-triggered for on this proc: a read whose -EAGAIN or short count
 * tells that the stream was empty ("Drained" at the top).  Else NULL. */
static inline struct ep_fd *ep_stream_read(struct rproc *p, const struct eng_io *io)
{
    if (!ep_plain_read(io))
        return NULL;
    struct ep_fd *f = ep_fd_of(p, io->fd, false);
    return f && (f->et & EP_OWN_STREAM) ? f : NULL;
}

/* f's stream was found empty by a read that returned r, made after every
 * edge this proc has taken for it. */
static inline void ep_note_drained(struct ep_fd *f, const struct eng_io *io, int r)
{
    if ((r == -EAGAIN || (r > 0 && (size_t)r < (size_t)io->len)) && !f->urgent && !f->ended)
        f->drained = f->et;
}

/* A recv or recvmsg with MSG_WAITALL (and without MSG_DONTWAIT or
 * MSG_PEEK) on a stream socket returns when it has all it asked for, as
 * recv(2) and io_uring's recv do, or less at the end of the stream or an
 * error; a send or sendmsg with MSG_WAITALL when it has sent all, as
 * io_uring's do (send(2) blocks for all of it anyway).  The call that
 * does not wait (ep_call) moves what it can: counted in op, and -EAGAIN
 * to wait for more (a recvmsg's or sendmsg's next calls go on past it:
 * ep_msg_rest).  r: that call's result; returns the
 * operation's, or -EAGAIN. */
static inline int ep_waitall(struct rop *op, const struct eng_io *io, int r)
{
    if (__builtin_expect(io->kind < ENG_RECV || io->kind > ENG_SENDMSG ||
                             (io->flags & (MSG_WAITALL | MSG_DONTWAIT | MSG_PEEK)) != MSG_WAITALL, 1))
        return r;
    if (r > 0) {
        size_t want = io->len;
        if (io->kind == ENG_SENDMSG) {
            want = 0;
            for (size_t i = 0; i < io->u.cmsg->msg_iovlen; i++)
                want += io->u.cmsg->msg_iov[i].iov_len;
            if (want > EP_IO_MAX)
                want = EP_IO_MAX;
        } else if (io->kind == ENG_RECVMSG) {
            /* With a control buffer, io_uring's recvmsg does not go on
             * past the first piece (a later piece's ancillary data, say
             * descriptors passed, would have nowhere to go): nor here,
             * where such a call comes without MSG_WAITALL (io.c
             * io_recvmsg_flags: the msghdr's length is the ancillary
             * data's received by now). */
            want = 0;
            for (size_t i = 0; i < io->u.msg->msg_iovlen; i++)
                want += io->u.msg->msg_iov[i].iov_len;
            if (want > EP_IO_MAX)
                want = EP_IO_MAX; /* as io_uring's count, and within an int */
        }
        if ((size_t)op->ep_done + (size_t)r >= want)
            return (int)(op->ep_done + (uint32_t)r);
        /* Short: more to wait for on a stream (or a SOCK_SEQPACKET
         * socket, as io_uring); a datagram socket's receive is one
         * datagram, MSG_WAITALL or not (recv(2)).  Asked once per call,
         * on its first short piece. */
        if (!op->ep_done) {
            int type = 0;
            socklen_t tl = sizeof type;
            if (getsockopt(io->fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type != SOCK_STREAM &&
                type != SOCK_SEQPACKET)
                return r; /* as io_uring, which goes on only for these two */
        }
        op->ep_done += (uint32_t)r;
        return -EAGAIN;
    }
    return r == -EAGAIN || !op->ep_done ? r : (int)op->ep_done; /* what came before the end */
}

/* The result of op, ended by err while it waited: a recv with
 * MSG_WAITALL that has received some returns that much, as io_uring's
 * does (its bytes are in the buffer, and the call must not be made again
 * over them). */
static inline int ep_ended(const struct rop *op, int err)
{
    return op->ep_done ? (int)op->ep_done : err;
}

/* A read of a regular file that RWF_NOWAIT cut short of the end of the
 * file, or of a block device: preadv2 then returns the part the page
 * cache holds, where read(2), and io_uring, return the whole count.  r:
 * that call's result.  A short read at the end of a file is whole (one
 * fstat, and for a read at the file position an lseek, tell); a read of
 * anything else (a pipe, a socket) returns what has come, as read(2) does
 * (one fstat: no type is kept per descriptor, whose number may name
 * another file next). */
static bool ep_file_short(const struct eng_io *io, int r)
{
    if (r <= 0 || (io->kind != ENG_READ && io->kind != ENG_READV))
        return false;
    size_t want = 0;
    if (io->kind == ENG_READ) {
        want = (size_t)io->len;
    } else {
        for (int i = 0; i < (int)io->len && want <= (size_t)r; i++)
            want += io->u.iov[i].iov_len;
    }
    struct stat st;
    if ((size_t)r >= want || fstat(io->fd, &st) != 0)
        return false;
    if (S_ISBLK(st.st_mode))
        return true; /* no size in st_size: the helper reads on to the end */
    if (!S_ISREG(st.st_mode))
        return false;
    off_t end = io->off == (uint64_t)-1 ? lseek(io->fd, 0, SEEK_CUR) : (off_t)(io->off + (uint64_t)r);
    return end >= 0 && end < st.st_size;
}

int ep_try(struct rproc *p, struct rop *op, const struct eng_io *io)
{
    op->io = io;
    op->ep_mode = EPM_POLL;
    op->ep_done = 0;
    struct ep_fd *f = NULL;
    switch ((enum eng_kind)io->kind) {
    case ENG_OPENAT:
    case ENG_FSYNC:
    case ENG_CLOSE:
        op->ep_mode = EPM_BLOCKING;
        return ENG_WAIT;
    case ENG_ACCEPT: {
        int r = ep_nonblocking(io->fd);
        if (r)
            return r;
        break;
    }
    case ENG_READ:
    case ENG_RECV:
        f = ep_stream_read(p, io);
        /* Found empty since the last edge, and still the same file (a
         * ringo_close on another proc does not reach this table): the
         * call would say -EAGAIN, and the next edge makes it.  Not for
         * a read of 0 bytes, which read(2) answers at once. */
        if (f && f->drained && io->len && f->drained == ep_owned(io->fd))
            return ENG_WAIT;
        break;
    default:
        break;
    }
    int r = ep_call(io, EPM_POLL, 0);
    tsan_io_release(); /* as io_wait's, for a call that does not wait (tsan.h) */
    if (f)
        ep_note_drained(f, io, r);
    r = ep_waitall(op, io, r);
    if (__builtin_expect(io->kind <= ENG_READV && r > 0, 0) && !f && ep_file_short(io, r)) {
        op->ep_done = (uint32_t)r; /* the rest on a helper (ep_read_rest) */
        op->ep_mode = EPM_BLOCKING;
        return ENG_WAIT;
    }
    if (r == -EAGAIN) {
        /* A MSG_DONTWAIT call is the caller's own try (as on io_uring). */
        bool dontwait = io->kind >= ENG_RECV && io->kind <= ENG_SENDMSG &&
                        (io->flags & MSG_DONTWAIT);
        return dontwait ? -EAGAIN : ENG_WAIT;
    }
    if (r == -EINPROGRESS && io->kind == ENG_CONNECT) {
        op->ep_mode = EPM_CONNECTING;
        return ENG_WAIT;
    }
    if ((r == -EOPNOTSUPP || r == -EINVAL) && io->kind <= ENG_WRITEV) {
        /* No RWF_NOWAIT for this file (EOPNOTSUPP), or not for a buffered
         * write to it (EINVAL, before Linux 6.x on most file systems); a
         * real EINVAL comes again from the blocking call (engine.h lists
         * these four kinds first).  Without RWF_NOWAIT, the blocking call
         * goes to a helper once the descriptor is ready, if epoll can tell
         * (a terminal, an inotify descriptor): a helper's call cannot be
         * ended by a deadline, a cancel or a close, and one that waited
         * for input would hold its helper (ep_start; a regular file, which
         * epoll refuses, at once).  EINVAL at once: it may be the call's
         * own (a read of an eventfd shorter than 8 bytes), which readiness
         * would never end. */
        op->ep_mode = r == -EOPNOTSUPP ? EPM_READY_BLOCKING : EPM_BLOCKING;
        return ENG_WAIT;
    }
    return r;
}
_Static_assert(ENG_READ < ENG_WRITEV && ENG_WRITE < ENG_WRITEV && ENG_READV < ENG_WRITEV &&
                   ENG_WRITEV < ENG_RECV && ENG_RECV < ENG_SEND && ENG_SEND < ENG_RECVMSG &&
                   ENG_RECVMSG < ENG_SENDMSG && ENG_SENDMSG < ENG_ACCEPT,
               "ep_try: the kinds that use RWF_NOWAIT come first, then the socket calls");

/* ------------------------------------------------------------------ */
/* Completions */

/* Append op to the list [*head, *tail]. */
static void ep_append(struct rop **head, struct rop **tail, struct rop *op)
{
    op->ep_next = NULL;
    if (*tail)
        (*tail)->ep_next = op;
    else
        *head = op;
    *tail = op;
}

/* op completes with res at the next dispatch. */
static void ep_complete(struct rproc *p, struct rop *op, int res)
{
    op->res = res;
    op->ep_where = EPW_DONE;
    ep_append(&p->ep_done, &p->ep->done_tail, op);
}

static void ep_dispatch(struct rproc *p)
{
    unsigned n = 0;
    struct rop *op;
    while ((op = p->ep_done)) {
        p->ep_done = op->ep_next;
        if (!p->ep_done)
            p->ep->done_tail = NULL;
        op->ep_where = EPW_NONE;
        n++;
        /* may ready the goroutine, which runs only after we return */
        op->rec.done(p, &op->rec, op->res, 0);
    }
    if (n)
        stat_add(p->st.completions, n);
}

/* A helper's completion task, on the owner proc. */
static void ep_helper_done(struct rproc *p, void *arg, int res)
{
    struct rop *op = arg;
    op->ep_where = EPW_NONE;
    stat_add(p->st.completions, 1);
    /* A call taken out of the helpers' queue by a close (-EBADF) after
     * its first part was made (a partly cached read) returns that part:
     * its bytes are in the buffer and the file position has moved. */
    op->rec.done(p, &op->rec, res < 0 ? ep_ended(op, res) : res, 0);
}

static void ep_offload(struct rproc *p, struct rop *op)
{
    op->ep_mode = EPM_BLOCKING;
    op->ep_where = EPW_HELPER;
    /* The descriptor the call names, for ringo_close (offload.c): not an
     * openat's directory when its path is absolute. */
    const struct eng_io *io = op->io;
    int fd = io->kind == ENG_OPENAT && io->u.path && io->u.path[0] == '/' ? -1 : io->fd;
    int r = offload_io(p, fd, ep_call_blocking, ep_helper_done, op);
    /* A close under way: made again after it (io.c).  Not an openat: it
     * counted itself on its directory before the close began, which the
     * closer waits for (close.c "Directories"); its close ends it. */
    if (r == -EBADF && !op->ep_done && io->kind != ENG_OPENAT)
        r = ENG_CLOSING;
    if (r)
        ep_complete(p, op, ep_ended(op, r));
}

/* ------------------------------------------------------------------ */
/* Readiness */

/* ep_fd_of's growth, for an fd past the table (a limit raised during the
 * run). */
static struct ep_fd *ep_fd_grow(struct rproc *p, int fd)
{
    struct ep_proc *ep = p->ep;
    size_t n = ep->nfds ? ep->nfds : 64;
    while (n <= (size_t)fd)
        n *= 2;
    struct ep_fd *fds = seam_realloc(ep->fds, n * sizeof *fds);
    if (!fds)
        return NULL;
    memset(fds + ep->nfds, 0, (n - ep->nfds) * sizeof *fds);
    ep->fds = fds;
    ep->nfds = n;
    return &fds[fd];
}

/* ------------------------------------------------------------------ */
/* Descriptors the runtime created (see "Registered once" at the top) */

/* One word per descriptor number, for the whole run: bit 0 (EP_OWN) set
 * while the number names a file the runtime created for a goroutine and
 * has not closed, bit 1 (EP_OWN_STREAM) with it when that file is a TCP
 * socket; bits 2-31 a generation, one more at each such creation and at
 * each ringo_close, so that a word seen with bit 0 set names one file.
 * Pages as the closing marks' (close.c), allocated by the first creation
 * that needs one and freed at the end of the run. */
static _Atomic(_Atomic uint32_t *) ep_own_page[FDOPS_PAGES];

/* epoll_ctl calls made, for the tests (check_io's registration test). */
_Atomic uint64_t ep_ctl_calls;

/* fd's ownership word, or NULL while its page does not exist (or for a
 * number past the pages).  Inline: two lookups per request. */
static inline _Atomic uint32_t *ep_own_find(int fd)
{
    unsigned pg = (unsigned)fd >> FDOPS_PAGE_BITS;
    if (fd < 0 || pg >= FDOPS_PAGES)
        return NULL;
    /* acquire: pairs with the CAS in ep_own_slot (the page's zeroes) */
    _Atomic uint32_t *page = load_acquire(&ep_own_page[pg]);
    return page ? &page[(unsigned)fd & (FDOPS_PAGE_SIZE - 1)] : NULL;
}

/* fd's ownership word, its page allocated if need be; NULL without
 * memory or for a number past the pages. */
static _Atomic uint32_t *ep_own_slot(int fd)
{
    _Atomic uint32_t *w = ep_own_find(fd);
    unsigned pg = (unsigned)fd >> FDOPS_PAGE_BITS;
    if (w || fd < 0 || pg >= FDOPS_PAGES)
        return w;
    _Atomic uint32_t *fresh = seam_calloc(FDOPS_PAGE_SIZE, sizeof *fresh);
    if (!fresh)
        return NULL;
    /* acq_rel: release publishes the zeroes; on failure, acquire those of
     * the goroutine on another proc that installed its page */
    _Atomic uint32_t *page = NULL;
    if (!cas_acq_rel(&ep_own_page[pg], &page, fresh)) {
        free(fresh);
        fresh = page;
    }
    return &fresh[(unsigned)fd & (FDOPS_PAGE_SIZE - 1)];
}

/* The next generation of *w, created (owned: EP_OWN, and EP_OWN_STREAM
 * for a TCP socket) or closed (0). */
static void ep_own_set(_Atomic uint32_t *w, uint32_t owned)
{
    /* Relaxed: the word is read only by goroutines that got the number
     * from the creator or gave it to the closer, through the program's
     * own synchronisation (a channel, a spawn, the same goroutine), which
     * orders this store before their load; the CAS keeps a creation and
     * a close that race on one number (the close(2) has freed it, the
     * creator got it again) from losing a generation. */
    uint32_t v = load_relaxed(w);
    while (!cas_relaxed(w, &v, ((v & ~(EP_OWN_GEN - 1)) + EP_OWN_GEN) | owned))
        ;
}

void ep_fd_created(int fd, bool stream)
{
    _Atomic uint32_t *w = ep_own_slot(fd);
    if (w) /* else (no memory, a number past 2^20): waits arm one-shot */
        ep_own_set(w, EP_OWN | (stream ? EP_OWN_STREAM : 0));
}

void ep_fd_closing(int fd)
{
    _Atomic uint32_t *w = ep_own_find(fd);
    if (w)
        ep_own_set(w, 0);
}

/* fd's ownership word when it is owned (odd), else 0. */
static inline uint32_t ep_owned(int fd)
{
    _Atomic uint32_t *w = ep_own_find(fd);
    uint32_t v = w ? load_relaxed(w) : 0; /* relaxed: see ep_own_set */
    return v & EP_OWN ? v : 0;
}

void ep_fd_accepted(int listener, int fd)
{
    /* A listener of ringo_tcp_listen's accepts TCP sockets; any other may
     * be a SOCK_SEQPACKET one, whose short read is one record. */
    ep_fd_created(fd, (ep_owned(listener) & EP_OWN_STREAM) != 0);
}

static void ep_own_run_end(void)
{
    /* No goroutine is left to create, close or wait: relaxed. */
    for (unsigned i = 0; i < FDOPS_PAGES; i++) {
        free((void *)load_relaxed(&ep_own_page[i]));
        store_relaxed(&ep_own_page[i], NULL);
    }
}

const struct rhooks epoll_hooks = { .run_end = ep_own_run_end };

/* ------------------------------------------------------------------ */
/* Registration */

static int ep_ctl(int epfd, int op, int fd, struct epoll_event *e)
{
    fetch_add_relaxed(&ep_ctl_calls, 1); /* relaxed: a statistic */
    return epoll_ctl(epfd, op, fd, e);
}

/* Register fd for events (one-shot: events | EPOLLONESHOT; for good:
 * EP_ET_EVENTS).  A registration we made may be stale: the program may
 * have closed the file with close(2) (the kernel then dropped it) and the
 * number may name a new one; MOD then says ENOENT, and the new file is
 * added. */
static int ep_arm(struct rproc *p, int fd, struct ep_fd *f, uint32_t events)
{
    struct epoll_event e = { .events = events, .data.u64 = (uint64_t)fd };
    int epfd = p->ep->epfd;
    if (f->registered) {
        if (ep_ctl(epfd, EPOLL_CTL_MOD, fd, &e) == 0)
            return 0;
        if (errno != ENOENT)
            return -errno;
    }
    if (ep_ctl(epfd, EPOLL_CTL_ADD, fd, &e) == 0) {
        f->registered = true;
        return 0;
    }
    if (errno != EEXIST)
        return -errno;
    f->registered = true; /* added by an earlier run of this proc's table: modify */
    return ep_ctl(epfd, EPOLL_CTL_MOD, fd, &e) == 0 ? 0 : -errno;
}

/* The readiness f's waiters wait for. */
static uint32_t ep_list_events(const struct ep_fd *f)
{
    uint32_t want = 0;
    for (const struct rop *o = f->head; o; o = o->ep_next)
        want |= o->ep_events;
    return want;
}

void ep_start(struct rproc *p, struct rop *op)
{
    stat_add(p->st.submissions, 1);
    if (op->ep_mode == EPM_BLOCKING) {
        ep_offload(p, op);
        return;
    }
    int fd = op->io->fd;
    op->ep_events = ep_events_of(op->io, op->ep_mode);
    struct ep_fd *f = ep_fd_of(p, fd, true);
    if (!f) {
        ep_complete(p, op, fd < 0 ? -EBADF : -ENOMEM);
        return;
    }
    int r = 0;
    uint32_t own = ep_owned(fd);
    if (own) {
        /* Ours (see the top): registered edge-triggered once per file
         * and proc, and from then on a wait costs no system call.  The
         * try's -EAGAIN came after every edge this proc has taken from
         * the set: one that came since is queued there, and taken by the
         * next ep_wait, after op is on the list (nothing polls in
         * between). */
        if (f->et != own) {
            r = ep_arm(p, fd, f, EP_ET_EVENTS);
            if (!r) {
                f->et = own;
                f->armed = 0;
                f->drained = 0; /* a new file: no edge of it taken yet */
                f->urgent = false;
                f->ended = false;
            }
        }
    } else {
        /* One-shot.  An empty list's armed interest may be stale (a
         * cancelled waiter's, or reported), and so is one left from an
         * edge-triggered registration of ours (a ringo_close under way
         * has disowned the number): arm afresh for the whole list.
         * Otherwise only if it grows. */
        uint32_t listed = 0;
        if (f->et) {
            f->et = 0;
            f->armed = 0;
            f->drained = 0;
            listed = ep_list_events(f);
        }
        uint32_t want = (f->head ? f->armed | listed : 0) | op->ep_events;
        /* Registered edge-triggered for readiness that stays: one-shot
         * again, so that a readiness the new waiter's try missed (a
         * hang-up that came since the last report) is reported. */
        if (!f->head || want != f->armed || f->level) {
            r = ep_arm(p, fd, f, want | EPOLLONESHOT);
            if (!r) {
                f->armed = want;
                f->level = false;
            }
        }
    }
    if (r == -EPERM && (op->ep_mode == EPM_POLL || op->ep_mode == EPM_READY_BLOCKING)) {
        /* A regular file or a directory: no readiness to wait for.  A poll
         * of one for what it never reports (POLLPRI) would wait for ever,
         * beyond a deadline's or a cancel's reach, on a helper: refused,
         * as io_uring refuses it. */
        if (op->io->kind == ENG_POLL)
            ep_complete(p, op, -EINVAL);
        else
            ep_offload(p, op);
        return;
    }
    if (r) {
        ep_complete(p, op, ep_ended(op, r));
        return;
    }
    op->ep_where = EPW_FD;
    ep_append(&f->head, &f->tail, op);
}

/* Take op off f's list. */
static void ep_unlink(struct ep_fd *f, struct rop *op)
{
    struct rop *prev = NULL;
    for (struct rop *o = f->head; o; prev = o, o = o->ep_next) {
        if (o != op)
            continue;
        if (prev)
            prev->ep_next = o->ep_next;
        else
            f->head = o->ep_next;
        if (f->tail == o)
            f->tail = prev;
        return;
    }
}

/* A read that says -EAGAIN although an event reported a hang-up
 * (EPOLLRDHUP, EPOLLHUP): a datagram socket shut down for reading with
 * nothing queued, whose read without MSG_DONTWAIT returns 0 at once (as
 * io_uring's does), where the call that does not wait says -EAGAIN and
 * the readiness stays.  A stream or a pipe returns 0 itself there.  The
 * file itself is asked (a rare branch: two system calls): the event may
 * be a stale registration's, for an earlier file under the number that
 * lives on in a duplicate ("Registered once"), and a SOCK_SEQPACKET or
 * other socket that reports a hang-up because it is not connected
 * returns an error from the call that waits, not 0. */
static bool ep_hangup_read(const struct rop *op)
{
    const struct eng_io *io = op->io;
    switch ((enum eng_kind)io->kind) {
    case ENG_READ:
    case ENG_READV:
        break;
    case ENG_RECV:
    case ENG_RECVMSG:
        if (io->flags & (MSG_DONTWAIT | MSG_ERRQUEUE))
            return false;
        break;
    default:
        return false;
    }
    int type = 0;
    socklen_t tl = sizeof type;
    if (getsockopt(io->fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_DGRAM)
        return false;
    struct pollfd pf = { .fd = io->fd, .events = POLLIN | POLLRDHUP };
    return poll(&pf, 1, 0) == 1 && (pf.revents & (POLLRDHUP | POLLHUP));
}

/* Readiness that stays.  A descriptor that is not ours is armed one-shot,
 * and one-shot armed again after its calls said -EAGAIN.  Where the
 * readiness stays although the calls cannot go on, it is reported again
 * at once, for ever, and the proc spins: a UDP socket with IP_RECVERR and
 * an error queued (EPOLLERR until it is read with MSG_ERRQUEUE), an
 * AF_UNIX connect waiting for room in the listener's backlog (the
 * socket stays writable).  io_uring, in the same place, hands the call to
 * a kernel worker that makes it the blocking way.  Here, once a call the
 * readiness concerned says -EAGAIN again, the descriptor is registered
 * edge-triggered for good instead (ep_ready; one epoll_ctl, and no other
 * while it stays so): what wakes the file (data, an error, room) reports
 * it at once.  What does not (the listener's backlog is another file's)
 * is caught by making the calls again on a backoff: 1 ms, doubling while
 * none goes on, up to 64 ms (ep_level_retry, from ep_poll, whose wait
 * the next round bounds).  A later wait arms one-shot again. */
static void ep_level_add(struct rproc *p, int fd, struct ep_fd *f)
{
    struct ep_proc *ep = p->ep;
    if (ep->nlevel == ep->caplevel) {
        size_t n = ep->caplevel ? 2 * ep->caplevel : 8;
        int *l = seam_realloc(ep->level, n * sizeof *l);
        if (!l)
            return; /* edge-triggered only: what wakes the file still reports it */
        ep->level = l;
        ep->caplevel = n;
    }
    ep->level[ep->nlevel++] = fd;
    f->listed = true;
    int64_t at = now_ns() + EP_LEVEL_FIRST;
    if (ep->nlevel == 1 || at < ep->level_at)
        ep->level_at = at;
    ep->level_step = EP_LEVEL_FIRST;
}

static void ep_ready(struct rproc *p, int fd, uint32_t events);

/* Whether fd reports any of the events `want` now (poll's bits are
 * epoll's), or an error or hang-up; a descriptor closed behind our back
 * (POLLNVAL) counts as ready, as does a poll that fails: as before the
 * question was asked. */
static bool ep_still_ready(int fd, uint32_t want)
{
    struct pollfd pf = { .fd = fd, .events = (short)want };
    int r = poll(&pf, 1, 0);
    return r < 0 || (r > 0 && pf.revents);
}

static void ep_level_retry(struct rproc *p)
{
    struct ep_proc *ep = p->ep;
    int64_t now = now_ns();
    if (now < ep->level_at)
        return;
    bool progress = false;
    size_t k = 0;
    for (size_t i = 0; i < ep->nlevel; i++) {
        int fd = ep->level[i];
        struct ep_fd *f = ep_fd_of(p, fd, false);
        if (!f)
            continue;
        if (f->level && f->head) {
            /* The file's readiness now, as an event would report it
             * (poll's bits are epoll's); none: no call to make. */
            struct pollfd pf = { .fd = fd, .events = (short)f->armed };
            if (poll(&pf, 1, 0) == 1 && pf.revents) {
                const struct rop *head = f->head;
                ep_ready(p, fd, (uint16_t)pf.revents);
                if (f->head != head)
                    progress = true; /* a call went on (ep_ready keeps the order) */
            }
        }
        if (f->level && f->head)
            ep->level[k++] = fd;
        else
            f->listed = false;
    }
    ep->nlevel = k;
    ep->level_step = progress ? EP_LEVEL_FIRST
                              : (ep->level_step * 2 > EP_LEVEL_MAX ? EP_LEVEL_MAX : ep->level_step * 2);
    ep->level_at = now + ep->level_step;
}

/* fd reported events: make the calls of the rops they concern again. */
static void ep_ready(struct rproc *p, int fd, uint32_t events)
{
    struct ep_fd *f = ep_fd_of(p, fd, false);
    if (!f)
        return;
    if (!f->et && !f->level)
        f->armed = 0; /* one-shot: reported */
    bool again = false; /* a call the readiness concerned said -EAGAIN */
    if (events & EP_READ_EDGE) {
        /* An edge for reading taken: the next read makes its call
         * ("Drained" at the top); urgent data stops a read short of
         * what follows it in the queue. */
        f->drained = 0;
        if (events & (EPOLLPRI | EPOLLRDBAND))
            f->urgent = true;
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            f->ended = true;
    }
    uint32_t want = 0;
    struct rop *next;
    for (struct rop *op = f->head; op; op = next) {
        next = op->ep_next;
        if ((op->ep_events | EPOLLERR | EPOLLHUP) & events) {
            if (op->ep_mode == EPM_READY_BLOCKING) {
                ep_unlink(f, op); /* ready: the call on a helper (ep_try) */
                ep_offload(p, op);
                continue;
            }
            int r = ep_call(op->io, op->ep_mode, op->ep_done);
            tsan_io_release();
            if ((f->et & EP_OWN_STREAM) && ep_plain_read(op->io))
                ep_note_drained(f, op->io, r);
            if (r == -EAGAIN && (events & (EPOLLRDHUP | EPOLLHUP)) && ep_hangup_read(op))
                r = 0; /* as the call that waits: see ep_hangup_read */
            r = ep_waitall(op, op->io, r);
            if (r != -EAGAIN) {
                ep_unlink(f, op); /* short lists: the waiters of one descriptor */
                ep_complete(p, op, r);
                continue;
            }
            again = true;
        }
        want |= op->ep_events;
    }
    /* Edge-triggered: a waiter whose call said -EAGAIN again, after this
     * edge was taken from the set, is woken by the next edge, which the
     * readiness it waits for makes (see the top); nothing to arm. */
    if (f->et)
        return;
    if (!want) {
        if (f->level) {
            /* The last waiter has gone: no registration for good is left
             * behind for a descriptor that is not ours (a one-shot one
             * that has fired reports nothing more; a close(2) behind our
             * back may leave it in the set under a reused number). */
            ep_arm(p, fd, f, EPOLLONESHOT);
            f->level = false;
            f->armed = 0;
        }
        return;
    }
    /* Not ours.  A call the readiness concerned said -EAGAIN again: the
     * readiness may stay (an error queued, a connect waiting for room), and
     * one-shot armed again it would be reported at once, for ever: a
     * registration edge-triggered for good instead, made once ("Readiness
     * that stays", above).  Unless the file is not ready now: another
     * waiter took what came (two readers of one socket, here or on
     * another proc), and one-shot waits for more as it should. */
    if (again && !f->level && !ep_still_ready(fd, want))
        again = false;
    if (again && f->level && !(want & ~f->armed))
        return;
    int r = ep_arm(p, fd, f, want | (again ? EPOLLET : EPOLLONESHOT));
    if (r == 0) {
        f->armed = want;
        f->level = again;
        if (again && !f->listed)
            ep_level_add(p, fd, f);
        return;
    }
    /* Cannot wait any more (the descriptor was closed by close(2)
     * meanwhile, or no memory): the waiters get the error. */
    struct rop *op;
    while ((op = f->head)) {
        f->head = op->ep_next;
        ep_complete(p, op, ep_ended(op, r));
    }
    f->tail = NULL;
}

void ep_cancel(struct rproc *p, struct rop *op)
{
    if (op->ep_where != EPW_FD)
        return; /* completed already, or with a helper: its result will come */
    struct ep_fd *f = ep_fd_of(p, op->io->fd, false);
    ep_unlink(f, op);
    ep_complete(p, op, ep_ended(op, -ECANCELED));
}

void ep_cancel_fd(struct rproc *p, int fd, int res)
{
    struct ep_fd *f = ep_fd_of(p, fd, false);
    if (!f)
        return;
    struct rop *op;
    while ((op = f->head)) {
        f->head = op->ep_next;
        ep_complete(p, op, ep_ended(op, res));
    }
    f->tail = NULL;
    f->armed = 0;
    f->et = 0;
    f->drained = 0;
    f->level = false;
    if (f->registered) {
        /* before a close: a file that lives on in a duplicate must not
         * keep reporting to this set under a number that may be reused */
        ep_ctl(p->ep->epfd, EPOLL_CTL_DEL, fd, NULL);
        f->registered = false;
    }
}

int ep_close(int fd)
{
    /* After the descriptor's other operations, as the io_uring engine's
     * close waits (tsan.h): ThreadSanitizer sees this close(2) and the
     * epoll_ctl and calls made on the descriptor on other threads. */
    tsan_io_acquire();
    return neg_errno(close(fd));
}

/* ------------------------------------------------------------------ */
/* The proc's wait */

static int ep_wait(struct rproc *p, bool block, int64_t deadline)
{
    struct ep_proc *ep = p->ep;
    if (!block)
        return epoll_wait(ep->epfd, ep->evs, EP_EVENTS, 0);
    if (deadline == INT64_MAX)
        return epoll_wait(ep->epfd, ep->evs, EP_EVENTS, -1);
    int64_t left = deadline - now_ns();
    if (left < 0)
        left = 0;
#ifdef SYS_epoll_pwait2
    if (!ep->no_pwait2) {
        struct timespec ts = { .tv_sec = left / 1000000000, .tv_nsec = left % 1000000000 };
        /* by number: the C library may not wrap it */
        long r = syscall(SYS_epoll_pwait2, ep->epfd, ep->evs, EP_EVENTS, &ts, NULL, (size_t)8);
        if (r >= 0 || errno != ENOSYS)
            return (int)r;
        ep->no_pwait2 = true;
    }
#endif
    int64_t ms = (left + 999999) / 1000000;
    return epoll_wait(ep->epfd, ep->evs, EP_EVENTS, ms > INT32_MAX ? INT32_MAX : (int)ms);
}

int ep_poll(struct rproc *p, bool block, int64_t deadline)
{
    if (p->ep_done) {
        ep_dispatch(p);
        block = false; /* goroutines were readied */
    }
    if (p->ep->nlevel && p->ep->level_at < deadline)
        deadline = p->ep->level_at; /* "Readiness that stays" */
    int n = ep_wait(p, block, deadline);
    int r = n < 0 ? -errno : 0;
    stat_add(p->st.enters, 1);
    for (int i = 0; i < n; i++) {
        struct epoll_event *e = &p->ep->evs[i];
        if (e->data.u64 == EP_EFD) {
            uint64_t v;
            while (read(p->efd, &v, sizeof v) > 0)
                ;
            continue;
        }
        ep_ready(p, (int)e->data.u64, e->events);
    }
    if (p->ep->nlevel)
        ep_level_retry(p);
    ep_dispatch(p);
    proc_timers_run(p);
    return r;
}

/* ------------------------------------------------------------------ */
/* Setup */

/* The descriptor table's first size: room for every descriptor the
 * process may open (RLIMIT_NOFILE), up to 1M, so that an operation never
 * needs memory; its pages are touched only as descriptors are used.  A
 * limit raised during the run grows it (ep_fd_of). */
static size_t ep_fds_initial(void)
{
    struct rlimit rl;
    size_t n = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > n)
        n = (size_t)rl.rlim_cur;
    return n > (1u << 20) ? (1u << 20) : n;
}

int ep_setup(struct rproc *p)
{
    struct ep_proc *ep = seam_calloc(1, sizeof *ep);
    if (!ep)
        return -ENOMEM;
    ep->nfds = ep_fds_initial();
    ep->fds = seam_calloc(ep->nfds, sizeof *ep->fds);
    if (!ep->fds) {
        free(ep);
        return -ENOMEM;
    }
    ep->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (ep->epfd < 0) {
        int r = -errno;
        free(ep->fds);
        free(ep);
        return r;
    }
    p->efd = seam_eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0) {
        int r = -errno;
        close(ep->epfd);
        free(ep->fds);
        free(ep);
        return r;
    }
    struct epoll_event e = { .events = EPOLLIN, .data.u64 = EP_EFD };
    if (epoll_ctl(ep->epfd, EPOLL_CTL_ADD, p->efd, &e) < 0) {
        int r = -errno;
        close(ep->epfd);
        free(ep->fds);
        free(ep);
        return r; /* p->efd is closed with the proc (runtime.c free_procs) */
    }
    /* valgrind (3.19) does not know epoll_pwait2 and says so each run */
    ep->no_pwait2 = rt.valgrind;
    p->ep = ep;
    p->ep_done = NULL;
    p->ring_ok = false;
    p->msg_ring = false;    /* wakes go through the eventfd (eng_wake) */
    p->futex_uring = -1;    /* futex.c FU_NO: goroutines wait in the wait table */
    return 0;
}

void ep_teardown(struct rproc *p)
{
    struct ep_proc *ep = p->ep;
    if (!ep)
        return;
    close(ep->epfd);
    free(ep->fds);
    free(ep->level);
    free(ep);
    p->ep = NULL;
}
