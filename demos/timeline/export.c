/*
 * export.c - the record as Chrome trace-event JSON (open it in Perfetto or
 * chrome://tracing) and as an SVG picture for the book. Plain stdio: no
 * library is needed for either.
 *
 * Both draw virtual time, a tick as 100 ms, like the seed's one-second fn
 * of ten ticks; the JSON also gives each event's real time in its args,
 * and says in its metadata how to read the spacing within a tick.
 */
#include "timeline.h"

#include <errno.h>
#include <string.h>

enum { TICK_US = 100000 };

static const char *kind_name(int kind)
{
    static const char *const names[] = {
        "enter", "lead",    "join", "fn start", "fn return", "delete",
        "done",  "handoff", "wake", "timeout",  "cancel",    "return"};
    switch (kind) {
    case TL_EV_FORGET:
        return "sc_forget";
    case TL_EV_KILL:
        return "pthread_cancel";
    case TL_EV_WAIT:
        return "wait (no predicate)";
    case TL_EV_STUCK:
        return "stuck";
    default:
        return kind >= 0 && kind <= SC_EV_RETURN ? names[kind] : "?";
    }
}

/* Writes s as the inside of a JSON string, or of SVG text (xml). */
static void escaped(const char *s, bool xml, FILE *out)
{
    for (; *s != '\0'; s++) {
        if (xml && *s == '&')
            fputs("&amp;", out);
        else if (xml && *s == '<')
            fputs("&lt;", out);
        else if (xml && *s == '>')
            fputs("&gt;", out);
        else if (!xml && (*s == '"' || *s == '\\'))
            fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fputc(' ', out);
        else
            fputc(*s, out);
    }
}

/* Event i's time in µs: its tick, then its place within the tick. */
static long long ts_of(const struct tl_run *run, int i)
{
    int within = 0;
    for (int j = i - 1; j >= 0 && run->events[j].tick == run->events[i].tick;
         j--)
        within++;
    return (long long)run->events[i].tick * TICK_US + within * 100LL;
}

static int tid_of(const struct tl_event *e)
{
    return e->row + 2; /* tid 1: main */
}

/* A span from event i to the row's next event that ends it. */
static void span(const struct tl_run *run, int i, const char *name,
                 bool (*ends)(int kind), FILE *out)
{
    const struct tl_event *e = &run->events[i];
    for (int j = i + 1; j < run->nevents; j++)
        if (run->events[j].row == e->row && ends(run->events[j].kind)) {
            fprintf(out,
                    ",\n{\"name\":\"%s\",\"ph\":\"X\",\"pid\":1,\"tid\":%d,"
                    "\"ts\":%lld,\"dur\":%lld,\"args\":{\"flight\":%lu}}",
                    name, tid_of(e), ts_of(run, i),
                    ts_of(run, j) - ts_of(run, i), e->flight);
            return;
        }
}

static bool ends_fn(int k)
{
    return k == SC_EV_FN_RETURN || k == SC_EV_CANCEL;
}
static bool ends_wait(int k)
{
    return k == SC_EV_WAKE || k == SC_EV_TIMEOUT || k == SC_EV_CANCEL ||
           k == TL_EV_STUCK;
}

int tl_write_json(const struct tl_run *run, FILE *out)
{
    fprintf(out,
            "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"tick_ms\":100,"
            "\"time\":\"virtual: one tick of the scenario is drawn as "
            "100 ms\",\"within a tick\":\"events of one tick are drawn "
            "100 us apart only to keep their order: they took no time, and "
            "nothing waited for a lock\",\"real_ns\":\"each event's real "
            "time since the run began\"},\"traceEvents\":[\n"
            "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,"
            "\"args\":{\"name\":\"sharedcalls scenario %d: ",
            run->scenario);
    escaped(run->title, false, out);
    fprintf(out,
            " (seed %u)\"}},\n{\"name\":\"thread_name\",\"ph\":\"M\","
            "\"pid\":1,\"tid\":1,\"args\":{\"name\":\"main\"}}",
            run->seed);
    for (int r = 0; r < run->nrows; r++) {
        fprintf(out,
                ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,"
                "\"tid\":%d,\"args\":{\"name\":\"",
                r + 2);
        escaped(run->rows[r].label, false, out);
        fputs("\"}}", out);
    }
    for (int i = 0; i < run->nevents; i++) {
        const struct tl_event *e = &run->events[i];
        fprintf(out,
                ",\n{\"name\":\"%s\",\"ph\":\"i\",\"s\":\"t\",\"pid\":1,"
                "\"tid\":%d,\"ts\":%lld,\"args\":{\"key\":\"",
                kind_name(e->kind), tid_of(e), ts_of(run, i));
        escaped(e->key, false, out);
        fprintf(out, "\",\"flight\":%lu,\"code\":%d,\"real_ns\":%lld}}",
                e->flight, e->code, e->ns);
        /* No span for the lock: it is taken within the tick, and 100 µs
         * between two events there is only their order. */
        if (e->kind == SC_EV_FN_START)
            span(run, i, "runs fn", ends_fn, out);
        else if (e->kind == SC_EV_JOIN)
            span(run, i, "waits as a follower", ends_wait, out);
    }
    fputs("\n]}\n", out);
    return ferror(out) ? -EIO : 0;
}

/* Fill colours of the states, by enum tl_state. */
static const char *const colour[TL_NSTATES] = {"none",    "#f0c040", "#3cb371",
                                               "#5bc0de", "#d0d0d0", "#d9534f",
                                               "#b05cc8", "#e07b39", "#ff2020"};

