/*
 * accept.c — ringo_accept with multishot accept (IORING_ACCEPT_MULTISHOT,
 * Linux 5.19+): one submission accepts connection after connection, each
 * posted as its own CQE, instead of one SQE per accepted connection.
 *
 * Acceptors.  Each proc keeps an acceptor per (listening fd, accept4
 * flags) it has been asked to accept on: the multishot request armed on
 * the proc's ring (user_data = the acceptor's record, acc->rec), a FIFO of
 * accepted descriptors nobody has taken yet, and a FIFO of goroutines of
 * that proc parked in ringo_accept on it.  Everything in an acceptor is
 * touched by its proc's thread only, so no locks; goroutines never change
 * proc, so a waiter and its acceptor always share a thread.
 *
 * The path is taken only when the caller passes addr == NULL: one request
 * shared by every caller cannot fill per-caller address buffers (the peer
 * is still available through getpeername(2)).  With an address, and when
 * RINGO_NO_MULTISHOT is set or the kernel rejected the flag, ringo_accept is
 * the single-shot operation of io.c.
 *
 * ringo_accept: take a queued descriptor if there is one; else arm the
 * request if it is not armed, and park.  The park is interruptible
 * (PARK_INTERRUPTIBLE, the mechanism channels use): the waiter lends no
 * buffer to the kernel, so a deadline or ringo_cancel ends the wait at once
 * with -ETIMEDOUT / -ECANCELED, without a link timeout or ASYNC_CANCEL per
 * call.  A CQE hands its descriptor to the first waiter whose claim() it
 * wins, or queues it.  Waiters count in p->inflight while parked: they wait
 * on I/O, so deadlock detection must not report them, and the proc must
 * keep reaping its ring.  An armed request with no waiter counts nowhere:
 * it keeps nobody alive, and ringo_run ends when the last goroutine exits.
 *
 * A CQE without IORING_CQE_F_MORE ends the request (an error such as
 * -EMFILE, our cancel, a CQ overflow).  An error goes to one waiter, so a
 * server sees EMFILE and can back off as with single-shot accept; the
 * request is armed again if waiters remain, else by the next call.  -EINVAL
 * before the request ever produced a descriptor may mean the kernel does
 * not know the flag: the waiters retry single-shot, and if that does not
 * fail with -EINVAL too (a socket that is not listening), multishot is
 * turned off for the rest of the run.
 *
 * Bounding what the kernel accepts for nobody.  The request is cancelled
 * when ACC_QUEUE_MAX descriptors are queued with no waiter, when the last
 * waiter leaves through its deadline or a cancel, and when the proc runs
 * out of work with nobody waiting on it (acc_proc_idle: the goroutines
 * accepting are elsewhere, or gone): connections that arrive then stay in
 * the listen backlog, where any proc can take them.  An accept loop that
 * blocks only in ringo_accept is parked there whenever its proc is idle,
 * so it keeps its request armed; one that blocks on something else between
 * accepts while its proc idles pays a cancel and a re-arm each time, the
 * price of not accepting for goroutines that have gone elsewhere.
 * Descriptors that still arrive before the cancel takes effect are queued,
 * never dropped.  Queued descriptors are handed only to later callers on
 * the same proc with the same flags (or closed by ringo_close and at the
 * end of the run): a program that stops accepting on one proc leaves at
 * most those there (tests/check_accept.c cancel_one_of_several shows
 * what the cancel on the last waiter's departure is for).
 *
 * Lifetime.  The armed request holds a reference to the listening socket,
 * so close(2) alone would leave the port listening.  ringo_close(fd)
 * therefore cancels every acceptor on fd on every proc (a task posted to
 * each other proc), closes their queued descriptors, gives their waiters
 * -EBADF, and returns only when every request's last CQE has been reaped
 * (the kernel drops its file reference before posting it), then closes fd.
 * To keep ordinary closes cheap, ringo_accept marks the fd in a bitmap the
 * first time an acceptor is made for it; ringo_close of an unmarked fd costs
 * one load.  The closer holds fd's closing mark (close.c) from before it
 * looks at the bitmap until its close(2) is done, whoever it is and however
 * many procs run; a ringo_accept that would arm a request meanwhile waits
 * for the close instead (a goroutine that got -EBADF and tries again
 * at once would otherwise arm one while the closer waits for the others'
 * cancels, and keep the port listening after the close).  At the end of
 * ringo_run each proc cancels its requests, waits for their last CQEs and
 * closes every descriptor they delivered.
 *
 * An acceptor is freed once it is closed (or retired: its request failed
 * with nobody waiting and nothing queued) and no goroutine still holds it
 * (acc->refs: waiters parked on it, and calls that may reap completions
 * while they use it, since a reap can end the request).
 *
 * Rejected.  One acceptor per listener shared by all procs: every hand-off
 * to a goroutine of another proc would be a cross-proc wake.  Arming only
 * while a waiter exists (cancel when the queue would grow): under load
 * every batch of completions would cost a cancel and a re-arm, more SQEs
 * than single-shot accept.
 */
