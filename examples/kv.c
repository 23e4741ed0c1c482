/*
 * kv.c — a small key-value server speaking the Redis protocol (RESP2), so
 * that redis-cli and redis-benchmark talk to it.  Written in plain blocking
 * style against ringo's public API: a goroutine per connection reads
 * commands through a buffered reader and answers through a buffered writer;
 * the store is a hash table shared by every goroutine, in shards, each
 * under a ringo_mutex.
 *
 *   kv [-a ADDR] [-p PORT] [-t PROCS] [-i SECONDS] [-g SECONDS]
 *                                              (default 127.0.0.1:6379)
 *
 * Commands, as arrays of bulk strings (what clients send) or inline (a line
 * of words separated by spaces, as typed into telnet; no quoting):
 *
 *   PING [message]                 ECHO message
 *   SET key value [EX seconds | PX milliseconds]
 *   GET key                        MGET key [key ...]
 *   DEL key [key ...]              INCR key
 *   QUIT
 *   COMMAND ...                    an empty list (no command descriptions)
 *   CONFIG GET parameter ...       "save" and "appendonly" only, the two
 *                                  that redis-benchmark asks for
 *
 * Pipelining: the answers are written (the writer flushed) only before a
 * read that may wait, that is when the reader does not hold the whole of
 * the next command: every command that arrived together is answered in one
 * write, and none waits for a command still on its way.
 *
 * Limits: a client that sends a malformed command, or one beyond the limits
 * below (a line over INLINE_MAX, more than ARGS_MAX arguments, an argument
 * over BULK_MAX, a command over COMMAND_MAX), gets "-ERR Protocol error:
 * ..." and is disconnected, as Redis does; no client can make the server
 * hold more memory than that.  A client that sends nothing, or stops
 * reading its answers, for IDLE_NS (-i) is dropped (per-descriptor
 * deadlines, ringo_fd_deadline_set).  Errors in a well-formed command
 * (unknown command, wrong arguments, INCR of a non-number) are answered
 * "-ERR ..." and the connection goes on.
 *
 * On SIGINT or SIGTERM (signals as channel values, ringo_signal_notify) it
 * shuts down gracefully: it stops accepting, ends the connections waiting
 * for a command, lets those in the middle of one finish it for up to
 * GRACE_NS (-g), then ends what is left; ringo_run returns and main prints
 * the commands served and the runtime's counters.  See "Shutdown" below.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ringo.h>

#define SEC 1000000000LL
#define IDLE_NS (300 * SEC)   /* a client silent this long is dropped */
#define GRACE_NS (10 * SEC)   /* shutdown: how long commands under way may take */

/* What one command may be (Redis allows far more: 512 MiB arguments, a
 * million of them; a small server keeps small limits). */
#define INLINE_MAX (64 * 1024)          /* an inline command, or a "*N" or "$N" line */
#define ARGS_MAX 4096                   /* arguments, the command's name included */
#define BULK_MAX (1024 * 1024)          /* bytes in one argument */
#define COMMAND_MAX (4 * 1024 * 1024)   /* bytes in all the arguments of one command */

#define IO_BUF 16384                    /* the reader's and the writer's buffer */
#define MAX_PROCS 256

static int64_t idle_ns = IDLE_NS;
static int64_t grace_ns = GRACE_NS;
static const char *addr = "127.0.0.1";
static const char *port = "6379";
static int exit_status;

/* ------------------------------------------------------------------ store
 *
 * Keys and values are byte strings.  An entry holds its key and its value
 * in one allocation and is not changed once it is in the table: SET and
 * INCR put in a new entry and free the one it replaces.  The table is split
 * into SHARDS shards by the top bits of the key's hash, each a chained hash
 * table under its own ringo_mutex, so goroutines working on different keys
 * rarely wait for each other, and one that does parks (its proc runs other
 * goroutines meanwhile).  No goroutine holds a shard's lock across I/O: GET
 * copies the value out under the lock and writes it after unlocking.
 *
 * Expiry (SET ... EX): an entry carries the ringo_now() time at which it
 * expires; every access checks it, and the access that finds an entry
 * expired removes it (Redis's lazy expiry; Redis also samples keys in the
 * background, this example does not, so an expired key that nobody touches
 * keeps its memory).
 */
#define SHARD_BITS 6
#define SHARDS (1 << SHARD_BITS)

struct entry {
    struct entry *next; /* in its bucket */
    uint64_t hash;
    int64_t expires;    /* ringo_now() at which it expires; 0: never */
    size_t klen, vlen;
    char data[];        /* the key, then the value */
};

