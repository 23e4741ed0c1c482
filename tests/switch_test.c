/*
 * switch_test.c — the fiber context switch on its own, without io_uring.
 *
 * The rest of the suite runs the switch inside the runtime, which needs
 * io_uring; this program needs only fiber.c and the switch, so it also
 * runs under qemu-user for another machine (tests/aarch64.sh builds it for
 * aarch64).  It uses the library's own fiber_make, fiber_switch and
 * stack_get, and checks:
 *
 *   1. Many switches around a ring of fibers and the main context, each
 *      resuming the context it should.
 *   2. Every callee-saved register, general and floating-point, survives
 *      each switch: switch_regs.S loads them all with a value unique to
 *      the fiber and the round, switches, and compares.
 *   3. A new fiber starts with a 16-byte aligned stack, on a terminating
 *      frame record (saved frame pointer 0, called from ringo__ctx_start),
 *      and a DWARF unwind from it stops cleanly at the fiber's first frame.
 *   4. Deep recursion on a fiber stack, switching away at the bottom, with
 *      every frame's contents intact when it unwinds.
 *   5. fiber_restart from deep in a fiber's stack starts a new entry at
 *      the top of the same stack, on the same terms as 3 (its caller
 *      ringo__ctx_restart), and the fiber then switches as before.
 *
 * Exit status 0 on success, 1 on failure, 77 (skip) on a machine without
 * a register probe in switch_regs.S.
 */
#include "fiber.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__aarch64__)

#include <pthread.h>
#include <unwind.h>

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

unsigned long switch_regcheck(uint64_t seed, void (*fn)(void *), void *arg);
void *switch_sp_at_call(void);
#ifndef RINGO_SWITCH_UCONTEXT
void ringo__ctx_start(void);
#endif

#if defined(__x86_64__)
static const char *const reg_names[] = { "rbx", "rbp", "r12", "r13", "r14", "r15" };
#else
static const char *const reg_names[] = {
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29",
    "d8", "d9", "d10", "d11", "d12", "d13", "d14", "d15",
};
#endif
#define NREGS (sizeof reg_names / sizeof reg_names[0])

#define NFIBERS 4
#define ROUNDS 20000          /* times around the ring: 5 switches each */
#define DEEP_HOPS 50          /* times around the ring from the deepest frame */
#define STACK_SIZE (256 * 1024)

/* Context i is fiber i; context NFIBERS is the main one.  `cur` is the
 * context running now: each switch sets it to its target, so a context
 * that resumes and finds another value was resumed in the wrong place. */
static struct fiber_ctx ctxs[NFIBERS + 1];
static struct stack *stacks[NFIBERS];
#ifdef RINGO_SWITCH_UCONTEXT
static ucontext_t main_uc;    /* a fiber's lives in its stack header */
#endif
static int cur = NFIBERS;
static int failed;
static unsigned long switches;
static unsigned long reg_bad[NREGS];
static void *main_stack_lo;
static size_t main_stack_size;

enum phase { PHASE_RING, PHASE_DEEP, PHASE_RESTART };
static enum phase phase = PHASE_RING;
static int deep_done;
static size_t deep_depth;

#define FAIL(...) do { printf("FAIL: " __VA_ARGS__); putchar('\n'); failed = 1; } while (0)

/* Switch from context `from` to the next one in the ring, telling ASan
 * (when built with it) which stack we go to. */
static void hop(void *arg)
{
    int from = *(int *)arg;
    int to = (from + 1) % (NFIBERS + 1);
    cur = to;
    switches++;
#ifdef TEST_ASAN
    void *fake = NULL;
    const void *bottom = to < NFIBERS ? (const void *)stacks[to]->lo : main_stack_lo;
    size_t size = to < NFIBERS ? (size_t)(stack_top(stacks[to]) - stacks[to]->lo)
                               : main_stack_size;
    __sanitizer_start_switch_fiber(&fake, bottom, size);
    fiber_switch(&ctxs[from], &ctxs[to]);
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    fiber_switch(&ctxs[from], &ctxs[to]);
#endif
}

/* hop() with every callee-saved register loaded with a value of our own
 * (switch_regs.S), checked when we are switched back to. */
