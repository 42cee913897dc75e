/*
 * test_vfs_l0file: vfs/l0file.c against a model database. Random sync windows (growth, shrink,
 * rewrites) are encoded, verified with ltx_verify, applied in order with ltx_apply onto a real
 * file, and the file is compared byte for byte with the model after every step; the checksums
 * must chain. The same through vfs/wbuf: commits into a buffer, dirty sets out of it, the checksum
 * back in with mark_synced. The lock page is checked with the pgno logic alone (a real database
 * past 1 GiB is too big for a unit test). Single-threaded; the seed is fixed.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "l0file.h"
#include "testutil.h"
#include "wbuf.h"

#define PS       512
#define MAXPAGES 300

typedef struct model {
    uint8_t pages[MAXPAGES + 1][PS]; /* [pgno] */
    uint32_t n;
} model;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static void random_page(uint8_t *p, uint32_t pgno)
{
    for (int i = 0; i < PS; i++)
        p[i] = (uint8_t)rnd(256);
    if (pgno == 1) { /* page 1 looks like SQLite's, so ltx_apply takes the file for a database */
        memcpy(p, "SQLite format 3", 16);
        p[16] = PS >> 8;
        p[17] = PS & 0xff;
    }
}

static lv_err model_checksum(void *ctx, uint32_t pgno, uint64_t *sum, char *err)
{
    const model *m = ctx;
    if (pgno == 0 || pgno > m->n)
        return lv_fail(err, LV_EINVAL, "model asked for page %u of %u", pgno, m->n);
    *sum = ltx_page_checksum(pgno, m->pages[pgno], PS);
    return LV_OK;
}

static uint64_t model_db_checksum(const model *m)
{
    uint64_t s = 0;
    for (uint32_t p = 1; p <= m->n; p++)
        s = ltx_db_checksum_update(s, 0, ltx_page_checksum(p, m->pages[p], PS));
    return m->n ? s : 0;
}

static void assert_file_is_model(int fd, const model *m, int step)
{
    off_t size = lseek(fd, 0, SEEK_END);
    ck_assert_msg(size == (off_t)m->n * PS, "step %d: file has %lld bytes, model %u pages", step,
                  (long long)size, m->n);
    uint8_t buf[PS];
    for (uint32_t p = 1; p <= m->n; p++) {
        ck_assert_int_eq(pread(fd, buf, PS, (off_t)(p - 1) * PS), PS);
        ck_assert_msg(memcmp(buf, m->pages[p], PS) == 0, "step %d: page %u differs", step, p);
    }
}

/* Verifies r, checks its header against the chain, applies it to fd and compares with after. */
static void check_and_apply(int fd, const l0file_result *r, uint64_t txid, uint64_t pre,
                            uint64_t *db_sum, const model *after, int step)
{
    char err[LV_ERRLEN] = "";
    ltx_mem_reader rd = tu_reader(r->data, r->size);
    ltx_header h;
    ltx_trailer t;
    ck_assert_msg(ltx_verify(ltx_mem_read, &rd, &h, &t, NULL, err) == LV_OK, "step %d: %s", step,
                  err);
    ck_assert_uint_eq(h.min_txid, txid);
    ck_assert_uint_eq(h.max_txid, txid);
    ck_assert_uint_eq(h.commit, after->n);
    ck_assert_uint_eq(h.pre_apply_checksum, pre); /* chained: the previous post-apply */
    ck_assert_uint_eq(t.post_apply_checksum, r->checksum);
    ck_assert_uint_eq(r->trailer.post_apply_checksum, r->checksum);
    ck_assert_uint_eq(r->checksum, model_db_checksum(after));
    rd = tu_reader(r->data, r->size);
    ck_assert_msg(ltx_apply(fd, ltx_mem_read, &rd, db_sum, NULL, err) == LV_OK, "step %d: %s", step,
                  err);
    ck_assert_uint_eq(*db_sum, r->checksum);
    assert_file_is_model(fd, after, step);
    ck_assert_uint_eq(tu_db_checksum_fd(fd), r->checksum);
}

