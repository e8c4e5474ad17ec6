/*
 * bench - make bench: what one call of the kit costs, beside what this
 * machine allows for the primitives it is made of.
 *
 *   build/bench/bench [--quick] [--ir W1=N,W2=N]   the table
 *   build/bench/bench --callgrind W1|W2 CALLS       one loop, for callgrind
 *   build/bench/bench --loop W1|W3 CALLS SHARDS     one loop on an engine
 *                                                   with SHARDS, for perf
 *   build/bench/bench --loop OWN CALLS THREADS      W1's primitives, nothing
 *                                                   shared, on 1 or 2 threads
 *   build/bench/bench --loop SHARED CALLS THREADS   the same, writing one of
 *                                                   16 shared lines a call
 *
 * Keys are 8 bytes, fn returns a constant. Each figure is the median of
 * repeated runs, with the minimum and maximum; scripts/bench.sh runs the
 * callgrind loops and passes their instructions per call in with --ir.
 * A two-thread figure (W3, and the speed-ups of the machine's section)
 * counts only the runs that pass figure.c's checks; a note under the
 * table says how many did not, and why.
 */
#define _GNU_SOURCE

#include "bench.h"
#include "sharedcalls.h"

#include <limits.h>
#include <malloc.h> /* malloc_usable_size */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

/* The groups a workload runs on: go-zero's algorithm, the full engine,
 * and the engine with its map in 16 shards. */
enum kind { PORT, ENGINE, SHARDED, KINDS };

static sc_group *make(enum kind k)
{
    if (k == PORT)
        return sc_new();
    return sc_new_with(&(sc_options){.shards = k == SHARDED ? 16 : 0});
}

static int constant(void *arg, void **val)
{
    *val = arg;
    return 0;
}

/* The bench links with --wrap=malloc,calloc,free: while counting is on,
 * these keep the bytes allocated and not yet freed, and each thread's
 * number of allocations. Off, they cost a test of a flag. */
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void __real_free(void *p);
static atomic_bool counting;
static atomic_long live;
static _Thread_local long allocations;

void *__wrap_malloc(size_t size)
{
    void *p = __real_malloc(size);
    if (p != NULL && atomic_load_explicit(&counting, memory_order_relaxed)) {
        atomic_fetch_add(&live, (long)malloc_usable_size(p));
        allocations++;
    }
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    void *p = __real_calloc(n, size);
    if (p != NULL && atomic_load_explicit(&counting, memory_order_relaxed)) {
        atomic_fetch_add(&live, (long)malloc_usable_size(p));
        allocations++;
    }
    return p;
}

void __wrap_free(void *p)
{
    if (p != NULL && atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_sub(&live, (long)malloc_usable_size(p));
    __real_free(p);
}

/* Bytes the kit (and the bench) hold, while counting. */
static size_t heap(void)
{
    return (size_t)atomic_load(&live);
}

/* The next of 62^8 keys of 8 characters, in place. */
static void next_key(char key[9])
{
    for (int i = 7; i >= 0; i--) {
        char c = key[i];
        int next = c == '9' ? 'a' : c == 'z' ? 'A' : c == 'Z' ? '0' : c + 1;
        key[i] = (char)next;
        if (c != 'Z')
            return;
    }
}

/* W1: one thread, a new key each call: the whole leader path. */
static double w1(sc_group *g, long n, char key[9])
{
    void *v;
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        next_key(key);
        sc_do(g, key, constant, NULL, &v);
    }
    return (now_ns() - t0) / (double)n;
}

/* W2: one thread, one key, nothing in flight. */
static double w2(sc_group *g, long n)
{
    void *v;
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        sc_do(g, "key00000", constant, NULL, &v);
    return (now_ns() - t0) / (double)n;
}

/* W3: two threads, each in its own key space (its first character),
 * each timing itself (run_timed), as the limits' two threads are. */
struct w3_lane {
    _Alignas(64) sc_group *g; /* a line of its own: no line shared but g's */
    char key[9];
};

