/*
 * test_ltx_bad: proves the codec is robust against damaged and hostile input. No damaged file
 * ever verifies: every single-bit flip in the first 200 bytes, a flipped byte at every position,
 * truncation at every length and trailing bytes all fail with a message (ASan/UBSan builds
 * catch any memory error on the way). Bogus varints, index lengths, compressed sizes, page
 * numbers and magic are refused by ltx_verify, ltx_index_locate, ltx_index_parse and
 * ltx_frame_decode, without allocating what a bogus size asks for. Well-checksummed files that
 * break a rule of the format (made with an independent writer) are refused by the rule itself.
 * Out of memory at every allocation of ltx_verify, ltx_encode_db, ltx_compact and ltx_apply
 * returns LV_ENOMEM, and LeakSanitizer checks nothing leaks.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lz4.h>

#include "alloc.h"
#include "testutil.h"

typedef unsigned long long ull;

/* ---- helpers ----------------------------------------------------------------------------- */

static lv_err verify_bytes(const uint8_t *data, size_t n, char *err)
{
    ltx_mem_reader r = tu_reader(data, n);
    err[0] = '\0';
    return ltx_verify(ltx_mem_read, &r, NULL, NULL, NULL, err);
}

/* Fails unless data is refused by ltx_verify with a message. */
static void assert_refused(const uint8_t *data, size_t n, const char *what)
{
    char err[LV_ERRLEN];
    lv_err rc = verify_bytes(data, n, err);
    ck_assert_msg(rc != LV_OK, "%s: verified ok", what);
    ck_assert_msg(err[0] != '\0', "%s: error %d without a message", what, rc);
}

/* Which part of a vector a byte offset falls in, from its sidecar. */
static void describe_offset(const json_t *j, size_t off, char *out, size_t cap)
{
    size_t size = (size_t)tu_jint(j, "size_bytes");
    size_t index_off = (size_t)tu_jint(tu_jget(j, "page_index"), "offset");
    if (off < LTX_HEADER_SIZE) {
        snprintf(out, cap, "header byte %zu", off);
        return;
    }
    json_t *frames = tu_jget(j, "frames");
    for (size_t i = 0; i < json_array_size(frames); i++) {
        json_t *f = json_array_get(frames, i);
        size_t fo = (size_t)tu_jint(f, "offset"), fs = (size_t)tu_jint(f, "frame_size");
        if (off >= fo && off < fo + fs) {
            size_t in = off - fo;
            snprintf(out, cap, "page %lld frame, %s byte %zu", tu_jint(f, "pgno"),
                     in < 6    ? "page header"
                     : in < 10 ? "size prefix"
                               : "LZ4 payload",
                     in < 6    ? in
                     : in < 10 ? in - 6
                               : in - 10);
            return;
        }
    }
    if (off < index_off)
        snprintf(out, cap, "end-of-pages header byte %zu", off - (index_off - 6));
    else if (off < size - 24)
        snprintf(out, cap, "page index byte %zu", off - index_off);
    else if (off < size - 16)
        snprintf(out, cap, "index length byte %zu", off - (size - 24));
    else if (off < size - 8)
        snprintf(out, cap, "post-apply byte %zu", off - (size - 16));
    else
        snprintf(out, cap, "file checksum byte %zu", off - (size - 8));
}

/*
 * Whether flipping `mask` at `off` leaves the file's content as it was: the file checksum covers
 * the *decompressed* pages, and LZ4 data is not unique (a match offset can be changed to point
 * at other bytes that happen to be equal), so such a flip damages nothing and must verify.
 * Decided with liblz4 directly, not with the code under test: the flip must fall in an LZ4
 * block's payload, and the block must still decompress to exactly the same page.
 */
static int flip_is_harmless(const json_t *j, const uint8_t *file, size_t off, uint8_t mask)
{
    uint32_t ps = (uint32_t)tu_jint(tu_jget(j, "header"), "page_size");
    json_t *frames = tu_jget(j, "frames");
    for (size_t i = 0; i < json_array_size(frames); i++) {
        json_t *f = json_array_get(frames, i);
        size_t fo = (size_t)tu_jint(f, "offset"), fs = (size_t)tu_jint(f, "frame_size");
        if (off < fo || off >= fo + fs)
            continue;
        if (strcmp(tu_jstr(f, "encoding"), "lz4-block") != 0 || off < fo + 10)
            return 0;
        size_t csize = fs - 10;
        char *orig = malloc(ps), *mod = malloc(ps);
        uint8_t *block = malloc(csize);
        ck_assert(orig && mod && block);
        memcpy(block, file + fo + 10, csize);
        int a = LZ4_decompress_safe((const char *)block, orig, (int)csize, (int)ps);
        block[off - fo - 10] ^= mask;
        int b = LZ4_decompress_safe((const char *)block, mod, (int)csize, (int)ps);
        int same = a == (int)ps && b == (int)ps && memcmp(orig, mod, ps) == 0;
        free(orig);
        free(mod);
        free(block);
        return same;
    }
    return 0;
}

/*
 * Flips `mask` into every `stride`-th byte from `start` to `end` of a vector and verifies each
 * result. Every flip that damages the content must be refused; the list of any that verified
 * is the failure message. (Flips that leave the content intact, see flip_is_harmless, verify.)
 */
static void flip_and_verify(const char *name, size_t start, size_t end, size_t stride,
                            const uint8_t *masks, size_t nmasks)
{
    json_t *j = tu_sidecar(name);
    size_t n;
    uint8_t *f = tu_read_file(tu_ltx(name), &n);
    if (end > n)
        end = n;
    char report[4096] = "";
    size_t passed = 0, tried = 0, harmless = 0;
    for (size_t off = start; off < end; off += stride) {
        for (size_t m = 0; m < nmasks; m++) {
            char err[LV_ERRLEN];
            f[off] ^= masks[m];
            lv_err rc = verify_bytes(f, n, err);
            f[off] ^= masks[m];
            tried++;
            if (rc == LV_OK && flip_is_harmless(j, f, off, masks[m])) {
                harmless++;
            } else if (rc == LV_OK) {
                char where[128];
                describe_offset(j, off, where, sizeof where);
                size_t len = strlen(report);
                if (passed++ < 20)
                    snprintf(report + len, sizeof report - len, "\n  offset %zu (%s) ^ 0x%02x", off,
                             where, masks[m]);
            } else {
                ck_assert_msg(err[0] != '\0', "%s: flip at %zu ^ %#x: error %d, no message", name,
                              off, masks[m], rc);
            }
        }
    }
    ck_assert_msg(passed == 0, "%s: %zu of %zu damaged files verified ok:%s", name, passed, tried,
                  report);
    if (harmless)
        printf("%s: %zu of %zu flips changed LZ4 data without changing any page, and verified\n",
               name, harmless, tried);
    free(f);
    json_decref(j);
}

