/*
 * engine_uring.c — one io_uring per proc: setup and feature probe, SQE supply,
 * the round's single io_uring_enter, completion dispatch, and cross-proc
 * wake messages.
 *
 * Every SQE's user_data is a struct ring_rec * (internal.h), or 0 for a
 * request nobody waits for.  The record carries the completion's handler,
 * so dispatch is one indirect call and this file knows nothing of what
 * the operations are: a goroutine's struct rop (on its stack, alive until
 * its completion arrives, because the goroutine stays parked until then),
 * an acceptor's multishot request (accept.c), the proc's eventfd poll and
 * its wake messages (records in struct rproc).  p->inflight counts the
 * SQEs with a waiting goroutine; it is what deadlock detection asks ("is
 * any I/O in flight?").
 *
 * Preparing an SQE never runs a completion.  When the SQ is full,
 * ring_sqe submits; if the kernel refuses because completions are
 * backlogged (-EBUSY), the CQ is emptied into p->cq_defer without
 * dispatching, and the next reap dispatches those first.  So a caller may
 * take SQEs in the middle of any state change without a completion
 * running under it.
 *
 * Setup flags: IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN
 * (6.1+) when available, since only the proc's own thread ever submits and
 * deferring task work to our enter avoids interrupting a running goroutine;
 * else IORING_SETUP_COOP_TASKRUN (5.19+); else none.  RINGO_NO_DEFER_TASKRUN
 * forces the plain setup.  Each with IORING_SETUP_SUBMIT_ALL (5.18+), so
 * that an SQE that fails as it is prepared does not hold back the ones
 * behind it (without it, sq_left counts those for the next submit).  The CQ is four times the SQ, and with
 * IORING_FEAT_NODROP (5.5+) an overflowing CQ keeps completions in the
 * kernel's backlog rather than losing them; ring_sqe() submits when the SQ
 * is full rather than failing (see above).
 *
 * Waking another proc: IORING_OP_MSG_RING (5.18+) posts a CQE straight into
 * the target ring, which ends its io_uring_enter wait.  Plain threads (which
 * have no ring) and kernels without MSG_RING write the target's eventfd,
 * which the target ring watches with IORING_OP_POLL_ADD.  RINGO_NO_MSG_RING
 * forces the eventfd path.  Where the ring has IORING_FEAT_CQE_SKIP (5.17+,
 * so every MSG_RING kernel), a wake that succeeds posts no CQE at the
 * sender (IOSQE_CQE_SKIP_SUCCESS); one that fails still does (eng_wake).
 *
 * Valgrind (3.19) does not know that io_uring_enter can block:
 * a thread asleep in it keeps valgrind's global lock, no other thread of
 * the program runs, and a run with several procs (or a plain thread beside
 * a proc) hangs at 0% CPU, the sleeping proc waiting for a wake that the
 * threads valgrind holds back would send.  Nor does it know what the
 * kernel writes into a read buffer.  So on valgrind (rt.valgrind) a proc
 * uses the plain ring setup, which posts completions to the CQ without an
 * enter, and sleeps in ppoll(2) on the ring's descriptor, which valgrind
 * knows blocks (the ring is readable when its CQ holds completions), and
 * the buffers a completed read filled are marked defined (vg_io_done).
 */
#include "config.h"

#include "internal.h"
#include "engine.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ringo.h"

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/memcheck.h>
#endif

static bool env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static void efd_arm(struct rproc *p)
{
    struct io_uring_sqe *sqe = ring_sqe(p);
    io_uring_prep_poll_add(sqe, p->efd, POLLIN);
    io_uring_sqe_set_data(sqe, &p->efd_rec);
    /* not counted in p->inflight: it is the runtime's, not a goroutine's */
}

