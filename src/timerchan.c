/*
 * timerchan.c — ringo_after and ringo_tick: timers that deliver on a
 * channel, for select.
 *
 * A timer channel is a cap-1 channel of int64_t plus a struct timerchan in
 * one proc's timer heap (the creating goroutine's proc; a plain thread's
 * timer goes to a proc chosen round robin, armed by a task posted to it).
 * When it fires, in that proc's scheduler, it try-sends ringo_now(): a full
 * channel drops the tick, as Go's Ticker does.  The timer holds its own
 * reference to the channel until it is done (after: once fired; ticker:
 * once stopped), so the caller may release its reference at any time.
 *
 * Owner-only state: the heap entry and `when` belong to the owner proc.
 * ringo_tick_stop from another thread flips `stopped` and posts a task to
 * the owner, which disarms and frees the timer; the xchg on `stopped`
 * makes a second stop a no-op.  A run that ends with timers still armed
 * discards them (timer_heap_free calls tc_discard).
 */
#include "config.h"

#include "chan.h"

#include <errno.h>
#include <stdlib.h>

#include "ringo.h"

struct timerchan {
    struct rtimer t;            /* in owner's heap; owner only */
    struct rtask arm_task;      /* posts the first arming from a plain thread */
    struct rtask stop_task;     /* posts ringo_tick_stop to the owner */
    ringo_chan *c;              /* the timer's own reference */
    int64_t period;             /* 0: one-shot (ringo_after); fixed */
    int64_t first;              /* first firing time; fixed */
    struct rproc *owner;        /* fixed */
    _Atomic int stopped;        /* xchg 0 -> 1 by the first ringo_tick_stop */
    bool promised;              /* holds a slot of owner->timer_promised; owner */
};

/* Take a heap slot for tc on p (the owner), so re-arming never fails. */
static int tc_promise(struct rproc *p, struct timerchan *tc)
{
    if (timer_reserve(&p->timers, p->timer_promised + 1) != 0)
        return -ENOMEM;
    p->timer_promised++;
    tc->promised = true;
    return 0;
}

static void tc_free(struct timerchan *tc)
{
    if (tc->promised)
        tc->owner->timer_promised--; /* owner proc, or teardown */
    if (tc->period)
        tc->c->timer = NULL; /* ringo_tick_stop after this finds no ticker */
    ringo_chan_release(tc->c);
    free(tc);
}

static void tc_discard(struct rtimer *t)
{
    tc_free((struct timerchan *)t);
}

static void tc_fire(struct rproc *p, struct rtimer *t)
{
    struct timerchan *tc = (struct timerchan *)t;
    int64_t now = now_ns();
    ringo_chan_try_send(tc->c, &now); /* -EAGAIN: full, the tick is dropped */
    if (!tc->period) {
        tc_free(tc);
        return;
    }
    int64_t next = t->when + tc->period;
    if (next <= now) /* fell behind: skip the missed ticks */
        next += ((now - next) / tc->period + 1) * tc->period;
    timer_arm(&p->timers, t, next); /* cannot fail: tc_promise reserved the slot */
}

static void tc_arm_task(struct rproc *p, struct rtask *task)
{
    struct timerchan *tc = (struct timerchan *)((char *)task - offsetof(struct timerchan, arm_task));
    if (tc_promise(p, tc) != 0) {
        /* Out of memory on the owner: close the channel so a receiver
         * learns the timer will never fire, rather than waiting forever. */
        ringo_chan_close(tc->c);
        tc_free(tc);
        return;
    }
    timer_arm(&p->timers, &tc->t, tc->first);
}

static void tc_arm_discard(struct rtask *task)
{
    struct timerchan *tc = (struct timerchan *)((char *)task - offsetof(struct timerchan, arm_task));
    tc_free(tc); /* never armed: no heap slot to give back */
}

static void tc_stop_discard(struct rtask *task)
{
    /* the run ended first: its heap was freed, discarding the timer */
    (void)task;
}

static void tc_stop_task(struct rproc *p, struct rtask *task)
{
    struct timerchan *tc = (struct timerchan *)((char *)task - offsetof(struct timerchan, stop_task));
    timer_disarm(&p->timers, &tc->t);
    tc_free(tc);
}

static ringo_chan *timerchan_new(int64_t delay, int64_t period)
{
    if (!load_acquire(&rt.active)) {
        errno = EINVAL; /* timers run on procs: no run, no timer */
        return NULL;
    }
    ringo_chan *c = ringo_chan_make(sizeof(int64_t), 1);
    if (!c)
        return NULL;
    struct timerchan *tc = seam_calloc(1, sizeof *tc);
    if (!tc) {
        ringo_chan_release(c);
        errno = ENOMEM;
        return NULL;
    }
    int64_t now = now_ns();
    if (delay < 0)
        delay = 0;
    tc->c = ringo_chan_retain(c);
    tc->period = period;
    tc->first = delay > RINGO_NEVER - now ? RINGO_NEVER - 1 : now + delay;
    tc->t.fire = tc_fire;
    tc->t.discard = tc_discard;
    tc->arm_task.run = tc_arm_task;
    tc->arm_task.discard = tc_arm_discard;
    tc->stop_task.run = tc_stop_task;
    tc->stop_task.discard = tc_stop_discard;
    if (period)
        c->timer = tc;
    struct rproc *p = tls_proc;
    if (p) {
        tc->owner = p;
        if (tc_promise(p, tc) != 0) {
            c->timer = NULL;
            tc_free(tc);
            ringo_chan_release(c);
            errno = ENOMEM;
            return NULL;
        }
        timer_arm(&p->timers, &tc->t, tc->first);
    } else {
        note_foreign();
        tc->owner = rt.procs[fetch_add_relaxed(&rt.rr, 1) % rt.nprocs];
        proc_post_task(tc->owner, &tc->arm_task);
    }
    return c;
}

ringo_chan *ringo_after(int64_t ns)
{
    return timerchan_new(ns, 0);
}

ringo_chan *ringo_tick(int64_t period)
{
    if (period <= 0) {
        errno = EINVAL;
        return NULL;
    }
    return timerchan_new(period, period);
}

void ringo_tick_stop(ringo_chan *c)
{
    if (!c)
        return;
    struct timerchan *tc = c->timer;
    /* acq_rel: only the first stop proceeds */
    if (tc && xchg_acq_rel(&tc->stopped, 1) == 0 && load_acquire(&rt.active)) {
        if (tc->owner == tls_proc)
            tc_stop_task(tc->owner, &tc->stop_task);
        else
            proc_post_task(tc->owner, &tc->stop_task);
    }
    ringo_chan_release(c);
}
