/*
 * test_memory.c - every resource the kit acquires can fail, and no memory
 * outlives its owner.
 *
 * This suite links with ld's --wrap for malloc, calloc, free,
 * pthread_mutex_init and pthread_cond_init (see the Makefile; the compiler
 * may turn a malloc and a memset into one calloc). The wrappers count the blocks alive,
 * and on the calling thread, once armed, make the n-th acquisition fail as
 * it would when memory runs out. Each test fails acquisition n = 0, 1, 2, ...
 * until a call gets through, so every failure point on the path is tried.
 */
#include "testutil.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void __real_free(void *p);
int __real_pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a);
int __real_pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void __wrap_free(void *p);
int __wrap_pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a);
int __wrap_pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a);

static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static long live; /* blocks from malloc not yet freed, all threads */

static _Thread_local long fail_at = -1; /* acquisition to fail; -1: none */
static _Thread_local long acquired;     /* acquisitions since arming */

static void arm(long n)
{
    fail_at = n;
    acquired = 0;
}

static void disarm(void)
{
    fail_at = -1;
}

static bool acquisition_fails(void)
{
    return fail_at >= 0 && acquired++ == fail_at;
}

static long live_blocks(void)
{
    pthread_mutex_lock(&live_mu);
    long n = live;
    pthread_mutex_unlock(&live_mu);
    return n;
}

static void live_add(long d)
{
    pthread_mutex_lock(&live_mu);
    live += d;
    pthread_mutex_unlock(&live_mu);
}

static void *counted(void *p)
{
    if (p != NULL)
        live_add(1);
    return p;
}

void *__wrap_malloc(size_t n)
{
    if (acquisition_fails()) {
        errno = ENOMEM;
        return NULL;
    }
    return counted(__real_malloc(n));
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (acquisition_fails()) {
        errno = ENOMEM;
        return NULL;
    }
    return counted(__real_calloc(n, size));
}

void __wrap_free(void *p)
{
    if (p != NULL)
        live_add(-1);
    __real_free(p);
}

int __wrap_pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a)
{
    return acquisition_fails() ? ENOMEM : __real_pthread_mutex_init(m, a);
}

int __wrap_pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a)
{
    return acquisition_fails() ? ENOMEM : __real_pthread_cond_init(c, a);
}

static int count_run(void *arg, void **val)
{
    (*(int *)arg)++;
    *val = "ran";
    return 0;
}

/* sc_new: NULL with errno ENOMEM at each failure point, nothing leaked. */
static void sc_new_fails_cleanly(void)
{
    long base = live_blocks(), points = 0;
    sc_group *g;
    for (;; points++) {
        arm(points);
        errno = 0;
        g = sc_new();
        disarm();
        if (g != NULL)
            break;
        CU_ASSERT_EQUAL(errno, ENOMEM);
        CU_ASSERT_EQUAL(live_blocks(), base);
    }
    printf("(%ld failure points) ", points);
    CU_ASSERT(points >= 2); /* the group and its mutex */
    tu_free_group(g);
    CU_ASSERT_EQUAL(live_blocks(), base);
}

/* A leader's call: -ENOMEM at each failure point with fn not run, *val
 * untouched, nothing leaked and the group still usable. */
static void leader_fails_cleanly(void)
{
    sc_group *g = sc_new();
    long base = live_blocks(), points = 0;
    int runs = 0, rc;
    void *v;
    for (;; points++) {
        v = "untouched";
        arm(points);
        rc = sc_do(g, "k", count_run, &runs, &v);
        disarm();
        if (rc != -ENOMEM)
            break;
        CU_ASSERT_EQUAL(runs, 0);
        CU_ASSERT_STRING_EQUAL(v, "untouched");
        CU_ASSERT_EQUAL(live_blocks(), base);
    }
    printf("(%ld failure points) ", points);
    CU_ASSERT(points >= 4); /* record, its condvar, map table, buckets */
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(runs, 1);
    CU_ASSERT_STRING_EQUAL(v, "ran");
    CU_ASSERT_EQUAL(live_blocks(), base); /* semantic 6: record freed */
    tu_free_group(g);
}

/* Nested flights keep DEPTH keys in the map at once, so the map grows its
 * bucket array on the way down; a failed growth must undo its insert. */
