/*
 * futex.c — waiting on a 32-bit word: the layer every sync primitive
 * (sync.c) blocks through.
 *
 * Three kinds of waiter may sleep on one word at the same time:
 *   - a goroutine on a ring with futex ops (6.7+) submits
 *     IORING_OP_FUTEX_WAIT on its proc's ring and parks (ring_wait_op_on, not
 *     interruptible: sync ignores deadlines and cancellation, as in Go);
 *   - a goroutine on a ring without them parks in the runtime's wait table
 *     below (Go's semaRoot, in miniature);
 *   - a plain thread (no proc) calls futex(2) FUTEX_WAIT.
 * A waker first takes waiters on the word from the wait table, when it
 * holds any, then calls futex(2) FUTEX_WAKE for the rest of its count,
 * which reaches both the io_uring waiters and the threads (the kernel
 * queues them on the same futex hash bucket); and for one more while plain
 * threads wait in futex(2) (kernel_waiters), though the table took all.  Every wait may end spuriously (the value changed before
 * the kernel looked, a cancel request hit the SQE, a wake meant for an
 * earlier state); callers loop on their own condition.
 *
 * Futexes are private (FUTEX_PRIVATE_FLAG / FUTEX2_PRIVATE): sync objects in
 * memory shared between processes are not supported.
 *
 * Lost wake-ups.  Waiter: "value still val? then sleep"; waker: "change the
 * value, then wake".  In the kernel the check and the enqueue are atomic
 * under the futex bucket lock, for futex(2) and IORING_OP_FUTEX_WAIT alike
 * (an SQE still unsubmitted when the waker runs is checked when it is
 * submitted, and completes with -EAGAIN).  The wait table repeats the
 * kernel's argument with its own counter and locks:
 *
 *        goroutine w (table_wait)              waker k (futex_wake)
 *        ------------------------              --------------------
 *        lock bucket                           change *addr (RMW in sync.c)
 *        table_waiters++                       smp_mb()              (B)
 *        smp_mb()             (A) <--------->  load table_waiters
 *        load *addr                            if > 0: lock bucket,
 *        if == val: enqueue, park                      dequeue, ready()
 *        unlock bucket
 *
 * (A) pairs with (B): either k sees table_waiters > 0 (and then takes the
 * bucket lock, which w holds from its increment to its enqueue, so k finds
 * w queued), or w's load sees k's new value and w does not sleep.  "w
 * sleeps on the old value AND k skips the table" cannot happen.
 *
 * Deadlock detection.  A goroutine in IORING_OP_FUTEX_WAIT has an SQE in
 * flight, and p->inflight must count it (a DEFER_TASKRUN ring only posts the
 * completion inside an io_uring_enter, which the scheduler makes only while
 * something is in flight).  But a futex wait is not outside activity that
 * may end by itself: only another goroutine or a plain thread can end it.
 * So p->futex_waits counts these SQEs too, and the deadlock check treats a
 * proc whose in-flight SQEs are all futex waits as having nothing in
 * flight, as Go reports "all goroutines are asleep" when every goroutine
 * waits on a mutex.  The one gap is a wake already made by a goroutine
 * whose completion the woken goroutine's proc has not yet seen: the waker
 * adds the count FUTEX_WAKE returned to rt.futex_transit before its proc can
 * go idle, and the woken goroutine subtracts one when it resumes with 0, so
 * the check (which also needs rt.futex_transit == 0) never mistakes a wake
 * in transit for a deadlock.  A plain thread woken in futex(2) (its wait
 * returns 0 only for a FUTEX_WAKE, which counted it) subtracts its one
 * too: one that began to wait before the run has not turned the check off
 * (note_foreign counts calls made during the run), and its wake must not
 * leave the count above zero for good.
 *
 * Timed waits (futex_wait_until, for ringo_waitgroup_wait_until).  Besides
 * a wake, the wait ends at a time, and for a goroutine at its deadline and
 * on ringo_cancel, whichever comes first; futex_wait itself stays as above.
 *   - IORING_OP_FUTEX_WAIT: as I/O does (io.c, io_wait): the park is not
 *     interruptible, g->io_op is the wait's rop, and the timer at the
 *     earlier of the two times (op_deadline_fire, park.c) or a cancel
 *     (cancel_interrupt, cancel.c; the load of cancel_id after
 *     park_prepare, as in io_wait) submits an IORING_OP_ASYNC_CANCEL for
 *     it; the wait's own CQE, -ECANCELED or a wake's 0, ends it.  The
 *     kernel's futex hash bucket lock decides between a wake and the
 *     cancel: a waiter the wake counted was not cancelled, and the reverse.
 *     Such a wait is counted in p->futex_waits only until a cancel is
 *     issued for it (eng_cancel_op): from then on its CQE is coming by
 *     itself (with DEFER_TASKRUN, only in its proc's next enter), so its
 *     proc must not look idle to the deadlock check meanwhile.
 *   - The wait table: the park is interruptible, so the goroutine's timer
 *     (g_timer_fire) or cancel_interrupt may end it with -ETIMEDOUT or
 *     -ECANCELED; the record must then leave the bucket, and the goroutine
 *     be readied exactly once.  Wakers claim under the bucket lock:
 *
 *        goroutine w (table_wait_until)      waker k            timer/cancel t
 *        ------------------------------      -------            --------------
 *        lock; enqueue rec; unlock
 *        park (interruptible)                lock b             (w's proc)
 *                                            claim(w) ---- one CAS wins ---- claim(w)
 *                                            won: dequeue rec,  won: ready(w,
 *                                              unlock, ready(w,0)   -ETIMEDOUT/
 *                                            lost: leave rec,       -ECANCELED)
 *                                              unlock
 *        resumes with r
 *        r != 0: lock b, unlink rec, unlock
 *
 *     One claim wins, so w is readied once.  A record is in the bucket
 *     until whoever won has finished with it: a waker that wins dequeues
 *     it under the lock and reads it before ready(); when t wins, the
 *     record stays queued (wakers leave records they cannot claim) until w
 *     itself unlinks it under the lock before its frame goes, so no waker
 *     ever reads a dead record.  r == 0 only comes from a waker's ready().
 *     A waker does not count a record it could not claim, so a wake is not
 *     spent on a waiter that is leaving anyway.  The lost-wake-up argument
 *     above ((A)/(B)) is unchanged.
 *   - A plain thread: FUTEX_WAIT_BITSET with an absolute CLOCK_MONOTONIC
 *     timeout (ringo_now's clock), no deadline, no cancellation.
 *
 * Fallback.  Each ring is probed once (io_uring_get_probe_ring) on its
 * first futex wait; -EINVAL or -EOPNOTSUPP from the first wait also counts
 * as "not supported".  RINGO_NO_IO_URING_FUTEX=1 forces the wait table,
 * so the tests run both paths on a new kernel.
 *
 * Rejected.  Submitting each FUTEX_WAIT at once (an io_uring_enter per
 * wait) rather than with the proc's round: it spares the waits that a
 * change of the word in the meantime turns into -EAGAIN round trips, but
 * costs more than it saves (100 goroutines x 10,000 contended locks on 2
 * procs, back to back on a shared 2-vCPU machine: 55-86 ns per lock
 * against 30-32 deferred; noisy, to be redone in tests/bench).  IORING_OP_FUTEX_WAKE
 * for wakers on a proc: it saves the system call but the wake only leaves
 * with the proc's next submission, after everything else the proc runs
 * first, and a plain-thread waker needs futex(2) anyway.  A wait table for every goroutine wait (no io_uring
 * futexes at all): wakers would need it even on new kernels, and a thread
 * waiting in futex(2) and a goroutine in the table cannot be woken by one
 * operation.
 */
