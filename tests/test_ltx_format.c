/*
 * test_ltx_format: proves the small pieces of the LTX codec: the 100-byte header and 16-byte
 * trailer encode big-endian at the documented offsets and decode back; every header and trailer
 * rule of the reference implementation is enforced (LV_ECORRUPT with a message) and valid
 * headers pass; the lock page is where SQLite puts it; page checksums equal the sidecars' for the
 * pages of the real databases; the database checksum algebra (XOR fold, flag always set) holds;
 * ltx_db_checksum_fd gives the `ltx checksum` values of the sample databases and skips the lock
 * page; ltx_db_geometry reads page size and count, and rejects what is not a database.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc64.h"
#include "testutil.h"

/* A valid incremental header with every field set, as incr-txid3.ltx has them. */
static ltx_header full_header(void)
{
    ltx_header h = {0};
    h.flags = 0;
    h.page_size = 4096;
    h.commit = 30;
    h.min_txid = 0x0102030405060708ull;
    h.max_txid = 0x0102030405060709ull;
    h.timestamp = 1735689660123ll;
    h.pre_apply_checksum = 0xcd115f8f97105891ull;
    h.wal_offset = 32;
    h.wal_size = 32960;
    h.wal_salt1 = 0x01020304;
    h.wal_salt2 = 0xa0b0c0d0;
    h.node_id = 0x0000000000c0ffeeull;
    return h;
}

/* Asserts that h is refused both by ltx_header_validate and, encoded, by ltx_header_decode. */
static void assert_header_rejected(const ltx_header *h, const char *rule)
{
    char err[LV_ERRLEN] = "";
    ck_assert_msg(ltx_header_validate(h, err) == LV_ECORRUPT, "validate accepted: %s", rule);
    ck_assert_msg(err[0] != '\0', "validate gave no message: %s", rule);

    uint8_t buf[LTX_HEADER_SIZE];
    ltx_header_encode(h, buf);
    ltx_header out;
    err[0] = '\0';
    ck_assert_msg(ltx_header_decode(&out, buf, sizeof buf, err) == LV_ECORRUPT,
                  "decode accepted: %s", rule);
    ck_assert_msg(err[0] != '\0', "decode gave no message: %s", rule);
}

static void assert_header_accepted(const ltx_header *h, const char *what)
{
    char err[LV_ERRLEN] = "";
    ck_assert_msg(ltx_header_validate(h, err) == LV_OK, "validate refused %s: %s", what, err);
    uint8_t buf[LTX_HEADER_SIZE];
    ltx_header_encode(h, buf);
    ltx_header out;
    ck_assert_msg(ltx_header_decode(&out, buf, sizeof buf, err) == LV_OK, "decode refused %s: %s",
                  what, err);
    tu_assert_header_eq(&out, h, what);
}

/* ---- header ------------------------------------------------------------------------------ */

START_TEST(test_header_encodes_big_endian_at_documented_offsets)
{
    ltx_header h = full_header();
    h.flags = LTX_HEADER_FLAG_NO_CHECKSUM;
    h.pre_apply_checksum = 0;
    uint8_t b[LTX_HEADER_SIZE];
    memset(b, 0xee, sizeof b);
    ltx_header_encode(&h, b);
    ck_assert_int_eq(memcmp(b, "LTX1", 4), 0);
    ck_assert_uint_eq(tu_get_be32(b + 4), LTX_HEADER_FLAG_NO_CHECKSUM);
    ck_assert_uint_eq(tu_get_be32(b + 8), 4096);
    ck_assert_uint_eq(tu_get_be32(b + 12), 30);
    ck_assert_uint_eq(tu_get_be64(b + 16), 0x0102030405060708ull);
    ck_assert_uint_eq(tu_get_be64(b + 24), 0x0102030405060709ull);
    ck_assert_uint_eq(tu_get_be64(b + 32), 1735689660123ull);
    ck_assert_uint_eq(tu_get_be64(b + 40), 0);
    ck_assert_uint_eq(tu_get_be64(b + 48), 32);
    ck_assert_uint_eq(tu_get_be64(b + 56), 32960);
    ck_assert_uint_eq(tu_get_be32(b + 64), 0x01020304);
    ck_assert_uint_eq(tu_get_be32(b + 68), 0xa0b0c0d0);
    ck_assert_uint_eq(tu_get_be64(b + 72), 0xc0ffee);
    for (int i = 80; i < LTX_HEADER_SIZE; i++)
        ck_assert_msg(b[i] == 0, "reserved byte %d is %#x", i, b[i]);
}
END_TEST