/* The proc's eventfd became readable: drain it and poll again. */
static void efd_done(struct rproc *p, struct ring_rec *rec, int32_t res, uint32_t flags)
{
    (void)rec;
    (void)res;
    (void)flags;
    uint64_t v;
    while (read(p->efd, &v, sizeof v) > 0)
        ;
    if (!load_relaxed(&rt.stopping))
        efd_arm(p);
}

/* A wake another proc posted here with MSG_RING: its work is in our inbox
 * or task stack already; ending the wait was the point. */
static void wake_done(struct rproc *p, struct ring_rec *rec, int32_t res, uint32_t flags)
{
    (void)p;
    (void)rec;
    (void)res;
    (void)flags;
}

/* At the sender: our MSG_RING to the proc whose wake_sent_rec this is.  If
 * it failed (the target's CQ overflowed, no memory), the target cleared no
 * flag we can retry on (its sleeping flag was already taken by our xchg),
 * so wake it through its eventfd instead.  With p->wake_skip only a failed
 * wake comes here (eng_wake). */
static void wake_sent_done(struct rproc *p, struct ring_rec *rec, int32_t res, uint32_t flags)
{
    (void)p;
    (void)flags;
    if (res < 0) {
        struct rproc *to = (struct rproc *)((char *)rec - offsetof(struct rproc, wake_sent_rec));
        uint64_t one = 1;
        ssize_t w = write(to->efd, &one, sizeof one);
        (void)w;
    }
}

/* Registered ring descriptor.  io_uring_enter(2) looks its descriptor up
 * in the process's file table at every call, and in a process with more
 * than one thread (every ringo program) takes and drops a reference to
 * the file as it does: two atomic operations and the table walk, a tenth
 * of an enter that submits one SQE and reaps its CQE (about 70 ns of 700
 * on a 2-vCPU KVM guest).  A ring registered with IORING_REGISTER_RING_FDS
 * (Linux 5.18) is entered by its index in the thread's own table, with no
 * lookup and no reference; liburing's submit and wait calls use the index
 * once io_uring_register_ring_fd has set it.  The registration belongs to
 * the thread that made it, so it is made here, on the proc's thread, the
 * only one that enters this ring (SINGLE_ISSUER), and io_uring_queue_exit
 * undoes it on the same thread (eng_teardown).  Best effort: a kernel
 * without it, or a thread that has used up its 16 slots, enters by the
 * descriptor as before.  The descriptor stays open, for other procs'
 * MSG_RING and for poll(2).  RINGO_NO_RING_REGISTER=1 turns it off. */
static void ring_register_fd(struct rproc *p)
{
#if HAVE_DECL_IO_URING_REGISTER_RING_FD
    if (env_set("RINGO_NO_RING_REGISTER"))
        return;
    io_uring_register_ring_fd(&p->ring); /* 1 on success; else unchanged */
#else
    (void)p; /* liburing before 2.2 */
#endif
}

#ifdef IORING_SETUP_SUBMIT_ALL
#define SUBMIT_ALL IORING_SETUP_SUBMIT_ALL
#else
#define SUBMIT_ALL 0
#endif

