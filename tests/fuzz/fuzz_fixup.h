/*
 * fuzz_fixup: makes the checksums of a fuzzed LTX file right again, so that mutants get past the
 * file checksum and reach the code behind it (the trailer rules, the snapshot's post-apply check,
 * apply's incremental database checksum). A mutated file fails its CRC-64 almost always; without
 * this the fuzzer would explore little more than the seed files' own paths there.
 *
 * The copy keeps the input's layout byte for byte and rewrites only:
 *   - the pre-apply checksum of a checksummed incremental file: the base database's checksum, so
 *     that ltx_apply onto the base gets past its first check;
 *   - the post-apply checksum: for a snapshot, the fold of its pages; for an incremental file, the
 *     checksum of the database the base becomes (pages from the file, else from the base, else a
 *     hole that reads as zeros), as ltx_db_checksum_fd would compute it on the result;
 *   - the file checksum, over the header, the frames with their *decompressed* pages, and the
 *     bytes from the zero page header to the end of the post-apply checksum.
 * Everything else (the page index, the frames' bytes, stray bytes) stays as the fuzzer made it.
 *
 * Only files whose every frame is an LZ4 block with a size prefix are fixed: an older-encoding
 * frame has no length of its own to walk by. Not thread-safe (neither is libFuzzer's loop).
 */
#ifndef LV_FUZZ_FIXUP_H
#define LV_FUZZ_FIXUP_H

#include <stddef.h>
#include <stdint.h>

/* The database the decode target applies files onto; page_count 0: an empty file. */
typedef struct fixup_base {
    const uint8_t *pages;
    uint32_t page_size;
    uint32_t page_count;
    uint64_t checksum; /* its database checksum (0 for an empty file) */
} fixup_base;

/*
 * A fixed copy of in[0..n) (same length; the caller frees it with free()), or NULL when the input
 * cannot be walked (no valid header, an older-encoding or undecodable frame, truncated) or the
 * copy would be identical to the input.
 */
uint8_t *fuzz_fixup(const uint8_t *in, size_t n, const fixup_base *base);

#endif
