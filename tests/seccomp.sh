#!/bin/sh
# A real workload where io_uring is refused, as Docker's default seccomp
# profile refuses it (tests/seccomp_run): channels, sync, timers, a TCP
# echo server with 100 clients (check_net), and examples/httpd against
# curl (httpd.sh).  Nothing forces an engine: each run must find io_uring
# refused and choose epoll, which RINGO_DEBUG=1 makes it say (not for
# check_sync, whose misuse tests read the runtime's stderr: under the
# filter no run can use io_uring anyway).
b="${top_builddir:-.}/tests"
s="${top_srcdir:-.}/tests"
wrap="$b/seccomp_run"
for t in seccomp_run check_chan check_sync check_time check_net; do
    if [ ! -x "$b/$t" ]; then
        echo "SKIP: $b/$t not built"
        exit 77
    fi
done
unset RINGO_ENGINE
RINGO_DEBUG=1
export RINGO_DEBUG
"$wrap" true
r=$?
[ $r -eq 0 ] || exit $r # 77: no seccomp here
err=$(mktemp)
trap 'rm -f "$err"' EXIT
failed=0
expect="ringo: engine epoll (io_uring_setup: Operation not permitted)"
for t in check_chan check_sync check_time check_net; do
    echo "== $t where io_uring is refused"
    debug=1
    [ $t = check_sync ] && debug=0
    RINGO_DEBUG=$debug "$wrap" "$b/$t" 2>"$err"
    r=$?
    if [ $r -ne 0 ]; then
        echo "FAILED: $t ($r)"
        cat "$err"
        failed=1
    elif [ $debug = 1 ] && { ! grep -qF "$expect" "$err" || grep -q "engine io_uring" "$err"; }; then
        echo "FAILED: $t did not run on the epoll engine"
        head -5 "$err"
        failed=1
    fi
done
echo "== httpd.sh where io_uring is refused"
RINGO_TEST_WRAP="$wrap" sh "$s/httpd.sh" || { echo "FAILED: httpd.sh"; failed=1; }
[ $failed -eq 0 ] || exit 1
exit 0
