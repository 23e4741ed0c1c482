/*
 * runq.c — where ready goroutines wait for their proc: the run queues, the
 * inbox other threads push goroutines onto, the tasks they post, and how
 * unstarted goroutines move between procs (donation and stealing).
 *
 * Each proc has its own queue; only its thread pushes and pops (the inline
 * operations are in scheduler.h).  Other threads reach it through p->inbox (a
 * lock-free MPSC stack of goroutines, drained into the queue at scheduling
 * points), p->tasks (the same for work the proc must do itself: cancels,
 * closes, stack flushes) and proc_wake() (sched.c "Proc sleeping/waking").
 *
 * Moving work.  Started goroutines never change proc.  Unstarted ones do:
 * a busy proc donates some to a proc that advertises hunger, at its own
 * scheduling points (donate), and a hungry proc takes some from the head of
 * a busy proc's ring by itself (steal), so a goroutine that spawns and then
 * computes without blocking does not keep its children from idle procs.
 * And a spawner whose children are slow to run hands half of its backlog
 * to a proc with a short queue, idle or not (deal; spawn.c "Dealing").
 *
 * Stealing.  With more than one proc, a proc's ready goroutines go through
 * rq, a ring of RQ_SIZE entries (Go's runq is the model: runqput,
 * runqget, runqgrab).  The owner pushes at rq_tail; the owner pops, and an
 * idle proc steals, at rq_head, each claiming entries with a CAS on
 * rq_head.  A thief takes only the leading run of entries marked
 * RQ_STEALABLE (goroutines that have not started and are not bound), at
 * most half of them: started goroutines never change proc.  When the ring
 * is full, goroutines queue behind it on the owner's list (runq_head; they
 * are still donated as before), and every push moves as many of them into
 * the ring as fit, oldest first, so the order is FIFO throughout: entries
 * in the ring are older than those on the list.  A goroutine whose timer
 * fired goes on prio, ahead of both (g_timer_fire).  With one proc there
 * are no thieves, and the list alone is the queue, as it always was.
 *
 * Who steals: a proc about to sleep (proc_main), and a hungry proc that a
 * spawner pokes (steal_wake): a goroutine that spawns and then computes
 * without a scheduling point would otherwise keep its children from idle
 * procs until it blocked.
 *
 * The handshakes, owner o and thief t (another proc's thread):
 *
 *   push (o)                                grab (t)
 *   --------                                --------
 *   h = load_acquire(rq_head)   (1)         h = load_acquire(rq_head)   (1')
 *   if rq_tail - h == RQ_SIZE: full         tl = load_acquire(rq_tail)  (2')
 *   store_relaxed(rq[tail], g|tag)          read rq[h .. h+n) relaxed
 *   store_release(rq_tail, tail+1) (2)      cas_acq_rel(rq_head, h, h+n) (3')
 *
 *   pop (o): h = load_acquire(rq_head); e = rq[h]; cas_acq_rel(rq_head, h, h+1) (3)
 *
 *   - (2) pairs with (2'): a thief that sees the new tail sees the entry
 *     and everything the owner wrote to the goroutine before pushing it
 *     (spawn's initialisation).
 *   - (3') pairs with (1): the owner overwrites a slot only after loading
 *     a head past it; if a thief moved the head, its reads of that slot
 *     happened before, so the owner never overwrites an entry a
 *     successful thief is still reading.
 *   - The owner's pop and a thief's grab race for the same head: both CAS
 *     from h, one wins, the other fails and starts again with the new
 *     head.  A thief whose CAS fails throws away what it read: the slots
 *     may have been consumed and refilled meanwhile (which is why they
 *     are atomics, read relaxed: a read that races with the owner's store
 *     is then no data race, only a stale value that is never used).
 *     rq_head counts up without wrapping the ring (32 bits: an ABA would
 *     need 2^32 pops between a thief's load and its CAS).
 *   - (1') and (2') are loaded in that order, so tail - head is at least
 *     the number of live entries at (1'); if the owner pushed and others
 *     popped in between, it may exceed RQ_SIZE: an inconsistent pair, read
 *     again.
 *   - A thief that wins owns the goroutines: it sets their proc (relaxed,
 *     as donate does: nobody reads the proc of a goroutine that has not
 *     started but its holder) and queues them on its own proc.
 *
 * The hint.  A thief first loads the victim's rq_stealable (internal.h),
 * which the owner sets when rq_fresh leaves 0 and clears when it returns
 * to 0 (all its popped, or the ring found empty), and looks at the
 * indexes only if it is set:
 *
 *   owner o (spawning g)                    thief t
 *   --------------------                    -------
 *   rq_push: store_relaxed(rq_stealable, 1)
 *            store_release(rq_tail)   (2)
 *   steal_wake: post steal_task, a
 *     release CAS on t's tasks        (4) -> tasks_run: xchg_acquire  (4')
 *                                           steal: load_relaxed(rq_stealable)
 *
 * (4) pairs with (4'): a thief sent to steal sees the hint set, or a
 * later clear, which the owner makes only once nothing unstarted is left
 * on its ring; it never misses what it was sent for.  An idle thief that
 * was not sent may load a stale 0 and miss goroutines just pushed, as it
 * would had it looked a moment before the push: that is what steal_wake
 * is for.  A stale 1 costs the look at the indexes that every steal made
 * before the hint existed.
 *
 * Lines of a hand-off.  What a one-way hand-off on an unbuffered
 * channel moves between the two CPUs, when the sender S runs on proc A and
 * the receiver R, blocked in ringo_chan_recv, belongs to proc B, which has
 * nothing else to run, so that R waits in the channel's slot (chan.c
 * "Meeting in the slot").  A line "moves" when the other CPU last wrote
 * it, so this CPU's access has to fetch it.
 *
 *   on A, S's send:
 *     1. the channel's line 0 (the lock, the slot's state and its value),
 *        which R wrote when it took the slot and has read since: S's CAS
 *        of the state fetches it to own it, and S's copy of the value
 *        and its DONE are on the same line;
 *   on B, until R runs on and sends the reply:
 *     2. the same line, fetched back by R's watch; R's copy of the value
 *        into its `v` and its store of EMPTY are on it too (the store
 *        takes back the copy A still has, without moving the data).
 * Two lines per one-way hand-off, four when R's watch looks at the line
 * between S's CAS and S's DONE (it then goes back and forth once more).
 * R's next wait on the channel (lock, slot, unlock) finds the line its
 * own; the reply's line was last written by S, when it took that
 * channel's slot.
 *
 * When the value does not fit in the slot (or a select waits, or another
 * waiter holds the slot), R queues a sudog and spins on its park word
 * instead (sched.c "Spinning in place"):
 *
 *   on A, S's send:
 *     1. the channel's lock word (chan_lock's CAS): R wrote it when it
 *        queued itself;
 *     2. the channel's receiver queue, c->recvq, on the struct's second
 *        line (struct ringo_chan is 64-aligned, recvq at offset 80).
 *        Moving the queues onto the lock's line measured no faster in
 *        tests/bench/pingpong: the two lines are one aligned 128-byte
 *        pair, which the CPU may fetch together;
 *     3. R's sudog and waiter, on R's stack (chan_block), which R wrote
 *        before parking: S unlinks the sudog and sets fired and success
 *        (88 bytes, so one or two lines: counted as one);
 *     4. line 0 of R's struct rg: the claim CAS on the park word, which
 *        R is watching, then the result and DONE (ready_spun);
 *     5. R's destination, the `v` in the receiving caller's frame, which
 *        S's copy writes;
 *   on B, until R runs on and sends the reply:
 *     6. line 0 of R's struct rg, fetched back by R's watch;
 *     7. R's sudog and waiter, read back by R (w.fired, sd.success);
 *     8. R's `v`, read back by R as the value it sends on.
 * Eight lines per one-way hand-off, ten when R's watch looks at its park
 * word between S's claim and S's DONE (the line then goes back and forth
 * once more); the reply's items 1-2 (the other channel) were last written
 * by S when it queued itself on it.
 *
 * When R cannot spin at all (B has other goroutines to run, or its spin
 * budget ran out), it parks as usual and S pushes it onto B's inbox: item
 * 4 is the claim, result, state and the inbox link, all on line 0
 * (internal.h);
 * 6. B's inbox line, which S's push CASes; then on B, 7. the inbox line
 * again, fetched by B's spin, 8. line 0 of R's struct rg, fetched back by
 * the switch to R, 9-10. R's sudog and waiter and R's `v`, as 7-8 above:
 * ten lines.
 *
 * What keeps that path at ten (each was one more transfer once):
 *   - a line first read shared and then written (a load, then a CAS or
 *     an exchange) is fetched twice: S loaded the park word and B's inbox
 *     head before CASing them, and B's spin read the inbox before
 *     draining it with an exchange.  So claim_expect and inbox_push_chain
 *     CAS from the expected value, and the spin fetches the inbox line to
 *     own it (prefetch_own).  For that one fetch to stay the only one,
 *     nobody else may touch the line meanwhile: B's hungry flag and its
 *     sleeping flag, which the waker loads after its push, are not on it
 *     (internal.h);
 *   - A, going idle, read B's run-queue indexes (steal) while B pushed
 *     and popped R through them, and B had to fetch them back; a thief
 *     first reads a hint that B writes only when it has goroutines that
 *     have not started (rq_stealable).
 * tests/bench/cacheline measures the machine's transfer, and run.sh
 * prints the 2-proc ping-pong as a multiple of it.  The slot's one line,
 * and items 1, 2, 3 and 5 of the queued path, follow from the channel's
 * and its sudogs' layout (chan.h, chan.c).
 */
