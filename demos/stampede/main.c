/*
 * stampede - a hot cache key expires, many requests miss it at once: with
 * and without sharedcalls, against a real SQLite database.
 *
 *   build/demos/stampede                       both modes, 4 s each
 *   build/demos/stampede --mode none --seconds 10 --threads 128
 *   build/demos/stampede --db users.db --db-latency-ms 20
 *   build/demos/stampede --help
 *
 * Prints the two runs side by side and go-zero's cache stat line for
 * each. Exits 1 if any answer differed from the table, if the counts do
 * not add up, or if sharedcalls queried one key twice in one expiry.
 */
#define _POSIX_C_SOURCE 200809L

#include "stampede.h"

#include "../number.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct option {
    const char *name;
    long *value;
    long lo, hi;
    const char *help;
};

static void usage(FILE *to, const struct option *opts)
{
    fprintf(to, "usage: stampede [--mode none|sharedcalls|both] "
                "[--db PATH] [--quiet] [OPTION N]...\n");
    for (const struct option *o = opts; o->name != NULL; o++)
        fprintf(to, "  --%-18s %s (default %ld)\n", o->name, o->help,
                *o->value);
}

static const char *us(long ns, char *buf, size_t size)
{
    if (ns < 1000000)
        snprintf(buf, size, "%.1f us", (double)ns / 1e3);
    else
        snprintf(buf, size, "%.1f ms", (double)ns / 1e6);
    return buf;
}

/* The table's lines, top to bottom. */
enum figure {
    REQUESTS,
    HIT_RATIO,
    QUERIES,
    HOT_QUERIES,
    PER_EXPIRY,
    SHARED,
    NOT_FOUND,
    FAILS,
    P50,
    P99,
    MAX,
    WRONG,
    FIGURES
};
static const char *const labels[FIGURES] = {"requests",
                                            "cache hit ratio",
                                            "database queries",
                                            "  for hot keys",
                                            "  per expiry of a hot key",
                                            "answered by another's query",
                                            "answered 'no such user'",
                                            "failed queries",
                                            "latency p50",
                                            "latency p99",
                                            "latency max",
                                            "wrong answers"};

static void cell(const struct st_result *r, enum figure f, char *b, size_t n)
{
    double per =
        r->hot_fills > 0 ? (double)r->hot_queries / (double)r->hot_fills : 0.0;
    long count[FIGURES] = {[REQUESTS] = r->requests,
                           [QUERIES] = r->queries,
                           [HOT_QUERIES] = r->hot_queries,
                           [SHARED] = r->shared,
                           [NOT_FOUND] = r->not_found,
                           [FAILS] = r->db_fails,
                           [WRONG] = r->wrong};
    switch (f) {
    case HIT_RATIO:
        snprintf(b, n, "%.1f%%", 100.0 * (double)r->hits / (double)r->requests);
        break;
    case PER_EXPIRY:
        snprintf(b, n, "%.2f", per);
        break;
    case P50:
        us(r->p50_ns, b, n);
        break;
    case P99:
        us(r->p99_ns, b, n);
        break;
    case MAX:
        us(r->max_ns, b, n);
        break;
    default:
        snprintf(b, n, "%ld", count[f]);
    }
}

static void table(const struct st_result *r, int n)
{
    printf("%-28s", "");
    for (int i = 0; i < n; i++)
        printf("%14s", r[i].mode == ST_NONE ? "none" : "sharedcalls");
    putchar('\n');
    for (int f = 0; f < FIGURES; f++) {
        printf("%-28s", labels[f]);
        for (int i = 0; i < n; i++) {
            char buf[32];
            cell(&r[i], (enum figure)f, buf, sizeof buf);
            printf("%14s", buf);
        }
        putchar('\n');
    }
}

/* go-zero's cache stat line (cachestat.go): a follower served by another's
 * query counts as a hit there, and qpm is requests a minute. */
static void stat_line(const struct st_result *r)
{
    long hit = r->hits + r->shared, total = r->requests;
    printf("dbcache(%s) - qpm: %.0f, hit_ratio: %.1f%%, hit: %ld, miss: %ld, "
           "db_fails: %ld\n",
           r->mode == ST_NONE ? "none" : "sharedcalls",
           (double)total * 60.0 / r->seconds,
           100.0 * (double)hit / (double)total, hit, r->queries, r->db_fails);
}

/* Whether r is sound: right answers, counts that add up, and (with
 * sharedcalls) no key queried twice in one expiry. */
static bool sound(const struct st_result *r)
{
    bool ok = r->wrong == 0 && r->hits + r->shared + r->queries == r->requests;
    if (r->mode == ST_SHAREDCALLS && r->over_once != 0) {
        printf("sharedcalls queried %ld key(s) twice in one expiry\n",
               r->over_once);
        ok = false;
    }
    return ok;
}

