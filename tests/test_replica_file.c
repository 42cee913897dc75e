/*
 * test_replica_file: the replica layer over its file backend, and the backend-neutral checks that
 * test_replica_s3.c runs again over a real fakes3 (it includes this file with REPLICA_BACKEND_S3
 * defined, after defining the three backend hooks below).
 *
 * Shared checks (both backends):
 *   - the LTX vectors written (snapshot at level 9, incrementals at level 0), listed (all levels,
 *     one level, empty levels), read in ranges, fetched whole, their headers and page indexes
 *     fetched (fetch_meta) and compared with a full decode;
 *   - fetch_meta of a file whose page index is larger than REPLICA_INDEX_TAIL, among small ones;
 *     a file whose header disagrees with its name, and a damaged tail, are errors naming the key;
 *   - conditional writes: the second loses with LV_ECONFLICT and the first's bytes stay; an
 *     unconditional write replaces; of 8 threads writing one name conditionally exactly one wins;
 *   - delete (missing files are fine); names that are not LTX names are ignored;
 *   - a large file (above the split size) fetched among small ones, delivered in order;
 *     a sink that aborts stops the fetch with an error;
 *   - the hand-laid bucket of the vectors plans and applies to db-txid3.db (latest), db-txid2.db
 *     (TXID 2) and, with header timestamps, the right states for time targets.
 * File backend only: mtime = header timestamp, no temp file left, junk (folders, other names,
 * other level folders) ignored, unreadable input.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "replica.h"
#include "testutil.h"

typedef unsigned long long ull;

#ifndef REPLICA_BACKEND_S3
/* ---- file backend hooks ------------------------------------------------------------------- */

static char g_dir[4096];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* A fresh, empty replica. */
static replica *backend_open(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/test_replica_file.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    char url[4200];
    snprintf(url, sizeof url, "file://%s", g_dir);
    replica *r = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(replica_open(url, NULL, &r, err) == LV_OK, "%s", err);
    return r;
}

/* Puts bytes under any name in a level, bypassing replica_write. */
static void backend_put_raw(replica *r, int level, const char *name, const void *data, size_t n)
{
    (void)r;
    char p[4400];
    snprintf(p, sizeof p, "%s/ltx", g_dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/ltx/%d", g_dir, level);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/ltx/%d/%s", g_dir, level, name);
    tu_write_file(p, data, n);
}

