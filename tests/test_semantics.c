/*
 * test_semantics.c - one test (or more) for each semantic of the contract
 * in src/sharedcalls.h, and for every error the kit returns. The test names
 * number the semantics:
 *   1 one flight per key: fn runs once, its callers share its value or code
 *   2 no caching: a caller after a flight has ended starts a new one
 *   3 flights for different keys run in parallel: fn holds no lock
 *   4 fn may call its own group with another key
 *   5 a key is any NUL-terminated string, "" included, and is copied
 *   6 the call record lives until the last caller has read the result
 *   7 a follower waits for done: no lost wake-up, no spurious return
 *   8 groups are independent: the kit keeps no global state
 * Threads are ordered with gates and with the count of parked followers
 * (testutil.h), never with sleeps.
 */
#include "testutil.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A flight that the test controls (testutil's tu_held): fn counts its
 * runs, reports that it has started, then blocks until the test lets it
 * go; run n's value is n. On the port, callers call sc_do_ex. */
static void flight_init(struct tu_held *f, const char *key)
{
    tu_held_init(f, sc_new(), key);
    f->via = TU_VIA_DO_EX;
}

/* Semantic 1: while fn runs, other callers of the key wait and share its
 * result, error code included; fn runs once. */
static void one_flight_shares_error(void)
{
    enum { N = 8 };
    struct tu_held f;
    flight_init(&f, "k");
    f.err = ENOENT;
    struct tu_caller c[N];
    tu_parked_reset();
    for (int i = 0; i < N; i++) {
        c[i] = (struct tu_caller){.h = &f};
        tu_caller_start(&c[i]);
    }
    tu_gate_expect(&f.runs, 1, "no leader");
    tu_parked_expect(N - 1, "followers never parked");
    tu_held_open(&f);
    tu_callers_join(c, N, "caller");
    int fresh = 0;
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(c[i].rc, ENOENT);
        CU_ASSERT_PTR_EQUAL(c[i].r.val, (void *)1);
        fresh += c[i].r.fresh;
    }
    CU_ASSERT_EQUAL(f.runs.count, 1);
    CU_ASSERT_EQUAL(fresh, 1);
    tu_free_group(f.g);
    tu_held_destroy(&f);
}

/* Semantic 2: no caching. Calls one after another each run fn. */
static void no_caching_in_sequence(void)
{
    struct tu_held f;
    flight_init(&f, "k");
    tu_held_open(&f);
    struct tu_caller a = {.h = &f}, b = {.h = &f};
    tu_call(&a);
    tu_call(&b);
    CU_ASSERT_EQUAL(a.rc, 0);
    CU_ASSERT_EQUAL(b.rc, 0);
    CU_ASSERT_PTR_EQUAL(a.r.val, (void *)1);
    CU_ASSERT_PTR_EQUAL(b.r.val, (void *)2);
    CU_ASSERT_TRUE(a.r.fresh && b.r.fresh);
    tu_free_group(f.g);
    tu_held_destroy(&f);
}

/* Semantics 2 and 6: once the leader has returned, its flight is out of the
 * map but its record lives on for a follower that has woken and not yet
 * read the result. A caller arriving then starts a new flight, and the
 * group is still busy. */
static void late_caller_starts_new_flight(void)
{
    struct tu_held f;
    flight_init(&f, "k");
    struct tu_caller lead = {.h = &f}, follow = {.h = &f}, late = {.h = &f};
    tu_caller_lead(&lead);
    tu_callers_park(&follow, 1);
    tu_hold_wakers();
    tu_held_open(&f);
    tu_callers_join(&lead, 1, "leader");
    tu_wakers_expect(1, "follower never woke");
    tu_call(&late);
    CU_ASSERT_EQUAL(sc_free(f.g), -EBUSY); /* the follower has yet to read */
    tu_release_wakers();
    tu_callers_join(&follow, 1, "follower");
    CU_ASSERT_EQUAL(f.runs.count, 2);
    CU_ASSERT_TRUE(lead.r.fresh);
    CU_ASSERT_FALSE(follow.r.fresh);
    CU_ASSERT_TRUE(late.r.fresh);
    CU_ASSERT_PTR_EQUAL(lead.r.val, (void *)1);
    CU_ASSERT_PTR_EQUAL(follow.r.val, (void *)1);
    CU_ASSERT_PTR_EQUAL(late.r.val, (void *)2);
    tu_free_group(f.g);
    tu_held_destroy(&f);
}

