# race-lib.sh - runs one program under one tool and judges the run.
# Sourced by scripts/race.sh and scripts/zoo.sh from the repository's top
# folder; POSIX sh plus `local` (dash, bash and busybox have it), so the
# callers' variables stay theirs.
#
# Tools: helgrind drd memcheck (Valgrind, on a plain build), tsan asan
# (instrumented builds), plain (no tool: only the program's own checks).

# shellcheck shell=sh disable=SC3043 # local, as said above

# The sanitizer a tool's build needs (empty: the plain build).
san_of() {
    case $1 in
    tsan) echo thread ;;
    asan) echo address,undefined ;;
    *) echo "" ;;
    esac
}

# The build folder, under ROOT, whose binaries TOOL runs.
variant_of() { # TOOL ROOT
    case $1 in
    tsan | asan) echo "$2/$1" ;;
    *) echo "$2" ;;
    esac
}

# Builds PROGRAMS (paths under the build folder) for TOOL in ROOT; extra
# make arguments (MUTANT=...) follow. Quiet unless it fails.
build_for() { # TOOL ROOT "PROGRAMS" [MAKE ARGS...]
    local tool="$1" dir progs="$3" targets="" p
    dir=$(variant_of "$1" "$2")
    shift 3
    for p in $progs; do targets="$targets $dir/$p"; done
    # shellcheck disable=SC2086 # targets are words
    ${MAKE:-make} -s B="$dir" SAN="$(san_of "$tool")" "$@" $targets \
        >"$dir.build.log" 2>&1 || {
        echo "build failed for $tool in $dir:"
        tail -20 "$dir.build.log"
        return 1
    }
}

supp=$PWD/scripts/suppressions

# Runs PROGRAM under TOOL with a time limit, output in LOG. Sets SECS and
# STATUS: clean; "N errors" (the tool reported N); failed (no report, but
# the program failed its own checks or died); hang (out of time, or the
# program's watchdog saw no progress; a run killed by SIGKILL counts too).
# Sets KINDS to what was seen: race, sync (a lock or condition variable
# misused), memory (use after free, double free, invalid access), leak,
# wrong (the program's own check failed), hang, crash (the program or the
# tool died), other.
# shellcheck disable=SC2034 # SECS and STATUS are for the caller
run_tool() { # TOOL PROGRAM LOG SECONDS [ARGUMENT...]
    local tool="$1" prog="$2" log="$3" limit="$4" vg cmd start rc n hung
    shift 4
    vg="valgrind --error-exitcode=99 --num-callers=30 --suppressions=$supp/$tool.supp"
    case $tool in
    helgrind) cmd="$vg --tool=helgrind" ;;
    drd) cmd="$vg --tool=drd" ;;
    memcheck) cmd="$vg --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect" ;;
    tsan) cmd="env TSAN_OPTIONS=halt_on_error=1:exitcode=99:suppressions=$supp/tsan.supp" ;;
    asan) cmd="env ASAN_OPTIONS=halt_on_error=1:exitcode=99 LSAN_OPTIONS=suppressions=$supp/asan.supp UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1" ;;
    plain) cmd="" ;;
    esac
    mkdir -p "$(dirname "$log")"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086 # cmd is words
    timeout -k 5 "$limit" $cmd "$prog" "$@" >"$log" 2>&1
    rc=$?
    SECS=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

    n=0
    case $tool in
    helgrind | drd | memcheck)
        n=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -1) ;;
    tsan) n=$(grep -c 'WARNING: ThreadSanitizer:' "$log") ;;
    asan) n=$(grep -cE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log") ;;
    esac
    n=${n:-0}

    KINDS=""
    see() { KINDS="${KINDS:+$KINDS+}$1"; }
    grep -qE 'Possible data race|Conflicting (load|store)|ThreadSanitizer: data race' "$log" && see race
    grep -qE 'pthread_(cond|mutex)_[a-z]+: |lock order|unlocked a not-locked|ThreadSanitizer: (unlock|destroy|lock-order)|(Destroying|not a) (condition variable|mutex)|has not been initialized|Mutex not locked' "$log" && see sync
    grep -qE 'use-after-free|double-free|Invalid (read|write|free)|free\(\): |double free' "$log" && see memory
    grep -qE '(definitely|indirectly) lost: [1-9]|LeakSanitizer' "$log" && see leak
    # CUnit's failed assertions ("  1. file.c:12  - ..."), or the demo's tally
    grep -qE '^ +[0-9]+\. [^ ]+:[0-9]+ +- ' "$log" && see wrong
    grep -q '^fn ran ' "$log" && ! grep -q '^fn ran 1 time(s) for 5 callers; 5 got' "$log" && see wrong
    grep -qE "Assertion '.*' failed|the 'impossible' happened" "$log" && see crash
    hung=0
    if [ $rc -eq 124 ] || [ $rc -eq 137 ] || grep -q '^HANG:' "$log"; then
        hung=1
        see hang
    fi
    [ $rc -ge 128 ] && [ $hung -eq 0 ] && ! echo "$KINDS" | grep -q crash && see crash
    [ $rc -ne 0 ] && [ -z "$KINDS" ] && [ "$n" -eq 0 ] && see other

    if [ $hung -eq 1 ]; then
        STATUS=hang
    elif [ "$n" -gt 0 ]; then
        STATUS="$n errors"
    elif [ $rc -ne 0 ]; then
        STATUS=failed
    else
        STATUS=clean
    fi
}
