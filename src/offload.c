/*
 * offload.c — ringo_offload(): run blocking code (getaddrinfo, a blocking
 * library, a long computation) on a small pool of helper threads while only
 * the calling goroutine waits.
 *
 * A job goes from the goroutine to a helper through a mutex-protected FIFO;
 * the helper runs fn(arg) and posts the job back to the goroutine's proc as
 * a struct rtask (proc_post_task: the proc's MPSC task stack plus its
 * eventfd wake, the path every plain thread uses).  The task, on the owner
 * proc, claims the goroutine's wait and readies it.  Helpers never call
 * ready() themselves, so they are never "plain threads that called in" and
 * deadlock detection stays on; they are the runtime's own and never counted
 * in ringo_count().
 *
 * Deadlines and cancellation.  ringo_offload() is a blocking call: it checks
 * both on entry and parks interruptibly, so the goroutine returns early with
 * -ETIMEDOUT or -ECANCELED while fn keeps running on the helper (a thread
 * cannot be stopped safely in the middle of arbitrary code).  fn and arg must
 * therefore stay valid until fn returns, not merely until ringo_offload()
 * does: heap-allocate what fn touches and let fn free it (net.c's resolver
 * does this with a reference count).
 *
 * Job ownership (struct offload_job).  The goroutine and the completion task
 * run on the same proc thread, so they share job->state without atomics:
 *   - task runs first, goroutine still waiting: the task claims and readies
 *     the goroutine, which frees the job when it resumes;
 *   - the wait was ended by deadline/cancel first: the goroutine, when it
 *     resumes, marks the job ABANDONED and the task frees it when it comes;
 *     if the task already came (DONE, its claim lost), the goroutine frees.
 * The helper thread only reads fn and arg and links the task; it never
 * touches the goroutine.
 *
 * Deadlock detection.  rt.offload_jobs counts jobs from submission until
 * their completion task has run on the owner proc, so "every proc idle and
 * nothing in flight" never holds while a helper may still wake a goroutine.
 *
 * Life cycle.  Helpers are started lazily, one per job that finds no idle
 * helper, up to OFFLOAD_MAX_THREADS; offload_fini() (from ringo_run, after
 * the procs have stopped) tells them to exit and joins them, waiting for
 * any fn still running; completions that arrived after the procs stopped
 * are freed with the procs' other tasks (offload_discard).
 *
 * Rejected: a thread per job (thread creation per getaddrinfo); waking the
 * goroutine with ready() from the helper (it would mark the run as foreign
 * and turn deadlock detection off for good).
 */
#include "config.h"

#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "ringo.h"

/* At most this many helper threads per run.  Offloaded work is blocking,
 * not CPU-bound, so more helpers than CPUs are useful (concurrent name
 * lookups); the cap bounds the threads a burst of offloads can create.
 * Jobs beyond it queue in FIFO order. */
#define OFFLOAD_MAX_THREADS 16

enum { JOB_PENDING, JOB_DONE, JOB_ABANDONED };

