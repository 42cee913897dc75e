/*
 * test_scn_checks: each invariant of the scenario runner (scenarios/scn_checks.h) on good input,
 * where it must hold, and on deliberately broken input, where it must fail: a database missing an
 * acknowledged row, a mixed state, a row beyond the last commit, a duplicate or missing TXID at
 * level 0, two stored files for one TXID in fakes3's request log, a second writer never refused,
 * a reader going backwards, a wrong answer, a leftover buffer, an unbounded workload.
 * Single-threaded.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "scn_checks.h"

static char msg[SCN_MSGLEN];

/* rows 1..n, optionally without one id or with one extra */
static int64_t idbuf[1000];
static scn_rows rows_upto(size_t n)
{
    for (size_t i = 0; i < n; i++)
        idbuf[i] = (int64_t)i + 1;
    return (scn_rows){idbuf, n, 0, 0};
}

static scn_wlog wlog_of(const char *text)
{
    scn_wlog w;
    ck_assert_int_eq(scn_wlog_parse(text, strlen(text), &w), 0);
    return w;
}

START_TEST(wlog_parse)
{
    scn_wlog w = wlog_of("open 12\ncommit 1\ncommit 2\nsyncing 2\nsynced 2 0000000000000001\n"
                         "commit 3\nsyncfail 3\nrefused database is locked\ncommit 4\ncomm");
    ck_assert_int_eq(w.last_commit, 4);
    ck_assert_int_eq(w.commits, 4);
    ck_assert_int_eq(w.last_synced, 2);
    ck_assert_int_eq(w.syncs, 1);
    ck_assert_int_eq(w.syncfails, 1);
    ck_assert_int_eq(w.refusals, 1);
    ck_assert_int_eq(w.opens, 1);
    ck_assert_uint_eq(w.nsynced, 1);
    ck_assert_uint_eq(w.synced[0].txid, 1);
    scn_wlog_free(&w);
    /* a torn last line is not counted */
    w = wlog_of("commit 1\nsynced 1 00000000000000");
    ck_assert_int_eq(w.last_synced, 0);
    scn_wlog_free(&w);
}
END_TEST

START_TEST(durable_holds_and_fails)
{
    scn_wlog w = wlog_of("commit 1\ncommit 2\ncommit 3\nsynced 3 0000000000000001\ncommit 4\n"
                         "commit 5\n");
    scn_rows r = rows_upto(3);
    ck_assert_int_eq(scn_check_durable(&w, 1, &r, 0, msg, sizeof msg), 1);
    ck_assert_ptr_nonnull(strstr(msg, "3 synced rows present"));
    /* commits 4 and 5 were never acknowledged: durable holds, durable commits does not */
    ck_assert_int_eq(scn_check_durable(&w, 1, &r, 1, msg, sizeof msg), 0);
    ck_assert_ptr_nonnull(strstr(msg, "row 4 missing"));
    /* a database missing an acknowledged row */
    r = rows_upto(2);
    ck_assert_int_eq(scn_check_durable(&w, 1, &r, 0, msg, sizeof msg), 0);
    ck_assert_ptr_nonnull(strstr(msg, "row 3 missing"));
    /* a hole in the middle is found too */
    int64_t holed[] = {1, 3, 4};
    scn_rows h = {holed, 3, 0, 0};
    ck_assert_int_eq(scn_check_durable(&w, 1, &h, 0, msg, sizeof msg), 0);
    ck_assert_ptr_nonnull(strstr(msg, "row 2 missing"));
    /* two writers: the one with the later acknowledged sync decides */
    scn_wlog w2 = wlog_of("commit 4\ncommit 5\nsynced 5 0000000000000002\n");
    scn_wlog both[2] = {w, w2};
    r = rows_upto(4);
    ck_assert_int_eq(scn_check_durable(both, 2, &r, 0, msg, sizeof msg), 0);
    r = rows_upto(5);
    ck_assert_int_eq(scn_check_durable(both, 2, &r, 0, msg, sizeof msg), 1);
    /* nothing acknowledged: nothing proven, so it fails rather than pass vacuously */
    scn_wlog none = wlog_of("commit 1\n");
    ck_assert_int_eq(scn_check_durable(&none, 1, &r, 0, msg, sizeof msg), 0);
    scn_wlog_free(&none);
    scn_wlog_free(&w);
    scn_wlog_free(&w2);
}
END_TEST

