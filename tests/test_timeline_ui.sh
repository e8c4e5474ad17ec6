#!/bin/sh
# test_timeline_ui.sh - the timeline player, driven as a person would: keys
# into a tmux pane on a private server, and what the pane shows read back.
# Every wait is a bounded poll; a failed one prints what it waited for and
# the screen, and ends the test.
#
#   tests/test_timeline_ui.sh [BUILD_DIR]
set -u
b=${1:-build}
cd "$(dirname "$0")/.." || exit 2
prog=$b/demos/timeline
sock=sc-ui-$$
passed=0
failed=0
unset TMUX LINES COLUMNS # ncurses would believe LINES and COLUMNS

t() { tmux -L "$sock" -f /dev/null "$@"; }
trap 't kill-server 2>/dev/null' EXIT
trap 'exit 1' HUP INT TERM

screen() { t capture-pane -p -t ui; }
pane() { t display-message -p -t ui "$1"; }
ok() {
    echo "ok - $1"
    passed=$((passed + 1))
}
fail() { # fail WHAT EXPECTED: says what and shows the screen, then stops
    echo "not ok - $1"
    echo "  expected: $2"
    echo "  screen:"
    screen 2>&1 | sed 's/^/  | /'
    failed=$((failed + 1))
    echo "$passed passed, $failed failed"
    exit 1
}

