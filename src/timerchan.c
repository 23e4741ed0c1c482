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
 * once stopped; either, once no longer referenced: "Unreferenced" below),
 * so the caller may release its reference at any time.
 *
 * Owner-only state: the heap entry and `when` belong to the owner proc.
 * A run that ends with timers still armed discards them (timer_heap_free
 * calls tc_discard).  Plain threads reach the owner through run_enter
 * (internal.h), so the run cannot end and free it under them.
 *
 * Stopping.  Any number of holders may stop one timer at once, from any
 * thread, while its owner may be firing it, or freeing it for reasons of
 * its own (the run ends, or no memory to arm it).  So nobody may touch the
 * timer before owning it, and c->timer is the token of ownership: whoever
 * takes it with an exchange for NULL frees the timer, or has the owner do
 * so, and every other taker finds NULL and leaves it alone.  A one-shot
 * timer that has fired takes itself, the same way.
 *
 *     stop (any thread)                  owner, freeing on its own
 *     tc = xchg(c->timer, NULL)          tc2 = xchg(c->timer, NULL)
 *     tc: post stop_task to the owner    tc2: free it
 *         (or run it, on the owner)      NULL: a stop owns it; leave it
 *     NULL: someone else has it
 *
 * Exactly one exchange returns tc, so one party frees it; no one reads
 * c->timer and then uses what it read without having taken it (the old
 * read-then-flag scheme let a second stopper flag a timer the owner had
 * just freed).  The channel itself outlives all of this: each stopper
 * holds a reference, and the timer holds its own until it is freed.
 *
 * A stop that took the timer always ends in its stop_task, run or
 * discarded: tc_stop_task disarms and frees it; tc_stop_discard does the
 * same at the end of the run, on the owner's heap, which free_procs frees
 * only after discarding the owner's tasks.
 *
 * Unreferenced.  A timer whose own reference is the last one left can
 * deliver to nobody: no holder remains to receive, and none can appear
 * (only a holder can retain).  So a holder's ringo_chan_release that would
 * leave only the timer's reference stops the timer first, as Go (1.23 on)
 * collects timers and tickers nobody references: a server that makes a
 * ringo_after per request for a select's timeout, or forgets a ticker,
 * does not keep every timer until it fires.  The release looks at the
 * count while it still holds its own reference; the count is 2 and the
 * timer still pending (the exchange below returns it) only if the two are
 * its own and the timer's: the timer's reference goes only with the
 * timer, which its taker frees, and the timer never retains.
 *
 * Two holders that release at once must not both see 3 and both leave:
 * so the release decrements by compare-and-swap from the count it looked
 * at, and one that finds the count moved looks again (and sees 2).  The
 * runtime's own short references (a channel operation's) are dropped with
 * chan_unref, which does not look: the operation that took one may be
 * the timer's own send, in tc_fire, where a stop would free the timer
 * under it.  A holder's release that met the send's short reference saw
 * one reference too many and left; so a ticker that has sent looks at the
 * count itself, and stops if its own reference is the only one left (a
 * one-shot timer is done after its send anyway).  Other operations' short
 * references are taken by a holder's own operation, whose holder releases
 * later; except a send by a goroutine that holds no reference (chan.c
 * "Releasing" allows it), which can make the last holder's release leave a
 * ticker running: the man page asks every user to hold a reference.
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
    _Atomic uint32_t firing;    /* the owner is in tc_fire ("No tick after a stop") */
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

/* Free tc; only by whoever took it from c->timer. */
static void tc_free(struct timerchan *tc)
{
    if (tc->promised)
        tc->owner->timer_promised--; /* owner proc, or teardown */
    chan_unref(tc->c);
    free(tc);
}

/* Take c's timer (see "Stopping"): it, if the caller now owns it; NULL if
 * someone else took it first, or c is no timer's.  acq_rel: the acquire
 * sees tc as its creator filled it in, and the release orders whatever the
 * taker did before against a later taker's acquire; of all the exchanges,
 * only one returns tc. */
static struct timerchan *tc_take(ringo_chan *c)
{
    return xchg_acq_rel(&c->timer, NULL);
}

/* The owner frees tc, being done with it (fired once, nobody references
 * it, the run ends, no memory): only if no stop has taken it first; that
 * stop's task frees it.  Whether it freed tc. */
static bool tc_free_unless_stopped(struct timerchan *tc)
{
    if (tc_take(tc->c) != tc)
        return false;
    tc_free(tc);
    return true;
}

static void tc_discard(struct rtimer *t)
{
    tc_free_unless_stopped((struct timerchan *)t);
}

