/*
 * plain.c - the timeline as fixed-width text: what --plain prints, and
 * what the book and the README show. It depends only on the record, so a
 * scenario and a seed always print the same picture.
 */
#include "timeline.h"

#include <string.h>

enum { WIDTH = 78 };

/* Prints text word-wrapped to WIDTH columns. */
static void wrap(const char *text, FILE *out)
{
    int col = 0;
    while (*text != '\0') {
        size_t word = strcspn(text, " ");
        if (col > 0 && col + 1 + (int)word > WIDTH) {
            fputc('\n', out);
            col = 0;
        } else if (col > 0) {
            fputc(' ', out);
            col++;
        }
        fprintf(out, "%.*s", (int)word, text);
        col += (int)word;
        text += word;
        text += strspn(text, " ");
    }
    fputc('\n', out);
}

/* "tick        0    5    10": a number above every fifth tick. */
static void ruler(const struct tl_run *run, FILE *out)
{
    fprintf(out, "%-*s", TL_LABEL, "tick");
    for (int t = 0; t < run->ticks; t += 5)
        fprintf(out, t + 5 < run->ticks ? "%-5d" : "%d", t);
    fputc('\n', out);
}

static void rows(const struct tl_run *run, FILE *out)
{
    for (int r = 0; r < run->nrows; r++) {
        fprintf(out, "%-*s ", TL_LABEL - 1, run->rows[r].label);
        for (int t = 0; t < run->ticks; t++)
            fputc(tl_cell(run, r, t, run->nevents).glyph, out);
        char result[32];
        tl_result_of(run, r, run->nevents, result, sizeof result);
        fprintf(out, "  %s\n", result);
    }
}

/* "= leader runs fn  - follower ...", wrapped between entries: the
 * states a finished picture can show. */
static void legend(FILE *out)
{
    int col = 0;
    for (int i = 0; i < TL_NSTATES; i++) {
        if (i < TL_NSTATES - 1 && !tl_in_picture(tl_legend[i].state))
            continue;
        char entry[48];
        int len = i < TL_NSTATES - 1
                      ? snprintf(entry, sizeof entry, "%c %s",
                                 tl_legend[i].glyph, tl_legend[i].words)
                      : snprintf(entry, sizeof entry, "L F " TL_MARKS_WORDS);
        if (col > 0 && col + 2 + len > WIDTH) {
            fputc('\n', out);
            col = 0;
        }
        col += fprintf(out, "%s%s", col > 0 ? "  " : "", entry);
    }
    fputc('\n', out);
}

void tl_print_plain(const struct tl_run *run, FILE *out)
{
    fprintf(out, "scenario %d: %s (seed %u)\n", run->scenario, run->title,
            run->seed);
    wrap(run->caption, out);
    fputc('\n', out);
    ruler(run, out);
    rows(run, out);
    for (int i = 0; i < run->nevents; i++)
        if (tl_by_main(run, i)) {
            char s[128];
            tl_describe(run, i, s, sizeof s);
            fprintf(out, "  %s\n", s);
        }
    struct tl_counts n = tl_count(run, run->nevents);
    fprintf(out, "flights %d  callers %d  suppressed %d\n", n.flights,
            n.callers, n.suppressed);
    fprintf(out, "%s\n", TL_COUNTS_WORDS);
    legend(out);
}
