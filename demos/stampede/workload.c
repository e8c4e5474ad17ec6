/*
 * workload.c - one process's workers asking for users through its cache,
 * in one of four modes, and what that costs the database.
 *
 * The miss path of sharedcalls is go-zero's doTake
 * (core/stores/internal/cachenode.go at 7e3a369a8, lines 145-180):
 * sc_do_ex for the key, whose fn looks in the cache, then queries the
 * database and fills the cache; a missing row leaves a not-found
 * placeholder with a short TTL, so that asking for ids that do not exist
 * cannot pierce the cache; a failed query is shared by the followers, and
 * not retried by each of them. go-zero sends every request through DoEx;
 * here a request looks in the cache first, so that a hit skips the group,
 * and fn's look catches a flight that ended a moment ago. The redis mode
 * is the same path through scr_do, across the fleet. With --mode none a
 * miss queries at once; xfetch queries at once too, but usually before
 * the entry has expired.
 */
#define _POSIX_C_SOURCE 200809L

#include "fleet.h"

#include "sharedcalls.h"
#include "sharedcalls-redis.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const st_mode_names[ST_MODES] = {"none", "sharedcalls", "redis",
                                             "xfetch"};

/* One process of the fleet. */
struct proc {
    const struct st_config *cfg;
    enum st_mode mode;
    struct st_fleet *fleet;
    struct st_slot *slot;
    struct st_cache *cache;  /* this process's own */
    sc_group *g;             /* sharedcalls */
    scr_group *rg;           /* redis */
    atomic_long *ok_queries; /* per id: this process's queries that filled */
    int size;                /* ids asked for: 1 .. size */
};

struct worker {
    struct proc *proc;
    pthread_t thread;
    struct st_db *db;
    uint64_t rng;
    int id;           /* the id being asked for */
    bool queried;     /* its own fn queried the database */
    bool copied;      /* its own fn found the fleet's copy */
    redisContext *rc; /* the fleet's copy: NULL until needed */
    struct st_result r;
    long bins[ST_BINS];
};

/* Latency bins: below 8 ns one a nanosecond, then eight for each power
 * of two (the top three bits after the leading one). */
int st_bin_of(long long ns)
{
    if (ns < 8)
        return (int)(ns < 0 ? 0 : ns);
    int log = 63 - __builtin_clzll((unsigned long long)ns); /* >= 3 */
    return log * 8 + (int)((unsigned long long)ns >> (log - 3) & 7);
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
    const struct st_config *cfg = w->proc->cfg;
    uint64_t r = next_random(&w->rng);
    if ((int)(r % 100) < cfg->hot_percent)
        return 1 + (int)((r >> 8) % (uint64_t)cfg->hot);
    return 1 + (int)((r >> 8) % (uint64_t)w->proc->size);
}

/* Asks the database, and fills the cache with the answer (or with the
 * not-found placeholder) unless another fill came after the look *seen;
 * *expires (if not NULL) is when the answer expires. A failure is not
 * cached. */