static void w3_calls(void *ctx, long n)
{
    struct w3_lane *l = ctx;
    char key[9]; /* on this thread's stack while the calls are timed */
    memcpy(key, l->key, sizeof key);
    w1(l->g, n, key);
    memcpy(l->key, key, sizeof key); /* the next calls take new keys */
}

/* W1 on 1 thread, or W3 on 2, n calls on each. */
static struct timed w3_on(sc_group *g, long n, int threads)
{
    struct w3_lane l[2] = {{g, "a0000000"}, {g, "b0000000"}};
    void *ctx[2] = {&l[0], &l[1]};
    return run_timed(threads, n, w3_calls, ctx);
}

/* One repetition of W3's speed-up: a new group for each run. */
struct w3_rep {
    enum kind kind;
    long n;
};

static struct timed w3_fresh(const struct w3_rep *r, int threads)
{
    sc_group *g = make(r->kind);
    struct timed t = w3_on(g, r->n, threads);
    sc_free(g);
    return t;
}

static struct scaling w3_scaling(void *ctx)
{
    return scaling_of(w3_fresh(ctx, 1), w3_fresh(ctx, 2));
}

/* W4: WAITERS + 1 threads call one key at once; fn waits until all have
 * joined. Per flight: from fn's return to the last caller's return (the
 * wake-up), and from the first call to the last return (the flight). */
struct fan {
    sc_group *g;
    enum kind kind;
    atomic_int arrived;          /* callers that are about to call */
    atomic_llong first;          /* the earliest call */
    atomic_llong fn_end;         /* when fn returned */
    atomic_llong last;           /* the latest return */
    atomic_long follower_allocs; /* allocations made inside followers' calls */
    pthread_barrier_t go, end;
    int flights;
};

static void latest(atomic_llong *at, long long t)
{
    long long seen = atomic_load(at);
    while (t > seen && !atomic_compare_exchange_weak(at, &seen, t))
        ;
}

static void earliest(atomic_llong *at, long long t)
{
    long long seen = atomic_load(at);
    while (t < seen && !atomic_compare_exchange_weak(at, &seen, t))
        ;
}

/* fn of W4: returns once every caller has joined its flight. The engine
 * counts its callers; for the port, callers that have arrived are given a
 * moment to park (the port keeps no count). */
static int gather(void *arg, void **val)
{
    struct fan *f = arg;
    if (f->kind != PORT) {
        struct sc_stats s;
        do
            sc_stats(f->g, &s);
        while (s.callers % (WAITERS + 1) != 0);
    } else {
        while (atomic_load(&f->arrived) < WAITERS + 1)
            sched_yield();
        usleep(2000);
    }
    *val = f;
    atomic_store(&f->fn_end, (long long)now_ns());
    return 0;
}

static void *fan_caller(void *arg)
{
    struct fan *f = arg;
    for (int i = 0; i < f->flights; i++) {
        void *v;
        bool fresh;
        pthread_barrier_wait(&f->go);
        earliest(&f->first, (long long)now_ns());
        atomic_fetch_add(&f->arrived, 1);
        long before = allocations;
        sc_do_ex(f->g, "fan-in!!", gather, f, &v, &fresh);
        latest(&f->last, (long long)now_ns());
        if (!fresh)
            atomic_fetch_add(&f->follower_allocs, allocations - before);
        pthread_barrier_wait(&f->end);
    }
    return NULL;
}

/* Returns the allocations per follower call. */
static double w4(enum kind k, int flights, struct figure *wake,
                 struct figure *flight)
{
    struct fan f = {.g = make(k), .kind = k, .flights = flights};
    pthread_barrier_init(&f.go, NULL, WAITERS + 2);
    pthread_barrier_init(&f.end, NULL, WAITERS + 2);
    pthread_t t[WAITERS + 1];
    for (int i = 0; i <= WAITERS; i++)
        pthread_create(&t[i], NULL, fan_caller, &f);
    for (int i = 0; i < flights; i++) {
        atomic_store(&f.arrived, 0);
        atomic_store(&f.last, 0);
        atomic_store(&f.first, LLONG_MAX);
        pthread_barrier_wait(&f.go);
        /* the callers read the clock: main may run after they all return */
        pthread_barrier_wait(&f.end);
        long long last = atomic_load(&f.last);
        fig_add(wake, (double)(last - atomic_load(&f.fn_end)));
        fig_add(flight, (double)(last - atomic_load(&f.first)));
    }
    for (int i = 0; i <= WAITERS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&f.go);
    pthread_barrier_destroy(&f.end);
    sc_free(f.g);
    return (double)atomic_load(&f.follower_allocs) / (flights * WAITERS);
}

