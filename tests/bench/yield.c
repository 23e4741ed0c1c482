/*
 * yield — the cost of one goroutine switch: two goroutines on one proc
 * take turns with ringo_yield.  Each yield of one is a switch to the
 * other, so the time per yield is the time per switch.
 *
 *     bench=yield impl=ringo procs=1 ns_per_op=N cpu_ns_per_op=C
 *
 * ns_per_op is wall-clock time; cpu_ns_per_op is the process's CPU time,
 * which other load on the machine does not inflate.
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
    double *ns = arg; /* [0] wall, [1] CPU */
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
    int64_t c0 = bench_cpu_ns();
    int64_t t0 = bench_now();
    for (long i = 0; i < iters; i++)
        ringo_yield();
    int64_t t1 = bench_now();
    int64_t c1 = bench_cpu_ns();
    while (ringo_count() > 1)
        ringo_yield();
    ns[0] = (double)(t1 - t0) / (double)(2 * iters);
    ns[1] = (double)(c1 - c0) / (double)(2 * iters);
}

int main(void)
{
    iters = bench_env_long("BENCH_YIELD_N", 5000000);
    double ns[2] = { 0, 0 };
    struct ringo_config cfg = { .procs = 1 };
    int r = ringo_run(bench_main, ns, &cfg);
    if (r < 0) {
        fprintf(stderr, "yield: ringo_run: %s\n", strerror(-r));
        return 1;
    }
    printf("bench=yield impl=ringo procs=1 ns_per_op=%.2f cpu_ns_per_op=%.2f\n", ns[0], ns[1]);
    return 0;
}
