/*
 * flight.c - the kit's full engine, for groups from sc_new_with: what the
 * reference port (sharedcalls.c) does, plus value hooks, Forget, the shared
 * flag, follower deadlines, -EDEADLK, cancellation and exit safety, and
 * statistics. The contract is in sharedcalls.h.
 *
 * The shape is the port's: one mutex guards the group (the map, the
 * counters, and every record's state, references and result), and a
 * follower waits on its record's condition variable until the state leaves
 * RUNNING. What is new: a record can end ABANDONED (its leader never came
 * back from fn); a forgotten record leaves the map before its flight ends;
 * and fn and the waits run inside cancellation cleanup handlers, C's
 * nearest thing to Go's defer.
 */
#define _POSIX_C_SOURCE 200809L

#include "flight.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HASH_NONFATAL_OOM 1 /* a failed insert returns; it must not exit() */
#include <uthash.h>

enum state { RUNNING, DONE, ABANDONED };

struct call {
    pthread_cond_t wake; /* on CLOCK_MONOTONIC, for deadlines */
    enum state state;
    unsigned refs;    /* callers that have yet to leave */
    unsigned joined;  /* callers that joined, the leader included */
    bool forgotten;   /* taken out of the map by sc_forget */
    pthread_t leader; /* the thread in fn: its own key is -EDEADLK */
    void *val;        /* the flight's own handle */
    int err;
    UT_hash_handle hh; /* links the record into its group's map */
    char key[];
};

struct sc_flight {
    pthread_mutex_t lock;
    pthread_condattr_t monotonic; /* how every record's wake is made */
    struct call *calls;           /* the map: key -> flight in progress */
    size_t records;               /* records alive, in the map or not */
    sc_options opts;
    struct sc_stats stats;
};

