/*
 * order.c - one order for the record, the same on every run of a seed.
 *
 * The driver settles every thread before its next move, so events of
 * different stages are ordered by the driver. Within a stage, threads it
 * let go together (the callers after the seed's pick, followers woken by
 * one DONE, fns of several keys that end at one tick) log in whatever
 * order the scheduler ran them. The picture does not depend on that
 * order, but the narration would; so each stage is merged again: each
 * thread's events in its own order, a cause before its effect, and
 * otherwise the lowest row first (main's, -1, before all).
 */
#include "timeline.h"

#include <string.h>

/* Whether a, another thread's event, made b happen: the flight b joins,
 * wakes from or takes over. */
static bool causes(const struct tl_event *a, const struct tl_event *b)
{
    if (a->flight == 0 || a->flight != b->flight || strcmp(a->key, b->key) != 0)
        return false;
    switch (b->kind) {
    case SC_EV_JOIN:
        return a->kind == SC_EV_LEAD;
    case SC_EV_WAKE:
        return a->kind == SC_EV_DONE || a->kind == SC_EV_HANDOFF;
    case SC_EV_LEAD:
        return a->kind == SC_EV_HANDOFF;
    default:
        return false;
    }
}

/* Whether event i of the stage [from, to) may go next: nothing still
 * waiting before it is its own thread's or its cause. */
static bool may_go(const struct tl_run *run, const bool *taken, int from, int i)
{
    const struct tl_event *e = &run->events[i];
    for (int j = from; j < i; j++)
        if (!taken[j] &&
            (run->events[j].row == e->row || causes(&run->events[j], e)))
            return false;
    return true;
}

static void merge_stage(struct tl_run *run, int from, int to,
                        struct tl_event *out)
{
    static bool taken[TL_EVENTS_MAX];
    memset(taken + from, 0, (size_t)(to - from) * sizeof taken[0]);
    for (int n = from; n < to; n++) {
        int best = from;
        while (taken[best]) /* the first left may always go */
            best++;
        for (int i = best + 1; i < to; i++)
            if (!taken[i] && run->events[i].row < run->events[best].row &&
                may_go(run, taken, from, i))
                best = i;
        taken[best] = true;
        out[n] = run->events[best];
    }
}

void tl_order(struct tl_run *run)
{
    static struct tl_event merged[TL_EVENTS_MAX];
    int from = 0;
    while (from < run->nevents) {
        int to = from;
        while (to < run->nevents &&
               run->events[to].stage == run->events[from].stage)
            to++;
        merge_stage(run, from, to, merged);
        from = to;
    }
    memcpy(run->events, merged, (size_t)run->nevents * sizeof merged[0]);
}
