/*
 * flight.c - the kit's full engine, for groups from sc_new_with: what the
 * reference port (sharedcalls.c) does, plus value hooks, Forget, the shared
 * flag, follower deadlines, -EDEADLK, cancellation and exit safety, and
 * statistics. The contract is in sharedcalls.h.
 *
 * The shape is the port's: one mutex guards the group (the map, the
 * counters, and every record's state and result), and a follower waits
 * until the state leaves RUNNING. What is new: a record can end ABANDONED
 * (its leader never came back from fn); a forgotten record leaves the map
 * before its flight ends; fn and the waits run inside cancellation cleanup
 * handlers, C's nearest thing to Go's defer; and a flight can have
 * asynchronous waiters, whose results are made when it ends and delivered
 * by the thread that ends it.
 *
 * And it is built for speed (book/08-performance.md): followers sleep on
 * their record's state word without the lock and are woken all at once
 * (gate.h); a follower of a finished flight reads the result, which no
 * longer changes, and leaves through an atomic reference count; and with
 * the shards option, the group is N engines of this kind, one per slice
 * of the keys' hashes.
 */
#define _GNU_SOURCE /* PTHREAD_MUTEX_ADAPTIVE_NP, where glibc has it */

#include "flight.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/helgrind.h> /* no-ops, unless run under Valgrind */

#include "gate.h"

#define HASH_NONFATAL_OOM 1 /* a failed insert returns; it must not exit() */
#include <uthash.h>

/* A flight is RUNNING until it ends DONE (fn returned) or ABANDONED (its
 * leader never came back from fn). With the handoff option, a failed or
 * abandoned leader sets HANDOFF instead: the first follower to see it runs
 * fn itself, and the flight is RUNNING again. */
enum state { RUNNING, HANDOFF, DONE, ABANDONED };

/* An asynchronous caller of a flight. It holds no reference to the record:
 * its result is made, under the lock, when the flight ends. */
struct waiter {
    sc_done_fn done;
    void *done_arg;
    bool fresh; /* its call started the flight */
    int rc;
    sc_result r;
    unsigned long flight; /* its flight's number, for the trace hook */
    struct waiter *next;
    char key[]; /* its own copy: the record may go before it is answered */
};

/* A thread the kit started for an asynchronous leader. */
struct kit_thread {
    pthread_t id;
    struct kit_thread *next;
};

struct call {
    /* The state as followers see it without the lock: (changes << 2) |
     * state. They sleep on it (gate.h); it changes only under the lock,
     * and one wake-all tells every sleeper at once. */
    atomic_uint word;
    unsigned sleeping; /* followers asleep on word since its last change */
    bool wake_due;     /* word changed with followers asleep on it */
    bool watched;      /* a follower reads word without the lock */
    enum state state;
    enum state fallback; /* HANDOFF: how it ends if no follower takes it */
    unsigned followers;  /* synchronous followers that could take a hand-off
                            (under the lock; not kept once DONE) */
    atomic_uint refs;    /* callers that have yet to leave: a follower of a
                            DONE flight leaves without the lock */
    unsigned joined;     /* callers that joined, the leader included */
    bool in_map;         /* false once ended, or taken out by sc_forget */
    bool async;          /* its leader is a kit thread, not a caller */
    pthread_t leader;    /* the thread in fn: its own key is -EDEADLK */
    unsigned long id;    /* the flight's number, for the trace hook */
    void *val;           /* the flight's own handle */
    int err;
    struct waiter *waiters; /* asynchronous callers, answered at the end */
    UT_hash_handle hh;      /* links the record into its group's map */
    char key[];
};

struct sc_flight {
    pthread_mutex_t lock;
    struct call *calls;  /* the map: key -> flight in progress */
    struct call *anchor; /* always in the map, so uthash keeps its table */
    size_t records;      /* records alive, in the map or not */
    sc_options opts;
    struct sc_stats stats;
    unsigned long flights;       /* flights numbered so far */
    unsigned long stride, first; /* numbers: first, first + stride, ... */
    unsigned nshards;            /* > 1: this engine only routes, to */
    struct sc_flight *shards;    /* engines of their own, by key hash */
    size_t threads;              /* kit threads still running */
    size_t draining;             /* sc_drain calls under way */
    pthread_cond_t idle;         /* signalled when threads drops to 0 */
    struct kit_thread *exited;   /* kit threads that ended, to be joined */
};

/* Tells the trace hook of o about an event. */
static void emit_slow(const sc_options *o, sc_event ev)
{
    int cancel_state; /* a hook cancelled inside the kit would strand it */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    clock_gettime(CLOCK_MONOTONIC, &ev.at);
    ev.thread = pthread_self();
    o->trace(&ev, o->trace_ctx);
    pthread_setcancelstate(cancel_state, NULL);
}

/* Events are emitted through these two, so that a group without a hook
 * pays one test of a pointer per event and nothing else. */
