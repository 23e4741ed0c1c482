/*
 * timer.h — a proc's timers: a 4-ary min-heap of absolute CLOCK_MONOTONIC
 * deadlines, owned and touched by that proc only.
 */
#ifndef RINGO_TIMER_H
#define RINGO_TIMER_H

#include <stddef.h>
#include <stdint.h>

struct rproc;

struct rtimer {
    int64_t when;                   /* absolute ns, CLOCK_MONOTONIC */
    uint32_t idx;                   /* position in the heap + 1; 0 = not armed */
    void (*fire)(struct rproc *p, struct rtimer *t);
    void (*discard)(struct rtimer *t);  /* run teardown with the timer still armed; may be NULL */
};

struct timer_heap {
    struct rtimer **h;
    size_t n, cap;
};

int64_t now_ns(void);

/* Make room for n timers, so that arming up to n never fails. */
int  timer_reserve(struct timer_heap *th, size_t n);                     /* 0 or -ENOMEM */
int  timer_arm(struct timer_heap *th, struct rtimer *t, int64_t when);   /* 0 or -ENOMEM */
void timer_disarm(struct timer_heap *th, struct rtimer *t);
int64_t timer_next(const struct timer_heap *th);                        /* INT64_MAX if none */
/* Fire every timer due at now; returns how many fired. */
size_t timer_run(struct rproc *p, struct timer_heap *th, int64_t now);
void timer_heap_free(struct timer_heap *th);

#endif /* RINGO_TIMER_H */
