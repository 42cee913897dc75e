/*
 * ltx_format: the fixed parts of an LTX file (header, trailer, checksums, the page index) and
 * decoding one frame from its bytes alone. No I/O; see ltx.h for the layout.
 */
#include "ltx.h"

#include <lz4frame.h>
#include <string.h>

#include "alloc.h"
#include "crc64.h"
#include "ltx_private.h"

typedef unsigned long long ull;

int ltx_page_size_valid(uint32_t sz)
{
    return sz >= LTX_MIN_PAGE_SIZE && sz <= LTX_MAX_PAGE_SIZE && (sz & (sz - 1)) == 0;
}

uint32_t ltx_lock_pgno(uint32_t page_size)
{
    return (uint32_t)(LTX_PENDING_BYTE / page_size) + 1;
}

int ltx_header_is_snapshot(const ltx_header *h)
{
    return h->min_txid == 1;
}

int ltx_header_no_checksum(const ltx_header *h)
{
    return (h->flags & LTX_HEADER_FLAG_NO_CHECKSUM) != 0;
}

void ltx_header_encode(const ltx_header *h, uint8_t out[LTX_HEADER_SIZE])
{
    memset(out, 0, LTX_HEADER_SIZE);
    memcpy(out, LTX_MAGIC, 4);
    ltx_put_be32(out + 4, h->flags);
    ltx_put_be32(out + 8, h->page_size);
    ltx_put_be32(out + 12, h->commit);
    ltx_put_be64(out + 16, h->min_txid);
    ltx_put_be64(out + 24, h->max_txid);
    ltx_put_be64(out + 32, (uint64_t)h->timestamp);
    ltx_put_be64(out + 40, h->pre_apply_checksum);
    ltx_put_be64(out + 48, (uint64_t)h->wal_offset);
    ltx_put_be64(out + 56, (uint64_t)h->wal_size);
    ltx_put_be32(out + 64, h->wal_salt1);
    ltx_put_be32(out + 68, h->wal_salt2);
    ltx_put_be64(out + 72, h->node_id);
}

lv_err ltx_header_decode(ltx_header *h, const uint8_t *buf, size_t n, char *err)
{
    if (n < LTX_HEADER_SIZE)
        return lv_fail(err, LV_ECORRUPT, "header: %zu bytes, an LTX header needs %d", n,
                       LTX_HEADER_SIZE);
    if (memcmp(buf, LTX_MAGIC, 4) != 0)
        return lv_fail(err, LV_ECORRUPT, "header: bad magic %02x%02x%02x%02x, not an LTX file",
                       buf[0], buf[1], buf[2], buf[3]);
    for (int i = 80; i < LTX_HEADER_SIZE; i++)
        if (buf[i] != 0)
            return lv_fail(err, LV_ECORRUPT, "header: reserved byte at offset %d is not zero", i);
    h->flags = ltx_be32(buf + 4);
    h->page_size = ltx_be32(buf + 8);
    h->commit = ltx_be32(buf + 12);
    h->min_txid = ltx_be64(buf + 16);
    h->max_txid = ltx_be64(buf + 24);
    h->timestamp = (int64_t)ltx_be64(buf + 32);
    h->pre_apply_checksum = ltx_be64(buf + 40);
    h->wal_offset = (int64_t)ltx_be64(buf + 48);
    h->wal_size = (int64_t)ltx_be64(buf + 56);
    h->wal_salt1 = ltx_be32(buf + 64);
    h->wal_salt2 = ltx_be32(buf + 68);
    h->node_id = ltx_be64(buf + 72);
    return ltx_header_validate(h, err);
}

