/*
 * check_net.c — ringo_tcp_listen, ringo_tcp_dial and ringo_offload: an echo
 * server with 100 concurrent clients and content checks, IPv6, SO_REUSEPORT,
 * resolution through the offload pool, deadlines and cancellation of
 * offloaded work, and EMFILE on accept (the server keeps serving once
 * descriptors free up).  Loopback only, bounded in count and time.
 */
#include "testutil.h"

#include <netinet/in.h>
#include <sys/socket.h>

static unsigned nprocs_param = 1;

static int local_port(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
    int port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    snprintf(buf, len, "%d", port);
    return port;
}

/* ------------------------------------------------------------------ */
/* echo server, 100 clients */

static void echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[1024];
    ssize_t n;
    while ((n = ringo_read(fd, buf, sizeof buf)) > 0)
        if (ringo_write_all(fd, buf, (size_t)n) != n)
            break;
    ringo_close(fd);
}

struct server { int lfd; int served; };

static void echo_accept(void *arg)
{
    struct server *s = arg;
    for (;;) {
        int c = ringo_accept(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            ck_assert_int_eq(c, -ECANCELED);
            return;
        }
        s->served++;
        ck_assert_int_gt(ringo_go(echo_conn, (void *)(intptr_t)c), 0);
    }
}

static char echo_port[16];
static atomic_int clients_ok;

static void echo_client(void *arg)
{
    long k = (long)arg;
    int fd = ringo_tcp_dial("127.0.0.1", echo_port);
    ck_assert_int_ge(fd, 0);
    char out[3000], in[3000];
    for (int round = 0; round < 5; round++) {
        size_t n = 100 + (size_t)(k * 37 + round * 101) % 2900;
        for (size_t i = 0; i < n; i++)
            out[i] = (char)(k + round + i);
        ck_assert_int_eq(ringo_write_all(fd, out, n), (ssize_t)n);
        size_t got = 0;
        while (got < n) {
            ssize_t r = ringo_read(fd, in + got, n - got);
            ck_assert_int_gt(r, 0);
            got += (size_t)r;
        }
        ck_assert(memcmp(in, out, n) == 0);
    }
    ringo_close(fd);
    atomic_fetch_add(&clients_ok, 1);
}

static void main_echo(void *arg)
{
    (void)arg;
    struct server s = { .lfd = ringo_tcp_listen("127.0.0.1", "0", 128, 0) };
    ck_assert_int_ge(s.lfd, 0);
    local_port(s.lfd, echo_port, sizeof echo_port);
    int64_t acc = ringo_go(echo_accept, &s);
    atomic_store(&clients_ok, 0);
    for (long k = 0; k < 100; k++)
        ck_assert_int_gt(ringo_go(echo_client, (void *)k), 0);
    while (atomic_load(&clients_ok) < 100)
        ringo_sleep(2 * MS);
    ringo_cancel(acc);
    ringo_sleep(5 * MS);
    ck_assert_int_eq(s.served, 100);
    ringo_close(s.lfd);
}

