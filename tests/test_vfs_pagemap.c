/*
 * test_vfs_pagemap: vfs/pagemap.c. The map built from the shared LTX vectors must find, for every
 * page, a frame that decodes to exactly the bytes of the database at that TXID.
 */
#include <string.h>

#include "alloc.h"
#include "ltx.h"
#include "pagemap.h"
#include "testutil.h"

typedef struct loaded {
    uint8_t *data;
    size_t size;
    ltx_header h;
    ltx_page_index idx;
} loaded;

static void load(const char *name, loaded *f)
{
    char err[LV_ERRLEN] = "";
    f->data = tu_read_file(tu_ltx(name), &f->size);
    ck_assert_int_eq(ltx_header_decode(&f->h, f->data, f->size, err), LV_OK);
    uint64_t off, n;
    ck_assert_msg(
        ltx_index_locate(f->data + f->size - LTX_TAIL_SIZE, f->size, &off, &n, NULL, err) == LV_OK,
        "%s: %s", name, err);
    ck_assert_msg(ltx_index_parse(f->data + off, n, off, &f->h, &f->idx, err) == LV_OK, "%s: %s",
                  name, err);
}

static void unload(loaded *f)
{
    ltx_index_free(&f->idx);
    free(f->data);
}

/* Every page of db (a file of the shared vectors) read through m from files[]. */
static void check_against_db(const pagemap *m, loaded *files, const char *db)
{
    size_t db_size;
    uint8_t *want = tu_read_file(tu_testdata(db), &db_size);
    uint32_t ps = pagemap_page_size(m);
    ck_assert_int_eq(pagemap_commit(m), db_size / ps);
    uint8_t page[4096];
    ck_assert_int_le(ps, sizeof page);
    for (uint32_t pgno = 1; pgno <= pagemap_commit(m); pgno++) {
        const pagemap_entry *e = pagemap_lookup(m, pgno);
        if (pgno == ltx_lock_pgno(ps)) {
            ck_assert_ptr_null(e);
            continue;
        }
        ck_assert_msg(e != NULL, "%s: page %u has no frame", db, pgno);
        loaded *f = &files[e->file];
        char err[LV_ERRLEN] = "";
        ck_assert_int_le(e->offset + e->size, f->size);
        ck_assert_msg(ltx_frame_decode(f->data + e->offset, e->size, ps, pgno, page, NULL, err) ==
                          LV_OK,
                      "%s page %u: %s", db, pgno, err);
        ck_assert_msg(memcmp(page, want + (size_t)(pgno - 1) * ps, ps) == 0, "%s: page %u differs",
                      db, pgno);
        ck_assert_int_eq(pagemap_file_txid(m, e->file), f->h.max_txid);
    }
    free(want);
}

START_TEST(test_vectors_chain)
{
    loaded f[3];
    load("snapshot-txid1.ltx", &f[0]);
    load("incr-txid2.ltx", &f[1]);
    load("incr-txid3.ltx", &f[2]);
    char err[LV_ERRLEN] = "";
    pagemap *m = pagemap_new(f[0].h.page_size);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(pagemap_txid(m), 0);
    ck_assert_int_eq(pagemap_apply(m, 0, &f[0].h, &f[0].idx, err), LV_OK);
    check_against_db(m, f, "ltx/db-txid1.db");
    pagemap *v2 = pagemap_clone(m);
    ck_assert_int_eq(pagemap_apply(v2, 1, &f[1].h, &f[1].idx, err), LV_OK);
    pagemap *v3 = pagemap_clone(v2);
    ck_assert_int_eq(pagemap_apply(v3, 2, &f[2].h, &f[2].idx, err), LV_OK);
    /* each version still answers for its own TXID: clones are independent */
    check_against_db(m, f, "ltx/db-txid1.db");
    check_against_db(v2, f, "ltx/db-txid2.db");
    check_against_db(v3, f, "ltx/db-txid3.db");
    ck_assert_int_eq(pagemap_txid(v3), 3);
    ck_assert_int_eq(pagemap_timestamp(v3), f[2].h.timestamp);
    pagemap_unref(m);
    pagemap_unref(v2);
    pagemap_unref(v3);
    for (int i = 0; i < 3; i++)
        unload(&f[i]);
}
END_TEST

/* A compacted file that straddles the map's TXID (2-3 over a map at 2) is accepted. */
START_TEST(test_vectors_compacted)
{
    loaded f[3];
    load("snapshot-txid1.ltx", &f[0]);
    load("incr-txid2.ltx", &f[1]);
    load("compact-txid2-3.ltx", &f[2]);
    char err[LV_ERRLEN] = "";
    pagemap *m = pagemap_new(4096);
    ck_assert_int_eq(pagemap_apply(m, 0, &f[0].h, &f[0].idx, err), LV_OK);
    ck_assert_int_eq(pagemap_apply(m, 1, &f[1].h, &f[1].idx, err), LV_OK);
    ck_assert_int_eq(pagemap_apply(m, 2, &f[2].h, &f[2].idx, err), LV_OK);
    check_against_db(m, f, "ltx/db-txid3.db");
    pagemap_unref(m);
    for (int i = 0; i < 3; i++)
        unload(&f[i]);
}
END_TEST

