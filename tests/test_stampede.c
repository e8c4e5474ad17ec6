/*
 * test_stampede.c - the cache-stampede demo, short: with sharedcalls the
 * database sees at most one query per key per expiry, without it more,
 * and in both every answer is the row in the table.
 *
 * The runs are short (a fixed number of requests, TTLs of tens of
 * milliseconds), and what they assert holds for any interleaving: the
 * figures vary from run to run, the rules do not.
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
                              .seed = 7};
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
        {NULL, NULL},
    };
    if (rc == 0)
        rc = tu_run_suite("stampede", tests);
    unlink(path);
    rmdir(dir);
    return rc;
}