static void hop_checked(int self)
{
    static uint64_t round[NFIBERS + 1];
    uint64_t seed = ((uint64_t)(self + 1) << 48) | (++round[self] << 8);
    unsigned long bad = switch_regcheck(seed, hop, &self);
    if (cur != self)
        FAIL("context %d resumed while context %d was current", self, cur);
    for (unsigned i = 0; i < NREGS; i++) {
        if (bad & (1UL << i)) {
            if (reg_bad[i]++ == 0)
                FAIL("%s was not preserved across a switch (context %d)", reg_names[i], self);
        }
    }
}

static _Unwind_Reason_Code count_frame(struct _Unwind_Context *uc, void *arg)
{
    (void)uc;
    return ++*(int *)arg > 64 ? _URC_NORMAL_STOP : _URC_NO_REASON;
}

/* Check the frame a new fiber starts on.  noinline: `frame` is this
 * function's, whose caller is the fiber's entry. */
static __attribute__((noinline)) void check_first_frame(int self, void **entry_frame,
                                                         uintptr_t start)
{
    void *sp = switch_sp_at_call();
    if ((uintptr_t)sp % 16 != 0)
        FAIL("fiber %d runs on a misaligned stack (sp %p)", self, sp);
#ifndef RINGO_SWITCH_UCONTEXT
    /* The entry's frame record: the saved frame pointer is 0 (the end of
     * the chain) and the return address lies in ringo__ctx_start. */
    uintptr_t ret = (uintptr_t)entry_frame[1];
    if (entry_frame[0] != NULL)
        FAIL("fiber %d: the entry's caller has frame pointer %p, not 0", self, entry_frame[0]);
    if (ret <= start || ret > start + 32)
        FAIL("fiber %d: the entry returns to %p, not into its start routine (%p)",
             self, (void *)ret, (void *)start);
#else
    (void)entry_frame;
    (void)start;
#endif
    /* A DWARF unwind must end at the fiber's outermost frame: this
     * function, the entry, the start routine (and _Unwind_Backtrace's own
     * frame), not run on into whatever lies above the stack top. */
    int frames = 0;
    _Unwind_Reason_Code rc = _Unwind_Backtrace(count_frame, &frames);
    if (rc != _URC_END_OF_STACK || frames > 8)
        FAIL("fiber %d: unwinding from its entry gave reason %d after %d frames",
             self, (int)rc, frames);
}

/* Recurse until most of the fiber stack is in use, go around the ring from
 * the deepest frame, and check every frame's bytes on the way back up. */
static __attribute__((noinline)) unsigned long deep(int self, size_t depth, const char *top)
{
    volatile unsigned char buf[200];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(depth * 31 + i);
    unsigned long sum;
    const char *here = (const char *)buf;
    if ((size_t)(top - here) < STACK_SIZE * 3 / 4) {
        sum = deep(self, depth + 1, top);
    } else {
        deep_depth = depth;
        if (!stack_sp_ok(stacks[self], here))
            FAIL("fiber %d: the deepest frame %p is outside the stack", self, (void *)here);
        for (int i = 0; i < DEEP_HOPS; i++)
            hop_checked(self);
        sum = 0;
    }
    for (size_t i = 0; i < sizeof buf; i++) {
        if (buf[i] != (unsigned char)(depth * 31 + i)) {
            FAIL("fiber %d: frame %zu was overwritten while switched away", self, depth);
            break;
        }
    }
    return sum + depth;
}

static void fiber_loop(int self);

#if FIBER_RESTART
static int restarted;
static unsigned long restart_hops; /* hops made after the restart */

/* Started by fiber_restart on the stack fiber 1 was deep in. */
static void restart_entry(void)
{
    int self = cur;
    check_first_frame(self, __builtin_frame_address(0), (uintptr_t)ringo__ctx_restart);
    const char *here = (const char *)__builtin_frame_address(0);
    if (here < stacks[self]->lo || (size_t)(stack_top(stacks[self]) - here) > 256)
        FAIL("fiber %d restarted with its frame at %p, not at its stack's top %p", self,
             (const void *)here, (void *)stack_top(stacks[self]));
    restarted = 1;
    fiber_loop(self);
}