START_TEST(prefix_holds_and_fails)
{
    scn_wlog w = wlog_of("commit 1\ncommit 2\ncommit 3\ncommit 4\n");
    scn_rows r = rows_upto(4);
    ck_assert_int_eq(scn_check_prefix(&w, 1, &r, msg, sizeof msg), 1);
    /* one row past the last logged commit: a kill between COMMIT and its log line */
    r = rows_upto(5);
    ck_assert_int_eq(scn_check_prefix(&w, 1, &r, msg, sizeof msg), 1);
    /* two past it: rows nobody committed */
    r = rows_upto(6);
    ck_assert_int_eq(scn_check_prefix(&w, 1, &r, msg, sizeof msg), 0);
    ck_assert_ptr_nonnull(strstr(msg, "last logged commit is 4"));
    /* a mixed state: rows of commit 4 without those of commit 3 */
    int64_t mixed[] = {1, 2, 4};
    scn_rows m = {mixed, 3, 0, 0};
    ck_assert_int_eq(scn_check_prefix(&w, 1, &m, msg, sizeof msg), 0);
    ck_assert_ptr_nonnull(strstr(msg, "mixed state"));
    /* a row whose value the workload never wrote (a torn page, a stale page) */
    r = rows_upto(3);
    r.bad_v = 1;
    r.first_bad_v = 2;
    ck_assert_int_eq(scn_check_prefix(&w, 1, &r, msg, sizeof msg), 0);
    ck_assert_ptr_nonnull(strstr(msg, "id 2"));
    /* a duplicate id (impossible with a primary key, but a broken restore could) */
    int64_t dup[] = {1, 2, 2};
    scn_rows d = {dup, 3, 0, 0};
    ck_assert_int_eq(scn_check_prefix(&w, 1, &d, msg, sizeof msg), 0);
    scn_wlog_free(&w);
}
END_TEST

START_TEST(expected_v_matches_vfs_writer)
{
    /* the same function as tests/tools/vfs_writer.c's expected_v: both workloads agree */
    char v[64];
    scn_expected_v(1, v);
    ck_assert_str_eq(v, "v1-910a2dec89025cc1");
    scn_expected_v(0, v);
    ck_assert_str_eq(v, "v0-e220a8397b1dcdaf");
}
END_TEST

