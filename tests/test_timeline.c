/*
 * test_timeline.c - the timeline demo's records obey singleflight's rules.
 *
 * Runs every scenario with several seeds through the demo's driver (real
 * threads, the real library) and checks the events it recorded: one
 * leader per flight, fn once per leader, every follower woken after its
 * flight ended, one value per flight, counters that add up and agree with
 * sc_stats, and the same drawing for the same seed. Then what each
 * scenario is there to show.
 */
#define _POSIX_C_SOURCE 200809L

#include "testutil.h"
#include "timeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { SEEDS = 4 };

static struct tl_run run; /* large: not on the stack */

static void run_ok(int n, unsigned seed)
{
    int rc = tl_run(n, seed, &run);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
}

/* How many events of kind (any row, any flight when flight is 0). */
static int count(int kind, unsigned long flight)
{
    int k = 0;
    for (int i = 0; i < run.nevents; i++)
        k += run.events[i].kind == kind &&
             (flight == 0 || run.events[i].flight == flight);
    return k;
}

static const struct tl_event *last_of(int row)
{
    const struct tl_event *e = NULL;
    for (int i = 0; i < run.nevents; i++)
        if (run.events[i].row == row)
            e = &run.events[i];
    return e;
}

static bool broken(void)
{
    return count(TL_EV_WAIT, 0) > 0;
}

/* Rules every run must obey. */
static void check_rules(void)
{
    unsigned long flights = 0;
    for (int i = 0; i < run.nevents; i++)
        if (run.events[i].flight > flights)
            flights = run.events[i].flight;
    for (unsigned long f = 1; f <= flights; f++) {
        int leads = count(SC_EV_LEAD, f);
        if (leads == 0)
            continue; /* a number no flight took */
        CU_ASSERT_EQUAL(leads, 1 + count(SC_EV_HANDOFF, f));
        CU_ASSERT_EQUAL(count(SC_EV_FN_START, f), leads);
        CU_ASSERT_EQUAL(count(SC_EV_DONE, f), 1); /* every flight ends */
    }
    for (int i = 0; i < run.nevents; i++) {
        const struct tl_event *e = &run.events[i];
        if (i > 0 && e->kind != TL_EV_STUCK)
            CU_ASSERT(e->tick >= run.events[i - 1].tick);
        if (e->kind != SC_EV_WAKE)
            continue;
        bool ended = false; /* the flight's DONE or HANDOFF came first */
        for (int j = 0; j < i; j++)
            ended |= run.events[j].flight == e->flight &&
                     (run.events[j].kind == SC_EV_DONE ||
                      run.events[j].kind == SC_EV_HANDOFF);
        CU_ASSERT_TRUE(ended);
    }
    /* every caller enters first and ends once; one value per flight */
    int fresh = 0, shared = 0, failed = 0, ends = 0;
    for (int r = 0; r < run.nrows; r++) {
        const struct tl_event *first = NULL, *ret = NULL;
        for (int i = 0; i < run.nevents; i++) {
            const struct tl_event *e = &run.events[i];
            if (e->row != r)
                continue;
            first = first != NULL ? first : e;
            ends += e->kind == SC_EV_RETURN || e->kind == SC_EV_CANCEL ||
                    e->kind == TL_EV_STUCK;
            ret = e->kind == SC_EV_RETURN ? e : ret;
        }
        CU_ASSERT_FATAL(first != NULL && first->kind == SC_EV_ENTER);
        if (ret == NULL)
            continue;
        fresh += ret->code >= 0 && ret->fresh;
        shared += ret->code >= 0 && !ret->fresh;
        failed += ret->code < 0;
        for (int o = 0; o < run.nrows; o++) {
            const struct tl_event *other = last_of(o);
            if (ret->code == 0 && other->kind == SC_EV_RETURN &&
                other->code == 0 && other->flight == ret->flight)
                CU_ASSERT_STRING_EQUAL(run.rows[o].value, run.rows[r].value);
        }
    }
    CU_ASSERT_EQUAL(ends, run.nrows);
    struct tl_counts n = tl_count(&run, run.nevents);
    CU_ASSERT_EQUAL(n.callers, run.nrows);
    CU_ASSERT_EQUAL(n.suppressed, shared);
    CU_ASSERT_EQUAL(fresh + shared + failed + count(SC_EV_CANCEL, 0) +
                        count(TL_EV_STUCK, 0),
                    n.callers);
    if (!broken()) { /* the library's own counters agree */
        CU_ASSERT_EQUAL(run.stats.flights, (unsigned long long)n.flights);
        CU_ASSERT_EQUAL(run.stats.callers, (unsigned long long)n.callers);
        CU_ASSERT_EQUAL(run.stats.shared, (unsigned long long)n.suppressed);
    }
}