int eng_setup(struct rproc *p)
{
    if (eng_epoll())
        return ep_setup(p);
    struct io_uring_params params;
    unsigned entries = rt.ring_entries;
    int r = -EINVAL;
    /* valgrind: see the top of this file */
    bool no_defer = env_set("RINGO_NO_DEFER_TASKRUN") || rt.valgrind;
    static const unsigned flag_sets[] = {
#if HAVE_DECL_IORING_SETUP_DEFER_TASKRUN
        /* TASKRUN_FLAG: the kernel sets IORING_SQ_TASKRUN while completions
         * wait for an enter, which a spinning idle proc watches
         * (proc_sleep in sched.c).  The set without it is for kernels that
         * refuse the combination. */
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG | SUBMIT_ALL,
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | SUBMIT_ALL,
#endif
#ifdef IORING_SETUP_COOP_TASKRUN
        IORING_SETUP_COOP_TASKRUN | SUBMIT_ALL,
#endif
        SUBMIT_ALL, /* the plain setup (RINGO_NO_DEFER_TASKRUN) */
        0,
    };
    size_t nsets = sizeof flag_sets / sizeof flag_sets[0];
    for (size_t i = no_defer ? nsets - 2 : 0; i < nsets; i++) {
        memset(&params, 0, sizeof params);
        params.flags = flag_sets[i] | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
        params.cq_entries = entries * 4;
        r = seam_io_uring_queue_init_params(entries, &p->ring, &params);
        if (r == 0) {
#if HAVE_DECL_IORING_SETUP_DEFER_TASKRUN
            if (p->idx == 0)
                rt.use_defer_taskrun = (flag_sets[i] & IORING_SETUP_DEFER_TASKRUN) != 0;
#endif
            break;
        }
        if (r != -EINVAL)
            break; /* ENOSYS, EPERM, ENOMEM: no flag set will help */
    }
    if (r < 0)
        return r;
    p->ring_ok = true;
    p->ring_fd = p->ring.ring_fd;
    ring_register_fd(p);
    p->efd_rec.done = efd_done;
    p->wake_rec.done = wake_done;
    p->wake_sent_rec.done = wake_sent_done;
    p->cq_defer = NULL;
    p->cq_defer_head = p->cq_defer_n = p->cq_defer_cap = 0;
    p->cq_tail = 0;

    p->msg_ring = false;
#if HAVE_DECL_IORING_OP_MSG_RING
    if (!env_set("RINGO_NO_MSG_RING")) {
        struct io_uring_probe *probe = seam_io_uring_get_probe_ring(&p->ring);
        if (probe) {
            p->msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
            io_uring_free_probe(probe);
        }
    }
#endif
    p->wake_skip = false;
#if HAVE_DECL_IOSQE_CQE_SKIP_SUCCESS && HAVE_DECL_IORING_FEAT_CQE_SKIP
    p->wake_skip = p->msg_ring && (params.features & IORING_FEAT_CQE_SKIP);
#endif

    p->efd = seam_eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0) {
        r = -errno;
        io_uring_queue_exit(&p->ring);
        p->ring_ok = false;
        return r;
    }
    efd_arm(p);
    return 0;
}

void eng_teardown(struct rproc *p)
{
    if (eng_epoll()) {
        ep_teardown(p);
        return;
    }
    if (p->ring_ok)
        io_uring_queue_exit(&p->ring);
    p->ring_ok = false;
    free(p->cq_defer);
    p->cq_defer = NULL;
    p->cq_defer_head = p->cq_defer_n = p->cq_defer_cap = 0;
    /* p->efd stays open until ringo_run has waited out plain threads that
     * may still write it (free_procs closes it). */
}

static unsigned reap(struct rproc *p);

/* After a submit that returned r >= 0: what is left in the SQ.  The
 * kernel stops at an SQE that fails as it is prepared (a connect's
 * address too long, a bad iovec) unless the ring has SUBMIT_ALL, and
 * leaves the ones behind it queued; counted, the next flush submits
 * them (a cancel among them must not wait for a sleep). */
static inline void sq_left(struct rproc *p)
{
    store_relaxed(&p->unsubmitted, io_uring_sq_ready(&p->ring));
}


void eng_flush(struct rproc *p)
{
    if (!load_relaxed(&p->unsubmitted))
        return;
    int r = io_uring_submit(&p->ring);
    stat_add(p->st.enters, 1);
    if (r >= 0)
        sq_left(p);
    /* On -EBUSY / -EAGAIN the SQEs stay queued and the next enter retries;
     * completions reaped meanwhile free kernel resources. */
}

/* Take every CQE off the CQ into p->cq_defer, in order, without
 * dispatching any.  Out of memory for them is fatal, as it is in Go: the
 * completions cannot be dropped (each may be the only word a goroutine
 * waits for) and cannot be left on a CQ the kernel needs emptied. */
