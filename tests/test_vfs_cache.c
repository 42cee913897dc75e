/* test_vfs_cache: vfs/cache.c, the LRU page cache, against a naive model and under threads. */
#include <pthread.h>
#include <string.h>

#include "alloc.h"
#include "cache.h"
#include "testutil.h"

#define PS 512

static void fill(uint8_t *page, uint32_t pgno, uint64_t txid)
{
    for (int i = 0; i < PS; i += 16) {
        memcpy(page + i, &pgno, 4);
        memcpy(page + i + 4, &txid, 8);
        memcpy(page + i + 12, &i, 4);
    }
}

static int holds(cache *c, uint32_t pgno, uint64_t txid)
{
    uint8_t got[PS], want[PS];
    if (!cache_get(c, pgno, txid, got))
        return 0;
    fill(want, pgno, txid);
    ck_assert_msg(memcmp(got, want, PS) == 0, "page %u@%llu has other bytes", pgno,
                  (unsigned long long)txid);
    return 1;
}

static void put(cache *c, uint32_t pgno, uint64_t txid)
{
    uint8_t p[PS];
    fill(p, pgno, txid);
    cache_put(c, pgno, txid, p);
}

START_TEST(test_versions_are_distinct)
{
    cache *c = cache_new(64 * 1024, PS);
    ck_assert_ptr_nonnull(c);
    put(c, 1, 5);
    put(c, 1, 7);
    ck_assert(holds(c, 1, 5));
    ck_assert(holds(c, 1, 7));
    ck_assert(!holds(c, 1, 6));
    ck_assert(!holds(c, 2, 5));
    cache_stats st;
    cache_get_stats(c, &st);
    ck_assert_int_eq(st.hits, 2);
    ck_assert_int_eq(st.misses, 2);
    ck_assert_int_eq(st.entries, 2);
    ck_assert_int_eq(st.bytes, 2 * PS);
    put(c, 1, 5); /* again: no second copy */
    cache_get_stats(c, &st);
    ck_assert_int_eq(st.entries, 2);
    cache_free(c);
}
END_TEST

/* The least recently *used* goes first: a get refreshes an image. */
START_TEST(test_lru_order)
{
    cache *c = cache_new(4 * (PS + 64), PS); /* room for 4 whatever the overhead is */
    ck_assert_ptr_nonnull(c);
    cache_stats st;
    cache_get_stats(c, &st);
    for (uint32_t p = 1; p <= 4; p++)
        put(c, p, 1);
    cache_get_stats(c, &st);
    ck_assert_int_eq(st.entries, 4);
    ck_assert(holds(c, 1, 1)); /* 1 is now the most recent: 2 is the oldest */
    put(c, 5, 1);
    ck_assert(!holds(c, 2, 1));
    ck_assert(holds(c, 1, 1));
    ck_assert(holds(c, 3, 1));
    ck_assert(holds(c, 4, 1));
    ck_assert(holds(c, 5, 1));
    cache_get_stats(c, &st);
    ck_assert_int_eq(st.evictions, 1);
    ck_assert_int_eq(st.entries, 4);
    cache_free(c);
}
END_TEST

/* Random operations against a naive model: same hits, same misses, bytes bounded. */
START_TEST(test_against_model)
{
    enum { CAP = 37, OPS = 200000 };
    cache *c = cache_new((uint64_t)CAP * (PS + 64), PS);
    ck_assert_ptr_nonnull(c);
    cache_stats st;
    uint32_t model_pg[64];
    uint64_t model_tx[64];
    int n = 0, cap = 0;
    /* the cache's real capacity: fill it and see */
    for (uint32_t p = 1; p <= 1000; p++)
        put(c, p, 0);
    cache_get_stats(c, &st);
    cap = (int)st.entries;
    ck_assert_int_ge(cap, 4);
    ck_assert_int_le(cap, 64);
    ck_assert_int_le(st.bytes, (uint64_t)CAP * (PS + 64));
    cache_free(c);
    c = cache_new((uint64_t)CAP * (PS + 64), PS);

    uint64_t rng = 42;
    for (int op = 0; op < OPS; op++) {
        uint64_t r = tu_rand(&rng);
        uint32_t pgno = 1 + (uint32_t)(r % 60);
        uint64_t txid = 1 + (r >> 32) % 3;
        int at = -1;
        for (int i = 0; i < n; i++)
            if (model_pg[i] == pgno && model_tx[i] == txid)
                at = i;
        int get = (r >> 8) & 1;
        if (get) {
            ck_assert_int_eq(holds(c, pgno, txid), at >= 0);
            if (at < 0)
                continue;
        } else if (at < 0) {
            put(c, pgno, txid);
            if (n == cap) { /* the model evicts its oldest (index 0) */
                memmove(model_pg, model_pg + 1, (size_t)(n - 1) * sizeof model_pg[0]);
                memmove(model_tx, model_tx + 1, (size_t)(n - 1) * sizeof model_tx[0]);
                n--;
            }
            model_pg[n] = pgno;
            model_tx[n] = txid;
            n++;
            continue;
        } else {
            put(c, pgno, txid);
        }
        /* used: move to the newest end */
        memmove(model_pg + at, model_pg + at + 1, (size_t)(n - at - 1) * sizeof model_pg[0]);
        memmove(model_tx + at, model_tx + at + 1, (size_t)(n - at - 1) * sizeof model_tx[0]);
        model_pg[n - 1] = pgno;
        model_tx[n - 1] = txid;
    }
    cache_get_stats(c, &st);
    ck_assert_int_eq(st.entries, (uint64_t)n);
    cache_free(c);
}
END_TEST

static cache *shared;

static void *hammer(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg;
    for (int i = 0; i < 100000; i++) {
        uint64_t r = tu_rand(&rng);
        uint32_t pgno = 1 + (uint32_t)(r % 500);
        uint64_t txid = 1 + (r >> 40) % 4;
        if (!holds(shared, pgno, txid))
            put(shared, pgno, txid);
    }
    return NULL;
}

/* Several threads at once: every hit has exactly the bytes stored for its (pgno, txid). */
START_TEST(test_threads)
{
    shared = cache_new(300 * (PS + 64), PS);
    ck_assert_ptr_nonnull(shared);
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, (void *)(i + 1)), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    cache_stats st;
    cache_get_stats(shared, &st);
    ck_assert_int_eq(st.hits + st.misses, 400000);
    ck_assert_int_gt(st.hits, 0);
    ck_assert_int_gt(st.evictions, 0);
    ck_assert_int_le(st.bytes, 300 * (PS + 64));
    cache_free(shared);
}
END_TEST

/* Out of memory at every allocation: NULL or a working cache, never a crash or a leak. */
START_TEST(test_out_of_memory)
{
    for (long fail = 0; fail < 8; fail++) {
        lv_alloc_fail_after(fail);
        cache *c = cache_new(16 * 1024, PS);
        if (c) {
            put(c, 1, 1); /* may fail to store: then it is simply not there */
            uint8_t out[PS];
            int hit = cache_get(c, 1, 1, out);
            lv_alloc_fail_after(-1);
            put(c, 2, 1);
            ck_assert(holds(c, 2, 1));
            (void)hit;
            cache_free(c);
        }
        lv_alloc_fail_after(-1);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vfs_cache");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, test_versions_are_distinct);
    tcase_add_test(tc, test_lru_order);
    tcase_add_test(tc, test_against_model);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_out_of_memory);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
