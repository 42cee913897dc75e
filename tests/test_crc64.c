/*
 * test_crc64: proves that crc64 computes CRC-64/ISO as Go's hash/crc64 does (the standard check
 * value, and a bit-at-a-time reference for every length and alignment), that crc64_update chains
 * like one pass over the whole input, and that crc64_combine / crc64_combine_op /
 * crc64_combine_with give CRC(a||b) from CRC(a), CRC(b) and len(b) for short, long, odd and
 * empty pieces.
 */
#include <stdlib.h>
#include <string.h>

#include "crc64.h"
#include "testutil.h"

#define POLY 0xD800000000000000ull

/* The textbook definition, one bit at a time: nothing shared with the table-driven code. */
static uint64_t crc_ref(const uint8_t *p, size_t n)
{
    uint64_t c = ~0ull;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
    }
    return ~c;
}

/* n pseudo-random bytes (caller frees), the same for the same seed. */
static uint8_t *random_bytes(size_t n, uint64_t seed)
{
    uint8_t *b = malloc(n + 16);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < n + 16; i++)
        b[i] = (uint8_t)(tu_rand(&seed) >> 56);
    return b;
}

START_TEST(test_check_value_123456789)
{
    ck_assert_uint_eq(crc64_update(0, "123456789", 9), 0xb90956c775a41001ull);
    ck_assert_uint_eq(crc_ref((const uint8_t *)"123456789", 9), 0xb90956c775a41001ull);
}
END_TEST

START_TEST(test_empty_input_leaves_crc_unchanged)
{
    ck_assert_uint_eq(crc64_update(0, "", 0), 0);
    ck_assert_uint_eq(crc64_update(0, NULL, 0), 0);
    uint64_t c = crc64_update(0, "abc", 3);
    ck_assert_uint_eq(crc64_update(c, "", 0), c);
}
END_TEST

START_TEST(test_matches_bitwise_reference_every_length_and_alignment)
{
    uint8_t *buf = random_bytes(600, 42);
    for (size_t align = 0; align < 8; align++)
        for (size_t n = 0; n <= 520; n++)
            ck_assert_msg(crc64_update(0, buf + align, n) == crc_ref(buf + align, n),
                          "length %zu at alignment %zu", n, align);
    free(buf);
}
END_TEST

START_TEST(test_matches_bitwise_reference_large_unaligned)
{
    size_t n = 65536 + 13;
    uint8_t *buf = random_bytes(n, 7);
    for (size_t align = 0; align < 8; align += 3)
        ck_assert_msg(crc64_update(0, buf + align, n - 8) == crc_ref(buf + align, n - 8),
                      "alignment %zu", align);
    free(buf);
}
END_TEST

START_TEST(test_update_chaining_equals_one_shot_over_random_splits)
{
    size_t n = 10007;
    uint8_t *buf = random_bytes(n, 99);
    uint64_t whole = crc64_update(0, buf, n);
    ck_assert_uint_eq(whole, crc_ref(buf, n));
    uint64_t rng = 12345;
    for (int round = 0; round < 500; round++) {
        uint64_t c = 0;
        size_t pos = 0;
        while (pos < n) {
            /* pieces of 0..~300 bytes, sometimes empty, sometimes the rest in one go */
            size_t piece = (size_t)(tu_rand(&rng) % 301);
            if (tu_rand(&rng) % 17 == 0)
                piece = n - pos;
            if (piece > n - pos)
                piece = n - pos;
            c = crc64_update(c, buf + pos, piece);
            pos += piece;
        }
        ck_assert_msg(c == whole, "round %d", round);
    }
    free(buf);
}
END_TEST

static const size_t combine_lengths[] = {0,   1,    2,    3,    7,    8,     9,     15,    16,
                                         17,  31,   63,   64,   65,   255,   256,   257,   1000,
                                         999, 4095, 4096, 4097, 4100, 65535, 65536, 65537, 100003};
#define N_LENGTHS (sizeof combine_lengths / sizeof combine_lengths[0])

