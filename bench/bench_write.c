/*
 * bench_write: write mode of the litestream VFS against plain SQLite on a local file, in the same
 * run, on the same disk (a temporary folder under $TMPDIR or /tmp holds the local databases, the
 * write buffers and fakes3's data directory).
 *
 *   1. inserts/s: N single-row INSERT transactions (autocommit, a ~100-byte row, one prepared
 *      statement) into a new database, per run at most --max-seconds: plain SQLite with
 *      journal_mode=DELETE and synchronous=OFF, then FULL; write mode (sync interval 1s) through
 *      fakes3 without latency (the connection's default synchronous, then synchronous=OFF) and
 *      with --latency. Medians of --runs; ratios against local synchronous=OFF (aim: 0.8x). Each
 *      write-mode run is a new replica; after its close (which ships the rest) a reader in
 *      another process counts the rows;
 *   2. sync latency: sync_interval=-1 (ship only on litestream_sync()), a table of one ~3.5 KB
 *      random row per page, in a cache that holds it all; transactions that dirty 1 page (PRAGMA
 *      user_version: page 1 only), 100 and 10,000 pages (rows spread over the table); the time
 *      of SELECT litestream_sync(), median of --reps, at fakes3 --latency: ms and round trips
 *      (ms / latency), and the same at 0 ms (the difference: what the latency adds);
 *   3. sustained rate: at --latency with sync interval 1s, inserts paced at each of --rates
 *      (0: as fast as possible) for --seconds, sampling litestream_stats()'s write.buffer_bytes
 *      and write.pending_txs every second: the buffer stays bounded when each sync carries the
 *      whole window since the previous one.
 * Figures are printed; nothing passes or fails on time. Exit 1 if anything does not work (a
 * server that does not start, an SQL error, a sync that fails, rows missing from the replica).
 *
 *   bench_write [--smoke] [--latency MS] [--runs N] [--n N] [--max-seconds S] [--pages N,N..]
 *               [--reps N] [--rates R,R..] [--seconds S] [--only 1|2|3] [--keep]
 *
 * --only runs one part (1, 2 or 3); --keep keeps the temporary folder.
 *
 * Single-threaded; fakes3 and the verifying readers are child processes (the reader is this
 * program again, run as `bench_write --verify URI TABLE ROWS`).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

#define KEY    "benchkey"
#define SECRET "benchsecret"
#define BUCKET "bench"

#define MAX_LIST 16

static const char *build_dir = ".";
static char work[256];
static char self_exe[512];
static int failures;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, const char *a)
{
    fprintf(stderr, "bench_write: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    exit(1);
}

/* Something that does not work (not a timing): reported, counted, and the run goes on. */
static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "bench_write: FAILED: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    failures++;
}

/* Wall-clock ms: litestream_stats()'s last_sync_ms is a wall-clock time. */
static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* "1,100,10000" into out (at most MAX_LIST); returns the count. */
static int parse_list(const char *s, long *out)
{
    int n = 0;
    while (*s && n < MAX_LIST) {
        out[n++] = atol(s);
        s += strcspn(s, ",");
        if (*s)
            s++;
    }
    return n;
}

/* ---- fakes3 ------------------------------------------------------------------------------- */

typedef bench_fakes3 server;

/* fakes3 on a free port of 127.0.0.1, its objects in work/data (kept across restarts). */
static void server_start(server *s, int latency_ms)
{
    char out[512], data[512];
    snprintf(out, sizeof out, "%s/fakes3.out", work);
    snprintf(data, sizeof data, "%s/data", work);
    bench_fakes3_start(s, "bench_write", build_dir, data, out, latency_ms, KEY, SECRET, BUCKET);
}

static void server_stop(server *s)
{
    bench_fakes3_stop(s);
}

/* ---- SQL helpers -------------------------------------------------------------------------- */

/* Runs sql; on an error reports it (what) and returns 0. */
static int exec_sql(sqlite3 *db, const char *sql, const char *what)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s (%s)", err ? err : sqlite3_errmsg(db), sql);
        fail(what, msg);
        sqlite3_free(err);
        return 0;
    }
    return 1;
}

