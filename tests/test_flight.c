/*
 * test_flight.c - the full engine (groups from sc_new_with): value hooks,
 * Forget, the full result, follower deadlines, -EDEADLK, a leader that
 * exits inside fn, statistics, asynchronous calls, hand-off after a
 * failure, and the base API on such groups.
 * Cancellation has a suite of its own, test_cancel.c.
 *
 * A flight here is held inside fn until the test releases it; followers
 * are known to be waiting through testutil's count of parked threads.
 */
#define _POSIX_C_SOURCE 200809L

#include "testutil.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A reference-counted value: share takes a reference, drop releases one,
 * and the last release frees it. */
struct counted {
    pthread_mutex_t mu;
    int refs;
    int *freed;
};

static int counted_frees;

static void *counted_new(struct tu_held *h, intptr_t run)
{
    (void)h;
    (void)run;
    struct counted *v = malloc(sizeof *v);
    pthread_mutex_init(&v->mu, NULL);
    v->refs = 1; /* the flight's own handle */
    v->freed = &counted_frees;
    return v;
}

static void *counted_share(void *val, void *ctx)
{
    (void)ctx;
    struct counted *v = val;
    pthread_mutex_lock(&v->mu);
    v->refs++;
    pthread_mutex_unlock(&v->mu);
    return v;
}

static void counted_drop(void *val, void *ctx)
{
    (void)ctx;
    struct counted *v = val;
    pthread_mutex_lock(&v->mu);
    int left = --v->refs;
    pthread_mutex_unlock(&v->mu);
    if (left == 0) {
        (*v->freed)++; /* only the test's thread drops the last reference */
        pthread_mutex_destroy(&v->mu);
        free(v);
    }
}

enum { N = 3 }; /* followers in a held flight */

/* With share/drop, every caller owns a reference; the flight's own one is
 * dropped once, after the last caller took its share. */
static void hooks_share_a_counted_value(void)
{
    sc_options o = {.share = counted_share, .drop = counted_drop};
    struct tu_held h;
    tu_held_init(&h, sc_new_with(&o), "k");
    h.make = counted_new;
    struct tu_caller c[N + 1];
    tu_held_start(&h, c, N);
    tu_held_release(&h, 1);
    tu_callers_join(c, N + 1, "a caller");
    struct counted *v = c[0].r.val;
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    for (int i = 0; i <= N; i++)
        CU_ASSERT_PTR_EQUAL(c[i].r.val, v);
    CU_ASSERT_EQUAL(v->refs, N + 1); /* one per caller; the flight's gone */
    counted_frees = 0;
    for (int i = 0; i <= N; i++)
        counted_drop(c[i].r.val, NULL);
    CU_ASSERT_EQUAL(counted_frees, 1);
    tu_free_group(h.g);
    tu_held_destroy(&h);
}

/* With a copying share, every caller gets its own copy to free; the
 * flight's original is freed by drop (memcheck proves no leak). */
static void hooks_copy_a_string(void)
{
    sc_options o = {.share = tu_copy_string, .drop = tu_free_string};
    struct tu_held h;
    tu_held_init(&h, sc_new_with(&o), "k");
    h.make = tu_run_string;
    struct tu_caller c[N + 1];
    tu_held_start(&h, c, N);
    tu_held_release(&h, 1);
    tu_callers_join(c, N + 1, "a caller");
    for (int i = 0; i <= N; i++) {
        CU_ASSERT_STRING_EQUAL(c[i].r.val, "run 1");
        for (int j = 0; j < i; j++)
            CU_ASSERT_PTR_NOT_EQUAL(c[i].r.val, c[j].r.val);
    }
    for (int i = 0; i <= N; i++)
        free(c[i].r.val);
    tu_free_group(h.g);
    tu_held_destroy(&h);
}

