/*
 * flights.c - flights across a fleet of forked processes on one key at a
 * time: one process leads, the others follow. Each process counts its own
 * round trips (trips.c) and notes when its call returned; the leader's fn
 * returns only once every other process has asked Redis for the value and
 * found none, so that each flight takes the same steps in every run. The
 * server's own view, MONITOR, counts the same commands from its side.
 */
#define _GNU_SOURCE

#include "fleet.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { PROCS_MAX = 8, FLIGHTS_MAX = REPS_MAX };
enum role { FAILED, LEADER, FOLLOWER };

/* What one process did in one flight. */
struct outcome {
    enum role role;
    long n[TRIPS];
    double returned; /* ns */
};

/* The memory the processes share. */
struct shared {
    pthread_barrier_t step;      /* every process and the parent */
    long gets_before[PROCS_MAX]; /* each process's GETs before a flight */
    atomic_llong fn_end[FLIGHTS_MAX];
    atomic_int late;
    struct outcome out[FLIGHTS_MAX][PROCS_MAX];
};

struct child {
    struct shared *sh;
    struct trips *trips; /* one slot a process */
    int procs, slot, flight;
};

int fleet_value(void *arg, void **buf, size_t *len)
{
    (void)arg;
    *buf = strdup("a value");
    *len = 8;
    return *buf != NULL ? 0 : 1;
}

/* fn of every flight: once every other process has read the value and
 * found none (its first GET is over), it returns 8 bytes. */
static int lead_when_all_wait(void *arg, void **buf, size_t *len)
{
    const struct child *c = arg;
    double give_up = now_ns() + 2e9;
    for (;;) {
        int waiting = 0;
        for (int p = 0; p < c->procs; p++)
            waiting += p != c->slot && atomic_load(&c->trips[p].n[TRIP_GET]) >
                                           c->sh->gets_before[p];
        if (waiting == c->procs - 1)
            break;
        if (now_ns() > give_up) {
            atomic_fetch_add(&c->sh->late, 1);
            break;
        }
        nanosleep(&(struct timespec){0, 20000}, NULL);
    }
    atomic_store(&c->sh->fn_end[c->flight], (long long)now_ns());
    return fleet_value(NULL, buf, len);
}

static enum role role_of(int rc, const scr_result *r)
{
    if (rc != 0 || r->fallback || r->takeover)
        return FAILED;
    return r->origin == SCR_THIS_THREAD     ? LEADER
           : r->origin == SCR_OTHER_PROCESS ? FOLLOWER
                                            : FAILED;
}

/* A process of the fleet: its group, one call to pool a connection, then
 * the flights, each begun together with the others. */
_Noreturn static void child(struct child *c, const scr_options *o, int flights)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* nothing left if the bench dies */
    trips_count_into(&c->trips[c->slot]);
    scr_group *g = scr_new(o, NULL);
    scr_result r;
    char key[24];
    snprintf(key, sizeof key, "warm-%d", c->slot);
    bool ok = g != NULL && scr_do(g, key, fleet_value, NULL, &r) == 0;
    if (ok)
        free(r.val);
    pthread_barrier_wait(&c->sh->step); /* ready: the server is watched */
    for (c->flight = 0; c->flight < flights; c->flight++) {
        long before[TRIPS], after[TRIPS];
        trips_read(&c->trips[c->slot], before);
        c->sh->gets_before[c->slot] = before[TRIP_GET];
        pthread_barrier_wait(&c->sh->step);
        snprintf(key, sizeof key, "flight-%d", c->flight);
        int rc = ok ? scr_do(g, key, lead_when_all_wait, c, &r) : -1;
        struct outcome *out = &c->sh->out[c->flight][c->slot];
        out->returned = now_ns();
        out->role = role_of(rc, &r);
        trips_read(&c->trips[c->slot], after);
        for (int k = 0; k < TRIPS; k++)
            out->n[k] = after[k] - before[k];
        if (rc == 0)
            free(r.val);
    }
    scr_free(g);
    _exit(0);
}

static void tally_add(struct tally *t, const long n[TRIPS])
{
    for (int k = 0; k < TRIPS; k++) {
        t->min[k] = t->n == 0 || n[k] < t->min[k] ? n[k] : t->min[k];
        t->max[k] = t->n == 0 || n[k] > t->max[k] ? n[k] : t->max[k];
        t->sum[k] += n[k];
    }
    t->n++;
}

static void sum_up(const struct shared *sh, int procs, int flights,
                   struct fleet_run *run)
{
    for (int f = 0; f < flights; f++) {
        int leaders = 0, followers = 0;
        for (int p = 0; p < procs; p++) {
            const struct outcome *o = &sh->out[f][p];
            leaders += o->role == LEADER;
            followers += o->role == FOLLOWER;
            if (o->role == LEADER)
                tally_add(&run->leader, o->n);
            if (o->role == FOLLOWER) {
                tally_add(&run->follower, o->n);
                samples_add(&run->wake,
                            o->returned - (double)atomic_load(&sh->fn_end[f]));
            }
            for (int k = 0; k < TRIP_COMMANDS; k++)
                run->counted[k] += o->n[k];
        }
        run->odd += leaders != 1 || followers != procs - 1;
    }
    run->late = atomic_load(&sh->late);
}

