/*
 * check_signal.c — signals as channel values (ringo_signal_notify,
 * ringo_signal_stop) and SIGPIPE while a run is in progress.
 *
 * Covered: a signal sent to the process arrives on every channel registered
 * for it, also when sent as soon as the registration is made; a full
 * channel drops it instead of blocking the others; after
 * ringo_signal_stop the program's own disposition is back and the channel
 * gets nothing; a goroutine waiting for a signal is not reported as
 * deadlocked, and once the last channel is stopped a deadlock is reported
 * again; a write to a broken connection returns -EPIPE instead of killing
 * the process, and SIGPIPE's default is back after the run; the signal
 * thread stops at the end of the run whatever it was doing; a handler
 * still running on a plain thread at the end writes into no other file;
 * a plain thread's registration as the run ends fails; bad arguments.
 */
#include "testutil.h"

#include <poll.h>
#include <sys/socket.h>

#include "internal.h" /* signal_thread_seam, signal_handler_seam, teardown_seam */

static unsigned nprocs_param = 1;

static void main_basic(void *arg)
{
    (void)arg;
    ringo_chan *a = ringo_chan_make(sizeof(int), 1);
    ringo_chan *b = ringo_chan_make(sizeof(int), 4);
    int sigs[] = { SIGUSR1, SIGUSR2 };
    ck_assert_int_eq(ringo_signal_notify(a, sigs, 2), 0);
    ck_assert_int_eq(ringo_signal_notify(b, sigs, 1), 0);
    int v = 0;
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_int_eq(ringo_chan_recv(a, &v), 0);
    ck_assert_int_eq(v, SIGUSR1);
    ck_assert_int_eq(ringo_chan_recv(b, &v), 0);
    ck_assert_int_eq(v, SIGUSR1);
    ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
    ck_assert_int_eq(ringo_chan_recv(a, &v), 0);
    ck_assert_int_eq(v, SIGUSR2);
    ck_assert_int_eq(ringo_chan_len(b), 0); /* b did not ask for SIGUSR2 */

    /* A full channel drops the signal; the others still get it. */
    int dummy = 0;
    ck_assert_int_eq(ringo_chan_send(a, &dummy), 0);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_int_eq(ringo_chan_recv(b, &v), 0); /* a was offered it first or after: same pass */
    ck_assert_int_eq(v, SIGUSR1);
    ck_assert_int_eq(ringo_chan_len(a), 1);
    ck_assert_int_eq(ringo_chan_recv(a, &v), 0);
    ck_assert_int_eq(v, 0);

    ck_assert_int_eq(ringo_signal_stop(a), 0);
    ck_assert_int_eq(ringo_signal_stop(a), -ENOENT);
    ck_assert_int_eq(ringo_signal_stop(b), 0);
    ringo_chan_release(a);
    ringo_chan_release(b);
}

START_TEST(signals_arrive_on_every_channel)
{
    RUN(main_basic, NULL, nprocs_param);
}
END_TEST

/* A signal sent as soon as ringo_signal_notify returns reaches the channel,
 * round after round, with the registration made and dropped each time: no
 * proc, nor the thread waiting in ringo_run, takes it with a handler that
 * may not run for a while (under ThreadSanitizer it would not run until
 * that thread's next intercepted call). */
static void main_rounds(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        ringo_chan *c = ringo_chan_make(sizeof(int), 1);
        int sig = i % 2 ? SIGUSR1 : SIGUSR2, v = 0;
        ck_assert_int_eq(ringo_signal_notify(c, &sig, 1), 0);
        ck_assert_int_eq(kill(getpid(), sig), 0);
        ck_assert_int_eq(ringo_chan_recv(c, &v), 0);
        ck_assert_int_eq(v, sig);
        ck_assert_int_eq(ringo_signal_stop(c), 0);
        ringo_chan_release(c);
    }
}

START_TEST(signal_right_after_notify_arrives)
{
    RUN(main_rounds, NULL, nprocs_param);
}
END_TEST

/* After stop, the program's own handler is back. */
static atomic_int own_handler_ran;
static void own_handler(int s)
{
    (void)s;
    atomic_fetch_add(&own_handler_ran, 1);
}

