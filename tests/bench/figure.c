/*
 * figure.c - the clock the bench reads, and the summaries of what it
 * measured: a figure (repetitions of one measurement) and a sample set
 * (many single timings, for a median and a tail).
 */
#define _GNU_SOURCE

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-quantile (0..1) of n values, which are sorted in place. */
static double quantile_sorting(double *v, long n, double p)
{
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof v[0], by_value);
    return v[(long)(p * (double)(n - 1) + 0.5)];
}

void fig_add(struct figure *f, double v)
{
    if (f->n < REPS_MAX)
        f->v[f->n++] = v;
}

double fig_quantile(const struct figure *f, double p)
{
    double sorted[REPS_MAX];
    memcpy(sorted, f->v, sizeof(double) * (size_t)f->n);
    return quantile_sorting(sorted, f->n, p);
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

void samples_add(struct samples *s, double v)
{
    if (s->n == s->cap) {
        long cap = s->cap > 0 ? 2 * s->cap : 1024;
        double *more = realloc(s->v, sizeof(double) * (size_t)cap);
        if (more == NULL)
            return; /* the sample is lost; n says how many count */
        s->v = more;
        s->cap = cap;
    }
    s->v[s->n++] = v;
}

double samples_quantile(const struct samples *s, double p)
{
    /* sorted in place: the order of the samples means nothing here */
    return quantile_sorting(s->v, s->n, p);
}

void samples_free(struct samples *s)
{
    free(s->v);
    *s = (struct samples){0};
}

struct scaling scaling_of(struct timed one, struct timed two)
{
    double lost = one.lost > two.lost ? one.lost : two.lost;
    return (struct scaling){one.ns / two.ns, two.overlap, lost, two.ns};
}

/* Two cores give at most twice one core's rate: a higher speed-up means
 * the one-thread run was slowed down, or the two-thread run's clock
 * readings missed part of it. */
#define SPEEDUP_MAX 2.0
/* The threads are released together (run_timed) and start within 100 us
 * of each other, against runs of 3 to 300 ms. But the two cores here do
 * not run a loop at one rate: undisturbed runs of the sharing-nothing loop
 * (no thread ever waiting for a core) ended up to 12% apart and overlapped
 * 84 to 99%. So 80%: below it, one thread ran alone for a fifth of the span
 * or more, which is no longer two cores at work, and is what a thread
 * started late or shut out by an unfair lock looks like. Disturbances by
 * the scheduler are caught more finely by LOST_MAX. */
#define OVERLAP_MIN 0.8
/* For the same reason, a run in which a thread spent a tenth of its
 * interval or more waiting for a core (another process had it, or both
 * threads shared one core) measured less than its threads' work. */
#define LOST_MAX 0.1
/* Runs of one repetition at most: a doubtful run is run again twice. */
enum { RUNS_A_REP = 3 };

static void note_doubt(struct speedups *s, struct scaling sc)
{
    size_t used = strlen(s->why);
    /* a reason takes 18 characters at most: room is left for ", ..." */
    if (used + 24 >= sizeof s->why) {
        if (strstr(s->why, "...") == NULL)
            snprintf(s->why + used, sizeof s->why - used, ", ...");
        return; /* the count says how many */
    }
    if (sc.overlap < OVERLAP_MIN)
        snprintf(s->why + used, sizeof s->why - used, "%soverlap %d%%",
                 used > 0 ? ", " : "",
                 (int)(sc.overlap * 100)); /* 79.7% is below 80% */
    else if (sc.lost >= LOST_MAX)
        snprintf(s->why + used, sizeof s->why - used, "%soff core %d%%",
                 used > 0 ? ", " : "", (int)(sc.lost * 100));
    else
        snprintf(s->why + used, sizeof s->why - used, "%sspeed-up %.1f%%",
                 used > 0 ? ", " : "", sc.speedup * 100); /* 200.3% */
}

void speedups_add(struct speedups *s, struct scaling (*run)(void *ctx),
                  void *ctx)
{
    s->reps++;
    for (int i = 0; i < RUNS_A_REP; i++) {
        struct scaling sc = run(ctx);
        s->runs++;
        if (sc.speedup <= SPEEDUP_MAX && sc.overlap >= OVERLAP_MIN &&
            sc.lost < LOST_MAX) {
            fig_add(&s->speedup, sc.speedup);
            fig_add(&s->two_ns, sc.two_ns);
            return;
        }
        s->doubtful++;
        note_doubt(s, sc);
    }
}

bool speedups_trusted(const struct speedups *s)
{
    return s->speedup.n > 0 && 2 * s->speedup.n >= s->reps;
}