#include "config.h"

#include "internal.h"
#include "scheduler.h"

/* Goroutines a busy proc donates to a hungry one at most per donation. */
#define DONATE_MAX 64

/* Goroutines an idle proc steals at most at a time (half the victim's
 * ring, up to this). */
#define STEAL_MAX 64



/* Move goroutines queued behind a full ring into it, oldest first.
 * Everything needed from g is read before rq_push: once it is on the ring
 * a thief may take it, run it and free it. */
void rq_refill(struct rproc *p)
{
    struct rg *g;
    while ((g = p->runq_head)) {
        struct rg *next = g->next;
        bool fresh = !g->started && !g->bound;
        if (!rq_push(p, g))
            break;
        p->runq_head = next;
        if (!next)
            p->runq_tail = NULL;
        p->runq_len--;
        if (fresh)
            p->fresh--;
    }
}

/* Take up to half (at most STEAL_MAX) of the leading unstarted goroutines
 * of v's ring into out[]; their number.  Any thread; see "Stealing". */
static unsigned rq_grab(struct rproc *v, struct rg **out)
{
    for (;;) {
        /* acquire (1'), then acquire (2'): see "Stealing" */
        uint32_t h = load_acquire(&v->rq_head);
        uint32_t t = load_acquire(&v->rq_tail);
        uint32_t n = t - h;
        if (n > RQ_SIZE)
            continue; /* an inconsistent pair: read again */
        n -= n / 2;
        if (n > STEAL_MAX)
            n = STEAL_MAX;
        unsigned k = 0;
        while (k < n) {
            /* relaxed: published by (2'); only kept if the CAS wins */
            uintptr_t e = load_relaxed(&v->rq[(h + k) % RQ_SIZE]);
            if (!(e & RQ_STEALABLE))
                break;
            out[k++] = (struct rg *)(e & ~RQ_STEALABLE);
        }
        if (k == 0)
            return 0;
        /* acq_rel (3'): claims the entries; pairs with the owner's (1) */
        if (cas_acq_rel(&v->rq_head, &h, h + k))
            return k;
    }
}

