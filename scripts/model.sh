#!/bin/sh
# model.sh - make model: Spin checks every interleaving of two models, each
# correct and with its mistakes: the port's (tests/model/sharedcalls.pml),
# with each mistake of the bug zoo, and the Redis protocol's
# (tests/model/fleet.pml), with its locks' time to live.
#
#   scripts/model.sh            the table, then each counterexample as a
#                               timeline of the callers' (processes') steps
#   scripts/model.sh VARIANT    one variant's counterexample only (a mutant
#                               of src/zoo.h, lost_wakeup or busy_wait; or
#                               the fleet's two_leaders, no_fence,
#                               no_fence_store or no_token)
#
# The port's correct model must verify for three and four callers: no
# assertion fails, no caller is blocked for good (an invalid end state),
# and no cycle runs without progress. The fleet's must verify for two and
# three processes: no assertion fails, no process is blocked for good, and
# no cycle exists at all. Every mutant named in src/zoo.h must break the
# property this script expects of it, and so must the models' own
# variants. Exits 1 otherwise, with the trail of whatever failed.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
model=$here/tests/model/sharedcalls.pml
models=$here/tests/model
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
    two_leaders) echo "two leaders ran fn at once" ;; # the TTL allows it
    no_fence) echo "stale value returned as current" ;;
    no_fence_store) echo "value went back to an older fence" ;;
    no_token) echo "lock stolen from its new owner" ;;
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

# The fleet's variants: VARIANT -> the flags that make it (fleet.pml's
# opening comment), on two processes. A new one needs an expectation.
fleet_variants="two_leaders no_fence no_fence_store no_token"
fleet_flags() {
    case $1 in
    two_leaders) echo "-DONE_FN -DCRASH=0 -DFAILS=0" ;; # the design's limit
    no_fence) echo "-DNO_FENCE" ;;
    no_fence_store) echo "-DNO_FENCE -DCHECK_RETURNS=0" ;; # the store alone
    no_token) echo "-DNO_TOKEN" ;;
    esac
}
# The fleet's bounds: a live leader's lock runs out at most twice a run.
fleet_expiries=2

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

# The same for the fleet's model.
fleet_property() {
    case $1 in
    *"!(overlapped)"*) echo "two leaders ran fn at once" ;;
    *"fresh["*) echo "stale value returned as current" ;;
    *"(got>=f)"*) echo "a value older than the holder it saw" ;;
    *"(f>=vmax)"*) echo "value went back to an older fence" ;;
    *"(lock==f)"*) echo "lock stolen from its new owner" ;;
    *"(lock==fence)"*) echo "a lock older than the fence counter" ;;
    *"dead[holder]"*) echo "a live leader left its lock" ;;
    *"(fence<="* | *"len(inbox"*) echo "the model's bounds are too small" ;;
    *) echo "assertion $1" ;;
    esac
}

now() { date +%s.%N; }

# found DIR: what its trail breaks, from the replay (pan -i may have found
# other errors first, on the way to the shortest trail).
found() {
    text=$(sed -n 's/^spin: text of failed assertion: //p' "$1/replay.log" | head -n 1)
    fleet=""
    if grep -qx fleet "$1/model"; then fleet=1; fi
    if [ -n "$text" ] && [ -n "$fleet" ]; then
        fleet_property "$text"
    elif [ -n "$text" ]; then
        property "$text"
    elif grep -q "START OF CYCLE" "$1/replay.log"; then
        if [ -n "$fleet" ]; then echo "a run that never ends"; else echo "a cycle without progress"; fi
    elif [ -n "$fleet" ]; then
        echo "a process waits forever"
    else
        echo "a caller waits forever"
    fi
}

