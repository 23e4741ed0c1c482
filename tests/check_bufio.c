/*
 * check_bufio.c — buffered I/O (bufio.c): the reader over pipes and
 * loopback TCP with writer goroutines (lines split across reads, every
 * line length at every buffer size, the max limit and -EMSGSIZE with the
 * reader still usable, read_full across many small writes, end of file,
 * peek), the writer (its underlying writes counted as SOCK_SEQPACKET
 * messages, flush over a small socket buffer and a slow reader, a failed
 * flush that keeps its bytes), deadlines (the goroutine's and the
 * descriptor's) and cancellation leaving both consistent,
 * ringo_writev_all over many iovecs and partial writes, ringo_send_all,
 * bad arguments, and the plain-call path outside a run.
 */
#include "testutil.h"

#include <limits.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

static unsigned nprocs_param = 1;

/* The byte at position i of the test streams. */
static inline unsigned char pat(size_t i)
{
    return (unsigned char)(i * 7 + i / 251);
}

/* A connected loopback TCP pair; with small buffers (the kernel's minimum,
 * a few KiB) when small is set, so that writes of more come back short. */
static void tcp_pair(int *client, int *server, bool small)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(lfd, 0);
    int one = 1;
    if (small)
        ck_assert_int_eq(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &one, sizeof one), 0);
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    ck_assert_int_eq(listen(lfd, 8), 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(c, 0);
    if (small)
        ck_assert_int_eq(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &one, sizeof one), 0);
    ck_assert_int_eq(ringo_connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
    int s = ringo_accept(lfd, NULL, NULL, 0);
    ck_assert_int_ge(s, 0);
    ringo_close(lfd);
    *client = c;
    *server = s;
}

/* A goroutine that writes data to fd in pieces of 1..chunk bytes (or
 * exactly chunk when fixed), yielding between them, then closes fd. */
struct feeder {
    int fd;
    const char *data;
    size_t n;
    size_t chunk;
    bool fixed;
    bool keep_open;
    ringo_waitgroup wg;
};

static void feeder_run(void *arg)
{
    struct feeder *f = arg;
    size_t off = 0, k = 0;
    while (off < f->n) {
        size_t c = f->fixed ? f->chunk : 1 + (k++ * 5) % f->chunk;
        if (c > f->n - off)
            c = f->n - off;
        ck_assert_int_eq(ringo_write_all(f->fd, f->data + off, c), (ssize_t)c);
        off += c;
        ringo_yield();
    }
    if (!f->keep_open)
        ck_assert_int_eq(ringo_close(f->fd), 0);
    ringo_waitgroup_done(&f->wg);
}

static void feed(struct feeder *f)
{
    ringo_waitgroup_add(&f->wg, 1);
    ck_assert_int_gt(ringo_go(feeder_run, f), 0);
}

/* A goroutine that reads fd to its end in reads of at most chunk bytes,
 * yielding between them (a slow reader), and checks the bytes against
 * pat(); got counts them. */
struct drain {
    int fd;
    size_t chunk;
    size_t got;
    ringo_waitgroup wg;
};

static void drain_run(void *arg)
{
    struct drain *d = arg;
    char buf[4096];
    size_t chunk = d->chunk < sizeof buf ? d->chunk : sizeof buf;
    for (;;) {
        ssize_t k = ringo_read(d->fd, buf, chunk);
        ck_assert_int_ge(k, 0);
        if (k == 0)
            break;
        for (ssize_t i = 0; i < k; i++)
            ck_assert_int_eq((unsigned char)buf[i], pat(d->got + (size_t)i));
        d->got += (size_t)k;
        ringo_yield();
    }
    ringo_waitgroup_done(&d->wg);
}

static void drain(struct drain *d)
{
    ringo_waitgroup_add(&d->wg, 1);
    ck_assert_int_gt(ringo_go(drain_run, d), 0);
}

static void expect_line(ringo_reader *r, const char *want)
{
    const char *line = NULL;
    ssize_t n = ringo_reader_read_until(r, '\n', &line);
    ck_assert_int_eq(n, (ssize_t)strlen(want));
    ck_assert(memcmp(line, want, (size_t)n) == 0);
}

/* ------------------------------------------------------------------ */
/* reader */

/* Lines arrive split across reads, in pieces of 1..3 bytes; the last
 * line has no delimiter and comes back without it, then 0. */
static void main_lines_split(void *arg)
{
    (void)arg;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    static const char text[] = "hello\nworld\n\nPING\r\nlast";
    struct feeder f = { .fd = fds[1], .data = text, .n = sizeof text - 1, .chunk = 3 };
    feed(&f);
    ringo_reader *r = ringo_reader_new(fds[0], 4, 64);
    ck_assert_ptr_nonnull(r);
    expect_line(r, "hello\n");
    expect_line(r, "world\n");
    expect_line(r, "\n");
    expect_line(r, "PING\r\n");
    expect_line(r, "last");
    const char *line;
    ck_assert_int_eq(ringo_reader_read_until(r, '\n', &line), 0);
    ck_assert_int_eq(ringo_reader_read_until(r, '\n', &line), 0);
    ringo_waitgroup_wait(&f.wg);
    ringo_reader_free(r);
    ringo_close(fds[0]);
}

START_TEST(lines_split_across_reads)
{
    RUN(main_lines_split, NULL, nprocs_param);
}
END_TEST

/* Every line length from 1 to max, at initial sizes that put the
 * delimiter at each position of the buffer, fed in fixed pieces of each
 * size from 1 to 9: every line comes back whole and in order. */
