/*
 * test_trace.c - the trace hook of sc_options: which events a call
 * reports, on which thread, in which order, and with what.
 *
 * Each test records every event into a log, then checks each thread's own
 * sequence and the order between threads that the kit promises (a
 * follower wakes after its flight's DONE). The cancelled leader's events
 * are checked in test_cancel.c, with the other cancellations.
 */
#define _POSIX_C_SOURCE 200809L

#include "testutil.h"

#include <errno.h>
#include <string.h>

enum { LOG_MAX = 256 };

struct logged {
    sc_event ev;
    char key[16]; /* ev.key is valid only during the hook */
};

struct log {
    pthread_mutex_t mu;
    struct logged at[LOG_MAX];
    int n;
};

static void record(const sc_event *ev, void *ctx)
{
    struct log *l = ctx;
    pthread_mutex_lock(&l->mu);
    if (l->n < LOG_MAX) {
        struct logged *e = &l->at[l->n++];
        e->ev = *ev;
        snprintf(e->key, sizeof e->key, "%s", ev->key);
        e->ev.key = e->key;
    }
    pthread_mutex_unlock(&l->mu);
}

static sc_group *traced_group(struct log *l, bool handoff)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    sc_options o = {.handoff = handoff, .trace = record, .trace_ctx = l};
    sc_group *g = sc_new_with(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    return g;
}

/* The kinds of t's events, in order, as a string of letters (one per
 * kind, see KINDS), so a test can compare a whole sequence at once. */
static const char KINDS[] = "ELJSRXDHWTCr";
/*                           E enter  L lead  J join  S fn start  R fn return
 *                           X delete D done  H hand-off  W wake
 *                           T timeout C cancel  r return */

static void kinds_of(const struct log *l, pthread_t t, char *out, size_t size)
{
    size_t k = 0;
    for (int i = 0; i < l->n && k + 1 < size; i++)
        if (pthread_equal(l->at[i].ev.thread, t))
            out[k++] = KINDS[l->at[i].ev.kind];
    out[k] = '\0';
}

/* The index of t's n-th event of kind (n from 0), or -1. */
static int find(const struct log *l, pthread_t t, sc_event_kind kind, int n)
{
    for (int i = 0; i < l->n; i++)
        if (pthread_equal(l->at[i].ev.thread, t) && l->at[i].ev.kind == kind &&
            n-- == 0)
            return i;
    return -1;
}

/* t's first event of kind, or an empty event (code -1) if it has none. */
static const sc_event *event_of(const struct log *l, pthread_t t,
                                sc_event_kind kind)
{
    static const sc_event none = {.code = -1};
    int i = find(l, t, kind, 0);
    return i >= 0 ? &l->at[i].ev : &none;
}

static bool later_or_same(struct timespec a, struct timespec b)
{
    return a.tv_sec > b.tv_sec ||
           (a.tv_sec == b.tv_sec && a.tv_nsec >= b.tv_nsec);
}

static int constant(void *arg, void **val)
{
    *val = arg;
    return 0;
}

static void alone_leader_reports_its_whole_way(void)
{
    struct log l;
    sc_group *g = traced_group(&l, false);
    sc_result r;
    int x;
    CU_ASSERT_EQUAL(sc_do_result(g, "key", constant, &x, &r), 0);
    char seq[32];
    kinds_of(&l, pthread_self(), seq, sizeof seq);
    CU_ASSERT_STRING_EQUAL(seq, "ELSRXDr");
    CU_ASSERT_EQUAL(l.n, 7); /* and no other thread's */
    for (int i = 0; i < l.n; i++) {
        CU_ASSERT_STRING_EQUAL(l.at[i].key, "key");
        CU_ASSERT_EQUAL(l.at[i].ev.flight, i == 0 ? 0UL : 1UL);
        if (i > 0)
            CU_ASSERT(later_or_same(l.at[i].ev.at, l.at[i - 1].ev.at));
    }
    const sc_event *ret = &l.at[6].ev;
    CU_ASSERT_EQUAL(ret->code, 0);
    CU_ASSERT_TRUE(ret->fresh);
    CU_ASSERT_FALSE(ret->shared);
    /* a second call is a second flight */
    CU_ASSERT_EQUAL(sc_do_result(g, "key", constant, &x, &r), 0);
    CU_ASSERT_EQUAL(l.at[l.n - 1].ev.flight, 2UL);
    tu_free_group(g);
    pthread_mutex_destroy(&l.mu);
}