static void main_stop(void *arg)
{
    (void)arg;
    ringo_chan *c = ringo_chan_make(sizeof(int), 1);
    int sig = SIGUSR1;
    ck_assert_int_eq(ringo_signal_notify(c, &sig, 1), 0);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    int v;
    ck_assert_int_eq(ringo_chan_recv(c, &v), 0);
    ck_assert_int_eq(atomic_load(&own_handler_ran), 0);
    ck_assert_int_eq(ringo_signal_stop(c), 0);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    while (atomic_load(&own_handler_ran) == 0)
        ringo_sleep(1 * MS);
    ck_assert_int_eq(ringo_chan_try_recv(c, &v), -EAGAIN);
    ringo_chan_release(c);
}

START_TEST(stop_restores_the_program_handler)
{
    struct sigaction sa = { .sa_handler = own_handler }, old;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
    atomic_store(&own_handler_ran, 0);
    RUN(main_stop, NULL, nprocs_param);
    sigaction(SIGUSR1, &old, NULL);
}
END_TEST

/* The procs block a watched signal for every goroutine they run, and
 * unblock it for all after the stop: the mask is the thread's, not the
 * goroutine's.  (A context switch that saved and restored each
 * goroutine's own mask, as swapcontext(3) does, gave a goroutine that had
 * switched out before the notify the mask from before it.) */
static atomic_int mask_step;

static bool thread_blocks(int sig)
{
    sigset_t cur;
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    return sigismember(&cur, sig) == 1;
}

static void mask_other(void *arg)
{
    int *seen = arg;
    atomic_store(&mask_step, 1);
    while (atomic_load(&mask_step) != 2)
        ringo_yield();
    seen[0] = thread_blocks(SIGUSR1);
    atomic_store(&mask_step, 3);
    while (atomic_load(&mask_step) != 4)
        ringo_yield();
    seen[1] = thread_blocks(SIGUSR1);
    atomic_store(&mask_step, 5);
}

static void main_mask(void *arg)
{
    (void)arg;
    ck_assert(!thread_blocks(SIGUSR1));
    int seen[2] = { -1, -1 };
    atomic_store(&mask_step, 0);
    ck_assert_int_gt(ringo_go_on(ringo_proc(), mask_other, seen), 0);
    while (atomic_load(&mask_step) != 1)
        ringo_yield();
    ringo_chan *c = ringo_chan_make(sizeof(int), 1);
    int sig = SIGUSR1;
    ck_assert_int_eq(ringo_signal_notify(c, &sig, 1), 0);
    ck_assert(thread_blocks(SIGUSR1));
    atomic_store(&mask_step, 2);
    while (atomic_load(&mask_step) != 3)
        ringo_yield();
    ck_assert(thread_blocks(SIGUSR1));
    ck_assert_int_eq(ringo_signal_stop(c), 0);
    ck_assert(!thread_blocks(SIGUSR1));
    atomic_store(&mask_step, 4);
    while (atomic_load(&mask_step) != 5)
        ringo_yield();
    ck_assert(!thread_blocks(SIGUSR1));
    ck_assert_msg(seen[0] == 1, "a goroutine ran with the watched signal unblocked");
    ck_assert_msg(seen[1] == 0, "a goroutine ran with the stopped signal still blocked");
    ringo_chan_release(c);
}

START_TEST(mask_is_the_procs_for_every_goroutine)
{
    RUN(main_mask, NULL, nprocs_param);
}
END_TEST

/* A signal sent to a proc's own thread (raise(3) from a goroutine) reaches
 * the channel like one sent to the process; one raised and not yet handed
 * on when ringo_signal_stop comes is not left pending on the proc for the
 * restored disposition (the program's handler here) to take. */
static void main_raise(void *arg)
{
    (void)arg;
    ringo_chan *c = ringo_chan_make(sizeof(int), 1);
    int sig = SIGUSR1, v = 0;
    ck_assert_int_eq(ringo_signal_notify(c, &sig, 1), 0);
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ringo_deadline_set(ringo_now() + 10000 * MS);
    ck_assert_int_eq(ringo_chan_recv(c, &v), 0);
    ringo_deadline_set(RINGO_NEVER);
    ck_assert_int_eq(v, SIGUSR1);
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert_int_eq(ringo_signal_stop(c), 0);
    int ran = atomic_load(&own_handler_ran);
    ck_assert_msg(ran == 0, "the signal raised before the stop ran the restored handler");
    ringo_chan_release(c);
}

