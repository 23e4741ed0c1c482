/*
 * pingpong — unbuffered channel ping-pong between two goroutines; the time
 * per one-way hand-off (a send completed by the matching receive).
 *
 *     bench=pingpong impl=ringo procs=N ns_per_op=W cpu_ns_per_op=C p50_ns_per_op=M
 *
 * W is the wall time per hand-off over the whole run, C the process's CPU
 * time (both procs) per hand-off, and M the median over batches of
 * BATCH round trips: on a shared machine a batch during which the host
 * ran something else on one of the vCPUs is an outlier the median
 * ignores, so M is the hand-off itself, comparable with the cache-line
 * transfer measured the same way (tests/bench/cacheline.c, which also
 * counts the lines a hand-off moves).
 *
 * With BENCH_PROCS=2 the partner is bound to the other proc, so every
 * hand-off crosses procs.  Peer: go/pingpong.go.  BENCH_PINGPONG_N sets
 * the round trips (default 1M).
 */
#include <errno.h>
#include <string.h>

#include <ringo.h>

#include "bench.h"

#define BATCH 32

struct pp { ringo_chan *ping, *pong; long iters; double ns[3]; };

static void partner(void *arg)
{
    struct pp *pp = arg;
    long v;
    while (ringo_chan_recv(pp->ping, &v) == 0)
        ringo_chan_send(pp->pong, &v);
    ringo_chan_close(pp->pong);
}

static int64_t round_trip(struct pp *pp, long iters)
{
    pp->ping = ringo_chan_make(sizeof(long), 0);
    pp->pong = ringo_chan_make(sizeof(long), 0);
    ringo_go_on((ringo_proc() + 1) % ringo_nprocs(), partner, pp);
    long v = 0;
    ringo_chan_send(pp->ping, &v); /* the partner is running */
    ringo_chan_recv(pp->pong, &v);
    long nb = iters / BATCH > 0 ? iters / BATCH : 1;
    int64_t *batch = malloc(sizeof *batch * (size_t)nb);
    if (!batch) {
        fprintf(stderr, "pingpong: out of memory\n");
        exit(1);
    }
    int64_t c0 = bench_cpu_ns();
    int64_t t0 = bench_now(), tb = t0;
    for (long i = 0; i < iters; i++) {
        ringo_chan_send(pp->ping, &i);
        ringo_chan_recv(pp->pong, &v);
        if (i % BATCH == BATCH - 1) {
            int64_t now = bench_now();
            batch[i / BATCH] = now - tb;
            tb = now;
        }
    }
    int64_t t1 = bench_now();
    int64_t c1 = bench_cpu_ns();
    if (iters >= BATCH)
        pp->ns[2] = (double)bench_quantile(batch, (size_t)(iters / BATCH), 0.5) / (2.0 * BATCH);
    free(batch);
    ringo_chan_close(pp->ping);
    while (ringo_chan_recv(pp->pong, &v) == 0)
        ;
    ringo_chan_release(pp->ping);
    ringo_chan_release(pp->pong);
    pp->ns[1] = (double)(c1 - c0) / (double)(2 * iters);
    return t1 - t0;
}

static void bench_main(void *arg)
{
    struct pp *pp = arg;
    round_trip(pp, 10000); /* warm up */
    int64_t d = round_trip(pp, pp->iters);
    pp->ns[0] = (double)d / (double)(2 * pp->iters);
}

int main(void)
{
    struct pp pp = { .iters = bench_env_long("BENCH_PINGPONG_N", 1000000) };
    unsigned procs = (unsigned)bench_env_long("BENCH_PROCS", 1);
    struct ringo_config cfg = { .procs = procs };
    int r = ringo_run(bench_main, &pp, &cfg);
    if (r < 0) {
        fprintf(stderr, "pingpong: ringo_run: %s\n", strerror(-r));
        return 1;
    }
    printf("bench=pingpong impl=ringo procs=%u ns_per_op=%.2f cpu_ns_per_op=%.2f p50_ns_per_op=%.2f\n",
           procs, pp.ns[0], pp.ns[1], pp.ns[2]);
    return 0;
}
