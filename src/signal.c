/*
 * signal.c — signals as channel values (Go's signal.Notify / signal.Stop),
 * and SIGPIPE ignored while a run is in progress.
 *
 * Who receives a signal.  No handler may interrupt a goroutine in the
 * middle of a switch, so the procs block every signal that has a channel
 * registered (each proc blocks them itself, from a task, or on the
 * caller's proc at once, and ringo_signal_notify returns once all have),
 * but SIGPIPE and SIGXFSZ, which the kernel sends to the thread whose
 * write raised them (SIG_THREAD_DIRECTED below).
 * The ringo_run caller, which only waits for the procs, blocks every
 * asynchronous signal for the run (runtime.c).  The runtime's signal
 * thread blocks every signal too, and takes the registered ones from a
 * signalfd: a process-directed signal that every thread blocks stays
 * pending for the process, and the signalfd reads it.  A plain thread of
 * the program's own that leaves such a signal unblocked may be the one the
 * kernel picks; it runs sig_handler, which only does async-signal-safe
 * things: sets the signal's bit in `pending` and writes the signal
 * thread's eventfd.  The signal thread, in poll(2) on both descriptors,
 * wakes, takes the signals and offers each to every channel registered
 * for it with ringo_chan_try_send: a full channel drops it, as Go does.
 * No handler runs on a runtime thread in the common case, which matters
 * under ThreadSanitizer too: it runs a handler only at the interrupted
 * thread's next intercepted call, and a thread asleep in a system call it
 * does not intercept (io_uring_enter) may make none for a long time.
 *
 * A signal that comes while ringo_signal_notify is still waiting for the
 * procs may find one that does not block it yet; the handler is installed
 * with SA_ONSTACK, so it runs on the proc's alternate signal stack and
 * touches nothing of the goroutine it interrupted.
 *
 * Registrations are held under reg_lock, with a reference to each channel
 * (ringo_chan_retain): ringo_signal_stop, and the end of the run, release
 * them.  When the last channel for a signal goes, its original
 * disposition is restored and the procs unblock it.  While any
 * registration exists the deadlock check reports nothing (a signal may
 * come and wake a goroutine), as in Go.  The signal thread's deliveries
 * are not "plain thread calls" (note_foreign): they do not turn deadlock
 * detection off for the rest of the run.
 *
 * The pending bits.  The handler sets a bit with a relaxed fetch_or and
 * then writes the eventfd (a system call: the kernel orders it); the
 * thread reads the eventfd, then takes the bits with an acquire exchange.
 * A signal whose bit is set after the exchange also writes the eventfd
 * after it, so the thread's next read returns and it takes the bit then:
 * no signal is left pending with the thread asleep.
 *
 * SIGQUIT.  With cfg->dump_on_sigquit (or RINGO_DUMP_ON_SIGQUIT=1) the run
 * watches SIGQUIT from its start as if a channel were registered for it
 * (the procs block it from their first instruction, sig_handler takes it
 * on a plain thread that does not), but no channel is: the signal thread
 * writes a goroutine dump to standard error itself and the run goes on,
 * where SIGQUIT's default action would end the process with a core dump.
 * The signal thread is a plain thread of the runtime's that never runs
 * goroutines, so the dump is taken with every proc stuck in user code
 * just as well: it does not stop the procs but reads, while they run,
 * only what is safe to read racily (runtime.c "Dumps": relaxed atomics
 * and fields fixed for a goroutine's life), and calls dladdr, malloc and
 * write, which a signal handler could not.  This watch is no registration:
 * it keeps no run alive, so a deadlock is still reported.  While it is on,
 * ringo_signal_notify refuses SIGQUIT (-EINVAL): a channel for it would
 * take the signal from the dump or share it, and the program asked for
 * the dump.
 */
#include "config.h"

#include "internal.h"
#include "chan.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "ringo.h"

#define NSIGS 65 /* signals 1..64 */