#include "config.h"

#include "internal.h"
#include "futex.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ringo.h"

/* liburing before 2.5 knows neither the opcodes nor the futex2 flags. */
#if !HAVE_DECL_IORING_OP_FUTEX_WAIT
#define IORING_OP_FUTEX_WAIT 51
#endif
#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 0x02
#endif
#ifndef FUTEX2_PRIVATE
#define FUTEX2_PRIVATE 128
#endif

/* p->futex_uring */
#define FU_UNPROBED 0
#define FU_PROBED   1   /* the probe lists the opcode; no completion seen yet */
#define FU_OK       2   /* a wait has completed without -EINVAL */
#define FU_NO      (-1)

struct futex_counts futex_counts;

void (*futex_woken_seam)(long r);
void (*futex_wake_seam)(long r);

/* Plain threads in (or entering) futex(2) waits.  A wake that goroutines
 * in the wait table take whole still wakes one of these: the table is
 * served first, so a thread that shares a word with goroutines would
 * otherwise wait as long as goroutines keep coming (a Mutex handed from
 * goroutine to goroutine), or miss the one signal meant for it (a Cond
 * whose waker found a goroutine that began to wait after it).  The waker
 * loads the count after its change of the word, the thread adds itself
 * before the kernel compares the word, each with a full barrier between
 * (the same handshake as table_waiters, "Lost wake-ups" at the top): so
 * the waker sees the thread, or the thread's futex(2) sees the change.
 * Counted per address hash, so that a thread asleep on one word costs the
 * wakes of other words nothing (words that share a slot: a wake for
 * nothing, harmless). */
