/*
 * test_replica_plan: replica_plan_restore, Litestream's CalcRestorePlan, on hand-made listings:
 *   - the newest snapshot, then the level-0 chain; a snapshot that already reaches the end;
 *   - overlapping compactions at levels 1..3: the file reaching furthest wins, then L0 goes on;
 *   - the tie rules (smaller min, then higher level, then earlier created);
 *   - a gap: the exact message in latest mode, and TXID targets on either side of it;
 *   - TXID targets (snapshot choice, files beyond the target ignored, not reached);
 *   - time targets (inclusive of a file's own timestamp, a newer snapshot skipped);
 *   - no snapshot: a chain from TXID 1; empty or unreachable listings: LV_ENOTFOUND;
 *   - the listing's order does not matter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "replica.h"
#include "testutil.h"

typedef unsigned long long ull;

/* A listing under construction. */
typedef struct listing {
    replica_file f[256];
    size_t n;
} listing;

static void add(listing *l, int level, uint64_t min, uint64_t max, int64_t created)
{
    ck_assert(l->n < sizeof l->f / sizeof l->f[0]);
    replica_file *f = &l->f[l->n++];
    memset(f, 0, sizeof *f);
    f->level = level;
    f->min_txid = min;
    f->max_txid = max;
    f->size = 1000;
    f->created_ms = created;
}

/* "L9:1-a L0:b-b" with hex TXIDs, for comparisons. */
static void describe(const replica_plan *p, char *out, size_t cap)
{
    size_t k = 0;
    out[0] = 0;
    for (size_t i = 0; i < p->n; i++) {
        int w = snprintf(out + k, cap - k, "%sL%d:%llx-%llx", i ? " " : "", p->files[i].level,
                         (ull)p->files[i].min_txid, (ull)p->files[i].max_txid);
        ck_assert(w > 0 && (size_t)w < cap - k);
        k += (size_t)w;
    }
}

/* Plans and checks the plan's files and reach. */
static void expect_plan(const listing *l, uint64_t txid, int64_t time_ms, const char *want,
                        uint64_t want_max)
{
    replica_target t = {txid, time_ms};
    replica_plan p;
    char err[LV_ERRLEN] = "";
    lv_err rc = replica_plan_restore(l->f, l->n, &t, &p, err);
    ck_assert_msg(rc == LV_OK, "plan: %s (%s)", lv_strerror(rc), err);
    char got[4096];
    describe(&p, got, sizeof got);
    ck_assert_msg(strcmp(got, want) == 0, "plan \"%s\", want \"%s\"", got, want);
    ck_assert_uint_eq(p.max_txid, want_max);
    lv_free(p.files);
}

static void expect_fail(const listing *l, uint64_t txid, int64_t time_ms, lv_err want,
                        const char *msg)
{
    replica_target t = {txid, time_ms};
    replica_plan p;
    char err[LV_ERRLEN] = "";
    lv_err rc = replica_plan_restore(l->f, l->n, &t, &p, err);
    ck_assert_msg(rc == want, "got %s (%s), want %s", lv_strerror(rc), err, lv_strerror(want));
    ck_assert_ptr_null(p.files);
    ck_assert_uint_eq(p.n, 0);
    if (msg)
        ck_assert_msg(strstr(err, msg) != NULL, "message \"%s\" lacks \"%s\"", err, msg);
}

START_TEST(test_snapshot_then_l0_chain)
{
    listing l = {.n = 0};
    add(&l, 9, 1, 5, 100);
    add(&l, 9, 1, 10, 200);
    for (uint64_t t = 1; t <= 14; t++)
        add(&l, 0, t, t, (int64_t)(100 + t));
    expect_plan(&l, 0, 0, "L9:1-a L0:b-b L0:c-c L0:d-d L0:e-e", 14);
}
END_TEST

START_TEST(test_snapshot_reaching_the_end_is_the_whole_plan)
{
    listing l = {.n = 0};
    add(&l, 9, 1, 0x20, 100);
    for (uint64_t t = 1; t <= 0x20; t++)
        add(&l, 0, t, t, 1);
    expect_plan(&l, 0, 0, "L9:1-20", 0x20);
    add(&l, 0, 0x21, 0x21, 1);
    expect_plan(&l, 0, 0, "L9:1-20 L0:21-21", 0x21);
}
END_TEST