/* The first column of the first row of sql as an integer; -1 (and a failure) on an error. */
static long long query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
        fail(sql, sqlite3_errmsg(db));
    else
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The first column of sql as text into out; 0 (and a failure) on an error. */
static int query_text(sqlite3 *db, const char *sql, char *out, size_t size)
{
    sqlite3_stmt *st = NULL;
    int ok = 0;
    out[0] = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        fail(sql, sqlite3_errmsg(db));
    } else {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, size, "%s", t ? (const char *)t : "");
        ok = 1;
    }
    sqlite3_finalize(st);
    return ok;
}

/* A member of litestream_stats()'s "write" object. */
static long long wstat(sqlite3 *db, const char *field)
{
    char sql[160];
    snprintf(sql, sizeof sql, "select json_extract(litestream_stats(), '$.write.%s')", field);
    return query_int(db, sql);
}

/*
 * SELECT litestream_sync(): the durable TXID it returns (16 hex digits), or 0 with a failure.
 * *ms: how long it took.
 */
static unsigned long long lsync(sqlite3 *db, double *ms)
{
    char txid[64];
    double t0 = now_s();
    int ok = query_text(db, "select litestream_sync()", txid, sizeof txid);
    if (ms)
        *ms = (now_s() - t0) * 1000;
    if (!ok)
        return 0;
    if (strlen(txid) != 16 || strspn(txid, "0123456789abcdefABCDEF") != 16) {
        fail("litestream_sync() did not return 16 hex digits", txid);
        return 0;
    }
    return strtoull(txid, NULL, 16);
}

static sqlite3 *open_uri(const char *uri, int flags)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(uri, &db, flags | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
        fail(uri, db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* The URI of replica `name` in write mode (extra: more URI parameters) or read mode. */
static void write_uri(char *out, size_t size, const server *s, const char *name, const char *extra)
{
    snprintf(out, size,
             "file:%s?vfs=litestream&replica=s3://" BUCKET "/%s?endpoint=%s&write=1"
             "&buffer=%s/%s.wbuf&%s",
             name, name, s->url, work, name, extra);
}

static void read_uri(char *out, size_t size, const server *s, const char *name)
{
    snprintf(out, size, "file:%s?vfs=litestream&replica=s3://" BUCKET "/%s?endpoint=%s", name, name,
             s->url);
}

/*
 * A reader in another process (this program with --verify) opens replica `name` in read mode and
 * counts the rows of table: they must be `rows`. A fresh process has nothing of the writer's state.
 */
static void verify_rows(const server *s, const char *name, const char *table, long long rows)
{
    char uri[700], n[32];
    read_uri(uri, sizeof uri, s, name);
    snprintf(n, sizeof n, "%lld", rows);
    pid_t pid = fork();
    if (pid == 0) {
        execl(self_exe, self_exe, "--verify", uri, table, n, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        fail("a reader in another process did not find every row on the replica", name);
}

static int verify_main(const char *uri, const char *table, long long want)
{
    sqlite3 *db = open_uri(uri, SQLITE_OPEN_READONLY);
    if (!db)
        return 1;
    char sql[128];
    snprintf(sql, sizeof sql, "select count(*) from %s", table);
    long long got = query_int(db, sql);
    sqlite3_close(db);
    if (got != want) {
        fprintf(stderr, "bench_write --verify: %s has %lld rows in %s, want %lld\n", table, got,
                uri, want);
        return 1;
    }
    return 0;
}

/* ---- 1. inserts per second ---------------------------------------------------------------- */

/* Row i: about 100 bytes of text that does not repeat from row to row. */
static int make_row(char *out, long i)
{
    static const char words[] = "alpha bravo charlie delta echo foxtrot golf hotel india juliet "
                                "kilo lima mike november oscar papa quebec romeo sierra tango ";
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull + 1;
    int n = snprintf(out, 32, "row %08ld ", i);
    while (n < 100) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[n++] = words[x % (sizeof words - 1)];
    }
    out[n] = 0;
    return n;
}

static int create_table(sqlite3 *db)
{
    return exec_sql(db, "create table t(id integer primary key, v text not null)", "create table");
}

/* Up to n autocommit INSERTs, stopping after max_s; returns how many committed, *secs the time. */
static long insert_loop(sqlite3 *db, long n, double max_s, double *secs)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "insert into t(v) values(?)", -1, &st, NULL) != SQLITE_OK) {
        fail("prepare insert", sqlite3_errmsg(db));
        return 0;
    }
    char row[128];
    long done = 0;
    double t0 = now_s();
    for (long i = 1; i <= n; i++) {
        int len = make_row(row, i);
        sqlite3_bind_text(st, 1, row, len, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fail("insert", sqlite3_errmsg(db));
            break;
        }
        sqlite3_reset(st);
        done++;
        if ((i & 15) == 0 && now_s() - t0 > max_s)
            break;
    }
    *secs = now_s() - t0;
    sqlite3_finalize(st);
    return done;
}

