/*
 * test_flight.c - the full engine (groups from sc_new_with): Forget, the
 * full result, follower deadlines, -EDEADLK, a leader that exits inside
 * fn, statistics, and the base API on such groups.
 * The engine's other features have suites of their own: test_hooks.c
 * (value hooks), test_handoff.c, test_async.c (sc_do_async, sc_drain),
 * test_shards.c, test_cancel.c (cancellation) and test_trace.c.
 *
 * A flight here is held inside fn until the test releases it (testutil's
 * tu_held); followers are known to be waiting through testutil's count of
 * parked threads.
 */
#define _POSIX_C_SOURCE 200809L

#include "testutil.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

enum { N = 3 }; /* followers in a held flight */

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

/*
 * A record that served one flight's followers serves the next as the
 * shard's spare. Its last flight's callers dropped their references
 * without the lock, ordered by atomics that Helgrind and DRD cannot see,
 * so to those tools the spare must be new memory, as malloc's would be
 * (sc__heap_call). Here the callers of two flights signal each other only
 * through atomics too: nothing the tools can see orders the first
 * flight's leaving before the second flight's first follower reuses the
 * record. The plain run checks the results; make race checks that the
 * tools are quiet.
 */
struct recycled {
    sc_group *g;
    atomic_int in_fn;    /* runs of fn entered */
    atomic_int released; /* runs of fn let return */
    atomic_int returned; /* calls that returned */
    int rc[4];
    void *val[4];
};

static bool reach(atomic_int *a, int n, const char *what)
{
    for (int ms = 0; ms < TU_TIMEOUT_S * 1000; ms++) {
        if (atomic_load(a) >= n)
            return true;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    printf("HANG: %s\n", what);
    CU_FAIL("a wait timed out");
    return false;
}

static int held_by_atomic(void *arg, void **val)
{
    struct recycled *r = arg;
    int run = atomic_fetch_add(&r->in_fn, 1) + 1;
    reach(&r->released, run, "fn never released");
    *val = "recycled";
    return 0;
}

struct recycled_call {
    struct recycled *r;
    int i;
};

static void *call_recycled(void *arg)
{
    struct recycled_call *c = arg;
    struct recycled *r = c->r;
    r->rc[c->i] = sc_do(r->g, "k", held_by_atomic, r, &r->val[c->i]);
    atomic_fetch_add(&r->returned, 1);
    return NULL;
}

static void spare_record_is_new_to_the_tools(void)
{
    struct recycled r = {.g = sc_new_with(NULL)};
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.g);
    pthread_t t[4];
    struct recycled_call c[4];
    for (int flight = 0; flight < 2; flight++) {
        int leader = 2 * flight, follower = leader + 1;
        c[leader] = (struct recycled_call){&r, leader};
        c[follower] = (struct recycled_call){&r, follower};
        pthread_create(&t[leader], NULL, call_recycled, &c[leader]);
        if (!reach(&r.in_fn, flight + 1, "leader never ran fn"))
            break;
        tu_parked_reset();
        pthread_create(&t[follower], NULL, call_recycled, &c[follower]);
        tu_parked_expect(1, "follower never parked"); /* it promoted */
        atomic_fetch_add(&r.released, 1);
        if (!reach(&r.returned, 2 * flight + 2, "a call never returned"))
            break;
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(r.rc[i], 0);
        CU_ASSERT_STRING_EQUAL(r.val[i], "recycled");
    }
    struct sc_stats st;
    CU_ASSERT_EQUAL(sc_stats(r.g, &st), 0);
    CU_ASSERT_EQUAL(st.flights, 2);
    CU_ASSERT_EQUAL(st.shared, 2);
    tu_free_group(r.g);
}

int main(void)
{
    static const struct tu_test tests[] = {
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
        {"a spare record is new memory to the race tools",
         spare_record_is_new_to_the_tools},
        {NULL, NULL},
    };
    return tu_run_suite("the full engine (sc_new_with)", tests);
}
