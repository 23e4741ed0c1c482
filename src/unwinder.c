/*
 * unwinder.c — unwinding and symbolizing the stacks of parked goroutines,
 * for dumps and the deadlock report (runtime.c "Stacks in dumps").
 *
 * A parked goroutine's stack is not the stack of any thread: the registers
 * its switch saved are all there is to start from (fiber_saved_regs), and
 * the stack belongs to a goroutine that another thread may resume while
 * the dump reads it.  So the unwinder must (1) start from given registers,
 * and (2) let us decide about every word of memory it reads, so that no
 * read ever leaves the goroutine's own stack, whatever the stack holds.
 *
 * With libdw (elfutils, configure finds it): dwfl_attach_state with our own
 * thread callbacks.  set_initial_registers hands it the saved registers;
 * memory_read is the only way it reads the unwound stack, and ours refuses
 * any address outside [lo, hi) (the goroutine's stack) and reads the rest
 * with fiber_peek.  The call frame information comes from the modules' ELF
 * files (.eh_frame, or .debug_frame), so this works on code built with
 * -O2 and without frame pointers, and libdw names static functions (from
 * .symtab) and gives file:line where the module has DWARF line tables.
 *   libunwind was the other candidate (unw_init_local on an unw_context_t
 *   filled from the saved registers), and was not taken: its local
 *   accessors dereference whatever address a frame yields (at best after
 *   checking that the page is mapped), with no bound we can set, so a
 *   goroutine resumed while we read, or a corrupt stack, could send it
 *   outside the stack.  libdw also gives file:line in the same package.
 *   libgcc's _Unwind_Backtrace only walks the current stack.
 *
 * Without libdw, or if it cannot be set up (no /proc): a frame-pointer
 * walk, bounded by the same [lo, hi) and by UNWIND_FRAMES, with each frame
 * record above the last, and dladdr for the names.  It is complete only
 * for code built with -fno-omit-frame-pointer (ringo(7), ringo_dump(3)).
 */
#include "config.h"

#include "unwinder.h"

#include <dlfcn.h>
#include <link.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_LIBDW
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#endif

struct unwinder {
#ifdef HAVE_LIBDW
    Dwfl *dwfl;                 /* NULL: the frame-pointer walk */
    /* the fiber being unwound (unwind_fiber sets them) */
    const struct fiber_regs *r;
    uintptr_t lo, hi;
    uintptr_t *pcs;
    int n, max;
#else
    char unused;
#endif
};

/* A word of the unwound stack: aligned, and all of it in [lo, hi). */
static bool in_stack(uintptr_t addr, uintptr_t lo, uintptr_t hi)
{
    return (addr & 7) == 0 && addr >= lo && addr < hi && hi - addr >= 8;
}

/* ---------------------------------------------------------------------- */
/* libdw */

#ifdef HAVE_LIBDW

/* The one "thread" of our Dwfl: the fiber being unwound. */
#define FIBER_TID 1

static pid_t cb_next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
    (void)dwfl;
    (void)arg;
    (void)thread_argp;
    return 0; /* listed by nobody; get_thread finds it */
}

static bool cb_get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
    (void)dwfl;
    *thread_argp = arg;
    return tid == FIBER_TID;
}

/* Every read of the stack the unwinder makes: only inside the fiber's own
 * stack, so that nothing it finds there can make it read elsewhere. */
static bool cb_memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
    (void)dwfl;
    struct unwinder *u = arg;
    if (!in_stack((uintptr_t)addr, u->lo, u->hi))
        return false;
    *result = fiber_peek((const void *)(uintptr_t)addr);
    return true;
}

static bool cb_set_initial_registers(Dwfl_Thread *thread, void *arg)
{
    struct unwinder *u = arg;
    const struct fiber_regs *r = u->r;
    for (unsigned i = 0; i < r->n; i++) {
        Dwarf_Word v = r->val[i];
        if (!dwfl_thread_state_registers(thread, r->no[i], 1, &v))
            return false;
    }
    dwfl_thread_state_register_pc(thread, r->pc);
    return true;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
    .next_thread = cb_next_thread,
    .get_thread = cb_get_thread,
    .memory_read = cb_memory_read,
    .set_initial_registers = cb_set_initial_registers,
};

