/*
 * check_io.c — the I/O calls: pipes and files with content checks, sockets
 * (accept, connect, recv, send, recvmsg, sendmsg, poll), lengths of 4 GiB
 * and more (clamped, not wrapped), deadlines and
 * cancellation of blocked operations (the fd stays usable), peer reset,
 * a full SQ / overflowing CQ under 10,000 concurrent operations, one
 * system call per wait for completions, and the
 * plain-system-call fallback outside the runtime and on plain threads.
 * Sockets are loopback only.
 */
#include "testutil.h"

#include <limits.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>

static unsigned nprocs_param = 1;

/* A listening socket on 127.0.0.1, any port; *port receives it. */
static int listen_any(struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)sa, sizeof *sa), 0);
    socklen_t len = sizeof *sa;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)sa, &len), 0);
    ck_assert_int_eq(listen(fd, 128), 0);
    return fd;
}

/* ------------------------------------------------------------------ */
/* pipes */

/* ringo_poll of a descriptor that is not open is -EBADF, not POLLNVAL;
 * of a negative one too, which poll(2) would skip and wait for ever. */
static void poll_bad_descriptors(void)
{
    enum { BAD = 9999 };
    ck_assert_int_eq(fcntl(BAD, F_GETFD), -1);
    ck_assert_int_eq(ringo_poll(BAD, POLLIN), -EBADF);
    ck_assert_int_eq(ringo_poll(BAD, POLLOUT), -EBADF);
    ck_assert_int_eq(ringo_poll(-1, POLLIN), -EBADF);
}

static void main_pipe(void *arg)
{
    (void)arg;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    char buf[64];
    ck_assert_int_eq(ringo_write(fds[1], "hello", 5), 5);
    ck_assert_int_eq(ringo_read(fds[0], buf, sizeof buf), 5);
    ck_assert(memcmp(buf, "hello", 5) == 0);

    struct iovec wv[3] = { { "ab", 2 }, { "cde", 3 }, { "f", 1 } };
    ck_assert_int_eq(ringo_writev(fds[1], wv, 3), 6);
    char a[4], b[2];
    struct iovec rv[2] = { { a, 4 }, { b, 2 } };
    ck_assert_int_eq(ringo_readv(fds[0], rv, 2), 6);
    ck_assert(memcmp(a, "abcd", 4) == 0 && memcmp(b, "ef", 2) == 0);

    ck_assert_int_eq(ringo_write_all(fds[1], "xyz", 3), 3);
    ck_assert_int_eq(ringo_poll(fds[0], POLLIN) & POLLIN, POLLIN);
    ck_assert_int_eq(ringo_read(fds[0], buf, 3), 3);
    ck_assert(memcmp(buf, "xyz", 3) == 0);

    ck_assert_int_eq(ringo_close(fds[1]), 0);
    ck_assert_int_eq(ringo_read(fds[0], buf, sizeof buf), 0); /* EOF */
    ck_assert_int_eq(ringo_close(fds[0]), 0);
    ck_assert_int_eq(ringo_close(fds[0]), -EBADF);
    ck_assert_int_eq(ringo_read(-1, buf, 1), -EBADF);
    poll_bad_descriptors();
}

START_TEST(pipe_read_write)
{
    RUN(main_pipe, NULL, nprocs_param);
}
END_TEST

/* A reader blocks until a writer on another goroutine (maybe another proc)
 * sends; large transfers arrive complete and in order. */
struct bulk { int fd; size_t n; };

static void bulk_writer(void *arg)
{
    struct bulk *b = arg;
    unsigned char *buf = malloc(b->n);
    for (size_t i = 0; i < b->n; i++)
        buf[i] = (unsigned char)(i * 7);
    ck_assert_int_eq(ringo_write_all(b->fd, buf, b->n), (ssize_t)b->n);
    ringo_close(b->fd);
    free(buf);
}

