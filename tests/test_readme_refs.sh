#!/bin/sh
# test_readme_refs.sh - every stack frame README.md or the book quotes from
# the port, "function (sharedcalls.c:N)", must still name a line inside that
# function, or the quoted report no longer matches the code.
set -u
cd "$(dirname "$0")/.." || exit 2
refs=$(cat README.md book/*.md | grep -oE '[a-z_]+ \(sharedcalls\.c:[0-9]+\)' | sort -u)
[ -n "$refs" ] || { echo "README.md quotes no frame of the port"; exit 1; }
bad=0
for ref in $(echo "$refs" | sed 's/ (sharedcalls\.c:/:/; s/)$//'); do
    fn=${ref%%:*} line=${ref#*:}
    # The function whose body holds the line: definitions start at column 0.
    in=$(awk -v want="$line" '
        /^[A-Za-z_].*[A-Za-z_0-9]+\(/ && !/;[ \t]*$/ {
            s = $0; sub(/\(.*/, "", s); sub(/.*[^A-Za-z_0-9]/, "", s); fn = s
        }
        /^}/ && NR < want { fn = "" }
        NR == want { print fn; exit }' src/sharedcalls.c)
    if [ "$in" = "$fn" ]; then
        echo "quoted $fn (sharedcalls.c:$line): still in $fn"
    else
        echo "quoted $fn (sharedcalls.c:$line): line $line is in '${in:-no function}' now"
        bad=1
    fi
done
exit $bad
