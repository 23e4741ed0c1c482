/*
 * runtime.c — ringo_run: starting and stopping the procs, termination,
 * deadlock detection and reporting, fatal errors and stack-overflow reports.
 *
 * A run: ringo_run() starts one thread per proc; each pins itself to a CPU
 * and sets up its own io_uring (SINGLE_ISSUER rings must be created by the
 * thread that submits), then all wait at a barrier until every ring is up or
 * one has failed.  The main goroutine is placed on proc 0 and the procs
 * start their loops.  The run ends when the last goroutine exits
 * (rt.stopping = 1) or when deadlock is detected (rt.stopping = 2); either
 * way every proc is woken, leaves its loop and tears its ring down, and the
 * calling thread joins them and frees what the run allocated.
 *
 * Deadlock: a proc that has nothing to run, no I/O in flight (futex waits
 * do not count, see futex.c) and no timers registers as idle under
 * rt.idle_lock.  When the last proc registers, and no plain thread has
 * called in this run (it could still release a goroutine), and no inbox or task list holds work, nothing can ever run
 * again: that is Go's "all goroutines are asleep".  The check is under the
 * lock because a proc unregisters (under the lock) before it drains its
 * inbox, so work pushed to an idle proc is always seen by the checker.
 */
#include "config.h"

#include "chan.h"
#include "internal.h"
#include "futex.h"
#include "unwinder.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "ringo.h"

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