static void main_bulk(void *arg)
{
    (void)arg;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    struct bulk b = { fds[1], 1 << 20 };
    ringo_go(bulk_writer, &b);
    unsigned char buf[7000];
    size_t got = 0;
    ssize_t r;
    while ((r = ringo_read(fds[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r; i++)
            ck_assert_int_eq(buf[i], (unsigned char)((got + (size_t)i) * 7));
        got += (size_t)r;
    }
    ck_assert_int_eq(r, 0);
    ck_assert_uint_eq(got, b.n);
    ringo_close(fds[0]);
}

START_TEST(pipe_bulk_across_goroutines)
{
    RUN(main_bulk, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* files */

static void main_file(void *arg)
{
    (void)arg;
    char dir[] = "/tmp/ringo-io-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    int dfd = open(dir, O_DIRECTORY | O_RDONLY);
    ck_assert_int_ge(dfd, 0);
    int fd = ringo_openat(dfd, "f", O_RDWR | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ringo_openat(dfd, "f", O_RDWR | O_CREAT | O_EXCL, 0600), -EEXIST);
    ck_assert_int_eq(ringo_openat(dfd, "missing", O_RDONLY, 0), -ENOENT);

    ck_assert_int_eq(ringo_write(fd, "0123456789", 10), 10);
    ck_assert_int_eq(ringo_pwrite(fd, "AB", 2, 4), 2);
    ck_assert_int_eq(ringo_fsync(fd), 0);
    char buf[16] = { 0 };
    ck_assert_int_eq(ringo_pread(fd, buf, sizeof buf, 0), 10);
    ck_assert_str_eq(buf, "0123AB6789");
    ck_assert_int_eq(ringo_pread(fd, buf, 3, 8), 2);
    ck_assert_int_eq(ringo_pread(fd, buf, 3, -1), -EINVAL);
    /* read/write use and advance the file position */
    ck_assert_int_eq(lseek(fd, 2, SEEK_SET), 2);
    ck_assert_int_eq(ringo_read(fd, buf, 3), 3);
    ck_assert(memcmp(buf, "23A", 3) == 0);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 5);
    struct iovec v[2] = { { "x", 1 }, { "y", 1 } };
    ck_assert_int_eq(ringo_writev(fd, v, 2), 2);
    ck_assert_int_eq(ringo_pread(fd, buf, 10, 0), 10);
    ck_assert(memcmp(buf, "0123Axy789", 10) == 0);
    ck_assert_int_eq(ringo_close(fd), 0);

    ck_assert_int_eq(unlinkat(dfd, "f", 0), 0);
    close(dfd);
    ck_assert_int_eq(rmdir(dir), 0);
}

START_TEST(file_ops)
{
    RUN(main_file, NULL, nprocs_param);
}
END_TEST

/* Descriptors without RWF_NOWAIT that epoll can wait on (an inotify
 * descriptor, a terminal): on epoll their reads go to a helper only once
 * they are ready, so a deadline, a cancel or a close ends a wait for
 * input, as on io_uring; input that comes then is read.  And a poll of a
 * regular file for what it never reports is refused (-EINVAL, as
 * io_uring's), not a wait for ever. */
static void inotify_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[sizeof(struct inotify_event) + NAME_MAX + 1];
    ck_assert_int_eq(ringo_cancel(ringo_id()), 0); /* ends its wait at once */
    ck_assert_int_eq(ringo_read(fd, buf, sizeof buf), -ECANCELED);
}

static void main_ready_then_helper(void *arg)
{
    (void)arg;
    char dir[] = "/tmp/ringo-io-inotify-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    int in = inotify_init1(IN_CLOEXEC);
    ck_assert_int_ge(in, 0);
    ck_assert_int_ge(inotify_add_watch(in, dir, IN_CREATE), 0);
    char buf[sizeof(struct inotify_event) + NAME_MAX + 1];
    ringo_deadline_set(ringo_now() + 20 * MS);
    ck_assert_int_eq(ringo_read(in, buf, sizeof buf), -ETIMEDOUT);
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_gt(ringo_go(inotify_reader, (void *)(intptr_t)in), 0);
    while (ringo_count() > 1)
        ringo_sleep(MS);
    /* still usable: an event comes and is read */
    char path[64];
    snprintf(path, sizeof path, "%s/f", dir);
    int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ck_assert_int_ge(f, 0);
    close(f);
    ringo_deadline_set(ringo_now() + 10000 * MS);
    ssize_t n = ringo_read(in, buf, sizeof buf);
    ck_assert_int_ge(n, (ssize_t)sizeof(struct inotify_event));
    ck_assert(((struct inotify_event *)buf)->mask & IN_CREATE);
    /* a regular file never reports POLLPRI */
    int rf = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(rf, 0);
    ringo_deadline_set(ringo_now() + 20 * MS);
    ck_assert_int_eq(ringo_poll(rf, POLLPRI), -EINVAL);
    ringo_deadline_set(RINGO_NEVER);
    close(rf);
    ck_assert_int_eq(ringo_close(in), 0);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}

START_TEST(unready_descriptor_without_nowait)
{
    RUN(main_ready_then_helper, NULL, nprocs_param);
}
END_TEST

/* A call's own -EINVAL comes back at once, also where the epoll engine
 * hands refused calls to helpers: a read of an eventfd shorter than its
 * 8-byte counter, with nothing to read yet (no readiness would end a wait
 * for it). */
static void main_short_eventfd(void *arg)
{
    (void)arg;
    int e = eventfd(0, EFD_CLOEXEC);
    ck_assert_int_ge(e, 0);
    char b[4];
    ringo_deadline_set(ringo_now() + 5000 * MS);
    ck_assert_int_eq(ringo_read(e, b, sizeof b), -EINVAL);
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_eq(ringo_close(e), 0);
}

START_TEST(short_eventfd_read_is_einval)
{
    RUN(main_short_eventfd, NULL, nprocs_param);
}
END_TEST

/* A read of a file of which only a part is in the page cache returns the
 * whole count, as read(2) does (on epoll the call that does not wait,
 * preadv2 with RWF_NOWAIT, gives only the cached part, and a helper thread
 * reads the rest): pread, read at the file position, and readv, with the
 * second half of the file evicted each time.  (Where the file system
 * keeps no page cache apart, as tmpfs, nothing is evicted and the reads
 * are whole anyway.) */
#define PARTLY_SZ (4 << 20)

static void evict_second_half(int fd)
{
    ck_assert_int_eq(fdatasync(fd), 0);
    ck_assert_int_eq(posix_fadvise(fd, PARTLY_SZ / 2, PARTLY_SZ / 2, POSIX_FADV_DONTNEED), 0);
}

static void check_pattern(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i += 4093)
        ck_assert_int_eq(b[i], (unsigned char)(i / 4093));
}

static void main_file_partly_cached(void *arg)
{
    (void)arg;
    char path[] = "/tmp/ringo-io-partly-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(unlink(path), 0);
    unsigned char *b = malloc(PARTLY_SZ);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < PARTLY_SZ; i++)
        b[i] = (unsigned char)(i / 4093);
    ck_assert_int_eq(write(fd, b, PARTLY_SZ), PARTLY_SZ);

    memset(b, 0, PARTLY_SZ);
    evict_second_half(fd);
    ck_assert_int_eq(ringo_pread(fd, b, PARTLY_SZ, 0), PARTLY_SZ);
    check_pattern(b, PARTLY_SZ);

    memset(b, 0, PARTLY_SZ);
    evict_second_half(fd);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    ck_assert_int_eq(ringo_read(fd, b, PARTLY_SZ), PARTLY_SZ);
    check_pattern(b, PARTLY_SZ);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), PARTLY_SZ);

    memset(b, 0, PARTLY_SZ);
    evict_second_half(fd);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    struct iovec v[3] = { { b, 1000 }, { b + 1000, PARTLY_SZ / 2 }, { b + 1000 + PARTLY_SZ / 2, PARTLY_SZ / 2 - 1000 } };
    ck_assert_int_eq(ringo_readv(fd, v, 3), PARTLY_SZ);
    check_pattern(b, PARTLY_SZ);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), PARTLY_SZ);

    free(b);
    ck_assert_int_eq(ringo_close(fd), 0);
}