/* Only one of share and drop is an error. */
static void hooks_come_in_pairs(void)
{
    sc_options o = {.share = tu_copy_string};
    errno = 0;
    CU_ASSERT_PTR_NULL(sc_new_with(&o));
    CU_ASSERT_EQUAL(errno, EINVAL);
}

/* fresh and shared, as x/sync reports them. */
static void full_result(void)
{
    struct tu_held h;
    tu_held_init(&h, sc_new_with(NULL), "k");
    tu_held_release(&h, 1);
    struct tu_caller solo = {.h = &h};
    tu_call(&solo);
    CU_ASSERT_EQUAL(solo.rc, 0);
    CU_ASSERT_TRUE(solo.r.fresh);
    CU_ASSERT_FALSE(solo.r.shared);
    CU_ASSERT_PTR_EQUAL(solo.r.val, (void *)1);

    struct tu_caller c[N + 1];
    tu_held_start(&h, c, N); /* run 2, held */
    tu_held_release(&h, 1);
    tu_callers_join(c, N + 1, "a caller");
    CU_ASSERT_TRUE(c[0].r.fresh && c[0].r.shared);
    for (int i = 1; i <= N; i++) {
        CU_ASSERT_EQUAL(c[i].rc, 0);
        CU_ASSERT_FALSE(c[i].r.fresh);
        CU_ASSERT_TRUE(c[i].r.shared);
        CU_ASSERT_PTR_EQUAL(c[i].r.val, (void *)2);
    }
    tu_free_group(h.g);
    tu_held_destroy(&h);
}

/* Forget: later callers start a new flight; the forgotten one finishes for
 * its own callers and must not delete the newer flight (golang/go#31420). */
static void forget_leaves_newer_flight_alone(void)
{
    struct tu_held h;
    tu_held_init(&h, sc_new_with(NULL), "k");
    struct tu_caller a[2], b[2] = {{.h = &h}, {.h = &h}};
    tu_held_start(&h, a, 1); /* flight 1: leader and one follower */
    CU_ASSERT_EQUAL(sc_forget(h.g, "k"), 0);
    CU_ASSERT_EQUAL(sc_forget(h.g, "k"), -ENOENT);
    tu_caller_lead(&b[0]);  /* flight 2 leads, not joins */
    tu_held_release(&h, 1); /* flight 1 ends: flight 2 must stay */
    tu_callers_join(a, 2, "a caller");
    tu_callers_park(&b[1], 1); /* a late caller joins flight 2 */
    tu_held_release(&h, 1);
    tu_callers_join(b, 2, "a caller");
    CU_ASSERT_EQUAL(h.runs.count, 2);
    CU_ASSERT_PTR_EQUAL(a[0].r.val, (void *)1);
    CU_ASSERT_PTR_EQUAL(a[1].r.val, (void *)1);
    CU_ASSERT_PTR_EQUAL(b[0].r.val, (void *)2);
    CU_ASSERT_PTR_EQUAL(b[1].r.val, (void *)2);
    CU_ASSERT_FALSE(b[1].r.fresh);
    tu_free_group(h.g);
    tu_held_destroy(&h);
}

/* A follower whose deadline passes leaves with -ETIMEDOUT; the leader and
 * the other followers are unaffected; a past deadline returns at once
 * (the test only releases the leader after it has returned). */
static void deadline_times_out_one_follower(void)
{
    struct tu_held h;
    tu_held_init(&h, sc_new_with(NULL), "k");
    struct tu_caller c[2];
    tu_held_start(&h, c, 1);
    struct timespec soon = tu_in_ms(50), past = tu_in_ms(-1000);
    struct tu_caller late = {.h = &h, .deadline = &soon};
    struct tu_caller gone = {.h = &h, .deadline = &past};
    tu_caller_start(&late);
    tu_caller_start(&gone);
    tu_callers_join(&late, 1, "a follower past its deadline");
    tu_callers_join(&gone, 1, "a follower with a past deadline");
    CU_ASSERT_EQUAL(late.rc, -ETIMEDOUT);
    CU_ASSERT_EQUAL(gone.rc, -ETIMEDOUT);
    struct sc_stats s;
    CU_ASSERT_EQUAL(sc_stats(h.g, &s), 0);
    CU_ASSERT_EQUAL(s.timed_out, 2);
    CU_ASSERT_EQUAL(s.in_flight, 1);
    tu_held_release(&h, 1);
    tu_callers_join(c, 2, "a caller");
    CU_ASSERT_EQUAL(c[0].rc, 0);
    CU_ASSERT_EQUAL(c[1].rc, 0);
    CU_ASSERT_PTR_EQUAL(c[1].r.val, (void *)1);
    tu_free_group(h.g);
    tu_held_destroy(&h);
}

