/*
 * chan.h — channel internals shared by chan.c, select.c and timerchan.c.
 */
#ifndef RINGO_CHAN_H
#define RINGO_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
    struct timerchan *timer;    /* ringo_tick's ticker, for ringo_tick_stop; fixed */
    char *buf;                  /* cap * elem_size bytes */
};

void chan_lock(ringo_chan *c);
void chan_unlock(ringo_chan *c);

void waitq_push(struct waitq *q, struct sudog *sd);
void waitq_remove(struct sudog *sd);   /* no-op if not queued */
/* Dequeue the first sudog whose waiter this caller wins (claims); stale
 * ones (their waiter already ended elsewhere) are dropped.  NULL if none. */
struct sudog *waitq_take(struct waitq *q);

void waiter_init(struct waiter *w, int reason);
bool waiter_claim(struct waiter *w);
void waiter_wake(struct waiter *w, int result);
int  waiter_block(struct waiter *w);
/* Block forever (a nil channel or an empty select): only the goroutine's
 * deadline or cancellation end it. */
int  block_forever(int reason);

/* Operations with the lock held; the caller has checked readiness. */
static inline char *chan_slot(ringo_chan *c, size_t i)
{
    return c->buf + ((c->head + i) % c->cap) * c->elem_size;
}

/* Try to complete a send / receive at once with c locked (it stays
 * locked): 1 done, with *err = 0 or -EPIPE and *wake = a peer's waiter to
 * wake once the caller has unlocked (or NULL); 0 not ready. */
int chan_try_send_locked(ringo_chan *c, const void *elem, int *err, struct waiter **wake);
int chan_try_recv_locked(ringo_chan *c, void *elem, int *err, struct waiter **wake);

/* Unlink a goroutine's sudogs from their channels after a deadlock, so
 * the channels stay usable in a later run. */
void chan_abandon_waits(struct rg *g);

uint32_t fast_rand(void);

/* A plain thread's call while a run is in progress turns deadlock
 * detection off (API.md: it may release a goroutine later). */
static inline void note_call(struct rg *g)
{
    if (!g && !tls_proc && load_relaxed(&rt.active))
        note_foreign();
}

#endif /* RINGO_CHAN_H */