static void main_line_edges(void *arg)
{
    (void)arg;
    enum { MAXLINE = 16 };
    char text[MAXLINE * (MAXLINE + 1) / 2 * 2];
    size_t n = 0;
    for (int rep = 0; rep < 2; rep++)
        for (size_t len = 1; len <= MAXLINE; len++) {
            for (size_t i = 0; i + 1 < len; i++)
                text[n++] = (char)('a' + (len + i) % 26);
            text[n++] = '\n';
        }
    static const size_t sizes[] = { 1, 2, 3, 4, 5, 7, 8, 16 };
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (size_t chunk = 1; chunk <= 9; chunk++) {
            int fds[2];
            ck_assert_int_eq(pipe(fds), 0);
            struct feeder f = { .fd = fds[1], .data = text, .n = n, .chunk = chunk,
                                .fixed = true };
            feed(&f);
            ringo_reader *r = ringo_reader_new(fds[0], sizes[si], MAXLINE);
            ck_assert_ptr_nonnull(r);
            size_t off = 0;
            const char *line;
            ssize_t k;
            while ((k = ringo_reader_read_until(r, '\n', &line)) > 0) {
                ck_assert_int_le(k, MAXLINE);
                ck_assert(memcmp(line, text + off, (size_t)k) == 0);
                ck_assert_int_eq(line[k - 1], '\n');
                off += (size_t)k;
            }
            ck_assert_int_eq(k, 0);
            ck_assert_uint_eq(off, n);
            ringo_waitgroup_wait(&f.wg);
            ringo_reader_free(r);
            ringo_close(fds[0]);
        }
}

START_TEST(line_at_buffer_edges)
{
    RUN(main_line_edges, NULL, nprocs_param);
}
END_TEST

/* A line longer than max fails with -EMSGSIZE, consuming nothing; peek
 * beyond max fails at once; the reader stays usable: a plain read drains
 * the long line's start and the following lines come back. */
static void main_max_limit(void *arg)
{
    (void)arg;
    int c, s;
    tcp_pair(&c, &s, false);
    static const char text[] = "0123456789abcdefXYZ\nok\n";
    ck_assert_int_eq(ringo_write_all(c, text, sizeof text - 1), sizeof text - 1);
    ringo_reader *r = ringo_reader_new(s, 4, 16);
    ck_assert_ptr_nonnull(r);
    const char *line = NULL;
    ck_assert_int_eq(ringo_reader_read_until(r, '\n', &line), -EMSGSIZE);
    ck_assert_uint_eq(ringo_reader_buffered(r), 16);
    ck_assert_int_eq(ringo_reader_read_until(r, '\n', &line), -EMSGSIZE);
    ck_assert_int_eq(ringo_reader_peek(r, 17, &line), -EMSGSIZE);
    ck_assert_int_eq(ringo_reader_peek(r, 16, &line), 16);
    ck_assert(memcmp(line, "0123456789abcdef", 16) == 0);
    char buf[32];
    ck_assert_int_eq(ringo_reader_read(r, buf, sizeof buf), 16);
    ck_assert(memcmp(buf, "0123456789abcdef", 16) == 0);
    expect_line(r, "XYZ\n");
    expect_line(r, "ok\n");
    ck_assert_int_eq(ringo_close(c), 0);
    ck_assert_int_eq(ringo_reader_read_until(r, '\n', &line), 0);
    ringo_reader_free(r);
    ringo_close(s);
}

START_TEST(max_limit)
{
    RUN(main_max_limit, NULL, nprocs_param);
}
END_TEST

/* read_full gathers n bytes over many small writes; at the end of the
 * stream it returns the short count, then 0.  One larger than max goes
 * straight into the caller's memory, over TCP. */
static void main_read_full(void *arg)
{
    (void)arg;
    enum { N = 1000 };
    char *data = malloc(N);
    for (size_t i = 0; i < N; i++)
        data[i] = (char)pat(i);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    struct feeder f = { .fd = fds[1], .data = data, .n = N, .chunk = 7 };
    feed(&f);
    ringo_reader *r = ringo_reader_new(fds[0], 16, 512);
    ck_assert_ptr_nonnull(r);
    char buf[300];
    for (size_t off = 0; off < 900; off += 300) {
        ck_assert_int_eq(ringo_reader_read_full(r, buf, 300), 300);
        ck_assert(memcmp(buf, data + off, 300) == 0);
    }
    ck_assert_int_eq(ringo_reader_read_full(r, buf, 300), 100);
    ck_assert(memcmp(buf, data + 900, 100) == 0);
    ck_assert_int_eq(ringo_reader_read_full(r, buf, 300), 0);
    ck_assert_int_eq(ringo_reader_read_full(r, buf, 0), 0);
    ringo_waitgroup_wait(&f.wg);
    ringo_reader_free(r);
    ringo_close(fds[0]);

    /* n > max over TCP: first what is buffered, then the rest directly.
     * The kernel's default buffers: with the smallest ones a loopback
     * connection's receive window closes and waits for the sender's
     * zero-window probe (200 ms, then doubling), which says nothing about
     * the reader and, on a loaded machine, can outlast the test. */
    enum { BIG = 300000 };
    char *big = malloc(BIG), *got = malloc(BIG + 1);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)pat(i);
    int c, s;
    tcp_pair(&c, &s, false);
    struct feeder g = { .fd = c, .data = big, .n = BIG, .chunk = 5000 };
    feed(&g);
    r = ringo_reader_new(s, 64, 128);
    ck_assert_int_eq(ringo_reader_read_full(r, got, 10), 10);
    ck_assert_int_eq(ringo_reader_read_full(r, got + 10, BIG - 10), BIG - 10);
    ck_assert(memcmp(got, big, BIG) == 0);
    ck_assert_int_eq(ringo_reader_read_full(r, got, BIG), 0);
    ringo_waitgroup_wait(&g.wg);
    ringo_reader_free(r);
    ringo_close(s);
    free(big);
    free(got);
    free(data);
}

START_TEST(read_full_many_writes)
{
    RUN(main_read_full, NULL, nprocs_param);
}
END_TEST

