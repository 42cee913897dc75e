/*
 * test_compact: lib/compact.c (compact_pass) over a file replica in a temporary directory and over
 * a real fakes3 process.
 *
 * A small model database (512-byte pages, page 1 a SQLite header) changes transaction by
 * transaction; each transaction becomes a level-0 file written through lib's encoder, with database
 * checksums chained, and stamped with the simulated clock (the file backend sets the mtime to the
 * header timestamp, so the listing's created_ms is that clock; fakes3's LastModified is the real
 * one). After every pass the replica must restore (restore_run) to exactly the model's bytes.
 *
 * Covered: a pass builds L1..L3 and a snapshot with the right names and report lines; intervals
 * (not due, then due); L0 retention deletes only covered and old files, stopping at the first young
 * one, never the newest; max_txid leaves newer files alone; a dry run changes nothing; a
 * conditional write that loses (the target pre-created) is reported and counted, not an error,
 * unless stop_on_conflict; a simulated day of 30 s steps keeps the number of files bounded and the
 * latest state restorable; the same over fakes3.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "compact.h"
#include "ltx.h"
#include "replica.h"
#include "restore.h"
#include "testutil.h"

#define PS        512u
#define MAX_PAGES 64u
#define HOUR      3600000LL
#define MIN       60000LL
/* A whole hour (1.8e12 ms = 500000 h), so that what is due does not depend on when tests run. */
#define B 1800000000000LL

typedef unsigned long long ull;

/* ---- the model database ------------------------------------------------------------------- */

typedef struct model {
    uint8_t db[MAX_PAGES * PS];
    uint32_t commit;
    uint64_t txid;
    uint64_t checksum; /* of pages 1..commit; 0 before the first transaction */
    uint64_t rng;
    uint8_t *files[64]; /* the encoded level-0 files of TXIDs 1..63, for tests that need them */
    size_t sizes[64];
} model;

static void model_init(model *m, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->rng = seed;
}

static void model_free(model *m)
{
    for (size_t i = 0; i < 64; i++)
        free(m->files[i]);
}

static uint64_t db_checksum(const model *m)
{
    uint64_t c = LTX_CHECKSUM_FLAG;
    for (uint32_t p = 1; p <= m->commit; p++)
        c = ltx_db_checksum_update(c, 0, ltx_page_checksum(p, m->db + (size_t)(p - 1) * PS, PS));
    return c;
}

static void fill(model *m, uint32_t pgno)
{
    uint8_t *pg = m->db + (size_t)(pgno - 1) * PS;
    for (uint32_t i = 0; i < PS; i += 8) {
        uint64_t v = tu_rand(&m->rng);
        memcpy(pg + i, &v, 8);
    }
    if (pgno == 1) { /* a SQLite header, so that a snapshot can read the page size */
        memcpy(pg, "SQLite format 3", 16);
        pg[16] = PS >> 8;
        pg[17] = PS & 0xff;
    }
}

/*
 * One transaction at time ts: the first makes 4 pages, the others change 1..3 pages and now and
 * then add one. Writes its level-0 file to r (conditional) and keeps it in m->files if it fits.
 */
static void model_tx(model *m, replica *r, int64_t ts)
{
    uint8_t changed[MAX_PAGES + 1] = {0};
    uint64_t pre = m->checksum;
    m->txid++;
    if (m->txid == 1) {
        m->commit = 4;
        for (uint32_t p = 1; p <= m->commit; p++)
            changed[p] = 1, fill(m, p);
    } else {
        unsigned k = 1 + (unsigned)(tu_rand(&m->rng) % 3);
        for (unsigned i = 0; i < k; i++) {
            uint32_t p = 1 + (uint32_t)(tu_rand(&m->rng) % m->commit);
            changed[p] = 1;
            fill(m, p);
        }
        if (m->commit < MAX_PAGES && tu_rand(&m->rng) % 4 == 0) {
            m->commit++;
            changed[m->commit] = 1;
            fill(m, m->commit);
        }
    }
    m->checksum = db_checksum(m);
    ltx_header h = {.page_size = PS,
                    .commit = m->commit,
                    .min_txid = m->txid,
                    .max_txid = m->txid,
                    .timestamp = ts,
                    .pre_apply_checksum = m->txid == 1 ? 0 : pre};
    tu_buf out = {0};
    ltx_encoder *e = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(ltx_encoder_open(&e, &h, tu_buf_write, &out, err) == LV_OK, "%s", err);
    for (uint32_t p = 1; p <= m->commit; p++)
        if (changed[p])
            ck_assert_msg(ltx_encoder_page(e, p, m->db + (size_t)(p - 1) * PS, err) == LV_OK, "%s",
                          err);
    ltx_encoder_set_post_apply(e, m->checksum);
    ck_assert_msg(ltx_encoder_finish(e, NULL, err) == LV_OK, "%s", err);
    ltx_encoder_free(e);
    ck_assert_msg(replica_write(r, 0, out.data, out.size, 1, err) == LV_OK, "TXID %llu: %s",
                  (ull)m->txid, err);
    if (m->txid < 64) {
        m->files[m->txid] = out.data;
        m->sizes[m->txid] = out.size;
    } else {
        tu_buf_free(&out);
    }
}

/* ---- replicas ------------------------------------------------------------------------------ */

static char *g_dirs[256];
static int g_ndirs;

/* A fresh file replica under a new temporary folder (on tmpfs when there is one: fsync is cheap).
 */
static replica *file_replica(char *dir_out, size_t cap)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    char tmpl[256];
    snprintf(tmpl, sizeof tmpl, "%s/test_compact-XXXXXX", base);
    ck_assert_msg(mkdtemp(tmpl) != NULL, "mkdtemp: %s", strerror(errno));
    ck_assert(g_ndirs < 256);
    g_dirs[g_ndirs++] = strdup(tmpl);
    snprintf(dir_out, cap, "%s/rep", tmpl);
    replica *r = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(replica_open(dir_out, NULL, &r, err) == LV_OK, "%s", err);
    return r;
}