#include "config.h"

#include "internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ringo.h"

/* Descriptors queued with no waiter before the request is cancelled. */
#define ACC_QUEUE_MAX 16

struct acc_waiter {
    struct acc_waiter *next, *prev;
    struct rg *g;
    uint64_t token;
    bool linked;                /* in acc's waiter FIFO */
    bool passed;                /* unlinked by a completion its deadline or cancel had beaten */
    bool fallback;              /* retry with single-shot accept */
};

struct close_wait;

struct acceptor {
    struct ring_rec rec;        /* user_data of its requests: acc_cqe; first, see acc_of */
    struct acceptor *next;      /* p->acceptors */
    int fd, flags;
    bool armed;                 /* a multishot request is in the kernel: its last CQE is to come */
    bool cancelled;             /* ASYNC_CANCEL sent for the armed request */
    bool produced;              /* the armed request delivered a descriptor */
    bool closed;                /* ringo_close'd: never armed again, freed at refs == 0 */
    unsigned refs;              /* holders, see the top */
    int *q;                     /* ring buffer of accepted descriptors */
    unsigned qhead, qlen, qcap; /* qcap a power of two, ACC_QUEUE_MAX at first */
    struct acc_waiter *whead, *wtail;
    unsigned nwait;
    struct close_wait *closer;  /* set while a close waits for the last CQE */
};

static void acc_cqe(struct rproc *p, struct ring_rec *rec, int32_t res, uint32_t cflags);
static void acc_last_left(struct rproc *p, struct acceptor *acc);

static inline struct acceptor *acc_of(struct ring_rec *rec)
{
    return (struct acceptor *)((char *)rec - offsetof(struct acceptor, rec));
}

/* A ringo_close waiting for acceptors on several procs. */
/* Marks: fds that may have acceptors, for ringo_close's cheap check. */
_Atomic uint64_t acc_marks[ACC_MARK_FDS / 64];
_Atomic int acc_mark_big;

/* ------------------------------------------------------------------ */

static void acc_mark(int fd)
{
    /* seq_cst (with the load in acc_fd_marked): a ringo_close that comes
     * after this in the single total order takes the slow path; one that
     * comes before has marked fd closing, which acc_accept then sees
     * (close.c "Closing marks"). */
    if ((unsigned)fd < ACC_MARK_FDS) {
        uint64_t bit = 1ull << (fd % 64);
        if (!(load_seqcst(&acc_marks[fd / 64]) & bit))
            atomic_fetch_or_explicit(&acc_marks[fd / 64], bit, memory_order_seq_cst);
    } else if (!load_seqcst(&acc_mark_big)) {
        store_seqcst(&acc_mark_big, 1);
    }
}

static void acc_unmark(int fd)
{
    /* seq_cst like the set; big fds stay marked until the run ends (the
     * slow path then finds nothing). */
    if ((unsigned)fd < ACC_MARK_FDS)
        atomic_fetch_and_explicit(&acc_marks[fd / 64], ~(1ull << (fd % 64)),
                                  memory_order_seq_cst);
}

