#!/bin/sh
# bench.sh - what make bench runs: callgrind counts the instructions of the
# W1 and W2 loops (a figure that does not move with the machine's load),
# then the bench prints its table with them, then the fleet's section
# (libsharedcalls-redis on a private redis-server).
#
#   scripts/bench.sh BUILD_DIR [quick]
set -eu
b=$1
quick=${2:-}
calls=200000
[ -n "$quick" ] && calls=20000
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

per_call() { # W
    valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$tmp/$1.out" "$b/bench/bench" --callgrind "$1" "$calls" \
        >"$tmp/$1.log" 2>&1 || { cat "$tmp/$1.log" >&2; exit 1; }
    ir=$(sed -n "s/^totals: *\([0-9]*\).*/\1/p" "$tmp/$1.out")
    echo $((ir / calls))
}
ir="$(per_call W1), $(per_call W2)"
"$b/bench/bench" ${quick:+--quick} --ir "$ir"
echo
"$b/bench/fleet" ${quick:+--quick} # not exec: the trap removes $tmp
