#!/bin/sh
# The aarch64 context switch, on any build machine: cross-compile
# tests/switch_test.c with src/fiber.c (and its fault seams, src/fault.c)
# and src/switch_aarch64.S for aarch64
# and run it under qemu-aarch64 (user mode).  qemu-user has no io_uring,
# so the runtime itself cannot run there; switch_test needs none.
#
# Skips (77) without aarch64-linux-gnu-gcc or qemu-aarch64 (Debian and
# Ubuntu: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross
# qemu-user).  AARCH64_CC and QEMU_AARCH64 name others.
#
# It builds switch_test twice: with the assembly switch, the one under
# test, and with swapcontext, whose pass shows that the test's own probes
# are right on aarch64.
set -u

srcdir=${top_srcdir:-.}
cc=${AARCH64_CC:-aarch64-linux-gnu-gcc}
qemu=${QEMU_AARCH64:-qemu-aarch64}
sysroot=${AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}

for tool in "$cc" "$qemu"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool is not installed"
        exit 77
    fi
done

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# gcc-aarch64-linux-gnu only recommends the C library it needs.
printf '#include <stdio.h>\nint main(void) { return puts("") < 0; }\n' > "$tmp/probe.c"
if ! "$cc" -o "$tmp/probe" "$tmp/probe.c" >/dev/null 2>&1 ||
   ! "$qemu" -L "$sysroot" "$tmp/probe" >/dev/null 2>&1; then
    echo "SKIP: $cc cannot build a program that $qemu runs (is libc6-dev-arm64-cross installed?)"
    exit 77
fi

# fiber.h includes config.h; fiber.c needs nothing from it but the
# switch choice (a -D below) and the system extensions configure enables.
printf '#define _GNU_SOURCE 1\n' > "$tmp/config.h"

cflags="-std=gnu11 -O2 -g -Wall -Wextra -Wno-unused-parameter -Wshadow
        -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wvla"
srcs="$srcdir/tests/switch_test.c $srcdir/tests/switch_regs.S $srcdir/src/fiber.c
      $srcdir/src/fault.c"

# -L: where qemu finds the aarch64 dynamic loader and libraries.
run() {
    "$qemu" -L "$sysroot" "$@"
}

status=0
for variant in asm ucontext; do
    case $variant in
        asm) extra="$srcdir/src/switch_aarch64.S" ;;
        ucontext) extra="-DRINGO_SWITCH_UCONTEXT" ;;
    esac
    # shellcheck disable=SC2086 # word splitting of the flag lists is wanted
    if ! "$cc" $cflags -I"$tmp" -I"$srcdir/src" -o "$tmp/switch_test-$variant" \
            $srcs $extra -lpthread; then
        echo "FAIL: cross-compiling switch_test ($variant) for aarch64"
        exit 1
    fi
    printf 'aarch64 %s switch: ' "$variant"
    run "$tmp/switch_test-$variant" || status=1
done
exit $status
