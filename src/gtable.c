/*
 * gtable.c — the goroutine table, the free lists of goroutine structs, and
 * the stack credit a spawn takes.
 *
 * A goroutine's struct is never freed during a run, only recycled: it has a
 * permanent slot in the table, which is how ringo_cancel(id) finds it from
 * any thread without a lock on the spawn path, and how dumps walk every
 * goroutine.  Spawning (spawn.c) takes a struct (g_alloc), a stack credit
 * (credit_take) and a fresh id (g_incarnate); exiting (sched.c g_exit, then
 * reclaim_dead) gives the struct and the credit back.
 */
#include "config.h"

#include "internal.h"
#include "scheduler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---------------------------------------------------------------------- */
/* Goroutine table: id -> struct rg.
 *
 * ringo_cancel(id) must find a goroutine from any thread without a lock on
 * the spawn path.  Goroutine structs are never freed during a run, only
 * recycled, and each has a permanent slot in gtab.  An id encodes the slot
 * and the struct's incarnation: id = (gen << SLOT_BITS | slot) + 1, so the
 * first 16M goroutines have small ids and a recycled struct never repeats
 * an id.  A lookup reads gtab[slot] and compares g->id (acquire) with the id.
 */
#define SLOT_MAX (1u << SLOT_BITS)

static _Atomic(struct rg *) *gtab;       /* mmap'd, SLOT_MAX entries */
/* Where each slot's goroutine was created: the return address of the
 * ringo_go/ringo_go_on call (NULL: ringo_run's main goroutine), for dumps.
 * A table beside gtab rather than a field of struct rg, whose three cache
 * lines are full: spawn stores it (relaxed; a dump reads it relaxed and may
 * pair an id with the creator of the slot's previous or next incarnation
 * while the slot is recycled under it, which a snapshot can afford).  The
 * same mapping as gtab, after it; only the pages of used slots are ever
 * touched. */
_Atomic(void *) *gorigin;
static _Atomic uint32_t gtab_next;        /* next unused slot */
struct gchunk { struct gchunk *next; struct rg g[GCHUNK]; };
static pthread_mutex_t gchunk_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gchunk *gchunks;            /* under gchunk_lock */

