/*
 * fault.h — fault seams: every allocation, mapping and setup call the
 * runtime makes goes through one of these wrappers, so that a test can fail
 * the N-th one and see that the failure is handled (tests/check_fault.c
 * walks N = 1, 2, 3, ... over each public operation).  Out-of-memory paths
 * that no test reaches are not known to work.  The model is neco's fail
 * counters (neco.c read0/malloc0, tests/fail_counters.h).
 *
 * One countdown for the whole process, armed by the test (fault_arm) and
 * otherwise 0.  Each seam call made while it is armed counts it down, and
 * the call that takes it to 0 fails as the real call would under
 * exhaustion: an allocation returns NULL (errno ENOMEM), mmap MAP_FAILED
 * and mprotect -1 (ENOMEM), eventfd -1 (EMFILE), pthread_create EAGAIN,
 * io_uring_queue_init_params -ENOMEM, io_uring_get_probe_ring NULL.  Only
 * that one call fails; the next succeeds again, as after a transient
 * shortage.  The site (file:line) of the failed call is recorded for the
 * test's report.
 *
 * Cost when not armed.  The seams are always compiled in, in every build,
 * so the walk runs on the very code that ships (and under the sanitizers).
 * Unarmed, a seam adds one relaxed load of fault_countdown (alone on a
 * cache line that only a test writes, so it stays shared in every core's
 * cache) and one branch that is always not-taken, next to a call that
 * itself costs at least a malloc (~20 ns) or a system call: three
 * instructions (x86-64: lea, mov, test+jne to the cold section).  A loop
 * of ringo_chan_make + ringo_chan_release (two seams) measured the same
 * with and without them, within the noise.  None sits on a per-switch or
 * per-message path: spawn allocates goroutine structs and stack credits 64
 * at a time, and the timer heap and fd tables only grow.  The slow path
 * is out of line (fault_fire, cold).
 *
 * Not seamed: free/munmap (cannot fail usefully); madvise, which the
 * runtime only uses as a best-effort hint (MADV_NOHUGEPAGE, MADV_DONTNEED
 * of a stack going back to the pool) whose failure changes nothing, or
 * for a stack's guard page (MADV_GUARD_INSTALL), whose failure leaves the
 * stack to the stack pointer checks as the end of the guard budget does;
 * system calls a public call makes on the caller's behalf (socket, read,
 * close ...), whose errors the caller already receives.
 *
 * Nothing here is exported: the library is built with hidden visibility
 * and a version script exporting ringo_* only (tests/symbols.sh checks),
 * and the tests reach fault_arm by linking the convenience library
 * libringo_core.la.  A program linked against libringo.so cannot arm it.
 */
#ifndef RINGO_FAULT_H
#define RINGO_FAULT_H

#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "atomic.h"

/* Seam calls left before one fails: 0 when not armed; otherwise counted
 * down (never below 0) by fault_fire. */
extern _Atomic long fault_countdown;

/* Arm: fail the n-th seam call from now (n > 0), on any thread; n == 0
 * disarms.  Clears the record of the last failure. */
void fault_arm(long n);
/* The site ("src/chan.c:228") of the call that failed since fault_arm, or
 * NULL if none did. */
const char *fault_fired(void);
/* The slow path: count one call down; true if this call is to fail. */
bool fault_fire(const char *site) __attribute__((cold, noinline));

static inline bool fault_now(const char *site)
{
    /* relaxed: the countdown is only a test's trigger; a seam on another
     * thread that sees the arming a little late merely makes a later
     * call the N-th.  Threads started after fault_arm see it through
     * pthread_create's ordering, and a single proc's calls are in
     * program order. */
    if (__builtin_expect(load_relaxed(&fault_countdown) == 0, 1))
        return false;
    return fault_fire(site);
}

#define FAULT_STR_(x) #x
#define FAULT_STR(x) FAULT_STR_(x)
#define FAULT_SITE (__FILE__ ":" FAULT_STR(__LINE__))

static inline void *seam_malloc_at(size_t n, const char *site)
{
    if (fault_now(site)) {
        errno = ENOMEM;
        return NULL;
    }
    return malloc(n);
}

static inline void *seam_calloc_at(size_t n, size_t size, const char *site)
{
    if (fault_now(site)) {
        errno = ENOMEM;
        return NULL;
    }
    return calloc(n, size);
}

static inline void *seam_realloc_at(void *p, size_t n, const char *site)
{
    if (fault_now(site)) {
        errno = ENOMEM;
        return NULL; /* p stays allocated, as with a failing realloc */
    }
    return realloc(p, n);
}

static inline void *seam_aligned_alloc_at(size_t align, size_t n, const char *site)
{
    if (fault_now(site)) {
        errno = ENOMEM;
        return NULL;
    }
    return aligned_alloc(align, n);
}

static inline char *seam_strdup_at(const char *s, const char *site)
{
    if (fault_now(site)) {
        errno = ENOMEM;
        return NULL;
    }
    return strdup(s);
}

static inline void *seam_mmap_at(void *addr, size_t len, int prot, int flags, int fd,
                                 off_t off, const char *site)
{
    if (fault_now(site)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return mmap(addr, len, prot, flags, fd, off);
}

static inline int seam_mprotect_at(void *addr, size_t len, int prot, const char *site)
{
    if (fault_now(site)) {
        errno = ENOMEM;
        return -1;
    }
    return mprotect(addr, len, prot);
}

static inline int seam_eventfd_at(unsigned initval, int flags, const char *site)
{
    if (fault_now(site)) {
        errno = EMFILE;
        return -1;
    }
    return eventfd(initval, flags);
}

static inline int seam_pthread_create_at(pthread_t *t, const pthread_attr_t *attr,
                                         void *(*fn)(void *), void *arg, const char *site)
{
    if (fault_now(site))
        return EAGAIN;
    return pthread_create(t, attr, fn, arg);
}

/* What the runtime calls instead of the real functions. */
#define seam_malloc(n)                seam_malloc_at((n), FAULT_SITE)
#define seam_calloc(n, size)          seam_calloc_at((n), (size), FAULT_SITE)
#define seam_realloc(p, n)            seam_realloc_at((p), (n), FAULT_SITE)
#define seam_aligned_alloc(al, n)     seam_aligned_alloc_at((al), (n), FAULT_SITE)
#define seam_strdup(s)                seam_strdup_at((s), FAULT_SITE)
#define seam_mmap(a, l, pr, fl, fd, o) seam_mmap_at((a), (l), (pr), (fl), (fd), (o), FAULT_SITE)
#define seam_mprotect(a, l, pr)       seam_mprotect_at((a), (l), (pr), FAULT_SITE)
#define seam_eventfd(v, fl)           seam_eventfd_at((v), (fl), FAULT_SITE)
#define seam_pthread_create(t, at, fn, arg) seam_pthread_create_at((t), (at), (fn), (arg), FAULT_SITE)
/* The io_uring setup seams (seam_io_uring_queue_init_params,
 * seam_io_uring_get_probe_ring) are in internal.h, beside liburing.h:
 * this header stays free of it, so that fiber.c builds without liburing
 * (tests/aarch64.sh cross-compiles it alone). */

#endif /* RINGO_FAULT_H */
