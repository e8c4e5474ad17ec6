/*
 * sharedcalls-redis.h - singleflight across a fleet of processes, on Redis.
 *
 * sharedcalls coalesces the calls of one process. A fleet of N processes
 * behind a load balancer still sends N queries when a hot key expires.
 * This library coalesces in two levels:
 *
 *   1. in the process: a group of libsharedcalls' engine lets one caller
 *      per key (the process's leader) go on, and its other callers wait;
 *   2. across processes: the process leaders meet in Redis. One takes a
 *      per-key lock and runs fn; the others wait for its value there.
 *
 *   process A  caller --scr_do("k")--[ lock; fn runs; publish ]--> v
 *              caller --scr_do("k")--[ waits in A ]---------------> v copy
 *   process B  caller --scr_do("k")--[ lock taken: wait in Redis ]-> v copy
 *
 * The protocol (each step one round trip; the scripts run atomically in
 * Redis; every name shares one hash tag, PREFIX{KEY}, so that each script
 * touches one slot, as a Redis Cluster requires; this library itself
 * talks to one server and does not follow a cluster's redirections):
 *
 *   elect    a Lua script: if PREFIX{KEY}:lock is free, INCR
 *            PREFIX{KEY}:fence (the fencing number f) and SET the lock to
 *            "TOKEN f" with the lock's time to live; else report the
 *            holder's f and the lock's remaining time.
 *   leader   runs fn; then the publish script stores the value under
 *            PREFIX{KEY}:value (with f and a short time to live), deletes
 *            the lock if its token is still there, and PUBLISHes f on
 *            PREFIX{KEY}:done. It does so only if the fence counter is
 *            still f: once a newer leader has been elected, a late value
 *            is stale and is never stored (the fencing number decides, not
 *            the lock); its process waits for the newer value as a waiter
 *            does. If fn fails, the release script deletes the lock
 *            if it is still this leader's and publishes the failure.
 *   waiter   subscribes to PREFIX{KEY}:done, then reads the value: one with
 *            a fencing number at least the holder's is the answer. Else
 *            it sleeps until woken or until the lock's time to live has
 *            passed; then it reads again or, if the lock is gone without a
 *            value (its leader died or failed), tries to elect itself:
 *            exactly one waiter takes over.
 *
 * A value read from Redis is checked before anyone sees it: an entry
 * without the library's magic, or whose stated length is not its length,
 * is refused with -EBADMSG, and one over max_value with -EMSGSIZE; one
 * whose fencing number is lower than the holder's is an earlier flight's,
 * and is passed over, never returned. Values cross processes as bytes: fn
 * returns a buffer and its length, and every caller receives a copy of
 * its own. The fencing counter of each key stays in Redis (it must never
 * go back; one that is missing, as after a restart without persistence,
 * starts again from the server's clock in microseconds, above every
 * number handed out before while that clock does not go back, so deleting
 * one between flights, or its eviction, is safe); everything else expires.
 * Redis thus keeps one small counter for every key ever asked for.
 *
 * When Redis cannot be reached or fails (connection refused, an error
 * reply, no answer within io_timeout_ms), a call falls back to coalescing
 * in its process only, and the fallback is counted. A leader whose value
 * cannot be published (Redis failed after fn ran) gives it to its own
 * process's callers the same way, marked as a fallback: its fencing
 * number could not be checked. A caller waiting for
 * another process returns -ETIMEDOUT at its deadline, or at most one
 * round trip (io_timeout_ms) after it. A wrong password, or an ACL that
 * refuses any command the protocol sends (EVAL, and in its scripts GET
 * SET INCR DEL PTTL TIME PUBLISH, on the prefix's keys; SUBSCRIBE on its
 * channels), is an error when the group is made.
 *
 * As with libsharedcalls' port, fn must return, and a thread must not be
 * cancelled inside scr_do: its flight's connections would be lost, and
 * its lock would stay until its time to live.
 *
 * Failures are not shared across processes: when a leader's fn fails, its
 * own process's callers get the failure, and the waiting processes elect
 * a new leader among themselves (as nginx's proxy_cache_lock lets the
 * next request through).
 *
 * Errors are negative errno values, as in libsharedcalls. A group may be
 * used by any number of threads; it keeps no global state.
 */
#ifndef SHAREDCALLS_REDIS_H
#define SHAREDCALLS_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include <sharedcalls.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct scr_group scr_group;

/* Runs once per flight across the fleet: stores a buffer from malloc in
 * *buf (the kit takes it and frees it, also when fn fails) and its length
 * in *len, and returns 0; or returns a nonzero error code (positive:
 * errno values suit; negative ones cannot be told from the kit's). */
typedef int (*scr_fn)(void *arg, void **buf, size_t *len);

/* What a call does when Redis cannot be reached or fails. */
enum scr_unreachable {
    SCR_FALL_BACK = 0, /* coalesce in this process only (the default) */
    SCR_FAIL = 1       /* return -EIO (scr_new: fail when unreachable) */
};

