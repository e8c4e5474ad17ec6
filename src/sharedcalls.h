/*
 * sharedcalls.h - singleflight for C: concurrent calls for one key share
 * one execution.
 *
 * A port of go-zero's SharedCalls (core/syncx/sharedcalls.go, commit
 * 7e3a369a8). While a function runs for a key, every other caller that asks
 * for the same key waits and receives that run's result instead of running
 * the function again. Nothing is cached: a caller that arrives after the
 * flight has ended starts a new one. A flight ends when its leader
 * publishes: under the group's lock, it stores the result and removes the
 * key from the map. Until then the flight is in the air, even after fn has
 * returned, and a caller that arrives in that gap still joins it.
 *
 *   leader    A --sc_do("k")--[ fn runs ]---------> returns v
 *   follower  B --------sc_do("k")--[ waits ]-----> returns v  (fn not run)
 *   later     C -------------------------sc_do("k")--[ fn runs ]--> ...
 *
 * Errors are negative errno values (as in libuv); see sc_do.
 * sc_do and sc_do_ex may be called from any number of threads at once.
 * Groups are independent of each other and the library keeps no global
 * state.
 *
 * Like go-zero's version, this one expects every call to come back: fn must
 * return (not longjmp out or call pthread_exit), and a thread must not be
 * cancelled inside sc_do, or the flight never ends and its followers wait
 * forever.
 */
#ifndef SHAREDCALLS_H
#define SHAREDCALLS_H

#include <errno.h>   /* the error codes, returned negated */
#include <pthread.h> /* pthread_t, in trace events */
#include <stdbool.h>
#include <time.h> /* struct timespec */

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header. sc_version() gives the library's own, which
 * differs when a program runs with another build than it was compiled
 * against. */
#define SC_VERSION_MAJOR 0
#define SC_VERSION_MINOR 2
#define SC_VERSION_PATCH 0
#define SC_VERSION_HEX                                                         \
    ((SC_VERSION_MAJOR << 16) | (SC_VERSION_MINOR << 8) | SC_VERSION_PATCH)

/* Marks the functions the shared library exports: it builds everything
 * else hidden, so these are all a program can link to. */
#if defined(__GNUC__)
#define SC_API __attribute__((visibility("default")))
#else
#define SC_API
#endif

/* A group of calls: one map from key to the call in flight for that key.
 * Opaque; create with sc_new, destroy with sc_free. */
typedef struct sc_group sc_group;

/*
 * The function a leader runs on behalf of every caller of its flight.
 *
 * It receives the caller's arg, stores its result in *val and returns 0; or
 * returns a nonzero error code, which every caller of the flight receives.
 * Use positive codes (errno values suit well): negative codes are the kit's
 * own, and a negative code from fn is passed through unchanged, so callers
 * could not tell it from one of the kit's. *val starts out NULL.
 *
 * fn runs on the leader's thread without any lock held, so it may call
 * sc_do on the same group with another key. Calling it with the key of a
 * flight it belongs to waits for itself forever, as in Go.
 */
typedef int (*sc_fn)(void *arg, void **val);

/*
 * Creates an empty group.
 *
 * Returns the group, owned by the caller until sc_free; or NULL with errno
 * set to ENOMEM (or to the error pthread_mutex_init gave).
 */
SC_API sc_group *sc_new(void);

/*
 * Destroys a group that has no call in flight.
 *
 * Returns 0 when g was freed (sc_free(NULL) returns 0 and does nothing), or
 * -EBUSY, freeing nothing, while any flight of g is alive: its fn is
 * running, or some of its callers have yet to read the result; for a
 * group from sc_new_with, also while a thread the kit started for an
 * asynchronous call runs, or sc_drain is under way.
 * sc_free cannot see a thread that is about to call sc_do on g: make sure
 * no thread can call into g any more before you free it.
 */
SC_API int sc_free(sc_group *g);

