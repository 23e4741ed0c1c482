/*
 * watchdog.c — a monitor thread that reports a goroutine holding its proc
 * too long without yielding.
 *
 * Scheduling is cooperative: a goroutine that computes for a second, or
 * calls a blocking function (read(2) on a pipe, pthread_join, sleep(3))
 * instead of ringo's, freezes every other goroutine of its proc meanwhile,
 * and nothing says so.  Go's sysmon notices such goroutines and preempts
 * them; ringo cannot preempt C code, so on request (cfg->watchdog_ns, or
 * RINGO_WATCHDOG_MS) it says which goroutine it is and where it is, once
 * per stretch, on standard error:
 *
 *     ringo: watchdog: goroutine 7 has run 31 ms on proc 0 without yielding
 *     <the proc thread's stack at that moment, a frame per line>
 *
 * and counts it (ringo_stats' watchdog_reports).
 *
 * What it watches.  The monitor wakes every half period and reads, for
 * each proc, two counters the scheduler keeps anyway: p->tick, bumped at
 * every scheduling point of a goroutine (next_runnable: a yield, a park,
 * an exit, even one that finds nothing else to run and carries on), and
 * p->st.switches, bumped at every switch (switch_to, also from the
 * scheduler loop to a goroutine).  A goroutine's stretch on its proc
 * begins and ends with one of them, so while both stand still the same
 * stretch goes on -- unless the proc is asleep in io_uring_enter with
 * nothing to run (p->sleeping), which leaves them still too.  The monitor
 * keeps the time of the first sample that saw the pair (the stretch began
 * at most half a period earlier: the figure reported is a lower bound) and
 * reports the stretch once that is a period old.  The scheduler pays
 * nothing new: p->tick merely became a relaxed atomic, the same plain load
 * and store on x86-64 and aarch64.  The clock is the wall clock: a
 * goroutine blocked in a system call holds its proc as surely as one that
 * computes (and a proc thread the kernel leaves off its CPU for a whole
 * period looks the same; the reported stack tells them apart).
 *
 * The report comes from the proc thread.  Only that thread may read
 * p->cur (plain and owner-only: it is read by every blocking call, and an
 * atomic there would cost every switch), and only it can unwind its own
 * stack.  So the monitor writes what it saw into p->wd and signals the
 * thread (pthread_kill); the handler checks that the counters still hold
 * what the monitor saw, so the stretch has not ended meanwhile, and
 * writes the goroutine's id, the figures and the stack:
 *
 *     monitor                                proc thread, in the handler
 *     -------                                ---------------------------
 *     store wd.tick, wd.switches, wd.ms
 *     store_release(wd.asked, 1)   ----->    xchg_acquire(wd.asked, 0) == 1
 *     pthread_kill                           load wd.*; == p->tick, p->st.switches?
 *                                            p->cur, its id; write the report
 *
 * The release/acquire pair hands the request's fields over (a handler
 * that finds asked at 0 -- a signal from elsewhere, or a request already
 * served -- does nothing).  The handler interrupts its own thread, so
 * program order is what it sees, with one catch: the compiler could sink
 * the switch count below `p->cur = to` in switch_to, and a handler between
 * the two would take the next goroutine for the stretch of the last; a
 * signal fence there keeps the order (sched.c).  A handler that finds
 * p->cur NULL (the proc in its scheduler loop, which it never holds for a
 * period but in a pathological case such as a contended idle lock)
 * reports nothing.
 *
 * Async-signal safety.  The handler formats its numbers itself and calls
 * only write(2), backtrace(3) and backtrace_symbols_fd(3).  backtrace is
 * unsafe the first time in a process (it loads libgcc_s with dlopen, which
 * locks and allocates), so watchdog_setup calls it once before any signal
 * can come; after that it walks frames with libgcc's unwinder, which finds
 * the unwind tables through _dl_find_object (glibc 2.35 and later:
 * lock-free; older ones take the loader's lock in dl_iterate_phdr, which a
 * goroutine interrupted inside dlopen would hold).  backtrace_symbols_fd
 * allocates nothing.  The handler runs on the proc's alternate signal
 * stack (SA_ONSTACK), not on the goroutine's, which may be nearly full;
 * the unwinder crosses the signal frame onto the goroutine's stack, whose
 * outermost frame (ringo__ctx_start, or makecontext's) ends the walk.  The
 * frames of the handler itself are left out: the list starts at the
 * interrupted instruction (unless ThreadSanitizer, which runs a handler
 * only at the thread's next call it intercepts, has moved the thread on
 * by then: the whole list is printed).
 *
 * Which signal.  A real-time signal: the kernel and the C library send
 * them for nothing else, and, unlike SIGURG (Go's choice for its
 * preemption), a program has no other use for one unless it picks that
 * number itself.  The highest (SIGRTMAX) whose disposition is the default
 * when the run starts: one that has a handler is the program's, and
 * programs that use real-time signals tend to count up from SIGRTMIN
 * (glibc keeps the ones below SIGRTMIN for itself; valgrind keeps
 * SIGRTMAX, where sigaction fails, so the next one down is taken).  During
 * the run ringo_signal_notify refuses it (-EINVAL), so signal.c never
 * blocks it on a proc or replaces the handler.  A program that installs a
 * handler of its own for it during the run wins: the monitor looks at the
 * disposition before each signal and, finding another, says so once and
 * sends no more.  A signal sent from outside (kill -RTMAX) finds no
 * request and changes nothing.
 *
 * Side effect: the signal interrupts the goroutine.  A system call it is
 * blocked in is restarted where the kernel restarts calls (SA_RESTART);
 * others (nanosleep, poll, ...) fail with EINTR, as under any signal: once
 * per report, and only when the watchdog is on.
 *
 * Life.  watchdog_setup, before the proc threads start (each unblocks the
 * signal, in case the ringo_run caller blocks it); watchdog_start, once
 * every proc thread exists; watchdog_end, after every proc thread has
 * been joined and before the procs are freed.  A proc thread that leaves
 * its loop says so under wd_lock (watchdog_proc_exit), and the monitor
 * signals, under the same lock, only those that have not: a thread that
 * has exited (and may have been joined, its pthread_t reused) is never
 * signalled.  The monitor is no goroutine and calls nothing of ringo's
 * API: it keeps no run alive and deadlock detection never sees it.
 *
 * Rejected.  A timestamp per switch (a clock read on the hottest path,
 * where a counter is already kept).  Reading the stack from the monitor
 * (ptrace cannot attach to a thread of its own process; /proc's
 * task/<tid>/stack is the kernel's stack).  The monitor reading p->cur (a
 * data race on a plain field, or an atomic store on every switch).
 */