struct sig_reg {
    struct sig_reg *next;
    ringo_chan *c;
    uint64_t mask;              /* bit s-1 for each signal s */
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sig_reg *regs;            /* under reg_lock */
static unsigned sig_users[NSIGS];       /* channels per signal; under reg_lock */
static struct sigaction sig_saved[NSIGS]; /* dispositions before ours; under reg_lock */
static uint64_t sig_watched;            /* signals with a channel; under reg_lock */
static _Atomic uint64_t sig_watched_pub; /* the same, for the signal thread and procs; release */
static _Atomic uint64_t pending;        /* set by the handler, taken by the thread */
static int sig_efd = -1;                /* the thread's eventfd; under reg_lock */
static int sig_sfd = -1;                /* the thread's signalfd; under reg_lock */
static pthread_t sig_thread;
static bool sig_thread_on;              /* under reg_lock */
static bool sig_ending;                 /* the run's end has begun: no new thread; under reg_lock */
static _Atomic int sig_stop;            /* tells the thread to exit */
static bool sigquit_watched;            /* for the run's dumps ("SIGQUIT"); under reg_lock */
_Atomic int signal_regs;                /* registrations (deadlock check, runtime.c); seq_cst */

static bool sigpipe_ignored;            /* we set SIGPIPE to SIG_IGN for this run */

static inline uint64_t sigbit(int s)
{
    return 1ull << (s - 1);
}

/* The handler and the eventfd's close.  A handler may run on a plain
 * thread while the run ends: signal_run_end uninstalls it, but one
 * already entered goes on, and a write to a number that the close has
 * freed would land in whatever file gets the number next.  So the
 * handler counts itself in handlers_in before it loads the number from
 * sig_efd_pub, and signal_run_end stores -1 there before it waits for
 * the count to fall to 0 and closes.  All four seq_cst: if the closer's
 * load of the count comes before the handler's increment in their single
 * total order, the handler's load of the number comes after the closer's
 * store of -1, and it writes nothing; otherwise the closer sees the
 * handler counted and waits for it.  A fork's child has none of the
 * other threads that may have been counted (handlers_forked). */
static _Atomic int sig_efd_pub = -1;
static _Atomic int handlers_in;
_Atomic(fd_seam_fn *) signal_handler_seam;
static pthread_once_t handlers_once = PTHREAD_ONCE_INIT;

static void handlers_forked(void)
{
    atomic_store(&handlers_in, 0);
}

static void handlers_init(void)
{
    pthread_atfork(NULL, NULL, handlers_forked);
}

static void sig_handler(int s)
{
    int saved = errno;
    atomic_fetch_add(&handlers_in, 1);
    int fd = atomic_load(&sig_efd_pub);
    if (fd >= 0) {
        /* Inside the count: a bit set after the run's end has cleared
         * `pending` would reach the next run's channels. */
        atomic_fetch_or_explicit(&pending, sigbit(s), memory_order_relaxed);
        fd_seam_fn *seam = load_acquire(&signal_handler_seam);
        if (__builtin_expect(seam != NULL, 0))
            seam(fd);
        uint64_t one = 1;
        ssize_t w = write(fd, &one, sizeof one);
        (void)w;
    }
    atomic_fetch_sub(&handlers_in, 1);
    errno = saved;
}

/* Signals the runtime refuses: it cannot receive them (SIGKILL, SIGSTOP),
 * they are synchronous faults it reports itself (SIGSEGV, SIGBUS, SIGFPE,
 * SIGILL, SIGTRAP, SIGSYS), the C library keeps them, or they are past the
 * 64 it tracks. */
static bool sig_ok(int s)
{
    if (s < 1 || s >= NSIGS || s >= NSIG)
        return false;
    switch (s) {
    case SIGKILL: case SIGSTOP: case SIGSEGV: case SIGBUS:
    case SIGFPE: case SIGILL: case SIGTRAP: case SIGSYS:
        return false;
    }
    /* The C library's own signals, below SIGRTMIN (32 and 33 with glibc,
     * for its threads), which sigaction(2) refuses. */
    if (s > SIGSYS && s < SIGRTMIN)
        return false;
    return true;
}

static void mask_of(uint64_t bits, sigset_t *set)
{
    sigemptyset(set);
    for (int s = 1; s < NSIGS; s++)
        if (bits & sigbit(s))
            sigaddset(set, s);
}

/* Signals the kernel sends to the thread whose call raised them: a write
 * to a pipe or socket with no reader (SIGPIPE), past the file size limit
 * (SIGXFSZ).  A proc that blocked one would keep it pending for ever (the
 * signal thread's signalfd reads only the process's and its own), so the
 * procs leave them unblocked, and sig_handler takes them on the proc, on
 * its alternate stack, touching nothing of the goroutine it interrupts. */
#define SIG_THREAD_DIRECTED (sigbit(SIGPIPE) | sigbit(SIGXFSZ))

/* Signals sent to a proc's own thread: raise(3) or pthread_kill(3) from a
 * goroutine.  The proc blocks what is watched, and the signal thread's
 * signalfd reads only the process's pending signals and its own: such a
 * signal would wait on the proc for ever, and take its old disposition's
 * action once nothing watched it and the proc unblocked it.  So a proc
 * that runs out of work looks for them (sched.c proc_sleep), takes them
 * without waiting (sigtimedwait, which fails at once with nothing
 * pending) and hands them on as the handler does.  That is a system call:
 * looked for when the proc is about to sleep with no I/O in
 * flight (`now`: only a timer, or another proc, would end the sleep), and
 * every SIG_LOOK_EVERY times it runs out of work otherwise, so a busy
 * server's rounds pay for it rarely; a proc that seldom runs out of work
 * hands them on late (ringo_signal_notify(3)).  One relaxed load when
 * nothing is watched. */
#define SIG_LOOK_EVERY 16

void signal_proc_look(bool now)
{
    /* relaxed: a look that misses a signal just watched finds it next time */
    uint64_t w = load_relaxed(&sig_watched_pub) & ~SIG_THREAD_DIRECTED;
    if (__builtin_expect(!w, 1))
        return;
    static __thread unsigned looks;
    if (!now && ++looks % SIG_LOOK_EVERY != 0)
        return;
    sigset_t want;
    mask_of(w, &want);
    const struct timespec zero = { 0, 0 };
    int sig;
    while ((sig = sigtimedwait(&want, NULL, &zero)) > 0)
        sig_handler(sig);
}

/* The signals pending for the calling thread itself, not for the
 * process (SigPnd of /proc/thread-self/status); 0 if it cannot be read.
 * Only when a proc unblocks signals: rare. */
static uint64_t thread_pending(void)
{
    char *buf = malloc(4096);
    if (!buf)
        return 0;
    uint64_t bits = 0;
    int fd = open("/proc/thread-self/status", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, 4095);
        close(fd);
        if (n > 0) {
            buf[n] = 0;
            const char *l = strstr(buf, "\nSigPnd:");
            if (l)
                bits = strtoull(l + 8, NULL, 16);
        }
    }
    free(buf);
    return bits;
}

