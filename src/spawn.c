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
 *
 * The backlog.  Ten milliseconds of spawning is still 100k or more
 * goroutines waiting, each with a struct and a slot record on pages that a
 * first run touches afresh (about 2 us a page on a virtualised machine),
 * and a queue far larger than the caches, so each child runs on cold
 * lines.  So the same look also yields when SPAWN_BACKLOG goroutines or
 * more wait on the proc: the spawner then goes behind at most a few
 * hundred children, which run on the structs and the one stack that the
 * ones before them left hot.  A WaitGroup fan-out of 100k goroutines on one
 * proc ran its first round in 10 ms before and in 4.3 ms with the bound,
 * and its second in 5.5 and 4.1 (tests/bench/waitgroup).  256, as Go's
 * local run queue holds: 256 structs are 16 KiB, which stay in a 32 KiB
 * L1; with 1024 the same fan-out missed a simulated L1 ten times as often
 * (callgrind --cache-sim, 2.5 misses a goroutine against 0.24).
 *
 * Dealing.  With more than one proc, the bound costs the other procs their
 * share when children are slow to run.  An idle proc steals at most 64 at
 * a time and only the leading unstarted ones, and while the spawner waits
 * behind its backlog, its proc runs that backlog and whatever else is
 * ready there (a burst of timers firing, say), so the other procs run dry
 * of unstarted goroutines until the spawner runs again.  100k goroutines
 * that each sleep 10 ms on 2 procs started two thirds of themselves on
 * the spawner's proc, and their wake-ups followed them there (a started
 * goroutine never moves).  So the spawner times its waits: when the last
 * two backlogs each took more than DEAL_NS to run (256 children at more
 * than about 200 ns each, the cost of moving a goroutine to another CPU
 * and of waking that CPU's proc now and then), the next backlog is dealt:
 * half of it goes to a proc whose queue is short, idle or not (runq.c
 * deal), before the spawner yields.  Round 2 of tests/bench/sleepers on 2
 * procs: 164 ms without dealing, 129 with (medians of 8 alternated runs).
 * A fan-out of empty goroutines, whose 256 run in 10-25 us, is not dealt
 * and keeps its locality.  Two slow waits in a row, not one: a fan-out
 * waits over 50 us now and then (a page fault, the host), and a dealt
 * fan-out's children contend for their WaitGroup's line across CPUs,
 * which slows the next wait too; dealing after any one slow wait fed on
 * itself, and round 2 of tests/bench/waitgroup on 2 procs took 13-22 ms
 * in two runs of eight, against 3-7.  Dealing only to a hungry proc did
 * not help the sleepers: the other proc is mostly busy with the last deal
 * when the spawner looks.
 *
 * Counting the live.  ringo_count() and the end of the run need the number
 * of goroutines spawned and not yet exited.  One shared counter, CASed by
 * every spawn and decremented by every exit, moved its cache line between
 * CPUs twice per goroutine whenever children ran on another proc than
 * their spawner's (a fan-out of 100k goroutines on 2 procs took twice as
 * long as on one).  So each count lives with the one who makes it:
 *
 *   - p->st.spawned: spawns made on proc p (its owner's plain store,
 *     before the child is queued, so it happens before the child runs);
 *   - p->exited: exits on p (its owner's store, release: what the
 *     goroutine did happens before a read that counts its exit);
 *   - rt.live: spawns made off the procs, by ringo_run for main and by
 *     plain threads, with a CAS that fails once LIVE_STOPPED is set.
 *
 * live_count() loads every p->exited (acquire) first, and only then the
 * spawn counts.  A spawn happens before its goroutine's exit, so every
 * exit the sum sees brings its spawn along: the count is never below the
 * number of goroutines live at either moment (it may include a goroutine
 * spawned meanwhile), and a count that no longer includes a goroutine was
 * read after everything that goroutine did (ringo_id(3) promises both).
 *
 * The end of the run.  No exit looks at other procs.  A proc that has had
 * exits since its last look and finds nothing left to run (proc_main)
 * calls live_end_check: a seq_cst fence, then live_count.  The last two
 * exits, on procs A and B, race like a store buffer:
 *
 *        proc A                               proc B
 *        ------                               ------
 *        store A->exited (its last exit)      store B->exited (its last exit)
 *        fence seq_cst          (A) <-------> fence seq_cst          (B)
 *        load B->exited                       load A->exited
 *
 * Of two seq_cst fences one comes first, and the proc with the later one
 * sees the other's exit: some proc counts 0 once the last goroutine has
 * exited.  With 0 counted, no goroutine is live, so only a plain thread
 * can make one; live_end_check then CASes rt.live from the value it read
 * to the same with LIVE_STOPPED.  A plain thread's spawn in between
 * changed rt.live (only a failed spawn takes its increment back, and it
 * made no goroutine), so the CAS fails and the run goes on; after it, the
 * spawn's own CAS sees LIVE_STOPPED and fails with -EINVAL.
 */
#include "config.h"

#include "internal.h"
#include "scheduler.h"

#include <errno.h>

/* A spawn made off the procs: count it in rt.live unless the run has
 * stopped ("Counting the live").  acq_rel: the CAS that stops the run and
 * this one are ordered, so a spawn either lands before the stop (whose
 * CAS then fails) or sees LIVE_STOPPED and fails. */
