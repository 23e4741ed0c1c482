/*
 * check_sched.c — the runtime: ringo_run, goroutines, procs, yield, exit,
 * ids, counts, cancellation, deadlock detection, repeated runs, spawns from
 * plain threads, setup failures and stack overflow.
 */
#include "testutil.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <alloca.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "internal.h" /* tls_proc and struct stack: where a guard page lies */
#include "scheduler.h" /* donate */

static unsigned nprocs_param = 1;

/* ------------------------------------------------------------------ */

static atomic_int counter;

static void bump(void *arg)
{
    (void)arg;
    atomic_fetch_add(&counter, 1);
}

static void main_spawns(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < n; i++)
        ck_assert_int_gt(ringo_go(bump, NULL), 0);
}

START_TEST(run_waits_for_every_goroutine)
{
    atomic_store(&counter, 0);
    RUN(main_spawns, (void *)1000L, nprocs_param);
    ck_assert_int_eq(atomic_load(&counter), 1000);
}
END_TEST

static void main_nested(void *arg);
static void nested(void *arg)
{
    long depth = (long)arg;
    atomic_fetch_add(&counter, 1);
    if (depth > 0) {
        ringo_go(nested, (void *)(depth - 1));
        ringo_go(nested, (void *)(depth - 1));
    }
}
static void main_nested(void *arg)
{
    (void)arg;
    ringo_go(nested, (void *)9L);
}

START_TEST(run_waits_for_grandchildren)
{
    atomic_store(&counter, 0);
    RUN(main_nested, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&counter), 1023); /* 2^10 - 1 */
}
END_TEST

START_TEST(version_matches_header)
{
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", RINGO_VERSION_MAJOR, RINGO_VERSION_MINOR,
             RINGO_VERSION_PATCH);
    ck_assert_str_eq(ringo_version(), want);
}
END_TEST

START_TEST(run_rejects_bad_input)
{
    ck_assert_int_eq(ringo_run(NULL, NULL, NULL), -EINVAL);
    struct ringo_config cfg = { .procs = 100000 };
    ck_assert_int_eq(ringo_run(bump, NULL, &cfg), -EINVAL);
    cfg.procs = 4097;
    ck_assert_int_eq(ringo_run(bump, NULL, &cfg), -EINVAL);
    cfg = (struct ringo_config){ .procs = 1, .stack_size = ((size_t)1 << 30) + 1 };
    ck_assert_int_eq(ringo_run(bump, NULL, &cfg), -EINVAL);
}
END_TEST

static void *run_from_thread(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)ringo_run(bump, NULL, NULL);
}

static void main_reenter(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_run(bump, NULL, NULL), -EBUSY);
    /* nor from another thread while this run goes on */
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, run_from_thread, NULL), 0);
    void *r;
    ck_assert_int_eq(pthread_join(t, &r), 0);
    ck_assert_int_eq((int)(intptr_t)r, -EBUSY);
}

START_TEST(run_is_not_reentrant)
{
    RUN(main_reenter, NULL, nprocs_param);
}
END_TEST

START_TEST(run_can_be_repeated)
{
    for (int i = 0; i < 20; i++) {
        atomic_store(&counter, 0);
        RUN(main_spawns, (void *)50L, (unsigned)(i % 2 + 1));
        ck_assert_int_eq(atomic_load(&counter), 50);
    }
}
END_TEST

/* ------------------------------------------------------------------ */

static void main_ids(void *arg)
{
    (void)arg;
    ck_assert_int_gt(ringo_id(), 0);
    ck_assert_int_eq(ringo_nprocs(), (int)nprocs_param);
    ck_assert_int_ge(ringo_proc(), 0);
    ck_assert_int_lt(ringo_proc(), (int)nprocs_param);
    ck_assert_uint_eq(ringo_count(), 1);
    int64_t a = ringo_go(bump, NULL), b = ringo_go(bump, NULL);
    ck_assert_int_gt(a, 0);
    ck_assert_int_gt(b, 0);
    ck_assert_int_ne(a, b);
    ck_assert_int_ne(a, ringo_id());
    /* Counted from the spawn: on one proc neither has run yet; on more,
     * an idle proc may already have taken them and run them (stealing). */
    size_t n = ringo_count();
    if (nprocs_param == 1)
        ck_assert_uint_eq(n, 3);
    else
        ck_assert_msg(n >= 1 && n <= 3, "ringo_count() == %zu", n);
    while (ringo_count() > 1)
        ringo_yield();
}

START_TEST(ids_procs_and_count)
{
    ck_assert_int_eq(ringo_id(), 0);
    ck_assert_int_eq(ringo_proc(), -1);
    ck_assert_int_eq(ringo_nprocs(), 0);
    ck_assert_uint_eq(ringo_count(), 0);
    RUN(main_ids, NULL, nprocs_param);
    ck_assert_uint_eq(ringo_count(), 0);
}
END_TEST

static int64_t seen_ids[64];

static void record_id(void *arg)
{
    seen_ids[(long)arg] = ringo_id();
}

static void main_unique_ids(void *arg)
{
    (void)arg;
    for (long round = 0; round < 4; round++) {
        for (long i = 0; i < 16; i++)
            ringo_go(record_id, (void *)(round * 16 + i));
        while (ringo_count() > 1)
            ringo_yield();
    }
}

START_TEST(ids_are_never_reused)
{
    RUN(main_unique_ids, NULL, nprocs_param);
    for (int i = 0; i < 64; i++) {
        ck_assert_int_gt(seen_ids[i], 0);
        for (int j = 0; j < i; j++)
            ck_assert_int_ne(seen_ids[i], seen_ids[j]);
    }
}
END_TEST

/* Ids are unique in the process, not only in a run: an id kept from an
 * earlier run names no goroutine of a later one, whose goroutines reuse
 * the same structs (ringo_cancel(3): -ESRCH once its run has ended). */
static int64_t earlier_run_ids[8];
static atomic_int later_sleeps_cancelled;

static void sleeper_100ms(void *arg)
{
    (void)arg;
    if (ringo_sleep(100 * MS) == -ECANCELED)
        atomic_fetch_add(&later_sleeps_cancelled, 1);
}

static void main_earlier_ids(void *arg)
{
    (void)arg;
    for (int i = 0; i < 8; i++)
        earlier_run_ids[i] = ringo_go(record_id, (void *)(long)i);
    while (ringo_count() > 1)
        ringo_yield();
}

static void main_later_ids(void *arg)
{
    (void)arg;
    int64_t later[8];
    for (int i = 0; i < 8; i++)
        later[i] = ringo_go(sleeper_100ms, NULL);
    for (int i = 0; i < 8; i++) {
        for (int j = 0; j < 8; j++)
            ck_assert_int_ne(later[j], earlier_run_ids[i]);
        ck_assert_int_eq(ringo_cancel(earlier_run_ids[i]), -ESRCH);
    }
}

START_TEST(ids_of_an_earlier_run_name_nobody)
{
    atomic_store(&later_sleeps_cancelled, 0);
    RUN(main_earlier_ids, NULL, nprocs_param);
    RUN(main_later_ids, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&later_sleeps_cancelled), 0);
}
END_TEST

/* A plain thread calls in (ringo_count) again and again while runs start
 * and end: each run still ends.  (Its calls count themselves in and out of
 * the run; one that came as a run was being set up used to be wiped from
 * the count, which then never came back to 0 for the teardown.) */
static atomic_int caller_stop;

static void *count_caller(void *arg)
{
    (void)arg;
    while (!atomic_load(&caller_stop))
        (void)ringo_count();
    return NULL;
}

static void main_short(void *arg)
{
    (void)arg;
    ringo_sleep(1 * MS);
}

START_TEST(runs_end_while_a_plain_thread_calls_in)
{
    atomic_store(&caller_stop, 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, count_caller, NULL), 0);
    int runs = test_quick() ? 100 : 300;
    for (int i = 0; i < runs; i++)
        RUN(main_short, NULL, nprocs_param);
    atomic_store(&caller_stop, 1);
    pthread_join(t, NULL);
}
END_TEST

/* ------------------------------------------------------------------ */

static int order[16];
static int norder;

static void yielder(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < 3; i++) {
        order[norder++] = (int)id;
        ringo_yield();
    }
}

static void main_yield(void *arg)
{
    (void)arg;
    norder = 0;
    ringo_go_on(0, yielder, (void *)1L);
    ringo_go_on(0, yielder, (void *)2L);
}

START_TEST(yield_round_robins)
{
    RUN(main_yield, NULL, 1);
    ck_assert_int_eq(norder, 6);
    int expect[6] = { 1, 2, 1, 2, 1, 2 };
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(order[i], expect[i]);
}
END_TEST

static atomic_int after_exit;

static void exits_early(void *arg)
{
    (void)arg;
    atomic_fetch_add(&counter, 1);
    ringo_exit();
    atomic_fetch_add(&after_exit, 1); /* never reached */
}

static void deep_exit(int depth);
static void (*volatile deep_again)(int) = deep_exit; /* a real call chain, not a loop */

static void deep_exit(int depth)
{
    if (depth == 0)
        ringo_exit();
    deep_again(depth - 1);
    atomic_fetch_add(&after_exit, 1); /* never reached */
}

static void exits_deep(void *arg)
{
    (void)arg;
    atomic_fetch_add(&counter, 1);
    deep_exit(50);
}

static void main_exit(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        ringo_go(exits_early, NULL);
        ringo_go(exits_deep, NULL);
    }
    ringo_exit(); /* main may exit first; the run waits for the others */
}

START_TEST(exit_ends_only_the_caller)
{
    atomic_store(&counter, 0);
    atomic_store(&after_exit, 0);
    RUN(main_exit, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&counter), 200);
    ck_assert_int_eq(atomic_load(&after_exit), 0);
}
END_TEST

/* ------------------------------------------------------------------ */

static atomic_int on_proc_ok;

static void check_on_proc(void *arg)
{
    long want = (long)arg;
    for (int i = 0; i < 10; i++) {
        if (ringo_proc() != want)
            return;
        ringo_yield();
        ringo_sleep(100 * US);
    }
    atomic_fetch_add(&on_proc_ok, 1);
}

static void main_go_on(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_go_on(-1, bump, NULL), -EINVAL);
    ck_assert_int_eq(ringo_go_on(ringo_nprocs(), bump, NULL), -EINVAL);
    ck_assert_int_eq(ringo_go(NULL, NULL), -EINVAL);
    for (int i = 0; i < 20; i++)
        ck_assert_int_gt(ringo_go_on(i % ringo_nprocs(), check_on_proc,
                                     (void *)(long)(i % ringo_nprocs())), 0);
}

START_TEST(go_on_binds_to_proc)
{
    atomic_store(&on_proc_ok, 0);
    RUN(main_go_on, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&on_proc_ok), 20);
}
END_TEST

START_TEST(go_outside_runtime_fails)
{
    ck_assert_int_eq(ringo_go(bump, NULL), -EINVAL);
    ck_assert_int_eq(ringo_go_on(0, bump, NULL), -EINVAL);
}
END_TEST

/* A started goroutine never changes proc, even while others are moved. */
static atomic_int stayed;

static void stays(void *arg)
{
    (void)arg;
    int p = ringo_proc();
    for (int i = 0; i < 50; i++) {
        ringo_sleep(10 * US);
        ringo_yield();
        if (ringo_proc() != p)
            return;
    }
    atomic_fetch_add(&stayed, 1);
}

static int procs_used[2];
static int64_t spread_until;

/* Busy without yielding, so that only another proc can run the rest:
 * until one has run on proc 1 (then 2 ms), or for 5 s all told (a proc 1
 * that takes nothing, or a machine too loaded to run it that long). */
static void busy_note_proc(void *arg)
{
    (void)arg;
    __atomic_store_n(&procs_used[ringo_proc()], 1, __ATOMIC_RELAXED);
    int64_t until = ringo_now() + 2 * MS;
    while (ringo_now() < until ||
           (!__atomic_load_n(&procs_used[1], __ATOMIC_RELAXED) && ringo_now() < spread_until))
        ;
}

static void main_spread(void *arg)
{
    (void)arg;
    spread_until = ringo_now() + 5000 * MS;
    for (int i = 0; i < 200; i++)
        ringo_go(stays, NULL);
    for (int i = 0; i < 50; i++)
        ringo_go(busy_note_proc, NULL);
}

START_TEST(idle_proc_takes_unstarted_goroutines)
{
    atomic_store(&stayed, 0);
    memset(procs_used, 0, sizeof procs_used);
    RUN(main_spread, NULL, 2);
    ck_assert_int_eq(atomic_load(&stayed), 200);
    /* Everything was spawned on proc 0; proc 1 must have taken some. */
    ck_assert_int_eq(procs_used[0] + procs_used[1], 2);
}
END_TEST

/* ------------------------------------------------------------------ */

static void sleeper_forever(void *arg)
{
    (void)arg;
    int r = ringo_sleep(RINGO_NEVER);
    ck_assert_int_eq(r, -ECANCELED);
    atomic_fetch_add(&counter, 1);
    /* cancellation is permanent */
    ck_assert_int_eq(ringo_sleep(1), -ECANCELED);
    ck_assert_int_eq(ringo_sleep(0), -ECANCELED);
}

static void cancelled_before_start(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_sleep(10 * MS), -ECANCELED);
    atomic_fetch_add(&counter, 1);
}

static void main_cancel(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_cancel(0), -ESRCH);
    ck_assert_int_eq(ringo_cancel(-5), -ESRCH);
    ck_assert_int_eq(ringo_cancel(123456789), -ESRCH);
    int64_t ids[20];
    for (int i = 0; i < 20; i++)
        ids[i] = ringo_go_on(i % ringo_nprocs(), sleeper_forever, NULL);
    ringo_sleep(5 * MS);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(ringo_cancel(ids[i]), 0);
    /* a goroutine that has not started yet */
    int64_t id = ringo_go(cancelled_before_start, NULL);
    ck_assert_int_eq(ringo_cancel(id), 0);
    ck_assert_int_eq(ringo_cancel(id), 0); /* twice is fine */
    while (ringo_count() > 1)
        ringo_sleep(1 * MS);
    /* finished goroutines are no longer live */
    ck_assert_int_eq(ringo_cancel(ids[0]), -ESRCH);
    ck_assert_int_eq(ringo_cancel(id), -ESRCH);
}

