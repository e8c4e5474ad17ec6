/*
 * test_handoff.c - the handoff option of sc_options: when a leader's fn
 * fails, a waiting follower runs fn itself instead of sharing the
 * failure. Hand-off of an asynchronous flight: test_async.c; of a
 * cancelled leader's flight: test_cancel.c.
 *
 * A flight here is held inside fn until the test releases it (testutil's
 * tu_held); followers are known to be waiting through testutil's count of
 * parked threads.
 */
#define _POSIX_C_SOURCE 200809L

#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A failed leader: without the handoff option every follower shares its
 * failure (as in Go); with it, one follower runs fn itself and the other
 * shares that run's result. */
static void failed_leader(bool handoff)
{
    sc_options o = {.handoff = handoff};
    struct tu_held h;
    tu_held_init(&h, sc_new_with(&o), "k");
    h.err = EIO;
    h.err_runs = 1;
    struct tu_caller c[3];
    tu_held_start(&h, c, 2);
    tu_held_release(&h, 2); /* run 1 fails; a run 2 may follow */
    tu_callers_join(c, 3, "a caller");
    CU_ASSERT_EQUAL(c[0].rc, EIO);
    CU_ASSERT_TRUE(c[0].r.fresh);
    int fresh = 0;
    for (int i = 1; i <= 2; i++) {
        fresh += c[i].r.fresh;
        CU_ASSERT_EQUAL(c[i].rc, handoff ? 0 : EIO);
        CU_ASSERT_PTR_EQUAL(c[i].r.val, handoff ? (void *)2 : (void *)1);
    }
    CU_ASSERT_EQUAL(fresh, handoff ? 1 : 0); /* the follower that took over */
    CU_ASSERT_EQUAL(h.runs.count, handoff ? 2 : 1);
    struct sc_stats s;
    sc_stats(h.g, &s);
    CU_ASSERT_EQUAL(s.flights, handoff ? 2 : 1);
    CU_ASSERT_EQUAL(s.in_flight, 0);
    tu_free_group(h.g);
    tu_held_destroy(&h);
}

static void failure_is_shared_by_default(void)
{
    failed_leader(false);
}

static void handoff_after_failure(void)
{
    failed_leader(true);
}

/* A leader that fails alone has nobody to hand off to: the flight ends. */
static void handoff_needs_a_follower(void)
{
    sc_options o = {.handoff = true};
    struct tu_held h;
    tu_held_init(&h, sc_new_with(&o), "k");
    h.err = EIO;
    h.err_runs = 1;
    tu_held_release(&h, 2);
    struct tu_caller first = {.h = &h}, second = {.h = &h};
    tu_call(&first);
    tu_call(&second);
    CU_ASSERT_EQUAL(first.rc, EIO);
    CU_ASSERT_EQUAL(second.rc, 0); /* a new flight, not a hand-off */
    CU_ASSERT_TRUE(second.r.fresh);
    tu_free_group(h.g);
    tu_held_destroy(&h);
}

/* A leader that fails with handoff on, then calls again at once, before
 * its follower has taken the lock back: the flight is its to take, not a
 * -EDEADLK. While the hand-off waits, no fn runs (in_flight 0), and a
 * caller whose deadline has passed leaves with -ETIMEDOUT. */
struct again {
    struct tu_gate first_done, go;
    struct tu_caller first, second;
};

static void *call_twice(void *arg)
{
    struct again *a = arg;
    tu_call(&a->first);
    tu_gate_raise(&a->first_done, 1);
    tu_gate_wait(&a->go, 1);
    tu_call(&a->second);
    return NULL;
}

static void failed_leader_calls_again(void)
{
    sc_options o = {.handoff = true};
    struct tu_held h;
    tu_held_init(&h, sc_new_with(&o), "k");
    h.err = EIO;
    h.err_runs = 1;
    struct again a = {.first = {.h = &h}, .second = {.h = &h}};
    tu_gate_init(&a.first_done);
    tu_gate_init(&a.go);
    struct tu_thread tl;
    tu_start(&tl, call_twice, &a);
    tu_gate_expect(&h.runs, 1, "no leader");
    struct tu_caller follow = {.h = &h};
    tu_callers_park(&follow, 1);
    tu_hold_wakers();
    tu_held_release(&h, 1); /* run 1 fails: hand-off to the follower */
    tu_gate_expect(&a.first_done, 1, "the leader's first call never returned");
    tu_wakers_expect(1, "the follower never woke");
    struct sc_stats s;
    sc_stats(h.g, &s);
    CU_ASSERT_EQUAL(s.in_flight, 0); /* handed off, not running */
    struct timespec past = tu_in_ms(-1000);
    struct tu_caller late = {.h = &h, .deadline = &past};
    tu_call(&late);
    CU_ASSERT_EQUAL(late.rc, -ETIMEDOUT);
    tu_gate_raise(&a.go, 1); /* the leader asks again: it takes the flight */
    tu_gate_expect(&h.runs, 2, "nobody took the flight over");
    tu_held_release(&h, 1);
    tu_release_wakers();
    tu_join(&tl, "the leader");
    tu_callers_join(&follow, 1, "the follower");
    CU_ASSERT_EQUAL(a.first.rc, EIO);
    CU_ASSERT_EQUAL(a.second.rc, 0);
    CU_ASSERT_TRUE(a.second.r.fresh);
    CU_ASSERT_PTR_EQUAL(a.second.r.val, (void *)2);
    CU_ASSERT_EQUAL(follow.rc, 0);
    CU_ASSERT_FALSE(follow.r.fresh);
    CU_ASSERT_PTR_EQUAL(follow.r.val, (void *)2);
    tu_free_group(h.g);
    tu_gate_destroy(&a.first_done);
    tu_gate_destroy(&a.go);
    tu_held_destroy(&h);
}

