/*
 * engine.h — the I/O a goroutine asks of its proc, described apart from
 * the mechanism that performs it.
 *
 * io.c describes each blocking call as a struct eng_io (what to do, on
 * which descriptor, with which buffer) and hands it to eng_start with the
 * record its completion is to reach (struct ring_rec, internal.h: the
 * record carries its own handler, so nothing below calls back up except
 * through it).  eng_cancel asks for an operation to end early (its
 * completion still comes, with -ECANCELED or its result if it won the
 * race); eng_cancel_fd ends every operation on a descriptor.  Completions
 * are reaped, and the proc waits for them bounded by its nearest timer, in
 * ring_poll; another proc is woken with ring_send_wake.
 *
 * The io_uring engine (ring.c) turns a struct eng_io into one SQE.
 * eng_start is inline: at a call site whose kind is a constant the switch
 * below folds away, and the description costs nothing over preparing the
 * SQE by hand.
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

/* Start io; its completion calls rec->done on p's thread. */
static inline void eng_start(struct rproc *p, const struct eng_io *io, struct ring_rec *rec)
{
    struct io_uring_sqe *sqe = ring_sqe(p);
    eng_start_sqe(sqe, io);
    io_uring_sqe_set_data(sqe, rec);
}

/* Ask for the operation of rec, started on p, to end (ring.c). */
static inline void eng_cancel(struct rproc *p, struct ring_rec *rec)
{
    struct io_uring_sqe *c = ring_sqe(p);
    io_uring_prep_cancel(c, rec, 0);
    io_uring_sqe_set_data64(c, UD_IGNORE);
}

/* Ask for every operation on fd started on p to end. */
static inline void eng_cancel_fd(struct rproc *p, int fd)
{
    struct io_uring_sqe *c = ring_sqe(p);
    io_uring_prep_cancel_fd(c, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(c, UD_IGNORE);
}

/* Park g until io, started here, completes; its result.  Nothing but the
 * completion ends the wait (ringo_close's close): g->io_op stays NULL. */
int eng_wait(struct rproc *p, struct rg *g, const struct eng_io *io);

/* On valgrind (ring.c "Valgrind"): what vg_io_done needs of an operation,
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
