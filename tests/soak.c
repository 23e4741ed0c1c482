/*
 * soak.c — a long, mixed workload for `make soak` (never part of make check).
 *
 * It runs the same round again and again: one ringo_run in which channels,
 * select, the sync objects, timers, pipes, loopback TCP and plain threads
 * all work at once, each part checking exact invariants (every value
 * received exactly once, sums and counts, what select says it did against
 * what the receivers got, no torn RWMutex read, Once ran once).  Rounds
 * repeat for SOAK_SECONDS (default 60) on each proc count of SOAK_PROCS
 * (default "1 2 8": 8 is more procs than most test machines have CPUs).
 * Between rounds, outside any run, it checks that the process is back where
 * it started: exactly as many open descriptors and threads (less the
 * kernel's io_uring workers, which leave on their own) as before the first
 * run, that ringo_stats counted every spawn and no goroutine left,
 * and resident memory, the heap in use and the number of memory mappings
 * within a stated bound of what they were after the first round of that
 * proc count: 8 MiB (SOAK_RSS_SLACK_KIB), 256 KiB (SOAK_HEAP_SLACK_KIB)
 * and 64 mappings (SOAK_MAPS_SLACK).  A round makes about 2000 goroutines,
 * 150 channels and 30 descriptors, so a leak of any of them per round
 * crosses these bounds within a few dozen rounds, while the allocator's
 * and the kernel's own slack (a few hundred KiB of RSS, tens of KiB of
 * heap, seen over 60 s runs) stays well inside them (an AddressSanitizer
 * build checks none of the three: its quarantine and allocator grow by
 * design).  SOAK_SEED fixes the random choices of a run (the scheduling
 * stays the machine's); the seed is printed at the start and with any
 * failure.
 *
 * Every loop of work is bounded by a count, and every wait is for
 * something the round is bound to do, so a round ends by itself; a watchdog
 * thread (which never calls into ringo except for the dump) aborts with a
 * goroutine dump if no round has finished for SOAK_HANG_SECONDS (default
 * 300): a hang is a failure, reported, not waited out.  Any broken
 * invariant prints what it saw, the proc count, round and seed, and aborts.
 *
 * Shared counters are C11 atomics with the default (sequentially
 * consistent) order: this is a test, and its counters are read only after
 * the goroutines and threads that wrote them have been joined through a
 * WaitGroup or pthread_join, which order them anyway.
 */
#define _GNU_SOURCE 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ringo.h>

#define MS 1000000LL
#define US 1000LL

/* ------------------------------------------------------------------ */
/* reporting */

static unsigned cur_procs;            /* the proc count of this round */
static unsigned long cur_round;       /* rounds started on this proc count */
static uint64_t base_seed;            /* SOAK_SEED, or from the clock */
static _Atomic(const char *) phase = "start";

static _Noreturn void fail(const char *file, int line, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static _Noreturn void fail(const char *file, int line, const char *what, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "soak: FAILED at %s:%d: %s: ", file, line, what);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (procs %u, round %lu, SOAK_SEED=%" PRIu64 ", phase %s)\n", cur_procs,
            cur_round, base_seed, atomic_load(&phase));
    fflush(stderr);
    abort();
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                          \
    } while (0)

/* ------------------------------------------------------------------ */
/* random choices: splitmix64, one stream per goroutine or thread */

struct rng { uint64_t s; };

static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static struct rng rng_for(uint64_t stream)
{
    struct rng r = { base_seed ^ (cur_round * 0x100000001b3ull) ^ (stream * 0xff51afd7ed558ccdull) };
    rng_next(&r);
    return r;
}

static unsigned rng_below(struct rng *r, unsigned n)
{
    return (unsigned)(rng_next(r) % n);
}

/* ------------------------------------------------------------------ */
/* goroutines and plain threads */

static atomic_long spawned; /* successful ringo_go/ringo_go_on calls this round */

static void go(void (*fn)(void *), void *arg)
{
    int64_t id = ringo_go(fn, arg);
    CHECK(id > 0, "ringo_go: %" PRId64, id);
    atomic_fetch_add(&spawned, 1);
}

static void go_on(unsigned proc, void (*fn)(void *), void *arg)
{
    int64_t id = ringo_go_on((int)(proc % cur_procs), fn, arg);
    CHECK(id > 0, "ringo_go_on(%u): %" PRId64, proc % cur_procs, id);
    atomic_fetch_add(&spawned, 1);
}

/* Plain threads this round.  Each makes a first call into ringo before
 * anything else and the creating goroutine waits for it (deadlock detection
 * stays on until a plain thread's first call: a goroutine waiting for a
 * thread that has not called in yet could rightly be reported). */
#define MAX_THREADS 16

struct thread_job { void (*fn)(void *); void *arg; atomic_int called_in; };

static pthread_t threads[MAX_THREADS];
static struct thread_job thread_jobs[MAX_THREADS];
static int nthreads;

static void *thread_main(void *p)
{
    struct thread_job *j = p;
    ringo_chan_try_recv(NULL, NULL); /* the first call into ringo */
    atomic_store(&j->called_in, 1);
    j->fn(j->arg);
    return NULL;
}

static void thread_start(void (*fn)(void *), void *arg)
{
    CHECK(nthreads < MAX_THREADS, "more than %d threads", MAX_THREADS);
    struct thread_job *j = &thread_jobs[nthreads];
    j->fn = fn;
    j->arg = arg;
    atomic_store(&j->called_in, 0);
    int r = pthread_create(&threads[nthreads], NULL, thread_main, j);
    CHECK(r == 0, "pthread_create: %s", strerror(r));
    nthreads++;
    while (!atomic_load(&j->called_in))
        ringo_sleep(100 * US);
}

/* In a goroutine, let others run; on a plain thread, let other threads. */
static void yield_any(void)
{
    if (ringo_id() > 0)
        ringo_yield();
    else
        sched_yield();
}

/* Every part of a round, goroutine or thread, is done on this. */
static ringo_waitgroup all;

/* ------------------------------------------------------------------ */
/* A: many producers (goroutines and threads) into an unbuffered and a
 * buffered channel, consumers selecting over both and a ticker; every value
 * must arrive exactly once. */

#define A_GO_PRODUCERS 8
#define A_THREAD_PRODUCERS 2
#define A_SOURCES (A_GO_PRODUCERS + A_THREAD_PRODUCERS)
#define A_PER 1500
#define A_CONSUMERS 4            /* goroutines; one more consumer is a thread */
#define A_VALUES (A_SOURCES * A_PER)