struct shard {
    _Alignas(64) ringo_mutex lock; /* a cache line per shard: no false sharing */
    struct entry **buckets;        /* under lock: nbuckets chains */
    size_t nbuckets;               /* under lock: a power of two */
    size_t count;                  /* under lock: entries, expired ones included */
};
static struct shard shards[SHARDS];

/* FNV-1a: short keys, good enough spread for a hash table. */
static uint64_t hash_key(const char *k, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ull;
    }
    return h;
}

static struct shard *shard_of(uint64_t hash)
{
    return &shards[hash >> (64 - SHARD_BITS)];
}

static bool store_init(void)
{
    for (int i = 0; i < SHARDS; i++) {
        shards[i].nbuckets = 64;
        shards[i].buckets = calloc(shards[i].nbuckets, sizeof *shards[i].buckets);
        if (!shards[i].buckets)
            return false;
    }
    return true;
}

static struct entry *entry_new(uint64_t hash, const char *key, size_t klen, const char *val,
                               size_t vlen, int64_t expires)
{
    struct entry *e = malloc(sizeof *e + klen + vlen);
    if (!e)
        return NULL;
    e->next = NULL;
    e->hash = hash;
    e->expires = expires;
    e->klen = klen;
    e->vlen = vlen;
    memcpy(e->data, key, klen);
    memcpy(e->data + klen, val, vlen);
    return e;
}

/* The link that points to key's entry in s, or NULL if it has none (an
 * expired entry is removed and freed on the way).  Caller holds s->lock. */
static struct entry **lookup(struct shard *s, const char *key, size_t klen, uint64_t hash,
                             int64_t now)
{
    struct entry **link = &s->buckets[hash & (s->nbuckets - 1)];
    for (struct entry *e; (e = *link) != NULL; link = &e->next) {
        if (e->hash != hash || e->klen != klen || memcmp(e->data, key, klen) != 0)
            continue;
        if (e->expires != 0 && e->expires <= now) {
            *link = e->next;
            s->count--;
            free(e);
            return NULL;
        }
        return link;
    }
    return NULL;
}

/* Twice the buckets, once there are as many entries as buckets.  Out of
 * memory, the chains just grow longer.  Caller holds s->lock. */
