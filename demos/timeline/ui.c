/*
 * ui.c - the ncurses player: a replay of a recorded run, one step (an
 * event, or a tick of waiting) at a time, with one row per thread, the
 * counters, the legend and a sentence for the step just shown. The record is made before the first frame, so
 * pausing, stepping and replaying never touch a thread.
 */
#define _POSIX_C_SOURCE 200809L

#include "timeline.h"

#include <curses.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    CELLS_X = TL_LABEL, /* first tick's column: the label, then a space */
    CAPTION_LINES = 3,  /* the caption's share when rows need the room */
    NSPEEDS = 6,
    START_SPEED = 2,
    QUIT = 1,
};

static const int speeds[NSPEEDS] = {1, 2, 4, 8, 16, 32}; /* steps a second */

static const char keys_line[] =
    "space pause  n/p step  +/- speed  r replay  1-9 scenario  ? help  q quit";

struct player {
    struct tl_run *run;
    int scenario; /* the one asked for: named if tl_run fails */
    unsigned seed;
    int step;  /* of tl_steps(run): where the replay is */
    int upto;  /* events shown at that step */
    int now;   /* the clock at that step */
    int speed; /* index into speeds */
    bool paused, help, colour;
    bool quiz;     /* start paused, the caption asking what to predict */
    long long due; /* when the next event is shown, in ms */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_due(struct player *p)
{
    p->due = now_ms() + 1000 / speeds[p->speed];
}

/* A colour pair per state where there are colours; glyphs and bold or
 * reverse alone must still tell the states apart where there are not. */
static bool setup_colours(void)
{
    static const short fg[TL_NSTATES] = {
        [TL_LOCK] = COLOR_YELLOW,   [TL_LEADER] = COLOR_GREEN,
        [TL_FOLLOWER] = COLOR_CYAN, [TL_VALUE] = -1, /* the terminal's */
        [TL_ERROR] = COLOR_RED,     [TL_TIMEOUT] = COLOR_MAGENTA,
        [TL_CANCEL] = COLOR_RED,    [TL_STUCK] = COLOR_RED,
    };
    if (!has_colors() || start_color() == ERR)
        return false;
    bool defaults = use_default_colors() == OK;
    short bg = defaults ? -1 : COLOR_BLACK;
    for (int s = 1; s < TL_NSTATES; s++)
        init_pair((short)s,
                  (short)(fg[s] < 0 && !defaults ? COLOR_WHITE : fg[s]), bg);
    return true;
}

static attr_t state_attr(const struct player *p, enum tl_state s)
{
    attr_t a = A_NORMAL;
    if (s == TL_STUCK)
        a = A_REVERSE | A_BOLD;
    else if (s == TL_LEADER || s == TL_VALUE || (!p->colour && s >= TL_ERROR))
        a = A_BOLD;
    if (p->colour && s != TL_IDLE)
        a |= COLOR_PAIR(s);
    return a;
}

/* Writes at most n bytes of s (n < 0: all) at y, x, cut at the screen's
 * right edge: addnstr would wrap onto the next line. */
static void putn(int y, int x, attr_t a, const char *s, int n)
{
    int room = COLS - x;
    if (y < 0 || y >= LINES || room <= 0)
        return;
    attr_on(a, NULL);
    mvaddnstr(y, x, s, n >= 0 && n < room ? n : room);
    attr_off(a, NULL);
}

static void put(int y, int x, attr_t a, const char *s)
{
    putn(y, x, a, s, -1);
}

/* Word-wraps the caption into at most max lines from y; the lines used. */
static int draw_caption(int y, const char *text, int max)
{
    int lines = 0;
    while (*text != '\0' && lines < max) {
        int cut = (int)strlen(text);
        if (cut > COLS && COLS > 0) {
            cut = COLS;
            while (cut > 0 && text[cut] != ' ')
                cut--;
            cut = cut > 0 ? cut : COLS; /* a word longer than the line */
        }
        putn(y + lines++, 0, A_NORMAL, text, cut);
        text += cut;
        while (*text == ' ')
            text++;
    }
    return lines;
}

static void draw_ruler(const struct player *p, int y)
{
    int ticks = p->run->ticks < TL_TICKS_MAX ? p->run->ticks : TL_TICKS_MAX;
    int now = p->now;
    char line[TL_TICKS_MAX + 1], head[TL_LABEL], num[8];
    memset(line, '.', sizeof line);
    for (int t = 0; t < ticks; t += 5) {
        int len = snprintf(num, sizeof num, "%d", t);
        memcpy(line + t, num, (size_t)(len < ticks - t ? len : ticks - t));
    }
    line[ticks] = '\0';
    snprintf(head, sizeof head, "tick %d", now);
    put(y, 0, A_BOLD, head);
    put(y, CELLS_X, A_NORMAL, line);
    if (now < ticks)
        putn(y, CELLS_X + now, A_REVERSE | A_BOLD, line + now, 1);
}

/* The row's cells, then how its call ended (as plain.c says it), in the
 * colour of its last state. */
static void draw_row(const struct player *p, int y, int r)
{
    const struct tl_run *run = p->run;
    enum tl_state last = TL_IDLE;
    char text[48];
    snprintf(text, sizeof text, "%-*s", TL_LABEL - 1, run->rows[r].label);
    put(y, 0, A_NORMAL, text);
    for (int t = 0; t < run->ticks; t++) {
        struct tl_cell c = tl_cell_at(run, r, t, p->upto, p->now);
        putn(y, CELLS_X + t, state_attr(p, c.state), &c.glyph, 1);
        last = c.state != TL_IDLE ? c.state : last;
    }
    tl_result_of(run, r, p->upto, text, sizeof text);
    put(y, CELLS_X + run->ticks + 2, state_attr(p, last), text);
}

/* Legend entry i, 0 .. TL_NSTATES - 1, the last one for 'L' and 'F'; its
 * width. Drawn only if y >= 0. */
static int legend_entry(const struct player *p, int y, int x, int i)
{
    bool roles = i == TL_NSTATES - 1;
    const char *words = roles ? TL_MARKS_WORDS : tl_legend[i].words;
    if (y >= 0 && roles) {
        put(y, x, state_attr(p, TL_LEADER), "L");
        put(y, x + 2, state_attr(p, TL_FOLLOWER), "F");
    } else if (y >= 0) {
        putn(y, x, state_attr(p, tl_legend[i].state), &tl_legend[i].glyph, 1);
    }
    put(y, x + (roles ? 4 : 2), A_NORMAL, words);
    return (roles ? 4 : 2) + (int)strlen(words);
}

/* The legend, wrapped between entries; the lines it takes. Drawn only if
 * y >= 0. */
static int draw_legend(const struct player *p, int y)
{
    int x = 0, lines = 1;
    for (int i = 0; i < TL_NSTATES; i++) {
        int len = legend_entry(p, -1, 0, i);
        if (x > 0 && x + 2 + len > COLS) {
            x = 0;
            lines++;
        } else if (x > 0) {
            x += 2;
        }
        x += legend_entry(p, y < 0 ? -1 : y + lines - 1, x, i);
    }
    return lines;
}

/* The status: what the event just shown did, the last one too. The
 * longest sentence takes 73 columns with its "[i/N] ", so the pause, the
 * speed and the end go elsewhere. */
static void draw_status(const struct player *p, int y)
{
    char what[160], line[200];
    if (p->quiz && p->step == 0)
        snprintf(what, sizeof what, "predict first: n steps, space plays");
    else
        tl_step_say(p->run, p->step, what, sizeof what);
    snprintf(line, sizeof line, "[%d/%d] %s", p->step, tl_steps(p->run), what);
    put(y, 0, A_NORMAL, line);
}

/* How many of the record's events are main's: the lines they take. */
static int main_lines(const struct tl_run *run)
{
    int n = 0;
    for (int i = 0; i < run->nevents; i++)
        n += tl_by_main(run, i);
    return n;
}

/* main's actions shown so far, as plain.c prints them; the lines used. */
static int draw_main(const struct player *p, int y)
{
    int lines = 0;
    for (int i = 0; i < p->run->nevents; i++) {
        if (!tl_by_main(p->run, i))
            continue;
        char what[160], line[170];
        tl_describe(p->run, i, what, sizeof what);
        snprintf(line, sizeof line, "  %s", what);
        if (i < p->upto)
            put(y + lines, 0, A_NORMAL, line);
        lines++;
    }
    return lines;
}

/* The counters, and at the right whether it plays and how fast. */
static void draw_counts(const struct player *p, int y)
{
    struct tl_counts c = tl_count(p->run, p->upto);
    char line[80], tag[32];
    snprintf(line, sizeof line, "flights %d  callers %d  suppressed %d",
             c.flights, c.callers, c.suppressed);
    put(y, 0, A_BOLD, line);
    bool end = p->upto >= p->run->nevents;
    int n = snprintf(tag, sizeof tag, "%s%s%d steps/s", end ? "END  " : "",
                     p->paused && !end ? "PAUSED  " : "", speeds[p->speed]);
    int x = COLS - n > (int)strlen(line) + 2 ? COLS - n : (int)strlen(line) + 2;
    put(y, x, p->paused ? A_REVERSE | A_BOLD : A_NORMAL, tag);
}

/* The title, without "sharedcalls " if that makes it fit. A quiz shows
 * no scenario title: some tell the outcome. */
static void draw_title(const struct player *p)
{
    char line[200];
    int n = snprintf(line, sizeof line,
                     "sharedcalls timeline  scenario %d/%d: %s  seed %u",
                     p->run->scenario, tl_scenarios(),
                     p->quiz ? "quiz" : p->run->title, p->run->seed);
    put(0, 0, A_BOLD, n > COLS ? line + strlen("sharedcalls ") : line);
}

/* The columns the widest row needs, with how its call ended. */
static int width_needed(const struct tl_run *run)
{
    int w = (int)strlen(keys_line);
    for (int r = 0; r < run->nrows; r++) {
        char end[48];
        tl_result_of(run, r, run->nevents, end, sizeof end);
        int v = CELLS_X + run->ticks + 2 + (int)strlen(end);
        w = v > w ? v : w;
    }
    return w;
}

/* A box over the middle of the screen, in ASCII like everything else. */
static void draw_help(const struct player *p)
{
    static const char *const keys[] = {
        "space   pause / resume",
        "n ->    one step on (an event or a tick)",
        "p <-    one step back",
        "+ = -   faster / slower",
        "r       replay from the start",
        "1-9     pick a scenario",
        "?       this help",
        "q       quit",
    };
    enum { W = 70, H = 17, NKEYS = sizeof keys / sizeof keys[0] };
    int x = COLS > W ? (COLS - W) / 2 : 0, y = LINES > H ? (LINES - H) / 2 : 0;
    for (int i = 0; i < H; i++) /* hline and vline stop at the edges */
        mvhline(y + i, x, i == 0 || i == H - 1 ? '-' : ' ', W);
    mvvline(y + 1, x, '|', H - 2);
    mvvline(y + 1, x + W - 1, '|', H - 2);
    put(y + 1, x + 2, A_BOLD, "keys");
    put(y + 1, x + 38, A_BOLD, "legend");
    for (int i = 0; i < NKEYS; i++)
        put(y + 3 + i, x + 2, A_NORMAL, keys[i]);
    for (int i = 0; i < TL_NSTATES; i++)
        legend_entry(p, y + 3 + i, x + 38, i);
    put(y + H - 3, x + 2, A_NORMAL, TL_COUNTS_WORDS);
    put(y + H - 2, x + 2, A_NORMAL, "any key closes this box");
}

/* Top to bottom. The caption takes the lines the rest leaves, at least
 * CAPTION_LINES; below the size it needs, the last line says so. */
static void draw(const struct player *p)
{
    const struct tl_run *run = p->run;
    int legend = draw_legend(p, -1);
    int others = 1 + 1 + run->nrows + main_lines(run) + 1 + legend + 1 + 1;
    int room = LINES - others > CAPTION_LINES ? LINES - others : CAPTION_LINES;
    erase();
    draw_title(p);
    char quiz[600];
    if (p->quiz)
        tl_quiz_caption(run, quiz, sizeof quiz);
    int y = 1 + draw_caption(1, p->quiz ? quiz : run->caption, room);
    draw_ruler(p, y++);
    for (int r = 0; r < run->nrows; r++)
        draw_row(p, y++, r);
    y += draw_main(p, y);
    draw_counts(p, y++);
    y += draw_legend(p, y);
    draw_status(p, y++);
    put(y++, 0, A_NORMAL, keys_line);
    if (y > LINES || COLS < width_needed(run)) {
        char small[120];
        snprintf(small, sizeof small, "too small: %dx%d, needs %dx%d", COLS,
                 LINES, width_needed(run), y);
        move(LINES - 1, 0);
        clrtoeol();
        put(LINES - 1, 0, A_REVERSE, small);
    }
    if (p->help)
        draw_help(p);
    refresh();
}

/* Moves the replay to step k, clamped to the steps there are. */
static void go_to(struct player *p, int k)
{
    int last = tl_steps(p->run);
    p->step = k < 0 ? 0 : k > last ? last : k;
    struct tl_step s = tl_step(p->run, p->step);
    p->upto = s.upto;
    p->now = s.now;
}

static void replay(struct player *p)
{
    go_to(p, 0);
    p->paused = p->quiz; /* a quiz waits for the prediction */
    set_due(p);
}

/* Acts on a key: 0, QUIT, or tl_run's error. */
static int on_key(struct player *p, int ch)
{
    if (p->help) { /* any key closes it; a resize only redraws */
        p->help = ch == KEY_RESIZE;
        set_due(p);
        return 0;
    }
    if (ch >= '1' && ch <= '9' && ch - '0' <= tl_scenarios()) {
        p->scenario = ch - '0';
        int rc = tl_run(p->scenario, p->seed, p->run);
        replay(p);
        return rc;
    } else if (ch == 'n' || ch == KEY_RIGHT) {
        p->paused = true;
        go_to(p, p->step + 1);
    } else if (ch == 'p' || ch == KEY_LEFT) { /* a replay: going back is free */
        p->paused = true;
        go_to(p, p->step - 1);
    } else if (ch == ' ') {
        p->paused = !p->paused;
        set_due(p);
    } else if (ch == '+' || ch == '=' || ch == '-') {
        int to = p->speed + (ch == '-' ? -1 : 1);
        p->speed = to < 0 ? 0 : to >= NSPEEDS ? NSPEEDS - 1 : to;
        set_due(p);
    } else if (ch == 'r') {
        replay(p);
    } else if (ch == '?') {
        p->help = true;
    }
    return ch == 'q' || ch == 'Q' ? QUIT : 0; /* others, KEY_RESIZE: redraw */
}

/* How long getch may wait: until the next event is due, or for ever. */
static int wait_ms(const struct player *p)
{
    if (p->help || p->paused || p->upto >= p->run->nevents)
        return -1;
    long long left = p->due - now_ms();
    return left < 0 ? 0 : left > 1000 ? 1000 : (int)left;
}

static int play(struct player *p)
{
    for (;;) {
        draw(p);
        int wait = wait_ms(p);
        timeout(wait);
        int ch = getch();
        if (ch == ERR && wait < 0)
            return QUIT; /* no timeout, no key: the terminal has gone */
        if (ch == ERR && now_ms() >= p->due) {
            go_to(p, p->step + 1);
            set_due(p);
        } else if (ch != ERR) {
            int rc = on_key(p, ch);
            if (rc != 0)
                return rc;
        }
    }
}

int tl_ui(int n, unsigned seed, bool quiz)
{
    struct player p = {
        .scenario = n, .seed = seed, .speed = START_SPEED, .quiz = quiz};
    p.run = calloc(1, sizeof *p.run);
    int rc = p.run != NULL ? tl_run(n, seed, p.run) : -ENOMEM;
    /* A terminal that cannot move its cursor (TERM=dumb, or unknown) gets
     * the plain timeline instead of a garbled screen. */
    SCREEN *screen = rc == 0 ? newterm(NULL, stdout, stdin) : NULL;
    if (rc == 0 && (screen == NULL || tigetstr("cup") == NULL ||
                    tigetstr("cup") == (char *)-1)) {
        if (screen != NULL) {
            endwin();
            delscreen(screen);
        }
        tl_print_plain(p.run, stdout);
        free(p.run);
        return 0;
    }
    if (rc == 0) {
        cbreak();
        noecho();
        keypad(stdscr, TRUE);
        curs_set(0);
        p.colour = setup_colours();
        replay(&p);
        rc = play(&p);
        endwin();
        delscreen(screen);
    }
    if (rc < 0)
        fprintf(stderr, "timeline: scenario %d: %s\n", p.scenario,
                strerror(-rc));
    free(p.run);
    return rc < 0 ? 1 : 0;
}