static void cq_defer_all(struct rproc *p)
{
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&p->ring, &cqe) == 0) {
        if (p->cq_defer_n == p->cq_defer_cap) {
            unsigned cap = p->cq_defer_cap ? 2 * p->cq_defer_cap : 64;
            struct io_uring_cqe *n = seam_realloc(p->cq_defer, cap * sizeof *n);
            if (!n)
                fatal("out of memory for %u completions (proc %d)", cap, p->idx);
            p->cq_defer = n;
            p->cq_defer_cap = cap;
        }
        p->cq_defer[p->cq_defer_n++] = *cqe;
        io_uring_cqe_seen(&p->ring, cqe);
    }
}

/* The SQ is full: submit what is queued.  Completions are not lost: a
 * full CQ overflows into the kernel's backlog (IORING_FEAT_NODROP), and
 * none is dispatched here (see the top of the file). */
unsigned submit_busy_seam;

static void sq_make_room(struct rproc *p)
{
    int r;
    if (__builtin_expect(submit_busy_seam != 0, 0) && io_uring_cq_ready(&p->ring)) {
        submit_busy_seam--; /* refused, nothing submitted, as the kernel does */
        r = -EBUSY;
    } else {
        r = io_uring_submit(&p->ring);
    }
    stat_add(p->st.enters, 1);
    if (r >= 0) {
        sq_left(p);
    } else {
        /* -EBUSY: completions are backlogged in the kernel.  With
         * DEFER_TASKRUN they are only posted inside an enter, so ask for
         * them (GETEVENTS), then set the CQ aside for the next reap. */
        io_uring_get_events(&p->ring);
        stat_add(p->st.enters, 1);
        cq_defer_all(p);
    }
}

struct io_uring_sqe *ring_sqe_full(struct rproc *p)
{
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&p->ring)))
        sq_make_room(p);
    owner_add(p->unsubmitted, 1);
    stat_add(p->st.submissions, 1);
    return sqe;
}

/* Make room for n SQEs that must go in one submit (ringo_close's cancel
 * and close): ring_sqe() submits when the SQ is full. */
void eng_reserve(struct rproc *p, unsigned n)
{
    if (eng_epoll())
        return; /* nothing is queued: each call is made at once */
    while (io_uring_sq_space_left(&p->ring) < n)
        sq_make_room(p);
}

/* A goroutine's operation completed (the handler of every struct rop). */
void rop_done(struct rproc *p, struct ring_rec *rec, int32_t res, uint32_t flags)
{
    (void)flags;
    struct rop *op = (struct rop *)rec;
    op->res = res;
    owner_add(p->inflight, -1);
    /* Every rop's wait is prepared with no flags (io_wait, ring_wait_op_on,
     * uring_wait_until): one CAS from the word park_prepare stored. */
    if (claim_expect(op->g, op->token, 0))
        ready(op->g, res);
}

/* The CQEs set aside (cq_defer_all) are older than any on the CQ, so they
 * go first: an acceptor's last CQE must not overtake its earlier ones. */
