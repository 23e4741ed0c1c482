#!/bin/sh
# Run the test programs on a real aarch64 Linux kernel, io_uring and all:
# boot it under qemu-system-aarch64 (emulated, so slow) with an initramfs
# holding statically linked aarch64 builds of the tests and tests/vm/init.c
# as /init.  Not part of make check: qemu-user, which tests/aarch64.sh
# uses, has no io_uring, and a whole emulated machine takes minutes.
#
#   tests/vm/aarch64.sh [BUILDDIR [PROGRAM...]]
#
# BUILDDIR (default _build-aarch64) is a cross build made static; if it
# has no tests/check_sched yet this script makes it, which needs a source
# tree not configured in place:
#
#   PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig \
#       ../configure --host=aarch64-linux-gnu --disable-shared
#   make check TESTS= LDFLAGS=-all-static
#
# PROGRAMs are paths under BUILDDIR (default: tests/switch_test and every
# tests/check_*).  Needs, on Debian: gcc-aarch64-linux-gnu qemu-system-arm
# cpio, and for the build liburing-dev:arm64 and check:arm64 (after
# dpkg --add-architecture arm64).  KERNEL names an arm64 kernel Image;
# without it the Debian arm64 kernel package is fetched with apt-get
# download (not installed) and unpacked in a temporary directory.
# SMP (default 2) and MEM (default 2048, MiB) size the machine.
set -eu

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${1:-_build-aarch64}
[ $# -gt 0 ] && shift
cc=${AARCH64_CC:-aarch64-linux-gnu-gcc}

for tool in "$cc" qemu-system-aarch64 cpio; do
    command -v "$tool" >/dev/null 2>&1 || { echo "aarch64.sh: $tool is not installed"; exit 1; }
done

if [ ! -x "$builddir/tests/check_sched" ]; then
    mkdir -p "$builddir"
    (cd "$builddir" &&
     PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig \
         "$srcdir/configure" --host=aarch64-linux-gnu --disable-shared &&
     make -j"$(nproc)" check TESTS= LDFLAGS=-all-static)
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -z "${KERNEL:-}" ]; then
    pkg=$(apt-cache depends linux-image-arm64:arm64 | sed -n 's/^ *Depends: \(linux-image-[^ ]*\).*/\1/p' | head -n 1)
    [ -n "$pkg" ] || { echo "aarch64.sh: no arm64 kernel package found; set KERNEL"; exit 1; }
    case $pkg in *:arm64) ;; *) pkg=$pkg:arm64 ;; esac
    (cd "$tmp" && apt-get download "$pkg" && dpkg-deb -x ./*.deb kernel)
    for KERNEL in "$tmp"/kernel/boot/vmlinuz-*; do :; done
fi

root=$tmp/root
mkdir -p "$root/tests"
"$cc" -static -O2 -Wall -o "$root/init" "$srcdir/tests/vm/init.c"
if [ $# -eq 0 ]; then
    set -- tests/switch_test
    for t in "$builddir"/tests/check_*; do
        t=${t##*/}
        case $t in *.*) continue ;; esac   # logs, results, sources
        [ -x "$builddir/tests/$t" ] && set -- "$@" "tests/$t"
    done
fi
for p in "$@"; do
    if ! file -L "$builddir/$p" | grep -q 'ARM aarch64.*statically linked'; then
        echo "aarch64.sh: $builddir/$p is not a static aarch64 program"
        exit 1
    fi
    cp "$builddir/$p" "$root/tests/"
done
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$tmp/initrd.gz"

# panic=-1: a crash of /init reboots, and -no-reboot turns that into an exit.
qemu-system-aarch64 -M virt -cpu max -smp "${SMP:-2}" -m "${MEM:-2048}" \
    -nographic -no-reboot -nic none -kernel "$KERNEL" -initrd "$tmp/initrd.gz" \
    -append "console=ttyAMA0 quiet panic=-1" | tee "$tmp/console"
grep -q '^init: .* 0 failed' "$tmp/console"
