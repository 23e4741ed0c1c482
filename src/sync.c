/*
 * sync.c — Go's sync package: Mutex, RWMutex, WaitGroup, Once and Cond, each
 * on 32-bit futex words, usable from goroutines and plain threads at once.
 *
 * What lives here.  The state machines of the five objects.  Blocking goes
 * through futex_wait / futex_wake (futex.c), which park a goroutine (its
 * proc runs others) or block a thread in futex(2); every such wait may end
 * spuriously, so each wait below sits in a loop that re-reads its word.
 * None of these calls looks at the goroutine's deadline or cancellation:
 * as in Go, a sync wait ends only when the object allows it.  The one
 * exception is the timed ringo_waitgroup_wait_until (futex_wait_until),
 * the wait Go programs build from a channel and a select.
 *
 * Invariants.
 *   - Zero is the ready state of every object (Go's zero values), so the
 *     public types are opaque storage checked against the structs below.
 *   - Uncontended Mutex lock and unlock are one atomic instruction each and
 *     make no system call; so are RLock/RUnlock without a writer, Add/Done
 *     that do not reach zero with waiters, and Once.Do after the first.
 *   - A word that a waiter sleeps on changes before the wake that is meant
 *     for it (the futex rule), and a waker only skips futex_wake when a
 *     sequentially consistent count of waiters says nobody can be asleep
 *     (the Dekker pairs are drawn at each object), or for WaitGroup when
 *     the flag in the very word it changed says so.
 *
 * Memory model (API.md): unlock -> next lock is release (the unlocking
 * RMW) -> acquire (the locking CAS), also across a handoff, where the
 * taker's CAS reads the unlocker's release sequence; Done -> the Wait it
 * releases: the release decrement (continued, through its release
 * sequence, by the CAS that clears the waiters flag) -> Wait's acquire
 * load of the 0;
 * Once: fn returns -> release store of DONE -> acquire load of DONE.
 *
 * Freeing.  The WaitGroup's releasing Done makes no access after the CAS
 * that lets the waiter return (see WaitGroup), so a waiter may free it at
 * once.  Mutex and RWMutex do not give that: a waking unlock bumps
 * m->sleep after the release that lets the next locker in, sema_release
 * reads nwait after its add, and RWMutex's Unlock lets the readers in
 * before it unlocks w (Go's order).  Their man pages ask that they be
 * freed only once nobody can be inside an unlock.  Lifting that would
 * take the release and the change of the word waiters sleep on in one
 * atomic (for Mutex, a 64-bit state with the sleep count in one half),
 * which changes the public types' alignment.
 *
 * Plain threads.  A plain thread that touches an object calls note_foreign()
 * first, even on a fast path: a goroutine may come to wait on a mutex the
 * thread holds, and deadlock detection must already be off by then.  The
 * test is one thread-local load.
 *
 * Rejected.  Spinning before sleeping: goroutines are cooperative, so the
 * holder on the same proc cannot run while we spin (and measured on 2
 * procs, Go's 4 x 30 pauses made the contended mutex slower).
 */
#include "config.h"

#include "internal.h"
#include "futex.h"

#include <errno.h>
#include <limits.h>
#include <stdalign.h>

#include "ringo.h"

static inline void note_caller(void)
{
    if (__builtin_expect(tls_proc == NULL, 0))
        note_foreign();
}