static inline bool next_cqe(struct rproc *p, struct io_uring_cqe *out)
{
    if (__builtin_expect(p->cq_defer_n != 0, 0)) {
        *out = p->cq_defer[p->cq_defer_head++];
        if (p->cq_defer_head == p->cq_defer_n)
            p->cq_defer_head = p->cq_defer_n = 0;
        return true;
    }
    /* An empty CQ ends the reap without a system call: liburing's peek
     * would make an io_uring_enter of its own to run the kernel's deferred
     * task work whenever IORING_SQ_TASKRUN is set (completions arrived
     * since), one that nobody counted.  Those completions come with the
     * round's own enter instead.
     *
     * Except completions in the kernel's overflow backlog
     * (IORING_SQ_CQ_OVERFLOW, IORING_FEAT_NODROP): they reach the CQ only
     * in an enter with GETEVENTS, and only as many as fit, so a reap that
     * stopped at the empty CQ could leave a goroutine's completion behind
     * the backlog while its proc counts itself idle.  On valgrind (plain
     * ring, ppoll sleep, see the top of the file), 2 procs:
     *
     *   proc 0                               proc 1
     *   ------                               ------
     *   main spawns 100k workers; each wake  wakes, runs workers, sleeps,
     *     of proc 1 (MSG_RING) posts a CQE     again and again
     *     here that nobody reaps while
     *     main runs: the CQ fills, the rest
     *     goes to the backlog
     *   main queues FUTEX_WAIT(count, c)     runs workers: count changes;
     *     and parks                            the last FUTEX_WAKE finds
     *                                          nobody in the kernel
     *   submits (GETEVENTS: the CQ is full,
     *     nothing moves): the wait fails
     *     -EAGAIN at once, its CQE at the
     *     end of the backlog
     *   reaps the full CQ (wakes' CQEs, no   idle
     *     goroutine readied), stops at the
     *     empty CQ
     *   only a futex wait in flight, CQ
     *     empty: idle; every proc idle, no
     *     wake in transit: "all goroutines
     *     are asleep - deadlock!"
     *
     * (liburing's peek made a GETEVENTS enter here when the flag was up.
     * Wakes that succeed no longer post at their sender where the ring
     * skips them (eng_wake), but any completions that nobody reaps in time
     * fill the CQ the same way: writes that complete at submission, in
     * check_sync's waitgroup_wait_behind_cq_backlog.)
     * So a reap that finds the CQ empty with the backlog flag up asks for
     * the backlog and goes on: the common empty CQ costs one more load of
     * the flags word, a backlog one counted enter per CQ-full of it.  When
     * proc_sleep (sched.c) lets a proc count as idle with a futex wait in
     * flight, it has just reaped, so no backlog is left: a new one would
     * need a full CQ first, which eng_cq_ready sees.  The flag is read as
     * liburing reads it (a volatile load): a goroutine's completion joins
     * the backlog in this thread's own enter (posted at submission, or by
     * task work that runs in this thread or, with DEFER_TASKRUN, in its
     * enter), so it is seen in program order; a backlog that another
     * proc's MSG_RING makes holds only wakes, and a late sight of it only
     * delays them to a later reap. */
    struct io_uring_cq *cq = &p->ring.cq;
    unsigned head = *cq->khead; /* plain: only this thread stores it */
    /* At or past the tail as last read (cq_defer_all consumes through
     * liburing, which reads the tail itself): read it again. */
    if ((int)(p->cq_tail - head) <= 0) {
        /* acquire: the kernel fills a CQE before it publishes the tail
         * past it (io_uring(7)); pairs with the kernel's release store */
        p->cq_tail = io_uring_smp_load_acquire(cq->ktail);
        if (head == p->cq_tail) {
            if (__builtin_expect(!io_uring_cq_has_overflow(&p->ring), 1))
                return false;
            io_uring_get_events(&p->ring); /* -EBUSY: moved what fit; the reap comes back */
            stat_add(p->st.enters, 1);
            p->cq_tail = io_uring_smp_load_acquire(cq->ktail);
            if (head == p->cq_tail)
                return false;
        }
    }
    /* The CQE is read and consumed as liburing's peek and seen do, less
     * what this ring never needs (32-byte CQEs are not set up), with the
     * tail read once per run of CQEs rather than once per CQE (p->cq_tail
     * only lags the kernel's, which only grows).  Without
     * IORING_FEAT_EXT_ARG (before 5.11) liburing's waits post CQEs of
     * their own, which its peek skips: there it is used. */
    if (__builtin_expect(!(p->ring.features & IORING_FEAT_EXT_ARG), 0)) {
        struct io_uring_cqe *cqe;
        if (io_uring_peek_cqe(&p->ring, &cqe) != 0)
            return false;
        *out = *cqe;
        io_uring_cqe_seen(&p->ring, cqe);
        return true;
    }
    *out = cq->cqes[head & cq->ring_mask];
    /* release: the kernel may reuse the slot once it sees the head past
     * it, so the copy above comes first (liburing's io_uring_cq_advance) */
    io_uring_smp_store_release(cq->khead, head + 1);
    return true;
}

