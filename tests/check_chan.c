/*
 * check_chan.c — channels, select and timer channels, each rule of Go's
 * semantics as its own test, run on 1 and 2 procs; classic programs (prime
 * sieve, a 10,000-goroutine token pipeline, many-to-many with a checksum);
 * a randomized comparison against a sequential model; plain threads;
 * deadlock detection.
 */
#include "testutil.h"

#include <sched.h>

#include "chan.h" /* ringo_chan's reference count; internal.h: tls_proc, timer_promised */

static unsigned nprocs_param = 1;

/* Spawn on the "other" proc when there are two, to cross procs. */
static int64_t go_other(void (*fn)(void *), void *arg)
{
    return ringo_go_on((ringo_proc() + 1) % ringo_nprocs(), fn, arg);
}

/* ------------------------------------------------------------------ */
/* make / len / cap / refs */

START_TEST(make_rejects_and_reports)
{
    errno = 0;
    ck_assert_ptr_null(ringo_chan_make(65537, 1));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(ringo_chan_make(1 << 16, SIZE_MAX / 2));
    ck_assert_int_eq(errno, ENOMEM);
    ringo_chan *c = ringo_chan_make(65536, 2);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(ringo_chan_cap(c), 2);
    ck_assert_uint_eq(ringo_chan_len(c), 0);
    ck_assert_ptr_eq(ringo_chan_retain(c), c);
    ringo_chan_release(c);
    ringo_chan_release(c);
    ck_assert_uint_eq(ringo_chan_len(NULL), 0);
    ck_assert_uint_eq(ringo_chan_cap(NULL), 0);
    ck_assert_int_eq(ringo_chan_close(NULL), -EINVAL);
    ringo_chan_release(NULL);
    /* Elements of size 0 take no room: any capacity, as Go's chan
     * struct{} (the buffer of 2^44 bytes could not be had). */
    c = ringo_chan_make(0, (size_t)1 << 44);
    ck_assert_ptr_nonnull(c);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ringo_chan_try_send(c, NULL), 0);
    ck_assert_uint_eq(ringo_chan_len(c), 3);
    ck_assert_int_eq(ringo_chan_try_recv(c, NULL), 0);
    ck_assert_uint_eq(ringo_chan_len(c), 2);
    ringo_chan_release(c);
}
END_TEST

/* A send of NULL where a value is due is -EINVAL whenever it is made, as
 * from ringo_select: not the goroutine's passed deadline or its cancel
 * first. */
static void main_bad_send(void *arg)
{
    (void)arg;
    ringo_chan *c = ringo_chan_make(sizeof(int), 1);
    ck_assert_ptr_nonnull(c);
    ringo_deadline_set(ringo_now() - 1);
    ck_assert_int_eq(ringo_chan_send(c, NULL), -EINVAL);
    int v = 1;
    ck_assert_int_eq(ringo_chan_send(c, &v), -ETIMEDOUT); /* the deadline, then */
    ringo_deadline_set(RINGO_NEVER);
    ringo_chan_release(c);
}

START_TEST(bad_send_is_einval_past_the_deadline)
{
    RUN(main_bad_send, NULL, nprocs_param);
}
END_TEST

/* Buffered FIFO, try ops, len, close drains then -EPIPE with zeroed elem. */
START_TEST(buffered_fifo_and_close_rules)
{
    ringo_chan *c = ringo_chan_make(sizeof(int), 3);
    for (int i = 1; i <= 3; i++)
        ck_assert_int_eq(ringo_chan_try_send(c, &i), 0);
    int x = 99;
    ck_assert_int_eq(ringo_chan_try_send(c, &x), -EAGAIN);
    ck_assert_uint_eq(ringo_chan_len(c), 3);
    ck_assert_int_eq(ringo_chan_try_recv(c, &x), 0);
    ck_assert_int_eq(x, 1);
    ck_assert_int_eq(ringo_chan_close(c), 0);
    ck_assert_int_eq(ringo_chan_close(c), -EPIPE);       /* close of closed */
    ck_assert_int_eq(ringo_chan_try_send(c, &x), -EPIPE); /* send on closed */
    ck_assert_int_eq(ringo_chan_send(c, &x), -EPIPE);
    ck_assert_int_eq(ringo_chan_recv(c, &x), 0);          /* drains first */
    ck_assert_int_eq(x, 2);
    ck_assert_int_eq(ringo_chan_try_recv(c, &x), 0);
    ck_assert_int_eq(x, 3);
    x = 77;
    ck_assert_int_eq(ringo_chan_recv(c, &x), -EPIPE);
    ck_assert_int_eq(x, 0);                                /* zero-filled */
    x = 77;
    ck_assert_int_eq(ringo_chan_try_recv(c, &x), -EPIPE);
    ck_assert_int_eq(x, 0);
    ck_assert_int_eq(ringo_chan_recv(c, NULL), -EPIPE);    /* discard */
    ringo_chan_release(c);
}
END_TEST