/* Structs are recycled, and a goroutine that has not started yet has only
 * the first line of its struct (src/internal.h): its id, its cancel and
 * its count must not depend on the rest, nor on what the struct's
 * previous goroutine left.  Round 1 parks goroutines (their structs'
 * park tokens advance) and lets them exit; round 2 spawns as many on the
 * same structs, none started, and cancels every other one. */
#define RECYCLED 300
static int64_t round1[RECYCLED], round2[RECYCLED];
static ringo_chan *recycle_gate;
static atomic_int recycle_ok, recycle_cancelled, recycle_parked;

static void recycle_round1(void *arg)
{
    (void)arg;
    char c;
    atomic_fetch_add(&recycle_parked, 1);
    ck_assert_int_eq(ringo_chan_recv(recycle_gate, &c), -EPIPE);
}

static void recycle_round2(void *arg)
{
    int i = (int)(intptr_t)arg;
    ck_assert_int_eq(ringo_id(), round2[i]);
    char c;
    ringo_deadline_set(ringo_now() + 1 * MS);
    int r = ringo_chan_recv(recycle_gate, &c);
    if (i % 2 == 0) {
        ck_assert_int_eq(r, -ECANCELED);
        atomic_fetch_add(&recycle_cancelled, 1);
    } else {
        ck_assert_int_eq(r, -ETIMEDOUT);
        atomic_fetch_add(&recycle_ok, 1);
    }
}

static void main_recycle(void *arg)
{
    (void)arg;
    recycle_gate = ringo_chan_make(1, 0);
    ck_assert_ptr_nonnull(recycle_gate);
    for (int i = 0; i < RECYCLED; i++) {
        round1[i] = ringo_go_on(0, recycle_round1, NULL);
        ck_assert_int_gt(round1[i], 0);
    }
    while (atomic_load(&recycle_parked) < RECYCLED) /* all about to park (or parked) */
        ringo_yield();
    ringo_yield(); /* the last one parks */
    ck_assert_int_eq(ringo_chan_close(recycle_gate), 0);
    while (ringo_count() > 1)
        ringo_yield();
    ringo_chan_release(recycle_gate);
    recycle_gate = ringo_chan_make(1, 0);
    ck_assert_ptr_nonnull(recycle_gate);

    /* Round 2, on this proc, without a scheduling point until the end. */
    for (int i = 0; i < RECYCLED; i++) {
        round2[i] = ringo_go_on(0, recycle_round2, (void *)(intptr_t)i);
        ck_assert_int_gt(round2[i], 0);
    }
    ck_assert_uint_eq(ringo_count(), RECYCLED + 1);
    for (int i = 0; i < RECYCLED; i++) {
        /* the old goroutines are gone: their ids name nobody, and are
         * never given again */
        ck_assert_int_eq(ringo_cancel(round1[i]), -ESRCH);
        for (int j = 0; j < RECYCLED; j++)
            ck_assert(round2[i] != round1[j] && (i == j || round2[i] != round2[j]));
    }
    for (int i = 0; i < RECYCLED; i += 2)
        ck_assert_int_eq(ringo_cancel(round2[i]), 0);
    ck_assert_int_eq(ringo_cancel(round2[0]), 0); /* again: still 0 */
    while (ringo_count() > 1)
        ringo_yield();
    for (int i = 0; i < RECYCLED; i++)
        ck_assert_int_eq(ringo_cancel(round2[i]), -ESRCH);
    ringo_chan_release(recycle_gate);
}

START_TEST(unstarted_on_recycled_structs)
{
    atomic_store(&recycle_ok, 0);
    atomic_store(&recycle_cancelled, 0);
    atomic_store(&recycle_parked, 0);
    RUN(main_recycle, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&recycle_cancelled), RECYCLED / 2);
    ck_assert_int_eq(atomic_load(&recycle_ok), RECYCLED / 2);
}
END_TEST

START_TEST(cancel_ends_waits)
{
    atomic_store(&counter, 0);
    RUN(main_cancel, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&counter), 21);
}
END_TEST

static void self_cancel(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_cancel(ringo_id()), 0);
    ck_assert_int_eq(ringo_sleep(1 * MS), -ECANCELED);
    ck_assert_int_eq(ringo_sleep_until(ringo_now() - 1), -ECANCELED);
}

START_TEST(cancel_self)
{
    RUN(self_cancel, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */

static atomic_int thread_spawned;

static void from_thread(void *arg)
{
    (void)arg;
    ringo_sleep(1 * MS);
    atomic_fetch_add(&thread_spawned, 1);
}

static void *plain_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        int64_t id = ringo_go(from_thread, NULL);
        if (id <= 0)
            return (void *)1;
    }
    return NULL;
}

static void main_thread_spawn(void *arg)
{
    (void)arg;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, plain_thread, NULL), 0);
    /* keep the run alive until the thread has spawned its goroutines */
    while (atomic_load(&thread_spawned) < 100)
        ringo_sleep(1 * MS);
    void *ret;
    pthread_join(t, &ret); /* blocks this proc briefly; the thread is done */
    ck_assert_ptr_null(ret);
}

START_TEST(go_from_plain_thread)
{
    atomic_store(&thread_spawned, 0);
    RUN(main_thread_spawn, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&thread_spawned), 100);
}
END_TEST

static void main_cancel_from_thread(void *arg);
static int64_t victim;
static void *cancel_thread(void *arg)
{
    (void)arg;
    usleep(5000);
    return (void *)(intptr_t)ringo_cancel(victim);
}
static void main_cancel_from_thread(void *arg)
{
    (void)arg;
    victim = ringo_go(sleeper_forever, NULL);
    pthread_t t;
    pthread_create(&t, NULL, cancel_thread, NULL);
    while (ringo_count() > 1)
        ringo_sleep(1 * MS);
    void *ret;
    pthread_join(t, &ret);
    ck_assert_int_eq((int)(intptr_t)ret, 0);
}

START_TEST(cancel_from_plain_thread)
{
    atomic_store(&counter, 0);
    RUN(main_cancel_from_thread, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&counter), 1);
}
END_TEST

/* ------------------------------------------------------------------ */

START_TEST(sleep_forever_is_not_deadlock)
{
    /* A goroutine sleeping forever keeps its timer, as in Go: the run stays
     * alive until it is cancelled. */
    atomic_store(&counter, 0);
    RUN(main_cancel, NULL, nprocs_param);
}
END_TEST

/* Once a deadlock has been reported, its goroutines are discarded: a
 * plain thread that calls in as the report is written (it reads it from
 * stderr) cannot spawn a goroutine (-EINVAL, as after the run), and the
 * "deadlocked" main goroutine, which it then hands a value if it can,
 * never runs again.
 * Without the stop, the spawn returned an id and the child ran and woke
 * main, which finished although ringo_run said -EDEADLK. */
static int dl_pipe[2];
static ringo_chan *dl_ch;
static atomic_int dl_child_ran, dl_main_resumed;
static _Atomic int64_t dl_spawn;

static void dl_child(void *arg)
{
    (void)arg;
    atomic_store(&dl_child_ran, 1);
    int v = 7;
    ringo_chan_send(dl_ch, &v);
}

static void dl_main(void *arg)
{
    (void)arg;
    int v;
    ringo_chan_recv(dl_ch, &v);
    atomic_store(&dl_main_resumed, 1);
}

static void *dl_reader(void *arg)
{
    (void)arg;
    char buf[4096];
    size_t n = 0;
    for (;;) {
        ssize_t k = read(dl_pipe[0], buf + n, sizeof buf - 1 - n);
        if (k <= 0)
            return NULL;
        n += (size_t)k;
        buf[n] = '\0';
        if (strstr(buf, "deadlock!") || n == sizeof buf - 1)
            break;
    }
    atomic_store(&dl_spawn, ringo_go(dl_child, NULL));
    /* and hands main what it waits for, if it is still queued there */
    int v = 8;
    (void)ringo_chan_try_send(dl_ch, &v);
    while (read(dl_pipe[0], buf, sizeof buf) > 0)
        ; /* the rest of the report */
    return NULL;
}

START_TEST(nothing_runs_after_a_deadlock_report)
{
    dl_ch = ringo_chan_make(sizeof(int), 0);
    ck_assert_ptr_nonnull(dl_ch);
    atomic_store(&dl_child_ran, 0);
    atomic_store(&dl_main_resumed, 0);
    atomic_store(&dl_spawn, 1);
    ck_assert_int_eq(pipe2(dl_pipe, O_CLOEXEC), 0);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(dl_pipe[1], 2), 2);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, dl_reader, NULL), 0);
    struct ringo_config cfg = { .procs = nprocs_param };
    int r = ringo_run(dl_main, NULL, &cfg);
    dup2(saved, 2);
    close(saved);
    close(dl_pipe[1]);
    pthread_join(t, NULL);
    close(dl_pipe[0]);
    ck_assert_int_eq(r, -EDEADLK);
    ck_assert_int_eq(atomic_load(&dl_spawn), -EINVAL);
    ck_assert_int_eq(atomic_load(&dl_child_ran), 0);
    ck_assert_int_eq(atomic_load(&dl_main_resumed), 0);
    ringo_chan_release(dl_ch);
}
END_TEST

START_TEST(plain_thread_sleep_falls_back)
{
    int64_t t0 = ringo_now();
    ck_assert_int_eq(ringo_sleep(2 * MS), 0);
    ck_assert_int_ge(ringo_now() - t0, 2 * MS);
}
END_TEST

/* ------------------------------------------------------------------ */

static void spin_children(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < n; i++)
        ck_assert_int_gt(ringo_go(bump, NULL), 0);
}

START_TEST(hundred_thousand_goroutines)
{
    atomic_store(&counter, 0);
    RUN(spin_children, (void *)100000L, nprocs_param);
    ck_assert_int_eq(atomic_load(&counter), 100000);
}
END_TEST

static struct ringo_stats stats_seen;

static void main_stats(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_stats(NULL), -EINVAL);
    for (int i = 0; i < 10; i++)
        ringo_go(bump, NULL);
    /* At least one sleep, whatever the other proc did meanwhile: the
     * children may all have been taken and run elsewhere before the first
     * look at the count.  Only a wait in the kernel makes an enter, and a
     * short sleep may be over before the proc gets to one (a slow machine,
     * valgrind): sleeps until one has. */
    do
        ringo_sleep(1 * MS);
    while (ringo_count() > 1);
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(ringo_stats(&stats_seen), 0);
        if (stats_seen.enters)
            break;
        ringo_sleep(1 * MS);
    }
}

