/*
 * engine.h - inside the full engine: its records, its shards, and the
 * functions its files share. Not installed.
 *
 * A group from sc_new_with is a router (struct engine) over one or more
 * shards. A key's hash picks its shard; each shard is a map from key to
 * the flight in progress, with a lock of its own (one shard: go-zero's
 * single map and lock). The files, each one job:
 *
 *   engine_new.c     making and freeing a group and its shards
 *   engine_call.c    a synchronous call: leader, follower, taking a
 *                    handed-off flight, a thread cancelled inside
 *   engine_end.c     how a flight ends or is handed on, and what is left
 *                    to do once the lock is released (wake, answer, free)
 *   engine_async.c   asynchronous calls, the kit's threads, sc_drain
 *   engine_forget.c  sc_forget
 *   engine_stats.c   sc_stats
 *   engine_trace.c   telling the trace hook
 *   map.h, engine_map.c  a shard's map: its first slot in the shard's
 *                    first cache line, the others in a table
 *   hash.h, gate.h   the key's hash; sleeping on a word and waking all
 *
 * A flight's life, as its record's state (changed only under the shard's
 * lock, and published in the record's word for followers that sleep):
 *
 *   RUNNING --fn returned----------------------------> DONE
 *   RUNNING --leader cancelled or exited in fn-------> ABANDONED
 *   RUNNING --fn failed or abandoned, handoff set,
 *             a follower waits----------------------> HANDOFF
 *   HANDOFF --a follower takes it, runs its own fn---> RUNNING
 *   HANDOFF --the last follower that could leaves----> DONE or ABANDONED
 */
#ifndef SC_ENGINE_H
#define SC_ENGINE_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "group.h"
#include "hash.h"

enum state { RUNNING, HANDOFF, DONE, ABANDONED };

/* An asynchronous caller of a flight. It holds no reference to the record:
 * its result is made, under the shard's lock, when the flight ends. */
struct waiter {
    /* Set by sc_do_async: */
    sc_done_fn done;
    void *done_arg;
    bool fresh;           /* its call started the flight */
    unsigned long flight; /* its flight's number, for the trace hook */
    /* Guarded by the shard's lock while on a record's list; the thread
     * that took it off the list owns it after: */
    int rc;
    sc_result r;
    struct waiter *next;
    char key[]; /* its own copy: the record may go before it is answered */
};

/*
 * One flight. A synchronous leader keeps its record on its own stack,
 * where no other core writes, so a call nobody joins allocates no record.
 * The first follower to join moves it to the heap (promote() in
 * engine_call.c): a follower may outlive its leader's call, and sleeps on
 * the record's word. The stack record then only points at its heap copy,
 * which the leader takes up again when fn returns; its other fields
 * (in_map among them) are stale from then on. A record led by a kit
 * thread is made on the heap. Each shard keeps one heap record that is
 * done with, its spare, for the next promotion or kit thread's flight.
 */
struct call {
    /* Atomics, read without the lock. word is (changes << 2) | state,
     * changed only under the lock; followers sleep on it (gate.h). refs
     * counts the callers yet to leave: a follower of a DONE flight leaves
     * without the lock. */
    atomic_uint word;
    atomic_uint refs;
    /* Guarded by the shard's lock. */
    enum state state;
    enum state fallback;    /* HANDOFF: how it ends if no follower takes it */
    unsigned sleeping;      /* followers asleep on word since it last changed */
    unsigned followers;     /* synchronous followers that could take a
                            hand-off (not kept once DONE) */
    unsigned joined;        /* callers that joined, the leader included */
    bool wake_due;          /* word changed with followers asleep on it */
    bool watched;           /* a follower reads word without the lock */
    bool in_map;            /* false once ended, or taken out by sc_forget
                               (a promoted stack record's: stale) */
    bool async;             /* its leader is a kit thread, not a caller */
    pthread_t leader;       /* the thread in fn: its own key is -EDEADLK */
    struct waiter *waiters; /* asynchronous callers, answered at the end */
    struct call *moved;     /* a stack record's heap copy, once promoted */
    /* Guarded by the lock until the state is DONE, then read-only: a
     * follower of a DONE flight reads them without the lock. */
    void *val; /* the flight's own handle */
    int err;
    /* Set when the record is made, read-only after. */
    bool on_stack;    /* lives in its leader's frame */
    unsigned hash;    /* of key: the map compares it before the key */
    unsigned len;     /* strlen(key) */
    const char *key;  /* the leader's caller's key on the stack; key_copy
                         on the heap */
    unsigned long id; /* the flight's number, for the trace hook */
    size_t cap;       /* bytes key_copy holds (heap records) */
    char key_copy[];
};

enum { LINE = 64 };

