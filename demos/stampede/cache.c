/*
 * cache.c - an in-process cache of rows, with expiry.
 *
 * It stands where go-zero has Redis. Keys are the ids 1 .. size, so the
 * cache is an array; a lock per stripe of keys keeps workers on different
 * keys apart. Like go-zero's cache (expiryDeviation in cachenode.go), each
 * entry lives its TTL times a random factor in [0.95, 1.05], so entries
 * filled together do not all expire together.
 *
 * The expiry is chosen by whoever loaded the row (st_cache_expiry) and is
 * put with it: a row that crossed from another process keeps the expiry
 * its loader chose, as a TTL in a shared cache would, so every process
 * that received one load expires it at the same moment.
 */
#define _POSIX_C_SOURCE 200809L

#include "stampede.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

enum { STRIPES = 64 };

struct entry {
    long long expires; /* CLOCK_MONOTONIC ns; 0: never filled */
    long long delta;   /* how long the load that filled it took, ns */
    bool missing;      /* the not-found placeholder */
    struct st_row row;
    long fills; /* its lifetimes: puts that replaced what a look saw */
};

struct stripe {
    pthread_mutex_t lock;
    uint64_t rng; /* for the jitter of its keys */
};

struct st_cache {
    int size;
    long long ttl_ns, missing_ttl_ns;
    struct entry *entries; /* [1 .. size] */
    struct stripe stripes[STRIPES];
};

long long st_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

struct st_cache *st_cache_new(int size, int ttl_ms, int missing_ttl_ms,
                              unsigned seed)
{
    struct st_cache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->entries = calloc((size_t)size + 1, sizeof *c->entries);
    if (c->entries == NULL) {
        free(c);
        return NULL;
    }
    c->size = size;
    c->ttl_ns = ttl_ms * 1000000LL;
    c->missing_ttl_ns = missing_ttl_ms * 1000000LL;
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_init(&c->stripes[i].lock, NULL);
        c->stripes[i].rng = (seed + 1ULL) * 0x9E3779B97F4A7C15ULL + (uint64_t)i;
    }
    return c;
}

void st_cache_free(struct st_cache *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&c->stripes[i].lock);
    free(c->entries);
    free(c);
}

static struct stripe *stripe_of(struct st_cache *c, int id)
{
    return &c->stripes[id % STRIPES];
}

enum st_look st_cache_get(struct st_cache *c, int id, struct st_row *out,
                          struct st_seen *seen)
{
    struct stripe *s = stripe_of(c, id);
    const struct entry *e = &c->entries[id];
    enum st_look look = ST_MISS;
    pthread_mutex_lock(&s->lock);
    *seen = (struct st_seen){e->fills, e->expires, e->delta, false};
    if (e->expires > st_now_ns()) {
        seen->live = true;
        look = e->missing ? ST_HIT_MISSING : ST_HIT;
        if (!e->missing)
            *out = e->row; /* a copy: the entry may change once unlocked */
    }
    pthread_mutex_unlock(&s->lock);
    return look;
}

long long st_cache_expiry(struct st_cache *c, int id, bool found)
{
    struct stripe *s = stripe_of(c, id);
    long long ttl = found ? c->ttl_ns : c->missing_ttl_ns;
    long long spread = ttl / 10; /* the width of [0.95, 1.05] */
    pthread_mutex_lock(&s->lock);
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    long long jitter = (long long)(s->rng % (uint64_t)(spread + 1));
    pthread_mutex_unlock(&s->lock);
    return st_now_ns() + ttl - spread / 2 + jitter;
}

bool st_cache_put(struct st_cache *c, int id, const struct st_row *row,
                  const struct st_seen *seen, long long expires,
                  long long delta)
{
    struct stripe *s = stripe_of(c, id);
    struct entry *e = &c->entries[id];
    pthread_mutex_lock(&s->lock);
    /* A load after a hit was not needed, and another put since the look
     * has filled this lifetime already (with the same row): either would
     * count a lifetime that was not. */
    bool fill = !seen->live && e->fills == seen->fills;
    if (fill) {
        e->fills++;
        e->missing = row == NULL;
        if (row != NULL)
            e->row = *row;
        e->expires = expires;
        e->delta = delta;
    }
    pthread_mutex_unlock(&s->lock);
    return fill;
}

long st_cache_fills(const struct st_cache *c, int id)
{
    return c->entries[id].fills; /* read after the workers have ended */
}
