/*
 * engine_trace.c - telling a group's trace hook about an event (see
 * sc_options.trace). Only groups with a hook come here: emit and
 * emit_return in engine.h test the pointer first.
 */
#define _POSIX_C_SOURCE 200809L

#include "engine.h"

#include <time.h>

void sc__emit(const sc_options *o, sc_event ev)
{
    int cancel_state; /* a hook cancelled inside the kit would strand it */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    clock_gettime(CLOCK_MONOTONIC, &ev.at);
    ev.thread = pthread_self();
    o->trace(&ev, o->trace_ctx);
    pthread_setcancelstate(cancel_state, NULL);
}