static inline void emit(const sc_options *o, sc_event_kind kind,
                        const char *key, unsigned long flight, int code)
{
    if (o->trace != NULL)
        emit_slow(
            o, (sc_event){
                   .kind = kind, .key = key, .flight = flight, .code = code});
}

/* The RETURN event: what a call gives its caller (out: NULL or its result). */
static inline void emit_return(const sc_options *o, const char *key,
                               unsigned long flight, int rc,
                               const sc_result *out)
{
    if (o->trace != NULL)
        emit_slow(o, (sc_event){.kind = SC_EV_RETURN,
                                .key = key,
                                .flight = flight,
                                .code = rc,
                                .fresh = out != NULL && out->fresh,
                                .shared = out != NULL && out->shared});
}

/* The hash of a key, computed before the lock is taken. */
static unsigned hash_of(const char *key, size_t len)
{
    /* Eight bytes at a time, each word folded in by a multiply: a fifth of
     * the instructions of uthash's Jenkins hash on short keys, and every
     * bit of the result depends on every byte, as the shards (high bits)
     * and uthash's buckets (low bits) both need. */
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ len;
    for (; len >= 8; key += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, key, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
    }
    uint64_t tail = 0;
    memcpy(&tail, key, len);
    h = (h ^ tail) * 0x94D049BB133111EBULL;
    h ^= h >> 29;
    return (unsigned)(h ^ (h >> 32));
}

/*
 * uthash frees its table when the last record leaves the map and makes a
 * new one for the next: three allocations per call when flights do not
 * overlap. So an anchor record stays in the map for the group's life. Its
 * key is "" but its hash is not that of "": a lookup compares hashes before
 * keys, so no key can ever find it.
 */
static int anchor(struct sc_flight *f)
{
    f->anchor = calloc(1, sizeof *f->anchor + 1);
    if (f->anchor == NULL)
        return -ENOMEM;
    HASH_ADD_KEYPTR_BYHASHVALUE(hh, f->calls, f->anchor->key, 0,
                                hash_of("", 0) + 1, f->anchor);
    if (f->anchor->hh.tbl == NULL) {
        free(f->anchor);
        f->anchor = NULL;
        return -ENOMEM;
    }
    return 0;
}

static void unanchor(struct sc_flight *f)
{
    if (f->anchor != NULL)
        HASH_DEL(f->calls, f->anchor); /* the last: uthash frees its table */
    free(f->anchor);
    f->anchor = NULL;
}

/*
 * The engine's lock. Its critical sections are a few dozen nanoseconds,
 * so a thread that finds it taken should spin for a moment rather than
 * sleep in the kernel at once, which glibc's default mutex does: with
 * two threads on a sharded group that sleep cost more than the shards
 * saved. glibc's adaptive mutex spins first; elsewhere the default.
 */
static int make_lock(pthread_mutex_t *lock)
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

/* Makes f an empty engine with options o, whose flights are numbered
 * first, first + stride, ... Returns 0 or an errno value. */
static int engine_init(struct sc_flight *f, const sc_options *o,
                       unsigned long stride, unsigned long first)
{
    int rc = pthread_cond_init(&f->idle, NULL);
    if (rc == 0 && (rc = make_lock(&f->lock)) != 0)
        pthread_cond_destroy(&f->idle);
    if (rc != 0)
        return rc;
    f->opts = *o;
    f->stride = stride;
    f->first = first;
    if (anchor(f) != 0) {
        pthread_mutex_destroy(&f->lock);
        pthread_cond_destroy(&f->idle);
        return ENOMEM;
    }
    return 0;
}

static void engine_fini(struct sc_flight *f)
{
    unanchor(f);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->idle);
}

/* Frees f and its shards, the first n of which were made. */
static void engines_free(struct sc_flight *f, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        engine_fini(&f->shards[i]);
    free(f->shards);
    engine_fini(f);
    free(f);
}

/* With the shards option: each shard an engine of its own. Returns 0 or
 * an errno value, with every shard that was made freed again. */
static int make_shards(struct sc_flight *f, const sc_options *o)
{
    f->shards = calloc(o->shards, sizeof *f->shards);
    if (f->shards == NULL)
        return ENOMEM;
    for (unsigned i = 0; i < o->shards; i++) {
        int rc = engine_init(&f->shards[i], o, o->shards, i + 1UL);
        if (rc != 0) {
            while (i-- > 0)
                engine_fini(&f->shards[i]);
            free(f->shards);
            f->shards = NULL;
            return rc;
        }
    }
    f->nshards = o->shards;
    return 0;
}

