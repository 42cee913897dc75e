/*
 * vfs_writer: a write workload through the litestream VFS in write mode, and its checker. For the
 * command-line tests of write mode and the scenario runner.
 *
 *   vfs_writer EXTENSION URI [--log FILE] [--count N] [--rate R] [--pad N] [--sync-every K]
 *              [--busy-timeout MS] [--page-size N]
 *   vfs_writer check EXTENSION URI --log FILE
 *
 * The workload loads the extension as an application does (sqlite3_load_extension on a
 * connection of its own, then sqlite3_open_v2 of URI, which names vfs=litestream and write=1),
 * creates t(id INTEGER PRIMARY KEY, v TEXT, pad BLOB) if it is missing, and commits one row per
 * transaction: id = the next number after max(id), v = expected_v(id), pad = randomblob(--pad).
 * After each commit it appends "commit ID" to the log and fsyncs it; every --sync-every commits
 * it runs SELECT litestream_sync() and appends "synced ID TXID" (ID: the highest id committed
 * before the call, TXID: what the call returned), or "syncfail ID" when the call failed (the
 * message goes to stderr; the workload goes on: a store that fails is something to ride out).
 * SIGTERM / SIGINT end the loop after the current transaction, and the database is closed
 * cleanly (which ships what is left). Exit 0 after --count commits or a signal; 1 on an error it
 * cannot continue past, with SQLite's message (and code) on stderr; 2 on a bad command line.
 *
 * check opens URI (the caller gives a read-mode one) and verifies against the log: the ids are
 * exactly 1..M, every id named by a "synced" line is there (durability), no row lies beyond the
 * last logged commit + 1 (a kill between the COMMIT and the log line leaves one such row), each
 * row's v is expected_v(id), and PRAGMA integrity_check says ok. Prints "ok M rows" (exit 0) or
 * each problem (exit 1). It may run while the workload does: the acknowledged ids are taken from
 * the log before the rows are read, the last commit after.
 *
 * Single-threaded. The log is the only output a crash must not tear: one write(2) per line,
 * O_APPEND, fsync'd before the next transaction starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: vfs_writer EXTENSION URI [--log FILE] [--count N] [--rate R] [--pad N]\n"
    "                  [--sync-every K] [--busy-timeout MS] [--page-size N]\n"
    "       vfs_writer check EXTENSION URI --log FILE\n"
    "\n"
    "The workload opens URI (write mode: vfs=litestream&write=1) and commits one row per\n"
    "transaction into t(id INTEGER PRIMARY KEY, v TEXT, pad BLOB), ids continuing from max(id).\n"
    "  --log FILE         append \"commit ID\" after each commit, \"synced ID TXID\" after each\n"
    "                     litestream_sync() (\"syncfail ID\" when it failed); fsync'd each time\n"
    "  --count N          commits to make (default 0: until SIGTERM/SIGINT or kill)\n"
    "  --rate R           commits per second (default 0: as fast as possible)\n"
    "  --pad N            bytes of randomblob in each row (default 100)\n"
    "  --sync-every K     SELECT litestream_sync() every K commits (default 0: never)\n"
    "  --busy-timeout MS  sqlite3_busy_timeout (default 0)\n"
    "  --page-size N      PRAGMA page_size=N before the table is created\n"
    "check verifies a database (a read-mode URI) against the log: ids exactly 1..M, every synced\n"
    "id present, v as the workload writes it, integrity_check ok. Prints \"ok M rows\".\n"
    "Exit status: 0 done, 1 an error (SQLite's message on stderr), 2 a bad command line.\n";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* The v of row id: a pure function of id (splitmix64), so check needs nothing but the id. */
