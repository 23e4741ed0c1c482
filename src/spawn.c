/*
 * spawn.c — starting goroutines, and the public calls that ask about them
 * (ringo_go, ringo_go_on, ringo_id, ringo_proc, ringo_nprocs,
 * ringo_count).
 *
 * A spawn takes a goroutine struct from the proc's free list (gtable.c), a
 * stack credit, and a fresh id, writes line 0 of the struct only
 * (internal.h) and its slot record (gtable.c), and queues the goroutine on its target proc without a
 * stack: it gets one from that proc's stack cache the first
 * time it runs (sched.c g_start), so spawning a million goroutines that
 * each run and exit reuses one hot stack (tests/bench/spawn).  On its own
 * proc it goes on the local run queue; on another it goes through that
 * proc's inbox (runq.c).
 *
 * The spawn slice.  A goroutine that spawns without ever blocking or
 * yielding would otherwise pile up its children on its own proc for as
 * long as it runs: a loop of a million ringo_go calls queued a million
 * goroutines (81 bytes each) before the first one ran, and on more procs
 * the idle ones, which steal them (runq.c "Stealing"), take them slower
 * than one spawner makes them (each stolen goroutine's lines move between
 * CPUs).  Go bounds that backlog by preempting any goroutine that has run
 * for 10 ms (sysmon's forcePreemptNS): the spawner goes behind its
 * children, which then run on its own P too.  ringo cannot preempt, but a
 * spawn is a safe point: every SLICE_EVERY spawns made on a proc (its
 * spawned count, which ringo_stats reports), the spawn looks at the proc's
 * scheduling-point count (p->tick, which next_runnable bumps) and the
 * coarse clock, as sysmon looks at a P's schedtick.  If no scheduling point has happened since a look at
 * least SLICE_NS ago, the goroutine running now has run that long without
 * one, and the spawn yields after queueing its child: the backlog is then
 * about SLICE_NS of spawning (ringo_go(3) says so).  The cost on the hot
 * path is a counter and a branch; the look itself is a vDSO read of the
 * kernel's last tick (now_coarse, no TSC read), so the slice is SLICE_NS
 * plus up to a coarse tick and SLICE_EVERY spawns.
 */
#include "config.h"

#include "internal.h"
#include "scheduler.h"

#include <errno.h>

/* Count one more live goroutine unless the run has stopped (see
 * LIVE_STOPPED).  The CAS is what makes "spawn" and "the last goroutine
 * exits" mutually ordered: a spawn either lands before the count reaches
 * zero (and the run waits for it) or sees STOPPED and fails. */
static bool live_inc(void)
{
    int64_t v = load_relaxed(&rt.live);
    do {
        if (v & LIVE_STOPPED)
            return false;
    } while (!cas_acq_rel(&rt.live, &v, v + 1));
    return true;
}

/* Spawns between two looks at the clock ("The spawn slice"). */
#define SLICE_EVERY 256
/* How long a goroutine may spawn without a scheduling point before a
 * spawn yields: Go's forcePreemptNS. */
#define SLICE_NS 10000000

/* The look, every SLICE_EVERY spawns made on p, by p->cur. */
static __attribute__((noinline)) void slice_look(struct rproc *p)
{
    /* relaxed: our own counter (the watchdog reads it, nobody else writes) */
    unsigned tick = load_relaxed(&p->tick);
    int64_t now = now_coarse();
    if (tick != p->slice_tick || p->slice_start == 0) {
        /* A scheduling point since the last look, or the first look of
         * the run (whose first goroutine started with no scheduling point
         * before it): a new stretch starts. */
        p->slice_tick = tick;
        p->slice_start = now;
        return;
    }
    if (now - p->slice_start >= SLICE_NS)
        ringo_yield(); /* bumps tick: the next look starts a new stretch */
}

