/*
 * ltx_decoder: reads an LTX file as a stream and verifies all of it (see ltx.h).
 *
 * Input comes through the read callback into one buffer (DEC_BUF_SIZE, at least two of the
 * largest frames); a frame is decoded straight out of it. Each page is hashed once, as in the
 * encoder. The page index is verified without being stored: while decoding frames the decoder
 * hashes the canonical varints of (pgno, offset, size) it saw, and the index bytes in the file
 * must hash the same, with the same entry count and length.
 *
 * Memory: the read buffer and one page, whatever the size of the file.
 */
#include "ltx.h"

#include <string.h>

#include "alloc.h"
#include "crc64.h"
#include "ltx_private.h"

#define DEC_BUF_MIN (256 * 1024)

typedef unsigned long long ull;

enum dec_state { DEC_PAGES, DEC_DONE, DEC_FAILED };

struct ltx_decoder {
    ltx_header h;
    ltx_trailer t;
    enum dec_state state;
    ltx_read_fn read;
    void *ctx;

    uint8_t *buf; /* bytes [pos, len) are read but not yet used */
    size_t cap, pos, len;
    int eof;
    uint64_t consumed; /* file offset of buf[pos] */

    uint8_t *page;
    uint64_t file_crc;
    uint64_t page_op;
    uint64_t pages_xor;
    uint32_t prev_pgno;
    uint32_t lock_pgno;

    uint64_t want_index_crc; /* of the varints the frames seen call for */
    uint64_t want_index_len;
    uint64_t frames;
};

/* Makes at least `need` bytes available at buf+pos, unless the stream ends first. */
static lv_err fill(ltx_decoder *d, size_t need, char *err)
{
    if (d->len - d->pos >= need || d->eof)
        return LV_OK;
    if (d->pos > 0) {
        memmove(d->buf, d->buf + d->pos, d->len - d->pos);
        d->len -= d->pos;
        d->pos = 0;
    }
    while (d->len < need && !d->eof) {
        size_t got = 0;
        lv_err rc = d->read(d->ctx, d->buf + d->len, d->cap - d->len, &got, err);
        if (rc)
            return lv_wrap(err, rc, "at offset %llu: ", (ull)(d->consumed + d->len));
        if (got < d->cap - d->len)
            d->eof = 1;
        d->len += got;
    }
    return LV_OK;
}

static size_t avail(const ltx_decoder *d)
{
    return d->len - d->pos;
}

static void consume(ltx_decoder *d, size_t n, int hash)
{
    if (hash)
        d->file_crc = crc64_update(d->file_crc, d->buf + d->pos, n);
    d->pos += n;
    d->consumed += n;
}

static lv_err fail(ltx_decoder *d, lv_err rc)
{
    d->state = DEC_FAILED;
    return rc;
}

lv_err ltx_decoder_open(ltx_decoder **out, ltx_read_fn read, void *ctx, char *err)
{
    *out = NULL;
    ltx_decoder *d = lv_calloc(1, sizeof *d);
    if (!d)
        return lv_fail(err, LV_ENOMEM, "decoder: out of memory");
    lv_err rc;
    d->read = read;
    d->ctx = ctx;
    d->cap = DEC_BUF_MIN;
    if (!(d->buf = lv_malloc(d->cap))) {
        rc = lv_fail(err, LV_ENOMEM, "decoder: out of memory");
        goto fail;
    }
    if ((rc = fill(d, LTX_HEADER_SIZE, err)) != LV_OK)
        goto fail;
    if ((rc = ltx_header_decode(&d->h, d->buf, avail(d), err)) != LV_OK)
        goto fail;
    consume(d, LTX_HEADER_SIZE, 1);

    /* The largest frame must fit twice over, so a frame is always decoded in place. */
    size_t frame_max =
        LTX_PAGE_HEADER_SIZE + LTX_SIZE_PREFIX_SIZE + ltx_lz4frame_bound(d->h.page_size);
    if (d->cap < 2 * frame_max) {
        uint8_t *nb = lv_realloc(d->buf, 2 * frame_max);
        if (!nb) {
            rc = lv_fail(err, LV_ENOMEM, "decoder: out of memory");
            goto fail;
        }
        d->buf = nb;
        d->cap = 2 * frame_max;
    }
    if (!(d->page = lv_malloc(d->h.page_size))) {
        rc = lv_fail(err, LV_ENOMEM, "decoder: out of memory");
        goto fail;
    }
    d->page_op = crc64_combine_op(d->h.page_size);
    d->lock_pgno = ltx_lock_pgno(d->h.page_size);
    d->state = DEC_PAGES;
    *out = d;
    return LV_OK;
fail:
    ltx_decoder_free(d);
    return rc;
}

