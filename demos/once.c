/*
 * once - the seed article's demo. Five threads ask for key "once" at the
 * same moment; fn takes a second and returns a random 16-hex-digit id.
 * fn runs once, so all five print the same id, after one second, not five.
 *
 *   build/demos/once
 *   build/demos/once --help
 *
 * Exits 1 unless fn ran once and all five printed the same id; 2 on any
 * argument but --help (it takes none: the article's demo is fixed).
 */
#define _GNU_SOURCE /* getrandom */

#include "sharedcalls.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

enum { ROUND = 5 };

struct demo {
    sc_group *g;
    pthread_barrier_t start;
    pthread_mutex_t mu;
    int runs;            /* how many times fn ran: once, if the kit works */
    char ids[ROUND][17]; /* one buffer per run of fn */
};

/* The slow fetch: a second of "database", then a new random id. */
static int fetch_id(void *arg, void **val)
{
    struct demo *d = arg;
    nanosleep(&(struct timespec){.tv_sec = 1}, NULL);
    uint64_t r;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
        return EIO;
    pthread_mutex_lock(&d->mu);
    char *id = d->ids[d->runs++];
    pthread_mutex_unlock(&d->mu);
    snprintf(id, sizeof d->ids[0], "%016llx", (unsigned long long)r);
    *val = id;
    return 0;
}

struct caller {
    struct demo *d;
    char id[17]; /* what this caller got */
};

static void *ask(void *arg)
{
    struct caller *c = arg;
    void *val;
    pthread_barrier_wait(&c->d->start); /* all five at the same time */
    int rc = sc_do(c->d->g, "once", fetch_id, c->d, &val);
    if (rc != 0) {
        fprintf(stderr, "sc_do: %s\n", strerror(rc < 0 ? -rc : rc));
        return NULL;
    }
    snprintf(c->id, sizeof c->id, "%s", (const char *)val);
    puts(c->id);
    return NULL;
}

static const char usage[] =
    "usage: once\n"
    "  Five threads ask for one key at once; fn takes a second and runs "
    "once.\n"
    "  It takes no options but --help.\n";

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") != 0) {
            /* Say what was refused: "once --threads 3" must not just run. */
            fprintf(stderr,
                    "once: unknown argument '%s': once takes no options but "
                    "--help\n",
                    argv[i]);
            return 2;
        }
    }
    if (argc > 1) {
        fputs(usage, stdout);
        return 0;
    }
    struct demo d = {.g = sc_new()};
    if (d.g == NULL) {
        perror("sc_new");
        return 1;
    }
    pthread_barrier_init(&d.start, NULL, ROUND);
    pthread_mutex_init(&d.mu, NULL);
    struct caller c[ROUND] = {0};
    pthread_t t[ROUND];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < ROUND; i++) {
        c[i].d = &d;
        pthread_create(&t[i], NULL, ask, &c[i]);
    }
    int same = 0;
    for (int i = 0; i < ROUND; i++) {
        pthread_join(t[i], NULL);
        same += c[i].id[0] != '\0' && strcmp(c[i].id, c[0].id) == 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) +
                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("fn ran %d time(s) for %d callers; %d got the same id; %.2f s\n",
           d.runs, ROUND, same, secs);
    pthread_mutex_destroy(&d.mu);
    pthread_barrier_destroy(&d.start);
    int rc = sc_free(d.g);
    return d.runs == 1 && same == ROUND && rc == 0 ? 0 : 1;
}
