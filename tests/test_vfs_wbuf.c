/*
 * test_vfs_wbuf: vfs/wbuf.c, the local write buffer: transactions, rollback, read-your-writes,
 * the sync window (latest wins, shrink), recovery after a crash at every byte offset, mark_synced
 * and recovery after it, the size bound, and allocation failures. Single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "testutil.h"
#include "wbuf.h"

#define PS 512

static void fill(uint8_t *page, uint32_t pgno, uint32_t version)
{
    for (int i = 0; i < PS; i += 12) {
        uint32_t v[3] = {pgno, version, (uint32_t)i};
        memcpy(page + i, v, i + 12 <= PS ? 12 : (size_t)(PS - i));
    }
}

static void put(wbuf *w, uint32_t pgno, uint32_t version)
{
    uint8_t p[PS];
    char err[LV_ERRLEN] = "";
    fill(p, pgno, version);
    lv_err rc = wbuf_page(w, pgno, p, err);
    ck_assert_msg(rc == LV_OK, "page %u: %s", pgno, err);
}

/* 1 if the lookup finds pgno with the bytes of `version`, 0 if not found; fails on other bytes. */
static int sees(wbuf *w, uint32_t pgno, int pending, uint32_t version)
{
    uint8_t got[PS], want[PS];
    int found = -1;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(wbuf_lookup(w, pgno, pending, got, &found, err) == LV_OK, "%s", err);
    if (!found)
        return 0;
    fill(want, pgno, version);
    ck_assert_msg(memcmp(got, want, PS) == 0, "page %u: not version %u", pgno, version);
    return 1;
}

static int sees_zero(wbuf *w, uint32_t pgno)
{
    uint8_t got[PS], zero[PS] = {0};
    int found = 0;
    ck_assert(wbuf_lookup(w, pgno, 0, got, &found, NULL) == LV_OK);
    return found && memcmp(got, zero, PS) == 0;
}

static void ok(lv_err rc, const char *err)
{
    ck_assert_msg(rc == LV_OK, "%s (%s)", err, lv_strerror(rc));
}

static void tx(wbuf *w, const uint32_t *pgnos, size_t n, uint32_t version, uint32_t commit)
{
    char err[LV_ERRLEN] = "";
    ok(wbuf_begin(w, err), err);
    for (size_t i = 0; i < n; i++)
        put(w, pgnos[i], version);
    ok(wbuf_commit(w, commit, err), err);
}

