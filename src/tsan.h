/*
 * tsan.h — ThreadSanitizer annotations.
 *
 * ThreadSanitizer follows threads, not goroutines, and sees no memory the
 * kernel touches.  Two things make it work on ringo (a build with
 * --enable-sanitizers=thread):
 *
 *   - Fibers.  Every goroutine runs on a TSan fiber of its own, created
 *     when it first runs (fiber_make), switched to just before the context
 *     switch (switch_to in sched.c), and destroyed once it has exited and
 *     another context runs (stack_put), or with its stack after a deadlock
 *     (fiber_fini).  A proc's scheduler loop is its thread's own fiber.
 *     Without them TSan takes a goroutine switch for a jump in one
 *     thread's call stack and its shadow stack overflows (a CHECK in
 *     sanitizer_stackdepot.cpp).  Switches synchronise (flag 0): the
 *     goroutines of one proc run one at a time, so TSan orders them the
 *     way they ran, and it reports races between goroutines that ran on
 *     different procs (or plain threads).
 *
 *   - Happens-before edges that pass through the kernel.  TSan's own
 *     interceptors give read(), write(), accept() and connect() the
 *     ordering a program expects of I/O (what one thread wrote before
 *     sending is visible to the thread that received it); ringo makes
 *     those calls through io_uring, where TSan sees nothing, so the I/O
 *     wait does the same with tsan_release before it submits and
 *     tsan_acquire after its completion (engine_uring.c; like TSan's own model of
 *     sockets, one sync object for every descriptor).  The runtime's own
 *     hand-offs between procs are C11 atomics, which TSan understands.
 *
 * Everything here compiles to nothing without ThreadSanitizer.
 */
#ifndef RINGO_TSAN_H
#define RINGO_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define RINGO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RINGO_TSAN 1
#endif
#endif

#ifdef RINGO_TSAN
#include <sanitizer/tsan_interface.h>

/* The sync object of I/O through the rings (see above). */
extern char ringo__tsan_io_sync;
static inline void tsan_io_release(void) { __tsan_release(&ringo__tsan_io_sync); }
static inline void tsan_io_acquire(void) { __tsan_acquire(&ringo__tsan_io_sync); }
#else
static inline void tsan_io_release(void) {}
static inline void tsan_io_acquire(void) {}
#endif

#endif /* RINGO_TSAN_H */
