#!/bin/sh
# GCC's static analyzer (-fanalyzer) over the channel and select code,
# which it checks without false alarms: any warning fails the test.  It
# found select's read of an uninitialised slot of its poll order, which no
# run can show (the value read was overwritten unused).  The other files
# are left out: the analyzer cannot follow their reference counts (accept.c,
# net.c) and reports frees that do not happen.
srcdir="${top_srcdir:-.}"
builddir="${top_builddir:-.}"
cc="${CC:-gcc}"
files="src/select.c src/chan.c"
if ! echo 'int x;' | $cc -fanalyzer -x c -c -o /dev/null - 2>/dev/null; then
    echo "SKIP: $cc has no -fanalyzer (GCC 10 or later)"
    exit 77
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
st=0
for f in $files; do
    $cc -fanalyzer -DHAVE_CONFIG_H -std=gnu11 -O2 $URING_CFLAGS -I"$srcdir/include" -I"$srcdir/src" \
        -I"$builddir" -c "$srcdir/$f" -o /dev/null >"$out" 2>&1 || st=1
    if grep -q 'warning:' "$out"; then
        cat "$out"
        st=1
    fi
done
[ $st -eq 0 ] && echo "ok: -fanalyzer finds nothing in $files"
exit $st
