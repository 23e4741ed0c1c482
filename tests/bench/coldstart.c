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
 *          (ru_maxrss).  The spawner never blocks, but after 10 ms
 *          without a scheduling point a spawn yields (src/spawn.c "The
 *          spawn slice"), as Go preempts it, and the children queued so
 *          far run: peak_waiting is the most goroutines spawned and not
 *          yet finished (ringo_count, looked at every 1024 spawns), and
 *          bytes_per_unstarted the growth of the peak resident set over
 *          the one before the loop, per goroutine of peak_waiting (on one
 *          proc none of those has started).
 *
 *              bench=coldstart impl=ringo procs=P mode=rss peak_rss_mb=M
 *                  peak_waiting=W bytes_per_unstarted=B
 *
 * Peer: go/coldstart.go.  BENCH_PROCS sets the procs (default 1).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include <ringo.h>

#include "bench.h"

static long count;
static ringo_chan *ch;
static atomic_long blocked;
static double ms[2], faults_per_g, bytes_per_unstarted;

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

static long maxrss_bytes(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss * 1024L : 0;
}

static void rss_main(void *arg)
{
    (void)arg;
    long before = bench_rss_bytes();
    for (long i = 0; i < count; i++) {
        spawn_or_die(empty);
        if (i % 1024 == 1023 || i == count - 1) {
            long w = (long)ringo_count() - 1;
            if (w > peak_waiting)
                peak_waiting = w;
        }
    }
    bytes_per_unstarted = peak_waiting ? (double)(maxrss_bytes() - before) / (double)peak_waiting : 0;
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
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("bench=coldstart impl=ringo procs=%u mode=rss peak_rss_mb=%.1f peak_waiting=%ld "
               "bytes_per_unstarted=%.0f\n",
               procs, (double)ru.ru_maxrss / 1024.0, peak_waiting, bytes_per_unstarted);
    } else {
        printf("bench=coldstart impl=ringo procs=%u mode=block round1_ms=%.2f round2_ms=%.2f "
               "faults_per_g=%.3f\n", procs, ms[0], ms[1], faults_per_g);
    }
    return 0;
}
