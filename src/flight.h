/*
 * flight.h - inside the kit: how the port (src/sharedcalls.c) hands a group
 * from sc_new_with to the full engine (src/flight.c). Not installed.
 */
#ifndef SC_FLIGHT_H
#define SC_FLIGHT_H

#include "sharedcalls.h"

struct sc_flight;

/* In the port: a group whose every call the engine f serves. */
sc_group *sc__group_for(struct sc_flight *f);
/* In the port: g's engine, or NULL for a group from sc_new. */
struct sc_flight *sc__flight_of(const sc_group *g);

/* In the engine: sc_do_ex and sc_free for its groups. */
int sc__flight_do_ex(struct sc_flight *f, const char *key, sc_fn fn, void *arg,
                     void **val, bool *fresh);
int sc__flight_free(struct sc_flight *f); /* 0 (freed) or -EBUSY */

#endif /* SC_FLIGHT_H */
