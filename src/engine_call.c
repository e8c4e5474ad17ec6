/*
 * engine_call.c - a call that waits for its answer, on a group of the full
 * engine: the leader runs fn, the followers sleep until its flight ends or
 * is handed to one of them. The contract is sc_do_until in sharedcalls.h;
 * the flight's states are drawn in engine.h.
 *
 * The shape is the port's: the shard's lock guards the map and every
 * record's state and result, and a follower waits until the state leaves
 * RUNNING. What is new: a follower sleeps on its record's word without the
 * lock and is woken with all the others at once (gate.h); a follower of a
 * DONE flight reads the result, which no longer changes, and leaves
 * through an atomic reference count; and fn and the sleep run inside
 * cancellation cleanup handlers, C's nearest thing to Go's defer.
 */
#define _POSIX_C_SOURCE 200809L

#include "engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <valgrind/helgrind.h> /* no-ops, unless run under Valgrind */

#include "gate.h"

void sc__init_call(struct shard *s, struct call *c, size_t len, unsigned hashv)
{
    assert_locked(s);
    atomic_init(&c->word, RUNNING);
    atomic_init(&c->refs, 1);
    c->state = c->fallback = RUNNING;
    c->sleeping = c->followers = 0;
    c->joined = 1;
    c->wake_due = c->watched = false;
    c->in_map = true;
    c->async = false;
    c->leader = pthread_self();
    c->waiters = NULL;
    c->moved = NULL;
    c->val = NULL;
    c->err = 0;
    c->hash = hashv;
    c->len = (unsigned)len;
    c->id = (unsigned long)(s->made * s->stride + s->first);
}

/* The first follower joins c, which is on its leader's stack: the flight
 * moves to a heap record, which takes c's place in the map (at slot), and
 * c points its leader at it. Called with s's lock held. NULL when memory
 * runs out: the flight goes on as it was, without this follower. */
static struct call *promote(struct shard *s, struct call **slot, struct call *c)
{
    assert_locked(s);
    struct call *h = sc__heap_call(s, c->key, c->len);
    if (h == NULL)
        return NULL;
    sc__init_call(s, h, c->len, c->hash);
    h->joined = c->joined;
    h->leader = c->leader;
    h->waiters = c->waiters;
    h->id = c->id;
    c->waiters = NULL;
    c->moved = h;
    *slot = h;
    return h;
}

/* The record that stands for c now: its heap copy, if a follower moved
 * it there while its leader ran fn. Called with the lock held. */
static struct call *current(struct call *c)
{
    return c->moved != NULL ? c->moved : c;
}

/* Whether code of the caller's (hooks, callbacks) may run before a call
 * that has c returns. Then cancellation must wait: a cancelled hook could
 * strand the lock or skip a waiter. */
static bool runs_user_code(const struct shard *s, const struct call *c)
{
    assert_locked(s);
    return s->opts.share != NULL || s->opts.trace != NULL || c->waiters != NULL;
}

/* Whether no hook is set: then a call's result needs no share of its own,
 * and no event is told while the lock is held. */
static bool without_hooks(const struct shard *s)
{
    return s->opts.share == NULL && s->opts.trace == NULL;
}

struct leading {
    struct shard *s;
    struct call *c;
};

/* Cleanup handler: the leader's thread was cancelled or exited inside fn.
 * Its followers get -ECANCELED (or, with handoff, one of them takes over),
 * and the key is free for new flights. */
static void abandon(void *arg)
{
    struct leading *l = arg;
    struct shard *s = l->s;
    shard_lock(s);
    struct call *c = current(l->c);
    emit(&s->opts, SC_EV_CANCEL, c->key, c->id, 0);
    s->stats.cancelled += !c->async; /* a kit thread is no caller */
    struct waiter *ws = NULL;
    if (!sc__hand_off(s, c, ABANDONED))
        ws = sc__end_flight(s, c, ABANDONED);
    else if ((ws = sc__take_initiator(c)) != NULL) { /* its run, not the next */
        ws->rc = -ECANCELED;
        s->stats.cancelled++;
    }
    struct after_unlock todo = sc__leave(s, c);
    shard_unlock(s);
    sc__wake_followers(&todo);
    sc__deliver(ws, &todo.opts);
    sc__run_after_unlock(todo);
}