START_TEST(test_header_round_trips)
{
    ltx_header h = full_header();
    assert_header_accepted(&h, "full incremental header");

    /* negative timestamps are allowed (before 1970); high bits survive */
    h.timestamp = -1;
    h.node_id = 0xffffffffffffffffull;
    h.commit = 0xffffffffu;
    assert_header_accepted(&h, "extreme values");
}
END_TEST

START_TEST(test_header_of_incr_txid3_decodes_to_sidecar_and_reencodes_identically)
{
    json_t *j = tu_sidecar("incr-txid3.ltx");
    ltx_header want;
    tu_jheader(j, &want);
    size_t n;
    uint8_t *file = tu_read_file(tu_ltx("incr-txid3.ltx"), &n);

    ltx_header got;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(ltx_header_decode(&got, file, n, err) == LV_OK, "%s", err);
    tu_assert_header_eq(&got, &want, "incr-txid3.ltx header");
    ck_assert_int_eq(ltx_header_is_snapshot(&got), 0);
    ck_assert_int_eq(ltx_header_no_checksum(&got), 0);

    uint8_t again[LTX_HEADER_SIZE];
    ltx_header_encode(&got, again);
    ck_assert_int_eq(memcmp(again, file, LTX_HEADER_SIZE), 0);
    free(file);
    json_decref(j);
}
END_TEST

START_TEST(test_header_predicates_follow_sidecars)
{
    static const char *const names[] = {"snapshot-txid1.ltx", "incr-txid2.ltx",
                                        "incr-txid2-nochecksum.ltx", "compact-txid1-2.ltx",
                                        "compact-txid2-3.ltx"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        json_t *j = tu_sidecar(names[i]);
        ltx_header h;
        tu_jheader(j, &h);
        json_t *jh = tu_jget(j, "header");
        ck_assert_int_eq(!!ltx_header_is_snapshot(&h), json_is_true(tu_jget(jh, "is_snapshot")));
        ck_assert_int_eq(!!ltx_header_no_checksum(&h), json_is_true(tu_jget(jh, "no_checksum")));
        json_decref(j);
    }
}
END_TEST

START_TEST(test_header_decode_needs_100_bytes)
{
    ltx_header h = full_header(), out;
    uint8_t b[LTX_HEADER_SIZE];
    ltx_header_encode(&h, b);
    char err[LV_ERRLEN] = "";
    ck_assert_int_ne(ltx_header_decode(&out, b, LTX_HEADER_SIZE - 1, err), LV_OK);
    ck_assert_str_ne(err, "");
}
END_TEST

START_TEST(test_header_bad_magic_is_corrupt)
{
    static const char *const magics[] = {"LTX0", "ltx1", "LTX2", "\0\0\0\0", "SQLi"};
    ltx_header h = full_header(), out;
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++) {
        uint8_t b[LTX_HEADER_SIZE];
        ltx_header_encode(&h, b);
        memcpy(b, magics[i], 4);
        char err[LV_ERRLEN] = "";
        ck_assert_int_eq(ltx_header_decode(&out, b, sizeof b, err), LV_ECORRUPT);
        ck_assert_str_ne(err, "");
    }
}
END_TEST

START_TEST(test_header_nonzero_reserved_byte_is_corrupt)
{
    ltx_header h = full_header(), out;
    for (int i = 80; i < LTX_HEADER_SIZE; i++) {
        uint8_t b[LTX_HEADER_SIZE];
        ltx_header_encode(&h, b);
        b[i] = 0x01;
        char err[LV_ERRLEN] = "";
        ck_assert_msg(ltx_header_decode(&out, b, sizeof b, err) == LV_ECORRUPT,
                      "reserved byte %d accepted", i);
        ck_assert_str_ne(err, "");
    }
}
END_TEST

START_TEST(test_header_unknown_flags_rejected)
{
    static const uint32_t bad[] = {0x1, 0x3, 0x4, 0x8, 0x100, 0x80000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ltx_header h = full_header();
        h.flags = bad[i];
        if (h.flags & LTX_HEADER_FLAG_NO_CHECKSUM)
            h.pre_apply_checksum = 0;
        assert_header_rejected(&h, "unknown flag");
    }
}
END_TEST