/* Meets `parties` threads, then returns how many had arrived: fewer than
 * `parties` means they never ran at the same time. */
struct meeting {
    struct tu_gate here;
    int parties;
};

static int meet(void *arg, void **val)
{
    struct meeting *m = arg;
    tu_gate_raise(&m->here, 1);
    *val = (void *)(intptr_t)tu_gate_wait(&m->here, m->parties);
    return 0;
}

struct meeter {
    struct meeting *m;
    sc_group *g;
    const char *key;
    int rc;
    void *met;
};

static void *meet_in_fn(void *arg)
{
    struct meeter *p = arg;
    p->rc = sc_do(p->g, p->key, meet, p->m, &p->met);
    return NULL;
}

/* Two callers whose fns must run at the same time to meet. */
static void run_meeting(sc_group *g1, const char *k1, sc_group *g2,
                        const char *k2)
{
    struct meeting m = {.parties = 2};
    tu_gate_init(&m.here);
    struct meeter a = {.m = &m, .g = g1, .key = k1};
    struct meeter b = {.m = &m, .g = g2, .key = k2};
    struct tu_thread ta;
    tu_start(&ta, meet_in_fn, &a);
    struct tu_thread tb;
    tu_start(&tb, meet_in_fn, &b);
    tu_join(&ta, "first fn");
    tu_join(&tb, "second fn");
    CU_ASSERT_EQUAL(a.rc, 0);
    CU_ASSERT_EQUAL(b.rc, 0);
    CU_ASSERT_PTR_EQUAL(a.met, (void *)1); /* true: both fns ran at once */
    CU_ASSERT_PTR_EQUAL(b.met, (void *)1);
    tu_gate_destroy(&m.here);
}

/* Semantic 3: fns for different keys run in parallel (fn holds no lock). */
static void distinct_keys_in_parallel(void)
{
    sc_group *g = sc_new();
    run_meeting(g, "a", g, "b");
    tu_free_group(g);
}

/* Semantic 8: groups are independent; one key in two groups, two flights. */
static void groups_are_independent(void)
{
    sc_group *g1 = sc_new(), *g2 = sc_new();
    run_meeting(g1, "k", g2, "k");
    tu_free_group(g1);
    tu_free_group(g2);
}

/* Semantic 4: fn may call its own group with another key. */
static int inner(void *arg, void **val)
{
    (void)arg;
    *val = "inner";
    return 0;
}

static int outer(void *arg, void **val)
{
    void *v = NULL;
    int rc = sc_do(arg, "inner", inner, NULL, &v);
    *val = v;
    return rc;
}

static void fn_calls_group_with_other_key(void)
{
    sc_group *g = sc_new();
    void *v = NULL;
    CU_ASSERT_EQUAL(sc_do(g, "outer", outer, g, &v), 0);
    CU_ASSERT_STRING_EQUAL(v, "inner");
    tu_free_group(g);
}

/* Semantic 5: "" is a key like any other, and a key of 1 MiB works. */
static int echo_arg(void *arg, void **val)
{
    *val = arg;
    return 0;
}

static void empty_and_long_keys(void)
{
    sc_group *g = sc_new();
    void *v = NULL;
    CU_ASSERT_EQUAL(sc_do(g, "", echo_arg, "empty", &v), 0);
    CU_ASSERT_STRING_EQUAL(v, "empty");
    static char big[(1 << 20) + 1];
    memset(big, 'k', sizeof big - 1);
    CU_ASSERT_EQUAL(sc_do(g, big, echo_arg, "long", &v), 0);
    CU_ASSERT_STRING_EQUAL(v, "long");
    tu_free_group(g);
}

