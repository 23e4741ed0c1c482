/*
 * bufio.c — buffered I/O on any descriptor, Go's bufio as the model: a
 * reader (read, read-exactly, read-until-byte, peek) with a size limit, a
 * writer (write, flush, automatic flush when full), and the full-transfer
 * loops ringo_writev_all() and ringo_send_all().
 *
 * Everything here is built on ringo_read(), ringo_write(), ringo_writev()
 * and ringo_send(), so each call that does I/O honours the goroutine's
 * deadline and cancellation (and falls back to the plain system call
 * outside the runtime), and a call the buffer alone satisfies does no I/O
 * and so ignores both, as Go's bufio does.  A reader or writer belongs to
 * one goroutine (or thread) at a time: there is no lock, as in Go.
 *
 * Reader invariants (struct ringo_reader):
 *   - 0 <= r <= w <= cap <= max; the unread bytes are buf[r, w).
 *   - cap grows (doubling, at most to max) only when a call needs more
 *     contiguous bytes than fit after moving the unread ones to the front;
 *     so a line or peek of up to max bytes always fits, and nothing larger
 *     is ever buffered (-EMSGSIZE instead).
 *   - Errors consume nothing: a call that fails leaves buf[r, w) as it was
 *     plus whatever its reads appended, so a read cut short by a deadline
 *     can be retried and loses no data.  The exceptions are the counts
 *     ringo_reader_read_full() returns below n (see there).
 *
 * Writer invariants (struct ringo_writer): the unwritten bytes are
 * buf[0, len), len <= size; a flush that fails moves what is left to the
 * front and keeps it, so the next flush retries it.  Errors are not sticky
 * (Go's are): after a timeout, a later deadline and a flush carry on.
 *
 * Rejected.  A ring buffer for the reader: read_until and peek hand out one
 * contiguous span, which a ring would have to copy out; a move to the
 * front is one memmove per refill that needs it.  Sticky writer errors
 * (Go's): they make a deadline fatal to the connection, which is not what
 * ringo's deadlines promise.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "ringo.h"

/* The buffer size when the caller passes 0: Go's defaultBufSize. */
#define BUFIO_DEFAULT_SIZE 4096

/* ringo_writev_all() passes the caller's array to the kernel as it is
 * until a write ends inside an iovec; then it writes from a copy of the
 * next WRITEV_WINDOW entries with the first one trimmed.  A window on the
 * goroutine's stack (64 KiB by default) rather than IOV_MAX entries (16
 * KiB); a partial write happens only when the descriptor is full, so the
 * extra calls a small window may cost are rare. */
#define WRITEV_WINDOW 64

struct ringo_reader {
    int fd;
    size_t r;     /* next unread byte */
    size_t w;     /* end of the unread bytes */
    size_t cap;   /* size of buf */
    size_t max;   /* cap never exceeds it */
    char *buf;
};

struct ringo_writer {
    int fd;
    size_t len;   /* unwritten bytes, buf[0, len) */
    size_t size;  /* size of buf */
    char *buf;
};

ringo_reader *ringo_reader_new(int fd, size_t size, size_t max)
{
    if (size == 0)
        size = max && max < BUFIO_DEFAULT_SIZE ? max : BUFIO_DEFAULT_SIZE;
    if (max == 0)
        max = size;
    if (fd < 0 || max < size || max > SSIZE_MAX) {
        errno = EINVAL;
        return NULL;
    }
    ringo_reader *rd = calloc(1, sizeof *rd);
    if (!rd)
        return NULL;
    rd->buf = malloc(size);
    if (!rd->buf) {
        free(rd);
        return NULL;
    }
    rd->fd = fd;
    rd->cap = size;
    rd->max = max;
    return rd;
}

void ringo_reader_free(ringo_reader *rd)
{
    if (!rd)
        return;
    free(rd->buf);
    free(rd);
}

size_t ringo_reader_buffered(const ringo_reader *rd)
{
    return rd ? rd->w - rd->r : 0;
}

/* Make room for need (<= max) unread bytes in a row: move the unread bytes
 * to the front, and grow the buffer if that is not enough. */
static int reader_room(ringo_reader *rd, size_t need)
{
    if (rd->cap - rd->r >= need)
        return 0;
    size_t have = rd->w - rd->r;
    if (rd->r > 0) {
        memmove(rd->buf, rd->buf + rd->r, have);
        rd->r = 0;
        rd->w = have;
    }
    if (rd->cap >= need)
        return 0;
    size_t cap = rd->cap;
    while (cap < need)
        cap = cap > rd->max / 2 ? rd->max : cap * 2;
    char *nb = realloc(rd->buf, cap);
    if (!nb)
        return -ENOMEM;
    rd->buf = nb;
    rd->cap = cap;
    return 0;
}

