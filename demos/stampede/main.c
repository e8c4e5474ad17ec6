/*
 * stampede - a hot cache key expires, many requests miss it at once: with
 * and without sharedcalls, in one process or in a fleet of them, against
 * a real SQLite database.
 *
 *   build/demos/stampede                   none and sharedcalls, 4 s each
 *   build/demos/stampede --procs 4         a fleet of 4: all four modes
 *   build/demos/stampede --mode none --seconds 10 --threads 128
 *   build/demos/stampede --procs 4 --mode redis --redis /run/redis.sock
 *   build/demos/stampede --help
 *
 * Prints the runs side by side and go-zero's cache stat line for each.
 * Exits 1 if any answer differed from the table, if the counts do not add
 * up, or if sharedcalls queried one key twice in one expiry of a process;
 * 2 on a bad argument.
 */
#define _POSIX_C_SOURCE 200809L

#include "stampede.h"

#include "../number.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Set by SIGINT and SIGTERM: the run ends early, and what was started is
 * stopped. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

struct option {
    const char *name;
    long *value;
    long lo, hi;
    const char *help;
};

static const char *const mode_sets[] = {
    "none", "sharedcalls", "redis", "xfetch", "both", "all", NULL};

static void usage(FILE *to, const struct option *opts)
{
    fprintf(to,
            "usage: stampede [--mode MODE] [--procs N] [OPTION N]... [--db "
            "PATH]\n"
            "                [--redis SOCKET [--redis-password PW]] "
            "[--beta B]\n"
            "                [--no-fleet-copy] [--quiet]\n"
            "  --mode MODE          none, sharedcalls, redis, xfetch; both "
            "(none and\n"
            "                       sharedcalls) or all (default: both; all "
            "with --procs > 1)\n");
    for (const struct option *o = opts; o->name != NULL; o++)
        fprintf(to, "  --%-18s %s: %ld to %ld, default %ld\n", o->name, o->help,
                o->lo, o->hi, *o->value);
    fprintf(to,
            "  --beta B             xfetch: how early it reloads: 0 to 10, "
            "default 1\n"
            "  --db PATH            the SQLite file (default: a new one in "
            "/tmp)\n"
            "  --redis SOCKET       redis: an existing server's Unix socket "
            "(default: the\n"
            "                       demo starts a private one and stops it)\n"
            "  --redis-password PW  its password\n"
            "  --no-fleet-copy      redis: no copy of a flight's row in Redis "
            "for a process\n"
            "                       that comes late (it queries again)\n"
            "  --quiet              no progress line\n");
}

/* A bad argument: names the option and what it takes, never only the
 * usage, so that a typo in a long command line is found at once. */
static int bad(const char *name, const char *value, const char *takes)
{
    fprintf(stderr, "stampede: %s must be %s\n", name, takes);
    if (value == NULL)
        fprintf(stderr, "(its value is missing; ");
    else
        fprintf(stderr, "(not '%s'; ", value);
    fprintf(stderr, "stampede --help lists every option)\n");
    return 2;
}

/* The options whose value is not a whole number, and what each takes. */
static const char *takes_of(const char *arg)
{
    static const char *const takes[][2] = {
        {"--mode", "one of none, sharedcalls, redis, xfetch, both, all"},
        {"--beta", "a number from 0 to 10"},
        {"--db", "a file's path"},
        {"--redis", "a Unix socket's path (never TCP)"},
        {"--redis-password", "a password"},
    };
    for (size_t i = 0; i < sizeof takes / sizeof takes[0]; i++)
        if (strcmp(arg, takes[i][0]) == 0)
            return takes[i][1];
    return NULL;
}

/* Reads s as a decimal number in [lo, hi]. */
static bool decimal(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = s != NULL ? strtod(s, &end) : 0.0;
    if (s == NULL || *s == '\0' || *end != '\0' || errno != 0 || !(v >= lo) ||
        !(v <= hi))
        return false;
    *out = v;
    return true;
}