START_TEST(nil_channel_try_ops)
{
    int x = 1;
    ck_assert_int_eq(ringo_chan_try_send(NULL, &x), -EAGAIN);
    ck_assert_int_eq(ringo_chan_try_recv(NULL, &x), -EAGAIN);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Unbuffered rendezvous */

static ringo_chan *uc;
static atomic_int stage;

static void rendezvous_sender(void *arg)
{
    (void)arg;
    int v = 42;
    atomic_store(&stage, 1);
    ck_assert_int_eq(ringo_chan_send(uc, &v), 0);
    /* the send completed only because the receiver took it */
    ck_assert_int_eq(atomic_load(&stage), 2);
    atomic_store(&stage, 3);
}

static void rendezvous_main(void *arg)
{
    (void)arg;
    uc = ringo_chan_make(sizeof(int), 0);
    int x = 0;
    ck_assert_int_eq(ringo_chan_try_send(uc, &x), -EAGAIN); /* no receiver */
    ck_assert_int_eq(ringo_chan_try_recv(uc, &x), -EAGAIN); /* no sender */
    go_other(rendezvous_sender, NULL);
    while (atomic_load(&stage) != 1)
        ringo_sleep(100 * US);
    ringo_sleep(2 * MS); /* the sender is blocked: nobody has received */
    ck_assert_int_eq(atomic_load(&stage), 1);
    atomic_store(&stage, 2);
    ck_assert_int_eq(ringo_chan_recv(uc, &x), 0);
    ck_assert_int_eq(x, 42);
    while (atomic_load(&stage) != 3)
        ringo_sleep(100 * US);
    ringo_chan_release(uc);
}

START_TEST(unbuffered_rendezvous)
{
    atomic_store(&stage, 0);
    RUN(rendezvous_main, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Close wakes every blocked receiver and sender */

static ringo_chan *cc;
static atomic_int woke_epipe;

static void blocked_recv(void *arg)
{
    (void)arg;
    long v = 5;
    if (ringo_chan_recv(cc, &v) == -EPIPE && v == 0)
        atomic_fetch_add(&woke_epipe, 1);
}

static void blocked_send(void *arg)
{
    (void)arg;
    long v = 5;
    if (ringo_chan_send(cc, &v) == -EPIPE)
        atomic_fetch_add(&woke_epipe, 1);
}

static void close_wakes_main(void *arg)
{
    long cap = (long)arg;
    cc = ringo_chan_make(sizeof(long), (size_t)cap);
    for (int i = 0; i < 10; i++)
        go_other(blocked_recv, NULL);
    ringo_sleep(5 * MS);
    ck_assert_int_eq(ringo_chan_close(cc), 0);
    while (ringo_count() > 1)
        ringo_sleep(1 * MS);
    ringo_chan_release(cc);

    cc = ringo_chan_make(sizeof(long), (size_t)cap);
    long fill = 1;
    for (long i = 0; i < cap; i++)
        ringo_chan_send(cc, &fill);
    for (int i = 0; i < 10; i++)
        go_other(blocked_send, NULL);
    ringo_sleep(5 * MS);
    ck_assert_int_eq(ringo_chan_close(cc), 0);
    while (ringo_count() > 1)
        ringo_sleep(1 * MS);
    ringo_chan_release(cc);
}

START_TEST(close_wakes_everyone)
{
    atomic_store(&woke_epipe, 0);
    RUN(close_wakes_main, (void *)0L, nprocs_param);
    ck_assert_int_eq(atomic_load(&woke_epipe), 20);
    atomic_store(&woke_epipe, 0);
    RUN(close_wakes_main, (void *)2L, nprocs_param);
    ck_assert_int_eq(atomic_load(&woke_epipe), 20);
}
END_TEST

/* ------------------------------------------------------------------ */
/* FIFO service of blocked senders and receivers */

static ringo_chan *fc;
static int served[8];
static atomic_int nserved;

static void fifo_sender(void *arg)
{
    long id = (long)arg;
    ringo_chan_send(fc, &id);
}

static void fifo_receiver(void *arg)
{
    long id = (long)arg;
    long v;
    ringo_chan_recv(fc, &v);
    served[atomic_fetch_add(&nserved, 1)] = (int)id;
}

static void fifo_main(void *arg)
{
    (void)arg;
    fc = ringo_chan_make(sizeof(long), 0);
    /* senders block in order 0..7 (each waits until the previous is queued) */
    for (long i = 0; i < 8; i++) {
        ringo_go_on(ringo_proc(), fifo_sender, (void *)i);
        ringo_sleep(200 * US);
    }
    for (long want = 0; want < 8; want++) {
        long v = -1;
        ck_assert_int_eq(ringo_chan_recv(fc, &v), 0);
        ck_assert_int_eq(v, want);
    }
    /* receivers likewise */
    atomic_store(&nserved, 0);
    for (long i = 0; i < 8; i++) {
        ringo_go_on(ringo_proc(), fifo_receiver, (void *)i);
        ringo_sleep(200 * US);
    }
    for (long i = 0; i < 8; i++) {
        ringo_chan_send(fc, &i);
        ringo_sleep(200 * US);
    }
    while (atomic_load(&nserved) < 8)
        ringo_sleep(100 * US);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(served[i], i);
    ringo_chan_release(fc);
}

START_TEST(fifo_service)
{
    RUN(fifo_main, NULL, nprocs_param);
}
END_TEST

/* Buffered FIFO with blocked senders: values come out in send order. */
static ringo_chan *bc;

static void seq_sender(void *arg)
{
    long base = (long)arg;
    for (long i = 0; i < 1000; i++) {
        long v = base + i;
        ck_assert_int_eq(ringo_chan_send(bc, &v), 0);
    }
}

static void buffered_order_main(void *arg)
{
    (void)arg;
    bc = ringo_chan_make(sizeof(long), 4);
    go_other(seq_sender, (void *)0L);
    for (long i = 0; i < 1000; i++) {
        long v;
        ck_assert_int_eq(ringo_chan_recv(bc, &v), 0);
        ck_assert_int_eq(v, i);
        if (i % 97 == 0)
            ringo_sleep(50 * US); /* let the buffer fill and the sender block */
    }
    ringo_chan_release(bc);
}

START_TEST(buffered_order_with_blocked_sender)
{
    RUN(buffered_order_main, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Zero-size elements, NULL elem discards */

static ringo_chan *sig;

static void signaller(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(ringo_chan_send(sig, NULL), 0);
    ringo_chan_close(sig);
}

static void zero_size_main(void *arg)
{
    (void)arg;
    sig = ringo_chan_make(0, (size_t)(long)arg);
    go_other(signaller, NULL);
    int n = 0;
    while (ringo_chan_recv(sig, NULL) == 0)
        n++;
    ck_assert_int_eq(n, 100);
    ringo_chan_release(sig);
}

START_TEST(zero_size_elements)
{
    RUN(zero_size_main, (void *)0L, nprocs_param);
    RUN(zero_size_main, (void *)10L, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* NULL channel: blocks until deadline / cancel */

static atomic_int nil_ok;

static void nil_forever(void *arg)
{
    (void)arg;
    int x = 0;
    if (ringo_chan_recv(NULL, &x) == -ECANCELED)
        atomic_fetch_add(&nil_ok, 1);
}

static void nil_main(void *arg)
{
    (void)arg;
    int x = 0;
    ringo_deadline_set(ringo_now() + 2 * MS);
    ck_assert_int_eq(ringo_chan_send(NULL, &x), -ETIMEDOUT);
    ringo_deadline_set(ringo_now() + 2 * MS);
    ck_assert_int_eq(ringo_chan_recv(NULL, &x), -ETIMEDOUT);
    ringo_deadline_set(ringo_now() + 2 * MS);
    ck_assert_int_eq(ringo_select(NULL, 0, 0), -ETIMEDOUT);
    ck_assert_int_eq(ringo_select(NULL, 0, RINGO_NONBLOCK), -EAGAIN);
    struct ringo_case cs[2] = { { NULL, RINGO_RECV, &x, 0 }, { NULL, RINGO_SEND, &x, 0 } };
    ringo_deadline_set(ringo_now() + 2 * MS);
    ck_assert_int_eq(ringo_select(cs, 2, 0), -ETIMEDOUT);
    ck_assert_int_eq(ringo_select(cs, 2, RINGO_NONBLOCK), -EAGAIN);
    ringo_deadline_set(RINGO_NEVER);
    int64_t id = go_other(nil_forever, NULL);
    ringo_sleep(2 * MS);
    ringo_cancel(id);
}

START_TEST(nil_channel_blocks_until_deadline_or_cancel)
{
    atomic_store(&nil_ok, 0);
    RUN(nil_main, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&nil_ok), 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Deadline and cancellation on send/recv: entry check and while blocked,
 * and the channel stays consistent afterwards. */

static ringo_chan *dc;
static atomic_int dc_res;

static void blocked_then_cancelled(void *arg)
{
    (void)arg;
    int x;
    atomic_store(&dc_res, ringo_chan_recv(dc, &x));
}

static void deadline_main(void *arg)
{
    (void)arg;
    dc = ringo_chan_make(sizeof(int), 0);
    int x = 1;
    int64_t t0 = ringo_now(); /* read first: the deadline is no earlier than t0 + 3 ms */
    ringo_deadline_set(t0 + 3 * MS);
    ck_assert_int_eq(ringo_chan_recv(dc, &x), -ETIMEDOUT);
    ck_assert_int_ge(ringo_now() - t0, 3 * MS - 100 * US);
    ck_assert_int_eq(ringo_chan_send(dc, &x), -ETIMEDOUT); /* entry check */
    ringo_deadline_set(RINGO_NEVER);
    /* a buffered channel with room: still refused when the deadline passed */
    ringo_chan *b = ringo_chan_make(sizeof(int), 1);
    ringo_deadline_set(ringo_now() - 1);
    ck_assert_int_eq(ringo_chan_send(b, &x), -ETIMEDOUT);
    ck_assert_int_eq(ringo_chan_try_send(b, &x), 0); /* never-blocking calls ignore it */
    ck_assert_int_eq(ringo_chan_try_recv(b, &x), 0);
    ringo_deadline_set(RINGO_NEVER);
    ringo_chan_release(b);

    int64_t id = go_other(blocked_then_cancelled, NULL);
    ringo_sleep(2 * MS);
    ck_assert_int_eq(ringo_cancel(id), 0);
    while (ringo_count() > 1)
        ringo_sleep(100 * US);
    ck_assert_int_eq(atomic_load(&dc_res), -ECANCELED);
    /* the timed-out and cancelled receivers left the queue */
    ck_assert_int_eq(ringo_chan_try_send(dc, &x), -EAGAIN);
    ringo_chan_release(dc);
}

START_TEST(deadline_and_cancel_on_channel_ops)
{
    RUN(deadline_main, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* select */

static void select_basics_main(void *arg)
{
    (void)arg;
    ringo_chan *a = ringo_chan_make(sizeof(int), 1);
    ringo_chan *b = ringo_chan_make(sizeof(int), 1);
    int va = 0, vb = 0, one = 1;
    struct ringo_case cs[2] = { { a, RINGO_RECV, &va, 7 }, { b, RINGO_RECV, &vb, 7 } };
    ck_assert_int_eq(ringo_select(cs, 2, RINGO_NONBLOCK), -EAGAIN);
    ck_assert_int_eq(ringo_select(NULL, 2, 0), -EINVAL);
    struct ringo_case bad = { a, 3, &va, 0 };
    ck_assert_int_eq(ringo_select(&bad, 1, 0), -EINVAL);
    /* A send with no element is a bad call even when the goroutine's
     * deadline has passed: the arguments are checked first. */
    struct ringo_case noelem[2] = { { NULL, RINGO_RECV, &va, 0 }, { a, RINGO_SEND, NULL, 0 } };
    ck_assert_int_eq(ringo_select(noelem, 2, RINGO_NONBLOCK), -EINVAL);
    int64_t was = ringo_deadline_set(ringo_now() - 1);
    ck_assert_int_eq(ringo_select(noelem, 2, 0), -EINVAL);
    ck_assert_int_eq(ringo_select(cs, 2, 0), -ETIMEDOUT);
    ringo_deadline_set(was);
    ringo_chan_send(b, &one);
    ck_assert_int_eq(ringo_select(cs, 2, 0), 1);
    ck_assert_int_eq(vb, 1);
    ck_assert_int_eq(cs[1].err, 0);
    ck_assert_int_eq(cs[0].err, 7); /* only the chosen case's err is written */
    /* send case ready when there is room */
    int seven = 7;
    struct ringo_case sc[2] = { { a, RINGO_SEND, &seven, 0 }, { NULL, RINGO_RECV, &vb, 0 } };
    ck_assert_int_eq(ringo_select(sc, 2, 0), 0);
    ck_assert_int_eq(ringo_chan_len(a), 1);
    ck_assert_int_eq(ringo_select(sc, 2, RINGO_NONBLOCK), -EAGAIN); /* full */
    /* closed channels are ready: recv gets -EPIPE, send gets -EPIPE */
    ringo_chan_close(b);
    vb = 5;
    cs[0].chan = NULL;
    ck_assert_int_eq(ringo_select(cs, 2, 0), 1);
    ck_assert_int_eq(cs[1].err, -EPIPE);
    ck_assert_int_eq(vb, 0);
    struct ringo_case sb = { b, RINGO_SEND, &seven, 0 };
    ck_assert_int_eq(ringo_select(&sb, 1, 0), 0);
    ck_assert_int_eq(sb.err, -EPIPE);
    ringo_chan_release(a);
    ringo_chan_release(b);
}

START_TEST(select_basics)
{
    RUN(select_basics_main, NULL, nprocs_param);
}
END_TEST

/* Uniform choice among ready cases: 4 always-ready cases, 40,000 rounds;
 * each must get close to a quarter (a generous band: p of failing by
 * chance is far below 1e-9). */
static void select_fair_main(void *arg)
{
    (void)arg;
    ringo_chan *c[4];
    int counts[4] = { 0 };
    for (int i = 0; i < 4; i++)
        c[i] = ringo_chan_make(0, 0);
    for (int i = 0; i < 4; i++)
        ringo_chan_close(c[i]);
    struct ringo_case cs[4];
    for (int round = 0; round < 40000; round++) {
        for (int i = 0; i < 4; i++)
            cs[i] = (struct ringo_case){ c[i], RINGO_RECV, NULL, 0 };
        int r = ringo_select(cs, 4, 0);
        ck_assert_int_ge(r, 0);
        ck_assert_int_lt(r, 4);
        counts[r]++;
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_int_gt(counts[i], 9000);
        ck_assert_int_lt(counts[i], 11000);
        ringo_chan_release(c[i]);
    }
}

START_TEST(select_chooses_uniformly)
{
    RUN(select_fair_main, NULL, nprocs_param);
}
END_TEST

/* Blocking select: exactly one case performed, others untouched. */
static ringo_chan *s1, *s2, *s3;

static void later_sender(void *arg)
{
    (void)arg;
    ringo_sleep(2 * MS);
    int v = 11;
    ringo_chan_send(s2, &v);
}

static void later_receiver(void *arg)
{
    (void)arg;
    ringo_sleep(2 * MS);
    int v = 0;
    ringo_chan_recv(s3, &v);
    ck_assert_int_eq(v, 33);
}

static void select_block_main(void *arg)
{
    (void)arg;
    s1 = ringo_chan_make(sizeof(int), 0);
    s2 = ringo_chan_make(sizeof(int), 0);
    s3 = ringo_chan_make(sizeof(int), 0);
    int v1 = 0, v2 = 0, out = 33;
    go_other(later_sender, NULL);
    struct ringo_case cs[3] = {
        { s1, RINGO_RECV, &v1, 0 }, { s2, RINGO_RECV, &v2, 0 }, { s3, RINGO_SEND, &out, 0 } };
    ck_assert_int_eq(ringo_select(cs, 3, 0), 1);
    ck_assert_int_eq(v2, 11);
    ck_assert_int_eq(v1, 0);
    /* none of our sudogs remains queued: nothing is ready for a peer */
    int x = 1;
    ck_assert_int_eq(ringo_chan_try_send(s1, &x), -EAGAIN);
    ck_assert_int_eq(ringo_chan_try_recv(s3, &x), -EAGAIN);
    /* now the send case */
    go_other(later_receiver, NULL);
    ck_assert_int_eq(ringo_select(cs, 3, 0), 2);
    ck_assert_int_eq(cs[2].err, 0);
    /* select deadline */
    ringo_deadline_set(ringo_now() + 2 * MS);
    ck_assert_int_eq(ringo_select(cs, 3, 0), -ETIMEDOUT);
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_eq(ringo_chan_try_send(s1, &x), -EAGAIN);
    ringo_chan_release(s1);
    ringo_chan_release(s2);
    ringo_chan_release(s3);
}

/* A select that names a channel in two cases, woken by a peer that holds
 * the channel's only reference and releases it at once (ringo_select(3)
 * NOTES), does not touch the channel again: woken by a send, then by a
 * close.  (It locked the channel again to unlink its other case there:
 * a use after free, which the suite's ASan build reports.)  On one proc
 * (ringo_go_on), so that the release comes before the select runs. */
static ringo_chan *dup_ch, *dup_other;
static atomic_int dup_in;
static int dup_res, dup_err;

static void dup_selector(void *arg)
{
    (void)arg;
    int a = 0, b = 0, c = 0;
    struct ringo_case cs[3] = { { dup_ch, RINGO_RECV, &a, 0 },
                                { dup_other, RINGO_RECV, &b, 0 },
                                { dup_ch, RINGO_RECV, &c, 0 } };
    atomic_store(&dup_in, 1);
    dup_res = ringo_select(cs, 3, 0); /* parks: nothing is ready */
    dup_err = dup_res >= 0 ? cs[dup_res].err : 0;
    if (dup_res >= 0 && !dup_err)
        dup_err = (dup_res == 0 ? a : c) == 5 ? 0 : -1;
}

static void main_dup_released(void *arg)
{
    (void)arg;
    for (int close = 0; close < 2; close++) {
        dup_ch = ringo_chan_make(sizeof(int), 0);
        dup_other = ringo_chan_make(sizeof(int), 0);
        ck_assert_ptr_nonnull(dup_ch);
        ck_assert_ptr_nonnull(dup_other);
        atomic_store(&dup_in, 0);
        dup_res = -100;
        ck_assert_int_gt(ringo_go_on(ringo_proc(), dup_selector, NULL), 0);
        while (!atomic_load(&dup_in))
            ringo_yield(); /* it ran up to its park: one proc */
        if (close) {
            ck_assert_int_eq(ringo_chan_close(dup_ch), 0);
        } else {
            int v = 5;
            ck_assert_int_eq(ringo_chan_try_send(dup_ch, &v), 0);
        }
        ringo_chan_release(dup_ch); /* the only reference */
        while (ringo_count() > 1)
            ringo_yield();
        ck_assert_int_ge(dup_res, 0);
        ck_assert(dup_res == 0 || dup_res == 2);
        ck_assert_int_eq(dup_err, close ? -EPIPE : 0);
        ringo_chan_release(dup_other);
    }
}

START_TEST(select_twice_on_a_released_channel)
{
    RUN(main_dup_released, NULL, nprocs_param);
}
END_TEST

START_TEST(select_blocks_and_performs_one)
{
    RUN(select_block_main, NULL, nprocs_param);
}
END_TEST

/* Many selectors racing on shared channels: each value delivered once. */
#define SEL_N 4000
static ringo_chan *sa, *sb, *sdone;
static atomic_long sel_sum;

static void selector(void *arg)
{
    (void)arg;
    for (;;) {
        long va = 0, vb = 0;
        struct ringo_case cs[2] = { { sa, RINGO_RECV, &va, 0 }, { sb, RINGO_RECV, &vb, 0 } };
        int r = ringo_select(cs, 2, 0);
        ck_assert_int_ge(r, 0);
        if (cs[r].err == -EPIPE)
            break;
        atomic_fetch_add(&sel_sum, r == 0 ? va : vb);
    }
    ringo_chan_send(sdone, NULL);
}

static void feeder(void *arg)
{
    ringo_chan *c = arg;
    for (long i = 1; i <= SEL_N; i++)
        ringo_chan_send(c, &i);
    ringo_chan_send(sdone, NULL);
}

static void select_race_main(void *arg)
{
    (void)arg;
    sa = ringo_chan_make(sizeof(long), 0);
    sb = ringo_chan_make(sizeof(long), 3);
    sdone = ringo_chan_make(0, 0);
    for (int i = 0; i < 8; i++)
        ringo_go_on(i % ringo_nprocs(), selector, NULL);
    ringo_go_on(0, feeder, sa);
    ringo_go_on(ringo_nprocs() - 1, feeder, sb);
    ringo_chan_recv(sdone, NULL);
    ringo_chan_recv(sdone, NULL);
    ringo_chan_close(sa);
    ringo_chan_close(sb);
    for (int i = 0; i < 8; i++)
        ringo_chan_recv(sdone, NULL);
    ringo_chan_release(sa);
    ringo_chan_release(sb);
    ringo_chan_release(sdone);
}

START_TEST(select_race_delivers_each_value_once)
{
    atomic_store(&sel_sum, 0);
    RUN(select_race_main, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&sel_sum), 2L * SEL_N * (SEL_N + 1) / 2);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Same-proc hand-off makes no system call. */

static ringo_chan *ping, *pong;

static void ponger(void *arg)
{
    (void)arg;
    long v;
    while (ringo_chan_recv(ping, &v) == 0)
        ringo_chan_send(pong, &v);
}

static void no_syscall_main(void *arg)
{
    (void)arg;
    ping = ringo_chan_make(sizeof(long), 0);
    pong = ringo_chan_make(sizeof(long), 0);
    ringo_go_on(ringo_proc(), ponger, NULL);
    long v = 0;
    ringo_chan_send(ping, &v); /* warm up: ponger started */
    ringo_chan_recv(pong, &v);
    struct ringo_stats before, after;
    ringo_stats(&before);
    for (long i = 0; i < 10000; i++) {
        ringo_chan_send(ping, &i);
        ringo_chan_recv(pong, &v);
        ck_assert_int_eq(v, i);
    }
    ringo_stats(&after);
    ck_assert_uint_eq(after.enters - before.enters, 0);
    ck_assert_uint_eq(after.submissions - before.submissions, 0);
    ck_assert_uint_ge(after.switches - before.switches, 20000);
    ringo_chan_close(ping);
    while (ringo_count() > 1) /* the ponger still uses the channels */
        ringo_yield();
    ringo_chan_release(ping);
    ringo_chan_release(pong);
}

START_TEST(same_proc_handoff_makes_no_syscall)
{
    RUN(no_syscall_main, NULL, 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Classic programs */

/* Prime sieve of chained goroutines (the Go tour's). */
static void generate(void *arg)
{
    ringo_chan *ch = arg;
    for (long i = 2;; i++)
        if (ringo_chan_send(ch, &i) != 0)
            break;
}

struct filter_arg { ringo_chan *in, *out; long prime; };

static void filter(void *arg)
{
    struct filter_arg *fa = arg;
    long v;
    while (ringo_chan_recv(fa->in, &v) == 0) {
        if (v % fa->prime != 0 && ringo_chan_send(fa->out, &v) != 0)
            break;
    }
    ringo_chan_close(fa->in);  /* stop the upstream: it gets -EPIPE */
    ringo_chan_close(fa->out);
}

static void sieve_main(void *arg)
{
    (void)arg;
    static const long first[] = { 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47,
                                  53, 59, 61, 67, 71, 73, 79, 83, 89, 97 };
    ringo_chan *chans[101];
    struct filter_arg fas[100];
    int nch = 0;
    ringo_chan *ch = chans[nch++] = ringo_chan_make(sizeof(long), 0);
    go_other(generate, ch);
    for (int i = 0; i < 100; i++) {
        long prime;
        ck_assert_int_eq(ringo_chan_recv(ch, &prime), 0);
        if (i < 25)
            ck_assert_int_eq(prime, first[i]);
        if (i == 99)
            ck_assert_int_eq(prime, 541); /* the 100th prime */
        ringo_chan *ch1 = chans[nch++] = ringo_chan_make(sizeof(long), 0);
        fas[i] = (struct filter_arg){ ch, ch1, prime };
        ringo_go_on(i % ringo_nprocs(), filter, &fas[i]);
        ch = ch1;
    }
    ringo_chan_close(ch); /* tear the chain down from the end */
    while (ringo_count() > 1)
        ringo_sleep(1 * MS);
    for (int i = 0; i < nch; i++)
        ringo_chan_release(chans[i]);
}

START_TEST(prime_sieve)
{
    RUN(sieve_main, NULL, nprocs_param);
}
END_TEST

/* 10,000 goroutines in a chain pass a token. */
#define CHAIN 10000
static ringo_chan *links[CHAIN + 1];

static void link_fn(void *arg)
{
    long i = (long)arg;
    long v;
    ck_assert_int_eq(ringo_chan_recv(links[i], &v), 0);
    v++;
    ck_assert_int_eq(ringo_chan_send(links[i + 1], &v), 0);
}

static void chain_main(void *arg)
{
    (void)arg;
    for (int i = 0; i <= CHAIN; i++)
        links[i] = ringo_chan_make(sizeof(long), 0);
    for (long i = 0; i < CHAIN; i++)
        ck_assert_int_gt(ringo_go(link_fn, (void *)i), 0);
    for (int round = 0; round < 1; round++) {
        long v = 0;
        ringo_chan_send(links[0], &v);
        ringo_chan_recv(links[CHAIN], &v);
        ck_assert_int_eq(v, CHAIN);
    }
    for (int i = 0; i <= CHAIN; i++)
        ringo_chan_release(links[i]);
}

START_TEST(token_pipeline_10000)
{
    RUN(chain_main, NULL, nprocs_param);
}
END_TEST

/* Many-to-many on a buffered channel with a checksum over 1M values. */
#define M2M_PRODUCERS 8
#define M2M_CONSUMERS 8
static long m2m_per; /* values per producer */
static ringo_chan *m2m, *m2m_done;
static atomic_llong m2m_sum, m2m_count;

static void m2m_producer(void *arg)
{
    long base = (long)arg * m2m_per;
    for (long i = 0; i < m2m_per; i++) {
        long v = base + i;
        ck_assert_int_eq(ringo_chan_send(m2m, &v), 0);
    }
    ringo_chan_send(m2m_done, NULL);
}

static void m2m_consumer(void *arg)
{
    (void)arg;
    long v;
    long long sum = 0, n = 0;
    while (ringo_chan_recv(m2m, &v) == 0) {
        sum += v;
        n++;
    }
    atomic_fetch_add(&m2m_sum, sum);
    atomic_fetch_add(&m2m_count, n);
}

static void m2m_main(void *arg)
{
    long cap = (long)arg;
    m2m = ringo_chan_make(sizeof(long), (size_t)cap);
    m2m_done = ringo_chan_make(0, 0);
    for (long i = 0; i < M2M_CONSUMERS; i++)
        ringo_go_on((int)(i % ringo_nprocs()), m2m_consumer, NULL);
    for (long i = 0; i < M2M_PRODUCERS; i++)
        ringo_go_on((int)((i + 1) % ringo_nprocs()), m2m_producer, (void *)i);
    for (int i = 0; i < M2M_PRODUCERS; i++)
        ringo_chan_recv(m2m_done, NULL);
    ringo_chan_close(m2m);
    while (ringo_count() > 1)
        ringo_sleep(1 * MS);
    ringo_chan_release(m2m);
    ringo_chan_release(m2m_done);
}

/* Buffered, and unbuffered, where senders and receivers on both procs
 * take and leave the slot, queue behind it, and meet there (chan.c
 * "Meeting in the slot"). */
START_TEST(many_to_many_checksum)
{
    for (long cap = 64; cap >= 0; cap -= 64) {
        m2m_per = (cap ? 1000000 : test_quick() ? 20000 : 200000) / M2M_PRODUCERS;
        long long n = (long long)M2M_PRODUCERS * m2m_per;
        atomic_store(&m2m_sum, 0);
        atomic_store(&m2m_count, 0);
        RUN(m2m_main, (void *)cap, 2);
        ck_assert_int_eq(atomic_load(&m2m_count), n);
        ck_assert_int_eq(atomic_load(&m2m_sum), n * (n - 1) / 2);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Randomized: random sequences of non-blocking operations on small
 * channels, against a sequential model of Go's rules. */

struct model { size_t cap; long buf[4]; size_t len; bool closed; };

static int model_send(struct model *m, long v)
{
    if (m->closed) return -EPIPE;
    if (m->len == m->cap) return -EAGAIN;
    m->buf[m->len++] = v;
    return 0;
}

static int model_recv(struct model *m, long *v)
{
    if (m->len) {
        *v = m->buf[0];
        memmove(m->buf, m->buf + 1, (m->len - 1) * sizeof(long));
        m->len--;
        return 0;
    }
    if (m->closed) { *v = 0; return -EPIPE; }
    return -EAGAIN;
}

static void randomized_main(void *arg)
{
    (void)arg;
    unsigned seed = 12345;
    for (int seq = 0; seq < 3000; seq++) {
        struct model m = { .cap = (size_t)(rand_r(&seed) % 5) };
        ringo_chan *c = ringo_chan_make(sizeof(long), m.cap);
        ringo_chan *other = ringo_chan_make(sizeof(long), 1);
        for (int step = 0; step < 20; step++) {
            long v = rand_r(&seed) % 1000, got = -1, want = -1;
            int op = rand_r(&seed) % 7;
            int r, mr;
            switch (op) {
            case 0: case 1:
                r = ringo_chan_try_send(c, &v);
                mr = model_send(&m, v);
                ck_assert_int_eq(r, mr);
                break;
            case 2: case 3:
                r = ringo_chan_try_recv(c, &got);
                mr = model_recv(&m, &want);
                ck_assert_int_eq(r, mr);
                if (r != -EAGAIN)
                    ck_assert_int_eq(got, want);
                break;
            case 4: {
                r = ringo_chan_close(c);
                ck_assert_int_eq(r, m.closed ? -EPIPE : 0);
                m.closed = true;
                break;
            }
            case 5: { /* select: recv on c, send on a full/empty other */
                struct ringo_case cs[2] = { { c, RINGO_RECV, &got, 0 }, { NULL, RINGO_SEND, &v, 0 } };
                r = ringo_select(cs, 2, RINGO_NONBLOCK);
                mr = model_recv(&m, &want);
                if (mr == -EAGAIN) {
                    ck_assert_int_eq(r, -EAGAIN);
                } else {
                    ck_assert_int_eq(r, 0);
                    ck_assert_int_eq(cs[0].err, mr);
                    ck_assert_int_eq(got, want);
                }
                break;
            }
            case 6: { /* select send */
                struct ringo_case cs[2] = { { other, RINGO_RECV, &got, 0 }, { c, RINGO_SEND, &v, 0 } };
                long dummy;
                while (ringo_chan_try_recv(other, &dummy) == 0)
                    ;
                r = ringo_select(cs, 2, RINGO_NONBLOCK);
                mr = model_send(&m, v);
                if (mr == -EAGAIN) {
                    ck_assert_int_eq(r, -EAGAIN);
                } else {
                    ck_assert_int_eq(r, 1);
                    ck_assert_int_eq(cs[1].err, mr);
                }
                break;
            }
            }
            ck_assert_uint_eq(ringo_chan_len(c), m.len);
        }
        ringo_chan_release(c);
        ringo_chan_release(other);
    }
}

START_TEST(randomized_against_model)
{
    RUN(randomized_main, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Cross-proc model: producers and consumers, goroutines spread over the
 * procs and plain threads, each doing random operations (send, receive,
 * the try forms, select over several channels, blocking and not, with and
 * without a deadline, len and cap) on four buffered channels of different
 * capacities, then a close of all four.  Checked against the sequential
 * model of a FIFO channel: every value that a send reports sent is
 * received exactly once, on the channel it was sent on; the values of one
 * producer on one channel reach each consumer in the order they were sent;
 * a receive reports the close only once the channel is drained (no value
 * is lost); after the close, sends and a second close fail; len never
 * exceeds cap.  A value is (channel << 56 | producer << 40 | seq): a
 * producer's seq grows with each value it sends, so a value sent twice,
 * or reported unsent but delivered and sent again, shows as a duplicate. */

#define XM_CHANS 4
#define XM_GPROD 4      /* goroutine producers */
#define XM_TPROD 1      /* plain-thread producers */
#define XM_GCONS 3
#define XM_TCONS 1
#define XM_PROD (XM_GPROD + XM_TPROD)
#define XM_CONS (XM_GCONS + XM_TCONS)

static const size_t xm_caps[XM_CHANS] = { 1, 3, 16, 1024 };

struct xm {
    ringo_chan *c[XM_CHANS];
    ringo_chan *pdone, *cdone;  /* each producer, then each consumer, sends its id when finished */
    long per;                   /* values per producer */
    atomic_uchar *seen;         /* [XM_PROD * per]: received */
    atomic_long sent[XM_PROD], received[XM_PROD];
    atomic_long dups, wrong, order, len_bad, bad_result;
    atomic_int closing;         /* set before the close: plain receives may wait */
};

static struct xm xm;

static long xm_val(int ch, int pid, long seq)
{
    return (long)ch << 56 | (long)pid << 40 | seq;
}

static void xm_check_len(unsigned *seed)
{
    int ch = rand_r(seed) % XM_CHANS;
    if (ringo_chan_len(xm.c[ch]) > xm_caps[ch] || ringo_chan_cap(xm.c[ch]) != xm_caps[ch])
        atomic_fetch_add(&xm.len_bad, 1);
}

static void xm_bad(int r)
{
    fprintf(stderr, "crossproc model: unexpected result %d\n", r);
    atomic_fetch_add(&xm.bad_result, 1);
}

static void xm_produce(int pid, bool goroutine)
{
    unsigned seed = 1000u + (unsigned)pid;
    for (long seq = 0; seq < xm.per; seq++) {
        bool sent = false;
        while (!sent) {
            int ch = rand_r(&seed) % XM_CHANS, ch2 = (ch + 1 + rand_r(&seed) % (XM_CHANS - 1)) % XM_CHANS;
            long v = xm_val(ch, pid, seq), v2 = xm_val(ch2, pid, seq);
            int op = rand_r(&seed) % (goroutine ? 7 : 6), r;
            switch (op) {
            case 0: case 1:
                r = ringo_chan_send(xm.c[ch], &v);
                if (r == 0)
                    sent = true;
                else
                    xm_bad(r);
                break;
            case 2:
                r = ringo_chan_try_send(xm.c[ch], &v);
                if (r == 0)
                    sent = true;
                else if (r != -EAGAIN)
                    xm_bad(r);
                break;
            case 3: case 4: { /* select over two sends (and a nil case), blocking or not */
                long never;
                struct ringo_case cs[3] = { { xm.c[ch], RINGO_SEND, &v, 1 },
                                            { NULL, RINGO_RECV, &never, 1 },
                                            { xm.c[ch2], RINGO_SEND, &v2, 1 } };
                r = ringo_select(cs, 3, op == 4 ? RINGO_NONBLOCK : 0);
                if ((r == 0 || r == 2) && cs[r].err == 0)
                    sent = true;
                else if (!(op == 4 && r == -EAGAIN))
                    xm_bad(r);
                break;
            }
            case 5:
                xm_check_len(&seed);
                break;
            case 6: /* a deadline that may or may not pass first */
                ringo_deadline_set(ringo_now() + (int64_t)(rand_r(&seed) % 50) * US);
                r = ringo_chan_send(xm.c[ch], &v);
                ringo_deadline_set(RINGO_NEVER);
                if (r == 0)
                    sent = true;
                else if (r != -ETIMEDOUT)
                    xm_bad(r);
                break;
            }
        }
        atomic_fetch_add(&xm.sent[pid], 1);
    }
    ringo_chan_send(xm.pdone, &pid);
}

static void xm_record(int ch, long v, long last[XM_PROD][XM_CHANS])
{
    int vch = (int)(v >> 56), pid = (int)((v >> 40) & 0xffff);
    long seq = v & ((1L << 40) - 1);
    if (vch != ch || pid < 0 || pid >= XM_PROD || seq >= xm.per) {
        atomic_fetch_add(&xm.wrong, 1);
        return;
    }
    if (atomic_exchange(&xm.seen[(long)pid * xm.per + seq], 1))
        atomic_fetch_add(&xm.dups, 1);
    if (seq <= last[pid][ch])
        atomic_fetch_add(&xm.order, 1);
    last[pid][ch] = seq;
    atomic_fetch_add(&xm.received[pid], 1);
}

static void xm_consume(int cid, bool goroutine)
{
    unsigned seed = 2000u + (unsigned)cid;
    long last[XM_PROD][XM_CHANS];
    for (int p = 0; p < XM_PROD; p++)
        for (int ch = 0; ch < XM_CHANS; ch++)
            last[p][ch] = -1;
    unsigned open = (1u << XM_CHANS) - 1; /* channels not yet seen closed and drained */
    while (open) {
        int ch;
        do
            ch = rand_r(&seed) % XM_CHANS;
        while (!(open & (1u << ch)));
        int op = rand_r(&seed) % (goroutine ? 7 : 6), r;
        long v = -1;
        /* A receive on one channel with no deadline may wait for good
         * while a producer waits on another, full, channel nobody else
         * watches; so until the close, a goroutine gives it a deadline
         * and a plain thread selects over every open channel instead. */
        if ((op == 0 || op == 1) && !atomic_load(&xm.closing))
            op = goroutine ? 6 : 3;
        switch (op) {
        case 0: case 1:
            r = ringo_chan_recv(xm.c[ch], &v);
            break;
        case 2:
            r = ringo_chan_try_recv(xm.c[ch], &v);
            break;
        case 3: case 4: { /* select over every open channel, blocking or not */
            long vals[XM_CHANS];
            struct ringo_case cs[XM_CHANS];
            for (int i = 0; i < XM_CHANS; i++)
                cs[i] = (struct ringo_case){ (open & (1u << i)) ? xm.c[i] : NULL, RINGO_RECV, &vals[i], 1 };
            int k = ringo_select(cs, XM_CHANS, op == 4 ? RINGO_NONBLOCK : 0);
            if (k == -EAGAIN && op == 4)
                continue;
            if (k < 0 || k >= XM_CHANS || !(open & (1u << k))) {
                xm_bad(k);
                continue;
            }
            ch = k;
            r = cs[k].err;
            v = vals[k];
            break;
        }
        case 5:
            xm_check_len(&seed);
            continue;
        default: /* 6: a deadline that may or may not pass first */
            ringo_deadline_set(ringo_now() + (int64_t)(rand_r(&seed) % 50) * US);
            r = ringo_chan_recv(xm.c[ch], &v);
            ringo_deadline_set(RINGO_NEVER);
            if (r == -ETIMEDOUT)
                continue;
            break;
        }
        if (r == 0) {
            xm_record(ch, v, last);
        } else if (r == -EPIPE) {
            if (v != 0)
                xm_bad(r); /* the value of a receive that reports the close is zeroed */
            open &= ~(1u << ch);
        } else if (!(r == -EAGAIN && op == 2)) {
            xm_bad(r);
        }
    }
    ringo_chan_send(xm.cdone, &cid);
}

static void xm_gprod(void *arg) { xm_produce((int)(intptr_t)arg, true); }
static void xm_gcons(void *arg) { xm_consume((int)(intptr_t)arg, true); }
static void *xm_tprod(void *arg) { xm_produce((int)(intptr_t)arg, false); return NULL; }
static void *xm_tcons(void *arg) { xm_consume((int)(intptr_t)arg, false); return NULL; }

static void crossproc_model_main(void *arg)
{
    (void)arg;
    int n = ringo_nprocs();
    pthread_t tp[XM_TPROD], tc[XM_TCONS];
    for (int i = 0; i < XM_CONS; i++) {
        if (i < XM_GCONS)
            ck_assert_int_ge(ringo_go_on(i % n, xm_gcons, (void *)(intptr_t)i), 0);
        else
            ck_assert_int_eq(test_thread_create(&tc[i - XM_GCONS], xm_tcons, (void *)(intptr_t)i), 0);
    }
    for (int i = 0; i < XM_PROD; i++) {
        if (i < XM_GPROD)
            ck_assert_int_ge(ringo_go_on((i + 1) % n, xm_gprod, (void *)(intptr_t)i), 0);
        else
            ck_assert_int_eq(test_thread_create(&tp[i - XM_GPROD], xm_tprod, (void *)(intptr_t)i), 0);
    }
    int id;
    for (int i = 0; i < XM_PROD; i++)
        ck_assert_int_eq(ringo_chan_recv(xm.pdone, &id), 0);
    /* Every producer is done: close, while values may still be buffered. */
    atomic_store(&xm.closing, 1);
    long v = 1;
    for (int ch = 0; ch < XM_CHANS; ch++) {
        ck_assert_int_eq(ringo_chan_close(xm.c[ch]), 0);
        ck_assert_int_eq(ringo_chan_close(xm.c[ch]), -EPIPE);
        ck_assert_int_eq(ringo_chan_send(xm.c[ch], &v), -EPIPE);
        ck_assert_int_eq(ringo_chan_try_send(xm.c[ch], &v), -EPIPE);
    }
    for (int i = 0; i < XM_CONS; i++)
        ck_assert_int_eq(ringo_chan_recv(xm.cdone, &id), 0);
    for (int ch = 0; ch < XM_CHANS; ch++) {
        ck_assert_uint_eq(ringo_chan_len(xm.c[ch]), 0);
        v = 7;
        ck_assert_int_eq(ringo_chan_try_recv(xm.c[ch], &v), -EPIPE);
        ck_assert_int_eq(v, 0);
    }
    for (int i = 0; i < XM_TPROD; i++)
        pthread_join(tp[i], NULL);
    for (int i = 0; i < XM_TCONS; i++)
        pthread_join(tc[i], NULL);
}

START_TEST(crossproc_model)
{
    memset(&xm, 0, sizeof xm);
    xm.per = test_quick() ? 2000 : 20000;
    xm.seen = calloc((size_t)(XM_PROD * xm.per), 1);
    ck_assert_ptr_nonnull(xm.seen);
    for (int ch = 0; ch < XM_CHANS; ch++)
        xm.c[ch] = ringo_chan_make(sizeof(long), xm_caps[ch]);
    xm.pdone = ringo_chan_make(sizeof(int), XM_PROD);
    xm.cdone = ringo_chan_make(sizeof(int), XM_CONS);
    RUN(crossproc_model_main, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&xm.bad_result), 0);
    ck_assert_int_eq(atomic_load(&xm.wrong), 0);
    ck_assert_int_eq(atomic_load(&xm.dups), 0);
    ck_assert_int_eq(atomic_load(&xm.order), 0);
    ck_assert_int_eq(atomic_load(&xm.len_bad), 0);
    for (int p = 0; p < XM_PROD; p++) {
        ck_assert_int_eq(atomic_load(&xm.sent[p]), xm.per);
        ck_assert_int_eq(atomic_load(&xm.received[p]), xm.per);
    }
    for (long i = 0; i < XM_PROD * xm.per; i++)
        ck_assert_int_eq(atomic_load(&xm.seen[i]), 1);
    for (int ch = 0; ch < XM_CHANS; ch++)
        ringo_chan_release(xm.c[ch]);
    ringo_chan_release(xm.pdone);
    ringo_chan_release(xm.cdone);
    free(xm.seen);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Done channels: the last reference goes as soon as the value has.
 *
 * The everyday pattern: a goroutine on another proc finishes and sends on
 * a buffered channel of capacity 1 that it holds no reference to; the
 * receiver takes the value and releases the channel at once, the last
 * reference, so the channel is freed.  Correct only if the sender touches
 * the channel no more once its value can be received, so this repeats it
 * for ASan and ThreadSanitizer to catch a store into the freed channel.
 * And its mirror image: the channel full, a goroutine on the other proc
 * receives, and the sender that was waiting for that free slot sends and
 * releases.  The goroutine sends (receives) by the plain call or by a
 * select over the channel and a second one, never ready, which the
 * releasing side releases too; or it waits in such a select, and the
 * other side sends or closes and releases (the goroutine keeps a
 * reference to the second channel).  Before the goroutine starts, a
 * non-blocking select over the channel finds nothing, which leaves the
 * channel the way an operation under its lock leaves it (chan.c "The
 * gate"), so that the goroutine's operation takes the locked path, not
 * the lock-free one.  The side that releases blocks, or polls with the
 * try form, or polls the length and then blocks (with two procs: on one,
 * a polling loop would keep the other goroutine from running). */

struct dc_arg {
    ringo_chan *c, *other;  /* other: an empty channel, never ready */
    bool select;            /* by a select over c and other */
    bool close;             /* dc_wait: c is closed, not sent on */
};

static void dc_send(void *arg)
{
    struct dc_arg a = *(struct dc_arg *)arg; /* the caller's, until we send */
    long v = 1, w;
    if (a.select) {
        struct ringo_case cs[2] = { { a.c, RINGO_SEND, &v, 1 }, { a.other, RINGO_RECV, &w, 1 } };
        ck_assert_int_eq(ringo_select(cs, 2, 0), 0);
    } else {
        ck_assert_int_eq(ringo_chan_send(a.c, &v), 0);
    }
}

static void dc_recv(void *arg)
{
    struct dc_arg a = *(struct dc_arg *)arg;
    long v = 0, w;
    if (a.select) {
        struct ringo_case cs[2] = { { a.other, RINGO_RECV, &w, 1 }, { a.c, RINGO_RECV, &v, 1 } };
        ck_assert_int_eq(ringo_select(cs, 2, 0), 1);
    } else {
        ck_assert_int_eq(ringo_chan_recv(a.c, &v), 0);
    }
    ck_assert_int_eq(v, 2);
}

/* Parked in a select over c and other (holding a reference to other only)
 * until c gets a value or is closed. */
static void dc_wait(void *arg)
{
    struct dc_arg a = *(struct dc_arg *)arg;
    long v = 7, w;
    struct ringo_case cs[2] = { { a.c, RINGO_RECV, &v, 1 }, { a.other, RINGO_RECV, &w, 1 } };
    ck_assert_int_eq(ringo_select(cs, 2, 0), 0);
    ck_assert_int_eq(cs[0].err, a.close ? -EPIPE : 0);
    ck_assert_int_eq(v, a.close ? 0 : 1);
    ringo_chan_release(a.other);
}

static bool dc_recv_waits(ringo_chan *c)
{
    chan_lock(c);
    bool waits = c->recvq.first != NULL;
    chan_unlock(c);
    return waits;
}

static void done_channel_main(void *arg)
{
    long rounds = (long)(intptr_t)arg;
    for (long i = 0; i < rounds; i++) {
        ringo_chan *c = ringo_chan_make(sizeof(long), 1);
        ringo_chan *other = ringo_chan_make(sizeof(long), 1);
        ck_assert_ptr_nonnull(c);
        ck_assert_ptr_nonnull(other);
        /* 0: block; 1: poll with the try form; 2: poll len, then block */
        int how = ringo_nprocs() > 1 ? (int)(i / 4 % 3) : 0;
        bool reverse = i & 1;
        struct dc_arg a = { c, other, i & 2, (i / 5) & 1 };
        if (i % 5 == 4) {
            /* A select parked on c, woken by a send or a close of c
             * that is released at once. */
            ringo_chan_retain(other);
            ck_assert_int_ge(go_other(dc_wait, &a), 0);
            while (!dc_recv_waits(c))
                ringo_yield();
            long one = 1;
            ck_assert_int_eq(a.close ? ringo_chan_close(c) : ringo_chan_send(c, &one), 0);
            ringo_chan_release(c);
            ringo_chan_release(other);
            continue;
        }
        long v = 2, w = 0;
        if (reverse)
            ck_assert_int_eq(ringo_chan_send(c, &v), 0); /* full */
        struct ringo_case cs[2] = {
            { c, reverse ? RINGO_SEND : RINGO_RECV, &w, 1 },
            { other, RINGO_RECV, &w, 1 },
        };
        ck_assert_int_eq(ringo_select(cs, 2, RINGO_NONBLOCK), -EAGAIN);
        ck_assert_int_ge(go_other(reverse ? dc_recv : dc_send, &a), 0);
        int r;
        if (how == 2)
            while (ringo_chan_len(c) == (reverse ? 1u : 0u))
                ;
        if (reverse) {
            v = 3;
            while (how == 1 && (r = ringo_chan_try_send(c, &v)) == -EAGAIN)
                ;
            if (how != 1)
                r = ringo_chan_send(c, &v);
        } else {
            while (how == 1 && (r = ringo_chan_try_recv(c, &w)) == -EAGAIN)
                ;
            if (how != 1)
                r = ringo_chan_recv(c, &w);
            ck_assert_int_eq(w, 1);
        }
        ck_assert_int_eq(r, 0);
        /* The last references: freed here, the other side's select may
         * have locked both. */
        ringo_chan_release(c);
        ringo_chan_release(other);
    }
}

START_TEST(done_channel_released_at_once)
{
    RUN(done_channel_main, (void *)(intptr_t)(test_quick() ? 2000 : 20000), nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Plain threads outside (and beside) the runtime. */

static ringo_chan *tc_ch;

static void *thread_producer(void *arg)
{
    (void)arg;
    for (long i = 0; i < 10000; i++)
        if (ringo_chan_send(tc_ch, &i) != 0)
            return (void *)1;
    ringo_chan_close(tc_ch);
    return NULL;
}

static void thread_consumer_main(void *arg)
{
    (void)arg;
    tc_ch = ringo_chan_make(sizeof(long), (size_t)(intptr_t)arg);
    pthread_t t;
    ck_assert_int_eq(test_thread_create(&t, thread_producer, NULL), 0);
    long v, want = 0;
    while (ringo_chan_recv(tc_ch, &v) == 0)
        ck_assert_int_eq(v, want++);
    ck_assert_int_eq(want, 10000);
    pthread_join(t, NULL);
    ringo_chan_release(tc_ch);
}

START_TEST(plain_thread_and_goroutine)
{
    RUN(thread_consumer_main, (void *)0, nprocs_param);
    RUN(thread_consumer_main, (void *)8, nprocs_param);
}
END_TEST

START_TEST(plain_threads_without_runtime)
{
    tc_ch = ringo_chan_make(sizeof(long), 0);
    pthread_t t;
    pthread_create(&t, NULL, thread_producer, NULL);
    long v, want = 0;
    while (ringo_chan_recv(tc_ch, &v) == 0)
        ck_assert_int_eq(v, want++);
    ck_assert_int_eq(want, 10000);
    pthread_join(t, NULL);
    ringo_chan_release(tc_ch);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Timer channels */

static void timers_main(void *arg)
{
    (void)arg;
    int64_t t0 = ringo_now();
    ringo_chan *a = ringo_after(3 * MS);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(ringo_chan_cap(a), 1);
    int64_t fired = 0;
    ck_assert_int_eq(ringo_chan_recv(a, &fired), 0);
    ck_assert_int_ge(fired, t0 + 3 * MS);
    ck_assert_int_le(fired, ringo_now());
    ck_assert_int_eq(ringo_chan_try_recv(a, &fired), -EAGAIN); /* fires once */
    ringo_chan_release(a);

    /* select with a timeout */
    ringo_chan *never = ringo_chan_make(sizeof(int), 0);
    ringo_chan *to = ringo_after(2 * MS);
    int x;
    struct ringo_case cs[2] = { { never, RINGO_RECV, &x, 0 }, { to, RINGO_RECV, &fired, 0 } };
    ck_assert_int_eq(ringo_select(cs, 2, 0), 1);
    ringo_chan_release(to);
    ringo_chan_release(never);

    /* released before firing: nobody can receive, the timer is stopped
     * (unreferenced_timers_are_stopped) */
    ringo_chan_release(ringo_after(1 * MS));

    errno = 0;
    ck_assert_ptr_null(ringo_tick(0));
    ck_assert_int_eq(errno, EINVAL);
    ringo_chan *t = ringo_tick(1 * MS);
    int64_t prev = 0;
    for (int i = 0; i < 5; i++) {
        int64_t v;
        ck_assert_int_eq(ringo_chan_recv(t, &v), 0);
        ck_assert_int_gt(v, prev);
        prev = v;
    }
    ringo_sleep(5 * MS); /* ticks dropped while the channel is full */
    ck_assert_uint_le(ringo_chan_len(t), 1);
    ringo_tick_stop(t);
}

START_TEST(timer_channels)
{
    RUN(timers_main, NULL, nprocs_param);
}
END_TEST

static ringo_chan *pending_after;

static void stopped_ticker_main(void *arg)
{
    (void)arg;
    /* a stopped ticker does not keep the run alive; an unstopped ringo_after
     * that never fires is cancelled when every goroutine is done */
    ringo_chan *t = ringo_tick(1000 * MS);
    ringo_tick_stop(t);
    pending_after = ringo_after(60000 * MS);
}

START_TEST(timers_do_not_outlive_the_run)
{
    RUN(stopped_ticker_main, NULL, nprocs_param);
    /* the channel outlives the run; it never fired, so the run did not
     * wait for it (a run that waits for either timer outlasts the test's
     * timeout) */
    int64_t v;
    ck_assert_int_eq(ringo_chan_try_recv(pending_after, &v), -EAGAIN);
    ringo_chan_release(pending_after);
}
END_TEST

/* Timers nobody references.  A holder's release that leaves only the
 * timer's own reference stops the timer (timerchan.c "Unreferenced"):
 * its heap slot on the owner proc (timer_promised, which counts every
 * pending timer channel there) comes back at once on the owner, and once
 * the owner has run the stop's task from another proc.  A timer that
 * another holder still references is left to fire; ringo_tick_stop stops
 * a ringo_after timer as it stops a ticker. */
#define UNREF_N 1000

static size_t promised_here(void)
{
    return tls_proc->timer_promised; /* the running goroutine's own proc */
}

static ringo_chan *unref_handoff; /* unbuffered: creator -> releaser */
static ringo_chan *unref_done;

/* On another proc: makes timers that the main goroutine releases, some
 * due at once (their firing races the release), then waits until every
 * one has left its proc. */
static void unref_maker(void *arg)
{
    (void)arg;
    size_t base = promised_here();
    for (int i = 0; i < UNREF_N; i++) {
        ringo_chan *c = i % 3 == 0 ? ringo_after(0) : i % 3 == 1 ? ringo_after(3600 * 1000 * MS)
                                                                   : ringo_tick(3600 * 1000 * MS);
        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(ringo_chan_send(unref_handoff, &c), 0);
    }
    int one = 1;
    ck_assert_int_eq(ringo_chan_recv(unref_done, &one), 0);
    /* The stops' tasks run when this proc next looks at its tasks. */
    for (int n = 0; promised_here() != base; n++) {
        ck_assert_int_lt(n, 100000);
        ringo_sleep(10 * US);
    }
}

static void unref_main(void *arg)
{
    (void)arg;
    size_t base = promised_here();

    /* Released at once, on the owner: stopped on the spot. */
    for (int i = 0; i < UNREF_N; i++)
        ringo_chan_release(i % 2 ? ringo_after(3600 * 1000 * MS) : ringo_tick(3600 * 1000 * MS));
    ck_assert_uint_eq(promised_here(), base);

    /* Another holder keeps it: it fires, for that holder. */
    ringo_chan *c = ringo_after(1 * MS);
    ringo_chan *other = ringo_chan_retain(c);
    ringo_chan_release(c);
    ck_assert_uint_eq(promised_here(), base + 1);
    int64_t v = 0;
    ck_assert_int_eq(ringo_chan_recv(other, &v), 0);
    ck_assert_int_gt(v, 0);
    ck_assert_uint_eq(promised_here(), base); /* fired: gone */
    ck_assert_uint_eq(atomic_load(&other->refs), 1);
    ringo_chan_release(other);

    /* ringo_tick_stop stops a ringo_after timer: nothing is delivered to
     * the holder left. */
    c = ringo_after(3600 * 1000 * MS);
    other = ringo_chan_retain(c);
    ringo_tick_stop(c);
    ck_assert_uint_eq(promised_here(), base);
    ck_assert_int_eq(ringo_chan_try_recv(other, &v), -EAGAIN);
    ck_assert_uint_eq(atomic_load(&other->refs), 1);
    ringo_chan_release(other);

    /* Made on another proc, released here. */
    if (ringo_nprocs() > 1) {
        unref_handoff = ringo_chan_make(sizeof(ringo_chan *), 0);
        unref_done = ringo_chan_make(sizeof(int), 0);
        ck_assert_int_gt(ringo_go_on(1, unref_maker, NULL), 0);
        for (int i = 0; i < UNREF_N; i++) {
            ringo_chan *t;
            ck_assert_int_eq(ringo_chan_recv(unref_handoff, &t), 0);
            ringo_chan_release(t);
        }
        int one = 1;
        ck_assert_int_eq(ringo_chan_send(unref_done, &one), 0);
        while (ringo_count() > 1)
            ringo_sleep(10 * US);
        ringo_chan_release(unref_handoff);
        ringo_chan_release(unref_done);
    }
}

START_TEST(unreferenced_timers_are_stopped)
{
    RUN(unref_main, NULL, nprocs_param);
}
END_TEST

/* Two holders release a ticker at once, each looking at the count (3: the
 * two and the timer's) before the other's decrement.  The one held
 * between its look and its act (timer_release_seam), a plain thread,
 * finds the count moved and looks again, so the ticker stops.  Then the
 * state that a release meeting a ticker's own send leaves (the send's
 * short reference made the last holder's release see one too many): the
 * last holder's reference gone without a stop, which tick_fire_seam makes
 * just after a send; the ticker stops itself. */
static atomic_int rel_armed, rel_inside, rel_go;
static ringo_chan *held_ticker;
static _Atomic(ringo_chan *) fire_dropped;

static void held_release_seam(ringo_chan *c)
{
    (void)c;
    if (!atomic_exchange(&rel_armed, 0))
        return; /* the other holder's release */
    atomic_store(&rel_inside, 1);
    for (long n = 0; !atomic_load(&rel_go); n++) {
        sched_yield();
        ck_assert_int_lt(n, 100000000L);
    }
}

static void *held_releaser(void *arg)
{
    (void)arg;
    ringo_chan_release(held_ticker);
    return NULL;
}

static void drop_at_fire(ringo_chan *c)
{
    ringo_chan *want = c;
    if (atomic_compare_exchange_strong(&fire_dropped, &want, NULL))
        chan_unref(c); /* the last holder's reference */
}

static void release_race_main(void *arg)
{
    (void)arg;
    size_t base = promised_here();
    held_ticker = ringo_tick(3600 * 1000 * MS);
    ck_assert_ptr_nonnull(held_ticker);
    ringo_chan_retain(held_ticker); /* the thread's */
    atomic_store(&rel_inside, 0);
    atomic_store(&rel_go, 0);
    atomic_store(&rel_armed, 1);
    timer_release_seam = held_release_seam;
    pthread_t th;
    ck_assert_int_eq(test_thread_create(&th, held_releaser, NULL), 0);
    for (long n = 0; !atomic_load(&rel_inside); n++) {
        ck_assert_int_lt(n, 1000000L);
        ringo_sleep(10 * US);
    }
    ringo_chan_release(held_ticker); /* looks at 3 too */
    ck_assert_uint_eq(promised_here(), base + 1); /* the thread still holds it */
    atomic_store(&rel_go, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    timer_release_seam = NULL;
    for (int n = 0; promised_here() != base; n++) { /* its stop's task runs here */
        ck_assert_int_lt(n, 100000);
        ringo_sleep(10 * US);
    }

    ringo_chan *t = ringo_tick(1 * MS);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(promised_here(), base + 1);
    atomic_store(&fire_dropped, t); /* our reference is the seam's to drop */
    tick_fire_seam = drop_at_fire;
    for (int n = 0; promised_here() != base; n++) {
        ck_assert_int_lt(n, 100000);
        ringo_sleep(10 * US);
    }
    tick_fire_seam = NULL;
    ck_assert_ptr_null(atomic_load(&fire_dropped));
}

START_TEST(timer_released_by_two_at_once)
{
    RUN(release_race_main, NULL, nprocs_param);
}
END_TEST

/* Two holders stop one ticker, in the order that broke it: B looks at the
 * ticker, then A (the creator, on the owner proc, where a stop frees the
 * ticker on the spot) stops it and returns, then B goes on with what it
 * saw.  tick_stop_seam holds B between its look and its act.  B is a plain
 * thread, then a goroutine (on the other proc when there are two).
 * Exactly one stop takes effect: the timer's own reference is released
 * once, and B's and A's each once, leaving the one kept here.  (Under
 * AddressSanitizer, B acting on a ticker A freed is a use after free.) */
static atomic_int seam_armed;   /* 1: the next stop to reach the seam is B's */
static atomic_int seam_inside;  /* B is held in the seam */
static atomic_int seam_release; /* A has stopped: B may go on */

static void ordered_seam(ringo_chan *c)
{
    (void)c;
    if (!atomic_exchange(&seam_armed, 0))
        return; /* A's own stop, or another round's */
    atomic_store(&seam_inside, 1);
    for (long n = 0; !atomic_load(&seam_release); n++) {
        if (ringo_id() > 0)
            ringo_yield(); /* a goroutine: let its proc run A */
        else
            sched_yield();
        ck_assert_int_lt(n, 100000000L);
    }
}

static ringo_chan *ordered_ticker;

static void ordered_b_goroutine(void *arg)
{
    (void)arg;
    ringo_tick_stop(ordered_ticker);
}

static void *ordered_b_thread(void *arg)
{
    (void)arg;
    ringo_tick_stop(ordered_ticker);
    return NULL;
}

static void ordered_stops_main(void *arg)
{
    (void)arg;
    tick_stop_seam = ordered_seam;
    for (int b_is_goroutine = 0; b_is_goroutine < 2; b_is_goroutine++) {
        ordered_ticker = ringo_tick(100 * US);
        ck_assert_ptr_nonnull(ordered_ticker);
        ringo_chan *keep = ringo_chan_retain(ordered_ticker);
        ringo_chan_retain(ordered_ticker); /* B's reference */
        atomic_store(&seam_inside, 0);
        atomic_store(&seam_release, 0);
        atomic_store(&seam_armed, 1);
        pthread_t th;
        if (b_is_goroutine)
            ck_assert_int_gt(ringo_go_on(ringo_nprocs() - 1, ordered_b_goroutine, NULL), 0);
        else
            ck_assert_int_eq(test_thread_create(&th, ordered_b_thread, NULL), 0);
        for (long n = 0; !atomic_load(&seam_inside); n++) {
            ringo_sleep(10 * US);
            ck_assert_int_lt(n, 1000000L);
        }
        ringo_tick_stop(ordered_ticker); /* A */
        atomic_store(&seam_release, 1);
        if (b_is_goroutine)
            while (ringo_count() > 1)
                ringo_sleep(10 * US);
        else
            pthread_join(th, NULL);
        /* B's stop, if it was the one, runs on this proc: when we park. */
        for (int n = 0; n < 100000 && atomic_load(&keep->refs) != 1; n++)
            ringo_sleep(10 * US);
        ck_assert_uint_eq(atomic_load(&keep->refs), 1);
        ringo_chan_release(keep);
    }
    tick_stop_seam = NULL;
}

START_TEST(ticker_stopped_by_two_in_the_worst_order)
{
    RUN(ordered_stops_main, NULL, nprocs_param);
}
END_TEST

/* One ticker stopped by many holders at once: plain threads, and
 * goroutines on every proc, each with its own reference, all let go at
 * once by one store that they spin on, while the creator stops it too (on
 * the owner proc, where a stop frees the timer on the spot).  Exactly one
 * stop takes effect; every stop releases its reference; the timer releases
 * its own exactly once (the channel's count comes back to the one reference
 * kept here).  Under AddressSanitizer this also shows that no stop touches
 * the ticker's state after another one freed it. */
#define STOP_THREADS 3
#define STOP_GOROUTINES 4

struct stop_round {
    ringo_chan *ticker;
    ringo_waitgroup wg;
};

static struct stop_round *stop_rounds;
static int stop_nrounds;
static atomic_int stop_go;        /* rounds whose holders may stop */

static void *stop_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < stop_nrounds; i++) {
        while (atomic_load(&stop_go) <= i)
            ;
        ringo_tick_stop(stop_rounds[i].ticker);
        ringo_waitgroup_done(&stop_rounds[i].wg);
    }
    return NULL;
}

static void stop_goroutine(void *arg)
{
    struct stop_round *r = arg;
    int i = (int)(r - stop_rounds);
    while (atomic_load(&stop_go) <= i)
        ringo_yield();
    ringo_tick_stop(r->ticker);
    ringo_waitgroup_done(&r->wg);
}

static void ticker_stops_main(void *arg)
{
    (void)arg;
    pthread_t th[STOP_THREADS];
    for (int k = 0; k < STOP_THREADS; k++)
        ck_assert_int_eq(test_thread_create(&th[k], stop_thread, NULL), 0);
    int nprocs = ringo_nprocs();
    for (int i = 0; i < stop_nrounds; i++) {
        struct stop_round *r = &stop_rounds[i];
        r->ticker = ringo_tick(100 * US);
        ck_assert_ptr_nonnull(r->ticker);
        ringo_chan *keep = ringo_chan_retain(r->ticker);
        ringo_waitgroup_add(&r->wg, STOP_THREADS + STOP_GOROUTINES);
        for (int k = 0; k < STOP_THREADS + STOP_GOROUTINES; k++)
            ringo_chan_retain(r->ticker);
        for (int k = 0; k < STOP_GOROUTINES; k++)
            ck_assert_int_gt(ringo_go_on(k % nprocs, stop_goroutine, r), 0);
        ringo_yield(); /* the goroutines here start spinning (yielding) */
        atomic_store(&stop_go, i + 1);
        ringo_tick_stop(r->ticker); /* the creator's reference: one more stop */
        ringo_waitgroup_wait(&r->wg);
        /* The owner (this proc) frees the timer, and with it the timer's
         * reference, when it runs the stop: at once, or when this
         * goroutine parks or yields. */
        for (int tries = 0; tries < 100000 && atomic_load(&keep->refs) != 1; tries++)
            ringo_sleep(10 * US);
        ck_assert_uint_eq(atomic_load(&keep->refs), 1);
        ringo_chan_release(keep);
    }
    for (int k = 0; k < STOP_THREADS; k++)
        pthread_join(th[k], NULL);
}

START_TEST(ticker_stopped_by_many_at_once)
{
    stop_nrounds = test_quick() ? 50 : 300;
    stop_rounds = calloc((size_t)stop_nrounds, sizeof *stop_rounds);
    ck_assert_ptr_nonnull(stop_rounds);
    atomic_store(&stop_go, 0);
    RUN(ticker_stops_main, NULL, nprocs_param);
    free(stop_rounds);
}
END_TEST

/* No tick is sent after ringo_tick_stop has returned, though the stop
 * runs on another proc than the ticker's owner, which may be firing it
 * meanwhile (timerchan.c "No tick after a stop").  A ticker of 100 us made
 * on proc 0, stopped from the last proc at a random point, drained after
 * 1 ms: every tick left carries a time from before the stop returned. */
static ringo_chan *late_hand;
static atomic_int late_ticks;
static ringo_waitgroup late_wg;

static void late_owner(void *arg)
{
    (void)arg;
    ringo_chan *t = ringo_tick(100 * US);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(ringo_chan_send(late_hand, &t), 0);
    ringo_waitgroup_done(&late_wg);
}

static void late_stopper(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    ringo_chan *t;
    ck_assert_int_eq(ringo_chan_recv(late_hand, &t), 0);
    ringo_sleep((int64_t)(rand_r(&seed) % 300) * US);
    ringo_chan_retain(t);
    ringo_tick_stop(t); /* drops the ticker's reference */
    int64_t stopped = ringo_now();
    ringo_sleep(1 * MS);
    int64_t v;
    while (ringo_chan_try_recv(t, &v) == 0)
        if (v > stopped)
            atomic_fetch_add(&late_ticks, 1);
    ringo_chan_release(t);
    ringo_waitgroup_done(&late_wg);
}

static void main_late_ticks(void *arg)
{
    (void)arg;
    late_hand = ringo_chan_make(sizeof(ringo_chan *), 0);
    ck_assert_ptr_nonnull(late_hand);
    int rounds = test_quick() ? 200 : 1000;
    for (int i = 0; i < rounds; i++) {
        ringo_waitgroup_add(&late_wg, 2);
        ck_assert_int_gt(ringo_go_on(0, late_owner, NULL), 0);
        ck_assert_int_gt(ringo_go_on(ringo_nprocs() - 1, late_stopper, (void *)(uintptr_t)i), 0);
        ringo_waitgroup_wait(&late_wg);
    }
    ringo_chan_release(late_hand);
    ck_assert_int_eq(atomic_load(&late_ticks), 0);
}

START_TEST(no_tick_after_stop_returns)
{
    atomic_store(&late_ticks, 0);
    RUN(main_late_ticks, NULL, nprocs_param);
}
END_TEST

/* A ticker made by a plain thread is armed by a task on its owner proc;
 * a goroutine on that proc that stops it before the task has run (it got
 * the channel without yielding) must not free it under the task, which
 * would arm freed memory (AddressSanitizer and valgrind see it; the plain
 * build may not).  One proc: the owner is the stopper's proc. */
static _Atomic(ringo_chan *) early_tick;

static void *early_maker(void *arg)
{
    (void)arg;
    ringo_chan *t = ringo_tick(50 * US);
    ck_assert_ptr_nonnull(t);
    atomic_store(&early_tick, t);
    return NULL;
}

static void main_early_stop(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, early_maker, NULL), 0);
        ringo_chan *t;
        while (!(t = atomic_load(&early_tick)))
            ; /* no yield: the owner's arming task waits behind us */
        atomic_store(&early_tick, NULL);
        ringo_tick_stop(t);
        ringo_sleep(1 * MS); /* the task runs */
        ck_assert_int_eq(pthread_join(th, NULL), 0);
    }
}

START_TEST(ticker_stopped_before_its_arming)
{
    RUN(main_early_stop, NULL, 1);
}
END_TEST

/* A plain thread makes a ticker and stops it as the run ends, after its
 * owner proc has left its loop: both tasks (the arming, then the stop)
 * are discarded, and in that order, since the stop's frees the ticker
 * that the arming's reads (AddressSanitizer and valgrind see the use
 * after free of the other order).  teardown_seam makes the calls from
 * ringo_run's own thread, at that moment. */
static atomic_int late_pairs;

static void tick_at_teardown(void)
{
    for (int i = 0; i < 8; i++) {
        ringo_chan *t = ringo_tick(1000 * MS);
        ck_assert_ptr_nonnull(t); /* the run still takes plain threads' calls */
        ringo_tick_stop(t); /* and releases it */
        atomic_fetch_add(&late_pairs, 1);
    }
}

static void main_nothing(void *arg)
{
    (void)arg;
}

START_TEST(ticker_made_and_stopped_as_the_run_ends)
{
    atomic_store(&late_pairs, 0);
    teardown_seam = tick_at_teardown;
    RUN(main_nothing, NULL, nprocs_param);
    teardown_seam = NULL;
    ck_assert_int_eq(atomic_load(&late_pairs), 8);
}
END_TEST

/* After a deadlock verdict the parked goroutines are discarded, though
 * they stay on their channels until the run's end unlinks them (after
 * teardown_seam).  A plain thread's call in between must not hand a
 * value to one, nor take one from one (runtime.c "The verdict and plain
 * threads"): the try calls find nobody there, where they returned 0 and
 * the value sent was lost.  teardown_seam makes them from ringo_run's own
 * thread, a plain thread, at that moment. */
static ringo_chan *late_recv_ch, *late_send_ch;
static atomic_int late_results[4];

static void late_receiver(void *arg)
{
    (void)arg;
    int v;
    ringo_chan_recv(late_recv_ch, &v);
}

static void late_sender(void *arg)
{
    (void)arg;
    int v = 7;
    ringo_chan_send(late_send_ch, &v);
}

static void main_leave_two_parked(void *arg)
{
    (void)arg;
    ringo_go(late_receiver, NULL);
    ringo_go(late_sender, NULL);
}

static void calls_after_the_verdict(void)
{
    int v = 5;
    atomic_store(&late_results[0], ringo_chan_try_send(late_recv_ch, &v));
    v = 0;
    atomic_store(&late_results[1], ringo_chan_try_recv(late_send_ch, &v));
    atomic_store(&late_results[2], v);
    struct ringo_case cs[2] = {
        { .chan = late_recv_ch, .op = RINGO_SEND, .elem = &v },
        { .chan = late_send_ch, .op = RINGO_RECV, .elem = &v },
    };
    atomic_store(&late_results[3], ringo_select(cs, 2, RINGO_NONBLOCK));
}

START_TEST(plain_thread_calls_after_a_deadlock_verdict)
{
    for (int ch = 0; ch < 2; ch++) {
        size_t cap = ch == 0 ? 0 : 1; /* a receiver waits on an empty buffer too */
        late_recv_ch = ringo_chan_make(sizeof(int), cap);
        late_send_ch = ringo_chan_make(sizeof(int), 0);
        teardown_seam = calls_after_the_verdict;
        int devnull = open("/dev/null", O_WRONLY);
        int saved = dup(2);
        dup2(devnull, 2); /* the deadlock's report */
        int r = run_procs(main_leave_two_parked, NULL, nprocs_param);
        dup2(saved, 2);
        close(devnull);
        close(saved);
        teardown_seam = NULL;
        ck_assert_int_eq(r, -EDEADLK);
        /* the buffered channel takes the value into its buffer */
        ck_assert_int_eq(atomic_load(&late_results[0]), cap ? 0 : -EAGAIN);
        ck_assert_int_eq(atomic_load(&late_results[1]), -EAGAIN);
        ck_assert_int_eq(atomic_load(&late_results[2]), 0);
        ck_assert_int_eq(atomic_load(&late_results[3]), -EAGAIN);
        /* and keeps it after the run */
        int v = 0;
        ck_assert_int_eq(ringo_chan_try_recv(late_recv_ch, &v), cap ? 0 : -EAGAIN);
        ck_assert_int_eq(v, cap ? 5 : 0);
        ck_assert_int_eq(ringo_chan_try_recv(late_send_ch, &v), -EAGAIN);
        ringo_chan_release(late_recv_ch);
        ringo_chan_release(late_send_ch);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* ringo_dump: every goroutine with its state and what it waits on. */

static ringo_chan *dump_ch;

static void dump_waiter(void *arg)
{
    (void)arg;
    int x;
    ringo_chan_recv(dump_ch, &x);
}

static char dump_buf[8192];

static void dump_main(void *arg)
{
    (void)arg;
    dump_ch = ringo_chan_make(sizeof(int), 0);
    int64_t id = ringo_go(dump_waiter, NULL);
    char want[128];
    snprintf(want, sizeof want, "goroutine %lld [chan receive, on %p, ", (long long)id,
             (void *)dump_ch);
    /* Until it has parked on the channel (a slow or emulated machine may
     * take a while to run it), for 5 s at most. */
    for (int tries = 0; tries < 5000; tries++) {
        ringo_sleep(1 * MS);
        FILE *f = tmpfile();
        ck_assert_ptr_nonnull(f);
        ringo_dump(fileno(f));
        rewind(f);
        size_t n = fread(dump_buf, 1, sizeof dump_buf - 1, f);
        dump_buf[n] = '\0';
        fclose(f);
        if (strstr(dump_buf, want))
            break;
    }
    ck_assert_msg(strstr(dump_buf, want) != NULL, "want \"%s\" in:\n%s", want, dump_buf);
    snprintf(want, sizeof want, "goroutine %lld [running]: created by ", (long long)ringo_id());
    ck_assert_msg(strstr(dump_buf, want) != NULL, "want \"%s\" in:\n%s", want, dump_buf);
    ck_assert_ptr_nonnull(strstr(dump_buf, " on proc "));
    /* Goroutines alike (state, wait, function, creator) share a line with
     * their count, so a dump of many stays short. */
    for (int i = 0; i < 50; i++)
        ck_assert_int_gt(ringo_go(dump_waiter, NULL), 0);
    snprintf(want, sizeof want, "50 goroutines [chan receive, ");
    for (int tries = 0; tries < 5000; tries++) {
        ringo_sleep(1 * MS);
        FILE *f = tmpfile();
        ck_assert_ptr_nonnull(f);
        ringo_dump(fileno(f));
        rewind(f);
        size_t n = fread(dump_buf, 1, sizeof dump_buf - 1, f);
        dump_buf[n] = '\0';
        fclose(f);
        if (strstr(dump_buf, want))
            break;
    }
    ck_assert_msg(strstr(dump_buf, want) != NULL, "want \"%s\" in:\n%s", want, dump_buf);
    ck_assert_msg(strstr(dump_buf, " ms]: created by ") != NULL, "%s", dump_buf);
    /* the creator, a static function: named where the dump reads the
     * symbol table (libdw), else as the executable and an offset */
    ck_assert_msg(strstr(dump_buf, " by dump_main+0x") != NULL ||
                      strstr(dump_buf, " by check_chan+0x") != NULL,
                  "%s", dump_buf);
    int lines = 0; /* headers; the stack lines under them are indented */
    for (char *p = dump_buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (*p != ' ')
            lines++;
    ck_assert_int_eq(lines, 3); /* main, the first waiter, the 50 */
    ringo_chan_close(dump_ch);
    while (ringo_count() > 1)
        ringo_sleep(100 * US);
    ringo_chan_release(dump_ch);
}

START_TEST(dump_lists_goroutines_and_their_waits)
{
    RUN(dump_main, NULL, nprocs_param);
    /* outside a run it says so */
    FILE *f = tmpfile();
    ringo_dump(fileno(f));
    rewind(f);
    size_t n = fread(dump_buf, 1, sizeof dump_buf - 1, f);
    dump_buf[n] = '\0';
    fclose(f);
    ck_assert_ptr_nonnull(strstr(dump_buf, "no run in progress"));
}
END_TEST

/* ------------------------------------------------------------------ */
/* Deadlock detection */

static ringo_chan *dl;

static void stuck_receiver(void *arg)
{
    (void)arg;
    int x;
    ringo_chan_recv(dl, &x);
}

static void deadlock_main(void *arg)
{
    (void)arg;
    dl = ringo_chan_make(sizeof(int), 0);
    ringo_go(stuck_receiver, NULL);
    ringo_go(stuck_receiver, NULL);
    int x;
    ringo_chan_recv(dl, &x); /* main blocks too: nobody can ever send */
}

static void child_deadlock(void)
{
    struct ringo_config cfg = { .procs = test_max_procs() };
    int r = ringo_run(deadlock_main, NULL, &cfg);
    if (r != -EDEADLK)
        _exit(1);
    /* The blocked goroutines were discarded: none is live any more
     * (ringo_id(3)), and the run's totals say so too. */
    if (ringo_count() != 0)
        _exit(4);
    struct ringo_stats st;
    if (ringo_stats(&st) != 0 || st.goroutines != 0 || st.spawned != 3)
        _exit(5);
    /* and, as after any run, nothing can be spawned into it */
    if (ringo_go(stuck_receiver, NULL) != -EINVAL)
        _exit(6);
    /* the channel survived the discarded goroutines, and a new run works */
    int v = 5;
    if (ringo_chan_try_send(dl, &v) != -EAGAIN)
        _exit(2);
    r = ringo_run(testutil_nop, NULL, &cfg);
    _exit(r == 0 ? 0 : 3);
}

START_TEST(deadlock_is_reported)
{
    char buf[8192];
    int st = run_captured(child_deadlock, buf, sizeof buf);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, buf);
    ck_assert_msg(strstr(buf, "ringo: all goroutines are asleep - deadlock!") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "[chan receive, ") != NULL, "%s", buf);
    /* each with where it was created: the main goroutine by ringo_run,
     * the receivers at two call sites of deadlock_main (a static function:
     * named where the dump reads the symbol table, libdw, else as the
     * executable and an offset), so two lines */
    ck_assert_msg(strstr(buf, " ms]: created by ") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, " by ringo_run\n") != NULL, "%s", buf);
    const char *by = strstr(buf, " by deadlock_main+0x") ? " by deadlock_main+0x" : " by check_chan+0x";
    char *a = strstr(buf, by);
    ck_assert_msg(a && strstr(a + 1, by), "%s", buf);
    /* one line per goroutine: main and two receivers */
    int lines = 0;
    for (char *p = buf; (p = strstr(p, "goroutine ")); p++)
        lines++;
    ck_assert_int_eq(lines, 3);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Spinning in place (sched.c): a goroutine that parks on a channel while
 * its proc has nothing else to run spins on its own park word, and a peer
 * on the other proc hands it the value without queueing it, so neither
 * side switches.  Unbuffered ping-pong across the two procs: parked as
 * usual, each one-way hand-off would make the receiver switch away and
 * back (2 switches, 4 per round trip); spinning, none.  Counted with
 * ringo_stats, and the bound leaves room for most of the spins to fail
 * (a loaded host that takes a CPU away for longer than a spin), so only
 * a run in which (nearly) no hand-off spun fails. */
#define SPIN_ROUNDS 2000

/* A value too large for a channel's slot (chan.c "Meeting in the slot"),
 * or, in its first field alone, one that fits. */
struct big { long v, pad[3]; };

struct spin_pp { ringo_chan *ping, *pong; ringo_waitgroup done; };

/* Answers each ping until ping is closed.  It holds no reference of its
 * own: the test releases the channels only after done. */
static void spin_partner(void *arg)
{
    struct spin_pp *pp = arg;
    struct big v = { 0 };
    while (ringo_chan_recv(pp->ping, &v) == 0) {
        v.v++;
        ringo_chan_send(pp->pong, &v);
    }
    ringo_waitgroup_done(&pp->done);
}

/* arg: the element size, sizeof(long) (the hand-offs meet in the slot)
 * or sizeof(struct big) (the receiver spins on its park word). */
static void spin_pingpong_main(void *arg)
{
    size_t size = (size_t)(intptr_t)arg;
    if (ringo_nprocs() < 2)
        return; /* capped by RINGO_TEST_MAX_PROCS: one proc never spins */
    struct spin_pp pp = { ringo_chan_make(size, 0), ringo_chan_make(size, 0), RINGO_WAITGROUP_INIT };
    ringo_waitgroup_add(&pp.done, 1);
    ck_assert_int_ge(ringo_go_on(1, spin_partner, &pp), 0);
    struct big v = { 0 };
    ck_assert_int_eq(ringo_chan_send(pp.ping, &v), 0); /* the partner runs */
    ck_assert_int_eq(ringo_chan_recv(pp.pong, &v), 0);
    struct ringo_stats a, b;
    int64_t t0 = ringo_now();
    ck_assert_int_eq(ringo_stats(&a), 0);
    for (long i = 0; i < SPIN_ROUNDS; i++) {
        v.v = 2 * i;
        ck_assert_int_eq(ringo_chan_send(pp.ping, &v), 0);
        ck_assert_int_eq(ringo_chan_recv(pp.pong, &v), 0);
        ck_assert_int_eq(v.v, 2 * i + 1);
    }
    ck_assert_int_eq(ringo_stats(&b), 0);
    int64_t t1 = ringo_now();
    uint64_t switches = b.switches - a.switches;
    ck_assert_msg(switches < 3 * SPIN_ROUNDS, "%llu switches in %d round trips",
                  (unsigned long long)switches, SPIN_ROUNDS);
    /* Through the slot, a hand-off readies nobody: no cross-proc wake,
     * where the spin on the park word makes one per hand-off (2 per
     * round trip).  Room for most of the spins to fail, as above. */
    uint64_t wakes = b.cross_wakes - a.cross_wakes;
    if (size <= sizeof(long))
        ck_assert_msg(wakes < SPIN_ROUNDS, "%llu cross-proc wakes in %d round trips",
                      (unsigned long long)wakes, SPIN_ROUNDS);
    ck_assert_uint_gt(b.spins_found, a.spins_found);
    /* Spun time, counted (in CPU ticks, converted at the run's tick
     * rate), and no more than the two procs' whole time meanwhile */
    ck_assert_uint_gt(b.spin_ns, a.spin_ns);
    ck_assert_msg(b.spin_ns - a.spin_ns <= (uint64_t)(2 * (t1 - t0)), "%llu ns spun in %lld ns",
                  (unsigned long long)(b.spin_ns - a.spin_ns), (long long)(t1 - t0));
    /* The partner may be anywhere in its last receive when ping is
     * closed, not only waiting (a waiter that the close ends does not
     * touch ping again, chan.c "Releasing"; a receive still on its way
     * to the lock does): wait for it before the channels go. */
    ringo_chan_close(pp.ping);
    ringo_waitgroup_wait(&pp.done);
    ringo_chan_release(pp.ping);
    ringo_chan_release(pp.pong);
}

START_TEST(crossproc_handoff_spins_in_place)
{
    RUN(spin_pingpong_main, (void *)(intptr_t)sizeof(struct big), 2);
}
END_TEST

START_TEST(crossproc_handoff_meets_in_slot)
{
    RUN(spin_pingpong_main, (void *)(intptr_t)sizeof(long), 2);
}
END_TEST

/* The race a spin ends with: the spinner gives up (here: another
 * goroutine of its proc is readied, which puts work on its inbox) just as
 * a peer claims it.  Whichever wins the park word, the value arrives
 * exactly once and in order, and nobody waits for a wake that does not
 * come (deadlock detection would end the run).  R and D on proc 1, their
 * senders S and T on proc 0: every value T hands D interrupts R's spin. */
struct spin_race;
struct spin_rx { struct spin_race *sr; ringo_chan *c; long got; };
struct spin_race { ringo_chan *c, *d; long n, bad; ringo_waitgroup wg; struct spin_rx r, dr; };

/* R and D alike: receive until the close, checking the order. */
static void spin_race_rx(void *arg)
{
    struct spin_rx *rx = arg;
    struct big v = { 0 };
    while (ringo_chan_recv(rx->c, &v) == 0)
        if (v.v != rx->got++)
            rx->sr->bad++;
    ringo_waitgroup_done(&rx->sr->wg);
}

static void spin_race_t(void *arg)
{
    struct spin_race *sr = arg;
    for (struct big v = { 0 }; v.v < sr->n; v.v++)
        ck_assert_int_eq(ringo_chan_send(sr->d, &v), 0);
    ringo_chan_close(sr->d);
    ringo_waitgroup_done(&sr->wg);
}

/* arg: the element size, as for spin_pingpong_main: R's spins are in
 * the slot, or on its park word. */
static void spin_race_main(void *arg)
{
    size_t size = (size_t)(intptr_t)arg;
    struct spin_race sr = { ringo_chan_make(size, 0), ringo_chan_make(size, 0),
                            test_quick() ? 2000 : 20000, 0, RINGO_WAITGROUP_INIT, { 0 }, { 0 } };
    sr.r = (struct spin_rx){ &sr, sr.c, 0 };
    sr.dr = (struct spin_rx){ &sr, sr.d, 0 };
    unsigned other = ringo_nprocs() - 1; /* 0 when capped to one proc */
    ringo_waitgroup_add(&sr.wg, 3);
    ck_assert_int_ge(ringo_go_on(other, spin_race_rx, &sr.r), 0);
    ck_assert_int_ge(ringo_go_on(other, spin_race_rx, &sr.dr), 0);
    ck_assert_int_ge(ringo_go_on(0, spin_race_t, &sr), 0);
    for (struct big v = { 0 }; v.v < sr.n; v.v++)
        ck_assert_int_eq(ringo_chan_send(sr.c, &v), 0);
    ringo_chan_close(sr.c);
    ringo_waitgroup_wait(&sr.wg);
    ck_assert_int_eq(sr.bad, 0);
    ck_assert_int_eq(sr.r.got, sr.n);
    ck_assert_int_eq(sr.dr.got, sr.n);
    ringo_chan_release(sr.c);
    ringo_chan_release(sr.d);
}

START_TEST(spinning_receiver_interrupted_by_other_work)
{
    RUN(spin_race_main, (void *)(intptr_t)sizeof(long), 2);
    RUN(spin_race_main, (void *)(intptr_t)sizeof(struct big), 2);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Meeting in the slot (chan.c): a goroutine on proc 1 blocks on an
 * unbuffered channel while its proc has nothing else to run, and waits in
 * the channel's slot; the test, on proc 0, ends its operation a moment
 * later, most times while it is still there, otherwise after it queued.
 * Whichever it was, Go's rules hold.  One proc: the same code, queued. */

enum slot_op { SLOT_T_RECV, SLOT_T_SEND };

struct slot_t {
    ringo_chan *c;
    enum slot_op op;
    bool retain;             /* hold a reference of its own, released at the end */
    _Atomic int started;
    int r;
    long v;
    int64_t id;
};

static void slot_party(void *arg)
{
    struct slot_t *t = arg;
    t->id = ringo_id();
    atomic_store(&t->started, 1);
    if (t->op == SLOT_T_RECV) {
        t->v = -1;
        t->r = ringo_chan_recv(t->c, &t->v);
    } else {
        t->r = ringo_chan_send(t->c, &t->v);
    }
    if (t->retain)
        ringo_chan_release(t->c);
    atomic_store(&t->started, 2);
}

/* Start the party on the other proc and let it reach its wait: a few
 * microseconds, well within a spin. */
static void slot_start(struct slot_t *t)
{
    atomic_store(&t->started, 0);
    ck_assert_int_ge(go_other(slot_party, t), 0);
    while (atomic_load(&t->started) == 0)
        ringo_yield();
    for (int64_t until = ringo_now() + 5000; ringo_now() < until;)
        ;
}

static void slot_finish(struct slot_t *t)
{
    while (atomic_load(&t->started) != 2)
        ringo_yield();
}

/* A close ends a wait in the slot as it ends a queued one: a receive
 * gets the zero value and -EPIPE, a send -EPIPE. */
static void slot_close_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        struct slot_t t = { ringo_chan_make(sizeof(long), 0), i & 1 ? SLOT_T_SEND : SLOT_T_RECV,
                            false, 0, 1, 7, 0 };
        slot_start(&t);
        ck_assert_int_eq(ringo_chan_close(t.c), 0);
        slot_finish(&t);
        ck_assert_int_eq(t.r, -EPIPE);
        if (t.op == SLOT_T_RECV)
            ck_assert_int_eq(t.v, 0);
        ringo_chan_release(t.c);
    }
}

START_TEST(slot_wait_ended_by_close)
{
    RUN(slot_close_main, NULL, nprocs_param);
}
END_TEST

/* The try forms and select find a party in the slot: they take its value
 * or give it theirs.  Through the slot nobody is readied: cross-proc
 * wakes beyond the spawns, fewer than half the operations, tell that
 * most met there. */
static void slot_try_main(void *arg)
{
    (void)arg;
    enum { N = 400 };
    struct ringo_stats a, b;
    ck_assert_int_eq(ringo_stats(&a), 0);
    ringo_chan *c = ringo_chan_make(sizeof(long), 0);
    for (long i = 0; i < N; i++) {
        struct slot_t t = { c, i & 1 ? SLOT_T_RECV : SLOT_T_SEND, false, 0, 1, 100 + i, 0 };
        slot_start(&t);
        long v = 100 + i, got = -1;
        int r;
        switch (i % 4) {
        case 0: /* t sends; try_recv takes it */
            while ((r = ringo_chan_try_recv(c, &got)) == -EAGAIN)
                ;
            break;
        case 1: /* t receives; try_send gives it */
            while ((r = ringo_chan_try_send(c, &v)) == -EAGAIN)
                ;
            break;
        case 2: { /* t sends; a blocking select takes it */
            struct ringo_case cs = { c, RINGO_RECV, &got, 0 };
            r = ringo_select(&cs, 1, 0);
            break;
        }
        default: { /* t receives; a blocking select gives it */
            struct ringo_case cs = { c, RINGO_SEND, &v, 0 };
            r = ringo_select(&cs, 1, 0);
            break;
        }
        }
        ck_assert_int_eq(r, 0);
        slot_finish(&t);
        ck_assert_int_eq(t.r, 0);
        ck_assert_int_eq(i & 1 ? t.v : got, 100 + i);
    }
    ck_assert_int_eq(ringo_stats(&b), 0);
    /* N of them are the parties' spawns on the other proc */
    if (ringo_nprocs() > 1 && !test_under_valgrind())
        ck_assert_msg(b.cross_wakes - a.cross_wakes < N + N / 2,
                      "%llu cross-proc wakes for %d spawns and operations",
                      (unsigned long long)(b.cross_wakes - a.cross_wakes), N);
    ringo_chan_release(c);
}

START_TEST(slot_met_by_try_and_select)
{
    RUN(slot_try_main, NULL, nprocs_param);
}
END_TEST

/* The goroutine's deadline and ringo_cancel end a wait that began in the
 * slot, and the channel is as good as new after. */
static void slot_deadline_party(void *arg)
{
    struct slot_t *t = arg;
    ringo_deadline_set(ringo_now() + 2 * MS);
    slot_party(t);
    ringo_deadline_set(RINGO_NEVER);
}

static void slot_deadline_main(void *arg)
{
    (void)arg;
    ringo_chan *c = ringo_chan_make(sizeof(long), 0);
    for (int i = 0; i < 20; i++) {
        struct slot_t t = { c, i & 1 ? SLOT_T_SEND : SLOT_T_RECV, false, 0, 1, 5, 0 };
        if (i % 4 < 2) {
            ck_assert_int_ge(go_other(slot_deadline_party, &t), 0);
            slot_finish(&t);
            ck_assert_int_eq(t.r, -ETIMEDOUT);
        } else {
            slot_start(&t);
            ck_assert_int_eq(ringo_cancel(t.id), 0);
            slot_finish(&t);
            ck_assert_int_eq(t.r, -ECANCELED);
        }
        /* usable: a fresh pair meets */
        t = (struct slot_t){ c, SLOT_T_RECV, false, 0, 1, 0, 0 };
        slot_start(&t);
        long v = 40 + i;
        ck_assert_int_eq(ringo_chan_send(c, &v), 0);
        slot_finish(&t);
        ck_assert_int_eq(t.r, 0);
        ck_assert_int_eq(t.v, 40 + i);
    }
    ringo_chan_release(c);
}

START_TEST(slot_wait_ended_by_deadline_or_cancel)
{
    RUN(slot_deadline_main, NULL, nprocs_param);
}
END_TEST

/* The party that completes the other half may free the channel at once
 * (chan.c "Releasing"): here the waiter holds no reference and the test
 * releases the only one right after its operation, while the waiter may
 * still be leaving the slot.  Under a sanitizer, a touch of the freed
 * channel is an error. */
static void slot_release_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < (test_quick() ? 200 : 2000); i++) {
        struct slot_t t = { ringo_chan_make(sizeof(long), 0), i & 1 ? SLOT_T_SEND : SLOT_T_RECV,
                            false, 0, 1, 9, 0 };
        slot_start(&t);
        long v = 9;
        ck_assert_int_eq(t.op == SLOT_T_RECV ? ringo_chan_send(t.c, &v) : ringo_chan_recv(t.c, &v), 0);
        ringo_chan_release(t.c);
        slot_finish(&t);
        ck_assert_int_eq(t.r, 0);
        ck_assert_int_eq(t.v, 9);
        ck_assert_int_eq(v, 9);
    }
}

/* A spinner that leaves the slot goes to the front of the queue: it came
 * before everyone queued behind it.  R1 (proc 1) comes first, and takes
 * the slot (or queues, when its proc may not spin); R2 (proc 0) then
 * queues; then D, parked on proc 1, is woken, which ends R1's spin (its
 * proc has work), most times after R2 queued.  Whatever R1 did, the
 * first value is R1's.  chan_wait_seam counts the waiters that reached
 * the channel. */
struct slot_fifo {
    ringo_chan *c;
    ringo_waitgroup d_wait, d_done;
    struct slot_t r1, r2;
};

static ringo_chan *fifo_chan;
static _Atomic int fifo_arrived;

static void fifo_seam(ringo_chan *c)
{
    if (c == fifo_chan)
        atomic_fetch_add(&fifo_arrived, 1);
}

static void slot_fifo_d(void *arg)
{
    struct slot_fifo *f = arg;
    ringo_waitgroup_wait(&f->d_wait); /* parks without spinning */
    ringo_waitgroup_done(&f->d_done);
}

static void slot_fifo_main(void *arg)
{
    (void)arg;
    if (ringo_nprocs() < 2)
        return; /* capped to one proc: nobody spins */
    chan_wait_seam = fifo_seam;
    for (int i = 0; i < (test_quick() ? 100 : 400); i++) {
        struct slot_fifo f = { .c = ringo_chan_make(sizeof(long), 0),
                               .d_wait = RINGO_WAITGROUP_INIT, .d_done = RINGO_WAITGROUP_INIT };
        fifo_chan = f.c;
        atomic_store(&fifo_arrived, 0);
        ringo_waitgroup_add(&f.d_wait, 1);
        ringo_waitgroup_add(&f.d_done, 1);
        ck_assert_int_ge(ringo_go_on(1, slot_fifo_d, &f), 0);
        f.r1 = (struct slot_t){ f.c, SLOT_T_RECV, false, 0, 1, 0, 0 };
        f.r2 = (struct slot_t){ f.c, SLOT_T_RECV, false, 0, 1, 0, 0 };
        ck_assert_int_ge(ringo_go_on(1, slot_party, &f.r1), 0);
        while (atomic_load(&fifo_arrived) < 1)
            ringo_yield(); /* R1 waits, in the slot or queued */
        ck_assert_int_ge(ringo_go_on(0, slot_party, &f.r2), 0);
        while (atomic_load(&fifo_arrived) < 2)
            ringo_yield(); /* R2 ran on this proc until it parked */
        ringo_waitgroup_done(&f.d_wait); /* D to proc 1's inbox: R1's spin ends */
        long v1 = 1, v2 = 2;
        ck_assert_int_eq(ringo_chan_send(f.c, &v1), 0);
        ck_assert_int_eq(ringo_chan_send(f.c, &v2), 0);
        slot_finish(&f.r1);
        slot_finish(&f.r2);
        ringo_waitgroup_wait(&f.d_done);
        ck_assert_int_eq(f.r1.r, 0);
        ck_assert_int_eq(f.r2.r, 0);
        ck_assert_msg(f.r1.v == 1 && f.r2.v == 2, "round %d: the first comer got %ld, the second %ld", i,
                      f.r1.v, f.r2.v);
        ringo_chan_release(f.c);
    }
    chan_wait_seam = NULL;
}

START_TEST(slot_leaver_goes_first)
{
    RUN(slot_fifo_main, NULL, 2);
}
END_TEST

START_TEST(slot_channel_released_at_once)
{
    RUN(slot_release_main, NULL, nprocs_param);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *suite(void)
{
    Suite *s = suite_create("chan");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, make_rejects_and_reports);
    tcase_add_test(tc, buffered_fifo_and_close_rules);
    tcase_add_test(tc, nil_channel_try_ops);
    tcase_add_test(tc, unbuffered_rendezvous);
    tcase_add_test(tc, close_wakes_everyone);
    tcase_add_test(tc, fifo_service);
    tcase_add_test(tc, buffered_order_with_blocked_sender);
    tcase_add_test(tc, zero_size_elements);
    tcase_add_test(tc, nil_channel_blocks_until_deadline_or_cancel);
    tcase_add_test(tc, deadline_and_cancel_on_channel_ops);
    tcase_add_test(tc, select_basics);
    tcase_add_test(tc, unreferenced_timers_are_stopped);
    tcase_add_test(tc, timer_released_by_two_at_once);
    tcase_add_test(tc, select_chooses_uniformly);
    tcase_add_test(tc, select_blocks_and_performs_one);
    tcase_add_test(tc, select_twice_on_a_released_channel);
    tcase_add_test(tc, bad_send_is_einval_past_the_deadline);
    tcase_add_test(tc, select_race_delivers_each_value_once);
    tcase_add_test(tc, same_proc_handoff_makes_no_syscall);
    tcase_add_test(tc, prime_sieve);
    tcase_add_test(tc, token_pipeline_10000);
    tcase_add_test(tc, many_to_many_checksum);
    tcase_add_test(tc, randomized_against_model);
    tcase_add_test(tc, crossproc_model);
    tcase_add_test(tc, done_channel_released_at_once);
    tcase_add_test(tc, plain_thread_and_goroutine);
    tcase_add_test(tc, plain_threads_without_runtime);
    tcase_add_test(tc, timer_channels);
    tcase_add_test(tc, timers_do_not_outlive_the_run);
    tcase_add_test(tc, ticker_made_and_stopped_as_the_run_ends);
    tcase_add_test(tc, plain_thread_calls_after_a_deadlock_verdict);
    tcase_add_test(tc, dump_lists_goroutines_and_their_waits);
    tcase_add_test(tc, deadlock_is_reported);
    tcase_add_test(tc, spinning_receiver_interrupted_by_other_work);
    tcase_add_test(tc, slot_wait_ended_by_close);
    tcase_add_test(tc, slot_met_by_try_and_select);
    tcase_add_test(tc, slot_wait_ended_by_deadline_or_cancel);
    tcase_add_test(tc, slot_channel_released_at_once);
    tcase_add_test(tc, slot_leaver_goes_first);
    suite_add_tcase(s, tc);
    /* Valgrind runs one thread at a time, and procs do not spin there. */
    if (!test_under_valgrind()) {
        tc = tcase_create("spin");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, crossproc_handoff_spins_in_place);
        tcase_add_test(tc, crossproc_handoff_meets_in_slot);
        suite_add_tcase(s, tc);
    }
    /* Its own case, to run alone (CK_RUN_CASE=ticker_stop) under a sanitizer. */
    if (!test_under_valgrind()) {
        tc = tcase_create("ticker_stop");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, ticker_stopped_by_two_in_the_worst_order);
        tcase_add_test(tc, ticker_stopped_by_many_at_once);
        tcase_add_test(tc, no_tick_after_stop_returns);
        tcase_add_test(tc, ticker_stopped_before_its_arming);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    skip_without_io_uring();
    return run_per_procs(suite, &nprocs_param);
}
