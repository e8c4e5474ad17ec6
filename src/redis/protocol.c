/*
 * protocol.c - one process's part in a flight across the fleet: elect a
 * leader in Redis, lead (run fn, publish), or wait for the leader's value
 * and take over when the lock is gone without one. The protocol is drawn
 * in sharedcalls-redis.h.
 */
#define _GNU_SOURCE /* getrandom */

#include "fleet.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* KEYS: lock, fence. ARGV: token, the lock's time to live in ms. Elected:
 * {1, f}. Not: {0, the holder's "TOKEN f", the lock's ms to live}.
 *
 * A missing fence counter (the key's first flight, or a server that lost
 * its data in a restart) starts from the server's clock in microseconds,
 * not from 0: a leader elected before the loss, still running, holds a
 * lower number than any handed out after it, so its value is stale, not
 * current. This holds while the server's clock does not go back, and
 * while fewer than one leader a microsecond was elected before. Lua keeps
 * the number in a double (exact below 2^53: microseconds until 2255) and
 * would write it as 1.79e+15: %d writes its digits. */
static const char elect_script[] =
    "local holder = redis.call('GET', KEYS[1])\n"
    "if holder then return {0, holder, redis.call('PTTL', KEYS[1])} end\n"
    "if not redis.call('GET', KEYS[2]) then\n"
    "  local t = redis.call('TIME')\n"
    "  redis.call('SET', KEYS[2], string.format('%d%06d', t[1], t[2])) end\n"
    "local f = redis.call('INCR', KEYS[2])\n"
    "redis.call('SET', KEYS[1], ARGV[1] .. string.format(' %d', f), 'PX',\n"
    "    ARGV[2])\n"
    "return {1, f}\n";

/* KEYS: lock, fence, value, channel. ARGV: token, f, entry, the value's
 * time to live in ms. Stored: {1}. Stale (a newer leader was elected):
 * {0, the fence counter}. The lock goes only if it is still this
 * leader's. */
static const char publish_script[] =
    "local now = redis.call('GET', KEYS[2])\n"
    "if now ~= ARGV[2] then return {0, tonumber(now) or 0} end\n"
    "redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])\n"
    "if redis.call('GET', KEYS[1]) == ARGV[1] .. ' ' .. ARGV[2] then\n"
    "  redis.call('DEL', KEYS[1]) end\n"
    "redis.call('PUBLISH', KEYS[4], 'done ' .. ARGV[2])\n"
    "return {1}\n";

/* KEYS: lock, channel. ARGV: token, f. fn failed: the lock goes, if it is
 * still this leader's (compare and delete), and the waiters are told. */
static const char release_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] .. ' ' .. ARGV[2] then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  redis.call('PUBLISH', KEYS[2], 'failed ' .. ARGV[2])\n"
    "  return 1 end\n"
    "return 0\n";

enum name { LOCK, FENCE, VALUE, CHANNEL, NAMES };
static const char *const suffix[NAMES] = {"lock", "fence", "value", "done"};

/* One process leader's flight: its names in Redis, its token, and its
 * connections. Lives on the leader thread's stack. */
struct flight {
    scr_group *g;
    scr_fn fn;
    void *arg;
    ms_t deadline;
    char *names[NAMES]; /* PREFIX{KEY}:lock, ... */
    char token[33];
    redisContext *cmd; /* NULL until needed, and after it broke */
    redisContext *sub; /* subscribed to the channel, once waiting */
    uint64_t fence;    /* elected: ours; waiting: the holder's */
    bool fn_ran;       /* fn has run here: its code is final, whatever */
    ms_t lock_until;   /* waiting: when the holder's lock expires */
    bool takeover;
};

static int make_names(struct flight *f, const char *key)
{
    const char *prefix = f->g->opts.prefix;
    for (int i = 0; i < NAMES; i++) {
        size_t n = strlen(prefix) + strlen(key) + strlen(suffix[i]) + 4;
        f->names[i] = malloc(n);
        if (f->names[i] == NULL)
            return -ENOMEM;
        snprintf(f->names[i], n, "%s{%s}:%s", prefix, key, suffix[i]);
    }
    return 0;
}

