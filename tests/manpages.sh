#!/bin/sh
# Every function declared in include/ringo.h has a man page under man/man3
# (or is an alias, installed as a link to its family's page), every page
# renders without warnings (groff, and mandoc -Tlint when installed), and
# every page is installed.
src="${top_srcdir:-.}"
status=0
funcs=$(grep -oE '\bringo_[a-z_0-9]+[[:space:]]*\(' "$src/include/ringo.h" | tr -d '( ' | sort -u)
# A function's page is man/man3/F.3, or F.3 is an alias (F.3=PAGE.3 in
# man/man3.am, installed as a link to PAGE.3) whose page names F in NAME.
for f in $funcs; do
    alias=$(grep -o "[[:space:]]$f\.3=[a-z_0-9]*\.3" "$src/man/man3.am" | cut -d= -f2)
    if [ -n "$alias" ]; then
        if [ -f "$src/man/man3/$f.3" ]; then
            echo "man/man3/$f.3 exists and is also an alias of $alias in man/man3.am"
            status=1
        fi
        if [ ! -f "$src/man/man3/$alias" ]; then
            echo "$f: alias of $alias, which does not exist"
            status=1
        elif ! sed -n '/^\.SH NAME/,/^\.SH/p' "$src/man/man3/$alias" | grep -q "\b$f\b"; then
            echo "$f: alias of $alias, whose NAME section does not name it"
            status=1
        fi
        continue
    fi
    if [ ! -f "$src/man/man3/$f.3" ]; then
        echo "no man page for $f (expected man/man3/$f.3, or an alias in man/man3.am)"
        status=1
    fi
    if ! grep -q "man/man3/$f.3" "$src/man/man3.am"; then
        echo "man/man3/$f.3 is not listed in man/man3.am (not installed)"
        status=1
    fi
done
for page in "$src"/man/man3/*.3 "$src"/man/man7/*.7; do
    if head -n 1 "$page" | grep -q '^\.so '; then
        echo "$page: a .so page; list it in man3_aliases in man/man3.am instead (installed as a link)"
        status=1
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
    if command -v mandoc >/dev/null 2>&1; then
        out=$(mandoc -Tlint -W warning "$page" 2>&1)
        [ -z "$out" ] || { echo "$page: mandoc -Tlint warnings:"; echo "$out"; status=1; }
    fi
done
[ $status -eq 0 ] && echo "ok: $(echo "$funcs" | wc -w) functions documented"
exit $status