/* Random windows straight into l0file_encode. */
START_TEST(test_model_chain)
{
    static model base, next;
    char *path = tu_tmp_path("db");
    int fd = tu_open(path, O_RDWR | O_CREAT | O_TRUNC);
    char err[LV_ERRLEN] = "";
    uint32_t *pgnos = malloc(MAXPAGES * sizeof *pgnos);
    uint8_t *pages = malloc((size_t)MAXPAGES * PS);
    uint64_t db_sum = 0, pre = 0;
    memset(&base, 0, sizeof base);
    for (int step = 0; step < 60; step++) {
        next = base;
        if (step == 0) {
            next.n = 40;
        } else {
            uint32_t kind = rnd(4);
            if (kind == 0 && base.n > 3)
                next.n = base.n - 1 - rnd(base.n / 2); /* shrink */
            else if (kind == 1 && base.n < MAXPAGES)
                next.n = base.n + 1 + rnd(MAXPAGES - base.n); /* grow */
        }
        if (next.n > MAXPAGES)
            next.n = MAXPAGES;
        /* Dirty pages: for step 0 all but a few (missing ones are zeros in a snapshot). */
        size_t n = 0;
        for (uint32_t p = 1; p <= next.n; p++) {
            int dirty = step == 0 ? p % 7 != 3 : rnd(5) == 0;
            if (p > base.n && step > 0 && p <= next.n && rnd(3) != 0)
                dirty = 1; /* growth mostly writes the new pages; some stay zero */
            if (p == 1 && step == 0)
                dirty = 1;
            if (dirty) {
                random_page(next.pages[p], p);
                pgnos[n] = p;
                memcpy(pages + n * PS, next.pages[p], PS);
                n++;
            } else if (p > base.n) {
                memset(next.pages[p], 0, PS);
            }
        }
        for (uint32_t p = next.n + 1; p <= base.n; p++)
            memset(next.pages[p], 0, PS);
        l0file_input in = {
            .page_size = PS,
            .base_txid = (uint64_t)step,
            .base_checksum = pre,
            .base_commit = base.n,
            .commit = next.n,
            .n = n,
            .pgnos = pgnos,
            .pages = pages,
            .timestamp_ms = 1700000000000 + step,
            .base_page_checksum = model_checksum,
            .ctx = &base,
        };
        l0file_result r;
        ck_assert_msg(l0file_encode(&in, &r, err) == LV_OK, "step %d: %s", step, err);
        ck_assert_int_eq(r.header.timestamp, 1700000000000 + step);
        if (step == 0) {
            ck_assert(ltx_header_is_snapshot(&r.header));
            ck_assert_uint_eq(r.header.pre_apply_checksum, 0);
        }
        check_and_apply(fd, &r, (uint64_t)step + 1, pre, &db_sum, &next, step);
        pre = r.checksum;
        l0file_result_free(&r);
        base = next;
    }
    free(pgnos);
    free(pages);
    close(fd);
    tu_tmp_remove(path);
}
END_TEST

START_TEST(test_bad_input)
{
    static model m;
    char err[LV_ERRLEN] = "";
    uint8_t pages[2 * PS] = {0};
    memset(&m, 0, sizeof m);
    m.n = 10;
    l0file_input in = {.page_size = PS,
                       .base_txid = 3,
                       .base_checksum = LTX_CHECKSUM_FLAG | 5,
                       .base_commit = 10,
                       .commit = 10,
                       .n = 2,
                       .pgnos = (uint32_t[]){4, 4},
                       .pages = pages,
                       .base_page_checksum = model_checksum,
                       .ctx = &m};
    l0file_result r;
    ck_assert_int_eq(l0file_encode(&in, &r, err), LV_EINVAL); /* not ascending */
    ck_assert_ptr_null(r.data);
    in.pgnos = (uint32_t[]){4, 11};
    ck_assert_int_eq(l0file_encode(&in, &r, err), LV_EINVAL); /* beyond commit */
    in.pgnos = (uint32_t[]){0, 1};
    ck_assert_int_eq(l0file_encode(&in, &r, err), LV_EINVAL);
    in.pgnos = (uint32_t[]){1, 2};
    in.commit = 0;
    ck_assert_int_eq(l0file_encode(&in, &r, err), LV_EINVAL);
    in.commit = 10;
    in.base_txid = 0; /* a new database cannot have base pages */
    ck_assert_int_eq(l0file_encode(&in, &r, err), LV_EINVAL);
    in.base_txid = 3;
    in.page_size = 1000;
    ck_assert_int_eq(l0file_encode(&in, &r, err), LV_EINVAL);
    in.page_size = PS;
    ck_assert_int_eq(l0file_encode(&in, &r, err), LV_OK);
    l0file_result_free(&r);
    /* A callback's error comes through. */
    m.n = 1;
    ck_assert_int_eq(l0file_encode(&in, &r, err), LV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "model asked for page 2"));
    /* Out of memory at every allocation: an error or a file, nothing leaked. */
    m.n = 10;
    int done = 0;
    for (long fail = 0; fail < 100 && !done; fail++) {
        lv_alloc_fail_after(fail);
        lv_err rc = l0file_encode(&in, &r, err);
        lv_alloc_fail_after(-1);
        if (rc == LV_OK) {
            ltx_mem_reader rd = tu_reader(r.data, r.size);
            ck_assert_int_eq(ltx_verify(ltx_mem_read, &rd, NULL, NULL, NULL, err), LV_OK);
            l0file_result_free(&r);
            done = 1;
        } else {
            ck_assert_int_eq(rc, LV_ENOMEM);
            ck_assert_ptr_null(r.data);
        }
    }
    ck_assert(done);
}
END_TEST

