/*
 * ringo — Go's concurrency model for C programs on Linux.
 *
 * Goroutines are fibers pinned to per-core io_uring rings ("procs").  A
 * goroutine runs until it blocks, yields or exits; every blocking call
 * (sleep, channel operation, I/O) parks only the calling goroutine while its
 * proc keeps running the others.  See ringo(7) for the overview and one man
 * page per function for the details.
 *
 * Conventions: functions return 0 (or a count) on success and a negative
 * errno on failure; constructors that return a pointer return NULL and set
 * errno.  Time is int64_t nanoseconds on CLOCK_MONOTONIC.
 */
#ifndef RINGO_H
#define RINGO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(RINGO_API)
#define RINGO_API __attribute__((visibility("default")))
#elif !defined(RINGO_API)
#define RINGO_API
#endif

/*
 * ringo_exit() does not return.  C11 and C17 spell that _Noreturn, C23 and
 * C++11 [[noreturn]] (C++ has no _Noreturn at all, and C23 deprecates it);
 * older C++ dialects get the GNU attribute where there is one.
 */
#if defined(__cplusplus) && __cplusplus >= 201103L
#define RINGO_NORETURN [[noreturn]]
#elif !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 202311L
#define RINGO_NORETURN [[noreturn]]
#elif !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define RINGO_NORETURN _Noreturn
#elif defined(__GNUC__)
#define RINGO_NORETURN __attribute__((noreturn))
#else
#define RINGO_NORETURN
#endif

/* The version of this header; the library's is ringo_version(3). */
#define RINGO_VERSION_MAJOR 0
#define RINGO_VERSION_MINOR 1
#define RINGO_VERSION_PATCH 0

/* No deadline. */
#define RINGO_NEVER INT64_MAX

/*
 * Runtime: procs, goroutines and their life cycle.
 * ringo_run() starts the procs and runs main_fn as the first goroutine; it
 * returns when every goroutine has finished (0) or on deadlock (-EDEADLK).
 */
struct ringo_config {
    unsigned procs;        /* scheduler threads, one ring each; 0 = CPUs in the affinity mask */
    size_t   stack_size;   /* per goroutine; 0 = default (64 KiB) */
    unsigned ring_entries; /* SQ size per ring; 0 = default (256) */
    int64_t  watchdog_ns;  /* report a goroutine that runs this long without
                              yielding; 0 = RINGO_WATCHDOG_MS, else off */
    int      dump_on_sigquit; /* 1: SIGQUIT writes ringo_dump to stderr and the run
                                 goes on; -1: no; 0 = RINGO_DUMP_ON_SIGQUIT=1, else no */
    /* more fields may follow; zero always means "default" */
};

/*
 * Structs that grow: struct ringo_config and struct ringo_stats gain fields
 * at their end (never in their tail padding), so their size tells which
 * fields a program knows.  ringo_run() and ringo_stats() are macros that
 * pass the sizeof the program was compiled with to the _sized functions:
 * the library reads and writes only that many bytes (ringo_run(3),
 * ringo_stats(3)).  The functions named ringo_run and ringo_stats, which
 * programs built against ringo 0.1 call, keep to the 0.1 sizes.  Variadic,
 * so that a C++ lambda with commas in its body is one argument.
 */
RINGO_API int      ringo_run(void (*main_fn)(void *), void *arg, const struct ringo_config *cfg);
RINGO_API int      ringo_run_sized(void (*main_fn)(void *), void *arg,
                                   const struct ringo_config *cfg, size_t cfg_size);
#define ringo_run(...) ringo_run_sized(__VA_ARGS__, sizeof(struct ringo_config))
RINGO_API int64_t  ringo_go(void (*fn)(void *), void *arg);
RINGO_API int64_t  ringo_go_on(int proc, void (*fn)(void *), void *arg);
RINGO_API void     ringo_yield(void);
RINGO_NORETURN RINGO_API void ringo_exit(void);
RINGO_API int64_t  ringo_id(void);
RINGO_API int      ringo_proc(void);
RINGO_API int      ringo_nprocs(void);
RINGO_API size_t   ringo_count(void);
RINGO_API int      ringo_cancel(int64_t id);

