/*
 * testutil.h - what the test suites share: bounded waits, a gate for
 * ordering threads, a view into the kit's condition wait, and a held
 * flight with callers lined up behind it.
 *
 * Every wait here is bounded by TU_TIMEOUT_S. A wait that runs out prints
 * "HANG: <what>" and aborts the process, so a deadlock fails the suite
 * instead of stalling it; a watchdog stops any test that runs past
 * TU_TEST_LIMIT_S, which catches a thread that deadlocks on itself.
 *
 * The tests link with ld's --wrap=pthread_cond_wait (and _broadcast, and
 * syscall: the engine's followers sleep on a futex), so every call the kit
 * makes to them goes through this file first. That is how a
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
#include <stdint.h>
#include <time.h>

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
/* Lets the follower held longest go on; the others stay held. */
void tu_release_first_waker(void);
void tu_release_wakers(void);

/*
 * A held flight: its fn, tu_held_fn, counts its runs and returns only once
 * the test lets it, so a test can line callers up behind a leader that is
 * known to be inside fn. Callers run on threads of their own and keep what
 * the kit returned them:
 *
 *   struct tu_held h;
 *   tu_held_init(&h, sc_new_with(NULL), "k");
 *   struct tu_caller c[3];
 *   tu_held_start(&h, c, 2);      c[0] in fn, c[1] and c[2] parked
 *   tu_held_release(&h, 1);       run 1 may return
 *   tu_callers_join(c, 3, "a caller");
 *   ... c[i].rc, c[i].r ...
 *   tu_free_group(h.g);
 *   tu_held_destroy(&h);
 *
 * Set the fields below after tu_held_init, before the first call.
 */
enum tu_via {
    TU_VIA_DO_UNTIL, /* sc_do_until: the whole sc_result (engine groups) */
    TU_VIA_DO_EX,    /* sc_do_ex: r.val and r.fresh only (any group) */
};

struct tu_held {
    sc_group *g;
    const char *key;
    enum tu_via via;         /* how its callers call the kit */
    struct tu_gate runs;     /* fn has been entered this many times */
    struct tu_gate release;  /* run n returns once this reaches n */
    struct tu_gate returned; /* callers whose call has returned */
    int err;                 /* what a run returns: 0, or a failure code */
    int err_runs;            /* only runs 1..err_runs return err (0: all) */
    int exit_run;            /* this run calls pthread_exit (0: none) */
    void *(*make)(struct tu_held *h, intptr_t run); /* run n's value;
                                                       NULL: n itself */
};
void tu_held_init(struct tu_held *h, sc_group *g, const char *key);
/* Destroys h's gates; the group is the test's to free. */
void tu_held_destroy(struct tu_held *h);
/* The sc_fn of a held flight; its arg is the struct tu_held. A run that
 * is never released reports "HANG" instead of waiting for ever. */
int tu_held_fn(void *arg, void **val);
/* Lets n more runs return: run k returns once k have been let in all. */
void tu_held_release(struct tu_held *h, int n);
/* Lets every run return at once, those to come included. */
void tu_held_open(struct tu_held *h);

/* One call to a held flight's key, and what it returned. Fill in h (and
 * fn, deadline) before the call; rc and r are the kit's answer. */
struct tu_caller {
    struct tu_held *h;
    sc_fn fn; /* NULL: tu_held_fn. Its arg is h; one of the test's own
                 raises h->runs as it starts, as tu_held_fn does */
    const struct timespec *deadline; /* TU_VIA_DO_UNTIL only; NULL: none */
    int rc;
    sc_result r;
    struct tu_thread thread;
};
/* Makes c's call on this thread. */
void tu_call(struct tu_caller *c);
/* Makes c's call on a thread of its own. */
void tu_caller_start(struct tu_caller *c);
/* Joins the threads of c[0..n-1], or reports "HANG: what". */
void tu_callers_join(struct tu_caller *c, int n, const char *what);
/* Starts lead and waits until it is inside fn: its flight's next run. */
void tu_caller_lead(struct tu_caller *lead);
/* Starts c[0..n-1] and waits until all of them are parked in the kit
 * (counting parked followers anew, as tu_parked_reset does). */
void tu_callers_park(struct tu_caller *c, int n);
/* Makes c[0..n] plain callers of h, then c[0] leads and c[1..n] follow. */
void tu_held_start(struct tu_held *h, struct tu_caller *c, int n);

/* An absolute CLOCK_MONOTONIC time ms milliseconds from now (negative: in
 * the past), for sc_do_until's deadline. */
struct timespec tu_in_ms(long ms);

/* Value hooks for sc_options that copy a string: every caller owns, and
 * frees, its own copy. And a tu_held make whose run n is "run n". */
void *tu_copy_string(void *val, void *ctx);
void tu_free_string(void *val, void *ctx);
void *tu_run_string(struct tu_held *h, intptr_t run);

/* Asserts that g has no call left and frees it. */
void tu_free_group(sc_group *g);

/* Whether the test runs under a race tool: Valgrind, or a build with
 * AddressSanitizer or ThreadSanitizer. Such runs are slower and keep
 * memory of their own, so some tests run smaller or skip a timing figure. */
bool tu_under_a_tool(void);

/* Runs the tests of one suite with CUnit's basic runner, which prints
 * CUnit's run summary last. Returns the process exit status. */
struct tu_test {
    const char *name;
    void (*fn)(void);
};
int tu_run_suite(const char *suite, const struct tu_test *tests);

#endif /* TESTUTIL_H */