static struct {
    ringo_chan *unbuf, *buf;
    ringo_waitgroup producers;
    _Atomic uint8_t seen[A_VALUES];
    atomic_long received, ticks;
    atomic_ullong sum;
} a;

static void a_producer(void *arg)
{
    unsigned src = (unsigned)(uintptr_t)arg;
    struct rng r = rng_for(100 + src);
    for (unsigned i = 0; i < A_PER; i++) {
        int64_t v = (int64_t)src * A_PER + i + 1;
        ringo_chan *c = rng_next(&r) & 1 ? a.unbuf : a.buf;
        int e = (rng_below(&r, 8) == 0) ? ringo_chan_try_send(c, &v) : -EAGAIN;
        if (e == -EAGAIN)
            e = ringo_chan_send(c, &v);
        CHECK(e == 0, "send: %d", e);
    }
    ringo_waitgroup_done(&a.producers);
    ringo_waitgroup_done(&all);
}

static void a_closer(void *arg)
{
    (void)arg;
    ringo_waitgroup_wait(&a.producers);
    CHECK(ringo_chan_close(a.unbuf) == 0, "close");
    CHECK(ringo_chan_close(a.buf) == 0, "close");
    ringo_waitgroup_done(&all);
}

static void a_consumer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    struct rng r = rng_for(200 + id);
    ringo_chan *tick = ringo_tick((int64_t)(500 + rng_below(&r, 1500)) * US);
    CHECK(tick != NULL, "ringo_tick: %s", strerror(errno));
    ringo_chan *chans[2] = { a.unbuf, a.buf };
    int64_t last_tick = 0;
    while (chans[0] || chans[1]) {
        int64_t v = 0, t = 0;
        struct ringo_case cs[3] = {
            { .chan = chans[0], .op = RINGO_RECV, .elem = &v },
            { .chan = chans[1], .op = RINGO_RECV, .elem = &v },
            { .chan = tick, .op = RINGO_RECV, .elem = &t },
        };
        int k = ringo_select(cs, 3, 0);
        CHECK(k >= 0 && k < 3, "select: %d", k);
        if (k == 2) {
            CHECK(t > last_tick, "tick %" PRId64 " after %" PRId64, t, last_tick);
            last_tick = t;
            atomic_fetch_add(&a.ticks, 1);
            continue;
        }
        if (cs[k].err == -EPIPE) {
            CHECK(v == 0, "closed channel gave %" PRId64, v);
            chans[k] = NULL; /* Go's nil channel: never ready again */
            continue;
        }
        CHECK(cs[k].err == 0, "case err %d", cs[k].err);
        CHECK(v >= 1 && v <= A_VALUES, "value %" PRId64 " out of range", v);
        uint8_t before = atomic_fetch_add(&a.seen[v - 1], 1);
        CHECK(before == 0, "value %" PRId64 " received twice", v);
        atomic_fetch_add(&a.received, 1);
        atomic_fetch_add(&a.sum, (unsigned long long)v);
    }
    ringo_tick_stop(tick);
    ringo_waitgroup_done(&all);
}

static void a_start(void)
{
    a.unbuf = ringo_chan_make(sizeof(int64_t), 0);
    a.buf = ringo_chan_make(sizeof(int64_t), 64);
    CHECK(a.unbuf && a.buf, "ringo_chan_make");
    memset(&a.producers, 0, sizeof a.producers);
    for (unsigned i = 0; i < A_VALUES; i++)
        atomic_store(&a.seen[i], 0);
    atomic_store(&a.received, 0);
    atomic_store(&a.ticks, 0);
    atomic_store(&a.sum, 0);
    ringo_waitgroup_add(&a.producers, A_SOURCES);
    ringo_waitgroup_add(&all, A_SOURCES + 1 + A_CONSUMERS + 1);
    for (unsigned i = 0; i < A_CONSUMERS; i++)
        go_on(i, a_consumer, (void *)(uintptr_t)i);
    thread_start(a_consumer, (void *)(uintptr_t)A_CONSUMERS);
    for (unsigned i = 0; i < A_GO_PRODUCERS; i++)
        go_on(i + 1, a_producer, (void *)(uintptr_t)i);
    for (unsigned i = A_GO_PRODUCERS; i < A_SOURCES; i++)
        thread_start(a_producer, (void *)(uintptr_t)i);
    go(a_closer, NULL);
}

static void a_check(void)
{
    CHECK(atomic_load(&a.received) == A_VALUES, "received %ld of %d", atomic_load(&a.received),
          A_VALUES);
    for (unsigned i = 0; i < A_VALUES; i++)
        CHECK(atomic_load(&a.seen[i]) == 1, "value %u seen %u times", i + 1,
              (unsigned)atomic_load(&a.seen[i]));
    unsigned long long n = A_VALUES;
    CHECK(atomic_load(&a.sum) == n * (n + 1) / 2, "sum %llu", atomic_load(&a.sum));
    ringo_chan_release(a.unbuf);
    ringo_chan_release(a.buf);
}

/* ------------------------------------------------------------------ */
/* B: a distributor hands values to workers through select SEND cases (some
 * with RINGO_NONBLOCK first), beside a ringo_after case it re-arms when it
 * fires; what select said it sent on each case must be what each worker
 * received. */

#define B_WORKERS 4
#define B_VALUES 6000

static struct {
    ringo_chan *w[B_WORKERS];
    long sent_on[B_WORKERS];                /* distributor only */
    atomic_long got_on[B_WORKERS];
    atomic_ullong sum;
    atomic_long afters;
} b;