void acc_run_reset(void)
{
    /* Between runs, no proc exists: relaxed stores. */
    for (size_t i = 0; i < ACC_MARK_FDS / 64; i++)
        store_relaxed(&acc_marks[i], 0);
    store_relaxed(&acc_mark_big, 0);
}

/* ------------------------------------------------------------------ */
/* Acceptor bookkeeping (owner proc only) */

static void acc_free(struct rproc *p, struct acceptor *acc)
{
    struct acceptor **l = &p->acceptors;
    while (*l && *l != acc)
        l = &(*l)->next;
    if (*l)
        *l = acc->next;
    free(acc->q);
    free(acc);
}

static inline void acc_hold(struct acceptor *acc)
{
    acc->refs++;
}

static void acc_put(struct rproc *p, struct acceptor *acc)
{
    if (--acc->refs == 0 && acc->closed && !acc->armed)
        acc_free(p, acc);
}

static struct acceptor *acc_find(struct rproc *p, int fd, int flags)
{
    for (struct acceptor *a = p->acceptors; a; a = a->next)
        if (a->fd == fd && a->flags == flags && !a->closed)
            return a;
    struct acceptor *a = seam_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    /* The queue's first ACC_QUEUE_MAX slots come with the acceptor, so a
     * descriptor the kernel has already accepted finds room without an
     * allocation: one that failed there would leave nothing to do but
     * close it, resetting a connection nobody saw.  Out of memory here,
     * the caller takes the single-shot path instead. */
    a->q = seam_malloc(ACC_QUEUE_MAX * sizeof *a->q);
    if (!a->q) {
        free(a);
        return NULL;
    }
    a->rec.done = acc_cqe;
    a->qcap = ACC_QUEUE_MAX;
    a->fd = fd;
    a->flags = flags;
    a->next = p->acceptors;
    p->acceptors = a;
    acc_mark(fd);
    return a;
}

bool acc_has(struct rproc *p, int fd, int flags)
{
    for (struct acceptor *a = p->acceptors; a; a = a->next)
        if (a->fd == fd && a->flags == flags && !a->closed)
            return true;
    return false;
}

unsigned acc_count(const struct rproc *p)
{
    unsigned n = 0;
    for (const struct acceptor *a = p->acceptors; a; a = a->next)
        n++;
    return n;
}

static bool q_push(struct acceptor *acc, int fd)
{
    if (acc->qlen == acc->qcap) {
        /* Past ACC_QUEUE_MAX: the request has been cancelled, and these
         * are completions that were already on their way. */
        unsigned ncap = acc->qcap * 2;
        int *nq = seam_malloc(ncap * sizeof *nq);
        if (!nq)
            return false;
        for (unsigned i = 0; i < acc->qlen; i++)
            nq[i] = acc->q[(acc->qhead + i) & (acc->qcap - 1)];
        free(acc->q);
        acc->q = nq;
        acc->qcap = ncap;
        acc->qhead = 0;
    }
    acc->q[(acc->qhead + acc->qlen) & (acc->qcap - 1)] = fd;
    acc->qlen++;
    return true;
}

static int q_pop(struct acceptor *acc)
{
    int fd = acc->q[acc->qhead];
    acc->qhead = (acc->qhead + 1) & (acc->qcap - 1);
    acc->qlen--;
    return fd;
}

static void q_close_all(struct acceptor *acc)
{
    while (acc->qlen)
        close(q_pop(acc));
}

static void w_unlink(struct acceptor *acc, struct acc_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        acc->whead = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        acc->wtail = w->prev;
    w->linked = false;
    acc->nwait--;
}

/* End the wait of the first waiter still parked with `result`; false if
 * there was none (waiters whose deadline or cancel won are dropped, and
 * marked so: they leave as if still linked, see acc_accept). */
