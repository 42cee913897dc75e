/*
 * test_restore: lib/restore.c over the file backend of lib/replica.c (real files in a temp
 * directory):
 *   - the bucket laid out by hand from the LTX vectors (snapshot at level 9, incrementals at
 *     level 0) restores to db-txid3.db byte for byte, to db-txid2.db at TXID 2, and at a time;
 *   - a level-1 compaction is preferred when it reaches furthest; NoChecksum files in the chain;
 *   - damage is caught and named: a flipped byte, a gap, a pre-apply checksum that does not
 *     follow, a final checksum that does not match, header TXIDs that disagree with the name;
 *   - random histories (growth, shrinking, pages cut off and regrown as zeros, compactions at
 *     levels 1..3, with and without a snapshot) restore exactly to an in-memory model and to
 *     what ltx_apply of the plan one file after another gives, whatever the concurrency;
 *   - over a real fakes3 whose GETs are cut, reset or refused (seeded chaos rules), the decoders
 *     start over with the downloads and the result is still exact;
 *   - restore_verify_files reports each file.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "restore.h"
#include "testutil.h"

typedef unsigned long long ull;

/* ---- helpers ----------------------------------------------------------------------------- */

typedef struct tmpdir {
    char path[256];
} tmpdir;

static void tmpdir_make(tmpdir *d)
{
    snprintf(d->path, sizeof d->path, "/tmp/test_restore.XXXXXX");
    ck_assert(mkdtemp(d->path) != NULL);
}

static void tmpdir_remove(tmpdir *d)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->path);
    ck_assert_int_eq(system(cmd), 0);
}

static replica *open_dir(const tmpdir *d)
{
    replica *r = NULL;
    char err[LV_ERRLEN] = "";
    char url[300];
    snprintf(url, sizeof url, "file://%s/replica", d->path);
    ck_assert_msg(replica_open(url, NULL, &r, err) == LV_OK, "%s", err);
    return r;
}

static void put(replica *r, int level, const uint8_t *data, size_t n)
{
    char err[LV_ERRLEN] = "";
    ck_assert_msg(replica_write(r, level, data, n, 1, err) == LV_OK, "%s", err);
}

static void put_vector(replica *r, int level, const char *name)
{
    size_t n;
    uint8_t *data = tu_read_file(tu_ltx(name), &n);
    put(r, level, data, n);
    free(data);
}

/* Restores into a fresh file under d; returns its bytes (caller frees) or NULL with err. */
static uint8_t *restore_to_mem(replica *r, const tmpdir *d, const replica_target *t,
                               unsigned concurrency, restore_result *res, size_t *size, lv_err *rc,
                               char *err)
{
    char path[300];
    snprintf(path, sizeof path, "%s/out.db", d->path);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    restore_options o = {NULL, NULL, concurrency};
    *rc = restore_run(r, t, fd, &o, res, err);
    close(fd);
    uint8_t *data = NULL;
    if (*rc == LV_OK)
        data = tu_read_file(path, size);
    unlink(path);
    return data;
}

static void assert_restores_to(replica *r, const tmpdir *d, const replica_target *t,
                               const char *db_name, restore_result *res)
{
    size_t n, want_n;
    lv_err rc;
    char err[LV_ERRLEN] = "";
    uint8_t *got = restore_to_mem(r, d, t, 0, res, &n, &rc, err);
    ck_assert_msg(rc == LV_OK, "restore: %s", err);
    uint8_t *want = tu_read_file(tu_ltx(db_name), &want_n);
    ck_assert_msg(n == want_n && memcmp(got, want, n) == 0, "restore differs from %s (%zu/%zu)",
                  db_name, n, want_n);
    free(got);
    free(want);
}

static lv_err restore_fails(replica *r, const tmpdir *d, const replica_target *t, char *err)
{
    size_t n;
    lv_err rc;
    restore_result res;
    uint8_t *got = restore_to_mem(r, d, t, 0, &res, &n, &rc, err);
    ck_assert_msg(rc != LV_OK, "restore should have failed");
    ck_assert(got == NULL);
    return rc;
}

/* ---- the vectors ------------------------------------------------------------------------- */

