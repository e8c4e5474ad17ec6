/*
 * workload.c - workers asking for users through the cache, in one of two
 * modes, and what that costs the database.
 *
 * The miss path is go-zero's doTake (core/stores/internal/cachenode.go
 * at 7e3a369a8, lines 145-180): sc_do_ex for the key, whose fn looks in
 * the cache, then queries the database and fills the cache; a missing row
 * leaves a not-found placeholder with a short TTL, so that asking for ids
 * that do not exist cannot pierce the cache; a failed query is shared by
 * the followers, and not retried by each of them. go-zero sends every
 * request through DoEx; here a request looks in the cache first, so that
 * a hit skips the group, and fn's look catches a flight that ended a
 * moment ago. With --mode none a miss queries at once.
 */
#define _POSIX_C_SOURCE 200809L

#include "stampede.h"

#include "sharedcalls.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BINS = 64 * 8 }; /* latency histogram: 8 bins per power of two */

struct run {
    const struct st_config *cfg;
    enum st_mode mode;
    struct st_cache *cache;
    sc_group *g;
    pthread_mutex_t gate_lock; /* the start gate: all miss the cold cache */
    pthread_cond_t gate;       /* at once */
    bool open;
    atomic_bool stop;
    atomic_long issued; /* requests claimed, when counting requests */
    long db_queries;    /* every query made, for fail_every */
    pthread_mutex_t db_lock;
    atomic_long *ok_queries; /* per id: queries that filled the cache */
    int size;                /* ids asked for: 1 .. size */
    long bins[BINS];         /* every worker's latencies, added up */
};

struct worker {
    struct run *run;
    pthread_t thread;
    struct st_db *db;
    uint64_t rng;
    int id;           /* the id being asked for */
    bool queried;     /* its own fn queried the database */
    atomic_long done; /* requests finished, for the progress line */
    struct st_result r;
    long bins[BINS];
};

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Latency bins: below 8 ns one a nanosecond, then eight for each power
 * of two (the top three bits after the leading one). */
static int bin_of(long long ns)
{
    if (ns < 8)
        return (int)(ns < 0 ? 0 : ns);
    int log = 63 - __builtin_clzll((unsigned long long)ns); /* >= 3 */
    return log * 8 + (int)((unsigned long long)ns >> (log - 3) & 7);
}

static long long low_end(int bin)
{
    int log = bin / 8;
    if (log < 3) /* the bins of single nanoseconds */
        return bin;
    return (1LL << log) + ((long long)(bin % 8) << (log - 3));
}

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* An id to ask for: a hot one, or any, a tenth of which do not exist. */
static int pick(struct worker *w)
{
    const struct st_config *cfg = w->run->cfg;
    uint64_t r = next_random(&w->rng);
    if ((int)(r % 100) < cfg->hot_percent)
        return 1 + (int)((r >> 8) % (uint64_t)cfg->hot);
    return 1 + (int)((r >> 8) % (uint64_t)w->run->size);
}

/* Asks the database, and fills the cache with the answer (or with the
 * not-found placeholder). A failure is not cached. */
static int query(struct worker *w, struct st_row *row)
{
    struct run *run = w->run;
    int rc = st_db_get(w->db, w->id, row);
    if (rc == 0 || rc == ENOENT) {
        st_cache_put(run->cache, w->id, rc == 0 ? row : NULL);
        atomic_fetch_add_explicit(&run->ok_queries[w->id], 1,
                                  memory_order_relaxed);
    } else {
        w->r.db_fails++;
    }
    return rc;
}

/* The value hooks: every caller of a flight gets its own copy of the row,
 * and the flight's own is freed after the last. */
static void *copy_row(void *val, void *ctx)
{
    (void)ctx;
    struct st_row *copy = malloc(sizeof *copy);
    if (copy != NULL)
        *copy = *(struct st_row *)val;
    return copy;
}

static void free_row(void *val, void *ctx)
{
    (void)ctx;
    free(val);
}

/* fn of a flight: what doTake runs inside DoEx. */
static int load(void *arg, void **val)
{
    struct worker *w = arg;
    struct st_row row;
    enum st_look look = st_cache_get(w->run->cache, w->id, &row);
    if (look == ST_HIT_MISSING)
        return ENOENT;
    if (look == ST_MISS) {
        w->queried = true;
        int rc = query(w, &row);
        if (rc != 0)
            return rc;
    }
    *val = copy_row(&row, NULL);
    return *val != NULL ? 0 : ENOMEM;
}

