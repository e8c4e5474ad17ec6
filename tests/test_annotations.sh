#!/bin/sh
# test_annotations.sh - proves scripts/check-annotations can fail: it must
# pass the port as it is, and reject each broken copy made here.
set -u
cd "$(dirname "$0")/.." || exit 2
check=scripts/check-annotations
port=src/sharedcalls.c
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

expect() { # expect pass|fail WHAT FILE
    if $check "$3" >"$tmp/out" 2>&1; then got=pass; else got=fail; fi
    if [ "$got" = "$1" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "WRONG: $2: the check said $got"
        sed 's/^/    /' "$tmp/out"
    fi
}

cp "$port" "$tmp/sharedcalls.c"
expect pass "the port as it is" "$tmp/sharedcalls.c"

# Each listed Go line, with every tag for it removed (book/02-go-original.md
# lists the 28).
lines=$($check --table "$port" | awk -F'|' 'NR > 2 { print $2 + 0 }')
[ "$(echo "$lines" | wc -w)" -eq 28 ] || { echo "WRONG: the list is not the 28 lines of book/02-go-original.md"; exit 1; }
for n in $lines; do
    sed "s/go:$n\([^0-9]\)/\1/g" "$port" >"$tmp/sharedcalls.c"
    expect fail "go:$n removed" "$tmp/sharedcalls.c"
done

# A tag for a line outside the list, a malformed tag, a c-only without a
# reason, and a tag in the wrong function.
sed '0,/go:37 /s//go:37 go:41 /' "$port" >"$tmp/sharedcalls.c"
expect fail "go:41 (a blank line) added" "$tmp/sharedcalls.c"
sed '0,/go:37 /s//go:37 go:3x /' "$port" >"$tmp/sharedcalls.c"
expect fail "malformed go:3x added" "$tmp/sharedcalls.c"
sed '0,/c-only: [^*]*/s//c-only: /' "$port" >"$tmp/sharedcalls.c"
expect fail "c-only: without a reason" "$tmp/sharedcalls.c"
sed '0,/go:31 /s//go:31 go:62 /' "$port" >"$tmp/sharedcalls.c"
expect fail "go:62 (makeCall) tagged in sc_new" "$tmp/sharedcalls.c"

echo "annotation self-test: $passed passed, $failed failed"
[ $failed -eq 0 ]
