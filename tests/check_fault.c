/*
 * check_fault.c — fault injection.  Every allocation, mapping and setup
 * call the runtime makes goes through a seam (src/fault.h) that a test can
 * fail on its N-th call.  For each scenario below (ringo_run's own setup,
 * spawn, channels and sync, timers, select, accept, offload, cancel, a
 * plain thread calling in, signals, descriptor deadlines) the
 * walk runs the scenario again and again, failing seam call N = 1, 2, 3,
 * ..., until two runs in a row make fewer than N seam calls, so every site
 * the scenario reaches is failed once.  (One such run would do where the
 * calls come in a fixed order; where helper threads make their number
 * vary, the second confirms.)  Each N runs in a forked child, which
 * must:
 *
 *   - see every operation either succeed or fail cleanly, with the error
 *     its man page gives for exhaustion (-ENOMEM, -EAGAIN, NULL with errno
 *     ENOMEM) — never a crash, a wrong result or a lost wake-up;
 *   - end the run: ringo_run returns 0 (for the setup scenario, the setup
 *     error instead), never -EDEADLK, never a hang (alarm);
 *   - give back every descriptor it opened, and, in the ASan build, every
 *     byte (LeakSanitizer runs when the child exits);
 *   - and then run again, unarmed, as if nothing had happened.
 *
 * The walk also checks that each scenario reaches the source files whose
 * sites it is there for, so a seam removed from them is noticed.
 */
#include "testutil.h"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "internal.h" /* goroutine states, for waiting until one is parked */

/* Per child: a run that takes this long has hung.  Each takes
 * milliseconds; the margin is for sanitizers on a loaded machine. */
#define CHILD_ALARM_S 60

/* No scenario makes this many seam calls: a walk that gets here does not
 * end by itself. */
#define WALK_MAX 400

/* Shared with the children: what the N-th call was. */
struct walk_report {
    char site[160];             /* fault_fired(), or "" if nothing failed */
};
static struct walk_report *report;

static long arm_n;              /* in the child: the N of this run */

static void arm(void)
{
    fault_arm(arm_n);
}

static _Noreturn void child_fail(int line, const char *what)
{
    const char *site = fault_fired();
    if (site) /* else the run is over and child() has recorded it */
        snprintf(report->site, sizeof report->site, "%s", site);
    fprintf(stderr, "check_fault.c:%d: N=%ld: %s (the failed call: %s)\n", line, arm_n, what,
            report->site[0] ? report->site : "none");
    fflush(stderr);
    _exit(2);
}

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond))                                                       \
            child_fail(__LINE__, "failed: " #cond);                        \
    } while (0)

#define CHECK_MSG(cond, ...)                                               \
    do {                                                                   \
        if (!(cond)) {                                                     \
            char msg_[256];                                                \
            snprintf(msg_, sizeof msg_, __VA_ARGS__);                      \
            child_fail(__LINE__, msg_);                                    \
        }                                                                  \
    } while (0)

/* The errors an operation may return when the runtime runs out of memory
 * or threads. */
