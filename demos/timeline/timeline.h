/*
 * timeline.h - the timeline demo's parts and the record they share.
 *
 * A scenario is a script of callers on a virtual clock of ticks: who calls
 * which key at which tick, how many ticks its fn takes, what it returns.
 * driver.c runs the script with real threads against the real library and
 * records every trace event with the tick it happened in; the clock moves
 * on only when every thread has settled, so the record, and every drawing
 * of it, depends on nothing but the scenario and the seed. The drawings
 * (plain.c, export.c, ui.c) are replays of that record; model.c says what
 * each row shows at each tick.
 *
 *   driver.c     runs a scenario, fills a struct tl_run
 *   scenarios.c  the scenarios and their captions
 *   model.c      cells, glyphs, counters and sentences from a record
 *   plain.c      the text timeline (--plain, or no terminal)
 *   export.c     Chrome trace-event JSON and SVG
 *   ui.c         the ncurses player
 */
#ifndef TIMELINE_H
#define TIMELINE_H

#include "sharedcalls.h"

#include <stdbool.h>
#include <stdio.h>

enum {
    TL_ROWS_MAX = 16,
    TL_TICKS_MAX = 48,
    TL_EVENTS_MAX = 512,
    TL_LABEL = 12, /* "G12 once" and its NUL */
};

/* Events the demo adds to the library's (sc_event_kind). */
enum {
    TL_EV_FORGET = 100, /* the demo's main thread called sc_forget */
    TL_EV_KILL,         /* the demo's main thread cancelled a row's thread */
    TL_EV_WAIT,         /* a broken follower waits with no predicate */
    TL_EV_STUCK,        /* ... and was never woken: its wake-up came first */
};

struct tl_event {
    int tick; /* virtual time */
    int row;  /* the thread's row; -1 for the demo's main thread */
    int kind; /* sc_event_kind, or TL_EV_* */
    unsigned long flight;
    int code;
    bool fresh, shared;
    long long ns; /* real time since the run began, from the event */
    int stage;    /* the driver's moves so far: see tl_order */
    char key[8];
};

/* scenarios.c. A scenario's callers, one thread and one call each. */
struct tl_actor {
    const char *key;
    int at;        /* the tick it calls at */
    int runs;      /* how many ticks its fn takes, if it leads */
    int err;       /* what its fn returns: 0 (a value) or an error code */
    int patience;  /* ticks it waits as a follower; 0: no deadline */
    int killed_at; /* the tick main cancels its thread at; 0: never */
    int relock_at; /* re-enacts the broken wait, locking again then; 0: no */
};
struct tl_scenario {
    const char *title;
    const char *caption;
    int ticks;
    bool handoff;  /* the group's handoff option */
    bool seeded;   /* the seed adds 0-3 ticks to each fn */
    int forget_at; /* the tick main calls sc_forget at; 0: never */
    const char *forget_key;
    int nactors;
    struct tl_actor actors[TL_ROWS_MAX];
};
struct tl_row {
    char label[TL_LABEL]; /* "G1 a" */
    char key[8];
    char value[16];     /* what its call returned: a value, or an error name */
    struct tl_actor as; /* its part as played: with the seed's extra ticks */
    bool first;         /* the seed let it call first among its tick's */
};
int tl_scenarios(void);               /* how many: 1 .. this */
const char *tl_scenario_title(int n); /* NULL if there is no scenario n */
const struct tl_scenario *tl_scenario(int n); /* NULL if there is none */

struct tl_run {
    int scenario; /* 1 .. tl_scenarios() */
    unsigned seed;
    const char *title;
    const char *caption;
    int ticks; /* the drawing's width */
    int nrows;
    struct tl_row rows[TL_ROWS_MAX];
    int nevents;
    struct tl_event events[TL_EVENTS_MAX];
    struct sc_stats stats; /* the group's own counters, at the end */
};

/* driver.c: runs scenario n with the seed. Returns 0, or -EINVAL (no such
 * scenario), or a negative errno if a thread or the group could not be
 * made. Takes well under a second. */
int tl_run(int n, unsigned seed, struct tl_run *out);

/* order.c: puts the record in an order that depends only on the scenario
 * and the seed. Threads the driver lets go at once log in the scheduler's
 * order; within each of the driver's stages this keeps each thread's own
 * order and every cause before its effect, and otherwise takes the lowest
 * row first. */
void tl_order(struct tl_run *run);

/* model.c. "upto" counts events: a drawing of the first upto events (the
 * player steps through them); run->nevents draws everything. */
