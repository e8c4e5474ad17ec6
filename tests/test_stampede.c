/*
 * test_stampede.c - the cache-stampede demo, short: with sharedcalls the
 * database sees at most one query per key per expiry, without it more,
 * and in every mode every answer is the row in the table; a fleet of two
 * processes on a private redis-server sees about one query per expiry of
 * a hot key for the whole fleet, where sharedcalls sees one per process.
 *
 * The runs are short (a fixed number of requests, TTLs of tens of
 * milliseconds), and what they assert holds for any interleaving: the
 * figures vary from run to run, the rules do not. The fleet's run is
 * bounded in time (1.5 s a mode), and its bound on queries leaves room
 * for a takeover or two.
 *
 *   build/tests/test_stampede [REQUESTS]   (8000; the race checks use fewer)
 */
#define _POSIX_C_SOURCE 200809L

#include "stampede.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/test_stampede.XXXXXX";
static char path[64];
static long requests = 8000;

static struct st_config config(void)
{
    return (struct st_config){.db_path = path,
                              .rows = 2000,
                              .threads = 8,
                              .requests = requests,
                              .hot = 4,
                              .hot_percent = 95,
                              .ttl_ms = 20,
                              .missing_ttl_ms = 10,
                              .db_latency_ms = 2,
                              .seed = 7,
                              .beta = 1.0,
                              .fleet_copy = true};
}

static void adds_up(const struct st_result *r)
{
    CU_ASSERT_EQUAL(r->requests, requests);
    CU_ASSERT_EQUAL(r->hits + r->shared + r->queries, r->requests);
    CU_ASSERT_EQUAL(r->wrong, 0);
    CU_ASSERT(r->not_found > 0); /* a tenth of the ids do not exist */
}

static void sharedcalls_queries_once_per_expiry(void)
{
    struct st_config cfg = config();
    struct st_result r;
    CU_ASSERT_EQUAL_FATAL(st_run(&cfg, ST_SHAREDCALLS, &r), 0);
    adds_up(&r);
    CU_ASSERT_EQUAL(r.over_once, 0);
    CU_ASSERT(r.hot_fills > 1); /* the hot keys expired, and were refilled */
    CU_ASSERT_EQUAL(r.hot_queries, r.hot_fills);
    CU_ASSERT(r.shared > 0);
    CU_ASSERT_EQUAL(r.db_fails, 0);
}

static void without_it_an_expiry_costs_more(void)
{
    struct st_config cfg = config();
    struct st_result r;
    CU_ASSERT_EQUAL_FATAL(st_run(&cfg, ST_NONE, &r), 0);
    adds_up(&r);
    CU_ASSERT(r.hot_queries > r.hot_fills); /* a stampede */
    CU_ASSERT(r.over_once > 0);
    CU_ASSERT_EQUAL(r.shared, 0);
}

static void a_failed_query_is_shared_not_retried(void)
{
    struct st_config cfg = config();
    cfg.db_fail_every = 3;
    struct st_result s, n;
    CU_ASSERT_EQUAL_FATAL(st_run(&cfg, ST_SHAREDCALLS, &s), 0);
    CU_ASSERT_EQUAL_FATAL(st_run(&cfg, ST_NONE, &n), 0);
    adds_up(&s);
    adds_up(&n);
    CU_ASSERT(s.db_fails > 0);
    CU_ASSERT(s.errors > s.db_fails); /* followers got their leader's error */
    CU_ASSERT_EQUAL(n.errors, n.db_fails); /* each caller its own */
    CU_ASSERT_EQUAL(s.over_once, 0);
}

/* With queries failing, every request is still counted once (from the
 * cache, from another's query or from its own), and a failed query is
 * still a query: of the database's, and of the hot keys'. Every query
 * failing: nothing is ever cached, and every answer is the failure. */