#define KW_SLOTS 64
static _Atomic uint32_t kernel_waiters[KW_SLOTS];

static inline _Atomic uint32_t *kernel_waiters_of(_Atomic uint32_t *addr)
{
    return &kernel_waiters[((uintptr_t)addr >> 2) % KW_SLOTS];
}

static void kernel_waiter_in(_Atomic uint32_t *addr)
{
    fetch_add_relaxed(kernel_waiters_of(addr), 1);
    smp_mb(); /* (A') before the kernel's load of the word; pairs with (B) in futex_wake */
}

static void kernel_waiter_out(_Atomic uint32_t *addr)
{
    /* relaxed: an overestimate only wakes for nothing */
    fetch_sub_relaxed(kernel_waiters_of(addr), 1);
}

/* A wake counted in rt.futex_transit has reached its waiter.  Not held
 * at 0: the waker adds its count after FUTEX_WAKE has returned, so the
 * waiter may take its one off first, and the two must still cancel.
 * acq_rel: orders the decrement after the waiter's resumption, for the
 * check (which reads the count seq_cst under idle_lock). */
static void transit_done(void)
{
    fetch_sub_acq_rel(&rt.futex_transit, 1);
}

/* The count across runs.  A plain thread's two halves may fall in
 * different runs, or one before a run and one in it: a thread woken
 * before the run whose decrement comes after the run has started, a
 * waker that adds after it.  So the count is carried from run to run, the
 * halves cancel whenever they come, and a run starts with what the last
 * one left.  What a run can leave that never cancels: a plain thread's
 * wake, after a deadlock verdict, of a goroutine in IORING_OP_FUTEX_WAIT
 * that the verdict discarded (it never resumes to take its one off).  So
 * a run starts at 0 when that is safe (futex_run_start): when no plain
 * thread is inside a futex call, every half counted so far has its other
 * half counted too, and what is left is only such leftovers.
 * thread_calls counts plain threads from before their futex(2) call to
 * after their change of the count (thread_call_in, thread_call_out). */
static _Atomic int thread_calls;

static void thread_call_in(void)
{
    /* seq_cst: before this thread's futex(2) call and its change of the
     * count, against futex_run_start's loads (below) */
    fetch_add_seqcst(&thread_calls, 1);
}

static void thread_call_out(void)
{
    /* release: after this thread's change of the count */
    fetch_sub_release(&thread_calls, 1);
}

/* The caller of ringo_run, before the procs start.  The race it closes:
 * a thread that changes the count after our first load but has left
 * (thread_call_out) before our load of thread_calls; the CAS then fails
 * (the count moved), and the run keeps the count as it is.  One whose
 * increment we see keeps the count as it is too.  A CAS that succeeds
 * over changes that left the count where it was lost nothing: those
 * changes were whole wakes, which cancel.  All seq_cst: the three form
 * one order with thread_call_in's increment, which comes before the
 * thread's change.  Kept (not reset), the count may still hold such a
 * leftover: deadlock detection stays off for that run. */
