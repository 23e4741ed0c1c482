/*
 * mutex — a contended ringo_mutex: BENCH_MUTEX_G goroutines (default 100)
 * each lock it BENCH_MUTEX_N times (default 100k) around a shared counter,
 * on BENCH_PROCS procs (default 2); ns per lock over all of them.
 *
 *     bench=mutex impl=ringo procs=N ns_per_op=W
 *
 * Peer: go/mutex.go.
 */
#include <errno.h>
#include <string.h>

#include <ringo.h>

#include "bench.h"

static ringo_mutex mu = RINGO_MUTEX_INIT;
static ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
static long counter; /* under mu */
static long per;

static void locker(void *arg)
{
    (void)arg;
    for (long i = 0; i < per; i++) {
        ringo_mutex_lock(&mu);
        counter++;
        ringo_mutex_unlock(&mu);
    }
    ringo_waitgroup_done(&wg);
}

static void bench_main(void *arg)
{
    long gs = *(long *)arg;
    int64_t t0 = bench_now();
    ringo_waitgroup_add(&wg, (int)gs);
    for (long g = 0; g < gs; g++)
        ringo_go(locker, NULL);
    ringo_waitgroup_wait(&wg);
    *(double *)arg = (double)(bench_now() - t0) / (double)(gs * per);
    if (counter != gs * per)
        fprintf(stderr, "mutex: counter %ld, want %ld\n", counter, gs * per);
}

int main(void)
{
    long gs = bench_env_long("BENCH_MUTEX_G", 100);
    per = bench_env_long("BENCH_MUTEX_N", 100000);
    unsigned procs = (unsigned)bench_env_long("BENCH_PROCS", 2);
    union { long gs; double ns; } io = { .gs = gs };
    struct ringo_config cfg = { .procs = procs };
    int r = ringo_run(bench_main, &io, &cfg);
    if (r < 0) {
        fprintf(stderr, "mutex: ringo_run: %s\n", strerror(-r));
        return 1;
    }
    printf("bench=mutex impl=ringo procs=%u ns_per_op=%.2f\n", procs, io.ns);
    return 0;
}
