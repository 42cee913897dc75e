/*
 * ltx_encoder: writes an LTX file as a stream (see ltx.h for the layout and the rules).
 *
 * Each page is hashed once: its CRC feeds both the page checksum (combined with the pgno's CRC)
 * and the running file checksum (combined after the frame header's bytes), with crc64_combine.
 * Pages are compressed with one LZ4 stream state reset per page, so frames are independent
 * blocks without paying for a full state clear each time. Output is gathered in a buffer and
 * handed to the write callback in large pieces; the page index is kept as the varint bytes it
 * will be written as (a few bytes per page).
 */
#include "ltx.h"

#include <string.h>

#include "alloc.h"
#include "crc64.h"
#include "ltx_private.h"

#define ENC_BUF_SIZE (256 * 1024)

typedef unsigned long long ull;

struct ltx_encoder {
    ltx_header h;
    ltx_write_fn write;
    void *ctx;
    int failed; /* a write or rule failed: the output can no longer be completed */

    uint8_t *out; /* ENC_BUF_SIZE bytes waiting for the write callback */
    size_t out_len;
    uint64_t size; /* bytes produced so far, buffered or written */

    LZ4_stream_t *lz4;
    uint8_t *cbuf; /* one compressed frame: header, size prefix, LZ4 block */
    uint32_t cbound;

    uint64_t file_crc;
    uint64_t page_op; /* crc64_combine operator for one page */
    uint64_t pages_xor;
    uint64_t post_apply;
    int post_apply_set;

    uint32_t prev_pgno;
    uint8_t *index; /* the page index entries as varints */
    size_t index_len, index_cap;
};

static lv_err flush_out(ltx_encoder *e, char *err)
{
    if (e->out_len == 0)
        return LV_OK;
    lv_err rc = e->write(e->ctx, e->out, e->out_len, err);
    if (rc) {
        e->failed = 1;
        return rc;
    }
    e->out_len = 0;
    return LV_OK;
}

/* Appends bytes to the output; `hash` says whether they count towards the file checksum. */
static lv_err emit(ltx_encoder *e, const void *p, size_t n, int hash, char *err)
{
    if (hash)
        e->file_crc = crc64_update(e->file_crc, p, n);
    e->size += n;
    const uint8_t *b = p;
    while (n > 0) {
        size_t room = ENC_BUF_SIZE - e->out_len;
        if (room == 0) {
            lv_err rc = flush_out(e, err);
            if (rc)
                return rc;
            room = ENC_BUF_SIZE;
        }
        size_t k = n < room ? n : room;
        memcpy(e->out + e->out_len, b, k);
        e->out_len += k;
        b += k;
        n -= k;
    }
    return LV_OK;
}

static lv_err index_add(ltx_encoder *e, uint64_t pgno, uint64_t off, uint64_t size, char *err)
{
    if (e->index_cap - e->index_len < 3 * LTX_UVARINT_MAX) {
        size_t cap = e->index_cap ? e->index_cap * 2 : 1024;
        uint8_t *p = lv_realloc(e->index, cap);
        if (!p) {
            e->failed = 1;
            return lv_fail(err, LV_ENOMEM, "encoder: no memory for a page index of %zu bytes", cap);
        }
        e->index = p;
        e->index_cap = cap;
    }
    e->index_len += ltx_uvarint_put(e->index + e->index_len, pgno);
    e->index_len += ltx_uvarint_put(e->index + e->index_len, off);
    e->index_len += ltx_uvarint_put(e->index + e->index_len, size);
    return LV_OK;
}

