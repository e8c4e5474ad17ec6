/*
 * engine_new.c - making and freeing a group of the full engine: the
 * router, its shards, and the kit-thread bookkeeping. The contract is
 * sc_new_with and sc_free in sharedcalls.h.
 */
#define _GNU_SOURCE /* PTHREAD_MUTEX_ADAPTIVE_NP, where glibc has it */

#include "engine.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * A shard's critical sections are a few dozen nanoseconds, so a thread
 * that finds the lock taken should spin for a moment rather than sleep in
 * the kernel at once, which glibc's default mutex does: with two threads
 * on a sharded group that sleep cost more than the shards saved. glibc's
 * adaptive mutex spins first; elsewhere the default.
 */
static int make_spinning_lock(pthread_mutex_t *lock)
{
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    pthread_mutexattr_t attr;
    int rc = pthread_mutexattr_init(&attr);
    if (rc == 0)
        rc = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    if (rc == 0)
        rc = pthread_mutex_init(lock, &attr);
    pthread_mutexattr_destroy(&attr);
    return rc;
#else
    return pthread_mutex_init(lock, NULL);
#endif
}

/* Makes s an empty shard whose flights are numbered first, first + stride,
 * ... Returns 0 or an errno value, with nothing left to free. */
static int shard_init(struct shard *s, const sc_options *o,
                      unsigned long stride, unsigned long first)
{
    int rc = make_spinning_lock(&s->lock);
    if (rc != 0)
        return rc;
    s->opts = *o;
    s->stride = stride;
    s->first = first;
    return 0;
}

static void shard_fini(struct shard *s)
{
    free(s->table);
    free(s->spare);
    pthread_mutex_destroy(&s->lock);
}

static int kit_threads_init(struct kit_threads *t)
{
    int rc = pthread_mutex_init(&t->lock, NULL);
    if (rc == 0 && (rc = pthread_cond_init(&t->idle, NULL)) != 0)
        pthread_mutex_destroy(&t->lock);
    return rc;
}

static void kit_threads_fini(struct kit_threads *t)
{
    pthread_cond_destroy(&t->idle);
    pthread_mutex_destroy(&t->lock);
}

/* Frees e, the first n of whose shards were made. */
static void engine_free(struct engine *e, unsigned n)
{
    while (n-- > 0)
        shard_fini(&e->shards[n]);
    kit_threads_fini(&e->threads);
    free(e->block);
}

/* A zeroed engine of n shards, each on cache lines of its own: calloc
 * aligns to 16 bytes only, so the block is a line larger and the engine
 * starts at its first line boundary. */
static struct engine *engine_alloc(unsigned n)
{
    size_t size = sizeof(struct engine) + n * sizeof(struct shard);
    void *block = calloc(1, size + LINE - 1);
    if (block == NULL)
        return NULL;
    struct engine *e = (struct engine *)(((uintptr_t)block + LINE - 1) &
                                         ~(uintptr_t)(LINE - 1));
    e->block = block;
    return e;
}

sc_group *sc_new_with(const sc_options *opts)
{
    sc_options o = opts != NULL ? *opts : (sc_options){0};
    if ((o.share == NULL) != (o.drop == NULL) || o.shards > SC_SHARDS_MAX) {
        errno = EINVAL;
        return NULL;
    }
    unsigned n = o.shards > 1 ? o.shards : 1;
    struct engine *e = engine_alloc(n);
    if (e == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    int rc = kit_threads_init(&e->threads);
    if (rc != 0) {
        free(e->block);
        errno = rc;
        return NULL;
    }
    e->base.kind = SC_GROUP_ENGINE;
    for (e->nshards = 0; e->nshards < n; e->nshards++) {
        rc = shard_init(&e->shards[e->nshards], &o, n, e->nshards + 1UL);
        if (rc != 0) {
            engine_free(e, e->nshards);
            errno = rc;
            return NULL;
        }
    }
    return &e->base;
}

int sc__engine_free(sc_group *g)
{
    struct engine *e = engine_of(g);
    bool busy = false;
    for (unsigned i = 0; i < e->nshards; i++) {
        struct shard *s = &e->shards[i];
        shard_lock(s);
        busy |= s->records != 0 || shard_in_flight(s) != 0;
        shard_unlock(s);
    }
    pthread_mutex_lock(&e->threads.lock);
    busy |= e->threads.running != 0 || e->threads.draining != 0;
    pthread_mutex_unlock(&e->threads.lock);
    if (busy)
        return -EBUSY;
    sc__join_ended(&e->threads); /* nobody calls in any more */
    engine_free(e, e->nshards);
    return 0;
}
