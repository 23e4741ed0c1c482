/*
 * engine.h — the I/O a goroutine asks of its proc, described apart from
 * the mechanism that performs it.
 *
 * io.c describes each blocking call as a struct eng_io (what to do, on
 * which descriptor, with which buffer) and hands it to eng_start with the
 * struct rop its completion is to reach (internal.h: the record carries
 * its own handler, so nothing below calls back up except through it).
 * eng_cancel_op asks for an operation to end early (its completion still
 * comes, with -ECANCELED or its result if it won the race); eng_cancel_fd
 * ends every operation on a descriptor.  Completions are reaped, and the
 * proc waits for them bounded by its nearest timer, in eng_poll; another
 * proc is woken with eng_wake (internal.h declares those the scheduler
 * calls).
 *
 * Two engines.  The run uses one for every proc, chosen before the procs
 * start (runtime.c "Choosing the engine") and kept in rt.engine:
 *
 *   io_uring (engine_uring.c): each operation is one SQE, submitted with
 *   the rest of the scheduler round in one io_uring_enter, and its CQE is
 *   the completion.  eng_start is inline: at a call site whose kind is a
 *   constant the switch below folds away, and the description costs
 *   nothing over preparing the SQE by hand.
 *
 *   epoll (engine_epoll.c), for hosts that refuse io_uring: the call is
 *   first made at once as a non-blocking system call (eng_try); only when
 *   it would block does the goroutine park, its rop on its descriptor's
 *   list until epoll reports readiness and the proc makes the call again.
 *   What cannot wait for readiness (regular files, openat, fsync) runs on
 *   the offload pool's threads.
 *
 * Every entry point tests rt.engine once; it never changes during a run,
 * so the branch is predicted and the io_uring path pays one compare.
 */
#ifndef RINGO_ENGINE_H
#define RINGO_ENGINE_H

#include "internal.h"

#include <poll.h>

enum eng_kind {
    ENG_READ,       /* u.buf, len, off ((uint64_t)-1: the file position) */
    ENG_WRITE,      /* u.cbuf, len, off */
    ENG_READV,      /* u.iov, len = iovcnt, off */
    ENG_WRITEV,     /* u.iov, len = iovcnt, off */
    ENG_RECV,       /* u.buf, len, flags */
    ENG_SEND,       /* u.cbuf, len, flags */
    ENG_RECVMSG,    /* u.msg, flags */
    ENG_SENDMSG,    /* u.cmsg, flags */
    ENG_ACCEPT,     /* u.addr, alen, flags (accept4's) */
    ENG_CONNECT,    /* u.caddr, len = address length */
    ENG_OPENAT,     /* fd = dirfd, u.path, flags, len = mode */
    ENG_FSYNC,      /* fd */
    ENG_POLL,       /* fd, len = poll(2) events */
    ENG_CLOSE,      /* fd */
};

struct eng_io {
    uint8_t kind;               /* enum eng_kind */
    int fd;
    int flags;
    union {
        void *buf;
        const void *cbuf;
        const struct iovec *iov;
        struct msghdr *msg;
        const struct msghdr *cmsg;
        struct sockaddr *addr;
        const struct sockaddr *caddr;
        const char *path;
    } u;
    uint64_t len;
    uint64_t off;
    socklen_t *alen;
};

/* The rest of a MSG_WAITALL recvmsg that has received `skip` bytes:
 * the entries of iov[0, n) past them, into out (room for n); their
 * number.  (io.c recvmsg_waitall, engine_epoll.c ep_recvmsg_rest.) */
static inline size_t eng_iov_past(const struct iovec *iov, size_t n, size_t skip, struct iovec *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        out[k].iov_base = (char *)iov[i].iov_base + skip;
        out[k].iov_len = l - skip;
        skip = 0;
        k++;
    }
    return k;
}

/* The io_uring engine: io as the SQE sqe (user_data not set). */
static inline void eng_start_sqe(struct io_uring_sqe *sqe, const struct eng_io *io)
{
    switch ((enum eng_kind)io->kind) {
    case ENG_READ:
        io_uring_prep_read(sqe, io->fd, io->u.buf, (unsigned)io->len, io->off);
        break;
    case ENG_WRITE:
        io_uring_prep_write(sqe, io->fd, io->u.cbuf, (unsigned)io->len, io->off);
        break;
    case ENG_READV:
        io_uring_prep_readv(sqe, io->fd, io->u.iov, (unsigned)io->len, io->off);
        break;
    case ENG_WRITEV:
        io_uring_prep_writev(sqe, io->fd, io->u.iov, (unsigned)io->len, io->off);
        break;
    case ENG_RECV:
        io_uring_prep_recv(sqe, io->fd, io->u.buf, (size_t)io->len, io->flags);
        break;
    case ENG_SEND:
        io_uring_prep_send(sqe, io->fd, io->u.cbuf, (size_t)io->len, io->flags);
        break;
    case ENG_RECVMSG:
        io_uring_prep_recvmsg(sqe, io->fd, io->u.msg, (unsigned)io->flags);
        break;
    case ENG_SENDMSG:
        io_uring_prep_sendmsg(sqe, io->fd, io->u.cmsg, (unsigned)io->flags);
        break;
    case ENG_ACCEPT:
        io_uring_prep_accept(sqe, io->fd, io->u.addr, io->alen, io->flags);
        break;
    case ENG_CONNECT:
        io_uring_prep_connect(sqe, io->fd, io->u.caddr, (socklen_t)io->len);
        break;
    case ENG_OPENAT:
        io_uring_prep_openat(sqe, io->fd, io->u.path, io->flags, (mode_t)io->len);
        break;
    case ENG_FSYNC:
        io_uring_prep_fsync(sqe, io->fd, 0);
        break;
    case ENG_POLL:
        io_uring_prep_poll_add(sqe, io->fd, (unsigned)(unsigned short)io->len);
        break;
    case ENG_CLOSE:
        io_uring_prep_close(sqe, io->fd);
        break;
    }
}

