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
ran=0
for t in $progs "$s/httpd.sh" "$s/kv.sh"; do
    case $t in
    */*) run="sh $t" ;;
    *) run=$b/$t ;;
    esac
    echo "== $t with RINGO_ENGINE=epoll"
    $run
    r=$?
    case $r in
    0) ran=1 ;;
    77) echo "(skipped: $t)" ;;
    *) echo "FAILED: $t ($r)"; failed=1 ;;
    esac
done
# A failure anywhere fails the test; a program that cannot run here (a
# skip) does not hide the others; it is a skip only when none could run.
[ $failed -eq 0 ] || exit 1
[ $ran -eq 1 ] || exit 77
exit 0
