/*
 * fiber.h — machine contexts and goroutine stacks.
 */
#ifndef RINGO_FIBER_H
#define RINGO_FIBER_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsan.h"

#ifdef RINGO_SWITCH_UCONTEXT
#include <ucontext.h>
#include <pthread.h>
#include <signal.h>
#endif

/* A saved machine context.  The asm switch keeps only a stack pointer (the
 * registers are on the stack); the ucontext switch keeps a ucontext_t, which
 * for goroutines lives at the top of their own stack. */
struct fiber_ctx {
#ifdef RINGO_SWITCH_UCONTEXT
    ucontext_t *uc;
#else
    void *sp;
#endif
};

/*
 * A goroutine stack.  The header lives at the very top of the stack memory
 * (the first page a fiber touches anyway), so a cached stack costs no extra
 * allocation; below it is the usable stack, and below that a page that is
 * a PROT_NONE guard while the guard budget lasts (see fiber.c).
 */
#define GCOLD_SIZE 128
struct stack {
    struct stack *next;   /* cache / free list link; owner of the list only */
    struct stack *next_batch; /* in the global pool, on a batch's first stack: the next batch */
    size_t batch_n;       /* ... and the number of stacks in this one */
    char *lo;             /* lowest usable byte (just above the guard page's place) */
    unsigned vg_id;       /* valgrind stack id (0 without valgrind) */
    bool guarded;         /* true: lo - page is a guard (MADV_GUARD_INSTALL or PROT_NONE) */
#ifdef RINGO_TSAN
    void *tsan_fiber;     /* the TSan fiber of the goroutine on this stack, or NULL (tsan.h) */
#endif
#ifdef RINGO_SWITCH_UCONTEXT
    ucontext_t uc;        /* the fiber's context lives with its stack */
#endif
    /* Lines 1 and 2 of the goroutine on this stack (struct rg_cold,
     * internal.h): they come and go with the stack. */
    _Alignas(64) unsigned char gcold[GCOLD_SIZE];
};

/* Stacks a proc keeps for reuse before handing them back to the kernel.
 * Spawn + exit of an empty goroutine reuses the hottest cached stack
 * (tests/bench/spawn); a server that peaks at many connections returns the
 * excess.  4096 × 64 KiB of address space, at most a page resident each. */
#define STACK_CACHE_MAX 4096

/* Stacks the global pool holds unshed at most (fiber.c "Shedding"): past
 * it, a batch that arrives is shed at once.  16384 stacks that touched
 * only their top page keep nothing more resident than they had. */
#define STACK_UNSHED_MAX (4 * STACK_CACHE_MAX)

/* Stacks moved between a proc's cache and the global pool at a time.  One
 * at a time, two procs that spawn and exit many goroutines took pool_lock
 * for every stack, and it was contended enough for the threads to sleep
 * on its futex (perf: __lll_lock_wait in stack_get and stack_put on 2
 * procs, tests/bench/coldstart). */
#define STACK_BATCH 64

/* Pages one mincore(2) call of the shedding looks at, at most: a batch
 * of 64 KiB stacks side by side. */
#define SHED_SPAN 1024

/* Per-proc cache of free stacks: a LIFO, so the most recently used (and
 * most likely cache- and TLB-hot) stack is reused first.  Owner proc only. */
struct stack_cache {
    struct stack *head;
    size_t n;
    /* Room for shedding a batch (fiber.c "Shedding", "Where"): the
     * stacks sorted, and one mincore(2) answer per page of a run of
     * neighbours, SHED_SPAN pages at most. */
    struct stack *shed_v[STACK_BATCH];
    unsigned char shed_vec[SHED_SPAN];
};

/* Process-wide stack configuration for one run. */
int  fiber_init(size_t stack_size);   /* 0 or -errno; reads RINGO_GUARD_STACKS */
void fiber_fini(void);                /* unmap every stack region */
size_t fiber_stack_size(void);

/* Stack cache operations; all on the calling proc's own cache. */
struct stack *stack_get_slow(struct stack_cache *c);   /* stack_get with an empty cache */
void stack_put_slow(struct stack_cache *c, struct stack *s); /* stack_put past the fast path */