struct runtime rt = {
    .idle_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* One run at a time: ringo_run is not re-entrant. */
static _Atomic int run_busy;

/* Totals of the last finished run, for ringo_stats after ringo_run. */
static struct ringo_stats last_totals;
static pthread_mutex_t totals_lock = PTHREAD_MUTEX_INITIALIZER;

/* Thread start barrier. */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cond = PTHREAD_COND_INITIALIZER;
static unsigned start_ready;    /* procs whose setup finished (ok or not); under start_lock */
static int start_err;           /* first setup error; under start_lock */
static int start_go;            /* 1 run, -1 abort; under start_lock */

static struct sigaction old_segv;
static bool segv_installed;

#define ALTSTACK_SIZE (64 * 1024)

__thread bool tls_runtime_thread;

/* Plain threads alive that have touched a ringo object, in this run or
 * before it.  rt.foreign turns deadlock detection off for the rest of a
 * run once a plain thread calls in during it; but a thread that locked a
 * mutex, or added to a WaitGroup, before the run may still release a
 * goroutine that waits on it, without any call during the run until
 * then.  So a thread counts itself here at its first call (wherever it
 * is made) and uncounts itself when it exits (the key's destructor), and
 * the check reports nothing while one is counted, the ringo_run caller
 * aside (it waits in ringo_run for the run's end: rt.caller_toucher).
 * seq_cst, as rt.foreign: the check reads both under idle_lock. */
static _Atomic long foreign_threads;
static __thread bool tls_toucher;       /* has called in (looked at once) */
static __thread bool tls_counted;       /* and is counted in foreign_threads */
static pthread_key_t toucher_key;
static bool toucher_key_made;           /* set once, under toucher_once */
static pthread_once_t toucher_once = PTHREAD_ONCE_INIT;

static void toucher_gone(void *v)
{
    (void)v;
    fetch_add_seqcst(&foreign_threads, -1);
    /* Every proc may be idle already, its check having found this thread
     * counted: wake one, which looks again as it goes idle again, on its
     * own thread (a report's dump needs more stack than a small thread
     * may have).  Under idle_lock, as the checks: either the last proc to
     * go idle does so after this, and sees the count, or this sees every
     * proc idle. */
    struct rproc *me;
    if (!run_enter_quiet(&me))
        return;
    pthread_mutex_lock(&rt.idle_lock);
    bool all = rt.idle_procs == rt.nprocs;
    pthread_mutex_unlock(&rt.idle_lock);
    if (all)
        proc_wake(rt.procs[0]);
    run_exit(me);
}

/* A fork's child has only the thread that forked. */
static void toucher_forked(void)
{
    store_seqcst(&foreign_threads, tls_counted ? 1 : 0);
    futex_forked();
}

static void toucher_init(void)
{
    if (pthread_key_create(&toucher_key, toucher_gone) == 0) {
        toucher_key_made = true;
        pthread_atfork(NULL, NULL, toucher_forked);
    }
}

static void note_toucher(void)
{
    tls_toucher = true;
    pthread_once(&toucher_once, toucher_init);
    /* Counted only with a destructor to uncount it: a thread that cannot
     * have one still turns detection off for the run it calls in.  (The
     * key's destructor is this library's: it is linked -z nodelete, and a
     * thread that outlives a dlclose still finds it.) */
    if (toucher_key_made && pthread_setspecific(toucher_key, (void *)1) == 0) {
        tls_counted = true;
        fetch_add_seqcst(&foreign_threads, 1);
    }
}

/* The verdict and plain threads.  A deadlock verdict discards the parked
 * goroutines, but they stay on the channels they wait on until the run's
 * end unlinks them (abandon_one), after every proc has been joined.  A
 * plain thread's send in between would hand its value to one of them and
 * return 0: the value lost.  So the verdict claims every goroutine parked
 * on a channel (verdict_claim) before it is given, and a plain thread's
 * claim of one fails from then on, as of a waiter someone else woke: the
 * channel passes it over.  Every plain thread's call comes through
 * note_foreign first (channel operations, sync, signals, spawns,
 * cancels), and this handshake keeps what it does from racing the
 * verdict's claims:
 *
 *     plain thread (note_foreign)        the verdict (rt_check_deadlock)
 *     load(foreign); 0: xchg(foreign, 1) store(verdict, 1)
 *     load(verdict): 1 -> wait           load(foreign): 1 -> verdict 0, none
 *
 * All seq_cst: either the verdict sees the thread (and is not given: the
 * thread's call turns detection off for the run anyway), or the thread
 * sees it coming and waits until it is decided, when the claims are made
 * (2) or the verdict dropped (0).  A thread whose load finds foreign
 * already 1 needs no store: the verdict's load of 0, if it read 0, came
 * before that 1 in the single order, so before our load, and its store of
 * verdict before both.  The wait covers the claims only (the report comes
 * after them), a loop over the goroutine table under idle_lock.  A thread
 * that comes after the verdict finds it 2 and goes on: its claims of the
 * discarded goroutines fail. */
void note_foreign(void)
{
    if (tls_runtime_thread)
        return; /* the signal thread: signal_regs keeps the check off */
    if (__builtin_expect(!tls_toucher, 0))
        note_toucher();
    if (!load_seqcst(&rt.foreign))
        xchg_seqcst(&rt.foreign, 1);
    /* seq_cst: as above; futex(2) returns at once if it has moved on */
    while (load_seqcst(&rt.verdict) == 1)
        sys_futex(&rt.verdict, FUTEX_WAIT_PRIVATE, 1);
}

/* The last plain thread to leave a run whose end waits for it (internal.h
 * run_leave). */
void run_left(void)
{
    sys_futex(&rt.foreign_ops, FUTEX_WAKE_PRIVATE, 1);
}

static void verdict_decided(uint32_t v)
{
    store_seqcst(&rt.verdict, v);
    sys_futex(&rt.verdict, FUTEX_WAKE_PRIVATE, INT_MAX);
}

static void verdict_claim(struct rg *g, void *arg)
{
    (void)arg;
    if (!g->cold || !g_wait(g)->nsudogs) /* as abandon_one: on a channel */
        return;
    /* relaxed: every proc is idle and registered so under idle_lock, which
     * we hold, so the goroutine's park came before; the CAS acquires */
    uint64_t w = load_relaxed(&g->park);
    if (!(w & PARK_CLAIMED))
        cas_acq_rel(&g->park, &w, w | PARK_CLAIMED);
}

static const char *state_word(uint8_t state, uint8_t reason)
{
    switch (state) {
    case G_RUNNABLE: return "runnable";
    case G_RUNNING: return "running";
    case G_WAITING: break;
    default: return "dead";
    }
    switch (reason) {
    case W_SLEEP: return "sleep";
    case W_CHAN_SEND: return "chan send";
    case W_CHAN_RECV: return "chan receive";
    case W_SELECT: return "select";
    case W_SELECT_NOCASES: return "select (no cases)";
    case W_MUTEX: return "mutex";
    case W_WAITGROUP: return "waitgroup";
    case W_COND: return "cond";
    case W_IO: return "io";
    case W_OFFLOAD: return "offload";
    default: return "waiting";
    }
}

/* A goroutine's function (u: NULL outside a dump). */
static void fn_name(struct unwinder *u, void (*fn)(void *), char *buf, size_t len)
{
    Dl_info info;
    if (u && unwind_symbol(u, (uintptr_t)fn, buf, len))
        return;
    if (dladdr((void *)(uintptr_t)fn, &info) && info.dli_sname)
        snprintf(buf, len, "%s", info.dli_sname);
    else
        snprintf(buf, len, "?");
}

/* A code address as function+offset, or object+offset when the function
 * is not in the dynamic symbol table (a static function, or an executable
 * linked without -rdynamic) and the unwinder cannot name it either. */
static void code_name(struct unwinder *u, const void *pc, char *buf, size_t len)
{
    Dl_info info;
    if (!pc)
        snprintf(buf, len, "ringo_run");
    else if (u && unwind_symbol(u, (uintptr_t)pc, buf, len))
        return;
    else if (dladdr(pc, &info) && info.dli_sname && info.dli_saddr)
        snprintf(buf, len, "%s+0x%tx", info.dli_sname, (const char *)pc - (const char *)info.dli_saddr);
    else if (dladdr(pc, &info) && info.dli_fname)
        snprintf(buf, len, "%s+0x%tx", (strrchr(info.dli_fname, '/') ? strrchr(info.dli_fname, '/') + 1
                                                                     : info.dli_fname),
                 (const char *)pc - (const char *)info.dli_fbase);
    else
        snprintf(buf, len, "%p", pc);
}

/*
 * Dumps.  A dump reads every goroutine while its proc runs it, parks it or
 * recycles its struct, from any thread (ringo_dump's caller, or the signal
 * thread on SIGQUIT), without stopping the procs: stopping them would need
 * a safe point that a goroutine spinning in user code never reaches.  So
 * it reads only what may be read racily.  Every field is a relaxed atomic
 * (state, reason, wait_fd, wait_obj, parked_ms, id, p, the creator table)
 * -- untorn, and wrong at worst by being a moment old -- except fn, plain
 * and fixed for a goroutine's life: spawn writes it before the release
 * store of the id that gtable_foreach reads with acquire, so the function
 * read belongs to that id, unless the goroutine exits and its struct is
 * recycled between the two reads (then the line may name the next
 * goroutine's function; the struct is never freed during a run, so the
 * read is of valid memory).  The fields of one goroutine may come from
 * different moments (a reason of its last wait with the state of the
 * next, a slot's creator from an incarnation that has just replaced the
 * one whose id was read): a snapshot of a running system, as Go's is not
 * (it stops the world), and enough for a person reading it.  Nothing the
 * dump reads is dereferenced but the struct itself, its proc (p, fixed
 * once the goroutine has started; procs live as long as the run, which
 * run_enter holds) and, for a parked goroutine, its stack, within its
 * bounds (stacks are unmapped only after the run; "Stacks in dumps"
 * below).  A deadlock report reads a system at rest.
 *
 * Goroutines alike -- the same state, wait reason, function, creator and
 * stack -- are printed as one group with a count, as Go's debug=1 profile
 * does, so a dump of a million goroutines has at most DUMP_GROUPS groups
 * plus one line.  A group of one is printed in full:
 *
 *     goroutine 7 [chan receive, on 0x..., 1204 ms]: created by worker at 0x... by main+0x2d on proc 0
 *         ringo_chan_recv+0x52 (libringo.so.0+0x9e42) src/chan.c:318
 *         worker+0x1d (server+0x1a2b) server.c:40
 *     1000 goroutines [io, 3 to 1204 ms]: created by conn at 0x... by server+0x61, e.g. goroutine 12
 *         ...
 *
 * Grouping needs memory (allocated per dump); without it every goroutine
 * gets its own lines.
 *
 * Stacks in dumps.  A parked goroutine's stack is unwound from the
 * registers its switch saved (fiber_saved_regs) by unwinder.c, which never
 * reads outside the goroutine's own stack: the dump cannot fault, whatever
 * the stack holds.  Stacks of running and runnable goroutines are not
 * read: a running one is changing it, and a runnable one may start to at
 * any moment with nothing to tell us (the watchdog shows a running
 * goroutine's stack, from its own thread).
 *
 * A parked goroutine's stack does not change while it stays parked, and
 * the dump checks that it stayed parked for the whole read, without a
 * lock or a new store on the park and switch paths:
 *
 *     owner proc (parking g)                dump (stack_snap)
 *     park_prepare: park = token (new)      park1 = load_acquire(g->park)
 *     state = WAITING                       unclaimed, state WAITING, p->cur != g
 *     switch_to: p->cur = next              regs = g's saved context; unwind
 *       save g's registers, sp              fence_acquire
 *     ...                                   park2 = g->park, p->cur, regs again
 *     waker: claim(g) (CAS on park)         all the same: the stack read is g's,
 *     ready(g); the proc switches to g        parked; else read it again (4 times)
 *     g runs and writes its stack
 *
 * g can run again only after a waker has claimed its park word (the token
 * stays until g's next park_prepare, with the claimed bit set; tokens are
 * never reused, not even by the struct's next goroutine), and its
 * proc writes g's stack only after that claim; so if park2 is park1 and
 * unclaimed, no word the unwinder read was written by g resumed.  p->cur
 * != g (g's proc has moved on to another context) rules out a g that has
 * published WAITING but not yet switched away.  Left: the few instructions
 * of its switch between p->cur and the save of its stack pointer, when the
 * previous park saved the same stack pointer; the check then passes on a
 * stack whose top frame is being written, and the top frames may be wrong.
 * On x86-64 every store is seen in order, so "no word read was written by
 * g resumed" holds; on aarch64 a resumed g's stores may be seen before the
 * claim that preceded them when the waker ran on the same proc, with the
 * same result at worst: wrong frames, never a read outside the stack.  A
 * goroutine that keeps being resumed during four reads is printed with a
 * note instead of frames.  The deadlock report reads a system at rest.
 */
#define DUMP_GROUPS 4096

/* What a group's stack is. */
enum { STK_NONE, STK_OK, STK_MOVED };

struct dump_group {
    /* the key */
    uint8_t state, reason;
    void (*fn)(void *);
    void *creator;
    uint8_t stack;              /* STK_* */
    uint8_t npcs;               /* frames in pcs */
    bool truncated;             /* more frames than pcs holds */
    uintptr_t pcs[UNWIND_FRAMES];
    /* the first goroutine of the group, printed in full when alone */
    int64_t id;
    int proc, fd;
    const void *obj;
    uint32_t waited, waited_min; /* ms; waited: the longest */
    uint64_t count;
    uint32_t chain;             /* next group in the hash bucket + 1 */
};

struct dump_ctx {
    int fd;
    bool with_proc;
    bool at_rest;               /* the deadlock's report: every goroutine parked for good
                                 * (the verdict claimed those on channels) */
    uint32_t now_ms;            /* rt.epoch_ns-based, as the park clocks */
    struct unwinder *unw;
    struct dump_group *groups;  /* NULL: no grouping */
    uint32_t *buckets;          /* DUMP_GROUPS of them; group index + 1 */
    uint32_t ngroups;
    uint64_t others;            /* goroutines beyond DUMP_GROUPS groups */
};

/* The registers g's switch saved, or false if its stack or saved stack
 * pointer is not there to read. */
static bool saved_regs(struct rg *g, struct fiber_regs *r, const char **lo, const char **hi)
{
    /* g's lines 1 and 2 (struct rg.cold, peeked at) hold its stack; the
     * stack pointer and the stack's lo are plain fields written by the
     * owner proc (fixed while g is parked); fiber_peek reads them racily. */
    struct rg_cold *c = (struct rg_cold *)(uintptr_t)fiber_peek(&g->cold);
    if (!c)
        return false;
    struct stack *st = (struct stack *)(uintptr_t)fiber_peek(&c->run.stack);
    if (!st)
        return false;
    *lo = (const char *)(uintptr_t)fiber_peek(&st->lo);
    *hi = stack_top(st);
    return fiber_saved_regs(&c->run.ctx, st, r);
}

/* s->pcs: the stack of g, parked on p when the snapshot began (see
 * "Stacks in dumps"). */
static void stack_snap(struct dump_ctx *d, struct rg *g, struct rproc *p, struct dump_group *s)
{
    uintptr_t pcs[UNWIND_FRAMES + 1];
    for (int tries = 0; tries < 4; tries++) {
        /* acquire: the reads below come after it (park1 in the timeline) */
        uint64_t park = load_acquire(&g->park);
        if (((park & PARK_CLAIMED) && !d->at_rest) || load_relaxed(&g->state) != G_WAITING ||
            (struct rg *)(uintptr_t)fiber_peek(&p->cur) == g)
            continue;
        struct fiber_regs r, r2;
        const char *lo, *hi;
        if (!saved_regs(g, &r, &lo, &hi))
            continue;
        int n = unwind_fiber(d->unw, &r, lo, hi, pcs, UNWIND_FRAMES + 1);
        /* acquire: every stack read above is ordered before the re-reads */
        fence_acquire();
        if (load_relaxed(&g->park) != park ||
            (struct rg *)(uintptr_t)fiber_peek(&p->cur) == g || !saved_regs(g, &r2, &lo, &hi) ||
            r2.pc != r.pc || r2.sp != r.sp || r2.fp != r.fp)
            continue;
        s->stack = STK_OK;
        s->truncated = n > UNWIND_FRAMES;
        s->npcs = (uint8_t)(n > UNWIND_FRAMES ? UNWIND_FRAMES : n);
        memcpy(s->pcs, pcs, s->npcs * sizeof *pcs);
        return;
    }
    s->stack = STK_MOVED;
}

static void snap(struct dump_ctx *d, struct rg *g, struct dump_group *s)
{
    memset(s, 0, sizeof *s);
    /* relaxed: see "Dumps" */
    s->id = load_relaxed(&g->id);
    s->state = load_relaxed(&g->state);
    s->reason = s->state == G_WAITING ? load_relaxed(&g->reason) : 0;
    s->fn = g->fn;
    s->creator = goroutine_creator(g);
    struct rproc *p = load_relaxed(&g->p);
    s->proc = p ? p->idx : -1;
    s->fd = -1;
    if (s->state == G_WAITING) {
        /* Lines 1 and 2: those of a started goroutine, which it keeps
         * while it waits; NULL or another goroutine's if it exited and its
         * struct was used again since the state was read: a mismatch a
         * snapshot can afford, as for the fields of line 0. */
        struct rg_cold *c = (struct rg_cold *)(uintptr_t)fiber_peek(&g->cold);
        s->fd = c ? load_relaxed(&c->run.wait_fd) : -1;
        s->obj = c ? load_relaxed(&c->wait.wait_obj) : NULL;
        uint32_t at = c ? load_relaxed(&c->wait.parked_ms) : d->now_ms;
        /* a stamp a coarse tick ahead of our clock reads as 0 */
        s->waited = d->now_ms - at > INT32_MAX ? 0 : d->now_ms - at;
        if (p)
            stack_snap(d, g, p, s);
    }
    s->waited_min = s->waited;
    s->count = 1;
}

static void print_stack(struct dump_ctx *d, const struct dump_group *s)
{
    if (s->stack == STK_MOVED) {
        dprintf(d->fd, "    (stack not read: resumed while the dump read it)\n");
        return;
    }
    for (unsigned i = 0; i < s->npcs; i++) {
        char line[512];
        unwind_describe(d->unw, s->pcs[i], line, sizeof line);
        dprintf(d->fd, "    %s\n", line);
    }
    if (s->truncated)
        dprintf(d->fd, "    ...more frames\n");
}

static void print_one(struct dump_ctx *d, const struct dump_group *s)
{
    char name[128], by[160], on[64] = "", waited[32] = "";
    fn_name(d->unw, s->fn, name, sizeof name);
    code_name(d->unw, s->creator, by, sizeof by);
    if (s->state == G_WAITING) {
        if (d->with_proc && s->fd >= 0)
            snprintf(on, sizeof on, ", fd %d", s->fd);
        else if (d->with_proc && s->obj)
            snprintf(on, sizeof on, ", on %p", s->obj);
        snprintf(waited, sizeof waited, ", %u ms", (unsigned)s->waited);
    }
    if (d->with_proc)
        dprintf(d->fd, "goroutine %lld [%s%s%s]: created by %s at %p by %s on proc %d\n",
                (long long)s->id, state_word(s->state, s->reason), on, waited, name,
                (void *)(uintptr_t)s->fn, by, s->proc);
    else
        dprintf(d->fd, "goroutine %lld [%s%s]: created by %s at %p by %s\n", (long long)s->id,
                state_word(s->state, s->reason), waited, name, (void *)(uintptr_t)s->fn, by);
    print_stack(d, s);
}

static void print_group(struct dump_ctx *d, const struct dump_group *s)
{
    if (s->count == 1) {
        print_one(d, s);
        return;
    }
    char name[128], by[160], waited[48] = "";
    fn_name(d->unw, s->fn, name, sizeof name);
    code_name(d->unw, s->creator, by, sizeof by);
    if (s->state == G_WAITING)
        snprintf(waited, sizeof waited, ", %u to %u ms", (unsigned)s->waited_min,
                 (unsigned)s->waited);
    dprintf(d->fd, "%llu goroutines [%s%s]: created by %s at %p by %s, e.g. goroutine %lld\n",
            (unsigned long long)s->count, state_word(s->state, s->reason), waited, name,
            (void *)(uintptr_t)s->fn, by, (long long)s->id);
    print_stack(d, s);
}

static bool same_key(const struct dump_group *x, const struct dump_group *s)
{
    return x->fn == s->fn && x->creator == s->creator && x->state == s->state &&
           x->reason == s->reason && x->stack == s->stack && x->npcs == s->npcs &&
           x->truncated == s->truncated && memcmp(x->pcs, s->pcs, s->npcs * sizeof *s->pcs) == 0;
}

static void dump_one(struct rg *g, void *arg)
{
    struct dump_ctx *d = arg;
    struct dump_group s;
    snap(d, g, &s);
    if (s.id <= 0)
        return; /* exited since gtable_foreach looked */
    if (!d->groups) {
        print_one(d, &s);
        return;
    }
    uintptr_t h = (uintptr_t)s.fn * 31 + (uintptr_t)s.creator * 17 + s.state * 7u + s.reason;
    h = h * 31 + s.stack;
    for (unsigned i = 0; i < s.npcs; i++)
        h = h * 31 + s.pcs[i];
    h ^= h >> 17;
    uint32_t *b = &d->buckets[h % DUMP_GROUPS];
    for (uint32_t i = *b; i; i = d->groups[i - 1].chain) {
        struct dump_group *x = &d->groups[i - 1];
        if (same_key(x, &s)) {
            x->count++;
            if (s.waited > x->waited)
                x->waited = s.waited;
            if (s.waited < x->waited_min)
                x->waited_min = s.waited;
            return;
        }
    }
    if (d->ngroups == DUMP_GROUPS) {
        d->others++;
        return;
    }
    s.chain = *b;
    d->groups[d->ngroups++] = s;
    *b = d->ngroups;
}

/* small_stack: on a goroutine's stack, where libdw would not fit. */
static void dump(int fd, bool with_proc, bool small_stack, bool at_rest)
{
    struct dump_ctx d = { .fd = fd, .with_proc = with_proc, .at_rest = at_rest };
    d.now_ms = (uint32_t)((now_ns() - rt.epoch_ns) / 1000000);
    d.unw = unwinder_open(!small_stack);
    d.groups = malloc(DUMP_GROUPS * sizeof *d.groups);
    d.buckets = calloc(DUMP_GROUPS, sizeof *d.buckets);
    if (!d.groups || !d.buckets) {
        free(d.groups);
        free(d.buckets);
        d.groups = NULL;
    }
    gtable_foreach(dump_one, &d);
    for (uint32_t i = 0; d.groups && i < d.ngroups; i++)
        print_group(&d, &d.groups[i]);
    if (d.others)
        dprintf(fd, "%llu more goroutines, in groups beyond the first %d\n",
                (unsigned long long)d.others, DUMP_GROUPS);
    if (d.groups) {
        free(d.groups);
        free(d.buckets);
    }
    unwinder_close(d.unw);
}

/* From the signal thread (signal.c "SIGQUIT"): a plain thread of the
 * runtime's, so the dump runs as ringo_dump does from any plain thread,
 * concurrently with the procs, whatever they are running. */
void dump_on_signal(int sig)
{
    struct rproc *me;
    if (!run_enter(&me))
        return; /* the run is not (or no longer) in progress */
    dprintf(2, "ringo: signal %d (%s): goroutine dump\n", sig, strsignal(sig));
    dump(2, true, false, false);
    dprintf(2, "\n");
    run_exit(me);
}

void dump_all(int fd)
{
    dump(fd, false, false, true);
}

struct dump_job {
    int fd;
};

static void *dump_thread(void *arg)
{
    struct dump_job *job = arg;
    dump(job->fd, true, false, false);
    return NULL;
}

void ringo_dump(int fd)
{
    struct rproc *me;
    if (!run_enter_quiet(&me)) { /* quiet: as ringo_stats */
        dprintf(fd, "ringo: no run in progress\n");
        return;
    }
    /* A goroutine's stack is too small for libdw (unwinder.c), which reads
     * files and /proc with buffers on the stack: from a goroutine the dump
     * runs on a thread of its own while the caller's proc waits.  The
     * thread enters nothing: the caller's proc holds the run. */
    pthread_t t;
    struct dump_job job = { .fd = fd };
    if (me && me->cur && seam_pthread_create(&t, NULL, dump_thread, &job) == 0)
        pthread_join(t, NULL);
    else
        dump(fd, true, me && me->cur, false); /* reads the goroutines' procs */
    run_exit(me);
}

static void vreport(const char *prefix, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    struct rg *g = self_g();
    if (g) {
        char name[128];
        fn_name(NULL, g->fn, name, sizeof name);
        dprintf(2, "%s%s\n\ngoroutine %lld [running]: created by %s at %p\n", prefix, msg,
                g_id_shown(g), name, (void *)(uintptr_t)g->fn);
    } else {
        dprintf(2, "%s%s\n\n(not in a goroutine)\n", prefix, msg);
    }
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("ringo: fatal error: ", fmt, ap);
    va_end(ap);
    abort();
}

void bug(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("ringo: internal error (a bug in ringo): ", fmt, ap);
    va_end(ap);
    abort();
}

/* Called under rt.idle_lock by a proc that just registered idle. */
void rt_check_deadlock(struct rproc *self)
{
    if (rt.idle_procs != rt.nprocs)
        return;
    int64_t outside;
    if (load_seqcst(&rt.foreign) || load_seqcst(&foreign_threads) > rt.caller_toucher ||
        load_seqcst(&signal_regs) || load_relaxed(&rt.stopping) || live_count_read(&outside) <= 0)
        return;
    /* Every proc is registered idle.  An idle proc still reaps in its
     * eng_poll, so a futex wait that completes there lowers q->inflight
     * as we read it: relaxed atomics (owner_add), and a read that misses
     * the decrement is covered by rt.futex_transit below.  q->timers.n is
     * plain: a proc registers idle only with no timers, arms none until it
     * has unregistered (timers are armed by goroutines and tasks, which it
     * runs after), and its last change happened before its registration
     * under idle_lock, which we hold. */
    for (unsigned i = 0; i < rt.nprocs; i++) {
        struct rproc *q = rt.procs[i];
        if (load_acquire(&q->inbox) || load_acquire(&q->tasks) ||
            load_relaxed(&q->inflight) != load_relaxed(&q->futex_waits) || q->timers.n)
            return;
    }
    /* acquire: pairs with the acq_rel updates in offload.c; a job in flight
     * will wake its goroutine through the owner's task stack. */
    if (load_acquire(&rt.offload_jobs))
        return;
    /* A futex wake on its way to a parked goroutine (futex.c). */
    if (load_seqcst(&rt.futex_transit) != 0)
        return;
    /* No spawn from a plain thread from here on, as at the normal end
     * (spawn.c "The end of the run"): one that came since we read
     * rt.live fails this CAS, and the verdict is not given; one that comes
     * after it fails itself.  acq_rel: against live_inc's CAS.  One that
     * came between our first look at rt.foreign and our read of rt.live
     * is in the count we read; its thread marked itself foreign before
     * (note_foreign, seq_cst, then live_inc): looked at again. */
    store_seqcst(&rt.verdict, 1); /* "The verdict and plain threads" */
    if (load_seqcst(&rt.foreign) ||
        !cas_acq_rel(&rt.live, &outside, outside | LIVE_STOPPED)) {
        verdict_decided(0);
        return;
    }
    gtable_foreach(verdict_claim, NULL);
    verdict_decided(2);
    store_seqcst(&rt.stopping, 2);
    /* The report after the claims: it may block (stderr a full pipe, read
     * by a plain thread that calls in), and nobody must wait for it. */
    dprintf(2, "ringo: all goroutines are asleep - deadlock!\n\n");
    dump_all(2);
    for (unsigned i = 0; i < rt.nprocs; i++)
        if (rt.procs[i] != self)
            proc_wake(rt.procs[i]);
}

/* No goroutine is live and none can be spawned (spawn.c "The end of the
 * run"): every proc leaves its loop. */
void rt_stop(void)
{
    store_seqcst(&rt.stopping, 1);
    for (unsigned i = 0; i < rt.nprocs; i++)
        if (rt.procs[i] != tls_proc)
            proc_wake(rt.procs[i]);
}

static void abandon_one(struct rg *g, void *arg)
{
    (void)arg;
    if (g->cold && g_wait(g)->nsudogs) /* no lines 1 and 2 until it starts */
        chan_abandon_waits(g);
}

/* ---------------------------------------------------------------------- */
/* Stack overflow */

static void write_str(const char *s)
{
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static void segv_handler(int sig, siginfo_t *si, void *uctx)
{
    struct rproc *p = tls_proc;
    struct rg *g = p ? p->cur : NULL;
    /* A fault in the guard page, or with the stack pointer outside the
     * running goroutine's stack (a stack without a guard overflows into
     * the memory below until something faults), is a stack overflow. */
    const void *sp = NULL;
#if defined(__x86_64__)
    sp = (const void *)(uintptr_t)((ucontext_t *)uctx)->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    sp = (const void *)(uintptr_t)((ucontext_t *)uctx)->uc_mcontext.sp;
#endif
    if (g && g->cold &&
        (stack_guard_hit(g_run(g)->stack, si->si_addr) || (sp && !stack_sp_ok(g_run(g)->stack, sp)))) {
        char num[24], *e = num + sizeof num;
        *--e = '\0';
        unsigned long long id = (unsigned long long)g_id_shown(g);
        do {
            *--e = (char)('0' + id % 10);
            id /= 10;
        } while (id);
        write_str("ringo: fatal error: goroutine ");
        write_str(e);
        write_str(" stack overflow\n");
        signal(SIGABRT, SIG_DFL);
        abort();
    }
    /* Not ours: hand the fault to whoever had SIGSEGV before us. */
    if (old_segv.sa_flags & SA_SIGINFO) {
        if (old_segv.sa_sigaction) {
            old_segv.sa_sigaction(sig, si, uctx);
            return;
        }
    } else if (old_segv.sa_handler != SIG_DFL && old_segv.sa_handler != SIG_IGN) {
        old_segv.sa_handler(sig);
        return;
    }
    /* Default action: restore it and let the instruction fault again. */
    signal(SIGSEGV, SIG_DFL);
}

static void segv_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    segv_installed = sigaction(SIGSEGV, &sa, &old_segv) == 0;
}

/* At the end of the run: put back the disposition from before it, unless
 * the program installed a handler of its own during the run (then that
 * one stays, as the watchdog leaves its signal: watchdog.c). */
static void segv_restore(void)
{
    struct sigaction cur;
    if (segv_installed && sigaction(SIGSEGV, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
        cur.sa_sigaction == segv_handler)
        sigaction(SIGSEGV, &old_segv, NULL);
    segv_installed = false;
}

/* ---------------------------------------------------------------------- */
/* Proc threads */

static int cpu_list[CPU_SETSIZE];
static int ncpus;

static void *proc_thread(void *arg)
{
    struct rproc *p = arg;
    tls_proc = p;

    if (ncpus > 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu_list[p->idx % ncpus], &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* best effort */
    }
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &p->g0_stack_lo, &p->g0_stack_size);
        pthread_attr_destroy(&attr);
    }
    stack_t ss = { .ss_sp = p->altstack, .ss_size = ALTSTACK_SIZE, .ss_flags = 0 };
    sigaltstack(&ss, NULL);
    watchdog_proc_start(p);
    signal_proc_start();
#ifdef RINGO_SWITCH_UCONTEXT
    p->g0.uc = &p->g0_uc;
#endif
#ifdef RINGO_TSAN
    p->tsan_g0 = __tsan_get_current_fiber();
#endif

