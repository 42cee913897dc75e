/*
 * test_vfs_hydrate: vfs/hydrate.c against real replicas: a directory laid out by
 * build/tests/mkreplica (a snapshot and level-0 files, checksums chained) and the same files in a
 * real fakes3. Each test opens the replica with rdb_acquire (poller at 100 ms), hydrates, and
 * compares the file byte for byte with the database state it must hold; then adds files to the
 * replica and checks the file follows, that hydrator_read serves a page only at the TXID the
 * file is at (a reader thread checks every page it is served against that TXID's state), keep
 * and reuse (and the rebuilds when the file or the replica changed), failures (store down, disk
 * full, retried), and that no file is left by stop, exit() or SIGTERM.
 *
 * The database states are synthetic (a SQLite header and seeded bytes): mkreplica needs only the
 * header's page size, and the hydrator copies pages without looking inside them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "hydrate.h"
#include "remote.h"
#include "replica.h"
#include "testutil.h"

#define PS         1024
#define MAX_STATES 12

/* ---- database states and replicas ----------------------------------------------------------- */

typedef struct state {
    uint8_t *db;
    uint32_t pages;
} state;

/* states[t]: the database at TXID t (1-based) */
static state states[MAX_STATES];
static char workdir[256];

static void fill_page(uint8_t *p, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < PS; i += 8) {
        uint64_t v = tu_rand(&s);
        memcpy(p + i, &v, 8);
    }
}

/* A state of `pages` pages: the previous one's pages (or fresh ones), then `changed` pages
 * rewritten with bytes from seed. Page 1 keeps a SQLite header. */
static void make_state(int t, uint32_t pages, const uint32_t *changed, size_t n, uint64_t seed)
{
    state *s = &states[t];
    s->pages = pages;
    s->db = calloc(pages, PS);
    ck_assert_ptr_nonnull(s->db);
    const state *prev = t > 1 ? &states[t - 1] : NULL;
    for (uint32_t p = 1; p <= pages; p++) {
        uint8_t *dst = s->db + (size_t)(p - 1) * PS;
        if (prev && p <= prev->pages)
            memcpy(dst, prev->db + (size_t)(p - 1) * PS, PS);
        else
            fill_page(dst, seed * 100003 + p);
    }
    for (size_t i = 0; i < n; i++)
        fill_page(s->db + (size_t)(changed[i] - 1) * PS, seed * 7919 + changed[i] + 1);
    memcpy(s->db, "SQLite format 3", 16);
    s->db[16] = PS >> 8;
    s->db[17] = PS & 0xff;
}

static void free_states(void)
{
    for (int t = 0; t < MAX_STATES; t++) {
        free(states[t].db);
        states[t].db = NULL;
        states[t].pages = 0;
    }
}

static const char *state_path(int t)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/s%d.db", workdir, t);
    return p;
}

static void run(const char *cmd)
{
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "%s: exit %d", cmd, rc);
}

/* Lays states first..last out as replica dir (first == 1: from the snapshot). */
static void mkreplica(const char *dir, int first, int last)
{
    const char *build = getenv("LTXVFS_BUILD_DIR");
    ck_assert_msg(build != NULL, "LTXVFS_BUILD_DIR is not set");
    char cmd[8192];
    int n = snprintf(cmd, sizeof cmd, "%s/tests/mkreplica", build);
    if (first > 1) {
        n += snprintf(cmd + n, sizeof cmd - n, " --start %d --base %s", first,
                      state_path(first - 1));
        n += snprintf(cmd + n, sizeof cmd - n, " --time %lld",
                      1767225600000LL + (first - 1) * 1000LL);
    }
    n += snprintf(cmd + n, sizeof cmd - n, " %s", dir);
    for (int t = first; t <= last; t++) {
        tu_write_file(state_path(t), states[t].db, (size_t)states[t].pages * PS);
        n += snprintf(cmd + n, sizeof cmd - n, " %s", state_path(t));
    }
    run(cmd);
}

/* The standard history: 4 states (a snapshot of 150 pages, then changes, growth). */
static void history(void)
{
    uint32_t c2[] = {3, 10, 40}, c3[] = {2, 77}, c4[] = {1, 5, 6, 150, 160, 171};
    make_state(1, 150, NULL, 0, 1);
    make_state(2, 150, c2, 3, 2);
    make_state(3, 180, c3, 2, 3);
    make_state(4, 180, c4, 6, 4);
}