sc_group *sc_new_with(const sc_options *opts)
{
    sc_options o = opts != NULL ? *opts : (sc_options){0};
    if ((o.share == NULL) != (o.drop == NULL) || o.shards > SC_SHARDS_MAX) {
        errno = EINVAL;
        return NULL;
    }
    struct sc_flight *f = calloc(1, sizeof *f);
    int rc = f != NULL ? engine_init(f, &o, 1, 1) : ENOMEM;
    if (rc != 0) {
        free(f);
        errno = rc;
        return NULL;
    }
    if (o.shards > 1 && (rc = make_shards(f, &o)) != 0) {
        engines_free(f, 0);
        errno = rc;
        return NULL;
    }
    sc_group *g = sc__group_for(f);
    if (g == NULL) {
        engines_free(f, f->nshards);
        errno = ENOMEM;
    }
    return g;
}

/* The engine that serves keys of hash hashv: f, or one of its shards. The
 * hash's high bits pick the shard, and its low bits uthash's bucket. */
static struct sc_flight *route(struct sc_flight *f, unsigned hashv)
{
    return f->nshards > 1 ? &f->shards[(hashv >> 16) % f->nshards] : f;
}

/* f itself, or each of its shards: the engines that hold calls. */
static struct sc_flight *engine_at(struct sc_flight *f, unsigned i)
{
    return f->nshards > 1 ? &f->shards[i] : f;
}

static unsigned engines(const struct sc_flight *f)
{
    return f->nshards > 1 ? f->nshards : 1;
}

/* Takes the lock of the engine that serves key (into *f) and returns the
 * flight in progress for key, or NULL; *hashv is the key's hash. The hash
 * is computed before the lock is taken. */
static inline struct call *find_locked(struct sc_flight **f, const char *key,
                                       size_t len, unsigned *hashv)
{
    struct call *c;
    *hashv = hash_of(key, len);
    *f = route(*f, *hashv);
    pthread_mutex_lock(&(*f)->lock);
    HASH_FIND_BYHASHVALUE(hh, (*f)->calls, key, len, *hashv, c);
    return c;
}

/* Joins kit threads that have ended, and frees their list. */
static void join_all(struct kit_thread *t)
{
    while (t != NULL) {
        struct kit_thread *next = t->next;
        pthread_join(t->id, NULL);
        free(t);
        t = next;
    }
}