static char *drawing(void)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    tl_print_plain(&run, f);
    fclose(f);
    return text;
}

static void every_scenario_obeys_the_rules(void)
{
    for (int n = 1; n <= tl_scenarios(); n++)
        for (unsigned seed = 1; seed <= SEEDS; seed++) {
            run_ok(n, seed);
            check_rules();
        }
}

static void a_seed_always_draws_the_same(void)
{
    for (int n = 1; n <= tl_scenarios(); n++) {
        run_ok(n, 7);
        char *a = drawing();
        run_ok(n, 7);
        char *b = drawing();
        CU_ASSERT_STRING_EQUAL(a, b);
        free(a);
        free(b);
    }
}

/* The row that led flight 1 of scenario 1, for a seed. */
static int leader_of_one(unsigned seed)
{
    run_ok(1, seed);
    for (int i = 0; i < run.nevents; i++)
        if (run.events[i].kind == SC_EV_LEAD)
            return run.events[i].row;
    return -1;
}

static void five_threads_share_one_run(void)
{
    bool led[TL_ROWS_MAX] = {false};
    int leaders = 0;
    for (unsigned seed = 1; seed <= 16; seed++) {
        int r = leader_of_one(seed);
        CU_ASSERT_FATAL(r >= 0);
        leaders += !led[r];
        led[r] = true;
        CU_ASSERT_EQUAL(count(SC_EV_FN_START, 0), 1);
        CU_ASSERT_EQUAL(tl_count(&run, run.nevents).suppressed, 4);
        CU_ASSERT_EQUAL(count(SC_EV_JOIN, 0), 4);
    }
    CU_ASSERT(leaders > 1); /* the seed, not the scheduler, picks */
}

static void late_callers_start_anew(void)
{
    run_ok(3, 1);
    CU_ASSERT_EQUAL(count(SC_EV_LEAD, 0), 2); /* nothing was cached */
    CU_ASSERT_STRING_EQUAL(run.rows[0].value, run.rows[1].value);
    CU_ASSERT_STRING_EQUAL(run.rows[2].value, run.rows[3].value);
    CU_ASSERT_STRING_NOT_EQUAL(run.rows[0].value, run.rows[2].value);
}

static void an_error_is_shared(void)
{
    run_ok(4, 1);
    for (int r = 0; r < run.nrows; r++)
        CU_ASSERT_EQUAL(last_of(r)->code, EIO);
    CU_ASSERT_EQUAL(count(SC_EV_FN_START, 0), 1);
}

static void a_deadline_passes_for_one(void)
{
    run_ok(5, 1);
    CU_ASSERT_EQUAL(count(SC_EV_TIMEOUT, 0), 1);
    CU_ASSERT_EQUAL(last_of(2)->code, -ETIMEDOUT);
    CU_ASSERT_EQUAL(last_of(2)->tick, 6);
    CU_ASSERT_EQUAL(last_of(1)->code, 0);
    CU_ASSERT_EQUAL(last_of(1)->tick, 10);
}