int gtable_init(void)
{
    void *m = seam_mmap(NULL, SLOT_MAX * (sizeof(*gtab) + sizeof(*gorigin)),
                        PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return -ENOMEM;
    gtab = m;
    gorigin = (void *)((char *)m + SLOT_MAX * sizeof(*gtab));
    store_relaxed(&gtab_next, 0);
    return 0;
}

void gtable_fini(void)
{
    pthread_mutex_lock(&gchunk_lock);
    struct gchunk *c = gchunks;
    gchunks = NULL;
    pthread_mutex_unlock(&gchunk_lock);
    while (c) {
        struct gchunk *n = c->next;
        free(c);
        c = n;
    }
    if (gtab)
        munmap((void *)gtab, SLOT_MAX * (sizeof(*gtab) + sizeof(*gorigin)));
    gtab = NULL;
    gorigin = NULL;
}

/* Allocate a fresh chunk of goroutine structs and chain them on *list. */
static int gchunk_new(struct rg **list, size_t *n)
{
    /* Reserve GCHUNK slots without ever moving gtab_next past SLOT_MAX
     * (gtable_foreach reads every slot below it). */
    uint32_t base = load_relaxed(&gtab_next);
    do {
        if (base > SLOT_MAX - GCHUNK)
            return -ENOMEM;
        /* relaxed: only uniqueness of the range matters; the slots are
         * published with the release stores below */
    } while (!atomic_compare_exchange_weak_explicit(&gtab_next, &base, base + GCHUNK,
                                                    memory_order_relaxed, memory_order_relaxed));
    /* aligned: struct rg's lines (internal.h) must be real cache lines */
    struct gchunk *c = seam_aligned_alloc(_Alignof(struct gchunk), sizeof *c);
    if (c)
        memset(c, 0, sizeof *c);
    if (!c)
        return -ENOMEM; /* the slots stay unused (NULL entries are skipped) */
    for (int i = GCHUNK - 1; i >= 0; i--) {
        struct rg *g = &c->g[i];
        g->slot = base + (uint32_t)i;
        g->gen = UINT32_MAX; /* the first incarnation becomes 0 */
        store_relaxed(&g->park, PARK_CLAIMED);
        /* release: a lookup that finds the pointer sees the slot fields */
        store_release(&gtab[g->slot], g);
        g->next = *list;
        *list = g;
        (*n)++;
    }
    pthread_mutex_lock(&gchunk_lock);
    c->next = gchunks;
    gchunks = c;
    pthread_mutex_unlock(&gchunk_lock);
    return 0;
}

struct rg *gtable_lookup(int64_t id)
{
    if (id <= 0 || !gtab)
        return NULL;
    uint64_t slot = (uint64_t)(id - 1) & (SLOT_MAX - 1);
    if (slot >= load_relaxed(&gtab_next))
        return NULL;
    /* acquire: pairs with the release in gchunk_new */
    struct rg *g = load_acquire(&gtab[slot]);
    if (!g || load_acquire(&g->id) != id)
        return NULL;
    return g;
}

void *goroutine_creator(const struct rg *g)
{
    return load_relaxed(&gorigin[g->slot]); /* see gorigin */
}

void gtable_foreach(void (*fn)(struct rg *g, void *arg), void *arg)
{
    uint32_t n = load_relaxed(&gtab_next);
    for (uint32_t s = 0; s < n; s++) {
        struct rg *g = load_acquire(&gtab[s]);
        if (g && load_acquire(&g->id) > 0)
            fn(g, arg);
    }
}

/*
 * Free goroutine structs.  A goroutine's struct goes back to the free list
 * of the proc it exits on, which need not be the one that spawns (a
 * producer proc spawning for a consumer proc, donation, plain threads).
 * So a proc whose list grows past GFREE_MAX hands GCHUNK structs to the
 * global list, and a proc that runs dry takes GCHUNK from it before
 * allocating new ones.  Plain threads use the global list directly.
 */

static struct rg *global_gfree;    /* under gchunk_lock */
static size_t global_ngfree;

/* g_alloc (scheduler.h) when p's own list is empty. */
struct rg *g_alloc_slow(struct rproc *p)
{
    struct rg *g;
    pthread_mutex_lock(&gchunk_lock);
    if (global_gfree) {
        g = global_gfree;
        global_gfree = g->next;
        global_ngfree--;
        /* refill the proc's list with up to a chunk more */
        for (int i = 1; p && i < GCHUNK && global_gfree; i++) {
            struct rg *x = global_gfree;
            global_gfree = x->next;
            global_ngfree--;
            x->next = p->gfree;
            p->gfree = x;
            p->ngfree++;
        }
        pthread_mutex_unlock(&gchunk_lock);
        return g;
    }
    pthread_mutex_unlock(&gchunk_lock);
    struct rg *list = NULL;
    size_t n = 0;
    if (gchunk_new(&list, &n) != 0)
        return NULL;
    g = list;
    list = list->next;
    if (p) {
        struct rg *last = list;
        while (last && last->next)
            last = last->next;
        if (last) {
            last->next = p->gfree;
            p->gfree = list;
            p->ngfree += n - 1;
        }
    } else if (list) {
        struct rg *last = list;
        while (last->next)
            last = last->next;
        pthread_mutex_lock(&gchunk_lock);
        last->next = global_gfree;
        global_gfree = list;
        global_ngfree += n - 1;
        pthread_mutex_unlock(&gchunk_lock);
    }
    return g;
}

/* g_free (scheduler.h) when p's list has grown past GFREE_MAX. */
void g_free_spill(struct rproc *p)
{
    struct rg *first = p->gfree, *last = first;
    for (int i = 1; i < GCHUNK; i++)
        last = last->next;
    p->gfree = last->next;
    p->ngfree -= GCHUNK;
    pthread_mutex_lock(&gchunk_lock);
    last->next = global_gfree;
    global_gfree = first;
    global_ngfree += GCHUNK;
    pthread_mutex_unlock(&gchunk_lock);
}

void gtable_reset_foreign(void)
{
    global_gfree = NULL;
    global_ngfree = 0;
}

/* ---------------------------------------------------------------------- */
/* Stack credit.
 *
 * A goroutine gets its stack when it first runs, but ringo_go must fail
 * with -ENOMEM up front when no stack could be had.  So spawning takes one
 * credit, a promise of a stack, and exiting gives it back.  Credits come
 * from the global pool in batches (the pool maps regions to back them), so
 * the common spawn costs a decrement of a proc-local counter.
 */
/* credit_take (scheduler.h) for a plain thread, or a proc without
 * credit. */
int credit_take_slow(struct rproc *p)
{
    if (!p)
        return stack_reserve(1);
    int r = stack_reserve(CREDIT_BATCH);
    if (r)
        return r;
    p->credit = CREDIT_BATCH - 1;
    return 0;
}

/* credit_give (scheduler.h) once p holds more than 4 * CREDIT_BATCH. */
void credit_give_spill(struct rproc *p)
{
    stack_unreserve(2 * CREDIT_BATCH);
    p->credit -= 2 * CREDIT_BATCH;
}
