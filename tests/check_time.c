/*
 * check_time.c — ringo_now, sleeps, deadlines, cancellation of sleepers,
 * and many concurrent sleepers.  No assertion reads a stopwatch: a sleep
 * that lasts far too long is caught by losing a race against a plain
 * thread's nanosleep (late_flag below), which a loaded machine delays as
 * much as it delays the sleep.
 */
#include "testutil.h"

#include <time.h>

#include "timer.h" /* the heap itself, for the model test */

static unsigned nprocs_param = 1;

/* An independent clock for "not far later than": a plain thread that never
 * calls into ringo sleeps in nanosleep(2) for a span, then raises a flag.
 * Sleeps of d in total that all end before a flag of LATE_FACTOR * d
 * started earlier is up were not late by that factor: a sleep whose unit
 * or arithmetic is wrong loses the race however loaded the machine is. */
#define LATE_FACTOR 20

struct late_flag { int64_t ns; atomic_int up; pthread_t t; };

static void *late_flag_main(void *p)
{
    struct late_flag *f = p;
    struct timespec ts = { (time_t)(f->ns / 1000000000), (long)(f->ns % 1000000000) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    atomic_store(&f->up, 1);
    return NULL;
}

static void late_flag_start(struct late_flag *f, int64_t ns)
{
    f->ns = ns;
    atomic_store(&f->up, 0);
    ck_assert_int_eq(pthread_create(&f->t, NULL, late_flag_main, f), 0);
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

START_TEST(now_is_monotonic)
{
    int64_t a = ringo_now();
    int64_t b = ringo_now();
    ck_assert_int_gt(a, 0);
    ck_assert_int_ge(b, a);
    /* it is CLOCK_MONOTONIC: it falls between two readings of it */
    int64_t c0 = monotonic_ns();
    int64_t c = ringo_now();
    int64_t c1 = monotonic_ns();
    ck_assert_int_ge(c, c0);
    ck_assert_int_le(c, c1);
}
END_TEST

static void sleeps(void *arg)
{
    (void)arg;
    struct late_flag late;
    late_flag_start(&late, LATE_FACTOR * (31 + 3) * MS); /* the sleeps below */
    for (int64_t d = 1 * MS; d <= 16 * MS; d *= 2) {
        int64_t t0 = ringo_now();
        ck_assert_int_eq(ringo_sleep(d), 0);
        ck_assert_int_ge(ringo_now() - t0, d);
    }
    int64_t until = ringo_now() + 3 * MS;
    ck_assert_int_eq(ringo_sleep_until(until), 0);
    ck_assert_int_ge(ringo_now(), until);
    ck_assert_msg(!atomic_load(&late.up), "the sleeps took over %d times as long as asked",
                  LATE_FACTOR);
    pthread_join(late.t, NULL); /* blocks this proc until the flag is up; fine in a test */
}

START_TEST(sleep_lasts_at_least_its_duration)
{
    RUN(sleeps, NULL, nprocs_param);
}
END_TEST

static int trace[8];
static int ntrace;

static void other(void *arg)
{
    (void)arg;
    trace[ntrace++] = 2;
}

static void zero_sleeps_yield(void *arg)
{
    (void)arg;
    ntrace = 0;
    ringo_go_on(ringo_proc(), other, NULL);
    trace[ntrace++] = 1;
    ck_assert_int_eq(ringo_sleep(0), 0); /* yields: other runs now */
    trace[ntrace++] = 3;
    ringo_go_on(ringo_proc(), other, NULL);
    ck_assert_int_eq(ringo_sleep(-5), 0);
    trace[ntrace++] = 3;
    ringo_go_on(ringo_proc(), other, NULL);
    ck_assert_int_eq(ringo_sleep_until(ringo_now() - 1 * MS), 0);
    trace[ntrace++] = 3;
}

START_TEST(nonpositive_sleep_yields_once)
{
    RUN(zero_sleeps_yield, NULL, nprocs_param);
    int expect[] = { 1, 2, 3, 2, 3, 2, 3 };
    ck_assert_int_eq(ntrace, 7);
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(trace[i], expect[i]);
}
END_TEST

static void deadline_child(void *arg)
{
    int64_t *out = arg;
    *out = ringo_deadline();
}

static void deadlines(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_deadline(), RINGO_NEVER);
    int64_t dl = ringo_now() + 10 * MS;
    ck_assert_int_eq(ringo_deadline_set(dl), RINGO_NEVER);
    ck_assert_int_eq(ringo_deadline(), dl);

    /* a new goroutine does not inherit the deadline */
    int64_t child_dl = 0;
    ringo_go_on(ringo_proc(), deadline_child, &child_dl);

    /* -ETIMEDOUT, not 0: the deadline ended it, long before the sleep */
    ck_assert_int_eq(ringo_sleep(10000 * MS), -ETIMEDOUT);
    ck_assert_int_ge(ringo_now(), dl);
    while (child_dl == 0) /* on a slow machine the deadline may pass first */
        ringo_yield();
    ck_assert_int_eq(child_dl, RINGO_NEVER);

    /* past deadline: checked on entry, the sleep is not attempted */
    ck_assert_int_eq(ringo_sleep(0), -ETIMEDOUT);
    ck_assert_int_eq(ringo_sleep(1), -ETIMEDOUT);
    ck_assert_int_eq(ringo_sleep_until(0), -ETIMEDOUT);

    /* a sleep shorter than the deadline completes normally */
    ck_assert_int_eq(ringo_deadline_set(ringo_now() + 1000 * MS), dl);
    ck_assert_int_eq(ringo_sleep(1 * MS), 0);
    ck_assert_int_gt(ringo_deadline_set(RINGO_NEVER), 0);
    ck_assert_int_eq(ringo_sleep(1 * MS), 0);
}

START_TEST(deadline_ends_a_sleep)
{
    RUN(deadlines, NULL, nprocs_param);
}
END_TEST

START_TEST(deadline_outside_goroutine)
{
    ck_assert_int_eq(ringo_deadline(), RINGO_NEVER);
    ck_assert_int_eq(ringo_deadline_set(12345), RINGO_NEVER);
    ck_assert_int_eq(ringo_deadline(), RINGO_NEVER);
}
END_TEST

static atomic_int cancelled_ok;

static void long_sleeper(void *arg)
{
    int64_t dl = (int64_t)(intptr_t)arg;
    if (dl)
        ringo_deadline_set(ringo_now() + dl);
    /* -ECANCELED, not 0 or -ETIMEDOUT: the cancel ended it, before the
     * sleep or the deadline */
    if (ringo_sleep(5000 * MS) == -ECANCELED)
        atomic_fetch_add(&cancelled_ok, 1);
}

static void cancel_sleepers(void *arg)
{
    (void)arg;
    int64_t a = ringo_go(long_sleeper, NULL);
    int64_t b = ringo_go_on(ringo_nprocs() - 1, long_sleeper, NULL);
    /* deadline later than the cancel: cancellation ends it */
    int64_t c = ringo_go(long_sleeper, (void *)(intptr_t)(2000 * MS));
    ringo_sleep(5 * MS);
    ck_assert_int_eq(ringo_cancel(a), 0);
    ck_assert_int_eq(ringo_cancel(b), 0);
    ck_assert_int_eq(ringo_cancel(c), 0);
}

START_TEST(cancel_ends_a_sleep)
{
    atomic_store(&cancelled_ok, 0);
    RUN(cancel_sleepers, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&cancelled_ok), 3);
}
END_TEST

