/*
 * fleet.h - make bench's second program, build/bench/fleet: the fleet
 * (libsharedcalls-redis) on a private redis-server's Unix socket.
 *
 *   fleet.c      the section's measurements: a call through scr_do beside
 *                sc_do and a round trip, and the round trips of a flight
 *   report.c     the section as printed, with what makes it doubtful
 *   flights.c    flights of forked processes, one leads and the others
 *                follow: what each process sent, and when it returned
 *   trips.c      the round trips, counted where the library sends them
 *
 * The program links with ld's --wrap on hiredis's redisCommandArgv (every
 * command the library sends), redisConnectUnixWithTimeout (every
 * connection) and redisGetReplyFromReader (every message pushed to a
 * subscriber): each process counts what it does itself, by kind, into
 * counters that may live in memory its parent shares.
 */
#ifndef BENCH_FLEET_H
#define BENCH_FLEET_H

#include "../redis_server.h"
#include "bench.h"
#include "sharedcalls-redis.h"

#include <stdatomic.h>

/* What a process sent: the protocol's scripts (told apart by the names
 * they touch), its other commands, then what is no command. */
enum trip {
    TRIP_ELECT,
    TRIP_PUBLISH,
    TRIP_RELEASE,
    TRIP_GET,
    TRIP_SUBSCRIBE,
    TRIP_AUTH,
    TRIP_OTHER,
    TRIP_COMMANDS, /* the kinds above are round trips */
    TRIP_CONNECT = TRIP_COMMANDS,
    TRIP_MESSAGE,
    TRIPS
};
extern const char *const trip_name[TRIPS];

struct trips {
    atomic_long n[TRIPS];
};

/* Zeroed counters for slots processes, in memory that forked children
 * share; NULL when mmap fails. */
struct trips *trips_shared(int slots);
void trips_unshare(struct trips *t, int slots);
/* From now on this process counts into t (NULL: it stops counting). */
void trips_count_into(struct trips *t);
void trips_read(struct trips *t, long out[TRIPS]);
/* The kind of a command, from its words. */
enum trip trip_kind(int argc, const char *const *argv);
/* The round trips among counts by kind. */
long trips_commands(const long n[TRIP_COMMANDS]);

/* A kind's count in one role, over every flight: least, most and sum. */
struct tally {
    long min[TRIPS], max[TRIPS], sum[TRIPS];
    int n; /* processes counted in this role, over the flights */
};

struct fleet_run {
    struct tally leader, follower;
    /* A follower's call: from its leader's fn returning to its own
     * return, in ns, one sample per follower and flight. */
    struct samples wake;
    /* The commands of the flights, kind by kind: as the processes counted
     * them, and as the server saw them (MONITOR); monitored is false when
     * the server's count could not be read. */
    long counted[TRIP_COMMANDS], seen[TRIP_COMMANDS];
    bool monitored;
    /* Flights not as planned: not one leader with every other process a
     * follower, a fallback or a takeover; and flights whose leader gave
     * up waiting for its followers to arrive. */
    int odd, late;
};

/* fn of the fleet's calls: 8 bytes, "a value". */
int fleet_value(void *arg, void **buf, size_t *len);

/* procs processes, each with its own group on o, run flights flights
 * together: each flight a new key, whose leader's fn returns once every
 * other process waits for its value. Returns 0, or -1 with a message. */
int fleet_flights(const struct redis_server *s, const scr_options *o, int procs,
                  int flights, struct fleet_run *out);

/* What fleet.c measured, for report.c. Index 0: a new key each call;
 * 1: one key, called again and again. */
struct measured {
    int procs, flights;
    long calls;                        /* timed calls of each kind */
    long failed;                       /* calls that failed, or fell back */
    struct samples local[2], fleet[2]; /* sc_do, scr_do: ns a call */
    struct samples ping[2];            /* timed in turn with fleet[i] */
    struct samples eval;               /* an EVAL of "return 1" */
    double trips_a_call[2];            /* fleet[i]'s round trips a call */
    struct fleet_run run;
    double others; /* the share of the CPUs other programs took meanwhile */
};

void report(const struct measured *m);

#endif /* BENCH_FLEET_H */