/* One read from the descriptor into the free end of the buffer: the bytes
 * read (> 0), 0 at end of file, or -errno.  The caller made sure there is
 * room (w < cap). */
static ssize_t reader_fill(ringo_reader *rd)
{
    if (rd->r == rd->w) {
        rd->r = rd->w = 0; /* empty: start over at the front */
    } else if (rd->r > 0 && rd->cap - rd->w < rd->cap / 2) {
        /* Less than half the buffer free at the end: move the unread bytes
         * to the front, so reads stay large. */
        memmove(rd->buf, rd->buf + rd->r, rd->w - rd->r);
        rd->w -= rd->r;
        rd->r = 0;
    }
    ssize_t n = ringo_read(rd->fd, rd->buf + rd->w, rd->cap - rd->w);
    if (n > 0)
        rd->w += (size_t)n;
    return n;
}

ssize_t ringo_reader_read(ringo_reader *rd, void *buf, size_t n)
{
    if (!rd)
        return -EINVAL;
    if (n == 0)
        return 0;
    if (rd->r == rd->w) {
        /* Nothing buffered.  A read at least as large as the buffer goes
         * straight into the caller's memory: copying would gain nothing. */
        if (n >= rd->cap)
            return ringo_read(rd->fd, buf, n);
        ssize_t k = reader_fill(rd);
        if (k <= 0)
            return k;
    }
    size_t have = rd->w - rd->r;
    if (n > have)
        n = have;
    memcpy(buf, rd->buf + rd->r, n);
    rd->r += n;
    return (ssize_t)n;
}

/* Until at least n bytes are buffered (n <= max): n, the bytes there at end
 * of file (fewer), or -errno; nothing is consumed. */
static ssize_t reader_want(ringo_reader *rd, size_t n)
{
    int e = reader_room(rd, n);
    if (e < 0)
        return e;
    while (rd->w - rd->r < n) {
        ssize_t k = reader_fill(rd);
        if (k < 0)
            return k;
        if (k == 0)
            return (ssize_t)(rd->w - rd->r);
    }
    return (ssize_t)n;
}

ssize_t ringo_reader_peek(ringo_reader *rd, size_t n, const char **p)
{
    if (!rd || !p)
        return -EINVAL;
    if (n > rd->max)
        return -EMSGSIZE;
    ssize_t k = reader_want(rd, n);
    if (k >= 0)
        *p = rd->buf + rd->r;
    return k;
}

ssize_t ringo_reader_read_full(ringo_reader *rd, void *buf, size_t n)
{
    if (!rd)
        return -EINVAL;
    if (n > SSIZE_MAX)
        return -EINVAL;
    char *out = buf;
    if (n <= rd->max) {
        /* All or nothing, but for the end of the stream: gather n bytes in
         * the buffer, then hand them over. */
        ssize_t k = reader_want(rd, n);
        if (k < 0)
            return k;
        memcpy(out, rd->buf + rd->r, (size_t)k);
        rd->r += (size_t)k;
        return k;
    }
    /* Larger than the buffer may grow: what is buffered, then straight into
     * buf.  Bytes stored in buf are consumed, so a failure after some
     * returns their count, as write(2) does; the next call reports it. */
    size_t done = rd->w - rd->r;
    memcpy(out, rd->buf + rd->r, done);
    rd->r = rd->w = 0;
    while (done < n) {
        ssize_t k = ringo_read(rd->fd, out + done, n - done);
        if (k < 0)
            return done ? (ssize_t)done : k;
        if (k == 0)
            break;
        done += (size_t)k;
    }
    return (ssize_t)done;
}

ssize_t ringo_reader_read_until(ringo_reader *rd, int delim, const char **line)
{
    if (!rd || !line)
        return -EINVAL;
    size_t scanned = 0; /* bytes of buf[r, w) known to hold no delim */
    for (;;) {
        size_t have = rd->w - rd->r;
        char *start = rd->buf + rd->r;
        char *hit = memchr(start + scanned, (unsigned char)delim, have - scanned);
        if (hit) {
            size_t len = (size_t)(hit - start) + 1;
            rd->r += len;
            *line = start;
            return (ssize_t)len;
        }
        scanned = have;
        if (have >= rd->max)
            return -EMSGSIZE; /* no delim within max bytes; nothing consumed */
        /* Room for one more byte at least: the buffer doubles as the
         * line grows. */
        int e = reader_room(rd, have + 1);
        if (e < 0)
            return e;
        ssize_t k = reader_fill(rd);
        if (k < 0)
            return k;
        if (k == 0) {
            /* End of file: the last, unterminated line, then 0. */
            have = rd->w - rd->r;
            *line = rd->buf + rd->r;
            rd->r = rd->w;
            return (ssize_t)have;
        }
    }
}