static void setup(void)
{
    snprintf(workdir, sizeof workdir, "/tmp/test-hydrate-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(workdir));
}

static void teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", workdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", workdir);
    free_states();
}

static char *wpath(const char *name)
{
    static char bufs[4][512];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, 512, "%s/%s", workdir, name);
    return b;
}

/* ---- the rdb ----------------------------------------------------------------------------------
 */

typedef struct lookup_ctx {
    const char *replica;
    int write;
} lookup_ctx;

static const char *lookup(void *ctx, const char *name)
{
    lookup_ctx *l = ctx;
    if (strcmp(name, "replica") == 0)
        return l->replica;
    if (strcmp(name, "write") == 0)
        return l->write ? "1" : NULL;
    if (strcmp(name, "poll_interval") == 0)
        return "100ms";
    if (strcmp(name, "retry_timeout") == 0)
        return "1s";
    if (strcmp(name, "cache_size") == 0)
        return "64k";
    return NULL;
}

static rdb *open_rdb_mode(const char *url, int write)
{
    vconf c;
    char err[LV_ERRLEN] = "";
    lookup_ctx l = {url, write};
    ck_assert_msg(vconf_load(&c, lookup, &l, err) == LV_OK, "vconf: %s", err);
    rdb *d = NULL;
    ck_assert_msg(rdb_acquire(&c, &d, err) == LV_OK, "rdb_acquire %s: %s", url, err);
    return d;
}

static rdb *open_rdb(const char *url)
{
    return open_rdb_mode(url, 0);
}

static const char *file_url(const char *dir)
{
    static char u[600];
    snprintf(u, sizeof u, "file://%s", dir);
    return u;
}

/* ---- fakes3 -----------------------------------------------------------------------------------
 */

static void s3_env(void)
{
    setenv("AWS_ACCESS_KEY_ID", TU_FAKES3_KEY, 1);
    setenv("AWS_SECRET_ACCESS_KEY", TU_FAKES3_SECRET, 1);
    setenv("AWS_REGION", "us-east-1", 1);
}

static const char *s3_url(const tu_fakes3 *f)
{
    static char u[600];
    snprintf(u, sizeof u, "s3://%s/db?endpoint=%s&region=us-east-1", TU_FAKES3_BUCKET, f->endpoint);
    return u;
}

/* Uploads every file of the local replica dir (levels 0 and 9) with TXIDs >= min_txid. */
static void upload(const tu_fakes3 *f, const char *dir, uint64_t min_txid)
{
    s3_env();
    replica *r = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(replica_open(s3_url(f), NULL, &r, err) == LV_OK, "%s", err);
    int levels[] = {9, 0};
    for (int i = 0; i < 2; i++) {
        char ld[600];
        snprintf(ld, sizeof ld, "%s/ltx/%d", dir, levels[i]);
        DIR *dd = opendir(ld);
        if (!dd)
            continue;
        struct dirent *e;
        while ((e = readdir(dd))) {
            uint64_t lo, hi;
            if (!replica_parse_name(e->d_name, strlen(e->d_name), &lo, &hi) || lo < min_txid)
                continue;
            char p[1200];
            snprintf(p, sizeof p, "%s/%s", ld, e->d_name);
            size_t n;
            uint8_t *data = tu_read_file(p, &n);
            ck_assert_msg(replica_write(r, levels[i], data, n, 0, err) == LV_OK, "PUT %s: %s",
                          e->d_name, err);
            free(data);
        }
        closedir(dd);
    }
    replica_close(r);
}

/* ---- waiting and checking ---------------------------------------------------------------------
 */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (up to 60 s) until h is READY at txid (0: any); fails on FAILED unless allowed. */
static hydrator_info wait_ready(hydrator *h, uint64_t txid)
{
    hydrator_info s;
    int64_t until = now_ms() + 60000;
    for (;;) {
        hydrator_stats(h, &s);
        if (s.state == HYDRATOR_READY && (!txid || s.txid == txid))
            return s;
        ck_assert_msg(now_ms() < until, "not ready at TXID %llu after 60 s: %s at %llu (%s)",
                      (unsigned long long)txid, hydrator_state_name(s.state),
                      (unsigned long long)s.txid, s.error);
        usleep(20000);
    }
}

