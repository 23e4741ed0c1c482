/*
 * timer.c — per-proc timers.
 *
 * Sleeps and deadlines are kept in a 4-ary min-heap per proc rather than as
 * one IORING_OP_TIMEOUT each: arming and cancelling are O(log n) in user
 * space with no SQE, and the proc's single io_uring_enter per round waits
 * with a timeout equal to the nearest entry (IORING_ENTER_EXT_ARG), so a
 * hundred thousand sleepers cost one kernel timer, not a hundred thousand,
 * and a cancelled sleeper needs no TIMEOUT_REMOVE round trip.
 * (tests/bench/sleepers measures the 100k-sleepers case.)
 *
 * Timers armed in the order they fire go to a queue beside the heap
 * instead ("The queue", below).
 *
 * Invariants: t->idx == 0 iff t is armed in neither; in the heap,
 * th->h[t->idx - 1].t == t and th->h[t->idx - 1].when == t->when; in the
 * queue (t->idx & TIDX_QUEUE), th->q[t->idx & ~TIDX_QUEUE] holds the
 * same.  th->n counts both.  Only the owner proc touches its timers.
 *
 * The heap's layout.  Each entry carries its timer's place beside the
 * pointer (16 bytes, as Go's heap of timerWhen), so a sift compares
 * without reading the timers, which live in goroutines all over memory;
 * and the array starts 48 bytes past a cache line, so that the four
 * children of an entry (h[4i+1 .. 4i+4]) fill exactly one line.  A pop
 * from a heap of 100k sleepers then reads one line per level, where
 * comparing through the pointers read four timers' lines: callgrind counted
 * 39% fewer L1 data misses for 20k sleepers on one proc
 * (tests/bench/sleepers), for 3% more instructions.
 *
 * Moved later (Go's timerModifiedLater).  A timer is placed by t->when
 * and fires at t->due >= t->when.  timer_rearm of an armed timer to a
 * later time only sets due; when the timer reaches the top at its old
 * place, timer_run moves it down to due instead of firing it.  A
 * goroutine's deadline timer is re-armed this way at every wait (sched.c
 * park_commit): a server connection that reads under a deadline a little
 * later each time costs no sift per read, one per old deadline passed.
 *
 * Reading the clock less.  CLOCK_MONOTONIC through the vDSO reads the TSC
 * (20-30 ns); CLOCK_MONOTONIC_COARSE is the kernel's time at its last tick,
 * a plain load (a few ns), at or behind CLOCK_MONOTONIC and, while any CPU
 * ticks, less than a tick behind.  The hot paths ask only "has d come?"
 * of times that are mostly far away (a connection's deadline, seconds
 * off), so they ask the coarse clock, and CLOCK_MONOTONIC only when d is
 * within clock_slack_ns (two ticks, from clock_getres(2)) of it:
 * deadline_passed() for the checks before a blocking call (block_check,
 * io.c io_check), proc_timers_run for the timer heap, and the proc's sleep
 * timeout (engine_uring.c ns_left), which wakes at most clock_slack_ns
 * early when its timer is far and then sleeps the rest on CLOCK_MONOTONIC.
 * So nothing fires early, and a deadline or timer is late only if the
 * coarse clock lags by more than two ticks (every CPU tickless, or the
 * ticking one held off), by the excess, or if its proc is busy: a proc
 * with goroutines queued looks at its timers at its periodic polls, about
 * every millisecond when its goroutines run long between scheduling points
 * (sched.c "Pacing the polls"), and not at all while one runs without
 * yielding.  A keep-alive request (a read
 * and a write under a deadline) thus reads CLOCK_MONOTONIC only where the
 * program itself asks (ringo_now).
 */
#include "config.h"

#include "timer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringo.h"
#include "internal.h"

int64_t clock_slack_ns = 20000000; /* until timer_clock_init: 2 ticks at HZ=100 */

/* At run start (runtime.c), before any proc runs: two ticks of the coarse
 * clock as clock_getres(2) gives them; 2 x 10 ms if it cannot say or says
 * something odd. */
void timer_clock_init(void)
{
    struct timespec r;
    int64_t res = 0;
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &r) == 0)
        res = (int64_t)r.tv_sec * 1000000000 + r.tv_nsec;
    if (res <= 0 || res > 100000000)
        res = 10000000;
    clock_slack_ns = 2 * res;
}