    int r = eng_setup(p);
    pthread_mutex_lock(&start_lock);
    if (r < 0 && !start_err)
        start_err = r;
    start_ready++;
    pthread_cond_broadcast(&start_cond);
    while (!start_go)
        pthread_cond_wait(&start_cond, &start_lock);
    int go = start_go;
    pthread_mutex_unlock(&start_lock);

    if (go > 0)
        proc_main(p);
    watchdog_proc_exit(p);

    if (p->ring_ok)
        hooks_proc_fini(p);
    eng_teardown(p);
    stack_cache_drain(&p->stacks);
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    tls_proc = NULL;
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Module hooks.
 *
 * A module that must act when a proc runs dry, when a proc's loop ends, or
 * when the run ends exports a struct rhooks (internal.h) and is listed
 * here once; runtime.c and sched.c call the lists, never the modules.
 * The run-end hooks are called once plain threads are shut out of the
 * run (run_enter fails), since several free tables that a plain thread's
 * call uses while it has the run pinned; each module then drops what the
 * run left (the fd deadlines, the wait-table records of goroutines a
 * deadlock left parked, the acceptor and closing marks).  The signal
 * thread is stopped earlier as well, before goroutines a deadlock left
 * parked are abandoned (abandon_one), so that it sends to no channel
 * meanwhile; its hook stops one that a plain thread started again since. */
static const struct rhooks *const hooks[] = {
    &signal_hooks,
    &fddeadline_hooks,
    &futex_hooks,
    &accept_hooks,
    &close_hooks,
    &epoll_hooks,
};
#define NHOOKS (sizeof hooks / sizeof hooks[0])

/* The proc_idle hooks, gathered once: a proc calls them every time it
 * runs dry, which a busy server does every round. */
static void (*idle_hooks[NHOOKS])(struct rproc *p);
static size_t n_idle_hooks;

static void hooks_init(void)
{
    n_idle_hooks = 0;
    for (size_t i = 0; i < NHOOKS; i++)
        if (hooks[i]->proc_idle)
            idle_hooks[n_idle_hooks++] = hooks[i]->proc_idle;
}

void hooks_proc_idle(struct rproc *p)
{
    for (size_t i = 0; i < n_idle_hooks; i++)
        idle_hooks[i](p);
}

void hooks_proc_fini(struct rproc *p)
{
    for (size_t i = 0; i < NHOOKS; i++)
        if (hooks[i]->proc_fini)
            hooks[i]->proc_fini(p);
}

void hooks_run_end(void)
{
    for (size_t i = 0; i < NHOOKS; i++)
        if (hooks[i]->run_end)
            hooks[i]->run_end();
}

static unsigned default_procs(void)
{
    cpu_set_t set;
    ncpus = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set))
                cpu_list[ncpus++] = c;
    }
    return ncpus > 0 ? (unsigned)ncpus : 1;
}

