/*
 * conn.c - connections to Redis (hiredis's synchronous API), each round
 * trip bounded by io_timeout_ms, and a subscription's messages read with
 * a deadline. See fleet.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "fleet.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>

ms_t scr__now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (ms_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* What a broken context means: no answer in time (a stalled server), or
 * a connection that is gone. */
static int io_error(const redisContext *c)
{
    return c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)
               ? -ETIMEDOUT
               : -EIO;
}

/* An error reply as an errno: NOPERM and WRONGPASS are the ACL's refusal. */
static int reply_error(const redisReply *r)
{
    if (strncmp(r->str, "NOPERM", 6) == 0 ||
        strncmp(r->str, "WRONGPASS", 9) == 0 ||
        strncmp(r->str, "NOAUTH", 6) == 0)
        return -EACCES;
    return -EPROTO;
}

/*
 * hiredis writes with write(2): to a server that has gone, that raises
 * SIGPIPE, whose default action would kill the caller's whole process. So
 * SIGPIPE is blocked in this thread for the command, and one it raised is
 * taken back before it is unblocked (one already pending is left alone).
 */
static redisReply *command_without_sigpipe(redisContext *c, int argc,
                                           const char **argv,
                                           const size_t *lens)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    if (!was_pending && sigpending(&pending) == 0 &&
        sigismember(&pending, SIGPIPE) == 1)
        sigtimedwait(&pipe_set, NULL, &(struct timespec){0, 0});
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

int scr__command(redisContext *c, int argc, const char **argv,
                 const size_t *lens, redisReply **reply)
{
    redisReply *r = command_without_sigpipe(c, argc, argv, lens);
    if (r == NULL)
        return io_error(c);
    if (r->type == REDIS_REPLY_ERROR) {
        int rc = reply_error(r);
        freeReplyObject(r);
        return rc;
    }
    *reply = r;
    return 0;
}

int scr__connect(const scr_options *o, redisContext **out)
{
    struct timeval tv = {(time_t)(o->io_timeout_ms / 1000),
                         (suseconds_t)(o->io_timeout_ms % 1000) * 1000};
    redisContext *c = o->unix_socket != NULL
                          ? redisConnectUnixWithTimeout(o->unix_socket, tv)
                          : redisConnectWithTimeout(o->host, o->port, tv);
    if (c == NULL)
        return -ENOMEM;
    int rc = c->err != 0 ? -EIO : 0;
    if (rc == 0 && redisSetTimeout(c, tv) != REDIS_OK)
        rc = -EIO;
    if (rc == 0 && o->password != NULL) {
        const char *argv[3] = {"AUTH", o->user, o->password};
        int argc = o->user != NULL ? 3 : 2;
        if (o->user == NULL)
            argv[1] = o->password;
        redisReply *r;
        rc = scr__command(c, argc, argv, NULL, &r);
        if (rc == 0)
            freeReplyObject(r);
        else if (rc == -EPROTO) /* e.g. a password for a server with none */
            rc = -EACCES;
    }
    if (rc != 0) {
        redisFree(c);
        return rc;
    }
    *out = c;
    return 0;
}

int scr__next_message(redisContext *c, ms_t deadline, redisReply **msg)
{
    for (;;) {
        void *r = NULL;
        if (redisGetReplyFromReader(c, &r) != REDIS_OK)
            return -EIO;
        if (r != NULL) {
            *msg = r;
            return 0;
        }
        ms_t left = deadline - scr__now();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n < 0 && errno != EINTR)
            return -EIO;
        if (n > 0 && redisBufferRead(c) != REDIS_OK)
            return -EIO; /* the server closed the connection */
    }
}

int scr__conn_get(scr_group *g, redisContext **out, bool *pooled)
{
    pthread_mutex_lock(&g->lock);
    redisContext *c = g->nidle > 0 ? g->idle[--g->nidle] : NULL;
    pthread_mutex_unlock(&g->lock);
    *pooled = c != NULL;
    if (c != NULL) {
        *out = c;
        return 0;
    }
    return scr__connect(&g->opts, out);
}

void scr__conn_put(scr_group *g, redisContext *c)
{
    if (c == NULL)
        return;
    if (c->err == 0) {
        pthread_mutex_lock(&g->lock);
        bool kept = g->nidle < sizeof g->idle / sizeof g->idle[0];
        if (kept)
            g->idle[g->nidle++] = c;
        pthread_mutex_unlock(&g->lock);
        if (kept)
            return;
    }
    redisFree(c);
}
