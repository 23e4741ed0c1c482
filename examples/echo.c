/*
 * echo.c — a TCP echo server: one accept loop per proc on a SO_REUSEPORT
 * listener, one goroutine per connection, idle clients dropped after a
 * deadline.
 *
 *   echo [-a ADDR] [-p PORT] [-t PROCS]     (default 127.0.0.1:8080)
 *
 * Try it with: printf 'hello\n' | nc -q1 127.0.0.1 8080
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <ringo.h>

#define IDLE_NS (60LL * 1000000000LL) /* drop a client silent this long */

static const char *addr = "127.0.0.1";
static const char *port = "8080";

static void serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    for (;;) {
        ringo_deadline_set(ringo_now() + IDLE_NS);
        ssize_t n = ringo_read(fd, buf, sizeof buf);
        if (n <= 0 || ringo_write_all(fd, buf, (size_t)n) < 0)
            break;
    }
    ringo_close(fd);
}

static void accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = ringo_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            ringo_sleep(10 * 1000000LL); /* out of resources: back off */
            continue;
        }
        if (fd < 0) {
            if (fd != -ECONNABORTED)
                fprintf(stderr, "echo: accept: %s\n", strerror(-fd));
            continue;
        }
        if (ringo_go(serve, (void *)(intptr_t)fd) < 0)
            ringo_close(fd);
    }
}

/* The port the listeners take.  Another program listening on it is an
 * error, as for a server without SO_REUSEPORT (the listeners share it only
 * among themselves): a first listener without that flag finds out, and
 * picks the port when it is "0".  A string, in buf, or NULL after saying
 * why. */
static const char *claim_port(const char *name, char *buf, size_t size)
{
    int probe = ringo_tcp_listen(addr, port, 1, 0);
    if (probe < 0) {
        fprintf(stderr, "%s: listen on %s:%s: %s\n", name, addr, port, strerror(-probe));
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(probe, (struct sockaddr *)&ss, &len) < 0) {
        fprintf(stderr, "%s: getsockname: %s\n", name, strerror(errno));
        ringo_close(probe);
        return NULL;
    }
    unsigned n = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    snprintf(buf, size, "%u", n);
    ringo_close(probe);
    return buf;
}

static void start(void *arg)
{
    (void)arg;
    static char port_buf[8];
    if (!(port = claim_port("echo", port_buf, sizeof port_buf)))
        exit(1);
    for (int i = 0; i < ringo_nprocs(); i++) {
        int lfd = ringo_tcp_listen(addr, port, 4096, RINGO_REUSEPORT);
        if (lfd < 0) {
            fprintf(stderr, "echo: listen on %s:%s: %s\n", addr, port, strerror(-lfd));
            exit(1);
        }
        ringo_go_on(i, accept_loop, (void *)(intptr_t)lfd);
    }
    fprintf(stderr, "echo: listening on %s:%s with %d procs\n", addr, port, ringo_nprocs());
}

/* A command-line count: digits only, 1 to max; else -1. */
static long number(const char *s, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return *s >= '0' && *s <= '9' && !*end && !errno && v >= 1 && v <= max ? v : -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: echo [-a ADDR] [-p PORT] [-t PROCS]\n"
               "  -a ADDR   address to listen on (default 127.0.0.1)\n"
               "  -p PORT   port (default 8080)\n"
               "  -t PROCS  scheduler threads (default: one per CPU)\n");
}

int main(int argc, char **argv)
{
    struct ringo_config cfg = { 0 };
    int c;
    while ((c = getopt(argc, argv, "a:p:t:h")) != -1) {
        switch (c) {
        case 'a': addr = optarg; break;
        case 'p': port = optarg; break;
        case 't': {
            long n = number(optarg, 1 << 20);
            if (n < 0) {
                usage(stderr);
                return 2;
            }
            cfg.procs = (unsigned)n;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int r = ringo_run(start, NULL, &cfg);
    if (r < 0)
        fprintf(stderr, "echo: %s\n", strerror(-r));
    return r < 0;
}