static void noop_trace(const sc_event *ev, void *ctx)
{
    (void)ev;
    (void)ctx;
}

/* Bytes an idle group takes. */
static size_t idle_group(enum kind k)
{
    atomic_store(&counting, true);
    size_t before = heap();
    sc_group *g = make(k);
    size_t bytes = heap() - before;
    sc_free(g);
    atomic_store(&counting, false);
    return bytes;
}

/* Bytes each of n flights in progress takes: n leaders stopped in fn. */
struct inflight {
    sc_group *g;
    atomic_int in_fn;
    atomic_bool release;
};

static int stop_in_fn(void *arg, void **val)
{
    struct inflight *p = arg;
    atomic_fetch_add(&p->in_fn, 1);
    while (!atomic_load(&p->release))
        usleep(100);
    *val = p;
    return 0;
}

static void *leader(void *arg)
{
    struct inflight *p = arg;
    char key[16];
    void *v;
    snprintf(key, sizeof key, "k%07lx",
             (unsigned long)pthread_self() % 9999999);
    sc_do(p->g, key, stop_in_fn, p, &v);
    return NULL;
}

static double per_call_bytes(enum kind k, int n)
{
    struct inflight p = {.g = make(k)};
    pthread_t t[64];
    atomic_store(&counting, true);
    size_t before = heap();
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, leader, &p);
    while (atomic_load(&p.in_fn) < n)
        usleep(100);
    size_t during = heap();
    atomic_store(&counting, false);
    atomic_store(&p.release, true);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    sc_free(p.g);
    return (double)(during - before) / n;
}

/* "142 [138-150]": median [min-max], scaled (1e3: ns to us). */
static const char *cell(const struct figure *f, double scale, char *buf,
                        size_t size)
{
    snprintf(buf, size, "%.0f [%.0f-%.0f]", fig_median(f) / scale,
             fig_min(f) / scale, fig_max(f) / scale);
    return buf;
}

/* The columns of the table: a label, a cell for each kind of group, a
 * limit, a ratio, a target. */
#define LINE "%-28s %-16s %-16s %-16s %5s %6s  %s\n"

/* One line: a label, a figure for each kind of group (NULL: none), and a
 * limit with the ratio of kind `of` to it (limit 0: none). */
static void row(const char *label, const struct figure *f[KINDS], double scale,
                double limit, enum kind of, const char *target)
{
    char c[KINDS][40] = {"-", "-", "-"};
    for (int k = 0; k < KINDS; k++)
        if (f[k] != NULL)
            cell(f[k], scale, c[k], sizeof c[k]);
    char l[16] = "", r[16] = "";
    if (limit > 0) {
        snprintf(l, sizeof l, "%.0f", limit / scale);
        snprintf(r, sizeof r, "%.2fx", fig_median(f[of]) / limit);
    }
    printf(LINE, label, c[0], c[1], c[2], l, r, target);
}

/* A line of single numbers, one per kind. */
static void plain_row(const char *label, const double v[KINDS], const char *fmt)
{
    printf("%-28s", label);
    for (int k = 0; k < KINDS; k++) {
        char c[40];
        snprintf(c, sizeof c, fmt, v[k]);
        printf(" %-16s", c);
    }
    putchar('\n');
}