enum { DEPTH = 300 };

struct nest {
    sc_group *g;
    char keys[DEPTH][8];
    int level;
};

static int descend(void *arg, void **val)
{
    struct nest *n = arg;
    if (++n->level == DEPTH)
        return 0;
    return sc_do(n->g, n->keys[n->level], descend, n, val);
}

static void name_keys(struct nest *n)
{
    for (int i = 0; i < DEPTH; i++)
        snprintf(n->keys[i], sizeof n->keys[i], "k%d", i);
}

/* The nested calls from the top, with allocation `point` failing. */
static int descend_failing(struct nest *n, long point, void **v)
{
    n->level = 0;
    arm(point);
    int rc = sc_do(n->g, n->keys[0], descend, n, v);
    disarm();
    return rc;
}

static void map_growth_fails_cleanly(void)
{
    struct nest n = {.g = sc_new()};
    name_keys(&n);
    long base = live_blocks(), points = 0;
    int rc;
    void *v;
    for (;; points++) {
        rc = descend_failing(&n, points, &v);
        if (rc != -ENOMEM)
            break;
        CU_ASSERT_EQUAL(live_blocks(), base);
    }
    printf("(%ld failure points) ", points);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(n.level, DEPTH);
    /* two per record, two for the map: anything more is the map growing */
    CU_ASSERT(points > 2L * DEPTH + 2);
    CU_ASSERT_EQUAL(live_blocks(), base);
    tu_free_group(n.g);
}

/* While a flight with followers is in progress, another key's allocation
 * failures leave it alone; when the last follower has read the result,
 * the record and the map's memory are gone. */
static void *the_word_held(struct tu_held *h, intptr_t run)
{
    (void)h;
    (void)run;
    return "held";
}

/* A flight on key "held" of a port group, held in fn until the test lets
 * it go, whose every run's value is "held". */
static void held_init(struct tu_held *h)
{
    tu_held_init(h, sc_new(), "held");
    h->via = TU_VIA_DO_EX;
    h->make = the_word_held;
}

static void failures_leave_other_flights_alone(void)
{
    enum { N = 4 };
    struct tu_held h;
    held_init(&h);
    long base = live_blocks();
    struct tu_caller c[N];
    tu_parked_reset();
    for (int i = 0; i < N; i++) {
        c[i] = (struct tu_caller){.h = &h};
        tu_caller_start(&c[i]);
    }
    tu_parked_expect(N - 1, "followers never parked");
    int runs = 0;
    void *v;
    for (long n = 0; n < 2; n++) { /* the record and its condvar */
        arm(n);
        CU_ASSERT_EQUAL(sc_do(h.g, "other", count_run, &runs, &v), -ENOMEM);
        disarm();
    }
    CU_ASSERT_EQUAL(runs, 0);
    CU_ASSERT_EQUAL(sc_free(h.g), -EBUSY);
    tu_held_open(&h);
    tu_callers_join(c, N, "caller of the held flight");
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(c[i].rc, 0);
        CU_ASSERT_STRING_EQUAL(c[i].r.val, "held");
    }
    CU_ASSERT_EQUAL(live_blocks(), base);
    tu_free_group(h.g);
    tu_held_destroy(&h);
}

/* Semantic 6: the record outlives its leader while a follower has yet to
 * read it, and the last reader frees it. */
static void last_reader_frees_the_record(void)
{
    struct tu_held h;
    held_init(&h);
    long base = live_blocks();
    struct tu_caller c[2];
    tu_held_start(&h, c, 1);
    tu_hold_wakers();
    tu_held_open(&h);
    tu_callers_join(&c[0], 1, "leader");
    tu_wakers_expect(1, "follower never woke");
    CU_ASSERT_EQUAL(live_blocks(), base + 1); /* the record, and only it */
    tu_release_wakers();
    tu_callers_join(&c[1], 1, "follower");
    CU_ASSERT_EQUAL(c[0].rc, 0);
    CU_ASSERT_EQUAL(c[1].rc, 0);
    CU_ASSERT_PTR_EQUAL(c[1].r.val, c[0].r.val);
    CU_ASSERT_EQUAL(live_blocks(), base);
    tu_free_group(h.g);
    tu_held_destroy(&h);
}