int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void place(struct timer_heap *th, size_t i, struct theap_ent e)
{
    th->h[i] = e;
    e.t->idx = (uint32_t)i + 1;
}

static void sift_up(struct timer_heap *th, size_t i)
{
    struct theap_ent e = th->h[i];
    while (i > 0) {
        size_t parent = (i - 1) / 4;
        if (th->h[parent].when <= e.when)
            break;
        place(th, i, th->h[parent]);
        i = parent;
    }
    place(th, i, e);
}

static void sift_down(struct timer_heap *th, size_t i)
{
    struct theap_ent e = th->h[i];
    size_t n = th->hn;
    for (;;) {
        size_t c = i * 4 + 1, best = i;
        int64_t bw = e.when;
        size_t end = c + 4 < n ? c + 4 : n;
        /* The four children share one line ("The heap's layout"). */
        for (size_t k = c; k < end; k++) {
            if (th->h[k].when < bw) {
                bw = th->h[k].when;
                best = k;
            }
        }
        if (best == i)
            break;
        place(th, i, th->h[best]);
        i = best;
    }
    place(th, i, e);
}

/* The entries start HEAP_SKEW bytes past a line, so that h[4i+1 .. 4i+4]
 * (the children of i) fill one line. */
#define HEAP_SKEW (64 - sizeof(struct theap_ent))

int timer_reserve(struct timer_heap *th, size_t n)
{
    if (n <= th->cap)
        return 0;
    size_t cap = th->cap ? th->cap : 64;
    while (cap < n)
        cap *= 2;
    size_t old_off = th->h ? (size_t)((char *)th->h - (char *)th->mem) : 0;
    void *mem = seam_realloc(th->mem, cap * sizeof(struct theap_ent) + 64 + HEAP_SKEW);
    if (!mem)
        return -ENOMEM;
    /* realloc keeps the bytes but not their alignment: move the entries
     * to the skew if the block's start moved within a line. */
    uintptr_t start = ((uintptr_t)mem + 63) & ~(uintptr_t)63;
    size_t off = start + HEAP_SKEW - (uintptr_t)mem;
    if (th->h && off != old_off)
        memmove((char *)mem + off, (char *)mem + old_off, th->hn * sizeof(struct theap_ent));
    th->mem = mem;
    th->h = (struct theap_ent *)((char *)mem + off);
    th->cap = cap;
    return 0;
}

/* Into the heap; there is room (the caller made sure). */
static void heap_push(struct timer_heap *th, struct rtimer *t)
{
    th->h[th->hn] = (struct theap_ent){ .when = t->when, .t = t };
    th->hn++;
    th->n++;
    sift_up(th, th->hn - 1);
}

static void heap_remove(struct timer_heap *th, struct rtimer *t)
{
    size_t i = t->idx - 1;
    t->idx = 0;
    th->n--;
    th->hn--;
    if (i == th->hn)
        return;
    struct theap_ent last = th->h[th->hn];
    place(th, i, last);
    if (i > 0 && th->h[(i - 1) / 4].when > last.when)
        sift_up(th, i);
    else
        sift_down(th, i);
}

/* ---------------------------------------------------------------------- */
/* The queue.
 *
 * Timers are mostly armed in the order they fire: every sleep of one
 * length, every connection's deadline of one timeout, is later than the
 * one armed before it.  A heap makes each of those pay a sift to the
 * bottom when it comes to the top (the last entry, the latest, takes the
 * top's place and sinks all the way): for 100k sleepers, nine levels and
 * a fifth of tests/bench/sleepers' instructions.  So beside the heap a
 * proc keeps a queue: a ring of entries in order of when, to which a
 * timer is appended if it is due no earlier than the queue's last entry
 * (else it goes to the heap).  Arming at the tail and firing at the head
 * are O(1); the next timer is the earlier of the heap's top and the
 * queue's head.
 *
 * A timer disarmed in the middle of the queue leaves its slot empty
 * (t == NULL; its when stays, so the order holds); empty slots at either
 * end are dropped at once, so the head and the last entry are always
 * armed timers.  When the ring is full it is copied, without its empty
 * slots, into one of at least twice the armed count (each timer's idx
 * follows it): what it costs is paid for by the appends since the last
 * copy.  A ring that cannot grow (no memory) sends the timer to the heap,
 * whose room timer_reserve promised, so arming still never fails there.
 *
 * "Moved later" works as in the heap: a queued timer whose due has moved
 * on is taken off the head when its old time comes, and armed again at
 * its due (appended, or into the heap). */
