#!/bin/sh
# share/ringo-gdb.py under gdb: tests/gdb_target parks three goroutines, on
# a channel, a mutex and a read, and stops at gdb_stop_here; gdb, in batch
# mode, loads the helper, lists the goroutines (info goroutines) and
# unwinds each parked one from its saved context (goroutine N bt), then
# lets the program finish, which it does normally only if the registers
# the unwinding borrowed were put back.  Skipped (77) when gdb is missing,
# or the library has no debug information (configured without -g).
build="${top_builddir:-.}"
src="${top_srcdir:-.}"
target="$build/tests/gdb_target"
helper="$src/share/ringo-gdb.py"
command -v gdb >/dev/null 2>&1 || { echo "SKIP: gdb is not installed"; exit 77; }
[ -x "$target" ] || { echo "FAIL: $target not built"; exit 1; }
[ -r "$helper" ] || { echo "FAIL: $helper missing"; exit 1; }
lib=$(ls "$build"/.libs/libringo.so.* 2>/dev/null | head -n 1)
if command -v readelf >/dev/null 2>&1 && [ -n "$lib" ] &&
   ! readelf -S "$lib" | grep -q '\.debug_info'; then
    echo "SKIP: $lib has no debug information (configure with -g in CFLAGS)"
    exit 77
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
# A one-proc run; the environment must not ask for more.  In the
# AddressSanitizer build, LeakSanitizer cannot run under ptrace: it would
# fail the program at its exit, so it is left out of this one run.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
RINGO_PROCS= timeout 300 gdb -q -batch -nx \
    -iex 'set debuginfod enabled off' \
    -iex 'set auto-load safe-path /' \
    -ex 'set pagination off' \
    -ex 'break gdb_stop_here' \
    -ex run \
    -ex "source $helper" \
    -ex 'info goroutines' \
    -ex 'echo ==chan\n' -ex 'goroutine id_chan bt' \
    -ex 'echo ==mutex\n' -ex 'goroutine id_mutex bt' \
    -ex 'echo ==read\n' -ex 'goroutine id_read bt' \
    -ex 'echo ==main\n' -ex 'goroutine 1 bt' \
    -ex 'echo ==end\n' \
    -ex continue \
    "$target" >"$out" 2>&1
cat "$out"

fail=0
check() { # check DESCRIPTION COMMAND...
    desc=$1
    shift
    if "$@"; then echo "ok: $desc"; else echo "FAIL: $desc"; fail=1; fi
}
# the lines of `info goroutines`, and the section of each bt
has() { grep -q -- "$1" "$out"; }
section() { sed -n "/^==$1\$/,/^==/p" "$out"; }
in_section() { section "$1" | grep -q -- "$2"; }

check "stopped at the breakpoint" has 'hit Breakpoint 1, gdb_stop_here'
check "main listed as running here" has '^\* goroutine 1 \[running\]: created by main_goroutine at 0x[0-9a-f]* by ringo_run on proc 0$'
check "channel waiter listed" has '^  goroutine [0-9]* \[chan receive, on 0x[0-9a-f]*, [0-9]* ms\]: created by park_on_chan at 0x[0-9a-f]* by main_goroutine+0x[0-9a-f]* on proc 0$'
check "mutex waiter listed" has '^  goroutine [0-9]* \[mutex, on 0x[0-9a-f]*, [0-9]* ms\]: created by park_on_mutex at .* by main_goroutine+0x'
check "reader listed" has '^  goroutine [0-9]* \[io, fd [0-9]*, [0-9]* ms\]: created by park_on_read at .* by main_goroutine+0x'
check "four goroutines" test "$(grep -c '^[ *] goroutine [0-9]* \[' "$out")" -eq 4
# A frame of FUNCTION in SECTION's backtrace, called or inlined.  The
# goroutine's start is g_entry, the runtime's entry of every goroutine,
# with either context switch (below it: ringo__ctx_start, or makecontext's
# trampoline in the C library).
frame() { section "$1" | grep -Eq "^#[0-9]+ +(0x[0-9a-f]+ in )?$2 \("; }
check "chan bt: parked in the channel code" frame chan 'chan_block'
check "chan bt: called by park_on_chan" frame chan park_on_chan
check "chan bt: down to the goroutine's start" frame chan g_entry
check "mutex bt: parked in the mutex code" frame mutex 'mutex_lock[a-z_]*'
check "mutex bt: called by park_on_mutex" frame mutex park_on_mutex
check "read bt: parked in ringo_read" frame read ringo_read
check "read bt: called by park_on_read" frame read park_on_read
check "read bt: down to the goroutine's start" frame read g_entry
check "a running goroutine is left to its thread" in_section main 'goroutine 1 is running on proc 0'
check "the program then finished normally" has 'gdb_target: done 0'
check "and exited normally" has 'exited normally'
check "no Python errors" sh -c "! grep -q 'Python Exception\|Error occurred in Python' '$out'"

# The context switch's unwind rules (switch_x86_64.S): stopped inside
# ringo__ctx_switch after its pushes (10 bytes of them), as a backtrace
# taken there by the watchdog's handler would be, gdb unwinds from the
# switch to the goroutine that called it: main, which after
# gdb_stop_here parks in ringo_write or ringo_sleep.  The build with the
# ucontext switch has no such function.
if [ "$(uname -m)" = x86_64 ] && readelf -s "$lib" | grep -q ' ringo__ctx_switch$'; then
    RINGO_PROCS= timeout 300 gdb -q -batch -nx \
        -iex 'set debuginfod enabled off' \
        -ex 'set pagination off' \
        -ex 'break gdb_stop_here' \
        -ex run \
        -ex 'break *ringo__ctx_switch+10' \
        -ex continue \
        -ex 'echo ==switch\n' -ex 'bt 20' -ex 'echo ==end\n' \
        -ex 'delete' \
        -ex continue \
        "$target" >"$out" 2>&1
    cat "$out"
    check "stopped inside the switch" in_section switch '^#0 .*ringo[_.]*ctx_switch' # (clang's debug information: ringo.ctx_switch)
    check "switch bt: up to the goroutine that switched" frame switch main_goroutine
    check "switch bt: the program then finished normally" has 'gdb_target: done 0'
fi
exit $fail
