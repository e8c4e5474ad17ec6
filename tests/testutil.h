/*
 * testutil.h - what the test suites share: bounded waits, a gate for
 * ordering threads, and a view into the kit's condition wait.
 *
 * Every wait here is bounded by TU_TIMEOUT_S. A wait that runs out prints
 * "HANG: <what>" and aborts the process, so a deadlock fails the suite
 * instead of stalling it; a watchdog stops any test that runs past
 * TU_TEST_LIMIT_S, which catches a thread that deadlocks on itself.
 *
 * The tests link with ld's --wrap=pthread_cond_wait (and _broadcast), so
 * every call the kit makes to them goes through this file first. That is how a
 * test knows that a follower is parked (it has joined a flight and is
 * waiting for its result), how it injects spurious wake-ups, and how it
 * holds a woken follower back. The tests' own waits use
 * pthread_cond_timedwait, which is not wrapped.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdbool.h>

#include "sharedcalls.h"

#define TU_TIMEOUT_S 30
/* No single test may take longer than this (a watchdog aborts it). */
#ifndef TU_TEST_LIMIT_S
#define TU_TEST_LIMIT_S 240
#endif

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
/* The same with a limit of ms milliseconds. */
bool tu_gate_wait_ms(struct tu_gate *g, int n, int ms);
/* tu_gate_wait that aborts with "HANG: what" instead of returning false. */
void tu_gate_expect(struct tu_gate *g, int n, const char *what);

/* A test thread, in storage the test owns. Its body raises `finished` on
 * the way out; a join waits for that with a time limit, then calls
 * pthread_join, so the race tools see the join (they do not understand
 * pthread_timedjoin_np). */
struct tu_thread {
    pthread_t id;
    struct tu_gate finished;
    void *(*body)(void *);
    void *arg;
};
/* Starts body(arg) on a new thread; aborts if that fails. */
void tu_start(struct tu_thread *t, void *(*body)(void *), void *arg);
/* Joins t, or reports "HANG: what" and aborts. */
void tu_join(struct tu_thread *t, const char *what);
/* Joins t if it finishes within ms milliseconds. */
bool tu_join_within(struct tu_thread *t, int ms);

/* Starts a new count of parked followers: threads that have entered the
 * kit's condition wait (each thread counts once per tu_parked_reset). */
void tu_parked_reset(void);
/* Waits until n followers are parked, or reports "HANG: what". */
void tu_parked_expect(int n, const char *what);

/* Makes the next n calls to the kit's condition wait return at once, as
 * POSIX allows a wait to do (a spurious wake-up). */
void tu_spurious(int n);

/* Calls fn (or nothing, for NULL) on every pthread_cond_broadcast in this
 * process: the kit's leader broadcasts when it publishes a result. fn runs
 * on the broadcasting thread, inside the kit's lock. */
void tu_on_broadcast(void (*fn)(void));

/* From now on, a follower that wakes in the kit's wait stops there, before
 * it takes the group lock back and reads the result, until
 * tu_release_wakers. So a test can look at a flight whose leader has
 * returned while its followers have not. */
void tu_hold_wakers(void);
/* Waits until n followers are held, or reports "HANG: what". */
void tu_wakers_expect(int n, const char *what);
void tu_release_wakers(void);

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