int sc__flight_free(struct sc_flight *f)
{
    bool busy = false;
    for (unsigned i = 0; i < engines(f); i++) {
        struct sc_flight *e = engine_at(f, i);
        pthread_mutex_lock(&e->lock);
        busy |= e->records != 0 || e->threads != 0 || e->draining != 0;
        pthread_mutex_unlock(&e->lock);
    }
    if (busy)
        return -EBUSY;
    for (unsigned i = 0; i < engines(f); i++) /* nobody calls in any more */
        join_all(engine_at(f, i)->exited);
    engines_free(f, f->nshards);
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

/* What is left to do after a caller has left a record, once the lock is
 * released: answer asynchronous waiters if the flight ended, and free the
 * record if this was its last caller. f may be gone by then, so it carries
 * its own copy of the hooks. */
struct ending {
    struct sc_flight *f;
    struct call *wake; /* to wake its sleepers, then leave */
    struct waiter *ws; /* to deliver to */
    struct call *c;    /* to free; NULL: not the last caller */
    sc_options opts;
};

/* Drops one reference to c. Returns true if it was the last: then the
 * caller frees c (and counts it off f->records) once nobody else can. */
static bool unref(struct call *c)
{
    if (!c->watched) /* no follower yet: every reference moved under the lock */
        return atomic_fetch_sub_explicit(&c->refs, 1, memory_order_relaxed) ==
               1;
    ANNOTATE_HAPPENS_BEFORE(&c->refs); /* Valgrind's tools cannot see */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return false; /* ...the order the atomics give */
    ANNOTATE_HAPPENS_AFTER(&c->refs);
    return true;
}

/* Changes c's state, with f->lock held. Followers asleep on the word are
 * woken by the next leave, once the lock is released. */
static void publish(struct call *c, enum state s)
{
    c->state = s;
    unsigned w = atomic_load_explicit(&c->word, memory_order_relaxed);
    ANNOTATE_HAPPENS_BEFORE(&c->word);
    atomic_store_explicit(&c->word, ((w >> 2) + 1) << 2 | s,
                          memory_order_release);
    c->wake_due |= c->sleeping > 0;
    c->sleeping = 0;
}

/* unref for a caller outside the lock: the last one out also counts the
 * record off f, and then frees it. */
static bool last_out(struct sc_flight *f, struct call *c)
{
    if (!unref(c))
        return false;
    pthread_mutex_lock(&f->lock);
    f->records--;
    pthread_mutex_unlock(&f->lock);
    return true;
}

static void free_call(struct call *c)
{
    if (c->watched)
        VALGRIND_HG_ENABLE_CHECKING(&c->word, sizeof c->word);
    free(c);
}

static struct waiter *end_flight(struct sc_flight *f, struct call *c,
                                 enum state how);

/* Drops one caller's reference, with f->lock held. The last follower that
 * could have taken a handed-off flight ends it as its leader left it. */
static struct ending leave(struct sc_flight *f, struct call *c)
{
    struct ending e = {f, NULL, NULL, NULL, f->opts};
    if (c->state == HANDOFF && c->followers == 0) /* nobody left to take it */
        e.ws = end_flight(f, c, c->fallback);
    if (c->wake_due) { /* keep the reference until they are woken */
        c->wake_due = false;
        e.wake = c;
    } else if (unref(c)) {
        f->records--;
        e.c = c;
    }
    return e;
}

static void deliver(struct waiter *w, const sc_options *o);

/* Wakes the followers asleep on a flight that has changed, then drops
 * the reference leave kept for it. Before anything else: the followers
 * have waited longest, and a callback may wait for one of them. */
static void wake_followers(struct ending *e)
{
    if (e->wake == NULL)
        return;
    gate_wake_all(&e->wake->word);
    if (last_out(e->f, e->wake)) /* while it counts, e->f is still there */
        e->c = e->wake;
    e->wake = NULL;
}

static void finish(struct ending e)
{
    wake_followers(&e);
    deliver(e.ws, &e.opts);
    if (e.c == NULL)
        return;
    if (e.opts.drop != NULL && e.c->val != NULL)
        e.opts.drop(e.c->val, e.opts.ctx); /* the flight's own handle */
    free_call(e.c);
}

/* Ends a flight, with f->lock held: out of the map (unless sc_forget took
 * it out already, so a newer flight for the key stays), followers woken,
 * asynchronous waiters' results made. Returns the waiters, for deliver. */
static struct waiter *end_flight(struct sc_flight *f, struct call *c,
                                 enum state how)
{
    if (c->in_map) { /* sc_forget may have taken it out, for a newer flight */
        HASH_DEL(f->calls, c);
        emit(&f->opts, SC_EV_DELETE, c->key, c->id, 0);
    }
    c->in_map = false;
    f->stats.in_flight -= c->state == RUNNING; /* a hand-off was counted */
    f->stats.shared += how == DONE ? c->sleeping : 0; /* they see DONE */
    publish(c, how);
    emit(&f->opts, SC_EV_DONE, c->key, c->id,
         how == DONE ? c->err : -ECANCELED);
    for (struct waiter *w = c->waiters; w != NULL; w = w->next) {
        if (how == DONE) {
            w->r =
                (sc_result){share(f, c->val), c->err, w->fresh, c->joined > 1};
            w->rc = c->err;
            f->stats.shared += !w->fresh;
        } else {
            w->rc = -ECANCELED;
            f->stats.cancelled++;
        }
    }
    struct waiter *ws = c->waiters;
    c->waiters = NULL;
    return ws;
}

/* Calls the asynchronous waiters back, without the lock, and frees them.
 * o is a copy of the group's options: the group may be gone. */
static void deliver(struct waiter *w, const sc_options *o)
{
    while (w != NULL) {
        struct waiter *next = w->next;
        bool answered = w->rc != -ECANCELED;
        emit_return(o, w->key, w->flight, w->rc, answered ? &w->r : NULL);
        w->done(w->done_arg, w->rc, answered ? &w->r : NULL);
        free(w);
        w = next;
    }
}

struct in_flight {
    struct sc_flight *f;
    struct call *c;
};

/* With the handoff option and a follower waiting, passes the failed or
 * abandoned flight c on instead of ending it; with f->lock held. */
static bool hand_off(struct sc_flight *f, struct call *c, enum state fallback)
{
    if (!f->opts.handoff || c->followers == 0) /* nobody to take it */
        return false;
    c->fallback = fallback;
    c->val = NULL; /* the failed run's value stays with its leader */
    f->stats.in_flight--;
    publish(c, HANDOFF);
    emit(&f->opts, SC_EV_HANDOFF, c->key, c->id,
         fallback == DONE ? c->err : -ECANCELED);
    return true;
}

/* Takes the waiter whose call started the flight off c's list (an
 * asynchronous leader's caller), or NULL. With f->lock held. */
static struct waiter *take_initiator(struct call *c)
{
    for (struct waiter **p = &c->waiters; *p != NULL; p = &(*p)->next)
        if ((*p)->fresh) {
            struct waiter *w = *p;
            *p = w->next;
            w->next = NULL;
            return w;
        }
    return NULL;
}

/* Cleanup handler: the leader's thread was cancelled or exited inside fn.
 * Its followers get -ECANCELED (or, with handoff, one of them takes over),
 * and the key is free for new flights. */
static void abandon(void *arg)
{
    struct in_flight *p = arg;
    pthread_mutex_lock(&p->f->lock);
    emit(&p->f->opts, SC_EV_CANCEL, p->c->key, p->c->id, 0);
    p->f->stats.cancelled += !p->c->async; /* a kit thread is no caller */
    struct waiter *ws = NULL;
    if (!hand_off(p->f, p->c, ABANDONED))
        ws = end_flight(p->f, p->c, ABANDONED);
    else if ((ws = take_initiator(p->c)) != NULL) { /* its run, not the next */
        ws->rc = -ECANCELED;
        p->f->stats.cancelled++;
    }
    struct ending e = leave(p->f, p->c);
    pthread_mutex_unlock(&p->f->lock);
    wake_followers(&e);
    deliver(ws, &e.opts);
    finish(e);
}

/* A new flight for key, in the map, with one reference (its leader's) and
 * one caller. With f->lock held; NULL when memory runs out. */
static struct call *new_call(struct sc_flight *f, const char *key, size_t len,
                             unsigned hashv)
{
    struct call *c = malloc(sizeof *c + len + 1);
    if (c == NULL)
        return NULL;
    memcpy(c->key, key, len + 1);
    atomic_init(&c->word, RUNNING);
    c->watched = false;
    c->sleeping = 0;
    c->wake_due = false;
    c->state = c->fallback = RUNNING;
    atomic_init(&c->refs, 1);
    c->followers = 0;
    c->joined = 1;
    c->in_map = true;
    c->async = false;
    c->leader = pthread_self();
    c->val = NULL;
    c->err = 0;
    c->waiters = NULL;
    c->id = f->flights * f->stride + f->first;
    HASH_ADD_KEYPTR_BYHASHVALUE(hh, f->calls, c->key, len, hashv, c);
    if (c->hh.tbl == NULL) { /* uthash rolled the failed insert back */
        free_call(c);
        return NULL;
    }
    f->records++;
    f->flights++;
    f->stats.flights++;
    f->stats.callers++;
    f->stats.in_flight++;
    return c;
}

/* What one run of fn left its leader. */
struct flown {
    void *val;
    int err;
    bool handed;       /* it failed and a follower takes over */
    struct waiter *ws; /* answer these */
    int cancel_state;  /* the caller's, restored by land; -1: untouched */
};

/* Whether code of the caller's (hooks, callbacks) may run before a call
 * that has c returns. Then cancellation must wait: a cancelled hook could
 * strand the lock or skip a waiter. With f->lock held. */
static bool runs_user_code(const struct sc_flight *f, const struct call *c)
{
    return f->opts.share != NULL || f->opts.trace != NULL || c->waiters != NULL;
}

/* Runs fn for the flight c and ends it, or hands it on if it failed;
 * returns with f->lock held. If the thread never comes back from fn, a
 * cleanup handler abandons the flight instead. From fn's return until
 * conclude, cancellation waits: the hooks and callbacks run in between,
 * and must neither strand the lock nor skip a waiter. */
static struct flown fly(struct sc_flight *f, struct call *c, sc_fn fn,
                        void *arg)
{
    struct flown r = {NULL, 0, false, NULL, -1};
    struct in_flight self = {f, c};
    pthread_cleanup_push(abandon, &self);
    emit(&f->opts, SC_EV_FN_START, c->key, c->id, 0);
    r.err = fn(arg, &r.val);
    emit(&f->opts, SC_EV_FN_RETURN, c->key, c->id, r.err);
    pthread_cleanup_pop(0);
    pthread_mutex_lock(&f->lock); /* not a cancellation point */
    if (runs_user_code(f, c))
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &r.cancel_state);
    c->err = r.err;
    r.handed = r.err != 0 && hand_off(f, c, DONE);
    if (!r.handed) {
        c->val = r.val;
        r.ws = end_flight(f, c, DONE);
    } else if (c->async && (r.ws = take_initiator(c)) != NULL) {
        /* an asynchronous leader's caller gets its own run's result */
        r.ws->r = (sc_result){share(f, r.val), r.err, true, c->joined > 1};
        r.ws->rc = r.err;
    }
    return r;
}

