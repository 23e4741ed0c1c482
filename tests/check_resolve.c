/*
 * check_resolve.c — ringo_tcp_dial while name resolution is slow: the
 * deadline and ringo_cancel end the dial during getaddrinfo, other
 * goroutines on the same proc keep running, and a lookup that completes
 * after its goroutine gave up is cleaned up without touching that
 * goroutine's stack (ASan and valgrind builds would catch a use after
 * free).
 *
 * A resolver cannot be made slow from outside, so this program defines
 * getaddrinfo itself.  The library is linked in statically here, so its
 * calls bind to this definition, which holds names under ".slow.test"
 * until the test opens a gate and then answers 127.0.0.1; every other name
 * goes to the C library's getaddrinfo.  The tests open the gate only after
 * they have seen what must happen while the lookup is held, so they decide
 * on orderings, not on times.  The hold is bounded (20 s, counted in
 * gate_waited_out): a runtime that wrongly waits for the lookup gets its
 * answer late, and the test fails on what that answer was.
 */
#include "testutil.h"

#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static unsigned nprocs_param = 1;

static atomic_int lookups_started, lookups_done;
static atomic_int gate, gate_waited_out;

/* The answers this program made, so that freeaddrinfo knows them. */
static pthread_mutex_t ours_lock = PTHREAD_MUTEX_INITIALIZER;
static struct addrinfo *ours[64];

static void mark_ours(struct addrinfo *ai)
{
    pthread_mutex_lock(&ours_lock);
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        if (!ours[i]) {
            ours[i] = ai;
            pthread_mutex_unlock(&ours_lock);
            return;
        }
    pthread_mutex_unlock(&ours_lock);
    abort(); /* more answers alive at once than any test makes */
}

static bool take_ours(struct addrinfo *ai)
{
    bool found = false;
    pthread_mutex_lock(&ours_lock);
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        if (ours[i] == ai) {
            ours[i] = NULL;
            found = true;
        }
    pthread_mutex_unlock(&ours_lock);
    return found;
}

static int answers_alive(void)
{
    int n = 0;
    pthread_mutex_lock(&ours_lock);
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        n += ours[i] != NULL;
    pthread_mutex_unlock(&ours_lock);
    return n;
}

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *,
                      struct addrinfo **);

int getaddrinfo(const char *host, const char *serv, const struct addrinfo *hints,
                struct addrinfo **res)
{
    const char *suffix = ".slow.test";
    size_t hl = host ? strlen(host) : 0, sl = strlen(suffix);
    if (hl <= sl || strcmp(host + hl - sl, suffix) != 0) {
        gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
        if (!real)
            return EAI_SYSTEM;
        return real(host, serv, hints, res);
    }
    if (hints && (hints->ai_flags & AI_NUMERICHOST))
        return EAI_NONAME; /* as the C library answers for a name */
    atomic_fetch_add(&lookups_started, 1);
    int i = 0;
    while (!atomic_load(&gate) && i++ < 20000)
        usleep(1000);
    if (!atomic_load(&gate))
        atomic_fetch_add(&gate_waited_out, 1);
    struct {
        struct addrinfo ai;
        struct sockaddr_in sin;
    } *a = calloc(1, sizeof *a);
    if (!a)
        return EAI_MEMORY;
    a->sin.sin_family = AF_INET;
    a->sin.sin_port = htons((uint16_t)atoi(serv));
    a->sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->ai.ai_family = AF_INET;
    a->ai.ai_socktype = SOCK_STREAM;
    a->ai.ai_protocol = IPPROTO_TCP;
    a->ai.ai_addr = (struct sockaddr *)&a->sin;
    a->ai.ai_addrlen = sizeof a->sin;
    mark_ours(&a->ai);
    *res = &a->ai;
    atomic_fetch_add(&lookups_done, 1);
    return 0;
}

/* Answers made above are freed here; the C library's go back to it. */
void freeaddrinfo(struct addrinfo *ai)
{
    if (ai && take_ours(ai)) {
        free(ai);
        return;
    }
    void (*real)(struct addrinfo *) = (void (*)(struct addrinfo *))dlsym(RTLD_NEXT, "freeaddrinfo");
    if (real)
        real(ai);
}

static void local_port(int fd, char *buf, size_t len)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    snprintf(buf, len, "%d", ntohs(sin.sin_port));
}

static atomic_int ticks;

