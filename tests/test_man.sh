#!/bin/sh
# test_man.sh - the manual pages in man/man3 say what the public headers,
# src/sharedcalls.h and src/redis/sharedcalls-redis.h, declare, and render
# cleanly:
#   - every page renders through man-db, as Debian's lintian renders it,
#     and through groff with every warning on, with nothing on stderr, and
#     fits in 80 columns;
#   - every function a header declares (an sc_ or scr_ name) has a page
#     man3/NAME.3 (the page itself, or an alias holding one
#     ".so man3/PAGE.3" line) whose NAME section lists it, as man-db's
#     lexgrog reads it;
#   - no page is left for a function no header declares any more (but
#     sharedcalls.3, sharedcalls-redis.3 and sc_event.3), no NAME section
#     lists a name the headers lack, and no page refers to a page of the
#     libraries that is missing;
#   - every program in an EXAMPLES section compiles against the headers.
# Then it proves it can fail: each broken copy made here must be rejected.
#
#   tests/test_man.sh [MANDIR [HEADER...]]   check (default: man, and
#                                            src/sharedcalls.h and
#                                            src/redis/sharedcalls-redis.h),
#                                            then self-test
#   tests/test_man.sh --check-only MANDIR HEADER...
#
# Needs man-db, groff-base and a C compiler (CC is honoured).
set -u
LC_ALL=C.UTF-8
export LC_ALL

selftest=true
if [ "${1-}" = --check-only ]; then
    selftest=false
    shift
fi
root=$(cd "$(dirname "$0")/.." && pwd) || exit 2
mandir=${1:-$root/man}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- "$root/src/sharedcalls.h" "$root/src/redis/sharedcalls-redis.h"
[ -d "$mandir/man3" ] || { echo "no $mandir/man3"; exit 2; }
mandir=$(cd "$mandir" && pwd)
headers= # their absolute paths, one a line
for header in "$@"; do
    [ -f "$header" ] || { echo "no $header"; exit 2; }
    headers="$headers$(cd "$(dirname "$header")" && pwd)/$(basename "$header")
"
done
cd "$root" || exit 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/render" "$tmp/ex"
printf '%s' "$headers" >"$tmp/headers"