START_TEST(echo_hundred_clients)
{
    RUN(main_echo, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* listen flags, IPv6, resolution, errors */

static void main_listen(void *arg)
{
    (void)arg;
    char port[16];
    int a = ringo_tcp_listen("127.0.0.1", "0", 16, RINGO_REUSEPORT);
    ck_assert_int_ge(a, 0);
    local_port(a, port, sizeof port);
    int b = ringo_tcp_listen("127.0.0.1", port, 16, RINGO_REUSEPORT);
    ck_assert_int_ge(b, 0); /* SO_REUSEPORT: a second listener on the port */
    ck_assert_int_eq(ringo_tcp_listen("127.0.0.1", port, 16, 0), -EADDRINUSE);
    ringo_close(a);
    ringo_close(b);

    ck_assert_int_eq(ringo_tcp_listen("127.0.0.1", "0", 16, 42), -EINVAL);
    ck_assert_int_eq(ringo_tcp_listen("127.0.0.1", "no-such-service-xyz", 16, 0), -EINVAL);
    ck_assert_int_eq(ringo_tcp_dial("", "80"), -EINVAL);

    /* a name, resolved on the offload pool ("localhost" is in /etc/hosts) */
    int l = ringo_tcp_listen("localhost", "0", 16, 0);
    if (l >= 0) {
        local_port(l, port, sizeof port);
        int c = ringo_tcp_dial("localhost", port);
        ck_assert_int_ge(c, 0);
        int s = ringo_accept(l, NULL, NULL, 0);
        ck_assert_int_ge(s, 0);
        ck_assert_int_eq(ringo_write(c, "hi", 2), 2);
        char buf[2];
        ck_assert_int_eq(ringo_read(s, buf, 2), 2);
        ringo_close(s);
        ringo_close(c);
        ringo_close(l);
    }

    /* IPv6 loopback, where the machine has it */
    int l6 = ringo_tcp_listen("::1", "0", 16, 0);
    if (l6 >= 0) {
        local_port(l6, port, sizeof port);
        int c = ringo_tcp_dial("::1", port);
        ck_assert_int_ge(c, 0);
        struct sockaddr_in6 peer;
        socklen_t pl = sizeof peer;
        int s = ringo_accept(l6, (struct sockaddr *)&peer, &pl, 0);
        ck_assert_int_ge(s, 0);
        ck_assert_int_eq(peer.sin6_family, AF_INET6);
        ringo_close(s);
        ringo_close(c);
        ringo_close(l6);
    }

    /* nobody listening */
    l = ringo_tcp_listen("127.0.0.1", "0", 16, 0);
    local_port(l, port, sizeof port);
    ringo_close(l);
    ck_assert_int_eq(ringo_tcp_dial("127.0.0.1", port), -ECONNREFUSED);
    /* deadline already passed: not attempted */
    ringo_deadline_set(ringo_now() - 1);
    ck_assert_int_eq(ringo_tcp_dial("localhost", "80"), -ETIMEDOUT);
    ringo_deadline_set(RINGO_NEVER);
}

START_TEST(listen_and_dial)
{
    RUN(main_listen, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* offload */

static atomic_int ticks;
static atomic_int slow_done;

static void ticker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++) {
        ringo_sleep(1 * MS);
        atomic_fetch_add(&ticks, 1);
    }
}

static void slow(void *arg)
{
    usleep((useconds_t)(intptr_t)arg);
    atomic_fetch_add(&slow_done, 1);
}

/* Offloaded functions that wait for an event instead of for a time, so
 * that the tests below decide on orderings.  Their waits are bounded
 * (20 s): a runtime that wrongly waits for them gets its answer late, and
 * the test fails on what that answer was. */
static atomic_int gate, gate_entered;

static void wait_gate(void *arg)
{
    (void)arg;
    atomic_store(&gate_entered, 1);
    for (int i = 0; i < 20000 && !atomic_load(&gate); i++)
        usleep(1000);
    atomic_fetch_add(&slow_done, 1);
}

static void wait_ticker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000 && atomic_load(&ticks) < 10; i++)
        usleep(1000);
    atomic_fetch_add(&slow_done, 1);
}

static void main_offload_one(void *arg);

static void main_offload(void *arg)
{
    (void)arg;
    atomic_store(&ticks, 0);
    atomic_store(&slow_done, 0);
    atomic_store(&gate, 0);
    /* only the caller waits: a goroutine on the same proc keeps running,
     * and fn returns once that goroutine has finished its ten sleeps */
    ringo_go_on(ringo_proc(), ticker, NULL);
    ck_assert_int_eq(ringo_offload(wait_ticker, NULL), 0);
    ck_assert_int_eq(atomic_load(&slow_done), 1);
    ck_assert_int_eq(atomic_load(&ticks), 10);

    /* deadline: back at the deadline while fn still waits for the gate,
     * which opens only after; fn finishes later */
    ringo_deadline_set(ringo_now() + 10 * MS);
    ck_assert_int_eq(ringo_offload(wait_gate, NULL), -ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&slow_done), 1);
    atomic_store(&gate, 1);
    ck_assert_int_eq(ringo_offload(slow, NULL), -ETIMEDOUT); /* entry check */
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_eq(ringo_offload(NULL, NULL), -EINVAL);

    /* many at once, more than the helper cap */
    for (int i = 0; i < 40; i++)
        ringo_go(main_offload_one, NULL);
}

START_TEST(offload_runs_on_helpers)
{
    RUN(main_offload, NULL, nprocs_param);
    /* ringo_run waited for the abandoned fn too */
    ck_assert_int_eq(atomic_load(&slow_done), 2 + 40);
    /* outside the runtime: inline */
    ck_assert_int_eq(ringo_offload(slow, NULL), 0);
    ck_assert_int_eq(atomic_load(&slow_done), 2 + 40 + 1);
}
END_TEST

static void main_offload_one(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_offload(slow, (void *)(intptr_t)1000), 0);
}

struct cancel_off { atomic_int started; int result; };

static void offloading(void *arg)
{
    struct cancel_off *c = arg;
    atomic_store(&c->started, 1);
    c->result = ringo_offload(wait_gate, NULL);
}

