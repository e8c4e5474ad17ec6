/*
 * db.c - the users table in a real SQLite file.
 *
 * Every query first sleeps the configured latency, as a round trip to a
 * database server would take: SQLite itself answers a lookup by primary
 * key in microseconds, which would hide the stampede on a fast machine.
 */
#define _POSIX_C_SOURCE 200809L

#include "stampede.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct st_db {
    sqlite3 *conn;
    sqlite3_stmt *get;
    int latency_ms;
    int fail_every;
    atomic_long *queries; /* shared by every connection of the fleet */
};

void st_row_of(int id, struct st_row *out)
{
    memset(out, 0, sizeof *out);
    out->id = id;
    snprintf(out->name, sizeof out->name, "user-%d", id);
    snprintf(out->email, sizeof out->email, "u%d@example.com",
             (int)((unsigned)id * 2654435761U % 1000000U));
}

bool st_row_equal(const struct st_row *a, const struct st_row *b)
{
    return a->id == b->id && strcmp(a->name, b->name) == 0 &&
           strcmp(a->email, b->email) == 0;
}

static int fail(sqlite3 *conn, const char *what)
{
    fprintf(stderr, "stampede: %s: %s\n", what, sqlite3_errmsg(conn));
    return -EIO;
}

/* How many users the table has, or -1 if there is no such table. */
static int count_rows(sqlite3 *conn)
{
    sqlite3_stmt *s;
    int n = -1;
    if (sqlite3_prepare_v2(conn, "SELECT count(*) FROM users", -1, &s, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            n = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
    }
    return n;
}

static int fill(sqlite3 *conn, int rows)
{
    sqlite3_stmt *put;
    if (sqlite3_exec(conn,
                     "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
                     "DROP TABLE IF EXISTS users;"
                     "CREATE TABLE users (id INTEGER PRIMARY KEY,"
                     " name TEXT NOT NULL, email TEXT NOT NULL);"
                     "BEGIN",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(conn, "INSERT INTO users VALUES (?1, ?2, ?3)", -1,
                           &put, NULL) != SQLITE_OK)
        return fail(conn, "creating the table");
    int rc = SQLITE_DONE;
    for (int id = 1; id <= rows && rc == SQLITE_DONE; id++) {
        struct st_row r;
        st_row_of(id, &r);
        sqlite3_bind_int(put, 1, id);
        sqlite3_bind_text(put, 2, r.name, -1, SQLITE_STATIC);
        sqlite3_bind_text(put, 3, r.email, -1, SQLITE_STATIC);
        rc = sqlite3_step(put);
        sqlite3_reset(put);
    }
    sqlite3_finalize(put);
    if (rc != SQLITE_DONE ||
        sqlite3_exec(conn, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return fail(conn, "filling the table");
    return 0;
}

int st_db_prepare(const char *path, int rows)
{
    sqlite3 *conn;
    if (sqlite3_open_v2(path, &conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        NULL) != SQLITE_OK) {
        int rc = fail(conn, path);
        sqlite3_close(conn);
        return rc;
    }
    int rc = count_rows(conn) == rows ? 0 : fill(conn, rows);
    sqlite3_close(conn);
    return rc;
}

struct st_db *st_db_open(const char *path, int latency_ms, int fail_every,
                         atomic_long *queries)
{
    struct st_db *db = calloc(1, sizeof *db);
    if (db == NULL)
        return NULL;
    *db = (struct st_db){NULL, NULL, latency_ms, fail_every, queries};
    if (sqlite3_open_v2(path, &db->conn,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db->conn,
                           "SELECT name, email FROM users WHERE id = ?1", -1,
                           &db->get, NULL) != SQLITE_OK) {
        fail(db->conn, path);
        st_db_close(db);
        return NULL;
    }
    return db;
}

int st_db_get(struct st_db *db, int id, struct st_row *out)
{
    struct timespec rtt = {db->latency_ms / 1000,
                           (long)(db->latency_ms % 1000) * 1000000L};
    nanosleep(&rtt, NULL);
    long n = atomic_fetch_add(db->queries, 1) + 1;
    if (db->fail_every > 0 && n % db->fail_every == 0)
        return EIO; /* as a timed-out connection would */
    sqlite3_bind_int(db->get, 1, id);
    int rc = sqlite3_step(db->get);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        out->id = id;
        snprintf(out->name, sizeof out->name, "%s",
                 (const char *)sqlite3_column_text(db->get, 0));
        snprintf(out->email, sizeof out->email, "%s",
                 (const char *)sqlite3_column_text(db->get, 1));
    }
    sqlite3_reset(db->get);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? ENOENT : EIO;
}

void st_db_close(struct st_db *db)
{
    if (db == NULL)
        return;
    sqlite3_finalize(db->get);
    sqlite3_close(db->conn);
    free(db);
}