/* A miss in sharedcalls mode: one flight per key. */
static int share_miss(struct worker *w, struct st_row *row)
{
    char key[16];
    snprintf(key, sizeof key, "%d", w->id);
    void *val = NULL;
    bool fresh = false;
    w->queried = false;
    int rc = sc_do_ex(w->run->g, key, load, w, &val, &fresh);
    if (rc == 0 && val != NULL)
        *row = *(struct st_row *)val;
    free(val); /* our own copy */
    if (!fresh)
        w->r.shared++;
    else if (w->queried)
        w->r.queries++;
    else
        w->r.hits++; /* filled by a flight that had just ended */
    return rc;
}

/* One request; returns its answer's code, with *row set on 0. */
static int ask(struct worker *w, struct st_row *row)
{
    switch (st_cache_get(w->run->cache, w->id, row)) {
    case ST_HIT:
        w->r.hits++;
        return 0;
    case ST_HIT_MISSING:
        w->r.hits++;
        return ENOENT;
    case ST_MISS:
        break;
    }
    if (w->run->mode == ST_SHAREDCALLS)
        return share_miss(w, row);
    w->r.queries++;
    return query(w, row);
}

/* Checks an answer against the table. */
static void judge(struct worker *w, int rc, const struct st_row *row)
{
    struct st_row want;
    st_row_of(w->id, &want);
    bool exists = w->id <= w->run->cfg->rows;
    if (rc == 0) {
        w->r.wrong += !exists || !st_row_equal(row, &want);
    } else if (rc == ENOENT) {
        w->r.wrong += exists;
        w->r.not_found++;
    } else if (rc == EIO)
        w->r.errors++;
    else
        w->r.wrong++; /* the kit's own failure: not an answer */
}

static bool more(struct worker *w)
{
    struct run *run = w->run;
    if (run->cfg->requests > 0)
        return atomic_fetch_add(&run->issued, 1) < run->cfg->requests;
    return !atomic_load_explicit(&run->stop, memory_order_relaxed);
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct run *run = w->run;
    pthread_mutex_lock(&run->gate_lock);
    while (!run->open)
        pthread_cond_wait(&run->gate, &run->gate_lock);
    pthread_mutex_unlock(&run->gate_lock);
    while (more(w)) {
        w->id = pick(w);
        struct st_row row;
        long long t0 = now_ns();
        int rc = ask(w, &row);
        long long ns = now_ns() - t0;
        judge(w, rc, &row);
        w->bins[bin_of(ns)]++;
        if (ns > w->r.max_ns)
            w->r.max_ns = ns;
        w->r.requests++;
        atomic_store_explicit(&w->done, w->r.requests, memory_order_relaxed);
    }
    return NULL;
}

static long long percentile(const long *bins, long total, double p)
{
    long want = (long)((double)total * p), seen = 0;
    for (int b = 0; b < BINS; b++) {
        seen += bins[b];
        if (seen > want)
            return low_end(b);
    }
    return low_end(BINS - 1);
}

static void progress(struct run *run, struct worker *ws, int n, double secs)
{
    long requests = 0;
    for (int i = 0; i < n; i++)
        requests += atomic_load_explicit(&ws[i].done, memory_order_relaxed);
    pthread_mutex_lock(&run->db_lock);
    long queries = run->db_queries;
    pthread_mutex_unlock(&run->db_lock);
    fprintf(stderr, "\r  %-12s %5.1f s  %10ld requests  %8ld queries ",
            run->mode == ST_NONE ? "none" : "sharedcalls", secs, requests,
            queries);
}

/* Waits for the run's end (its time, or its requests), showing progress. */
static void watch(struct run *run, struct worker *ws, int n, long long t0)
{
    const struct st_config *cfg = run->cfg;
    for (;;) {
        nanosleep(&(struct timespec){0, 100000000L}, NULL);
        double secs = (double)(now_ns() - t0) / 1e9;
        if (cfg->progress)
            progress(run, ws, n, secs);
        if (cfg->requests > 0 ? atomic_load(&run->issued) >= cfg->requests
                              : secs >= cfg->seconds)
            break;
    }
    atomic_store(&run->stop, true);
    if (cfg->progress)
        fprintf(stderr, "\r%70s\r", "");
}