lv_err ltx_encoder_open(ltx_encoder **out, const ltx_header *h, ltx_write_fn write, void *ctx,
                        char *err)
{
    *out = NULL;
    lv_err rc = ltx_header_validate(h, err);
    if (rc)
        return rc;
    ltx_encoder *e = lv_calloc(1, sizeof *e);
    if (!e)
        return lv_fail(err, LV_ENOMEM, "encoder: out of memory");
    e->h = *h;
    e->write = write;
    e->ctx = ctx;
    e->cbound = ltx_block_bound(h->page_size);
    e->out = lv_malloc(ENC_BUF_SIZE);
    e->cbuf = lv_malloc(LTX_PAGE_HEADER_SIZE + LTX_SIZE_PREFIX_SIZE + e->cbound);
    e->lz4 = lv_malloc(sizeof *e->lz4);
    if (!e->out || !e->cbuf || !e->lz4) {
        rc = lv_fail(err, LV_ENOMEM, "encoder: out of memory");
        goto fail;
    }
    LZ4_initStream(e->lz4, sizeof *e->lz4);
    e->page_op = crc64_combine_op(h->page_size);

    uint8_t hdr[LTX_HEADER_SIZE];
    ltx_header_encode(h, hdr);
    if ((rc = emit(e, hdr, sizeof hdr, 1, err)) != LV_OK)
        goto fail;
    *out = e;
    return LV_OK;
fail:
    ltx_encoder_free(e);
    return rc;
}

static lv_err check_pgno(const ltx_encoder *e, uint32_t pgno, char *err)
{
    const ltx_header *h = &e->h;
    uint32_t lock = ltx_lock_pgno(h->page_size);
    if (pgno == 0)
        return lv_fail(err, LV_EINVAL, "encoder: page number required");
    if (pgno > h->commit)
        return lv_fail(err, LV_EINVAL, "encoder: page number %u out-of-bounds for commit size %u",
                       pgno, h->commit);
    if (pgno == lock)
        return lv_fail(err, LV_EINVAL, "encoder: cannot encode lock page: pgno=%u", pgno);
    if (ltx_header_is_snapshot(h)) {
        uint32_t want = e->prev_pgno + 1 == lock ? lock + 1 : e->prev_pgno + 1;
        if (pgno != want)
            return lv_fail(err, LV_EINVAL,
                           "encoder: nonsequential page numbers in snapshot: %u after %u", pgno,
                           e->prev_pgno);
    } else if (pgno <= e->prev_pgno) {
        return lv_fail(err, LV_EINVAL, "encoder: out-of-order page numbers: %u after %u", pgno,
                       e->prev_pgno);
    }
    return LV_OK;
}

lv_err ltx_encoder_page(ltx_encoder *e, uint32_t pgno, const void *page, char *err)
{
    if (e->failed)
        return lv_fail(err, LV_EINVAL, "encoder: unusable after an earlier failure");
    lv_err rc = check_pgno(e, pgno, err);
    if (rc)
        return rc;

    uint32_t ps = e->h.page_size;
    uint64_t page_crc = crc64_update(0, page, ps);
    uint8_t *f = e->cbuf;
    LZ4_resetStream_fast(e->lz4);
    int csize = LZ4_compress_fast_continue(e->lz4, page,
                                           (char *)f + LTX_PAGE_HEADER_SIZE + LTX_SIZE_PREFIX_SIZE,
                                           (int)ps, (int)e->cbound, 1);
    if (csize <= 0) {
        e->failed = 1;
        return lv_fail(err, LV_EINVAL, "encoder: LZ4 compression of pgno %u failed", pgno);
    }
    ltx_put_be32(f, pgno);
    ltx_put_be16(f + 4, LTX_PAGE_FLAG_SIZE);
    ltx_put_be32(f + LTX_PAGE_HEADER_SIZE, (uint32_t)csize);

    /* The file checksum covers the frame header and size prefix as stored, then the page as it
     * decompresses: hash the 10 header bytes, fold in the page's CRC, emit the rest unhashed. */
    const size_t fh = LTX_PAGE_HEADER_SIZE + LTX_SIZE_PREFIX_SIZE;
    uint64_t offset = e->size;
    if ((rc = emit(e, f, fh, 1, err)) != LV_OK)
        return rc;
    e->file_crc = crc64_combine_with(e->file_crc, page_crc, e->page_op);
    if ((rc = emit(e, f + fh, (size_t)csize, 0, err)) != LV_OK)
        return rc;
    if ((rc = index_add(e, pgno, offset, fh + (uint64_t)csize, err)) != LV_OK)
        return rc;

    e->pages_xor ^= ltx_page_checksum_from_crc(pgno, page_crc, e->page_op);
    e->prev_pgno = pgno;
    return LV_OK;
}

