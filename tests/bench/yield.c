/*
 * yield — the cost of one goroutine switch: two goroutines on one proc
 * take turns with ringo_yield.  Each yield of one is a switch to the
 * other, so the time per yield is the time per switch.
 *
 *     bench=yield impl=ringo procs=1 ns_per_op=N
 *
 * Peer: go/yield.go (runtime.Gosched, GOMAXPROCS=1).  BENCH_YIELD_N sets
 * the yields per goroutine (default 5M).
 */
#include <errno.h>
#include <string.h>

#include <ringo.h>

#include "bench.h"

static long iters;

static void partner(void *arg)
{
    (void)arg;
    for (long i = 0; i < iters; i++)
        ringo_yield();
}

static void bench_main(void *arg)
{
    double *ns = arg;
    /* Warm up: fault in both stacks and the scheduler's data. */
    long n = iters;
    iters = 10000;
    ringo_go(partner, NULL);
    for (long i = 0; i < iters; i++)
        ringo_yield();
    while (ringo_count() > 1)
        ringo_yield();

    iters = n;
    ringo_go(partner, NULL);
    ringo_yield(); /* let the partner start before the clock does */
    int64_t t0 = bench_now();
    for (long i = 0; i < iters; i++)
        ringo_yield();
    int64_t t1 = bench_now();
    while (ringo_count() > 1)
        ringo_yield();
    *ns = (double)(t1 - t0) / (double)(2 * iters);
}

int main(void)
{
    iters = bench_env_long("BENCH_YIELD_N", 5000000);
    double ns = 0;
    struct ringo_config cfg = { .procs = 1 };
    int r = ringo_run(bench_main, &ns, &cfg);
    if (r < 0) {
        fprintf(stderr, "yield: ringo_run: %s\n", strerror(-r));
        return 1;
    }
    printf("bench=yield impl=ringo procs=1 ns_per_op=%.2f\n", ns);
    return 0;
}
