/*
 * chan.c — channels: Go's chan.go in C.
 *
 * A channel is a lock, a ring buffer of cap elements, and two FIFO queues of
 * blocked operations (sudogs): senders and receivers.  The sudogs live on
 * the blocked callers' stacks.
 *
 * Invariants (under c->lock, which shuts the lock-free path: below), as
 * chan.go states them:
 *   - At least one of c->sendq and c->recvq is empty, except for an
 *     unbuffered channel with a single goroutine blocked in select on both
 *     sending and receiving on it (its two sudogs cannot match each other).
 *   - For a buffered channel: count > 0 implies recvq is empty (a receiver
 *     would have taken a value); count < cap implies sendq is empty.
 *   - A queued sudog's waiter may already have ended (claimed by another
 *     channel in a select, by its deadline or by cancellation); whoever
 *     dequeues it tries claim() and drops it if that fails.  So "is anyone
 *     waiting" always means "is there a sudog whose claim succeeds".
 *
 * Hand-off: a sender that finds a claimable receiver copies the value
 * straight into the receiver's destination (on the receiver's stack) and
 * wakes it; a receiver that finds a blocked sender on an unbuffered channel
 * copies from the sender's stack, and on a full buffered channel takes the
 * oldest buffered value and moves the sender's value into the buffer, so
 * FIFO order holds.  A wake on the same proc pushes the goroutine on the
 * local run queue — no system call; across procs it goes through the
 * target's inbox (runq.c).  On an unbuffered channel, a waiter whose proc
 * has nothing else to run waits in the channel's slot instead, and the
 * hand-off happens there ("Meeting in the slot", below).
 *
 * Ending a wait: the winner of claim() (a peer, close, the deadline timer,
 * ringo_cancel) is the only one to touch the waiter's result.  A waiter that
 * ends for any reason other than a peer (timeout, cancel) relocks the
 * channel and unlinks its sudog if it is still queued.
 *
 * Lock: a three-state futex lock (0 free, 1 held, 2 held and contended).
 * Critical sections are a few copies long; a proc that finds the lock held
 * spins briefly, then sleeps in futex(2) — blocking the proc thread, as Go's
 * runtime lock blocks its M, since the holder is about to release it.
 *
 * The lock-free path.  A buffered channel's send and receive take the
 * lock only when someone waits on it or it is closed; otherwise each side
 * works on its own cache line (c->sendx, c->recvx: chan.h), so a producer
 * and a consumer on two procs share no lock, and a value costs them one
 * locked instruction each and, amortised, a fraction of the slot's cache
 * line: the receiver reads the tail only when it has taken every value it
 * knew of, and then takes every value published meanwhile at once (the
 * sender likewise reads the head only when the buffer looked full).
 *
 *   fast send:  CAS sendx from (t, no flags) to (t, BUSY)      (claim)
 *               room?  t - shead < cap, else reread shead from recvx
 *               copy the value into slot spos
 *               store sendx = (t+1, no flags)                  (publish)
 *   fast recv:  the mirror image on recvx: claim, a value?  head <
 *               rtail, else reread rtail from sendx; copy it out; publish
 *               head+1.
 *
 * BUSY makes the holder the only writer of its side word and of its side's
 * private fields (spos and shead, or rpos and rtail): other operations of
 * the same side fail the claim and, after a short spin, take the lock.
 * Publishing is a plain release store for that reason: nobody else may
 * change the word while BUSY is set.  A value is published (visible to
 * receivers, counted by ringo_chan_len) when its send returns.
 *
 * The gate.  Whoever holds the lock shuts both gates (sets GATE in sendx,
 * then in recvx, each by a CAS from a value without BUSY: it waits for an
 * operation in progress to publish), so a critical section owns the buffer,
 * both indices and the four private fields.  chan_unlock opens them (one
 * release store per side) only if nobody waits and the channel is open:
 * while a sudog is queued, or after a close, every operation takes the
 * lock, and Go's rules are the locked code's, unchanged.  And only after a
 * critical section that moved values in or out of the buffer (c->reopen):
 * a hand-off to a parked peer leaves them shut, since a request and its
 * reply would otherwise open and shut them on every message (the peer
 * comes back to wait again); the next buffered operation under the lock
 * opens them.  A shut gate is never wrong, only slower.  An unbuffered
 * channel's gates stay shut from its making.
 *
 * Why no wake-up is lost.  A receiver that finds the buffer empty takes the
 * lock, shuts the gate, and only then decides to wait: the CAS that sets
 * GATE in sendx reads the tail in the same atomic step, so the timeline
 *
 *     sender (proc 0)                    receiver (proc 1)
 *     CAS sendx (t, BUSY)                fast recv: head == t, empty
 *     copy value to slot t               lock; CAS sendx (t, GATE) fails:
 *     store sendx (t+1)                    BUSY; spin
 *                                        CAS sendx (t+1, GATE) succeeds
 *                                        head < t+1: take the value, no wait
 *
 * ends in one of two ways only: the sender's publish precedes the gate's
 * CAS in sendx's modification order (the receiver sees t+1 and does not
 * wait), or the gate's CAS precedes the sender's claim (the claim fails on
 * GATE, and the sender takes the lock, where it finds the queued receiver
 * and hands the value over).  The mirror timeline holds for a sender that
 * finds the buffer full and a receiver freeing a slot.  A stale sudog
 * (its waiter ended elsewhere) keeps the gate shut until it is unlinked:
 * slower, never wrong.
 *
 * Orders.  A claim is an acquire CAS: it pairs with the release store of
 * the previous publish or gate opening, so the claimer sees the private
 * fields as they were left and the values of the slots it is about to use.
 * A publish and a gate opening are release stores: the value copied into
 * a slot (or out of it) happens before the other side, reading the index
 * with an acquire load, reads that slot (or overwrites it).  A gate's CAS
 * is acquire for the same reason as a claim.
 *
 * Releasing.  C has no collector: the party that completes the other
 * half of an operation may release the channel's last reference at once
 * and free it, as with a done channel (capacity 1, the sender holds no
 * reference: it sends and exits, the receiver receives and releases).  So
 * no operation may touch the channel after the moment its effect can be
 * seen by such a party.  Path by path:
 *
 *   - A fast send or receive: its publish (the release store that clears
 *     BUSY) is its last store to c; after it the caller returns.  A
 *     FAST_WAIT gives the side back unchanged: nothing to see.
 *
 *   - Any locked operation, when the gate stays shut: until the unlock's
 *     exchange, a fast operation finds GATE and takes the lock (it waits
 *     for the exchange), and a watch (chan_spin) only reads and goes to
 *     the fast path or the lock.  So the exchange is the publish and the
 *     last store to c; the futex wake after it, if a locker sleeps, names
 *     the address to the kernel only.  Waking a parked peer comes after
 *     the unlock, and touches the peer's waiter (its stack) and goroutine,
 *     never c.
 *
 *   - A locked operation that opens the gate (chan_unlock_open): the gate
 *     opens before the lock is given back (the other order would let the
 *     next holder work with the gate open), and the moment the receive
 *     gate opens, a fast receiver can take the value:
 *
 *         sender S (proc 1), lock held          receiver R (proc 0)
 *         tail+1 in sendx (gate shut)
 *         store recvx (head, open)              claim recvx: succeeds
 *                                               sendx says tail+1: take it
 *                                               return; release: refs 2->1
 *         store sendx (tail+1, open)
 *         exchange lock, 0
 *         release: refs 1->0, free
 *
 *     Without the reference S took (refs+1) before opening, R's release
 *     would free c and S's last two stores would land in freed memory.
 *     The mirror (R frees a slot under the lock, a fast sender fills it
 *     and releases) is the same timeline.
 *
 *   - ringo_select: a case performed by its first pass is a fast
 *     operation, above.  A case performed under the locks publishes at
 *     its channel's unlock, which comes after the other channels', so a
 *     peer that sees it may release those too.  A select woken by a peer
 *     or a close does not lock the channel of the case that fired again
 *     (unless another of its cases waits there): that peer may have
 *     released it (select.c).  It does lock its other channels again, to
 *     leave their queues, so those must stay referenced until it returns
 *     (ringo_select(3), NOTES): its caller's references, which a peer
 *     must not drop for it.
 *
 *   - Close publishes at its unlock (it never opens the gate), then wakes
 *     the waiters it claimed, as above; it zeroes a receive's value
 *     itself, under the lock.  A wait that ends by its deadline or
 *     cancellation relocks to unlink its sudog: its own operation, not
 *     yet complete, so no peer has a reason to release.
 *
 *   - ringo_chan_len and ringo_chan_cap read; they complete nothing, and a
 *     length is no reason to release (ringo_chan_len(3)).
 *
 * Rejected: a fully lock-free channel (Go tried, golang.org/issue/8899: the
 * select protocol and close make it much more complex for a small gain);
 * per-slot sequence numbers (Vyukov's bounded queue) for many senders
 * without the lock: twice the memory per slot and a second barrier per
 * value for the waiter check, while one producer and one consumer, the
 * case that matters across procs, never contend for a side; a lock per
 * proc (a channel is shared across procs by nature).
 */