/* fn calling its own key gets -EDEADLK at once, not a wait for itself. */
struct selfish {
    sc_group *g;
    int inner_do, inner_result;
};

static int call_own_key(void *arg, void **val)
{
    struct selfish *s = arg;
    sc_result r;
    void *v;
    s->inner_do = sc_do(s->g, "self", call_own_key, s, &v);
    s->inner_result = sc_do_result(s->g, "self", call_own_key, s, &r);
    *val = s;
    return 0;
}

static void own_key_is_edeadlk(void)
{
    struct selfish s = {.g = sc_new_with(NULL)};
    sc_result r;
    CU_ASSERT_EQUAL(sc_do_result(s.g, "self", call_own_key, &s, &r), 0);
    CU_ASSERT_EQUAL(s.inner_do, -EDEADLK);
    CU_ASSERT_EQUAL(s.inner_result, -EDEADLK);
    tu_free_group(s.g);
}

/* A leader exiting inside fn (pthread_exit): its followers return
 * -ECANCELED and the key is free for a new flight. (Cancellation is in
 * test_cancel.c.) */
static void exiting_leader(void)
{
    struct tu_held h;
    tu_held_init(&h, sc_new_with(NULL), "k");
    h.exit_run = 1;
    struct tu_caller c[N + 1];
    tu_held_start(&h, c, N);
    tu_held_release(&h, 1);
    tu_callers_join(c, N + 1, "a caller");
    for (int i = 1; i <= N; i++)
        CU_ASSERT_EQUAL(c[i].rc, -ECANCELED);
    tu_held_release(&h, 2);
    struct tu_caller next = {.h = &h};
    tu_call(&next);
    CU_ASSERT_EQUAL(next.rc, 0);
    CU_ASSERT_TRUE(next.r.fresh);
    struct sc_stats s;
    sc_stats(h.g, &s);
    CU_ASSERT_EQUAL(s.cancelled, N + 1); /* the leader and its followers */
    CU_ASSERT_EQUAL(s.in_flight, 0);
    tu_free_group(h.g);
    tu_held_destroy(&h);
}

/* The counters add up. */
static void stats_count(void)
{
    struct tu_held h;
    tu_held_init(&h, sc_new_with(NULL), "k");
    struct tu_caller c[N + 1];
    tu_held_start(&h, c, N);
    struct sc_stats s;
    CU_ASSERT_EQUAL(sc_stats(h.g, &s), 0);
    CU_ASSERT_EQUAL(s.in_flight, 1);
    tu_held_release(&h, 2);
    tu_callers_join(c, N + 1, "a caller");
    struct tu_caller solo = {.h = &h};
    tu_call(&solo);
    CU_ASSERT_EQUAL(sc_stats(h.g, &s), 0);
    CU_ASSERT_EQUAL(s.flights, 2);
    CU_ASSERT_EQUAL(s.callers, N + 2);
    CU_ASSERT_EQUAL(s.shared, N);
    CU_ASSERT_EQUAL(s.timed_out, 0);
    CU_ASSERT_EQUAL(s.cancelled, 0);
    CU_ASSERT_EQUAL(s.in_flight, 0);
    tu_free_group(h.g);
    tu_held_destroy(&h);
}

