/*
 * check_watchdog.c — the watchdog (cfg->watchdog_ns, RINGO_WATCHDOG_MS):
 * a goroutine that holds its proc for a period without yielding is
 * reported once, on standard error, with its id, its proc and the proc
 * thread's stack, and counted in ringo_stats.
 *
 * Covered: a spinning goroutine is reported, with its id, its proc (0, and
 * 1 on a second proc), a lower bound of at least the period and a stack
 * that names the spinning function; once per stretch (a yield starts a new
 * one, reported again); RINGO_WATCHDOG_MS turns it on, and each run counts
 * afresh; off by default, including with a config of the older size whose
 * padding is not zero; a goroutine that keeps yielding alone on its proc
 * (no switch ever happens) is never reported, while one that spins after it
 * in the same run is; ringo_signal_notify refuses the watchdog's signal
 * during such a run, and only then; a program that installs its own
 * handler for that signal gets no signal from the watchdog, which says so;
 * bad periods; no free real-time signal; deadlock detection unchanged.
 *
 * Spinning goroutines wait for the report by reading the counter with
 * ringo_stats in their loop (the counter decides, not the time; 20 s cap
 * as a failure).  Reading it from the spinning goroutine itself, rather
 * than from another thread, is what ThreadSanitizer needs: it runs a
 * signal handler only at the thread's next call it intercepts (here the
 * mutex in ringo_stats), and a loop of arithmetic makes none.
 *
 * The test program is linked with -export-dynamic, so the reported stack
 * names wd_hog.
 */
#include "testutil.h"

#include <sys/mman.h>

#define PERIOD (20 * MS)
#define CAP (20000 * MS)        /* a spin that never sees its report fails here */

/* Exported (see above): the stack must name it. */
void wd_hog(void *arg);

static atomic_int fail;         /* the first failed check in a child, as its exit code */

static void check(bool ok, int code)
{
    int zero = 0;
    if (!ok)
        atomic_compare_exchange_strong(&fail, &zero, code);
}

static volatile uint64_t sink;

static void burn(void)
{
    for (int i = 0; i < 10000; i++)
        sink += (uint64_t)i;
}

static uint64_t reports(void)
{
    struct ringo_stats st;
    if (ringo_stats(&st) != 0)
        return UINT64_MAX;
    return st.watchdog_reports;
}

/* Spin without yielding until the counter reaches n; false at the cap. */
static bool spin_until_reports(uint64_t n)
{
    int64_t t0 = ringo_now();
    while (reports() < n) {
        if (ringo_now() - t0 > CAP)
            return false;
        burn();
    }
    return true;
}

static void spin_for(int64_t ns)
{
    int64_t t0 = ringo_now();
    while (ringo_now() - t0 < ns)
        burn();
}

/* Counts the report headers for goroutine `id` in buf, checks their proc and
 * figure, and returns the count (-1 if a header names another goroutine). */
static int headers(const char *buf, long long id, int proc)
{
    int n = 0;
    const char *p = buf;
    while ((p = strstr(p, "ringo: watchdog: goroutine ")) != NULL) {
        long long gid = -1, ms = -1;
        int on = -1;
        ck_assert_msg(sscanf(p, "ringo: watchdog: goroutine %lld has run %lld ms on proc %d "
                                "without yielding", &gid, &ms, &on) == 3,
                      "stderr: %s", buf);
        if (gid != id)
            return -1;
        /* a lower bound, by construction at least the period */
        ck_assert_msg(ms >= PERIOD / MS, "stderr: %s", buf);
        ck_assert_msg(on == proc, "stderr: %s", buf);
        n++;
        p++;
    }
    return n;
}

static long long marked_id(const char *buf, const char *mark)
{
    const char *p = strstr(buf, mark);
    ck_assert_msg(p != NULL, "stderr: %s", buf);
    return atoll(p + strlen(mark));
}

/* ------------------------------------------------------------------ */
/* A spinning goroutine is reported, once per stretch. */

void wd_hog(void *arg)
{
    (void)arg;
    dprintf(2, "hog %lld\n", (long long)ringo_id());
    check(spin_until_reports(1), 2);
    /* The same stretch, five periods more: not reported again. */
    spin_for(5 * PERIOD);
    check(reports() == 1, 3);
    /* A yield ends the stretch (alone on its proc: no switch, only the
     * scheduling point); the next one is reported in its turn. */
    ringo_yield();
    check(spin_until_reports(2), 4);
}

static int hog_proc;

static void main_hog(void *arg)
{
    (void)arg;
    check(ringo_go_on(hog_proc, wd_hog, NULL) > 0, 5);
}

