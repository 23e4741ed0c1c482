/*
 * timer.h — a proc's timers: absolute CLOCK_MONOTONIC deadlines in a
 * 4-ary min-heap and a queue of those armed in order (timer.c), owned and
 * touched by that proc only.
 */
#ifndef RINGO_TIMER_H
#define RINGO_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct rproc;

struct rtimer;
struct rtimer_ops {
    void (*fire)(struct rproc *p, struct rtimer *t);
    void (*discard)(struct rtimer *t);  /* run teardown with the timer still armed; may be NULL */
};

struct rtimer {
    int64_t when;                   /* its place in the heap or the queue: absolute ns, CLOCK_MONOTONIC */
    int64_t due;                    /* when it fires; >= when (timer_rearm, timer.c) */
    const struct rtimer_ops *ops;
    uint32_t idx;                   /* 0: not armed; else its place: heap index + 1, or
                                     * TIDX_QUEUE | the queue slot (timer.c "The queue") */
};
#define TIDX_QUEUE 0x80000000u

/* A heap entry carries its timer's place, so that sifting compares
 * without touching the timers (timer.c "The heap's layout"). */
struct theap_ent {
    int64_t when;                   /* == t->when */
    struct rtimer *t;
};

struct timer_heap {
    struct theap_ent *h;            /* inside mem, skewed to the line (timer.c) */
    void *mem;
    size_t hn, cap;                 /* heap entries, and room for as many */
    /* The queue (timer.c): a ring of q_cap (a power of two, or 0) entries,
     * in order of when; slots [q_head, q_tail) in use, counted mod 2^32,
     * emptied ones (t == NULL) among them, never at either end. */
    struct theap_ent *q;
    uint32_t q_cap, q_head, q_tail;
    size_t n;                       /* timers armed, in the heap and the queue */
};

int64_t now_ns(void);

/* The coarse clock (timer.c "Reading the clock less"): CLOCK_MONOTONIC_COARSE,
 * never ahead of now_ns(), and taken to lag it by less than clock_slack_ns
 * (two of its ticks).  now_coarse() is a vDSO load of the kernel's last
 * tick, with no TSC read. */
extern int64_t clock_slack_ns;
void timer_clock_init(void);

static inline int64_t now_coarse(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Whether the absolute CLOCK_MONOTONIC time d has come: the coarse clock
 * decides when d is more than clock_slack_ns from it, CLOCK_MONOTONIC
 * only inside that window. */
static inline bool deadline_passed(int64_t d)
{
    int64_t c = now_coarse();
    if (d <= c)
        return true;
    if (d > c + clock_slack_ns)
        return false;
    return now_ns() >= d;
}

/* Make room for n timers, so that arming up to n never fails. */
int  timer_reserve(struct timer_heap *th, size_t n);                     /* 0 or -ENOMEM */
int  timer_arm(struct timer_heap *th, struct rtimer *t, int64_t when);   /* 0 or -ENOMEM */
void timer_disarm(struct timer_heap *th, struct rtimer *t);
/* Arm t for when, armed or not; moving an armed timer later costs nothing
 * now ("Moved later", timer.c).  0 or -ENOMEM (then t is as it was).
 * Inline for that case, which every wait under a deadline makes
 * (park_commit): the call of the whole function saved registers that only
 * its other cases need. */
int  timer_rearm_slow(struct timer_heap *th, struct rtimer *t, int64_t when);
static inline int timer_rearm(struct timer_heap *th, struct rtimer *t, int64_t when)
{
    if (t->idx && when >= t->when) {
        t->due = when; /* moved later */
        return 0;
    }
    return timer_rearm_slow(th, t, when);
}
/* The nearest time the heap needs looking at (a timer may then only move):
 * INT64_MAX if none. */
static inline int64_t timer_next(const struct timer_heap *th)
{
    int64_t h = th->hn ? th->h[0].when : INT64_MAX;
    int64_t q = th->q_head != th->q_tail ? th->q[th->q_head & (th->q_cap - 1)].when : INT64_MAX;
    return h < q ? h : q;
}
/* Fire every timer due at now; returns how many fired. */
size_t timer_run(struct rproc *p, struct timer_heap *th, int64_t now);
void timer_heap_free(struct timer_heap *th);

#endif /* RINGO_TIMER_H */