/*
 * Calls fn(arg, &v) for key, unless a call for an equal key is already in
 * flight in g, in which case it waits for that call and shares its result.
 *
 * key is any NUL-terminated string shorter than 4 GiB, "" included. No
 * pointer to the caller's buffer outlives the call: a flight that others
 * may join keeps a copy (the port's always; the engine's once a second
 * caller joins). The buffer must not change while the call runs.
 *
 * Returns:
 *   0           *val is the flight's value.
 *   fn's code   fn failed; every caller of the flight gets the same code,
 *               and *val is whatever fn stored (NULL if nothing).
 *   -EINVAL     g, key, fn or val is NULL, or key is 4 GiB or longer.
 *   -ENOMEM     no memory for the call record, its condition variable or
 *               a larger map. On a group of the engine, a leader needs
 *               memory only for a larger map, and the first caller to
 *               join a flight needs it for the flight's record.
 * On -EINVAL and -ENOMEM fn was not run and *val is untouched.
 *
 * Ownership: every caller of a flight receives the same pointer. It is
 * shared and must be treated as read-only; the kit never frees it. Whoever
 * made it (fn, usually) decides how it is kept alive and released.
 */
SC_API int sc_do(sc_group *g, const char *key, sc_fn fn, void *arg, void **val);

/*
 * Like sc_do, and also reports in *fresh whether this caller ran fn itself
 * (true: the leader) or shared another caller's run (false: a follower).
 * fresh may be NULL; it is written only when the result is 0 or fn's code.
 */
SC_API int sc_do_ex(sc_group *g, const char *key, sc_fn fn, void *arg,
                    void **val, bool *fresh);

/*
 * Beyond go-zero: the full engine.
 *
 * It is also the faster of the two: its followers sleep without any lock
 * and are woken all at once, and its map can be split into shards for
 * threads working on different keys (book/08-performance.md has the
 * figures).
 *
 * A group from sc_new runs go-zero's algorithm exactly (src/sharedcalls.c,
 * the annotated port). A group from sc_new_with runs the kit's full engine
 * (src/engine_*.c), which adds what golang.org/x/sync's singleflight, nginx's
 * proxy_cache_lock and C itself ask for: value ownership, Forget, the
 * shared flag, follower deadlines, asynchronous calls, -EDEADLK instead of
 * waiting for itself, safety when a thread is cancelled or exits inside
 * the kit, and statistics. sc_do, sc_do_ex and sc_free work on both kinds of group; the
 * functions below answer -ENOTSUP on a group from sc_new.
 *
 * On a group from sc_new_with, sc_do and sc_do_ex also return -EDEADLK,
 * -ECANCELED (see sc_do_until) and follow the value hooks.
 */

/*
 * What a trace hook is told (see sc_options.trace). A synchronous call goes
 * ENTER, then LEAD, FN_START, FN_RETURN, (DELETE, DONE or HANDOFF), RETURN
 * for a leader, or ENTER, JOIN, (WAKE or TIMEOUT), RETURN for a follower;
 * a follower woken by a hand-off goes on with LEAD, or with TIMEOUT if its
 * deadline has passed by then. A call refused before it reached a flight
 * (-ENOMEM) goes ENTER, RETURN; one refused for its arguments (-EINVAL,
 * -ENOTSUP) reports nothing. A thread cancelled inside the kit ends with
 * CANCEL instead of RETURN. sc_event(3) lists the rarer orders.
 */
typedef enum sc_event_kind {
    SC_EV_ENTER,     /* a call came in; it is about to take the group lock */
    SC_EV_LEAD,      /* it leads a flight: a new one, or one handed to it */
    SC_EV_JOIN,      /* it joined the flight in progress, as a follower */
    SC_EV_FN_START,  /* the leader calls fn */
    SC_EV_FN_RETURN, /* fn returned code; the flight can still be joined */
    SC_EV_DELETE,    /* the flight left the map: a later call starts anew */
    SC_EV_DONE,      /* the flight ended with code; its followers are woken */
    SC_EV_HANDOFF,   /* fn failed with code, or its thread was cancelled
                        (-ECANCELED): a follower will run fn again */
    SC_EV_WAKE,      /* a follower saw its flight end or handed to it */
    SC_EV_TIMEOUT,   /* a follower's deadline passed first */
    SC_EV_CANCEL,    /* the thread was cancelled, or exited, inside the kit */
    SC_EV_RETURN     /* the call returns code to its caller */
} sc_event_kind;