bool ring_next_cqe(struct rproc *p, struct io_uring_cqe *out)
{
    return next_cqe(p, out);
}

/* One CQE at a time, consumed before it is dispatched, so a handler that
 * takes an SQE (which may set the CQ aside when the SQ is full) never sees
 * a CQE twice. */
static unsigned reap(struct rproc *p)
{
    struct io_uring_cqe c;
    unsigned n = 0;
    while (next_cqe(p, &c)) {
        if (c.user_data != UD_IGNORE) {
            struct ring_rec *rec = (struct ring_rec *)(uintptr_t)c.user_data;
            rec->done(p, rec, c.res, c.flags);
        }
        n++;
    }
    if (n)
        stat_add(p->st.completions, n);
    return n;
}

/* eng_poll's blocking wait on valgrind (see the top of this file): submit
 * without waiting, then sleep in ppoll until the CQ has a completion or
 * the deadline passes.  The ring is not DEFER_TASKRUN here, so a completion
 * needs no enter to reach the CQ. */
/* Nanoseconds from now until deadline (0 if past), for a relative
 * timeout; callers pass deadline != INT64_MAX.  A deadline more than a
 * second off is measured from the coarse clock plus clock_slack_ns, which
 * is at or past CLOCK_MONOTONIC: the sleep ends at most that much early
 * (the proc finds nothing due and sleeps again, the rest of the way on
 * CLOCK_MONOTONIC), never late, and an idle proc whose nearest timer is a
 * connection's deadline reads no TSC to sleep (timer.c "Reading the clock
 * less"). */
static int64_t ns_left(int64_t deadline)
{
    int64_t d = deadline - now_coarse() - clock_slack_ns;
    if (d > 1000000000)
        return d;
    d = deadline - now_ns();
    return d < 0 ? 0 : d;
}

static int ring_wait_valgrind(struct rproc *p, int64_t deadline)
{
    if (load_relaxed(&p->unsubmitted))
        eng_flush(p);
    if (io_uring_cq_ready(&p->ring))
        return 0;
    struct timespec ts, *tsp = NULL;
    if (deadline != INT64_MAX) {
        int64_t d = ns_left(deadline);
        ts.tv_sec = d / 1000000000;
        ts.tv_nsec = d % 1000000000;
        tsp = &ts;
    }
    struct pollfd pfd = { .fd = p->ring_fd, .events = POLLIN };
    return ppoll(&pfd, 1, tsp, NULL) < 0 ? -errno : 0;
}

int eng_poll(struct rproc *p, bool block, int64_t deadline)
{
    if (eng_epoll())
        return ep_poll(p, block, deadline);
    int r = 0;
    /* Completions set aside by sq_make_room are dispatched by the reap
     * below: with any, the proc does not wait for more. */
    if (__builtin_expect(p->cq_defer_n != 0, 0))
        block = false;
    if (block && rt.valgrind) {
        r = ring_wait_valgrind(p, deadline);
    } else if (block) {
        struct __kernel_timespec ts, *tsp = NULL;
        if (deadline != INT64_MAX) {
            int64_t d = ns_left(deadline);
            ts.tv_sec = d / 1000000000;
            ts.tv_nsec = d % 1000000000;
            tsp = &ts;
        }
        struct io_uring_cqe *cqe;
        r = io_uring_submit_and_wait_timeout(&p->ring, &cqe, 1, tsp, NULL);
        stat_add(p->st.enters, 1);
        if (r >= 0)
            sq_left(p);
        else if (r == -ETIME || r == -EINTR)
            store_relaxed(&p->unsubmitted, io_uring_sq_ready(&p->ring));
    } else if (rt.use_defer_taskrun && load_relaxed(&p->inflight)) {
        /* Deferred completions are only posted inside an enter. */
        r = io_uring_submit_and_get_events(&p->ring);
        stat_add(p->st.enters, 1);
        if (r >= 0)
            sq_left(p);
    } else if (load_relaxed(&p->unsubmitted)) {
        eng_flush(p);
    }
    reap(p);
    proc_timers_run(p);
    return r;
}

