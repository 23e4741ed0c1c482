/*
 * futex.h — wait on a 32-bit word and wake its waiters, for goroutines and
 * plain threads alike (futex.c).
 */
#ifndef RINGO_FUTEX_H
#define RINGO_FUTEX_H

#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomic.h"

/* futex(2) on a 32-bit word, for the calls with no timeout; the result as
 * syscall(2) gives it (-1 and errno on failure). */
static inline long sys_futex(_Atomic uint32_t *addr, int op, uint32_t val)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, NULL, NULL, 0);
}

/* Block the caller while *addr == val.  Returns after a futex_wake() on
 * addr, at once if *addr != val, or spuriously: callers re-check their
 * condition in a loop.  Ignores deadlines and cancellation.  reason is the
 * enum wait_reason a dump shows for a parked goroutine. */
void futex_wait(_Atomic uint32_t *addr, uint32_t val, int reason);

/* As futex_wait, but the wait also ends once `when` (ringo_now's clock;
 * RINGO_NEVER: no limit) has passed and, for a goroutine, at its deadline
 * and on ringo_cancel.  Returns 0 (woken, or spuriously: re-check),
 * -ETIMEDOUT (when or the deadline has passed, also on entry) or
 * -ECANCELED (the goroutine is cancelled; wins over -ETIMEDOUT). */
int futex_wait_until(_Atomic uint32_t *addr, uint32_t val, int reason, int64_t when);

/* Wake up to n waiters on addr (INT32_MAX: all), goroutines and threads.
 * The caller has already changed *addr (the store the waiters re-check). */
void futex_wake(_Atomic uint32_t *addr, int n);

/* Records queued in the wait table for addr, for the tests: a wait that
 * has ended, however it ended, has left none. */
unsigned futex_table_queued(_Atomic uint32_t *addr);

/* Waits that went each way, for the tests; relaxed counters. */
struct futex_counts {
    _Atomic uint64_t uring;     /* IORING_OP_FUTEX_WAIT parks */
    _Atomic uint64_t table;     /* wait-table parks (fallback) */
    _Atomic uint64_t thread;    /* futex(2) waits by plain threads */
    _Atomic uint64_t kwake;     /* futex(2) wakes made by futex_wake */
};
extern struct futex_counts futex_counts;

/* The run's start (runtime.c): rt.futex_transit back to 0 when that loses
 * nothing (futex.c "The count across runs"). */
void futex_run_start(void);
/* In a fork's child (runtime.c): the counts of the threads it has not. */
void futex_forked(void);

/* Seams for tests (check_sync.c), NULL in programs; set before the threads
 * that use them start: a plain thread calls futex_woken_seam as its
 * futex(2) wait has returned r, and futex_wake_seam as its FUTEX_WAKE
 * has returned r, each before it changes rt.futex_transit. */
extern void (*futex_woken_seam)(long r);
extern void (*futex_wake_seam)(long r);

#endif /* RINGO_FUTEX_H */