/*
 * One map and its lock. A call that nobody joins, on a shard with no
 * other flight, writes one cache line of its shard and no other memory of
 * the group: the lock, the map's first slot, and two counters. A second
 * core running calls on the same shard fetches that line, and no other.
 * What calls write only when flights meet or something goes wrong, and
 * what is never written after the group is made, have lines of their
 * own.
 *
 * So that two counters serve every call, sc_stats derives its figures:
 * flights and callers are made plus what stats adds (runs taken over,
 * callers who joined, flights undone), and in_flight is made - ended plus
 * what stats adds (taken over, handed off, undone). Unsigned arithmetic
 * wraps, so an adjustment below zero adds up right.
 */
struct shard {
    _Alignas(LINE) pthread_mutex_t lock;
    /* Guarded by lock, written by every call. */
    struct call *slot0;       /* the map's first slot (map.h) */
    unsigned long long made;  /* flights numbered so far */
    unsigned long long ended; /* flights that ended while fn ran */
    /* Guarded by lock, written when flights meet, and rarely. */
    _Alignas(LINE) struct call **table; /* the map's other slots, or NULL */
    unsigned mask;                      /* the table's size - 1 */
    unsigned used;                      /* records in the table */
    struct sc_stats stats; /* counted as they happen, and adjustments */
    size_t records;        /* heap records in use, in the map or not (the
                              spare is not one) */
    struct call *spare;    /* a heap record to promote into */
#ifdef SC_DEBUG
    pthread_t owner; /* who holds lock, for assert_locked */
    bool owned;
#endif
    /* Set when the group is made, read-only after. */
    _Alignas(LINE) unsigned long stride, first; /* flight numbers: first,
                                                   first + stride, ... */
    sc_options opts;
};

/* Where the mutex leaves room for them (x86-64's glibc: 40 bytes), what
 * every call writes shares the lock's line. A larger mutex (64-bit ARM,
 * macOS) pushes them into the next line: slower on two cores, as correct. */
_Static_assert(sizeof(pthread_mutex_t) + sizeof(struct call *) +
                           2 * sizeof(unsigned long long) >
                       LINE ||
                   offsetof(struct shard, ended) + sizeof(unsigned long long) <=
                       LINE,
               "what every call writes fits in one cache line");

/* The threads the kit starts for asynchronous leaders. */
struct kit_threads {
    pthread_mutex_t lock;
    pthread_cond_t idle; /* with lock: running dropped to 0 */
    /* Guarded by lock. */
    size_t running;  /* kit threads that have not yet ended */
    size_t draining; /* sc_drain calls under way */
    bool has_ended;  /* ended is a thread that ended and is not joined */
    pthread_t ended;
};

/* A group from sc_new_with. */
struct engine {
    struct sc_group base; /* kind: SC_GROUP_ENGINE */
    void *block;          /* what calloc gave: the engine is aligned in it */
    struct kit_threads threads;
    unsigned nshards; /* set when the group is made, read-only after */
    struct shard shards[];
};

static inline struct engine *engine_of(sc_group *g)
{
    return (struct engine *)g;
}

/* The shard that holds keys of hash hashv: the hash's high bits pick it,
 * and its low bits the slot of the map's table. */
static inline struct shard *shard_of(struct engine *e, unsigned hashv)
{
    return e->nshards > 1 ? &e->shards[(hashv >> 16) % e->nshards]
                          : &e->shards[0];
}

/* The shard's lock. In debug builds (SC_DEBUG) it remembers its holder,
 * so that a function that must be called with it held can assert so. */
static inline void shard_lock(struct shard *s)
{
    pthread_mutex_lock(&s->lock);
#ifdef SC_DEBUG
    s->owner = pthread_self();
    s->owned = true;
#endif
}

static inline void shard_unlock(struct shard *s)
{
#ifdef SC_DEBUG
    assert(s->owned && pthread_equal(s->owner, pthread_self()));
    s->owned = false;
#endif
    pthread_mutex_unlock(&s->lock);
}

#ifdef SC_DEBUG
#define assert_locked(s)                                                       \
    assert((s)->owned &&pthread_equal((s)->owner, pthread_self()))
#else
#define assert_locked(s) ((void)(s))
#endif

#include "map.h"

/* Takes the lock of the shard that holds key and returns it, with the
 * key's hash (computed before the lock is taken) in *hashv and its slot
 * in *slot: the flight in progress for key, or an empty slot, or NULL if
 * the map must grow first. Returns with the shard's lock held. */
static inline struct shard *find_and_lock(struct engine *e, const char *key,
                                          size_t len, unsigned *hashv,
                                          struct call ***slot)
{
    *hashv = sc__hash(key, len);
    struct shard *s = shard_of(e, *hashv);
    shard_lock(s);
    *slot = map_slot(s, key, len, *hashv);
    return s;
}