int eng_wait(struct rproc *p, struct rg *g, const struct eng_io *io)
{
    if (eng_epoll())
        return ep_close(io->fd); /* the only caller's operation (engine.h) */
    struct io_uring_sqe *sqe = ring_sqe(p);
    eng_start_sqe(sqe, io);
    return ring_wait_op_on(p, g, sqe, W_IO, NULL);
}

/* The wait ends only by the operation's CQE: nothing cancels it (g->io_op
 * stays NULL), which is what a futex wait needs (sync ignores deadlines
 * and cancellation) and what a close is allowed.  I/O that the deadline and
 * ringo_cancel end parks through io.c's io_wait instead. */
int ring_wait_op_on(struct rproc *p, struct rg *g, struct io_uring_sqe *sqe, int reason,
                    const void *obj)
{
    struct rop op = { .rec.done = rop_done, .g = g, .res = 0 };
    op.token = park_prepare(g, reason, 0);
    store_relaxed(&g_wait(g)->wait_obj, obj); /* for ringo_dump, relaxed as in park_prepare */
    if (reason == W_IO)
        store_relaxed(&g_run(g)->wait_fd, sqe->fd); /* for ringo_dump */
    io_uring_sqe_set_data(sqe, &op);
    owner_add(p->inflight, 1);
    if (reason == W_IO)
        tsan_io_release(); /* I/O orders like TSan's read/write (tsan.h) */
    /* A close or a futex wait writes nothing valgrind must be told of. */
    park_commit(g, op.token, 0);
    if (reason == W_IO)
        tsan_io_acquire();
    return op.res;
}

/* Queue an IORING_OP_ASYNC_CANCEL for the operation whose user_data is op.
 * Its own CQE is ignored: the cancelled operation's CQE (-ECANCELED, or its
 * result if it completed first) is what ends the wait.  A cancel that
 * finds nothing (-ENOENT, -EALREADY) is harmless: it is issued before any
 * later operation of the same goroutine (the SQ is consumed in order), so
 * it cannot hit one that reuses the address.  p is op's proc (every caller
 * runs there).
 *
 * A timed futex wait stops counting as a futex wait here: its CQE is now on
 * its way without anybody's wake, so its proc must not look idle until it
 * is reaped (futex.c "Timed waits"). */
void eng_cancel_op(struct rproc *p, struct rop *op)
{
    if (op->futex_wait) {
        op->futex_wait = false;
        owner_add(p->futex_waits, -1);
    }
    if (eng_epoll()) {
        ep_cancel(p, op);
        return;
    }
    struct io_uring_sqe *c = ring_sqe(p);
    io_uring_prep_cancel(c, op, 0);
    io_uring_sqe_set_data64(c, UD_IGNORE);
}