static int echo(void *arg, void **val)
{
    *val = arg;
    return 0;
}

/* The base API works on an engine group; the extensions refuse a group
 * from sc_new; bad arguments are -EINVAL. */
static void api_edges(void)
{
    sc_group *g = sc_new_with(NULL), *plain = sc_new();
    void *v;
    bool fresh = false;
    CU_ASSERT_EQUAL(sc_do_ex(g, "k", echo, "v", &v, &fresh), 0);
    CU_ASSERT_STRING_EQUAL(v, "v");
    CU_ASSERT_TRUE(fresh);
    CU_ASSERT_EQUAL(sc_do(g, "k", echo, "w", &v), 0);
    CU_ASSERT_STRING_EQUAL(v, "w");

    sc_result r;
    struct sc_stats s;
    CU_ASSERT_EQUAL(sc_do_result(plain, "k", echo, NULL, &r), -ENOTSUP);
    CU_ASSERT_EQUAL(sc_forget(plain, "k"), -ENOTSUP);
    CU_ASSERT_EQUAL(sc_stats(plain, &s), -ENOTSUP);
    CU_ASSERT_EQUAL(sc_do_result(NULL, "k", echo, NULL, &r), -EINVAL);
    CU_ASSERT_EQUAL(sc_do_result(g, NULL, echo, NULL, &r), -EINVAL);
    CU_ASSERT_EQUAL(sc_do_result(g, "k", NULL, NULL, &r), -EINVAL);
    CU_ASSERT_EQUAL(sc_do_result(g, "k", echo, NULL, NULL), -EINVAL);
    struct timespec bad = {.tv_nsec = 1000000000L};
    CU_ASSERT_EQUAL(sc_do_until(g, "k", echo, NULL, &bad, &r), -EINVAL);
    CU_ASSERT_EQUAL(sc_forget(NULL, "k"), -EINVAL);
    CU_ASSERT_EQUAL(sc_stats(g, NULL), -EINVAL);
    tu_free_group(g);
    tu_free_group(plain);
}

/* sc_free refuses an engine group with a flight in progress. */
static void free_busy(void)
{
    struct tu_held h;
    tu_held_init(&h, sc_new_with(NULL), "k");
    struct tu_caller c[1];
    tu_held_start(&h, c, 0);
    CU_ASSERT_EQUAL(sc_free(h.g), -EBUSY);
    tu_held_release(&h, 1);
    tu_callers_join(c, 1, "a caller");
    tu_free_group(h.g);
    tu_held_destroy(&h);
}

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
    CU_ASSERT_EQUAL(sc_do_async(g, "k", echo, NULL, NULL, NULL), -EINVAL);
    CU_ASSERT_EQUAL(sc_do_async(g, NULL, echo, NULL, on_done, &a), -EINVAL);
    CU_ASSERT_EQUAL(sc_do_async(plain, "k", echo, NULL, on_done, &a), -ENOTSUP);
    CU_ASSERT_EQUAL(sc_drain(plain), -ENOTSUP);
    CU_ASSERT_EQUAL(sc_drain(NULL), -EINVAL);
    CU_ASSERT_EQUAL(sc_drain(g), 0); /* nothing to wait for */
    CU_ASSERT_EQUAL(a.calls, 0);
    tu_free_group(g);
    tu_free_group(plain);
    tu_gate_destroy(&answered);
}

/* The flight numbers LEAD reports. */
struct leads {
    pthread_mutex_t mu;
    unsigned long id[64];
    int n;
};

static void note_lead(const sc_event *ev, void *ctx)
{
    struct leads *l = ctx;
    pthread_mutex_lock(&l->mu);
    if (ev->kind == SC_EV_LEAD && l->n < 64)
        l->id[l->n++] = ev->flight;
    pthread_mutex_unlock(&l->mu);
}

static int constant(void *arg, void **val)
{
    *val = arg;
    return 0;
}

