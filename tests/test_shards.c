/*
 * test_shards.c - the shards option of sc_options: a group split into
 * maps of its own, each with its own lock, behaves as one group.
 */
#define _POSIX_C_SOURCE 200809L

#include "testutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

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

/* A shard's map (src/map.h) under many flights at once: nested calls hold
 * KEYS keys in progress, so the map outgrows its inline slots into tables
 * on the heap, with runs of taken slots that probing walks. At the bottom,
 * the keys are forgotten in a scrambled order; after each one, every key
 * still held must be found (its leader is this thread: -EDEADLK) and every
 * forgotten one must not (-ENOENT). A deletion that left a hole in a run
 * would lose a key after it. */
enum { KEYS = 200 };

struct nested {
    sc_group *g;
    char keys[KEYS][8];
    int level;
    int lost; /* keys the map failed to find, or found after forgetting */
};

static int forget_all(struct nested *n)
{
    bool gone[KEYS] = {false};
    for (int k = 0; k < KEYS; k++) {
        int victim = (k * 73 + 11) % KEYS; /* 73 is prime to KEYS */
        n->lost += sc_forget(n->g, n->keys[victim]) != 0;
        gone[victim] = true;
        for (int i = 0; i < KEYS; i++) {
            void *v;
            int rc = gone[i] ? sc_forget(n->g, n->keys[i])
                             : sc_do(n->g, n->keys[i], constant, NULL, &v);
            n->lost += rc != (gone[i] ? -ENOENT : -EDEADLK);
        }
    }
    return 0;
}

static int hold_next(void *arg, void **val)
{
    struct nested *n = arg;
    *val = NULL;
    if (++n->level == KEYS)
        return forget_all(n);
    return sc_do(n->g, n->keys[n->level], hold_next, n, val);
}

static void map_finds_every_key_after_any_deletion(void)
{
    for (unsigned shards = 1; shards <= 16; shards += 15) {
        struct nested n = {.g = sc_new_with(&(sc_options){.shards = shards})};
        CU_ASSERT_PTR_NOT_NULL_FATAL(n.g);
        for (int i = 0; i < KEYS; i++)
            snprintf(n.keys[i], sizeof n.keys[i], "m%d", i);
        void *v;
        CU_ASSERT_EQUAL(sc_do(n.g, n.keys[0], hold_next, &n, &v), 0);
        CU_ASSERT_EQUAL(n.level, KEYS);
        CU_ASSERT_EQUAL(n.lost, 0);
        struct sc_stats s;
        CU_ASSERT_EQUAL(sc_stats(n.g, &s), 0);
        CU_ASSERT_EQUAL(s.flights, KEYS);
        CU_ASSERT_EQUAL(s.in_flight, 0);
        for (int i = 0; i < KEYS; i++) /* all ended, none left behind */
            CU_ASSERT_EQUAL(sc_forget(n.g, n.keys[i]), -ENOENT);
        tu_free_group(n.g);
    }
}

int main(void)
{
    static const struct tu_test tests[] = {
        {"shards behave as one group", shards_behave_as_one_group},
        {"the map finds every key after any deletion",
         map_finds_every_key_after_any_deletion},
        {NULL, NULL},
    };
    return tu_run_suite("shards (sc_new_with)", tests);
}
