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
 * A run that ends with timers still armed discards them (timer_heap_free
 * calls tc_discard).  Plain threads reach the owner through run_enter
 * (internal.h), so the run cannot end and free it under them.
 *
 * Stopping.  Any number of holders may stop one ticker at once, from any
 * thread, while its owner may be freeing it for reasons of its own (the
 * run ends, or no memory to arm it).  So nobody may touch the ticker
 * before owning it, and c->timer is the token of ownership: whoever takes
 * it with an exchange for NULL frees the ticker, or has the owner do so,
 * and every other taker finds NULL and leaves it alone.
 *
 *     stop (any thread)                  owner, freeing on its own
 *     tc = xchg(c->timer, NULL)          tc2 = xchg(c->timer, NULL)
 *     tc: post stop_task to the owner    tc2: free it
 *         (or run it, on the owner)      NULL: a stop owns it; leave it
 *     NULL: someone else has it
 *
 * Exactly one exchange returns tc, so one party frees it; no one reads
 * c->timer and then uses what it read without having taken it (the old
 * read-then-flag scheme let a second stopper flag a ticker the owner had
 * just freed).  The channel itself outlives all of this: each stopper
 * holds a reference, and the ticker holds its own until it is freed.
 *
 * A stop that took the ticker always ends in its stop_task, run or
 * discarded: tc_stop_task disarms and frees it; tc_stop_discard does the
 * same at the end of the run, on the owner's heap, which free_procs frees
 * only after discarding the owner's tasks.  A one-shot ringo_after timer
 * is never in c->timer: nobody stops it, and it frees itself.
 */
#include "config.h"

#include "chan.h"

#include <errno.h>
#include <sched.h>
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
    bool promised;              /* holds a slot of owner->timer_promised; owner */
    _Atomic uint32_t firing;    /* a ticker's owner is in tc_fire ("No tick after a stop") */
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

/* Free tc; for a ticker, only by whoever took it from c->timer. */
static void tc_free(struct timerchan *tc)
{
    if (tc->promised)
        tc->owner->timer_promised--; /* owner proc, or teardown */
    ringo_chan_release(tc->c);
    free(tc);
}

/* Take c's ticker (see "Stopping"): it, if the caller now owns it; NULL if
 * someone else took it first, or c is no ticker.  acq_rel: the acquire
 * sees tc as its creator filled it in, and the release orders whatever the
 * taker did before against a later taker's acquire; of all the exchanges,
 * only one returns tc. */
static struct timerchan *tc_take(ringo_chan *c)
{
    return xchg_acq_rel(&c->timer, NULL);
}

/* The owner frees tc for reasons of its own (end of the run, no memory):
 * a ticker only if no stop has taken it first; that stop's task frees it. */
static void tc_free_unless_stopped(struct timerchan *tc)
{
    if (tc->period && tc_take(tc->c) != tc)
        return;
    tc_free(tc);
}

static void tc_discard(struct rtimer *t)
{
    tc_free_unless_stopped((struct timerchan *)t);
}

/* No tick after a stop.  A stop on another proc than the ticker's owner
 * takes the ticker and posts its disarming to the owner, which may fire
 * the ticker meanwhile; as Go's Ticker.Stop, ringo_tick_stop promises
 * that no tick is sent once it has returned.  So a firing ticker raises
 * `firing` and then looks whether a stop has taken it, and a stopper on
 * another proc takes it and then waits for `firing` to drop:
 *
 *     owner (tc_fire)                    stopper (ringo_tick_stop)
 *     firing = 1                         xchg(c->timer, NULL)
 *     c->timer == tc?                    while (firing) wait
 *       no: return (not sent)            post stop_task
 *       yes: send; firing = 0
 *
 * Each side stores, then loads the other's word (seq_cst): the owner sees
 * the ticker taken and sends nothing, or the stopper sees it firing and
 * waits until its tick is in the channel.  The fire is a non-blocking
 * send: the wait is short.  The stopper waits before posting its task,
 * whose run frees the ticker. */