/*
 * BUG 1: sc_stats().shared after a hand-off. A leader's fn fails while two
 * followers are asleep in its flight; one takes the flight over and runs
 * fn, which succeeds, and the other shares that run. Each caller counts
 * once: the two runs as flights, the follower that shared as shared. The
 * engine today counts a follower as shared when the flight ends while it
 * sleeps, or when it reads a result it was not counted for; a follower
 * woken for the hand-off that finds the flight already ended is neither,
 * and shared stays 0.
 *
 * late: the sharer, just woken for the hand-off, is held there until the
 * taker's call has returned, so the flight surely ends while it is awake;
 * otherwise the two followers race as the scheduler has them.
 */
static void bug1_the_sharer_of_a_taken_over_run_counts(bool hooks, bool late)
{
    sc_options o = {.handoff = true};
    if (hooks) {
        o.share = tu_copy_string;
        o.drop = tu_free_string;
    }
    struct tu_held h;
    tu_held_init(&h, sc_new_with(&o), "k");
    h.err = EIO;
    h.err_runs = 1;
    h.make = hooks ? tu_run_string : NULL;
    struct tu_caller c[3];
    tu_held_start(&h, c, 2); /* the leader in fn, both followers asleep */
    if (late)
        tu_hold_wakers();
    tu_held_release(&h, 2); /* run 1 fails; the taker's run 2 succeeds */
    if (late) {
        tu_wakers_expect(2, "the followers never woke for the hand-off");
        tu_release_first_waker(); /* it takes the flight over */
        tu_gate_expect(&h.returned, 2,
                       "the leader or the taker never returned");
        tu_release_wakers();
    }
    tu_callers_join(c, 3, "a caller");

    CU_ASSERT_EQUAL(c[0].rc, EIO);
    int fresh = 0;
    for (int i = 1; i <= 2; i++) {
        CU_ASSERT_EQUAL(c[i].rc, 0);
        fresh += c[i].r.fresh;
        if (hooks) { /* a CUnit assertion is a block of its own */
            CU_ASSERT_STRING_EQUAL(c[i].r.val, "run 2");
        } else {
            CU_ASSERT_PTR_EQUAL(c[i].r.val, (void *)2);
        }
    }
    CU_ASSERT_EQUAL(fresh, 1); /* one took over; the other shared its run */
    struct sc_stats s;
    CU_ASSERT_EQUAL_FATAL(sc_stats(h.g, &s), 0);
    printf("(flights %llu, callers %llu, shared %llu, timed out %llu) ",
           s.flights, s.callers, s.shared, s.timed_out);
    CU_ASSERT_EQUAL(s.flights, 2);
    CU_ASSERT_EQUAL(s.callers, 3);
    CU_ASSERT_EQUAL(s.shared, 1);
    CU_ASSERT_EQUAL(s.timed_out, 0);
    CU_ASSERT_EQUAL(s.cancelled, 0);
    CU_ASSERT_EQUAL(s.in_flight, 0);
    if (hooks)
        for (int i = 0; i <= 2; i++)
            free(c[i].r.val);
    tu_free_group(h.g);
    tu_held_destroy(&h);
}

static void bug1_sharer_counts(void)
{
    bug1_the_sharer_of_a_taken_over_run_counts(false, false);
}

static void bug1_sharer_counts_with_hooks(void)
{
    bug1_the_sharer_of_a_taken_over_run_counts(true, false);
}

static void bug1_late_sharer_counts(void)
{
    bug1_the_sharer_of_a_taken_over_run_counts(false, true);
}

static void bug1_late_sharer_counts_with_hooks(void)
{
    bug1_the_sharer_of_a_taken_over_run_counts(true, true);
}

int main(void)
{
    static const struct tu_test tests[] = {
        {"a failed leader's followers share its failure by default",
         failure_is_shared_by_default},
        {"handoff: after a failure, one follower runs fn itself",
         handoff_after_failure},
        {"handoff: a lone failed leader just ends its flight",
         handoff_needs_a_follower},
        {"handoff: the failed leader may call again at once",
         failed_leader_calls_again},
        {"BUG 1 (stats after a hand-off): the sharer counts as shared",
         bug1_sharer_counts},
        {"BUG 1 (stats after a hand-off): the same, with value hooks",
         bug1_sharer_counts_with_hooks},
        {"BUG 1 (stats after a hand-off): the sharer wakes late",
         bug1_late_sharer_counts},
        {"BUG 1 (stats after a hand-off): it wakes late, with value hooks",
         bug1_late_sharer_counts_with_hooks},
        {NULL, NULL},
    };
    return tu_run_suite("hand-off (sc_new_with)", tests);
}