/* A held flight on key "k" whose every run returns err. */
static void flight_init(struct tu_held *f, sc_group *g, int err)
{
    tu_held_init(f, g, "k");
    f->err = err;
}

static void end_test(struct tu_held *f, struct log *l)
{
    tu_held_destroy(f);
    tu_free_group(f->g);
    pthread_mutex_destroy(&l->mu);
}

static void followers_wake_after_done(void)
{
    struct log l;
    struct tu_held f;
    struct tu_caller c[3];
    flight_init(&f, traced_group(&l, false), 0);
    tu_held_start(&f, c, 2);
    tu_held_open(&f);
    tu_callers_join(c, 3, "a caller");
    char seq[32];
    kinds_of(&l, c[0].thread.id, seq, sizeof seq);
    CU_ASSERT_STRING_EQUAL(seq, "ELSRXDr");
    int done = find(&l, c[0].thread.id, SC_EV_DONE, 0);
    for (int i = 1; i < 3; i++) {
        kinds_of(&l, c[i].thread.id, seq, sizeof seq);
        CU_ASSERT_STRING_EQUAL(seq, "EJWr");
        int wake = find(&l, c[i].thread.id, SC_EV_WAKE, 0);
        CU_ASSERT(wake > done);
        const sc_event *ret = event_of(&l, c[i].thread.id, SC_EV_RETURN);
        CU_ASSERT_FALSE(ret->fresh);
        CU_ASSERT_TRUE(ret->shared);
        CU_ASSERT_EQUAL(ret->flight, 1UL);
    }
    CU_ASSERT_TRUE(event_of(&l, c[0].thread.id, SC_EV_RETURN)->shared);
    end_test(&f, &l);
}

static void an_error_is_reported_where_it_happens(void)
{
    struct log l;
    struct tu_held f;
    struct tu_caller c[3];
    flight_init(&f, traced_group(&l, false), EIO);
    tu_held_start(&f, c, 2);
    tu_held_open(&f);
    tu_callers_join(c, 3, "a caller");
    CU_ASSERT_EQUAL(event_of(&l, c[0].thread.id, SC_EV_FN_RETURN)->code, EIO);
    CU_ASSERT_EQUAL(event_of(&l, c[0].thread.id, SC_EV_DONE)->code, EIO);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(event_of(&l, c[i].thread.id, SC_EV_RETURN)->code, EIO);
    end_test(&f, &l);
}

static void a_timed_out_follower_says_so(void)
{
    struct log l;
    struct tu_held f;
    flight_init(&f, traced_group(&l, false), 0);
    struct tu_caller lead;
    tu_held_start(&f, &lead, 0);
    struct timespec past = {0, 0};
    sc_result r;
    CU_ASSERT_EQUAL(sc_do_until(f.g, "k", tu_held_fn, &f, &past, &r),
                    -ETIMEDOUT);
    char seq[32];
    kinds_of(&l, pthread_self(), seq, sizeof seq);
    CU_ASSERT_STRING_EQUAL(seq, "EJTr");
    CU_ASSERT_EQUAL(event_of(&l, pthread_self(), SC_EV_RETURN)->code,
                    -ETIMEDOUT);
    tu_held_open(&f);
    tu_callers_join(&lead, 1, "the leader");
    end_test(&f, &l);
}

static void forget_deletes_once(void)
{
    struct log l;
    struct tu_held f;
    flight_init(&f, traced_group(&l, false), 0);
    struct tu_caller lead;
    tu_held_start(&f, &lead, 0);
    CU_ASSERT_EQUAL(sc_forget(f.g, "k"), 0);
    char seq[32];
    kinds_of(&l, pthread_self(), seq, sizeof seq);
    CU_ASSERT_STRING_EQUAL(seq, "X");
    tu_held_open(&f);
    tu_callers_join(&lead, 1, "the leader");
    kinds_of(&l, lead.thread.id, seq, sizeof seq);
    CU_ASSERT_STRING_EQUAL(seq, "ELSRDr"); /* no second delete */
    end_test(&f, &l);
}

