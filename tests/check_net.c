/*
 * check_net.c — ringo_tcp_listen, ringo_tcp_dial and ringo_offload: an echo
 * server with 100 concurrent clients and content checks, IPv6, SO_REUSEPORT,
 * resolution through the offload pool, deadlines and cancellation of
 * offloaded work, EMFILE on accept (the server keeps serving once
 * descriptors free up), and on the epoll engine the registration of the
 * runtime's descriptors: once per descriptor, full-duplex waiters on one
 * descriptor, numbers reused for new files, one edge for many waiters,
 * a read that found the stream empty parking without a call, urgent
 * data and SOCK_SEQPACKET records; and on both, a datagram socket shut
 * down under a waiting read, and readiness that stays while a call cannot
 * go on (an error queue, a full AF_UNIX backlog) without a spinning proc.
 * Loopback only, bounded in count and time.
 */
#include "testutil.h"

#include <netinet/in.h>
#include <poll.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

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

/* A listener of ringo_tcp_listen's on loopback, a ringo_tcp_dial to it
 * (*c) and the connection ringo_accept takes (*s): descriptors the
 * runtime made, closed with ringo_close. */
static void tcp_connected(int *l, int *c, int *s)
{
    char port[16];
    *l = ringo_tcp_listen("127.0.0.1", "0", 16, 0);
    ck_assert_int_ge(*l, 0);
    local_port(*l, port, sizeof port);
    *c = ringo_tcp_dial("127.0.0.1", port);
    ck_assert_int_ge(*c, 0);
    *s = ringo_accept(*l, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(*s, 0);
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

/* served is the acceptor's until done, which main waits for: the struct
 * is on main's stack. */
struct server { int lfd; int served; ringo_waitgroup done; };

static void echo_accept(void *arg)
{
    struct server *s = arg;
    for (;;) {
        int c = ringo_accept(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            ck_assert_int_eq(c, -ECANCELED);
            ringo_waitgroup_done(&s->done);
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
    struct server s = { .lfd = ringo_tcp_listen("127.0.0.1", "0", 128, 0), .done = RINGO_WAITGROUP_INIT };
    ck_assert_int_ge(s.lfd, 0);
    local_port(s.lfd, echo_port, sizeof echo_port);
    ringo_waitgroup_add(&s.done, 1);
    int64_t acc = ringo_go(echo_accept, &s);
    atomic_store(&clients_ok, 0);
    for (long k = 0; k < 100; k++)
        ck_assert_int_gt(ringo_go(echo_client, (void *)k), 0);
    while (atomic_load(&clients_ok) < 100)
        ringo_sleep(2 * MS);
    ringo_cancel(acc);
    ringo_waitgroup_wait(&s.done);
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

/* Dial host:port and take the connection from listener l: the peer's
 * family as ringo_accept gave it, its length in *len. */
static int dial_and_accept(int l, const char *host, const char *port, socklen_t *len)
{
    int c = ringo_tcp_dial(host, port);
    ck_assert_int_ge(c, 0);
    struct sockaddr_storage peer;
    *len = sizeof peer;
    int s = ringo_accept(l, (struct sockaddr *)&peer, len, 0);
    ck_assert_int_ge(s, 0);
    ringo_close(s);
    ringo_close(c);
    return peer.ss_family;
}

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
    /* ports getaddrinfo would truncate to 16 bits, or take as port 0 */
    static const char *const bad_ports[] = { "", "65536", "65537", "100685", "99999999999999999999",
                                             "-1", "+80", " 80", "8080x" };
    for (size_t i = 0; i < sizeof bad_ports / sizeof *bad_ports; i++) {
        ck_assert_msg(ringo_tcp_listen("127.0.0.1", bad_ports[i], 16, 0) == -EINVAL, "listen port \"%s\"", bad_ports[i]);
        ck_assert_msg(ringo_tcp_dial("127.0.0.1", bad_ports[i]) == -EINVAL, "dial port \"%s\"", bad_ports[i]);
    }

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
        socklen_t pl;
        ck_assert_int_eq(dial_and_accept(l6, "::1", port, &pl), AF_INET6);
        ringo_close(l6);
    }

    /* The wildcard: IPv4's, peers in a struct sockaddr_in; a number with
     * leading zeros is still the number. */
    for (int i = 0; i < 2; i++) {
        int w = ringo_tcp_listen(i ? "" : NULL, "0", 16, 0);
        ck_assert_int_ge(w, 0);
        local_port(w, port, sizeof port);
        char zeros[24];
        snprintf(zeros, sizeof zeros, "000%s", port);
        socklen_t pl;
        ck_assert_int_eq(dial_and_accept(w, "127.0.0.1", zeros, &pl), AF_INET);
        ck_assert_uint_eq(pl, sizeof(struct sockaddr_in));
        ringo_close(w);
    }

    /* "::" takes IPv4 too, where the machine has IPv6 and the sysctl
     * leaves IPv6 sockets open to IPv4 (its default) */
    FILE *v6only = fopen("/proc/sys/net/ipv6/bindv6only", "r");
    int only = 1;
    if (v6only) {
        if (fscanf(v6only, "%d", &only) != 1)
            only = 1;
        fclose(v6only);
    }
    if (l6 >= 0 && only == 0) {
        int w = ringo_tcp_listen("::", "0", 16, 0);
        ck_assert_int_ge(w, 0);
        local_port(w, port, sizeof port);
        socklen_t pl;
        dial_and_accept(w, "127.0.0.1", port, &pl);
        dial_and_accept(w, "::1", port, &pl);
        ringo_close(w);
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
/* epoll: descriptors the runtime created are registered once
 * (engine_epoll.c "Registered once") */

/* The epoll engine's epoll_ctl calls (engine_epoll.c; reached through
 * libringo_core, as check_fault reaches its seams). */
extern _Atomic uint64_t ep_ctl_calls;

#define ROUNDS 10000

static void pong(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char c;
    while (ringo_read(fd, &c, 1) == 1)
        ck_assert_int_eq(ringo_write(fd, &c, 1), 1);
    ringo_close(fd);
}

/* ROUNDS one-byte round trips on fd with pong on the other end; the
 * epoll_ctl calls they made. */
static uint64_t round_trips(int fd)
{
    uint64_t before = atomic_load(&ep_ctl_calls);
    for (int i = 0; i < ROUNDS; i++) {
        char out = (char)i, in = 0;
        ck_assert_int_eq(ringo_write(fd, &out, 1), 1);
        ck_assert_int_eq(ringo_read(fd, &in, 1), 1);
        ck_assert_int_eq(in, out);
    }
    return atomic_load(&ep_ctl_calls) - before;
}

static void main_registers_once(void *arg)
{
    (void)arg;
    int other = (ringo_proc() + 1) % ringo_nprocs();
    int l, c, s;
    tcp_connected(&l, &c, &s);
    ck_assert_int_gt(ringo_go_on(other, pong, (void *)(intptr_t)s), 0);
    uint64_t ours = round_trips(c);
    ringo_close(c);
    ringo_close(l);

    /* The same over descriptors the program made: armed one-shot, so a
     * wait costs an epoll_ctl (which shows that the round trips above
     * waited, when they are on one proc and each read finds no answer
     * yet). */
    int sp[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    ck_assert_int_gt(ringo_go_on(other, pong, (void *)(intptr_t)sp[1]), 0);
    uint64_t theirs = round_trips(sp[0]);
    ringo_close(sp[0]);
    if (!on_epoll())
        return;
    /* each of the two sockets at most once per proc (and the listener) */
    ck_assert_uint_le(ours, 2 * (uint64_t)ringo_nprocs() + 2);
    if (ringo_nprocs() == 1)
        ck_assert_uint_ge(theirs, ROUNDS);
}

START_TEST(epoll_registers_once)
{
    RUN(main_registers_once, NULL, nprocs_param);
}
END_TEST

/* Readers and writers of the same descriptors, on different procs, with
 * the socket buffers full: every wait is for an edge that may come
 * between the call's -EAGAIN and the park.  A lost one is a hang, which
 * the deadline turns into a failure. */
#define DUPLEX_PAIRS 4
#define DUPLEX_BYTES (256 << 10)

struct duplex { int fd; unsigned seed; ringo_waitgroup *wg; };

/* Under valgrind, checking every byte is some fifty times slower: a
 * sixteenth of the bytes keeps the run far inside the deadline. */
static size_t duplex_bytes(void)
{
    return test_under_valgrind() ? DUPLEX_BYTES / 16 : DUPLEX_BYTES;
}

static void duplex_writer(void *arg)
{
    struct duplex *d = arg;
    ringo_deadline_set(ringo_now() + 30000 * MS);
    unsigned char buf[8192];
    for (size_t off = 0; off < duplex_bytes(); off += sizeof buf) {
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (unsigned char)(d->seed + (off + i) * 7);
        ck_assert_int_eq(ringo_write_all(d->fd, buf, sizeof buf), (ssize_t)sizeof buf);
    }
    ringo_waitgroup_done(d->wg);
}

static void duplex_reader(void *arg)
{
    struct duplex *d = arg;
    ringo_deadline_set(ringo_now() + 30000 * MS);
    unsigned char buf[3000]; /* not the writer's size: reads cut writes */
    size_t off = 0;
    while (off < duplex_bytes()) {
        ssize_t n = ringo_read(d->fd, buf, sizeof buf);
        ck_assert_int_gt(n, 0);
        for (ssize_t i = 0; i < n; i++)
            ck_assert_int_eq(buf[i], (unsigned char)(d->seed + (off + (size_t)i) * 7));
        off += (size_t)n;
    }
    ringo_waitgroup_done(d->wg);
}

static void main_duplex(void *arg)
{
    (void)arg;
    char port[16];
    int l = ringo_tcp_listen("127.0.0.1", "0", 16, 0);
    ck_assert_int_ge(l, 0);
    local_port(l, port, sizeof port);
    int fds[2 * DUPLEX_PAIRS];
    for (int k = 0; k < DUPLEX_PAIRS; k++) {
        fds[2 * k] = ringo_tcp_dial("127.0.0.1", port);
        ck_assert_int_ge(fds[2 * k], 0);
        fds[2 * k + 1] = ringo_accept(l, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(fds[2 * k + 1], 0);
    }
    /* Each end has a writer and a reader; the seed names the direction. */
    ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    struct duplex w[2 * DUPLEX_PAIRS], r[2 * DUPLEX_PAIRS];
    int n = ringo_nprocs();
    ringo_waitgroup_add(&wg, 4 * DUPLEX_PAIRS);
    for (int e = 0; e < 2 * DUPLEX_PAIRS; e++) {
        w[e] = (struct duplex){ .fd = fds[e], .seed = (unsigned)e * 13, .wg = &wg };
        r[e] = (struct duplex){ .fd = fds[e], .seed = (unsigned)(e ^ 1) * 13, .wg = &wg };
        ck_assert_int_gt(ringo_go_on(e % n, duplex_writer, &w[e]), 0);
        ck_assert_int_gt(ringo_go_on((e + 1) % n, duplex_reader, &r[e]), 0);
    }
    ringo_waitgroup_wait(&wg);
    for (int e = 0; e < 2 * DUPLEX_PAIRS; e++)
        ringo_close(fds[e]);
    ringo_close(l);
}

START_TEST(duplex_waiters_on_each_fd)
{
    RUN(main_duplex, NULL, nprocs_param);
}
END_TEST

/* A descriptor number that names a new file.  The program's own files
 * (closed by close(2), the number given again by dup2) and ours (closed
 * by ringo_close, the number then given to a file of the program's) must
 * be waited for afresh on every proc where a wait for the old file left a
 * registration: a stale one would never report the new file. */
struct reuse { int fd; ringo_waitgroup *wg; };

static void reuse_read_one(void *arg)
{
    struct reuse *u = arg;
    ringo_deadline_set(ringo_now() + 20000 * MS);
    char c = 0;
    ck_assert_int_eq(ringo_read(u->fd, &c, 1), 1);
    ck_assert_int_eq(c, 'x');
    ringo_waitgroup_done(u->wg);
}

/* A reader of fd parked on each proc; then a byte for each from peer. */
static void read_on_every_proc(int fd, int peer)
{
    int n = ringo_nprocs();
    ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    struct reuse u = { .fd = fd, .wg = &wg };
    ringo_waitgroup_add(&wg, n);
    for (int i = 0; i < n; i++)
        ck_assert_int_gt(ringo_go_on(i, reuse_read_one, &u), 0);
    ringo_yield(); /* on one proc: each reader parks first */
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(ringo_write(peer, "x", 1), 1);
    ringo_waitgroup_wait(&wg);
}

static void main_reuse(void *arg)
{
    (void)arg;
    /* the program's socket, closed with close(2) */
    int a[2], b[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
    read_on_every_proc(a[0], a[1]);
    int num = a[0];
    close(a[0]);
    close(a[1]);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
    if (b[0] != num) {
        ck_assert_int_eq(dup2(b[0], num), num);
        close(b[0]);
    }
    read_on_every_proc(num, b[1]);
    close(num);
    close(b[1]);

    /* ours, closed with ringo_close, the number then the program's */
    int l, c, s;
    tcp_connected(&l, &c, &s);
    read_on_every_proc(s, c);
    num = s;
    ck_assert_int_eq(ringo_close(s), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
    if (b[0] != num) {
        ck_assert_int_eq(dup2(b[0], num), num);
        close(b[0]);
    }
    read_on_every_proc(num, b[1]);
    close(num);
    close(b[1]);
    ringo_close(c);
    ringo_close(l);
}

START_TEST(reused_descriptor_numbers)
{
    RUN(main_reuse, NULL, nprocs_param);
}
END_TEST

/* Several goroutines of one proc parked on one descriptor, and a single
 * write that satisfies them all: one edge, which must reach every waiter
 * (the edge is not repeated for those left). */
#define EDGE_READERS 4

static void main_one_edge(void *arg)
{
    (void)arg;
    int l, c, s;
    tcp_connected(&l, &c, &s);
    ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    struct reuse u = { .fd = s, .wg = &wg };
    ringo_waitgroup_add(&wg, EDGE_READERS);
    for (int i = 0; i < EDGE_READERS; i++)
        ck_assert_int_gt(ringo_go_on(ringo_proc(), reuse_read_one, &u), 0);
    ringo_yield(); /* each reader parks on s (they run before us) */
    ck_assert_int_eq(ringo_write(c, "xxxx", EDGE_READERS), EDGE_READERS);
    ringo_waitgroup_wait(&wg);
    ringo_close(s);
    ringo_close(c);
    ringo_close(l);
}

START_TEST(one_edge_many_waiters)
{
    RUN(main_one_edge, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* epoll: a read that found the stream empty (engine_epoll.c "Drained") */

#define SHORT_ROUNDS 1000

/* The process's read(2)-family calls so far (preadv2 among them, recv
 * not), from /proc/self/io; -1 where the kernel does not count them. */
static long read_calls(void)
{
    int fd = open("/proc/self/io", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    const char *at = strstr(buf, "syscr: ");
    return at ? atol(at + 7) : -1;
}

/* Answers each request with the same bytes; its reads are read(2)s with
 * room for more than a request, so each is short. */
static void short_echo(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[64];
    ssize_t n;
    while ((n = ringo_read(fd, buf, sizeof buf)) > 0)
        ck_assert_int_eq(ringo_send_all(fd, buf, (size_t)n, 0), n);
    ck_assert_int_eq(n, 0);
    ringo_close(fd);
}

static void main_short_reads(void *arg)
{
    (void)arg;
    int l, c, s;
    tcp_connected(&l, &c, &s);
    /* on this proc: its one epoll set sees every edge of both ends */
    ck_assert_int_gt(ringo_go_on(ringo_proc(), short_echo, (void *)(intptr_t)s), 0);
    long before = read_calls();
    for (int i = 0; i < SHORT_ROUNDS; i++) {
        char out[5], in[5];
        snprintf(out, sizeof out, "%04d", i);
        ck_assert_int_eq(ringo_send_all(c, out, 5, 0), 5);
        size_t got = 0;
        while (got < 5) {
            ssize_t n = ringo_recv(c, in + got, 5 - got, 0);
            ck_assert_int_gt(n, 0);
            got += (size_t)n;
        }
        ck_assert_str_eq(in, out);
    }
    long calls = read_calls() - before - 1; /* the look itself is one */
    ringo_close(c);
    ringo_close(l);
    /* Each request is read by one call, made on the edge of its arrival:
     * the read after each answer found the socket empty before that edge
     * and parks without a call (without the rule: a second call per
     * request, -EAGAIN). */
    ck_assert_int_ge(calls, SHORT_ROUNDS);
    ck_assert_int_le(calls, SHORT_ROUNDS + SHORT_ROUNDS / 10);
}

START_TEST(short_read_parks_without_a_call)
{
    RUN(main_short_reads, NULL, nprocs_param);
}
END_TEST

static void write_x(void *arg)
{
    ck_assert_int_eq(ringo_write((int)(intptr_t)arg, "x", 1), 1);
}

/* A read of s that waits, for the byte a goroutine of this proc writes on
 * c once we park: on epoll, s is then registered on this proc. */
static void read_after_a_wait(int s, int c)
{
    char b[8];
    ck_assert_int_gt(ringo_go_on(ringo_proc(), write_x, (void *)(intptr_t)c), 0);
    ck_assert_int_eq(ringo_read(s, b, sizeof b), 1);
}

/* Urgent data stops a read short of the bytes after it, with those bytes
 * already queued and their edge taken: the next read must make its call,
 * or it waits for an edge that never comes (the deadline turns that into
 * a failure). */

static void main_urgent(void *arg)
{
    (void)arg;
    int l, c, s;
    tcp_connected(&l, &c, &s);
    ringo_deadline_set(ringo_now() + 30000 * MS);
    char buf[64];
    read_after_a_wait(s, c);
    /* "a", urgent "b", then "cd"; all of it queued at s once c has none
     * left unacknowledged */
    ck_assert_int_eq(send(c, "ab", 2, MSG_OOB), 2);
    ck_assert_int_eq(ringo_write(c, "cd", 2), 2);
    int unacked = 1;
    for (int i = 0; i < 30000 && unacked; i++) {
        ck_assert_int_eq(ioctl(c, SIOCOUTQ, &unacked), 0);
        if (unacked)
            ringo_sleep(MS);
    }
    ck_assert_int_eq(unacked, 0);
    /* The proc waits for events before it runs the timer that ends this
     * sleep: every edge of the bytes above is taken by then. */
    ringo_sleep(MS);
    ck_assert_int_eq(ringo_read(s, buf, sizeof buf), 1); /* stops at the mark */
    ck_assert_int_eq(buf[0], 'a');
    ck_assert_int_eq(ringo_read(s, buf, sizeof buf), 2);
    ck_assert_int_eq(memcmp(buf, "cd", 2), 0);
    ringo_close(s);
    ringo_close(c);
    ringo_close(l);
}

START_TEST(urgent_data_does_not_stall_reads)
{
    RUN(main_urgent, NULL, nprocs_param);
}
END_TEST

/* A read of 0 bytes returns 0 at once, as read(2) does, also on a socket
 * found empty since its last edge (which a read of bytes waits out
 * without a call on epoll). */
static void main_zero_read(void *arg)
{
    (void)arg;
    int l, c, s;
    tcp_connected(&l, &c, &s);
    ringo_deadline_set(ringo_now() + 30000 * MS);
    char buf[8];
    read_after_a_wait(s, c);
    ck_assert_int_eq(ringo_write(c, "abcde", 5), 5);
    size_t got = 0;
    while (got < 5) {
        ssize_t n = ringo_read(s, buf + got, sizeof buf - got);
        ck_assert_int_gt(n, 0);
        got += (size_t)n;
    }
    ringo_deadline_set(ringo_now() + 200 * MS); /* bounds the wait of the defect */
    ck_assert_int_eq(ringo_read(s, buf, 0), 0);
    ringo_deadline_set(RINGO_NEVER);
    ringo_close(s);
    ringo_close(c);
    ringo_close(l);
}

START_TEST(zero_length_read_returns_at_once)
{
    RUN(main_zero_read, NULL, nprocs_param);
}
END_TEST

/* ringo_tcp_listen checks the deadline and cancellation on entry, as
 * every blocking call does, also for a numeric address that needs no
 * lookup. */
static void main_listen_checks(void *arg)
{
    (void)arg;
    ringo_deadline_set(ringo_now() - 1);
    ck_assert_int_eq(ringo_tcp_listen("127.0.0.1", "0", 4, 0), -ETIMEDOUT);
    ck_assert_int_eq(ringo_tcp_listen(NULL, "0", 4, 0), -ETIMEDOUT);
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_eq(ringo_cancel(ringo_id()), 0);
    ck_assert_int_eq(ringo_tcp_listen("127.0.0.1", "0", 4, 0), -ECANCELED);
}

START_TEST(listen_checks_deadline_and_cancel)
{
    RUN(main_listen_checks, NULL, nprocs_param);
}
END_TEST

/* The peer's last bytes and its end of stream (or a reset) come while
 * nobody reads; the read that takes the bytes is short, and the next one
 * returns 0 (or the error) at once.  On epoll the edge that reported the
 * end was taken by the idle proc, and no other comes: a short read there
 * must not make the next one park without its call ("Drained"). */
static void main_end_after_short(void *arg)
{
    int how = (int)(intptr_t)arg; /* 0: shutdown, 1: close, 2: reset */
    int l, c, s;
    tcp_connected(&l, &c, &s);
    ringo_deadline_set(ringo_now() + 10000 * MS); /* bounds the defect's wait */
    char buf[64];
    read_after_a_wait(s, c);
    ck_assert_int_eq(ringo_write(c, "hello", 5), 5);
    if (how == 0) {
        ck_assert_int_eq(shutdown(c, SHUT_WR), 0);
    } else if (how == 1) {
        ck_assert_int_eq(ringo_close(c), 0);
        c = -1;
    } else {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        ck_assert_int_eq(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
        ck_assert_int_eq(ringo_close(c), 0); /* RST */
        c = -1;
    }
    ringo_sleep(20 * MS); /* the proc takes the edges while nobody reads */
    ssize_t n = ringo_read(s, buf, sizeof buf);
    if (how == 2 && n == -ECONNRESET) {
        /* the reset came first and took the bytes with it */
    } else {
        ck_assert_int_eq(n, 5);
        n = ringo_read(s, buf, sizeof buf);
        if (how == 2)
            ck_assert_msg(n == 0 || n == -ECONNRESET, "read after the reset: %zd", n);
        else
            ck_assert_int_eq(n, 0);
    }
    ringo_deadline_set(RINGO_NEVER);
    if (c >= 0)
        ringo_close(c);
    ringo_close(s);
    ringo_close(l);
}

START_TEST(end_of_stream_after_a_short_read)
{
    for (int how = 0; how < 3; how++)
        RUN(main_end_after_short, (void *)(intptr_t)how, nprocs_param);
}
END_TEST

/* A connect that waits for room in an AF_UNIX listener's backlog, ended
 * by a change of its write deadline and made again: it goes on waiting
 * (it must not report a connection that the kernel never made), and
 * connects once the listener takes one from its backlog. */
static int unix_conn_fd;
static struct sockaddr_un unix_sa;
static socklen_t unix_sa_len;
static atomic_int unix_conn_res;

static void unix_connector(void *arg)
{
    (void)arg;
    atomic_store(&unix_conn_res, ringo_connect(unix_conn_fd, (struct sockaddr *)&unix_sa,
                                               unix_sa_len));
}

/* An AF_UNIX listener (autobound; its address in unix_sa) with a backlog
 * of 0, filled: the connections that filled it in queued (*nq of them);
 * and unix_conn_fd, a socket to connect to it next. */
#define UNIX_QUEUED 8

static int full_unix_listener(int queued[UNIX_QUEUED], int *nq)
{
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(l, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa_family_t)), 0); /* autobind */
    unix_sa_len = sizeof unix_sa;
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&unix_sa, &unix_sa_len), 0);
    ck_assert_int_eq(listen(l, 0), 0);
    *nq = 0;
    for (;;) {
        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(c, 0);
        if (connect(c, (struct sockaddr *)&unix_sa, unix_sa_len) < 0) {
            close(c);
            break;
        }
        ck_assert_int_lt(*nq, UNIX_QUEUED);
        queued[(*nq)++] = c;
    }
    unix_conn_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(unix_conn_fd, 0);
    atomic_store(&unix_conn_res, 1);
    return l;
}

/* Room in full_unix_listener's backlog: the listener takes a connection,
 * and the connect waiting on it is made (0).  The connection taken. */
static int unix_room_and_connected(int l)
{
    int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(a, 0);
    for (int i = 0; i < 30000 && atomic_load(&unix_conn_res) == 1; i++)
        ringo_sleep(MS);
    ck_assert_int_eq(atomic_load(&unix_conn_res), 0);
    return a;
}

/* Everything full_unix_listener opened, the connected socket and a. */
static void unix_listener_close(int l, int a, const int queued[UNIX_QUEUED], int nq)
{
    ringo_close(unix_conn_fd);
    close(a);
    for (int i = 0; i < nq; i++)
        close(queued[i]);
    ringo_close(l);
}

static void main_connect_redo(void *arg)
{
    (void)arg;
    int queued[UNIX_QUEUED], nq;
    int l = full_unix_listener(queued, &nq);
    ck_assert_int_gt(ringo_go_on(ringo_proc(), unix_connector, NULL), 0);
    ringo_sleep(20 * MS); /* it waits in the kernel */
    ck_assert_int_eq(ringo_fd_deadline_set(unix_conn_fd, RINGO_WRITE, ringo_now() + 60000 * MS), 0);
    ringo_sleep(50 * MS);
    /* The backlog is still full: no connection can have been made. */
    ck_assert_int_eq(atomic_load(&unix_conn_res), 1);
    int a = unix_room_and_connected(l);
    struct sockaddr_un peer;
    socklen_t plen = sizeof peer;
    ck_assert_int_eq(getpeername(unix_conn_fd, (struct sockaddr *)&peer, &plen), 0);
    unix_listener_close(l, a, queued, nq);
}

START_TEST(connect_made_again_after_a_deadline_change)
{
    RUN(main_connect_redo, NULL, nprocs_param);
}
END_TEST

/* A SOCK_SEQPACKET socket's short read is one record, with more queued:
 * accepted from a listener the program made, the next read makes its
 * call. */
static void main_records(void *arg)
{
    (void)arg;
    int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(l, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    /* abstract, unique to this process and proc */
    snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "ringo-records-%d-%d", (int)getpid(),
             ringo_proc());
    socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sa.sun_path + 1));
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sl), 0);
    ck_assert_int_eq(listen(l, 4), 0);
    int c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&sa, sl), 0);
    int s = ringo_accept(l, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(s, 0);
    ringo_deadline_set(ringo_now() + 30000 * MS);
    char buf[64];
    read_after_a_wait(s, c);
    ck_assert_int_eq(write(c, "ab", 2), 2);
    ck_assert_int_eq(write(c, "cd", 2), 2);
    ringo_sleep(MS); /* the edges of both records are taken */
    ck_assert_int_eq(ringo_read(s, buf, sizeof buf), 2);
    ck_assert_int_eq(memcmp(buf, "ab", 2), 0);
    ck_assert_int_eq(ringo_read(s, buf, sizeof buf), 2);
    ck_assert_int_eq(memcmp(buf, "cd", 2), 0);
    ringo_close(s);
    close(c);
    close(l);
}

START_TEST(seqpacket_records_each_read)
{
    RUN(main_records, NULL, nprocs_param);
}
END_TEST

/* A datagram socket shut down for reading while a goroutine waits in a
 * read: recv(2) returns 0 then, and so does the goroutine's read, on both
 * engines (on epoll the call that does not wait says -EAGAIN while the
 * socket reports the hang-up for as long as it lives).  AF_UNIX and UDP,
 * recv and read. */
/* A UDP socket bound to a free loopback port, which *sa receives. */
static int udp_loopback(struct sockaddr_in *sa)
{
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(u, 0);
    *sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(bind(u, (struct sockaddr *)sa, sizeof *sa), 0);
    socklen_t sl = sizeof *sa;
    ck_assert_int_eq(getsockname(u, (struct sockaddr *)sa, &sl), 0);
    return u;
}

static int dg_fd;
static atomic_long dg_res;

static void dg_reader(void *arg)
{
    char b[64];
    ringo_deadline_set(ringo_now() + 20000 * MS); /* a guard: the result must be 0 */
    atomic_store(&dg_res, arg ? (long)ringo_read(dg_fd, b, sizeof b)
                              : (long)ringo_recv(dg_fd, b, sizeof b, 0));
}

static size_t waiting_now(void)
{
    struct ringo_stats st;
    ck_assert_int_eq(ringo_stats(&st), 0);
    return st.waiting;
}

static void dg_shut_while_reading(int fd, bool use_read)
{
    dg_fd = fd;
    atomic_store(&dg_res, 1);
    size_t before = waiting_now();
    ck_assert_int_gt(ringo_go(dg_reader, use_read ? (void *)1 : NULL), 0);
    while (waiting_now() < before + 1)
        ringo_yield(); /* the reader waits */
    ck_assert_int_eq(atomic_load(&dg_res), 1);
    ck_assert_int_eq(shutdown(fd, SHUT_RD), 0);
    for (int i = 0; i < 30000 && atomic_load(&dg_res) == 1; i++)
        ringo_sleep(MS);
    ck_assert_int_eq(atomic_load(&dg_res), 0);
}

static void main_dgram_shut(void *arg)
{
    (void)arg;
    for (int use_read = 0; use_read < 2; use_read++) {
        int sv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
        dg_shut_while_reading(sv[0], use_read);
        close(sv[0]);
        close(sv[1]);
        struct sockaddr_in sa;
        int u = udp_loopback(&sa);
        ck_assert_int_eq(connect(u, (struct sockaddr *)&sa, sizeof sa), 0); /* else ENOTCONN */
        dg_shut_while_reading(u, use_read);
        close(u);
    }
}

START_TEST(datagram_read_after_shutdown_returns_zero)
{
    RUN(main_dgram_shut, NULL, nprocs_param);
}
END_TEST

/* Readiness that stays while the call cannot go on costs a wait no more
 * than other waits: no proc spins.  A UDP socket with IP_RECVERR keeps an
 * ICMP error queued (EPOLLERR until it is read with MSG_ERRQUEUE) while a
 * goroutine waits for data; an AF_UNIX connect waits for room in a full
 * backlog (the socket stays writable).  Counted in the engine's waits
 * while the main goroutine sleeps 200 ms: a spinning proc makes tens of
 * thousands, a waiting one a few per timer.  Each wait then ends as it
 * should: the datagram that comes is read, the connect made once the
 * listener takes a connection. */
#define STAYING_WAITS 400

static uint64_t enters_now(void)
{
    struct ringo_stats st;
    ck_assert_int_eq(ringo_stats(&st), 0);
    return st.enters;
}

/* The engine's waits while the calling goroutine sleeps ns. */
static uint64_t waits_while_sleeping(int64_t ns)
{
    uint64_t e0 = enters_now();
    ringo_sleep(ns);
    return enters_now() - e0;
}

static void main_staying(void *arg)
{
    (void)arg;
    /* A closed port, and a socket connected to it. */
    struct sockaddr_in sa;
    int t = udp_loopback(&sa);
    ck_assert_int_eq(close(t), 0);
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ck_assert_int_eq(setsockopt(u, IPPROTO_IP, IP_RECVERR, &one, sizeof one), 0);
    ck_assert_int_eq(connect(u, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(send(u, "x", 1, 0), 1);
    struct pollfd pf = { .fd = u, .events = POLLIN };
    ringo_deadline_set(ringo_now() + 20000 * MS); /* a guard */
    ck_assert_int_eq(ringo_poll(u, POLLIN), POLLERR); /* the error has come */
    ringo_deadline_set(RINGO_NEVER);
    char b[16];
    ck_assert_int_eq(ringo_recv(u, b, sizeof b, MSG_DONTWAIT), -ECONNREFUSED);
    ck_assert_int_eq(poll(&pf, 1, 0), 1);
    ck_assert_int_eq(pf.revents, POLLERR); /* and stays, queued */
    dg_fd = u;
    atomic_store(&dg_res, 1);
    size_t before = waiting_now();
    ck_assert_int_gt(ringo_go(dg_reader, NULL), 0);
    while (waiting_now() < before + 1)
        ringo_yield();
    uint64_t waits = waits_while_sleeping(200 * MS);
    ck_assert_msg(waits < STAYING_WAITS, "%llu waits while a read waited on an error queue",
                  (unsigned long long)waits);
    ck_assert_int_eq(atomic_load(&dg_res), 1);
    /* A datagram from the port the socket is connected to. */
    t = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(bind(t, (struct sockaddr *)&sa, sizeof sa), 0);
    struct sockaddr_in ua;
    socklen_t sl = sizeof ua;
    ck_assert_int_eq(getsockname(u, (struct sockaddr *)&ua, &sl), 0);
    ck_assert_int_eq(sendto(t, "yz", 2, 0, (struct sockaddr *)&ua, sizeof ua), 2);
    for (int i = 0; i < 30000 && atomic_load(&dg_res) == 1; i++)
        ringo_sleep(MS);
    ck_assert_int_eq(atomic_load(&dg_res), 2);
    close(t);
    close(u);

    /* An AF_UNIX connect into a full backlog. */
    int queued[UNIX_QUEUED], nq;
    int l = full_unix_listener(queued, &nq);
    before = waiting_now();
    ck_assert_int_gt(ringo_go(unix_connector, NULL), 0);
    while (waiting_now() < before + 1)
        ringo_yield();
    waits = waits_while_sleeping(200 * MS);
    ck_assert_msg(waits < STAYING_WAITS, "%llu waits while a connect waited for room",
                  (unsigned long long)waits);
    ck_assert_int_eq(atomic_load(&unix_conn_res), 1);
    unix_listener_close(l, unix_room_and_connected(l), queued, nq);
}

START_TEST(staying_readiness_does_not_spin)
{
    RUN(main_staying, NULL, nprocs_param);
}
END_TEST

/* Two goroutines read one UDP socket and one datagram comes: one reads
 * it, and the other's call says -EAGAIN although the readiness concerned
 * it.  The socket is not ready any more, so this is no readiness that
 * stays: the other waits as a reader waits, with no calls made again on
 * a backoff (which wake an idle proc ever 64 ms at the longest).  Counted
 * as above, over 300 ms: a few waits for the sleeping main goroutine,
 * where the backoff makes nine or more; then the next datagram comes to
 * the waiting reader. */
#define SPURIOUS_WAITS 6

static atomic_long two_res[2];
static atomic_int two_done;

static void two_reader(void *arg)
{
    long i = (long)arg;
    char b[16];
    ringo_deadline_set(ringo_now() + 20000 * MS); /* a guard */
    atomic_store(&two_res[i], ringo_recv(dg_fd, b, sizeof b, 0));
    atomic_fetch_add(&two_done, 1);
}

static void main_two_readers(void *arg)
{
    (void)arg;
    struct sockaddr_in sa;
    int u = udp_loopback(&sa);
    int t = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(t, 0);
    dg_fd = u;
    atomic_store(&two_done, 0);
    size_t before = waiting_now();
    for (long i = 0; i < 2; i++) {
        atomic_store(&two_res[i], 1);
        ck_assert_int_gt(ringo_go(two_reader, (void *)i), 0);
    }
    while (waiting_now() < before + 2)
        ringo_yield(); /* both wait */
    ck_assert_int_eq(sendto(t, "a", 1, 0, (struct sockaddr *)&sa, sizeof sa), 1);
    for (int i = 0; i < 30000 && atomic_load(&two_done) < 1; i++)
        ringo_sleep(MS);
    ck_assert_int_eq(atomic_load(&two_done), 1);
    uint64_t waits = waits_while_sleeping(300 * MS);
    ck_assert_msg(waits < SPURIOUS_WAITS, "%llu waits while a reader waited for its datagram",
                  (unsigned long long)waits);
    ck_assert_int_eq(atomic_load(&two_done), 1);
    ck_assert_int_eq(sendto(t, "b", 1, 0, (struct sockaddr *)&sa, sizeof sa), 1);
    for (int i = 0; i < 30000 && atomic_load(&two_done) < 2; i++)
        ringo_sleep(MS);
    ck_assert_int_eq(atomic_load(&two_done), 2);
    ck_assert_int_eq(atomic_load(&two_res[0]) + atomic_load(&two_res[1]), 2);
    close(t);
    close(u);
}

START_TEST(readers_sharing_a_readiness_do_not_poll_again)
{
    RUN(main_two_readers, NULL, nprocs_param);
}
END_TEST

/* A hang-up reported for an earlier file under a reused number is not
 * the new file's end: a connection of the runtime's (registered with the
 * proc for good on epoll) is duplicated and closed with ringo_close, a
 * socketpair gets its number, and a goroutine waits to read it; the old
 * connection's peer then shuts down, which the old registration reports
 * under the number.  The read of the socketpair goes on waiting, and
 * returns what its own peer sends. */
static void main_stale_hangup(void *arg)
{
    (void)arg;
    int l, c, s;
    tcp_connected(&l, &c, &s);
    dg_fd = s;
    atomic_store(&dg_res, 1);
    size_t before = waiting_now();
    ck_assert_int_gt(ringo_go(dg_reader, NULL), 0);
    while (waiting_now() < before + 1)
        ringo_yield(); /* waits on s: registered */
    ck_assert_int_eq(ringo_write(c, "ab", 2), 2);
    for (int i = 0; i < 30000 && atomic_load(&dg_res) == 1; i++)
        ringo_sleep(MS);
    ck_assert_int_eq(atomic_load(&dg_res), 2);
    int d = dup(s); /* the file lives on */
    ck_assert_int_ge(d, 0);
    ck_assert_int_eq(ringo_close(s), 0);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(sv[0], s); /* the number is reused */
    dg_fd = sv[0];
    atomic_store(&dg_res, 1);
    ck_assert_int_gt(ringo_go(dg_reader, (void *)1), 0);
    while (waiting_now() < before + 1)
        ringo_yield();
    ck_assert_int_eq(shutdown(c, SHUT_WR), 0);
    /* The proc has waited in the kernel twice since (or, where its waits
     * are not counted, as valgrind makes them, slept a while): it has
     * taken the hang-up's event. */
    uint64_t e0 = enters_now();
    for (int i = 0; i < 100 && enters_now() < e0 + 2; i++)
        ringo_sleep(MS);
    ck_assert_int_eq(atomic_load(&dg_res), 1); /* still waiting */
    ck_assert_int_eq(write(sv[1], "zz", 2), 2);
    for (int i = 0; i < 30000 && atomic_load(&dg_res) == 1; i++)
        ringo_sleep(MS);
    ck_assert_int_eq(atomic_load(&dg_res), 2);
    close(d);
    close(sv[0]);
    close(sv[1]);
    ringo_close(c);
    ringo_close(l);
}

START_TEST(stale_hangup_is_not_the_new_files_end)
{
    RUN(main_stale_hangup, NULL, 1);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *suite(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("net");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, echo_hundred_clients);
    tcase_add_test(tc, datagram_read_after_shutdown_returns_zero);
    tcase_add_test(tc, staying_readiness_does_not_spin);
    tcase_add_test(tc, readers_sharing_a_readiness_do_not_poll_again);
    tcase_add_test(tc, stale_hangup_is_not_the_new_files_end);
    tcase_add_test(tc, listen_and_dial);
    tcase_add_test(tc, offload_runs_on_helpers);
    tcase_add_test(tc, offload_cancel);
    tcase_add_test(tc, offload_is_not_deadlock);
    tcase_add_test(tc, epoll_registers_once);
    tcase_add_test(tc, duplex_waiters_on_each_fd);
    tcase_add_test(tc, reused_descriptor_numbers);
    tcase_add_test(tc, one_edge_many_waiters);
    tcase_add_test(tc, urgent_data_does_not_stall_reads);
    tcase_add_test(tc, zero_length_read_returns_at_once);
    tcase_add_test(tc, listen_checks_deadline_and_cancel);
    tcase_add_test(tc, end_of_stream_after_a_short_read);
    tcase_add_test(tc, connect_made_again_after_a_deadline_change);
    tcase_add_test(tc, seqpacket_records_each_read);
    /* The count is of the epoll engine's system calls, read in
     * /proc/self/io where the kernel keeps it. */
    if (test_engine() == RINGO_ENGINE_EPOLL && read_calls() >= 0)
        tcase_add_test(tc, short_read_parks_without_a_call);
    else
        printf("short_read_parks_without_a_call is left out: not on epoll, or no /proc/self/io\n");
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