#include "config.h"

#include "chan.h"
#include "futex.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ringo.h"

/* Spins on a held channel lock before sleeping in the kernel.  The holder
 * runs a few dozen instructions; a futex round trip costs microseconds. */
#define CHAN_LOCK_SPINS 200

/* The longest watch of a blocking operation before it parks, ns
 * ("Waiting briefly for the other side", below). */
#define CHAN_SPIN_NS 2000

/* Largest element, per API.md. */
#define ELEM_MAX 65536

void chan_lock_slow(ringo_chan *c)
{
    uint32_t v;
    for (int i = 0; i < CHAN_LOCK_SPINS; i++) {
        cpu_relax();
        v = 0;
        /* acq_rel: as in chan_lock */
        if (load_relaxed(&c->lock) == 0 && cas_acq_rel(&c->lock, &v, 1))
            return;
    }
    /* Mark contended and sleep until we take it from 0.  acq_rel: taking
     * the lock this way must acquire like the CAS. */
    while (xchg_acq_rel(&c->lock, 2) != 0)
        sys_futex(&c->lock, FUTEX_WAIT_PRIVATE, 2);
}

void chan_wake_locker(ringo_chan *c)
{
    sys_futex(&c->lock, FUTEX_WAKE_PRIVATE, 1);
}

/* Spins on a side's BUSY bit before yielding the CPU: its holder runs a
 * dozen instructions, unless its thread was preempted in between. */
#define GATE_SPINS 100
/* Spins of a fast operation on its side's BUSY bit (another operation of
 * the same side) before it takes the lock instead. */
#define SIDE_SPINS 20

