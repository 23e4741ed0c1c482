/*
 * sched.c — switching between goroutines, and each proc's scheduler loop:
 * running its queue, polling for completions and wakes, spinning and
 * sleeping when there is nothing to run.  (What else makes up the
 * scheduler, and where it lives: scheduler.h.)
 *
 * What happens here.  A goroutine (struct rg) is spawned onto a proc's
 * local run queue without a stack (spawn.c); it gets one from the proc's
 * stack cache the first time it runs (g_start).  Started goroutines never
 * change proc.  A proc runs its queue in FIFO order, switching directly
 * from the goroutine that blocks to the next one; only when the queue is
 * empty does it switch to its scheduler loop (g0, the proc thread's own
 * stack), which submits every SQE of the round and waits for completions
 * in one io_uring_enter, bounded by the nearest timer.
 *
 * Invariants.
 *   - A goroutine is in at most one of: a proc's run queue, a proc's inbox,
 *     a free list; and it is in one only while its park word is CLAIMED
 *     (ready() is called once per wait, by the claim winner).
 *   - p->cur is the goroutine running on p (NULL while g0 runs).
 *   - Only p's thread touches p's run queue, timers, ring, stack cache and
 *     free list; the one exception is the stealable part of the run queue
 *     (p->rq, runq.c "Stealing"), from whose head idle procs take goroutines
 *     that have not started.  Other threads reach p through p->inbox and
 *     p->tasks (lock-free MPSC stacks) and proc_wake() (runq.c).
 *   - Goroutines spawned and not exited are counted per proc (spawn.c
 *     "Counting the live"); the run ends when a proc that has nothing to
 *     run counts none.
 *
 * Proc sleeping/waking.  A proc that runs out of work spins briefly on its
 * inbox (waking a sleeping vCPU costs 23-30 us, so cross-proc hand-offs in
 * quick succession should find it awake), then sleeps in io_uring_enter.
 * The race to close is the lost wake-up: a waker pushes to the inbox just
 * after the proc last looked at it, sees no reason to wake it, and the proc
 * sleeps with work queued.  The handshake (Dekker's, with a full barrier on
 * each side):
 *
 *        proc p (going to sleep)              waker w (other thread)
 *        -----------------------              ----------------------
 *        store p->sleeping = 1                push g on p->inbox (CAS)
 *        smp_mb()            (A) <---------> smp_mb()            (B)
 *        load p->inbox, p->tasks              load p->sleeping
 *        if empty: io_uring_enter(wait)       if 1 and xchg(sleeping,0)==1:
 *                                                 send MSG_RING / eventfd
 *
 * (A) pairs with (B): at least one side sees the other's store, so "p sees
 * an empty inbox AND w sees sleeping == 0" cannot happen.  If w sees 1, its
 * wake makes p's enter return (a CQE arrives on p's ring); the xchg makes
 * sure only one waker pays for the wake.  A wake that arrives after p woke
 * up by itself is a harmless extra CQE (its wake_rec).
 *
 * Parking and waking: park.c.  Cancelling: cancel.c.
 *
 * Rejected.  A shared global run queue (a lock or a contended CAS on every
 * spawn and wake); Go-style work stealing of any runnable goroutine (started
 * goroutines must stay on their proc); switching through g0 on every block
 * (two switches per hand-off instead of one).  Idle procs instead advertise
 * hunger, busy procs donate goroutines that have not started yet at their
 * scheduling points, and idle procs steal such goroutines from the head of
 * a busy proc's queue without waiting for one (runq.c "Stealing").
 */
#include "config.h"

#include "internal.h"
#include "scheduler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sched.h>
#include <unistd.h>

#include "ringo.h"

#if defined(__SANITIZE_ADDRESS__)
#define RINGO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RINGO_ASAN 1
#endif
#endif
#ifdef RINGO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

__thread struct rproc *tls_proc __attribute__((tls_model("initial-exec")));

/* How long an idle proc spins on its inbox before sleeping, at most.  A
 * sleeping vCPU takes 23-30 us to wake, so a proc that receives a steady
 * stream of cross-proc hand-offs should stay awake across short gaps
 * (tests/bench/pingpong with 2 procs).  Go's idle Ps spin for similar
 * reasons.
 *
 * But a spinning proc holds a CPU that the rest of the machine may need:
 * a server whose procs never hand each other work (examples/httpd, one
 * accept loop and its connections per proc) spun for nothing and lost
 * 10-20% of its requests per second to wrk on the same CPUs, and its p99
 * tripled (make bench, shared placement).  So the spin is adaptive, per
 * proc: a spin that ends with work handed over (the inbox or tasks) gives
 * the next one the whole SPIN_NS; one that does not (it timed out, or only
 * completions of the proc's own I/O came, which the sleep would get as
 * well) halves it, down to nothing below SPIN_MIN_NS.  A proc that has
 * stopped spinning spins in full again every SPIN_PROBE_EVERY sleeps, to
 * notice hand-offs that start.  ringo_stats counts spins, the time they
 * took and those that found work. */
#define SPIN_NS 50000
#define SPIN_MIN_NS 2000
#define SPIN_PROBE_EVERY 64


/* ---------------------------------------------------------------------- */
/* Switching */

static __attribute__((noinline)) void reclaim_dead(struct rproc *p)
{
    struct rg *d = p->dead;
    p->dead = NULL;
    stack_put(&p->stacks, g_run(d)->stack);
    d->cold = NULL;
    g_free(p, d);
}

static inline void after_switch(struct rproc *p, void *fake)
{
#ifdef RINGO_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    (void)fake;
#endif
    if (p->dead)
        reclaim_dead(p);
}

static void g_entry(void);
#if FIBER_RESTART
static void g_entry_restarted(void);
#endif
static struct rg_cold *g_cold_init(struct rg *g, struct stack *s);

static void flush_run(struct rproc *p, struct rtask *t)
{
    (void)t;
    /* release: the next asker may post again; our drain happened first */
    store_release(&p->flush_pending, 0);
    stack_cache_drain(&p->stacks);
}

