/*
 * close.c — ringo_close, and the closing marks that let it end every
 * goroutine operation on the descriptor, as Go's Close does.
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
 * -ECANCELED, which io_wait turns into -EBADF (io.c, step 4).  An operation that starts on
 * another proc after the closer looked at that proc's counts is caught by
 * the closer's mark instead ("Closing marks", below): io_wait finds the
 * mark after counting the operation, turns its SQE into a NOP, and starts
 * the operation again once the close is done (IO_RESTART).
 *
 * Closing marks.  A count tells a closer about operations already
 * counted; an operation that a goroutine on another proc starts after the
 * closer looked at that proc's counts, but before the close(2) is done,
 * would hold its own reference to the file and block on it for ever (the
 * closer never cancels it; the cancel cannot follow the close, which frees
 * the number).  Go's Close ends such an operation too.  So a goroutine's
 * ringo_close marks fd first (a count of closes in progress per fd, in one
 * table for the whole run), and an operation checks for a mark after it
 * has been counted and before it can be submitted:
 *
 *     closer C (ringo_close)             goroutine R (operation on fd)
 *     mark(fd)                           fdops_inc(fd)
 *     smp_mb()                 (A)  <->  smp_mb()                 (B)
 *     look at every proc's count         load mark(fd)
 *
 * "C misses R's count and R misses C's mark" cannot happen (store-load on
 * both sides, each ordered by its full barrier).  So either C sees the
 * count and has R's proc cancel the operation (close_cancel_remote: the
 * cancel is issued on R's proc, after R's SQE), or R sees the mark: R turns its prepared
 * SQE into a NOP, drops its count, waits until no close of fd is in
 * progress, and starts again, after the close(2): it then fails with
 * -EBADF, or works on whatever file a later open gave the number, as an
 * operation that starts after close(2) does.  Failing at once instead
 * would be wrong in the window between the close(2) and the unmark, when
 * the number may already name a new file.  Both may happen: the cancel
 * then finds nothing.
 *
 * A mark's word: closes in progress in bits 0-15, goroutines' openats
 * relative to fd in bits 16-30 ("Directories", below), and
 * CLOSING_WAITERS (bit 31) set by a goroutine before it sleeps on the
 * word (futex_wait), so that whoever ends what it waits for calls
 * futex_wake only when someone waits.  Pages are allocated by
 * the first closer that needs one (published with a CAS, release) and
 * freed at the end of the run; an fd past the table, or a page that
 * cannot be allocated, is marked in `closing_untracked`, which an
 * operation on any fd takes as a mark.
 *
 * With one proc, operations neither mark nor look (but on epoll, where
 * the closer marks all the same: one that the helpers' queue refused
 * while the closer waited for a helper, offload.c): the closer looks at
 * the counts and queues its close without any other goroutine running in
 * between, and an operation queued after the close is issued after it.
 * With more, each operation on an fd pays two loads: its (B) is the full
 * barrier park_prepare issues anyway (io.c io_wait, fdclose_look).
 * Multishot accept requests (accept.c) are not counted; acc_accept looks
 * for a mark before it arms one, after acc_mark's seq_cst store, which is
 * what the closer's acc_fd_marked load pairs with across (A).  That look is
 * made with one proc too, and a close of an fd with acceptors marks it
 * then too: such a close parks while other procs cancel their requests,
 * and a goroutine may run and try to accept meanwhile.
 *
 * A plain thread's ringo_close during a run marks fd as well (the run
 * pinned by run_enter, so the table outlives the mark): an accept arms no
 * request that would keep a listener open, and, with more than one proc,
 * an operation that a goroutine starts meanwhile waits for the close(2)
 * and starts again.  (With one proc, an operation that starts between a
 * plain thread's look at the procs' counts and its close(2) is not
 * ended: on epoll it may wait for ever.  ringo_openat(3) promises a plain
 * thread's close nothing more than close(2) but for acceptors.)
 *
 * Directories.  An openat relative to a directory descriptor names it by
 * number, and io_uring looks the number up only when the request runs
 * (an O_CREAT open, or one the dentry cache cannot answer, runs on the
 * kernel's worker after the submit), as the epoll engine's helper does:
 * a close(2) in between would have the open made in whatever directory
 * gets the number next.  Go's Close waits for every operation on the
 * descriptor to let go of it.  So a goroutine's ringo_openat of a
 * relative path counts itself on the directory's mark word (bits 16-30)
 * from before its request until after its result (fdclose_dir_enter/
 * exit), and a closer that has marked the fd waits, after its mark,
 * until that count is 0 (fdclose_dir_wait, asleep on the word as
 * fdclose_wait is; whoever ends the last open or the last close wakes
 * it).  The count and the closes in progress share the word, so the
 * openat's CAS and the closer's increment are in one order: either the
 * openat sees the close (it waits for the close, then starts, as any
 * operation would) or the closer sees the openat.  With one proc the
 * closer marks only when it finds an openat counted (nothing else runs
 * between its look and its mark).  Numbers past the table share
 * closing_untracked: a close of one of them waits for openats relative to
 * any other.  A closer that marks closing_untracked
 * (no page) looks at the fd's word after its barrier (A), and an openat
 * looks at closing_untracked after a full barrier of its own.  On epoll
 * the helper's queue lets go of a queued openat with -EBADF before the
 * closer waits (offload.c "Engine jobs and ringo_close"), so the wait
 * ends however busy the helpers are.
 *
 * Rejected.  Go's way, closing the descriptor only when the last
 * operation lets go of it: it needs a descriptor object shared by all
 * users, and ringo has only numbers.  A membarrier(2)-based asymmetric
 * barrier, to take (B) off the I/O path: it needs registering and a
 * fallback, for a cost no benchmark has shown.
 */
