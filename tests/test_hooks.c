/*
 * test_hooks.c - the value hooks of sc_options (share and drop): every
 * caller of a flight owns what it receives, and the flight's own value is
 * dropped once. With hooks on asynchronous calls: test_async.c.
 *
 * A flight here is held inside fn until the test releases it (testutil's
 * tu_held); followers are known to be waiting through testutil's count of
 * parked threads.
 */
#define _POSIX_C_SOURCE 200809L

#include "testutil.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    static const struct tu_test tests[] = {
        {"hooks: every caller owns a reference", hooks_share_a_counted_value},
        {"hooks: every caller owns a copy", hooks_copy_a_string},
        {"hooks: share and drop come in pairs", hooks_come_in_pairs},
        {NULL, NULL},
    };
    return tu_run_suite("value hooks (sc_new_with)", tests);
}
