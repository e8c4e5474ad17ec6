/*
 * sharedcalls.c - the reference port of go-zero's core/syncx/sharedcalls.go
 * at commit 7e3a369a8 (July 2020). The contract is in sharedcalls.h.
 *
 * Every statement line of the Go file is named by a tag in a comment beside
 * the C that carries it out; C lines that Go does without carry a c-only tag
 * that says why. scripts/check-annotations defines the tags and checks them.
 *
 * One mutex per group guards everything in the group: the map, and in every
 * call record the reference count, the done flag and the result. Go gets by
 * with less because its WaitGroup is a synchronisation object of its own and
 * its garbage collector frees a record once nobody can reach it. In C the
 * follower's wait is a condition variable over the done flag, and the record
 * counts the callers that still have to read it.
 */
#define _POSIX_C_SOURCE 200809L

#include "sharedcalls.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HASH_NONFATAL_OOM 1 /* a failed insert returns; it must not exit() */
#include <uthash.h>

#include "group.h" /* what a group is; the front door, api.c, calls in */
#include "zoo.h"   /* MUTANT(name): the bug zoo's mistakes, off by default */

/* What a flight produced: fn's value and code. */
struct sc_outcome {
    void *val;
    int err;
};

/* One flight (Go's call), guarded by its group's lock. The key is copied
 * into the record itself. */
struct sc_call {
    pthread_cond_t wake; /* with done, what Go's WaitGroup is */
    bool done;           /* res is final */
    unsigned refs;       /* callers that have not yet read res */
    struct sc_outcome res;
    UT_hash_handle hh; /* links the record into its group's map */
    char key[];
};

/* go-zero's sharedGroup. */
struct port_group {
    struct sc_group base;  /* c-only: its kind, for the front door */
    pthread_mutex_t lock;  /* guards everything below, and every record */
    struct sc_call *calls; /* the map: key -> flight in progress */
    size_t records;        /* records alive, in the map or still being read */
};

sc_group *sc_new(void)
{
    struct port_group *g = malloc(sizeof *g); /* go:30 make the group */
    if (g == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    int rc = pthread_mutex_init(&g->lock, NULL);
    if (rc != 0) { /* c-only: a Go mutex needs no set-up that can fail */
        free(g);
        errno = rc;
        return NULL;
    }
    g->base.kind = SC_GROUP_PORT;
    g->calls = NULL; /* go:31 an empty uthash map is a NULL head */
    g->records = 0;
    return &g->base; /* go:30 */
}

/* c-only: Go's collector frees a group; sc_free (api.c) calls this */
int sc__port_free(sc_group *base)
{
    struct port_group *g = (struct port_group *)base;
    pthread_mutex_lock(&g->lock);
    size_t busy = g->records; /* c-only: no collector waits for callers */
    pthread_mutex_unlock(&g->lock);
    if (busy != 0)
        return -EBUSY;
    pthread_mutex_destroy(&g->lock);
    free(g);
    return 0;
}

/* c-only: drops one caller's reference with g->lock held. Returns true when
 * that was the last, and the caller must free c once it has unlocked. */
static bool release(struct port_group *g, struct sc_call *c)
{
    if (--c->refs != 0)
        return false;
    g->records--;
    return true;
}

static void call_free(struct sc_call *c)
{
    pthread_cond_destroy(&c->wake);
    free(c);
}

/* Runs fn as the leader of a new flight for key (Go's makeCall). Entered
 * with g->lock held, returns with it released. Returns 0 with *out set, or
 * -ENOMEM without having run fn. */
static int make_call(struct port_group *g, const char *key, size_t len,
                     sc_fn fn, void *arg, struct sc_outcome *out)
{
    struct sc_call *c = malloc(sizeof *c + len + 1); /* go:60 a new record */
    if (c == NULL || pthread_cond_init(&c->wake, NULL) != 0) {
        free(c); /* c-only: out of memory; the group is left as it was */
        pthread_mutex_unlock(&g->lock);
        return -ENOMEM;
    }
    memcpy(c->key, key, len + 1); /* c-only: the caller's buffer may change */
    c->done = false;              /* go:61 one result to wait for */
    c->refs = 1;                  /* c-only: the leader's reference */
    HASH_ADD_KEYPTR(hh, g->calls, c->key, len, c); /* go:62 publish c */
    if (c->hh.tbl == NULL) { /* c-only: uthash rolled the failed insert back */
        pthread_mutex_unlock(&g->lock);
        call_free(c);
        return -ENOMEM;
    }
    g->records++;
    pthread_mutex_unlock(&g->lock); /* go:63 followers may now find c */

    struct sc_outcome res = {NULL, 0};
    res.err = fn(arg, &res.val); /* go:74 run fn, with no lock held */

#if MUTANT(delete_unlocked) /* zoo: the map changes under others' lookups */
    HASH_DEL(g->calls, c);
    pthread_mutex_lock(&g->lock);
#elif MUTANT(done_before_delete) /* zoo: the delete moves below */
    pthread_mutex_lock(&g->lock);
#else
    /* go:65 what Go defers runs here, once fn has returned; unlike a defer
     * it is skipped if fn never returns (longjmp, pthread_exit, cancel) */
    pthread_mutex_lock(&g->lock); /* go:68 */
    /* go:66 Go deletes before Done; here delete, store and done share one
     * critical section, so no other thread can see them in any order. */
    HASH_DEL(g->calls, c); /* go:69 later callers start a new flight */
#endif
#if MUTANT(publish_before_write) /* zoo: done before the result is stored */
    c->done = true;
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&g->lock);
    c->res = res; /* woken followers may have read c->res already */
    pthread_mutex_lock(&g->lock);
#else
    c->res = res;                     /* go:74 store the result for followers */
    c->done = true;                   /* go:71 */
    pthread_cond_broadcast(&c->wake); /* go:71 wake every follower */
#endif
#if MUTANT(done_before_delete) /* zoo: done first, delete in a 2nd section */
    pthread_mutex_unlock(&g->lock);
    pthread_mutex_lock(&g->lock); /* a late caller may join c here, done */
    HASH_DEL(g->calls, c);
#endif
    bool last = release(g, c);
#if MUTANT(early_free) /* zoo: freed though followers still hold it */
    last = true;
#endif
    pthread_mutex_unlock(&g->lock); /* go:70 */
    if (last)
        call_free(c); /* c-only: no follower joined */
    *out = res;
    return 0; /* go:75 hand the result to Do or DoEx */
}

