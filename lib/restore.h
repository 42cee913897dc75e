/*
 * restore: rebuilds a database from a replica (lib/replica.h): lists every level, plans (the
 * newest snapshot, then the chain), downloads every file of the plan at once, decodes each with
 * the streaming decoder (every file checksum verified), merges the pages (a later file wins) into
 * the output and checks the chain end to end. ltxctl restore and verify use it; so will the VFS
 * hydrator and the scenario runner.
 *
 * How it goes, in round trips:
 *
 *   1. LIST of every level at once                         replica_list(r, -1)
 *      (a time target: the headers of every file, for their timestamps)
 *   2. the header and page index of plan files 2..n        replica_fetch_meta (none for a plan of
 *      (to know, before a byte is written, which file        one file)
 *      owns each page of the result)
 *   3. every file of the plan at once, large ones in       replica_fetch
 *      ranges, each streamed into a decoder thread of its
 *      own; a page is written only by the file that owns
 *      it, in runs (one pwrite per run of adjacent pages)
 *
 * Checks: each file decodes completely (header rules, frames, index, trailer, file checksum);
 * its header TXIDs are those of its name; one page size; each file's min TXID continues the
 * previous one's max; where both sides track checksums (no NoChecksum flag) and the ranges are
 * adjacent, a file's pre-apply checksum equals the previous file's post-apply; and when the last
 * file tracks checksums, the database checksum of the result equals its post-apply checksum.
 *
 * Threads: restore_run and restore_verify_files are called from one thread; they start one decoder
 * thread per file being downloaded (at most restore_options.concurrency at once) and join them
 * before returning. The progress callback is called from the calling thread. Memory: lv_malloc;
 * bounded by concurrency * (a queue of RESTORE_QUEUE_BYTES + a run buffer) plus two bytes per page
 * of the result.
 */
#ifndef LV_RESTORE_H
#define LV_RESTORE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ltx.h"
#include "replica.h"

#define RESTORE_QUEUE_BYTES (8u << 20) /* downloaded bytes waiting for one decoder, at most */
#define RESTORE_CONCURRENCY 32         /* default: files downloaded and decoded at once */

typedef struct restore_options {
    /* Called as bytes arrive (done never exceeds total); NULL for none. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
    unsigned concurrency; /* files downloaded and decoded at once; 0: RESTORE_CONCURRENCY */
} restore_options;

typedef struct restore_result {
    size_t plan_len;           /* files applied */
    uint64_t max_txid;         /* the TXID the database is at */
    uint32_t pages;            /* database size in pages (the last file's commit) */
    uint32_t page_size;        /* 0 for an empty result */
    uint64_t bytes_downloaded; /* body bytes of the plan's files (retries included) */
    uint64_t checksum;         /* the database checksum of the result */
    int checksum_verified;     /* 1 when it was compared with the last file's post-apply */
    int64_t timestamp_ms;      /* the last file's header timestamp */
} restore_result;

/*
 * The restore plan for target (NULL: the latest): lists every level; for a time target fetches
 * every file's header so that created_ms is the header timestamp (as Litestream does with
 * metadata). Errors as replica_plan_restore (a gap, LV_ENOTFOUND for nothing or a target not
 * reached) and the listing's. plan->files is the caller's (lv_free).
 */
lv_err restore_plan(replica *r, const replica_target *target, replica_plan *plan, char *err);

/*
 * Restores the state at target (NULL: the latest) into out_fd, a regular file open for writing
 * whose content is replaced (truncated first). The caller owns atomicity: on failure out_fd holds
 * garbage (ltxctl writes a temp file and renames it only on success). o and res may be NULL.
 * The error names the file at fault by its key when one is.
 */
lv_err restore_run(replica *r, const replica_target *target, int out_fd, const restore_options *o,
                   restore_result *res, char *err);

/* What restore_verify_files found for one file. */
typedef struct restore_file_check {
    lv_err rc;               /* LV_OK: the file decoded completely and every checksum matched */
    char err[LV_ERRLEN];     /* when rc != LV_OK: what was wrong (without the key) */
    ltx_header header;       /* valid when rc == LV_OK */
    ltx_trailer trailer;     /* valid when rc == LV_OK */
    uint32_t pages;          /* pages in the file */
    uint64_t pages_checksum; /* XOR of their page checksums, bit 63 set */
} restore_file_check;

/*
 * Downloads files[0..n) (at most o->concurrency at once) and verifies each completely, as
 * ltx_verify does, plus that its header TXIDs match its name. out[i] (n of them, the caller's)
 * says how files[i] fared; one bad file does not stop the others. Returns LV_OK when the downloads
 * themselves worked (look at out[i].rc for the files), or the download error.
 */
lv_err restore_verify_files(replica *r, const replica_file *files, size_t n,
                            const restore_options *o, restore_file_check *out, char *err);

/*
 * Checks the chain of a plan from its files' headers and trailers (all n decoded): TXIDs
 * continue, and tracked checksums chain (see the top). The error names the keys.
 */
lv_err restore_check_chain(replica *r, const replica_file *files, const ltx_header *h,
                           const ltx_trailer *t, size_t n, char *err);

#endif