START_TEST(test_vectors_latest_and_txid)
{
    tmpdir d;
    tmpdir_make(&d);
    replica *r = open_dir(&d);
    put_vector(r, 9, "snapshot-txid1.ltx");
    put_vector(r, 0, "incr-txid2.ltx");
    put_vector(r, 0, "incr-txid3.ltx");

    restore_result res;
    assert_restores_to(r, &d, NULL, "db-txid3.db", &res);
    ck_assert_uint_eq(res.plan_len, 3);
    ck_assert_uint_eq(res.max_txid, 3);
    ck_assert_uint_eq(res.pages, 30);
    ck_assert_uint_eq(res.page_size, 4096);
    ck_assert(res.checksum_verified);
    ck_assert_uint_eq(res.checksum, 0x99b99777dc425342ull);
    ck_assert_uint_eq(res.bytes_downloaded, 36885 + 454 + 8076);

    replica_target t2 = {2, 0};
    assert_restores_to(r, &d, &t2, "db-txid2.db", &res);
    ck_assert_uint_eq(res.plan_len, 2);
    ck_assert_uint_eq(res.max_txid, 2);
    ck_assert_uint_eq(res.checksum, 0xcd115f8f97105891ull);

    replica_target t1 = {1, 0};
    assert_restores_to(r, &d, &t1, "db-txid1.db", &res);
    ck_assert_uint_eq(res.plan_len, 1);

    replica_target t9 = {9, 0};
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(restore_fails(r, &d, &t9, err), LV_ENOTFOUND);

    replica_close(r);
    tmpdir_remove(&d);
}
END_TEST

START_TEST(test_vectors_compaction_preferred)
{
    tmpdir d;
    tmpdir_make(&d);
    replica *r = open_dir(&d);
    put_vector(r, 9, "snapshot-txid1.ltx");
    put_vector(r, 1, "compact-txid2-3.ltx");
    put_vector(r, 0, "incr-txid2.ltx");
    put_vector(r, 0, "incr-txid3.ltx");
    restore_result res;
    assert_restores_to(r, &d, NULL, "db-txid3.db", &res);
    ck_assert_uint_eq(res.plan_len, 2); /* the snapshot and the L1 file */
    ck_assert(res.checksum_verified);

    /* No snapshot at all: the chain starts with a file from TXID 1 at level 1. */
    tmpdir d2;
    tmpdir_make(&d2);
    replica *r2 = open_dir(&d2);
    put_vector(r2, 1, "compact-txid1-2.ltx");
    put_vector(r2, 0, "incr-txid3.ltx");
    assert_restores_to(r2, &d2, NULL, "db-txid3.db", &res);
    ck_assert_uint_eq(res.plan_len, 2);
    replica_close(r2);
    tmpdir_remove(&d2);

    replica_close(r);
    tmpdir_remove(&d);
}
END_TEST

START_TEST(test_vectors_nochecksum_in_chain)
{
    tmpdir d;
    tmpdir_make(&d);
    replica *r = open_dir(&d);
    put_vector(r, 9, "snapshot-txid1.ltx");
    put_vector(r, 0, "incr-txid2-nochecksum.ltx");
    put_vector(r, 0, "incr-txid3.ltx");
    restore_result res;
    assert_restores_to(r, &d, NULL, "db-txid3.db", &res);
    ck_assert(res.checksum_verified); /* the last file tracks checksums */

    replica_target t2 = {2, 0};
    assert_restores_to(r, &d, &t2, "db-txid2.db", &res);
    ck_assert(!res.checksum_verified); /* the last file is NoChecksum */
    replica_close(r);
    tmpdir_remove(&d);
}
END_TEST

/* A vector with a header field patched and its file checksum made right again. */
static uint8_t *patched(const char *name, size_t off, uint64_t v, size_t *n)
{
    uint8_t *data = tu_read_file(tu_ltx(name), n);
    if (off == SIZE_MAX) /* the post-apply checksum in the trailer */
        off = *n - LTX_TRAILER_SIZE;
    tu_put_be64(data + off, v);
    tu_resign_ltx(data, *n);
    return data;
}