void sc__lead(struct shard *s, struct call *c, sc_fn fn, void *arg,
              sc_result *out)
{
    void *val = NULL;
    int err;
    struct leading self = {s, c};
    pthread_cleanup_push(abandon, &self);
    emit(&s->opts, SC_EV_FN_START, c->key, c->id, 0);
    err = fn(arg, &val);
    emit(&s->opts, SC_EV_FN_RETURN, c->key, c->id, err);
    pthread_cleanup_pop(0);

    shard_lock(s); /* not a cancellation point */
    c = current(c);
    if (c->on_stack && c->waiters == NULL && without_hooks(s)) {
        /* Nobody joined: no result to publish, nobody to wake or answer. */
        if (c->in_map)
            map_del(s, c);
        s->ended++;
        shard_unlock(s);
        *out = (sc_result){val, err, true, false};
        return;
    }

    /* From here until the call returns, cancellation waits if hooks or
     * callbacks run in between: they must neither strand the lock nor
     * skip a waiter. */
    int cancel_state = -1;
    struct waiter *ws = NULL;
    if (runs_user_code(s, c))
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    c->err = err;
    bool handed = err != 0 && sc__hand_off(s, c, DONE);
    if (!handed) {
        c->val = val;
        ws = sc__end_flight(s, c, DONE);
    } else if (c->async && (ws = sc__take_initiator(c)) != NULL) {
        /* an asynchronous leader's caller gets its own run's result */
        ws->r = (sc_result){sc__share(s, val), err, true, c->joined > 1};
        ws->rc = err;
    }
    if (out != NULL)
        *out = (sc_result){sc__share(s, val), err, true, c->joined > 1};
    struct after_unlock todo = sc__leave(s, c);
    shard_unlock(s);

    sc__wake_followers(&todo);
    if (handed && todo.opts.drop != NULL && val != NULL)
        todo.opts.drop(val, todo.opts.ctx); /* the failed run's own handle */
    sc__deliver(ws, &todo.opts);
    sc__run_after_unlock(todo);
    if (cancel_state >= 0)
        pthread_setcancelstate(cancel_state, NULL);
}

/* A follower takes the handed-off flight c and runs its own fn for it.
 * Called with s's lock held; releases it. */
static void take_over_and_unlock(struct shard *s, struct call *c, sc_fn fn,
                                 void *arg, sc_result *out)
{
    assert_locked(s);
    sc__publish(c, RUNNING);
    c->followers--; /* it leads now */
    c->leader = pthread_self();
    c->async = false; /* its leader is a caller again */
    s->stats.flights++;
    s->stats.in_flight++;
    emit(&s->opts, SC_EV_LEAD, c->key, c->id, 0);
    shard_unlock(s);
    sc__lead(s, c, fn, arg, out);
}

struct sleeper {
    struct shard *s;
    struct call *c;
    unsigned seen; /* the word it fell asleep on */
};

/* Cleanup handler: a follower was cancelled in its sleep. It leaves as if
 * it had returned. */
static void leave_cancelled(void *arg)
{
    struct sleeper *z = arg;
    struct shard *s = z->s;
    struct call *c = z->c;
    shard_lock(s);
    if (atomic_load(&c->word) == z->seen) /* nobody woke it */
        c->sleeping--;
    emit(&s->opts, SC_EV_CANCEL, c->key, c->id, 0);
    s->stats.cancelled++;
    c->followers--;
    struct after_unlock todo = sc__leave(s, c);
    shard_unlock(s);
    sc__run_after_unlock(todo);
}