static void backend_close(replica *r)
{
    replica_close(r);
    nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
#endif

/* ---- helpers ------------------------------------------------------------------------------ */

static uint8_t *vec(const char *name, size_t *n)
{
    return tu_read_file(tu_ltx(name), n);
}

static void write_ok(replica *r, int level, const void *data, size_t n, int if_absent)
{
    char err[LV_ERRLEN] = "";
    lv_err rc = replica_write(r, level, data, n, if_absent, err);
    ck_assert_msg(rc == LV_OK, "write: %s (%s)", lv_strerror(rc), err);
}

static void write_vector(replica *r, int level, const char *name)
{
    size_t n;
    uint8_t *d = vec(name, &n);
    write_ok(r, level, d, n, 1);
    free(d);
}

/* The vectors' hand-laid bucket: the snapshot at level 9, the incrementals at level 0. */
static void lay_out_vectors(replica *r)
{
    write_vector(r, 9, "snapshot-txid1.ltx");
    write_vector(r, 0, "incr-txid2.ltx");
    write_vector(r, 0, "incr-txid3.ltx");
}

static replica_file *list_ok(replica *r, int level, size_t *n)
{
    replica_file *f = NULL;
    char err[LV_ERRLEN] = "";
    lv_err rc = replica_list(r, level, &f, n, err);
    ck_assert_msg(rc == LV_OK, "list %d: %s (%s)", level, lv_strerror(rc), err);
    return f;
}

/* The whole of a file as the replica returns it (caller frees). */
static uint8_t *read_whole(replica *r, const replica_file *f, size_t *n)
{
    lv_buf b;
    lv_buf_init(&b);
    char err[LV_ERRLEN] = "";
    lv_err rc = replica_read(r, f, 0, S3_TO_END, &b, err);
    ck_assert_msg(rc == LV_OK, "read: %s (%s)", lv_strerror(rc), err);
    uint8_t *out = malloc(b.len ? b.len : 1);
    ck_assert_ptr_nonnull(out);
    memcpy(out, b.data, b.len);
    *n = b.len;
    lv_buf_free(&b);
    return out;
}

/*
 * An LTX file of npages pages of page_size bytes (a snapshot when min == 1, else NoChecksum),
 * made by the library's encoder. random_pages: incompressible content. Caller frees.
 */
static uint8_t *make_ltx(uint32_t page_size, uint32_t npages, uint64_t min, uint64_t max,
                         int64_t ts, int random_pages, size_t *size)
{
    ltx_header h;
    memset(&h, 0, sizeof h);
    h.flags = min == 1 ? 0 : LTX_HEADER_FLAG_NO_CHECKSUM;
    h.page_size = page_size;
    h.commit = npages;
    h.min_txid = min;
    h.max_txid = max;
    h.timestamp = ts;
    tu_buf out = {0};
    ltx_encoder *e = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(ltx_encoder_open(&e, &h, tu_buf_write, &out, err) == LV_OK, "%s", err);
    uint8_t *page = malloc(page_size);
    ck_assert_ptr_nonnull(page);
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ min;
    for (uint32_t pg = 1; pg <= npages; pg++) {
        if (random_pages) {
            for (uint32_t i = 0; i + 8 <= page_size; i += 8) {
                uint64_t v = tu_rand(&seed);
                memcpy(page + i, &v, 8);
            }
        } else {
            memset(page, (int)(pg & 0xff), page_size);
            tu_put_be32(page, pg);
        }
        ck_assert_msg(ltx_encoder_page(e, pg, page, err) == LV_OK, "page %u: %s", pg, err);
    }
    ck_assert_msg(ltx_encoder_finish(e, NULL, err) == LV_OK, "%s", err);
    ltx_encoder_free(e);
    free(page);
    *size = out.size;
    return out.data;
}

/* The header, trailer and index of a whole file, parsed directly. */
static void parse_full(const uint8_t *d, size_t n, ltx_header *h, ltx_trailer *t,
                       ltx_page_index *idx)
{
    char err[LV_ERRLEN] = "";
    ck_assert_msg(ltx_header_decode(h, d, n, err) == LV_OK, "%s", err);
    uint64_t off, sz;
    ck_assert_msg(ltx_index_locate(d + n - LTX_TAIL_SIZE, n, &off, &sz, t, err) == LV_OK, "%s",
                  err);
    ck_assert_msg(ltx_index_parse(d + off, (size_t)sz, off, h, idx, err) == LV_OK, "%s", err);
}

static void assert_meta_matches(const replica_meta *m, const uint8_t *d, size_t n)
{
    ltx_header h;
    ltx_trailer t;
    ltx_page_index idx;
    parse_full(d, n, &h, &t, &idx);
    tu_assert_header_eq(&m->header, &h, "fetch_meta header");
    ck_assert_uint_eq(m->trailer.post_apply_checksum, t.post_apply_checksum);
    ck_assert_uint_eq(m->trailer.file_checksum, t.file_checksum);
    ck_assert_uint_eq(m->index.n, idx.n);
    ck_assert_uint_eq(m->index.offset, idx.offset);
    ck_assert_uint_eq(m->index.size, idx.size);
    for (size_t i = 0; i < idx.n; i++) {
        ck_assert_uint_eq(m->index.entries[i].pgno, idx.entries[i].pgno);
        ck_assert_uint_eq(m->index.entries[i].offset, idx.entries[i].offset);
        ck_assert_uint_eq(m->index.entries[i].size, idx.entries[i].size);
    }
    ck_assert_int_eq(m->file.created_ms, h.timestamp);
    /* the head: the file's first bytes, all of a small file, REPLICA_META_HEAD of a large one */
    size_t want_head = n <= REPLICA_INDEX_TAIL ? n : REPLICA_META_HEAD;
    ck_assert_uint_eq(m->head.len, want_head);
    ck_assert(memcmp(m->head.data, d, want_head) == 0);
    ltx_index_free(&idx);
}

/* A sink collecting each file's bytes; restart starts a file over. */
typedef struct collect {
    tu_buf *files;
    size_t n;
    size_t calls, restarts;
    size_t abort_after; /* nonzero: return 1 on this call */
    size_t max_which_seen_before_done;
} collect;

static int collect_sink(void *ctx, size_t which, const void *data, size_t len, int restart)
{
    collect *c = ctx;
    ck_assert_uint_lt(which, c->n);
    c->calls++;
    if (c->abort_after && c->calls == c->abort_after)
        return 1;
    if (restart) {
        c->restarts++;
        c->files[which].size = 0;
    }
    char err[LV_ERRLEN];
    ck_assert(tu_buf_write(&c->files[which], data, len, err) == LV_OK);
    return 0;
}

static void collect_free(collect *c)
{
    for (size_t i = 0; i < c->n; i++)
        tu_buf_free(&c->files[i]);
    free(c->files);
}

/* Applies a plan's files, read from the replica, to an empty file; compares with db. */
static void apply_plan_and_compare(replica *r, const replica_plan *p, const char *db)
{
    char *path = tu_tmp_path("restored.db");
    int fd = tu_open(path, O_RDWR | O_CREAT | O_TRUNC);
    uint64_t ck = 0;
    char err[LV_ERRLEN] = "";
    for (size_t i = 0; i < p->n; i++) {
        size_t n;
        uint8_t *d = read_whole(r, &p->files[i], &n);
        ltx_mem_reader rd = tu_reader(d, n);
        lv_err rc = ltx_apply(fd, ltx_mem_read, &rd, &ck, NULL, err);
        ck_assert_msg(rc == LV_OK, "apply file %zu: %s", i, err);
        free(d);
    }
    close(fd);
    size_t got_n, want_n;
    uint8_t *got = tu_read_file(path, &got_n);
    uint8_t *want = tu_read_file(tu_ltx(db), &want_n);
    ck_assert_msg(got_n == want_n && memcmp(got, want, got_n) == 0, "restore differs from %s", db);
    free(got);
    free(want);
    tu_tmp_remove(path);
}

/* ---- shared tests ------------------------------------------------------------------------- */

START_TEST(test_vectors_round_trip)
{
    replica *r = backend_open();
    lay_out_vectors(r);
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    ck_assert_uint_eq(n, 3);
    /* sorted by level, then TXIDs */
    ck_assert(f[0].level == 0 && f[0].min_txid == 2 && f[0].max_txid == 2);
    ck_assert(f[1].level == 0 && f[1].min_txid == 3 && f[1].max_txid == 3);
    ck_assert(f[2].level == 9 && f[2].min_txid == 1 && f[2].max_txid == 1);
    ck_assert_uint_eq(f[0].size, 454);
    ck_assert_uint_eq(f[1].size, 8076);
    ck_assert_uint_eq(f[2].size, 36885);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_ne(f[i].created_ms, 0);

    size_t n0, n9, n5;
    replica_file *l0 = list_ok(r, 0, &n0), *l9 = list_ok(r, 9, &n9), *l5 = list_ok(r, 5, &n5);
    ck_assert_uint_eq(n0, 2);
    ck_assert_uint_eq(n9, 1);
    ck_assert_uint_eq(n5, 0);
    ck_assert_uint_eq(l9[0].size, 36885);
    lv_free(l0);
    lv_free(l9);
    lv_free(l5);

    replica_file *bad = NULL;
    size_t nb = 7;
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(replica_list(r, 10, &bad, &nb, err), LV_EINVAL);
    ck_assert_int_eq(replica_list(r, -2, &bad, &nb, err), LV_EINVAL);

    /* reads: whole, head, a middle range, a range past the end (an error), appended to out */
    size_t sn;
    uint8_t *snap = vec("snapshot-txid1.ltx", &sn);
    size_t wn;
    uint8_t *whole = read_whole(r, &f[2], &wn);
    ck_assert(wn == sn && memcmp(whole, snap, sn) == 0);
    free(whole);
    lv_buf b;
    lv_buf_init(&b);
    ck_assert_int_eq(replica_read(r, &f[2], 0, 100, &b, err), LV_OK);
    ck_assert(b.len == 100 && memcmp(b.data, snap, 100) == 0);
    ck_assert_int_eq(replica_read(r, &f[2], 36707, 162, &b, err), LV_OK);
    ck_assert(b.len == 262 && memcmp(b.data + 100, snap + 36707, 162) == 0);
    lv_buf_reset(&b);
    /* a range that runs past the end is an error, not fewer bytes (review 7) */
    ck_assert_int_eq(replica_read(r, &f[2], sn - 10, 100, &b, err), LV_ECORRUPT);
    ck_assert_uint_eq(b.len, 0);
    char want_msg[64];
    snprintf(want_msg, sizeof want_msg, "range at %zu: got 10 of 100 bytes", sn - 10);
    ck_assert_msg(strstr(err, want_msg) != NULL, "message: %s", err);
    /* to the end is what there is */
    ck_assert_int_eq(replica_read(r, &f[2], sn - 10, S3_TO_END, &b, err), LV_OK);
    ck_assert(b.len == 10 && memcmp(b.data, snap + sn - 10, 10) == 0);
    lv_buf_reset(&b);
    ck_assert_int_eq(replica_read(r, &f[2], 5, 0, &b, err), LV_OK);
    ck_assert_uint_eq(b.len, 0);
    /* beyond the end: refused, as S3 refuses it (416) */
    ck_assert_int_eq(replica_read(r, &f[2], sn + 5, 10, &b, err), LV_EINVAL);
    /* a missing file */
    replica_file ghost = {.level = 0, .min_txid = 9, .max_txid = 9, .size = 100};
    err[0] = 0;
    ck_assert_int_eq(replica_read(r, &ghost, 0, 10, &b, err), LV_ENOTFOUND);
    ck_assert_msg(strstr(err, "0000000000000009-0000000000000009.ltx") != NULL, "%s", err);
    lv_buf_free(&b);

    /* fetch: every file whole, in one call */
    collect c = {.n = n};
    c.files = calloc(n, sizeof *c.files);
    ck_assert_int_eq(replica_fetch(r, f, n, collect_sink, &c, err), LV_OK);
    const char *names[] = {"incr-txid2.ltx", "incr-txid3.ltx", "snapshot-txid1.ltx"};
    for (size_t i = 0; i < n; i++) {
        size_t vn;
        uint8_t *v = vec(names[i], &vn);
        ck_assert_msg(c.files[i].size == vn && memcmp(c.files[i].data, v, vn) == 0,
                      "fetched %s differs", names[i]);
        free(v);
    }
    collect_free(&c);
    free(snap);
    lv_free(f);
    backend_close(r);
}
END_TEST

START_TEST(test_fetch_meta_of_vectors)
{
    replica *r = backend_open();
    lay_out_vectors(r);
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    replica_meta m[3];
    char err[LV_ERRLEN] = "";
    lv_err rc = replica_fetch_meta(r, f, n, m, err);
    ck_assert_msg(rc == LV_OK, "%s", err);
    const char *names[] = {"incr-txid2.ltx", "incr-txid3.ltx", "snapshot-txid1.ltx"};
    for (size_t i = 0; i < n; i++) {
        size_t vn;
        uint8_t *v = vec(names[i], &vn);
        assert_meta_matches(&m[i], v, vn);
        ck_assert_int_eq(m[i].file.level, f[i].level);
        ck_assert_uint_eq(m[i].file.size, vn);
        free(v);
    }
    ck_assert_int_eq(m[2].file.created_ms, 1795237074374ll);
    ck_assert_uint_eq(m[2].index.n, 28);
    replica_meta_free(m, n);
    /* none at all */
    ck_assert_int_eq(replica_fetch_meta(r, f, 0, m, err), LV_OK);
    lv_free(f);
    backend_close(r);
}
END_TEST

START_TEST(test_fetch_meta_large_index)
{
    replica *r = backend_open();
    size_t big_n;
    /* 9000 small pages: an index of about 50 KiB, larger than the 32 KiB tail */
    uint8_t *big = make_ltx(512, 9000, 1, 4, 1700000000123ll, 0, &big_n);
    write_ok(r, 9, big, big_n, 1);
    write_vector(r, 0, "incr-txid2.ltx");
    write_vector(r, 0, "incr-txid3.ltx");
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    ck_assert_uint_eq(n, 3);
    replica_meta m[3];
    char err[LV_ERRLEN] = "";
    ck_assert_msg(replica_fetch_meta(r, f, n, m, err) == LV_OK, "%s", err);
    ck_assert_msg(m[2].index.size > REPLICA_INDEX_TAIL, "index of %llu bytes: not large enough",
                  (ull)m[2].index.size);
    assert_meta_matches(&m[2], big, big_n);
    ck_assert_uint_eq(m[2].index.n, 9000);
    size_t vn;
    uint8_t *v = vec("incr-txid3.ltx", &vn);
    assert_meta_matches(&m[1], v, vn);
    free(v);
    replica_meta_free(m, n);
    free(big);
    lv_free(f);
    backend_close(r);
}
END_TEST

START_TEST(test_fetch_meta_errors_name_the_key)
{
    replica *r = backend_open();
    size_t sn;
    uint8_t *snap = vec("snapshot-txid1.ltx", &sn);
    /* the snapshot's bytes under a name that says TXID 5 */
    backend_put_raw(r, 0, "0000000000000005-0000000000000005.ltx", snap, sn);
    size_t n;
    replica_file *f = list_ok(r, 0, &n);
    ck_assert_uint_eq(n, 1);
    replica_meta m[1];
    memset(m, 0x5a, sizeof m);
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(replica_fetch_meta(r, f, n, m, err), LV_ECORRUPT);
    ck_assert_msg(strstr(err, "0000000000000005-0000000000000005.ltx") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "0000000000000001-0000000000000001") != NULL, "%s", err);
    ck_assert_ptr_null(m[0].index.entries); /* freed and zeroed */
    /* listed larger than it is (a listing that raced a rewrite): the range comes back short,
     * and the message says by how much */
    f[0].size += 1000;
    err[0] = 0;
    ck_assert_int_eq(replica_fetch_meta(r, f, n, m, err), LV_ECORRUPT);
    char want_msg[96];
    snprintf(want_msg, sizeof want_msg, "(listed as %zu bytes, but it has %zu)", sn + 1000, sn);
    ck_assert_msg(strstr(err, want_msg) != NULL && strstr(err, ": got ") != NULL, "%s", err);
    lv_free(f);

    /* a damaged index length (the u64 before the trailer): an error, not a crash */
    uint8_t *bad = malloc(sn);
    memcpy(bad, snap, sn);
    tu_put_be64(bad + sn - LTX_TAIL_SIZE, 0xffffffffull);
    backend_put_raw(r, 1, "0000000000000001-0000000000000001.ltx", bad, sn);
    /* and an index length that points before the header */
    tu_put_be64(bad + sn - LTX_TAIL_SIZE, sn);
    backend_put_raw(r, 2, "0000000000000001-0000000000000001.ltx", bad, sn);
    /* and a file too short for an LTX file */
    backend_put_raw(r, 3, "0000000000000001-0000000000000001.ltx", snap, 50);
    for (int level = 1; level <= 3; level++) {
        f = list_ok(r, level, &n);
        ck_assert_uint_eq(n, 1);
        err[0] = 0;
        lv_err rc = replica_fetch_meta(r, f, n, m, err);
        ck_assert_msg(rc == LV_ECORRUPT, "level %d: %s (%s)", level, lv_strerror(rc), err);
        ck_assert_msg(strstr(err, "0000000000000001-0000000000000001.ltx") != NULL, "%s", err);
        lv_free(f);
    }
    free(bad);
    free(snap);
    backend_close(r);
}
END_TEST