static void expected_v(int64_t id, char out[64])
{
    uint64_t z = (uint64_t)id + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    snprintf(out, 64, "v%" PRId64 "-%016" PRIx64, id, z);
}

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("vfs_writer: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* SQLite's message for a failure of what on db. */
static void sql_fail(sqlite3 *db, const char *what)
{
    say("%s: %s (code %d, extended %d)", what, db ? sqlite3_errmsg(db) : "out of memory",
        db ? sqlite3_errcode(db) : SQLITE_NOMEM, db ? sqlite3_extended_errcode(db) : SQLITE_NOMEM);
}

/* Loads the extension into a connection of its own (*loader, closed by the caller). */
static int load_extension(const char *ext, sqlite3 **loader)
{
    char *err = NULL;
    if (sqlite3_open(":memory:", loader) != SQLITE_OK ||
        sqlite3_enable_load_extension(*loader, 1) != SQLITE_OK ||
        sqlite3_load_extension(*loader, ext, NULL, &err) != SQLITE_OK) {
        say("load %s: %s", ext, err ? err : sqlite3_errmsg(*loader));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

/* Appends one line to the log and fsyncs it (fd -1: no log). */
static int log_line(int fd, const char *fmt, ...)
{
    if (fd < 0)
        return 0;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        return -1;
    ssize_t w = write(fd, line, (size_t)n);
    if (w != n || fsync(fd) != 0) {
        say("log: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int exec(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        sql_fail(db, sql);
        return -1;
    }
    return 0;
}

/* The one integer of a query (*out = 0 for NULL). */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        sql_fail(db, sql);
        goto done;
    }
    *out = sqlite3_column_int64(st, 0);
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

static int parse_num(const char *opt, const char *s, double min, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < min) {
        say("%s: not a number >= %g: \"%s\"", opt, min, s);
        return -1;
    }
    *out = v;
    return 0;
}

typedef struct opts {
    const char *ext, *uri, *log;
    double count, rate, pad, sync_every, busy_timeout, page_size;
} opts;

/* Parses argv[first..] into o. 0, or 2 (usage error, said on stderr). */
static int parse_opts(int argc, char **argv, int first, opts *o)
{
    o->pad = 100;
    int pos = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0) {
            if (pos == 0)
                o->ext = a;
            else if (pos == 1)
                o->uri = a;
            else {
                say("unexpected argument \"%s\" (try --help)", a);
                return 2;
            }
            pos++;
            continue;
        }
        if (i + 1 >= argc) {
            say("%s needs a value (try --help)", a);
            return 2;
        }
        const char *v = argv[++i];
        double *num = NULL, min = 0;
        if (strcmp(a, "--log") == 0)
            o->log = v;
        else if (strcmp(a, "--count") == 0)
            num = &o->count;
        else if (strcmp(a, "--rate") == 0)
            num = &o->rate;
        else if (strcmp(a, "--pad") == 0)
            num = &o->pad;
        else if (strcmp(a, "--sync-every") == 0)
            num = &o->sync_every;
        else if (strcmp(a, "--busy-timeout") == 0)
            num = &o->busy_timeout;
        else if (strcmp(a, "--page-size") == 0)
            num = &o->page_size, min = 512;
        else {
            say("unknown option %s (try --help)", a);
            return 2;
        }
        if (num && parse_num(a, v, min, num) != 0)
            return 2;
    }
    if (!o->ext || !o->uri) {
        say("want EXTENSION and URI (try --help)");
        return 2;
    }
    return 0;
}

/* ---- the workload ---------------------------------------------------------------------------- */

