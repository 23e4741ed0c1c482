/*
 * check_sync.c — Mutex, RWMutex, WaitGroup, Once and Cond: exact results
 * under contention from goroutines on one and two procs and from plain
 * threads, zero and INIT objects, starvation mode, deadlock reports, and
 * the fatal misuse messages.
 *
 * Timed WaitGroup waits: every way one ends (the counter, `when`, the
 * goroutine's deadline, a cancel), many at once, from a plain thread.
 * A wait whose completion is in the CQ's overflow backlog is no deadlock.
 *
 * Both futex paths: `make check` runs this program twice, the second time
 * with RINGO_NO_IO_URING_FUTEX=1 (tests/check_sync_fallback.sh), and
 * futex_paths checks that each run went the way it says.
 *
 * No timing assertions: the one bound (starvation) is minutes loose.
 */
#include "testutil.h"

#include <limits.h>
#include <semaphore.h>
#include <time.h>

#include "futex.h"
#include "internal.h" /* rt: every proc idle */

static unsigned nprocs_param = 1;

static bool forced_fallback(void)
{
    const char *v = getenv("RINGO_NO_IO_URING_FUTEX");
    return v && *v && strcmp(v, "0") != 0;
}

/* ------------------------------------------------------------------ */
/* Mutex: exact totals */

#define NG 100
#define NINC 10000
#define NTHREADS 4

static ringo_mutex mu;
static long total;                 /* under mu */
static ringo_waitgroup wg;

static void incr(void *arg)
{
    (void)arg;
    for (int i = 0; i < NINC; i++) {
        ringo_mutex_lock(&mu);
        long v = total;
        if (i % 100 == 0)
            ringo_yield(); /* inside the section: makes others park on the mutex even on one proc */
        total = v + 1;
        ringo_mutex_unlock(&mu);
    }
    ringo_waitgroup_done(&wg);
}

static void *incr_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < NINC; i++) {
        ringo_mutex_lock(&mu);
        long v = total;
        if (i % 100 == 0)
            sched_yield();
        total = v + 1;
        ringo_mutex_unlock(&mu);
    }
    ringo_waitgroup_done(&wg);
    return NULL;
}

static void main_counter(void *arg)
{
    long threads = (long)arg;
    pthread_t t[NTHREADS];
    memset(&mu, 0, sizeof mu);
    memset(&wg, 0, sizeof wg);
    total = 0;
    ringo_waitgroup_add(&wg, NG + (int)threads);
    for (long i = 0; i < threads; i++)
        ck_assert_int_eq(test_thread_create(&t[i], incr_thread, NULL), 0);
    for (int i = 0; i < NG; i++)
        ck_assert_int_gt(ringo_go(incr, NULL), 0);
    ringo_waitgroup_wait(&wg);
    ck_assert_int_eq(total, (long)(NG + threads) * NINC);
    for (long i = 0; i < threads; i++)
        pthread_join(t[i], NULL); /* already done (they called Done) */
}

START_TEST(mutex_exact_total)
{
    RUN(main_counter, (void *)0L, nprocs_param);
    ck_assert_int_eq(total, (long)NG * NINC);
}
END_TEST

START_TEST(mutex_exact_total_with_threads)
{
    RUN(main_counter, (void *)(long)NTHREADS, nprocs_param);
    ck_assert_int_eq(total, (long)(NG + NTHREADS) * NINC);
}
END_TEST

/* Tight loops: no yield anywhere, so a goroutine keeps re-locking while
 * the goroutines of the other proc and the plain threads wait.  This is
 * where an unlock skips the wake because one is already on its way
 * (WOKEN): a wake lost there would hang the test. */
#define TIGHT_G 8
#define TIGHT_T 2
#define TIGHT_N 50000

static void tight(void *arg)
{
    (void)arg;
    for (int i = 0; i < TIGHT_N; i++) {
        ringo_mutex_lock(&mu);
        total++;
        ringo_mutex_unlock(&mu);
    }
    ringo_waitgroup_done(&wg);
}

static void *tight_thread(void *arg)
{
    tight(arg); /* the same calls work from a plain thread */
    return NULL;
}

static void main_tight(void *arg)
{
    (void)arg;
    pthread_t t[TIGHT_T];
    memset(&mu, 0, sizeof mu);
    memset(&wg, 0, sizeof wg);
    total = 0;
    ringo_waitgroup_add(&wg, TIGHT_G + TIGHT_T);
    for (int i = 0; i < TIGHT_T; i++)
        ck_assert_int_eq(test_thread_create(&t[i], tight_thread, NULL), 0);
    for (int i = 0; i < TIGHT_G; i++)
        ck_assert_int_gt(ringo_go_on(i % ringo_nprocs(), tight, NULL), 0);
    ringo_waitgroup_wait(&wg);
    ck_assert_int_eq(total, (long)(TIGHT_G + TIGHT_T) * TIGHT_N);
    for (int i = 0; i < TIGHT_T; i++)
        pthread_join(t[i], NULL);
}

START_TEST(mutex_tight_loops)
{
    RUN(main_tight, NULL, nprocs_param);
    ck_assert_int_eq(total, (long)(TIGHT_G + TIGHT_T) * TIGHT_N);
}
END_TEST

/* Which wait path the contention above took. */
START_TEST(futex_paths)
{
    memset(&futex_counts, 0, sizeof futex_counts);
    RUN(main_counter, (void *)(long)NTHREADS, nprocs_param);
    uint64_t u = atomic_load(&futex_counts.uring), t = atomic_load(&futex_counts.table);
    printf("  futex waits on %u proc(s): io_uring %llu, table %llu, thread %llu\n",
           nprocs_param, (unsigned long long)u, (unsigned long long)t,
           (unsigned long long)atomic_load(&futex_counts.thread));
    ck_assert_uint_gt(u + t, 0);
    if (forced_fallback())
        ck_assert_uint_eq(u, 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* TryLock, zero and INIT objects */

static ringo_mutex static_mu = RINGO_MUTEX_INIT;
static ringo_rwmutex static_rw = RINGO_RWMUTEX_INIT;
static ringo_waitgroup static_wg = RINGO_WAITGROUP_INIT;
static ringo_once static_once = RINGO_ONCE_INIT;
static ringo_cond static_cond = RINGO_COND_INIT;
static int once_runs;

static void count_run(void *arg)
{
    (void)arg;
    once_runs++;
}

/* A plain thread that locks a mutex goroutines keep handing to each
 * other gets it, on both futex paths: the thread sleeps in futex(2) while
 * the goroutines wait in ringo's table or in io_uring, and each unlock
 * wakes one waiter; one that reached only the table's would leave the
 * thread asleep for as long as goroutines came (futex.c kernel_waiters).
 * Counts decide: the goroutines stop after LOCKER_ROUNDS locks between
 * them, far more than the thread's starvation-mode turn takes. */
#define LOCKER_ROUNDS 200000
static ringo_mutex locker_mu;
static atomic_long locker_rounds;
static atomic_int locker_thread_got;

static void locker_g(void *arg)
{
    (void)arg;
    while (!atomic_load(&locker_thread_got) && atomic_load(&locker_rounds) < LOCKER_ROUNDS) {
        ringo_mutex_lock(&locker_mu);
        atomic_fetch_add(&locker_rounds, 1);
        for (volatile int i = 0; i < 2000; i++)
            ;
        ringo_yield(); /* with the lock held: the others queue on it */
        ringo_mutex_unlock(&locker_mu);
        ringo_yield();
    }
}

static void *locker_thread(void *arg)
{
    (void)arg;
    ringo_mutex_lock(&locker_mu);
    atomic_store(&locker_thread_got, 1);
    ringo_mutex_unlock(&locker_mu);
    return NULL;
}

static void main_thread_vs_goroutines(void *arg)
{
    (void)arg;
    atomic_store(&locker_rounds, 0);
    atomic_store(&locker_thread_got, 0);
    int n = 2 * ringo_nprocs();
    for (int i = 0; i < n; i++)
        ck_assert_int_gt(ringo_go_on(i % ringo_nprocs(), locker_g, NULL), 0);
    while (atomic_load(&locker_rounds) < 100) /* contended before the thread comes */
        ringo_sleep(100 * US);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, locker_thread, NULL), 0);
    while (ringo_count() > 1)
        ringo_sleep(1 * MS);
    long rounds = atomic_load(&locker_rounds);
    ck_assert_msg(atomic_load(&locker_thread_got) && rounds < LOCKER_ROUNDS,
                  "the plain thread waited through all %ld goroutine locks", rounds);
    pthread_join(t, NULL);
}

/* A plain thread asleep in a WaitGroup's wait since before the run, woken
 * by a goroutine's done: the wake must not keep the deadlock check off,
 * and a true deadlock after it is reported (futex.c "Deadlock
 * detection": the woken thread takes its wake off the count of wakes in
 * transit, as a goroutine does).  Without that the run never ended. */
static ringo_waitgroup early_wg;
static atomic_int early_thread_woke;

static void *early_waiter(void *arg)
{
    (void)arg;
    ringo_waitgroup_wait(&early_wg);
    atomic_store(&early_thread_woke, 1);
    return NULL;
}

static void main_wake_then_deadlock(void *arg)
{
    ringo_chan *c = arg;
    ringo_waitgroup_done(&early_wg);
    while (!atomic_load(&early_thread_woke))
        ringo_sleep(100 * US);
    char v;
    ringo_chan_recv(c, &v); /* nobody sends: a deadlock */
}

START_TEST(plain_waiter_woken_leaves_deadlock_detection_on)
{
    memset(&early_wg, 0, sizeof early_wg);
    atomic_store(&early_thread_woke, 0);
    ringo_waitgroup_add(&early_wg, 1);
    uint64_t threads = atomic_load(&futex_counts.thread);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, early_waiter, NULL), 0);
    /* in futex(2) before the run starts: its call is not one of the run's */
    while (atomic_load(&futex_counts.thread) == threads)
        usleep(100);
    usleep(10000);
    struct ringo_config cfg = { .procs = nprocs_param };
    ringo_chan *c = ringo_chan_make(1, 0); /* outlives the run's discarded goroutines */
    int r = ringo_run(main_wake_then_deadlock, c, &cfg);
    pthread_join(t, NULL);
    ringo_chan_release(c);
    ck_assert_int_eq(r, -EDEADLK);
}
END_TEST

