/*
 * fdops.c — which file descriptors have goroutine I/O in flight on which
 * proc, so that ringo_close() can end those operations first (io.c
 * "Closing a descriptor that is in use").
 *
 * Each proc counts its in-flight operations per fd in a two-level table:
 * FDOPS_PAGES pointers to pages of 2^FDOPS_PAGE_BITS 32-bit counters,
 * allocated on first use and kept until the run ends.  Only the owner
 * writes (an operation is counted from just before its SQE is prepared
 * until its CQE has been seen), so a counter update is a relaxed load and
 * store, not a locked read-modify-write: the count costs the I/O path two
 * plain memory operations.  A closer on any thread reads the counters with
 * relaxed loads; a page pointer is published with a release store and read
 * with acquire, so a reader that sees a page sees it zeroed.
 *
 * What a reader may miss.  A count is a hint about operations that are
 * already waiting: the goroutine blocked in a read that another goroutine
 * then closes has been counted long before (its proc stored the count
 * before it parked, and the closer learnt of the blocked reader, directly
 * or not, through something that ordered the two).  An operation that
 * starts while the descriptor is being closed may be counted too late for
 * the closer to see it: the closing marks below catch it.
 *
 * An fd past the table, or a page that cannot be allocated, is counted in
 * `untracked` instead, which readers take as "maybe any fd".
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
 * count and has R's proc cancel the operation (io.c: the cancel is issued
 * on R's proc, after R's SQE), or R sees the mark: R turns its prepared
 * SQE into a NOP, drops its count, waits until no close of fd is in
 * progress, and starts again, after the close(2): it then fails with
 * -EBADF, or works on whatever file a later open gave the number, as an
 * operation that starts after close(2) does.  Failing at once instead
 * would be wrong in the window between the close(2) and the unmark, when
 * the number may already name a new file.  Both may happen: the cancel
 * then finds nothing.
 *
 * A mark's word: closes in progress in bits 0-30, and CLOSING_WAITERS (bit
 * 31) set by a goroutine before it sleeps on the word (futex_wait), so the
 * closer calls futex_wake only when someone waits.  Pages are allocated by
 * the first closer that needs one (published with a CAS, release) and
 * freed at the end of the run; an fd past the table, or a page that
 * cannot be allocated, is marked in `closing_untracked`, which an
 * operation on any fd takes as a mark.
 *
 * With one proc, neither side marks or looks: the closer looks at the
 * counts and queues its close without any other goroutine running in
 * between, and an operation queued after the close is issued after it.
 * With more, each operation on an fd pays two loads: its (B) is the full
 * barrier park_prepare issues anyway (io.c io_wait, fdclose_look).
 * Multishot accept requests (accept.c) are not counted; acc_accept looks
 * for a mark before it arms one, after acc_mark's seq_cst store, which is
 * what the closer's acc_fd_marked load pairs with across (A).
 *
 * Rejected.  Go's way, closing the descriptor only when the last
 * operation lets go of it: it needs a descriptor object shared by all
 * users, and ringo has only numbers.  A membarrier(2)-based asymmetric
 * barrier, to take (B) off the I/O path: it needs registering and a
 * fallback, for a cost no benchmark has shown.
 */
#include "config.h"

#include "internal.h"

#include <stdint.h>
#include <stdlib.h>

#include "futex.h"

#define FDOPS_PAGE_SIZE (1u << FDOPS_PAGE_BITS)

static _Atomic uint32_t *fdops_slot(struct rproc *p, int fd, bool create)
{
    unsigned pg = (unsigned)fd >> FDOPS_PAGE_BITS;
    if (pg >= FDOPS_PAGES)
        return NULL;
    /* acquire: pairs with the release store below (the page's zeroes) */
    _Atomic uint32_t *page = load_acquire(&p->fdops.page[pg]);
    if (!page && create) {
        page = seam_calloc(FDOPS_PAGE_SIZE, sizeof *page);
        if (!page)
            return NULL;
        store_release(&p->fdops.page[pg], page); /* owner is the only writer */
    }
    return page ? &page[(unsigned)fd & (FDOPS_PAGE_SIZE - 1)] : NULL;
}