START_TEST(test_transactions_and_rollback)
{
    char *path = tu_tmp_path("wbuf");
    char err[LV_ERRLEN] = "";
    wbuf *w = NULL;
    ok(wbuf_create(&w, path, PS, 7, 0x8000000000000abcull, 3, 0, 0, err), err);
    ck_assert_uint_eq(wbuf_commit_pages(w), 3);
    tx(w, (uint32_t[]){1, 2}, 2, 1, 3);
    ck_assert(sees(w, 1, 0, 1));
    ck_assert(sees(w, 2, 0, 1));
    ck_assert(!sees(w, 3, 0, 0)); /* the base's */

    /* An open transaction: the writer sees it, others do not; a rollback discards it. */
    ok(wbuf_begin(w, err), err);
    ck_assert_int_eq(wbuf_begin(w, err), LV_EINVAL);
    put(w, 2, 2);
    put(w, 3, 2);
    put(w, 2, 3); /* twice in one transaction: the later wins */
    ck_assert(sees(w, 2, 1, 3));
    ck_assert(sees(w, 3, 1, 2));
    ck_assert(sees(w, 2, 0, 1));
    ck_assert(!sees(w, 3, 0, 0));
    wbuf_info info;
    wbuf_get_info(w, &info);
    ck_assert_int_eq(info.in_tx, 1);
    ck_assert_uint_eq(info.txs, 1);
    ok(wbuf_rollback(w, err), err);
    ck_assert(sees(w, 2, 1, 1));
    ck_assert(!sees(w, 3, 1, 0));
    wbuf_get_info(w, &info);
    ck_assert_int_eq(info.in_tx, 0);
    ck_assert_uint_eq(info.dirty_pages, 2);
    ck_assert_uint_eq(info.base_txid, 7);
    ck_assert_uint_eq(info.base_checksum, 0x8000000000000abcull);
    ck_assert_uint_eq(info.bytes, WBUF_HEADER_SIZE + 2 * (8 + PS) + 16);

    /* Bad calls. */
    uint8_t p[PS] = {0};
    ck_assert_int_eq(wbuf_page(w, 1, p, err), LV_EINVAL); /* no transaction */
    ck_assert_int_eq(wbuf_commit(w, 3, err), LV_EINVAL);
    ok(wbuf_begin(w, err), err);
    ck_assert_int_eq(wbuf_page(w, 0, p, err), LV_EINVAL);
    ck_assert_int_eq(wbuf_page(w, ltx_lock_pgno(PS), p, err), LV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "lock page"));
    put(w, 5, 4);
    ok(wbuf_commit(w, 5, err), err);
    ck_assert_uint_eq(wbuf_commit_pages(w), 5);
    wbuf_close(w);

    /* Reopen: the same two transactions, rollback gone. */
    ok(wbuf_open(&w, path, 0, 0, &info, err), err);
    ck_assert_uint_eq(info.txs, 2);
    ck_assert_uint_eq(info.dropped_bytes, 0);
    ck_assert_uint_eq(info.commit, 5);
    ck_assert_uint_eq(info.base_commit, 3);
    ck_assert(sees(w, 1, 0, 1));
    ck_assert(sees(w, 2, 0, 1));
    ck_assert(sees(w, 5, 0, 4));
    ck_assert(!sees(w, 3, 0, 0));
    wbuf_close(w);

    /* Not a buffer; no buffer. */
    tu_write_file(path, "SQLite format 3\0 and then some more bytes to pass sixty four bytes....",
                  70);
    ck_assert_int_eq(wbuf_open(&w, path, 0, 0, NULL, err), LV_ECORRUPT);
    ck_assert_ptr_null(w);
    unlink(path);
    ck_assert_int_eq(wbuf_open(&w, path, 0, 0, NULL, err), LV_ENOTFOUND);
    tu_tmp_remove(path);
}
END_TEST

START_TEST(test_window_latest_wins)
{
    char *path = tu_tmp_path("wbuf");
    char err[LV_ERRLEN] = "";
    wbuf *w = NULL;
    ok(wbuf_create(&w, path, PS, 1, 0x8000000000000001ull, 2, 0, WBUF_SYNC_COMMIT, err), err);
    tx(w, (uint32_t[]){3, 1, 2}, 3, 1, 3);
    tx(w, (uint32_t[]){2}, 1, 2, 3);
    tx(w, (uint32_t[]){4, 3}, 2, 3, 4);
    wbuf_dirty d;
    ok(wbuf_dirty_get(w, &d, err), err);
    ck_assert_uint_eq(d.n, 4);
    ck_assert_uint_eq(d.commit, 4);
    ck_assert_uint_eq(d.txs, 3);
    ck_assert_uint_eq(d.base_txid, 1);
    ck_assert_uint_eq(d.base_commit, 2);
    uint32_t want_v[] = {1, 2, 3, 3};
    for (uint32_t i = 0; i < 4; i++) {
        uint8_t want[PS];
        ck_assert_uint_eq(d.pgnos[i], i + 1);
        fill(want, i + 1, want_v[i]);
        ck_assert_msg(memcmp(d.pages + i * PS, want, PS) == 0, "page %u", i + 1);
    }
    wbuf_dirty_free(&d);
    wbuf_close(w);
    tu_tmp_remove(path);
}
END_TEST

