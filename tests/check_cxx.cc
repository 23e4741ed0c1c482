/*
 * check_cxx.cc — ringo.h from C++: a program written as a C++ user would
 * write one (lambdas as goroutine bodies, a typed channel wrapper, an RAII
 * guard over ringo_mutex), linked against the installed-style libringo.
 *
 * A plain program: exit 0 when every check holds, 1 on the first that does
 * not, 77 when io_uring cannot be set up here.  Whether the header compiles
 * under each C++ standard is tests/cxx_header.sh's job; this one proves the
 * declarations link and behave when called from C++.
 */
#include <ringo.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

int failures;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                               \
        }                                                                             \
    } while (0)

/* A channel of T, closed and released by its owner. */
template <typename T>
class chan {
public:
    explicit chan(size_t cap) : c_(ringo_chan_make(sizeof(T), cap)) {}
    ~chan() { ringo_chan_release(c_); }
    chan(const chan &) = delete;
    chan &operator=(const chan &) = delete;
    bool ok() const { return c_ != nullptr; }
    int send(const T &v) { return ringo_chan_send(c_, &v); }
    int recv(T &v) { return ringo_chan_recv(c_, &v); }
    int close() { return ringo_chan_close(c_); }
    ringo_chan *raw() { return c_; }

private:
    ringo_chan *c_;
};

class lock_guard {
public:
    explicit lock_guard(ringo_mutex &m) : m_(m) { ringo_mutex_lock(&m_); }
    ~lock_guard() { ringo_mutex_unlock(&m_); }
    lock_guard(const lock_guard &) = delete;
    lock_guard &operator=(const lock_guard &) = delete;

private:
    ringo_mutex &m_;
};

struct item {
    int producer;
    int seq;
};

const int producers = 8;
const int per_producer = 200;

struct shared {
    chan<item> items{0};            /* unbuffered: every send meets a receive */
    chan<int> done{producers};      /* one value per finished producer */
    ringo_mutex mu = RINGO_MUTEX_INIT;
    ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    /* Guarded by mu; each update yields inside the critical section, so a
     * mutex that let two goroutines in would lose updates. */
    long total = 0;
    std::vector<std::vector<int>> seen =
        std::vector<std::vector<int>>(producers, std::vector<int>(per_producer, 0));
    long received = 0;
    bool after_exit_ran = false;
};

struct producer_arg {
    shared *s;
    int id;
};

void producer(void *p)
{
    producer_arg *a = static_cast<producer_arg *>(p);
    for (int i = 0; i < per_producer; i++) {
        item it = {a->id, i};
        CHECK(a->s->items.send(it) == 0);
    }
    int id = a->id;
    CHECK(a->s->done.send(id) == 0);
    delete a;
}

void consumer(void *p)
{
    shared *s = static_cast<shared *>(p);
    item it;
    while (s->items.recv(it) == 0) {
        lock_guard g(s->mu);
        long t = s->total;
        ringo_yield(); /* another consumer runs here if the lock lets it */
        s->total = t + it.seq;
        s->received++;
        s->seen.at(it.producer).at(it.seq)++;
    }
    ringo_waitgroup_done(&s->wg);
}

[[noreturn]] void leave(shared *s)
{
    ringo_exit();
    s->after_exit_ran = true; /* unreachable: ringo_exit does not return */
}

void main_goroutine(void *p)
{
    shared *s = static_cast<shared *>(p);
    CHECK(s->items.ok() && s->done.ok());
    CHECK(ringo_id() > 0);

    const int consumers = 4;
    ringo_waitgroup_add(&s->wg, consumers);
    for (int i = 0; i < consumers; i++)
        CHECK(ringo_go(consumer, s) > 0);
    for (int i = 0; i < producers; i++)
        CHECK(ringo_go(producer, new producer_arg{s, i}) > 0);

    /* A captureless lambda is a plain function pointer. */
    CHECK(ringo_go([](void *q) { leave(static_cast<shared *>(q)); }, s) > 0);

    for (int i = 0; i < producers; i++) {
        int id = -1;
        ringo_case cases[2] = {
            {s->done.raw(), RINGO_RECV, &id, 0},
            {nullptr, RINGO_RECV, nullptr, 0}, /* nil channel: never chosen */
        };
        CHECK(ringo_select(cases, 2, 0) == 0);
        CHECK(cases[0].err == 0 && id >= 0 && id < producers);
    }
    CHECK(s->items.close() == 0);
    ringo_waitgroup_wait(&s->wg);
}

} // namespace

int main()
{
    shared *s = new shared;
    ringo_config cfg = {};
    cfg.procs = 2;
    /* ringo_run is a macro (ringo_run(3)): a lambda with commas in its
     * body is still one argument. */
    int r = ringo_run(
        [](void *p) {
            int a = 0, b = 0;
            CHECK(a == b);
            main_goroutine(p);
        },
        s, &cfg);
    if (r == -ENOSYS || r == -EPERM || r == -ENOMEM) {
        std::printf("SKIP: io_uring cannot be set up here (ringo_run: %s)\n", std::strerror(-r));
        return 77;
    }
    CHECK(r == 0);
    CHECK(s->received == long(producers) * per_producer);
    CHECK(s->total == long(producers) * per_producer * (per_producer - 1) / 2);
    bool each_once = true; /* every item sent arrived exactly once */
    for (const std::vector<int> &p : s->seen)
        for (int n : p)
            each_once = each_once && n == 1;
    CHECK(each_once);
    CHECK(!s->after_exit_ran);
    CHECK(ringo_count() == 0);

    /* The function ringo_stats hides the struct's name in C++ as in C: it
     * takes the elaborated "struct ringo_stats". */
    struct ringo_stats st;
    CHECK(ringo_stats(&st) == 0);
    /* main, 4 consumers, 8 producers and the one that called ringo_exit */
    CHECK(st.spawned == 1 + 4 + producers + 1);
    CHECK(st.goroutines == 0);
    delete s;

    if (failures) {
        std::fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    std::printf("ok: goroutines, channels, select, a mutex and ringo_exit from C++\n");
    return 0;
}
