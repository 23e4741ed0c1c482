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
 * recycled, and each has a permanent slot.  An id encodes the slot and the
 * struct's incarnation: id = (gen << SLOT_BITS | slot) + 1, so the first
 * 16M goroutines have small ids and a recycled struct never repeats an id.
 * The struct keeps, while free, the negated id of its next incarnation
 * (struct rg.id): a spawn takes it without knowing the slot, and a lookup
 * finds the struct from the slot and compares g->id (acquire) with the id.
 *
 * Ids are unique in the process, not only in a run: a run's fresh
 * structs start at the generation after the highest an earlier run
 * reached (gen_base), so an id kept from an earlier run names no
 * goroutine of this one (ringo_cancel(3): -ESRCH), as its man page says.
 * The first run's main goroutine is 1.
 *
 * Goroutine chunks.  Structs (line 0 of a goroutine, internal.h: lines 1
 * and 2 come with its stack) come in chunks of GCHUNK, a page each: a
 * header line, then the structs of slots chunk * GCHUNK ... chunk * GCHUNK
 * + GCHUNK - 1.  Chunks are cut from regions mapped one chunk at a time at
 * first, twice as many each time up to GREGION_CHUNKS; a region that cannot be mapped is what makes ringo_go fail with
 * -ENOMEM.  The table gctab maps a chunk number (slot / GCHUNK) to its
 * header.
 *
 * Slot records.  What a goroutine needs only to start (arg) and what
 * dumps alone read (its creator) sit in gslots[slot], beside the table
 * rather than in struct rg, whose line is full: 16 bytes more per
 * goroutine, written by the spawn that incarnates the slot.  The creator
 * is stored relaxed and read relaxed by dumps, which may pair an id with
 * the creator of the slot's previous or next incarnation while the slot
 * is recycled under them, which a snapshot can afford.  Only the pages of
 * used slots are ever touched.
 */
#define SLOT_MAX (1u << SLOT_BITS)
#define GCHUNK_MAX (SLOT_MAX / GCHUNK)   /* chunks that fit in the slots */
#define GCHUNK_BYTES 4096
#define GCTAB_BYTES (((GCHUNK_MAX * sizeof(void *)) + 4095) & ~(size_t)4095)
#define GTAB_BYTES (GCTAB_BYTES + SLOT_MAX * sizeof(struct gslot))
#define GREGION_CHUNKS 64                 /* at most 4032 goroutines, 256 KiB a region */
_Static_assert(GCHUNK_BYTES == (GCHUNK + 1) * sizeof(struct rg), "a chunk's page holds its header and GCHUNK structs");

/* A chunk's header line; the first chunk of a region records the region,
 * for gtable_fini. */
struct gchunk_hdr {
    uint32_t region_chunks;     /* first chunk of a region: the region's size in chunks */
    struct gchunk_hdr *region;  /* first chunk of a region: the previous region's (under gchunk_lock) */
} __attribute__((aligned(64)));

/* mmap'd, GCHUNK_MAX entries; an entry is set (release) once, when its
 * chunk is made, and read (acquire) by lookups and walks. */
static _Atomic(struct gchunk_hdr *) *gctab;
struct gslot *gslots;                     /* mmap'd, SLOT_MAX entries, after gctab */
static _Atomic uint32_t gtab_next;        /* slots given to chunks so far: GCHUNK * chunks */
static pthread_mutex_t gchunk_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gchunk_hdr *gregions;       /* newest region's first chunk; under gchunk_lock */
static char *gcarve, *gcarve_end;         /* the unused rest of the newest region; under gchunk_lock */
static unsigned gregion_next = 1;         /* chunks in the next region; under gchunk_lock */
/* The first generation of this run's ids (see the top); set between runs
 * by gtable_fini, on ringo_run's thread, which no other run overlaps. */
static int64_t gen_base;

static struct rg *chunk_g(struct gchunk_hdr *h, uint32_t i)
{
    return (struct rg *)((char *)h + (i + 1) * sizeof(struct rg));
}

