/*
 * fdops.c — which file descriptors have goroutine I/O in flight on which
 * proc, so that ringo_close() can end those operations first (close.c
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
 * Closing marks, which catch what the counts cannot: close.c.
 */
#include "config.h"

#include "internal.h"

#include <stdint.h>
#include <stdlib.h>



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

/* fdops_inc's way when fd's page is not there yet (internal.h). */
_Atomic uint32_t *fdops_inc_slow(struct rproc *p, int fd)
{
    _Atomic uint32_t *c = fdops_slot(p, fd, true);
    if (!c)
        c = &p->fdops.untracked;
    /* relaxed load and store: the owner is the only writer */
    store_relaxed(c, load_relaxed(c) + 1);
    return c;
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
