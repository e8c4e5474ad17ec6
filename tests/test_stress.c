/*
 * test_stress.c - many threads, many calls, a few hundred keys; then every
 * flight is checked: fn ran once for it, exactly one caller was fresh,
 * every caller got that flight's value and code for its own key, and no
 * caller got a flight that had published its result before the caller
 * called (semantic 2: no caching).
 *
 * Sizes come from the environment, so the race checks can run it small:
 *   SC_STRESS_THREADS (32)  SC_STRESS_CALLS (200000)  SC_STRESS_KEYS (256)
 *   SC_WATCHDOG_S (TU_TIMEOUT_S): how long without progress is a hang
 *
 * Nothing here is shared but through locks: each thread logs its own calls,
 * a flight's id names the thread that led it, and the main thread checks
 * the logs after the joins. A watchdog fails the run when no call completes
 * for SC_WATCHDOG_S seconds (a lost wake-up shows up only as a hang).
 */
#include "testutil.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* A value carries its flight (leader thread, leader's sequence number) and
 * its key, so a caller can tell whose result it got. */
#define SEQ_BITS 24
#define KEY_BITS 16

struct entry {
    uint64_t value;   /* what the caller received */
    uint64_t entered; /* the clock when it called */
    int rc;
    bool fresh;
};

struct worker {
    struct stress *s;
    unsigned id;
    uint32_t rng;
    uint64_t flights; /* fns this thread ran as a leader */
    size_t ncalls;
    struct entry *log;
    uint64_t *published;  /* per flight it led: the clock at publication */
    uint64_t unpublished; /* the flight whose fn just returned, if pending */
    bool pending;
    unsigned *keys; /* the key of each call */
    unsigned overlaps;
};

struct stress {
    sc_group *g;
    unsigned nkeys;
    char (*keys)[16];
    pthread_mutex_t *running; /* per key: held while a fn for it runs */
    pthread_mutex_t progress_mu;
    size_t progress;
    pthread_mutex_t clock_mu; /* a logical clock orders calls and results */
    uint64_t clock;
};

static uint64_t tick(struct stress *s)
{
    pthread_mutex_lock(&s->clock_mu);
    uint64_t now = ++s->clock;
    pthread_mutex_unlock(&s->clock_mu);
    return now;
}

/* This thread's worker. A flight whose fn has returned is published by its
 * leader's first broadcast after that (seen through testutil's seam). */
static _Thread_local struct worker *self;

static void on_publish(void)
{
    if (self == NULL || !self->pending)
        return;
    self->pending = false;
    self->published[self->unpublished] = tick(self->s);
}

/* The same for the full engine, told by its trace hook: the leader reports
 * DONE (or HANDOFF, its failed run's end) under the lock, as the port does. */
static void on_event(const sc_event *ev, void *ctx)
{
    (void)ctx;
    if (ev->kind == SC_EV_DONE || ev->kind == SC_EV_HANDOFF)
        on_publish();
}

static unsigned env_or(const char *name, unsigned fallback)
{
    const char *s = getenv(name);
    return s != NULL && atoi(s) > 0 ? (unsigned)atoi(s) : fallback;
}

struct call_ctx {
    struct worker *w;
    unsigned key;
};

/* One flight's work. The trylock proves that no other fn for the key is
 * running; the yields widen the window in which followers can join. */
static int leader_fn(void *arg, void **val)
{
    struct call_ctx *c = arg;
    struct worker *w = c->w;
    pthread_mutex_t *running = &w->s->running[c->key];
    bool alone = pthread_mutex_trylock(running) == 0;
    w->overlaps += !alone;
    for (int i = 0; i < 3; i++)
        sched_yield();
    if (alone)
        pthread_mutex_unlock(running);
    uint64_t seq = w->flights++;
    w->unpublished = seq;
    w->pending = true;
    uint64_t v =
        ((uint64_t)w->id << (SEQ_BITS + KEY_BITS)) | (seq << KEY_BITS) | c->key;
    *val = (void *)(uintptr_t)v;
    return seq % 7 == 0 ? EIO : 0; /* shared, or handed on */
}

static void *work(void *arg)
{
    struct worker *w = arg;
    self = w;
    for (size_t i = 0; i < w->ncalls; i++) {
        w->rng ^= w->rng << 13;
        w->rng ^= w->rng >> 17;
        w->rng ^= w->rng << 5;
        struct call_ctx c = {w, w->rng % w->s->nkeys};
        void *v = NULL;
        struct entry *e = &w->log[i];
        w->keys[i] = c.key;
        e->entered = tick(w->s);
        e->rc =
            sc_do_ex(w->s->g, w->s->keys[c.key], leader_fn, &c, &v, &e->fresh);
        e->value = (uint64_t)(uintptr_t)v;
        if ((i & 255) == 255 || i + 1 == w->ncalls) {
            pthread_mutex_lock(&w->s->progress_mu);
            w->s->progress += (i & 255) + 1;
            pthread_mutex_unlock(&w->s->progress_mu);
        }
    }
    return NULL;
}

