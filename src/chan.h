/*
 * chan.h — channel internals shared by chan.c, select.c and timerchan.c.
 */
#ifndef RINGO_CHAN_H
#define RINGO_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <errno.h>

#include "ringo.h"

#include "atomic.h"
#include "internal.h"

/*
 * A blocked operation's waiter: one per blocking send, receive or select,
 * on the blocked caller's stack.  A goroutine waiter ends through the park
 * word of its goroutine (claim(g, token)); a plain thread's through `futex`
 * (0 waiting, 1 claimed, 2 woken), on which it sleeps in futex(2).
 */
struct waiter {
    struct rg *g;           /* NULL for a plain thread; fixed */
    uint64_t token;         /* the goroutine's park token; fixed */
    _Atomic uint32_t futex; /* plain thread only: CAS 0->1 by the claimer, store 2 (release) when woken */
    int result;             /* plain thread only: written by the claimer before the release store */
    struct sudog *fired;    /* the sudog whose operation completed; written by the claimer under that channel's lock */
    /* A select that names a channel in more than one case: its sudogs
     * (select.c), for the claimer to unlink the others on the fired
     * one's channel (waitq_take).  Read only for a select's sudog
     * (case_idx >= 0); fixed while it waits. */
    struct sudog *dup_sds;
    unsigned dup_n;         /* 0: no channel twice */
};

/*
 * One waiting operation on one channel (Go's sudog).  Lives on the
 * blocked caller's stack, linked into c->sendq or c->recvq; every field
 * is under the lock of `c`.
 */
struct sudog {
    struct sudog *next, *prev;  /* queue links */
    struct waitq *q;            /* the queue it is in, while queued */
    struct waiter *w;
    ringo_chan *c;
    void *elem;                 /* send: the value; recv: where it goes (NULL: discard) */
    int case_idx;               /* select: which case; -1 for plain send/recv */
    bool queued;                /* in c's queue */
    bool success;               /* true: a peer completed the operation; false: woken by close */
};

struct waitq {
    struct sudog *first, *last;
};

struct timerchan;

/*
 * The two side words of a buffered channel, c->sendx and c->recvx: an
 * index and two flags,
 *
 *     index << SIDE_SHIFT | SIDE_GATE | SIDE_BUSY
 *
 * sendx's index is the tail (values ever put in the buffer), recvx's the
 * head (values ever taken out); tail - head values are buffered, slot
 * index % cap.  The indices are 62-bit counters: they do not wrap in the
 * life of a program.  See chan.c "The lock-free path".
 */
#define SIDE_BUSY  1u   /* one fast operation of this side is in progress */
#define SIDE_GATE  2u   /* the fast path is shut: the lock decides */
#define SIDE_SHIFT 2
#define SIDE_ONE   ((uint64_t)1 << SIDE_SHIFT)

struct ringo_chan {
    /* The locked side, and the fixed fields every operation reads. */
    _Atomic uint32_t lock;      /* 0 free, 1 held, 2 held with sleepers (futex word) */
    _Atomic uint32_t refs;      /* references; the last ringo_chan_release frees */
    size_t elem_size;           /* fixed */
    size_t cap;                 /* fixed */
    char *buf;                  /* cap * elem_size bytes; fixed */
    size_t ahead;               /* fixed: PREFETCH_BYTES in slots, or cap (chan.c "Prefetching") */
    bool closed;                /* under lock */
    bool reopen;                /* under lock: a critical section moved the
                                 * buffer, so chan_unlock may open the gate */
    /* An unbuffered channel's slot (chan.c "Meeting in the slot"): an
     * enum slot_state, and the value of a send that meets there.  On the
     * lock's line: a hand-off through the slot moves this line only. */
    _Atomic uint32_t slot;
    _Alignas(8) unsigned char slot_val[16];
    struct waitq sendq;         /* blocked senders, FIFO; under lock */
    struct waitq recvq;         /* blocked receivers, FIFO; under lock */
    _Atomic(struct timerchan *) timer; /* ringo_after's or ringo_tick's timer until it, a
                                        * stop or the owner claims it (timerchan.c
                                        * "Stopping"); else NULL */

