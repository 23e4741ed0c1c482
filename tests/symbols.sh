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
n=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -c '^ringo_')
echo "ok: $n exported symbols, all ringo_*"