/* Separate debug information only from the local build-id directories:
 * dwfl_standard_find_debuginfo may ask a debuginfod server over the
 * network, which a dump taken in a signal's aftermath must not wait for. */
static char *debuginfo_path;
static const Dwfl_Callbacks proc_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_build_id_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

static int cb_frame(Dwfl_Frame *state, void *arg)
{
    struct unwinder *u = arg;
    Dwarf_Addr pc;
    if (!dwfl_frame_pc(state, &pc, NULL) || pc == 0)
        return DWARF_CB_ABORT;
    u->pcs[u->n++] = (uintptr_t)pc;
    return u->n < u->max ? DWARF_CB_OK : DWARF_CB_ABORT;
}

static Dwfl *dwfl_open_self(struct unwinder *u)
{
    Dwfl *d = dwfl_begin(&proc_callbacks);
    if (!d)
        return NULL;
    dwfl_report_begin(d);
    if (dwfl_linux_proc_report(d, getpid()) != 0 || dwfl_report_end(d, NULL, NULL) != 0 ||
        !dwfl_attach_state(d, NULL, getpid(), &thread_callbacks, u)) {
        dwfl_end(d);
        return NULL;
    }
    return d;
}

/* The file and line of the code at `at`, or NULL.  libdw finds the
 * compilation unit through .debug_aranges, which clang does not emit by
 * default: then each unit's own address ranges are asked. */
static const char *source_line(Dwfl_Module *m, Dwarf_Addr at, int *lineno)
{
    Dwfl_Line *line = dwfl_module_getsrc(m, at);
    if (line)
        return dwfl_lineinfo(line, NULL, lineno, NULL, NULL, NULL);
    Dwarf_Addr bias = 0;
    for (Dwarf_Die *cu = NULL; (cu = dwfl_module_nextcu(m, cu, &bias));) {
        if (dwarf_haspc(cu, at - bias) <= 0)
            continue;
        Dwarf_Line *l = dwarf_getsrc_die(cu, at - bias);
        if (!l || dwarf_lineno(l, lineno) != 0)
            return NULL;
        return dwarf_linesrc(l, NULL, NULL);
    }
    return NULL;
}

#endif /* HAVE_LIBDW */

/* ---------------------------------------------------------------------- */

bool unwind_frame_pointers_only;

/* Out of memory for the state: frame pointers and dladdr, which need none. */
static struct unwinder no_state;

struct unwinder *unwinder_open(bool use_libdw)
{
    struct unwinder *u = calloc(1, sizeof *u);
    if (!u)
        return &no_state;
#ifdef HAVE_LIBDW
    if (use_libdw && !unwind_frame_pointers_only)
        u->dwfl = dwfl_open_self(u);
#else
    (void)use_libdw;
#endif
    return u;
}

void unwinder_close(struct unwinder *u)
{
    if (u == &no_state)
        return;
#ifdef HAVE_LIBDW
    if (u->dwfl)
        dwfl_end(u->dwfl);
#endif
    free(u);
}

const char *unwinder_kind(const struct unwinder *u)
{
#ifdef HAVE_LIBDW
    if (u->dwfl)
        return "libdw";
#else
    (void)u;
#endif
    return "frame pointers";
}

/* The frame-pointer walk: on x86-64 and aarch64 alike a frame record is
 * two words, the caller's frame pointer and the return address, and the
 * frame pointer register points at it.  Each record must lie in the stack,
 * above the last one (stacks grow down), so the walk ends, and never reads
 * outside [lo, hi). */
static int walk_frame_pointers(const struct fiber_regs *r, uintptr_t lo, uintptr_t hi,
                               uintptr_t *pcs, int max)
{
    int n = 0;
    if (max <= 0 || !r->pc)
        return 0;
    pcs[n++] = (uintptr_t)r->pc;
    uintptr_t fp = (uintptr_t)r->fp, floor = (uintptr_t)r->sp;
    while (n < max && fp >= floor && in_stack(fp, lo, hi) && in_stack(fp + 8, lo, hi)) {
        uintptr_t next = (uintptr_t)fiber_peek((const void *)fp);
        uintptr_t ret = (uintptr_t)fiber_peek((const void *)(fp + 8));
        if (!ret)
            break;
        pcs[n++] = ret;
        if (next <= fp)
            break;
        floor = fp + 16;
        fp = next;
    }
    return n;
}