/* End of file on each call, with and without something buffered. */
static void main_eof(void *arg)
{
    (void)arg;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(ringo_close(fds[1]), 0);
    ringo_reader *r = ringo_reader_new(fds[0], 0, 0); /* defaults */
    ck_assert_ptr_nonnull(r);
    char buf[8];
    const char *p;
    ck_assert_int_eq(ringo_reader_read(r, buf, sizeof buf), 0);
    ck_assert_int_eq(ringo_reader_read_until(r, '\n', &p), 0);
    ck_assert_int_eq(ringo_reader_peek(r, 4, &p), 0);
    ck_assert_int_eq(ringo_reader_read_full(r, buf, 4), 0);
    ck_assert_uint_eq(ringo_reader_buffered(r), 0);
    ringo_reader_free(r);
    ringo_close(fds[0]);

    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(ringo_write(fds[1], "abc", 3), 3);
    ck_assert_int_eq(ringo_close(fds[1]), 0);
    r = ringo_reader_new(fds[0], 2, 8);
    ck_assert_int_eq(ringo_reader_peek(r, 5, &p), 3); /* what there is */
    ck_assert(memcmp(p, "abc", 3) == 0);
    ck_assert_uint_eq(ringo_reader_buffered(r), 3);
    ck_assert_int_eq(ringo_reader_read(r, buf, 1), 1);
    ck_assert_int_eq(ringo_reader_read_full(r, buf, 4), 2);
    ck_assert(memcmp(buf, "bc", 2) == 0);
    ck_assert_int_eq(ringo_reader_read(r, buf, sizeof buf), 0);
    ringo_reader_free(r);
    ringo_close(fds[0]);
}

START_TEST(end_of_file)
{
    RUN(main_eof, NULL, nprocs_param);
}
END_TEST

/* Peek does not consume, waits for the bytes it lacks, and grows the
 * buffer up to max. */
struct later { int fd; const char *s; atomic_int go; ringo_waitgroup done; };

/* l is on main_peek's stack, which waits for done before it returns. */
static void later_write(void *arg)
{
    struct later *l = arg;
    while (!atomic_load(&l->go))
        ringo_yield();
    ringo_sleep(2 * MS);
    size_t n = strlen(l->s);
    ck_assert_int_eq(ringo_write_all(l->fd, l->s, n), (ssize_t)n);
    ringo_waitgroup_done(&l->done);
}

static void main_peek(void *arg)
{
    (void)arg;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ringo_reader *r = ringo_reader_new(fds[0], 4, 32);
    ck_assert_int_eq(ringo_write(fds[1], "hello", 5), 5);
    const char *p;
    ck_assert_int_eq(ringo_reader_peek(r, 2, &p), 2);
    ck_assert(memcmp(p, "he", 2) == 0);
    ck_assert_int_eq(ringo_reader_peek(r, 0, &p), 0);
    struct later l = { .fd = fds[1], .s = " world", .done = RINGO_WAITGROUP_INIT };
    ringo_waitgroup_add(&l.done, 1);
    ck_assert_int_gt(ringo_go(later_write, &l), 0);
    atomic_store(&l.go, 1);
    ck_assert_int_eq(ringo_reader_peek(r, 11, &p), 11); /* waits for the rest */
    ck_assert(memcmp(p, "hello world", 11) == 0);
    ringo_waitgroup_wait(&l.done);
    ck_assert_uint_eq(ringo_reader_buffered(r), 11);
    char buf[16];
    ck_assert_int_eq(ringo_reader_read(r, buf, 5), 5);
    ck_assert(memcmp(buf, "hello", 5) == 0);
    ck_assert_int_eq(ringo_reader_peek(r, 6, &p), 6);
    ck_assert(memcmp(p, " world", 6) == 0);
    ck_assert_int_eq(ringo_reader_read(r, buf, sizeof buf), 6);
    ck_assert(memcmp(buf, " world", 6) == 0);
    ck_assert_uint_eq(ringo_reader_buffered(r), 0);
    ringo_reader_free(r);
    /* growth to exactly a power of two of the initial size */
    r = ringo_reader_new(fds[0], 2, 64);
    ck_assert_int_eq(ringo_write(fds[1], "0123456789abcdefghijklmnopqrstuvwxyz", 36), 36);
    ck_assert_int_eq(ringo_reader_peek(r, 8, &p), 8);
    ck_assert(memcmp(p, "01234567", 8) == 0);
    ck_assert_int_eq(ringo_reader_read_full(r, buf, 16), 16);
    ck_assert(memcmp(buf, "0123456789abcdef", 16) == 0);
    ck_assert_int_eq(ringo_reader_peek(r, 20, &p), 20);
    ck_assert(memcmp(p, "ghijklmnopqrstuvwxyz", 20) == 0);
    ringo_reader_free(r);
    ringo_close(fds[0]);
    ringo_close(fds[1]);
}

START_TEST(peek)
{
    RUN(main_peek, NULL, nprocs_param);
}
END_TEST

/* ringo_reader_read: from the buffer without I/O when it holds bytes;
 * one read otherwise; straight into the caller's memory when the buffer
 * is empty and the caller's is at least as large (nothing buffered). */