static bool w_wake_first(struct acceptor *acc, int result, bool fallback)
{
    while (acc->whead) {
        struct acc_waiter *w = acc->whead;
        w_unlink(acc, w);
        if (claim(w->g, w->token)) {
            w->fallback = fallback;
            ready(w->g, result);
            return true;
        }
        w->passed = true;
    }
    return false;
}

static void acc_arm(struct rproc *p, struct acceptor *acc)
{
    struct io_uring_sqe *sqe = ring_sqe(p);
    io_uring_prep_multishot_accept(sqe, acc->fd, NULL, NULL, acc->flags);
    io_uring_sqe_set_data(sqe, &acc->rec);
    acc->armed = true;
    acc->cancelled = false;
    acc->produced = false;
}

/* Ask the kernel to end the armed request.  `now`: submit at once rather
 * than with the round, so that no connection is accepted for nobody after
 * the caller returns. */
static void acc_cancel(struct rproc *p, struct acceptor *acc, bool now)
{
    acc_hold(acc);
    struct io_uring_sqe *sqe = ring_sqe(p);
    if (acc->armed && !acc->cancelled) {
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&acc->rec, 0);
        acc->cancelled = true;
    } else {
        io_uring_prep_nop(sqe);
    }
    io_uring_sqe_set_data64(sqe, UD_IGNORE);
    if (now)
        eng_flush(p);
    acc_put(p, acc);
}

/* A request of a closed acceptor has ended. */
static void acc_close_finished(struct rproc *p, struct acceptor *acc)
{
    struct close_wait *cw = acc->closer;
    acc->closer = NULL;
    owner_add(p->inflight, -1);
    acc_hold(acc);
    acc_put(p, acc); /* frees it unless a waiter still holds it */
    close_wait_done(cw);
}

/* A CQE of an acceptor's request (the handler of acc->rec). */
static void acc_cqe(struct rproc *p, struct ring_rec *rec, int32_t res, uint32_t cflags)
{
    struct acceptor *acc = acc_of(rec);
    bool more = (cflags & IORING_CQE_F_MORE) != 0;
    if (acc->closed) {
        if (res >= 0)
            close(res);
        if (!more) {
            acc->armed = false;
            if (acc->closer) {
                acc_close_finished(p, acc);
            } else {
                acc_hold(acc);
                acc_put(p, acc); /* frees it unless a waiter still holds it */
            }
        }
        return;
    }
    acc_hold(acc);
    if (res >= 0) {
        acc->produced = true;
        if (!w_wake_first(acc, res, false) && !q_push(acc, res))
            close(res); /* no memory for the queue: the connection is dropped */
    }
    if (!more) {
        acc->armed = false;
        acc->cancelled = false;
        bool failed = res < 0 && res != -ECANCELED;
        if (res == -EINVAL && !acc->produced) {
            /* Perhaps a kernel without IORING_ACCEPT_MULTISHOT: every
             * waiter retries single-shot (see the top). */
            while (w_wake_first(acc, 0, true))
                ;
        } else if (failed) {
            /* -ECANCELED is never a waiter's: ours (acc_cancel), or a cancel
             * of every operation on the file (engine.h eng_cancel_fd: a
             * deadline changed, a dup closed), after which the request is
             * made again below.  A waiter's own cancel or deadline ends its
             * park without the request (acc_accept unlinks it). */
            w_wake_first(acc, res, false);
        }
        if (acc->nwait && !acc->closed) {
            acc_arm(p, acc);
        } else if (failed && !acc->qlen && !acc->closed) {
            /* Failed (the fd does not listen, is not a socket, ...) with
             * nobody left on it: retired as if closed, freed when the
             * last holder lets go; the next call makes a new one.  Kept,
             * it would stay on the proc's list, which every call walks,
             * until a ringo_close of the fd or the end of the run. */
            acc->closed = true;
        }
    } else if (acc->qlen >= ACC_QUEUE_MAX && !acc->nwait && !acc->cancelled) {
        acc_cancel(p, acc, false);
    }
    acc_put(p, acc);
}

/* ------------------------------------------------------------------ */
/* ringo_accept */

