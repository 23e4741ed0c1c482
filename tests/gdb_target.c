/*
 * gdb_target.c — a program for tests/gdb.sh: goroutines parked on a
 * channel, a mutex and a read, then a call to gdb_stop_here, where the
 * script's breakpoint lists them and unwinds each; after that the program
 * releases them and ends normally.  One proc: a goroutine runs until it
 * parks, so once all three have said they are about to park and main has
 * run again, all three have parked.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include <ringo.h>

/* Read by the gdb script ("goroutine id_chan bt"). */
volatile long long id_chan, id_mutex, id_read;

static ringo_chan *ch;
static ringo_mutex mu = RINGO_MUTEX_INIT;
static int pfd[2];
static atomic_int about_to_park;

__attribute__((noinline)) void park_on_chan(void *arg)
{
    (void)arg;
    int x;
    atomic_fetch_add(&about_to_park, 1);
    ringo_chan_recv(ch, &x);
}

__attribute__((noinline)) void park_on_mutex(void *arg)
{
    (void)arg;
    atomic_fetch_add(&about_to_park, 1);
    ringo_mutex_lock(&mu);
    ringo_mutex_unlock(&mu);
}

__attribute__((noinline)) void park_on_read(void *arg)
{
    (void)arg;
    char c;
    atomic_fetch_add(&about_to_park, 1);
    (void)ringo_read(pfd[0], &c, 1);
}

/* The breakpoint. */
__attribute__((noinline)) void gdb_stop_here(void)
{
    __asm__ volatile("" ::: "memory");
}

static void main_goroutine(void *arg)
{
    (void)arg;
    ch = ringo_chan_make(sizeof(int), 0);
    if (!ch || pipe(pfd) != 0)
        _exit(2);
    ringo_mutex_lock(&mu);
    id_chan = ringo_go(park_on_chan, NULL);
    id_mutex = ringo_go(park_on_mutex, NULL);
    id_read = ringo_go(park_on_read, NULL);
    for (int i = 0; atomic_load(&about_to_park) < 3; i++)
        if (i == 20000 || ringo_sleep(1000000) != 0)
            _exit(3);
    ringo_yield();
    gdb_stop_here();
    ringo_chan_close(ch);
    ringo_mutex_unlock(&mu);
    if (ringo_write(pfd[1], "x", 1) != 1)
        _exit(4);
    while (ringo_count() > 1)
        ringo_sleep(1000000);
    ringo_chan_release(ch);
}

int main(void)
{
    struct ringo_config cfg = { .procs = 1 };
    int r = ringo_run(main_goroutine, NULL, &cfg);
    printf("gdb_target: done %d\n", r);
    return r != 0;
}
