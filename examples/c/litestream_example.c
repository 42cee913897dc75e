/*
 * litestream_example: the litestream VFS from a C program, as an application uses it.
 *
 *   litestream_example writer AUTHOR   write mode: add notes to the replica, ship them, print TXIDs
 *   litestream_example reader          read mode: print the TXID, the notes, and each writer's
 *                                      mark revisited with time travel (PRAGMA litestream_time)
 *
 * The replica is LITESTREAM_REPLICA_URL (s3://bucket/prefix?endpoint=... or file:///dir), with the
 * AWS_* variables for credentials; the extension is LTXVFS_EXTENSION (default: "litestream-vfs",
 * found by the dynamic loader; give a path such as ./build/litestream-vfs otherwise).
 *
 * The writer adds 3 notes in one transaction, makes them durable with litestream_sync(), records
 * the time right after (a "mark": every file uploaded later has a later timestamp), then adds 2
 * notes and the mark in a second transaction and syncs again. A reader that moves its view to a
 * mark's time must see exactly the notes the mark counted. Every example (C, Python, Node, Go)
 * writes and reads the same tables and prints the same lines, so they can read each other's data.
 *
 * Single-threaded. Exit 0 on success, 1 on an error (SQLite's message on stderr), 2 on usage.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DB_WRITE  "file:app.db?vfs=litestream&write=1" /* the name is a label */
#define DB_READ   "file:app.db?vfs=litestream"
#define MAX_MARKS 64

/* Loads the extension once for the process (it registers the VFS "litestream"). The loading
 * connection may be closed afterwards: the VFS stays registered. */
static int load_extension(void)
{
    const char *ext = getenv("LTXVFS_EXTENSION");
    sqlite3 *db = NULL;
    char *msg = NULL;
    int rc = sqlite3_open(":memory:", &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_enable_load_extension(db, 1);
    if (rc == SQLITE_OK)
        rc = sqlite3_load_extension(db, ext && *ext ? ext : "litestream-vfs", NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "load extension: %s\n", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    sqlite3_close(db);
    return rc;
}

/* Runs SQL that returns no rows; prints SQLite's message on failure. */
static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "%s\n  in: %s\n", msg ? msg : sqlite3_errstr(rc), sql);
    sqlite3_free(msg);
    return rc;
}

/* Runs SQL that returns one text value into out (cap bytes); "" when it returns NULL. */
static int one_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *v = sqlite3_column_text(st, 0);
            snprintf(out, cap, "%s", v ? (const char *)v : "");
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK)
        fprintf(stderr, "%s\n  in: %s\n", sqlite3_errmsg(db), sql);
    sqlite3_finalize(st);
    return rc;
}