int acc_accept(struct rproc *p, struct rg *g, int fd, int flags)
{
    struct acceptor *acc;
    for (;;) {
        acc = acc_find(p, fd, flags);
        if (!acc)
            return ACC_SINGLE;
        if (acc->qlen)
            return q_pop(acc);
        if (acc->armed)
            break;
        /* A close of fd in progress may have looked for acceptors already
         * (close.c "Closing marks"; the acceptor mark, set by acc_find
         * with seq_cst, is what it looked at): arm only once it is done.
         * With one proc too: a goroutine's close parks while it waits for
         * the requests it cancelled, and a plain thread's runs beside us;
         * a request armed meanwhile would keep the socket listening after
         * the close.  (Only here, as we arm: rare.) */
        _Atomic uint32_t *mark = fdclose_pending(fd);
        if (!mark) {
            acc_arm(p, acc);
            break;
        }
        fdclose_wait(mark);
        int chk = block_check(g);
        if (chk)
            return chk;
    }
    struct acc_waiter w = { .g = g, .linked = true };
    acc_hold(acc);
    w.token = park_prepare(g, W_IO, PARK_INTERRUPTIBLE);
    store_relaxed(&g_run(g)->wait_fd, fd); /* for ringo_dump, relaxed as in park_prepare */
    /* The listener's read deadline counts too; read after park_prepare's
     * barrier, against ringo_fd_deadline_set's (fddeadline.c), which then
     * wakes us through acc_fd_deadline if we read the old one. */
    uint32_t seq;
    int64_t fdl = fdl_get(fd, RINGO_READ, &seq);
    if (fdl < g_run(g)->wake_at)
        g_run(g)->wake_at = fdl;
    w.prev = acc->wtail;
    if (acc->wtail)
        acc->wtail->next = &w;
    else
        acc->whead = &w;
    acc->wtail = &w;
    acc->nwait++;
    owner_add(p->inflight, 1);
    int r = park_commit(g, w.token, PARK_INTERRUPTIBLE);
    owner_add(p->inflight, -1);
    if (w.linked || w.passed) {
        /* Deadline or cancel: leave, and if nobody else waits, stop the
         * kernel accepting for nobody (see the top).  Also when a
         * completion reaped between our wake and our run passed over us
         * (w_wake_first): it found nobody else, and queued its descriptor
         * for a later caller here, but the request is still armed. */
        if (w.linked)
            w_unlink(acc, &w);
        acc_last_left(p, acc);
    }
    acc_put(p, acc);
    if (w.fallback)
        return ACC_FALLBACK;
    return r;
}

/* A waiter that its deadline or a cancel made leave, after the others
 * (see the top): stop the kernel accepting for nobody, now. */
static void acc_last_left(struct rproc *p, struct acceptor *acc)
{
    if (!acc->nwait && acc->armed && !acc->cancelled && !acc->closed)
        acc_cancel(p, acc, true);
}

/* A waiter woken to start again (ACC_AGAIN: a deadline of fd changed)
 * that leaves instead, its deadline passed or cancelled (io.c
 * accept_any): it left as acc_accept's waiters that time out do. */
void acc_left(struct rproc *p, int fd, int flags)
{
    for (struct acceptor *acc = p->acceptors; acc; acc = acc->next)
        if (acc->fd == fd && acc->flags == flags && !acc->closed) {
            acc_last_left(p, acc);
            return;
        }
}

/* A deadline of fd changed (fddeadline.c): every waiter on it starts
 * again, with the new deadline; the request stays armed. */
void acc_fd_deadline(struct rproc *p, int fd)
{
    for (struct acceptor *acc = p->acceptors; acc; acc = acc->next)
        if (acc->fd == fd && !acc->closed)
            while (w_wake_first(acc, ACC_AGAIN, false))
                ;
}

/* The proc has nothing to run (sched.c proc_sleep): cancel the requests
 * nobody on it waits on, so the kernel does not accept for this proc while
 * the goroutines accepting are elsewhere (see the top). */