void proc_init_tasks(struct rproc *p)
{
    p->flush_task.run = flush_run;
    p->steal_task.run = steal_run;
    p->spin_budget = SPIN_NS;
    p->steal_on = rt.nprocs > 1;
    p->poll_mask = POLL_EVERY - 1;
}

/* Give g what it needs to run for the first time: a stack, and room in
 * this proc's timer heap for the one timer it may arm (so arming never
 * fails later, in the middle of a park).  False if either cannot be had
 * now.  A stack credit guarantees a free stack exists, but it may sit in
 * another proc's private cache: then ask every proc to flush its cache to
 * the global pool and let the caller retry. */
static bool g_start(struct rproc *p, struct rg *g)
{
    if (p->timer_promised + 1 > p->timers.cap &&
        timer_reserve(&p->timers, p->timer_promised + 1) != 0)
        return false;
    struct stack *s = stack_get(&p->stacks);
    if (!s) {
        for (unsigned i = 0; i < rt.nprocs; i++) {
            struct rproc *q = rt.procs[i];
            if (q != p && xchg_acq_rel(&q->flush_pending, 1) == 0)
                proc_post_task(q, &q->flush_task);
        }
        return false;
    }
    p->timer_promised++;
    fiber_make(&g_cold_init(g, s)->run.ctx, s, g_entry);
    return true;
}

/* Lines 1 and 2 (internal.h) come with the stack: whatever the stack's
 * previous goroutine left there is set anew, for g, which now runs on s. */
static struct rg_cold *g_cold_init(struct rg *g, struct stack *s)
{
    struct rg_cold *c = (struct rg_cold *)(void *)s->gcold;
    c->run.stack = s;
    c->run.g = g;
    c->run.park_seq = load_relaxed(&g->park) >> PARK_SHIFT; /* relaxed: ours; see spawn_g */
    c->run.deadline = RINGO_NEVER;
    c->wait.io_op = NULL;
    c->wait.sudogs = NULL;
    c->wait.nsudogs = 0;
    c->wait.timer.idx = 0;
    g->cold = c;
    g->started = true;
#ifdef RINGO_ASAN
    /* A reused stack still carries the poisoned redzones of frames that
     * were live when its last goroutine exited (ringo_exit unwinds
     * nothing); the new goroutine starts on clean shadow. */
    __asan_unpoison_memory_region(s->lo, (size_t)(stack_top(s) - s->lo));
#endif
    return c;
}

/* Resuming a goroutine.  Switching to a goroutine that waited reads its
 * line 1 (the saved stack pointer), then the stack at that pointer: the
 * registers the switch saved and the frames of the park chain above them
 * (switch_to, park_commit, the I/O call; about 550 bytes), which return
 * one after another, and then its own frames.  A server with a thousand
 * connections on a proc touches these once in a thousand wake-ups, so
 * each is a cache miss, and each load waits for the one before it: in
 * tests/bench/httpd at -c1000 on one proc, the first pop after the switch
 * took 4% of the server's time, and the load of the saved pointer as much.
 *
 * So the lines are fetched ahead, without waiting for them:
 *   - ready() fetches lines 1 and 2 of a goroutine it queues on its own
 *     proc (line 0 it has just written);
 *   - each park and each exit, and each switch of the scheduler loop to a
 *     goroutine, fetches the stack lines of the goroutine queued next
 *     (with stealing on, a goroutine whose timer fired comes first),
 *     from its saved pointer up (its line 1 came with its ready), and
 *     lines 1 and 2 of the one after it again, for a round long enough
 *     that they may have left the cache since its ready;
 *   - and a few stack lines below the saved pointer: the goroutine's next
 *     wait may park deeper than its last one did (a send under
 *     ringo_send_all parks a frame below a receive), and the pushes of
 *     that park into lines a round has pushed out stalled as much as the
 *     pops of a resumption (perf annotate: the call of the switch to the
 *     scheduler loop had two thirds of switch_to's samples, and a
 *     twentieth with these lines fetched);
 *   - a park that switches to the last goroutine queued fetches the
 *     scheduler loop's stack (g0), to which that goroutine will switch
 *     when it waits (the loop's own switch does not: its stack is hot).
 * The work of the goroutine that runs meanwhile hides the fetches.  Only
 * when many of the proc's goroutines wait (resume_cold): 64 I/O
 * operations in flight, or 1024 timers armed (sleepers, waits under a
 * deadline); with few, the lines are in cache, and a park pays two
 * compares.  100k goroutines that sleep 10 ms and exit on one proc
 * (tests/bench/sleepers, round 2) took 101-149 ms before the timers
 * counted and the exits fetched, 71-74 after.  Only at a park, an exit
 * and the scheduler loop's switch: a yield leaves nothing cold behind
 * that a park would not (tests/bench/yield pays nothing for this).
 *
 * Only goroutines that have started have lines 1 and 2 and a stack; only
 * the owner reads them, and an entry that a thief may take (RQ_STEALABLE)
 * is one that has not started, so it is skipped without being read. */
#define RESUME_STACK_LINES 10 /* from the saved stack pointer up */
#define RESUME_BELOW       256 /* bytes below it */