/* What a leader does after its run, synchronous or not: leave c (with
 * f->lock held, released here), drop a value its run handed on with the
 * flight, answer the waiters, and let cancellation in again. */
static void land(struct sc_flight *f, struct call *c, struct flown r)
{
    struct ending e = leave(f, c);
    pthread_mutex_unlock(&f->lock);
    wake_followers(&e);
    if (r.handed && e.opts.drop != NULL && r.val != NULL)
        e.opts.drop(r.val, e.opts.ctx);
    deliver(r.ws, &e.opts);
    finish(e);
    if (r.cancel_state >= 0)
        pthread_setcancelstate(r.cancel_state, NULL);
}

/* The end of a synchronous leader's call, with f->lock held; returns with
 * it released. */
static int conclude(struct sc_flight *f, struct call *c, struct flown r,
                    sc_result *out)
{
    *out = (sc_result){share(f, r.val), r.err, true, c->joined > 1};
    land(f, c, r);
    return 0;
}

/* Runs fn as the leader of a new flight. Entered with f->lock held,
 * returns with it released. Returns 0 with *out set, or -ENOMEM. */
static int lead(struct sc_flight *f, const char *key, size_t len,
                unsigned hashv, sc_fn fn, void *arg, sc_result *out,
                unsigned long *flight)
{
    struct call *c = new_call(f, key, len, hashv);
    if (c != NULL) {
        *flight = c->id;
        emit(&f->opts, SC_EV_LEAD, key, c->id, 0);
    }
    pthread_mutex_unlock(&f->lock);
    if (c == NULL)
        return -ENOMEM;
    struct flown r = fly(f, c, fn, arg);
    return conclude(f, c, r, out);
}