static void shard_grow(struct shard *s)
{
    size_t n = s->nbuckets * 2;
    struct entry **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct entry *e = s->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

/* Puts e in s: in place of *link if link is not NULL, returning the entry
 * it replaced (for the caller to free once it has unlocked), else as a new
 * key.  Caller holds s->lock. */
static struct entry *shard_put(struct shard *s, struct entry **link, struct entry *e)
{
    if (link) {
        struct entry *old = *link;
        e->next = old->next;
        *link = e;
        return old;
    }
    if (s->count >= s->nbuckets)
        shard_grow(s);
    struct entry **head = &s->buckets[e->hash & (s->nbuckets - 1)];
    e->next = *head;
    *head = e;
    s->count++;
    return NULL;
}

/* --------------------------------------------------------------- counters
 * Commands answered, per proc (padded against false sharing); atomic,
 * since a connection's goroutine may run on another proc than the one
 * whose slot it picked.  Relaxed: plain counters, read once at the end. */
static struct { _Atomic uint64_t n; char pad[56]; } served[MAX_PROCS];
static _Atomic uint64_t accepted;

/* ----------------------------------------------------------- connections */

struct arg {
    size_t off, len; /* in conn.buf, NUL-terminated there */
};

struct conn {
    struct conn *prev, *next; /* the list of connections, under reg_lock */
    int fd;
    ringo_reader *r;
    ringo_writer *w;
    bool werr;                /* a write failed: the connection is done */

    /* Against shutdown (see "Shutdown"). */
    ringo_mutex lock;
    bool idle;                /* under lock: waiting for a command's first byte */
    bool killed;              /* under lock: shutdown ended it, deadlines are past */
    int64_t moved_at;         /* this connection's goroutine only: when it last set its deadlines */

    /* The command being read: argc arguments in buf. */
    int argc, nargs;          /* arguments, room in args */
    struct arg *args;
    char *buf;
    size_t used, cap;
    char err[64];             /* what was wrong with a malformed command */

    char *val;                /* a value copied out of the store */
    size_t valcap;
};

#define ARG(c, i) ((c)->buf + (c)->args[i].off)
#define ARGLEN(c, i) ((c)->args[i].len)

/* The answers.  A failed write (the client left, or stopped reading past
 * its deadline) marks the connection done, and later ones are skipped. */
static void out(struct conn *c, const void *p, size_t n)
{
    if (!c->werr && ringo_writer_write(c->w, p, n) != (ssize_t)n)
        c->werr = true;
}

static void out_str(struct conn *c, const char *s)
{
    out(c, s, strlen(s));
}

static void out_int(struct conn *c, int64_t v)
{
    char b[32];
    int n = snprintf(b, sizeof b, ":%" PRId64 "\r\n", v);
    out(c, b, (size_t)n);
}

static void out_bulk(struct conn *c, const char *p, size_t len)
{
    char b[32];
    int n = snprintf(b, sizeof b, "$%zu\r\n", len);
    out(c, b, (size_t)n);
    out(c, p, len);
    out(c, "\r\n", 2);
}

static void out_array(struct conn *c, size_t len)
{
    char b[32];
    int n = snprintf(b, sizeof b, "*%zu\r\n", len);
    out(c, b, (size_t)n);
}

/* "-ERR ...", with anything that is not printable (a CR or LF would end
 * the line early) shown as '?'. */
static void out_err(struct conn *c, const char *fmt, ...)
{
    char b[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof b - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof b - 3)
        n = sizeof b - 3;
    for (int i = 0; i < n; i++)
        if ((unsigned char)b[i] < 0x20 || (unsigned char)b[i] >= 0x7f)
            b[i] = '?';
    memcpy(b + n, "\r\n", 2);
    out(c, "-ERR ", 5);
    out(c, b, (size_t)n + 2);
}

/* A decimal integer as Redis reads one: an optional '-', digits, no
 * leading zeros, within int64_t. */
static bool parse_int(const char *p, size_t n, int64_t *v)
{
    bool neg = n > 0 && p[0] == '-';
    size_t i = neg;
    if (i == n || (p[i] == '0' && n > i + 1) || (neg && p[i] == '0'))
        return false;
    uint64_t x = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        unsigned d = (unsigned)(p[i] - '0');
        if (x > (lim - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = neg ? (int64_t)(0 - x) : (int64_t)x;
    return true;
}

/* ------------------------------------------------------------- commands
 * Each runs with the command in c's arguments, writes its answer, and
 * returns true when the connection is to be closed after it. */

/* The value of key copied into c->val: its length, or -1 if there is none
 * (or -2 out of memory). */
static ssize_t store_get(struct conn *c, const char *key, size_t klen)
{
    uint64_t h = hash_key(key, klen);
    struct shard *s = shard_of(h);
    ssize_t n = -1;
    ringo_mutex_lock(&s->lock);
    struct entry **link = lookup(s, key, klen, h, ringo_now());
    if (link) {
        struct entry *e = *link;
        if (e->vlen > c->valcap) {
            char *v = realloc(c->val, e->vlen);
            if (v) {
                c->val = v;
                c->valcap = e->vlen;
            }
        }
        n = e->vlen <= c->valcap ? (ssize_t)e->vlen : -2;
        if (n >= 0)
            memcpy(c->val, e->data + e->klen, e->vlen);
    }
    ringo_mutex_unlock(&s->lock);
    return n;
}

static void out_value(struct conn *c, ssize_t n)
{
    if (n == -2)
        out_err(c, "out of memory");
    else if (n < 0)
        out_str(c, "$-1\r\n"); /* the null bulk string: no such key */
    else
        out_bulk(c, c->val, (size_t)n);
}

static bool cmd_get(struct conn *c)
{
    out_value(c, store_get(c, ARG(c, 1), ARGLEN(c, 1)));
    return false;
}

static bool cmd_mget(struct conn *c)
{
    out_array(c, (size_t)c->argc - 1);
    for (int i = 1; i < c->argc; i++)
        out_value(c, store_get(c, ARG(c, i), ARGLEN(c, i)));
    return false;
}

static bool cmd_set(struct conn *c)
{
    int64_t expires = 0;
    for (int i = 3; i < c->argc; i += 2) {
        bool ex = strcasecmp(ARG(c, i), "ex") == 0, px = strcasecmp(ARG(c, i), "px") == 0;
        int64_t t;
        if ((!ex && !px) || i + 1 == c->argc || expires) {
            out_err(c, "syntax error");
            return false;
        }
        if (!parse_int(ARG(c, i + 1), ARGLEN(c, i + 1), &t)) {
            out_err(c, "value is not an integer or out of range");
            return false;
        }
        int64_t unit = ex ? SEC : 1000000, now = ringo_now();
        if (t <= 0 || t > (INT64_MAX - now) / unit) {
            out_err(c, "invalid expire time in 'set' command");
            return false;
        }
        expires = now + t * unit;
    }
    uint64_t h = hash_key(ARG(c, 1), ARGLEN(c, 1));
    struct entry *e = entry_new(h, ARG(c, 1), ARGLEN(c, 1), ARG(c, 2), ARGLEN(c, 2), expires);
    if (!e) {
        out_err(c, "out of memory");
        return false;
    }
    struct shard *s = shard_of(h);
    ringo_mutex_lock(&s->lock);
    struct entry *old = shard_put(s, lookup(s, ARG(c, 1), ARGLEN(c, 1), h, ringo_now()), e);
    ringo_mutex_unlock(&s->lock);
    free(old);
    out_str(c, "+OK\r\n");
    return false;
}

static bool cmd_del(struct conn *c)
{
    int64_t n = 0;
    for (int i = 1; i < c->argc; i++) {
        uint64_t h = hash_key(ARG(c, i), ARGLEN(c, i));
        struct shard *s = shard_of(h);
        struct entry *gone = NULL;
        ringo_mutex_lock(&s->lock);
        struct entry **link = lookup(s, ARG(c, i), ARGLEN(c, i), h, ringo_now());
        if (link) {
            gone = *link;
            *link = gone->next;
            s->count--;
        }
        ringo_mutex_unlock(&s->lock);
        n += gone != NULL;
        free(gone);
    }
    out_int(c, n);
    return false;
}

/* INCR keeps the key's expiry, as Redis does; a missing key counts as 0. */
static bool cmd_incr(struct conn *c)
{
    const char *key = ARG(c, 1);
    size_t klen = ARGLEN(c, 1);
    uint64_t h = hash_key(key, klen);
    struct shard *s = shard_of(h);
    const char *err = NULL;
    int64_t v = 0;
    struct entry *old = NULL;
    ringo_mutex_lock(&s->lock);
    struct entry **link = lookup(s, key, klen, h, ringo_now());
    int64_t expires = link ? (*link)->expires : 0;
    if (link && !parse_int((*link)->data + klen, (*link)->vlen, &v))
        err = "value is not an integer or out of range";
    else if (v == INT64_MAX)
        err = "increment or decrement would overflow";
    if (!err) {
        char num[24];
        int n = snprintf(num, sizeof num, "%" PRId64, ++v);
        struct entry *e = entry_new(h, key, klen, num, (size_t)n, expires);
        if (e)
            old = shard_put(s, link, e);
        else
            err = "out of memory";
    }
    ringo_mutex_unlock(&s->lock);
    free(old);
    if (err)
        out_err(c, "%s", err);
    else
        out_int(c, v);
    return false;
}

static bool cmd_ping(struct conn *c)
{
    if (c->argc > 2)
        out_err(c, "wrong number of arguments for 'ping' command");
    else if (c->argc == 2)
        out_bulk(c, ARG(c, 1), ARGLEN(c, 1));
    else
        out_str(c, "+PONG\r\n");
    return false;
}

static bool cmd_echo(struct conn *c)
{
    out_bulk(c, ARG(c, 1), ARGLEN(c, 1));
    return false;
}

static bool cmd_quit(struct conn *c)
{
    out_str(c, "+OK\r\n");
    return true;
}

/* redis-cli asks for the commands' descriptions (COMMAND DOCS) to show
 * hints as one types: there are none. */
static bool cmd_command(struct conn *c)
{
    out_str(c, "*0\r\n");
    return false;
}

/* redis-benchmark starts with CONFIG GET save and CONFIG GET appendonly,
 * and warns without a (name, value) pair for each. */
static bool cmd_config(struct conn *c)
{
    static const char *const params[][2] = { { "save", "" }, { "appendonly", "no" } };
    const size_t nparams = sizeof params / sizeof params[0];
    if (strcasecmp(ARG(c, 1), "get") != 0 || c->argc < 3) {
        out_err(c, "unknown subcommand or wrong number of arguments for 'config'");
        return false;
    }
    size_t found = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            out_array(c, 2 * found);
        for (size_t p = 0; p < nparams; p++) {
            bool asked = false;
            for (int i = 2; i < c->argc && !asked; i++)
                asked = strcasecmp(ARG(c, i), params[p][0]) == 0;
            if (!asked)
                continue;
            if (pass == 0) {
                found++;
            } else {
                out_bulk(c, params[p][0], strlen(params[p][0]));
                out_bulk(c, params[p][1], strlen(params[p][1]));
            }
        }
    }
    return false;
}

static const struct command {
    const char *name;
    int arity; /* as Redis counts it, the name included: N exactly, -N at least N */
    bool (*run)(struct conn *c);
} commands[] = {
    { "get", 2, cmd_get },       { "set", -3, cmd_set },   { "mget", -2, cmd_mget },
    { "del", -2, cmd_del },      { "incr", 2, cmd_incr },  { "ping", -1, cmd_ping },
    { "echo", 2, cmd_echo },     { "quit", -1, cmd_quit }, { "command", -1, cmd_command },
    { "config", -2, cmd_config },
};

static bool execute(struct conn *c)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const struct command *cmd = &commands[i];
        if (ARGLEN(c, 0) != strlen(cmd->name) || strcasecmp(ARG(c, 0), cmd->name) != 0)
            continue;
        if (cmd->arity > 0 ? c->argc != cmd->arity : c->argc < -cmd->arity) {
            out_err(c, "wrong number of arguments for '%s' command", cmd->name);
            return false;
        }
        return cmd->run(c);
    }
    out_err(c, "unknown command '%.64s'", ARG(c, 0));
    return false;
}