lv_err ltx_header_validate(const ltx_header *h, char *err)
{
    if (h->flags & ~LTX_HEADER_FLAG_MASK)
        return lv_fail(err, LV_ECORRUPT, "header: invalid flags: 0x%08x", h->flags);
    if (!ltx_page_size_valid(h->page_size))
        return lv_fail(err, LV_ECORRUPT, "header: invalid page size: %u", h->page_size);
    if (h->min_txid == 0)
        return lv_fail(err, LV_ECORRUPT, "header: minimum transaction id required");
    if (h->max_txid == 0)
        return lv_fail(err, LV_ECORRUPT, "header: maximum transaction id required");
    if (h->min_txid > h->max_txid)
        return lv_fail(err, LV_ECORRUPT, "header: transaction ids out of order: (%llu,%llu)",
                       (ull)h->min_txid, (ull)h->max_txid);
    if (h->wal_offset < 0)
        return lv_fail(err, LV_ECORRUPT, "header: wal offset cannot be negative: %lld",
                       (long long)h->wal_offset);
    if (h->wal_size < 0)
        return lv_fail(err, LV_ECORRUPT, "header: wal size cannot be negative: %lld",
                       (long long)h->wal_size);
    if ((h->wal_salt1 || h->wal_salt2) && h->wal_offset == 0)
        return lv_fail(err, LV_ECORRUPT, "header: wal offset required if salt exists");
    if (h->wal_offset == 0 && h->wal_size != 0)
        return lv_fail(err, LV_ECORRUPT, "header: wal offset required if wal size exists");
    if (ltx_header_is_snapshot(h)) {
        if (h->pre_apply_checksum != 0)
            return lv_fail(err, LV_ECORRUPT,
                           "header: pre-apply checksum must be zero on snapshots");
    } else if (ltx_header_no_checksum(h)) {
        if (h->pre_apply_checksum != 0)
            return lv_fail(err, LV_ECORRUPT,
                           "header: pre-apply checksum not allowed with the NoChecksum flag");
    } else {
        if (h->pre_apply_checksum == 0)
            return lv_fail(err, LV_ECORRUPT,
                           "header: pre-apply checksum required on non-snapshot files");
        if (!(h->pre_apply_checksum & LTX_CHECKSUM_FLAG))
            return lv_fail(err, LV_ECORRUPT, "header: invalid pre-apply checksum format: %016llx",
                           (ull)h->pre_apply_checksum);
    }
    return LV_OK;
}

void ltx_trailer_encode(const ltx_trailer *t, uint8_t out[LTX_TRAILER_SIZE])
{
    ltx_put_be64(out, t->post_apply_checksum);
    ltx_put_be64(out + 8, t->file_checksum);
}

void ltx_trailer_decode(ltx_trailer *t, const uint8_t in[LTX_TRAILER_SIZE])
{
    t->post_apply_checksum = ltx_be64(in);
    t->file_checksum = ltx_be64(in + 8);
}

lv_err ltx_trailer_validate(const ltx_trailer *t, const ltx_header *h, char *err)
{
    if (ltx_header_no_checksum(h)) {
        if (t->post_apply_checksum != 0)
            return lv_fail(err, LV_ECORRUPT,
                           "trailer: post-apply checksum not allowed with the NoChecksum flag");
    } else if (t->post_apply_checksum == 0) {
        return lv_fail(err, LV_ECORRUPT, "trailer: post-apply checksum required");
    } else if (!(t->post_apply_checksum & LTX_CHECKSUM_FLAG)) {
        return lv_fail(err, LV_ECORRUPT, "trailer: invalid post-apply checksum format: %016llx",
                       (ull)t->post_apply_checksum);
    }
    if (t->file_checksum == 0)
        return lv_fail(err, LV_ECORRUPT, "trailer: file checksum required");
    if (!(t->file_checksum & LTX_CHECKSUM_FLAG))
        return lv_fail(err, LV_ECORRUPT, "trailer: invalid file checksum format: %016llx",
                       (ull)t->file_checksum);
    return LV_OK;
}

/* ---- checksums ---- */

uint64_t ltx_page_checksum_from_crc(uint32_t pgno, uint64_t page_crc, uint64_t page_op)
{
    uint8_t be[4];
    ltx_put_be32(be, pgno);
    return LTX_CHECKSUM_FLAG | crc64_combine_with(crc64_update(0, be, 4), page_crc, page_op);
}

uint64_t ltx_page_checksum(uint32_t pgno, const void *page, uint32_t page_size)
{
    uint8_t be[4];
    ltx_put_be32(be, pgno);
    return LTX_CHECKSUM_FLAG | crc64_update(crc64_update(0, be, 4), page, page_size);
}

uint64_t ltx_db_checksum_update(uint64_t db, uint64_t old_page, uint64_t new_page)
{
    /* Bit 63 of the fold is meaningless (every term carries the flag), so XOR-ing into a stored
     * checksum, flag and all, gives the same result as XOR-ing into the raw fold. */
    return LTX_CHECKSUM_FLAG | (db ^ old_page ^ new_page);
}

