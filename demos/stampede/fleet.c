/*
 * fleet.c - the processes of a run: forked, each with its workers and a
 * cache of its own, held at one gate so that they all miss the cold cache
 * at once, stopped together, and added up. With one process the workers
 * run in this one, on a thread: no fork.
 *
 * What must be the fleet's (the start, the end, the database's query
 * count, the queries for hot keys) lives in memory shared before the
 * fork; each process writes its own results into its own slot there.
 */
#define _GNU_SOURCE /* getrandom */

#include "fleet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
    READY_LIMIT_S = 60, /* for a process to open its connections */
    END_LIMIT_S = 30    /* for one to end once told: then SIGKILL */
};

void st_fleet_ready(struct st_fleet *f, int index, int rc)
{
    pthread_mutex_lock(&f->gate_lock);
    f->slots[index].rc = rc;
    f->ready++;
    pthread_cond_broadcast(&f->gate);
    pthread_mutex_unlock(&f->gate_lock);
}

void st_fleet_wait_open(struct st_fleet *f)
{
    pthread_mutex_lock(&f->gate_lock);
    while (!f->open)
        pthread_cond_wait(&f->gate, &f->gate_lock);
    pthread_mutex_unlock(&f->gate_lock);
}

void st_result_add(struct st_result *out, const struct st_result *r)
{
    out->requests += r->requests;
    out->hits += r->hits;
    out->shared += r->shared;
    out->remote += r->remote;
    out->copied += r->copied;
    out->queries += r->queries;
    out->timed_out += r->timed_out;
    out->waited_out += r->waited_out;
    out->early += r->early;
    out->not_found += r->not_found;
    out->errors += r->errors;
    out->db_fails += r->db_fails;
    out->wrong += r->wrong;
    out->hot_fills += r->hot_fills;
    out->over_once += r->over_once;
    out->takeovers += r->takeovers;
    out->fallbacks += r->fallbacks;
    out->stale += r->stale;
    out->max_ns = r->max_ns > out->max_ns ? r->max_ns : out->max_ns;
}

double st_per_expiry(const struct st_result *r)
{
    if (r->hot_fills == 0)
        return 0.0;
    return (double)r->hot_queries * (r->procs > 1 ? r->procs : 1) /
           (double)r->hot_fills;
}

static struct st_fleet *fleet_map(void)
{
    struct st_fleet *f = mmap(NULL, sizeof *f, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (f == MAP_FAILED)
        return NULL;
    pthread_mutexattr_t ma;
    pthread_condattr_t ca;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&f->gate_lock, &ma);
    pthread_cond_init(&f->gate, &ca);
    pthread_mutexattr_destroy(&ma);
    pthread_condattr_destroy(&ca);
    /* A run's own keys: runs against one server never meet. */
    unsigned char r[8] = {0};
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        memcpy(r, &(long long){st_now_ns()}, sizeof r);
    snprintf(f->prefix, sizeof f->prefix,
             "stampede:%02x%02x%02x%02x%02x%02x%02x%02x:", r[0], r[1], r[2],
             r[3], r[4], r[5], r[6], r[7]);
    return f;
}

/* The gate is not destroyed: pthread_cond_destroy would wait for ever
 * for a process killed in its wait. Unmapping is all Linux needs. */
static void fleet_unmap(struct st_fleet *f)
{
    munmap(f, sizeof *f);
}

/* The processes of a run, as this one sees them. */
struct procs {
    const struct st_config *cfg;
    enum st_mode mode;
    struct st_fleet *f;
    int n;                   /* started */
    pid_t pid[ST_MAX_PROCS]; /* 0: ended and waited for */
    pthread_t thread;        /* one process: the workers' process is this one */
    int status[ST_MAX_PROCS];
};

static void *run_here(void *arg)
{
    const struct procs *ps = arg;
    st_process(ps->cfg, ps->mode, ps->f, 0);
    return NULL;
}

