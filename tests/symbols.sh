#!/bin/sh
# Only ringo_* may be exported from the shared library.
lib="${top_builddir:-.}/.libs/libringo.so"
if [ ! -f "$lib" ]; then
    echo "SKIP: $lib not built (static-only build?)"
    exit 77
fi
bad=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' | grep -v '^ringo_' | grep -v '^RINGO_' || true)
if [ -n "$bad" ]; then
    echo "symbols exported without the ringo_ prefix:"
    echo "$bad"
    exit 1
fi
# The functions that ringo.h now reaches through macros are still the entry
# points of programs built before the macros (ringo_run(3), ringo_stats(3)).
for f in ringo_run ringo_stats; do
    if ! nm -D --defined-only "$lib" | awk '{print $3}' | grep -q "^$f\(@.*\)\{0,1\}$"; then
        echo "$f is no longer exported: programs built against ringo 0.1 call it"
        exit 1
    fi
done
# A thread that has called into ringo runs a destructor of the library's
# when it exits, however long after a dlclose: the library is never
# unmapped (-z nodelete).
if ! readelf -d "$lib" | grep -q 'FLAGS_1.*NODELETE'; then
    echo "$lib is not marked NODELETE: a dlclose would unmap a thread's destructor"
    exit 1
fi
n=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -c '^ringo_')
echo "ok: $n exported symbols, all ringo_*"
