/*
 * ltx_private: helpers the ltx_*.c files share and nobody else uses: big-endian loads and stores,
 * unsigned varints exactly as Go's encoding/binary writes them, and frame-size bounds.
 */
#ifndef LV_LTX_PRIVATE_H
#define LV_LTX_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include <lz4.h>

#include "error.h"

#define LTX_UVARINT_MAX 10 /* bytes in the longest u64 varint */

static inline uint16_t ltx_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t ltx_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t ltx_be64(const uint8_t *p)
{
    return ((uint64_t)ltx_be32(p) << 32) | ltx_be32(p + 4);
}

static inline void ltx_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void ltx_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void ltx_put_be64(uint8_t *p, uint64_t v)
{
    ltx_put_be32(p, (uint32_t)(v >> 32));
    ltx_put_be32(p + 4, (uint32_t)v);
}

/* Appends v as a varint to out (LTX_UVARINT_MAX bytes of room); returns the bytes written. */
static inline size_t ltx_uvarint_put(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/*
 * Reads a varint from p[0..n): returns the bytes used, 0 if it runs past n, or -1 if it overflows
 * 64 bits or is longer than LTX_UVARINT_MAX bytes (as Go's binary.Uvarint rejects).
 */
static inline int ltx_uvarint_get(const uint8_t *p, size_t n, uint64_t *v)
{
    uint64_t x = 0;
    unsigned s = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == LTX_UVARINT_MAX)
            return -1;
        uint8_t b = p[i];
        if (b < 0x80) {
            if (i == LTX_UVARINT_MAX - 1 && b > 1)
                return -1;
            *v = x | (uint64_t)b << s;
            return (int)i + 1;
        }
        x |= (uint64_t)(b & 0x7f) << s;
        s += 7;
    }
    return n >= LTX_UVARINT_MAX ? -1 : 0;
}

/* The largest LZ4 block a page of this size can compress to. */
static inline uint32_t ltx_block_bound(uint32_t page_size)
{
    return (uint32_t)LZ4_compressBound((int)page_size);
}

/*
 * The largest LZ4 frame (older page encoding) we accept for one page: a maximal header, the page
 * stored uncompressed in blocks of at least 64 KiB or split into 4 KiB-or-larger blocks, block
 * checksums, the end mark and a content checksum. Generous, but it bounds what a corrupt frame can
 * make us read.
 */
static inline uint32_t ltx_lz4frame_bound(uint32_t page_size)
{
    return 2 * page_size + 1024;
}

/* The page checksum from the CRC of the page bytes alone, crc64_combine'd with the pgno's. */
uint64_t ltx_page_checksum_from_crc(uint32_t pgno, uint64_t page_crc, uint64_t page_op);

/*
 * Decodes an older-encoding page: one LZ4 frame at src[0..n), which must decompress to exactly
 * page_size bytes into dst. *used receives the bytes the frame occupies (it may end before n).
 * Returns 0, or -1 with a reason in `why` (a static string).
 */
int ltx_lz4frame_decode(const uint8_t *src, size_t n, uint8_t *dst, uint32_t page_size,
                        size_t *used, const char **why);

/* pread/pwrite of exactly n bytes at off; a short file is an LV_EIO error naming the offset. */
lv_err ltx_pread_full(int fd, void *buf, size_t n, uint64_t off, char *err);
lv_err ltx_pwrite_full(int fd, const void *buf, size_t n, uint64_t off, char *err);

#endif