/* A shrink drops later pages from the window; pages that come back unwritten are zeros. */
START_TEST(test_shrink)
{
    char *path = tu_tmp_path("wbuf");
    char err[LV_ERRLEN] = "";
    wbuf *w = NULL;
    ok(wbuf_create(&w, path, PS, 4, 0x8000000000000004ull, 10, 0, 0, err), err);
    tx(w, (uint32_t[]){2, 7}, 2, 1, 10);
    tx(w, NULL, 0, 0, 5);
    ck_assert_uint_eq(wbuf_commit_pages(w), 5);
    ck_assert(sees_zero(w, 7));
    ck_assert(!sees(w, 3, 0, 0));
    tx(w, (uint32_t[]){8}, 1, 2, 8);
    ck_assert(sees_zero(w, 6));
    ck_assert(sees_zero(w, 7));
    ck_assert(sees(w, 8, 0, 2));
    wbuf_dirty d;
    ok(wbuf_dirty_get(w, &d, err), err);
    ck_assert_uint_eq(d.n, 4);
    uint32_t want[] = {2, 6, 7, 8};
    uint8_t zero[PS] = {0}, img[PS];
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(d.pgnos[i], want[i]);
    fill(img, 2, 1);
    ck_assert(memcmp(d.pages, img, PS) == 0);
    ck_assert(memcmp(d.pages + PS, zero, PS) == 0);
    ck_assert(memcmp(d.pages + 2 * PS, zero, PS) == 0);
    wbuf_dirty_free(&d);
    wbuf_close(w);
    /* The same after recovery. */
    ok(wbuf_open(&w, path, 0, 0, NULL, err), err);
    ck_assert(sees_zero(w, 7));
    ck_assert(sees(w, 8, 0, 2));
    ck_assert(sees(w, 2, 0, 1));
    ck_assert_uint_eq(wbuf_commit_pages(w), 8);
    wbuf_close(w);
    tu_tmp_remove(path);
}
END_TEST

/*
 * A transaction that writes pages beyond its own commit size (a growth SQLite rolled back and
 * truncated away, then committed at the old size): those pages are not in the window, before and
 * after recovery; the window ships.
 */
START_TEST(test_pages_beyond_own_commit)
{
    char *path = tu_tmp_path("wbuf");
    char err[LV_ERRLEN] = "";
    wbuf *w = NULL;
    ok(wbuf_create(&w, path, PS, 0, 0, 0, 0, 0, err), err);
    tx(w, (uint32_t[]){1, 2}, 2, 1, 2);
    tx(w, (uint32_t[]){1, 2, 3, 4, 5}, 5, 2, 2);
    for (int round = 0; round < 2; round++) {
        ck_assert_uint_eq(wbuf_commit_pages(w), 2);
        ck_assert(sees(w, 2, 0, 2));
        ck_assert(sees_zero(w, 3)); /* beyond the base and the window: nothing, zeros */
        wbuf_dirty d;
        ok(wbuf_dirty_get(w, &d, err), err);
        ck_assert_uint_eq(d.commit, 2);
        ck_assert_uint_eq(d.n, 2);
        ck_assert_uint_eq(d.pgnos[0], 1);
        ck_assert_uint_eq(d.pgnos[1], 2);
        wbuf_dirty_free(&d);
        wbuf_close(w);
        ok(wbuf_open(&w, path, 0, 0, NULL, err), err); /* the same after recovery */
    }
    wbuf_close(w);
    tu_tmp_remove(path);
}
END_TEST

/*
 * A crash at every byte offset: a copy of the file cut at each length recovers exactly the
 * transactions whose commit record is wholly inside it, and accepts new ones after.
 */
