/*
 * bench_hydrate: hydration (LITESTREAM_HYDRATION_PATH, vfs/hydrate.h) against the other ways of
 * getting a database out of a replica, in the same run.
 *
 * For each database size (default 10 and 100 MiB; table t: integer key, a key text, a 1 KiB
 * random blob, so it does not compress) imported with `ltxctl import` into a fakes3, and for each
 * latency (default 0 and 40 ms: fakes3 --latency), --trials rounds of, in turn:
 *   - hydrate: a fresh process (fork: nothing cached, no connection) opens the database with
 *     hydration=FILE, answers one point query (the time to the first answer: served remotely),
 *     then polls litestream_stats() until hydration.state is "ready": the time from before the
 *     open to ready (wall), and the hydrator's own cutover_ms; then a full scan checks the answer;
 *   - `ltxctl restore URL -o DB` of the same replica (the whole process: start, fsync, rename);
 *   - `aws s3 cp` of the snapshot object (the same bytes, one GET), unless --no-aws or no aws
 *     on PATH (then said, and the column left out);
 * medians and the ratios hydrate/restore and hydrate/aws. Then, per size, query latency after
 * cutover (fakes3 at the highest latency, so that any page that still went remote would show as
 * tens of ms): per-query medians of random point queries and of full scans through the hydrated
 * VFS, against plain SQLite on a local copy of the same database, alternately, and the page
 * requests the VFS made meanwhile (should be 0).
 *
 * Figures are printed with the aims (100 MiB at 40 ms: under 1.5 s to cutover; queries within
 * 1.1x of local SQLite), never enforced. Exit 1 when something does not work (a server that does
 * not start, a wrong answer, a tool that fails), 2 for a bad command line. --smoke (CTest): a
 * 2 MiB database, 0 ms, one trial, a few queries, no awscli.
 *
 *   bench_hydrate [--smoke] [--sizes MB,MB...] [--latencies MS,MS...] [--trials N]
 *                 [--queries N] [--no-aws]
 *
 * Single-threaded (the VFS's threads aside); a trial's child is forked while the parent has no
 * litestream connection open.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

#define KEY      "benchkey"
#define SECRET   "benchsecret"
#define BUCKET   "bench"
#define SNAPSHOT "0009/0000000000000001-0000000000000001.ltx"

static const char *build_dir = ".";
static char work[256];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_hydrate: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int run_cmd(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
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

/* ---- fakes3 ------------------------------------------------------------------------------- */

typedef bench_fakes3 server;

static void server_start(server *s, const char *data_dir, int latency_ms)
{
    char out[512];
    snprintf(out, sizeof out, "%s/fakes3.out", work);
    bench_fakes3_start(s, "bench_hydrate", build_dir, data_dir, out, latency_ms, KEY, SECRET,
                       BUCKET);
}

static void server_stop(server *s)
{
    bench_fakes3_stop(s);
}

/* ---- the database ------------------------------------------------------------------------- */

static void exec_sql(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        die("%s", err ? err : sqlite3_errmsg(db));
}

/* A database of about mb MiB: rows of a 1 KiB random blob (a 4 KiB page holds 3 rows). Returns
 * the row count. */
static long make_db(const char *path, int mb)
{
    unlink(path);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("cannot create %s", path);
    exec_sql(db, "pragma page_size=4096; pragma journal_mode=off; pragma synchronous=off;"
                 "create table t(id integer primary key, k text, v blob)");
    long rows = (long)mb * 1024 * 1024 / 1368; /* a row costs ~1368 bytes of file */
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "insert into t values(?, ?, ?)", -1, &st, NULL);
    exec_sql(db, "begin");
    uint8_t blob[1024];
    for (long i = 1; i <= rows; i++) {
        for (size_t j = 0; j < sizeof blob; j += 8) {
            uint64_t r = next_rand();
            memcpy(blob + j, &r, 8);
        }
        char k[32];
        snprintf(k, sizeof k, "key-%ld", i);
        sqlite3_bind_int64(st, 1, i);
        sqlite3_bind_text(st, 2, k, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 3, blob, sizeof blob, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            die("insert: %s", sqlite3_errmsg(db));
        sqlite3_reset(st);
    }
    exec_sql(db, "commit");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rows;
}