static bool exhausted(long r)
{
    return r == -ENOMEM || r == -EAGAIN;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Wait until goroutine id is parked (so that what ends its wait has to
 * interrupt it). */
static void wait_parked(int64_t id)
{
    for (;;) {
        struct rg *g = gtable_lookup(id);
        CHECK(g);
        if (load_relaxed(&g->state) == G_WAITING && !(load_acquire(&g->park) & PARK_CLAIMED))
            return;
        ringo_sleep(50 * US);
    }
}

/* ---------------------------------------------------------------------- */
/* ringo_run's setup: armed before ringo_run, so the walk fails each of
 * its calls (procs, alternate stacks, threads, rings, probes, eventfds,
 * the goroutine table, the first stack region) in turn. */

static atomic_int setup_ran, setup_ran_on_1;

static void setup_on_1(void *arg)
{
    (void)arg;
    atomic_store(&setup_ran_on_1, 1);
}

static void sc_setup(void *arg)
{
    (void)arg;
    atomic_store(&setup_ran, 1);
    int64_t id = ringo_go_on(1, setup_on_1, NULL);
    CHECK_MSG(id > 0 || id == -ENOMEM, "ringo_go_on: %lld", (long long)id);
    if (id < 0)
        atomic_store(&setup_ran_on_1, 1);
}

/* ---------------------------------------------------------------------- */
/* Spawn: more goroutines than a chunk of goroutine structs (64), a batch
 * of stack credits (64) and a stack region (1024), all started and parked
 * at once so the timer heap grows too. */

#define NSPAWN 1100

static atomic_int spawn_ran;
static ringo_waitgroup spawn_wg;

static void spawned(void *arg)
{
    int v;
    CHECK(ringo_chan_recv(arg, &v) == -EPIPE); /* the gate is closed */
    atomic_fetch_add(&spawn_ran, 1);
    ringo_waitgroup_done(&spawn_wg);
}

static void sc_spawn(void *arg)
{
    (void)arg;
    ringo_chan *gate = ringo_chan_make(sizeof(int), 0);
    CHECK(gate);
    arm();
    int ok = 0;
    for (int i = 0; i < NSPAWN; i++) {
        ringo_waitgroup_add(&spawn_wg, 1);
        int64_t id = i % 100 == 0 ? ringo_go_on(0, spawned, gate) : ringo_go(spawned, gate);
        if (id > 0) {
            ok++;
        } else {
            CHECK_MSG(id == -ENOMEM, "spawn %d: %lld", i, (long long)id);
            ringo_waitgroup_done(&spawn_wg);
        }
    }
    ringo_yield(); /* they all start and park on the gate */
    CHECK(ringo_chan_close(gate) == 0);
    ringo_waitgroup_wait(&spawn_wg);
    CHECK_MSG(atomic_load(&spawn_ran) == ok, "%d ran, %d spawned", atomic_load(&spawn_ran), ok);
    ringo_chan_release(gate);
}

/* ---------------------------------------------------------------------- */
/* Channels and sync. */

#define NSEND 20

static void chan_sender(void *arg)
{
    ringo_chan *c = arg;
    for (int i = 1; i <= NSEND; i++)
        CHECK(ringo_chan_send(c, &i) == 0);
    CHECK(ringo_chan_close(c) == 0);
    ringo_chan_release(c);
}

static ringo_mutex mu;
static ringo_waitgroup mu_wg;
static int mu_count;

static void mu_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++) {
        ringo_mutex_lock(&mu);
        int v = mu_count;
        ringo_yield(); /* the other worker finds the mutex held and waits */
        mu_count = v + 1;
        ringo_mutex_unlock(&mu);
    }
    ringo_waitgroup_done(&mu_wg);
}

static void sc_chan(void *arg)
{
    (void)arg;
    arm();
    const size_t caps[] = { 0, 1, 16, 4096 };
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        ringo_chan *c = ringo_chan_make(sizeof(int), caps[k]);
        if (!c) {
            CHECK_MSG(errno == ENOMEM, "ringo_chan_make(cap %zu): errno %d", caps[k], errno);
            continue;
        }
        int64_t id = ringo_go(chan_sender, ringo_chan_retain(c));
        if (id < 0) {
            CHECK(id == -ENOMEM);
            ringo_chan_release(c); /* the sender's reference */
            ringo_chan_release(c);
            continue;
        }
        int v, sum = 0, n = 0;
        while (ringo_chan_recv(c, &v) == 0) {
            sum += v;
            n++;
        }
        CHECK_MSG(n == NSEND && sum == NSEND * (NSEND + 1) / 2, "cap %zu: %d values, sum %d",
                  caps[k], n, sum);
        ringo_chan_release(c);
    }

    mu_count = 0;
    int workers = 0;
    for (int i = 0; i < 2; i++) {
        ringo_waitgroup_add(&mu_wg, 1);
        int64_t id = ringo_go(mu_worker, NULL);
        if (id > 0) {
            workers++;
        } else {
            CHECK(id == -ENOMEM);
            ringo_waitgroup_done(&mu_wg);
        }
    }
    ringo_waitgroup_wait(&mu_wg);
    CHECK_MSG(mu_count == 10 * workers, "count %d with %d workers", mu_count, workers);
}

/* ---------------------------------------------------------------------- */
/* Timers: sleeps, ringo_after, ringo_tick, deadlines; a timer channel
 * that needs the timer heap to grow; a ticker left running when the run
 * ends. */

/* Goroutines parked before the walk's calls, each holding a timer heap
 * slot, so that the next timer channel grows the heap (its first
 * allocation holds 64: main's slot and these). */
#define NHOLD 63

static ringo_waitgroup hold_wg;

static void hold_slot(void *arg)
{
    int v;
    CHECK(ringo_chan_recv(arg, &v) == -EPIPE);
    ringo_waitgroup_done(&hold_wg);
}

/* Referenced past the run's end (volatile: the store, never read, stays). */
static ringo_chan *volatile timers_left;