static void a_cancelled_leader_frees_the_key(void)
{
    run_ok(6, 1);
    CU_ASSERT_EQUAL(count(SC_EV_CANCEL, 1), 1);    /* G1, which never returns */
    CU_ASSERT_EQUAL(last_of(0)->kind, SC_EV_DONE); /* told by its cleanup */
    CU_ASSERT_EQUAL(last_of(1)->code, -ECANCELED);
    CU_ASSERT_EQUAL(last_of(2)->code, -ECANCELED);
    CU_ASSERT_EQUAL(last_of(3)->code, 0);
    CU_ASSERT_TRUE(last_of(3)->fresh);
}

static void forget_lets_two_flights_overlap(void)
{
    run_ok(7, 1);
    int second = -1, first_done = -1;
    for (int i = 0; i < run.nevents; i++) {
        if (run.events[i].kind == SC_EV_LEAD && run.events[i].flight == 2)
            second = i;
        if (run.events[i].kind == SC_EV_DONE && run.events[i].flight == 1)
            first_done = i;
    }
    CU_ASSERT(second >= 0 && first_done > second);
    CU_ASSERT_EQUAL(count(SC_EV_DELETE, 1), 1); /* by sc_forget alone */
    CU_ASSERT_EQUAL(last_of(1)->flight, 1UL);
    CU_ASSERT_EQUAL(last_of(3)->flight, 2UL);
}

static void the_broken_wait_is_drawn_stuck(void)
{
    run_ok(8, 1); /* returns: the demo frees the stuck threads */
    CU_ASSERT_EQUAL(count(TL_EV_STUCK, 0), 2);
    CU_ASSERT_EQUAL(count(SC_EV_WAKE, 0), 0);
    CU_ASSERT_EQUAL(tl_cell(&run, 1, run.ticks - 1, run.nevents).state,
                    TL_STUCK);
}

static void a_handoff_gives_followers_a_value(void)
{
    run_ok(9, 1);
    CU_ASSERT_EQUAL(last_of(0)->code, EIO);
    CU_ASSERT_EQUAL(last_of(1)->code, 0);
    CU_ASSERT_TRUE(last_of(1)->fresh);
    CU_ASSERT_EQUAL(last_of(2)->code, 0);
    CU_ASSERT_FALSE(last_of(2)->fresh);
    CU_ASSERT_STRING_EQUAL(run.rows[1].value, run.rows[2].value);
}

/* Whether some step of the narration, 1 .. N, reads text. */
static bool narrated(const char *text)
{
    for (int k = 1; k <= tl_steps(&run); k++) {
        char s[160];
        tl_step_say(&run, k, s, sizeof s);
        if (strstr(s, text) != NULL)
            return true;
    }
    return false;
}

static void the_narration_ends_with_the_last_event(void)
{
    for (int n = 1; n <= tl_scenarios(); n++) {
        run_ok(n, 7);
        char last[160], said[160];
        tl_describe(&run, run.nevents - 1, last, sizeof last);
        tl_step_say(&run, tl_steps(&run), said, sizeof said);
        CU_ASSERT_STRING_EQUAL(said, last);
        for (int r = 0; r < run.nrows; r++) { /* every call's end is told */
            char g[8], end[32];
            snprintf(g, sizeof g, "%.3s", run.rows[r].label);
            g[strcspn(g, " ")] = '\0';
            const struct tl_event *e = last_of(r);
            snprintf(end, sizeof end,
                     e->kind == TL_EV_STUCK    ? " %s is stuck"
                     : e->kind == SC_EV_RETURN ? " %s returns"
                                               : " %s",
                     g);
            CU_ASSERT_TRUE(narrated(end));
        }
    }
    run_ok(3, 7); /* G4's return was lost: it is the last event */
    CU_ASSERT_TRUE(narrated("G4 returns"));
    run_ok(8, 7);
    int stuck = 0;
    for (int k = 1; k <= tl_steps(&run); k++) {
        char s[160];
        tl_step_say(&run, k, s, sizeof s);
        stuck += strstr(s, " is stuck") != NULL;
    }
    CU_ASSERT_EQUAL(stuck, 2);
}