/*
 * A zero page's checksum is flag | CRC(be32(p) || 0^ps) = flag | (M(c(p)) ^ Z), with
 * c(p) = CRC(be32(p)), Z = CRC(0^ps) and M the (linear) multiplication by x^(8*ps). c is affine in
 * the bits of p, c(p) = A(p) ^ c(0), so over n pages the XOR of c(p) is c(X) ^ (n even ? c(0) : 0),
 * where X is the XOR of the pgnos, which has a closed form over a range. Hence O(1).
 */
static uint64_t xor_upto(uint64_t n) /* 1 ^ 2 ^ ... ^ n */
{
    switch (n & 3) {
    case 0:
        return n;
    case 1:
        return 1;
    case 2:
        return n + 1;
    default:
        return 0;
    }
}

uint64_t ltx_zero_pages_checksum(uint32_t first, uint32_t last, uint32_t page_size)
{
    if (first == 0)
        first = 1;
    if (first > last)
        return 0;
    uint64_t x = xor_upto(last) ^ xor_upto(first - 1);
    uint64_t n = (uint64_t)last - first + 1;
    uint32_t lock = ltx_lock_pgno(page_size);
    if (lock >= first && lock <= last) {
        x ^= lock;
        n--;
    }
    if (n == 0)
        return 0;
    static const uint8_t zeros[4096];
    uint64_t z = 0;
    for (uint32_t done = 0; done < page_size; done += sizeof zeros)
        z = crc64_update(z, zeros,
                         page_size - done < sizeof zeros ? page_size - done : sizeof zeros);
    uint8_t be[4];
    ltx_put_be32(be, 0);
    uint64_t c0 = crc64_update(0, be, 4);
    ltx_put_be32(be, (uint32_t)x);
    uint64_t cx = crc64_update(0, be, 4) ^ ((n & 1) ? 0 : c0);
    uint64_t op = crc64_combine_op(page_size);
    return crc64_combine_with(cx, (n & 1) ? z : 0, op);
}

/* ---- page index ---- */

lv_err ltx_index_locate(const uint8_t tail[LTX_TAIL_SIZE], uint64_t file_size,
                        uint64_t *index_offset, uint64_t *index_size, ltx_trailer *t, char *err)
{
    /* Smallest file: header, zero page header, index (one zero varint + length), trailer. */
    const uint64_t min_size =
        LTX_HEADER_SIZE + LTX_PAGE_HEADER_SIZE + 1 + LTX_INDEX_SIZE_FIELD + LTX_TRAILER_SIZE;
    if (file_size < min_size)
        return lv_fail(err, LV_ECORRUPT, "file of %llu bytes is too small for LTX (min %llu)",
                       (ull)file_size, (ull)min_size);
    uint64_t varints = ltx_be64(tail);
    uint64_t room = file_size - min_size + 1; /* the most the varints can span */
    if (varints == 0 || varints > room)
        return lv_fail(err, LV_ECORRUPT,
                       "page index length %llu at offset %llu is impossible in a %llu-byte file",
                       (ull)varints, (ull)(file_size - LTX_TAIL_SIZE), (ull)file_size);
    *index_size = varints + LTX_INDEX_SIZE_FIELD;
    *index_offset = file_size - LTX_TRAILER_SIZE - *index_size;
    if (t)
        ltx_trailer_decode(t, tail + LTX_INDEX_SIZE_FIELD);
    return LV_OK;
}

