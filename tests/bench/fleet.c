/*
 * fleet - make bench's section on the fleet (libsharedcalls-redis): what
 * a call through scr_do costs beside the in-process path (sc_do on the
 * engine) and beside a round trip to Redis, and the round trips a flight
 * takes in the process that leads and in each that follows, counted.
 *
 *   build/bench/fleet [--quick]
 *
 * It starts a private redis-server on a Unix socket in a folder of its own
 * (tests/redis_server.c: a password, persistence off) and stops it before
 * it prints (report.c). Every call is timed on its own, where it is made,
 * and a PING is timed in turn with each call through the fleet, so that
 * the two see the same host; the CPU time other programs take meanwhile
 * is noted, for the report's doubts.
 */
#define _GNU_SOURCE

#include "fleet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* One kind of call, made on key; returns 0 or an error. */
struct caller {
    int (*call)(const struct caller *c, const char *key);
    sc_group *local;
    scr_group *fleet;
    redisContext *redis;
    struct trips *count; /* where the timed calls' round trips go */
};

static int constant(void *arg, void **val)
{
    *val = arg;
    return 0;
}

static int call_local(const struct caller *c, const char *key)
{
    void *v;
    return sc_do(c->local, key, constant, NULL, &v);
}

static int call_fleet(const struct caller *c, const char *key)
{
    scr_result r;
    int rc = scr_do(c->fleet, key, fleet_value, NULL, &r);
    if (rc == 0)
        free(r.val);
    return rc;
}

static int redis_reply(redisReply *r)
{
    int rc = r != NULL && r->type != REDIS_REPLY_ERROR ? 0 : -1;
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

static int call_ping(const struct caller *c, const char *key)
{
    (void)key;
    return redis_reply(redisCommand(c->redis, "PING"));
}

static int call_eval(const struct caller *c, const char *key)
{
    (void)key;
    return redis_reply(redisCommand(c->redis, "EVAL %s 0", "return 1"));
}

static long timed(const struct caller *c, const char *key, struct samples *out)
{
    trips_count_into(c->count);
    double t0 = now_ns();
    int rc = c->call(c, key);
    samples_add(out, now_ns() - t0);
    trips_count_into(NULL);
    return rc != 0;
}

/* n calls of c, each timed on its own, after one untimed (it may
 * connect); fresh: a new key each call, else one key. beside (NULL: none)
 * is timed in turn with c, so that both see the host alike. Returns the
 * calls that failed. */
static long time_calls(const struct caller *c, long n, bool fresh,
                       struct samples *out, const struct caller *beside,
                       struct samples *beside_out)
{
    long failed = c->call(c, "warm") != 0;
    for (long i = 0; i < n; i++) {
        char key[24];
        snprintf(key, sizeof key, "%s-%ld", fresh ? "new" : "one",
                 fresh ? i : 0);
        if (beside != NULL)
            failed += timed(beside, key, beside_out);
        failed += timed(c, key, out);
    }
    return failed;
}

/* CPU seconds: the machine's busy time, and this program's with its
 * children (the server and the fleet's processes, once waited for). */
struct cpu {
    double machine, own, wall;
};

static struct cpu cpu_now(void)
{
    struct cpu c = {.wall = now_ns() / 1e9};
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f != NULL) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
            memset(v, 0, sizeof v);
        fclose(f);
    }
    /* user nice system idle iowait irq softirq steal: all but the idle */
    c.machine = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) /
                (double)sysconf(_SC_CLK_TCK);
    struct rusage self, children;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    const struct timeval *t[4] = {&self.ru_utime, &self.ru_stime,
                                  &children.ru_utime, &children.ru_stime};
    for (int i = 0; i < 4; i++)
        c.own += (double)t[i]->tv_sec + (double)t[i]->tv_usec / 1e6;
    return c;
}

static int measure(const struct redis_server *s, struct measured *m)
{
    const scr_options o = {.unix_socket = s->socket, .password = s->password};
    int err = 0;
    struct caller ping = {.call = call_ping, .redis = redis_admin(s)};
    struct caller eval = {.call = call_eval, .redis = ping.redis};
    struct caller local = {.call = call_local,
                           .local = sc_new_with(&(sc_options){0})};
    struct caller fleet = {.call = call_fleet, .fleet = scr_new(&o, &err)};
    if (ping.redis == NULL || local.local == NULL || fleet.fleet == NULL) {
        fprintf(stderr, "fleet: no connection, or no group (%d)\n", err);
        return -1;
    }
    struct trips trips[2] = {0};
    for (int i = 0; i < 2; i++) {
        m->failed +=
            time_calls(&local, m->calls, i == 0, &m->local[i], NULL, NULL);
        fleet.count = &trips[i];
        m->failed += time_calls(&fleet, m->calls, i == 0, &m->fleet[i], &ping,
                                &m->ping[i]);
        long t[TRIPS];
        trips_read(&trips[i], t);
        m->trips_a_call[i] = (double)trips_commands(t) / (double)m->calls;
    }
    struct scr_stats st;
    scr_stats(fleet.fleet, &st);
    m->failed += (long)st.fallbacks;
    m->failed += time_calls(&eval, m->calls, false, &m->eval, NULL, NULL);
    redisFree(ping.redis);
    sc_free(local.local);
    scr_free(fleet.fleet);
    return fleet_flights(s, &o, m->procs, m->flights, &m->run);
}

int main(int argc, char **argv)
{
    bool quick = argc == 2 && strcmp(argv[1], "--quick") == 0;
    if (argc > 2 || (argc == 2 && !quick)) {
        fprintf(stderr, "usage: fleet [--quick]\n");
        return 2;
    }
    /* A flight that hangs ends the program; the server and the fleet's
     * processes die with it (PR_SET_PDEATHSIG). */
    alarm(300);
    struct measured m = {
        .procs = 4, .flights = quick ? 5 : 31, .calls = quick ? 2000 : 20000};
    struct redis_server s;
    if (redis_start(&s, NULL) != 0)
        return 1;
    struct cpu c0 = cpu_now();
    int rc = measure(&s, &m);
    redis_stop(&s);
    struct cpu c1 = cpu_now();
    if (rc != 0)
        return 1;
    /* /proc/stat counts in ticks: a quiet host may come out a little
     * below nothing */
    double others = (c1.machine - c0.machine) - (c1.own - c0.own);
    m.others = fmax(0, others / ((c1.wall - c0.wall) *
                                 (double)sysconf(_SC_NPROCESSORS_ONLN)));
    report(&m);
    return 0;
}
