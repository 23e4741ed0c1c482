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
 * Stacks: ringo_dump from a program whose goroutines are parked in known
 * functions (a channel receive, a mutex lock and a read, each in a
 * function of its own that nothing inlines, and N goroutines alike in a
 * fourth) shows each one's function in the stack lines under its own
 * header, with file:line where libdw unwinds, and the N as one group with
 * their count; the deadlock report shows the stack of the goroutine that
 * deadlocked.  In the sanitizer builds, which compile everything with
 * frame pointers, the same program is dumped with the frame-pointer walk.
 *
 * The child's standard error is a temporary file: the plain thread that
 * sends the signal reads it back until the dump is complete (it ends with
 * an empty line), so the order decides, not the time (a 20 s cap fails).
 */
#include "testutil.h"

#include "config.h"
#include "unwinder.h" /* unwind_frame_pointers_only */
#include "internal.h" /* rt.foreign_ops */

#include <sys/syscall.h>

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

/* ---------------------------------------------------------------- stacks */

#define MANY 8

static ringo_chan *stk_ch, *many_ch;
static ringo_mutex stk_mu = RINGO_MUTEX_INIT;
static int stk_pipe[2];
static atomic_int stk_parking;

void dump_wait_chan(void);
void dump_wait_mutex(void);
void dump_wait_read(void);
void dump_wait_many(void);
void dump_deadlocked_here(void);
void dump_wait_other(void);
/* Not static: the frame-pointer walk names functions with dladdr, which
 * finds only the exported ones (the test links with -export-dynamic). */
void start_chan(void *arg);
void start_mutex(void *arg);
void start_read(void *arg);
void start_many(void *arg);

/* Where the goroutines park: none is the function a goroutine starts in
 * (that one the header names), so only the stack can show them. */
__attribute__((noinline)) void dump_wait_chan(void)
{
    int x;
    atomic_fetch_add(&stk_parking, 1);
    ringo_chan_recv(stk_ch, &x);
    __asm__ volatile("" ::: "memory"); /* not a tail call */
}

__attribute__((noinline)) void dump_wait_mutex(void)
{
    atomic_fetch_add(&stk_parking, 1);
    ringo_mutex_lock(&stk_mu);
    ringo_mutex_unlock(&stk_mu);
}

