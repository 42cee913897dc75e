/*
 * fuzz_ltx_decode: libFuzzer target for the streaming side of the LTX codec.
 *
 * One input is one LTX stream, read from memory (ltx_mem_read). Each run, on the input and then
 * on a copy whose checksums fuzz_fixup made right again (when it can: see fuzz_fixup.h):
 *   1. the streaming decoder (ltx_decoder_open, ltx_decoder_next to the end or the first error),
 *      touching the first and last byte of every page it hands out;
 *   2. ltx_verify over the same bytes;
 *   3. ltx_apply onto a small database in a memfd: a copy of the shared db-txid1.db when it can
 *      be found (so the shared incremental vectors and their mutants get past the pre-apply
 *      check and write pages), else an empty file.
 *
 * Beyond "no crash, no hang, no leak", it checks what ltx.h promises in so many words:
 *   - ltx_verify accepts a stream exactly when the decoder reads it to a verified end, with the
 *     same page count;
 *   - after the end, ltx_decoder_next keeps returning pgno 0, and the trailer is there;
 *   - ltx_apply succeeds only on a stream ltx_verify accepts;
 *   - strict mode only (LTXVFS_FUZZ_STRICT=1, see fuzz_common.h): the checksum ltx_apply returns
 *     is the database checksum of the file it leaves (ltx_db_checksum_fd), for databases of up
 *     to 4 MiB.
 *
 * The base database: LTXVFS_FUZZ_BASE_DB in the environment, else the path CMake compiled in
 * (LTXVFS_FUZZ_DEFAULT_BASE_DB). Single-threaded, as libFuzzer runs it.
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "fuzz_fixup.h"
#include "ltx.h"

#ifndef LTXVFS_FUZZ_DEFAULT_BASE_DB
#define LTXVFS_FUZZ_DEFAULT_BASE_DB ""
#endif

#define BASE_MAX   (1u << 20) /* a base database bigger than this is not worth a copy per run */
#define RESCAN_MAX (4u << 20) /* strict mode rescans databases up to this size after an apply */

/* The state every run starts from; set up once in LLVMFuzzerInitialize. */
static struct {
    int fd;        /* memfd the database lives in */
    uint8_t *base; /* the base database's bytes (NULL: start empty) */
    size_t base_size;
    uint32_t base_page_size;
    uint32_t base_pages;
    uint64_t base_sum; /* its database checksum */
} g = {.fd = -1};

static volatile uint8_t g_sink;

/* Reads the base database into g.base and works out its checksum; leaves g.base NULL if absent. */
static void load_base(void)
{
    const char *path = getenv("LTXVFS_FUZZ_BASE_DB");
    char err[LV_ERRLEN];
    uint32_t page_size, page_count;
    if (!path || !*path)
        path = LTXVFS_FUZZ_DEFAULT_BASE_DB;
    int fd = *path ? open(path, O_RDONLY) : -1;
    if (fd < 0) {
        fprintf(stderr, "fuzz_ltx_decode: no base database (%s); applying onto empty files\n",
                *path ? path : "none configured");
        return;
    }
    if (ltx_db_geometry(fd, &page_size, &page_count, err) == LV_OK &&
        (uint64_t)page_size * page_count <= BASE_MAX &&
        ltx_db_checksum_fd(fd, page_size, page_count, &g.base_sum, err) == LV_OK) {
        g.base_size = (size_t)page_size * page_count;
        g.base_page_size = page_size;
        g.base_pages = page_count;
        g.base = malloc(g.base_size);
        if (g.base && pread(fd, g.base, g.base_size, 0) != (ssize_t)g.base_size) {
            free(g.base);
            g.base = NULL;
            g.base_pages = 0;
        }
    }
    close(fd);
    fprintf(stderr, "fuzz_ltx_decode: base database %s: %s\n", path,
            g.base ? "loaded" : "unusable; applying onto empty files");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g.fd = memfd_create("ltx-fuzz-db", MFD_CLOEXEC);
    if (g.fd < 0) {
        perror("fuzz_ltx_decode: memfd_create");
        abort();
    }
    load_base();
    return 0;
}

/* Reads the first and last byte of a page so the sanitizers check its whole extent is live. */
static void touch_page(const uint8_t *page, uint32_t page_size)
{
    g_sink ^= page[0];
    g_sink ^= page[page_size - 1];
}

/* After a verified end: the end is sticky and the trailer is available. */
static void check_end(ltx_decoder *d)
{
    ltx_frame_info fi;
    const uint8_t *page = NULL;
    char err[LV_ERRLEN];
    fuzz_err_reset(err);
    FUZZ_CHECK(ltx_decoder_trailer(d) != NULL, "no trailer after the end");
    lv_err rc = ltx_decoder_next(d, &fi, &page, err);
    FUZZ_CHECK(rc == LV_OK && fi.pgno == 0, "next after the end: rc %d pgno %u", rc, fi.pgno);
}