static void both_passed(void *arg)
{
    (void)arg;
    ringo_deadline_set(ringo_now() - 1);
    ringo_cancel(ringo_id());
    ck_assert_int_eq(ringo_sleep(1 * MS), -ECANCELED); /* cancellation wins */
}

START_TEST(cancel_wins_over_deadline)
{
    RUN(both_passed, NULL, nprocs_param);
}
END_TEST

/* 100,000 goroutines sleeping 10 ms at once (10,000 with RINGO_TEST_QUICK). */
#define NSLEEPERS (test_quick() ? 10000 : 100000)
static atomic_int woke;
static atomic_llong worst_late;

static void sleeper10(void *arg)
{
    (void)arg;
    int64_t want = ringo_now() + 10 * MS;
    ck_assert_int_eq(ringo_sleep_until(want), 0);
    int64_t late = ringo_now() - want;
    ck_assert_int_ge(late, 0);
    long long w = atomic_load(&worst_late);
    while (late > w && !atomic_compare_exchange_weak(&worst_late, &w, late))
        ;
    atomic_fetch_add(&woke, 1);
}

static void many_sleepers(void *arg)
{
    (void)arg;
    for (int i = 0; i < NSLEEPERS; i++)
        ck_assert_int_gt(ringo_go(sleeper10, NULL), 0);
}