# verify NAME MODEL FLAGS COL1 COL2 CHECK: runs pan on tests/model/MODEL.pml
# with FLAGS in $tmp/NAME. COL1 and COL2 are the table's two columns after
# the name (the port's callers and spurious wake-ups, the fleet's
# processes and expiries). CHECK is safety (assertions and end states,
# shortest trail: pan -i) or progress (cycles without progress). Prints the
# table's line and leaves $tmp/NAME/result: verified, counterexample:
# PROPERTY, or failed: WHY.
# shellcheck disable=SC2086 # flags and cc are lists of options, split on purpose
verify() {
    d=$tmp/$1
    rm -rf "$d"
    mkdir -p "$d"
    cp "$models/$2.pml" "$d/$2.pml"
    echo "$2" >"$d/model"
    flags=$3
    echo "$flags" >"$d/flags"
    t0=$(now)
    if [ "$6" = progress ]; then
        cc="-DNP" run="./pan -l -m2000000"
    else
        cc="-DSAFETY -DREACH" run="./pan -i -m2000000"
    fi
    # The fleet's timeline shows Redis after each step: the globals' values.
    values=""
    if [ "$2" = fleet ]; then values="-g"; fi
    if ! (cd "$d" && spin -a $flags "$2.pml" >spin.log 2>&1); then
        result="failed: spin -a (see spin.log)"
    elif ! (cd "$d" && gcc -w -O2 $cc -o pan pan.c >gcc.log 2>&1); then
        result="failed: gcc pan.c"
    else
        (cd "$d" && $run >pan.log 2>&1) || true
        errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$d/pan.log")
        if [ -n "$errors" ] && [ "$errors" != 0 ]; then # it stops at one
            (cd "$d" && spin -t -p $values $flags "$2.pml" >replay.log 2>&1) || true
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
    printf '%-22s %7s %8s %-8s %9s  %-50s %5.1fs\n' "$1" "$4" "$5" "$6" \
        "${states:-?}" "$result" "$(echo "$(now) $t0" | awk '{ print $1 - $2 }')"
}

