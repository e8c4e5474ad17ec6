/*
 * driver.c - runs a scenario with real threads against the real library,
 * on a virtual clock, and records what the trace hook reports.
 *
 * Each caller is a thread that waits for its tick, then calls sc_do_until;
 * its fn waits on the same clock until its last tick. The clock moves on
 * only when every thread has settled: waiting for its tick, parked as a
 * follower of a flight that still runs, or returned. Each tick goes in
 * phases, so that nothing depends on the scheduler:
 *
 *   1. main cancels a thread or calls sc_forget, if the scenario says so;
 *   2. the fns (and broken waits) due at this tick go on;
 *   3. the callers due at this tick call: one alone (the seed picks it),
 *      then the others together, so they really queue on the group lock.
 *
 * A follower with a deadline gets a real one, 50 ms a tick, and the clock
 * waits for it to time out at its tick. A thread that does not settle
 * within a time limit is stuck: the broken scenario's followers, drawn as
 * such and then freed by cancelling them, so the demo itself never hangs.
 *
 * Main cancels a thread with pthread_cancel, but no thread waits with
 * cancellation enabled: a cancelled thread is woken, and acts on the
 * request at the pthread_testcancel that follows its wait. So every wait
 * returns as waits normally do, which Helgrind and DRD can follow (they
 * cannot follow a thread cancelled inside pthread_cond_wait).
 */
#define _POSIX_C_SOURCE 200809L

#include "timeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

enum { PHASE_ACTIONS, PHASE_ENDS, PHASE_CALLS };
enum { TICK_MS = 50, SETTLE_MS = 10000 };

struct actor {
    struct world *w;
    int row;
    struct tl_actor a; /* runs with the seed's extra ticks */
    pthread_t thread;
    pthread_t self;   /* set by the thread itself, for the hook */
    bool go;          /* main let it call */
    bool parked;      /* waiting on the clock, or for go */
    int until, phase; /* parked until this tick and phase; -1: for go */
    bool over;        /* its thread has ended */
    bool stuck;       /* waits for a wake-up that came before */
    bool killed;      /* main has cancelled it */
    int last;         /* its last event's kind; -1: none yet */
    int due;          /* a deadline's tick; -1: none */
    unsigned long flight;
    char made[8]; /* the value its fn made */
};

/* The broken re-enactment's group: one key, no predicate. */
struct broken {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool busy;
    bool done;    /* set by the leader, and never read: the mistake */
    bool rescued; /* main is freeing the stuck: wait no more */
    unsigned long flights;
};

struct world {
    pthread_mutex_t mu;
    pthread_cond_t changed; /* an event, or a thread parked */
    pthread_cond_t clock;   /* tick, phase or a go moved */
    int tick, phase;
    int stage; /* how many times main has let threads go and settled */
    struct timespec t0;
    struct tl_run *run;
    const struct tl_scenario *sc;
    sc_group *g;
    bool open[TL_EVENTS_MAX]; /* by flight number: fn runs for it */
    int nactors;
    struct actor actors[TL_ROWS_MAX];
    struct broken broken;
    uint64_t rng;
};

