/*
 * fiber.c — goroutine stacks and machine contexts.
 *
 * Stacks.  Go programs start a million goroutines without a thought, so a
 * stack must cost about one resident page and few kernel objects:
 *
 *   - Stacks are carved from regions of STACKS_PER_REGION slots, each region
 *     one mmap(MAP_NORESERVE) so overcommit accounting never refuses it and
 *     the kernel commits pages only as a fiber touches them.  A slot is
 *     [ guard page (or unprotected) | usable stack ... | struct stack header ].
 *   - Slots are carved out of a region only when first needed, so mapping
 *     a region touches nothing, and a stack costs memory only for the
 *     pages its goroutine touches (usually one: the header and the first
 *     frames share the top page).  Regions are MADV_NOHUGEPAGE: a huge
 *     page would commit 2 MiB for thirty mostly idle stacks.
 *   - A guard page is installed with MADV_GUARD_INSTALL (Linux 6.13): a
 *     marker in the page table, no new mapping, and only the mmap read
 *     lock.  Where the kernel lacks it (or RINGO_NO_GUARD_INSTALL=1), it
 *     is mprotect(PROT_NONE), which splits the region's mapping in two
 *     under the mmap write lock; on 2 procs that lock stalled the other
 *     proc's first-touch page faults, and the spawn phase of 100k
 *     goroutines that block took twice as long as with no guards at all
 *     (tests/bench/coldstart, 2 procs: 380 ms against 170; with
 *     MADV_GUARD_INSTALL, 160).  Either way a guard is a system call per
 *     fresh stack (about 0.5 us with MADV_GUARD_INSTALL: guarding all
 *     100k stacks of that benchmark added a fifth to its first round),
 *     and an mprotect guard uses up mappings, of which the kernel allows
 *     vm.max_map_count (65530 by default) per process.  So only the first
 *     guard_budget stacks get a real guard (default max_map_count / 4,
 *     leaving most mappings to the program);
 *     the rest keep an unprotected page there, and overflow is caught by
 *     checks on the stack pointer instead: at every switch away from the
 *     fiber (stack_sp_ok), and in the SIGSEGV handler, which sees the
 *     faulting stack pointer below the stack when the overflow runs off
 *     the slot.  A canary word in that page was rejected: the first read
 *     of an untouched page is a page fault, which costs 20 us on a
 *     virtualised machine — per goroutine.
 *   - Free stacks go to a per-proc LIFO cache (no locks, hot memory first);
 *     past STACK_CACHE_MAX a batch of STACK_BATCH goes back to the global
 *     pool as it is, and an empty cache takes a batch back from the pool,
 *     unshed batches first.  A proc with nothing to run sheds them:
 *     MADV_DONTNEED returns the pages below their headers to the kernel
 *     (only for stacks that touched any: mincore(2) says).  See "Shedding".
 *
 * Invariants: a stack is in exactly one of {a goroutine, one proc's cache,
 * the global pool, a batch a proc is shedding or splitting}.  Regions are
 * unmapped only by fiber_fini(), when no proc runs.  The global pool and
 * region list are under pool_lock.
 *
 * Rejected: one mmap per stack (two mappings each with a guard: 32k
 * goroutines at most); no guard at all (a silent overflow into a neighbour);
 * malloc'd stacks (no guard, and glibc would commit the whole stack).
 */
#include "fiber.h"
#include "atomic.h"
#include "fault.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

#ifdef RINGO_TSAN
char ringo__tsan_io_sync; /* tsan.h: its address is the sync object of I/O */
#endif

#if defined(__SANITIZE_ADDRESS__)
#define RINGO_ASAN_FIBER 1
#include <sanitizer/asan_interface.h>
#endif

