#!/bin/sh
# model.sh - make model: Spin checks every interleaving of the port's model
# (tests/model/sharedcalls.pml), correct and with each mistake of the bug zoo.
#
#   scripts/model.sh            the table, then each counterexample as a
#                               timeline of the callers' steps
#   scripts/model.sh VARIANT    one variant's counterexample only (a mutant
#                               of src/zoo.h, lost_wakeup or busy_wait)
#
# The correct model must verify for three and four callers: no assertion
# fails, no caller is blocked for good (an invalid end state), and no cycle
# runs without progress. Every mutant named in src/zoo.h must break the
# property this script expects of it, and so must the model's own two
# variants. Exits 1 otherwise, with the trail of whatever failed.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
model=$here/tests/model/sharedcalls.pml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# An exploding state space fails, not swaps. dash and bash have ulimit -v;
# a shell without it goes on with no limit.
# shellcheck disable=SC3045
ulimit -v 4000000 2>/dev/null || true

mutants=$(sed -n 's/^#define SC_MUTANT_\([a-z_]*\) .*/\1/p' "$here/src/zoo.h")
[ -n "$mutants" ] || { echo "model.sh: no mutants in src/zoo.h" >&2; exit 1; }

# What each variant must break: the names found() gives. A mutant that
# src/zoo.h lists and this table does not fails the run.
expected() {
    case $1 in
    lookup_unlocked) echo "race on the map|read after free|two flights at once" ;;
    wait_no_predicate) echo "wrong value|a caller waits forever" ;;
    early_free) echo "read after free|freed twice|freed while a caller sleeps on it" ;;
    publish_before_write) echo "wrong value" ;;
    delete_unlocked) echo "race on the map" ;;
    done_before_delete) echo "joined a finished flight" ;;
    lost_wakeup) echo "a caller waits forever" ;;
    busy_wait) echo "a cycle without progress" ;;
    *) echo "(no expectation: add one to scripts/model.sh)" ;;
    esac
}

# VARIANT -> the mutant built in, whether waits wake spuriously, and the
# check: sets mutant, spurious and check.
setting() {
    case $1 in
    lost_wakeup) mutant=wait_no_predicate spurious=0 check=safety ;; # the lost wake-up alone
    busy_wait) mutant=busy_wait spurious=1 check=progress ;;
    *) mutant=$1 spurious=1 check=safety ;;
    esac
}

# The names of the properties, from the text of the failed assertion.
property() {
    case $1 in
    *"(owner==me)"*) echo "unlocked by a non-owner" ;;
    *"!(map_changing)"*) echo "race on the map" ;;
    *"||"*) echo "two flights at once" ;;
    *"(infn==0)"*) echo "two fns at once" ;;
    *"!(rec[r].freed)"*) echo "read after free" ;;
    *"(rec[r].freed==0)"*) echo "freed twice" ;;
    *"(waits_on[i]!=r)"*) echo "freed while a caller sleeps on it" ;;
    *"(rec[r].refs>0)"*) echo "reference count below zero" ;;
    *"!(rec[r].ended)"*) echo "joined a finished flight" ;;
    *"(val==(r+1))"*) echo "wrong value" ;;
    *"inmap==255"*) echo "map not empty at the end" ;;
    *"rec[i].freed"*) echo "record leaked" ;;
    *) echo "assertion $1" ;;
    esac
}

now() { date +%s.%N; }

# found DIR: what its trail breaks, from the replay (pan -i may have found
# other errors first, on the way to the shortest trail).
found() {
    text=$(sed -n 's/^spin: text of failed assertion: //p' "$1/replay.log" | head -n 1)
    if [ -n "$text" ]; then
        property "$text"
    elif grep -q "START OF CYCLE" "$1/replay.log"; then
        echo "a cycle without progress"
    else
        echo "a caller waits forever"
    fi
}

