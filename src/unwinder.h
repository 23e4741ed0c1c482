/*
 * unwinder.h — the stacks of parked goroutines, for dumps (runtime.c).
 */
#ifndef RINGO_UNWINDER_H
#define RINGO_UNWINDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fiber.h"

/* Frames kept per goroutine: a dump of a deep recursion shows its top. */
#define UNWIND_FRAMES 32

/* One dump's unwinding and symbolization state (the process's modules as
 * they are now).  Never NULL: without libdw (or use_libdw false: libdw
 * needs tens of KiB of stack), or when it cannot read this process, the
 * frame-pointer walk and dladdr are used. */
struct unwinder;
struct unwinder *unwinder_open(bool use_libdw);
void unwinder_close(struct unwinder *u);

/* The return addresses of a parked fiber, innermost first, from the
 * registers its switch saved: at most max of them, every word read
 * (fiber_peek) lying in [lo, hi), the fiber's stack.  Returns how many. */
int unwind_fiber(struct unwinder *u, const struct fiber_regs *r, const char *lo, const char *hi,
                 uintptr_t *pcs, int max);

/* One line for a return address: "function+0xoff (module+0xoff) file:line",
 * the file and line only where the module has debug information, the
 * function only where a symbol table names it. */
void unwind_describe(struct unwinder *u, uintptr_t pc, char *buf, size_t len);

/* The symbol at or below a code address as "function" or "function+0xoff"
 * from the modules' symbol tables, static functions included; false if
 * none is known (or without libdw: dladdr is the caller's fallback). */
bool unwind_symbol(struct unwinder *u, uintptr_t addr, char *buf, size_t len);

/* For tests (check_dump.c), false in programs: dumps walk frame pointers
 * even where libdw is there. */
extern bool unwind_frame_pointers_only;

/* "libdw" or "frame pointers": what unwind_fiber uses (for tests). */
const char *unwinder_kind(const struct unwinder *u);

#endif /* RINGO_UNWINDER_H */
