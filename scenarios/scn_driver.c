/*
 * scn_driver (build/scenario-driver): the workload of the scenario runner. It loads the real
 * extension as an application does and writes or reads through it, logging what it did to an
 * fsync'd log that the checks read (formats in scn_checks.h).
 *
 *   scenario-driver writer EXT URI --log FILE [--rate R] [--pad N] [--sync-every K] [--count N]
 *                          [--open-retry DUR_MS] [--seed S]
 *   scenario-driver reader EXT URI --log FILE [--interval MS] [--travel P] [--seed S]
 *
 * writer: opens URI (write=1), creates t(id INTEGER PRIMARY KEY, v TEXT, pad BLOB), and commits
 * one row per transaction, id = max(id) + 1, v = scn_expected_v(id); logs "commit ID" after each
 * COMMIT; every K commits "syncing ID", SELECT litestream_sync(), then "synced ID TXID" or
 * "syncfail ID". A refused open (SQLITE_BUSY: another writer holds the lease) logs "refused MSG"
 * and, with --open-retry, tries again every 200 ms for that long; else exits 3. A write refused
 * for good (SQLITE_READONLY: the writer lost its lease) logs "stopped MSG" and exits 4. SIGTERM
 * ends the loop and closes cleanly ("closed", or "closefail MSG").
 *
 * reader: opens URI (read mode) and loops: BEGIN; the answer (count:max:sum of the ids of t);
 * litestream_txid(); COMMIT; logs "read TXID ANSWER" (and, once, "hydrated TXID" when its
 * hydration copy is ready). With --travel P, a share P of the reads
 * first moves the view a random 0.2..3 s into the past (PRAGMA litestream_time = 'N ms ago'),
 * logs "travel TXID ANSWER", and comes back ('latest'). A failed read logs "readfail MSG" and the
 * loop goes on (a store that fails is something to ride out). SIGTERM ends the loop.
 *
 * Single-threaded. One write(2) per log line, O_APPEND, fsync'd before the next step.
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

#include "scn_checks.h"

static const char usage[] =
    "usage: scenario-driver writer EXT URI --log FILE [--rate R] [--pad N] [--sync-every K]\n"
    "                              [--count N] [--open-retry MS] [--seed S]\n"
    "       scenario-driver reader EXT URI --log FILE [--interval MS] [--travel P] [--seed S]\n"
    "The workload of build/scenario (docs/scenarios.md): one-row commits or read transactions\n"
    "through the litestream VFS, each logged to FILE (fsync'd line by line).\n"
    "Exit: 0 done, 1 error, 2 bad command line, 3 refused (another writer), 4 writer stopped.\n";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int logfd = -1;

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("scenario-driver: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* One log line (newlines in the text become blanks), fsync'd. */
static int log_line(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    for (int i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    if (write(logfd, line, (size_t)n) != n || fsync(logfd) != 0) {
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

static void sleep_ms(double ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000),
                          (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};
    nanosleep(&ts, NULL);
}

/* splitmix64: the driver's own seeded stream (travel choices). */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

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

typedef struct opts {
    const char *mode, *ext, *uri, *log;
    double rate, pad, sync_every, count, open_retry, interval, travel, seed;
} opts;

static int parse_opts(int argc, char **argv, opts *o)
{
    o->pad = 100;
    o->interval = 20;
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0) {
            const char **slot[] = {&o->mode, &o->ext, &o->uri};
            if (pos >= 3) {
                say("unexpected argument \"%s\"", a);
                return 2;
            }
            *slot[pos++] = a;
            continue;
        }
        if (i + 1 >= argc) {
            say("%s needs a value", a);
            return 2;
        }
        const char *v = argv[++i];
        double *num = NULL;
        if (strcmp(a, "--log") == 0)
            o->log = v;
        else if (strcmp(a, "--rate") == 0)
            num = &o->rate;
        else if (strcmp(a, "--pad") == 0)
            num = &o->pad;
        else if (strcmp(a, "--sync-every") == 0)
            num = &o->sync_every;
        else if (strcmp(a, "--count") == 0)
            num = &o->count;
        else if (strcmp(a, "--open-retry") == 0)
            num = &o->open_retry;
        else if (strcmp(a, "--interval") == 0)
            num = &o->interval;
        else if (strcmp(a, "--travel") == 0)
            num = &o->travel;
        else if (strcmp(a, "--seed") == 0)
            num = &o->seed;
        else {
            say("unknown option %s", a);
            return 2;
        }
        if (num) {
            char *end = NULL;
            *num = strtod(v, &end);
            if (!end || *end || *num < 0) {
                say("%s: not a number >= 0: \"%s\"", a, v);
                return 2;
            }
        }
    }
    if (!o->mode || !o->ext || !o->uri || !o->log ||
        (strcmp(o->mode, "writer") != 0 && strcmp(o->mode, "reader") != 0)) {
        say("want writer|reader EXT URI --log FILE (try --help)");
        return 2;
    }
    return 0;
}