# verify NAME MUTANT CALLERS SPURIOUS CHECK: runs pan in $tmp/NAME. CHECK is
# safety (assertions and end states, shortest trail: pan -i) or progress
# (cycles without progress). Prints the table's line and leaves
# $tmp/NAME/result: verified, counterexample: PROPERTY, or failed: WHY.
# shellcheck disable=SC2086 # flags and cc are lists of options, split on purpose
verify() {
    d=$tmp/$1
    rm -rf "$d"
    mkdir -p "$d"
    cp "$model" "$d/sharedcalls.pml"
    flags="-DN=$3 -DSPURIOUS=$4 -DMUTANT=$2"
    echo "$flags" >"$d/flags"
    t0=$(now)
    if [ "$5" = progress ]; then
        cc="-DNP" run="./pan -l -m2000000"
    else
        cc="-DSAFETY -DREACH" run="./pan -i -m2000000"
    fi
    if ! (cd "$d" && spin -a $flags sharedcalls.pml >spin.log 2>&1); then
        result="failed: spin -a (see spin.log)"
    elif ! (cd "$d" && gcc -w -O2 $cc -o pan pan.c >gcc.log 2>&1); then
        result="failed: gcc pan.c"
    else
        (cd "$d" && $run >pan.log 2>&1) || true
        errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$d/pan.log")
        if [ -n "$errors" ] && [ "$errors" != 0 ]; then # it stops at one
            (cd "$d" && spin -t -p $flags sharedcalls.pml >replay.log 2>&1) || true
            result="counterexample: $(found "$d")"
        elif grep -q -e "Search not completed" -e "max search depth too small" \
            -e "out of memory" "$d/pan.log"; then
            result="failed: search incomplete (see pan.log)"
        elif [ "$errors" = 0 ]; then
            result=verified
        else
            result="failed: pan did not finish"
        fi
    fi
    echo "$result" >"$d/result"
    states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$d/pan.log" 2>/dev/null)
    printf '%-22s %7s %8s %-8s %9s  %-50s %5.1fs\n' "$1" "$3" "$4" "$5" \
        "${states:-?}" "$result" "$(echo "$(now) $t0" | awk '{ print $1 - $2 }')"
}