static void acc_proc_idle(struct rproc *p)
{
    struct acceptor *acc = p->acceptors;
    while (acc) {
        if (!acc->armed || acc->cancelled || acc->nwait || acc->closed) {
            acc = acc->next;
            continue;
        }
        acc_hold(acc);
        acc_cancel(p, acc, false); /* proc_sleep submits it */
        struct acceptor *next = acc->next; /* read after any reap, while held */
        acc_put(p, acc);
        acc = next;
    }
}

/* ------------------------------------------------------------------ */
/* ringo_close of a listener */

/* On p: close every acceptor on fd.  Adds to cw->pending for each request
 * still to end. */
static void acc_close_local(struct rproc *p, int fd, struct close_wait *cw)
{
    bool flush = false;
    for (struct acceptor *acc = p->acceptors, *next; acc; acc = next) {
        next = acc->next;
        if (acc->fd != fd || acc->closed)
            continue;
        acc->closed = true;
        q_close_all(acc);
        acc_hold(acc);
        while (w_wake_first(acc, -EBADF, false))
            ;
        if (acc->armed) {
            acc->closer = cw;
            /* relaxed: this proc's own count (or the closer's guard) is
             * still held, so pending cannot reach 0 meanwhile */
            fetch_add_relaxed(&cw->pending, 1);
            owner_add(p->inflight, 1); /* a close waits on it: keep reaping, not idle */
            if (!acc->cancelled) {
                struct io_uring_sqe *sqe = ring_sqe(p);
                io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&acc->rec, 0);
                io_uring_sqe_set_data64(sqe, UD_IGNORE);
                acc->cancelled = true;
            }
            flush = true;
        }
        next = acc->next; /* acc is held: read its link before the put frees it */
        acc_put(p, acc);
    }
    if (flush)
        eng_flush(p);
}

struct acc_close_task {
    struct rtask t;
    int fd;
    bool heap;                  /* a plain thread's (freed here), else on the closer's stack */
    struct close_wait *cw;
};

static void close_task_run(struct rproc *p, struct rtask *t)
{
    struct acc_close_task *ct = (struct acc_close_task *)t;
    bool heap = ct->heap; /* a task on the closer's stack is gone once it is counted done */
    acc_close_local(p, ct->fd, ct->cw);
    close_wait_done(ct->cw);
    if (heap)
        free(ct);
}

static void close_task_discard(struct rtask *t)
{
    /* Only a plain thread's tasks can be left when the run ends: a
     * goroutine's close keeps the run alive until its tasks have run. */
    struct acc_close_task *ct = (struct acc_close_task *)t;
    close_wait_done(ct->cw);
    free(ct);
}

static void post_close(struct rproc *q, struct acc_close_task *ct, int fd, bool heap,
                       struct close_wait *cw)
{
    ct->t.run = close_task_run;
    ct->t.discard = close_task_discard;
    ct->fd = fd;
    ct->heap = heap;
    ct->cw = cw;
    fetch_add_relaxed(&cw->pending, 1); /* relaxed: the poster's guard is held */
    proc_post_task(q, &ct->t);
}

/* Other procs a goroutine's close asks at a time: their tasks live on its
 * stack, so the close allocates nothing.  (A task that could not be
 * allocated left that proc's acceptors open, the port listening and their
 * waiters parked for ever: tests/check_fault.c, accept.) */
#define ACC_CLOSE_BATCH 8