/* Slots per region: 1024 stacks of 64 KiB is 68 MiB of address space,
 * reserved but not committed (MAP_NORESERVE, untouched until used).  Large
 * regions keep mmap off the spawn path: spawning a million goroutines maps
 * about a thousand regions (tests/bench/spawn).  Where the address space
 * is limited (RLIMIT_AS), or MAP_NORESERVE is not honoured
 * (vm.overcommit_memory=2), a region of large stacks may be refused (1024
 * stacks of 4 MiB are 4 GiB): region_new then asks for half as many
 * slots, down to one, before it says ENOMEM. */
#define STACKS_PER_REGION 1024

/* STACK_CACHE_MAX and STACK_BATCH: fiber.h. */

struct region {
    struct region *next;
    char *base;
    size_t len;
    size_t slots;     /* STACKS_PER_REGION, or fewer where that was refused */
    size_t fresh;     /* slots below this index have been handed out at least once */
    struct region *next_fresh;   /* link in the list of regions with fresh slots */
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct region *regions;      /* every region; under pool_lock */
static struct region *fresh_regions; /* regions with never-used slots; under pool_lock */
static struct stack *pool;          /* free stacks in batches (struct stack's
                                     * next_batch, batch_n), shed; under pool_lock */
static struct stack *pool_unshed;   /* the same, not shed yet ("Shedding"); under pool_lock */
static size_t unshed_n;             /* stacks in pool_unshed; under pool_lock */
/* unshed_n for stack_pool_unshed(), a hint read without the lock.
 * relaxed: written under pool_lock, which orders what matters; a stale
 * value only makes an idle proc take the lock for nothing, or shed at its
 * next idle instead of this one. */
static _Atomic size_t unshed_hint;
static size_t page_size;
size_t ringo__stack_usable;         /* stack bytes below the header: s->lo == (char *)s - it */
static size_t slot_size;            /* page + ringo__stack_usable + header, page aligned */
static long guard_budget;           /* stacks that may still get a guard; under pool_lock */
static long stack_avail;            /* see stack_reserve(); under pool_lock */
static bool guard_madvise;          /* guards by MADV_GUARD_INSTALL; set by fiber_init
                                     * before any proc runs, read-only after */

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102      /* Linux 6.13; older headers lack it */
#endif

#define HDR_SIZE ((sizeof(struct stack) + 63) & ~(size_t)63)

static long read_max_map_count(void)
{
    long v = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

int fiber_init(size_t stack_size)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    if (stack_size == 0)
        stack_size = 64 * 1024;
    if (stack_size < 16 * 1024)
        stack_size = 16 * 1024;
    if (stack_size > ((size_t)1 << 30))
        return -EINVAL;
    slot_size = (page_size + stack_size + HDR_SIZE + page_size - 1) & ~(page_size - 1);
    ringo__stack_usable = slot_size - page_size - HDR_SIZE;

    /* A value that is not a count is ignored, as RINGO_PROCS's: a typo
     * must not take every guard away. */
    const char *env = getenv("RINGO_GUARD_STACKS");
    char *end = NULL;
    long v = env && *env ? (errno = 0, strtol(env, &end, 10)) : -1;
    if (end && *end == '\0' && v >= 0 && errno == 0)
        guard_budget = v;
    else
        guard_budget = read_max_map_count() / 4;
    /* Does the kernel have MADV_GUARD_INSTALL?  Asked of a page of our
     * own: older kernels refuse the advice with EINVAL. */
    guard_madvise = false;
    const char *no = getenv("RINGO_NO_GUARD_INSTALL");
    if (!(no && *no && strcmp(no, "0") != 0)) {
        void *m = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            guard_madvise = madvise(m, page_size, MADV_GUARD_INSTALL) == 0;
            munmap(m, page_size);
        }
    }
    return 0;
}

size_t fiber_stack_size(void)
{
    return ringo__stack_usable;
}