ringo_writer *ringo_writer_new(int fd, size_t size)
{
    if (size == 0)
        size = BUFIO_DEFAULT_SIZE;
    if (fd < 0 || size > SSIZE_MAX) {
        errno = EINVAL;
        return NULL;
    }
    ringo_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->buf = malloc(size);
    if (!w->buf) {
        free(w);
        return NULL;
    }
    w->fd = fd;
    w->size = size;
    return w;
}

void ringo_writer_free(ringo_writer *w)
{
    if (!w)
        return;
    free(w->buf);
    free(w);
}

size_t ringo_writer_buffered(const ringo_writer *w)
{
    return w ? w->len : 0;
}

int ringo_writer_flush(ringo_writer *w)
{
    if (!w)
        return -EINVAL;
    size_t done = 0;
    int err = 0;
    while (done < w->len) {
        ssize_t k = ringo_write(w->fd, w->buf + done, w->len - done);
        if (k <= 0) {
            err = k < 0 ? (int)k : -EIO; /* no progress: would loop for ever */
            break;
        }
        done += (size_t)k;
    }
    /* Keep what is left, at the front, for the next flush. */
    if (done > 0) {
        memmove(w->buf, w->buf + done, w->len - done);
        w->len -= done;
    }
    return err;
}

ssize_t ringo_writer_write(ringo_writer *w, const void *buf, size_t n)
{
    if (!w)
        return -EINVAL;
    if (n > SSIZE_MAX)
        return -EINVAL;
    const char *p = buf;
    size_t done = 0;
    while (n - done > w->size - w->len) {
        if (w->len == 0) {
            /* Empty buffer and more than it holds: write straight from the
             * caller's memory. */
            ssize_t k = ringo_write(w->fd, p + done, n - done);
            if (k <= 0) {
                int err = k < 0 ? (int)k : -EIO;
                return done ? (ssize_t)done : err;
            }
            done += (size_t)k;
        } else {
            /* Fill the buffer and flush it: full-sized writes. */
            size_t c = w->size - w->len;
            memcpy(w->buf + w->len, p + done, c);
            w->len += c;
            done += c;
            int err = ringo_writer_flush(w);
            if (err < 0)
                return done ? (ssize_t)done : err;
        }
    }
    memcpy(w->buf + w->len, p + done, n - done);
    w->len += n - done;
    return (ssize_t)n;
}

ssize_t ringo_writev_all(int fd, const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt > 0 && !iov))
        return -EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > SSIZE_MAX - total)
            return -EINVAL; /* as writev(2): the sum overflows ssize_t */
        total += iov[i].iov_len;
    }
    if (total == 0)
        return ringo_write_all(fd, NULL, 0); /* the entry check alone */
    /* Progress: iov[i] from byte off on is still to be written. */
    int i = 0;
    size_t off = 0, done = 0;
    struct iovec win[WRITEV_WINDOW];
    while (done < total) {
        while (iov[i].iov_len == off) { /* finished or empty entries */
            i++;
            off = 0;
        }
        const struct iovec *v = iov + i;
        int cnt = iovcnt - i;
        if (off > 0) {
            /* Inside an entry: a trimmed copy, never the caller's array. */
            if (cnt > WRITEV_WINDOW)
                cnt = WRITEV_WINDOW;
            memcpy(win, v, (size_t)cnt * sizeof *win);
            win[0].iov_base = (char *)win[0].iov_base + off;
            win[0].iov_len -= off;
            v = win;
        }
        ssize_t k = ringo_writev(fd, v, cnt);
        if (k < 0)
            return k;
        if (k == 0)
            return -EIO; /* no progress: would loop for ever */
        done += (size_t)k;
        size_t left = (size_t)k;
        while (left > 0) {
            size_t rest = iov[i].iov_len - off;
            if (left < rest) {
                off += left;
                break;
            }
            left -= rest;
            i++;
            off = 0;
        }
    }
    return (ssize_t)total;
}

ssize_t ringo_send_all(int fd, const void *buf, size_t n, int flags)
{
    if (n > SSIZE_MAX)
        return -EINVAL;
    if (__builtin_expect(n == 0, 0))
        return ringo_write_all(fd, NULL, 0); /* the entry check alone */
    const char *b = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t k = ringo_send(fd, b + done, n - done, flags);
        if (k < 0)
            return k;
        if (k == 0)
            return -EIO; /* no progress: would loop for ever */
        done += (size_t)k;
    }
    return (ssize_t)n;
}