static void counts_add_up_with_failures(void)
{
    static const enum st_mode modes[] = {ST_NONE, ST_SHAREDCALLS, ST_XFETCH};
    static const int every[] = {1, 3};
    for (size_t e = 0; e < sizeof every / sizeof every[0]; e++) {
        for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
            struct st_config cfg = config();
            cfg.db_fail_every = every[e];
            cfg.requests = requests / 4; /* each failure misses again */
            struct st_result r;
            CU_ASSERT_EQUAL_FATAL(st_run(&cfg, modes[m], &r), 0);
            CU_ASSERT_EQUAL(r.requests, cfg.requests);
            CU_ASSERT_EQUAL(r.hits + r.shared + r.queries, r.requests);
            CU_ASSERT_EQUAL(r.wrong, 0);
            /* The database fails its every n-th query: so "queries" must
             * be every query it saw, failed ones too. */
            CU_ASSERT(r.db_fails > 0);
            CU_ASSERT_EQUAL(r.db_fails, r.queries / every[e]);
            CU_ASSERT(r.hot_queries > 0);
            CU_ASSERT(r.hot_queries <= r.queries);
            CU_ASSERT(r.hot_queries >= r.hot_fills);
            if (every[e] == 1) {
                /* Nothing cached: 95% of the requests, for a hot key,
                 * miss, and a flight serves at most the 8 workers. */
                CU_ASSERT(r.hot_queries > r.queries / 2);
                CU_ASSERT_EQUAL(r.db_fails, r.queries);
                CU_ASSERT_EQUAL(r.hits, 0);
                CU_ASSERT_EQUAL(r.hot_fills, 0);
                CU_ASSERT_EQUAL(r.errors, r.requests);
            } else {
                CU_ASSERT(r.errors < r.requests);
            }
        }
    }
}

/* xfetch: no lock and no wait, so queries are not coalesced; but readers
 * reload before the expiry, and every answer is still right. */
static void xfetch_reloads_early(void)
{
    struct st_config cfg = config();
    struct st_result r;
    CU_ASSERT_EQUAL_FATAL(st_run(&cfg, ST_XFETCH, &r), 0);
    adds_up(&r);
    CU_ASSERT(r.early > 0);
    CU_ASSERT_EQUAL(r.shared, 0);
}

/* Two processes of eight workers, each with a cache of its own, on a
 * private redis-server: with redis the whole fleet queries about once per
 * expiry of a hot key; with sharedcalls each process queries on its own,
 * about twice in all. */
static void fleet_redis_queries_once_per_expiry(void)
{
    /* Its figure rests on timing, which a race tool's slowdown changes. */
    if (tu_under_a_tool()) {
        printf("(skipped under a race tool) ");
        return;
    }
    struct st_server server;
    CU_ASSERT_FATAL(st_server_start(&server) == 0);
    struct st_config cfg = config();
    cfg.procs = 2;
    cfg.requests = 0;
    cfg.seconds = 1.5;
    cfg.ttl_ms = 100; /* about 15 expiries of each hot key */
    cfg.redis_socket = server.socket;
    cfg.redis_password = server.password;
    struct st_result r, s;
    int rc = st_run(&cfg, ST_REDIS, &r);
    int sc = st_run(&cfg, ST_SHAREDCALLS, &s);
    st_server_stop(&server);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(sc, 0);
    printf("(redis: %.2f queries per expiry of a hot key, %ld answers from "
           "the other process; sharedcalls: %.2f) ",
           st_per_expiry(&r), r.remote, st_per_expiry(&s));
    CU_ASSERT_EQUAL(r.procs, 2);
    CU_ASSERT_EQUAL(r.wrong, 0);
    CU_ASSERT_EQUAL(s.wrong, 0);
    CU_ASSERT_EQUAL(r.hits + r.shared + r.queries, r.requests);
    CU_ASSERT(r.hot_fills >= 2L * 2 * cfg.hot); /* hot keys expired */
    CU_ASSERT(st_per_expiry(&r) <= 1.1);
    CU_ASSERT(r.remote > 0); /* rows crossed between the processes */
    CU_ASSERT_EQUAL(r.fallbacks, 0);
    CU_ASSERT(st_per_expiry(&s) > 1.5); /* the fleet's stampede */
}

int main(int argc, char **argv)
{
    if (argc > 1 && (requests = atol(argv[1])) < 100) {
        fprintf(stderr, "usage: test_stampede [REQUESTS >= 100]\n");
        return 2;
    }
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/users.db", dir);
    int rc = st_db_prepare(path, config().rows);
    static const struct tu_test tests[] = {
        {"sharedcalls: one query per key per expiry",
         sharedcalls_queries_once_per_expiry},
        {"none: an expiry costs more queries", without_it_an_expiry_costs_more},
        {"a failed query is shared, not retried",
         a_failed_query_is_shared_not_retried},
        {"with queries failing, the counts add up",
         counts_add_up_with_failures},
        {"xfetch: reloads before the expiry, every answer right",
         xfetch_reloads_early},
        {"a fleet of 2 on redis: about one query per expiry of a hot key",
         fleet_redis_queries_once_per_expiry},
        {NULL, NULL},
    };
    if (rc == 0)
        rc = tu_run_suite("stampede", tests);
    unlink(path);
    rmdir(dir);
    return rc;
}