START_TEST(test_conditional_write)
{
    replica *r = backend_open();
    size_t an, bn;
    uint8_t *a = vec("incr-txid2.ltx", &an);
    uint8_t *b = vec("incr-txid2-nochecksum.ltx", &bn); /* same TXIDs, other bytes */
    ck_assert(an == bn && memcmp(a, b, an) != 0);
    write_ok(r, 0, a, an, 1);
    char err[LV_ERRLEN] = "";
    lv_err rc = replica_write(r, 0, b, bn, 1, err);
    ck_assert_msg(rc == LV_ECONFLICT, "second conditional write: %s (%s)", lv_strerror(rc), err);
    ck_assert_msg(strstr(err, "0000000000000002-0000000000000002.ltx") != NULL, "%s", err);
    size_t n;
    replica_file *f = list_ok(r, 0, &n);
    ck_assert_uint_eq(n, 1);
    size_t gn;
    uint8_t *got = read_whole(r, &f[0], &gn);
    ck_assert_msg(gn == an && memcmp(got, a, an) == 0, "the loser's bytes landed");
    free(got);
    /* unconditional: replaces */
    write_ok(r, 0, b, bn, 0);
    got = read_whole(r, &f[0], &gn);
    ck_assert_msg(gn == bn && memcmp(got, b, bn) == 0, "the overwrite did not land");
    free(got);
    lv_free(f);
    /* nothing else appeared (no temp names that look like files) */
    f = list_ok(r, -1, &n);
    ck_assert_uint_eq(n, 1);
    lv_free(f);

    /* bad input */
    ck_assert_int_eq(replica_write(r, 10, a, an, 1, err), LV_EINVAL);
    ck_assert_int_eq(replica_write(r, -1, a, an, 1, err), LV_EINVAL);
    ck_assert_int_eq(replica_write(r, 0, a, 50, 1, err), LV_EINVAL);
    uint8_t junk[200];
    memset(junk, 'x', sizeof junk);
    ck_assert_int_eq(replica_write(r, 0, junk, sizeof junk, 1, err), LV_ECORRUPT);
    free(a);
    free(b);
    backend_close(r);
}
END_TEST