/* A follower takes a handed-off flight and runs its own fn for it. */
static int take_over(struct sc_flight *f, struct call *c, sc_fn fn, void *arg,
                     sc_result *out)
{
    publish(c, RUNNING);
    c->followers--; /* it leads now */
    c->leader = pthread_self();
    c->async = false; /* its leader is a caller again */
    f->stats.flights++;
    f->stats.in_flight++;
    emit(&f->opts, SC_EV_LEAD, c->key, c->id, 0);
    pthread_mutex_unlock(&f->lock);
    struct flown r = fly(f, c, fn, arg);
    return conclude(f, c, r, out);
}

struct dozing {
    struct sc_flight *f;
    struct call *c;
    unsigned seen; /* the word it fell asleep on */
};

/* Cleanup handler: a follower was cancelled in its sleep. It leaves as if
 * it had returned. */
static void depart(void *arg)
{
    struct dozing *d = arg;
    pthread_mutex_lock(&d->f->lock);
    if (atomic_load(&d->c->word) == d->seen) /* nobody woke it */
        d->c->sleeping--;
    emit(&d->f->opts, SC_EV_CANCEL, d->c->key, d->c->id, 0);
    d->f->stats.cancelled++;
    d->c->followers--;
    struct ending e = leave(d->f, d->c);
    pthread_mutex_unlock(&d->f->lock);
    finish(e);
}

/* Whether an absolute CLOCK_MONOTONIC deadline (NULL: none) has passed. */
static bool passed(const struct timespec *deadline)
{
    struct timespec now;
    if (deadline == NULL)
        return false;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Sleeps on c until its word changes (returns 0, with the new word in
 * *now) or the deadline passes (ETIMEDOUT). Entered with f->lock held,
 * returns without it. A cancellation point: the thread then departs. */
static int doze(struct sc_flight *f, struct call *c, unsigned seen,
                const struct timespec *deadline, unsigned *now)
{
    struct dozing d = {f, c, seen};
    c->sleeping++;
    pthread_mutex_unlock(&f->lock);
    int rc = 0;
    pthread_cleanup_push(depart, &d);
    while (rc == 0 &&
           atomic_load_explicit(&c->word, memory_order_acquire) == d.seen)
        rc = gate_wait(&c->word, d.seen, deadline);
    pthread_cleanup_pop(0);
    *now = atomic_load_explicit(&c->word, memory_order_acquire);
    if (*now == d.seen)
        return ETIMEDOUT;
    ANNOTATE_HAPPENS_AFTER(&c->word);
    return 0; /* changed: woken, even if the deadline passed as well */
}

/* Whether a follower of a DONE flight may take its result without the
 * lock: no share hook needs it, and no trace hook expects WAKE under it. */
static bool quiet(const struct sc_flight *f)
{
    return f->opts.share == NULL && f->opts.trace == NULL;
}

/* A follower woken for DONE, without the lock: the result no longer
 * changes, and the leader counted this follower as shared. */
static int take_result(struct sc_flight *f, struct call *c, sc_result *out)
{
    *out = (sc_result){c->val, c->err, false, true};
    if (last_out(f, c)) /* no hooks, so just free it */
        free_call(c);
    return 0;
}

/* Waits for the flight c, with f->lock held; returns with it released.
 * Returns 0 with *out set, -ETIMEDOUT or -ECANCELED. With the handoff
 * option, it may run fn itself (take_over). */
static int follow(struct sc_flight *f, struct call *c, sc_fn fn, void *arg,
                  const struct timespec *deadline, sc_result *out)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    c->followers++;
    if (!c->watched) {     /* Valgrind's tools cannot see atomics: the word's */
        c->watched = true; /* reads outside the lock are not races */
        VALGRIND_HG_DISABLE_CHECKING(&c->word, sizeof c->word);
    }
    c->joined++;
    f->stats.callers++;
    emit(&f->opts, SC_EV_JOIN, c->key, c->id, 0);
    int rc = 0;
    bool counted = false; /* asleep when DONE came, it was counted then */
    while (c->state == RUNNING && rc == 0) {
        unsigned seen = atomic_load_explicit(&c->word, memory_order_relaxed);
        unsigned now;
        rc = doze(f, c, seen, deadline, &now);
        if (rc == 0 && (now & 3) == DONE && quiet(f))
            return take_result(f, c, out);
        pthread_mutex_lock(&f->lock);
        if (rc != 0 && (now = atomic_load(&c->word)) == seen)
            c->sleeping--; /* timed out, and nothing changed: not woken */
        else
            rc = 0; /* it changed, and counted this one as woken */
        counted = (now & 3) == DONE;
    }
    if (rc == 0)
        emit(&f->opts, SC_EV_WAKE, c->key, c->id, 0);

    if (c->state == HANDOFF && rc == 0) {
        if (!passed(deadline))
            return take_over(f, c, fn, arg, out);
        rc = ETIMEDOUT;
    }
    int cancel_state = -1; /* the share hook and finish run uncancelled */
    if (runs_user_code(f, c))
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    switch (c->state) {
    case DONE:
        *out = (sc_result){share(f, c->val), c->err, false, true};
        f->stats.shared += !counted;
        rc = 0;
        break;
    case ABANDONED:
        f->stats.cancelled++;
        rc = -ECANCELED;
        break;
    case RUNNING: /* the deadline passed first */
    case HANDOFF:
        emit(&f->opts, SC_EV_TIMEOUT, c->key, c->id, 0);
        f->stats.timed_out++;
        rc = -rc;
        break;
    }
    c->followers--;
    struct ending e = leave(f, c);
    pthread_mutex_unlock(&f->lock);
    finish(e);
    if (cancel_state >= 0)
        pthread_setcancelstate(cancel_state, NULL);
    return rc;
}