static inline bool eng_epoll(void)
{
    return __builtin_expect(rt.engine == RINGO_ENGINE_EPOLL, 0);
}

/* The epoll engine (engine_epoll.c). */
int  ep_setup(struct rproc *p);
void ep_teardown(struct rproc *p);
int  ep_try(struct rproc *p, struct rop *op, const struct eng_io *io);
void ep_start(struct rproc *p, struct rop *op);
void ep_cancel(struct rproc *p, struct rop *op);
void ep_cancel_fd(struct rproc *p, int fd, int res); /* its waiters end with res */
int  ep_close(int fd);
int  ep_poll(struct rproc *p, bool block, int64_t deadline);

/* On epoll: fd was just created for a goroutine by the runtime
 * (ringo_accept, ringo_tcp_listen, ringo_tcp_dial), and the program is to
 * close it with ringo_close: its waits register it with epoll once, not
 * at each wait (engine_epoll.c "Registered once").  eng_fd_closing: a
 * goroutine's ringo_close, or the runtime's own close(2) of such a
 * descriptor, is about to close fd.  Both from a goroutine, or from a
 * plain thread between run_enter and run_exit (close.c): the table lives
 * as long as the run. */
void ep_fd_created(int fd, bool stream);
void ep_fd_accepted(int listener, int fd);
void ep_fd_closing(int fd);
/* stream: fd is a TCP socket (ringo_tcp_listen, ringo_tcp_dial), whose
 * short read means its receive queue was empty (engine_epoll.c
 * "Drained"). */
static inline void eng_fd_created(int fd, bool stream)
{
    if (eng_epoll() && fd >= 0)
        ep_fd_created(fd, stream);
}
/* fd was accepted from listener: a stream when the listener is one of
 * ringo_tcp_listen's. */
static inline void eng_fd_accepted(int listener, int fd)
{
    if (eng_epoll() && fd >= 0)
        ep_fd_accepted(listener, fd);
}
static inline void eng_fd_closing(int fd)
{
    if (eng_epoll() && fd >= 0)
        ep_fd_closing(fd);
}

/* The epoll engine's epoll_ctl calls so far, all runs together (for the
 * tests). */
extern _Atomic uint64_t ep_ctl_calls;

/* On epoll: make io at once, without blocking, for the goroutine whose
 * operation op is to be; its result, or ENG_WAIT when it has to wait
 * (then eng_start parks it on readiness or on a helper thread).  On
 * io_uring every operation is started by eng_start: ENG_WAIT. */
#define ENG_WAIT (-0x7fff2000)
static inline int eng_try(struct rproc *p, struct rop *op, const struct eng_io *io)
{
    if (!eng_epoll())
        return ENG_WAIT;
    return ep_try(p, op, io);
}

/* Start io; its completion calls op->rec.done on p's thread.  On epoll,
 * after eng_try said ENG_WAIT for the same op and io. */
static inline void eng_start(struct rproc *p, const struct eng_io *io, struct rop *op)
{
    if (eng_epoll()) {
        ep_start(p, op);
        return;
    }
    struct io_uring_sqe *sqe = ring_sqe(p);
    eng_start_sqe(sqe, io);
    io_uring_sqe_set_data(sqe, &op->rec);
}

/* Ask for every operation on fd started on p to end. */
static inline void eng_cancel_fd(struct rproc *p, int fd)
{
    owner_add(p->fd_cancels, 1);
    if (eng_epoll()) {
        ep_cancel_fd(p, fd, -ECANCELED);
        return;
    }
    struct io_uring_sqe *c = ring_sqe(p);
    io_uring_prep_cancel_fd(c, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(c, UD_IGNORE);
}

/* Park g until io, started here, completes; its result.  Nothing but the
 * completion ends the wait (ringo_close's close): g->io_op stays NULL.
 * On epoll the one such operation, a close, is made at once. */
int eng_wait(struct rproc *p, struct rg *g, const struct eng_io *io);

/* On valgrind (engine_uring.c "Valgrind"): what vg_io_done needs of an operation,
 * taken by vg_io_start before it starts (the kernel overwrites the address
 * lengths with the lengths of the addresses it had). */
struct vg_io {
    const struct eng_io *io;
    socklen_t alen_in;      /* accept: room for the address; recvmsg: msg_namelen */
    size_t control_in;      /* recvmsg: msg_controllen */
};
void vg_io_start(struct vg_io *v, const struct eng_io *io);
void vg_io_done(const struct vg_io *v, int res);

#endif /* RINGO_ENGINE_H */
