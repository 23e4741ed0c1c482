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

struct ringo_chan {
    _Atomic uint32_t lock;      /* 0 free, 1 held, 2 held with sleepers (futex word) */
    _Atomic uint32_t refs;      /* references; the last ringo_chan_release frees */
    size_t elem_size;           /* fixed */
    size_t cap;                 /* fixed */
    _Atomic size_t count;       /* buffered values; under lock, read relaxed by ringo_chan_len */
    size_t head;                /* index of the oldest buffered value; under lock */
    bool closed;                /* under lock */
    struct waitq sendq;         /* blocked senders, FIFO; under lock */
    struct waitq recvq;         /* blocked receivers, FIFO; under lock */
    _Atomic(struct timerchan *) timer; /* ringo_tick's ticker until a stop or the owner
                                        * claims it (timerchan.c "Stopping"); else NULL */
    char *buf;                  /* cap * elem_size bytes */
};

/* The channel lock: an inline fast path (one CAS to take, one exchange to
 * give back) and an out-of-line contended path in chan.c. */
void chan_lock_slow(ringo_chan *c);
void chan_wake_locker(ringo_chan *c);

static inline void chan_lock(ringo_chan *c)
{
    uint32_t v = 0;
    /* acq_rel (acquire is what matters): the critical section sees the
     * previous holder's writes; pairs with the release in chan_unlock */
    if (!cas_acq_rel(&c->lock, &v, 1))
        chan_lock_slow(c);
}

static inline void chan_unlock(ringo_chan *c)
{
    /* acq_rel exchange (release is what matters): publishes the critical
     * section to the next holder; 2 means someone sleeps in futex(2) */
    if (xchg_acq_rel(&c->lock, 0) == 2)
        chan_wake_locker(c);
}

void waitq_push(struct waitq *q, struct sudog *sd);
void waitq_remove(struct sudog *sd);   /* no-op if not queued */
/* Dequeue the first sudog whose waiter this caller wins (claims); stale
 * ones (their waiter already ended elsewhere) are dropped.  NULL if none. */
struct sudog *waitq_take_slow(struct waitq *q);

/* The first sudog of q whose waiter could be claimed, dequeued; NULL if
 * none.  The empty test is inline: it is the answer on every buffered
 * operation that does not block. */
static inline struct sudog *waitq_take(struct waitq *q)
{
    return q->first ? waitq_take_slow(q) : NULL;
}

void waiter_init(struct waiter *w, int reason);
bool waiter_claim(struct waiter *w);
void waiter_wake(struct waiter *w, int result);
int  waiter_block(struct waiter *w);
/* Block forever (a nil channel or an empty select): only the goroutine's
 * deadline or cancellation end it. */
int  block_forever(int reason);

/* Operations with the lock held; the caller has checked readiness. */
/* Buffer slot i places after the oldest value (i < cap).  No division:
 * head < cap and i < cap, so one conditional subtraction wraps it. */
static inline char *chan_slot(ringo_chan *c, size_t i)
{
    size_t j = c->head + i;
    if (j >= c->cap)
        j -= c->cap;
    return c->buf + j * c->elem_size;
}

static inline void chan_advance_head(ringo_chan *c)
{
    if (++c->head == c->cap)
        c->head = 0;
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

static inline __attribute__((always_inline)) int chan_try_send_locked(ringo_chan *c, const void *elem, int *err, struct waiter **wake)
{
    *wake = NULL;
    if (c->closed) {
        *err = -EPIPE;
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
    size_t n = load_relaxed(&c->count);
    if (n < c->cap) {
        elem_copy(chan_slot(c, n), elem, c->elem_size);
        store_relaxed(&c->count, n + 1); /* relaxed: len is a racy snapshot; the lock orders the rest */
        *err = 0;
        return 1;
    }
    return 0;
}

static inline __attribute__((always_inline)) int chan_try_recv_locked(ringo_chan *c, void *elem, int *err, struct waiter **wake)
{
    *wake = NULL;
    struct sudog *sd = waitq_take(&c->sendq);
    if (sd) {
        if (c->cap == 0) {
            copy_elem(c, elem, sd->elem);
        } else {
            /* Buffer full: take the oldest value, put the sender's at the tail. */
            char *slot = chan_slot(c, 0);
            copy_elem(c, elem, slot);
            elem_copy(slot, sd->elem, c->elem_size);
            chan_advance_head(c);
        }
        sd->success = true;
        sd->w->fired = sd;
        *wake = sd->w;
        *err = 0;
        return 1;
    }
    size_t n = load_relaxed(&c->count);
    if (n > 0) {
        copy_elem(c, elem, chan_slot(c, 0));
        chan_advance_head(c);
        store_relaxed(&c->count, n - 1);
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


/* Unlink a goroutine's sudogs from their channels after a deadlock, so
 * the channels stay usable in a later run. */
void chan_abandon_waits(struct rg *g);

uint32_t fast_rand(void);

/* A seam for tests (check_chan.c), NULL in programs: ringo_tick_stop
 * calls it between looking at c->timer and acting on what it found, so a
 * test can order another holder's stop in between (timerchan.c). */
extern void (*tick_stop_seam)(ringo_chan *c);

/* A plain thread's call while a run is in progress turns deadlock
 * detection off (API.md: it may release a goroutine later). */
static inline void note_call(struct rg *g)
{
    if (!g && !tls_proc && load_relaxed(&rt.active))
        note_foreign();
}

#endif /* RINGO_CHAN_H */