static __attribute__((noinline)) void prefetch_resume_cold(struct rproc *p, bool from_g0)
{
#ifndef RINGO_SWITCH_UCONTEXT
    struct rg *n0 = NULL, *n1 = NULL;
    bool empty;
    if (__builtin_expect(p->steal_on, 0)) {
        /* prio (the goroutines whose timers fired) goes first, and is
         * ours alone.  relaxed: our ring, whose head thieves may move on;
         * a stale head names a goroutine that already ran or was stolen,
         * both harmless for a prefetch, and an entry is read only if it
         * is not stealable (such entries are never stolen).  The list
         * behind the ring is not looked at. */
        uint32_t h = load_relaxed(&p->rq_head), t = load_relaxed(&p->rq_tail);
        empty = h == t && !p->prio && !p->runq_head;
        if (p->prio) {
            n0 = p->prio;
            n1 = n0->next;
        } else if (h != t) {
            uintptr_t e0 = load_relaxed(&p->rq[h % RQ_SIZE]);
            uintptr_t e1 = h + 1 != t ? load_relaxed(&p->rq[(h + 1) % RQ_SIZE]) : RQ_STEALABLE;
            n0 = (e0 & RQ_STEALABLE) ? NULL : (struct rg *)e0;
            n1 = (e1 & RQ_STEALABLE) ? NULL : (struct rg *)e1;
        }
    } else {
        n0 = p->runq_head;
        n1 = n0 ? n0->next : NULL;
        empty = !n0;
    }
    if (empty) {
        /* The goroutine switched to is the last one queued: when it waits
         * it switches to the scheduler loop, whose stack is cold unless
         * the loop itself is what runs now. */
        if (!from_g0)
            prefetch_lines(p->g0.sp, RESUME_STACK_LINES);
        return;
    }
    if (n0 && n0->started)
        prefetch_lines((const char *)g_run(n0)->ctx.sp - RESUME_BELOW, RESUME_STACK_LINES + RESUME_BELOW / 64);
    if (n1 && n1->started)
        prefetch_lines(n1->cold, 2);
#else
    (void)p;
    (void)from_g0;
#endif
}

/* The test inline, the fetches out of line: inlined whole, they kept
 * sched_switch out of park_commit, a call and its saved registers at
 * every park (callgrind, tests/bench/httpd at -c100: 14 instructions a
 * request). */
static inline void prefetch_resume(struct rproc *p, bool from_g0)
{
    if (resume_cold(p))
        prefetch_resume_cold(p, from_g0);
}

/* Switch from the running context (goroutine `from`, or g0 when NULL) to
 * `to` (or g0 when NULL).  `dying`: from never runs again.
 *
 * Inlined into each of its four callers: out of line, every switch paid
 * for the call and for saving and restoring six registers that the
 * context switch saves again, and the tests of `from` and `to` that each
 * caller's constants answer (callgrind, tests/bench/yield: 122 -> 100
 * instructions a switch; tests/bench/httpd at -c100: 1595 -> 1547 a
 * request). */
static inline __attribute__((always_inline)) void switch_to(struct rproc *p, struct rg *from, struct rg *to, bool dying)
{
    if (from && !stack_sp_ok(g_run(from)->stack, current_sp()))
        fatal("goroutine %lld stack overflow", g_id_shown(from));
    if (to && !to->started && !g_start(p, to)) {
        /* Not now: run it later, once other procs have flushed their
         * stack caches (or memory has been freed). */
        runq_push(p, to);
        if (!from)
            return; /* already in the scheduler loop */
        to = NULL;
    }
    /* Counted before p->cur changes: the watchdog's handler, which may
     * interrupt this thread anywhere, takes an unchanged count for proof
     * that p->cur is still the goroutine whose stretch it was asked about
     * (watchdog.c).  The signal fence keeps the compiler from sinking the
     * count below the store; it costs no instruction. */
    stat_add(p->st.switches, 1);
    signal_fence();
    p->cur = to;
    if (to)
        store_relaxed(&to->state, G_RUNNING);
    struct fiber_ctx *fc = from ? &g_run(from)->ctx : &p->g0;
    struct fiber_ctx *tc = to ? &g_run(to)->ctx : &p->g0;
#ifdef RINGO_ASAN
    void *fake = NULL;
    const void *bottom = to ? (const void *)g_run(to)->stack->lo : p->g0_stack_lo;
    size_t size = to ? (size_t)(stack_top(g_run(to)->stack) - g_run(to)->stack->lo) : p->g0_stack_size;
    __sanitizer_start_switch_fiber(dying ? NULL : &fake, bottom, size);
#else
    void *fake = NULL;
    (void)dying;
#endif
#ifdef RINGO_TSAN
    /* Just before the switch, as TSan asks (tsan.h); `to`'s fiber
     * acquires what `from`'s released. */
    __tsan_switch_to_fiber(to ? g_run(to)->stack->tsan_fiber : p->tsan_g0, 0);
#endif
    fiber_switch(fc, tc);
    after_switch(p, fake);
}

static void poll_cheap(struct rproc *p)
{
    tasks_run(p);
    inbox_drain(p);
    proc_timers_run(p);
}

/*
 * Pacing the polls.  A proc whose run queue is empty at a scheduling point
 * polls there (poll_cheap: its inbox, tasks and timers); one that stays
 * busy polls at its periodic polls, every POLL_EVERY scheduling points.
 * That bound is a count, and a timer's lateness is a time: with goroutines
 * that compute for a millisecond between yields, 64 scheduling points are
 * 64 ms, and a 5 ms sleep beside them ended 60 ms late (Go looks at its
 * timers at every schedule).  A clock read at every scheduling point would
 * cost every switch a vDSO call; instead the periodic poll, which reads the
 * coarse clock anyway (the park clock), measures the rate of scheduling
 * points, and sets the interval to the power of two that fits in a
 * millisecond at that rate: every 64 as before for switches under 16 us,
 * down to every scheduling point for slices of a millisecond or more.  A
 * stretch is measured once the coarse clock has moved since its start
 * (every 1 to 10 ms, by CONFIG_HZ), and the next starts there.
 *
 * The rate is of wall time, idle time included (a sleep, a spin): the
 * polls then come about once a millisecond of wall time whatever the
 * proc does meanwhile, which is what a timer needs.  A stretch that a
 * long sleep, or a preemption of the proc's thread, made slow is not
 * repeated by the next: the interval follows the higher of the last two
 * rates, so one such stretch does not make a server's proc poll at every
 * few switches, while a proc whose switches are slow learns it in two.
 *
 * What a paced poll costs: poll_cheap, and the I/O side of a poll
 * (eng_poll: an io_uring_enter or epoll_wait) only while goroutines are
 * queued and there is I/O to see to (paced_io_due: on io_uring, SQEs to
 * submit or completions the kernel has flagged; on epoll, any in flight).
 * Rates of wall time make the interval small on a lightly loaded proc,
 * whose switches are few, and an enter at each paced poll there was one
 * more a park (a socketpair ping-pong with 3 ms between rounds: 4.5 enters
 * a round against 3.05): a goroutine that parks there with nobody queued
 * leaves the proc idle, and its idle poll submits and reaps at once; two
 * readied together (a completion's and a timer's) made one more enter at
 * the first one's park.  So a paced poll's enter also waits for the park
 * clock to have moved since the last submit and reap of a periodic poll
 * or a sleep (io_ms): a tick of the coarse clock, 1 to 10 ms by
 * CONFIG_HZ.  A proc that stays busy with slow switches needs them: a
 * read beside goroutines computing a millisecond between yields was
 * submitted and reaped after 64 of them, and is within a tick now.
 *
 * Left: a stretch with a burst of quick switches keeps the interval at 64
 * for the stretch after it, however slow (the higher of two), so bursts
 * that recur within two stretches hold a sleeper beside slow slices up to
 * 64 of them.  Subtracting the time asleep and spinning from a stretch,
 * instead of taking the higher of two, would measure only busy time.
 */
