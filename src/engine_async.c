/*
 * engine_async.c - calls that do not wait (sc_do_async), the threads the
 * kit starts to lead them, and sc_drain. The contract is in sharedcalls.h.
 *
 * An asynchronous caller is a waiter on its flight's list; it is answered
 * by whichever thread ends the flight. When no flight for the key is in
 * progress, the kit starts a thread to lead one. Each such thread, as it
 * ends, joins the one that ended before it and takes its place as the one
 * to be joined: so a group that runs any number of asynchronous leaders
 * without sc_drain keeps at most one ended thread unjoined (its stack and
 * mappings), and sc_drain or sc_free joins that one.
 */
#define _POSIX_C_SOURCE 200809L

#include "engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* What a kit thread needs to lead an asynchronous flight. */
struct async_start {
    struct kit_threads *threads;
    struct shard *s;
    struct call *c;
    sc_fn fn;
    void *arg;
};

/* Joins the thread that ended last, if any. With t->lock held: that
 * thread has released it and only has to return, so the wait is short. */
static void join_ended_locked(struct kit_threads *t)
{
    if (t->has_ended)
        pthread_join(t->ended, NULL);
    t->has_ended = false;
}

void sc__join_ended(struct kit_threads *t)
{
    pthread_mutex_lock(&t->lock);
    join_ended_locked(t);
    pthread_mutex_unlock(&t->lock);
}

/* Cleanup handler, run however a kit thread ends: it joins the thread
 * that ended before it, leaves itself to be joined, and the last one out
 * wakes sc_drain. */
static void kit_thread_ended(void *arg)
{
    struct async_start *a = arg;
    struct kit_threads *t = a->threads;
    free(a);
    int cancel_state; /* pthread_join is a cancellation point */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    pthread_mutex_lock(&t->lock);
    join_ended_locked(t);
    t->ended = pthread_self();
    t->has_ended = true;
    if (--t->running == 0)
        pthread_cond_broadcast(&t->idle);
    pthread_mutex_unlock(&t->lock);
    pthread_setcancelstate(cancel_state, NULL);
}

static void *lead_async(void *arg)
{
    struct async_start *a = arg;
    pthread_cleanup_push(kit_thread_ended, a);
    sc__lead(a->s, a->c, a->fn, a->arg, NULL);
    pthread_cleanup_pop(1);
    return NULL;
}

/* Starts a kit thread to lead c. With s's lock held, so that nobody sees
 * c before its leader is known. Returns 0, -ENOMEM or -EAGAIN. */
static int start_leader(struct kit_threads *t, struct shard *s, struct call *c,
                        sc_fn fn, void *arg)
{
    assert_locked(s);
    struct async_start *a = malloc(sizeof *a);
    if (a == NULL)
        return -ENOMEM;
    *a = (struct async_start){t, s, c, fn, arg};
    pthread_mutex_lock(&t->lock); /* before the thread can end */
    int rc = pthread_create(&c->leader, NULL, lead_async, a);
    t->running += rc == 0;
    pthread_mutex_unlock(&t->lock);
    if (rc != 0) {
        free(a);
        return rc == ENOMEM ? -ENOMEM : -EAGAIN;
    }
    c->async = true;
    return 0;
}

/* Takes back the flight c that start_leader could not start: nobody could
 * join it, as s's lock has been held since it was made. */
static void unmake_call(struct shard *s, struct call *c, int rc)
{
    assert_locked(s);
    map_del(s, c);
    emit(&s->opts, SC_EV_DELETE, c->key, c->id, 0); /* LEAD was told: end it */
    emit(&s->opts, SC_EV_DONE, c->key, c->id, rc);
    s->stats.flights--; /* its number stays used */
    s->stats.callers--;
    s->stats.in_flight--;
    sc__put_back(s, c);
}

int sc__engine_call_async(sc_group *g, const char *key, size_t len, sc_fn fn,
                          void *arg, sc_done_fn done, void *done_arg)
{
    struct engine *e = engine_of(g);
    sc_options o = e->shards[0].opts; /* for RETURN: a done callback may
                                         free the group */
    emit(&o, SC_EV_ENTER, key, 0, 0);
    struct waiter *w = malloc(sizeof *w + len + 1);
    if (w == NULL) {
        emit_return(&o, key, 0, -ENOMEM, NULL);
        return -ENOMEM;
    }
    *w = (struct waiter){.done = done, .done_arg = done_arg};
    memcpy(w->key, key, len + 1);
    unsigned hashv;
    struct call **slot;
    struct shard *s = find_and_lock(e, key, len, &hashv, &slot);
    struct call *c = in_slot(slot);
    if (c != NULL) { /* join the flight in progress */
        w->flight = c->id;
        w->next = c->waiters;
        c->waiters = w;
        c->joined++;
        s->stats.callers++;
        emit(&s->opts, SC_EV_JOIN, key, c->id, 0);
        shard_unlock(s);
        return 0;
    }
    int rc = -ENOMEM;
    unsigned long flight = 0;
    c = sc__heap_call(s, key, len);
    if (c != NULL) {
        sc__init_call(s, c, len, hashv);
        if (!add_flight(s, slot, c)) {
            sc__put_back(s, c);
            c = NULL;
        }
    }
    if (c != NULL) {
        flight = c->id;
        emit(&s->opts, SC_EV_LEAD, key, c->id, 0); /* before fn's events */
        w->fresh = true;
        w->flight = c->id;
        c->waiters = w;
        rc = start_leader(&e->threads, s, c, fn, arg);
        if (rc != 0)
            unmake_call(s, c, rc);
    }
    shard_unlock(s);
    if (rc != 0) {
        free(w);
        emit_return(&o, key, flight, rc, NULL);
    }
    return rc;
}

/* Cleanup handler of sc_drain's wait, and its normal end. */
static void stop_draining_and_unlock(void *arg)
{
    struct kit_threads *t = arg;
    t->draining--;
    pthread_mutex_unlock(&t->lock);
}

int sc__engine_drain(sc_group *g)
{
    struct kit_threads *t = &engine_of(g)->threads;
    pthread_mutex_lock(&t->lock);
    t->draining++; /* sc_free answers -EBUSY meanwhile */
    pthread_cleanup_push(stop_draining_and_unlock, t);
    while (t->running != 0)
        pthread_cond_wait(&t->idle, &t->lock);
    pthread_cleanup_pop(0);
    int cancel_state;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    join_ended_locked(t); /* the others were joined as they ended */
    stop_draining_and_unlock(t);
    pthread_setcancelstate(cancel_state, NULL);
    return 0;
}
