#!/bin/sh
# Every function declared in include/ringo.h has a man page under man/man3,
# every page renders without warnings, and every page is installed.
src="${top_srcdir:-.}"
status=0
funcs=$(grep -oE '\bringo_[a-z_0-9]+[[:space:]]*\(' "$src/include/ringo.h" | tr -d '( ' | sort -u)
for f in $funcs; do
    if [ ! -f "$src/man/man3/$f.3" ]; then
        echo "no man page for $f (expected man/man3/$f.3)"
        status=1
    fi
    if ! grep -q "man/man3/$f.3" "$src/man/man3.am"; then
        echo "man/man3/$f.3 is not listed in man/man3.am (not installed)"
        status=1
    fi
done
for page in "$src"/man/man3/*.3 "$src"/man/man7/*.7; do
    if head -n 1 "$page" | grep -q '^\.so '; then
        target="$src/man/$(head -n 1 "$page" | cut -d' ' -f2)"
        [ -f "$target" ] || { echo "$page: .so target $target missing"; status=1; }
        continue
    fi
    for section in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
        grep -q "^\.SH \"\{0,1\}$section" "$page" || { echo "$page: no $section section"; status=1; }
    done
    case "$page" in
    */man3/*)
        for section in "RETURN VALUE" ERRORS EXAMPLES; do
            grep -q "^\.SH \"\{0,1\}$section" "$page" || { echo "$page: no $section section"; status=1; }
        done ;;
    esac
    if command -v groff >/dev/null 2>&1; then
        out=$(groff -man -ww -z "$page" 2>&1)
        [ -z "$out" ] || { echo "$page: groff warnings:"; echo "$out"; status=1; }
    fi
done
[ $status -eq 0 ] && echo "ok: $(echo "$funcs" | wc -w) functions documented"
exit $status
