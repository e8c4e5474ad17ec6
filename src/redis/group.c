/*
 * group.c - scr_new, scr_do, scr_free and scr_stats: the in-process group
 * (libsharedcalls' engine) in front of the flight across the fleet. The
 * contract is in sharedcalls-redis.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "fleet.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The engine's value hooks: the callers of one process's flight share its
 * fleet_value by reference, and each copies the bytes out. */
static void *value_share(void *val, void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&((struct fleet_value *)val)->refs, 1);
    return val;
}

static void value_drop(void *val, void *ctx)
{
    (void)ctx;
    struct fleet_value *v = val;
    if (atomic_fetch_sub(&v->refs, 1) == 1)
        free(v);
}

/* The options with their defaults, strings copied into one block. */
static int settle_options(scr_group *g, const scr_options *o)
{
    scr_options d = o != NULL ? *o : (scr_options){0};
    if (d.prefix == NULL)
        d.prefix = "sc:";
    if (d.unix_socket == NULL && d.host == NULL)
        d.host = "127.0.0.1";
    if (d.unix_socket == NULL && d.port == 0)
        d.port = 6379;
    if (strpbrk(d.prefix, "{}") != NULL || d.port < 0 || d.port > 65535 ||
        (d.on_unreachable != SCR_FALL_BACK && d.on_unreachable != SCR_FAIL))
        return -EINVAL;
    d.lock_ttl_ms = d.lock_ttl_ms != 0 ? d.lock_ttl_ms : 5000;
    d.wait_ms = d.wait_ms != 0 ? d.wait_ms : 10000;
    d.value_ttl_ms = d.value_ttl_ms != 0 ? d.value_ttl_ms : 1000;
    d.io_timeout_ms = d.io_timeout_ms != 0 ? d.io_timeout_ms : 500;
    d.max_value = d.max_value != 0 ? d.max_value : 1U << 20;
    const char **s[] = {&d.unix_socket, &d.host, &d.user, &d.password,
                        &d.prefix};
    size_t n = 0;
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        n += *s[i] != NULL ? strlen(*s[i]) + 1 : 0;
    char *block = malloc(n > 0 ? n : 1);
    if (block == NULL)
        return -ENOMEM;
    g->strings = block;
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        if (*s[i] != NULL) {
            size_t len = strlen(*s[i]) + 1;
            memcpy(block, *s[i], len);
            *s[i] = block;
            block += len;
        }
    g->opts = d;
    return 0;
}

/* Whether Redis takes the credentials and lets this user run every
 * command the protocol sends, on the prefix's keys and channels (the
 * scripts ask the ACL itself, redis.acl_check_cmd, without running
 * anything), and subscribe. Returns 0, -EACCES, -ENOMEM, or -EIO or
 * -ETIMEDOUT (unreachable). */
static const char probe_script[] =
    "for _, c in ipairs({{'SET', KEYS[1], 'x'}, {'GET', KEYS[1]},\n"
    "    {'INCR', KEYS[1]}, {'DEL', KEYS[1]}, {'PTTL', KEYS[1]},\n"
    "    {'PUBLISH', KEYS[1], 'x'}, {'TIME'}}) do\n"
    "  if not redis.acl_check_cmd(unpack(c)) then return 0 end end\n"
    "return 1\n";

static int probe(scr_group *g)
{
    redisContext *c;
    int rc = scr__connect(&g->opts, &c);
    if (rc != 0)
        return rc;
    size_t n = strlen(g->opts.prefix) + 16;
    char *name = malloc(n);
    if (name == NULL) {
        redisFree(c);
        return -ENOMEM;
    }
    snprintf(name, n, "%s{probe}:lock", g->opts.prefix);
    const char *eval[] = {"EVAL", probe_script, "1", name};
    redisReply *r;
    rc = scr__command(c, 4, eval, NULL, &r);
    if (rc == 0) {
        bool allowed = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
        rc = allowed ? 0 : -EACCES;
    }
    const char *subscribe[] = {"SUBSCRIBE", name};
    if (rc == 0 && (rc = scr__command(c, 2, subscribe, NULL, &r)) == 0)
        freeReplyObject(r);
    free(name);
    redisFree(c); /* subscribed: of no use for commands any more */
    return rc == -EPROTO ? -EACCES : rc;
}