static void make_token(char token[33])
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) { /* rare: mix */
        uint64_t a = (uint64_t)scr__now() ^ (uint64_t)(uintptr_t)token;
        memcpy(r, &a, 8);
        memcpy(r + 8, &a, 8);
    }
    for (int i = 0; i < 16; i++)
        snprintf(token + (size_t)i * 2, 3, "%02x", r[i]);
}

/* A command on the flight's connection, taken from the group's idle ones
 * or made. An idle connection may have broken since it was used (the
 * server restarted): then the command is tried once more on a new one. */
static int flight_command(struct flight *f, int argc, const char **argv,
                          const size_t *lens, redisReply **reply)
{
    for (int tries = 0;; tries++) {
        bool pooled = false;
        int rc = f->cmd != NULL ? 0 : scr__conn_get(f->g, &f->cmd, &pooled);
        if (rc == 0)
            rc = scr__command(f->cmd, argc, argv, lens, reply);
        if (rc != -EIO && rc != -ETIMEDOUT)
            return rc;
        redisFree(f->cmd); /* unusable now */
        f->cmd = NULL;
        if (!pooled || rc != -EIO || tries > 0)
            return rc;
    }
}

/* A script, on the flight's command connection. */
static int eval(struct flight *f, const char *script, int nkeys,
                const enum name *keys, int nargs, const char **args,
                const size_t *arglens, redisReply **reply)
{
    const char *argv[12];
    size_t lens[12];
    char count[4];
    snprintf(count, sizeof count, "%d", nkeys);
    int argc = 0;
    argv[argc] = "EVAL", lens[argc++] = 4;
    argv[argc] = script, lens[argc++] = strlen(script);
    argv[argc] = count, lens[argc++] = strlen(count);
    for (int i = 0; i < nkeys; i++)
        argv[argc] = f->names[keys[i]],
        lens[argc++] = strlen(f->names[keys[i]]);
    for (int i = 0; i < nargs; i++)
        argv[argc] = args[i],
        lens[argc++] = arglens != NULL ? arglens[i] : strlen(args[i]);
    return flight_command(f, argc, argv, lens, reply);
}

/* Elects this process, or learns who holds the lock. Returns 1 (elected,
 * f->fence ours), 0 (f->fence and f->lock_until the holder's), or a
 * negative errno. */
static int elect(struct flight *f)
{
    static const enum name keys[] = {LOCK, FENCE};
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%u", f->g->opts.lock_ttl_ms);
    const char *args[] = {f->token, ttl};
    redisReply *r;
    int rc = eval(f, elect_script, 2, keys, 2, args, NULL, &r);
    if (rc != 0)
        return rc;
    rc = -EPROTO;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
        if (r->element[0]->integer == 1 &&
            r->element[1]->type == REDIS_REPLY_INTEGER) {
            f->fence = (uint64_t)r->element[1]->integer;
            rc = 1;
        } else if (r->elements == 3 &&
                   r->element[1]->type == REDIS_REPLY_STRING &&
                   r->element[2]->type == REDIS_REPLY_INTEGER) {
            const char *space = strchr(r->element[1]->str, ' ');
            f->fence = space != NULL ? strtoull(space + 1, NULL, 10) : 0;
            f->lock_until = scr__now() + r->element[2]->integer;
            rc = 0;
        }
    }
    freeReplyObject(r);
    return rc;
}

static struct fleet_value *new_value(const void *bytes, size_t len)
{
    struct fleet_value *v = malloc(sizeof *v + len);
    if (v == NULL)
        return NULL;
    atomic_init(&v->refs, 1);
    v->ran_here = v->takeover = v->fallback = false;
    v->len = len;
    if (len > 0)
        memcpy(v->bytes, bytes, len);
    return v;
}

