/*
 * spawn — spawn, run and exit of empty goroutines: the main goroutine
 * spawns BENCH_SPAWN_N (default 1M) goroutines that return at once, then
 * yields until they have all finished.  Two rounds in one run: the first
 * pays for first-touch page faults on fresh goroutine structs and stacks
 * (about 20 us each on a virtualised machine), the second reuses them.
 *
 *     bench=spawn impl=ringo procs=P round1_ns=N round2_ns=N round2_cpu_ns=C
 *
 * round2_cpu_ns is the process's CPU time per goroutine in round 2, which
 * other load on the machine does not inflate (meaningful with one proc).
 *
 * Peer: go/spawn.go.  BENCH_PROCS sets the procs (default 1).
 */
#include <errno.h>
#include <string.h>

#include <ringo.h>

#include "bench.h"

static long count;
static double ns[2], cpu_ns;

static void empty(void *arg)
{
    (void)arg;
}

static void bench_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 2; round++) {
        int64_t c0 = bench_cpu_ns();
        int64_t t0 = bench_now();
        for (long i = 0; i < count; i++) {
            int64_t id = ringo_go(empty, NULL);
            if (id < 0) {
                fprintf(stderr, "spawn: ringo_go: %s\n", strerror((int)-id));
                exit(1);
            }
        }
        while (ringo_count() > 1)
            ringo_yield();
        ns[round] = (double)(bench_now() - t0) / (double)count;
        cpu_ns = (double)(bench_cpu_ns() - c0) / (double)count;
    }
}

int main(void)
{
    count = bench_env_long("BENCH_SPAWN_N", 1000000);
    unsigned procs = (unsigned)bench_env_long("BENCH_PROCS", 1);
    struct ringo_config cfg = { .procs = procs };
    int r = ringo_run(bench_main, NULL, &cfg);
    if (r < 0) {
        fprintf(stderr, "spawn: ringo_run: %s\n", strerror(-r));
        return 1;
    }
    printf("bench=spawn impl=ringo procs=%u round1_ns=%.1f round2_ns=%.1f round2_cpu_ns=%.1f\n",
           procs, ns[0], ns[1], cpu_ns);
    return 0;
}