START_TEST(test_recovery_every_offset)
{
    char *path = tu_tmp_path("wbuf");
    char err[LV_ERRLEN] = "";
    wbuf *w = NULL;
    uint64_t ends[4];
    ok(wbuf_create(&w, path, PS, 9, 0x8000000000000009ull, 4, 0, 0, err), err);
    wbuf_info info;
    wbuf_get_info(w, &info);
    ends[0] = info.bytes;
    tx(w, (uint32_t[]){1, 4}, 2, 1, 4);
    wbuf_get_info(w, &info);
    ends[1] = info.bytes;
    tx(w, (uint32_t[]){4, 5}, 2, 2, 5);
    wbuf_get_info(w, &info);
    ends[2] = info.bytes;
    tx(w, (uint32_t[]){1, 2, 5, 6}, 4, 3, 6);
    wbuf_get_info(w, &info);
    ends[3] = info.bytes;
    wbuf_close(w);
    size_t size;
    uint8_t *full = tu_read_file(path, &size);
    ck_assert_uint_eq(size, ends[3]);

    size_t plen = strlen(path) + 8;
    char *cut = malloc(plen);
    snprintf(cut, plen, "%s.cut", path);
    for (size_t len = WBUF_HEADER_SIZE; len <= size; len++) {
        tu_write_file(cut, full, len);
        ok(wbuf_open(&w, cut, 0, 0, &info, err), err);
        int k = 0;
        while (k < 3 && ends[k + 1] <= len)
            k++;
        ck_assert_msg(info.txs == (uint64_t)k, "cut at %zu: %llu transactions, want %d", len,
                      (unsigned long long)info.txs, k);
        ck_assert_uint_eq(info.dropped_bytes, len - ends[k]);
        ck_assert_uint_eq(info.bytes, ends[k]);
        ck_assert_uint_eq(info.commit, k == 0 ? 4 : k + 3);
        /* The model: page -> version after k transactions (0: the base's). */
        uint32_t v1 = k >= 3 ? 3 : k >= 1 ? 1 : 0, v2 = k >= 3 ? 3 : 0, v4 = k >= 2 ? 2 : k;
        uint32_t v5 = k >= 3 ? 3 : k >= 2 ? 2 : 0, v6 = k >= 3 ? 3 : 0;
        ck_assert_int_eq(sees(w, 1, 0, v1), v1 != 0);
        ck_assert_int_eq(sees(w, 2, 0, v2), v2 != 0);
        ck_assert_int_eq(sees(w, 4, 0, v4), v4 != 0);
        /* Pages 5 and 6 lie beyond the base (4 pages): absent, they read as zeros. */
        ck_assert(v5 ? sees(w, 5, 0, v5) : sees_zero(w, 5));
        ck_assert(v6 ? sees(w, 6, 0, v6) : sees_zero(w, 6));
        if (len % 97 == 0 || len == size) {
            /* It goes on: a new transaction lands after what was kept, and survives. */
            tx(w, (uint32_t[]){3}, 1, 9, 6);
            wbuf_close(w);
            ok(wbuf_open(&w, cut, 0, 0, &info, err), err);
            ck_assert_uint_eq(info.txs, (uint64_t)k + 1);
            ck_assert_uint_eq(info.dropped_bytes, 0);
            ck_assert(sees(w, 3, 0, 9));
        }
        wbuf_close(w);
    }
    /* One flipped byte in the last transaction: that transaction goes, the others stay. */
    full[ends[2] + 20] ^= 0x40;
    tu_write_file(cut, full, size);
    ok(wbuf_open(&w, cut, 0, 0, &info, err), err);
    ck_assert_uint_eq(info.txs, 2);
    ck_assert_uint_eq(info.dropped_bytes, size - ends[2]);
    wbuf_close(w);
    /* A damaged header is refused, not guessed at. */
    full[ends[2] + 20] ^= 0x40;
    full[20] ^= 1;
    tu_write_file(cut, full, size);
    ck_assert_int_eq(wbuf_open(&w, cut, 0, 0, &info, err), LV_ECORRUPT);
    unlink(cut);
    free(cut);
    free(full);
    tu_tmp_remove(path);
}
END_TEST