#include "config.h"

#include "internal.h"
#include "engine.h"
#include "futex.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "ringo.h"

/* The caller's goroutine, or NULL for the plain-system-call path. */
static inline struct rg *io_self(struct rproc **pp)
{
    struct rproc *p = tls_proc;
    *pp = p;
    return p ? p->cur : NULL;
}

/* ------------------------------------------------------------------ */
/* Closing marks (see "Closing marks" at the top) */

#define CLOSING_WAITERS (1u << 31)
#define CLOSING_CLOSES  0xffffu         /* closes in progress */
#define CLOSING_DIR_ONE (1u << 16)      /* an openat relative to fd */
#define CLOSING_DIRS    (0x7fffu << 16) /* openats relative to fd in progress */

static _Atomic(_Atomic uint32_t *) closing_page[FDOPS_PAGES];
static _Atomic uint32_t closing_untracked;

/* fd's mark, or NULL (no page for it, and none made unless create).
 * Inlined: fdclose_look, which every I/O call makes when there is more
 * than one proc, then folds the page's creation away. */
static inline __attribute__((always_inline)) _Atomic uint32_t *closing_slot(int fd, bool create)
{
    unsigned pg = (unsigned)fd >> FDOPS_PAGE_BITS;
    if (pg >= FDOPS_PAGES)
        return NULL;
    /* acquire: pairs with the CAS below (the page's zeroes) */
    _Atomic uint32_t *page = load_acquire(&closing_page[pg]);
    if (!page && create) {
        _Atomic uint32_t *fresh = seam_calloc(FDOPS_PAGE_SIZE, sizeof *fresh);
        if (!fresh)
            return NULL;
        /* acq_rel: release publishes the zeroes; on failure, acquire
         * those of the closer on another proc that installed its page */
        if (cas_acq_rel(&closing_page[pg], &page, fresh))
            page = fresh;
        else
            free(fresh);
    }
    return page ? &page[(unsigned)fd & (FDOPS_PAGE_SIZE - 1)] : NULL;
}

