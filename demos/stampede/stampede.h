/*
 * stampede.h - the cache-stampede demo's parts.
 *
 * A table of users in a real SQLite file, an in-process cache in front of
 * it whose entries expire (a TTL with go-zero's +-5% jitter), and worker
 * threads that ask for users, most of them for a few hot ones; with
 * --procs, a fleet of such processes, each with a cache of its own, in
 * front of the one database. When a hot entry expires, every worker that
 * asks for it misses at once. The modes:
 *
 *   none         each miss queries the database
 *   sharedcalls  the misses for one key in one process share one query, as
 *                go-zero's cache does (core/stores/internal/cachenode.go,
 *                doTake, commit 7e3a369a8)
 *   redis        the misses for one key in the whole fleet share one query
 *                (libsharedcalls-redis); the row crosses processes as bytes
 *   xfetch       no coalescing and no lock: a reader reloads an entry
 *                early, with a chance that grows as its expiry nears
 *
 *   db.c        the database: made and filled once, queried with latency
 *   cache.c     the cache: entries with expiry, and a count of lifetimes
 *   workload.c  one process: its workers, the four modes, what they measure
 *   fleet.c     the processes: started, held at one gate, added up
 *   server.c    the redis mode's server: a private redis-server, or a check
 *               of an existing one
 *   main.c      options, the runs, and the table
 */
#ifndef STAMPEDE_H
#define STAMPEDE_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* One row of the users table. Row id holds exactly st_row_of(id). */
struct st_row {
    int id;
    char name[16];
    char email[32];
};
void st_row_of(int id, struct st_row *out);
bool st_row_equal(const struct st_row *a, const struct st_row *b);

/* db.c */
struct st_db; /* one thread's connection */
/* Makes path a database of rows users, unless it already is one.
 * Returns 0 or a negative errno (-EIO: SQLite failed; message on stderr). */
int st_db_prepare(const char *path, int rows);
/* Opens a read-only connection whose every query sleeps latency_ms first,
 * and whose every fail_every-th query (counted over *queries, shared by
 * every connection of the fleet; 0: none) fails. NULL on failure. */
struct st_db *st_db_open(const char *path, int latency_ms, int fail_every,
                         atomic_long *queries);
/* 0 with *out set, ENOENT (no such row) or EIO. */
int st_db_get(struct st_db *db, int id, struct st_row *out);
void st_db_close(struct st_db *db);

/* cache.c: keys 1 .. size. */
struct st_cache;
enum st_look { ST_MISS, ST_HIT, ST_HIT_MISSING };
/* What a look saw of an entry, hit or miss. */
struct st_seen {
    long fills;        /* its lifetimes so far (0: never filled) */
    long long expires; /* CLOCK_MONOTONIC ns; 0: never filled */
    long long delta;   /* how long the load that filled it took, ns */
    bool live;         /* found and not expired (a hit) */
};
long long st_now_ns(void); /* CLOCK_MONOTONIC: one clock for a machine */
struct st_cache *st_cache_new(int size, int ttl_ms, int missing_ttl_ms,
                              unsigned seed);
void st_cache_free(struct st_cache *c);
/* ST_HIT with *out set, ST_HIT_MISSING (the not-found placeholder), or
 * ST_MISS (absent or expired); *seen set in every case. */
enum st_look st_cache_get(struct st_cache *c, int id, struct st_row *out,
                          struct st_seen *seen);
/* When an entry loaded now expires: its TTL (the not-found placeholder's
 * if !found) times a random factor in [0.95, 1.05]. */
long long st_cache_expiry(struct st_cache *c, int id, bool found);
/* Fills id with row (NULL: the not-found placeholder) until expires, if
 * the look *seen found it absent or expired (not live: xfetch clears live
 * when its draw says to reload) and no other put came after that look:
 * each lifetime is filled once. Returns whether it filled. */
bool st_cache_put(struct st_cache *c, int id, const struct st_row *row,
                  const struct st_seen *seen, long long expires,
                  long long delta);
/* Key id's lifetimes: the times it was filled, the first included. */
long st_cache_fills(const struct st_cache *c, int id);

/* workload.c, fleet.c */
enum st_mode { ST_NONE, ST_SHAREDCALLS, ST_REDIS, ST_XFETCH, ST_MODES };
extern const char *const st_mode_names[ST_MODES];
enum { ST_MAX_PROCS = 16 };

