#!/bin/sh
# test_install.sh - `make install` into a scratch DESTDIR, then the README's
# usage example is compiled against what was installed, through pkg-config,
# once with the shared library and once statically, and run.
#
#   tests/test_install.sh      (MAKE and CC are honoured)
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
prefix=/opt/sharedcalls

${MAKE:-make} -s install DESTDIR="$root" PREFIX="$prefix" >/dev/null
lib=$root$prefix/lib
for f in include/sharedcalls.h lib/libsharedcalls.a lib/libsharedcalls.so \
    lib/libsharedcalls.so.0 lib/pkgconfig/sharedcalls.pc; do
    [ -e "$root$prefix/$f" ] || { echo "not installed: $prefix/$f"; exit 1; }
done
echo "installed under DESTDIR: header, static and shared library, sharedcalls.pc"

# The first C block of README.md is the usage example.
awk '/^```c$/ { on = 1; next } on && /^```$/ { exit } on' README.md >"$tmp/example.c"
[ -s "$tmp/example.c" ] || { echo "README.md has no C example"; exit 1; }

export PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root"
strict_cc() { ${CC:-cc} -std=c11 -Wall -Wextra -Wpedantic -Werror "$@"; }
# shellcheck disable=SC2046 # pkg-config's words are meant to split
strict_cc "$tmp/example.c" $(pkg-config --cflags --libs sharedcalls) -o "$tmp/shared"
# shellcheck disable=SC2046
strict_cc "$tmp/example.c" $(pkg-config --cflags --static sharedcalls) \
    "$lib/libsharedcalls.a" -pthread -o "$tmp/static"

want="user=Alice"
got=$(LD_LIBRARY_PATH="$lib" "$tmp/shared")
[ "$got" = "$want" ] || { echo "shared: printed '$got', want '$want'"; exit 1; }
LD_LIBRARY_PATH="$lib" ldd "$tmp/shared" | grep -q "$lib/libsharedcalls.so.0" ||
    { echo "shared: not linked against the installed libsharedcalls.so.0"; exit 1; }
got=$("$tmp/static")
[ "$got" = "$want" ] || { echo "static: printed '$got', want '$want'"; exit 1; }
echo "README example, built with pkg-config: shared and static both print '$want'"
