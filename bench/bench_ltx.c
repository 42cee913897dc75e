/*
 * bench_ltx: throughput of the LTX codec, with the lz4 command-line tool as the baseline in the
 * same run.
 *
 * What it does, in order:
 *   1. makes (or reuses, with --db) a SQLite database of --size-mib MiB whose pages compress
 *      roughly like an application's: integer keys, short text, numbers, and blobs of mixed kinds
 *      (random bytes, zeros, repeated text, JSON-like records), plus an index. The content is a
 *      function of --seed only. It lives in a fresh temporary folder, on /dev/shm when that
 *      exists so that no disk is timed, removed at the end unless --keep;
 *   2. times ltx_encode_db into a growable memory buffer, and ltx_verify over ltx_mem_read of the
 *      result (every page decompressed, the file checksum and the snapshot's database checksum
 *      checked), after checking once, untimed, that every decoded page equals the database's;
 *   3. times `lz4 -1` and `lz4 -d` (to a file and to /dev/null) as whole processes on the same
 *      bytes, in the same folder;
 *   4. times, in-process, the pieces the codec is made of: crc64_update over the database, and
 *      LZ4_compress_default / LZ4_decompress_safe page by page;
 *   5. prints one table and the aims of the issue, met or not.
 *
 * Every figure is MB/s (10^6 bytes per second) of *uncompressed* database bytes, the basis lz4
 * itself uses (input bytes when compressing, output bytes when decompressing). Each operation runs
 * once untimed (warm-up), then --reps times; the table gives the median and the range.
 *
 * Exit status: 0 when everything worked, whatever the timings; 1 when something functionally
 * failed (a codec error, a mismatch, lz4 failing); 2 for a bad command line. Timing never fails
 * the run: the aims are printed, not enforced.
 *
 * Single-threaded; the only child processes are the lz4 runs, waited for one at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lz4.h>
#include <sqlite3.h>

#include "crc64.h"
#include "ltx.h"

extern char **environ;

#define MAX_REPS          100
#define DEFAULT_SIZE_MIB  128
#define SMOKE_SIZE_MIB    2
#define DEFAULT_REPS      5
#define BENCH_TIMESTAMP   1735689600000ll /* 2025-01-01T00:00:00Z: fixed, so output repeats */
#define AIM_DECODE_MBPS   800.0
#define AIM_ENCODE_MBPS   300.0
#define AIM_VS_LZ4_FACTOR 2.0

typedef struct opts {
    const char *db_path; /* --db: reuse if it exists, else create there and keep */
    const char *dir;     /* --dir: parent of the temporary folder */
    const char *lz4;     /* --lz4: the lz4 program */
    uint64_t size_mib;
    uint64_t seed;
    int reps;
    int keep;
    int smoke;
} opts;

/* One timed operation: the seconds of each repetition and what its MB/s are relative to. */
typedef struct result {
    const char *name;
    double secs[MAX_REPS];
    int n;
    uint64_t basis;    /* uncompressed bytes processed per repetition */
    uint64_t out_size; /* compressed bytes produced or read; 0 if not meaningful */
} result;

/* Everything the measurements share. Owned by main; freed by bench_free. */
typedef struct bench {
    opts o;
    char workdir[2048];
    char db[2100];
    char lz4_out[2100];
    char lz4_raw[2100];
    int db_created_in_workdir;
    int db_fd;
    uint32_t page_size;
    uint32_t page_count;
    uint8_t *db_bytes; /* the whole database file */
    size_t db_size;
    int have_lz4;
    volatile uint64_t sink; /* keeps in-process results alive */
} bench;

/* ---- small helpers --------------------------------------------------------------------------- */

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void failf(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, LV_ERRLEN, fmt, ap);
    va_end(ap);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- deterministic generator (splitmix64) ---------------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A number in lo..hi inclusive. */
static uint32_t rng_range(rng *r, uint32_t lo, uint32_t hi)
{
    return lo + (uint32_t)(rng_next(r) % ((uint64_t)hi - lo + 1));
}

static void rng_fill(rng *r, uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint64_t v = rng_next(r);
        memcpy(p, &v, 8);
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t v = rng_next(r);
        memcpy(p, &v, n);
    }
}

/* ---- database content ------------------------------------------------------------------------ */

static const char *const words[] = {
    "alpha",   "bravo",  "charlie", "delta",   "echo",      "foxtrot",  "golf",     "hotel",
    "india",   "juliet", "kilo",    "lima",    "mike",      "november", "oscar",    "papa",
    "quebec",  "romeo",  "sierra",  "tango",   "uniform",   "victor",   "whiskey",  "xray",
    "yankee",  "zulu",   "order",   "invoice", "customer",  "shipped",  "pending",  "refund",
    "account", "region", "north",   "south",   "warehouse", "status",   "priority", "ticket",
};
#define NWORDS (sizeof words / sizeof words[0])

