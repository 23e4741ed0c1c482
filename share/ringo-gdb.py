# ringo-gdb.py -- goroutines in gdb, for programs that use libringo.
#
#   (gdb) source /usr/share/ringo/ringo-gdb.py
#   (gdb) info goroutines
#   (gdb) goroutine 7 bt
#
# "info goroutines" lists every goroutine as ringo_dump(3) does, one line
# each: id, state and what it waits on, its function, where it was created
# and its proc; "*" marks the goroutine running on the selected thread.
# "goroutine N bt" unwinds goroutine N's stack: a parked or runnable one
# from the context its last switch saved, a running one from its proc
# thread.  N may be any expression ("goroutine my_id bt").
#
# How.  The runtime keeps every goroutine in chunks of structs, a page
# each (a header line, then the structs), listed by gctab[slot / chunk]
# (gtable.c), filled up to gtab_next slots; a live one has id > 0, and its
# creator is in gslots[slot].  A started goroutine's other lines are
# g->cold, in its stack's header.  A goroutine that is not running was
# switched out by ringo__ctx_switch, which pushed the callee-saved
# registers and left the stack pointer in g->cold->run.ctx.sp:
#
#   x86-64:   sp -> r15 r14 r13 r12 rbx rbp, return address
#   aarch64:  sp -> x19 .. x28, x29 x30, d8 .. d15  (160 bytes)
#
# "goroutine N bt" saves the selected thread's registers, loads that frame
# into them (as the switch back would: pc = the return address, sp past
# the frame), runs "bt", and puts the registers back.  It needs a live
# process (registers cannot be written in a core file) and a library with
# debug information (the default -g build) for the table's symbols.
#
# With --with-switch=ucontext, g->cold->run.ctx.uc points to a ucontext_t that
# swapcontext filled, and the registers come from its uc_mcontext.

import gdb

_STATE_WORDS = {"G_RUNNABLE": "runnable", "G_RUNNING": "running", "G_WAITING": None}
_REASON_WORDS = {
    "W_SLEEP": "sleep",
    "W_CHAN_SEND": "chan send",
    "W_CHAN_RECV": "chan receive",
    "W_SELECT": "select",
    "W_SELECT_NOCASES": "select (no cases)",
    "W_MUTEX": "mutex",
    "W_WAITGROUP": "waitgroup",
    "W_COND": "cond",
    "W_IO": "io",
    "W_OFFLOAD": "offload",
}


def _static(name):
    sym = gdb.lookup_static_symbol(name)
    if sym is None:
        sym = gdb.lookup_global_symbol(name)
    if sym is None:
        raise gdb.GdbError(
            "ringo: no symbol %s: is libringo loaded, and built with -g?" % name)
    return sym.value()


def _enum_names(type_name):
    names = {}
    for f in gdb.lookup_type(type_name).fields():
        names[int(f.enumval)] = f.name
    return names