/* -------------------------------------------------------- reading commands */

enum { READ_OK, READ_NONE, READ_EOF, READ_BAD };

static int bad(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return READ_BAD;
}

/* Room for one more argument of len bytes (and a CRLF or a NUL after it):
 * where to put it, or NULL out of memory.  The limits are checked before. */
static char *arg_push(struct conn *c, size_t len)
{
    if (c->argc == c->nargs) {
        int n = c->nargs ? 2 * c->nargs : 8;
        struct arg *a = realloc(c->args, (size_t)n * sizeof *a);
        if (!a)
            return NULL;
        c->args = a;
        c->nargs = n;
    }
    if (c->used + len + 2 > c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        while (cap < c->used + len + 2)
            cap *= 2;
        char *b = realloc(c->buf, cap);
        if (!b)
            return NULL;
        c->buf = b;
        c->cap = cap;
    }
    c->args[c->argc].off = c->used;
    c->args[c->argc].len = len;
    c->argc++;
    c->used += len + 2;
    return c->buf + c->used - len - 2;
}

/* An inline command: words separated by spaces or tabs, up to the end of
 * the line ("\n" or "\r\n"). */
static int read_inline(struct conn *c, const char *line, size_t n)
{
    n--;
    if (n > 0 && line[n - 1] == '\r')
        n--;
    for (size_t i = 0;;) {
        while (i < n && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == n)
            break;
        size_t start = i;
        while (i < n && line[i] != ' ' && line[i] != '\t')
            i++;
        if (c->argc == ARGS_MAX)
            return bad(c, "too many arguments");
        char *dst = arg_push(c, i - start);
        if (!dst)
            return bad(c, "out of memory");
        memcpy(dst, line + start, i - start);
        dst[i - start] = '\0';
    }
    return c->argc ? READ_OK : READ_NONE;
}

