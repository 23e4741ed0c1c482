/*
 * internal.h — goroutines, procs, and the park/ready protocol every blocking
 * primitive is built on.
 *
 * Blocking, in one paragraph.  A goroutine that must wait calls
 * park_prepare(), which hands out a fresh *token* and publishes it in the
 * goroutine's park word; it then registers itself wherever the wake will come
 * from (a channel queue, an io_uring SQE whose user_data is a struct rop, a
 * timer) together with that token, and calls park_commit(), which switches
 * away.  Whoever wants to end the wait — the channel peer, the CQE handler,
 * the deadline timer, ringo_cancel() — must first win claim(g, token), one
 * compare-and-swap on the park word; only the winner writes g->result and
 * calls ready(g).  So a wait ends exactly once, and a stale waker (the token
 * of an earlier wait) always loses.
 */
#ifndef RINGO_INTERNAL_H
#define RINGO_INTERNAL_H

#include "config.h"

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "atomic.h"
#include "fault.h"
#include "fiber.h"
#include "timer.h"

#include "ringo.h"

struct rproc;
struct rop;
struct sudog;

/* Fault seams of the io_uring setup calls (the others are in fault.h). */
static inline int seam_io_uring_queue_init_params_at(unsigned entries, struct io_uring *ring,
                                                     struct io_uring_params *params,
                                                     const char *site)
{
    if (fault_now(site))
        return -ENOMEM;
    return io_uring_queue_init_params(entries, ring, params);
}

static inline struct io_uring_probe *seam_io_uring_get_probe_ring_at(struct io_uring *ring,
                                                                     const char *site)
{
    if (fault_now(site))
        return NULL;
    return io_uring_get_probe_ring(ring);
}

#define seam_io_uring_queue_init_params(e, r, pa) \
    seam_io_uring_queue_init_params_at((e), (r), (pa), FAULT_SITE)
#define seam_io_uring_get_probe_ring(r) seam_io_uring_get_probe_ring_at((r), FAULT_SITE)

/* Goroutine states, as ringo_dump() prints them.  Owner proc writes them
 * (relaxed: they are a diagnostic, read racily by dumps). */
enum gstate {
    G_FREE = 0,     /* in a free list */
    G_RUNNABLE,     /* in a run queue or inbox, or about to be */
    G_RUNNING,
    G_WAITING,      /* parked; reason says on what */
};

/* Why a goroutine waits; the dump prints Go's words for them. */
enum wait_reason {
    W_NONE = 0,
    W_SLEEP,
    W_CHAN_SEND,
    W_CHAN_RECV,
    W_SELECT,
    W_SELECT_NOCASES,
    W_MUTEX,
    W_WAITGROUP,
    W_COND,
    W_IO,
    W_OFFLOAD,
    W_YIELD,        /* never parked: used for runnable */
};

/* Park word layout (struct rg.park):
 *   bit 0      CLAIMED  the current wait has been ended (or there is none)
 *   bit 1      INTR     the wait may be ended by cancellation/deadline
 *   bit 2      SPIN     the goroutine spins in place instead of switching
 *                       away (sched.c "Spinning in place")
 *   bit 3      DONE     with SPIN and CLAIMED: the claim winner has written
 *                       the result; the spinner may go on
 *   bits 4-63  token    of the current wait (g->park_seq)
 */
#define PARK_CLAIMED 1ull
#define PARK_INTR    2ull
#define PARK_SPIN    4ull
#define PARK_DONE    8ull
#define PARK_SHIFT   4

/* park_prepare and park_commit flags */
#define PARK_INTERRUPTIBLE 1   /* deadline and cancellation end the wait */
#define PARK_SPIN_OK       2   /* park_commit: the waker is likely another
                                * proc's; spinning in place may pay */

/* A goroutine is three cache lines, laid out by who touches them and when.
 *
 * Line 0, struct rg itself, holds what a spawn writes (fn, id, the queue
 * link) and what a waker on another proc writes (park, result, state,
 * next), so a cross-proc hand-off moves one line of the goroutine, not
 * three (tests/bench/pingpong with 2 procs).  It is all a goroutine that
 * has not started yet has, with its slot's arg and creator (gtable.c
 * "Slot records"): a million unstarted goroutines cost 80 bytes each
 * (tests/bench/coldstart, rss).
 *
 * Lines 1 and 2, struct rg_cold (g_run(g), g_wait(g)), are the owner
 * proc's: the saved context and stack it reads to resume the goroutine,
 * its bookkeeping, and the wait in progress.  They live in the header of
 * the goroutine's stack (struct stack.gcold, fiber.h), which it gets when
 * it first runs (sched.c g_start) and gives back when it exits: so they
 * come and go with the stack, and spawning a million goroutines that each
 * run and exit touches one hot stack and one hot pair of lines, not a
 * million (the first page of a stack is touched anyway). */
struct rg_cold;
struct rg {
    struct rg *next;            /* run queue / inbox / free list link: whoever holds the queue */
    /* Owner proc; fixed once started.  Stored relaxed by the spawner, or
     * by the thief or donor that moves g before it starts (runq.c), on the
     * thread whose proc then runs g; what orders it for ringo_cancel is
     * the park word that proc stores later, which the cancel loads
     * seq_cst before it reads this (cancel.c). */
    _Atomic(struct rproc *) p;
    _Atomic uint64_t park;      /* see "Park word layout"; CAS by any waker, store seq_cst by owner */
    /* The goroutine's id: written with release at spawn, read acquire by
     * ringo_cancel.  At exit (and in a fresh struct) it becomes the
     * negated id of the struct's next incarnation, which the next spawn
     * takes (g_incarnate): never a live id, so lookups miss it. */
    _Atomic int64_t id;
    _Atomic int64_t cancel_id;  /* == id once cancelled; CAS by ringo_cancel (seq_cst), see cancel.c */
    void (*fn)(void *);         /* for dumps after it started, too */
    /* Lines 1 and 2, set when it starts (g_start) and cleared when its
     * stack goes back (reclaim_dead).  A plain field, the owner's, which
     * it reads on every switch and park; dumps read it with fiber_peek,
     * racily on purpose as they read the stack (runtime.c "Dumps": they
     * see a started goroutine's, or NULL, or a stack's that another
     * goroutine now uses, and validate what they read after) */
    struct rg_cold *cold;
    int32_t result;             /* written by the claim winner before ready(); read by g after it resumes */
    _Atomic uint8_t state;      /* enum gstate; owner writes relaxed, dumps read relaxed */
    _Atomic uint8_t reason;     /* enum wait_reason; owner writes relaxed, dumps read relaxed */
    bool started;               /* has a stack and has run; never donated after */
    bool bound;                 /* ringo_go_on: never donated */
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct rg) == 64, "struct rg is line 0 of a goroutine");

/* Line 1: what the owner reads to resume the goroutine, and its
 * bookkeeping. */
struct rg_run {
    struct fiber_ctx ctx;       /* saved context while not running */
    struct stack *stack;        /* the stack whose header holds these lines */
    uint64_t park_seq;          /* last token handed out; owner.  Set from the park word at start */
    int64_t deadline;           /* owner */
    int64_t wake_at;            /* timer target of the current wait (RINGO_NEVER: none); owner.
                                 * For an io_wait, the deadline at which the timer cancels io_op */
    int32_t wake_at_result;     /* result the timer delivers (0 for a sleep, -ETIMEDOUT for a deadline) */
    _Atomic int wait_fd;        /* the fd of an I/O wait, -1 otherwise; owner writes relaxed, dumps read relaxed */
    uint64_t timer_token;       /* token the timer claims with */
    struct rg *g;               /* whose lines these are, for the timer (g_of_timer) */
};

