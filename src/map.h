/*
 * map.h - inside the engine: a shard's map from key to flight, laid out
 * in the shard's own cache lines. Included by engine.h; every function is
 * called with the shard's lock held.
 *
 * Open addressing with linear probing: a key lives in the first slot, from
 * (hash & mask) on, that holds its record or is empty. The table is an
 * array of pointers to records; a search reads a record only when its
 * slot is taken, and compares the hash kept there before the key. A shard
 * starts with INLINE_SLOTS slots inside itself, in a line that every call
 * writes anyway, so a call on a quiet shard touches no other memory of the
 * map. When a table is too full (more than three quarters, or the inline
 * one full) it moves to a table twice as large on the heap
 * (sc__map_grow, in engine_map.c). Tables never shrink: a shard that once
 * had many flights at once keeps room for as many.
 */
#ifndef SC_MAP_H
#define SC_MAP_H

/* The slot that holds the record for key, or the empty slot where it
 * would go; NULL if the table is full and key is not in it. */
static inline struct call **map_slot(struct shard *s, const char *key,
                                     size_t len, unsigned hash)
{
    unsigned i = hash & s->mask;
    for (unsigned n = 0; n <= s->mask; n++, i = (i + 1) & s->mask) {
        struct call *c = s->slots[i];
        if (c == NULL ||
            (c->hash == hash && c->len == len && memcmp(c->key, key, len) == 0))
            return &s->slots[i];
    }
    return NULL;
}

/* The slot that holds c, which is in the map. */
static inline struct call **map_slot_of(struct shard *s, const struct call *c)
{
    unsigned i = c->hash & s->mask;
    while (s->slots[i] != c)
        i = (i + 1) & s->mask;
    return &s->slots[i];
}

/* engine_map.c: moves the map to a table twice as large. Returns false,
 * with the map as it was, when memory runs out. */
bool sc__map_grow(struct shard *s);

/* Puts c, which is not in the map, at slot (from map_slot for its key).
 * Returns false, with the map as it was, if the map had to grow and
 * memory ran out. */
static inline bool map_add(struct shard *s, struct call **slot, struct call *c)
{
    unsigned size = s->mask + 1;
    if (s->used + 1 > size - size / 4) { /* a table of 2 may fill up */
        if (!sc__map_grow(s))
            return false;
        slot = map_slot(s, c->key, c->len, c->hash);
    }
    *slot = c;
    s->used++;
    return true;
}

/* Takes c out of the map. The records after it in its run of taken slots
 * move back into the gap when that brings them nearer their home slot, so
 * that a search never stops at a hole before its key (no tombstones). */
static inline void map_del(struct shard *s, struct call *c)
{
    struct call **t = s->slots;
    unsigned mask = s->mask;
    unsigned gap = (unsigned)(map_slot_of(s, c) - t);
    for (unsigned n = 0, j = (gap + 1) & mask; n < mask && t[j] != NULL;
         n++, j = (j + 1) & mask) {
        unsigned home = t[j]->hash & mask;
        /* t[j] may move to gap if home is not cyclically in (gap, j] */
        if (((j - home) & mask) >= ((j - gap) & mask)) {
            t[gap] = t[j];
            gap = j;
        }
    }
    t[gap] = NULL;
    s->used--;
}

#endif /* SC_MAP_H */
