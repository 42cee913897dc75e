/*
 * l0file: encodes one sync window of write mode (what vfs/wbuf hands the syncer) as the level-0
 * LTX file of the next TXID, in memory, with the database checksum chained:
 *
 *   header: MinTXID = MaxTXID = base TXID + 1, commit = the new size in pages, timestamp from the
 *           caller's clock, pre-apply = the base's post-apply checksum (0 for a snapshot)
 *   pages:  the dirty pages in ascending pgno, never the lock page
 *   trailer: post-apply = the new database checksum
 *
 * For base TXID 0 (a new database) the file is a snapshot (TXID 1): every page 1..commit but the
 * lock page; a page not in the dirty set is written as zeros.
 *
 * The new database checksum is computed incrementally from the base's (see lib/ltx.h: the XOR of
 * the page checksums): each dirty page's base checksum goes out and its new one comes in; pages a
 * growth adds without writing count as zero pages; pages a shrink removes go out. So the caller
 * provides, through `base_page_checksum`, the checksum of the base image of
 *   - every dirty page with pgno <= base_commit, and
 *   - every page in (commit, base_commit] (a shrink), the lock page excepted,
 * and of no other page (not called for a snapshot). A caller that has the base image computes it
 * with ltx_page_checksum(pgno, image, page_size); one that keeps a per-page checksum table looks
 * it up.
 *
 * Over a base without a database checksum (no_checksum) the file is NoChecksum: pre- and
 * post-apply 0, the flag set, and no base page checksum is needed.
 *
 * Threads: no state; the callback is called on the calling thread only.
 */
#ifndef LV_L0FILE_H
#define LV_L0FILE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ltx.h"

/* Writes into *sum the checksum of pgno's image at the base. */
typedef lv_err (*l0file_checksum_fn)(void *ctx, uint32_t pgno, uint64_t *sum, char *err);

typedef struct l0file_input {
    uint32_t page_size;
    uint64_t base_txid;     /* 0: a new database; the file is the snapshot of TXID 1 */
    uint64_t base_checksum; /* post-apply checksum at the base (ignored for TXID 0) */
    uint32_t base_commit;   /* database pages at the base (must be 0 for TXID 0) */
    uint32_t commit;        /* database pages after; at least 1 */
    size_t n;
    const uint32_t *pgnos; /* strictly ascending, 1..commit, never the lock page */
    const uint8_t *pages;  /* n * page_size bytes, in the order of pgnos */
    int64_t timestamp_ms;  /* the caller's clock */
    l0file_checksum_fn base_page_checksum;
    void *ctx;
    int no_checksum; /* the base has no database checksum: a NoChecksum file (pre- and post-apply
                      * 0, as Litestream writes), no callback; ignored for a snapshot */
} l0file_input;

typedef struct l0file_result {
    uint8_t *data; /* the whole LTX file; owned, freed by l0file_result_free */
    size_t size;
    ltx_header header;
    ltx_trailer trailer;
    uint64_t checksum; /* the new database checksum (= trailer.post_apply_checksum) */
} l0file_result;

/*
 * Encodes the file. LV_EINVAL for an input that breaks the rules above (naming the pgno); errors
 * of the callback are passed on. On failure *out is zeroed and nothing is allocated.
 */
lv_err l0file_encode(const l0file_input *in, l0file_result *out, char *err);
void l0file_result_free(l0file_result *r);

#endif