static sqlite3 *open_db(const char *uri)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK)
        die("open %s: %s", uri, db ? sqlite3_errmsg(db) : "out of memory");
    return db;
}

static void point_query(sqlite3 *db, sqlite3_stmt **st, long id)
{
    if (!*st && sqlite3_prepare_v2(db, "select length(v), k from t where id = ?", -1, st, NULL) !=
                    SQLITE_OK)
        die("prepare: %s", sqlite3_errmsg(db));
    sqlite3_bind_int64(*st, 1, id);
    if (sqlite3_step(*st) != SQLITE_ROW)
        die("point query %ld: %s", id, sqlite3_errmsg(db));
    char want[32];
    snprintf(want, sizeof want, "key-%ld", id);
    if (sqlite3_column_int(*st, 0) != 1024 ||
        strcmp((const char *)sqlite3_column_text(*st, 1), want) != 0)
        die("point query %ld: a wrong answer", id);
    sqlite3_reset(*st);
}

/* Full scan: sum of the blob lengths and of the first byte of each blob. */
static long long scan(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "select sum(length(v)) + sum(unicode(substr(k, 5))) + "
                           "sum(hex(substr(v, 1, 1)) = 'FF') from t",
                           -1, &st, NULL) != SQLITE_OK)
        die("prepare: %s", sqlite3_errmsg(db));
    if (sqlite3_step(st) != SQLITE_ROW)
        die("scan: %s", sqlite3_errmsg(db));
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* json_extract(litestream_stats(), path) as text into out. */
static void stat_text(sqlite3 *db, const char *path, char *out, size_t cap)
{
    sqlite3_stmt *st;
    char sql[160];
    snprintf(sql, sizeof sql, "select json_extract(litestream_stats(), '%s')", path);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
        die("litestream_stats: %s", sqlite3_errmsg(db));
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
    sqlite3_finalize(st);
}

static long stat_long(sqlite3 *db, const char *path)
{
    char t[64];
    stat_text(db, path, t, sizeof t);
    return atol(t);
}

/* Waits until hydration is ready (dies when it fails or takes over 10 minutes). */
static void wait_ready(sqlite3 *db)
{
    double end = now_s() + 600;
    for (;;) {
        char state[32];
        stat_text(db, "$.hydration.state", state, sizeof state);
        if (strcmp(state, "ready") == 0)
            return;
        if (strcmp(state, "failed") == 0 || strcmp(state, "off") == 0) {
            char why[512];
            stat_text(db, "$.hydration.error", why, sizeof why);
            die("hydration %s: %s", state, why);
        }
        if (now_s() > end)
            die("hydration not ready after 10 minutes (%s)", state);
        usleep(2000);
    }
}

/* ---- one size ----------------------------------------------------------------------------- */

typedef struct trial {
    double first; /* open + first point query (s) */
    double ready; /* open to hydration ready (s) */
    double cutover_ms;
} trial;

/* One hydration in a fresh process. */
static trial hydrate_once(const char *uri, long rows, long long want)
{
    int fds[2];
    if (pipe(fds) != 0)
        die("pipe: %s", strerror(errno));
    long id = 1 + (long)(next_rand() % (uint64_t)rows);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        sqlite3_stmt *st = NULL;
        double a = now_s();
        sqlite3 *db = open_db(uri);
        point_query(db, &st, id);
        trial t = {now_s() - a, 0, 0};
        wait_ready(db);
        t.ready = now_s() - a;
        t.cutover_ms = (double)stat_long(db, "$.hydration.cutover_ms");
        if (scan(db) != want)
            die("the full scan after cutover differs from local SQLite's");
        sqlite3_finalize(st);
        sqlite3_close(db);
        _exit(write(fds[1], &t, sizeof t) == sizeof t ? 0 : 1);
    }
    close(fds[1]);
    trial t;
    int status = 0;
    ssize_t n = read(fds[0], &t, sizeof t);
    close(fds[0]);
    if (waitpid(pid, &status, 0) != pid || status != 0 || n != sizeof t)
        die("a hydration trial failed");
    return t;
}