static hydrator_info wait_failed(hydrator *h)
{
    hydrator_info s;
    int64_t until = now_ms() + 60000;
    for (;;) {
        hydrator_stats(h, &s);
        if (s.state == HYDRATOR_FAILED)
            return s;
        ck_assert_msg(now_ms() < until, "not failed after 60 s: %s", hydrator_state_name(s.state));
        usleep(20000);
    }
}

static void assert_file_is(const char *path, int t)
{
    size_t n;
    uint8_t *got = tu_read_file(path, &n);
    ck_assert_msg(n == (size_t)states[t].pages * PS, "%s: %zu bytes, state %d has %u pages", path,
                  n, t, states[t].pages);
    for (uint32_t p = 1; p <= states[t].pages; p++)
        ck_assert_msg(memcmp(got + (size_t)(p - 1) * PS, states[t].db + (size_t)(p - 1) * PS, PS) ==
                          0,
                      "%s: page %u differs from state %d", path, p, t);
    free(got);
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* hydrator_read serves every page of state t at TXID t, and nothing at other TXIDs. */
static void assert_reads(hydrator *h, int t)
{
    uint8_t page[PS];
    for (uint32_t p = 1; p <= states[t].pages; p++) {
        ck_assert_msg(hydrator_read(h, (uint64_t)t, p, page, PS), "page %u at %d not served", p, t);
        ck_assert_msg(memcmp(page, states[t].db + (size_t)(p - 1) * PS, PS) == 0,
                      "page %u at TXID %d: other bytes", p, t);
    }
    ck_assert(!hydrator_read(h, (uint64_t)t - 1, 1, page, PS));
    ck_assert(!hydrator_read(h, (uint64_t)t + 1, 1, page, PS));
    ck_assert(!hydrator_read(h, (uint64_t)t, states[t].pages + 1, page, PS));
    ck_assert(!hydrator_read(h, (uint64_t)t, 1, page, PS * 2));
}

static hydrator *start(rdb *d, const char *path, int keep)
{
    hydrator *h = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(hydrator_start(d, path, keep, &h, err) == LV_OK, "hydrator_start: %s", err);
    return h;
}

/* ---- a reader racing the applier --------------------------------------------------------------
 */

typedef struct racer {
    rdb *d;
    hydrator *h;
    volatile int stop;
    long served, mismatches;
} racer;

static void *race_main(void *arg)
{
    racer *r = arg;
    uint8_t page[PS];
    uint64_t seed = 7;
    while (!r->stop) {
        pagemap *m = rdb_latest(r->d); /* a read transaction: one TXID throughout */
        uint64_t t = pagemap_txid(m);
        for (int i = 0; i < 200 && t < MAX_STATES; i++) {
            uint32_t p = 1 + (uint32_t)(tu_rand(&seed) % pagemap_commit(m));
            if (!hydrator_read(r->h, t, p, page, PS))
                continue;
            r->served++;
            if (p > states[t].pages || memcmp(page, states[t].db + (size_t)(p - 1) * PS, PS) != 0)
                r->mismatches++;
        }
        pagemap_unref(m);
    }
    return NULL;
}

/* ---- tests ------------------------------------------------------------------------------------
 */

START_TEST(test_build_and_follow_file)
{
    history();
    char *rep = wpath("rep");
    mkreplica(rep, 1, 4);
    char *path = wpath("h/hydrated.db"); /* its folder is made */
    rdb *d = open_rdb(file_url(rep));
    hydrator *h = start(d, path, 0);
    hydrator_info s = wait_ready(h, 4);
    ck_assert_int_eq(s.pages, 180);
    ck_assert_int_eq(s.page_size, PS);
    ck_assert(s.progress == 100.0);
    ck_assert_int_eq(s.restores, 1);
    ck_assert_int_eq(s.reused, 0);
    ck_assert_int_ge(s.bytes_downloaded, 1);
    ck_assert_int_ge(s.cutover_ms, 0);
    ck_assert_str_eq(s.error, "");
    assert_file_is(path, 4);
    assert_reads(h, 4);
    ck_assert(!exists(wpath("h/hydrated.db.meta")));

    racer r = {d, h, 0, 0, 0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, race_main, &r), 0);

    /* grows, page 1 changes */
    uint32_t c5[] = {1, 9, 179};
    make_state(5, 200, c5, 3, 5);
    mkreplica(rep, 5, 5);
    s = wait_ready(h, 5);
    assert_file_is(path, 5);
    assert_reads(h, 5);
    /* shrinks; two TXIDs in one poll */
    uint32_t c6[] = {7}, c7[] = {8, 100};
    make_state(6, 120, c6, 1, 6);
    make_state(7, 120, c7, 2, 7);
    mkreplica(rep, 6, 7);
    s = wait_ready(h, 7);
    ck_assert_int_eq(s.pages, 120);
    assert_file_is(path, 7);
    assert_reads(h, 7);
    ck_assert_int_ge(s.txids_applied, 2);
    usleep(200000);
    r.stop = 1;
    pthread_join(th, NULL);
    ck_assert_msg(r.mismatches == 0, "%ld of %ld pages served at a TXID they were not of",
                  r.mismatches, r.served);
    ck_assert_int_ge(r.served, 1);

    lv_buf j;
    lv_buf_init(&j);
    hydrator_stats_json(h, &j);
    ck_assert_msg(strstr(j.data, "\"state\":\"ready\"") && strstr(j.data, "\"progress\":100.0") &&
                      strstr(j.data, "\"txid\":\"0000000000000007\""),
                  "%s", j.data);
    lv_buf_free(&j);

    hydrator_stop(h);
    ck_assert_msg(!exists(path), "the file is left after stop");
    ck_assert(!exists(wpath("h/hydrated.db.meta")));
    rdb_release(d);
}
END_TEST