void futex_run_start(void)
{
    int64_t v = load_seqcst(&rt.futex_transit);
    if (load_seqcst(&thread_calls) == 0)
        cas_seqcst(&rt.futex_transit, &v, 0);
}

/* A fork's child has only the thread that forked, which is in no futex
 * call: no half of a wake is left to come (runtime.c toucher_forked). */
void futex_forked(void)
{
    store_relaxed(&thread_calls, 0);
    store_relaxed(&rt.futex_transit, 0);
}

/* A plain thread's futex(2) wait returned r: 0 if a FUTEX_WAKE woke it,
 * which futex_wake counted in rt.futex_transit ("Deadlock detection"). */
static void thread_woken(long r)
{
    if (__builtin_expect(futex_woken_seam != NULL, 0))
        futex_woken_seam(r);
    if (r == 0)
        transit_done();
}

/* A plain thread's timed wait: 0 (woken, or spuriously) or -ETIMEDOUT. */
static int thread_wait_until(_Atomic uint32_t *addr, uint32_t val, int64_t when)
{
    fetch_add_relaxed(&futex_counts.thread, 1);
    if (when == RINGO_NEVER) {
        thread_call_in();
        kernel_waiter_in(addr);
        thread_woken(sys_futex(addr, FUTEX_WAIT_PRIVATE, val));
        kernel_waiter_out(addr);
        thread_call_out();
        return 0;
    }
    if (now_ns() >= when)
        return -ETIMEDOUT;
    /* FUTEX_WAIT_BITSET takes an absolute time, on CLOCK_MONOTONIC without
     * FUTEX_CLOCK_REALTIME: no drift over spurious returns.  when > now > 0. */
    struct timespec ts = { .tv_sec = when / 1000000000, .tv_nsec = when % 1000000000 };
    thread_call_in();
    kernel_waiter_in(addr);
    long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_BITSET_PRIVATE, val, &ts, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    int err = errno;
    thread_woken(r);
    kernel_waiter_out(addr);
    thread_call_out();
    return r < 0 && err == ETIMEDOUT ? -ETIMEDOUT : 0; /* EAGAIN, EINTR: re-check */
}

/* ---------------------------------------------------------------------- */
/* The wait table (fallback for kernels without io_uring futex ops).
 *
 * Waiter records live on the parked goroutine's stack, queued FIFO in the
 * bucket of their address; a bucket holds the waiters of every address that
 * hashes to it, as in Go's semtable.  A record stays valid until the waker
 * readies its goroutine, so the waker reads it before ready(); a timed
 * waiter that a timer or a cancel readied unlinks its record itself
 * ("Timed waits" at the top).
 *
 * TABLE_SIZE: 251 buckets, a prime as in Go's semTabSize; collisions only
 * cost a longer walk under a lock held for a few instructions. */
#define TABLE_SIZE 251

struct waiter {
    struct waiter *next;        /* under the bucket lock */
    _Atomic uint32_t *addr;     /* set before enqueueing; read-only after */
    struct rg *g;
    uint64_t token;             /* the park token the waker claims with */
};

struct bucket {
    pthread_mutex_t lock;
    struct waiter *head, *tail; /* under lock */
} __attribute__((aligned(64)));

static struct bucket table[TABLE_SIZE] = {
    [0 ... TABLE_SIZE - 1] = { .lock = PTHREAD_MUTEX_INITIALIZER },
};

/* Goroutines in (or entering) the table; an overestimate is harmless (a
 * waker looks in a bucket for nothing).  Incremented under the bucket lock
 * before the value check, decremented by the waiter after it resumes. */
static _Atomic uint32_t table_waiters;

static struct bucket *bucket_of(_Atomic uint32_t *addr)
{
    return &table[((uintptr_t)addr >> 2) % TABLE_SIZE];
}

