/*
 * test_ltx_vectors: proves the codec agrees with every vector the reference tool made
 * (../shared/testdata/ltx, each with a .ltx.json sidecar):
 *   - the streaming decoder reads every format-3 file (LZ4 blocks and the older LZ4 frames) and
 *     reports the sidecar's header, frames (pgno, offset, flags, sizes), page bytes (SHA-256 and
 *     the post-state database), page checksums and trailer, and ends exactly at the file's end;
 *   - the random-access path (ltx_index_locate, ltx_index_parse, ltx_index_find,
 *     ltx_frame_decode) finds the same index and pages from the file's bytes alone;
 *   - ltx_verify accepts them all, and refuses the format-1 and format-2 files cleanly;
 *   - every `ltx apply` run recorded in the sidecars gives the same result with ltx_apply.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static const char *const v3_vectors[] = {
    "snapshot-txid1.ltx",
    "incr-txid2.ltx",
    "incr-txid2-nochecksum.ltx",
    "incr-txid3.ltx",
    "compact-txid1-2.ltx",
    "compact-txid2-3.ltx",
    "snapshot-txid1.v3-lz4frame.ltx",
};
#define N_V3 (int)(sizeof v3_vectors / sizeof v3_vectors[0])

static const char *const old_vectors[] = {
    "snapshot-txid1.v2.ltx",
    "litestream-000000000000000d-000000000000000d.v1.ltx",
};
#define N_OLD (int)(sizeof old_vectors / sizeof old_vectors[0])

/* One vector, its sidecar and the database its pages come from. */
typedef struct vec {
    const char *name;
    json_t *j;
    uint8_t *file;
    size_t size;
    uint8_t *db; /* the post-state database */
    size_t db_size;
    uint32_t page_size;
} vec;

static void vec_load(vec *v, const char *name)
{
    v->name = name;
    v->j = tu_sidecar(name);
    v->file = tu_read_file(tu_ltx(name), &v->size);
    ck_assert_uint_eq(v->size, (size_t)tu_jint(v->j, "size_bytes"));
    json_t *post = tu_jget(v->j, "post_state_db");
    v->db = tu_read_file(tu_ltx(tu_jstr(post, "file")), &v->db_size);
    v->page_size = (uint32_t)tu_jint(post, "page_size");
}

static void vec_free(vec *v)
{
    free(v->db);
    free(v->file);
    json_decref(v->j);
}

static const uint8_t *db_page(const vec *v, uint32_t pgno)
{
    ck_assert_uint_ge(pgno, 1);
    ck_assert_uint_le((size_t)pgno * v->page_size, v->db_size);
    return v->db + (size_t)(pgno - 1) * v->page_size;
}

/* The sidecar's frame for a pgno (frames are in pgno order, but look it up to be safe). */
static json_t *sidecar_frame(const vec *v, uint32_t pgno)
{
    json_t *frames = tu_jget(v->j, "frames");
    for (size_t i = 0; i < json_array_size(frames); i++)
        if ((uint32_t)tu_jint(json_array_get(frames, i), "pgno") == pgno)
            return json_array_get(frames, i);
    ck_abort_msg("%s: no frame for page %u in the sidecar", v->name, pgno);
    return NULL;
}

/* ---- streaming decoder ------------------------------------------------------------------- */