START_TEST(test_compaction_costs_no_rewrite)
{
    history();
    char *rep = wpath("rep");
    mkreplica(rep, 1, 4);
    char *path = wpath("hydrated.db");
    rdb *d = open_rdb(file_url(rep));
    hydrator *h = start(d, path, 0);
    hydrator_info s = wait_ready(h, 4);
    uint64_t before = s.bytes_written;
    /* Litestream's compaction and retention: level 0 merged into level 1, then deleted */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s/ltxctl compact %s --level 1 >/dev/null && rm %s/ltx/0/*.ltx",
             getenv("LTXVFS_BUILD_DIR"), file_url(rep), rep);
    run(cmd);
    usleep(500000); /* the poller moves the map to the level-1 file */
    uint32_t c5[] = {4, 44};
    make_state(5, 185, c5, 2, 5);
    mkreplica(rep, 5, 5);
    s = wait_ready(h, 5);
    assert_file_is(path, 5);
    assert_reads(h, 5);
    /* pages 4, 44 and 181..185: not the 185 pages the map now finds in other files */
    ck_assert_msg(s.bytes_written - before <= 7 * PS, "%llu bytes rewritten",
                  (unsigned long long)(s.bytes_written - before));
    hydrator_stop(h);
    rdb_release(d);
}
END_TEST

START_TEST(test_stale_file_discarded)
{
    history();
    char *rep = wpath("rep");
    mkreplica(rep, 1, 4);
    char *path = wpath("hydrated.db");
    /* left by a killed process: the right size, wrong bytes; and a meta that says it is fine */
    uint8_t *junk = calloc(180, PS);
    memcpy(junk, states[4].db, (size_t)180 * PS);
    junk[5000] ^= 1;
    tu_write_file(path, junk, (size_t)180 * PS);
    tu_write_file(wpath("hydrated.db.meta"), "LVHYDR01junk", 12);
    free(junk);
    rdb *d = open_rdb(file_url(rep));
    hydrator *h = start(d, path, 0);
    hydrator_info s = wait_ready(h, 4);
    ck_assert_int_eq(s.restores, 1);
    assert_file_is(path, 4);
    ck_assert(!exists(wpath("hydrated.db.meta")));
    /* a second hydrator on the same path in this process is refused */
    hydrator *h2 = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(hydrator_start(d, path, 0, &h2, err), LV_ECONFLICT);
    ck_assert_ptr_null(h2);
    hydrator_stop(h);
    ck_assert(!exists(path));
    rdb_release(d);
}
END_TEST