_Atomic uint32_t *fdclose_mark(int fd)
{
    _Atomic uint32_t *m = closing_slot(fd, true);
    if (!m)
        m = &closing_untracked;
    /* relaxed: ordered by (A); and on the word itself, the openats'
     * CAS (fdclose_dir_enter) and this increment are in one order */
    uint32_t v = load_relaxed(m);
    for (;;) {
        if ((v & CLOSING_CLOSES) == CLOSING_CLOSES) {
            /* 65535 closes of fd under way: let one end first */
            if (tls_proc && tls_proc->cur)
                ringo_yield();
            else
                sched_yield();
            v = load_relaxed(m);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(m, &v, v + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
            break;
    }
    /* (A): the mark before the closer's loads of the procs' counts (and of
     * the acceptor marks, accept.c); pairs with (B) in fdclose_pending. */
    smp_mb();
    return m;
}

/* Wake everyone asleep on a mark's word (CLOSING_WAITERS set in v, the
 * value before the caller's change), the caller having ended what they
 * wait for.  A waiter that finds something else begun meanwhile sets the
 * flag again before it sleeps. */
static void closing_wake(_Atomic uint32_t *m, uint32_t v)
{
    if (v & CLOSING_WAITERS) {
        atomic_fetch_and_explicit(m, ~CLOSING_WAITERS, memory_order_release);
        futex_wake(m, INT32_MAX);
    }
}

void fdclose_unmark(_Atomic uint32_t *m)
{
    /* acq_rel: release orders the completed close before a waiter's
     * acquire load that sees the count drop; acquire keeps the wake
     * below after it. */
    uint32_t v = fetch_sub_acq_rel(m, 1);
    if ((v & CLOSING_CLOSES) == 1)
        closing_wake(m, v); /* the last close of fd */
}

_Atomic uint32_t *fdclose_pending(int fd)
{
    /* (B): the caller's count of its operation (fdops_inc, a relaxed
     * store) before the loads of the marks; pairs with (A). */
    smp_mb();
    return fdclose_look(fd);
}

_Atomic uint32_t *fdclose_look(int fd)
{
    if (load_relaxed(&closing_untracked) & CLOSING_CLOSES)
        return &closing_untracked;
    _Atomic uint32_t *m = closing_slot(fd, false);
    if (m && (load_relaxed(m) & CLOSING_CLOSES))
        return m;
    return NULL;
}

/* Sleep on a mark's word until none of the bits in `what` is set. */
static void closing_wait_while(_Atomic uint32_t *m, uint32_t what)
{
    uint32_t v = load_acquire(m);
    while (v & what) {
        if (!(v & CLOSING_WAITERS) && !cas_acq_rel(m, &v, v | CLOSING_WAITERS))
            continue; /* v reloaded: the word changed */
        futex_wait(m, v | CLOSING_WAITERS, W_IO); /* may return spuriously */
        v = load_acquire(m);
    }
}

void fdclose_wait(_Atomic uint32_t *m)
{
    /* acquire: pairs with fdclose_unmark's release; the close(2) is done
     * before the caller starts its operation again. */
    closing_wait_while(m, CLOSING_CLOSES);
}

/* fd's word for openat counts: its page's (made if create), or, past the
 * table, closing_untracked; NULL if the page is missing. */
static _Atomic uint32_t *dir_word(int fd, bool create)
{
    if ((unsigned)fd >> FDOPS_PAGE_BITS >= FDOPS_PAGES)
        return &closing_untracked;
    return closing_slot(fd, create);
}

int fdclose_dir_enter(int fd, _Atomic uint32_t **word)
{
    _Atomic uint32_t *w = dir_word(fd, true);
    if (!w)
        return -ENOMEM;
    for (;;) {
        /* seq_cst: one total order with the closers' increments of the
         * same word (fdclose_mark), so that either this openat sees their
         * close or they see this count. */
        uint32_t v = atomic_load_explicit(w, memory_order_relaxed);
        if (v & CLOSING_CLOSES) {
            fdclose_wait(w); /* a close is under way: after it */
            continue;
        }
        if ((v & CLOSING_DIRS) == CLOSING_DIRS) {
            ringo_yield(); /* the count is full (32767 in progress) */
            continue;
        }
        if (!atomic_compare_exchange_weak_explicit(w, &v, v + CLOSING_DIR_ONE,
                                                   memory_order_seq_cst, memory_order_relaxed))
            continue;
        /* A closer whose page could not be allocated marks
         * closing_untracked, then looks at this word: a full barrier
         * between our count and our look at its mark, as (A) is on its
         * side. */
        smp_mb();
        if (w != &closing_untracked && (load_relaxed(&closing_untracked) & CLOSING_CLOSES)) {
            fdclose_dir_exit(w);
            fdclose_wait(&closing_untracked);
            continue;
        }
        *word = w;
        return 0;
    }
}

void fdclose_dir_exit(_Atomic uint32_t *w)
{
    /* release: the openat is over before a closer's acquire load sees
     * the count drop and closes the directory */
    uint32_t v = fetch_sub_acq_rel(w, CLOSING_DIR_ONE);
    if ((v & CLOSING_DIRS) == CLOSING_DIR_ONE)
        closing_wake(w, v); /* the last openat relative to fd */
}

bool fdclose_dir_busy(int fd)
{
    _Atomic uint32_t *w = dir_word(fd, false);
    return w && (load_relaxed(w) & CLOSING_DIRS);
}

/* A closer that has marked fd: wait until no openat relative to it is in
 * progress (see "Directories" at the top). */
static void fdclose_dir_wait(int fd)
{
    _Atomic uint32_t *w = dir_word(fd, false);
    if (w)
        closing_wait_while(w, CLOSING_DIRS);
}

static void fdclose_run_end(void)
{
    /* No goroutine is left, so no close is in progress and nobody reads
     * the table: relaxed. */
    for (unsigned i = 0; i < FDOPS_PAGES; i++) {
        free((void *)load_relaxed(&closing_page[i]));
        store_relaxed(&closing_page[i], NULL);
    }
    store_relaxed(&closing_untracked, 0);
}

const struct rhooks close_hooks = { .run_end = fdclose_run_end };

/* ------------------------------------------------------------------ */
/* ringo_close */

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
    eng_cancel_fd(q, ct->fd);
    /* Submitted now: the cancel finds its operations by the file the fd
     * names when it is issued, which must be before the closer's close. */
    eng_flush(q);
    close_wait_done(ct->cw);
}

/* A plain thread's (heap) task, on the epoll engine (close_cancel_plain):
 * end every wait on fd with -EBADF, then count down; freed once run, or
 * discarded with the run, when the closer no longer waits for it.  Not
 * -ECANCELED, which io.c would take for a close only if it saw one counted
 * (fdl_maybe_closed): an operation that parked after the count would be
 * made again, and wait on the descriptor that the closer then closes,
 * which epoll never reports (with one proc, operations do not look at the
 * closing mark that would hold them back). */
static void close_cancel_run_free(struct rproc *q, struct rtask *t)
{
    struct close_task *ct = (struct close_task *)t;
    ep_cancel_fd(q, ct->fd, -EBADF);
    close_wait_done(ct->cw);
    free(t);
}

static void close_cancel_discard(struct rtask *t)
{
    struct close_task *ct = (struct close_task *)t;
    close_wait_done(ct->cw); /* the run ended first: waiters are gone */
    free(t);
}

/* A plain thread closes fd on the epoll engine: goroutines waiting for
 * its readiness must end (with -EBADF) before the close, since epoll
 * forgets a closed file and would never wake them.  (On io_uring their
 * operations hold the file: they end as the file does.)  Like
 * acc_release_fd's plain-thread close: heap tasks, and the thread polls
 * until they have run or the run has ended.  The run is pinned by the
 * caller (close_plain). */
static void close_cancel_plain(int fd)
{
    ep_fd_closing(fd);
    struct close_wait *cw = close_wait_plain_new();
    if (!cw)
        return; /* the run is stopping: its waiters end with it */
    for (unsigned i = 0; i < rt.nprocs; i++) {
        struct rproc *q = rt.procs[i];
        if (!fdops_busy(q, fd))
            continue;
        struct close_task *ct = close_task_alloc(sizeof *ct);
        if (!ct)
            break;
        ct->t.run = close_cancel_run_free;
        ct->t.discard = close_cancel_discard;
        ct->fd = fd;
        ct->cw = cw;
        fetch_add_relaxed(&cw->pending, 1); /* before the post's release */
        proc_post_task(q, &ct->t);
    }
    close_wait_done(cw); /* the guard */
    close_wait_plain(cw);
}

/* ringo_close from a plain thread (see "Closing marks" at the top). */
static int close_plain(int fd)
{
    struct rproc *me;
    if (fd < 0 || !run_enter(&me))
        return close(fd) < 0 ? -errno : 0; /* no run: no goroutine uses fd */
    fdl_close(fd); /* its deadlines go with it, as a goroutine's close */
    /* The mark before the look at the acceptors (A), as a goroutine's. */
    _Atomic uint32_t *mark = fdclose_mark(fd);
    if (__builtin_expect(acc_fd_marked(fd), 0))
        acc_release_fd(fd);
    struct offload_closing oc = { .fd = fd };
    if (eng_epoll()) {
        close_cancel_plain(fd);
        offload_io_close_begin(&oc); /* as a goroutine's close, below */
    }
    fdclose_dir_wait(fd);
    if (eng_epoll())
        offload_io_close_wait(&oc, NULL, NULL);
    int r = close(fd) < 0 ? -errno : 0;
    if (eng_epoll())
        offload_io_close_end(&oc);
    fdclose_unmark(mark);
    run_exit(me);
    return r;
}

void *close_task_alloc(size_t size)
{
    void *t;
    while (!(t = seam_malloc(size)) && !load_relaxed(&rt.stopping)) {
        struct timespec ts = { 0, 100000 };
        nanosleep(&ts, NULL);
    }
    return t;
}

struct close_wait *close_wait_plain_new(void)
{
    struct close_wait *cw = close_task_alloc(sizeof *cw);
    if (!cw)
        return NULL;
    cw->g = NULL;
    cw->token = 0;
    /* The guard, dropped by the poster once it has posted, and the
     * thread's own count, dropped by close_wait_plain.  relaxed: parties
     * see cw through proc_post_task's release. */
    store_relaxed(&cw->pending, 2);
    return cw;
}

void close_wait_plain_free(struct close_wait *cw)
{
    free(cw);
}

void close_wait_plain(struct close_wait *cw)
{
    /* acquire: pairs with close_wait_done's acq_rel; the parties' work is
     * done.  A run that ends meanwhile discards or ends what is left
     * (stopping: relaxed, a flag polled in a loop, no data hangs on it):
     * then parties may still count down after we have left, and the last
     * one frees cw. */
    while (load_acquire(&cw->pending) > 1 && !load_relaxed(&rt.stopping)) {
        struct timespec ts = { 0, 100000 };
        nanosleep(&ts, NULL);
    }
    close_wait_done(cw); /* our own count */
}

/* Have every other proc with operations on fd cancel them, and wait until
 * each has issued its cancel: in rounds of up to CLOSE_BATCH procs, so the
 * tasks fit on the closer's stack.  The run cannot end while the closer
 * waits, so no task is ever discarded. */
#define CLOSE_BATCH 8

/* *counted: whether the close is counted in fd's entry (fddeadline.c),
 * true once it is: ringo_close's own cancel after this must not count it
 * again. */
static void close_cancel_remote(struct rproc *p, struct rg *g, int fd, bool *counted)
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
        fdl_close_cancels(fd, *counted);
        *counted = true;
        struct close_wait cw = { .g = g };
        cw.token = park_prepare(g, W_IO, 0);
        store_relaxed(&g_run(g)->wait_fd, fd); /* for ringo_dump */
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

_Atomic(fd_seam_fn *) close_seam;

int ringo_close(int fd)
{
    struct rproc *p;
    struct rg *g = io_self(&p);
    if (!g) {
        if (p) /* a proc's scheduler loop (never) */
            return close(fd) < 0 ? -errno : 0;
        return close_plain(fd);
    }
    /* Its deadlines go with it; operations ended below see a close, not a
     * change of deadline (fddeadline.c), counted before their cancels. */
    bool counted = fdl_close(fd);
    /* Marked before anything looks at who uses fd ("Closing marks" at
     * the top); with one proc nothing can start on fd while we look,
     * unless we park to end acceptors (then no other proc marks the
     * acceptor bitmap either, so looking at it first is enough). */
    _Atomic uint32_t *mark =
        fd >= 0 && (rt.nprocs > 1 || acc_fd_marked(fd) || fdclose_dir_busy(fd) || eng_epoll())
            ? fdclose_mark(fd) : NULL;
    /* No longer registered for good on epoll: a wait that starts from
     * here on arms one-shot, and the number's next file is new to every
     * proc's table (engine_epoll.c "Registered once"). */
    eng_fd_closing(fd);
    /* A listener with multishot acceptors: end their requests first, or
     * the kernel keeps the socket (accept.c). */
    if (__builtin_expect(acc_fd_marked(fd), 0))
        acc_release_fd(fd);
    /* No block_check(): see the design comment. */
    if (mark)
        close_cancel_remote(p, g, fd, &counted);
    fd_seam_fn *seam = load_acquire(&close_seam);
    if (__builtin_expect(seam != NULL, 0))
        seam(fd);
    /* On epoll, calls of fd's on helper threads (offload.c "Engine jobs
     * and ringo_close"): those queued end, those being made are waited
     * for, and none starts until the close(2) is done.  The wait may let
     * other goroutines of this proc run: looked at before the count of
     * this proc's operations on fd below. */
    struct offload_closing oc = { .fd = fd };
    bool helpers = fd >= 0 && eng_epoll();
    if (helpers)
        offload_io_close_begin(&oc);
    /* Openats relative to fd in progress end first: their requests name
     * the directory by number (see "Directories" at the top).  On epoll,
     * after the helpers' queue has let go of theirs. */
    if (mark)
        fdclose_dir_wait(fd);
    if (helpers)
        offload_io_close_wait(&oc, p, g);
    bool cancel_here = fd >= 0 && fdops_busy(p, fd);
    eng_reserve(p, cancel_here ? 2 : 1);
    if (cancel_here) {
        /* Issued before the close, in the same submit. */
        fdl_close_cancels(fd, counted);
        eng_cancel_fd(p, fd);
    }
    const struct eng_io io = { .kind = ENG_CLOSE, .fd = fd };
    int r = eng_wait(p, g, &io);
    if (helpers)
        offload_io_close_end(&oc);
    if (mark)
        fdclose_unmark(mark); /* the close is done: operations waiting start again */
    return r;
}
