/*
 * bench_vfs: the read-mode VFS against plain SQLite on the same database, in the same run.
 *
 * For each database size (default 10 MiB and 1 GiB; --smoke: 2 MiB, one trial, no latency):
 *   1. a SQLite database of that size (table t: integer key, 1 KiB random blob) is made, encoded
 *      as a snapshot with ltx_encode_db and uploaded (lib/s3.c) to a fakes3; each cold trial runs
 *      in a child process of its own, so it opens a replica its process has never seen (no
 *      cache, no connection);
 *   2. cold: fakes3 restarted with --latency (default 40ms); open + first point query, per
 *      trial: wall time, round trips (wall / latency) and requests (from litestream_stats()),
 *      beside plain SQLite's open + the same query on the local file;
 *   3. warm (fakes3 without latency, the cache as large as the database, every page read once):
 *      random point queries per second and a full scan, against plain SQLite on the local file
 *      (ratio: the VFS's time over local's);
 *   4. memory: the process's resident memory growth against the configured cache size.
 * Figures are printed; nothing passes or fails on time. Exit 1 if anything does not work (a
 * server that does not start, a wrong answer).
 *
 *   bench_vfs [--smoke] [--sizes MB,MB...] [--latency MS] [--trials N] [--queries N]
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

#include "ltx.h"
#include "s3.h"

#define KEY    "benchkey"
#define SECRET "benchsecret"
#define BUCKET "bench"

static const char *build_dir = ".";
static char work[256];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, const char *a)
{
    fprintf(stderr, "bench_vfs: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
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

/* ---- fakes3 ------------------------------------------------------------------------------- */

typedef bench_fakes3 server;

static void server_start(server *s, const char *data_dir, int latency_ms)
{
    char out[512];
    snprintf(out, sizeof out, "%s/fakes3.out", work);
    bench_fakes3_start(s, "bench_vfs", build_dir, data_dir, out, latency_ms, KEY, SECRET, BUCKET);
}

static void server_stop(server *s)
{
    bench_fakes3_stop(s);
}

static size_t collect(char *data, size_t size, size_t n, void *ctx)
{
    char *buf = ctx;
    size_t have = strlen(buf), add = size * n;
    if (have + add < 4096) {
        memcpy(buf + have, data, add);
        buf[have + add] = 0;
    }
    return add;
}

/* Requests fakes3 has answered so far (its /_fakes3/stats), to count what a trial cost. */
static long server_requests(const server *s)
{
    char url[128], body[4096] = "";
    snprintf(url, sizeof url, "%s/_fakes3/stats", s->url);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
    curl_easy_setopt(c, CURLOPT_USERPWD, KEY ":" SECRET);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    const char *at = strstr(body, "\"requests\":");
    if (rc != CURLE_OK || !at)
        die("fakes3 stats: %s", body);
    return atol(at + strlen("\"requests\":"));
}

/* ---- the database ------------------------------------------------------------------------- */

static void exec_sql(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        die("%s", err ? err : sqlite3_errmsg(db));
}

/* A database of about mb MiB: rows of a 1 KiB random blob. Returns the row count. */
static long make_db(const char *path, int mb)
{
    unlink(path);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("cannot create %s", path);
    exec_sql(db, "pragma page_size=4096; pragma journal_mode=off; pragma synchronous=off;"
                 "create table t(id integer primary key, k text, v blob)");
    long rows = (long)mb * 1024 * 1024 / 1100;
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

typedef struct membuf {
    uint8_t *p;
    size_t n, cap;
} membuf;

static lv_err mem_write(void *ctx, const void *buf, size_t n, char *err)
{
    (void)err;
    membuf *m = ctx;
    if (m->n + n > m->cap) {
        m->cap = (m->n + n) * 2;
        m->p = realloc(m->p, m->cap);
        if (!m->p)
            return LV_ENOMEM;
    }
    memcpy(m->p + m->n, buf, n);
    m->n += n;
    return LV_OK;
}

/* Encodes path as a snapshot and uploads it under prefixes p0..p(n-1). */
static void upload(const char *url, const char *path, int n)
{
    int fd = open(path, O_RDONLY);
    membuf m = {0};
    char err[LV_ERRLEN] = "";
    if (fd < 0 || ltx_encode_db(fd, 1767225600000LL, mem_write, &m, NULL, NULL, err) != LV_OK)
        die("encode: %s", err);
    close(fd);
    s3_config cfg;
    s3_config_init(&cfg);
    cfg.endpoint = url;
    cfg.path_style = 1;
    cfg.access_key = KEY;
    cfg.secret_key = SECRET;
    cfg.unsigned_payload = 1;
    s3_client *c;
    if (s3_client_new(&cfg, &c, err) != LV_OK)
        die("%s", err);
    for (int i = 0; i < n; i++) {
        char key[128];
        snprintf(key, sizeof key, "p%d/0009/0000000000000001-0000000000000001.ltx", i);
        if (s3_put(c, BUCKET, key, m.p, m.n, NULL, NULL, err) != LV_OK)
            die("upload: %s", err);
    }
    s3_client_free(c);
    free(m.p);
}

/* ---- measuring ---------------------------------------------------------------------------- */

static sqlite3 *open_db(const char *uri)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK)
        die("open: %s", db ? sqlite3_errmsg(db) : uri);
    return db;
}