static void poll_pace(struct rproc *p, unsigned tick)
{
    uint32_t ms = p->clock_ms - p->pace_ms;
    if (!ms)
        return; /* the coarse clock has not moved: too short to tell */
    unsigned per_ms = (tick - p->pace_tick) / ms;
    unsigned rate = per_ms > p->pace_prev ? per_ms : p->pace_prev;
    p->pace_prev = per_ms;
    p->poll_mask = rate >= POLL_EVERY ? POLL_EVERY - 1
                 : rate <= 1          ? 0
                                      : (1u << (31 - __builtin_clz(rate))) - 1;
    p->pace_tick = tick;
    p->pace_ms = p->clock_ms;
}

/* A periodic poll (next_runnable).  Out of line: inlined, its registers
 * made every yield save and restore two more (callgrind, tests/bench/yield:
 * 5 instructions a switch). */
static inline bool own_io_waiting(struct rproc *p);

/* At a paced poll of a proc with goroutines queued ("Pacing the polls"):
 * SQEs to submit, or completions to reap?  On io_uring both are a look at
 * memory; epoll has only the system call to tell. */
static bool paced_io_due(struct rproc *p)
{
    if (rt.engine == RINGO_ENGINE_EPOLL)
        return load_relaxed(&p->inflight) != 0;
    return load_relaxed(&p->unsubmitted) || own_io_waiting(p);
}

static __attribute__((noinline)) void poll_periodic(struct rproc *p, unsigned tick)
{
    proc_clock_coarse(p);
    poll_pace(p, tick);
    poll_cheap(p);
    /* Counted after poll_cheap, with what it took in: goroutines readied
     * from other procs wait in the inbox, and a proc fed only that way
     * has an empty queue before it. */
    size_t queued = runq_count(p);
    store_relaxed(&p->runq_pub, queued); /* for ringo_stats */
    /* The I/O side: every POLL_EVERY, and at a paced poll only while
     * goroutines are queued, once a clock tick after the last
     * ("Pacing the polls"). */
    if (tick % POLL_EVERY == 0 ? load_relaxed(&p->inflight) || load_relaxed(&p->unsubmitted)
                               : queued && p->clock_ms != p->io_ms && paced_io_due(p)) {
        p->io_ms = p->clock_ms;
        eng_poll(p, false, 0);
    }
}

/* next_runnable, for a queue with stealing on (steal) or without; the
 * flag is a constant in each copy, so one proc's scheduling points pay for
 * stealing with a single branch (next_runnable). */
static inline __attribute__((always_inline)) struct rg *next_runnable_t(struct rproc *p, bool steal)
{
    /* A scheduling point, counted for the periodic polls and for the
     * watchdog, which takes a tick that stands still for a goroutine that
     * has not yielded (watchdog.c).  relaxed: one writer, this proc; the
     * monitor needs only an untorn value. */
    unsigned tick = load_relaxed(&p->tick) + 1;
    store_relaxed(&p->tick, tick);
    if ((tick & p->poll_mask) == 0) {
        poll_periodic(p, tick);
    } else if (steal ? runq_empty_steal(p) : !p->runq_head) {
        poll_cheap(p);
    }
    /* relaxed: a hint; a missed donation waits for the next schedule */
    if ((p->fresh || (steal && p->rq_fresh)) && (p->runq_head != p->runq_tail || p->cur) &&
        any_hungry(p))
        donate(p);
    return steal ? runq_pop_steal(p) : runq_pop_list(p);
}

static __attribute__((noinline)) struct rg *next_runnable_steal(struct rproc *p)
{
    return next_runnable_t(p, true);
}

/* Always inline: gcc had made it a function of its own, which every
 * park and exit called (callgrind, tests/bench/httpd at -c100 on one
 * proc: 1475.8 -> 1457.8 instructions a request; tests/bench/pingpong
 * on one proc 211.3 -> 207.5 M in all). */
static inline __attribute__((always_inline)) struct rg *next_runnable(struct rproc *p)
{
    if (__builtin_expect(p->steal_on, 0))
        return next_runnable_steal(p);
    return next_runnable_t(p, false);
}

/* Switch to the next runnable goroutine (or the scheduler loop), leaving the
 * caller as it is (park_commit sets its state first).  Inlined into
 * park_commit, its only caller: every park goes through here. */
static inline __attribute__((always_inline)) void sched_switch(struct rproc *p, struct rg *g)
{
    struct rg *next = next_runnable(p);
    if (next == g) {
        store_relaxed(&g->state, G_RUNNING); /* readied while parking: keep running */
        return;
    }
    if (next)
        prefetch_resume(p, false);
    switch_to(p, g, next, false); /* whoever switches back to g stores G_RUNNING */
}

