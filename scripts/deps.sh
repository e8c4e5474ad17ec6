#!/bin/sh
# deps.sh - installs the Debian packages the kit needs, and only those missing.
#
#   scripts/deps.sh          what make, make check and make demo need
#   scripts/deps.sh lint     also what make lint needs
#   scripts/deps.sh race     also what make race and make race-zoo need
#   scripts/deps.sh model    also what make model needs
#   scripts/deps.sh book     also what make book needs
#   scripts/deps.sh clang    also clang, for make CC=clang
#
# As root it runs apt-get; as anyone else it prints the exact command and
# exits 1. With nothing missing it installs nothing and exits 0 at once.
# SC_NO_DEPS=1 skips the check (for machines that are not Debian).
set -eu

# The groups asked for; from here on the packages are the positional
# parameters, a list whose words need no splitting.
groups=$*
# build-essential: gcc and make; libcunit1-dev: the tests; uthash-dev: the
# calls map; valgrind: memcheck and Helgrind; pkg-config: the install check;
# libncurses-dev: the timeline demo; tmux: its terminal test; python3: the
# check that its JSON and SVG parse; libsqlite3-dev: the stampede demo's
# database; man-db and groff-base: the check that the man pages render;
# libhiredis-dev: libsharedcalls-redis; redis-server: what its tests run.
set -- build-essential libcunit1-dev uthash-dev valgrind pkg-config \
    libncurses-dev tmux python3 libsqlite3-dev man-db groff-base \
    libhiredis-dev redis-server
for group in $groups; do
    case $group in
    lint) set -- "$@" clang-format clang-tidy cppcheck shellcheck ;;
    # valgrind-dbg: Valgrind's own frames get names in reports and in any
    # suppression; gcc's sanitizer runtimes come with build-essential.
    race) set -- "$@" valgrind-dbg ;;
    model) set -- "$@" spin ;; # the model checker
    book) set -- "$@" pandoc ;; # Markdown to one HTML file
    clang) set -- "$@" clang ;; # make CC=clang
    *) echo "deps.sh: unknown group '$group' (known: lint race model book clang)" >&2 && exit 2 ;;
    esac
done

[ "${SC_NO_DEPS:-0}" = 1 ] && exit 0
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: no dpkg-query: this is not Debian. Install the equivalents of" >&2
    echo "  $*" >&2
    echo "then run make with SC_NO_DEPS=1." >&2
    exit 1
fi

installed=" $(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null |
    awk '$NF == "installed" { printf "%s ", $1 }')"
# Keep the missing ones: each turn takes a package off the front, and puts
# it back at the end unless it is installed.
for p; do
    shift
    case $installed in
    *" $p "*) ;;
    *) set -- "$@" "$p" ;;
    esac
done
[ $# -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: sharedcalls needs these Debian packages: $*" >&2
    echo "Install them as root, then run make again:" >&2
    echo "  sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends $*'" >&2
    exit 1
fi
echo "deps.sh: installing $*"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "$@"