static void ticker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        ringo_sleep(1 * MS);
        atomic_fetch_add(&ticks, 1);
    }
    atomic_store(&gate, 1);
}

/* A slow lookup that succeeds: the dial connects, and only the dialling
 * goroutine waited (a ticker on the same proc ran meanwhile: it opens the
 * gate that ends the lookup after its twenty sleeps). */
static void main_slow_ok(void *arg)
{
    (void)arg;
    char port[16];
    int l = ringo_tcp_listen("127.0.0.1", "0", 16, 0);
    ck_assert_int_ge(l, 0);
    local_port(l, port, sizeof port);

    atomic_store(&ticks, 0);
    ringo_go_on(ringo_proc(), ticker, NULL);
    int c = ringo_tcp_dial("gate.slow.test", port);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(atomic_load(&ticks), 20);
    ck_assert_int_eq(atomic_load(&gate_waited_out), 0);
    int a = ringo_accept(l, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(a, 0);
    ck_assert_int_eq(ringo_write(c, "hi", 2), 2);
    char buf[2];
    ck_assert_int_eq(ringo_read(a, buf, 2), 2);
    ck_assert(memcmp(buf, "hi", 2) == 0);
    ringo_close(a);
    ringo_close(c);
    ringo_close(l);
}

START_TEST(slow_lookup_connects)
{
    atomic_store(&lookups_started, 0);
    atomic_store(&lookups_done, 0);
    atomic_store(&gate, 0);
    RUN(main_slow_ok, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&lookups_done), 1);
    ck_assert_int_eq(answers_alive(), 0);
}
END_TEST

/* The deadline passes while getaddrinfo still runs: the dial returns
 * -ETIMEDOUT at the deadline, while the lookup is still held; the lookup
 * then finishes on its helper and its answer is freed (ringo_run waits for
 * offloaded work). */
static void main_slow_deadline(void *arg)
{
    (void)arg;
    ringo_deadline_set(ringo_now() + 50 * MS);
    int64_t t0 = ringo_now();
    ck_assert_int_eq(ringo_tcp_dial("gate.slow.test", "9"), -ETIMEDOUT);
    ck_assert_int_ge(ringo_now() - t0, 45 * MS); /* not before the deadline */
    ck_assert_int_eq(atomic_load(&lookups_started), 1);
    ck_assert_int_eq(atomic_load(&lookups_done), 0);
    atomic_store(&gate, 1);
    ringo_deadline_set(RINGO_NEVER);
}

START_TEST(deadline_during_lookup)
{
    atomic_store(&lookups_started, 0);
    atomic_store(&lookups_done, 0);
    atomic_store(&gate, 0);
    RUN(main_slow_deadline, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&lookups_done), 1);
    ck_assert_int_eq(answers_alive(), 0);
}
END_TEST

/* ringo_cancel of a goroutine waiting in a slow lookup. */
struct dialer { atomic_int result; };

static void dialing(void *arg)
{
    struct dialer *d = arg;
    atomic_store(&d->result, ringo_tcp_dial("gate.slow.test", "9"));
}

static void main_slow_cancel(void *arg)
{
    (void)arg;
    struct dialer d = { .result = 1 };
    int64_t id = ringo_go(dialing, &d);
    ck_assert_int_gt(id, 0);
    while (atomic_load(&lookups_started) == 0)
        ringo_sleep(1 * MS);
    ck_assert_int_eq(ringo_cancel(id), 0);
    while (atomic_load(&d.result) == 1)
        ringo_sleep(1 * MS);
    ck_assert_int_eq(atomic_load(&d.result), -ECANCELED);
    ck_assert_int_eq(atomic_load(&lookups_done), 0); /* back while the lookup is held */
    atomic_store(&gate, 1);
}

START_TEST(cancel_during_lookup)
{
    atomic_store(&lookups_started, 0);
    atomic_store(&lookups_done, 0);
    atomic_store(&gate, 0);
    RUN(main_slow_cancel, NULL, nprocs_param);
    ck_assert_int_eq(atomic_load(&lookups_done), 1);
    ck_assert_int_eq(answers_alive(), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("resolve");
    TCase *tc = tcase_create("resolve");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, slow_lookup_connects);
    tcase_add_test(tc, deadline_during_lookup);
    tcase_add_test(tc, cancel_during_lookup);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    skip_without_io_uring();
    return run_per_procs(suite, &nprocs_param);
}