static const char *word(rng *r)
{
    return words[rng_next(r) % NWORDS];
}

/* Appends to buf[*len..cap), truncating at cap. */
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (k > 0)
        *len = *len + (size_t)k < cap ? *len + (size_t)k : cap;
}

/*
 * JSON-like records with varying words and numbers: compresses about as well as app text. Every
 * draw is its own statement: the order in which a call's arguments are evaluated is unspecified,
 * and the content must not depend on the compiler.
 */
static size_t payload_records(rng *r, uint8_t *buf, size_t want)
{
    size_t len = 0;
    while (len < want) {
        const char *user = word(r);
        uint32_t uid = rng_range(r, 1, 99999);
        uint32_t n = rng_range(r, 0, 1000000);
        uint32_t units = rng_range(r, 0, 9999);
        uint32_t cents = rng_range(r, 0, 99);
        const char *tag1 = word(r);
        const char *tag2 = word(r);
        const char *ok = rng_range(r, 0, 1) ? "true" : "false";
        append((char *)buf, want, &len,
               "{\"user\":\"%s-%u\",\"n\":%u,\"amount\":%u.%02u,\"tags\":[\"%s\",\"%s\"],"
               "\"ok\":%s}\n",
               user, uid, n, units, cents, tag1, tag2, ok);
    }
    return len;
}

/* One phrase repeated: log lines, templates, padding. */
static size_t payload_repeated(rng *r, uint8_t *buf, size_t want)
{
    char phrase[96];
    const char *w1 = word(r);
    const char *w2 = word(r);
    const char *w3 = word(r);
    int k = snprintf(phrase, sizeof phrase, "%s %s %s %u; ", w1, w2, w3, rng_range(r, 0, 9999));
    for (size_t i = 0; i < want; i++)
        buf[i] = (uint8_t)phrase[i % (size_t)k];
    return want;
}

/*
 * A blob of one of four kinds, by row: random bytes (photos, encrypted or compressed data), zeros
 * (preallocated space), repeated text, JSON-like records. The weights set the overall ratio.
 */
static size_t make_payload(rng *r, uint8_t *buf)
{
    uint32_t kind = rng_range(r, 0, 99);
    size_t want = rng_range(r, 100, 2400);
    if (kind < 22) {
        rng_fill(r, buf, want);
        return want;
    }
    if (kind < 30) {
        memset(buf, 0, want);
        return want;
    }
    if (kind < 46)
        return payload_repeated(r, buf, want);
    return payload_records(r, buf, want);
}

static size_t make_note(rng *r, char *buf, size_t cap)
{
    size_t len = 0;
    uint32_t n = rng_range(r, 2, 8);
    for (uint32_t i = 0; i < n; i++)
        append(buf, cap, &len, i ? " %s" : "%s", word(r));
    return len;
}