/* Completions of p's own I/O wait to be reaped: what ends a spin, which
 * watches for work from other procs.  With DEFER_TASKRUN completions stay
 * invisible until an enter runs their task work; the kernel's
 * IORING_SQ_TASKRUN (engine_uring.c asks for it) says some are waiting.
 * Read like liburing reads the flags word (a volatile load): a late sight
 * only means one more spin. */
static inline bool own_io_waiting(struct rproc *p)
{
    if (rt.engine != RINGO_ENGINE_EPOLL && __builtin_expect(p->cq_defer_n != 0, 0))
        return true; /* set aside, not yet dispatched (eng_cq_ready) */
    if (!load_relaxed(&p->inflight))
        return false;
    if (!rt.use_defer_taskrun)
        return eng_cq_ready(p);
    /* Those posted at submission are on the CQ without the flag: an
     * io_uring_submit outside eng_poll (engine_uring.c eng_flush, for a
     * wake; sq_make_room) leaves them there. */
    return (IO_URING_READ_ONCE(*p->ring.sq.kflags) & IORING_SQ_TASKRUN) != 0 ||
           io_uring_cq_ready(&p->ring) != 0;
}

/* A spin (proc_sleep's, or a goroutine's in place) has ended, having
 * found work handed over or not: counted, and the next one's budget set
 * (SPIN_NS): whole after a find, else halved, down to 0 below SPIN_MIN_NS
 * (a probe that found nothing leaves it at 0). */
static void spin_ended(struct rproc *p, bool found)
{
    stat_add(p->st.spins, 1);
    if (found) {
        stat_add(p->st.spins_found, 1);
        p->spin_budget = SPIN_NS;
        p->spin_probe = 0;
    } else {
        p->spin_budget = p->spin_budget / 2 >= SPIN_MIN_NS ? p->spin_budget / 2 : 0;
    }
}

/* Spinning in place.  A goroutine that parks on a channel while its proc
 * has nothing else to do would switch to the scheduler loop, which spins
 * on the inbox (proc_sleep) until the peer on another proc readies it:
 * the peer pushes it onto the inbox, the loop drains the inbox and
 * switches back to it.  So instead the goroutine spins where it is, on its
 * own park word, with PARK_SPIN set in it, and the peer's ready() only
 * writes the result and DONE into that word: a cross-proc hand-off then
 * moves neither the inbox line (twice) nor any of the switches, and the
 * goroutine's line 0 moves only as the claim and the wake.
 *
 *        goroutine g (spinning, proc B)        waker w (proc A, any thread)
 *        ------------------------------        ----------------------------
 *        CAS park: W -> W|SPIN        (1)
 *        loop: load_acquire park      (2)      claim: CAS W|SPIN -> W|SPIN|CLAIMED (3)
 *          DONE: result, go on                 writes the value, w->fired
 *          CLAIMED only: keep watching         ready: sees SPIN in the word
 *          time out / other work:                g->result = r
 *            CAS W|SPIN -> W          (4)        store_release park |= DONE (5)
 *              won: park as usual
 *              lost: a claim came, wait for DONE
 *
 *   - (1) fails only if a claim came first (the word is no longer W):
 *     then that waker queues g as usual, and g parks as usual.
 *   - (3) and (4) race on the word: if (4) wins, w's CAS fails, it claims
 *     W, finds no SPIN, and queues g, which is parking as usual; if (3)
 *     wins, (4) fails and g knows a DONE is coming and must not leave: w
 *     will not queue it.
 *   - (5) pairs with (2): g sees the result, and whatever w wrote for the
 *     wait before, once it sees DONE.  After (5) w touches g no more.
 *
 * The spin is the proc's idle spin moved into the goroutine, with the same
 * budget (SPIN_NS, adaptive: proc_sleep) and the same reasons to stop: its
 * inbox or tasks (other work: it parks as usual and the loop runs it), a
 * stop, completions of the proc's own I/O, the nearest timer (its own
 * deadline among them: it parks as usual, and the timer fires).  So it
 * is taken only when the proc would spin anyway: more than one proc,
 * nothing else runnable, no SQEs waiting to be submitted, not valgrind
 * (one thread at a time), and not the epoll engine with I/O in flight.
 * A spin that runs out tells proc_sleep not to spin again at once
 * (spun_out).  The time is counted with the idle spins (ringo_stats
 * spin_ns, spins, spins_found). */
static bool park_spin_stop(struct rproc *p)
{
    return load_relaxed(&p->inbox) || load_relaxed(&p->tasks) || load_relaxed(&rt.stopping) ||
           own_io_waiting(p);
}

bool gspin_ok(struct rproc *p)
{
    return rt.nprocs > 1 && p->spin_budget > 0 && !rt.valgrind && runq_empty(p) &&
           !load_relaxed(&p->unsubmitted) &&
           !(rt.engine == RINGO_ENGINE_EPOLL && load_relaxed(&p->inflight)) && !park_spin_stop(p);
}

void gspin_begin(struct rproc *p, struct gspin *s, int64_t deadline)
{
    if (!load_relaxed(&p->hungry))
        store_relaxed(&p->hungry, 1); /* relaxed: a hint for donors, as in proc_sleep */
    /* Timed in cpu ticks (internal.h): a clock read once woken would be
     * on the hand-off's path, a fifth of it (tests/bench/pingpong). */
    s->t0 = cpu_ticks();
    s->until = now_ns() + p->spin_budget;
    int64_t next = timer_next(&p->timers);
    if (next < s->until)
        s->until = next;
    if (deadline < s->until)
        s->until = deadline;
    s->looks = 0;
    s->timed_out = false;
}

/* The clock is read every 64th look: a look is a few ns. */
static inline bool gspin_time_up(struct gspin *s)
{
    if ((++s->looks & 63) == 0 && now_ns() >= s->until)
        s->timed_out = true;
    return s->timed_out;
}

bool gspin_stop(struct rproc *p, struct gspin *s)
{
    return park_spin_stop(p) || gspin_time_up(s);
}

void gspin_wait_peer(struct gspin *s)
{
    if (s->timed_out)
        sched_yield();
    else
        gspin_time_up(s);
}