lv_err ltx_index_parse(const uint8_t *buf, size_t n, uint64_t index_offset, const ltx_header *h,
                       ltx_page_index *out, char *err)
{
    memset(out, 0, sizeof *out);
    if (n < 1 + LTX_INDEX_SIZE_FIELD)
        return lv_fail(err, LV_ECORRUPT, "page index at offset %llu: %zu bytes is too short",
                       (ull)index_offset, n);
    if (index_offset < LTX_HEADER_SIZE + LTX_PAGE_HEADER_SIZE)
        return lv_fail(err, LV_ECORRUPT, "page index offset %llu is inside the header",
                       (ull)index_offset);
    size_t varints = n - LTX_INDEX_SIZE_FIELD;
    if (ltx_be64(buf + varints) != varints)
        return lv_fail(err, LV_ECORRUPT,
                       "page index at offset %llu: length field says %llu bytes, there are %zu",
                       (ull)index_offset, (ull)ltx_be64(buf + varints), varints);
    /* Each entry takes at least 3 bytes, so this bounds the allocation by the input's size. */
    size_t cap = varints / 3;
    ltx_index_entry *e = cap ? lv_malloc(cap * sizeof *e) : NULL;
    if (cap && !e)
        return lv_fail(err, LV_ENOMEM, "page index at offset %llu: no memory for %zu entries",
                       (ull)index_offset, cap);
    uint32_t lock = h ? ltx_lock_pgno(h->page_size) : 0;
    uint64_t frame_floor = LTX_HEADER_SIZE; /* the next frame may not start before this */
    uint64_t block_end = index_offset - LTX_PAGE_HEADER_SIZE; /* where the zero header sits */
    size_t pos = 0, count = 0;
    lv_err rc = LV_OK;
    for (;;) {
        uint64_t v[3];
        int k;
        uint64_t at = index_offset + pos;
        if ((k = ltx_uvarint_get(buf + pos, varints - pos, &v[0])) <= 0) {
            rc = lv_fail(err, LV_ECORRUPT, "page index: bad pgno varint at offset %llu", (ull)at);
            goto done;
        }
        pos += (size_t)k;
        if (v[0] == 0)
            break;
        for (int i = 1; i < 3; i++) {
            if ((k = ltx_uvarint_get(buf + pos, varints - pos, &v[i])) <= 0) {
                rc = lv_fail(err, LV_ECORRUPT,
                             "page index: bad %s varint for pgno %llu at offset %llu",
                             i == 1 ? "offset" : "size", (ull)v[0], (ull)(index_offset + pos));
                goto done;
            }
            pos += (size_t)k;
        }
        uint64_t pgno = v[0], off = v[1], size = v[2];
        if (pgno > UINT32_MAX || (count && pgno <= e[count - 1].pgno)) {
            rc = lv_fail(err, LV_ECORRUPT, "page index: pgno %llu at offset %llu is out of order",
                         (ull)pgno, (ull)at);
            goto done;
        }
        if (h && (pgno == lock || pgno > h->commit)) {
            rc = lv_fail(err, LV_ECORRUPT, "page index: pgno %llu is %s", (ull)pgno,
                         pgno == lock ? "the lock page" : "beyond the commit size");
            goto done;
        }
        if (off < frame_floor || size < LTX_PAGE_HEADER_SIZE + 1 || size > UINT32_MAX ||
            off > block_end || size > block_end - off) {
            rc = lv_fail(err, LV_ECORRUPT,
                         "page index: pgno %llu has a frame (offset %llu, size %llu) outside the "
                         "page block [%llu, %llu)",
                         (ull)pgno, (ull)off, (ull)size, (ull)frame_floor, (ull)block_end);
            goto done;
        }
        if (count == cap) { /* cannot happen given the 3-byte minimum; belt and braces */
            rc = lv_fail(err, LV_ECORRUPT, "page index: too many entries");
            goto done;
        }
        e[count++] = (ltx_index_entry){(uint32_t)pgno, (uint32_t)size, off};
        frame_floor = off + size;
    }
    if (pos != varints) {
        rc = lv_fail(err, LV_ECORRUPT, "page index: %zu stray bytes after its end marker",
                     varints - pos);
        goto done;
    }
    out->entries = e;
    out->n = count;
    out->offset = index_offset;
    out->size = n;
    e = NULL;
done:
    lv_free(e);
    return rc;
}

void ltx_index_free(ltx_page_index *idx)
{
    if (idx) {
        lv_free(idx->entries);
        memset(idx, 0, sizeof *idx);
    }
}

const ltx_index_entry *ltx_index_find(const ltx_page_index *idx, uint32_t pgno)
{
    size_t lo = 0, hi = idx->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (idx->entries[mid].pgno < pgno)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < idx->n && idx->entries[lo].pgno == pgno ? &idx->entries[lo] : NULL;
}

/* ---- one frame ---- */

