/*
 * park.c — parking and waking goroutines: park_prepare, claim, ready and
 * park_commit (the protocol, in one paragraph, is at the top of
 * internal.h), the timers that end a wait, and the park clock that stamps
 * each wait for dumps.
 *
 * A wait, from both sides:
 *
 *        goroutine g (its proc)               waker w (any thread)
 *        ----------------------               --------------------
 *        token = park_prepare(g, ...)
 *        register (g, token) with the
 *          channel / rop / futex / timer  ->  finds (g, token) there
 *        park_commit(g, token, ...)           claim(g, token)   one CAS
 *          switches away                      if won: ready(g, result)
 *        ... resumes, returns g->result  <-     (g's run queue or inbox)
 *
 * Every party that may end the wait (a peer, a CQE, the deadline timer,
 * ringo_cancel, a close) races on the one CAS in claim(); the winner alone
 * writes g->result and calls ready(), so a wait ends exactly once and a
 * stale waker, holding the token of an earlier wait, always loses.
 *
 * Cancellation adds a second handshake: ringo_cancel (cancel.c) stores
 * cancel_id then loads the park word (both seq_cst); park_prepare stores
 * the park word and issues a full barrier, then park_commit (or io_wait)
 * loads cancel_id; so either the canceller sees the goroutine parked (and
 * asks its proc to interrupt it) or the goroutine sees itself cancelled
 * before it switches away.
 */
#include "config.h"

#include "internal.h"
#include "scheduler.h"

#include <errno.h>
#include <time.h>

/* The park clock.
 *
 * A dump says how long each parked goroutine has waited, so a park is
 * stamped with a time -- but a clock read per park (20-30 ns through the
 * vDSO) would be a fair share of a park's cost.  So the stamp is a copy of
 * p->clock_ms, a proc-local clock in ms since the run started, kept where
 * the proc has the time anyway or cheaply: each timer run stores the
 * reading it is made with (CLOCK_MONOTONIC_COARSE when no timer is near,
 * timer.c "Reading the clock less"), and at each periodic poll and after
 * each sleep the proc reads CLOCK_MONOTONIC_COARSE (a vDSO load of the
 * kernel's last tick, no TSC read).  Resolution: the coarse clock's tick
 * (1 to 10 ms with CONFIG_HZ 1000 to 100), and the clock may lag the park
 * by up to a periodic poll's interval on a busy proc (POLL_EVERY
 * scheduling points at most, about a millisecond where they are slower:
 * sched.c "Pacing the polls"), or by the time one goroutine ran without
 * yielding before it
 * parked: a dump's "waited" figure may be too long by that much, never too
 * short by more than a coarse tick. */
void proc_clock_coarse(struct rproc *p)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    proc_clock_set(p, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
}

/* ---------------------------------------------------------------------- */
/* Park / claim / ready */

/* claim from the park word cur, loaded or returned by a failed CAS. */
bool claim_from(struct rg *g, uint64_t token, uint64_t cur)
{
    for (;;) {
        if ((cur >> PARK_SHIFT) != token || (cur & PARK_CLAIMED))
            return false;
        /* acq_rel: the winner sees everything the parker published before
         * parking (its waiter records) and publishes its own writes. */
        if (cas_acq_rel(&g->park, &cur, cur | PARK_CLAIMED))
            return true;
    }
}

bool claim(struct rg *g, uint64_t token)
{
    /* relaxed: the CAS in claim_from decides, and acquires */
    return claim_from(g, token, load_relaxed(&g->park));
}

/* A goroutine whose sleep or deadline ends goes to the front of its
 * proc's run queue, ahead of goroutines that have not started yet: a
 * timer's lateness should not grow with the number of goroutines spawned
 * meanwhile (tests/bench/sleepers; Go's runnext serves the same purpose).
 * Timers run on the goroutine's own proc, so the queue is local. */
static void g_timer_fire(struct rproc *p, struct rtimer *t)
{
    struct rg *g = g_of_timer(t);
    if (!claim(g, g_run(g)->timer_token))
        return;
    /* A cancel made before the timer came due wins (ringo_cancel(3)),
     * though its task has not run here yet: a proc woken by the cancel
     * reaps and runs its timers before its tasks (eng_poll), so a deadline
     * that passed while the wake was on its way would claim the wait
     * first.  The cancel's store to cancel_id comes before its post and
     * wake, which this proc's wake follows; a cancel not yet seen here is
     * one its task finds claimed, as a cancel made after the deadline. */
    g->result = g_cancelled(g) ? -ECANCELED : g_run(g)->wake_at_result;
    store_relaxed(&g->state, G_RUNNABLE);
    if (p->steal_on) {
        g->next = p->prio; /* the ring's front belongs to thieves too */
        p->prio = g;
        p->runq_len++;
        return;
    }
    g->next = p->runq_head;
    p->runq_head = g;
    if (!p->runq_tail)
        p->runq_tail = g;
    p->runq_len++;
}