static int exec_sql(sqlite3 *db, const char *sql, char *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        failf(err, "sqlite: %s: %s", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static const char *const schema_sql =
    "PRAGMA page_size=4096;"
    "PRAGMA journal_mode=OFF;"
    "PRAGMA synchronous=OFF;"
    "PRAGMA cache_size=-65536;"
    "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, price REAL,"
    " created INTEGER, payload BLOB, note TEXT);"
    "CREATE INDEX items_name_qty ON items(name, qty);";

/* Binds one generated row to the insert statement and runs it. */
static int insert_row(sqlite3_stmt *ins, rng *r, int64_t id, uint8_t *blob, char *err)
{
    char name[64], note[128];
    const char *w1 = word(r);
    const char *w2 = word(r);
    int nl = snprintf(name, sizeof name, "%s-%s-%u", w1, w2, rng_range(r, 0, 999));
    size_t notel = make_note(r, note, sizeof note);
    size_t bl = make_payload(r, blob);
    sqlite3_bind_int64(ins, 1, id);
    sqlite3_bind_text(ins, 2, name, nl, SQLITE_STATIC);
    sqlite3_bind_int(ins, 3, (int)rng_range(r, 0, 5000));
    if (rng_range(r, 0, 9) == 0)
        sqlite3_bind_null(ins, 4);
    else
        sqlite3_bind_double(ins, 4, (double)rng_range(r, 0, 1000000) / 100.0);
    sqlite3_bind_int64(ins, 5, BENCH_TIMESTAMP / 1000 + id * 7);
    sqlite3_bind_blob(ins, 6, blob, (int)bl, SQLITE_STATIC);
    sqlite3_bind_text(ins, 7, note, (int)notel, SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE) {
        failf(err, "sqlite insert row %" PRId64 ": %s", id, sqlite3_errmsg(sqlite3_db_handle(ins)));
        return -1;
    }
    sqlite3_reset(ins);
    return 0;
}

static int64_t page_count(sqlite3 *db)
{
    sqlite3_stmt *st;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Inserts rows in one transaction until the file holds target bytes. */
static int fill_db(sqlite3 *db, uint64_t target, uint64_t seed, char *err)
{
    sqlite3_stmt *ins = NULL;
    uint8_t blob[4096];
    rng r = {seed};
    int rc = -1;
    if (exec_sql(db, "BEGIN", err))
        return -1;
    if (sqlite3_prepare_v2(db, "INSERT INTO items VALUES(?,?,?,?,?,?,?)", -1, &ins, NULL)) {
        failf(err, "sqlite prepare: %s", sqlite3_errmsg(db));
        goto done;
    }
    for (int64_t id = 1;; id++) {
        if (insert_row(ins, &r, id, blob, err))
            goto done;
        if (id % 128 == 0) {
            int64_t pages = page_count(db);
            if (pages < 0) {
                failf(err, "sqlite page_count: %s", sqlite3_errmsg(db));
                goto done;
            }
            if ((uint64_t)pages * 4096 >= target)
                break;
        }
    }
    rc = exec_sql(db, "COMMIT", err);
done:
    sqlite3_finalize(ins);
    return rc;
}

static int create_db(const char *path, uint64_t target, uint64_t seed, char *err)
{
    sqlite3 *db = NULL;
    int rc = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)) {
        failf(err, "sqlite open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        goto done;
    }
    if (exec_sql(db, schema_sql, err) || fill_db(db, target, seed, err))
        goto done;
    rc = 0;
done:
    if (db && sqlite3_close(db) != SQLITE_OK && rc == 0) {
        failf(err, "sqlite close: %s", sqlite3_errmsg(db));
        rc = -1;
    }
    return rc;
}

/* ---- files ----------------------------------------------------------------------------------- */

/* Reads a whole file into *out (caller frees). */
static int read_file(const char *path, uint8_t **out, size_t *size, char *err)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        failf(err, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
        if (k <= 0) {
            failf(err, "read %s: %s", path, k < 0 ? strerror(errno) : "short file");
            free(buf);
            close(fd);
            return -1;
        }
        got += (size_t)k;
    }
    close(fd);
    if (!buf) {
        failf(err, "out of memory reading %s", path);
        return -1;
    }
    *out = buf;
    *size = got;
    return 0;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* The parent of the temporary folder: --dir, else /dev/shm (tmpfs: no disk in the timings). */
static const char *pick_parent(const opts *o)
{
    struct stat st;
    if (o->dir)
        return o->dir;
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
        return "/dev/shm";
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

/* ---- an in-memory LTX sink ------------------------------------------------------------------- */

typedef struct membuf {
    uint8_t *data;
    size_t len, cap;
} membuf;

static lv_err membuf_write(void *ctx, const void *buf, size_t n, char *err)
{
    membuf *m = ctx;
    if (m->cap - m->len < n) {
        size_t cap = m->cap ? m->cap : 1 << 20;
        while (cap - m->len < n)
            cap *= 2;
        uint8_t *p = realloc(m->data, cap);
        if (!p)
            return lv_fail(err, LV_ENOMEM, "bench sink: cannot grow to %zu bytes", cap);
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->data + m->len, buf, n);
    m->len += n;
    return LV_OK;
}

/* ---- timing ---------------------------------------------------------------------------------- */

/* One run of an operation; 0 on success, else -1 with err set. */
typedef int (*op_fn)(bench *b, void *ctx, char *err);

/* One untimed warm-up run, then o.reps timed runs. */
static int measure(bench *b, result *r, op_fn fn, void *ctx, char *err)
{
    if (fn(b, ctx, err))
        return -1;
    for (int i = 0; i < b->o.reps; i++) {
        double t0 = now_sec();
        if (fn(b, ctx, err))
            return -1;
        r->secs[r->n++] = now_sec() - t0;
    }
    return 0;
}

static double median_secs(const result *r)
{
    double s[MAX_REPS];
    memcpy(s, r->secs, sizeof(double) * (size_t)r->n);
    qsort(s, (size_t)r->n, sizeof(double), cmp_double);
    return r->n % 2 ? s[r->n / 2] : (s[r->n / 2 - 1] + s[r->n / 2]) / 2;
}

static double mbps(const result *r, double secs)
{
    return secs > 0 ? (double)r->basis / secs / 1e6 : 0;
}

static double median_mbps(const result *r)
{
    return r->n ? mbps(r, median_secs(r)) : 0;
}

static void range_mbps(const result *r, double *lo, double *hi)
{
    double tmin = r->secs[0], tmax = r->secs[0];
    for (int i = 1; i < r->n; i++) {
        tmin = r->secs[i] < tmin ? r->secs[i] : tmin;
        tmax = r->secs[i] > tmax ? r->secs[i] : tmax;
    }
    *lo = mbps(r, tmax);
    *hi = mbps(r, tmin);
}

/* ---- our codec ------------------------------------------------------------------------------- */

typedef struct codec_ctx {
    membuf out; /* the encoded snapshot, kept for decoding */
    ltx_header h;
    ltx_trailer t;
} codec_ctx;

static int op_encode(bench *b, void *ctx, char *err)
{
    codec_ctx *c = ctx;
    char e[LV_ERRLEN] = "";
    c->out.len = 0; /* keeps its capacity: the timed runs do not pay for growing it */
    lv_err rc = ltx_encode_db(b->db_fd, BENCH_TIMESTAMP, membuf_write, &c->out, &c->h, &c->t, e);
    if (rc != LV_OK) {
        failf(err, "ltx_encode_db: %s: %s", lv_strerror(rc), e);
        return -1;
    }
    return 0;
}

/* The pages an LTX snapshot of the database holds: all but the lock page. */
static uint32_t expected_pages(const bench *b)
{
    uint32_t lock = ltx_lock_pgno(b->page_size);
    return b->page_count - (b->page_count >= lock ? 1 : 0);
}

static int op_verify(bench *b, void *ctx, char *err)
{
    codec_ctx *c = ctx;
    char e[LV_ERRLEN] = "";
    ltx_mem_reader r = {c->out.data, c->out.len, 0};
    uint32_t pages = 0;
    lv_err rc = ltx_verify(ltx_mem_read, &r, NULL, NULL, &pages, e);
    if (rc != LV_OK) {
        failf(err, "ltx_verify: %s: %s", lv_strerror(rc), e);
        return -1;
    }
    if (pages != expected_pages(b)) {
        failf(err, "ltx_verify: %u pages, the database has %u", pages, expected_pages(b));
        return -1;
    }
    b->sink += pages;
    return 0;
}

/* Checks one decoded page against the database and the running page count. */
static int check_page(const bench *b, const ltx_frame_info *fi, const uint8_t *page, uint32_t *next,
                      uint32_t *count, char *err)
{
    uint32_t lock = ltx_lock_pgno(b->page_size);
    if (*next == lock)
        (*next)++;
    if (fi->pgno != *next) {
        failf(err, "decoded pgno %u, expected %u", fi->pgno, *next);
        return -1;
    }
    if (memcmp(page, b->db_bytes + (size_t)(fi->pgno - 1) * b->page_size, b->page_size) != 0) {
        failf(err, "decoded page %u differs from the database", fi->pgno);
        return -1;
    }
    (*next)++;
    (*count)++;
    return 0;
}

/*
 * Untimed: decodes the snapshot page by page and compares every page with the database, and the
 * post-apply checksum with ltx_db_checksum_fd, so the figures are for a codec that works.
 */
static int check_roundtrip(bench *b, codec_ctx *c, char *err)
{
    char e[LV_ERRLEN] = "";
    ltx_mem_reader r = {c->out.data, c->out.len, 0};
    ltx_decoder *d = NULL;
    ltx_frame_info fi;
    const uint8_t *page;
    uint32_t next = 1, count = 0;
    uint64_t db_sum = 0;
    int rc = -1;
    lv_err lrc = ltx_decoder_open(&d, ltx_mem_read, &r, e);
    while (lrc == LV_OK && (lrc = ltx_decoder_next(d, &fi, &page, e)) == LV_OK && fi.pgno)
        if (check_page(b, &fi, page, &next, &count, err))
            goto done;
    if (lrc != LV_OK) {
        failf(err, "decoding our snapshot: %s: %s", lv_strerror(lrc), e);
        goto done;
    }
    if (count != expected_pages(b)) {
        failf(err, "decoded %u pages, the snapshot should hold %u", count, expected_pages(b));
        goto done;
    }
    lrc = ltx_db_checksum_fd(b->db_fd, b->page_size, b->page_count, &db_sum, e);
    if (lrc != LV_OK || db_sum != c->t.post_apply_checksum) {
        failf(err, "post-apply %016" PRIx64 " vs database checksum %016" PRIx64 " (%s)",
              c->t.post_apply_checksum, db_sum, lrc ? e : "mismatch");
        goto done;
    }
    rc = 0;
done:
    ltx_decoder_free(d);
    return rc;
}

/* ---- the lz4 command-line tool --------------------------------------------------------------- */

/*
 * Runs argv[0] (looked up in PATH) with stdout to out_path (or inherited), waits, and returns its
 * exit status; -1 with err set if it could not be started (*missing set when it does not exist).
 */
static int run_cmd(char *const argv[], const char *out_path, int *missing, char *err)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status;
    posix_spawn_file_actions_init(&fa);
    if (out_path)
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        if (missing)
            *missing = rc == ENOENT;
        failf(err, "cannot run %s: %s", argv[0], strerror(rc));
        return -1;
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            failf(err, "waitpid %s: %s", argv[0], strerror(errno));
            return -1;
        }
    if (!WIFEXITED(status)) {
        failf(err, "%s died (status 0x%x)", argv[0], status);
        return -1;
    }
    return WEXITSTATUS(status);
}

/* Runs one lz4 command; 0 if it exited with 0. */
static int run_lz4(char *const argv[], const char *out_path, char *err)
{
    int rc = run_cmd(argv, out_path, NULL, err);
    if (rc > 0)
        failf(err, "%s %s ... exited with %d", argv[0], argv[1], rc);
    return rc == 0 ? 0 : -1;
}

static int op_lz4_compress(bench *b, void *ctx, char *err)
{
    char *argv[] = {(char *)b->o.lz4, "-1", "-f", "-q", b->db, b->lz4_out, NULL};
    (void)ctx;
    return run_lz4(argv, NULL, err);
}

static int op_lz4_decompress_file(bench *b, void *ctx, char *err)
{
    char *argv[] = {(char *)b->o.lz4, "-d", "-f", "-q", b->lz4_out, b->lz4_raw, NULL};
    (void)ctx;
    return run_lz4(argv, NULL, err);
}

static int op_lz4_decompress_null(bench *b, void *ctx, char *err)
{
    char *argv[] = {(char *)b->o.lz4, "-d", "-c", "-q", b->lz4_out, NULL};
    (void)ctx;
    return run_lz4(argv, "/dev/null", err);
}

static int lz4_present(bench *b)
{
    char *argv[] = {(char *)b->o.lz4, "--version", NULL};
    char err[LV_ERRLEN];
    int missing = 0;
    return run_cmd(argv, "/dev/null", &missing, err) == 0;
}

/* Untimed: the lz4 round trip gave the database back. */
static int check_lz4_roundtrip(bench *b, char *err)
{
    uint8_t *raw = NULL;
    size_t n = 0;
    if (read_file(b->lz4_raw, &raw, &n, err))
        return -1;
    int same = n == b->db_size && memcmp(raw, b->db_bytes, n) == 0;
    free(raw);
    if (!same)
        failf(err, "lz4 -d output differs from the database");
    return same ? 0 : -1;
}

/* ---- in-process pieces: CRC-64 and LZ4 per page ---------------------------------------------- */

static int op_crc(bench *b, void *ctx, char *err)
{
    (void)ctx;
    (void)err;
    b->sink ^= crc64_update(0, b->db_bytes, b->db_size);
    return 0;
}

/* The database compressed page by page, as the encoder stores it. */
typedef struct pages_lz4 {
    uint8_t *buf;  /* page i's block at buf + i * bound */
    int *csize;    /* its compressed size */
    uint8_t *page; /* one page of output: the decoder holds one page at a time */
    int bound;
    uint64_t total; /* sum of csize */
} pages_lz4;

static int op_page_compress(bench *b, void *ctx, char *err)
{
    pages_lz4 *p = ctx;
    p->total = 0;
    for (uint32_t i = 0; i < b->page_count; i++) {
        const char *src = (const char *)b->db_bytes + (size_t)i * b->page_size;
        char *dst = (char *)p->buf + (size_t)i * (size_t)p->bound;
        p->csize[i] = LZ4_compress_default(src, dst, (int)b->page_size, p->bound);
        if (p->csize[i] <= 0) {
            failf(err, "LZ4_compress_default failed on page %u", i + 1);
            return -1;
        }
        p->total += (uint64_t)p->csize[i];
    }
    return 0;
}

static int op_page_decompress(bench *b, void *ctx, char *err)
{
    pages_lz4 *p = ctx;
    for (uint32_t i = 0; i < b->page_count; i++) {
        const char *src = (const char *)p->buf + (size_t)i * (size_t)p->bound;
        int k = LZ4_decompress_safe(src, (char *)p->page, p->csize[i], (int)b->page_size);
        if (k != (int)b->page_size) {
            failf(err, "LZ4_decompress_safe gave %d bytes for page %u", k, i + 1);
            return -1;
        }
        b->sink += p->page[i % b->page_size];
    }
    return 0;
}

/* ---- report ---------------------------------------------------------------------------------- */

static void print_row(const result *r)
{
    double lo, hi;
    if (!r->n) {
        printf("  %-44s %10s\n", r->name, "skipped");
        return;
    }
    range_mbps(r, &lo, &hi);
    printf("  %-44s %10.1f %10.1f %10.1f %10.1f", r->name, median_mbps(r), lo, hi,
           median_secs(r) * 1e3);
    if (r->out_size)
        printf("   %7.2f MiB (%.2fx)", (double)r->out_size / 1048576.0,
               (double)r->basis / (double)r->out_size);
    printf("\n");
}

static void print_ratio(const char *what, const result *ours, const result *lz4)
{
    if (!ours->n || !lz4->n) {
        printf("  %-46s n/a (lz4 not run)\n", what);
        return;
    }
    printf("  %-46s %.2fx  (%.1f vs %.1f MB/s)\n", what, median_mbps(ours) / median_mbps(lz4),
           median_mbps(ours), median_mbps(lz4));
}

static void print_aim(const char *what, int known, int met)
{
    printf("  %-64s %s\n", what, !known ? "n/a (lz4 not run)" : met ? "met" : "NOT met");
}

/* Indices of the results, in table order. */
enum {
    R_ENCODE,
    R_VERIFY,
    R_LZ4_C,
    R_LZ4_D_FILE,
    R_LZ4_D_NULL,
    R_CRC,
    R_PAGE_C,
    R_PAGE_D,
    R_COUNT
};

static void report(const bench *b, const result *r)
{
    printf("\nMB/s = 10^6 bytes of uncompressed database per second; median of %d run(s) after "
           "one warm-up.\n\n",
           b->o.reps);
    printf("  %-44s %10s %10s %10s %10s   %s\n", "operation", "median", "min", "max", "median",
           "output (ratio)");
    printf("  %-44s %10s %10s %10s %10s\n", "", "MB/s", "MB/s", "MB/s", "ms");
    for (int i = 0; i < R_COUNT; i++)
        print_row(&r[i]);

    double enc = median_mbps(&r[R_ENCODE]), dec = median_mbps(&r[R_VERIFY]);
    double lz4c = median_mbps(&r[R_LZ4_C]), lz4d = median_mbps(&r[R_LZ4_D_NULL]);
    int have = r[R_LZ4_C].n && r[R_LZ4_D_NULL].n;
    printf("\nOurs / lz4 (above 1: faster than lz4). Decode is compared with lz4 -d to /dev/null,\n"
           "because ltx_verify writes no file either:\n");
    print_ratio("ours encode vs lz4 -1", &r[R_ENCODE], &r[R_LZ4_C]);
    print_ratio("ours decode+verify vs lz4 -d (to /dev/null)", &r[R_VERIFY], &r[R_LZ4_D_NULL]);
    print_ratio("ours decode+verify vs lz4 -d (to a file)", &r[R_VERIFY], &r[R_LZ4_D_FILE]);

    double crc = median_mbps(&r[R_CRC]), pc = median_mbps(&r[R_PAGE_C]);
    double pd = median_mbps(&r[R_PAGE_D]);
    printf("\nWhere the time goes (in-process floors, same bytes):\n");
    printf("  encode floor: LZ4 per page + one CRC pass      %10.1f MB/s\n",
           1.0 / (1.0 / pc + 1.0 / crc));
    printf("  decode floor: LZ4 per page + one CRC pass      %10.1f MB/s\n",
           1.0 / (1.0 / pd + 1.0 / crc));

    char line[128];
    printf("\nAims (printed, never enforced):\n");
    snprintf(line, sizeof line, "decode+verify >= %.0f MB/s (%.1f)", AIM_DECODE_MBPS, dec);
    print_aim(line, 1, dec >= AIM_DECODE_MBPS);
    snprintf(line, sizeof line, "encode >= %.0f MB/s (%.1f)", AIM_ENCODE_MBPS, enc);
    print_aim(line, 1, enc >= AIM_ENCODE_MBPS);
    snprintf(line, sizeof line, "encode within %.0fx of lz4 -1 (%.1f vs %.1f)", AIM_VS_LZ4_FACTOR,
             enc, lz4c);
    print_aim(line, have, enc * AIM_VS_LZ4_FACTOR >= lz4c);
    snprintf(line, sizeof line, "decode+verify within %.0fx of lz4 -d >/dev/null (%.1f vs %.1f)",
             AIM_VS_LZ4_FACTOR, dec, lz4d);
    print_aim(line, have, dec * AIM_VS_LZ4_FACTOR >= lz4d);
}

/* ---- setup and the run ----------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_ltx [options]\n"
            "\n"
            "Times the LTX codec (ltx_encode_db, ltx_verify) on a generated SQLite database and,\n"
            "in the same run, the lz4 command-line tool on the same bytes. Prints MB/s of\n"
            "uncompressed database bytes, medians over the repetitions, and ratios ours/lz4.\n"
            "\n"
            "  --db PATH       use this database if it exists; else create it there and keep it\n"
            "  --size-mib N    size of the generated database (default %d)\n"
            "  --seed N        seed of the generated content (default 1)\n"
            "  --reps N        timed repetitions per operation, 1..%d (default %d)\n"
            "  --dir DIR       parent of the temporary folder (default /dev/shm, else $TMPDIR or "
            "/tmp)\n"
            "  --lz4 PROG      the lz4 program (default lz4, looked up in PATH)\n"
            "  --keep          keep the temporary folder and its files\n"
            "  --smoke         a %d MiB database and 1 repetition: checks the bench still works\n"
            "  --help          this text\n"
            "\n"
            "Exit status: 0 if everything worked (whatever the timings), 1 if something failed\n"
            "functionally (codec error, mismatch, lz4 error), 2 for a bad command line.\n",
            DEFAULT_SIZE_MIB, MAX_REPS, DEFAULT_REPS, SMOKE_SIZE_MIB);
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (errno || end == s || *end || *s == '-')
        return -1;
    *v = x;
    return 0;
}

/* 0: run; 1: --help was printed; 2: bad command line (message printed). */
static int parse_args(int argc, char **argv, opts *o)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},   {"size-mib", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'}, {"reps", required_argument, NULL, 'r'},
        {"dir", required_argument, NULL, 'D'},  {"lz4", required_argument, NULL, 'l'},
        {"keep", no_argument, NULL, 'k'},       {"smoke", no_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    uint64_t reps = DEFAULT_REPS;
    int reps_set = 0, size_set = 0, c;
    *o = (opts){.lz4 = "lz4", .size_mib = DEFAULT_SIZE_MIB, .seed = 1};
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->db_path = optarg;
            break;
        case 's':
            if (parse_u64(optarg, &o->size_mib) || o->size_mib == 0 || o->size_mib > 1u << 20)
                goto bad;
            size_set = 1;
            break;
        case 'S':
            if (parse_u64(optarg, &o->seed))
                goto bad;
            break;
        case 'r':
            if (parse_u64(optarg, &reps) || reps < 1 || reps > MAX_REPS)
                goto bad;
            reps_set = 1;
            break;
        case 'D':
            o->dir = optarg;
            break;
        case 'l':
            o->lz4 = optarg;
            break;
        case 'k':
            o->keep = 1;
            break;
        case 'm':
            o->smoke = 1;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            goto bad;
        }
    }
    if (optind != argc)
        goto bad;
    if (o->smoke) {
        o->size_mib = size_set ? o->size_mib : SMOKE_SIZE_MIB;
        reps = reps_set ? reps : 1;
    }
    o->reps = (int)reps;
    return 0;