__attribute__((noinline)) void runq_push_steal(struct rproc *p, struct rg *g)
{
    if (!p->runq_head && rq_push(p, g))
        return;
    runq_push_list(p, g);
    rq_refill(p);
}

size_t runq_count(struct rproc *p)
{
    return p->runq_len + (p->steal_on ? rq_len(p) : 0);
}

/* inbox_drain (scheduler.h) past its peek. */
void inbox_drain_all(struct rproc *p)
{
    /* acquire: pairs with the release CAS in inbox_push_chain */
    struct rg *g = xchg_acquire(&p->inbox, NULL);
    struct rg *rev = NULL;
    while (g) {
        struct rg *n = g->next;
        g->next = rev;
        rev = g;
        g = n;
    }
    while (rev) {
        struct rg *n = rev->next;
        runq_push(p, rev);
        rev = n;
    }
}

void proc_post_task(struct rproc *p, struct rtask *t)
{
    struct rtask *head = load_relaxed(&p->tasks);
    do {
        t->next = head;
        /* release: publishes the task's contents to tasks_run's acquire */
    } while (!atomic_compare_exchange_weak_explicit(&p->tasks, &head, t,
                                                    memory_order_release,
                                                    memory_order_relaxed));
    proc_wake(p);
}

/* tasks_run (scheduler.h) past its peek. */
void tasks_run_all(struct rproc *p)
{
    struct rtask *t = xchg_acquire(&p->tasks, NULL); /* pairs with proc_post_task */
    struct rtask *rev = NULL;
    while (t) {
        struct rtask *n = t->next;
        t->next = rev;
        rev = t;
        t = n;
    }
    while (rev) {
        struct rtask *n = rev->next;
        rev->run(p, rev);
        rev = n;
    }
}

