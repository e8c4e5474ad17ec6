#!/bin/sh
# test_check_book.sh - proves scripts/check-book can fail: it must pass the
# book as it is, and reject a copy of the kit in which a function the book
# names is renamed, a tag it names is gone, a listing's source has changed,
# or a file it names has moved.
set -u
cd "$(dirname "$0")/.." || exit 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

fresh() { # a copy of what the check reads
    rm -rf "$tmp/kit"
    mkdir "$tmp/kit"
    cp -r src demos tests scripts book "$tmp/kit/"
}

expect() { # expect pass|fail WHAT
    if "$tmp/kit/scripts/check-book" >"$tmp/out" 2>&1; then got=pass; else got=fail; fi
    if [ "$got" = "$1" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "WRONG: $2: the check said $got"
        sed 's/^/    /' "$tmp/out"
    fi
}

fresh
expect pass "the book as it is"

refs=$(scripts/check-book --resolve)
fn=$(echo "$refs" | awk -F'\t' '/\(\)/ { print; exit }')
name=${fn%%()*} file=${fn#*	}
file=${file%:*}
[ -n "$name" ] || { echo "WRONG: the book names no function"; exit 1; }
fresh
sed -i "s/\\b$name(/${name}_renamed(/g" "$tmp/kit/$file"
expect fail "$name() renamed in $file"

tag=$(echo "$refs" | awk -F'\t' '/^go:/ { print $1; exit }')
[ -n "$tag" ] || { echo "WRONG: the book names no tag"; exit 1; }
fresh
sed -i "s/$tag\\([^0-9]\\)/\\1/g" "$tmp/kit/src/sharedcalls.c"
expect fail "$tag removed from the port"

listing=$(grep -ho '<!-- listing: [^ ]* [^ ]*' book/*.md | head -1)
if [ -n "$listing" ]; then
    listing=${listing#"<!-- listing: "}
    source=${listing%% *} what=${listing#* }
    fresh
    case $what in
    go:*) sed -i "0,/$what/s//$what changed/" "$tmp/kit/$source" ;;
    *) sed -i "/^[A-Za-z_].*\\b$what(/,/^}/s/^}/} \\/* changed *\\//" "$tmp/kit/$source" ;;
    esac
    expect fail "the source of the listing of $source $what changed"
else
    echo "WRONG: the book has no listing"
    failed=$((failed + 1))
fi

fresh
rm "$tmp/kit/src/gate.h"
expect fail "src/gate.h, which the book names, removed"

echo "check-book self-test: $passed passed, $failed failed"
[ $failed -eq 0 ]
