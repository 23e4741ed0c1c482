/*
 * deadlock.c — two goroutines that deadlock, for ringo(7)'s "Debugging a
 * running program".
 *
 * Two transfers between the same two accounts, in opposite directions:
 * each locks the account it takes from, waits until the other has locked
 * its own, then locks the account it pays into, which the other holds.
 * Neither lock is ever released.
 *
 *   ./examples/deadlock      every goroutine is asleep: ringo_run sees it,
 *                            prints its deadlock report (each goroutine,
 *                            what it waits on, its stack) and returns
 *                            -EDEADLK; exit status 1.
 *   ./examples/deadlock -w   main also waits for SIGINT or SIGTERM, so the
 *                            runtime cannot tell that nothing will wake
 *                            the transfers, as in a server: the program
 *                            hangs.  Look inside with RINGO_DUMP_ON_SIGQUIT=1
 *                            and kill -QUIT, or with gdb and ringo-gdb.py;
 *                            SIGINT or SIGTERM ends it (exit status 1).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ringo.h>

struct account {
    ringo_mutex mu;
    long balance;
};

struct transfer {
    struct account *from, *to;
    long amount;
};

static struct account alice = { RINGO_MUTEX_INIT, 100 };
static struct account bob = { RINGO_MUTEX_INIT, 100 };
static struct transfer to_bob = { &alice, &bob, 10 };
static struct transfer to_alice = { &bob, &alice, 20 };

/* Both transfers hold their first lock before either takes its second. */
static ringo_waitgroup first_locks;
static ringo_waitgroup transfers;

__attribute__((noinline)) static void credit(struct account *to, long amount)
{
    ringo_mutex_lock(&to->mu); /* held by the other transfer: waits for ever */
    to->balance += amount;
    ringo_mutex_unlock(&to->mu);
}

static void transfer(void *arg)
{
    struct transfer *t = arg;
    ringo_mutex_lock(&t->from->mu);
    ringo_waitgroup_done(&first_locks);
    ringo_waitgroup_wait(&first_locks);
    t->from->balance -= t->amount;
    credit(t->to, t->amount);
    ringo_mutex_unlock(&t->from->mu);
    ringo_waitgroup_done(&transfers);
}

static void main_goroutine(void *arg)
{
    ringo_chan *sig = NULL;
    if (arg) { /* -w */
        sig = ringo_chan_make(sizeof(int), 1);
        int sigs[] = { SIGINT, SIGTERM };
        if (!sig || ringo_signal_notify(sig, sigs, 2) != 0) {
            fprintf(stderr, "deadlock: cannot watch SIGINT and SIGTERM\n");
            return;
        }
    }
    ringo_waitgroup_add(&first_locks, 2);
    ringo_waitgroup_add(&transfers, 2);
    ringo_go(transfer, &to_bob);
    ringo_go(transfer, &to_alice);
    if (sig) {
        fprintf(stderr, "deadlock: pid %d, waiting for SIGINT or SIGTERM\n", (int)getpid());
        int s;
        ringo_chan_recv(sig, &s); /* the transfers never finish */
        /* The run would end only when they do: end the process. */
        fprintf(stderr, "deadlock: %s: the transfers never finished\n", strsignal(s));
        _exit(1);
    }
    ringo_waitgroup_wait(&transfers);
    printf("alice %ld, bob %ld\n", alice.balance, bob.balance);
}

int main(int argc, char **argv)
{
    int wait_for_signal = argc > 1 && strcmp(argv[1], "-w") == 0;
    if (argc > 2 || (argc == 2 && !wait_for_signal)) {
        FILE *f = argc == 2 && strcmp(argv[1], "-h") == 0 ? stdout : stderr;
        fprintf(f, "usage: %s [-w]\n"
                   "Two goroutines deadlock on two mutexes; the runtime reports it.\n"
                   "-w: also wait for SIGINT or SIGTERM, so the program hangs instead\n"
                   "    (try RINGO_DUMP_ON_SIGQUIT=1 and kill -QUIT, or gdb; see ringo(7)).\n",
                argv[0]);
        return f == stdout ? 0 : 2;
    }
    int r = ringo_run(main_goroutine, wait_for_signal ? (void *)1 : NULL, NULL);
    return r == 0 ? 0 : 1;
}