static void child_hog(void)
{
    unsetenv("RINGO_WATCHDOG_MS");
    struct ringo_config cfg = { .procs = (unsigned)hog_proc + 1, .watchdog_ns = PERIOD };
    int r = ringo_run(main_hog, NULL, &cfg);
    struct ringo_stats st;
    ringo_stats(&st);
    _exit(r != 0 ? 10 : fail ? fail : st.watchdog_reports != 2 ? 11 : 0);
}

static void check_hog_report(int proc)
{
    char buf[16384];
    hog_proc = proc;
    int st = run_captured(child_hog, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    long long id = marked_id(buf, "hog ");
    ck_assert_msg(headers(buf, id, proc) == 2, "stderr: %s", buf);
    /* The stack: backtrace_symbols_fd lines, one of them the spinner. */
    const char *stack = strstr(buf, "without yielding\n");
    ck_assert_msg(stack && strstr(stack, "(wd_hog+0x") && strstr(stack, ")[0x"),
                  "stderr: %s", buf);
}

START_TEST(spinning_goroutine_reported_once_per_stretch)
{
    check_hog_report(0);
}
END_TEST

START_TEST(spinning_goroutine_on_another_proc)
{
    if (test_max_procs() < 2)
        return;
    check_hog_report(1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* RINGO_WATCHDOG_MS, and a count per run. */

static void env_hog(void *arg)
{
    (void)arg;
    dprintf(2, "hog %lld\n", (long long)ringo_id());
    check(spin_until_reports(1), 2);
}

static void child_env(void)
{
    setenv("RINGO_WATCHDOG_MS", "20", 1);
    struct ringo_config cfg = { .procs = 1 };
    for (int run = 0; run < 2; run++) {
        int r = ringo_run(env_hog, NULL, &cfg);
        struct ringo_stats st;
        ringo_stats(&st);
        if (r != 0 || fail || st.watchdog_reports != 1)
            _exit(r != 0 ? 10 : fail ? fail : 11);
    }
    _exit(0);
}

START_TEST(environment_turns_it_on)
{
    char buf[16384];
    int st = run_captured(child_env, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    /* Two runs, each with its own hog and its own report. */
    const char *second = strstr(strstr(buf, "hog ") + 1, "hog ");
    ck_assert_msg(second != NULL, "stderr: %s", buf);
    ck_assert_int_eq(headers(second, marked_id(second, "hog "), 0), 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Off by default. */

static void quiet_hog(void *arg)
{
    (void)arg;
    spin_for(10 * PERIOD);
    check(reports() == 0, 2);
}

/* struct ringo_config as it was before watchdog_ns, padding and all. */
struct config_before {
    unsigned procs;
    size_t stack_size;
    unsigned ring_entries;
};

static void child_off(void)
{
    unsetenv("RINGO_WATCHDOG_MS");
    /* A program built before watchdog_ns: its padding is whatever was
     * there (here: all ones), and none of it is a setting. */
    struct config_before old;
    memset(&old, 0xff, sizeof old);
    old.procs = 1;
    old.stack_size = 0;
    old.ring_entries = 0;
    int r = ringo_run_sized(quiet_hog, NULL, (const struct ringo_config *)&old, sizeof old);
    if (r != 0 || fail)
        _exit(r != 0 ? 10 : fail);
    struct ringo_config cfg = { .procs = 1 };
    r = ringo_run(quiet_hog, NULL, &cfg);
    _exit(r != 0 ? 12 : fail);
}

START_TEST(off_by_default)
{
    char buf[16384];
    int st = run_captured(child_off, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    ck_assert_msg(strstr(buf, "watchdog") == NULL, "stderr: %s", buf);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A goroutine that yields is not reported, even alone on its proc where
 * no yield switches; one that spins after it, in the same run, is.  The
 * proc thread itself may be left off its CPU for a while on a loaded
 * machine, which the watchdog cannot tell from a goroutine that holds it:
 * the yielder measures the longest time between two of its yields, and a
 * round in which that reached a period is run again. */

#define LONG_PERIOD (200 * MS)

static void long_hog(void *arg)
{
    (void)arg;
    dprintf(2, "hog %lld\n", (long long)ringo_id());
    check(spin_until_reports(1), 2);
}

/* Exit status of a child whose proc thread went a whole period between
 * two yields (the kernel left it off its CPU): the watchdog may rightly
 * report it, so the round proves nothing and is run again. */
#define OFF_CPU 20

static void yielder(void *arg)
{
    (void)arg;
    dprintf(2, "yielder %lld\n", (long long)ringo_id());
    int64_t t0 = ringo_now(), last = t0, gap = 0;
    while (last - t0 < 3 * LONG_PERIOD) {
        burn();
        ringo_yield();
        int64_t t = ringo_now();
        if (t - last > gap)
            gap = t - last;
        last = t;
    }
    if (reports() != 0 && gap >= LONG_PERIOD)
        _exit(OFF_CPU);
    check(reports() == 0, 3);
    check(ringo_go(long_hog, NULL) > 0, 4);
}

static void child_yield(void)
{
    unsetenv("RINGO_WATCHDOG_MS");
    struct ringo_config cfg = { .procs = 1, .watchdog_ns = LONG_PERIOD };
    int r = ringo_run(yielder, NULL, &cfg);
    _exit(r != 0 ? 10 : fail);
}

START_TEST(yielding_goroutine_not_reported)
{
    char buf[16384];
    int st, rounds = 0;
    do
        st = run_captured(child_yield, buf, sizeof buf);
    while (WIFEXITED(st) && WEXITSTATUS(st) == OFF_CPU && ++rounds < 10);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    long long hog = marked_id(buf, "hog ");
    ck_assert_int_ne(hog, marked_id(buf, "yielder "));
    ck_assert_msg(headers(buf, hog, 0) == 1, "stderr: %s", buf);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The watchdog's signal is its own during the run. */

static int refused, refused_sig;

/* The highest real-time signal a program may have: valgrind keeps
 * SIGRTMAX for itself (sigaction on it fails). */
static int top_signal(void)
{
    return test_under_valgrind() ? SIGRTMAX - 1 : SIGRTMAX;
}

static void main_notify_each(void *arg)
{
    (void)arg;
    ringo_chan *c = ringo_chan_make(sizeof(int), 1);
    refused = 0;
    for (int s = SIGRTMIN; s <= top_signal(); s++) {
        int r = ringo_signal_notify(c, &s, 1);
        if (r == -EINVAL) {
            refused++;
            refused_sig = s;
        } else {
            ck_assert_int_eq(r, 0);
            ck_assert_int_eq(ringo_signal_stop(c), 0);
        }
    }
    ringo_chan_release(c);
}

START_TEST(notify_refuses_the_watchdog_signal)
{
    unsetenv("RINGO_WATCHDOG_MS");
    struct ringo_config cfg = { .procs = 1, .watchdog_ns = 1000 * MS };
    ck_assert_int_eq(ringo_run(main_notify_each, NULL, &cfg), 0);
    ck_assert_int_eq(refused, 1);
    ck_assert_int_eq(refused_sig, top_signal());
    cfg.watchdog_ns = 0;
    ck_assert_int_eq(ringo_run(main_notify_each, NULL, &cfg), 0);
    ck_assert_int_eq(refused, 0);
}
END_TEST

/* A program that installs its own handler for the watchdog's signal
 * during the run gets no signal from the watchdog, which says so.  The
 * child's stderr goes to a memory file that the spinning goroutine reads,
 * to wait for that message (an ordering, not a time), and is copied to the
 * captured stderr at the end. */

static int mem_err = -1, saved_err = -1;
static atomic_int own_calls;

static void own_handler(int s)
{
    (void)s;
    atomic_fetch_add(&own_calls, 1);
}

static bool err_has(const char *s)
{
    static char buf[16384];
    ssize_t n = pread(mem_err, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return strstr(buf, s) != NULL;
}

static void takeover_hog(void *arg)
{
    (void)arg;
    int sig = 0;
    for (int s = SIGRTMIN; s <= top_signal(); s++) {
        struct sigaction cur;
        if (sigaction(s, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO))
            sig = s; /* the watchdog's: the only real-time signal with a handler */
    }
    check(sig != 0, 2);
    dprintf(2, "taken %d\n", sig);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = own_handler;
    sigemptyset(&sa.sa_mask);
    check(sigaction(sig, &sa, NULL) == 0, 3);
    int64_t t0 = ringo_now();
    while (!err_has("has installed its own handler for signal")) {
        if (ringo_now() - t0 > CAP) {
            check(false, 4);
            break;
        }
        burn();
        reports(); /* an intercepted call, for ThreadSanitizer's deferred handlers */
    }
    spin_for(3 * PERIOD);
    reports();
    check(atomic_load(&own_calls) == 0, 5);
    check(reports() == 0, 6);
}

static void child_takeover(void)
{
    unsetenv("RINGO_WATCHDOG_MS");
    mem_err = memfd_create("stderr", MFD_CLOEXEC);
    saved_err = dup(2);
    if (mem_err < 0 || saved_err < 0 || dup2(mem_err, 2) < 0)
        _exit(20);
    struct ringo_config cfg = { .procs = 1, .watchdog_ns = PERIOD };
    int r = ringo_run(takeover_hog, NULL, &cfg);
    char buf[16384];
    ssize_t n = pread(mem_err, buf, sizeof buf, 0);
    if (n > 0 && write(saved_err, buf, (size_t)n) != n)
        _exit(21);
    _exit(r != 0 ? 10 : fail);
}

START_TEST(program_handler_wins)
{
    char buf[16384];
    int st = run_captured(child_takeover, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    char want[128];
    snprintf(want, sizeof want, "installed its own handler for signal %lld;",
             marked_id(buf, "taken "));
    ck_assert_msg(strstr(buf, want) != NULL, "stderr: %s", buf);
    ck_assert_msg(strstr(buf, "ringo: watchdog: goroutine") == NULL, "stderr: %s", buf);
}
END_TEST

/* Every real-time signal handled by the program: the watchdog has none
 * to take, and the run fails with a message; without it, the run goes. */
static void child_no_signal(void)
{
    unsetenv("RINGO_WATCHDOG_MS");
    for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
        signal(s, SIG_IGN); /* valgrind refuses SIGRTMAX: it stays its own */
    struct ringo_config cfg = { .procs = 1, .watchdog_ns = PERIOD };
    int r = ringo_run(testutil_nop, NULL, &cfg);
    if (r != -EAGAIN)
        _exit(10);
    cfg.watchdog_ns = 0;
    _exit(ringo_run(testutil_nop, NULL, &cfg) == 0 ? 0 : 11);
}

START_TEST(no_free_signal)
{
    char buf[4096];
    int st = run_captured(child_no_signal, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    ck_assert_msg(strstr(buf, "ringo: watchdog: no real-time signal is free") != NULL,
                  "stderr: %s", buf);
}
END_TEST

/* ------------------------------------------------------------------ */

START_TEST(bad_periods)
{
    unsetenv("RINGO_WATCHDOG_MS");
    struct ringo_config cfg = { .procs = 1, .watchdog_ns = -1 };
    ck_assert_int_eq(ringo_run(testutil_nop, NULL, &cfg), -EINVAL);
    cfg.watchdog_ns = 1 * MS - 1; /* below the shortest period */
    ck_assert_int_eq(ringo_run(testutil_nop, NULL, &cfg), -EINVAL);
    cfg.watchdog_ns = 1 * MS;
    ck_assert_int_eq(ringo_run(testutil_nop, NULL, &cfg), 0);
    /* The environment's bad values leave it off, as RINGO_PROCS's do. */
    static const char *bad[] = { "abc", "0", "-5", "20ms", "99999999999" };
    cfg.watchdog_ns = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("RINGO_WATCHDOG_MS", bad[i], 1);
        ck_assert_int_eq(ringo_run(testutil_nop, NULL, &cfg), 0);
    }
    unsetenv("RINGO_WATCHDOG_MS");
}
END_TEST

/* The monitor is no goroutine: a deadlock is still one. */
static ringo_chan *never;

static void main_deadlock(void *arg)
{
    (void)arg;
    ringo_chan_recv(never, NULL);
}

static void child_deadlock(void)
{
    unsetenv("RINGO_WATCHDOG_MS");
    never = ringo_chan_make(0, 0);
    struct ringo_config cfg = { .procs = 1, .watchdog_ns = PERIOD };
    int r = ringo_run(main_deadlock, NULL, &cfg);
    ringo_chan_release(never);
    _exit(r == -EDEADLK ? 0 : 10);
}

START_TEST(deadlock_still_detected)
{
    char buf[4096];
    int st = run_captured(child_deadlock, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    ck_assert_msg(strstr(buf, "all goroutines are asleep") != NULL, "stderr: %s", buf);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("watchdog");
    TCase *tc = tcase_create("watchdog");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, spinning_goroutine_reported_once_per_stretch);
    tcase_add_test(tc, spinning_goroutine_on_another_proc);
    tcase_add_test(tc, environment_turns_it_on);
    tcase_add_test(tc, off_by_default);
    tcase_add_test(tc, yielding_goroutine_not_reported);
    tcase_add_test(tc, notify_refuses_the_watchdog_signal);
    tcase_add_test(tc, program_handler_wins);
    tcase_add_test(tc, no_free_signal);
    tcase_add_test(tc, bad_periods);
    tcase_add_test(tc, deadlock_still_detected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    skip_without_io_uring();
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
