/*
 * bench.h — small helpers shared by the ringo benchmark programs.
 *
 * Every benchmark prints one machine-readable line on stdout,
 *
 *     bench=NAME impl=ringo procs=N key=value ...
 *
 * which tests/bench/run.sh collects, takes the median of over repeated
 * runs, and prints beside the Go peer (tests/bench/go/NAME.go) and the
 * DESIGN.md target.  Timing lives here and in run.sh, never in the test
 * suite.
 */
#ifndef RINGO_BENCH_H
#define RINGO_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static inline int64_t bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU time used by the whole process (every thread), ns.  On a shared
 * machine the wall clock also counts the time other programs held the CPU;
 * for single-proc workloads the process's CPU time does not. */
static inline int64_t bench_cpu_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* A positive integer from the environment, or def. */
static inline long bench_env_long(const char *name, long def)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end;
    long n = strtol(v, &end, 10);
    return (*end == '\0' && n > 0) ? n : def;
}

/* Resident set size in bytes, from /proc/self/statm (second field, pages). */
static inline long bench_rss_bytes(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static int bench_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of v[0..n), sorting v in place. */
static inline int64_t bench_quantile(int64_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, bench_cmp_i64);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

#endif /* RINGO_BENCH_H */
