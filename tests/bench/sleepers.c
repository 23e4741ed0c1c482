/*
 * sleepers — many goroutines sleeping at once: BENCH_SLEEPERS_N (default
 * 100k) goroutines each sleep 10 ms.  Wall is from the first spawn to the
 * last wake-up; lateness is how long after its due time (its own start +
 * 10 ms) each goroutine woke, and p99 is over all of them.  Two rounds in
 * one run: the first pays for first-touch page faults on fresh goroutine
 * structs and stacks, the second reuses them.
 *
 *     bench=sleepers impl=ringo procs=P round1_wall_ms=W round1_p99_ms=L
 *                                       round2_wall_ms=W round2_p99_ms=L
 *
 * Peer: go/sleepers.go.  BENCH_PROCS sets the procs (default: every CPU).
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include <ringo.h>

#include "bench.h"

#define SLEEP_NS (10 * 1000000LL)

static long count;
static int64_t *late;             /* lateness of each goroutine, ns */
static atomic_long done;
static _Atomic int64_t t_end;     /* when the last sleeper woke */
static double wall_ms[2], p99_ms[2];

static void sleeper(void *arg)
{
    long i = (long)(intptr_t)arg;
    int64_t due = bench_now() + SLEEP_NS;
    ringo_sleep(SLEEP_NS);
    int64_t now = bench_now();
    late[i] = now - due;
    if (atomic_fetch_add(&done, 1) == count - 1)
        atomic_store(&t_end, now);
}

static void bench_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 2; round++) {
        atomic_store(&done, 0);
        int64_t t0 = bench_now();
        for (long i = 0; i < count; i++) {
            int64_t id = ringo_go(sleeper, (void *)(intptr_t)i);
            if (id < 0) {
                fprintf(stderr, "sleepers: ringo_go: %s\n", strerror((int)-id));
                exit(1);
            }
        }
        while (atomic_load(&done) < count)
            ringo_sleep(1000000);
        wall_ms[round] = (double)(atomic_load(&t_end) - t0) / 1e6;
        p99_ms[round] = (double)bench_quantile(late, (size_t)count, 0.99) / 1e6;
    }
}

int main(void)
{
    count = bench_env_long("BENCH_SLEEPERS_N", 100000);
    unsigned procs = (unsigned)bench_env_long("BENCH_PROCS", 0);
    late = calloc((size_t)count, sizeof *late);
    if (!late)
        return 1;
    struct ringo_config cfg = { .procs = procs };
    int r = ringo_run(bench_main, NULL, &cfg);
    if (r < 0) {
        fprintf(stderr, "sleepers: ringo_run: %s\n", strerror(-r));
        return 1;
    }
    struct ringo_stats st;
    ringo_stats(&st);
    printf("bench=sleepers impl=ringo procs=%u round1_wall_ms=%.1f round1_p99_ms=%.2f "
           "round2_wall_ms=%.1f round2_p99_ms=%.2f\n",
           procs ? procs : (unsigned)sysconf(_SC_NPROCESSORS_ONLN), wall_ms[0], p99_ms[0],
           wall_ms[1], p99_ms[1]);
    return 0;
}