/* ---- flips ------------------------------------------------------------------------------- */

static const char *const flip_vectors[] = {"snapshot-txid1.ltx", "incr-txid3.ltx",
                                           "incr-txid2.ltx"};

START_TEST(test_every_bit_flip_in_first_200_bytes_is_refused)
{
    static const uint8_t bits[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80};
    flip_and_verify(flip_vectors[_i], 0, 200, 1, bits, 8);
}
END_TEST

START_TEST(test_every_byte_flip_is_refused)
{
    const char *name = flip_vectors[_i];
    static const uint8_t masks[] = {0xff, 0x01};
    if (strcmp(name, "snapshot-txid1.ltx") == 0)
        flip_and_verify(name, 0, (size_t)-1, 7, masks, 1);
    else
        flip_and_verify(name, 0, (size_t)-1, 1, masks, 2);
}
END_TEST

/* ---- truncation and extension ------------------------------------------------------------ */

START_TEST(test_truncation_at_every_length_is_refused)
{
    const char *name = flip_vectors[1 + _i]; /* the two incremental files */
    size_t n;
    uint8_t *f = tu_read_file(tu_ltx(name), &n);
    for (size_t len = 0; len < n; len++) {
        /* a private copy of exactly len bytes, so ASan sees any read past the end */
        uint8_t *cut = malloc(len ? len : 1);
        ck_assert_ptr_nonnull(cut);
        memcpy(cut, f, len);
        char what[64];
        snprintf(what, sizeof what, "%s cut to %zu bytes", name, len);
        assert_refused(cut, len, what);
        free(cut);
    }
    free(f);
}
END_TEST

START_TEST(test_truncation_at_section_boundaries_of_snapshot_is_refused)
{
    const char *name = "snapshot-txid1.ltx";
    json_t *j = tu_sidecar(name);
    size_t n;
    uint8_t *f = tu_read_file(tu_ltx(name), &n);
    size_t cuts[512], k = 0;
    static const size_t fixed[] = {0, 1, 4, 8, 50, 99, 100, 101, 105, 106, 109, 110};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        cuts[k++] = fixed[i];
    json_t *frames = tu_jget(j, "frames");
    for (size_t i = 0; i < json_array_size(frames); i++) {
        json_t *fr = json_array_get(frames, i);
        size_t o = (size_t)tu_jint(fr, "offset"), s = (size_t)tu_jint(fr, "frame_size");
        size_t rel[] = {0, 1, 5, 6, 9, 10, 11, s / 2, s - 1};
        for (size_t r = 0; r < sizeof rel / sizeof rel[0]; r++)
            cuts[k++] = o + rel[r];
    }
    size_t io = (size_t)tu_jint(tu_jget(j, "page_index"), "offset");
    size_t tail[] = {io - 6, io - 5, io - 1, io,     io + 1, io + 2, n - 25, n - 24,
                     n - 23, n - 17, n - 16, n - 15, n - 9,  n - 8,  n - 7,  n - 1};
    for (size_t r = 0; r < sizeof tail / sizeof tail[0]; r++)
        cuts[k++] = tail[r];
    ck_assert_uint_le(k, 512);
    for (size_t i = 0; i < k; i++) {
        ck_assert_uint_lt(cuts[i], n);
        uint8_t *cut = malloc(cuts[i] ? cuts[i] : 1);
        ck_assert_ptr_nonnull(cut);
        memcpy(cut, f, cuts[i]);
        char what[64];
        snprintf(what, sizeof what, "%s cut to %zu bytes", name, cuts[i]);
        assert_refused(cut, cuts[i], what);
        free(cut);
    }
    free(f);
    json_decref(j);
}
END_TEST

START_TEST(test_bytes_after_the_trailer_are_refused)
{
    size_t n;
    uint8_t *f = tu_read_file(tu_ltx("incr-txid2.ltx"), &n);
    uint8_t *longer = calloc(1, n + 4096);
    ck_assert_ptr_nonnull(longer);
    memcpy(longer, f, n);
    static const size_t extra[] = {1, 8, 16, 24, 4096};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        assert_refused(longer, n + extra[i], "trailing bytes");
    /* two whole files back to back */
    memcpy(longer + n, f, n);
    assert_refused(longer, 2 * n, "two files");
    free(longer);
    free(f);
}
END_TEST

START_TEST(test_wrong_magic_and_empty_input_are_refused)
{
    size_t n;
    uint8_t *f = tu_read_file(tu_ltx("incr-txid3.ltx"), &n);
    char err[LV_ERRLEN];
    static const char *const magics[] = {"LTX0", "XTL1", "ltx1", "\0\0\0\0"};
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++) {
        memcpy(f, magics[i], 4);
        ck_assert_int_eq(verify_bytes(f, n, err), LV_ECORRUPT);
        ck_assert_str_ne(err, "");
    }
    ck_assert_int_ne(verify_bytes(f, 0, err), LV_OK);
    ck_assert_str_ne(err, "");
    /* a SQLite database is not an LTX file */
    size_t dn;
    uint8_t *db = tu_read_file(tu_ltx("db-txid1.db"), &dn);
    ck_assert_int_eq(verify_bytes(db, dn, err), LV_ECORRUPT);
    ck_assert_str_ne(err, "");
    free(db);
    free(f);
}
END_TEST

/* ---- the page index: locate -------------------------------------------------------------- */