#define CHECK_LAYOUT(priv, pub)                                              \
    _Static_assert(sizeof(priv) == sizeof(pub), #priv " size");              \
    _Static_assert(alignof(pub) >= alignof(priv), #priv " alignment");       \
    _Static_assert(alignof(pub) == alignof(uint32_t), #pub " alignment is ABI")

/* ---------------------------------------------------------------------- */
/* Mutex.
 *
 * State word:
 *   bit 0     LOCKED    held
 *   bit 1     STARVING  a waiter has waited longer than STARVATION_NS:
 *                       nobody may take the lock except by handoff
 *   bit 2     HANDOFF   an unlock in starving mode passed the lock on; the
 *                       first counted waiter to see it owns the lock
 *   bit 3     WOKEN     an unlock has woken a waiter that has not yet come
 *                       back to the state word (Go's mutexWoken)
 *   bits 4-31 waiters   lockers counted as waiting (asleep or about to be)
 *
 * Lock: CAS 0 -> LOCKED.  Unlock: subtract LOCKED; if the result is not 0,
 * there are waiters to wake or a handoff to make.
 *
 * WOKEN spares the wake, a futex(2) system call, while a woken waiter is
 * already on its way: a goroutine that keeps re-locking a mutex that
 * waiters on another proc want would otherwise pay one system call per
 * unlock (tests/bench/mutex).  The unlocker sets WOKEN in the CAS that
 * decides to wake; a waiter that comes back from futex_wait, for whatever
 * reason, clears it in its next CAS of the state (taking the lock or going
 * back to sleep).  WOKEN is never left set with nobody to clear it: when it
 * is set, every counted waiter is either asleep in the kernel, where the
 * wake that follows reaches one of them, or on its way to a futex_wait
 * whose value was read before the bump of sleep that follows (it counted
 * itself before WOKEN was set, and read sleep before counting), so that
 * wait returns at once.  Either way some waiter comes back and clears it;
 * a second waiter that clears it too only allows one more wake.
 *
 * Waiters do not sleep on the state word but on a second word, sleep,
 * which every unlock that wakes bumps before its futex_wake.  Sleeping on
 * the state word would be open to ABA: an io_uring FUTEX_WAIT is compared
 * with the word only when the proc submits it, possibly much later, and by
 * then an unlock that handed the lock off (waking nobody, since nobody was
 * in the kernel yet) and a new arrival counting itself may have brought the
 * state back to exactly the value the SQE carries, so every waiter sleeps
 * beside a pending handoff.  (tests: cond_producer_consumer_signal under
 * load found it.)  The sleep word only grows, so it cannot come back
 * within 2^32 wakes:
 *
 *        waiter w (mutex_lock_slow)            unlocker u (mutex_unlock_slow)
 *        --------------------------            ------------------------------
 *        q = load sleep (acquire)  <--------   state -= LOCKED (release)
 *        s = load state                        [| HANDOFF]
 *        decide from s: wait                   sleep++ (release)      (B)
 *        futex_wait(sleep, q)                  futex_wake(sleep, 1)
 *
 * If w's q already includes u's bump, the acquire makes u's state change
 * visible in s and w acts on it; otherwise the futex sees sleep != q, or u's
 * wake finds w asleep.  "w sleeps through u's wake" cannot happen.
 *
 * Invariant: STARVING implies waiters >= 1 (only a counted waiter sets it,
 * and the handoff taker that brings waiters to 0 clears it), so a HANDOFF is
 * always taken: every counted waiter re-reads the state after the wake or
 * after its own wait fails on the bumped sleep word.
 */

/* Mutex fairness, as in Go's sync.Mutex.  Normally a woken waiter competes
 * with arriving lockers, which usually win (they are already running), so a
 * goroutine or thread that keeps re-locking can hold a mutex for ever.  A
 * waiter that has waited longer than this switches the mutex to starvation
 * mode: unlocks hand the lock straight to a waiter (the kernel wakes futex
 * waiters in FIFO order) and arrivals queue behind.  The mode ends when a
 * waiter that gets the lock is the last or waited less than this.  1 ms is
 * Go's starvationThresholdNs; the trade-off (throughput of barging against
 * tail latency) is the same, so is the number.  Exercised by the
 * mutex_starvation_mode test, which only bounds the wait loosely. */
#define STARVATION_NS 1000000

#define M_LOCKED   1u
#define M_STARVING 2u
#define M_HANDOFF  4u
#define M_WOKEN    8u
#define M_WAITER   16u

struct mutex {
    _Atomic uint32_t state;     /* see "State word"; RMW by lockers and unlockers */
    _Atomic uint32_t sleep;     /* waiters sleep on it; bumped (release) by unlocks that wake */
};
CHECK_LAYOUT(struct mutex, ringo_mutex);

static void mutex_lock_slow(struct mutex *m)
{
    int64_t start = 0;
    bool counted = false;       /* we are in the waiters field */
    bool woken = false;         /* back from a futex_wait: clear WOKEN */
    /* acquire: pairs with the release bump (B) in mutex_unlock_slow */
    uint32_t q = load_acquire(&m->sleep);
    uint32_t s = load_relaxed(&m->state);
    for (;;) {
        uint32_t n;
        uint32_t clear = woken ? M_WOKEN : 0;
        if (counted && (s & M_HANDOFF)) {
            n = ((s & ~(M_HANDOFF | clear)) | M_LOCKED) - M_WAITER;
            if (n < M_WAITER || now_ns() - start < STARVATION_NS)
                n &= ~M_STARVING;
            /* acquire: reads the unlocker's release sequence */
            if (cas_acquire(&m->state, &s, n))
                return;
            continue;
        }
        if (!(s & (M_LOCKED | M_STARVING | M_HANDOFF))) {
            n = (s & ~clear) | M_LOCKED;
            if (counted)
                n -= M_WAITER;
            /* acquire: pairs with the release in mutex_unlock */
            if (cas_acquire(&m->state, &s, n))
                return;
            continue;
        }
        n = s & ~clear;
        if (!counted)
            n += M_WAITER;
        else if (!(s & M_STARVING) && now_ns() - start > STARVATION_NS)
            n |= M_STARVING;
        /* relaxed: nothing is published; a stale q only makes the wait
         * below return early. */
        if (n != s && !atomic_compare_exchange_strong_explicit(
                          &m->state, &s, n, memory_order_relaxed, memory_order_relaxed))
            continue;
        if (!counted) {
            counted = true;
            start = now_ns();
        }
        futex_wait(&m->sleep, q, W_MUTEX);
        woken = true;
        q = load_acquire(&m->sleep);    /* acquire: as above */
        s = load_relaxed(&m->state);
    }
}

static inline void mutex_lock(struct mutex *m)
{
    uint32_t s = 0;
    /* acquire: pairs with the release in mutex_unlock (unlock happens
     * before the next lock returns) */
    if (__builtin_expect(cas_acquire(&m->state, &s, M_LOCKED), 1))
        return;
    mutex_lock_slow(m);
}

static void mutex_unlock_slow(struct mutex *m, uint32_t old)
{
    if (!(old & M_LOCKED))
        fatal("sync: unlock of unlocked mutex");
    uint32_t s = old - M_LOCKED;
    if (s & M_STARVING) {
        /* release: the handoff taker's CAS reads this (and, through the
         * release sequence, our unlock) */
        fetch_or_acq_rel(&m->state, M_HANDOFF);
    } else {
        for (;;) {
            /* Nobody to wake; or a woken waiter is on its way; or a new
             * holder will decide at its own unlock (also in starving
             * mode, which a waiter may have set since). */
            if (s < M_WAITER || (s & (M_LOCKED | M_WOKEN | M_STARVING)))
                return;
            /* relaxed: the bump (B) below publishes the state to waiters */
            if (atomic_compare_exchange_weak_explicit(&m->state, &s, s | M_WOKEN,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
        }
    }
    /* (B) release: a waiter that reads the bump sees the change above */
    fetch_add_acq_rel(&m->sleep, 1);
    futex_wake(&m->sleep, 1);
}

static inline void mutex_unlock(struct mutex *m)
{
    /* release: pairs with the acquire CAS of the next lock */
    uint32_t old = fetch_sub_release(&m->state, M_LOCKED);
    if (__builtin_expect(old == M_LOCKED, 1))
        return;
    mutex_unlock_slow(m, old);
}

void ringo_mutex_lock(ringo_mutex *pub)
{
    note_caller();
    mutex_lock((struct mutex *)pub);
}

int ringo_mutex_trylock(ringo_mutex *pub)
{
    struct mutex *m = (struct mutex *)pub;
    note_caller();
    uint32_t s = load_relaxed(&m->state);
    if (s & (M_LOCKED | M_STARVING | M_HANDOFF))
        return -EBUSY;
    /* acquire: as in mutex_lock */
    return cas_acquire(&m->state, &s, s | M_LOCKED) ? 0 : -EBUSY;
}

void ringo_mutex_unlock(ringo_mutex *pub)
{
    note_caller();
    mutex_unlock((struct mutex *)pub);
}

/* ---------------------------------------------------------------------- */
/* Counting semaphore on a futex word (RWMutex's readerSem and writerSem).
 *
 *        acquirer a (sema_acquire)             releaser r (sema_release)
 *        -------------------------             -------------------------
 *        nwait++ (seq_cst)     (A) <--------> count += k (seq_cst)    (B)
 *        futex_wait(count, 0)                  load nwait (seq_cst)
 *          (checks count == 0 atomically)      if > 0: futex_wake(count, k)
 *
 * Either r sees a nonzero nwait and wakes, or a's check sees the new count
 * and a does not sleep: "a sleeps on 0 AND r skips the wake" cannot happen.
 */
struct sema {
    _Atomic uint32_t count;     /* tokens; CAS by acquirers, add by releasers */
    _Atomic uint32_t nwait;     /* acquirers between their failed take and their return; seq_cst */
};

static void sema_acquire(struct sema *s, int reason)
{
    for (;;) {
        uint32_t c = load_relaxed(&s->count);
        while (c > 0) {
            /* acquire: pairs with the seq_cst add in sema_release */
            if (cas_acquire(&s->count, &c, c - 1))
                return;
        }
        fetch_add_seqcst(&s->nwait, 1);        /* (A) */
        futex_wait(&s->count, 0, reason);
        fetch_sub_relaxed(&s->nwait, 1);       /* relaxed: late means only an extra wake */
    }
}

static void sema_release(struct sema *s, uint32_t k)
{
    fetch_add_seqcst(&s->count, k);            /* (B) */
    if (load_seqcst(&s->nwait))
        futex_wake(&s->count, k > INT_MAX ? INT_MAX : (int)k);
}

/* ---------------------------------------------------------------------- */
/* RWMutex: Go's design.  Writers serialise on w; a writer announces itself
 * by subtracting RW_MAX_READERS from reader_count, so readers arriving after
 * it see a negative count and queue on reader_sem (writers are not starved
 * by a stream of readers), and it waits on writer_sem for the reader_wait
 * readers that were inside to leave; the last of them releases it.  Unlock
 * adds RW_MAX_READERS back and lets the queued readers in. */
#define RW_MAX_READERS (1 << 30)

struct rwmutex {
    struct mutex w;                 /* held by the writer, and pending writers queue on it */
    struct sema writer_sem;         /* the writer waits for departing readers */
    struct sema reader_sem;         /* readers wait for the writer */
    _Atomic int32_t reader_count;   /* readers inside or queued, minus RW_MAX_READERS while a writer is pending; acq_rel */
    _Atomic int32_t reader_wait;    /* readers the pending writer still waits for; acq_rel */
};
CHECK_LAYOUT(struct rwmutex, ringo_rwmutex);

void ringo_rwmutex_rlock(ringo_rwmutex *pub)
{
    struct rwmutex *rw = (struct rwmutex *)pub;
    note_caller();
    /* acq_rel: acquire pairs with the writer's release in unlock */
    if (fetch_add_acq_rel(&rw->reader_count, 1) + 1 < 0)
        sema_acquire(&rw->reader_sem, W_MUTEX); /* a writer is pending */
}

void ringo_rwmutex_runlock(ringo_rwmutex *pub)
{
    struct rwmutex *rw = (struct rwmutex *)pub;
    note_caller();
    /* acq_rel: release publishes the read section to the next writer */
    int32_t r = fetch_sub_acq_rel(&rw->reader_count, 1) - 1;
    if (__builtin_expect(r >= 0, 1))
        return;
    if (r + 1 == 0 || r + 1 == -RW_MAX_READERS)
        fatal("sync: RUnlock of unlocked RWMutex");
    /* A writer is pending; the last reader it waits for lets it in. */
    if (fetch_sub_acq_rel(&rw->reader_wait, 1) - 1 == 0)
        sema_release(&rw->writer_sem, 1);
}

void ringo_rwmutex_lock(ringo_rwmutex *pub)
{
    struct rwmutex *rw = (struct rwmutex *)pub;
    note_caller();
    mutex_lock(&rw->w);
    /* Announce the writer; r readers are inside. */
    int32_t r = fetch_add_acq_rel(&rw->reader_count, -RW_MAX_READERS);
    if (r != 0 && fetch_add_acq_rel(&rw->reader_wait, r) + r != 0)
        sema_acquire(&rw->writer_sem, W_MUTEX);
}

void ringo_rwmutex_unlock(ringo_rwmutex *pub)
{
    struct rwmutex *rw = (struct rwmutex *)pub;
    note_caller();
    /* acq_rel: release publishes the write section to the readers */
    int32_t r = fetch_add_acq_rel(&rw->reader_count, RW_MAX_READERS) + RW_MAX_READERS;
    if (r >= RW_MAX_READERS)
        fatal("sync: Unlock of unlocked RWMutex");
    if (r > 0)
        sema_release(&rw->reader_sem, (uint32_t)r);
    mutex_unlock(&rw->w);
}

/* ---------------------------------------------------------------------- */
/* WaitGroup: the counter and a "somebody waits" flag in one futex word,
 * Go's packing shrunk to 32 bits: bit 0 is WG_WAITERS, bits 1-31 the
 * counter as a signed 31-bit number (word as int32, shifted right).
 *
 * One word, because the Done that brings the counter to zero must not
 * touch the object after a waiter can have returned: the waiter may free
 * it, or its stack frame may hold the next one (a wait group on the stack
 * of a loop).  With the waiters counted in a second word, that Done read
 * the count after its decrement, and by then a waiter that had seen the
 * zero could be gone.  Now the Done's decrement itself returns the flag,
 * and a waiter returns only on a word of exactly 0, never on a counter of
 * zero with WG_WAITERS still set; so the last access to the object is the
 * waker's CAS that clears the flag, and what follows, futex_wake, only
 * names the address (a wake that lands on a new object there is one more
 * spurious wake, which every futex waiter tolerates).
 *
 *        waiter w (wait)                       adder a (add reaching 0)
 *        ---------------                       ------------------------
 *        v = load word (acquire)               old = fetch_add(word, d<<1)
 *        v == 0: return                        new == WG_WAITERS:
 *        no flag: CAS v -> v|WG_WAITERS            CAS WG_WAITERS -> 0 (release)
 *        futex_wait(word, v|WG_WAITERS)            futex_wake(word, all)
 *        v = load word (acquire); loop
 *
 * Both sides are read-modify-writes (or futex checks) of the one word, so
 * their order is the word's modification order and no Dekker pair is
 * needed: either w's CAS comes first and a's add returns the flag, or a's
 * add comes first and w's CAS fails on the changed word and w re-reads it.
 * A waiter asleep on a word with the flag is woken by the CAS and wake
 * that follow every add that reaches zero; one whose futex_wait is checked
 * after the CAS finds the word changed.
 *
 * The flag stays set while the counter is above zero (a timed waiter that
 * gave up leaves it: the zero then costs one needless futex_wake).  If an
 * Add raises the counter again between a's add and its CAS, the CAS fails
 * and nobody is released: the waiters sleep on until the next zero, whose
 * adder clears the flag then (Go calls such an Add a misuse and panics).
 *
 * The second word of the public type is unused. */
#define WG_WAITERS 1u
#define WG_ONE     2u                   /* one unit of the counter */
#define WG_MAX     ((1 << 30) - 1)      /* the largest counter */

struct waitgroup {
    _Atomic uint32_t word;      /* counter << 1 | WG_WAITERS; RMW by Add and Wait */
    uint32_t unused;
};
CHECK_LAYOUT(struct waitgroup, ringo_waitgroup);

static inline int32_t wg_count(uint32_t word)
{
    return (int32_t)word >> 1;  /* arithmetic shift: the sign is bit 31 */
}

void ringo_waitgroup_add(ringo_waitgroup *pub, int delta)
{
    struct waitgroup *wg = (struct waitgroup *)pub;
    note_caller();
    if (delta > WG_MAX || delta < -WG_MAX)
        fatal("sync: WaitGroup delta out of range");
    /* release: makes everything before this Done visible to the Wait that
     * reads the 0 (the later adds, and the CAS that writes the 0, are
     * read-modify-writes: they continue this release sequence) */
    uint32_t old = fetch_add_release(&wg->word, (uint32_t)delta * WG_ONE);
    int64_t v = (int64_t)wg_count(old) + delta;
    if (v < 0)
        fatal("sync: negative WaitGroup counter");
    if (v > WG_MAX)
        fatal("sync: WaitGroup counter overflow");
    uint32_t now = old + (uint32_t)delta * WG_ONE;
    /* Counter at zero with waiters: clear the flag, then wake.  The CAS is
     * the last access to *wg (see above); it fails if an Add has raised
     * the counter again (nobody is released) or another adder that also
     * brought it to zero has cleared it (and woken them). */
    while (now == WG_WAITERS) {
        /* release: this adder's own writes, as its add's; the earlier
         * Dones reach the waiter through the release sequence */
        if (cas_release(&wg->word, &now, 0)) {
            futex_wake(&wg->word, INT_MAX);
            return;
        }
    }
}

void ringo_waitgroup_done(ringo_waitgroup *wg)
{
    ringo_waitgroup_add(wg, -1);
}

/* Sleep on the word until it is 0, setting the flag first; 0, or what
 * futex_wait_until returned.  !timed: no time limit (futex_wait). */
static int wg_wait(struct waitgroup *wg, bool timed, int64_t when)
{
    /* acquire: pairs with the release CAS to 0 (Done happens before Wait
     * returns) */
    uint32_t v = load_acquire(&wg->word);
    while (v != 0) {
        /* relaxed: the flag publishes nothing; the adder's RMW reads it */
        if (!(v & WG_WAITERS) &&
            !atomic_compare_exchange_weak_explicit(&wg->word, &v, v | WG_WAITERS,
                                                   memory_order_relaxed,
                                                   memory_order_relaxed)) {
            /* v is the new word; the acquire load below is skipped, so
             * take the ordering here if it is the 0 */
            if (v == 0)
                v = load_acquire(&wg->word);
            continue;
        }
        v |= WG_WAITERS;
        if (!timed)
            futex_wait(&wg->word, v, W_WAITGROUP);
        else {
            int r = futex_wait_until(&wg->word, v, W_WAITGROUP, when);
            if (r != 0)
                return r;
        }
        v = load_acquire(&wg->word);    /* acquire: as above */
    }
    return 0;
}

void ringo_waitgroup_wait(ringo_waitgroup *pub)
{
    note_caller();
    wg_wait((struct waitgroup *)pub, false, 0);
}

/* The same handshake as ringo_waitgroup_wait; the wait may also end at
 * `when`, the goroutine's deadline or its cancellation (futex.c "Timed
 * waits").  A goroutine checks the last two on entry, as every blocking
 * call does, even if the counter is zero; past that, a counter seen at
 * zero wins over `when`, and over the others when the wait ends for them
 * just as the last Done comes. */
int ringo_waitgroup_wait_until(ringo_waitgroup *pub, int64_t when)
{
    struct waitgroup *wg = (struct waitgroup *)pub;
    note_caller();
    struct rg *g = self_g();
    if (g) {
        int r = block_check(g);
        if (r)
            return r;
    }
    int r = wg_wait(wg, true, when);
    if (r == 0)
        return 0;
    /* The wait ended for the time, the deadline or a cancel.  A last Done
     * that has come meanwhile wins; if its adder has not yet cleared the
     * flag, wait for that (it is on its way, not blocked), so that this
     * return too comes after its last access. */
    uint32_t v = load_acquire(&wg->word);   /* acquire: as in wg_wait */
    while (v == WG_WAITERS) {
        futex_wait(&wg->word, v, W_WAITGROUP);
        v = load_acquire(&wg->word);        /* acquire: as in wg_wait */
    }
    return v == 0 ? 0 : r;
}

/* ---------------------------------------------------------------------- */
/* Once: 0 not done, RUNNING fn is running, RUNNING_WAITED and somebody
 * waits for it, DONE.  The first caller CASes 0 -> RUNNING and runs fn;
 * the others mark the word waited and sleep on it until DONE.  If fn never
 * returns (ringo_exit), the others wait for ever, as in Go. */
#define ONCE_RUNNING        1u
#define ONCE_RUNNING_WAITED 2u
#define ONCE_DONE           3u

struct once {
    _Atomic uint32_t state;     /* as above; CAS by callers, store by the runner */
    uint32_t unused;
};
CHECK_LAYOUT(struct once, ringo_once);

static void once_slow(struct once *o, void (*fn)(void *), void *arg)
{
    uint32_t s = 0;
    /* acquire on failure too: a DONE read here is what this caller
     * returns on (below), and it must pair with the runner's release
     * xchg, so that fn's effects come before our return. */
    if (atomic_compare_exchange_strong_explicit(&o->state, &s, ONCE_RUNNING, memory_order_acquire,
                                                memory_order_acquire)) {
        fn(arg);
        /* release: fn's effects before any Do that sees DONE returns */
        if (xchg_acq_rel(&o->state, ONCE_DONE) == ONCE_RUNNING_WAITED)
            futex_wake(&o->state, INT_MAX);
        return;
    }
    for (;;) {
        if (s == ONCE_DONE)
            return;
        /* Success only marks that a wake is needed (the runner's xchg
         * reads it); acquire for the failure's sake, whose value may be
         * DONE, returned on above as after the first CAS (a failure order
         * may not be stronger than the success's). */
        if (s == ONCE_RUNNING &&
            !atomic_compare_exchange_strong_explicit(&o->state, &s, ONCE_RUNNING_WAITED,
                                                     memory_order_acquire, memory_order_acquire))
            continue;
        futex_wait(&o->state, ONCE_RUNNING_WAITED, W_MUTEX); /* Go's Once waits on a mutex */
        s = load_acquire(&o->state); /* acquire: pairs with the release xchg to DONE */
    }
}

void ringo_once_do(ringo_once *pub, void (*fn)(void *), void *arg)
{
    struct once *o = (struct once *)pub;
    /* acquire: pairs with the release xchg to DONE */
    if (__builtin_expect(load_acquire(&o->state) == ONCE_DONE, 1))
        return;
    note_caller();
    once_slow(o, fn, arg);
}

/* ---------------------------------------------------------------------- */
/* Cond: a sequence number that Signal and Broadcast bump.  Wait reads it
 * while still holding the mutex, unlocks, and sleeps while it is unchanged,
 * so a signal given after the unlock (necessarily after the read) is never
 * missed.  A waiter that had read the number but not yet slept when a
 * Signal came also returns, so one Signal may end more than one Wait; as in
 * Go, callers re-check their condition in a loop.
 *
 *        waiter w (wait)                       signaller s
 *        ---------------                       -----------
 *        nwait++ (seq_cst)     (A) <--------> seq++ (seq_cst)         (B)
 *        q = load seq; unlock m                load nwait (seq_cst)
 *        futex_wait(seq, q)                    if > 0: futex_wake(seq, 1 or all)
 *
 * If s reads nwait == 0, w's increment and so w's read of seq come after
 * s's bump: w waits for a later signal, which is what it asked for. */
struct cond {
    _Atomic uint32_t seq;       /* bumped by every Signal and Broadcast */
    _Atomic uint32_t nwait;     /* goroutines and threads inside Wait; seq_cst */
};
CHECK_LAYOUT(struct cond, ringo_cond);

void ringo_cond_wait(ringo_cond *pub, ringo_mutex *m)
{
    struct cond *c = (struct cond *)pub;
    note_caller();
    fetch_add_seqcst(&c->nwait, 1);              /* (A) */
    uint32_t q = load_seqcst(&c->seq);
    mutex_unlock((struct mutex *)m);
    while (load_seqcst(&c->seq) == q)
        futex_wait(&c->seq, q, W_COND);
    fetch_sub_relaxed(&c->nwait, 1);             /* relaxed: late means only an extra wake */
    mutex_lock((struct mutex *)m);
}

static void cond_bump(struct cond *c, int n)
{
    fetch_add_seqcst(&c->seq, 1);                /* (B) */
    if (load_seqcst(&c->nwait))
        futex_wake(&c->seq, n);
}

void ringo_cond_signal(ringo_cond *c)
{
    note_caller();
    cond_bump((struct cond *)c, 1);
}

void ringo_cond_broadcast(ringo_cond *c)
{
    note_caller();
    cond_bump((struct cond *)c, INT_MAX);
}