START_TEST(test_file_in_use)
{
    history();
    char *rep = wpath("rep");
    mkreplica(rep, 1, 2);
    char *path = wpath("hydrated.db");
    tu_write_file(path, "another process's", 17);
    int fd = tu_open(path, O_RDWR);
    ck_assert_int_eq(flock(fd, LOCK_EX), 0); /* as a hydrator of another process holds it */
    rdb *d = open_rdb(file_url(rep));
    hydrator *h = start(d, path, 0);
    hydrator_info s = wait_failed(h);
    ck_assert_msg(strstr(s.error, "in use"), "%s", s.error);
    hydrator_stop(h);
    size_t n;
    uint8_t *b = tu_read_file(path, &n);
    ck_assert_msg(n == 17 && memcmp(b, "another process's", 17) == 0, "the other's file changed");
    free(b);
    close(fd);
    rdb_release(d);
}
END_TEST

START_TEST(test_fakes3)
{
    history();
    char *rep = wpath("rep");
    mkreplica(rep, 1, 4);
    tu_fakes3 f;
    tu_fakes3_start(&f, NULL);
    upload(&f, rep, 1);
    char *path = wpath("hydrated.db");
    rdb *d = open_rdb(s3_url(&f));
    hydrator *h = start(d, path, 0);
    hydrator_info s = wait_ready(h, 4);
    ck_assert_int_eq(s.restores, 1);
    ck_assert_int_ge(s.bytes_downloaded, (uint64_t)150 * 100); /* at least the snapshot, coarsely */
    assert_file_is(path, 4);
    assert_reads(h, 4);
    uint32_t c5[] = {2, 33, 181};
    make_state(5, 190, c5, 3, 5);
    mkreplica(rep, 5, 5);
    upload(&f, rep, 5);
    hydrator_notify(h);
    wait_ready(h, 5);
    assert_file_is(path, 5);
    assert_reads(h, 5);
    hydrator_stop(h);
    ck_assert(!exists(path));
    rdb_release(d);
    tu_fakes3_stop(&f);
}
END_TEST

START_TEST(test_keep_reuse_and_rebuild)
{
    history();
    char *rep = wpath("rep");
    mkreplica(rep, 1, 4);
    char *path = wpath("hydrated.db"), *meta = wpath("hydrated.db.meta");
    rdb *d = open_rdb(file_url(rep));
    hydrator *h = start(d, path, 1);
    wait_ready(h, 4);
    hydrator_stop(h);
    ck_assert_msg(exists(path) && exists(meta), "keep: the file and its meta stay");
    assert_file_is(path, 4);

    /* the replica moves on while nobody hydrates: reused, caught up, no restore */
    uint32_t c5[] = {4, 44};
    make_state(5, 185, c5, 2, 5);
    mkreplica(rep, 5, 5);
    h = start(d, path, 1);
    hydrator_info s = wait_ready(h, 5);
    ck_assert_int_eq(s.reused, 1);
    ck_assert_int_eq(s.restores, 0);
    ck_assert_int_eq(s.bytes_downloaded, 0);
    ck_assert(s.progress == 100.0);
    assert_file_is(path, 5);
    assert_reads(h, 5);
    ck_assert_msg(!exists(meta), "the meta stays while the file is in use");
    hydrator_stop(h);
    ck_assert(exists(path) && exists(meta));

    /* the same again, untouched: reused at the same TXID */
    h = start(d, path, 1);
    s = wait_ready(h, 5);
    ck_assert_int_eq(s.reused, 1);
    ck_assert_int_eq(s.restores, 0);
    hydrator_stop(h);

    /* a byte of the file flipped: rebuilt */
    int fd = tu_open(path, O_RDWR);
    uint8_t b;
    ck_assert_int_eq(pread(fd, &b, 1, 3 * PS + 17), 1);
    b ^= 0x40;
    ck_assert_int_eq(pwrite(fd, &b, 1, 3 * PS + 17), 1);
    close(fd);
    h = start(d, path, 1);
    s = wait_ready(h, 5);
    ck_assert_int_eq(s.reused, 0);
    ck_assert_int_eq(s.restores, 1);
    ck_assert_int_eq(s.attempts, 1); /* rebuilt at once, not after a failed attempt */
    assert_file_is(path, 5);
    hydrator_stop(h);

    /* a broken meta: rebuilt */
    size_t n;
    uint8_t *m = tu_read_file(meta, &n);
    ck_assert_int_eq(n, 48);
    m[9] ^= 1;
    tu_write_file(meta, m, n);
    free(m);
    h = start(d, path, 1);
    s = wait_ready(h, 5);
    ck_assert_int_eq(s.reused, 0);
    ck_assert_int_eq(s.restores, 1);
    ck_assert_int_eq(s.attempts, 1); /* rebuilt at once, not after a failed attempt */
    assert_file_is(path, 5);
    hydrator_stop(h);

    /* without keep the kept file is not trusted, and nothing stays */
    h = start(d, path, 0);
    s = wait_ready(h, 5);
    ck_assert_int_eq(s.restores, 1);
    hydrator_stop(h);
    ck_assert(!exists(path) && !exists(meta));
    rdb_release(d);
}
END_TEST

