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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

static void map_growth_fails_cleanly(void)
{
    struct nest n = {.g = sc_new()};
    for (int i = 0; i < DEPTH; i++)
        snprintf(n.keys[i], sizeof n.keys[i], "k%d", i);
    long base = live_blocks(), points = 0;
    int rc;
    void *v;
    for (;; points++) {
        n.level = 0;
        arm(points);
        rc = sc_do(n.g, n.keys[0], descend, &n, &v);
        disarm();
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
struct held {
    sc_group *g;
    struct tu_gate entered, release;
};

static int hold(void *arg, void **val)
{
    struct held *h = arg;
    tu_gate_raise(&h->entered, 1);
    tu_gate_expect(&h->release, 1, "the test never released fn");
    *val = "held";
    return 0;
}

struct caller {
    struct held *h;
    int rc;
    void *val;
};

static void *call_held(void *arg)
{
    struct caller *c = arg;
    c->rc = sc_do(c->h->g, "held", hold, c->h, &c->val);
    return NULL;
}

static void failures_leave_other_flights_alone(void)
{
    enum { N = 4 };
    struct held h = {.g = sc_new()};
    tu_gate_init(&h.entered);
    tu_gate_init(&h.release);
    long base = live_blocks();
    struct caller c[N];
    struct tu_thread t[N];
    tu_parked_reset();
    for (int i = 0; i < N; i++) {
        c[i] = (struct caller){.h = &h};
        tu_start(&t[i], call_held, &c[i]);
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
    tu_gate_raise(&h.release, 1);
    for (int i = 0; i < N; i++) {
        tu_join(&t[i], "caller of the held flight");
        CU_ASSERT_EQUAL(c[i].rc, 0);
        CU_ASSERT_STRING_EQUAL(c[i].val, "held");
    }
    CU_ASSERT_EQUAL(live_blocks(), base);
    tu_free_group(h.g);
    tu_gate_destroy(&h.entered);
    tu_gate_destroy(&h.release);
}

/* Semantic 6: the record outlives its leader while a follower has yet to
 * read it, and the last reader frees it. */
static void last_reader_frees_the_record(void)
{
    struct held h = {.g = sc_new()};
    tu_gate_init(&h.entered);
    tu_gate_init(&h.release);
    long base = live_blocks();
    struct caller lead = {.h = &h}, follow = {.h = &h};
    tu_parked_reset();
    struct tu_thread tl;
    tu_start(&tl, call_held, &lead);
    tu_gate_expect(&h.entered, 1, "no leader");
    struct tu_thread tf;
    tu_start(&tf, call_held, &follow);
    tu_parked_expect(1, "follower never parked");
    tu_hold_wakers();
    tu_gate_raise(&h.release, 1);
    tu_join(&tl, "leader");
    tu_wakers_expect(1, "follower never woke");
    CU_ASSERT_EQUAL(live_blocks(), base + 1); /* the record, and only it */
    tu_release_wakers();
    tu_join(&tf, "follower");
    CU_ASSERT_EQUAL(lead.rc, 0);
    CU_ASSERT_EQUAL(follow.rc, 0);
    CU_ASSERT_PTR_EQUAL(follow.val, lead.val);
    CU_ASSERT_EQUAL(live_blocks(), base);
    tu_free_group(h.g);
    tu_gate_destroy(&h.entered);
    tu_gate_destroy(&h.release);
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
        {NULL, NULL},
    };
    return tu_run_suite("allocation failure and ownership", tests);
}