/* Line 2: the wait in progress. */
struct rg_wait {
    struct rtimer timer;        /* owner proc's heap */
    struct rop *io_op;          /* the operation that deadline and cancel end (io_wait, a timed futex wait); owner */
    _Atomic(const void *) wait_obj; /* what it waits on, for dumps: a channel or a futex word; like wait_fd */
    struct sudog *sudogs;       /* channel waits queued while parked (chan.c); owner */
    unsigned nsudogs;
    _Atomic uint32_t parked_ms; /* the proc's clock (rproc.clock_ms) when it last parked; owner writes
                                 * relaxed in park_prepare, dumps read relaxed */
};

struct rg_cold {
    struct rg_run run;
    struct rg_wait wait;
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct rg_run) == 64 && offsetof(struct rg_cold, wait) == 64,
               "struct rg_run is one cache line");
_Static_assert(sizeof(struct rg_cold) == GCOLD_SIZE, "struct stack.gcold holds lines 1 and 2");

/* Lines 1 and 2 of a goroutine that has started (owner proc only: others
 * peek at g->cold themselves). */
static inline struct rg_run *g_run(const struct rg *g)
{
    return &g->cold->run;
}

static inline struct rg_wait *g_wait(const struct rg *g)
{
    return &g->cold->wait;
}

/* The goroutine whose line 2 holds timer t. */
static inline struct rg *g_of_timer(struct rtimer *t)
{
    return ((struct rg_cold *)((uintptr_t)t - offsetof(struct rg_cold, wait.timer)))->run.g;
}

/* What an SQE's user_data names: a record that says what its completion
 * means.  The ring dispatches every CQE through the record's own handler
 * and knows nothing of accept, wakes or goroutines; user_data 0
 * (UD_IGNORE) is the one value that names no record (a cancel request, a
 * NOP: nobody waits for their CQEs).  A record lives until the last CQE of
 * its operation: on the waiting goroutine's stack (struct rop), in an
 * acceptor, or in a proc. */
struct ring_rec;
typedef void ring_done_fn(struct rproc *p, struct ring_rec *rec, int32_t res, uint32_t flags);
struct ring_rec {
    ring_done_fn *done;
};
#define UD_IGNORE 0ull

/* An operation a goroutine waits on; lives on its stack.  Its handler is
 * rop_done (engine_uring.c): the result goes to op->res and g is readied. */
struct eng_io;
struct rop {
    struct ring_rec rec;
    struct rg *g;
    uint64_t token;
    int32_t res;
    bool futex_wait; /* a timed IORING_OP_FUTEX_WAIT still counted in p->futex_waits
                      * (futex.c "Timed waits"); owner proc only */
    /* The epoll engine's (engine_epoll.c), owner proc only: how the
     * operation is carried out (EPM_*), where it is (EPW_*), the call it
     * makes again when its descriptor is ready, the readiness it waits
     * for, and its link in its descriptor's or the proc's list. */
    uint8_t ep_mode, ep_where;
    uint32_t ep_events;
    uint32_t ep_done;           /* a recv with MSG_WAITALL: bytes it has received */
    const struct eng_io *io;
    struct rop *ep_next;
};
/* eng_cancel_op names the operation by its struct rop *: the same
 * address as the record its SQE carries. */
_Static_assert(offsetof(struct rop, rec) == 0, "a rop's record is its first member");

/* Work handed to a proc by another thread (cancel requests, remote timers). */
struct rtask {
    struct rtask *next;
    void (*run)(struct rproc *p, struct rtask *t);
    void (*discard)(struct rtask *t);   /* still queued when the run ends; may be NULL */
};

/* Counters written by their proc only, read by ringo_stats from any
 * thread.  stat_add is a relaxed load and store, not a locked
 * read-modify-write: there is one writer, and a reader only needs a value
 * that is not torn. */
struct proc_stats {
    _Atomic uint64_t spawned, switches, submissions, completions, enters, cross_wakes;
    _Atomic uint64_t spin_ns, spins, spins_found;
    _Atomic uint64_t spin_ticks; /* goroutines' spins in place, in cpu_ticks (collect_totals converts) */
    _Atomic uint64_t idle_ns, donations;
};
#define stat_add(field, n) store_relaxed(&(field), load_relaxed(&(field)) + (n))

/* A cycle counter for timing what is too short, or too hot, for a clock
 * read (20-30 ns through the vDSO): the TSC on x86-64, the virtual counter
 * on AArch64, else the clock itself.  Its rate is taken from the run
 * (rt.epoch_ticks, collect_totals in runtime.c), so only differences mean
 * anything. */