_Atomic uint32_t *fdops_inc(struct rproc *p, int fd)
{
    _Atomic uint32_t *c = fdops_slot(p, fd, true);
    if (!c)
        c = &p->fdops.untracked;
    /* relaxed load and store: the owner is the only writer */
    store_relaxed(c, load_relaxed(c) + 1);
    return c;
}

void fdops_dec(_Atomic uint32_t *c)
{
    store_relaxed(c, load_relaxed(c) - 1); /* as in fdops_inc */
}

bool fdops_busy(struct rproc *p, int fd)
{
    if (load_relaxed(&p->fdops.untracked))
        return true;
    _Atomic uint32_t *c = fdops_slot(p, fd, false);
    return c && load_relaxed(c) != 0;
}

void fdops_free(struct rproc *p)
{
    for (unsigned i = 0; i < FDOPS_PAGES; i++) {
        free((void *)load_relaxed(&p->fdops.page[i]));
        store_relaxed(&p->fdops.page[i], NULL);
    }
    store_relaxed(&p->fdops.untracked, 0);
}

/* ------------------------------------------------------------------ */
/* Closing marks (see the top) */

#define CLOSING_WAITERS (1u << 31)

static _Atomic(_Atomic uint32_t *) closing_page[FDOPS_PAGES];
static _Atomic uint32_t closing_untracked;

static _Atomic uint32_t *closing_slot(int fd, bool create)
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
    fetch_add_relaxed(m, 1); /* relaxed: ordered by (A) */
    /* (A): the mark before the closer's loads of the procs' counts (and of
     * the acceptor marks, accept.c); pairs with (B) in fdclose_pending. */
    smp_mb();
    return m;
}

void fdclose_unmark(_Atomic uint32_t *m)
{
    /* acq_rel: release orders the completed close before a waiter's
     * acquire load that sees the count drop; acquire keeps the wake
     * below after it. */
    uint32_t v = fetch_sub_acq_rel(m, 1);
    if ((v & ~CLOSING_WAITERS) == 1 && (v & CLOSING_WAITERS)) {
        /* The last close of fd, and someone sleeps on the word.  Clear the
         * flag, then wake everyone: a waiter that finds another close
         * begun meanwhile sets the flag again before it sleeps. */
        atomic_fetch_and_explicit(m, ~CLOSING_WAITERS, memory_order_release);
        futex_wake(m, INT32_MAX);
    }
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
    if (load_relaxed(&closing_untracked) & ~CLOSING_WAITERS)
        return &closing_untracked;
    _Atomic uint32_t *m = closing_slot(fd, false);
    if (m && (load_relaxed(m) & ~CLOSING_WAITERS))
        return m;
    return NULL;
}

void fdclose_wait(_Atomic uint32_t *m)
{
    /* acquire: pairs with fdclose_unmark's release; the close(2) is done
     * before the caller starts its operation again. */
    uint32_t v = load_acquire(m);
    while (v & ~CLOSING_WAITERS) {
        if (!(v & CLOSING_WAITERS) && !cas_acq_rel(m, &v, v | CLOSING_WAITERS))
            continue; /* v reloaded: the count changed */
        futex_wait(m, v | CLOSING_WAITERS, W_IO); /* may return spuriously */
        v = load_acquire(m);
    }
}

void fdclose_run_end(void)
{
    /* No goroutine is left, so no close is in progress and nobody reads
     * the table: relaxed. */
    for (unsigned i = 0; i < FDOPS_PAGES; i++) {
        free((void *)load_relaxed(&closing_page[i]));
        store_relaxed(&closing_page[i], NULL);
    }
    store_relaxed(&closing_untracked, 0);
}