/* Whether path names a Unix socket (that a client may connect to). */
static bool is_socket(const char *path)
{
    struct stat st;
    return strlen(path) < sizeof((struct sockaddr_un *)NULL)->sun_path &&
           stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static const char *us(long ns, char *buf, size_t size)
{
    if (ns < 1000000)
        snprintf(buf, size, "%.1f us", (double)ns / 1e3);
    else
        snprintf(buf, size, "%.1f ms", (double)ns / 1e6);
    return buf;
}

/* The table's lines, top to bottom. The requests' lines under
 * "requests" add up to it; "cache hit ratio" is the first of them over
 * it, in the table and in the dbcache lines alike. */
enum figure {
    REQUESTS,
    HITS,
    SHARED,
    REMOTE,
    COPIED,
    OWN,
    WAITED_OUT,
    HIT_RATIO,
    QUERIES,
    FAILS,
    PER_THOUSAND,
    HOT_QUERIES,
    PER_EXPIRY,
    EARLY,
    NOT_FOUND,
    P50,
    P99,
    MAX,
    TIMED_OUT,
    TAKEOVERS,
    STALE,
    FALLBACKS,
    WRONG,
    FIGURES
};
static const char *const labels[FIGURES] = {"requests",
                                            "  from the cache",
                                            "  from another's query",
                                            "    in another process",
                                            "    late: the fleet's copy",
                                            "  from their own query",
                                            "  no answer in time (redis)",
                                            "cache hit ratio",
                                            "database queries",
                                            "  failed",
                                            "  per 1,000 requests",
                                            "  for hot keys",
                                            "  per expiry of a hot key",
                                            "reloaded early (xfetch)",
                                            "answered 'no such user'",
                                            "latency p50",
                                            "latency p99",
                                            "latency max",
                                            "timed out (redis)",
                                            "takeovers (redis)",
                                            "stale values (redis)",
                                            "fallbacks (redis)",
                                            "wrong answers"};

/* Lines shown only when a column has their mode (ST_MODES: always). */
static enum st_mode only_for(enum figure f)
{
    switch (f) {
    case REMOTE:
    case COPIED:
    case WAITED_OUT:
    case TIMED_OUT:
    case TAKEOVERS:
    case STALE:
    case FALLBACKS:
        return ST_REDIS;
    case EARLY:
        return ST_XFETCH;
    default:
        return ST_MODES;
    }
}

/* The one hit ratio: requests answered from the cache, over requests. */
static double hit_ratio(const struct st_result *r)
{
    return r->requests > 0 ? (double)r->hits / (double)r->requests : 0.0;
}

static void cell(const struct st_result *r, enum figure f, char *b, size_t n)
{
    long count[FIGURES] = {[REQUESTS] = r->requests,
                           [HITS] = r->hits,
                           [SHARED] = r->shared,
                           [REMOTE] = r->remote,
                           [COPIED] = r->copied,
                           [OWN] = r->queries,
                           [WAITED_OUT] = r->waited_out,
                           [QUERIES] = r->queries,
                           [FAILS] = r->db_fails,
                           [HOT_QUERIES] = r->hot_queries,
                           [EARLY] = r->early,
                           [NOT_FOUND] = r->not_found,
                           [TIMED_OUT] = r->timed_out,
                           [TAKEOVERS] = (long)r->takeovers,
                           [STALE] = (long)r->stale,
                           [FALLBACKS] = (long)r->fallbacks,
                           [WRONG] = r->wrong};
    double requests = r->requests > 0 ? (double)r->requests : 1.0;
    switch (f) {
    case HIT_RATIO:
        snprintf(b, n, "%.1f%%", 100.0 * hit_ratio(r));
        break;
    case PER_THOUSAND:
        snprintf(b, n, "%.1f", 1000.0 * (double)r->queries / requests);
        break;
    case PER_EXPIRY: /* no hot key was ever filled (every query failed) */
        snprintf(b, n, r->hot_fills > 0 ? "%.2f" : "-", st_per_expiry(r));
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

/* One column per run: 28 + 4 x 12 = 76 columns at most. */
static void table(const struct st_result *r, int n)
{
    bool has[ST_MODES + 1] = {[ST_MODES] = true};
    printf("%-28s", "");
    for (int i = 0; i < n; i++) {
        printf("%12s", st_mode_names[r[i].mode]);
        has[r[i].mode] = true;
    }
    putchar('\n');
    for (int f = 0; f < FIGURES; f++) {
        if (!has[only_for((enum figure)f)])
            continue;
        printf("%-28s", labels[f]);
        for (int i = 0; i < n; i++) {
            char buf[32];
            cell(&r[i], (enum figure)f, buf, sizeof buf);
            printf("%12s", buf);
        }
        putchar('\n');
    }
}

/* go-zero's cache stat line (cachestat.go), on two lines to fit 80
 * columns; what differs from go-zero's is said above the lines. */
static void stat_line(const struct st_result *r)
{
    printf("dbcache(%s) - qpm: %.0f, hit_ratio: %.1f%%, hit: %ld,\n"
           "    shared: %ld, miss: %ld, db_fails: %ld",
           st_mode_names[r->mode], (double)r->requests * 60.0 / r->seconds,
           100.0 * hit_ratio(r), r->hits, r->shared, r->queries, r->db_fails);
    if (r->mode == ST_REDIS)
        printf(", no_answer: %ld", r->waited_out);
    putchar('\n');
}

/* Whether r is sound: right answers, counts that add up, and (with
 * sharedcalls) no key queried twice in one expiry of a process. */
static bool sound(const struct st_result *r)
{
    bool ok = r->wrong == 0 &&
              r->hits + r->shared + r->queries + r->waited_out == r->requests;
    /* An empty run would pass every other check, and show nothing. */
    if (r->requests == 0) {
        fprintf(stderr, "stampede: %s served no request in %.1f s\n",
                st_mode_names[r->mode], r->seconds);
        ok = false;
    }
    if (r->mode == ST_SHAREDCALLS && r->over_once != 0) {
        printf("sharedcalls queried %ld key(s) twice in one expiry\n",
               r->over_once);
        ok = false;
    }
    return ok;
}

/* The comparisons that the modes are for. */
static void compare(const struct st_result *by_mode[ST_MODES], int procs)
{
    const struct st_result *none = by_mode[ST_NONE],
                           *sc = by_mode[ST_SHAREDCALLS],
                           *redis = by_mode[ST_REDIS];
    if (none != NULL && sc != NULL && sc->hot_queries > 0)
        printf("queries for hot keys: %.1fx fewer with sharedcalls\n",
               (double)none->hot_queries / (double)sc->hot_queries);
    if (sc != NULL && redis != NULL && st_per_expiry(redis) > 0)
        printf("queries per expiry of a hot key: %.1fx fewer with redis "
               "than with sharedcalls\nin each of the %d processes\n",
               st_per_expiry(sc) / st_per_expiry(redis), procs);
}

/* Runs the modes that set names; 0 when every run was sound, 1 if not,
 * 130 when interrupted. */
static int run_modes(struct st_config *cfg, const char *set)
{
    struct st_result r[ST_MODES];
    const struct st_result *by_mode[ST_MODES] = {NULL};
    int n = 0;
    for (int m = 0; m < ST_MODES; m++) {
        bool all = strcmp(set, "all") == 0,
             both = strcmp(set, "both") == 0 && m <= ST_SHAREDCALLS;
        if (!all && !both && strcmp(set, st_mode_names[m]) != 0)
            continue;
        int rc = st_run(cfg, (enum st_mode)m, &r[n]);
        if (rc == -EINTR) {
            fprintf(stderr, "stampede: interrupted\n");
            return 130;
        }
        if (rc != 0) {
            fprintf(stderr, "stampede: %s: %s\n", st_mode_names[m],
                    rc == -ECHILD ? "a process of the fleet failed"
                                  : strerror(-rc));
            return 1;
        }
        by_mode[m] = &r[n++];
    }
    table(r, n);
    if (cfg->procs > 1)
        printf("(per expiry of a hot key: the fleet's queries for hot keys, "
               "over the times a\nhot key expired, which each of the %d "
               "processes' caches sees once)\n",
               cfg->procs);
    putchar('\n');
    /* go-zero counts an answer shared from another's query as a hit (and
     * a shared error not at all); here it is counted apart, so that the
     * line adds up to the requests and its hit ratio is the table's. */
    printf("go-zero's cache stat line for each (qpm: requests a minute; "
           "unlike go-zero's,\nhit leaves out the answers shared from "
           "another's query):\n");
    bool ok = true;
    for (int i = 0; i < n; i++) {
        stat_line(&r[i]);
        ok &= sound(&r[i]);
    }
    compare(by_mode, cfg->procs);
    printf("hit + shared + miss%s = requests; every answer matches the "
           "table: %s\n",
           by_mode[ST_REDIS] != NULL ? " + no_answer" : "", ok ? "yes" : "NO");
    return ok ? 0 : 1;
}

/* What runs, in lines that fit 80 columns whatever the numbers: the
 * paths, which may be long, each on a line of its own. */
static void describe(const struct st_config *cfg, long rows, bool fixed,
                     const struct st_server *server)
{
    const char *until = fixed ? "a fixed number of requests" : "a fixed time";
    if (cfg->procs > 1)
        printf("stampede: %d processes of %d threads, each process with a "
               "cache of its own,\nask for %ld users (for %s),\n",
               cfg->procs, cfg->threads, rows, until);
    else
        printf("stampede: %d threads ask for %ld users (for %s),\n",
               cfg->threads, rows, until);
    printf("%d%% of them for %d hot ones; a cached user lives %d ms +-5%%,\n"
           "a query takes %d ms.\n",
           cfg->hot_percent, cfg->hot, cfg->ttl_ms, cfg->db_latency_ms);
    printf("database: %s\n", cfg->db_path);
    if (server->pid > 0)
        printf("redis: a private redis-server, stopped at the end, on\n"
               "  %s\n",
               cfg->redis_socket);
    else if (cfg->redis_socket != NULL)
        printf("redis: the server on %s\n"
               "  (the run's keys are deleted at the end)\n",
               cfg->redis_socket);
    putchar('\n');
    fflush(stdout);
}

int main(int argc, char **argv)
{
    long threads = 64, seconds = 4, requests = 0, rows = 100000, hot = 8,
         hot_percent = 90, ttl = 1000, missing_ttl = 200, latency = 5,
         fail_every = 0, seed = 1, procs = 1;
    const struct option opts[] = {
        {"procs", &procs, 1, ST_MAX_PROCS, "processes (forked)"},
        {"threads", &threads, 1, 1024, "workers of each process"},
        {"seconds", &seconds, 1, 3600, "how long each mode runs"},
        {"requests", &requests, 0, 1000000000L, "or: requests a mode makes"},
        {"rows", &rows, 1, 10000000, "users in the table"},
        {"hot", &hot, 1, 1000, "hot keys: ids 1 .. N"},
        {"hot-percent", &hot_percent, 0, 100, "requests for a hot key"},
        {"ttl-ms", &ttl, 1, 3600000, "a cached user's life, +-5%"},
        {"not-found-ttl-ms", &missing_ttl, 1, 3600000, "a placeholder's"},
        {"db-latency-ms", &latency, 0, 10000, "each query's round trip"},
        {"db-fail-every", &fail_every, 0, 1000000, "fail every n-th query"},
        {"seed", &seed, 0, 1000000000L, "the workers' random ids"},
        {NULL, NULL, 0, 0, NULL},
    };
    const char *set = NULL, *db = NULL, *redis = NULL, *password = NULL;
    double beta = 1.0;
    bool quiet = !isatty(STDERR_FILENO), fleet_copy = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            usage(stdout, opts);
            return 0;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
            continue;
        } else if (strcmp(a, "--no-fleet-copy") == 0) {
            fleet_copy = false;
            continue;
        }
        const struct option *o = opts;
        while (o->name != NULL &&
               !(strncmp(a, "--", 2) == 0 && strcmp(a + 2, o->name) == 0))
            o++;
        char range[48];
        snprintf(range, sizeof range, "%ld-%ld", o->lo, o->hi);
        const char *takes = o->name != NULL ? range : takes_of(a);
        if (takes == NULL) {
            fprintf(stderr,
                    "stampede: unknown option '%s' (stampede --help lists "
                    "every option)\n",
                    a);
            return 2;
        }
        /* A value that looks like an option is the next option: this
         * one's value is missing. */
        const char *v = ++i < argc ? argv[i] : NULL;
        if (v == NULL || strncmp(v, "--", 2) == 0)
            return bad(a, NULL, takes);
        bool ok = *v != '\0';
        if (o->name != NULL) {
            ok = demo_number(v, o->lo, o->hi, o->value);
        } else if (strcmp(a, "--mode") == 0) {
            int m = 0;
            while (mode_sets[m] != NULL && strcmp(v, mode_sets[m]) != 0)
                m++;
            ok = mode_sets[m] != NULL;
            set = v;
        } else if (strcmp(a, "--beta") == 0) {
            ok = decimal(v, 0.0, 10.0, &beta);
        } else if (strcmp(a, "--db") == 0) {
            db = v;
        } else if (strcmp(a, "--redis") == 0) {
            ok = is_socket(v);
            redis = v;
        } else {
            password = v;
        }
        if (!ok)
            return bad(a, v, takes);
    }
    if (password != NULL && redis == NULL) {
        fprintf(stderr, "stampede: --redis-password is for --redis SOCKET "
                        "(a private server's password is made up)\n");
        return 2;
    }
    if (set == NULL)
        set = procs > 1 ? "all" : "both";
    bool uses_redis = strcmp(set, "redis") == 0 || strcmp(set, "all") == 0;

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a server gone: an error, not a death */

    char dir[] = "/tmp/stampede.XXXXXX", path[64];
    if (db == NULL) {
        if (mkdtemp(dir) == NULL) {
            perror("stampede: mkdtemp");
            return 1;
        }
        snprintf(path, sizeof path, "%s/users.db", dir);
        db = path;
    }
    struct st_config cfg = {.db_path = db,
                            .rows = (int)rows,
                            .threads = (int)threads,
                            .seconds = (double)seconds,
                            .requests = requests,
                            .hot = (int)(hot < rows ? hot : rows),
                            .hot_percent = (int)hot_percent,
                            .ttl_ms = (int)ttl,
                            .missing_ttl_ms = (int)missing_ttl,
                            .db_latency_ms = (int)latency,
                            .db_fail_every = (int)fail_every,
                            .seed = (unsigned)seed,
                            .progress = !quiet,
                            .procs = (int)procs,
                            .beta = beta,
                            .redis_socket = redis,
                            .redis_password = password,
                            .fleet_copy = fleet_copy,
                            .interrupted = &interrupted};
    struct st_server server = {.pid = 0};
    int rc = 1;
    if (uses_redis && redis != NULL && st_redis_ping(redis, password, false))
        goto out;
    if (uses_redis && redis == NULL) {
        if (st_server_start(&server) != 0)
            goto out;
        cfg.redis_socket = server.socket;
        cfg.redis_password = server.password;
    }
    describe(&cfg, rows, requests > 0, &server);
    if (st_db_prepare(db, cfg.rows) == 0)
        rc = run_modes(&cfg, set);
out:
    st_server_stop(&server);
    if (db == path) {
        unlink(path);
        rmdir(dir);
    }
    return rc;
}
