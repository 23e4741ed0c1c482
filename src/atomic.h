/*
 * atomic.h — the only door to atomics in ringo.
 *
 * Every shared access in src/ goes through one of these named wrappers, so a
 * reader can see the ordering at the call site and grep for it.  Each call
 * site carries a comment naming what it pairs with and what breaks without
 * it; a relaxed access says why relaxed is enough.
 *
 * The wrappers are the C11 <stdatomic.h> operations on _Atomic objects:
 *   load_relaxed / store_relaxed   no ordering (counters, hints, racy reads
 *                                  whose staleness is harmless)
 *   load_acquire / store_release   one-way publication
 *   xchg / cas (acq_rel)           read-modify-write that both observes a
 *                                  publication and publishes
 *   cas_relaxed                    read-modify-write of a word whose
 *                                  readers are ordered by other means
 *   *_seqcst and smp_mb()          Dekker-style store-then-load handshakes
 *                                  (sleep/wake, park/cancel) where a later
 *                                  load must not be satisfied before an
 *                                  earlier store is visible (StoreLoad).
 *   signal_fence()                 order as seen by a signal handler on
 *                                  the same thread (the watchdog's)
 */
#ifndef RINGO_ATOMIC_H
#define RINGO_ATOMIC_H

#include <stdatomic.h>
#include <stdbool.h>

#define load_relaxed(p)      atomic_load_explicit((p), memory_order_relaxed)
#define store_relaxed(p, v)  atomic_store_explicit((p), (v), memory_order_relaxed)
#define load_acquire(p)      atomic_load_explicit((p), memory_order_acquire)
#define store_release(p, v)  atomic_store_explicit((p), (v), memory_order_release)
#define load_seqcst(p)       atomic_load_explicit((p), memory_order_seq_cst)
#define store_seqcst(p, v)   atomic_store_explicit((p), (v), memory_order_seq_cst)

#define fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define fetch_add_acq_rel(p, v) atomic_fetch_add_explicit((p), (v), memory_order_acq_rel)
#define fetch_sub_acq_rel(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_acq_rel)
#define fetch_or_acq_rel(p, v)  atomic_fetch_or_explicit((p), (v), memory_order_acq_rel)
#define fetch_add_seqcst(p, v)  atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define fetch_add_release(p, v) atomic_fetch_add_explicit((p), (v), memory_order_release)
#define fetch_sub_release(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_release)
#define fetch_sub_relaxed(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
#define fetch_sub_seqcst(p, v)  atomic_fetch_sub_explicit((p), (v), memory_order_seq_cst)
#define xchg_acq_rel(p, v)      atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define xchg_acquire(p, v)      atomic_exchange_explicit((p), (v), memory_order_acquire)
#define xchg_seqcst(p, v)       atomic_exchange_explicit((p), (v), memory_order_seq_cst)

/* Strong compare-and-swap; *expected is updated on failure. */
#define cas_acq_rel(p, expected, desired)                                   \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired),     \
                                            memory_order_acq_rel,           \
                                            memory_order_acquire)
#define cas_acquire(p, expected, desired)                                   \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired),     \
                                            memory_order_acquire,           \
                                            memory_order_relaxed)
#define cas_release(p, expected, desired)                                   \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired),     \
                                            memory_order_release,           \
                                            memory_order_relaxed)
#define cas_relaxed(p, expected, desired)                                   \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired),     \
                                            memory_order_relaxed,           \
                                            memory_order_relaxed)
#define cas_seqcst(p, expected, desired)                                    \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired),     \
                                            memory_order_seq_cst,           \
                                            memory_order_seq_cst)

/* Full barrier: orders every earlier load/store before every later one. */
#define smp_mb() atomic_thread_fence(memory_order_seq_cst)

/* Acquire fence: every earlier load (relaxed or plain) is ordered before
 * every later load and store.  The read side of a sequence check. */
#define fence_acquire() atomic_thread_fence(memory_order_acquire)

/* Compiler barrier for a signal handler on this same thread: keeps the
 * program order of the accesses around it as the handler sees them, with
 * no instruction (other threads get no ordering from it). */
#define signal_fence() atomic_signal_fence(memory_order_seq_cst)

/* A pause hint for spin loops. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/* Ask for the line holding *p in exclusive state, as a write would,
 * without writing: for a spin that polls a word which another thread
 * writes and which the spinner, once it sees the write, will itself
 * write (an exchange to take what was pushed).  Polling with plain loads
 * fetches the line shared, and the exchange then fetches it a second time
 * to own it; this makes the first fetch the only one.  A hint: no
 * ordering, no effect on the value.  PREFETCHW executes as a no-op on x86
 * processors that lack it. */
static inline void prefetch_own(const volatile void *p)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("prefetchw %0" : : "m"(*(const volatile char *)p));
#else
    __builtin_prefetch((const void *)p, 1, 3);
#endif
}

#endif /* RINGO_ATOMIC_H */