START_TEST(test_keep_other_database)
{
    history();
    char *rep = wpath("rep");
    mkreplica(rep, 1, 4);
    char *path = wpath("hydrated.db"), *meta = wpath("hydrated.db.meta");
    rdb *d = open_rdb(file_url(rep));
    hydrator *h = start(d, path, 1);
    wait_ready(h, 4);
    hydrator_stop(h);
    rdb_release(d);
    ck_assert(exists(meta));

    /* the replica is replaced by another database with the same TXIDs and sizes */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", rep);
    run(cmd);
    free_states();
    uint32_t c2[] = {3, 10, 40}, c3[] = {2, 77}, c4[] = {1, 5, 6, 150, 160, 171};
    make_state(1, 150, NULL, 0, 101);
    make_state(2, 150, c2, 3, 102);
    make_state(3, 180, c3, 2, 103);
    make_state(4, 180, c4, 6, 104);
    mkreplica(rep, 1, 4);
    d = open_rdb(file_url(rep));
    h = start(d, path, 1);
    hydrator_info s = wait_ready(h, 4);
    ck_assert_int_eq(s.reused, 0);
    ck_assert_int_eq(s.restores, 1);
    ck_assert_int_eq(s.attempts, 1);
    assert_file_is(path, 4);
    hydrator_stop(h);
    rdb_release(d);
}
END_TEST

START_TEST(test_stop_while_building)
{
    history();
    char *rep = wpath("rep");
    mkreplica(rep, 1, 4);
    tu_fakes3 f;
    const char *args[] = {"--latency", "400ms", NULL};
    tu_fakes3_start(&f, args);
    upload(&f, rep, 1);
    rdb *d = open_rdb(s3_url(&f));
    char *path = wpath("hydrated.db");
    hydrator *h = start(d, path, 0);
    usleep(600000); /* past the listing: the restore is fetching (each request takes 400 ms) */
    hydrator_info s;
    hydrator_stats(h, &s);
    ck_assert_msg(s.state == HYDRATOR_BUILDING, "%s", hydrator_state_name(s.state));
    uint8_t page[PS];
    ck_assert(!hydrator_read(h, 4, 1, page, PS)); /* reads stay remote meanwhile */
    int64_t t0 = now_ms();
    hydrator_stop(h);
    fprintf(stderr, "test_stop_while_building: stop took %lld ms\n", (long long)(now_ms() - t0));
    ck_assert_msg(!exists(path), "the file is left after a stop during the build");
    rdb_release(d);
    tu_fakes3_stop(&f);
}
END_TEST

/* What the writer does after an upload: lays the level-0 file of TXID t over the newest map. */
static void publish(rdb *d, const char *rep, int level, int t)
{
    char p[700];
    snprintf(p, sizeof p, "%s/ltx/%d/%016llx-%016llx.ltx", rep, level, (unsigned long long)t,
             (unsigned long long)t);
    size_t n;
    uint8_t *file = tu_read_file(p, &n);
    char err[LV_ERRLEN] = "";
    ck_assert_msg(rdb_publish_local(d, file, n, NULL, NULL, 0, err) == LV_OK, "%s", err);
    free(file);
}

