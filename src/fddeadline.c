/*
 * fddeadline.c — per-descriptor read and write deadlines (Go's
 * net.Conn.SetReadDeadline / SetWriteDeadline): ringo_fd_deadline_set.
 *
 * The table.  A deadline pair per descriptor, in pages of FDL_PAGE
 * entries allocated on the first set that needs them and published with a
 * release CAS; descriptors up to FDL_PAGES * FDL_PAGE (2^20, Linux's
 * default nr_open) can have one.  Each entry holds the two deadlines and a
 * sequence word that counts the closes (FDL_CLOSES, internal.h;
 * ringo_close clears the deadlines: the next file with that number starts
 * without any).  An I/O call takes the earlier of its goroutine's
 * deadline and its descriptor's (for the direction it goes in) as the
 * deadline of the operation (io.c): a finite one arms the goroutine's
 * timer, which cancels the operation when it fires.  Nothing more is paid
 * on the fast path: one load of a page pointer, and two of the entry when
 * the page exists.
 *
 * A change reaching operations already blocked.  The setter stores the new
 * deadline and then asks every proc that has operations on the descriptor
 * (fdops_busy) to cancel them (IORING_OP_ASYNC_CANCEL by fd, the same
 * request ringo_close uses); a multishot accept waiting on a listener is
 * woken instead (accept.c).  A cancelled operation comes back to io.c with
 * -ECANCELED, where the sequence word tells a change of deadline from a
 * close (fdl_maybe_closed): every ringo_close that cancels operations is
 * counted in the descriptor's entry (made for it if need be) before its
 * cancels are issued, so a cancel with no close counted came from a
 * change, or from a close or a change of another descriptor of the same
 * file (io_uring cancels by file: a dup's operations are ended too).  Then
 * the call is made again with the deadlines as they are now, which ends it
 * at once with -ETIMEDOUT if the new deadline has passed.  A cancelled
 * operation moved no data (it was waiting for readiness), so issuing it
 * again is the same call.
 *
 * The race to close is the setter that looks for blocked operations just
 * before an operation is counted, while that operation reads the old
 * deadline.  Dekker's handshake on (the operation's fdops count, the
 * entry):
 *
 *        operation (its proc)                 setter (any thread)
 *        --------------------                 -------------------
 *        fdops_inc(fd)                        store deadline, seq (seq_cst)
 *        park_prepare: smp_mb()  (A) <-----> smp_mb()               (B)
 *        load deadline, seq                   fdops_busy(q, fd) for each q
 *
 * At least one side sees the other's store: the operation starts with the
 * new deadline, or the setter sees it counted and its proc cancels it (a
 * cancel that comes before the operation is submitted finds nothing; then
 * the operation read the new deadline anyway, since the task that issues
 * the cancel runs on the operation's own thread, after the park).
 *
 * Rejected.  A list of the blocked operations per descriptor, so a change
 * could re-arm their timers in place: a link and an unlink on every
 * operation for a rare event.  Deadlines kept per goroutine only: Go's
 * net.Conn model, the one servers are written against, is per connection
 * and settable from anywhere.
 */
#include "config.h"

#include "internal.h"
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "ringo.h"

#define FDL_PAGE (1u << FDL_PAGE_BITS)

struct fdl {
    _Atomic int64_t at[2];      /* read, write deadline; RINGO_NEVER when none */
    _Atomic uint32_t seq;       /* closes (FDL_CLOSES, internal.h) */
};

_Atomic(struct fdl *) fdl_pages[FDL_PAGES]; /* release CAS to publish, acquire to read */

static struct fdl *fdl_entry(int fd, bool create)
{
    unsigned pg = (unsigned)fd >> FDL_PAGE_BITS;
    if (fd < 0 || pg >= FDL_PAGES)
        return NULL;
    /* acquire: pairs with the release CAS below (the page's contents) */
    struct fdl *page = load_acquire(&fdl_pages[pg]);
    if (!page && create) {
        struct fdl *fresh = seam_malloc(FDL_PAGE * sizeof *fresh);
        if (!fresh)
            return NULL;
        for (unsigned i = 0; i < FDL_PAGE; i++) {
            store_relaxed(&fresh[i].at[0], RINGO_NEVER);
            store_relaxed(&fresh[i].at[1], RINGO_NEVER);
            store_relaxed(&fresh[i].seq, 0);
        }
        /* Two setters may race to create it: one page wins. */
        if (atomic_compare_exchange_strong_explicit(&fdl_pages[pg], &page, fresh,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire))
            page = fresh;
        else
            free(fresh);
    }
    return page ? &page[(unsigned)fd & (FDL_PAGE - 1)] : NULL;
}

int64_t fdl_get_slow(int fd, int dirs, uint32_t *seq)
{
    struct fdl *e = fdl_entry(fd, false);
    if (!e) {
        *seq = 0;
        return RINGO_NEVER;
    }
    /* relaxed: the caller's barrier (park_prepare, (A) above) orders these
     * after its fdops count; a plain check at entry may read late, and the
     * cancel then catches the change */
    *seq = (load_relaxed(&e->seq) & FDL_CLOSES) | FDL_PRESENT;
    int64_t d = RINGO_NEVER;
    if (dirs & RINGO_READ)
        d = load_relaxed(&e->at[0]);
    if (dirs & RINGO_WRITE) {
        int64_t w = load_relaxed(&e->at[1]);
        if (w < d)
            d = w;
    }
    return d;
}