/* A call's way through the engine; *flight is set once it has one. */
static int run(struct sc_flight *f, const char *key, sc_fn fn, void *arg,
               const struct timespec *deadline, sc_result *out,
               unsigned long *flight)
{
    size_t len = strlen(key);
    emit(&f->opts, SC_EV_ENTER, key, 0, 0);
    if (len > UINT_MAX ||
        (deadline != NULL &&
         (deadline->tv_nsec < 0 || deadline->tv_nsec >= 1000000000L)))
        return -EINVAL;
    unsigned hashv;
    struct call *c = find_locked(&f, key, len, &hashv);
    if (c == NULL)
        return lead(f, key, len, hashv, fn, arg, out, flight);
    *flight = c->id;
    if (c->state == RUNNING && /* fn calls its own key */
        pthread_equal(c->leader, pthread_self())) {
        pthread_mutex_unlock(&f->lock);
        return -EDEADLK;
    }
    return follow(f, c, fn, arg, deadline, out);
}

/* run, then the RETURN event. */
static int traced_run(struct sc_flight *f, const char *key, sc_fn fn, void *arg,
                      const struct timespec *deadline, sc_result *out)
{
    unsigned long flight = 0;
    sc_options o = {.trace = f->opts.trace,          /* a done callback may */
                    .trace_ctx = f->opts.trace_ctx}; /* free the group */
    int rc = run(f, key, fn, arg, deadline, out, &flight);
    emit_return(&o, key, flight, rc != 0 ? rc : out->err, rc != 0 ? NULL : out);
    return rc;
}

int sc__flight_do_ex(struct sc_flight *f, const char *key, sc_fn fn, void *arg,
                     void **val, bool *fresh)
{
    sc_result r;
    int rc = traced_run(f, key, fn, arg, NULL, &r);
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
    rc = traced_run(f, key, fn, arg, deadline, out);
    return rc != 0 ? rc : out->err;
}

int sc_do_result(sc_group *g, const char *key, sc_fn fn, void *arg,
                 sc_result *out)
{
    return sc_do_until(g, key, fn, arg, NULL, out);
}

/* What a kit thread needs to lead an asynchronous flight. */
struct async_start {
    struct sc_flight *f;
    struct call *c;
    sc_fn fn;
    void *arg;
    struct kit_thread *self;
};

/* Cleanup handler, run however a kit thread ends: it queues itself to be
 * joined, and the last one out wakes sc_drain. */
static void kit_thread_done(void *arg)
{
    struct async_start *a = arg;
    struct sc_flight *f = a->f;
    pthread_mutex_lock(&f->lock);
    a->self->next = f->exited;
    f->exited = a->self;
    if (--f->threads == 0)
        pthread_cond_broadcast(&f->idle);
    pthread_mutex_unlock(&f->lock);
    free(a);
}

static void *async_leader(void *arg)
{
    struct async_start *a = arg;
    pthread_cleanup_push(kit_thread_done, a);
    land(a->f, a->c, fly(a->f, a->c, a->fn, a->arg));
    pthread_cleanup_pop(1);
    return NULL;
}

