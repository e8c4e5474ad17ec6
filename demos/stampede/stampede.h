/*
 * stampede.h - the cache-stampede demo's parts.
 *
 * A table of users in a real SQLite file, an in-process cache in front of
 * it whose entries expire (a TTL with go-zero's +-5% jitter), and worker
 * threads that ask for users, most of them for a few hot ones. When a hot
 * entry expires, every worker that asks for it misses at once. With
 * --mode none each miss queries the database; with --mode sharedcalls the
 * misses for one key share one query, as go-zero's cache does
 * (core/stores/internal/cachenode.go, doTake, commit 7e3a369a8).
 *
 *   db.c        the database: made and filled once, queried with latency
 *   cache.c     the cache: entries with expiry, and a count of expiries
 *   workload.c  the workers, the two modes, and what they measure
 *   main.c      options, the run of both modes, and the table
 */
#ifndef STAMPEDE_H
#define STAMPEDE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

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
 * all connections; 0: none) fails. NULL on failure. */
struct st_db *st_db_open(const char *path, int latency_ms, int fail_every,
                         long *queries, pthread_mutex_t *count_lock);
/* 0 with *out set, ENOENT (no such row) or EIO. */
int st_db_get(struct st_db *db, int id, struct st_row *out);
void st_db_close(struct st_db *db);

/* cache.c: keys 1 .. size. */
struct st_cache;
enum st_look { ST_MISS, ST_HIT, ST_HIT_MISSING };
struct st_cache *st_cache_new(int size, int ttl_ms, int missing_ttl_ms,
                              unsigned seed);
void st_cache_free(struct st_cache *c);
/* ST_HIT with *out set, ST_HIT_MISSING (the not-found placeholder), or
 * ST_MISS (absent or expired). */
enum st_look st_cache_get(struct st_cache *c, int id, struct st_row *out);
/* Caches row (NULL: the not-found placeholder, with the shorter TTL). */
void st_cache_put(struct st_cache *c, int id, const struct st_row *row);
/* How many times key id was filled while absent or expired: its expiries,
 * the first fill included. */
long st_cache_fills(const struct st_cache *c, int id);

/* workload.c */
enum st_mode { ST_NONE, ST_SHAREDCALLS };
struct st_config {
    const char *db_path;
    int rows;           /* users in the table; ids 1 .. rows */
    int threads;        /* workers */
    double seconds;     /* how long each mode runs, unless requests > 0 */
    long requests;      /* how many requests each mode makes; 0: seconds */
    int hot;            /* hot keys: ids 1 .. hot */
    int hot_percent;    /* of requests that ask for a hot key */
    int ttl_ms;         /* a cached row's lifetime, +-5% */
    int missing_ttl_ms; /* the not-found placeholder's */
    int db_latency_ms;  /* every query's round trip */
    int db_fail_every;  /* every n-th query fails; 0: none */
    unsigned seed;
    bool progress; /* a progress line on stderr */
};

struct st_result {
    enum st_mode mode;
    double seconds;
    long requests;
    long hits;      /* answered from the cache */
    long shared;    /* answered by another request's query */
    long queries;   /* answered by their own query */
    long not_found; /* answers that the row does not exist */
    long errors;    /* answers that the database failed */
    long db_fails;  /* queries that failed */
    long wrong;     /* answers that differ from the table: must be 0 */
    long hot_queries, hot_fills; /* over the hot keys */
    long over_once;              /* keys queried more than once in one expiry */
    long p50_ns, p99_ns, max_ns; /* request latency */
};

/* Runs the workload once in mode. Returns 0 or a negative errno. */
int st_run(const struct st_config *cfg, enum st_mode mode,
           struct st_result *out);

#endif /* STAMPEDE_H */
