/*
 * map.h - inside the engine: a shard's map from key to flight, laid out
 * so that a call on a quiet shard writes no line but its shard's first.
 * Included by engine.h; every function is called with the shard's lock
 * held.
 *
 * The map has a first slot, slot0, in the shard's first cache line, and a
 * table on the heap for the flights that meet it. A new key goes to slot0
 * if it is free, and to the table otherwise; a search looks at both. The
 * table is open addressing with linear probing: a key lives in the first
 * slot, from (hash & mask) on, that holds its record or is empty. It
 * holds pointers to records, so a search reads a record only when a slot
 * is taken, and compares the hash kept there before the key. When it is
 * more than three quarters full it moves to one twice as large
 * (sc__map_grow, in engine_map.c), and it never shrinks: a shard that once
 * had many flights at once keeps room for as many.
 */
#ifndef SC_MAP_H
#define SC_MAP_H

static inline bool is_key(const struct call *c, const char *key, size_t len,
                          unsigned hash)
{
    return c->hash == hash && c->len == len && memcmp(c->key, key, len) == 0;
}

/* The slot that holds the record for key, or an empty slot where it may
 * go (slot0 first); NULL if neither slot0 nor the table has room. */
static inline struct call **map_slot(struct shard *s, const char *key,
                                     size_t len, unsigned hash)
{
    if (s->slot0 != NULL && is_key(s->slot0, key, len, hash))
        return &s->slot0;
    struct call **empty = NULL;
    if (s->table != NULL) {
        unsigned i = hash & s->mask;
        for (; s->table[i] != NULL; i = (i + 1) & s->mask)
            if (is_key(s->table[i], key, len, hash))
                return &s->table[i];
        empty = &s->table[i]; /* the table is never full: see map_add */
    }
    return s->slot0 == NULL ? &s->slot0 : empty;
}

/* The slot of the table that holds c. */
static inline unsigned map_index_of(const struct shard *s, const struct call *c)
{
    unsigned i = c->hash & s->mask;
    while (s->table[i] != c)
        i = (i + 1) & s->mask;
    return i;
}

/* engine_map.c: makes the table, or moves it to one twice as large.
 * Returns false, with the map as it was, when memory runs out. */
bool sc__map_grow(struct shard *s);

/* Puts c, which is not in the map, at slot (from map_slot for its key).
 * Returns false, with the map as it was, if the table had to grow and
 * memory ran out. */
static inline bool map_add(struct shard *s, struct call **slot, struct call *c)
{
    if (slot == &s->slot0) {
        s->slot0 = c;
        return true;
    }
    if (slot == NULL || s->used + 1 > (s->mask + 1) / 4 * 3) {
        if (!sc__map_grow(s))
            return false;
        slot = map_slot(s, c->key, c->len, c->hash);
    }
    *slot = c;
    s->used++;
    return true;
}

/* Takes c out of the map. In the table, the records after it in its run
 * of taken slots move back into the gap when that brings them nearer
 * their home slot, so that a search never stops at a hole before its key
 * (no tombstones). */
static inline void map_del(struct shard *s, struct call *c)
{
    if (s->slot0 == c) {
        s->slot0 = NULL;
        return;
    }
    struct call **t = s->table;
    unsigned mask = s->mask;
    unsigned gap = map_index_of(s, c);
    for (unsigned j = (gap + 1) & mask; t[j] != NULL; j = (j + 1) & mask) {
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