/* One point query; returns the blob's length (1024) or dies. */
static int point_query(sqlite3 *db, sqlite3_stmt **st, long id)
{
    if (!*st &&
        sqlite3_prepare_v2(db, "select length(v) from t where id = ?", -1, st, NULL) != SQLITE_OK)
        die("prepare: %s", sqlite3_errmsg(db));
    sqlite3_bind_int64(*st, 1, id);
    if (sqlite3_step(*st) != SQLITE_ROW)
        die("point query: %s", sqlite3_errmsg(db));
    int len = sqlite3_column_int(*st, 0);
    sqlite3_reset(*st);
    if (len != 1024)
        die("point query: %s", "wrong answer");
    return len;
}

static long long scan(sqlite3 *db)
{
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "select sum(length(v)) from t", -1, &st, NULL);
    if (sqlite3_step(st) != SQLITE_ROW)
        die("scan: %s", sqlite3_errmsg(db));
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static long stat_field(sqlite3 *db, const char *field)
{
    sqlite3_stmt *st;
    char sql[128];
    snprintf(sql, sizeof sql, "select json_extract(litestream_stats(), '$.%s')", field);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
        die("litestream_stats: %s", sqlite3_errmsg(db));
    long v = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Resident memory now (not the peak: the upload before the warm runs held the whole file). */
static long rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2)
        die("%s", "cannot read /proc/self/statm");
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bench_size(int mb, int latency, int trials, int queries)
{
    char src[300], data[300], uri[600];
    snprintf(src, sizeof src, "%s/src-%d.db", work, mb);
    snprintf(data, sizeof data, "%s/data-%d", work, mb);
    printf("\n== %d MiB database\n", mb);
    double t0 = now_s();
    long rows = make_db(src, mb);
    struct stat sb;
    stat(src, &sb);
    printf("made %ld rows, %.1f MiB, in %.1f s\n", rows, (double)sb.st_size / 1048576,
           now_s() - t0);
    server s;
    server_start(&s, data, 0);
    t0 = now_s();
    upload(s.url, src, 1);
    printf("snapshot uploaded in %.1f s\n", now_s() - t0);
    server_stop(&s);

    /* cold: open + first point query, each trial a replica this process has not opened */
    if (latency > 0) {
        server_start(&s, data, latency);
        double *wall = calloc((size_t)trials, sizeof *wall);
        long reqs = 0;
        snprintf(uri, sizeof uri, "file:cold?vfs=litestream&replica=s3://" BUCKET "/p0?endpoint=%s",
                 s.url);
        for (int i = 0; i < trials; i++) {
            int fds[2];
            if (pipe(fds) != 0)
                die("pipe: %s", strerror(errno));
            long id = 1 + (long)(next_rand() % (uint64_t)rows);
            long before = server_requests(&s);
            pid_t pid = fork();
            if (pid == 0) { /* a fresh process: nothing cached, no connection open */
                sqlite3_stmt *st = NULL;
                double a = now_s();
                sqlite3 *db = open_db(uri);
                point_query(db, &st, id);
                double result[2] = {now_s() - a, 0};
                sqlite3_finalize(st);
                result[1] =
                    (double)(stat_field(db, "requests.lists") + stat_field(db, "requests.pages") +
                             stat_field(db, "requests.indexes"));
                sqlite3_close(db);
                _exit(write(fds[1], result, sizeof result) == sizeof result ? 0 : 1);
            }
            close(fds[1]);
            double result[2];
            int status = 0;
            if (read(fds[0], result, sizeof result) != sizeof result ||
                waitpid(pid, &status, 0) != pid || status != 0)
                die("%s", "a cold trial failed");
            close(fds[0]);
            wall[i] = result[0];
            reqs = server_requests(&s) - before - 1; /* less the first stats request itself */
        }
        qsort(wall, (size_t)trials, sizeof *wall, cmp_double);
        double med = wall[trials / 2];
        /* local baseline */
        double lw = 0;
        for (int i = 0; i < trials; i++) {
            sqlite3_stmt *st = NULL;
            double a = now_s();
            sqlite3 *db = open_db(src);
            point_query(db, &st, 1 + (long)(next_rand() % (uint64_t)rows));
            lw += now_s() - a;
            sqlite3_finalize(st);
            sqlite3_close(db);
        }
        printf("cold open + first point query, %d ms latency: median %.0f ms over %d trials "
               "(min %.0f, max %.0f) = %.1f round trips; %ld requests to fakes3 (listings of 10 "
               "levels, index fetches, page GETs); local SQLite: %.2f ms\n",
               latency, med * 1000, trials, wall[0] * 1000, wall[trials - 1] * 1000,
               med * 1000 / latency, reqs, lw / trials * 1000);
        free(wall);
        server_stop(&s);
    }

    /* warm: everything cached */
    server_start(&s, data, 0);
    long rss0 = rss_kb();
    uint64_t cache = (uint64_t)sb.st_size + (uint64_t)sb.st_size / 4;
    snprintf(uri, sizeof uri,
             "file:warm?vfs=litestream&replica=s3://" BUCKET "/p0?endpoint=%s&cache_size=%llu",
             s.url, (unsigned long long)cache);
    sqlite3 *db = open_db(uri);
    sqlite3 *local = open_db(src);
    long long want = scan(local);
    t0 = now_s();
    if (scan(db) != want)
        die("%s", "the VFS's full scan differs from local SQLite's");
    double first_scan = now_s() - t0;
    long pages = stat_field(db, "requests.pages");
    sqlite3_stmt *st = NULL, *lst = NULL;
    double a = now_s();
    for (int i = 0; i < queries; i++)
        point_query(db, &st, 1 + (long)(next_rand() % (uint64_t)rows));
    double vq = now_s() - a;
    a = now_s();
    for (int i = 0; i < queries; i++)
        point_query(local, &lst, 1 + (long)(next_rand() % (uint64_t)rows));
    double lq = now_s() - a;
    double vs = 1e9, ls = 1e9;
    for (int r = 0; r < 3; r++) {
        a = now_s();
        scan(db);
        double x = now_s() - a;
        vs = x < vs ? x : vs;
        a = now_s();
        scan(local);
        x = now_s() - a;
        ls = x < ls ? x : ls;
    }
    long more = stat_field(db, "requests.pages") - pages;
    printf("first full scan through the VFS (cold cache, no latency): %.2f s, %.0f MB/s, %ld page "
           "GETs (read-ahead)\n",
           first_scan, (double)sb.st_size / first_scan / 1e6, pages);
    printf("warm point queries: VFS %.0f/s, local %.0f/s: VFS time %.2fx local's\n", queries / vq,
           queries / lq, vq / lq);
    printf("warm full scan: VFS %.3f s, local %.3f s: %.2fx local's (%ld GETs during the warm "
           "runs)\n",
           vs, ls, vs / ls, more);
    sqlite3_finalize(st);
    sqlite3_finalize(lst);
    long rss1 = rss_kb();
    printf("memory: resident memory grew %.1f MiB with a %.1f MiB cache holding all of a "
           "%.1f MiB database\n",
           (double)(rss1 - rss0) / 1024, (double)cache / 1048576, (double)sb.st_size / 1048576);
    sqlite3_close(db);
    sqlite3_close(local);
    server_stop(&s);
}

