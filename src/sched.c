/*
 * sched.c — goroutines, run queues, parking and waking, and each proc's
 * scheduler loop.
 *
 * What lives here.  A goroutine (struct rg) is spawned onto a proc's local
 * run queue without a stack; it gets one from the proc's stack cache the
 * first time it runs, so spawning a million goroutines that each run and exit
 * reuses one hot stack (tests/bench/spawn).  Started goroutines never change
 * proc.  A proc runs its queue in FIFO order, switching directly from the
 * goroutine that blocks to the next one; only when the queue is empty does
 * it switch to its scheduler loop (g0, the proc thread's own stack), which
 * submits every SQE of the round and waits for completions in one
 * io_uring_enter, bounded by the nearest timer.
 *
 * Invariants.
 *   - A goroutine is in at most one of: a proc's run queue, a proc's inbox,
 *     a free list; and it is in one only while its park word is CLAIMED
 *     (ready() is called once per wait, by the claim winner).
 *   - p->cur is the goroutine running on p (NULL while g0 runs).
 *   - Only p's thread touches p's run queue, timers, ring, stack cache and
 *     free list; the one exception is the stealable part of the run queue
 *     (p->rq, see "Stealing"), from whose head idle procs take goroutines
 *     that have not started.  Other threads reach p through p->inbox and
 *     p->tasks (lock-free MPSC stacks) and proc_wake().
 *   - rt.live counts goroutines that have been spawned and not exited.
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
 * Parking.  See internal.h.  Cancellation adds a second handshake: ringo_cancel
 * stores cancel_id then loads the park word (both seq_cst); park_prepare
 * stores the park word and issues a full barrier, then park_commit (or
 * io_wait) loads cancel_id; so either the canceller sees the goroutine
 * parked (and asks its proc to interrupt it) or the goroutine sees itself
 * cancelled before it switches away.
 *
 * Rejected.  A shared global run queue (a lock or a contended CAS on every
 * spawn and wake); Go-style work stealing of any runnable goroutine (started
 * goroutines must stay on their proc); switching through g0 on every block
 * (two switches per hand-off instead of one).  Idle procs instead advertise
 * hunger, busy procs donate goroutines that have not started yet at their
 * scheduling points, and idle procs steal such goroutines from the head of
 * a busy proc's queue without waiting for one ("Stealing").
 */
#include "config.h"

#include "internal.h"

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

/* Every POLL_EVERY switches a busy proc also reaps completions and its
 * inbox, so I/O and cross-proc wakes are not starved by goroutines that
 * keep yielding (Go checks its global queue every 61 ticks for the same
 * reason).  Lower costs more get_events system calls under load. */
#define POLL_EVERY 64

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

/* Goroutines a busy proc donates to a hungry one at most per donation. */
#define DONATE_MAX 64

/* Goroutines an idle proc steals at most at a time (half the victim's
 * ring, up to this). */
#define STEAL_MAX 64

/* Stack credits a proc takes from (and gives back to) the global pool at a
 * time; see "Stack credit" below. */
#define CREDIT_BATCH 64

/* ---------------------------------------------------------------------- */
/* Goroutine table: id -> struct rg.
 *
 * ringo_cancel(id) must find a goroutine from any thread without a lock on
 * the spawn path.  Goroutine structs are never freed during a run, only
 * recycled, and each has a permanent slot in gtab.  An id encodes the slot
 * and the struct's incarnation: id = (gen << SLOT_BITS | slot) + 1, so the
 * first 16M goroutines have small ids and a recycled struct never repeats
 * an id.  A lookup reads gtab[slot] and compares g->id (acquire) with the id.
 */
#define SLOT_BITS 24
#define SLOT_MAX (1u << SLOT_BITS)
#define GCHUNK 64

static _Atomic(struct rg *) *gtab;       /* mmap'd, SLOT_MAX entries */
/* Where each slot's goroutine was created: the return address of the
 * ringo_go/ringo_go_on call (NULL: ringo_run's main goroutine), for dumps.
 * A table beside gtab rather than a field of struct rg, whose three cache
 * lines are full: spawn stores it (relaxed; a dump reads it relaxed and may
 * pair an id with the creator of the slot's previous or next incarnation
 * while the slot is recycled under it, which a snapshot can afford).  The
 * same mapping as gtab, after it; only the pages of used slots are ever
 * touched. */
