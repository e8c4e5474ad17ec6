/*
 * test_async.c - asynchronous calls (sc_do_async) and sc_drain: who runs
 * fn, who calls the done callbacks back and on which thread, with value
 * hooks and with hand-off, and how the kit's threads end.
 *
 * A flight here is held inside fn until the test releases it (testutil's
 * tu_held); followers are known to be waiting through testutil's count of
 * parked threads.
 */
#define _POSIX_C_SOURCE 200809L

#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* What an asynchronous call was answered, and on which thread. */
struct answer {
    struct tu_gate *answered; /* raised once per callback */
    int rc, calls;
    bool got; /* a result came with it */
    sc_result r;
    pthread_t thread;
};

static void on_done(void *arg, int rc, const sc_result *r)
{
    struct answer *a = arg;
    a->rc = rc;
    a->calls++;
    a->got = r != NULL;
    if (r != NULL)
        a->r = *r;
    a->thread = pthread_self();
    tu_gate_raise(a->answered, 1);
}

/* An asynchronous call starts a flight on a kit thread; a synchronous and
 * another asynchronous caller join it; every callback comes once, from the
 * kit thread; sc_drain joins it, and only then is the group free. */
static void async_starts_a_flight(void)
{
    struct tu_held h;
    tu_held_init(&h, sc_new_with(NULL), "k");
    struct tu_gate answered;
    tu_gate_init(&answered);
    struct answer a0 = {.answered = &answered}, a1 = {.answered = &answered};
    CU_ASSERT_EQUAL_FATAL(sc_do_async(h.g, "k", tu_held_fn, &h, on_done, &a0),
                          0);
    tu_gate_expect(&h.runs, 1, "the kit thread never ran fn");
    struct tu_caller sync = {.h = &h};
    tu_callers_park(&sync, 1);
    CU_ASSERT_EQUAL(sc_do_async(h.g, "k", tu_held_fn, &h, on_done, &a1), 0);
    CU_ASSERT_EQUAL(sc_free(h.g), -EBUSY);
    tu_held_release(&h, 1);
    tu_callers_join(&sync, 1, "the synchronous follower");
    tu_gate_expect(&answered, 2, "a callback never came");
    CU_ASSERT_EQUAL(sc_drain(h.g), 0);
    CU_ASSERT_EQUAL(h.runs.count, 1);
    CU_ASSERT_EQUAL(sync.rc, 0);
    CU_ASSERT_PTR_EQUAL(sync.r.val, (void *)1);
    CU_ASSERT_FALSE(sync.r.fresh);
    CU_ASSERT_TRUE(a0.got && a0.rc == 0 && a0.calls == 1);
    CU_ASSERT_TRUE(a0.r.fresh && a0.r.shared);
    CU_ASSERT_PTR_EQUAL(a0.r.val, (void *)1);
    CU_ASSERT_TRUE(a1.got && a1.rc == 0 && a1.calls == 1);
    CU_ASSERT_FALSE(a1.r.fresh);
    CU_ASSERT_PTR_EQUAL(a1.r.val, (void *)1);
    CU_ASSERT_TRUE(pthread_equal(a0.thread, a1.thread));
    CU_ASSERT_FALSE(pthread_equal(a0.thread, pthread_self()));
    CU_ASSERT_FALSE(pthread_equal(a0.thread, sync.thread.id));
    tu_free_group(h.g);
    tu_gate_destroy(&answered);
    tu_held_destroy(&h);
}

/* An asynchronous call joins a synchronous leader's flight; its callback
 * runs on that leader's thread. */