struct st_config {
    const char *db_path;
    int rows;           /* users in the table; ids 1 .. rows */
    int threads;        /* workers of each process */
    double seconds;     /* how long each mode runs, unless requests > 0 */
    long requests;      /* how many requests each mode makes; 0: seconds */
    int hot;            /* hot keys: ids 1 .. hot */
    int hot_percent;    /* of requests that ask for a hot key */
    int ttl_ms;         /* a cached row's lifetime, +-5% */
    int missing_ttl_ms; /* the not-found placeholder's */
    int db_latency_ms;  /* every query's round trip */
    int db_fail_every;  /* every n-th query of the fleet fails; 0: none */
    unsigned seed;
    bool progress; /* a progress line on stderr */
    int procs;     /* processes (forked); 0 or 1: the workers run here */
    double beta;   /* xfetch's: above 1, reloads come earlier */
    const char *redis_socket;   /* the redis mode's server (Unix socket) */
    const char *redis_password; /* NULL: none */
    /* redis: a flight's row stays in Redis until it expires, for a
     * process that comes late */
    bool fleet_copy;
    /* Set by a signal handler: the run ends early, with -EINTR. */
    const volatile sig_atomic_t *interrupted;
};

struct st_result {
    enum st_mode mode;
    int procs;
    double seconds;
    long requests;
    long hits;        /* answered from the cache */
    long shared;      /* answered by another request's query */
    long remote;      /* of those: a query in another process */
    long copied;      /* of those: late, from the fleet's copy in Redis */
    long queries;     /* answered by their own query: one each, failed or not */
    long timed_out;   /* redis: no answer within the call's deadline */
    long waited_out;  /* of those: neither a query of their own nor a copy */
    long early;       /* of those: xfetch's reloads before the expiry */
    long not_found;   /* answers that the row does not exist */
    long errors;      /* answers that the database failed */
    long db_fails;    /* queries that failed */
    long wrong;       /* answers that differ from the table: must be 0 */
    long hot_queries; /* the fleet's queries for hot keys, failed or not */
    long hot_fills;   /* hot keys' lifetimes, added over the processes */
    long over_once;   /* keys a process queried twice in one lifetime */
    unsigned long long takeovers, fallbacks, stale; /* redis: the fleet's */
    long p50_ns, p99_ns, max_ns;                    /* request latency */
};

/* Database queries per expiry of a hot key, for the whole fleet. Every
 * process's cache sees each expiry once, so the fleet's expiries are its
 * processes' lifetimes over the number of processes. */
double st_per_expiry(const struct st_result *r);
/* Adds r's counts into *out, and keeps the larger of their max_ns: how a
 * process totals its workers, and the fleet its processes. */
void st_result_add(struct st_result *out, const struct st_result *r);

/* Runs the workload once in mode, with cfg->procs processes. Returns 0 or
 * a negative errno (a message on stderr). */
int st_run(const struct st_config *cfg, enum st_mode mode,
           struct st_result *out);

/* server.c: the redis mode's server. */
struct st_server {
    char dir[64];     /* a private folder: socket, config, log */
    char socket[108]; /* dir/redis.sock */
    char password[33];
    pid_t pid; /* 0: not running */
};
/* Starts a private redis-server: on a Unix socket in a new folder (no TCP
 * port), with a random password, persistence off, killed if this process
 * dies. Returns 0, or -1 with a message on stderr (nothing left running). */
int st_server_start(struct st_server *s);
/* Stops it by its pid (SIGTERM; SIGKILL after 5 s), waits for it, and
 * removes its folder. */
void st_server_stop(struct st_server *s);
/* Whether Redis answers on the Unix socket path with password (NULL:
 * none): 0, or -1 with a message on stderr unless quiet. */
int st_redis_ping(const char *path, const char *password, bool quiet);
/* A connection to Redis on the Unix socket path, authenticated with
 * password (NULL: none), whose every step waits at most timeout_ms; or
 * NULL, and *why says why. */
struct redisContext *st_redis_connect(const char *path, const char *password,
                                      int timeout_ms, const char **why);
/* Deletes the keys starting with prefix: what a run left. Returns how
 * many, or -1. */
long st_redis_forget(const char *path, const char *password,
                     const char *prefix);

#endif /* STAMPEDE_H */