START_TEST(test_index_locate_rejects_bogus_lengths)
{
    size_t n;
    uint8_t *f = tu_read_file(tu_ltx("incr-txid2.ltx"), &n);
    uint8_t tail[LTX_TAIL_SIZE];
    memcpy(tail, f + n - LTX_TAIL_SIZE, LTX_TAIL_SIZE);
    uint64_t real = tu_get_be64(tail);
    uint64_t off, size;
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(ltx_index_locate(tail, n, &off, &size, NULL, err), LV_OK);
    ck_assert_uint_eq(size, real + LTX_INDEX_SIZE_FIELD);

    /* 0 (the index holds at least its terminating zero), past the start of the file, into
     * the header or its end-of-pages marker, and absurdly large */
    const uint64_t room = n - LTX_TAIL_SIZE; /* bytes before the length field */
    const uint64_t bad[] = {0,
                            room + 1,
                            room,
                            room - LTX_HEADER_SIZE,
                            room - LTX_HEADER_SIZE - LTX_PAGE_HEADER_SIZE + 1,
                            n,
                            0x7fffffffffffffffull,
                            0x8000000000000000ull,
                            0xffffffffffffffffull,
                            0xfffffffffffffff0ull};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_put_be64(tail, bad[i]);
        err[0] = '\0';
        lv_err rc = ltx_index_locate(tail, n, &off, &size, NULL, err);
        ck_assert_msg(rc == LV_ECORRUPT, "index length %llu: got %d", (ull)bad[i], rc);
        ck_assert_str_ne(err, "");
    }

    /* a file too small to hold a header, an end marker, an index and a trailer */
    tu_put_be64(tail, 1);
    static const uint64_t tiny[] = {0, 1, LTX_TAIL_SIZE, LTX_HEADER_SIZE,
                                    LTX_HEADER_SIZE + LTX_TAIL_SIZE};
    for (size_t i = 0; i < sizeof tiny / sizeof tiny[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(ltx_index_locate(tail, tiny[i], &off, &size, NULL, err) == LV_ECORRUPT,
                      "file size %llu", (ull)tiny[i]);
        ck_assert_str_ne(err, "");
    }
    free(f);
}
END_TEST

/* ---- the page index: parse --------------------------------------------------------------- */

/* An index buffer: the given varint bytes, then a length field (len_field, or their size). */
typedef struct ibuf {
    uint8_t b[512];
    size_t n;
} ibuf;

static void ibuf_var(ibuf *x, uint64_t v)
{
    x->n += tu_put_uvarint(x->b + x->n, v);
}

static void ibuf_entry(ibuf *x, uint64_t pgno, uint64_t off, uint64_t size)
{
    ibuf_var(x, pgno);
    ibuf_var(x, off);
    ibuf_var(x, size);
}

static void ibuf_end(ibuf *x, int64_t len_field)
{
    uint64_t len = len_field < 0 ? x->n : (uint64_t)len_field;
    tu_put_be64(x->b + x->n, len);
    x->n += 8;
}

/* A page block of incr-txid3's shape: frames from 100, the index at 2000. */
#define IDX_OFF 2000u

static lv_err parse(const ibuf *x, const ltx_header *h, char *err)
{
    ltx_page_index idx;
    idx.entries = (ltx_index_entry *)&idx; /* garbage, to see it emptied on failure */
    idx.n = 12345;
    err[0] = '\0';
    lv_err rc = ltx_index_parse(x->b, x->n, IDX_OFF, h, &idx, err);
    if (rc == LV_OK) {
        ltx_index_free(&idx);
    } else {
        ck_assert_ptr_null(idx.entries);
        ck_assert_uint_eq(idx.n, 0);
    }
    return rc;
}

static void assert_parse_refused(const ibuf *x, const ltx_header *h, const char *what)
{
    char err[LV_ERRLEN];
    lv_err rc = parse(x, h, err);
    ck_assert_msg(rc == LV_ECORRUPT, "%s: got %d (%s)", what, rc, err);
    ck_assert_msg(err[0] != '\0', "%s: no message", what);
}

static ltx_header idx_header(uint32_t commit)
{
    ltx_header h = {0};
    h.page_size = 4096;
    h.commit = commit;
    h.min_txid = h.max_txid = 2;
    h.pre_apply_checksum = LTX_CHECKSUM_FLAG | 1;
    return h;
}

START_TEST(test_index_parse_accepts_well_formed_index)
{
    ltx_header h = idx_header(30);
    ibuf x = {0};
    ibuf_entry(&x, 1, 100, 300);
    ibuf_entry(&x, 7, 400, 1000);
    ibuf_entry(&x, 30, 1400, IDX_OFF - 6 - 1400); /* up to the end-of-pages marker */
    ibuf_var(&x, 0);
    ibuf_end(&x, -1);
    ltx_page_index idx;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(ltx_index_parse(x.b, x.n, IDX_OFF, &h, &idx, err) == LV_OK, "%s", err);
    ck_assert_uint_eq(idx.n, 3);
    ck_assert_uint_eq(idx.offset, IDX_OFF);
    ck_assert_uint_eq(idx.size, x.n);
    ck_assert_uint_eq(idx.entries[2].pgno, 30);
    ck_assert_uint_eq(idx.entries[2].offset, 1400);
    ck_assert_uint_eq(idx.entries[2].size, IDX_OFF - 6 - 1400);
    ltx_index_free(&idx);

    /* an empty index (a file with no pages) */
    ibuf e = {0};
    ibuf_var(&e, 0);
    ibuf_end(&e, -1);
    ck_assert_msg(ltx_index_parse(e.b, e.n, IDX_OFF, &h, &idx, err) == LV_OK, "%s", err);
    ck_assert_uint_eq(idx.n, 0);
    ltx_index_free(&idx);
}
END_TEST