static void main_read(void *arg)
{
    (void)arg;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ringo_reader *r = ringo_reader_new(fds[0], 8, 8);
    ck_assert_int_eq(ringo_write(fds[1], "abcdef", 6), 6);
    char buf[32];
    ck_assert_int_eq(ringo_reader_read(r, buf, 2), 2);
    ck_assert_uint_eq(ringo_reader_buffered(r), 4);
    ck_assert_int_eq(ringo_write(fds[1], "ghij", 4), 4);
    ck_assert_int_eq(ringo_reader_read(r, buf, sizeof buf), 4); /* only the buffer */
    ck_assert(memcmp(buf, "cdef", 4) == 0);
    ck_assert_int_eq(ringo_reader_read(r, buf, sizeof buf), 4);
    ck_assert(memcmp(buf, "ghij", 4) == 0);
    ck_assert_int_eq(ringo_write(fds[1], "0123456789", 10), 10);
    ck_assert_int_eq(ringo_reader_read(r, buf, 10), 10); /* direct */
    ck_assert(memcmp(buf, "0123456789", 10) == 0);
    ck_assert_uint_eq(ringo_reader_buffered(r), 0);
    ck_assert_int_eq(ringo_reader_read(r, buf, 0), 0);
    /* drained to the very end of the buffer, the next fill starts over */
    ck_assert_int_eq(ringo_write(fds[1], "01234567", 8), 8);
    ck_assert_int_eq(ringo_reader_read(r, buf, 4), 4);
    ck_assert_int_eq(ringo_reader_read(r, buf, 4), 4);
    ck_assert(memcmp(buf, "4567", 4) == 0);
    ck_assert_int_eq(ringo_write(fds[1], "89", 2), 2);
    ck_assert_int_eq(ringo_reader_read(r, buf, 4), 2);
    ck_assert(memcmp(buf, "89", 2) == 0);
    ringo_reader_free(r);
    ringo_close(fds[0]);
    ringo_close(fds[1]);
}

START_TEST(read_buffered_and_direct)
{
    RUN(main_read, NULL, nprocs_param);
}
END_TEST

/* A reader call cut short by the deadline consumes nothing: what was
 * read stays buffered and the retry returns all of it. */
static void main_reader_deadline(void *arg)
{
    (void)arg;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ringo_reader *r = ringo_reader_new(fds[0], 4, 64);
    const char *p;
    char buf[16];
    ck_assert_int_eq(ringo_write(fds[1], "partial", 7), 7);
    ringo_deadline_set(ringo_now() + 20 * MS);
    ck_assert_int_eq(ringo_reader_read_until(r, '\n', &p), -ETIMEDOUT);
    ck_assert_uint_eq(ringo_reader_buffered(r), 7);
    ck_assert_int_eq(ringo_reader_peek(r, 10, &p), -ETIMEDOUT);
    ck_assert_int_eq(ringo_reader_read_full(r, buf, 10), -ETIMEDOUT);
    ck_assert_uint_eq(ringo_reader_buffered(r), 7);
    /* served from the buffer: no I/O, so no deadline check */
    ck_assert_int_eq(ringo_reader_peek(r, 3, &p), 3);
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_eq(ringo_write(fds[1], " line\nmore", 10), 10);
    expect_line(r, "partial line\n");
    ck_assert_int_eq(ringo_reader_peek(r, 4, &p), 4);
    ringo_deadline_set(ringo_now() + 20 * MS);
    ck_assert_int_eq(ringo_reader_read_full(r, buf, 6), -ETIMEDOUT);
    ck_assert_uint_eq(ringo_reader_buffered(r), 4);
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_eq(ringo_write(fds[1], "++", 2), 2);
    ck_assert_int_eq(ringo_reader_read_full(r, buf, 6), 6);
    ck_assert(memcmp(buf, "more++", 6) == 0);
    ringo_reader_free(r);
    ringo_close(fds[0]);
    ringo_close(fds[1]);
}

START_TEST(reader_deadline)
{
    RUN(main_reader_deadline, NULL, nprocs_param);
}
END_TEST

/* A goroutine cancelled in read_until leaves the reader to another,
 * which finds the partial line still buffered. */
struct cancelled { ringo_reader *r; atomic_long result; };

static void cancelled_line(void *arg)
{
    struct cancelled *c = arg;
    const char *p;
    atomic_store(&c->result, (long)ringo_reader_read_until(c->r, '\n', &p));
}

static void main_reader_cancel(void *arg)
{
    (void)arg;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    struct cancelled c = { .r = ringo_reader_new(fds[0], 4, 64), .result = 1 };
    ck_assert_int_eq(ringo_write(fds[1], "GET /", 5), 5);
    /* On this proc, so that main reads the reader only while the
     * goroutine is parked: until it has taken the five bytes in, and
     * waits for the rest of the line.  (A while's sleep was not enough:
     * a thread kept off its CPU, the cancel came before the first read.) */
    int64_t id = ringo_go_on(ringo_proc(), cancelled_line, &c);
    ck_assert_int_gt(id, 0);
    for (int i = 0; i < 5000 && ringo_reader_buffered(c.r) < 5; i++)
        ringo_sleep(1 * MS);
    ck_assert_uint_eq(ringo_reader_buffered(c.r), 5);
    ck_assert_int_eq(atomic_load(&c.result), 1);
    ck_assert_int_eq(ringo_cancel(id), 0);
    while (atomic_load(&c.result) == 1)
        ringo_sleep(1 * MS);
    ck_assert_int_eq(atomic_load(&c.result), -ECANCELED);
    ck_assert_uint_eq(ringo_reader_buffered(c.r), 5);
    ck_assert_int_eq(ringo_write(fds[1], " HTTP/1.1\n", 10), 10);
    expect_line(c.r, "GET / HTTP/1.1\n");
    ringo_reader_free(c.r);
    ringo_close(fds[0]);
    ringo_close(fds[1]);
}

START_TEST(reader_cancel)
{
    RUN(main_reader_cancel, NULL, nprocs_param);
}
END_TEST

/* Per-descriptor deadlines, set by another goroutine, interrupt a
 * reader's line and a writer's flush; both keep their bytes, and carry
 * on once the deadline is cleared. */