static void remove_dirs(void)
{
    for (int i = 0; i < g_ndirs; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dirs[i]);
        ck_assert(system(cmd) == 0);
        free(g_dirs[i]);
    }
    g_ndirs = 0;
}

static tu_fakes3 g_fs3;
static int g_fs3_up, g_counter;

/*
 * Starts fakes3 as tu_fakes3_start does, but reads its start-up line NUL-terminated (as
 * test_replica_s3.c does, for the same reason: ASan).
 */
static void start_fakes3(tu_fakes3 *f)
{
    const char *build = getenv("LTXVFS_BUILD_DIR");
    ck_assert_msg(build != NULL, "LTXVFS_BUILD_DIR is not set");
    char bin[4096];
    snprintf(bin, sizeof bin, "%s/fakes3", build);
    memset(f, 0, sizeof *f);
    char *out = tu_tmp_path("fakes3.out");
    snprintf(f->out_path, sizeof f->out_path, "%s", out);
    free(out);
    const char *argv[] = {bin,
                          "--listen",
                          "127.0.0.1:0",
                          "--access-key",
                          TU_FAKES3_KEY,
                          "--secret-key",
                          TU_FAKES3_SECRET,
                          "--bucket",
                          TU_FAKES3_BUCKET,
                          "--memory",
                          NULL};
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(f->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    f->pid = pid;
    for (int i = 0; i < 400; i++) {
        char text[4096] = "";
        FILE *fp = fopen(f->out_path, "r");
        if (fp) {
            size_t got = fread(text, 1, sizeof text - 1, fp);
            text[got] = 0;
            fclose(fp);
        }
        const char *at = strstr(text, "listening on ");
        if (at) {
            at += strlen("listening on ");
            size_t len = strcspn(at, " \n");
            ck_assert(len < sizeof f->endpoint);
            memcpy(f->endpoint, at, len);
            f->endpoint[len] = 0;
            return;
        }
        int status;
        ck_assert_msg(waitpid(pid, &status, WNOHANG) == 0, "fakes3 exited at start: %s", text);
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ck_abort_msg("fakes3 did not start in 10 s (see %s)", f->out_path);
}

static replica *s3_replica(void)
{
    if (!g_fs3_up) {
        start_fakes3(&g_fs3);
        g_fs3_up = 1;
    }
    s3_config c;
    s3_config_init(&c);
    c.access_key = TU_FAKES3_KEY;
    c.secret_key = TU_FAKES3_SECRET;
    c.region = "us-east-1";
    c.retry_total_ms = 15000;
    char url[512];
    snprintf(url, sizeof url, "s3://%s/c%d-%d/db?endpoint=%s", TU_FAKES3_BUCKET, (int)getpid(),
             ++g_counter, g_fs3.endpoint);
    replica_options o = {.s3 = &c};
    replica *r = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(replica_open(url, &o, &r, err) == LV_OK, "%s: %s", url, err);
    return r;
}

static void teardown(void)
{
    if (g_fs3_up) {
        tu_fakes3_stop(&g_fs3);
        g_fs3_up = 0;
    }
    remove_dirs();
}

/* ---- checks -------------------------------------------------------------------------------- */

/* Every file as "L:min-max " (decimal TXIDs), in listing order; caller frees. */
static char *levels(replica *r)
{
    replica_file *f = NULL;
    size_t n = 0;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(replica_list(r, -1, &f, &n, err) == LV_OK, "%s", err);
    size_t cap = 32 * n + 1;
    char *s = malloc(cap);
    ck_assert(s != NULL);
    s[0] = 0;
    for (size_t i = 0; i < n; i++)
        snprintf(s + strlen(s), cap - strlen(s), "%d:%llu-%llu ", f[i].level, (ull)f[i].min_txid,
                 (ull)f[i].max_txid);
    lv_free(f);
    return s;
}

static void want_levels(replica *r, const char *want, const char *what, const char *log)
{
    char *got = levels(r);
    ck_assert_msg(strcmp(got, want) == 0, "%s: files are \"%s\", want \"%s\"\n%s", what, got, want,
                  log ? log : "");
    free(got);
}

static size_t count_files(replica *r)
{
    replica_file *f = NULL;
    size_t n = 0;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(replica_list(r, -1, &f, &n, err) == LV_OK, "%s", err);
    lv_free(f);
    return n;
}

/* Restores r at target (NULL: latest) and compares with want[0..pages*PS). */
static void check_restore_at(replica *r, const replica_target *target, const uint8_t *want,
                             uint32_t pages, uint64_t txid, const char *what)
{
    char *path = tu_tmp_path("restored.db");
    int fd = tu_open(path, O_RDWR | O_CREAT | O_TRUNC);
    restore_result res;
    char err[LV_ERRLEN] = "";
    lv_err rc = restore_run(r, target, fd, NULL, &res, err);
    ck_assert_msg(rc == LV_OK, "%s: restore: %s", what, err);
    ck_assert_msg(res.max_txid == txid, "%s: restored TXID %llu, want %llu", what,
                  (ull)res.max_txid, (ull)txid);
    struct stat st;
    ck_assert(fstat(fd, &st) == 0);
    ck_assert_msg((uint64_t)st.st_size == (uint64_t)pages * PS, "%s: restored %lld bytes, want %u",
                  what, (long long)st.st_size, pages * PS);
    uint8_t *got = malloc((size_t)pages * PS);
    ck_assert(pread(fd, got, (size_t)pages * PS, 0) == (ssize_t)pages * PS);
    ck_assert_msg(memcmp(got, want, (size_t)pages * PS) == 0, "%s: restored bytes differ", what);
    free(got);
    close(fd);
    tu_tmp_remove(path);
}

static void check_restore(replica *r, const model *m, const char *what)
{
    check_restore_at(r, NULL, m->db, m->commit, m->txid, what);
}

/* The report lines of a pass, one per line. */
typedef struct lines {
    char *text;
    size_t len, n;
} lines;

static void collect(void *ctx, const char *line)
{
    lines *l = ctx;
    size_t k = strlen(line);
    ck_assert_msg(strchr(line, '\n') == NULL, "a report line with a newline: %s", line);
    l->text = realloc(l->text, l->len + k + 2);
    ck_assert(l->text != NULL);
    memcpy(l->text + l->len, line, k);
    l->len += k;
    l->text[l->len++] = '\n';
    l->text[l->len] = 0;
    l->n++;
}

static void lines_clear(lines *l)
{
    free(l->text);
    memset(l, 0, sizeof *l);
}

static void has(const lines *l, const char *want)
{
    ck_assert_msg(l->text && strstr(l->text, want), "no line with \"%s\" in:\n%s", want,
                  l->text ? l->text : "(nothing)");
}

static void has_not(const lines *l, const char *bad)
{
    ck_assert_msg(!l->text || !strstr(l->text, bad), "a line with \"%s\" in:\n%s", bad, l->text);
}

/* A pass that must succeed; its lines replace *l. */
static void pass_ok(replica *r, const compact_options *o, lines *l, compact_stats *st)
{
    char err[LV_ERRLEN] = "";
    lines_clear(l);
    lv_err rc = compact_pass(r, o, collect, l, st, err);
    ck_assert_msg(rc == LV_OK, "compact_pass: %s (%s)\n%s", err, lv_strerror(rc),
                  l->text ? l->text : "");
}

static compact_options opts(int64_t now)
{
    compact_options o;
    compact_options_default(&o);
    o.now_ms = now;
    return o;
}

/* ---- tests --------------------------------------------------------------------------------- */

START_TEST(test_defaults)
{
    compact_options o;
    memset(&o, 0x5a, sizeof o);
    compact_options_default(&o);
    ck_assert_int_eq(o.interval_ms[1], 30000);
    ck_assert_int_eq(o.interval_ms[2], 300000);
    ck_assert_int_eq(o.interval_ms[3], 3600000);
    ck_assert_int_eq(o.snapshot_interval_ms, 24 * HOUR);
    ck_assert_int_eq(o.retention_ms, 24 * HOUR);
    ck_assert_int_eq(o.l0_retention_ms, 5 * MIN);
    ck_assert_int_eq(o.only_level, 0);
    ck_assert_int_eq(o.force_snapshot, 0);
    ck_assert_int_eq(o.dry_run, 0);
    ck_assert(o.max_txid == 0);
    ck_assert_int_eq(o.stop_on_conflict, 0);
    ck_assert_ptr_null(o.tmp_dir);

    /* Bad options are refused before any I/O. */
    char dir[512], err[LV_ERRLEN] = "";
    replica *r = file_replica(dir, sizeof dir);
    o.only_level = 4;
    ck_assert_int_eq(compact_pass(r, &o, NULL, NULL, NULL, err), LV_EINVAL);
    ck_assert_msg(strstr(err, "only_level") != NULL, "%s", err);
    /* An empty replica: nothing to do, said so. */
    o = opts(B);
    lines l = {0};
    pass_ok(r, &o, &l, NULL);
    has(&l, "L0 -> L1: nothing new to compact");
    has(&l, "snapshot: the replica is empty");
    lines_clear(&l);
    replica_close(r);
}
END_TEST

/* Passes 1..3 over one replica, restoring after each: see the comments in the body. */
static void levels_and_snapshots(replica *r, int file_backend)
{
    model m;
    model_init(&m, 42);
    lines l = {0};
    compact_stats st;
    for (int k = 1; k <= 6; k++)
        model_tx(&m, r, B + k * 1000);
    want_levels(r, "0:1-1 0:2-2 0:3-3 0:4-4 0:5-5 0:6-6 ", "before", NULL);
    check_restore(r, &m, "before compaction");

    /* Pass 1 at B+10m: L1..L3 from nothing, a forced snapshot, L0 retention keeping the newest. */
    compact_options o = opts(B + 10 * MIN);
    o.force_snapshot = 1;
    memset(&st, 0, sizeof st);
    pass_ok(r, &o, &l, &st);
    has(&l, "L0 -> L1: compacted 6 files (TXID 0000000000000001-0000000000000006) into ");
    has(&l, "0000000000000001-0000000000000006.ltx, ");
    has(&l, "L1 -> L2: compacted 1 file (TXID 0000000000000001-0000000000000006)");
    has(&l, "L2 -> L3: compacted 1 file (TXID");
    has(&l, "snapshot: wrote ");
    has(&l, "retention: deleted ");
    has(&l, "(L0, covered by L1)");
    ck_assert_uint_eq(st.compactions[1], 1);
    ck_assert_uint_eq(st.compactions[2], 1);
    ck_assert_uint_eq(st.compactions[3], 1);
    ck_assert_uint_eq(st.snapshots, 1);
    ck_assert_uint_eq(st.deleted, 5);
    ck_assert_uint_eq(st.conflicts, 0);
    ck_assert(st.bytes_written > 0);
    want_levels(r, "0:6-6 1:1-6 2:1-6 3:1-6 9:1-6 ", "after pass 1", l.text);
    check_restore(r, &m, "after pass 1");

    if (file_backend) {
        /* The file backend stamps a compaction with its last input's time (L1..L3 1-6: B+6s):
         * at B+10m+20s L1 and L2 are due (older than B+10m), L3 not (not older than B, its
         * hour); once L1 holds 7-7 (B+10m+1s) it is not due again before B+10m+30s, nor L2
         * before B+15m. */
        model_tx(&m, r, B + 10 * MIN + 1000);
        o = opts(B + 10 * MIN + 20000);
        pass_ok(r, &o, &l, NULL);
        has(&l, "L0 -> L1: compacted 1 file (TXID 0000000000000007-0000000000000007)");
        has(&l, "L1 -> L2: compacted 1 file (TXID 0000000000000007-0000000000000007)");
        has(&l, "L2 -> L3: not due (1 file waiting; next at 2027-01-15T09:00:00Z)");
        has(&l, "snapshot: not due (next at 2027-01-16T08:10:00Z)");
        check_restore(r, &m, "after pass 2");
        model_tx(&m, r, B + 10 * MIN + 21000);
        o = opts(B + 10 * MIN + 25000);
        pass_ok(r, &o, &l, NULL);
        has(&l, "L0 -> L1: not due (1 file waiting; next at 2027-01-15T08:10:30Z)");
        has(&l, "L1 -> L2: nothing new to compact");
        o = opts(B + 10 * MIN + 30000);
        pass_ok(r, &o, &l, NULL);
        has(&l, "L0 -> L1: compacted 1 file (TXID 0000000000000008-0000000000000008)");
        has(&l, "L1 -> L2: not due (1 file waiting; next at 2027-01-15T08:15:00Z)");
        has_not(&l, "retention:"); /* L0 7 and 8 are younger than 5m */
        check_restore(r, &m, "after pass 3");
    } else {
        model_tx(&m, r, B); /* LastModified is the real clock: every level is due */
        model_tx(&m, r, B);
    }

    /* Pass at B+25h: the levels take what is new; the snapshot is due (24h); the old one goes
     * (older than 24h, not the newest); its TXID 6 is no file's max but L1..L3 1-6's, which
     * stay (only files below it go). */
    o = opts(B + 25 * HOUR);
    memset(&st, 0, sizeof st);
    pass_ok(r, &o, &l, &st);
    has(&l, "snapshot: wrote ");
    has(&l, "(snapshot older than the retention)");
    has_not(&l, "(below the oldest snapshot kept)");
    ck_assert_uint_eq(st.snapshots, 1);
    check_restore(r, &m, "after the pass at 25h");
    want_levels(r,
                file_backend ? "0:8-8 1:1-6 1:7-7 1:8-8 2:1-6 2:7-7 2:8-8 3:1-6 3:7-8 9:1-8 "
                             : "0:8-8 1:1-6 1:7-8 2:1-6 2:7-8 3:1-6 3:7-8 9:1-8 ",
                "after the pass at 25h", l.text);

    /* At B+50h with two more transactions: the floor is 8, files below it go from levels 1..3,
     * each keeping its last. */
    model_tx(&m, r, B + 49 * HOUR);
    model_tx(&m, r, B + 49 * HOUR + 1000);
    o = opts(B + 50 * HOUR);
    pass_ok(r, &o, &l, NULL);
    has(&l, "(below the oldest snapshot kept)");
    want_levels(r,
                file_backend ? "0:10-10 1:8-8 1:9-10 2:8-8 2:9-10 3:7-8 3:9-10 9:1-10 "
                             : "0:10-10 1:7-8 1:9-10 2:7-8 2:9-10 3:7-8 3:9-10 9:1-10 ",
                "after the pass at 50h", l.text);
    check_restore(r, &m, "after the pass at 50h");
    lines_clear(&l);
    model_free(&m);
}

START_TEST(test_file_levels_and_snapshots)
{
    char dir[512];
    replica *r = file_replica(dir, sizeof dir);
    levels_and_snapshots(r, 1);
    replica_close(r);
}
END_TEST

START_TEST(test_s3_levels_and_snapshots)
{
    replica *r = s3_replica();
    levels_and_snapshots(r, 0);
    replica_close(r);
}
END_TEST

static void dry_run(replica *r)
{
    model m;
    model_init(&m, 7);
    lines l = {0};
    compact_stats st;
    memset(&st, 0, sizeof st);
    for (int k = 1; k <= 5; k++)
        model_tx(&m, r, B + k * 1000);
    char *before = levels(r);
    compact_options o = opts(B + 10 * MIN);
    o.force_snapshot = 1;
    o.dry_run = 1;
    pass_ok(r, &o, &l, &st);
    has(&l, "L0 -> L1: would compact 5 files into ");
    has(&l, "L1 -> L2: would compact 1 file into ");
    has(&l, "L2 -> L3: would compact 1 file into ");
    has(&l, "snapshot: would write ");
    has(&l, "retention: would delete ");
    has_not(&l, "compacted");
    has_not(&l, "wrote");
    ck_assert_uint_eq(st.compactions[1], 1);
    ck_assert_uint_eq(st.snapshots, 1);
    ck_assert_uint_eq(st.deleted, 4);
    ck_assert(st.bytes_written == 0);
    want_levels(r, before, "after a dry run", l.text);
    check_restore(r, &m, "after a dry run");

    /* The same pass for real does what the dry run said, line for line (but the verbs). */
    char *dry = strdup(l.text);
    size_t ndry = l.n;
    o.dry_run = 0;
    pass_ok(r, &o, &l, NULL);
    ck_assert_uint_eq(l.n, ndry);
    for (char *line = strtok(dry, "\n"); line; line = strtok(NULL, "\n")) {
        char want[2048];
        const char *at;
        if ((at =
                 strstr(line, " would compact "))) { /* "... into KEY" -> "... into KEY, N bytes" */
            snprintf(want, sizeof want, "%s,", strstr(at, " into "));
            has(&l, want);
        } else if ((at = strstr(line, "snapshot: would write "))) {
            snprintf(want, sizeof want, "snapshot: wrote %s,",
                     at + strlen("snapshot: would write "));
            has(&l, want);
        } else if ((at = strstr(line, "retention: would delete "))) {
            snprintf(want, sizeof want, "retention: deleted %s",
                     at + strlen("retention: would delete "));
            has(&l, want);
        } else {
            has(&l, line);
        }
    }
    check_restore(r, &m, "after the pass");
    free(dry);
    free(before);
    lines_clear(&l);
    model_free(&m);
}

START_TEST(test_dry_run_changes_nothing)
{
    char dir[512];
    replica *r = file_replica(dir, sizeof dir);
    dry_run(r);
    replica_close(r);
    r = s3_replica();
    dry_run(r);
    replica_close(r);
}
END_TEST

START_TEST(test_l0_retention)
{
    char dir[512];
    replica *r = file_replica(dir, sizeof dir);
    model m;
    model_init(&m, 11);
    lines l = {0};
    compact_stats st;
    for (int k = 1; k <= 6; k++)
        model_tx(&m, r, B + k * 1000);

    /* L1 made at B+60s: every L0 file is younger than 5 minutes, none goes. */
    compact_options o = opts(B + 60000);
    o.snapshot_interval_ms = -1;
    pass_ok(r, &o, &l, NULL);
    has(&l, "snapshot: not due (snapshots are off)");
    has_not(&l, "retention:");
    want_levels(r, "0:1-1 0:2-2 0:3-3 0:4-4 0:5-5 0:6-6 1:1-6 2:1-6 3:1-6 ", "young L0", l.text);

    /* At B+5m+3.5s files 1..3 are old (created at or before B+3.5s); 4 is young: the walk stops
     * there, although 5 and 6 are covered too. */
    o.now_ms = B + 5 * MIN + 3500;
    memset(&st, 0, sizeof st);
    pass_ok(r, &o, &l, &st);
    ck_assert_uint_eq(st.deleted, 3);
    want_levels(r, "0:4-4 0:5-5 0:6-6 1:1-6 2:1-6 3:1-6 ", "three old L0", l.text);
    check_restore(r, &m, "after L0 retention");

    /* Two transactions L1 does not cover (it is not due for a day): at B+1h 4..6 go, 7 and 8
     * stay (not covered). */
    model_tx(&m, r, B + 6 * MIN);
    model_tx(&m, r, B + 7 * MIN);
    o.now_ms = B + HOUR;
    o.interval_ms[1] = 24 * HOUR;
    pass_ok(r, &o, &l, NULL);
    has(&l, "L0 -> L1: not due (2 files waiting");
    want_levels(r, "0:7-7 0:8-8 1:1-6 2:1-6 3:1-6 ", "uncovered L0", l.text);
    check_restore(r, &m, "with uncovered L0");

    /* L1 always due: 7-8 goes to L1; 7 goes, 8 (old and covered) stays: the newest L0 file. */
    o.now_ms = B + 2 * HOUR;
    o.interval_ms[1] = 0;
    pass_ok(r, &o, &l, NULL);
    has(&l, "L0 -> L1: compacted 2 files (TXID 0000000000000007-0000000000000008)");
    want_levels(r, "0:8-8 1:1-6 1:7-8 2:1-6 2:7-8 3:1-6 3:7-8 ", "newest L0 kept", l.text);
    check_restore(r, &m, "newest L0 kept");

    /* l0_retention 0 keeps everything. */
    model_tx(&m, r, B + 2 * HOUR + 1000);
    o.now_ms = B + 5 * HOUR;
    o.l0_retention_ms = 0;
    pass_ok(r, &o, &l, NULL);
    want_levels(r, "0:8-8 0:9-9 1:1-6 1:7-8 1:9-9 2:1-6 2:7-8 2:9-9 3:1-6 3:7-8 3:9-9 ",
                "l0_retention 0", l.text);
    lines_clear(&l);
    model_free(&m);
    replica_close(r);
}
END_TEST

START_TEST(test_max_txid)
{
    char dir[512];
    replica *r = file_replica(dir, sizeof dir);
    model m;
    model_init(&m, 5);
    lines l = {0};
    uint8_t at6[MAX_PAGES * PS];
    uint32_t commit6 = 0;
    for (int k = 1; k <= 10; k++) {
        model_tx(&m, r, B + k * 1000);
        if (k == 6) {
            memcpy(at6, m.db, sizeof at6);
            commit6 = m.commit;
        }
    }
    compact_options o = opts(B + 10 * MIN);
    o.force_snapshot = 1;
    o.max_txid = 6;
    pass_ok(r, &o, &l, NULL);
    has(&l, "L0 -> L1: compacted 6 files (TXID 0000000000000001-0000000000000006)");
    /* 1..5 covered and old go; 6 is the newest the pass sees and stays; 7..10 are not its. */
    want_levels(r, "0:6-6 0:7-7 0:8-8 0:9-9 0:10-10 1:1-6 2:1-6 3:1-6 9:1-6 ", "max_txid 6",
                l.text);
    check_restore(r, &m, "after a pass with max_txid 6");
    replica_target t6 = {6, 0};
    check_restore_at(r, &t6, at6, commit6, 6, "TXID 6 after a pass with max_txid 6");

    /* max_txid 8: L1 takes 7-8 (9 and 10 are above); the snapshot 1-8 is the state at 8. */
    o.max_txid = 8;
    o.now_ms = B + 30 * HOUR;
    pass_ok(r, &o, &l, NULL);
    has(&l, "L0 -> L1: compacted 2 files (TXID 0000000000000007-0000000000000008)");
    has(&l, "snapshot: wrote ");
    want_levels(r, "0:8-8 0:9-9 0:10-10 1:1-6 1:7-8 2:1-6 2:7-8 3:1-6 3:7-8 9:1-8 ", "max_txid 8",
                l.text);
    check_restore(r, &m, "after a pass with max_txid 8");
    lines_clear(&l);
    model_free(&m);
    replica_close(r);
}
END_TEST

/* Writes at level the compaction of m's files lo..hi, as another compactor would. */
static void precompact(replica *r, const model *m, int level, uint64_t lo, uint64_t hi)
{
    size_t n = (size_t)(hi - lo + 1);
    ltx_source src[64];
    ltx_mem_reader rd[64];
    for (size_t i = 0; i < n; i++) {
        rd[i] = tu_reader(m->files[lo + i], m->sizes[lo + i]);
        src[i] = (ltx_source){ltx_mem_read, &rd[i], NULL};
    }
    tu_buf out = {0};
    char err[LV_ERRLEN] = "";
    ck_assert_msg(ltx_compact(src, n, tu_buf_write, &out, NULL, NULL, err) == LV_OK, "%s", err);
    ck_assert_msg(replica_write(r, level, out.data, out.size, 1, err) == LV_OK, "%s", err);
    tu_buf_free(&out);
}

/* Writes a snapshot 1..m->txid of m's current state at level 9, as another compactor would. */
static void presnapshot(replica *r, const model *m, int64_t ts)
{
    char *path = tu_tmp_path("db");
    int fd = tu_open(path, O_RDWR | O_CREAT | O_TRUNC);
    ck_assert(pwrite(fd, m->db, (size_t)m->commit * PS, 0) == (ssize_t)m->commit * PS);
    lv_buf snap;
    lv_buf_init(&snap);
    char err[LV_ERRLEN] = "";
    ck_assert_msg(compact_encode_snapshot(fd, m->txid, ts, &snap, NULL, NULL, err) == LV_OK, "%s",
                  err);
    ck_assert_msg(replica_write(r, REPLICA_SNAPSHOT_LEVEL, snap.data, snap.len, 1, err) == LV_OK,
                  "%s", err);
    lv_buf_free(&snap);
    close(fd);
    tu_tmp_remove(path);
}

/*
 * Another compactor racing the pass: the pass lists once, then writes; the report callback runs
 * between its steps, and there (after the listing, before the next write) "the other compactor"
 * writes the file the next step is about to write: L2 and L3 1-6 after L1 is written, the
 * snapshot 1-6 after L3.
 */
typedef struct racer {
    lines l;
    replica *r;
    const model *m;
} racer;

static void race_report(void *ctx, const char *line)
{
    racer *x = ctx;
    collect(&x->l, line);
    if (strncmp(line, "L0 -> L1: compacted", 19) == 0) {
        precompact(x->r, x->m, 2, 1, x->m->txid);
        precompact(x->r, x->m, 3, 1, x->m->txid);
    } else if (strncmp(line, "L2 -> L3:", 9) == 0) {
        presnapshot(x->r, x->m, B + 5 * MIN);
    }
}

static void lost_race(replica *r)
{
    model m;
    model_init(&m, 99);
    racer x = {{0}, r, &m};
    compact_stats st;
    memset(&st, 0, sizeof st);
    char err[LV_ERRLEN] = "";
    for (int k = 1; k <= 6; k++)
        model_tx(&m, r, B + k * 1000);
    compact_options o = opts(B + 10 * MIN);
    o.force_snapshot = 1;
    lv_err rc = compact_pass(r, &o, race_report, &x, &st, err);
    ck_assert_msg(rc == LV_OK, "a lost race failed the pass: %s\n%s", err, x.l.text);
    has(&x.l, "L0 -> L1: compacted 6 files");
    has(&x.l, "0000000000000001-0000000000000006.ltx already exists: another compactor got there "
              "first");
    has(&x.l, "L1 -> L2: ");
    has(&x.l, "L2 -> L3: ");
    has(&x.l, "snapshot: ");
    has_not(&x.l, "L1 -> L2: compacted");
    has_not(&x.l, "L2 -> L3: compacted");
    has_not(&x.l, "snapshot: wrote");
    ck_assert_uint_eq(st.compactions[1], 1);
    ck_assert_uint_eq(st.compactions[2], 0);
    ck_assert_uint_eq(st.compactions[3], 0);
    ck_assert_uint_eq(st.snapshots, 0);
    ck_assert_uint_eq(st.conflicts, 3);
    /* The pass went on to retention, with the files the other compactor wrote in its view. */
    ck_assert_uint_eq(st.deleted, 5);
    want_levels(r, "0:6-6 1:1-6 2:1-6 3:1-6 9:1-6 ", "after a lost race", x.l.text);
    check_restore(r, &m, "after a lost race");
    lines_clear(&x.l);
    model_free(&m);
}

/* stop_on_conflict (ltxctl): the first lost write ends the pass with LV_ECONFLICT and the key. */
static void lost_race_stops(replica *r)
{
    model m;
    model_init(&m, 98);
    racer x = {{0}, r, &m};
    compact_stats st;
    memset(&st, 0, sizeof st);
    char err[LV_ERRLEN] = "";
    for (int k = 1; k <= 3; k++)
        model_tx(&m, r, B + k * 1000);
    compact_options o = opts(B + 10 * MIN);
    o.stop_on_conflict = 1;
    lv_err rc = compact_pass(r, &o, race_report, &x, &st, err);
    ck_assert_msg(rc == LV_ECONFLICT, "rc %d: %s", rc, err);
    ck_assert_msg(strstr(err, "0000000000000001-0000000000000003.ltx: already exists: another "
                              "compactor got there first") != NULL,
                  "%s", err);
    ck_assert_msg(strstr(err, "2/0000000000000001") || strstr(err, "0002/0000000000000001"), "%s",
                  err);
    ck_assert_uint_eq(st.compactions[1], 1);
    ck_assert_uint_eq(st.conflicts, 0);
    has_not(&x.l, "L1 -> L2");
    check_restore(r, &m, "after a pass stopped by a conflict");
    lines_clear(&x.l);
    model_free(&m);
}

START_TEST(test_file_lost_race_is_reported)
{
    char dir[512];
    replica *r = file_replica(dir, sizeof dir);
    lost_race(r);
    replica_close(r);
    r = file_replica(dir, sizeof dir);
    lost_race_stops(r);
    replica_close(r);
}
END_TEST

START_TEST(test_s3_lost_race_is_reported)
{
    replica *r = s3_replica();
    lost_race(r);
    replica_close(r);
    r = s3_replica();
    lost_race_stops(r);
    replica_close(r);
}
END_TEST

/*
 * A hole between a level and the files of the level below it is an error, unless a snapshot
 * covers it (retention deleted what the level had not taken yet).
 */
START_TEST(test_gap)
{
    char dir[512], err[LV_ERRLEN] = "";
    replica *r = file_replica(dir, sizeof dir);
    model m;
    model_init(&m, 3);
    lines l = {0};
    for (int k = 1; k <= 5; k++)
        model_tx(&m, r, B + k * 1000);
    precompact(r, &m, 1, 1, 2);
    replica_file gone = {0, 3, 3, 0, 0};
    ck_assert_msg(replica_delete(r, &gone, 1, err) == LV_OK, "%s", err);
    compact_options o = opts(B + 10 * MIN);
    o.snapshot_interval_ms = -1;
    lv_err rc = compact_pass(r, &o, collect, &l, NULL, err);
    ck_assert_msg(rc == LV_ECONFLICT, "rc %d: %s", rc, err);
    ck_assert_msg(strstr(err, "0000000000000004-0000000000000004.ltx: L0 has a gap: the file "
                              "starts at TXID 0000000000000004, expected 0000000000000003") != NULL,
                  "%s", err);
    want_levels(r, "0:1-1 0:2-2 0:4-4 0:5-5 1:1-2 ", "after a gap", l.text);

    /* A snapshot 1-5 covers the hole: L1 goes on above it, and L2 (empty) starts above it. */
    presnapshot(r, &m, B + 6000);
    pass_ok(r, &o, &l, NULL);
    has(&l, "L0 -> L1: compacted 2 files (TXID 0000000000000004-0000000000000005)");
    has(&l, "L1 -> L2: compacted 1 file (TXID 0000000000000004-0000000000000005)");
    want_levels(r, "0:5-5 1:1-2 1:4-5 2:4-5 3:4-5 9:1-5 ", "a gap a snapshot covers", l.text);
    check_restore(r, &m, "a gap a snapshot covers");
    lines_clear(&l);
    model_free(&m);
    replica_close(r);
}
END_TEST

/*
 * Allocation failures (lib/alloc.h) at every point of a pass, sampled: the pass fails cleanly
 * (an error with its detail; no crash, no leak under ASan), and what it left behind restores to
 * the same database and a clean pass then completes it.
 * The pass includes a snapshot (restore.c's allocations too).
 */
START_TEST(test_allocation_failures)
{
    char dir[512], err[LV_ERRLEN];
    long total = 0, failed = 0, rounds = 0;
    for (long nth = 0, step = 1; total == 0 || nth < total; nth += step) {
        replica *r = file_replica(dir, sizeof dir);
        model m;
        model_init(&m, 17);
        for (int k = 1; k <= 6; k++)
            model_tx(&m, r, B + k * 1000);
        compact_options o = opts(B + 10 * MIN);
        o.force_snapshot = 1;
        err[0] = 0;
        lv_alloc_fail_after(total == 0 ? -1 : nth);
        lv_err rc = compact_pass(r, &o, NULL, NULL, NULL, err);
        long made = lv_alloc_fail_after(-1);
        if (total == 0) { /* the first round counts a whole pass's allocations */
            ck_assert_msg(rc == LV_OK, "%s", err);
            total = made;
            step = total / 120 > 1 ? total / 120 : 1;
            nth = -step;
        } else if (rc != LV_OK) {
            failed++;
            ck_assert_msg(err[0] != 0, "allocation %ld failed the pass without a word", nth);
            check_restore(r, &m, "after a pass that ran out of memory");
            compact_stats st;
            memset(&st, 0, sizeof st);
            ck_assert_msg(compact_pass(r, &o, NULL, NULL, &st, err) == LV_OK, "%s", err);
            check_restore(r, &m, "after the pass that followed");
        }
        model_free(&m);
        replica_close(r);
        remove_dirs();
        rounds++;
    }
    ck_assert_msg(total > 10, "a pass made only %ld allocations", total);
    ck_assert_msg(failed > rounds / 2, "%ld of %ld rounds failed", failed, rounds);
    fprintf(stderr, "allocation failures: a pass makes %ld allocations; %ld of %ld rounds failed\n",
            total, failed, rounds);
}
END_TEST

/*
 * compact_pass in a background thread while the main thread writes level-0 files through the same
 * replica handle, as the write-mode VFS does: the thread compacts up to the TXID the writer has
 * confirmed (max_txid) with the writer's clock. No pass fails; afterwards the replica restores to
 * the model.
 */
typedef struct bg {
    replica *r;
    atomic_ullong confirmed; /* the last TXID written */
    atomic_llong now;        /* the writer's clock */
    atomic_int stop;
    int passes;
    lv_err rc;
    char err[LV_ERRLEN];
    compact_stats st;
} bg;

static void *bg_main(void *arg)
{
    bg *b = arg;
    while (!atomic_load(&b->stop)) {
        compact_options o = opts(atomic_load(&b->now));
        o.max_txid = atomic_load(&b->confirmed);
        o.snapshot_interval_ms = 5 * MIN;
        o.retention_ms = 5 * MIN;
        if (o.max_txid == 0)
            continue;
        lv_err rc = compact_pass(b->r, &o, NULL, NULL, &b->st, b->err);
        b->passes++;
        if (rc != LV_OK) {
            b->rc = rc;
            break;
        }
    }
    return NULL;
}

static void background(replica *r, int txs)
{
    model m;
    model_init(&m, 31);
    bg b;
    memset(&b, 0, sizeof b);
    b.r = r;
    atomic_store(&b.now, B);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, bg_main, &b), 0);
    for (int i = 0; i < txs && b.rc == LV_OK; i++) {
        int64_t now = B + (int64_t)i * 30000;
        model_tx(&m, r, now + 1000);
        atomic_store(&b.confirmed, m.txid);
        atomic_store(&b.now, now + 30000);
        if (i % 10 == 0) { /* let the thread catch up now and then */
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    atomic_store(&b.stop, 1);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_msg(b.rc == LV_OK, "a background pass failed: %s", b.err);
    ck_assert_msg(b.passes > 0 && b.st.compactions[1] > 0, "%d passes, %u compactions", b.passes,
                  b.st.compactions[1]);
    check_restore(r, &m, "after background passes");
    fprintf(stderr, "background: %d transactions, %d passes, L1 %u, snapshots %u, deleted %u\n",
            txs, b.passes, b.st.compactions[1], b.st.snapshots, b.st.deleted);
    model_free(&m);
}

START_TEST(test_file_background_thread)
{
    char dir[512];
    replica *r = file_replica(dir, sizeof dir);
    background(r, 400);
    replica_close(r);
}
END_TEST

START_TEST(test_s3_background_thread)
{
    replica *r = s3_replica();
    background(r, 150);
    replica_close(r);
}
END_TEST

/*
 * A simulated stretch of time: a transaction at a random moment of every 30 s step, a pass at
 * its end. Snapshots every 5 minutes kept for 5 minutes (with Litestream's 24h, L1 alone grows by
 * 2880 files a day before the first snapshot ages out: that is the design, not a leak), the
 * levels' intervals as Litestream's. The number of files listed must stay under `bound`, and the
 * replica restore to the model every `check_every` steps and at the end.
 */
static void simulate(replica *r, int steps, int check_every, size_t bound, compact_stats *st)
{
    model m;
    model_init(&m, 2026);
    lines l = {0};
    size_t most = 0;
    char err[LV_ERRLEN] = "";
    compact_options o = opts(B);
    o.snapshot_interval_ms = 5 * MIN;
    o.retention_ms = 5 * MIN;
    memset(st, 0, sizeof *st);
    for (int i = 0; i < steps; i++) {
        int64_t t0 = B + (int64_t)i * 30000;
        model_tx(&m, r, t0 + 1 + (int64_t)(tu_rand(&m.rng) % 29000));
        o.now_ms = t0 + 30000;
        lv_err rc = compact_pass(r, &o, NULL, NULL, st, err);
        ck_assert_msg(rc == LV_OK, "step %d: %s", i, err);
        size_t n = count_files(r);
        if (n > most)
            most = n;
        ck_assert_msg(n < bound, "step %d: %zu files listed (bound %zu):\n%s", i, n, bound,
                      levels(r));
        if ((i + 1) % check_every == 0 || i + 1 == steps) {
            char what[64];
            snprintf(what, sizeof what, "after step %d", i);
            check_restore(r, &m, what);
        }
    }
    fprintf(stderr,
            "simulate: %d steps, at most %zu files; L1 %u L2 %u L3 %u snapshots %u "
            "deleted %u, %llu bytes written\n",
            steps, most, st->compactions[1], st->compactions[2], st->compactions[3], st->snapshots,
            st->deleted, (ull)st->bytes_written);
    lines_clear(&l);
    model_free(&m);
}

START_TEST(test_file_simulated_day)
{
    char dir[512];
    replica *r = file_replica(dir, sizeof dir);
    compact_stats st;
    simulate(r, 24 * 120, 240, 60, &st);
    /* Every step's transaction reaches L1 at the end of its step; a snapshot every 5m. L2 and
     * L3 twice per interval: the file backend stamps a compaction with its last input's time
     * (as Litestream's does: the mtime is the header timestamp), which is before the boundary
     * of the pass that wrote it, so the next pass finds the level due once more. */
    ck_assert_uint_eq(st.compactions[1], 24 * 120);
    ck_assert_uint_eq(st.compactions[2], 2 * 24 * 12);
    ck_assert_uint_eq(st.compactions[3], 2 * 24);
    ck_assert_uint_eq(st.snapshots, 24 * 12);
    ck_assert_uint_eq(st.conflicts, 0);
    replica_close(r);
}
END_TEST

START_TEST(test_s3_simulated_hours)
{
    /* LastModified is fakes3's real clock, far behind the simulated one: every level and
     * snapshot is due at every pass; still bounded, still restorable. */
    replica *r = s3_replica();
    compact_stats st;
    simulate(r, 2 * 120, 40, 60, &st);
    ck_assert_uint_eq(st.compactions[1], 2 * 120);
    ck_assert_uint_eq(st.conflicts, 0);
    replica_close(r);
}
END_TEST

static Suite *compact_suite(void)
{
    Suite *s = suite_create("compact");
    TCase *tc = tcase_create("file");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_file_levels_and_snapshots);
    tcase_add_test(tc, test_l0_retention);
    tcase_add_test(tc, test_max_txid);
    tcase_add_test(tc, test_file_lost_race_is_reported);
    tcase_add_test(tc, test_gap);
    tcase_add_test(tc, test_allocation_failures);
    tcase_add_test(tc, test_file_background_thread);
    tcase_add_test(tc, test_file_simulated_day);
    suite_add_tcase(s, tc);
    tc = tcase_create("s3");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_s3_levels_and_snapshots);
    tcase_add_test(tc, test_dry_run_changes_nothing);
    tcase_add_test(tc, test_s3_lost_race_is_reported);
    tcase_add_test(tc, test_s3_simulated_hours);
    tcase_add_test(tc, test_s3_background_thread);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(compact_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
