#!/bin/sh
# test_install.sh - `make install` into a scratch DESTDIR, then the README's
# usage example is compiled against what was installed, through pkg-config,
# once with the shared library and once statically, and run. The version
# is the same wherever it is written: the header's macros, the installed
# library's sc_version() and sc_version_string(), its file name and soname,
# and sharedcalls.pc. Last, `make uninstall` removes every file.
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

# One version everywhere.
cat >"$tmp/version.c" <<'EOF'
#include <sharedcalls.h>
#include <stdio.h>
int main(void)
{
    printf("%d.%d.%d %u %u %s\n", SC_VERSION_MAJOR, SC_VERSION_MINOR,
           SC_VERSION_PATCH, (unsigned)SC_VERSION_HEX, sc_version(),
           sc_version_string());
    return 0;
}
EOF
# shellcheck disable=SC2046
strict_cc "$tmp/version.c" $(pkg-config --cflags --libs sharedcalls) -o "$tmp/version"
# shellcheck disable=SC2046 # four words, one a field
set -- $(LD_LIBRARY_PATH="$lib" "$tmp/version")
header=$1 header_hex=$2 library_hex=$3 library=$4
pc=$(pkg-config --modversion sharedcalls)
file=$(readlink "$lib/libsharedcalls.so")
soname=$(readelf -d "$lib/libsharedcalls.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
same() { # WHAT GOT WANT
    [ "$2" = "$3" ] || { echo "version: $1 says $2, but the header says $3"; exit 1; }
}
same "sc_version_string()" "$library" "$header"
same "sc_version()" "$library_hex" "$header_hex"
same "sharedcalls.pc" "$pc" "$header"
same "the library's file name" "$file" "libsharedcalls.so.$header"
same "the soname" "$soname" "libsharedcalls.so.${header%%.*}"
echo "version $header: header, sc_version(), sharedcalls.pc, file name and soname agree"

${MAKE:-make} -s uninstall DESTDIR="$root" PREFIX="$prefix" >/dev/null
left=$(find "$root" ! -type d)
[ -z "$left" ] || { echo "make uninstall left:"; echo "$left"; exit 1; }
echo "make uninstall removed every file make install put there"

# libsharedcalls-redis: README's fleet example, built against what was
# installed, runs against a private redis-server on a Unix socket.
awk '/^```c$/ { n++; if (n == 2) { on = 1; next } } on && /^```$/ { exit } on' \
    README.md >"$tmp/fleet.c"
grep -q 'sharedcalls-redis.h' "$tmp/fleet.c" || { echo "README.md has no fleet example"; exit 1; }
${MAKE:-make} -s install DESTDIR="$root" PREFIX="$prefix" >/dev/null
# shellcheck disable=SC2046
strict_cc "$tmp/fleet.c" $(pkg-config --cflags --libs sharedcalls-redis) -o "$tmp/fleet"
password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
redis-server --port 0 --unixsocket "$tmp/redis.sock" --unixsocketperm 700 \
    --save '' --appendonly no --requirepass "$password" --dir "$tmp" \
    --logfile "$tmp/redis.log" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
i=0
until redis-cli -s "$tmp/redis.sock" --no-auth-warning -a "$password" ping >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 500 ] || { echo "redis-server did not answer"; exit 1; }
    sleep 0.01
done
got=$(LD_LIBRARY_PATH="$lib" "$tmp/fleet" "$tmp/redis.sock" "$password")
[ "$got" = "user=Alice" ] || { echo "fleet: printed '$got', want 'user=Alice'"; exit 1; }
LD_LIBRARY_PATH="$lib" ldd "$lib/libsharedcalls.so" | grep -q hiredis &&
    { echo "libsharedcalls.so links hiredis: only libsharedcalls-redis may"; exit 1; }
echo "README fleet example, built with pkg-config sharedcalls-redis, prints 'user=Alice';" \
    "libsharedcalls.so does not link hiredis"
${MAKE:-make} -s uninstall DESTDIR="$root" PREFIX="$prefix" >/dev/null