START_TEST(test_index_parse_rejects_bogus_varints)
{
    ltx_header h = idx_header(30);
    ibuf x;

    x = (ibuf){0}; /* an 11-byte varint */
    memset(x.b, 0x80, 10);
    x.b[10] = 0x01;
    x.n = 11;
    ibuf_var(&x, 100);
    ibuf_var(&x, 300);
    ibuf_var(&x, 0);
    ibuf_end(&x, -1);
    assert_parse_refused(&x, &h, "11-byte varint");

    x = (ibuf){0}; /* a 10-byte varint that overflows 64 bits */
    memset(x.b, 0xff, 9);
    x.b[9] = 0x02;
    x.n = 10;
    ibuf_var(&x, 100);
    ibuf_var(&x, 300);
    ibuf_var(&x, 0);
    ibuf_end(&x, -1);
    assert_parse_refused(&x, &h, "varint overflow");

    x = (ibuf){0}; /* a varint cut off by the length field */
    ibuf_entry(&x, 1, 100, 300);
    x.b[x.n++] = 0x81;
    ibuf_end(&x, -1);
    assert_parse_refused(&x, &h, "unterminated varint");

    x = (ibuf){0}; /* an entry cut short */
    ibuf_var(&x, 1);
    ibuf_var(&x, 100);
    ibuf_end(&x, -1);
    assert_parse_refused(&x, &h, "entry cut short");

    x = (ibuf){0}; /* no terminating zero */
    ibuf_entry(&x, 1, 100, 300);
    ibuf_end(&x, -1);
    assert_parse_refused(&x, &h, "no terminating zero");

    x = (ibuf){0}; /* bytes after the terminating zero */
    ibuf_entry(&x, 1, 100, 300);
    ibuf_var(&x, 0);
    ibuf_var(&x, 7);
    ibuf_end(&x, -1);
    assert_parse_refused(&x, &h, "bytes after the zero");

    x = (ibuf){0}; /* an entry for page 0 is a terminator followed by garbage */
    ibuf_entry(&x, 0, 100, 300);
    ibuf_var(&x, 0);
    ibuf_end(&x, -1);
    assert_parse_refused(&x, &h, "page 0");

    for (int i = 0; i < 6; i++) {
        x = (ibuf){0}; /* a length field that disagrees with the bytes before it */
        ibuf_entry(&x, 1, 100, 300);
        ibuf_entry(&x, 2, 400, 300);
        ibuf_var(&x, 0);
        const int64_t real = (int64_t)x.n;
        const int64_t wrong[] = {0, 1, real - 1, real + 1, real + 8, 0x7fffffffffffffffll};
        ibuf_end(&x, wrong[i]);
        assert_parse_refused(&x, &h, "length field");
    }

    /* buffers too short for the length field */
    char err[LV_ERRLEN];
    ltx_page_index idx;
    uint8_t tiny[8] = {0};
    for (size_t n = 0; n <= 8; n++) {
        err[0] = '\0';
        ck_assert_msg(ltx_index_parse(tiny, n, IDX_OFF, &h, &idx, err) == LV_ECORRUPT, "n=%zu", n);
        ck_assert_str_ne(err, "");
    }
}
END_TEST