START_TEST(raise_on_a_proc_arrives)
{
    struct sigaction sa = { .sa_handler = own_handler }, old;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
    atomic_store(&own_handler_ran, 0);
    RUN(main_raise, NULL, nprocs_param);
    sigaction(SIGUSR1, &old, NULL);
    ck_assert_int_eq(atomic_load(&own_handler_ran), 0);
}
END_TEST

/* But one sent to the process while every thread blocks it, after the
 * last channel for it was stopped, is left pending for the process, and
 * the restored disposition takes it when a proc unblocks it.  A plain
 * thread made from a goroutine (it inherits the proc's mask) stops the
 * channel, which does not wait for the procs; the one proc is kept busy,
 * so it has not unblocked the signal yet; the signal thread is seen to go
 * round twice (a second registration pokes it), so its signalfd no longer
 * takes the signal; then the kill, then the proc is let go. */
static atomic_int pk_wakes, pk_spin;
static ringo_chan *pk_c;

static void pk_seam(void)
{
    atomic_fetch_add(&pk_wakes, 1);
}

static void pk_wait_wake(int was)
{
    for (int i = 0; i < 30000 && atomic_load(&pk_wakes) == was; i++)
        usleep(1000);
    ck_assert_int_ne(atomic_load(&pk_wakes), was);
}

static void *pk_plain(void *arg)
{
    ringo_chan *other = arg;
    int was = atomic_load(&pk_wakes);
    ck_assert_int_eq(ringo_signal_stop(pk_c), 0); /* pokes the signal thread */
    pk_wait_wake(was);
    was = atomic_load(&pk_wakes);
    int sig2 = SIGUSR2;
    ck_assert_int_eq(ringo_signal_notify(other, &sig2, 1), 0); /* pokes it again */
    pk_wait_wake(was); /* it went round: its signalfd lacks SIGUSR1 */
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0); /* pending for the process */
    atomic_store(&pk_spin, 0);
    return NULL;
}

static void main_process_pending(void *arg)
{
    (void)arg;
    pk_c = ringo_chan_make(sizeof(int), 1);
    ringo_chan *other = ringo_chan_make(sizeof(int), 1);
    int sig = SIGUSR1;
    ck_assert_int_eq(ringo_signal_notify(pk_c, &sig, 1), 0);
    atomic_store(&pk_wakes, 0);
    atomic_store(&signal_thread_seam, pk_seam);
    atomic_store(&pk_spin, 1);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, pk_plain, other), 0);
    while (atomic_load(&pk_spin)) /* no scheduling point: the proc's tasks wait */
        ;
    pthread_join(t, NULL);
    for (int i = 0; i < 30000 && atomic_load(&own_handler_ran) == 0; i++)
        ringo_sleep(1 * MS); /* the proc unblocks SIGUSR1 at its next round */
    atomic_store(&signal_thread_seam, NULL);
    ck_assert_int_eq(ringo_signal_stop(other), 0);
    ringo_chan_release(other);
    ringo_chan_release(pk_c);
}

START_TEST(process_pending_signal_after_stop_reaches_the_old_handler)
{
    struct sigaction sa = { .sa_handler = own_handler }, old;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
    atomic_store(&own_handler_ran, 0);
    RUN(main_process_pending, NULL, 1);
    sigaction(SIGUSR1, &old, NULL);
    ck_assert_int_eq(atomic_load(&own_handler_ran), 1);
}
END_TEST

/* A goroutine that waits for a signal only is not deadlocked: a thread
 * that never calls ringo sends it later. */
static void *send_later(void *arg)
{
    (void)arg;
    usleep(50000);
    kill(getpid(), SIGUSR2);
    return NULL;
}

static void main_wait_signal(void *arg)
{
    (void)arg;
    ringo_chan *c = ringo_chan_make(sizeof(int), 1);
    int sig = SIGUSR2;
    ck_assert_int_eq(ringo_signal_notify(c, &sig, 1), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, send_later, NULL), 0);
    int v;
    ck_assert_int_eq(ringo_chan_recv(c, &v), 0);
    ck_assert_int_eq(v, SIGUSR2);
    pthread_join(t, NULL);
    ck_assert_int_eq(ringo_signal_stop(c), 0);
    ringo_chan_release(c);
}

START_TEST(waiting_for_a_signal_is_not_a_deadlock)
{
    RUN(main_wait_signal, NULL, nprocs_param);
}
END_TEST

