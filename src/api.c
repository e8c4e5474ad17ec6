/*
 * api.c - the front door: every public entry point but the two that make a
 * group (sc_new in sharedcalls.c, sc_new_with in engine_new.c). Each checks
 * its arguments once, here, and passes the call to the kind of group it is
 * made on: go-zero's port, or the full engine. The contract is in
 * sharedcalls.h.
 */
#include "group.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* strlen(key) into *len, or false for a key uthash cannot hold. */
static bool key_fits(const char *key, size_t *len)
{
    *len = strlen(key);
    return *len <= UINT_MAX;
}

/* 0 for a group of the full engine; -EINVAL for none, -ENOTSUP for one
 * from sc_new, which has none of the engine's functions. */
static int engine_group(const sc_group *g)
{
    if (g == NULL)
        return -EINVAL;
    return g->kind == SC_GROUP_ENGINE ? 0 : -ENOTSUP;
}

int sc_free(sc_group *g)
{
    if (g == NULL)
        return 0;
    return g->kind == SC_GROUP_ENGINE ? sc__engine_free(g) : sc__port_free(g);
}

int sc_do(sc_group *g, const char *key, sc_fn fn, void *arg, void **val)
{
    return sc_do_ex(g, key, fn, arg, val, NULL);
}

int sc_do_ex(sc_group *g, const char *key, sc_fn fn, void *arg, void **val,
             bool *fresh)
{
    size_t len;
    if (g == NULL || key == NULL || fn == NULL || val == NULL ||
        !key_fits(key, &len))
        return -EINVAL;
    if (g->kind == SC_GROUP_PORT)
        return sc__port_do(g, key, len, fn, arg, val, fresh);
    sc_result r;
    int rc = sc__engine_call(g, key, len, fn, arg, NULL, &r);
    if (rc != 0)
        return rc;
    *val = r.val;
    if (fresh != NULL)
        *fresh = r.fresh;
    return r.err;
}

int sc_do_until(sc_group *g, const char *key, sc_fn fn, void *arg,
                const struct timespec *deadline, sc_result *out)
{
    size_t len;
    int rc = engine_group(g);
    if (rc != 0)
        return rc;
    if (key == NULL || fn == NULL || out == NULL || !key_fits(key, &len) ||
        (deadline != NULL &&
         (deadline->tv_nsec < 0 || deadline->tv_nsec >= 1000000000L)))
        return -EINVAL;
    rc = sc__engine_call(g, key, len, fn, arg, deadline, out);
    return rc != 0 ? rc : out->err;
}

int sc_do_result(sc_group *g, const char *key, sc_fn fn, void *arg,
                 sc_result *out)
{
    return sc_do_until(g, key, fn, arg, NULL, out);
}

int sc_do_async(sc_group *g, const char *key, sc_fn fn, void *arg,
                sc_done_fn done, void *done_arg)
{
    size_t len;
    int rc = engine_group(g);
    if (rc != 0)
        return rc;
    if (key == NULL || fn == NULL || done == NULL || !key_fits(key, &len))
        return -EINVAL;
    return sc__engine_call_async(g, key, len, fn, arg, done, done_arg);
}

int sc_drain(sc_group *g)
{
    int rc = engine_group(g);
    return rc != 0 ? rc : sc__engine_drain(g);
}

int sc_forget(sc_group *g, const char *key)
{
    size_t len;
    int rc = engine_group(g);
    if (rc != 0)
        return rc;
    if (key == NULL || !key_fits(key, &len))
        return -EINVAL;
    return sc__engine_forget(g, key, len);
}

int sc_stats(sc_group *g, struct sc_stats *out)
{
    int rc = engine_group(g);
    if (rc != 0)
        return rc;
    if (out == NULL)
        return -EINVAL;
    sc__engine_stats(g, out);
    return 0;
}

unsigned sc_version(void)
{
    return SC_VERSION_HEX;
}

#define SC_STR(x) #x
#define SC_VERSION_STR(a, b, c) SC_STR(a) "." SC_STR(b) "." SC_STR(c)

const char *sc_version_string(void)
{
    return SC_VERSION_STR(SC_VERSION_MAJOR, SC_VERSION_MINOR, SC_VERSION_PATCH);
}
