/*
 * check_dump.c — SIGQUIT writes a goroutine dump to standard error and the
 * run goes on (cfg->dump_on_sigquit, RINGO_DUMP_ON_SIGQUIT=1).
 *
 * Covered: with every proc held by a goroutine that spins without ever
 * yielding (the main goroutine on proc 0, another on proc 1), a SIGQUIT
 * sent to the process twice yields two dumps, each listing the spinners
 * as running and a goroutine parked on a channel, and the run then ends
 * normally (the signal did not end the process); the same with the
 * environment variable; ringo_signal_notify refuses SIGQUIT only while
 * dumps are on; a bad config value; a deadlock is still detected with the
 * option on.
 *
 * The child's standard error is a temporary file: the plain thread that
 * sends the signal reads it back until the dump is complete (it ends with
 * an empty line), so the order decides, not the time (a 20 s cap fails).
 */
#include "testutil.h"

#include <stddef.h>

static atomic_int stop;         /* the spinners end */
static atomic_int spinning;     /* spinners started */
static atomic_int parked;       /* the channel waiter is about to park */
static ringo_chan *park_ch;
static int err_fd = -1;         /* the child's standard error, a file */

static void waiter(void *arg)
{
    (void)arg;
    int x;
    atomic_store(&parked, 1);
    ringo_chan_recv(park_ch, &x);
}

static void spin(void)
{
    atomic_fetch_add(&spinning, 1);
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        ;
}

static void spinner(void *arg)
{
    (void)arg;
    spin();
}

static void main_spin(void *arg)
{
    (void)arg;
    park_ch = ringo_chan_make(sizeof(int), 0);
    if (ringo_go_on(1, waiter, NULL) < 0)
        _exit(20);
    /* The spinner after the waiter has run: proc 1 runs one goroutine at
     * a time, so the waiter has parked by the time the spinner starts. */
    for (int i = 0; !atomic_load(&parked); i++)
        if (i == 20000 || ringo_sleep(1 * MS) != 0)
            _exit(21);
    if (ringo_go_on(1, spinner, NULL) < 0)
        _exit(22);
    /* Spin on proc 0 too: from here on no proc ever reaches its
     * scheduler. */
    spin();
    ringo_chan_close(park_ch);
}

/* How many complete dumps the file holds. */
static int dumps_in(char *buf, size_t len)
{
    ssize_t n = pread(err_fd, buf, len - 1, 0);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    int k = 0;
    for (char *p = buf; (p = strstr(p, "goroutine dump\n")); p++)
        if (strstr(p, "\n\n"))
            k++;
    return k;
}

static char out[65536];

static void *quitter(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the signal thread takes it */
    /* Every proc spinning, and the waiter parked (it parks before the
     * spinner on its proc runs, which then never yields). */
    for (int i = 0; i < 20000 && atomic_load(&spinning) < 2; i++)
        usleep(1000);
    for (int round = 1; round <= 2; round++) {
        kill(getpid(), SIGQUIT);
        int i = 0;
        while (i++ < 20000 && dumps_in(out, sizeof out) < round)
            usleep(1000);
    }
    atomic_store(&stop, 1);
    return NULL;
}

/* The dump, the run's result, then the exit code. */
static void child_quit(int cfg_value)
{
    char path[] = "/tmp/ringo-dump-XXXXXX";
    err_fd = mkstemp(path);
    if (err_fd < 0)
        _exit(30);
    unlink(path);
    int orig = dup(2);
    dup2(err_fd, 2);
    pthread_t t;
    if (pthread_create(&t, NULL, quitter, NULL) != 0)
        _exit(31);
    struct ringo_config cfg = { .procs = 2, .dump_on_sigquit = cfg_value };
    int r = ringo_run(main_spin, NULL, &cfg);
    pthread_join(t, NULL);
    ringo_chan_release(park_ch);
    int k = dumps_in(out, sizeof out);
    dup2(orig, 2);
    dprintf(2, "%s", out);
    if (r != 0)
        _exit(32);
    _exit(k == 2 ? 0 : 33);
}

static void child_cfg(void)
{
    child_quit(1);
}

static void child_env(void)
{
    setenv("RINGO_DUMP_ON_SIGQUIT", "1", 1);
    child_quit(0);
}