scr_group *scr_new(const scr_options *opts, int *err)
{
    scr_group *g = calloc(1, sizeof *g);
    int rc = g != NULL ? settle_options(g, opts) : -ENOMEM;
    if (rc == 0 && (rc = -pthread_mutex_init(&g->lock, NULL)) == 0) {
        g->local = sc_new_with(
            &(sc_options){.share = value_share, .drop = value_drop});
        rc = g->local != NULL ? probe(g) : -ENOMEM;
        if ((rc == -EIO || rc == -ETIMEDOUT) &&
            g->opts.on_unreachable == SCR_FALL_BACK)
            rc = 0; /* calls will fall back until Redis is there */
        else if (rc == -ETIMEDOUT)
            rc = -EIO;
        if (rc != 0) {
            sc_free(g->local);
            while (g->nidle > 0)
                redisFree(g->idle[--g->nidle]);
            pthread_mutex_destroy(&g->lock);
        }
    }
    if (rc != 0) {
        if (g != NULL)
            free(g->strings);
        free(g);
        if (err != NULL)
            *err = rc;
        return NULL;
    }
    return g;
}

int scr_free(scr_group *g)
{
    if (g == NULL)
        return 0;
    if (sc_free(g->local) != 0)
        return -EBUSY;
    while (g->nidle > 0)
        redisFree(g->idle[--g->nidle]);
    pthread_mutex_destroy(&g->lock);
    free(g->strings);
    free(g);
    return 0;
}

/* What the process's leader thread runs, as the engine's fn. */
struct local_call {
    scr_group *g;
    const char *key;
    scr_fn fn;
    void *arg;
    ms_t deadline;
};

static int fleet_fn(void *arg, void **val)
{
    struct local_call *l = arg;
    struct fleet_value *v = NULL;
    int rc = scr__fleet_flight(l->g, l->key, l->fn, l->arg, l->deadline, &v);
    *val = v;
    return rc;
}

int scr_do(scr_group *g, const char *key, scr_fn fn, void *arg, scr_result *out)
{
    if (g == NULL || key == NULL || fn == NULL || out == NULL)
        return -EINVAL;
    ms_t deadline = scr__now() + g->opts.wait_ms;
    struct local_call l = {g, key, fn, arg, deadline};
    struct timespec until = {(time_t)(deadline / 1000),
                             (long)(deadline % 1000) * 1000000L};
    sc_result r;
    int rc = sc_do_until(g->local, key, fleet_fn, &l, &until, &r);
    atomic_fetch_add(&g->calls, 1);
    if (rc == -ETIMEDOUT) /* waiting here, or for another process */
        atomic_fetch_add(&g->timed_out, 1);
    if (rc != 0)
        return rc;
    struct fleet_value *v = r.val;
    char *copy = malloc(v->len > 0 ? v->len : 1);
    if (copy == NULL) {
        value_drop(v, NULL);
        return -ENOMEM;
    }
    memcpy(copy, v->bytes, v->len);
    *out = (scr_result){
        .val = copy,
        .len = v->len,
        .origin = !v->ran_here ? SCR_OTHER_PROCESS
                  : r.fresh    ? SCR_THIS_THREAD
                               : SCR_THIS_PROCESS,
        .takeover = v->takeover,
        .fallback = v->fallback,
    };
    value_drop(v, NULL);
    return 0;
}

int scr_stats(scr_group *g, struct scr_stats *out)
{
    if (g == NULL || out == NULL)
        return -EINVAL;
    *out = (struct scr_stats){
        .calls = atomic_load(&g->calls),
        .runs = atomic_load(&g->runs),
        .remote = atomic_load(&g->remote),
        .takeovers = atomic_load(&g->takeovers),
        .fallbacks = atomic_load(&g->fallbacks),
        .stale = atomic_load(&g->stale),
        .timed_out = atomic_load(&g->timed_out),
        .refused = atomic_load(&g->refused),
    };
    return 0;
}
