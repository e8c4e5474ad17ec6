/*
 * limits.c - what this machine allows, measured in the same run as the
 * kit: the primitives a call is made of, what two cores give when they
 * share nothing, and the least a wake-up of 63 waiting threads can cost.
 */
#define _GNU_SOURCE

#include "bench.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uthash.h>

static void *idle(void *arg)
{
    pthread_mutex_lock(arg); /* blocks until limit_lock_pair is done */
    pthread_mutex_unlock(arg);
    return NULL;
}

/* glibc skips the atomic instruction while a process has one thread, so a
 * second thread stays alive (blocked) while the pairs are timed. */
double limit_lock_pair(long n)
{
    static pthread_mutex_t hold = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_t t;
    pthread_mutex_lock(&hold);
    pthread_create(&t, NULL, idle, &hold);
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&m);
        __asm__ volatile("" ::: "memory");
        pthread_mutex_unlock(&m);
    }
    double ns = (now_ns() - t0) / (double)n;
    pthread_mutex_unlock(&hold);
    pthread_join(t, NULL);
    return ns;
}

double limit_malloc_free(long n, unsigned size)
{
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        void *p = malloc(size);
        __asm__ volatile("" : : "r"(p) : "memory");
        free(p);
    }
    return (now_ns() - t0) / (double)n;
}

/* uthash's own hash (Jenkins), on an 8-byte key that changes each time. */
double limit_hash8(long n)
{
    char key[8] = "k0000000";
    unsigned sum = 0;
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        key[7] = (char)('0' + (i & 63));
        unsigned h;
        HASH_VALUE(key, sizeof key, h);
        sum += h;
    }
    __asm__ volatile("" : : "r"(sum));
    return (now_ns() - t0) / (double)n;
}

/* A loop on 1 or 2 threads released together. Each thread reads the
 * clock itself, right after the release and right after its last call:
 * main may be descheduled past the release, and an interval it read would
 * then be too short. While one thread runs, main waits for it: the process
 * has two threads anyway, so glibc's locks take their atomic path in both
 * runs. The release is a count the threads spin on, not a pthread
 * barrier: a barrier's last comer runs on while the first sleeps in the
 * kernel, and waking an idle core took 100 us and more here, a tenth of a
 * short run spent on one thread. */
struct lane {
    void (*calls)(void *ctx, long n);
    void *ctx;
    long n;
    atomic_int *ready; /* threads at the start line */
    int threads;
    double began, ended;
    double lost; /* see struct timed */
};

/* This thread's CPU time, in ns, and the times the scheduler took its core
 * away (involuntary context switches; waiting for a lock is voluntary). */
static double cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static long preempted(void)
{
    struct rusage u;
    getrusage(RUSAGE_THREAD, &u);
    return u.ru_nivcsw;
}

/* The ns this thread has spent runnable but waiting for a core, the
 * kernel's own count (schedstat's second field); -1 if it cannot be read. */
static double waited_ns(void)
{
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (f == NULL)
        return -1;
    double ran, waited;
    int got = fscanf(f, "%lf %lf", &ran, &waited);
    fclose(f);
    return got == 2 ? waited : -1;
}

/* The share of a thread's interval it spent without its core though it
 * could run. Where schedstat cannot be read: the CPU time it missed, if
 * the scheduler preempted it at all (a thread never preempted was off its
 * core only by its own waits, part of the workload), else none. */
static double lost_share(double span, double waited, long switched, double cpu)
{
    if (span <= 0)
        return 0;
    if (waited >= 0)
        return waited / span;
    return switched > 0 ? 1 - cpu / span : 0;
}

/* Calls before the release, untimed: a new thread's first malloc makes its
 * arena, and the first calls fault in its stack and the loop's lines. */
enum { WARM_CALLS = 1000 };

static void *lane_run(void *arg)
{
    struct lane *l = arg;
    l->calls(l->ctx, WARM_CALLS);
    /* read before the release: opening a file took tens of us */
    double waited = waited_ns();
    atomic_fetch_add(l->ready, 1);
    /* spinning: a yield gave the core to another process for a time
     * slice now and then, and a start milliseconds late */
    for (long spins = 1; atomic_load(l->ready) < l->threads; spins++)
        if (spins % 4096 == 0)
            sched_yield(); /* in case both were put on one core */
    long switched = preempted();
    double cpu = cpu_ns();
    l->began = now_ns();
    l->calls(l->ctx, l->n);
    l->ended = now_ns();
    cpu = cpu_ns() - cpu;
    switched = preempted() - switched;
    double after = waited_ns();
    waited = waited >= 0 && after >= 0 ? after - waited : -1;
    l->lost = lost_share(l->ended - l->began, waited, switched, cpu);
    return NULL;
}