/* Whether an absolute CLOCK_MONOTONIC deadline (NULL: none) has passed. */
static bool deadline_passed(const struct timespec *deadline)
{
    struct timespec now;
    if (deadline == NULL)
        return false;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Sleeps on c until its word changes from seen (returns 0, with the new
 * word in *now) or the deadline passes (ETIMEDOUT). Called with s's lock
 * held; releases it. A cancellation point: the thread then leaves c. */
static int unlock_and_sleep(struct shard *s, struct call *c, unsigned seen,
                            const struct timespec *deadline, unsigned *now)
{
    assert_locked(s);
    struct sleeper z = {s, c, seen};
    c->sleeping++;
    shard_unlock(s);
    int rc = 0;
    pthread_cleanup_push(leave_cancelled, &z);
    while (rc == 0 &&
           atomic_load_explicit(&c->word, memory_order_acquire) == z.seen)
        rc = sc__gate_wait(&c->word, z.seen, deadline);
    pthread_cleanup_pop(0);
    *now = atomic_load_explicit(&c->word, memory_order_acquire);
    if (*now == z.seen)
        return ETIMEDOUT;
    ANNOTATE_HAPPENS_AFTER(&c->word);
    return 0; /* changed: woken, even if the deadline passed as well */
}

/* The word c has after one change from seen to state st. A follower asleep
 * on seen was among the sleepers that change counted (and woke): if st is
 * DONE, sc__end_flight counted it as shared. After two changes or more
 * (HANDOFF, RUNNING again, DONE), nobody did. */
static unsigned next_word(unsigned seen, enum state st)
{
    return ((seen & ~3U) + 4U) | (unsigned)st;
}

/* A follower of a DONE flight, counted already, leaves without the lock:
 * the result no longer changes. */
static int take_result(struct shard *s, struct call *c, sc_result *out)
{
    *out = (sc_result){c->val, c->err, false, true};
    struct after_unlock todo = {.s = s}; /* no hooks: nothing to drop */
    sc__last_out(s, c, &todo);
    free(todo.c);
    return 0;
}

/* Joins the flight c and waits for it. Called with s's lock held;
 * releases it. Returns 0 with *out set, -ETIMEDOUT or -ECANCELED. With the
 * handoff option, it may run fn itself. */
static int follow_and_unlock(struct shard *s, struct call *c, sc_fn fn,
                             void *arg, const struct timespec *deadline,
                             sc_result *out)
{
    assert_locked(s);
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    c->followers++;
    if (!c->watched) {     /* Valgrind's tools cannot see atomics: the word's */
        c->watched = true; /* reads outside the lock are not races */
        VALGRIND_HG_DISABLE_CHECKING(&c->word, sizeof c->word);
    }
    c->joined++;
    s->stats.callers++;
    emit(&s->opts, SC_EV_JOIN, c->key, c->id, 0);
    int rc = 0;
    bool counted = false; /* counted as shared when its flight ended */
    while (c->state == RUNNING && rc == 0) {
        unsigned seen = atomic_load_explicit(&c->word, memory_order_relaxed);
        unsigned now;
        rc = unlock_and_sleep(s, c, seen, deadline, &now);
        counted = rc == 0 && now == next_word(seen, DONE);
        if (counted && without_hooks(s))
            return take_result(s, c, out);
        shard_lock(s);
        if (rc != 0 && (now = atomic_load(&c->word)) == seen) {
            c->sleeping--; /* timed out, and nothing changed: not woken */
        } else {
            rc = 0; /* it changed, and that change counted this one woken */
            counted = now == next_word(seen, DONE);
        }
    }
    if (rc == 0)
        emit(&s->opts, SC_EV_WAKE, c->key, c->id, 0);

    if (c->state == HANDOFF && rc == 0) {
        if (!deadline_passed(deadline)) {
            take_over_and_unlock(s, c, fn, arg, out);
            return 0;
        }
        rc = ETIMEDOUT;
    }
    int cancel_state =
        -1; /* the share hook and what follows the unlock run uncancelled */
    if (runs_user_code(s, c))
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    switch (c->state) {
    case DONE:
        *out = (sc_result){sc__share(s, c->val), c->err, false, true};
        s->stats.shared += !counted;
        rc = 0;
        break;
    case ABANDONED:
        s->stats.cancelled++;
        rc = -ECANCELED;
        break;
    case RUNNING: /* the deadline passed first */
    case HANDOFF:
        emit(&s->opts, SC_EV_TIMEOUT, c->key, c->id, 0);
        s->stats.timed_out++;
        rc = -rc;
        break;
    }
    c->followers--;
    struct after_unlock todo = sc__leave(s, c);
    shard_unlock(s);
    sc__run_after_unlock(todo);
    if (cancel_state >= 0)
        pthread_setcancelstate(cancel_state, NULL);
    return rc;
}

/* A call's way through the engine; *flight is set once it has one. */
static int lead_or_follow(struct engine *e, const char *key, size_t len,
                          sc_fn fn, void *arg, const struct timespec *deadline,
                          sc_result *out, unsigned long *flight)
{
    unsigned hashv;
    struct call **slot;
    struct shard *s = find_and_lock(e, key, len, &hashv, &slot);
    struct call *c = in_slot(slot);
    if (c == NULL) {
        struct call mine; /* a leader's record, on its stack */
        mine.on_stack = true;
        mine.key = key;
        sc__init_call(s, &mine, len, hashv);
        if (!add_flight(s, slot, &mine)) {
            shard_unlock(s);
            return -ENOMEM;
        }
        *flight = mine.id;
        emit(&s->opts, SC_EV_LEAD, key, mine.id, 0);
        shard_unlock(s);
        sc__lead(s, &mine, fn, arg, out);
        return 0;
    }
    *flight = c->id;
    if (c->state == RUNNING && /* fn calls its own key */
        pthread_equal(c->leader, pthread_self())) {
        shard_unlock(s);
        return -EDEADLK;
    }
    if (c->on_stack && (c = promote(s, slot, c)) == NULL) {
        shard_unlock(s);
        *flight = 0; /* it never joined */
        return -ENOMEM;
    }
    return follow_and_unlock(s, c, fn, arg, deadline, out);
}

int sc__engine_call(sc_group *g, const char *key, size_t len, sc_fn fn,
                    void *arg, const struct timespec *deadline, sc_result *out)
{
    struct engine *e = engine_of(g);
    unsigned long flight = 0;
    /* A done callback may free the group: keep what RETURN needs. */
    sc_options o = {.trace = e->shards[0].opts.trace,
                    .trace_ctx = e->shards[0].opts.trace_ctx};
    emit(&o, SC_EV_ENTER, key, 0, 0);
    int rc = lead_or_follow(e, key, len, fn, arg, deadline, out, &flight);
    emit_return(&o, key, flight, rc != 0 ? rc : out->err, rc != 0 ? NULL : out);
    return rc;
}
