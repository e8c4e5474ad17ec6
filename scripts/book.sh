#!/bin/sh
# book.sh - make book: the whole book as one HTML file, with every figure
# made again by the command written above it, and every reference to the
# code shown as path:line.
#
#   scripts/book.sh BUILD_DIR [full]
#
# A figure is a fenced block after "<!-- run: COMMAND -->"; COMMAND runs
# from the kit's root and its output replaces the block. After "<!-- run
# (markdown): COMMAND -->" the output is Markdown (a table) and replaces the
# table that follows. If an image
# (![...](figures/NAME)) follows instead, COMMAND writes that image into
# BUILD_DIR/book/figures, which the HTML takes before book/figures. Figures marked
# "<!-- run (slow): ... -->" (the zoo, minutes long) keep their recorded
# output unless "full" is given (make book FULL=1). The chapters in book/
# are not changed: the book is built in BUILD_DIR/book.
set -eu
b=$1
full=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/$b/book
mkdir -p "$out"
command -v pandoc >/dev/null ||
    { echo "book.sh: pandoc is missing: run scripts/deps.sh book (as root)" >&2; exit 1; }
cd "$here"
scripts/check-book >/dev/null
scripts/check-book --resolve | sort -u >"$out/refs"

# figures: each chapter with its run blocks made again
for md in book/README.md book/[0-9]*.md book/answers.md book/tour.md book/tools.md book/glossary.md; do
    name=$(basename "$md")
    awk -v full="$full" -v out="$out" '
    function run(cmd,   sh, line, n) {
        sh = cmd " 2>&1"
        n = 0
        while ((sh | getline line) > 0) { print line; n++ }
        close(sh)
        if (n == 0) print "(no output)"
    }
    /^<!-- run( \((slow|markdown)\))?: .* -->$/ {
        cmd = $0
        slow = cmd ~ /^<!-- run \(slow\)/
        markdown = cmd ~ /^<!-- run \(markdown\)/
        sub(/^<!-- run( \((slow|markdown)\))?: /, "", cmd); sub(/ -->$/, "", cmd)
        pending = (!slow || full != "") && cmd !~ /, then /
        printf "*Figure: `%s`%s*\n\n", cmd, pending ? "" : " (as recorded)"
        if (markdown && pending) { # its output is Markdown: a table
            run(cmd); pending = 0; table = 1
        }
        next
    }
    table && /^\|/ { next } # the recorded table, made again above
    { table = 0 }
    pending && /^!\[/ { # an image the command writes: run it, keep the line
        system("mkdir -p " out "/figures; " cmd " >/dev/null")
        print; pending = 0; next
    }
    pending && /^```/ && !inside { print; inside = 1; run(cmd); next }
    pending && inside && /^```/ { print; inside = 0; pending = 0; next }
    pending && inside { next }
    { print }
    ' "$md" >"$out/$name"
done

# references: `name()` and `go:N` followed by where they are
refs() {
    awk -F'\t' '
    FNR == NR { at[$1] = $2; next }
    /^<!-- listing: / && ($0 in at) { # say where it comes from
        print; printf "*Listing: `%s`*\n\n", at[$0]; next
    }
    /^```/ { fenced = !fenced }
    !fenced {
        line = $0; s = ""
        while (match(line, /`([A-Za-z0-9_.\/-]+:)?[A-Za-z_][A-Za-z0-9_]*\(\)`|`go:[0-9]+`/)) {
            ref = substr(line, RSTART + 1, RLENGTH - 2)
            key = ref
            if (ref !~ /^go:/) # file:name() names its file already
                qualified = sub(/^[A-Za-z0-9_.\/-]+:/, "", key)
            else
                qualified = 0
            s = s substr(line, 1, RSTART + RLENGTH - 1)
            where = at[key]
            if (qualified) sub(/.*:/, "line ", where)
            if (key in at) s = s " <span class=\"at\">(" where ")</span>"
            line = substr(line, RSTART + RLENGTH)
        }
        $0 = s line
    }
    { print }
    ' "$out/refs" "$1"
}

# one document: chapter links become links inside it; a link to the
# kit's README (../README.md from book/) is made from BUILD_DIR/book.
up=$(echo "$b/book" | sed 's|[^/][^/]*|..|g')
{
    for md in README.md $(cd book && ls [0-9]*.md) answers.md tour.md tools.md glossary.md; do
        id=$(echo "$md" | sed 's/\.md$//')
        refs "$out/$md" | sed -e "1s/^# \(.*\)$/# \1 {#ch-$id}/" \
            -e 's/](\([0-9][0-9]*-[a-z-]*\)\.md)/](#ch-\1)/g' \
            -e 's/](answers\.md)/](#ch-answers)/g' -e 's/](README\.md)/](#ch-README)/g' \
            -e 's/](tools\.md)/](#ch-tools)/g' -e 's/](glossary\.md)/](#ch-glossary)/g' \
            -e 's/](tour\.md)/](#ch-tour)/g' -e "s|](\.\./README\.md|]($up/README.md|g"
        printf '\n\n'
    done
} >"$out/sharedcalls.md"

pandoc --from markdown --to html5 --standalone --self-contained --toc \
    --toc-depth=2 --metadata title="sharedcalls: singleflight, line by line" \
    --css "$here/book/book.css" --resource-path "$out:$here/book" \
    -o "$out/sharedcalls.html" "$out/sharedcalls.md"
echo "book.sh: $b/book/sharedcalls.html ($(wc -c <"$out/sharedcalls.html") bytes)"
