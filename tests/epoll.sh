#!/bin/sh
# The suite again on the epoll engine (RINGO_ENGINE=epoll, ringo(7)
# "Engines"): the check programs (check_fault walks the epoll engine's
# failure sites), and examples/httpd and examples/kv against their real
# clients.
b="${top_builddir:-.}/tests"
s="${top_srcdir:-.}/tests"
progs="check_sched check_time check_chan check_sync check_io check_close check_deadline
check_fault check_fd_deadline check_signal check_net check_resolve check_scale check_accept check_bufio
check_watchdog check_dump"
for t in $progs; do
    if [ ! -x "$b/$t" ]; then
        echo "SKIP: $b/$t not built"
        exit 77
    fi
done
RINGO_ENGINE=epoll
export RINGO_ENGINE
failed=0
skipped=
for t in $progs "$s/httpd.sh" "$s/kv.sh"; do
    case $t in
    */*) run="sh $t" ;;
    *) run=$b/$t ;;
    esac
    echo "== $t with RINGO_ENGINE=epoll"
    $run
    r=$?
    case $r in
    0) ;;
    77) skipped="$skipped $t" ;;
    *) echo "FAILED: $t ($r)"; failed=1 ;;
    esac
done
# A failure anywhere fails the test; one program that cannot run here
# makes the whole test a skip (naming it), never a pass: what was not run
# on epoll is not reported as tested.
[ $failed -eq 0 ] || exit 1
if [ -n "$skipped" ]; then
    echo "SKIP: could not run here on epoll:$skipped"
    exit 77
fi
exit 0
