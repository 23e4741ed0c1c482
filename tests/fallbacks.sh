#!/bin/sh
# The runtime's fallbacks, forced on a kernel that would not need them:
# procs woken through their eventfd instead of IORING_OP_MSG_RING, and rings
# set up without SINGLE_ISSUER/DEFER_TASKRUN.  Runs the channel and time
# tests (which cross procs and sleep) and the accept tests under both
# switches.
b="${top_builddir:-.}/tests"
for t in check_chan check_time check_accept; do
    if [ ! -x "$b/$t" ]; then
        echo "SKIP: $b/$t not built"
        exit 77
    fi
done
RINGO_NO_MSG_RING=1 RINGO_NO_DEFER_TASKRUN=1 RINGO_TEST_QUICK=1
export RINGO_NO_MSG_RING RINGO_NO_DEFER_TASKRUN RINGO_TEST_QUICK
status=0
for t in check_chan check_time check_accept; do
    echo "== $t with RINGO_NO_MSG_RING=1 RINGO_NO_DEFER_TASKRUN=1"
    "$b/$t"
    r=$?
    [ $r -eq 77 ] && exit 77
    [ $r -eq 0 ] || status=1
done
exit $status