/* A plain thread's wake whose two halves fall on either side of the
 * run's start (futex.c "The count across runs"): the waker counts it in
 * rt.futex_transit after its FUTEX_WAKE, the woken thread takes it off
 * after its futex(2) returns.  Round 0 holds the woken thread in
 * futex_woken_seam, round 1 the waker in futex_wake_seam, until the run
 * has started; the other half comes before.  The run then deadlocks and
 * must say so.  When the run's start set the count to 0, one half was
 * lost and the count stayed at -1 or 1: no verdict, the run never ended. */
static ringo_waitgroup cross_wg;
static sem_t cross_release;
static atomic_int cross_held;
static long cross_hold_at; /* the r the seam holds at */
static pthread_t cross_thread; /* the held thread */

static void cross_hold(long r)
{
    if (r != cross_hold_at || atomic_load(&cross_held))
        return;
    cross_thread = pthread_self();
    atomic_store(&cross_held, 1);
    while (sem_wait(&cross_release) != 0)
        ;
}

static void *cross_waiter(void *arg)
{
    (void)arg;
    ringo_waitgroup_wait(&cross_wg);
    return NULL;
}

static void *cross_waker(void *arg)
{
    (void)arg;
    ringo_waitgroup_done(&cross_wg);
    return NULL;
}

static void main_release_then_deadlock(void *arg)
{
    sem_post(&cross_release);
    pthread_join(cross_thread, NULL); /* its half of the count comes now */
    char v;
    ringo_chan_recv(arg, &v); /* nobody sends: a deadlock */
}

/* Hold one thread in a seam, its half of a wake to come (round 0: the
 * woken thread, 1: the waker). */
static void cross_set_up(int round)
{
    ck_assert_int_eq(sem_init(&cross_release, 0, 0), 0);
    cross_hold_at = round == 0 ? 0 : 1;
    /* Until the waiter was in futex(2) when the wake came: a round whose
     * waiter came late (its wait saw the count at 0) is made again. */
    for (int tries = 0; tries < 100 && !atomic_load(&cross_held); tries++) {
        memset(&cross_wg, 0, sizeof cross_wg);
        ringo_waitgroup_add(&cross_wg, 1);
        uint64_t threads = atomic_load(&futex_counts.thread);
        if (round == 0)
            futex_woken_seam = cross_hold;
        else
            futex_wake_seam = cross_hold;
        pthread_t waiter, waker;
        ck_assert_int_eq(pthread_create(&waiter, NULL, cross_waiter, NULL), 0);
        while (atomic_load(&futex_counts.thread) == threads)
            usleep(100);
        usleep(10000);
        ck_assert_int_eq(pthread_create(&waker, NULL, cross_waker, NULL), 0);
        /* Until the seam holds one thread, or both are through. */
        if (round == 0) {
            pthread_join(waker, NULL);
            while (!atomic_load(&cross_held) && pthread_tryjoin_np(waiter, NULL) == EBUSY)
                usleep(100); /* held: the run's main goroutine joins it */
        } else {
            pthread_join(waiter, NULL);
            while (!atomic_load(&cross_held) && pthread_tryjoin_np(waker, NULL) == EBUSY)
                usleep(100);
        }
    }
    ck_assert_int_eq(atomic_load(&cross_held), 1);
}

static void cross_tear_down(void)
{
    futex_woken_seam = NULL;
    futex_wake_seam = NULL;
    atomic_store(&cross_held, 0);
    sem_destroy(&cross_release);
}

START_TEST(plain_wake_across_the_run_start_leaves_deadlock_detection_on)
{
    cross_set_up(_i);
    struct ringo_config cfg = { .procs = nprocs_param };
    ringo_chan *c = ringo_chan_make(1, 0); /* outlives the run's discarded goroutines */
    int r = ringo_run(main_release_then_deadlock, c, &cfg);
    ringo_chan_release(c);
    cross_tear_down();
    ck_assert_int_eq(r, -EDEADLK);
}
END_TEST

/* The same held thread at a fork: the child has not got it, nor its half
 * of the wake to come, so the counts it inherited are dropped
 * (futex_forked) and a run of the child reports its deadlock.  Without
 * that, the child's runs kept the count as it was (a thread was inside a
 * futex call) and never gave a verdict. */
static void main_deadlock(void *arg)
{
    char v;
    ringo_chan_recv(arg, &v); /* nobody sends */
}

START_TEST(fork_with_half_a_wake_leaves_deadlock_detection_on)
{
    if (test_under_thread_sanitizer())
        return; /* it starts no thread in a child of a threaded process */
    cross_set_up(_i);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2); /* the deadlock's report */
        struct ringo_config cfg = { .procs = nprocs_param };
        ringo_chan *c = ringo_chan_make(1, 0);
        int r = ringo_run(main_deadlock, c, &cfg);
        ringo_chan_release(c); /* valgrind's leak check runs at the child's exit too */
        _exit(r == -EDEADLK ? 0 : 1);
    }
    ck_assert_int_gt(pid, 0);
    int st = 0;
    pid_t w = 0;
    for (int tries = 0; tries < 30000 && (w = waitpid(pid, &st, WNOHANG)) == 0; tries++)
        usleep(1000); /* 30 s at most: a child that hangs fails */
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    sem_post(&cross_release);
    pthread_join(cross_thread, NULL);
    cross_tear_down();
    ck_assert_msg(w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's run: status %d", st);
}
END_TEST

/* A plain thread that touched a ringo object before the run, and may
 * still release a goroutine without any call during the run until then:
 * no deadlock is reported while it lives.  Here it locked a mutex before
 * the run and unlocks it only once every proc has gone idle with the main
 * goroutine waiting for it, when the check has looked: the run ends
 * well.  Then a thread that exits while every proc is idle: a proc
 * looks again as it leaves, and reports the deadlock its life hid. */
static ringo_mutex early_mu;
static atomic_int early_locked, early_main_waits;

static bool every_proc_idle(void)
{
    pthread_mutex_lock(&rt.idle_lock);
    bool all = rt.nprocs && rt.idle_procs == rt.nprocs;
    pthread_mutex_unlock(&rt.idle_lock);
    return all;
}

static void wait_every_proc_idle(void)
{
    while (!atomic_load(&early_main_waits))
        usleep(100);
    while (!every_proc_idle())
        usleep(100);
}

static void *early_locker(void *arg)
{
    (void)arg;
    ringo_mutex_lock(&early_mu);
    atomic_store(&early_locked, 1);
    wait_every_proc_idle();
    ringo_mutex_unlock(&early_mu);
    return NULL;
}

static void main_lock_held_by_thread(void *arg)
{
    (void)arg;
    atomic_store(&early_main_waits, 1);
    ringo_mutex_lock(&early_mu);
    ringo_mutex_unlock(&early_mu);
}

static void *early_toucher(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_mutex_trylock(&early_mu), 0);
    ringo_mutex_unlock(&early_mu);
    atomic_store(&early_locked, 1);
    wait_every_proc_idle();
    return NULL; /* exits without a call during the run */
}

static void main_recv_nobody_sends(void *arg)
{
    atomic_store(&early_main_waits, 1);
    char v;
    ringo_chan_recv(arg, &v);
}

START_TEST(plain_thread_holding_a_mutex_since_before_the_run)
{
    memset(&early_mu, 0, sizeof early_mu);
    struct ringo_config cfg = { .procs = nprocs_param };
    void *(*threads[])(void *) = { early_locker, early_toucher };
    for (int i = 0; i < 2; i++) {
        atomic_store(&early_locked, 0);
        atomic_store(&early_main_waits, 0);
        /* A small stack: what the thread's exit does for the check must
         * fit it (a report's dump does not). */
        pthread_attr_t at;
        ck_assert_int_eq(pthread_attr_init(&at), 0);
        ck_assert_int_eq(pthread_attr_setstacksize(&at, 64 * 1024), 0);
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, &at, threads[i], NULL), 0);
        pthread_attr_destroy(&at);
        while (!atomic_load(&early_locked))
            usleep(100);
        ringo_chan *c = ringo_chan_make(1, 0); /* outlives the run's discarded goroutines */
        int r = i == 0 ? ringo_run(main_lock_held_by_thread, NULL, &cfg)
                       : ringo_run(main_recv_nobody_sends, c, &cfg);
        pthread_join(t, NULL);
        ringo_chan_release(c);
        ck_assert_int_eq(r, i == 0 ? 0 : -EDEADLK);
    }
}
END_TEST

START_TEST(mutex_plain_thread_not_starved_by_goroutines)
{
    RUN(main_thread_vs_goroutines, NULL, nprocs_param);
}
END_TEST

/* A plain thread asleep in futex(2) on one mutex costs the wakes of
 * another nothing: goroutines handing the other mutex to each other
 * through the wait table make no futex(2) wake (futex.c counts sleeping
 * threads per address slot; the two words, 128 bytes apart, never share
 * one).  Only the table path wakes without the kernel. */
static struct {
    ringo_mutex held;                       /* the plain thread sleeps on it */
    char pad[128 - sizeof(ringo_mutex)];
    ringo_mutex busy;                       /* the goroutines hand it around */
} two_mu;
static atomic_int slot_thread_in;

static void *slot_sleeper(void *arg)
{
    (void)arg;
    atomic_store(&slot_thread_in, 1);
    ringo_mutex_lock(&two_mu.held);
    ringo_mutex_unlock(&two_mu.held);
    return NULL;
}