/* The flight in a slot from find_and_lock, or NULL. */
static inline struct call *in_slot(struct call **slot)
{
    return slot != NULL ? *slot : NULL;
}

/* The flights of s whose fn runs now (see struct shard). */
static inline unsigned long long shard_in_flight(const struct shard *s)
{
    return s->made - s->ended + s->stats.in_flight;
}

/* engine_trace.c: tell the trace hook of o about an event. Callers go
 * through emit and emit_return, so that a group without a hook pays one
 * test of a pointer per event and nothing else. */
void sc__emit(const sc_options *o, sc_event ev);

static inline void emit(const sc_options *o, sc_event_kind kind,
                        const char *key, unsigned long flight, int code)
{
    if (o->trace != NULL)
        sc__emit(o,
                 (sc_event){
                     .kind = kind, .key = key, .flight = flight, .code = code});
}

/* The RETURN event: what a call gives its caller (out: NULL or its result). */
static inline void emit_return(const sc_options *o, const char *key,
                               unsigned long flight, int rc,
                               const sc_result *out)
{
    if (o->trace != NULL)
        sc__emit(o, (sc_event){.kind = SC_EV_RETURN,
                               .key = key,
                               .flight = flight,
                               .code = rc,
                               .fresh = out != NULL && out->fresh,
                               .shared = out != NULL && out->shared});
}

/* engine_call.c: makes c, whose key is set, a new flight for a key of
 * len bytes and hash hashv, led by this thread, with one reference and one
 * caller (promote() then copies over the fields of the flight it moves).
 * Called with s's lock held. */
void sc__init_call(struct shard *s, struct call *c, size_t len, unsigned hashv);

/* Puts the new flight c in s's map at slot (from find_and_lock) and counts
 * it. Returns false when memory runs out: nothing changed. */
static inline bool add_flight(struct shard *s, struct call **slot,
                              struct call *c)
{
    if (!map_add(s, slot, c))
        return false;
    s->made++; /* a flight, a caller, in flight: see struct shard */
    return true;
}

/* engine_end.c: a heap record holding a copy of key (len bytes): the
 * shard's spare, or a new one (NULL when memory runs out). Called with s's
 * lock held; counted in s->records. */
struct call *sc__heap_call(struct shard *s, const char *key, size_t len);

/* engine_end.c: gives back a record from sc__heap_call that no caller has
 * seen: the shard keeps it as its spare, or it is freed. Called with s's
 * lock held. */
void sc__put_back(struct shard *s, struct call *c);

/* engine_call.c: runs fn for c as its leader, then ends the flight or
 * hands it on. Called without the lock; takes it once to end the flight
 * (and once more if it is the last to leave a record whose followers it
 * woke).
 * out: the synchronous leader's result, or NULL for a kit thread. */
void sc__lead(struct shard *s, struct call *c, sc_fn fn, void *arg,
              sc_result *out);

/* What is left to do after a caller has left a record, once the lock is
 * released: wake the followers asleep on it, answer asynchronous waiters,
 * free the record if this was its last caller. The group may be gone by
 * then, so it carries its own copy of the hooks. */
struct after_unlock {
    struct shard *s;
    struct call *wake; /* to wake its sleepers, then drop its reference */
    struct waiter *ws; /* to answer */
    void *drop;        /* the flight's own handle, for the drop hook */
    struct call *c;    /* a heap record to free: the shard has a spare */
    sc_options opts;
};

/* engine_end.c. Each says whether it wants the shard's lock held. */
void sc__publish(struct call *c, enum state s);    /* held */
bool sc__hand_off(struct shard *s, struct call *c, /* held */
                  enum state fallback);
struct waiter *sc__end_flight(struct shard *s, struct call *c, /* held */
                              enum state how);
struct waiter *sc__take_initiator(struct call *c);              /* held */
void *sc__share(const struct shard *s, void *val);              /* held */
struct after_unlock sc__leave(struct shard *s, struct call *c); /* held */
void sc__wake_followers(struct after_unlock *todo);             /* not held */
void sc__deliver(struct waiter *w, const sc_options *o);        /* not held */
void sc__run_after_unlock(struct after_unlock todo);            /* not held */
void sc__last_out(struct shard *s, struct call *c,              /* not held */
                  struct after_unlock *todo);
void sc__retire(struct shard *s, struct call *c, /* held */
                struct after_unlock *todo);

/* engine_async.c: joins the kit thread that ended last, if any. Called
 * when no kit thread runs any more (sc_free). */
void sc__join_ended(struct kit_threads *t);

#endif /* SC_ENGINE_H */