/* mark_synced keeps what was committed after the snapshot and the open transaction. */
START_TEST(test_mark_synced)
{
    char *path = tu_tmp_path("wbuf");
    char err[LV_ERRLEN] = "";
    wbuf *w = NULL;
    ok(wbuf_create(&w, path, PS, 0, 0, 0, 0, 0, err), err);
    tx(w, (uint32_t[]){1, 2, 3}, 3, 1, 3);
    wbuf_dirty d;
    ok(wbuf_dirty_get(w, &d, err), err);
    ck_assert_uint_eq(d.n, 3);
    /* While the upload runs: another commit, and a transaction left open. */
    tx(w, (uint32_t[]){3, 4}, 2, 2, 4);
    ok(wbuf_begin(w, err), err);
    put(w, 1, 3);
    ok(wbuf_mark_synced(w, &d, 1, 0x8000000000001111ull, err), err);
    /* Twice is a mistake: the buffer is at TXID 1 now. */
    ck_assert_int_eq(wbuf_mark_synced(w, &d, 1, 0x8000000000001111ull, err), LV_EINVAL);
    wbuf_dirty_free(&d);
    wbuf_info info;
    wbuf_get_info(w, &info);
    ck_assert_uint_eq(info.base_txid, 1);
    ck_assert_uint_eq(info.base_checksum, 0x8000000000001111ull);
    ck_assert_uint_eq(info.base_commit, 3);
    ck_assert_uint_eq(info.txs, 1);
    ck_assert_uint_eq(info.dirty_pages, 2);
    ck_assert_int_eq(info.in_tx, 1);
    ck_assert(!sees(w, 1, 0, 0)); /* shipped: the base has it now */
    ck_assert(!sees(w, 2, 0, 0));
    ck_assert(sees(w, 3, 0, 2));
    ck_assert(sees(w, 4, 0, 2));
    ck_assert(sees(w, 1, 1, 3)); /* the open transaction survived the rewrite */
    put(w, 5, 3);
    ok(wbuf_commit(w, 5, err), err);
    ok(wbuf_dirty_get(w, &d, err), err);
    ck_assert_uint_eq(d.n, 4);
    ck_assert_uint_eq(d.base_txid, 1);
    ck_assert_uint_eq(d.base_commit, 3);
    ck_assert_uint_eq(d.commit, 5);
    wbuf_close(w);

    /* Recovery after a sync: the new base and the two later transactions. */
    ok(wbuf_open(&w, path, 0, 0, &info, err), err);
    ck_assert_uint_eq(info.base_txid, 1);
    ck_assert_uint_eq(info.txs, 2);
    ck_assert_uint_eq(info.dropped_bytes, 0);
    ck_assert(sees(w, 1, 0, 3));
    ck_assert(!sees(w, 2, 0, 0));
    ck_assert(sees(w, 5, 0, 3));
    /* A sync of the whole window leaves an empty buffer, also after reopening. */
    ok(wbuf_mark_synced(w, &d, 2, 0x8000000000002222ull, err), err);
    wbuf_dirty_free(&d);
    wbuf_close(w);
    ok(wbuf_open(&w, path, 0, 0, &info, err), err);
    ck_assert_uint_eq(info.base_txid, 2);
    ck_assert_uint_eq(info.base_commit, 5);
    ck_assert_uint_eq(info.txs, 0);
    ck_assert_uint_eq(info.bytes, WBUF_HEADER_SIZE);
    ok(wbuf_dirty_get(w, &d, err), err);
    ck_assert_uint_eq(d.n, 0);
    ck_assert_uint_eq(d.txs, 0);
    wbuf_dirty_free(&d);
    wbuf_close(w);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_int_ne(access(tmp, F_OK), 0); /* no temp file left behind */
    /* A crash inside mark_synced before its rename: the old buffer stands, the temp goes. */
    tu_write_file(tmp, "half a buffer", 13);
    ok(wbuf_open(&w, path, 0, 0, &info, err), err);
    ck_assert_uint_eq(info.base_txid, 2);
    ck_assert_int_ne(access(tmp, F_OK), 0);
    wbuf_close(w);
    tu_tmp_remove(path);
}
END_TEST