START_TEST(file_read_partly_cached)
{
    RUN(main_file_partly_cached, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* sockets */

struct sockcase { struct sockaddr_in sa; int lfd; };

static void sock_server(void *arg)
{
    struct sockcase *sc = arg;
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    int c = ringo_accept(sc->lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(plen, sizeof peer);
    ck_assert_uint_eq(ntohl(peer.sin_addr.s_addr), INADDR_LOOPBACK);
    char buf[32];
    ck_assert_int_eq(ringo_recv(c, buf, 4, MSG_WAITALL), 4);
    ck_assert(memcmp(buf, "ping", 4) == 0);
    ck_assert_int_eq(ringo_send(c, "pong", 4, MSG_NOSIGNAL), 4);

    char h[3], t[5];
    struct iovec iov[2] = { { h, 3 }, { t, 5 } };
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
    ck_assert_int_eq(ringo_recvmsg(c, &m, MSG_WAITALL), 8);
    ck_assert(memcmp(h, "hea", 3) == 0 && memcmp(t, "der!!", 5) == 0);
    ringo_close(c);
}

static void main_sockets(void *arg)
{
    (void)arg;
    struct sockcase sc;
    sc.lfd = listen_any(&sc.sa);
    ringo_go(sock_server, &sc);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(ringo_connect(fd, (struct sockaddr *)&sc.sa, sizeof sc.sa), 0);
    ck_assert_int_eq(ringo_send(fd, "ping", 4, 0), 4);
    ck_assert_int_eq(ringo_poll(fd, POLLIN) & POLLIN, POLLIN);
    char buf[8];
    ck_assert_int_eq(ringo_recv(fd, buf, 4, MSG_WAITALL), 4);
    ck_assert(memcmp(buf, "pong", 4) == 0);
    struct iovec iov[2] = { { "hea", 3 }, { "der!!", 5 } };
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
    ck_assert_int_eq(ringo_sendmsg(fd, &m, MSG_NOSIGNAL), 8);
    ck_assert_int_eq(ringo_read(fd, buf, sizeof buf), 0); /* server closed */
    ringo_close(fd);
    ringo_close(sc.lfd);

    /* connect to a port nobody listens on */
    int lfd2 = listen_any(&sc.sa);
    close(lfd2);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(ringo_connect(fd, (struct sockaddr *)&sc.sa, sizeof sc.sa), -ECONNREFUSED);
    ringo_close(fd);
}

START_TEST(socket_ops)
{
    RUN(main_sockets, NULL, nprocs_param);
}
END_TEST

/* MSG_WAITALL: a receive on a stream returns when it has all it asked
 * for, though the bytes come in pieces; with less at the end of the
 * stream, or when its deadline passes after some came, it returns what it
 * has (never -ETIMEDOUT over bytes it took); on a datagram socket, one
 * datagram.  recv, and recvmsg into a vector of two pieces.  Both
 * engines (epoll's calls do not wait, so it counts what has come and
 * waits for more). */
struct waitall_rx {
    int fd;
    bool msg; /* recvmsg */
    bool ctl0; /* recvmsg with a control buffer of length 0: none, as for recvmsg(2) */
    bool peek; /* recv with MSG_PEEK too */
    int64_t deadline; /* from its start; 0: none */
    atomic_int started, done;
    ssize_t result;
    char buf[8];
};

static void waitall_receiver(void *arg)
{
    struct waitall_rx *w = arg;
    if (w->deadline)
        ringo_deadline_set(ringo_now() + w->deadline);
    atomic_store(&w->started, 1);
    if (w->msg) {
        struct iovec v[2] = { { w->buf, 1 }, { w->buf + 1, 3 } };
        char ctl[CMSG_SPACE(sizeof(int))];
        struct msghdr m = { .msg_iov = v, .msg_iovlen = 2, .msg_control = w->ctl0 ? ctl : NULL };
        w->result = ringo_recvmsg(w->fd, &m, MSG_WAITALL);
    } else {
        w->result = ringo_recv(w->fd, w->buf, 4, MSG_WAITALL | (w->peek ? MSG_PEEK : 0));
    }
    atomic_store(&w->done, 1);
}

static void waitall_case(int how, bool msg, bool ctl0) /* 0: the rest comes; 1: EOF; 2: the deadline */
{
    int a, b;
    test_tcp_pair(&a, &b, NULL);
    struct waitall_rx w = { .fd = b, .msg = msg, .ctl0 = ctl0, .deadline = how == 2 ? 50 * MS : 0 };
    ck_assert_int_gt(ringo_go(waitall_receiver, &w), 0);
    while (!atomic_load(&w.started))
        ringo_sleep(100 * US);
    ck_assert_int_eq(write(a, "pi", 2), 2);
    ringo_sleep(20 * MS);
    if (how != 2) /* (with a deadline, a slow machine may have reached it) */
        ck_assert_msg(!atomic_load(&w.done), "case %d: returned %zd with half of it", how, w.result);
    if (how == 0)
        ck_assert_int_eq(write(a, "ng", 2), 2);
    else if (how == 1)
        ck_assert_int_eq(shutdown(a, SHUT_WR), 0);
    while (!atomic_load(&w.done))
        ringo_sleep(1 * MS);
    ck_assert_int_eq(w.result, how == 0 ? 4 : 2);
    ck_assert(memcmp(w.buf, "ping", (size_t)w.result) == 0);
    ringo_close(a);
    ringo_close(b);
}

/* A read of a pipe that waits until the test writes it. */
struct pipe_rx {
    int fd;
    atomic_int started, done;
};

static void pipe_receiver(void *arg)
{
    struct pipe_rx *r = arg;
    char ch;
    atomic_store(&r->started, 1);
    ck_assert_int_eq(ringo_read(r->fd, &ch, 1), 1);
    atomic_store(&r->done, 1);
}

static void main_waitall(void *arg)
{
    (void)arg;
    for (int how = 0; how < 3; how++) {
        waitall_case(how, false, false);
        waitall_case(how, true, false);
        waitall_case(how, true, true);
    }
    /* A datagram socket's receive is one datagram, MSG_WAITALL or not:
     * the first comes back alone, though a second follows. */
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
    struct waitall_rx w = { .fd = sv[1] };
    ck_assert_int_gt(ringo_go(waitall_receiver, &w), 0);
    while (!atomic_load(&w.started))
        ringo_sleep(100 * US);
    ck_assert_int_eq(send(sv[0], "pi", 2, 0), 2);
    ringo_sleep(20 * MS);
    ck_assert_int_eq(send(sv[0], "ng", 2, 0), 2);
    while (!atomic_load(&w.done))
        ringo_sleep(1 * MS);
    ck_assert_int_eq(w.result, 2);
    ringo_close(sv[0]);
    ringo_close(sv[1]);

    /* The same while a cancel by descriptor, meant for another
     * descriptor's operation on the proc, comes as it waits (a change of
     * that one's deadline): the short receive is still one datagram, not
     * one cut short to be gone on with. */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
    int pfd[2];
    ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
    struct pipe_rx pr = { .fd = pfd[0] };
    ck_assert_int_gt(ringo_go_on(ringo_proc(), pipe_receiver, &pr), 0);
    struct waitall_rx w2 = { .fd = sv[1] };
    ck_assert_int_gt(ringo_go_on(ringo_proc(), waitall_receiver, &w2), 0);
    while (!atomic_load(&w2.started) || !atomic_load(&pr.started))
        ringo_sleep(100 * US);
    ringo_sleep(5 * MS); /* both wait */
    ck_assert_int_eq(ringo_fd_deadline_set(pfd[0], RINGO_READ, ringo_now() + 60000 * MS), 0);
    ringo_sleep(5 * MS); /* the pipe's read made again, after the cancel */
    ck_assert_int_eq(send(sv[0], "pi", 2, 0), 2);
    ringo_sleep(20 * MS);
    ck_assert_int_eq(send(sv[0], "ng", 2, 0), 2);
    while (!atomic_load(&w2.done))
        ringo_sleep(1 * MS);
    ck_assert_int_eq(w2.result, 2);
    ck_assert_int_eq(write(pfd[1], "x", 1), 1);
    while (!atomic_load(&pr.done))
        ringo_sleep(1 * MS);
    close(pfd[0]);
    close(pfd[1]);
    ringo_close(sv[0]);
    ringo_close(sv[1]);

    /* MSG_PEEK beside it: what is queued, never the same bytes twice
     * (io_uring's recv would go on past the first piece and peek it
     * again there). */
    int a, b;
    test_tcp_pair(&a, &b, NULL);
    struct waitall_rx w3 = { .fd = b, .peek = true };
    ck_assert_int_gt(ringo_go(waitall_receiver, &w3), 0);
    while (!atomic_load(&w3.started))
        ringo_sleep(100 * US);
    ck_assert_int_eq(write(a, "pi", 2), 2);
    ringo_sleep(20 * MS);
    ck_assert_int_eq(write(a, "ng", 2), 2);
    while (!atomic_load(&w3.done))
        ringo_sleep(1 * MS);
    ck_assert_int_ge(w3.result, 2);
    ck_assert_msg(memcmp(w3.buf, "ping", (size_t)w3.result) == 0, "peeked \"%.*s\"",
                  (int)w3.result, w3.buf);
    char buf[4];
    ck_assert_int_eq(ringo_recv(b, buf, 4, MSG_WAITALL), 4); /* nothing was taken */
    ck_assert(memcmp(buf, "ping", 4) == 0);
    ck_assert_int_eq(ringo_recvmsg(b, NULL, MSG_WAITALL), -EFAULT); /* as recvmsg(2) */
    ringo_close(a);
    ringo_close(b);
}

/* A send with MSG_WAITALL returns when all of it has gone, as send(2)
 * and io_uring's do, though the peer's buffer fills many times over (on
 * epoll: as many calls as the pieces take); send and sendmsg.  Also when
 * a change of the socket's write deadline, while the send waits with a
 * first piece gone, ends its operation in the kernel (a cancel by
 * descriptor): it goes on with the rest, as a receive does. */
#define BIG_SEND (4 << 20)

struct drain_rx {
    int fd;
    size_t got;
    atomic_int done;
};

static void drain_receiver(void *arg)
{
    struct drain_rx *d = arg;
    ringo_sleep(20 * MS); /* the sender's first piece fills the buffer */
    char buf[4096];
    ssize_t r;
    while ((r = ringo_read(d->fd, buf, sizeof buf)) > 0)
        d->got += (size_t)r;
    atomic_store(&d->done, 1);
}

struct big_tx {
    int fd;
    bool msg; /* sendmsg, a vector of two */
    char *big;
    atomic_int started, done;
    ssize_t result;
};

static void big_sender(void *arg)
{
    struct big_tx *t = arg;
    atomic_store(&t->started, 1);
    if (t->msg) {
        struct iovec v[2] = { { t->big, BIG_SEND / 2 }, { t->big + BIG_SEND / 2, BIG_SEND / 2 } };
        struct msghdr m = { .msg_iov = v, .msg_iovlen = 2 };
        t->result = ringo_sendmsg(t->fd, &m, MSG_WAITALL);
    } else {
        t->result = ringo_send(t->fd, t->big, BIG_SEND, MSG_WAITALL);
    }
    atomic_store(&t->done, 1);
}

static void main_send_waitall(void *arg)
{
    (void)arg;
    char *big = calloc(1, BIG_SEND);
    ck_assert_ptr_nonnull(big);
    for (int i = 0; i < 4; i++) {
        bool msg = i & 1, cut = i & 2;
        int sv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        struct drain_rx d = { .fd = sv[1] };
        struct big_tx t = { .fd = sv[0], .msg = msg, .big = big };
        /* On this proc: its cancel by descriptor is the one that cuts. */
        ck_assert_int_gt(ringo_go_on(ringo_proc(), big_sender, &t), 0);
        if (cut) {
            while (!atomic_load(&t.started))
                ringo_sleep(100 * US);
            ringo_sleep(5 * MS); /* the first piece gone, it waits */
            ck_assert(!atomic_load(&t.done));
            ck_assert_int_eq(ringo_fd_deadline_set(sv[0], RINGO_WRITE, ringo_now() + 60000 * MS), 0);
            ringo_sleep(5 * MS);
            ck_assert_msg(!atomic_load(&t.done), "case %d: returned %zd", i, t.result);
        }
        ck_assert_int_gt(ringo_go(drain_receiver, &d), 0);
        while (!atomic_load(&t.done))
            ringo_sleep(1 * MS);
        ck_assert_int_eq(t.result, BIG_SEND);
        ringo_close(sv[0]);
        while (!atomic_load(&d.done))
            ringo_sleep(1 * MS);
        ck_assert_uint_eq(d.got, BIG_SEND);
        ringo_close(sv[1]);
    }
    free(big);
}

START_TEST(send_waitall_sends_all)
{
    RUN(main_send_waitall, NULL, nprocs_param);
}
END_TEST

/* A recvmsg with MSG_WAITALL and a control buffer loses no ancillary
 * data: a descriptor passed with the second piece of an AF_UNIX stream
 * comes with the call (if it goes on past the first piece) or with the
 * next one. */
static atomic_int cm_started;
static atomic_long cm_res = 1;
static int cm_sv[2], cm_fd = -1;
static char cm_buf[4];

static int cm_take_fd(struct msghdr *m)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
            return fd;
        }
    return -1;
}

static void cm_receiver(void *arg)
{
    (void)arg;
    union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
    struct iovec v = { cm_buf, 4 };
    struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
    atomic_store(&cm_started, 1);
    long r = ringo_recvmsg(cm_sv[1], &m, MSG_WAITALL | MSG_CMSG_CLOEXEC);
    cm_fd = cm_take_fd(&m);
    atomic_store(&cm_res, r);
}

static void main_waitall_cmsg(void *arg)
{
    (void)arg;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cm_sv), 0);
    ck_assert_int_gt(ringo_go(cm_receiver, NULL), 0);
    while (!atomic_load(&cm_started))
        ringo_sleep(100 * US);
    ringo_sleep(5 * MS); /* it waits (if not, it takes the first piece alone all the same) */
    ck_assert_int_eq(send(cm_sv[0], "ab", 2, 0), 2);
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec v = { "cd", 2 };
    struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p[0], sizeof(int));
    ck_assert_int_eq(sendmsg(cm_sv[0], &m, 0), 2);
    for (int i = 0; i < 30000 && atomic_load(&cm_res) == 1; i++)
        ringo_sleep(MS);
    long r = atomic_load(&cm_res);
    int got = cm_fd;
    if (r == 2) { /* the first piece: the second, with its descriptor, next */
        union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl2;
        struct iovec v2 = { cm_buf + 2, 2 };
        struct msghdr m2 = { .msg_iov = &v2, .msg_iovlen = 1, .msg_control = ctl2.b, .msg_controllen = sizeof ctl2.b };
        ck_assert_int_eq(ringo_recvmsg(cm_sv[1], &m2, MSG_CMSG_CLOEXEC), 2);
        got = cm_take_fd(&m2);
    } else {
        ck_assert_int_eq(r, 4);
    }
    ck_assert(memcmp(cm_buf, "abcd", 4) == 0);
    ck_assert_int_ge(got, 0); /* the descriptor came */
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    char x;
    ck_assert_int_eq(read(got, &x, 1), 1); /* and is the pipe's */
    close(got);
    close(p[0]);
    close(p[1]);
    ringo_close(cm_sv[0]);
    ringo_close(cm_sv[1]);
}

