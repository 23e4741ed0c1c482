#!/bin/sh
# The libFuzzer targets for examples/http_parse.c: builds each with clang
# -fsanitize=fuzzer,address,undefined and runs it for FUZZ_SECONDS (default
# 60) from the seeds in tests/fuzz/corpus/TARGET.  `make fuzz` runs it; so
# can a shell, from any directory:
#
#   tests/fuzz/run.sh [TARGET...]      (default: every target)
#   tests/fuzz/run.sh --list           (the targets, one a line)
#
# Environment: FUZZ_SECONDS; FUZZ_CC (default clang); FUZZ_BUILDDIR, where
# the programs, the grown corpora and any crash inputs go (default
# ./tests/fuzz/out); FUZZ_FLAGS, more libFuzzer options.
#
# Exits 0 when every target ran clean, 1 when one crashed or broke an
# invariant (the input is saved as FUZZ_BUILDDIR/TARGET-crash-*; reproduce
# it with `FUZZ_BUILDDIR/fuzz_TARGET FILE`, or describe it with
# `tests/check_http_parse describe TARGET FILE`), and 77 when FUZZ_CC cannot
# build a libFuzzer program (Debian: apt-get install clang libclang-rt-dev).
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
targets="request response url"
if [ "$1" = --list ]; then
    for t in $targets; do echo "$t"; done
    exit 0
fi
[ $# -gt 0 ] && targets="$*"
cc=${FUZZ_CC:-clang}
seconds=${FUZZ_SECONDS:-60}
out=${FUZZ_BUILDDIR:-tests/fuzz/out}
mkdir -p "$out" || exit 1

probe="$out/probe.c"
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return d && n > 1 ? d[0] == 0 : 0; }' > "$probe"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$probe" -o "$out/probe" >/dev/null 2>&1; then
    rm -f "$probe" "$out/probe"
    echo "fuzz: '$cc -fsanitize=fuzzer' does not build here; install clang and libFuzzer" \
         "(Debian: apt-get install clang libclang-rt-dev), or set FUZZ_CC"
    exit 77
fi
rm -f "$probe" "$out/probe"

for t in $targets; do
    if [ ! -f "$srcdir/tests/fuzz/fuzz_$t.c" ]; then
        echo "fuzz: no target '$t' (targets: $(sh "$0" --list | tr '\n' ' '))"
        exit 1
    fi
    echo "fuzz: building fuzz_$t"
    "$cc" -std=gnu11 -g -O1 -Wall -Wextra -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=all -I"$srcdir/examples" -I"$srcdir/tests/fuzz" \
        "$srcdir/tests/fuzz/fuzz_$t.c" "$srcdir/tests/fuzz/harness.c" \
        "$srcdir/examples/http_parse.c" -o "$out/fuzz_$t" || exit 1
    # New inputs go to the grown corpus in the build directory; the seeds
    # in the source tree are only read.
    mkdir -p "$out/corpus-$t"
    echo "fuzz: running fuzz_$t for ${seconds}s"
    # shellcheck disable=SC2086
    if ! "$out/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -dict="$srcdir/tests/fuzz/http.dict" -print_final_stats=1 \
        -artifact_prefix="$out/$t-" $FUZZ_FLAGS \
        "$out/corpus-$t" "$srcdir/tests/fuzz/corpus/$t" 2>"$out/fuzz_$t.log"; then
        tail -n 60 "$out/fuzz_$t.log"
        echo "fuzz: $t: FAILED; the input is in $out/$t-crash-* (or -leak-, -timeout-, -oom-)"
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz_$t.log")
    echo "fuzz: $t: ${runs:-?} inputs in ${seconds}s, no crash"
done
exit 0