typedef struct race {
    replica *r;
    const uint8_t *data;
    size_t n;
    lv_err rc;
    pthread_barrier_t *bar;
} race;

static void *race_writer(void *arg)
{
    race *w = arg;
    char err[LV_ERRLEN];
    pthread_barrier_wait(w->bar);
    w->rc = replica_write(w->r, 1, w->data, w->n, 1, err);
    return NULL;
}

START_TEST(test_conditional_write_race_has_one_winner)
{
    replica *r = backend_open();
    enum { NT = 8 };
    uint8_t *files[NT];
    size_t sizes[NT];
    race w[NT];
    pthread_t th[NT];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NT);
    for (int i = 0; i < NT; i++) {
        /* the same name (TXIDs 3-3), different content */
        files[i] = make_ltx(512, 4 + (uint32_t)i, 3, 3, 1000 + i, 0, &sizes[i]);
        w[i] = (race){r, files[i], sizes[i], LV_EIO, &bar};
        ck_assert_int_eq(pthread_create(&th[i], NULL, race_writer, &w[i]), 0);
    }
    int wins = 0, winner = -1;
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        if (w[i].rc == LV_OK) {
            wins++;
            winner = i;
        } else {
            ck_assert_msg(w[i].rc == LV_ECONFLICT, "writer %d: %s", i, lv_strerror(w[i].rc));
        }
    }
    pthread_barrier_destroy(&bar);
    ck_assert_int_eq(wins, 1);
    size_t n;
    replica_file *f = list_ok(r, 1, &n);
    ck_assert_uint_eq(n, 1);
    size_t gn;
    uint8_t *got = read_whole(r, &f[0], &gn);
    ck_assert_msg(gn == sizes[winner] && memcmp(got, files[winner], gn) == 0,
                  "stored bytes are not the winner's");
    free(got);
    lv_free(f);
    for (int i = 0; i < NT; i++)
        free(files[i]);
    backend_close(r);
}
END_TEST