static void tc_fire(struct rproc *p, struct rtimer *t)
{
    struct timerchan *tc = (struct timerchan *)t;
    if (tc->period) {
        store_seqcst(&tc->firing, 1);
        if (load_seqcst(&tc->c->timer) != tc) {
            store_release(&tc->firing, 0); /* stopped: its task disarms and frees it */
            return;
        }
    }
    int64_t now = now_ns();
    ringo_chan_try_send(tc->c, &now); /* -EAGAIN: full, the tick is dropped */
    if (!tc->period) {
        tc_free(tc);
        return;
    }
    /* release: the send before the stopper's acquire load sees 0 */
    store_release(&tc->firing, 0);
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
        tc_free_unless_stopped(tc);
        return;
    }
    /* Armed even if a stop has taken it meanwhile: its task, posted after
     * this one, disarms it. */
    timer_arm(&p->timers, &tc->t, tc->first);
}

static void tc_arm_discard(struct rtask *task)
{
    struct timerchan *tc = (struct timerchan *)((char *)task - offsetof(struct timerchan, arm_task));
    tc_free_unless_stopped(tc); /* never armed: no heap slot to give back */
}

/* On the owner, by the stop that took the ticker. */
static void tc_stop_task(struct rproc *p, struct rtask *task)
{
    struct timerchan *tc = (struct timerchan *)((char *)task - offsetof(struct timerchan, stop_task));
    timer_disarm(&p->timers, &tc->t); /* a no-op if not armed */
    tc_free(tc);
}

static void tc_stop_discard(struct rtask *task)
{
    /* The run ended first.  free_procs discards the owner's tasks before
     * it frees the owner's heap, so the ticker can still leave it. */
    struct timerchan *tc = (struct timerchan *)((char *)task - offsetof(struct timerchan, stop_task));
    tc_stop_task(tc->owner, task);
}

/* A new timer channel, with the run pinned (run_enter); p: the caller's
 * proc, NULL for a plain thread. */
static ringo_chan *timerchan_create(struct rproc *p, int64_t delay, int64_t period)
{
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
    static const struct rtimer_ops tc_ops = { .fire = tc_fire, .discard = tc_discard };
    tc->t.ops = &tc_ops;
    tc->arm_task.run = tc_arm_task;
    tc->arm_task.discard = tc_arm_discard;
    tc->stop_task.run = tc_stop_task;
    tc->stop_task.discard = tc_stop_discard;
    tc->owner = p ? p : rt.procs[fetch_add_relaxed(&rt.rr, 1) % rt.nprocs];
    if (p && tc_promise(p, tc) != 0) {
        tc_free(tc);
        ringo_chan_release(c);
        errno = ENOMEM;
        return NULL;
    }
    /* relaxed: c is not shared yet; whatever hands it on publishes this,
     * and proc_post_task's release publishes it to the owner */
    if (period)
        store_relaxed(&c->timer, tc);
    if (p)
        timer_arm(&p->timers, &tc->t, tc->first);
    else
        proc_post_task(tc->owner, &tc->arm_task);
    return c;
}

static ringo_chan *timerchan_new(int64_t delay, int64_t period)
{
    struct rproc *p;
    if (!run_enter(&p)) {
        errno = EINVAL; /* timers run on procs: no run, no timer */
        return NULL;
    }
    ringo_chan *c = timerchan_create(p, delay, period);
    run_exit(p);
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

void (*tick_stop_seam)(ringo_chan *c);

void ringo_tick_stop(ringo_chan *c)
{
    if (!c)
        return;
    struct rproc *p;
    /* No run: its end has freed the ticker already (and taken it). */
    if (run_enter(&p)) {
        struct timerchan *tc = tc_take(c); /* NULL: not a ticker, or stopped */
        if (__builtin_expect(tick_stop_seam != NULL, 0))
            tick_stop_seam(c);
        if (tc && tc->owner == p && tc->promised) {
            tc_stop_task(p, &tc->stop_task);
        } else if (tc) {
            /* On another proc; or on the owner before the task that arms
             * a plain thread's ticker has run (not promised yet), where
             * the stop must follow it (the task queue is FIFO), or the
             * arming would touch the freed ticker.  (Not armed: not
             * firing, no wait.) */
            /* The full barrier: the exchange before the load of
             * `firing`, against tc_fire's seq_cst store and load ("No
             * tick after a stop"); the tick it may be sending is in the
             * channel before we return (acquire, with the seq_cst load:
             * pairs with its release of `firing`). */
            smp_mb();
            for (unsigned spins = 0; load_seqcst(&tc->firing); spins++) {
                if (spins < 1000)
                    cpu_relax();
                else
                    sched_yield();
            }
            proc_post_task(tc->owner, &tc->stop_task);
        }
        run_exit(p);
    }
    ringo_chan_release(c);
}