def _goroutines():
    """(slot, struct rg *) of every live goroutine, in table order."""
    gctab = _static("gctab")
    if int(gctab) == 0:
        return
    n = int(_static("gtab_next"))
    per = int(gdb.parse_and_eval("sizeof(struct rg)"))
    chunk = 4096 // per - 1  # GCHUNK: a page holds a header line and the structs
    rg_ptr = gdb.lookup_type("struct rg").pointer()
    for c in range(n // chunk):
        h = int(gctab[c])
        if h == 0:
            continue
        for i in range(chunk):
            g = gdb.Value(h + (i + 1) * per).cast(rg_ptr)
            if int(g["id"]) > 0:
                yield c * chunk + i, g


def _cold(g):
    """Lines 1 and 2 of g (struct rg_cold), or None before it starts."""
    c = g["cold"]
    return c.dereference() if int(c) != 0 else None


def _code_name(addr):
    if addr == 0:
        return "?"
    block = None
    try:
        block = gdb.block_for_pc(addr)
    except RuntimeError:
        pass
    while block is not None and block.function is None:
        block = block.superblock
    if block is not None and block.function is not None:
        return "%s+0x%x" % (block.function.print_name, addr - int(block.function.value().address))
    # "name + 45 in section .text of /path", or "name in section .text"
    sym = gdb.execute("info symbol 0x%x" % addr, to_string=True).strip()
    if " in section " not in sym:
        return "0x%x" % addr
    name = sym.split(" in section ")[0]
    if " + " in name:
        base, off = name.split(" + ", 1)
        return "%s+0x%x" % (base, int(off))
    return name + "+0x0"


def _fn_name(addr):
    name = _code_name(addr)
    return name[:-4] if name.endswith("+0x0") else name


def _state(g, states, reasons):
    st = states.get(int(g["state"]), "?")
    word = _STATE_WORDS.get(st, "dead")
    if word is not None:
        return word, False
    return _REASON_WORDS.get(reasons.get(int(g["reason"]), ""), "waiting"), True


def _current_g():
    """The goroutine running on the selected thread, or 0."""
    try:
        p = gdb.parse_and_eval("tls_proc")
        return int(p["cur"]) if int(p) != 0 else 0
    except gdb.error:
        return 0


def _describe(slot, g, states, reasons, now_ms):
    word, waiting = _state(g, states, reasons)
    extra = ""
    cold = _cold(g)
    if waiting and cold is not None:
        fd = int(cold["run"]["wait_fd"])
        obj = int(cold["wait"]["wait_obj"])
        if fd >= 0:
            extra += ", fd %d" % fd
        elif obj:
            extra += ", on 0x%x" % obj
        if now_ms is not None:
            waited = (now_ms - int(cold["wait"]["parked_ms"])) & 0xffffffff
            if waited <= 0x7fffffff:
                extra += ", %d ms" % waited
    gslots = _static("gslots")
    creator = int(gslots[slot]["creator"]) if int(gslots) != 0 else 0
    p = g["p"]
    proc = int(p["idx"]) if int(p) != 0 else -1
    return "goroutine %d [%s%s]: created by %s at 0x%x by %s on proc %d" % (
        int(g["id"]), word, extra, _fn_name(int(g["fn"])), int(g["fn"]),
        _code_name(creator) if creator else "ringo_run", proc)


def _now_ms():
    """The park clocks' time (ms since rt.epoch_ns), from the procs' own
    clocks: the newest of them.  None if unknown."""
    try:
        rt = _static("rt")
        best = None
        for i in range(int(rt["nprocs"])):
            c = int(rt["procs"][i]["clock_ms"])
            best = c if best is None or c > best else best
        return best
    except gdb.error:
        return None


class InfoGoroutines(gdb.Command):
    """List the goroutines of the ringo run in progress, as ringo_dump does.
A "*" marks the goroutine running on the selected thread.  The time a
parked goroutine has waited is reckoned against the newest of the procs'
coarse clocks (which stand still while the process is stopped)."""

    def __init__(self):
        super(InfoGoroutines, self).__init__("info goroutines", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        states = _enum_names("enum gstate")
        reasons = _enum_names("enum wait_reason")
        cur = _current_g()
        now_ms = _now_ms()
        count = 0
        for slot, g in _goroutines():
            mark = "*" if int(g) == cur else " "
            gdb.write("%s %s\n" % (mark, _describe(slot, g, states, reasons, now_ms)))
            count += 1
        if count == 0:
            gdb.write("no goroutines (no ringo run in progress)\n")


def _find(gid):
    for slot, g in _goroutines():
        if int(g["id"]) == gid:
            return g
    raise gdb.GdbError("ringo: no goroutine %d" % gid)


def _arch():
    return gdb.selected_frame().architecture().name()


class _Regs(object):
    """The selected thread's frame-0 registers of one set, saved and put back."""

    def __init__(self, names):
        self.names = names
        self.saved = {}

    def save(self):
        gdb.execute("frame 0", to_string=True)
        for r in self.names:
            self.saved[r] = int(gdb.parse_and_eval("$" + r))

    def load(self, values):
        for r, v in values.items():
            gdb.execute("set $%s = 0x%x" % (r, v), to_string=True)

    def restore(self):
        gdb.execute("frame 0", to_string=True)
        self.load(self.saved)


def _read_u64(addr):
    return int(gdb.parse_and_eval("*(unsigned long long *)0x%x" % addr))


def _switch_frame(sp, arch):
    """Registers as the switch back to this context would set them."""
    if "x86-64" in arch:
        names = ["r15", "r14", "r13", "r12", "rbx", "rbp"]
        regs = dict((n, _read_u64(sp + 8 * i)) for i, n in enumerate(names))
        regs["pc"] = _read_u64(sp + 48)
        regs["sp"] = sp + 56
        return ["r15", "r14", "r13", "r12", "rbx", "rbp", "pc", "sp"], regs
    if "aarch64" in arch:
        regs = {}
        for i in range(10):
            regs["x%d" % (19 + i)] = _read_u64(sp + 8 * i)
        regs["x29"] = _read_u64(sp + 80)
        regs["x30"] = _read_u64(sp + 88)
        regs["pc"] = regs["x30"]
        regs["sp"] = sp + 160
        return list(regs.keys()), regs
    raise gdb.GdbError("ringo: goroutine bt knows x86-64 and aarch64, not %s" % arch)


# glibc's <sys/ucontext.h> indices into x86-64 gregs
_X86_GREGS = {"r12": 4, "r13": 5, "r14": 6, "r15": 7, "rbp": 10, "rbx": 11, "sp": 15, "pc": 16}


def _ucontext_frame(mc, arch):
    """Registers as swapcontext saved them (--with-switch=ucontext)."""
    if "x86-64" in arch:
        regs = dict((n, int(mc["gregs"][i]) & 0xffffffffffffffff) for n, i in _X86_GREGS.items())
        return list(regs.keys()), regs
    if "aarch64" in arch:
        regs = dict(("x%d" % i, int(mc["regs"][i])) for i in range(19, 31))
        regs["sp"] = int(mc["sp"])
        regs["pc"] = int(mc["pc"])
        return list(regs.keys()), regs
    raise gdb.GdbError("ringo: goroutine bt knows x86-64 and aarch64, not %s" % arch)


class GoroutineCmd(gdb.Command):
    """goroutine N bt: the backtrace of goroutine N (N: an expression).
A goroutine that is not running is unwound from the context its last switch
saved, with the selected thread's registers borrowed for the time of the
"bt" and put back after; a running one is shown on its proc's thread."""

    def __init__(self):
        super(GoroutineCmd, self).__init__("goroutine", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        args = gdb.string_to_argv(arg)
        if len(args) < 2:
            raise gdb.GdbError("usage: goroutine N bt [bt arguments]")
        gid = int(gdb.parse_and_eval(args[0]))
        cmd = " ".join(args[1:])
        if cmd.split()[0] not in ("bt", "backtrace"):
            raise gdb.GdbError("ringo: only \"goroutine N bt\" is supported")
        g = _find(gid)
        states = _enum_names("enum gstate")
        if states.get(int(g["state"])) == "G_RUNNING":
            p = int(g["p"])
            gdb.write("goroutine %d is running on proc %d: see that proc's thread "
                      "(info threads; thread N; bt)\n" % (gid, int(g["p"]["idx"]) if p else -1))
            return
        if not bool(g["started"]):
            gdb.write("goroutine %d has not started: it has no stack yet\n" % gid)
            return
        ctx = _cold(g)["run"]["ctx"]
        if any(f.name == "uc" for f in ctx.type.fields()):
            order, regs = _ucontext_frame(ctx["uc"].dereference()["uc_mcontext"], _arch())
        else:
            order, regs = _switch_frame(int(ctx["sp"]), _arch())
        saved = _Regs(order)
        saved.save()
        try:
            saved.load(regs)
            gdb.execute("frame 0", to_string=True)
            gdb.execute(cmd, from_tty)
        finally:
            saved.restore()


InfoGoroutines()
GoroutineCmd()