void gspin_end(struct rproc *p, struct gspin *s, bool woken, bool other)
{
    stat_add(p->st.spin_ticks, cpu_ticks() - s->t0);
    spin_ended(p, woken || other);
    if (!woken && !other)
        p->spun_out = true;
    /* Work came (the wait's end, or something for the loop): not hungry
     * now.  A spin that ran out leaves the flag to proc_sleep.  As
     * proc_sleep; a donor may clear it too. */
    if ((woken || other) && load_relaxed(&p->hungry))
        store_relaxed(&p->hungry, 0);
}

/* True if g was readied while it spun (its result is in g->result);
 * false if it must park as usual.  The deadline, if any, is armed already
 * (park_commit): the nearest timer bounds the spin. */
static __attribute__((noinline)) bool park_spin(struct rproc *p, struct rg *g, uint64_t token, int flags)
{
    uint64_t w = (token << PARK_SHIFT) | ((flags & PARK_INTERRUPTIBLE) ? PARK_INTR : 0);
    uint64_t spun = w | PARK_SPIN;
    if (!gspin_ok(p))
        return false;
    /* relaxed (1): the flag publishes nothing of ours; what the waiter
     * records hold was published when they were queued */
    if (!cas_relaxed(&g->park, &w, spun))
        return false;
    struct gspin s;
    gspin_begin(p, &s, RINGO_NEVER);
    bool woken = false, other = false;
    for (;;) {
        cpu_relax();
        /* acquire (2): pairs with ready_spun's release store (5) */
        uint64_t cur = load_acquire(&g->park);
        if (cur & PARK_DONE) {
            woken = true;
            break;
        }
        if (cur & PARK_CLAIMED) {
            /* The winner is between its claim and its ready(): short,
             * unless its thread lost its CPU. */
            gspin_wait_peer(&s);
            continue;
        }
        if (!gspin_stop(p, &s))
            continue;
        uint64_t exp = spun;
        /* relaxed (4): the race with a claim is decided by the word alone */
        if (cas_relaxed(&g->park, &exp, w)) {
            other = !s.timed_out;
            break;
        }
        /* A claim came: wait for its DONE. */
    }
    gspin_end(p, &s, woken, other);
    return woken;
}

/* The end of park.c's protocol: here, so that the switch away is inlined
 * into it (a park is the hot path of every hand-off). */
int park_commit(struct rg *g, uint64_t token, int flags)
{
    struct rproc *p = tls_proc;
    /* The goroutine's timer stays armed when its wait ends (below): the
     * next wait with a deadline moves it (timer_rearm: no sift when it
     * moves later, timer.c "Moved later"), and meanwhile a firing finds
     * its token stale and does nothing.  A wait without one disarms it:
     * no goroutine parked without a deadline keeps a timer, so a proc
     * whose goroutines all wait so has none (deadlock detection). */
    struct rg_cold *c = g->cold;
    if (c->run.wake_at != RINGO_NEVER) {
        c->run.timer_token = token;
        c->wait.timer.ops = (flags & PARK_INTERRUPTIBLE) ? &g_timer_ops : &op_deadline_ops;
        if (timer_rearm(&p->timers, &c->wait.timer, c->run.wake_at) != 0)
            bug("timer heap full despite the reservation made at start");
    } else if (__builtin_expect(c->wait.timer.idx != 0, 0)) {
        timer_disarm(&p->timers, &c->wait.timer);
    }
    /* seq_cst load: the load half of the park/cancel handshake. */
    if ((flags & PARK_INTERRUPTIBLE) &&
        load_seqcst(&g->cancel_id) == load_relaxed(&g->id) && claim(g, token)) {
        g->result = -ECANCELED; /* never left G_RUNNING */
        return g->result;
    }
    /* Woken while it spun, g never stopped running: its state (on line 0,
     * which the waker has just written) stays as it was. */
    if ((flags & PARK_SPIN_OK) && rt.nprocs > 1 && park_spin(p, g, token, flags))
        return g->result;
    store_relaxed(&g->state, G_WAITING);
    sched_switch(p, g);
    return g->result;
}

/* ---------------------------------------------------------------------- */
/* Goroutine entry and exit */

static _Noreturn void g_exit(struct rproc *p, struct rg *g)
{
    if (g_wait(g)->timer.idx)
        timer_disarm(&p->timers, &g_wait(g)->timer);
    p->timer_promised--;
    store_relaxed(&g->state, G_FREE);
    /* release: cancel lookups that still see the old id saw a live
     * goroutine.  The struct keeps its next id, negated (gtable.c). */
    store_release(&g->id, g_id_retired(load_relaxed(&g->id)));
    credit_give(p);
    /* release: counted, the goroutine's doings are visible to whoever
     * counts it (spawn.c "Counting the live").  The run's end is looked
     * for once p has nothing left to run (proc_sleep). */
    store_release(&p->exited, load_relaxed(&p->exited) + 1);
    struct rg *next = next_runnable(p);
#if FIBER_RESTART
    /* The next goroutine has not run yet: it takes over g's stack where it
     * stands, and starts from its top without a switch.  That spares a
     * stack back to the cache and out again, a new context, the switch
     * into it and the reclaim after it: the spawn and exit of a short
     * goroutine (a WaitGroup fan-out) cost a fifth fewer instructions.
     * g's own frames, this one among them, are abandoned; its struct goes
     * back now rather than after a switch (reclaim_dead), and the timer
     * room g gave back above is next's. */
    if (next && !next->started) {
        struct stack *s = g_run(g)->stack;
        if (!stack_sp_ok(s, current_sp()))
            fatal("goroutine %lld stack overflow", g_id_shown(g));
        g->cold = NULL;
        g_free(p, g);
        p->timer_promised++;
        g_cold_init(next, s);
        /* As switch_to: counted before p->cur changes (watchdog.c). */
        stat_add(p->st.switches, 1);
        signal_fence();
        p->cur = next;
        store_relaxed(&next->state, G_RUNNING);
        fiber_restart(s, g_entry_restarted);
    }
#endif
    p->dead = g;
    if (next)
        prefetch_resume(p, false);
    switch_to(p, g, next, true);
    bug("dead goroutine resumed");
}