static void busy_locker(void *arg)
{
    atomic_long *rounds = arg;
    for (int i = 0; i < 2000; i++) {
        ringo_mutex_lock(&two_mu.busy);
        atomic_fetch_add(rounds, 1);
        ringo_yield(); /* with the lock held: the others queue on it */
        ringo_mutex_unlock(&two_mu.busy);
    }
}

static void main_other_word(void *arg)
{
    (void)arg;
    if (!forced_fallback() && !on_epoll())
        return; /* io_uring's futex waits are woken by futex(2) itself */
    memset(&two_mu, 0, sizeof two_mu);
    ringo_mutex_lock(&two_mu.held);
    uint64_t threads = atomic_load(&futex_counts.thread);
    pthread_t t;
    atomic_store(&slot_thread_in, 0);
    ck_assert_int_eq(test_thread_create(&t, slot_sleeper, NULL), 0);
    while (atomic_load(&futex_counts.thread) == threads) /* it sleeps in futex(2) */
        ringo_sleep(100 * US);
    uint64_t table = atomic_load(&futex_counts.table);
    uint64_t kwake = atomic_load(&futex_counts.kwake);
    static atomic_long rounds;
    atomic_store(&rounds, 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_gt(ringo_go_on(0, busy_locker, &rounds), 0);
    while (atomic_load(&rounds) < 4 * 2000)
        ringo_sleep(1 * MS);
    while (ringo_count() > 1)
        ringo_sleep(1 * MS);
    uint64_t parked = atomic_load(&futex_counts.table) - table;
    uint64_t woke = atomic_load(&futex_counts.kwake) - kwake;
    ringo_mutex_unlock(&two_mu.held);
    pthread_join(t, NULL);
    ck_assert_uint_gt(parked, 1000); /* the mutex was handed on through the table */
    ck_assert_uint_eq(woke, 0);
}

START_TEST(sleeping_thread_costs_other_words_no_wake)
{
    RUN(main_other_word, NULL, 1);
}
END_TEST

static void main_trylock(void *arg)
{
    (void)arg;
    ringo_mutex m = {0};
    ck_assert_int_eq(ringo_mutex_trylock(&m), 0);
    ck_assert_int_eq(ringo_mutex_trylock(&m), -EBUSY);
    ringo_mutex_unlock(&m);
    ck_assert_int_eq(ringo_mutex_trylock(&m), 0);
    ringo_mutex_unlock(&m);
    ringo_mutex_lock(&m);
    ck_assert_int_eq(ringo_mutex_trylock(&m), -EBUSY);
    ringo_mutex_unlock(&m);
}

START_TEST(mutex_trylock)
{
    RUN(main_trylock, NULL, nprocs_param);
    main_trylock(NULL); /* and from a plain thread, outside any run */
}
END_TEST

static void use_all(ringo_mutex *m, ringo_rwmutex *rw, ringo_waitgroup *w,
                    ringo_once *o, ringo_cond *c)
{
    ringo_mutex_lock(m);
    ringo_cond_signal(c);
    ringo_cond_broadcast(c);
    ringo_mutex_unlock(m);
    ringo_rwmutex_rlock(rw);
    ringo_rwmutex_rlock(rw);
    ringo_rwmutex_runlock(rw);
    ringo_rwmutex_runlock(rw);
    ringo_rwmutex_lock(rw);
    ringo_rwmutex_unlock(rw);
    ringo_waitgroup_wait(w); /* counter 0: returns at once */
    ringo_waitgroup_add(w, 2);
    ringo_waitgroup_done(w);
    ringo_waitgroup_done(w);
    ringo_waitgroup_wait(w);
    ringo_once_do(o, count_run, NULL);
    ringo_once_do(o, count_run, NULL);
}

static void main_zero_and_init(void *arg)
{
    (void)arg;
    ringo_mutex m;
    ringo_rwmutex rw;
    ringo_waitgroup w;
    ringo_once o;
    ringo_cond c;
    memset(&m, 0, sizeof m);
    memset(&rw, 0, sizeof rw);
    memset(&w, 0, sizeof w);
    memset(&o, 0, sizeof o);
    memset(&c, 0, sizeof c);
    use_all(&m, &rw, &w, &o, &c);
    use_all(&static_mu, &static_rw, &static_wg, &static_once, &static_cond);
}

START_TEST(zero_and_init_objects)
{
    once_runs = 0;
    RUN(main_zero_and_init, NULL, nprocs_param);
    ck_assert_int_eq(once_runs, 2);
}
END_TEST

/* ------------------------------------------------------------------ */
/* WaitGroup */

static atomic_long done_count;

static void wg_worker(void *arg)
{
    atomic_fetch_add(&done_count, 1);
    ringo_waitgroup_done(arg);
}

static void main_wg_100k(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    atomic_store(&done_count, 0);
    for (int i = 0; i < 100000; i++) {
        ringo_waitgroup_add(&w, 1);
        ck_assert_int_gt(ringo_go(wg_worker, &w), 0);
    }
    ringo_waitgroup_wait(&w);
    /* Done happens before Wait returns: every increment is visible. */
    ck_assert_int_eq(atomic_load(&done_count), 100000);
}

START_TEST(waitgroup_100k_goroutines)
{
    RUN(main_wg_100k, NULL, nprocs_param);
}
END_TEST

/* The waiter may free a wait group as soon as its wait returns: the Done
 * that released it must be done with the object by then.  Round after
 * round, a goroutine on the next proc does the one Done of a wait group
 * on the heap, while main polls it with waits that end at once (so that
 * it is reading the word just as the Done lands), then waits it out and
 * frees it.  A Done that still read the object after its decrement (the
 * counter and the waiters once lived in two words) reads freed memory
 * here, which the sanitizer and valgrind runs of this test report.  Also:
 * the counter's limits, and every round's Done is seen. */
#define WG_FREE_ROUNDS 20000

static void wg_free_done(void *arg)
{
    ringo_waitgroup_done(arg);
}

static void main_wg_freed(void *arg)
{
    (void)arg;
    int n = ringo_nprocs();
    int rounds = getenv("RINGO_TEST_QUICK") ? WG_FREE_ROUNDS / 10 : WG_FREE_ROUNDS;
    long early = 0;
    for (int i = 0; i < rounds; i++) {
        ringo_waitgroup *w = malloc(sizeof *w);
        ck_assert_ptr_nonnull(w);
        *w = (ringo_waitgroup)RINGO_WAITGROUP_INIT;
        ringo_waitgroup_add(w, 1);
        ck_assert_int_gt(ringo_go_on((ringo_proc() + 1) % n, wg_free_done, w), 0);
        while (ringo_waitgroup_wait_until(w, ringo_now()) == -ETIMEDOUT) {
            early++;
            if (n == 1)
                ringo_yield();
        }
        ringo_waitgroup_wait(w);
        free(w);
    }
    ck_assert_int_ge(early, 1);         /* the polls did run before Dones */

    /* the counter holds 2^30 - 1, and may go back to zero in one add */
    ringo_waitgroup big = RINGO_WAITGROUP_INIT;
    ringo_waitgroup_add(&big, (1 << 30) - 1);
    ck_assert_int_eq(ringo_waitgroup_wait_until(&big, ringo_now()), -ETIMEDOUT);
    ringo_waitgroup_add(&big, -((1 << 30) - 2));
    ck_assert_int_eq(ringo_waitgroup_wait_until(&big, ringo_now()), -ETIMEDOUT);
    ringo_waitgroup_done(&big);
    ck_assert_int_eq(ringo_waitgroup_wait_until(&big, ringo_now()), 0);
    ringo_waitgroup_wait(&big);
}

START_TEST(waitgroup_freed_by_its_waiter)
{
    RUN(main_wg_freed, NULL, nprocs_param);
}
END_TEST

/* A wait whose completion sits in the CQ's overflow backlog is not a
 * deadlock.  A futex wait that fails at submission (-EAGAIN: the word
 * changed) while the CQ is full goes into the kernel's overflow backlog,
 * behind completions that only an enter with GETEVENTS moves to the CQ,
 * a CQ-full at a time.  On a plain ring (no DEFER_TASKRUN, as on valgrind)
 * a proc whose only operation in flight is that wait makes no such enter
 * before it counts itself idle: unless its reap asks for the backlog
 * (engine_uring.c next_cqe), it reports "all goroutines are asleep" with
 * the completion still in the kernel.  One proc, a ring of 4 SQEs (a CQ
 * of 16): w writes to a pipe, which complete at submission, fill the CQ
 * and the backlog in one round; main's wait on the waitgroup comes after
 * them, and the goroutine that empties the waitgroup runs before it is
 * submitted, so it wakes nobody.  The wait is left alone in the backlog
 * when the writes fill a whole number of CQs (16 writes, here); w runs
 * over a range rather than assume the kernel's counts. */
#define OVF_ENTRIES 4
static int ovf_pipe[2];
static ringo_waitgroup ovf_wg;

static void ovf_writer(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_write(ovf_pipe[1], "x", 1), 1);
}

static void ovf_done(void *arg)
{
    (void)arg;
    ringo_waitgroup_done(&ovf_wg);
}

static void main_wait_behind_backlog(void *arg)
{
    long w = (long)arg;
    ck_assert_int_eq(pipe(ovf_pipe), 0);
    memset(&ovf_wg, 0, sizeof ovf_wg);
    ringo_waitgroup_add(&ovf_wg, 1);
    for (long i = 0; i < w; i++)
        ck_assert_int_gt(ringo_go(ovf_writer, NULL), 0);
    ringo_yield(); /* the writers queue their writes */
    ck_assert_int_gt(ringo_go(ovf_done, NULL), 0);
    ringo_waitgroup_wait(&ovf_wg); /* ovf_done runs after this parks */
    char buf[256];
    long got = 0;
    while (got < w) {
        ssize_t n = ringo_read(ovf_pipe[0], buf, sizeof buf);
        ck_assert_int_gt(n, 0);
        got += n;
    }
    ck_assert_int_eq(got, w);
    ringo_close(ovf_pipe[0]);
    ringo_close(ovf_pipe[1]);
}

