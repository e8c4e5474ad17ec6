#!/bin/sh
# race.sh - every test suite and demo under the race tools, in one table.
#
#   scripts/race.sh [helgrind] [drd] [memcheck] [tsan] [asan]   (all if none)
#   RACE_SIZE=small (default) | full    the stress test's size
#
# Valgrind's tools run the plain build in build/; ThreadSanitizer and
# AddressSanitizer+UBSan run builds of their own in build/tsan and
# build/asan. Every run is bounded: one that runs out of time is a "hang".
# Logs: build/race/TOOL/PROGRAM.log. Exits 1 unless every cell is clean.
set -u
cd "$(dirname "$0")/.." || exit 2
. scripts/race-lib.sh

tools=${*:-helgrind drd memcheck tsan asan}
# The Makefile's suites and demos.
programs=$(${MAKE:-make} -s --no-print-directory list-programs)
size=${RACE_SIZE:-small}
case $size in
small) vg_threads=4 vg_calls=2000 san_threads=8 san_calls=20000 limit=300 ;;
full) vg_threads=32 vg_calls=200000 san_threads=32 san_calls=200000 limit=3600 ;;
*) echo "race.sh: RACE_SIZE is small or full" >&2 && exit 2 ;;
esac

${MAKE:-make} -s programs >/dev/null || exit 1 # the plain build, up to date
for tool in $tools; do
    case $tool in
    helgrind | drd | memcheck) ;;
    tsan | asan) build_for "$tool" build "$programs" || exit 1 ;;
    *) echo "race.sh: unknown tool '$tool'" >&2 && exit 2 ;;
    esac
done

# A program's arguments under a tool: the stampede's database work is slow
# under Valgrind, so it runs smaller there. tests/test_redis needs none:
# its forked fleet runs under the tool too (Valgrind follows fork), and
# the suite gives its locks, values and deadlines more time by itself
# when it runs under one.
arguments() { # TOOL PROGRAM
    case $1:$2 in
    helgrind:tests/test_stampede | drd:tests/test_stampede | memcheck:tests/test_stampede)
        echo 1500 ;;
    *:demos/stampede) echo --seconds 1 --rows 5000 --threads 16 --quiet ;;
    esac
}

printf '%-22s' "program"
for tool in $tools; do printf '%-17s' "$tool"; done
echo
bad=0
for prog in $programs; do
    printf '%-22s' "${prog#*/}"
    for tool in $tools; do
        case $tool in
        helgrind | drd | memcheck) threads=$vg_threads calls=$vg_calls ;;
        *) threads=$san_threads calls=$san_calls ;;
        esac
        # 16 keys: many followers per flight, so the follower path is busy.
        # shellcheck disable=SC2046 # arguments prints words, split on purpose
        SC_STRESS_THREADS=$threads SC_STRESS_CALLS=$calls SC_STRESS_KEYS=16 run_tool "$tool" \
            "$(variant_of "$tool" build)/$prog" \
            "build/race/$tool/${prog#*/}.log" "$limit" $(arguments "$tool" "$prog")
        [ "$STATUS" = clean ] || bad=$((bad + 1))
        printf '%-17s' "$STATUS ${SECS}s"
    done
    echo
done
echo
echo "stress size: $size (valgrind: threads calls = $vg_threads $vg_calls;" \
    "sanitizers: $san_threads $san_calls); logs in build/race/TOOL/PROGRAM.log"
if [ $bad -ne 0 ]; then
    echo "race: $bad run(s) not clean"
    exit 1
fi
echo "race: every program is clean under every tool"
