/*
 * window.c - a flight ends when its leader publishes, not when fn returns.
 *
 *   make build/tests/window && build/tests/window [ROUNDS]
 *
 * Between the return of fn and the critical section in which the leader
 * stores the result and deletes the key, the flight is still in the map: a
 * caller that arrives then joins it and shares a result computed before it
 * called. The book (chapter 1, exercise 4) asks how often.
 *
 * The port: in each round a leader's fn announces, as its last statement,
 * that it is returning, and a second thread calls for the same key as soon
 * as it sees that. The program counts the rounds in which the second caller
 * joined the flight. The engine: a trace hook holds the leader at FN_RETURN
 * until the second caller has joined, so it joins every time; the program
 * fails if it ever leads instead.
 */
#define _POSIX_C_SOURCE 200809L
#include "sharedcalls.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_long returning = -1; /* the round whose fn is returning */
static pthread_barrier_t round_start;
static long rounds = 20000;

static int fn_leader(void *arg, void **val)
{
    long round = *(long *)arg;
    *val = (void *)(intptr_t)1;
    atomic_store_explicit(&returning, round, memory_order_release);
    return 0;
}

static int fn_late(void *arg, void **val)
{
    (void)arg;
    *val = (void *)(intptr_t)2;
    return 0;
}

static sc_group *port;
static long joined_port; /* rounds in which the late caller joined */

static void *late_port(void *arg)
{
    (void)arg;
    for (long round = 0; round < rounds; round++) {
        pthread_barrier_wait(&round_start);
        while (atomic_load_explicit(&returning, memory_order_acquire) != round)
            ;
        void *v = NULL;
        bool fresh = true;
        if (sc_do_ex(port, "k", fn_late, NULL, &v, &fresh) == 0 && !fresh)
            joined_port++;
        pthread_barrier_wait(&round_start);
    }
    return NULL;
}

/* The engine: the hook makes the window wide and the join certain. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool fn_returned, late_joined;

static void hook(const sc_event *ev, void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&mu);
    if (ev->kind == SC_EV_FN_RETURN) { /* the leader, no group lock held */
        fn_returned = true;
        pthread_cond_broadcast(&cv);
        while (!late_joined)
            pthread_cond_wait(&cv, &mu);
    } else if (ev->kind == SC_EV_JOIN) { /* the late caller, lock held */
        late_joined = true;
        pthread_cond_broadcast(&cv);
    }
    pthread_mutex_unlock(&mu);
}

static sc_group *engine;
static sc_result late_result;

static void *late_engine(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!fn_returned)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    if (sc_do_result(engine, "k", fn_late, NULL, &late_result) != 0)
        late_result.fresh = true; /* counts as a failure below */
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        rounds = strtol(argv[1], NULL, 10);
    if (rounds < 1)
        rounds = 1;

    port = sc_new();
    pthread_t t;
    if (port == NULL || pthread_barrier_init(&round_start, NULL, 2) != 0 ||
        pthread_create(&t, NULL, late_port, NULL) != 0)
        return 1;
    for (long round = 0; round < rounds; round++) {
        pthread_barrier_wait(&round_start);
        void *v = NULL;
        sc_do(port, "k", fn_leader, &round, &v);
        pthread_barrier_wait(&round_start);
    }
    pthread_join(t, NULL);
    sc_free(port);
    printf("port: a caller that came as fn returned joined its flight in "
           "%ld of %ld rounds\n",
           joined_port, rounds);

    sc_options o = {.trace = hook};
    engine = sc_new_with(&o);
    long zero = 0;
    void *v = NULL;
    if (engine == NULL || pthread_create(&t, NULL, late_engine, NULL) != 0)
        return 1;
    sc_do(engine, "k", fn_leader, &zero, &v);
    pthread_join(t, NULL);
    sc_free(engine);
    bool ok = !late_result.fresh && late_result.val == (void *)(intptr_t)1;
    printf("engine: held between fn's return and publishing, the late "
           "caller %s\n",
           ok ? "joined the flight and got its value" : "did NOT join");
    return ok ? 0 : 1;
}