# timeline NAME: NAME's trail as one column per caller, each step named by
# the tag and words on its line of the model.
timeline() {
    d=$tmp/$1
    echo "$1 ($(cat "$d/flags")): $(sed 's/^counterexample: //' "$d/result")"
    awk -v callers="$(sed 's/.*-DN=\([0-9]*\).*/\1/' "$d/flags")" \
        -v broke="$(sed 's/^counterexample: //' "$d/result")" '
    FNR == NR { # the model: each line'"'"'s step, from its comment
        if (match($0, /\/\* (go:[0-9]+( go:[0-9]+)*|c-only) [^*]*\*\//))
            step[FNR] = substr($0, RSTART + 3, RLENGTH - 6)
        next
    }
    function cell(pid, text,   s, i) { # pid 0: init, across the columns
        s = sprintf("%4d  ", ++row)
        for (i = 1; i < pid; i++)
            s = s sprintf("%-27s", "")
        print s text
    }
    # One row per step of the trail that changes something (not a bare
    # test); a wait, which takes several steps, says which one.
    function flush(   label) {
        if (depth == "")
            return
        if (failing) {
            if (step[line] != "")
                cell(pid, step[line])
            cell(pid, "** " broke)
            over = 1
            return
        }
        if (!acts || step[line] == "")
            return
        label = step[line]
        if (label ~ /wait/) {
            sub(/ \(unlocks\)/, "", label)
            if (what ~ /woken\[me\] = 0/) label = label ": sleeps"
            else if (what ~ /progress_spurious|!\(woken\[me\]\)/) label = label ": spurious"
            else if (what ~ /\(woken\[me\]\)/) label = label ": woken"
            else if (what ~ /owner = me/) label = label ": relocks"
        }
        if ((pid SUBSEP label) != shown) # one change of the map, say
            cell(pid, label)
        shown = pid SUBSEP label
    }
    BEGIN {
        printf "      "
        for (i = 0; i < callers; i++)
            printf "%-27s", "caller " i
        print ""
    }
    over { next }
    /START OF CYCLE/ { flush(); depth = ""; cell(0, "-- from here the callers go round for ever --"); next }
    /Error: assertion violated/ { flush(); depth = ""; failing = 1; next }
    /^spin: trail ends/ { flush(); depth = ""; next }
    /^#processes/ { final = 1; next } # the state the trail ends in
    !/proc +[0-9]+ \((Caller|:init:)/ { next }
    final { # a caller still inside its call is blocked for good
        p = $0; sub(/.*proc +/, "", p); split($0, a, "sharedcalls.pml:")
        if (step[a[2] + 0] != "")
            cell(p + 0, "** " broke ": " step[a[2] + 0])
        next
    }
    {
        d = $1
        if (d != depth) {
            flush()
            depth = d; acts = 0; what = ""
            pid = $0; sub(/.*proc +/, "", pid); pid += 0
            split($0, a, "sharedcalls.pml:"); line = a[2] + 0
        }
        stmt = $0; sub(/^[^[]*\[/, "", stmt)
        what = what " " stmt
        if (stmt ~ /[^=!<>]=[^=]/) acts = 1
    }
    ' "$d/sharedcalls.pml" "$d/replay.log"
    echo
}

# The model names C lines by their tags: each must be one the port carries.
unknown=$(grep -o 'go:[0-9][0-9]*' "$model" | sort -u | while read -r tag; do
    grep -q "${tag}[^0-9]" "$here/src/sharedcalls.c" || printf ' %s' "$tag"
done)
[ -z "$unknown" ] ||
    { echo "model.sh: $model names$unknown, which src/sharedcalls.c does not carry" >&2; exit 1; }

command -v spin >/dev/null || { echo "model.sh: spin is missing (scripts/deps.sh model)" >&2; exit 1; }

# caught VARIANT: whether its result is a counterexample it should give.
caught() {
    r=$(sed -n 's/^counterexample: //p' "$tmp/$1/result")
    [ -n "$r" ] && echo "|$(expected "$1")|" | grep -qF "|$r|"
}

variants="$(echo "$mutants" | tr '\n' ' ')lost_wakeup busy_wait" # one line
if [ $# -eq 1 ]; then
    echo " $variants " | grep -q " $1 " || { echo "model.sh: no variant '$1' (one of: $variants)" >&2; exit 2; }
    setting "$1"
    verify "$1" "$mutant" 3 "$spurious" "$check" >/dev/null
    if [ -f "$tmp/$1/replay.log" ]; then timeline "$1"; fi
    caught "$1" || { echo "model.sh: $1: $(cat "$tmp/$1/result"), not: $(expected "$1")" >&2; exit 1; }
    exit 0
fi

printf '%-22s %7s %8s %-8s %9s  %-50s %6s\n' variant callers spurious check \
    states result time
bad=""
for n in 3 4; do
    for check in safety progress; do
        verify "correct-$n-$check" 0 "$n" 1 "$check"
        [ "$(cat "$tmp/correct-$n-$check/result")" = verified ] || bad="$bad correct-$n-$check"
    done
done
for v in $variants; do
    setting "$v"
    verify "$v" "$mutant" 3 "$spurious" "$check"
    caught "$v" || bad="$bad $v"
done
echo
for v in $variants; do
    case $(cat "$tmp/$v/result") in counterexample*) timeline "$v" ;; esac
done
for v in $bad; do # a correct model's failure, with its trail if any
    case $v in
    correct*) [ -f "$tmp/$v/replay.log" ] && timeline "$v" ;;
    *) echo "$v: $(cat "$tmp/$v/result"); expected: $(expected "$v")" ;;
    esac
done
if [ -n "$bad" ]; then
    echo "model.sh: FAILED:$bad" >&2
    exit 1
fi
echo "model.sh: the correct model verified; every variant broke what it should"