/* A speed-up's median, in % or "?" when too few runs were trusted. */
static const char *percent(const struct speedups *s, char *buf, size_t size)
{
    if (!speedups_trusted(s))
        return "?";
    snprintf(buf, size, "%.0f", fig_median(&s->speedup) * 100);
    return buf;
}

/* A speed-up over a yardstick's, "0.57x", or "?" if either is untrusted. */
static const char *over(const struct speedups *s, const struct speedups *by,
                        char *buf, size_t size)
{
    if (!speedups_trusted(s) || !speedups_trusted(by))
        return "?";
    snprintf(buf, size, "%.2fx",
             fig_median(&s->speedup) / fig_median(&by->speedup));
    return buf;
}

/* W3's lines: ns a call and the speed-up for each kind (the trusted runs
 * only), the 16 shards' speed-up against two threads sharing nothing (the
 * target) and against one shared line a call. */
static void w3_rows(const struct speedups w3[KINDS],
                    const struct speedups *parallel,
                    const struct speedups *shared)
{
    char ns[KINDS][40], up[KINDS][40], l[16], r[16];
    for (int k = 0; k < KINDS; k++) {
        bool ok = speedups_trusted(&w3[k]);
        snprintf(ns[k], sizeof ns[k], "?");
        snprintf(up[k], sizeof up[k], "?");
        if (ok) {
            cell(&w3[k].two_ns, 1, ns[k], sizeof ns[k]);
            cell(&w3[k].speedup, 0.01, up[k], sizeof up[k]);
        }
    }
    printf(LINE, "W3 2 threads, ns a call", ns[0], ns[1], ns[2], "", "", "");
    printf(LINE, "W3 speed-up over W1, %", up[0], up[1], up[2],
           percent(parallel, l, sizeof l),
           over(&w3[SHARDED], parallel, r, sizeof r), ">= 0.9x");
    printf(LINE, "  16 shards / 1 shared line", "", "", "",
           percent(shared, l, sizeof l),
           over(&w3[SHARDED], shared, r, sizeof r), "");
}

static const char *const kind_name[KINDS] = {"port", "engine",
                                             "engine, 16 shards"};

/* A note under the table for a speed-up with doubtful runs. */
static bool doubts(const char *what, const struct speedups *s)
{
    if (s->doubtful == 0 && speedups_trusted(s))
        return false;
    printf("  %s: %d of %d runs set aside, ", what, s->doubtful, s->runs);
    if (speedups_trusted(s))
        printf("each run again; %d of %d repetitions kept\n", s->speedup.n,
               s->reps);
    else
        printf("only %d of %d repetitions trusted: shown as ?\n", s->speedup.n,
               s->reps);
    printf("    (%s)\n", s->why);
    return true;
}

struct config {
    int reps, flights;
    long calls;
};

typedef double (*workload)(sc_group *, long);

static void repeat(const struct config *c, struct figure *f, workload w,
                   enum kind k)
{
    for (int r = 0; r < c->reps; r++) {
        sc_group *g = make(k);
        fig_add(f, w(g, c->calls));
        sc_free(g);
    }
}

static double w1_fresh(sc_group *g, long n)
{
    char key[9] = "00000000";
    return w1(g, n, key);
}

static sc_group *traced;

static double w2_traced(sc_group *g, long n)
{
    (void)g;
    return w2(traced, n);
}

/* The machine's limits, each repeated. */
struct limits {
    struct figure lock, alloc, hash, futex, cond;
    struct speedups parallel, shared;
    double w1_sum; /* two lock pairs, an allocation, a hash */
};

static struct scaling parallel_scaling(void *n)
{
    return limit_parallel(*(long *)n);
}

static struct scaling shared_scaling(void *n)
{
    return limit_shared_line(*(long *)n);
}