static void b_distributor(void *arg)
{
    (void)arg;
    struct rng r = rng_for(300);
    int64_t d = (int64_t)(200 + rng_below(&r, 800)) * US;
    int64_t armed = ringo_now();
    ringo_chan *after = ringo_after(d);
    CHECK(after != NULL, "ringo_after");
    for (int64_t v = 1; v <= B_VALUES;) {
        int64_t fired = 0;
        struct ringo_case cs[B_WORKERS + 1];
        for (unsigned j = 0; j < B_WORKERS; j++)
            cs[j] = (struct ringo_case){ .chan = b.w[j], .op = RINGO_SEND, .elem = &v };
        cs[B_WORKERS] = (struct ringo_case){ .chan = after, .op = RINGO_RECV, .elem = &fired };
        int k = -EAGAIN;
        if (rng_below(&r, 4) == 0)
            k = ringo_select(cs, B_WORKERS + 1, RINGO_NONBLOCK);
        if (k == -EAGAIN)
            k = ringo_select(cs, B_WORKERS + 1, 0);
        CHECK(k >= 0 && k <= B_WORKERS, "select: %d", k);
        CHECK(cs[k].err == 0, "case %d err %d", k, cs[k].err);
        if (k == B_WORKERS) {
            CHECK(fired >= armed + d, "ringo_after(%" PRId64 ") fired %" PRId64 " ns early", d,
                  armed + d - fired);
            atomic_fetch_add(&b.afters, 1);
            ringo_chan_release(after);
            d = (int64_t)(200 + rng_below(&r, 800)) * US;
            armed = ringo_now();
            after = ringo_after(d);
            CHECK(after != NULL, "ringo_after");
            continue;
        }
        b.sent_on[k]++;
        v++;
    }
    ringo_chan_release(after); /* an unfired timer keeps its own reference */
    for (unsigned j = 0; j < B_WORKERS; j++)
        CHECK(ringo_chan_close(b.w[j]) == 0, "close");
    ringo_waitgroup_done(&all);
}

static void b_worker(void *arg)
{
    unsigned j = (unsigned)(uintptr_t)arg;
    int64_t v;
    int e;
    while ((e = ringo_chan_recv(b.w[j], &v)) == 0) {
        atomic_fetch_add(&b.got_on[j], 1);
        atomic_fetch_add(&b.sum, (unsigned long long)v);
    }
    CHECK(e == -EPIPE, "recv: %d", e);
    ringo_waitgroup_done(&all);
}

static void b_start(void)
{
    atomic_store(&b.sum, 0);
    atomic_store(&b.afters, 0);
    ringo_waitgroup_add(&all, 1 + B_WORKERS);
    for (unsigned j = 0; j < B_WORKERS; j++) {
        b.w[j] = ringo_chan_make(sizeof(int64_t), j & 1); /* unbuffered and cap 1 */
        CHECK(b.w[j] != NULL, "ringo_chan_make");
        b.sent_on[j] = 0;
        atomic_store(&b.got_on[j], 0);
        go_on(j + 2, b_worker, (void *)(uintptr_t)j);
    }
    go_on(0, b_distributor, NULL);
}

static void b_check(void)
{
    long total = 0;
    for (unsigned j = 0; j < B_WORKERS; j++) {
        CHECK(atomic_load(&b.got_on[j]) == b.sent_on[j], "worker %u got %ld, select sent %ld", j,
              atomic_load(&b.got_on[j]), b.sent_on[j]);
        total += b.sent_on[j];
        ringo_chan_release(b.w[j]);
    }
    CHECK(total == B_VALUES, "sent %ld", total);
    unsigned long long n = B_VALUES;
    CHECK(atomic_load(&b.sum) == n * (n + 1) / 2, "sum %llu", atomic_load(&b.sum));
}

/* ------------------------------------------------------------------ */
/* C: Mutex (lock and trylock) around a plain counter with a yield inside
 * the critical section; RWMutex writers updating two fields that readers
 * must never see apart; Once called by all of them (each fn must have
 * finished before any once_do returns); a Cond-based bounded queue; and a
 * WaitGroup with several waiters at once. */

#define C_LOCKERS 12             /* goroutines; one more is a thread */
#define C_LOCKS 1500
#define C_WRITERS 3
#define C_WRITES 400
#define C_READERS 6              /* goroutines; one more is a thread */
#define C_READS 1200
#define C_ONCES 4
#define C_QCAP 8
#define C_QPRODUCERS 4           /* the last is a thread */
#define C_QPER 1500
#define C_QCONSUMERS 3
#define C_WG_N 64
#define C_WG_WAITERS 3           /* the last is a thread */

static struct {
    ringo_mutex mu;
    long counter;                       /* under mu */
    ringo_rwmutex rw;
    long rw_a, rw_b;                    /* under rw */
    atomic_long torn, reads;
    ringo_once once[C_ONCES];
    int once_runs[C_ONCES];             /* written by the Once fn only */
    atomic_int once_done[C_ONCES];      /* set at the end of the Once fn */
    ringo_mutex qmu;
    ringo_cond not_empty, not_full;
    int64_t q[C_QCAP];                  /* under qmu */
    unsigned qhead, qlen;               /* under qmu */
    long popped;                        /* under qmu */
    atomic_ullong qsum;
    ringo_waitgroup wg;
    atomic_int wg_count, wg_waited;
} c;

static void c_once_fn(void *arg)
{
    unsigned k = (unsigned)(uintptr_t)arg;
    c.once_runs[k]++;
    yield_any(); /* others calling once_do now must wait for this */
    atomic_store(&c.once_done[k], 1);
}

static void c_call_onces(void)
{
    for (unsigned k = 0; k < C_ONCES; k++) {
        ringo_once_do(&c.once[k], c_once_fn, (void *)(uintptr_t)k);
        CHECK(atomic_load(&c.once_done[k]) == 1, "once_do %u returned before its fn ended", k);
    }
}

static void c_locker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    struct rng r = rng_for(400 + id);
    c_call_onces();
    for (unsigned i = 0; i < C_LOCKS; i++) {
        if (rng_below(&r, 4) == 0) {
            while (ringo_mutex_trylock(&c.mu) != 0)
                yield_any();
        } else {
            ringo_mutex_lock(&c.mu);
        }
        long x = c.counter;
        if (rng_below(&r, 32) == 0)
            yield_any();
        c.counter = x + 1;
        ringo_mutex_unlock(&c.mu);
    }
    ringo_waitgroup_done(&all);
}

static void c_writer(void *arg)
{
    (void)arg;
    c_call_onces();
    for (unsigned i = 0; i < C_WRITES; i++) {
        ringo_rwmutex_lock(&c.rw);
        c.rw_a++;
        yield_any();
        c.rw_b++;
        ringo_rwmutex_unlock(&c.rw);
    }
    ringo_waitgroup_done(&all);
}