/* A "*N" or "$N" line: its number, or false if the line is not one. */
static bool header(const char *line, size_t n, int64_t *v)
{
    return n >= 4 && line[n - 2] == '\r' && parse_int(line + 1, n - 3, v);
}

/* Whether the reader holds the whole of the next command, so that reading
 * it will not wait.  A malformed one counts as whole: reading it fails at
 * once. */
static bool command_buffered(struct conn *c)
{
    size_t n = ringo_reader_buffered(c->r);
    const char *p, *nl;
    int64_t count, len;
    if (n == 0 || ringo_reader_peek(c->r, n, &p) != (ssize_t)n) /* no I/O: n are buffered */
        return false;
    const char *end = p + n;
    if ((nl = memchr(p, '\n', n)) == NULL)
        return false;
    if (p[0] != '*' || !header(p, (size_t)(nl + 1 - p), &count) || count > ARGS_MAX)
        return true; /* an inline command, or malformed */
    for (p = nl + 1; count > 0; count--, p = nl + 1 + len + 2) {
        if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
            return false;
        if (p[0] != '$' || !header(p, (size_t)(nl + 1 - p), &len) || len < 0 || len > BULK_MAX)
            return true;
        if (end - (nl + 1) < len + 2)
            return false;
    }
    return true;
}

/* Reads one command into c's arguments.  READ_OK: a command; READ_NONE:
 * an empty one (a blank line, "*0"), to be ignored as Redis does;
 * READ_EOF: the client left, or a read failed or passed its deadline;
 * READ_BAD: malformed, or over a limit, with the reason in c->err. */
