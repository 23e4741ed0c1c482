/*
 * waitgroup — WaitGroup fan-out: add N (default 100k), spawn N goroutines
 * that each call done, wait; milliseconds for a first and a second round
 * (the first pays for first-touch page faults of goroutine structs and
 * stacks, ~20 us each on a virtualised machine), and the first round's
 * minor page faults (getrusage ru_minflt) per goroutine.
 *
 *     bench=waitgroup impl=ringo procs=N round1_ms=A round2_ms=B faults_per_g=F
 *
 * Peer: go/waitgroup.go.
 */
#include <errno.h>
#include <string.h>

#include <ringo.h>

#include "bench.h"

static ringo_waitgroup wg = RINGO_WAITGROUP_INIT;

static void done(void *arg)
{
    (void)arg;
    ringo_waitgroup_done(&wg);
}

static long minflt(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : 0;
}

static double round_ms(long n)
{
    int64_t t0 = bench_now();
    ringo_waitgroup_add(&wg, (int)n);
    for (long i = 0; i < n; i++)
        ringo_go(done, NULL);
    ringo_waitgroup_wait(&wg);
    return (double)(bench_now() - t0) / 1e6;
}

static void bench_main(void *arg)
{
    double *ms = arg;
    long n = (long)ms[0];
    long f0 = minflt();
    ms[0] = round_ms(n);
    ms[2] = (double)(minflt() - f0) / (double)n;
    ms[1] = round_ms(n);
}

int main(void)
{
    long n = bench_env_long("BENCH_WAITGROUP_N", 100000);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned procs = (unsigned)bench_env_long("BENCH_PROCS", ncpu > 0 ? ncpu : 1);
    double ms[3] = { (double)n, 0, 0 };
    struct ringo_config cfg = { .procs = procs };
    int r = ringo_run(bench_main, ms, &cfg);
    if (r < 0) {
        fprintf(stderr, "waitgroup: ringo_run: %s\n", strerror(-r));
        return 1;
    }
    printf("bench=waitgroup impl=ringo procs=%u round1_ms=%.2f round2_ms=%.2f faults_per_g=%.3f\n",
           procs, ms[0], ms[1], ms[2]);
    return 0;
}