static size_t progress(struct stress *s)
{
    pthread_mutex_lock(&s->progress_mu);
    size_t n = s->progress;
    pthread_mutex_unlock(&s->progress_mu);
    return n;
}

/* Joins t, failing the run if no call completes for `limit` seconds. */
static void join_watching(struct stress *s, struct tu_thread *t, unsigned limit)
{
    size_t seen = progress(s);
    time_t last = time(NULL);
    while (!tu_join_within(t, 100)) {
        size_t now = progress(s);
        if (now != seen) {
            seen = now;
            last = time(NULL);
        } else if (time(NULL) - last >= (time_t)limit) {
            fprintf(stderr, "\nHANG: no call completed in %u s (%zu done)\n",
                    limit, now);
            abort();
        }
    }
}

/*
 * An engine group's counters after a stress (BUG 1's invariant): every
 * caller ran fn (a flight: a leader, or a follower that took a failed
 * flight over), shared another caller's run, or timed out (none here: no
 * deadlines). cancelled stays out of the sum, as a cancelled leader counts
 * as a flight and as cancelled both; nothing is cancelled here, so it is 0.
 */
static void counters_add_up(sc_group *g, size_t calls, size_t runs)
{
    struct sc_stats st;
    if (sc_stats(g, &st) == -ENOTSUP)
        return; /* the port keeps no counters */
    printf("(stats: %llu callers, %llu flights, %llu shared, %llu timed out, "
           "%llu cancelled) ",
           st.callers, st.flights, st.shared, st.timed_out, st.cancelled);
    CU_ASSERT_EQUAL(st.callers, calls);
    CU_ASSERT_EQUAL(st.flights, runs);
    CU_ASSERT_EQUAL(st.callers, st.flights + st.shared + st.timed_out);
    CU_ASSERT_EQUAL(st.cancelled, 0);
    CU_ASSERT_EQUAL(st.in_flight, 0);
}

/* stamps: the group tells when a flight is published (the port's
 * broadcast seam, or the engine's DONE or HANDOFF), so stale results can be
 * counted; without a hook the engine's followers take a faster path,
 * which is then stressed without that one check. */