static void a_handoff_makes_a_follower_lead(void)
{
    struct log l;
    struct tu_held f;
    struct tu_caller c[3];
    flight_init(&f, traced_group(&l, true), EIO);
    tu_held_start(&f, c, 2);
    tu_held_open(&f); /* every run fails */
    tu_callers_join(c, 3, "a caller");
    char seq[32];
    kinds_of(&l, c[0].thread.id, seq, sizeof seq);
    CU_ASSERT_STRING_EQUAL(seq, "ELSRHr");
    CU_ASSERT_EQUAL(event_of(&l, c[0].thread.id, SC_EV_HANDOFF)->code, EIO);
    /* one follower took the flight, the other took it from that one, and
     * the last run ended the flight */
    char a[32], b[32];
    kinds_of(&l, c[1].thread.id, a, sizeof a);
    kinds_of(&l, c[2].thread.id, b, sizeof b);
    bool first_took = strcmp(a, "EJWLSRHr") == 0;
    CU_ASSERT_STRING_EQUAL(first_took ? a : b, "EJWLSRHr");
    CU_ASSERT_STRING_EQUAL(first_took ? b : a, "EJWLSRXDr");
    int leads = 0;
    for (int i = 0; i < l.n; i++)
        leads += l.at[i].ev.kind == SC_EV_LEAD && l.at[i].ev.flight == 1;
    CU_ASSERT_EQUAL(leads, 3);
    end_test(&f, &l);
}

static int calls_itself(void *arg, void **val)
{
    sc_result r;
    *val = NULL;
    return -sc_do_result(arg, "self", calls_itself, arg, &r);
}

static void edeadlk_names_the_flight(void)
{
    struct log l;
    sc_group *g = traced_group(&l, false);
    sc_result r;
    CU_ASSERT_EQUAL(sc_do_result(g, "self", calls_itself, g, &r), EDEADLK);
    char seq[32];
    kinds_of(&l, pthread_self(), seq, sizeof seq);
    CU_ASSERT_STRING_EQUAL(seq, "ELSErRXDr");
    const sc_event *inner = event_of(&l, pthread_self(), SC_EV_RETURN);
    CU_ASSERT_EQUAL(inner->code, -EDEADLK);
    CU_ASSERT_EQUAL(inner->flight, 1UL);
    tu_free_group(g);
    pthread_mutex_destroy(&l.mu);
}

struct answer {
    struct tu_gate got;
    int rc;
};

static void answered(void *arg, int rc, const sc_result *r)
{
    (void)r;
    struct answer *a = arg;
    a->rc = rc;
    tu_gate_raise(&a->got, 1);
}

static void async_return_comes_with_the_answer(void)
{
    struct log l;
    struct tu_held f;
    flight_init(&f, traced_group(&l, false), 0);
    struct answer a = {.rc = -1};
    tu_gate_init(&a.got);
    CU_ASSERT_EQUAL(sc_do_async(f.g, "k", tu_held_fn, &f, answered, &a), 0);
    tu_gate_expect(&f.runs, 1, "the kit thread in fn");
    char seq[32];
    kinds_of(&l, pthread_self(), seq, sizeof seq);
    CU_ASSERT_STRING_EQUAL(seq, "EL"); /* fn runs elsewhere */
    tu_held_open(&f);
    tu_gate_expect(&a.got, 1, "the answer");
    CU_ASSERT_EQUAL(sc_drain(f.g), 0);
    const struct logged *ret = NULL; /* the only RETURN */
    for (int i = 0; i < l.n; i++)
        if (l.at[i].ev.kind == SC_EV_RETURN)
            ret = &l.at[i];
    if (ret == NULL) {
        CU_FAIL("no RETURN");
    } else {
        CU_ASSERT_FALSE(pthread_equal(ret->ev.thread, pthread_self()));
        CU_ASSERT_TRUE(ret->ev.fresh);
        CU_ASSERT_EQUAL(ret->ev.flight, 1UL);
        CU_ASSERT_STRING_EQUAL(ret->key, "k");
    }
    tu_gate_destroy(&a.got);
    end_test(&f, &l);
}

struct freer {
    sc_group *g;
    int rc;
    struct tu_gate got;
};

static void free_group(void *arg, int rc, const sc_result *r)
{
    (void)rc;
    (void)r;
    struct freer *x = arg;
    x->rc = sc_free(x->g);
    tu_gate_raise(&x->got, 1);
}

/* The header lets a done callback call into the kit: sc_free from it, on
 * a synchronous leader's thread, must not leave the leader's RETURN to
 * read the freed group. (ASan, in make race, sees it if it does.) */
