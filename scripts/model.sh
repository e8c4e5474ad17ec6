#!/bin/sh
# model.sh - make model: Spin checks every interleaving of the port's model
# (tests/model/sharedcalls.pml), correct and with each mistake of the bug zoo.
#
#   scripts/model.sh            the table, then each counterexample as a
#                               timeline of the callers' steps
#   scripts/model.sh MUTANT     one mutant's counterexample only
#
# The correct model must verify: no assertion fails, no caller is blocked
# for good (an invalid end state), and no cycle runs without progress.
# Every mutant named in src/zoo.h must give a counterexample. Exits 1 if
# either fails.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
model=$here/tests/model/sharedcalls.pml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ulimit -v 4000000 2>/dev/null || true # an exploding state space fails, not swaps

mutants=$(sed -n 's/^#define SC_MUTANT_\([a-z_]*\) .*/\1/p' "$here/src/zoo.h")
[ -n "$mutants" ] || { echo "model.sh: no mutants in src/zoo.h" >&2; exit 1; }

now() { date +%s.%N; }

# verify NAME MUTANT CALLERS SPURIOUS MODE: runs pan in $tmp/NAME. MODE is
# safety (assertions and end states, with the shortest trail: pan -i) or
# progress (cycles without progress). Prints the table's line and leaves
# $tmp/NAME/result: verified, counterexample or failed.
verify() {
    d=$tmp/$1
    mkdir -p "$d"
    cp "$model" "$d/sharedcalls.pml"
    flags="-DN=$3 -DSPURIOUS=$4 -DMUTANT=$2"
    echo "$flags" >"$d/flags"
    t0=$(now)
    (
        cd "$d"
        spin -a $flags sharedcalls.pml >spin.log 2>&1 || { cat spin.log >&2; exit 1; }
        if [ "$5" = progress ]; then
            gcc -w -O2 -DNP -o pan pan.c && ./pan -l -m2000000 >pan.log 2>&1
        else
            gcc -w -O2 -DSAFETY -DREACH -o pan pan.c && ./pan -i -m2000000 >pan.log 2>&1
        fi
    ) || true
    secs=$(echo "$(now) $t0" | awk '{ printf "%.1f", $1 - $2 }')
    states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$d/pan.log")
    errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$d/pan.log")
    if [ "$errors" = 0 ] && ! grep -q "Search not completed" "$d/pan.log"; then
        result=verified
    elif [ -n "$errors" ] && [ "$errors" != 0 ]; then
        result="counterexample: $(found "$d")"
    else
        result=failed
    fi
    echo "$result" >"$d/result"
    printf '%-22s %7s %8s %-8s %9s  %-40s %5ss\n' "$1" "$3" "$4" "$5" \
        "${states:-?}" "$result" "$secs"
}

# found DIR: what the counterexample broke, from pan's first report.
found() {
    case $(grep -m1 '^pan:1:' "$1/pan.log") in
    *"map_changing"*) echo "race on the map" ;;
    *"inmap==255"*) echo "two flights for one key" ;;
    *"rec[r].freed==0"*) echo "freed twice" ;;
    *"rec[r].freed"*) echo "read after free" ;;
    *"rec[r].ended"*) echo "joined a finished flight" ;;
    *"runs[r]==1"*) echo "fn ran twice" ;;
    *"val==(r+1)"*) echo "wrong value" ;;
    *"owner==me"*) echo "unlocked by a non-owner" ;;
    *"rec[i].freed"*) echo "record leaked" ;;
    *"invalid end state"*) echo "a caller waits forever" ;;
    *"non-progress"*) echo "a cycle without progress" ;;
    *) grep -m1 '^pan:1:' "$1/pan.log" | sed 's/^pan:1: //' ;;
    esac
}

# timeline NAME: replays NAME's trail (spin -t -p) as one column per
# caller, each step named by the tag and words on its line of the model.
timeline() {
    d=$tmp/$1
    (cd "$d" && spin -t -p $(cat flags) sharedcalls.pml >replay.log 2>&1) || true
    echo "$1 ($(cat "$d/flags")): $(sed 's/^counterexample: //' "$d/result")"
    awk -v callers="$(sed 's/.*-DN=\([0-9]*\).*/\1/' "$d/flags")" \
        -v broke="$(sed 's/^counterexample: //' "$d/result")" '
    FNR == NR { # the model: each line'"'"'s step, from its comment
        if (match($0, /\/\* (go:[0-9]+( go:[0-9]+)*|c-only) [^*]*\*\//))
            step[FNR] = substr($0, RSTART + 3, RLENGTH - 6)
        next
    }
    function cell(pid, text,   s, i) {
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
            else if (what ~ /spurious = /) label = label ": spurious"
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
    /Error: assertion violated/ { flush(); depth = ""; failing = 1; next }
    /^spin: trail ends/ { flush(); depth = ""; next }
    /^#processes/ { final = 1; next } # the state the trail ends in
    !/proc +[0-9]+ \(Caller/ { next }
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
for tag in $(grep -o 'go:[0-9]*' "$model" | sort -u); do
    grep -q "$tag\b" "$here/src/sharedcalls.c" ||
        { echo "model.sh: $model names $tag, which src/sharedcalls.c does not carry" >&2; exit 1; }
done

command -v spin >/dev/null || { echo "model.sh: spin is missing (scripts/deps.sh model)" >&2; exit 1; }

if [ $# -eq 1 ]; then
    echo "$mutants" | grep -qx "$1" || { echo "model.sh: no mutant '$1' in src/zoo.h" >&2; exit 2; }
    verify "$1" "$1" 3 1 safety >/dev/null
    timeline "$1"
    exit 0
fi

printf '%-22s %7s %8s %-8s %9s  %-40s %6s\n' variant callers spurious check \
    states result time
bad=0
for n in 3 4; do
    for mode in safety progress; do
        verify "correct" 0 "$n" 1 "$mode"
        [ "$(cat "$tmp/correct/result")" = verified ] || bad=1
        rm -rf "$tmp/correct"
    done
done
for m in $mutants; do
    verify "$m" "$m" 3 1 safety
    case $(cat "$tmp/$m/result") in counterexample*) ;; *) bad=1 ;; esac
done
# The same mistake without spurious wake-ups: the lost wake-up alone.
verify lost_wakeup wait_no_predicate 3 0 safety
case $(cat "$tmp/lost_wakeup/result") in counterexample*) ;; *) bad=1 ;; esac
echo
for m in $mutants lost_wakeup; do
    case $(cat "$tmp/$m/result") in counterexample*) timeline "$m" ;; esac
done
if [ $bad -ne 0 ]; then
    echo "model.sh: FAILED: the correct model must verify and every mutant must be caught" >&2
    exit 1
fi
echo "model.sh: the correct model verified; all $(echo $mutants | wc -w) mutants caught"