/* Go's Do and DoEx: DoEx reports fresh, Do passes NULL. api.c has
 * checked the arguments (c-only: Go's cannot be nil) and measured key. */
int sc__port_do(sc_group *base, const char *key, size_t len, sc_fn fn,
                void *arg, void **val, bool *fresh)
{
    struct port_group *g = (struct port_group *)base;
    struct sc_call *c;
    struct sc_outcome res;
#if MUTANT(lookup_unlocked) /* zoo: the map read while others change it */
    HASH_FIND(hh, g->calls, key, len, c);
    pthread_mutex_lock(&g->lock);
#else
    pthread_mutex_lock(&g->lock);     /* go:36 go:48 */
    HASH_FIND(hh, g->calls, key, len, c); /* go:37 go:49 a flight for key? */
#endif
    if (c != NULL) {
        c->refs++; /* c-only: keeps c alive until this follower has read it */
#if MUTANT(wait_no_predicate) /* zoo: a wait that never checks done */
        pthread_mutex_unlock(&g->lock);
        pthread_mutex_lock(&g->lock); /* the leader may finish in between, */
        pthread_cond_wait(&c->wake, &g->lock); /* and then nobody wakes us */
#else
        /* go:39 go:51 wait for done, rechecked after every wake-up */
        while (!c->done)
            pthread_cond_wait(&c->wake, &g->lock); /* go:38 go:50 unlocks */
#endif
        res = c->res;
        bool last = release(g, c);
        pthread_mutex_unlock(&g->lock); /* c-only: the wait relocked it */
        if (last)
            call_free(c);
        *val = res.val;
        if (fresh != NULL)
            *fresh = false; /* go:52 a follower shared the result */
        return res.err;     /* go:40 go:52 */
    }

    int rc = make_call(g, key, len, fn, arg, &res); /* go:43 go:55 lead */
    if (rc != 0)
        return rc; /* c-only: out of memory; fn not run, *val untouched */
    *val = res.val;
    if (fresh != NULL)
        *fresh = true; /* go:56 this caller ran fn */
    return res.err;    /* go:44 go:56 */
}