void ltx_encoder_set_post_apply(ltx_encoder *e, uint64_t checksum)
{
    e->post_apply = checksum;
    e->post_apply_set = 1;
}

uint64_t ltx_encoder_pages_checksum(const ltx_encoder *e)
{
    return LTX_CHECKSUM_FLAG | e->pages_xor;
}

uint64_t ltx_encoder_size(const ltx_encoder *e)
{
    return e->size;
}

lv_err ltx_encoder_finish(ltx_encoder *e, ltx_trailer *t, char *err)
{
    if (e->failed)
        return lv_fail(err, LV_EINVAL, "encoder: unusable after an earlier failure");
    const ltx_header *h = &e->h;
    lv_err rc;
    e->failed = 1; /* whatever happens now, the encoder is done */

    if (ltx_header_is_snapshot(h)) {
        uint32_t last = h->commit == ltx_lock_pgno(h->page_size) ? h->commit - 1 : h->commit;
        if (e->prev_pgno != last)
            return lv_fail(err, LV_EINVAL, "encoder: snapshot ends at page %u, commit is %u",
                           e->prev_pgno, h->commit);
    }
    ltx_trailer tr = {0, 0};
    uint64_t pages = LTX_CHECKSUM_FLAG | e->pages_xor;
    if (ltx_header_no_checksum(h))
        tr.post_apply_checksum = 0;
    else if (ltx_header_is_snapshot(h) && e->post_apply_set && e->post_apply != pages)
        return lv_fail(err, LV_EINVAL,
                       "encoder: post-apply checksum %016llx was set for a snapshot whose pages "
                       "give %016llx",
                       (ull)e->post_apply, (ull)pages);
    else if (ltx_header_is_snapshot(h))
        tr.post_apply_checksum = pages; /* a snapshot's is known: its pages are the database */
    else if (e->post_apply_set)
        tr.post_apply_checksum = e->post_apply;
    else
        return lv_fail(err, LV_EINVAL,
                       "encoder: post-apply checksum required for an incremental file that "
                       "tracks checksums");

    static const uint8_t zero_header[LTX_PAGE_HEADER_SIZE];
    if ((rc = emit(e, zero_header, sizeof zero_header, 1, err)) != LV_OK)
        return rc;
    uint8_t tail[1 + LTX_INDEX_SIZE_FIELD] = {0};
    ltx_put_be64(tail + 1, e->index_len + 1);
    if ((rc = emit(e, e->index, e->index_len, 1, err)) != LV_OK ||
        (rc = emit(e, tail, sizeof tail, 1, err)) != LV_OK)
        return rc;

    uint8_t tb[LTX_TRAILER_SIZE];
    ltx_put_be64(tb, tr.post_apply_checksum);
    e->file_crc = crc64_update(e->file_crc, tb, 8);
    tr.file_checksum = LTX_CHECKSUM_FLAG | e->file_crc;
    if ((rc = ltx_trailer_validate(&tr, h, err)) != LV_OK)
        return rc;
    ltx_trailer_encode(&tr, tb);
    if ((rc = emit(e, tb, sizeof tb, 0, err)) != LV_OK || (rc = flush_out(e, err)) != LV_OK)
        return rc;
    if (t)
        *t = tr;
    return LV_OK;
}

void ltx_encoder_free(ltx_encoder *e)
{
    if (!e)
        return;
    lv_free(e->out);
    lv_free(e->cbuf);
    lv_free(e->lz4);
    lv_free(e->index);
    lv_free(e);
}