/* Plain SQLite on a new local file, journal_mode=DELETE and the given synchronous: tx/s. */
static double local_run(const char *sync, long n, double max_s)
{
    char path[400], sql[128];
    snprintf(path, sizeof path, "%s/local.db", work);
    unlink(path);
    sqlite3 *db = open_uri(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (!db)
        return 0;
    snprintf(sql, sizeof sql, "pragma journal_mode=delete; pragma synchronous=%s", sync);
    double secs = 1, tps = 0;
    if (exec_sql(db, sql, "local pragmas") && create_table(db)) {
        long done = insert_loop(db, n, max_s, &secs);
        tps = (double)done / secs;
        if (query_int(db, "select count(*) from t") != done)
            fail("local: the row count is not the number of inserts", sync);
    }
    sqlite3_close(db);
    unlink(path);
    return tps;
}

/*
 * Write mode on a new replica: tx/s of the timed inserts; *open_ms the open, *close_ms the close
 * (its final sync). sync: a synchronous setting, or NULL for the connection's default.
 */
static char wjournal[32] = "?";

static double write_run(const server *s, const char *name, const char *sync, long n, double max_s,
                        double *open_ms, double *close_ms)
{
    char uri[800];
    write_uri(uri, sizeof uri, s, name, "sync_interval=1s");
    double t0 = now_s();
    sqlite3 *db = open_uri(uri, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    *open_ms = (now_s() - t0) * 1000;
    if (!db)
        return 0;
    double tps = 0, secs = 1;
    long done = 0;
    char sql[128];
    snprintf(sql, sizeof sql, "pragma synchronous=%s", sync ? sync : "full");
    query_text(db, "pragma journal_mode", wjournal, sizeof wjournal);
    if (query_int(db, "pragma litestream_write_enabled") != 1)
        fail("PRAGMA litestream_write_enabled is not 1 in write mode", name);
    if ((!sync || exec_sql(db, sql, "pragma synchronous")) && create_table(db)) {
        done = insert_loop(db, n, max_s, &secs);
        tps = (double)done / secs;
        if (query_int(db, "select count(*) from t") != done)
            fail("write mode: the row count is not the number of inserts", name);
        long long errs = wstat(db, "sync_errors");
        if (errs != 0) {
            char e[300] = "";
            query_text(db, "select json_extract(litestream_stats(), '$.write.last_error')", e,
                       sizeof e);
            fail("write mode: syncs failed against a fakes3 without faults", e);
        }
    }
    t0 = now_s();
    sqlite3_close(db);
    *close_ms = (now_s() - t0) * 1000;
    verify_rows(s, name, "t", done);
    return tps;
}

static void bench_inserts(int latency, int runs, long n, double max_s)
{
    printf("\n== 1. single-row INSERT transactions per second (%ld per run at most, at most %.1f "
           "s, median of %d runs)\n",
           n, max_s, runs);
    enum { L_OFF, L_FULL, W0, W0_OFF, WLAT, NCONF };
    char wlat[80];
    snprintf(wlat, sizeof wlat, "write mode, fakes3 %d ms, default synchronous", latency);
    const char *label[NCONF] = {
        "local, journal_mode=DELETE, synchronous=OFF",
        "local, journal_mode=DELETE, synchronous=FULL",
        "write mode, fakes3 0 ms, default synchronous",
        "write mode, fakes3 0 ms, synchronous=OFF",
        wlat,
    };
    double tps[NCONF][16], open_ms[NCONF][16], close_ms[NCONF][16];
    static int seq;
    server s0, sl;
    server_start(&s0, 0);
    for (int r = 0; r < runs; r++) {
        /* interleaved, so that load that comes and goes spreads over every configuration */
        char name[64];
        tps[L_OFF][r] = local_run("off", n, max_s);
        tps[L_FULL][r] = local_run("full", n, max_s);
        snprintf(name, sizeof name, "ins%d", seq++);
        tps[W0][r] = write_run(&s0, name, NULL, n, max_s, &open_ms[W0][r], &close_ms[W0][r]);
        snprintf(name, sizeof name, "ins%d", seq++);
        tps[W0_OFF][r] =
            write_run(&s0, name, "off", n, max_s, &open_ms[W0_OFF][r], &close_ms[W0_OFF][r]);
    }
    server_stop(&s0);
    if (latency > 0) {
        server_start(&sl, latency);
        for (int r = 0; r < runs; r++) {
            char name[64];
            snprintf(name, sizeof name, "ins%d", seq++);
            tps[WLAT][r] =
                write_run(&sl, name, NULL, n, max_s, &open_ms[WLAT][r], &close_ms[WLAT][r]);
        }
        server_stop(&sl);
    }
    double med[NCONF] = {0};
    for (int c = 0; c < NCONF; c++) {
        if (c == WLAT && latency <= 0)
            continue;
        med[c] = median(tps[c], runs);
        double lo = tps[c][0], hi = tps[c][runs - 1]; /* sorted by median() */
        printf("%-46s %7.0f tx/s (min %.0f, max %.0f)", label[c], med[c], lo, hi);
        if (c >= W0)
            printf(": %.2fx local OFF, %.2fx local FULL; open %.0f ms, close %.0f ms",
                   med[c] / med[L_OFF], med[c] / med[L_FULL], median(open_ms[c], runs),
                   median(close_ms[c], runs));
        printf("\n");
    }
    printf("(write mode: sync interval 1s, journal_mode %s as the VFS leaves it; open and close "
           "include the lease and the last sync)\n",
           wjournal);
    printf("aim: write mode >= 0.8x local synchronous=OFF: %.2fx at 0 ms (%s)",
           med[W0] / med[L_OFF], med[W0] >= 0.8 * med[L_OFF] ? "met" : "not met");
    if (latency > 0)
        printf(", %.2fx at %d ms (%s)", med[WLAT] / med[L_OFF], latency,
               med[WLAT] >= 0.8 * med[L_OFF] ? "met" : "not met");
    printf("\n");
}

/* ---- 2. sync latency ---------------------------------------------------------------------- */

#define SYNC_ROW_BYTES 3500 /* one row per 4 KiB page */

/*
 * The sync latencies at one fakes3 latency, on replica `name`: med[i] the median ms of
 * litestream_sync() after a transaction that dirties pages[i] pages (dp[i]: what the stats
 * counted), *empty_ms with nothing to ship, *first_ms the first sync of the whole table.
 */
static void sync_at(int latency, const char *name, const long *pages, int npages, int reps,
                    double *med, double *lo, double *hi, long long *dp, double *empty_ms,
                    double *first_ms)
{
    long rows = 0;
    for (int i = 0; i < npages; i++)
        rows = pages[i] > rows ? pages[i] : rows;
    server s;
    server_start(&s, latency);
    char uri[800], sql[300], extra[64];
    /* a cache that holds the whole table: the UPDATEs between syncs read every row, and a page
     * that left the buffer with a sync is otherwise read back from the store (not timed, but
     * slow at 40 ms) */
    snprintf(extra, sizeof extra, "sync_interval=-1&cache_size=%ldM", rows * 5 / 1024 + 16);
    write_uri(uri, sizeof uri, &s, name, extra);
    sqlite3 *db = open_uri(uri, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (!db) {
        server_stop(&s);
        return;
    }
    snprintf(sql, sizeof sql,
             "pragma page_size=4096; create table p(id integer primary key, b blob);"
             "with recursive c(i) as (select 1 union all select i + 1 from c where i < %ld) "
             "insert into p(b) select randomblob(%d) from c",
             rows, SYNC_ROW_BYTES);
    if (!exec_sql(db, sql, "fill the sync table")) {
        sqlite3_close(db);
        server_stop(&s);
        return;
    }
    unsigned long long txid = lsync(db, first_ms), prev = txid;
    if (txid == 0)
        fail("the first sync returned no TXID", NULL);
    double t[64];
    for (int r = 0; r < reps; r++) {
        unsigned long long x = lsync(db, &t[r]);
        if (x != prev)
            fail("litestream_sync() with nothing to ship changed the TXID", NULL);
    }
    *empty_ms = median(t, reps);
    static int version;
    for (int i = 0; i < npages; i++) {
        long k = pages[i];
        for (int r = 0; r < reps; r++) {
            if (k <= 1)
                snprintf(sql, sizeof sql, "pragma user_version=%d", ++version);
            else
                snprintf(sql, sizeof sql, "update p set b = randomblob(%d) where id %% %ld = 0",
                         SYNC_ROW_BYTES, rows / k);
            if (!exec_sql(db, sql, "dirty pages"))
                break;
            dp[i] = wstat(db, "dirty_pages");
            unsigned long long x = lsync(db, &t[r]);
            if (x <= prev)
                fail("litestream_sync() of a new transaction did not move the TXID on", NULL);
            prev = x;
            char now[64], want[64];
            snprintf(want, sizeof want, "%016llx", x);
            if (query_text(db, "select litestream_txid()", now, sizeof now) &&
                strcasecmp(now, want) != 0)
                fail("litestream_txid() is not the TXID litestream_sync() returned", now);
            if (wstat(db, "dirty_pages") != 0 || wstat(db, "pending_txs") != 0)
                fail("dirty pages or pending transactions left after litestream_sync()", NULL);
        }
        med[i] = median(t, reps);
        lo[i] = t[0];
        hi[i] = t[reps - 1];
    }
    if (query_int(db, "select count(*) from p") != rows)
        fail("the sync table lost rows", name);
    sqlite3_close(db);
    verify_rows(&s, name, "p", rows);
    server_stop(&s);
}

static void bench_sync(int latency, const long *pages, int npages, int reps)
{
    printf(
        "\n== 2. litestream_sync() latency, sync_interval=-1, fakes3 --latency %d ms%s (median of "
        "%d)\n",
        latency, latency > 0 ? " and 0 ms" : "", reps);
    double m[2][MAX_LIST] = {{0}}, lo[2][MAX_LIST] = {{0}}, hi[2][MAX_LIST] = {{0}}, empty[2] = {0},
           first[2] = {0};
    long long dp[2][MAX_LIST] = {{0}};
    sync_at(latency, "synclat", pages, npages, reps, m[0], lo[0], hi[0], dp[0], &empty[0],
            &first[0]);
    if (latency > 0)
        sync_at(0, "sync0", pages, npages, reps, m[1], lo[1], hi[1], dp[1], &empty[1], &first[1]);
    double lat = latency > 0 ? latency : 1;
    long rows = 0;
    for (int i = 0; i < npages; i++)
        rows = pages[i] > rows ? pages[i] : rows;
    printf("%-22s %9s %17s", "dirty pages (stats)", "ms", "min-max ms");
    if (latency > 0)
        printf(" %7s %11s %16s", "RT", "ms at 0 ms", "RT of latency");
    printf("\n");
    for (int i = -1; i < npages; i++) {
        char what[64], range[48] = "";
        if (i < 0)
            snprintf(what, sizeof what, "nothing to ship");
        else
            snprintf(what, sizeof what, "%ld (%lld)", pages[i], dp[0][i]);
        if (i >= 0)
            snprintf(range, sizeof range, "%.1f-%.1f", lo[0][i], hi[0][i]);
        double a = i < 0 ? empty[0] : m[0][i], z = i < 0 ? empty[1] : m[1][i];
        printf("%-22s %9.1f %17s", what, a, range);
        if (latency > 0)
            printf(" %7.2f %11.1f %16.2f", a / lat, z, fabs(a - z) < 0.05 ? 0.0 : (a - z) / lat);
        printf("\n");
    }
    if (latency > 0)
        printf("(RT: ms / %d; RT of latency: (ms - ms at 0 ms) / %d, what the latency adds)\n",
               latency, latency);
    printf("first sync of the whole table (%ld pages): %.0f ms at %d ms", rows, first[0], latency);
    if (latency > 0)
        printf(", %.0f ms at 0 ms", first[1]);
    printf("\n");
}

/* ---- 3. sustained rate -------------------------------------------------------------------- */

/* One phase: inserts paced at rate/s (0: as fast as possible) for secs. Returns the rate reached.
 */
static double sustained_phase(const server *s, const char *name, double rate, double secs,
                              int *bounded)
{
    char uri[800];
    write_uri(uri, sizeof uri, s, name, "sync_interval=1s");
    sqlite3 *db = open_uri(uri, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    *bounded = 0;
    if (!db)
        return 0;
    sqlite3_stmt *st = NULL;
    if (!create_table(db) ||
        sqlite3_prepare_v2(db, "insert into t(v) values(?)", -1, &st, NULL) != SQLITE_OK) {
        fail("sustained: prepare", sqlite3_errmsg(db));
        sqlite3_close(db);
        return 0;
    }
    if (rate > 0)
        printf("-- target %.0f tx/s for %.0f s\n", rate, secs);
    else
        printf("-- as fast as possible for %.0f s\n", secs);
    printf("   %4s %9s %12s %12s %12s %6s %10s\n", "s", "tx/s", "pending_txs", "dirty_pages",
           "buffer MiB", "syncs", "since sync");
    long long max_pend[2] = {0, 0}, max_buf[2] = {0, 0};
    char row[128];
    long done = 0, last_done = 0;
    double t0 = now_s(), next_sample = t0 + 1;
    int sample = 0, nsamples = (int)(secs + 0.5);
    while (sample < nsamples) {
        if (rate > 0) {
            double due = t0 + (double)done / rate;
            double wait = due - now_s();
            if (wait > 0)
                sleep_s(wait < next_sample - now_s() ? wait : next_sample - now_s());
        }
        double now = now_s();
        if (now >= next_sample) {
            long long pend = wstat(db, "pending_txs"), dirty = wstat(db, "dirty_pages"),
                      buf = wstat(db, "buffer_bytes"), syncs = wstat(db, "syncs"),
                      last = wstat(db, "last_sync_ms");
            sample++;
            char age[32] = "-";
            if (last > 0)
                snprintf(age, sizeof age, "%.0f ms", wall_ms() - (double)last);
            printf("   %4d %9ld %12lld %12lld %12.1f %6lld %10s\n", sample, done - last_done, pend,
                   dirty, (double)buf / 1048576, syncs, age);
            fflush(stdout);
            int half = sample * 2 > nsamples;
            max_pend[half] = pend > max_pend[half] ? pend : max_pend[half];
            max_buf[half] = buf > max_buf[half] ? buf : max_buf[half];
            last_done = done;
            next_sample += 1;
            continue;
        }
        if (rate > 0 && now < t0 + (double)done / rate)
            continue;
        int len = make_row(row, done + 1);
        sqlite3_bind_text(st, 1, row, len, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fail("sustained: insert", sqlite3_errmsg(db));
            break;
        }
        sqlite3_reset(st);
        done++;
    }
    double achieved = (double)done / (now_s() - t0);
    sqlite3_finalize(st);
    long long errs = wstat(db, "sync_errors");
    if (errs != 0)
        fail("sustained: syncs failed against a fakes3 without faults", name);
    if (wstat(db, "syncs") < 1)
        fail("sustained: no background sync in the whole phase", name);
    double ms;
    lsync(db, &ms);
    long long pend_after = wstat(db, "pending_txs");
    if (pend_after != 0)
        fail("sustained: transactions pending after litestream_sync()", name);
    /*
     * Bounded: the second half's largest window is not above the first half's by more than half
     * (plus slack for one slow sync), and the pending transactions never exceed what 3 s of
     * inserts make (a sync interval plus the uploads).
     */
    *bounded = max_pend[1] <= max_pend[0] * 3 / 2 + (long long)(achieved / 2) + 10 &&
               (double)max_pend[1] <= achieved * 3 + 10;
    printf("   reached %.0f tx/s; largest window: %lld txs / %.1f MiB of buffer in the first half, "
           "%lld txs / %.1f MiB in the second: %s; litestream_sync() after the phase: %.0f ms\n",
           achieved, max_pend[0], (double)max_buf[0] / 1048576, max_pend[1],
           (double)max_buf[1] / 1048576, *bounded ? "bounded" : "GROWING", ms);
    if (query_int(db, "select count(*) from t") != done)
        fail("sustained: the row count is not the number of inserts", name);
    sqlite3_close(db);
    verify_rows(s, name, "t", done);
    return achieved;
}

static void bench_sustained(int latency, const long *rates, int nrates, double secs)
{
    printf("\n== 3. sustained write rate, fakes3 --latency %d ms, sync interval 1s\n", latency);
    server s;
    server_start(&s, latency);
    double best = 0;
    int all = 1;
    for (int i = 0; i < nrates; i++) {
        char name[64];
        int bounded;
        snprintf(name, sizeof name, "sus%d", i);
        double got = sustained_phase(&s, name, (double)rates[i], secs, &bounded);
        if (bounded && got > best)
            best = got;
        all &= bounded;
    }
    server_stop(&s);
    printf("highest rate with the buffer bounded: %.0f tx/s%s\n", best,
           all ? " (bounded at every rate tried)" : "");
}

/* ---- main --------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    int smoke = 0, latency = 40, runs = 3, reps = 5, keep = 0, only = 0;
    long n = 1000000;
    double max_s = 3, secs = 10;
    const char *pages_s = "1,100,10000", *rates_s = "1000,10000,0";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--verify") == 0 && i + 3 < argc) {
            i += 3;
        } else if (strcmp(argv[i], "--smoke") == 0) {
            smoke = 1;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--keep") == 0) {
            keep = 1;
        } else if (strcmp(argv[i], "--latency") == 0 && i + 1 < argc) {
            latency = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
            n = atol(argv[++i]);
        } else if (strcmp(argv[i], "--max-seconds") == 0 && i + 1 < argc) {
            max_s = atof(argv[++i]);
        } else if (strcmp(argv[i], "--pages") == 0 && i + 1 < argc) {
            pages_s = argv[++i];
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--rates") == 0 && i + 1 < argc) {
            rates_s = argv[++i];
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            secs = atof(argv[++i]);
        } else {
            fprintf(stderr,
                    "usage: bench_write [--smoke] [--latency MS] [--runs N] [--n N] "
                    "[--max-seconds S] [--pages N,N..] [--reps N] [--rates R,R..] [--seconds S] "
                    "[--only 1|2|3] [--keep]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (smoke) {
        latency = 0;
        runs = 1;
        n = 50;
        max_s = 1;
        pages_s = "1,10,100";
        reps = 1;
        rates_s = "0";
        secs = 2;
    }
    runs = runs < 1 ? 1 : runs > 16 ? 16 : runs;
    reps = reps < 1 ? 1 : reps > 64 ? 64 : reps;
    const char *b = getenv("LTXVFS_BUILD_DIR");
    if (b)
        build_dir = b;
    ssize_t len = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (len <= 0)
        die("readlink /proc/self/exe: %s", strerror(errno));
    self_exe[len] = 0;

    char ext[600];
    snprintf(ext, sizeof ext, "%s/litestream-vfs", build_dir);
    sqlite3 *loader;
    char *err = NULL;
    sqlite3_open(":memory:", &loader);
    sqlite3_enable_load_extension(loader, 1);
    if (sqlite3_load_extension(loader, ext, NULL, &err) != SQLITE_OK)
        die("load: %s", err);
    setenv("AWS_ACCESS_KEY_ID", KEY, 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    setenv("AWS_REGION", "us-east-1", 1);
    if (argc == 5 && strcmp(argv[1], "--verify") == 0) {
        int rc = verify_main(argv[2], argv[3], atoll(argv[4]));
        sqlite3_close(loader);
        return rc;
    }

    const char *tmp = getenv("TMPDIR");
    snprintf(work, sizeof work, "%s/bench-write-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(work))
        die("mkdtemp: %s", strerror(errno));
    double load[3] = {0};
    if (getloadavg(load, 3) < 0)
        load[0] = -1;
    printf("bench_write: write mode against local SQLite, SQLite %s, in %s (load average %.2f at "
           "the start)\n",
           sqlite3_libversion(), work, load[0]);

    long pages[MAX_LIST], rates[MAX_LIST];
    int npages = parse_list(pages_s, pages), nrates = parse_list(rates_s, rates);
    if (!only || only == 1)
        bench_inserts(latency, runs, n, max_s);
    if (!only || only == 2)
        bench_sync(latency, pages, npages, reps);
    if (!only || only == 3)
        bench_sustained(latency, rates, nrates, secs);

    sqlite3_close(loader);
    if (!keep) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_write: could not remove %s\n", work);
    } else {
        printf("kept %s\n", work);
    }
    if (failures) {
        fprintf(stderr, "bench_write: %d failure(s)\n", failures);
        return 1;
    }
    return 0;
}