static void sc_timers(void *arg)
{
    (void)arg;
    ringo_chan *gate = ringo_chan_make(sizeof(int), 0);
    CHECK(gate);
    for (int i = 0; i < NHOLD; i++) {
        ringo_waitgroup_add(&hold_wg, 1);
        CHECK(ringo_go(hold_slot, gate) > 0);
    }
    ringo_yield(); /* they start, and park */
    arm();

    int64_t v = 0;
    ringo_chan *a = ringo_after(1 * MS); /* grows the heap */
    if (a) {
        CHECK(ringo_chan_recv(a, &v) == 0 && v > 0);
        ringo_chan_release(a);
    } else {
        CHECK_MSG(errno == ENOMEM, "ringo_after: errno %d", errno);
    }
    CHECK(ringo_chan_close(gate) == 0);
    ringo_waitgroup_wait(&hold_wg);
    ringo_chan_release(gate);

    CHECK(ringo_sleep(1 * MS) == 0);

    ringo_chan *t = ringo_tick(1 * MS);
    if (t) {
        for (int i = 0; i < 3; i++)
            CHECK(ringo_chan_recv(t, &v) == 0 && v > 0);
        ringo_tick_stop(t);
    } else {
        CHECK_MSG(errno == ENOMEM, "ringo_tick: errno %d", errno);
    }

    ringo_chan *never = ringo_chan_make(sizeof(int), 0);
    ringo_deadline_set(ringo_now() + 2 * MS);
    if (never) {
        int x;
        CHECK(ringo_chan_recv(never, &x) == -ETIMEDOUT);
        ringo_chan_release(never);
    }
    CHECK(ringo_sleep(1000 * MS) == -ETIMEDOUT);
    ringo_deadline_set(RINGO_NEVER);

    /* Released: nobody references it, so the release stops it. */
    ringo_chan *gone = ringo_tick(1000 * MS);
    if (gone)
        ringo_chan_release(gone);
    else
        CHECK_MSG(errno == ENOMEM, "ringo_tick: errno %d", errno);

    /* Never stopped, and still referenced: the end of the run discards
     * it. */
    timers_left = ringo_tick(1000 * MS);
    if (!timers_left)
        CHECK_MSG(errno == ENOMEM, "ringo_tick: errno %d", errno);
}

/* ---------------------------------------------------------------------- */
/* Select: more cases than fit on the stack (a heap allocation), blocking
 * and not, with a timer case and a sender on another goroutine.  A channel
 * that could not be made is a nil channel, a legal case never ready. */

#define NSEL 10

static void sel_sender(void *arg)
{
    int v = 42;
    ringo_yield();
    CHECK(ringo_chan_send(arg, &v) == 0);
    ringo_chan_release(arg);
}

static void sc_select(void *arg)
{
    (void)arg;
    arm();
    ringo_chan *c[NSEL];
    int vals[NSEL];
    struct ringo_case cs[NSEL];
    for (int i = 0; i < NSEL; i++) {
        c[i] = ringo_chan_make(sizeof(int), 1);
        if (!c[i])
            CHECK(errno == ENOMEM);
        cs[i] = (struct ringo_case){ .chan = c[i], .op = RINGO_RECV, .elem = &vals[i] };
    }

    int r = ringo_select(cs, NSEL, RINGO_NONBLOCK);
    CHECK_MSG(r == -EAGAIN || r == -ENOMEM, "nothing ready: %d", r);

    int one = 7;
    if (c[7]) {
        CHECK(ringo_chan_try_send(c[7], &one) == 0);
        r = ringo_select(cs, NSEL, 0);
        CHECK_MSG(r == 7 || r == -ENOMEM, "c[7] ready: %d", r);
        if (r == 7)
            CHECK(vals[7] == 7 && cs[7].err == 0);
        else
            CHECK(ringo_chan_try_recv(c[7], &vals[7]) == 0);
    }

    if (c[3]) {
        int64_t id = ringo_go(sel_sender, ringo_chan_retain(c[3]));
        if (id > 0) {
            r = ringo_select(cs, NSEL, 0);
            CHECK_MSG(r == 3 || r == -ENOMEM, "sender on c[3]: %d", r);
            if (r == 3)
                CHECK(vals[3] == 42);
            else
                CHECK(ringo_chan_recv(c[3], &vals[3]) == 0 && vals[3] == 42);
        } else {
            CHECK(id == -ENOMEM);
            ringo_chan_release(c[3]);
        }
    }

    /* A timer among the cases, with and without the heap. */
    ringo_chan *after = ringo_after(1 * MS);
    if (after) {
        int64_t when;
        struct ringo_case two[2] = {
            { .chan = c[0], .op = RINGO_RECV, .elem = &vals[0] },
            { .chan = after, .op = RINGO_RECV, .elem = &when },
        };
        CHECK(ringo_select(two, 2, 0) == 1);
        ringo_chan_release(after);
    }
    after = ringo_after(1 * MS);
    if (after) {
        int64_t when;
        cs[NSEL - 1] = (struct ringo_case){ .chan = after, .op = RINGO_RECV, .elem = &when };
        r = ringo_select(cs, NSEL, 0);
        CHECK_MSG(r == NSEL - 1 || r == -ENOMEM, "timer case: %d", r);
        ringo_chan_release(after);
    }
    for (int i = 0; i < NSEL; i++)
        ringo_chan_release(c[i]);
}