/* Runs fn here. Returns 0 with *out, fn's code, -EMSGSIZE or -ENOMEM. */
static int run_fn(struct flight *f, struct fleet_value **out)
{
    void *buf = NULL;
    size_t len = 0;
    atomic_fetch_add(&f->g->runs, 1);
    f->fn_ran = true;
    int rc = f->fn(f->arg, &buf, &len);
    if (rc == 0 && len > f->g->opts.max_value) {
        atomic_fetch_add(&f->g->refused, 1);
        rc = -EMSGSIZE;
    }
    if (rc == 0 && (*out = new_value(buf, len)) == NULL)
        rc = -ENOMEM;
    free(buf);
    if (rc == 0)
        (*out)->ran_here = true;
    return rc;
}

/* Reads the value: 1 with *out when one at least as new as f->fence is
 * there, 0 when none is, or a negative errno (-EBADMSG, -EMSGSIZE: a
 * forged or truncated entry). */
static int read_value(struct flight *f, struct fleet_value **out)
{
    const char *argv[2] = {"GET", f->names[VALUE]};
    redisReply *r;
    int rc = flight_command(f, 2, argv, NULL, &r);
    if (rc != 0)
        return rc;
    rc = 0;
    if (r->type == REDIS_REPLY_STRING) {
        uint64_t fence;
        const char *bytes;
        size_t len;
        rc = scr__value_decode(r->str, r->len, f->g->opts.max_value, &fence,
                               &bytes, &len);
        if (rc != 0)
            atomic_fetch_add(&f->g->refused, 1);
        else if (fence < f->fence)
            rc = 0; /* an older flight's: not an answer to this one */
        else if ((*out = new_value(bytes, len)) == NULL)
            rc = -ENOMEM;
        else
            rc = 1;
    }
    freeReplyObject(r);
    return rc;
}

static int subscribe(struct flight *f)
{
    int rc = scr__connect(&f->g->opts, &f->sub);
    if (rc != 0)
        return rc;
    const char *argv[2] = {"SUBSCRIBE", f->names[CHANNEL]};
    redisReply *r;
    rc = scr__command(f->sub, 2, argv, NULL, &r);
    if (rc == 0)
        freeReplyObject(r);
    return rc;
}

static int lead(struct flight *f, struct fleet_value **out);

/* Waits for the holder's value, taking over when its lock is gone without
 * one. Returns 0 with *out, or a negative errno. */
static int wait_for_value(struct flight *f, struct fleet_value **out)
{
    int rc = f->sub != NULL ? 0 : subscribe(f);
    if (rc != 0)
        return rc;
    for (;;) {
        rc = read_value(f, out); /* subscribed first: no wake-up is lost */
        if (rc == 1) {
            atomic_fetch_add(&f->g->remote, 1);
            return 0;
        }
        if (rc == -EBADMSG || rc == -EMSGSIZE || rc == -ENOMEM)
            return rc;
        /* Sleep until woken, or until the holder's lock has expired. */
        ms_t until = f->lock_until + 1;
        if (until > f->deadline)
            until = f->deadline;
        redisReply *msg = NULL;
        rc = scr__next_message(f->sub, until, &msg);
        bool failed = msg != NULL && msg->type == REDIS_REPLY_ARRAY &&
                      msg->elements == 3 &&
                      msg->element[2]->type == REDIS_REPLY_STRING &&
                      strncmp(msg->element[2]->str, "failed", 6) == 0;
        freeReplyObject(msg);
        if (rc == -EIO)
            return rc; /* the server is gone */
        if (scr__now() >= f->deadline)
            return -ETIMEDOUT;
        if (rc == 0 && !failed)
            continue; /* a value was published: read it */
        /* The lock expired, or its leader failed: one waiter takes over. */
        rc = elect(f);
        if (rc == 1) {
            f->takeover = true;
            atomic_fetch_add(&f->g->takeovers, 1);
            return lead(f, out);
        }
        if (rc < 0 && rc != -ETIMEDOUT)
            return rc;
        if (rc == -ETIMEDOUT) /* a stalled server: look again soon */
            f->lock_until = scr__now() + 10;
    }
}

/* The lock goes, if it is still this leader's, and the waiters are told:
 * fn failed, or its value cannot be published. */