sc_group *sc_new_with(const sc_options *opts)
{
    sc_options o = opts != NULL ? *opts : (sc_options){0};
    if ((o.share == NULL) != (o.drop == NULL)) {
        errno = EINVAL;
        return NULL;
    }
    struct sc_flight *f = calloc(1, sizeof *f);
    if (f == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    int rc = pthread_condattr_init(&f->monotonic);
    if (rc == 0)
        rc = pthread_condattr_setclock(&f->monotonic, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_mutex_init(&f->lock, NULL);
    if (rc != 0) {
        free(f);
        errno = rc;
        return NULL;
    }
    f->opts = o;
    sc_group *g = sc__group_for(f);
    if (g == NULL) {
        pthread_mutex_destroy(&f->lock);
        pthread_condattr_destroy(&f->monotonic);
        free(f);
        errno = ENOMEM;
    }
    return g;
}

int sc__flight_free(struct sc_flight *f)
{
    pthread_mutex_lock(&f->lock);
    size_t busy = f->records;
    pthread_mutex_unlock(&f->lock);
    if (busy != 0)
        return -EBUSY;
    pthread_mutex_destroy(&f->lock);
    pthread_condattr_destroy(&f->monotonic);
    free(f);
    return 0;
}

/* A caller's own handle to a flight's value (the value itself, without
 * hooks). With f->lock held. */
static void *share(const struct sc_flight *f, void *val)
{
    return f->opts.share != NULL && val != NULL
               ? f->opts.share(val, f->opts.ctx)
               : val;
}

/* What is left to do once the last caller has left a record: it runs after
 * the lock is released, when f itself may already be gone, so it carries
 * its own copy of the hooks. */
struct ending {
    struct call *c; /* NULL: nothing to do */
    sc_options opts;
};

/* Drops one caller's reference, with f->lock held. */
static struct ending leave(struct sc_flight *f, struct call *c)
{
    if (--c->refs != 0)
        return (struct ending){NULL, {0}};
    f->records--;
    return (struct ending){c, f->opts};
}

static void finish(struct ending e)
{
    if (e.c == NULL)
        return;
    if (e.opts.drop != NULL && e.c->val != NULL)
        e.opts.drop(e.c->val, e.opts.ctx); /* the flight's own handle */
    pthread_cond_destroy(&e.c->wake);
    free(e.c);
}

/* Ends a flight, with f->lock held: out of the map (unless sc_forget took
 * it out already, so a newer flight for the key stays), followers woken. */
static void end_flight(struct sc_flight *f, struct call *c, enum state how)
{
    if (!c->forgotten)
        HASH_DEL(f->calls, c);
    c->state = how;
    f->stats.in_flight--;
    pthread_cond_broadcast(&c->wake);
}

struct in_flight {
    struct sc_flight *f;
    struct call *c;
};

/* Cleanup handler: the leader's thread was cancelled or exited inside fn.
 * Its followers get -ECANCELED, and the key is free for new flights. */
static void abandon(void *arg)
{
    struct in_flight *p = arg;
    pthread_mutex_lock(&p->f->lock);
    end_flight(p->f, p->c, ABANDONED);
    p->f->stats.cancelled++;
    struct ending e = leave(p->f, p->c);
    pthread_mutex_unlock(&p->f->lock);
    finish(e);
}

/* Runs fn as the leader of a new flight. Entered with f->lock held,
 * returns with it released. Returns 0 with *out set, or -ENOMEM. */
static int lead(struct sc_flight *f, const char *key, size_t len, sc_fn fn,
                void *arg, sc_result *out)
{
    struct call *c = malloc(sizeof *c + len + 1);
    if (c == NULL || pthread_cond_init(&c->wake, &f->monotonic) != 0) {
        pthread_mutex_unlock(&f->lock);
        free(c);
        return -ENOMEM;
    }
    memcpy(c->key, key, len + 1);
    c->state = RUNNING;
    c->refs = c->joined = 1;
    c->forgotten = false;
    c->leader = pthread_self();
    c->val = NULL;
    c->err = 0;
    HASH_ADD_KEYPTR(hh, f->calls, c->key, len, c);
    if (c->hh.tbl == NULL) { /* uthash rolled the failed insert back */
        pthread_mutex_unlock(&f->lock);
        pthread_cond_destroy(&c->wake);
        free(c);
        return -ENOMEM;
    }
    f->records++;
    f->stats.flights++;
    f->stats.callers++;
    f->stats.in_flight++;
    pthread_mutex_unlock(&f->lock);

    void *val = NULL;
    int err;
    struct in_flight self = {f, c};
    pthread_cleanup_push(abandon, &self);
    err = fn(arg, &val);
    pthread_cleanup_pop(0);

    pthread_mutex_lock(&f->lock);
    c->val = val;
    c->err = err;
    end_flight(f, c, DONE);
    *out = (sc_result){share(f, val), err, true, c->joined > 1};
    struct ending e = leave(f, c);
    pthread_mutex_unlock(&f->lock);
    finish(e);
    return 0;
}

/* Cleanup handler: a follower was cancelled in its wait, which has taken
 * the lock back. It leaves as if it had returned. */
static void depart(void *arg)
{
    struct in_flight *p = arg;
    p->f->stats.cancelled++;
    struct ending e = leave(p->f, p->c);
    pthread_mutex_unlock(&p->f->lock);
    finish(e);
}

/* Sleeps until c's flight ends or the deadline passes (ETIMEDOUT). */
static int wait_for(struct sc_flight *f, struct call *c,
                    const struct timespec *deadline)
{
    int rc = 0;
    while (c->state == RUNNING && rc == 0)
        rc = deadline == NULL
                 ? pthread_cond_wait(&c->wake, &f->lock)
                 : pthread_cond_timedwait(&c->wake, &f->lock, deadline);
    return rc;
}

/* Waits for the flight c, with f->lock held; returns with it released.
 * Returns 0 with *out set, -ETIMEDOUT or -ECANCELED. */
static int follow(struct sc_flight *f, struct call *c,
                  const struct timespec *deadline, sc_result *out)
{
    c->refs++;
    c->joined++;
    f->stats.callers++;
    int rc;
    struct in_flight self = {f, c};
    pthread_cleanup_push(depart, &self);
    rc = wait_for(f, c, deadline);
    pthread_cleanup_pop(0);

    switch (c->state) {
    case DONE:
        *out = (sc_result){share(f, c->val), c->err, false, true};
        f->stats.shared++;
        rc = 0;
        break;
    case ABANDONED:
        f->stats.cancelled++;
        rc = -ECANCELED;
        break;
    case RUNNING: /* the deadline passed first */
        f->stats.timed_out++;
        rc = -rc;
        break;
    }
    struct ending e = leave(f, c);
    pthread_mutex_unlock(&f->lock);
    finish(e);
    return rc;
}

static int run(struct sc_flight *f, const char *key, sc_fn fn, void *arg,
               const struct timespec *deadline, sc_result *out)
{
    size_t len = strlen(key);
    if (len > UINT_MAX ||
        (deadline != NULL &&
         (deadline->tv_nsec < 0 || deadline->tv_nsec >= 1000000000L)))
        return -EINVAL;
    struct call *c;
    pthread_mutex_lock(&f->lock);
    HASH_FIND(hh, f->calls, key, len, c);
    if (c == NULL)
        return lead(f, key, len, fn, arg, out);
    if (pthread_equal(c->leader, pthread_self())) { /* fn calls its own key */
        pthread_mutex_unlock(&f->lock);
        return -EDEADLK;
    }
    return follow(f, c, deadline, out);
}

int sc__flight_do_ex(struct sc_flight *f, const char *key, sc_fn fn, void *arg,
                     void **val, bool *fresh)
{
    sc_result r;
    int rc = run(f, key, fn, arg, NULL, &r);
    if (rc != 0)
        return rc;
    *val = r.val;
    if (fresh != NULL)
        *fresh = r.fresh;
    return r.err;
}

/* g's engine, or NULL with *rc set: -EINVAL for no group, -ENOTSUP for a
 * group from sc_new. */
static struct sc_flight *engine(sc_group *g, int *rc)
{
    struct sc_flight *f = g != NULL ? sc__flight_of(g) : NULL;
    if (f == NULL)
        *rc = g == NULL ? -EINVAL : -ENOTSUP;
    return f;
}

int sc_do_until(sc_group *g, const char *key, sc_fn fn, void *arg,
                const struct timespec *deadline, sc_result *out)
{
    int rc = -EINVAL;
    struct sc_flight *f = engine(g, &rc);
    if (f == NULL || key == NULL || fn == NULL || out == NULL)
        return rc;
    rc = run(f, key, fn, arg, deadline, out);
    return rc != 0 ? rc : out->err;
}

int sc_do_result(sc_group *g, const char *key, sc_fn fn, void *arg,
                 sc_result *out)
{
    return sc_do_until(g, key, fn, arg, NULL, out);
}

int sc_forget(sc_group *g, const char *key)
{
    int rc = -EINVAL;
    struct sc_flight *f = engine(g, &rc);
    if (f == NULL || key == NULL)
        return rc;
    size_t len = strlen(key);
    if (len > UINT_MAX)
        return -EINVAL;
    struct call *c;
    pthread_mutex_lock(&f->lock);
    HASH_FIND(hh, f->calls, key, len, c);
    if (c != NULL) {
        HASH_DEL(f->calls, c);
        c->forgotten = true;
    }
    pthread_mutex_unlock(&f->lock);
    return c != NULL ? 0 : -ENOENT;
}

int sc_stats(sc_group *g, struct sc_stats *out)
{
    int rc = -EINVAL;
    struct sc_flight *f = engine(g, &rc);
    if (f == NULL || out == NULL)
        return rc;
    pthread_mutex_lock(&f->lock);
    *out = f->stats;
    pthread_mutex_unlock(&f->lock);
    return 0;
}