START_TEST(stats_count_the_run)
{
    RUN(main_stats, NULL, nprocs_param);
    ck_assert_uint_ge(stats_seen.spawned, 11);
    ck_assert_uint_ge(stats_seen.switches, 11);
    ck_assert_uint_ge(stats_seen.goroutines, 1);
    struct ringo_stats after;
    ck_assert_int_eq(ringo_stats(&after), 0);
    ck_assert_uint_eq(after.spawned, 11);
    ck_assert_uint_eq(after.goroutines, 0);
    ck_assert_uint_eq(after.running, 0);
    ck_assert_uint_eq(after.runnable, 0);
    ck_assert_uint_eq(after.waiting, 0);
    ck_assert_uint_ge(after.enters, 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Growing structs: the layouts of ringo 0.1, as a program built against it
 * has them, followed by what such a program keeps next to them.  The calls
 * go through the functions ringo_stats and ringo_run (the parentheses keep
 * the header's macros out), which is what those programs call. */

struct stats_0_1 {
    uint64_t goroutines, spawned, switches, submissions, completions, enters, cross_wakes;
};
struct config_0_1 {
    unsigned procs;
    size_t stack_size;
    unsigned ring_entries;
};

START_TEST(stats_old_size_not_overrun)
{
    RUN(main_spawns, (void *)5L, nprocs_param);
    struct {
        struct stats_0_1 s;
        uint64_t guard[4];
    } old;
    memset(&old, 0xa5, sizeof old);
    ck_assert_int_eq((ringo_stats)((struct ringo_stats *)&old), 0);
    ck_assert_uint_eq(old.s.spawned, 6);
    ck_assert_uint_eq(old.s.goroutines, 0);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(old.guard[i], 0xa5a5a5a5a5a5a5a5ULL);

    /* The same through the sized call with the old size. */
    memset(&old, 0xa5, sizeof old);
    ck_assert_int_eq(ringo_stats_sized((struct ringo_stats *)&old, sizeof old.s), 0);
    ck_assert_uint_eq(old.s.spawned, 6);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(old.guard[i], 0xa5a5a5a5a5a5a5a5ULL);

    /* Smaller than any version's struct: refused, nothing written. */
    memset(&old, 0xa5, sizeof old);
    ck_assert_int_eq(ringo_stats_sized((struct ringo_stats *)&old, sizeof old.s - 8), -EINVAL);
    ck_assert_uint_eq(old.s.goroutines, 0xa5a5a5a5a5a5a5a5ULL);

    /* A newer program's bigger struct: the fields this library does not
     * know read as zero. */
    struct {
        struct ringo_stats s;
        uint64_t newer[3];
    } big;
    memset(&big, 0xa5, sizeof big);
    ck_assert_int_eq(ringo_stats_sized(&big.s, sizeof big), 0);
    ck_assert_uint_eq(big.s.spawned, 6);
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(big.newer[i], 0);
}
END_TEST

static int nprocs_seen;

static void main_nprocs(void *arg)
{
    (void)arg;
    nprocs_seen = ringo_nprocs();
}

START_TEST(config_old_size_not_overread)
{
    /* An old program's struct ringo_config at the very end of a readable
     * page, the next page inaccessible: reading past it faults. */
    long pg = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(m, MAP_FAILED);
    ck_assert_int_eq(mprotect(m + pg, (size_t)pg, PROT_NONE), 0);
    struct config_0_1 *old = (struct config_0_1 *)(m + pg - sizeof *old);
    memset(old, 0, sizeof *old);
    old->procs = 1;
    nprocs_seen = 0;
    ck_assert_int_eq((ringo_run)(main_nprocs, NULL, (const struct ringo_config *)old), 0);
    ck_assert_int_eq(nprocs_seen, 1);
    nprocs_seen = 0;
    ck_assert_int_eq(ringo_run_sized(main_nprocs, NULL, (const struct ringo_config *)old,
                                     sizeof *old), 0);
    ck_assert_int_eq(nprocs_seen, 1);
    ck_assert_int_eq(ringo_run_sized(main_nprocs, NULL, (const struct ringo_config *)old,
                                     sizeof(unsigned)), -EINVAL);
    munmap(m, 2 * (size_t)pg);
}
END_TEST

START_TEST(config_unknown_fields_refused)
{
    /* A newer program's bigger struct: fields this library does not have
     * are accepted at zero (their default) and refused otherwise. */
    struct {
        struct ringo_config c;
        uint64_t newer;
    } big;
    memset(&big, 0, sizeof big);
    big.c.procs = 1;
    nprocs_seen = 0;
    ck_assert_int_eq(ringo_run_sized(main_nprocs, NULL, &big.c, sizeof big), 0);
    ck_assert_int_eq(nprocs_seen, 1);
    big.newer = 1;
    nprocs_seen = 0;
    ck_assert_int_eq(ringo_run_sized(main_nprocs, NULL, &big.c, sizeof big), -E2BIG);
    ck_assert_int_eq(nprocs_seen, 0);
    /* No config at all: the size does not matter. */
    ck_assert_int_eq(ringo_run_sized(main_nprocs, NULL, NULL, 0), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Setup failures: io_uring refused by a seccomp filter, as container
 * runtimes do. */

static void install_uring_filter(int err)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof filter / sizeof filter[0], .filter = filter };
    ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

/* io_uring forced where it is refused: the run fails, and says why. */
static void child_uring_eperm(void)
{
    install_uring_filter(EPERM);
    setenv("RINGO_ENGINE", "uring", 1);
    int r = ringo_run(bump, NULL, NULL);
    _exit(r == -EPERM ? 0 : 1);
}

static void child_uring_enosys(void)
{
    install_uring_filter(ENOSYS);
    setenv("RINGO_ENGINE", "uring", 1);
    int r = ringo_run(bump, NULL, NULL);
    if (r != -ENOSYS)
        _exit(1);
    /* and the runtime is still usable for a later attempt's bookkeeping */
    _exit(ringo_go(bump, NULL) == -EINVAL ? 0 : 2);
}

/* Not forced, a refused io_uring means the epoll engine, and
 * RINGO_DEBUG=1 says so. */
static void engine_main(void *arg)
{
    struct ringo_stats st;
    ck_assert_int_eq(ringo_stats(&st), 0);
    *(uint64_t *)arg = st.engine;
}

static void child_refused_epoll(int err)
{
    install_uring_filter(err);
    unsetenv("RINGO_ENGINE");
    setenv("RINGO_DEBUG", "1", 1);
    uint64_t engine = 0;
    int r = ringo_run(engine_main, &engine, NULL);
    _exit(r == 0 && engine == RINGO_ENGINE_EPOLL ? 0 : 1);
}

static void child_refused_eperm(void)
{
    child_refused_epoll(EPERM);
}

static void child_refused_enosys(void)
{
    child_refused_epoll(ENOSYS);
}

static void child_refused_eacces(void)
{
    child_refused_epoll(EACCES);
}

START_TEST(refused_io_uring_chooses_epoll)
{
    void (*children[])(void) = { child_refused_eperm, child_refused_enosys, child_refused_eacces };
    static const char *const why[] = { "Operation not permitted", "Function not implemented",
                                       "Permission denied" };
    for (size_t i = 0; i < sizeof children / sizeof children[0]; i++) {
        char buf[4096];
        int st = run_captured(children[i], buf, sizeof buf);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
        ck_assert_msg(strstr(buf, "ringo: engine epoll (io_uring_setup: ") != NULL, "stderr: %s", buf);
        ck_assert_msg(strstr(buf, why[i]) != NULL, "stderr: %s", buf);
    }
}
END_TEST

/* A kernel whose ring cannot cancel by descriptor (before 5.19: the
 * probe's cancel given a flag this kernel does not know fails as the
 * flags it does fail there) means the epoll engine: there ringo_close and
 * deadline changes could not end operations blocked in the ring. */
static void child_no_cancel_fd(void)
{
    uring_probe_cancel_seam = 1u << 30;
    unsetenv("RINGO_ENGINE");
    setenv("RINGO_DEBUG", "1", 1);
    uint64_t engine = 0;
    int r = ringo_run(engine_main, &engine, NULL);
    _exit(r == 0 && engine == RINGO_ENGINE_EPOLL ? 0 : 1);
}

static void child_cancel_fd(void)
{
    unsetenv("RINGO_ENGINE");
    setenv("RINGO_DEBUG", "1", 1);
    uint64_t engine = 0;
    int r = ringo_run(engine_main, &engine, NULL);
    _exit(r == 0 && engine == RINGO_ENGINE_URING ? 0 : 1);
}

START_TEST(no_cancel_by_fd_chooses_epoll)
{
    char buf[4096];
    int st = run_captured(child_cancel_fd, buf, sizeof buf);
    if (strstr(buf, "ringo: engine epoll"))
        return; /* the host chooses epoll anyway (no io_uring, or an older kernel) */
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    st = run_captured(child_no_cancel_fd, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    ck_assert_msg(strstr(buf, "ringo: engine epoll (io_uring cannot cancel by descriptor") != NULL,
                  "stderr: %s", buf);
}
END_TEST

/* Too few file descriptors: each proc needs two (its ring and its
 * eventfd).  `spare` is how many the limit leaves free: 0 fails the ring's
 * setup, 1 the eventfd's.  The message names the fd limit, not io_uring. */
static void child_fd_limit(int spare)
{
    int k = dup(0); /* the lowest free descriptor */
    if (k < 0)
        _exit(3);
    close(k);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = (rlim_t)(k + spare);
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        _exit(4);
    struct ringo_config cfg = { .procs = 1 };
    int r = ringo_run(bump, NULL, &cfg);
    _exit(r == -EMFILE ? 0 : 1);
}

static void child_fd_limit_ring(void)
{
    child_fd_limit(0);
}

static void child_fd_limit_eventfd(void)
{
    child_fd_limit(1);
}

START_TEST(fd_limit_is_reported)
{
    void (*children[])(void) = { child_fd_limit_ring, child_fd_limit_eventfd };
    for (size_t i = 0; i < sizeof children / sizeof children[0]; i++) {
        char buf[4096];
        int st = run_captured(children[i], buf, sizeof buf);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
        ck_assert_msg(strstr(buf, "ringo: too many open files") != NULL, "stderr: %s", buf);
        ck_assert_msg(strstr(buf, "RLIMIT_NOFILE") != NULL, "stderr: %s", buf);
        ck_assert_msg(strstr(buf, "io_uring is not available") == NULL, "stderr: %s", buf);
    }
}
END_TEST

START_TEST(setup_failure_is_reported)
{
    char buf[4096];
    int st = run_captured(child_uring_eperm, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    ck_assert_msg(strstr(buf, "ringo: io_uring is not available") != NULL, "stderr: %s", buf);
    ck_assert_msg(strstr(buf, "EPERM") != NULL, "stderr: %s", buf);
    st = run_captured(child_uring_enosys, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    ck_assert_msg(strstr(buf, "ENOSYS") != NULL, "stderr: %s", buf);
}
END_TEST

/* RINGO_PROCS sets the procs of a run given no configuration; a value
 * that is not a number from 1 to 4096 is ignored (the CPUs of the
 * affinity mask, then). */
static void nprocs_out(void *arg)
{
    *(int *)arg = ringo_nprocs();
}

static int nprocs_with_env(const char *value)
{
    char *saved = env_push("RINGO_PROCS", value);
    int n = -1;
    ck_assert_int_eq(ringo_run(nprocs_out, &n, NULL), 0);
    env_pop("RINGO_PROCS", saved);
    return n;
}

START_TEST(procs_from_the_environment)
{
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    int ncpu = CPU_COUNT(&set);
    ck_assert_int_eq(nprocs_with_env("3"), 3);
    ck_assert_int_eq(nprocs_with_env("1"), 1);
    const char *bad[] = { "0", "5000", "abc", "2x", "-2", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(nprocs_with_env(bad[i]) == ncpu, "RINGO_PROCS=%s", bad[i]);
    /* a configuration's procs wins over it */
    char *saved = env_push("RINGO_PROCS", "3");
    int n = -1;
    struct ringo_config cfg = { .procs = 2 };
    ck_assert_int_eq(ringo_run(nprocs_out, &n, &cfg), 0);
    env_pop("RINGO_PROCS", saved);
    ck_assert_int_eq(n, 2);
}
END_TEST

/* A cancel that has returned wins over the deadline of the wait it ends,
 * though the owner proc, woken by it, finds the deadline passed first:
 * a proc woken from its sleep reaps and runs its due timers before the
 * cancel's task (eng_poll), and the timer's claim must then deliver the
 * cancel.  The owner is held in a signal handler, asleep in the kernel,
 * while the cancel is made and the deadline passes. */
static atomic_int held_in, held_release;
static int64_t held_deadline;
static atomic_int held_result;
static atomic_int held_parked;

static void hold_handler(int sig)
{
    (void)sig;
    atomic_store(&held_in, 1);
    while (!atomic_load(&held_release))
        ;
}

static void held_waiter(void *arg)
{
    ringo_chan *c = arg;
    ringo_deadline_set(held_deadline);
    atomic_store(&held_parked, 1);
    int v;
    atomic_store(&held_result, ringo_chan_recv(c, &v));
}

static void cancel_then_deadline(void *arg)
{
    (void)arg;
    ringo_chan *c = ringo_chan_make(sizeof(int), 0);
    ck_assert_ptr_nonnull(c);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = hold_handler;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR2, &sa, &old), 0);
    /* The deadline leaves room for the set-up before the cancel (long
     * under valgrind, which runs one thread at a time); a round whose
     * cancel still came too late proves nothing and is made again. */
    int64_t room = (test_under_valgrind() ? 1000 : 50) * MS;
    int good = 0;
    for (int round = 0; good < 5; round++) {
        ck_assert_msg(round < 50, "only %d of 50 rounds cancelled before the deadline", good);
        atomic_store(&held_in, 0);
        atomic_store(&held_release, 0);
        atomic_store(&held_parked, 0);
        atomic_store(&held_result, 1);
        held_deadline = ringo_now() + room;
        int64_t id = ringo_go_on(1, held_waiter, c);
        ck_assert_int_gt(id, 0);
        while (!atomic_load(&held_parked) || !load_relaxed(&rt.procs[1]->sleeping))
            ringo_yield();
        ck_assert_int_eq(pthread_kill(rt.procs[1]->thread, SIGUSR2), 0);
        while (!atomic_load(&held_in))
            ringo_yield();
        int cancelled = ringo_cancel(id); /* -ESRCH: the deadline ended it first */
        bool in_time = cancelled == 0 && ringo_now() < held_deadline;
        while (ringo_now() <= held_deadline)
            ringo_sleep(1 * MS);
        atomic_store(&held_release, 1);
        while (atomic_load(&held_result) == 1)
            ringo_sleep(1 * MS);
        if (!in_time)
            continue;
        good++;
        ck_assert_msg(atomic_load(&held_result) == -ECANCELED, "round %d: the wait returned %d", round,
                      atomic_load(&held_result));
    }
    ck_assert_int_eq(sigaction(SIGUSR2, &old, NULL), 0);
    ringo_chan_release(c);
}

START_TEST(cancel_made_before_the_deadline_wins)
{
    if (nprocs_param < 2)
        return; /* the owner must be another proc, asleep */
    RUN(cancel_then_deadline, NULL, nprocs_param);
}
END_TEST

/* Stack regions under a limit on address space: 1024 stacks of 4 MiB are
 * a 4 GiB mapping, which RLIMIT_AS (or strict overcommit) may refuse; a
 * region of fewer slots is asked for then, and the run goes on.  In a
 * child, whose limit is what it maps now and 3 GiB more. */
static void touch_stack(void *arg)
{
    (void)arg;
    volatile char page[8192];
    page[0] = page[8191] = 1;
}

static void spawn_with_big_stacks(void *arg)
{
    (void)arg;
    for (int i = 0; i < 8; i++)
        ck_assert_int_gt(ringo_go(touch_stack, NULL), 0);
}

static size_t mapped_now(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(f);
    unsigned long pages = 0;
    ck_assert_int_eq(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static void child_big_stacks_limited(void)
{
    struct rlimit as = { .rlim_cur = mapped_now() + ((size_t)3 << 30), .rlim_max = RLIM_INFINITY };
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &as), 0);
    struct ringo_config cfg = { .procs = 1, .stack_size = (size_t)4 << 20 };
    int r = ringo_run(spawn_with_big_stacks, NULL, &cfg);
    dprintf(2, "ringo_run: %d\n", r);
    _exit(r == 0 ? 0 : 4);
}

START_TEST(big_stacks_under_an_address_space_limit)
{
#if defined(TEST_ASAN) || defined(TEST_TSAN)
    return; /* the sanitizers' shadow memory needs the address space */
#endif
    if (test_under_valgrind())
        return; /* valgrind maps as it pleases */
    char buf[4096];
    int st = run_captured(child_big_stacks_limited, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
}
END_TEST

/* A fork during a run: in the child the run is over for every call
 * (runtime.c "A fork during a run").  A goroutine forks while others pass
 * a value back and forth; the child, on that goroutine's stack, finds no
 * proc and no run (ringo_go -EINVAL, ringo_run -EBUSY), does a ringo
 * write and sleep as a plain thread would, and _exits; the parent's
 * goroutines all finish.  A second child returns from the goroutine
 * function instead: a fatal error, not a run of the parent's goroutines'
 * copies; a third, forked by an offloaded function, returns from that:
 * a fatal error too, not a run of the parent's queued jobs. */
enum { FORK_ROUNDS = 2000 };
static atomic_int fork_rounds;

static void fork_pinger(void *arg)
{
    ringo_chan **ch = arg;
    int v = 0;
    for (int i = 0; i < FORK_ROUNDS; i++) {
        ck_assert_int_eq(ringo_chan_send(ch[0], &v), 0);
        ck_assert_int_eq(ringo_chan_recv(ch[1], &v), 0);
        v++;
    }
    atomic_store(&fork_rounds, v);
}

static void fork_ponger(void *arg)
{
    ringo_chan **ch = arg;
    int v;
    for (int i = 0; i < FORK_ROUNDS; i++) {
        ck_assert_int_eq(ringo_chan_recv(ch[0], &v), 0);
        ck_assert_int_eq(ringo_chan_send(ch[1], &v), 0);
    }
}

static void fork_nothing(void *arg)
{
    (void)arg;
}

/* What the child finds, as a bit mask (1 << check that held). */
static int forked_child_checks(int fd)
{
    int ok = 0;
    ok |= (ringo_proc() == -1) << 0;
    ok |= (ringo_go(fork_nothing, NULL) == -EINVAL) << 1;
    ok |= (ringo_run(fork_nothing, NULL, NULL) == -EBUSY) << 2;
    ok |= (ringo_sleep(1 * MS) == 0) << 3;
    ok |= (ringo_write(fd, "k", 1) == 1) << 4;
    ok |= (ringo_nprocs() == 0) << 5;
    return ok;
}

/* Forks on a helper thread, from an offloaded function; the child
 * returns from it. */
struct offload_fork { int err_fd; pid_t pid; };

static void fork_in_offload(void *arg)
{
    struct offload_fork *of = arg;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(of->err_fd, 2);
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        return; /* the offloaded function ends, in the child */
    }
    of->pid = pid;
}

/* The stderr of a child, until it closes, and whether it died of SIGABRT
 * saying `what`. */
static int child_fatal(pid_t pid, int fd, const char *what)
{
    char buf[512];
    size_t got = 0;
    ssize_t r;
    while (got + 1 < sizeof buf && (r = ringo_read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0)
        ringo_sleep(1 * MS);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(buf, what) != NULL;
}

static void fork_in_goroutine(void *arg)
{
    int *res = arg;
    int pfd[2];
    ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    /* No check's assertion in the child: another proc's goroutine may
     * hold its lock as the fork is made, and the child would wait on it. */
    if (pid == 0)
        _exit(forked_child_checks(pfd[1]));
    ck_assert_int_gt(pid, 0);
    char c = 0;
    ck_assert_int_eq(ringo_read(pfd[0], &c, 1), 1);
    ck_assert_int_eq(c, 'k');
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0)
        ringo_sleep(1 * MS);
    ck_assert_msg(WIFEXITED(st), "child status %d", st);
    res[0] = WEXITSTATUS(st);
    close(pfd[0]);
    close(pfd[1]);

    /* The child returns from the goroutine function. */
    int efd[2];
    ck_assert_int_eq(pipe2(efd, O_CLOEXEC), 0);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        dup2(efd[1], 2);
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        return; /* the goroutine ends, in the child */
    }
    ck_assert_int_gt(pid, 0);
    close(efd[1]);
    res[1] = child_fatal(pid, efd[0], "ringo: fatal error: a goroutine returned in a child process");
    close(efd[0]);

    /* A child forked by an offloaded function returns from it. */
    ck_assert_int_eq(pipe2(efd, O_CLOEXEC), 0);
    struct offload_fork of = { efd[1], -1 };
    ck_assert_int_eq(ringo_offload(fork_in_offload, &of), 0);
    close(efd[1]);
    ck_assert_int_gt(of.pid, 0);
    res[2] = child_fatal(of.pid, efd[0],
                         "ringo: fatal error: an offloaded function returned in a child process");
    close(efd[0]);
}

static void fork_main(void *arg)
{
    ringo_chan *ch[2] = { ringo_chan_make(sizeof(int), 0), ringo_chan_make(sizeof(int), 0) };
    ck_assert_ptr_nonnull(ch[0]);
    ck_assert_ptr_nonnull(ch[1]);
    atomic_store(&fork_rounds, 0);
    ck_assert_int_gt(ringo_go(fork_pinger, ch), 0);
    ck_assert_int_gt(ringo_go_on(ringo_nprocs() - 1, fork_ponger, ch), 0);
    ck_assert_int_gt(ringo_go(fork_in_goroutine, arg), 0);
    while (ringo_count() > 1)
        ringo_sleep(1 * MS);
    ringo_chan_release(ch[0]);
    ringo_chan_release(ch[1]);
}

START_TEST(fork_during_a_run_leaves_the_child_outside_it)
{
    int res[3] = { -1, -1, -1 };
    RUN(fork_main, res, nprocs_param);
    ck_assert_msg(res[0] == 0x3f, "the child's checks: %#x of 0x3f", res[0]);
    ck_assert_msg(res[1] == 1, "a goroutine that returned in the child was not a fatal error");
    ck_assert_msg(res[2] == 1, "an offloaded function that returned in the child was not a fatal error");
    ck_assert_int_eq(atomic_load(&fork_rounds), FORK_ROUNDS);
}
END_TEST

/* ringo_exit outside a goroutine: Go's Goexit on a thread of its own
 * has nothing to end; here it is a fatal error, with the message its page
 * gives, from a plain thread with no run. */
static void child_exit_outside(void)
{
    ringo_exit();
}

START_TEST(exit_outside_a_goroutine_is_fatal)
{
    char buf[4096];
    int st = run_captured(child_exit_outside, buf, sizeof buf);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %d, stderr: %s", st, buf);
    ck_assert_msg(strstr(buf, "ringo: fatal error: ringo_exit called outside a goroutine") != NULL,
                  "stderr: %s", buf);
}
END_TEST

/* The run's SIGSEGV handler (for stack overflows) goes at its end, and
 * the disposition from before the run comes back; but a handler the
 * program installed during the run is the program's, and stays. */
static void program_segv(int sig)
{
    (void)sig;
}

static void install_program_segv(void *arg)
{
    (void)arg;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = program_segv;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGSEGV, &sa, NULL), 0);
}

static void *segv_disposition(void)
{
    struct sigaction cur;
    ck_assert_int_eq(sigaction(SIGSEGV, NULL, &cur), 0);
    return (cur.sa_flags & SA_SIGINFO) ? (void *)cur.sa_sigaction : (void *)cur.sa_handler;
}

START_TEST(segv_handler_of_the_program_stays)
{
    struct sigaction old;
    ck_assert_int_eq(sigaction(SIGSEGV, NULL, &old), 0);
    void *before = segv_disposition();
    RUN(bump, NULL, nprocs_param);
    ck_assert_ptr_eq(segv_disposition(), before);
    RUN(install_program_segv, NULL, nprocs_param);
    ck_assert_ptr_eq(segv_disposition(), (void *)program_segv);
    ck_assert_int_eq(sigaction(SIGSEGV, &old, NULL), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Stack overflow: a message, then abort. */

static int recurse(int n)
{
    volatile char pad[512];
    pad[0] = (char)n;
    return n == 0 ? pad[0] : recurse(n - 1) + pad[0];
}

static void overflow(void *arg)
{
    (void)arg;
    recurse(1 << 20);
}

static void overflow_main(void *arg)
{
    (void)arg;
    ringo_go(overflow, NULL);
}

static void child_overflow(void)
{
    ringo_run(overflow_main, NULL, NULL);
    _exit(3); /* must not get here */
}

static void child_overflow_canary(void)
{
    setenv("RINGO_GUARD_STACKS", "0", 1);
    ringo_run(overflow_main, NULL, NULL);
    _exit(3);
}

START_TEST(stack_overflow_guard_page)
{
    char buf[4096];
    int st = run_captured(child_overflow, buf, sizeof buf);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %d, stderr: %s", st, buf);
    ck_assert_msg(strstr(buf, "ringo: fatal error: goroutine ") != NULL, "stderr: %s", buf);
    ck_assert_msg(strstr(buf, " stack overflow") != NULL, "stderr: %s", buf);
}
END_TEST

/* An overflow found as the goroutine exits (ringo_exit from deep inside,
 * which ringo_exit(3) shows) names the goroutine by its own id, though
 * the exit has already retired it from the table. */
static void exit_in_the_red_zone(void *arg)
{
    (void)arg;
    dprintf(2, "[id %lld]\n", (long long)ringo_id());
    const struct stack *s = g_run(tls_proc->cur)->stack;
    size_t used = (size_t)((uintptr_t)s - (uintptr_t)current_sp());
    size_t left = ringo__stack_usable - used;
    volatile char *deep = alloca(left - STACK_RED_ZONE / 2);
    deep[0] = 1;
    ringo_exit();
}

static void child_exit_overflow(void)
{
    ringo_run(exit_in_the_red_zone, NULL, NULL);
    _exit(3);
}

START_TEST(stack_overflow_at_exit_names_the_goroutine)
{
    char buf[4096];
    int st = run_captured(child_exit_overflow, buf, sizeof buf);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %d, stderr: %s", st, buf);
    long long id = 0;
    const char *at = strstr(buf, "[id ");
    ck_assert_msg(at && sscanf(at, "[id %lld]", &id) == 1 && id > 0, "stderr: %s", buf);
    char want[64];
    snprintf(want, sizeof want, "ringo: fatal error: goroutine %lld stack overflow", id);
    ck_assert_msg(strstr(buf, want) != NULL, "want \"%s\", stderr: %s", want, buf);
}
END_TEST

START_TEST(stack_overflow_canary)
{
    char buf[4096];
    int st = run_captured(child_overflow_canary, buf, sizeof buf);
    /* Without a guard page the overflow runs into the neighbouring stack
     * slot (mapped) or off the region (a fault); either way the report
     * must name the overflow. */
    ck_assert_msg(WIFSIGNALED(st), "status %d, stderr: %s", st, buf);
    ck_assert_msg(strstr(buf, "stack overflow") != NULL, "stderr: %s", buf);
}
END_TEST

/* The stack pool (fiber.c), without a run: a proc's cache that overflows
 * hands the pool a batch of STACK_BATCH stacks as they are; shedding one
 * (what a proc with nothing to run does) gives the kernel back the pages
 * a goroutine touched below the header's page (and only asks mincore, not
 * MADV_DONTNEED, of stacks that touched none); an empty cache takes a
 * whole batch back in one go, unshed ones first. */
static bool page_resident(const void *addr)
{
    long pg = sysconf(_SC_PAGESIZE);
    unsigned char v = 0;
    void *page = (void *)((uintptr_t)addr & ~(uintptr_t)(pg - 1));
    ck_assert_int_eq(mincore(page, (size_t)pg, &v), 0);
    return v & 1;
}

/* The pool's tests, without a run: n stacks promised, and taken into st
 * from the cache c (empty, so each comes from the pool or a fresh slot). */
static void pool_setup(struct stack **st, int n, struct stack_cache *c)
{
    ck_assert_int_eq(fiber_init(0), 0);
    ck_assert_int_eq(stack_reserve(n), 0);
    for (int i = 0; i < n; i++) {
        st[i] = stack_get(c);
        ck_assert_ptr_nonnull(st[i]);
    }
}

START_TEST(stack_pool_batches)
{
    enum { N = STACK_CACHE_MAX + 1 };
    static struct stack *st[N];
    struct stack_cache a = { 0 }, b = { 0 };
    pool_setup(st, N, &a);
    /* The last stack's goroutine went deep: a page well below the top. */
    struct stack *deep = st[N - 1];
    volatile char *low = deep->lo + 16;
    *low = 1;
    ck_assert(page_resident((const void *)low));
    for (int i = 0; i < N - 1; i++)
        stack_put(&a, st[i]);
    ck_assert_uint_eq(a.n, STACK_CACHE_MAX);
    ck_assert(!stack_pool_unshed());
    stack_put(&a, deep); /* one too many: a batch goes to the pool */
    ck_assert_uint_eq(a.n, STACK_CACHE_MAX + 1 - STACK_BATCH);
    ck_assert_msg(page_resident((const void *)low), "shed on the way to the pool");
    ck_assert(stack_pool_unshed());
    /* Another proc's empty cache takes the batch whole, newest first, with
     * its pages. */
    struct stack *s = stack_get(&b);
    ck_assert_ptr_eq(s, deep);
    ck_assert_uint_eq(b.n, STACK_BATCH - 1);
    ck_assert_ptr_eq(b.head, st[N - 2]);
    ck_assert(!stack_pool_unshed());
    ck_assert(!stack_pool_shed(&b));
    ck_assert(page_resident((const void *)low));
    /* Back to the pool (b's cache whole, as a proc flushing it), and shed. */
    stack_put(&b, s);
    stack_cache_drain(&b);
    ck_assert(stack_pool_unshed());
    ck_assert(stack_pool_shed(&b));
    ck_assert(!stack_pool_unshed());
    ck_assert_msg(!page_resident((const void *)low), "the deep page was not given back");
    ck_assert(page_resident(deep)); /* the header's page stays */
    s = stack_get(&b); /* the shed batch, whole */
    ck_assert_ptr_eq(s, deep);
    ck_assert_uint_eq(b.n, STACK_BATCH - 1);
    stack_put(&b, s);
    /* With a shed batch and an unshed one in the pool, an empty cache
     * takes the unshed one (a's cache, drained: one batch). */
    stack_cache_drain(&b);
    ck_assert(stack_pool_shed(&b));
    ck_assert(!stack_pool_unshed());
    size_t an = a.n;
    stack_cache_drain(&a);
    s = stack_get(&b);
    ck_assert_uint_eq(b.n, an - 1);
    stack_put(&b, s);
    stack_cache_drain(&b);
    stack_cache_drain(&a);
    stack_cache_drain(&b);
    ck_assert_uint_eq(a.n + b.n, 0);
    /* Drained caches are whole batches in the pool: all N come back. */
    for (int i = 0; i < N; i++) {
        st[i] = stack_get(&a);
        ck_assert_ptr_nonnull(st[i]);
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N && j < i + 2 * STACK_BATCH; j++)
            ck_assert_ptr_ne(st[i], st[j]);
    for (int i = 0; i < N; i++)
        stack_put(&a, st[i]);
    stack_cache_drain(&a);
    stack_unreserve(N);
    fiber_fini();
}
END_TEST

/* A shed batch gives back the deep pages of every stack in it, whether its
 * stacks lie side by side (one mincore for a run of them, fiber.c
 * "Shedding") or apart, and keeps the pages of stacks that went no deeper
 * than their header's page.  _i == 0: the batch is the last STACK_BATCH
 * stacks carved, neighbours; _i == 1: every other one of them. */
START_TEST(stack_shed_gives_back_deep_pages)
{
    enum { N = STACK_CACHE_MAX + 1 };
    static struct stack *st[N];
    long pg = sysconf(_SC_PAGESIZE);
    struct stack_cache a = { 0 };
    pool_setup(st, N, &a);
    /* The order of the puts: the last one overflows the cache, and the
     * batch shed is the last STACK_BATCH put. */
    static int put_order[N];
    int k = 0;
    if (_i == 0) {
        for (int i = 0; i < N; i++)
            put_order[k++] = i;
    } else {
        for (int i = 1; i < N; i += 2)
            put_order[k++] = i;
        for (int i = 0; i < N; i += 2)
            put_order[k++] = i;
    }
    /* In the batch to be shed: some stacks touched a page deep down (the
     * lowest, one in the middle, the one just below the header's page),
     * the others nothing below the header's page. */
    const int in_batch[] = { put_order[N - 1], put_order[N - 2], put_order[N - 7], put_order[N - 30], put_order[N - STACK_BATCH] };
    volatile char *deep[5];
    for (int j = 0; j < 5; j++) {
        struct stack *s = st[in_batch[j]];
        char *top_page = (char *)((uintptr_t)s & ~(uintptr_t)(pg - 1));
        char *at = j % 3 == 0 ? s->lo : j % 3 == 1 ? top_page - pg : s->lo + 5 * pg;
        deep[j] = at + 8;
        *deep[j] = 1;
        ck_assert(page_resident((const void *)deep[j]));
    }
    struct stack *shallow = st[put_order[N - 3]]; /* touched nothing deep */
    for (int i = 0; i < N - 1; i++)
        stack_put(&a, st[put_order[i]]);
    ck_assert_uint_eq(a.n, STACK_CACHE_MAX);
    /* Not past the cap yet: nothing was shed. */
    for (int j = 0; j < 5; j++)
        ck_assert(page_resident((const void *)deep[j]));
    stack_put(&a, st[put_order[N - 1]]);
    ck_assert_uint_eq(a.n, STACK_CACHE_MAX + 1 - STACK_BATCH);
    /* In the pool unshed, until shed. */
    for (int j = 0; j < 5; j++)
        ck_assert(page_resident((const void *)deep[j]));
    ck_assert(stack_pool_shed(&a));
    ck_assert(!stack_pool_shed(&a));
    for (int j = 0; j < 5; j++)
        ck_assert_msg(!page_resident((const void *)deep[j]), "deep page %d was not given back", j);
    /* The headers' pages stay. */
    ck_assert(page_resident(shallow));
    for (int j = 0; j < 5; j++)
        ck_assert(page_resident(st[in_batch[j]]));
    stack_cache_drain(&a);
    stack_unreserve(N);
    fiber_fini();
}
END_TEST

/* Past STACK_UNSHED_MAX stacks unshed in the pool, a batch is shed as it
 * arrives (fiber.c "Shedding": procs that never run out of work still give
 * memory back); the batches before it stay as they were. */
START_TEST(stack_unshed_cap)
{
    /* The first overflow, then as many as fill the cap, then one more. */
    enum { N = STACK_CACHE_MAX + 1 + STACK_UNSHED_MAX };
    static struct stack *st[N];
    struct stack_cache a = { 0 };
    pool_setup(st, N, &a);
    /* The first batch to overflow holds the stack put when the cache was
     * full (st[STACK_CACHE_MAX]); the last one, the last put. */
    volatile char *first = st[STACK_CACHE_MAX]->lo + 8, *last = st[N - 1]->lo + 8;
    *first = 1;
    *last = 1;
    for (int i = 0; i < N - 1; i++)
        stack_put(&a, st[i]);
    ck_assert(page_resident((const void *)first));
    ck_assert(page_resident((const void *)last));
    stack_put(&a, st[N - 1]); /* the 257th batch: past the cap */
    ck_assert_uint_eq(a.n, STACK_CACHE_MAX + 1 - STACK_BATCH);
    ck_assert_msg(!page_resident((const void *)last), "the batch past the cap was not shed");
    ck_assert_msg(page_resident((const void *)first), "a batch under the cap was shed");
    /* The pool's unshed batches are shed one at a time, the whole cap. */
    int batches = 0;
    while (stack_pool_shed(&a))
        batches++;
    ck_assert_int_eq(batches, STACK_UNSHED_MAX / STACK_BATCH);
    ck_assert(!page_resident((const void *)first));
    /* A drained cache goes to the pool as one batch, and is shed
     * STACK_BATCH stacks at a time. */
    size_t an = a.n;
    stack_cache_drain(&a);
    batches = 0;
    while (stack_pool_shed(&a))
        batches++;
    ck_assert_int_eq(batches, (int)((an + STACK_BATCH - 1) / STACK_BATCH));
    stack_unreserve(N);
    fiber_fini();
}
END_TEST

/* What the runtime runs on a goroutine's stack at a park fits in the red
 * zone that the check at the switch leaves below it (STACK_RED_ZONE):
 * the next goroutine's start (g_start: a stack, a timer slot) before the
 * switch, and after it the reclaim of a goroutine that exited meanwhile,
 * whose stack may overflow the cache and, past the pool's unshed cap, be
 * shed there and then (fiber.c "Shedding", "Where").  Each goroutine
 * fills the stack below its frame with a pattern, waits on a channel (one
 * in REDZONE_IO_EVERY in a read of a pipe instead: the I/O path parks
 * deeper), and when released finds the lowest byte written meanwhile,
 * below the stack pointer its switch saved.  One proc, never idle (main yields; an
 * idle proc would shed in proc_sleep instead), and enough goroutines
 * exiting together to fill its cache and the pool's unshed cap and spill
 * eight batches past it (under ThreadSanitizer, which cannot keep that
 * many alive, only the cache and two batches to the pool). */
#ifndef RINGO_SWITCH_UCONTEXT
enum { REDZONE_G_ALL = STACK_CACHE_MAX + STACK_UNSHED_MAX + 8 * STACK_BATCH };
static long redzone_g_n;
#define REDZONE_SPAN 8192 /* bytes painted */
#define REDZONE_PAT 0xA5
static ringo_chan *redzone_go;
static int redzone_pipe[2];
static _Atomic long redzone_need, redzone_waiting, redzone_done;
#define REDZONE_IO_EVERY 64 /* one goroutine in so many waits in a read instead */

/* Not instrumented: the stack below the frame is not the program's to
 * touch, and ASan's shadow of it may still be poisoned. */
#if defined(__SANITIZE_ADDRESS__)
__attribute__((no_sanitize_address))
#endif
static __attribute__((noinline)) void redzone_paint(volatile unsigned char *lo, size_t n)
{
    for (size_t i = 0; i < n; i++)
        lo[i] = REDZONE_PAT;
}

#if defined(__SANITIZE_ADDRESS__)
__attribute__((no_sanitize_address))
#endif
static __attribute__((noinline)) const volatile unsigned char *redzone_lowest(const volatile unsigned char *lo,
                                                                               const volatile unsigned char *hi)
{
    while (lo < hi && *lo == REDZONE_PAT)
        lo++;
    return lo;
}

static void redzone_g(void *arg)
{
    bool io = (intptr_t)arg % REDZONE_IO_EVERY == 0;
    struct rg *g = tls_proc->cur;
    /* The pattern from below this frame and the park's (the receive down
     * to the switch: under 200 bytes) to REDZONE_SPAN further. */
    volatile unsigned char *hi = (volatile unsigned char *)current_sp() - 256;
    volatile unsigned char *lo = hi - REDZONE_SPAN;
    ck_assert((char *)lo > g_run(g)->stack->lo);
    redzone_paint(lo, REDZONE_SPAN);
    atomic_fetch_add(&redzone_waiting, 1);
    if (io) {
        char c;
        ck_assert_int_eq(ringo_read(redzone_pipe[0], &c, 1), 1);
    } else {
        int v;
        ck_assert_int_eq(ringo_chan_recv(redzone_go, &v), -EPIPE); /* closed */
    }
    /* The switch checked its stack pointer a few words above the one it
     * saved (its pushed registers and return address). */
    const char *checked = (const char *)g_run(g)->ctx.sp + 64;
    const char *lowest = (const char *)redzone_lowest(lo, hi);
    long need = checked - lowest;
    long m = atomic_load(&redzone_need);
    while (need > m && !atomic_compare_exchange_weak(&redzone_need, &m, need))
        ;
    atomic_fetch_add(&redzone_done, 1);
}

static void redzone_main(void *arg)
{
    (void)arg;
    redzone_go = ringo_chan_make(sizeof(int), 0);
    ck_assert_ptr_nonnull(redzone_go);
    ck_assert_int_eq(pipe(redzone_pipe), 0);
    long readers = 0;
    for (long i = 0; i < redzone_g_n; i++) {
        ck_assert_int_gt(ringo_go(redzone_g, (void *)(intptr_t)i), 0);
        readers += i % REDZONE_IO_EVERY == 0;
    }
    while (atomic_load(&redzone_waiting) < redzone_g_n)
        ringo_yield();
    ringo_sleep(10 * MS); /* the readers' reads reach the kernel */
    static char bytes[REDZONE_G_ALL / REDZONE_IO_EVERY + 1];
    ck_assert_int_eq(write(redzone_pipe[1], bytes, (size_t)readers), readers);
    ringo_chan_close(redzone_go); /* all at once: their exits spill */
    while (atomic_load(&redzone_done) < redzone_g_n)
        ringo_yield();
    ringo_chan_release(redzone_go);
    close(redzone_pipe[0]);
    close(redzone_pipe[1]);
}
#endif

START_TEST(runtime_frames_fit_red_zone)
{
#ifndef RINGO_SWITCH_UCONTEXT
    redzone_g_n = test_under_thread_sanitizer() ? STACK_CACHE_MAX + 2 * STACK_BATCH : REDZONE_G_ALL;
    struct ringo_config cfg = { .procs = 1 };
    ck_assert_int_eq(ringo_run(redzone_main, NULL, &cfg), 0);
    long need = atomic_load(&redzone_need);
    printf("  the runtime's frames at a park: %ld bytes below the checked stack pointer\n", need);
    ck_assert_msg(need <= STACK_RED_ZONE, "%ld bytes below the checked stack pointer, red zone %d",
                  need, STACK_RED_ZONE);
    ck_assert_int_gt(need, 0);
#endif
}
END_TEST

/* A proc with nothing to run sheds the pool.  Goroutines go deep and wait
 * until all have started (so that each holds a stack of its own), then
 * exit: four batches more than one proc's cache keeps go to the pool
 * unshed.  A read whose data is there comes back before any of them is
 * shed.  main then naps until the pool holds nothing unshed (each nap
 * leaves the only proc with nothing to run; a bounded number of them),
 * and the deep pages of exactly those four batches are gone. */
enum { IDLE_SHED_G = STACK_CACHE_MAX + 4 * STACK_BATCH };
static volatile char *idle_shed_deep[IDLE_SHED_G];
static ringo_waitgroup idle_shed_started, idle_shed_done;
static ringo_chan *idle_shed_release;

/* Not instrumented: with ASan's detect_stack_use_after_return, buf would
 * live on its fake stack, not the goroutine's. */
#if defined(__SANITIZE_ADDRESS__)
__attribute__((no_sanitize_address))
#endif
static void go_deep(void *arg)
{
    volatile char buf[3 * 4096];
    buf[0] = 1; /* two pages below the header's, at least */
    idle_shed_deep[(intptr_t)arg] = &buf[0];
    ringo_waitgroup_done(&idle_shed_started);
    int v;
    ck_assert_int_eq(ringo_chan_recv(idle_shed_release, &v), -EPIPE); /* closed */
    ringo_waitgroup_done(&idle_shed_done);
}

static void idle_shed_main(void *arg)
{
    int *out = arg; /* naps, deep pages given back */
    idle_shed_release = ringo_chan_make(sizeof(int), 0);
    ck_assert_ptr_nonnull(idle_shed_release);
    ringo_waitgroup_add(&idle_shed_started, IDLE_SHED_G);
    ringo_waitgroup_add(&idle_shed_done, IDLE_SHED_G);
    for (intptr_t i = 0; i < IDLE_SHED_G; i++)
        ck_assert_int_gt(ringo_go(go_deep, (void *)i), 0);
    ringo_waitgroup_wait(&idle_shed_started);
    for (int i = 0; i < IDLE_SHED_G; i++)
        ck_assert(page_resident((const void *)idle_shed_deep[i]));
    ringo_chan_close(idle_shed_release);
    ringo_waitgroup_wait(&idle_shed_done);
    ringo_yield(); /* the last of them is reclaimed */
    /* A read with its data there already: the proc, idle while it waits,
     * sends it to the kernel and runs us again before it sheds anything. */
    int fds[2];
    char c = 0;
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], "x", 1), 1);
    ck_assert_int_eq(ringo_read(fds[0], &c, 1), 1);
    ck_assert_msg(stack_pool_unshed(), "the pool was shed before the read went out");
    close(fds[0]);
    close(fds[1]);
    while (stack_pool_unshed() && out[0] < 1000) {
        ringo_sleep(1000000);
        out[0]++;
    }
    for (int i = 0; i < IDLE_SHED_G; i++)
        out[1] += !page_resident((const void *)idle_shed_deep[i]);
    ringo_chan_release(idle_shed_release);
}

START_TEST(stack_idle_proc_sheds)
{
    int out[2] = { 0, 0 };
    /* _i 1: stacks of 8 MiB, each more pages below its header than one
     * mincore call of the shedding looks at (SHED_SPAN) */
    struct ringo_config cfg = { .procs = 1, .stack_size = _i ? (size_t)8 << 20 : 0 };
    ck_assert(!_i || cfg.stack_size / 4096 > SHED_SPAN);
    ck_assert_int_eq(ringo_run(idle_shed_main, out, &cfg), 0);
    ck_assert_int_gt(out[0], 0); /* the exits left batches unshed */
    ck_assert_int_lt(out[0], 1000);
    ck_assert_int_eq(out[1], 4 * STACK_BATCH);
}
END_TEST

/* The guard page is real: a read of the page just below a goroutine's
 * stack faults (and is reported as an overflow), where without a guard it
 * would read zeroes from the unprotected page and go on.  Installed with
 * MADV_GUARD_INSTALL where the kernel has it (6.13+), and with mprotect
 * under RINGO_NO_GUARD_INSTALL=1 (and on older kernels). */
static void touch_guard(void *arg)
{
    (void)arg;
    struct stack *s = g_run(tls_proc->cur)->stack;
    volatile const char *below = s->lo - sysconf(_SC_PAGESIZE);
    (void)*below;
    _exit(4); /* the read went through: no guard */
}

static void touch_guard_main(void *arg)
{
    (void)arg;
    ringo_go(touch_guard, NULL);
}

static void child_touch_guard(void)
{
    ringo_run(touch_guard_main, NULL, NULL);
    _exit(3);
}

static void child_touch_guard_mprotect(void)
{
    setenv("RINGO_NO_GUARD_INSTALL", "1", 1);
    child_touch_guard();
}

/* A RINGO_GUARD_STACKS that is not a count is ignored, as the other
 * variables' bad values are: the default budget, not none. */
static void child_touch_guard_bad_budget(void)
{
    setenv("RINGO_GUARD_STACKS", "10k", 1);
    child_touch_guard();
}

static void check_guard_faults(void (*child)(void))
{
    char buf[4096];
    int st = run_captured(child, buf, sizeof buf);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %d, stderr: %s", st, buf);
    ck_assert_msg(strstr(buf, " stack overflow") != NULL, "stderr: %s", buf);
}

START_TEST(stack_guard_page_faults)
{
    check_guard_faults(child_touch_guard);
    check_guard_faults(child_touch_guard_bad_budget);
}
END_TEST

START_TEST(stack_guard_page_faults_mprotect)
{
    check_guard_faults(child_touch_guard_mprotect);
}
END_TEST

/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* Idle spinning pays for itself: a proc that goes idle again and again
 * with nothing handed over by another proc stops spinning (the budget
 * halves at each fruitless spin), apart from a probe every 64 sleeps.
 * Counted with ringo_stats: without the adaptation every one of the 1000
 * sleeps below would spin. */
#define IDLE_ROUNDS 1000

static void main_idle_spins(void *arg)
{
    (void)arg;
    struct ringo_stats a, b;
    ck_assert_int_eq(ringo_stats(&a), 0);
    for (int i = 0; i < IDLE_ROUNDS; i++)
        ringo_sleep(20 * US);
    ck_assert_int_eq(ringo_stats(&b), 0);
    uint64_t spins = b.spins - a.spins;
    ck_assert_msg(spins <= 2 * (10 + IDLE_ROUNDS / 64), "%llu spins in %d idle sleeps",
                  (unsigned long long)spins, IDLE_ROUNDS);
    ck_assert_uint_eq(b.spins_found - a.spins_found, 0);
    ck_assert_uint_ge(b.spin_ns, a.spin_ns);
}

START_TEST(idle_spins_die_out_without_handoffs)
{
    if (nprocs_param < 2)
        return; /* one proc never spins */
    RUN(main_idle_spins, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A proc woken by IORING_OP_MSG_RING reaps one completion for it, and the
 * waker none (IOSQE_CQE_SKIP_SUCCESS: engine_uring.c eng_wake).  main, on
 * proc 0, hands a value to a goroutine bound to proc 1 after sleeping long
 * enough for proc 1 to go to sleep too, until the wakes have made
 * WAKE_SENDS SQEs.  Nothing else in the window submits (main's sleep is a
 * timer of its proc, the receiver only receives), and no SQE of it makes
 * more than one CQE, so the run's completions stay at its submissions;
 * a wake that also reported its success to its sender would make two
 * each, WAKE_SENDS more.  The slack covers a completion of the eventfd
 * poll or of a wake made before the window, reaped in it.  (With
 * RINGO_NO_MSG_RING a wake is the target's eventfd poll completing and
 * its re-arm: one of each as well.) */
#define WAKE_SENDS 200
#define WAKE_SLACK 4
static ringo_chan *wake_ch;

static void wake_receiver(void *arg)
{
    (void)arg;
    int v = 0;
    while (v >= 0)
        ck_assert_int_eq(ringo_chan_recv(wake_ch, &v), 0);
}

static void main_wake_completions(void *arg)
{
    (void)arg;
    wake_ch = ringo_chan_make(sizeof(int), 0);
    ck_assert_int_gt(ringo_go_on(1, wake_receiver, NULL), 0);
    struct ringo_stats a, b;
    ck_assert_int_eq(ringo_stats(&a), 0);
    b = a;
    long rounds = 0;
    for (int v = 1; b.submissions - a.submissions < WAKE_SENDS && rounds < 50 * WAKE_SENDS;
         rounds++) {
        ringo_sleep(200 * US); /* proc 1: its receiver parked, it sleeps */
        ck_assert_int_eq(ringo_chan_send(wake_ch, &v), 0);
        ck_assert_int_eq(ringo_stats(&b), 0);
    }
    uint64_t subs = b.submissions - a.submissions;
    uint64_t comps = b.completions - a.completions;
    printf("  %ld handoffs: %llu submissions, %llu completions, %llu enters\n", rounds,
           (unsigned long long)subs, (unsigned long long)comps,
           (unsigned long long)(b.enters - a.enters));
    ck_assert_msg(subs >= WAKE_SENDS, "%llu wakes in %ld handoffs to a sleeping proc",
                  (unsigned long long)subs, rounds);
    ck_assert_msg(comps <= subs + WAKE_SLACK, "%llu completions for %llu submissions",
                  (unsigned long long)comps, (unsigned long long)subs);
    int end = -1;
    ck_assert_int_eq(ringo_chan_send(wake_ch, &end), 0);
    while (ringo_count() > 1)
        ringo_yield();
    ringo_chan_release(wake_ch);
}

/* test_engine() asked in a child: a run in this process would keep its
 * probe's answer (runtime.c engine_choose) for the children of the tests
 * that refuse io_uring to them. */
static int engine_of_a_child(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(test_engine());
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return 0;
    return WEXITSTATUS(st);
}

START_TEST(wakes_cost_the_waker_no_completion)
{
    if (nprocs_param < 2)
        return; /* one proc wakes no other */
    RUN(main_wake_completions, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Every proc enters its ring by a registered index (engine_uring.c
 * "Registered ring descriptor"), not by its descriptor, unless
 * RINGO_NO_RING_REGISTER=1; and I/O works either way.  Each proc's
 * goroutine looks at its own ring (liburing keeps the index it enters by
 * in enter_ring_fd, the descriptor when nothing is registered) and reads
 * a pipe through it. */
static _Atomic int regring_seen, regring_registered;

static void regring_look(void *arg)
{
    (void)arg;
    struct rproc *p = tls_proc;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], "x", 1), 1);
    char c = 0;
    ck_assert_int_eq(ringo_read(fds[0], &c, 1), 1); /* through the ring */
    ck_assert_int_eq(c, 'x');
    close(fds[0]);
    close(fds[1]);
    if (p->ring.enter_ring_fd != p->ring.ring_fd)
        atomic_fetch_add(&regring_registered, 1);
    atomic_fetch_add(&regring_seen, 1);
}

static void main_regring(void *arg)
{
    (void)arg;
    for (int i = 0; i < ringo_nprocs(); i++)
        ck_assert_int_gt(ringo_go_on(i, regring_look, NULL), 0);
}

/* Whether this kernel registers ring descriptors (Linux 5.18+). */
static bool kernel_registers_rings(void)
{
#if HAVE_DECL_IO_URING_REGISTER_RING_FD
    struct io_uring ring;
    if (io_uring_queue_init(2, &ring, 0) != 0)
        return false;
    bool ok = io_uring_register_ring_fd(&ring) == 1;
    io_uring_queue_exit(&ring);
    return ok;
#else
    return false; /* nor does this liburing */
#endif
}

START_TEST(rings_entered_by_registered_index)
{
    if (!kernel_registers_rings())
        return; /* entered by descriptor, as the fallback below */
    int want = _i == 0 ? nprocs_param : 0;
    if (_i == 1)
        setenv("RINGO_NO_RING_REGISTER", "1", 1);
    RUN(main_regring, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&regring_seen), nprocs_param);
    ck_assert_int_eq(atomic_load(&regring_registered), want);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The gauges of ringo_stats: goroutines by state, offload jobs, idle
 * time; and donations, checked against where the goroutines ran. */

static ringo_chan *gauge_block;
static _Atomic int gauge_parked;

static void gauge_waiter(void *arg)
{
    (void)arg;
    int v;
    atomic_fetch_add(&gauge_parked, 1);
    ck_assert_int_eq(ringo_chan_recv(gauge_block, &v), 0);
}

static void gauge_nothing(void *arg)
{
    (void)arg;
}

static ringo_mutex gauge_mu;

static void gauge_offloaded(void *arg)
{
    (void)arg;
    ringo_mutex_lock(&gauge_mu); /* a plain thread: blocks until main unlocks */
    ringo_mutex_unlock(&gauge_mu);
}

static void gauge_offloader(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_offload(gauge_offloaded, NULL), 0);
}

static void main_gauges(void *arg)
{
    (void)arg;
    struct ringo_stats st;
    /* Five goroutines parked on a channel, then seven spawned on this
     * proc that cannot run before main yields. */
    gauge_block = ringo_chan_make(sizeof(int), 0);
    atomic_store(&gauge_parked, 0);
    for (int i = 0; i < 5; i++)
        ck_assert_int_gt(ringo_go_on(ringo_proc(), gauge_waiter, NULL), 0);
    /* On this proc: each runs, when main yields, until it parks in its
     * recv, so a count of 5 means 5 parked. */
    while (atomic_load(&gauge_parked) < 5)
        ringo_yield();
    for (int i = 0; i < 7; i++)
        ck_assert_int_gt(ringo_go_on(ringo_proc(), gauge_nothing, NULL), 0);
    ck_assert_int_eq(ringo_stats(&st), 0);
    ck_assert_uint_eq(st.goroutines, 13);
    ck_assert_uint_eq(st.runnable, 7); /* the other procs have none to publish */
    /* Exact for this proc; another proc is sampled, and one woken for a
     * moment between its sleeps counts as running. */
    ck_assert_uint_ge(st.running, 1);
    ck_assert_uint_le(st.running, nprocs_param);
    ck_assert_uint_eq(st.waiting, 13 - 7 - st.running);
    if (nprocs_param == 1) {
        ck_assert_uint_eq(st.running, 1);
        ck_assert_uint_eq(st.waiting, 5);
    }
    while (ringo_count() > 6)
        ringo_yield();
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(ringo_chan_send(gauge_block, &i), 0);
    while (ringo_count() > 1)
        ringo_yield();
    ck_assert_int_eq(ringo_stats(&st), 0);
    ck_assert_uint_eq(st.runnable, 0);
    ck_assert_uint_eq(st.waiting, 0);
    ringo_chan_release(gauge_block);

    /* Three offload jobs held on a mutex by main: queued or running until
     * it lets go. */
    ringo_mutex_lock(&gauge_mu);
    for (int i = 0; i < 3; i++)
        ck_assert_int_gt(ringo_go(gauge_offloader, NULL), 0);
    do {
        ringo_sleep(1 * MS);
        ck_assert_int_eq(ringo_stats(&st), 0);
    } while (st.offload_jobs < 3);
    ck_assert_uint_eq(st.offload_jobs, 3);
    ringo_mutex_unlock(&gauge_mu);
    while (ringo_count() > 1)
        ringo_yield();
    ck_assert_int_eq(ringo_stats(&st), 0);
    ck_assert_uint_eq(st.offload_jobs, 0);

    /* A proc with nothing to do sleeps in the kernel: idle time grows.
     * It is read on the coarse clock, whose tick (1-10 ms, and later on a
     * loaded host) one sleep may not cross: sleep until it has grown, a
     * bounded number of times. */
    struct ringo_stats a;
    ck_assert_int_eq(ringo_stats(&a), 0);
    int sleeps = 0;
    do {
        ringo_sleep(5 * MS);
        ck_assert_int_eq(ringo_stats(&st), 0);
    } while (st.idle_ns == a.idle_ns && ++sleeps < 200);
    ck_assert_uint_gt(st.idle_ns, a.idle_ns);
}

START_TEST(stats_gauges)
{
    RUN(main_gauges, NULL, nprocs_param);
}
END_TEST

/* After a run, its totals with every gauge at 0 (ringo_stats(3)):
 *   - though a plain thread's ringo_stats, which had the run pinned as
 *     it ended, summed the procs' live gauges after the run had stopped
 *     them (stats_seam holds it until the run is marked over);
 *   - though an offload job whose goroutine gave up on it (its deadline)
 *     is uncounted only as the run's procs are freed. */
static atomic_int end_looker_in;

static void end_looker_seam(int fd)
{
    (void)fd;
    atomic_store(&end_looker_in, 1);
    while (load_seqcst(&rt.active))
        sched_yield();
}

static void *end_looker(void *arg)
{
    (void)arg;
    struct ringo_stats st;
    ringo_stats(&st);
    return NULL;
}

static pthread_t end_looker_t;

static void main_end_looked_at(void *arg)
{
    (void)arg;
    for (int i = 0; i < 8; i++)
        ck_assert_int_gt(ringo_go(gauge_nothing, NULL), 0);
    ck_assert_int_eq(pthread_create(&end_looker_t, NULL, end_looker, NULL), 0);
    while (!atomic_load(&end_looker_in))
        ringo_sleep(100 * 1000);
}

static void offload_slow(void *arg)
{
    (void)arg;
    usleep(20000);
}

static void main_gives_up_on_offload(void *arg)
{
    (void)arg;
    ringo_deadline_set(ringo_now() + 1 * MS);
    ck_assert_int_eq(ringo_offload(offload_slow, NULL), -ETIMEDOUT);
}

static void stats_all_ended(void)
{
    struct ringo_stats st;
    ck_assert_int_eq(ringo_stats(&st), 0);
    ck_assert_uint_eq(st.goroutines, 0);
    ck_assert_uint_eq(st.running, 0);
    ck_assert_uint_eq(st.runnable, 0);
    ck_assert_uint_eq(st.waiting, 0);
    ck_assert_uint_eq(st.offload_jobs, 0);
}

START_TEST(stats_after_the_run)
{
    atomic_store(&end_looker_in, 0);
    atomic_store(&stats_seam, end_looker_seam);
    RUN(main_end_looked_at, NULL, nprocs_param);
    atomic_store(&stats_seam, NULL);
    pthread_join(end_looker_t, NULL);
    stats_all_ended();
    RUN(main_gives_up_on_offload, NULL, nprocs_param);
    stats_all_ended();
}
END_TEST

/* Two offload jobs queued back to back while one helper is idle each get
 * a helper: the first reads a pipe that only the second writes.  (Both
 * took the idle helper for theirs, and the first's read waited for ever
 * for the second, queued behind it.)  Many runs, each starting with one
 * helper that has gone idle: the window is the idle helper's wake-up. */
static int pair_pipe[2];
static ringo_waitgroup pair_wg;

static void pair_nothing(void *arg)
{
    (void)arg;
}

static void pair_read(void *arg)
{
    char c;
    *(ssize_t *)arg = read(pair_pipe[0], &c, 1);
}

static void pair_write(void *arg)
{
    *(ssize_t *)arg = write(pair_pipe[1], "x", 1);
}

static ssize_t pair_res[2];

static void pair_reader(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_offload(pair_read, &pair_res[0]), 0);
    ringo_waitgroup_done(&pair_wg);
}

static void pair_writer(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_offload(pair_write, &pair_res[1]), 0);
    ringo_waitgroup_done(&pair_wg);
}