/* A proc blocks what has a channel and unblocks what no longer has one. */
static void proc_apply_mask(void)
{
    static __thread uint64_t blocked; /* what this proc thread blocked */
    uint64_t want = load_acquire(&sig_watched_pub) & ~SIG_THREAD_DIRECTED;
    sigset_t set;
    if (want & ~blocked) {
        mask_of(want & ~blocked, &set);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
    }
    if (blocked & ~want) {
        /* One sent to this thread while it was watched (signal_proc_look)
         * is handed on first: unblocked, it would take the disposition
         * that ringo_signal_stop has just restored.  Only the thread's
         * own: one pending for the process (every thread blocking it) is
         * left to that disposition, as before the stop's unblock; the
         * thread's own is taken first where both are pending. */
        uint64_t own = thread_pending() & blocked & ~want;
        const struct timespec zero = { 0, 0 };
        for (int sig = 1; own && sig < NSIGS; sig++) {
            if (!(own & sigbit(sig)))
                continue;
            mask_of(sigbit(sig), &set);
            if (sigtimedwait(&set, NULL, &zero) == sig)
                sig_handler(sig);
        }
        mask_of(blocked & ~want, &set);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    }
    blocked = want;
}

/* Every proc applies the current mask, and a goroutine caller waits until
 * all have: once ringo_signal_notify returns, no proc thread takes a signal
 * that has a channel, so no handler interrupts the goroutines (and, under
 * ThreadSanitizer, none is left pending on a proc asleep in
 * io_uring_enter, a call it does not intercept).  The wait happens after
 * reg_lock is released: a proc may be running a goroutine blocked on
 * reg_lock, and it runs our task only once that goroutine is through.  A
 * proc's task applies whatever mask is current when it runs, at least as
 * new as the one its caller published. */
