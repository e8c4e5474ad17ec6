/*
 * scenarios.c - what the timeline can show, one scenario per key 1-9.
 *
 * Callers that call at the same tick must share a key: the driver lets the
 * first of them (the seed picks which) in alone, and the others together,
 * so which one leads is the seed's choice and not the scheduler's.
 */
#include "timeline.h"

#include <errno.h>

static const struct tl_scenario scenarios[] = {
    {
        .title = "five threads, one key",
        .caption = "The seed article's demo. Five threads ask for key once at "
                   "the same tick. One leads and runs fn, which takes 10 "
                   "ticks; the other four join its flight and wait. All "
                   "five return the same value, and fn ran once. The seed "
                   "picks the leader.",
        .ticks = 12,
        .nactors = 5,
        .actors = {{"once", 0, 10},
                   {"once", 0, 10},
                   {"once", 0, 10},
                   {"once", 0, 10},
                   {"once", 0, 10}},
    },
    {
        .title = "mixed keys: e a e a b c b a c d b c d",
        .caption = "Thirteen calls, one a tick, for keys e a e a b c b a c "
                   "d b c d. A call shares a flight only while one for its "
                   "key runs. Each fn takes 2 to 5 ticks, chosen by the "
                   "seed: predict the flights, then count them.",
        .ticks = 20,
        .seeded = true,
        .nactors = 13,
        .actors = {{"e", 0, 2},
                   {"a", 1, 2},
                   {"e", 2, 2},
                   {"a", 3, 2},
                   {"b", 4, 2},
                   {"c", 5, 2},
                   {"b", 6, 2},
                   {"a", 7, 2},
                   {"c", 8, 2},
                   {"d", 9, 2},
                   {"b", 10, 2},
                   {"c", 11, 2},
                   {"d", 12, 2}},
    },
    {
        .title = "staggered arrivals: no caching",
        .caption = "G1 leads a flight of k that lasts 6 ticks, and G2, "
                   "arriving during it, shares it. G3 arrives after it has "
                   "ended: nothing is cached, so G3 leads a second flight, "
                   "and G4 shares that one.",
        .ticks = 16,
        .nactors = 4,
        .actors = {{"k", 0, 6}, {"k", 3, 6}, {"k", 8, 6}, {"k", 10, 6}},
    },
    {
        .title = "fn fails: everyone shares the error",
        .caption = "The leader's fn fails with EIO after 6 ticks. Its "
                   "followers do not retry: every caller of the flight "
                   "returns the same error, as in go-zero. (Scenario 9 "
                   "shows the handoff option.)",
        .ticks = 8,
        .nactors = 4,
        .actors = {{"k", 0, 6, EIO},
                   {"k", 1, 6, EIO},
                   {"k", 2, 6, EIO},
                   {"k", 3, 6, EIO}},
    },
    {
        .title = "a follower's deadline passes",
        .caption = "G3 waits at most 4 ticks: sc_do_until with a deadline, "
                   "like nginx's proxy_cache_lock_timeout. At tick 6 it "
                   "gives up with -ETIMEDOUT. The flight goes on, and G1 and "
                   "G2 get its value at tick 10.",
        .ticks = 12,
        .nactors = 3,
        .actors = {{"k", 0, 10}, {"k", 1, 10}, {"k", 2, 10, 0, 4}},
    },
    {
        .title = "the leader is cancelled",
        .caption = "At tick 5 main cancels G1's thread inside fn. A cleanup "
                   "handler ends the flight, so its followers wake with "
                   "-ECANCELED instead of waiting forever, and the key is "
                   "free again: G4 leads a new flight at tick 7.",
        .ticks = 13,
        .nactors = 4,
        .actors =
            {{"k", 0, 12, 0, 0, 5}, {"k", 1, 12}, {"k", 2, 12}, {"k", 7, 4}},
    },
    {
        .title = "sc_forget during a flight",
        .caption = "At tick 4 main calls sc_forget(a), x/sync's Forget: "
                   "flight 1 leaves the map but runs on for G1 and G2. G3 "
                   "starts flight 2 at tick 5, and G4 joins that one. Two "
                   "flights of one key overlap; neither end disturbs the "
                   "other.",
        .ticks = 14,
        .forget_at = 4,
        .forget_key = "a",
        .nactors = 4,
        .actors = {{"a", 0, 10}, {"a", 2, 10}, {"a", 5, 7}, {"a", 7, 7}},
    },
    {
        .title = "broken: a wait without a predicate",
        .caption = "The bug zoo's wait_no_predicate (src/zoo.h), re-enacted "
                   "by the demo: a follower unlocks and locks again before "
                   "it waits, and never checks done. G1's wake-up at tick 3 "
                   "finds nobody waiting; G2 and G3 then wait for it "
                   "forever. The library loops on done (go:39).",
        .ticks = 10,
        .nactors = 3,
        .actors = {{"k", 0, 3, 0, 0, 0, 0},
                   {"k", 1, 3, 0, 0, 0, 5},
                   {"k", 2, 3, 0, 0, 0, 6}},
    },
    {
        .title = "the handoff option",
        .caption = "With the handoff option a failed leader keeps its error "
                   "to itself: G1 returns EIO at tick 4, and G2, which was "
                   "waiting, runs its own fn and leads the flight on; G3 "
                   "joins G2's run. Without the option (scenario 4) all "
                   "would get EIO.",
        .ticks = 10,
        .handoff = true,
        .nactors = 3,
        .actors = {{"k", 0, 4, EIO}, {"k", 1, 4}, {"k", 6, 4}},
    },
};

int tl_scenarios(void)
{
    return (int)(sizeof scenarios / sizeof scenarios[0]);
}

const struct tl_scenario *tl_scenario(int n)
{
    return n >= 1 && n <= tl_scenarios() ? &scenarios[n - 1] : NULL;
}

const char *tl_scenario_title(int n)
{
    const struct tl_scenario *s = tl_scenario(n);
    return s != NULL ? s->title : NULL;
}