static void main_offload_pair(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_offload(pair_nothing, NULL), 0); /* one helper */
    ringo_sleep(1 * MS); /* it waits for work again */
    ringo_waitgroup_add(&pair_wg, 2);
    ck_assert_int_gt(ringo_go_on(ringo_proc(), pair_reader, NULL), 0);
    ck_assert_int_gt(ringo_go_on(ringo_proc(), pair_writer, NULL), 0);
    ringo_waitgroup_wait(&pair_wg);
    ck_assert_int_eq(pair_res[0], 1);
    ck_assert_int_eq(pair_res[1], 1);
}

START_TEST(offload_jobs_queued_together_get_helpers)
{
    ck_assert_int_eq(pipe2(pair_pipe, O_CLOEXEC), 0);
    int runs = test_quick() ? 20 : 100;
    for (int i = 0; i < runs; i++)
        RUN(main_offload_pair, NULL, nprocs_param);
    close(pair_pipe[0]);
    close(pair_pipe[1]);
}
END_TEST

/* A goroutine spawned while an idle proc is between its look at the
 * other procs' rings and its sleep is taken by that proc, though its
 * spawner never yields: the proc, hungry by then, looks again before it
 * sleeps (or the spawn sees it hungry and sends it to steal).  idle_seam
 * holds proc 1 there until the spawn is made.  (It slept, sent nowhere,
 * and the goroutine waited on the spawner's proc.)  Main waits without a
 * scheduling point, a bounded number of thread yields. */