static void table_wait(struct rg *g, _Atomic uint32_t *addr, uint32_t val, int reason)
{
    struct bucket *b = bucket_of(addr);
    struct waiter w = { .next = NULL, .addr = addr, .g = g };
    pthread_mutex_lock(&b->lock);
    fetch_add_relaxed(&table_waiters, 1);
    /* (A): the increment before the load of *addr; pairs with (B) in
     * futex_wake.  See "Lost wake-ups". */
    smp_mb();
    if (load_relaxed(addr) != val) {
        pthread_mutex_unlock(&b->lock);
        fetch_sub_relaxed(&table_waiters, 1); /* relaxed: only ever an overestimate */
        return;
    }
    w.token = park_prepare(g, reason, 0);
    store_relaxed(&g_wait(g)->wait_obj, (const void *)addr); /* for ringo_dump */
    if (b->tail)
        b->tail->next = &w;
    else
        b->head = &w;
    b->tail = &w;
    pthread_mutex_unlock(&b->lock);
    fetch_add_relaxed(&futex_counts.table, 1);
    park_commit(g, w.token, 0);
    fetch_sub_relaxed(&table_waiters, 1); /* relaxed: only ever an overestimate */
}

/* A timed wait (see "Timed waits" at the top): park interruptibly until
 * a waker's claim (0), the goroutine's timer at `until` (-ETIMEDOUT) or a
 * cancel (-ECANCELED).  until is at most g->deadline. */
static int table_wait_until(struct rg *g, _Atomic uint32_t *addr, uint32_t val, int reason,
                            int64_t until)
{
    struct bucket *b = bucket_of(addr);
    struct waiter w = { .next = NULL, .addr = addr, .g = g };
    pthread_mutex_lock(&b->lock);
    fetch_add_relaxed(&table_waiters, 1);
    smp_mb(); /* (A), as in table_wait */
    if (load_relaxed(addr) != val) {
        pthread_mutex_unlock(&b->lock);
        fetch_sub_relaxed(&table_waiters, 1); /* relaxed: only ever an overestimate */
        return 0;
    }
    w.token = park_prepare(g, reason, PARK_INTERRUPTIBLE);
    g_run(g)->wake_at = until; /* park_prepare set the deadline; until is that or earlier */
    store_relaxed(&g_wait(g)->wait_obj, (const void *)addr); /* for ringo_dump */
    if (b->tail)
        b->tail->next = &w;
    else
        b->head = &w;
    b->tail = &w;
    pthread_mutex_unlock(&b->lock);
    fetch_add_relaxed(&futex_counts.table, 1);
    int r = park_commit(g, w.token, PARK_INTERRUPTIBLE);
    if (r != 0) {
        /* The timer or a cancel won the claim: no waker took the record,
         * which is still queued; out with it before the frame goes. */
        pthread_mutex_lock(&b->lock);
        struct waiter **link = &b->head, *prev = NULL;
        while (*link != &w) {
            prev = *link;
            link = &prev->next;
        }
        *link = w.next;
        if (b->tail == &w)
            b->tail = prev;
        pthread_mutex_unlock(&b->lock);
    }
    fetch_sub_relaxed(&table_waiters, 1); /* relaxed: only ever an overestimate */
    return r;
}

/* Ready up to n goroutines waiting on addr; returns how many. */
static int table_wake(_Atomic uint32_t *addr, int n)
{
    struct bucket *b = bucket_of(addr);
    struct waiter *first = NULL, **tail = &first;
    int got = 0;
    pthread_mutex_lock(&b->lock);
    struct waiter **link = &b->head, *prev = NULL;
    while (*link && got < n) {
        struct waiter *w = *link;
        /* Claimed under the lock: a timed waiter whose timer or cancel won
         * stays queued until it unlinks itself ("Timed waits"); only a
         * claimed record leaves with us.  An untimed park is not
         * interruptible, so there the claim always wins. */
        if (w->addr == addr && claim(w->g, w->token)) {
            *link = w->next;
            if (b->tail == w)
                b->tail = prev;
            w->next = NULL;
            *tail = w;
            tail = &w->next;
            got++;
        } else {
            prev = w;
            link = &w->next;
        }
    }
    pthread_mutex_unlock(&b->lock);
    while (first) {
        struct waiter *w = first;
        first = w->next;        /* before ready(): the record dies with the wait */
        ready(w->g, 0);         /* claimed above */
    }
    return got;
}