#define QUEUE_MIN 64u
#define QUEUE_AHEAD 6u /* timer_run: entries fetched ahead */

static inline struct theap_ent *q_at(const struct timer_heap *th, uint32_t pos)
{
    return &th->q[pos & (th->q_cap - 1)];
}

/* Room for one more entry at the tail: 0, or -ENOMEM. */
static int q_room(struct timer_heap *th)
{
    if (th->q_tail - th->q_head < th->q_cap)
        return 0;
    size_t live = th->n - th->hn;
    uint32_t cap = QUEUE_MIN;
    while (cap < 2 * (live + 1)) {
        if (cap >= TIDX_QUEUE / 2)
            return -ENOMEM; /* the index has no room for more */
        cap *= 2;
    }
    struct theap_ent *q = seam_malloc(cap * sizeof *q);
    if (!q)
        return -ENOMEM;
    uint32_t k = 0;
    for (uint32_t pos = th->q_head; pos != th->q_tail; pos++) {
        struct theap_ent e = *q_at(th, pos);
        if (!e.t)
            continue;
        q[k] = e;
        e.t->idx = TIDX_QUEUE | k;
        k++;
    }
    free(th->q);
    th->q = q;
    th->q_cap = cap;
    th->q_head = 0;
    th->q_tail = k;
    return 0;
}

/* Append t (its when set) if it keeps the queue in order and there is
 * room: true, or false for the heap. */
static bool q_append(struct timer_heap *th, struct rtimer *t)
{
    if (th->q_head != th->q_tail && t->when < q_at(th, th->q_tail - 1)->when)
        return false;
    if (q_room(th) != 0)
        return false;
    uint32_t pos = th->q_tail++;
    *q_at(th, pos) = (struct theap_ent){ .when = t->when, .t = t };
    t->idx = TIDX_QUEUE | (pos & (th->q_cap - 1));
    th->n++;
    return true;
}

static void q_remove(struct timer_heap *th, struct rtimer *t)
{
    th->q[t->idx & ~TIDX_QUEUE].t = NULL;
    t->idx = 0;
    th->n--;
    while (th->q_head != th->q_tail && !q_at(th, th->q_head)->t)
        th->q_head++;
    while (th->q_tail != th->q_head && !q_at(th, th->q_tail - 1)->t)
        th->q_tail--;
}

/* t, not armed, with its when set: into the queue, or else the heap.
 * 0, or -ENOMEM when the heap is full and cannot grow. */
static int place_timer(struct timer_heap *th, struct rtimer *t)
{
    if (q_append(th, t))
        return 0;
    if (th->hn == th->cap && timer_reserve(th, th->hn + 1) != 0)
        return -ENOMEM;
    heap_push(th, t);
    return 0;
}

int timer_arm(struct timer_heap *th, struct rtimer *t, int64_t when)
{
    if (t->idx)
        timer_disarm(th, t);
    t->when = t->due = when;
    return place_timer(th, t);
}

/* timer_rearm (timer.h) of a timer not armed, or armed and moved earlier
 * (moved later is the inline case: see the top). */
int timer_rearm_slow(struct timer_heap *th, struct rtimer *t, int64_t when)
{
    if (!t->idx)
        return timer_arm(th, t, when);
    if (t->idx & TIDX_QUEUE) {
        /* Earlier: out of the queue, and in again where it now belongs.
         * Room in the heap first, so that a failure leaves t as it was. */
        if (th->hn == th->cap && timer_reserve(th, th->hn + 1) != 0)
            return -ENOMEM;
        q_remove(th, t);
        t->when = t->due = when;
        return place_timer(th, t);
    }
    t->when = t->due = when;
    th->h[t->idx - 1].when = when;
    sift_up(th, t->idx - 1);
    return 0;
}

void timer_disarm(struct timer_heap *th, struct rtimer *t)
{
    if (!t->idx)
        return;
    if (t->idx & TIDX_QUEUE)
        q_remove(th, t);
    else
        heap_remove(th, t);
}