const ltx_header *ltx_decoder_header(const ltx_decoder *d)
{
    return &d->h;
}

const ltx_trailer *ltx_decoder_trailer(const ltx_decoder *d)
{
    return d->state == DEC_DONE ? &d->t : NULL;
}

uint64_t ltx_decoder_pages_checksum(const ltx_decoder *d)
{
    return LTX_CHECKSUM_FLAG | d->pages_xor;
}

uint64_t ltx_decoder_offset(const ltx_decoder *d)
{
    return d->consumed;
}

static lv_err check_pgno(const ltx_decoder *d, uint32_t pgno, uint64_t at, char *err)
{
    if (pgno > d->h.commit)
        return lv_fail(err, LV_ECORRUPT, "frame at offset %llu: pgno %u is beyond commit %u",
                       (ull)at, pgno, d->h.commit);
    if (pgno == d->lock_pgno)
        return lv_fail(err, LV_ECORRUPT, "frame at offset %llu: pgno %u is the lock page", (ull)at,
                       pgno);
    if (ltx_header_is_snapshot(&d->h)) {
        uint32_t want = d->prev_pgno + 1 == d->lock_pgno ? d->lock_pgno + 1 : d->prev_pgno + 1;
        if (pgno != want)
            return lv_fail(err, LV_ECORRUPT,
                           "frame at offset %llu: snapshot has pgno %u where %u should be", (ull)at,
                           pgno, want);
    } else if (pgno <= d->prev_pgno) {
        return lv_fail(err, LV_ECORRUPT, "frame at offset %llu: pgno %u is not above pgno %u",
                       (ull)at, pgno, d->prev_pgno);
    }
    return LV_OK;
}

/* Decodes the frame whose 6-byte header is at buf+pos into d->page; fills *fi. */
static lv_err decode_frame(ltx_decoder *d, uint32_t pgno, uint16_t flags, ltx_frame_info *fi,
                           char *err)
{
    uint64_t at = d->consumed;
    uint32_t ps = d->h.page_size;
    lv_err rc;
    if (flags & LTX_PAGE_FLAG_SIZE) {
        const size_t fh = LTX_PAGE_HEADER_SIZE + LTX_SIZE_PREFIX_SIZE;
        if ((rc = fill(d, fh, err)) != LV_OK)
            return rc;
        if (avail(d) < fh)
            return lv_fail(err, LV_ECORRUPT, "frame at offset %llu (pgno %u): truncated size",
                           (ull)at, pgno);
        uint32_t csize = ltx_be32(d->buf + d->pos + LTX_PAGE_HEADER_SIZE);
        if (csize == 0 || csize > ltx_block_bound(ps))
            return lv_fail(err, LV_ECORRUPT,
                           "frame at offset %llu (pgno %u): compressed size %u is impossible for "
                           "a %u-byte page (limit %u)",
                           (ull)at, pgno, csize, ps, ltx_block_bound(ps));
        if ((rc = fill(d, fh + csize, err)) != LV_OK)
            return rc;
        if (avail(d) < fh + csize)
            return lv_fail(err, LV_ECORRUPT,
                           "frame at offset %llu (pgno %u): truncated, %zu of %u compressed "
                           "bytes",
                           (ull)at, pgno, avail(d) - fh, csize);
        int got = LZ4_decompress_safe((const char *)d->buf + d->pos + fh, (char *)d->page,
                                      (int)csize, (int)ps);
        if (got != (int)ps)
            return lv_fail(err, LV_ECORRUPT,
                           "frame at offset %llu (pgno %u): LZ4 block does not decompress to one "
                           "%u-byte page",
                           (ull)at, pgno, ps);
        consume(d, fh, 1);
        consume(d, csize, 0);
        fi->compressed_size = csize;
        fi->size = (uint32_t)(fh + csize);
    } else {
        size_t bound = LTX_PAGE_HEADER_SIZE + ltx_lz4frame_bound(ps);
        if ((rc = fill(d, bound, err)) != LV_OK)
            return rc;
        size_t n = avail(d) < bound ? avail(d) : bound;
        size_t used;
        const char *why;
        if (ltx_lz4frame_decode(d->buf + d->pos + LTX_PAGE_HEADER_SIZE, n - LTX_PAGE_HEADER_SIZE,
                                d->page, ps, &used, &why) != 0)
            return lv_fail(err, LV_ECORRUPT, "frame at offset %llu (pgno %u): %s", (ull)at, pgno,
                           why);
        consume(d, LTX_PAGE_HEADER_SIZE, 1);
        consume(d, used, 0);
        fi->compressed_size = (uint32_t)used;
        fi->size = (uint32_t)(LTX_PAGE_HEADER_SIZE + used);
    }
    uint64_t page_crc = crc64_update(0, d->page, ps);
    d->file_crc = crc64_combine_with(d->file_crc, page_crc, d->page_op);
    d->pages_xor ^= ltx_page_checksum_from_crc(pgno, page_crc, d->page_op);

    uint8_t v[3 * LTX_UVARINT_MAX];
    size_t vn = ltx_uvarint_put(v, pgno);
    vn += ltx_uvarint_put(v + vn, at);
    vn += ltx_uvarint_put(v + vn, fi->size);
    d->want_index_crc = crc64_update(d->want_index_crc, v, vn);
    d->want_index_len += vn;
    d->frames++;

    fi->pgno = pgno;
    fi->flags = flags;
    fi->offset = at;
    d->prev_pgno = pgno;
    return LV_OK;
}

