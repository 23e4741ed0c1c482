/*
 * chanbuf — throughput of a buffered channel of capacity 1024 between one
 * sender and one receiver, in millions of messages per second.
 *
 *     bench=chanbuf impl=ringo procs=N mmsg_per_s=M cpu_ns_per_msg=C wakes_per_kmsg=W
 *
 * With BENCH_PROCS=2 the receiver is bound to the other proc.  cpu_ns_per_msg
 * is the process's CPU time (every thread, spinning included) per message:
 * what the throughput costs the machine.  wakes_per_kmsg counts the
 * goroutines made ready across procs per 1000 messages (ringo_stats'
 * cross_wakes): how often a side had to wait.  Peer: go/chanbuf.go.
 * BENCH_CHANBUF_N sets the messages (default 10M).
 */
#include <errno.h>
#include <string.h>

#include <ringo.h>

#include "bench.h"

struct cb { ringo_chan *c, *done; long n; double mmsg, cpu_ns, wakes; };

static void receiver(void *arg)
{
    struct cb *cb = arg;
    int64_t v, sum = 0;
    while (ringo_chan_recv(cb->c, &v) == 0)
        sum += v;
    ringo_chan_send(cb->done, &sum);
}

static int64_t round_run(struct cb *cb, long n)
{
    cb->c = ringo_chan_make(sizeof(int64_t), 1024);
    cb->done = ringo_chan_make(sizeof(int64_t), 0);
    ringo_go_on((ringo_proc() + 1) % ringo_nprocs(), receiver, cb);
    int64_t t0 = bench_now();
    for (int64_t i = 0; i < n; i++)
        ringo_chan_send(cb->c, &i);
    ringo_chan_close(cb->c);
    int64_t sum;
    ringo_chan_recv(cb->done, &sum);
    int64_t d = bench_now() - t0;
    if (sum != (int64_t)n * (n - 1) / 2)
        fprintf(stderr, "chanbuf: wrong checksum %lld\n", (long long)sum);
    ringo_chan_release(cb->c);
    ringo_chan_release(cb->done);
    return d;
}

static void bench_main(void *arg)
{
    struct cb *cb = arg;
    round_run(cb, 100000); /* warm up */
    struct ringo_stats s0, s1;
    ringo_stats(&s0);
    int64_t c0 = bench_cpu_ns();
    int64_t d = round_run(cb, cb->n);
    int64_t c1 = bench_cpu_ns();
    ringo_stats(&s1);
    cb->mmsg = (double)cb->n / ((double)d / 1e9) / 1e6;
    cb->cpu_ns = (double)(c1 - c0) / (double)cb->n;
    cb->wakes = (double)(s1.cross_wakes - s0.cross_wakes) * 1000.0 / (double)cb->n;
}

int main(void)
{
    struct cb cb = { .n = bench_env_long("BENCH_CHANBUF_N", 10000000) };
    unsigned procs = (unsigned)bench_env_long("BENCH_PROCS", 1);
    struct ringo_config cfg = { .procs = procs };
    int r = ringo_run(bench_main, &cb, &cfg);
    if (r < 0) {
        fprintf(stderr, "chanbuf: ringo_run: %s\n", strerror(-r));
        return 1;
    }
    printf("bench=chanbuf impl=ringo procs=%u mmsg_per_s=%.2f cpu_ns_per_msg=%.2f wakes_per_kmsg=%.3f\n",
           procs, cb.mmsg, cb.cpu_ns, cb.wakes);
    return 0;
}