typedef struct asked {
    uint32_t pgnos[64];
    int n;
} asked;

/* The base of the lock-page tests: every page zero; records which pages were asked for. */
static lv_err zero_checksum(void *ctx, uint32_t pgno, uint64_t *sum, char *err)
{
    asked *a = ctx;
    (void)err;
    ck_assert_int_lt(a->n, 64);
    a->pgnos[a->n++] = pgno;
    static const uint8_t zero[PS];
    *sum = ltx_page_checksum(pgno, zero, PS);
    return LV_OK;
}

static uint64_t zero_db(uint32_t pages)
{
    return ltx_zero_pages_checksum(1, pages, PS) | LTX_CHECKSUM_FLAG;
}

/* Page size 512: the lock page is 2097153. Never written, never asked for, never counted. */
START_TEST(test_lock_page)
{
    const uint32_t lock = ltx_lock_pgno(PS);
    ck_assert_uint_eq(lock, 2097153);
    char err[LV_ERRLEN] = "";
    asked a = {{0}, 0};
    uint8_t pages[2 * PS];
    for (int i = 0; i < 2 * PS; i++)
        pages[i] = (uint8_t)(i * 7 + 1);
    l0file_input in = {.page_size = PS,
                       .base_txid = 5,
                       .base_checksum = zero_db(lock + 7),
                       .base_commit = lock + 7,
                       .commit = lock + 7,
                       .n = 2,
                       .pgnos = (uint32_t[]){lock - 1, lock},
                       .pages = pages,
                       .base_page_checksum = zero_checksum,
                       .ctx = &a};
    l0file_result r;
    ck_assert_int_eq(l0file_encode(&in, &r, err), LV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "lock page"));

    /* Growth across the lock page: the new pages are zeros but for the two written. */
    in.base_commit = lock - 3;
    in.base_checksum = zero_db(lock - 3);
    in.commit = lock + 7;
    in.pgnos = (uint32_t[]){lock - 1, lock + 1};
    ck_assert_int_eq(l0file_encode(&in, &r, err), LV_OK);
    ck_assert_int_eq(a.n, 0); /* nothing below the old end was rewritten */
    uint64_t want = zero_db(lock + 7);
    want = ltx_db_checksum_update(want, ltx_zero_pages_checksum(lock - 1, lock - 1, PS),
                                  ltx_page_checksum(lock - 1, pages, PS));
    want = ltx_db_checksum_update(want, ltx_zero_pages_checksum(lock + 1, lock + 1, PS),
                                  ltx_page_checksum(lock + 1, pages + PS, PS));
    ck_assert_uint_eq(r.checksum, want);
    ltx_mem_reader rd = tu_reader(r.data, r.size);
    uint32_t npages = 0;
    ck_assert_int_eq(ltx_verify(ltx_mem_read, &rd, NULL, NULL, &npages, err), LV_OK);
    ck_assert_uint_eq(npages, 2);
    l0file_result_free(&r);

    /* Shrink across the lock page: every removed page but the lock page is asked for. */
    in.base_commit = lock + 7;
    in.base_checksum = zero_db(lock + 7);
    in.commit = lock - 3;
    in.n = 0;
    ck_assert_int_eq(l0file_encode(&in, &r, err), LV_OK);
    ck_assert_int_eq(a.n, 9);
    for (int i = 0; i < a.n; i++) {
        ck_assert_uint_ne(a.pgnos[i], lock);
        ck_assert_uint_gt(a.pgnos[i], lock - 3);
        ck_assert_uint_le(a.pgnos[i], lock + 7);
    }
    ck_assert_uint_eq(r.checksum, zero_db(lock - 3));
    ck_assert_uint_eq(r.header.commit, lock - 3);
    l0file_result_free(&r);
}
END_TEST

