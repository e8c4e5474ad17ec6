/*
 * redis_server.c - see redis_server.h.
 */
#define _GNU_SOURCE

#include "redis_server.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void random_word(char *out, size_t n)
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        memset(r, 0x5a, sizeof r);
    for (size_t i = 0; i < sizeof r && 2 * i + 2 < n; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static int write_acl(const struct redis_server *s)
{
    char path[128];
    snprintf(path, sizeof path, "%s/users.acl", s->dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    /* The protocol's commands, and those its scripts call. */
    fprintf(f,
            "user default off\n"
            "user admin on >%s ~* &* +@all\n"
            "user fleet on >%s ~%s* &%s* -@all +auth +ping +eval +get "
            "+set +incr +del +pttl +time +publish +subscribe "
            "+unsubscribe\n",
            s->admin, s->password, s->prefix, s->prefix);
    return fclose(f);
}

redisContext *redis_admin(const struct redis_server *s)
{
    redisContext *c =
        redisConnectUnixWithTimeout(s->socket, (struct timeval){2, 0});
    if (c == NULL || c->err != 0) {
        if (c != NULL)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, (struct timeval){5, 0});
    redisReply *r = s->user != NULL ? redisCommand(c, "AUTH admin %s", s->admin)
                                    : redisCommand(c, "AUTH %s", s->password);
    bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (r != NULL)
        freeReplyObject(r);
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

redisReply *redis_run(const struct redis_server *s, const char *fmt, ...)
{
    redisContext *c = redis_admin(s);
    if (c == NULL)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

static int spawn(struct redis_server *s)
{
    char log[128], acl[128];
    snprintf(log, sizeof log, "%s/redis.log", s->dir);
    snprintf(acl, sizeof acl, "%s/users.acl", s->dir);
    const char *argv[32];
    int n = 0;
    argv[n++] = "redis-server";
    argv[n++] = "--port", argv[n++] = "0"; /* no TCP: the socket only */
    argv[n++] = "--unixsocket", argv[n++] = s->socket;
    argv[n++] = "--unixsocketperm", argv[n++] = "700";
    argv[n++] = "--save", argv[n++] = "";
    argv[n++] = "--appendonly", argv[n++] = "no";
    argv[n++] = "--dir", argv[n++] = s->dir;
    argv[n++] = "--logfile", argv[n++] = log;
    if (s->user != NULL)
        argv[n++] = "--aclfile", argv[n++] = acl;
    else
        argv[n++] = "--requirepass", argv[n++] = s->password;
    argv[n] = NULL;
    fflush(NULL);
    s->pid = fork();
    if (s->pid < 0) {
        perror("redis_server: fork");
        s->pid = 0;
        return -1;
    }
    if (s->pid == 0) {
        /* If the test dies (a crash, a timeout's kill), so does its server:
         * nothing is left running. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execvp("redis-server", (char **)argv);
        perror("redis_server: redis-server");
        _exit(127);
    }
    /* Up when it answers, within 10 s. */
    for (int i = 0; i < 1000; i++) {
        redisContext *c = redis_admin(s);
        if (c != NULL) {
            redisFree(c);
            return 0;
        }
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            fprintf(stderr, "redis_server: redis-server exited; see %s\n", log);
            s->pid = 0;
            return -1;
        }
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    fprintf(stderr, "redis_server: no answer on %s within 10 s\n", s->socket);
    redis_kill(s);
    return -1;
}

int redis_start(struct redis_server *s, const char *prefix)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/sharedcalls-redis-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        perror("redis_server: mkdtemp");
        return -1;
    }
    snprintf(s->socket, sizeof s->socket, "%s/redis.sock", s->dir);
    random_word(s->password, sizeof s->password);
    random_word(s->admin, sizeof s->admin);
    s->prefix = prefix;
    s->user = prefix != NULL ? "fleet" : NULL;
    if (prefix != NULL && write_acl(s) != 0) {
        perror("redis_server: the ACL file");
        return -1;
    }
    return spawn(s);
}

void redis_kill(struct redis_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

int redis_restart(struct redis_server *s)
{
    redis_kill(s);
    unlink(s->socket);
    return spawn(s);
}

void redis_stop(struct redis_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        for (int i = 0; i < 500 && waitpid(s->pid, NULL, WNOHANG) == 0; i++)
            nanosleep(&(struct timespec){0, 10000000}, NULL);
        if (waitpid(s->pid, NULL, WNOHANG) == 0)
            redis_kill(s);
        s->pid = 0;
    }
    const char *files[] = {"redis.sock", "users.acl", "redis.log", NULL};
    char path[160];
    for (int i = 0; files[i] != NULL; i++) {
        snprintf(path, sizeof path, "%s/%s", s->dir, files[i]);
        unlink(path);
    }
    rmdir(s->dir);
}