/* Semantic 5: the kit copies the key. The leader's fn scribbles over the
 * leader's key buffer; a follower with the same key in another buffer must
 * still find the flight, and a caller with the scribbled text must not. */
struct scribble {
    struct tu_held f;
    char *buf;
    int rc;
};

static int scribble_then_hold(void *arg, void **val)
{
    struct scribble *s = arg;
    memset(s->buf, 'x', strlen(s->buf));
    return tu_held_fn(&s->f, val);
}

static void *call_scribbling(void *arg)
{
    struct scribble *s = arg;
    void *v;
    s->rc = sc_do(s->f.g, s->buf, scribble_then_hold, s, &v);
    return NULL;
}

static void key_is_copied(void)
{
    char buf[] = "key";
    struct scribble s = {.buf = buf};
    flight_init(&s.f, "key");
    struct tu_thread tl;
    tu_start(&tl, call_scribbling, &s);
    tu_gate_expect(&s.f.runs, 1, "no leader");
    CU_ASSERT_STRING_EQUAL(buf, "xxx");
    struct tu_caller follow = {.h = &s.f};
    tu_callers_park(&follow, 1); /* an equal key in another buffer */
    void *v = NULL;
    CU_ASSERT_EQUAL(sc_do(s.f.g, "xxx", echo_arg, "own flight", &v), 0);
    CU_ASSERT_STRING_EQUAL(v, "own flight");
    tu_held_open(&s.f);
    tu_join(&tl, "leader");
    tu_callers_join(&follow, 1, "follower");
    CU_ASSERT_EQUAL(s.rc, 0);
    CU_ASSERT_EQUAL(follow.rc, 0);
    CU_ASSERT_FALSE(follow.r.fresh);
    CU_ASSERT_EQUAL(s.f.runs.count, 1);
    tu_free_group(s.f.g);
    tu_held_destroy(&s.f);
}

/* Semantic 5: keys are compared in full, not by prefix. */
static void prefix_keys_are_distinct(void)
{
    sc_group *g = sc_new();
    run_meeting(g, "ab", g, "abc");
    tu_free_group(g);
}

/* Semantics 6 and 7: followers wait on the done predicate. Every wait in
 * the kit is made to wake up spuriously many times; a follower that did not
 * recheck done would return before the leader had a result. */
static void spurious_wakeups_are_ignored(void)
{
    enum { N = 4 };
    struct tu_held f;
    flight_init(&f, "k");
    f.err = EXDEV; /* no other test's result: stale memory cannot pass */
    struct tu_caller c[N];
    tu_parked_reset();
    tu_spurious(1000);
    for (int i = 0; i < N; i++) {
        c[i] = (struct tu_caller){.h = &f};
        tu_caller_start(&c[i]);
    }
    tu_gate_expect(&f.runs, 1, "no leader");
    tu_parked_expect(N - 1, "followers never parked");
    tu_held_open(&f);
    tu_callers_join(c, N, "caller");
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(c[i].rc, EXDEV);
        CU_ASSERT_PTR_EQUAL(c[i].r.val, (void *)1);
    }
    tu_spurious(0);
    CU_ASSERT_EQUAL(f.runs.count, 1);
    tu_free_group(f.g); /* semantic 6: every record is gone */
    tu_held_destroy(&f);
}

static int never_run(void *arg, void **val)
{
    (void)val;
    (*(int *)arg)++;
    return 0;
}

