/*
 * crc64: CRC-64/ISO as Go's hash/crc64 computes it with crc64.ISO: reflected polynomial
 * 0xD800000000000000, initial value all ones, final XOR all ones. crc64("123456789") is
 * 0xb90956c775a41001. LTX uses it for page, database and file checksums.
 *
 * Table-driven, slicing-by-8 (eight 2 KiB tables built once, thread-safely). crc64_combine joins
 * two CRCs without touching the data again (as zlib's crc32_combine), so a page's bytes are hashed
 * once and the result serves both the page checksum and the running file checksum.
 */
#ifndef LV_CRC64_H
#define LV_CRC64_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continues a CRC: crc64_update(0, a) is the CRC of a, and crc64_update(crc64_update(0, a), b) is
 * the CRC of a followed by b (Go's crc64.Update convention).
 */
uint64_t crc64_update(uint64_t crc, const void *buf, size_t n);

/* The CRC of a||b, given crc_a = CRC(a), crc_b = CRC(b) and the length of b. */
uint64_t crc64_combine(uint64_t crc_a, uint64_t crc_b, uint64_t len_b);

/*
 * The same, with the length turned into an operator once (crc64_combine_op), for callers that
 * combine many pieces of one fixed length: one 64-step multiply per combine.
 */
uint64_t crc64_combine_op(uint64_t len_b);
uint64_t crc64_combine_with(uint64_t crc_a, uint64_t crc_b, uint64_t op);

#endif