/* ---- writer ---- */

static int run_writer(const opts *o)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL, *sync = NULL, *maxid = NULL;
    int rc = 1;
    int64_t deadline = now_ns() + (int64_t)(o->open_retry * 1e6), commits = 0, id = 0;

    for (;;) {
        int orc = sqlite3_open_v2(
            o->uri, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI, NULL);
        if (orc == SQLITE_OK)
            break;
        int busy = (orc & 0xff) == SQLITE_BUSY;
        say("open: %s (code %d)", db ? sqlite3_errmsg(db) : "out of memory", orc);
        if (busy)
            log_line("refused %s", db ? sqlite3_errmsg(db) : "busy");
        sqlite3_close(db);
        db = NULL;
        if (!busy)
            return 1;
        if (stop_requested || now_ns() >= deadline)
            return 3;
        sleep_ms(200);
    }
    log_line("open %ld", (long)getpid());
    if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT, pad BLOB)",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM t", -1, &maxid, NULL) !=
            SQLITE_OK ||
        sqlite3_step(maxid) != SQLITE_ROW) {
        say("create/select: %s", sqlite3_errmsg(db));
        if ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_READONLY) {
            log_line("stopped %s", sqlite3_errmsg(db));
            rc = 4;
        }
        goto done;
    }
    id = sqlite3_column_int64(maxid, 0);
    if (sqlite3_prepare_v2(db, "INSERT INTO t(id, v, pad) VALUES (?1, ?2, randomblob(?3))", -1,
                           &ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT litestream_sync()", -1, &sync, NULL) != SQLITE_OK) {
        say("prepare: %s", sqlite3_errmsg(db));
        goto done;
    }
    int64_t start = now_ns();
    while (!stop_requested && (o->count <= 0 || commits < (int64_t)o->count)) {
        if (o->rate > 0) {
            int64_t due = start + (int64_t)((double)commits * 1e9 / o->rate), t = now_ns();
            if (due > t)
                sleep_ms((double)(due - t) / 1e6);
            if (stop_requested)
                break;
        }
        char v[64];
        scn_expected_v(id + 1, v);
        int erc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (erc == SQLITE_OK) {
            sqlite3_bind_int64(ins, 1, id + 1);
            sqlite3_bind_text(ins, 2, v, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(ins, 3, (int64_t)o->pad);
            erc = sqlite3_step(ins) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
            sqlite3_reset(ins);
            if (erc == SQLITE_OK)
                erc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        }
        if (erc != SQLITE_OK) {
            int x = sqlite3_extended_errcode(db);
            say("commit of id %" PRId64 ": %s (code %d)", id + 1, sqlite3_errmsg(db), x);
            if ((x & 0xff) == SQLITE_READONLY) {
                log_line("stopped %s", sqlite3_errmsg(db));
                rc = 4;
            }
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto done;
        }
        id++;
        commits++;
        if (log_line("commit %" PRId64, id) != 0)
            goto done;
        if (o->sync_every > 0 && commits % (int64_t)o->sync_every == 0) {
            log_line("syncing %" PRId64, id);
            if (sqlite3_step(sync) == SQLITE_ROW && sqlite3_column_text(sync, 0)) {
                if (log_line("synced %" PRId64 " %s", id,
                             (const char *)sqlite3_column_text(sync, 0)) != 0)
                    goto done;
            } else {
                say("litestream_sync(): %s", sqlite3_errmsg(db));
                log_line("syncfail %" PRId64, id);
            }
            sqlite3_reset(sync);
        }
    }
    rc = 0;
done:
    sqlite3_finalize(ins);
    sqlite3_finalize(sync);
    sqlite3_finalize(maxid);
    if (db) {
        if (sqlite3_close(db) != SQLITE_OK) {
            say("close: %s", sqlite3_errmsg(db));
            log_line("closefail %s", sqlite3_errmsg(db));
            rc = rc ? rc : 1;
        } else if (rc == 0)
            log_line("closed");
    }
    printf("%" PRId64 " commits\n", commits);
    return rc;
}

/* ---- reader ---- */

/* One read transaction: *txid and answer, or -1 with the message logged. */
/* 1 when the connection's hydration copy (hydration=FILE) is ready: reads come from it. */
static int hydration_ready(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int ready = 0;
    if (sqlite3_prepare_v2(db, "SELECT json_extract(litestream_stats(), '$.hydration.state')", -1,
                           &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        ready = v && strcmp((const char *)v, "ready") == 0;
    }
    sqlite3_finalize(st);
    return ready;
}

static int one_read(sqlite3 *db, uint64_t *txid, char answer[64])
{
    sqlite3_stmt *a = NULL, *t = NULL;
    int rc = -1;
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        goto done;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*) || ':' || coalesce(max(id), 0) || ':' || "
                           "coalesce(sum(id), 0) FROM t",
                           -1, &a, NULL) != SQLITE_OK ||
        sqlite3_step(a) != SQLITE_ROW)
        goto done;
    snprintf(answer, 64, "%s", (const char *)sqlite3_column_text(a, 0));
    if (sqlite3_prepare_v2(db, "SELECT litestream_txid()", -1, &t, NULL) != SQLITE_OK ||
        sqlite3_step(t) != SQLITE_ROW || !sqlite3_column_text(t, 0))
        goto done;
    *txid = strtoull((const char *)sqlite3_column_text(t, 0), NULL, 16);
    rc = 0;
