/*
 * redis_server.h - a private redis-server for one test: on a Unix socket
 * in a folder of its own (no TCP port), persistence off, a password, and
 * optionally an ACL user limited to one key prefix; stopped by its pid.
 */
#ifndef SC_TESTS_REDIS_SERVER_H
#define SC_TESTS_REDIS_SERVER_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <sys/types.h>

struct redis_server {
    char dir[64];       /* the folder: socket, ACL file, log */
    char socket[96];    /* dir/redis.sock */
    char password[40];  /* of the fleet's user */
    char admin[40];     /* of the admin user, for the test's own commands */
    const char *user;   /* "fleet" with an ACL, else NULL (default user) */
    const char *prefix; /* the ACL's key and channel prefix */
    pid_t pid;          /* 0: not running */
};

/* Starts a server. prefix NULL: requirepass only (default user, password);
 * else an ACL: user "fleet" may run only the protocol's commands, on keys
 * and channels starting with prefix; user "admin" may do anything.
 * Returns 0, or -1 with a message on stderr. */
int redis_start(struct redis_server *s, const char *prefix);
/* Stops it (SIGTERM, then SIGKILL after 5 s) and removes its folder. */
void redis_stop(struct redis_server *s);
/* SIGKILL, and waits for it: the folder stays, for redis_restart. */
void redis_kill(struct redis_server *s);
/* Starts it again on the same socket, with the same credentials. */
int redis_restart(struct redis_server *s);
/* A connection as admin; NULL with a message on failure. */
redisContext *redis_admin(const struct redis_server *s);
/* One command as admin (printf-like, hiredis's format): its reply, which
 * the caller frees, or NULL. */
redisReply *redis_run(const struct redis_server *s, const char *fmt, ...);

#endif /* SC_TESTS_REDIS_SERVER_H */