__attribute__((noinline)) void dump_wait_read(void)
{
    char c;
    atomic_fetch_add(&stk_parking, 1);
    if (ringo_read(stk_pipe[0], &c, 1) < 0)
        _exit(40);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void dump_wait_many(void)
{
    int x;
    atomic_fetch_add(&stk_parking, 1);
    ringo_chan_recv(many_ch, &x);
    __asm__ volatile("" ::: "memory");
}

/* As dump_wait_many, from the same start function: a group of its own. */
__attribute__((noinline)) void dump_wait_other(void)
{
    int x;
    atomic_fetch_add(&stk_parking, 1);
    ringo_chan_recv(many_ch, &x);
    __asm__ volatile("" ::: "memory");
}

void start_chan(void *arg)
{
    (void)arg;
    dump_wait_chan();
    __asm__ volatile("" ::: "memory");
}

void start_mutex(void *arg)
{
    (void)arg;
    dump_wait_mutex();
    __asm__ volatile("" ::: "memory");
}

void start_read(void *arg)
{
    (void)arg;
    dump_wait_read();
    __asm__ volatile("" ::: "memory");
}

void start_many(void *arg)
{
    if (arg)
        dump_wait_other();
    else
        dump_wait_many();
    __asm__ volatile("" ::: "memory");
}

/* One call site: the goroutines it starts have the same creator. */
__attribute__((noinline)) static void spawn_many(void *arg)
{
    if (ringo_go(start_many, arg) < 0)
        _exit(43);
}

/* One proc: a goroutine runs until it parks, so once all have counted
 * themselves and main has run again after a sleep, all have parked. */
static void main_stacks(void *arg)
{
    (void)arg;
    stk_ch = ringo_chan_make(sizeof(int), 0);
    many_ch = ringo_chan_make(sizeof(int), 0);
    if (!stk_ch || !many_ch || pipe(stk_pipe) != 0)
        _exit(41);
    ringo_mutex_lock(&stk_mu);
    if (ringo_go(start_chan, NULL) < 0 || ringo_go(start_mutex, NULL) < 0 ||
        ringo_go(start_read, NULL) < 0)
        _exit(42);
    /* MANY alike, and one from the same call that parks elsewhere */
    for (int i = 0; i <= MANY; i++)
        spawn_many(i == MANY ? &stk_parking : NULL);
    for (int i = 0; atomic_load(&stk_parking) < 3 + MANY + 1; i++)
        if (i == 20000 || ringo_sleep(1 * MS) != 0)
            _exit(44);
    ringo_yield();
    ringo_dump(2);
    ringo_chan_close(stk_ch);
    ringo_chan_close(many_ch);
    ringo_mutex_unlock(&stk_mu);
    if (ringo_write(stk_pipe[1], "x", 1) != 1)
        _exit(45);
    while (ringo_count() > 1)
        ringo_sleep(1 * MS);
    ringo_chan_release(stk_ch);
    ringo_chan_release(many_ch);
}

static void child_stacks(void)
{
    struct ringo_config cfg = { .procs = 1 };
    _exit(ringo_run(main_stacks, NULL, &cfg) == 0 ? 0 : 46);
}

static void __attribute__((unused)) child_stacks_fp(void)
{
    unwind_frame_pointers_only = true;
    child_stacks();
}

/* The stack lines (indented) under the first header line that contains
 * `header`, copied to out; false if there is no such header. */
static bool stack_under(const char *dump, const char *header, char *lines, size_t len)
{
    const char *h = strstr(dump, header);
    if (!h)
        return false;
    const char *p = strchr(h, '\n');
    size_t n = 0;
    while (p && strncmp(p + 1, "    ", 4) == 0) {
        const char *e = strchr(p + 1, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (n + l + 1 > len)
            break;
        memcpy(lines + n, p, l);
        n += l;
        p = e;
    }
    lines[n] = '\0';
    return true;
}

static void check_stacks(void (*child)(void), bool lines)
{
    static char buf[65536];
    char st[8192];
    int status = run_captured(child, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d, stderr: %s", status,
                  buf);
    static const char *const kinds[][3] = {
        { "[chan receive, on ", "created by start_chan at ", "dump_wait_chan+" },
        { "[mutex, on ", "created by start_mutex at ", "dump_wait_mutex+" },
        { "[io, fd ", "created by start_read at ", "dump_wait_read+" },
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        /* the goroutine's header: its state, then its start function */
        const char *header = strstr(buf, kinds[i][1]);
        ck_assert_msg(header != NULL, "no %s in:\n%s", kinds[i][1], buf);
        const char *bol = header;
        while (bol > buf && bol[-1] != '\n')
            bol--;
        ck_assert_msg(strncmp(bol, "goroutine ", 10) == 0 && strstr(bol, kinds[i][0]) != NULL &&
                          strstr(bol, kinds[i][0]) < header,
                      "%s", buf);
        ck_assert_msg(stack_under(header, kinds[i][1], st, sizeof st), "%s", buf);
        ck_assert_msg(strstr(st, kinds[i][2]) != NULL, "no %s under '%s' in:\n%s", kinds[i][2],
                      kinds[i][1], buf);
    }
    /* the N alike: one group, counted, with the function they park in */
    char many[64];
    snprintf(many, sizeof many, "%d goroutines [chan receive, ", MANY);
    ck_assert_msg(stack_under(buf, many, st, sizeof st), "no '%s' in:\n%s", many, buf);
    ck_assert_msg(strstr(st, "dump_wait_many+") != NULL, "%s", buf);
    ck_assert_msg(strstr(st, "dump_wait_other+") == NULL, "%s", buf);
    /* the one from the same start function that parks elsewhere: alone */
    const char *other = strstr(buf, "[chan receive, on ");
    while (other && !(strstr(other, "\n") > strstr(other, "created by start_many ")))
        other = strstr(other + 1, "[chan receive, on ");
    ck_assert_msg(other != NULL, "%s", buf);
    ck_assert_msg(stack_under(other, "created by start_many ", st, sizeof st), "%s", buf);
    ck_assert_msg(strstr(st, "dump_wait_other+") != NULL, "%s", buf);
    /* every line a frame, the innermost runtime ones included: the main
     * goroutine (running) shows no stack */
    ck_assert_msg(stack_under(buf, "goroutine 1 [running]", st, sizeof st) && st[0] == '\0', "%s",
                  buf);
    if (lines)
        ck_assert_msg(strstr(buf, "check_dump.c:") != NULL, "no file:line in:\n%s", buf);
}

#ifdef HAVE_LIBDW
START_TEST(stacks_show_where_goroutines_park)
{
    check_stacks(child_stacks, true);
}
END_TEST
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FRAME_POINTERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FRAME_POINTERS 1
#endif
#endif

#ifdef FRAME_POINTERS
START_TEST(stacks_by_frame_pointers)
{
    check_stacks(child_stacks_fp, false);
}
END_TEST
#endif

__attribute__((noinline)) void dump_deadlocked_here(void)
{
    ringo_chan *c = ringo_chan_make(sizeof(int), 0);
    int x;
    ringo_chan_recv(c, &x);
    __asm__ volatile("" ::: "memory");
}

static void main_deadlock_stack(void *arg)
{
    (void)arg;
    dump_deadlocked_here();
    __asm__ volatile("" ::: "memory");
}

static void child_deadlock_stack(void)
{
    struct ringo_config cfg = { .procs = 2 };
    _exit(ringo_run(main_deadlock_stack, NULL, &cfg) == -EDEADLK ? 0 : 10);
}

START_TEST(deadlock_report_has_the_stack)
{
    char buf[16384], st[8192];
    int status = run_captured(child_deadlock_stack, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d, stderr: %s", status,
                  buf);
    ck_assert_msg(stack_under(buf, "goroutine 1 [chan receive, ", st, sizeof st), "%s", buf);
    ck_assert_msg(strstr(st, "dump_deadlocked_here+") != NULL, "%s", buf);
}
END_TEST

/* A plain thread's ringo_dump into a full pipe holds the run pinned
 * (internal.h run_enter) until the pipe is read.  The end of the run waits
 * for it asleep in futex(2) on the count of pinned calls, where it spun
 * in sched_yield and took a CPU for as long.  A watcher reads the
 * ringo_run caller's system call in /proc until it is that wait, then
 * drains the pipe.  The run ends only once the dumper is in its write:
 * a dump that came after the main goroutine had returned found no
 * goroutine to write of, and ended before the watcher could see the
 * wait. */
static int full_pipe[2];
static pid_t caller_tid;
static atomic_int dumper_tid;
static atomic_int watcher_saw;

static void *pinned_dumper(void *arg)
{
    (void)arg;
    atomic_store(&dumper_tid, (int)syscall(SYS_gettid));
    ringo_dump(full_pipe[1]); /* blocks: the pipe is full */
    return NULL;
}

/* Is thread tid in system call nr, its first argument a0? */
static bool thread_in_call(pid_t tid, long nr, unsigned long a0)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    bool in = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    long n = -1;
    unsigned long a = 0;
    return in && sscanf(line, "%ld %lx", &n, &a) == 2 && n == nr && a == a0;
}

static void main_start_dumper(void *arg)
{
    atomic_store(&dumper_tid, 0);
    ck_assert_int_eq(pthread_create(arg, NULL, pinned_dumper, NULL), 0);
    /* until the dumper has the run pinned, and is blocked writing the
     * dump (this goroutine in it), for 10 s at most */
    for (int tries = 0; !(atomic_load(&rt.foreign_ops) && atomic_load(&dumper_tid) &&
                          thread_in_call(atomic_load(&dumper_tid), SYS_write,
                                         (unsigned long)full_pipe[1]));
         tries++) {
        ck_assert_int_lt(tries, 10000);
        ringo_sleep(1 * MS);
    }
}

static bool caller_waits_on(const void *word)
{
    return thread_in_call(caller_tid, SYS_futex, (unsigned long)(uintptr_t)word);
}

static void *pipe_watcher(void *arg)
{
    (void)arg;
    /* 10 s at most from the run's end on (a slow machine may take long
     * to get there), 30 s in all (the test's limit is 60 s) */
    bool began = false;
    for (int tries = 0, after = 0; tries < 30000 && after < 10000 && !atomic_load(&watcher_saw);
         tries++) {
        if (caller_waits_on(&rt.foreign_ops))
            atomic_store(&watcher_saw, 1);
        else
            usleep(1000);
        if (atomic_load(&rt.active))
            began = true;
        else if (began)
            after++;
    }
    /* Drain: the read end does not block, and the dump is far less than
     * the pipe holds, so one pass makes room for all of it. */
    char buf[65536];
    while (read(full_pipe[0], buf, sizeof buf) > 0)
        ;
    return NULL;
}

START_TEST(end_of_run_sleeps_while_a_plain_call_blocks)
{
    ck_assert_int_eq(pipe2(full_pipe, O_NONBLOCK), 0);
    char fill[4096];
    memset(fill, 'x', sizeof fill);
    while (write(full_pipe[1], fill, sizeof fill) > 0)
        ;
    int fl = fcntl(full_pipe[1], F_GETFL);
    ck_assert_int_eq(fcntl(full_pipe[1], F_SETFL, fl & ~O_NONBLOCK), 0);
    caller_tid = (pid_t)syscall(SYS_gettid);
    atomic_store(&watcher_saw, 0);
    pthread_t dumper, watcher;
    ck_assert_int_eq(pthread_create(&watcher, NULL, pipe_watcher, NULL), 0);
    struct ringo_config cfg = { .procs = 1 };
    ck_assert_int_eq(ringo_run(main_start_dumper, &dumper, &cfg), 0);
    pthread_join(dumper, NULL);
    /* the read end is non-blocking: the watcher's drain ends */
    pthread_join(watcher, NULL);
    close(full_pipe[0]);
    close(full_pipe[1]);
    ck_assert_int_eq(atomic_load(&watcher_saw), 1);
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
    tcase_add_test(tc, end_of_run_sleeps_while_a_plain_call_blocks);
#ifdef HAVE_LIBDW
    tcase_add_test(tc, stacks_show_where_goroutines_park);
    tcase_add_test(tc, deadlock_report_has_the_stack);
#endif
    /* The frame-pointer walk where everything has frame pointers: the
     * sanitizer builds (configure adds -fno-omit-frame-pointer). */
#ifdef FRAME_POINTERS
    tcase_add_test(tc, stacks_by_frame_pointers);
#endif
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