struct mask_task {
    struct rtask t;
    struct close_wait *cw;
};

static void mask_task_run(struct rproc *p, struct rtask *t)
{
    (void)p;
    proc_apply_mask();
    close_wait_done(((struct mask_task *)t)->cw);
}

/* A goroutine: tasks on its stack, in rounds of up to MASK_BATCH procs,
 * parked until each has run (the run cannot end meanwhile: the goroutine
 * is live and counted in inflight).  No allocation, so nothing can fail. */
#define MASK_BATCH 8

static void procs_sync_mask_g(struct rproc *p, struct rg *g)
{
    proc_apply_mask();
    struct mask_task tasks[MASK_BATCH];
    unsigned i = 0;
    while (i < rt.nprocs) {
        unsigned n = 0;
        struct rproc *targets[MASK_BATCH];
        for (; i < rt.nprocs && n < MASK_BATCH; i++)
            if (rt.procs[i] != p)
                targets[n++] = rt.procs[i];
        if (n == 0)
            continue;
        struct close_wait cw = { .g = g };
        cw.token = park_prepare(g, W_IO, 0);
        store_relaxed(&cw.pending, (int)n); /* published by proc_post_task's release */
        owner_add(p->inflight, 1); /* waiting on other procs: not a deadlock */
        for (unsigned k = 0; k < n; k++) {
            tasks[k].t.run = mask_task_run;
            tasks[k].t.discard = NULL;
            tasks[k].cw = &cw;
            proc_post_task(targets[k], &tasks[k].t);
        }
        park_commit(g, cw.token, 0);
        owner_add(p->inflight, -1);
    }
}

/* A plain thread does not wait: a goroutine may be holding its proc
 * until the thread is done (pthread_join from a goroutine).  Each proc
 * applies the mask at its next round; a task that cannot be allocated
 * leaves that proc on its old mask until the next change (a signal it
 * takes meanwhile runs the handler on its alternate stack). */
static void mask_heap_task_run(struct rproc *p, struct rtask *t)
{
    (void)p;
    free(t);
    proc_apply_mask();
}

static void mask_heap_task_discard(struct rtask *t)
{
    free(t);
}

static void procs_post_mask(void)
{
    for (unsigned i = 0; i < rt.nprocs; i++) {
        struct rtask *t = seam_malloc(sizeof *t);
        if (!t)
            continue;
        t->run = mask_heap_task_run;
        t->discard = mask_heap_task_discard;
        proc_post_task(rt.procs[i], t);
    }
}

/* Called after reg_lock is released, with `me` from run_enter. */
static void procs_sync_mask(struct rproc *me)
{
    struct rg *g = me ? me->cur : NULL;
    if (g)
        procs_sync_mask_g(me, g);
    else if (me)
        proc_apply_mask(); /* a proc's own thread outside a goroutine: none today */
    else
        procs_post_mask();
}

/* Offer signal s to every channel registered for it (under reg_lock). */
static void deliver(int s)
{
    for (struct sig_reg *r = regs; r; r = r->next)
        if (r->mask & sigbit(s))
            (void)ringo_chan_try_send(r->c, &s); /* full: dropped, as in Go */
}