START_TEST(test_page_size_rules)
{
    static const uint32_t bad[] = {0,        1,    256,  511,   513,    1000,
                                   1024 * 3, 4095, 4097, 65535, 131072, 0x80000000u};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(!ltx_page_size_valid(bad[i]), "page size %u valid", bad[i]);
        ltx_header h = full_header();
        h.page_size = bad[i];
        assert_header_rejected(&h, "page size");
    }
    for (uint32_t ps = 512; ps <= 65536; ps *= 2) {
        ck_assert_msg(ltx_page_size_valid(ps), "page size %u invalid", ps);
        ltx_header h = full_header();
        h.page_size = ps;
        assert_header_accepted(&h, "valid page size");
    }
}
END_TEST

START_TEST(test_txid_rules)
{
    ltx_header h = full_header();
    h.min_txid = 0;
    assert_header_rejected(&h, "min txid 0");
    h.max_txid = 0;
    assert_header_rejected(&h, "min and max txid 0");
    h = full_header();
    h.min_txid = 5;
    h.max_txid = 4;
    assert_header_rejected(&h, "max < min");
    h.max_txid = 5;
    assert_header_accepted(&h, "max == min");
}
END_TEST

START_TEST(test_wal_field_rules)
{
    ltx_header h = full_header();
    h.wal_offset = 0;
    h.wal_size = 0;
    h.wal_salt1 = 0;
    h.wal_salt2 = 0;
    assert_header_accepted(&h, "no WAL fields at all");
    h.wal_offset = 4096;
    h.wal_size = 8192;
    assert_header_accepted(&h, "WAL offset and size, no salt");

    h = full_header();
    h.wal_offset = 0;
    h.wal_size = 0;
    h.wal_salt1 = 1;
    h.wal_salt2 = 0;
    assert_header_rejected(&h, "WAL salt1 without offset");
    h.wal_salt1 = 0;
    h.wal_salt2 = 1;
    assert_header_rejected(&h, "WAL salt2 without offset");

    h = full_header();
    h.wal_offset = 0;
    assert_header_rejected(&h, "WAL size without offset");

    /* Older ltx versions also wanted a WAL size whenever there was an offset; the format-3
     * reference (superfly/ltx 8cb8f8e) dropped that rule, and so do we. */
    h = full_header();
    h.wal_size = 0;
    assert_header_accepted(&h, "WAL offset and salt without size");
    h.wal_salt1 = h.wal_salt2 = 0;
    assert_header_accepted(&h, "WAL offset without size");

    h = full_header();
    h.wal_offset = -32;
    assert_header_rejected(&h, "negative WAL offset");
    h = full_header();
    h.wal_size = -1;
    assert_header_rejected(&h, "negative WAL size");
}
END_TEST

START_TEST(test_pre_apply_rules)
{
    ltx_header h = full_header();
    h.min_txid = 1;
    h.max_txid = 1;
    ck_assert(ltx_header_is_snapshot(&h));
    assert_header_rejected(&h, "snapshot with pre-apply");
    h.pre_apply_checksum = 0;
    assert_header_accepted(&h, "snapshot without pre-apply");

    h = full_header();
    h.pre_apply_checksum = 0;
    assert_header_rejected(&h, "non-snapshot without pre-apply");
    h.pre_apply_checksum = 0x4d115f8f97105891ull;
    assert_header_rejected(&h, "pre-apply without bit 63");
    h.pre_apply_checksum = LTX_CHECKSUM_FLAG;
    assert_header_accepted(&h, "pre-apply of just the flag");

    h = full_header();
    h.flags = LTX_HEADER_FLAG_NO_CHECKSUM;
    assert_header_rejected(&h, "NoChecksum with pre-apply");
    h.pre_apply_checksum = 0;
    assert_header_accepted(&h, "NoChecksum, zero pre-apply");
    h.min_txid = h.max_txid = 1;
    assert_header_accepted(&h, "NoChecksum snapshot");
    h.pre_apply_checksum = LTX_CHECKSUM_FLAG | 1;
    assert_header_rejected(&h, "NoChecksum snapshot with pre-apply");
}
END_TEST

/* ---- trailer ----------------------------------------------------------------------------- */

START_TEST(test_trailer_round_trips_big_endian)
{
    ltx_trailer t = {0x99b99777dc425342ull, 0xd7b6923b747abeb9ull}, out;
    uint8_t b[LTX_TRAILER_SIZE];
    ltx_trailer_encode(&t, b);
    ck_assert_uint_eq(tu_get_be64(b), 0x99b99777dc425342ull);
    ck_assert_uint_eq(tu_get_be64(b + 8), 0xd7b6923b747abeb9ull);
    ltx_trailer_decode(&out, b);
    ck_assert_uint_eq(out.post_apply_checksum, t.post_apply_checksum);
    ck_assert_uint_eq(out.file_checksum, t.file_checksum);
}
END_TEST

