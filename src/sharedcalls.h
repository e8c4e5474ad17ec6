/*
 * sharedcalls.h - singleflight for C: concurrent calls for one key share
 * one execution.
 *
 * A port of go-zero's SharedCalls (core/syncx/sharedcalls.go, commit
 * 7e3a369a8). While a function runs for a key, every other caller that asks
 * for the same key waits and receives that run's result instead of running
 * the function again. Nothing is cached: a caller that arrives after the run
 * has finished starts a new one.
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

#include <errno.h> /* the error codes, returned negated */
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
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
sc_group *sc_new(void);

/*
 * Destroys a group that has no call in flight.
 *
 * Returns 0 when g was freed (sc_free(NULL) returns 0 and does nothing), or
 * -EBUSY, freeing nothing, while any flight of g is alive: its fn is
 * running, or some of its callers have yet to read the result.
 * sc_free cannot see a thread that is about to call sc_do on g: make sure
 * no thread can call into g any more before you free it.
 */
int sc_free(sc_group *g);

/*
 * Calls fn(arg, &v) for key, unless a call for an equal key is already in
 * flight in g, in which case it waits for that call and shares its result.
 *
 * key is any NUL-terminated string shorter than 4 GiB, "" included; it is
 * copied, so the caller's buffer may change as soon as sc_do has been
 * entered.
 *
 * Returns:
 *   0           *val is the flight's value.
 *   fn's code   fn failed; every caller of the flight gets the same code,
 *               and *val is whatever fn stored (NULL if nothing).
 *   -EINVAL     g, key, fn or val is NULL, or key is 4 GiB or longer.
 *   -ENOMEM     no memory for the call record, its condition variable or
 *               a larger map.
 * On -EINVAL and -ENOMEM fn was not run and *val is untouched.
 *
 * Ownership: every caller of a flight receives the same pointer. It is
 * shared and must be treated as read-only; the kit never frees it. Whoever
 * made it (fn, usually) decides how it is kept alive and released.
 */
int sc_do(sc_group *g, const char *key, sc_fn fn, void *arg, void **val);

/*
 * Like sc_do, and also reports in *fresh whether this caller ran fn itself
 * (true: the leader) or shared another caller's run (false: a follower).
 * fresh may be NULL; it is written only when the result is 0 or fn's code.
 */
int sc_do_ex(sc_group *g, const char *key, sc_fn fn, void *arg, void **val,
             bool *fresh);

#ifdef __cplusplus
}
#endif

#endif /* SHAREDCALLS_H */