/* The engine: a leader that nobody joins keeps its record on its stack
 * and finds room in its shard's own slots, so its call allocates nothing
 * and cannot run out of memory. */
static void engine_leader_allocates_nothing(void)
{
    sc_group *g = sc_new_with(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    long base = live_blocks();
    int runs = 0;
    void *v = "untouched";
    arm(0); /* the first allocation of this thread fails */
    CU_ASSERT_EQUAL(sc_do(g, "k", count_run, &runs, &v), 0);
    disarm();
    CU_ASSERT_EQUAL(runs, 1);
    CU_ASSERT_STRING_EQUAL(v, "ran");
    CU_ASSERT_EQUAL(live_blocks(), base);
    tu_free_group(g);
}

/* Nested flights on an engine group of one shard keep DEPTH keys in its
 * map at once: the map goes from the shard's first slot to ever larger
 * tables.
 * Each growth that fails fails its leader's call with -ENOMEM, and every
 * call above it returns the error; nothing leaks, and the group works. */
static void engine_map_growth_fails_cleanly(void)
{
    struct nest n;
    name_keys(&n);
    long base = live_blocks(), points = 0;
    int rc;
    void *v;
    for (;; points++) {
        n.g = sc_new_with(NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(n.g);
        rc = descend_failing(&n, points, &v);
        if (rc != -ENOMEM)
            break;
        CU_ASSERT(n.level < DEPTH);
        n.level = 0; /* the group still works */
        CU_ASSERT_EQUAL(sc_do(n.g, n.keys[0], descend, &n, &v), 0);
        CU_ASSERT_EQUAL(n.level, DEPTH);
        tu_free_group(n.g);
        CU_ASSERT_EQUAL(live_blocks(), base);
    }
    printf("(%ld failure points) ", points);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(n.level, DEPTH);
    /* slot0, then tables of 8, 16, ... 512: 7 growths, no records */
    CU_ASSERT_EQUAL(points, 7);
    tu_free_group(n.g);
    CU_ASSERT_EQUAL(live_blocks(), base);
}

/* The first follower of a flight moves its record from the leader's stack
 * to the heap. If that allocation fails, the follower gets -ENOMEM and the
 * flight goes on for its leader, untouched; the next follower joins it. */
/* The RETURN events that carried -ENOMEM, and the flight they named. */
struct refused {
    pthread_mutex_t mu;
    int n;
    unsigned long flight;
};

static void note_refused(const sc_event *ev, void *ctx)
{
    struct refused *r = ctx;
    if (ev->kind != SC_EV_RETURN || ev->code != -ENOMEM)
        return;
    pthread_mutex_lock(&r->mu);
    r->n++;
    r->flight = ev->flight;
    pthread_mutex_unlock(&r->mu);
}

static void engine_follower_fails_cleanly(void)
{
    struct refused refused = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct tu_held h;
    tu_held_init(&h,
                 sc_new_with(&(sc_options){.trace = note_refused,
                                           .trace_ctx = &refused}),
                 "held");
    h.via = TU_VIA_DO_EX;
    h.make = the_word_held;
    long base = live_blocks();
    struct tu_caller c[2] = {{.h = &h}, {.h = &h}};
    tu_caller_lead(&c[0]);
    int runs = 0;
    void *v = "untouched";
    arm(0);
    CU_ASSERT_EQUAL(sc_do(h.g, "held", count_run, &runs, &v), -ENOMEM);
    disarm();
    CU_ASSERT_EQUAL(runs, 0);
    CU_ASSERT_STRING_EQUAL(v, "untouched");
    CU_ASSERT_EQUAL(live_blocks(), base);
    pthread_mutex_lock(&refused.mu);
    CU_ASSERT_EQUAL(refused.n, 1);
    CU_ASSERT_EQUAL(refused.flight, 0); /* it never joined the flight */
    pthread_mutex_unlock(&refused.mu);
    tu_callers_park(&c[1], 1); /* this one joins: the record moves */
    CU_ASSERT_EQUAL(live_blocks(), base + 1);
    tu_held_open(&h);
    tu_callers_join(c, 2, "caller of the held flight");
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(c[i].rc, 0);
        CU_ASSERT_STRING_EQUAL(c[i].r.val, "held");
    }
    struct sc_stats st;
    CU_ASSERT_EQUAL(sc_stats(h.g, &st), 0);
    CU_ASSERT_EQUAL(st.flights, 1);
    CU_ASSERT_EQUAL(st.shared, 1);
    /* the record stays as the shard's spare, for the next first follower */
    CU_ASSERT_EQUAL(live_blocks(), base + 1);
    tu_free_group(h.g);
    tu_held_destroy(&h);
    CU_ASSERT_EQUAL(live_blocks(), base - 1); /* the group itself went too */
}

/* The spare keeps a record for the next first follower, but not one made
 * for a key longer than the kit keeps (256 bytes): one long key must not
 * hold its memory for the group's life. */
static void engine_long_key_record_is_not_kept(void)
{
    static char long_key[300];
    memset(long_key, 'x', sizeof long_key - 1);
    for (int round = 0; round < 2; round++) {
        const char *key = round == 0 ? "short" : long_key;
        struct tu_held h;
        tu_held_init(&h, sc_new_with(NULL), key);
        h.via = TU_VIA_DO_EX;
        h.make = the_word_held;
        long base = live_blocks();
        struct tu_caller c[2];
        tu_held_start(&h, c, 1);
        CU_ASSERT_EQUAL(live_blocks(), base + 1); /* the moved record */
        tu_held_open(&h);
        tu_callers_join(c, 2, "caller of the held flight");
        CU_ASSERT_STRING_EQUAL(c[1].r.val, "held");
        /* kept as the spare for a short key, freed for the long one */
        CU_ASSERT_EQUAL(live_blocks(), base + (round == 0 ? 1 : 0));
        tu_free_group(h.g);
        tu_held_destroy(&h);
    }
}

/* sc_do_async: its waiter, its record and its kit thread's start can each
 * fail; each failure returns -ENOMEM with done never called. */
static atomic_int answered;

static void note_done(void *arg, int rc, const sc_result *r)
{
    (void)arg;
    (void)rc;
    (void)r;
    atomic_fetch_add(&answered, 1);
}

static void engine_async_fails_cleanly(void)
{
    long before = live_blocks();
    sc_group *g = sc_new_with(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    long base = live_blocks(), points = 0;
    int runs = 0, rc;
    for (;; points++) {
        arm(points);
        rc = sc_do_async(g, "k", count_run, &runs, note_done, NULL);
        disarm();
        if (rc != -ENOMEM)
            break;
        CU_ASSERT_EQUAL(atomic_load(&answered), 0);
        /* a record made and not started stays as the shard's spare */
        CU_ASSERT(live_blocks() == base || live_blocks() == base + 1);
    }
    printf("(%ld failure points) ", points);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(points >= 3); /* the waiter, the record, the kit thread's */
    CU_ASSERT_EQUAL(sc_drain(g), 0);
    CU_ASSERT_EQUAL(atomic_load(&answered), 1);
    CU_ASSERT_EQUAL(runs, 1);
    tu_free_group(g);
    CU_ASSERT_EQUAL(live_blocks(), before);
}

int main(void)
{
    static const struct tu_test tests[] = {
        {"sc_new fails cleanly at every point", sc_new_fails_cleanly},
        {"a leader fails cleanly at every point", leader_fails_cleanly},
        {"map growth fails cleanly at every point", map_growth_fails_cleanly},
        {"failures leave other flights alone; records die with the flight",
         failures_leave_other_flights_alone},
        {"the last reader frees the record", last_reader_frees_the_record},
        {"engine: a lone leader allocates nothing",
         engine_leader_allocates_nothing},
        {"engine: map growth fails cleanly at every point",
         engine_map_growth_fails_cleanly},
        {"engine: a first follower fails cleanly",
         engine_follower_fails_cleanly},
        {"engine: a long key's record is not kept as the spare",
         engine_long_key_record_is_not_kept},
        {"engine: sc_do_async fails cleanly at every point",
         engine_async_fails_cleanly},
        {NULL, NULL},
    };
    return tu_run_suite("allocation failure and ownership", tests);
}