START_TEST(test_trailer_of_vectors_decodes_to_sidecar)
{
    static const char *const names[] = {"snapshot-txid1.ltx", "incr-txid2.ltx",
                                        "incr-txid2-nochecksum.ltx", "incr-txid3.ltx"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        json_t *j = tu_sidecar(names[i]);
        size_t n;
        uint8_t *file = tu_read_file(tu_ltx(names[i]), &n);
        ltx_header h;
        ltx_trailer t;
        char err[LV_ERRLEN] = "";
        ck_assert_int_eq(ltx_header_decode(&h, file, n, err), LV_OK);
        ltx_trailer_decode(&t, file + n - LTX_TRAILER_SIZE);
        json_t *jt = tu_jget(j, "trailer");
        ck_assert_uint_eq(t.post_apply_checksum, tu_jhex64(jt, "post_apply_checksum"));
        ck_assert_uint_eq(t.file_checksum, tu_jhex64(jt, "file_checksum"));
        ck_assert_msg(ltx_trailer_validate(&t, &h, err) == LV_OK, "%s: %s", names[i], err);
        free(file);
        json_decref(j);
    }
}
END_TEST

static void assert_trailer(const ltx_trailer *t, const ltx_header *h, lv_err want, const char *what)
{
    char err[LV_ERRLEN] = "";
    lv_err rc = ltx_trailer_validate(t, h, err);
    ck_assert_msg(rc == want, "%s: got %d (%s), want %d", what, rc, err, want);
    if (want != LV_OK)
        ck_assert_msg(err[0] != '\0', "%s: no message", what);
}

START_TEST(test_trailer_rules)
{
    ltx_header h = full_header();
    ltx_header nock = full_header();
    nock.flags = LTX_HEADER_FLAG_NO_CHECKSUM;
    nock.pre_apply_checksum = 0;
    const uint64_t good = 0x99b99777dc425342ull, file = 0xd7b6923b747abeb9ull;

    assert_trailer(&(ltx_trailer){good, file}, &h, LV_OK, "valid");
    assert_trailer(&(ltx_trailer){0, file}, &h, LV_ECORRUPT, "post-apply missing");
    assert_trailer(&(ltx_trailer){good & ~LTX_CHECKSUM_FLAG, file}, &h, LV_ECORRUPT,
                   "post-apply without flag");
    assert_trailer(&(ltx_trailer){good, 0}, &h, LV_ECORRUPT, "file checksum missing");
    assert_trailer(&(ltx_trailer){good, file & ~LTX_CHECKSUM_FLAG}, &h, LV_ECORRUPT,
                   "file checksum without flag");

    assert_trailer(&(ltx_trailer){0, file}, &nock, LV_OK, "NoChecksum, zero post-apply");
    assert_trailer(&(ltx_trailer){good, file}, &nock, LV_ECORRUPT, "NoChecksum with post-apply");
    assert_trailer(&(ltx_trailer){0, 0}, &nock, LV_ECORRUPT, "NoChecksum, file checksum missing");
    assert_trailer(&(ltx_trailer){0, file & ~LTX_CHECKSUM_FLAG}, &nock, LV_ECORRUPT,
                   "NoChecksum, file checksum without flag");
}
END_TEST

/* ---- lock page --------------------------------------------------------------------------- */

START_TEST(test_lock_pgno)
{
    ck_assert_uint_eq(ltx_lock_pgno(4096), 262145);
    ck_assert_uint_eq(ltx_lock_pgno(512), 2097153);
    ck_assert_uint_eq(ltx_lock_pgno(65536), 16385);
    for (uint32_t ps = 512; ps <= 65536; ps *= 2)
        ck_assert_uint_eq(ltx_lock_pgno(ps), (uint32_t)(LTX_PENDING_BYTE / ps) + 1);
}
END_TEST

/* ---- checksums --------------------------------------------------------------------------- */