START_TEST(test_decoder_matches_sidecar)
{
    vec v;
    vec_load(&v, v3_vectors[_i]);
    ltx_header want_h;
    tu_jheader(v.j, &want_h);

    ltx_mem_reader r = tu_reader(v.file, v.size);
    ltx_decoder *d = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(ltx_decoder_open(&d, ltx_mem_read, &r, err) == LV_OK, "%s: %s", v.name, err);
    tu_assert_header_eq(ltx_decoder_header(d), &want_h, v.name);
    ck_assert_ptr_null(ltx_decoder_trailer(d));

    json_t *frames = tu_jget(v.j, "frames");
    size_t nframes = json_array_size(frames);
    ck_assert_uint_eq(nframes, (size_t)tu_jint(v.j, "page_count"));
    uint64_t fold = 0;
    for (size_t i = 0;; i++) {
        ltx_frame_info fi;
        const uint8_t *page = NULL;
        lv_err rc = ltx_decoder_next(d, &fi, &page, err);
        ck_assert_msg(rc == LV_OK, "%s: frame %zu: %s", v.name, i, err);
        if (fi.pgno == 0) {
            ck_assert_uint_eq(i, nframes);
            break;
        }
        ck_assert_uint_lt(i, nframes);
        json_t *f = json_array_get(frames, i);
        ck_assert_uint_eq(fi.pgno, (uint32_t)tu_jint(f, "pgno"));
        ck_assert_uint_eq(fi.offset, (uint64_t)tu_jint(f, "offset"));
        ck_assert_uint_eq(fi.flags, (uint16_t)tu_jint(f, "page_flags"));
        ck_assert_uint_eq(fi.size, (uint32_t)tu_jint(f, "frame_size"));
        ck_assert_uint_eq(fi.compressed_size, (uint32_t)tu_jint(f, "compressed_size"));
        ck_assert_ptr_nonnull(page);

        char sha[65];
        tu_sha256_hex(page, v.page_size, sha);
        ck_assert_str_eq(sha, tu_jstr(f, "page_sha256"));
        ck_assert_msg(memcmp(page, db_page(&v, fi.pgno), v.page_size) == 0,
                      "%s: page %u differs from %s", v.name, fi.pgno,
                      tu_jstr(tu_jget(v.j, "post_state_db"), "file"));
        uint64_t pc = ltx_page_checksum(fi.pgno, page, v.page_size);
        ck_assert_uint_eq(pc, tu_jhex64(f, "page_checksum"));
        fold = ltx_db_checksum_update(fold, 0, pc);
    }
    ck_assert_uint_eq(ltx_decoder_offset(d), v.size);

    const ltx_trailer *t = ltx_decoder_trailer(d);
    ck_assert_ptr_nonnull(t);
    json_t *jt = tu_jget(v.j, "trailer");
    ck_assert_uint_eq(t->post_apply_checksum, tu_jhex64(jt, "post_apply_checksum"));
    ck_assert_uint_eq(t->file_checksum, tu_jhex64(jt, "file_checksum"));
    if (ltx_header_is_snapshot(&want_h) && !ltx_header_no_checksum(&want_h))
        ck_assert_uint_eq(fold, t->post_apply_checksum);

    /* the frames seen are the ones the page index lists (the decoder checked the index bytes
     * against them; the entries themselves come from the random-access path, tested below) */
    json_t *entries = tu_jget(tu_jget(v.j, "page_index"), "entries");
    ck_assert_uint_eq(json_array_size(entries), nframes);
    for (size_t i = 0; i < nframes; i++) {
        json_t *e = json_array_get(entries, i), *f = json_array_get(frames, i);
        ck_assert_int_eq(tu_jint(e, "pgno"), tu_jint(f, "pgno"));
        ck_assert_int_eq(tu_jint(e, "offset"), tu_jint(f, "offset"));
        ck_assert_int_eq(tu_jint(e, "size"), tu_jint(f, "frame_size"));
    }

    /* after the end, the decoder keeps saying so */
    ltx_frame_info fi;
    const uint8_t *page;
    ck_assert_int_eq(ltx_decoder_next(d, &fi, &page, err), LV_OK);
    ck_assert_uint_eq(fi.pgno, 0);
    ltx_decoder_free(d);
    vec_free(&v);
}
END_TEST

START_TEST(test_decoder_pages_checksum_is_the_fold_of_page_checksums)
{
    /* ltx.h: "the XOR-fold of the page checksums decoded so far (see ltx_db_checksum_update)",
     * so after each page it equals folding the sidecar's page checksums from 0 with it. */
    vec v;
    vec_load(&v, v3_vectors[_i]);
    ltx_mem_reader r = tu_reader(v.file, v.size);
    ltx_decoder *d = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(ltx_decoder_open(&d, ltx_mem_read, &r, err) == LV_OK, "%s: %s", v.name, err);
    uint64_t fold = 0;
    for (;;) {
        ltx_frame_info fi;
        const uint8_t *page;
        ck_assert_msg(ltx_decoder_next(d, &fi, &page, err) == LV_OK, "%s: %s", v.name, err);
        if (fi.pgno == 0)
            break;
        fold =
            ltx_db_checksum_update(fold, 0, tu_jhex64(sidecar_frame(&v, fi.pgno), "page_checksum"));
        ck_assert_msg(ltx_decoder_pages_checksum(d) == fold,
                      "%s: after page %u: %016llx, want %016llx", v.name, fi.pgno,
                      (unsigned long long)ltx_decoder_pages_checksum(d), (unsigned long long)fold);
    }
    ltx_decoder_free(d);
    vec_free(&v);
}
END_TEST

