/*
 * scheduler.h — what the scheduler's files share, and nothing else includes.
 *
 * The scheduler is spread over files named after what they hold:
 *   sched.c   switching between goroutines (and park_commit, which
 *             switches away), the scheduler loop, sleeping and waking
 *             procs;
 *   runq.c    run queues, inboxes and tasks, stealing and donation;
 *   park.c    the park/claim/ready protocol (internal.h states it) and the
 *             timers that end waits;
 *   spawn.c   spawning, and the public calls about goroutines;
 *   cancel.c  ringo_cancel;
 *   gtable.c  the goroutine table, free lists of goroutine structs, stack
 *             credit.
 * What the hot paths use on every switch, spawn or exit (run-queue push
 * and pop, the inbox push, a goroutine struct and a stack credit from the
 * proc's own supply) is inline here, so the split costs no call there
 * (tests/bench yield, pingpong and spawn run the same instructions).
 */
#ifndef RINGO_SCHEDULER_H
#define RINGO_SCHEDULER_H

#include "internal.h"

/* gtable.c: the goroutine table, whose slots ids encode (gtable.c
 * "Goroutine table"), the free lists ("Free goroutine structs") and the
 * stack credit ("Stack credit").  The common cases, on every spawn and
 * exit, are inline here. */
/* SLOT_BITS: internal.h, beside struct rg's id. */
#define GCHUNK 63  /* goroutine structs per chunk (gtable.c "Goroutine chunks") */
#define GFREE_MAX (4 * GCHUNK)
/* Stack credits a proc takes from (and gives back to) the global pool at a
 * time. */
#define CREDIT_BATCH 64

struct rg *g_alloc_slow(struct rproc *p);
void g_free_spill(struct rproc *p);
int credit_take_slow(struct rproc *p);
void credit_give_spill(struct rproc *p);

/* A goroutine struct, from p's free list (p NULL: a plain thread's, from
 * the global one); NULL when out of memory. */
static inline struct rg *g_alloc(struct rproc *p)
{
    struct rg *g;
    if (p && (g = p->gfree)) {
        p->gfree = g->next;
        p->ngfree--;
        return g;
    }
    return g_alloc_slow(p);
}

/* Back on the free list of the proc g exited on. */
static inline void g_free(struct rproc *p, struct rg *g)
{
    g->next = p->gfree;
    p->gfree = g;
    if (++p->ngfree > GFREE_MAX)
        g_free_spill(p);
}

/* Slot records (gtable.c). */
struct gslot {
    void *arg;                  /* the goroutine's argument, until it starts */
    _Atomic(void *) creator;    /* return address of the ringo_go call (NULL: ringo_run's main goroutine) */
};
extern struct gslot *gslots;

static inline struct gslot *g_slot(int64_t id)
{
    return &gslots[(uint64_t)(id - 1) & ((1u << SLOT_BITS) - 1)];
}

/* Give g, just taken from a free list, its next incarnation: its id (the
 * caller publishes it with release once g is set up), which the struct
 * kept negated while free (struct rg.id), its argument and its creator. */
static inline int64_t g_incarnate(struct rg *g, void *arg, void *creator)
{
    int64_t id = -load_relaxed(&g->id); /* relaxed: the struct is this thread's now */
    struct gslot *s = g_slot(id);
    s->arg = arg;
    store_relaxed(&s->creator, creator); /* relaxed: see gtable.c "Slot records" */
    return id;
}

/* What a goroutine's struct keeps in its id field once the goroutine with
 * this id has exited: its next incarnation's id (same slot, one more
 * generation; gtable.c "Goroutine table"), negated. */
static inline int64_t g_id_retired(int64_t id)
{
    return -(id + ((int64_t)1 << SLOT_BITS));
}

/* One stack credit for a spawn: 0, or -ENOMEM. */
static inline int credit_take(struct rproc *p)
{
    if (p && p->credit > 0) {
        p->credit--;
        return 0;
    }
    return credit_take_slow(p);
}

static inline void credit_give(struct rproc *p)
{
    if (++p->credit > 4 * CREDIT_BATCH)
        credit_give_spill(p);
}

/* park.c: the timers that end a wait (park_commit arms them) */
extern const struct rtimer_ops g_timer_ops, op_deadline_ops;