/* Page checksums of the pages a vector holds, computed from its post-state database. */
static void check_page_checksums_of(const char *vector)
{
    json_t *j = tu_sidecar(vector);
    json_t *post = tu_jget(j, "post_state_db");
    size_t dbn;
    uint8_t *db = tu_read_file(tu_ltx(tu_jstr(post, "file")), &dbn);
    uint32_t ps = (uint32_t)tu_jint(post, "page_size");
    json_t *frames = tu_jget(j, "frames");
    ck_assert_uint_gt(json_array_size(frames), 0);
    for (size_t i = 0; i < json_array_size(frames); i++) {
        json_t *f = json_array_get(frames, i);
        uint32_t pgno = (uint32_t)tu_jint(f, "pgno");
        ck_assert_uint_le((size_t)pgno * ps, dbn);
        const uint8_t *page = db + (size_t)(pgno - 1) * ps;
        uint64_t got = ltx_page_checksum(pgno, page, ps);
        ck_assert_msg(got == tu_jhex64(f, "page_checksum"), "%s page %u: %016llx", vector, pgno,
                      (unsigned long long)got);
        /* and it is what the README says: flag | CRC(be32(pgno) || page) */
        uint8_t be[4];
        tu_put_be32(be, pgno);
        ck_assert_uint_eq(got, LTX_CHECKSUM_FLAG | crc64_update(crc64_update(0, be, 4), page, ps));
    }
    free(db);
    json_decref(j);
}

START_TEST(test_page_checksum_matches_sidecars)
{
    check_page_checksums_of("snapshot-txid1.ltx"); /* every page of db-txid1.db */
    check_page_checksums_of("incr-txid2.ltx");     /* db-txid2.db */
    check_page_checksums_of("incr-txid3.ltx");     /* db-txid3.db */
    check_page_checksums_of("litestream-000000000000000d-000000000000000d.v1.ltx");
}
END_TEST

START_TEST(test_db_checksum_update_algebra)
{
    uint64_t rng = 2024;
    for (int i = 0; i < 10000; i++) {
        uint64_t db = tu_rand(&rng) | LTX_CHECKSUM_FLAG;
        uint64_t p = tu_rand(&rng) | LTX_CHECKSUM_FLAG;
        uint64_t q = tu_rand(&rng) | LTX_CHECKSUM_FLAG;
        uint64_t added = ltx_db_checksum_update(db, 0, p);
        ck_assert(added & LTX_CHECKSUM_FLAG);
        ck_assert_uint_eq(added & ~LTX_CHECKSUM_FLAG, (db ^ p) & ~LTX_CHECKSUM_FLAG);
        ck_assert_uint_eq(ltx_db_checksum_update(added, p, 0), db); /* add then remove */
        uint64_t replaced = ltx_db_checksum_update(db, p, q);
        ck_assert(replaced & LTX_CHECKSUM_FLAG);
        ck_assert_uint_eq(replaced & ~LTX_CHECKSUM_FLAG, (db ^ p ^ q) & ~LTX_CHECKSUM_FLAG);
        ck_assert_uint_eq(ltx_db_checksum_update(replaced, q, p), db); /* and back */
    }
    /* from an empty database, and when everything cancels: still flagged, never 0 */
    ck_assert_uint_eq(ltx_db_checksum_update(0, 0, 0), LTX_CHECKSUM_FLAG);
    uint64_t p = 0xb17e7ed647e6d6beull;
    ck_assert_uint_eq(ltx_db_checksum_update(0, 0, p), p);
    ck_assert_uint_eq(ltx_db_checksum_update(p, p, 0), LTX_CHECKSUM_FLAG);
}
END_TEST

/* The closed form against the page-by-page fold, for small ranges and around the lock page. */
static uint64_t zero_fold(uint32_t first, uint32_t last, uint32_t ps)
{
    static uint8_t zero[65536];
    uint64_t x = 0;
    for (uint64_t p = first; p <= last; p++)
        if (p != ltx_lock_pgno(ps))
            x ^= ltx_page_checksum((uint32_t)p, zero, ps);
    return x;
}

START_TEST(test_zero_pages_checksum_equals_the_page_by_page_fold)
{
    static const uint32_t sizes[] = {512, 4096, 65536};
    for (size_t i = 0; i < 3; i++) {
        uint32_t ps = sizes[i], lock = ltx_lock_pgno(ps);
        const uint32_t ranges[][2] = {{1, 1},
                                      {1, 2},
                                      {1, 3},
                                      {1, 4},
                                      {2, 9},
                                      {7, 31},
                                      {30, 29},
                                      {100, 163},
                                      {lock, lock},
                                      {lock - 1, lock},
                                      {lock - 3, lock + 4},
                                      {lock + 1, lock + 2},
                                      {UINT32_MAX - 5, UINT32_MAX}};
        for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
            uint64_t got = ltx_zero_pages_checksum(ranges[r][0], ranges[r][1], ps);
            uint64_t want = zero_fold(ranges[r][0], ranges[r][1], ps);
            ck_assert_msg((got & ~LTX_CHECKSUM_FLAG) == (want & ~LTX_CHECKSUM_FLAG),
                          "page size %u, pages %u..%u: %016llx, page by page %016llx", ps,
                          ranges[r][0], ranges[r][1], (unsigned long long)got,
                          (unsigned long long)want);
        }
    }
}
END_TEST