/* Decodes the stream to its end or first error; *pages counts the pages handed out. */
static lv_err decode_stream(const uint8_t *data, size_t size, uint32_t *pages)
{
    ltx_mem_reader r = {data, size, 0};
    ltx_decoder *d = NULL;
    ltx_frame_info fi;
    const uint8_t *page;
    char err[LV_ERRLEN];
    *pages = 0;
    fuzz_err_reset(err);
    lv_err rc = ltx_decoder_open(&d, ltx_mem_read, &r, err);
    fuzz_err_check("ltx_decoder_open", rc, err);
    if (rc != LV_OK)
        return rc;
    uint32_t page_size = ltx_decoder_header(d)->page_size;
    while ((rc = ltx_decoder_next(d, &fi, &page, err)) == LV_OK && fi.pgno != 0) {
        touch_page(page, page_size);
        (*pages)++;
    }
    fuzz_err_check("ltx_decoder_next", rc, err);
    if (rc == LV_OK)
        check_end(d);
    g_sink ^= (uint8_t)(ltx_decoder_pages_checksum(d) ^ ltx_decoder_offset(d));
    ltx_decoder_free(d);
    return rc;
}

static lv_err verify_stream(const uint8_t *data, size_t size, uint32_t *pages)
{
    ltx_mem_reader r = {data, size, 0};
    ltx_header h;
    ltx_trailer t;
    char err[LV_ERRLEN];
    *pages = 0;
    fuzz_err_reset(err);
    lv_err rc = ltx_verify(ltx_mem_read, &r, &h, &t, pages, err);
    fuzz_err_check("ltx_verify", rc, err);
    return rc;
}

/* Strict mode: the checksum apply returned is that of the file it left. */
static void check_applied_sum(const ltx_header *h, uint64_t sum)
{
    char err[LV_ERRLEN];
    uint64_t real = 0;
    if (!fuzz_strict() || (uint64_t)h->commit * h->page_size > RESCAN_MAX)
        return;
    lv_err rc = ltx_db_checksum_fd(g.fd, h->page_size, h->commit, &real, err);
    FUZZ_CHECK(rc == LV_OK, "rescanning the applied database: %s", err);
    FUZZ_CHECK((real | LTX_CHECKSUM_FLAG) == (sum | LTX_CHECKSUM_FLAG),
               "ltx_apply returned checksum %016llx, the database it left has %016llx",
               (unsigned long long)sum, (unsigned long long)real);
}

/* Resets the memfd to the base database and applies the stream onto it. */
static lv_err apply_stream(const uint8_t *data, size_t size)
{
    ltx_mem_reader r = {data, size, 0};
    ltx_header h;
    char err[LV_ERRLEN];
    uint64_t sum = g.base ? g.base_sum : 0;
    if (ftruncate(g.fd, 0) != 0 ||
        (g.base && pwrite(g.fd, g.base, g.base_size, 0) != (ssize_t)g.base_size)) {
        perror("fuzz_ltx_decode: resetting the memfd");
        abort();
    }
    fuzz_err_reset(err);
    lv_err rc = ltx_apply(g.fd, ltx_mem_read, &r, &sum, &h, err);
    fuzz_err_check("ltx_apply", rc, err);
    if (rc == LV_OK)
        check_applied_sum(&h, sum);
    return rc;
}

/* Everything on one stream, and the promises that tie the results together. */
static void run_stream(const uint8_t *data, size_t size)
{
    uint32_t dec_pages, ver_pages;
    lv_err dec = decode_stream(data, size, &dec_pages);
    lv_err ver = verify_stream(data, size, &ver_pages);
    FUZZ_CHECK((dec == LV_OK) == (ver == LV_OK), "decoder says %s, ltx_verify says %s",
               lv_strerror(dec), lv_strerror(ver));
    if (dec == LV_OK)
        FUZZ_CHECK(dec_pages == ver_pages, "decoder saw %u pages, ltx_verify %u", dec_pages,
                   ver_pages);
    lv_err app = apply_stream(data, size);
    FUZZ_CHECK(app != LV_OK || ver == LV_OK, "ltx_apply accepted a stream ltx_verify rejects (%s)",
               lv_strerror(ver));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fixup_base base = {g.base, g.base_page_size, g.base_pages, g.base_sum};
    run_stream(data, size);
    uint8_t *fixed = fuzz_fixup(data, size, &base);
    if (fixed) {
        run_stream(fixed, size);
        free(fixed);
    }
    return 0;
}