/*
 * Time and deadlines.  Each goroutine has one deadline (initially
 * RINGO_NEVER); every blocking call returns -ETIMEDOUT once it has passed
 * and -ECANCELED once the goroutine has been cancelled.
 */
RINGO_API int64_t  ringo_now(void);
RINGO_API int      ringo_sleep(int64_t ns);
RINGO_API int      ringo_sleep_until(int64_t when);
RINGO_API int64_t  ringo_deadline_set(int64_t when);
RINGO_API int64_t  ringo_deadline(void);

/*
 * Channels: Go's chan.  Elements are copied by value (elem_size bytes);
 * cap 0 is unbuffered.  A NULL channel is Go's nil channel: never ready.
 * Send on a closed channel, and close of a closed one, return -EPIPE;
 * receive drains a closed channel, then returns -EPIPE with *elem zeroed.
 */
typedef struct ringo_chan ringo_chan;
enum { RINGO_SEND = 1, RINGO_RECV = 2 };

RINGO_API ringo_chan *ringo_chan_make(size_t elem_size, size_t cap);
RINGO_API ringo_chan *ringo_chan_retain(ringo_chan *c);
RINGO_API void        ringo_chan_release(ringo_chan *c);
RINGO_API int         ringo_chan_send(ringo_chan *c, const void *elem);
RINGO_API int         ringo_chan_recv(ringo_chan *c, void *elem);
RINGO_API int         ringo_chan_try_send(ringo_chan *c, const void *elem);
RINGO_API int         ringo_chan_try_recv(ringo_chan *c, void *elem);
RINGO_API int         ringo_chan_close(ringo_chan *c);
RINGO_API size_t      ringo_chan_len(const ringo_chan *c);
RINGO_API size_t      ringo_chan_cap(const ringo_chan *c);

/*
 * Select: wait for the first of several channel operations, as Go's
 * select; among ready cases one is chosen uniformly at random.
 */
struct ringo_case {
    ringo_chan *chan;  /* NULL: this case is never ready (Go's nil channel) */
    int         op;    /* RINGO_SEND or RINGO_RECV */
    void       *elem;  /* value to send / where to store the received value */
    int         err;   /* out: 0, or -EPIPE when the channel was closed */
};
#define RINGO_NONBLOCK 1
RINGO_API int ringo_select(struct ringo_case *cases, size_t n, int flags);

/*
 * Per-descriptor deadlines (Go's net.Conn SetReadDeadline and
 * SetWriteDeadline): settable from any goroutine or plain thread, effective
 * at once on operations already blocked on fd.  An operation ends at the
 * earlier of its goroutine's deadline and its fd's; cancellation wins over
 * both; ringo_close clears them.
 */
#define RINGO_READ  1
#define RINGO_WRITE 2
RINGO_API int ringo_fd_deadline_set(int fd, int dirs, int64_t when); /* 0, -EBADF, -EINVAL */

/* Timers as channels (cap 1, elem int64_t: the ringo_now() of the firing). */
RINGO_API ringo_chan *ringo_after(int64_t ns);
RINGO_API ringo_chan *ringo_tick(int64_t period);
RINGO_API void        ringo_tick_stop(ringo_chan *t);

/*
 * Signals as channels (Go's signal.Notify / signal.Stop).  Each listed
 * signal is sent to c (elem int: the signal number) without blocking: a
 * full channel drops it.  The runtime receives the signals; no handler
 * interrupts a goroutine.  SIGPIPE is ignored while a run is in progress,
 * so a write to a broken connection returns -EPIPE.
 */
RINGO_API int ringo_signal_notify(ringo_chan *c, const int *sigs, size_t n); /* 0, -EINVAL */
RINGO_API int ringo_signal_stop(ringo_chan *c);                               /* 0, -ENOENT */

/*
 * I/O.  POSIX-shaped calls that block the goroutine, never the proc: each is
 * one io_uring submission batched with the proc's scheduler round, honours
 * the deadline and cancellation (the in-flight operation is cancelled and the
 * call returns only once the kernel has let go of the buffer), returns
 * -errno on failure, and is the plain system call outside the runtime.
 */