    /* The send side, on a cache line of its own: the receiving proc reads
     * sendx only when it has taken every value it knew of. */
    _Alignas(64) _Atomic uint64_t sendx; /* tail and flags, above */
    size_t spos;                /* tail % cap: the slot the next value goes to */
    uint64_t shead;             /* a head seen earlier (<= the head): room known
                                 * without reading recvx.  spos and shead belong
                                 * to sendx's BUSY holder, or to the lock holder
                                 * while the gate is shut. */
    _Atomic uint32_t sspin;     /* a full buffer's watch, ns (chan.c "Waiting briefly"); hint */
    _Atomic uint32_t sprobe;    /* watches skipped while sspin is 0; hint */

    /* The receive side, likewise. */
    _Alignas(64) _Atomic uint64_t recvx; /* head and flags */
    size_t rpos;                /* head % cap: the slot of the oldest value */
    uint64_t rtail;             /* a tail seen earlier (head <= rtail <= tail) */
    _Atomic uint32_t rspin;     /* an empty buffer's watch, likewise */
    _Atomic uint32_t rprobe;
};

_Static_assert(offsetof(struct ringo_chan, slot_val) + sizeof(((struct ringo_chan *)0)->slot_val) <= 64,
               "the slot is on the lock's line");

/* The slot's states (chan.c "Meeting in the slot"). */
enum slot_state {
    SLOT_EMPTY,
    SLOT_RECV,      /* a receiver spins, waiting for a value */
    SLOT_SEND,      /* a sender spins, its value in slot_val */
    SLOT_BUSY,      /* a peer is completing the spinner's operation */
    SLOT_DONE,      /* completed: the spinner takes the value (a receive) and empties the slot */
    SLOT_CLOSED,    /* closed while it spun: the spinner empties the slot, -EPIPE */
};
#define SLOT_BYTES sizeof(((ringo_chan *)0)->slot_val)

/* The channel lock: an inline fast path (one CAS to take, one exchange to
 * give back) and an out-of-line contended path in chan.c.  Taking it also
 * shuts a buffered channel's gate, and giving it back opens it again when
 * nobody waits, the channel is open and the critical section moved values
 * through the buffer (chan.c "The lock-free path"), so every critical
 * section owns the buffer and both indices.  Opening the gate publishes
 * the critical section before the lock is given back, so that unlock holds
 * a reference of its own meanwhile (chan.c "Releasing"). */
void chan_lock_slow(ringo_chan *c);
void chan_wake_locker(ringo_chan *c);
void chan_gate_shut(ringo_chan *c);
void chan_unlock_open(ringo_chan *c);

static inline void chan_lock(ringo_chan *c)
{
    uint32_t v = 0;
    /* acq_rel (acquire is what matters): the critical section sees the
     * previous holder's writes; pairs with the release in chan_unlock */
    if (!cas_acq_rel(&c->lock, &v, 1))
        chan_lock_slow(c);
    /* relaxed: only lock holders move GATE, and we hold the lock; shut
     * means shut by an earlier holder, whose writes the lock gave us */
    if (c->cap && !(load_relaxed(&c->recvx) & SIDE_GATE))
        chan_gate_shut(c);
}

/* Give the lock back.  The exchange is the last store to c: from that
 * moment a locker may take the lock, see what this critical section did,
 * and release the channel's last reference (chan.c "Releasing"). */
static inline void chan_unlock(ringo_chan *c)
{
    if (c->reopen && !c->closed && !c->sendq.first && !c->recvq.first) {
        c->reopen = false;
        chan_unlock_open(c);
        return;
    }
    /* acq_rel exchange (release is what matters): publishes the critical
     * section to the next holder; 2 means someone sleeps in futex(2).
     * The wake after it names c's address only to the kernel, which does
     * not read it (FUTEX_WAKE_PRIVATE), so it is harmless if c is gone. */
    if (xchg_acq_rel(&c->lock, 0) == 2)
        chan_wake_locker(c);
}

void waitq_push(struct waitq *q, struct sudog *sd);