/* After the zero page header: the page index, the trailer, and the end of the stream. */
static lv_err finish(ltx_decoder *d, char *err)
{
    lv_err rc;
    const ltx_header *h = &d->h;
    if (ltx_header_is_snapshot(h)) {
        uint32_t last = h->commit == d->lock_pgno ? h->commit - 1 : h->commit;
        if (d->prev_pgno != last)
            return lv_fail(err, LV_ECORRUPT, "snapshot ends at page %u but commit is %u",
                           d->prev_pgno, h->commit);
    }
    /* The index: varints up to a zero where a pgno belongs, then its length. `entries` counts
     * the varints before that zero. */
    uint64_t index_at = d->consumed, index_crc = 0, index_len = 0, entries = 0;
    for (;;) {
        uint64_t v;
        if ((rc = fill(d, LTX_UVARINT_MAX, err)) != LV_OK)
            return rc;
        int k = ltx_uvarint_get(d->buf + d->pos, avail(d), &v);
        if (k <= 0)
            return lv_fail(err, LV_ECORRUPT, "page index: %s varint at offset %llu",
                           k == 0 ? "truncated" : "overlong", (ull)d->consumed);
        index_crc = crc64_update(index_crc, d->buf + d->pos, (size_t)k);
        index_len += (uint64_t)k;
        consume(d, (size_t)k, 1);
        if (entries % 3 == 0 && v == 0)
            break;
        if (++entries > 3 * d->frames)
            return lv_fail(err, LV_ECORRUPT,
                           "page index at offset %llu has more entries than the %llu frames",
                           (ull)index_at, (ull)d->frames);
    }
    if ((rc = fill(d, LTX_INDEX_SIZE_FIELD + LTX_TRAILER_SIZE, err)) != LV_OK)
        return rc;
    if (avail(d) < LTX_INDEX_SIZE_FIELD + LTX_TRAILER_SIZE)
        return lv_fail(err, LV_ECORRUPT,
                       "truncated at offset %llu: page index length and trailer "
                       "missing",
                       (ull)d->consumed);
    uint64_t stated = ltx_be64(d->buf + d->pos);
    if (stated != index_len)
        return lv_fail(err, LV_ECORRUPT,
                       "page index at offset %llu: length field says %llu bytes, there are %llu",
                       (ull)index_at, (ull)stated, (ull)index_len);
    /* The zero terminator belongs to the index bytes the frames call for, too. */
    uint8_t zero = 0;
    uint64_t want_crc = crc64_update(d->want_index_crc, &zero, 1);
    if (entries / 3 != d->frames || index_len != d->want_index_len + 1 || index_crc != want_crc)
        return lv_fail(err, LV_ECORRUPT,
                       "page index at offset %llu does not match the %llu page frames before it",
                       (ull)index_at, (ull)d->frames);
    consume(d, LTX_INDEX_SIZE_FIELD, 1);

    ltx_trailer_decode(&d->t, d->buf + d->pos);
    consume(d, 8, 1); /* the post-apply checksum is hashed; the file checksum is not */
    consume(d, 8, 0);
    if ((rc = ltx_trailer_validate(&d->t, h, err)) != LV_OK)
        return rc;
    uint64_t got = LTX_CHECKSUM_FLAG | d->file_crc;
    if (got != d->t.file_checksum)
        return lv_fail(err, LV_ECHECKSUM,
                       "file checksum mismatch: computed %016llx, trailer "
                       "says %016llx",
                       (ull)got, (ull)d->t.file_checksum);
    if (ltx_header_is_snapshot(h) && !ltx_header_no_checksum(h)) {
        uint64_t pages = LTX_CHECKSUM_FLAG | d->pages_xor;
        if (pages != d->t.post_apply_checksum)
            return lv_fail(err, LV_ECHECKSUM,
                           "post-apply checksum mismatch: snapshot pages give %016llx, trailer "
                           "says %016llx",
                           (ull)pages, (ull)d->t.post_apply_checksum);
    }
    if ((rc = fill(d, 1, err)) != LV_OK)
        return rc;
    if (avail(d) > 0)
        return lv_fail(err, LV_ECORRUPT, "unexpected bytes after the trailer at offset %llu",
                       (ull)d->consumed);
    return LV_OK;
}