START_TEST(hundred_thousand_sleepers)
{
    atomic_store(&woke, 0);
    atomic_store(&worst_late, 0);
    int64_t t0 = ringo_now();
    RUN(many_sleepers, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&woke), NSLEEPERS);
    printf("  %d sleepers on %u proc(s): wall %.1f ms, worst lateness %.1f ms\n", NSLEEPERS, nprocs_param,
           (double)(ringo_now() - t0) / MS, (double)atomic_load(&worst_late) / MS);
}
END_TEST

/* A busy proc looks at its timers at every scheduling point only while
 * its run queue is empty; otherwise at its periodic polls, whose pace
 * follows how long its scheduling points take (sched.c "Pacing the
 * polls"): goroutines that compute for a millisecond between yields must
 * not hold a sleeper past its time by the 64 scheduling points of the
 * default pace.  Counted in the neighbours' slices, not read off a
 * stopwatch: a sleep of BUSY_SLEEP slices ends within BUSY_LATE of them,
 * however loaded the machine (a slice is a millisecond of wall time, which
 * a preempted proc only shortens).  The pace is learned at the proc's
 * first periodic poll, after the default pace's 64 scheduling points, so
 * the sleeps (and reads, below) are measured only once the neighbours
 * have computed past them (busy_warm; each slice ends at a scheduling
 * point).  In the second run (_i = 1) the one neighbour waits briefly
 * every 40 slices, an idle moment for the proc, which must not make it
 * forget the pace. */
enum { BUSY_SLEEPS = 12, BUSY_SLEEP = 5, BUSY_LATE = 24, BUSY_WARM = 72 };

static atomic_uint busy_slices;
static atomic_bool busy_stop;
static int busy_idle_every; /* slices; 0: never */

struct busy_arg { ringo_waitgroup *wg; int idle_every; bool poke; };

/* A neighbour's slice: a millisecond of computing, with no scheduling
 * point, counted. */
static void busy_slice(void)
{
    int64_t end = monotonic_ns() + 1 * MS;
    while (monotonic_ns() < end)
        ;
    atomic_fetch_add_explicit(&busy_slices, 1, memory_order_relaxed);
}

/* Wait for the neighbours to have computed BUSY_WARM slices: past the
 * first periodic poll, however soon they began.  (Counting measured
 * sleeps instead left the pace unlearned where the first ones ended
 * before the neighbours were under way.) */
static void busy_warm(void)
{
    while (atomic_load(&busy_slices) < BUSY_WARM)
        ck_assert_int_eq(ringo_sleep(1 * MS), 0);
}

static void busy_neighbour(void *arg)
{
    struct busy_arg *a = arg;
    for (unsigned n = 1; !atomic_load_explicit(&busy_stop, memory_order_relaxed); n++) {
        busy_slice();
        if (a->poke) /* a goroutine for the other proc, which wakes it */
            ck_assert_int_gt(ringo_go_on((ringo_proc() + 1) % ringo_nprocs(), testutil_nop, NULL), 0);
        if (a->idle_every && n % (unsigned)a->idle_every == 0)
            ck_assert_int_eq(ringo_sleep(50000), 0);
        else
            ringo_yield();
    }
    ringo_waitgroup_done(a->wg);
}