/* Adds up the workers' results and the per-key counts. */
static void total(struct run *run, struct worker *ws, int n,
                  struct st_result *out)
{
    long *bins = run->bins;
    for (int i = 0; i < n; i++) {
        const struct st_result *r = &ws[i].r;
        out->requests += r->requests;
        out->hits += r->hits;
        out->shared += r->shared;
        out->queries += r->queries;
        out->not_found += r->not_found;
        out->errors += r->errors;
        out->db_fails += r->db_fails;
        out->wrong += r->wrong;
        out->max_ns = r->max_ns > out->max_ns ? r->max_ns : out->max_ns;
        for (int b = 0; b < BINS; b++)
            bins[b] += ws[i].bins[b];
    }
    out->p50_ns = percentile(bins, out->requests, 0.50);
    out->p99_ns = percentile(bins, out->requests, 0.99);
    for (int id = 1; id <= run->size; id++) {
        long ok = atomic_load(&run->ok_queries[id]);
        long fills = st_cache_fills(run->cache, id);
        out->over_once += ok > fills;
        if (id <= run->cfg->hot) {
            out->hot_queries += ok;
            out->hot_fills += fills;
        }
    }
}

static int start(struct run *run, struct worker *ws, int n)
{
    const struct st_config *cfg = run->cfg;
    for (int i = 0; i < n; i++) {
        ws[i].run = run;
        ws[i].rng = (cfg->seed + 1ULL) * 0x9E3779B97F4A7C15ULL + (uint64_t)i;
        ws[i].db =
            st_db_open(cfg->db_path, cfg->db_latency_ms, cfg->db_fail_every,
                       &run->db_queries, &run->db_lock);
        if (ws[i].db == NULL)
            return -EIO;
    }
    return 0;
}

int st_run(const struct st_config *cfg, enum st_mode mode,
           struct st_result *out)
{
    int n = cfg->threads, size = cfg->rows + cfg->rows / 10;
    struct run run = {.cfg = cfg, .mode = mode, .size = size};
    struct worker *ws = calloc((size_t)n, sizeof *ws);
    run.ok_queries = calloc((size_t)size + 1, sizeof *run.ok_queries);
    run.cache = st_cache_new(size, cfg->ttl_ms, cfg->missing_ttl_ms, cfg->seed);
    run.g = sc_new_with(&(sc_options){.share = copy_row, .drop = free_row});
    pthread_mutex_init(&run.db_lock, NULL);
    int rc = ws != NULL && run.ok_queries != NULL && run.cache != NULL &&
                     run.g != NULL
                 ? start(&run, ws, n)
                 : -ENOMEM;
    pthread_mutex_init(&run.gate_lock, NULL);
    pthread_cond_init(&run.gate, NULL);
    int started = 0;
    while (rc == 0 && started < n &&
           pthread_create(&ws[started].thread, NULL, work, &ws[started]) == 0)
        started++;
    if (rc == 0 && started < n) {
        rc = -EAGAIN;
        atomic_store(&run.stop, true); /* those started end at once */
    }
    long long t0 = now_ns();
    pthread_mutex_lock(&run.gate_lock);
    run.open = true;
    pthread_cond_broadcast(&run.gate);
    pthread_mutex_unlock(&run.gate_lock);
    if (rc == 0)
        watch(&run, ws, n, t0);
    for (int i = 0; i < started; i++)
        pthread_join(ws[i].thread, NULL);
    if (rc == 0) {
        *out = (struct st_result){.mode = mode,
                                  .seconds = (double)(now_ns() - t0) / 1e9};
        total(&run, ws, n, out);
    }
    pthread_cond_destroy(&run.gate);
    pthread_mutex_destroy(&run.gate_lock);
    for (int i = 0; ws != NULL && i < n; i++)
        st_db_close(ws[i].db);
    if (run.g != NULL && sc_free(run.g) != 0 && rc == 0)
        rc = -EBUSY;
    st_cache_free(run.cache);
    pthread_mutex_destroy(&run.db_lock);
    free(run.ok_queries);
    free(ws);
    return rc;
}
