/*
 * wbuf: the local write buffer of write mode. SQLite transactions land here at local speed; the
 * syncer takes everything committed since the last sync (wbuf_dirty) as one level-0 LTX file
 * (vfs/l0file), uploads it, and then calls wbuf_mark_synced. The buffer lives in a file (where
 * LITESTREAM_BUFFER_PATH points) so that a restart after a crash or a failed final sync can ship
 * what was committed: wbuf_open recovers exactly the committed transactions.
 *
 * On disk, an append-only log after a fixed header (all integers big-endian):
 *
 *   offset 0   +-------------------------------------------------------------------+
 *              | header, 64 bytes                                                  |
 *              |   0 magic "LVWBUF01"   8 version u32 (1)   12 page size u32        |
 *              |  16 base TXID u64     24 base post-apply database checksum u64     |
 *              |  32 base commit u32 (database pages at the base)   36..55 zero     |
 *              |  56 CRC-64 of bytes 0..55                                          |
 *   64         +-------------------------------------------------------------------+
 *              | transaction 1:                                                    |
 *              |   page record * N:  "PAGE" u32 | pgno u32 | page (page size bytes) |
 *              |   commit record:    "CMIT" u32 | commit u32 (db pages after)       |
 *              |                     | CRC-64 u64 of every byte of the transaction  |
 *              |                       from its first page record to "commit u32"   |
 *              +-------------------------------------------------------------------+
 *              | transaction 2 ...                                                 |
 *              +-------------------------------------------------------------------+
 *              | the open transaction's page records, no commit record yet         |
 *              +-------------------------------------------------------------------+
 *
 * A page written twice (in one transaction or in later ones of the same sync window) appears
 * twice; the later record wins. Pages beyond a commit's size are dropped from the window, and a
 * page that comes back after such a shrink without being rewritten reads as zeros.
 *
 * Recovery (wbuf_open) scans the records and keeps every transaction whose commit record is
 * present and whose CRC matches; it stops at the first record that is short, unknown or fails its
 * CRC and truncates the file there. A crash of the process at any point therefore loses at most
 * the transaction that was being written, never leaves half of one: page records are written
 * before their commit record, and a commit record counts only with the CRC of all of it.
 *
 * When unsynced writes survive (the contract the VFS documents for users):
 *   - a crash of the process (kill -9, abort) after wbuf_commit returned: the transaction is in
 *     the file (the kernel has it) and a restart ships it;
 *   - a crash of the machine or a power loss: only transactions that were fsync'd survive: with
 *     WBUF_SYNC_COMMIT, every committed one; without it (the default, "local speed"), those the
 *     kernel happened to write back, always as a prefix of whole transactions (the CRC rejects a
 *     transaction whose bytes did not all reach the disk, and recovery stops there);
 *   - the file deleted or LITESTREAM_BUFFER_PATH pointed elsewhere on restart: lost.
 *
 * Sync (wbuf_mark_synced) writes a new file "<path>.tmp" holding the new base and the transactions
 * committed after the snapshot the sync shipped (and any open transaction), fsyncs it, renames it
 * over the buffer and fsyncs the folder. Crash points: before the rename, the old file stands and
 * a restart ships the same window again as base+1, which the store already holds (the VFS must
 * then recognise the object as its own, exactly as after a lost PUT response, and call
 * wbuf_mark_synced); after the rename, the new file stands. Either way nothing committed is lost.
 *
 * Bound: the file may not grow beyond max_bytes (0: no bound). A page or commit that would pass it
 * fails with LV_ENOMEM and a message naming the bound; the caller rolls back. Space overwritten by
 * later records is reclaimed only by a sync.
 *
 * Threads: a wbuf is guarded by its own mutex; every function may be called from any thread (the
 * writing connection and the syncer). Only one transaction is open at a time: begin/page/commit/
 * rollback belong to the single writer.
 */
#ifndef LV_WBUF_H
#define LV_WBUF_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define WBUF_HEADER_SIZE 64
#define WBUF_MAGIC       "LVWBUF01"

/* Flags for wbuf_create / wbuf_open. */
#define WBUF_SYNC_COMMIT 0x1u /* fdatasync at every commit (default off: local speed) */

typedef struct wbuf wbuf;