bad:
    if (optind < argc && c == -1)
        fprintf(stderr, "bench_ltx: unexpected argument \"%s\"; see --help\n", argv[optind]);
    else
        fprintf(stderr, "bench_ltx: bad command line near \"%s\"; see --help\n", argv[optind - 1]);
    return 2;
}

static int setup_workdir(bench *b, char *err)
{
    const char *parent = pick_parent(&b->o);
    snprintf(b->workdir, sizeof b->workdir, "%s/ltxbench.XXXXXX", parent);
    if (!mkdtemp(b->workdir)) {
        failf(err, "mkdtemp %s: %s", b->workdir, strerror(errno));
        b->workdir[0] = '\0';
        return -1;
    }
    snprintf(b->lz4_out, sizeof b->lz4_out, "%s/db.lz4", b->workdir);
    snprintf(b->lz4_raw, sizeof b->lz4_raw, "%s/db.raw", b->workdir);
    return 0;
}

/* Creates or reuses the database and reads it into memory. */
static int setup_db(bench *b, char *err)
{
    char e[LV_ERRLEN] = "";
    if (b->o.db_path)
        snprintf(b->db, sizeof b->db, "%s", b->o.db_path);
    else
        snprintf(b->db, sizeof b->db, "%s/bench.db", b->workdir);
    if (access(b->db, F_OK) == 0) {
        printf("database: reusing %s\n", b->db);
    } else {
        double t0 = now_sec();
        printf("database: creating %s (%" PRIu64 " MiB, seed %" PRIu64 ")...\n", b->db,
               b->o.size_mib, b->o.seed);
        fflush(stdout);
        b->db_created_in_workdir = !b->o.db_path;
        if (create_db(b->db, b->o.size_mib << 20, b->o.seed, err))
            return -1;
        printf("database: created in %.1f s\n", now_sec() - t0);
    }
    b->db_fd = open(b->db, O_RDONLY);
    if (b->db_fd < 0) {
        failf(err, "open %s: %s", b->db, strerror(errno));
        return -1;
    }
    lv_err rc = ltx_db_geometry(b->db_fd, &b->page_size, &b->page_count, e);
    if (rc != LV_OK) {
        failf(err, "ltx_db_geometry %s: %s: %s", b->db, lv_strerror(rc), e);
        return -1;
    }
    if (read_file(b->db, &b->db_bytes, &b->db_size, err))
        return -1;
    printf("database: %zu bytes (%.1f MiB), %u pages of %u bytes\n", b->db_size,
           (double)b->db_size / 1048576.0, b->page_count, b->page_size);
    return 0;
}

