/*
 * fleet.h - inside libsharedcalls-redis. Not installed.
 *
 *   conn.c     a connection to Redis: connect, authenticate, one command
 *              with a deadline, a subscription's next message
 *   value.c    the bytes of a value in Redis, written and checked
 *   protocol.c one process's part in a fleet-wide flight: elect, lead,
 *              publish, or wait and take over (the protocol in
 *              sharedcalls-redis.h)
 *   group.c    scr_new, scr_do, scr_free, scr_stats: the in-process
 *              group in front of the flight
 */
#ifndef SCR_FLEET_H
#define SCR_FLEET_H

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "sharedcalls-redis.h"

/* An absolute CLOCK_MONOTONIC time, in ms. */
typedef int64_t ms_t;
ms_t scr__now(void);

/* A group. */
struct scr_group {
    /* Set by scr_new, read-only after. */
    scr_options opts; /* strings point into the group's own copies */
    char *strings;    /* one block holding them */
    sc_group *local;  /* the in-process group (libsharedcalls' engine) */
    /* Guarded by lock: connections not in use, to be used again. */
    pthread_mutex_t lock;
    redisContext *idle[4];
    unsigned nidle;
    /* Counters: atomics, each bumped on its own. */
    atomic_ullong calls, runs, remote, takeovers, fallbacks, stale, timed_out,
        refused;
};

/* conn.c. Every call returns within its deadline or io_timeout_ms. */
/* A connection, authenticated: 0, or -EIO (unreachable), -EACCES
 * (credentials refused), -ENOMEM. */
int scr__connect(const scr_options *o, redisContext **out);
/* One command; *reply is an owned reply that is not an error. Returns 0,
 * -EIO (no answer, or the connection broke: c is then unusable), -EACCES
 * (a NOPERM error), -EPROTO (another error reply). */
int scr__command(redisContext *c, int argc, const char **argv,
                 const size_t *lens, redisReply **reply);
/* The next message on a subscribed connection, or -ETIMEDOUT when the
 * absolute deadline passes first, or -EIO. */
int scr__next_message(redisContext *c, ms_t deadline, redisReply **msg);
/* A connection from g's idle ones (*pooled true), or a new one. */
int scr__conn_get(scr_group *g, redisContext **out, bool *pooled);
/* Back to g's idle ones (or freed); a broken one (err set) is freed. */
void scr__conn_put(scr_group *g, redisContext *c);

/* value.c: a value as stored in Redis: "SCR1", the fencing number and
 * the length (8 bytes each, big-endian), then the bytes. */
enum { SCR_VALUE_HEADER = 20 };
/* The entry for a value of len bytes with fencing number fence, in a new
 * buffer of SCR_VALUE_HEADER + len bytes; NULL when memory runs out. */
char *scr__value_encode(uint64_t fence, const void *val, size_t len);
/* Checks an entry of n bytes: 0 with its fencing number, its bytes and
 * their length (pointing into entry); -EBADMSG if it is not well formed,
 * -EMSGSIZE if its value is over max. */
int scr__value_decode(const char *entry, size_t n, size_t max, uint64_t *fence,
                      const char **val, size_t *len);

/* What one process's flight produced: the value, shared by its callers
 * in the process through reference counting (the engine's share and drop
 * hooks), each of whom copies the bytes out. */
struct fleet_value {
    atomic_uint refs;
    bool ran_here; /* fn ran in this process (else: another, via Redis) */
    bool takeover;
    bool fallback;
    size_t len;
    char bytes[];
};

/* protocol.c: the flight for key across the fleet, led by this process's
 * leader thread. Returns 0 with a new fleet_value in *out (refs 1), or
 * fn's nonzero code, or a negative errno. */
int scr__fleet_flight(scr_group *g, const char *key, scr_fn fn, void *arg,
                      ms_t deadline, struct fleet_value **out);

#endif /* SCR_FLEET_H */
