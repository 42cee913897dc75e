/*
 * fuzz_ltx_index: libFuzzer target for the random-access side of the LTX codec, the path the VFS
 * takes with range requests: header, tail, page index, single frames.
 *
 * One input is read four ways:
 *   1. as a whole file: ltx_header_decode on the first 100 bytes, ltx_index_locate on the last
 *      LTX_TAIL_SIZE bytes, ltx_index_parse on the range it names (with the header when that
 *      decoded, and with NULL), ltx_index_find on a few pgnos, and ltx_frame_decode on every frame
 *      the index names, cut out of the input as a range request would fetch it;
 *   2. the bytes after the header as a bare page index at a fixed file offset, with and without
 *      the header;
 *   3. the whole input as one frame, with page sizes 512, 4096 and 65536;
 *   4. the trailer rules on the tail (ltx_trailer_decode, ltx_trailer_validate).
 *
 * Beyond "no crash, no hang, no leak", it checks what ltx.h promises of a parsed index: entries in
 * strictly ascending pgno, ltx_index_find returning the entry with the pgno asked for (and NULL
 * for pgnos not in it), and an empty index after a failure. Output pages are allocated at exactly
 * page_size bytes, so AddressSanitizer catches a decoder writing past them.
 */
#include <stdint.h>

#include "fuzz_common.h"
#include "ltx.h"

#define BARE_INDEX_OFFSET (1u << 20) /* where case 2 pretends the index starts */
#define MAX_FRAMES        64         /* frames per input decoded in case 1; keeps a run short */

static volatile uint8_t g_sink;

/* Every entry in ascending order; find returns each, and nothing for pgnos between them. */
static void check_index(const ltx_page_index *idx)
{
    for (size_t i = 0; i < idx->n; i++) {
        uint32_t pgno = idx->entries[i].pgno;
        FUZZ_CHECK(i == 0 || idx->entries[i - 1].pgno < pgno, "entry %zu out of order", i);
        const ltx_index_entry *e = ltx_index_find(idx, pgno);
        FUZZ_CHECK(e && e->pgno == pgno, "find(%u) missed entry %zu", pgno, i);
        if (pgno > 1 && (i == 0 || idx->entries[i - 1].pgno < pgno - 1))
            FUZZ_CHECK(ltx_index_find(idx, pgno - 1) == NULL, "find(%u) found a ghost", pgno - 1);
    }
    static const uint32_t probes[] = {0, 1, 2, 0x7fffffffu, 0xffffffffu};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        const ltx_index_entry *e = ltx_index_find(idx, probes[i]);
        FUZZ_CHECK(!e || e->pgno == probes[i], "find(%u) gave pgno %u", probes[i], e->pgno);
    }
}

/* Parses buf as an index at file offset `off`; on success checks it and hands it back. */
static int parse_index(const uint8_t *buf, size_t n, uint64_t off, const ltx_header *h,
                       ltx_page_index *idx)
{
    char err[LV_ERRLEN];
    fuzz_err_reset(err);
    lv_err rc = ltx_index_parse(buf, n, off, h, idx, err);
    fuzz_err_check("ltx_index_parse", rc, err);
    if (rc != LV_OK) {
        FUZZ_CHECK(idx->n == 0, "failed parse left %zu entries", idx->n);
        ltx_index_free(idx); /* must be harmless on the empty index a failure leaves */
        return 0;
    }
    check_index(idx);
    return 1;
}

/* Decodes one frame into an exactly page-sized buffer. */
static void decode_frame(const uint8_t *frame, size_t n, uint32_t page_size, uint32_t expect)
{
    char err[LV_ERRLEN];
    uint32_t pgno = 0;
    uint8_t *page = malloc(page_size);
    if (!page)
        abort();
    fuzz_err_reset(err);
    lv_err rc = ltx_frame_decode(frame, n, page_size, expect, page, &pgno, err);
    fuzz_err_check("ltx_frame_decode", rc, err);
    if (rc == LV_OK) {
        FUZZ_CHECK(expect == 0 || pgno == expect, "asked for page %u, got %u", expect, pgno);
        g_sink ^= page[0] ^ page[page_size - 1];
    }
    free(page);
}

/* Case 1, frames: each entry's range, as the VFS would fetch it, decoded for its pgno. */
static void decode_indexed_frames(const uint8_t *data, size_t size, const ltx_page_index *idx,
                                  uint32_t page_size)
{
    for (size_t i = 0; i < idx->n && i < MAX_FRAMES; i++) {
        const ltx_index_entry *e = &idx->entries[i];
        if (e->offset > size || e->size > size - e->offset)
            continue; /* the index may name bytes this input does not have */
        decode_frame(data + e->offset, e->size, page_size, e->pgno);
    }
}

/* Case 1: the input as a whole file, read the way the VFS reads a remote one. */
static void as_file(const uint8_t *data, size_t size, const ltx_header *h)
{
    uint64_t off = 0, len = 0;
    ltx_trailer t;
    char err[LV_ERRLEN];
    if (size < LTX_TAIL_SIZE)
        return;
    fuzz_err_reset(err);
    lv_err rc = ltx_index_locate(data + size - LTX_TAIL_SIZE, size, &off, &len, &t, err);
    fuzz_err_check("ltx_index_locate", rc, err);
    if (rc != LV_OK)
        return;
    FUZZ_CHECK(off <= size && len <= size - off, "located index [%llu, +%llu) outside %zu bytes",
               (unsigned long long)off, (unsigned long long)len, size);
    ltx_page_index idx = {0};
    if (parse_index(data + off, (size_t)len, off, NULL, &idx))
        ltx_index_free(&idx);
    if (h && parse_index(data + off, (size_t)len, off, h, &idx)) {
        decode_indexed_frames(data, size, &idx, h->page_size);
        ltx_index_free(&idx);
    }
}

/* Case 2: everything after the header as a bare page index. */
static void as_bare_index(const uint8_t *data, size_t size, const ltx_header *h)
{
    size_t skip = size >= LTX_HEADER_SIZE ? LTX_HEADER_SIZE : 0;
    ltx_page_index idx = {0};
    if (parse_index(data + skip, size - skip, BARE_INDEX_OFFSET, NULL, &idx))
        ltx_index_free(&idx);
    if (h && parse_index(data + skip, size - skip, BARE_INDEX_OFFSET, h, &idx))
        ltx_index_free(&idx);
}

/* Case 4: the tail's trailer, against the header when there is one. */
static void as_trailer(const uint8_t *data, size_t size, const ltx_header *h)
{
    ltx_trailer t;
    char err[LV_ERRLEN];
    if (size < LTX_TRAILER_SIZE || !h)
        return;
    ltx_trailer_decode(&t, data + size - LTX_TRAILER_SIZE);
    fuzz_err_reset(err);
    fuzz_err_check("ltx_trailer_validate", ltx_trailer_validate(&t, h, err), err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ltx_header hdr, *h = NULL;
    char err[LV_ERRLEN];
    if (size >= LTX_HEADER_SIZE) {
        fuzz_err_reset(err);
        lv_err rc = ltx_header_decode(&hdr, data, size, err);
        fuzz_err_check("ltx_header_decode", rc, err);
        if (rc == LV_OK) {
            FUZZ_CHECK(ltx_header_validate(&hdr, err) == LV_OK, "decoded header fails validate");
            h = &hdr;
        }
    }
    as_file(data, size, h);
    as_bare_index(data, size, h);
    decode_frame(data, size, 512, 0);
    decode_frame(data, size, 4096, 0);
    decode_frame(data, size, 65536, 0);
    as_trailer(data, size, h);
    return 0;
}