static int64_t spawn_g(struct rproc *me, struct rproc *target, bool bound,
                       void (*fn)(void *), void *arg, void *creator)
{
    if (!live_inc())
        return -EINVAL;
    int r = credit_take(me);
    if (r) {
        rt_goroutine_done();
        return r;
    }
    struct rg *g = g_alloc(me);
    if (!g) {
        if (me)
            credit_give(me);
        else
            stack_unreserve(1);
        rt_goroutine_done();
        return -ENOMEM;
    }
    int64_t id = g_incarnate(g, arg, creator);
    /* Line 0 only (internal.h): lines 1 and 2 come with the stack, when
     * the goroutine first runs (g_start). */
    g->fn = fn;
    g->started = false;
    g->bound = bound;
    store_relaxed(&g->reason, W_NONE);
    store_relaxed(&g->cancel_id, 0);
    /* relaxed: the struct is ours.  Claimed, with the last token handed
     * out kept (g_start gives it to park_seq): the exited goroutine left
     * it so, with the flags of its last wait, which go. */
    store_relaxed(&g->park, (load_relaxed(&g->park) & ~(PARK_INTR | PARK_SPIN | PARK_DONE)) | PARK_CLAIMED);
    store_relaxed(&g->state, G_RUNNABLE);
    store_relaxed(&g->p, target);
    /* release: a lookup that sees the id sees the fields above */
    store_release(&g->id, id);
    uint64_t made = 1; /* spawns made on this proc, for the slice; not 0 mod SLICE_EVERY */
    if (me)
        /* relaxed: the owner's counter (stat_add), ringo_stats reads it */
        store_relaxed(&me->st.spawned, made = load_relaxed(&me->st.spawned) + 1);
    else
        fetch_add_relaxed(&rt.foreign_spawned, 1); /* many writers: a real RMW */
    if (target == me) {
        runq_push(me, g);
        if (me->steal_on && !bound)
            steal_wake(me);
    } else {
        if (me)
            stat_add(me->st.cross_wakes, 1);
        inbox_push_chain(target, g, g);
        proc_wake(target);
    }
    /* "The spawn slice": g is queued, the spawner may go behind it.  (A
     * proc's thread spawns only from its goroutines, but be sure.) */
    if (__builtin_expect(made % SLICE_EVERY == 0, 0) && me->cur)
        slice_look(me);
    return id;
}

int64_t spawn_main(void (*fn)(void *), void *arg)
{
    /* From ringo_run's own thread before the procs run: not a plain
     * thread's call (no note_foreign). */
    return spawn_g(NULL, rt.procs[0], true, fn, arg, NULL);
}

int64_t spawn(int proc, bool bound, void (*fn)(void *), void *arg, void *creator)
{
    if (!fn)
        return -EINVAL;
    struct rproc *me;
    if (!run_enter(&me))
        return -EINVAL; /* a plain thread, and no run */
    int64_t r;
    if (proc >= 0 && (unsigned)proc >= rt.nprocs) {
        r = -EINVAL;
    } else {
        struct rproc *target = proc >= 0 ? rt.procs[proc]
                               : me ? me
                               : rt.procs[fetch_add_relaxed(&rt.rr, 1) % rt.nprocs];
        r = spawn_g(me, target, bound, fn, arg, creator);
    }
    run_exit(me);
    return r;
}

int64_t ringo_go(void (*fn)(void *), void *arg)
{
    return spawn(-1, false, fn, arg, __builtin_return_address(0));
}

int64_t ringo_go_on(int proc, void (*fn)(void *), void *arg)
{
    if (proc < 0)
        return -EINVAL;
    return spawn(proc, true, fn, arg, __builtin_return_address(0));
}

int64_t ringo_id(void)
{
    struct rg *g = self_g();
    return g ? load_relaxed(&g->id) : 0;
}

int ringo_proc(void)
{
    struct rproc *p = tls_proc;
    return p && p->cur ? p->idx : -1;
}

int ringo_nprocs(void)
{
    return load_acquire(&rt.active) ? (int)rt.nprocs : 0;
}

size_t ringo_count(void)
{
    /* acquire: pairs with the acq_rel decrement in rt_goroutine_done (and
     * the release sequence the later decrements continue), so a count that
     * no longer includes a goroutine is read after everything it did:
     * "wait until ringo_count() == 1, then free what they used" is safe. */
    int64_t n = load_acquire(&rt.live) & ~LIVE_STOPPED;
    return n > 0 ? (size_t)n : 0;
}