START_TEST(waitgroup_wait_behind_cq_backlog)
{
    char *saved = env_push("RINGO_NO_DEFER_TASKRUN", "1");
    struct ringo_config cfg = { .procs = 1, .ring_entries = OVF_ENTRIES };
    for (long w = 1; w <= 16 * OVF_ENTRIES; w++) {
        int r = ringo_run(main_wait_behind_backlog, (void *)w, &cfg);
        ck_assert_msg(r == 0, "%ld writes: ringo_run returned %d", w, r);
    }
    env_pop("RINGO_NO_DEFER_TASKRUN", saved);
}
END_TEST

/* Completions set aside when a submit to make room in a full SQ is
 * refused (-EBUSY: the kernel could not flush its CQ backlog; a seam
 * answers so here, where the kernel does not) are dispatched before the
 * proc waits for more: four writes that completed at once resume, and the
 * last one's write to main's pipe ends main's read, queued behind them.
 * (Held aside, they waited for some later completion: here, none came.)
 * A ring of 4 entries, one proc. */
static int busy_w[2], busy_r[2], busy_m[2];
static atomic_int busy_writes;

static void busy_writer(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_write(busy_w[1], "x", 1), 1);
    if (atomic_fetch_add(&busy_writes, 1) == 3)
        ck_assert_int_eq(write(busy_m[1], "m", 1), 1);
}

static void busy_reader(void *arg)
{
    (void)arg;
    char c;
    ck_assert_int_eq(ringo_read(busy_r[0], &c, 1), 1);
}