/* Run p->cur, the goroutine this fiber was started for, to its end. */
static inline _Noreturn void g_run_fn(struct rproc *p)
{
    struct rg *g = p->cur;
    g->fn(g_slot(load_relaxed(&g->id))->arg);
    /* In a child forked during the run this thread is no proc's
     * (runtime.c "A fork during a run"): the scheduler would run copies
     * of the parent's goroutines. */
    if (__builtin_expect(tls_proc != p, 0))
        fatal("a goroutine returned in a child process forked during the run "
              "(such a child should exec or _exit)");
    g_exit(p, g);
}

static void g_entry(void)
{
    struct rproc *p = tls_proc;
    after_switch(p, NULL);
    g_run_fn(p);
}

#if FIBER_RESTART
/* g_exit's restart: no switch came before (so no sanitizer's switch to
 * finish, and no dead goroutine to reclaim). */
static void g_entry_restarted(void)
{
    g_run_fn(tls_proc);
}
#endif

void ringo_yield(void)
{
    struct rproc *p = tls_proc;
    struct rg *g = p ? p->cur : NULL;
    if (!g) {
        sched_yield();
        return;
    }
    store_relaxed(&g->state, G_RUNNABLE);
    struct rg *next;
    if (__builtin_expect(p->steal_on, 0)) { /* one branch for both, as next_runnable */
        runq_push_steal(p, g);
        next = next_runnable_steal(p);
    } else {
        runq_push_list_ran(p, g);
        next = next_runnable_t(p, false);
    }
    if (next != g)
        switch_to(p, g, next, false); /* whoever switches back sets G_RUNNING */
    else
        store_relaxed(&g->state, G_RUNNING);
}

_Noreturn void ringo_exit(void)
{
    struct rproc *p = tls_proc;
    struct rg *g = p ? p->cur : NULL;
    if (!g)
        fatal("ringo_exit called outside a goroutine");
    g_exit(p, g);
}

/* ---------------------------------------------------------------------- */
/* The scheduler loop */

/* Submit what the round queued and reap what has completed, without
 * waiting; whether that made anything runnable. */
static bool poll_io(struct rproc *p)
{
    if (!load_relaxed(&p->inflight) && !load_relaxed(&p->unsubmitted))
        return false;
    eng_poll(p, false, 0);
    return !runq_empty(p);
}

/* Nothing to run: wait for work.  One system call when the proc does not
 * spin: the blocking wait submits the round's SQEs, and returns at once
 * when completions are already there (a busy server's usual case), so a
 * non-blocking reap before it would be a second io_uring_enter (or
 * epoll_wait) per round for nothing.  A proc that spins first submits and
 * reaps without waiting (poll_io), since the spin watches for work from
 * other procs, not for its own completions. */
