/*
 * httpd — the ringo side of make bench's HTTP row: examples/httpd.c itself,
 * started the way tests/bench/run.sh starts every server (`httpd PORT`,
 * BENCH_PROCS procs, on 127.0.0.1), printing
 *
 *     bench=http impl=ringo requests=N enters=E sqes=S cpu_us=U
 *
 * on SIGTERM so the driver can report io_uring_enter calls per request,
 * and the same counters as a "bench=http-mark" line on SIGUSR1, on which it
 * goes on serving (httpd_common.h: the driver's marks around its measured
 * run).
 */
#define HTTPD_BENCH_LINE 1
int httpd_example_main(int argc, char **argv);
#define main httpd_example_main
#include "../../examples/httpd.c"
#undef main

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT (procs from BENCH_PROCS)\n", argv[0]);
        return 2;
    }
    const char *procs = getenv("BENCH_PROCS");
    char *args[] = { argv[0], "-p", argv[1], "-t", (char *)(procs && *procs ? procs : "2"), NULL };
    return httpd_example_main(5, args);
}