static void measure_limits(const struct config *c, struct limits *m)
{
    /* calls on each thread, as W3 makes: runs of 100,000 calls of 27 ns
     * are 3 ms, and a half of that left too little to outlast a tick */
    long each = c->calls;
    for (int r = 0; r < c->reps; r++) {
        fig_add(&m->lock, limit_lock_pair(c->calls));
        fig_add(&m->alloc, limit_malloc_free(c->calls, 160));
        fig_add(&m->hash, limit_hash8(c->calls));
        speedups_add(&m->parallel, parallel_scaling, &each);
        speedups_add(&m->shared, shared_scaling, &each);
    }
    limit_futex_wake_all(c->flights, &m->futex);
    limit_cond_broadcast(c->flights, &m->cond);
    m->w1_sum =
        2 * fig_median(&m->lock) + fig_median(&m->alloc) + fig_median(&m->hash);
}

/* The machine's section, after the table. */
static void machine(const struct limits *m)
{
    char buf[40], pct[2][40];
    printf("\nthe machine: median [min-max]\n");
    printf("  %-46s %s\n", "mutex lock+unlock (2 threads alive), ns",
           cell(&m->lock, 1, buf, sizeof buf));
    printf("  %-46s %s\n", "malloc+free of 160 bytes, ns",
           cell(&m->alloc, 1, buf, sizeof buf));
    printf("  %-46s %s\n", "hash of an 8-byte key (uthash), ns",
           cell(&m->hash, 1, buf, sizeof buf));
    printf("  %-46s %.1f\n", "W1's limit: 2 lock pairs+malloc+hash, ns",
           m->w1_sum);
    const struct speedups *two[2] = {&m->parallel, &m->shared};
    for (int i = 0; i < 2; i++) {
        snprintf(pct[i], sizeof pct[i], "?");
        if (speedups_trusted(two[i]))
            cell(&two[i]->speedup, 0.01, pct[i], sizeof pct[i]);
    }
    printf("  %-46s %s\n", "2 threads sharing nothing: speed-up, %", pct[0]);
    printf("  %-46s %s\n", "2 threads, one shared line a call: speed-up, %",
           pct[1]);
    printf("  %-46s %s  p90 %.0f\n", "futex wake-all of 63 threads, us",
           cell(&m->futex, 1e3, buf, sizeof buf),
           fig_quantile(&m->futex, 0.9) / 1e3);
    printf("  %-46s %s  p90 %.0f\n", "cond broadcast to 63 threads, us",
           cell(&m->cond, 1e3, buf, sizeof buf),
           fig_quantile(&m->cond, 0.9) / 1e3);
}

/* What was measured and not trusted, under the table. */
static void notes(const struct speedups w3[KINDS], const struct limits *m)
{
    printf("\ntwo-thread runs set aside (speed-up above 200%%, threads "
           "together for less than 80%%\nof the run, or a thread waiting for "
           "a core 10%% of it or more):\n");
    char what[64];
    bool any = false;
    for (int k = 0; k < KINDS; k++) {
        snprintf(what, sizeof what, "W3, %s", kind_name[k]);
        any |= doubts(what, &w3[k]);
    }
    any |= doubts("2 threads sharing nothing", &m->parallel);
    any |= doubts("2 threads, one shared line", &m->shared);
    if (!any)
        printf("  none\n");
}