/* A group's options. Zero (or NULL) means the default. */
typedef struct scr_options {
    /* Where Redis listens: a Unix socket's path, or else host and port
     * (default 127.0.0.1:6379). */
    const char *unix_socket;
    const char *host;
    int port;
    /* Credentials (Redis ACL): user NULL means the default user; password
     * NULL means none. */
    const char *user;
    const char *password;
    /* Every key and channel the group touches starts with this (default
     * "sc:"). It may not contain '{' or '}'. */
    const char *prefix;
    /* The lock's time to live: after it, a waiting process may take over
     * from a leader that has not published (nginx's proxy_cache_lock_age).
     * Default 5000. */
    unsigned lock_ttl_ms;
    /* How long a caller waits for another's flight, in its process or in
     * another, before -ETIMEDOUT (nginx's proxy_cache_lock_timeout).
     * Default 10000. */
    unsigned wait_ms;
    /* How long a published value stays in Redis, so that a waiter woken
     * late still finds it. Default 1000. */
    unsigned value_ttl_ms;
    /* One round trip to Redis, at most. Default 500. */
    unsigned io_timeout_ms;
    /* The largest value, in bytes (default 1 MiB): fn's larger ones are
     * refused with -EMSGSIZE, and so is a larger entry in Redis. */
    size_t max_value;
    enum scr_unreachable on_unreachable;
} scr_options;

/* Who ran fn for the value a caller received. */
enum scr_origin {
    SCR_THIS_THREAD,  /* this caller */
    SCR_THIS_PROCESS, /* another thread of this process */
    SCR_OTHER_PROCESS /* another process, through Redis */
};

typedef struct scr_result {
    void *val;  /* the caller's own copy: free() it; NULL unless 0 */
    size_t len; /* its length */
    enum scr_origin origin;
    bool takeover; /* its leader took over from one that died or failed */
    bool fallback; /* Redis failed: coalesced in this process only */
} scr_result;

/*
 * Makes a group, connected to Redis as *opts says (NULL: the defaults).
 * Returns the group, owned by the caller until scr_free; or NULL with
 * *err (if err is not NULL) set to -EINVAL (a bad option: the prefix
 * holds '{' or '}', the port is not in 0-65535, on_unreachable is neither
 * value), -ENOMEM, -EACCES (Redis refused the credentials, or the ACL
 * refuses a command, key or channel the protocol needs; any error reply
 * to the check is taken as that), or, with SCR_FAIL, -EIO (Redis cannot
 * be reached, or does not answer within io_timeout_ms). With
 * SCR_FALL_BACK, an unreachable Redis is no error: calls fall back.
 */
SC_API scr_group *scr_new(const scr_options *opts, int *err);

/* Frees g. Returns 0, or -EBUSY (freeing nothing) while a call is in
 * flight. scr_free(NULL) returns 0. */
SC_API int scr_free(scr_group *g);

/*
 * Calls fn(arg, &buf, &len) for key once across the fleet, unless a call
 * for key is in flight in this process or another, in which case it waits
 * for that call's value. key is a NUL-terminated string.
 *
 * Returns 0 with *out filled (out->val is the caller's own copy); or fn's
 * nonzero code (only for callers in fn's process); or a negative errno:
 *   -EINVAL     g, key, fn or out is NULL
 *   -ETIMEDOUT  wait_ms passed while another flight ran
 *   -EMSGSIZE   fn's value, or the entry in Redis, is over max_value
 *   -EBADMSG    the entry in Redis is not a value this library wrote
 *   -EIO        Redis failed, with SCR_FAIL
 *   -EACCES     the ACL refused a command (it changed since scr_new)
 *   -EDEADLK    fn called scr_do for its own key
 *   -ECANCELED  the thread running fn was cancelled
 *   -ENOMEM
 * On an error *out is untouched.
 */
SC_API int scr_do(scr_group *g, const char *key, scr_fn fn, void *arg,
                  scr_result *out);

/* Counters of a group, since it was made. */
struct scr_stats {
    unsigned long long calls;     /* scr_do calls with valid arguments */
    unsigned long long runs;      /* runs of fn in this process */
    unsigned long long remote;    /* values taken from another process */
    unsigned long long takeovers; /* this process elected after waiting:
                                     the lock went without a value (its
                                     leader died or failed, or the value
                                     expired before it was read) */
    unsigned long long fallbacks; /* flights coalesced in this process
                                     only, Redis failing */
    unsigned long long stale;     /* values not published: a newer leader
                                     had been elected */
    unsigned long long timed_out; /* calls that returned -ETIMEDOUT */
    unsigned long long refused;   /* values refused: entries with -EBADMSG
                                     or -EMSGSIZE, and fn's own over
                                     max_value */
};

/* Copies g's counters into *out. Returns 0 or -EINVAL. */
SC_API int scr_stats(scr_group *g, struct scr_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* SHAREDCALLS_REDIS_H */