static int read_command(struct conn *c)
{
    const char *line;
    int64_t count, len;
    c->argc = 0;
    c->used = 0;
    ssize_t n = ringo_reader_read_until(c->r, '\n', &line);
    if (n == -EMSGSIZE)
        return bad(c, "too big inline request");
    if (n <= 0 || line[n - 1] != '\n')
        return READ_EOF;
    if (line[0] != '*')
        return read_inline(c, line, (size_t)n);
    if (!header(line, (size_t)n, &count) || count > ARGS_MAX)
        return bad(c, "invalid multibulk length");
    for (int64_t i = 0; i < count; i++) {
        n = ringo_reader_read_until(c->r, '\n', &line);
        if (n == -EMSGSIZE)
            return bad(c, "too big bulk count string");
        if (n <= 0 || line[n - 1] != '\n')
            return READ_EOF;
        if (line[0] != '$')
            return bad(c, "expected '$', got '%c'", line[0] >= 0x20 && line[0] < 0x7f ? line[0] : '?');
        if (!header(line, (size_t)n, &len) || len < 0 || len > BULK_MAX)
            return bad(c, "invalid bulk length");
        if (c->used + (size_t)len > COMMAND_MAX)
            return bad(c, "command too large");
        char *dst = arg_push(c, (size_t)len);
        if (!dst)
            return bad(c, "out of memory");
        if (ringo_reader_read_full(c->r, dst, (size_t)len + 2) != len + 2)
            return READ_EOF;
        if (dst[len] != '\r' || dst[len + 1] != '\n')
            return bad(c, "bulk string not followed by CRLF");
        dst[len] = '\0';
    }
    return count > 0 ? READ_OK : READ_NONE;
}

/* -------------------------------------------------------------- shutdown
 *
 * Every connection is in a list under reg_lock, put there by the accept
 * loop before its goroutine starts.  A connection marks itself idle (under
 * its own lock) while it waits for the first byte of a command, and busy
 * from then until it has answered every command it has.  Shutdown:
 *
 *   1. sets `draining` and closes the listener; the accept loops end
 *      (ringo_accept returns -EBADF), and it waits for them (a WaitGroup),
 *      so the list gets no more connections;
 *   2. ends every idle connection: under the connection's lock, a read
 *      deadline in the past, which ends its blocked read at once, on
 *      whatever proc (ringo_fd_deadline_set);
 *   3. waits for the connections (a WaitGroup, `live`) up to the grace
 *      period (ringo_waitgroup_wait_until); past it, it ends every
 *      connection left, read and write deadlines in the past, and waits
 *      for them.
 *
 * A busy connection sees `draining` when it next goes idle, and ends.  The
 * race is a connection going idle as shutdown passes it: both sides take
 * the connection's lock, so either the connection marks itself idle first
 * and shutdown ends it, or shutdown passes first and, having set
 * `draining` before, the connection sees it under the lock and ends.  A
 * command whose first bytes arrive as shutdown ends its idle connection is
 * lost, as with any server that closes idle connections.
 *
 * Lock order: reg_lock, then a connection's lock.
 */
static ringo_mutex reg_lock;
static struct conn *conns;       /* under reg_lock */
static ringo_waitgroup live;     /* the registered connections */
static ringo_waitgroup acceptors;
static int listener = -1;

/* Written once by shutdown, before it takes each connection's lock; read
 * under a connection's lock.  Relaxed: the locks order it (a connection
 * that takes its lock after shutdown visited it reads true); an atomic
 * only because the two sides hold different locks. */
static atomic_bool draining;

static void conn_register(struct conn *c)
{
    ringo_mutex_lock(&reg_lock);
    c->prev = NULL;
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    ringo_waitgroup_add(&live, 1);
    ringo_mutex_unlock(&reg_lock);
}