START_TEST(test_damage_named)
{
    char err[LV_ERRLEN];
    size_t n;

    /* A flipped byte in a frame: the file checksum fails, and the error names the key. */
    {
        tmpdir d;
        tmpdir_make(&d);
        replica *r = open_dir(&d);
        put_vector(r, 9, "snapshot-txid1.ltx");
        put_vector(r, 0, "incr-txid2.ltx");
        uint8_t *data = tu_read_file(tu_ltx("incr-txid3.ltx"), &n);
        data[3000] ^= 0x40;
        put(r, 0, data, n);
        free(data);
        err[0] = '\0';
        restore_fails(r, &d, NULL, err);
        ck_assert_msg(strstr(err, "0000000000000003-0000000000000003.ltx") != NULL, "%s", err);
        replica_close(r);
        tmpdir_remove(&d);
    }
    /* A gap. */
    {
        tmpdir d;
        tmpdir_make(&d);
        replica *r = open_dir(&d);
        put_vector(r, 9, "snapshot-txid1.ltx");
        put_vector(r, 0, "incr-txid3.ltx");
        err[0] = '\0';
        restore_fails(r, &d, NULL, err);
        ck_assert_msg(strstr(err, "non-contiguous ltx files") != NULL, "%s", err);
        replica_close(r);
        tmpdir_remove(&d);
    }
    /* A pre-apply checksum that does not follow the previous post-apply. */
    {
        tmpdir d;
        tmpdir_make(&d);
        replica *r = open_dir(&d);
        put_vector(r, 9, "snapshot-txid1.ltx");
        put_vector(r, 0, "incr-txid2.ltx");
        uint8_t *data = patched("incr-txid3.ltx", 40, 0x8000000000001234ull, &n);
        put(r, 0, data, n);
        free(data);
        err[0] = '\0';
        ck_assert_int_eq(restore_fails(r, &d, NULL, err), LV_ECHECKSUM);
        ck_assert_msg(strstr(err, "pre-apply checksum 8000000000001234") != NULL, "%s", err);
        replica_close(r);
        tmpdir_remove(&d);
    }
    /* A last post-apply checksum that the restored pages do not give. */
    {
        tmpdir d;
        tmpdir_make(&d);
        replica *r = open_dir(&d);
        put_vector(r, 9, "snapshot-txid1.ltx");
        put_vector(r, 0, "incr-txid2.ltx");
        uint8_t *data = patched("incr-txid3.ltx", SIZE_MAX, 0x8000000000005678ull, &n);
        put(r, 0, data, n);
        free(data);
        err[0] = '\0';
        ck_assert_int_eq(restore_fails(r, &d, NULL, err), LV_ECHECKSUM);
        ck_assert_msg(strstr(err, "database checksum after restore 99b99777dc425342") != NULL, "%s",
                      err);
        replica_close(r);
        tmpdir_remove(&d);
    }
    /* A file whose name says TXID 4 but whose header says 3 (copied by hand, as a user might). */
    {
        tmpdir d;
        tmpdir_make(&d);
        replica *r = open_dir(&d);
        put_vector(r, 9, "snapshot-txid1.ltx");
        put_vector(r, 0, "incr-txid2.ltx");
        put_vector(r, 0, "incr-txid3.ltx");
        char from[400], to[400];
        snprintf(from, sizeof from, "%s/replica/ltx/0/0000000000000003-0000000000000003.ltx",
                 d.path);
        snprintf(to, sizeof to, "%s/replica/ltx/0/0000000000000003-0000000000000004.ltx", d.path);
        ck_assert_int_eq(rename(from, to), 0);
        err[0] = '\0';
        ck_assert_int_eq(restore_fails(r, &d, NULL, err), LV_ECORRUPT);
        ck_assert_msg(strstr(err, "name") != NULL, "%s", err);
        ck_assert_msg(strstr(err, "0000000000000003-0000000000000004.ltx") != NULL, "%s", err);
        replica_close(r);
        tmpdir_remove(&d);
    }
}
END_TEST

