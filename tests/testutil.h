/*
 * testutil.h - what the test suites share: bounded waits, a gate for
 * ordering threads, and a view into the kit's condition wait.
 *
 * Every wait here is bounded by TU_TIMEOUT_S. A wait that runs out prints
 * "HANG: <what>" and aborts the process, so a deadlock fails the suite
 * instead of stalling it.
 *
 * The tests link with ld's --wrap=pthread_cond_wait, so every call the kit
 * makes to pthread_cond_wait goes through this file first. That is how a
 * test knows that a follower is parked (it has joined a flight and is
 * waiting for its result), and how it injects spurious wake-ups. The tests'
 * own waits use pthread_cond_timedwait, which is not wrapped.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdbool.h>

#include "sharedcalls.h"

#define TU_TIMEOUT_S 30

/* Starts a thread; aborts if that fails. */
pthread_t tu_spawn(void *(*body)(void *), void *arg);
/* Joins t within TU_TIMEOUT_S, or reports "HANG: what" and aborts. */
void tu_join(pthread_t t, const char *what);

/* A counter that threads raise and others wait on: a start gate, a
 * rendezvous, a count of arrivals. */
struct tu_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int count;
};
void tu_gate_init(struct tu_gate *g);
void tu_gate_destroy(struct tu_gate *g);
void tu_gate_raise(struct tu_gate *g, int by);
/* Waits until count >= n; false if TU_TIMEOUT_S passed first. */
bool tu_gate_wait(struct tu_gate *g, int n);
/* tu_gate_wait that aborts with "HANG: what" instead of returning false. */
void tu_gate_expect(struct tu_gate *g, int n, const char *what);

/* Starts a new count of parked followers: threads that have entered the
 * kit's condition wait (each thread counts once per tu_parked_reset). */
void tu_parked_reset(void);
/* Waits until n followers are parked, or reports "HANG: what". */
void tu_parked_expect(int n, const char *what);

/* Makes the next n calls to the kit's condition wait return at once, as
 * POSIX allows a wait to do (a spurious wake-up). */
void tu_spurious(int n);

/* Asserts that g has no call left and frees it. */
void tu_free_group(sc_group *g);

/* Runs the tests of one suite with CUnit's basic runner, which prints
 * CUnit's run summary last. Returns the process exit status. */
struct tu_test {
    const char *name;
    void (*fn)(void);
};
int tu_run_suite(const char *suite, const struct tu_test *tests);

#endif /* TESTUTIL_H */
