/*
 * idle — resident memory per idle goroutine: spawn BENCH_IDLE_N (default
 * 100k; 1000000 is the DESIGN.md scale) goroutines that each block in a
 * long sleep, wait until every one has started, and divide the growth of
 * the resident set (/proc/self/statm) by their number.  Then cancel them.
 *
 *     bench=idle impl=ringo procs=P n=N kib_per_g=K
 *
 * Peer: go/idle.go.  BENCH_PROCS sets the procs (default: every CPU).
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include <ringo.h>

#include "bench.h"

static long count;
static int64_t *ids;
static atomic_long started;
static double kib_per_g;
static int failed;

static void idler(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    ringo_sleep(RINGO_NEVER);
}

static void bench_main(void *arg)
{
    (void)arg;
    memset(ids, 0, (size_t)count * sizeof *ids); /* fault the id array in before measuring */
    long before = bench_rss_bytes();
    for (long i = 0; i < count; i++) {
        ids[i] = ringo_go(idler, NULL);
        if (ids[i] < 0) {
            fprintf(stderr, "idle: ringo_go #%ld: %s\n", i, strerror((int)-ids[i]));
            failed = 1;
            count = i;
            break;
        }
    }
    while (atomic_load(&started) < count)
        ringo_sleep(1000000);
    long after = bench_rss_bytes();
    kib_per_g = (double)(after - before) / 1024.0 / (double)count;
    for (long i = 0; i < count; i++)
        ringo_cancel(ids[i]);
}

int main(void)
{
    count = bench_env_long("BENCH_IDLE_N", 100000);
    unsigned procs = (unsigned)bench_env_long("BENCH_PROCS", 0);
    ids = malloc((size_t)count * sizeof *ids);
    if (!ids)
        return 1;
    struct ringo_config cfg = { .procs = procs };
    int r = ringo_run(bench_main, NULL, &cfg);
    if (r < 0) {
        fprintf(stderr, "idle: ringo_run: %s\n", strerror(-r));
        return 1;
    }
    if (failed)
        return 1;
    printf("bench=idle impl=ringo procs=%u n=%ld kib_per_g=%.2f\n",
           procs ? procs : (unsigned)sysconf(_SC_NPROCESSORS_ONLN), count, kib_per_g);
    return 0;
}
