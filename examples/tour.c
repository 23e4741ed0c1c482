/*
 * tour — ringo at work: goroutines on several procs, sleeps, deadlines,
 * cancellation, sync and the runtime's own counters.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <ringo.h>

#define MS 1000000LL

static void napper(void *arg)
{
    long n = (long)arg;
    int64_t t0 = ringo_now();
    ringo_sleep((int64_t)n * 10 * MS);
    printf("  goroutine %lld on proc %d slept %3lld ms\n", (long long)ringo_id(), ringo_proc(),
           (long long)((ringo_now() - t0) / MS));
}

static void forever(void *arg)
{
    (void)arg;
    int r = ringo_sleep(RINGO_NEVER);
    printf("  goroutine %lld: sleep forever ended: %s\n", (long long)ringo_id(), strerror(-r));
}

static void spinner(void *arg)
{
    (void)arg;
}

/* Sync: a WaitGroup over many goroutines, and a Mutex-protected counter. */
static ringo_mutex sync_mu = RINGO_MUTEX_INIT;
static ringo_waitgroup sync_wg = RINGO_WAITGROUP_INIT;
static long sync_counter; /* under sync_mu */

static void sync_adder(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        ringo_mutex_lock(&sync_mu);
        sync_counter++;
        ringo_mutex_unlock(&sync_mu);
        if (i % 100 == 0)
            ringo_yield(); /* let the others at it */
    }
    ringo_waitgroup_done(&sync_wg);
}

static void tour_sync(void)
{
    printf("Sync: 1000 goroutines add 1000 each to a mutex-protected counter,\n"
           "and a WaitGroup waits for them all:\n");
    int64_t t0 = ringo_now();
    ringo_waitgroup_add(&sync_wg, 1000);
    for (int i = 0; i < 1000; i++)
        ringo_go(sync_adder, NULL);
    ringo_waitgroup_wait(&sync_wg);
    printf("  counter = %ld (expected 1000000) in %.1f ms\n\n", sync_counter,
           (double)(ringo_now() - t0) / MS);
}

static void tour(void *arg)
{
    (void)arg;
    printf("ringo %s: %d procs, main is goroutine %lld\n\n", ringo_version(), ringo_nprocs(),
           (long long)ringo_id());

    printf("1. Five goroutines sleep 10..50 ms each, concurrently:\n");
    int64_t t0 = ringo_now();
    for (long i = 1; i <= 5; i++)
        ringo_go(napper, (void *)i);
    ringo_sleep(80 * MS);
    printf("  all done in %lld ms, not 150\n\n", (long long)((ringo_now() - t0) / MS));

    printf("2. A deadline ends a long sleep:\n");
    ringo_deadline_set(ringo_now() + 20 * MS);
    int r = ringo_sleep(1000 * MS);
    ringo_deadline_set(RINGO_NEVER);
    printf("  ringo_sleep(1 s) with a 20 ms deadline returned %d (%s)\n\n", r, strerror(-r));

    printf("3. Cancellation ends a goroutine's wait:\n");
    int64_t id = ringo_go(forever, NULL);
    ringo_sleep(5 * MS);
    ringo_cancel(id);
    ringo_sleep(5 * MS);
    printf("\n");

    printf("4. 100000 goroutines spawned, run and finished:\n");
    t0 = ringo_now();
    for (int i = 0; i < 100000; i++)
        ringo_go(spinner, NULL);
    while (ringo_count() > 1)
        ringo_yield();
    printf("  in %.1f ms\n\n", (double)(ringo_now() - t0) / MS);

    tour_sync();

    struct ringo_stats st;
    ringo_stats(&st);
    printf("Runtime counters: %llu spawned, %llu switches, %llu io_uring_enter calls\n",
           (unsigned long long)st.spawned, (unsigned long long)st.switches,
           (unsigned long long)st.enters);
}

int main(void)
{
    int r = ringo_run(tour, NULL, NULL);
    if (r < 0) {
        fprintf(stderr, "tour: ringo_run: %s\n", strerror(-r));
        return 1;
    }
    return 0;
}