RINGO_API ssize_t ringo_read(int fd, void *buf, size_t n);
RINGO_API ssize_t ringo_write(int fd, const void *buf, size_t n);
RINGO_API ssize_t ringo_pread(int fd, void *buf, size_t n, off_t off);
RINGO_API ssize_t ringo_pwrite(int fd, const void *buf, size_t n, off_t off);
RINGO_API ssize_t ringo_readv(int fd, const struct iovec *iov, int iovcnt);
RINGO_API ssize_t ringo_writev(int fd, const struct iovec *iov, int iovcnt);
RINGO_API ssize_t ringo_recv(int fd, void *buf, size_t n, int flags);
RINGO_API ssize_t ringo_send(int fd, const void *buf, size_t n, int flags);
RINGO_API ssize_t ringo_recvmsg(int fd, struct msghdr *msg, int flags);
RINGO_API ssize_t ringo_sendmsg(int fd, const struct msghdr *msg, int flags);
RINGO_API ssize_t ringo_write_all(int fd, const void *buf, size_t n);
RINGO_API int     ringo_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags);
RINGO_API int     ringo_connect(int fd, const struct sockaddr *addr, socklen_t len);
RINGO_API int     ringo_openat(int dirfd, const char *path, int flags, mode_t mode);
RINGO_API int     ringo_close(int fd);
RINGO_API int     ringo_fsync(int fd);
RINGO_API int     ringo_poll(int fd, short events);

/*
 * TCP helpers and offload.  ringo_tcp_listen() returns a listening socket
 * (RINGO_REUSEPORT sets SO_REUSEPORT); ringo_tcp_dial() resolves and connects
 * within the deadline; ringo_offload() runs blocking code on a helper thread
 * while only the calling goroutine waits.
 */
#define RINGO_REUSEPORT 1
RINGO_API int     ringo_tcp_listen(const char *host, const char *port, int backlog, int flags);
RINGO_API int     ringo_tcp_dial(const char *host, const char *port);
RINGO_API int     ringo_offload(void (*fn)(void *), void *arg);

/*
 * Buffered I/O on any descriptor, Go's bufio: a reader with a size limit
 * (a line or peek longer than max fails with -EMSGSIZE) and a writer that
 * flushes when full, built on the calls above; plus full-transfer loops.
 */
typedef struct ringo_reader ringo_reader;
typedef struct ringo_writer ringo_writer;

RINGO_API ringo_reader *ringo_reader_new(int fd, size_t size, size_t max);
RINGO_API ssize_t ringo_reader_read(ringo_reader *r, void *buf, size_t n);
RINGO_API ssize_t ringo_reader_read_full(ringo_reader *r, void *buf, size_t n);
RINGO_API ssize_t ringo_reader_read_until(ringo_reader *r, int delim, const char **line);
RINGO_API ssize_t ringo_reader_peek(ringo_reader *r, size_t n, const char **p);
RINGO_API size_t  ringo_reader_buffered(const ringo_reader *r);
RINGO_API void    ringo_reader_free(ringo_reader *r);

RINGO_API ringo_writer *ringo_writer_new(int fd, size_t size);
RINGO_API ssize_t ringo_writer_write(ringo_writer *w, const void *buf, size_t n);
RINGO_API int     ringo_writer_flush(ringo_writer *w);
RINGO_API size_t  ringo_writer_buffered(const ringo_writer *w);
RINGO_API void    ringo_writer_free(ringo_writer *w);

RINGO_API ssize_t ringo_writev_all(int fd, const struct iovec *iov, int iovcnt);
RINGO_API ssize_t ringo_send_all(int fd, const void *buf, size_t n, int flags);

/*
 * Sync: Go's sync.Mutex, RWMutex, WaitGroup, Once and Cond, on 32-bit futex
 * words.  Usable from goroutines (which park) and plain threads (which block
 * in futex(2)) at once.  They ignore deadlines and cancellation, as in Go,
 * except the timed ringo_waitgroup_wait_until.
 * Each type is caller-allocated opaque storage of fixed size (part of the
 * ABI); zero, or the RINGO_*_INIT macro, is the ready state.  An object must
 * not be moved or copied after first use.
 */
typedef struct { uint32_t _w[2]; } ringo_mutex;      /* zero = unlocked */
typedef struct { uint32_t _w[8]; } ringo_rwmutex;    /* zero = unlocked */
typedef struct { uint32_t _w[2]; } ringo_waitgroup;  /* zero = counter 0 */
typedef struct { uint32_t _w[2]; } ringo_once;       /* zero = not done */
typedef struct { uint32_t _w[2]; } ringo_cond;       /* zero = ready */