static void busy_sleeper(void *arg)
{
    (void)arg;
    ringo_waitgroup wg = { 0 };
    atomic_store(&busy_stop, false);
    atomic_store(&busy_slices, 0);
    int nn = busy_idle_every ? 1 : 2; /* one alone: its waits leave the proc idle */
    ringo_waitgroup_add(&wg, nn);
    struct busy_arg args[2] = { { &wg, busy_idle_every, false }, { &wg, 0, false } };
    for (int i = 0; i < nn; i++)
        ck_assert_int_gt(ringo_go_on(ringo_proc(), busy_neighbour, &args[i]), 0);
    busy_warm();
    unsigned worst = 0;
    for (int i = 0; i < BUSY_SLEEPS; i++) {
        unsigned s0 = atomic_load(&busy_slices);
        ck_assert_int_eq(ringo_sleep(BUSY_SLEEP * MS), 0);
        unsigned n = atomic_load(&busy_slices) - s0;
        if (n > worst)
            worst = n;
    }
    atomic_store(&busy_stop, true);
    ringo_waitgroup_wait(&wg);
    printf("  a %d ms sleep beside 1 ms slices%s on %u proc(s): at most %u slices\n", BUSY_SLEEP,
           busy_idle_every ? ", idle now and then," : "", nprocs_param, worst);
    ck_assert_msg(worst <= BUSY_LATE, "a %d ms sleep lasted %u of its neighbours' 1 ms slices",
                  BUSY_SLEEP, worst);
}

START_TEST(sleep_beside_busy_goroutines_ends_in_time)
{
    busy_idle_every = _i ? 40 : 0;
    RUN(busy_sleeper, NULL, nprocs_param);
}
END_TEST

/* The same for I/O: a busy proc reaps its completions (and submits its
 * SQEs) at its paced polls too, where it did at every POLL_EVERY
 * scheduling points only: a read of a pipe that a plain thread wrote
 * lasted up to 64 of its neighbours' 1 ms slices.  Counted in slices from
 * the write on (the writer may wait long for a CPU: under valgrind one
 * thread runs at a time), as above; the bound is the sleep's.  The
 * writer writes at once (_i = 0: the read is submitted at a paced poll,
 * its data already there) or after BUSY_DELAY slices (_i = 1: submitted
 * long before, its completion found at a paced poll).  With two procs,
 * _i = 2 as 0, the neighbours also waking the other proc after each
 * slice: the wake submits what this proc has queued, and the read
 * completes as it is submitted, a completion on the CQ that the
 * kernel's task-work flag does not tell of.  With two procs, _i = 3 as
 * 0, but the neighbours park after each slice and come back through the
 * proc's inbox: a relay on the other proc readies one as the other
 * begins its slice, so at each park the run queue is empty until the
 * inbox is taken in (busy_relayed). */
enum { BUSY_READS = 12, BUSY_DELAY = 12 };

static int busy_pipe[2];
static atomic_int busy_want;
static atomic_uint busy_at; /* busy_slices as the writer wrote */
static int busy_delay;

static void *busy_writer(void *arg)
{
    (void)arg;
    for (int n = 1; n <= BUSY_READS; n++) {
        while (atomic_load(&busy_want) < n)
            usleep(50);
        unsigned base = atomic_load(&busy_slices);
        while (atomic_load(&busy_slices) - base < (unsigned)busy_delay)
            usleep(100);
        atomic_store(&busy_at, atomic_load(&busy_slices));
        ck_assert_int_eq(write(busy_pipe[1], "x", 1), 1);
    }
    return NULL;
}

/* _i = 3: neighbour k takes its turn from its channel turn[k], asks the
 * relay to hand the next turn to the other, and computes its slice; the
 * relay, on the other proc, sends each turn asked for.  All end when the
 * reader closes the channels. */