static bool live_inc(void)
{
    int64_t v = load_relaxed(&rt.live);
    do {
        if (v & LIVE_STOPPED)
            return false;
    } while (!cas_acq_rel(&rt.live, &v, v + 1));
    return true;
}

static void live_undo(void);

/* Spawns between two looks at the clock ("The spawn slice"). */
#define SLICE_EVERY 256
/* How long a goroutine may spawn without a scheduling point before a
 * spawn yields: Go's forcePreemptNS. */
#define SLICE_NS 10000000

/* Waiting goroutines at which a look yields ("The backlog"). */
#define SPAWN_BACKLOG 256
/* How long the spawner's waits behind its backlog may take, two in a row,
 * before the next backlog is dealt ("Dealing"). */
#define DEAL_NS 50000

/* The look, every SLICE_EVERY spawns made on p, by p->cur. */
static __attribute__((noinline)) void slice_look(struct rproc *p)
{
    if (runq_count(p) >= SPAWN_BACKLOG) {
        if (!p->steal_on) {
            ringo_yield();
            return;
        }
        /* "Dealing": deal if the last two backlogs took long to run. */
        if (p->backlogs_slow >= 2)
            deal(p);
        int64_t t0 = now_ns();
        ringo_yield();
        if (now_ns() - t0 > DEAL_NS)
            p->backlogs_slow++;
        else
            p->backlogs_slow = 0;
        return;
    }
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

/* The spawn of g, whose struct and stack credit are the spawner's now:
 * its line 0, its slot record, the counts, and its queue.  Inlined into
 * both spawn_g and ringo_go's fast path. */
static inline __attribute__((always_inline)) int64_t
spawn_fill(struct rproc *me, struct rproc *target, bool bound, struct rg *g,
           void (*fn)(void *), void *arg, void *creator)
{
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
        /* relaxed: the owner's counter, ringo_stats and live_count read
         * it; the queueing below publishes it with the goroutine */
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
static int64_t spawn_g(struct rproc *me, struct rproc *target, bool bound,
                       void (*fn)(void *), void *arg, void *creator)
{
    /* A spawn on a proc is made by a live goroutine, so the run cannot
     * stop meanwhile; it is counted once it has succeeded (below). */
    if (!me && !live_inc())
        return -EINVAL;
    int r = credit_take(me);
    if (r) {
        if (!me)
            live_undo();
        return r;
    }
    struct rg *g = g_alloc(me);
    if (!g) {
        if (me) {
            credit_give(me);
        } else {
            stack_unreserve(1);
            live_undo();
        }
        return -ENOMEM;
    }
    return spawn_fill(me, target, bound, g, fn, arg, creator);
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
    /* The usual case in one frame: a goroutine spawning on its own proc,
     * with a stack credit and a free struct at hand (spawn_g's first
     * steps, which fail on neither). */
    struct rproc *me = tls_proc;
    if (__builtin_expect(me && fn && me->credit > 0 && me->gfree, 1)) {
        me->credit--;
        return spawn_fill(me, me, false, g_alloc(me), fn, arg, __builtin_return_address(0));
    }
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

/* The count of "Counting the live", from a proc or with the procs pinned
 * (rt.foreign_ops, or under idle_lock).  0 once the run has stopped;
 * *outside gets rt.live as read. */
int64_t live_count_read(int64_t *outside)
{
    uint64_t exited = 0, spawned = 0;
    /* acquire: an exit counted here happens before the loads below, and
     * so does its goroutine's spawn, on whatever proc */
    for (unsigned i = 0; i < rt.nprocs; i++)
        exited += load_acquire(&rt.procs[i]->exited);
    int64_t out = load_acquire(&rt.live);
    *outside = out;
    if (out & LIVE_STOPPED)
        return 0;
    for (unsigned i = 0; i < rt.nprocs; i++)
        spawned += load_relaxed(&rt.procs[i]->st.spawned);
    return out + (int64_t)(spawned - exited);
}

int64_t live_count(void)
{
    int64_t out;
    return live_count_read(&out);
}

/* End the run if no goroutine is live ("The end of the run"). */
static void live_stop_if_none(void)
{
    /* (A)/(B): orders the caller's last store to a count before its
     * loads of the others' */
    smp_mb();
    int64_t out;
    if (live_count_read(&out) != 0 || (out & LIVE_STOPPED))
        return;
    /* acq_rel: against a plain thread's spawn (live_inc) */
    if (cas_acq_rel(&rt.live, &out, out | LIVE_STOPPED))
        rt_stop();
}

void live_end_check(struct rproc *p)
{
    p->exits_seen = load_relaxed(&p->exited); /* our own counter */
    live_stop_if_none();
}

/* A spawn off the procs that failed after live_inc: its count goes, and,
 * since a proc's look at the count may have seen it and gone on, the
 * caller looks as a proc would. */
static void live_undo(void)
{
    fetch_sub_acq_rel(&rt.live, 1);
    live_stop_if_none();
}

size_t ringo_count(void)
{
    /* The procs stay while we read them: ours runs us, or, from a plain
     * thread, the run's teardown waits for us (run_enter_quiet: a count
     * readies no goroutine, so deadlock detection stays on). */
    struct rproc *me;
    if (!run_enter_quiet(&me))
        return 0;
    int64_t n = live_count();
    run_exit(me);
    return n > 0 ? (size_t)n : 0;
}