int ltx_lz4frame_decode(const uint8_t *src, size_t n, uint8_t *dst, uint32_t page_size,
                        size_t *used, const char **why)
{
    LZ4F_dctx *dctx = NULL;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) {
        *why = "no memory for an LZ4 frame decoder";
        return -1;
    }
    size_t in = 0, out = 0, hint = 1;
    int rc = -1;
    *why = "LZ4 frame is truncated";
    while (hint != 0) {
        size_t src_size = n - in, dst_size = page_size - out;
        if (src_size == 0)
            goto done;
        hint = LZ4F_decompress(dctx, dst + out, &dst_size, src + in, &src_size, NULL);
        if (LZ4F_isError(hint)) {
            *why = LZ4F_getErrorName(hint);
            goto done;
        }
        in += src_size;
        out += dst_size;
        if (hint != 0 && src_size == 0 && dst_size == 0) {
            *why = "LZ4 frame decompresses to more than a page";
            goto done;
        }
    }
    if (out != page_size) {
        *why = "LZ4 frame decompresses to less than a page";
        goto done;
    }
    *used = in;
    rc = 0;
done:
    LZ4F_freeDecompressionContext(dctx);
    return rc;
}

lv_err ltx_frame_decode(const uint8_t *frame, size_t n, uint32_t page_size, uint32_t expect_pgno,
                        uint8_t *page_out, uint32_t *pgno_out, char *err)
{
    if (!ltx_page_size_valid(page_size))
        return lv_fail(err, LV_EINVAL, "frame: invalid page size %u", page_size);
    if (n < LTX_PAGE_HEADER_SIZE + 1)
        return lv_fail(err, LV_ECORRUPT, "frame: %zu bytes is too short", n);
    uint32_t pgno = ltx_be32(frame);
    uint16_t flags = ltx_be16(frame + 4);
    if (pgno == 0)
        return lv_fail(err, LV_ECORRUPT, "frame: page number is zero");
    if (expect_pgno && pgno != expect_pgno)
        return lv_fail(err, LV_ECORRUPT, "frame: holds pgno %u, expected %u", pgno, expect_pgno);
    if (flags & ~LTX_PAGE_FLAG_MASK)
        return lv_fail(err, LV_ECORRUPT, "frame (pgno %u): invalid page header flags: 0x%04x", pgno,
                       flags);
    if (flags & LTX_PAGE_FLAG_SIZE) {
        if (n < LTX_PAGE_HEADER_SIZE + LTX_SIZE_PREFIX_SIZE + 1)
            return lv_fail(err, LV_ECORRUPT, "frame (pgno %u): %zu bytes is too short", pgno, n);
        uint32_t csize = ltx_be32(frame + LTX_PAGE_HEADER_SIZE);
        size_t have = n - LTX_PAGE_HEADER_SIZE - LTX_SIZE_PREFIX_SIZE;
        if (csize == 0 || csize > ltx_block_bound(page_size) || csize != have)
            return lv_fail(err, LV_ECORRUPT,
                           "frame (pgno %u): compressed size %u does not fit (frame holds %zu, "
                           "limit %u)",
                           pgno, csize, have, ltx_block_bound(page_size));
        int got =
            LZ4_decompress_safe((const char *)frame + LTX_PAGE_HEADER_SIZE + LTX_SIZE_PREFIX_SIZE,
                                (char *)page_out, (int)csize, (int)page_size);
        if (got != (int)page_size)
            return lv_fail(err, LV_ECORRUPT,
                           "frame (pgno %u): LZ4 block does not decompress to one %u-byte page",
                           pgno, page_size);
    } else {
        size_t used;
        const char *why;
        if (n - LTX_PAGE_HEADER_SIZE > ltx_lz4frame_bound(page_size))
            return lv_fail(err, LV_ECORRUPT, "frame (pgno %u): LZ4 frame of %zu bytes is too big",
                           pgno, n - LTX_PAGE_HEADER_SIZE);
        if (ltx_lz4frame_decode(frame + LTX_PAGE_HEADER_SIZE, n - LTX_PAGE_HEADER_SIZE, page_out,
                                page_size, &used, &why) != 0)
            return lv_fail(err, LV_ECORRUPT, "frame (pgno %u): %s", pgno, why);
        if (used != n - LTX_PAGE_HEADER_SIZE)
            return lv_fail(err, LV_ECORRUPT, "frame (pgno %u): %zu stray bytes after the LZ4 frame",
                           pgno, n - LTX_PAGE_HEADER_SIZE - used);
    }
    if (pgno_out)
        *pgno_out = pgno;
    return LV_OK;
}
