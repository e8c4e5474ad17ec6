/*
 * engine_map.c - a shard's map gets its table, or a larger one (map.h has
 * the rest). Out of line: it runs only when a shard has more flights at
 * once than its table holds.
 */
#include "engine.h"

#include <stdlib.h>

enum { FIRST_TABLE = 8 };

bool sc__map_grow(struct shard *s)
{
    unsigned size = s->table != NULL ? s->mask + 1 : 0;
    unsigned bigger = size != 0 ? 2 * size : FIRST_TABLE;
    if (bigger <= size) /* unsigned overflow: 2^31 slots are enough */
        return false;
    struct call **t = calloc(bigger, sizeof(struct call *));
    if (t == NULL)
        return false;
    for (unsigned i = 0; i < size; i++) {
        struct call *c = s->table[i];
        if (c == NULL)
            continue;
        unsigned j = c->hash & (bigger - 1);
        while (t[j] != NULL)
            j = (j + 1) & (bigger - 1);
        t[j] = c;
    }
    free(s->table);
    s->table = t;
    s->mask = bigger - 1;
    return true;
}