int main(int argc, char **argv)
{
    int smoke = 0, latency = 40, trials = 5, queries = 20000;
    const char *sizes = "10,1024";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0) {
            smoke = 1;
        } else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
            sizes = argv[++i];
        } else if (strcmp(argv[i], "--latency") == 0 && i + 1 < argc) {
            latency = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--trials") == 0 && i + 1 < argc) {
            trials = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--queries") == 0 && i + 1 < argc) {
            queries = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_vfs [--smoke] [--sizes MB,MB...] [--latency MS] "
                            "[--trials N] [--queries N]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (smoke) {
        sizes = "2";
        latency = 0;
        trials = 1;
        queries = 200;
    }
    if (trials < 1)
        trials = 1;
    const char *b = getenv("LTXVFS_BUILD_DIR");
    if (b)
        build_dir = b;
    snprintf(work, sizeof work, "/tmp/bench-vfs-XXXXXX");
    if (!mkdtemp(work))
        die("mkdtemp: %s", strerror(errno));
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
    printf("bench_vfs: the litestream VFS against local SQLite (fakes3 %s)\n",
           latency ? "with latency for the cold runs" : "without latency");
    for (const char *p = sizes; *p;) {
        int mb = atoi(p);
        if (mb > 0)
            bench_size(mb, latency, trials, queries);
        p += strcspn(p, ",");
        if (*p)
            p++;
    }
    sqlite3_close(loader);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_vfs: could not remove %s\n", work);
    return 0;
}