_Atomic(signal_seam_fn *) signal_thread_seam;
_Atomic unsigned long signal_pokes;

static void *sig_thread_main(void *arg)
{
    (void)arg;
    tls_runtime_thread = true; /* deliveries are not plain-thread calls */
    /* Every signal stays blocked here (thread_start): this thread takes
     * the registered ones from its signalfd, never through a handler. */
    uint64_t in_sfd = 0;
    for (;;) {
        uint64_t want = load_acquire(&sig_watched_pub);
        if (want != in_sfd) {
            sigset_t set;
            mask_of(want, &set);
            /* Changes the mask of the descriptor thread_start made: no new
             * descriptor, so this cannot fail for want of one. */
            if (signalfd(sig_sfd, &set, SFD_NONBLOCK | SFD_CLOEXEC) >= 0)
                in_sfd = want;
        }
        struct pollfd pf[2] = { { .fd = sig_efd, .events = POLLIN },
                                { .fd = sig_sfd, .events = POLLIN } };
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        signal_seam_fn *seam = load_relaxed(&signal_thread_seam);
        if (__builtin_expect(seam != NULL, 0))
            seam();
        uint64_t got = 0;
        if (pf[0].revents & POLLIN) {
            uint64_t v;
            ssize_t n = read(sig_efd, &v, sizeof v);
            (void)n;
        }
        /* The stop is looked at after the wake is read, not before:
         * signal_run_end stores sig_stop and then pokes.  Looked at before,
         * the store could be missed while the read took its poke, and the
         * next poll would wait for ever (and signal_run_end with it, in
         * pthread_join).  After: either this read took the poke, and the
         * store before it is seen (acquire; the poke's write and this read
         * order the two), or the poke is still pending, and poll returns
         * at once. */
        if (load_acquire(&sig_stop))
            break;
        if (pf[1].revents & POLLIN) {
            struct signalfd_siginfo si[8];
            ssize_t n;
            while ((n = read(sig_sfd, si, sizeof si)) > 0)
                for (size_t i = 0; i < (size_t)n / sizeof si[0]; i++)
                    if (si[i].ssi_signo >= 1 && si[i].ssi_signo < NSIGS)
                        got |= sigbit((int)si[i].ssi_signo);
        }
        /* acquire: pairs with nothing stronger than the handler's write to
         * the eventfd, which the read above has seen */
        got |= atomic_exchange_explicit(&pending, 0, memory_order_acquire);
        if (!got)
            continue;
        /* rt.dump_on_sigquit is the run's, set before this thread began */
        if (rt.dump_on_sigquit && (got & sigbit(SIGQUIT))) {
            dump_on_signal(SIGQUIT);
            got &= ~sigbit(SIGQUIT);
        }
        pthread_mutex_lock(&reg_lock);
        for (int s = 1; s < NSIGS; s++)
            if (got & sigbit(s))
                deliver(s);
        pthread_mutex_unlock(&reg_lock);
    }
    return NULL;
}

/* Start the signal thread (under reg_lock), with every signal blocked:
 * it keeps them so and reads its signalfd. */
static int thread_start(void)
{
    if (sig_thread_on)
        return 0;
    /* A plain thread's ringo_signal_notify as the run ends (it is still
     * active at signal_run_end's first call): the run is over for it,
     * and a thread started now could miss the stop meant for the last. */
    if (sig_ending)
        return -EINVAL;
    if (sig_efd < 0) {
        sig_efd = seam_eventfd(0, EFD_CLOEXEC);
        if (sig_efd < 0)
            return -errno;
        /* seq_cst, as the handler's load ("The handler and the
         * eventfd's close"); before any handler is installed */
        pthread_once(&handlers_once, handlers_init);
        atomic_store(&sig_efd_pub, sig_efd);
    }
    if (sig_sfd < 0) {
        sigset_t none;
        sigemptyset(&none);
        sig_sfd = signalfd(-1, &none, SFD_NONBLOCK | SFD_CLOEXEC);
        if (sig_sfd < 0)
            return -errno;
    }
    store_relaxed(&sig_stop, 0);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int r = seam_pthread_create(&sig_thread, NULL, sig_thread_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r)
        return -r;
    sig_thread_on = true;
    return 0;
}

