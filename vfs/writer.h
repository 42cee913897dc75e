/*
 * writer: write mode. The write state of one replica, shared by every connection of the process
 * that opens it in write mode (found by its URL, as rdb is): the lease, the write buffer
 * (vfs/wbuf), the table of SQLite's locks between those connections, the page checksums of the
 * base, and one background thread (the syncer) that ships the buffer, renews the lease and
 * compacts.
 *
 * Open (wdb_acquire), in order:
 *   1. the lease (lib/lease: <prefix>/lock.json, If-None-Match / If-Match): held by another
 *      writer -> LV_ECONFLICT naming the holder and the expiry (the VFS answers SQLITE_BUSY);
 *   2. a fresh look at the replica (rdb_refresh): the map the read side built before the lease
 *      may be behind a writer that finished meanwhile;
 *   3. the buffer: an existing one is recovered (wbuf_open) and reconciled with the replica:
 *        - its base is the replica's newest TXID: its window is shipped by the next sync;
 *        - its base is one behind and the sync record (<buffer>.sync, see below) says the file
 *          of base+1 was being uploaded, and the stored file is byte for byte the one recorded:
 *          that upload landed before the crash; the buffer moves on (wbuf_mark_synced);
 *        - otherwise (another writer moved the replica on, or the replica lost files) the window
 *          cannot be shipped any more: the buffer is renamed <buffer>.orphaned-<TXID> (so the
 *          data is kept for a human), the loss is logged at error level, and a fresh buffer
 *          starts at the replica's newest TXID;
 *      no buffer -> a new one at the replica's newest TXID (for an empty replica, at the first
 *      write, with the page size of that write: a new database whose first file is the snapshot
 *      of TXID 1);
 *   4. the syncer starts.
 *
 * Transactions (one writer at a time among the connections, by SQLite's own locks kept in the
 * table here: SHARED by many, RESERVED/PENDING/EXCLUSIVE by one, as unix-excl does in-process):
 * the pages SQLite writes go into the buffer's open transaction; it commits when SQLite says the
 * transaction committed: SQLITE_FCNTL_COMMIT_PHASETWO, which the pager sends after every commit
 * (after the journal is finalized and the file truncated, before the unlock; whatever the
 * synchronous setting, journal or locking mode) and never on a rollback; a failure there fails
 * the COMMIT. A transaction still open when the write lock drops was rolled back by SQLite (by
 * writing the old pages back, or not at all): it is dropped. Reads see the buffer first (the
 * writing connection also its open transaction), then the replica's newest map.
 *
 * Sync (every sync interval, on litestream_sync(), at the last release): the committed window
 * becomes one level-0 file of TXID base+1 (vfs/l0file), uploaded with If-None-Match: *. Before
 * the upload a sync record is written and fsync'd next to the buffer: <buffer>.sync, 64 bytes:
 *   "LVSYNC01" | txid u64 | base txid u64 | mark u64 | commit u32 | page size u32 |
 *   new checksum u64 | file size u64 | CRC-64 of the file u64 | CRC-64 of bytes 0..55 u64
 * so that an upload whose answer never came (a crash, a lost response the S3 client could not
 * settle) is recognised as ours later: on a 412 the stored object is read and compared with the
 * record (size and CRC-64). After the upload: the new file is laid over the replica's newest map
 * (rdb_publish_local, pages seeded into the cache), then the buffer drops the window
 * (wbuf_mark_synced), then the record is removed. In that order a reader never misses a page:
 * while both hold it they hold the same bytes.
 *
 * Checksums: the database checksum is chained (pre-apply = the previous post-apply) when the base
 * carries one; over a base without one (Litestream writes NoChecksum files) the files are written
 * NoChecksum too, as Litestream does. The checksum of each base page is kept in a table (8 bytes
 * a page) filled as pages are read and shipped; a page never read is read at sync time.
 *
 * Failures: a store that fails leaves the window in the buffer (up to the buffer bound, then
 * writes fail with SQLITE_FULL naming LITESTREAM_BUFFER_MAX), and the next sync carries it all.
 * A lost lease, or a 412 on a file that is not ours, stops the writer for good: every later
 * write fails (SQLITE_READONLY, the cause logged), the buffer is kept. A failed last sync keeps
 * the buffer file for the next open (logged with the path and the TXIDs it holds).
 *
 * Threads: a mutex guards the lock table and the state; the buffer has its own; syncs are
 * serialised by a second mutex (the syncer and litestream_sync()); no lock is held across I/O
 * but that one. The syncer is the only thread started.
 */
#ifndef VFS_WRITER_H
#define VFS_WRITER_H

#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "error.h"
#include "remote.h"

typedef struct wdb wdb;

/*
 * The write state of c->replica: an existing one (another reference) or a new one (steps 1-4
 * above, over the replica's rdb opened in write mode: no poller, an empty replica is a new
 * database). LV_ECONFLICT: another writer holds the lease (the message names it and its expiry)
 * or another process uses the buffer file.
 */
lv_err wdb_acquire(const vconf *c, wdb **out, char *err);
/* The read side of the replica (the wdb's reference; valid while w lives). */
rdb *wdb_rdb(wdb *w);
/*
 * Drops a reference; the last stops the syncer, ships what is left (a failure is logged and the
 * buffer kept, with its path), gives the lease back and closes the buffer (removing the file when
 * nothing is left to ship).
 */
void wdb_release(wdb *w);

/* ---- SQLite's locks, per connection (owner: the connection's file) ---- */

/* SQLITE_OK, SQLITE_BUSY (another connection holds what is asked), SQLITE_READONLY (stopped). */
int wdb_lock(wdb *w, const void *owner, int cur, int level);
/* Drops to level; a transaction still open is dropped (see the top). SQLite codes, err. */
int wdb_unlock(wdb *w, const void *owner, int cur, int level, char *err);
/* 1 if another connection holds RESERVED or higher. */
int wdb_reserved_by_other(wdb *w, const void *owner);

/* ---- pages ---- */

/* 0 until the first write of a new database sets it. */
uint32_t wdb_page_size(wdb *w);
/* The database size in pages as owner sees it (its open transaction, else the last commit). */
uint32_t wdb_pages(wdb *w, const void *owner);
/*
 * Page pgno as owner sees it, into out (page size bytes; zeros beyond the end). SQLite codes:
 * SQLITE_IOERR_READ with the cause in err.
 */
int wdb_read(wdb *w, const void *owner, uint32_t pgno, uint8_t *out, char *err);
/* One whole page of owner's transaction (owner holds RESERVED or more). SQLite codes, err. */
int wdb_write(wdb *w, const void *owner, uint32_t pgno, const void *page, uint32_t size, char *err);
int wdb_truncate(wdb *w, const void *owner, uint32_t pages, char *err);
/* SQLITE_FCNTL_COMMIT_PHASETWO: commits owner's open transaction. SQLite codes, err. */
int wdb_commit(wdb *w, const void *owner, char *err);

/* ---- sync ---- */

/*
 * Ships everything committed so far (waiting for a sync in progress first) and returns the TXID
 * that is durable now in *txid. LV_OK with nothing to ship returns the current one.
 */
lv_err wdb_sync(wdb *w, uint64_t *txid, char *err);
/* The last durable TXID (0: none yet). */
uint64_t wdb_txid(wdb *w);
/* The "write" member of litestream_stats(), appended to out: {"txid":..., ...}. */
void wdb_stats_json(wdb *w, lv_buf *out);

#endif
