/*
 * tour — ringo at work: goroutines on several procs, sleeps, deadlines,
 * cancellation, channels, a worker pool, select with a timeout, a
 * WaitGroup and a Mutex, and the runtime's own counters.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

/* --- channels ----------------------------------------------------------- */

struct job { int n; long result; };

static long fib(int n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

struct pool { ringo_chan *jobs, *results; };

struct worker_arg { ringo_chan *jobs, *results; };

static void worker(void *arg)
{
    /* Each worker owns references to the channels it uses, so main may
     * release its own whenever it is done with them. */
    struct worker_arg w = *(struct worker_arg *)arg;
    free(arg);
    struct job j;
    while (ringo_chan_recv(w.jobs, &j) == 0) { /* -EPIPE once closed and drained */
        j.result = fib(j.n);
        ringo_chan_send(w.results, &j);
    }
    ringo_chan_release(w.jobs);
    ringo_chan_release(w.results);
}

static void say(void *arg)
{
    ringo_chan *c = arg;
    const char *words[] = { "hello", "from", "another", "goroutine" };
    for (int i = 0; i < 4; i++)
        ringo_chan_send(c, &words[i]);
    ringo_chan_close(c);
}

static void channels(void)
{
    printf("5. Goroutines talk over channels:\n  ");
    ringo_chan *c = ringo_chan_make(sizeof(const char *), 0);
    ringo_go(say, c);
    const char *word;
    while (ringo_chan_recv(c, &word) == 0)
        printf("%s ", word);
    printf("(channel closed)\n\n");
    ringo_chan_release(c);

    printf("6. A pool of 4 workers computes fib(20..29):\n");
    struct pool pl = { ringo_chan_make(sizeof(struct job), 10),
                       ringo_chan_make(sizeof(struct job), 10) };
    for (int i = 0; i < 4; i++) {
        struct worker_arg *w = malloc(sizeof *w);
        w->jobs = ringo_chan_retain(pl.jobs);
        w->results = ringo_chan_retain(pl.results);
        ringo_go(worker, w);
    }
    for (int n = 20; n < 30; n++) {
        struct job j = { n, 0 };
        ringo_chan_send(pl.jobs, &j);
    }
    ringo_chan_close(pl.jobs);
    for (int i = 0; i < 10; i++) {
        struct job j;
        ringo_chan_recv(pl.results, &j);
        printf("  fib(%d) = %ld\n", j.n, j.result);
    }
    ringo_chan_release(pl.jobs);
    ringo_chan_release(pl.results);
    printf("\n");

    printf("7. select with a timeout:\n");
    ringo_chan *quiet = ringo_chan_make(sizeof(int), 0);
    ringo_chan *timeout = ringo_after(30 * MS);
    int v;
    int64_t fired;
    struct ringo_case cases[] = {
        { quiet, RINGO_RECV, &v, 0 },
        { timeout, RINGO_RECV, &fired, 0 },
    };
    int64_t t0 = ringo_now();
    int which = ringo_select(cases, 2, 0);
    printf("  case %d won after %lld ms: %s\n\n", which, (long long)((ringo_now() - t0) / MS),
           which == 1 ? "nobody spoke, the timer fired" : "a value arrived");
    ringo_chan_release(timeout);
    ringo_chan_release(quiet);
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
    printf("8. 1000 goroutines add 1000 each to a mutex-protected counter,\n"
           "   and a WaitGroup waits for them all:\n");
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

    channels();
    tour_sync();

    struct ringo_stats st;
    ringo_stats(&st);
    /* what st.enters counts */
    const char *waits = st.engine == RINGO_ENGINE_EPOLL ? "epoll_wait" : "io_uring_enter";
    printf("Runtime counters: %llu spawned, %llu switches, %llu %s calls\n",
           (unsigned long long)st.spawned, (unsigned long long)st.switches,
           (unsigned long long)st.enters, waits);
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