static atomic_int lw_state, lw_ran_on;

static void lw_seam(int idx)
{
    int armed = 1;
    if (idx != 1 || !atomic_compare_exchange_strong(&lw_state, &armed, 2))
        return;
    while (atomic_load(&lw_state) != 3)
        sched_yield();
}

static void lw_nothing(void *arg)
{
    (void)arg;
}

static void lw_child(void *arg)
{
    (void)arg;
    atomic_store(&lw_ran_on, ringo_proc());
}

static void main_spawn_beside_idle(void *arg)
{
    (void)arg;
    if (nprocs_param < 2)
        return;
    atomic_store(&lw_ran_on, -1);
    atomic_store(&lw_state, 1);
    /* Proc 1 runs it, then finds nothing to steal: the seam. */
    ck_assert_int_gt(ringo_go_on(1, lw_nothing, NULL), 0);
    long i;
    for (i = 0; atomic_load(&lw_state) != 2 && i < 10000000; i++)
        sched_yield();
    ck_assert_int_eq(atomic_load(&lw_state), 2);
    ck_assert_int_gt(ringo_go(lw_child, NULL), 0); /* on this proc's ring */
    atomic_store(&lw_state, 3);
    for (i = 0; atomic_load(&lw_ran_on) < 0 && i < 1000000; i++)
        sched_yield();
    ck_assert_msg(atomic_load(&lw_ran_on) == 1, "the child ran on proc %d after %ld yields",
                  atomic_load(&lw_ran_on), i);
}