static void a_done_callback_may_free_the_group(void)
{
    struct log l;
    struct tu_held f;
    flight_init(&f, traced_group(&l, false), 0);
    struct tu_caller lead;
    tu_held_start(&f, &lead, 0);
    struct freer x = {.g = f.g, .rc = 1};
    tu_gate_init(&x.got);
    CU_ASSERT_EQUAL(sc_do_async(f.g, "k", tu_held_fn, &f, free_group, &x), 0);
    tu_held_open(&f);
    tu_callers_join(&lead, 1, "the leader");
    tu_gate_expect(&x.got, 1, "the callback");
    CU_ASSERT_EQUAL(x.rc, 0); /* the group is gone */
    CU_ASSERT_EQUAL(lead.rc, 0);
    CU_ASSERT_EQUAL(l.at[l.n - 1].ev.kind, SC_EV_RETURN); /* told after */
    CU_ASSERT_TRUE(l.at[l.n - 1].ev.fresh);
    tu_gate_destroy(&x.got);
    tu_held_destroy(&f);
    pthread_mutex_destroy(&l.mu);
}

/* A hook that holds the asynchronous caller's RETURN until the last
 * synchronous follower has returned, and so has freed the record. */
struct late {
    struct log l;
    pthread_t leader; /* the thread of the first LEAD */
    bool led, held;
    struct tu_gate follower_back;
    char key[16]; /* what the held RETURN said its key was */
};

static void hold_async_return(const sc_event *ev, void *ctx)
{
    struct late *x = ctx;
    record(ev, &x->l);
    pthread_mutex_lock(&x->l.mu);
    if (ev->kind == SC_EV_LEAD && !x->led) {
        x->leader = ev->thread;
        x->led = true;
    }
    bool on_leader = x->led && pthread_equal(ev->thread, x->leader);
    bool hold = ev->kind == SC_EV_RETURN && on_leader && !ev->fresh;
    pthread_mutex_unlock(&x->l.mu);
    if (ev->kind == SC_EV_RETURN && !on_leader)
        tu_gate_raise(&x->follower_back, 1);
    if (hold) {
        x->held = tu_gate_wait(&x->follower_back, 1);
        snprintf(x->key, sizeof x->key, "%s", ev->key); /* still valid? */
    }
}

static void async_waiter_keeps_its_own_key(void)
{
    static struct late x; /* large */
    memset(&x, 0, sizeof x);
    pthread_mutex_init(&x.l.mu, NULL);
    tu_gate_init(&x.follower_back);
    sc_options o = {.trace = hold_async_return, .trace_ctx = &x};
    struct tu_held f;
    flight_init(&f, sc_new_with(&o), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f.g);
    struct tu_caller lead = {.h = &f}, follow = {.h = &f};
    tu_caller_lead(&lead);
    struct answer a = {.rc = -1};
    tu_gate_init(&a.got);
    CU_ASSERT_EQUAL(sc_do_async(f.g, "k", tu_held_fn, &f, answered, &a), 0);
    tu_callers_park(&follow, 1);
    tu_held_open(&f);
    tu_callers_join(&lead, 1, "the leader");
    tu_callers_join(&follow, 1, "the follower");
    tu_gate_expect(&a.got, 1, "the answer");
    CU_ASSERT_TRUE(x.held); /* the follower returned first */
    CU_ASSERT_STRING_EQUAL(x.key, "k");
    CU_ASSERT_EQUAL(a.rc, 0);
    tu_gate_destroy(&a.got);
    tu_gate_destroy(&x.follower_back);
    tu_held_destroy(&f);
    tu_free_group(f.g);
    pthread_mutex_destroy(&x.l.mu);
}

int main(void)
{
    static const struct tu_test tests[] = {
        {"a lone leader reports its whole way",
         alone_leader_reports_its_whole_way},
        {"followers wake after their flight's DONE", followers_wake_after_done},
        {"an error is reported where it happens",
         an_error_is_reported_where_it_happens},
        {"a timed-out follower says so", a_timed_out_follower_says_so},
        {"sc_forget deletes, the flight's end does not again",
         forget_deletes_once},
        {"a hand-off makes a follower lead", a_handoff_makes_a_follower_lead},
        {"-EDEADLK names the flight it would wait for",
         edeadlk_names_the_flight},
        {"an async RETURN comes with the answer",
         async_return_comes_with_the_answer},
        {"a done callback may free the group",
         a_done_callback_may_free_the_group},
        {"an async caller's RETURN keeps its own key",
         async_waiter_keeps_its_own_key},
        {NULL, NULL},
    };
    return tu_run_suite("trace", tests);
}
