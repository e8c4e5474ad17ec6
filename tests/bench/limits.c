/*
 * limits.c - what this machine allows, measured in the same run as the
 * kit: the primitives a call is made of, and the least a wake-up of 63
 * waiting threads can cost.
 */
#define _GNU_SOURCE

#include "bench.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

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

/* A round of wake-alls: WAITERS threads wait, one call wakes them all. */
struct round {
    atomic_int word;     /* the futex: 0 waiting, 1 woken */
    atomic_int parked;   /* threads about to wait */
    atomic_int finished; /* threads woken this round */
    atomic_llong last;   /* the latest wake-up, ns */
    pthread_mutex_t mu;  /* for the condition variable version */
    pthread_cond_t cv;
    bool use_cond;
    int rounds;
};

static void note_wake(struct round *r)
{
    long long t = (long long)now_ns();
    long long seen = atomic_load(&r->last);
    while (t > seen && !atomic_compare_exchange_weak(&r->last, &seen, t))
        ;
    atomic_fetch_add(&r->finished, 1);
}

static void *waiter(void *arg)
{
    struct round *r = arg;
    for (int i = 0; i < r->rounds; i++) {
        int gen = 2 * i; /* even: waiting; odd: woken */
        if (r->use_cond) {
            pthread_mutex_lock(&r->mu);
            atomic_fetch_add(&r->parked, 1);
            while (atomic_load(&r->word) == gen)
                pthread_cond_wait(&r->cv, &r->mu);
            pthread_mutex_unlock(&r->mu);
        } else {
            atomic_fetch_add(&r->parked, 1);
            while (atomic_load(&r->word) == gen)
                syscall(SYS_futex, &r->word, FUTEX_WAIT_PRIVATE, gen, NULL,
                        NULL, 0);
        }
        note_wake(r);
        while (atomic_load(&r->word) == gen + 1) /* the round's reset */
            syscall(SYS_futex, &r->word, FUTEX_WAIT_PRIVATE, gen + 1, NULL,
                    NULL, 0);
    }
    return NULL;
}

static void wake_rounds(bool use_cond, int rounds, struct figure *latency)
{
    struct round r = {.use_cond = use_cond, .rounds = rounds};
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    pthread_t t[WAITERS];
    for (int i = 0; i < WAITERS; i++)
        pthread_create(&t[i], NULL, waiter, &r);
    for (int i = 0; i < rounds; i++) {
        while (atomic_load(&r.parked) < WAITERS)
            sched_yield();
        usleep(2000); /* let the last ones reach the kernel's wait */
        atomic_store(&r.last, 0);
        double t0 = now_ns();
        if (use_cond) {
            pthread_mutex_lock(&r.mu);
            atomic_fetch_add(&r.word, 1);
            pthread_cond_broadcast(&r.cv);
            pthread_mutex_unlock(&r.mu);
        } else {
            atomic_fetch_add(&r.word, 1);
            syscall(SYS_futex, &r.word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL,
                    0);
        }
        while (atomic_load(&r.finished) < WAITERS)
            sched_yield();
        fig_add(latency, (double)atomic_load(&r.last) - t0);
        atomic_store(&r.finished, 0);
        atomic_store(&r.parked, 0);
        atomic_fetch_add(&r.word, 1); /* the next round's even number */
        syscall(SYS_futex, &r.word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    }
    for (int i = 0; i < WAITERS; i++)
        pthread_join(t[i], NULL);
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

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void fig_add(struct figure *f, double v)
{
    if (f->n < REPS_MAX)
        f->v[f->n++] = v;
}

double fig_quantile(const struct figure *f, double p)
{
    if (f->n == 0)
        return 0;
    double sorted[REPS_MAX];
    memcpy(sorted, f->v, sizeof(double) * (size_t)f->n);
    qsort(sorted, (size_t)f->n, sizeof sorted[0], by_value);
    return sorted[(int)(p * (f->n - 1) + 0.5)];
}

double fig_median(const struct figure *f)
{
    return fig_quantile(f, 0.5);
}

double fig_min(const struct figure *f)
{
    return fig_quantile(f, 0);
}

double fig_max(const struct figure *f)
{
    return fig_quantile(f, 1);
}