void fiber_fini(void)
{
    pthread_mutex_lock(&pool_lock);
    struct region *r = regions;
    regions = NULL;
    fresh_regions = NULL;
    pool = NULL;
    pool_unshed = NULL;
    unshed_n = 0;
    store_relaxed(&unshed_hint, 0);
    stack_avail = 0;
    pthread_mutex_unlock(&pool_lock);
    while (r) {
        struct region *next = r->next;
#ifdef HAVE_VALGRIND_VALGRIND_H
        for (size_t i = 0; i < r->fresh; i++) {
            struct stack *s = (struct stack *)(r->base + (i + 1) * slot_size - HDR_SIZE);
            if (s->vg_id)
                VALGRIND_STACK_DEREGISTER(s->vg_id);
        }
#endif
#ifdef RINGO_TSAN
        /* Goroutines discarded after a deadlock still own their fibers;
         * no proc runs, so none of them is current anywhere. */
        for (size_t i = 0; i < r->fresh; i++) {
            struct stack *s = (struct stack *)(r->base + (i + 1) * slot_size - HDR_SIZE);
            if (s->tsan_fiber)
                __tsan_destroy_fiber(s->tsan_fiber);
        }
#endif
#ifdef RINGO_ASAN_FIBER
        /* Goroutines discarded after a deadlock leave poisoned redzones;
         * munmap does not clear the shadow, and a later mapping at the
         * same addresses would inherit it. */
        __asan_unpoison_memory_region(r->base, r->len);
#endif
        munmap(r->base, r->len);
        free(r);
        r = next;
    }
}

/* Map a new region.  Its slots are handed out by carve() as they are
 * first needed, so mapping touches no memory.  Under pool_lock. */
static int region_new(void)
{
    struct region *r = seam_malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    r->fresh = 0;
    for (r->slots = STACKS_PER_REGION;; r->slots /= 2) {
        r->len = slot_size * r->slots;
        r->base = seam_mmap(NULL, r->len, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (r->base != MAP_FAILED)
            break;
        if (r->slots == 1) {
            free(r);
            return -ENOMEM;
        }
    }
#ifdef MADV_NOHUGEPAGE
    madvise(r->base, r->len, MADV_NOHUGEPAGE); /* best effort */
#endif
    r->next = regions;
    regions = r;
    r->next_fresh = fresh_regions;
    fresh_regions = r;
    stack_avail += (long)r->slots;
    return 0;
}

/* Pick a never-used slot, and whether it may have a guard page.  NULL if
 * every region is fully carved.  Under pool_lock. */
static char *carve_slot(bool *guard)
{
    struct region *r = fresh_regions;
    if (!r)
        return NULL;
    char *slot = r->base + r->fresh * slot_size;
    if (++r->fresh == r->slots)
        fresh_regions = r->next_fresh;
    *guard = guard_budget > 0;
    if (*guard)
        guard_budget--;
    return slot;
}

/* Make a stack of a fresh slot.  Not under pool_lock: writing the header
 * is the slot's first touch, a page fault that can take tens of
 * microseconds on a virtualised machine.  A guard that cannot be installed
 * (out of mappings or memory) leaves the stack to the stack pointer
 * checks, as the end of the budget does. */
static struct stack *carve_init(char *slot, bool guard)
{
    struct stack *s = (struct stack *)(slot + slot_size - HDR_SIZE);
    s->lo = slot + page_size;
    s->guarded = guard && (guard_madvise ? madvise(slot, page_size, MADV_GUARD_INSTALL) == 0
                                         : seam_mprotect(slot, page_size, PROT_NONE) == 0);
    if (guard && !s->guarded) {
        pthread_mutex_lock(&pool_lock);
        guard_budget = 0; /* out of mappings: no more guards this run */
        pthread_mutex_unlock(&pool_lock);
    }
    s->vg_id = 0;
#ifdef RINGO_TSAN
    s->tsan_fiber = NULL;
#endif
#ifdef HAVE_VALGRIND_VALGRIND_H
    if (RUNNING_ON_VALGRIND)
        s->vg_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s);
#endif
    return s;
}