/* ended: the procs have left their loops (the end of ringo_run); the
 * gauges are then zero, the goroutines a deadlock left too (discarded). */
static void collect_totals(bool ended)
{
    /* Summed in place, under the lock: no copy of the structure on the
     * caller's stack, which may be a goroutine's. */
    pthread_mutex_lock(&totals_lock);
    struct ringo_stats *t = &last_totals;
    memset(t, 0, sizeof *t);
    uint64_t spin_ticks = 0;
    for (unsigned i = 0; i < rt.nprocs; i++) {
        struct proc_stats *s = &rt.procs[i]->st;
        t->spawned += load_relaxed(&s->spawned);
        t->switches += load_relaxed(&s->switches);
        t->submissions += load_relaxed(&s->submissions);
        t->completions += load_relaxed(&s->completions);
        t->enters += load_relaxed(&s->enters);
        t->cross_wakes += load_relaxed(&s->cross_wakes);
        t->spin_ns += load_relaxed(&s->spin_ns);
        spin_ticks += load_relaxed(&s->spin_ticks);
        t->spins += load_relaxed(&s->spins);
        t->spins_found += load_relaxed(&s->spins_found);
        t->idle_ns += load_relaxed(&s->idle_ns);
        t->donations += load_relaxed(&s->donations);
        /* The gauges.  The caller's own proc, if it is one, exactly: it is
         * running the caller.  Another proc from what it publishes: its
         * run queue's length as of its last periodic poll or sleep, and
         * "running" for a proc that is neither looking for work (hungry,
         * spinning) nor asleep.  relaxed: samples of procs that run on;
         * the three need not agree (waiting is clamped). */
        struct rproc *q = rt.procs[i];
        if (ended) {
            continue;
        } else if (q == tls_proc) {
            t->runnable += runq_count(q);
            t->running += q->cur != NULL;
        } else {
            t->runnable += load_relaxed(&q->runq_pub);
            t->running += !load_relaxed(&q->hungry) && !load_relaxed(&q->sleeping);
        }
    }
    /* Goroutines' spins in place are timed in cpu_ticks (sched.c
     * park_spin: a clock read there would be on a cross-proc hand-off's
     * path); converted at the rate the ticks ran since the run began. */
    if (spin_ticks) {
        uint64_t dt = cpu_ticks() - rt.epoch_ticks;
        int64_t dn = now_ns() - rt.epoch_tick_ns;
        if (dt > 0 && dn > 0)
            t->spin_ns += (uint64_t)((double)spin_ticks * (double)dn / (double)dt);
    }
    /* ended: the helpers are joined (offload_fini), every job over; one
     * whose goroutine gave up on it is uncounted only as free_procs
     * discards its completion. */
    int64_t jobs = ended ? 0 : load_relaxed(&rt.offload_jobs);
    t->offload_jobs = jobs > 0 ? (uint64_t)jobs : 0;
    t->watchdog_reports = load_relaxed(&rt.watchdog_reports);
    t->engine = (uint64_t)rt.engine;
    t->spawned += load_relaxed(&rt.foreign_spawned);
    int64_t live = ended ? 0 : live_count(); /* ended: LIVE_STOPPED */
    t->goroutines = live > 0 ? (uint64_t)live : 0;
    t->waiting = t->goroutines > t->runnable + t->running ? t->goroutines - t->runnable - t->running : 0;
    pthread_mutex_unlock(&totals_lock);
}