/* The thread re-reads the mask: wake it (a spurious wake is harmless). */
static void thread_poke(void)
{
    uint64_t one = 1;
    ssize_t w = write(sig_efd, &one, sizeof one);
    (void)w;
    /* release: a reader of the count (the test seam) that sees this poke
     * counted sees it written */
    atomic_fetch_add_explicit(&signal_pokes, 1, memory_order_release);
}

static void unwatch(uint64_t bits);

/* Add the signals of `bits` to the watched set (under reg_lock). */
static int watch(uint64_t bits)
{
    for (int s = 1; s < NSIGS; s++) {
        if (!(bits & sigbit(s)) || sig_users[s]++)
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = sig_handler;
        sa.sa_flags = SA_ONSTACK | SA_RESTART;
        sigfillset(&sa.sa_mask);
        if (sigaction(s, &sa, &sig_saved[s]) != 0) {
            /* Not for a signal sig_ok accepts; undo this call's part. */
            int err = -errno;
            sig_users[s]--;
            unwatch(bits & (sigbit(s) - 1));
            return err;
        }
        sig_watched |= sigbit(s);
    }
    store_release(&sig_watched_pub, sig_watched);
    return 0;
}

/* Drop one channel's signals from the watched set (under reg_lock). */
static void unwatch(uint64_t bits)
{
    for (int s = 1; s < NSIGS; s++) {
        if (!(bits & sigbit(s)) || --sig_users[s])
            continue;
        sigaction(s, &sig_saved[s], NULL);
        sig_watched &= ~sigbit(s);
    }
    store_release(&sig_watched_pub, sig_watched);
}

static void reg_drop(struct sig_reg **link);

int ringo_signal_notify(ringo_chan *c, const int *sigs, size_t n)
{
    if (!c || !sigs || n == 0 || c->elem_size != sizeof(int))
        return -EINVAL;
    uint64_t bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (!sig_ok(sigs[i]))
            return -EINVAL;
        bits |= sigbit(sigs[i]);
    }
    struct rproc *me;
    if (!run_enter(&me))
        return -EINVAL; /* no run in progress */
    /* The watchdog's signal (watchdog.c "Which signal"): set before the
     * procs started, stable for the run that run_enter pins. */
    if (rt.watchdog_sig && (bits & sigbit(rt.watchdog_sig))) {
        run_exit(me);
        return -EINVAL;
    }
    /* SIGQUIT while it writes dumps ("SIGQUIT"); set before the run began. */
    if (rt.dump_on_sigquit && (bits & sigbit(SIGQUIT))) {
        run_exit(me);
        return -EINVAL;
    }
    pthread_mutex_lock(&reg_lock);
    int r = thread_start();
    struct sig_reg *reg = NULL;
    bool fresh = false;
    for (struct sig_reg *x = regs; x && !r; x = x->next)
        if (x->c == c)
            reg = x;
    if (!r && !reg) {
        fresh = true;
        reg = seam_calloc(1, sizeof *reg);
        if (!reg) {
            r = -ENOMEM;
        } else {
            reg->c = ringo_chan_retain(c);
            reg->next = regs;
            regs = reg;
            /* seq_cst: read by the deadlock check under idle_lock */
            atomic_fetch_add_explicit(&signal_regs, 1, memory_order_seq_cst);
        }
    }
    if (!r) {
        uint64_t add = bits & ~reg->mask;
        r = watch(add);
        if (!r)
            reg->mask |= add;
        else if (fresh)
            reg_drop(&regs); /* this call's own registration, at the head: undone */
        thread_poke();
    }
    pthread_mutex_unlock(&reg_lock);
    if (!r)
        procs_sync_mask(me);
    run_exit(me);
    return r;
}