/* stack_get with an empty cache: a batch from the pool, or a fresh slot.
 * Out of line, so that the common case costs no more than a pop. */
struct stack *stack_get_slow(struct stack_cache *c)
{
    pthread_mutex_lock(&pool_lock);
    /* Unshed first: their pages are still there, where a shed stack's
     * first deep touch is a page fault. */
    struct stack *s = pool_unshed;
    if (s) {
        pool_unshed = s->next_batch;
        unshed_n -= s->batch_n;
        store_relaxed(&unshed_hint, unshed_n);
    } else if ((s = pool)) {
        pool = s->next_batch;
    }
    if (s) {
        /* A whole batch: the first stack for the caller, the rest for the
         * cache, which is empty.  Taken as it is, without a walk down the
         * chain (a cache miss and a TLB miss per header, paid again when
         * the stack is used: warm spawns ran 30% slower with the walk). */
        pthread_mutex_unlock(&pool_lock);
        c->head = s->next;
        c->n = s->batch_n - 1;
        return s;
    }
    bool guard = false;
    char *slot = carve_slot(&guard);
    pthread_mutex_unlock(&pool_lock);
    if (!slot) {
        errno = ENOMEM; /* the caller asks other procs to flush their caches */
        return NULL;
    }
    return carve_init(slot, guard);
}


/* Give the pool a batch: n stacks chained by ->next, the last one's NULL,
 * shed or not. */
static void pool_push(struct stack *first, size_t n, bool shed)
{
    first->batch_n = n;
    pthread_mutex_lock(&pool_lock);
    if (shed) {
        first->next_batch = pool;
        pool = first;
    } else {
        first->next_batch = pool_unshed;
        pool_unshed = first;
        unshed_n += n;
        store_relaxed(&unshed_hint, unshed_n);
    }
    pthread_mutex_unlock(&pool_lock);
}

/* Has any page of [lo, hi) (page aligned) been touched?  mincore(2) asks
 * the page table, scanning down from hi (stacks grow down), SHED_SPAN
 * pages a call into vec.  A failure answers yes. */
static bool pages_resident(char *lo, char *hi, unsigned char *vec)
{
    while (hi > lo) {
        size_t n = (size_t)(hi - lo) / page_size;
        if (n > SHED_SPAN)
            n = SHED_SPAN;
        char *from = hi - n * page_size;
        if (mincore(from, n * page_size, vec) != 0)
            return true;
        for (size_t i = 0; i < n; i++)
            if (vec[i] & 1)
                return true;
        hi = from;
    }
    return false;
}

static char *top_page_of(struct stack *s)
{
    return (char *)((uintptr_t)s & ~(uintptr_t)(page_size - 1));
}

/* Sort v[0..n) by address: an insertion sort, which needs no memory but
 * v (qsort may take a buffer on the stack; see "Shedding"). */