static void main_offload_cancel(void *arg)
{
    (void)arg;
    struct cancel_off c = { .result = 1 };
    int64_t id = ringo_go(offloading, &c);
    while (!atomic_load(&gate_entered)) /* fn runs: the caller waits in ringo_offload */
        ringo_sleep(1 * MS);
    ck_assert_int_eq(ringo_cancel(id), 0);
    while (c.result == 1)
        ringo_sleep(1 * MS);
    ck_assert_int_eq(c.result, -ECANCELED);
    ck_assert_int_eq(atomic_load(&slow_done), 0); /* back before fn ended */
    atomic_store(&gate, 1);
}

START_TEST(offload_cancel)
{
    atomic_store(&slow_done, 0);
    atomic_store(&gate, 0);
    atomic_store(&gate_entered, 0);
    RUN(main_offload_cancel, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&slow_done), 1);
}
END_TEST

/* A goroutine waiting for offloaded work is not a deadlock. */
static void main_offload_alone(void *arg)
{
    (void)arg;
    ck_assert_int_eq(ringo_offload(slow, (void *)(intptr_t)100000), 0);
}

START_TEST(offload_is_not_deadlock)
{
    RUN(main_offload_alone, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* EMFILE on accept */

#define EM_CLIENTS 8
static int em_held[EM_CLIENTS];
static atomic_int em_accepted, em_seen, em_release;

static void em_server(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    while (atomic_load(&em_accepted) < EM_CLIENTS) {
        int c = ringo_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c == -EMFILE) {
            atomic_store(&em_seen, 1);
            ringo_sleep(2 * MS); /* back off, then try again */
            continue;
        }
        ck_assert_int_ge(c, 0);
        /* The descriptor first, then the count that tells main_emfile it
         * may use it (seq_cst store, its load pairs); this goroutine is
         * the only writer of both. */
        int n = atomic_load(&em_accepted);
        em_held[n] = c;
        atomic_store(&em_accepted, n + 1);
    }
}

static void main_emfile(void *arg)
{
    (void)arg;
    int lfd = ringo_tcp_listen("127.0.0.1", "0", 64, 0);
    ck_assert_int_ge(lfd, 0);
    char port[16];
    local_port(lfd, port, sizeof port);
    int cl[EM_CLIENTS];
    for (int i = 0; i < EM_CLIENTS; i++) {
        cl[i] = ringo_tcp_dial("127.0.0.1", port);
        ck_assert_int_ge(cl[i], 0);
    }
    /* leave room for two more descriptors only */
    int top = dup(0);
    close(top);
    struct rlimit rl = { (rlim_t)top + 2, (rlim_t)top + 2 };
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = (rlim_t)top + 2;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    ringo_go(em_server, (void *)(intptr_t)lfd);
    while (!atomic_load(&em_seen))
        ringo_sleep(1 * MS);
    ck_assert_int_lt(atomic_load(&em_accepted), EM_CLIENTS);
    /* free descriptors as they come: the server accepts the rest */
    int closed = 0;
    while (atomic_load(&em_accepted) < EM_CLIENTS) {
        while (closed < atomic_load(&em_accepted)) {
            char c;
            ck_assert_int_eq(ringo_write(cl[closed], "x", 1), 1);
            ck_assert_int_eq(ringo_read(em_held[closed], &c, 1), 1);
            ringo_close(em_held[closed]);
            ringo_close(cl[closed]);
            closed++;
        }
        ringo_sleep(1 * MS);
    }
    for (; closed < EM_CLIENTS; closed++) {
        char c;
        ck_assert_int_eq(ringo_write(cl[closed], "y", 1), 1);
        ck_assert_int_eq(ringo_read(em_held[closed], &c, 1), 1);
        ck_assert_int_eq(c, 'y');
        ringo_close(em_held[closed]);
        ringo_close(cl[closed]);
    }
    ringo_close(lfd);
}

START_TEST(emfile_on_accept)
{
    atomic_store(&em_accepted, 0);
    atomic_store(&em_seen, 0);
    atomic_store(&em_release, 0);
    RUN(main_emfile, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *suite(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("net");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, echo_hundred_clients);
    tcase_add_test(tc, listen_and_dial);
    tcase_add_test(tc, offload_runs_on_helpers);
    tcase_add_test(tc, offload_cancel);
    tcase_add_test(tc, offload_is_not_deadlock);
    /* valgrind keeps RLIMIT_NOFILE to itself: the program's setrlimit
     * changes only the limit valgrind shows it, and the kernel's accept
     * never runs out. */
    if (test_under_valgrind())
        printf("valgrind: the EMFILE test is left out\n");
    else
        tcase_add_test(tc, emfile_on_accept);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    skip_without_io_uring();
    return run_per_procs(suite, &nprocs_param);
}
