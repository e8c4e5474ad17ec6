/*
 * test_redis.c - libsharedcalls-redis against a real redis-server the test
 * starts (tests/redis_server.c): a fleet of processes runs fn once; the
 * credentials and the ACL; entries that are too large, truncated or
 * forged; a leader killed inside fn, and the waiter that takes over; a
 * leader slower than its lock, whose late value is stale, or whose late
 * failure leaves its successor's lock alone.
 *
 * The processes are forked children. They meet in memory shared before
 * the fork: a process-shared mutex and condition variable hold fn until
 * the parent has seen every caller waiting (its process's followers
 * parked in the kit, the other processes subscribed in Redis).
 */
#define _GNU_SOURCE

#include "redis_server.h"
#include "sharedcalls-redis.h"
#include "testutil.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MAX_PROCS = 8, MAX_THREADS = 8, VALUE_LEN = 6 };
/* fn's own failure code (positive: never taken for an errno). */
enum { FN_FAILED = 77 };

/* What the fleet's processes share. */
struct fleet {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int in_fn;    /* runs of fn that have started */
    int ready;    /* processes whose callers are all waiting */
    int held;     /* runs 1 to held of fn wait for their release */
    int released; /* runs released: run k may return once this is k */
    int fail_run; /* the run of fn that fails with FN_FAILED (0: none) */
    /* Set by the parent before a process starts: by process, the run of
     * fn whose value every caller gets, or the code they get instead
     * (when not 0), and its lock's time to live (0: the default); and
     * every caller's scr_options.wait_ms (0: 15 s). */
    int expect_run[MAX_PROCS];
    int expect_rc[MAX_PROCS];
    unsigned lock_ttl_ms[MAX_PROCS];
    unsigned wait_ms;
    /* Reported by the processes. */
    int wrong[MAX_PROCS];
    int origin[3]; /* answers by scr_origin */
    int takeovers;
    long longest_ms; /* the longest call */
    unsigned long long stale, fallbacks;
};

static struct fleet *fleet;
static struct redis_server server;

static void fleet_map(void)
{
    fleet = mmap(NULL, sizeof *fleet, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(fleet != MAP_FAILED);
    memset(fleet, 0, sizeof *fleet);
    pthread_mutexattr_t ma;
    pthread_condattr_t ca;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&fleet->mu, &ma);
    pthread_cond_init(&fleet->cond, &ca);
    pthread_mutexattr_destroy(&ma);
    pthread_condattr_destroy(&ca);
}

/* No pthread_cond_destroy: it waits for every waiter to leave, and a
 * process killed in fn's wait never does. Unmapping is all Linux needs. */
static void fleet_unmap(void)
{
    munmap(fleet, sizeof *fleet);
    fleet = NULL;
}

/* Lets the next held run of fn return. */
static void fleet_release(void)
{
    pthread_mutex_lock(&fleet->mu);
    fleet->released++;
    pthread_cond_broadcast(&fleet->cond);
    pthread_mutex_unlock(&fleet->mu);
}

/* Waits, with fleet->mu held, until pred() or 20 s; false on time out. */
static bool fleet_wait(bool (*pred)(void *), void *arg)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += 20;
    while (!pred(arg))
        if (pthread_cond_timedwait(&fleet->cond, &fleet->mu, &until) != 0)
            return pred(arg);
    return true;
}

static bool is_released(void *run)
{
    return fleet->released >= *(int *)run;
}

/* fn: counts its run, and its value says which run it was ("run 02");
 * a held run waits for the parent's release, and fail_run fails. */
static int fleet_fn(void *arg, void **buf, size_t *len)
{
    (void)arg;
    pthread_mutex_lock(&fleet->mu);
    int run = ++fleet->in_fn;
    pthread_cond_broadcast(&fleet->cond);
    if (run <= fleet->held && !fleet_wait(is_released, &run)) {
        pthread_mutex_unlock(&fleet->mu);
        return ETIMEDOUT;
    }
    bool fails = run == fleet->fail_run;
    pthread_mutex_unlock(&fleet->mu);
    if (fails)
        return FN_FAILED;
    *buf = malloc(VALUE_LEN + 1);
    if (*buf == NULL)
        return ENOMEM;
    snprintf(*buf, VALUE_LEN + 1, "run %02u", (unsigned)run % 100U);
    *len = VALUE_LEN;
    return 0;
}

