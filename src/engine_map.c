/*
 * engine_map.c - a shard's map moves to a larger table (map.h has the
 * rest). Out of line: it runs only when a shard has more flights at once
 * than its table holds.
 */
#include "engine.h"

#include <stdlib.h>

bool sc__map_grow(struct shard *s)
{
    unsigned size = s->mask + 1;
    unsigned bigger = size < 8 ? 8 : 2 * size;
    if (bigger <= size) /* unsigned overflow: 2^31 slots are enough */
        return false;
    struct call **t = calloc(bigger, sizeof(struct call *));
    if (t == NULL)
        return false;
    for (unsigned i = 0; i < size; i++) {
        struct call *c = s->slots[i];
        if (c == NULL)
            continue;
        unsigned j = c->hash & (bigger - 1);
        while (t[j] != NULL)
            j = (j + 1) & (bigger - 1);
        t[j] = c;
    }
    if (s->slots != s->inline_slots)
        free(s->slots);
    s->slots = t;
    s->mask = bigger - 1;
    return true;
}