typedef struct sc_event {
    sc_event_kind kind;
    struct timespec at;   /* CLOCK_MONOTONIC, taken as it happened */
    pthread_t thread;     /* the thread it happened on */
    const char *key;      /* valid only during the hook */
    unsigned long flight; /* the flight's number, unique in the group: 1,
                             2, ... (with N shards, shard i numbers
                             i + 1, i + 1 + N, ...); 0 for ENTER and
                             calls that never reached a flight */
    int code;    /* FN_RETURN, DONE, HANDOFF, RETURN: the result; else 0 */
    bool fresh;  /* RETURN: the caller ran fn */
    bool shared; /* RETURN: the flight had more than one caller */
} sc_event;

#define SC_SHARDS_MAX 4096

/* Options of a group from sc_new_with. Zero (or NULL) means the default. */
typedef struct sc_options {
    /*
     * Value hooks. Without them (both NULL) every caller of a flight borrows
     * the one pointer fn produced, as in Go. With them, every caller owns
     * what it receives: share(val, ctx) returns a caller's own handle (a new
     * reference, or a copy), and the caller releases it with drop (or its
     * own means). The flight's own handle, fn's value, is dropped exactly
     * once, after the last caller has taken its share. share runs with the
     * group's lock held, so keep it quick; drop runs without it. A NULL value
     * is never shared or dropped. Set both or neither.
     */
    void *(*share)(void *val, void *ctx);
    void (*drop)(void *val, void *ctx);
    void *ctx;
    /*
     * Hand-off. When a leader's fn fails (returns nonzero) or its thread is
     * cancelled or exits inside fn, and a synchronous follower is waiting,
     * the flight passes to that follower, which runs its own fn and leads
     * from there; the failed leader (or, for an asynchronous flight, the
     * caller that started it) gets its own failed result. A follower whose
     * deadline has passed does not take the flight; if the last one that
     * could leaves, the flight ends as its leader left it. Without the
     * option (the default, as in Go), every follower shares the failure.
     */
    bool handoff;
    /*
     * Shards. 0 or 1: one map and one lock, as in go-zero. More: that many
     * maps, each with its own lock, its own counters and its own flights,
     * a key's hash choosing the one it belongs to; threads that call for
     * different keys then seldom wait for each other's lock. Flights for
     * one key still share, as with one map. At most SC_SHARDS_MAX.
     */
    unsigned shards;
    /*
     * Trace hook: called with every event of every call on the group, on
     * the thread it happened on, in the order it happened there; events of
     * one flight reach the hook in the order they happened. An
     * asynchronous caller's RETURN comes on the thread that delivers its
     * answer. LEAD, JOIN, DELETE, DONE, HANDOFF, WAKE, TIMEOUT and CANCEL
     * are reported with the group's lock held, so the hook must not call
     * into the group, and should be quick: every caller of the group waits
     * for it. The kit holds cancellation back while the hook runs. Without
     * a hook (NULL) the kit takes no timestamps and makes no calls: each
     * event costs one test of this pointer.
     */
    void (*trace)(const sc_event *ev, void *trace_ctx);
    void *trace_ctx;
} sc_options;

/* What one caller got from a flight. */
typedef struct sc_result {
    void *val;   /* the flight's value, or this caller's share of it */
    int err;     /* fn's code: 0, or fn's nonzero error */
    bool fresh;  /* this caller ran fn (go-zero's DoEx) */
    bool shared; /* another caller joined the flight too (x/sync's shared) */
} sc_result;

/*
 * Creates an empty group served by the full engine, with a copy of *opts
 * (NULL: no options). Returns the group, owned by the caller until sc_free,
 * or NULL with errno set: EINVAL (only one of share and drop is set, or
 * more than SC_SHARDS_MAX shards), ENOMEM, or the error
 * pthread_mutex_init or pthread_cond_init gave.
 */
SC_API sc_group *sc_new_with(const sc_options *opts);

/*
 * sc_do, reporting everything: fills *out and returns out->err; or returns
 * a negative errno with *out untouched: -EINVAL, -ENOMEM, -EDEADLK (fn would
 * wait for its own flight), -ECANCELED (the flight's leader was cancelled or
 * exited inside fn; the key is free again), -ENOTSUP (g is from sc_new).
 */
SC_API int sc_do_result(sc_group *g, const char *key, sc_fn fn, void *arg,
                        sc_result *out);