/* With shards, a key still has one flight at a time, and the group's
 * counters and flight numbers are the sum and the union of the shards'. */
static void shards_behave_as_one_group(void)
{
    errno = 0;
    CU_ASSERT_PTR_NULL(sc_new_with(&(sc_options){.shards = SC_SHARDS_MAX + 1}));
    CU_ASSERT_EQUAL(errno, EINVAL);

    struct leads l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    sc_options o = {.shards = 16, .trace = note_lead, .trace_ctx = &l};
    sc_group *g = sc_new_with(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    for (int i = 0; i < 64; i++) {
        char key[8];
        void *v;
        snprintf(key, sizeof key, "k%d", i);
        CU_ASSERT_EQUAL(sc_do(g, key, constant, &l, &v), 0);
    }
    CU_ASSERT_EQUAL(l.n, 64);
    for (int i = 0; i < l.n; i++) /* each number told once */
        for (int j = 0; j < i; j++)
            CU_ASSERT_NOT_EQUAL(l.id[i], l.id[j]);

    struct tu_held h;
    tu_held_init(&h, g, "k");
    struct tu_caller c[3];
    tu_held_start(&h, c, 2);
    CU_ASSERT_EQUAL(sc_forget(g, "k"), 0); /* found in its shard */
    CU_ASSERT_EQUAL(sc_forget(g, "k"), -ENOENT);
    tu_held_release(&h, 1);
    tu_callers_join(c, 3, "a caller");
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(c[i].r.val, (void *)1); /* one run, shared */
    struct sc_stats s;
    CU_ASSERT_EQUAL(sc_stats(g, &s), 0);
    CU_ASSERT_EQUAL(s.flights, 65);
    CU_ASSERT_EQUAL(s.callers, 67);
    CU_ASSERT_EQUAL(s.shared, 2);
    CU_ASSERT_EQUAL(s.in_flight, 0);
    tu_held_destroy(&h);
    tu_free_group(g);
}

int main(void)
{
    static const struct tu_test tests[] = {
        {"hooks: every caller owns a reference", hooks_share_a_counted_value},
        {"hooks: every caller owns a copy", hooks_copy_a_string},
        {"hooks: share and drop come in pairs", hooks_come_in_pairs},
        {"result: fresh and shared", full_result},
        {"forget: a newer flight survives the old one's end",
         forget_leaves_newer_flight_alone},
        {"deadline: one follower times out, the rest are served",
         deadline_times_out_one_follower},
        {"fn calling its own key gets -EDEADLK", own_key_is_edeadlk},
        {"a leader exiting in fn: followers get -ECANCELED", exiting_leader},
        {"stats add up", stats_count},
        {"base API on engine groups; -ENOTSUP, -EINVAL", api_edges},
        {"sc_free of a busy engine group is -EBUSY", free_busy},
        {"async: starts a flight; sync and async callers join",
         async_starts_a_flight},
        {"async: joins a sync leader, answered on its thread",
         async_joins_a_sync_leader},
        {"async: a kit thread exiting in fn answers -ECANCELED",
         async_leader_exits},
        {"async: with hooks, each callback owns its copy", async_with_hooks},
        {"async: -EINVAL, -ENOTSUP, an idle drain", async_edges},
        {"a failed leader's followers share its failure by default",
         failure_is_shared_by_default},
        {"handoff: after a failure, one follower runs fn itself",
         handoff_after_failure},
        {"handoff: a lone failed leader just ends its flight",
         handoff_needs_a_follower},
        {"handoff: the failed leader may call again at once",
         failed_leader_calls_again},
        {"handoff: an async leader's caller keeps its own failure",
         async_leader_fails_with_handoff},
        {"handoff: a follower taking over an async flight then exiting",
         async_taker_exits},
        {"shards behave as one group", shards_behave_as_one_group},
        {NULL, NULL},
    };
    return tu_run_suite("the full engine (sc_new_with)", tests);
}
