/*
 * engine_stats.c - sc_stats: each shard counts its own flights under its
 * own lock, inside critical sections the calls take anyway; the group's
 * figures are their sums. A shard keeps two counters that every call
 * writes, and derives the rest from them (struct shard, in engine.h).
 */
#include "engine.h"

void sc__engine_stats(sc_group *g, struct sc_stats *out)
{
    struct engine *e = engine_of(g);
    *out = (struct sc_stats){0};
    for (unsigned i = 0; i < e->nshards; i++) {
        struct shard *s = &e->shards[i];
        shard_lock(s);
        out->flights += s->made + s->stats.flights;
        out->callers += s->made + s->stats.callers;
        out->shared += s->stats.shared;
        out->timed_out += s->stats.timed_out;
        out->cancelled += s->stats.cancelled;
        out->in_flight += shard_in_flight(s);
        shard_unlock(s);
    }
}