static void c_reader(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    struct rng r = rng_for(500 + id);
    for (unsigned i = 0; i < C_READS; i++) {
        ringo_rwmutex_rlock(&c.rw);
        long x = c.rw_a;
        if (rng_below(&r, 8) == 0)
            yield_any();
        long y = c.rw_b;
        ringo_rwmutex_runlock(&c.rw);
        if (x != y)
            atomic_fetch_add(&c.torn, 1);
        atomic_fetch_add(&c.reads, 1);
    }
    ringo_waitgroup_done(&all);
}

static void c_qproducer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    for (unsigned i = 0; i < C_QPER; i++) {
        int64_t v = (int64_t)id * C_QPER + i + 1;
        ringo_mutex_lock(&c.qmu);
        while (c.qlen == C_QCAP)
            ringo_cond_wait(&c.not_full, &c.qmu);
        c.q[(c.qhead + c.qlen) % C_QCAP] = v;
        c.qlen++;
        ringo_cond_signal(&c.not_empty);
        ringo_mutex_unlock(&c.qmu);
    }
    ringo_waitgroup_done(&all);
}

static void c_qconsumer(void *arg)
{
    (void)arg;
    const long total = (long)C_QPRODUCERS * C_QPER;
    ringo_mutex_lock(&c.qmu);
    for (;;) {
        while (c.qlen == 0 && c.popped < total)
            ringo_cond_wait(&c.not_empty, &c.qmu);
        if (c.qlen == 0)
            break; /* everything has been popped */
        int64_t v = c.q[c.qhead];
        c.qhead = (c.qhead + 1) % C_QCAP;
        c.qlen--;
        c.popped++;
        atomic_fetch_add(&c.qsum, (unsigned long long)v);
        if (c.popped == total)
            ringo_cond_broadcast(&c.not_empty); /* the other consumers stop */
        ringo_cond_signal(&c.not_full);
        if (c.popped % 16 == 0) { /* let a producer in between pops */
            ringo_mutex_unlock(&c.qmu);
            yield_any();
            ringo_mutex_lock(&c.qmu);
        }
    }
    ringo_mutex_unlock(&c.qmu);
    ringo_waitgroup_done(&all);
}

static void c_wg_member(void *arg)
{
    (void)arg;
    atomic_fetch_add(&c.wg_count, 1);
    ringo_waitgroup_done(&c.wg);
}

static void c_wg_waiter(void *arg)
{
    (void)arg;
    ringo_waitgroup_wait(&c.wg);
    CHECK(atomic_load(&c.wg_count) == C_WG_N, "WaitGroup wait returned at %d of %d",
          atomic_load(&c.wg_count), C_WG_N);
    atomic_fetch_add(&c.wg_waited, 1);
    ringo_waitgroup_done(&all);
}

static void c_start(void)
{
    memset(&c, 0, sizeof c); /* every object back to its zero, ready state */
    ringo_waitgroup_add(&all, C_LOCKERS + 1 + C_WRITERS + C_READERS + 1 + C_QPRODUCERS +
                                  C_QCONSUMERS + C_WG_WAITERS);
    for (unsigned i = 0; i < C_LOCKERS; i++)
        go_on(i, c_locker, (void *)(uintptr_t)i);
    thread_start(c_locker, (void *)(uintptr_t)C_LOCKERS);
    for (unsigned i = 0; i < C_WRITERS; i++)
        go_on(i + 1, c_writer, NULL);
    for (unsigned i = 0; i < C_READERS; i++)
        go_on(i, c_reader, (void *)(uintptr_t)i);
    thread_start(c_reader, (void *)(uintptr_t)C_READERS);
    for (unsigned i = 0; i < C_QCONSUMERS; i++)
        go_on(i + 2, c_qconsumer, NULL);
    for (unsigned i = 0; i + 1 < C_QPRODUCERS; i++)
        go_on(i, c_qproducer, (void *)(uintptr_t)i);
    thread_start(c_qproducer, (void *)(uintptr_t)(C_QPRODUCERS - 1));
    ringo_waitgroup_add(&c.wg, C_WG_N);
    for (unsigned i = 0; i + 1 < C_WG_WAITERS; i++)
        go_on(i, c_wg_waiter, NULL);
    thread_start(c_wg_waiter, NULL);
    for (unsigned i = 0; i < C_WG_N; i++)
        go_on(i, c_wg_member, NULL);
}

static void c_check(void)
{
    CHECK(c.counter == (long)(C_LOCKERS + 1) * C_LOCKS, "mutex counter %ld", c.counter);
    CHECK(c.rw_a == C_WRITERS * C_WRITES && c.rw_b == c.rw_a, "rwmutex fields %ld %ld", c.rw_a,
          c.rw_b);
    CHECK(atomic_load(&c.torn) == 0, "%ld torn reads", atomic_load(&c.torn));
    CHECK(atomic_load(&c.reads) == (C_READERS + 1) * C_READS, "reads %ld", atomic_load(&c.reads));
    for (unsigned k = 0; k < C_ONCES; k++)
        CHECK(c.once_runs[k] == 1, "once %u ran %d times", k, c.once_runs[k]);
    unsigned long long n = (unsigned long long)C_QPRODUCERS * C_QPER;
    CHECK(c.popped == (long)n && c.qlen == 0, "queue popped %ld, left %u", c.popped, c.qlen);
    CHECK(atomic_load(&c.qsum) == n * (n + 1) / 2, "queue sum %llu", atomic_load(&c.qsum));
    CHECK(atomic_load(&c.wg_waited) == C_WG_WAITERS, "WaitGroup waiters %d",
          atomic_load(&c.wg_waited));
}

/* ------------------------------------------------------------------ */
/* D: timers.  Sleeps never end early; each ringo_after fires once, with a
 * time no earlier than asked; unfired afters are released at once (the
 * timer holds its own reference); a ticker's values increase; deadlines end
 * a receive and an empty select with -ETIMEDOUT.  A plain thread takes
 * part with ringo_after and a blocking receive. */

#define D_SLEEPERS 12
#define D_SLEEPS 12
#define D_AFTERS 12              /* goroutines; one more is a thread */

static struct {
    atomic_long sleeps, afters, dropped, ticks, timeouts;
} d;