static void async_joins_a_sync_leader(void)
{
    struct tu_held h;
    tu_held_init(&h, sc_new_with(NULL), "k");
    struct tu_gate answered;
    tu_gate_init(&answered);
    struct answer a = {.answered = &answered};
    struct tu_caller c[1];
    tu_held_start(&h, c, 0);
    CU_ASSERT_EQUAL(sc_do_async(h.g, "k", tu_held_fn, &h, on_done, &a), 0);
    tu_held_release(&h, 1);
    tu_gate_expect(&answered, 1, "the callback never came");
    tu_callers_join(c, 1, "a caller");
    CU_ASSERT_TRUE(a.got && a.rc == 0);
    CU_ASSERT_FALSE(a.r.fresh);
    CU_ASSERT_TRUE(a.r.shared);
    CU_ASSERT_TRUE(c[0].r.shared);
    CU_ASSERT_TRUE(pthread_equal(a.thread, c[0].thread.id));
    CU_ASSERT_EQUAL(sc_drain(h.g), 0);
    tu_free_group(h.g);
    tu_gate_destroy(&answered);
    tu_held_destroy(&h);
}

/* A kit thread that exits inside fn: every waiter is answered -ECANCELED,
 * with no result, and the thread is still joined. */
static void async_leader_exits(void)
{
    struct tu_held h;
    tu_held_init(&h, sc_new_with(NULL), "k");
    h.exit_run = 1;
    struct tu_gate answered;
    tu_gate_init(&answered);
    struct answer a0 = {.answered = &answered}, a1 = {.answered = &answered};
    CU_ASSERT_EQUAL(sc_do_async(h.g, "k", tu_held_fn, &h, on_done, &a0), 0);
    tu_gate_expect(&h.runs, 1, "the kit thread never ran fn");
    CU_ASSERT_EQUAL(sc_do_async(h.g, "k", tu_held_fn, &h, on_done, &a1), 0);
    tu_held_release(&h, 1);
    tu_gate_expect(&answered, 2, "a callback never came");
    CU_ASSERT_EQUAL(sc_drain(h.g), 0);
    CU_ASSERT_TRUE(a0.rc == -ECANCELED && !a0.got);
    CU_ASSERT_TRUE(a1.rc == -ECANCELED && !a1.got);
    struct sc_stats s;
    sc_stats(h.g, &s);
    CU_ASSERT_EQUAL(s.cancelled, 2); /* the two callers, not the kit thread */
    tu_free_group(h.g);
    tu_gate_destroy(&answered);
    tu_held_destroy(&h);
}

/* With a copying share, each callback owns its copy (and frees it). */
static void on_done_free(void *arg, int rc, const sc_result *r)
{
    struct answer *a = arg;
    a->rc = rc;
    a->got = r != NULL && strcmp(r->val, "run 1") == 0;
    if (r != NULL)
        free(r->val);
    tu_gate_raise(a->answered, 1);
}

static void async_with_hooks(void)
{
    sc_options o = {.share = tu_copy_string, .drop = tu_free_string};
    struct tu_held h;
    tu_held_init(&h, sc_new_with(&o), "k");
    h.make = tu_run_string;
    struct tu_gate answered;
    tu_gate_init(&answered);
    struct answer a0 = {.answered = &answered}, a1 = {.answered = &answered};
    CU_ASSERT_EQUAL(sc_do_async(h.g, "k", tu_held_fn, &h, on_done_free, &a0),
                    0);
    tu_gate_expect(&h.runs, 1, "the kit thread never ran fn");
    CU_ASSERT_EQUAL(sc_do_async(h.g, "k", tu_held_fn, &h, on_done_free, &a1),
                    0);
    tu_held_release(&h, 1);
    tu_gate_expect(&answered, 2, "a callback never came");
    CU_ASSERT_EQUAL(sc_drain(h.g), 0);
    CU_ASSERT_TRUE(a0.got && a1.got);
    tu_free_group(h.g);
    tu_gate_destroy(&answered);
    tu_held_destroy(&h);
}

/* An asynchronous leader whose run fails hands the flight to a waiting
 * follower; its own caller is answered with that failed run, not the next.
 * If the follower then exits in fn, it is counted as cancelled. */