static void main_fd_deadline(void *arg)
{
    (void)arg;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    struct cancelled c = { .r = ringo_reader_new(fds[0], 4, 64), .result = 1 };
    ck_assert_int_eq(ringo_write(fds[1], "GET /", 5), 5);
    ck_assert_int_gt(ringo_go_on(ringo_proc(), cancelled_line, &c), 0); /* as above */
    for (int i = 0; i < 5000 && ringo_reader_buffered(c.r) < 5; i++)
        ringo_sleep(1 * MS);
    ck_assert_uint_eq(ringo_reader_buffered(c.r), 5);
    ck_assert_int_eq(atomic_load(&c.result), 1);
    ck_assert_int_eq(ringo_fd_deadline_set(fds[0], RINGO_READ, ringo_now()), 0);
    while (atomic_load(&c.result) == 1)
        ringo_sleep(1 * MS);
    ck_assert_int_eq(atomic_load(&c.result), -ETIMEDOUT);
    ck_assert_uint_eq(ringo_reader_buffered(c.r), 5);
    ck_assert_int_eq(ringo_fd_deadline_set(fds[0], RINGO_READ, RINGO_NEVER), 0);
    ck_assert_int_eq(ringo_write(fds[1], " HTTP/1.1\n", 10), 10);
    expect_line(c.r, "GET / HTTP/1.1\n");
    ringo_reader_free(c.r);
    ringo_close(fds[0]);
    ringo_close(fds[1]);

    enum { N = 1 << 18 };
    int cl, sv;
    tcp_pair(&cl, &sv, true);
    char *data = malloc(N);
    for (size_t i = 0; i < N; i++)
        data[i] = (char)pat(i);
    ringo_writer *w = ringo_writer_new(cl, N);
    ck_assert_int_eq(ringo_writer_write(w, data, N), N);
    ck_assert_int_eq(ringo_fd_deadline_set(cl, RINGO_WRITE, ringo_now() + 20 * MS), 0);
    ck_assert_int_eq(ringo_writer_flush(w), -ETIMEDOUT);
    size_t left = ringo_writer_buffered(w);
    ck_assert_uint_gt(left, 0);
    ck_assert_uint_lt(left, N);
    ck_assert_int_eq(ringo_fd_deadline_set(cl, RINGO_WRITE, RINGO_NEVER), 0);
    struct drain d = { .fd = sv, .chunk = 4096 };
    drain(&d);
    ck_assert_int_eq(ringo_writer_flush(w), 0);
    ringo_close(cl);
    ringo_waitgroup_wait(&d.wg);
    ck_assert_uint_eq(d.got, N);
    ringo_writer_free(w);
    ringo_close(sv);
    free(data);
}