static void proc_sleep(struct rproc *p)
{
    hooks_proc_idle(p); /* for example: no multishot accept for nobody (accept.c) */

    /* Spin briefly when other procs may hand us work (adaptive, see
     * SPIN_NS), but not past the nearest timer (a sleep, or the deadline of
     * an operation in flight).  Not on valgrind, which runs one thread at a
     * time: the spin would only hold back the procs that could hand us
     * work (engine_uring.c "Valgrind"); we stay hungry while asleep, and a donation
     * wakes us. */
    if (rt.nprocs > 1 && !load_relaxed(&p->hungry))
        store_relaxed(&p->hungry, 1); /* relaxed: a hint for donors; see any_hungry */
    int64_t budget = p->spin_budget;
    if (budget == 0 && ++p->spin_probe % SPIN_PROBE_EVERY == 0)
        budget = SPIN_NS;
    if (p->spun_out) { /* a goroutine just spun in place for nothing */
        p->spun_out = false;
        budget = 0;
    }
    /* Nor on the epoll engine with I/O in flight: readiness cannot be
     * seen without a system call, and the spin would only delay it. */
    bool blind = rt.engine == RINGO_ENGINE_EPOLL && load_relaxed(&p->inflight);
    if (rt.nprocs > 1 && budget > 0 && !rt.valgrind && !blind) {
        if (poll_io(p))
            goto unhungry;
        int64_t start = now_ns();
        int64_t until = start + budget, next = timer_next(&p->timers);
        if (next < until)
            until = next;
        bool found = false;
        for (unsigned i = 0; start < until; i++) {
            /* The line of inbox and tasks, fetched to own: a push found
             * here is taken (inbox_drain's exchange) without fetching the
             * line again (atomic.h prefetch_own; runq.c "Lines of a
             * hand-off").  While nothing is pushed the line stays here and
             * the spin makes no traffic. */
            prefetch_own(&p->inbox);
            if (load_relaxed(&p->inbox) || load_relaxed(&p->tasks)) {
                found = true;
                break;
            }
            if (load_relaxed(&rt.stopping) || own_io_waiting(p))
                break;
            cpu_relax();
            if ((i & 63) == 63 && now_ns() >= until)
                break;
        }
        int64_t end = now_ns();
        stat_add(p->st.spin_ns, (uint64_t)(end - start));
        spin_ended(p, found);
        if (found) {
            proc_clock_set(p, end); /* "The park clock", from the read just made */
            goto clocked;
        }
        if (load_relaxed(&rt.stopping) || own_io_waiting(p))
            goto unhungry;
    }

    /* Goroutines exited here since the last look: was it the last one?
     * (spawn.c "The end of the run".)  Not before the spin, which would
     * make a proc that runs out of stolen goroutines, one after another,
     * read the spawner's counters as often. */
    if (p->exits_seen != load_relaxed(&p->exited)) {
        live_end_check(p);
        if (load_relaxed(&rt.stopping))
            goto unhungry;
    }

    /* Stacks that went back to the pool unshed (fiber.c "Shedding"): shed
     * now that there is nothing to run, a batch at a time.  What the round
     * queued goes to the kernel first, and what completed runs first; and
     * before each batch, a look for work (the inbox, tasks, our own
     * completions, a timer come due): the next proc_sleep, after it, goes
     * on with the batches.  After the end-of-run check: a run that is over
     * leaves its stacks to fiber_fini. */
    if (stack_pool_unshed()) {
        if (poll_io(p))
            goto unhungry;
        while (stack_pool_unshed() && !load_relaxed(&rt.stopping)) {
            if (load_relaxed(&p->inbox) || load_relaxed(&p->tasks) || own_io_waiting(p) ||
                timer_next(&p->timers) <= now_ns())
                goto unhungry;
            /* On epoll a descriptor that became ready shows only to
             * epoll_wait: one that does not wait, per batch. */
            if (rt.engine == RINGO_ENGINE_EPOLL && poll_io(p))
                goto unhungry;
            if (!stack_pool_shed(&p->stacks))
                break;
        }
    }

    /* With no goroutine I/O in flight the proc may be about to count as
     * idle for deadlock detection, which must not miss what completed
     * unseen (a futex wait's completion in the kernel's deferred task
     * work, or one completed at submission, perhaps into the CQ's
     * overflow backlog: engine_uring.c next_cqe): reap first, as the spin
     * does.  With I/O in flight the blocking wait below does it. */
    if (load_relaxed(&p->inflight) == load_relaxed(&p->futex_waits) && poll_io(p))
        goto unhungry;
    if (load_relaxed(&p->runq_pub))
        store_relaxed(&p->runq_pub, 0); /* for ringo_stats: nothing to run */
    store_relaxed(&p->sleeping, 1);
    /* (A): orders the store of sleeping before the loads of inbox/tasks;
     * pairs with (B) in proc_wake. */
    smp_mb();
    if (load_relaxed(&p->inbox) || load_relaxed(&p->tasks) || load_relaxed(&rt.stopping)) {
        store_relaxed(&p->sleeping, 0);
        goto unhungry;
    }
    /* A last look at the other procs' rings.  proc_main looked before this
     * proc was hungry, and a goroutine a spawner pushed since, seeing the
     * flag still clear, was sent to nobody (steal_wake): it waited for
     * its spawner's next scheduling point, however long the spawner
     * computed.  (A) orders the store of hungry, made at the top, before
     * this look's loads: a push that was visible before the flag was is
     * seen here, and a spawner that pushes later sees the flag and posts
     * the steal task, which the check above or the wake of the sleep
     * below takes.  The spawner has no fence (steal_wake says what that
     * leaves: its store buffer's drain). */
    if (p->steal_on) {
        struct rg *g = steal(p);
        if (g) {
            store_relaxed(&p->sleeping, 0);
            runq_push(p, g);
            goto unhungry;
        }
    }
    /* Futex waits do not keep a proc busy (futex.c "Deadlock detection"),
     * but one completed at submission (-EAGAIN) may sit unreaped. */
    bool idle = load_relaxed(&p->inflight) == load_relaxed(&p->futex_waits) &&
                !p->timers.n &&
                !load_relaxed(&p->unsubmitted) && !eng_cq_ready(p);
    if (idle) {
        pthread_mutex_lock(&rt.idle_lock);
        p->idle = true;
        rt.idle_procs++;
        rt_check_deadlock(p);
        pthread_mutex_unlock(&rt.idle_lock);
    }
    /* Signals raised on this thread (signal.c): looked for at once when
     * nothing but a timer could end the sleep. */
    signal_proc_look(load_relaxed(&p->inflight) == load_relaxed(&p->futex_waits));
    /* The time asleep, on the coarse clock: no TSC read on the way in or
     * out of a sleep that a busy server makes every round; one sleep's
     * figure is off by up to a tick, the sum over many is not (a sleep
     * crosses a tick boundary as often as its length says).  The reading
     * after it is the park clock's too. */
    if (!load_relaxed(&rt.stopping)) {
        int64_t slept = now_coarse();
        eng_poll(p, true, timer_next(&p->timers));
        int64_t woke = now_coarse();
        stat_add(p->st.idle_ns, (uint64_t)(woke - slept));
        proc_clock_set(p, woke);
        p->io_ms = p->clock_ms;
    } else {
        proc_clock_coarse(p);
    }
    store_relaxed(&p->sleeping, 0);
    if (idle) {
        pthread_mutex_lock(&rt.idle_lock);
        p->idle = false;
        rt.idle_procs--;
        pthread_mutex_unlock(&rt.idle_lock);
    }
    goto clocked;
unhungry:
    proc_clock_coarse(p); /* "The park clock": after a spin */
clocked:
    if (load_relaxed(&p->hungry))
        store_relaxed(&p->hungry, 0); /* a donor may clear it too; both write 0 */
}

_Atomic(fd_seam_fn *) idle_seam;

void proc_main(struct rproc *p)
{
    p->cur = NULL;
    poll_io(p); /* what setup queued (the wake poll) goes before any goroutine runs */
    for (;;) {
        poll_cheap(p);
        struct rg *g = runq_pop(p);
        if (!g && p->steal_on) {
            g = steal(p);
            fd_seam_fn *seam = load_acquire(&idle_seam);
            if (__builtin_expect(seam != NULL, 0) && !g)
                seam(p->idx);
        }
        if (g) {
            /* After a deadlock report the goroutines are discarded, and
             * none may run again, whatever a plain thread readied since
             * the check (every proc was idle then: in this loop, so a
             * goroutine can start only from here).  relaxed: stored under
             * idle_lock, which this proc has taken since to leave idle. */
            if (__builtin_expect(load_relaxed(&rt.stopping) == 2, 0))
                break;
            prefetch_resume(p, true);
            switch_to(p, NULL, g, false);
            continue;
        }
        if (load_acquire(&rt.stopping)) {
            /* What completed meanwhile still runs, as it would have
             * before the stop (the run's end waits for the rest). */
            if (poll_io(p))
                continue;
            break;
        }
        proc_sleep(p);
    }
}