static void main_behind_refused_submit(void *arg)
{
    (void)arg;
    atomic_store(&busy_writes, 0);
    ck_assert_int_eq(pipe2(busy_w, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(busy_r, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(busy_m, O_CLOEXEC), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_gt(ringo_go(busy_writer, NULL), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_gt(ringo_go(busy_reader, NULL), 0);
    ringo_yield(); /* the writes fill the SQ, the readers' make room: the
                    * writes complete; main's read is refused room once */
    char c;
    ck_assert_int_eq(ringo_read(busy_m[0], &c, 1), 1);
    ck_assert_int_eq(atomic_load(&busy_writes), 4);
    ck_assert_int_eq(write(busy_r[1], "rrrr", 4), 4);
    while (ringo_count() > 1)
        ringo_yield();
    for (int i = 0; i < 2; i++) {
        close(busy_w[i]);
        close(busy_r[i]);
        close(busy_m[i]);
    }
}

START_TEST(completions_set_aside_are_dispatched)
{
    submit_busy_seam = 1;
    struct ringo_config cfg = { .procs = 1, .ring_entries = OVF_ENTRIES };
    ck_assert_int_eq(ringo_run(main_behind_refused_submit, NULL, &cfg), 0);
    struct ringo_stats st;
    ck_assert_int_eq(ringo_stats(&st), 0);
    if (st.engine == RINGO_ENGINE_EPOLL) { /* no SQ */
        submit_busy_seam = 0;
        return;
    }
    ck_assert_uint_eq(submit_busy_seam, 0); /* it was refused */
}
END_TEST

static ringo_waitgroup wg_work, wg_thread_done;
static long work_sum;     /* each worker adds under no lock but its own slot */
static long slots[1000];

static void slot_worker(void *arg)
{
    long i = (long)arg;
    ringo_sleep((i % 3) * MS);
    slots[i] = i;
    ringo_waitgroup_done(&wg_work);
}

static void *wg_waiter_thread(void *arg)
{
    (void)arg;
    ringo_waitgroup_wait(&wg_work);
    long s = 0;
    for (long i = 0; i < 1000; i++)
        s += slots[i];
    work_sum = s;
    ringo_waitgroup_done(&wg_thread_done); /* a plain thread wakes the main goroutine */
    return NULL;
}

static void main_wg_thread(void *arg)
{
    (void)arg;
    memset(&wg_work, 0, sizeof wg_work);
    memset(&wg_thread_done, 0, sizeof wg_thread_done);
    memset(slots, 0, sizeof slots);
    work_sum = 0;
    ringo_waitgroup_add(&wg_work, 1000);
    ringo_waitgroup_add(&wg_thread_done, 1);
    pthread_t t;
    ck_assert_int_eq(test_thread_create(&t, wg_waiter_thread, NULL), 0);
    for (long i = 0; i < 1000; i++)
        ringo_go(slot_worker, (void *)i);
    ringo_waitgroup_wait(&wg_thread_done);
    pthread_join(t, NULL);
}

START_TEST(waitgroup_waited_from_plain_thread)
{
    RUN(main_wg_thread, NULL, nprocs_param);
    ck_assert_int_eq(work_sum, 999L * 1000 / 2);
}
END_TEST

/* ------------------------------------------------------------------ */
/* WaitGroup: timed waits (ringo_waitgroup_wait_until).  What each wait
 * returns is decided by an ordering the test sets up (a Done before or
 * after, a deadline or `when` already passed, a cancel), never by how long
 * something took: a `when` meant not to be reached is an hour away. */

#define FAR_NS (3600 * 1000 * MS)

/* The counter word of a wait group (the first one, sync.c), whose waiters
 * the wait table queues. */
static _Atomic uint32_t *wg_word(ringo_waitgroup *w)
{
    return (_Atomic uint32_t *)(void *)w;
}

static uint64_t futex_parks(void)
{
    return atomic_load(&futex_counts.uring) + atomic_load(&futex_counts.table) +
           atomic_load(&futex_counts.thread);
}

/* A wait that has ended, however, left nothing in the wait table. */
static void assert_table_empty(ringo_waitgroup *w)
{
    ck_assert_uint_eq(futex_table_queued(wg_word(w)), 0);
}

static atomic_int until_value;

static void done_after_sleep(void *arg)
{
    ringo_sleep(2 * MS); /* the waiter has most likely parked by now; either order must work */
    atomic_store(&until_value, 42);
    ringo_waitgroup_done(arg);
}

static void main_until_zero_first(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    for (int round = 0; round < 2; round++) {
        atomic_store(&until_value, 0);
        ringo_waitgroup_add(&w, 1);
        ck_assert_int_gt(ringo_go_on(ringo_nprocs() - 1, done_after_sleep, &w), 0);
        int64_t when = round == 0 ? ringo_now() + FAR_NS : RINGO_NEVER;
        ck_assert_int_eq(ringo_waitgroup_wait_until(&w, when), 0);
        /* Done happens before the wait returns 0. */
        ck_assert_int_eq(atomic_load(&until_value), 42);
    }
    assert_table_empty(&w);
}

START_TEST(waitgroup_until_zero_before_when)
{
    RUN(main_until_zero_first, NULL, nprocs_param);
}
END_TEST

static atomic_int plain_wait_returned;

static void plain_waiter(void *arg)
{
    ringo_waitgroup **wgs = arg;
    ringo_waitgroup_wait(wgs[0]);
    atomic_store(&plain_wait_returned, 1);
    ringo_waitgroup_done(wgs[1]);
}

static void main_until_when_passes(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT, back = RINGO_WAITGROUP_INIT;
    atomic_store(&plain_wait_returned, 0);
    ringo_waitgroup_add(&w, 1);

    /* A `when` already past: -ETIMEDOUT at once, without waiting. */
    uint64_t before = futex_parks();
    ck_assert_int_eq(ringo_waitgroup_wait_until(&w, ringo_now() - 1), -ETIMEDOUT);
    ck_assert_int_eq(ringo_waitgroup_wait_until(&w, 0), -ETIMEDOUT);
    ck_assert_int_eq(ringo_waitgroup_wait_until(&w, INT64_MIN), -ETIMEDOUT);
    ck_assert_uint_eq(futex_parks(), before);

    /* A `when` that passes while the counter stays at 1. */
    for (int i = 0; i < 3; i++) {
        int64_t when = ringo_now() + (1 + i) * MS;
        ck_assert_int_eq(ringo_waitgroup_wait_until(&w, when), -ETIMEDOUT);
        ck_assert_int_ge(ringo_now(), when);
        assert_table_empty(&w);
    }
    ck_assert_uint_gt(futex_parks(), before); /* those did wait */

    /* The wait group still works: a later Done releases a plain wait. */
    ringo_waitgroup *wgs[2] = { &w, &back };
    ringo_waitgroup_add(&back, 1);
    ck_assert_int_gt(ringo_go_on(ringo_nprocs() - 1, plain_waiter, wgs), 0);
    ringo_sleep(2 * MS); /* most likely parked by now; either order must work */
    ck_assert_int_eq(atomic_load(&plain_wait_returned), 0);
    ringo_waitgroup_done(&w);
    ringo_waitgroup_wait(&back);
    ck_assert_int_eq(atomic_load(&plain_wait_returned), 1);
    assert_table_empty(&w);
}

START_TEST(waitgroup_until_when_passes)
{
    RUN(main_until_when_passes, NULL, nprocs_param);
}
END_TEST

static atomic_int until_result;

/* The goroutine's deadline comes first; `when` is never or far. */
static void deadline_waiter(void *arg)
{
    ringo_waitgroup *w = arg;
    int64_t d = ringo_now() + 3 * MS;
    ringo_deadline_set(d);
    int r1 = ringo_waitgroup_wait_until(w, RINGO_NEVER);
    ck_assert_int_ge(ringo_now(), d);
    int r2 = ringo_waitgroup_wait_until(w, ringo_now() + FAR_NS); /* passed: at once */
    d = ringo_now() + 3 * MS;
    ringo_deadline_set(d);
    int r3 = ringo_waitgroup_wait_until(w, ringo_now() + FAR_NS);
    ck_assert_int_ge(ringo_now(), d);
    ringo_deadline_set(RINGO_NEVER);
    atomic_store(&until_result, r1 == -ETIMEDOUT && r2 == -ETIMEDOUT && r3 == -ETIMEDOUT ? 1 : -1);
    if (r1 != -ETIMEDOUT || r2 != -ETIMEDOUT || r3 != -ETIMEDOUT)
        fprintf(stderr, "deadline_waiter: %d %d %d\n", r1, r2, r3);
}

static void main_until_deadline(void *arg)
{
    (void)arg;
    static ringo_waitgroup w;
    memset(&w, 0, sizeof w);
    atomic_store(&until_result, 0);
    ringo_waitgroup_add(&w, 1);
    deadline_waiter(&w); /* the main goroutine itself */
    ck_assert_int_eq(atomic_load(&until_result), 1);
    /* And a goroutine on the other proc, when there are two. */
    atomic_store(&until_result, 0);
    ck_assert_int_gt(ringo_go_on(ringo_nprocs() - 1, deadline_waiter, &w), 0);
    while (atomic_load(&until_result) == 0)
        ringo_sleep(1 * MS);
    ck_assert_int_eq(atomic_load(&until_result), 1);
    assert_table_empty(&w);
    ringo_waitgroup_done(&w);
}

START_TEST(waitgroup_until_goroutine_deadline)
{
    RUN(main_until_deadline, NULL, nprocs_param);
}
END_TEST

struct cancel_case {
    ringo_waitgroup *w;
    ringo_waitgroup *back;
    ringo_chan *ready;      /* the victim says it is about to wait */
    int64_t when;
    int result;
};

static void cancel_victim(void *arg)
{
    struct cancel_case *cc = arg;
    int one = 1;
    ringo_chan_send(cc->ready, &one);
    cc->result = ringo_waitgroup_wait_until(cc->w, cc->when);
    ringo_waitgroup_done(cc->back);
}

/* Cancelled first; then with both its deadline and `when` past, the wait
 * still reports the cancel. */
static void cancel_wins_victim(void *arg)
{
    struct cancel_case *cc = arg;
    ringo_chan_recv(cc->ready, NULL); /* ends with -ECANCELED: the cancel has come */
    ringo_deadline_set(ringo_now() - 1);
    cc->result = ringo_waitgroup_wait_until(cc->w, 0);
    ringo_waitgroup_done(cc->back);
}

static void main_until_cancel(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT, back = RINGO_WAITGROUP_INIT;
    ringo_chan *ready = ringo_chan_make(sizeof(int), 0);
    ck_assert_ptr_nonnull(ready);
    ringo_waitgroup_add(&w, 1);
    int64_t whens[2] = { RINGO_NEVER, ringo_now() + FAR_NS };
    for (int i = 0; i < 2; i++) {
        struct cancel_case cc = { .w = &w, .back = &back, .ready = ready, .when = whens[i],
                                  .result = 1 };
        ringo_waitgroup_add(&back, 1);
        int64_t id = ringo_go_on(ringo_nprocs() - 1, cancel_victim, &cc);
        ck_assert_int_gt(id, 0);
        ck_assert_int_eq(ringo_chan_recv(ready, NULL), 0);
        ringo_sleep(2 * MS); /* most likely parked by now; either order must work */
        ck_assert_int_eq(ringo_cancel(id), 0);
        ringo_waitgroup_wait(&back);
        ck_assert_int_eq(cc.result, -ECANCELED);
        assert_table_empty(&w);
    }
    struct cancel_case cc = { .w = &w, .back = &back, .ready = ready, .result = 1 };
    ringo_waitgroup_add(&back, 1);
    int64_t id = ringo_go_on(ringo_nprocs() - 1, cancel_wins_victim, &cc);
    ck_assert_int_gt(id, 0);
    ck_assert_int_eq(ringo_cancel(id), 0);
    ringo_waitgroup_wait(&back);
    ck_assert_int_eq(cc.result, -ECANCELED);
    ringo_waitgroup_done(&w);
    ringo_chan_release(ready);
}

START_TEST(waitgroup_until_cancel)
{
    RUN(main_until_cancel, NULL, nprocs_param);
}
END_TEST

/* A counter at zero: 0 whatever `when`; but a goroutine's passed deadline
 * and its cancellation are checked on entry, as by every blocking call. */
static atomic_int zero_first;

static void zero_waiter(void *arg)
{
    ringo_waitgroup *w = arg;
    ringo_deadline_set(ringo_now() - 1);
    int r1 = ringo_waitgroup_wait_until(w, RINGO_NEVER);
    ringo_deadline_set(RINGO_NEVER);
    atomic_store(&zero_first, r1 == -ETIMEDOUT ? 1 : -1);
    ringo_chan_recv(NULL, NULL); /* blocks until the cancel */
    int r2 = ringo_waitgroup_wait_until(w, RINGO_NEVER);
    atomic_store(&until_result, r2 == -ECANCELED ? 1 : -1);
}

static void main_until_counter_zero(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    uint64_t before = futex_parks();
    ck_assert_int_eq(ringo_waitgroup_wait_until(&w, ringo_now() - 1), 0);
    ck_assert_int_eq(ringo_waitgroup_wait_until(&w, INT64_MIN), 0);
    ringo_waitgroup_add(&w, 3);
    ringo_waitgroup_add(&w, -3);
    ck_assert_int_eq(ringo_waitgroup_wait_until(&w, 0), 0);
    ck_assert_uint_eq(futex_parks(), before);
    atomic_store(&until_result, 0);
    atomic_store(&zero_first, 0);
    int64_t id = ringo_go_on(ringo_nprocs() - 1, zero_waiter, &w);
    ck_assert_int_gt(id, 0);
    while (atomic_load(&zero_first) == 0)
        ringo_sleep(1 * MS);
    ck_assert_int_eq(atomic_load(&zero_first), 1);
    ck_assert_int_eq(ringo_cancel(id), 0);
    while (atomic_load(&until_result) == 0)
        ringo_sleep(1 * MS);
    ck_assert_int_eq(atomic_load(&until_result), 1);
}

START_TEST(waitgroup_until_counter_zero)
{
    RUN(main_until_counter_zero, NULL, nprocs_param);
}
END_TEST

/* Many waiters with different `when`s on one wait group: those with a
 * near one time out (and the others wait on beside them), then a second
 * wave queues behind, then the last Done releases everybody left. */
#define MW_FIRST 24
#define MW_SECOND 8

static ringo_waitgroup mw, mw_timed_out, mw_back;
static atomic_int mw_timeouts, mw_zeros, mw_others;

static void multi_waiter(void *arg)
{
    int64_t when = *(int64_t *)arg;
    int r = ringo_waitgroup_wait_until(&mw, when);
    if (r == -ETIMEDOUT) {
        atomic_fetch_add(&mw_timeouts, 1);
        ringo_waitgroup_done(&mw_timed_out);
    } else if (r == 0) {
        atomic_fetch_add(&mw_zeros, 1);
    } else {
        atomic_fetch_add(&mw_others, 1);
    }
    ringo_waitgroup_done(&mw_back);
}

static void main_until_many(void *arg)
{
    (void)arg;
    static int64_t whens[MW_FIRST + MW_SECOND];
    memset(&mw, 0, sizeof mw);
    memset(&mw_timed_out, 0, sizeof mw_timed_out);
    memset(&mw_back, 0, sizeof mw_back);
    atomic_store(&mw_timeouts, 0);
    atomic_store(&mw_zeros, 0);
    atomic_store(&mw_others, 0);
    ringo_waitgroup_add(&mw, 1);
    ringo_waitgroup_add(&mw_back, MW_FIRST + MW_SECOND);
    int timed = 0;
    int64_t now = ringo_now();
    for (int i = 0; i < MW_FIRST; i++) {
        if (i % 2) {
            whens[i] = now + (1 + i % 5) * MS; /* these time out */
            timed++;
        } else {
            whens[i] = i % 4 ? now + FAR_NS : RINGO_NEVER;
        }
    }
    ringo_waitgroup_add(&mw_timed_out, timed);
    for (int i = 0; i < MW_FIRST; i++)
        ck_assert_int_gt(ringo_go_on(i % ringo_nprocs(), multi_waiter, &whens[i]), 0);
    ringo_waitgroup_wait(&mw_timed_out); /* every near `when` has passed */
    ck_assert_int_eq(atomic_load(&mw_timeouts), timed);
    ck_assert_int_eq(atomic_load(&mw_zeros), 0);
    for (int i = MW_FIRST; i < MW_FIRST + MW_SECOND; i++) {
        whens[i] = i % 2 ? ringo_now() + FAR_NS : RINGO_NEVER;
        ck_assert_int_gt(ringo_go_on(i % ringo_nprocs(), multi_waiter, &whens[i]), 0);
    }
    ringo_sleep(2 * MS); /* most likely all parked by now; either order must work */
    ringo_waitgroup_done(&mw);
    ringo_waitgroup_wait(&mw_back);
    ck_assert_int_eq(atomic_load(&mw_timeouts), timed);
    ck_assert_int_eq(atomic_load(&mw_zeros), MW_FIRST + MW_SECOND - timed);
    ck_assert_int_eq(atomic_load(&mw_others), 0);
    assert_table_empty(&mw);
}

START_TEST(waitgroup_until_many_waiters)
{
    RUN(main_until_many, NULL, nprocs_param);
}
END_TEST

/* A plain thread's timed wait during a run: it blocks in futex(2). */
static ringo_waitgroup tw, tw_timed_out;
static int tw_results[4];

static void *timed_wait_thread(void *arg)
{
    (void)arg;
    tw_results[0] = ringo_waitgroup_wait_until(&tw, ringo_now() - 1);
    int64_t when = ringo_now() + 3 * MS;
    tw_results[1] = ringo_waitgroup_wait_until(&tw, when);
    if (ringo_now() < when)
        tw_results[1] = 1; /* returned early */
    ringo_waitgroup_done(&tw_timed_out);
    tw_results[2] = ringo_waitgroup_wait_until(&tw, ringo_now() + FAR_NS);
    tw_results[3] = ringo_waitgroup_wait_until(&tw, 0);
    return NULL;
}

static void main_until_thread(void *arg)
{
    (void)arg;
    memset(&tw, 0, sizeof tw);
    memset(&tw_timed_out, 0, sizeof tw_timed_out);
    memset(tw_results, 0x55, sizeof tw_results);
    ringo_waitgroup_add(&tw, 1);
    ringo_waitgroup_add(&tw_timed_out, 1);
    uint64_t before = atomic_load(&futex_counts.thread);
    pthread_t t;
    ck_assert_int_eq(test_thread_create(&t, timed_wait_thread, NULL), 0);
    ringo_waitgroup_wait(&tw_timed_out);
    ringo_sleep(2 * MS); /* most likely blocked again by now; either order must work */
    ringo_waitgroup_done(&tw);
    pthread_join(t, NULL);
    ck_assert_int_eq(tw_results[0], -ETIMEDOUT);
    ck_assert_int_eq(tw_results[1], -ETIMEDOUT);
    ck_assert_int_eq(tw_results[2], 0);
    ck_assert_int_eq(tw_results[3], 0);
    ck_assert_uint_gt(atomic_load(&futex_counts.thread), before);
}

START_TEST(waitgroup_until_plain_thread)
{
    RUN(main_until_thread, NULL, nprocs_param);
    /* And outside any run. */
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    ringo_waitgroup_add(&w, 1);
    int64_t when = ringo_now() + 2 * MS;
    ck_assert_int_eq(ringo_waitgroup_wait_until(&w, when), -ETIMEDOUT);
    ck_assert_int_ge(ringo_now(), when);
    ringo_waitgroup_done(&w);
    ck_assert_int_eq(ringo_waitgroup_wait_until(&w, 0), 0);
}
END_TEST

/* A timed wait that nobody can end (no `when`, no deadline) is a deadlock
 * like an untimed one, also after timed waits that ended: their futex
 * waits are accounted for both ways (futex.c "Timed waits"). */
static void main_until_deadlock(void *arg)
{
    (void)arg;
    static ringo_waitgroup w;
    ringo_waitgroup_add(&w, 1);
    for (int i = 0; i < 3; i++)
        if (ringo_waitgroup_wait_until(&w, ringo_now() + 1 * MS) != -ETIMEDOUT)
            _exit(3);
    ringo_waitgroup_wait_until(&w, RINGO_NEVER);
    _exit(4);
}

static void child_until_deadlock(void)
{
    struct ringo_config cfg = { .procs = nprocs_param };
    _exit(ringo_run(main_until_deadlock, NULL, &cfg) == -EDEADLK ? 0 : 1);
}

START_TEST(waitgroup_until_deadlock_is_reported)
{
    char buf[8192];
    int st = run_captured(child_until_deadlock, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    ck_assert_msg(strstr(buf, "[waitgroup, ") != NULL, "stderr: %s", buf);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Once */

static ringo_once once_obj;
static atomic_int once_calls, once_finished, once_saw_unfinished;

static void once_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&once_calls, 1);
    ringo_sleep(20 * MS); /* park inside fn: the others must wait, not return */
    atomic_store(&once_finished, 1);
}

static void once_racer(void *arg)
{
    ringo_once_do(&once_obj, once_fn, NULL);
    if (!atomic_load(&once_finished))
        atomic_fetch_add(&once_saw_unfinished, 1);
    ringo_waitgroup_done(arg);
}

static void main_once(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    memset(&once_obj, 0, sizeof once_obj);
    ringo_waitgroup_add(&w, 100);
    for (int i = 0; i < 100; i++)
        ringo_go(once_racer, &w);
    ringo_waitgroup_wait(&w);
}

START_TEST(once_runs_once_and_others_wait)
{
    atomic_store(&once_calls, 0);
    atomic_store(&once_finished, 0);
    atomic_store(&once_saw_unfinished, 0);
    RUN(main_once, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&once_calls), 1);
    ck_assert_int_eq(atomic_load(&once_saw_unfinished), 0);
}
END_TEST

/* What fn wrote is visible to every caller once ringo_once_do returns,
 * also to one that finds fn done only as it tries to run it (its own
 * compare-and-swap fails on the word the runner just set): two plain
 * threads race on many onces, fn writing a plain int, both reading it.
 * A missing acquire there is a data race ThreadSanitizer reports (the
 * suite's TSan build); the values are checked here too. */
#define ONCE_RACES 20000
static ringo_once race_once[ONCE_RACES];
static int race_data[ONCE_RACES];
static pthread_barrier_t race_bar;
static atomic_int race_bad;

static void race_fn(void *arg)
{
    race_data[(intptr_t)arg] = 42;
}

static void *once_race_thread(void *arg)
{
    intptr_t me = (intptr_t)arg;
    volatile int spin = 0;
    for (intptr_t i = 0; i < ONCE_RACES; i++) {
        if (i % 64 == 0)
            pthread_barrier_wait(&race_bar); /* keep the two close together */
        for (int k = 0; me && k < (int)(i % 61); k++)
            spin++;
        ringo_once_do(&race_once[i], race_fn, (void *)i);
        if (race_data[i] != 42)
            atomic_fetch_add(&race_bad, 1);
    }
    return NULL;
}

START_TEST(once_done_is_seen_by_every_caller)
{
    memset(race_once, 0, sizeof race_once);
    memset(race_data, 0, sizeof race_data);
    atomic_store(&race_bad, 0);
    ck_assert_int_eq(pthread_barrier_init(&race_bar, NULL, 2), 0);
    pthread_t t[2];
    for (intptr_t i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, once_race_thread, (void *)i), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&race_bar);
    ck_assert_int_eq(atomic_load(&race_bad), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Cond */

#define QCAP 16
#define NITEMS 20000
#define NCONSUMERS 4

static ringo_mutex qmu;
static ringo_cond qnotempty, qnotfull;
static int queue[QCAP], qhead, qlen;    /* under qmu */
static long consumed_sum;               /* under qmu */
static int consumed_n;                  /* under qmu */
static bool use_broadcast;

static void producer(void *arg)
{
    for (int i = 1; i <= NITEMS; i++) {
        ringo_mutex_lock(&qmu);
        while (qlen == QCAP)
            ringo_cond_wait(&qnotfull, &qmu);
        queue[(qhead + qlen++) % QCAP] = i;
        if (use_broadcast)
            ringo_cond_broadcast(&qnotempty);
        else
            ringo_cond_signal(&qnotempty);
        ringo_mutex_unlock(&qmu);
    }
    /* end-of-stream markers, one per consumer */
    for (int i = 0; i < NCONSUMERS; i++) {
        ringo_mutex_lock(&qmu);
        while (qlen == QCAP)
            ringo_cond_wait(&qnotfull, &qmu);
        queue[(qhead + qlen++) % QCAP] = 0;
        ringo_cond_signal(&qnotempty);
        ringo_mutex_unlock(&qmu);
    }
    ringo_waitgroup_done(arg);
}

static void consumer(void *arg)
{
    for (;;) {
        ringo_mutex_lock(&qmu);
        while (qlen == 0)
            ringo_cond_wait(&qnotempty, &qmu);
        int v = queue[qhead];
        qhead = (qhead + 1) % QCAP;
        qlen--;
        if (use_broadcast)
            ringo_cond_broadcast(&qnotfull);
        else
            ringo_cond_signal(&qnotfull);
        if (v) {
            consumed_sum += v;
            consumed_n++;
        }
        ringo_mutex_unlock(&qmu);
        if (!v)
            break;
    }
    ringo_waitgroup_done(arg);
}

static void main_prodcons(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    memset(&qmu, 0, sizeof qmu);
    memset(&qnotempty, 0, sizeof qnotempty);
    memset(&qnotfull, 0, sizeof qnotfull);
    qhead = qlen = 0;
    consumed_sum = 0;
    consumed_n = 0;
    ringo_waitgroup_add(&w, 1 + NCONSUMERS);
    for (int i = 0; i < NCONSUMERS; i++)
        ringo_go(consumer, &w);
    ringo_go(producer, &w);
    ringo_waitgroup_wait(&w);
}

START_TEST(cond_producer_consumer_signal)
{
    use_broadcast = false;
    RUN(main_prodcons, NULL, nprocs_param);
    ck_assert_int_eq(consumed_n, NITEMS);
    ck_assert_int_eq(consumed_sum, (long)NITEMS * (NITEMS + 1) / 2);
}
END_TEST

START_TEST(cond_producer_consumer_broadcast)
{
    use_broadcast = true;
    RUN(main_prodcons, NULL, nprocs_param);
    ck_assert_int_eq(consumed_n, NITEMS);
    ck_assert_int_eq(consumed_sum, (long)NITEMS * (NITEMS + 1) / 2);
}
END_TEST

/* Broadcast wakes every waiter, goroutines and a plain thread. */
static ringo_mutex gate_mu;
static ringo_cond gate_cond;
static bool gate_open;                  /* under gate_mu */
static atomic_int gate_waiting, gate_passed;

static void gate_waiter(void *arg)
{
    ringo_mutex_lock(&gate_mu);
    atomic_fetch_add(&gate_waiting, 1);
    while (!gate_open)
        ringo_cond_wait(&gate_cond, &gate_mu);
    ringo_mutex_unlock(&gate_mu);
    atomic_fetch_add(&gate_passed, 1);
    if (arg)
        ringo_waitgroup_done(arg);
}

static void *gate_thread(void *arg)
{
    gate_waiter(arg);
    return NULL;
}

static void main_broadcast(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    memset(&gate_mu, 0, sizeof gate_mu);
    memset(&gate_cond, 0, sizeof gate_cond);
    gate_open = false;
    atomic_store(&gate_waiting, 0);
    atomic_store(&gate_passed, 0);
    ringo_waitgroup_add(&w, 51);
    pthread_t t;
    ck_assert_int_eq(test_thread_create(&t, gate_thread, &w), 0);
    for (int i = 0; i < 50; i++)
        ringo_go(gate_waiter, &w);
    while (atomic_load(&gate_waiting) < 51)
        ringo_sleep(1 * MS);
    ringo_mutex_lock(&gate_mu);
    gate_open = true;
    ringo_cond_broadcast(&gate_cond);
    ringo_mutex_unlock(&gate_mu);
    ringo_waitgroup_wait(&w);
    ck_assert_int_eq(atomic_load(&gate_passed), 51);
    pthread_join(t, NULL);
}

START_TEST(cond_broadcast_wakes_all)
{
    RUN(main_broadcast, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* RWMutex */

#define NREADERS 8

static ringo_rwmutex rw;
static atomic_int readers_inside, readers_max, writers_inside, rw_violations;
static long rw_value;                   /* written under the write lock */

static void overlapping_reader(void *arg)
{
    ringo_rwmutex_rlock(&rw);
    int n = atomic_fetch_add(&readers_inside, 1) + 1;
    /* Stay inside until every reader is in (bounded: 10 s). */
    for (int i = 0; i < 10000 && atomic_load(&readers_inside) < NREADERS; i++)
        ringo_sleep(1 * MS);
    n = atomic_load(&readers_inside);
    int m = atomic_load(&readers_max);
    while (n > m && !atomic_compare_exchange_weak(&readers_max, &m, n))
        ;
    ringo_rwmutex_runlock(&rw);
    ringo_waitgroup_done(arg);
}

static void main_readers_overlap(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    memset(&rw, 0, sizeof rw);
    atomic_store(&readers_inside, 0);
    atomic_store(&readers_max, 0);
    ringo_waitgroup_add(&w, NREADERS);
    for (int i = 0; i < NREADERS; i++)
        ringo_go(overlapping_reader, &w);
    ringo_waitgroup_wait(&w);
}

START_TEST(rwmutex_readers_overlap)
{
    RUN(main_readers_overlap, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&readers_max), NREADERS);
}
END_TEST

static void rw_reader(void *arg)
{
    for (int i = 0; i < 2000; i++) {
        ringo_rwmutex_rlock(&rw);
        atomic_fetch_add(&readers_inside, 1);
        if (atomic_load(&writers_inside))
            atomic_fetch_add(&rw_violations, 1);
        long v = rw_value;
        if (i % 10 == 0)
            ringo_yield();
        if (rw_value != v)
            atomic_fetch_add(&rw_violations, 1);
        atomic_fetch_sub(&readers_inside, 1);
        ringo_rwmutex_runlock(&rw);
    }
    ringo_waitgroup_done(arg);
}

static void rw_writer_step(int i)
{
    ringo_rwmutex_lock(&rw);
    if (atomic_fetch_add(&writers_inside, 1) != 0 || atomic_load(&readers_inside))
        atomic_fetch_add(&rw_violations, 1);
    long v = rw_value;
    if (i % 10 == 0)
        ringo_yield();
    rw_value = v + 1;
    atomic_fetch_sub(&writers_inside, 1);
    ringo_rwmutex_unlock(&rw);
}

static void rw_writer(void *arg)
{
    for (int i = 0; i < 1000; i++)
        rw_writer_step(i);
    ringo_waitgroup_done(arg);
}

static void *rw_writer_thread(void *arg)
{
    for (int i = 0; i < 1000; i++) {
        ringo_rwmutex_lock(&rw);
        if (atomic_fetch_add(&writers_inside, 1) != 0 || atomic_load(&readers_inside))
            atomic_fetch_add(&rw_violations, 1);
        rw_value++;
        atomic_fetch_sub(&writers_inside, 1);
        ringo_rwmutex_unlock(&rw);
    }
    ringo_waitgroup_done(arg);
    return NULL;
}

static void main_rw_mixed(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    memset(&rw, 0, sizeof rw);
    atomic_store(&readers_inside, 0);
    atomic_store(&writers_inside, 0);
    atomic_store(&rw_violations, 0);
    rw_value = 0;
    ringo_waitgroup_add(&w, 8 + 4 + 1);
    pthread_t t;
    ck_assert_int_eq(test_thread_create(&t, rw_writer_thread, &w), 0);
    for (int i = 0; i < 8; i++)
        ringo_go(rw_reader, &w);
    for (int i = 0; i < 4; i++)
        ringo_go(rw_writer, &w);
    ringo_waitgroup_wait(&w);
    pthread_join(t, NULL);
}

START_TEST(rwmutex_writers_exclusive)
{
    RUN(main_rw_mixed, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&rw_violations), 0);
    ck_assert_int_eq(rw_value, 4 * 1000 + 1000);
}
END_TEST

/* A stream of overlapping readers that never leaves the lock free must
 * not keep a writer out (readers arriving after it queue). */
static atomic_int stream_stop;

static void stream_reader(void *arg)
{
    while (!atomic_load(&stream_stop)) {
        ringo_rwmutex_rlock(&rw);
        ringo_sleep(100 * US); /* always some reader inside */
        ringo_rwmutex_runlock(&rw);
    }
    ringo_waitgroup_done(arg);
}

static void main_writer_not_starved(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    memset(&rw, 0, sizeof rw);
    atomic_store(&stream_stop, 0);
    ringo_waitgroup_add(&w, 16);
    for (int i = 0; i < 16; i++)
        ringo_go(stream_reader, &w);
    ringo_sleep(5 * MS);
    ringo_rwmutex_lock(&rw);  /* the test's timeout is the failure */
    atomic_store(&stream_stop, 1);
    ringo_rwmutex_unlock(&rw);
    ringo_waitgroup_wait(&w);
}

START_TEST(rwmutex_writer_not_starved)
{
    RUN(main_writer_not_starved, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Starvation mode: a waiter gets the mutex while others hammer it. */

static atomic_int hammer_stop;
static atomic_long hammer_rounds;

static void hammer(void *arg)
{
    (void)arg;
    while (!atomic_load(&hammer_stop)) {
        ringo_mutex_lock(&mu);
        atomic_fetch_add(&hammer_rounds, 1);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        do /* hold it ~20 us, busy: a waiter almost never finds it free */
            clock_gettime(CLOCK_MONOTONIC, &t1);
        while ((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec) < 20 * US);
        ringo_mutex_unlock(&mu); /* and straight back: barges past any waiter */
    }
}

static void *hammer_thread(void *arg)
{
    hammer(arg);
    return NULL;
}

static int64_t starve_wait_ns;

static void main_starvation(void *arg)
{
    (void)arg;
    memset(&mu, 0, sizeof mu);
    atomic_store(&hammer_stop, 0);
    atomic_store(&hammer_rounds, 0);
    pthread_t t;
    ck_assert_int_eq(test_thread_create(&t, hammer_thread, NULL), 0);
    if (ringo_nprocs() > 1)
        ringo_go_on(1, hammer, NULL); /* never yields: proc 1 is all its */
    while (atomic_load(&hammer_rounds) < 1000)
        ringo_sleep(1 * MS);
    int64_t t0 = ringo_now();
    ringo_mutex_lock(&mu);
    starve_wait_ns = ringo_now() - t0;
    atomic_store(&hammer_stop, 1);
    ringo_mutex_unlock(&mu);
    pthread_join(t, NULL);
}

START_TEST(mutex_starvation_mode)
{
    RUN(main_starvation, NULL, nprocs_param);
    printf("  starving waiter on %u proc(s) got the mutex after %.3f ms\n",
           nprocs_param, starve_wait_ns / 1e6);
    /* The waiter got it while the hammers kept going (they stop only once
     * it has); a waiter that never gets it is the test's timeout. */
}
END_TEST

/* ------------------------------------------------------------------ */
/* Sync waits ignore deadlines and cancellation, as in Go. */

static ringo_mutex held_mu;
static atomic_int acquired;

static void impatient(void *arg)
{
    ringo_deadline_set(ringo_now() + 1 * MS);
    ringo_mutex_lock(&held_mu);  /* neither the deadline nor the cancel ends this */
    atomic_store(&acquired, 1);
    ringo_mutex_unlock(&held_mu);
    ringo_waitgroup_done(arg);
}

static void main_ignores(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    memset(&held_mu, 0, sizeof held_mu);
    atomic_store(&acquired, 0);
    ringo_mutex_lock(&held_mu);
    ringo_waitgroup_add(&w, 1);
    int64_t id = ringo_go(impatient, &w);
    ringo_sleep(20 * MS);
    ck_assert_int_eq(ringo_cancel(id), 0);
    ringo_sleep(20 * MS);
    ck_assert_int_eq(atomic_load(&acquired), 0);
    ringo_mutex_unlock(&held_mu);
    ringo_waitgroup_wait(&w);
    ck_assert_int_eq(atomic_load(&acquired), 1);
}

START_TEST(sync_ignores_deadline_and_cancel)
{
    RUN(main_ignores, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Deadlock: a goroutine waiting on a mutex nobody will unlock is
 * reported, on the io_uring path too, after contention has sent wakes. */

static void main_self_deadlock(void *arg)
{
    (void)arg;
    main_counter((void *)0L); /* wakes in flight and done: the transit count returns to 0 */
    ringo_mutex m = RINGO_MUTEX_INIT;
    ringo_mutex_lock(&m);
    ringo_mutex_lock(&m);
}

static void child_self_deadlock(void)
{
    struct ringo_config cfg = { .procs = nprocs_param };
    _exit(ringo_run(main_self_deadlock, NULL, &cfg) == -EDEADLK ? 0 : 1);
}

START_TEST(mutex_deadlock_is_reported)
{
    char buf[8192];
    int st = run_captured(child_self_deadlock, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    ck_assert_msg(strstr(buf, "all goroutines are asleep") != NULL, "stderr: %s", buf);
    ck_assert_msg(strstr(buf, "[mutex, ") != NULL, "stderr: %s", buf);
}
END_TEST

static void wg_forever(void *arg)
{
    ringo_waitgroup_wait(arg);
}

static void main_wg_deadlock(void *arg)
{
    (void)arg;
    static ringo_waitgroup w;
    ringo_waitgroup_add(&w, 1);
    ringo_go(wg_forever, &w);
    ringo_waitgroup_wait(&w);
}

static void child_wg_deadlock(void)
{
    struct ringo_config cfg = { .procs = nprocs_param };
    _exit(ringo_run(main_wg_deadlock, NULL, &cfg) == -EDEADLK ? 0 : 1);
}

START_TEST(waitgroup_deadlock_is_reported)
{
    char buf[8192];
    int st = run_captured(child_wg_deadlock, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    ck_assert_msg(strstr(buf, "[waitgroup, ") != NULL, "stderr: %s", buf);
}
END_TEST

/* A run that ends in deadlock leaves no trace in the wait table: the next
 * run contends on the same mutex (the same table bucket) safely. */
static ringo_mutex leftover_mu;

static void stuck_locker(void *arg)
{
    (void)arg;
    ringo_mutex_lock(&leftover_mu);
}

static void main_leave_waiter(void *arg)
{
    (void)arg;
    ringo_mutex_lock(&leftover_mu);
    ringo_go(stuck_locker, NULL);
    ringo_go(stuck_locker, NULL);
    ringo_mutex_lock(&leftover_mu);
}

static void locker_unlocker(void *arg)
{
    for (int i = 0; i < 1000; i++) {
        ringo_mutex_lock(&leftover_mu);
        if (i % 10 == 0)
            ringo_yield();
        ringo_mutex_unlock(&leftover_mu);
    }
    ringo_waitgroup_done(arg);
}

static void main_reuse_after_deadlock(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    memset(&leftover_mu, 0, sizeof leftover_mu);
    ringo_waitgroup_add(&w, 10);
    for (int i = 0; i < 10; i++)
        ringo_go(locker_unlocker, &w);
    ringo_waitgroup_wait(&w);
}

START_TEST(run_after_sync_deadlock)
{
    int devnull = open("/dev/null", O_WRONLY);
    int saved = dup(2);
    dup2(devnull, 2);
    memset(&leftover_mu, 0, sizeof leftover_mu);
    int r = run_procs(main_leave_waiter, NULL, nprocs_param);
    dup2(saved, 2);
    close(devnull);
    close(saved);
    ck_assert_int_eq(r, -EDEADLK);
    RUN(main_reuse_after_deadlock, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Fatal misuse */

static void in_run(void (*fn)(void *))
{
    struct ringo_config cfg = { .procs = nprocs_param };
    ringo_run(fn, NULL, &cfg);
}

static void bad_unlock(void *arg)
{
    (void)arg;
    ringo_mutex m = RINGO_MUTEX_INIT;
    ringo_mutex_unlock(&m);
}
static void child_bad_unlock(void) { in_run(bad_unlock); }
static void child_bad_unlock_thread(void) { bad_unlock(NULL); }

static void bad_runlock(void *arg)
{
    (void)arg;
    ringo_rwmutex m = RINGO_RWMUTEX_INIT;
    ringo_rwmutex_runlock(&m);
}
static void child_bad_runlock(void) { in_run(bad_runlock); }

static void bad_rw_unlock(void *arg)
{
    (void)arg;
    ringo_rwmutex m = RINGO_RWMUTEX_INIT;
    ringo_rwmutex_rlock(&m);
    ringo_rwmutex_runlock(&m);
    ringo_rwmutex_unlock(&m);
}
static void child_bad_rw_unlock(void) { in_run(bad_rw_unlock); }

static void bad_wg(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    ringo_waitgroup_add(&w, 2);
    ringo_waitgroup_done(&w);
    ringo_waitgroup_done(&w);
    ringo_waitgroup_done(&w);
}
static void child_bad_wg(void) { in_run(bad_wg); }

static void bad_wg_overflow(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    ringo_waitgroup_add(&w, (1 << 30) - 1);
    ringo_waitgroup_add(&w, 1);
}
static void child_bad_wg_overflow(void) { in_run(bad_wg_overflow); }

static void bad_wg_delta(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    ringo_waitgroup_add(&w, 1 << 30);
}
static void child_bad_wg_delta(void) { in_run(bad_wg_delta); }

static void bad_wg_delta_neg(void *arg)
{
    (void)arg;
    ringo_waitgroup w = RINGO_WAITGROUP_INIT;
    ringo_waitgroup_add(&w, INT_MIN);
}
static void child_bad_wg_delta_neg(void) { in_run(bad_wg_delta_neg); }

static void expect_fatal(void (*child)(void), const char *msg, bool in_goroutine)
{
    char buf[4096];
    int st = run_captured(child, buf, sizeof buf);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %d, stderr: %s", st, buf);
    char want[256];
    snprintf(want, sizeof want, "ringo: fatal error: %s\n", msg);
    ck_assert_msg(strncmp(buf, want, strlen(want)) == 0, "stderr: %s", buf);
    if (in_goroutine)
        ck_assert_msg(strstr(buf, "goroutine 1 [running]") != NULL, "stderr: %s", buf);
}

START_TEST(fatal_unlock_of_unlocked_mutex)
{
    expect_fatal(child_bad_unlock, "sync: unlock of unlocked mutex", true);
    expect_fatal(child_bad_unlock_thread, "sync: unlock of unlocked mutex", false);
}
END_TEST

START_TEST(fatal_runlock_of_unlocked_rwmutex)
{
    expect_fatal(child_bad_runlock, "sync: RUnlock of unlocked RWMutex", true);
}
END_TEST

START_TEST(fatal_unlock_of_unlocked_rwmutex)
{
    expect_fatal(child_bad_rw_unlock, "sync: Unlock of unlocked RWMutex", true);
}
END_TEST

START_TEST(fatal_negative_waitgroup_counter)
{
    expect_fatal(child_bad_wg, "sync: negative WaitGroup counter", true);
}
END_TEST

START_TEST(fatal_waitgroup_counter_overflow)
{
    expect_fatal(child_bad_wg_overflow, "sync: WaitGroup counter overflow", true);
    expect_fatal(child_bad_wg_delta, "sync: WaitGroup delta out of range", true);
    expect_fatal(child_bad_wg_delta_neg, "sync: WaitGroup delta out of range", true);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *suite(void)
{
    Suite *s = suite_create("sync");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, mutex_exact_total);
    tcase_add_test(tc, mutex_exact_total_with_threads);
    tcase_add_test(tc, mutex_tight_loops);
    tcase_add_test(tc, futex_paths);
    tcase_add_test(tc, mutex_trylock);
    tcase_add_test(tc, mutex_plain_thread_not_starved_by_goroutines);
    tcase_add_test(tc, plain_waiter_woken_leaves_deadlock_detection_on);
    tcase_add_loop_test(tc, plain_wake_across_the_run_start_leaves_deadlock_detection_on, 0, 2);
    tcase_add_loop_test(tc, fork_with_half_a_wake_leaves_deadlock_detection_on, 0, 2);
    tcase_add_test(tc, plain_thread_holding_a_mutex_since_before_the_run);
    tcase_add_test(tc, sleeping_thread_costs_other_words_no_wake);
    tcase_add_test(tc, zero_and_init_objects);
    tcase_add_test(tc, waitgroup_100k_goroutines);
    tcase_add_test(tc, waitgroup_freed_by_its_waiter);
    tcase_add_test(tc, waitgroup_wait_behind_cq_backlog);
    tcase_add_test(tc, completions_set_aside_are_dispatched);
    tcase_add_test(tc, waitgroup_waited_from_plain_thread);
    tcase_add_test(tc, waitgroup_until_zero_before_when);
    tcase_add_test(tc, waitgroup_until_when_passes);
    tcase_add_test(tc, waitgroup_until_goroutine_deadline);
    tcase_add_test(tc, waitgroup_until_cancel);
    tcase_add_test(tc, waitgroup_until_counter_zero);
    tcase_add_test(tc, waitgroup_until_many_waiters);
    tcase_add_test(tc, waitgroup_until_plain_thread);
    tcase_add_test(tc, waitgroup_until_deadlock_is_reported);
    tcase_add_test(tc, once_runs_once_and_others_wait);
    tcase_add_test(tc, once_done_is_seen_by_every_caller);
    tcase_add_test(tc, cond_producer_consumer_signal);
    tcase_add_test(tc, cond_producer_consumer_broadcast);
    tcase_add_test(tc, cond_broadcast_wakes_all);
    tcase_add_test(tc, rwmutex_readers_overlap);
    tcase_add_test(tc, rwmutex_writers_exclusive);
    tcase_add_test(tc, rwmutex_writer_not_starved);
    tcase_add_test(tc, mutex_starvation_mode);
    tcase_add_test(tc, sync_ignores_deadline_and_cancel);
    tcase_add_test(tc, mutex_deadlock_is_reported);
    tcase_add_test(tc, waitgroup_deadlock_is_reported);
    tcase_add_test(tc, run_after_sync_deadlock);
    suite_add_tcase(s, tc);

    TCase *tm = tcase_create("misuse");
    tcase_set_timeout(tm, 60);
    tcase_add_test(tm, fatal_unlock_of_unlocked_mutex);
    tcase_add_test(tm, fatal_runlock_of_unlocked_rwmutex);
    tcase_add_test(tm, fatal_unlock_of_unlocked_rwmutex);
    tcase_add_test(tm, fatal_negative_waitgroup_counter);
    tcase_add_test(tm, fatal_waitgroup_counter_overflow);
    suite_add_tcase(s, tm);
    return s;
}

int main(void)
{
    skip_without_io_uring();
    printf("futex path: %s\n", forced_fallback() ? "wait table (forced)" : "io_uring where supported");
    return run_per_procs(suite, &nprocs_param);
}