START_TEST(test_time_target)
{
    /* The snapshot vector was stamped in 2026 and the incrementals in 2025: restamp the snapshot
     * an hour before them so that times pick states. */
    tmpdir d;
    tmpdir_make(&d);
    replica *r = open_dir(&d);
    size_t n;
    uint8_t *snap = patched("snapshot-txid1.ltx", 32, 1735686000000ull, &n); /* 2024-12-31T23Z */
    put(r, 9, snap, n);
    free(snap);
    put_vector(r, 0, "incr-txid2.ltx"); /* 2025-01-01T00:00:00Z */
    put_vector(r, 0, "incr-txid3.ltx"); /* 2025-01-01T00:01:00Z */
    restore_result res;
    replica_target t = {0, 1735689630000ll}; /* 00:00:30 */
    assert_restores_to(r, &d, &t, "db-txid2.db", &res);
    ck_assert_int_eq(res.timestamp_ms, 1735689600000ll);
    t.time_ms = 1735689660000ll; /* exactly TXID 3's time */
    assert_restores_to(r, &d, &t, "db-txid3.db", &res);
    t.time_ms = 1735687000000ll; /* after the snapshot only */
    assert_restores_to(r, &d, &t, "db-txid1.db", &res);
    t.time_ms = 1735600000000ll; /* before everything */
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(restore_fails(r, &d, &t, err), LV_ENOTFOUND);
    replica_close(r);
    tmpdir_remove(&d);
}
END_TEST

/* ---- random histories -------------------------------------------------------------------- */

#define PS 512

typedef struct model {
    uint8_t *pages; /* commit * PS bytes */
    uint32_t commit;
} model;

static uint64_t model_checksum(const model *m)
{
    uint64_t sum = 0;
    for (uint32_t p = 1; p <= m->commit; p++)
        sum = ltx_db_checksum_update(sum, 0,
                                     ltx_page_checksum(p, m->pages + (size_t)(p - 1) * PS, PS));
    return m->commit ? sum : LTX_CHECKSUM_FLAG;
}

typedef struct history {
    uint8_t **files;
    size_t *sizes;
    model *states; /* states[t]: after TXID t (index 0 unused) */
    size_t n;      /* TXIDs 1..n */
} history;

/*
 * n transactions over a database of 512-byte pages: TXID 1 is a full image; later ones change
 * random pages, grow (regrow_zeros: new pages sometimes left out, i.e. zero) or shrink.
 */
static void make_history(history *h, size_t n, uint64_t seed, int regrow_zeros)
{
    uint64_t rs = seed * 2654435761u + 1;
    memset(h, 0, sizeof *h);
    h->n = n;
    h->files = calloc(n + 1, sizeof *h->files);
    h->sizes = calloc(n + 1, sizeof *h->sizes);
    h->states = calloc(n + 1, sizeof *h->states);
    ck_assert(h->files && h->sizes && h->states);
    model cur = {NULL, 0};
    for (size_t t = 1; t <= n; t++) {
        uint32_t old_commit = cur.commit, commit;
        if (t == 1)
            commit = 20 + (uint32_t)(tu_rand(&rs) % 40);
        else {
            int delta = (int)(tu_rand(&rs) % 25) - 10;
            int c = (int)old_commit + delta;
            commit = c < 1 ? 1 : (uint32_t)c;
        }
        uint64_t pre = t == 1 ? 0 : model_checksum(&cur);
        model next = {calloc(commit ? commit : 1, PS), commit};
        ck_assert(next.pages);
        if (cur.pages)
            memcpy(next.pages, cur.pages, (size_t)(old_commit < commit ? old_commit : commit) * PS);
        uint32_t *pgnos = calloc(commit, sizeof *pgnos);
        uint8_t *data = calloc(commit ? commit : 1, PS);
        size_t k = 0;
        for (uint32_t p = 1; p <= commit; p++) {
            int grown = p > old_commit;
            int take = t == 1 ||
                       (grown ? !(regrow_zeros && tu_rand(&rs) % 3 == 0) : tu_rand(&rs) % 4 == 0);
            if (!take)
                continue;
            uint8_t *pg = next.pages + (size_t)(p - 1) * PS;
            for (size_t i = 0; i < PS; i += 8) {
                uint64_t v = tu_rand(&rs);
                memcpy(pg + i, &v, 8);
            }
            if (tu_rand(&rs) % 2)
                memset(pg + 64, 0, PS - 128); /* compressible too */
            if (p == 1) { /* ltx_apply (the reference) wants to see a SQLite database */
                memcpy(pg, "SQLite format 3", 16);
                pg[16] = PS >> 8;
                pg[17] = PS & 0xff;
            }
            memcpy(data + k * PS, pg, PS);
            pgnos[k++] = p;
        }
        ltx_header hd = {0};
        hd.page_size = PS;
        hd.commit = commit;
        hd.min_txid = hd.max_txid = t;
        hd.timestamp = 1735689600000ll + (int64_t)t * 1000;
        hd.pre_apply_checksum = pre;
        h->files[t] = tu_craft_ltx(&hd, pgnos, data, k, model_checksum(&next), &h->sizes[t]);
        free(pgnos);
        free(data);
        h->states[t] = next;
        cur = next;
    }
}

