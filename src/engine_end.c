/*
 * engine_end.c - how a flight ends or is handed on, and how a caller
 * leaves it.
 *
 * Under the shard's lock a flight ends (sc__end_flight: out of the map,
 * its state published, its asynchronous waiters' results made) or is
 * handed to a follower (sc__hand_off), and a caller leaves it
 * (sc__leave). What can wait for the lock to be released is gathered in a
 * struct after_unlock and done then: waking the followers asleep on the
 * record's word, answering waiters, freeing the record.
 */
#define _POSIX_C_SOURCE 200809L

#include "engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/helgrind.h> /* no-ops, unless run under Valgrind */

#include "gate.h"

enum { SPARE_KEY_MAX = 256 }; /* bytes of key a spare record may hold */

/* Drops one reference to c. Returns true if it was the last: then the
 * caller retires c (sc__retire) once nobody else can. */
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

/* Changes c's state. Followers asleep on the word are woken by the next
 * leave, once the lock is released. A record on its leader's stack has
 * no followers, so nothing reads its word: no store, and no annotation,
 * which DRD would keep for the address after the frame is gone. */
void sc__publish(struct call *c, enum state s)
{
    c->state = s;
    if (c->on_stack)
        return;
    unsigned w = atomic_load_explicit(&c->word, memory_order_relaxed);
    ANNOTATE_HAPPENS_BEFORE(&c->word);
    atomic_store_explicit(&c->word, ((w >> 2) + 1) << 2 | s,
                          memory_order_release);
    c->wake_due |= c->sleeping > 0;
    c->sleeping = 0;
}

struct call *sc__heap_call(struct shard *s, const char *key, size_t len)
{
    assert_locked(s);
    struct call *c = s->spare;
    if (c != NULL && c->cap > len) {
        s->spare = NULL;
        /* New memory to Helgrind and DRD, as malloc's would be: its last
         * flight's callers dropped their references without the lock, in
         * an order the tools cannot see. */
        ANNOTATE_NEW_MEMORY(c, sizeof *c + c->cap);
    } else {
        size_t cap = len < 32 ? 32 : len + 1; /* most keys fit a spare */
        c = malloc(sizeof *c + cap);
        if (c == NULL)
            return NULL;
        c->cap = cap;
    }
    memcpy(c->key_copy, key, len);
    c->key_copy[len] = '\0';
    c->key = c->key_copy;
    c->on_stack = false;
    s->records++;
    return c;
}

/* The last caller has left c. Its own handle is to be dropped once the
 * lock is released. A heap record becomes the shard's spare if it holds a
 * longer key than the spare (but not a key longer than SPARE_KEY_MAX: one
 * long key must not keep its memory for the group's life); the record
 * left over is freed after the lock. */
void sc__retire(struct shard *s, struct call *c, struct after_unlock *todo)
{
    assert_locked(s);
    if (s->opts.drop != NULL)
        todo->drop = c->val;
    if (c->on_stack)
        return;
    s->records--;
    if (c->watched) { /* its next flight's followers disable it again */
        VALGRIND_HG_ENABLE_CHECKING(&c->word, sizeof c->word);
        c->watched = false;
    }
    if (c->cap <= SPARE_KEY_MAX &&
        (s->spare == NULL || s->spare->cap < c->cap)) {
        todo->c = s->spare;
        s->spare = c;
    } else {
        todo->c = c;
    }
}

/* unref for a caller outside the lock: the last one out retires the
 * record, under the lock. */
void sc__last_out(struct shard *s, struct call *c, struct after_unlock *todo)
{
    if (!unref(c))
        return;
    shard_lock(s);
    sc__retire(s, c, todo);
    shard_unlock(s);
}

void sc__put_back(struct shard *s, struct call *c)
{
    struct after_unlock todo = {.s = s}; /* its value is NULL: no drop */
    sc__retire(s, c, &todo);
    free(todo.c);
}

/* A caller's own handle to a flight's value (the value itself, without
 * hooks). */
void *sc__share(const struct shard *s, void *val)
{
    assert_locked(s);
    return s->opts.share != NULL && val != NULL
               ? s->opts.share(val, s->opts.ctx)
               : val;
}