static _Atomic(void *) *gorigin;
static _Atomic uint32_t gtab_next;        /* next unused slot */
struct gchunk { struct gchunk *next; struct rg g[GCHUNK]; };
static pthread_mutex_t gchunk_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gchunk *gchunks;            /* under gchunk_lock */

int gtable_init(void)
{
    void *m = seam_mmap(NULL, SLOT_MAX * (sizeof(*gtab) + sizeof(*gorigin)),
                        PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return -ENOMEM;
    gtab = m;
    gorigin = (void *)((char *)m + SLOT_MAX * sizeof(*gtab));
    store_relaxed(&gtab_next, 0);
    return 0;
}

void gtable_fini(void)
{
    pthread_mutex_lock(&gchunk_lock);
    struct gchunk *c = gchunks;
    gchunks = NULL;
    pthread_mutex_unlock(&gchunk_lock);
    while (c) {
        struct gchunk *n = c->next;
        free(c);
        c = n;
    }
    if (gtab)
        munmap((void *)gtab, SLOT_MAX * (sizeof(*gtab) + sizeof(*gorigin)));
    gtab = NULL;
    gorigin = NULL;
}

/* Allocate a fresh chunk of goroutine structs and chain them on *list. */
static int gchunk_new(struct rg **list, size_t *n)
{
    /* Reserve GCHUNK slots without ever moving gtab_next past SLOT_MAX
     * (gtable_foreach reads every slot below it). */
    uint32_t base = load_relaxed(&gtab_next);
    do {
        if (base > SLOT_MAX - GCHUNK)
            return -ENOMEM;
        /* relaxed: only uniqueness of the range matters; the slots are
         * published with the release stores below */
    } while (!atomic_compare_exchange_weak_explicit(&gtab_next, &base, base + GCHUNK,
                                                    memory_order_relaxed, memory_order_relaxed));
    /* aligned: struct rg's lines (internal.h) must be real cache lines */
    struct gchunk *c = seam_aligned_alloc(_Alignof(struct gchunk), sizeof *c);
    if (c)
        memset(c, 0, sizeof *c);
    if (!c)
        return -ENOMEM; /* the slots stay unused (NULL entries are skipped) */
    for (int i = GCHUNK - 1; i >= 0; i--) {
        struct rg *g = &c->g[i];
        g->slot = base + (uint32_t)i;
        g->gen = UINT32_MAX; /* the first incarnation becomes 0 */
        store_relaxed(&g->park, PARK_CLAIMED);
        /* release: a lookup that finds the pointer sees the slot fields */
        store_release(&gtab[g->slot], g);
        g->next = *list;
        *list = g;
        (*n)++;
    }
    pthread_mutex_lock(&gchunk_lock);
    c->next = gchunks;
    gchunks = c;
    pthread_mutex_unlock(&gchunk_lock);
    return 0;
}

struct rg *gtable_lookup(int64_t id)
{
    if (id <= 0 || !gtab)
        return NULL;
    uint64_t slot = (uint64_t)(id - 1) & (SLOT_MAX - 1);
    if (slot >= load_relaxed(&gtab_next))
        return NULL;
    /* acquire: pairs with the release in gchunk_new */
    struct rg *g = load_acquire(&gtab[slot]);
    if (!g || load_acquire(&g->id) != id)
        return NULL;
    return g;
}

void *goroutine_creator(const struct rg *g)
{
    return load_relaxed(&gorigin[g->slot]); /* see gorigin */
}

void gtable_foreach(void (*fn)(struct rg *g, void *arg), void *arg)
{
    uint32_t n = load_relaxed(&gtab_next);
    for (uint32_t s = 0; s < n; s++) {
        struct rg *g = load_acquire(&gtab[s]);
        if (g && load_acquire(&g->id) > 0)
            fn(g, arg);
    }
}

/*
 * Free goroutine structs.  A goroutine's struct goes back to the free list
 * of the proc it exits on, which need not be the one that spawns (a
 * producer proc spawning for a consumer proc, donation, plain threads).
 * So a proc whose list grows past GFREE_MAX hands GCHUNK structs to the
 * global list, and a proc that runs dry takes GCHUNK from it before
 * allocating new ones.  Plain threads use the global list directly.
 */
#define GFREE_MAX (4 * GCHUNK)

static struct rg *global_gfree;    /* under gchunk_lock */
static size_t global_ngfree;

static struct rg *g_alloc(struct rproc *p)
{
    struct rg *g;
    if (p && p->gfree) {
        g = p->gfree;
        p->gfree = g->next;
        p->ngfree--;
        return g;
    }
    pthread_mutex_lock(&gchunk_lock);
    if (global_gfree) {
        g = global_gfree;
        global_gfree = g->next;
        global_ngfree--;
        /* refill the proc's list with up to a chunk more */
        for (int i = 1; p && i < GCHUNK && global_gfree; i++) {
            struct rg *x = global_gfree;
            global_gfree = x->next;
            global_ngfree--;
            x->next = p->gfree;
            p->gfree = x;
            p->ngfree++;
        }
        pthread_mutex_unlock(&gchunk_lock);
        return g;
    }
    pthread_mutex_unlock(&gchunk_lock);
    struct rg *list = NULL;
    size_t n = 0;
    if (gchunk_new(&list, &n) != 0)
        return NULL;
    g = list;
    list = list->next;
    if (p) {
        struct rg *last = list;
        while (last && last->next)
            last = last->next;
        if (last) {
            last->next = p->gfree;
            p->gfree = list;
            p->ngfree += n - 1;
        }
    } else if (list) {
        struct rg *last = list;
        while (last->next)
            last = last->next;
        pthread_mutex_lock(&gchunk_lock);
        last->next = global_gfree;
        global_gfree = list;
        global_ngfree += n - 1;
        pthread_mutex_unlock(&gchunk_lock);
    }
    return g;
}

static void g_free(struct rproc *p, struct rg *g)
{
    g->next = p->gfree;
    p->gfree = g;
    if (++p->ngfree <= GFREE_MAX)
        return;
    struct rg *first = p->gfree, *last = first;
    for (int i = 1; i < GCHUNK; i++)
        last = last->next;
    p->gfree = last->next;
    p->ngfree -= GCHUNK;
    pthread_mutex_lock(&gchunk_lock);
    last->next = global_gfree;
    global_gfree = first;
    global_ngfree += GCHUNK;
    pthread_mutex_unlock(&gchunk_lock);
}

void gtable_reset_foreign(void)
{
    global_gfree = NULL;
    global_ngfree = 0;
}

/* ---------------------------------------------------------------------- */
/* Stack credit.
 *
 * A goroutine gets its stack when it first runs, but ringo_go must fail
 * with -ENOMEM up front when no stack could be had.  So spawning takes one
 * credit, a promise of a stack, and exiting gives it back.  Credits come
 * from the global pool in batches (the pool maps regions to back them), so
 * the common spawn costs a decrement of a proc-local counter.
 */
static int credit_take(struct rproc *p)
{
    if (!p)
        return stack_reserve(1);
    if (p->credit == 0) {
        int r = stack_reserve(CREDIT_BATCH);
        if (r)
            return r;
        p->credit = CREDIT_BATCH;
    }
    p->credit--;
    return 0;
}

static void credit_give(struct rproc *p)
{
    p->credit++;
    if (p->credit > 4 * CREDIT_BATCH) {
        stack_unreserve(2 * CREDIT_BATCH);
        p->credit -= 2 * CREDIT_BATCH;
    }
}

/* ---------------------------------------------------------------------- */
/* Queues */

/*
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
 */

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
    p->rq_fresh += e & RQ_STEALABLE;
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
        if (h == load_relaxed(&p->rq_tail)) /* relaxed: our own store */
            return NULL;
        /* relaxed: our own store; the CAS decides whether it is ours */
        uintptr_t e = load_relaxed(&p->rq[h % RQ_SIZE]);
        /* acq_rel (3): the race with thieves for the head; on failure h
         * is the new head, loaded with acquire */
        if (cas_acq_rel(&p->rq_head, &h, h + 1)) {
            if ((e & RQ_STEALABLE) && p->rq_fresh)
                p->rq_fresh--;
            return (struct rg *)(e & ~RQ_STEALABLE);
        }
    }
}