/* ---------------------------------------------------------------------- */
/* Accept, on two procs: connections that queue on the multishot acceptor
 * before anyone takes them, an accept with an address (single-shot), I/O
 * on the accepted sockets, and ringo_close of the listener while a
 * goroutine of the other proc still accepts on it: that accept must end
 * (-EBADF), and the port must stop listening. */

#define NCONN 3

static char port_str[16];
static ringo_chan *dial_done;
static int listen_fd;

static void dialer(void *arg)
{
    (void)arg;
    int fds[NCONN];
    /* First the connection the server accepts with an address, and
     * closes. */
    int fd = ringo_tcp_dial("127.0.0.1", port_str);
    CHECK_MSG(fd >= 0, "dial: %d", fd);
    char b = 'z';
    CHECK(ringo_read(fd, &b, 1) == 0);
    CHECK(ringo_close(fd) == 0);
    /* Then NCONN at once, so some queue on the acceptor. */
    for (int i = 0; i < NCONN; i++) {
        fds[i] = ringo_tcp_dial("127.0.0.1", port_str);
        CHECK_MSG(fds[i] >= 0, "dial %d: %d", i, fds[i]);
    }
    for (int i = 0; i < NCONN; i++) {
        b = (char)('a' + i);
        CHECK(ringo_write(fds[i], &b, 1) == 1);
        CHECK(ringo_read(fds[i], &b, 1) == 1 && b == 'a' + i);
        CHECK(ringo_close(fds[i]) == 0);
    }
    int one = 1;
    CHECK(ringo_chan_send(dial_done, &one) == 0);
}