/* Unlink and free reg (under reg_lock). */
static void reg_drop(struct sig_reg **link)
{
    struct sig_reg *reg = *link;
    *link = reg->next;
    unwatch(reg->mask);
    ringo_chan_release(reg->c);
    free(reg);
    atomic_fetch_sub_explicit(&signal_regs, 1, memory_order_seq_cst);
}

int ringo_signal_stop(ringo_chan *c)
{
    if (!c)
        return -EINVAL;
    struct rproc *me;
    if (!run_enter(&me))
        return -ENOENT; /* no run: nothing is registered */
    pthread_mutex_lock(&reg_lock);
    int r = -ENOENT;
    for (struct sig_reg **link = &regs; *link; link = &(*link)->next) {
        if ((*link)->c == c) {
            reg_drop(link);
            r = 0;
            break;
        }
    }
    if (!r)
        thread_poke();
    pthread_mutex_unlock(&reg_lock);
    if (!r)
        procs_sync_mask(me);
    run_exit(me);
    return r;
}

int signal_run_start(void)
{
    pthread_mutex_lock(&reg_lock);
    sig_ending = false;
    pthread_mutex_unlock(&reg_lock);
    if (rt.dump_on_sigquit) {
        pthread_mutex_lock(&reg_lock);
        int r = thread_start();
        if (!r)
            r = watch(sigbit(SIGQUIT)); /* published before the procs start */
        if (!r) {
            sigquit_watched = true;
            thread_poke();
        }
        pthread_mutex_unlock(&reg_lock);
        if (r) {
            signal_run_end(); /* the thread, if it started */
            return r;
        }
    }
    struct sigaction sa;
    sigpipe_ignored = false;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL &&
        !(sa.sa_flags & SA_SIGINFO)) {
        signal(SIGPIPE, SIG_IGN);
        sigpipe_ignored = true;
    }
    return 0;
}

/* On each proc thread before it runs anything: block what is watched
 * (SIGQUIT for dumps; nothing else has a channel before the run). */
void signal_proc_start(void)
{
    proc_apply_mask();
}

void signal_run_end(void)
{
    pthread_mutex_lock(&reg_lock);
    sig_ending = true;
    while (regs)
        reg_drop(&regs);
    if (sigquit_watched) {
        unwatch(sigbit(SIGQUIT));
        sigquit_watched = false;
    }
    bool on = sig_thread_on;
    sig_thread_on = false;
    pthread_t th = sig_thread;
    if (on) {
        store_release(&sig_stop, 1);
        thread_poke();
    }
    pthread_mutex_unlock(&reg_lock);
    if (on)
        pthread_join(th, NULL);
    /* The descriptors under reg_lock, as a plain thread's
     * ringo_signal_notify (which fails from now on: sig_ending) and its
     * pokes use them. */
    pthread_mutex_lock(&reg_lock);
    /* Every handler of ours was uninstalled by the reg_drops above. */
    if (sig_sfd >= 0) {
        close(sig_sfd);
        sig_sfd = -1;
    }
    if (sig_efd >= 0) {
        /* A handler entered before the uninstall may still be about to
         * write ("The handler and the eventfd's close"): it is brief (a
         * load and a write), so yield until it has left. */
        atomic_store(&sig_efd_pub, -1);
        while (atomic_load(&handlers_in) != 0)
            sched_yield();
        close(sig_efd);
        sig_efd = -1;
    }
    store_relaxed(&pending, 0); /* after the handlers: none sets a bit now */
    pthread_mutex_unlock(&reg_lock);
    if (sigpipe_ignored) {
        struct sigaction sa;
        /* Put SIG_DFL back unless the program changed it meanwhile. */
        if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
            signal(SIGPIPE, SIG_DFL);
        sigpipe_ignored = false;
    }
}

/* Before the goroutines a deadlock left are abandoned (runtime.c "Module
 * hooks"): the signal thread may still be sending to their channels. */
const struct rhooks signal_hooks = { .run_end = signal_run_end };
