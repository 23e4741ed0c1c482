#!/bin/sh
# examples/deadlock, the worked example of ringo(7) "Debugging a running
# program": two goroutines that each hold the lock the other wants.
#   - On its own, the runtime reports the deadlock: exit status 1, both
#     transfers listed as waiting on a mutex and, where dumps unwind with
#     libdw (config.h: HAVE_LIBDW), each with credit and transfer in its
#     stack, with file:line.
#   - With -w it hangs (a signal is registered, so no deadlock can be
#     proven); with RINGO_DUMP_ON_SIGQUIT=1, SIGQUIT writes the same two
#     goroutines and their stacks and the program goes on; SIGTERM then
#     ends it.  SIGQUIT is sent only after the program said it waits (the
#     runtime has its handler by then), and again until the dump shows both
#     transfers parked (they may not have got there yet): at most 600 times.
build="${top_builddir:-.}"
prog="$build/examples/deadlock"
[ -x "$prog" ] || { echo "FAIL: $prog not built"; exit 1; }
libdw=no
grep -q '^#define HAVE_LIBDW 1' "$build/config.h" 2>/dev/null && libdw=yes

out=$(mktemp)
pid=
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; wait 2>/dev/null; rm -f "$out"; }
trap cleanup EXIT
fail=0
check() { # name, command...
    name=$1
    shift
    if "$@"; then echo "ok: $name"; else echo "FAIL: $name"; fail=1; fi
}
# stacks_ok FILE: both transfers' headers, each followed by a stack with
# credit then transfer in it (without libdw: the two headers; a static
# function is not named then, and the frame-pointer walk is complete only
# in a build with frame pointers)
stacks_ok() {
    awk -v libdw="$libdw" '
        /^    / { if (inside && /^    credit\+0x/) c = 1
                  if (inside && c && /^    transfer\+0x/ && (libdw == "no" || /deadlock\.c:[0-9]+$/)) t = 1
                  next }
        { if (inside && t) good++; inside = 0 }
        /^goroutine [0-9]+ \[mutex, / && (libdw == "no" || / created by transfer /) { n++; inside = 1; c = 0; t = 0 }
        END { if (inside && t) good++; exit !(n == 2 && (libdw == "no" || good == 2)) }' "$1"
}

"$prog" 2>"$out"
st=$?
check "the deadlock ends the run: exit status 1" [ "$st" = 1 ]
check "it is reported" grep -q '^ringo: all goroutines are asleep - deadlock!$' "$out"
check "both transfers waiting on a mutex, with their stacks" stacks_ok "$out"
check "main waiting on the WaitGroup" grep -q '^goroutine 1 \[waitgroup, ' "$out"
[ $fail = 0 ] || cat "$out"

RINGO_DUMP_ON_SIGQUIT=1 "$prog" -w 2>"$out" &
pid=$!
i=0
while [ $i -lt 600 ] && ! grep -q 'waiting for SIGINT or SIGTERM' "$out" && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1
    i=$((i + 1))
done
check "-w: it waits" grep -q "^deadlock: pid $pid, waiting for SIGINT or SIGTERM$" "$out"
i=0
while [ $i -lt 600 ] && kill -0 "$pid" 2>/dev/null; do
    before=$(grep -c 'goroutine dump$' "$out")
    kill -QUIT "$pid"
    j=0 # until this dump is complete (it ends with an empty line)
    while [ $j -lt 600 ] && [ "$(grep -c 'goroutine dump$' "$out")" = "$before" ]; do sleep 0.1; j=$((j + 1)); done
    j=0
    while [ $j -lt 600 ] && [ "$(tail -n 1 "$out")" != "" ]; do sleep 0.1; j=$((j + 1)); done
    # the last dump alone
    awk '/goroutine dump$/ { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' "$out" > "$out.last"
    stacks_ok "$out.last" && break
    i=$((i + 1))
done
check "-w: SIGQUIT dumps both transfers with their stacks" stacks_ok "$out.last"
check "-w: and main waiting on the signal channel" grep -q '^goroutine 1 \[chan receive, on ' "$out.last"
check "-w: the program goes on after the dump" kill -0 "$pid"
rm -f "$out.last"
kill -TERM "$pid"
wait "$pid"
st=$?
pid=
check "-w: SIGTERM ends it: exit status 1" [ "$st" = 1 ]
check "-w: saying why" grep -q '^deadlock: Terminated: the transfers never finished$' "$out"
[ $fail = 0 ] || tail -n 60 "$out"
exit $fail