START_TEST(spawn_beside_an_idle_proc_is_stolen)
{
    atomic_store(&idle_seam, lw_seam);
    RUN(main_spawn_beside_idle, NULL, nprocs_param);
    atomic_store(&idle_seam, NULL);
}
END_TEST

/* A donor that finds nothing to give leaves the hungry proc hungry: its
 * ring's count of unstarted goroutines included one a thief had taken
 * (made here by hand: the count up by one with none on the ring), and a
 * proc that lost its flag for nothing was never woken by a spawn again
 * (steal_wake asks only hungry procs). */
static void main_donate_nothing(void *arg)
{
    (void)arg;
    if (nprocs_param < 2)
        return;
    struct rproc *p = tls_proc, *q = rt.procs[1];
    ck_assert_ptr_ne(p, q);
    int n;
    for (n = 0; !(load_relaxed(&q->hungry) && load_relaxed(&q->sleeping)) && n < 5000; n++)
        ringo_sleep(1 * MS);
    ck_assert_msg(load_relaxed(&q->hungry) && load_relaxed(&q->sleeping), "proc 1 did not go to sleep");
    p->rq_fresh++; /* as after a thief took one: the owner's count is a hint */
    donate(p);
    ck_assert_uint_eq(p->rq_fresh, 0); /* made exact */
    int hungry = load_relaxed(&q->hungry);
    ck_assert_int_eq(hungry, 1);
}