/* Whether a caller of process me got what the test expects. */
static bool as_expected(int me, int rc, const scr_result *r)
{
    if (fleet->expect_rc[me] != 0)
        return rc == fleet->expect_rc[me];
    char want[VALUE_LEN + 1];
    snprintf(want, sizeof want, "run %02u",
             (unsigned)fleet->expect_run[me] % 100U);
    return rc == 0 && r->len == VALUE_LEN &&
           memcmp(r->val, want, VALUE_LEN) == 0;
}

/*
 * Under a race tool (Valgrind, a sanitizer) every process of the fleet is
 * many times slower: a waiting process lines up behind a leader in about
 * 0.5 s instead of 50 ms. A lock's time to live must outlast that, or the
 * waiters take over before the test has lined them up, and a process
 * whose flight ends at once never has its followers parked (the fleet's
 * "followers never parked" hang under Valgrind). Values and round trips
 * get the same room.
 */
static unsigned tool_ms(unsigned plain, unsigned under_a_tool)
{
    return tu_under_a_tool() ? under_a_tool : plain;
}

static scr_options options_for(const struct redis_server *s)
{
    return (scr_options){.unix_socket = s->socket,
                         .user = s->user,
                         .password = s->password,
                         .prefix = s->prefix != NULL ? s->prefix : "test:",
                         .lock_ttl_ms = tool_ms(400, 4000),
                         .value_ttl_ms = tool_ms(1000, 20000),
                         .io_timeout_ms = tool_ms(500, 2000),
                         .wait_ms = fleet != NULL && fleet->wait_ms != 0
                                        ? fleet->wait_ms
                                        : 15000};
}

struct caller {
    scr_group *g;
    int rc;
    scr_result r;
    long ms; /* how long the call took */
};

static long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *call(void *arg)
{
    struct caller *c = arg;
    long start = now_ms();
    c->rc = scr_do(c->g, "hot", fleet_fn, NULL, &c->r);
    c->ms = now_ms() - start;
    return NULL;
}

/* One process of the fleet: threads callers of "hot". It is ready when
 * all but one are parked in the kit, following the one that leads the
 * process's flight (in fn here, or waiting in Redis). */
static int fleet_process(int me, int threads)
{
    alarm(60); /* the parent's watchdog is not inherited */
    scr_options o = options_for(&server);
    if (fleet->lock_ttl_ms[me] != 0)
        o.lock_ttl_ms = fleet->lock_ttl_ms[me];
    int err = 0;
    scr_group *g = scr_new(&o, &err);
    if (g == NULL) {
        fprintf(stderr, "process %d: scr_new: %d\n", me, err);
        return 1;
    }
    struct caller c[MAX_THREADS] = {{0}};
    pthread_t t[MAX_THREADS];
    for (int i = 0; i < threads; i++)
        c[i].g = g;
    tu_parked_reset();
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, call, &c[i]);
    tu_parked_expect(threads - 1, "followers in the process never parked");
    pthread_mutex_lock(&fleet->mu);
    fleet->ready++;
    pthread_cond_broadcast(&fleet->cond);
    pthread_mutex_unlock(&fleet->mu);
    int wrong = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        pthread_mutex_lock(&fleet->mu);
        if (c[i].ms > fleet->longest_ms)
            fleet->longest_ms = c[i].ms;
        if (!as_expected(me, c[i].rc, &c[i].r)) {
            fprintf(stderr, "process %d thread %d: rc %d, %.*s\n", me, i,
                    c[i].rc, c[i].rc == 0 ? (int)c[i].r.len : 0,
                    c[i].rc == 0 ? (char *)c[i].r.val : "");
            wrong++;
        } else if (c[i].rc == 0) {
            fleet->origin[c[i].r.origin]++;
            fleet->takeovers += c[i].r.takeover;
        }
        pthread_mutex_unlock(&fleet->mu);
        if (c[i].rc == 0)
            free(c[i].r.val);
    }
    struct scr_stats st;
    scr_stats(g, &st);
    pthread_mutex_lock(&fleet->mu);
    fleet->wrong[me] = wrong;
    fleet->stale += st.stale;
    fleet->fallbacks += st.fallbacks;
    pthread_mutex_unlock(&fleet->mu);
    return scr_free(g) == 0 && wrong == 0 ? 0 : 1;
}