static double timed_cmd(const char *cmd, const char *what, const char *errfile)
{
    double a = now_s();
    if (run_cmd(cmd) != 0)
        die("%s failed (see %s)", what, errfile);
    return now_s() - a;
}

static void bench_size(int mb, const int *lat, int nlat, int trials, int queries, int aws)
{
    char src[300], data[300], uri[700], cmd[2048], hyd[300], out[300], errf[300];
    snprintf(src, sizeof src, "%s/src-%d.db", work, mb);
    snprintf(data, sizeof data, "%s/data-%d", work, mb);
    snprintf(hyd, sizeof hyd, "%s/hydrated-%d.db", work, mb);
    snprintf(out, sizeof out, "%s/out-%d", work, mb);
    snprintf(errf, sizeof errf, "%s/cmd.err", work);
    printf("\n== %d MiB database\n", mb);
    double t0 = now_s();
    long rows = make_db(src, mb);
    struct stat sb;
    if (stat(src, &sb) != 0)
        die("stat %s: %s", src, strerror(errno));
    sqlite3 *local = open_db(src);
    long long want = scan(local);
    sqlite3_close(local);
    printf("made %ld rows, %.1f MiB, in %.1f s\n", rows, (double)sb.st_size / 1048576,
           now_s() - t0);

    server s;
    server_start(&s, data, 0);
    snprintf(cmd, sizeof cmd, "'%s/ltxctl' import '%s' 's3://" BUCKET "/db?endpoint=%s' >'%s' 2>&1",
             build_dir, src, s.url, errf);
    timed_cmd(cmd, "ltxctl import", errf);
    server_stop(&s);
    /* "DB: imported as KEY: TXID ..., N pages of 4096 bytes, checksum ..., SIZE bytes" */
    char said[1024] = "";
    FILE *f = fopen(errf, "r");
    size_t got = f ? fread(said, 1, sizeof said - 1, f) : 0;
    said[got] = 0;
    if (f)
        fclose(f);
    char *comma = strrchr(said, ',');
    double objsize = comma ? atof(comma + 1) : 0;
    if (objsize <= 0)
        die("ltxctl import said: %s", said);
    printf("imported with ltxctl import: one snapshot object of %.1f MB; %d trials each, medians\n",
           objsize / 1e6, trials);

    printf("%-8s %9s %9s %10s %9s %9s %8s %8s %12s\n", "latency", "hydrate", "(cutover",
           "1st answer", "restore", "aws cp", "h/rest", "h/aws", "hydrate MB/s");
    printf("%-8s %9s %9s %10s %9s %9s %8s %8s %12s\n", "", "s", "ms)", "ms", "s", "s", "", "", "");
    for (int li = 0; li < nlat; li++) {
        server_start(&s, data, lat[li]);
        snprintf(uri, sizeof uri,
                 "file:h?vfs=litestream&replica=s3://" BUCKET "/db?endpoint=%s&hydration=%s", s.url,
                 hyd);
        double *ready = calloc((size_t)trials, sizeof(double));
        double *cut = calloc((size_t)trials, sizeof(double));
        double *first = calloc((size_t)trials, sizeof(double));
        double *rest = calloc((size_t)trials, sizeof(double));
        double *awt = calloc((size_t)trials, sizeof(double));
        if (!ready || !cut || !first || !rest || !awt)
            die("out of memory");
        for (int i = 0; i < trials; i++) {
            trial t = hydrate_once(uri, rows, want);
            ready[i] = t.ready;
            cut[i] = t.cutover_ms;
            first[i] = t.first;
            if (access(hyd, F_OK) == 0)
                die("the hydration file %s was left after a clean close", hyd);

            snprintf(cmd, sizeof cmd,
                     "'%s/ltxctl' restore -q --force 's3://" BUCKET "/db?endpoint=%s' -o '%s' "
                     ">'%s' 2>&1",
                     build_dir, s.url, out, errf);
            rest[i] = timed_cmd(cmd, "ltxctl restore", errf);
            local = open_db(out);
            if (scan(local) != want)
                die("ltxctl restore gave another database");
            sqlite3_close(local);
            unlink(out);

            if (aws) {
                snprintf(cmd, sizeof cmd,
                         "AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null "
                         "AWS_EC2_METADATA_DISABLED=true aws --endpoint-url '%s' s3 cp "
                         "--only-show-errors s3://" BUCKET "/db/" SNAPSHOT " '%s' >'%s' 2>&1",
                         s.url, out, errf);
                awt[i] = timed_cmd(cmd, "aws s3 cp", errf);
                unlink(out);
            }
        }
        double awsup = 0;
        if (aws) { /* the CLI's own start-up, to read the aws column with */
            snprintf(cmd, sizeof cmd, "aws --version >'%s' 2>&1", errf);
            awsup = timed_cmd(cmd, "aws --version", errf);
        }
        double mr = median(ready, trials), mc = median(cut, trials), mf = median(first, trials);
        double mrest = median(rest, trials), maws = aws ? median(awt, trials) : 0;
        char awss[32] = "-", ratio[32] = "-";
        if (aws) {
            snprintf(awss, sizeof awss, "%.3f", maws);
            snprintf(ratio, sizeof ratio, "%.2f", mr / maws);
        }
        char label[16];
        snprintf(label, sizeof label, "%d ms", lat[li]);
        printf("%-8s %9.3f %9.0f %10.1f %9.3f %9s %8.2f %8s %12.0f\n", label, mr, mc, mf * 1000,
               mrest, awss, mr / mrest, ratio, (double)sb.st_size / 1e6 / mr);
        if (aws)
            printf("         (aws --version alone, the CLI's start-up: %.3f s)\n", awsup);
        if (mb == 100 && lat[li] == 40)
            printf("aim: 100 MiB at 40 ms to cutover under 1.5 s: %.3f s, %s\n", mr,
                   mr < 1.5 ? "met" : "not met");
        free(ready);
        free(cut);
        free(first);
        free(rest);
        free(awt);
        server_stop(&s);
    }

    /* query latency after cutover, at the highest latency (a remote page would show) */
    int maxlat = 0;
    for (int li = 0; li < nlat; li++)
        maxlat = lat[li] > maxlat ? lat[li] : maxlat;
    server_start(&s, data, maxlat);
    snprintf(uri, sizeof uri,
             "file:q?vfs=litestream&replica=s3://" BUCKET "/db?endpoint=%s&hydration=%s", s.url,
             hyd);
    sqlite3 *db = open_db(uri);
    wait_ready(db);
    local = open_db(src);
    if (scan(db) != want || scan(local) != want) /* warm both: every page read once */
        die("a full scan after cutover differs from local SQLite's");
    long pages0 = stat_long(db, "$.requests.pages");
    long reads0 = stat_long(db, "$.hydration.reads");
    sqlite3_stmt *vs = NULL, *ls = NULL;
    double *vq = calloc((size_t)queries, sizeof(double));
    double *lq = calloc((size_t)queries, sizeof(double));
    if (!vq || !lq)
        die("out of memory");
    for (int i = 0; i < queries; i++) {
        long id = 1 + (long)(next_rand() % (uint64_t)rows);
        double a = now_s();
        point_query(db, &vs, id);
        double b = now_s();
        point_query(local, &ls, id);
        vq[i] = b - a;
        lq[i] = now_s() - b;
    }
    int scans = queries >= 1000 ? 7 : 3;
    double vsc[7], lsc[7];
    for (int i = 0; i < scans; i++) {
        double a = now_s();
        if (scan(db) != want)
            die("a full scan after cutover differs");
        double b = now_s();
        scan(local);
        vsc[i] = b - a;
        lsc[i] = now_s() - b;
    }
    long pages = stat_long(db, "$.requests.pages") - pages0;
    long reads = stat_long(db, "$.hydration.reads") - reads0;
    double mv = median(vq, queries), ml = median(lq, queries);
    double msv = median(vsc, scans), msl = median(lsc, scans);
    printf("after cutover (fakes3 at %d ms): point query median %.1f us (local SQLite %.1f us): "
           "%.2fx; full scan median %.1f ms (local %.1f ms): %.2fx; %ld page requests to the "
           "store, %ld pages read from the hydrated file\n",
           maxlat, mv * 1e6, ml * 1e6, mv / ml, msv * 1e3, msl * 1e3, msv / msl, pages, reads);
    printf("aim: queries after cutover within 1.1x of local SQLite: point %s, scan %s\n",
           mv / ml <= 1.1 ? "met" : "not met", msv / msl <= 1.1 ? "met" : "not met");
    if (pages != 0)
        die("%ld page requests to the store after cutover", pages);
    free(vq);
    free(lq);
    sqlite3_finalize(vs);
    sqlite3_finalize(ls);
    sqlite3_close(db);
    sqlite3_close(local);
    server_stop(&s);
    if (access(hyd, F_OK) == 0)
        die("the hydration file %s was left after a clean close", hyd);
}