/* Starts a kit thread to lead c, with f->lock held. */
static int start_leader(struct sc_flight *f, struct call *c, sc_fn fn,
                        void *arg)
{
    struct async_start *a = malloc(sizeof *a);
    struct kit_thread *t = malloc(sizeof *t);
    int rc = a != NULL && t != NULL ? 0 : ENOMEM;
    if (rc == 0) {
        *a = (struct async_start){f, c, fn, arg, t};
        rc = pthread_create(&t->id, NULL, async_leader, a);
    }
    if (rc != 0) {
        free(a);
        free(t);
        return rc == ENOMEM ? -ENOMEM : -EAGAIN;
    }
    c->leader = t->id; /* before anyone can look: the lock is held */
    f->threads++;
    return 0;
}

int sc_do_async(sc_group *g, const char *key, sc_fn fn, void *arg,
                sc_done_fn done, void *done_arg)
{
    int rc = -EINVAL;
    struct sc_flight *f = engine(g, &rc);
    if (f == NULL || key == NULL || fn == NULL || done == NULL)
        return rc;
    size_t len = strlen(key);
    if (len > UINT_MAX)
        return -EINVAL;
    sc_options o = f->opts; /* for RETURN: a done callback may free g */
    emit(&o, SC_EV_ENTER, key, 0, 0);
    struct waiter *w = malloc(sizeof *w + len + 1);
    if (w == NULL) {
        emit_return(&o, key, 0, -ENOMEM, NULL);
        return -ENOMEM;
    }
    *w = (struct waiter){.done = done, .done_arg = done_arg};
    memcpy(w->key, key, len + 1);
    unsigned hashv;
    struct call *c = find_locked(&f, key, len, &hashv);
    if (c != NULL) { /* join the flight in progress */
        w->flight = c->id;
        w->next = c->waiters;
        c->waiters = w;
        c->joined++;
        f->stats.callers++;
        emit(&f->opts, SC_EV_JOIN, key, c->id, 0);
        pthread_mutex_unlock(&f->lock);
        return 0;
    }
    c = new_call(f, key, len, hashv);
    if (c != NULL) /* before its thread can tell of fn */
        emit(&f->opts, SC_EV_LEAD, key, c->id, 0);
    rc = c != NULL ? start_leader(f, c, fn, arg) : -ENOMEM;
    unsigned long flight = c != NULL ? c->id : 0;
    if (rc == 0) {
        c->async = true;
        w->fresh = true;
        w->flight = c->id;
        c->waiters = w;
    } else if (c != NULL) { /* undo the flight: nobody could join it */
        HASH_DEL(f->calls, c);
        emit(&o, SC_EV_DELETE, key, flight, 0); /* LEAD was told: end it */
        emit(&o, SC_EV_DONE, key, flight, rc);
        f->records--; /* its number stays used */
        f->stats.flights--;
        f->stats.callers--;
        f->stats.in_flight--;
        free_call(c);
    }
    pthread_mutex_unlock(&f->lock);
    if (rc != 0) {
        free(w);
        emit_return(&o, key, flight, rc, NULL);
    }
    return rc;
}

/* Cleanup handler of sc_drain's wait, and its normal end. */
static void stop_draining(void *arg)
{
    struct sc_flight *f = arg;
    f->draining--;
    pthread_mutex_unlock(&f->lock);
}

static struct kit_thread *wait_idle(struct sc_flight *f)
{
    while (f->threads != 0)
        pthread_cond_wait(&f->idle, &f->lock);
    struct kit_thread *exited = f->exited;
    f->exited = NULL;
    return exited;
}

static void drain(struct sc_flight *f)
{
    struct kit_thread *exited;
    int cancel_state;
    pthread_mutex_lock(&f->lock);
    f->draining++; /* sc_free waits for us */
    pthread_cleanup_push(stop_draining, f);
    exited = wait_idle(f);
    pthread_cleanup_pop(0);
    pthread_mutex_unlock(&f->lock);
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    join_all(exited); /* they have ended: no join waits for long */
    pthread_mutex_lock(&f->lock);
    stop_draining(f);
    pthread_setcancelstate(cancel_state, NULL);
}

int sc_drain(sc_group *g)
{
    int rc = -EINVAL;
    struct sc_flight *f = engine(g, &rc);
    if (f == NULL)
        return rc;
    for (unsigned i = 0; i < engines(f); i++)
        drain(engine_at(f, i));
    return 0;
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
    unsigned hashv;
    struct call *c = find_locked(&f, key, len, &hashv);
    if (c != NULL) {
        HASH_DEL(f->calls, c);
        c->in_map = false;
        emit(&f->opts, SC_EV_DELETE, c->key, c->id, 0);
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
    *out = (struct sc_stats){0};
    for (unsigned i = 0; i < engines(f); i++) {
        struct sc_flight *e = engine_at(f, i);
        pthread_mutex_lock(&e->lock);
        out->flights += e->stats.flights;
        out->callers += e->stats.callers;
        out->shared += e->stats.shared;
        out->timed_out += e->stats.timed_out;
        out->cancelled += e->stats.cancelled;
        out->in_flight += e->stats.in_flight;
        pthread_mutex_unlock(&e->lock);
    }
    return 0;
}
