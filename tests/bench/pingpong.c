/*
 * pingpong — unbuffered channel ping-pong between two goroutines; the time
 * per one-way hand-off (a send completed by the matching receive).
 *
 *     bench=pingpong impl=ringo procs=N ns_per_op=W cpu_ns_per_op=C
 *
 * With BENCH_PROCS=2 the partner is bound to the other proc, so every
 * hand-off crosses procs.  Peer: go/pingpong.go.  BENCH_PINGPONG_N sets
 * the round trips (default 1M).
 */
#include <errno.h>
#include <string.h>

#include <ringo.h>

#include "bench.h"

struct pp { ringo_chan *ping, *pong; long iters; double ns[2]; };

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
    int64_t c0 = bench_cpu_ns();
    int64_t t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        ringo_chan_send(pp->ping, &i);
        ringo_chan_recv(pp->pong, &v);
    }
    int64_t t1 = bench_now();
    int64_t c1 = bench_cpu_ns();
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
    printf("bench=pingpong impl=ringo procs=%u ns_per_op=%.2f cpu_ns_per_op=%.2f\n", procs,
           pp.ns[0], pp.ns[1]);
    return 0;
}