void acc_release_fd(int fd)
{
    acc_unmark(fd);
    struct rproc *p = tls_proc;
    struct rg *g = p ? p->cur : NULL;
    if (p && !g)
        return; /* a proc's scheduler loop (never) */
    if (g) {
        /* In batches: the goroutine stays parked until every task of a
         * batch has run, so the tasks outlive their use; and the run cannot
         * end while it waits (it is live), so none is ever discarded. */
        struct acc_close_task tasks[ACC_CLOSE_BATCH];
        unsigned i = 0;
        while (i < rt.nprocs) {
            struct close_wait cw = { .g = g };
            /* The guard, dropped after posting.  relaxed: other procs see
             * cw through proc_post_task's release push. */
            store_relaxed(&cw.pending, 1);
            cw.token = park_prepare(g, W_IO, 0);
            store_relaxed(&g_run(g)->wait_fd, fd); /* for ringo_dump */
            owner_add(p->inflight, 1); /* waiting on I/O of other procs: not a deadlock */
            for (unsigned n = 0; i < rt.nprocs && n < ACC_CLOSE_BATCH; i++) {
                if (rt.procs[i] == p)
                    acc_close_local(p, fd, &cw);
                else
                    post_close(rt.procs[i], &tasks[n++], fd, false, &cw);
            }
            close_wait_done(&cw);
            park_commit(g, cw.token, 0);
            owner_add(p->inflight, -1);
        }
        return;
    }
    /* A plain thread, the run pinned by the caller (close.c close_plain);
     * its close_wait on the heap (internal.h). */
    struct close_wait *cw = close_wait_plain_new();
    if (!cw)
        return; /* the run is stopping: it cancels every request itself */
    for (unsigned i = 0; i < rt.nprocs; i++) {
        /* Heap tasks: the run may end before they run (then they are
         * discarded, after we have left).  Out of memory, wait for some
         * rather than leave a proc's acceptors open; a run that ends
         * meanwhile closes them all itself. */
        struct acc_close_task *ct = close_task_alloc(sizeof *ct);
        if (!ct)
            break;
        post_close(rt.procs[i], ct, fd, true, cw);
    }
    close_wait_done(cw); /* the guard */
    close_wait_plain(cw); /* a run that ends meanwhile cancels every request itself */
}

/* ------------------------------------------------------------------ */
/* End of the run, on the proc's thread after its loop */

static void acc_proc_fini(struct rproc *p)
{
    unsigned armed = 0;
    for (struct acceptor *acc = p->acceptors; acc; acc = acc->next) {
        q_close_all(acc);
        if (!acc->armed)
            continue;
        armed++;
        if (!acc->cancelled) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);
            if (!sqe) {
                io_uring_submit(&p->ring);
                sqe = io_uring_get_sqe(&p->ring);
            }
            if (sqe) {
                io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&acc->rec, 0);
                io_uring_sqe_set_data64(sqe, UD_IGNORE);
                acc->cancelled = true;
            }
        }
    }
    /* Wait for the last CQE of every request (bounded: a kernel that
     * never posted it would otherwise hang the end of the run), closing
     * what they still deliver.  Other completions are dropped: no
     * goroutine runs again. */
    int64_t until = now_ns() + 2000000000LL;
    while (armed && now_ns() < until) {
        struct __kernel_timespec ts = { 0, 50000000 };
        struct io_uring_cqe *cqe, c;
        io_uring_submit_and_wait_timeout(&p->ring, &cqe, 1, &ts, NULL);
        while (ring_next_cqe(p, &c)) {
            struct ring_rec *rec = (struct ring_rec *)(uintptr_t)c.user_data;
            if (!rec || rec->done != acc_cqe)
                continue;
            struct acceptor *acc = acc_of(rec);
            if (c.res >= 0)
                close(c.res);
            if (!(c.flags & IORING_CQE_F_MORE) && acc->armed) {
                acc->armed = false;
                armed--;
            }
        }
    }
    while (p->acceptors) {
        struct acceptor *acc = p->acceptors;
        p->acceptors = acc->next;
        /* A plain thread's close that waited for this request: it has
         * stopped waiting (the run stopped), and its close_wait goes when
         * every party has counted down (internal.h). */
        if (acc->closer)
            close_wait_done(acc->closer);
        free(acc->q);
        free(acc);
    }
}

/* The hooks (runtime.c "Module hooks").  At the run's end every proc has
 * closed its acceptors (acc_proc_fini), and the marks are cleared, so that
 * a plain thread's ringo_close after the run finds none; ringo_run also
 * clears them before its procs start. */
const struct rhooks accept_hooks = {
    .proc_idle = acc_proc_idle,
    .proc_fini = acc_proc_fini,
    .run_end = acc_run_reset,
};