static void async_handoff(int exit_run)
{
    sc_options o = {.handoff = true};
    struct tu_held h;
    tu_held_init(&h, sc_new_with(&o), "k");
    h.err = EIO;
    h.err_runs = 1;
    h.exit_run = exit_run;
    struct tu_gate answered;
    tu_gate_init(&answered);
    struct answer a = {.answered = &answered};
    CU_ASSERT_EQUAL(sc_do_async(h.g, "k", tu_held_fn, &h, on_done, &a), 0);
    tu_gate_expect(&h.runs, 1, "the kit thread never ran fn");
    struct tu_caller follow = {.h = &h};
    tu_callers_park(&follow, 1);
    tu_held_release(&h, 2);
    tu_gate_expect(&answered, 1, "the asynchronous caller was not answered");
    tu_callers_join(&follow, 1, "the follower that took over");
    CU_ASSERT_EQUAL(sc_drain(h.g), 0);
    CU_ASSERT_EQUAL(a.rc, EIO);
    CU_ASSERT_TRUE(a.got && a.r.fresh);
    CU_ASSERT_PTR_EQUAL(a.r.val, (void *)1);
    struct sc_stats s;
    sc_stats(h.g, &s);
    if (exit_run == 2) {
        CU_ASSERT_EQUAL(s.cancelled, 1); /* the follower that took over */
    } else {
        CU_ASSERT_EQUAL(follow.rc, 0);
        CU_ASSERT_TRUE(follow.r.fresh);
        CU_ASSERT_PTR_EQUAL(follow.r.val, (void *)2);
        CU_ASSERT_EQUAL(s.cancelled, 0);
    }
    CU_ASSERT_EQUAL(s.flights, 2);
    tu_free_group(h.g);
    tu_gate_destroy(&answered);
    tu_held_destroy(&h);
}

static void async_leader_fails_with_handoff(void)
{
    async_handoff(0);
}

static void async_taker_exits(void)
{
    async_handoff(2);
}

static void async_edges(void)
{
    sc_group *g = sc_new_with(NULL), *plain = sc_new();
    struct tu_gate answered;
    tu_gate_init(&answered);
    struct answer a = {.answered = &answered};
    CU_ASSERT_EQUAL(sc_do_async(g, "k", tu_held_fn, NULL, NULL, NULL), -EINVAL);
    CU_ASSERT_EQUAL(sc_do_async(g, NULL, tu_held_fn, NULL, on_done, &a),
                    -EINVAL);
    CU_ASSERT_EQUAL(sc_do_async(plain, "k", tu_held_fn, NULL, on_done, &a),
                    -ENOTSUP);
    CU_ASSERT_EQUAL(sc_drain(plain), -ENOTSUP);
    CU_ASSERT_EQUAL(sc_drain(NULL), -EINVAL);
    CU_ASSERT_EQUAL(sc_drain(g), 0); /* nothing to wait for */
    CU_ASSERT_EQUAL(a.calls, 0);
    tu_free_group(g);
    tu_free_group(plain);
    tu_gate_destroy(&answered);
}

int main(void)
{
    static const struct tu_test tests[] = {
        {"async: starts a flight; sync and async callers join",
         async_starts_a_flight},
        {"async: joins a sync leader, answered on its thread",
         async_joins_a_sync_leader},
        {"async: a kit thread exiting in fn answers -ECANCELED",
         async_leader_exits},
        {"async: with hooks, each callback owns its copy", async_with_hooks},
        {"async: -EINVAL, -ENOTSUP, an idle drain", async_edges},
        {"handoff: an async leader's caller keeps its own failure",
         async_leader_fails_with_handoff},
        {"handoff: a follower taking over an async flight then exiting",
         async_taker_exits},
        {NULL, NULL},
    };
    return tu_run_suite("asynchronous calls (sc_do_async, sc_drain)", tests);
}