START_TEST(fd_deadline)
{
    RUN(main_fd_deadline, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* writer */

/* The next message on a SOCK_SEQPACKET socket, which keeps each write
 * apart: "" when there is none. */
static const char *next_msg(int fd, char *buf, size_t len)
{
    ssize_t n = ringo_recv(fd, buf, len - 1, MSG_DONTWAIT);
    if (n == -EAGAIN)
        n = 0;
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    return buf;
}

/* Every write the writer makes is one message: none until the buffer
 * overflows; a full buffer is written whole; a large write with an empty
 * buffer goes straight out; flush writes the rest, and nothing when there
 * is nothing. */
static void main_writer_counts(void *arg)
{
    (void)arg;
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    char m[64];
    ringo_writer *w = ringo_writer_new(sv[0], 8);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(ringo_writer_write(w, "abc", 3), 3);
    ck_assert_uint_eq(ringo_writer_buffered(w), 3);
    ck_assert_str_eq(next_msg(sv[1], m, sizeof m), "");
    ck_assert_int_eq(ringo_writer_write(w, "defgh", 5), 5); /* fills it exactly */
    ck_assert_uint_eq(ringo_writer_buffered(w), 8);
    ck_assert_str_eq(next_msg(sv[1], m, sizeof m), "");
    ck_assert_int_eq(ringo_writer_write(w, "i", 1), 1);
    ck_assert_str_eq(next_msg(sv[1], m, sizeof m), "abcdefgh");
    ck_assert_str_eq(next_msg(sv[1], m, sizeof m), "");
    ck_assert_uint_eq(ringo_writer_buffered(w), 1);
    ck_assert_int_eq(ringo_writer_write(w, "ABCDEFGHIJKLMNOPQRST", 20), 20);
    ck_assert_str_eq(next_msg(sv[1], m, sizeof m), "iABCDEFG");
    ck_assert_str_eq(next_msg(sv[1], m, sizeof m), "HIJKLMNOPQRST");
    ck_assert_str_eq(next_msg(sv[1], m, sizeof m), "");
    ck_assert_uint_eq(ringo_writer_buffered(w), 0);
    ck_assert_int_eq(ringo_writer_write(w, "xy", 2), 2);
    ck_assert_int_eq(ringo_writer_write(w, "", 0), 0);
    ck_assert_int_eq(ringo_writer_flush(w), 0);
    ck_assert_uint_eq(ringo_writer_buffered(w), 0);
    ck_assert_int_eq(ringo_writer_flush(w), 0);
    ck_assert_str_eq(next_msg(sv[1], m, sizeof m), "xy");
    ck_assert_str_eq(next_msg(sv[1], m, sizeof m), "");
    /* free does not flush */
    ck_assert_int_eq(ringo_writer_write(w, "lost", 4), 4);
    ringo_writer_free(w);
    ck_assert_str_eq(next_msg(sv[1], m, sizeof m), "");
    ringo_close(sv[0]);
    ringo_close(sv[1]);
}

START_TEST(writer_write_counts)
{
    RUN(main_writer_counts, NULL, nprocs_param);
}
END_TEST

/* A flush much larger than the socket buffers, with a slow reader: the
 * writes come back short and the flush carries on until all is out. */
static void main_writer_flush_short(void *arg)
{
    (void)arg;
    enum { N = 1 << 18 };
    int c, s;
    tcp_pair(&c, &s, true);
    struct drain d = { .fd = s, .chunk = 1000 };
    drain(&d);
    ringo_writer *w = ringo_writer_new(c, N);
    char piece[1000];
    for (size_t off = 0; off < N; off += sizeof piece) {
        size_t k = N - off < sizeof piece ? N - off : sizeof piece;
        for (size_t i = 0; i < k; i++)
            piece[i] = (char)pat(off + i);
        ck_assert_int_eq(ringo_writer_write(w, piece, k), (ssize_t)k);
    }
    ck_assert_uint_eq(ringo_writer_buffered(w), N);
    ck_assert_int_eq(ringo_writer_flush(w), 0);
    ck_assert_uint_eq(ringo_writer_buffered(w), 0);
    ringo_writer_free(w);
    ringo_close(c);
    ringo_waitgroup_wait(&d.wg);
    ck_assert_uint_eq(d.got, N);
    ringo_close(s);
}

START_TEST(writer_flush_short_writes)
{
    RUN(main_writer_flush_short, NULL, nprocs_param);
}
END_TEST

/* A flush that times out (nobody reads) keeps what it has not written;
 * with a reader and no deadline the next flush sends exactly the rest:
 * the reader gets every byte once, in order.  A write that needs a flush
 * and cannot make one accepts only what fits. */
static void main_writer_deadline(void *arg)
{
    (void)arg;
    enum { N = 1 << 18 };
    int c, s;
    tcp_pair(&c, &s, true);
    ringo_writer *w = ringo_writer_new(c, N);
    char *data = malloc(N);
    for (size_t i = 0; i < N; i++)
        data[i] = (char)pat(i);
    ck_assert_int_eq(ringo_writer_write(w, data, N - 10), N - 10);
    ringo_deadline_set(ringo_now() + 30 * MS);
    ck_assert_int_eq(ringo_writer_flush(w), -ETIMEDOUT);
    size_t left = ringo_writer_buffered(w);
    ck_assert_uint_gt(left, 0);
    ck_assert_uint_lt(left, N - 10); /* some went out */
    ck_assert_int_eq(ringo_writer_flush(w), -ETIMEDOUT);
    ck_assert_uint_eq(ringo_writer_buffered(w), left);
    /* the last 10 bytes fit: buffered, no I/O, so no deadline check */
    ck_assert_int_eq(ringo_writer_write(w, data + N - 10, 10), 10);
    ck_assert_uint_eq(ringo_writer_buffered(w), left + 10);
    ringo_deadline_set(RINGO_NEVER);
    struct drain d = { .fd = s, .chunk = 4096 };
    drain(&d);
    ck_assert_int_eq(ringo_writer_flush(w), 0);
    ck_assert_uint_eq(ringo_writer_buffered(w), 0);
    ringo_close(c);
    ringo_waitgroup_wait(&d.wg);
    ck_assert_uint_eq(d.got, N);
    ringo_writer_free(w);
    ringo_close(s);
    free(data);
}

START_TEST(writer_deadline_keeps_bytes)
{
    RUN(main_writer_deadline, NULL, nprocs_param);
}
END_TEST

/* A goroutine cancelled in a flush that cannot finish (nobody reads)
 * hands the writer to another, which flushes exactly the rest. */
struct flusher { ringo_writer *w; atomic_long result; };

static void cancelled_flush(void *arg)
{
    struct flusher *f = arg;
    atomic_store(&f->result, (long)ringo_writer_flush(f->w));
}

static void main_writer_cancel(void *arg)
{
    (void)arg;
    enum { N = 1 << 18 };
    int c, s;
    tcp_pair(&c, &s, true);
    char *data = malloc(N);
    for (size_t i = 0; i < N; i++)
        data[i] = (char)pat(i);
    struct flusher f = { .w = ringo_writer_new(c, N), .result = 1 };
    ck_assert_int_eq(ringo_writer_write(f.w, data, N), N);
    /* On this proc, as in main_reader_cancel: until bytes of the flush
     * have reached the other end, and a while more for the write that
     * sent them to end and the next one to block (nobody reads). */
    int64_t id = ringo_go_on(ringo_proc(), cancelled_flush, &f);
    ck_assert_int_gt(id, 0);
    int arrived = 0;
    for (int i = 0; i < 5000 && arrived == 0; i++) {
        ringo_sleep(1 * MS);
        ck_assert_int_eq(ioctl(s, FIONREAD, &arrived), 0);
    }
    ck_assert_int_gt(arrived, 0);
    ringo_sleep(5 * MS);
    ck_assert_int_eq(atomic_load(&f.result), 1); /* blocked: the socket is full */
    ck_assert_int_eq(ringo_cancel(id), 0);
    while (atomic_load(&f.result) == 1)
        ringo_sleep(1 * MS);
    ck_assert_int_eq(atomic_load(&f.result), -ECANCELED);
    size_t left = ringo_writer_buffered(f.w);
    ck_assert_uint_gt(left, 0);
    ck_assert_uint_lt(left, N);
    struct drain d = { .fd = s, .chunk = 4096 };
    drain(&d);
    ck_assert_int_eq(ringo_writer_flush(f.w), 0);
    ringo_close(c);
    ringo_waitgroup_wait(&d.wg);
    ck_assert_uint_eq(d.got, N);
    ringo_writer_free(f.w);
    ringo_close(s);
    free(data);
}

START_TEST(writer_cancel)
{
    RUN(main_writer_cancel, NULL, nprocs_param);
}
END_TEST

/* A write larger than the buffer's room when the flush it needs cannot
 * go out: it accepts what fits (a count below n), and the rest of the
 * stream is intact once the deadline is lifted. */
static void main_writer_partial(void *arg)
{
    (void)arg;
    enum { N = 1 << 18, SIZE = 64 };
    int c, s;
    tcp_pair(&c, &s, true);
    char *data = malloc(N);
    for (size_t i = 0; i < N; i++)
        data[i] = (char)pat(i);
    ringo_writer *w = ringo_writer_new(c, SIZE);
    ck_assert_int_eq(ringo_writer_write(w, data, 10), 10);
    ringo_deadline_set(ringo_now() + 30 * MS);
    /* fills the buffer, flushes, then writes directly until the socket is
     * full and the deadline passes */
    ssize_t k = ringo_writer_write(w, data + 10, N - 10);
    ck_assert_int_gt(k, 0);
    ck_assert_int_lt(k, N - 10);
    /* past the deadline, a write that fits is buffered; one that needs a
     * flush accepts what fits (nothing when the buffer is full) */
    size_t done = 10 + (size_t)k;
    size_t room = SIZE - ringo_writer_buffered(w);
    if (room > 0) {
        ck_assert_int_eq(ringo_writer_write(w, data + done, 1), 1);
        done++;
        room--;
    }
    ssize_t k2 = ringo_writer_write(w, data + done, room + 1);
    if (room > 0) {
        ck_assert_int_eq(k2, (ssize_t)room);
        done += room;
    } else {
        ck_assert_int_eq(k2, -ETIMEDOUT);
    }
    ck_assert_uint_eq(ringo_writer_buffered(w), SIZE);
    ck_assert_int_eq(ringo_writer_flush(w), -ETIMEDOUT);
    ringo_deadline_set(RINGO_NEVER);
    struct drain d = { .fd = s, .chunk = 4096 };
    drain(&d);
    ck_assert_int_eq(ringo_writer_write(w, data + done, N - done), (ssize_t)(N - done));
    ck_assert_int_eq(ringo_writer_flush(w), 0);
    ringo_close(c);
    ringo_waitgroup_wait(&d.wg);
    ck_assert_uint_eq(d.got, N);
    ringo_writer_free(w);
    ringo_close(s);
    free(data);
}

START_TEST(writer_partial_write)
{
    RUN(main_writer_partial, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* ringo_writev_all, ringo_send_all */

/* IOV_MAX iovecs of 0..2047 bytes over a small socket buffer, with a slow
 * reader: partial writes end inside iovecs; every byte arrives once, in
 * order, and the caller's array is untouched. */
static void main_writev_all(void *arg)
{
    (void)arg;
    enum { CNT = IOV_MAX };
    static struct iovec iov[CNT], copy[CNT];
    size_t total = 0;
    for (int i = 0; i < CNT; i++)
        total += i % 7 == 3 ? 0 : (size_t)(i * 37) % 2048;
    char *data = malloc(total);
    for (size_t i = 0; i < total; i++)
        data[i] = (char)pat(i);
    size_t off = 0;
    for (int i = 0; i < CNT; i++) {
        size_t len = i % 7 == 3 ? 0 : (size_t)(i * 37) % 2048;
        iov[i].iov_base = data + off;
        iov[i].iov_len = len;
        off += len;
    }
    memcpy(copy, iov, sizeof iov);
    int c, s;
    tcp_pair(&c, &s, true);
    struct drain d = { .fd = s, .chunk = 3000 };
    drain(&d);
    ck_assert_int_eq(ringo_writev_all(c, iov, CNT), (ssize_t)total);
    ck_assert(memcmp(copy, iov, sizeof iov) == 0);
    ringo_close(c);
    ringo_waitgroup_wait(&d.wg);
    ck_assert_uint_eq(d.got, total);
    ringo_close(s);

    /* edge cases: nothing to write, zero-length entries only, bad counts */
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(ringo_writev_all(fds[1], NULL, 0), 0);
    struct iovec empty[3] = { { data, 0 }, { data, 0 }, { data, 0 } };
    ck_assert_int_eq(ringo_writev_all(fds[1], empty, 3), 0);
    struct iovec some[3] = { { "ab", 2 }, { data, 0 }, { "c", 1 } };
    ck_assert_int_eq(ringo_writev_all(fds[1], some, 3), 3);
    char buf[4];
    ck_assert_int_eq(ringo_read(fds[0], buf, sizeof buf), 3);
    ck_assert(memcmp(buf, "abc", 3) == 0);
    ck_assert_int_eq(ringo_writev_all(fds[1], iov, -1), -EINVAL);
    ck_assert_int_eq(ringo_writev_all(fds[1], iov, IOV_MAX + 1), -EINVAL);
    ck_assert_int_eq(ringo_writev_all(fds[1], NULL, 1), -EINVAL);
    struct iovec huge[2] = { { data, SSIZE_MAX }, { data, 2 } };
    ck_assert_int_eq(ringo_writev_all(fds[1], huge, 2), -EINVAL);
    ck_assert_int_eq(ringo_writev_all(-1, some, 3), -EBADF);
    ringo_close(fds[0]);
    ringo_close(fds[1]);
    free(data);
}

START_TEST(writev_all_partial)
{
    RUN(main_writev_all, NULL, nprocs_param);
}
END_TEST

/* A megabyte through a small socket buffer to a slow reader; then a peer
 * that has gone gives -EPIPE (MSG_NOSIGNAL: no signal). */
static void main_send_all(void *arg)
{
    (void)arg;
    enum { N = 1 << 18 };
    char *data = malloc(N);
    for (size_t i = 0; i < N; i++)
        data[i] = (char)pat(i);
    int c, s;
    tcp_pair(&c, &s, true);
    struct drain d = { .fd = s, .chunk = 2000 };
    drain(&d);
    ck_assert_int_eq(ringo_send_all(c, data, N, MSG_NOSIGNAL), N);
    ck_assert_int_eq(ringo_send_all(c, data, 0, MSG_NOSIGNAL), 0);
    ck_assert_int_eq(shutdown(c, SHUT_WR), 0);
    ringo_waitgroup_wait(&d.wg);
    ck_assert_uint_eq(d.got, N);
    ringo_close(s);
    ssize_t r = 0;
    for (int i = 0; i < 100 && r >= 0; i++) /* the RST may take a moment */
        r = ringo_send_all(c, data, 1000, MSG_NOSIGNAL);
    ck_assert(r == -EPIPE || r == -ECONNRESET);
    ringo_close(c);

    /* nobody reads: the deadline ends both loops */
    tcp_pair(&c, &s, true);
    ringo_deadline_set(ringo_now() + 20 * MS);
    ck_assert_int_eq(ringo_send_all(c, data, N, MSG_NOSIGNAL), -ETIMEDOUT);
    struct iovec v[2] = { { data, N / 2 }, { data + N / 2, N / 2 } };
    ck_assert_int_eq(ringo_writev_all(c, v, 2), -ETIMEDOUT);
    /* with nothing to write, the checks on entry all the same */
    struct iovec empty = { data, 0 };
    ck_assert_int_eq(ringo_write_all(c, data, 0), -ETIMEDOUT);
    ck_assert_int_eq(ringo_send_all(c, data, 0, MSG_NOSIGNAL), -ETIMEDOUT);
    ck_assert_int_eq(ringo_writev_all(c, NULL, 0), -ETIMEDOUT);
    ck_assert_int_eq(ringo_writev_all(c, &empty, 1), -ETIMEDOUT);
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_eq(ringo_write_all(c, data, 0), 0);
    ck_assert_int_eq(ringo_fd_deadline_set(c, RINGO_WRITE, ringo_now() - 1), 0);
    ck_assert_int_eq(ringo_write_all(c, data, 0), -ETIMEDOUT);
    ck_assert_int_eq(ringo_send_all(c, data, 0, MSG_NOSIGNAL), -ETIMEDOUT);
    ck_assert_int_eq(ringo_writev_all(c, &empty, 1), -ETIMEDOUT);
    ck_assert_int_eq(ringo_fd_deadline_set(c, RINGO_WRITE, RINGO_NEVER), 0);
    ck_assert_int_eq(ringo_writev_all(c, &empty, 1), 0);
    ringo_close(c);
    ringo_close(s);
    free(data);
}

START_TEST(send_all)
{
    RUN(main_send_all, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* bad arguments, and outside the runtime */

START_TEST(bad_arguments)
{
    errno = 0;
    ck_assert_ptr_null(ringo_reader_new(-1, 16, 16));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(ringo_reader_new(0, 16, 8));
    ck_assert_int_eq(errno, EINVAL);
    /* The default size is no more than a max below it. */
    ringo_reader *small = ringo_reader_new(0, 0, 1024);
    ck_assert_ptr_nonnull(small);
    ringo_reader_free(small);
    errno = 0;
    ck_assert_ptr_null(ringo_reader_new(0, 16, (size_t)SSIZE_MAX + 1));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(ringo_writer_new(-1, 16));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(ringo_writer_new(1, (size_t)SSIZE_MAX + 1));
    ck_assert_int_eq(errno, EINVAL);
    char buf[4];
    const char *p;
    ringo_reader *r0 = ringo_reader_new(0, 16, 16);
    ck_assert_ptr_nonnull(r0);
    ck_assert_int_eq(ringo_reader_read_full(r0, buf, (size_t)SSIZE_MAX + 1), -EINVAL);
    ringo_reader_free(r0);
    ck_assert_int_eq(ringo_reader_read(NULL, buf, 4), -EINVAL);
    ck_assert_int_eq(ringo_reader_read_full(NULL, buf, 4), -EINVAL);
    ck_assert_int_eq(ringo_reader_read_until(NULL, '\n', &p), -EINVAL);
    ck_assert_int_eq(ringo_reader_peek(NULL, 1, &p), -EINVAL);
    ck_assert_uint_eq(ringo_reader_buffered(NULL), 0);
    ck_assert_int_eq(ringo_writer_write(NULL, buf, 4), -EINVAL);
    ck_assert_int_eq(ringo_writer_flush(NULL), -EINVAL);
    ck_assert_uint_eq(ringo_writer_buffered(NULL), 0);
    ringo_reader_free(NULL);
    ringo_writer_free(NULL);
}
END_TEST

static void plain_calls(void)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ringo_writer *w = ringo_writer_new(fds[1], 4);
    ringo_reader *r = ringo_reader_new(fds[0], 4, 32);
    ck_assert_int_eq(ringo_writer_write(w, "one\ntwo\n", 8), 8);
    ck_assert_int_eq(ringo_writer_write(w, "x", 1), 1);
    ck_assert_int_eq(ringo_writer_flush(w), 0);
    expect_line(r, "one\n");
    expect_line(r, "two\n");
    struct iovec v[2] = { { "y\n", 2 }, { "z", 1 } };
    ck_assert_int_eq(ringo_writev_all(fds[1], v, 2), 3);
    expect_line(r, "xy\n");
    ringo_writer_free(w);
    close(fds[1]);
    char buf[4];
    ck_assert_int_eq(ringo_reader_read_full(r, buf, 4), 1);
    ck_assert_int_eq(buf[0], 'z');
    ringo_reader_free(r);
    close(fds[0]);

    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(ringo_send_all(sv[0], "hi", 2, 0), 2);
    ck_assert_int_eq(read(sv[1], buf, sizeof buf), 2);
    close(sv[0]);
    close(sv[1]);
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

static Suite *suite(void)
{
    Suite *s = suite_create("bufio");
    TCase *tc = tcase_create("bufio");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, lines_split_across_reads);
    tcase_add_test(tc, line_at_buffer_edges);
    tcase_add_test(tc, max_limit);
    tcase_add_test(tc, read_full_many_writes);
    tcase_add_test(tc, end_of_file);
    tcase_add_test(tc, peek);
    tcase_add_test(tc, read_buffered_and_direct);
    tcase_add_test(tc, reader_deadline);
    tcase_add_test(tc, reader_cancel);
    tcase_add_test(tc, fd_deadline);
    tcase_add_test(tc, writer_write_counts);
    tcase_add_test(tc, writer_flush_short_writes);
    tcase_add_test(tc, writer_deadline_keeps_bytes);
    tcase_add_test(tc, writer_cancel);
    tcase_add_test(tc, writer_partial_write);
    tcase_add_test(tc, writev_all_partial);
    tcase_add_test(tc, send_all);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, plain_fallback);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    skip_without_io_uring();
    return run_per_procs(suite, &nprocs_param);
}