START_TEST(test_overlapping_compactions_choose_furthest)
{
    listing l = {.n = 0};
    add(&l, 9, 1, 10, 0);
    add(&l, 1, 11, 20, 0);
    add(&l, 1, 21, 30, 0);
    add(&l, 2, 11, 30, 0);
    add(&l, 3, 11, 25, 0);
    for (uint64_t t = 11; t <= 35; t++)
        add(&l, 0, t, t, 0);
    /* L2 11-30 reaches furthest from 10; then L1 21-30 adds nothing; L0 continues from 31 */
    expect_plan(&l, 0, 0, "L9:1-a L2:b-1e L0:1f-1f L0:20-20 L0:21-21 L0:22-22 L0:23-23", 35);

    /* a level-3 file reaching further wins over the rest */
    add(&l, 3, 26, 34, 0);
    expect_plan(&l, 0, 0, "L9:1-a L2:b-1e L3:1a-22 L0:23-23", 35);
}
END_TEST

START_TEST(test_tie_rules)
{
    /* same max: the smaller min wins, even at a lower level */
    listing l = {.n = 0};
    add(&l, 9, 1, 10, 0);
    add(&l, 1, 8, 20, 0);
    add(&l, 2, 11, 20, 0);
    expect_plan(&l, 0, 0, "L9:1-a L1:8-14", 20);

    /* same max and min: the higher level wins */
    memset(&l, 0, sizeof l);
    add(&l, 9, 1, 10, 0);
    add(&l, 1, 11, 20, 0);
    add(&l, 3, 11, 20, 0);
    add(&l, 2, 11, 19, 0);
    expect_plan(&l, 0, 0, "L9:1-a L3:b-14", 20);

    /* the same file listed twice: the earlier created wins */
    memset(&l, 0, sizeof l);
    add(&l, 9, 1, 10, 0);
    add(&l, 1, 11, 20, 500);
    add(&l, 1, 11, 20, 100);
    replica_plan p;
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(replica_plan_restore(l.f, l.n, NULL, &p, err), LV_OK);
    ck_assert_uint_eq(p.n, 2);
    ck_assert_int_eq(p.files[1].created_ms, 100);
    lv_free(p.files);
    /* and in the other order */
    l.f[1].created_ms = 50;
    ck_assert_int_eq(replica_plan_restore(l.f, l.n, NULL, &p, err), LV_OK);
    ck_assert_int_eq(p.files[1].created_ms, 50);
    lv_free(p.files);
}
END_TEST

START_TEST(test_gap_is_an_error_in_latest_mode)
{
    listing l = {.n = 0};
    add(&l, 9, 1, 10, 0);
    add(&l, 0, 11, 11, 0);
    add(&l, 0, 12, 12, 0);
    add(&l, 0, 14, 14, 0);
    add(&l, 0, 15, 15, 0);
    expect_fail(&l, 0, 0, LV_ECONFLICT,
                "non-contiguous ltx files: have up to TXID 000000000000000c but the next file "
                "starts at 000000000000000e");
    /* a TXID target before the gap is fine; one beyond it is not available */
    expect_plan(&l, 12, 0, "L9:1-a L0:b-b L0:c-c", 12);
    expect_fail(&l, 14, 0, LV_ENOTFOUND, "000000000000000e");
    /* a compaction that bridges the gap heals it */
    add(&l, 1, 11, 14, 0);
    expect_plan(&l, 0, 0, "L9:1-a L1:b-e L0:f-f", 15);
}
END_TEST

START_TEST(test_gap_at_another_level)
{
    listing l = {.n = 0};
    add(&l, 9, 1, 10, 0);
    add(&l, 0, 11, 11, 0);
    add(&l, 2, 13, 20, 0);
    expect_fail(&l, 0, 0, LV_ECONFLICT,
                "have up to TXID 000000000000000b but the next file starts at 000000000000000d");
}
END_TEST

START_TEST(test_txid_target)
{
    listing l = {.n = 0};
    add(&l, 9, 1, 5, 0);
    add(&l, 9, 1, 10, 0);
    add(&l, 1, 6, 15, 0);
    for (uint64_t t = 6; t <= 15; t++)
        add(&l, 0, t, t, 0);
    /* the newest snapshot at or below the target, then only files that stay at or below it */
    expect_plan(&l, 8, 0, "L9:1-5 L0:6-6 L0:7-7 L0:8-8", 8);
    expect_plan(&l, 10, 0, "L9:1-a", 10);
    expect_plan(&l, 12, 0, "L9:1-a L0:b-b L0:c-c", 12);
    expect_plan(&l, 15, 0, "L9:1-a L1:6-f", 15);
    expect_plan(&l, 0, 0, "L9:1-a L1:6-f", 15);
    expect_fail(&l, 16, 0, LV_ENOTFOUND, "0000000000000010");
}
END_TEST

