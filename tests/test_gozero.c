/*
 * test_gozero.c - the cases of go-zero's core/syncx/sharedcalls_test.go,
 * in C. go-zero lets its goroutines block with a 100 ms sleep before it
 * releases fn; here fn waits until every follower is parked in the kit's
 * wait, so the outcome does not depend on timing.
 */
#include "testutil.h"

#include <errno.h>
#include <string.h>

/* Every caller of a flight gets this very pointer, not a copy. */
static char bar[] = "bar";

static int return_bar(void *arg, void **val)
{
    (void)arg;
    *val = bar;
    return 0;
}

static int fail_with_eio(void *arg, void **val)
{
    (void)arg;
    (void)val;
    return EIO;
}

/* go-zero: TestExclusiveCallDo */
static void do_returns_value(void)
{
    sc_group *g = sc_new();
    void *v = NULL;
    CU_ASSERT_EQUAL(sc_do(g, "key", return_bar, NULL, &v), 0);
    CU_ASSERT_PTR_EQUAL(v, bar);
    tu_free_group(g);
}

/* go-zero: TestExclusiveCallDoErr */
static void do_passes_error(void)
{
    sc_group *g = sc_new();
    void *v = "untouched";
    CU_ASSERT_EQUAL(sc_do(g, "key", fail_with_eio, NULL, &v), EIO);
    CU_ASSERT_PTR_NULL(v);
    tu_free_group(g);
}

/* A flight whose fn returns "bar" once `followers` callers are parked, and
 * counts its runs. */
struct held {
    sc_group *g;
    const char *key;
    int followers;
    struct tu_gate runs; /* leaders of different keys count concurrently */
};

static int bar_when_all_parked(void *arg, void **val)
{
    struct held *h = arg;
    tu_gate_raise(&h->runs, 1);
    tu_parked_expect(h->followers, "followers never parked");
    *val = bar;
    return 0;
}

struct caller {
    struct held *h;
    const char *key;
    void *val;
    int rc;
    bool ex; /* DoEx, not Do */
    bool fresh;
};

static void *call(void *arg)
{
    struct caller *c = arg;
    c->rc = c->ex ? sc_do_ex(c->h->g, c->key, bar_when_all_parked, c->h,
                             &c->val, &c->fresh)
                  : sc_do(c->h->g, c->key, bar_when_all_parked, c->h, &c->val);
    return NULL;
}

enum { N = 10 };

/* Runs N callers of one key; returns how many were fresh. */
static int run_ten(struct held *h, struct caller *c, bool ex)
{
    struct tu_thread t[N];
    tu_parked_reset();
    for (int i = 0; i < N; i++) {
        c[i] = (struct caller){.h = h, .key = h->key, .ex = ex};
        tu_start(&t[i], call, &c[i]);
    }
    int fresh = 0;
    for (int i = 0; i < N; i++) {
        tu_join(&t[i], "a caller of the shared flight");
        fresh += c[i].fresh;
    }
    return fresh;
}

/* Ten callers of one key through Do (ex false) or DoEx: fn runs once and
 * every caller gets its very pointer. Returns how many were fresh. */
static int ten_callers_share_bar(bool ex)
{
    struct held h = {.g = sc_new(), .key = "key", .followers = N - 1};
    struct caller c[N];
    tu_gate_init(&h.runs);
    int fresh = run_ten(&h, c, ex);
    CU_ASSERT_EQUAL(h.runs.count, 1);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(c[i].rc, 0);
        CU_ASSERT_PTR_EQUAL(c[i].val, bar);
    }
    tu_gate_destroy(&h.runs);
    tu_free_group(h.g);
    return fresh;
}

/* go-zero: TestExclusiveCallDoDupSuppress */
static void do_dup_suppress(void)
{
    ten_callers_share_bar(false);
}

/* go-zero (later versions): TestExclusiveCallDoDiffDupSuppress. Thirteen
 * callers over five keys: fn runs once per key. */
static void do_diff_dup_suppress(void)
{
    static const char *keys[] = {"e", "a", "e", "a", "b", "c", "b",
                                 "a", "c", "d", "b", "c", "d"};
    enum { K = sizeof keys / sizeof keys[0], DISTINCT = 5 };
    struct held h = {.g = sc_new(), .followers = K - DISTINCT};
    tu_gate_init(&h.runs);
    struct caller c[K];
    struct tu_thread t[K];
    tu_parked_reset();
    for (int i = 0; i < K; i++) {
        c[i] = (struct caller){.h = &h, .key = keys[i], .ex = true};
        tu_start(&t[i], call, &c[i]);
    }
    int fresh = 0;
    for (int i = 0; i < K; i++) {
        tu_join(&t[i], "a caller of the five flights");
        CU_ASSERT_EQUAL(c[i].rc, 0);
        fresh += c[i].fresh;
    }
    CU_ASSERT_EQUAL(h.runs.count, DISTINCT);
    CU_ASSERT_EQUAL(fresh, DISTINCT);
    tu_gate_destroy(&h.runs);
    tu_free_group(h.g);
}

/* go-zero: TestExclusiveCallDoExDupSuppress */
static void do_ex_dup_suppress(void)
{
    CU_ASSERT_EQUAL(ten_callers_share_bar(true), 1);
}

int main(void)
{
    static const struct tu_test tests[] = {
        {"Do returns fn's value", do_returns_value},
        {"Do passes fn's error through", do_passes_error},
        {"ten callers of one key: fn runs once", do_dup_suppress},
        {"keys e a e a b c b a c d b c d: fn runs 5 times",
         do_diff_dup_suppress},
        {"DoEx: one fresh caller among ten", do_ex_dup_suppress},
        {NULL, NULL},
    };
    return tu_run_suite("go-zero sharedcalls_test.go", tests);
}