#include "config.h"

#include "internal.h"

#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "ringo.h"

/* The shortest period accepted.  The monitor wakes every half period;
 * below a millisecond it would cost a CPU thousands of wakes a second, and
 * a goroutine that holds its proc that briefly is no news. */
#define WATCHDOG_MIN_NS 1000000LL

/* RINGO_WATCHDOG_MS at most (a day, in ms): beyond it a typo is likelier
 * than a wish. */
#define WATCHDOG_ENV_MAX_MS 86400000L

/* Frames of a reported stack at most. */
#define WATCHDOG_FRAMES 64

/* What the monitor has seen of a proc; the monitor's own. */
struct wd_seen {
    unsigned tick;
    uint64_t switches;
    int64_t since;      /* first sample that saw this pair */
    bool reported;      /* this stretch has been asked about */
};

static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond;          /* on CLOCK_MONOTONIC; made by watchdog_start */
static bool wd_stop;                    /* under wd_lock */
static pthread_t wd_thread;
static bool wd_running;                 /* the ringo_run caller's */
static bool wd_installed;               /* the caller's: our handler is installed */
static struct sigaction wd_saved;       /* the disposition before ours */
static struct wd_seen *wd_seen;         /* per proc; the monitor's */

/* ---------------------------------------------------------------------- */
/* The handler, on the proc thread */

struct wd_line {
    char buf[160];
    size_t n;
};

static void put_str(struct wd_line *l, const char *s)
{
    while (*s && l->n < sizeof l->buf)
        l->buf[l->n++] = *s++;
}