/* The record as (row, kind, flight) triples: its narrated order. */
static void order_of(int *out)
{
    for (int i = 0; i < run.nevents; i++)
        out[i] = (run.events[i].row + 1) * 100000 + run.events[i].kind * 1000 +
                 (int)run.events[i].flight;
}

static void a_seed_always_narrates_the_same(void)
{
    static int first[TL_EVENTS_MAX], again[TL_EVENTS_MAX];
    for (int n = 1; n <= tl_scenarios(); n++) {
        run_ok(n, 7);
        int events = run.nevents;
        order_of(first);
        for (int k = 0; k < 6; k++) {
            run_ok(n, 7);
            CU_ASSERT_EQUAL_FATAL(run.nevents, events);
            order_of(again);
            CU_ASSERT_EQUAL(
                memcmp(first, again, sizeof first[0] * (size_t)events), 0);
        }
    }
}

static void a_hand_off_counts_as_a_run_of_fn(void)
{
    run_ok(9, 7);
    CU_ASSERT_EQUAL(tl_count(&run, run.nevents).flights, 2);
    CU_ASSERT_TRUE(narrated("G2 takes over flight 1 to run fn again: "
                            "flights 2"));
    CU_ASSERT_TRUE(narrated("G2 wakes: flight 1 is handed on"));
    CU_ASSERT_TRUE(narrated("G3 wakes: flight 1 is done"));
}

static char *quiz(bool with_answers)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    tl_print_quiz(&run, with_answers, f);
    fclose(f);
    return text;
}

/* How many flights the picture shows: its L marks. */
static int leaders_drawn(void)
{
    int n = 0;
    for (int r = 0; r < run.nrows; r++)
        for (int t = 0; t < run.ticks; t++)
            n += tl_cell(&run, r, t, run.nevents).glyph == 'L';
    return n;
}

/* The last tick the picture draws for row r. */
static int last_drawn(int r)
{
    int last = -1;
    for (int t = 0; t < run.ticks; t++)
        if (tl_cell(&run, r, t, run.nevents).state != TL_IDLE)
            last = t;
    return last;
}

static void a_quiz_hides_its_answers_until_asked(void)
{
    for (int n = 1; n <= tl_scenarios(); n++) {
        run_ok(n, 7);
        char *q = quiz(false), *a = quiz(true);
        CU_ASSERT_PTR_NOT_NULL(strstr(q, "fn, if it leads"));
        CU_ASSERT_PTR_NOT_NULL(strstr(q, tl_quiz_question(1)));
        CU_ASSERT_PTR_NULL(strstr(q, "Answers"));
        for (int r = 0; r < run.nrows; r++) /* values, not fn's errors */
            if (last_of(r)->kind == SC_EV_RETURN && last_of(r)->code == 0)
                CU_ASSERT_PTR_NULL(strstr(q, run.rows[r].value));
        CU_ASSERT_PTR_NOT_NULL(strstr(a, "Answers"));
        char flights[32];
        snprintf(flights, sizeof flights, "\n1. %d\n", leaders_drawn());
        CU_ASSERT_PTR_NOT_NULL(strstr(a, flights));
        for (int r = 0; r < run.nrows; r++) {
            char g[8], line[48];
            snprintf(g, sizeof g, "%.3s", run.rows[r].label);
            g[strcspn(g, " ")] = '\0';
            int end = last_of(r)->kind == TL_EV_STUCK ? last_of(r)->tick
                                                      : last_drawn(r);
            CU_ASSERT_EQUAL(tl_end_tick(&run, r), end);
            snprintf(line, sizeof line, "   %-4s at tick %d: ", g, end);
            CU_ASSERT_PTR_NOT_NULL(strstr(a, line));
        }
        free(q);
        free(a);
    }
}