START_TEST(test_db_checksum_fold_of_sidecar_pages_equals_ltx_checksum)
{
    /* Folding the snapshot's page checksums from 0 gives db-txid1's `ltx checksum`; replacing
     * incr-txid2's pages gives db-txid2's. */
    json_t *s = tu_sidecar("snapshot-txid1.ltx");
    json_t *frames = tu_jget(s, "frames");
    uint64_t db = 0;
    for (size_t i = 0; i < json_array_size(frames); i++)
        db = ltx_db_checksum_update(db, 0, tu_jhex64(json_array_get(frames, i), "page_checksum"));
    ck_assert_uint_eq(db, tu_jhex64(tu_jget(s, "post_state_db"), "ltx_checksum"));

    json_t *inc = tu_sidecar("incr-txid2.ltx");
    json_t *iframes = tu_jget(inc, "frames");
    for (size_t i = 0; i < json_array_size(iframes); i++) {
        json_t *f = json_array_get(iframes, i);
        uint32_t pgno = (uint32_t)tu_jint(f, "pgno");
        uint64_t old = tu_jhex64(json_array_get(frames, pgno - 1), "page_checksum");
        db = ltx_db_checksum_update(db, old, tu_jhex64(f, "page_checksum"));
    }
    ck_assert_uint_eq(db, tu_jhex64(tu_jget(inc, "trailer"), "post_apply_checksum"));
    json_decref(inc);
    json_decref(s);
}
END_TEST

static uint64_t db_checksum_of(const char *db_name, uint32_t *page_size, uint32_t *page_count)
{
    int fd = tu_open(tu_ltx(db_name), O_RDONLY);
    char err[LV_ERRLEN] = "";
    ck_assert_msg(ltx_db_geometry(fd, page_size, page_count, err) == LV_OK, "%s: %s", db_name, err);
    uint64_t c = 0;
    ck_assert_msg(ltx_db_checksum_fd(fd, *page_size, *page_count, &c, err) == LV_OK, "%s: %s",
                  db_name, err);
    close(fd);
    return c;
}

START_TEST(test_db_checksum_fd_equals_ltx_checksum_of_each_database)
{
    /* each database with the sidecar that states its `ltx checksum` */
    static const char *const vectors[] = {"snapshot-txid1.ltx", "incr-txid2.ltx", "incr-txid3.ltx",
                                          "litestream-000000000000000d-000000000000000d.v1.ltx"};
    static const char *const dbs[] = {"db-txid1.db", "db-txid2.db", "db-txid3.db",
                                      "litestream-database.db"};
    for (size_t i = 0; i < 4; i++) {
        json_t *j = tu_sidecar(vectors[i]);
        json_t *post = tu_jget(j, "post_state_db");
        ck_assert_str_eq(tu_jstr(post, "file"), dbs[i]);
        uint32_t ps, pc;
        uint64_t got = db_checksum_of(dbs[i], &ps, &pc);
        ck_assert_msg(got == tu_jhex64(post, "ltx_checksum"), "%s: %016llx", dbs[i],
                      (unsigned long long)got);
        ck_assert_uint_eq(ps, (uint32_t)tu_jint(post, "page_size"));
        ck_assert_uint_eq(pc, (uint32_t)tu_jint(post, "page_count"));
        json_decref(j);
    }
}
END_TEST

START_TEST(test_db_checksum_fd_of_a_prefix_and_past_the_end)
{
    int fd = tu_open(tu_ltx("db-txid1.db"), O_RDONLY);
    size_t n;
    uint8_t *db = tu_read_file(tu_ltx("db-txid1.db"), &n);
    uint32_t pages = (uint32_t)(n / 4096);
    char err[LV_ERRLEN] = "";
    uint64_t c = 0, want = 0;
    for (uint32_t pgno = 1; pgno <= 5; pgno++)
        want =
            ltx_db_checksum_update(want, 0, ltx_page_checksum(pgno, db + (pgno - 1) * 4096, 4096));
    ck_assert_int_eq(ltx_db_checksum_fd(fd, 4096, 5, &c, err), LV_OK);
    ck_assert_uint_eq(c, want);

    err[0] = '\0';
    ck_assert_int_eq(ltx_db_checksum_fd(fd, 4096, pages + 1, &c, err), LV_EIO);
    ck_assert_str_ne(err, "");
    close(fd);
    free(db);
}
END_TEST