static void table(const struct config *c, const char *ir)
{
    struct limits m = {0};
    measure_limits(c, &m);
    struct figure w[2][KINDS] = {0}; /* W1, W2 */
    struct speedups w3[KINDS] = {0};
    struct figure wake[KINDS] = {0}, flight[KINDS] = {0};
    double follower_allocs[KINDS], idle[KINDS], in_flight[KINDS];
    for (int k = 0; k < KINDS; k++) {
        repeat(c, &w[0][k], w1_fresh, (enum kind)k);
        repeat(c, &w[1][k], w2, (enum kind)k);
        struct w3_rep rep = {(enum kind)k, c->calls};
        for (int r = 0; r < c->reps; r++)
            speedups_add(&w3[k], w3_scaling, &rep);
        atomic_store(&counting, true);
        follower_allocs[k] = w4((enum kind)k, c->flights, &wake[k], &flight[k]);
        atomic_store(&counting, false);
        idle[k] = (double)idle_group((enum kind)k);
        in_flight[k] = per_call_bytes((enum kind)k, 32);
    }
    struct figure hook = {0};
    traced = sc_new_with(&(sc_options){.trace = noop_trace});
    repeat(c, &hook, w2_traced, ENGINE);
    sc_free(traced);

    printf("sharedcalls bench: median [min-max] of %d runs of %ld calls "
           "(W4: %d flights); 8-byte keys\n\n",
           c->reps, c->calls, c->flights);
    printf(LINE, "", kind_name[0], kind_name[1], kind_name[2], "limit", "ratio",
           "target");
    const struct figure *r[KINDS];
#define ROW(label, fig, scale, limit, of, target)                              \
    do {                                                                       \
        for (int k = 0; k < KINDS; k++)                                        \
            r[k] = &(fig)[k];                                                  \
        row(label, r, scale, limit, of, target);                               \
    } while (0)
    ROW("W1 new key each call, ns", w[0], 1, m.w1_sum, ENGINE, "<= 1.5x");
    ROW("W2 one key, ns", w[1], 1, 0, ENGINE, "");
    w3_rows(w3, &m.parallel, &m.shared);
    ROW("W4 wake 63 followers, us", wake, 1e3, fig_median(&m.futex), ENGINE,
        "<= 1.5x");
    double p90[KINDS];
    for (int k = 0; k < KINDS; k++)
        p90[k] = fig_quantile(&wake[k], 0.9) / 1e3;
    plain_row("W4 wake-up p90, us", p90, "%.0f");
    ROW("W4 flight, us", flight, 1e3, 0, ENGINE, "");
#undef ROW
    const struct figure *hooked[KINDS] = {NULL, &hook, NULL};
    row("W2 with a trace hook, ns", hooked, 1, fig_median(&w[1][ENGINE]),
        ENGINE, "");
    /* the target for a call's instructions, the one figure here
     * that does not move with the machine's load */
    printf(LINE, "instructions a call W1, W2", "-",
           ir != NULL ? ir : "(make bench)", "-", "", "", "<= 600");
    plain_row("bytes, an idle group", idle, "%.0f");
    plain_row("bytes a call in flight", in_flight, "%.0f");
    plain_row("allocations a follower", follower_allocs, "%.2f");
    notes(w3, &m);
    machine(&m);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--callgrind") == 0) {
        sc_group *g = make(ENGINE);
        long n = atol(argv[3]);
        CALLGRIND_START_INSTRUMENTATION;
        if (strcmp(argv[2], "W1") == 0)
            w1_fresh(g, n);
        else
            w2(g, n);
        CALLGRIND_STOP_INSTRUMENTATION;
        sc_free(g);
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "--loop") == 0) {
        /* perf stat counts what the threads do: W1 alone, or W3's two */
        if (strcmp(argv[2], "OWN") == 0) {
            limit_own_calls(atol(argv[3]), atoi(argv[4]));
            return 0;
        }
        if (strcmp(argv[2], "SHARED") == 0) {
            limit_shared_calls(atol(argv[3]), atoi(argv[4]));
            return 0;
        }
        sc_options o = {.shards = (unsigned)atoi(argv[4])};
        sc_group *g = sc_new_with(&o);
        long n = atol(argv[3]);
        if (g == NULL || n <= 0)
            return 2;
        if (strcmp(argv[2], "W3") == 0)
            w3_on(g, n, 2);
        else
            w1_fresh(g, n);
        sc_free(g);
        return 0;
    }
    bool quick = false;
    const char *ir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (strcmp(argv[i], "--ir") == 0 && i + 1 < argc) {
            ir = argv[++i];
        } else {
            fprintf(stderr, "usage: bench [--quick] [--ir W1,W2]\n"
                            "       bench --callgrind W1|W2 CALLS\n"
                            "       bench --loop W1|W3 CALLS SHARDS\n"
                            "       bench --loop OWN|SHARED CALLS THREADS\n");
            return 2;
        }
    }
    struct config c = {quick ? 3 : 9, quick ? 5 : 31, quick ? 100000 : 1000000};
    table(&c, ir);
    return 0;
}
