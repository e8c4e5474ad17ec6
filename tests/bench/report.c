/*
 * report.c - the fleet's section as make bench prints it: the calls
 * beside the in-process path and a round trip, the round trips of a
 * flight in each role, the machine, and what makes this run's figures
 * doubtful, if anything does.
 */
#define _GNU_SOURCE

#include "fleet.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { P99_SAMPLES = 1000 }; /* a p99 from fewer rests on too few calls */

static double median(const struct samples *s)
{
    return samples_quantile(s, 0.5);
}

/* A time in us: two decimals under 10, none from 100. */
static const char *us(double ns, char *buf, size_t size)
{
    double v = ns / 1e3;
    snprintf(buf, size, v < 10 ? "%.2f" : v < 100 ? "%.1f" : "%.0f", v);
    return buf;
}

/* "62.4 p99 151 [20000]": median, p99 (from P99_SAMPLES samples, else
 * "-") and the samples. */
static const char *timing(const struct samples *s, char *buf, size_t size)
{
    char m[16], p[16] = "-";
    us(median(s), m, sizeof m);
    if (s->n >= P99_SAMPLES)
        us(samples_quantile(s, 0.99), p, sizeof p);
    snprintf(buf, size, "%s p99 %s [%ld]", m, p, s->n);
    return buf;
}

/* "462 [195-2496] [93]": median [min-max] [samples]. */
static const char *spread(const struct samples *s, char *buf, size_t size)
{
    char m[16], lo[16], hi[16];
    snprintf(buf, size, "%s [%s-%s] [%ld]", us(median(s), m, sizeof m),
             us(samples_quantile(s, 0), lo, sizeof lo),
             us(samples_quantile(s, 1), hi, sizeof hi), s->n);
    return buf;
}

/* A count: whole, or with two decimals. */
static const char *count(double v, char *buf, size_t size)
{
    snprintf(buf, size, v == floor(v) ? "%.0f" : "%.2f", v);
    return buf;
}

/* A row of calls: in-process (NULL: none), the fleet, what the fleet
 * adds, the PING timed beside, the fleet's ratio to it, and the round
 * trips counted. */
static void call_row(const char *label, const struct samples *local,
                     const char *fleet, double fleet_median, double ping,
                     double trips)
{
    char in[64] = "-", added[16] = "-", limit[16], t[16];
    if (local != NULL) {
        timing(local, in, sizeof in);
        us(fleet_median - median(local), added, sizeof added);
    }
    printf("%-30s %-22s %-22s %7s %6s %5.1fx  %s\n", label, in, fleet, added,
           us(ping, limit, sizeof limit), fleet_median / ping,
           count(trips, t, sizeof t));
}

static void print_calls(const struct measured *m)
{
    printf("sharedcalls bench, the fleet: libsharedcalls-redis on a private "
           "redis-server's Unix socket\n"
           "each call timed on its own (a clock read included), fn returns "
           "8 bytes; median p99 [samples];\n"
           "a follower: from its leader's fn returning to its own return, "
           "median [min-max] [samples];\n"
           "PING: a round trip timed in turn with the fleet's calls, ratio: "
           "the fleet's to it\n\n");
    printf("%-30s %-22s %-22s %7s %6s %6s  %s\n", "", "in-process sc_do",
           "fleet scr_do", "added", "PING", "ratio", "round trips");
    static const char *const label[2] = {"a call, new key each, us",
                                         "a call, one key, us"};
    char cell[64];
    for (int i = 0; i < 2; i++)
        call_row(label[i], &m->local[i],
                 timing(&m->fleet[i], cell, sizeof cell), median(&m->fleet[i]),
                 median(&m->ping[i]), m->trips_a_call[i]);
    const struct tally *f = &m->run.follower;
    call_row("a follower, us", NULL, spread(&m->run.wake, cell, sizeof cell),
             median(&m->run.wake),
             (median(&m->ping[0]) + median(&m->ping[1])) / 2,
             f->n > 0 ? (double)trips_commands(f->sum) / f->n : 0);
}

/* One role's count of a kind: "2", or "2.33 [2-3]" (mean [min-max]). */
static const char *role_cell(const struct tally *t, int k, char *buf,
                             size_t size)
{
    if (t->n == 0)
        snprintf(buf, size, "-");
    else if (t->min[k] == t->max[k])
        snprintf(buf, size, "%ld", t->min[k]);
    else
        snprintf(buf, size, "%.2f [%ld-%ld]", (double)t->sum[k] / t->n,
                 t->min[k], t->max[k]);
    return buf;
}

/* A role's round trips in all: whole when every flight took the same. */
static const char *role_total(const struct tally *t, char *buf, size_t size)
{
    if (t->n == 0)
        return "-";
    return count((double)trips_commands(t->sum) / t->n, buf, size);
}