START_TEST(test_index_parse_rejects_bad_entries)
{
    ltx_header h = idx_header(30);
    struct {
        const char *what;
        uint64_t e[3][3]; /* up to three (pgno, offset, size); pgno 0 ends the list */
    } cases[] = {
        {"pgnos descending", {{2, 100, 300}, {1, 400, 300}}},
        {"duplicate pgno", {{2, 100, 300}, {2, 400, 300}}},
        {"pgno beyond commit", {{1, 100, 300}, {31, 400, 300}}},
        {"pgno beyond u32", {{1, 100, 300}, {0x100000001ull, 400, 300}}},
        {"frame inside the header", {{1, 99, 300}}},
        {"frame at offset 0", {{1, 0, 300}}},
        {"frame smaller than a page header plus a byte", {{1, 100, 6}}},
        {"frame of size 0", {{1, 100, 0}}},
        {"frames overlapping", {{1, 100, 300}, {2, 399, 300}}},
        {"frames out of file order", {{1, 400, 300}, {2, 100, 300}}},
        {"frame into the end-of-pages marker", {{1, 100, IDX_OFF - 100 - 5}}},
        {"frame into the index", {{1, 100, IDX_OFF}}},
        {"frame offset beyond the file", {{1, 0x8000000000000000ull, 300}}},
        {"frame size beyond u32", {{1, 100, 0x100000000ull + 300}}},
        {"huge frame size", {{1, 100, 0xfffffff0ull}}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ibuf x = {0};
        for (size_t i = 0; i < 3 && cases[c].e[i][0]; i++)
            ibuf_entry(&x, cases[c].e[i][0], cases[c].e[i][1], cases[c].e[i][2]);
        ibuf_var(&x, 0);
        ibuf_end(&x, -1);
        assert_parse_refused(&x, &h, cases[c].what);
    }

    /* the lock page, on a database large enough to have one */
    ltx_header big = idx_header(0xffffffffu);
    uint32_t lock = ltx_lock_pgno(big.page_size);
    ibuf x = {0};
    ibuf_entry(&x, lock - 1, 100, 300);
    ibuf_entry(&x, lock, 400, 300);
    ibuf_var(&x, 0);
    ibuf_end(&x, -1);
    assert_parse_refused(&x, &big, "lock page");
    /* ... but the pages around it are fine */
    x = (ibuf){0};
    ibuf_entry(&x, lock - 1, 100, 300);
    ibuf_entry(&x, lock + 1, 400, 300);
    ibuf_var(&x, 0);
    ibuf_end(&x, -1);
    char err[LV_ERRLEN];
    ck_assert_msg(parse(&x, &big, err) == LV_OK, "%s", err);

    /* without a header, the header-dependent checks are skipped */
    x = (ibuf){0};
    ibuf_entry(&x, 1, 100, 300);
    ibuf_entry(&x, 31, 400, 300);
    ibuf_var(&x, 0);
    ibuf_end(&x, -1);
    ck_assert_msg(parse(&x, NULL, err) == LV_OK, "%s", err);
    assert_parse_refused(&x, &h, "pgno beyond commit, with the header");
}
END_TEST

/* ---- single frames ----------------------------------------------------------------------- */

/* A copy of one frame of a vector, by its sidecar entry; caller frees. */
static uint8_t *frame_of(const char *name, size_t frame_no, size_t *n, uint32_t *pgno)
{
    json_t *j = tu_sidecar(name);
    json_t *fr = json_array_get(tu_jget(j, "frames"), frame_no);
    ck_assert_ptr_nonnull(fr);
    size_t fs;
    uint8_t *f = tu_read_file(tu_ltx(name), &fs);
    size_t off = (size_t)tu_jint(fr, "offset");
    *n = (size_t)tu_jint(fr, "frame_size");
    *pgno = (uint32_t)tu_jint(fr, "pgno");
    uint8_t *out = malloc(*n + 64);
    ck_assert_ptr_nonnull(out);
    memset(out, 0, *n + 64);
    memcpy(out, f + off, *n);
    free(f);
    json_decref(j);
    return out;
}

/* Expects LV_ECORRUPT, or LV_ECHECKSUM where a checksum inside the frame is what catches it. */
static void assert_frame_refused_as(const uint8_t *frame, size_t n, uint32_t ps, uint32_t expect,
                                    int checksum_ok, const char *what)
{
    uint8_t *page = malloc(ps);
    ck_assert_ptr_nonnull(page);
    char err[LV_ERRLEN] = "";
    uint32_t pgno;
    lv_err rc = ltx_frame_decode(frame, n, ps, expect, page, &pgno, err);
    ck_assert_msg(rc == LV_ECORRUPT || (checksum_ok && rc == LV_ECHECKSUM), "%s: got %d (%s)", what,
                  rc, err);
    ck_assert_msg(err[0] != '\0', "%s: no message", what);
    free(page);
}

static void assert_frame_refused(const uint8_t *frame, size_t n, uint32_t ps, uint32_t expect,
                                 const char *what)
{
    assert_frame_refused_as(frame, n, ps, expect, 0, what);
}

START_TEST(test_frame_decode_rejects_bad_lz4_block_frames)
{
    size_t n;
    uint32_t pgno;
    uint8_t *fr = frame_of("incr-txid2.ltx", 0, &n, &pgno);
    uint8_t page[4096];
    char err[LV_ERRLEN] = "";
    ck_assert_msg(ltx_frame_decode(fr, n, 4096, pgno, page, NULL, err) == LV_OK, "%s", err);

    uint8_t *x = malloc(n + 64);
    ck_assert_ptr_nonnull(x);
    uint32_t csize = tu_get_be32(fr + 6);
    static const uint32_t sizes[] = {0, 1, 0xfffffff0u, 0xffffffffu, 0x80000000u};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        memcpy(x, fr, n);
        tu_put_be32(x + 6, sizes[i]);
        assert_frame_refused(x, n, 4096, pgno, "bogus size prefix");
    }
    /* the size prefix must use up the frame exactly, in both directions */
    memcpy(x, fr, n);
    tu_put_be32(x + 6, csize - 1);
    assert_frame_refused(x, n, 4096, pgno, "size prefix one short");
    tu_put_be32(x + 6, csize + 1);
    assert_frame_refused(x, n, 4096, pgno, "size prefix one long");
    x[n] = 0;
    assert_frame_refused(x, n + 1, 4096, pgno, "size prefix one long, with a byte to spare");
    memcpy(x, fr, n);
    assert_frame_refused(x, n + 1, 4096, pgno, "a byte too many");
    assert_frame_refused(x, n - 1, 4096, pgno, "a byte too few");
    static const size_t short_n[] = {0, 1, 5, 6, 9, 10, 11};
    for (size_t i = 0; i < sizeof short_n / sizeof short_n[0]; i++)
        assert_frame_refused(x, short_n[i], 4096, 0, "tiny frame");

    /* decompressing to other than exactly one page */
    assert_frame_refused(fr, n, 8192, pgno, "page size larger than the data");
    assert_frame_refused(fr, n, 2048, pgno, "page size smaller than the data");

    /* page headers that are not allowed */
    static const uint16_t flags[] = {0x0002, 0x0003, 0x8001, 0xffff};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        memcpy(x, fr, n);
        tu_put_be16(x + 4, flags[i]);
        assert_frame_refused(x, n, 4096, 0, "unknown page flags");
    }
    memcpy(x, fr, n);
    tu_put_be32(x, 0);
    assert_frame_refused(x, n, 4096, 0, "pgno 0");

    /* garbage instead of LZ4 data */
    memcpy(x, fr, n);
    memset(x + 10, 0xff, n - 10);
    assert_frame_refused(x, n, 4096, pgno, "garbage payload");
    free(x);
    free(fr);
}
END_TEST

START_TEST(test_frame_decode_rejects_bad_lz4_frame_frames)
{
    /* the older encoding: page flags 0 and one LZ4 frame with a content checksum */
    size_t n;
    uint32_t pgno;
    uint8_t *fr = frame_of("snapshot-txid1.v3-lz4frame.ltx", 2, &n, &pgno);
    uint8_t page[4096];
    char err[LV_ERRLEN] = "";
    ck_assert_uint_eq(tu_get_be32(fr + 6), 0x04224d18); /* the LZ4 frame magic, little-endian */
    ck_assert_msg(ltx_frame_decode(fr, n, 4096, pgno, page, NULL, err) == LV_OK, "%s", err);

    uint8_t *x = malloc(n + 64);
    ck_assert_ptr_nonnull(x);
    memcpy(x, fr, n);
    x[6] ^= 0xff;
    assert_frame_refused(x, n, 4096, pgno, "bad LZ4 frame magic");
    memcpy(x, fr, n);
    x[n - 1] ^= 0x01;
    assert_frame_refused_as(x, n, 4096, pgno, 1, "bad content checksum");
    memcpy(x, fr, n);
    x[n / 2] ^= 0x20; /* in the data: the content checksum catches what LZ4 does not */
    assert_frame_refused_as(x, n, 4096, pgno, 1, "payload flip");
    assert_frame_refused(fr, n - 1, 4096, pgno, "frame cut short");
    assert_frame_refused(fr, n - 4, 4096, pgno, "content checksum missing");
    memcpy(x, fr, n);
    x[n] = 0;
    assert_frame_refused(x, n + 1, 4096, pgno, "a byte after the frame");
    assert_frame_refused(fr, n, 8192, pgno, "page size larger than the data");
    assert_frame_refused(fr, n, 2048, pgno, "page size smaller than the data");
    free(x);
    free(fr);
}
END_TEST