/* A stack from the cache (LIFO: the hottest first); NULL with errno =
 * ENOMEM.  Inline: a spawn-and-exit is a get and a put. */
static inline struct stack *stack_get(struct stack_cache *c)
{
    struct stack *s = c->head;
    if (s) {
        c->head = s->next;
        c->n--;
        return s;
    }
    return stack_get_slow(c);
}

/* Back to the cache, which hands the pool a batch past STACK_CACHE_MAX. */
static inline void stack_put(struct stack_cache *c, struct stack *s)
{
#ifdef RINGO_TSAN
    stack_put_slow(c, s); /* its goroutine's fiber goes there */
#else
    if (c->n < STACK_CACHE_MAX) {
        s->next = c->head;
        c->head = s;
        c->n++;
        return;
    }
    stack_put_slow(c, s);
#endif
}
void stack_cache_drain(struct stack_cache *c);         /* hand everything back */

/* For procs with nothing to run (sched.c proc_sleep): whether the pool
 * holds stacks not shed yet (a hint, without the lock), and shedding
 * STACK_BATCH of them at most: false if there was none (fiber.c
 * "Shedding").  c is the caller's cache, whose scratch it uses. */
bool stack_pool_unshed(void);
bool stack_pool_shed(struct stack_cache *c); /* c: the caller's, for its scratch */

/* The usable top of s (16-byte aligned, just below the header). */
char *stack_top(struct stack *s);

/* Promise n stacks to goroutines not started yet (mapping regions as
 * needed): 0 or -ENOMEM.  stack_unreserve gives promises back. */
int  stack_reserve(long n);
void stack_unreserve(long n);

/* Build a context that starts entry() on stack s.  entry never returns.
 * Under ThreadSanitizer it also creates the goroutine's TSan fiber
 * (s->tsan_fiber), which stack_put destroys. */
void fiber_make(struct fiber_ctx *ctx, struct stack *s, void (*entry)(void));

/* Start entry() from the top of stack s, as fiber_make and a first switch
 * would, abandoning every frame of the caller: for a fiber that is done
 * with s (its goroutine has exited) to hand s to a goroutine that has not
 * run yet without a switch (sched.c g_exit).  Not with the ucontext
 * switch (FIBER_RESTART 0). */
#ifdef RINGO_SWITCH_UCONTEXT
#define FIBER_RESTART 0
#else
#define FIBER_RESTART 1
_Noreturn void ringo__ctx_restart(void *sp, void (*entry)(void));
static inline _Noreturn void fiber_restart(struct stack *s, void (*entry)(void))
{
    /* The stack pointer a first switch leaves (fiber_make): the top less
     * 16 on x86-64, where ringo__ctx_start is reached by a ret; the top on
     * aarch64. */
#if defined(__x86_64__)
    ringo__ctx_restart(stack_top(s) - 16, entry);
#else
    ringo__ctx_restart(stack_top(s), entry);
#endif
}
#endif

/* Switch from the running context (saved in *from) to *to.  Inline: it is
 * on every goroutine switch (tests/bench/yield). */
#ifdef RINGO_SWITCH_UCONTEXT
/* swapcontext(3) also sets the signal mask saved in `to`, which is the
 * thread's mask of when `to` last ran: a mask the proc changed since (a
 * signal watched or no longer, signal.c proc_apply_mask) would be undone
 * for that goroutine.  The mask is the thread's, so `to` takes the one in
 * force now (one more system call, on a switch that makes one anyway). */
static inline void fiber_switch(struct fiber_ctx *from, struct fiber_ctx *to)
{
    pthread_sigmask(SIG_SETMASK, NULL, &to->uc->uc_sigmask);
    swapcontext(from->uc, to->uc);
}
#else
void ringo__ctx_switch(void **save_sp, void *load_sp);
static inline void fiber_switch(struct fiber_ctx *from, struct fiber_ctx *to)
{
    ringo__ctx_switch(&from->sp, to->sp);
}
#endif

