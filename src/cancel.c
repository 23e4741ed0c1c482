/*
 * cancel.c — ringo_cancel: ending a goroutine's current wait, and every
 * blocking call it makes after, with -ECANCELED.
 *
 * The canceller marks the goroutine (cancel_id, seq_cst) and then looks
 * at its park word; the goroutine, when it parks, stores the park word and
 * then loads cancel_id (park.c, "Cancellation adds a second handshake"),
 * so a cancel is never lost between the two.  A goroutine parked
 * interruptibly (channels, sleeps, select) is claimed and readied with
 * -ECANCELED; one in an I/O operation gets its operation cancelled in the
 * kernel, and the operation's own completion ends the wait (io.c); sync
 * waits ignore cancellation, as Go's do.  Only the goroutine's own proc
 * interrupts it: from elsewhere the request is a task posted to that proc.
 */
#include "config.h"

#include "internal.h"
#include "scheduler.h"

#include <errno.h>
#include <stdlib.h>

/* Cancel request delivered to the goroutine's proc. */
struct cancel_task {
    struct rtask t;
    struct rg *g;
    int64_t id;
};

/* On g's own proc: end g's current wait because it was cancelled. */
static void cancel_interrupt(struct rproc *p, struct rg *g, int64_t id)
{
    if (load_relaxed(&g->id) != id || load_relaxed(&g->p) != p)
        return; /* exited meanwhile */
    uint64_t park = load_acquire(&g->park);
    if (park & PARK_CLAIMED)
        return; /* not parked: the next blocking call sees the flag */
    if (park & PARK_INTR) {
        if (claim(g, park >> PARK_SHIFT))
            ready(g, -ECANCELED);
    } else if (g_wait(g)->io_op) {
        eng_cancel_op(p, g_wait(g)->io_op); /* io_wait, or a timed futex wait; other sync waits have none */
    }
}

static void cancel_discard(struct rtask *t)
{
    free(t);
}

static void cancel_run(struct rproc *p, struct rtask *t)
{
    struct cancel_task *ct = (struct cancel_task *)t;
    struct rg *g = ct->g;
    int64_t id = ct->id;
    free(ct);
    cancel_interrupt(p, g, id);
}

static int cancel_id_locked(int64_t id);

int ringo_cancel(int64_t id)
{
    struct rproc *me;
    if (!run_enter(&me))
        return -ESRCH;
    int r = cancel_id_locked(id);
    run_exit(me);
    return r;
}

/* ringo_cancel, with the run pinned (run_enter). */
static int cancel_id_locked(int64_t id)
{
    struct rg *g = gtable_lookup(id);
    if (!g)
        return -ESRCH;
    /* The request to g's proc is allocated before the cancel is marked:
     * once cancel_id is set the cancel has happened (a repeated call
     * returns 0 at once), so a request that could not be allocated after
     * that would leave g parked for ever (tests/check_fault.c, cancel).
     * Out of memory here, nothing has changed and the call may be
     * repeated.  Unused, it is freed: a cancel is rare, not a hot path. */
    struct cancel_task *ct = seam_malloc(sizeof *ct);
    if (!ct)
        return -ENOMEM;
    int64_t cur = load_relaxed(&g->cancel_id);
    for (;;) {
        if (cur == id) {
            free(ct);
            return 0; /* already cancelled */
        }
        if (load_acquire(&g->id) != id) {
            free(ct);
            return -ESRCH;
        }
        /* seq_cst: the store half of the cancel/park handshake (see top);
         * the load of g->park below must not pass it. */
        if (cas_seqcst(&g->cancel_id, &cur, id))
            break;
    }
    uint64_t park = load_seqcst(&g->park);
    if (park & PARK_CLAIMED) {
        free(ct);
        return 0; /* running or runnable: it checks on its next block */
    }
    /* Parked, so started on its proc for good: g->p was stored on that
     * proc's thread (or before it ran there) ahead of the park word just
     * loaded, whose seq_cst load orders it (internal.h struct rg); the
     * acquire adds nothing but keeps the read from being hoisted. */
    struct rproc *owner = load_acquire(&g->p);
    struct rproc *me = tls_proc;
    if (owner == me && me) {
        free(ct);
        cancel_interrupt(me, g, id);
        return 0;
    }
    ct->t.run = cancel_run;
    ct->t.discard = cancel_discard;
    ct->g = g;
    ct->id = id;
    proc_post_task(owner, &ct->t);
    return 0;
}