START_TEST(recv_waitall_in_pieces)
{
    RUN(main_waitall, NULL, nprocs_param);
    RUN(main_waitall_cmsg, NULL, nprocs_param);
}
END_TEST

/* A length of 4 GiB or more is clamped, as by read(2), never cut to its
 * low 32 bits: 4 GiB exactly would become 0, and a receive of 0 bytes
 * returns 0, a false end of file.  The buffer is 4 GiB of address space
 * that is never touched beyond its first page (MAP_NORESERVE). */
static void main_huge_len(void *arg)
{
    (void)arg;
#if SIZE_MAX > UINT32_MAX
    const size_t huge = (size_t)1 << 32;
    char *big = mmap(NULL, huge, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ck_assert(big != MAP_FAILED);
    memcpy(big, "hello", 5);
    int s[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
    /* send: as much as the socket buffer takes, not 0 */
    ssize_t sent = ringo_send(s[1], big, huge, MSG_DONTWAIT | MSG_NOSIGNAL);
    ck_assert_int_gt(sent, 0);
    char *back = malloc((size_t)sent);
    ck_assert_ptr_nonnull(back);
    ssize_t got = 0;
    while (got < sent) {
        ssize_t r = ringo_read(s[0], back + got, (size_t)(sent - got));
        ck_assert_int_gt(r, 0);
        got += r;
    }
    ck_assert(memcmp(back, "hello", 5) == 0);
    free(back);
    /* recv: the 3 bytes there are, not a false end of file */
    ck_assert_int_eq(ringo_write(s[1], "abc", 3), 3);
    ck_assert_int_eq(ringo_recv(s[0], big, huge, 0), 3);
    ck_assert(memcmp(big, "abc", 3) == 0);
    /* read and write clamp the same way */
    ck_assert_int_eq(ringo_write(s[1], "xyz", 3), 3);
    ck_assert_int_eq(ringo_read(s[0], big, huge), 3);
    ck_assert(memcmp(big, "xyz", 3) == 0);
    ck_assert_int_eq(ringo_close(s[0]), 0);
    ck_assert_int_eq(ringo_close(s[1]), 0);
    munmap(big, huge);
#endif
}

START_TEST(huge_length_is_clamped)
{
    RUN(main_huge_len, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* O_NONBLOCK descriptors.  What a call does on a descriptor that is not
 * ready depends on the kernel, not on ringo: io_uring honoured O_NONBLOCK
 * (the request completed with -EAGAIN) until Linux 5.15, whose commit
 * "io_uring: allow retry for O_NONBLOCK if async is supported" (also sent
 * to the stable kernels) makes it wait, poll-driven, for a file that
 * supports non-blocking attempts, such as a pipe or a socket.  Each probe
 * runs under a short deadline: -ETIMEDOUT means the call waited, -EAGAIN
 * that it returned at once.  The results are printed to the test log; the
 * pages (ringo_read(3) NOTES) say what they must be. */

enum { NB_PIPE_READ, NB_PIPE_WRITE, NB_SOCK_READ, NB_SOCK_RECV, NB_ACCEPT, NB_DONTWAIT, NB_N };
static const char *const nb_what[NB_N] = {
    "ringo_read, empty O_NONBLOCK pipe",
    "ringo_write, full O_NONBLOCK pipe",
    "ringo_read, empty O_NONBLOCK TCP socket",
    "ringo_recv, empty O_NONBLOCK TCP socket",
    "ringo_accept, O_NONBLOCK listener, no connection",
    "ringo_recv MSG_DONTWAIT, empty blocking TCP socket",
};
static long nb_result[NB_N];

static void nb_deadline(void)
{
    ringo_deadline_set(ringo_now() + 20 * MS);
}

static void main_nonblock(void *arg)
{
    (void)arg;
    char buf[64];
    int p[2];
    ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
    nb_deadline();
    nb_result[NB_PIPE_READ] = ringo_read(p[0], buf, sizeof buf);
    ringo_deadline_set(RINGO_NEVER);
    /* the descriptor is still usable */
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    ck_assert_int_eq(ringo_read(p[0], buf, sizeof buf), 1);
    memset(buf, 'y', sizeof buf);
    while (write(p[1], buf, sizeof buf) > 0)
        ;
    ck_assert_int_eq(errno, EAGAIN);
    nb_deadline();
    nb_result[NB_PIPE_WRITE] = ringo_write(p[1], buf, sizeof buf);
    ringo_deadline_set(RINGO_NEVER);
    close(p[0]);
    close(p[1]);

    struct sockaddr_in sa;
    int lfd = listen_any(&sa);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(ringo_connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
    int s = ringo_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(s, 0);
    nb_deadline();
    nb_result[NB_DONTWAIT] = ringo_recv(s, buf, sizeof buf, MSG_DONTWAIT);
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_eq(fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK), 0);
    nb_deadline();
    nb_result[NB_SOCK_READ] = ringo_read(s, buf, sizeof buf);
    ringo_deadline_set(RINGO_NEVER);
    nb_deadline();
    nb_result[NB_SOCK_RECV] = ringo_recv(s, buf, sizeof buf, 0);
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_eq(ringo_send(c, "ok", 2, 0), 2);
    ck_assert_int_eq(ringo_recv(s, buf, 2, MSG_WAITALL), 2);
    close(s);
    close(c);

    ck_assert_int_eq(fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK), 0);
    nb_deadline();
    nb_result[NB_ACCEPT] = ringo_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_lt(nb_result[NB_ACCEPT], 0);
    close(lfd);
}

START_TEST(nonblock_descriptors)
{
    RUN(main_nonblock, NULL, nprocs_param);
    struct utsname u;
    int major = 0, minor = 0;
    ck_assert_int_eq(uname(&u), 0);
    ck_assert_int_eq(sscanf(u.release, "%d.%d", &major, &minor), 2);
    bool retries = major > 5 || (major == 5 && minor >= 15);
    for (int i = 0; i < NB_N; i++) {
        printf("Linux %s: %s: %s\n", u.release, nb_what[i],
               nb_result[i] == -ETIMEDOUT ? "waits (until the deadline)"
               : nb_result[i] == -EAGAIN  ? "returns -EAGAIN at once"
                                          : strerror((int)-nb_result[i]));
        ck_assert_msg(nb_result[i] == -ETIMEDOUT || nb_result[i] == -EAGAIN, "%s: %ld",
                      nb_what[i], nb_result[i]);
    }
    /* MSG_DONTWAIT never waits, on any kernel. */
    ck_assert_int_eq(nb_result[NB_DONTWAIT], -EAGAIN);
    /* Since 5.15 reads and writes on a pipe or socket wait, O_NONBLOCK
     * or not (before it, or without the stable backport, -EAGAIN). */
    if (retries) {
        ck_assert_int_eq(nb_result[NB_PIPE_READ], -ETIMEDOUT);
        ck_assert_int_eq(nb_result[NB_PIPE_WRITE], -ETIMEDOUT);
        ck_assert_int_eq(nb_result[NB_SOCK_READ], -ETIMEDOUT);
        ck_assert_int_eq(nb_result[NB_SOCK_RECV], -ETIMEDOUT);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* deadlines and cancellation */

static void main_read_deadline(void *arg)
{
    (void)arg;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    char buf[8];
    int64_t t0 = ringo_now();
    ringo_deadline_set(t0 + 20 * MS);
    ck_assert_int_eq(ringo_read(fds[0], buf, sizeof buf), -ETIMEDOUT);
    ck_assert_int_ge(ringo_now() - t0, 20 * MS);
    /* past the deadline: not attempted, even though it could complete */
    ck_assert_int_eq(write(fds[1], "ok", 2), 2);
    ck_assert_int_eq(ringo_read(fds[0], buf, sizeof buf), -ETIMEDOUT);
    ck_assert_int_eq(ringo_write(fds[1], "no", 2), -ETIMEDOUT);
    ck_assert_int_eq(ringo_poll(fds[0], POLLIN), -ETIMEDOUT);
    /* the fd is usable, and the unread data is still there */
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_eq(ringo_read(fds[0], buf, sizeof buf), 2);
    ck_assert(memcmp(buf, "ok", 2) == 0);
    /* a deadline that does not fire leaves the result alone */
    ringo_deadline_set(ringo_now() + 10000 * MS);
    ck_assert_int_eq(ringo_write(fds[1], "again", 5), 5);
    ck_assert_int_eq(ringo_read(fds[0], buf, sizeof buf), 5);
    /* close ignores the deadline, so a timed-out goroutine can clean up */
    ringo_deadline_set(ringo_now() - 1);
    ck_assert_int_eq(ringo_close(fds[0]), 0);
    ck_assert_int_eq(ringo_close(fds[1]), 0);
}

START_TEST(deadline_on_blocked_read)
{
    RUN(main_read_deadline, NULL, nprocs_param);
}
END_TEST

/* Many timed reads at once, each with its own deadline, all time out. */
static atomic_int timed_out;
static void timed_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char c;
    ringo_deadline_set(ringo_now() + (int64_t)(ringo_id() % 20 + 1) * MS);
    if (ringo_read(fd, &c, 1) == -ETIMEDOUT)
        atomic_fetch_add(&timed_out, 1);
}

static void main_many_deadlines(void *arg)
{
    (void)arg;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    atomic_store(&timed_out, 0);
    for (int i = 0; i < 500; i++)
        ringo_go(timed_reader, (void *)(intptr_t)fds[0]);
    while (atomic_load(&timed_out) < 500)
        ringo_sleep(1 * MS);
    close(fds[0]);
    close(fds[1]);
}

START_TEST(many_deadlines)
{
    RUN(main_many_deadlines, NULL, nprocs_param);
}
END_TEST

struct acc { int lfd; int result; atomic_int started; };

static void blocked_acceptor(void *arg)
{
    struct acc *a = arg;
    atomic_store(&a->started, 1);
    a->result = ringo_accept(a->lfd, NULL, NULL, 0);
}

static void main_cancel_accept(void *arg)
{
    (void)arg;
    struct sockaddr_in sa;
    struct acc a = { .lfd = listen_any(&sa), .result = 1 };
    int64_t id = ringo_go(blocked_acceptor, &a);
    while (!atomic_load(&a.started))
        ringo_sleep(1 * MS);
    ringo_sleep(5 * MS);
    ck_assert_int_eq(a.result, 1);
    ck_assert_int_eq(ringo_cancel(id), 0);
    while (a.result == 1)
        ringo_sleep(1 * MS);
    ck_assert_int_eq(a.result, -ECANCELED);

    /* the listener still works */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(ringo_connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
    int s = ringo_accept(a.lfd, NULL, NULL, 0);
    ck_assert_int_ge(s, 0);
    ck_assert_int_eq(ringo_write(c, "x", 1), 1);
    char ch;
    ck_assert_int_eq(ringo_read(s, &ch, 1), 1);
    ck_assert_int_eq(ch, 'x');
    ringo_close(s);
    ringo_close(c);
    ringo_close(a.lfd);
}

START_TEST(cancel_blocked_accept)
{
    RUN(main_cancel_accept, NULL, nprocs_param);
}
END_TEST

/* A goroutine cancelled before it blocks gets -ECANCELED at once; one
 * cancelled while blocked on a read with a deadline gets -ECANCELED, not
 * -ETIMEDOUT. */
static void cancelled_reader(void *arg)
{
    struct acc *a = arg;
    char c;
    ringo_deadline_set(ringo_now() + 10000 * MS);
    atomic_store(&a->started, 1);
    a->result = (int)ringo_read(a->lfd, &c, 1);
}

static void main_cancel_read(void *arg)
{
    (void)arg;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    struct acc a = { .lfd = fds[0], .result = 1 };
    int64_t id = ringo_go(cancelled_reader, &a);
    while (!atomic_load(&a.started))
        ringo_sleep(1 * MS);
    ringo_sleep(2 * MS);
    ck_assert_int_eq(ringo_cancel(id), 0);
    while (a.result == 1)
        ringo_sleep(1 * MS);
    ck_assert_int_eq(a.result, -ECANCELED);
    ck_assert_int_eq(ringo_cancel(ringo_id()), 0);
    ck_assert_int_eq(ringo_write(fds[1], "x", 1), -ECANCELED);
    ck_assert_int_eq(ringo_close(fds[0]), 0);
    ck_assert_int_eq(ringo_close(fds[1]), 0);
}

START_TEST(cancel_blocked_read)
{
    RUN(main_cancel_read, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* peer reset */

static void main_reset(void *arg)
{
    (void)arg;
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in sa;
    int lfd = listen_any(&sa);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(ringo_connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
    int s = ringo_accept(lfd, NULL, NULL, 0);
    ck_assert_int_ge(s, 0);
    ck_assert_int_eq(ringo_write(c, "GET", 3), 3);
    /* the client vanishes mid-request with a RST */
    struct linger lg = { 1, 0 };
    ck_assert_int_eq(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    ringo_close(c);
    char buf[16];
    ssize_t r = ringo_read(s, buf, sizeof buf);
    /* either the 3 bytes and then the reset, or the reset at once */
    if (r == 3)
        r = ringo_read(s, buf, sizeof buf);
    ck_assert_int_eq(r, -ECONNRESET);
    r = ringo_write(s, "HTTP", 4);
    ck_assert(r == -EPIPE || r == -ECONNRESET);
    ck_assert_int_eq(ringo_send(s, "x", 1, MSG_NOSIGNAL), -EPIPE);
    ringo_close(s);
    ringo_close(lfd);
}

/* An operation that fails as the kernel prepares it (a connect whose
 * address is longer than any) does not hold back the ones queued behind
 * it in the same submit: a read of a pipe that has a byte completes
 * while the proc stays busy (main yields, bounded).  Without the ring's
 * SUBMIT_ALL, the kernel stopped at the failed one and the read stayed
 * in the SQ, counted as submitted: on the plain setup
 * (RINGO_NO_DEFER_TASKRUN), where a busy proc's periodic poll submits
 * only what it counts, until the proc slept.  Both setups. */
static int sa_pipe[2];
static atomic_int sa_read_done, sa_connect_done;

static void sa_bad_connect(void *arg)
{
    (void)arg;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s, 0);
    struct sockaddr_storage ss[2];
    memset(ss, 0, sizeof ss);
    ss[0].ss_family = AF_INET;
    ck_assert_int_eq(ringo_connect(s, (struct sockaddr *)ss, sizeof ss), -EINVAL);
    close(s);
    atomic_store(&sa_connect_done, 1);
}

static void sa_reader(void *arg)
{
    (void)arg;
    char c;
    ck_assert_int_eq(ringo_read(sa_pipe[0], &c, 1), 1);
    atomic_store(&sa_read_done, 1);
}

static void main_submit_all(void *arg)
{
    (void)arg;
    ck_assert_int_eq(pipe2(sa_pipe, O_CLOEXEC), 0);
    ck_assert_int_eq(write(sa_pipe[1], "x", 1), 1);
    atomic_store(&sa_read_done, 0);
    atomic_store(&sa_connect_done, 0);
    /* On this proc, in this order: the connect's SQE first, the read's
     * behind it, submitted together by main's periodic poll. */
    ck_assert_int_gt(ringo_go_on(ringo_proc(), sa_bad_connect, NULL), 0);
    ck_assert_int_gt(ringo_go_on(ringo_proc(), sa_reader, NULL), 0);
    long yields = 0;
    while (!(atomic_load(&sa_read_done) && atomic_load(&sa_connect_done)) && yields < 1000000) {
        ringo_yield();
        yields++;
    }
    ck_assert_msg(atomic_load(&sa_connect_done), "the connect did not return");
    ck_assert_msg(atomic_load(&sa_read_done), "the read did not complete in %ld yields", yields);
    close(sa_pipe[0]);
    close(sa_pipe[1]);
}

START_TEST(failed_prep_holds_back_nothing)
{
    RUN(main_submit_all, NULL, nprocs_param);
    char *saved = env_push("RINGO_NO_DEFER_TASKRUN", "1");
    RUN(main_submit_all, NULL, nprocs_param);
    env_pop("RINGO_NO_DEFER_TASKRUN", saved);
}
END_TEST

START_TEST(peer_reset)
{
    RUN(main_reset, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A ring of 4 entries (CQ 16) and 10,000 concurrent operations: 5,000
 * readers block on their pipes while 5,000 writers fill them, half of the
 * reads with a (far) deadline so link timeouts go through the full SQ too.
 * Every completion must arrive, with the right content. */
#define STRESS_PAIRS 5000

static int stress_fds[STRESS_PAIRS][2];
static atomic_int stress_ok;

static void stress_reader(void *arg)
{
    int i = (int)(intptr_t)arg;
    if (i & 1)
        ringo_deadline_set(ringo_now() + 60000 * MS);
    int v = -1;
    ck_assert_int_eq(ringo_read(stress_fds[i][0], &v, sizeof v), sizeof v);
    ck_assert_int_eq(v, i);
    ck_assert_int_eq(ringo_close(stress_fds[i][0]), 0);
    atomic_fetch_add(&stress_ok, 1);
}

static void stress_writer(void *arg)
{
    int i = (int)(intptr_t)arg;
    ringo_yield();
    ck_assert_int_eq(ringo_write(stress_fds[i][1], &i, sizeof i), sizeof i);
    ck_assert_int_eq(ringo_close(stress_fds[i][1]), 0);
    atomic_fetch_add(&stress_ok, 1);
}

static void main_stress(void *arg)
{
    (void)arg;
    for (int i = 0; i < STRESS_PAIRS; i++) {
        ck_assert_int_eq(pipe(stress_fds[i]), 0);
        ck_assert_int_gt(ringo_go(stress_reader, (void *)(intptr_t)i), 0);
    }
    ringo_sleep(1 * MS); /* let the readers block in the kernel */
    for (int i = 0; i < STRESS_PAIRS; i++)
        ck_assert_int_gt(ringo_go(stress_writer, (void *)(intptr_t)i), 0);
}

/* It needs 2 * STRESS_PAIRS descriptors: main() raises the soft limit, and
 * leaves the test out (the program then exits 77 if all else passed) when
 * the hard limit is too low. */
#define STRESS_FDS (2 * STRESS_PAIRS + 64)

START_TEST(tiny_ring_many_operations)
{
    atomic_store(&stress_ok, 0);
    struct ringo_config cfg = { .procs = nprocs_param, .ring_entries = 4 };
    ck_assert_int_eq(ringo_run(main_stress, NULL, &cfg), 0);
    ck_assert_int_eq(atomic_load(&stress_ok), 2 * STRESS_PAIRS);
}
END_TEST

/* ------------------------------------------------------------------ */
/* plain system calls outside the runtime and on plain threads */

static void plain_calls(void)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    char buf[8];
    ck_assert_int_eq(ringo_write(fds[1], "abc", 3), 3);
    ck_assert_int_eq(ringo_poll(fds[0], POLLIN) & POLLIN, POLLIN);
    ck_assert_int_eq(ringo_read(fds[0], buf, sizeof buf), 3);
    ck_assert(memcmp(buf, "abc", 3) == 0);
    ck_assert_int_eq(ringo_write_all(fds[1], "de", 2), 2);
    ck_assert_int_eq(ringo_read(fds[0], buf, 2), 2);
    ck_assert_int_eq(ringo_close(fds[0]), 0);
    ck_assert_int_eq(ringo_close(fds[1]), 0);
    ck_assert_int_eq(ringo_close(fds[1]), -EBADF);
    ck_assert_int_eq(ringo_read(fds[0], buf, 1), -EBADF);
    ck_assert_int_eq(ringo_openat(AT_FDCWD, "/nonexistent/x", O_RDONLY, 0), -ENOENT);
    poll_bad_descriptors();
}

static void *plain_thread(void *arg)
{
    (void)arg;
    plain_calls();
    return NULL;
}

static void main_plain(void *arg)
{
    (void)arg;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, plain_thread, NULL), 0);
    pthread_join(t, NULL); /* blocks this proc briefly; fine in a test */
}

START_TEST(plain_fallback)
{
    plain_calls();
    RUN(main_plain, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* What a round costs in system calls: a proc that has run everything
 * waits for completions with one io_uring_enter (or epoll_wait), which
 * submits the round's SQEs and returns at once when completions are
 * already there; it makes no non-blocking enter before it.  A goroutine
 * answers a plain thread byte for byte over two pipes: each round trip
 * is a read and a write, at most two waits on io_uring (the write's
 * completion is one) and one on epoll (the write is made at once).  The
 * partner pauses before each byte so that the read usually finds the
 * pipe empty and has to wait; that pause only decides how often the
 * read waits, never whether the bound holds.  With a non-blocking reap
 * before each wait, a read that waited cost two enters (three per round
 * trip on io_uring, two on epoll).  Spinning procs (2 procs) probe now
 * and then with a reap of their own: the N/8 of slack. */
#define ROUNDS 500
static int rt_in[2], rt_out[2];

static void *rt_partner(void *arg)
{
    (void)arg;
    char c = 'x';
    for (int i = 0; i < ROUNDS; i++) {
        struct timespec pause = { 0, 100000 };
        nanosleep(&pause, NULL);
        ck_assert_int_eq(write(rt_in[1], &c, 1), 1);
        ck_assert_int_eq(read(rt_out[0], &c, 1), 1);
    }
    close(rt_in[1]);
    return NULL;
}

static void main_round_trips(void *arg)
{
    (void)arg;
    ck_assert_int_eq(pipe(rt_in), 0);
    ck_assert_int_eq(pipe(rt_out), 0);
    struct ringo_stats a, b;
    ck_assert_int_eq(ringo_stats(&a), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, rt_partner, NULL), 0);
    char c;
    for (int i = 0; i < ROUNDS; i++) {
        ck_assert_int_eq(ringo_read(rt_in[0], &c, 1), 1);
        ck_assert_int_eq(ringo_write(rt_out[1], &c, 1), 1);
    }
    ck_assert_int_eq(ringo_read(rt_in[0], &c, 1), 0); /* the partner is done */
    ck_assert_int_eq(ringo_stats(&b), 0);
    pthread_join(t, NULL);
    uint64_t waits = b.engine == RINGO_ENGINE_EPOLL ? 1 : 2;
    ck_assert_uint_le(b.enters - a.enters, waits * (ROUNDS + 1) + ROUNDS / 8 + 16);
    ck_assert_uint_ge(b.enters - a.enters, 1); /* it did wait */
    ringo_close(rt_in[0]);
    ringo_close(rt_out[0]);
    ringo_close(rt_out[1]);
}

START_TEST(one_enter_per_wait)
{
    RUN(main_round_trips, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */

static bool stress_fds_ok;

static Suite *suite(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("io");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pipe_read_write);
    tcase_add_test(tc, pipe_bulk_across_goroutines);
    tcase_add_test(tc, file_ops);
    tcase_add_test(tc, file_read_partly_cached);
    tcase_add_test(tc, unready_descriptor_without_nowait);
    tcase_add_test(tc, short_eventfd_read_is_einval);
    tcase_add_test(tc, socket_ops);
    tcase_add_test(tc, recv_waitall_in_pieces);
    tcase_add_test(tc, send_waitall_sends_all);
    tcase_add_test(tc, huge_length_is_clamped);
    tcase_add_test(tc, nonblock_descriptors);
    tcase_add_test(tc, deadline_on_blocked_read);
    tcase_add_test(tc, many_deadlines);
    tcase_add_test(tc, cancel_blocked_accept);
    tcase_add_test(tc, cancel_blocked_read);
    tcase_add_test(tc, peer_reset);
    tcase_add_test(tc, failed_prep_holds_back_nothing);
    tcase_add_test(tc, one_enter_per_wait);
    if (stress_fds_ok)
        tcase_add_test(tc, tiny_ring_many_operations);
    tcase_add_test(tc, plain_fallback);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    skip_without_io_uring();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("getrlimit");
        return EXIT_FAILURE;
    }
    if (rl.rlim_cur < STRESS_FDS && rl.rlim_max >= STRESS_FDS) {
        rl.rlim_cur = STRESS_FDS;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            perror("setrlimit");
            return EXIT_FAILURE;
        }
    }
    stress_fds_ok = rl.rlim_cur >= STRESS_FDS;
    int status = run_per_procs(suite, &nprocs_param);
    if (status == EXIT_SUCCESS && !stress_fds_ok) {
        printf("SKIP: tiny_ring_many_operations needs %d descriptors, RLIMIT_NOFILE hard limit is %lu\n",
               STRESS_FDS, (unsigned long)rl.rlim_max);
        return 77;
    }
    return status;
}