/*
 * Growing structs.  ringo.h makes ringo_stats(out) and ringo_run(fn, arg,
 * cfg) macros for the _sized functions with the sizeof the program was
 * compiled with, so a program built against an older header hands over its
 * older, smaller struct and the library touches only that many bytes.
 * Programs built against ringo 0.1, before the macros, call the functions
 * ringo_stats and ringo_run themselves (the parentheses around the names
 * below keep the macros out): their structs end where 0.1's did, so those
 * entry points stay at the 0.1 sizes for good.  Fields are only ever
 * appended, so the 0.1 size is where the 0.1 layout's last field ends.
 */
#define STATS_SIZE_0_1 (offsetof(struct ringo_stats, cross_wakes) + sizeof(uint64_t))
#define CONFIG_SIZE_0_1 (offsetof(struct ringo_config, ring_entries) + sizeof(unsigned))

/* A field appended after ring_entries starts past the tail padding of the
 * structure that ended there (sizeof, as programs compiled against it
 * pass): those bytes may be uninitialised in such a program, and must not
 * be read as a setting. */
struct config_ends_at_ring_entries {
    unsigned procs;
    size_t stack_size;
    unsigned ring_entries;
};
_Static_assert(offsetof(struct ringo_config, watchdog_ns) >=
               sizeof(struct config_ends_at_ring_entries),
               "watchdog_ns must not lie in the tail padding of the older structure");