static uint64_t next_random(struct world *w)
{
    w->rng ^= w->rng << 13; /* xorshift64: the same seed, the same run */
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

static long long ns_between(struct timespec a, struct timespec b)
{
    return (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
}

/* Appends an event to the record, with w->mu held. */
static void note(struct world *w, int row, int kind, const char *key,
                 unsigned long flight, int code, bool fresh, bool shared,
                 struct timespec at)
{
    struct tl_run *run = w->run;
    if (run->nevents < TL_EVENTS_MAX) {
        struct tl_event *e = &run->events[run->nevents++];
        *e = (struct tl_event){w->tick,  row,   kind,   flight,
                               code,     fresh, shared, ns_between(w->t0, at),
                               w->stage, ""};
        snprintf(e->key, sizeof e->key, "%s", key);
    }
    if (kind == SC_EV_LEAD)
        w->open[flight % TL_EVENTS_MAX] = true;
    if (kind == SC_EV_DONE || kind == SC_EV_HANDOFF)
        w->open[flight % TL_EVENTS_MAX] = false;
    if (row >= 0) {
        struct actor *a = &w->actors[row];
        a->last = kind;
        a->flight = flight != 0 ? flight : a->flight;
    }
    pthread_cond_broadcast(&w->changed);
}

static int row_of(const struct world *w, pthread_t t)
{
    for (int i = 0; i < w->nactors; i++)
        if (pthread_equal(w->actors[i].self, t))
            return i;
    return -1; /* main */
}

/* The library's trace hook. */
static void record(const sc_event *ev, void *ctx)
{
    struct world *w = ctx;
    pthread_mutex_lock(&w->mu);
    note(w, row_of(w, ev->thread), (int)ev->kind, ev->key, ev->flight, ev->code,
         ev->fresh, ev->shared, ev->at);
    pthread_mutex_unlock(&w->mu);
}

/* An event of the demo's own (or of the broken re-enactment). */
static void tell(struct world *w, int row, int kind, const char *key,
                 unsigned long flight, int code, bool fresh)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&w->mu);
    note(w, row, kind, key, flight, code, fresh, !fresh, now);
    pthread_mutex_unlock(&w->mu);
}

/* Waits, with w->mu held, until the clock reaches tick in phase, or main
 * cancels the thread: then the caller's next pthread_testcancel acts. */
/* Whether a parked thread may go on, with w->mu held. Main asks this too:
 * a thread it has let go counts as busy before it has even woken. */
static bool ready(const struct world *w, const struct actor *a)
{
    if (a->killed)
        return true;
    if (a->until < 0)
        return a->go;
    return w->tick > a->until || (w->tick == a->until && w->phase >= a->phase);
}

static void park_until(struct actor *a, int tick, int phase)
{
    struct world *w = a->w;
    a->parked = true;
    a->until = tick;
    a->phase = phase;
    pthread_cond_broadcast(&w->changed);
    int was;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &was);
    while (!ready(w, a))
        pthread_cond_wait(&w->clock, &w->mu);
    pthread_setcancelstate(was, NULL);
    a->parked = false;
}

/* fn: takes the actor's ticks, then returns its error or a new value. */
static int fetch(void *arg, void **val)
{
    struct actor *a = arg;
    struct world *w = a->w;
    pthread_mutex_lock(&w->mu);
    /* the value depends only on the seed, the caller and the tick */
    uint64_t h = (w->run->seed + 1) * 0x9E3779B97F4A7C15ULL ^
                 (uint64_t)(a->row * 131 + w->tick) * 0xBF58476D1CE4E5B9ULL;
    snprintf(a->made, sizeof a->made, "%06x", (unsigned)(h >> 40) & 0xffffff);
    park_until(a, w->tick + a->a.runs, PHASE_ENDS);
    pthread_mutex_unlock(&w->mu);
    pthread_testcancel(); /* scenario 6: main cancels the leader in fn */
    *val = a->made;
    return a->a.err;
}

/* The mistake of src/zoo.h's wait_no_predicate, told through the same
 * events: a follower unlocks, locks again later, and waits with no check
 * of done. Not the library: it has no broken mode. */