# Each header as the compiler sees it: comments and preprocessor lines
# gone (continued lines too), added to $tmp/code. The names of the
# functions it declares at file scope (sc_ and scr_ names), on stdout: a
# declaration may span lines, and typedefs, struct members and function
# bodies declare none.
parse_header() {
    awk -v code="$tmp/code" '
{
    line = $0
    out = ""
    while (line != "") {
        if (incomment) {
            i = index(line, "*/")
            if (i == 0)
                line = ""
            else {
                line = substr(line, i + 2)
                incomment = 0
            }
            continue
        }
        i = index(line, "/*")
        j = index(line, "//")
        if (j > 0 && (i == 0 || j < i)) {
            out = out substr(line, 1, j - 1)
            line = ""
        } else if (i > 0) {
            out = out substr(line, 1, i - 1) " "
            line = substr(line, i + 2)
            incomment = 1
        } else {
            out = out line
            line = ""
        }
    }
    if (inpp || out ~ /^[ \t]*#/) {
        inpp = out ~ /\\$/
        next
    }
    print out >>code
    text = text " " out
    while (match(text, /[;{}]/)) {
        piece = substr(text, 1, RSTART - 1)
        delim = substr(text, RSTART, 1)
        text = substr(text, RSTART + 1)
        if (depth == 0 && piece !~ /^[ \t]*typedef[ \t]/ &&
            match(piece, /[A-Za-z0-9_*][ \t*]+scr?_[A-Za-z0-9_]+[ \t]*\(/)) {
            name = substr(piece, RSTART, RLENGTH)
            sub(/^[A-Za-z0-9_*][ \t*]+/, "", name)
            sub(/[ \t]*\($/, "", name)
            print name
        }
        if (delim == "{") { # extern "C" { ... } is no body
            isextern = piece ~ /extern[ \t]*"C"[ \t]*$/
            kind[++sp] = isextern
            depth += !isextern
        } else if (delim == "}" && sp > 0)
            depth -= !kind[sp--]
    }
}' "$1"
}
: >"$tmp/code"
: >"$tmp/declared"
: >"$tmp/nodecl"
while IFS= read -r header; do
    parse_header "$header" >"$tmp/one"
    [ -s "$tmp/one" ] || echo "$header: no function declarations found" >>"$tmp/nodecl"
    cat "$tmp/one" >>"$tmp/declared"
done <"$tmp/headers"
sort -u "$tmp/declared" >"$tmp/functions"
tr -c 'A-Za-z0-9_' '\n' <"$tmp/code" | sort -u >"$tmp/words"

set --
for p in "$mandir"/man3/*.3; do
    [ -f "$p" ] && set -- "$@" "man3/${p##*/}"
done
[ $# -gt 0 ] || { echo "$mandir/man3: no pages"; exit 1; }

# The self-test skips the slow parts where a case does not need them.
skips() { case " ${TEST_MAN_SKIP-} " in *" $1 "*) return 0 ;; esac; return 1; }

# Each page through man-db (in the background, a page at a time is slow),
# and all of them through groff; aliases resolve from $mandir. lexgrog
# reads each NAME section as mandb will.
if ! skips render; then
    for p in "$@"; do
        f=${p#man3/}
        (cd "$mandir" && MANROFFSEQ='' MANWIDTH=80 timeout 30 man --warnings -E UTF-8 -l "$p" \
            >"$tmp/render/$f.txt" 2>"$tmp/render/$f.err" || echo "man failed" >>"$tmp/render/$f.err") &
    done
fi
(cd "$mandir" && timeout 60 groff -man -ww -z -Tutf8 "$@") >"$tmp/groff.err" 2>&1 ||
    echo "groff failed" >>"$tmp/groff.err"
(cd "$mandir" && timeout 60 lexgrog "$@") >"$tmp/lexgrog" 2>/dev/null

# The program text of each .EX block of an EXAMPLES section that starts
# with a preprocessor line, into $tmp/ex/PAGE.N.c; compiled in the
# background too.
(cd "$mandir" && awk -v dir="$tmp/ex" '
    FNR == 1 { page = FILENAME; sub(/.*\//, "", page); n = 0; on = ex = 0 }
    /^\.SH/ { on = $2 == "EXAMPLES"; next }
    on && /^\.EX/ { ex = 1; first = 1; next }
    ex && /^\.EE/ { ex = 0; if (file != "") close(file); file = ""; next }
    ex {
        if (first && /^#/) file = dir "/" page "." ++n ".c"
        first = 0
        if (file == "") next
        gsub(/\\-/, "-"); gsub(/\\\(aq/, "\047"); gsub(/\\\(dq/, "\"")
        gsub(/\\&/, ""); gsub(/\\%/, ""); gsub(/\\e/, "\\")
        print > file
    }' "$@")
skips examples && rm -f "$tmp"/ex/*.c
cc_example() { # cc_example FILE.c: compiles it against every header
    c=$1
    set --
    while IFS= read -r header; do
        set -- "$@" -I"$(dirname "$header")"
    done <"$tmp/headers"
    timeout 60 "${CC:-cc}" -std=c11 -Wall -Wextra -Wpedantic -Werror -pthread \
        "$@" -fsyntax-only "$c" >"$c.err" 2>&1 || echo "cc failed" >>"$c.err"
}
for c in "$tmp"/ex/*.c; do
    [ -f "$c" ] || continue
    cc_example "$c" &
done
wait

# What every page says of itself, against the headers and lexgrog.
(cd "$mandir" && awk '
    FILENAME == ARGV[1] { fn[$0] = 1; next }
    FILENAME == ARGV[2] { word[$0] = 1; next }
    FILENAME == ARGV[3] { # man3/PAGE.3: "NAME - what it is"
        if (/: parse failed$/) { sub(/:.*/, ""); unreadable[$0] = 1; next }
        p = $0; sub(/: .*/, "", p)
        n = $0; sub(/^[^"]*"/, "", n); sub(/ - .*/, "", n)
        named[p, n] = 1; names[p] = names[p] " " n
        next
    }
    FNR == 1 { p = FILENAME; page[p] = 1; first[p] = $0 }
    { lines[p]++ }
    /^\.so[ \t]/ { so[p] = $2 }
    /^\.SH/ { s = $0; sub(/^\.SH[ \t]+/, "", s); gsub(/"/, "", s); sec[p, s] = 1 }
    /^\.(Dd|Dt|Os|Nm|Nd|Sh)([ \t]|$)/ { mdoc[p] = 1 }
    /^\.BR (scr?_[a-z0-9_]*|sharedcalls(\\-redis)?) \(3\)/ {
        r = $2; gsub(/\\-/, "-", r); ref[p, r] = 1
    }
    function bad(msg) { print msg; errors++ }
    END {
        for (p in page) {
            base = p; sub(/.*\//, "", base); sub(/\.3$/, "", base)
            if (!(base in fn) && base != "sharedcalls" && base != "sharedcalls-redis" &&
                base != "sc_event")
                bad(p ": the header declares no function " base)
            if (p in so) {
                if (lines[p] != 1) bad(p ": an alias page must hold only its .so line")
                if (!(so[p] in page)) bad(p ": its .so names " so[p] ", which does not exist")
                else if (so[p] in so) bad(p ": its .so names another alias")
                continue
            }
            if (index(first[p], ".TH " base " 3 ") != 1)
                bad(p ": its first line is not .TH " base " 3 ...")
            want[1] = "NAME"
            want[2] = "SYNOPSIS"
            want[3] = "DESCRIPTION"
            want[4] = "SEE ALSO"
            for (i = 1; i <= 4; i++)
                if (!((p, want[i]) in sec)) bad(p ": no .SH " want[i])
            if (p in mdoc) bad(p ": mdoc macros; write man(7)")
            if (p in unreadable || !(p in names))
                bad(p ": lexgrog cannot read its NAME section")
            split(names[p], ns, " ")
            for (i in ns)
                if (ns[i] != "sharedcalls" && ns[i] != "sharedcalls-redis" && !(ns[i] in word))
                    bad(p ": its NAME lists " ns[i] ", which the header does not declare")
        }
        for (k in ref) {
            split(k, pr, SUBSEP)
            if (!(("man3/" pr[2] ".3") in page))
                bad(pr[1] ": refers to " pr[2] "(3), which has no page")
        }
        for (f in fn) {
            p = "man3/" f ".3"
            if (!(p in page))
                bad(f ": declared in the header, but there is no " p)
            else if (!((p, f) in named))
                bad(f ": the NAME section of " (p in so ? so[p] : p) " does not list it")
        }
        exit errors > 0
    }' "$tmp/functions" "$tmp/words" "$tmp/lexgrog" "$@") | sort >"$tmp/problems"

{
    for p in "$@"; do
        f=${p#man3/}
        [ -s "$tmp/render/$f.err" ] && echo "$p: man warns: $(cat "$tmp/render/$f.err")"
        if [ -f "$tmp/render/$f.txt" ]; then
            width=$(wc -L <"$tmp/render/$f.txt")
            [ "$width" -le 80 ] || echo "$p: a line is $width columns wide, more than 80"
        fi
    done
    sed 's/^/groff warns: /' "$tmp/groff.err"
    for c in "$tmp"/ex/*.c; do
        [ -s "$c.err" ] || continue
        page=${c##*/}
        echo "man3/${page%.*.c}: example ${page#*.3.} does not compile:"
        sed 's/^/    /' "$c.err"
    done
    cat "$tmp/nodecl"
} >>"$tmp/problems"

nfn=$(wc -l <"$tmp/functions")
if [ -s "$tmp/problems" ]; then
    cat "$tmp/problems"
    echo "man pages: $(grep -c '^[^ ]' "$tmp/problems") problem(s) ($nfn functions, $# pages)"
    exit 1
fi
echo "man pages: $# pages render cleanly; $nfn functions, each with a page that names it"
$selftest || exit 0

# The self-test: a copy of the pages and the headers must pass, and each
# broken copy must fail with the message that names what broke. Each case
# skips the slow parts it does not test: man-db's renders, the examples.
passed=0
failed=0
skip=
expect() { # expect pass|fail WHAT [MESSAGE...]: each message must be said
    want=$1 what=$2
    shift 2
    if TEST_MAN_SKIP=$skip sh tests/test_man.sh --check-only "$tmp/st/man" \
        "$tmp"/st/inc/*.h >"$tmp/st.out" 2>&1; then
        got=pass
    else
        got=fail
    fi
    missing=
    for m in "$@"; do
        grep -qF -- "$m" "$tmp/st.out" || missing="$missing \"$m\""
    done
    if [ "$got" = "$want" ] && [ -z "$missing" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "WRONG: $what: the check said $got${missing:+, and not$missing}"
        sed 's/^/    /' "$tmp/st.out"
    fi
}
fresh() { # a clean copy of the pages, and of the headers in $tmp/st/inc
    rm -rf "$tmp/st"
    mkdir -p "$tmp/st/inc"
    cp -R "$mandir" "$tmp/st/man"
    while IFS= read -r header; do
        cp "$header" "$tmp/st/inc/"
    done <"$tmp/headers"
}
st=$tmp/st/man/man3
hd=$tmp/st/inc/sharedcalls.h
rhd=$tmp/st/inc/sharedcalls-redis.h

skip="render examples" # the pages were rendered and compiled above
fresh
expect pass "the pages as they are"

skip=examples
fresh
sed -i '/^\.SH DESCRIPTION/a .BOGUS macro' "$st/sc_do_async.3"
sed -i '/^\.EX$/a static const char *s = "a string that runs past the eightieth column of a terminal";' \
    "$st/sc_version.3"
expect fail "a bogus macro and a line wider than 80 columns, through man-db" \
    "man3/sc_do_async.3: man warns" "man3/sc_version.3: a line is"
skip="render examples"

fresh
sed -i '/^\.SH DESCRIPTION/a .BOGUS macro' "$st/sc_stats.3"
expect fail "a bogus macro, seen by groff" "groff warns: troff: man3/sc_stats.3:"

fresh
sed -i '/^\.SH DESCRIPTION/a an unknown escape: \\q' "$st/sc_do_result.3"
expect fail "an escape only groff -ww warns of" "groff warns: troff: man3/sc_do_result.3:"

fresh
rm "$st/sc_forget.3"
expect fail "sc_forget.3 deleted" "sc_forget: declared in the header, but there is no man3/sc_forget.3"

fresh
rm "$st/sc_free.3"
expect fail "the alias sc_free.3 deleted" "sc_free: declared in the header, but there is no man3/sc_free.3"

fresh
printf '.so man3/sc_nothing.3\n' >"$st/sc_drain.3"
expect fail "an alias to a missing page" "man3/sc_drain.3: its .so names man3/sc_nothing.3"

fresh
sed -i '/^sc_do, sc_do_ex, sc_fn/s/ sc_do_ex,//' "$st/sc_do.3"
expect fail "sc_do_ex left out of sc_do.3's NAME" \
    "sc_do_ex: the NAME section of man3/sc_do.3 does not list it"

fresh
printf 'int\nsc_bogus(sc_group *g,\n         int how);\n' >"$tmp/decl"
sed -i "/^SC_API int sc_forget(/r $tmp/decl" "$hd"
expect fail "a new function declared over three lines" \
    "sc_bogus: declared in the header, but there is no man3/sc_bogus.3"

fresh
sed -i '/^SC_API int sc_forget(/d' "$hd"
expect fail "sc_forget gone from the header" "man3/sc_forget.3: the header declares no function sc_forget"

fresh
sed -i 's/\<sc_result\>/sc_outcome/g' "$hd"
expect fail "sc_result renamed in the header" "its NAME lists sc_result, which the header does not declare"

fresh
sed -i 's/^\.BR sc_stats (3)$/.BR sc_statistics (3)/' "$st/sc_event.3"
expect fail "a reference to a page that does not exist" "refers to sc_statistics(3)"

skip=render
fresh
sed -i 's/^    sc_free(g);$/    sc_free(g, 1);/' "$st/sc_do.3"
expect fail "an example that does not compile" "man3/sc_do.3: example 1.c does not compile"
skip="render examples"

fresh
sed -i '/^\.SH NAME$/i .Dd November 28, 2026' "$st/sc_new.3"
expect fail "an mdoc macro" "man3/sc_new.3: mdoc macros"

# The same for libsharedcalls-redis and its header.
fresh
rm "$st/scr_stats.3"
expect fail "scr_stats.3 deleted" "scr_stats: declared in the header, but there is no man3/scr_stats.3"

fresh
rm "$st/scr_free.3"
expect fail "the alias scr_free.3 deleted" "scr_free: declared in the header, but there is no man3/scr_free.3"

fresh
sed -i '/^scr_new, scr_free,/s/ scr_free,//' "$st/scr_new.3"
expect fail "scr_free left out of scr_new.3's NAME" \
    "scr_free: the NAME section of man3/scr_new.3 does not list it"

fresh
printf 'SC_API int\nscr_bogus(scr_group *g,\n          int how);\n' >"$tmp/decl"
sed -i "/^SC_API int scr_free(/r $tmp/decl" "$rhd"
expect fail "a new scr_ function declared over three lines" \
    "scr_bogus: declared in the header, but there is no man3/scr_bogus.3"

fresh
sed -i '/^SC_API int scr_stats(/d' "$rhd"
expect fail "scr_stats gone from the Redis header" \
    "man3/scr_stats.3: the header declares no function scr_stats"

fresh
sed -i '/^SC_API/,/;/d' "$rhd"
expect fail "no function left in the Redis header" \
    "sharedcalls-redis.h: no function declarations found"

fresh
sed -i 's/\<scr_result\>/scr_answer/g' "$rhd"
expect fail "scr_result renamed in the Redis header" \
    "its NAME lists scr_result, which the header does not declare"

fresh
rm "$st/sharedcalls-redis.3"
expect fail "the library's page sharedcalls-redis.3 deleted" \
    "man3/scr_do.3: refers to sharedcalls-redis(3), which has no page"

fresh
sed -i 's/^\.BR scr_stats (3),$/.BR scr_statistics (3),/' "$st/scr_do.3"
expect fail "a reference to a scr_ page that does not exist" "man3/scr_do.3: refers to scr_statistics(3)"

skip=render
fresh
sed -i 's/^    return scr_free(g) != 0;$/    return scr_free(g, 1) != 0;/' "$st/scr_stats.3"
expect fail "a Redis example that does not compile" "man3/scr_stats.3: example 1.c does not compile"
skip="render examples"

echo "man page self-test: $passed passed, $failed failed"
[ $failed -eq 0 ]