static inline uint32_t rq_len(struct rproc *p)
{
    /* acquire/relaxed: as in rq_pop; thieves only ever shrink it */
    return load_relaxed(&p->rq_tail) - load_acquire(&p->rq_head);
}

/* Move goroutines queued behind a full ring into it, oldest first.
 * Everything needed from g is read before rq_push: once it is on the ring
 * a thief may take it, run it and free it. */
static void rq_refill(struct rproc *p)
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

/* runq_push and runq_pop with stealing on: the ring, the list behind it,
 * prio (see "Stealing").  Apart, so that one proc's queue costs one
 * predictable branch more than it always did (tests/bench/yield). */
static void runq_push_list(struct rproc *p, struct rg *g);

static __attribute__((noinline)) void runq_push_steal(struct rproc *p, struct rg *g)
{
    if (!p->runq_head && rq_push(p, g))
        return;
    runq_push_list(p, g);
    rq_refill(p);
}

static struct rg *runq_pop_list(struct rproc *p);

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

static inline void runq_push_list(struct rproc *p, struct rg *g)
{
    if (!g->started && !g->bound)
        p->fresh++;
    g->next = NULL;
    if (p->runq_tail)
        p->runq_tail->next = g;
    else
        p->runq_head = g;
    p->runq_tail = g;
    p->runq_len++;
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

static bool runq_empty_steal(struct rproc *p)
{
    return !p->runq_head && !p->prio && rq_len(p) == 0;
}

size_t runq_count(struct rproc *p)
{
    return p->runq_len + (p->steal_on ? rq_len(p) : 0);
}

/* Push a chain first..last (linked by ->next) onto p's inbox. */
static void inbox_push_chain(struct rproc *p, struct rg *first, struct rg *last)
{
    struct rg *head = load_relaxed(&p->inbox);
    do {
        last->next = head;
        /* release: publishes the goroutines' fields (result, state) to the
         * owner's acquire xchg in inbox_drain */
    } while (!atomic_compare_exchange_weak_explicit(&p->inbox, &head, first,
                                                    memory_order_release,
                                                    memory_order_relaxed));
}

/* Move the inbox to the run queue, oldest first. */
static bool inbox_drain(struct rproc *p)
{
    if (!load_relaxed(&p->inbox)) /* relaxed peek: a miss is caught by the next poll or the sleep handshake */
        return false;
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
    return true;
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

static void tasks_run(struct rproc *p)
{
    if (!load_relaxed(&p->tasks)) /* relaxed peek, as in inbox_drain */
        return;
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

/* ---------------------------------------------------------------------- */
/* The park clock.
 *
 * A dump says how long each parked goroutine has waited, so a park is
 * stamped with a time -- but a clock read per park (20-30 ns through the
 * vDSO) would be a fair share of a park's cost.  So the stamp is a copy of
 * p->clock_ms, a proc-local clock in ms since the run started, kept where
 * the proc has the time anyway or cheaply: each timer run stores the
 * CLOCK_MONOTONIC reading it is made with, and every POLL_EVERY scheduling
 * points and after each sleep the proc reads CLOCK_MONOTONIC_COARSE (a
 * vDSO load of the kernel's last tick, no TSC read).  Resolution: the
 * coarse clock's tick (1 to 10 ms with CONFIG_HZ 1000 to 100), and the
 * clock may lag the park by up to POLL_EVERY scheduling points on a busy
 * proc, or by the time one goroutine ran without yielding before it
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

uint64_t park_prepare(struct rg *g, int reason, int flags)
{
    uint64_t token = ++g->park_seq;
    /* relaxed: read only by dumps (runtime.c dump_one) */
    store_relaxed(&g->reason, (uint8_t)reason);
    store_relaxed(&g->wait_obj, NULL);
    store_relaxed(&g->wait_fd, -1);
    /* The park clock (below), not a clock read: this is the hot path. */
    store_relaxed(&g->parked_ms, load_relaxed(&g->p)->clock_ms);
    g->wake_at = (flags & PARK_INTERRUPTIBLE) ? g->deadline : RINGO_NEVER;
    g->wake_at_result = -ETIMEDOUT;
    g->io_op = NULL;
    store_relaxed(&g->park, (token << 2) | ((flags & PARK_INTERRUPTIBLE) ? PARK_INTR : 0));
    /* The store half of the park/cancel handshake (see top), and (A) of
     * the fd deadline one (fddeadline.c): a full barrier after the park
     * word and whatever the caller stored before (its fdops count), ahead
     * of the loads that follow (cancel_id, the fd's deadline).  On x86 it
     * costs what the seq_cst store it replaces did (a locked instruction). */
    smp_mb();
    return token;
}

bool claim(struct rg *g, uint64_t token)
{
    uint64_t cur = load_relaxed(&g->park);
    for (;;) {
        if ((cur >> 2) != token || (cur & PARK_CLAIMED))
            return false;
        /* acq_rel: the winner sees everything the parker published before
         * parking (its waiter records) and publishes its own writes. */
        if (cas_acq_rel(&g->park, &cur, cur | PARK_CLAIMED))
            return true;
    }
}

/* A goroutine whose sleep or deadline ends goes to the front of its
 * proc's run queue, ahead of goroutines that have not started yet: a
 * timer's lateness should not grow with the number of goroutines spawned
 * meanwhile (tests/bench/sleepers; Go's runnext serves the same purpose).
 * Timers run on the goroutine's own proc, so the queue is local. */
static void g_timer_fire(struct rproc *p, struct rtimer *t)
{
    struct rg *g = (struct rg *)((char *)t - offsetof(struct rg, timer));
    if (!claim(g, g->timer_token))
        return;
    g->result = g->wake_at_result;
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
    struct rg *g = (struct rg *)((char *)t - offsetof(struct rg, timer));
    if (load_relaxed(&g->park) != g->timer_token << 2 || !g->io_op)
        return;
    eng_cancel_op(p, g->io_op);
}

static const struct rtimer_ops g_timer_ops = { .fire = g_timer_fire };
static const struct rtimer_ops op_deadline_ops = { .fire = op_deadline_fire };

void ready(struct rg *g, int result)
{
    g->result = result;
    store_relaxed(&g->state, G_RUNNABLE);
    struct rproc *owner = load_relaxed(&g->p); /* fixed since the goroutine started */
    struct rproc *p = tls_proc;
    if (owner == p) {
        runq_push(p, g);
        return;
    }
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

int park_commit(struct rg *g, uint64_t token, int flags)
{
    struct rproc *p = tls_proc;
    /* The goroutine's timer stays armed when its wait ends (below): the
     * next wait with a deadline moves it (timer_rearm: no sift when it
     * moves later, timer.c "Moved later"), and meanwhile a firing finds
     * its token stale and does nothing.  A wait without one disarms it:
     * no goroutine parked without a deadline keeps a timer, so a proc
     * whose goroutines all wait so has none (deadlock detection). */
    if (g->wake_at != RINGO_NEVER) {
        g->timer_token = token;
        g->timer.ops = (flags & PARK_INTERRUPTIBLE) ? &g_timer_ops : &op_deadline_ops;
        if (timer_rearm(&p->timers, &g->timer, g->wake_at) != 0)
            bug("timer heap full despite the reservation made at start");
    } else if (__builtin_expect(g->timer.idx != 0, 0)) {
        timer_disarm(&p->timers, &g->timer);
    }
    /* seq_cst load: the load half of the park/cancel handshake. */
    if ((flags & PARK_INTERRUPTIBLE) &&
        load_seqcst(&g->cancel_id) == load_relaxed(&g->id) && claim(g, token)) {
        g->result = -ECANCELED;
        goto out;
    }
    store_relaxed(&g->state, G_WAITING);
    sched_switch(p, g);
out:
    store_relaxed(&g->state, G_RUNNING);
    return g->result;
}

/* ---------------------------------------------------------------------- */
/* Switching */

static void reclaim_dead(struct rproc *p)
{
    struct rg *d = p->dead;
    p->dead = NULL;
    stack_put(&p->stacks, d->stack);
    d->stack = NULL;
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

static void flush_run(struct rproc *p, struct rtask *t)
{
    (void)t;
    /* release: the next asker may post again; our drain happened first */
    store_release(&p->flush_pending, 0);
    stack_cache_drain(&p->stacks);
}

static struct rg *steal(struct rproc *p);

static void steal_run(struct rproc *p, struct rtask *t)
{
    (void)t;
    /* release: the next spawner may post again; as flush_pending */
    store_release(&p->steal_pending, 0);
    struct rg *g = steal(p);
    if (g)
        runq_push(p, g);
}

void proc_init_tasks(struct rproc *p)
{
    p->flush_task.run = flush_run;
    p->steal_task.run = steal_run;
    p->spin_budget = SPIN_NS;
    p->steal_on = rt.nprocs > 1;
}

/* Give g what it needs to run for the first time: a stack, and room in
 * this proc's timer heap for the one timer it may arm (so arming never
 * fails later, in the middle of a park).  False if either cannot be had
 * now.  A stack credit guarantees a free stack exists, but it may sit in
 * another proc's private cache: then ask every proc to flush its cache to
 * the global pool and let the caller retry. */
static bool g_start(struct rproc *p, struct rg *g)
{
    if (timer_reserve(&p->timers, p->timer_promised + 1) != 0)
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
    g->stack = s;
    g->started = true;
#ifdef RINGO_ASAN
    /* A reused stack still carries the poisoned redzones of frames that
     * were live when its last goroutine exited (ringo_exit unwinds
     * nothing); the new goroutine starts on clean shadow. */
    __asan_unpoison_memory_region(s->lo, (size_t)(stack_top(s) - s->lo));
#endif
    fiber_make(&g->ctx, s, g_entry);
    return true;
}

/* Switch from the running context (goroutine `from`, or g0 when NULL) to
 * `to` (or g0 when NULL).  `dying`: from never runs again. */
static void switch_to(struct rproc *p, struct rg *from, struct rg *to, bool dying)
{
    if (from && !stack_sp_ok(from->stack, __builtin_frame_address(0)))
        fatal("goroutine %lld stack overflow", (long long)load_relaxed(&from->id));
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
    struct fiber_ctx *fc = from ? &from->ctx : &p->g0;
    struct fiber_ctx *tc = to ? &to->ctx : &p->g0;
#ifdef RINGO_ASAN
    void *fake = NULL;
    const void *bottom = to ? (const void *)to->stack->lo : p->g0_stack_lo;
    size_t size = to ? (size_t)(stack_top(to->stack) - to->stack->lo) : p->g0_stack_size;
    __sanitizer_start_switch_fiber(dying ? NULL : &fake, bottom, size);
#else
    void *fake = NULL;
    (void)dying;
#endif
#ifdef RINGO_TSAN
    /* Just before the switch, as TSan asks (tsan.h); `to`'s fiber
     * acquires what `from`'s released. */
    __tsan_switch_to_fiber(to ? to->stack->tsan_fiber : p->tsan_g0, 0);
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

/* donate for the ring (see "Stealing"): a hungry proc steals only the
 * leading run of unstarted goroutines of p's ring, and a started one at the
 * head (one that yielded, or was woken) hides the unstarted ones behind it.
 * So the owner takes the whole ring as a thief would (one CAS on the head),
 * gives up to half of its unstarted goroutines to `to`, and puts the rest
 * back in their order; the ring is then empty but for them, with room for
 * all.  True if it gave any.  rq_fresh, the unstarted goroutines the owner
 * pushed and has not popped, counts those thieves took as well: a hint,
 * made exact here. */
static bool donate_ring(struct rproc *p, struct rproc *to)
{
    /* acquire: as (1) in rq_pop; the CAS (3) claims [h, t) from thieves */
    uint32_t h = load_acquire(&p->rq_head);
    uint32_t t = load_relaxed(&p->rq_tail); /* relaxed: our own store */
    do {
        if (h == t) {
            p->rq_fresh = 0;
            return false;
        }
    } while (!cas_acq_rel(&p->rq_head, &h, t));
    unsigned want = (p->rq_fresh + 1) / 2;
    if (want > DONATE_MAX)
        want = DONATE_MAX;
    p->rq_fresh = 0;
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

/* Give unstarted goroutines to a hungry proc.  Called by a busy proc that
 * has some (p->fresh > 0, or p->rq_fresh). */
static void donate(struct rproc *p)
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
    if (p->steal_on && p->rq_fresh && donate_ring(p, to))
        return;
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

/* Take goroutines that have not started from another proc's ring (see
 * "Stealing"): one to run, the rest queued here.  NULL if no proc had any. */
static struct rg *steal(struct rproc *p)
{
    struct rg *got[STEAL_MAX]; /* on a goroutine's stack, from steal_run */
    for (unsigned i = 1; i < rt.nprocs; i++) {
        struct rproc *v = rt.procs[(p->idx + i) % rt.nprocs];
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
static void steal_wake(struct rproc *p)
{
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
    if (tick % POLL_EVERY == 0) {
        store_relaxed(&p->runq_pub, runq_count(p)); /* for ringo_stats */
        proc_clock_coarse(p);
        poll_cheap(p);
        if (load_relaxed(&p->inflight) || load_relaxed(&p->unsubmitted))
            eng_poll(p, false, 0);
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

static inline struct rg *next_runnable(struct rproc *p)
{
    if (__builtin_expect(p->steal_on, 0))
        return next_runnable_steal(p);
    return next_runnable_t(p, false);
}

void sched_switch(struct rproc *p, struct rg *g)
{
    struct rg *next = next_runnable(p);
    if (next == g)
        return; /* readied while parking: keep running */
    switch_to(p, g, next, false);
}

/* ---------------------------------------------------------------------- */
/* Goroutine entry and exit */

static _Noreturn void g_exit(struct rproc *p, struct rg *g)
{
    if (g->timer.idx)
        timer_disarm(&p->timers, &g->timer);
    p->timer_promised--;
    store_relaxed(&g->state, G_FREE);
    /* release: cancel lookups that still see the old id saw a live goroutine */
    store_release(&g->id, 0);
    credit_give(p);
    p->dead = g;
    rt_goroutine_done();
    struct rg *next = next_runnable(p);
    switch_to(p, g, next, true);
    bug("dead goroutine resumed");
}

static void g_entry(void)
{
    struct rproc *p = tls_proc;
    after_switch(p, NULL);
    struct rg *g = p->cur;
    g->fn(g->arg);
    g_exit(p, g);
}

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
    g->gen++;
    int64_t id = (int64_t)(((uint64_t)g->gen << SLOT_BITS) | g->slot) + 1;
    g->fn = fn;
    g->arg = arg;
    store_relaxed(&gorigin[g->slot], creator); /* see gorigin */
    g->stack = NULL;
    g->started = false;
    g->bound = bound;
    g->deadline = RINGO_NEVER;
    store_relaxed(&g->reason, W_NONE);
    g->io_op = NULL;
    g->sudogs = NULL;
    g->nsudogs = 0;
    g->timer.idx = 0;
    store_relaxed(&g->cancel_id, 0);
    store_relaxed(&g->park, PARK_CLAIMED | (g->park_seq << 2));
    store_relaxed(&g->state, G_RUNNABLE);
    store_relaxed(&g->p, target);
    /* release: a lookup that sees the id sees the fields above */
    store_release(&g->id, id);
    if (me)
        stat_add(me->st.spawned, 1);
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

/* ---------------------------------------------------------------------- */
/* Public goroutine API */

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
        runq_push_list(p, g);
        next = next_runnable_t(p, false);
    }
    if (next != g)
        switch_to(p, g, next, false);
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
        if (claim(g, park >> 2))
            ready(g, -ECANCELED);
    } else if (g->io_op) {
        eng_cancel_op(p, g->io_op); /* io_wait, or a timed futex wait; other sync waits have none */
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

/* ---------------------------------------------------------------------- */
/* The scheduler loop */

static void proc_sleep(struct rproc *p)
{
    if (p->acceptors)
        acc_proc_idle(p); /* no multishot accept for nobody (accept.c) */
    if (load_relaxed(&p->unsubmitted))
        eng_flush(p);

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
    /* Nor on the epoll engine with I/O in flight: readiness cannot be
     * seen without a system call, and the spin would only delay it. */
    bool blind = rt.engine == RINGO_ENGINE_EPOLL && load_relaxed(&p->inflight);
    if (rt.nprocs > 1 && budget > 0 && !rt.valgrind && !blind) {
        int64_t start = now_ns();
        int64_t until = start + budget, next = timer_next(&p->timers);
        if (next < until)
            until = next;
        bool found = false;
        for (unsigned i = 0; start < until; i++) {
            if (load_relaxed(&p->inbox) || load_relaxed(&p->tasks)) {
                found = true;
                break;
            }
            if (load_relaxed(&rt.stopping))
                break;
            if (!rt.use_defer_taskrun && load_relaxed(&p->inflight) && eng_cq_ready(p))
                break;
            /* With DEFER_TASKRUN completions stay invisible until an
             * enter runs their task work; the kernel's IORING_SQ_TASKRUN
             * (engine_uring.c asks for it) says some are waiting, so stop
             * spinning and go and get them.  Read like liburing reads
             * the flags word (a volatile load): a late sight only means
             * one more spin. */
            if (rt.use_defer_taskrun && load_relaxed(&p->inflight) &&
                (IO_URING_READ_ONCE(*p->ring.sq.kflags) & IORING_SQ_TASKRUN))
                break;
            cpu_relax();
            if ((i & 63) == 63 && now_ns() >= until)
                break;
        }
        stat_add(p->st.spin_ns, (uint64_t)(now_ns() - start));
        stat_add(p->st.spins, 1);
        if (found) {
            stat_add(p->st.spins_found, 1);
            p->spin_budget = SPIN_NS;
            p->spin_probe = 0;
            goto unhungry;
        }
        /* Halved; a probe that found nothing leaves it at 0. */
        p->spin_budget = p->spin_budget / 2 >= SPIN_MIN_NS ? p->spin_budget / 2 : 0;
        bool io = load_relaxed(&p->inflight);
        if (load_relaxed(&rt.stopping) || (io && !rt.use_defer_taskrun && eng_cq_ready(p)))
            goto unhungry;
        if (io && rt.use_defer_taskrun &&
            (IO_URING_READ_ONCE(*p->ring.sq.kflags) & IORING_SQ_TASKRUN))
            goto unhungry;
    }

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
    if (!load_relaxed(&rt.stopping)) {
        int64_t slept = now_ns();
        eng_poll(p, true, timer_next(&p->timers));
        stat_add(p->st.idle_ns, (uint64_t)(now_ns() - slept));
    }
    store_relaxed(&p->sleeping, 0);
    if (idle) {
        pthread_mutex_lock(&rt.idle_lock);
        p->idle = false;
        rt.idle_procs--;
        pthread_mutex_unlock(&rt.idle_lock);
    }
unhungry:
    proc_clock_coarse(p); /* "The park clock": after a sleep or spin */
    if (load_relaxed(&p->hungry))
        store_relaxed(&p->hungry, 0); /* a donor may clear it too; both write 0 */
}

void proc_main(struct rproc *p)
{
    p->cur = NULL;
    for (;;) {
        poll_cheap(p);
        if (load_relaxed(&p->inflight) || load_relaxed(&p->unsubmitted))
            eng_poll(p, false, 0);
        struct rg *g = runq_pop(p);
        if (!g && p->steal_on)
            g = steal(p);
        if (g) {
            switch_to(p, NULL, g, false);
            continue;
        }
        if (load_acquire(&rt.stopping))
            break;
        proc_sleep(p);
    }
}
