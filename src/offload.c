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
#include <stdlib.h>

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
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;            /* signalled when a job is queued or on stop */
    struct offload_job *head, *tail;/* FIFO of jobs not yet taken; under lock */
    unsigned nthreads;              /* helpers started this run; under lock */
    unsigned idle;                  /* helpers waiting on cond; under lock */
    bool stop;                      /* under lock */
    pthread_t threads[OFFLOAD_MAX_THREADS]; /* under lock */
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
    (void)arg;
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
        pthread_mutex_unlock(&pool.lock);
        job->fn(job->arg);
        /* release inside proc_post_task: the owner sees what fn wrote */
        proc_post_task(job->owner, &job->t);
        pthread_mutex_lock(&pool.lock);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

/* Queue a job, starting a helper if none is idle.  0 or -EAGAIN. */
static int pool_submit(struct offload_job *job)
{
    pthread_mutex_lock(&pool.lock);
    if (pool.idle == 0 && pool.nthreads < OFFLOAD_MAX_THREADS) {
        if (seam_pthread_create(&pool.threads[pool.nthreads], NULL, helper_main, NULL) == 0)
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
 * end while the operation's goroutine waits for it). */
static void io_job_run(void *arg)
{
    struct offload_job *job = arg;
    job->io_res = job->io_fn(job->io_arg);
}

static void io_job_done(struct rproc *p, struct rtask *t)
{
    struct offload_job *job = (struct offload_job *)t;
    job->io_done(p, job->io_arg, job->io_res);
    free(job);
}

int offload_io(struct rproc *owner, int (*fn)(void *), void (*done)(struct rproc *, void *, int),
               void *arg)
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
    int r = pool_submit(job);
    if (r)
        free(job);
    return r;
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