/* Ends the flight c as how (DONE or ABANDONED): out of the map (unless
 * sc_forget took it out already, so a newer flight for the key stays),
 * the new state published, the asynchronous waiters' results made.
 * Returns the waiters, to be answered once the lock is released. */
struct waiter *sc__end_flight(struct shard *s, struct call *c, enum state how)
{
    assert_locked(s);
    if (c->in_map) {
        map_del(s, c);
        emit(&s->opts, SC_EV_DELETE, c->key, c->id, 0);
    }
    c->in_map = false;
    s->ended += c->state == RUNNING; /* a hand-off was counted already */
    /* The followers asleep now will see DONE as the word's next change,
     * and leave without the lock: they are counted here. */
    s->stats.shared += how == DONE ? c->sleeping : 0;
    sc__publish(c, how);
    emit(&s->opts, SC_EV_DONE, c->key, c->id,
         how == DONE ? c->err : -ECANCELED);
    for (struct waiter *w = c->waiters; w != NULL; w = w->next) {
        if (how == DONE) {
            w->r = (sc_result){sc__share(s, c->val), c->err, w->fresh,
                               c->joined > 1};
            w->rc = c->err;
            s->stats.shared += !w->fresh;
        } else {
            w->rc = -ECANCELED;
            s->stats.cancelled++;
        }
    }
    struct waiter *ws = c->waiters;
    c->waiters = NULL;
    return ws;
}

/* With the handoff option and a follower waiting, passes the failed or
 * abandoned flight c on instead of ending it. fallback: how it ends if
 * nobody takes it after all. Returns whether it was handed on. */
bool sc__hand_off(struct shard *s, struct call *c, enum state fallback)
{
    assert_locked(s);
    if (!s->opts.handoff || c->followers == 0) /* nobody to take it */
        return false;
    c->fallback = fallback;
    c->val = NULL; /* the failed run's value stays with its leader */
    s->stats.in_flight--;
    sc__publish(c, HANDOFF);
    emit(&s->opts, SC_EV_HANDOFF, c->key, c->id,
         fallback == DONE ? c->err : -ECANCELED);
    return true;
}

/* Takes the waiter whose call started the flight off c's list (an
 * asynchronous leader's caller), or NULL. */
struct waiter *sc__take_initiator(struct call *c)
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

/* Drops one caller's reference. The last follower that could have taken a
 * handed-off flight ends it as its leader left it. */
struct after_unlock sc__leave(struct shard *s, struct call *c)
{
    assert_locked(s);
    struct after_unlock todo = {.s = s, .opts = s->opts};
    if (c->state == HANDOFF && c->followers == 0) /* nobody left to take it */
        todo.ws = sc__end_flight(s, c, c->fallback);
    if (c->wake_due) { /* keep the reference until they are woken */
        c->wake_due = false;
        todo.wake = c;
    } else if (unref(c)) {
        sc__retire(s, c, &todo);
    }
    return todo;
}

/* Wakes the followers asleep on a flight that has changed, then drops the
 * reference sc__leave kept for it. Before anything else: the followers
 * have waited longest, and a callback may wait for one of them. */
void sc__wake_followers(struct after_unlock *todo)
{
    if (todo->wake == NULL)
        return;
    sc__gate_wake_all(&todo->wake->word);
    sc__last_out(todo->s, todo->wake, todo); /* todo->s is still there */
    todo->wake = NULL;
}

/* Calls the asynchronous waiters back and frees them. o is a copy of the
 * group's options: the group may be gone. */
void sc__deliver(struct waiter *w, const sc_options *o)
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

/* Everything sc__leave left for after the lock: wake, answer, free (with
 * the flight's own handle dropped, once). */
void sc__run_after_unlock(struct after_unlock todo)
{
    sc__wake_followers(&todo);
    sc__deliver(todo.ws, &todo.opts);
    if (todo.drop != NULL) /* the flight's own handle */
        todo.opts.drop(todo.drop, todo.opts.ctx);
    free(todo.c);
}
