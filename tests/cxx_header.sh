#!/bin/sh
# include/ringo.h compiles, warning-free, as every C++ standard from C++11
# (and every C standard from C99) that the compilers here support: $CXX,
# g++ and clang++ for C++, $CC, gcc and clang for C.  The program also
# checks that ringo_exit is declared as not returning: a noreturn function
# that calls it would otherwise warn "does return", an error under -Werror.
# Skips (77) only when no C++ compiler is found at all.
src="${top_srcdir:-.}"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/t.c" <<'EOF'
#include <ringo.h>
#include <ringo.h> /* the include guard holds */

RINGO_NORETURN static void leave(void)
{
    ringo_exit();
}

int main(void)
{
    struct ringo_config cfg = { 0, 0, 0, 0, 0 };
    struct ringo_stats st;
    ringo_mutex m = RINGO_MUTEX_INIT;
    void (*f)(void) = leave;
    (void)cfg; (void)st; (void)m; (void)f;
    return ringo_now() < 0;
}
EOF
cp "$tmp/t.c" "$tmp/t.cc"
echo 'int main(void) { return 0; }' > "$tmp/e.c"
cp "$tmp/e.c" "$tmp/e.cc"

# Compilers found, each once (CXX=g++ and g++ are the same compiler).
found() { # found LIST NAME...: print LIST's commands that exist, no repeats
    seen=""
    for c in "$@"; do
        [ -n "$c" ] || continue
        p=$(command -v "$c" 2>/dev/null) || continue
        p=$(readlink -f "$p")
        case " $seen " in *" $p "*) continue ;; esac
        seen="$seen $p"
        echo "$c"
    done
}
cxxs=$(found "$CXX" g++ clang++)
ccs=$(found "$CC" gcc clang)
if [ -z "$cxxs" ]; then
    echo "SKIP: no C++ compiler found (CXX='$CXX', g++, clang++)"
    exit 77
fi

status=0
n=0
# try COMPILER LANG-FILE STANDARD
try() {
    # A standard the compiler does not know is not tested with it.
    if ! $1 -std="$3" -c -o "$tmp/e.o" "$tmp/e.$2" 2>/dev/null; then
        echo "-- $1 -std=$3: not supported by this compiler"
        return 0
    fi
    if out=$($1 -std="$3" -Wall -Wextra -pedantic -Werror -I"$src/include" \
             -c -o "$tmp/t.o" "$tmp/t.$2" 2>&1); then
        echo "ok: $1 -std=$3"
        n=$((n + 1))
    else
        echo "FAIL: $1 -std=$3:"
        echo "$out"
        status=1
    fi
}
for cxx in $cxxs; do
    for std in c++11 c++14 c++17 c++20; do
        try "$cxx" cc "$std"
    done
    # C++23 under the name this compiler knows.
    if $cxx -std=c++23 -c -o "$tmp/e.o" "$tmp/e.cc" 2>/dev/null; then
        try "$cxx" cc c++23
    else
        try "$cxx" cc c++2b
    fi
done
for cc in $ccs; do
    for std in c99 c11 c17 c2x; do
        try "$cc" c "$std"
    done
done
[ $status -eq 0 ] && echo "ok: ringo.h compiled $n ways"
exit $status