static int run_modes(struct st_config *cfg, const char *mode)
{
    struct st_result r[2];
    int n = 0;
    for (int m = ST_NONE; m <= ST_SHAREDCALLS; m++) {
        if (strcmp(mode, "both") != 0 &&
            strcmp(mode, m == ST_NONE ? "none" : "sharedcalls") != 0)
            continue;
        int rc = st_run(cfg, (enum st_mode)m, &r[n]);
        if (rc != 0) {
            fprintf(stderr, "stampede: %s\n", strerror(-rc));
            return 1;
        }
        n++;
    }
    table(r, n);
    putchar('\n');
    bool ok = true;
    for (int i = 0; i < n; i++) {
        stat_line(&r[i]);
        ok &= sound(&r[i]);
    }
    if (n == 2 && r[1].hot_queries > 0)
        printf("queries for hot keys: %.1fx fewer with sharedcalls\n",
               (double)r[0].hot_queries / (double)r[1].hot_queries);
    printf("hits + shared + queries = requests, and every answer matches "
           "the table: %s\n",
           ok ? "yes" : "NO");
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    long threads = 64, seconds = 4, requests = 0, rows = 100000, hot = 8,
         hot_percent = 90, ttl = 1000, missing_ttl = 200, latency = 5,
         fail_every = 0, seed = 1;
    const struct option opts[] = {
        {"threads", &threads, 1, 1024, "workers"},
        {"seconds", &seconds, 1, 3600, "how long each mode runs"},
        {"requests", &requests, 0, 1000000000L, "or: requests a mode makes"},
        {"rows", &rows, 1, 10000000, "users in the table"},
        {"hot", &hot, 1, 1000, "hot keys: ids 1 .. N"},
        {"hot-percent", &hot_percent, 0, 100, "requests for a hot key"},
        {"ttl-ms", &ttl, 1, 3600000, "a cached user's lifetime, +-5%"},
        {"not-found-ttl-ms", &missing_ttl, 1, 3600000, "a placeholder's"},
        {"db-latency-ms", &latency, 0, 10000, "each query's round trip"},
        {"db-fail-every", &fail_every, 0, 1000000, "fail every n-th query"},
        {"seed", &seed, 0, 1000000000L, "the workers' random ids"},
        {NULL, NULL, 0, 0, NULL},
    };
    const char *mode = "both", *db = NULL;
    bool quiet = !isatty(STDERR_FILENO);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const struct option *o = opts;
        while (o->name != NULL &&
               !(strncmp(a, "--", 2) == 0 && strcmp(a + 2, o->name) == 0))
            o++;
        if (o->name != NULL &&
            demo_number(argv[i + 1], o->lo, o->hi, o->value)) {
            i++;
        } else if (strcmp(a, "--mode") == 0 && i + 1 < argc &&
                   strstr(" none sharedcalls both ", argv[i + 1]) != NULL &&
                   strchr(argv[i + 1], ' ') == NULL && *argv[i + 1] != '\0') {
            mode = argv[++i];
        } else if (strcmp(a, "--db") == 0 && i + 1 < argc) {
            db = argv[++i];
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else {
            usage(strcmp(a, "--help") == 0 ? stdout : stderr, opts);
            return strcmp(a, "--help") == 0 ? 0 : 2;
        }
    }
    char dir[] = "/tmp/stampede.XXXXXX", path[64];
    if (db == NULL) {
        if (mkdtemp(dir) == NULL) {
            perror("stampede: mkdtemp");
            return 1;
        }
        snprintf(path, sizeof path, "%s/users.db", dir);
        db = path;
    }
    struct st_config cfg = {db,
                            (int)rows,
                            (int)threads,
                            (double)seconds,
                            requests,
                            (int)(hot < rows ? hot : rows),
                            (int)hot_percent,
                            (int)ttl,
                            (int)missing_ttl,
                            (int)latency,
                            (int)fail_every,
                            (unsigned)seed,
                            !quiet};
    printf("stampede: %ld threads ask for %ld users in %s (%s),\n"
           "%ld%% of them for %d hot ones; a cached user lives %ld ms "
           "+-5%%, a query takes %ld ms.\n\n",
           threads, rows, db,
           requests > 0 ? "a fixed number of requests" : "for a fixed time",
           hot_percent, cfg.hot, ttl, latency);
    fflush(stdout);
    int rc = st_db_prepare(db, cfg.rows) == 0 ? run_modes(&cfg, mode) : 1;
    if (db == path) {
        unlink(path);
        rmdir(dir);
    }
    return rc;
}