static void d_sleeper(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    struct rng r = rng_for(600 + id);
    for (unsigned i = 0; i < D_SLEEPS; i++) {
        int64_t ns = (int64_t)rng_below(&r, 2000) * US;
        int64_t t0 = ringo_now();
        int e = rng_below(&r, 2) ? ringo_sleep(ns) : ringo_sleep_until(t0 + ns);
        CHECK(e == 0, "sleep: %d", e);
        CHECK(ringo_now() >= t0 + ns, "sleep of %" PRId64 " ns ended %" PRId64 " ns early", ns,
              t0 + ns - ringo_now());
        atomic_fetch_add(&d.sleeps, 1);
    }
    ringo_waitgroup_done(&all);
}

static void d_after(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    struct rng r = rng_for(700 + id);
    for (unsigned i = 0; i < 4; i++) {
        /* one released before it fires: nobody references it, so the
         * release stops it */
        ringo_chan *gone = ringo_after((int64_t)rng_below(&r, 1000) * US);
        CHECK(gone != NULL, "ringo_after");
        ringo_chan_release(gone);
        atomic_fetch_add(&d.dropped, 1);

        int64_t ns = (int64_t)(1 + rng_below(&r, 1500)) * US;
        int64_t t0 = ringo_now();
        ringo_chan *t = ringo_after(ns);
        CHECK(t != NULL, "ringo_after");
        int64_t fired = 0;
        CHECK(ringo_chan_recv(t, &fired) == 0, "recv from ringo_after");
        CHECK(fired >= t0 + ns && fired <= ringo_now(), "ringo_after(%" PRId64 ") fired at %+" PRId64,
              ns, fired - t0);
        CHECK(ringo_chan_try_recv(t, &fired) == -EAGAIN, "ringo_after fired twice");
        ringo_chan_release(t);
        atomic_fetch_add(&d.afters, 1);
    }
    ringo_waitgroup_done(&all);
}

static void d_ticker(void *arg)
{
    (void)arg;
    ringo_chan *t = ringo_tick(300 * US);
    CHECK(t != NULL, "ringo_tick");
    int64_t last = 0;
    for (unsigned i = 0; i < 20; i++) {
        int64_t v;
        CHECK(ringo_chan_recv(t, &v) == 0, "recv from ticker");
        CHECK(v > last, "tick %" PRId64 " after %" PRId64, v, last);
        last = v;
        atomic_fetch_add(&d.ticks, 1);
    }
    ringo_tick_stop(t);
    ringo_waitgroup_done(&all);
}

static void d_deadlines(void *arg)
{
    (void)arg;
    ringo_chan *never = ringo_chan_make(sizeof(int64_t), 0);
    CHECK(never != NULL, "ringo_chan_make");
    int64_t v;
    for (unsigned i = 0; i < 8; i++) {
        ringo_deadline_set(ringo_now() + (int64_t)(i % 3) * 200 * US);
        int e = (i & 1) ? ringo_chan_recv(never, &v) : ringo_select(NULL, 0, 0);
        CHECK(e == -ETIMEDOUT, "wait past the deadline: %d", e);
        atomic_fetch_add(&d.timeouts, 1);
    }
    ringo_deadline_set(RINGO_NEVER);
    ringo_chan_release(never);
    ringo_waitgroup_done(&all);
}

static void d_start(void)
{
    atomic_store(&d.sleeps, 0);
    atomic_store(&d.afters, 0);
    atomic_store(&d.dropped, 0);
    atomic_store(&d.ticks, 0);
    atomic_store(&d.timeouts, 0);
    ringo_waitgroup_add(&all, D_SLEEPERS + D_AFTERS + 1 + 1 + 1);
    for (unsigned i = 0; i < D_SLEEPERS; i++)
        go_on(i, d_sleeper, (void *)(uintptr_t)i);
    for (unsigned i = 0; i < D_AFTERS; i++)
        go_on(i + 1, d_after, (void *)(uintptr_t)i);
    thread_start(d_after, (void *)(uintptr_t)D_AFTERS);
    go_on(3, d_ticker, NULL);
    go_on(4, d_deadlines, NULL);
}

static void d_check(void)
{
    CHECK(atomic_load(&d.sleeps) == D_SLEEPERS * D_SLEEPS, "sleeps %ld", atomic_load(&d.sleeps));
    CHECK(atomic_load(&d.afters) == (D_AFTERS + 1) * 4, "afters %ld", atomic_load(&d.afters));
    CHECK(atomic_load(&d.dropped) == (D_AFTERS + 1) * 4, "dropped %ld", atomic_load(&d.dropped));
    CHECK(atomic_load(&d.ticks) == 20, "ticks %ld", atomic_load(&d.ticks));
    CHECK(atomic_load(&d.timeouts) == 8, "timeouts %ld", atomic_load(&d.timeouts));
}

/* ------------------------------------------------------------------ */
/* E: pipes.  Writers send a pseudo-random byte stream in chunks of random
 * size, readers on another proc check every byte and the total; one writer
 * is a plain thread.  A goroutine blocked reading an idle pipe is
 * cancelled, and one reading with a deadline times out. */

#define E_PAIRS 4                /* goroutine writers; one more is a thread */
#define E_BYTES (192 * 1024)

static struct {
    int fds[E_PAIRS + 1][2];
    atomic_long bytes;
    int idle[2];
    atomic_int idle_started;
    atomic_long idle_result;
    int64_t idle_id;
} e;

/* Byte i of stream s: the same on both sides. */
static uint8_t e_byte(unsigned s, size_t i)
{
    uint64_t z = (base_seed + cur_round) ^ ((uint64_t)s << 40) ^ (i / 8);
    z = (z ^ (z >> 31)) * 0x7fb5d329728ea185ull;
    z = (z ^ (z >> 27)) * 0x81dadef4bc2dd44dull;
    z ^= z >> 33;
    return (uint8_t)(z >> (8 * (i % 8)));
}

static void e_writer(void *arg)
{
    unsigned s = (unsigned)(uintptr_t)arg;
    struct rng r = rng_for(800 + s);
    uint8_t buf[8192]; /* on the goroutine's stack: goroutines share their proc's TLS */
    size_t off = 0;
    while (off < E_BYTES) {
        size_t n = 1 + rng_below(&r, sizeof buf);
        if (n > E_BYTES - off)
            n = E_BYTES - off;
        for (size_t i = 0; i < n; i++)
            buf[i] = e_byte(s, off + i);
        ssize_t w = ringo_write_all(e.fds[s][1], buf, n);
        CHECK(w == (ssize_t)n, "write_all %zd of %zu", w, n);
        off += n;
    }
    CHECK(ringo_close(e.fds[s][1]) == 0, "close");
    ringo_waitgroup_done(&all);
}