static inline uint64_t cpu_ticks(void)
{
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

/* The same for the counters the deadlock check reads (p->inflight,
 * p->futex_waits) and p->unsubmitted: one writer, its proc, so a relaxed
 * load and store is an exact count; the relaxed reads on other procs only
 * need an untorn value (what the deadlock check may miss is covered by
 * rt.futex_transit, runtime.c). */
#define owner_add(field, n) store_relaxed(&(field), load_relaxed(&(field)) + (n))

/* Goroutine I/O operations in flight on this proc's ring, counted per file
 * descriptor, so that ringo_close() knows which procs must cancel them
 * (fdops.c).  Written by the owner only; read by closers on other procs. */
#define FDOPS_PAGE_BITS 12
#define FDOPS_PAGE_SIZE (1u << FDOPS_PAGE_BITS)
#define FDOPS_PAGES 256                 /* fds below 2^20 are counted exactly */
struct fd_ops {
    _Atomic(_Atomic uint32_t *) page[FDOPS_PAGES]; /* lazily allocated; release-published */
    _Atomic uint32_t untracked;         /* ops on fds that have no counter (no memory, fd too large) */
};

/* fdops_inc (owner; fd >= 0; returns the counter) and fdops_dec (owner;
 * what fdops_inc returned) are inline, at the end of this file. */
_Atomic uint32_t *fdops_inc_slow(struct rproc *p, int fd);
bool fdops_busy(struct rproc *p, int fd);   /* any thread */
void fdops_free(struct rproc *p);            /* teardown */

/* Closes in progress per fd, runtime-wide (close.c "Closing marks"): a
 * goroutine's ringo_close marks fd before it looks at who uses it; an
 * operation counted on fd that then finds a mark does not reach the
 * kernel, waits for the close, and starts again. */
_Atomic uint32_t *fdclose_mark(int fd);            /* closer; fd >= 0; returns the mark */
void fdclose_unmark(_Atomic uint32_t *mark);       /* closer, once its close has completed */
_Atomic uint32_t *fdclose_pending(int fd);         /* after counting an op on fd: its mark, or NULL */
_Atomic uint32_t *fdclose_look(int fd);            /* the same, the caller having issued barrier (B) */
void fdclose_wait(_Atomic uint32_t *mark);         /* a goroutine: until no close is in progress */
/* A goroutine's openat relative to fd (close.c "Directories"): counted
 * on fd's mark from before its request until after its result; 0 (word
 * set) or -ENOMEM. */
int  fdclose_dir_enter(int fd, _Atomic uint32_t **word);
void fdclose_dir_exit(_Atomic uint32_t *word);
bool fdclose_dir_busy(int fd);                     /* an openat relative to fd in progress */
/* A seam for tests (check_close.c), NULL in programs: ringo_close calls it
 * after it has had the other procs cancel the operations they count on
 * fd, before its own cancel and the close (io.c).  Atomic, as a test sets
 * and clears it while goroutines of other procs may close descriptors;
 * loaded with acquire, so that what the test set up before storing the
 * seam is seen by the seam. */
typedef void fd_seam_fn(int fd);
extern _Atomic(fd_seam_fn *) close_seam;
/* A seam for tests (check_chan.c), NULL in programs: ringo_run calls it
 * on its own thread once every proc has left its loop, while plain
 * threads may still call in (tasks they post then are discarded). */
extern void (*teardown_seam)(void);
/* And for ringo_stats (check_sched.c), NULL in programs: called with -1 by
 * a call that has the run pinned, before it sums the procs' counters.
 * Loaded with acquire, as close_seam. */
extern _Atomic(fd_seam_fn *) stats_seam;
/* And for a proc out of work that found nothing to steal (check_sched.c),
 * NULL in programs: called with the proc's index before it sleeps. */
extern _Atomic(fd_seam_fn *) idle_seam;
/* The same for the signal thread (check_signal.c), NULL in programs:
 * called each time its poll returns, before it reads its wake eventfd and
 * looks at its stop flag; signal_pokes counts the wakes written to that
 * eventfd (release, after the write). */
typedef void signal_seam_fn(void);
extern _Atomic(signal_seam_fn *) signal_thread_seam; /* relaxed: set before the poke that matters */
extern _Atomic unsigned long signal_pokes;
/* Called by the signal handler between its load of the eventfd's number
 * and its write to it (check_signal.c), NULL in programs: async-signal-
 * safe calls only. */
extern _Atomic(fd_seam_fn *) signal_handler_seam;

/* What the watchdog's monitor saw of a proc when it asks the proc thread
 * for a report (watchdog.c "The report").  The monitor writes tick,
 * switches and ms relaxed, then asked with release; the proc thread's
 * signal handler takes asked with an acquire exchange and then reads the
 * others.  gone: the proc thread has left its loop, no signal may be sent
 * to it any more; under the watchdog's lock. */
struct wd_ask {
    _Atomic int asked;
    _Atomic unsigned tick;
    _Atomic uint64_t switches;
    _Atomic int64_t ms;
    bool gone;
};

/* The low bits of a goroutine's id name its slot in the goroutine table
 * (gtable.c "Goroutine table"). */
#define SLOT_BITS 24

/* g's id for a message: its own also while it exits, when g->id already
 * holds the struct's next id negated (scheduler.h g_id_retired). */
static inline long long g_id_shown(struct rg *g)
{
    int64_t id = load_relaxed(&g->id);
    return id < 0 ? -id - ((int64_t)1 << SLOT_BITS) : id;
}

/* Entries of a proc's stealable queue (runq.c "Stealing"). */
#define RQ_SIZE 256
#define RQ_STEALABLE ((uintptr_t)1) /* in an entry: not started, not bound */

/* Every POLL_EVERY switches a busy proc also reaps completions and its
 * inbox and runs its timers, so I/O, cross-proc wakes and sleepers are
 * not starved by goroutines that keep yielding (Go checks its global queue
 * every 61 ticks for the same reason).  Lower costs more get_events system
 * calls under load.  Where 64 switches take longer than a millisecond,
 * the timers, inbox and tasks are polled more often (sched.c "Pacing the
 * polls"), and the I/O too while goroutines are queued.  (sched.c
 * next_runnable; rproc.tick counts the switches.) */
#define POLL_EVERY 64

struct rproc {
    int idx;
    pthread_t thread;
    struct io_uring ring;       /* owner thread only (SINGLE_ISSUER) */
    bool ring_ok;
    int ring_fd;                /* for MSG_RING from other procs; read-only after setup */
    int efd;                    /* eventfd other threads write to wake us; read-only after setup */
    uint64_t efd_buf;
    /* The records of the proc's own requests (engine_uring.c): its eventfd poll;
     * the CQE a MSG_RING wake posts here; and, at a sender, the CQE of a
     * MSG_RING sent to this proc.  Read-only after setup. */
    struct ring_rec efd_rec, wake_rec, wake_sent_rec;
    /* CQEs taken off the CQ while an SQE was being prepared (the CQ was
     * full and the kernel refused a submit), dispatched by the next reap:
     * preparing an SQE never runs a completion.  Owner. */
    struct io_uring_cqe *cq_defer;
    unsigned cq_defer_head, cq_defer_n, cq_defer_cap; /* next to dispatch, held, room */
    unsigned cq_tail;           /* the CQ tail as last read; next_cqe reads it again at it; owner */

    struct fiber_ctx g0;        /* the proc thread's own context (scheduler loop) */
#ifdef RINGO_SWITCH_UCONTEXT
    ucontext_t g0_uc;
#endif
#ifdef RINGO_TSAN
    void *tsan_g0;              /* the proc thread's own TSan fiber (tsan.h) */
#endif
    void *g0_stack_lo;          /* thread stack bounds, for sanitizer annotations */
    size_t g0_stack_size;
    struct rg *cur;             /* running goroutine, NULL in the scheduler loop; owner */
    struct rg *dead;            /* exited goroutine whose stack is reclaimed after the next switch */
    _Atomic uint64_t exited;    /* goroutines that exited here; owner stores with release,
                                 * others read it (spawn.c "Counting the live") */
    uint64_t exits_seen;        /* exited as of the proc's last live_end_check; owner */

    struct rg *runq_head, *runq_tail;   /* local FIFO of ready goroutines; owner only, no locks.
                                         * With stealing, the overflow behind rq (runq.c "Stealing") */
    size_t runq_len;                    /* goroutines in runq_head's list and in prio; owner */
    struct rg *prio;                    /* with stealing: goroutines whose timer fired, run first
                                         * (the front of the queue, park.c g_timer_fire); owner */
    bool steal_on;                      /* more than one proc: ready goroutines go through rq */
    uint32_t rq_fresh;                  /* unstarted goroutines pushed on rq and not popped by the
                                         * owner (some may have been stolen): a hint; owner */
    /* 1 while out of work and asking for donations.  Written by the owner
     * at every idle spin (twice per cross-proc hand-off received), read by
     * donors only when they have goroutines to give: so on a line the
     * owner writes anyway, not on the inbox line, where each write would
     * take the line back from the waker that just pushed (runq.c "Lines
     * of a hand-off").  Owner stores relaxed; donors xchg it to 0. */
    _Atomic int hungry;
    /* runq_len as of the last periodic poll (POLL_EVERY scheduling points)
     * or sleep, for ringo_stats on other threads: a sample, so the queues
     * cost no more to keep; owner writes relaxed. */
    _Atomic size_t runq_pub;
    /* Written by other threads: on a cache line of its own, so a waker's
     * CAS does not steal the line holding the owner's run queue, nor the
     * owner's writes the line the wakers read. */
    _Alignas(64) _Atomic(struct rg *) inbox; /* MPSC LIFO of goroutines readied by other threads */
    _Atomic(struct rtask *) tasks;      /* MPSC LIFO of tasks from other threads */
    bool idle;                          /* counted in rt.idle_procs; under rt.idle_lock */

    /* Read by other procs on every hand-off or idle pass, written by the
     * owner only when they change, which is seldom: a line of their own,
     * so that the readers keep a shared copy (runq.c "Lines of a
     * hand-off").
     *
     * sleeping: 1 while (about to be) blocked in io_uring_enter; see
     * sched.c "Proc sleeping/waking".  Every waker loads it after its push
     * (proc_wake); on the inbox line that load would take the line back
     * from an owner that has just fetched it to drain it.
     *
     * rq_stealable: rq_fresh != 0, for thieves: 1 while the ring may hold
     * goroutines that have not started.  Every idle proc reads it before
     * it reads this proc's rq_head and rq_tail (steal), and most of the
     * time it is 0: so a thief does not pull the line of the indexes,
     * which the owner writes on every push and pop, away from a proc that
     * is busy handing goroutines on.  Owner stores relaxed, thieves load
     * relaxed: a hint (runq.c "Stealing"). */
    _Alignas(64) _Atomic int sleeping;
    _Atomic int rq_stealable;

    /* The stealable queue (runq.c "Stealing"): a ring of RQ_SIZE entries
     * (a goroutine pointer, | RQ_STEALABLE for one that has not started);
     * the owner pushes at rq_tail, the owner and idle procs take from
     * rq_head by CAS.  A line of their own for the indexes: thieves CAS
     * rq_head, and they should not steal the owner's other lines. */
    _Alignas(64) _Atomic uint32_t rq_head;
    _Atomic uint32_t rq_tail;           /* stored by the owner only */
    struct rtask steal_task;            /* "take work from a busy proc" (runq.c steal_wake) */
    _Atomic int steal_pending;          /* steal_task is queued; xchg by the asker, cleared by the owner */
    _Alignas(64) _Atomic uintptr_t rq[RQ_SIZE];

    _Alignas(64) struct timer_heap timers;   /* owner; a new cache line: owner-only fields */
    size_t timer_promised;      /* heap slots promised: started goroutines + runtime timers; owner */
    struct rtask flush_task;    /* "hand your stack cache to the pool" (sched.c g_start) */
    _Atomic int flush_pending;  /* flush_task is queued; xchg by the asker, cleared by the owner */
    /* SQEs whose completion a goroutine waits on, and of those the
     * IORING_OP_FUTEX_WAITs (futex.c).  Owner writes (owner_add), and the
     * deadlock check reads them on other procs (rt_check_deadlock): an idle
     * proc still reaps completions, so they change under the reader. */
    _Atomic uint32_t inflight;
    _Atomic uint32_t futex_waits;
    int8_t futex_uring;         /* io_uring futex ops on this ring: 0 unprobed, 1 yes, -1 no (futex.c); owner */
    /* SQEs prepared since the last submit.  Owner writes (owner_add,
     * store_relaxed); relaxed so that tests may watch it from other procs
     * (check_close waits for a goroutine's SQE to reach the kernel). */
    _Atomic uint32_t unsubmitted;
    struct acceptor *acceptors; /* multishot accept state per listening fd (accept.c); owner */
    /* Scheduling points (next_runnable), for the periodic polls; owner
     * writes relaxed (one writer: a load and a store), and the watchdog's
     * monitor reads it relaxed (watchdog.c).  The scheduling point whose
     * tick has poll_mask's bits clear polls. */
    _Atomic unsigned tick;
    /* The periodic polls' pace (sched.c "Pacing the polls"): a poll at
     * each scheduling point whose tick has these bits clear (POLL_EVERY -
     * 1, or fewer on a proc whose switches are slow); the start of the
     * stretch the pace is measured over, its tick and park clock; and the
     * rate the last stretch measured (scheduling points a ms).  Owner
     * only. */
    unsigned poll_mask;
    unsigned pace_tick;
    uint32_t pace_ms;
    unsigned pace_prev;
    /* The park clock (clock_ms) at the last submit and reap (eng_poll)
     * made by a periodic poll or a sleep: a paced poll makes one only once
     * the clock has moved on.  Owner only. */
    uint32_t io_ms;
    /* A coarse clock, ms since rt.epoch_ns, that park_prepare stamps a
     * parking goroutine with (for dumps: how long it has waited).  Set
     * where the proc reads a clock anyway (timer runs) and, from
     * CLOCK_MONOTONIC_COARSE, at each periodic poll and after each sleep
     * (park.c "The park clock"); owner only. */
    uint32_t clock_ms;
    /* The spawn slice (spawn.c "The spawn slice"): the tick seen at the
     * last look, and the coarse clock when a look first saw that tick
     * (0 before the first look: the proc starts zeroed).  Owner only. */
    unsigned slice_tick;
    int64_t slice_start;
    unsigned backlogs_slow;     /* backlogs in a row that took over DEAL_NS to run (spawn.c
                                 * "Dealing"); owner */
    int64_t spin_budget;        /* how long the next idle spin may last, ns (sched.c proc_sleep); owner */
    bool spun_out;              /* a goroutine's spin in place just ran out: skip the idle spin
                                 * that follows (sched.c "Spinning in place"); owner */
    unsigned spin_probe;        /* sleeps since the budget fell to 0; owner */

    uint64_t rng;               /* select's random choice (xorshift); owner */
    size_t fresh;               /* unstarted, unbound goroutines in the run queue (donatable); owner */
    long credit;                /* stack credits held (see gtable.c "Stack credit"); owner */
    bool msg_ring;              /* this ring can post IORING_OP_MSG_RING; read-only after setup */
    bool wake_skip;             /* a MSG_RING wake that succeeds posts no CQE here (engine_uring.c
                                 * eng_wake); read-only after setup */
    struct stack_cache stacks;  /* owner */
    struct rg *gfree;           /* recycled goroutine structs; owner */
    size_t ngfree;

    void *altstack;             /* SIGSEGV alternate stack */
    struct proc_stats st;       /* owner writes relaxed; ringo_stats sums them */
    struct fd_ops fdops;        /* I/O operations in flight per fd (fdops.c) */
    struct ep_proc *ep;         /* the epoll engine's state (engine_epoll.c); owner */
    struct rop *ep_done;        /* its completions not yet dispatched, oldest first; owner */
    struct wd_ask wd;           /* the watchdog's request to this proc (watchdog.c) */
    _Atomic uint32_t fd_cancels; /* eng_cancel_fd calls made here (io.c: a MSG_WAITALL
                                 * receive or send one of them cut short goes on); owner writes
                                 * relaxed, the goroutine may read it on another proc */
};

/* Runtime-wide state for the run in progress (runtime.c). */
struct runtime {
    _Atomic int active;         /* 1 while a run is in progress (between setup and teardown) */
    unsigned nprocs;
    struct rproc **procs;
    _Atomic int64_t live;       /* goroutines spawned off the procs (main, plain threads),
                                 * | LIVE_STOPPED once the run ends (spawn.c "Counting the live") */
    _Atomic uint32_t foreign_ops; /* plain threads inside a call that touches the procs; a futex word */
    _Atomic int ops_sleeper;    /* 1 while the run's end waits for foreign_ops to reach 0 */
    _Atomic int stopping;       /* 0 running, 1 every goroutine done, 2 deadlock */
    _Atomic int foreign;        /* a plain thread has called in: deadlock detection off */
    _Atomic uint32_t verdict;   /* the deadlock verdict: 0 none, 1 being given, 2 given (a futex word)
                                 * (runtime.c "The verdict and plain threads") */
    int caller_toucher;         /* the ringo_run caller is counted in foreign_threads */
    _Atomic unsigned rr;        /* round robin for spawns from plain threads */
    _Atomic uint64_t foreign_spawned; /* goroutines spawned by plain threads (ringo_stats) */
    pthread_mutex_t idle_lock;
    unsigned idle_procs;        /* under idle_lock */
    _Atomic int64_t futex_transit; /* futex wakes not yet seen by their goroutine (futex.c) */
    /* The engine of the run (engine.h "Two engines"): RINGO_ENGINE_URING
     * or RINGO_ENGINE_EPOLL; set before the procs start, read-only after. */
    int engine;
    bool use_msg_ring;          /* probed once per run */
    bool valgrind;              /* running on valgrind: see engine_uring.c "Valgrind"; set before the procs start */
    bool use_defer_taskrun;
    unsigned ring_entries;
    _Atomic int64_t offload_jobs; /* ringo_offload jobs not yet completed on their proc (offload.c); acq_rel */
    _Atomic int multishot_accept; /* 1: ringo_accept may use multishot (accept.c); relaxed, see there */
    /* The watchdog (watchdog.c): its period (0: off) and signal (0: none),
     * set by the ringo_run caller before the procs start and cleared after
     * they are joined; and its reports, counted by the proc threads'
     * handlers (relaxed fetch_add: a count, summed by ringo_stats). */
    int64_t watchdog_ns;
    int watchdog_sig;
    _Atomic uint64_t watchdog_reports;
    int64_t epoch_ns;           /* CLOCK_MONOTONIC at the run's start: rproc.clock_ms counts from it */
    int64_t epoch_tick_ns;      /* now_ns() and cpu_ticks() read together at the run's start: */
    uint64_t epoch_ticks;       /* collect_totals converts ticks to ns with them */
    /* SIGQUIT writes a dump (signal.c "SIGQUIT"); set by the ringo_run
     * caller before the procs start, for the run. */
    bool dump_on_sigquit;
};

extern struct runtime rt;

/* Has p completions waiting to be reaped?  (On io_uring, on its CQ; with
 * DEFER_TASKRUN some may still wait for an enter, which IORING_SQ_TASKRUN
 * tells: sched.c proc_sleep.)  Owner. */
static inline bool eng_cq_ready(struct rproc *p)
{
    if (rt.engine == RINGO_ENGINE_EPOLL)
        return p->ep_done != NULL;
    /* With those set aside when a submit was refused (engine_uring.c
     * sq_make_room), which the next reap dispatches first. */
    return p->cq_defer_n != 0 || io_uring_cq_ready(&p->ring) != 0;
}

/* rt.live: set by the CAS that ends the run, when no goroutine is live;
 * from then on no goroutine can be spawned (spawn.c "Counting the live"). */
#define LIVE_STOPPED ((int64_t)1 << 62)

extern __thread struct rproc *tls_proc;
/* Set in a child forked during a run (runtime.c "A fork during a run"). */
extern _Atomic int forked_child;

/* Mark that a plain thread called into the runtime (deadlock detection
 * off); waits while a deadlock verdict is being given (runtime.c "The
 * verdict and plain threads"). */
void note_foreign(void);

/* The one way in to the run's shared state (rt.procs and the procs they
 * point to: inboxes, task lists, eventfds, timer owners; the goroutine
 * table) for a call that may come from a plain thread:
 *
 *     struct rproc *me;
 *     if (!run_enter(&me))
 *         return ...;             no run: touch nothing
 *     ... rt.procs[i], proc_post_task, ...
 *     run_exit(me);
 *
 * On a proc's thread (*me = tls_proc) the run is pinned already: it ends
 * only after every proc has left its loop.  A plain thread (*me = NULL) is
 * counted in rt.foreign_ops for the duration, and its call turns deadlock
 * detection off (note_foreign), as any plain thread's call does.  Handshake
 * with ringo_run's teardown:
 *
 *     plain thread                      ringo_run
 *     fetch_add(foreign_ops)            store(active, 0)
 *     smp (seq_cst)        <-------->   smp (seq_cst)
 *     load(active): 0 -> undo, fail     load(foreign_ops) until 0, then free
 *
 * Both seq_cst: either the thread sees active == 0 and touches nothing, or
 * the teardown sees it counted and waits for its run_exit.  Checking
 * rt.active alone is not enough: the run may end, and free the procs,
 * between the check and the touch.
 *
 * The teardown sleeps in futex(2) on foreign_ops while it is not 0 (a
 * plain thread's call may block: a ringo_dump to a full pipe), so the
 * thread whose decrement brings it to 0 while the teardown waits wakes it
 * (run_left).  The same handshake again, on rt.ops_sleeper, which the
 * teardown sets before it loads the count:
 *
 *     plain thread (run_leave)          ringo_run
 *     fetch_sub(foreign_ops) -> 0       store(ops_sleeper, 1)
 *     load(ops_sleeper): 1 -> wake      load(foreign_ops): 0 -> done
 *
 * All seq_cst: the thread sees the sleeper, or the teardown sees the
 * count at 0 (a futex(2) wait on a stale count returns at once).  Between
 * runs ops_sleeper is 0, and a call that finds no run makes no wake.
 *
 * run_enter_quiet pins the procs alike without note_foreign, for a call
 * that only reads and so cannot ready a goroutine (ringo_count). */
void run_left(void);

/* A plain thread's decrement of rt.foreign_ops (run_exit, or the undo of
 * run_enter_quiet): seq_cst, against the teardown's store of
 * rt.ops_sleeper, above (release would do for the touches of the procs
 * before it, which the teardown's seq_cst load acquires). */
static inline void run_leave(void)
{
    if (fetch_sub_seqcst(&rt.foreign_ops, 1) == 1 && load_seqcst(&rt.ops_sleeper))
        run_left();
}

static inline bool run_enter_quiet(struct rproc **me)
{
    struct rproc *p = tls_proc;
    *me = p;
    if (p)
        return true;
    fetch_add_seqcst(&rt.foreign_ops, 1);
    if (!load_seqcst(&rt.active)) {
        run_leave(); /* as run_exit */
        return false;
    }
    return true;
}

static inline bool run_enter(struct rproc **me)
{
    if (!run_enter_quiet(me))
        return false;
    if (!*me)
        note_foreign();
    return true;
}

static inline void run_exit(struct rproc *me)
{
    /* our touches of the procs happen before the teardown's free (it
     * loads foreign_ops with seq_cst, which acquires) */
    if (!me)
        run_leave();
}

static inline struct rg *self_g(void)
{
    struct rproc *p = tls_proc;
    return p ? p->cur : NULL;
}

/* note_foreign() does nothing on the runtime's own threads
 * (tls_runtime_thread: the signal thread), whose calls are accounted for
 * otherwise. */
extern __thread bool tls_runtime_thread;

/* signal.c: registrations of ringo_signal_notify (the deadlock check reads
 * it seq_cst: none is reported while a signal may still wake someone), and
 * the run's start and end (SIGPIPE ignored; registrations dropped). */
extern _Atomic int signal_regs;
int  signal_run_start(void);
void signal_proc_start(void);
void signal_proc_look(bool now); /* a proc out of work: signals sent to its own thread */
void dump_on_signal(int sig);
void signal_run_end(void);       /* also called by a run whose setup failed */

/* Module hooks (runtime.c "Module hooks"): what a module does at the
 * runtime's turning points, so that neither runtime.c nor the scheduler
 * loop names the modules one by one.  Any hook may be NULL. */
struct rhooks {
    /* p has nothing to run and is about to spin or sleep; p's thread.  It
     * may prepare SQEs (the sleep submits them) but must not reap. */
    void (*proc_idle)(struct rproc *p);
    /* p's loop is over and its ring is still set up; p's thread. */
    void (*proc_fini)(struct rproc *p);
    /* Every proc has been joined; before the goroutines a deadlock left
     * parked are abandoned.  The caller of ringo_run. */
    void (*run_end)(void);
};
extern const struct rhooks accept_hooks, close_hooks, epoll_hooks, fddeadline_hooks,
    futex_hooks, signal_hooks;
void hooks_proc_idle(struct rproc *p);
void hooks_proc_fini(struct rproc *p);
void hooks_run_end(void);

/* park/ready protocol (park.c; park_commit in sched.c) */
/* park_prepare is inline, at the end of this file. */
int  park_commit(struct rg *g, uint64_t token, int flags);
bool claim(struct rg *g, uint64_t token);
bool claim_from(struct rg *g, uint64_t token, uint64_t cur);
/* claim_expect (a waker that knows the wait's flags) is inline, at the
 * end of this file. */
void ready(struct rg *g, int result);

/* A goroutine's spin in place (sched.c "Spinning in place"), for a wait
 * that a peer on another proc ends by writing a word the goroutine
 * watches: its own park word (park_commit), or an unbuffered channel's
 * slot (chan.c "Meeting in the slot").  gspin_ok says whether the proc
 * would spin now (more than one proc, nothing else to run, a budget left);
 * gspin_begin starts the clock, bounded by the nearest timer and by
 * `deadline`;
 * the watcher then calls gspin_stop between its looks until the word
 * changes or it says stop (other work for the proc, or time), and
 * gspin_end with what the spin came to, for ringo_stats and the budget. */
struct gspin {
    uint64_t t0;        /* cpu_ticks() at the start */
    int64_t until;      /* now_ns() at which it times out */
    unsigned looks;
    bool timed_out;
};
bool gspin_ok(struct rproc *p);
void gspin_begin(struct rproc *p, struct gspin *s, int64_t deadline);
bool gspin_stop(struct rproc *p, struct gspin *s);
/* A peer has taken the word and its end is coming: wait for it, giving
 * the CPU up once the spin's time is over (the peer's thread may have
 * lost its own). */
void gspin_wait_peer(struct gspin *s);
/* woken: the peer ended the wait; other: the spin stopped for other work. */
void gspin_end(struct rproc *p, struct gspin *s, bool woken, bool other);

/* A closer waiting until `pending` other parties (procs running a task for
 * it, requests of theirs) are done: each calls close_wait_done, and the
 * last one readies g, parked with `token` (W_IO, not interruptible).  With
 * g NULL the waiter is a plain thread that polls pending with acquire.
 * Used by ringo_close (io.c, accept.c). */
struct close_wait {
    _Atomic int pending;        /* parties not finished yet (+1 for a plain thread, below) */
    struct rg *g;               /* NULL: a plain thread that polls pending */
    uint64_t token;
};

/* A plain thread closing a descriptor (io.c): memory for a task for a
 * proc, waiting for some rather than leave that proc's waiters parked
 * (NULL only once the run is stopping, which ends them itself).
 *
 * A plain thread's close_wait is on the heap (close_wait_plain_new): the
 * thread stops waiting when the run stops, and parties it posted may
 * still finish after that (a proc runs tasks and reaps completions while
 * it winds down; free_procs discards the rest, which counts them down
 * too).  So pending counts the thread as a party as well, and whoever
 * brings it to 0 frees it.  close_wait_plain waits until only the
 * thread's count is left, or the run stops, then drops it. */
void *close_task_alloc(size_t size);
struct close_wait *close_wait_plain_new(void); /* pending: the guard and the thread; NULL: stopping */
void close_wait_plain(struct close_wait *cw);
void close_wait_plain_free(struct close_wait *cw);

static inline void close_wait_done(struct close_wait *cw)
{
    /* Read before the decrement: once it is counted, a goroutine closer
     * may return and its frame (cw) go away. */
    struct rg *g = cw->g;
    uint64_t token = cw->token;
    /* acq_rel: the last finisher sees the others' work; ready() publishes
     * it to the closer (a plain thread polls with acquire) */
    if (fetch_sub_acq_rel(&cw->pending, 1) == 1) {
        if (g) {
            if (claim(g, token))
                ready(g, 0);
        } else {
            close_wait_plain_free(cw); /* a plain thread's, every party done */
        }
    }
}

/* Goroutine-level checks shared by every blocking call: -ECANCELED,
 * -ETIMEDOUT or 0.  Inline: every channel operation makes them, and the
 * common answer (no cancel, no deadline) is two loads and a compare. */

static inline bool g_cancelled(struct rg *g)
{
    /* relaxed: a cancel racing this check is caught by the park handshake
     * (park_prepare's seq_cst store against ringo_cancel's), not here */
    return load_relaxed(&g->cancel_id) == load_relaxed(&g->id);
}

static inline int block_check(struct rg *g)
{
    if (g_cancelled(g))
        return -ECANCELED;
    if (g_run(g)->deadline != RINGO_NEVER && deadline_passed(g_run(g)->deadline))
        return -ETIMEDOUT; /* timer.c "Reading the clock less" */
    return 0;
}

/* Spawn; proc < 0 picks the caller's proc (or round robin). */
int64_t spawn(int proc, bool bound, void (*fn)(void *), void *arg, void *creator);
int64_t spawn_main(void (*fn)(void *), void *arg);
/* Live goroutines (spawn.c "Counting the live"). */
int64_t live_count(void);
int64_t live_count_read(int64_t *outside); /* the same; *outside: rt.live as read */
/* After exits on p, with nothing left to run: end the run if none is live. */
void live_end_check(struct rproc *p);

/* Wake a proc that may be asleep in io_uring_enter. */
void proc_wake(struct rproc *target);
void proc_post_task(struct rproc *target, struct rtask *t);
void proc_init_tasks(struct rproc *p);
size_t runq_count(struct rproc *p);   /* ready goroutines queued on p; owner (runq.c) */

/* The scheduler loop of one proc thread; returns when the run stops. */
void proc_main(struct rproc *p);

/* Goroutine table (gtable.c). */
void gtable_fini(void);
int  gtable_init(void);
struct rg *gtable_lookup(int64_t id);
void gtable_foreach(void (*fn)(struct rg *g, void *arg), void *arg);
void gtable_reset_foreign(void);

/* engine_uring.c */
int  eng_setup(struct rproc *p);
void eng_teardown(struct rproc *p);
/* ring_sqe (a free SQE of p's ring, counted as submitted, owner only) is
 * inline, at the end of this file; ring_sqe_full is its case of a full
 * SQ. */
struct io_uring_sqe *ring_sqe_full(struct rproc *p);
void eng_reserve(struct rproc *p, unsigned n);
/* Park g until the CQE of sqe; returns its result.  Nothing but the CQE
 * ends the wait (a close: eng_wait; a futex wait).  obj names what it
 * waits on for ringo_dump (a futex word).  I/O that the deadline and
 * ringo_cancel end parks through io.c's io_wait. */
int  ring_wait_op_on(struct rproc *p, struct rg *g, struct io_uring_sqe *sqe, int reason,
                     const void *obj);
void eng_cancel_op(struct rproc *p, struct rop *op);
void rop_done(struct rproc *p, struct ring_rec *rec, int32_t res, uint32_t flags);
/* The next completion of p's ring, deferred ones first; false if none.
 * For reap, and for the end of a run (accept.c), which reads what is
 * left without dispatching it. */
bool ring_next_cqe(struct rproc *p, struct io_uring_cqe *out);
int  eng_poll(struct rproc *p, bool block, int64_t deadline);
void eng_flush(struct rproc *p);
void eng_wake(struct rproc *from, struct rproc *to);

/* offload.c: ringo_offload that also says whether fn was (or will be) run,
 * so a caller sharing arg with fn knows who releases it; and the end of a
 * run, which stops and joins the helper threads. */
int  offload_call(void (*fn)(void *), void *arg, bool *queued);
void offload_fini(void);
/* Run fn(arg), a call on descriptor fd (-1: none), on a helper, then
 * done(owner, arg, its result) on owner's thread (the epoll engine's
 * blocking calls); 0, -ENOMEM, -EAGAIN, or -EBADF while fd is being closed
 * (offload_io_close_begin: its close(2) may be done or not). */
int  offload_io(struct rproc *owner, int fd, int (*fn)(void *),
                void (*done)(struct rproc *, void *, int), void *arg);
/* An epoll operation's result when offload_io refused it, its descriptor
 * being closed: never made, it is made again once the close is done (io.c
 * io_wait), as an operation that meets a closing mark. */
#define ENG_CLOSING (-0x7fff1002)
/* ringo_close of fd on the epoll engine (offload.c "Engine jobs and
 * ringo_close"): begin, before the close(2), ends the calls queued for fd
 * with -EBADF and refuses new ones until end, after it; wait waits until
 * the calls on fd that were being made at begin have returned: a
 * goroutine g of proc p parks, a plain thread (g NULL) polls. */
struct offload_closing {
    struct rtask t;                 /* posted to owner by the last call's helper */
    struct offload_closing *next;   /* pool's list; under its lock */
    int fd;
    unsigned running;               /* calls on fd being made; under pool's lock */
    struct rproc *owner;            /* the waiting goroutine's, once it waits; under the lock */
    struct rg *g;
    uint64_t token;
};
void offload_io_close_begin(struct offload_closing *c);
void offload_io_close_wait(struct offload_closing *c, struct rproc *p, struct rg *g);
void offload_io_close_end(struct offload_closing *c);
/* Test seam: called on the helper thread as it begins a call on fd.
 * Atomic as close_seam is: a test clears it while helpers make calls. */
extern _Atomic(fd_seam_fn *) offload_io_seam;

/* accept.c: multishot accept.  acc_accept returns a descriptor, -errno, or
 * one of these (take the single-shot path instead). */
#define ACC_SINGLE   (-0x7fff0001)
#define ACC_FALLBACK (-0x7fff0002)
#define ACC_MARK_FDS 65536u
struct acceptor;
extern _Atomic uint64_t acc_marks[ACC_MARK_FDS / 64];
extern _Atomic int acc_mark_big;
int  acc_accept(struct rproc *p, struct rg *g, int fd, int flags);
bool acc_has(struct rproc *p, int fd, int flags); /* p has an acceptor for (fd, flags) */
void acc_left(struct rproc *p, int fd, int flags); /* a waiter woken by ACC_AGAIN left instead */
/* runtime.c: a seam for tests (check_sched.c), 0 in programs: cancel_flags
 * added to the engine probe's cancel by descriptor; an unknown one fails
 * it as a kernel before 5.19 does. */
extern unsigned uring_probe_cancel_seam;
/* engine_uring.c: a seam for tests (check_sync.c), 0 in programs: that
 * many submits made to find room in a full SQ, while the CQ has
 * completions, are answered -EBUSY, as a kernel that cannot flush its CQ
 * backlog answers them.  Set only while no run is in progress. */
extern unsigned submit_busy_seam;
unsigned acc_count(const struct rproc *p);        /* acceptors on p's list, retired ones too */
/* ringo_close of a marked fd: end every acceptor on it, on every proc.
 * From a goroutine, or from a plain thread that has pinned the run
 * (run_enter) and marked fd closing (close.c close_plain). */
void acc_release_fd(int fd);
void acc_run_reset(void);
/* A deadline of fd changed: wake p's multishot accepts waiting on it, to
 * start again with the new one (on p's thread). */
void acc_fd_deadline(struct rproc *p, int fd);
#define ACC_AGAIN    (-0x7fff0003)

/* May fd have acceptors (ringo_close's check)?  seq_cst: see acc_mark. */
static inline bool acc_fd_marked(int fd)
{
    if ((unsigned)fd < ACC_MARK_FDS)
        return (load_seqcst(&acc_marks[fd / 64]) >> (fd % 64)) & 1;
    return fd >= 0 && load_seqcst(&acc_mark_big);
}

/* fddeadline.c: per-descriptor deadlines.  fdl_get returns the earlier
 * of fd's deadlines for dirs (RINGO_READ|RINGO_WRITE) and its sequence
 * word: bits 0-29 count closes (modulo 2^30: an operation that saw a
 * multiple of 2^30 closes of its number while it waited would be made
 * again on the number's next file), bit 31 (FDL_PRESENT) says fd has an
 * entry at all (0: never given
 * a deadline, nor closed by ringo_close while operations waited on it),
 * and bit 30 (FDL_UNTRACKED) that fd lies past the table, where nothing
 * is counted.  fdl_close is ringo_close's (clears the deadlines, counts a
 * close where there is an entry: true), and fdl_close_cancels makes sure
 * of the count, making the entry, before the close cancels operations on
 * fd. */
#define FDL_CLOSE     0x1u
#define FDL_CLOSES    0x3fffffffu
#define FDL_UNTRACKED 0x40000000u
#define FDL_PRESENT   0x80000000u
#define FDL_PAGE_BITS 12
#define FDL_PAGES 256                   /* fds below 2^20 can have deadlines */
struct fdl;
extern _Atomic(struct fdl *) fdl_pages[FDL_PAGES];
int64_t fdl_get_slow(int fd, int dirs, uint32_t *seq);
/* Inline, for the I/O path: a descriptor whose page was never made (no
 * deadline was ever set near it) costs one load.  acquire: pairs with the
 * release CAS that publishes a page (its entries' initial values). */
static inline int64_t fdl_get(int fd, int dirs, uint32_t *seq)
{
    unsigned pg = (unsigned)fd >> FDL_PAGE_BITS;
    if (pg >= FDL_PAGES) {
        *seq = FDL_UNTRACKED;
        return RINGO_NEVER;
    }
    if (!load_acquire(&fdl_pages[pg])) {
        *seq = 0;
        return RINGO_NEVER;
    }
    return fdl_get_slow(fd, dirs, seq);
}
bool fdl_close(int fd);
void fdl_close_cancels(int fd, bool counted);
/* Was an operation that saw `then` when it parked and `now` after its
 * -ECANCELED ended by ringo_close of its descriptor?  Yes if a close was
 * counted meanwhile (an entry made since the park counts from 0): every
 * ringo_close that cancels operations counts itself first
 * (fdl_close_cancels), and past the table, where nothing is counted, any
 * cancel may be a close.  Otherwise the cancel came from a change of
 * deadline, or was meant for another descriptor of the same file (a dup:
 * io_uring cancels by file, engine.h eng_cancel_fd), and the call is to be
 * made again. */
static inline bool fdl_maybe_closed(uint32_t then, uint32_t now)
{
    return (now & FDL_UNTRACKED) || ((now & FDL_PRESENT) && ((then ^ now) & FDL_CLOSES));
}

/* watchdog.c: the period a run asks for (cfg, else RINGO_WATCHDOG_MS;
 * -EINVAL for a bad cfg->watchdog_ns); the signal and its handler, before
 * the procs start; each proc thread's part at its start and at the end of
 * its loop; the monitor thread, once every proc thread exists; and the
 * end, once every proc thread has been joined (also after a failed
 * start). */
int  watchdog_period(const struct ringo_config *cfg, int64_t *ns);
int  watchdog_setup(int64_t ns);
void watchdog_proc_start(struct rproc *p);
void watchdog_proc_exit(struct rproc *p);
int  watchdog_start(void);
void watchdog_end(void);

/* runtime.c */
void rt_stop(void);
void fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void bug(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void rt_check_deadlock(struct rproc *p);
void dump_all(int fd);

/* The proc's park clock (park.c "The park clock"), from a CLOCK_MONOTONIC
 * reading the caller has made anyway. */
static inline void proc_clock_set(struct rproc *p, int64_t now)
{
    p->clock_ms = (uint32_t)((now - rt.epoch_ns) / 1000000);
}
void proc_clock_coarse(struct rproc *p);

/* Fire p's timers that are due; the clock read for them sets the park
 * clock too.  After an engine's reap (eng_poll).  While the nearest timer
 * is more than clock_slack_ns past the coarse clock, none can be due, and
 * CLOCK_MONOTONIC is not read (timer.c "Reading the clock less"). */
static inline void proc_timers_run(struct rproc *p)
{
    if (p->timers.n) {
        int64_t now = now_coarse();
        if (timer_next(&p->timers) > now + clock_slack_ns) {
            proc_clock_set(p, now); /* park.c "The park clock" */
            return;
        }
        now = now_ns();
        proc_clock_set(p, now);
        timer_run(p, &p->timers, now);
    }
}
void *goroutine_creator(const struct rg *g);

/* Count an operation on fd (fdops.c); inline, since every I/O call
 * makes one.  The page pointer is read relaxed: only this proc, the
 * caller, ever stores it.  A page not yet there (or an fd past the table)
 * takes the slow path, which allocates it or counts the fd untracked. */
static inline _Atomic uint32_t *fdops_inc(struct rproc *p, int fd)
{
    unsigned pg = (unsigned)fd >> FDOPS_PAGE_BITS;
    _Atomic uint32_t *page = pg < FDOPS_PAGES ? load_relaxed(&p->fdops.page[pg]) : NULL;
    if (__builtin_expect(page == NULL, 0))
        return fdops_inc_slow(p, fd);
    _Atomic uint32_t *c = &page[(unsigned)fd & (FDOPS_PAGE_SIZE - 1)];
    store_relaxed(c, load_relaxed(c) + 1); /* relaxed load and store: the owner is the only writer */
    return c;
}

static inline void fdops_dec(_Atomic uint32_t *c)
{
    store_relaxed(c, load_relaxed(c) - 1); /* as in fdops_inc */
}

/* claim, for a waker that knows the flags the wait was prepared with:
 * one CAS from the word park_prepare stored.  When the goroutine parked
 * on another proc, a load before the CAS fetches its line shared and the
 * CAS fetches it once more to own it: two transfers of the line where
 * this makes one (runq.c "Lines of a hand-off").  A wrong guess (the wait
 * ended, or another began) costs nothing more than claim: the failed CAS
 * returns the word, and claim_from goes on from it.  Inline: a channel's
 * hand-off to a parked peer claims it (chan.c waiter_claim), and out of
 * line the call cost as much as the CAS's own instructions. */
static inline bool claim_expect(struct rg *g, uint64_t token, int flags)
{
    uint64_t cur = (token << PARK_SHIFT) | ((flags & PARK_INTERRUPTIBLE) ? PARK_INTR : 0);
    /* acq_rel: as in claim_from; on failure cur is the word, acquired */
    if (cas_acq_rel(&g->park, &cur, cur | PARK_CLAIMED))
        return true;
    return claim_from(g, token, cur);
}

/* liburing's io_uring_get_sqe for the rings ringo sets up, which have
 * neither SQPOLL (so the kernel moves the SQ head only inside this
 * thread's own io_uring_enter, and a plain read of it serves) nor SQE128;
 * the full SQ is ring_sqe_full's (engine_uring.c), which submits to make
 * room.  Inline: every I/O call takes one (engine.h eng_start), and the
 * call and liburing's tests of the setup flags were a third of the cost
 * of queueing an operation. */
static inline struct io_uring_sqe *ring_sqe(struct rproc *p)
{
    struct io_uring_sq *sq = &p->ring.sq;
    unsigned tail = sq->sqe_tail;
    if (__builtin_expect(tail + 1 - IO_URING_READ_ONCE(*sq->khead) > sq->ring_entries, 0))
        return ring_sqe_full(p);
    sq->sqe_tail = tail + 1;
    owner_add(p->unsubmitted, 1);
    stat_add(p->st.submissions, 1);
    return &sq->sqes[tail & sq->ring_mask];
}

/* Begin a wait of g (the running goroutine, its own proc): a new token in
 * the park word, and the wait's records reset (park.c "Park / claim /
 * ready").  Inline: every wait makes one, and the call's frame cost a
 * tenth of what a ringo_recv runs of its own. */
static inline __attribute__((always_inline)) uint64_t park_prepare(struct rg *g, int reason, int flags)
{
    struct rg_cold *c = g->cold; /* once: the atomics below would make each use load it again */
    uint64_t token = ++c->run.park_seq;
    /* relaxed: read only by dumps (runtime.c dump_one) */
    store_relaxed(&g->reason, (uint8_t)reason);
    store_relaxed(&c->wait.wait_obj, NULL);
    store_relaxed(&c->run.wait_fd, -1);
    /* The park clock (park.c), not a clock read: this is the hot path. */
    store_relaxed(&c->wait.parked_ms, load_relaxed(&g->p)->clock_ms);
    c->run.wake_at = (flags & PARK_INTERRUPTIBLE) ? c->run.deadline : RINGO_NEVER;
    c->run.wake_at_result = -ETIMEDOUT;
    c->wait.io_op = NULL;
    store_relaxed(&g->park, (token << PARK_SHIFT) | ((flags & PARK_INTERRUPTIBLE) ? PARK_INTR : 0));
    /* The store half of the park/cancel handshake (park.c, top), and (A)
     * of the fd deadline one (fddeadline.c): a full barrier after the park
     * word and whatever the caller stored before (its fdops count), ahead
     * of the loads that follow (cancel_id, the fd's deadline).  On x86 it
     * costs what the seq_cst store it replaces did (a locked instruction). */
    smp_mb();
    return token;
}

#endif /* RINGO_INTERNAL_H */