/*
 * Older formats share the magic, so their first frame is where they show. Format 2 writes a
 * 4-byte page header and an LZ4 frame (04 22 4d 18), read here as flags 0x0422; format 1 writes
 * the raw page, whose first bytes for page 1 are "SQLite format 3". Name them rather than call
 * them corrupt.
 */
static lv_err bad_flags(const ltx_decoder *d, uint32_t pgno, uint16_t flags, char *err)
{
    const uint8_t *p = d->buf + d->pos;
    if (flags == 0x0422 && avail(d) >= 8 && p[6] == 0x4d && p[7] == 0x18)
        return lv_fail(err, LV_EUNSUPPORTED,
                       "frame at offset %llu: this looks like LTX format 2 (LZ4 frame after a "
                       "4-byte page header); only format 3 is supported",
                       (ull)d->consumed);
    if (pgno == 1 && avail(d) >= 4 + 16 && memcmp(p + 4, "SQLite format 3", 16) == 0)
        return lv_fail(err, LV_EUNSUPPORTED,
                       "frame at offset %llu: this looks like LTX format 1 (uncompressed pages); "
                       "only format 3 is supported",
                       (ull)d->consumed);
    return lv_fail(err, LV_ECORRUPT,
                   "frame at offset %llu (pgno %u): invalid page header flags: 0x%04x",
                   (ull)d->consumed, pgno, flags);
}

lv_err ltx_decoder_next(ltx_decoder *d, ltx_frame_info *fi, const uint8_t **page, char *err)
{
    memset(fi, 0, sizeof *fi);
    *page = NULL;
    if (d->state == DEC_DONE)
        return LV_OK;
    if (d->state == DEC_FAILED)
        return lv_fail(err, LV_EINVAL, "decoder: unusable after an earlier failure");
    lv_err rc = fill(d, LTX_PAGE_HEADER_SIZE, err);
    if (rc)
        return fail(d, rc);
    if (avail(d) < LTX_PAGE_HEADER_SIZE)
        return fail(d, lv_fail(err, LV_ECORRUPT, "truncated at offset %llu: page header expected",
                               (ull)d->consumed));
    const uint8_t *ph = d->buf + d->pos;
    uint32_t pgno = ltx_be32(ph);
    uint16_t flags = ltx_be16(ph + 4);
    if (pgno == 0 && flags == 0) {
        consume(d, LTX_PAGE_HEADER_SIZE, 1);
        if ((rc = finish(d, err)) != LV_OK)
            return fail(d, rc);
        d->state = DEC_DONE;
        return LV_OK;
    }
    if (pgno == 0)
        return fail(d, lv_fail(err, LV_ECORRUPT,
                               "frame at offset %llu: page number required (flags 0x%04x)",
                               (ull)d->consumed, flags));
    if (flags & ~LTX_PAGE_FLAG_MASK)
        return fail(d, bad_flags(d, pgno, flags, err));
    if ((rc = check_pgno(d, pgno, d->consumed, err)) != LV_OK)
        return fail(d, rc);
    if ((rc = decode_frame(d, pgno, flags, fi, err)) != LV_OK)
        return fail(d, rc);
    *page = d->page;
    return LV_OK;
}

void ltx_decoder_free(ltx_decoder *d)
{
    if (!d)
        return;
    lv_free(d->buf);
    lv_free(d->page);
    lv_free(d);
}

lv_err ltx_verify(ltx_read_fn read, void *ctx, ltx_header *h, ltx_trailer *t, uint32_t *pages,
                  char *err)
{
    ltx_decoder *d;
    lv_err rc = ltx_decoder_open(&d, read, ctx, err);
    if (rc)
        return rc;
    uint32_t n = 0;
    for (;;) {
        ltx_frame_info fi;
        const uint8_t *page;
        if ((rc = ltx_decoder_next(d, &fi, &page, err)) != LV_OK)
            goto done;
        if (fi.pgno == 0)
            break;
        n++;
    }
    if (h)
        *h = d->h;
    if (t)
        *t = d->t;
    if (pages)
        *pages = n;
done:
    ltx_decoder_free(d);
    return rc;
}