START_TEST(test_db_checksum_fd_skips_the_lock_page)
{
    /* A sparse 64 KiB-page database that reaches past the lock byte at 1 GiB: page 16385 holds
     * it and must not count. The expected value is built with crc64_combine, without reading
     * the gigabyte of zero pages. */
    const uint32_t ps = 65536, lock = ltx_lock_pgno(ps), pages = lock + 1;
    char *path = tu_tmp_path("sparse.db");
    int fd = tu_open(path, O_RDWR | O_CREAT | O_TRUNC);
    uint8_t *page = malloc(ps);
    ck_assert_ptr_nonnull(page);
    memset(page, 0xa5, ps);
    ck_assert_int_eq(pwrite(fd, page, ps, (off_t)(lock - 1) * ps), (ssize_t)ps);
    memset(page, 0x5a, ps);
    ck_assert_int_eq(pwrite(fd, page, ps, (off_t)(pages - 1) * ps), (ssize_t)ps);

    uint8_t *zero = calloc(1, ps);
    ck_assert_ptr_nonnull(zero);
    uint64_t zero_crc = crc64_update(0, zero, ps), op = crc64_combine_op(ps);
    uint64_t want = 0;
    for (uint32_t pgno = 1; pgno < lock; pgno++) {
        uint8_t be[4];
        tu_put_be32(be, pgno);
        uint64_t pc = LTX_CHECKSUM_FLAG | crc64_combine_with(crc64_update(0, be, 4), zero_crc, op);
        want = ltx_db_checksum_update(want, 0, pc);
    }
    want = ltx_db_checksum_update(want, 0, ltx_page_checksum(pages, page, ps));

    uint64_t got = 0;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(ltx_db_checksum_fd(fd, ps, pages, &got, err) == LV_OK, "%s", err);
    ck_assert_uint_eq(got, want);
    close(fd);
    free(zero);
    free(page);
    tu_tmp_remove(path);
}
END_TEST

/* ---- database geometry ------------------------------------------------------------------- */

START_TEST(test_db_geometry_of_sample_databases)
{
    static const char *const vectors[] = {"snapshot-txid1.ltx", "incr-txid3.ltx",
                                          "litestream-000000000000000d-000000000000000d.v1.ltx"};
    for (size_t i = 0; i < 3; i++) {
        json_t *j = tu_sidecar(vectors[i]);
        json_t *post = tu_jget(j, "post_state_db");
        int fd = tu_open(tu_ltx(tu_jstr(post, "file")), O_RDONLY);
        uint32_t ps = 0, pc = 0;
        char err[LV_ERRLEN] = "";
        ck_assert_msg(ltx_db_geometry(fd, &ps, &pc, err) == LV_OK, "%s", err);
        ck_assert_uint_eq(ps, (uint32_t)tu_jint(post, "page_size"));
        ck_assert_uint_eq(pc, (uint32_t)tu_jint(post, "page_count"));
        close(fd);
        json_decref(j);
    }
}
END_TEST

/* Writes a file of `pages` pages whose first 100 bytes are a SQLite header with `ps_field` at
 * offset 16; returns its fd (open read-write) and path (caller removes). */
static int make_db(char **path, uint16_t ps_field, size_t file_size)
{
    *path = tu_tmp_path("geometry.db");
    uint8_t *b = calloc(1, file_size ? file_size : 1);
    ck_assert_ptr_nonnull(b);
    if (file_size >= 100) {
        memcpy(b, "SQLite format 3", 16);
        tu_put_be16(b + 16, ps_field);
    }
    tu_write_file(*path, b, file_size);
    free(b);
    return tu_open(*path, O_RDWR);
}

START_TEST(test_db_geometry_page_size_field_1_means_65536)
{
    char *path;
    int fd = make_db(&path, 1, 3 * 65536);
    uint32_t ps = 0, pc = 0;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(ltx_db_geometry(fd, &ps, &pc, err) == LV_OK, "%s", err);
    ck_assert_uint_eq(ps, 65536);
    ck_assert_uint_eq(pc, 3);
    close(fd);
    tu_tmp_remove(path);

    fd = make_db(&path, 512, 7 * 512);
    ck_assert_msg(ltx_db_geometry(fd, &ps, &pc, err) == LV_OK, "%s", err);
    ck_assert_uint_eq(ps, 512);
    ck_assert_uint_eq(pc, 7);
    close(fd);
    tu_tmp_remove(path);
}
END_TEST