/* Shut one side's gate: set GATE by a CAS from a value without BUSY. */
static void gate_shut_side(_Atomic uint64_t *side)
{
    uint64_t v = load_relaxed(side);
    for (unsigned i = 0;; i++) {
        if (v & SIDE_BUSY) {
            if (i < GATE_SPINS) {
                cpu_relax();
            } else {
                sched_yield(); /* the holder's thread may be preempted */
                i = 0;
            }
            v = load_relaxed(side);
            continue;
        }
        /* acquire: pairs with the release store of the last publish, so
         * the lock holder sees its slot and private fields */
        if (atomic_compare_exchange_weak_explicit(side, &v, v | SIDE_GATE,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return;
    }
}

/* Called by chan_lock: the send side first, then the receive side.  While
 * the send gate is shut and the receive gate not yet, a fast receiver may
 * still read the tail: the lock holder changes nothing until both are. */
void chan_gate_shut(ringo_chan *c)
{
    gate_shut_side(&c->sendx);
    gate_shut_side(&c->recvx);
}

/* Open both gates: the private caches restart from the exact indices. */
static void chan_gate_open(ringo_chan *c)
{
    uint64_t tail = chan_tail(c), head = chan_head(c);
    c->shead = head;
    c->rtail = tail;
    /* release: publishes the critical section's slot copies, indices and
     * private fields to the next claim (acquire CAS) or index read
     * (acquire load) of either side */
    store_release(&c->recvx, head << SIDE_SHIFT);
    store_release(&c->sendx, tail << SIDE_SHIFT);
}

/* chan_unlock when nobody waits, the channel is open and the critical
 * section moved values through the buffer: open the gate, give the lock
 * back, under a reference of our own ("Releasing"). */
void chan_unlock_open(ringo_chan *c)
{
    /* relaxed: we hold the lock of a channel in use, so refs >= 1 and
     * nobody can free c before our release below; the release's acq_rel
     * orders our stores before whichever free comes */
    fetch_add_relaxed(&c->refs, 1);
    chan_gate_open(c);
    /* acq_rel exchange: as in chan_unlock */
    if (xchg_acq_rel(&c->lock, 0) == 2)
        chan_wake_locker(c);
    chan_unref(c); /* may be the last: then it frees c */
}

/* Claim a side for one fast operation: true with *v its index (flags
 * clear).  False if the gate is shut, or the side stayed busy. */
static inline __attribute__((always_inline)) bool side_claim(_Atomic uint64_t *side, uint64_t *v)
{
    uint64_t cur = load_relaxed(side);
    for (unsigned i = 0;; i++) {
        if (cur & SIDE_GATE)
            return false;
        if (!(cur & SIDE_BUSY)) {
            /* acquire: pairs with the release store of the previous
             * publish or gate opening (see "Orders") */
            if (cas_acquire(side, &cur, cur | SIDE_BUSY)) {
                *v = cur;
                return true;
            }
            continue; /* cur reloaded */
        }
        if (i >= SIDE_SPINS)
            return false;
        cpu_relax();
        cur = load_relaxed(side);
    }
}

/*
 * Prefetching.  Every fast operation is a locked instruction, which waits
 * for the operation's own copy to reach the cache; across procs the slot's
 * line is the other side's (it wrote or read it last), so without help
 * each new line would cost its whole transfer, in turn, on each side.  So
 * each side asks for the line PREFETCH_BYTES ahead of its slot (for
 * writing on the send side), when that slot is known to be its own
 * already: free for the sender (below shead + cap), published for the
 * receiver (below rtail).  It does not steal a line the other side is
 * still using.  The address is not wrapped at the end of the buffer: a
 * prefetch never faults, and past the end it only fetches a line for
 * nothing, on 1 value in cap / (PREFETCH_BYTES / elem_size).
 */
#define PREFETCH_BYTES 512

/* Ask for a line in the state for writing (exclusive).  GCC emits
 * PREFETCHW only with -mprfchw; the instruction sits in an opcode space
 * that x86-64 CPUs without it run as a no-op, so it is spelled out. */
static inline void prefetch_write(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("prefetchw %0" : : "m"(*(const char *)p));
#else
    __builtin_prefetch(p, 1);
#endif
}

/* The fast send (see "The lock-free path"). */
static inline __attribute__((always_inline)) enum fast chan_send_fast(ringo_chan *c, const void *elem)
{
    uint64_t v;
    if (!side_claim(&c->sendx, &v))
        return FAST_LOCK;
    uint64_t tail = v >> SIDE_SHIFT;
    if (tail - c->shead >= c->cap) {
        /* acquire: pairs with the receiver's publish (release), so its
         * copy out of the slot we are about to reuse happened before */
        c->shead = load_acquire(&c->recvx) >> SIDE_SHIFT;
        if (tail - c->shead >= c->cap) {
            /* release: gives back the side as we found it; nobody else
             * writes the word while BUSY is set */
            store_release(&c->sendx, v);
            return FAST_WAIT;
        }
    }
    char *slot = c->buf + c->spos * c->elem_size;
    if (tail + c->ahead - c->shead < c->cap)
        prefetch_write(slot + PREFETCH_BYTES);
    elem_copy(slot, elem, c->elem_size);
    c->spos = chan_next_pos(c, c->spos);
    /* release: publishes the value in the slot (to a receiver's acquire
     * load of sendx) and spos/shead (to the next claim) */
    store_release(&c->sendx, v + SIDE_ONE);
    return FAST_DONE;
}

/* The fast receive, its mirror image. */
static inline __attribute__((always_inline)) enum fast chan_recv_fast(ringo_chan *c, void *elem)
{
    uint64_t v;
    if (!side_claim(&c->recvx, &v))
        return FAST_LOCK;
    uint64_t head = v >> SIDE_SHIFT;
    if (head == c->rtail) {
        /* acquire: pairs with the sender's publish (release), so the
         * values up to the tail are in their slots */
        c->rtail = load_acquire(&c->sendx) >> SIDE_SHIFT;
        if (head == c->rtail) {
            store_release(&c->recvx, v); /* release: as in chan_send_fast */
            return FAST_WAIT;
        }
    }
    char *slot = c->buf + c->rpos * c->elem_size;
    if (c->rtail - head > c->ahead)
        __builtin_prefetch(slot + PREFETCH_BYTES, 0);
    copy_elem(c, elem, slot);
    c->rpos = chan_next_pos(c, c->rpos);
    /* release: our copy out of the slot happens before a sender, reading
     * the head with an acquire load, overwrites it */
    store_release(&c->recvx, v + SIDE_ONE);
    return FAST_DONE;
}

/* One select case by the lock-free path (select.c "First pass").  A peek
 * first, so that a case that would wait costs two loads, not a claim:
 * the own side's index, then the other's.  Both indices only grow and
 * the head never passes the tail, so "empty" (head == tail, for a
 * receive) or "full" (tail - head >= cap, for a send) seen this way held
 * at the moment of the first load: exact, for a select of one case.  The
 * first load is acquire so that the second is not made before it; the
 * second is relaxed (the claim that follows acquires). */
enum fast chan_select_fast(ringo_chan *c, bool send, void *elem)
{
    if (!c->cap)
        return FAST_LOCK; /* gates shut for good, as in chan_op */
    uint64_t mine = load_acquire(send ? &c->sendx : &c->recvx);
    uint64_t other = load_relaxed(send ? &c->recvx : &c->sendx);
    if ((mine | other) & SIDE_GATE)
        return FAST_LOCK;
    uint64_t n = send ? (mine >> SIDE_SHIFT) - (other >> SIDE_SHIFT)
                      : (other >> SIDE_SHIFT) - (mine >> SIDE_SHIFT);
    if (send ? n >= c->cap : n == 0)
        return FAST_WAIT;
    return send ? chan_send_fast(c, elem) : chan_recv_fast(c, elem);
}

/* ---------------------------------------------------------------------- */
/* Waiters */

/* The plain-thread halves of waiter_wake and waiter_block (chan.h). */
/* A select's sudog was claimed (waitq_take, c locked): its other sudogs
 * on the same channel are unlinked here, while c is locked, so that the
 * select, once woken, need not lock c again.  It must not: whoever
 * completed the case may release c the moment it is done (ringo_select(3)
 * NOTES).  The sudogs are on the select's stack, which lives until it is
 * woken, after this. */
void waiter_unlink_dups(struct sudog *fired)
{
    struct waiter *w = fired->w;
    for (unsigned k = 0; k < w->dup_n; k++) {
        struct sudog *o = &w->dup_sds[k];
        if (o != fired && o->c == fired->c)
            waitq_remove(o);
    }
}

void waiter_wake_thread(struct waiter *w, int result)
{
    w->result = result;
    /* release: publishes result and the copied value to the sleeper's
     * acquire load in waiter_block_thread.  After this store the waiter
     * may return and its stack frame vanish: only the futex call below
     * still names the address, and FUTEX_WAKE on a stale address is
     * harmless. */
    store_release(&w->futex, 2);
    sys_futex(&w->futex, FUTEX_WAKE_PRIVATE, 1);
}

int waiter_block_thread(struct waiter *w)
{
    uint32_t v;
    /* acquire: pairs with the release store in waiter_wake_thread */
    while ((v = load_acquire(&w->futex)) != 2)
        sys_futex(&w->futex, FUTEX_WAIT_PRIVATE, v);
    return w->result;
}

int block_forever(int reason)
{
    struct rg *g = self_g();
    if (!g) {
        note_foreign();
        _Atomic uint32_t never = 0;
        for (;;)
            sys_futex(&never, FUTEX_WAIT_PRIVATE, 0);
    }
    uint64_t token = park_prepare(g, reason, PARK_INTERRUPTIBLE);
    return park_commit(g, token, PARK_INTERRUPTIBLE);
}

uint32_t fast_rand(void)
{
    static __thread uint64_t thread_state __attribute__((tls_model("initial-exec")));
    struct rproc *p = tls_proc;
    uint64_t *s = p ? &p->rng : &thread_state;
    if (*s == 0)
        *s = (uint64_t)now_ns() * 0x9e3779b97f4a7c15ull | 1;
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return (uint32_t)(x >> 32);
}

/* ---------------------------------------------------------------------- */
/* Queues */

void waitq_push(struct waitq *q, struct sudog *sd)
{
    sd->next = NULL;
    sd->prev = q->last;
    if (q->last)
        q->last->next = sd;
    else
        q->first = sd;
    q->last = sd;
    sd->q = q;
    sd->queued = true;
}

/* A spinner that leaves the slot (chan.c "Meeting in the slot") came
 * before everyone queued: it goes first. */
static void waitq_push_front(struct waitq *q, struct sudog *sd)
{
    sd->prev = NULL;
    sd->next = q->first;
    if (q->first)
        q->first->prev = sd;
    else
        q->last = sd;
    q->first = sd;
    sd->q = q;
    sd->queued = true;
}

/* ---------------------------------------------------------------------- */
/* Core operations with the lock held */

/* ---------------------------------------------------------------------- */
/* Public API */

ringo_chan *ringo_chan_make(size_t elem_size, size_t cap)
{
    if (elem_size > ELEM_MAX) {
        errno = EINVAL;
        return NULL;
    }
    if (cap && elem_size && cap > (SIZE_MAX - sizeof(ringo_chan)) / elem_size) {
        errno = ENOMEM;
        return NULL;
    }
    ringo_chan *c = seam_aligned_alloc(_Alignof(ringo_chan), sizeof *c);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    memset(c, 0, sizeof *c);
    if (cap) {
        /* Elements of size 0 take no room: any capacity is one byte,
         * never read (Go's chan struct{} of any capacity). */
        c->buf = seam_malloc(elem_size ? cap * elem_size : 1);
        if (!c->buf) {
            free(c);
            errno = ENOMEM;
            return NULL;
        }
    }
    c->elem_size = elem_size;
    c->cap = cap;
    /* A buffer of PREFETCH_BYTES or less has no line ahead: ahead = cap
     * makes both tests in the fast path fail (chan.c "Prefetching"). */
    c->ahead = PREFETCH_BYTES / (elem_size ? elem_size : 1);
    if (c->ahead >= cap || !elem_size)
        c->ahead = cap; /* size 0: the one-byte buffer has no line ahead either */
    store_relaxed(&c->refs, 1);
    /* relaxed: nobody else knows c yet.  Unbuffered: shut for good. */
    store_relaxed(&c->sendx, cap ? 0 : SIDE_GATE);
    store_relaxed(&c->recvx, cap ? 0 : SIDE_GATE);
    store_relaxed(&c->sspin, CHAN_SPIN_NS);
    store_relaxed(&c->rspin, CHAN_SPIN_NS);
    return c;
}

ringo_chan *ringo_chan_retain(ringo_chan *c)
{
    if (c)
        fetch_add_relaxed(&c->refs, 1); /* relaxed: the caller already holds a reference */
    return c;
}

void chan_free(ringo_chan *c)
{
    free(c->buf);
    free(c);
}

void chan_unref(ringo_chan *c)
{
    /* acq_rel: every use through other references happens before the free */
    if (fetch_sub_acq_rel(&c->refs, 1) == 1)
        chan_free(c);
}

void ringo_chan_release(ringo_chan *c)
{
    if (!c)
        return;
    /* relaxed: set before c was handed to anyone, cleared only by whoever
     * takes the timer; timerchan_release looks again, with the exchange
     * that decides (timerchan.c "Unreferenced"). */
    if (__builtin_expect(load_relaxed(&c->timer) != NULL, 0))
        timerchan_release(c);
    else
        chan_unref(c);
}

/*
 * Waiting briefly for the other side.  A blocking operation that finds the
 * buffer empty (full) watches the other side's index for up to
 * CHAN_SPIN_NS before it takes the lock to queue and park: a producer and
 * a consumer on two procs then meet in the buffer, not through a park and
 * a cross-proc wake (hundreds of ns, and 23-50 us when the proc has gone
 * to sleep), and the watcher looks at the index at growing intervals, so
 * the other side runs on with its line to itself and the watcher comes
 * back with a batch.  The spin is shorter than the one its proc would
 * make after the park (proc_sleep), so it does not add to what an idle
 * proc burns; and it is skipped where it cannot help: with one proc
 * (nobody else runs meanwhile, but a plain thread), when other goroutines
 * of this proc are ready to run, and on valgrind (one thread at a time).
 * Reads only: relaxed loads, the fast path that follows acquires.
 *
 * Adaptive, per side of each channel, like the idle proc's spin: a watch
 * that ends in the other side's move restores the full CHAN_SPIN_NS; one
 * that runs out halves it, down to nothing below CHAN_SPIN_MIN_NS, after
 * which one wait in CHAN_SPIN_PROBE_EVERY watches in full again.  So a
 * request and its reply over buffered channels, whose other side answers
 * slower than a watch, soon stop paying for watches that cannot succeed.
 * The budget and probe count are hints: relaxed, written without a
 * read-modify-write, a lost update costs one watch more or less.
 */
#define CHAN_SPIN_MIN_NS 250
#define CHAN_SPIN_PROBE_EVERY 16
#define CHAN_SPIN_GAP_MAX 32 /* pauses between two looks, at most */
#define CHAN_SPIN_BATCH 32   /* values (or free slots) worth waiting for */

static __attribute__((noinline)) bool chan_spin(ringo_chan *c, bool send)
{
    struct rproc *p = tls_proc;
    if (rt.valgrind || (p && (rt.nprocs < 2 || runq_count(p) > 0)))
        return false;
    _Atomic uint64_t *mine = send ? &c->sendx : &c->recvx;
    _Atomic uint64_t *other = send ? &c->recvx : &c->sendx;
    _Atomic uint32_t *spin = send ? &c->sspin : &c->rspin;
    _Atomic uint32_t *probe = send ? &c->sprobe : &c->rprobe;
    uint32_t budget = load_relaxed(spin); /* relaxed: a hint (above) */
    if (budget == 0) {
        uint32_t n = load_relaxed(probe) + 1;
        store_relaxed(probe, n);
        if (n % CHAN_SPIN_PROBE_EVERY)
            return false;
        budget = CHAN_SPIN_NS;
    }
    /* relaxed: a hint; what we saw is what we wait to change */
    uint64_t seen = load_relaxed(other) >> SIDE_SHIFT, last = seen;
    uint64_t want = c->cap / 2 < CHAN_SPIN_BATCH ? c->cap / 2 : CHAN_SPIN_BATCH;
    int64_t until = now_ns() + budget;
    for (unsigned gap = 4;; gap = gap < CHAN_SPIN_GAP_MAX ? gap * 2 : gap) {
        for (unsigned i = 0; i < gap; i++)
            cpu_relax();
        uint64_t o = load_relaxed(other); /* relaxed: as above */
        uint64_t idx = o >> SIDE_SHIFT;
        /* A batch is there, or the other side moved and has stopped */
        if (idx - seen >= want || (idx != seen && idx == last))
            break;
        last = idx;
        if ((o | load_relaxed(mine)) & SIDE_GATE)
            return false; /* the lock decides now (a close, a waiter) */
        if (now_ns() >= until) {
            if (idx != seen)
                break;
            budget /= 2;
            store_relaxed(spin, budget >= CHAN_SPIN_MIN_NS ? budget : 0);
            return false;
        }
    }
    if (budget != CHAN_SPIN_NS || load_relaxed(spin) != CHAN_SPIN_NS)
        store_relaxed(spin, CHAN_SPIN_NS);
    return true;
}

/* Common tail of a blocking send or receive: queue a sudog (at the front
 * for a spinner that left the slot) and wait. */
static inline __attribute__((always_inline)) int chan_block(ringo_chan *c, struct waitq *q, void *elem, int reason, bool is_recv, bool front)
{
    struct waiter w;
    struct sudog sd = { .w = &w, .c = c, .elem = elem, .case_idx = -1 };
    size_t elem_size = c->elem_size; /* c is not touched after a successful wake */
    waiter_init(&w, reason);
    if (front)
        waitq_push_front(q, &sd);
    else
        waitq_push(q, &sd);
    struct rg_wait *gw = w.g ? g_wait(w.g) : NULL;
    if (gw) {
        store_relaxed(&gw->wait_obj, c); /* for ringo_dump, relaxed as in park_prepare */
        gw->sudogs = &sd;
        gw->nsudogs = 1;
    }
    chan_unlock(c);
    int r = waiter_block(&w);
    if (gw) {
        gw->sudogs = NULL;
        gw->nsudogs = 0;
    }
    if (w.fired == &sd) {
        if (sd.success)
            return 0;
        /* woken by close */
        if (is_recv && elem && elem_size)
            memset(elem, 0, elem_size);
        return -EPIPE;
    }
    /* Deadline or cancellation: leave the queue if nobody took us off. */
    chan_lock(c);
    waitq_remove(&sd);
    chan_unlock(c);
    return r;
}

/*
 * Meeting in the slot.  A blocked operation on an unbuffered channel
 * queues a sudog on its caller's stack and parks; the peer that comes
 * takes the channel's lock and queue (two lines), the sudog and the
 * waiter (a third), the caller's destination (a fourth) and its park
 * word (a fifth), and every one of them goes back to the caller's CPU when
 * it runs on: across procs, eight cache-line transfers for one value,
 * even when the caller spins in place rather than switching (runq.c
 * "Lines of a hand-off").  But a caller that spins needs no sudog: the
 * peer needs only to know that it is there and where the value goes.
 * So a goroutine whose operation would block, and whose proc would spin
 * (gspin_ok: nothing else to run, more than one proc), waits in the
 * channel's slot instead: a state word and a 16-byte value on the lock's
 * own line (struct ringo_chan), which it watches.  The peer claims the
 * slot with one CAS (without the lock: the state says all it needs),
 * copies the value in or out, and marks it DONE; the spinner sees DONE,
 * copies a received value out and empties the slot.  One line moves to
 * the peer and back: a hand-off costs two transfers, where it cost eight.
 *
 *     spinner R (proc B), lock held            peer S (proc A, any thread)
 *     ------------------------------           ---------------------------
 *     slot EMPTY, R's queue empty,
 *       gspin_ok: refs + 1                (1)
 *     store_release slot = RECV (or SEND,
 *       its value in slot_val first)      (2)
 *     unlock; loop: load_acquire slot     (3)  CAS slot RECV -> BUSY      (4)
 *       DONE/CLOSED: take the value (or         copy the value in (out)
 *         the close), store_release slot        store_release slot = DONE (5)
 *         EMPTY, release refs             (6)
 *       BUSY: keep watching
 *       stop (other work, time, cancel):
 *         lock; CAS RECV -> EMPTY         (7)
 *           won: refs - 1, queue at the front, park as usual
 *           lost: unlock, wait for DONE or CLOSED
 *
 *   - Only the lock holder moves the slot out of EMPTY (1-2), and only
 *     when the spinner's own queue is empty and the other one has nobody
 *     to take (the locked operation failed): a spinner is the oldest
 *     waiter of its side, and a peer serves it first (slot_take before
 *     the queue, with the lock or without).  One that leaves (7) goes to
 *     the front of the queue, where its age puts it.
 *   - (4), (7) and a close race on the state word by CAS: whoever moves
 *     it out of RECV (SEND) decides.  A close claims it as a peer does
 *     (BUSY, under the lock) and stores CLOSED in place of (5), after
 *     its unlock; a CAS that loses to (4) means the hand-off came first,
 *     and the spinner must wait for (5).  Nobody but the spinner moves
 *     the slot out of DONE or CLOSED (6), and nobody moves it out of EMPTY
 *     but a lock holder (1-2), so the spinner's plain store (6) races
 *     nothing; its release pairs with the acquire of the next spinner's
 *     look at EMPTY, so the next value is written after this one was
 *     read.
 *   - (2) pairs with (4): the peer sees the sender's value; (5) pairs
 *     with (3): the spinner sees the peer's copy.
 *   - Releasing (above): the party that completes the other half may free
 *     the channel at once.  The peer's (5) is its last access; a peer
 *     that holds the lock (a select, or an operation that found the slot
 *     under the lock) makes it after its unlock (slot_wake, handoff_wake),
 *     and the reference the spinner holds from (1) to (6) keeps c alive
 *     meanwhile.  The spinner leaving at (7) gives its reference back
 *     under the lock: not the last, since whoever will end its wait holds
 *     one.
 *
 * The spin is the same as a goroutine's in place on its park word (sched.c
 * "Spinning in place"): the same budget, bounds (the nearest timer, the
 * goroutine's deadline) and reasons to stop, to which a cancellation is
 * added (the park that follows reports it).  Values of up to SLOT_BYTES
 * only; larger ones, plain threads, and select (which waits on several
 * channels) queue a sudog as before.
 */
enum slot_wait { SLOT_QUEUE, SLOT_ENDED, SLOT_FRONT };

void (*chan_wait_seam)(ringo_chan *c);

static __attribute__((noinline)) enum slot_wait slot_wait(ringo_chan *c, void *elem, bool send,
                                                          struct rg *g, int *res)
{
    struct rproc *p = tls_proc;
    uint32_t mine = send ? SLOT_SEND : SLOT_RECV;
    /* acquire: pairs with the last spinner's release of the slot (6) */
    if (!g || c->elem_size > SLOT_BYTES || load_acquire(&c->slot) != SLOT_EMPTY ||
        (send ? c->sendq.first : c->recvq.first) || !gspin_ok(p))
        return SLOT_QUEUE;
    if (send)
        elem_copy(c->slot_val, elem, c->elem_size);
    fetch_add_relaxed(&c->refs, 1); /* (1) relaxed: we hold the lock of a channel in use */
    store_release(&c->slot, mine);  /* (2) */
    chan_unlock(c);
    struct gspin s;
    gspin_begin(p, &s, g_run(g)->deadline);
    uint32_t st;
    for (;;) {
        cpu_relax();
        st = load_acquire(&c->slot); /* (3) */
        if (st == SLOT_DONE || st == SLOT_CLOSED)
            break;
        if (st == SLOT_BUSY) {
            gspin_wait_peer(&s);
            continue;
        }
        if (!gspin_stop(p, &s) && !g_cancelled(g))
            continue;
        chan_lock(c);
        uint32_t exp = mine;
        /* relaxed (7): the word decides; what we did in the slot before
         * the lock gave back was ours */
        if (cas_relaxed(&c->slot, &exp, SLOT_EMPTY)) {
            fetch_sub_relaxed(&c->refs, 1); /* not the last: see above */
            gspin_end(p, &s, false, !s.timed_out);
            return SLOT_FRONT;
        }
        chan_unlock(c); /* a peer or a close came first: wait for its end */
    }
    gspin_end(p, &s, true, false);
    *res = st == SLOT_DONE ? 0 : -EPIPE;
    if (!send) {
        if (st == SLOT_DONE)
            copy_elem(c, elem, c->slot_val);
        else if (elem && c->elem_size)
            memset(elem, 0, c->elem_size);
    }
    store_release(&c->slot, SLOT_EMPTY); /* (6) */
    chan_unref(c);
    return SLOT_ENDED;
}

/* A send or receive that the lock-free path did not complete (f says
 * why: FAST_LOCK or FAST_WAIT): a peer spinning in the slot, a short
 * spin for the buffer, then the lock, and the wait.  Out of line from
 * chan_op, one copy per direction (chan_op_locked_send, _recv): the
 * buffered fast path then saves three registers, not six, and makes no
 * room for the wait's records; and this part has the wait (chan_block)
 * inline, with one frame for all of it.  callgrind, one proc:
 * tests/bench/chanbuf 403 -> 368 M instructions, tests/bench/pingpong
 * 229 -> 213 M (with waiter_* and waitq_take inline, chan.h). */
static inline __attribute__((always_inline)) int chan_op_locked(ringo_chan *c, void *elem, bool send,
                                                                struct rg *g, enum fast f)
{
    /* Nobody spins in a slot with one proc (gspin_ok): no CAS then. */
    if (!c->cap && rt.nprocs > 1 && slot_take(c, elem, send, false)) {
        slot_done(c);
        return 0;
    }
    if (f == FAST_WAIT && chan_spin(c, send) &&
        (send ? chan_send_fast(c, elem) : chan_recv_fast(c, elem)) == FAST_DONE)
        return 0;
    chan_lock(c);
    int err, done;
    struct waiter *wake;
    if (send)
        done = chan_try_send_locked(c, elem, &err, &wake);
    else
        done = chan_try_recv_locked(c, elem, &err, &wake);
    if (done) {
        chan_unlock(c);
        if (wake)
            handoff_wake(wake);
        return err;
    }
    if (__builtin_expect(chan_wait_seam != NULL, 0) && !c->cap)
        chan_wait_seam(c);
    bool front = false;
    if (!c->cap && rt.nprocs > 1) { /* else nobody spins (gspin_ok) */
        int r;
        enum slot_wait sw = slot_wait(c, elem, send, g, &r);
        if (sw == SLOT_ENDED)
            return r;
        front = sw == SLOT_FRONT;
    }
    if (send)
        return chan_block(c, &c->sendq, elem, W_CHAN_SEND, false, front);
    return chan_block(c, &c->recvq, elem, W_CHAN_RECV, true, front);
}

static __attribute__((noinline)) int chan_op_locked_send(ringo_chan *c, void *elem, struct rg *g, enum fast f)
{
    return chan_op_locked(c, elem, true, g, f);
}

static __attribute__((noinline)) int chan_op_locked_recv(ringo_chan *c, void *elem, struct rg *g, enum fast f)
{
    return chan_op_locked(c, elem, false, g, f);
}

/* The lock-free path, then the locked part (a tail call), for an
 * operation that has passed chan_op's checks. */
static inline __attribute__((always_inline)) int chan_op_unchecked(ringo_chan *c, void *elem, bool send,
                                                                   struct rg *g)
{
    if (send && c->elem_size && !elem)
        return -EINVAL;
    /* An unbuffered channel's gates are shut for good: straight to the
     * lock, without a look at the side words' cache lines. */
    enum fast f = !c->cap ? FAST_LOCK : send ? chan_send_fast(c, elem) : chan_recv_fast(c, elem);
    if (f == FAST_DONE)
        return 0;
    return send ? chan_op_locked_send(c, elem, g, f) : chan_op_locked_recv(c, elem, g, f);
}

/* chan_op's checks, for a goroutine whose deadline is set or that was
 * cancelled, a plain thread, and a nil channel. */
static __attribute__((noinline)) int chan_op_checked(ringo_chan *c, void *elem, bool send, struct rg *g)
{
    note_call(g);
    /* Bad arguments first, as ringo_select reports them: whenever the
     * call is made, whatever the deadline. */
    if (send && c && c->elem_size && !elem)
        return -EINVAL;
    if (g) {
        int r = block_check(g);
        if (r)
            return r;
    }
    if (!c)
        return block_forever(send ? W_CHAN_SEND : W_CHAN_RECV);
    return chan_op_unchecked(c, elem, send, g);
}

/* A send or receive.  The usual case, a goroutine with no deadline that
 * nobody cancelled, on a channel given, makes no call before the
 * lock-free path, and none after it but the tail call of the locked part
 * (chan_op_locked): its frame holds three registers, where the whole
 * operation inline saved six and made room for the wait's records.  The
 * rest goes the whole way (chan_op_checked). */
static inline __attribute__((always_inline)) int chan_op(ringo_chan *c, void *elem, bool send)
{
    struct rg *g = self_g();
    if (__builtin_expect(!g || !c || g_cancelled(g) || g_run(g)->deadline != RINGO_NEVER, 0))
        return chan_op_checked(c, elem, send, g);
    return chan_op_unchecked(c, elem, send, g);
}

int ringo_chan_send(ringo_chan *c, const void *elem)
{
    return chan_op(c, (void *)elem, true);
}

int ringo_chan_recv(ringo_chan *c, void *elem)
{
    return chan_op(c, elem, false);
}

/* try_send and try_recv: one attempt under the lock, never blocking. */
static int chan_try(ringo_chan *c, void *elem, bool send)
{
    note_call(self_g());
    if (!c)
        return -EAGAIN;
    if (send && c->elem_size && !elem)
        return -EINVAL;
    /* FAST_WAIT is exact, not a hint: the claim (BUSY) holds the own
     * index, and the gate stays open, until the other side's index is
     * read; at that moment the channel was open, nobody waited, and the
     * buffer was full (empty).  So it is the answer, with no lock. */
    /* An unbuffered channel's gates are shut for good: straight to the
     * lock, without a look at the side words' cache lines. */
    enum fast f = !c->cap ? FAST_LOCK : send ? chan_send_fast(c, elem) : chan_recv_fast(c, elem);
    if (f == FAST_DONE)
        return 0;
    if (f == FAST_WAIT)
        return -EAGAIN;
    chan_lock(c);
    int err;
    struct waiter *wake;
    int done = send ? chan_try_send_locked(c, elem, &err, &wake)
                    : chan_try_recv_locked(c, elem, &err, &wake);
    chan_unlock(c);
    if (!done)
        return -EAGAIN;
    if (wake)
        handoff_wake(wake);
    return err;
}

int ringo_chan_try_send(ringo_chan *c, const void *elem)
{
    return chan_try(c, (void *)elem, true);
}

int ringo_chan_try_recv(ringo_chan *c, void *elem)
{
    return chan_try(c, elem, false);
}

int ringo_chan_close(ringo_chan *c)
{
    note_call(self_g());
    if (!c)
        return -EINVAL;
    chan_lock(c);
    if (c->closed) {
        chan_unlock(c);
        return -EPIPE;
    }
    c->closed = true;
    /* A spinner in the slot ("Meeting in the slot") is ended like a peer
     * ends it: claimed here (BUSY), told after the unlock (CLOSED), since
     * it may free c as soon as it knows.  A CAS that fails lost to a
     * peer's hand-off, which came first.  relaxed: the claim publishes
     * nothing (the spinner learns only the close); the store of CLOSED
     * is a release, as slot_done's: our unlock happens before the
     * spinner's free. */
    bool slot_closed = false;
    if (c->cap == 0) {
        uint32_t st = load_relaxed(&c->slot);
        slot_closed = (st == SLOT_RECV || st == SLOT_SEND) && cas_relaxed(&c->slot, &st, SLOT_BUSY);
    }
    /* Claim every waiter under the lock, wake them after unlocking.  The
     * claimed waiters stay parked (their stacks valid) until woken; the
     * chain reuses the sudogs' next links, which no one else reads now
     * that they are unlinked. */
    struct sudog *wake = NULL, *sd;
    while ((sd = waitq_take(&c->recvq))) {
        sd->success = false;
        /* a receive that reports the close gets the zero value, written
         * here so that a select woken by it need not look at c again */
        if (sd->elem && c->elem_size)
            memset(sd->elem, 0, c->elem_size);
        sd->w->fired = sd;
        sd->next = wake;
        wake = sd;
    }
    while ((sd = waitq_take(&c->sendq))) {
        sd->success = false;
        sd->w->fired = sd;
        sd->next = wake;
        wake = sd;
    }
    chan_unlock(c);
    if (slot_closed)
        store_release(&c->slot, SLOT_CLOSED); /* c alive: the spinner's reference */
    while (wake) {
        struct sudog *next = wake->next; /* read before the wake: the sudog may vanish */
        waiter_wake(wake->w, 0);
        wake = next;
    }
    return 0;
}

size_t ringo_chan_len(const ringo_chan *c)
{
    if (!c)
        return 0;
    ringo_chan *m = (ringo_chan *)c;
    /* relaxed: a snapshot, like Go's len.  The head first: it never
     * passes the tail, so a later tail is not below it; clamped all the
     * same against a reading that mixes two moments. */
    uint64_t head = load_relaxed(&m->recvx) >> SIDE_SHIFT;
    uint64_t tail = load_relaxed(&m->sendx) >> SIDE_SHIFT;
    int64_t n = (int64_t)(tail - head);
    return n < 0 ? 0 : (size_t)n > c->cap ? c->cap : (size_t)n;
}

size_t ringo_chan_cap(const ringo_chan *c)
{
    return c ? c->cap : 0;
}

void chan_abandon_waits(struct rg *g)
{
    for (unsigned i = 0; i < g_wait(g)->nsudogs; i++) {
        struct sudog *sd = &g_wait(g)->sudogs[i];
        if (!sd->c)
            continue;
        chan_lock(sd->c);
        waitq_remove(sd);
        chan_unlock(sd->c);
    }
    g_wait(g)->sudogs = NULL;
    g_wait(g)->nsudogs = 0;
}