static void release_lock(struct flight *f, const char *fence)
{
    static const enum name keys[] = {LOCK, CHANNEL};
    const char *args[] = {f->token, fence};
    redisReply *r;
    if (eval(f, release_script, 2, keys, 2, args, NULL, &r) == 0)
        freeReplyObject(r);
}

/* A value that was not published, so its fencing number was never
 * checked (Redis failed, or memory ran out): this process's callers get
 * it as they would in a fallback, and it is counted as one. */
static int unchecked(struct flight *f, struct fleet_value *v)
{
    atomic_fetch_add(&f->g->fallbacks, 1);
    v->fallback = true;
    return 0;
}

/* This process was elected with fencing number f->fence: run fn and
 * publish its value, or tell the waiters it failed. */
static int lead(struct flight *f, struct fleet_value **out)
{
    int rc = run_fn(f, out);
    char fence[24];
    snprintf(fence, sizeof fence, "%" PRIu64, f->fence);
    redisReply *r = NULL;
    if (rc != 0) {
        release_lock(f, fence);
        return rc;
    }
    char *entry = scr__value_encode(f->fence, (*out)->bytes, (*out)->len);
    if (entry == NULL) { /* out of memory: the waiters may take over now */
        release_lock(f, fence);
        return unchecked(f, *out);
    }
    static const enum name keys[] = {LOCK, FENCE, VALUE, CHANNEL};
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%u", f->g->opts.value_ttl_ms);
    const char *args[] = {f->token, fence, entry, ttl};
    const size_t lens[] = {strlen(f->token), strlen(fence),
                           SCR_VALUE_HEADER + (*out)->len, strlen(ttl)};
    int published = eval(f, publish_script, 4, keys, 4, args, lens, &r);
    free(entry);
    if (published != 0) /* the waiters take over after the lock's TTL */
        return unchecked(f, *out);
    bool stale = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                 r->element[0]->type == REDIS_REPLY_INTEGER &&
                 r->element[0]->integer == 0;
    uint64_t newer = stale && r->element[1]->type == REDIS_REPLY_INTEGER
                         ? (uint64_t)r->element[1]->integer
                         : 0;
    freeReplyObject(r);
    if (!stale)
        return 0;
    /* A newer leader was elected while fn ran: this value is stale and
     * is never returned as current. Its callers wait for the newer one,
     * as any waiter does: if Redis fails meanwhile, they fall back and fn
     * runs again here (fn's code is not at stake: it succeeded). */
    atomic_fetch_add(&f->g->stale, 1);
    free(*out);
    *out = NULL;
    f->fn_ran = false;
    f->fence = newer;
    f->lock_until = scr__now() + f->g->opts.lock_ttl_ms;
    return wait_for_value(f, out);
}

int scr__fleet_flight(scr_group *g, const char *key, scr_fn fn, void *arg,
                      ms_t deadline, struct fleet_value **out)
{
    struct flight f = {.g = g, .fn = fn, .arg = arg, .deadline = deadline};
    int rc = make_names(&f, key);
    if (rc == 0) {
        make_token(f.token);
        rc = elect(&f);
        if (rc == 1)
            rc = lead(&f, out);
        else if (rc == 0)
            rc = wait_for_value(&f, out);
    }
    if (!f.fn_ran && (rc == -EIO || rc == -ETIMEDOUT || rc == -EPROTO)) {
        /* Redis failed (or a waiter's deadline passed); fn's own codes,
         * whatever their sign, are never taken for that. */
        if (rc == -ETIMEDOUT && f.sub != NULL && scr__now() >= deadline) {
            /* a waiter's deadline: scr_do counts it, once a caller */
        } else if (g->opts.on_unreachable == SCR_FAIL) {
            rc = -EIO;
        } else {
            atomic_fetch_add(&g->fallbacks, 1);
            rc = run_fn(&f, out);
            if (rc == 0)
                (*out)->fallback = true;
        }
    }
    if (rc == 0 && f.takeover && *out != NULL)
        (*out)->takeover = true;
    scr__conn_put(g, f.cmd);
    if (f.sub != NULL)
        redisFree(f.sub);
    for (int i = 0; i < NAMES; i++)
        free(f.names[i]);
    return rc;
}