/* ---- allocation bounds ------------------------------------------------------------------- */

static size_t g_max_alloc;

static void *track_malloc(size_t n)
{
    if (n > g_max_alloc)
        g_max_alloc = n;
    return malloc(n);
}

static void *track_realloc(void *p, size_t n)
{
    if (n > g_max_alloc)
        g_max_alloc = n;
    return realloc(p, n);
}

static const lv_allocator tracking = {track_malloc, track_realloc, free};

/* Everything lib/ may allocate for one 4 KiB-page file: buffers, never a bogus size. */
#define ALLOC_BOUND (4u << 20)

START_TEST(test_absurd_compressed_size_is_refused_without_allocating_it)
{
    size_t n;
    uint8_t *f = tu_read_file(tu_ltx("incr-txid2.ltx"), &n);
    static const uint32_t sizes[] = {0xfffffff0u, 0x7fffffffu, 0x10000000u, 0};
    lv_alloc_set(&tracking);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        tu_put_be32(f + LTX_HEADER_SIZE + LTX_PAGE_HEADER_SIZE, sizes[i]);
        g_max_alloc = 0;
        assert_refused(f, n, "absurd compressed size");
        ck_assert_msg(g_max_alloc < ALLOC_BOUND, "size %#x: allocated %zu bytes", sizes[i],
                      g_max_alloc);
    }
    lv_alloc_set(NULL);
    free(f);
}
END_TEST

/* ---- files that break a rule, with good checksums ---------------------------------------- */

static ltx_header rule_header(uint32_t commit, int snapshot)
{
    ltx_header h = {0};
    h.page_size = 512;
    h.commit = commit;
    h.min_txid = h.max_txid = snapshot ? 1 : 9;
    h.timestamp = 77;
    h.pre_apply_checksum = snapshot ? 0 : LTX_CHECKSUM_FLAG | 0xabc;
    return h;
}

/* Crafts a file with pages filled from their pgnos; post-apply is the fold of their checksums
 * (right for a snapshot; any flagged value does for an incremental file). */
static uint8_t *craft(const ltx_header *h, const uint32_t *pgnos, size_t n, size_t *size)
{
    uint8_t *pages = malloc(n * h->page_size + 1);
    ck_assert_ptr_nonnull(pages);
    uint64_t fold = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t b = 0; b < h->page_size; b++)
            pages[i * h->page_size + b] = (uint8_t)(pgnos[i] + b / 7);
        fold = ltx_db_checksum_update(
            fold, 0, ltx_page_checksum(pgnos[i], pages + i * h->page_size, h->page_size));
    }
    uint8_t *f = tu_craft_ltx(h, pgnos, pages, n, fold, size);
    free(pages);
    return f;
}

static void check_crafted(const ltx_header *h, const uint32_t *pgnos, size_t n, int ok,
                          const char *what)
{
    size_t size;
    uint8_t *f = craft(h, pgnos, n, &size);
    char err[LV_ERRLEN];
    lv_err rc = verify_bytes(f, size, err);
    if (ok) {
        ck_assert_msg(rc == LV_OK, "%s: %s", what, err);
    } else {
        ck_assert_msg(rc == LV_ECORRUPT || rc == LV_ECHECKSUM, "%s: got %d (%s)", what, rc, err);
        ck_assert_msg(err[0] != '\0', "%s: no message", what);
    }
    free(f);
}

START_TEST(test_crafted_files_that_break_page_rules_are_refused)
{
    ltx_header inc = rule_header(10, 0), snap = rule_header(3, 1);
    ltx_header huge = rule_header(0xffffffffu, 0);
    check_crafted(&inc, (uint32_t[]){1, 5, 10}, 3, 1, "valid incremental (independent writer)");
    check_crafted(&snap, (uint32_t[]){1, 2, 3}, 3, 1, "valid snapshot (independent writer)");
    check_crafted(&huge, (uint32_t[]){1, 5, 100000}, 3, 1, "commit 0xffffffff, non-snapshot");
    check_crafted(&inc, (uint32_t[]){1, 11}, 2, 0, "page beyond commit");
    check_crafted(&inc, (uint32_t[]){3, 2}, 2, 0, "pages descending");
    check_crafted(&inc, (uint32_t[]){2, 2}, 2, 0, "duplicate page");
    check_crafted(&inc, (uint32_t[]){0}, 1, 0, "page 0");
    check_crafted(&snap, (uint32_t[]){1, 3}, 2, 0, "snapshot missing page 2");
    check_crafted(&snap, (uint32_t[]){1, 2}, 2, 0, "snapshot missing its last page");
    check_crafted(&snap, (uint32_t[]){1, 2, 3, 4}, 4, 0, "snapshot page beyond commit");
    ltx_header lock = rule_header(0xffffffffu, 0);
    lock.page_size = 65536;
    uint32_t lp = ltx_lock_pgno(lock.page_size);
    check_crafted(&lock, (uint32_t[]){lp - 1, lp + 1}, 2, 1, "around the lock page");
    check_crafted(&lock, (uint32_t[]){lp}, 1, 0, "the lock page");
}
END_TEST

START_TEST(test_crafted_snapshot_with_wrong_post_apply_is_refused)
{
    ltx_header h = rule_header(2, 1);
    uint8_t pages[1024];
    memset(pages, 3, sizeof pages);
    size_t size;
    uint8_t *f = tu_craft_ltx(&h, (uint32_t[]){1, 2}, pages, 2, LTX_CHECKSUM_FLAG | 42, &size);
    char err[LV_ERRLEN];
    ck_assert_int_eq(verify_bytes(f, size, err), LV_ECHECKSUM);
    ck_assert_str_ne(err, "");
    free(f);
}
END_TEST