static void bench_free(bench *b)
{
    if (b->db_fd >= 0)
        close(b->db_fd);
    free(b->db_bytes);
    if (!b->workdir[0])
        return;
    if (b->o.keep) {
        printf("kept: %s\n", b->workdir);
        return;
    }
    unlink(b->lz4_out);
    unlink(b->lz4_raw);
    if (b->db_created_in_workdir)
        unlink(b->db);
    if (rmdir(b->workdir) != 0)
        fprintf(stderr, "bench_ltx: could not remove %s: %s\n", b->workdir, strerror(errno));
}

static int bench_ours(bench *b, result *r, char *err)
{
    codec_ctx c = {0};
    int rc = -1;
    printf("timing ltx_encode_db, ltx_verify...\n");
    fflush(stdout);
    if (measure(b, &r[R_ENCODE], op_encode, &c, err) || check_roundtrip(b, &c, err) ||
        measure(b, &r[R_VERIFY], op_verify, &c, err))
        goto done;
    r[R_ENCODE].out_size = r[R_VERIFY].out_size = c.out.len;
    rc = 0;
done:
    free(c.out.data);
    return rc;
}

static int bench_lz4(bench *b, result *r, char *err)
{
    if (!lz4_present(b)) {
        printf("lz4: %s not found; the baseline is skipped\n", b->o.lz4);
        return 0;
    }
    printf("timing %s -1, %s -d...\n", b->o.lz4, b->o.lz4);
    fflush(stdout);
    if (measure(b, &r[R_LZ4_C], op_lz4_compress, NULL, err) ||
        measure(b, &r[R_LZ4_D_FILE], op_lz4_decompress_file, NULL, err) ||
        check_lz4_roundtrip(b, err) ||
        measure(b, &r[R_LZ4_D_NULL], op_lz4_decompress_null, NULL, err))
        return -1;
    uint64_t csize = file_size(b->lz4_out);
    r[R_LZ4_C].out_size = r[R_LZ4_D_FILE].out_size = r[R_LZ4_D_NULL].out_size = csize;
    return 0;
}

