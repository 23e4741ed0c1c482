/*
 * ringo — Go's concurrency model for C programs on Linux.
 *
 * Goroutines are fibers pinned to per-core io_uring rings ("procs").  A
 * goroutine runs until it blocks, yields or exits; every blocking call
 * (sleep, channel operation, I/O) parks only the calling goroutine while its
 * proc keeps running the others.  See ringo(7) for the overview and one man
 * page per function for the details.
 *
 * Conventions: functions return 0 (or a count) on success and a negative
 * errno on failure; constructors that return a pointer return NULL and set
 * errno.  Time is int64_t nanoseconds on CLOCK_MONOTONIC.
 */
#ifndef RINGO_H
#define RINGO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(RINGO_API)
#define RINGO_API __attribute__((visibility("default")))
#elif !defined(RINGO_API)
#define RINGO_API
#endif

/* The version of this header; the library's is ringo_version(3). */
#define RINGO_VERSION_MAJOR 0
#define RINGO_VERSION_MINOR 1
#define RINGO_VERSION_PATCH 0

/* No deadline. */
#define RINGO_NEVER INT64_MAX

/*
 * Runtime: procs, goroutines and their life cycle.
 * ringo_run() starts the procs and runs main_fn as the first goroutine; it
 * returns when every goroutine has finished (0) or on deadlock (-EDEADLK).
 */
struct ringo_config {
    unsigned procs;        /* scheduler threads, one ring each; 0 = CPUs in the affinity mask */
    size_t   stack_size;   /* per goroutine; 0 = default (64 KiB) */
    unsigned ring_entries; /* SQ size per ring; 0 = default (256) */
    /* more fields may follow; zero always means "default" */
};

RINGO_API int      ringo_run(void (*main_fn)(void *), void *arg, const struct ringo_config *cfg);
RINGO_API int64_t  ringo_go(void (*fn)(void *), void *arg);
RINGO_API int64_t  ringo_go_on(int proc, void (*fn)(void *), void *arg);
RINGO_API void     ringo_yield(void);
RINGO_API _Noreturn void ringo_exit(void);
RINGO_API int64_t  ringo_id(void);
RINGO_API int      ringo_proc(void);
RINGO_API int      ringo_nprocs(void);
RINGO_API size_t   ringo_count(void);
RINGO_API int      ringo_cancel(int64_t id);

/*
 * Time and deadlines.  Each goroutine has one deadline (initially
 * RINGO_NEVER); every blocking call returns -ETIMEDOUT once it has passed
 * and -ECANCELED once the goroutine has been cancelled.
 */
RINGO_API int64_t  ringo_now(void);
RINGO_API int      ringo_sleep(int64_t ns);
RINGO_API int      ringo_sleep_until(int64_t when);
RINGO_API int64_t  ringo_deadline_set(int64_t when);
RINGO_API int64_t  ringo_deadline(void);

/*
 * Channels: Go's chan.  Elements are copied by value (elem_size bytes);
 * cap 0 is unbuffered.  A NULL channel is Go's nil channel: never ready.
 * Send on a closed channel, and close of a closed one, return -EPIPE;
 * receive drains a closed channel, then returns -EPIPE with *elem zeroed.
 */
typedef struct ringo_chan ringo_chan;
enum { RINGO_SEND = 1, RINGO_RECV = 2 };

RINGO_API ringo_chan *ringo_chan_make(size_t elem_size, size_t cap);
RINGO_API ringo_chan *ringo_chan_retain(ringo_chan *c);
RINGO_API void        ringo_chan_release(ringo_chan *c);
RINGO_API int         ringo_chan_send(ringo_chan *c, const void *elem);
RINGO_API int         ringo_chan_recv(ringo_chan *c, void *elem);
RINGO_API int         ringo_chan_try_send(ringo_chan *c, const void *elem);
RINGO_API int         ringo_chan_try_recv(ringo_chan *c, void *elem);
RINGO_API int         ringo_chan_close(ringo_chan *c);
RINGO_API size_t      ringo_chan_len(const ringo_chan *c);
RINGO_API size_t      ringo_chan_cap(const ringo_chan *c);

/*
 * Select: wait for the first of several channel operations, as Go's
 * select; among ready cases one is chosen uniformly at random.
 */
struct ringo_case {
    ringo_chan *chan;  /* NULL: this case is never ready (Go's nil channel) */
    int         op;    /* RINGO_SEND or RINGO_RECV */
    void       *elem;  /* value to send / where to store the received value */
    int         err;   /* out: 0, or -EPIPE when the channel was closed */
};
#define RINGO_NONBLOCK 1
RINGO_API int ringo_select(struct ringo_case *cases, size_t n, int flags);

/* Timers as channels (cap 1, elem int64_t: the ringo_now() of the firing). */
RINGO_API ringo_chan *ringo_after(int64_t ns);
RINGO_API ringo_chan *ringo_tick(int64_t period);
RINGO_API void        ringo_tick_stop(ringo_chan *t);

/*
 * Introspection.
 */
struct ringo_stats {
    uint64_t goroutines;      /* live now */
    uint64_t spawned;         /* since ringo_run began, main included */
    uint64_t switches;        /* fiber switches */
    uint64_t submissions;     /* SQEs */
    uint64_t completions;     /* CQEs */
    uint64_t enters;          /* io_uring_enter system calls */
    uint64_t cross_wakes;     /* goroutines made ready on another proc (pushed to its inbox) */
    /* more may follow */
};

RINGO_API int  ringo_stats(struct ringo_stats *out);
RINGO_API void ringo_dump(int fd);
RINGO_API const char *ringo_version(void);

#ifdef __cplusplus
}
#endif

#endif /* RINGO_H */