START_TEST(test_write_mode)
{
    /* a new database: nothing to restore; the file starts with the first synced file */
    history();
    char *rep = wpath("rep");
    char *path = wpath("hydrated.db");
    rdb *d = open_rdb_mode(file_url(rep), 1);
    hydrator *h = start(d, path, 0);
    usleep(200000);
    hydrator_info s;
    hydrator_stats(h, &s);
    ck_assert_msg(s.state == HYDRATOR_CATCHING_UP, "%s", hydrator_state_name(s.state));
    mkreplica(rep, 1, 1); /* the writer's first sync: the snapshot of TXID 1 */
    publish(d, rep, 9, 1);
    hydrator_notify(h);
    s = wait_ready(h, 1);
    ck_assert_int_eq(s.restores, 0);
    assert_file_is(path, 1);
    assert_reads(h, 1);
    for (int t = 2; t <= 4; t++) { /* each later sync */
        mkreplica(rep, t, t);
        publish(d, rep, 0, t);
        hydrator_notify(h);
        wait_ready(h, (uint64_t)t);
        assert_file_is(path, t);
        assert_reads(h, t);
    }
    hydrator_stop(h);
    ck_assert(!exists(path));
    rdb_release(d);

    /* an existing replica opened for writing: restored, then follows the syncs */
    d = open_rdb_mode(file_url(rep), 1);
    h = start(d, path, 0);
    s = wait_ready(h, 4);
    ck_assert_int_eq(s.restores, 1);
    uint32_t c5[] = {2, 3};
    make_state(5, 160, c5, 2, 5);
    mkreplica(rep, 5, 5);
    publish(d, rep, 0, 5);
    wait_ready(h, 5); /* without a notification: the thread looks every 50 ms */
    assert_file_is(path, 5);
    assert_reads(h, 5);
    hydrator_stop(h);
    rdb_release(d);
}
END_TEST

START_TEST(test_store_down)
{
    history();
    char *rep = wpath("rep");
    mkreplica(rep, 1, 4);
    tu_fakes3 f;
    tu_fakes3_start(&f, NULL);
    upload(&f, rep, 1);
    rdb *d = open_rdb(s3_url(&f));
    tu_fakes3_stop(&f); /* the store goes away after the open */
    char *path = wpath("hydrated.db");
    hydrator *h = start(d, path, 0);
    hydrator_info s = wait_failed(h);
    ck_assert_msg(s.error[0] != 0, "no reason given");
    ck_assert_msg(!exists(path), "a partial file is left after a failure");
    uint8_t page[PS];
    for (uint64_t t = 1; t <= 4; t++)
        ck_assert(!hydrator_read(h, t, 1, page, PS));
    lv_buf j;
    lv_buf_init(&j);
    hydrator_stats_json(h, &j);
    ck_assert_msg(strstr(j.data, "\"state\":\"failed\"") && strstr(j.data, "\"error\":\""), "%s",
                  j.data);
    lv_buf_free(&j);
    hydrator_stop(h);
    ck_assert(!exists(path));
    rdb_release(d);
}
END_TEST

START_TEST(test_disk_full)
{
    history();
    char *rep = wpath("rep");
    mkreplica(rep, 1, 4);
    rdb *d = open_rdb(file_url(rep));
    /* files of this process may not grow past 64 KiB (the database is 180 KiB) */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {64 * 1024, 64 * 1024};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    char *path = wpath("hydrated.db");
    hydrator *h = start(d, path, 0);
    hydrator_info s = wait_failed(h);
    ck_assert_msg(strstr(s.error, "large") || strstr(s.error, "space"), "why: %s", s.error);
    ck_assert(!exists(path));
    uint8_t page[PS];
    ck_assert(!hydrator_read(h, 4, 1, page, PS));
    hydrator_stop(h);
    rdb_release(d);
}
END_TEST

START_TEST(test_retry_after_failure)
{
    history();
    char *rep = wpath("rep");
    mkreplica(rep, 1, 4);
    rdb *d = open_rdb(file_url(rep));
    char away[600], ltx[600];
    snprintf(ltx, sizeof ltx, "%s/ltx", rep);
    snprintf(away, sizeof away, "%s/ltx.away", rep);
    ck_assert_int_eq(rename(ltx, away), 0); /* every file vanishes */
    char *path = wpath("hydrated.db");
    hydrator *h = start(d, path, 0);
    hydrator_info s = wait_failed(h);
    ck_assert_int_eq(s.attempts, 1);
    ck_assert_int_eq(rename(away, ltx), 0); /* and comes back */
    s = wait_ready(h, 4);
    ck_assert_int_ge(s.attempts, 2);
    ck_assert_str_eq(s.error, "");
    assert_file_is(path, 4);
    hydrator_stop(h);
    rdb_release(d);
}
END_TEST

