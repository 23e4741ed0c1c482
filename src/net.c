/*
 * net.c — TCP helpers: ringo_tcp_listen() and ringo_tcp_dial(), over
 * IPv4 and IPv6, with name resolution that honours the deadline.
 *
 * Resolution.  A numeric address ("127.0.0.1", "::1", port "8080") is
 * parsed in place with AI_NUMERICHOST | AI_NUMERICSERV, which never blocks.
 * Anything else goes through getaddrinfo(3) on an offload helper
 * (ringo_offload), so only the calling goroutine waits, and the deadline or
 * a cancel ends the wait even while getaddrinfo is still running.  The
 * helper may then finish after the goroutine has returned (or exited), so
 * the lookup's state is a heap object with a reference count of two — the
 * goroutine's and the helper's; whoever drops the last reference frees it
 * and the address list.  Nothing the helper writes is on a goroutine stack.
 *
 * getaddrinfo's EAI_* codes become negative errno values: EAI_NONAME,
 * EAI_NODATA, EAI_FAIL -> -ENXIO (no such host); EAI_SERVICE -> -EINVAL;
 * EAI_AGAIN -> -EAGAIN; EAI_MEMORY -> -ENOMEM; EAI_FAMILY -> -EAFNOSUPPORT;
 * EAI_SYSTEM -> -errno.
 *
 * Dialled connections get TCP_NODELAY, as Go's do: request/response
 * protocols written with one write per message should not wait for
 * Nagle's algorithm.
 */
#include "config.h"

#include "internal.h"
#include "engine.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringo.h"

static int eai_errno(int e, int saved_errno)
{
    switch (e) {
    case 0: return 0;
    case EAI_SERVICE: return -EINVAL;
    case EAI_AGAIN: return -EAGAIN;
    case EAI_MEMORY: return -ENOMEM;
    case EAI_FAMILY: return -EAFNOSUPPORT;
    case EAI_SYSTEM: return saved_errno ? -saved_errno : -EIO;
    default: return -ENXIO; /* EAI_NONAME, EAI_NODATA, EAI_FAIL, ... */
    }
}

/* A lookup shared by the goroutine and the helper running getaddrinfo. */
struct lookup {
    _Atomic int refs;           /* 2 at start; acq_rel decrements, last frees */
    struct addrinfo hints;      /* written before the offload; read by the helper */
    struct addrinfo *res;       /* written by the helper; read by the goroutine after the offload returns 0 */
    int err;                    /* likewise: 0 or -errno */
    char *host, *port;          /* copies: the caller's strings may be on its stack */
};

static void lookup_put(struct lookup *l)
{
    /* acq_rel: the last owner sees every write of the other before freeing */
    if (fetch_sub_acq_rel(&l->refs, 1) != 1)
        return;
    if (l->res)
        freeaddrinfo(l->res);
    free(l->host);
    free(l->port);
    free(l);
}

static void lookup_run(void *arg)
{
    struct lookup *l = arg;
    int e = getaddrinfo(l->host, l->port, &l->hints, &l->res);
    l->err = eai_errno(e, errno);
    if (e)
        l->res = NULL;
    lookup_put(l);
}

/* Resolve host:port into *res (free with freeaddrinfo).  0 or -errno. */
static int resolve(const char *host, const char *port, int passive, struct addrinfo **res)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = passive | AI_NUMERICHOST | AI_NUMERICSERV;
    if (host && !*host)
        host = NULL; /* "" means every local address, as for Go's ":8080" */

    /* Numeric (or wildcard) addresses never block: parse them here. */
    int e = getaddrinfo(host, port, &hints, res);
    if (e == 0)
        return 0;
    if (e != EAI_NONAME)
        return eai_errno(e, errno);

    struct lookup *l = seam_calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->hints = hints;
    l->hints.ai_flags = passive | AI_ADDRCONFIG;
    l->host = host ? seam_strdup(host) : NULL;
    l->port = port ? seam_strdup(port) : NULL;
    if ((host && !l->host) || (port && !l->port)) {
        free(l->host);
        free(l->port);
        free(l);
        return -ENOMEM;
    }
    store_relaxed(&l->refs, 2); /* published to the helper by the offload queue's lock */
    bool queued;
    int r = offload_call(lookup_run, l, &queued);
    if (r == 0) {
        /* ringo_offload returned 0: lookup_run has finished, and its writes
         * are visible (the completion came through the proc's task stack). */
        r = l->err;
        *res = l->res;
        l->res = NULL;
    } else if (!queued) {
        /* not submitted (entry check, no memory, no helper): lookup_run
         * will never run, so drop its reference too */
        lookup_put(l);
    }
    lookup_put(l);
    return r;
}

/* A port getaddrinfo would take wrongly: empty (port 0), a number past
 * 65535, which its numeric parse truncates to 16 bits ("65537" is port 1),
 * or one with a sign or a space before it ("-1").  Anything else that is
 * not all digits is a service's name ("http", "9pfs"), left to it. */
static bool port_bad(const char *port)
{
    if (!port || !*port)
        return true;
    unsigned char c = (unsigned char)port[0];
    if (c == '+' || c == '-' || c == ' ' || (c >= '\t' && c <= '\r'))
        return true;
    unsigned long v = 0;
    for (const char *q = port; *q; q++) {
        if (*q < '0' || *q > '9')
            return false; /* a name */
        v = v * 10 + (unsigned long)(*q - '0');
        if (v > 65535)
            return true;
    }
    return false;
}

int ringo_tcp_listen(const char *host, const char *port, int backlog, int flags)
{
    if (port_bad(port) || (flags & ~RINGO_REUSEPORT))
        return -EINVAL;
    struct rg *g = self_g();
    if (g) { /* as every blocking call, whether or not it would wait */
        int c = block_check(g);
        if (c)
            return c;
    }
    struct addrinfo *res = NULL;
    int r = resolve(host, port, AI_PASSIVE, &res);
    if (r)
        return r;
    r = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            r = -errno;
            continue;
        }
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            ((flags & RINGO_REUSEPORT) &&
             setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
            listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
            r = -errno;
            close(fd);
            continue;
        }
        freeaddrinfo(res);
        if (g)
            eng_fd_created(fd, true); /* ours until ringo_close (engine.h) */
        return fd;
    }
    freeaddrinfo(res);
    return r;
}

int ringo_tcp_dial(const char *host, const char *port)
{
    if (!host || !*host || port_bad(port))
        return -EINVAL;
    struct rg *g = self_g();
    if (g) {
        int c = block_check(g);
        if (c)
            return c;
    }
    struct addrinfo *res = NULL;
    int r = resolve(host, port, 0, &res);
    if (r)
        return r;
    r = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            r = -errno;
            continue;
        }
        /* ours until ringo_close (engine.h), the connect's wait too */
        if (g)
            eng_fd_created(fd, true);
        r = ringo_connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            freeaddrinfo(res);
            return fd;
        }
        if (g)
            eng_fd_closing(fd);
        close(fd);
        if (g && block_check(g))
            break; /* the goroutine's deadline or cancel: no next address
                    * (a connect's own -ETIMEDOUT, the peer silent, goes on) */
    }
    freeaddrinfo(res);
    return r;
}
