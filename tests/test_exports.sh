#!/bin/sh
# test_exports.sh - the shared library exports the public API and nothing
# else: every function src/sharedcalls.h declares with SC_API, and no other
# symbol (no engine or port internals, no helper a program could bind to).
#
#   tests/test_exports.sh BUILD_DIR
set -eu
b=${1:-build}
cd "$(dirname "$0")/.."
so=$b/libsharedcalls.so
[ -e "$so" ] || { echo "no $so: build it first"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The API: each SC_API declaration's function name, from the header.
sed -n 's/^SC_API [^(]*[ *]\(sc_[a-z_]*\)(.*/\1/p' src/sharedcalls.h | sort >"$tmp/api"
[ -s "$tmp/api" ] || { echo "src/sharedcalls.h declares no SC_API function"; exit 1; }
# What the library defines for the dynamic linker (its version nodes aside).
nm -D --defined-only "$so" | awk '$2 != "A" { print $3 }' | sort >"$tmp/exported"

bad=0
for sym in $(comm -13 "$tmp/api" "$tmp/exported"); do
    echo "exported but not in the API: $sym"
    bad=1
done
for sym in $(comm -23 "$tmp/api" "$tmp/exported"); do
    echo "in the API but not exported: $sym"
    bad=1
done
[ $bad -eq 0 ] && echo "$so exports exactly the $(wc -l <"$tmp/api") functions of the API"
exit $bad