/* A few frames down, then start afresh from the top.  (It recurses
 * through a pointer: only the path that never returns ends the descent,
 * which a direct call would have the compiler call infinite.) */
static void restart_from(int self, int depth);
static void (*volatile restart_down)(int, int) = restart_from;

static __attribute__((noinline)) void restart_from(int self, int depth)
{
    volatile char pad[128];
    pad[0] = (char)depth;
    if (depth < 8) {
        restart_down(self, depth + 1);
        return;
    }
#ifdef TEST_ASAN
    /* The frames left behind keep their redzones (as sched.c's g_exit
     * clears them for the goroutine it restarts). */
    __asan_unpoison_memory_region(stacks[self]->lo,
                                  (size_t)(stack_top(stacks[self]) - stacks[self]->lo));
#endif
    fiber_restart(stacks[self], restart_entry);
    (void)pad[0];
}
#endif

static void fiber_entry(void)
{
    int self = cur;
#ifdef TEST_ASAN
    /* The switch that started us began in hop() and ends here. */
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
#ifndef RINGO_SWITCH_UCONTEXT
    check_first_frame(self, __builtin_frame_address(0), (uintptr_t)ringo__ctx_start);
#else
    check_first_frame(self, __builtin_frame_address(0), 0);
#endif
    fiber_loop(self);
}

static void fiber_loop(int self)
{
    for (;;) {
#if FIBER_RESTART
        if (phase == PHASE_RESTART && self == 1 && !restarted)
            restart_from(self, 0);
        if (restarted && self == 1)
            restart_hops++;
#endif
        if (phase == PHASE_DEEP && self == 0 && !deep_done) {
            size_t want = 0;
            unsigned long sum = deep(self, 0, stack_top(stacks[self]));
            for (size_t d = 0; d <= deep_depth; d++)
                want += d;
            if (sum != want)
                FAIL("deep recursion returned %lu, not %zu", sum, want);
            deep_done = 1;
        }
        hop_checked(self);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &main_stack_lo, &main_stack_size);
        pthread_attr_destroy(&attr);
    }
    if (fiber_init(STACK_SIZE) != 0 || stack_reserve(NFIBERS) != 0) {
        printf("FAIL: cannot set up fiber stacks\n");
        return 1;
    }
#ifdef RINGO_SWITCH_UCONTEXT
    ctxs[NFIBERS].uc = &main_uc;
#endif
    struct stack_cache cache = { 0 };
    for (int i = 0; i < NFIBERS; i++) {
        stacks[i] = stack_get(&cache);
        if (!stacks[i]) {
            printf("FAIL: stack_get\n");
            return 1;
        }
        fiber_make(&ctxs[i], stacks[i], fiber_entry);
    }

    for (int r = 0; r < ROUNDS && !failed; r++)
        hop_checked(NFIBERS);
    phase = PHASE_DEEP;
    while (!deep_done && !failed)
        hop_checked(NFIBERS);
#if FIBER_RESTART
    phase = PHASE_RESTART;
    for (int r = 0; r < 10 && !failed; r++)
        hop_checked(NFIBERS);
    if (!restarted || restart_hops < 5)
        FAIL("the restarted fiber made %lu hops", restart_hops);
#endif

    /* The fibers stay suspended; their stacks go back unused. */
    for (int i = 0; i < NFIBERS; i++)
        stack_put(&cache, stacks[i]);
    stack_cache_drain(&cache);
    stack_unreserve(NFIBERS);
    fiber_fini();

#if FIBER_RESTART
    const char *restart = ", a fiber restarted";
#else
    const char *restart = "";
#endif
    printf("%s: %lu switches among %d fibers and main, %zu frames deep%s, "
           "%u callee-saved registers checked at each\n",
           failed ? "FAIL" : "PASS", switches, NFIBERS, deep_depth, restart, (unsigned)NREGS);
    return failed;
}

#else /* no register probe in switch_regs.S for this machine */

int main(void)
{
    printf("SKIP: switch_test has no register probe for this machine\n");
    return 77;
}

#endif