static ringo_chan *busy_turn[2], *busy_ask;
static ringo_waitgroup *busy_wg;

static void busy_relayed(void *arg)
{
    int k = (int)(intptr_t)arg, other = 1 - k;
    char t;
    while (ringo_chan_recv(busy_turn[k], &t) == 0) {
        ringo_chan_send(busy_ask, &other); /* -EPIPE once closed */
        busy_slice();
    }
    ringo_waitgroup_done(busy_wg);
}

static void busy_relay(void *arg)
{
    (void)arg;
    int k;
    char t = 0;
    while (ringo_chan_recv(busy_ask, &k) == 0)
        ringo_chan_send(busy_turn[k], &t);
    ringo_waitgroup_done(busy_wg);
}

static void busy_reader(void *arg)
{
    ringo_waitgroup wg = { 0 };
    atomic_store(&busy_stop, false);
    atomic_store(&busy_slices, 0);
    int variant = *(int *)arg;
    bool poke = variant == 2;
    struct busy_arg args[2] = { { &wg, 0, poke }, { &wg, 0, poke } };
    if (variant == 3) {
        for (int k = 0; k < 2; k++)
            ck_assert_ptr_nonnull(busy_turn[k] = ringo_chan_make(1, 1));
        ck_assert_ptr_nonnull(busy_ask = ringo_chan_make(sizeof(int), 0));
        char t = 0;
        ck_assert_int_eq(ringo_chan_send(busy_turn[0], &t), 0); /* the first turn */
        busy_wg = &wg;
        ringo_waitgroup_add(&wg, 3);
        for (int k = 0; k < 2; k++)
            ck_assert_int_gt(ringo_go_on(ringo_proc(), busy_relayed, (void *)(intptr_t)k), 0);
        ck_assert_int_gt(ringo_go_on((ringo_proc() + 1) % ringo_nprocs(), busy_relay, NULL), 0);
    } else {
        ringo_waitgroup_add(&wg, 2);
        for (int i = 0; i < 2; i++)
            ck_assert_int_gt(ringo_go_on(ringo_proc(), busy_neighbour, &args[i]), 0);
    }
    busy_warm();
    unsigned worst = 0;
    for (int i = 0; i < BUSY_READS; i++) {
        atomic_store(&busy_want, i + 1);
        char c;
        ck_assert_int_eq(ringo_read(busy_pipe[0], &c, 1), 1);
        /* the writer stored busy_at before its write, which our read saw */
        unsigned n = atomic_load(&busy_slices) - atomic_load(&busy_at);
        if (n > worst)
            worst = n;
    }
    atomic_store(&busy_stop, true);
    if (variant == 3) {
        ringo_chan_close(busy_turn[0]);
        ringo_chan_close(busy_turn[1]);
        ringo_chan_close(busy_ask);
    }
    ringo_waitgroup_wait(&wg);
    if (variant == 3) {
        ringo_chan_release(busy_turn[0]);
        ringo_chan_release(busy_turn[1]);
        ringo_chan_release(busy_ask);
    }
    printf("  a read beside 1 ms slices on %u proc(s), written %s%s: at most %u slices\n", nprocs_param,
           busy_delay ? "later" : "at once",
           poke ? ", the other proc woken" : variant == 3 ? ", the neighbours fed by the inbox" : "", worst);
    ck_assert_msg(worst <= BUSY_LATE, "a read of a written pipe lasted %u of its neighbours' 1 ms slices",
                  worst);
}

START_TEST(read_beside_busy_goroutines_ends_in_time)
{
    if (_i >= 2 && nprocs_param < 2)
        return; /* no other proc to wake, or to relay from */
    busy_delay = _i == 1 ? BUSY_DELAY : 0;
    ck_assert_int_eq(pipe(busy_pipe), 0);
    atomic_store(&busy_want, 0);
    pthread_t w;
    ck_assert_int_eq(pthread_create(&w, NULL, busy_writer, NULL), 0);
    int variant = _i;
    RUN(busy_reader, &variant, nprocs_param);
    pthread_join(w, NULL);
    close(busy_pipe[0]);
    close(busy_pipe[1]);
}
END_TEST