START_TEST(test_bound)
{
    char *path = tu_tmp_path("wbuf");
    char err[LV_ERRLEN] = "";
    wbuf *w = NULL;
    uint64_t bound = WBUF_HEADER_SIZE + 10 * (8 + PS) + 3 * 16;
    ok(wbuf_create(&w, path, PS, 1, 0x8000000000000001ull, 1, bound, 0, err), err);
    tx(w, (uint32_t[]){1, 2, 3, 4}, 4, 1, 4);
    tx(w, (uint32_t[]){1, 2, 3, 4}, 4, 2, 4);
    ok(wbuf_begin(w, err), err);
    put(w, 5, 3);
    put(w, 6, 3);
    uint8_t p[PS];
    fill(p, 7, 3);
    ck_assert_int_eq(wbuf_page(w, 7, p, err), LV_ENOMEM);
    char want[64];
    snprintf(want, sizeof want, "bound of %llu bytes", (unsigned long long)bound);
    ck_assert_msg(strstr(err, want) != NULL, "%s", err);
    ok(wbuf_rollback(w, err), err);
    /* Still full for a third four-page transaction; a sync frees the space. */
    ok(wbuf_begin(w, err), err);
    put(w, 1, 4);
    put(w, 2, 4);
    ck_assert_int_eq(wbuf_page(w, 3, p, err), LV_ENOMEM);
    ok(wbuf_rollback(w, err), err);
    ck_assert(sees(w, 1, 1, 2));
    wbuf_dirty d;
    ok(wbuf_dirty_get(w, &d, err), err);
    ok(wbuf_mark_synced(w, &d, 2, 0x8000000000000002ull, err), err);
    wbuf_dirty_free(&d);
    tx(w, (uint32_t[]){1, 2, 3, 4, 5, 6, 7}, 7, 5, 7);
    ck_assert(sees(w, 7, 0, 5));
    wbuf_close(w);
    tu_tmp_remove(path);
}
END_TEST

/* Every allocation failing in turn: an error or success, never a crash, leak or torn buffer. */
START_TEST(test_out_of_memory)
{
    char *path = tu_tmp_path("wbuf");
    char err[LV_ERRLEN];
    int completed = 0;
    for (long fail = 0; fail < 200 && !completed; fail++) {
        unlink(path);
        lv_alloc_fail_after(fail);
        wbuf *w = NULL;
        lv_err rc = wbuf_create(&w, path, PS, 3, 0x8000000000000003ull, 2, 0, 0, err);
        int commits = 0;
        if (rc == LV_OK) {
            uint8_t p[PS];
            for (uint32_t t = 1; t <= 3 && rc == LV_OK; t++) {
                rc = wbuf_begin(w, err);
                for (uint32_t pg = 1; pg <= 40 && rc == LV_OK; pg++) {
                    fill(p, pg, t);
                    rc = wbuf_page(w, pg, p, err);
                }
                if (rc == LV_OK)
                    rc = wbuf_commit(w, 40, err);
                if (rc == LV_OK)
                    commits++;
                else
                    ck_assert_int_eq(wbuf_rollback(w, err), LV_OK);
                if (rc == LV_OK && t == 2) {
                    wbuf_dirty d;
                    rc = wbuf_dirty_get(w, &d, err);
                    if (rc == LV_OK) {
                        rc = wbuf_mark_synced(w, &d, 4, 0x8000000000000004ull, err);
                        if (rc == LV_OK)
                            commits = 0;
                        wbuf_dirty_free(&d);
                    }
                }
            }
            if (rc == LV_OK && commits == 1)
                completed = 1;
            wbuf_close(w);
        }
        lv_alloc_fail_after(-1);
        if (access(path, F_OK) != 0)
            continue;
        /* Whatever happened, the file recovers to whole transactions. */
        wbuf_info info;
        ok(wbuf_open(&w, path, 0, 0, &info, err), err);
        ck_assert_uint_eq(info.dropped_bytes, 0);
        ck_assert_uint_eq(info.dirty_pages, info.txs ? 40 : 0);
        wbuf_close(w);
    }
    ck_assert_msg(completed, "never ran to the end without a failure");
    unlink(path);
    tu_tmp_remove(path);
}
END_TEST

/*
 * The writer and the syncer on two threads: every window shipped, applied in order, ends at the
 * writer's last commit; no commit is lost to a mark_synced that ran during a transaction.
 */
#define TH_TXS   3000
#define TH_PAGES 30