START_TEST(test_time_target)
{
    listing l = {.n = 0};
    add(&l, 9, 1, 5, 100);
    add(&l, 0, 6, 6, 110);
    add(&l, 0, 7, 7, 120);
    add(&l, 0, 8, 8, 130);
    add(&l, 9, 1, 8, 135);
    add(&l, 0, 9, 9, 140);
    expect_plan(&l, 0, 125, "L9:1-5 L0:6-6 L0:7-7", 7);
    /* at or before: a file created exactly at the target is in */
    expect_plan(&l, 0, 120, "L9:1-5 L0:6-6 L0:7-7", 7);
    expect_plan(&l, 0, 134, "L9:1-5 L0:6-6 L0:7-7 L0:8-8", 8);
    expect_plan(&l, 0, 135, "L9:1-8", 8);
    expect_plan(&l, 0, 1000, "L9:1-8 L0:9-9", 9);
    expect_plan(&l, 0, 100, "L9:1-5", 5);
    /* before every file: nothing to restore */
    expect_fail(&l, 0, 99, LV_ENOTFOUND, NULL);
    /* both targets at once: refused */
    expect_fail(&l, 7, 125, LV_EINVAL, NULL);
}
END_TEST

START_TEST(test_no_snapshot_chains_from_txid_1)
{
    listing l = {.n = 0};
    add(&l, 0, 1, 1, 0);
    add(&l, 0, 2, 2, 0);
    add(&l, 0, 3, 3, 0);
    expect_plan(&l, 0, 0, "L0:1-1 L0:2-2 L0:3-3", 3);
    add(&l, 1, 1, 3, 0);
    add(&l, 0, 4, 4, 0);
    expect_plan(&l, 0, 0, "L1:1-3 L0:4-4", 4);

    /* nothing starts at TXID 1: nothing to plan (not a gap error: the plan is empty) */
    listing m = {.n = 0};
    add(&m, 0, 5, 5, 0);
    add(&m, 0, 6, 6, 0);
    expect_fail(&m, 0, 0, LV_ENOTFOUND, NULL);
}
END_TEST

START_TEST(test_empty_is_not_found)
{
    replica_plan p;
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(replica_plan_restore(NULL, 0, NULL, &p, err), LV_ENOTFOUND);
    ck_assert_ptr_null(p.files);
    ck_assert_msg(err[0] != 0, "no message");
    listing l = {.n = 0};
    expect_fail(&l, 3, 0, LV_ENOTFOUND, NULL);
    expect_fail(&l, 0, 1000, LV_ENOTFOUND, NULL);
}
END_TEST

START_TEST(test_order_of_listing_does_not_matter)
{
    listing l = {.n = 0};
    add(&l, 9, 1, 10, 0);
    add(&l, 9, 1, 4, 0);
    add(&l, 2, 11, 30, 0);
    add(&l, 1, 11, 20, 0);
    add(&l, 1, 21, 30, 0);
    for (uint64_t t = 5; t <= 33; t++)
        add(&l, 0, t, t, 0);
    const char *want = "L9:1-a L2:b-1e L0:1f-1f L0:20-20 L0:21-21";
    expect_plan(&l, 0, 0, want, 33);
    uint64_t seed = 42;
    for (int round = 0; round < 20; round++) {
        for (size_t i = l.n - 1; i > 0; i--) {
            size_t j = (size_t)(tu_rand(&seed) % (i + 1));
            replica_file t = l.f[i];
            l.f[i] = l.f[j];
            l.f[j] = t;
        }
        expect_plan(&l, 0, 0, want, 33);
        expect_plan(&l, 7, 0, "L9:1-4 L0:5-5 L0:6-6 L0:7-7", 7);
    }
}
END_TEST

static Suite *plan_suite(void)
{
    Suite *s = suite_create("replica_plan");
    TCase *tc = tcase_create("plan");
    tcase_add_test(tc, test_snapshot_then_l0_chain);
    tcase_add_test(tc, test_snapshot_reaching_the_end_is_the_whole_plan);
    tcase_add_test(tc, test_overlapping_compactions_choose_furthest);
    tcase_add_test(tc, test_tie_rules);
    tcase_add_test(tc, test_gap_is_an_error_in_latest_mode);
    tcase_add_test(tc, test_gap_at_another_level);
    tcase_add_test(tc, test_txid_target);
    tcase_add_test(tc, test_time_target);
    tcase_add_test(tc, test_no_snapshot_chains_from_txid_1);
    tcase_add_test(tc, test_empty_is_not_found);
    tcase_add_test(tc, test_order_of_listing_does_not_matter);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(plan_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
