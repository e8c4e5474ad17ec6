/*
 * quiz.c - a scenario as homework, in the style of OSTEP's simulators: the
 * setup without its outcome, numbered questions, and with -c the answers,
 * read from the run itself, then its picture.
 */
#include "timeline.h"

#include <string.h>

/* "G3", the row's label without its key. */
static const char *thread_of(const struct tl_run *run, int row, char *g,
                             size_t size)
{
    snprintf(g, size, "%s", run->rows[row].label);
    g[strcspn(g, " ")] = '\0';
    return g;
}

static void setup(const struct tl_run *run, FILE *out)
{
    const struct tl_scenario *sc = tl_scenario(run->scenario);
    fprintf(out, "Each thread makes one call; fn runs only for a leader.\n");
    fprintf(out, "The handoff option is %s.\n\n", sc->handoff ? "on" : "off");
    fprintf(out, "thread  key   calls at  its fn, if it leads\n");
    for (int r = 0; r < run->nrows; r++) {
        const struct tl_actor *a = &run->rows[r].as;
        char g[TL_LABEL];
        fprintf(out, "%-7s %-5s tick %-4d %d ticks, then %s\n",
                thread_of(run, r, g, sizeof g), a->key, a->at, a->runs,
                a->err != 0 ? tl_code_name(a->err) : "a value");
        if (a->patience > 0)
            fprintf(out, "%8swaits at most %d ticks as a follower\n", "",
                    a->patience);
        if (a->relock_at > 0)
            fprintf(out,
                    "%8sas a follower, unlocks, then at tick %d locks again\n"
                    "%8sand waits, not checking done\n",
                    "", a->relock_at, "");
        if (run->rows[r].first)
            fprintf(out, "%8sof tick %d's callers, the seed lets it in first\n",
                    "", a->at);
    }
    for (int r = 0; r < run->nrows; r++)
        if (run->rows[r].as.killed_at > 0) {
            char g[TL_LABEL];
            fprintf(out, "main cancels %s's thread at tick %d.\n",
                    thread_of(run, r, g, sizeof g), run->rows[r].as.killed_at);
        }
    if (sc->forget_at > 0)
        fprintf(out, "main calls sc_forget(\"%s\") at tick %d.\n",
                sc->forget_key, sc->forget_at);
}

static const char *const questions[] = {
    "How many flights (runs of fn) are there?",
    "Who leads each flight, and who shares it?",
    "What does each thread's call return, and at which tick?",
};

int tl_quiz_questions(void)
{
    return (int)(sizeof questions / sizeof questions[0]);
}

const char *tl_quiz_question(int q)
{
    return q >= 1 && q <= tl_quiz_questions() ? questions[q - 1] : NULL;
}

int tl_end_tick(const struct tl_run *run, int row)
{
    int tick = -1;
    for (int i = 0; i < run->nevents; i++) {
        const struct tl_event *e = &run->events[i];
        if (e->row == row &&
            (e->kind == SC_EV_RETURN || e->kind == SC_EV_CANCEL ||
             e->kind == TL_EV_STUCK))
            tick = e->tick;
    }
    return tick;
}

/* Whether the follower of JOIN event j led its flight later: a hand-off. */
static bool took_over(const struct tl_run *run, int j)
{
    const struct tl_event *join = &run->events[j];
    for (int i = j + 1; i < run->nevents; i++)
        if (run->events[i].kind == SC_EV_LEAD &&
            run->events[i].row == join->row &&
            run->events[i].flight == join->flight)
            return true;
    return false;
}

/* Who led and who shared each flight, in the order they began. */
static void flights(const struct tl_run *run, FILE *out)
{
    for (int i = 0; i < run->nevents; i++) {
        const struct tl_event *e = &run->events[i];
        bool first = e->kind == SC_EV_LEAD;
        for (int j = 0; j < i && first; j++) /* not a hand-off's */
            first = !(run->events[j].kind == SC_EV_LEAD &&
                      run->events[j].flight == e->flight);
        if (!first)
            continue;
        char g[TL_LABEL];
        fprintf(out, "   flight %lu of %s: led by %s", e->flight, e->key,
                thread_of(run, e->row, g, sizeof g));
        for (int j = i + 1; j < run->nevents; j++)
            if (run->events[j].kind == SC_EV_LEAD &&
                run->events[j].flight == e->flight)
                fprintf(out, ", then by %s (hand-off)",
                        thread_of(run, run->events[j].row, g, sizeof g));
        const char *sep = "; shared by ";
        for (int j = i + 1; j < run->nevents; j++)
            if (run->events[j].kind == SC_EV_JOIN &&
                run->events[j].flight == e->flight && !took_over(run, j)) {
                fprintf(out, "%s%s", sep,
                        thread_of(run, run->events[j].row, g, sizeof g));
                sep = ", ";
            }
        fputc('\n', out);
    }
}