static int start(struct procs *ps)
{
    int want = ps->cfg->procs > 1 ? ps->cfg->procs : 1;
    if (want == 1) {
        if (pthread_create(&ps->thread, NULL, run_here, ps) != 0)
            return -EAGAIN;
        ps->n = 1;
        return 0;
    }
    pid_t parent = getpid();
    fflush(NULL); /* or the children would print this one's buffer too */
    for (; ps->n < want; ps->n++) {
        pid_t pid = fork();
        if (pid < 0)
            return -errno;
        if (pid == 0) {
            /* If this process dies, its fleet dies with it. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(1);
            _exit(st_process(ps->cfg, ps->mode, ps->f, ps->n) == 0 ? 0 : 1);
        }
        ps->pid[ps->n] = pid;
    }
    return 0;
}

/* Whether process i has ended (and then it has been waited for). */
static bool ended(struct procs *ps, int i)
{
    if (ps->pid[i] == 0)
        return true;
    if (waitpid(ps->pid[i], &ps->status[i], WNOHANG) != ps->pid[i])
        return false;
    ps->pid[i] = 0;
    return true;
}

/* The first process (of several) that ended before its time, or -1. */
static int died(struct procs *ps)
{
    if (ps->cfg->procs <= 1)
        return -1;
    for (int i = 0; i < ps->n; i++)
        if (ended(ps, i))
            return i;
    return -1;
}

static bool interrupted(const struct st_config *cfg)
{
    return cfg->interrupted != NULL && *cfg->interrupted;
}

/* Waits until every process started is ready. Returns 0, or the first
 * failure. */
static int wait_ready(struct procs *ps)
{
    struct st_fleet *f = ps->f;
    long long limit = st_now_ns() + READY_LIMIT_S * 1000000000LL;
    int rc = 0;
    pthread_mutex_lock(&f->gate_lock);
    while (f->ready < ps->n && rc == 0) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_nsec += 100000000L;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&f->gate, &f->gate_lock, &t);
        if (f->ready < ps->n && died(ps) >= 0)
            rc = -ECHILD;
        else if (interrupted(ps->cfg))
            rc = -EINTR;
        else if (st_now_ns() > limit)
            rc = -ETIMEDOUT;
    }
    for (int i = 0; i < ps->n && rc == 0; i++)
        rc = f->slots[i].rc;
    pthread_mutex_unlock(&f->gate_lock);
    return rc;
}

/* The progress line's room: the width of the terminal it goes to, less
 * its last column (writing there wraps on some terminals), so that the
 * line is redrawn in place instead of scrolling; 79 if unknown. */
static int progress_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
        return ws.ws_col - 1;
    return 79;
}

static void progress(const struct procs *ps, double secs, int width)
{
    long requests = 0;
    for (int i = 0; i < ps->n; i++)
        requests +=
            atomic_load_explicit(&ps->f->slots[i].done, memory_order_relaxed);
    long queries = atomic_load(&ps->f->db_queries);
    const char *mode = st_mode_names[ps->mode];
    char line[128];
    int len = snprintf(line, sizeof line,
                       "  %-12s %5.1f s  %10ld requests  %8ld queries", mode,
                       secs, requests, queries);
    if (len > width) /* a narrow terminal: the short form */
        len = snprintf(line, sizeof line, "%s %.1fs %ld req %ld q", mode, secs,
                       requests, queries);
    if (len > width) /* and cut, if even that is too wide */
        line[width] = '\0';
    fprintf(stderr, "\r%s", line);
}

/* Waits for the run's end (its time, or its requests), showing progress.
 * Returns 0, or why it ended early. */
static int watch(struct procs *ps, long long t0)
{
    const struct st_config *cfg = ps->cfg;
    int rc = 0, width = progress_width();
    for (;;) {
        nanosleep(&(struct timespec){0, 100000000L}, NULL);
        double secs = (double)(st_now_ns() - t0) / 1e9;
        if (cfg->progress) /* the width anew: the terminal may be resized */
            progress(ps, secs, width = progress_width());
        if (cfg->requests > 0 ? atomic_load(&ps->f->issued) >= cfg->requests
                              : secs >= cfg->seconds)
            break;
        if (interrupted(cfg)) {
            rc = -EINTR;
            break;
        }
        int i = died(ps);
        if (i >= 0) {
            fprintf(stderr, "\nstampede: process %d ended during the run\n", i);
            rc = -ECHILD;
            break;
        }
    }
    if (cfg->progress)
        fprintf(stderr, "\r%*s\r", width, "");
    return rc;
}