static void main_deadlock_after_stop(void *arg)
{
    (void)arg;
    ringo_chan *c = ringo_chan_make(sizeof(int), 1);
    int sig = SIGUSR2;
    ck_assert_int_eq(ringo_signal_notify(c, &sig, 1), 0);
    ck_assert_int_eq(ringo_signal_stop(c), 0);
    int v;
    ringo_chan_recv(c, &v); /* nobody can send: a deadlock */
}

static void deadlock_after_stop_child(void)
{
    struct ringo_config cfg = { .procs = nprocs_param };
    _exit(ringo_run(main_deadlock_after_stop, NULL, &cfg) == -EDEADLK ? 0 : 1);
}

START_TEST(deadlock_reported_again_after_stop)
{
    char err[4096];
    int st = run_captured(deadlock_after_stop_child, err, sizeof err);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, err);
    ck_assert_msg(strstr(err, "deadlock") != NULL, "stderr: %s", err);
}
END_TEST

/* SIGPIPE: -EPIPE from the write, the process lives, default back after. */
static void main_sigpipe(void *arg)
{
    (void)arg;
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    close(sv[1]);
    ck_assert_int_eq(ringo_write(sv[0], "x", 1), -EPIPE);
    ck_assert_int_eq(ringo_send(sv[0], "x", 1, 0), -EPIPE);
    close(sv[0]);
}

START_TEST(sigpipe_is_an_error_not_death)
{
    signal(SIGPIPE, SIG_DFL);
    RUN(main_sigpipe, NULL, nprocs_param);
    struct sigaction sa;
    ck_assert_int_eq(sigaction(SIGPIPE, NULL, &sa), 0);
    ck_assert(sa.sa_handler == SIG_DFL);
}
END_TEST

/* A channel registered for SIGPIPE receives the one a goroutine's write
 * to a pipe with no reader raises: the kernel sends it to the proc
 * thread that made the call, which must not keep it blocked (pending
 * there for ever, where the signal thread cannot read it). */
static void main_sigpipe_notify(void *arg)
{
    (void)arg;
    ringo_chan *c = ringo_chan_make(sizeof(int), 4);
    int sig = SIGPIPE;
    ck_assert_int_eq(ringo_signal_notify(c, &sig, 1), 0);
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    close(p[0]);
    ck_assert_int_eq(ringo_write(p[1], "x", 1), -EPIPE);
    ringo_deadline_set(ringo_now() + 5000 * MS);
    int v = 0;
    ck_assert_int_eq(ringo_chan_recv(c, &v), 0);
    ck_assert_int_eq(v, SIGPIPE);
    ringo_deadline_set(RINGO_NEVER);
    close(p[1]);
    ck_assert_int_eq(ringo_signal_stop(c), 0);
    ringo_chan_release(c);
    sigset_t pend;
    ck_assert_int_eq(sigpending(&pend), 0);
    ck_assert(!sigismember(&pend, SIGPIPE));
}

START_TEST(sigpipe_of_a_write_reaches_its_channel)
{
    RUN(main_sigpipe_notify, NULL, nprocs_param);
}
END_TEST

/* Registration from a plain thread during the run. */
struct plain_reg { ringo_chan *c; int r; };
static void *register_from_thread(void *arg)
{
    struct plain_reg *pr = arg;
    int sig = SIGUSR1;
    pr->r = ringo_signal_notify(pr->c, &sig, 1);
    return NULL;
}

