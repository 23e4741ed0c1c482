/*
 * testutil.h — helpers shared by the libcheck test programs.
 *
 * Every test runs in its own forked child (libcheck's CK_FORK), so a hang is
 * a timeout and a crash is a failure of that test only.  RUN(fn, procs)
 * runs fn as the main goroutine on that many procs and asserts that
 * ringo_run returned 0.
 */
#ifndef RINGO_TESTUTIL_H
#define RINGO_TESTUTIL_H

#define _GNU_SOURCE 1
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ringo.h>

#define MS 1000000LL
#define US 1000LL

static inline void testutil_nop(void *arg)
{
    (void)arg;
}

/* Skip the whole program (exit 77) when io_uring cannot be set up here. */
static inline void skip_without_io_uring(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2);
        _exit(ringo_run(testutil_nop, NULL, NULL) == 0 ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("SKIP: io_uring is not available on this machine\n");
        exit(77);
    }
}

/* Is the run in progress on the epoll engine?  (From a goroutine.) */
static inline bool on_epoll(void)
{
    struct ringo_stats st;
    return ringo_stats(&st) == 0 && st.engine == RINGO_ENGINE_EPOLL;
}

static void testutil_engine_main(void *arg)
{
    struct ringo_stats st;
    *(int *)arg = ringo_stats(&st) == 0 ? (int)st.engine : 0;
}

/* The engine ringo_run chooses here (RINGO_ENGINE, else io_uring where
 * the host allows it), for a suite whose tests of one engine's mechanism
 * are left out on the other. */
static inline int test_engine(void)
{
    static int engine;
    if (!engine && ringo_run(testutil_engine_main, &engine, NULL) != 0)
        engine = 0;
    return engine;
}

/* RINGO_TEST_MAX_PROCS caps the procs a test uses (valgrind runs one
 * thread at a time, so a test with two procs takes longer there: its CI
 * pass sets 1 for the longest suite).  RINGO_TEST_QUICK leaves out the
 * slowest tests (sanitizer and distcheck passes). */
static inline unsigned test_max_procs(void)
{
    const char *e = getenv("RINGO_TEST_MAX_PROCS");
    int v = e ? atoi(e) : 0;
    return v > 0 ? (unsigned)v : 2;
}

/* Under valgrind, which checks stacks its own way and keeps
 * RLIMIT_NOFILE to itself (tests that depend on either are left out). */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TEST_HAVE_VALGRIND 1
#endif
#endif
static inline bool test_under_valgrind(void)
{
#ifdef TEST_HAVE_VALGRIND
    return RUNNING_ON_VALGRIND;
#else
    return false;
#endif
}

/* Which sanitizer the tests were built with (gcc says so with a macro,
 * clang through __has_feature). */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(TEST_ASAN)
#define TEST_ASAN 1
#endif
#if __has_feature(thread_sanitizer) && !defined(TEST_TSAN)
#define TEST_TSAN 1
#endif
#endif

/* AddressSanitizer and ThreadSanitizer reserve terabytes of shadow address
 * space, so a test that limits the address space (RLIMIT_AS) cannot run
 * under them. */
static inline bool test_under_shadow_sanitizer(void)
{
#if defined(TEST_ASAN) || defined(TEST_TSAN)
    return true;
#else
    return false;
#endif
}

/* ThreadSanitizer gives every fiber a state of its own (some hundred
 * kilobytes): tens of thousands of goroutines alive at once exhaust it. */
static inline bool test_under_thread_sanitizer(void)
{
#ifdef TEST_TSAN
    return true;
#else
    return false;
#endif
}

static inline bool test_quick(void)
{
    const char *e = getenv("RINGO_TEST_QUICK");
    return e && *e && strcmp(e, "0") != 0;
}

/* Set an environment variable for a stretch of a test (env_push), then
 * put back what it was (env_pop, with what env_push returned). */
static inline char *env_push(const char *name, const char *value)
{
    const char *old = getenv(name);
    char *saved = old ? strdup(old) : NULL;
    setenv(name, value, 1);
    return saved;
}

static inline void env_pop(const char *name, char *saved)
{
    if (saved) {
        setenv(name, saved, 1);
        free(saved);
    } else {
        unsetenv(name);
    }
}

static inline int run_procs(void (*fn)(void *), void *arg, unsigned procs)
{
    if (procs > test_max_procs())
        procs = test_max_procs();
    struct ringo_config cfg = { .procs = procs };
    return ringo_run(fn, arg, &cfg);
}

#define RUN(fn, arg, procs) ck_assert_int_eq(run_procs((fn), (arg), (procs)), 0)

/* Run fn in a forked child with stderr captured; returns the child's
 * wait status and fills buf with what it wrote to stderr. */
static inline int run_captured(void (*fn)(void), char *buf, size_t len)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < len && (r = read(fds[0], buf + got, len - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    char sink[4096];
    while (read(fds[0], sink, sizeof sink) > 0)
        ;
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

/* A listening TCP socket on 127.0.0.1, any port; *sa receives its address. */
static inline int test_listen_loopback(struct sockaddr_in *sa, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)sa, sizeof *sa), 0);
    socklen_t len = sizeof *sa;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)sa, &len), 0);
    ck_assert_int_eq(listen(fd, backlog), 0);
    return fd;
}

/* Two connected loopback TCP sockets, made with plain system calls;
 * *lfd_out (if not NULL) receives the listener, else it is closed. */
static inline void test_tcp_pair(int *a, int *b, int *lfd_out)
{
    struct sockaddr_in sa;
    int lfd = test_listen_loopback(&sa, 64);
    *a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(*a, 0);
    ck_assert_int_eq(connect(*a, (struct sockaddr *)&sa, sizeof sa), 0);
    *b = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(*b, 0);
    if (lfd_out)
        *lfd_out = lfd;
    else
        close(lfd);
}

static inline size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/*
 * A plain thread started from a goroutine.  Deadlock detection stays on
 * until a plain thread's first call into ringo (API.md), so a goroutine
 * that blocks waiting for a thread that has not called in yet may be
 * reported, rightly, as deadlocked.  test_thread_create has the new thread
 * make a first call before anything else, and the creating goroutine wait
 * for it.
 */
struct test_thread { void *(*fn)(void *); void *arg; atomic_int called_in; };

static inline void *test_thread_main(void *p)
{
    struct test_thread *tt = p;
    void *(*fn)(void *) = tt->fn;
    void *arg = tt->arg;
    ringo_chan_try_recv(NULL, NULL); /* the first call into ringo */
    atomic_store(&tt->called_in, 1);
    return fn(arg);
}

static inline int test_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
    struct test_thread tt = { fn, arg, 0 };
    int r = pthread_create(t, NULL, test_thread_main, &tt);
    if (r)
        return r;
    while (!atomic_load(&tt.called_in)) /* tt lives until the thread has copied it */
        ringo_sleep(100 * US);
    return 0;
}

/* Run the suite once per proc count, 1 up to test_max_procs(), with
 * *nprocs set for the tests to read; the exit status for main. */
static inline int run_per_procs(Suite *(*make_suite)(void), unsigned *nprocs)
{
    int failed = 0;
    for (*nprocs = 1; *nprocs <= test_max_procs(); (*nprocs)++) {
        printf("== %u proc%s\n", *nprocs, *nprocs > 1 ? "s" : "");
        SRunner *sr = srunner_create(make_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed += srunner_ntests_failed(sr);
        srunner_free(sr);
    }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif /* RINGO_TESTUTIL_H */