/* ---- random access ----------------------------------------------------------------------- */

START_TEST(test_random_access_matches_sidecar)
{
    vec v;
    vec_load(&v, v3_vectors[_i]);
    ltx_header h;
    tu_jheader(v.j, &h);
    json_t *ji = tu_jget(v.j, "page_index");
    json_t *entries = tu_jget(ji, "entries");
    char err[LV_ERRLEN] = "";

    uint64_t ioff = 0, isize = 0;
    ltx_trailer t;
    ck_assert_msg(
        ltx_index_locate(v.file + v.size - LTX_TAIL_SIZE, v.size, &ioff, &isize, &t, err) == LV_OK,
        "%s: %s", v.name, err);
    ck_assert_uint_eq(ioff, (uint64_t)tu_jint(ji, "offset"));
    ck_assert_uint_eq(isize, (uint64_t)tu_jint(ji, "total_bytes"));
    ck_assert_uint_eq(ioff + isize + LTX_TRAILER_SIZE, v.size);
    json_t *jt = tu_jget(v.j, "trailer");
    ck_assert_uint_eq(t.post_apply_checksum, tu_jhex64(jt, "post_apply_checksum"));
    ck_assert_uint_eq(t.file_checksum, tu_jhex64(jt, "file_checksum"));
    /* the trailer is optional */
    ck_assert_int_eq(
        ltx_index_locate(v.file + v.size - LTX_TAIL_SIZE, v.size, &ioff, &isize, NULL, err), LV_OK);

    for (int with_header = 0; with_header < 2; with_header++) {
        ltx_page_index idx;
        ck_assert_msg(ltx_index_parse(v.file + ioff, (size_t)isize, ioff, with_header ? &h : NULL,
                                      &idx, err) == LV_OK,
                      "%s: %s", v.name, err);
        ck_assert_uint_eq(idx.offset, ioff);
        ck_assert_uint_eq(idx.size, isize);
        ck_assert_uint_eq(idx.n, json_array_size(entries));
        uint8_t *page = malloc(v.page_size);
        ck_assert_ptr_nonnull(page);
        for (size_t i = 0; i < idx.n; i++) {
            json_t *e = json_array_get(entries, i);
            const ltx_index_entry *ent = &idx.entries[i];
            ck_assert_uint_eq(ent->pgno, (uint32_t)tu_jint(e, "pgno"));
            ck_assert_uint_eq(ent->offset, (uint64_t)tu_jint(e, "offset"));
            ck_assert_uint_eq(ent->size, (uint32_t)tu_jint(e, "size"));
            ck_assert_ptr_eq(ltx_index_find(&idx, ent->pgno), ent);

            /* the frame alone, as a range request would fetch it */
            uint8_t *frame = malloc(ent->size);
            ck_assert_ptr_nonnull(frame);
            memcpy(frame, v.file + ent->offset, ent->size);
            uint32_t pgno = 0;
            memset(page, 0xcc, v.page_size);
            ck_assert_msg(ltx_frame_decode(frame, ent->size, v.page_size, ent->pgno, page, &pgno,
                                           err) == LV_OK,
                          "%s: page %u: %s", v.name, ent->pgno, err);
            ck_assert_uint_eq(pgno, ent->pgno);
            ck_assert_int_eq(memcmp(page, db_page(&v, ent->pgno), v.page_size), 0);
            char sha[65];
            tu_sha256_hex(page, v.page_size, sha);
            ck_assert_str_eq(sha, tu_jstr(sidecar_frame(&v, ent->pgno), "page_sha256"));

            /* expect_pgno 0 takes any page; pgno may be NULL */
            ck_assert_int_eq(ltx_frame_decode(frame, ent->size, v.page_size, 0, page, NULL, err),
                             LV_OK);
            ck_assert_int_eq(memcmp(page, db_page(&v, ent->pgno), v.page_size), 0);

            /* the wrong page is refused */
            err[0] = '\0';
            ck_assert_int_ne(
                ltx_frame_decode(frame, ent->size, v.page_size, ent->pgno + 1, page, &pgno, err),
                LV_OK);
            ck_assert_str_ne(err, "");
            free(frame);
        }
        /* pages the file does not hold are not found */
        ck_assert_ptr_null(ltx_index_find(&idx, 0));
        ck_assert_ptr_null(ltx_index_find(&idx, h.commit + 1));
        for (uint32_t pgno = 1; pgno <= h.commit; pgno++) {
            int held = 0;
            for (size_t i = 0; i < idx.n; i++)
                held |= idx.entries[i].pgno == pgno;
            ck_assert_int_eq(ltx_index_find(&idx, pgno) != NULL, held);
        }
        free(page);
        ltx_index_free(&idx);
        ck_assert_ptr_null(idx.entries);
        ck_assert_uint_eq(idx.n, 0);
    }
    vec_free(&v);
}
END_TEST