size_t timer_run(struct rproc *p, struct timer_heap *th, int64_t now)
{
    size_t fired = 0;
    for (;;) {
        int64_t hw = th->hn ? th->h[0].when : INT64_MAX;
        int64_t qw = th->q_head != th->q_tail ? q_at(th, th->q_head)->when : INT64_MAX;
        bool from_heap = hw <= qw;
        if ((from_heap ? hw : qw) > now)
            break;
        struct rtimer *t;
        if (from_heap) {
            t = th->h[0].t;
        } else {
            t = q_at(th, th->q_head)->t;
            /* Each timer lives with its goroutine, all over memory: its
             * line and the one before it (the goroutine's line 1, which
             * the fire reads) are misses that a run of due timers would
             * take one after another.  Fetch those of the entry
             * QUEUE_AHEAD on, whose slot is in the ring's own lines. */
            uint32_t ahead = th->q_head + QUEUE_AHEAD;
            if ((uint32_t)(th->q_tail - ahead) - 1 < th->q_cap) {
                const struct rtimer *a = q_at(th, ahead)->t;
                if (a) {
                    __builtin_prefetch((const char *)a - 64, 1, 3);
                    __builtin_prefetch(a, 1, 3);
                }
            }
        }
        if (t->due > now) {
            /* Moved later: to its place. */
            if (from_heap) {
                t->when = th->h[0].when = t->due;
                sift_down(th, 0);
            } else {
                /* The heap has room: t is counted in the armed timers,
                 * for which timer_reserve made it (and the model test,
                 * which reserves nothing, lets it grow). */
                q_remove(th, t);
                t->when = t->due;
                if (place_timer(th, t) != 0)
                    bug("timer heap full despite the reservation made for its timers");
            }
            continue;
        }
        timer_disarm(th, t);
        t->ops->fire(p, t);
        fired++;
    }
    return fired;
}

void timer_heap_free(struct timer_heap *th)
{
    for (size_t i = 0; i < th->hn; i++) {
        struct rtimer *t = th->h[i].t;
        t->idx = 0;
        if (t->ops->discard)
            t->ops->discard(t);
    }
    for (uint32_t pos = th->q_head; pos != th->q_tail; pos++) {
        struct rtimer *t = q_at(th, pos)->t;
        if (!t)
            continue;
        t->idx = 0;
        if (t->ops->discard)
            t->ops->discard(t);
    }
    free(th->mem);
    free(th->q);
    *th = (struct timer_heap){ 0 };
}

/* ---------------------------------------------------------------------- */
/* Public time API: sleeps and the goroutine deadline. */

int64_t ringo_now(void)
{
    return now_ns();
}

/* ringo_sleep_until, given a reading of the clock taken just before (or
 * -1): a sleep for a duration reads the clock once, not twice. */
static int sleep_until(int64_t when, int64_t now)
{
    struct rg *g = self_g();
    if (!g) {
        /* A plain thread simply sleeps. */
        if (when == RINGO_NEVER)
            when = INT64_MAX - 1;
        struct timespec ts = { .tv_sec = when / 1000000000, .tv_nsec = when % 1000000000 };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        return 0;
    }
    int r = block_check(g);
    if (r)
        return r;
    if (when <= (now >= 0 ? now : now_ns())) {
        ringo_yield();
        return 0;
    }
    uint64_t token = park_prepare(g, W_SLEEP, PARK_INTERRUPTIBLE);
    /* The timer stays armed even for "forever" (RINGO_NEVER), as Go's
     * does: a sleeping goroutine is not deadlocked. */
    if (when == RINGO_NEVER)
        when = RINGO_NEVER - 1;
    if (when < g_run(g)->wake_at) {
        g_run(g)->wake_at = when;
        g_run(g)->wake_at_result = 0;
    }
    return park_commit(g, token, PARK_INTERRUPTIBLE);
}

int ringo_sleep_until(int64_t when)
{
    return sleep_until(when, -1);
}

int ringo_sleep(int64_t ns)
{
    int64_t now = now_ns();
    int64_t when = ns <= 0 ? now : (ns > RINGO_NEVER - now ? RINGO_NEVER : now + ns);
    return sleep_until(when, now);
}

int64_t ringo_deadline_set(int64_t when)
{
    struct rg *g = self_g();
    if (!g)
        return RINGO_NEVER;
    int64_t prev = g_run(g)->deadline;
    g_run(g)->deadline = when;
    return prev;
}

int64_t ringo_deadline(void)
{
    struct rg *g = self_g();
    return g ? g_run(g)->deadline : RINGO_NEVER;
}