/* Unlink sd from its queue; a no-op if it is not queued. */
static inline void waitq_remove(struct sudog *sd)
{
    if (!sd->queued)
        return;
    struct waitq *q = sd->q;
    if (sd->prev)
        sd->prev->next = sd->next;
    else
        q->first = sd->next;
    if (sd->next)
        sd->next->prev = sd->prev;
    else
        q->last = sd->prev;
    sd->next = sd->prev = NULL;
    sd->queued = false;
}

/* A waiter's life: waiter_init (its goroutine, or a plain thread's futex
 * word), waiter_claim by whoever ends the wait, waiter_wake by that
 * claimer, waiter_block by the waiter.  Inline: every hand-off between
 * goroutines through a channel goes through them, and as calls of their
 * own they cost a channel ping-pong more than a tenth of its
 * instructions; a plain thread's halves are out of line (chan.c). */
void waiter_wake_thread(struct waiter *w, int result);
int  waiter_block_thread(struct waiter *w);

static inline void waiter_init(struct waiter *w, int reason)
{
    w->g = self_g();
    w->fired = NULL;
    w->result = 0;
    store_relaxed(&w->futex, 0);
    if (w->g)
        w->token = park_prepare(w->g, reason, PARK_INTERRUPTIBLE);
    else
        note_foreign();
}

static inline bool waiter_claim(struct waiter *w)
{
    if (w->g) /* waiter_init parks PARK_INTERRUPTIBLE */
        return claim_expect(w->g, w->token, PARK_INTERRUPTIBLE);
    uint32_t v = 0;
    /* acq_rel: as claim() in park.c */
    return cas_acq_rel(&w->futex, &v, 1);
}

static inline void waiter_wake(struct waiter *w, int result)
{
    if (w->g)
        ready(w->g, result);
    else
        waiter_wake_thread(w, result);
}

static inline int waiter_block(struct waiter *w)
{
    if (w->g) /* a peer on another proc may end it: PARK_SPIN_OK */
        return park_commit(w->g, w->token, PARK_INTERRUPTIBLE | PARK_SPIN_OK);
    return waiter_block_thread(w);
}

/* The first sudog of q whose waiter this caller wins (claims), dequeued;
 * stale ones (their waiter already ended elsewhere) are dropped.  NULL if
 * none.  Inline, loop and all: the empty test is the answer on every
 * buffered operation that does not block, and the first sudog is the
 * answer on every hand-off to a parked peer. */
void waiter_unlink_dups(struct sudog *fired);

static inline struct sudog *waitq_take(struct waitq *q)
{
    struct sudog *sd;
    while ((sd = q->first)) {
        /* waitq_remove (above), for the first sudog, which is queued and
         * has no prev: the general one's two tests cost a one-proc
         * ping-pong 1.4% more instructions (callgrind) */
        q->first = sd->next;
        if (sd->next)
            sd->next->prev = NULL;
        else
            q->last = NULL;
        sd->next = NULL;
        sd->queued = false;
        if (waiter_claim(sd->w)) {
            if (__builtin_expect(sd->case_idx >= 0, 0) && sd->w->dup_n)
                waiter_unlink_dups(sd);
            return sd;
        }
    }
    return NULL;
}

/* Block forever (a nil channel or an empty select): only the goroutine's
 * deadline or cancellation end it. */
int  block_forever(int reason);

/* With the lock held (the gate shut): the indices, read relaxed since
 * only the lock holder writes them now. */
static inline uint64_t chan_tail(ringo_chan *c)
{
    return load_relaxed(&c->sendx) >> SIDE_SHIFT;
}

static inline uint64_t chan_head(ringo_chan *c)
{
    return load_relaxed(&c->recvx) >> SIDE_SHIFT;
}

static inline size_t chan_next_pos(ringo_chan *c, size_t pos)
{
    return ++pos == c->cap ? 0 : pos;
}

/* Copy one element.  The common sizes are fixed-size copies the compiler
 * turns into a load and a store; others call memcpy. */