enum {
    CELL = 14,
    ROW = 20,
    LEFT = 90,
    TOP = 44, /* the rows' top, less the caption's lines */
    LINE = 16,
    CAPTION_COLS = 100,
    SWATCH = 130,
    PER_LINE = 5
};

static void svg_text(FILE *out, int x, int y, const char *attrs,
                     const char *text)
{
    fprintf(out, "<text x=\"%d\" y=\"%d\" %s>", x, y, attrs);
    escaped(text, true, out);
    fputs("</text>\n", out);
}

static void svg_rows(const struct tl_run *run, int top, FILE *out)
{
    for (int r = 0; r < run->nrows; r++) {
        int y = top + r * ROW;
        svg_text(out, 8, y + 14, "", run->rows[r].label);
        for (int t = 0; t < run->ticks; t++) {
            struct tl_cell c = tl_cell(run, r, t, run->nevents);
            if (c.state == TL_IDLE)
                continue;
            int x = LEFT + t * CELL;
            fprintf(out,
                    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                    "fill=\"%s\"/>\n",
                    x, y + 2, CELL, ROW - 4, colour[c.state]);
            if (strchr("=-~", c.glyph) == NULL) {
                char g[2] = {c.glyph, '\0'};
                svg_text(out, x + CELL / 2, y + 14,
                         "text-anchor=\"middle\" font-weight=\"bold\"", g);
            }
        }
        char result[32];
        tl_result_of(run, r, run->nevents, result, sizeof result);
        svg_text(out, LEFT + run->ticks * CELL + 10, y + 14, "", result);
    }
}

/* How much of text the next caption line takes: up to CAPTION_COLS,
 * cut between words. */
static int line_cut(const char *text)
{
    int cut = (int)strlen(text);
    if (cut > CAPTION_COLS) {
        cut = CAPTION_COLS;
        while (cut > 0 && text[cut] != ' ')
            cut--;
        cut = cut > 0 ? cut : CAPTION_COLS; /* a word longer than a line */
    }
    return cut;
}

static int caption_lines(const char *text)
{
    int lines = 0;
    for (; *text != '\0'; lines++) {
        text += line_cut(text);
        text += strspn(text, " ");
    }
    return lines;
}

/* The caption, word-wrapped, from y. */
static void svg_caption(FILE *out, int y, const char *text)
{
    for (; *text != '\0'; y += LINE) {
        int cut = line_cut(text);
        char line[CAPTION_COLS + 1];
        snprintf(line, sizeof line, "%.*s", cut, text);
        svg_text(out, 8, y, "", line);
        text += cut;
        text += strspn(text, " ");
    }
}

/* main's actions, as plain.c prints them; the next y. */
static int svg_main(const struct tl_run *run, FILE *out, int y)
{
    for (int i = 0; i < run->nevents; i++)
        if (tl_by_main(run, i)) {
            char s[128];
            tl_describe(run, i, s, sizeof s);
            svg_text(out, 8, y, "", s);
            y += LINE;
        }
    return y;
}

/* The states a finished picture shows, then the L and F marks. */
static void svg_legend(FILE *out, int y)
{
    int k = 0;
    for (int i = 0; i < TL_NSTATES; i++) {
        if (i < TL_NSTATES - 1 && !tl_in_picture(tl_legend[i].state))
            continue;
        int x = 8 + k % PER_LINE * SWATCH, ly = y + k / PER_LINE * 20;
        k++;
        if (i < TL_NSTATES - 1) {
            fprintf(out,
                    "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" "
                    "fill=\"%s\"/>\n",
                    x, ly, colour[tl_legend[i].state]);
            svg_text(out, x + 16, ly + 10, "", tl_legend[i].words);
        } else {
            svg_text(out, x, ly + 10, "font-weight=\"bold\"", "L F");
            svg_text(out, x + 28, ly + 10, "", TL_MARKS_WORDS);
        }
    }
}

int tl_write_svg(const struct tl_run *run, FILE *out)
{
    int width = LEFT + run->ticks * CELL + 240;
    if (width < 24 + CAPTION_COLS * 15 / 2) /* the caption's width */
        width = 24 + CAPTION_COLS * 15 / 2;
    int mains = 0;
    for (int i = 0; i < run->nevents; i++)
        mains += tl_by_main(run, i);
    int top = TOP + caption_lines(run->caption) * LINE;
    int height = top + (run->nrows + mains) * ROW + 120;
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" font-family=\"monospace\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            width, height);
    char title[160];
    snprintf(title, sizeof title, "scenario %d: %s (seed %u)", run->scenario,
             run->title, run->seed);
    svg_text(out, 8, 20, "font-weight=\"bold\"", title);
    svg_caption(out, 20 + LINE, run->caption);
    for (int t = 0; t < run->ticks; t += 5) {
        char n[12];
        snprintf(n, sizeof n, "%d", t);
        svg_text(out, LEFT + t * CELL, top - 8, "fill=\"#666\"", n);
    }
    svg_rows(run, top, out);
    int y = svg_main(run, out, top + run->nrows * ROW + 20);
    struct tl_counts n = tl_count(run, run->nevents);
    char counts[96];
    snprintf(counts, sizeof counts, "flights %d  callers %d  suppressed %d",
             n.flights, n.callers, n.suppressed);
    svg_text(out, 8, y, "", counts);
    svg_text(out, 8, y + LINE, "", TL_COUNTS_WORDS);
    svg_legend(out, y + LINE + 12);
    fputs("</svg>\n", out);
    return ferror(out) ? -EIO : 0;
}