static void history_free(history *h)
{
    for (size_t t = 1; t <= h->n; t++) {
        free(h->files[t]);
        free(h->states[t].pages);
    }
    free(h->files);
    free(h->sizes);
    free(h->states);
}

/* ltx_compact of TXIDs a..b of h into a new buffer (caller frees with tu_buf_free). */
static void compact_range(const history *h, size_t a, size_t b, tu_buf *out)
{
    size_t n = b - a + 1;
    ltx_source *srcs = calloc(n, sizeof *srcs);
    ltx_mem_reader *rd = calloc(n, sizeof *rd);
    ck_assert(srcs && rd);
    for (size_t i = 0; i < n; i++) {
        rd[i] = tu_reader(h->files[a + i], h->sizes[a + i]);
        srcs[i] = (ltx_source){ltx_mem_read, &rd[i], NULL};
    }
    char err[LV_ERRLEN] = "";
    memset(out, 0, sizeof *out);
    ck_assert_msg(ltx_compact(srcs, n, tu_buf_write, out, NULL, NULL, err) == LV_OK, "%s", err);
    free(srcs);
    free(rd);
}

/* The plan's files applied one after another with ltx_apply: the reference result. */
static uint8_t *apply_plan(replica *r, const tmpdir *d, size_t *size)
{
    replica_plan plan;
    char err[LV_ERRLEN] = "", path[300];
    ck_assert_msg(restore_plan(r, NULL, &plan, err) == LV_OK, "%s", err);
    snprintf(path, sizeof path, "%s/ref.db", d->path);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    uint64_t sum = 0;
    for (size_t i = 0; i < plan.n; i++) {
        lv_buf b;
        lv_buf_init(&b);
        ck_assert_msg(replica_read(r, &plan.files[i], 0, S3_TO_END, &b, err) == LV_OK, "%s", err);
        ltx_mem_reader rd = tu_reader((const uint8_t *)b.data, b.len);
        ck_assert_msg(ltx_apply(fd, ltx_mem_read, &rd, &sum, NULL, err) == LV_OK, "%s", err);
        lv_buf_free(&b);
    }
    close(fd);
    lv_free(plan.files);
    uint8_t *data = tu_read_file(path, size);
    unlink(path);
    return data;
}