/* Patches a copy of a vector, fixes its file checksum, and expects refusal. */
static void patch_resign_refused(const char *name, size_t off, const uint8_t *bytes, size_t n,
                                 const char *what)
{
    size_t size;
    uint8_t *f = tu_read_file(tu_ltx(name), &size);
    memcpy(f + off, bytes, n);
    tu_resign_ltx(f, size);
    assert_refused(f, size, what);
    free(f);
}

START_TEST(test_well_checksummed_inconsistencies_are_refused)
{
    json_t *j = tu_sidecar("incr-txid3.ltx");
    size_t size = (size_t)tu_jint(j, "size_bytes");
    size_t io = (size_t)tu_jint(tu_jget(j, "page_index"), "offset");
    json_t *f1 = json_array_get(tu_jget(j, "frames"), 1); /* page 2 */
    size_t f1_off = (size_t)tu_jint(f1, "offset");
    json_t *e0 = json_array_get(tu_jget(tu_jget(j, "page_index"), "entries"), 0);
    uint8_t b[16];
    /* where the first index entry's size varint and the second entry start */
    size_t e0_size_at = io + tu_put_uvarint(b, (uint64_t)tu_jint(e0, "pgno")) +
                        tu_put_uvarint(b, (uint64_t)tu_jint(e0, "offset"));
    size_t e1_at = e0_size_at + tu_put_uvarint(b, (uint64_t)tu_jint(e0, "size"));
    ck_assert_int_lt(tu_jint(f1, "pgno") + 1, 0x80); /* patched below as a one-byte varint */

    /* sanity: resigning an unchanged file gives back the same, valid file */
    {
        size_t n;
        uint8_t *f = tu_read_file(tu_ltx("incr-txid3.ltx"), &n);
        uint8_t *g = malloc(n);
        ck_assert_ptr_nonnull(g);
        memcpy(g, f, n);
        tu_resign_ltx(g, n);
        ck_assert_int_eq(memcmp(f, g, n), 0);
        free(g);
        free(f);
    }

    tu_put_be32(b, 29); /* commit below the last page (30) */
    patch_resign_refused("incr-txid3.ltx", 12, b, 4, "commit below a stored page");
    tu_put_be32(b, 3); /* page 2's frame says page 3: the index says 2 */
    patch_resign_refused("incr-txid3.ltx", f1_off, b, 4, "frame pgno disagrees with index");
    tu_put_be32(b, 1); /* page 2's frame says page 1: out of order */
    patch_resign_refused("incr-txid3.ltx", f1_off, b, 4, "frame pgno repeats");
    b[0] = (uint8_t)(tu_jint(f1, "pgno") + 1); /* the second index entry names the next page */
    patch_resign_refused("incr-txid3.ltx", e1_at, b, 1, "index pgno disagrees with frame");
    size_t n0;
    uint8_t *v = tu_read_file(tu_ltx("incr-txid3.ltx"), &n0);
    b[0] = v[e0_size_at] ^ 0x01; /* the first entry's size, off by one, same varint length */
    free(v);
    patch_resign_refused("incr-txid3.ltx", e0_size_at, b, 1, "index size disagrees with frame");
    tu_put_be64(b, 0); /* post-apply zero on a checksummed file */
    patch_resign_refused("incr-txid3.ltx", size - 16, b, 8, "post-apply missing");
    tu_put_be64(b, 0x1234); /* post-apply without the flag */
    patch_resign_refused("incr-txid3.ltx", size - 16, b, 8, "post-apply unflagged");
    tu_put_be64(b, (uint64_t)tu_jint(tu_jget(j, "page_index"), "varint_bytes") + 1);
    patch_resign_refused("incr-txid3.ltx", size - 24, b, 8, "index length off by one");
    tu_put_be64(b, 0xffffffffffffff00ull);
    patch_resign_refused("incr-txid3.ltx", size - 24, b, 8, "huge index length");
    tu_put_be64(b, 0);
    patch_resign_refused("incr-txid3.ltx", size - 24, b, 8, "index length 0");
    json_decref(j);
}
END_TEST

START_TEST(test_unresigned_file_checksum_is_checked)
{
    size_t n;
    uint8_t *f = tu_read_file(tu_ltx("incr-txid2-nochecksum.ltx"), &n);
    f[n - 1] ^= 0x10;
    char err[LV_ERRLEN];
    ck_assert_int_eq(verify_bytes(f, n, err), LV_ECHECKSUM);
    ck_assert_str_ne(err, "");
    free(f);
}
END_TEST

/* ---- out of memory ----------------------------------------------------------------------- */

/*
 * Runs op with the k-th allocation failing, k = 0, 1, 2, ... until it succeeds; every failing
 * run must return LV_ENOMEM with a message. LeakSanitizer (in the sanitizer build) reports any
 * allocation a failing run forgot to free when the forked test process exits.
 */
static void oom_loop(lv_err (*op)(void *ctx, char *err), void *ctx, const char *what)
{
    long k;
    for (k = 0; k < 100000; k++) {
        char err[LV_ERRLEN] = "";
        lv_alloc_fail_after(k);
        lv_err rc = op(ctx, err);
        lv_alloc_fail_after(-1);
        if (rc == LV_OK)
            break;
        ck_assert_msg(rc == LV_ENOMEM, "%s: allocation %ld failing gave %d (%s)", what, k, rc, err);
        ck_assert_msg(err[0] != '\0', "%s: allocation %ld failing: no message", what, k);
    }
    ck_assert_msg(k > 0, "%s: never allocates, so out-of-memory was not exercised", what);
    ck_assert_msg(k < 100000, "%s: never succeeded", what);
}

typedef struct blob {
    uint8_t *data;
    size_t size;
} blob;

static lv_err op_verify(void *ctx, char *err)
{
    blob *b = ctx;
    return verify_bytes(b->data, b->size, err);
}

START_TEST(test_verify_out_of_memory)
{
    blob b;
    b.data = tu_read_file(tu_ltx("incr-txid3.ltx"), &b.size);
    oom_loop(op_verify, &b, "ltx_verify");
    free(b.data);
}
END_TEST