static void check_dumps(void (*child)(void))
{
    static char buf[65536];
    int st = run_captured(child, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    /* two dumps, each with both spinners running and the waiter parked */
    char *second = strstr(buf, "goroutine dump\n");
    ck_assert_ptr_nonnull(second);
    second = strstr(second + 1, "goroutine dump\n");
    ck_assert_msg(second != NULL, "%s", buf);
    char *first = strstr(buf, "ringo: signal 3 (Quit): goroutine dump\n");
    ck_assert_msg(first != NULL && first < second, "%s", buf);
    second[-1] = '\0'; /* the first dump ends where the second begins */
    for (char *d = first; d; d = d == first ? second : NULL) {
        /* the main goroutine and the spinner, each on its own proc */
        char *running = strstr(d, "goroutine 1 [running]: ");
        ck_assert_msg(running != NULL, "%s", d);
        ck_assert_msg(strstr(running, " on proc 0\n") != NULL, "%s", d);
        char *other = strstr(d, "[running]: ");
        if (other == running + strlen("goroutine 1 "))
            other = strstr(running + 1, "[running]: ");
        ck_assert_msg(other != NULL, "%s", d);
        ck_assert_msg(strstr(d, "[chan receive, on ") != NULL, "%s", d);
        ck_assert_msg(strstr(d, " on proc 1\n") != NULL, "%s", d);
    }
}

START_TEST(sigquit_dumps_while_every_proc_spins)
{
    check_dumps(child_cfg);
}
END_TEST

START_TEST(environment_turns_it_on)
{
    check_dumps(child_env);
}
END_TEST

static int notify_result;

static void main_notify(void *arg)
{
    (void)arg;
    ringo_chan *c = ringo_chan_make(sizeof(int), 1);
    int s = SIGQUIT;
    notify_result = ringo_signal_notify(c, &s, 1);
    if (notify_result == 0)
        ringo_signal_stop(c);
    ringo_chan_release(c);
}

START_TEST(notify_refuses_sigquit_only_while_dumping)
{
    unsetenv("RINGO_DUMP_ON_SIGQUIT");
    struct ringo_config cfg = { .procs = 1, .dump_on_sigquit = 1 };
    ck_assert_int_eq(ringo_run(main_notify, NULL, &cfg), 0);
    ck_assert_int_eq(notify_result, -EINVAL);
    cfg.dump_on_sigquit = 0;
    ck_assert_int_eq(ringo_run(main_notify, NULL, &cfg), 0);
    ck_assert_int_eq(notify_result, 0);
    cfg.dump_on_sigquit = -1; /* off, whatever the environment says */
    setenv("RINGO_DUMP_ON_SIGQUIT", "1", 1);
    ck_assert_int_eq(ringo_run(main_notify, NULL, &cfg), 0);
    ck_assert_int_eq(notify_result, 0);
    unsetenv("RINGO_DUMP_ON_SIGQUIT");
    /* A program built before the field passes the older size: the field
     * is not read, whatever the bytes past that size hold. */
    cfg.dump_on_sigquit = 1;
    ck_assert_int_eq(ringo_run_sized(main_notify, NULL, &cfg,
                                     offsetof(struct ringo_config, dump_on_sigquit)),
                     0);
    ck_assert_int_eq(notify_result, 0);
}
END_TEST

START_TEST(bad_values)
{
    struct ringo_config cfg = { .procs = 1, .dump_on_sigquit = 2 };
    ck_assert_int_eq(ringo_run(testutil_nop, NULL, &cfg), -EINVAL);
    cfg.dump_on_sigquit = -2;
    ck_assert_int_eq(ringo_run(testutil_nop, NULL, &cfg), -EINVAL);
}
END_TEST

static void main_deadlock(void *arg)
{
    (void)arg;
    ringo_chan *c = ringo_chan_make(sizeof(int), 0);
    int x;
    ringo_chan_recv(c, &x);
}

static void child_deadlock(void)
{
    struct ringo_config cfg = { .procs = 2, .dump_on_sigquit = 1 };
    _exit(ringo_run(main_deadlock, NULL, &cfg) == -EDEADLK ? 0 : 10);
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
    Suite *s = suite_create("dump");
    TCase *tc = tcase_create("dump");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sigquit_dumps_while_every_proc_spins);
    tcase_add_test(tc, environment_turns_it_on);
    tcase_add_test(tc, notify_refuses_sigquit_only_while_dumping);
    tcase_add_test(tc, bad_values);
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