# poll CONDITION...: true once the command is, checking every 0.1 s for
# up to 10 s.
poll() {
    i=0
    while [ $i -lt 100 ]; do
        "$@" && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
shows() { screen | grep -Eq -- "$1"; }
hides() { ! shows "$1"; }
is() { [ "$(pane "$1")" = "$2" ]; }
# shellcheck disable=SC2016 # re TEXT: TEXT as an extended regex
re() { printf '%s' "$1" | sed 's/[][\\.*^$(){}+?|]/\\&/g'; }
esc=$(printf '\033')
# colours: the screen with its attributes, as escape sequences
colours() { t capture-pane -e -p -t ui; }
step() { screen | sed -n 's/^\[\([0-9]*\)\/[0-9]*\].*/\1/p'; }

# expect WHAT PATTERN: waits until the screen shows the extended regex.
expect() { poll shows "$2" || fail "$1" "a line matching /$2/"; }
# rows DESC N: the screen shows rows G1 .. GN.
rows() {
    n=1
    while [ $n -le "$2" ]; do
        expect "$1: row G$n" "^G$n "
        n=$((n + 1))
    done
    [ "$(screen | grep -Ec '^G[0-9]+ ')" -eq "$2" ] ||
        fail "$1" "exactly $2 rows"
    ok "$1"
}
# start COMMAND: a new 80x24 pane running it; then the pane's shell says
# how it exited, on the screen the program leaves, and waits for a key.
start() {
    t kill-server 2>/dev/null
    t start-server \; set-option -g default-terminal screen \; \
        set-option -g default-shell /bin/sh \; \
        new-session -d -s ui -x 80 -y 24 "trap : INT; $1; echo exit=\$?; read x" \; \
        set-option -w -t ui remain-on-exit on ||
        fail "tmux starts $1" "a session"
}
# ends WHAT STATUS: the program exited with STATUS and left the terminal as
# it found it; then the pane's command ends.
ends() {
    expect "$1" "^exit=$2\$"
    is '#{alternate_on}#{cursor_flag}#{keypad_cursor_flag}' 010 ||
        fail "$1" "the main screen, a visible cursor, normal cursor keys"
    t send-keys -t ui Enter
    poll is '#{pane_dead}' 1 || fail "$1" "the pane's command to end"
    ok "$1"
}

command -v tmux >/dev/null || fail "tmux is installed" "tmux"
[ -x "$prog" ] || fail "$prog is built" "$prog"
title1=$("$prog" --list | sed -n 's/^1  //p')
title2=$("$prog" --list | sed -n 's/^2  //p')

start "$prog"
expect "the title" "scenario 1/[0-9]+: $(re "$title1")  seed 1"
rows "scenario 1 shows G1..G5" 5
expect "the legend" '^~ lock  = leader runs fn  - follower'
expect "the counters" 'flights [0-9]+  callers [0-9]+  suppressed [0-9]+'
expect "the speed: 4 steps a second" ' 4 steps/s$'
expect "the tick ruler" '^tick [0-9]+ +0\.\.\.\.5\.\.\.\.10'
ok "the first screen has the title, legend and counters"
t send-keys -t ui r Space
expect "space pauses" 'PAUSED'
ok "space shows PAUSED"

i=$(step)
t send-keys -t ui n
expect "n steps" "^\[$((i + 1))/"
sleep 0.5
[ "$(step)" = $((i + 1)) ] || fail "n steps once" "[$((i + 1))/N], still"
ok "n moves [i/N] on by exactly one"
t send-keys -t ui Right
expect "KEY_RIGHT steps" "^\[$((i + 2))/"
ok "KEY_RIGHT moves on by one"
t send-keys -t ui p
expect "p steps back" "^\[$((i + 1))/"
t send-keys -t ui Left
expect "KEY_LEFT steps back" "^\[$i/"
sleep 0.5
[ "$(step)" = "$i" ] || fail "p and KEY_LEFT step back once each" "[$i/N], still"
ok "p and KEY_LEFT go back a step each, paused"

t send-keys -t ui + + + Space
expect "+ + + speeds up to 32 steps a second" ' 32 steps/s$'
expect "the replay ends" ' END  32 steps/s$'
n=$(screen | sed -n 's/^\[\([0-9]*\)\/\([0-9]*\)\].*/\1 \2/p')
[ "${n% *}" = "${n#* }" ] || fail "the end is the last step" "[N/N]"
expect "the last step tells the last event" '^\[[0-9]+/[0-9]+\] t=10 +G[0-9] returns '
expect "the counters at the end" 'flights 1  callers 5  suppressed 4'
if [ "$(screen | grep -c '^G.*(ran fn)')" -ne 1 ] ||
    [ "$(screen | grep -c '^G.*(shared)')" -ne 4 ]; then
    fail "one ran fn, four shared" "1 '(ran fn)', 4 '(shared)'"
fi
ok "at the end: flights 1  callers 5  suppressed 4, one ran fn"
if ! colours | grep -q "$esc\[32mL" || ! colours | grep -q "$esc\[36mF"; then
    fail "colours" "a green L and a cyan F"
fi
ok "in colour: the leader green, the followers cyan"

t send-keys -t ui - - - - - r
expect "- slows down to 1 step a second" ' 1 steps/s$'
expect "r replays" '^\[[0-3]/[0-9]+\] '
expect "r resets the counters" 'flights [01]  callers [0-3]  suppressed 0 '
hides ' END |PAUSED' || fail "r replays" "it plays, not at the end"
ok "r replays from the start"

t send-keys -t ui '?'
expect "? shows help" 'any key closes this box'
expect "help lists the keys" 'q +quit'
t send-keys -t ui x
poll hides 'any key closes' || fail "a key closes help" "no help box"
ok "? opens the help box and a key closes it"

t send-keys -t ui 2
expect "2 picks scenario 2" "scenario 2/[0-9]+: $(re "$title2")"
rows "scenario 2 shows G1..G13 at 80x24" 13

t resize-window -t ui -x 100 -y 30
poll is '#{window_width}x#{window_height}' 100x30 || fail "resize" "100x30"
expect "rows after a resize" '^G13 '
expect "keys after a resize" 'q quit$'
ok "at 100x30 it still shows every row"
t resize-window -t ui -x 50 -y 12
expect "too small" 'too small: 50x12'
t resize-window -t ui -x 80 -y 24
poll hides 'too small' || fail "back to 80x24" "no 'too small'"
expect "rows at 80x24 again" '^G13 '
ok "at 50x12 it says it is too small, and recovers"

t send-keys -t ui q
ends "q quits with status 0 and restores the terminal" 0

start "TERM=vt100 $prog"
rows "monochrome (vt100) shows G1..G5" 5
expect "monochrome legend" '^~ lock  = leader runs fn'
! colours | grep -q "$esc\[3[0-7]m" || fail "monochrome" "no colours"
ok "monochrome: legend, and no colours"
t send-keys -t ui q
ends "q quits a monochrome run too" 0

start "$prog --quiz --scenario 3"
expect "a quiz starts on its question" '^Quiz: predict, then step with n\.'
expect "a quiz starts at step 0" '^\[0/[0-9]+\] predict first'
expect "a quiz starts paused" 'PAUSED'
sleep 1
[ "$(step)" = 0 ] || fail "a quiz waits for the prediction" "[0/N], still"
shows '\(ran fn\)|\(shared\)' && fail "a quiz hides the outcome" "no results"
ok "a quiz starts paused on its question, the outcome hidden"
t send-keys -t ui n
expect "n starts the quiz's replay" '^\[1/[0-9]+\] t=0 +G1 calls'
ok "n steps into the quiz's replay"
t send-keys -t ui n n n
expect "fn's ticks are steps too" '^\[4/[0-9]+\] t=1 +the clock moves on: G1 runs fn$'
expect "the clock shows the tick" '^tick 1 '
t send-keys -t ui n
expect "one more tick" '^\[5/[0-9]+\] t=2 +the clock moves on: G1 runs fn$'
expect "the clock shows the next tick" '^tick 2 '
t send-keys -t ui Left
expect "back a tick" '^tick 1 '
ok "while fn runs, the clock moves a tick a step, and back"
t send-keys -t ui q
ends "q quits a quiz" 0

start "$prog"
expect "a third run" '^G5 '
t send-keys -t ui C-c
ends "C-c ends it and restores the terminal" "[0-9]+"

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