enum tl_state {
    TL_IDLE,     /* ' ' not called yet, or gone */
    TL_LOCK,     /* '~' called, waiting for the group lock */
    TL_LEADER,   /* '=' running fn as the flight's leader ('L' first) */
    TL_FOLLOWER, /* '-' waiting for the leader as a follower ('F' first) */
    TL_VALUE,    /* 'v' returned a value */
    TL_ERROR,    /* 'x' returned fn's error */
    TL_TIMEOUT,  /* 'T' its deadline passed; it returned -ETIMEDOUT */
    TL_CANCEL,   /* 'C' cancelled, or its leader was: -ECANCELED */
    TL_STUCK,    /* '!' waits for a wake-up that came before it waited */
    TL_NSTATES
};
struct tl_cell {
    enum tl_state state;
    char glyph; /* the state's glyph, or 'L'/'F' where a role begins */
};
struct tl_cell tl_cell(const struct tl_run *run, int row, int tick, int upto);
/* The same with the clock at now: ticks after it are not drawn yet. */
struct tl_cell tl_cell_at(const struct tl_run *run, int row, int tick, int upto,
                          int now);
/* The latest tick among the first upto events: where the player's cursor
 * is. With every event, the last tick of the drawing. */
int tl_now(const struct tl_run *run, int upto);

struct tl_counts {
    int flights;    /* runs of fn */
    int callers;    /* calls made */
    int suppressed; /* calls answered by another's run of fn */
};
struct tl_counts tl_count(const struct tl_run *run, int upto);

/* The legend, one entry per state: glyph and a few words. */
struct tl_legend {
    enum tl_state state;
    char glyph;
    const char *words;
};
extern const struct tl_legend tl_legend[TL_NSTATES - 1]; /* no TL_IDLE */

/* What the legend says of the 'L' and 'F' marks. */
#define TL_MARKS_WORDS "where one begins"
/* What the counters count. A hand-off's new leader runs fn again in the
 * same flight, and that run counts too. */
#define TL_COUNTS_WORDS                                                        \
    "flights: runs of fn. suppressed: calls answered by another's run."
/* Whether a finished picture can show the state: a call waits for the
 * lock within one tick, so only the player, between events, shows '~'. */
bool tl_in_picture(enum tl_state s);
/* main's action, if event i is one (cancel, sc_forget). */
bool tl_by_main(const struct tl_run *run, int i);

/* Event i as a sentence: "t=3   G2 joins flight 1 of a and waits". */
void tl_describe(const struct tl_run *run, int i, char *buf, size_t size);
/* What row's call ended with, by event upto: "3fa9c1 (shared)", "EIO",
 * "stuck: ...", or "" while it has not ended. */
void tl_result_of(const struct tl_run *run, int row, int upto, char *buf,
                  size_t size);
/* A return code's name: "0", "EIO", "-ETIMEDOUT", ... */
const char *tl_code_name(int code);

/* steps.c: the player's steps, 0 (nothing shown) .. tl_steps(run) (all):
 * each event, and each tick that passes between two events. */
struct tl_step {
    int upto; /* events shown */
    int now;  /* the clock: the tick drawn last */
};
int tl_steps(const struct tl_run *run);
struct tl_step tl_step(const struct tl_run *run, int k);
/* What the player says at step k: the event it showed, or who is in a
 * call as the clock moves on. */
void tl_step_say(const struct tl_run *run, int k, char *buf, size_t size);

/* plain.c: the whole run as fixed-width text, at most 80 columns. */
void tl_print_plain(const struct tl_run *run, FILE *out);

/* quiz.c: the run as homework: its setup and questions, and with
 * with_answers the answers read from the run and its picture. */
void tl_print_quiz(const struct tl_run *run, bool with_answers, FILE *out);
/* The player's caption for a quiz: the questions and the calls. */
void tl_quiz_caption(const struct tl_run *run, char *buf, size_t size);
int tl_quiz_questions(void);         /* how many: 1 .. this */
const char *tl_quiz_question(int q); /* NULL if there is no question q */
/* The tick row's call ended at (returned, was cancelled, or got stuck);
 * -1 if it has not. */
int tl_end_tick(const struct tl_run *run, int row);

/* export.c: 0, or -errno if writing failed. */
int tl_write_json(const struct tl_run *run, FILE *out);
int tl_write_svg(const struct tl_run *run, FILE *out);

/* ui.c: the interactive player, starting with scenario n; with quiz, it
 * starts paused, asking what to predict. Returns the process exit status. */
int tl_ui(int n, unsigned seed, bool quiz);

#endif /* TIMELINE_H */
