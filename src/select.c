/*
 * select.c — ringo_select, Go's selectgo.
 *
 * 1. Shuffle the cases (poll order) and sort their channels by address
 *    (lock order, so two selects never lock the same pair in opposite
 *    orders).
 *    First pass: in poll order, try each case by the lock-free path of a
 *    buffered channel (chan.c), and perform the first that can proceed;
 *    stop at the first case that needs the lock (its gate is shut: an
 *    unbuffered or closed channel, or one with waiters).  The cases before
 *    it were seen not ready, so this picks what step 2 would pick from
 *    what it saw.  A case found waiting is not the answer yet (the cases
 *    were seen at different moments), except alone with RINGO_NONBLOCK,
 *    where it is exact as for ringo_chan_try_recv.
 * 2. Lock every channel; in poll order, perform the first case that can
 *    proceed.  Taking the first ready case of a uniformly random
 *    permutation picks uniformly among the ready cases.  Its channel is
 *    unlocked last.
 * 3. None ready: with RINGO_NONBLOCK return -EAGAIN (Go's default:);
 *    otherwise queue one sudog per case, all sharing one waiter, unlock,
 *    and park.  The first peer (or close) to claim the waiter wins — one
 *    atomic claim for the whole select — and records which sudog fired.
 * 4. Woken: lock every channel again and unlink the sudogs that did not
 *    fire (their channels may still hold them).  The channel of the one
 *    that fired is left alone: its peer may have released it already
 *    (chan.c "Releasing"); our other sudogs on it, if a case names it
 *    twice, the claimer unlinked (chan.c waiter_unlink_dups).
 *
 * The sudogs live on the selecting caller's stack (an array for up to
 * SELECT_STACK_CASES cases, else on the heap).
 */
#include "config.h"

#include "chan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ringo.h"

/* Cases handled without a heap allocation: covers every select a person
 * writes by hand; generated ones with more cases pay one malloc. */
#define SELECT_STACK_CASES 8

/* Lock (unlock) every channel but `skip` (if not NULL). */
static void lock_all(ringo_chan **order, size_t n, ringo_chan *skip)
{
    for (size_t i = 0; i < n; i++)
        if ((i == 0 || order[i] != order[i - 1]) && order[i] != skip)
            chan_lock(order[i]);
}

static void unlock_all(ringo_chan **order, size_t n, ringo_chan *skip)
{
    for (size_t i = n; i-- > 0;)
        if ((i == 0 || order[i] != order[i - 1]) && order[i] != skip)
            chan_unlock(order[i]);
}