/* runq.c */
void inbox_drain_all(struct rproc *p);
void tasks_run_all(struct rproc *p);
void donate(struct rproc *p);
void deal(struct rproc *p);
struct rg *steal(struct rproc *p);
void steal_wake(struct rproc *p);
void steal_run(struct rproc *p, struct rtask *t);

/* Fetching a goroutine's lines ahead of its resumption (sched.c
 * "Resuming a goroutine"): worth it when this many of the proc's
 * operations are in flight, each a goroutine whose lines a round of the
 * others may have pushed out of the cache; or when this many timers are
 * armed, each a goroutine that sleeps or waits under a deadline (a few
 * KiB of lines each: a thousand are more than the L2 holds). */
#define RESUME_COLD_INFLIGHT 64
#define RESUME_COLD_TIMERS   1024

static inline bool resume_cold(struct rproc *p)
{
    return load_relaxed(&p->inflight) >= RESUME_COLD_INFLIGHT || /* relaxed: our own count */
           p->timers.n >= RESUME_COLD_TIMERS;
}

/* n lines from a, fetched without waiting for them (a hint: never faults). */
static inline void prefetch_lines(const void *a, int n)
{
    for (int i = 0; i < n; i++)
        __builtin_prefetch((const char *)a + 64 * i, 0, 3);
}

/* Run queues (runq.c "Stealing" for the ring and its handshakes). */

/* rq_fresh went from 0 to more, or back to 0: tell thieves (rq_stealable).
 * relaxed: a hint that only saves a thief the look at the indexes; a
 * thief that reads it stale looks when it need not, or misses goroutines
 * just pushed, as it would had it looked a moment earlier (runq.c
 * "Stealing"). */
static inline void rq_fresh_flip(struct rproc *p, int on)
{
    store_relaxed(&p->rq_stealable, on);
}

/* Push onto p's ring; false if it is full.  Owner only. */
static inline bool rq_push(struct rproc *p, struct rg *g)
{
    /* relaxed: only this thread stores rq_tail */
    uint32_t t = load_relaxed(&p->rq_tail);
    /* acquire (1): pairs with the consumers' CAS (3)/(3'); see "Stealing" */
    uint32_t h = load_acquire(&p->rq_head);
    if (t - h >= RQ_SIZE)
        return false;
    uintptr_t e = (uintptr_t)g | ((!g->started && !g->bound) ? RQ_STEALABLE : 0);
    if ((e & RQ_STEALABLE) && p->rq_fresh++ == 0)
        rq_fresh_flip(p, 1); /* before the release (2) below, with the entry */
    /* relaxed: published by the release store of the tail below */
    store_relaxed(&p->rq[t % RQ_SIZE], e);
    /* release (2): publishes the entry and the goroutine to thieves */
    store_release(&p->rq_tail, t + 1);
    return true;
}

/* Take the oldest entry of p's ring, or NULL.  Owner only. */
static inline struct rg *rq_pop(struct rproc *p)
{
    /* acquire: as (1), pairs with a thief's CAS (3') */
    uint32_t h = load_acquire(&p->rq_head);
    for (;;) {
        if (h == load_relaxed(&p->rq_tail)) { /* relaxed: our own store */
            /* Empty: whatever thieves took, nothing unstarted is left. */
            if (__builtin_expect(p->rq_fresh != 0, 0)) {
                p->rq_fresh = 0;
                rq_fresh_flip(p, 0);
            }
            return NULL;
        }
        /* relaxed: our own store; the CAS decides whether it is ours */
        uintptr_t e = load_relaxed(&p->rq[h % RQ_SIZE]);
        /* acq_rel (3): the race with thieves for the head; on failure h
         * is the new head, loaded with acquire */
        if (cas_acq_rel(&p->rq_head, &h, h + 1)) {
            if ((e & RQ_STEALABLE) && p->rq_fresh && --p->rq_fresh == 0)
                rq_fresh_flip(p, 0);
            return (struct rg *)(e & ~RQ_STEALABLE);
        }
    }
}

static inline uint32_t rq_len(struct rproc *p)
{
    /* acquire/relaxed: as in rq_pop; thieves only ever shrink it */
    return load_relaxed(&p->rq_tail) - load_acquire(&p->rq_head);
}

/* runq_push_list for a goroutine that has run (a yield): never fresh. */
static inline void runq_push_list_ran(struct rproc *p, struct rg *g)
{
    g->next = NULL;
    if (p->runq_tail)
        p->runq_tail->next = g;
    else
        p->runq_head = g;
    p->runq_tail = g;
    p->runq_len++;
}