static int broken_call(struct actor *a, void **val)
{
    struct world *w = a->w;
    struct broken *b = &w->broken;
    const char *key = a->a.key;
    tell(w, a->row, SC_EV_ENTER, key, 0, 0, false);
    pthread_mutex_lock(&b->mu);
    if (!b->busy) {
        unsigned long id = ++b->flights;
        b->busy = true;
        b->done = false;
        tell(w, a->row, SC_EV_LEAD, key, id, 0, false);
        pthread_mutex_unlock(&b->mu);
        tell(w, a->row, SC_EV_FN_START, key, id, 0, false);
        int err = fetch(a, val);
        tell(w, a->row, SC_EV_FN_RETURN, key, id, err, false);
        pthread_mutex_lock(&b->mu);
        b->busy = false;
        tell(w, a->row, SC_EV_DELETE, key, id, 0, false);
        b->done = true;
        pthread_cond_broadcast(&b->wake);
        tell(w, a->row, SC_EV_DONE, key, id, err, false);
        pthread_mutex_unlock(&b->mu);
        tell(w, a->row, SC_EV_RETURN, key, id, err, true);
        return err;
    }
    unsigned long id = b->flights;
    tell(w, a->row, SC_EV_JOIN, key, id, 0, false);
    pthread_mutex_unlock(&b->mu); /* the mistake: a window before the wait */
    pthread_mutex_lock(&w->mu);
    park_until(a, a->a.relock_at, PHASE_ENDS);
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_lock(&b->mu);
    tell(w, a->row, TL_EV_WAIT, key, id, 0, false);
    int was;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &was);
    if (!b->rescued) /* the demo's way out; done is never looked at */
        pthread_cond_wait(&b->wake, &b->mu);
    pthread_setcancelstate(was, NULL);
    pthread_mutex_unlock(&b->mu);
    pthread_testcancel(); /* main frees a stuck follower this way */
    tell(w, a->row, SC_EV_WAKE, key, id, 0, false);
    tell(w, a->row, SC_EV_RETURN, key, id, 0, false);
    return 0;
}

static bool is_broken(const struct tl_scenario *sc)
{
    for (int i = 0; i < sc->nactors; i++)
        if (sc->actors[i].relock_at > 0)
            return true;
    return false;
}

/* Cleanup handler: however a caller's thread ends (returned, or cancelled
 * once the kit's own handlers have run), it has settled for good. */
static void ended(void *arg)
{
    struct actor *a = arg;
    pthread_mutex_lock(&a->w->mu);
    a->over = true;
    pthread_cond_broadcast(&a->w->changed);
    pthread_mutex_unlock(&a->w->mu);
}

static void *caller(void *arg)
{
    struct actor *a = arg;
    struct world *w = a->w;
    pthread_cleanup_push(ended, a);
    pthread_mutex_lock(&w->mu);
    a->self = pthread_self();
    park_until(a, -1, 0); /* until main lets it go */
    pthread_mutex_unlock(&w->mu);
    pthread_testcancel();

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    long long ns =
        deadline.tv_nsec + (long long)a->a.patience * TICK_MS * 1000000;
    deadline.tv_sec += (time_t)(ns / 1000000000LL);
    deadline.tv_nsec = (long)(ns % 1000000000LL);
    sc_result r = {NULL, 0, false, false};
    int rc = is_broken(w->sc)
                 ? broken_call(a, &r.val)
                 : sc_do_until(w->g, a->a.key, fetch, a,
                               a->a.patience > 0 ? &deadline : NULL, &r);
    pthread_mutex_lock(&w->mu);
    struct tl_row *row = &w->run->rows[a->row];
    snprintf(row->value, sizeof row->value, "%s",
             rc == 0 && r.val != NULL ? (const char *)r.val : tl_code_name(rc));
    pthread_mutex_unlock(&w->mu);
    pthread_cleanup_pop(1);
    return NULL;
}

/* Whether a has nothing left to do until main moves, with w->mu held. */
static bool settled(const struct world *w, const struct actor *a)
{
    if (a->over || a->stuck)
        return true;
    if (a->parked)
        return !ready(w, a);
    bool waiting = a->last == SC_EV_JOIN || a->last == TL_EV_WAIT;
    return waiting && w->open[a->flight % TL_EVENTS_MAX] &&
           (a->due < 0 || a->due > w->tick);
}

/* Marks row i stuck, since the tick it began its wait. With w->mu held. */
static void mark_stuck(struct world *w, int i)
{
    struct actor *a = &w->actors[i];
    a->stuck = true;
    snprintf(w->run->rows[i].value, sizeof w->run->rows[i].value, "stuck");
    int since = w->tick;
    for (int e = w->run->nevents; e-- > 0;)
        if (w->run->events[e].row == i &&
            w->run->events[e].kind == TL_EV_WAIT) {
            since = w->run->events[e].tick;
            break;
        }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int tick = w->tick;
    w->tick = since;
    note(w, i, TL_EV_STUCK, a->a.key, a->flight, 0, false, false, now);
    w->tick = tick;
}