START_TEST(test_delete)
{
    replica *r = backend_open();
    lay_out_vectors(r);
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    ck_assert_uint_eq(n, 3);
    replica_file del[3] = {f[0], f[2], {.level = 4, .min_txid = 7, .max_txid = 9}};
    char err[LV_ERRLEN] = "";
    ck_assert_msg(replica_delete(r, del, 3, err) == LV_OK, "%s", err);
    lv_free(f);
    f = list_ok(r, -1, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert(f[0].level == 0 && f[0].min_txid == 3);
    /* again: all missing now, still fine */
    ck_assert_msg(replica_delete(r, del, 3, err) == LV_OK, "%s", err);
    ck_assert_int_eq(replica_delete(r, NULL, 0, err), LV_OK);
    replica_file badlevel = {.level = 12, .min_txid = 1, .max_txid = 1};
    ck_assert_int_eq(replica_delete(r, &badlevel, 1, err), LV_EINVAL);
    lv_free(f);
    backend_close(r);
}
END_TEST

START_TEST(test_junk_names_are_ignored)
{
    replica *r = backend_open();
    lay_out_vectors(r);
    const char *junk[] = {
        "junk.txt",
        "0000000000000001-0000000000000001.ltx.tmp",
        "0000000000000004-0000000000000004.LTX",
        "000000000000000A-000000000000000A.ltx",
        "0000000000000005-0000000000000004.ltx",
        "0000000000000000-0000000000000004.ltx",
        ".0000000000000004-0000000000000004.ltx",
        "0000000000000004-0000000000000004.ltx~",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        backend_put_raw(r, (int)(i % 2) * 9, junk[i], "x", 1);
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    ck_assert_uint_eq(n, 3);
    lv_free(f);
    backend_close(r);
}
END_TEST

START_TEST(test_fetch_large_file_in_order)
{
    replica *r = backend_open();
    size_t big_n;
    /* incompressible pages: a file above the split size, fetched as several ranges */
    uint8_t *big = make_ltx(4096, 5000, 1, 2, 1700000000000ll, 1, &big_n);
    ck_assert_uint_gt(big_n, 16u << 20);
    write_ok(r, 9, big, big_n, 1);
    lay_out_vectors(r);
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(f[3].size, big_n);
    collect c = {.n = n};
    c.files = calloc(n, sizeof *c.files);
    char err[LV_ERRLEN] = "";
    ck_assert_msg(replica_fetch(r, f, n, collect_sink, &c, err) == LV_OK, "%s", err);
    ck_assert_msg(c.files[3].size == big_n && memcmp(c.files[3].data, big, big_n) == 0,
                  "large file fetched wrong (%zu bytes of %zu)", c.files[3].size, big_n);
    size_t sn;
    uint8_t *snap = vec("snapshot-txid1.ltx", &sn);
    ck_assert(c.files[2].size == sn && memcmp(c.files[2].data, snap, sn) == 0);
    free(snap);
    collect_free(&c);

    /* a sink that says stop: an error, and no more calls */
    collect a = {.n = n, .abort_after = 2};
    a.files = calloc(n, sizeof *a.files);
    err[0] = 0;
    lv_err rc = replica_fetch(r, f, n, collect_sink, &a, err);
    ck_assert_msg(rc != LV_OK, "an aborted fetch succeeded");
    ck_assert_msg(strstr(err, "abort") != NULL, "%s", err);
    ck_assert_uint_eq(a.calls, 2);
    collect_free(&a);
    free(big);
    lv_free(f);
    backend_close(r);
}
END_TEST

/* Lists, fills in header timestamps (fetch_meta) and plans for target. */
static lv_err plan_with_meta(replica *r, const replica_target *t, replica_plan *p, char *err)
{
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    replica_meta *m = calloc(n, sizeof *m);
    ck_assert_msg(replica_fetch_meta(r, f, n, m, err) == LV_OK, "%s", err);
    for (size_t i = 0; i < n; i++)
        f[i] = m[i].file;
    replica_meta_free(m, n);
    free(m);
    lv_err rc = replica_plan_restore(f, n, t, p, err);
    lv_free(f);
    return rc;
}

START_TEST(test_vector_bucket_plans_and_restores)
{
    replica *r = backend_open();
    lay_out_vectors(r);
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    replica_plan p;
    char err[LV_ERRLEN] = "";

    /* latest: the snapshot, then TXIDs 2 and 3 -> db-txid3.db */
    ck_assert_msg(replica_plan_restore(f, n, NULL, &p, err) == LV_OK, "%s", err);
    ck_assert_uint_eq(p.n, 3);
    ck_assert(p.files[0].level == 9 && p.files[0].max_txid == 1);
    ck_assert(p.files[1].level == 0 && p.files[1].min_txid == 2);
    ck_assert(p.files[2].level == 0 && p.files[2].min_txid == 3);
    ck_assert_uint_eq(p.max_txid, 3);
    apply_plan_and_compare(r, &p, "db-txid3.db");
    lv_free(p.files);

    /* --txid 2 -> db-txid2.db */
    replica_target t2 = {.txid = 2};
    ck_assert_msg(replica_plan_restore(f, n, &t2, &p, err) == LV_OK, "%s", err);
    ck_assert_uint_eq(p.n, 2);
    ck_assert_uint_eq(p.max_txid, 2);
    apply_plan_and_compare(r, &p, "db-txid2.db");
    lv_free(p.files);
    lv_free(f);

    /* time targets over header timestamps. The vectors' snapshot is newer
     * (2026-11-21T04:57:54.374Z) than the incrementals (2025-01-01T00:00:00Z, 00:01:00Z): at the
     * snapshot's time everything is in; a millisecond before it nothing chains from TXID 1 */
    replica_target ts = {.time_ms = 1795237074374ll};
    ck_assert_msg(plan_with_meta(r, &ts, &p, err) == LV_OK, "%s", err);
    ck_assert_uint_eq(p.n, 3);
    apply_plan_and_compare(r, &p, "db-txid3.db");
    lv_free(p.files);
    ts.time_ms = 1795237074373ll;
    ck_assert_int_eq(plan_with_meta(r, &ts, &p, err), LV_ENOTFOUND);

    /* with compact-txid1-2 at level 1 (stamped 2025-01-01T00:00:00Z): 30 s later is TXID 2 */
    write_vector(r, 1, "compact-txid1-2.ltx");
    ts.time_ms = 1735689630000ll;
    ck_assert_msg(plan_with_meta(r, &ts, &p, err) == LV_OK, "%s", err);
    ck_assert_uint_eq(p.n, 1);
    ck_assert(p.files[0].level == 1 && p.files[0].max_txid == 2);
    apply_plan_and_compare(r, &p, "db-txid2.db");
    lv_free(p.files);
    /* and latest still gives TXID 3 (the level-1 file then TXID 3) */
    ck_assert_msg(plan_with_meta(r, NULL, &p, err) == LV_OK, "%s", err);
    ck_assert_uint_eq(p.max_txid, 3);
    apply_plan_and_compare(r, &p, "db-txid3.db");
    lv_free(p.files);
    backend_close(r);
}
END_TEST

START_TEST(test_empty_replica)
{
    replica *r = backend_open();
    size_t n = 5;
    replica_file *f = list_ok(r, -1, &n);
    ck_assert_uint_eq(n, 0);
    lv_free(f);
    replica_plan p;
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(replica_plan_restore(NULL, 0, NULL, &p, err), LV_ENOTFOUND);
    ck_assert_int_eq(replica_fetch(r, NULL, 0, collect_sink, NULL, err), LV_OK);
    backend_close(r);
}
END_TEST

/* replica_list_after: only the files of the level whose min TXID is above the one given. */
START_TEST(test_list_after)
{
    replica *r = backend_open();
    const char *l0[] = {
        "0000000000000001-0000000000000001.ltx", "0000000000000002-0000000000000002.ltx",
        "0000000000000003-0000000000000003.ltx", "0000000000000004-0000000000000004.ltx",
        "0000000000000005-0000000000000005.ltx", "junk.ltx"};
    const char *l1[] = {"0000000000000001-0000000000000003.ltx",
                        "0000000000000004-0000000000000005.ltx",
                        "0000000000000006-0000000000000009.ltx"};
    for (size_t i = 0; i < 6; i++)
        backend_put_raw(r, 0, l0[i], "x", 1);
    for (size_t i = 0; i < 3; i++)
        backend_put_raw(r, 1, l1[i], "x", 1);
    static const struct {
        int level;
        uint64_t after;
        size_t n;
        uint64_t first_min, last_max;
    } cases[] = {{0, 2, 3, 3, 5}, {0, 0, 5, 1, 5}, {0, 5, 0, 0, 0}, {0, 99, 0, 0, 0},
                 {1, 3, 2, 4, 9}, {1, 0, 3, 1, 9}, {1, 4, 1, 6, 9}, {2, 0, 0, 0, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        replica_file *f = NULL;
        size_t n = 99;
        char err[LV_ERRLEN] = "";
        ck_assert_msg(replica_list_after(r, cases[c].level, cases[c].after, &f, &n, err) == LV_OK,
                      "%s", err);
        ck_assert_msg(n == cases[c].n, "level %d after %llu: %zu files", cases[c].level,
                      (unsigned long long)cases[c].after, n);
        if (n) {
            ck_assert_uint_eq(f[0].min_txid, cases[c].first_min);
            ck_assert_uint_eq(f[n - 1].max_txid, cases[c].last_max);
            for (size_t i = 0; i < n; i++) {
                ck_assert_int_eq(f[i].level, cases[c].level);
                ck_assert_uint_gt(f[i].min_txid, cases[c].after);
                ck_assert(i == 0 || f[i].min_txid > f[i - 1].min_txid);
            }
        }
        lv_free(f);
    }
    replica_file *f = NULL;
    size_t n;
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(replica_list_after(r, 10, 0, &f, &n, err), LV_EINVAL);
    backend_close(r);
}
END_TEST

static void add_shared_tests(TCase *tc)
{
    tcase_add_test(tc, test_list_after);
    tcase_add_test(tc, test_vectors_round_trip);
    tcase_add_test(tc, test_fetch_meta_of_vectors);
    tcase_add_test(tc, test_fetch_meta_large_index);
    tcase_add_test(tc, test_fetch_meta_errors_name_the_key);
    tcase_add_test(tc, test_conditional_write);
    tcase_add_test(tc, test_conditional_write_race_has_one_winner);
    tcase_add_test(tc, test_delete);
    tcase_add_test(tc, test_junk_names_are_ignored);
    tcase_add_test(tc, test_fetch_large_file_in_order);
    tcase_add_test(tc, test_vector_bucket_plans_and_restores);
    tcase_add_test(tc, test_empty_replica);
}

#ifndef REPLICA_BACKEND_S3
/* ---- file backend only -------------------------------------------------------------------- */

START_TEST(test_file_mtime_is_header_timestamp_and_no_temp_left)
{
    replica *r = backend_open();
    lay_out_vectors(r);
    char p[4400];
    struct stat st;
    snprintf(p, sizeof p, "%s/ltx/9/0000000000000001-0000000000000001.ltx", g_dir);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq((long long)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000,
                     1795237074374ll);
    snprintf(p, sizeof p, "%s/ltx/0/0000000000000003-0000000000000003.ltx", g_dir);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq((long long)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000,
                     1735689660000ll);
    /* the listing reports it as created_ms */
    size_t n;
    replica_file *f = list_ok(r, 0, &n);
    ck_assert_int_eq(f[1].created_ms, 1735689660000ll);
    lv_free(f);
    /* only the files themselves in the level folders: the temp files are gone */
    for (int level = 0; level <= 9; level += 9) {
        snprintf(p, sizeof p, "%s/ltx/%d", g_dir, level);
        DIR *d = opendir(p);
        ck_assert_ptr_nonnull(d);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' && (!e->d_name[1] || !strcmp(e->d_name, "..")))
                continue;
            uint64_t a, b;
            ck_assert_msg(replica_parse_name(e->d_name, strlen(e->d_name), &a, &b),
                          "left behind: %s", e->d_name);
        }
        closedir(d);
    }
    backend_close(r);
}
END_TEST

START_TEST(test_file_junk_folders_are_ignored)
{
    replica *r = backend_open();
    lay_out_vectors(r);
    char p[4400];
    /* a folder named like an LTX file, other level folders, a file where a level folder goes */
    snprintf(p, sizeof p, "%s/ltx/0/0000000000000009-0000000000000009.ltx", g_dir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/ltx/10", g_dir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/ltx/10/0000000000000009-0000000000000009.ltx", g_dir);
    tu_write_file(p, "x", 1);
    snprintf(p, sizeof p, "%s/ltx/3", g_dir);
    tu_write_file(p, "not a folder", 12);
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    ck_assert_uint_eq(n, 3);
    lv_free(f);
    backend_close(r);
}
END_TEST

START_TEST(test_file_unwritable_dir)
{
    /* a replica under a regular file: writes fail with LV_EIO naming the path */
    char *path = tu_tmp_path("plain");
    tu_write_file(path, "x", 1);
    char url[4200];
    snprintf(url, sizeof url, "%s/sub", path);
    replica *r = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(replica_open(url, NULL, &r, err), LV_OK);
    size_t an;
    uint8_t *a = vec("incr-txid2.ltx", &an);
    ck_assert_int_eq(replica_write(r, 0, a, an, 1, err), LV_EIO);
    ck_assert_msg(strstr(err, path) != NULL, "%s", err);
    /* listing one under a file is no files (as a missing level) */
    size_t n = 3;
    replica_file *f = list_ok(r, -1, &n);
    ck_assert_uint_eq(n, 0);
    lv_free(f);
    free(a);
    replica_close(r);
    tu_tmp_remove(path);
}
END_TEST

START_TEST(test_file_allocation_failures_do_not_leak)
{
    replica *r = backend_open();
    lay_out_vectors(r);
    size_t n;
    replica_file *f = list_ok(r, -1, &n);
    for (long nth = 0; nth < 60; nth++) {
        char err[LV_ERRLEN] = "";
        replica_meta m[3];
        replica_file *g = NULL;
        size_t gn = 0;
        replica_plan p;
        lv_alloc_fail_after(nth);
        lv_err a = replica_fetch_meta(r, f, n, m, err);
        lv_alloc_fail_after(-1);
        if (a == LV_OK)
            replica_meta_free(m, n);
        lv_alloc_fail_after(nth);
        lv_err b = replica_list(r, -1, &g, &gn, err);
        lv_alloc_fail_after(-1);
        if (b == LV_OK)
            lv_free(g);
        lv_alloc_fail_after(nth);
        lv_err c = replica_plan_restore(f, n, NULL, &p, err);
        lv_alloc_fail_after(-1);
        if (c == LV_OK)
            lv_free(p.files);
    }
    lv_free(f);
    backend_close(r);
}
END_TEST

static Suite *file_suite(void)
{
    Suite *s = suite_create("replica_file");
    TCase *tc = tcase_create("shared");
    tcase_set_timeout(tc, 120);
    add_shared_tests(tc);
    suite_add_tcase(s, tc);
    tc = tcase_create("file");
    tcase_add_test(tc, test_file_mtime_is_header_timestamp_and_no_temp_left);
    tcase_add_test(tc, test_file_junk_folders_are_ignored);
    tcase_add_test(tc, test_file_unwritable_dir);
    tcase_add_test(tc, test_file_allocation_failures_do_not_leak);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(file_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
#endif