static inline void elem_copy(void *dst, const void *src, size_t n)
{
    switch (n) {
    case 0: break;
    case 1: memcpy(dst, src, 1); break;
    case 2: memcpy(dst, src, 2); break;
    case 4: memcpy(dst, src, 4); break;
    case 8: memcpy(dst, src, 8); break;
    case 16: memcpy(dst, src, 16); break;
    default: memcpy(dst, src, n); break;
    }
}

/* The core of a send and of a receive, with c locked: 1 if the operation
 * completed (*err is its result; *wake, if not NULL, is a waiter to wake
 * after unlocking), 0 if it would block.  Inline: the buffered fast path
 * of ringo_chan_send and ringo_chan_recv is this plus the lock. */
static inline void copy_elem(ringo_chan *c, void *dst, const void *src)
{
    if (dst)
        elem_copy(dst, src, c->elem_size);
}

/* Take the operation of a goroutine spinning in c's slot for the other
 * side (chan.c "Meeting in the slot"): a send puts its value in the slot
 * for a spinning receiver, a receive takes a spinning sender's.  False if
 * nobody spins there for us.  The caller ends the spinner's wait with
 * slot_done, its last access to c: after the unlock, if it holds the
 * lock. */
static inline bool slot_take(ringo_chan *c, void *elem, bool send, bool locked)
{
    uint32_t want = send ? SLOT_RECV : SLOT_SEND;
    /* With the lock held the line is ours already: a load says whether
     * to try, and a locked instruction is saved when nobody spins (the
     * usual case).  Without the lock, one CAS from the state we want, not
     * a load first: the line is fetched once, to own it.  relaxed: the
     * CAS acquires. */
    if (locked && load_relaxed(&c->slot) != want)
        return false;
    /* acquire: pairs with the spinner's release store of its state, so
     * a sender's value, and the reads of whoever used the slot before,
     * happen before our copy. */
    if (!cas_acquire(&c->slot, &want, SLOT_BUSY))
        return false;
    if (send)
        elem_copy(c->slot_val, elem, c->elem_size);
    else
        copy_elem(c, elem, c->slot_val);
    return true;
}

static inline void slot_done(ringo_chan *c)
{
    /* release: our copy happens before the spinner's acquire load that
     * sees DONE (and its read of the value, on a receive).  The spinner
     * holds a reference of its own until it leaves the slot, so c is
     * alive here even after an unlock ("Releasing"). */
    store_release(&c->slot, SLOT_DONE);
}

/* What a locked operation hands back to do after the unlock: a parked
 * waiter to wake, or a slot to mark done (the channel, tagged in the low
 * bit: a waiter is at least 8-aligned, a channel 64). */
static inline struct waiter *slot_wake(ringo_chan *c)
{
    return (struct waiter *)((uintptr_t)c | 1);
}

static inline void handoff_wake(struct waiter *w)
{
    if ((uintptr_t)w & 1)
        slot_done((ringo_chan *)((uintptr_t)w & ~(uintptr_t)1));
    else
        waiter_wake(w, 0);
}

static inline __attribute__((always_inline)) int chan_try_send_locked(ringo_chan *c, const void *elem, int *err, struct waiter **wake)
{
    *wake = NULL;
    if (c->closed) {
        *err = -EPIPE;
        return 1;
    }
    if (c->cap == 0 && slot_take(c, (void *)elem, true, true)) {
        *wake = slot_wake(c);
        *err = 0;
        return 1;
    }
    struct sudog *sd = waitq_take(&c->recvq);
    if (sd) {
        copy_elem(c, sd->elem, elem);
        sd->success = true;
        sd->w->fired = sd;
        *wake = sd->w;
        *err = 0;
        return 1;
    }
    if (chan_tail(c) - chan_head(c) < c->cap) {
        elem_copy(c->buf + c->spos * c->elem_size, elem, c->elem_size);
        c->spos = chan_next_pos(c, c->spos);
        /* relaxed: the gate is shut; opening it publishes (release,
         * chan.c chan_unlock_open) */
        store_relaxed(&c->sendx, load_relaxed(&c->sendx) + SIDE_ONE);
        c->reopen = true;
        *err = 0;
        return 1;
    }
    return 0;
}

