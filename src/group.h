/*
 * group.h - inside the kit: what a group is, and the entry points the front
 * door (api.c) dispatches to. Not installed.
 *
 * There are two kinds of group. sc_new makes one served by the annotated
 * port of go-zero (sharedcalls.c); sc_new_with makes one served by the full
 * engine (engine_*.c). Each kind's struct starts with a struct sc_group,
 * whose tag says which it is. The port and the engine share this header and
 * the public one, and nothing else: neither includes the other.
 *
 * By the time a call reaches an entry point below, api.c has checked its
 * arguments: the group is of the right kind, no pointer the function needs
 * is NULL, len is strlen(key) and at most UINT_MAX (uthash keeps lengths in
 * an unsigned), and a deadline's nanoseconds are in range.
 */
#ifndef SC_GROUP_H
#define SC_GROUP_H

#include <stddef.h>

#include "sharedcalls.h"

enum sc_group_kind { SC_GROUP_PORT = 1, SC_GROUP_ENGINE };

struct sc_group {
    enum sc_group_kind kind; /* set once, when the group is made */
};

/* The port (sharedcalls.c): go-zero's Do and DoEx, and freeing its group.
 * sc_new is the port's too, and public as it is. */
int sc__port_do(sc_group *g, const char *key, size_t len, sc_fn fn, void *arg,
                void **val, bool *fresh);
int sc__port_free(sc_group *g); /* 0 (freed) or -EBUSY */

/* The engine: a call that waits for its answer (deadline NULL: none), one
 * that does not, and the group's upkeep. */
int sc__engine_call(sc_group *g, const char *key, size_t len, sc_fn fn,
                    void *arg, const struct timespec *deadline, sc_result *out);
int sc__engine_call_async(sc_group *g, const char *key, size_t len, sc_fn fn,
                          void *arg, sc_done_fn done, void *done_arg);
int sc__engine_drain(sc_group *g);
int sc__engine_forget(sc_group *g, const char *key, size_t len);
void sc__engine_stats(sc_group *g, struct sc_stats *out);
int sc__engine_free(sc_group *g); /* 0 (freed) or -EBUSY */

#endif /* SC_GROUP_H */