static void e_reader(void *arg)
{
    unsigned s = (unsigned)(uintptr_t)arg;
    struct rng r = rng_for(900 + s);
    uint8_t buf[8192];
    size_t off = 0;
    ssize_t n;
    while ((n = ringo_read(e.fds[s][0], buf, 1 + rng_below(&r, sizeof buf))) > 0) {
        for (ssize_t i = 0; i < n; i++)
            CHECK(buf[i] == e_byte(s, off + (size_t)i), "stream %u byte %zu differs", s,
                  off + (size_t)i);
        off += (size_t)n;
    }
    CHECK(n == 0, "read: %zd", n);
    CHECK(off == E_BYTES, "stream %u: %zu bytes", s, off);
    atomic_fetch_add(&e.bytes, (long)off);
    CHECK(ringo_close(e.fds[s][0]) == 0, "close");
    ringo_waitgroup_done(&all);
}

static void e_idle_reader(void *arg)
{
    (void)arg;
    char ch;
    atomic_store(&e.idle_started, 1);
    atomic_store(&e.idle_result, (long)ringo_read(e.idle[0], &ch, 1));
    /* cancellation is permanent: every later blocking call says so too */
    CHECK(ringo_sleep(1 * MS) == -ECANCELED, "sleep after cancel");
    ringo_waitgroup_done(&all);
}

static void e_deadline_reader(void *arg)
{
    (void)arg;
    char ch;
    ringo_deadline_set(ringo_now() + 500 * US);
    ssize_t r = ringo_read(e.idle[0], &ch, 1);
    CHECK(r == -ETIMEDOUT, "read past the deadline: %zd", r);
    ringo_deadline_set(RINGO_NEVER);
    ringo_waitgroup_done(&all);
}