static void a_quiz_gives_the_seeds_durations(void)
{
    run_ok(2, 7);
    char *q = quiz(false);
    for (int r = 0; r < run.nrows; r++) {
        char line[64];
        snprintf(line, sizeof line, " tick %-4d %d ticks, then a value",
                 run.rows[r].as.at, run.rows[r].as.runs);
        CU_ASSERT_PTR_NOT_NULL(strstr(q, line));
        /* the picture's leaders run fn for exactly those ticks */
        if (tl_cell(&run, r, run.rows[r].as.at, run.nevents).glyph == 'L')
            CU_ASSERT_EQUAL(last_drawn(r) - run.rows[r].as.at,
                            run.rows[r].as.runs);
    }
    free(q);
}

/* Every event is a step, and so is every tick between two events. */
static void the_clock_moves_tick_by_tick(void)
{
    for (int n = 1; n <= tl_scenarios(); n++) {
        run_ok(n, 7);
        int steps = tl_steps(&run), events = 0;
        struct tl_step was = tl_step(&run, 0);
        CU_ASSERT(was.upto == 0 && was.now == 0);
        for (int k = 1; k <= steps; k++) {
            struct tl_step s = tl_step(&run, k);
            events += s.upto - was.upto;
            CU_ASSERT(s.upto - was.upto == 1 ||
                      (s.upto == was.upto && s.now == was.now + 1));
            if (k < steps)
                CU_ASSERT(s.now - was.now <= 1);
            was = s;
        }
        CU_ASSERT_EQUAL(events, run.nevents);
        CU_ASSERT_EQUAL(was.now, run.ticks - 1); /* the end: all of it */
    }
    run_ok(1, 7); /* fn's ten ticks: nine of them pass with nothing else */
    int waits = 0;
    for (int k = 1; k <= tl_steps(&run); k++) {
        char s[160];
        tl_step_say(&run, k, s, sizeof s);
        waits += strstr(s, "the clock moves on: G") != NULL &&
                 strstr(s, "runs fn; ") != NULL && strstr(s, "G1") != NULL &&
                 strstr(s, " wait") != NULL;
    }
    CU_ASSERT_EQUAL(waits, 9);
}

static void no_such_scenario(void)
{
    CU_ASSERT_EQUAL(tl_run(0, 1, &run), -EINVAL);
    CU_ASSERT_EQUAL(tl_run(tl_scenarios() + 1, 1, &run), -EINVAL);
}

int main(void)
{
    static const struct tu_test tests[] = {
        {"every scenario obeys the rules", every_scenario_obeys_the_rules},
        {"a seed always draws the same", a_seed_always_draws_the_same},
        {"1: five threads share one run", five_threads_share_one_run},
        {"3: late callers start anew", late_callers_start_anew},
        {"4: an error is shared", an_error_is_shared},
        {"5: a deadline passes for one", a_deadline_passes_for_one},
        {"6: a cancelled leader frees the key",
         a_cancelled_leader_frees_the_key},
        {"7: sc_forget lets two flights overlap",
         forget_lets_two_flights_overlap},
        {"8: the broken wait is drawn stuck", the_broken_wait_is_drawn_stuck},
        {"9: a hand-off gives followers a value",
         a_handoff_gives_followers_a_value},
        {"the narration ends with the last event",
         the_narration_ends_with_the_last_event},
        {"a seed always narrates the same", a_seed_always_narrates_the_same},
        {"9: a hand-off counts as a run of fn",
         a_hand_off_counts_as_a_run_of_fn},
        {"a quiz hides its answers until asked",
         a_quiz_hides_its_answers_until_asked},
        {"2: a quiz gives the seed's durations",
         a_quiz_gives_the_seeds_durations},
        {"the clock moves tick by tick", the_clock_moves_tick_by_tick},
        {"no such scenario", no_such_scenario},
        {NULL, NULL},
    };
    return tu_run_suite("timeline", tests);
}