static int bench_pieces(bench *b, result *r, char *err)
{
    pages_lz4 p = {0};
    int rc = -1;
    printf("timing crc64_update, LZ4 per page...\n");
    fflush(stdout);
    p.bound = LZ4_compressBound((int)b->page_size);
    p.buf = malloc((size_t)p.bound * b->page_count);
    p.csize = malloc(sizeof(int) * b->page_count);
    p.page = malloc(b->page_size);
    if (!p.buf || !p.csize || !p.page) {
        failf(err, "out of memory for the per-page buffers");
        goto done;
    }
    if (measure(b, &r[R_CRC], op_crc, NULL, err) ||
        measure(b, &r[R_PAGE_C], op_page_compress, &p, err) ||
        measure(b, &r[R_PAGE_D], op_page_decompress, &p, err))
        goto done;
    r[R_PAGE_C].out_size = r[R_PAGE_D].out_size = p.total;
    rc = 0;
done:
    free(p.buf);
    free(p.csize);
    free(p.page);
    return rc;
}

static void init_results(result *r, uint64_t basis)
{
    static const char *const names[R_COUNT] = {
        [R_ENCODE] = "ours encode (ltx_encode_db -> memory)",
        [R_VERIFY] = "ours decode+verify (ltx_verify <- memory)",
        [R_LZ4_C] = "lz4 -1 (CLI, file -> file)",
        [R_LZ4_D_FILE] = "lz4 -d (CLI, file -> file)",
        [R_LZ4_D_NULL] = "lz4 -d (CLI, file -> /dev/null)",
        [R_CRC] = "crc64_update (in-process, whole db)",
        [R_PAGE_C] = "LZ4_compress_default per page (in-process)",
        [R_PAGE_D] = "LZ4_decompress_safe per page (in-process)",
    };
    for (int i = 0; i < R_COUNT; i++)
        r[i] = (result){.name = names[i], .basis = basis};
}

int main(int argc, char **argv)
{
    static bench b;
    static result r[R_COUNT];
    char err[LV_ERRLEN] = "";
    int status = 1;
    b.db_fd = -1;
    int prc = parse_args(argc, argv, &b.o);
    if (prc)
        return prc == 1 ? 0 : 2;
    double t0 = now_sec();
    if (setup_workdir(&b, err) || setup_db(&b, err))
        goto done;
    init_results(r, b.db_size);
    if (bench_ours(&b, r, err) || bench_lz4(&b, r, err) || bench_pieces(&b, r, err))
        goto done;
    report(&b, r);
    printf("\ntotal bench time %.1f s\n", now_sec() - t0);
    status = 0;
done:
    if (status)
        fprintf(stderr, "bench_ltx: FAILED: %s\n", err);
    bench_free(&b);
    return status;
}
