/*
 * fleet.h - between fleet.c, which starts the processes, and workload.c,
 * which runs one: what they share.
 */
#ifndef STAMPEDE_FLEET_H
#define STAMPEDE_FLEET_H

#include "stampede.h"

#include <stdatomic.h>

/* The counters below are shared by processes: only lock-free atomics
 * work across them. */
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_BOOL_LOCK_FREE == 2,
               "the fleet's counters need lock-free atomics");

enum { ST_BINS = 64 * 8 }; /* latency histogram: 8 bins per power of two */

/* One process's report, written by it alone. */
struct st_slot {
    atomic_long done;   /* requests finished so far, for the progress line */
    int rc;             /* 0, or why it could not start (a negative errno) */
    struct st_result r; /* its totals, once its workers have ended */
    long bins[ST_BINS];
};

/* Memory that the processes share (made before the fork): the start
 * gate, the end, and the counts that must be the fleet's. */
struct st_fleet {
    pthread_mutex_t gate_lock; /* process-shared, as is gate */
    pthread_cond_t gate;       /* the gate opened; a process got ready */
    int ready;                 /* processes ready (or failed) */
    bool open;
    atomic_bool stop;
    atomic_long issued;      /* requests claimed, when counting requests */
    atomic_long db_queries;  /* every query made, for fail_every */
    atomic_long hot_queries; /* queries for hot keys, failed or not */
    char prefix[48];         /* the redis mode's keys start with it */
    struct st_slot slots[ST_MAX_PROCS];
};

/* workload.c: process index of the fleet, in mode. Starts its workers,
 * who wait at the gate; says it is ready (st_fleet_ready); once they have
 * ended, writes what they measured into its slot. Returns slot's rc. */
int st_process(const struct st_config *cfg, enum st_mode mode,
               struct st_fleet *f, int index);
int st_bin_of(long long ns);

/* fleet.c */
void st_fleet_ready(struct st_fleet *f, int index, int rc);
void st_fleet_wait_open(struct st_fleet *f);

#endif /* STAMPEDE_FLEET_H */