START_TEST(test_combine_equals_direct_crc_for_many_lengths)
{
    size_t max = 100003;
    uint8_t *buf = random_bytes(2 * max + 8, 5);
    for (size_t i = 0; i < N_LENGTHS; i++) {
        for (size_t j = 0; j < N_LENGTHS; j++) {
            size_t la = combine_lengths[i], lb = combine_lengths[j];
            if (la > 4097 && lb > 4097 && (i + j) % 3)
                continue;               /* enough large-by-large pairs */
            const uint8_t *a = buf + 1; /* odd addresses: unaligned buffers */
            const uint8_t *b = buf + 1 + la;
            uint64_t ca = crc64_update(0, a, la), cb = crc64_update(0, b, lb);
            uint64_t direct = crc64_update(0, a, la + lb);
            ck_assert_msg(crc64_combine(ca, cb, lb) == direct, "combine %zu + %zu", la, lb);
            uint64_t op = crc64_combine_op(lb);
            ck_assert_msg(crc64_combine_with(ca, cb, op) == direct, "combine_with %zu + %zu", la,
                          lb);
        }
    }
    free(buf);
}
END_TEST

START_TEST(test_combine_op_reused_for_many_pieces_of_one_length)
{
    /* The page-checksum use: one operator, many equal pieces folded into a running CRC. */
    size_t piece = 4096 + 10, count = 40;
    uint8_t *buf = random_bytes(piece * count + 3, 77);
    const uint8_t *base = buf + 3;
    uint64_t op = crc64_combine_op(piece);
    uint64_t running = 0;
    for (size_t k = 0; k < count; k++) {
        running = crc64_combine_with(running, crc64_update(0, base + k * piece, piece), op);
        ck_assert_msg(running == crc64_update(0, base, (k + 1) * piece), "after piece %zu", k);
    }
    free(buf);
}
END_TEST

START_TEST(test_combine_with_empty_pieces)
{
    uint64_t c = crc64_update(0, "hello, world", 12);
    /* the CRC of nothing is 0 in this convention, on either side */
    ck_assert_uint_eq(crc64_combine(c, 0, 0), c);
    ck_assert_uint_eq(crc64_combine(0, c, 12), c);
    ck_assert_uint_eq(crc64_combine_with(c, 0, crc64_combine_op(0)), c);
    ck_assert_uint_eq(crc64_combine(0, 0, 0), 0);
}
END_TEST

START_TEST(test_combine_of_long_zero_runs)
{
    /* Lengths whose operator needs many squarings: 1 MiB and 16 MiB + 1 of zero bytes. */
    static const size_t lens[] = {1u << 20, (16u << 20) + 1};
    for (size_t i = 0; i < 2; i++) {
        size_t n = lens[i];
        uint8_t *z = calloc(1, n);
        ck_assert_ptr_nonnull(z);
        uint64_t ca = crc64_update(0, "xyz", 3);
        uint64_t direct = crc64_update(ca, z, n);
        ck_assert_uint_eq(crc64_combine(ca, crc64_update(0, z, n), n), direct);
        free(z);
    }
}
END_TEST

static Suite *crc64_suite(void)
{
    Suite *s = suite_create("crc64");
    TCase *tc = tcase_create("crc64");
    tcase_add_test(tc, test_check_value_123456789);
    tcase_add_test(tc, test_empty_input_leaves_crc_unchanged);
    tcase_add_test(tc, test_matches_bitwise_reference_every_length_and_alignment);
    tcase_add_test(tc, test_matches_bitwise_reference_large_unaligned);
    tcase_add_test(tc, test_update_chaining_equals_one_shot_over_random_splits);
    tcase_add_test(tc, test_combine_equals_direct_crc_for_many_lengths);
    tcase_add_test(tc, test_combine_op_reused_for_many_pieces_of_one_length);
    tcase_add_test(tc, test_combine_with_empty_pieces);
    tcase_add_test(tc, test_combine_of_long_zero_runs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(crc64_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
