#!/bin/sh
# zoo.sh - the bug zoo: each mistake of src/zoo.h, built into the port one
# at a time, runs the stress test and the five-thread demo under every tool.
# The table says what each tool saw; scripts/zoo-expected.txt says what it
# must see. Exits 1 when a run misses a catch the table demands, or is not
# clean where the table says clean.
#
#   scripts/zoo.sh [MUTANT ...]          (every mutant in the table if none)
#
# What a cell shows: race (a data race report), sync (a lock or condition
# variable misused), memory (use after free, double free, invalid access),
# leak, wrong (a check of the program failed: a wrong value, fn run twice),
# hang (no progress: a lost wake-up), crash (the program or the tool died);
# "-" for a clean run. A "!" marks a cell that is not as expected.
# The stress test runs on 16 keys, so flights have many followers: the
# windows in which these mistakes bite open often. The semantics suite adds
# checks that need no luck, such as injected spurious wake-ups.
# Logs: build/zoo/MUTANT/logs/TOOL.PROGRAM.log
set -u
cd "$(dirname "$0")/.." || exit 2
. scripts/race-lib.sh

table=scripts/zoo-expected.txt
mismatches=build/zoo/mismatches
mkdir -p build/zoo
: >"$mismatches"
# Three of the programs make list-programs names, from the Makefile's lists.
programs="tests/test_stress tests/test_semantics demos/once"
known=" $(${MAKE:-make} -s --no-print-directory list-programs) "
for prog in $programs; do
    case $known in
    *" $prog "*) ;;
    *) echo "zoo.sh: $prog is not among make list-programs" >&2 && exit 2 ;;
    esac
done
rows=$(grep -v '^#' "$table" | grep -v '^[[:space:]]*$')
tools=$(echo "$rows" | head -1 | cut -d' ' -f2- | xargs)
rows=$(echo "$rows" | tail -n +2)
if [ $# -gt 0 ]; then
    for m in "$@"; do
        echo "$rows" | grep -q "^$m " ||
            { echo "zoo.sh: no mutant '$m' in $table" >&2 && exit 2; }
    done
    rows=$(for m in "$@"; do echo "$rows" | grep "^$m "; done)
fi

printf '%-22s' mutant
for tool in $tools; do printf '%-18s ' "$tool"; done
echo
built="" # the build folders made so far: Valgrind's tools share one
echo "$rows" | while read -r mutant expects; do
    [ -n "$mutant" ] || continue
    root=build/zoo/$mutant
    printf '%-22s' "$mutant"
    # shellcheck disable=SC2086 # one expected cell per tool, split on purpose
    set -- $expects
    for tool in $tools; do
        expect=$1
        shift
        dir=$(variant_of "$tool" "$root")
        case " $built " in
        *" $dir "*) ;;
        *)
            build_for "$tool" "$root" "$programs" MUTANT="$mutant" || exit 1
            built="$built $dir"
            ;;
        esac
        case $tool in
        helgrind | drd | memcheck) threads=4 calls=2000 limit=180 watchdog=30 ;;
        *) threads=8 calls=20000 limit=90 watchdog=5 ;;
        esac
        seen=""
        for prog in $programs; do
            SC_STRESS_THREADS=$threads SC_STRESS_CALLS=$calls SC_STRESS_PORT_ONLY=1 \
                SC_STRESS_KEYS=16 SC_WATCHDOG_S=$watchdog \
                run_tool "$tool" "$(variant_of "$tool" "$root")/$prog" \
                "$root/logs/$tool.${prog#*/}.log" "$limit"
            [ "$STATUS" = clean ] || seen="${seen:+$seen+}${KINDS:-other}"
        done
        seen=$(echo "$seen" | tr '+' '\n' | sort -u | paste -sd+ -)
        mark=""
        case $expect in
        any) ;;
        clean) [ -z "$seen" ] || mark="!" ;;
        catch) [ -n "$seen" ] || mark="!" ;;
        *) # kinds, one of which must have been seen
            mark="!"
            for kind in $(echo "$expect" | tr '|' ' '); do
                case $kind in
                race | sync | memory | leak | wrong | hang | crash | other) ;;
                *) echo "zoo.sh: '$kind' in $table is no kind" >&2 && exit 2 ;;
                esac
                case "+$seen+" in *"+$kind+"*) mark="" ;; esac
            done
            ;;
        esac
        printf '%-18s ' "${seen:--}$mark"
        [ -z "$mark" ] || echo "$mutant $tool: expected $expect, saw ${seen:-nothing}" >>"$mismatches"
    done
    echo
done
rc=$?
echo
echo "expected: $table; logs: build/zoo/MUTANT/logs/"
if [ $rc -ne 0 ]; then
    exit $rc
fi
if [ -s "$mismatches" ]; then
    echo "zoo: not as expected:"
    sed 's/^/  /' "$mismatches"
    exit 1
fi
echo "zoo: every mutant caught as $table expects"
