/*
 * server.c - the redis mode's server: a private redis-server that the
 * demo starts and stops, or a check of an existing one. Only a Unix
 * socket, never a TCP port: the fleet is on this machine, and nothing
 * else should reach its server.
 */
#define _GNU_SOURCE /* getrandom */

#include "stampede.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const files[] = {"redis.sock", "redis.conf", "redis.log",
                                    NULL};

static void remove_folder(const struct st_server *s)
{
    char path[sizeof s->dir + 16];
    for (int i = 0; files[i] != NULL; i++) {
        snprintf(path, sizeof path, "%s/%s", s->dir, files[i]);
        unlink(path);
    }
    rmdir(s->dir);
}

redisContext *st_redis_connect(const char *path, const char *password,
                               int timeout_ms, const char **why)
{
    struct timeval limit = {timeout_ms / 1000, (timeout_ms % 1000) * 1000L};
    redisContext *c = redisConnectUnixWithTimeout(path, limit);
    if (c == NULL || c->err != 0) {
        *why = c != NULL ? "cannot connect" : "out of memory";
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, limit);
    redisReply *r = password != NULL ? redisCommand(c, "AUTH %s", password)
                                     : redisCommand(c, "PING");
    *why = r == NULL                      ? "no answer"
           : r->type == REDIS_REPLY_ERROR ? "refused: the password?"
                                          : NULL;
    if (r != NULL)
        freeReplyObject(r);
    if (*why != NULL) {
        redisFree(c);
        return NULL;
    }
    return c;
}

int st_redis_ping(const char *path, const char *password, bool quiet)
{
    const char *why = NULL;
    redisContext *c = st_redis_connect(path, password, 5000, &why);
    if (c == NULL && !quiet)
        fprintf(stderr, "stampede: redis on %s: %s\n", path, why);
    redisFree(c);
    return c != NULL ? 0 : -1;
}

long st_redis_forget(const char *path, const char *password, const char *prefix)
{
    const char *why = NULL;
    redisContext *c = st_redis_connect(path, password, 5000, &why);
    if (c == NULL)
        return -1;
    char match[64];
    snprintf(match, sizeof match, "%s*", prefix);
    long gone = 0;
    char cursor[32] = "0";
    do {
        redisReply *r =
            redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, match);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r != NULL)
                freeReplyObject(r);
            gone = -1;
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        if (keys->elements > 0) {
            const char **argv = malloc((keys->elements + 1) * sizeof *argv);
            size_t *lens = malloc((keys->elements + 1) * sizeof *lens);
            if (argv != NULL && lens != NULL) {
                argv[0] = "UNLINK", lens[0] = 6;
                for (size_t i = 0; i < keys->elements; i++)
                    argv[i + 1] = keys->element[i]->str,
                             lens[i + 1] = keys->element[i]->len;
                redisReply *d =
                    redisCommandArgv(c, (int)keys->elements + 1, argv, lens);
                if (d != NULL && d->type == REDIS_REPLY_INTEGER)
                    gone += d->integer;
                if (d != NULL)
                    freeReplyObject(d);
            }
            free(argv);
            free(lens);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(c);
    return gone;
}

static void random_word(char *out, size_t n)
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        long long t = st_now_ns() ^ (long long)getpid();
        memcpy(r, &t, 8);
        memcpy(r + 8, &t, 8);
    }
    for (size_t i = 0; i < sizeof r && 2 * i + 2 < n; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* The settings, in a file only this user can read: the password is not
 * on redis-server's command line, which any user's ps shows. */
static int write_config(const struct st_server *s, char *conf, size_t n)
{
    snprintf(conf, n, "%s/redis.conf", s->dir);
    int fd = open(conf, O_WRONLY | O_CREAT | O_EXCL, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fprintf(f,
            "port 0\n" /* no TCP at all: the socket only */
            "unixsocket %s\n"
            "unixsocketperm 700\n"
            "save \"\"\n" /* persistence off */
            "appendonly no\n"
            "dir %s\n"
            "logfile %s/redis.log\n"
            "requirepass %s\n",
            s->socket, s->dir, s->dir, s->password);
    return fclose(f);
}

/* Up when it answers, within 10 s. */
static int wait_up(struct st_server *s)
{
    for (int i = 0; i < 1000; i++) {
        if (st_redis_ping(s->socket, s->password, true) == 0)
            return 0;
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            fprintf(stderr, "stampede: redis-server did not start\n");
            return -1;
        }
        nanosleep(&(struct timespec){0, 10000000L}, NULL);
    }
    fprintf(stderr, "stampede: redis-server: no answer on %s within 10 s\n",
            s->socket);
    return -1;
}

int st_server_start(struct st_server *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/stampede-redis.XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        perror("stampede: mkdtemp");
        return -1;
    }
    snprintf(s->socket, sizeof s->socket, "%s/redis.sock", s->dir);
    random_word(s->password, sizeof s->password);
    char conf[sizeof s->dir + 16];
    if (write_config(s, conf, sizeof conf) != 0) {
        perror("stampede: the redis-server's settings");
        st_server_stop(s);
        return -1;
    }
    pid_t parent = getpid();
    fflush(NULL);
    s->pid = fork();
    if (s->pid < 0) {
        perror("stampede: fork");
        s->pid = 0;
        st_server_stop(s);
        return -1;
    }
    if (s->pid == 0) {
        /* If the demo dies, its server dies too; a process group of its
         * own keeps a terminal's ^C to the demo, which stops it in turn. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0);
        execlp("redis-server", "redis-server", conf, (char *)NULL);
        perror("stampede: redis-server");
        _exit(127);
    }
    if (wait_up(s) != 0) {
        st_server_stop(s);
        return -1;
    }
    return 0;
}

void st_server_stop(struct st_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        bool gone = false;
        for (int i = 0; i < 500 && !gone; i++) {
            gone = waitpid(s->pid, NULL, WNOHANG) != 0;
            if (!gone)
                nanosleep(&(struct timespec){0, 10000000L}, NULL);
        }
        if (!gone) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
        }
        s->pid = 0;
    }
    if (s->dir[0] != '\0')
        remove_folder(s);
    s->dir[0] = '\0';
}