/*
 * A child process hydrates, says so through a pipe, then: 0 exit(0); 1 waits for SIGTERM;
 * 2 (keep) exit(0).
 */
static void exit_case(int mode)
{
    history();
    char *rep = wpath("rep");
    mkreplica(rep, 1, 4);
    char *path = wpath("hydrated.db"), *meta = wpath("hydrated.db.meta");
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        signal(SIGTERM, SIG_DFL);
        vconf c;
        char err[LV_ERRLEN] = "";
        lookup_ctx l = {file_url(rep), 0};
        rdb *d = NULL;
        hydrator *h = NULL;
        if (vconf_load(&c, lookup, &l, err) != LV_OK || rdb_acquire(&c, &d, err) != LV_OK ||
            hydrator_start(d, path, mode == 2, &h, err) != LV_OK)
            _exit(3);
        hydrator_info s;
        for (int i = 0; i < 3000; i++) {
            hydrator_stats(h, &s);
            if (s.state == HYDRATOR_READY)
                break;
            usleep(20000);
        }
        if (s.state != HYDRATOR_READY || access(path, F_OK) != 0)
            _exit(4);
        if (write(fds[1], "r", 1) != 1)
            _exit(5);
        if (mode == 1)
            for (;;)
                pause();
        exit(0); /* neither stopped nor released: the exit hook's job */
    }
    close(fds[1]);
    struct pollfd pfd = {fds[0], POLLIN, 0};
    ck_assert_msg(poll(&pfd, 1, 60000) == 1, "the child did not get ready");
    char ch = 0;
    ck_assert_int_eq(read(fds[0], &ch, 1), 1);
    close(fds[0]);
    if (mode == 1)
        kill(pid, SIGTERM);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    if (mode == 1) {
        ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "status %d", st);
        ck_assert_msg(!exists(path), "the file is left after SIGTERM");
    } else {
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    }
    if (mode == 0)
        ck_assert_msg(!exists(path) && !exists(meta), "the file is left after exit()");
    if (mode == 2) {
        ck_assert_msg(exists(path) && exists(meta), "keep: the file and meta stay after exit()");
        assert_file_is(path, 4);
        rdb *d = open_rdb(file_url(rep)); /* and are reused */
        hydrator *h = start(d, path, 1);
        hydrator_info s = wait_ready(h, 4);
        ck_assert_int_eq(s.reused, 1);
        ck_assert_int_eq(s.restores, 0);
        hydrator_stop(h);
        rdb_release(d);
    }
}

START_TEST(test_exit_removes)
{
    exit_case(0);
}
END_TEST

START_TEST(test_sigterm_removes)
{
    exit_case(1);
}
END_TEST

START_TEST(test_exit_keeps)
{
    exit_case(2);
}
END_TEST

START_TEST(test_sigterm_handler_not_replaced)
{
    /* an application's handler stays its own */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    history();
    char *rep = wpath("rep");
    mkreplica(rep, 1, 2);
    rdb *d = open_rdb(file_url(rep));
    hydrator *h = start(d, wpath("hydrated.db"), 0);
    wait_ready(h, 2);
    sigaction(SIGINT, NULL, &old);
    ck_assert(old.sa_handler == SIG_IGN);
    sigaction(SIGTERM, NULL, &old);
    ck_assert_msg(old.sa_handler != SIG_DFL, "SIGTERM (default) gets the handler");
    hydrator_stop(h);
    rdb_release(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vfs_hydrate");
    TCase *tc = tcase_create("hydrate");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_build_and_follow_file);
    tcase_add_test(tc, test_compaction_costs_no_rewrite);
    tcase_add_test(tc, test_stale_file_discarded);
    tcase_add_test(tc, test_file_in_use);
    tcase_add_test(tc, test_fakes3);
    tcase_add_test(tc, test_keep_reuse_and_rebuild);
    tcase_add_test(tc, test_keep_other_database);
    tcase_add_test(tc, test_stop_while_building);
    tcase_add_test(tc, test_write_mode);
    tcase_add_test(tc, test_store_down);
    tcase_add_test(tc, test_disk_full);
    tcase_add_test(tc, test_retry_after_failure);
    tcase_add_test(tc, test_exit_removes);
    tcase_add_test(tc, test_sigterm_removes);
    tcase_add_test(tc, test_exit_keeps);
    tcase_add_test(tc, test_sigterm_handler_not_replaced);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