static void conn_unregister(struct conn *c)
{
    ringo_mutex_lock(&reg_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ringo_mutex_unlock(&reg_lock);
    ringo_waitgroup_done(&live);
}

/* Moves the connection's read and write deadlines to idle_ns from now.
 * ringo_fd_deadline_set costs a system call, so they are moved only when
 * they were last moved over idle_ns/16 ago: a client is dropped after
 * between 15/16 of idle_ns and idle_ns of silence.  Not after shutdown has
 * ended the connection.  Caller holds c->lock. */
#define DEADLINE_SLACK 16

static void deadline_move_locked(struct conn *c, int64_t now)
{
    if (c->killed)
        return;
    c->moved_at = now;
    ringo_fd_deadline_set(c->fd, RINGO_READ | RINGO_WRITE, now + idle_ns);
}

static void deadline_move(struct conn *c)
{
    int64_t now = ringo_now();
    if (now - c->moved_at < idle_ns / DEADLINE_SLACK)
        return; /* the usual case: no lock, no system call */
    ringo_mutex_lock(&c->lock);
    deadline_move_locked(c, now);
    ringo_mutex_unlock(&c->lock);
}

/* Waits, idle, until the next command begins to arrive.  false: close the
 * connection (the client left, was silent too long, or shutdown ended it). */
static bool conn_wait(struct conn *c)
{
    ringo_mutex_lock(&c->lock);
    bool stop = atomic_load_explicit(&draining, memory_order_relaxed);
    if (!stop) {
        c->idle = true;
        int64_t now = ringo_now();
        if (now - c->moved_at >= idle_ns / DEADLINE_SLACK)
            deadline_move_locked(c, now);
    }
    ringo_mutex_unlock(&c->lock);
    if (stop)
        return false;

    const char *p;
    ssize_t n = ringo_reader_peek(c->r, 1, &p);

    ringo_mutex_lock(&c->lock);
    c->idle = false;
    ringo_mutex_unlock(&c->lock);
    return n == 1;
}

/* Ends the connections that are idle, or all of them: deadlines in the
 * past end their blocked reads (and writes) at once. */
static void end_conns(bool all)
{
    int64_t past = ringo_now() - 1;
    ringo_mutex_lock(&reg_lock);
    for (struct conn *c = conns; c; c = c->next) {
        ringo_mutex_lock(&c->lock);
        if (all) {
            c->killed = true;
            ringo_fd_deadline_set(c->fd, RINGO_READ | RINGO_WRITE, past);
        } else if (c->idle) {
            ringo_fd_deadline_set(c->fd, RINGO_READ, past);
        }
        ringo_mutex_unlock(&c->lock);
    }
    ringo_mutex_unlock(&reg_lock);
}

/* ------------------------------------------------------------- the server */

static void conn_free(struct conn *c)
{
    ringo_reader_free(c->r);
    ringo_writer_free(c->w);
    free(c->args);
    free(c->buf);
    free(c->val);
    free(c);
}

static void serve(void *arg)
{
    struct conn *c = arg;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->r = ringo_reader_new(c->fd, IO_BUF, INLINE_MAX);
    c->w = ringo_writer_new(c->fd, IO_BUF);
    c->moved_at = INT64_MIN / 2; /* never: the first wait sets the deadlines */
    _Atomic uint64_t *count = &served[ringo_proc() % MAX_PROCS].n;

    bool done = !c->r || !c->w;
    while (!done && conn_wait(c)) {
        /* Busy until every command that has arrived is answered. */
        uint64_t n = 0;
        do {
            deadline_move(c);
            int st = read_command(c);
            if (st == READ_OK) {
                done = execute(c);
                n++;
            } else if (st == READ_BAD) {
                out_err(c, "Protocol error: %s", c->err);
                done = true;
            } else if (st == READ_EOF) {
                done = true;
            }
            if ((done || !command_buffered(c)) && ringo_writer_flush(c->w) < 0)
                c->werr = true;
        } while (!done && !c->werr && ringo_reader_buffered(c->r) > 0);
        atomic_fetch_add_explicit(count, n, memory_order_relaxed);
        if (c->werr)
            break;
        if (c->cap > 4 * IO_BUF) { /* after a large command: give the memory back */
            free(c->buf);
            c->buf = NULL;
            c->cap = 0;
        }
        if (c->valcap > 4 * IO_BUF) {
            free(c->val);
            c->val = NULL;
            c->valcap = 0;
        }
    }
    conn_unregister(c);
    ringo_close(c->fd);
    conn_free(c);
}

static void accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = ringo_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd == -EBADF)
            break; /* shutdown closed the listener */
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            ringo_sleep(10 * 1000000LL); /* out of resources: back off */
            continue;
        }
        if (fd < 0) {
            if (fd != -ECONNABORTED)
                fprintf(stderr, "kv: accept: %s\n", strerror(-fd));
            continue;
        }
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            ringo_close(fd);
            continue;
        }
        c->fd = fd;
        conn_register(c);
        if (ringo_go(serve, c) < 0) {
            conn_unregister(c);
            ringo_close(fd);
            free(c);
            continue;
        }
        atomic_fetch_add_explicit(&accepted, 1, memory_order_relaxed);
    }
    ringo_waitgroup_done(&acceptors);
}

/* Waits for SIGINT or SIGTERM and shuts down (see "Shutdown"); then every
 * goroutine has ended or is ending, and ringo_run returns. */
static void signals(void *arg)
{
    ringo_chan *sigc = arg;
    int sig;
    ringo_chan_recv(sigc, &sig);
    ringo_signal_stop(sigc); /* a second ^C kills, as usual */
    ringo_chan_release(sigc);
    fprintf(stderr, "kv: %s: shutting down\n", strsignal(sig));

    atomic_store_explicit(&draining, true, memory_order_relaxed);
    ringo_close(listener);
    ringo_waitgroup_wait(&acceptors);
    end_conns(false);
    if (ringo_waitgroup_wait_until(&live, ringo_now() + grace_ns) == -ETIMEDOUT) {
        fprintf(stderr, "kv: grace period over, ending the connections left\n");
        end_conns(true);
        ringo_waitgroup_wait(&live);
    }
}

