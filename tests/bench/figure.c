/*
 * figure.c - the clock the bench reads, and the summaries of what it
 * measured: a figure (repetitions of one measurement) and a sample set
 * (many single timings, for a median and a tail).
 */
#define _GNU_SOURCE

#include "bench.h"

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
    return (struct scaling){one.ns / two.ns, two.overlap, two.ns};
}