/* "a,b,c" into v (at most cap numbers); returns the count. */
static int parse_list(const char *s, int *v, int cap)
{
    int n = 0;
    while (*s && n < cap) {
        v[n++] = atoi(s);
        s += strcspn(s, ",");
        if (*s)
            s++;
    }
    return n;
}

int main(int argc, char **argv)
{
    int smoke = 0, trials = 3, queries = 20000, aws = 1;
    const char *sizes = "10,100", *lats = "0,40";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0) {
            smoke = 1;
        } else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
            sizes = argv[++i];
        } else if (strcmp(argv[i], "--latencies") == 0 && i + 1 < argc) {
            lats = argv[++i];
        } else if (strcmp(argv[i], "--trials") == 0 && i + 1 < argc) {
            trials = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--queries") == 0 && i + 1 < argc) {
            queries = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--no-aws") == 0) {
            aws = 0;
        } else {
            fprintf(stderr, "usage: bench_hydrate [--smoke] [--sizes MB,MB...] "
                            "[--latencies MS,MS...] [--trials N] [--queries N] [--no-aws]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* figures as they come, also into a file */
    if (smoke) {
        sizes = "2";
        lats = "0";
        trials = 1;
        queries = 200;
        aws = 0;
    }
    if (trials < 1)
        trials = 1;
    if (queries < 1)
        queries = 1;
    const char *b = getenv("LTXVFS_BUILD_DIR");
    if (b)
        build_dir = b;
    if (aws && run_cmd("command -v aws >/dev/null 2>&1") != 0) {
        printf("note: no aws on PATH: the aws s3 cp column is left out\n");
        aws = 0;
    }
    snprintf(work, sizeof work, "/tmp/bench-hydrate-XXXXXX");
    if (!mkdtemp(work))
        die("mkdtemp: %s", strerror(errno));
    char ext[600];
    snprintf(ext, sizeof ext, "%s/litestream-vfs", build_dir);
    sqlite3 *loader;
    char *err = NULL;
    sqlite3_open(":memory:", &loader);
    sqlite3_enable_load_extension(loader, 1);
    if (sqlite3_load_extension(loader, ext, NULL, &err) != SQLITE_OK)
        die("load %s: %s", ext, err ? err : "?");
    setenv("AWS_ACCESS_KEY_ID", KEY, 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    setenv("AWS_REGION", "us-east-1", 1);
    int lat[8];
    int nlat = parse_list(lats, lat, 8);
    printf("bench_hydrate: time to cutover beside ltxctl restore%s, then queries against local "
           "SQLite\n",
           aws ? " and aws s3 cp" : "");
    for (const char *p = sizes; *p;) {
        int mb = atoi(p);
        if (mb > 0)
            bench_size(mb, lat, nlat, trials, queries, aws);
        p += strcspn(p, ",");
        if (*p)
            p++;
    }
    sqlite3_close(loader);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_hydrate: could not remove %s\n", work);
    return 0;
}