static void check_history(int variant, uint64_t seed)
{
    history h;
    size_t n = 12 + seed % 8;
    int regrow_zeros = variant == 2;
    make_history(&h, n, seed, regrow_zeros);
    tmpdir d;
    tmpdir_make(&d);
    replica *r = open_dir(&d);

    /* variant 0: snapshot of TXID 1 at level 9, all at L0, compactions at L1..L3;
     * variant 1: no snapshot, L0 only plus an L1 from TXID 1;
     * variant 2: zero pages after regrowth, no compaction (ltx_compact does not model them). */
    if (variant != 1)
        put(r, 9, h.files[1], h.sizes[1]);
    for (size_t t = variant == 1 ? 1 : 2; t <= n; t++)
        put(r, 0, h.files[t], h.sizes[t]);
    if (variant == 0) {
        tu_buf c;
        compact_range(&h, 2, n / 2, &c);
        put(r, 1, c.data, c.size);
        tu_buf_free(&c);
        compact_range(&h, 2, n / 3, &c);
        put(r, 2, c.data, c.size);
        tu_buf_free(&c);
        compact_range(&h, n / 2 + 1, n - 2, &c);
        put(r, 3, c.data, c.size);
        tu_buf_free(&c);
    } else if (variant == 1) {
        tu_buf c;
        compact_range(&h, 1, n / 2, &c);
        put(r, 1, c.data, c.size);
        tu_buf_free(&c);
    }

    size_t ref_n;
    uint8_t *ref = apply_plan(r, &d, &ref_n);
    for (unsigned conc = 1; conc <= 8; conc *= 8) {
        for (size_t t = 1; t <= n; t += (t < 3 ? 1 : 3)) {
            replica_target tg = {t == n ? 0 : t, 0};
            restore_result res;
            size_t got_n;
            lv_err rc;
            char err[LV_ERRLEN] = "";
            uint8_t *got = restore_to_mem(r, &d, &tg, conc, &res, &got_n, &rc, err);
            ck_assert_msg(rc == LV_OK, "variant %d seed %llu txid %zu: %s", variant, (ull)seed, t,
                          err);
            const model *m = &h.states[t];
            ck_assert_msg(got_n == (size_t)m->commit * PS && memcmp(got, m->pages, got_n) == 0,
                          "variant %d seed %llu txid %zu: differs from the model", variant,
                          (ull)seed, t);
            ck_assert(res.checksum_verified);
            ck_assert_uint_eq(res.checksum, model_checksum(m));
            if (t == n)
                ck_assert_msg(got_n == ref_n && memcmp(got, ref, ref_n) == 0,
                              "differs from ltx_apply of the plan");
            free(got);
        }
    }
    free(ref);
    replica_close(r);
    tmpdir_remove(&d);
    history_free(&h);
}

START_TEST(test_random_histories)
{
    for (uint64_t seed = 1; seed <= 6; seed++)
        check_history(_i, seed);
}
END_TEST

/* ---- over a real fakes3 ------------------------------------------------------------------ */

static replica *open_s3(const tu_fakes3 *f, const char *prefix)
{
    s3_config c;
    s3_config_init(&c);
    c.access_key = TU_FAKES3_KEY;
    c.secret_key = TU_FAKES3_SECRET;
    c.retry_base_ms = 10;
    c.retry_cap_ms = 100;
    c.max_attempts = 20;
    replica_options ro = {&c};
    char url[300], err[LV_ERRLEN] = "";
    snprintf(url, sizeof url, "s3://%s/%s?endpoint=%s", TU_FAKES3_BUCKET, prefix, f->endpoint);
    replica *r = NULL;
    ck_assert_msg(replica_open(url, &ro, &r, err) == LV_OK, "%s", err);
    return r;
}

/*
 * The decoders start over when a download does: the snapshot's first GET is cut after 5000
 * bytes, and a level-0 file's is cut after 100 bytes and again after 3000 (the retries restart
 * from the first byte, with restart set for the decoder). Then every GET may fail (503, reset,
 * cut body): the result is still exactly db-txid3.db.
 */
START_TEST(test_s3_restarts)
{
    tu_fakes3 f;
    const char *args[] = {
        "--seed",  "11",
        "--fault", "truncate 5000 op=GetObject key=*0009/* nth=1",
        "--fault", "truncate 100 op=GetObject key=*0000/0000000000000003-* times=1",
        "--fault", "truncate 3000 op=GetObject key=*0000/0000000000000003-* times=1",
        NULL};
    tu_fakes3_start(&f, args);
    tmpdir d;
    tmpdir_make(&d);
    replica *r = open_s3(&f, "restarts");
    put_vector(r, 9, "snapshot-txid1.ltx");
    put_vector(r, 0, "incr-txid2.ltx");
    put_vector(r, 0, "incr-txid3.ltx");
    restore_result res;
    assert_restores_to(r, &d, NULL, "db-txid3.db", &res);
    ck_assert_uint_eq(res.plan_len, 3);
    /* the cut attempts were downloaded too */
    ck_assert_uint_gt(res.bytes_downloaded, 36885 + 454 + 8076);
    replica_close(r);
    tu_fakes3_stop(&f);

    const char *chaos[] = {"--seed",  "5",
                           "--fault", "error 503 SlowDown op=GetObject p=0.25",
                           "--fault", "reset op=GetObject p=0.2",
                           "--fault", "truncate 2000 op=GetObject p=0.25",
                           NULL};
    tu_fakes3_start(&f, chaos);
    r = open_s3(&f, "chaos");
    put_vector(r, 9, "snapshot-txid1.ltx");
    put_vector(r, 0, "incr-txid2.ltx");
    put_vector(r, 0, "incr-txid3.ltx");
    for (int i = 0; i < 5; i++)
        assert_restores_to(r, &d, NULL, "db-txid3.db", &res);
    replica_target t2 = {2, 0};
    assert_restores_to(r, &d, &t2, "db-txid2.db", &res);
    replica_close(r);
    tu_fakes3_stop(&f);
    tmpdir_remove(&d);
}
END_TEST

