/*
 * engine_forget.c - sc_forget (x/sync's Forget): the flight in progress
 * for a key leaves the map, so later callers start a new one, while it
 * runs on for the callers it has. Its end then leaves the map alone
 * (in_map is false), so a newer flight for the key is never deleted by an
 * older one (golang/go#31420).
 */
#include "engine.h"

#include <errno.h>

int sc__engine_forget(sc_group *g, const char *key, size_t len)
{
    unsigned hashv;
    struct call **slot;
    struct shard *s = find_and_lock(engine_of(g), key, len, &hashv, &slot);
    struct call *c = in_slot(slot);
    if (c != NULL) {
        map_del(s, c);
        c->in_map = false;
        emit(&s->opts, SC_EV_DELETE, c->key, c->id, 0);
    }
    shard_unlock(s);
    return c != NULL ? 0 : -ENOENT;
}