int gtable_init(void)
{
    void *m = seam_mmap(NULL, GTAB_BYTES, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return -ENOMEM;
    gctab = m;
    gslots = (struct gslot *)((char *)m + GCTAB_BYTES);
    store_relaxed(&gtab_next, 0);
    gregions = NULL;
    gcarve = gcarve_end = NULL;
    gregion_next = 1;
    return 0;
}

/* The generation after the highest this run's ids reached: every struct
 * holds its current id, or (negated) its next one. */
static int64_t gen_after_run(void)
{
    int64_t top = gen_base;
    uint32_t n = load_relaxed(&gtab_next) / GCHUNK; /* no goroutine runs: relaxed */
    for (uint32_t c = 0; c < n; c++) {
        struct gchunk_hdr *h = load_relaxed(&gctab[c]);
        if (!h)
            continue;
        for (uint32_t i = 0; i < GCHUNK; i++) {
            int64_t id = load_relaxed(&chunk_g(h, i)->id);
            int64_t gen = ((id < 0 ? -id : id) - 1) >> SLOT_BITS;
            if (gen >= top)
                top = gen + 1;
        }
    }
    return top;
}

void gtable_fini(void)
{
    if (gctab)
        gen_base = gen_after_run();
    pthread_mutex_lock(&gchunk_lock);
    struct gchunk_hdr *r = gregions;
    gregions = NULL;
    gcarve = gcarve_end = NULL;
    pthread_mutex_unlock(&gchunk_lock);
    while (r) {
        struct gchunk_hdr *prev = r->region;
        munmap(r, (size_t)r->region_chunks * GCHUNK_BYTES);
        r = prev;
    }
    if (gctab)
        munmap((void *)gctab, GTAB_BYTES);
    gctab = NULL;
    gslots = NULL;
}

/* Make a fresh chunk and chain its goroutine structs on *list (*n counts
 * them).  -ENOMEM when every slot is in use or no region can be mapped. */
static int gchunk_new(struct rg **list, size_t *n)
{
    pthread_mutex_lock(&gchunk_lock);
    /* relaxed: written only under the lock; readers only need a bound */
    uint32_t c = load_relaxed(&gtab_next) / GCHUNK;
    if (c >= GCHUNK_MAX) {
        pthread_mutex_unlock(&gchunk_lock);
        return -ENOMEM;
    }
    if (gcarve == gcarve_end) {
        unsigned nc = gregion_next;
        void *m = seam_mmap(NULL, (size_t)nc * GCHUNK_BYTES, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            pthread_mutex_unlock(&gchunk_lock);
            return -ENOMEM;
        }
        struct gchunk_hdr *r = m;
        r->region = gregions;
        r->region_chunks = nc;
        gregions = r;
        gcarve = m;
        gcarve_end = gcarve + (size_t)nc * GCHUNK_BYTES;
        if (gregion_next < GREGION_CHUNKS)
            gregion_next *= 2;
    }
    struct gchunk_hdr *h = (struct gchunk_hdr *)gcarve;
    gcarve += GCHUNK_BYTES;
    /* A fresh struct's park word is claimed with token 0; its id is that
     * of its first incarnation, negated (struct rg). */
    for (int i = GCHUNK - 1; i >= 0; i--) {
        struct rg *g = chunk_g(h, (uint32_t)i);
        store_relaxed(&g->park, PARK_CLAIMED);
        store_relaxed(&g->id, -((gen_base << SLOT_BITS) + (int64_t)(c * GCHUNK + (uint32_t)i) + 1));
        g->next = *list;
        *list = g;
        (*n)++;
    }
    /* release: a lookup or walk that finds the header sees the lines above */
    store_release(&gctab[c], h);
    store_relaxed(&gtab_next, (c + 1) * GCHUNK);
    pthread_mutex_unlock(&gchunk_lock);
    return 0;
}

struct rg *gtable_lookup(int64_t id)
{
    if (id <= 0 || !gctab)
        return NULL;
    uint32_t slot = (uint32_t)((uint64_t)(id - 1) & (SLOT_MAX - 1));
    if (slot / GCHUNK >= GCHUNK_MAX)
        return NULL;
    /* acquire: pairs with the release in gchunk_new */
    struct gchunk_hdr *h = load_acquire(&gctab[slot / GCHUNK]);
    if (!h)
        return NULL;
    struct rg *g = chunk_g(h, slot % GCHUNK);
    if (load_acquire(&g->id) != id)
        return NULL;
    return g;
}

void *goroutine_creator(const struct rg *g)
{
    int64_t id = load_relaxed(&((struct rg *)g)->id); /* either sign: the same slot */
    uint64_t slot = (uint64_t)((id < 0 ? -id : id) - 1) & (SLOT_MAX - 1);
    return load_relaxed(&gslots[slot].creator); /* see "Slot records" */
}

void gtable_foreach(void (*fn)(struct rg *g, void *arg), void *arg)
{
    uint32_t n = load_relaxed(&gtab_next) / GCHUNK;
    for (uint32_t c = 0; c < n; c++) {
        /* acquire: as in gtable_lookup */
        struct gchunk_hdr *h = load_acquire(&gctab[c]);
        if (!h)
            continue;
        for (uint32_t i = 0; i < GCHUNK; i++) {
            struct rg *g = chunk_g(h, i);
            if (load_acquire(&g->id) > 0)
                fn(g, arg);
        }
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