static pid_t start_process(int me, int threads)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(fleet_process(me, threads));
    return pid;
}

/* Subscribers of the flight's channel: processes waiting in Redis. */
static long waiting_in_redis(const char *prefix)
{
    redisReply *r = redis_run(&server, "PUBSUB NUMSUB %s{hot}:done", prefix);
    long n = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2
                 ? r->element[1]->integer
                 : -1;
    if (r != NULL)
        freeReplyObject(r);
    return n;
}

/* Polls an outside condition (Redis's), at most 20 s. */
static bool poll_until(long (*what)(const char *), const char *arg, long want)
{
    for (int i = 0; i < 2000; i++) {
        if (what(arg) >= want)
            return true;
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    return false;
}

static bool ready_reached(void *arg)
{
    return fleet->ready >= *(int *)arg;
}

static bool first_leads(void *arg)
{
    (void)arg;
    return fleet->ready >= 1 && fleet->in_fn >= 1;
}

/* Starts the first process and waits until its leader is in fn and its
 * other callers are parked: it leads the fleet's flight. */
static pid_t start_leader_process(int threads)
{
    pid_t pid = start_process(0, threads);
    pthread_mutex_lock(&fleet->mu);
    bool ready = fleet_wait(first_leads, NULL) && fleet->in_fn == 1;
    pthread_mutex_unlock(&fleet->mu);
    CU_ASSERT(ready);
    return pid;
}

static int exit_status(pid_t pid)
{
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* procs processes of threads callers each ask for "hot" at once: fn runs
 * once in the whole fleet, and every caller gets its value. */
static void fleet_runs_fn_once(const char *acl_prefix)
{
    enum { PROCS = 4, THREADS = 4 };
    CU_ASSERT_FATAL(redis_start(&server, acl_prefix) == 0);
    fleet_map();
    fleet->held = 1;
    /* fn is held until the whole fleet waits: the leader's lock outlasts
     * that however slowly the fleet starts (a takeover here would be the
     * test's own timing, not the protocol's). */
    fleet->lock_ttl_ms[0] = 60000;
    for (int p = 0; p < PROCS; p++)
        fleet->expect_run[p] = 1;
    pid_t pid[PROCS];
    pid[0] = start_leader_process(THREADS);
    for (int p = 1; p < PROCS; p++)
        pid[p] = start_process(p, THREADS);
    const char *prefix = options_for(&server).prefix;
    CU_ASSERT(poll_until(waiting_in_redis, prefix, PROCS - 1));
    pthread_mutex_lock(&fleet->mu);
    int all = PROCS;
    CU_ASSERT(fleet_wait(ready_reached, &all));
    fleet->released = 1;
    pthread_cond_broadcast(&fleet->cond);
    pthread_mutex_unlock(&fleet->mu);
    for (int p = 0; p < PROCS; p++)
        CU_ASSERT_EQUAL(exit_status(pid[p]), 0);
    printf("(fn ran %d time(s); answers: %d this thread, %d this process, "
           "%d other processes) ",
           fleet->in_fn, fleet->origin[SCR_THIS_THREAD],
           fleet->origin[SCR_THIS_PROCESS], fleet->origin[SCR_OTHER_PROCESS]);
    CU_ASSERT_EQUAL(fleet->in_fn, 1);
    CU_ASSERT_EQUAL(fleet->origin[SCR_THIS_THREAD], 1);
    CU_ASSERT_EQUAL(fleet->origin[SCR_THIS_PROCESS], THREADS - 1);
    CU_ASSERT_EQUAL(fleet->origin[SCR_OTHER_PROCESS], (PROCS - 1) * THREADS);
    /* The publish script found the lock still "TOKEN f" and deleted it. */
    redisReply *lock = redis_run(&server, "EXISTS %s{hot}:lock", prefix);
    CU_ASSERT(lock != NULL && lock->type == REDIS_REPLY_INTEGER &&
              lock->integer == 0);
    if (lock != NULL)
        freeReplyObject(lock);
    if (acl_prefix != NULL) { /* nothing outside the prefix was touched */
        redisReply *r = redis_run(&server, "KEYS *");
        CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_ARRAY);
        CU_ASSERT(r->elements > 0);
        for (size_t i = 0; i < r->elements; i++)
            CU_ASSERT(strncmp(r->element[i]->str, acl_prefix,
                              strlen(acl_prefix)) == 0);
        freeReplyObject(r);
    }
    fleet_unmap();
    redis_stop(&server);
}

static void fleet_with_password(void)
{
    fleet_runs_fn_once(NULL);
}

static void fleet_with_acl(void)
{
    fleet_runs_fn_once("app1:");
}

/* A wrong password, or a prefix the ACL does not allow: scr_new refuses. */
static void credentials_refused(void)
{
    CU_ASSERT_FATAL(redis_start(&server, "app1:") == 0);
    scr_options o = options_for(&server);
    o.password = "not the password";
    int err = 0;
    CU_ASSERT_PTR_NULL(scr_new(&o, &err));
    CU_ASSERT_EQUAL(err, -EACCES);
    o = options_for(&server);
    o.prefix = "app2:"; /* outside the ACL's keys */
    err = 0;
    CU_ASSERT_PTR_NULL(scr_new(&o, &err));
    CU_ASSERT_EQUAL(err, -EACCES);
    o = options_for(&server);
    o.prefix = "a{b}:";
    err = 0;
    CU_ASSERT_PTR_NULL(scr_new(&o, &err));
    CU_ASSERT_EQUAL(err, -EINVAL);
    redis_stop(&server);
}

static int big_fn(void *arg, void **buf, size_t *len)
{
    *len = (size_t)(uintptr_t)arg;
    *buf = calloc(1, *len);
    return *buf != NULL ? 0 : ENOMEM;
}

/* fn's value over max_value, and entries in Redis that this library did
 * not write (or wrote for a larger limit), are refused, never returned. */
static void bad_values_refused(void)
{
    CU_ASSERT_FATAL(redis_start(&server, NULL) == 0);
    scr_options o = options_for(&server);
    o.max_value = 64;
    int err = 0;
    scr_group *g = scr_new(&o, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    scr_result r = {0};
    CU_ASSERT_EQUAL(scr_do(g, "big", big_fn, (void *)(uintptr_t)65, &r),
                    -EMSGSIZE);
    CU_ASSERT_EQUAL(scr_do(g, "big", big_fn, (void *)(uintptr_t)64, &r), 0);
    free(r.val);
    /* A lock held by someone else makes the next caller read the value:
     * plant a forged one, a truncated one, a too large one. */
    const char *forged[] = {
        "garbage",
        /* 9 bytes stated, 2 there (a literal of its own: \x09ab would be
         * one escape) */
        ("SCR1\0\0\0\0\0\0\0\x09\0\0\0\0\0\0\0\x09"
         "ab"),
        "SCR1\0\0\0\0\0\0\0\x09\0\0\0\0\0\0\0\x50"};
    const size_t lens[] = {7, 22, 20};
    const int want[] = {-EBADMSG, -EBADMSG, -EBADMSG};
    for (int i = 0; i < 3; i++) {
        redisReply *x =
            redis_run(&server, "SET test:{k}:lock %s PX 2000", "someone 9");
        freeReplyObject(x);
        x = redis_run(&server, "SET test:{k}:value %b", forged[i], lens[i]);
        freeReplyObject(x);
        CU_ASSERT_EQUAL(scr_do(g, "k", big_fn, (void *)(uintptr_t)1, &r),
                        want[i]);
    }
    /* A well-formed entry over this group's limit. */
    char entry[20 + 100] = "SCR1";
    entry[11] = 9;   /* fence 9 */
    entry[19] = 100; /* 100 bytes */
    redisReply *x =
        redis_run(&server, "SET test:{k}:value %b", entry, sizeof entry);
    freeReplyObject(x);
    CU_ASSERT_EQUAL(scr_do(g, "k", big_fn, (void *)(uintptr_t)1, &r),
                    -EMSGSIZE);
    struct scr_stats st;
    CU_ASSERT_EQUAL(scr_stats(g, &st), 0);
    CU_ASSERT_EQUAL(st.refused, 5);
    CU_ASSERT_EQUAL(scr_free(g), 0);
    redis_stop(&server);
}

/* The leader process is killed inside fn: a waiting process takes over
 * once the lock's time to live has passed, and its callers get a value. */
static void leader_killed_waiter_takes_over(void)
{
    enum { THREADS = 3 };
    CU_ASSERT_FATAL(redis_start(&server, NULL) == 0);
    fleet_map();
    fleet->held = 1; /* the first fn never returns: it is killed */
    fleet->expect_run[1] = 2;
    pid_t leader = start_leader_process(1);
    pid_t waiter = start_process(1, THREADS);
    CU_ASSERT(poll_until(waiting_in_redis, "test:", 1));
    kill(leader, SIGKILL);
    CU_ASSERT_EQUAL(exit_status(leader), 128 + SIGKILL);
    CU_ASSERT_EQUAL(exit_status(waiter), 0);
    printf("(fn ran %d time(s); %d answers after a takeover) ", fleet->in_fn,
           fleet->takeovers);
    CU_ASSERT_EQUAL(fleet->in_fn, 2);
    CU_ASSERT_EQUAL(fleet->takeovers, THREADS);
    CU_ASSERT_EQUAL(fleet->origin[SCR_THIS_THREAD], 1);
    CU_ASSERT_EQUAL(fleet->origin[SCR_THIS_PROCESS], THREADS - 1);
    fleet_unmap();
    redis_stop(&server);
}

/* A key's fence counter in Redis, or 0 if there is none. */
static unsigned long long fence_of(const char *key)
{
    redisReply *r = redis_run(&server, "GET test:{%s}:fence", key);
    unsigned long long f = 0;
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        f = strtoull(r->str, NULL, 10);
    if (r != NULL)
        freeReplyObject(r);
    return f;
}

/* Sets a key's fence counter, as if n leaders had been elected: the next
 * is n + 1 (a missing counter would start from the server's clock). */
static void set_fence(const char *key, long n)
{
    redisReply *r = redis_run(&server, "SET test:{%s}:fence %ld", key, n);
    CU_ASSERT_FATAL(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
}

/* A leader slower than its lock: a waiting process takes over and runs
 * fn again (run 2); when the slow run 1 ends, its value is stale (the
 * fence counter has moved on), it is not stored, and its process's callers
 * get run 2's value too. The counter starts at 41: two elections take it
 * to 43, and an existing counter is kept, not started again. */
static void slow_leader_value_is_stale(void)
{
    enum { THREADS = 2 };
    CU_ASSERT_FATAL(redis_start(&server, NULL) == 0);
    set_fence("hot", 41);
    fleet_map();
    fleet->held = 1;
    fleet->expect_run[0] = fleet->expect_run[1] = 2;
    pid_t slow = start_leader_process(THREADS);
    pid_t second = start_process(1, THREADS);
    CU_ASSERT_EQUAL(exit_status(second), 0); /* took over, ran, published */
    fleet_release();                         /* now run 1 ends, late */
    CU_ASSERT_EQUAL(exit_status(slow), 0);
    printf("(fn ran %d time(s); %llu stale value(s) not stored; answers: %d "
           "this thread, %d this process, %d other processes) ",
           fleet->in_fn, fleet->stale, fleet->origin[SCR_THIS_THREAD],
           fleet->origin[SCR_THIS_PROCESS], fleet->origin[SCR_OTHER_PROCESS]);
    CU_ASSERT_EQUAL(fleet->in_fn, 2);
    CU_ASSERT_EQUAL(fleet->stale, 1);
    CU_ASSERT_EQUAL(fleet->origin[SCR_THIS_THREAD], 1);
    CU_ASSERT_EQUAL(fleet->origin[SCR_THIS_PROCESS], THREADS - 1);
    CU_ASSERT_EQUAL(fleet->origin[SCR_OTHER_PROCESS], THREADS);
    CU_ASSERT_EQUAL(fence_of("hot"), 43);
    fleet_unmap();
    redis_stop(&server);
}

static bool second_leads(void *arg)
{
    (void)arg;
    return fleet->ready >= 2 && fleet->in_fn >= 2;
}

static long runs_of_fn(const char *unused)
{
    (void)unused;
    pthread_mutex_lock(&fleet->mu);
    long n = fleet->in_fn;
    pthread_mutex_unlock(&fleet->mu);
    return n;
}

/* The third process has chosen: it waits in Redis for the second
 * leader's value (a second subscriber to the channel: the second leader
 * is still subscribed from its own wait), or it was elected, runs fn. */
static long third_chose(const char *prefix)
{
    return waiting_in_redis(prefix) >= 2 || runs_of_fn(NULL) >= 3;
}

/* Whether the lock is held with fencing number f ("TOKEN f"). */
static bool lock_held_by(long f)
{
    redisReply *r = redis_run(&server, "GET test:{hot}:lock");
    const char *space =
        r != NULL && r->type == REDIS_REPLY_STRING ? strchr(r->str, ' ') : NULL;
    bool held = space != NULL && strtol(space + 1, NULL, 10) == f;
    if (r != NULL)
        freeReplyObject(r);
    return held;
}

/* A leader slower than its lock whose fn then fails: by then a second
 * process has taken over and is in fn (run 2), holding the lock with
 * fencing number 2. The slow leader's release must leave that lock
 * alone (it is no longer this leader's), so a third process that comes
 * after it follows the second leader: fn runs twice, not three times. */
static void failed_slow_leader_keeps_new_lock(void)
{
    enum { THREADS = 2 };
    CU_ASSERT_FATAL(redis_start(&server, NULL) == 0);
    set_fence("hot", 0); /* the leaders' fencing numbers: 1, then 2 */
    fleet_map();
    fleet->held = 2;
    fleet->fail_run = 1;
    fleet->expect_rc[0] = FN_FAILED;
    fleet->expect_run[1] = fleet->expect_run[2] = 2;
    /* The second leader's lock outlives the test: only a release that
     * is not its own can take it. */
    fleet->lock_ttl_ms[1] = 60000;
    pid_t slow = start_leader_process(THREADS);
    pid_t second = start_process(1, THREADS);
    pthread_mutex_lock(&fleet->mu);
    CU_ASSERT(fleet_wait(second_leads, NULL)); /* took over, in run 2 */
    pthread_mutex_unlock(&fleet->mu);
    CU_ASSERT(lock_held_by(2));
    fleet_release(); /* run 1 fails, late: its leader releases the lock */
    CU_ASSERT_EQUAL(exit_status(slow), 0);
    bool kept = lock_held_by(2);
    CU_ASSERT(kept);
    pid_t third = start_process(2, 1);
    CU_ASSERT(poll_until(third_chose, "test:", 1));
    CU_ASSERT_EQUAL(runs_of_fn(NULL), 2); /* the third was not elected */
    fleet_release();                      /* run 2 returns its value */
    CU_ASSERT_EQUAL(exit_status(second), 0);
    CU_ASSERT_EQUAL(exit_status(third), 0);
    printf("(fn ran %d time(s); the second leader's lock %s the failed "
           "release; answers: %d this thread, %d this process, %d other "
           "processes) ",
           fleet->in_fn, kept ? "survived" : "was taken by",
           fleet->origin[SCR_THIS_THREAD], fleet->origin[SCR_THIS_PROCESS],
           fleet->origin[SCR_OTHER_PROCESS]);
    CU_ASSERT_EQUAL(fleet->in_fn, 2);
    CU_ASSERT_EQUAL(fleet->origin[SCR_THIS_THREAD], 1);
    CU_ASSERT_EQUAL(fleet->origin[SCR_THIS_PROCESS], THREADS - 1);
    CU_ASSERT_EQUAL(fleet->origin[SCR_OTHER_PROCESS], 1);
    fleet_unmap();
    redis_stop(&server);
}

/* redis-server killed: calls go on, coalesced in the process, within
 * their deadline; restarted: the same group goes through Redis again,
 * and the fence counter, lost with the server's data, does not go back. */
static void server_killed_then_restarted(void)
{
    enum { THREADS = 4 };
    CU_ASSERT_FATAL(redis_start(&server, NULL) == 0);
    fleet_map();
    fleet->held = 1;
    fleet->expect_run[0] = 1;
    fleet->wait_ms = 2000;
    scr_options o = options_for(&server);
    int err = 0;
    scr_group *g = scr_new(&o, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    scr_result r;
    CU_ASSERT_EQUAL(scr_do(g, "warm", big_fn, (void *)(uintptr_t)1, &r), 0);
    CU_ASSERT(!r.fallback); /* and its connection waits in the pool */
    free(r.val);
    unsigned long long before = fence_of("warm");
    CU_ASSERT(before > 0);

    redis_kill(&server);
    struct caller c[THREADS] = {{0}};
    pthread_t t[THREADS];
    tu_parked_reset();
    for (int i = 0; i < THREADS; i++) {
        c[i].g = g;
        pthread_create(&t[i], NULL, call, &c[i]);
    }
    tu_parked_expect(THREADS - 1, "followers never parked, Redis down");
    fleet_release();
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT(as_expected(0, c[i].rc, &c[i].r));
        CU_ASSERT(c[i].rc == 0 && c[i].r.fallback);
        CU_ASSERT(c[i].ms < (long)o.wait_ms);
        if (c[i].rc == 0)
            free(c[i].r.val);
    }
    CU_ASSERT_EQUAL(fleet->in_fn, 1); /* coalesced in the process */

    CU_ASSERT_FATAL(redis_restart(&server) == 0);
    CU_ASSERT_EQUAL(scr_do(g, "warm", big_fn, (void *)(uintptr_t)1, &r), 0);
    CU_ASSERT(!r.fallback);
    free(r.val);
    redisReply *x = redis_run(&server, "EXISTS test:{warm}:value");
    CU_ASSERT(x != NULL && x->type == REDIS_REPLY_INTEGER && x->integer == 1);
    if (x != NULL)
        freeReplyObject(x);
    unsigned long long after = fence_of("warm");
    printf("(fence of the first flight %llu, of the first after the restart "
           "%llu) ",
           before, after);
    CU_ASSERT(after > before);
    struct scr_stats st;
    CU_ASSERT_EQUAL(scr_stats(g, &st), 0);
    CU_ASSERT_EQUAL(st.fallbacks, 1);
    CU_ASSERT_EQUAL(scr_free(g), 0);
    fleet_unmap();
    redis_stop(&server);
}

/* A slow leader's value is refused as stale, and while its process waits
 * for the newer leader's, redis-server dies: that process falls back as
 * any waiter would, and fn runs again in it (run 3); the newer leader,
 * unable to publish, gives its own process its value unchecked (run 2).
 * Every caller gets a value, marked a fallback; none gets -EIO. */
static void stale_leader_falls_back_when_redis_dies(void)
{
    enum { THREADS = 2 };
    CU_ASSERT_FATAL(redis_start(&server, NULL) == 0);
    set_fence("hot", 0);
    fleet_map();
    fleet->held = 2;
    fleet->expect_run[0] = 3;
    fleet->expect_run[1] = 2;
    fleet->lock_ttl_ms[1] = 60000; /* only the slow leader's lock expires */
    pid_t slow = start_leader_process(THREADS);
    pid_t second = start_process(1, THREADS);
    pthread_mutex_lock(&fleet->mu);
    CU_ASSERT(fleet_wait(second_leads, NULL)); /* took over, in run 2 */
    pthread_mutex_unlock(&fleet->mu);
    fleet_release(); /* run 1 ends, late: stale; its process waits */
    /* Two subscribers: the second leader's, from its own wait, and the
     * slow leader's, waiting for run 2 now. */
    CU_ASSERT(poll_until(waiting_in_redis, "test:", 2));
    redis_kill(&server);
    CU_ASSERT_EQUAL(exit_status(slow), 0);
    fleet_release(); /* run 2 ends, and cannot be published */
    CU_ASSERT_EQUAL(exit_status(second), 0);
    printf("(fn ran %d time(s); %llu stale, %llu fallback(s)) ", fleet->in_fn,
           fleet->stale, fleet->fallbacks);
    CU_ASSERT_EQUAL(fleet->in_fn, 3);
    CU_ASSERT_EQUAL(fleet->stale, 1);
    CU_ASSERT_EQUAL(fleet->fallbacks, 2);
    fleet_unmap();
    redis_stop(&server);
}

/* The server stalls (CLIENT PAUSE) while a process waits for another's
 * value: its callers return -ETIMEDOUT at their deadline, not when the
 * pause ends. The leader's lock expires during the pause, so the waiter's
 * attempt to take over meets the stalled server too. */
static void stalled_server_followers_time_out(void)
{
    enum { THREADS = 3 };
    const long wait_ms = tool_ms(1000, 6000), pause_ms = tool_ms(8000, 20000);
    CU_ASSERT_FATAL(redis_start(&server, NULL) == 0);
    const long io_ms = options_for(&server).io_timeout_ms;
    fleet_map();
    fleet->held = 1;
    fleet->wait_ms = (unsigned)wait_ms;
    fleet->expect_run[0] = 1;
    fleet->expect_rc[1] = -ETIMEDOUT;
    pid_t leader = start_leader_process(1);
    pid_t waiter = start_process(1, THREADS);
    CU_ASSERT(poll_until(waiting_in_redis, "test:", 1));
    redisReply *x = redis_run(&server, "CLIENT PAUSE %ld ALL", pause_ms);
    CU_ASSERT(x != NULL && x->type == REDIS_REPLY_STATUS);
    if (x != NULL)
        freeReplyObject(x);
    CU_ASSERT_EQUAL(exit_status(waiter), 0);
    long longest = fleet->longest_ms;
    printf("(the waiting process's callers returned -ETIMEDOUT after at "
           "most %ld ms; deadline %ld ms, pause %ld ms) ",
           longest, wait_ms, pause_ms);
    /* The deadline, plus at most one round trip's timeout, and as much
     * again for the process's own slowness. */
    CU_ASSERT(longest >= wait_ms - 50 && longest < wait_ms + 2 * io_ms);
    x = redis_run(&server, "CLIENT UNPAUSE");
    if (x != NULL)
        freeReplyObject(x);
    fleet_release();
    CU_ASSERT_EQUAL(exit_status(leader), 0);
    fleet_unmap();
    redis_stop(&server);
}

int main(void)
{
    static const struct tu_test tests[] = {
        {"a fleet of 4 processes runs fn once (password)", fleet_with_password},
        {"the same under an ACL: no key outside the prefix", fleet_with_acl},
        {"a wrong password, a prefix the ACL refuses, a bad prefix",
         credentials_refused},
        {"an oversize value, forged and truncated entries are refused",
         bad_values_refused},
        {"the leader process killed in fn: a waiter takes over",
         leader_killed_waiter_takes_over},
        {"a leader slower than its lock: its late value is stale, not stored",
         slow_leader_value_is_stale},
        {"a slow leader that fails: the lock its successor holds survives",
         failed_slow_leader_keeps_new_lock},
        {"a stale leader's process, redis-server gone: it falls back",
         stale_leader_falls_back_when_redis_dies},
        {"redis-server killed: calls go on in the process; restarted: Redis "
         "again",
         server_killed_then_restarted},
        {"the server stalls: a waiting process times out at its deadline",
         stalled_server_followers_time_out},
        {NULL, NULL}};
    return tu_run_suite("libsharedcalls-redis on a real redis-server", tests);
}