static lv_err op_encode_db(void *ctx, char *err)
{
    int fd = *(int *)ctx;
    tu_buf buf = {0};
    lv_err rc = ltx_encode_db(fd, 5, tu_buf_write, &buf, NULL, NULL, err);
    tu_buf_free(&buf);
    return rc;
}

START_TEST(test_encode_db_out_of_memory)
{
    int fd = tu_open(tu_ltx("db-txid1.db"), O_RDONLY);
    oom_loop(op_encode_db, &fd, "ltx_encode_db");
    close(fd);
}
END_TEST

typedef struct compact_ctx {
    blob a, b;
} compact_ctx;

static lv_err op_compact(void *ctx, char *err)
{
    compact_ctx *c = ctx;
    ltx_mem_reader ra = tu_reader(c->a.data, c->a.size), rb = tu_reader(c->b.data, c->b.size);
    ltx_source src[2] = {{ltx_mem_read, &ra, "a"}, {ltx_mem_read, &rb, "b"}};
    tu_buf buf = {0};
    lv_err rc = ltx_compact(src, 2, tu_buf_write, &buf, NULL, NULL, err);
    tu_buf_free(&buf);
    return rc;
}

START_TEST(test_compact_out_of_memory)
{
    compact_ctx c;
    c.a.data = tu_read_file(tu_ltx("incr-txid2.ltx"), &c.a.size);
    c.b.data = tu_read_file(tu_ltx("incr-txid3.ltx"), &c.b.size);
    oom_loop(op_compact, &c, "ltx_compact");
    free(c.a.data);
    free(c.b.data);
}
END_TEST

typedef struct apply_ctx {
    blob ltx, db;
    char *path;
    uint64_t cks; /* the database's checksum */
} apply_ctx;

static lv_err op_apply(void *ctx, char *err)
{
    apply_ctx *a = ctx;
    tu_write_file(a->path, a->db.data, a->db.size);
    int fd = tu_open(a->path, O_RDWR);
    uint64_t cks = a->cks;
    ltx_mem_reader r = tu_reader(a->ltx.data, a->ltx.size);
    lv_err rc = ltx_apply(fd, ltx_mem_read, &r, &cks, NULL, err);
    close(fd);
    return rc;
}

START_TEST(test_apply_out_of_memory)
{
    apply_ctx a;
    a.ltx.data = tu_read_file(tu_ltx("incr-txid3.ltx"), &a.ltx.size);
    a.db.data = tu_read_file(tu_ltx("db-txid2.db"), &a.db.size);
    a.path = tu_tmp_path("oom.db");
    json_t *j = tu_sidecar("incr-txid3.ltx");
    json_t *pre = tu_jget(j, "pre_state_db");
    ck_assert_str_eq(tu_jstr(pre, "file"), "db-txid2.db");
    a.cks = tu_jhex64(pre, "ltx_checksum");
    json_decref(j);
    oom_loop(op_apply, &a, "ltx_apply");
    free(a.ltx.data);
    free(a.db.data);
    tu_tmp_remove(a.path);
}
END_TEST

static lv_err op_index_parse(void *ctx, char *err)
{
    blob *b = ctx;
    uint64_t off, size;
    lv_err rc =
        ltx_index_locate(b->data + b->size - LTX_TAIL_SIZE, b->size, &off, &size, NULL, err);
    if (rc)
        return rc;
    ltx_page_index idx;
    rc = ltx_index_parse(b->data + off, (size_t)size, off, NULL, &idx, err);
    if (rc == LV_OK)
        ltx_index_free(&idx);
    return rc;
}

START_TEST(test_index_parse_out_of_memory)
{
    blob b;
    b.data = tu_read_file(tu_ltx("snapshot-txid1.ltx"), &b.size);
    oom_loop(op_index_parse, &b, "ltx_index_parse");
    free(b.data);
}
END_TEST

static Suite *bad_suite(void)
{
    Suite *s = suite_create("ltx_bad");
    TCase *tc = tcase_create("damage");
    tcase_set_timeout(tc, 600); /* thousands of verifies; slow under the sanitizers */
    tcase_add_loop_test(tc, test_every_bit_flip_in_first_200_bytes_is_refused, 0, 3);
    tcase_add_loop_test(tc, test_every_byte_flip_is_refused, 0, 3);
    tcase_add_loop_test(tc, test_truncation_at_every_length_is_refused, 0, 2);
    tcase_add_test(tc, test_truncation_at_section_boundaries_of_snapshot_is_refused);
    tcase_add_test(tc, test_bytes_after_the_trailer_are_refused);
    tcase_add_test(tc, test_wrong_magic_and_empty_input_are_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("index");
    tcase_add_test(tc, test_index_locate_rejects_bogus_lengths);
    tcase_add_test(tc, test_index_parse_accepts_well_formed_index);
    tcase_add_test(tc, test_index_parse_rejects_bogus_varints);
    tcase_add_test(tc, test_index_parse_rejects_bad_entries);
    suite_add_tcase(s, tc);

    tc = tcase_create("frames");
    tcase_add_test(tc, test_frame_decode_rejects_bad_lz4_block_frames);
    tcase_add_test(tc, test_frame_decode_rejects_bad_lz4_frame_frames);
    tcase_add_test(tc, test_absurd_compressed_size_is_refused_without_allocating_it);
    suite_add_tcase(s, tc);

    tc = tcase_create("rules");
    tcase_add_test(tc, test_crafted_files_that_break_page_rules_are_refused);
    tcase_add_test(tc, test_crafted_snapshot_with_wrong_post_apply_is_refused);
    tcase_add_test(tc, test_well_checksummed_inconsistencies_are_refused);
    tcase_add_test(tc, test_unresigned_file_checksum_is_checked);
    suite_add_tcase(s, tc);

    tc = tcase_create("oom");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_verify_out_of_memory);
    tcase_add_test(tc, test_encode_db_out_of_memory);
    tcase_add_test(tc, test_compact_out_of_memory);
    tcase_add_test(tc, test_apply_out_of_memory);
    tcase_add_test(tc, test_index_parse_out_of_memory);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(bad_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