unsigned futex_table_queued(_Atomic uint32_t *addr)
{
    struct bucket *b = bucket_of(addr);
    unsigned n = 0;
    pthread_mutex_lock(&b->lock);
    for (struct waiter *w = b->head; w; w = w->next)
        n += w->addr == addr;
    pthread_mutex_unlock(&b->lock);
    return n;
}

/* After a run, when no goroutine runs any more: drop the wait-table
 * records of goroutines that a deadlock left parked (their stacks are
 * gone). */
static void futex_run_end(void)
{
    for (size_t i = 0; i < TABLE_SIZE; i++) {
        pthread_mutex_lock(&table[i].lock);
        table[i].head = table[i].tail = NULL;
        pthread_mutex_unlock(&table[i].lock);
    }
    store_relaxed(&table_waiters, 0); /* relaxed: no goroutine runs; the next run starts after a join */
}

const struct rhooks futex_hooks = { .run_end = futex_run_end };

/* ---------------------------------------------------------------------- */

static bool env_on(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* Can goroutines on p wait with IORING_OP_FUTEX_WAIT?  Probed once per ring. */
static bool uring_futex(struct rproc *p)
{
    if (p->futex_uring == FU_UNPROBED) {
        p->futex_uring = FU_NO;
        if (!env_on("RINGO_NO_IO_URING_FUTEX")) {
            struct io_uring_probe *probe = seam_io_uring_get_probe_ring(&p->ring);
            if (probe) {
                if (io_uring_opcode_supported(probe, IORING_OP_FUTEX_WAIT))
                    p->futex_uring = FU_PROBED;
                io_uring_free_probe(probe);
            }
        }
    }
    return p->futex_uring > 0;
}

static void uring_prep(struct io_uring_sqe *sqe, _Atomic uint32_t *addr, uint32_t val)
{
    /* The SQE of io_uring_prep_futex_wait (liburing 2.5): fd carries the
     * futex2 flags, addr the word, off/addr2 the expected value, addr3 the
     * bitset mask; the op-flags field (futex_flags) and len must be 0. */
    io_uring_prep_rw(IORING_OP_FUTEX_WAIT, sqe, FUTEX2_SIZE_U32 | FUTEX2_PRIVATE,
                     (const void *)addr, 0, val);
    sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
}

static void uring_wait(struct rproc *p, struct rg *g, _Atomic uint32_t *addr,
                       uint32_t val, int reason)
{
    struct io_uring_sqe *sqe = ring_sqe(p);
    uring_prep(sqe, addr, val);
    owner_add(p->futex_waits, 1);
    fetch_add_relaxed(&futex_counts.uring, 1);
    int res = ring_wait_op_on(p, g, sqe, reason, (const void *)addr);
    owner_add(p->futex_waits, -1);
    if (res == 0) {
        /* Woken by a FUTEX_WAKE that counted us in rt.futex_transit. */
        transit_done();
        p->futex_uring = FU_OK;
    } else if (p->futex_uring == FU_PROBED && (res == -EINVAL || res == -EOPNOTSUPP)) {
        p->futex_uring = FU_NO; /* the caller loops and waits in the table */
    }
}

/* A timed IORING_OP_FUTEX_WAIT (see "Timed waits" at the top): 0 (woken,
 * or spuriously), -ETIMEDOUT once `until` has passed, -ECANCELED.  until is
 * at most g->deadline. */
static int uring_wait_until(struct rproc *p, struct rg *g, _Atomic uint32_t *addr,
                            uint32_t val, int reason, int64_t until)
{
    struct io_uring_sqe *sqe = ring_sqe(p);
    uring_prep(sqe, addr, val);
    struct rop op = { .rec.done = rop_done, .g = g, .res = 0, .futex_wait = true };
    op.token = park_prepare(g, reason, 0);
    store_relaxed(&g_wait(g)->wait_obj, (const void *)addr); /* for ringo_dump, relaxed as in park_prepare */
    io_uring_sqe_set_data(sqe, &op);
    owner_add(p->inflight, 1);
    owner_add(p->futex_waits, 1);
    fetch_add_relaxed(&futex_counts.uring, 1);
    g_wait(g)->io_op = &op;
    g_run(g)->wake_at = until; /* park_commit arms op_deadline_fire there */
    /* The load half of the cancel handshake, as in io_wait (io.c): a
     * ringo_cancel that found us not yet parked asked for nothing. */
    if (load_seqcst(&g->cancel_id) == load_relaxed(&g->id))
        eng_cancel_op(p, &op);
    park_commit(g, op.token, 0);
    g_wait(g)->io_op = NULL;
    if (op.futex_wait)
        owner_add(p->futex_waits, -1); /* no cancel was issued for it */
    int res = op.res;
    if (res == 0) {
        transit_done(); /* as in uring_wait */
        p->futex_uring = FU_OK;
        return 0;
    }
    if (res == -ECANCELED) {
        if (g_cancelled(g))
            return -ECANCELED; /* cancellation wins */
        if (until != RINGO_NEVER && now_ns() >= until)
            return -ETIMEDOUT;
        return 0;
    }
    if (p->futex_uring == FU_PROBED && (res == -EINVAL || res == -EOPNOTSUPP))
        p->futex_uring = FU_NO;
    return 0; /* -EAGAIN: the word had changed */
}

int futex_wait_until(_Atomic uint32_t *addr, uint32_t val, int reason, int64_t when)
{
    struct rproc *p = tls_proc;
    struct rg *g = p ? p->cur : NULL;
    if (!g) {
        note_foreign();
        return thread_wait_until(addr, val, when);
    }
    int r = block_check(g);
    if (r)
        return r;
    int64_t until = when < g_run(g)->deadline ? when : g_run(g)->deadline;
    if (until != RINGO_NEVER && now_ns() >= until)
        return -ETIMEDOUT;
    if (uring_futex(p))
        return uring_wait_until(p, g, addr, val, reason, until);
    return table_wait_until(g, addr, val, reason, until);
}

void futex_wait(_Atomic uint32_t *addr, uint32_t val, int reason)
{
    struct rproc *p = tls_proc;
    struct rg *g = p ? p->cur : NULL;
    if (!g) {
        note_foreign();
        fetch_add_relaxed(&futex_counts.thread, 1);
        thread_call_in();
        kernel_waiter_in(addr);
        /* EAGAIN, EINTR: the caller re-checks */
        thread_woken(sys_futex(addr, FUTEX_WAIT_PRIVATE, val));
        kernel_waiter_out(addr);
        thread_call_out();
        return;
    }
    if (uring_futex(p))
        uring_wait(p, g, addr, val, reason);
    else
        table_wait(g, addr, val, reason);
}

void futex_wake(_Atomic uint32_t *addr, int n)
{
    bool thread = !tls_proc;
    if (thread)
        note_foreign();
    int woken = 0;
    /* (B): the caller's change of *addr before the load of table_waiters;
     * pairs with (A) in table_wait. */
    smp_mb();
    if (load_relaxed(&table_waiters))
        woken = table_wake(addr, n);
    if (woken >= n && !load_relaxed(kernel_waiters_of(addr)))
        return;
    /* One at least for a thread in futex(2) (kernel_waiters): whoever
     * else it wakes finds the word as the table's waiters do. */
    fetch_add_relaxed(&futex_counts.kwake, 1);
    if (thread)
        thread_call_in();
    long r = sys_futex(addr, FUTEX_WAKE_PRIVATE, (uint32_t)(woken < n ? n - woken : 1));
    if (__builtin_expect(thread && futex_wake_seam != NULL, 0))
        futex_wake_seam(r);
    if (r > 0) {
        /* Before this proc can go idle (see "Deadlock detection");
         * acq_rel, read seq_cst by the check under idle_lock. */
        fetch_add_acq_rel(&rt.futex_transit, r);
    }
    if (thread)
        thread_call_out();
}
