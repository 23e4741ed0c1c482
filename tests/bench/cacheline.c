/*
 * cacheline — the machine's one-way cache-line transfer: two threads,
 * pinned to the first two CPUs of the affinity mask, take turns writing
 * one flag (a plain C baseline, no ringo).  Thread A stores 2k+1 and spins
 * until it reads 2k+2; thread B spins until it reads 2k+1 and stores
 * 2k+2.  Each store has to take the line from the other CPU's cache, so a
 * round trip is two transfers, and the time per transfer is what one
 * thread's write costs the other to see:
 *
 *     bench=cacheline impl=c procs=2 ns_per_op=M mean_ns_per_op=A
 *
 * ns_per_op is the median over batches of 64 round trips, each divided by
 * 128: a batch in which the host ran something else on one of the two
 * vCPUs (the other thread then spins for a whole time slice) is an
 * outlier the median ignores, so it is the transfer itself, which on the
 * reference VMs moves between 19 and 230 ns with the host's load.
 * mean_ns_per_op is the whole run's average, preemptions included.
 * run.sh prints ringo's 2-proc ping-pong (tests/bench/pingpong) as a
 * multiple of ns_per_op.  Exits 77 with fewer than two CPUs to pin to.
 * BENCH_CACHELINE_N sets the round trips (default 1M).
 *
 * The lines a ringo hand-off moves between the CPUs, and so the count
 * run.sh prints beside the multiple (handoff_lines), are reasoned in
 * src/runq.c "Lines of a hand-off": perf c2c, which would measure them,
 * needs load-latency sampling that these VMs do not expose.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define BATCH 64

static _Alignas(64) _Atomic long flag;
static long round_trips;
static int cpus[2];

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static _Atomic int peer_state; /* 0 starting, 1 pinned, -1 cannot pin */

static void *peer(void *arg)
{
    (void)arg;
    int ok = pin(cpus[1]) == 0;
    /* release/acquire: nothing but the flag itself is published */
    atomic_store_explicit(&peer_state, ok ? 1 : -1, memory_order_release);
    if (!ok)
        return NULL;
    for (long i = 0; i < round_trips; i++) {
        /* acquire/release: the flag is the whole message; the orders only
         * keep the compiler from hoisting the loads out of the loop */
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 1)
            ;
        atomic_store_explicit(&flag, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

int main(void)
{
    round_trips = bench_env_long("BENCH_CACHELINE_N", 1000000);
    round_trips -= round_trips % BATCH;
    if (round_trips == 0)
        round_trips = BATCH;
    cpu_set_t mask;
    if (sched_getaffinity(0, sizeof mask, &mask) != 0) {
        perror("cacheline: sched_getaffinity");
        return 1;
    }
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
        if (CPU_ISSET(c, &mask))
            cpus[n++] = c;
    if (n < 2) {
        fprintf(stderr, "cacheline: fewer than two CPUs to pin to\n");
        return 77;
    }
    if (pin(cpus[0]) != 0) {
        fprintf(stderr, "cacheline: cannot pin to CPU %d\n", cpus[0]);
        return 1;
    }
    long nb = round_trips / BATCH;
    int64_t *batch = malloc(sizeof *batch * (size_t)nb);
    if (!batch) {
        perror("cacheline");
        return 1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, peer, NULL) != 0) {
        perror("cacheline: pthread_create");
        return 1;
    }
    int st;
    while ((st = atomic_load_explicit(&peer_state, memory_order_acquire)) == 0)
        ;
    if (st < 0) {
        pthread_join(t, NULL);
        fprintf(stderr, "cacheline: cannot pin to CPU %d\n", cpus[1]);
        return 1;
    }
    int64_t t0 = bench_now(), tb = t0;
    for (long i = 0; i < round_trips; i++) {
        atomic_store_explicit(&flag, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 2)
            ;
        if (i % BATCH == BATCH - 1) {
            int64_t now = bench_now();
            batch[i / BATCH] = now - tb;
            tb = now;
        }
    }
    int64_t t1 = bench_now();
    pthread_join(t, NULL);
    double median = (double)bench_quantile(batch, (size_t)nb, 0.5) / (2.0 * BATCH);
    double mean = (double)(t1 - t0) / (2.0 * (double)round_trips);
    printf("bench=cacheline impl=c procs=2 ns_per_op=%.2f mean_ns_per_op=%.2f\n", median, mean);
    free(batch);
    return 0;
}