done:
    if (rc != 0)
        log_line("readfail %s", sqlite3_errmsg(db));
    sqlite3_finalize(a);
    sqlite3_finalize(t);
    sqlite3_exec(db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int run_reader(const opts *o)
{
    sqlite3 *db = NULL;
    uint64_t rng = (uint64_t)o->seed;
    if (sqlite3_open_v2(o->uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
        say("open: %s", db ? sqlite3_errmsg(db) : "out of memory");
        log_line("readfail open: %s", db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return 1;
    }
    log_line("open %ld", (long)getpid());
    int hydrated = 0;
    while (!stop_requested) {
        uint64_t txid = 0;
        char answer[64];
        if (o->travel > 0 && rng_unit(&rng) < o->travel) {
            char sql[96];
            snprintf(sql, sizeof sql, "PRAGMA litestream_time = '%d ms ago'",
                     200 + (int)(rng_unit(&rng) * 2800));
            if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
                log_line("readfail %s: %s", sql, sqlite3_errmsg(db));
            else if (one_read(db, &txid, answer) == 0)
                log_line("travel %016" PRIx64 " %s", txid, answer);
            if (sqlite3_exec(db, "PRAGMA litestream_time = 'latest'", NULL, NULL, NULL) !=
                SQLITE_OK) {
                say("back to latest: %s", sqlite3_errmsg(db));
                break;
            }
        } else if (one_read(db, &txid, answer) == 0)
            log_line("read %016" PRIx64 " %s", txid, answer);
        if (!hydrated && hydration_ready(db)) { /* once: the local copy serves reads now */
            hydrated = 1;
            log_line("hydrated %016" PRIx64, txid);
        }
        sleep_ms(o->interval);
    }
    sqlite3_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    opts o = {0};
    sqlite3 *loader = NULL;
    int rc = parse_opts(argc, argv, &o);
    if (rc != 0)
        return rc;
    if ((logfd = open(o.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
        say("%s: %s", o.log, strerror(errno));
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (load_extension(o.ext, &loader) != 0)
        rc = 1;
    else
        rc = strcmp(o.mode, "writer") == 0 ? run_writer(&o) : run_reader(&o);
    sqlite3_close(loader);
    close(logfd);
    return rc;
}