START_TEST(test_refuses_gaps_and_old_files)
{
    loaded f[3];
    load("snapshot-txid1.ltx", &f[0]);
    load("incr-txid2.ltx", &f[1]);
    load("incr-txid3.ltx", &f[2]);
    char err[LV_ERRLEN] = "";
    pagemap *m = pagemap_new(4096);
    ck_assert_int_eq(pagemap_apply(m, 0, &f[0].h, &f[0].idx, err), LV_OK);
    ck_assert_int_eq(pagemap_apply(m, 2, &f[2].h, &f[2].idx, err), LV_EINVAL); /* gap: 2 */
    ck_assert_msg(strstr(err, "do not continue") != NULL, "%s", err);
    ck_assert_int_eq(pagemap_txid(m), 1);
    check_against_db(m, f, "ltx/db-txid1.db");                                 /* unchanged */
    ck_assert_int_eq(pagemap_apply(m, 0, &f[0].h, &f[0].idx, err), LV_EINVAL); /* not newer */
    ltx_header h = f[1].h;
    h.page_size = 1024;
    ck_assert_int_eq(pagemap_apply(m, 1, &h, &f[1].idx, err), LV_ECORRUPT);
    ck_assert_msg(strstr(err, "page size") != NULL, "%s", err);
    pagemap_unref(m);
    for (int i = 0; i < 3; i++)
        unload(&f[i]);
}
END_TEST

/* Shrinking drops the pages beyond the new end; growing again does not bring them back. */
START_TEST(test_shrink_and_grow)
{
    char err[LV_ERRLEN] = "";
    ltx_index_entry e1[4] = {{1, 100, 10}, {2, 100, 20}, {3, 100, 30}, {4, 100, 40}};
    ltx_page_index idx = {e1, 4, 0, 0};
    ltx_header h = {.page_size = 512, .commit = 4, .min_txid = 1, .max_txid = 1};
    pagemap *m = pagemap_new(512);
    ck_assert_int_eq(pagemap_apply(m, 0, &h, &idx, err), LV_OK);
    ck_assert_int_eq(pagemap_lookup(m, 4)->offset, 40);
    ltx_index_entry e2[1] = {{1, 100, 50}};
    ltx_page_index idx2 = {e2, 1, 0, 0};
    h = (ltx_header){.page_size = 512, .commit = 2, .min_txid = 2, .max_txid = 2};
    ck_assert_int_eq(pagemap_apply(m, 1, &h, &idx2, err), LV_OK);
    ck_assert_int_eq(pagemap_commit(m), 2);
    ck_assert_ptr_null(pagemap_lookup(m, 3));
    ck_assert_int_eq(pagemap_lookup(m, 1)->offset, 50);
    ck_assert_int_eq(pagemap_lookup(m, 1)->file, 1);
    ck_assert_int_eq(pagemap_lookup(m, 2)->file, 0);
    h = (ltx_header){.page_size = 512, .commit = 4, .min_txid = 3, .max_txid = 3};
    ltx_page_index none = {NULL, 0, 0, 0};
    ck_assert_int_eq(pagemap_apply(m, 2, &h, &none, err), LV_OK);
    ck_assert_int_eq(pagemap_commit(m), 4);
    ck_assert_ptr_null(pagemap_lookup(m, 3)); /* the old frame of page 3 is gone */
    ck_assert_ptr_null(pagemap_lookup(m, 4));
    ck_assert_ptr_null(pagemap_lookup(m, 0));
    ck_assert_ptr_null(pagemap_lookup(m, 5));
    ck_assert_int_eq(pagemap_file_txid(m, 1), 2);
    ck_assert_int_eq(pagemap_file_txid(m, 99), 0);
    /* a page beyond the file's own commit is corrupt */
    ltx_index_entry bad[1] = {{9, 100, 50}};
    ltx_page_index idx3 = {bad, 1, 0, 0};
    h = (ltx_header){.page_size = 512, .commit = 4, .min_txid = 4, .max_txid = 4};
    ck_assert_int_eq(pagemap_apply(m, 3, &h, &idx3, err), LV_ECORRUPT);
    pagemap_unref(m);
}
END_TEST

START_TEST(test_refcount_and_oom)
{
    char err[LV_ERRLEN] = "";
    ltx_index_entry e1[2] = {{1, 100, 10}, {2, 100, 20}};
    ltx_page_index idx = {e1, 2, 0, 0};
    ltx_header h = {.page_size = 512, .commit = 100000, .min_txid = 1, .max_txid = 1};
    for (long fail = 0; fail < 6; fail++) {
        lv_alloc_fail_after(fail);
        pagemap *m = pagemap_new(512);
        if (m) {
            lv_err rc = pagemap_apply(m, 7, &h, &idx, err);
            ck_assert(rc == LV_OK || rc == LV_ENOMEM);
            if (rc == LV_ENOMEM) {
                ck_assert_int_eq(pagemap_txid(m), 0);
                ck_assert_int_eq(pagemap_commit(m), 0);
            }
            pagemap *c = pagemap_clone(m);
            if (c) {
                ck_assert_int_eq(pagemap_commit(c), pagemap_commit(m));
                pagemap_ref(c);
                pagemap_unref(c);
                pagemap_unref(c);
            }
            pagemap_unref(m);
        }
        lv_alloc_fail_after(-1);
    }
    pagemap_unref(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vfs_pagemap");
    TCase *tc = tcase_create("pagemap");
    tcase_add_test(tc, test_vectors_chain);
    tcase_add_test(tc, test_vectors_compacted);
    tcase_add_test(tc, test_refuses_gaps_and_old_files);
    tcase_add_test(tc, test_shrink_and_grow);
    tcase_add_test(tc, test_refcount_and_oom);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