static void *writer_thread(void *arg)
{
    wbuf *w = arg;
    for (uint32_t i = 1; i <= TH_TXS; i++) {
        ck_assert_int_eq(wbuf_begin(w, NULL), LV_OK);
        put(w, i % TH_PAGES + 1, i);
        if (i % 7 == 0) {
            put(w, (i + 3) % TH_PAGES + 1, 0); /* rolled back below */
            ck_assert_int_eq(wbuf_rollback(w, NULL), LV_OK);
            ck_assert_int_eq(wbuf_begin(w, NULL), LV_OK);
            put(w, i % TH_PAGES + 1, i);
        }
        ck_assert_int_eq(wbuf_commit(w, TH_PAGES, NULL), LV_OK);
    }
    return NULL;
}

START_TEST(test_threads)
{
    char *path = tu_tmp_path("wbuf");
    char err[LV_ERRLEN] = "";
    wbuf *w = NULL;
    ok(wbuf_create(&w, path, PS, 0, 0, 0, 0, 0, err), err);
    static uint8_t remote[TH_PAGES + 1][PS];
    memset(remote, 0, sizeof remote);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, writer_thread, w), 0);
    uint64_t txid = 0;
    int running = 1, syncs = 0;
    while (running) {
        running = pthread_tryjoin_np(th, NULL) != 0;
        wbuf_dirty d;
        ok(wbuf_dirty_get(w, &d, err), err);
        for (size_t i = 0; i < d.n; i++) {
            uint32_t got_pgno;
            memcpy(&got_pgno, d.pages + i * PS, 4);
            ck_assert_uint_eq(got_pgno, d.pgnos[i]);
            memcpy(remote[d.pgnos[i]], d.pages + i * PS, PS);
        }
        if (d.txs) {
            ok(wbuf_mark_synced(w, &d, txid + 1, LTX_CHECKSUM_FLAG | (txid + 1), err), err);
            txid++;
            syncs++;
        }
        wbuf_dirty_free(&d);
    }
    for (uint32_t p = 1; p <= TH_PAGES; p++) {
        uint32_t last = TH_TXS; /* the writer's last version of p */
        while (last % TH_PAGES + 1 != p)
            last--;
        uint8_t want[PS];
        fill(want, p, last);
        ck_assert_msg(memcmp(remote[p], want, PS) == 0, "page %u is not version %u", p, last);
    }
    ck_assert_int_gt(syncs, 1);
    wbuf_info info;
    wbuf_get_info(w, &info);
    ck_assert_uint_eq(info.txs, 0);
    wbuf_close(w);
    tu_tmp_remove(path);
}
END_TEST

/* One user of a buffer at a time: a second open or create of the same path is refused. */
START_TEST(test_one_user_at_a_time)
{
    char *path = tu_tmp_path("wbuf");
    char err[LV_ERRLEN] = "";
    wbuf *w = NULL, *w2 = NULL;
    ok(wbuf_create(&w, path, PS, 1, 0, 0, 0, 0, err), err);
    ck_assert_int_eq(wbuf_open(&w2, path, 0, 0, NULL, err), LV_ECONFLICT);
    ck_assert_msg(strstr(err, "in use") != NULL, "%s", err);
    ck_assert_ptr_null(w2);
    ck_assert_int_eq(wbuf_create(&w2, path, PS, 1, 0, 0, 0, 0, err), LV_ECONFLICT);
    wbuf_close(w);
    ok(wbuf_open(&w2, path, 0, 0, NULL, err), err); /* free again once closed */
    wbuf_close(w2);
    char lock[4200];
    snprintf(lock, sizeof lock, "%s.lock", path);
    unlink(lock);
    tu_tmp_remove(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vfs_wbuf");
    TCase *tc = tcase_create("wbuf");
    tcase_add_test(tc, test_transactions_and_rollback);
    tcase_add_test(tc, test_window_latest_wins);
    tcase_add_test(tc, test_shrink);
    tcase_add_test(tc, test_pages_beyond_own_commit);
    tcase_add_test(tc, test_recovery_every_offset);
    tcase_add_test(tc, test_mark_synced);
    tcase_add_test(tc, test_bound);
    tcase_add_test(tc, test_out_of_memory);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_one_user_at_a_time);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