/* Whether a waits with no predicate for a flight that has already ended:
 * nobody will ever wake it. With w->mu held. */
static bool waits_forever(const struct world *w, const struct actor *a)
{
    return !a->stuck && a->last == TL_EV_WAIT &&
           !w->open[a->flight % TL_EVENTS_MAX];
}

/* Waits until every thread has settled, and returns how many are stuck:
 * the broken wait's, found from the record; and any that has not settled
 * within SETTLE_MS, which only a bug in the library could cause. With
 * w->mu held. */
static int settle(struct world *w)
{
    struct timespec limit;
    clock_gettime(CLOCK_MONOTONIC, &limit);
    limit.tv_sec += SETTLE_MS / 1000;
    int stuck = 0, i = 0;
    while (i < w->nactors) { /* until all have settled at once */
        if (waits_forever(w, &w->actors[i])) {
            mark_stuck(w, i);
            stuck++;
        }
        if (settled(w, &w->actors[i]))
            i++;
        else if (pthread_cond_timedwait(&w->changed, &w->mu, &limit) ==
                 ETIMEDOUT)
            break;
        else
            i = 0;
    }
    for (i = 0; i < w->nactors; i++)
        if (!settled(w, &w->actors[i])) {
            mark_stuck(w, i);
            stuck++;
        }
    w->stage++; /* what comes next follows all of this */
    return stuck;
}

/* Phase 3: the callers due now call, the seed's pick first and alone. */
static int call_in(struct world *w)
{
    int due[TL_ROWS_MAX], n = 0, stuck = 0;
    for (int i = 0; i < w->nactors; i++)
        if (w->actors[i].a.at == w->tick)
            due[n++] = i;
    if (n == 0)
        return 0;
    int first = (int)(next_random(w) % (uint64_t)n);
    w->actors[due[first]].go = true;
    w->run->rows[due[first]].first = n > 1;
    pthread_cond_broadcast(&w->clock);
    stuck += settle(w);
    for (int i = 0; i < n; i++)
        w->actors[due[i]].go = true;
    pthread_cond_broadcast(&w->clock);
    return stuck + settle(w);
}

/* Cancels a's thread and wakes it if it waits on the clock, with w->mu
 * held. (A stuck follower waits on the broken group: see tl_run.) */
static void kill(struct world *w, struct actor *a)
{
    a->killed = true;
    a->parked = false; /* busy until its thread has ended */
    pthread_cancel(a->thread);
    pthread_cond_broadcast(&w->clock);
}

/* Phase 1: main's own moves. */
static int act(struct world *w)
{
    const struct tl_scenario *sc = w->sc;
    int stuck = 0;
    for (int i = 0; i < w->nactors; i++) {
        struct actor *a = &w->actors[i];
        if (a->a.killed_at != w->tick || a->a.killed_at == 0 || a->over)
            continue;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        note(w, -1, TL_EV_KILL, a->a.key, a->flight, i, false, false, now);
        kill(w, a);
        stuck += settle(w);
    }
    if (sc->forget_at != 0 && sc->forget_at == w->tick) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        note(w, -1, TL_EV_FORGET, sc->forget_key, 0, 0, false, false, now);
        pthread_mutex_unlock(&w->mu); /* the hook takes it */
        sc_forget(w->g, sc->forget_key);
        pthread_mutex_lock(&w->mu);
        stuck += settle(w);
    }
    return stuck;
}

static bool all_over(const struct world *w)
{
    for (int i = 0; i < w->nactors; i++)
        if (!w->actors[i].over && !w->actors[i].stuck)
            return false;
    return true;
}

/* Runs every tick, and more if a flight outlasts the scenario's width.
 * Returns how many threads got stuck. */