/* The syncer's loop: wbuf windows -> l0file -> apply; the buffer's base follows the chain. */
START_TEST(test_through_wbuf)
{
    static model base, cur;
    char *dbpath = tu_tmp_path("db");
    char *bufpath = tu_tmp_path("wbuf");
    int fd = tu_open(dbpath, O_RDWR | O_CREAT | O_TRUNC);
    char err[LV_ERRLEN] = "";
    wbuf *w = NULL;
    ck_assert_msg(wbuf_create(&w, bufpath, PS, 0, 0, 0, 0, 0, err) == LV_OK, "%s", err);
    memset(&base, 0, sizeof base);
    cur = base;
    uint64_t db_sum = 0, txid = 0;
    int syncs = 0;
    for (int t = 0; t < 120; t++) {
        /* One transaction on the model and in the buffer. */
        model before = cur;
        uint32_t newn = cur.n == 0 ? 20 : cur.n;
        uint32_t kind = rnd(6);
        if (kind == 0 && cur.n > 4)
            newn = cur.n - 1 - rnd(cur.n / 3);
        else if (kind == 1)
            newn = cur.n + 1 + rnd(20);
        if (newn > MAXPAGES)
            newn = MAXPAGES;
        ck_assert_int_eq(wbuf_begin(w, err), LV_OK);
        for (uint32_t p = 1; p <= newn; p++) {
            int dirty = p > cur.n || rnd(8) == 0; /* SQLite writes every page it adds */
            if (!dirty)
                continue;
            random_page(cur.pages[p], p);
            ck_assert_msg(wbuf_page(w, p, cur.pages[p], err) == LV_OK, "%s", err);
        }
        if (rnd(10) == 0) { /* a rollback now and then */
            ck_assert_int_eq(wbuf_rollback(w, err), LV_OK);
            cur = before;
            continue;
        }
        for (uint32_t p = newn + 1; p <= cur.n; p++)
            memset(cur.pages[p], 0, PS);
        cur.n = newn;
        ck_assert_msg(wbuf_commit(w, newn, err) == LV_OK, "%s", err);
        /* Read-your-writes against the model. */
        uint32_t p = 1 + rnd(cur.n);
        uint8_t img[PS];
        int found;
        ck_assert_int_eq(wbuf_lookup(w, p, 0, img, &found, err), LV_OK);
        ck_assert(memcmp(found ? img : base.pages[p], cur.pages[p], PS) == 0);

        if (rnd(4) != 0 && t != 119)
            continue;
        /* A sync. */
        wbuf_dirty d;
        ck_assert_msg(wbuf_dirty_get(w, &d, err) == LV_OK, "%s", err);
        ck_assert_uint_eq(d.base_txid, txid);
        ck_assert_uint_eq(d.base_commit, base.n);
        l0file_input in = {.page_size = PS,
                           .base_txid = d.base_txid,
                           .base_checksum = d.base_checksum,
                           .base_commit = d.base_commit,
                           .commit = d.commit,
                           .n = d.n,
                           .pgnos = d.pgnos,
                           .pages = d.pages,
                           .timestamp_ms = 1800000000000 + t,
                           .base_page_checksum = model_checksum,
                           .ctx = &base};
        l0file_result r;
        ck_assert_msg(l0file_encode(&in, &r, err) == LV_OK, "t %d: %s", t, err);
        check_and_apply(fd, &r, txid + 1, d.base_checksum, &db_sum, &cur, t);
        ck_assert_msg(wbuf_mark_synced(w, &d, txid + 1, r.checksum, err) == LV_OK, "%s", err);
        txid++;
        syncs++;
        l0file_result_free(&r);
        wbuf_dirty_free(&d);
        base = cur;
        if (syncs % 3 == 0) { /* a restart between syncs */
            wbuf_close(w);
            wbuf_info info;
            ck_assert_int_eq(wbuf_open(&w, bufpath, 0, 0, &info, err), LV_OK);
            ck_assert_uint_eq(info.base_txid, txid);
            ck_assert_uint_eq(info.base_checksum, db_sum);
            ck_assert_uint_eq(info.base_commit, cur.n);
        }
    }
    ck_assert_int_gt(syncs, 10);
    wbuf_close(w);
    close(fd);
    unlink(bufpath);
    tu_tmp_remove(bufpath);
    tu_tmp_remove(dbpath);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vfs_l0file");
    TCase *tc = tcase_create("l0file");
    tcase_add_test(tc, test_model_chain);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_lock_page);
    tcase_add_test(tc, test_through_wbuf);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