/* No tick after a stop.  A stop on another proc than the timer's owner
 * takes the timer and posts its disarming to the owner, which may fire
 * the timer meanwhile; as Go's Ticker.Stop and Timer.Stop, ringo_tick_stop
 * promises that nothing is sent once it has returned.  So a firing timer
 * raises `firing` and then looks whether a stop has taken it, and a
 * stopper on another proc takes it and then waits for `firing` to drop:
 *
 *     owner (tc_fire)                    stopper (ringo_tick_stop)
 *     firing = 1                         xchg(c->timer, NULL)
 *     c->timer == tc?                    while (firing) wait
 *       no: return (not sent)            post stop_task
 *       yes: send; firing = 0
 *
 * Each side stores, then loads the other's word (seq_cst): the owner sees
 * the timer taken and sends nothing, or the stopper sees it firing and
 * waits until its tick is in the channel.  The fire is a non-blocking
 * send: the wait is short.  The stopper waits before posting its task,
 * whose run frees the timer.
 *
 * A one-shot timer, once sent, takes itself; a stop that takes it first
 * (after the look) has waited for the send, and its task frees it.  So a
 * stopper that finds c->timer empty comes after the timer's send, whose
 * value is in the channel (or was dropped, the channel full) by then. */
void (*tick_fire_seam)(ringo_chan *c);

static void tc_fire(struct rproc *p, struct rtimer *t)
{
    struct timerchan *tc = (struct timerchan *)t;
    store_seqcst(&tc->firing, 1);
    if (load_seqcst(&tc->c->timer) != tc) {
        store_release(&tc->firing, 0); /* stopped: its task disarms and frees it */
        return;
    }
    int64_t now = now_ns();
    ringo_chan_try_send(tc->c, &now); /* -EAGAIN: full, the tick is dropped */
    /* release: the send before the stopper's acquire load sees 0 */
    store_release(&tc->firing, 0);
    if (!tc->period) {
        tc_free_unless_stopped(tc);
        return;
    }
    if (__builtin_expect(tick_fire_seam != NULL, 0))
        tick_fire_seam(tc->c);
    /* acquire: as timerchan_release's look.  1: every holder has gone
     * ("Unreferenced": one may have met our send's own reference).  Not
     * freed: a stop took it, and its task disarms it. */
    if (load_acquire(&tc->c->refs) == 1 && tc_free_unless_stopped(tc))
        return;
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

/* On the owner, by the stop that took the timer. */
static void tc_stop_task(struct rproc *p, struct rtask *task)
{
    struct timerchan *tc = (struct timerchan *)((char *)task - offsetof(struct timerchan, stop_task));
    timer_disarm(&p->timers, &tc->t); /* a no-op if not armed */
    tc_free(tc);
}

static void tc_stop_discard(struct rtask *task)
{
    /* The run ended first.  free_procs discards the owner's tasks before
     * it frees the owner's heap, so the timer can still leave it. */
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

/* Stop c's timer, if a stop or the timer itself has not taken it first;
 * the caller holds a reference to c. */
static void tc_stop(ringo_chan *c)
{
    struct rproc *p;
    /* No run: its end has freed the timer already (and taken it). */
    if (run_enter(&p)) {
        struct timerchan *tc = tc_take(c); /* NULL: no timer's, fired, or stopped */
        if (__builtin_expect(tick_stop_seam != NULL, 0))
            tick_stop_seam(c);
        if (tc && tc->owner == p && tc->promised) {
            tc_stop_task(p, &tc->stop_task);
        } else if (tc) {
            /* On another proc; or on the owner before the task that arms
             * a plain thread's timer has run (not promised yet), where
             * the stop must follow it (the task queue is FIFO), or the
             * arming would touch the freed timer.  (Not armed: not
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
}

void ringo_tick_stop(ringo_chan *c)
{
    if (!c)
        return;
    tc_stop(c);
    chan_unref(c); /* the timer is taken: nothing for ringo_chan_release to look at */
}

void (*timer_release_seam)(ringo_chan *c);

void timerchan_release(ringo_chan *c)
{
    /* acquire: with the release of the holders' decrements, what they did
     * happens before a stop that the count lets us make. */
    uint32_t refs = load_acquire(&c->refs);
    for (;;) {
        if (__builtin_expect(timer_release_seam != NULL, 0))
            timer_release_seam(c);
        /* 2: ours and the timer's, if tc_stop's exchange still finds the
         * timer (see "Unreferenced"); the stop drops the timer's. */
        if (refs == 2 && load_relaxed(&c->timer)) {
            tc_stop(c);
            chan_unref(c);
            return;
        }
        /* acq_rel, as chan_unref's decrement; a failure reloads refs
         * (acquire) and looks again. */
        if (cas_acq_rel(&c->refs, &refs, refs - 1)) {
            if (refs == 1)
                chan_free(c);
            return;
        }
    }
}