/* The share of the span, from the first start to the last end, in which
 * both threads ran. */
static double overlap(const struct lane *l, int threads)
{
    if (threads < 2)
        return 1;
    double first = l[0].began < l[1].began ? l[0].began : l[1].began;
    double last = l[0].ended > l[1].ended ? l[0].ended : l[1].ended;
    double both_from = l[0].began > l[1].began ? l[0].began : l[1].began;
    double both_to = l[0].ended < l[1].ended ? l[0].ended : l[1].ended;
    if (last <= first || both_to <= both_from)
        return 0;
    return (both_to - both_from) / (last - first);
}

struct timed run_timed(int threads, long n, void (*calls)(void *, long),
                       void *ctx[])
{
    atomic_int ready = 0;
    struct lane l[2];
    pthread_t t[2];
    for (int i = 0; i < threads; i++) {
        l[i] = (struct lane){calls, ctx[i], n, &ready, threads, 0, 0, 0};
        pthread_create(&t[i], NULL, lane_run, &l[i]);
    }
    double began = 0, ended = 0, lost = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        began = i == 0 || l[i].began < began ? l[i].began : began;
        ended = l[i].ended > ended ? l[i].ended : ended;
        lost = l[i].lost > lost ? l[i].lost : lost;
    }
    return (struct timed){(ended - began) / (double)(threads * n),
                          overlap(l, threads), lost};
}

/* W1's primitives on one thread's own data: its own lock, its own
 * allocations, its own key. Two threads running this share no line the
 * program wrote, so their speed-up is the most two cores of this machine
 * give W3. */
struct own {
    _Alignas(64) pthread_mutex_t lock;
    unsigned sum;
};

static void own_calls(void *ctx, long n)
{
    struct own *o = ctx;
    char key[8] = "k0000000";
    for (long i = 0; i < n; i++) {
        key[7] = (char)('0' + (i & 63));
        unsigned h;
        HASH_VALUE(key, sizeof key, h);
        pthread_mutex_lock(&o->lock);
        void *p = malloc(160);
        __asm__ volatile("" : : "r"(p) : "memory");
        pthread_mutex_unlock(&o->lock);
        pthread_mutex_lock(&o->lock);
        o->sum += h;
        pthread_mutex_unlock(&o->lock);
        free(p);
    }
}

static struct timed own_run(long n, int threads)
{
    struct own *o = aligned_alloc(64, 2 * sizeof *o);
    void *ctx[2] = {&o[0], &o[1]};
    for (int i = 0; i < 2; i++) {
        o[i] = (struct own){.sum = 0};
        pthread_mutex_init(&o[i].lock, NULL);
    }
    struct timed t = run_timed(threads, n, own_calls, ctx);
    for (int i = 0; i < 2; i++)
        pthread_mutex_destroy(&o[i].lock);
    free(o);
    return t;
}

void limit_own_calls(long n, int threads)
{
    own_run(n, threads == 2 ? 2 : 1);
}

struct scaling limit_parallel(long n)
{
    return scaling_of(own_run(n, 1), own_run(n, 2));
}

/* One shared line a call. A singleflight with one map for all threads
 * publishes each leader's flight at a place picked by the key's hash, so a
 * call writes a line the other core wrote last about half of the time. The
 * same primitives as own_calls, but the lock (adaptive, as a kit would
 * pick for short critical sections) and the fields it guards are on one of
 * 16 lines both threads share, picked by the hash of a key that changes
 * each call: the floor of such a design, below any map's own work. */
enum { SHARED_LINES = 16 };

struct shared_line {
    _Alignas(64) pthread_mutex_t lock;
    unsigned sum;
    long calls;
};

struct sharer {
    _Alignas(64) struct shared_line *lines; /* its own line: no false share */
    char first;                             /* its key space */
};

static void shared_calls(void *ctx, long n)
{
    struct sharer *s = ctx;
    char key[8] = "k0000000";
    key[0] = s->first;
    for (long i = 0; i < n; i++) {
        key[6] = (char)('0' + ((i >> 6) & 63));
        key[7] = (char)('0' + (i & 63));
        unsigned h;
        HASH_VALUE(key, sizeof key, h);
        struct shared_line *l = &s->lines[h % SHARED_LINES];
        pthread_mutex_lock(&l->lock);
        void *p = malloc(160);
        __asm__ volatile("" : : "r"(p) : "memory");
        l->calls++;
        pthread_mutex_unlock(&l->lock);
        pthread_mutex_lock(&l->lock);
        l->sum += h;
        pthread_mutex_unlock(&l->lock);
        free(p);
    }
}