/* Inserts n notes by author in one transaction (the mark too when at is not NULL). */
static int add_notes(sqlite3 *db, const char *author, int first, int n, const char *at)
{
    sqlite3_stmt *st = NULL;
    int rc = exec(db, "BEGIN");
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_prepare_v2(db, "INSERT INTO notes(author, body) VALUES (?1, ?2)", -1, &st, NULL);
    for (int i = first; rc == SQLITE_OK && i < first + n; i++) {
        char body[128];
        snprintf(body, sizeof body, "note %d from %s", i, author);
        sqlite3_bind_text(st, 1, author, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, body, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK && at) {
        rc = sqlite3_prepare_v2(db,
                                "INSERT INTO marks(author, at, notes) "
                                "VALUES (?1, ?2, (SELECT count(*) FROM notes) - ?3)",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(st, 1, author, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 2, at, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(st, 3, n); /* the count at the mark: before this batch */
            rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
        }
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_OK) {
        fprintf(stderr, "insert: %s\n", sqlite3_errmsg(db));
        exec(db, "ROLLBACK");
        return rc;
    }
    return exec(db, "COMMIT"); /* local: durable at the next sync */
}

static int writer(const char *author)
{
    sqlite3 *db = NULL;
    char txid[32], at[64];
    int rc = sqlite3_open_v2(DB_WRITE, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI, NULL);
    if (rc != SQLITE_OK) { /* SQLITE_BUSY: another writer holds the replica's lease */
        fprintf(stderr, "open %s: %s\n", DB_WRITE, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        goto done;
    }
    sqlite3_busy_timeout(db, 5000);
    if ((rc = exec(db, "CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, "
                       "author TEXT NOT NULL, body TEXT NOT NULL);"
                       "CREATE TABLE IF NOT EXISTS marks(author TEXT NOT NULL, at TEXT NOT NULL, "
                       "notes INTEGER NOT NULL)")) != SQLITE_OK)
        goto done;
    if ((rc = add_notes(db, author, 1, 3, NULL)) != SQLITE_OK)
        goto done;
    /* litestream_sync() returns once the commits are in the bucket: the durable TXID. */
    if ((rc = one_text(db, "SELECT litestream_sync()", txid, sizeof txid)) != SQLITE_OK)
        goto done;
    printf("%s: 3 notes durable at TXID %s\n", author, txid);
    if ((rc = one_text(db, "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", at, sizeof at)) !=
        SQLITE_OK)
        goto done;
    /* 20 ms: the next file's timestamp (milliseconds) is strictly after the mark */
    nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
    if ((rc = add_notes(db, author, 4, 2, at)) != SQLITE_OK)
        goto done;
    if ((rc = one_text(db, "SELECT litestream_sync()", txid, sizeof txid)) != SQLITE_OK)
        goto done;
    printf("%s: 5 notes durable at TXID %s\n", author, txid);
done:
    sqlite3_close(db); /* a clean close ships anything left and gives the lease back */
    return rc == SQLITE_OK ? 0 : 1;
}

static int reader(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char txid[32], sql[256], count[32];
    char marks[MAX_MARKS][2][64];
    int nmarks = 0;
    int rc = sqlite3_open_v2(DB_READ, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "open %s: %s\n", DB_READ, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        goto done;
    }
    if ((rc = one_text(db, "PRAGMA litestream_txid", txid, sizeof txid)) != SQLITE_OK)
        goto done;
    printf("txid %s\n", txid);
    rc = sqlite3_prepare_v2(db, "SELECT id, author, body FROM notes ORDER BY id", -1, &st, NULL);
    while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        printf("%d|%s|%s\n", sqlite3_column_int(st, 0), sqlite3_column_text(st, 1),
               sqlite3_column_text(st, 2));
    if (rc != SQLITE_OK || (rc = sqlite3_finalize(st)) != SQLITE_OK) {
        fprintf(stderr, "notes: %s\n", sqlite3_errmsg(db));
        st = NULL;
        goto done;
    }
    /* read the marks first: the view moves between transactions only */
    rc =
        sqlite3_prepare_v2(db, "SELECT author, at, notes FROM marks ORDER BY rowid", -1, &st, NULL);
    while (rc == SQLITE_OK && nmarks < MAX_MARKS && sqlite3_step(st) == SQLITE_ROW) {
        snprintf(marks[nmarks][0], 64, "%s", sqlite3_column_text(st, 0));
        snprintf(marks[nmarks][1], 64, "%s", sqlite3_column_text(st, 1));
        printf("mark %s %s: %d notes\n", marks[nmarks][0], marks[nmarks][1],
               sqlite3_column_int(st, 2));
        nmarks++;
    }
    if (rc != SQLITE_OK || (rc = sqlite3_finalize(st)) != SQLITE_OK) {
        fprintf(stderr, "marks: %s\n", sqlite3_errmsg(db));
        st = NULL;
        goto done;
    }
    st = NULL;
    for (int i = 0; i < nmarks; i++) {
        /* time travel: this connection now reads the database as it was at the mark */
        snprintf(sql, sizeof sql, "PRAGMA litestream_time = '%s'", marks[i][1]);
        if ((rc = one_text(db, sql, count, sizeof count)) != SQLITE_OK ||
            (rc = one_text(db, "SELECT count(*) FROM notes", count, sizeof count)) != SQLITE_OK)
            goto done;
        printf("time travel to %s: %s notes\n", marks[i][1], count);
    }
    rc = one_text(db, "PRAGMA litestream_time = 'latest'", count, sizeof count);
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "writer") == 0)
        return load_extension() == SQLITE_OK ? writer(argv[2]) : 1;
    if (argc == 2 && strcmp(argv[1], "reader") == 0)
        return load_extension() == SQLITE_OK ? reader() : 1;
    fprintf(stderr, "usage: litestream_example writer AUTHOR | litestream_example reader\n"
                    "  env: LITESTREAM_REPLICA_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                    "AWS_REGION,\n       LTXVFS_EXTENSION (default litestream-vfs)\n");
    return 2;
}