bool fdl_close(int fd)
{
    struct fdl *e = fdl_entry(fd, false);
    if (!e)
        return false;
    store_relaxed(&e->at[0], RINGO_NEVER);
    store_relaxed(&e->at[1], RINGO_NEVER);
    /* Counted before the close's cancels are issued, so the operations
     * they end see a close, not a change of deadline (relaxed: those
     * operations learn of the cancel through their CQE, reaped after the
     * closer's submit, which the kernel orders after this store). */
    atomic_fetch_add_explicit(&e->seq, FDL_CLOSE, memory_order_relaxed);
    return true;
}

/* ringo_close is about to cancel operations on fd, and fdl_close found no
 * entry to count the close in (!counted): count it in a new one, so that
 * those operations, which saw no entry when they parked, see a close
 * (fdl_maybe_closed).  Made again instead, they would wait on a
 * descriptor about to be closed, which the epoll engine would never
 * report ready: so without memory for the page, the closer waits for some
 * (as close_task_alloc). */
void fdl_close_cancels(int fd, bool counted)
{
    if (counted || fd < 0 || (unsigned)fd >> FDL_PAGE_BITS >= FDL_PAGES)
        return; /* past the table every cancel counts as a close */
    struct fdl *e;
    while (!(e = fdl_entry(fd, true)) && !load_relaxed(&rt.stopping)) {
        struct timespec ts = { 0, 100000 };
        nanosleep(&ts, NULL);
    }
    if (e) /* relaxed: as fdl_close */
        atomic_fetch_add_explicit(&e->seq, FDL_CLOSE, memory_order_relaxed);
}

static void fdl_run_end(void)
{
    for (unsigned i = 0; i < FDL_PAGES; i++) {
        free(load_relaxed(&fdl_pages[i]));
        store_relaxed(&fdl_pages[i], NULL);
    }
}

const struct rhooks fddeadline_hooks = { .run_end = fdl_run_end };

/* On q's thread: cancel q's operations on fd (they come back to io.c,
 * which issues them again with the new deadlines) and wake the multishot
 * accepts waiting on it. */
static void fdl_kick(struct rproc *q, int fd)
{
    if (fdops_busy(q, fd))
        eng_cancel_fd(q, fd);
    if (acc_fd_marked(fd))
        acc_fd_deadline(q, fd);
}

struct fdl_task {
    struct rtask t;
    int fd;
};

static void fdl_task_run(struct rproc *q, struct rtask *t)
{
    struct fdl_task *ft = (struct fdl_task *)t;
    int fd = ft->fd;
    free(ft);
    fdl_kick(q, fd);
}

static void fdl_task_discard(struct rtask *t)
{
    free(t);
}

/* Out of memory for a task, on a goroutine: post one from its stack and
 * park until q has run it, so the change still reaches q's blocked
 * operations and nothing is allocated.  The run cannot end meanwhile (the
 * goroutine is live), and q runs its tasks while the run lasts. */
struct fdl_wait_task {
    struct rtask t;
    int fd;
    struct close_wait *cw;
};

static void fdl_wait_task_run(struct rproc *q, struct rtask *t)
{
    struct fdl_wait_task *wt = (struct fdl_wait_task *)t;
    fdl_kick(q, wt->fd);
    close_wait_done(wt->cw);
}

static void fdl_kick_remote_waiting(struct rproc *p, struct rg *g, struct rproc *q, int fd)
{
    struct close_wait cw = { .g = g };
    struct fdl_wait_task wt = { .t.run = fdl_wait_task_run, .fd = fd, .cw = &cw };
    store_relaxed(&cw.pending, 1); /* published by proc_post_task's release */
    cw.token = park_prepare(g, W_IO, 0);
    store_relaxed(&g_run(g)->wait_fd, fd); /* for ringo_dump */
    owner_add(p->inflight, 1); /* waiting on another proc: not a deadlock */
    proc_post_task(q, &wt.t);
    park_commit(g, cw.token, 0);
    owner_add(p->inflight, -1);
}

int ringo_fd_deadline_set(int fd, int dirs, int64_t when)
{
    if (dirs == 0 || (dirs & ~(RINGO_READ | RINGO_WRITE)))
        return -EINVAL;
    if (fd < 0 || fcntl(fd, F_GETFD) < 0)
        return -EBADF;
    if ((unsigned)fd >> FDL_PAGE_BITS >= FDL_PAGES)
        return -EINVAL;
    struct rproc *me;
    if (!run_enter(&me))
        return -EINVAL; /* no run in progress */
    int r = 0;
    struct fdl *e = fdl_entry(fd, true);
    if (!e) {
        r = -ENOMEM;
        goto out;
    }
    if (dirs & RINGO_READ)
        store_relaxed(&e->at[0], when);
    if (dirs & RINGO_WRITE)
        store_relaxed(&e->at[1], when);
    /* (B): the stores above before the loads of the fdops counts; pairs
     * with (A) in park_prepare. */
    smp_mb();
    bool marked = acc_fd_marked(fd) && (dirs & RINGO_READ);
    for (unsigned i = 0; i < rt.nprocs; i++) {
        struct rproc *q = rt.procs[i];
        if (!marked && !fdops_busy(q, fd))
            continue;
        if (q == me) {
            fdl_kick(q, fd);
            continue;
        }
        struct fdl_task *ft = seam_malloc(sizeof *ft);
        if (!ft && me && me->cur) {
            fdl_kick_remote_waiting(me, me->cur, q, fd);
            continue;
        }
        if (!ft) {
            /* A plain thread cannot wait for q safely (the run may end
             * first): the deadline is set, and q's blocked operations
             * see it only when they next start. */
            r = -ENOMEM;
            continue;
        }
        ft->t.run = fdl_task_run;
        ft->t.discard = fdl_task_discard;
        ft->fd = fd;
        proc_post_task(q, &ft->t);
    }
out:
    run_exit(me);
    return r;
}