/* The deadline of an I/O operation in flight (io_wait, io.c; a timed
 * IORING_OP_FUTEX_WAIT is ended the same way, futex.c "Timed waits"): the
 * wait is not interruptible, since the kernel still holds the caller's
 * buffer, so the timer does not end it; it asks the kernel to cancel the
 * operation, whose CQE then ends the wait (io.c, step 4).  So an
 * operation with a deadline costs one SQE, like one without, and a deadline
 * that never fires costs a heap insert and removal in user space.
 *
 * Only this proc ends such a wait (the CQE is reaped here; ringo_cancel and
 * ringo_close reach it through tasks that run here), so the park word read
 * relaxed is exact: still our token and unclaimed means the operation's CQE
 * has not been reaped, and g->io_op is the operation. */
static void op_deadline_fire(struct rproc *p, struct rtimer *t)
{
    struct rg *g = g_of_timer(t);
    if (load_relaxed(&g->park) != g_run(g)->timer_token << PARK_SHIFT || !g_wait(g)->io_op)
        return;
    eng_cancel_op(p, g_wait(g)->io_op);
}

const struct rtimer_ops g_timer_ops = { .fire = g_timer_fire };
const struct rtimer_ops op_deadline_ops = { .fire = op_deadline_fire };

/* ready() for a goroutine of another proc, readied by proc p or (p
 * NULL) a plain thread.  Apart, so that the local case keeps a short
 * frame (tests/bench/pingpong on one proc). */
static __attribute__((noinline)) void ready_remote(struct rproc *p, struct rproc *owner, struct rg *g)
{
    if (p) {
        stat_add(p->st.cross_wakes, 1);
        inbox_push_chain(owner, g, g);
        proc_wake(owner);
        return;
    }
    /* A plain thread: the goroutine is parked, so the run is live; stay
     * counted while we touch its proc (the goroutine may run and the run
     * end between the push and the eventfd write).  Should the run be over
     * all the same, its procs are gone and nobody is left to wake. */
    if (!run_enter(&p))
        return;
    inbox_push_chain(owner, g, g);
    proc_wake(owner);
    run_exit(p);
}

/* ready() for a goroutine that spins in place (sched.c "Spinning in
 * place"): it is still running on its proc, watching its park word, so
 * it is not queued anywhere; the result and DONE in the word are all it
 * needs. */
static __attribute__((noinline)) void ready_spun(struct rg *g, uint64_t w, int result)
{
    struct rproc *p = tls_proc;
    if (p)
        stat_add(p->st.cross_wakes, 1);
    g->result = result;
    /* release: publishes the result, and what the waker wrote for the
     * wait before it (a channel's value, the waiter's fired sudog), to
     * the spinner's acquire load of the word.  The last access to g: the
     * goroutine may run on at once, exit, and its struct be reused. */
    store_release(&g->park, w | PARK_DONE);
}

void ready(struct rg *g, int result)
{
    /* relaxed: the word this thread's winning claim wrote.  Once CLAIMED,
     * the word changes only by its winner (other claims fail without a
     * store, and the spinner's CAS expects it unclaimed), so this is
     * that word. */
    uint64_t w = load_relaxed(&g->park);
    if (__builtin_expect(w & PARK_SPIN, 0)) {
        ready_spun(g, w, result);
        return;
    }
    g->result = result;
    store_relaxed(&g->state, G_RUNNABLE);
    struct rproc *owner = load_relaxed(&g->p); /* fixed since the goroutine started */
    struct rproc *p = tls_proc;
    if (owner == p) {
        /* Lines 1 and 2, which its resumption reads first (sched.c
         * "Resuming a goroutine"); started is set before the goroutine
         * first waits, and it is ours. */
        if (g->started && resume_cold(p))
            prefetch_lines(g->cold, 2);
        runq_push(p, g);
        return;
    }
    ready_remote(p, owner, g);
}