void proc_wake(struct rproc *target)
{
    /* (B): orders the caller's push (inbox/tasks/stopping) before the load
     * of target->sleeping; pairs with (A) in proc_sleep. */
    smp_mb();
    if (!load_relaxed(&target->sleeping))
        return;
    /* Only the waker that flips 1 -> 0 sends the wake. */
    if (xchg_acq_rel(&target->sleeping, 0) != 1)
        return;
    eng_wake(tls_proc, target);
}

/* donate for the ring (see "Stealing"): a hungry proc steals only the
 * leading run of unstarted goroutines of p's ring, and a started one at the
 * head (one that yielded, or was woken) hides the unstarted ones behind it.
 * So the owner takes the whole ring as a thief would (one CAS on the head),
 * gives up to half of its unstarted goroutines to `to`, and puts the rest
 * back in their order; the ring is then empty but for them, with room for
 * all.  True if it gave any.  rq_fresh, the unstarted goroutines the owner
 * pushed and has not popped, counts those thieves took as well: a hint,
 * made exact here. */
static bool donate_ring(struct rproc *p, struct rproc *to, unsigned max)
{
    /* acquire: as (1) in rq_pop; the CAS (3) claims [h, t) from thieves */
    uint32_t h = load_acquire(&p->rq_head);
    uint32_t t = load_relaxed(&p->rq_tail); /* relaxed: our own store */
    do {
        if (h == t) {
            if (p->rq_fresh) {
                p->rq_fresh = 0;
                rq_fresh_flip(p, 0);
            }
            return false;
        }
    } while (!cas_acq_rel(&p->rq_head, &h, t));
    unsigned want = (p->rq_fresh + 1) / 2;
    if (want > max)
        want = max;
    /* Counted again, and the hint set again, by the rq_push of those put
     * back. */
    if (p->rq_fresh) {
        p->rq_fresh = 0;
        rq_fresh_flip(p, 0);
    }
    struct rg *first = NULL, *last = NULL;
    unsigned n = 0;
    /* In place, oldest first: the j-th entry put back lands on slot
     * (t + j) % RQ_SIZE, which is one already read (t - h <= RQ_SIZE). */
    for (uint32_t i = h; i != t; i++) {
        /* relaxed: our own stores, claimed by the CAS */
        uintptr_t e = load_relaxed(&p->rq[i % RQ_SIZE]);
        struct rg *g = (struct rg *)(e & ~RQ_STEALABLE);
        if ((e & RQ_STEALABLE) && n < want) {
            store_relaxed(&g->p, to); /* relaxed: see "Stealing" */
            chain_append(&first, &last, g);
            n++;
        } else if (!rq_push(p, g)) {
            bug("the ring lost room it had");
        }
    }
    if (first) {
        stat_add(p->st.donations, n);
        inbox_push_chain(to, first, last);
        proc_wake(to);
    }
    return n > 0;
}

static bool donate_list(struct rproc *p, struct rproc *to);

/* Give unstarted goroutines to a hungry proc.  Called by a busy proc that
 * has some (p->fresh > 0, or p->rq_fresh). */
void donate(struct rproc *p)
{
    struct rproc *to = NULL;
    for (unsigned i = 1; i < rt.nprocs; i++) {
        struct rproc *q = rt.procs[(p->idx + i) % rt.nprocs];
        if (load_relaxed(&q->hungry) && xchg_acq_rel(&q->hungry, 0) == 1) {
            to = q;
            break;
        }
    }
    if (!to)
        return;
    if (p->steal_on && p->rq_fresh && donate_ring(p, to, DONATE_MAX))
        return;
    if (donate_list(p, to))
        return;
    /* Given nothing: the ring's count included goroutines thieves had
     * taken (donate_ring made it exact), and the list had none.  `to` is
     * still hungry, or no spawn would wake it again while it sleeps
     * (steal_wake).  Not when the list has unstarted goroutines past the
     * scan: every scheduling point would scan again.  relaxed: a hint, as
     * proc_sleep's store.  `to` may have woken meanwhile for other work
     * and passed its own clear: flagged while busy, it may be given work
     * it need not have, once; the flag is cleared at its next wake. */
    if (!p->fresh)
        store_relaxed(&to->hungry, 1);
}