/* The timers against a model, without a run: random arms, re-arms
 * (earlier, and later: "Moved later" in timer.c) and disarms, with runs of
 * the timers at a clock that moves forward.  After each step every armed
 * timer sits where its index says, in the heap or the queue, with its
 * place beside it; no heap parent after its children; the queue in order,
 * an armed timer at each end.  Each run fires exactly the armed timers due
 * by then, and the next time is no later than any due that is left.
 *
 * Two mixes: whens at random (nearly all in the heap), and whens mostly
 * one length after the clock, as sleeps of one duration and deadlines of
 * one timeout are, the rest earlier (the queue, with the others and the
 * re-arms earlier going to the heap, and disarms emptying slots in the
 * middle). */
enum { HT_N = 3000, HT_STEPS = 60000 };
#define HT_LEN 5000000 /* the one length of the ordered mix */

/* A check that costs nothing when it holds (ck_assert marks each passing
 * check with a write to the test's pipe; this test makes millions). */
#define HT_REQUIRE(c)                                                             \
    do {                                                                          \
        if (!(c))                                                                 \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c);                    \
    } while (0)

struct ht_timer { struct rtimer t; int64_t due; bool armed, fired; };
static struct ht_timer ht[HT_N];

static void ht_fire(struct rproc *p, struct rtimer *t)
{
    (void)p;
    struct ht_timer *m = (struct ht_timer *)t;
    HT_REQUIRE(m->armed && !m->fired);
    m->fired = true;
    m->armed = false;
}

static const struct rtimer_ops ht_ops = { .fire = ht_fire };

/* Returns how many armed timers are in the queue. */
static size_t ht_check(const struct timer_heap *th)
{
    size_t armed = 0, queued = 0;
    for (int i = 0; i < HT_N; i++) {
        if (!ht[i].armed) {
            HT_REQUIRE((ht[i].t.idx) == (0));
            continue;
        }
        armed++;
        uint32_t k = ht[i].t.idx;
        const struct theap_ent *e;
        if (k & TIDX_QUEUE) {
            HT_REQUIRE((k & ~TIDX_QUEUE) < th->q_cap);
            e = &th->q[k & ~TIDX_QUEUE];
            queued++;
        } else {
            HT_REQUIRE((k) >= (1));
            HT_REQUIRE((k) <= (th->hn));
            e = &th->h[k - 1];
        }
        HT_REQUIRE((e->t) == (&ht[i].t));
        HT_REQUIRE((e->when) == (ht[i].t.when));
        HT_REQUIRE((ht[i].t.due) == (ht[i].due));
        HT_REQUIRE((ht[i].t.when) <= (ht[i].due));
    }
    HT_REQUIRE((armed) == (th->n));
    for (size_t k = 1; k < th->hn; k++)
        HT_REQUIRE((th->h[(k - 1) / 4].when) <= (th->h[k].when));
    size_t in_ring = 0;
    HT_REQUIRE((uint32_t)(th->q_tail - th->q_head) <= th->q_cap);
    for (uint32_t pos = th->q_head; pos != th->q_tail; pos++) {
        const struct theap_ent *e = &th->q[pos & (th->q_cap - 1)];
        if (pos != th->q_head)
            HT_REQUIRE((th->q[(pos - 1) & (th->q_cap - 1)].when) <= (e->when));
        if (pos == th->q_head || pos + 1 == th->q_tail)
            HT_REQUIRE(e->t != NULL);
        if (e->t) {
            HT_REQUIRE((e->t->idx) == (TIDX_QUEUE | (pos & (th->q_cap - 1))));
            in_ring++;
        }
    }
    HT_REQUIRE((in_ring) == (queued));
    return queued;
}