void eng_wake(struct rproc *from, struct rproc *to)
{
#if HAVE_DECL_IORING_OP_MSG_RING
    if (from && from->msg_ring && from->ring_ok) {
        struct io_uring_sqe *sqe = ring_sqe(from);
        io_uring_prep_msg_ring(sqe, to->ring_fd, 0, (uint64_t)(uintptr_t)&to->wake_rec, 0);
        io_uring_sqe_set_data(sqe, &to->wake_sent_rec);
#if HAVE_DECL_IOSQE_CQE_SKIP_SUCCESS && HAVE_DECL_IORING_FEAT_CQE_SKIP
        /* A wake that succeeded needs no word back: the target's own CQE
         * (wake_done) is what ends its wait.  So it posts nothing here, and
         * a proc waking others often no longer fills its CQ (and the
         * overflow backlog, next_cqe) with CQEs it reaps only to drop.  A
         * wake that fails (res < 0: -EOVERFLOW, -ENOMEM) is a failure to
         * the kernel, which clears the skip for it (io_uring_enter(2)), so
         * its CQE still comes and wake_sent_done falls back to the eventfd.
         * The SQE still counts in st.submissions; it never counted in
         * p->inflight, so nothing waits for a CQE that does not come.
         * (The flag must not meet IOSQE_IO_DRAIN on the ring: ringo uses
         * no drain.) */
        if (from->wake_skip)
            io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
#endif
        /* Submit now: the wake must not wait for the end of our round. */
        eng_flush(from);
        return;
    }
#endif
    (void)from;
    uint64_t one = 1;
    ssize_t w = write(to->efd, &one, sizeof one);
    (void)w; /* EAGAIN means the counter is saturated: a wake is pending anyway */
}

void vg_io_start(struct vg_io *v, const struct eng_io *io)
{
    v->io = io;
    v->alen_in = 0;
    v->control_in = 0;
    if (io->kind == ENG_ACCEPT && io->u.addr && io->alen) {
        v->alen_in = *io->alen;
    } else if (io->kind == ENG_RECVMSG && io->u.msg) { /* NULL: the kernel says -EFAULT */
        const struct msghdr *m = io->u.msg;
        v->alen_in = m->msg_name ? m->msg_namelen : 0;
        v->control_in = m->msg_control ? m->msg_controllen : 0;
    }
}

/* On valgrind: mark what the kernel wrote for a completed operation (res
 * bytes read, an address it returned) as defined, as valgrind's wrappers
 * of read(2), readv(2), recvmsg(2) and accept4(2) do. */
void vg_io_done(const struct vg_io *v, int res)
{
#ifdef HAVE_VALGRIND_VALGRIND_H
    size_t left = (size_t)res;
    const struct iovec *iov = NULL;
    size_t iovcnt = 0;
    const struct eng_io *io = v->io;
    switch ((enum eng_kind)io->kind) {
    case ENG_READ:
    case ENG_RECV:
        VALGRIND_MAKE_MEM_DEFINED(io->u.buf, left);
        return;
    case ENG_READV:
        iov = io->u.iov;
        iovcnt = (size_t)io->len;
        break;
    case ENG_RECVMSG: {
        struct msghdr *m = io->u.msg;
        iov = m->msg_iov;
        iovcnt = m->msg_iovlen;
        if (v->alen_in)
            VALGRIND_MAKE_MEM_DEFINED(m->msg_name, m->msg_namelen < v->alen_in
                                                       ? m->msg_namelen : v->alen_in);
        if (v->control_in)
            VALGRIND_MAKE_MEM_DEFINED(m->msg_control, m->msg_controllen < v->control_in
                                                          ? m->msg_controllen : v->control_in);
        break;
    }
    case ENG_ACCEPT:
        if (io->u.addr && io->alen) {
            VALGRIND_MAKE_MEM_DEFINED(io->alen, sizeof *io->alen);
            VALGRIND_MAKE_MEM_DEFINED(io->u.addr, *io->alen < v->alen_in ? *io->alen : v->alen_in);
        }
        return;
    default:
        return;
    }
    for (size_t i = 0; i < iovcnt && left; i++) {
        size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
        VALGRIND_MAKE_MEM_DEFINED(iov[i].iov_base, n);
        left -= n;
    }
#else
    (void)v;
    (void)res;
#endif
}