/* ---- verify ------------------------------------------------------------------------------ */

START_TEST(test_verify_accepts_vector)
{
    vec v;
    vec_load(&v, v3_vectors[_i]);
    ltx_header want_h, h;
    tu_jheader(v.j, &want_h);
    ltx_trailer t;
    uint32_t pages = 0;
    char err[LV_ERRLEN] = "";
    ltx_mem_reader r = tu_reader(v.file, v.size);
    ck_assert_msg(ltx_verify(ltx_mem_read, &r, &h, &t, &pages, err) == LV_OK, "%s: %s", v.name,
                  err);
    tu_assert_header_eq(&h, &want_h, v.name);
    ck_assert_uint_eq(pages, (uint32_t)tu_jint(v.j, "page_count"));
    json_t *jt = tu_jget(v.j, "trailer");
    ck_assert_uint_eq(t.post_apply_checksum, tu_jhex64(jt, "post_apply_checksum"));
    ck_assert_uint_eq(t.file_checksum, tu_jhex64(jt, "file_checksum"));
    /* the reference tool said "ok" too */
    ck_assert_int_eq(tu_jint(tu_jget(v.j, "ltx_verify"), "exit_code"), 0);

    /* all out-parameters are optional */
    r = tu_reader(v.file, v.size);
    ck_assert_int_eq(ltx_verify(ltx_mem_read, &r, NULL, NULL, NULL, NULL), LV_OK);
    vec_free(&v);
}
END_TEST

START_TEST(test_old_formats_fail_cleanly)
{
    const char *name = old_vectors[_i];
    size_t n;
    uint8_t *file = tu_read_file(tu_ltx(name), &n);

    char err[LV_ERRLEN] = "";
    ltx_mem_reader r = tu_reader(file, n);
    lv_err rc = ltx_verify(ltx_mem_read, &r, NULL, NULL, NULL, err);
    ck_assert_msg(rc == LV_ECORRUPT || rc == LV_EUNSUPPORTED, "%s: verify gave %d", name, rc);
    ck_assert_msg(err[0] != '\0', "%s: no message", name);

    /* the streaming decoder: an error at open or at some frame, never a verified end */
    r = tu_reader(file, n);
    ltx_decoder *d = NULL;
    err[0] = '\0';
    rc = ltx_decoder_open(&d, ltx_mem_read, &r, err);
    int frames = 0;
    while (rc == LV_OK) {
        ltx_frame_info fi;
        const uint8_t *page;
        rc = ltx_decoder_next(d, &fi, &page, err);
        ck_assert_msg(rc != LV_OK || fi.pgno != 0, "%s: decoded to a verified end", name);
        ck_assert_int_lt(++frames, 1000);
    }
    ck_assert_msg(rc == LV_ECORRUPT || rc == LV_EUNSUPPORTED, "%s: decoder gave %d", name, rc);
    ck_assert_msg(err[0] != '\0', "%s: no message", name);
    ltx_decoder_free(d);
    free(file);
}
END_TEST

/* ---- apply checks ------------------------------------------------------------------------ */