/* Waits for every process; one that does not end within END_LIMIT_S of
 * being told is killed. Returns 0, or -ECHILD if one failed. */
static int wait_all(struct procs *ps)
{
    if (ps->cfg->procs <= 1) {
        if (ps->n == 1)
            pthread_join(ps->thread, NULL);
        return 0;
    }
    long long limit = st_now_ns() + END_LIMIT_S * 1000000000LL;
    int rc = 0;
    for (int i = 0; i < ps->n; i++) {
        while (!ended(ps, i) && st_now_ns() < limit)
            nanosleep(&(struct timespec){0, 10000000L}, NULL);
        if (ps->pid[i] != 0) {
            fprintf(stderr, "stampede: process %d did not end: killed\n", i);
            kill(ps->pid[i], SIGKILL);
            waitpid(ps->pid[i], &ps->status[i], 0);
            ps->pid[i] = 0;
        }
        int st = ps->status[i];
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "stampede: process %d failed (%s %d)\n", i,
                    WIFEXITED(st) ? "exit status" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            rc = -ECHILD;
        }
    }
    return rc;
}

static long long low_end(int bin)
{
    int log = bin / 8;
    if (log < 3) /* the bins of single nanoseconds */
        return bin;
    return (1LL << log) + ((long long)(bin % 8) << (log - 3));
}

static long long percentile(const long *bins, long total, double p)
{
    long want = (long)((double)total * p), seen = 0;
    for (int b = 0; b < ST_BINS; b++) {
        seen += bins[b];
        if (seen > want)
            return low_end(b);
    }
    return low_end(ST_BINS - 1);
}

/* Adds up the processes' slots, and the fleet's own counts. */
static void total(const struct procs *ps, struct st_result *out)
{
    long bins[ST_BINS] = {0};
    for (int i = 0; i < ps->n; i++) {
        st_result_add(out, &ps->f->slots[i].r);
        for (int b = 0; b < ST_BINS; b++)
            bins[b] += ps->f->slots[i].bins[b];
    }
    out->hot_queries = atomic_load(&ps->f->hot_queries);
    out->p50_ns = percentile(bins, out->requests, 0.50);
    out->p99_ns = percentile(bins, out->requests, 0.99);
}

int st_run(const struct st_config *cfg, enum st_mode mode,
           struct st_result *out)
{
    struct procs ps = {.cfg = cfg, .mode = mode, .f = fleet_map()};
    if (ps.f == NULL)
        return -ENOMEM;
    int rc = start(&ps);
    if (rc == 0)
        rc = wait_ready(&ps);
    /* The gate opens even on a failure: then the workers end at once. */
    if (rc != 0)
        atomic_store(&ps.f->stop, true);
    long long t0 = st_now_ns();
    pthread_mutex_lock(&ps.f->gate_lock);
    ps.f->open = true;
    pthread_cond_broadcast(&ps.f->gate);
    pthread_mutex_unlock(&ps.f->gate_lock);
    if (rc == 0)
        rc = watch(&ps, t0);
    atomic_store(&ps.f->stop, true);
    int ended_rc = wait_all(&ps);
    if (rc == 0)
        rc = ended_rc;
    for (int i = 0; i < ps.n && rc == 0; i++)
        rc = ps.f->slots[i].rc;
    if (rc == 0) {
        *out = (struct st_result){.mode = mode,
                                  .procs = ps.n,
                                  .seconds = (double)(st_now_ns() - t0) / 1e9};
        total(&ps, out);
    }
    if (mode == ST_REDIS && cfg->redis_socket != NULL)
        st_redis_forget(cfg->redis_socket, cfg->redis_password, ps.f->prefix);
    fleet_unmap(ps.f);
    return rc;
}