/* What row's call ended with: "flight 1's value 3fa9c1, shared". */
static void outcome(const struct tl_run *run, int row, char *buf, size_t size)
{
    const struct tl_event *end = NULL; /* how its call ended */
    for (int i = 0; i < run->nevents; i++) {
        const struct tl_event *e = &run->events[i];
        if (e->row == row &&
            (e->kind == SC_EV_RETURN || e->kind == SC_EV_CANCEL ||
             e->kind == TL_EV_STUCK))
            end = e;
    }
    if (end == NULL || end->kind == TL_EV_STUCK) {
        snprintf(buf, size, "never returns: stuck, woken before it waited");
    } else if (end->kind == SC_EV_CANCEL) {
        snprintf(buf, size, "never returns: its thread is cancelled");
    } else if (end->code < 0) {
        snprintf(buf, size, "%s", tl_code_name(end->code));
    } else {
        snprintf(buf, size, "flight %lu's %s %s, %s", end->flight,
                 end->code == 0 ? "value" : "error", run->rows[row].value,
                 end->fresh ? "ran fn" : "shared");
    }
}

static void answers(const struct tl_run *run, FILE *out)
{
    fprintf(out, "\nAnswers (read from the run):\n");
    fprintf(out, "1. %d\n", tl_count(run, run->nevents).flights);
    fprintf(out, "2.\n");
    flights(run, out);
    fprintf(out, "3.\n");
    for (int r = 0; r < run->nrows; r++) {
        char g[TL_LABEL], what[64];
        outcome(run, r, what, sizeof what);
        fprintf(out, "   %-4s at tick %d: %s\n", thread_of(run, r, g, sizeof g),
                tl_end_tick(run, r), what);
    }
}

void tl_print_quiz(const struct tl_run *run, bool with_answers, FILE *out)
{
    /* no title: some titles tell the outcome */
    fprintf(out, "scenario %d, seed %u: quiz\n\n", run->scenario, run->seed);
    setup(run, out);
    fprintf(out, "\nQuestions:\n");
    for (int q = 1; q <= tl_quiz_questions(); q++)
        fprintf(out, "%d. %s\n", q, tl_quiz_question(q));
    if (!with_answers) {
        fprintf(out, "\nPredict, then check: add -c for the answers.\n");
        return;
    }
    answers(run, out);
    fputc('\n', out);
    tl_print_plain(run, out);
}

void tl_quiz_caption(const struct tl_run *run, char *buf, size_t size)
{
    int n = snprintf(buf, size,
                     "Quiz: predict, then step with n. How many flights (runs "
                     "of fn)? Who leads each? What does each thread return, "
                     "and at which tick? Calls (thread key@tick fn-ticks):");
    for (int r = 0; r < run->nrows && n >= 0 && (size_t)n < size; r++) {
        const struct tl_actor *a = &run->rows[r].as;
        char g[TL_LABEL], deadline[32] = "";
        if (a->patience > 0) /* a follower gives up after these ticks */
            snprintf(deadline, sizeof deadline, " (waits %d at most)",
                     a->patience);
        n += snprintf(buf + n, size - (size_t)n, "%s %s %s@%d %d%s%s",
                      r > 0 ? "," : "", thread_of(run, r, g, sizeof g), a->key,
                      a->at, a->runs, a->err != 0 ? " fails" : "", deadline);
    }
    const struct tl_scenario *sc = tl_scenario(run->scenario);
    for (int r = 0; r < run->nrows && n >= 0 && (size_t)n < size; r++)
        if (run->rows[r].as.killed_at > 0) {
            char g[TL_LABEL];
            n += snprintf(
                buf + n, size - (size_t)n, ". main cancels %s at tick %d",
                thread_of(run, r, g, sizeof g), run->rows[r].as.killed_at);
        }
    if (sc->forget_at > 0 && n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n,
                      ". main calls sc_forget(%s) at tick %d", sc->forget_key,
                      sc->forget_at);
    if (n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, ". Handoff %s.",
                 sc->handoff ? "on" : "off");
}