/* ---- verify_files ------------------------------------------------------------------------ */

START_TEST(test_verify_files)
{
    tmpdir d;
    tmpdir_make(&d);
    replica *r = open_dir(&d);
    put_vector(r, 9, "snapshot-txid1.ltx");
    put_vector(r, 0, "incr-txid2.ltx");
    size_t n;
    uint8_t *data = tu_read_file(tu_ltx("incr-txid3.ltx"), &n);
    data[n - 1] ^= 1; /* the file checksum itself */
    put(r, 0, data, n);
    free(data);

    replica_file *files;
    size_t nf;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(replica_list(r, -1, &files, &nf, err) == LV_OK, "%s", err);
    ck_assert_uint_eq(nf, 3);
    restore_file_check checks[3];
    restore_options o = {NULL, NULL, 2}; /* two groups */
    ck_assert_msg(restore_verify_files(r, files, nf, &o, checks, err) == LV_OK, "%s", err);
    /* Listing order: level 0 (TXID 2, 3), then level 9. */
    ck_assert_int_eq(checks[0].rc, LV_OK);
    ck_assert_uint_eq(checks[0].header.max_txid, 2);
    ck_assert_uint_eq(checks[0].pages, 1);
    ck_assert_int_ne(checks[1].rc, LV_OK);
    ck_assert_msg(strstr(checks[1].err, "checksum") != NULL, "%s", checks[1].err);
    ck_assert_int_eq(checks[2].rc, LV_OK);
    ck_assert_uint_eq(checks[2].pages, 28);
    ck_assert_uint_eq(checks[2].trailer.post_apply_checksum, 0xc267408b523358b2ull);
    ck_assert_uint_eq(checks[2].pages_checksum, 0xc267408b523358b2ull);
    lv_free(files);
    replica_close(r);
    tmpdir_remove(&d);
}
END_TEST

static uint64_t progress_last, progress_total;
static int progress_calls;
static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx;
    ck_assert_uint_ge(done, progress_last);
    ck_assert_uint_le(done, total);
    progress_last = done;
    progress_total = total;
    progress_calls++;
}

START_TEST(test_progress)
{
    tmpdir d;
    tmpdir_make(&d);
    replica *r = open_dir(&d);
    put_vector(r, 9, "snapshot-txid1.ltx");
    put_vector(r, 0, "incr-txid2.ltx");
    char path[300], err[LV_ERRLEN] = "";
    snprintf(path, sizeof path, "%s/p.db", d.path);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    restore_options o = {on_progress, NULL, 0};
    restore_result res;
    ck_assert_msg(restore_run(r, NULL, fd, &o, &res, err) == LV_OK, "%s", err);
    close(fd);
    ck_assert_int_gt(progress_calls, 0);
    ck_assert_uint_eq(progress_total, 36885 + 454);
    ck_assert_uint_eq(progress_last, progress_total);
    replica_close(r);
    tmpdir_remove(&d);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("restore");
    TCase *tc = tcase_create("restore");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_vectors_latest_and_txid);
    tcase_add_test(tc, test_vectors_compaction_preferred);
    tcase_add_test(tc, test_vectors_nochecksum_in_chain);
    tcase_add_test(tc, test_damage_named);
    tcase_add_test(tc, test_time_target);
    tcase_add_loop_test(tc, test_random_histories, 0, 3);
    tcase_add_test(tc, test_s3_restarts);
    tcase_add_test(tc, test_verify_files);
    tcase_add_test(tc, test_progress);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