static void ht_model(bool ordered)
{
    struct timer_heap th = { 0 };
    uint64_t x = 88172645463325252ull; /* xorshift64 */
#define HT_RAND() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x)
    for (int i = 0; i < HT_N; i++)
        ht[i] = (struct ht_timer){ .t = { .ops = &ht_ops } };
    int64_t now = 0;
    size_t fired_total = 0, queued_max = 0, heaped_max = 0;
    for (int step = 0; step < HT_STEPS; step++) {
        struct ht_timer *m = &ht[HT_RAND() % HT_N];
        int64_t when = now + 1 + (int64_t)(HT_RAND() % (ordered ? HT_LEN : 10000000));
        if (ordered && HT_RAND() % 4 != 0)
            when = now + HT_LEN;
        switch (HT_RAND() % 8) {
        case 0: case 1: case 2: /* arm, or arm again */
            HT_REQUIRE(timer_arm(&th, &m->t, when) == 0);
            m->due = when;
            m->armed = true;
            m->fired = false;
            break;
        case 3: case 4: /* re-arm: later costs nothing now, earlier moves it */
            HT_REQUIRE(timer_rearm(&th, &m->t, when) == 0);
            m->due = when;
            m->armed = true;
            m->fired = false;
            break;
        case 5: /* disarm, armed or not */
            timer_disarm(&th, &m->t);
            m->armed = false;
            break;
        default: { /* the clock moves on, and the timers run */
            now += (int64_t)(HT_RAND() % 20000);
            size_t due = 0;
            for (int i = 0; i < HT_N; i++) {
                ht[i].fired = false;
                due += ht[i].armed && ht[i].due <= now;
            }
            size_t n = timer_run(NULL, &th, now);
            HT_REQUIRE((n) == (due));
            fired_total += n;
            for (int i = 0; i < HT_N; i++)
                HT_REQUIRE(!ht[i].armed || ht[i].due > now);
            for (int i = 0; i < HT_N; i++)
                if (ht[i].armed)
                    HT_REQUIRE((timer_next(&th)) <= (ht[i].due));
            break;
        }
        }
        if (step % 97 == 0 || step == HT_STEPS - 1) {
            size_t q = ht_check(&th);
            if (q > queued_max)
                queued_max = q;
            if (th.hn > heaped_max)
                heaped_max = th.hn;
        }
    }
    ck_assert_uint_gt(fired_total, HT_N); /* the runs did fire */
    ck_assert_uint_gt(th.cap, 64);        /* and the heap grew */
    if (ordered) {
        ck_assert_uint_gt(th.q_cap, 64);  /* the queue grew, */
        ck_assert_uint_gt(queued_max, heaped_max); /* and held most */
    } else {
        ck_assert_uint_gt(heaped_max, queued_max);
    }
    timer_heap_free(&th);
    for (int i = 0; i < HT_N; i++)
        ck_assert_uint_eq(ht[i].t.idx, 0); /* freeing let go of every timer */
#undef HT_RAND
}

START_TEST(timer_heap_matches_a_model)
{
    ht_model(false);
}
END_TEST

START_TEST(timer_queue_matches_a_model)
{
    ht_model(true);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("time");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, now_is_monotonic);
    tcase_add_test(tc, sleep_lasts_at_least_its_duration);
    tcase_add_test(tc, nonpositive_sleep_yields_once);
    tcase_add_test(tc, deadline_ends_a_sleep);
    tcase_add_test(tc, deadline_outside_goroutine);
    tcase_add_test(tc, cancel_ends_a_sleep);
    tcase_add_test(tc, cancel_wins_over_deadline);
    tcase_add_test(tc, hundred_thousand_sleepers);
    tcase_add_loop_test(tc, sleep_beside_busy_goroutines_ends_in_time, 0, 2);
    tcase_add_loop_test(tc, read_beside_busy_goroutines_ends_in_time, 0, 4);
    tcase_add_test(tc, timer_heap_matches_a_model);
    tcase_add_test(tc, timer_queue_matches_a_model);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    skip_without_io_uring();
    return run_per_procs(suite, &nprocs_param);
}