static void e_start(void)
{
    atomic_store(&e.bytes, 0);
    atomic_store(&e.idle_started, 0);
    atomic_store(&e.idle_result, 1);
    for (unsigned s = 0; s <= E_PAIRS; s++)
        CHECK(pipe2(e.fds[s], O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
    CHECK(pipe2(e.idle, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
    ringo_waitgroup_add(&all, 2 * (E_PAIRS + 1) + 2);
    for (unsigned s = 0; s <= E_PAIRS; s++)
        go_on(s + 1, e_reader, (void *)(uintptr_t)s);
    for (unsigned s = 0; s < E_PAIRS; s++)
        go_on(s, e_writer, (void *)(uintptr_t)s);
    thread_start(e_writer, (void *)(uintptr_t)E_PAIRS);
    e.idle_id = ringo_go_on(0, e_idle_reader, NULL);
    CHECK(e.idle_id > 0, "ringo_go_on: %" PRId64, e.idle_id);
    atomic_fetch_add(&spawned, 1);
    go_on(1, e_deadline_reader, NULL);
}

/* From the main goroutine once the rest is under way. */
static void e_cancel_idle(void)
{
    while (!atomic_load(&e.idle_started))
        ringo_sleep(100 * US);
    /* wherever it is (about to read, or blocked in the read), the read
     * ends with -ECANCELED: cancellation is permanent */
    CHECK(ringo_cancel(e.idle_id) == 0, "ringo_cancel");
}

static void e_check(void)
{
    CHECK(atomic_load(&e.bytes) == (long)(E_PAIRS + 1) * E_BYTES, "pipe bytes %ld",
          atomic_load(&e.bytes));
    CHECK(atomic_load(&e.idle_result) == -ECANCELED, "cancelled read: %ld",
          atomic_load(&e.idle_result));
    CHECK(ringo_close(e.idle[0]) == 0 && ringo_close(e.idle[1]) == 0, "close");
}

/* ------------------------------------------------------------------ */
/* F: loopback TCP.  An acceptor takes exactly as many connections as there
 * are clients and gives each an echo goroutine; clients (goroutines on
 * every proc and a plain thread) send messages of random length, check the
 * echo byte for byte, half-close and wait for the server's end of file. */

#define F_CLIENTS 12             /* goroutines; one more is a thread */
#define F_MESSAGES 16
#define F_MAX 4096

static struct {
    int lfd;
    char port[16];
    atomic_long client_bytes, server_bytes, accepted;
} f;

static void f_echo(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    long total = 0;
    while ((n = ringo_read(fd, buf, sizeof buf)) > 0) {
        CHECK(ringo_write_all(fd, buf, (size_t)n) == n, "echo write");
        total += n;
    }
    CHECK(n == 0, "echo read: %zd", n);
    atomic_fetch_add(&f.server_bytes, total);
    CHECK(ringo_close(fd) == 0, "close");
    ringo_waitgroup_done(&all);
}

static void f_acceptor(void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < F_CLIENTS + 1; i++) {
        int fd = ringo_accept(f.lfd, NULL, NULL, SOCK_CLOEXEC);
        CHECK(fd >= 0, "accept: %d", fd);
        atomic_fetch_add(&f.accepted, 1);
        ringo_waitgroup_add(&all, 1);
        go_on(i, f_echo, (void *)(intptr_t)fd);
    }
    ringo_waitgroup_done(&all);
}

static void f_client(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    struct rng r = rng_for(1000 + id);
    int fd = ringo_tcp_dial("127.0.0.1", f.port);
    CHECK(fd >= 0, "ringo_tcp_dial: %d", fd);
    char out[F_MAX], in[F_MAX];
    long total = 0;
    for (unsigned m = 0; m < F_MESSAGES; m++) {
        size_t n = 1 + rng_below(&r, F_MAX);
        for (size_t i = 0; i < n; i++)
            out[i] = (char)rng_next(&r);
        CHECK(ringo_write_all(fd, out, n) == (ssize_t)n, "client write");
        size_t got = 0;
        while (got < n) {
            ssize_t k = ringo_read(fd, in + got, n - got);
            CHECK(k > 0, "client read: %zd after %zu of %zu", k, got, n);
            got += (size_t)k;
        }
        CHECK(memcmp(in, out, n) == 0, "echo differs");
        total += (long)n;
    }
    CHECK(shutdown(fd, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
    char ch;
    ssize_t k = ringo_read(fd, &ch, 1);
    CHECK(k == 0, "end of file after half-close: %zd", k);
    CHECK(ringo_close(fd) == 0, "close");
    atomic_fetch_add(&f.client_bytes, total);
    ringo_waitgroup_done(&all);
}

static void f_start(void)
{
    atomic_store(&f.client_bytes, 0);
    atomic_store(&f.server_bytes, 0);
    atomic_store(&f.accepted, 0);
    f.lfd = ringo_tcp_listen("127.0.0.1", "0", 64, 0);
    CHECK(f.lfd >= 0, "ringo_tcp_listen: %d", f.lfd);
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    CHECK(getsockname(f.lfd, (struct sockaddr *)&sin, &sl) == 0, "getsockname");
    snprintf(f.port, sizeof f.port, "%d", ntohs(sin.sin_port));
    ringo_waitgroup_add(&all, 1 + F_CLIENTS + 1);
    go_on(0, f_acceptor, NULL);
    for (unsigned i = 0; i < F_CLIENTS; i++)
        go_on(i + 1, f_client, (void *)(uintptr_t)i);
    thread_start(f_client, (void *)(uintptr_t)F_CLIENTS);
}

static void f_check(void)
{
    CHECK(atomic_load(&f.accepted) == F_CLIENTS + 1, "accepted %ld", atomic_load(&f.accepted));
    CHECK(atomic_load(&f.client_bytes) == atomic_load(&f.server_bytes),
          "clients sent %ld, server echoed %ld", atomic_load(&f.client_bytes),
          atomic_load(&f.server_bytes));
    CHECK(ringo_close(f.lfd) == 0, "close listener");
}

/* ------------------------------------------------------------------ */
/* G: spawn storms from a goroutine (ringo_go and ringo_go_on) and from a
 * plain thread (ringo_go, placed round-robin); each spawned goroutine
 * counts itself once. */

#define G_FROM_GOROUTINE 1500
#define G_FROM_THREAD 300

static atomic_long g_ran;

static void g_tiny(void *arg)
{
    (void)arg;
    atomic_fetch_add(&g_ran, 1);
    if (atomic_load(&g_ran) % 7 == 0)
        ringo_yield();
    ringo_waitgroup_done(&all);
}

static void g_spawner(void *arg)
{
    unsigned n = (unsigned)(uintptr_t)arg;
    ringo_waitgroup_add(&all, (int)n);
    for (unsigned i = 0; i < n; i++) {
        if (ringo_id() > 0 && (i & 1))
            go_on(i, g_tiny, NULL);
        else
            go(g_tiny, NULL);
    }
    ringo_waitgroup_done(&all);
}

static void g_start(void)
{
    atomic_store(&g_ran, 0);
    ringo_waitgroup_add(&all, 2);
    go_on(1, g_spawner, (void *)(uintptr_t)G_FROM_GOROUTINE);
    thread_start(g_spawner, (void *)(uintptr_t)G_FROM_THREAD);
}

static void g_check(void)
{
    CHECK(atomic_load(&g_ran) == G_FROM_GOROUTINE + G_FROM_THREAD, "spawned goroutines ran %ld times",
          atomic_load(&g_ran));
}

/* ------------------------------------------------------------------ */
/* one round */

static void round_main(void *arg)
{
    (void)arg;
    CHECK(ringo_nprocs() == (int)cur_procs, "ringo_nprocs %d", ringo_nprocs());
    memset(&all, 0, sizeof all);
    atomic_store(&phase, "starting");
    a_start();
    b_start();
    c_start();
    d_start();
    e_start();
    f_start();
    g_start();
    atomic_store(&phase, "cancelling");
    e_cancel_idle();
    atomic_store(&phase, "running");
    ringo_waitgroup_wait(&all);
    atomic_store(&phase, "joining threads");
    for (int i = 0; i < nthreads; i++) {
        int r = pthread_join(threads[i], NULL);
        CHECK(r == 0, "pthread_join: %s", strerror(r));
    }
    atomic_store(&phase, "checking");
    a_check();
    b_check();
    c_check();
    d_check();
    e_check();
    f_check();
    g_check();
}

/* The counts one round adds up to, for the summary. */
static unsigned long long round_values(void)
{
    return A_VALUES + B_VALUES + (unsigned long long)(C_LOCKERS + 1) * C_LOCKS +
           (unsigned long long)C_QPRODUCERS * C_QPER + (E_PAIRS + 1ull) * E_BYTES +
           G_FROM_GOROUTINE + G_FROM_THREAD;
}

static void run_round(void)
{
    nthreads = 0;
    atomic_store(&spawned, 0);
    struct ringo_config cfg = { .procs = cur_procs };
    int r = ringo_run(round_main, NULL, &cfg);
    CHECK(r == 0, "ringo_run: %d (%s)", r, strerror(-r));
    atomic_store(&phase, "between rounds");
    struct ringo_stats st;
    CHECK(ringo_stats(&st) == 0, "ringo_stats");
    CHECK(st.spawned == 1 + (uint64_t)atomic_load(&spawned), "stats.spawned %" PRIu64 ", want %ld",
          st.spawned, 1 + atomic_load(&spawned));
    CHECK(st.goroutines == 0, "%" PRIu64 " goroutines live after the run", st.goroutines);
}

/* ------------------------------------------------------------------ */
/* process resources */

static int dir_entries(const char *path)
{
    DIR *dir = opendir(path);
    CHECK(dir != NULL, "opendir %s: %s", path, strerror(errno));
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(dir);
    return n;
}

static int open_fds(void)
{
    return dir_entries("/proc/self/fd") - 1; /* less the directory's own descriptor */
}

/* The process's threads, less the kernel's io_uring workers (iou-wrk-N,
 * iou-sqp-N: they serve a ring and leave on their own after it closes).
 * names gets the names of those counted, for a report. */
static int live_threads(char *names, size_t len)
{
    DIR *dir = opendir("/proc/self/task");
    CHECK(dir != NULL, "opendir /proc/self/task: %s", strerror(errno));
    int n = 0;
    size_t used = 0;
    names[0] = '\0';
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "?";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue; /* gone meanwhile */
        if (!fgets(comm, sizeof comm, fp))
            strcpy(comm, "?");
        fclose(fp);
        comm[strcspn(comm, "\n")] = '\0';
        if (strncmp(comm, "iou-", 4) == 0)
            continue;
        n++;
        if (used < len)
            used += (size_t)snprintf(names + used, len - used, " %s:%s", de->d_name, comm);
    }
    closedir(dir);
    return n;
}

/* A thread that pthread_join has seen end may linger in /proc for a moment
 * (the kernel wakes the joiner before it has finished the exit): give it up
 * to a second to go; a thread that is really left over stays. */
static int settled_threads(int want, char *names, size_t len)
{
    int n = live_threads(names, len);
    for (int i = 0; i < 100 && n != want; i++) {
        usleep(10000);
        n = live_threads(names, len);
    }
    return n;
}

static int mappings(void)
{
    FILE *fp = fopen("/proc/self/maps", "r");
    CHECK(fp != NULL, "fopen /proc/self/maps: %s", strerror(errno));
    int n = 0, ch;
    while ((ch = getc(fp)) != EOF)
        n += ch == '\n';
    fclose(fp);
    return n;
}

static long rss_kib(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (fp) {
        if (fscanf(fp, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(fp);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Bytes handed out by malloc and not freed (glibc 2.33+; 0 elsewhere, which
 * turns the heap check off). */
static long heap_kib(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return (long)((mi.uordblks + mi.hblkhd) / 1024);
#else
    return 0;
#endif
}

/* ------------------------------------------------------------------ */
/* watchdog: a hang is reported with a dump, not waited out */

static atomic_ulong progress;       /* rounds finished, over all proc counts */
static atomic_int watchdog_stop;
static long hang_seconds;

static void *watchdog(void *arg)
{
    (void)arg;
    unsigned long seen = atomic_load(&progress);
    long still = 0;
    while (!atomic_load(&watchdog_stop)) {
        sleep(1);
        unsigned long now = atomic_load(&progress);
        if (now != seen) {
            seen = now;
            still = 0;
        } else if (++still >= hang_seconds) {
            fprintf(stderr,
                    "soak: FAILED: no round finished for %ld s (procs %u, round %lu, "
                    "SOAK_SEED=%" PRIu64 ", phase %s); goroutines:\n",
                    still, cur_procs, cur_round, base_seed, atomic_load(&phase));
            ringo_dump(2);
            abort();
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < 0) {
        fprintf(stderr, "soak: %s=%s is not a number\n", name, v);
        exit(2);
    }
    return x;
}

int main(void)
{
    long seconds = env_long("SOAK_SECONDS", 60);
    long rss_slack = env_long("SOAK_RSS_SLACK_KIB", 8192);
    long heap_slack = env_long("SOAK_HEAP_SLACK_KIB", 256);
    long maps_slack = env_long("SOAK_MAPS_SLACK", 64);
#if defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer keeps freed memory in quarantine (up to 256 MiB),
     * maps its allocator's regions as it goes and counts the heap itself: no
     * bound on any of them; LeakSanitizer reports leaks at exit instead. */
    rss_slack = heap_slack = LONG_MAX / 2;
    maps_slack = INT_MAX / 2;
    printf("soak: AddressSanitizer build: no RSS, heap or mappings bound\n");
#endif
    hang_seconds = env_long("SOAK_HANG_SECONDS", 300);
    const char *procs_list = getenv("SOAK_PROCS");
    if (!procs_list || !*procs_list)
        procs_list = "1 2 8";
    base_seed = (uint64_t)env_long("SOAK_SEED", 0);
    if (!base_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        base_seed = ((uint64_t)ts.tv_sec * 1000003u) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
        base_seed &= (uint64_t)LONG_MAX;
    }
    signal(SIGPIPE, SIG_IGN);
    printf("soak: %ld s per proc count, procs %s, SOAK_SEED=%" PRIu64 "\n", seconds, procs_list,
           base_seed);
    fflush(stdout);

    pthread_t wd;
    int r = pthread_create(&wd, NULL, watchdog, NULL);
    CHECK(r == 0, "pthread_create: %s", strerror(r));

    char names[512];
    const int fds0 = open_fds(), threads0 = live_threads(names, sizeof names);
    for (const char *p = procs_list; *p;) {
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p) {
            p++;
            continue;
        }
        p = end;
        CHECK(n >= 1 && n <= 1024, "SOAK_PROCS entry %ld", n);
        cur_procs = (unsigned)n;
        cur_round = 0;
        int64_t t0 = ringo_now(), until = t0 + seconds * 1000 * MS;
        long rss_first = 0, heap_first = 0, rss_max = 0, heap_max = 0, rss = 0, heap = 0;
        int maps_first = 0, maps_max = 0, maps = 0;
        do {
            cur_round++;
            run_round();
            atomic_fetch_add(&progress, 1);
            int fds = open_fds();
            CHECK(fds == fds0, "%d descriptors open between runs, %d before the first", fds, fds0);
            int nth = settled_threads(threads0, names, sizeof names);
            CHECK(nth == threads0, "%d threads between runs (%s), %d before the first", nth, names,
                  threads0);
            maps = mappings();
            rss = rss_kib();
            heap = heap_kib();
            if (cur_round == 1) {
                rss_first = rss;
                heap_first = heap;
                maps_first = maps;
            }
            if (maps > maps_max)
                maps_max = maps;
            CHECK(maps <= maps_first + maps_slack, "%d mappings, %d after the first round", maps,
                  maps_first);
            if (rss > rss_max)
                rss_max = rss;
            if (heap > heap_max)
                heap_max = heap;
            CHECK(rss <= rss_first + rss_slack, "RSS %ld KiB, %ld KiB after the first round", rss,
                  rss_first);
            CHECK(heap <= heap_first + heap_slack, "heap in use %ld KiB, %ld KiB after the first round",
                  heap, heap_first);
        } while (ringo_now() < until);
        double secs = (double)(ringo_now() - t0) / 1e9;
        printf("soak: procs %u: %lu rounds in %.1f s, %llu values and bytes checked; descriptors "
               "%d and threads %d as before; RSS KiB first %ld, max %ld, last %ld; heap KiB first "
               "%ld, max %ld, last %ld; mappings first %d, max %d, last %d\n",
               cur_procs, cur_round, secs, (unsigned long long)cur_round * round_values(), fds0,
               threads0, rss_first, rss_max, rss, heap_first, heap_max, heap, maps_first, maps_max,
               maps);
        fflush(stdout);
    }
    atomic_store(&watchdog_stop, 1);
    pthread_join(wd, NULL);
    printf("soak: ok\n");
    return 0;
}