/* A goroutine whose stack pointer is this close to the end of its stack
 * at a switch has overflowed or is about to: what the runtime runs on the
 * goroutine's stack below the frame that checks (stack_sp_ok, in the
 * switch) needs room.  That is the polls and timers of a scheduling
 * point, the start of the next goroutine (g_start) before the switch, the
 * switch's own pushes, and after it the reclaim of a goroutine that
 * exited, which may shed a batch of stacks (fiber.c "Shedding").
 * tests/check_sched runtime_frames_fit_red_zone measures them: 544 bytes
 * at most on x86-64 (gcc 12, -O2), with libringo bound at load
 * (Makefile.am: the lazy resolver's frames are over a kilobyte); the
 * sanitizers' instrumented frames, 2928 under ASan and 1840 under TSan.
 * Signal handlers run on the proc's alternate stack. */
#if defined(RINGO_TSAN) || defined(__SANITIZE_ADDRESS__)
#define STACK_RED_ZONE 4096
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STACK_RED_ZONE 4096
#endif
#endif
#ifndef STACK_RED_ZONE
#define STACK_RED_ZONE 1024
#endif

/* Every stack's usable bytes (fiber_init): s->lo is (char *)s minus this. */
extern size_t ringo__stack_usable;

/* The stack pointer, for stack_sp_ok at a switch.  Read from the
 * register: __builtin_frame_address(0) makes gcc build a frame-pointer
 * frame (push, move, pop of the base pointer, and one register fewer) in
 * every function the switch is inlined into.  Not volatile: any value the
 * stack pointer takes in the function serves. */
static inline __attribute__((always_inline)) const void *current_sp(void)
{
#if defined(__x86_64__)
    const void *sp;
    __asm__("mov %%rsp, %0" : "=r"(sp));
    return sp;
#elif defined(__aarch64__)
    const void *sp;
    __asm__("mov %0, sp" : "=r"(sp));
    return sp;
#else
    return __builtin_frame_address(0);
#endif
}

/* True if sp lies inside s with room to spare.  Checked at every switch
 * away from a goroutine, and on SIGSEGV with the faulting stack pointer.
 * The bottom comes from s and the common size, not from s->lo: the
 * header's first line is not otherwise touched while a goroutine runs,
 * and with a thousand goroutines taking turns it would be one more cache
 * miss per switch. */
static inline bool stack_sp_ok(const struct stack *s, const void *sp)
{
    /* One unsigned compare for both ends: below s by at most the usable
     * bytes less the red zone (above s, the difference wraps and is huge). */
    return (uintptr_t)s - (uintptr_t)sp <= ringo__stack_usable - STACK_RED_ZONE;
}

/*
 * Reading a parked fiber from another thread (the goroutine dump, runtime.c
 * "Stacks in dumps").  The registers a switch saved, as they are once the
 * switch call has returned to the fiber: pc is the switch's return address,
 * sp the stack pointer just above the switch's frame, and the callee-saved
 * registers (the only ones a call preserves) by DWARF register number.
 */
#define FIBER_REGS_MAX 13
struct fiber_regs {
    uint64_t pc, sp, fp;        /* fp: the frame pointer register (rbp, x29) */
    unsigned n;                 /* entries of no[] and val[] */
    uint16_t no[FIBER_REGS_MAX];  /* DWARF register numbers, sp's included */
    uint64_t val[FIBER_REGS_MAX];
};

/* Read the registers saved in ctx by the switch away from a fiber on s.
 * False if the saved stack pointer is not inside s (with room for the
 * switch's frame).  Every load is fiber_peek's. */
bool fiber_saved_regs(const struct fiber_ctx *ctx, const struct stack *s, struct fiber_regs *r);

/* One aligned machine word at addr, read without the sanitizers' checks
 * (another fiber's stack has poisoned red zones under ASan, and the word
 * may be written meanwhile by the thread running that fiber: the dump
 * reads it racily on purpose and validates afterwards).  Under valgrind
 * the value counts as defined.  addr must be mapped: the caller keeps it
 * within a stack's bounds. */
uint64_t fiber_peek(const void *addr);

/* If addr lies in the guard page of s, true. */
bool stack_guard_hit(const struct stack *s, const void *addr);

#endif /* RINGO_FIBER_H */