/* donate's list part: whether it gave any. */
static bool donate_list(struct rproc *p, struct rproc *to)
{
    size_t want = (p->fresh + 1) / 2;
    if (want > DONATE_MAX)
        want = DONATE_MAX;
    struct rg *first = NULL, *last = NULL;
    struct rg **link = &p->runq_head, *prev = NULL;
    size_t n = 0, scanned = 0;
    while (*link && n < want && scanned < 4 * DONATE_MAX) {
        struct rg *g = *link;
        scanned++;
        if (!g->started && !g->bound) {
            *link = g->next;
            if (p->runq_tail == g)
                p->runq_tail = prev;
            p->runq_len--;
            p->fresh--;
            store_relaxed(&g->p, to);
            chain_append(&first, &last, g);
            n++;
        } else {
            prev = g;
            link = &g->next;
        }
    }
    if (first) {
        stat_add(p->st.donations, n);
        inbox_push_chain(to, first, last);
        proc_wake(to);
    }
    return n > 0;
}

/* Hand up to half of the unstarted goroutines on p's ring to another proc
 * whose queue is short, busy or not (spawn.c "Dealing").  Short: nothing
 * in its inbox (so it has taken in the last deal), and its ring less than
 * half full.  Both are read from another CPU while the owner pushes and
 * pops: a hint, good enough to decide where work goes. */
void deal(struct rproc *p)
{
    if (!p->rq_fresh)
        return;
    for (unsigned i = 1; i < rt.nprocs; i++) {
        struct rproc *q = rt.procs[(p->idx + i) % rt.nprocs];
        /* relaxed: hints; head before tail, so that a pair read across
         * the owner's pushes and pops errs towards long (it may exceed
         * RQ_SIZE, which counts as long) */
        if (load_relaxed(&q->inbox))
            continue;
        uint32_t h = load_relaxed(&q->rq_head);
        uint32_t t = load_relaxed(&q->rq_tail);
        if (t - h >= RQ_SIZE / 2)
            continue;
        donate_ring(p, q, RQ_SIZE / 2);
        return;
    }
}

/* Take goroutines that have not started from another proc's ring (see
 * "Stealing"): one to run, the rest queued here.  NULL if no proc had any. */
struct rg *steal(struct rproc *p)
{
    struct rg *got[STEAL_MAX]; /* on a goroutine's stack, from steal_run */
    for (unsigned i = 1; i < rt.nprocs; i++) {
        struct rproc *v = rt.procs[(p->idx + i) % rt.nprocs];
        /* relaxed: the hint rq_stealable (internal.h; "Stealing") */
        if (!load_relaxed(&v->rq_stealable))
            continue;
        unsigned n = rq_grab(v, got);
        if (!n)
            continue;
        for (unsigned k = 0; k < n; k++)
            store_relaxed(&got[k]->p, p); /* relaxed: see "Stealing" */
        for (unsigned k = 1; k < n; k++)
            runq_push(p, got[k]);
        stat_add(p->st.donations, n); /* ringo_stats counts both ways of moving */
        return got[0];
    }
    return NULL;
}

/* A goroutine just went on p's ring: if a proc is hungry, ask it to come
 * and steal.  A task rather than a plain wake: a hungry proc may be
 * spinning on its inbox and tasks (proc_sleep), or about to sleep, and the
 * task is what the sleep/wake handshake covers. */
void steal_wake(struct rproc *p)
{
    /* No fence between the push and the loads below (a fence here, paid
     * by every spawn, made spawns on two procs half again as slow,
     * tests/bench/spawn): a proc that stores its flag while the push is
     * still in this CPU's store buffer may miss it in its last look
     * (proc_sleep), and this load see the flag still clear, for the few
     * nanoseconds the store takes to drain.  The goroutine then waits for
     * its spawner's next scheduling point, as Go's wakep, whose load of
     * nmspinning is unfenced too, lets one wait. */
    for (unsigned i = 1; i < rt.nprocs; i++) {
        struct rproc *q = rt.procs[(p->idx + i) % rt.nprocs];
        /* relaxed peek, then acq_rel xchg: one spawner (or donor) takes
         * the hungry flag, as in donate */
        if (load_relaxed(&q->hungry) && xchg_acq_rel(&q->hungry, 0) == 1) {
            /* acq_rel: one asker posts the task until its run clears the
             * flag (release in steal_run) */
            if (xchg_acq_rel(&q->steal_pending, 1) == 0)
                proc_post_task(q, &q->steal_task);
            return;
        }
    }
}

void steal_run(struct rproc *p, struct rtask *t)
{
    (void)t;
    /* release: the next spawner may post again; as flush_pending */
    store_release(&p->steal_pending, 0);
    struct rg *g = steal(p);
    if (g)
        runq_push(p, g);
}