static inline __attribute__((always_inline)) int chan_try_recv_locked(ringo_chan *c, void *elem, int *err, struct waiter **wake)
{
    *wake = NULL;
    if (c->cap == 0 && slot_take(c, elem, false, true)) {
        *wake = slot_wake(c);
        *err = 0;
        return 1;
    }
    struct sudog *sd = waitq_take(&c->sendq);
    if (sd) {
        if (c->cap == 0) {
            copy_elem(c, elem, sd->elem);
        } else {
            /* Buffer full: take the oldest value, put the sender's at the
             * tail (the same slot, the buffer being full). */
            copy_elem(c, elem, c->buf + c->rpos * c->elem_size);
            elem_copy(c->buf + c->spos * c->elem_size, sd->elem, c->elem_size);
            c->rpos = chan_next_pos(c, c->rpos);
            c->spos = chan_next_pos(c, c->spos);
            /* relaxed: the gate is shut, as in chan_try_send_locked */
            store_relaxed(&c->recvx, load_relaxed(&c->recvx) + SIDE_ONE);
            store_relaxed(&c->sendx, load_relaxed(&c->sendx) + SIDE_ONE);
            c->reopen = true;
        }
        sd->success = true;
        sd->w->fired = sd;
        *wake = sd->w;
        *err = 0;
        return 1;
    }
    if (chan_tail(c) != chan_head(c)) {
        copy_elem(c, elem, c->buf + c->rpos * c->elem_size);
        c->rpos = chan_next_pos(c, c->rpos);
        store_relaxed(&c->recvx, load_relaxed(&c->recvx) + SIDE_ONE); /* relaxed: as above */
        c->reopen = true;
        *err = 0;
        return 1;
    }
    if (c->closed) {
        if (elem && c->elem_size)
            memset(elem, 0, c->elem_size);
        *err = -EPIPE;
        return 1;
    }
    return 0;
}


/* What an operation by the lock-free path did (chan.c): done, or why not. */
enum fast {
    FAST_DONE,
    FAST_LOCK,      /* the gate is shut or the side stayed busy: take the lock */
    FAST_WAIT,      /* the buffer is full (a send) or empty (a receive) */
};

enum fast chan_select_fast(ringo_chan *c, bool send, void *elem);

/* Unlink a goroutine's sudogs from their channels after a deadlock, so
 * the channels stay usable in a later run. */
void chan_abandon_waits(struct rg *g);

uint32_t fast_rand(void);

/* Drop a reference the runtime took for itself (a channel operation's own,
 * a timer's): ringo_chan_release without its look at a pending timer,
 * which only a holder's release makes (timerchan.c "Unreferenced").
 * chan_free: what the last reference's drop does. */
void chan_unref(ringo_chan *c);
void chan_free(ringo_chan *c);

/* ringo_chan_release of c, whose timer may be pending: stops the timer
 * if the timer's own reference would be the last one left. */
void timerchan_release(ringo_chan *c);

/* A seam for tests (check_chan.c), NULL in programs: ringo_tick_stop
 * calls it between looking at c->timer and acting on what it found, so a
 * test can order another holder's stop in between (timerchan.c). */
extern void (*tick_stop_seam)(ringo_chan *c);

/* Seams for tests (check_chan.c), NULL in programs: the release of a
 * timer's channel calls timer_release_seam after each look at the count,
 * before it acts on it, so a test can release another reference in
 * between; a ticker that has sent calls tick_fire_seam just before it
 * looks at the count itself (timerchan.c "Unreferenced"). */
extern void (*timer_release_seam)(ringo_chan *c);
extern void (*tick_fire_seam)(ringo_chan *c);

/* A seam for tests (check_chan.c), NULL in programs: a blocking send or
 * receive on an unbuffered channel calls it with the lock held, once it
 * knows it must wait, before it takes the slot or queues: so a test can
 * know that one waiter came before another. */
extern void (*chan_wait_seam)(ringo_chan *c);

/* A plain thread's call while a run is in progress turns deadlock
 * detection off (API.md: it may release a goroutine later). */
static inline void note_call(struct rg *g)
{
    if (!g && !tls_proc && load_relaxed(&rt.active))
        note_foreign();
}

#endif /* RINGO_CHAN_H */