struct offload_job {
    struct rtask t;                 /* completion, posted to owner; first member */
    struct offload_job *qnext;      /* queue link; under pool.lock */
    void (*fn)(void *);             /* read by the helper; fixed */
    void *arg;
    struct rproc *owner;            /* the goroutine's proc; fixed */
    struct rg *g;                   /* the waiting goroutine; owner proc only */
    uint64_t token;                 /* its wait; owner proc only */
    int state;                      /* JOB_*; owner proc only */
    /* A job of the epoll engine's (offload_io): io_fn(io_arg) on the
     * helper, its result in io_res, then io_done on the owner. */
    int (*io_fn)(void *);
    void (*io_done)(struct rproc *, void *, int);
    void *io_arg;
    int io_res;
    int io_fd;                      /* the descriptor io_fn names (-1: none); fixed */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;            /* signalled when a job is queued or on stop */
    struct offload_job *head, *tail;/* FIFO of jobs not yet taken; under lock */
    unsigned nthreads;              /* helpers started this run; under lock */
    unsigned idle;                  /* helpers waiting on cond; under lock */
    unsigned queued;                /* jobs in the FIFO; under lock */
    bool stop;                      /* under lock */
    pthread_t threads[OFFLOAD_MAX_THREADS]; /* under lock */
    struct offload_job *cur[OFFLOAD_MAX_THREADS]; /* each helper's job; under lock */
    struct offload_closing *closing; /* closes in progress (offload_io_close_begin); under lock */
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* On the owner proc: the helper is done with the job. */
static void offload_done(struct rproc *p, struct rtask *t)
{
    (void)p;
    struct offload_job *job = (struct offload_job *)t;
    /* acq_rel: pairs with the increment in ringo_offload; the count only
     * needs to be exact when every proc is idle (read under idle_lock). */
    fetch_sub_acq_rel(&rt.offload_jobs, 1);
    if (job->state == JOB_ABANDONED) {
        free(job);
        return;
    }
    if (claim(job->g, job->token)) {
        ready(job->g, 0); /* the goroutine frees the job */
        return;
    }
    job->state = JOB_DONE; /* deadline/cancel won; the goroutine frees it */
}

/* A completion that came after the procs stopped (free_procs): the
 * goroutine has exited, or was discarded with a deadlock; nobody else
 * holds the job. */
static void offload_discard(struct rtask *t)
{
    fetch_sub_acq_rel(&rt.offload_jobs, 1); /* as offload_done */
    free(t);
}

static void *helper_main(void *arg)
{
    unsigned self = (unsigned)(uintptr_t)arg;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (!pool.head && !pool.stop) {
            pool.idle++;
            pthread_cond_wait(&pool.cond, &pool.lock);
            pool.idle--;
        }
        if (!pool.head)
            break; /* stop, and nothing left */
        struct offload_job *job = pool.head;
        pool.head = job->qnext;
        if (!pool.head)
            pool.tail = NULL;
        pool.queued--;
        pool.cur[self] = job;
        pthread_mutex_unlock(&pool.lock);
        job->fn(job->arg);
        /* fn forked, and this is the child: the queue is a copy of the
         * parent's, its jobs the parent's (runtime.c "A fork during a
         * run"), and the lock may be held by a thread the child has not. */
        if (__builtin_expect(load_relaxed(&forked_child), 0))
            fatal("an offloaded function returned in a child process forked during the run "
                  "(such a child should exec or _exit)");
        pthread_mutex_lock(&pool.lock);
        pool.cur[self] = NULL;
        /* Closes of the descriptor that wait for this call (they counted
         * it as running when they began): the last one's closer goes on. */
        for (struct offload_closing *c = pool.closing; c && job->io_fd >= 0; c = c->next)
            if (c->fd == job->io_fd && c->running && --c->running == 0 && c->g)
                proc_post_task(c->owner, &c->t);
        pthread_mutex_unlock(&pool.lock);
        /* release inside proc_post_task: the owner sees what fn wrote */
        proc_post_task(job->owner, &job->t);
        pthread_mutex_lock(&pool.lock);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

/* An engine job on a descriptor being closed (under pool.lock). */
static bool pool_closing(int fd)
{
    for (struct offload_closing *c = pool.closing; c && fd >= 0; c = c->next)
        if (c->fd == fd)
            return true;
    return false;
}

/* Queue a job, starting a helper unless an idle one is left for it.  0,
 * -EAGAIN, or -EBADF for an engine job on a descriptor that ringo_close
 * is closing.  A helper signalled for a job counts as idle until it runs:
 * the jobs queued and not yet taken are each some idle helper's, so this
 * one has an idle helper only if there are more idle helpers than those.
 * (By idle alone, two jobs queued back to back shared one helper, and a
 * job that waited for the other deadlocked.) */
static int pool_submit(struct offload_job *job)
{
    pthread_mutex_lock(&pool.lock);
    if (__builtin_expect(pool.closing != NULL, 0) && pool_closing(job->io_fd)) {
        pthread_mutex_unlock(&pool.lock);
        return -EBADF;
    }
    if (pool.idle <= pool.queued && pool.nthreads < OFFLOAD_MAX_THREADS) {
        if (seam_pthread_create(&pool.threads[pool.nthreads], NULL, helper_main,
                                (void *)(uintptr_t)pool.nthreads) == 0)
            pool.nthreads++;
        else if (pool.nthreads == 0) {
            pthread_mutex_unlock(&pool.lock);
            return -EAGAIN;
        }
    }
    job->qnext = NULL;
    if (pool.tail)
        pool.tail->qnext = job;
    else
        pool.head = job;
    pool.tail = job;
    pool.queued++;
    pthread_cond_signal(&pool.cond);
    pthread_mutex_unlock(&pool.lock);
    return 0;
}

int offload_call(void (*fn)(void *), void *arg, bool *queued)
{
    *queued = false;
    if (!fn)
        return -EINVAL;
    struct rproc *p = tls_proc;
    struct rg *g = p ? p->cur : NULL;
    if (!g) {
        *queued = true; /* ran, which is as good for the caller */
        fn(arg);
        return 0;
    }
    int r = block_check(g);
    if (r)
        return r;
    struct offload_job *job = seam_calloc(1, sizeof *job);
    if (!job)
        return -ENOMEM;
    job->t.run = offload_done;
    job->t.discard = offload_discard;
    job->fn = fn;
    job->arg = arg;
    job->io_fd = -1;
    job->owner = p;
    job->g = g;
    job->state = JOB_PENDING;
    job->token = park_prepare(g, W_OFFLOAD, PARK_INTERRUPTIBLE);
    fetch_add_acq_rel(&rt.offload_jobs, 1); /* pairs with offload_done */
    r = pool_submit(job);
    if (r) {
        fetch_sub_acq_rel(&rt.offload_jobs, 1);
        claim(g, job->token); /* end the wait we prepared; nobody else knows it */
        free(job);
        return r;
    }
    *queued = true;
    r = park_commit(g, job->token, PARK_INTERRUPTIBLE);
    if (r == 0 || job->state == JOB_DONE)
        free(job);
    else
        job->state = JOB_ABANDONED; /* the completion task frees it */
    return r;
}

/* "Engine jobs".  The epoll engine (engine_epoll.c) runs here the calls
 * it cannot wait for with readiness (regular files, openat, fsync).  The
 * job is the engine's, not a goroutine wait: the goroutine waits on its
 * operation (counted in its proc's inflight, which keeps the deadlock
 * check off), so the job needs no state and no count in rt.offload_jobs;
 * it is freed by its completion task, which always runs (the run cannot
 * end while the operation's goroutine waits for it).
 *
 * Engine jobs and ringo_close.  A job names its descriptor by number
 * (io_fd), where io_uring's request holds the file: one still queued when
 * ringo_close closes the number would run on whatever file a later open
 * gets it for (a write landing in another file).  Duplicating the
 * descriptor for the helper would hold the file, but closing the
 * duplicate drops every POSIX record lock the process has on it.  So
 * ringo_close, on epoll, calls offload_io_close_begin before its close(2)
 * and offload_io_close_end after it; in between, under pool.lock:
 *   - the jobs queued for the fd are taken out and end with -EBADF (or
 *     with the part a partly cached read has made), as an operation that
 *     the close ended;
 *   - a job submitted for the fd is refused (pool_submit): the operation
 *     waits for the closer's mark to go and is made again (io.c,
 *     ENG_CLOSING), as one that meets a closing mark, since once the
 *     close(2) is done the number may name a new file; but an openat
 *     relative to the fd ends with -EBADF: it counted itself on the
 *     directory before the closer marked it (else it would have waited
 *     there), and the closer waits for that count, so waiting for the
 *     mark in turn would wait for ever;
 *   - the jobs being made on it (pool.cur) are counted, and the closer
 *     waits until their calls have returned: the helper that finishes the
 *     last one posts the closer's task (a goroutine), or the closer polls
 *     the count (a plain thread).  A call that has entered the kernel
 *     holds the file already; one taken from the queue but not yet made
 *     does not, and nothing tells the two apart.
 * A goroutine's openat relative to the fd, which the closer waits for
 * before its close(2) (close.c "Directories"), is among the calls ended
 * while queued, so that wait ends however busy the helpers are; an
 * openat of an absolute path names no descriptor (io_fd -1).
 * The calls a closer waits for are mostly short (files, fsync), but not
 * all: an open of a FIFO waits for its other end, and two readers of one
 * terminal woken by one readiness (ep_start's EPM_READY_BLOCKING) can
 * leave one blocked until input comes; the close waits as long. */
_Atomic(fd_seam_fn *) offload_io_seam;

static void io_job_run(void *arg)
{
    struct offload_job *job = arg;
    fd_seam_fn *seam = load_acquire(&offload_io_seam);
    if (__builtin_expect(seam != NULL, 0))
        seam(job->io_fd);
    job->io_res = job->io_fn(job->io_arg);
}

static void io_job_done(struct rproc *p, struct rtask *t)
{
    struct offload_job *job = (struct offload_job *)t;
    job->io_done(p, job->io_arg, job->io_res);
    free(job);
}

int offload_io(struct rproc *owner, int fd, int (*fn)(void *),
               void (*done)(struct rproc *, void *, int), void *arg)
{
    struct offload_job *job = seam_calloc(1, sizeof *job);
    if (!job)
        return -ENOMEM;
    job->t.run = io_job_done;
    job->fn = io_job_run;
    job->arg = job;
    job->owner = owner;
    job->io_fn = fn;
    job->io_done = done;
    job->io_arg = arg;
    job->io_fd = fd;
    int r = pool_submit(job);
    if (r)
        free(job);
    return r;
}

/* A close in progress (see "Engine jobs and ringo_close" above).  The
 * closer's wait ends in its own proc, by this task, which the helper that
 * finishes the last counted call posts. */
static void closing_done(struct rproc *p, struct rtask *t)
{
    (void)p;
    struct offload_closing *c = (struct offload_closing *)t;
    if (claim(c->g, c->token))
        ready(c->g, 0);
}

void offload_io_close_begin(struct offload_closing *c)
{
    c->t.run = closing_done;
    c->t.discard = NULL; /* the run cannot end while the closer waits */
    c->running = 0;
    c->g = NULL; /* until it waits */
    struct offload_job *gone = NULL, **tail = &gone;
    pthread_mutex_lock(&pool.lock);
    c->next = pool.closing;
    pool.closing = c;
    /* Calls still queued: ended, never made. */
    struct offload_job **pp = &pool.head;
    pool.tail = NULL;
    while (*pp) {
        struct offload_job *job = *pp;
        if (job->io_fd == c->fd) {
            *pp = job->qnext;
            pool.queued--;
            job->io_res = -EBADF;
            job->qnext = NULL;
            *tail = job;
            tail = &job->qnext;
        } else {
            pool.tail = job;
            pp = &job->qnext;
        }
    }
    /* Calls being made: waited for (offload_io_close_wait). */
    for (unsigned i = 0; i < pool.nthreads; i++)
        if (pool.cur[i] && pool.cur[i]->io_fd == c->fd)
            c->running++;
    pthread_mutex_unlock(&pool.lock);
    while (gone) {
        struct offload_job *job = gone;
        gone = job->qnext;
        proc_post_task(job->owner, &job->t);
    }
}

void offload_io_close_wait(struct offload_closing *c, struct rproc *p, struct rg *g)
{
    if (g) {
        uint64_t token = park_prepare(g, W_IO, 0);
        pthread_mutex_lock(&pool.lock);
        bool wait = c->running != 0;
        if (wait) {
            /* Read by the helper that ends the last call, under the lock. */
            c->owner = p;
            c->token = token;
            c->g = g;
        }
        pthread_mutex_unlock(&pool.lock);
        if (wait)
            park_commit(g, token, 0);
        else
            claim(g, token); /* nothing to wait for: end the wait ourselves */
        return;
    }
    for (;;) {
        pthread_mutex_lock(&pool.lock);
        unsigned n = c->running;
        pthread_mutex_unlock(&pool.lock);
        if (!n)
            return;
        struct timespec ts = { 0, 100000 };
        nanosleep(&ts, NULL);
    }
}

void offload_io_close_end(struct offload_closing *c)
{
    pthread_mutex_lock(&pool.lock);
    struct offload_closing **pp = &pool.closing;
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    pthread_mutex_unlock(&pool.lock);
}

int ringo_offload(void (*fn)(void *), void *arg)
{
    bool queued;
    return offload_call(fn, arg, &queued);
}

void offload_fini(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.stop = true;
    pthread_cond_broadcast(&pool.cond);
    unsigned n = pool.nthreads;
    pthread_mutex_unlock(&pool.lock);
    for (unsigned i = 0; i < n; i++)
        pthread_join(pool.threads[i], NULL);
    pthread_mutex_lock(&pool.lock);
    pool.nthreads = 0;
    pool.stop = false;
    pthread_mutex_unlock(&pool.lock);
    /* Completions posted after the procs stopped are discarded with the
     * procs' other tasks (offload_discard). */
}