static void stacks_sort(struct stack **v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct stack *x = v[i];
        size_t j = i;
        for (; j > 0 && (uintptr_t)v[j - 1] > (uintptr_t)x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

/* Return to the kernel the pages below the headers of the n stacks of v
 * that touched any ("Shedding").  v is sorted by address; vec is room for
 * SHED_SPAN pages' answers. */
static void shed_pages(struct stack **v, size_t n, unsigned char *vec)
{
    size_t i = 0;
    while (i < n) {
        char *lo = v[i]->lo;
        size_t j = i;
        /* Neighbours only (a slot's top page and the next one's guard
         * lie between them): a wider gap would walk other stacks' pages. */
        while (j + 1 < n && v[j + 1]->lo - top_page_of(v[j]) <= (ptrdiff_t)(4 * page_size) &&
               (size_t)(top_page_of(v[j + 1]) - lo) <= SHED_SPAN * page_size)
            j++;
        char *hi = top_page_of(v[j]);
        /* One call for the run; a gap between two regions (unmapped:
         * ENOMEM) sends the run to one call per stack, and so does a
         * stack of more than SHED_SPAN pages below its header, alone in
         * its run (pages_resident looks at it in pieces). */
        bool one = hi > lo && (size_t)(hi - lo) <= SHED_SPAN * page_size &&
                   mincore(lo, (size_t)(hi - lo), vec) == 0;
        for (size_t k = i; k <= j; k++) {
            char *top = top_page_of(v[k]);
            if (top <= v[k]->lo)
                continue;
            bool touched = false;
            if (one) {
                for (size_t pg = (size_t)(v[k]->lo - lo) / page_size,
                            end = (size_t)(top - lo) / page_size;
                     pg < end && !touched; pg++)
                    touched = vec[pg] & 1;
            } else {
                touched = pages_resident(v[k]->lo, top, vec);
            }
            if (touched)
                madvise(v[k]->lo, (size_t)(top - v[k]->lo), MADV_DONTNEED);
        }
        i = j + 1;
    }
}

/* Shedding.  Most goroutines never touch more than the top page, and
 * MADV_DONTNEED of a range with nothing in it still costs a TLB shootdown
 * (an IPI to every CPU that runs another proc: 30% of the CPU time of
 * tests/bench/coldstart on 2 procs, as exits returned stacks one by one),
 * so mincore looks first, without the IPI.  One mincore per stack was
 * then a sixth of the CPU time of 100k sleepers on one proc (a system
 * call and a walk of the page table from the top for each); a batch's
 * stacks mostly lie side by side in one region, so after sorting them by
 * address one call covers a run of neighbours, up to SHED_SPAN pages.
 *
 * When.  Shed as a cache overflowed, the cost fell on the goroutine
 * exits that overflowed it, in a burst when many goroutines end
 * together: 100k sleepers on one proc (tests/bench/sleepers) woke up to
 * 18 ms late as each exit near the end of a round paid for a batch's
 * sort and page-table walks, though no stack had a page to give back.
 * So an overflowing cache hands its batch to the pool unshed, and a proc
 * with nothing to run sheds (stack_pool_shed, from sched.c proc_sleep),
 * as Go's scavenger returns memory in the background: the same 100k
 * sleepers then woke at most 0.5 ms late.  Unshed batches are the first
 * reused (their pages are still there), and past STACK_UNSHED_MAX stacks
 * unshed a batch is shed as it arrives, as before, so that procs that
 * never run out of work still give memory back.
 *
 * Where.  A batch shed as it arrives is shed by the goroutine that
 * reclaims the dead one whose stack overflowed the cache (sched.c
 * after_switch), on its own stack, below the frame it parked in: a
 * goroutine that parked near the end of its stack has only the red zone
 * (STACK_RED_ZONE) left there.  So the shedding keeps its arrays in the
 * proc's cache (struct stack_cache), not on the stack, and sorts them in
 * place (glibc's qsort merges through a buffer on the stack): about
 * 3.3 KB of stack before, a few hundred bytes after (tests/check_sched
 * runtime_frames_fit_red_zone). */

/* Give back the deep pages of a chain of stacks, STACK_BATCH at a time. */
static void shed_chain(struct stack_cache *c, struct stack *s)
{
    struct stack **v = c->shed_v;
    while (s) {
        size_t n = 0;
        for (; s && n < STACK_BATCH; s = s->next)
            v[n++] = s;
        stacks_sort(v, n);
        shed_pages(v, n, c->shed_vec);
    }
}

/* Cut a chain of more than n stacks after its first n; returns the rest. */
static struct stack *chain_cut(struct stack *first, size_t n)
{
    struct stack *last = first;
    for (size_t i = 1; i < n; i++)
        last = last->next;
    struct stack *rest = last->next;
    last->next = NULL;
    return rest;
}

/* A cache past STACK_CACHE_MAX: a batch goes back to the pool. */
static __attribute__((noinline)) void stack_cache_spill(struct stack_cache *c)
{
    struct stack *first = c->head;
    c->head = chain_cut(first, STACK_BATCH);
    c->n -= STACK_BATCH;
    /* relaxed: a hint (unshed_hint); past the cap by a batch or two when
     * procs race here is no matter */
    bool shed = load_relaxed(&unshed_hint) + STACK_BATCH > STACK_UNSHED_MAX;
    if (shed)
        shed_chain(c, first);
    pool_push(first, STACK_BATCH, shed);
}

/* Stacks an idle proc sheds between two looks for work (sched.c
 * proc_sleep): STACK_BATCH of the default size, fewer of larger stacks,
 * whose untouched depths mincore walks in full (SHED_SPAN pages a call):
 * 64 stacks of 256 MiB were 16384 calls, and a 1 ms sleep on the proc
 * woke over 100 ms late.  About as many pages as 64 stacks of 256 KiB. */
static size_t shed_max(void)
{
    size_t pages = ringo__stack_usable / page_size;
    size_t most = (size_t)STACK_BATCH * 64 / (pages ? pages : 1);
    return most < 1 ? 1 : most > STACK_BATCH ? STACK_BATCH : most;
}

bool stack_pool_shed(struct stack_cache *c)
{
    pthread_mutex_lock(&pool_lock);
    struct stack *s = pool_unshed;
    if (!s) {
        pthread_mutex_unlock(&pool_lock);
        return false;
    }
    pool_unshed = s->next_batch;
    unshed_n -= s->batch_n;
    store_relaxed(&unshed_hint, unshed_n);
    pthread_mutex_unlock(&pool_lock);
    /* Ours alone meanwhile: a proc that needs a stack and finds none
     * carves a fresh one, or retries (sched.c g_start).  A drained cache
     * is one batch of up to STACK_CACHE_MAX: its first shed_max() are
     * shed now, and the rest go back for later. */
    size_t n = s->batch_n, most = shed_max();
    if (n > most) {
        pool_push(chain_cut(s, most), n - most, false);
        n = most;
    }
    shed_chain(c, s);
    pool_push(s, n, true);
    return true;
}

bool stack_pool_unshed(void)
{
    return load_relaxed(&unshed_hint) != 0;
}

void stack_put_slow(struct stack_cache *c, struct stack *s)
{
#ifdef RINGO_TSAN
    /* The fiber of the goroutine that exited on s; we run on another one
     * (sched.c reclaims a dead goroutine after the switch away from it). */
    if (s->tsan_fiber)
        __tsan_destroy_fiber(s->tsan_fiber);
    s->tsan_fiber = NULL;
#endif
    s->next = c->head;
    c->head = s;
    if (++c->n > STACK_CACHE_MAX)
        stack_cache_spill(c);
}

void stack_cache_drain(struct stack_cache *c)
{
    size_t n = c->n;
    struct stack *s = c->head;
    c->head = NULL;
    c->n = 0;
    if (!s)
        return;
    pool_push(s, n, false);
}

char *stack_top(struct stack *s)
{
    uintptr_t top = (uintptr_t)s;
#ifdef RINGO_SWITCH_UCONTEXT
    (void)0; /* the ucontext_t is inside the header */
#endif
    return (char *)(top & ~(uintptr_t)15);
}

bool stack_guard_hit(const struct stack *s, const void *addr)
{
    const char *a = addr;
    return a >= s->lo - page_size && a < s->lo;
}

/* A new goroutine's TSan fiber (tsan.h).  Creating it orders what the
 * creating context did before it, as pthread_create would. */
static inline void fiber_make_tsan(struct stack *s)
{
#ifdef RINGO_TSAN
    if (s->tsan_fiber)
        __tsan_destroy_fiber(s->tsan_fiber);
    s->tsan_fiber = __tsan_create_fiber(0);
#else
    (void)s;
#endif
}

#ifdef RINGO_SWITCH_UCONTEXT

void fiber_make(struct fiber_ctx *ctx, struct stack *s, void (*entry)(void))
{
    ucontext_t *uc = &s->uc;
    getcontext(uc);
    uc->uc_stack.ss_sp = s->lo;
    uc->uc_stack.ss_size = (size_t)(stack_top(s) - s->lo);
    uc->uc_link = NULL;
    makecontext(uc, entry, 0);
    ctx->uc = uc;
    fiber_make_tsan(s);
}


#else /* the assembly switch */

void ringo__ctx_start(void);

#if defined(__x86_64__)

void fiber_make(struct fiber_ctx *ctx, struct stack *s, void (*entry)(void))
{
    /* See switch_x86_64.S for the frame.  After the final ret the stack
     * pointer is top - 16: 16-byte aligned, as ringo__ctx_start's call needs. */
    uint64_t *sp = (uint64_t *)(stack_top(s) - 16) - 7;
    sp[0] = 0;                          /* r15 */
    sp[1] = 0;                          /* r14 */
    sp[2] = 0;                          /* r13 */
    sp[3] = (uint64_t)(uintptr_t)entry; /* r12 */
    sp[4] = 0;                          /* rbx */
    sp[5] = 0;                          /* rbp */
    sp[6] = (uint64_t)(uintptr_t)ringo__ctx_start;
    ctx->sp = sp;
    fiber_make_tsan(s);
}

#elif defined(__aarch64__)

void fiber_make(struct fiber_ctx *ctx, struct stack *s, void (*entry)(void))
{
    /* See switch_aarch64.S for the frame: 20 slots, x19 first.  The switch
     * pops it all, leaving sp = top (16-byte aligned, as sp always must
     * be), and returns through x30 to ringo__ctx_start, which calls x19. */
    uint64_t *sp = (uint64_t *)stack_top(s) - 20;
    memset(sp, 0, 20 * sizeof *sp);     /* x20-x28, x29 = 0, d8-d15 = 0 */
    sp[0] = (uint64_t)(uintptr_t)entry; /* x19 */
    sp[11] = (uint64_t)(uintptr_t)ringo__ctx_start; /* x30 */
    ctx->sp = sp;
    fiber_make_tsan(s);
}

#else
#error "the assembly context switch is for x86-64 and aarch64; configure --with-switch=ucontext"
#endif

#endif

/* ---------------------------------------------------------------------- */
/* Reading a parked fiber (fiber.h) */

__attribute__((noinline, no_sanitize("address", "thread")))
uint64_t fiber_peek(const void *addr)
{
    uint64_t v = *(const volatile uint64_t *)addr;
#ifdef HAVE_VALGRIND_VALGRIND_H
    /* A stack slot the fiber never wrote (padding, a dead local) is
     * undefined to memcheck, and the unwinder branches on what it reads. */
    VALGRIND_MAKE_MEM_DEFINED(&v, sizeof v);
#endif
    return v;
}

static void regs_add(struct fiber_regs *r, unsigned no, uint64_t val)
{
    r->no[r->n] = (uint16_t)no;
    r->val[r->n++] = val;
}

/* sp inside s, 8-byte aligned, with `frame` bytes above it still inside. */
static bool sp_inside(const struct stack *s, uint64_t sp, size_t frame)
{
    /* s->lo is the owner's plain field (fixed since the stack was made) */
    uintptr_t lo = (uintptr_t)fiber_peek(&s->lo), top = (uintptr_t)stack_top((struct stack *)s);
    return (sp & 7) == 0 && sp >= lo && sp <= top && top - sp >= frame;
}

#ifdef RINGO_SWITCH_UCONTEXT

bool fiber_saved_regs(const struct fiber_ctx *ctx, const struct stack *s, struct fiber_regs *r)
{
    /* swapcontext saves the state it will return with: its return address
     * as the pc and the stack pointer above it. */
    const ucontext_t *uc = &s->uc; /* ctx->uc, which is fixed (fiber_make) */
    (void)ctx;
    r->n = 0;
#if defined(__x86_64__)
    const greg_t *g = uc->uc_mcontext.gregs;
    r->pc = fiber_peek(&g[REG_RIP]);
    r->sp = fiber_peek(&g[REG_RSP]);
    r->fp = fiber_peek(&g[REG_RBP]);
    regs_add(r, 3, fiber_peek(&g[REG_RBX]));
    regs_add(r, 6, r->fp);
    regs_add(r, 7, r->sp);
    regs_add(r, 12, fiber_peek(&g[REG_R12]));
    regs_add(r, 13, fiber_peek(&g[REG_R13]));
    regs_add(r, 14, fiber_peek(&g[REG_R14]));
    regs_add(r, 15, fiber_peek(&g[REG_R15]));
#elif defined(__aarch64__)
    r->pc = fiber_peek(&uc->uc_mcontext.pc);
    r->sp = fiber_peek(&uc->uc_mcontext.sp);
    r->fp = fiber_peek(&uc->uc_mcontext.regs[29]);
    for (unsigned i = 19; i <= 30; i++)
        regs_add(r, i, fiber_peek(&uc->uc_mcontext.regs[i]));
    regs_add(r, 31, r->sp);
#else
    return false;
#endif
    return sp_inside(s, r->sp, 0);
}

#elif defined(__x86_64__)

bool fiber_saved_regs(const struct fiber_ctx *ctx, const struct stack *s, struct fiber_regs *r)
{
    /* switch_x86_64.S: r15 r14 r13 r12 rbx rbp, then the return address */
    uint64_t sp = fiber_peek(&ctx->sp);
    r->n = 0;
    if (!sp_inside(s, sp, 7 * 8))
        return false;
    const uint64_t *f = (const uint64_t *)(uintptr_t)sp;
    r->pc = fiber_peek(&f[6]);
    r->sp = sp + 7 * 8;
    r->fp = fiber_peek(&f[5]);
    regs_add(r, 3, fiber_peek(&f[4]));  /* rbx */
    regs_add(r, 6, r->fp);              /* rbp */
    regs_add(r, 7, r->sp);              /* rsp */
    regs_add(r, 12, fiber_peek(&f[3]));
    regs_add(r, 13, fiber_peek(&f[2]));
    regs_add(r, 14, fiber_peek(&f[1]));
    regs_add(r, 15, fiber_peek(&f[0]));
    return true;
}

#elif defined(__aarch64__)

bool fiber_saved_regs(const struct fiber_ctx *ctx, const struct stack *s, struct fiber_regs *r)
{
    /* switch_aarch64.S: x19-x28, x29, x30, d8-d15 (20 slots) */
    uint64_t sp = fiber_peek(&ctx->sp);
    r->n = 0;
    if (!sp_inside(s, sp, 20 * 8))
        return false;
    const uint64_t *f = (const uint64_t *)(uintptr_t)sp;
    for (unsigned i = 0; i <= 11; i++)
        regs_add(r, 19 + i, fiber_peek(&f[i])); /* x19 .. x30 */
    r->pc = fiber_peek(&f[11]);
    r->fp = fiber_peek(&f[10]);
    r->sp = sp + 20 * 8;
    regs_add(r, 31, r->sp);
    return true;
}

#endif

/* ---------------------------------------------------------------------- */
/* Stack credit accounting (see gtable.c "Stack credit").  stack_avail is
 * the number of mapped stacks not promised to a goroutine. */
int stack_reserve(long n)
{
    pthread_mutex_lock(&pool_lock);
    while (stack_avail < n) {
        if (region_new() != 0) {
            pthread_mutex_unlock(&pool_lock);
            return -ENOMEM;
        }
    }
    stack_avail -= n;
    pthread_mutex_unlock(&pool_lock);
    return 0;
}

void stack_unreserve(long n)
{
    pthread_mutex_lock(&pool_lock);
    stack_avail += n;
    pthread_mutex_unlock(&pool_lock);
}
