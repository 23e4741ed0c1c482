/*
 * coldstart — what a fresh goroutine costs the first time.  Two workloads,
 * chosen by BENCH_COLD (each is its own process: peak RSS is per process):
 *
 *   block  the main goroutine spawns BENCH_COLD_N (default 100k) goroutines
 *          that each count themselves and block receiving from one channel,
 *          and yields until all have counted; then closes the channel and
 *          waits for them to exit.  Two rounds: the first pays for the
 *          first touch of fresh goroutine structs and stacks, the second
 *          reuses them.  faults_per_g is the minor page faults
 *          (getrusage ru_minflt) of the first round's spawn phase per
 *          goroutine.
 *
 *              bench=coldstart impl=ringo procs=P mode=block round1_ms=A
 *                  round2_ms=B faults_per_g=F
 *
 *   rss    the main goroutine spawns BENCH_COLD_RSS_N (default 1M) empty
 *          goroutines without yielding, then yields until they have all
 *          finished; peak_rss_mb is the process's peak resident set
 *          (ru_maxrss).  The spawner never blocks, but every 256
 *          spawns a spawn yields if 256 or more goroutines wait on its
 *          proc, or if it has run 10 ms without a scheduling point
 *          (src/spawn.c "The spawn slice", "The backlog"; Go preempts
 *          it after 10 ms), and the children queued so far run:
 *          peak_waiting is the most goroutines spawned and not yet
 *          finished (ringo_count, looked at every 1024 spawns).  Then,
 *          since so few wait at a time, what one unstarted goroutine
 *          costs is measured apart: a plain thread spawns
 *          BENCH_COLD_UNSTARTED_N (default 200k) goroutines bound to
 *          proc 0 while the main goroutine holds proc 0 in pthread_join
 *          (no scheduling point, so none of them starts), and
 *          bytes_per_unstarted is the growth of the resident set over
 *          that, per goroutine.  (Go's peer reports the peak's growth
 *          per goroutine of peak_waiting instead: on one proc none of
 *          those has started.)
 *
 *              bench=coldstart impl=ringo procs=P mode=rss peak_rss_mb=M
 *                  peak_waiting=W bytes_per_unstarted=B
 *
 * Peer: go/coldstart.go.  BENCH_PROCS sets the procs (default 1).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include <ringo.h>

#include "bench.h"

static long count;
static ringo_chan *ch;
static atomic_long blocked;
static double ms[2], faults_per_g, bytes_per_unstarted, peak_rss_mb;

static long minflt(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : 0;
}

static void blocker(void *arg)
{
    (void)arg;
    char c;
    atomic_fetch_add_explicit(&blocked, 1, memory_order_relaxed);
    ringo_chan_recv(ch, &c); /* until the channel is closed */
}

static void spawn_or_die(void (*fn)(void *))
{
    int64_t id = ringo_go(fn, NULL);
    if (id < 0) {
        fprintf(stderr, "coldstart: ringo_go: %s\n", strerror((int)-id));
        exit(1);
    }
}

static void block_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 2; round++) {
        ch = ringo_chan_make(1, 0);
        if (!ch) {
            fprintf(stderr, "coldstart: ringo_chan_make failed\n");
            exit(1);
        }
        atomic_store(&blocked, 0);
        long f0 = minflt();
        int64_t t0 = bench_now();
        for (long i = 0; i < count; i++)
            spawn_or_die(blocker);
        while (atomic_load_explicit(&blocked, memory_order_relaxed) < count)
            ringo_yield();
        ms[round] = (double)(bench_now() - t0) / 1e6;
        if (round == 0)
            faults_per_g = (double)(minflt() - f0) / (double)count;
        ringo_chan_close(ch);
        while (ringo_count() > 1)
            ringo_yield();
        ringo_chan_release(ch);
    }
}

static void empty(void *arg)
{
    (void)arg;
}

static long peak_waiting;

/* rss mode's second part, on a plain thread. */
static void *unstarted_spawner(void *arg)
{
    (void)arg;
    long n = bench_env_long("BENCH_COLD_UNSTARTED_N", 200000);
    long before = bench_rss_bytes();
    for (long i = 0; i < n; i++) {
        int64_t id = ringo_go_on(0, empty, NULL);
        if (id < 0) {
            fprintf(stderr, "coldstart: ringo_go_on: %s\n", strerror((int)-id));
            exit(1);
        }
    }
    bytes_per_unstarted = (double)(bench_rss_bytes() - before) / (double)n;
    return NULL;
}

static void rss_main(void *arg)
{
    (void)arg;
    for (long i = 0; i < count; i++) {
        spawn_or_die(empty);
        if (i % 1024 == 1023 || i == count - 1) {
            long w = (long)ringo_count() - 1;
            if (w > peak_waiting)
                peak_waiting = w;
        }
    }
    while (ringo_count() > 1)
        ringo_yield();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    peak_rss_mb = (double)ru.ru_maxrss / 1024.0; /* the spawn loop's; before the part below */
    pthread_t t;
    if (pthread_create(&t, NULL, unstarted_spawner, NULL) != 0) {
        fprintf(stderr, "coldstart: pthread_create failed\n");
        exit(1);
    }
    pthread_join(t, NULL); /* holds proc 0: none of the spawned starts */
    while (ringo_count() > 1)
        ringo_yield();
}

int main(void)
{
    const char *mode = getenv("BENCH_COLD");
    bool rss = mode && strcmp(mode, "rss") == 0;
    count = rss ? bench_env_long("BENCH_COLD_RSS_N", 1000000) : bench_env_long("BENCH_COLD_N", 100000);
    unsigned procs = (unsigned)bench_env_long("BENCH_PROCS", 1);
    struct ringo_config cfg = { .procs = procs };
    int r = ringo_run(rss ? rss_main : block_main, NULL, &cfg);
    if (r < 0) {
        fprintf(stderr, "coldstart: ringo_run: %s\n", strerror(-r));
        return 1;
    }
    if (rss) {
        printf("bench=coldstart impl=ringo procs=%u mode=rss peak_rss_mb=%.1f peak_waiting=%ld "
               "bytes_per_unstarted=%.0f\n",
               procs, peak_rss_mb, peak_waiting, bytes_per_unstarted);
    } else {
        printf("bench=coldstart impl=ringo procs=%u mode=block round1_ms=%.2f round2_ms=%.2f "
               "faults_per_g=%.3f\n", procs, ms[0], ms[1], faults_per_g);
    }
    return 0;
}