# timeline NAME: NAME's trail as one column per caller, each step named by
# the tag and words on its line of the model (the fleet's: fleet_timeline).
timeline() {
    d=$tmp/$1
    if grep -qx fleet "$d/model"; then
        fleet_timeline "$1"
        return
    fi
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

# fleet_timeline NAME: the fleet's trail as one column per process and one
# for the times to live, each step named by its comment in fleet.pml (the
# script or function of protocol.c), with the outcome of a script or a
# read; on the left, the lock's fence, the value's and the fence counter
# after the step ("-": none).
fleet_timeline() {
    d=$tmp/$1
    echo "$1 ($(cat "$d/flags")): $(sed 's/^counterexample: //' "$d/result")"
    awk -v procs="$(sed 's/.*-DP=\([0-9]*\).*/\1/' "$d/flags")" \
        -v broke="$(sed 's/^counterexample: //' "$d/result")" '
    FNR == NR { # the model: each line'"'"'s step, from its comment
        if (match($0, /\/\* ([a-z_]+_script|[a-z_]+\(\)|PX): [^*]*\*\//))
            step[FNR] = substr($0, RSTART + 3, RLENGTH - 6)
        next
    }
    function num(n) { return n + 0 == 0 ? "-" : n + 0 }
    # A row: Redis after the step, then the step in the column of its
    # process (pid 1 to P; P+1 is the times to live).
    function text(pid, words,   s, i) {
        s = sprintf("%4s %5s %5s  ", num(g["lock"]), num(g["vfence"]), num(g["fence"]))
        for (i = 1; i < pid; i++)
            s = s sprintf("%-32s", "")
        return s words
    }
    function put() { # the row held back
        if (held != "")
            printf "%4d  %s\n", ++row, held
        held = heldpid = ""
    }
    # What a script or a read did: its name and the outcome.
    function label(l) {
        if (l ~ /^elect_script/)
            return what ~ /elected = 1/ ? "elect_script: elected, fence " g["fence"] : "elect_script: held by fence " g["lock"]
        if (l ~ /^publish_script/)
            return what ~ /got = 0/ ? "publish_script: stale, refused" : "publish_script: stored"
        if (l ~ /^release_script/)
            return what ~ /lock = 0/ ? "release_script: DEL the lock" : "release_script: not its lock"
        if (l ~ /^read_value/)
            return what ~ /got = vfence/ ? "read_value(): fence " g["vfence"] ", taken" : "read_value(): none new enough"
        return l
    }
    # A step that spans several steps of the trail (a test, then its
    # action) is one row: held back while it is the last, so that it
    # shows Redis after its last part.
    function flush(   l) {
        if (depth == "" || step[line] == "")
            return
        l = label(step[line])
        if (l == shown[pid]) { # the same step of the process, on
            if (heldpid == pid)
                held = text(pid, l)
            return
        }
        put()
        held = text(pid, l)
        heldpid = pid
        shown[pid] = l
    }
    BEGIN {
        printf "      lock value fence  "
        for (i = 0; i < procs; i++)
            printf "%-32s", "process " i
        print "Redis (times to live)"
    }
    over { next }
    /Error: assertion violated/ { failing = 1; next }
    /^spin: trail ends/ {
        flush(); put(); depth = ""
        if (failing && failpid == 0) # init: once every process is done
            held = text(1, "** at the end: " broke)
        else if (failing)
            held = text(failpid, "** " broke)
        put(); over = failing
        next
    }
    /^#processes/ { final = 1; next } # the state the trail ends in
    final && /proc +[0-9]+ \(Process:/ && !/valid end state/ { # blocked for good
        p = $0; sub(/.*proc +/, "", p); split($0, a, "fleet.pml:")
        l = step[a[2] + 0]
        held = text(p + 0, "** " broke (l != "" ? ": " l : "")); put()
        next
    }
    final { next }
    failing && failpid == "" && /proc +[0-9]+ \(/ { # the failed assertion
        failpid = $0; sub(/.*proc +/, "", failpid); failpid += 0
    }
    /^\t\t[a-z_]+ = -?[0-9]+$/ { g[$1] = $3; next } # a global, after the step
    !/proc +[0-9]+ \((Process|Ttl):/ { next }
    {
        if ($1 != depth) {
            flush()
            depth = $1; what = ""
            pid = $0; sub(/.*proc +/, "", pid); pid += 0
            split($0, a, "fleet.pml:"); line = a[2] + 0
        }
        stmt = $0; sub(/^[^[]*\[/, "", stmt)
        what = what " " stmt
    }
    ' "$d/fleet.pml" "$d/replay.log"
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
# port_flags CALLERS SPURIOUS MUTANT: the port's model's flags.
port_flags() { echo "-DN=$1 -DSPURIOUS=$2 -DMUTANT=$3"; }
# fleet_verify NAME PROCESSES CHECK [FLAGS]: a run of the fleet's model.
fleet_verify() {
    verify "$1" fleet "-DP=$2 -DEXPIRIES=$fleet_expiries${4:+ $4}" "$2" \
        "$fleet_expiries" "$3"
}
if [ $# -eq 1 ]; then
    if echo " $fleet_variants " | grep -q " $1 "; then
        fleet_verify "$1" 2 safety "$(fleet_flags "$1")" >/dev/null
    else
        echo " $variants " | grep -q " $1 " ||
            { echo "model.sh: no variant '$1' (one of: $variants $fleet_variants)" >&2; exit 2; }
        setting "$1"
        verify "$1" sharedcalls "$(port_flags 3 "$spurious" "$mutant")" 3 "$spurious" "$check" >/dev/null
    fi
    if [ -f "$tmp/$1/replay.log" ]; then timeline "$1"; fi
    caught "$1" || { echo "model.sh: $1: $(cat "$tmp/$1/result"), not: $(expected "$1")" >&2; exit 1; }
    exit 0
fi

printf '%-22s %7s %8s %-8s %9s  %-50s %6s\n' variant callers spurious check \
    states result time
bad=""
for n in 3 4; do
    for check in safety progress; do
        verify "correct-$n-$check" sharedcalls "$(port_flags "$n" 1 0)" "$n" 1 "$check"
        [ "$(cat "$tmp/correct-$n-$check/result")" = verified ] || bad="$bad correct-$n-$check"
    done
done
for v in $variants; do
    setting "$v"
    verify "$v" sharedcalls "$(port_flags 3 "$spurious" "$mutant")" 3 "$spurious" "$check"
    caught "$v" || bad="$bad $v"
done
# The fleet's model: its columns are processes and the expiries of a live
# leader's lock; its progress check finds any cycle at all.
printf '%-22s %7s %8s\n' fleet.pml procs expiries
for n in 2 3; do
    for check in safety progress; do
        fleet_verify "fleet-$n-$check" "$n" "$check"
        [ "$(cat "$tmp/fleet-$n-$check/result")" = verified ] || bad="$bad fleet-$n-$check"
    done
done
for v in $fleet_variants; do
    fleet_verify "$v" 2 safety "$(fleet_flags "$v")"
    caught "$v" || bad="$bad $v"
done
echo
for v in $variants $fleet_variants; do
    case $(cat "$tmp/$v/result") in counterexample*) timeline "$v" ;; esac
done
for v in $bad; do # a correct model's failure, with its trail if any
    case $v in
    correct* | fleet-*) [ -f "$tmp/$v/replay.log" ] && timeline "$v" ;;
    *) echo "$v: $(cat "$tmp/$v/result"); expected: $(expected "$v")" ;;
    esac
done
if [ -n "$bad" ]; then
    echo "model.sh: FAILED:$bad" >&2
    exit 1
fi
echo "model.sh: the correct models verified; every variant broke what it should"
