/*
 * trips.c - the round trips to Redis, counted where the library sends
 * them: ld's --wrap puts these functions between libsharedcalls-redis and
 * hiredis (see fleet.h). A count is taken once hiredis has returned, so a
 * process that reads another's counters knows that those round trips are
 * over.
 */
#define _GNU_SOURCE

#include "fleet.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

const char *const trip_name[TRIPS] = {
    "EVAL elect",     "EVAL publish",       "EVAL release",
    "GET the value",  "SUBSCRIBE",          "AUTH",
    "other commands", "connections opened", "messages pushed to it"};

/* This process's counters; NULL while it does not count. */
static struct trips *mine;

struct trips *trips_shared(int slots)
{
    void *p = mmap(NULL, sizeof(struct trips) * (size_t)slots,
                   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p; /* zeroed */
}

void trips_unshare(struct trips *t, int slots)
{
    munmap(t, sizeof(struct trips) * (size_t)slots);
}

void trips_count_into(struct trips *t)
{
    mine = t;
}

void trips_read(struct trips *t, long out[TRIPS])
{
    for (int k = 0; k < TRIPS; k++)
        out[k] = atomic_load(&t->n[k]);
}

/* protocol.c's scripts, by the suffixes of the names they touch (its
 * KEYS, in order): the protocol in sharedcalls-redis.h. */
static const struct {
    const char *keys;
    enum trip kind;
} scripts[] = {{"lock fence", TRIP_ELECT},
               {"lock fence value done", TRIP_PUBLISH},
               {"lock done", TRIP_RELEASE}};

static enum trip script_kind(int argc, const char *const *argv)
{
    char touched[64] = "";
    int keys = argc > 2 ? atoi(argv[2]) : 0;
    for (int i = 0; i < keys && 3 + i < argc; i++) {
        const char *suffix = strrchr(argv[3 + i], ':');
        size_t used = strlen(touched);
        snprintf(touched + used, sizeof touched - used, "%s%s",
                 used > 0 ? " " : "", suffix != NULL ? suffix + 1 : "?");
    }
    for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++)
        if (strcmp(touched, scripts[i].keys) == 0)
            return scripts[i].kind;
    return TRIP_OTHER;
}

enum trip trip_kind(int argc, const char *const *argv)
{
    if (argc < 1)
        return TRIP_OTHER;
    if (strcasecmp(argv[0], "EVAL") == 0)
        return script_kind(argc, argv);
    if (strcasecmp(argv[0], "GET") == 0)
        return TRIP_GET;
    if (strcasecmp(argv[0], "SUBSCRIBE") == 0)
        return TRIP_SUBSCRIBE;
    if (strcasecmp(argv[0], "AUTH") == 0)
        return TRIP_AUTH;
    return TRIP_OTHER;
}

long trips_commands(const long n[TRIP_COMMANDS])
{
    long sum = 0;
    for (int k = 0; k < TRIP_COMMANDS; k++)
        sum += n[k];
    return sum;
}

static void count(enum trip kind)
{
    if (mine != NULL)
        atomic_fetch_add(&mine->n[kind], 1);
}

void *__real_redisCommandArgv(redisContext *c, int argc, const char **argv,
                              const size_t *argvlen);
void *__wrap_redisCommandArgv(redisContext *c, int argc, const char **argv,
                              const size_t *argvlen);
redisContext *__real_redisConnectUnixWithTimeout(const char *path,
                                                 const struct timeval tv);
redisContext *__wrap_redisConnectUnixWithTimeout(const char *path,
                                                 const struct timeval tv);
int __real_redisGetReplyFromReader(redisContext *c, void **reply);
int __wrap_redisGetReplyFromReader(redisContext *c, void **reply);

/* One command: a round trip. Its arguments name the keys as strings (a
 * value's bytes, which may hold a NUL, come after them). */
void *__wrap_redisCommandArgv(redisContext *c, int argc, const char **argv,
                              const size_t *argvlen)
{
    void *r = __real_redisCommandArgv(c, argc, argv, argvlen);
    count(trip_kind(argc, argv));
    return r;
}

redisContext *__wrap_redisConnectUnixWithTimeout(const char *path,
                                                 const struct timeval tv)
{
    redisContext *c = __real_redisConnectUnixWithTimeout(path, tv);
    count(TRIP_CONNECT);
    return c;
}

/* A subscriber's read: a message only when it yields a reply. */
int __wrap_redisGetReplyFromReader(redisContext *c, void **reply)
{
    int rc = __real_redisGetReplyFromReader(c, reply);
    if (rc == REDIS_OK && *reply != NULL)
        count(TRIP_MESSAGE);
    return rc;
}