static inline void runq_push_list(struct rproc *p, struct rg *g)
{
    if (!g->started && !g->bound)
        p->fresh++;
    runq_push_list_ran(p, g);
}

static inline struct rg *runq_pop_list(struct rproc *p)
{
    struct rg *g = p->runq_head;
    if (g) {
        p->runq_head = g->next;
        if (!p->runq_head)
            p->runq_tail = NULL;
        p->runq_len--;
        if (!g->started && !g->bound)
            p->fresh--;
    }
    return g;
}

/* runq_push and runq_pop with stealing on: the ring, the list behind it,
 * prio (runq.c "Stealing").  Apart, so that one proc's queue costs one
 * predictable branch more than it always did (tests/bench/yield). */
void runq_push_steal(struct rproc *p, struct rg *g);
void rq_refill(struct rproc *p);

static inline struct rg *runq_pop_steal(struct rproc *p)
{
    struct rg *g = p->prio;
    if (g) {
        p->prio = g->next;
        p->runq_len--;
        return g;
    }
    if ((g = rq_pop(p)))
        return g;
    /* The ring is empty: the list behind it is next. */
    g = runq_pop_list(p);
    if (g)
        rq_refill(p);
    return g;
}

static inline void runq_push(struct rproc *p, struct rg *g)
{
    if (__builtin_expect(p->steal_on, 0))
        runq_push_steal(p, g);
    else
        runq_push_list(p, g);
}

static inline struct rg *runq_pop(struct rproc *p)
{
    if (__builtin_expect(p->steal_on, 0))
        return runq_pop_steal(p);
    return runq_pop_list(p);
}

static inline bool runq_empty_steal(struct rproc *p)
{
    return !p->runq_head && !p->prio && rq_len(p) == 0;
}

static inline bool runq_empty(struct rproc *p)
{
    if (__builtin_expect(p->steal_on, 0))
        return runq_empty_steal(p);
    return !p->runq_head;
}

/* Push a chain first..last (linked by ->next) onto p's inbox. */
static inline void inbox_push_chain(struct rproc *p, struct rg *first, struct rg *last)
{
    /* The first CAS expects an empty inbox, as it mostly is, rather than
     * loading the head first: the owner polls this line while it spins,
     * so a load would fetch it shared and the CAS fetch it again to own
     * it (runq.c "Lines of a hand-off").  A failed CAS returns the head. */
    struct rg *head = NULL;
    do {
        last->next = head;
        /* release: publishes the goroutines' fields (result, state) to the
         * owner's acquire xchg in inbox_drain; relaxed on failure: only
         * the head is wanted then */
    } while (!atomic_compare_exchange_weak_explicit(&p->inbox, &head, first,
                                                    memory_order_release,
                                                    memory_order_relaxed));
}

/* Append g to the chain [*first, *last] that a donation hands over. */
static inline void chain_append(struct rg **first, struct rg **last, struct rg *g)
{
    g->next = NULL;
    if (*last)
        (*last)->next = g;
    else
        *first = g;
    *last = g;
}

/* Is another proc asking for work?  Only asked by a proc that has
 * unstarted goroutines to give, so the scan of the (few) procs' flags is
 * off the common path.  Per-proc flags rather than a global counter: a
 * counter was two contended read-modify-writes per idle spin, paid on every
 * cross-proc hand-off (tests/bench/pingpong with 2 procs). */
static inline bool any_hungry(struct rproc *p)
{
    for (unsigned i = 0; i < rt.nprocs; i++)
        if (rt.procs[i] != p && load_relaxed(&rt.procs[i]->hungry))
            return true;
    return false;
}

/* Move the inbox to the run queue, oldest first.  False if it was empty. */
static inline bool inbox_drain(struct rproc *p)
{
    if (!load_relaxed(&p->inbox)) /* relaxed peek: a miss is caught by the next poll or the sleep handshake */
        return false;
    inbox_drain_all(p);
    return true;
}

/* Run the tasks other threads posted to p. */
static inline void tasks_run(struct rproc *p)
{
    if (!load_relaxed(&p->tasks)) /* relaxed peek, as in inbox_drain */
        return;
    tasks_run_all(p);
}

#endif