/*
 * sc_do_result with a deadline for a follower: an absolute CLOCK_MONOTONIC
 * time (NULL: none), after which a caller still waiting for another's flight
 * returns -ETIMEDOUT, its reference dropped, leaving the flight and its
 * other callers as they were (nginx's proxy_cache_lock_timeout). A deadline
 * already past returns -ETIMEDOUT at once if the key is in flight. A leader
 * never times out: it is running fn. A deadline whose tv_nsec is not in
 * [0, 999999999] is -EINVAL.
 *
 * A thread cancelled while it waits here leaves the group consistent: its
 * reference is dropped and the lock released. If the leader's thread is
 * cancelled or calls pthread_exit inside fn, its followers return
 * -ECANCELED and the key is free for new flights. Once fn or the wait has
 * returned, the kit holds a cancellation request back until the call
 * returns, so the hooks and callbacks it runs in between can neither strand
 * the lock nor skip a waiter. (fn must not longjmp out of the kit, and
 * asynchronous cancellation is never safe.)
 */
SC_API int sc_do_until(sc_group *g, const char *key, sc_fn fn, void *arg,
                       const struct timespec *deadline, sc_result *out);

/* An asynchronous call's answer: rc is what sc_do_result would have
 * returned, r->err, or -ECANCELED (the leader was cancelled or exited inside
 * fn) with r NULL. *r lives only for the call; with value hooks, r->val is
 * the callee's own share. */
typedef void (*sc_done_fn)(void *done_arg, int rc, const sc_result *r);

/*
 * sc_do_result without waiting (x/sync's DoChan): returns 0 at once and
 * calls done(done_arg, rc, r) exactly once, when the flight ends; or returns
 * a negative errno and never calls done: -EINVAL, -ENOMEM, -EAGAIN (no
 * thread could be started), -ENOTSUP (g is from sc_new).
 *
 * If a flight for key is in progress, the call joins it; if not, the kit
 * starts a thread that runs fn(arg, &v) as the flight's leader. done runs
 * on the thread that ends the flight: that kit thread; or, if the leader is
 * a synchronous caller, that caller's thread, right after fn returns and
 * before its own sc_do returns; or a cancelled leader's thread, in its
 * cleanup. Keep done short. It may call into the kit, but not sc_drain.
 */
SC_API int sc_do_async(sc_group *g, const char *key, sc_fn fn, void *arg,
                       sc_done_fn done, void *done_arg);

/*
 * Waits until every thread the kit started for g's asynchronous calls has
 * ended, and joins them, so none outlives the group: call it before
 * sc_free (which answers -EBUSY while such a thread runs or sc_drain is
 * under way), and not from a done callback. Returns 0, -EINVAL or -ENOTSUP.
 *
 * A group need not drain to stay small: each kit thread, as it ends, joins
 * the one that ended before it. So the kit threads of a group alive at any
 * time are those leading a flight or ending, plus at most one that has
 * ended and waits to be joined, however many the group has run.
 */
SC_API int sc_drain(sc_group *g);

/*
 * Forgets the flight in progress for key, if any (x/sync's Forget): later
 * callers start a new flight instead of joining it, while it still runs to
 * the end for the callers it has. Its end never touches a newer flight for
 * the same key. Returns 0, -ENOENT (no flight for key), -EINVAL or -ENOTSUP.
 */
SC_API int sc_forget(sc_group *g, const char *key);

/* Counters of a group from sc_new_with, since it was made. (A struct tag,
 * not a typedef: the name sc_stats is the function's.) */
struct sc_stats {
    unsigned long long flights;   /* flights started: runs of fn */
    unsigned long long callers;   /* calls that led or joined a flight */
    unsigned long long shared;    /* callers served by another's run of fn */
    unsigned long long timed_out; /* followers whose deadline passed */
    unsigned long long cancelled; /* callers cancelled, or whose leader was */
    unsigned long long in_flight; /* flights whose fn is running now (a
                                     hand-off waiting for its taker is not) */
};

/* Copies g's counters into *out. Returns 0, -EINVAL or -ENOTSUP. */
SC_API int sc_stats(sc_group *g, struct sc_stats *out);

/* The library's version: SC_VERSION_HEX as it was built, and the same as
 * "MAJOR.MINOR.PATCH" (static storage). */
SC_API unsigned sc_version(void);
SC_API const char *sc_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* SHAREDCALLS_H */