/* Still accepting on proc 1 when the listener is closed on proc 0. */
static void late_acceptor(void *arg)
{
    (void)arg;
    int r = ringo_accept(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    CHECK_MSG(r == -EBADF, "accept on a listener closed meanwhile: %d", r);
    CHECK(ringo_chan_try_send(dial_done, &r) == 0);
}

/* The accept with an address comes first: it is single-shot, and a
 * multishot request still armed on the listener would take its connection
 * into a queue that only callers without an address read (accept.c). */
static void sc_accept(void *arg)
{
    (void)arg;
    int lfd = ringo_tcp_listen("127.0.0.1", "0", 16, 0);
    CHECK(lfd >= 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    CHECK(getsockname(lfd, (struct sockaddr *)&sa, &len) == 0);
    snprintf(port_str, sizeof port_str, "%u", (unsigned)ntohs(sa.sin_port));
    dial_done = ringo_chan_make(sizeof(int), 1);
    CHECK(dial_done);
    arm();

    int64_t id = ringo_go_on(1, dialer, NULL);
    if (id > 0) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof peer;
        int a = ringo_accept(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
        CHECK_MSG(a >= 0, "accept with an address: %d", a);
        CHECK(peer.sin_family == AF_INET);
        CHECK(ringo_close(a) == 0);
        for (int i = 0; i < NCONN; i++) {
            a = ringo_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
            CHECK_MSG(a >= 0, "accept %d: %d", i, a);
            char b;
            CHECK(ringo_read(a, &b, 1) == 1);
            CHECK(ringo_write(a, &b, 1) == 1);
            CHECK(ringo_close(a) == 0);
        }
        int one;
        CHECK(ringo_chan_recv(dial_done, &one) == 0);
    } else {
        CHECK(id == -ENOMEM);
    }
    listen_fd = lfd;
    id = ringo_go_on(1, late_acceptor, NULL);
    CHECK(id > 0 || id == -ENOMEM);
    if (id > 0)
        wait_parked(id);
    CHECK(ringo_close(lfd) == 0);
    if (id > 0) {
        int r;
        CHECK(ringo_chan_recv(dial_done, &r) == 0);
    }
    /* Closed means not listening any more. */
    int fd = ringo_tcp_dial("127.0.0.1", port_str);
    CHECK_MSG(fd == -ECONNREFUSED, "dial after close: %d", fd);
    ringo_chan_release(dial_done);
}

/* ---------------------------------------------------------------------- */
/* Offload: one at a time, then several at once (more helper threads), and
 * a name lookup (which offloads getaddrinfo). */

static atomic_int offloaded;
static ringo_waitgroup off_wg;
static int lookup_baseline;     /* ringo_tcp_listen("localhost") outside the walk */

static void off_fn(void *arg)
{
    (void)arg;
    usleep(1000);
    atomic_fetch_add(&offloaded, 1);
}

static void off_worker(void *arg)
{
    atomic_int *ok = arg;
    int r = ringo_offload(off_fn, NULL);
    CHECK_MSG(r == 0 || exhausted(r), "ringo_offload: %d", r);
    if (r == 0)
        atomic_fetch_add(ok, 1);
    ringo_waitgroup_done(&off_wg);
}

static void sc_offload(void *arg)
{
    (void)arg;
    arm();
    /* First the lookup: it starts the first helper, so its calls come in
     * the same order in every run. */
    int fd = ringo_tcp_listen("localhost", "0", 4, 0);
    if (fd >= 0) {
        CHECK(lookup_baseline >= 0);
        CHECK(ringo_close(fd) == 0);
    } else {
        CHECK_MSG(fd == lookup_baseline || exhausted(fd), "listen on localhost: %d (unarmed: %d)",
                  fd, lookup_baseline);
    }

    /* How many more helpers these start depends on how fast the earlier
     * ones went idle, so from here the seam calls vary. */
    atomic_int ok = 0;
    for (int i = 0; i < 3; i++) {
        int r = ringo_offload(off_fn, NULL);
        CHECK_MSG(r == 0 || exhausted(r), "ringo_offload: %d", r);
        if (r == 0)
            atomic_fetch_add(&ok, 1);
    }
    for (int i = 0; i < 4; i++) {
        ringo_waitgroup_add(&off_wg, 1);
        int64_t id = ringo_go(off_worker, &ok);
        if (id < 0) {
            CHECK(id == -ENOMEM);
            ringo_waitgroup_done(&off_wg);
        }
    }
    ringo_waitgroup_wait(&off_wg);
    /* A job that was refused never ran; one that was accepted ran once. */
    CHECK_MSG(atomic_load(&offloaded) == atomic_load(&ok), "%d ran, %d accepted",
              atomic_load(&offloaded), atomic_load(&ok));
}

/* ---------------------------------------------------------------------- */
/* Cancel, across procs: ringo_cancel of a goroutine parked on another proc
 * allocates the request it posts there.  The targets wait in a channel
 * receive, a read and a sleep. */

static ringo_chan *cancel_results;
static int cancel_pipe[2];

static void cancel_target(void *arg)
{
    long kind = (long)arg;
    int r;
    if (kind == 0) {
        ringo_chan *never = ringo_chan_make(sizeof(int), 0);
        int x;
        /* no channel (no memory): wait in a sleep instead */
        r = never ? ringo_chan_recv(never, &x) : ringo_sleep(RINGO_NEVER);
        ringo_chan_release(never);
    } else if (kind == 1) {
        char b;
        r = (int)ringo_read(cancel_pipe[0], &b, 1);
    } else {
        r = ringo_sleep(RINGO_NEVER);
    }
    /* try_send: a cancelled goroutine's blocking calls all fail, and
     * the channel has room for every target */
    CHECK(ringo_chan_try_send(cancel_results, &r) == 0);
}

static void sc_cancel(void *arg)
{
    (void)arg;
    CHECK(pipe(cancel_pipe) == 0);
    cancel_results = ringo_chan_make(sizeof(int), 3);
    CHECK(cancel_results);
    arm();
    int64_t ids[3];
    int n = 0;
    for (long k = 0; k < 3; k++) {
        ids[n] = ringo_go_on(1, cancel_target, (void *)k);
        if (ids[n] > 0)
            n++;
        else
            CHECK(ids[n] == -ENOMEM);
    }
    /* All parked before the first cancel, so the seam calls come in the
     * same order in every run (the walk then fails each of them). */
    for (int i = 0; i < n; i++)
        wait_parked(ids[i]);
    for (int i = 0; i < n; i++) {
        int r;
        /* -ENOMEM: nothing was done, and the call may be repeated. */
        while ((r = ringo_cancel(ids[i])) == -ENOMEM)
            ;
        CHECK_MSG(r == 0, "ringo_cancel: %d", r);
    }
    for (int i = 0; i < n; i++) {
        int r;
        CHECK(ringo_chan_recv(cancel_results, &r) == 0);
        CHECK_MSG(r == -ECANCELED, "a cancelled wait returned %d", r);
    }
    ringo_chan_release(cancel_results);
    close(cancel_pipe[0]);
    close(cancel_pipe[1]);
}

/* ---------------------------------------------------------------------- */
/* A plain thread calling in: spawns (goroutine structs and stack credits
 * from the global pools rather than a proc's), a timer channel armed by a
 * task posted to a proc, a cancel posted to a goroutine's proc, and the
 * close of a listener a goroutine accepts on. */

#define NTHREAD_SPAWN 70        /* past a chunk of goroutine structs */

static ringo_chan *thr_done;
static atomic_int thr_ran;
static int64_t thr_target;
static int thr_listen;

static void thr_spawned(void *arg)
{
    (void)arg;
    atomic_fetch_add(&thr_ran, 1);
}

static void thr_target_fn(void *arg)
{
    int x;
    int r = ringo_chan_recv(arg, &x);
    CHECK_MSG(r == -ECANCELED, "a cancelled receive returned %d", r);
    ringo_chan_release(arg);
}

static void *thr_main(void *arg)
{
    (void)arg;
    int ok = 0;
    for (int i = 0; i < NTHREAD_SPAWN; i++) {
        int64_t id = ringo_go(thr_spawned, NULL);
        if (id > 0)
            ok++;
        else
            CHECK_MSG(id == -ENOMEM, "spawn from a thread: %lld", (long long)id);
    }
    ringo_chan *a = ringo_after(1 * MS);
    if (a) {
        int64_t v;
        /* -EPIPE: the proc that was to arm it had no room for it */
        int r = ringo_chan_recv(a, &v);
        CHECK_MSG(r == 0 || r == -EPIPE, "ringo_after from a thread: %d", r);
        ringo_chan_release(a);
    } else {
        CHECK_MSG(errno == ENOMEM, "ringo_after from a thread: errno %d", errno);
    }
    int r;
    while ((r = ringo_cancel(thr_target)) == -ENOMEM)
        ;
    CHECK_MSG(r == 0, "ringo_cancel from a thread: %d", r);
    /* Close a listener a goroutine accepts on: its accept ends. */
    CHECK(ringo_close(thr_listen) == 0);
    CHECK(ringo_chan_send(thr_done, &ok) == 0);
    return NULL;
}

static void thr_acceptor(void *arg)
{
    (void)arg;
    int r = ringo_accept(thr_listen, NULL, NULL, 0);
    CHECK_MSG(r == -EBADF, "accept on a listener a thread closed: %d", r);
}

static void sc_thread(void *arg)
{
    (void)arg;
    ringo_chan *never = ringo_chan_make(sizeof(int), 0);
    thr_done = ringo_chan_make(sizeof(int), 1);
    CHECK(never && thr_done);
    thr_target = ringo_go_on(1, thr_target_fn, ringo_chan_retain(never));
    CHECK(thr_target > 0);
    wait_parked(thr_target);
    thr_listen = ringo_tcp_listen("127.0.0.1", "0", 4, 0);
    CHECK(thr_listen >= 0);
    int64_t acceptor = ringo_go_on(1, thr_acceptor, NULL);
    CHECK(acceptor > 0);
    wait_parked(acceptor); /* its multishot request is armed */
    arm();
    pthread_t t;
    CHECK(test_thread_create(&t, thr_main, NULL) == 0);
    int ok;
    CHECK(ringo_chan_recv(thr_done, &ok) == 0);
    CHECK(pthread_join(t, NULL) == 0); /* it has sent its last word: a short wait */
    /* Every goroutine it spawned runs, once. */
    while (atomic_load(&thr_ran) < ok)
        ringo_sleep(100 * US);
    CHECK_MSG(atomic_load(&thr_ran) == ok, "%d ran, %d spawned", atomic_load(&thr_ran), ok);
    ringo_chan_release(never);
    ringo_chan_release(thr_done);
}

/* ---------------------------------------------------------------------- */
/* Signals, on two procs: ringo_signal_notify starts the runtime's signal
 * thread (an eventfd and a thread), registers the channel and has every
 * proc take the signal; one is sent and received, and the channel
 * unregistered. */

static void sc_signal(void *arg)
{
    (void)arg;
    ringo_chan *c = ringo_chan_make(sizeof(int), 4);
    CHECK(c);
    arm();
    int sig = SIGUSR1;
    int r = ringo_signal_notify(c, &sig, 1);
    if (r == 0) {
        CHECK(kill(getpid(), SIGUSR1) == 0);
        int got = 0;
        CHECK(ringo_chan_recv(c, &got) == 0);
        CHECK_MSG(got == SIGUSR1, "received signal %d", got);
        CHECK(ringo_signal_stop(c) == 0);
    } else {
        /* -EMFILE: no descriptor for the signal thread's eventfd */
        CHECK_MSG(exhausted(r) || r == -EMFILE, "ringo_signal_notify: %d", r);
    }
    ringo_chan_release(c);
}

/* ---------------------------------------------------------------------- */
/* Descriptor deadlines, on two procs: a deadline set on proc 0 ends a read
 * blocked on proc 1 (the descriptor's entry, and the request to the other
 * proc, are allocated). */

static int fdl_pipe[2];
static ringo_chan *fdl_done;

static void fdl_reader(void *arg)
{
    (void)arg;
    char b;
    int r = (int)ringo_read(fdl_pipe[0], &b, 1);
    CHECK(ringo_chan_try_send(fdl_done, &r) == 0);
}

static void sc_fd_deadline(void *arg)
{
    (void)arg;
    CHECK(pipe(fdl_pipe) == 0);
    fdl_done = ringo_chan_make(sizeof(int), 1);
    CHECK(fdl_done);
    int64_t id = ringo_go_on(1, fdl_reader, NULL);
    CHECK(id > 0);
    wait_parked(id);
    arm();
    int r = ringo_fd_deadline_set(fdl_pipe[0], RINGO_READ, ringo_now());
    int got;
    if (r == 0) {
        CHECK(ringo_chan_recv(fdl_done, &got) == 0);
        CHECK_MSG(got == -ETIMEDOUT, "a read past its descriptor's deadline: %d", got);
    } else {
        /* Its page says: the deadline may be set, but a blocked read on
         * another proc sees it only when it ends; end it with a byte. */
        CHECK_MSG(r == -ENOMEM, "ringo_fd_deadline_set: %d", r);
        CHECK(write(fdl_pipe[1], "x", 1) == 1);
        CHECK(ringo_chan_recv(fdl_done, &got) == 0);
        CHECK_MSG(got == 1 || got == -ETIMEDOUT, "the read: %d", got);
    }
    ringo_chan_release(fdl_done);
    CHECK(ringo_close(fdl_pipe[0]) == 0);
    CHECK(ringo_close(fdl_pipe[1]) == 0);
}

/* ---------------------------------------------------------------------- */
/* The walk */

struct scenario {
    const char *name;
    void (*fn)(void *);
    unsigned procs;
    bool arm_before_run;        /* fail calls of ringo_run's setup too */
    const char *reach[6];       /* source files whose sites the walk must fail */
};

static void noop(void *arg)
{
    (void)arg;
}

/* A run that does not end: say which call failed and where every
 * goroutine is (not async-signal-safe, but the child is stuck anyway). */
static void on_alarm(int sig)
{
    (void)sig;
    const char *site = fault_fired();
    if (site)
        snprintf(report->site, sizeof report->site, "%s", site);
    dprintf(2, "N=%ld: the run did not end within %d s (the failed call: %s)\n", arm_n,
            CHILD_ALARM_S, site ? site : "none yet");
    ringo_dump(2);
    _exit(3);
}

static _Noreturn void child(const struct scenario *sc, long n)
{
    signal(SIGALRM, on_alarm);
    alarm(CHILD_ALARM_S);
    /* Two guarded stacks at most, so a thousand goroutines do not mean a
     * thousand mprotect calls to walk. */
    setenv("RINGO_GUARD_STACKS", "2", 1);
    arm_n = n;
    int fds = count_fds();
    struct ringo_config cfg = { .procs = sc->procs };
    if (sc->arm_before_run)
        arm();
    int r = ringo_run(sc->fn, NULL, &cfg);
    const char *site = fault_fired();
    fault_arm(0);
    if (site)
        snprintf(report->site, sizeof report->site, "%s", site);
    if (sc->arm_before_run) {
        if (r == 0)
            CHECK(atomic_load(&setup_ran) && atomic_load(&setup_ran_on_1));
        else
            CHECK_MSG((exhausted(r) || r == -EMFILE) && !atomic_load(&setup_ran),
                      "ringo_run: %d", r);
    } else {
        CHECK_MSG(r == 0, "ringo_run: %d", r);
    }
    CHECK_MSG(count_fds() == fds, "%d descriptors open, %d before", count_fds(), fds);
    /* Nothing of the failure is left over for the next run. */
    r = ringo_run(noop, NULL, &cfg);
    CHECK_MSG(r == 0, "the next run: %d", r);
    CHECK(count_fds() == fds);
    fflush(NULL);
    exit(0); /* LeakSanitizer checks here */
}

static bool reached(char sites[][160], int nsites, const char *file)
{
    for (int i = 0; i < nsites; i++)
        if (strstr(sites[i], file))
            return true;
    return false;
}

static void walk(const struct scenario *sc)
{
    static char sites[WALK_MAX][160];
    int nsites = 0, quiet = 0;
    long n;
    for (n = 1;; n++) {
        ck_assert_msg(n <= WALK_MAX, "%s: more than %d seam calls", sc->name, WALK_MAX);
        report->site[0] = '\0';
        FILE *errf = tmpfile();
        ck_assert_ptr_nonnull(errf);
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            dup2(fileno(errf), 2);
            child(sc, n);
        }
        int st = 0;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            /* What the child said: the failed check, a sanitizer's
             * report, a ringo fatal error, the goroutines of a hang. */
            char buf[4096];
            size_t got;
            rewind(errf);
            while ((got = fread(buf, 1, sizeof buf, errf)) > 0)
                fwrite(buf, 1, got, stderr);
            fflush(stderr);
            ck_abort_msg("%s: N=%ld (failing %s): the child %s %d", sc->name, n,
                         report->site[0] ? report->site : "nothing",
                         WIFEXITED(st) ? "exited with" : "was killed by signal",
                         WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        }
        fclose(errf);
        if (!report->site[0]) {
            /* Fewer than n seam calls: every one has been failed.  Where
             * helper threads make the count vary from run to run, one
             * more N confirms it. */
            if (++quiet == 2)
                break;
            continue;
        }
        quiet = 0;
        bool dup = false;
        for (int i = 0; i < nsites; i++)
            dup = dup || strcmp(sites[i], report->site) == 0;
        if (!dup)
            snprintf(sites[nsites++], sizeof sites[0], "%s", report->site);
    }
    printf("%s: %ld seam calls failed in turn, at %d sites:", sc->name, n - 2, nsites);
    for (int i = 0; i < nsites; i++) {
        const char *s = strstr(sites[i], "src/");
        printf(" %s", s ? s : sites[i]);
    }
    printf("\n");
    /* The engine's sites are those of the engine the run uses; on epoll,
     * sync waits make no io_uring futex probe (futex.c's sites) and
     * ringo_accept no multishot acceptor (accept.c's). */
    bool epoll = test_engine() == RINGO_ENGINE_EPOLL;
    for (int i = 0; sc->reach[i]; i++) {
        const char *file = sc->reach[i];
        if (epoll && (strcmp(file, "futex.c") == 0 || strcmp(file, "accept.c") == 0))
            continue;
        if (epoll && strcmp(file, "engine_uring.c") == 0)
            file = "engine_epoll.c";
        ck_assert_msg(reached(sites, nsites, file), "%s: no site in %s was failed", sc->name, file);
    }
}

static const struct scenario scenarios[] = {
    { "setup", sc_setup, 2, true, { "runtime.c", "engine_uring.c", "gtable.c", "fiber.c", "timer.c" } },
    { "spawn", sc_spawn, 1, false, { "gtable.c", "fiber.c", "timer.c" } },
    { "chan", sc_chan, 1, false, { "chan.c", "futex.c" } },
    { "timers", sc_timers, 1, false, { "timerchan.c", "chan.c", "timer.c" } },
    { "select", sc_select, 1, false, { "select.c", "timerchan.c" } },
    { "accept", sc_accept, 2, false, { "accept.c", "fdops.c" } },
    { "offload", sc_offload, 1, false, { "offload.c", "net.c" } },
    { "cancel", sc_cancel, 2, false, { "cancel.c", "fdops.c" } },
    { "thread", sc_thread, 2, false, { "gtable.c", "cancel.c", "close.c" } },
    { "signal", sc_signal, 2, false, { "signal.c" } },
    { "fd_deadline", sc_fd_deadline, 2, false, { "fddeadline.c" } },
};

START_TEST(walk_scenario)
{
    /* RINGO_FAULT_WALK=name walks that scenario only (when chasing one). */
    const char *only = getenv("RINGO_FAULT_WALK");
    if (!only || !*only || strcmp(only, scenarios[_i].name) == 0)
        walk(&scenarios[_i]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fault");
    TCase *tc = tcase_create("walk");
    /* A whole walk: tens of children, each a run of milliseconds. */
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, walk_scenario, 0, (int)(sizeof scenarios / sizeof scenarios[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    skip_without_io_uring();
    report = mmap(NULL, sizeof *report, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (report == MAP_FAILED)
        return EXIT_FAILURE;
    /* What a name lookup gives here without faults (the offload walk
     * compares): outside a run, ringo_tcp_listen resolves on the spot. */
    lookup_baseline = ringo_tcp_listen("localhost", "0", 4, 0);
    if (lookup_baseline >= 0)
        close(lookup_baseline);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
