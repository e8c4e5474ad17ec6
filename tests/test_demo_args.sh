#!/bin/sh
# test_demo_args.sh - the demos' command lines: every bad argument exits 2
# with a message on stderr that names the argument and what it takes
# (before any run: nothing on stdout), and --help prints to stdout and
# exits 0. Each whole-number option of stampede is taken from its --help,
# so a new one is tested with no change here.
#
#   tests/test_demo_args.sh BUILD_DIR
set -u
b=${1:-build}
cd "$(dirname "$0")/.." || exit 2
stampede=$b/demos/stampede
once=$b/demos/once
for p in "$stampede" "$once"; do
    [ -x "$p" ] || { echo "no $p: build it first"; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
cases=0

# refused WANT PROGRAM ARG...: PROGRAM ARG... exits 2, prints nothing on
# stdout, and its stderr holds WANT. A bounded wait: a bad argument that
# is accepted starts a run.
refused() {
    want=$1
    shift
    cases=$((cases + 1))
    timeout -k 5 20 "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 2 ] || [ -s "$tmp/out" ] || ! grep -qF -- "$want" "$tmp/err"; then
        echo "FAIL: $* exited $rc; want 2 and \"$want\" on stderr, nothing on stdout"
        sed 's/^/  stderr: /' "$tmp/err" | head -5
        sed 's/^/  stdout: /' "$tmp/out" | head -5
        failed=$((failed + 1))
    fi
}

# helps PROGRAM: PROGRAM --help exits 0 with its usage on stdout alone.
helps() {
    cases=$((cases + 1))
    timeout -k 5 20 "$1" --help >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 0 ] || ! grep -q '^usage: ' "$tmp/out" || [ -s "$tmp/err" ]; then
        echo "FAIL: $1 --help exited $rc; want 0 and its usage on stdout alone"
        failed=$((failed + 1))
    fi
}

helps "$stampede"
helps "$once"

# Each whole-number option of stampede's --help (a line "  --NAME  what:
# LO to HI, default D"; an option with a metavariable, like --beta B, is
# not a whole number): below its range, above it, not a number, and no
# value, at the end or followed by another option.
"$stampede" --help |
    sed -n 's/^  --\([a-z-]*\)  *[a-z].*: \([0-9]*\) to \([0-9]*\), default.*/\1 \2 \3/p' \
        >"$tmp/numbers"
numbers=$(wc -l <"$tmp/numbers")
if [ "$numbers" -lt 10 ]; then
    echo "FAIL: stampede --help lists $numbers whole-number options; want 10 or more"
    failed=$((failed + 1))
fi
while read -r name lo hi; do
    want="--$name must be $lo-$hi"
    refused "$want" "$stampede" "--$name" $((hi + 1))
    [ "$lo" -gt 0 ] && refused "$want" "$stampede" "--$name" $((lo - 1))
    refused "$want" "$stampede" "--$name" -1
    refused "$want" "$stampede" "--$name" 2x
    refused "$want" "$stampede" "--$name" ""
    refused "$want" "$stampede" "--$name"
    refused "$want" "$stampede" "--$name" --quiet
done <"$tmp/numbers"

modes="--mode must be one of none, sharedcalls, redis, xfetch, both, all"
for bad in one e None "sharedcalls " "" --quiet; do
    refused "$modes" "$stampede" --mode "$bad"
done
refused "$modes" "$stampede" --mode
refused "--beta must be a number from 0 to 10" "$stampede" --beta 11
refused "--beta must be a number from 0 to 10" "$stampede" --beta -0.5
refused "--beta must be a number from 0 to 10" "$stampede" --beta nan
refused "--beta must be a number from 0 to 10" "$stampede" --beta
refused "--db must be a file's path" "$stampede" --db
refused "--db must be a file's path" "$stampede" --db --quiet
refused "--db must be a file's path" "$stampede" --db ""
refused "--redis must be a Unix socket's path" "$stampede" --redis "$tmp/none"
refused "--redis must be a Unix socket's path" "$stampede" --redis "$tmp"
refused "--redis must be a Unix socket's path" "$stampede" --redis
refused "--redis-password must be a password" "$stampede" --redis-password
refused "--redis-password is for --redis" "$stampede" --redis-password pw
refused "unknown option '--bogus'" "$stampede" --bogus
refused "unknown option 'bogus'" "$stampede" bogus
refused "unknown option '-h'" "$stampede" -h
refused "unknown option '--procs=4'" "$stampede" --procs=4

# once takes no option but --help.
refused "unknown argument '--threads'" "$once" --threads 3
refused "unknown argument 'bogus'" "$once" bogus
refused "unknown argument 'x'" "$once" --help x

echo "$((cases - failed)) of $cases cases passed"
[ $failed -eq 0 ]