static void stress(sc_group *g, bool stamps, unsigned nkeys)
{
    unsigned nthreads = env_or("SC_STRESS_THREADS", 32);
    unsigned ncalls = env_or("SC_STRESS_CALLS", 200000);
    struct stress s = {.g = g, .nkeys = env_or("SC_STRESS_KEYS", nkeys)};
    CU_ASSERT_FATAL(s.g != NULL && s.nkeys < (1u << KEY_BITS) &&
                    nthreads < 256 && ncalls / nthreads < (1u << SEQ_BITS));
    s.keys = calloc(s.nkeys, sizeof *s.keys);
    s.running = calloc(s.nkeys, sizeof *s.running);
    struct worker *w = calloc(nthreads, sizeof *w);
    struct tu_thread *t = calloc(nthreads, sizeof *t);
    CU_ASSERT_FATAL(s.keys && s.running && w && t);
    pthread_mutex_init(&s.progress_mu, NULL);
    pthread_mutex_init(&s.clock_mu, NULL);
    for (unsigned k = 0; k < s.nkeys; k++) {
        snprintf(s.keys[k], sizeof s.keys[k], "key%u", k);
        pthread_mutex_init(&s.running[k], NULL);
    }
    for (unsigned i = 0; i < nthreads; i++) {
        w[i] = (struct worker){.s = &s, .id = i, .rng = 2463534242u + i};
        w[i].ncalls = ncalls / nthreads + (i < ncalls % nthreads);
        w[i].log = calloc(w[i].ncalls, sizeof *w[i].log);
        w[i].keys = calloc(w[i].ncalls, sizeof *w[i].keys);
        w[i].published = calloc(w[i].ncalls, sizeof *w[i].published);
        CU_ASSERT_FATAL(w[i].log && w[i].keys && w[i].published);
    }
    tu_on_broadcast(on_publish);
    for (unsigned i = 0; i < nthreads; i++)
        tu_start(&t[i], work, &w[i]);
    for (unsigned i = 0; i < nthreads; i++)
        join_watching(&s, &t[i], env_or("SC_WATCHDOG_S", TU_TIMEOUT_S));

    /* Tally: for each flight, its callers and its fresh callers. */
    uint32_t **callers = calloc(nthreads, sizeof *callers);
    uint32_t **fresh = calloc(nthreads, sizeof *fresh);
    CU_ASSERT_FATAL(callers && fresh);
    size_t flights = 0, calls = 0, bad_value = 0, bad_code = 0;
    size_t bad_fresh = 0, overlaps = 0, stale = 0;
    tu_on_broadcast(NULL);
    for (unsigned i = 0; i < nthreads; i++) {
        callers[i] = calloc(w[i].flights + 1, sizeof **callers);
        fresh[i] = calloc(w[i].flights + 1, sizeof **fresh);
        CU_ASSERT_FATAL(callers[i] && fresh[i]);
        flights += w[i].flights;
        overlaps += w[i].overlaps;
    }
    for (unsigned i = 0; i < nthreads; i++)
        for (size_t j = 0; j < w[i].ncalls; j++) {
            struct entry *e = &w[i].log[j];
            uint64_t leader = e->value >> (SEQ_BITS + KEY_BITS);
            uint64_t seq = (e->value >> KEY_BITS) & ((1u << SEQ_BITS) - 1);
            if (leader >= nthreads || seq >= w[leader].flights) {
                bad_value++;
                continue;
            }
            calls++;
            callers[leader][seq]++;
            fresh[leader][seq] += e->fresh;
            bad_fresh += e->fresh && leader != i; /* fresh: ran fn itself */
            bad_code += e->rc != (seq % 7 == 0 ? EIO : 0);
            bad_value += (e->value & ((1u << KEY_BITS) - 1)) != w[i].keys[j];
            uint64_t published = w[leader].published[seq];
            stale += published == 0 || published < e->entered;
        }
    size_t orphan = 0, not_one_fresh = 0;
    for (unsigned i = 0; i < nthreads; i++)
        for (uint64_t f = 0; f < w[i].flights; f++) {
            orphan += callers[i][f] == 0;
            not_one_fresh += fresh[i][f] != 1;
        }
    if (!stamps)
        stale = 0; /* nothing stamped publications */
    printf("(%u threads, %zu calls, %zu flights, %zu shared, %zu stale) ",
           nthreads, calls, flights, calls - flights, stale);
    CU_ASSERT_EQUAL(calls, ncalls);
    CU_ASSERT_EQUAL(bad_value, 0); /* every value is its flight's and key's */
    CU_ASSERT_EQUAL(bad_code, 0);
    CU_ASSERT_EQUAL(overlaps, 0);      /* one flight per key at a time */
    CU_ASSERT_EQUAL(orphan, 0);        /* every flight had its leader */
    CU_ASSERT_EQUAL(not_one_fresh, 0); /* and only one */
    CU_ASSERT_EQUAL(bad_fresh, 0);
    CU_ASSERT_EQUAL(stale, 0); /* no result older than its caller's call */
    if (nthreads >= 4)         /* followers did share: the test has teeth */
        CU_ASSERT(calls > flights);
    counters_add_up(s.g, calls, flights);
    tu_free_group(s.g);

    for (unsigned i = 0; i < nthreads; i++) {
        free(callers[i]);
        free(fresh[i]);
        free(w[i].log);
        free(w[i].keys);
        free(w[i].published);
    }
    for (unsigned k = 0; k < s.nkeys; k++)
        pthread_mutex_destroy(&s.running[k]);
    pthread_mutex_destroy(&s.progress_mu);
    pthread_mutex_destroy(&s.clock_mu);
    free(callers);
    free(fresh);
    free(s.keys);
    free(s.running);
    free(w);
    free(t);
}

static void stress_port(void)
{
    stress(sc_new(), true, 256);
}

static void stress_sharded_engine(void)
{
    sc_options o = {.shards = 8, .trace = on_event};
    stress(sc_new_with(&o), true, 256);
}

static void stress_quiet_engine(void)
{
    stress(sc_new_with(NULL), false, 256);
}

/* With hand-off, a flight whose run fails (one in seven) passes to one of
 * its followers, which runs fn again: every run still has one fresh caller,
 * its own value and code. BUG 1: the counters must still add up. Sixteen
 * keys, so that most flights have followers to hand a failure to: with 256,
 * hand-offs are rare, and today's miscount does not show in every run. */
static void stress_sharded_engine_handoff(void)
{
    sc_options o = {.shards = 8, .trace = on_event, .handoff = true};
    stress(sc_new_with(&o), true, 16);
}

static void stress_quiet_engine_handoff(void)
{
    sc_options o = {.handoff = true};
    stress(sc_new_with(&o), false, 16);
}

int main(void)
{
    /* The bug zoo builds its mistakes into the port alone: it sets
     * SC_STRESS_PORT_ONLY so that the engine's runs do not dilute them. */
    static const struct tu_test port_only[] = {
        {"port: every flight has fn once, one fresh caller, its result",
         stress_port},
        {NULL, NULL},
    };
    if (getenv("SC_STRESS_PORT_ONLY") != NULL)
        return tu_run_suite("stress", port_only);
    static const struct tu_test tests[] = {
        {"port: every flight has fn once, one fresh caller, its result",
         stress_port},
        {"engine, 8 shards: the same; its counters add up",
         stress_sharded_engine},
        {"engine, no hooks: the same but stale results; counters add up",
         stress_quiet_engine},
        {"BUG 1 invariant, handoff, 8 shards: the same; counters add up",
         stress_sharded_engine_handoff},
        {"BUG 1 invariant, handoff, no hooks: the same; counters add up",
         stress_quiet_engine_handoff},
        {NULL, NULL},
    };
    return tu_run_suite("stress", tests);
}