/* -EINVAL for each NULL argument: fn not run, *val and *fresh untouched. */
static void null_arguments(void)
{
    sc_group *g = sc_new();
    int runs = 0;
    void *v = "untouched";
    bool fresh = true;
    CU_ASSERT_EQUAL(sc_do(NULL, "k", never_run, &runs, &v), -EINVAL);
    CU_ASSERT_EQUAL(sc_do(g, NULL, never_run, &runs, &v), -EINVAL);
    CU_ASSERT_EQUAL(sc_do(g, "k", NULL, &runs, &v), -EINVAL);
    CU_ASSERT_EQUAL(sc_do(g, "k", never_run, &runs, NULL), -EINVAL);
    CU_ASSERT_EQUAL(sc_do_ex(NULL, "k", never_run, &runs, &v, &fresh), -EINVAL);
    CU_ASSERT_EQUAL(sc_do_ex(g, NULL, never_run, &runs, &v, &fresh), -EINVAL);
    CU_ASSERT_EQUAL(sc_do_ex(g, "k", NULL, &runs, &v, &fresh), -EINVAL);
    CU_ASSERT_EQUAL(sc_do_ex(g, "k", never_run, &runs, NULL, &fresh), -EINVAL);
    CU_ASSERT_EQUAL(runs, 0);
    CU_ASSERT_STRING_EQUAL(v, "untouched");
    CU_ASSERT_TRUE(fresh);
    tu_free_group(g);
}

/* fresh may be NULL; fn's codes pass through unchanged, negative ones too. */
static int return_arg_as_code(void *arg, void **val)
{
    (void)val;
    return (int)(intptr_t)arg;
}

static void codes_pass_through(void)
{
    sc_group *g = sc_new();
    void *v = "untouched";
    CU_ASSERT_EQUAL(sc_do_ex(g, "k", echo_arg, "v", &v, NULL), 0);
    CU_ASSERT_STRING_EQUAL(v, "v");
    CU_ASSERT_EQUAL(sc_do(g, "k", return_arg_as_code, (void *)EIO, &v), EIO);
    CU_ASSERT_PTR_NULL(v); /* fn stored nothing: the value starts as NULL */
    CU_ASSERT_EQUAL(sc_do(g, "k", return_arg_as_code, (void *)-77, &v), -77);
    tu_free_group(g);
}

/* sc_free: NULL is a no-op; a group in use is -EBUSY and stays usable. */
static void free_null_and_busy(void)
{
    CU_ASSERT_EQUAL(sc_free(NULL), 0);
    struct tu_held f;
    flight_init(&f, "k");
    struct tu_caller lead;
    tu_held_start(&f, &lead, 0);
    CU_ASSERT_EQUAL(sc_free(f.g), -EBUSY);
    tu_held_open(&f);
    tu_callers_join(&lead, 1, "leader");
    CU_ASSERT_EQUAL(lead.rc, 0);
    tu_free_group(f.g);
    tu_held_destroy(&f);
}

int main(void)
{
    static const struct tu_test tests[] = {
        {"1 one flight per key; its error is shared", one_flight_shares_error},
        {"2 no caching: sequential calls each run fn", no_caching_in_sequence},
        {"2+6 after the leader returns: a new flight; old record alive",
         late_caller_starts_new_flight},
        {"3 fns for different keys run in parallel", distinct_keys_in_parallel},
        {"4 fn calls its group with another key",
         fn_calls_group_with_other_key},
        {"5 \"\" and a 1 MiB string are keys", empty_and_long_keys},
        {"5 the key is copied", key_is_copied},
        {"5 keys compare in full, not by prefix", prefix_keys_are_distinct},
        {"6+7 followers recheck done after spurious wake-ups",
         spurious_wakeups_are_ignored},
        {"8 groups are independent", groups_are_independent},
        {"-EINVAL for each NULL argument", null_arguments},
        {"fresh may be NULL; fn's codes pass through", codes_pass_through},
        {"sc_free(NULL) is 0; a busy group is -EBUSY", free_null_and_busy},
        {NULL, NULL},
    };
    return tu_run_suite("sharedcalls.h semantics and errors", tests);
}