static void put_u64(struct wd_line *l, uint64_t v)
{
    char d[20];
    int k = 0;
    do {
        d[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k && l->n < sizeof l->buf)
        l->buf[l->n++] = d[--k];
}

static void write_fully(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void *interrupted_pc(void *uctx)
{
    const ucontext_t *uc = uctx;
#if defined(__x86_64__)
    return (void *)(uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (void *)(uintptr_t)uc->uc_mcontext.pc;
#else
    (void)uc;
    return NULL;
#endif
}

static void wd_handler(int sig, siginfo_t *si, void *uctx)
{
    (void)sig;
    (void)si;
    int saved_errno = errno;
    struct rproc *p = tls_proc;
    /* acquire: pairs with the monitor's release of asked; the request's
     * fields below are the ones it wrote before. */
    if (!p || !xchg_acquire(&p->wd.asked, 0))
        goto out;
    struct rg *g = p->cur;
    /* The same stretch?  p->tick and p->st.switches are this thread's
     * own counters (relaxed: it wrote them); see "The report". */
    if (!g || load_relaxed(&p->tick) != load_relaxed(&p->wd.tick) ||
        load_relaxed(&p->st.switches) != load_relaxed(&p->wd.switches))
        goto out;

    struct wd_line l = { .n = 0 };
    put_str(&l, "ringo: watchdog: goroutine ");
    put_u64(&l, (uint64_t)load_relaxed(&g->id));
    put_str(&l, " has run ");
    put_u64(&l, (uint64_t)load_relaxed(&p->wd.ms));
    put_str(&l, " ms on proc ");
    put_u64(&l, (uint64_t)p->idx);
    put_str(&l, " without yielding\n");
    write_fully(2, l.buf, l.n);

    void *frames[WATCHDOG_FRAMES];
    int n = backtrace(frames, WATCHDOG_FRAMES);
    int from = 0;
    void *pc = interrupted_pc(uctx);
    for (int i = 0; pc && i < n; i++) {
        if (frames[i] == pc) {
            from = i;
            break;
        }
    }
    if (n > from)
        backtrace_symbols_fd(frames + from, n - from, 2);
    write_fully(2, "\n", 1);
    /* relaxed: a count, read by ringo_stats; the report has been written
     * (system calls, complete) before it is counted. */
    fetch_add_relaxed(&rt.watchdog_reports, 1);
out:
    errno = saved_errno;
}

/* ---------------------------------------------------------------------- */
/* The monitor */

static bool handler_still_ours(void)
{
    struct sigaction cur;
    return sigaction(rt.watchdog_sig, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
           cur.sa_sigaction == wd_handler;
}

/* One sample of every proc, under wd_lock. */
static void wd_sample(int64_t now, bool *taken)
{
    for (unsigned i = 0; i < rt.nprocs; i++) {
        struct rproc *p = rt.procs[i];
        struct wd_seen *s = &wd_seen[i];
        if (p->wd.gone)
            continue;
        /* relaxed: untorn values are all it needs.  A stale one makes a
         * stretch look younger, or older by at most one sample; and the
         * handler checks again on the proc itself before it reports. */
        unsigned tick = load_relaxed(&p->tick);
        uint64_t sw = load_relaxed(&p->st.switches);
        if (tick != s->tick || sw != s->switches || load_relaxed(&p->sleeping)) {
            s->tick = tick;
            s->switches = sw;
            s->since = now;
            s->reported = false;
            continue;
        }
        if (s->reported || now - s->since < rt.watchdog_ns)
            continue;
        s->reported = true;
        if (*taken)
            continue;
        if (!handler_still_ours()) {
            *taken = true;
            dprintf(2, "ringo: watchdog: the program has installed its own handler for "
                       "signal %d; no more reports in this run\n", rt.watchdog_sig);
            continue;
        }
        store_relaxed(&p->wd.tick, tick);
        store_relaxed(&p->wd.switches, sw);
        store_relaxed(&p->wd.ms, (now - s->since) / 1000000);
        /* release: the fields above before the flag; pairs with the
         * handler's acquire exchange. */
        store_release(&p->wd.asked, 1);
        pthread_kill(p->thread, rt.watchdog_sig); /* not gone: not joined (wd_lock) */
    }
}

static void *wd_main(void *arg)
{
    (void)arg;
    tls_runtime_thread = true;
    bool taken = false;
    int64_t half = rt.watchdog_ns / 2;
    pthread_mutex_lock(&wd_lock);
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t until = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + half;
        ts.tv_sec = until / 1000000000;
        ts.tv_nsec = until % 1000000000;
        while (!wd_stop && pthread_cond_timedwait(&wd_cond, &wd_lock, &ts) != ETIMEDOUT)
            ;
        if (wd_stop)
            break;
        wd_sample(now_ns(), &taken);
    }
    pthread_mutex_unlock(&wd_lock);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Life */

int watchdog_period(const struct ringo_config *cfg, int64_t *ns)
{
    *ns = 0;
    if (cfg && cfg->watchdog_ns) {
        if (cfg->watchdog_ns < WATCHDOG_MIN_NS)
            return -EINVAL;
        *ns = cfg->watchdog_ns;
        return 0;
    }
    /* As RINGO_PROCS: a value that is not a whole number of milliseconds
     * in range leaves the watchdog off. */
    const char *env = getenv("RINGO_WATCHDOG_MS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v > 0 && v <= WATCHDOG_ENV_MAX_MS)
            *ns = (int64_t)v * 1000000;
    }
    return 0;
}

int watchdog_setup(int64_t ns)
{
    rt.watchdog_ns = ns;
    rt.watchdog_sig = 0;
    store_relaxed(&rt.watchdog_reports, 0);
    if (!ns)
        return 0;
    wd_seen = seam_calloc(rt.nprocs, sizeof *wd_seen);
    if (!wd_seen)
        return -ENOMEM;
    /* See "Async-signal safety": the first call loads libgcc_s. */
    void *frame;
    (void)backtrace(&frame, 1);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = wd_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigfillset(&sa.sa_mask);
    for (int s = SIGRTMAX; s >= SIGRTMIN; s--) {
        struct sigaction cur;
        if (sigaction(s, NULL, &cur) != 0 || (cur.sa_flags & SA_SIGINFO) ||
            cur.sa_handler != SIG_DFL)
            continue;
        if (sigaction(s, &sa, &wd_saved) == 0) {
            rt.watchdog_sig = s;
            wd_installed = true;
            return 0;
        }
    }
    dprintf(2, "ringo: watchdog: no real-time signal is free (the program handles every one)\n");
    free(wd_seen);
    wd_seen = NULL;
    rt.watchdog_ns = 0;
    return -EAGAIN;
}

void watchdog_proc_start(struct rproc *p)
{
    (void)p;
    if (!rt.watchdog_sig)
        return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, rt.watchdog_sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

void watchdog_proc_exit(struct rproc *p)
{
    if (!rt.watchdog_sig)
        return;
    pthread_mutex_lock(&wd_lock);
    p->wd.gone = true;
    pthread_mutex_unlock(&wd_lock);
}

int watchdog_start(void)
{
    if (!rt.watchdog_sig)
        return 0;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wd_cond, &ca);
    pthread_condattr_destroy(&ca);
    wd_stop = false;
    /* Every signal blocked: a process-directed one goes elsewhere. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int r = seam_pthread_create(&wd_thread, NULL, wd_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r) {
        pthread_cond_destroy(&wd_cond);
        return -r;
    }
    wd_running = true;
    return 0;
}

void watchdog_end(void)
{
    if (wd_running) {
        pthread_mutex_lock(&wd_lock);
        wd_stop = true;
        pthread_cond_signal(&wd_cond);
        pthread_mutex_unlock(&wd_lock);
        pthread_join(wd_thread, NULL);
        pthread_cond_destroy(&wd_cond);
        wd_running = false;
    }
    if (wd_installed) {
        /* Every proc thread has been joined: no handler of ours runs or
         * is pending.  Put the old disposition back unless the program
         * installed its own meanwhile. */
        if (handler_still_ours())
            sigaction(rt.watchdog_sig, &wd_saved, NULL);
        wd_installed = false;
    }
    free(wd_seen);
    wd_seen = NULL;
    /* rt.watchdog_sig stays as it is until the next run's watchdog_setup:
     * a plain thread inside run_enter may still read it (signal.c) until
     * the run is declared over. */
}