static struct timed shared_run(long n, int threads)
{
    struct shared_line *lines = aligned_alloc(64, SHARED_LINES * sizeof *lines);
    pthread_mutexattr_t adaptive;
    pthread_mutexattr_init(&adaptive);
    pthread_mutexattr_settype(&adaptive, PTHREAD_MUTEX_ADAPTIVE_NP);
    for (int i = 0; i < SHARED_LINES; i++) {
        lines[i] = (struct shared_line){.calls = 0};
        pthread_mutex_init(&lines[i].lock, &adaptive);
    }
    struct sharer s[2] = {{lines, 'a'}, {lines, 'b'}};
    void *ctx[2] = {&s[0], &s[1]};
    struct timed t = run_timed(threads, n, shared_calls, ctx);
    for (int i = 0; i < SHARED_LINES; i++)
        pthread_mutex_destroy(&lines[i].lock);
    pthread_mutexattr_destroy(&adaptive);
    free(lines);
    return t;
}

void limit_shared_calls(long n, int threads)
{
    shared_run(n, threads == 2 ? 2 : 1);
}

struct scaling limit_shared_line(long n)
{
    return scaling_of(shared_run(n, 1), shared_run(n, 2));
}

/* Rounds of wake-alls, shaped as W4 is: WAITERS + 1 threads meet at a
 * barrier; one of them wakes the others, which sleep on one futex word
 * (or one condition variable); each notes when it runs again, and all
 * meet at a second barrier. The figure is the wake call to the last
 * waiter running, which is what W4's wake-up is with the kit in between. */
struct round {
    atomic_uint word;  /* the futex: the round's number while waiting */
    atomic_int parked; /* waiters about to sleep this round */
    atomic_llong woke, last;
    pthread_mutex_t mu; /* for the condition variable version */
    pthread_cond_t cv;
    pthread_barrier_t go, end;
    bool use_cond;
    int rounds;
};

static void latest(atomic_llong *at, long long t)
{
    long long seen = atomic_load(at);
    while (t > seen && !atomic_compare_exchange_weak(at, &seen, t))
        ;
}

static void sleep_round(struct round *r, unsigned round)
{
    if (r->use_cond) {
        pthread_mutex_lock(&r->mu);
        atomic_fetch_add(&r->parked, 1);
        while (atomic_load(&r->word) == round)
            pthread_cond_wait(&r->cv, &r->mu);
        pthread_mutex_unlock(&r->mu);
        return;
    }
    atomic_fetch_add(&r->parked, 1);
    while (atomic_load(&r->word) == round)
        syscall(SYS_futex, &r->word, FUTEX_WAIT_PRIVATE, round, NULL, NULL, 0);
}

static void wake_round(struct round *r)
{
    while (atomic_load(&r->parked) < WAITERS)
        sched_yield();
    usleep(2000); /* let the last ones reach the kernel's wait */
    atomic_store(&r->woke, (long long)now_ns());
    if (r->use_cond) {
        pthread_mutex_lock(&r->mu);
        atomic_fetch_add(&r->word, 1);
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    } else {
        atomic_fetch_add(&r->word, 1);
        syscall(SYS_futex, &r->word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL,
                0);
    }
}

struct member {
    struct round *r;
    bool waker;
};

static void *member(void *arg)
{
    struct member *m = arg;
    struct round *r = m->r;
    for (int i = 0; i < r->rounds; i++) {
        unsigned round = (unsigned)i;
        pthread_barrier_wait(&r->go);
        if (m->waker)
            wake_round(r);
        else
            sleep_round(r, round);
        latest(&r->last, (long long)now_ns());
        pthread_barrier_wait(&r->end);
    }
    return NULL;
}

static void wake_rounds(bool use_cond, int rounds, struct figure *latency)
{
    struct round r = {.use_cond = use_cond, .rounds = rounds};
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    pthread_barrier_init(&r.go, NULL, WAITERS + 2);
    pthread_barrier_init(&r.end, NULL, WAITERS + 2);
    pthread_t t[WAITERS + 1];
    struct member m[WAITERS + 1];
    for (int i = 0; i <= WAITERS; i++) {
        m[i] = (struct member){&r, i == 0};
        pthread_create(&t[i], NULL, member, &m[i]);
    }
    for (int i = 0; i < rounds; i++) {
        atomic_store(&r.parked, 0);
        atomic_store(&r.last, 0);
        pthread_barrier_wait(&r.go);
        pthread_barrier_wait(&r.end);
        fig_add(latency, (double)(atomic_load(&r.last) - atomic_load(&r.woke)));
    }
    for (int i = 0; i <= WAITERS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&r.go);
    pthread_barrier_destroy(&r.end);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);
}

void limit_futex_wake_all(int rounds, struct figure *latency)
{
    wake_rounds(false, rounds, latency);
}

void limit_cond_broadcast(int rounds, struct figure *latency)
{
    wake_rounds(true, rounds, latency);
}