static void sort_chans(ringo_chan **a, size_t n)
{
    /* insertion sort: n is small */
    for (size_t i = 1; i < n; i++) {
        ringo_chan *v = a[i];
        size_t j = i;
        while (j > 0 && (uintptr_t)a[j - 1] > (uintptr_t)v) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

int ringo_select(struct ringo_case *cases, size_t n, int flags)
{
    if (n > 0 && !cases)
        return -EINVAL;
    if (flags & ~RINGO_NONBLOCK)
        return -EINVAL;
    /* Every argument is checked before the goroutine's own state (its
     * cancel and deadline): a bad call is EINVAL whenever it is made. */
    for (size_t i = 0; i < n; i++) {
        if (cases[i].op != RINGO_SEND && cases[i].op != RINGO_RECV)
            return -EINVAL;
        if (cases[i].op == RINGO_SEND && cases[i].chan && cases[i].chan->elem_size && !cases[i].elem)
            return -EINVAL;
    }
    bool block = !(flags & RINGO_NONBLOCK);
    struct rg *g = self_g();
    note_call(g);
    if (block && g) {
        int r = block_check(g);
        if (r)
            return r;
    }

    /* Scratch: poll order, lock order, sudogs. */
    size_t stack_poll[SELECT_STACK_CASES];
    ringo_chan *stack_lock[SELECT_STACK_CASES];
    struct sudog stack_sd[SELECT_STACK_CASES];
    size_t *poll = stack_poll;
    ringo_chan **lockv = stack_lock;
    struct sudog *sds = stack_sd;
    void *heap = NULL;
    if (n > SELECT_STACK_CASES) {
        heap = seam_malloc(n * (sizeof *poll + sizeof *lockv + sizeof *sds));
        if (!heap)
            return -ENOMEM;
        poll = heap;
        lockv = (ringo_chan **)(poll + n);
        sds = (struct sudog *)(lockv + n);
    }

    size_t active = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cases[i].chan)
            continue; /* a nil channel is never ready */
        /* Fisher-Yates insertion of i at a random position: append it,
         * then swap it with a random slot, itself included.  (Moving
         * poll[j] to the end first read poll[active], not yet written,
         * when j == active.) */
        poll[active] = i;
        size_t j = fast_rand() % (active + 1);
        poll[active] = poll[j];
        poll[j] = i;
        lockv[active] = cases[i].chan;
        active++;
    }

    int ret;
    if (active == 0) {
        free(heap);
        if (!block)
            return -EAGAIN;
        return block_forever(n == 0 ? W_SELECT_NOCASES : W_SELECT);
    }
    /* First pass (step 1). */
    for (size_t k = 0; k < active; k++) {
        size_t i = poll[k];
        struct ringo_case *cs = &cases[i];
        enum fast f = chan_select_fast(cs->chan, cs->op == RINGO_SEND, cs->elem);
        if (f == FAST_DONE) {
            cs->err = 0;
            free(heap);
            return (int)i;
        }
        if (f == FAST_LOCK)
            break;
        if (active == 1 && !block) {
            free(heap);
            return -EAGAIN;
        }
    }
    sort_chans(lockv, active);
    lock_all(lockv, active, NULL);

    for (size_t k = 0; k < active; k++) {
        size_t i = poll[k];
        struct ringo_case *cs = &cases[i];
        int err;
        struct waiter *wake;
        int done = cs->op == RINGO_SEND
                       ? chan_try_send_locked(cs->chan, cs->elem, &err, &wake)
                       : chan_try_recv_locked(cs->chan, cs->elem, &err, &wake);
        if (done) {
            /* The case's own channel last: the case becomes visible at its
             * unlock, and a peer that sees it may release the other
             * channels at once (chan.c "Releasing"). */
            unlock_all(lockv, active, cs->chan);
            chan_unlock(cs->chan);
            if (wake)
                handoff_wake(wake);
            cs->err = err;
            free(heap);
            return (int)i;
        }
    }
    if (!block) {
        unlock_all(lockv, active, NULL);
        free(heap);
        return -EAGAIN;
    }

    /* Queue on every channel, in lock order as Go does. */
    struct waiter w;
    waiter_init(&w, W_SELECT);
    w.dup_sds = sds;
    w.dup_n = 0;
    for (size_t k = 1; k < active; k++)
        if (lockv[k] == lockv[k - 1])
            w.dup_n = (unsigned)active; /* sorted: a channel twice is adjacent */
    size_t nsd = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cases[i].chan)
            continue;
        struct sudog *sd = &sds[nsd++];
        memset(sd, 0, sizeof *sd);
        sd->w = &w;
        sd->c = cases[i].chan;
        sd->elem = cases[i].elem;
        sd->case_idx = (int)i;
        waitq_push(cases[i].op == RINGO_SEND ? &sd->c->sendq : &sd->c->recvq, sd);
    }
    if (w.g) {
        g_wait(w.g)->sudogs = sds;
        g_wait(w.g)->nsudogs = (unsigned)nsd;
    }
    unlock_all(lockv, active, NULL);

    int r = waiter_block(&w);

    if (w.g) {
        g_wait(w.g)->sudogs = NULL;
        g_wait(w.g)->nsudogs = 0;
    }
    /* Unlink the sudogs that did not fire.  The one that fired was
     * unlinked by its peer (or the close), which may have released its
     * channel since (chan.c "Releasing"): that channel is not touched
     * again.  Our other sudogs on it, if a case names it twice, the
     * claimer unlinked too (waitq_take), under its lock. */
    struct sudog *fired = w.fired;
    ringo_chan *skip = fired ? fired->c : NULL;
    lock_all(lockv, active, skip);
    for (size_t k = 0; k < nsd; k++)
        waitq_remove(&sds[k]); /* the fired one: not queued, a no-op */
    unlock_all(lockv, active, skip);

    if (!fired) {
        ret = r; /* deadline or cancellation */
    } else {
        /* closed while we waited: the close zeroed a receive's value */
        cases[fired->case_idx].err = fired->success ? 0 : -EPIPE;
        ret = fired->case_idx;
    }
    free(heap);
    return ret;
}