#define RINGO_MUTEX_INIT     { { 0 } }
#define RINGO_RWMUTEX_INIT   { { 0 } }
#define RINGO_WAITGROUP_INIT { { 0 } }
#define RINGO_ONCE_INIT      { { 0 } }
#define RINGO_COND_INIT      { { 0 } }

RINGO_API void ringo_mutex_lock(ringo_mutex *m);
RINGO_API int  ringo_mutex_trylock(ringo_mutex *m);     /* 0, -EBUSY */
RINGO_API void ringo_mutex_unlock(ringo_mutex *m);      /* fatal error if not locked */

RINGO_API void ringo_rwmutex_rlock(ringo_rwmutex *m);
RINGO_API void ringo_rwmutex_runlock(ringo_rwmutex *m);
RINGO_API void ringo_rwmutex_lock(ringo_rwmutex *m);
RINGO_API void ringo_rwmutex_unlock(ringo_rwmutex *m);

RINGO_API void ringo_waitgroup_add(ringo_waitgroup *wg, int delta);  /* fatal error if the counter goes negative */
RINGO_API void ringo_waitgroup_done(ringo_waitgroup *wg);
RINGO_API void ringo_waitgroup_wait(ringo_waitgroup *wg);
/* 0 once the counter is zero; -ETIMEDOUT once `when` (ringo_now's clock,
 * RINGO_NEVER: no limit) or the goroutine's deadline has passed;
 * -ECANCELED if the goroutine is cancelled */
RINGO_API int ringo_waitgroup_wait_until(ringo_waitgroup *wg, int64_t when);

RINGO_API void ringo_once_do(ringo_once *o, void (*fn)(void *), void *arg);

RINGO_API void ringo_cond_wait(ringo_cond *c, ringo_mutex *m);
RINGO_API void ringo_cond_signal(ringo_cond *c);
RINGO_API void ringo_cond_broadcast(ringo_cond *c);

/*
 * Introspection.
 */
struct ringo_stats {
    uint64_t goroutines;      /* live now */
    uint64_t spawned;         /* since ringo_run began, main included */
    uint64_t switches;        /* fiber switches */
    uint64_t submissions;     /* SQEs */
    uint64_t completions;     /* CQEs */
    uint64_t enters;          /* io_uring_enter system calls */
    uint64_t cross_wakes;     /* goroutines made ready on another proc (pushed to its inbox, or
                               * handed the result while they spun in place) */
    uint64_t spin_ns;         /* time idle procs, and goroutines blocked on a channel on an
                               * otherwise idle proc, spent spinning before sleeping, ns */
    uint64_t spins;           /* such spins; spins_found: those that found work handed over */
    uint64_t spins_found;
    uint64_t watchdog_reports; /* goroutines reported for running too long without yielding */
    /* Gauges (the state at the call) and two more counters: */
    uint64_t runnable;        /* goroutines ready to run, in the procs' run queues */
    uint64_t running;         /* goroutines running, one per proc at most */
    uint64_t waiting;         /* the other live goroutines: blocked, or just readied by another proc */
    uint64_t idle_ns;         /* time procs slept in the kernel with nothing to run, ns */
    uint64_t donations;       /* unstarted goroutines moved from a busy proc to an idle one */
    uint64_t offload_jobs;    /* ringo_offload jobs queued or running */
    uint64_t engine;          /* RINGO_ENGINE_URING or RINGO_ENGINE_EPOLL: the run's (or the last run's) */
    /* more may follow */
};

/* What carries out the I/O (ringo(7) "Engines"). */
enum { RINGO_ENGINE_URING = 1, RINGO_ENGINE_EPOLL = 2 };

RINGO_API int  ringo_stats(struct ringo_stats *out);
RINGO_API int  ringo_stats_sized(struct ringo_stats *out, size_t size);
#define ringo_stats(...) ringo_stats_sized(__VA_ARGS__, sizeof(struct ringo_stats))
RINGO_API void ringo_dump(int fd);
RINGO_API const char *ringo_version(void);

#ifdef __cplusplus
}
#endif

#endif /* RINGO_H */
