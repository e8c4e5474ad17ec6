/*
 * bench.h - make bench's parts: repeated measurements and their summary.
 *
 *   bench.c      the table: workloads W1-W4, the hook, memory
 *   limits.c     what the machine allows: a lock pair, malloc+free, a
 *                hash, two threads sharing nothing, a wake-all of 63
 *                threads
 *   figure.c     the clock, and the summaries below
 *   fleet.h      the fleet's section, a program of its own (build/bench/fleet)
 *
 * Every figure is measured REPS times and reported as the median with the
 * minimum and maximum, so one noisy run cannot make or break a figure.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>

enum { REPS_MAX = 64, WAITERS = 63 };

/* Repetitions of one measurement. */
struct figure {
    double v[REPS_MAX];
    int n;
};
void fig_add(struct figure *f, double v);
double fig_median(const struct figure *f);
double fig_min(const struct figure *f);
double fig_max(const struct figure *f);
/* The p-quantile (0..1) of the values. */
double fig_quantile(const struct figure *f, double p);

/* Many single timings of one kind (a figure holds repetitions): a median
 * and a tail. */
struct samples {
    double *v;
    long n, cap;
};
void samples_add(struct samples *s, double v);
/* The p-quantile (0..1); it sorts the samples in place. */
double samples_quantile(const struct samples *s, double p);
void samples_free(struct samples *s);

/* CLOCK_MONOTONIC, in ns: one clock for every process of the machine. */
double now_ns(void);

/* One run of a loop on 1 or 2 threads: ns a call, from the earliest start
 * to the latest end; the share of that span in which both threads ran (1 on
 * one thread); and the largest share of its own interval a thread spent
 * runnable but without a core (the kernel's schedstat), not counting its
 * own waits for a lock. Two threads time-sliced on one core overlap fully:
 * only lost shows it. */
struct timed {
    double ns, overlap, lost;
};
/* Runs calls(ctx[i], n) on each of `threads` (1 or 2) threads, released
 * together; each thread times itself (limits.c). */
struct timed run_timed(int threads, long n, void (*calls)(void *, long),
                       void *ctx[]);

/* A two-thread run beside a one-thread run of the same loop. */
struct scaling {
    double speedup; /* one thread's ns a call over two threads' */
    double overlap; /* of the two-thread run */
    double lost;    /* the larger of the two runs' */
    double two_ns;  /* the two-thread run's ns a call */
};
struct scaling scaling_of(struct timed one, struct timed two);

/* Repetitions of a scaling, each checked before it counts: a speed-up above
 * two cores' worth, two threads that ran apart for much of the run, or a
 * thread kept off its core by the scheduler make a run doubtful. A doubtful
 * run is set aside, described in why, and run again, a few times at most. */
struct speedups {
    struct figure speedup, two_ns; /* the trusted runs */
    int reps;                      /* repetitions asked for */
    int runs, doubtful;            /* all runs, and those set aside */
    char why[88]; /* "overlap 71%, off core 48%, speed-up 240%" */
};
void speedups_add(struct speedups *s, struct scaling (*run)(void *ctx),
                  void *ctx);
/* Whether enough repetitions were trusted for a median to mean anything. */
bool speedups_trusted(const struct speedups *s);

/* limits.c. Each returns ns: per pair, per allocation, per hash; a
 * wake-all fills latency (ns from the wake call to the last waiter running)
 * for each of rounds rounds. */
double limit_lock_pair(long n);
double limit_malloc_free(long n, unsigned size);
double limit_hash8(long n);
/* The speed-up of W1's primitives on two threads over one, with nothing
 * shared: the most W3 can reach. n calls on each thread. */
struct scaling limit_parallel(long n);
/* The same loop, n calls on each of 1 or 2 threads, untimed: for perf. */
void limit_own_calls(long n, int threads);
/* The same primitives, but the lock and the fields it guards are on one of
 * 16 lines shared by both threads, picked by the key's hash: what any
 * singleflight with one shared map pays to publish a flight. */
struct scaling limit_shared_line(long n);
void limit_shared_calls(long n, int threads);
void limit_futex_wake_all(int rounds, struct figure *latency);
void limit_cond_broadcast(int rounds, struct figure *latency);

#endif /* BENCH_H */