static void trips_row(const struct fleet_run *r, int k)
{
    char a[32], b[32];
    bool command = k < TRIP_COMMANDS;
    if (r->leader.max[k] == 0 && r->follower.max[k] == 0 &&
        (!command || r->seen[k] == 0))
        return; /* nothing of this kind anywhere */
    printf("  %-28s %-22s %s", trip_name[k],
           role_cell(&r->leader, k, a, sizeof a),
           role_cell(&r->follower, k, b, sizeof b));
    if (command)
        printf("%*s%ld, %ld", 23 - (int)strlen(b), "", r->counted[k],
               r->seen[k]);
    putchar('\n');
}

static void print_trips(const struct measured *m)
{
    const struct fleet_run *r = &m->run;
    printf("\nround trips a flight, counted in each process: %d flights of "
           "%d processes, one leads and %d follow\n",
           m->flights, m->procs, m->procs - 1);
    printf("%-30s %-22s %-22s %s\n", "", "the leader's process",
           "a follower's process", "all flights: counted, server saw");
    for (int k = 0; k < TRIP_COMMANDS; k++)
        trips_row(r, k);
    char a[32], b[32];
    printf("  %-28s %-22s %-22s %ld, %ld\n", "round trips in all",
           role_total(&r->leader, a, sizeof a),
           role_total(&r->follower, b, sizeof b), trips_commands(r->counted),
           trips_commands(r->seen));
    for (int k = TRIP_COMMANDS; k < TRIPS; k++)
        trips_row(r, k);
}

static void print_machine(const struct measured *m)
{
    char a[64], b[64];
    printf("\nthe machine: median p99 [samples], us\n");
    printf("  %-42s %s\n", "Redis PING on the socket, beside new keys",
           timing(&m->ping[0], a, sizeof a));
    printf("  %-42s %s\n", "Redis PING on the socket, beside one key",
           timing(&m->ping[1], b, sizeof b));
    printf("  %-42s %s\n", "Redis EVAL of \"return 1\"",
           timing(&m->eval, a, sizeof a));
    printf("  %-42s %.0f%% of %ld\n", "CPUs other programs took meanwhile",
           100 * m->others, sysconf(_SC_NPROCESSORS_ONLN));
}

static bool agree(const struct fleet_run *r)
{
    if (!r->monitored)
        return false;
    for (int k = 0; k < TRIP_COMMANDS; k++)
        if (r->counted[k] != r->seen[k])
            return false;
    return true;
}

/* What makes this run's figures doubtful, each on a line of its own. */
static void print_doubts(const struct measured *m)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    double first = median(&m->ping[0]), second = median(&m->ping[1]);
    double moved = fabs(second - first) / first;
    double p10 = samples_quantile(&m->ping[0], 0.1);
    double p90 = samples_quantile(&m->ping[0], 0.9);
    char a[16], b[16];
    int n = 0; /* the doubts printed */
    if (m->others > 0.1)
        n += printf("  ! a busy host: other programs took %.0f%% of the CPUs "
                    "meanwhile; the times move from run to run\n",
                    100 * m->others) > 0;
    if (moved > 0.25)
        n += printf("  ! PING moved from %s to %s us between the two rows: "
                    "the host's speed changed\n",
                    us(first, a, sizeof a), us(second, b, sizeof b)) > 0;
    if (p90 - p10 > first)
        n += printf("  ! PING is not steady: p10 %s, p90 %s us\n",
                    us(p10, a, sizeof a), us(p90, b, sizeof b)) > 0;
    if (m->procs > cpus)
        n += printf("  ! %d processes on %ld CPUs: a follower's wake-up "
                    "waits for a CPU too\n",
                    m->procs, cpus) > 0;
    if (m->calls < P99_SAMPLES)
        n += printf("  ! fewer than %d calls a row: no p99\n", P99_SAMPLES) > 0;
    if (m->failed > 0)
        n += printf("  ! %ld calls failed or fell back: those times are not "
                    "the fleet's\n",
                    m->failed) > 0;
    if (m->run.odd > 0 || m->run.late > 0)
        n += printf("  ! %d of %d flights not as planned, %d with followers "
                    "late: the counts are not one flight's\n",
                    m->run.odd, m->flights, m->run.late) > 0;
    if (!agree(&m->run))
        n += printf("  ! %s\n",
                    m->run.monitored
                        ? "the server saw other commands than the processes "
                          "counted"
                        : "the server's count (MONITOR) could not be read") > 0;
    if (n == 0)
        printf("  nothing to doubt: PING within %.0f%% between the rows, "
               "steady, every flight as planned,\n  and the server saw "
               "what the processes counted\n",
               100 * moved);
}

void report(const struct measured *m)
{
    print_calls(m);
    print_trips(m);
    print_machine(m);
    print_doubts(m);
}
