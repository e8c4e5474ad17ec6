#!/bin/sh
# test_timeline_exports.sh - the timeline demo's outputs a reader takes
# away: the JSON parses as Chrome trace events (a thread per row, spans and
# instants), the SVG is well-formed and draws every row, and without a
# terminal the demo prints the plain timeline.
#
#   tests/test_timeline_exports.sh [BUILD_DIR]
set -u
b=${1:-build}
tl=$b/demos/timeline
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
ok() { echo "ok - $1"; }
bad() { echo "FAIL - $1"; failed=$((failed + 1)); }

for n in $("$tl" --list | cut -d' ' -f1); do
    if ! "$tl" --scenario "$n" --seed 3 --trace "$tmp/$n.json" --svg "$tmp/$n.svg"; then
        bad "scenario $n: the exports were not written"
        continue
    fi
    rows=$("$tl" --scenario "$n" --seed 3 --plain |
        awk '/^tick /{on=1; next} /^flights /{on=0} on && /^G[0-9]/{n++} END{print n}')
    if python3 - "$tmp/$n.json" "$rows" <<'PY'; then ok "scenario $n: JSON"; else bad "scenario $n: JSON"; fi
import json, sys
doc = json.load(open(sys.argv[1]))
ev = doc["traceEvents"]
names = [e for e in ev if e["ph"] == "M" and e["name"] == "thread_name"]
assert len(names) == int(sys.argv[2]) + 1, "a thread per row, and main"
assert {e["ph"] for e in ev} <= {"M", "X", "i"}
assert any(e["ph"] == "X" for e in ev), "no spans"
assert doc["otherData"]["tick_ms"] == 100, "says a tick is drawn as 100 ms"
assert "order" in doc["otherData"]["within a tick"], "explains the spacing"
assert not any(e["name"] == "waits for the lock" for e in ev), "no 100 us lock waits"
for e in ev:
    if e["ph"] != "M":
        assert e["ts"] >= 0 and isinstance(e["tid"], int)
    if e["ph"] == "X":
        assert e["dur"] >= 0
PY
    if python3 - "$tmp/$n.svg" "$rows" <<'PY'; then ok "scenario $n: SVG"; else bad "scenario $n: SVG"; fi
import re, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "{http://www.w3.org/2000/svg}svg"
texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
assert sum(bool(re.fullmatch(r"G[0-9]+ \S+", t)) for t in texts) == int(sys.argv[2]), "a label per row"
assert len(list(root.iter("{http://www.w3.org/2000/svg}rect"))) > 10
PY
done

"$tl" --scenario 2 --seed 5 >"$tmp/piped.txt" </dev/null
"$tl" --scenario 2 --seed 5 --plain >"$tmp/plain.txt"
if cmp -s "$tmp/piped.txt" "$tmp/plain.txt" && grep -q '^G13 d' "$tmp/piped.txt"; then
    ok "without a terminal it prints the plain timeline"
else
    bad "without a terminal it prints the plain timeline"
fi
# refused ERROR ARGS...: exits 2, saying ERROR on stderr, writing nothing
# to stdout and no file named after an option.
refused() {
    want=$1
    shift
    (cd "$tmp" && "$OLDPWD/$tl" "$@" >out 2>err)
    rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$want" "$tmp/err" && [ ! -s "$tmp/out" ] &&
        [ ! -e "$tmp/--plain" ]; then
        ok "$* is refused: $want"
    else
        bad "$* is refused with exit 2 and '$want' (got $rc: $(cat "$tmp/err"))"
    fi
}
refused "--scenario must be 1-9, not 99" --scenario 99
refused "--scenario must be 1-9" --plain --scenario
refused "--seed must be 0-1000000000, not x" --seed x
refused "--trace needs a file name, not --plain" --trace --plain
refused "--svg needs a file name" --svg
refused "unknown argument --bogus" --bogus
refused "-c shows a quiz's answers" --plain -c
if "$tl" --help >"$tmp/help" 2>"$tmp/err" && grep -q '^usage: timeline' "$tmp/help" && [ ! -s "$tmp/err" ]; then
    ok "--help prints the usage to stdout, exit 0"
else
    bad "--help prints the usage to stdout, exit 0"
fi
"$tl" --plain --quiz --scenario 2 --seed 7 >"$tmp/q" &&
    "$tl" --plain --quiz -c --scenario 2 --seed 7 >"$tmp/qc"
if ! grep -q '^Answers' "$tmp/q" && grep -q '^Answers' "$tmp/qc" &&
    cmp -s "$tmp/q" /dev/stdin <<EOF2
$(sed -n '1,/^3\. /p' "$tmp/qc")

Predict, then check: add -c for the answers.
EOF2
then
    ok "--quiz asks; -c adds the answers to the same questions"
else
    bad "--quiz asks; -c adds the answers to the same questions"
fi
"$tl" --svg /nonexistent/dir/x.svg >/dev/null 2>&1
if [ $? -eq 1 ]; then ok "an unwritable file fails (exit 1)"; else bad "an unwritable file fails (exit 1)"; fi

# README's pictures: each block that starts with "$ build/demos/timeline"
# must be exactly what that command prints.
awk -v dir="$tmp" '
    /^```/ { if (f) { close(f); f = "" } next }
    /^\$ build\/demos\/timeline / { n++; f = dir "/readme." n; print > f; next }
    f { print > f }' README.md
for want in "$tmp"/readme.*; do
    [ -e "$want" ] || { bad "README shows no timeline"; break; }
    cmd=$(head -1 "$want" | sed "s|^\$ build/|$b/|")
    tail -n +2 "$want" >"$want.out"
    if $cmd | cmp -s - "$want.out"; then
        ok "README: $(head -1 "$want")"
    else
        bad "README: $(head -1 "$want") prints something else:"
        $cmd | diff "$want.out" - | head -20
    fi
done

echo "$failed failed"
[ $failed -eq 0 ]