static int query(struct worker *w, struct st_row *row,
                 const struct st_seen *seen, long long *expires)
{
    struct proc *p = w->proc;
    /* Every attempt, failed ones too: they load the database as much. */
    if (w->id <= p->cfg->hot)
        atomic_fetch_add(&p->fleet->hot_queries, 1);
    long long t0 = st_now_ns();
    int rc = st_db_get(w->db, w->id, row);
    if (rc == 0 || rc == ENOENT) {
        long long delta = st_now_ns() - t0;
        long long until = st_cache_expiry(p->cache, w->id, rc == 0);
        st_cache_put(p->cache, w->id, rc == 0 ? row : NULL, seen, until, delta);
        if (expires != NULL)
            *expires = until;
        atomic_fetch_add_explicit(&p->ok_queries[w->id], 1,
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
    struct st_seen seen;
    enum st_look look = st_cache_get(w->proc->cache, w->id, &row, &seen);
    if (look == ST_HIT_MISSING)
        return ENOENT;
    if (look == ST_MISS) {
        w->queried = true;
        int rc = query(w, &row, &seen, NULL);
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
    int rc = sc_do_ex(w->proc->g, key, load, w, &val, &fresh);
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

/* The row as bytes, to cross processes: a tag, the id, whether the row
 * exists, its two strings, and the expiry its loader chose, so that every
 * process that receives one load expires it at the same moment. Every
 * process runs on this machine: host byte order, and CLOCK_MONOTONIC,
 * which they share (a fleet of machines would fix the order and send wall
 * clock time). */
enum {
    W_TAG = 0,
    W_ID = 4,
    W_FOUND = 8,
    W_NAME = 9,
    W_EMAIL = W_NAME + 16,
    W_EXPIRES = W_EMAIL + 32,
    WIRE_LEN = W_EXPIRES + 8
};
static const char wire_tag[4] = {'S', 'T', 'R', '1'};

static void *encode(int id, const struct st_row *row, long long expires,
                    size_t *len)
{
    unsigned char *b = calloc(1, WIRE_LEN);
    if (b == NULL)
        return NULL;
    memcpy(b + W_TAG, wire_tag, sizeof wire_tag);
    memcpy(b + W_ID, &id, 4);
    b[W_FOUND] = row != NULL;
    if (row != NULL) {
        memcpy(b + W_NAME, row->name, 16);
        memcpy(b + W_EMAIL, row->email, 32);
    }
    memcpy(b + W_EXPIRES, &expires, 8);
    *len = WIRE_LEN;
    return b;
}

/* 0 with *row (if found), *found and *expires; EBADMSG if buf is not a
 * row that encode wrote. */
static int decode(const unsigned char *buf, size_t len, struct st_row *row,
                  bool *found, long long *expires)
{
    if (len != WIRE_LEN || memcmp(buf + W_TAG, wire_tag, 4) != 0 ||
        buf[W_FOUND] > 1 || buf[W_EMAIL - 1] != '\0' ||
        buf[W_EXPIRES - 1] != '\0')
        return EBADMSG;
    memset(row, 0, sizeof *row);
    memcpy(&row->id, buf + W_ID, 4);
    memcpy(row->name, buf + W_NAME, 16);
    memcpy(row->email, buf + W_EMAIL, 32);
    memcpy(expires, buf + W_EXPIRES, 8);
    *found = buf[W_FOUND] == 1;
    return 0;
}

/*
 * The fleet's copy of a row. Singleflight remembers nothing once a flight
 * has ended: a process whose first miss comes after the fleet's flight
 * for the key (its threads were busy, or not scheduled: tens of ms on a
 * loaded machine, against a query's 5 ms) would lead a flight of its own
 * and query again, and that load's expiry would split the fleet into two
 * groups that expire apart from then on. So the leader leaves the row in
 * Redis, with its expiry, until it expires, and fn looks there before it
 * queries, as doTake looks in the cache: a late process gets the same
 * row, and the same expiry. (--no-fleet-copy shows the fleet without it.)
 */
static redisContext *copy_conn(struct worker *w)
{
    if (w->rc != NULL && w->rc->err == 0)
        return w->rc;
    redisFree(w->rc); /* broken: a new one */
    const char *why;
    w->rc = st_redis_connect(w->proc->cfg->redis_socket,
                             w->proc->cfg->redis_password, 500, &why);
    return w->rc;
}

/* 0 with the copy's *row, *found and *expires; ENOENT if there is none
 * (or it has expired); EIO if Redis failed; EBADMSG if the copy is not a
 * row that encode wrote. */
static int copy_get(struct worker *w, struct st_row *row, bool *found,
                    long long *expires)
{
    redisContext *c = copy_conn(w);
    redisReply *r = c == NULL ? NULL
                              : redisCommand(c, "GET %s{%d}:row",
                                             w->proc->fleet->prefix, w->id);
    int rc = EIO;
    if (r != NULL && r->type == REDIS_REPLY_NIL)
        rc = ENOENT;
    else if (r != NULL && r->type == REDIS_REPLY_STRING)
        rc = decode((const unsigned char *)r->str, r->len, row, found, expires);
    if (r != NULL)
        freeReplyObject(r);
    return rc == 0 && *expires <= st_now_ns() ? ENOENT : rc;
}

/* Leaves bytes in Redis until expires; a failure only loses the copy. */
static void copy_set(struct worker *w, const void *bytes, size_t len,
                     long long expires)
{
    long long ms = (expires - st_now_ns()) / 1000000;
    redisContext *c = ms > 0 ? copy_conn(w) : NULL;
    redisReply *r =
        c == NULL ? NULL
                  : redisCommand(c, "SET %s{%d}:row %b PX %lld",
                                 w->proc->fleet->prefix, w->id, bytes, len, ms);
    if (r != NULL)
        freeReplyObject(r);
}

/* fn of a fleet-wide flight: load() again, its row as bytes. It runs in
 * one process of the fleet, which fills its own cache here; the others
 * fill theirs with what they receive. */
static int load_bytes(void *arg, void **buf, size_t *len)
{
    struct worker *w = arg;
    struct st_row row;
    struct st_seen seen;
    enum st_look look = st_cache_get(w->proc->cache, w->id, &row, &seen);
    long long expires = seen.expires;
    bool found = look == ST_HIT, copy = w->proc->cfg->fleet_copy;
    if (look == ST_MISS) {
        int rc = copy ? copy_get(w, &row, &found, &expires) : ENOENT;
        if (rc == EBADMSG)
            return rc; /* garbled: never used, and judged wrong */
        w->copied = rc == 0;
        if (w->copied) {
            st_cache_put(w->proc->cache, w->id, found ? &row : NULL, &seen,
                         expires, 0);
        } else {
            w->queried = true;
            rc = query(w, &row, &seen, &expires);
            if (rc != 0 && rc != ENOENT)
                return rc; /* not shared with the fleet: one takes over */
            found = rc == 0;
        }
    }
    *buf = encode(w->id, found ? &row : NULL, expires, len);
    if (*buf == NULL)
        return ENOMEM;
    if (look == ST_MISS && !w->copied && copy)
        copy_set(w, *buf, *len, expires);
    return 0;
}

/* A miss in redis mode: one flight per key across the fleet. *seen is the
 * request's look, which the row received fills. */
static int fleet_miss(struct worker *w, struct st_row *row,
                      const struct st_seen *seen)
{
    char key[16];
    snprintf(key, sizeof key, "%d", w->id);
    scr_result res = {0};
    w->queried = w->copied = false;
    int rc = scr_do(w->proc->rg, key, load_bytes, w, &res);
    bool ok = rc == 0;
    if (ok) {
        bool found = false;
        long long expires = 0;
        rc = decode(res.val, res.len, row, &found, &expires);
        free(res.val);
        if (rc == 0 && res.origin != SCR_THIS_THREAD)
            st_cache_put(w->proc->cache, w->id, found ? row : NULL, seen,
                         expires, 0);
        if (rc == 0 && !found)
            rc = ENOENT;
    }
    w->r.timed_out += rc == -ETIMEDOUT; /* no answer: never judged wrong */
    if (w->queried) {
        w->r.queries++;     /* a query ran, even if its answer came too late */
    } else if (w->copied) { /* another process's query, late */
        w->r.shared++;
        w->r.remote++;
        w->r.copied++;
    } else if (rc == -ETIMEDOUT) {
        w->r.waited_out++; /* waited for another's, in vain */
    } else if (ok && res.origin == SCR_THIS_THREAD) {
        w->r.hits++; /* filled by a flight that had just ended */
    } else {
        w->r.shared++;
        w->r.remote += ok && res.origin == SCR_OTHER_PROCESS;
    }
    return rc;
}

/*
 * XFetch (Vattani, Chierichetti and Lowenstein, "Optimal Probabilistic
 * Cache Stampede Prevention", VLDB 2015), in our words: no reader waits
 * for another, and none takes a lock. A reader that finds a live entry
 * draws a random head start and acts as if the clock were that much
 * later: if that is past the expiry, it reloads the entry now. The head
 * start is delta * beta * -ln(u), u uniform in (0, 1]: scaled by delta,
 * how long the entry's last load took, so that a slow load starts
 * earlier; exponential, so that it is usually short and only rarely long.
 * Under many readers the first long draw comes a little before the
 * expiry, that reader reloads while the others keep reading the old
 * entry, and the expiry is never reached. A second reader may draw long
 * before the first has put its row: that costs a query, never a wait.
 */
static bool xfetch_early(struct worker *w, const struct st_seen *seen)
{
    double u = (double)((next_random(&w->rng) >> 11) + 1) * 0x1p-53;
    double head = (double)seen->delta * w->proc->cfg->beta * -log(u);
    return (double)st_now_ns() + head >= (double)seen->expires;
}

/* One request; returns its answer's code, with *row set on 0. */
static int ask(struct worker *w, struct st_row *row)
{
    struct proc *p = w->proc;
    struct st_seen seen;
    enum st_look look = st_cache_get(p->cache, w->id, row, &seen);
    if (look != ST_MISS && p->mode == ST_XFETCH && xfetch_early(w, &seen)) {
        w->r.early++;
        look = ST_MISS;
        seen.live = false; /* the draw ended its life */
    }
    switch (look) {
    case ST_HIT:
        w->r.hits++;
        return 0;
    case ST_HIT_MISSING:
        w->r.hits++;
        return ENOENT;
    case ST_MISS:
        break;
    }
    if (p->mode == ST_SHAREDCALLS)
        return share_miss(w, row);
    if (p->mode == ST_REDIS)
        return fleet_miss(w, row, &seen);
    w->r.queries++;
    return query(w, row, &seen, NULL);
}

/* Checks an answer against the table. */
static void judge(struct worker *w, int rc, const struct st_row *row)
{
    struct st_row want;
    st_row_of(w->id, &want);
    bool exists = w->id <= w->proc->cfg->rows;
    if (rc == 0) {
        w->r.wrong += !exists || !st_row_equal(row, &want);
    } else if (rc == ENOENT) {
        w->r.wrong += exists;
        w->r.not_found++;
    } else if (rc == EIO)
        w->r.errors++;
    else if (rc != -ETIMEDOUT) /* a timeout is counted as one, not judged */
        w->r.wrong++; /* the kit's own failure, or bytes garbled: no answer */
}

static bool more(struct worker *w)
{
    struct st_fleet *f = w->proc->fleet;
    if (atomic_load_explicit(&f->stop, memory_order_relaxed))
        return false;
    long limit = w->proc->cfg->requests;
    return limit == 0 || atomic_fetch_add(&f->issued, 1) < limit;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    st_fleet_wait_open(w->proc->fleet);
    while (more(w)) {
        w->id = pick(w);
        struct st_row row;
        long long t0 = st_now_ns();
        int rc = ask(w, &row);
        long long ns = st_now_ns() - t0;
        judge(w, rc, &row);
        w->bins[st_bin_of(ns)]++;
        if (ns > w->r.max_ns)
            w->r.max_ns = ns;
        /* The progress line's count, a few at a time: fewer shared
         * writes. */
        if (++w->r.requests % 64 == 0)
            atomic_fetch_add_explicit(&w->proc->slot->done, 64,
                                      memory_order_relaxed);
    }
    return NULL;
}

/* Adds up the workers' results and the per-key counts into the slot. */
static void total(struct proc *p, struct worker *ws, int n)
{
    struct st_result *out = &p->slot->r;
    for (int i = 0; i < n; i++) { /* a worker's last four counts are 0 */
        st_result_add(out, &ws[i].r);
        for (int b = 0; b < ST_BINS; b++)
            p->slot->bins[b] += ws[i].bins[b];
    }
    for (int id = 1; id <= p->size; id++) {
        long ok = atomic_load(&p->ok_queries[id]);
        long fills = st_cache_fills(p->cache, id);
        out->over_once += ok > fills;
        if (id <= p->cfg->hot)
            out->hot_fills += fills;
    }
    struct scr_stats st;
    if (p->rg != NULL && scr_stats(p->rg, &st) == 0) {
        out->takeovers = st.takeovers;
        out->fallbacks = st.fallbacks;
        out->stale = st.stale;
    }
}

/* The mode's group: sharedcalls's in the process, or redis's in the
 * fleet. 0 or a negative errno. */
static int make_group(struct proc *p)
{
    if (p->mode == ST_SHAREDCALLS) {
        p->g = sc_new_with(&(sc_options){.share = copy_row, .drop = free_row});
        return p->g != NULL ? 0 : -ENOMEM;
    }
    if (p->mode != ST_REDIS)
        return 0;
    int err = -ENOMEM;
    scr_options o = {.unix_socket = p->cfg->redis_socket,
                     .password = p->cfg->redis_password,
                     .prefix = p->fleet->prefix};
    p->rg = scr_new(&o, &err);
    if (p->rg == NULL)
        fprintf(stderr, "stampede: redis on %s: %s\n", o.unix_socket,
                strerror(-err));
    return p->rg != NULL ? 0 : err;
}

static int open_workers(struct proc *p, struct worker *ws, int n, int index)
{
    const struct st_config *cfg = p->cfg;
    for (int i = 0; i < n; i++) {
        ws[i].proc = p;
        ws[i].rng = (cfg->seed + 1ULL) * 0x9E3779B97F4A7C15ULL +
                    (uint64_t)index * 0x100000001ULL + (uint64_t)i;
        ws[i].db = st_db_open(cfg->db_path, cfg->db_latency_ms,
                              cfg->db_fail_every, &p->fleet->db_queries);
        if (ws[i].db == NULL)
            return -EIO;
    }
    return 0;
}

int st_process(const struct st_config *cfg, enum st_mode mode,
               struct st_fleet *f, int index)
{
    int n = cfg->threads, size = cfg->rows + cfg->rows / 10;
    struct proc p = {.cfg = cfg,
                     .mode = mode,
                     .fleet = f,
                     .slot = &f->slots[index],
                     .size = size};
    struct worker *ws = calloc((size_t)n, sizeof *ws);
    p.ok_queries = calloc((size_t)size + 1, sizeof *p.ok_queries);
    /* A seed per process: their jitters are their own. */
    p.cache = st_cache_new(size, cfg->ttl_ms, cfg->missing_ttl_ms,
                           cfg->seed + (unsigned)index * 7919U);
    int rc = ws != NULL && p.ok_queries != NULL && p.cache != NULL
                 ? make_group(&p)
                 : -ENOMEM;
    if (rc == 0)
        rc = open_workers(&p, ws, n, index);
    int started = 0;
    while (rc == 0 && started < n &&
           pthread_create(&ws[started].thread, NULL, work, &ws[started]) == 0)
        started++;
    if (rc == 0 && started < n)
        rc = -EAGAIN;
    st_fleet_ready(f, index, rc); /* on a failure, the fleet stops at once */
    for (int i = 0; i < started; i++)
        pthread_join(ws[i].thread, NULL);
    if (rc == 0)
        total(&p, ws, n);
    for (int i = 0; ws != NULL && i < n; i++) {
        st_db_close(ws[i].db);
        redisFree(ws[i].rc);
    }
    if (p.g != NULL && sc_free(p.g) != 0 && rc == 0)
        rc = -EBUSY;
    if (p.rg != NULL && scr_free(p.rg) != 0 && rc == 0)
        rc = -EBUSY;
    st_cache_free(p.cache);
    free(p.ok_queries);
    free(ws);
    p.slot->rc = rc;
    return rc;
}
