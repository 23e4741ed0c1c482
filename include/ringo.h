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
 * Sync: Go's sync.Mutex, RWMutex, WaitGroup, Once and Cond, on 32-bit futex
 * words.  Usable from goroutines (which park) and plain threads (which block
 * in futex(2)) at once.  They ignore deadlines and cancellation, as in Go.
 * Each type is caller-allocated opaque storage of fixed size (part of the
 * ABI); zero, or the RINGO_*_INIT macro, is the ready state.  An object must
 * not be moved or copied after first use.
 */
typedef struct { uint32_t _w[2]; } ringo_mutex;      /* zero = unlocked */
typedef struct { uint32_t _w[8]; } ringo_rwmutex;    /* zero = unlocked */
typedef struct { uint32_t _w[2]; } ringo_waitgroup;  /* zero = counter 0 */
typedef struct { uint32_t _w[2]; } ringo_once;       /* zero = not done */
typedef struct { uint32_t _w[2]; } ringo_cond;       /* zero = ready */

#define RINGO_MUTEX_INIT     { { 0 } }
#define RINGO_RWMUTEX_INIT   { { 0 } }
#define RINGO_WAITGROUP_INIT { { 0 } }
#define RINGO_ONCE_INIT      { { 0 } }
#define RINGO_COND_INIT      { { 0 } }

RINGO_API void ringo_mutex_lock(ringo_mutex *m);
RINGO_API int  ringo_mutex_trylock(ringo_mutex *m);     /* 0, -EBUSY */
RINGO_API void ringo_mutex_unlock(ringo_mutex *m);      /* fatal error if not locked */

RINGO_API void ringo_rwmutex_rlock(ringo_rwmutex *m);
RINGO_API void ringo_rwmutex_runlock(ringo_rwmutex *m);
RINGO_API void ringo_rwmutex_lock(ringo_rwmutex *m);
RINGO_API void ringo_rwmutex_unlock(ringo_rwmutex *m);

RINGO_API void ringo_waitgroup_add(ringo_waitgroup *wg, int delta);  /* fatal error if the counter goes negative */
RINGO_API void ringo_waitgroup_done(ringo_waitgroup *wg);
RINGO_API void ringo_waitgroup_wait(ringo_waitgroup *wg);

RINGO_API void ringo_once_do(ringo_once *o, void (*fn)(void *), void *arg);

RINGO_API void ringo_cond_wait(ringo_cond *c, ringo_mutex *m);
RINGO_API void ringo_cond_signal(ringo_cond *c);
RINGO_API void ringo_cond_broadcast(ringo_cond *c);

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