struct config_ends_at_watchdog_ns {
    unsigned procs;
    size_t stack_size;
    unsigned ring_entries;
    int64_t watchdog_ns;
};
_Static_assert(offsetof(struct ringo_config, dump_on_sigquit) >=
               sizeof(struct config_ends_at_watchdog_ns),
               "dump_on_sigquit must not lie in the tail padding of the older structure");

/* cfg->dump_on_sigquit, else RINGO_DUMP_ON_SIGQUIT ("1" is yes, anything
 * else no). */
static int dump_sigquit_wanted(const struct ringo_config *cfg, bool *on)
{
    int v = cfg ? cfg->dump_on_sigquit : 0;
    if (v < -1 || v > 1)
        return -EINVAL;
    if (v) {
        *on = v == 1;
        return 0;
    }
    const char *env = getenv("RINGO_DUMP_ON_SIGQUIT");
    *on = env && strcmp(env, "1") == 0;
    return 0;
}

int ringo_stats_sized(struct ringo_stats *out, size_t size)
{
    if (!out || size < STATS_SIZE_0_1)
        return -EINVAL;
    struct rproc *me;
    /* Quiet, as ringo_count: a thread that only looks wakes nobody, and
     * keeps no deadlock from being reported (note_foreign). */
    if (run_enter_quiet(&me)) {
        fd_seam_fn *seam = load_acquire(&stats_seam);
        if (__builtin_expect(seam != NULL, 0))
            seam(-1);
        collect_totals(false); /* reads every proc's counters */
        run_exit(me);
    }
    struct ringo_stats t;
    pthread_mutex_lock(&totals_lock);
    t = last_totals;
    pthread_mutex_unlock(&totals_lock);
    /* The caller's fields that this library knows; any it does not (a newer
     * header) read as zero. */
    size_t n = size < sizeof t ? size : sizeof t;
    memcpy(out, &t, n);
    if (size > n)
        memset((char *)out + n, 0, size - n);
    return 0;
}

int (ringo_stats)(struct ringo_stats *out)
{
    return ringo_stats_sized(out, STATS_SIZE_0_1);
}

const char *ringo_version(void)
{
    return PACKAGE_VERSION;
}

void (*teardown_seam)(void);
_Atomic(fd_seam_fn *) stats_seam;

static void free_procs(unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct rproc *p = rt.procs[i];
        if (!p)
            continue;
        /* Tasks posted after the proc left its loop (no plain thread can
         * post any more: ringo_run has waited them out), discarded in the
         * order they were posted, as tasks_run runs them: a later task may
         * free what an earlier one's discard still reads (a ticker's stop
         * after its arming, timerchan.c). */
        struct rtask *t = xchg_acquire(&p->tasks, NULL), *rev = NULL;
        while (t) {
            struct rtask *next = t->next;
            t->next = rev;
            rev = t;
            t = next;
        }
        while (rev) {
            struct rtask *next = rev->next;
            if (rev->discard)
                rev->discard(rev);
            rev = next;
        }
        timer_heap_free(&p->timers);
        fdops_free(p);
        if (p->efd >= 0)
            close(p->efd);
        if (p->altstack)
            munmap(p->altstack, ALTSTACK_SIZE);
        free(p);
    }
    free(rt.procs);
    rt.procs = NULL;
}

static const char *setup_reason(int err)
{
    switch (-err) {
    case ENOSYS: return "the kernel has no io_uring (ENOSYS)";
    case EPERM: return "io_uring is disabled (EPERM: kernel.io_uring_disabled, or a seccomp profile)";
    case ENOMEM: return "not enough locked memory for the rings (ENOMEM; see ulimit -l)";
    default: return strerror(-err);
    }
}

/* A proc's setup failed (eng_setup).  Running out of file descriptors is
 * not io_uring's doing, though io_uring_setup(2) is what hits it: each
 * proc takes two descriptors (its ring and its eventfd), and a low
 * RLIMIT_NOFILE, or a program that already holds most of it, is the cause
 * to name. */
static void setup_report(int err)
{
    if (err == -EMFILE)
        dprintf(2, "ringo: too many open files for the procs (EMFILE): each proc needs "
                   "2 file descriptors; raise the limit (ulimit -n, RLIMIT_NOFILE)\n");
    else if (err == -ENFILE)
        dprintf(2, "ringo: too many open files in the system for the procs (ENFILE: "
                   "the system-wide limit, fs.file-max)\n");
    else if (rt.engine == RINGO_ENGINE_EPOLL)
        dprintf(2, "ringo: the epoll engine cannot start: %s\n", strerror(-err));
    else
        dprintf(2, "ringo: io_uring is not available: %s\n", setup_reason(err));
}

/*
 * Choosing the engine (engine.h "Two engines").  RINGO_ENGINE=uring or
 * epoll forces one; a forced io_uring that the host refuses fails the run
 * with setup_report's message.  Otherwise a small ring is set up once per
 * process and asked for the operations the runtime cannot do without:
 * io_uring_setup failing with ENOSYS (no io_uring), EPERM (a seccomp
 * profile, kernel.io_uring_disabled=2) or EACCES (io_uring_disabled=1 and
 * not in its group), a missing operation, or a kernel that cannot cancel
 * by descriptor (uring_cancels_by_fd), choose epoll.  Any other
 * failure (ENOMEM: the locked-memory limit; EMFILE) says nothing of
 * io_uring's presence: io_uring stays chosen, and the procs' own setup
 * reports the failure with its hint rather than running on silently
 * without it.  RINGO_DEBUG=1 prints the choice and why.
 */
static const struct {
    int op;
    const char *name;
} needed_ops[] = {
    { IORING_OP_READ, "READ" },         { IORING_OP_WRITE, "WRITE" },
    { IORING_OP_READV, "READV" },       { IORING_OP_WRITEV, "WRITEV" },
    { IORING_OP_RECV, "RECV" },         { IORING_OP_SEND, "SEND" },
    { IORING_OP_RECVMSG, "RECVMSG" },   { IORING_OP_SENDMSG, "SENDMSG" },
    { IORING_OP_ACCEPT, "ACCEPT" },     { IORING_OP_CONNECT, "CONNECT" },
    { IORING_OP_OPENAT, "OPENAT" },     { IORING_OP_FSYNC, "FSYNC" },
    { IORING_OP_POLL_ADD, "POLL_ADD" }, { IORING_OP_CLOSE, "CLOSE" },
    { IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL" },
};

unsigned uring_probe_cancel_seam;

/* Can the ring cancel every operation on a descriptor (cancel_flags
 * IORING_ASYNC_CANCEL_FD with ALL, Linux 5.19), what ringo_close and a
 * change of a descriptor's deadline do to the operations waiting on it
 * (engine.h eng_cancel_fd)?  A kernel before it fails the flags (-EINVAL)
 * and has no opcode to tell by: asked with a cancel on a new pipe, which
 * finds nothing to cancel.  1 yes, 0 no, -1 it could not be asked (no
 * pipe, a failed submit: io_uring stays chosen, and the answer is not
 * kept for the process, engine_choose). */
static int uring_cancels_by_fd(struct io_uring *ring)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
    int res = 1;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    struct io_uring_cqe *cqe;
    if (!sqe) {
        res = -1;
    } else {
        io_uring_prep_cancel_fd(sqe, pfd[0], IORING_ASYNC_CANCEL_ALL | uring_probe_cancel_seam);
        if (io_uring_submit_and_wait(ring, 1) >= 0 && io_uring_peek_cqe(ring, &cqe) == 0) {
            res = cqe->res == -EINVAL ? 0 : 1;
            io_uring_cqe_seen(ring, cqe);
        } else {
            res = -1;
        }
    }
    close(pfd[0]);
    close(pfd[1]);
    return res;
}