static int play(struct world *w)
{
    int stuck = settle(w); /* every thread waits for its tick */
    for (w->tick = 0; w->tick < TL_TICKS_MAX; w->tick++) {
        if (w->tick >= w->sc->ticks && all_over(w))
            break;
        w->phase = PHASE_ACTIONS;
        stuck += act(w);
        w->phase = PHASE_ENDS;
        pthread_cond_broadcast(&w->clock);
        stuck += settle(w);
        w->phase = PHASE_CALLS;
        stuck += call_in(w);
    }
    w->run->ticks = w->tick;
    return stuck;
}

static void setup(struct world *w, const struct tl_scenario *sc,
                  struct tl_run *run, int n, unsigned seed)
{
    *run = (struct tl_run){.scenario = n,
                           .seed = seed,
                           .title = sc->title,
                           .caption = sc->caption,
                           .ticks = sc->ticks,
                           .nrows = sc->nactors};
    memset(w, 0, sizeof *w);
    w->run = run;
    w->sc = sc;
    w->nactors = sc->nactors;
    w->rng = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;
    for (int i = 0; i < sc->nactors; i++) {
        struct actor *a = &w->actors[i];
        a->w = w;
        a->row = i;
        a->a = sc->actors[i];
        a->last = -1;
        a->due = a->a.patience > 0 ? a->a.at + a->a.patience : -1;
        if (sc->seeded)
            a->a.runs += (int)(next_random(w) % 4);
        snprintf(run->rows[i].label, sizeof run->rows[i].label, "G%d %.6s",
                 i % TL_ROWS_MAX + 1, a->a.key); /* i < TL_ROWS_MAX */
        snprintf(run->rows[i].key, sizeof run->rows[i].key, "%s", a->a.key);
        run->rows[i].as = a->a;
    }
}

int tl_run(int n, unsigned seed, struct tl_run *out)
{
    const struct tl_scenario *sc = tl_scenario(n);
    if (sc == NULL || out == NULL)
        return -EINVAL;
    static struct world world; /* one run at a time; large */
    struct world *w = &world;
    setup(w, sc, out, n, seed);
    sc_options o = {.handoff = sc->handoff, .trace = record, .trace_ctx = w};
    w->g = sc_new_with(&o);
    if (w->g == NULL)
        return -errno;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t monotonic; /* settle's limit is on CLOCK_MONOTONIC */
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_cond_init(&w->changed, &monotonic);
    pthread_condattr_destroy(&monotonic);
    pthread_cond_init(&w->clock, NULL);
    pthread_mutex_init(&w->broken.mu, NULL);
    pthread_cond_init(&w->broken.wake, NULL);
    clock_gettime(CLOCK_MONOTONIC, &w->t0);
    int started = 0, rc = 0;
    pthread_mutex_lock(&w->mu);
    while (started < w->nactors && rc == 0) {
        w->actors[started].until = -1; /* parked before it even runs */
        rc = -pthread_create(&w->actors[started].thread, NULL, caller,
                             &w->actors[started]);
        started += rc == 0;
    }
    int stuck = rc == 0 ? play(w) : 0;
    for (int i = 0; i < started; i++)
        if (!w->actors[i].over)
            kill(w, &w->actors[i]); /* the demo must not hang */
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_lock(&w->broken.mu); /* after w->mu: the broken group's */
    w->broken.rescued = true;          /* threads lock it first */
    pthread_cond_broadcast(&w->broken.wake);
    pthread_mutex_unlock(&w->broken.mu);
    for (int i = 0; i < started; i++)
        pthread_join(w->actors[i].thread, NULL);
    sc_stats(w->g, &out->stats);
    if (sc_free(w->g) != 0 && rc == 0)
        rc = -EBUSY;
    pthread_cond_destroy(&w->broken.wake);
    pthread_mutex_destroy(&w->broken.mu);
    pthread_cond_destroy(&w->clock);
    pthread_cond_destroy(&w->changed);
    pthread_mutex_destroy(&w->mu);
    if (rc == 0 && stuck > 0 && !is_broken(sc))
        rc = -EDEADLK; /* the library left a thread waiting */
    tl_order(out);
    return rc;
}