/* A word of a MONITOR line: a quoted string, as it stands (escapes and
 * all: the words that tell the kinds apart have none). */
static const char *next_word(const char *p, char *word, size_t size)
{
    p = strchr(p, '"');
    if (p == NULL)
        return NULL;
    size_t n = 0;
    for (p++; *p != '\0' && *p != '"'; p++) {
        if (*p == '\\' && p[1] != '\0')
            p++;
        if (n + 1 < size)
            word[n++] = *p;
    }
    word[n] = '\0';
    return *p == '"' ? p + 1 : NULL;
}

/* The server's lines, up to the bench's ECHO: each command a client sent,
 * by kind ("[0 lua]" lines are the scripts' own, within a round trip). */
static bool read_monitor(redisContext *mon, long seen[TRIP_COMMANDS])
{
    for (;;) {
        redisReply *r;
        if (redisGetReply(mon, (void **)&r) != REDIS_OK)
            return false;
        const char *line = r->type == REDIS_REPLY_STATUS ? r->str : "";
        const char *from = strchr(line, '[');
        bool script = from != NULL && strncmp(from, "[0 lua]", 7) == 0;
        char words[8][64];
        const char *argv[8];
        int argc = 0;
        for (const char *p = from; p != NULL && argc < 8; argc++) {
            p = next_word(p, words[argc], sizeof words[argc]);
            if (p == NULL)
                break;
            argv[argc] = words[argc];
        }
        bool end = argc > 0 && strcasecmp(argv[0], "ECHO") == 0;
        if (argc > 0 && !script && !end)
            seen[trip_kind(argc, argv)]++;
        freeReplyObject(r);
        if (end)
            return true;
    }
}

/* MONITOR on one admin connection; the ECHO that ends it will come on
 * another, opened now so that its AUTH is not among the flights'. */
static redisContext *watch(const struct redis_server *s, redisContext **echo)
{
    redisContext *mon = redis_admin(s);
    *echo = redis_admin(s);
    redisReply *r =
        mon != NULL && *echo != NULL ? redisCommand(mon, "MONITOR") : NULL;
    bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (r != NULL)
        freeReplyObject(r);
    if (!ok && mon != NULL) {
        redisFree(mon);
        mon = NULL;
    }
    return mon;
}

static bool unwatch(redisContext *mon, redisContext *echo,
                    long seen[TRIP_COMMANDS])
{
    bool ok = false;
    if (mon != NULL) {
        redisReply *r = redisCommand(echo, "ECHO %s", "end of the flights");
        if (r != NULL) {
            freeReplyObject(r);
            ok = read_monitor(mon, seen);
        }
        redisFree(mon);
    }
    if (echo != NULL)
        redisFree(echo);
    return ok;
}

int fleet_flights(const struct redis_server *s, const scr_options *o, int procs,
                  int flights, struct fleet_run *out)
{
    *out = (struct fleet_run){0};
    if (procs < 2 || procs > PROCS_MAX || flights < 1 ||
        flights > FLIGHTS_MAX) {
        fprintf(stderr, "fleet: 2-%d processes, 1-%d flights\n", PROCS_MAX,
                FLIGHTS_MAX);
        return -1;
    }
    struct trips *trips = trips_shared(procs);
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (trips == NULL || sh == MAP_FAILED) {
        perror("fleet: mmap");
        return -1;
    }
    pthread_barrierattr_t a;
    pthread_barrierattr_init(&a);
    pthread_barrierattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&sh->step, &a, (unsigned)procs + 1);
    pthread_barrierattr_destroy(&a);
    fflush(NULL);
    for (int p = 0; p < procs; p++) {
        struct child c = {sh, trips, procs, p, 0};
        pid_t pid = fork();
        if (pid == 0)
            child(&c, o, flights);
        if (pid < 0) { /* those forked wait at the barrier, and die with us */
            perror("fleet: fork");
            exit(1);
        }
    }
    pthread_barrier_wait(&sh->step);
    redisContext *echo, *mon = watch(s, &echo);
    for (int f = 0; f < flights; f++)
        pthread_barrier_wait(&sh->step);
    for (int p = 0; p < procs; p++)
        wait(NULL);
    out->monitored = unwatch(mon, echo, out->seen);
    sum_up(sh, procs, flights, out);
    pthread_barrier_destroy(&sh->step);
    munmap(sh, sizeof *sh);
    trips_unshare(trips, procs);
    return 0;
}