static int run_workload(const opts *o)
{
    sqlite3 *loader = NULL, *db = NULL;
    sqlite3_stmt *ins = NULL, *sync = NULL;
    int logfd = -1, rc = 1;
    int64_t commits = 0, failed_syncs = 0;

    if (o->log && (logfd = open(o->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
        say("%s: %s", o->log, strerror(errno));
        goto done;
    }
    if (load_extension(o->ext, &loader) != 0)
        goto done;
    if (sqlite3_open_v2(o->uri, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                        NULL) != SQLITE_OK) {
        sql_fail(db, "open");
        goto done;
    }
    sqlite3_busy_timeout(db, (int)o->busy_timeout);
    if (o->page_size > 0) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA page_size=%d", (int)o->page_size);
        if (exec(db, sql) != 0)
            goto done;
    }
    if (exec(db, "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT, pad BLOB)") != 0)
        goto done;
    int64_t id;
    if (query_int(db, "SELECT coalesce(max(id), 0) FROM t", &id) != 0)
        goto done;
    if (sqlite3_prepare_v2(db, "INSERT INTO t(id, v, pad) VALUES (?1, ?2, randomblob(?3))", -1,
                           &ins, NULL) != SQLITE_OK ||
        (o->sync_every > 0 &&
         sqlite3_prepare_v2(db, "SELECT litestream_sync()", -1, &sync, NULL) != SQLITE_OK)) {
        sql_fail(db, "prepare");
        goto done;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int64_t start = now_ns();
    while (!stop_requested && (o->count <= 0 || commits < (int64_t)o->count)) {
        if (o->rate > 0) {
            int64_t due = start + (int64_t)((double)commits * 1e9 / o->rate), t = now_ns();
            if (due > t) {
                struct timespec ts = {(time_t)((due - t) / 1000000000),
                                      (long)((due - t) % 1000000000)};
                nanosleep(&ts, NULL); /* a signal cuts it short: the loop checks stop_requested */
                if (stop_requested)
                    break;
            }
        }
        char v[64];
        expected_v(id + 1, v);
        if (exec(db, "BEGIN IMMEDIATE") != 0)
            goto done;
        sqlite3_bind_int64(ins, 1, id + 1);
        sqlite3_bind_text(ins, 2, v, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(ins, 3, (int64_t)o->pad);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            sql_fail(db, "INSERT");
            sqlite3_reset(ins);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto done;
        }
        sqlite3_reset(ins);
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            sql_fail(db, "COMMIT");
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto done;
        }
        id++;
        commits++;
        if (log_line(logfd, "commit %" PRId64 "\n", id) != 0)
            goto done;
        if (o->sync_every > 0 && commits % (int64_t)o->sync_every == 0) {
            int step = sqlite3_step(sync);
            if (step == SQLITE_ROW) {
                const unsigned char *txid = sqlite3_column_text(sync, 0);
                if (!txid) {
                    say("litestream_sync() returned NULL");
                    goto done;
                }
                if (log_line(logfd, "synced %" PRId64 " %s\n", id, (const char *)txid) != 0)
                    goto done;
            } else {
                failed_syncs++;
                sql_fail(db, "SELECT litestream_sync()");
                if (log_line(logfd, "syncfail %" PRId64 "\n", id) != 0)
                    goto done;
            }
            sqlite3_reset(sync);
        }
    }
    rc = 0;
done:
    sqlite3_finalize(ins);
    sqlite3_finalize(sync);
    if (db && sqlite3_close(db) != SQLITE_OK) {
        sql_fail(db, "close");
        rc = 1;
    }
    sqlite3_close(loader);
    if (logfd >= 0)
        close(logfd);
    printf("%" PRId64 " commits, %" PRId64 " failed syncs\n", commits, failed_syncs);
    return rc;
}

/* ---- check ----------------------------------------------------------------------------------- */

/* What the log says: the highest committed id, the highest synced id (-1: none). */
typedef struct logsum {
    int64_t max_commit, max_synced, syncs;
} logsum;

static int read_log(const char *path, logsum *s)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        say("%s: %s", path, strerror(errno));
        return -1;
    }
    s->max_commit = s->max_synced = -1;
    s->syncs = 0;
    char line[256];
    int rc = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        int64_t id;
        char txid[64];
        if (sscanf(line, "commit %" SCNd64, &id) == 1) {
            if (id > s->max_commit)
                s->max_commit = id;
        } else if (sscanf(line, "synced %" SCNd64 " %63s", &id, txid) == 2) {
            s->syncs++;
            if (id > s->max_synced)
                s->max_synced = id;
        } else if (strncmp(line, "syncfail ", 9) != 0) {
            say("%s: line %d is not a log line: %s", path, lineno, line);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

static int run_check(const opts *o)
{
    sqlite3 *loader = NULL, *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = 1, problems = 0;
    logsum ls, after;
    if (!o->log) {
        say("check needs --log FILE");
        return 2;
    }
    /* The log is read before the rows (what was acknowledged by then must be there) and again
     * after them (a row seen may have been committed after the first read, while the workload
     * runs on). */
    if (read_log(o->log, &ls) != 0)
        return 1;
    if (load_extension(o->ext, &loader) != 0)
        goto done;
    if (sqlite3_open_v2(o->uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
        sql_fail(db, "open");
        goto done;
    }
    if (sqlite3_prepare_v2(db, "SELECT id, v FROM t ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
        sql_fail(db, "SELECT id, v FROM t ORDER BY id");
        goto done;
    }
    int64_t m = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        char want[64];
        if (id != m + 1) {
            if (problems++ < 20)
                printf("hole: after id %" PRId64 " comes id %" PRId64 "\n", m, id);
        }
        expected_v(id, want);
        if (!v || strcmp(v, want) != 0) {
            if (problems++ < 20)
                printf("id %" PRId64 ": v is \"%s\", want \"%s\"\n", id, v ? v : "(null)", want);
        }
        m = id;
    }
    if (step != SQLITE_DONE) {
        sql_fail(db, "SELECT id, v FROM t ORDER BY id");
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (read_log(o->log, &after) != 0)
        goto done;
    if (ls.max_synced > m) {
        problems++;
        printf("lost: id %" PRId64 " was acknowledged by litestream_sync(), the database ends at "
               "id %" PRId64 "\n",
               ls.max_synced, m);
    }
    int64_t bound = after.max_commit < 0 ? 0 : after.max_commit;
    if (m > bound + 1) {
        problems++;
        printf("phantom: the database reaches id %" PRId64 ", the log's last commit is %" PRId64
               "\n",
               m, bound);
    }
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
        sql_fail(db, "PRAGMA integrity_check");
        goto done;
    }
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        if (!r || strcmp(r, "ok") != 0) {
            problems++;
            printf("integrity_check: %s\n", r ? r : "(null)");
        }
    }
    if (step != SQLITE_DONE) {
        sql_fail(db, "PRAGMA integrity_check");
        goto done;
    }
    if (problems == 0) {
        printf("ok %" PRId64 " rows\n", m);
        rc = 0;
    } else {
        printf("%d problems; %" PRId64 " rows, log: last commit %" PRId64 ", last synced %" PRId64
               "\n",
               problems, m, after.max_commit, ls.max_synced);
    }
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    sqlite3_close(loader);
    return rc;
}

int main(int argc, char **argv)
{
    opts o = {0};
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    int is_check = strcmp(argv[1], "check") == 0;
    int prc = parse_opts(argc, argv, is_check ? 2 : 1, &o);
    if (prc != 0)
        return prc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    return is_check ? run_check(&o) : run_workload(&o);
}