int unwind_fiber(struct unwinder *u, const struct fiber_regs *r, const char *lo, const char *hi,
                 uintptr_t *pcs, int max)
{
#ifdef HAVE_LIBDW
    if (u->dwfl) {
        u->r = r;
        u->lo = (uintptr_t)lo;
        u->hi = (uintptr_t)hi;
        u->pcs = pcs;
        u->n = 0;
        u->max = max;
        if (max > 0)
            (void)dwfl_getthread_frames(u->dwfl, FIBER_TID, cb_frame, u); /* an error ends the stack */
        return u->n;
    }
#else
    (void)u;
#endif
    return walk_frame_pointers(r, (uintptr_t)lo, (uintptr_t)hi, pcs, max);
}

bool unwind_symbol(struct unwinder *u, uintptr_t addr, char *buf, size_t len)
{
#ifdef HAVE_LIBDW
    Dwfl_Module *m = u->dwfl ? dwfl_addrmodule(u->dwfl, addr) : NULL;
    GElf_Off off = 0;
    GElf_Sym sym;
    const char *fn = m ? dwfl_module_addrinfo(m, addr, &off, &sym, NULL, NULL, NULL) : NULL;
    if (!fn)
        return false;
    if (off)
        snprintf(buf, len, "%s+0x%llx", fn, (unsigned long long)off);
    else
        snprintf(buf, len, "%s", fn);
    return true;
#else
    (void)u;
    (void)addr;
    (void)buf;
    (void)len;
    return false;
#endif
}

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* Every pc of a stack is a return address: the call is the instruction
 * before it, which is what names the function and the line (a call may be
 * a function's last instruction, its return address the next function's
 * first).  The offsets printed are those of the return address itself. */
void unwind_describe(struct unwinder *u, uintptr_t pc, char *buf, size_t len)
{
    uintptr_t at = pc - 1;
#ifdef HAVE_LIBDW
    Dwfl_Module *m = u->dwfl ? dwfl_addrmodule(u->dwfl, at) : NULL;
    if (m) {
        const char *mname = NULL;
        dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, &mname, NULL);
        GElf_Addr bias = 0;
        (void)dwfl_module_getelf(m, &bias);
        GElf_Off off = 0;
        GElf_Sym sym;
        const char *fn = dwfl_module_addrinfo(m, at, &off, &sym, NULL, NULL, NULL);
        int w = fn ? snprintf(buf, len, "%s+0x%llx", fn, (unsigned long long)off + 1)
                   : snprintf(buf, len, "?");
        if (w < 0 || (size_t)w >= len)
            return;
        int w2 = snprintf(buf + w, len - (size_t)w, " (%s+0x%llx)", base_name(mname ? mname : "?"),
                          (unsigned long long)(pc - bias));
        if (w2 < 0 || (size_t)(w + w2) >= len)
            return;
        int lineno = 0;
        const char *file = source_line(m, at, &lineno);
        if (file && lineno > 0)
            snprintf(buf + w + w2, len - (size_t)(w + w2), " %s:%d", file, lineno);
        return;
    }
#else
    (void)u;
#endif
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    struct link_map *map = NULL;
    if (!dladdr1((void *)at, &info, (void **)&sym, RTLD_DL_SYMENT) || !info.dli_fname) {
        snprintf(buf, len, "%#lx", (unsigned long)pc);
        return;
    }
    if (!dladdr1((void *)at, &info, (void **)&map, RTLD_DL_LINKMAP))
        map = NULL;
    uintptr_t bias = map ? (uintptr_t)map->l_addr : (uintptr_t)info.dli_fbase;
    /* dladdr names the nearest dynamic symbol below the address, which a
     * static function's code may lie past: only a symbol that covers it. */
    if (info.dli_sname && info.dli_saddr && sym &&
        at - (uintptr_t)info.dli_saddr < (uintptr_t)sym->st_size)
        snprintf(buf, len, "%s+0x%lx (%s+0x%lx)", info.dli_sname,
                 (unsigned long)(pc - (uintptr_t)info.dli_saddr), base_name(info.dli_fname),
                 (unsigned long)(pc - bias));
    else
        snprintf(buf, len, "? (%s+0x%lx)", base_name(info.dli_fname), (unsigned long)(pc - bias));
}