static void uring_probe(int *engine, char *why, size_t len)
{
    struct io_uring ring;
    int r = io_uring_queue_init(2, &ring, 0);
    if (r == -ENOSYS || r == -EPERM || r == -EACCES) {
        *engine = RINGO_ENGINE_EPOLL;
        snprintf(why, len, "io_uring_setup: %s", strerror(-r));
        return;
    }
    *engine = RINGO_ENGINE_URING;
    if (r < 0) {
        snprintf(why, len, "io_uring_setup: %s; the procs will say why", strerror(-r));
        return;
    }
    struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
    if (!probe) {
        *engine = RINGO_ENGINE_EPOLL;
        snprintf(why, len, "io_uring cannot list its operations (a kernel before 5.6)");
    } else {
        snprintf(why, len, "io_uring has every operation the runtime needs");
        for (size_t i = 0; i < sizeof needed_ops / sizeof needed_ops[0]; i++) {
            if (!io_uring_opcode_supported(probe, needed_ops[i].op)) {
                *engine = RINGO_ENGINE_EPOLL;
                snprintf(why, len, "io_uring lacks IORING_OP_%s", needed_ops[i].name);
                break;
            }
        }
        io_uring_free_probe(probe);
        int by_fd = *engine == RINGO_ENGINE_URING ? uring_cancels_by_fd(&ring) : 1;
        if (by_fd == 0) {
            *engine = RINGO_ENGINE_EPOLL;
            snprintf(why, len, "io_uring cannot cancel by descriptor (IORING_ASYNC_CANCEL_FD, Linux 5.19)");
        } else if (by_fd < 0) {
            snprintf(why, len, "io_uring has the operations the runtime needs; cancel by descriptor not asked");
        }
    }
    io_uring_queue_exit(&ring);
}

/* The engine for this run, or -EINVAL for a RINGO_ENGINE that names none.
 * The probe's answer is kept for the process when it is a definite one;
 * runs do not overlap (run_busy), so plain statics do. */
static int engine_choose(void)
{
    static int probed;
    static char probed_why[128];
    char why[160];
    int engine;
    const char *e = getenv("RINGO_ENGINE");
    if (e && *e) {
        if (strcmp(e, "epoll") == 0) {
            engine = RINGO_ENGINE_EPOLL;
        } else if (strcmp(e, "uring") == 0 || strcmp(e, "io_uring") == 0) {
            engine = RINGO_ENGINE_URING;
        } else {
            dprintf(2, "ringo: RINGO_ENGINE=%s names no engine (uring or epoll)\n", e);
            return -EINVAL;
        }
        snprintf(why, sizeof why, "RINGO_ENGINE=%s", e);
    } else {
        if (!probed) {
            int got;
            uring_probe(&got, probed_why, sizeof probed_why);
            if (got == RINGO_ENGINE_EPOLL || strstr(probed_why, "every operation"))
                probed = got; /* definite */
            engine = got;
        } else {
            engine = probed;
        }
        snprintf(why, sizeof why, "%s", probed_why);
    }
    const char *dbg = getenv("RINGO_DEBUG");
    if (dbg && strcmp(dbg, "1") == 0)
        dprintf(2, "ringo: engine %s (%s)\n", engine == RINGO_ENGINE_EPOLL ? "epoll" : "io_uring",
                why);
    return engine;
}

static int run(void (*main_fn)(void *), void *arg, const struct ringo_config *cfg);

int ringo_run_sized(void (*main_fn)(void *), void *arg, const struct ringo_config *ucfg,
                    size_t cfg_size)
{
    if (!ucfg)
        return run(main_fn, arg, NULL);
    if (cfg_size < CONFIG_SIZE_0_1)
        return -EINVAL;
    /* Fields past the caller's size are defaults (zero).  Fields past ours
     * are settings this library does not have: refused unless zero (the
     * default), as the kernel's extensible structs do (E2BIG). */
    struct ringo_config cfg;
    memset(&cfg, 0, sizeof cfg);
    memcpy(&cfg, ucfg, cfg_size < sizeof cfg ? cfg_size : sizeof cfg);
    for (size_t i = sizeof cfg; i < cfg_size; i++)
        if (((const unsigned char *)ucfg)[i])
            return -E2BIG;
    return run(main_fn, arg, &cfg);
}

int (ringo_run)(void (*main_fn)(void *), void *arg, const struct ringo_config *cfg)
{
    return ringo_run_sized(main_fn, arg, cfg, CONFIG_SIZE_0_1);
}

/*
 * A fork during a run.  The child has only the thread that forked, and
 * none of the procs, helpers or signal thread; the rings are the parent's
 * (a CQ the two would share), and the goroutines in its memory are copies
 * of the parent's, which must not run twice.  So in the child the run is
 * over for every call: rt.active cleared (ringo_go says -EINVAL, a plain
 * thread's call pins nothing), the forking thread no proc's (its calls,
 * even on a goroutine's stack, are a plain thread's: plain system calls,
 * futex waits), nothing pinned.  run_busy stays set: the child's memory
 * holds a run that was never taken down, so ringo_run there says -EBUSY.
 * What such a child should do is exec or _exit (ringo_run(3) NOTES); a
 * goroutine function that returns in it ends in a fatal error (g_run_fn),
 * not in the copies of the parent's goroutines, and so does an offloaded
 * function (offload.c helper_main: forked_child), not in the copy of the
 * job queue.
 */
_Atomic int forked_child;

static void run_forked(void)
{
    if (!load_relaxed(&run_busy))
        return; /* no run in progress: nothing to take away */
    store_relaxed(&forked_child, 1); /* one thread now: relaxed */
    store_seqcst(&rt.active, 0);
    store_seqcst(&rt.foreign_ops, 0);
    store_relaxed(&rt.ops_sleeper, 0);
    store_relaxed(&rt.verdict, 0); /* none to come: nobody gives it here */
    tls_proc = NULL;
}

static void run_fork_init(void)
{
    pthread_atfork(NULL, NULL, run_forked);
}