START_TEST(donor_with_nothing_leaves_proc_hungry)
{
    RUN(main_donate_nothing, NULL, nprocs_param);
}
END_TEST

/* A plain thread that only looks (ringo_stats, ringo_dump) can wake
 * nobody: the run's deadlock is reported all the same, as with
 * ringo_count.  (Counted as a thread that may call in, it kept the report
 * off for good: the run hung.) */
static atomic_int looked;
static ringo_chan *look_ch;

static void *looker(void *arg)
{
    (void)arg;
    struct ringo_stats st;
    ringo_stats(&st);
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ringo_dump(fd);
    close(fd);
    atomic_store(&looked, 1);
    return NULL;
}

static void main_looked_at_then_stuck(void *arg)
{
    (void)arg;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, looker, NULL), 0);
    while (!atomic_load(&looked))
        ringo_sleep(1 * MS);
    pthread_join(t, NULL); /* the thread is done: a moment's block */
    int v;
    ringo_chan_recv(look_ch, &v); /* nobody sends */
}

START_TEST(looking_thread_keeps_deadlock_reported)
{
    atomic_store(&looked, 0);
    look_ch = ringo_chan_make(sizeof(int), 0);
    ck_assert_ptr_nonnull(look_ch);
    fflush(stderr);
    int saved = dup(2), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(null, 2), 2); /* the report */
    struct ringo_config cfg = { .procs = nprocs_param };
    int r = ringo_run(main_looked_at_then_stuck, NULL, &cfg);
    dup2(saved, 2);
    close(saved);
    close(null);
    ck_assert_int_eq(r, -EDEADLK);
    ringo_chan_release(look_ch);
}
END_TEST

/* Donations: only a donation moves a goroutine that has not started to
 * another proc, so the count equals the children that ran elsewhere. */
#define DONATE_KIDS 256
static _Atomic int donated_ran_elsewhere;

static void donate_kid(void *arg)
{
    (void)arg;
    if (ringo_proc() != 0)
        atomic_fetch_add(&donated_ran_elsewhere, 1);
}

static void main_donations(void *arg)
{
    (void)arg;
    struct ringo_stats a, b;
    ck_assert_int_eq(ringo_stats(&a), 0);
    for (int i = 0; i < DONATE_KIDS; i++)
        ck_assert_int_gt(ringo_go(donate_kid, NULL), 0);
    while (ringo_count() > 1)
        ringo_yield();
    ck_assert_int_eq(ringo_stats(&b), 0);
    uint64_t elsewhere = (uint64_t)atomic_load(&donated_ran_elsewhere);
    ck_assert_uint_eq(b.donations - a.donations, elsewhere);
}

static void main_donations_on_0(void *arg)
{
    /* main on proc 0, so "elsewhere" means another proc */
    ck_assert_int_gt(ringo_go_on(0, main_donations, arg), 0);
}

START_TEST(stats_count_donations)
{
    atomic_store(&donated_ran_elsewhere, 0);
    RUN(main_donations_on_0, NULL, nprocs_param);
    if (nprocs_param == 1)
        ck_assert_int_eq(atomic_load(&donated_ran_elsewhere), 0);
}
END_TEST

/* Stealing (runq.c "Stealing"): a goroutine spawns 2 x procs CPU-bound
 * children, then computes without a scheduling point until all of them
 * have run.  It never yields, so it neither donates nor runs any of them:
 * the run finishes only if the idle procs take the children from its
 * queue by themselves, and every child must have run on another proc. */
static _Atomic int steal_kids_done, steal_kids_on_parent;
static int steal_parent_proc;

static void steal_kid(void *arg)
{
    (void)arg;
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < 2000000; i++)
        x += i;
    if (ringo_proc() == steal_parent_proc)
        atomic_fetch_add(&steal_kids_on_parent, 1);
    atomic_fetch_add(&steal_kids_done, 1);
}

static void steal_parent(void *arg)
{
    (void)arg;
    int n = 2 * ringo_nprocs();
    steal_parent_proc = ringo_proc();
    for (int i = 0; i < n; i++)
        ck_assert_int_gt(ringo_go(steal_kid, NULL), 0);
    while (atomic_load(&steal_kids_done) < n)
        ; /* computing: no scheduling point */
    ck_assert_int_eq(atomic_load(&steal_kids_on_parent), 0);
}

START_TEST(idle_procs_steal_unstarted)
{
    atomic_store(&steal_kids_done, 0);
    atomic_store(&steal_kids_on_parent, 0);
    /* At least two procs, whatever RINGO_TEST_MAX_PROCS says: with one
     * there is nobody to steal, and the parent would compute for ever. */
    unsigned procs = nprocs_param > 2 ? nprocs_param : 2;
    struct ringo_config cfg = { .procs = procs };
    ck_assert_int_eq(ringo_run(steal_parent, NULL, &cfg), 0);
    ck_assert_int_eq(atomic_load(&steal_kids_done), 2 * (int)procs);
}
END_TEST

/* The hint idle procs read before they look at another proc's run queue
 * (rq_stealable, internal.h): the owner sets it when it queues a goroutine
 * that has not started, and clears it once its ring is empty again, also
 * when thieves and not the owner took what was on it.  Left set, every
 * idle proc would go on reading the queue indexes of a proc that hands
 * goroutines on through them (runq.c "Lines of a hand-off").  The parent
 * spawns CPU-bound children and computes without a scheduling point, as
 * in idle_procs_steal_unstarted, so the children all run elsewhere; then
 * it sleeps, and its proc, out of work, pops from an empty ring. */
static void hint_parent(void *arg)
{
    (void)arg;
    int n = 2 * ringo_nprocs();
    steal_parent_proc = ringo_proc();
    /* relaxed: the hint is this proc's own, read on its own thread */
    ck_assert_int_eq(atomic_load_explicit(&tls_proc->rq_stealable, memory_order_relaxed), 0);
    for (int i = 0; i < n; i++)
        ck_assert_int_gt(ringo_go(steal_kid, NULL), 0);
    ck_assert_int_eq(atomic_load_explicit(&tls_proc->rq_stealable, memory_order_relaxed), 1);
    while (atomic_load(&steal_kids_done) < n)
        ; /* computing: no scheduling point */
    ck_assert_int_eq(atomic_load(&steal_kids_on_parent), 0);
    ck_assert_int_eq(ringo_sleep(1000000), 0);
    ck_assert_int_eq(atomic_load_explicit(&tls_proc->rq_stealable, memory_order_relaxed), 0);
}

START_TEST(steal_hint_follows_unstarted)
{
    atomic_store(&steal_kids_done, 0);
    atomic_store(&steal_kids_on_parent, 0);
    unsigned procs = nprocs_param > 2 ? nprocs_param : 2; /* as idle_procs_steal_unstarted */
    struct ringo_config cfg = { .procs = procs };
    ck_assert_int_eq(ringo_run(hint_parent, NULL, &cfg), 0);
    ck_assert_int_eq(atomic_load(&steal_kids_done), 2 * (int)procs);
}
END_TEST

/* The run queue stays FIFO through the stealable ring, the list behind it
 * when it is full, and the moves from the list into the ring: goroutines
 * bound to proc 0 (never stolen), spawned there far more than the ring
 * holds, each yielding once, must start and resume in the order of a FIFO
 * queue.  A spawn yields every 256 while that many wait (src/spawn.c "The
 * backlog"), or when the spawn slice runs out on a slow or busy machine:
 * the spawner notes where that happened, and a model of one FIFO queue,
 * replaying the same spawns and yields, gives the order the kids must
 * log. */
#define FIFO_KIDS (3 * RQ_SIZE + 17)
static int fifo_done;
static int fifo_log[2 * FIFO_KIDS], fifo_nlog; /* kid i logs 2i when it starts, 2i+1 when it resumes */
static bool fifo_yielded[FIFO_KIDS];           /* the spawn of kid i yielded */

static void fifo_kid(void *arg)
{
    int i = (int)(intptr_t)arg;
    fifo_log[fifo_nlog++] = 2 * i;
    ringo_yield();
    fifo_log[fifo_nlog++] = 2 * i + 1;
    fifo_done++;
}

/* The model: the order in which one FIFO queue runs the kids, the spawner
 * going behind them where its spawn yielded and in its final loop. */
static void fifo_model(int *out)
{
    static int q[3 * FIFO_KIDS + 2]; /* kid entries 2i, 2i+1 as logged; -1 the spawner */
    int head = 0, tail = 0, n = 0, done = 0;
    for (int i = 0; i <= FIFO_KIDS; i++) {
        if (i < FIFO_KIDS) {
            q[tail++] = 2 * i;
            if (!fifo_yielded[i])
                continue;
        } else if (done == FIFO_KIDS) {
            break;
        }
        q[tail++] = -1; /* the spawner yields: run the queue until it is back */
        for (;;) {
            int e = q[head++];
            if (e < 0) {
                if (i < FIFO_KIDS || done == FIFO_KIDS)
                    break;
                q[tail++] = -1; /* the final loop yields again */
                continue;
            }
            out[n++] = e;
            if (e % 2 == 0)
                q[tail++] = e + 1;
            else
                done++;
        }
    }
}

static void fifo_spawner(void *arg)
{
    (void)arg;
    fifo_done = fifo_nlog = 0;
    for (int i = 0; i < FIFO_KIDS; i++) {
        int logged = fifo_nlog;
        ck_assert_int_gt(ringo_go_on(0, fifo_kid, (void *)(intptr_t)i), 0);
        fifo_yielded[i] = fifo_nlog != logged;
    }
    while (fifo_done < FIFO_KIDS)
        ringo_yield();
    ck_assert_int_eq(fifo_nlog, 2 * FIFO_KIDS);
    static int want[2 * FIFO_KIDS];
    fifo_model(want);
    for (int k = 0; k < 2 * FIFO_KIDS; k++)
        ck_assert_msg(fifo_log[k] == want[k], "entry %d: kid %d %s, want kid %d %s", k,
                      fifo_log[k] / 2, fifo_log[k] % 2 ? "resumed" : "started",
                      want[k] / 2, want[k] % 2 ? "resumed" : "started");
}