START_TEST(level0_holds_and_fails)
{
    const char *good = "{\"files\":[{\"min_txid\":\"0000000000000001\",\"max_txid\":"
                       "\"0000000000000001\"},{\"min_txid\":\"0000000000000002\",\"max_txid\":"
                       "\"0000000000000003\"}]}";
    scn_range *r;
    size_t n;
    ck_assert_int_eq(scn_level0_parse(good, &r, &n, msg, sizeof msg), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(scn_check_level0(r, n, msg, sizeof msg), 1);
    lv_free(r);
    /* a duplicate TXID */
    scn_range dup[] = {{1, 1}, {2, 2}, {2, 2}, {3, 3}};
    ck_assert_int_eq(scn_check_level0(dup, 4, msg, sizeof msg), 0);
    ck_assert_ptr_nonnull(strstr(msg, "two files for TXID"));
    /* overlapping ranges */
    scn_range ov[] = {{1, 3}, {3, 4}};
    ck_assert_int_eq(scn_check_level0(ov, 2, msg, sizeof msg), 0);
    /* a gap */
    scn_range gap[] = {{1, 1}, {3, 3}};
    ck_assert_int_eq(scn_check_level0(gap, 2, msg, sizeof msg), 0);
    ck_assert_ptr_nonnull(strstr(msg, "gap"));
    /* empty, and not JSON */
    ck_assert_int_eq(scn_check_level0(NULL, 0, msg, sizeof msg), 0);
    ck_assert_int_eq(scn_level0_parse("{files", &r, &n, msg, sizeof msg), -1);
}
END_TEST

#define PUT(key, status)                                                                           \
    "{\"operation\":\"PutObject\",\"key\":\"" key "\",\"status\":" #status "}\n"

START_TEST(single_writer_holds_and_fails)
{
    const char *good =
        PUT("db/lock.json", 200) PUT("db/0000/0000000000000001-0000000000000001.ltx", 200)
            PUT("db/0000/0000000000000002-0000000000000002.ltx", 0)
                PUT("db/0000/0000000000000002-0000000000000002.ltx", 200)
                    PUT("db/0000/0000000000000002-0000000000000002.ltx", 412)
                        PUT("db/0001/0000000000000001-0000000000000002.ltx", 200);
    int64_t refused[] = {1};
    const char *names[] = {"w2"};
    ck_assert_int_eq(
        scn_check_single_writer(good, strlen(good), refused, names, 1, msg, sizeof msg), 1);
    ck_assert_ptr_nonnull(strstr(msg, "2 level-0 files"));
    ck_assert_ptr_nonnull(strstr(msg, "0 stored without an answer, 1 conditional PUTs refused"));
    /* a lost response: stored (2xx) but never answered, then a 412 for the retry */
    const char *lost =
        "{\"operation\":\"PutObject\",\"key\":"
        "\"db/0000/0000000000000001-0000000000000001.ltx\",\"status\":200,"
        "\"completed\":false}\n" PUT("db/0000/0000000000000001-0000000000000001.ltx", 412);
    ck_assert_int_eq(scn_check_single_writer(lost, strlen(lost), NULL, NULL, 0, msg, sizeof msg),
                     1);
    ck_assert_ptr_nonnull(strstr(msg, "1 stored without an answer, 1 conditional PUTs refused"));
    /* the same key stored twice (an unconditional overwrite) */
    const char *twice = PUT("db/0000/0000000000000001-0000000000000001.ltx", 200)
        PUT("db/0000/0000000000000001-0000000000000001.ltx", 200);
    ck_assert_int_eq(scn_check_single_writer(twice, strlen(twice), NULL, NULL, 0, msg, sizeof msg),
                     0);
    ck_assert_ptr_nonnull(strstr(msg, "stored twice"));
    /* two writers landing different files for one TXID */
    const char *two = PUT("db/0000/0000000000000001-0000000000000001.ltx", 200)
        PUT("db/0000/0000000000000002-0000000000000002.ltx", 200)
            PUT("db/0000/0000000000000002-0000000000000004.ltx", 200);
    ck_assert_int_eq(scn_check_single_writer(two, strlen(two), NULL, NULL, 0, msg, sizeof msg), 0);
    ck_assert_ptr_nonnull(strstr(msg, "two level-0 files for one TXID"));
    /* a multipart completion counts as a stored file too */
    const char *mp = PUT("db/0000/0000000000000001-0000000000000001.ltx",
                         200) "{\"operation\":\"CompleteMultipartUpload\",\"key\":"
                              "\"db/0000/0000000000000001-0000000000000001.ltx\",\"status\":200}\n";
    ck_assert_int_eq(scn_check_single_writer(mp, strlen(mp), NULL, NULL, 0, msg, sizeof msg), 0);
    /* the second writer was never refused */
    int64_t never[] = {0};
    ck_assert_int_eq(scn_check_single_writer(good, strlen(good), never, names, 1, msg, sizeof msg),
                     0);
    ck_assert_ptr_nonnull(strstr(msg, "w2 was never refused"));
    /* nothing stored at all proves nothing */
    const char *empty = PUT("db/lock.json", 200);
    ck_assert_int_eq(scn_check_single_writer(empty, strlen(empty), NULL, NULL, 0, msg, sizeof msg),
                     0);
}
END_TEST

static scn_rlog rlog_of(const char *text)
{
    scn_rlog r;
    ck_assert_int_eq(scn_rlog_parse(text, strlen(text), &r), 0);
    return r;
}

START_TEST(monotonic_holds_and_fails)
{
    scn_rlog r = rlog_of("open 1\nread 0000000000000001 1:1:1\nread 0000000000000001 1:1:1\n"
                         "travel 0000000000000001 1:1:1\nread 0000000000000003 3:3:6\n"
                         "readfail disk I/O error\nread 0000000000000004 4:4:10\n");
    ck_assert_int_eq(scn_check_monotonic(&r, msg, sizeof msg), 1);
    scn_rlog_free(&r);
    /* a reader going backwards */
    r = rlog_of("open 1\nread 0000000000000003 3:3:6\nread 0000000000000002 2:2:3\n");
    ck_assert_int_eq(scn_check_monotonic(&r, msg, sizeof msg), 0);
    ck_assert_ptr_nonnull(strstr(msg, "went backwards"));
    scn_rlog_free(&r);
    /* "hydrated" lines are counted, not reads, and do not break the order */
    r = rlog_of("open 1\nread 0000000000000003 3:3:6\nhydrated 0000000000000003\n"
                "read 0000000000000004 4:4:10\n");
    ck_assert_uint_eq(r.hydrated, 1);
    ck_assert_uint_eq(r.n, 3);
    ck_assert_int_eq(scn_check_monotonic(&r, msg, sizeof msg), 1);
    scn_rlog_free(&r);
    /* a time travel back is allowed; a new connection starts over */
    r = rlog_of("open 1\nread 0000000000000005 5:5:15\ntravel 0000000000000002 2:2:3\n"
                "read 0000000000000005 5:5:15\nopen 2\nread 0000000000000004 4:4:10\n");
    ck_assert_int_eq(scn_check_monotonic(&r, msg, sizeof msg), 1);
    scn_rlog_free(&r);
    /* no read at all */
    r = rlog_of("open 1\nreadfail x\n");
    ck_assert_int_eq(scn_check_monotonic(&r, msg, sizeof msg), 0);
    scn_rlog_free(&r);
}
END_TEST

START_TEST(answers_hold_and_fail)
{
    scn_rlog r = rlog_of("open 1\nread 0000000000000001 2:2:3\ntravel 0000000000000001 2:2:3\n"
                         "read 0000000000000002 4:4:10\n");
    scn_ref ref[] = {{1, "2:2:3"}, {2, "4:4:10"}};
    ck_assert_int_eq(scn_check_answers(&r, ref, 2, msg, sizeof msg), 1);
    ck_assert_ptr_nonnull(strstr(msg, "3 answers (1 time-travel)"));
    /* the restored state at TXID 2 disagrees with what the reader saw */
    scn_ref bad[] = {{1, "2:2:3"}, {2, "5:5:15"}};
    ck_assert_int_eq(scn_check_answers(&r, bad, 2, msg, sizeof msg), 0);
    ck_assert_ptr_nonnull(strstr(msg, "answered 4:4:10"));
    /* nothing compared */
    scn_ref other[] = {{9, "1:1:1"}};
    ck_assert_int_eq(scn_check_answers(&r, other, 1, msg, sizeof msg), 0);
    uint64_t *tx;
    ck_assert_int_eq(scn_read_txids(&r, &tx), 2);
    ck_assert_uint_eq(tx[0], 1);
    ck_assert_uint_eq(tx[1], 2);
    lv_free(tx);
    scn_rlog_free(&r);
    /* the reference answer is computed as the reader computes it */
    char a[64];
    scn_rows rows = rows_upto(4);
    scn_answer_of(&rows, a);
    ck_assert_str_eq(a, "4:4:10");
    rows = rows_upto(0);
    scn_answer_of(&rows, a);
    ck_assert_str_eq(a, "0:0:0");
}
END_TEST

START_TEST(leftovers_bounded_catchup)
{
    ck_assert_int_eq(scn_check_leftovers(NULL, 0, msg, sizeof msg), 1);
    const char *left[] = {"w/buffer.wbuf", "w/buffer.wbuf.sync"};
    ck_assert_int_eq(scn_check_leftovers(left, 2, msg, sizeof msg), 0);
    ck_assert_ptr_nonnull(strstr(msg, "w/buffer.wbuf.sync"));

    ck_assert_int_eq(scn_check_bounded(20, 13000, 64, 262144, 10, msg, sizeof msg), 1);
    ck_assert_int_eq(scn_check_bounded(65, 13000, 64, 262144, 10, msg, sizeof msg), 0);
    ck_assert_int_eq(scn_check_bounded(20, 300000, 64, 262144, 10, msg, sizeof msg), 0);
    ck_assert_int_eq(scn_check_bounded(0, 0, 64, 262144, 0, msg, sizeof msg), 0);

    ck_assert_int_eq(scn_check_catchup(100, 100, 1.5, 20, msg, sizeof msg), 1);
    ck_assert_int_eq(scn_check_catchup(100, 99, 20.1, 20, msg, sizeof msg), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("scn_checks");
    TCase *tc = tcase_create("checks");
    tcase_add_test(tc, wlog_parse);
    tcase_add_test(tc, durable_holds_and_fails);
    tcase_add_test(tc, prefix_holds_and_fails);
    tcase_add_test(tc, expected_v_matches_vfs_writer);
    tcase_add_test(tc, level0_holds_and_fails);
    tcase_add_test(tc, single_writer_holds_and_fails);
    tcase_add_test(tc, monotonic_holds_and_fails);
    tcase_add_test(tc, answers_hold_and_fail);
    tcase_add_test(tc, leftovers_bounded_catchup);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