/* What a buffer holds: its base and the committed window on top of it. */
typedef struct wbuf_info {
    uint32_t page_size;
    uint64_t base_txid;     /* the last durable TXID (0: a new database, nothing shipped yet) */
    uint64_t base_checksum; /* its post-apply database checksum (0 for TXID 0) */
    uint32_t base_commit;   /* database pages at the base */
    uint32_t commit;        /* database pages after the last committed transaction */
    uint64_t txs;           /* committed transactions since the base */
    size_t dirty_pages;     /* distinct committed pages since the base */
    uint64_t bytes;         /* file size */
    uint64_t dropped_bytes; /* wbuf_open only: torn or invalid bytes removed by recovery */
    int in_tx;              /* a transaction is open */
} wbuf_info;

/*
 * Creates (or replaces, crash-safely: temp file and rename) the buffer at path, empty, on top of
 * base_txid / base_checksum / base_commit. On success *out is a handle the caller frees with
 * wbuf_close; on failure *out is NULL and no file is left at path unless one was there before.
 */
lv_err wbuf_create(wbuf **out, const char *path, uint32_t page_size, uint64_t base_txid,
                   uint64_t base_checksum, uint32_t base_commit, uint64_t max_bytes, unsigned flags,
                   char *err);

/*
 * Opens an existing buffer and recovers it (see the top of the file): the torn tail is truncated
 * away, and `info` (may be NULL) says what it holds. LV_ENOTFOUND if there is no file,
 * LV_ECORRUPT if its header is not a valid buffer header.
 */
lv_err wbuf_open(wbuf **out, const char *path, uint64_t max_bytes, unsigned flags, wbuf_info *info,
                 char *err);

/* Closes the handle, keeping the file (an unsynced window stays for the next open). */
void wbuf_close(wbuf *w);

void wbuf_get_info(wbuf *w, wbuf_info *info);

/* ---- one transaction of the writer ---- */

/* Opens a transaction. LV_EINVAL if one is open. */
lv_err wbuf_begin(wbuf *w, char *err);
/*
 * Appends one page image (page size bytes) of the open transaction. LV_EINVAL for pgno 0, the
 * lock page, or no open transaction; LV_ENOMEM past the bound; LV_EIO if the write fails. On
 * failure the transaction stays open and unchanged: roll it back.
 */
lv_err wbuf_page(wbuf *w, uint32_t pgno, const void *page, char *err);
/*
 * Commits the open transaction with the database at commit_pages pages (pages beyond are dropped
 * from the window). On failure the transaction stays open (roll it back).
 */
lv_err wbuf_commit(wbuf *w, uint32_t commit_pages, char *err);
/* Discards the open transaction's pages (truncates them off the file). No-op without one. */
lv_err wbuf_rollback(wbuf *w, char *err);

/* ---- reads ---- */

/*
 * The newest image of pgno in the buffer: with `pending` set (the writing connection), the open
 * transaction's pages count; else only committed ones. *found = 1 and page_size bytes in out if
 * the buffer has the page (a page dropped by a shrink and not rewritten reads as zeros); *found = 0
 * if the caller must read the base.
 */
lv_err wbuf_lookup(wbuf *w, uint32_t pgno, int pending, void *out, int *found, char *err);
/* The database size in pages after the last committed transaction (the base's if none). */
uint32_t wbuf_commit_pages(wbuf *w);

/* ---- the syncer ---- */

/* Everything committed since the base, for one level-0 file. Owned by the caller. */
typedef struct wbuf_dirty {
    uint32_t page_size;
    uint64_t base_txid, base_checksum;
    uint32_t base_commit;
    uint32_t commit; /* database pages after these commits */
    uint64_t txs;    /* transactions included; 0: nothing to ship */
    size_t n;
    uint32_t *pgnos; /* ascending, each <= commit, never the lock page */
    uint8_t *pages;  /* n * page_size bytes, in the order of pgnos */
    uint64_t mark;   /* where the window ended in the log (for wbuf_mark_synced) */
} wbuf_dirty;

/*
 * Copies the committed window into *d (freed with wbuf_dirty_free; zeroed on failure). The open
 * transaction, if any, is not included. Memory: n pages.
 */
lv_err wbuf_dirty_get(wbuf *w, wbuf_dirty *d, char *err);
void wbuf_dirty_free(wbuf_dirty *d);

/*
 * After the file made from d was uploaded: the base becomes (new_txid, new_checksum, d->commit),
 * and what was committed after d (and an open transaction) stays in the buffer as the next window.
 * LV_EINVAL if d does not belong to the current base. On failure the buffer is unchanged.
 */
lv_err wbuf_mark_synced(wbuf *w, const wbuf_dirty *d, uint64_t new_txid, uint64_t new_checksum,
                        char *err);

#endif