static int run(void (*main_fn)(void *), void *arg, const struct ringo_config *cfg)
{
    if (!main_fn)
        return -EINVAL;
    if (tls_proc)
        return -EBUSY;
    static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
    pthread_once(&fork_once, run_fork_init);
    int expected = 0;
    if (!atomic_compare_exchange_strong(&run_busy, &expected, 1))
        return -EBUSY;

    unsigned nprocs = cfg ? cfg->procs : 0;
    unsigned ncpu = default_procs();
    if (nprocs == 0) {
        const char *env = getenv("RINGO_PROCS");
        if (env && *env) {
            char *end;
            long v = strtol(env, &end, 10);
            if (*end == '\0' && v > 0 && v <= 4096)
                nprocs = (unsigned)v;
        }
    }
    if (nprocs == 0)
        nprocs = ncpu;
    if (nprocs > 4096) {
        store_release(&run_busy, 0);
        return -EINVAL;
    }
    unsigned entries = cfg && cfg->ring_entries ? cfg->ring_entries : 256;
    if (entries > 32768)
        entries = 32768;
    int64_t watchdog_ns;
    int r = watchdog_period(cfg, &watchdog_ns);
    bool dump_sigquit = false;
    if (!r)
        r = dump_sigquit_wanted(cfg, &dump_sigquit);
    if (r) {
        store_release(&run_busy, 0);
        return r;
    }
    rt.dump_on_sigquit = dump_sigquit;
    int engine = engine_choose();
    if (engine < 0) {
        store_release(&run_busy, 0);
        return engine;
    }
    rt.engine = engine;

    r = fiber_init(cfg ? cfg->stack_size : 0);
    if (r) {
        store_release(&run_busy, 0);
        return r;
    }
    r = gtable_init();
    if (r) {
        store_release(&run_busy, 0);
        return r;
    }

    rt.nprocs = nprocs;
    hooks_init();
    rt.ring_entries = entries;
    store_relaxed(&rt.live, 0);
    store_relaxed(&rt.stopping, 0);
    store_relaxed(&rt.foreign, 0);
    store_relaxed(&rt.verdict, 0);
    rt.caller_toucher = tls_counted;
    futex_run_start();
    store_relaxed(&rt.rr, 0);
    store_relaxed(&rt.foreign_spawned, 0);
    /* Not rt.foreign_ops: a plain thread may be inside run_enter_quiet
     * right now, between its increment and its decrement (it then finds
     * the run inactive); the last run's teardown left it balanced. */
    store_relaxed(&rt.offload_jobs, 0);
    rt.idle_procs = 0;
    rt.use_defer_taskrun = false;
#ifdef HAVE_VALGRIND_VALGRIND_H
    rt.valgrind = RUNNING_ON_VALGRIND != 0;
#endif
    {
        const char *e = getenv("RINGO_NO_MULTISHOT");
        /* relaxed: the procs start after this (pthread_create orders it) */
        store_relaxed(&rt.multishot_accept,
                      !(e && *e && strcmp(e, "0") != 0) && rt.engine == RINGO_ENGINE_URING);
    }
    acc_run_reset();
    rt.procs = seam_calloc(nprocs, sizeof *rt.procs);
    if (!rt.procs) {
        r = -ENOMEM;
        goto fail_early;
    }
    for (unsigned i = 0; i < nprocs; i++) {
        /* aligned: struct rproc keeps cross-thread fields on their own
         * cache lines (internal.h) */
        struct rproc *p = seam_aligned_alloc(64, (sizeof *p + 63) & ~(size_t)63);
        if (p)
            memset(p, 0, sizeof *p);
        if (!p) {
            r = -ENOMEM;
            goto fail_procs;
        }
        rt.procs[i] = p;
        p->idx = (int)i;
        p->efd = -1;
        proc_init_tasks(p);
        p->altstack = seam_mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p->altstack == MAP_FAILED) {
            p->altstack = NULL;
            r = -ENOMEM;
            goto fail_procs;
        }
    }
    /* Under the lock: a plain thread may be copying the last run's. */
    pthread_mutex_lock(&totals_lock);
    memset(&last_totals, 0, sizeof last_totals);
    pthread_mutex_unlock(&totals_lock);
    /* The park clocks count from here (calloc'd at 0).  From the coarse
     * clock, which lags CLOCK_MONOTONIC by up to a tick: every reading of
     * either clock from now on is at or after it. */
    struct timespec epoch;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &epoch);
    rt.epoch_ns = (int64_t)epoch.tv_sec * 1000000000 + epoch.tv_nsec;
    rt.epoch_tick_ns = now_ns();
    rt.epoch_ticks = cpu_ticks();
    timer_clock_init(); /* timer.c "Reading the clock less" */
    /* Before the proc threads start: each unblocks the watchdog's signal. */
    r = watchdog_setup(watchdog_ns);
    if (r)
        goto fail_procs;

    r = signal_run_start();
    if (r)
        goto fail_procs; /* which ends the watchdog */
    segv_install();
    start_ready = 0;
    start_err = 0;
    start_go = 0;
    unsigned started = 0;
    for (; started < nprocs; started++) {
        if (seam_pthread_create(&rt.procs[started]->thread, NULL, proc_thread, rt.procs[started]) != 0) {
            r = -EAGAIN;
            break;
        }
    }
    pthread_mutex_lock(&start_lock);
    while (start_ready < started)
        pthread_cond_wait(&start_cond, &start_lock);
    if (started == nprocs && !start_err)
        r = watchdog_start(); /* every proc thread exists, none runs a goroutine yet */
    if (started < nprocs || start_err || r) {
        if (!r)
            r = start_err;
        start_go = -1;
        pthread_cond_broadcast(&start_cond);
        pthread_mutex_unlock(&start_lock);
        for (unsigned i = 0; i < started; i++)
            pthread_join(rt.procs[i]->thread, NULL);
        if (start_err)
            setup_report(start_err);
        segv_restore();
        signal_run_end();
        goto fail_procs; /* which ends the watchdog */
    }
    pthread_mutex_unlock(&start_lock);

    store_seqcst(&rt.active, 1);
    int64_t mid = spawn_main(main_fn, arg);
    if (mid < 0) {
        r = (int)mid;
        store_seqcst(&rt.stopping, 1);
    }
    pthread_mutex_lock(&start_lock);
    start_go = 1;
    pthread_cond_broadcast(&start_cond);
    pthread_mutex_unlock(&start_lock);
    /* The caller only waits from here on.  It blocks the asynchronous
     * signals meanwhile so that none is delivered to a thread parked in
     * pthread_join: a process-directed signal goes to the signal thread
     * (one with a channel) or to a proc (the program's own handlers, on
     * the proc's alternate stack), threads that run at once.  Under
     * ThreadSanitizer, which runs a handler only at the interrupted
     * thread's next intercepted call, a signal left to the joining caller
     * was never handled at all. */
    sigset_t async, saved_mask;
    sigfillset(&async);
    static const int sync_sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS };
    for (size_t i = 0; i < sizeof sync_sigs / sizeof sync_sigs[0]; i++)
        sigdelset(&async, sync_sigs[i]);
    pthread_sigmask(SIG_BLOCK, &async, &saved_mask);
    for (unsigned i = 0; i < nprocs; i++)
        pthread_join(rt.procs[i]->thread, NULL);
    watchdog_end(); /* before the procs it watches are freed */
    /* Unblocked while the runtime's handlers are still installed: one that
     * came meanwhile is taken here by sig_handler, not by the program's
     * disposition (which could be a default action that ends the process). */
    pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
    signal_run_end(); /* again with the hooks below, see "Module hooks" */
    if (__builtin_expect(teardown_seam != NULL, 0))
        teardown_seam();

    offload_fini();
    if (!r && load_relaxed(&rt.stopping) == 2) {
        r = -EDEADLK;
        /* The blocked goroutines are discarded; unlink them from the
         * channels they wait on, which outlive the run. */
        gtable_foreach(abandon_one, NULL);
        /* None of them is live any more: ringo_count() and the totals say
         * 0, and the run is stopped as if the last goroutine had exited
         * (LIVE_STOPPED: a plain thread's spawn from now on fails).  No
         * proc runs any more (joined above); release: a plain thread that
         * sees the stopped count in live_inc's CAS (acq_rel) or reads
         * ringo_count after this also sees the goroutines discarded. */
        store_release(&rt.live, LIVE_STOPPED);
    }
    /* The run's totals for a ringo_stats that comes while plain threads
     * still have the run pinned (below)... */
    collect_totals(true);
    /* See run_enter: after this, no plain thread touches the procs, nor
     * the tables that the run-end hooks free (fd deadlines, closing marks,
     * acceptor marks), which a plain thread's call uses only while it has
     * the run pinned; nor posts a task that free_procs would not see. */
    store_seqcst(&rt.active, 0);
    store_seqcst(&rt.ops_sleeper, 1); /* internal.h run_leave */
    uint32_t pinned;
    while ((pinned = load_seqcst(&rt.foreign_ops)) != 0)
        sys_futex(&rt.foreign_ops, FUTEX_WAIT_PRIVATE, pinned);
    store_relaxed(&rt.ops_sleeper, 0); /* a late wake costs a system call, nothing else */
    /* ...and again once no ringo_stats of a plain thread can be summing
     * the live ones over them (it had the run pinned). */
    collect_totals(true);
    hooks_run_end();
    segv_restore();
    free_procs(nprocs);
    gtable_reset_foreign();
    gtable_fini();
    fiber_fini();
    store_release(&run_busy, 0);
    return r;

fail_procs:
    watchdog_end(); /* if set up (it may have failed, or never run) */
    free_procs(nprocs);
fail_early:
    gtable_fini();
    fiber_fini();
    store_release(&run_busy, 0);
    return r;
}