static void start(void *arg)
{
    (void)arg;
    ringo_chan *sigc = ringo_chan_make(sizeof(int), 1);
    int sigs[] = { SIGINT, SIGTERM };
    if (!sigc || ringo_signal_notify(sigc, sigs, 2) < 0) {
        fprintf(stderr, "kv: cannot set up the signals\n");
        exit_status = 1;
        ringo_chan_release(sigc);
        return;
    }
    /* From here a signal waits in sigc (room for one) until the signal
     * goroutine, started last, takes it. */
    listener = ringo_tcp_listen(addr, port, 4096, 0);
    if (listener < 0) {
        fprintf(stderr, "kv: listen on %s:%s: %s\n", addr, port, strerror(-listener));
        exit_status = 1;
        ringo_signal_stop(sigc);
        ringo_chan_release(sigc);
        return;
    }
    /* An accept loop on every proc, on the one listener: each proc takes
     * connections for its own goroutines. */
    ringo_waitgroup_add(&acceptors, ringo_nprocs());
    for (int i = 0; i < ringo_nprocs(); i++)
        if (ringo_go_on(i, accept_loop, (void *)(intptr_t)listener) < 0)
            ringo_waitgroup_done(&acceptors);
    ringo_go(signals, sigc);
    fprintf(stderr, "kv: listening on %s:%s with %d procs\n", addr, port, ringo_nprocs());
}

static void usage(FILE *f)
{
    fprintf(f, "usage: kv [-a ADDR] [-p PORT] [-t PROCS] [-i SECONDS] [-g SECONDS]\n"
               "  -a ADDR     address to listen on (default 127.0.0.1)\n"
               "  -p PORT     port (default 6379)\n"
               "  -t PROCS    scheduler threads (default: one per CPU)\n"
               "  -i SECONDS  drop a client that sends nothing, or reads no answer,\n"
               "              this long (default 300)\n"
               "  -g SECONDS  on SIGINT/SIGTERM, let commands under way finish this long\n"
               "              (default 10)\n"
               "A Redis-protocol key-value server: PING, ECHO, SET [EX|PX], GET, MGET, DEL,\n"
               "INCR, QUIT.  Try: redis-cli -p 6379 set greeting hello\n");
}

/* A command-line count: digits only, 1 to max; else -1. */
static long number(const char *s, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return *s >= '0' && *s <= '9' && !*end && !errno && v >= 1 && v <= max ? v : -1;
}

int main(int argc, char **argv)
{
    struct ringo_config cfg = { 0 };
    int c;
    long n;
    while ((c = getopt(argc, argv, "a:p:t:i:g:h")) != -1) {
        switch (c) {
        case 'a': addr = optarg; break;
        case 'p': port = optarg; break;
        case 't':
            if ((n = number(optarg, 1 << 20)) < 0) {
                usage(stderr);
                return 2;
            }
            cfg.procs = (unsigned)n;
            break;
        case 'i':
        case 'g':
            if ((n = number(optarg, 100L * 365 * 24 * 3600)) < 0) {
                usage(stderr);
                return 2;
            }
            *(c == 'i' ? &idle_ns : &grace_ns) = n * SEC;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (cfg.procs > MAX_PROCS)
        cfg.procs = MAX_PROCS;
    if (!store_init()) {
        fprintf(stderr, "kv: out of memory\n");
        return 1;
    }
    int r = ringo_run(start, NULL, &cfg);
    if (r < 0) {
        fprintf(stderr, "kv: %s\n", strerror(-r));
        return 1;
    }
    if (exit_status)
        return exit_status;

    /* Every goroutine has ended: the counters are final. */
    uint64_t cmds = 0;
    for (int i = 0; i < MAX_PROCS; i++)
        cmds += atomic_load_explicit(&served[i].n, memory_order_relaxed);
    struct ringo_stats st;
    ringo_stats(&st);
    /* what st.enters counts */
    const char *waits = st.engine == RINGO_ENGINE_EPOLL ? "epoll_wait" : "io_uring_enter";
    fprintf(stderr,
            "kv: %llu commands on %llu connections; %s calls %llu (%.3f per command), "
            "SQEs %llu, switches %llu\n",
            (unsigned long long)cmds, (unsigned long long)atomic_load(&accepted), waits,
            (unsigned long long)st.enters, cmds ? (double)st.enters / (double)cmds : 0.0,
            (unsigned long long)st.submissions, (unsigned long long)st.switches);
    return 0;
}