START_TEST(test_db_geometry_rejects_non_databases)
{
    uint32_t ps, pc;
    char err[LV_ERRLEN];
    char *path;
    int fd;

    /* an LTX file is not a database */
    fd = tu_open(tu_ltx("snapshot-txid1.ltx"), O_RDONLY);
    err[0] = '\0';
    ck_assert_int_eq(ltx_db_geometry(fd, &ps, &pc, err), LV_ECORRUPT);
    ck_assert_str_ne(err, "");
    close(fd);

    /* a size that is not a multiple of the page size */
    fd = make_db(&path, 4096, 3 * 4096 + 100);
    err[0] = '\0';
    ck_assert_int_eq(ltx_db_geometry(fd, &ps, &pc, err), LV_ECORRUPT);
    ck_assert_str_ne(err, "");
    close(fd);
    tu_tmp_remove(path);

    /* page sizes SQLite cannot have */
    static const uint16_t bad[] = {0, 2, 256, 1000, 4097};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fd = make_db(&path, bad[i], 8192);
        err[0] = '\0';
        ck_assert_msg(ltx_db_geometry(fd, &ps, &pc, err) == LV_ECORRUPT, "page size field %u",
                      bad[i]);
        ck_assert_str_ne(err, "");
        close(fd);
        tu_tmp_remove(path);
    }

    /* shorter than the SQLite header */
    fd = make_db(&path, 0, 50);
    err[0] = '\0';
    ck_assert_int_ne(ltx_db_geometry(fd, &ps, &pc, err), LV_OK);
    ck_assert_str_ne(err, "");
    close(fd);
    tu_tmp_remove(path);
}
END_TEST

static Suite *format_suite(void)
{
    Suite *s = suite_create("ltx_format");
    TCase *tc = tcase_create("header");
    tcase_add_test(tc, test_header_encodes_big_endian_at_documented_offsets);
    tcase_add_test(tc, test_header_round_trips);
    tcase_add_test(tc, test_header_of_incr_txid3_decodes_to_sidecar_and_reencodes_identically);
    tcase_add_test(tc, test_header_predicates_follow_sidecars);
    tcase_add_test(tc, test_header_decode_needs_100_bytes);
    tcase_add_test(tc, test_header_bad_magic_is_corrupt);
    tcase_add_test(tc, test_header_nonzero_reserved_byte_is_corrupt);
    tcase_add_test(tc, test_header_unknown_flags_rejected);
    tcase_add_test(tc, test_page_size_rules);
    tcase_add_test(tc, test_txid_rules);
    tcase_add_test(tc, test_wal_field_rules);
    tcase_add_test(tc, test_pre_apply_rules);
    suite_add_tcase(s, tc);

    tc = tcase_create("trailer");
    tcase_add_test(tc, test_trailer_round_trips_big_endian);
    tcase_add_test(tc, test_trailer_of_vectors_decodes_to_sidecar);
    tcase_add_test(tc, test_trailer_rules);
    suite_add_tcase(s, tc);

    tc = tcase_create("checksums");
    tcase_add_test(tc, test_lock_pgno);
    tcase_add_test(tc, test_page_checksum_matches_sidecars);
    tcase_add_test(tc, test_db_checksum_update_algebra);
    tcase_add_test(tc, test_zero_pages_checksum_equals_the_page_by_page_fold);
    tcase_add_test(tc, test_db_checksum_fold_of_sidecar_pages_equals_ltx_checksum);
    tcase_add_test(tc, test_db_checksum_fd_equals_ltx_checksum_of_each_database);
    tcase_add_test(tc, test_db_checksum_fd_of_a_prefix_and_past_the_end);
    suite_add_tcase(s, tc);

    tc = tcase_create("gigabyte");
    tcase_set_timeout(tc, 300); /* reads a 1 GiB sparse file */
    tcase_add_test(tc, test_db_checksum_fd_skips_the_lock_page);
    suite_add_tcase(s, tc);

    tc = tcase_create("geometry");
    tcase_add_test(tc, test_db_geometry_of_sample_databases);
    tcase_add_test(tc, test_db_geometry_page_size_field_1_means_65536);
    tcase_add_test(tc, test_db_geometry_rejects_non_databases);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(format_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
