/*
 * check_scale.c — a million idle goroutines on default sysctls, what a
 * goroutine that has not started costs, and running out of memory as
 * -ENOMEM rather than a crash.
 *
 * Each idle goroutine costs about one touched stack page; on a virtualised
 * machine a first touch can cost tens of microseconds, so this program is
 * slower than the others (well under a minute).
 */
#include "testutil.h"

#define MILLION 1000000L

static ringo_chan *gate;
static atomic_long parked_ok;

static void idle(void *arg)
{
    (void)arg;
    char c;
    /* blocks until main closes the gate */
    if (ringo_chan_recv(gate, &c) == -EPIPE)
        atomic_fetch_add(&parked_ok, 1);
}

static size_t rss_before, rss_idle;
static size_t count_idle;

static void million_main(void *arg)
{
    (void)arg;
    gate = ringo_chan_make(1, 0);
    rss_before = rss_bytes();
    for (long i = 0; i < MILLION; i++) {
        int64_t id = ringo_go(idle, NULL);
        ck_assert_msg(id > 0, "ringo_go #%ld: %lld", i, (long long)id);
    }
    /* let every goroutine start and park */
    for (;;) {
        ringo_sleep(20 * MS);
        struct ringo_stats st;
        ringo_stats(&st);
        if (st.switches >= (uint64_t)MILLION + 1)
            break;
    }
    ringo_sleep(50 * MS);
    count_idle = ringo_count();
    rss_idle = rss_bytes();
    ck_assert_int_eq(ringo_chan_close(gate), 0);
}

START_TEST(million_idle_goroutines)
{
    atomic_store(&parked_ok, 0);
    int64_t t0 = ringo_now();
    RUN(million_main, NULL, 2);
    ck_assert_uint_eq(count_idle, (size_t)MILLION + 1);
    ck_assert_int_eq(atomic_load(&parked_ok), MILLION);
    double per = (double)(rss_idle - rss_before) / MILLION;
    printf("  1M idle goroutines: %.0f bytes resident each, %.1f s in all\n", per,
           (double)(ringo_now() - t0) / 1e9);
    /* about a page each; 16 KiB would mean the design broke (e.g. huge
     * pages or a whole stack committed) */
    ck_assert_msg(per < 16384, "%.0f bytes per idle goroutine", per);
    ringo_chan_release(gate);
}
END_TEST

/* A goroutine that has not started costs its struct's first line (64
 * bytes) and its slot's record (16): the rest of the struct comes with the
 * stack it gets when it first runs (src/internal.h, struct rg).  They are
 * spawned by a plain thread onto the only proc while the main goroutine
 * holds that proc, blocked in pthread_join without a scheduling point: so
 * none of them runs while the resident set is read.  (A goroutine spawning
 * them itself would be made to yield after 256 of them, src/spawn.c "The
 * backlog", and they would run.) */
#define UNSTARTED 200000L
static atomic_long unstarted_ran;
static double unstarted_per;

static void count_run(void *arg)
{
    (void)arg;
    atomic_fetch_add(&unstarted_ran, 1);
}

static void *unstarted_spawner(void *arg)
{
    (void)arg;
    size_t before = rss_bytes();
    for (long i = 0; i < UNSTARTED; i++) {
        int64_t id = ringo_go(count_run, NULL);
        ck_assert_msg(id > 0, "ringo_go #%ld: %lld", i, (long long)id);
    }
    size_t after = rss_bytes();
    ck_assert_int_eq(atomic_load(&unstarted_ran), 0); /* none has run yet */
    unstarted_per = (double)(after - before) / UNSTARTED;
    return NULL;
}

static void unstarted_main(void *arg)
{
    (void)arg;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, unstarted_spawner, NULL), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0); /* holds the proc: no scheduling point */
    while (ringo_count() > 1)
        ringo_yield();
}

START_TEST(unstarted_goroutines_cost_one_line)
{
    atomic_store(&unstarted_ran, 0);
    RUN(unstarted_main, NULL, 1);
    ck_assert_int_eq(atomic_load(&unstarted_ran), UNSTARTED);
    printf("%.1f resident bytes per goroutine that has not started\n", unstarted_per);
    /* 80 and the table's share; all three lines (192 + 16) would be 208 */
    ck_assert_msg(unstarted_per < 128, "%.1f bytes per unstarted goroutine", unstarted_per);
}
END_TEST

/* Out of address space: ringo_go reports -ENOMEM, nothing crashes. */
static atomic_long spawned_before_enomem;
static atomic_int got_enomem;

static void enomem_main(void *arg)
{
    (void)arg;
    gate = ringo_chan_make(1, 0);
    for (long i = 0; i < 10 * MILLION; i++) {
        int64_t id = ringo_go(idle, NULL);
        if (id == -ENOMEM) {
            atomic_store(&got_enomem, 1);
            break;
        }
        ck_assert_int_gt(id, 0);
        atomic_fetch_add(&spawned_before_enomem, 1);
        if (i % 1024 == 0)
            ringo_yield(); /* let some start, so stacks are really used */
    }
    ringo_chan_close(gate);
}

static void child_enomem(void)
{
    struct rlimit lim = { 1L << 30, 1L << 30 }; /* 1 GiB of address space */
    setrlimit(RLIMIT_AS, &lim);
    struct ringo_config cfg = { .procs = 1 };
    int r = ringo_run(enomem_main, NULL, &cfg);
    if (r != 0)
        _exit(10);
    _exit(atomic_load(&got_enomem) ? 0 : 11);
}

START_TEST(out_of_memory_is_enomem)
{
    char buf[4096];
    int st = run_captured(child_enomem, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("scale");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    if (test_quick())
        printf("RINGO_TEST_QUICK: the million-goroutine test is left out\n");
    else
        tcase_add_test(tc, million_idle_goroutines);
    if (test_under_shadow_sanitizer() || test_under_valgrind())
        printf("a sanitizer or valgrind: the resident set of unstarted goroutines is not measured\n");
    else
        tcase_add_test(tc, unstarted_goroutines_cost_one_line);
    if (test_under_shadow_sanitizer())
        printf("AddressSanitizer or ThreadSanitizer: the RLIMIT_AS test is left out\n");
    else
        tcase_add_test(tc, out_of_memory_is_enomem);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    skip_without_io_uring();
    if (test_quick() && test_under_shadow_sanitizer()) {
        printf("SKIP: both scale tests are left out (RINGO_TEST_QUICK, a sanitizer)\n");
        return 77;
    }
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