static void main_plain(void *arg)
{
    (void)arg;
    struct plain_reg pr = { ringo_chan_make(sizeof(int), 1), -1 };
    pthread_t t;
    ck_assert_int_eq(test_thread_create(&t, register_from_thread, &pr), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(pr.r, 0);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    int v;
    ck_assert_int_eq(ringo_chan_recv(pr.c, &v), 0);
    ck_assert_int_eq(v, SIGUSR1);
    /* left registered: the end of the run drops it */
    ringo_chan_release(pr.c);
}

START_TEST(register_from_a_plain_thread)
{
    RUN(main_plain, NULL, nprocs_param);
    /* the run's end restored the default */
    struct sigaction sa;
    ck_assert_int_eq(sigaction(SIGUSR1, NULL, &sa), 0);
    ck_assert(sa.sa_handler == SIG_DFL);
}
END_TEST

static void main_bad(void *arg)
{
    (void)arg;
    ringo_chan *c = ringo_chan_make(sizeof(int), 1);
    ringo_chan *wide = ringo_chan_make(sizeof(long long), 1);
    int sig = SIGUSR1, kill9 = SIGKILL, segv = SIGSEGV, zero = 0, big = 65;
    ck_assert_int_eq(ringo_signal_notify(NULL, &sig, 1), -EINVAL);
    ck_assert_int_eq(ringo_signal_notify(c, NULL, 1), -EINVAL);
    ck_assert_int_eq(ringo_signal_notify(c, &sig, 0), -EINVAL);
    ck_assert_int_eq(ringo_signal_notify(wide, &sig, 1), -EINVAL);
    ck_assert_int_eq(ringo_signal_notify(c, &kill9, 1), -EINVAL);
    ck_assert_int_eq(ringo_signal_notify(c, &segv, 1), -EINVAL);
    ck_assert_int_eq(ringo_signal_notify(c, &zero, 1), -EINVAL);
    ck_assert_int_eq(ringo_signal_notify(c, &big, 1), -EINVAL);
    for (int libc = SIGSYS + 1; libc < SIGRTMIN; libc++) /* glibc's own: 32, 33 */
        ck_assert_int_eq(ringo_signal_notify(c, &libc, 1), -EINVAL);
    ck_assert_int_eq(ringo_signal_stop(c), -ENOENT); /* none of them registered c */
    ck_assert_int_eq(ringo_signal_stop(NULL), -EINVAL);
    ringo_chan_release(c);
    ringo_chan_release(wide);
}

/* The end of the run stops the signal thread (sig_stop, then a poke on its
 * eventfd, then a join) whatever the thread was doing: here it is held,
 * woken by a ringo_signal_stop, between its poll and its read of the
 * eventfd until the run's end has asked it to stop and poked it, the
 * worst moment for a thread that would look at the stop flag before
 * reading the eventfd (the read would take the poke, and the next poll
 * would wait for ever, with ringo_run in pthread_join).  Exactly two
 * pokes follow the arming: ringo_signal_stop's and the run end's. */
static atomic_int seam_armed, seam_held;
static unsigned long seam_until;

static void stop_seam(void)
{
    int one = 1;
    if (!atomic_compare_exchange_strong(&seam_armed, &one, 0))
        return; /* once */
    /* Bounded: a run that never gets there is reported by the check
     * below, not by a hang here. */
    for (int i = 0; i < 30000; i++) {
        if (atomic_load(&signal_pokes) >= seam_until)
            break;
        usleep(1000);
    }
    atomic_store(&seam_held, 1);
}

static void main_stop_seam(void *arg)
{
    (void)arg;
    int sig = SIGUSR1;
    ringo_chan *c = ringo_chan_make(sizeof(int), 1);
    ck_assert_int_eq(ringo_signal_notify(c, &sig, 1), 0); /* starts the thread */
    seam_until = atomic_load(&signal_pokes) + 2;
    atomic_store(&seam_armed, 1);
    atomic_store(&signal_thread_seam, stop_seam);
    ck_assert_int_eq(ringo_signal_stop(c), 0); /* a poke: the thread wakes into the seam */
    ringo_chan_release(c);
}

START_TEST(stop_reaches_a_busy_signal_thread)
{
    atomic_store(&seam_held, 0);
    RUN(main_stop_seam, NULL, nprocs_param);
    atomic_store(&signal_thread_seam, NULL);
    ck_assert_int_eq(atomic_load(&seam_held), 1);
}
END_TEST

/* A handler that a plain thread entered before the run's end: the end
 * closes the signal thread's eventfd only once the handler has left it,
 * or the handler's write lands in whatever file gets the number next.
 * The seam holds the handler between its load of the number and its
 * write, until the test has put a socket at that number once ringo_run
 * has returned (or for at most a second: with the close waiting for the
 * handler, the number is freed only after the handler has gone).  The
 * socket must receive nothing. */
static atomic_int late_fd = -1, late_in, late_reused, late_done;
static pthread_t late_thread;

static void late_handler_seam(int fd)
{
    atomic_store(&late_fd, fd);
    atomic_store(&late_in, 1);
    for (int i = 0; i < 1000 && !atomic_load(&late_reused); i++) {
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
    }
}

static void *late_thread_main(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    while (!atomic_load(&late_done))
        usleep(1000);
    return NULL;
}

static void main_late_handler(void *arg)
{
    (void)arg;
    int sig = SIGUSR1;
    ringo_chan *c = ringo_chan_make(sizeof(int), 1);
    ck_assert_int_eq(ringo_signal_notify(c, &sig, 1), 0); /* the handler and the eventfd */
    atomic_store(&signal_handler_seam, late_handler_seam);
    ck_assert_int_eq(pthread_kill(late_thread, SIGUSR1), 0);
    while (!atomic_load(&late_in))
        ringo_yield();
    ringo_chan_release(c); /* the registration holds it to the run's end */
}

START_TEST(run_end_waits_for_a_handler_in_flight)
{
    atomic_store(&late_fd, -1);
    atomic_store(&late_in, 0);
    atomic_store(&late_reused, 0);
    atomic_store(&late_done, 0);
    ck_assert_int_eq(pthread_create(&late_thread, NULL, late_thread_main, NULL), 0);
    RUN(main_late_handler, NULL, nprocs_param);
    int fd = atomic_load(&late_fd);
    ck_assert_int_ge(fd, 0);
    bool freed = fcntl(fd, F_GETFD) < 0; /* the run's end closed its eventfd */
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    if (freed)
        ck_assert_int_eq(dup3(sv[1], fd, O_CLOEXEC), fd);
    atomic_store(&late_reused, 1);
    atomic_store(&late_done, 1);
    ck_assert_int_eq(pthread_join(late_thread, NULL), 0); /* the handler is done */
    atomic_store(&signal_handler_seam, NULL);
    ck_assert(freed);
    char b[8];
    ck_assert_int_eq(recv(sv[0], b, sizeof b, MSG_DONTWAIT), -1);
    ck_assert_int_eq(errno, EAGAIN);
    close(fd);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* A plain thread's ringo_signal_notify once the run has begun to end
 * (its registrations dropped, its signal thread stopped, its descriptors
 * closed) fails as one after the run: nothing is started again that the
 * end would have to stop.  teardown_seam makes the call from the
 * ringo_run caller, a plain thread, while the run is still active. */
static atomic_int late_notify_res = 1;
static ringo_chan *late_notify_chan;

static void notify_at_teardown(void)
{
    int sig = SIGUSR2;
    atomic_store(&late_notify_res, ringo_signal_notify(late_notify_chan, &sig, 1));
}

static void main_nothing(void *arg)
{
    (void)arg;
}

START_TEST(notify_as_the_run_ends_fails)
{
    late_notify_chan = ringo_chan_make(sizeof(int), 1);
    teardown_seam = notify_at_teardown;
    RUN(main_nothing, NULL, nprocs_param);
    teardown_seam = NULL;
    int r = atomic_load(&late_notify_res);
    ck_assert_int_eq(r, -EINVAL);
    struct sigaction sa;
    ck_assert_int_eq(sigaction(SIGUSR2, NULL, &sa), 0);
    ck_assert(sa.sa_handler == SIG_DFL);
    ringo_chan_release(late_notify_chan);
}
END_TEST

START_TEST(bad_arguments)
{
    RUN(main_bad, NULL, nprocs_param);
    int sig = SIGUSR1;
    ringo_chan *c = ringo_chan_make(sizeof(int), 1);
    ck_assert_int_eq(ringo_signal_notify(c, &sig, 1), -EINVAL); /* no run */
    ck_assert_int_eq(ringo_signal_stop(c), -ENOENT);
    ringo_chan_release(c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("signal");
    TCase *tc = tcase_create("signal");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, signals_arrive_on_every_channel);
    tcase_add_test(tc, signal_right_after_notify_arrives);
    tcase_add_test(tc, stop_restores_the_program_handler);
    tcase_add_test(tc, raise_on_a_proc_arrives);
    tcase_add_test(tc, mask_is_the_procs_for_every_goroutine);
    tcase_add_test(tc, process_pending_signal_after_stop_reaches_the_old_handler);
    tcase_add_test(tc, waiting_for_a_signal_is_not_a_deadlock);
    tcase_add_test(tc, deadlock_reported_again_after_stop);
    tcase_add_test(tc, sigpipe_is_an_error_not_death);
    tcase_add_test(tc, sigpipe_of_a_write_reaches_its_channel);
    tcase_add_test(tc, register_from_a_plain_thread);
    tcase_add_test(tc, stop_reaches_a_busy_signal_thread);
    tcase_add_test(tc, run_end_waits_for_a_handler_in_flight);
    tcase_add_test(tc, notify_as_the_run_ends_fails);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    skip_without_io_uring();
    return run_per_procs(suite, &nprocs_param);
}
