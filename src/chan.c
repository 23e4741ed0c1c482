/*
 * chan.c — channels: Go's chan.go in C.
 *
 * A channel is a lock, a ring buffer of cap elements, and two FIFO queues of
 * blocked operations (sudogs): senders and receivers.  The sudogs live on
 * the blocked callers' stacks.
 *
 * Invariants (under c->lock), as chan.go states them:
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
 * target's inbox (runq.c).
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
 * Releasing.  C has no collector: the party that completes the other
 * half of an operation may release the channel's last reference at once
 * and free it, as with a done channel (capacity 1, the sender holds no
 * reference: it sends and exits, the receiver receives and releases).  So
 * no operation may touch the channel after the moment its effect can be
 * seen by such a party.  A send or receive publishes at its unlock, the
 * exchange that is its last store to c (the futex wake after it, if a
 * locker sleeps, names the address to the kernel only); waking a parked
 * peer comes after, and touches the peer's waiter and goroutine, never c.
 * A select unlocks the channel of the case it performed last, and once
 * woken leaves the channel of the case that fired alone (select.c).  A
 * close publishes at its unlock.  A wait that ends by its deadline or
 * cancellation relocks to unlink its sudog: its own operation, not yet
 * complete, so no peer has a reason to release.  ringo_chan_len reads;
 * it completes nothing, and a length is no reason to release
 * (ringo_chan_len(3)).
 *
 * Rejected: a lock-free channel (Go tried, golang.org/issue/8899: the select
 * protocol and close make it much more complex for a small gain); a lock per
 * proc (a channel is shared across procs by nature).
 */
#include "config.h"

#include "chan.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ringo.h"

/* Spins on a held channel lock before sleeping in the kernel.  The holder
 * runs a few dozen instructions; a futex round trip costs microseconds. */
#define CHAN_LOCK_SPINS 200

/* Largest element, per API.md. */
#define ELEM_MAX 65536

static long sys_futex(_Atomic uint32_t *uaddr, int op, uint32_t val)
{
    return syscall(SYS_futex, (uint32_t *)uaddr, op, val, NULL, NULL, 0);
}

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

/* ---------------------------------------------------------------------- */
/* Waiters */

void waiter_init(struct waiter *w, int reason)
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

bool waiter_claim(struct waiter *w)
{
    if (w->g) /* waiter_init parks PARK_INTERRUPTIBLE */
        return claim_expect(w->g, w->token, PARK_INTERRUPTIBLE);
    uint32_t v = 0;
    /* acq_rel: as claim() in park.c */
    return cas_acq_rel(&w->futex, &v, 1);
}

void waiter_wake(struct waiter *w, int result)
{
    if (w->g) {
        ready(w->g, result);
        return;
    }
    w->result = result;
    /* release: publishes result and the copied value to the sleeper's
     * acquire load in waiter_block.  After this store the waiter may
     * return and its stack frame vanish: only the futex call below still
     * names the address, and FUTEX_WAKE on a stale address is harmless. */
    store_release(&w->futex, 2);
    sys_futex(&w->futex, FUTEX_WAKE_PRIVATE, 1);
}

int waiter_block(struct waiter *w)
{
    if (w->g)
        return park_commit(w->g, w->token, PARK_INTERRUPTIBLE);
    uint32_t v;
    /* acquire: pairs with the release store in waiter_wake */
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

void waitq_remove(struct sudog *sd)
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

struct sudog *waitq_take_slow(struct waitq *q)
{
    struct sudog *sd;
    while ((sd = q->first)) {
        waitq_remove(sd);
        if (waiter_claim(sd->w))
            return sd;
        /* Its waiter ended elsewhere: drop the stale sudog. */
    }
    return NULL;
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
    ringo_chan *c = seam_calloc(1, sizeof *c);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    if (cap) {
        c->buf = seam_malloc(cap * (elem_size ? elem_size : 1));
        if (!c->buf) {
            free(c);
            errno = ENOMEM;
            return NULL;
        }
    }
    c->elem_size = elem_size;
    c->cap = cap;
    store_relaxed(&c->refs, 1);
    return c;
}

ringo_chan *ringo_chan_retain(ringo_chan *c)
{
    if (c)
        fetch_add_relaxed(&c->refs, 1); /* relaxed: the caller already holds a reference */
    return c;
}

void ringo_chan_release(ringo_chan *c)
{
    if (!c)
        return;
    /* acq_rel: every use through other references happens before the free */
    if (fetch_sub_acq_rel(&c->refs, 1) == 1) {
        free(c->buf);
        free(c);
    }
}

/* Common tail of a blocking send or receive: queue a sudog and wait. */
static int chan_block(ringo_chan *c, struct waitq *q, void *elem, int reason, bool is_recv)
{
    struct waiter w;
    struct sudog sd = { .w = &w, .c = c, .elem = elem, .case_idx = -1 };
    size_t elem_size = c->elem_size; /* c is not touched after a successful wake */
    waiter_init(&w, reason);
    waitq_push(q, &sd);
    if (w.g) {
        store_relaxed(&w.g->wait_obj, c); /* for ringo_dump, relaxed as in park_prepare */
        w.g->sudogs = &sd;
        w.g->nsudogs = 1;
    }
    chan_unlock(c);
    int r = waiter_block(&w);
    if (w.g) {
        w.g->sudogs = NULL;
        w.g->nsudogs = 0;
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

/* A blocking send or receive.  Inlined into each with `send` constant, so
 * each keeps a straight fast path. */
static inline __attribute__((always_inline)) int chan_op(ringo_chan *c, void *elem, bool send)
{
    struct rg *g = self_g();
    note_call(g);
    if (g) {
        int r = block_check(g);
        if (r)
            return r;
    }
    if (!c)
        return block_forever(send ? W_CHAN_SEND : W_CHAN_RECV);
    if (send && c->elem_size && !elem)
        return -EINVAL;
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
            waiter_wake(wake, 0);
        return err;
    }
    if (send)
        return chan_block(c, &c->sendq, elem, W_CHAN_SEND, false);
    return chan_block(c, &c->recvq, elem, W_CHAN_RECV, true);
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
    chan_lock(c);
    int err;
    struct waiter *wake;
    int done = send ? chan_try_send_locked(c, elem, &err, &wake)
                    : chan_try_recv_locked(c, elem, &err, &wake);
    chan_unlock(c);
    if (!done)
        return -EAGAIN;
    if (wake)
        waiter_wake(wake, 0);
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
    while (wake) {
        struct sudog *next = wake->next; /* read before the wake: the sudog may vanish */
        waiter_wake(wake->w, 0);
        wake = next;
    }
    return 0;
}

size_t ringo_chan_len(const ringo_chan *c)
{
    return c ? load_relaxed(&((ringo_chan *)c)->count) : 0; /* a snapshot, like Go's len */
}

size_t ringo_chan_cap(const ringo_chan *c)
{
    return c ? c->cap : 0;
}

void chan_abandon_waits(struct rg *g)
{
    for (unsigned i = 0; i < g->nsudogs; i++) {
        struct sudog *sd = &g->sudogs[i];
        if (!sd->c)
            continue;
        chan_lock(sd->c);
        waitq_remove(sd);
        chan_unlock(sd->c);
    }
    g->sudogs = NULL;
    g->nsudogs = 0;
}