static void fifo_main(void *arg)
{
    ck_assert_int_gt(ringo_go_on(0, fifo_spawner, arg), 0);
}

START_TEST(run_queue_fifo_through_ring)
{
    RUN(fifo_main, NULL, nprocs_param);
}
END_TEST

/* A goroutine that spawns without ever blocking or yielding does not keep
 * its own proc from its children (src/spawn.c "The spawn slice"): once it
 * has run about 10 ms without a scheduling point, a spawn yields, as Go
 * preempts a goroutine that has run 10 ms, and the children queued on its
 * proc run there while its loop goes on.  Without the slice they would
 * all wait for the loop's end (one proc), or run only on the procs that
 * steal them (more), and SLICE_SPAWNS of them would pile up.  The bound
 * is a count: the loop's spawns and the work between them take well over
 * 10 ms on any machine (at least 40 ns each, 40 ms in all).  On one proc
 * the backlog's bound (spawn_backlog_is_bounded) makes the spawn yield
 * first, after 256 spawns; on more, where idle procs take the children,
 * the slice may. */
#define SLICE_SPAWNS 1000000L
static atomic_long slice_here;          /* children that ran on the spawner's proc */
static atomic_long slice_ran;           /* children that ran anywhere */
static int slice_proc;
static long slice_spawned, slice_backlog;

static void slice_kid(void *arg)
{
    (void)arg;
    if (ringo_proc() == slice_proc)
        atomic_fetch_add(&slice_here, 1);
    atomic_fetch_add(&slice_ran, 1);
}

static void slice_parent(void *arg)
{
    (void)arg;
    slice_proc = ringo_proc();
    volatile unsigned work = 0;
    long i;
    for (i = 0; i < SLICE_SPAWNS && atomic_load(&slice_here) == 0; i++) {
        ck_assert_int_gt(ringo_go(slice_kid, NULL), 0);
        for (unsigned k = 0; k < 64; k++)
            work += k; /* computing: no scheduling point */
    }
    slice_spawned = i;
    /* the children still waiting when the first ran on this proc: they
     * had all run, the spawner was behind them */
    slice_backlog = i - atomic_load(&slice_ran);
    while (ringo_count() > 1)
        ringo_yield();
}

START_TEST(spawner_that_never_blocks_lets_its_children_run)
{
    atomic_store(&slice_here, 0);
    atomic_store(&slice_ran, 0);
    RUN(slice_parent, NULL, nprocs_param);
    printf("  %u proc%s: a child ran on the spawner's proc after %ld spawns\n", nprocs_param,
           nprocs_param > 1 ? "s" : "", slice_spawned);
    ck_assert_msg(slice_spawned < SLICE_SPAWNS, "no child ran on the spawner's proc in %ld spawns",
                  slice_spawned);
    ck_assert_int_gt(atomic_load(&slice_here), 0);
    ck_assert_int_eq(atomic_load(&slice_ran), slice_spawned);
    if (nprocs_param == 1)
        ck_assert_int_eq(slice_backlog, 0); /* FIFO: the spawner went behind every child */
}
END_TEST

/* A spawner that never blocks has at most a few hundred children waiting
 * at a time (src/spawn.c "The backlog"): every 256 spawns it yields once
 * 256 or more goroutines wait on its proc.  The spawner measures the
 * backlog itself, spawned minus started, after each spawn.  Without the
 * bound the 20000 spawns take a millisecond or so, well inside the 10 ms
 * slice, and all of them wait on one proc. */
#define BACKLOG_SPAWNS 20000L
static long backlog_max;

static void backlog_parent(void *arg)
{
    (void)arg;
    backlog_max = 0;
    for (long i = 1; i <= BACKLOG_SPAWNS; i++) {
        ck_assert_int_gt(ringo_go(bump, NULL), 0); /* counts the started in counter */
        long waiting = i - atomic_load(&counter);
        if (waiting > backlog_max)
            backlog_max = waiting;
    }
}

START_TEST(spawn_backlog_is_bounded)
{
    atomic_store(&counter, 0);
    RUN(backlog_parent, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&counter), BACKLOG_SPAWNS);
    /* 256 waiting at the look, and up to 256 more spawns to the next one */
    ck_assert_msg(backlog_max <= 512, "%ld children waited at once", backlog_max);
}
END_TEST

/* A spawner whose children are slow to run deals half of each backlog to
 * another proc, even one that is never idle (src/spawn.c "Dealing"): here
 * a goroutine bound to the other proc yields in a loop, so that proc never
 * steals and is never donated to, and only a deal can bring it children.
 * Each child computes for some microseconds (a few thousand additions), so
 * every 256 of them take far longer than DEAL_NS (50 us) on any machine.
 * The spawner begins once the busy goroutine runs: until the other proc's
 * thread has taken it in, that proc's inbox is not empty and no deal goes
 * there (runq.c deal), and on a loaded host the thread may not run before
 * every child has.  Without dealing every child runs on the spawner's
 * proc. */
#define DEAL_KIDS 2048
static atomic_long deal_on[2];
static atomic_int deal_stop, deal_busy_runs;

static void deal_kid(void *arg)
{
    (void)arg;
    volatile unsigned work = 0;
    for (unsigned k = 0; k < 5000; k++)
        work += k; /* computing: no scheduling point */
    atomic_fetch_add(&deal_on[ringo_proc() == 0 ? 0 : 1], 1);
}

static void deal_busy(void *arg)
{
    (void)arg;
    atomic_store(&deal_busy_runs, 1);
    while (!atomic_load(&deal_stop))
        ringo_yield();
}

static void deal_parent(void *arg)
{
    (void)arg;
    ck_assert_int_gt(ringo_go_on(1, deal_busy, NULL), 0);
    while (!atomic_load(&deal_busy_runs))
        ringo_yield();
    for (long i = 0; i < DEAL_KIDS; i++)
        ck_assert_int_gt(ringo_go(deal_kid, NULL), 0);
    while (atomic_load(&deal_on[0]) + atomic_load(&deal_on[1]) < DEAL_KIDS)
        ringo_yield();
    atomic_store(&deal_stop, 1);
}

START_TEST(slow_backlog_is_dealt_to_a_busy_proc)
{
    if (nprocs_param < 2)
        return; /* nobody to deal to */
    atomic_store(&deal_on[0], 0);
    atomic_store(&deal_on[1], 0);
    atomic_store(&deal_stop, 0);
    atomic_store(&deal_busy_runs, 0);
    RUN(deal_parent, NULL, nprocs_param);
    printf("  children on the spawner's proc %ld, on the busy one %ld\n", atomic_load(&deal_on[0]),
           atomic_load(&deal_on[1]));
    long here = atomic_load(&deal_on[0]), there = atomic_load(&deal_on[1]);
    ck_assert_int_eq(here + there, DEAL_KIDS);
    ck_assert_msg(there > 0, "no child ran on the busy proc");
}
END_TEST

/* ringo_count() sums counts kept per proc (src/spawn.c "Counting the
 * live"): goroutines spawned on one proc that exit on another, both ways,
 * are counted from their spawn to their exit, and once the count no longer
 * includes them, what they wrote is visible (plain writes, read plainly
 * after the count). */
#define XCOUNT_KIDS 1000
static int xcount_data[2 * XCOUNT_KIDS];

static void xcount_kid(void *arg)
{
    long i = (long)arg;
    xcount_data[i] = (int)i + 1;
}

static void xcount_relay(void *arg)
{
    (void)arg;
    for (long i = XCOUNT_KIDS; i < 2 * XCOUNT_KIDS; i++)
        ck_assert_int_gt(ringo_go_on(0, xcount_kid, (void *)i), 0);
}

static void xcount_main(void *arg)
{
    (void)arg;
    int last = ringo_nprocs() - 1;
    ck_assert_int_gt(ringo_go_on(last, xcount_relay, NULL), 0);
    for (long i = 0; i < XCOUNT_KIDS; i++)
        ck_assert_int_gt(ringo_go_on(last, xcount_kid, (void *)i), 0);
    size_t n;
    while ((n = ringo_count()) > 1) {
        ck_assert_uint_le(n, 2 + 2 * XCOUNT_KIDS);
        ringo_yield();
    }
    ck_assert_uint_eq(n, 1);
    for (long i = 0; i < 2 * XCOUNT_KIDS; i++)
        ck_assert_int_eq(xcount_data[i], (int)i + 1);
}

START_TEST(count_spawns_and_exits_on_other_procs)
{
    memset(xcount_data, 0, sizeof xcount_data);
    RUN(xcount_main, NULL, nprocs_param);
    ck_assert_uint_eq(ringo_count(), 0);
}
END_TEST

/* The run ends when its last goroutine exits, whichever proc that is on
 * and however close the last two exits are: each proc looks at the count
 * when it runs out of work after exits (src/spawn.c "The end of the
 * run").  Many short runs whose main and one child on another proc exit
 * at about the same time; a run that missed its end would hang here. */
static void end_kid(void *arg)
{
    (void)arg;
}

static void end_main(void *arg)
{
    (void)arg;
    ck_assert_int_gt(ringo_go_on(ringo_nprocs() - 1, end_kid, NULL), 0);
}

START_TEST(run_ends_after_near_simultaneous_exits)
{
    int runs = test_under_valgrind() ? 20 : 300;
    for (int i = 0; i < runs; i++)
        RUN(end_main, NULL, nprocs_param);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, run_waits_for_every_goroutine);
    tcase_add_test(tc, ids_of_an_earlier_run_name_nobody);
    tcase_add_test(tc, runs_end_while_a_plain_thread_calls_in);
    tcase_add_test(tc, run_waits_for_grandchildren);
    tcase_add_test(tc, version_matches_header);
    tcase_add_test(tc, run_rejects_bad_input);
    tcase_add_test(tc, run_is_not_reentrant);
    tcase_add_test(tc, run_can_be_repeated);
    tcase_add_test(tc, ids_procs_and_count);
    tcase_add_test(tc, ids_are_never_reused);
    tcase_add_test(tc, yield_round_robins);
    tcase_add_test(tc, exit_ends_only_the_caller);
    tcase_add_test(tc, exit_outside_a_goroutine_is_fatal);
    tcase_add_test(tc, procs_from_the_environment);
    tcase_add_test(tc, segv_handler_of_the_program_stays);
    tcase_add_test(tc, cancel_made_before_the_deadline_wins);
    tcase_add_test(tc, big_stacks_under_an_address_space_limit);
    tcase_add_test(tc, fork_during_a_run_leaves_the_child_outside_it);
    tcase_add_test(tc, go_on_binds_to_proc);
    tcase_add_test(tc, go_outside_runtime_fails);
    if (test_max_procs() >= 2)
        tcase_add_test(tc, idle_proc_takes_unstarted_goroutines);
    tcase_add_test(tc, cancel_ends_waits);
    tcase_add_test(tc, cancel_self);
    tcase_add_test(tc, go_from_plain_thread);
    tcase_add_test(tc, cancel_from_plain_thread);
    tcase_add_test(tc, sleep_forever_is_not_deadlock);
    tcase_add_test(tc, nothing_runs_after_a_deadlock_report);
    tcase_add_test(tc, plain_thread_sleep_falls_back);
    tcase_add_test(tc, hundred_thousand_goroutines);
    tcase_add_test(tc, stats_count_the_run);
    tcase_add_test(tc, stats_old_size_not_overrun);
    tcase_add_test(tc, config_old_size_not_overread);
    tcase_add_test(tc, config_unknown_fields_refused);
    tcase_add_test(tc, setup_failure_is_reported);
    tcase_add_test(tc, refused_io_uring_chooses_epoll);
    tcase_add_test(tc, no_cancel_by_fd_chooses_epoll);
    tcase_add_test(tc, fd_limit_is_reported);
    tcase_add_test(tc, idle_spins_die_out_without_handoffs);
    if (engine_of_a_child() == RINGO_ENGINE_URING) /* epoll wakes through the eventfd, no SQE */
        tcase_add_test(tc, wakes_cost_the_waker_no_completion);
    if (engine_of_a_child() == RINGO_ENGINE_URING) /* epoll has no ring */
        tcase_add_loop_test(tc, rings_entered_by_registered_index, 0, 2);
    tcase_add_test(tc, stats_gauges);
    tcase_add_test(tc, stats_after_the_run);
    tcase_add_test(tc, looking_thread_keeps_deadlock_reported);
    tcase_add_test(tc, offload_jobs_queued_together_get_helpers);
    tcase_add_test(tc, donor_with_nothing_leaves_proc_hungry);
    tcase_add_test(tc, spawn_beside_an_idle_proc_is_stolen);
    tcase_add_test(tc, stats_count_donations);
    if (!test_under_valgrind()) { /* valgrind runs its own stack checks */
        tcase_add_test(tc, stack_overflow_guard_page);
        tcase_add_test(tc, stack_overflow_canary);
        tcase_add_test(tc, stack_overflow_at_exit_names_the_goroutine);
        tcase_add_test(tc, stack_guard_page_faults);
        tcase_add_test(tc, stack_guard_page_faults_mprotect);
    }
    tcase_add_test(tc, stack_pool_batches);
    tcase_add_loop_test(tc, stack_shed_gives_back_deep_pages, 0, 2);
    tcase_add_test(tc, stack_unshed_cap);
    /* valgrind: not 34 GiB of stacks' address space */
    tcase_add_loop_test(tc, stack_idle_proc_sheds, 0, test_under_valgrind() ? 1 : 2);
    if (!test_under_valgrind()) /* it reads below the stack pointer */
        tcase_add_test(tc, runtime_frames_fit_red_zone);
    tcase_add_test(tc, idle_procs_steal_unstarted);
    tcase_add_test(tc, unstarted_on_recycled_structs);
    tcase_add_test(tc, steal_hint_follows_unstarted);
    tcase_add_test(tc, run_queue_fifo_through_ring);
    tcase_add_test(tc, spawner_that_never_blocks_lets_its_children_run);
    tcase_add_test(tc, spawn_backlog_is_bounded);
    tcase_add_test(tc, count_spawns_and_exits_on_other_procs);
    tcase_add_test(tc, slow_backlog_is_dealt_to_a_busy_proc);
    tcase_add_test(tc, run_ends_after_near_simultaneous_exits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    skip_without_io_uring();
    return run_per_procs(suite, &nprocs_param);
}