/* Runs one `apply_checks` entry of a sidecar with ltx_apply. */
static void run_apply_check(const char *vector, size_t k, json_t *check)
{
    const char *start = tu_jstr(check, "start_db");
    json_t *apply = tu_jget(check, "apply");
    int exit_code = (int)tu_jint(check, "exit_code");

    char *path = tu_tmp_path("apply.db");
    uint8_t *start_bytes = NULL;
    size_t start_size = 0;
    if (strcmp(start, "(new empty file)") == 0) {
        tu_write_file(path, "", 0);
    } else {
        start_bytes = tu_read_file(tu_ltx(start), &start_size);
        tu_write_file(path, start_bytes, start_size);
    }
    int fd = tu_open(path, O_RDWR);
    uint64_t cks = tu_db_checksum_fd(fd);
    if (!start_bytes)
        ck_assert_uint_eq(cks, 0);

    char err[LV_ERRLEN] = "";
    lv_err rc = LV_OK;
    size_t nfiles = json_array_size(apply);
    ck_assert_uint_gt(nfiles, 0);
    for (size_t i = 0; i < nfiles && rc == LV_OK; i++) {
        const char *name = json_string_value(json_array_get(apply, i));
        ck_assert_ptr_nonnull(name);
        size_t n;
        uint8_t *file = tu_read_file(tu_ltx(name), &n);
        ltx_mem_reader r = tu_reader(file, n);
        ltx_header h;
        err[0] = '\0';
        rc = ltx_apply(fd, ltx_mem_read, &r, &cks, &h, err);
        if (exit_code == 0) {
            ck_assert_msg(rc == LV_OK, "%s check %zu: apply %s: %s", vector, k, name, err);
            ltx_header fh;
            ck_assert_int_eq(ltx_header_decode(&fh, file, n, err), LV_OK);
            tu_assert_header_eq(&h, &fh, name);
            ck_assert_uint_eq(cks, tu_db_checksum_fd(fd));
        } else if (i + 1 < nfiles) {
            ck_assert_msg(rc == LV_OK, "%s check %zu: apply %s: %s", vector, k, name, err);
        }
        free(file);
    }

    if (exit_code == 0) {
        size_t got_n, want_n;
        uint8_t *got = tu_read_file(path, &got_n);
        uint8_t *want = tu_read_file(tu_ltx(tu_jstr(check, "expect_db")), &want_n);
        ck_assert_msg(got_n == want_n && memcmp(got, want, want_n) == 0,
                      "%s check %zu: result is not %s (%zu bytes, want %zu)", vector, k,
                      tu_jstr(check, "expect_db"), got_n, want_n);
        ck_assert_msg(json_is_true(tu_jget(check, "result_byte_identical_to_expect_db")),
                      "sidecar disagrees");
        free(got);
        free(want);
    } else {
        ck_assert_msg(rc == LV_ECHECKSUM, "%s check %zu: got %d (%s), want LV_ECHECKSUM", vector, k,
                      rc, err);
        ck_assert_msg(strstr(err, "pre-apply checksum mismatch") != NULL, "message: %s", err);
        /* the reference message, without the file name the tool put in front */
        const char *line = json_string_value(json_array_get(tu_jget(check, "output"), 0));
        ck_assert_ptr_nonnull(line);
        const char *ref = strstr(line, "pre-apply checksum mismatch");
        ck_assert_ptr_nonnull(ref);
        ck_assert_msg(strstr(err, ref) != NULL, "message \"%s\" lacks \"%s\"", err, ref);
        /* nothing was written */
        size_t got_n;
        uint8_t *got = tu_read_file(path, &got_n);
        ck_assert_msg(got_n == start_size && memcmp(got, start_bytes, start_size) == 0,
                      "%s check %zu: database changed by a refused apply", vector, k);
        free(got);
    }
    close(fd);
    free(start_bytes);
    tu_tmp_remove(path);
}

START_TEST(test_apply_checks_of_sidecar)
{
    const char *name = _i < N_V3 ? v3_vectors[_i] : old_vectors[_i - N_V3];
    json_t *j = tu_sidecar(name);
    json_t *checks = tu_jget(j, "apply_checks");
    size_t ran = 0;
    for (size_t k = 0; k < json_array_size(checks); k++) {
        json_t *check = json_array_get(checks, k);
        /* runs made with an older tool (format 2) are not ours to reproduce */
        if (strcmp(tu_jstr(check, "tool"), "ltx") != 0)
            continue;
        run_apply_check(name, k, check);
        ran++;
    }
    if (_i < N_V3)
        ck_assert_msg(ran > 0, "%s: no apply check ran", name);
    json_decref(j);
}
END_TEST

static Suite *vectors_suite(void)
{
    Suite *s = suite_create("ltx_vectors");
    TCase *tc = tcase_create("decode");
    tcase_add_loop_test(tc, test_decoder_matches_sidecar, 0, N_V3);
    tcase_add_loop_test(tc, test_decoder_pages_checksum_is_the_fold_of_page_checksums, 0, N_V3);
    tcase_add_loop_test(tc, test_random_access_matches_sidecar, 0, N_V3);
    tcase_add_loop_test(tc, test_verify_accepts_vector, 0, N_V3);
    tcase_add_loop_test(tc, test_old_formats_fail_cleanly, 0, N_OLD);
    suite_add_tcase(s, tc);

    tc = tcase_create("apply");
    tcase_add_loop_test(tc, test_apply_checks_of_sidecar, 0, N_V3 + N_OLD);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(vectors_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
