/*
 * remote: one replica as the VFS sees it, shared by every connection of the process that opens
 * it (found by its URL): the replica handle, the page cache, the table of LTX files seen, the
 * newest page map, and the poller thread that keeps that map current.
 *
 * Open, in round trips: one listing of every level at once, one batch fetching the header and
 * page index of every file in the restore plan at once (a second only for an index larger than
 * 32 KiB), and the first page read can start: two round trips, whatever the number of files.
 *
 * Versions: the newest page map is published under the mutex; a reader takes a reference to it
 * when its read transaction starts (rdb_latest) and reads only through that version until the
 * transaction ends, so it sees one TXID throughout, and new TXIDs appear between transactions.
 * A time-travel view is a page map built for a target time (rdb_build_at), held by its
 * connection alone.
 *
 * The poller (read mode only) wakes every poll interval, lists levels 0 and 1, chains the files
 * that continue the newest map (overlapping compacted files are fine; the file reaching furthest
 * wins, as in the restore plan), fetches their headers and indexes in one batch, applies them to
 * a copy of the map and publishes it. A gap it cannot bridge yet is logged and retried next time
 * (a compaction will cover it); after a few such polls it plans across every level instead.
 * Errors never stop it.
 *
 * Compaction and retention: files a map points at are deleted once a compaction covers them (L0
 * after 5 minutes). So when a new level-1 file covers TXIDs the newest map already has, the map
 * is rebuilt at the same TXID from a fresh plan (the same pages, now in the compacted files), and
 * a read that still finds its file gone (a long transaction's older map) rebuilds its own map at
 * its TXID and tries again (rdb_rebuild): same TXID, same answers.
 *
 * Page reads: cache (by pgno and the image's TXID), else one ranged GET of the frame, extended
 * over the following frames of the same file that are not cached when reads run sequentially
 * (read-ahead doubles from 1 to 64 pages while misses stay adjacent); every frame is decoded and
 * length-checked before it is cached or returned.
 *
 * Hydration (vfs/hydrate): when the config names a hydration path, the rdb starts a hydrator at
 * open and stops it first at the end; a page read that misses the cache is served from the local
 * copy while the copy is at exactly the reading map's TXID, else remotely.
 *
 * Threads: the mutex guards the file table, the newest map, the stats and the poll state; it is
 * never held across I/O. The poller is the only thread the module starts; rdb_release of the last
 * reference stops and joins it.
 */
#ifndef VFS_REMOTE_H
#define VFS_REMOTE_H

#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "error.h"
#include "pagemap.h"
#include "replica.h"

typedef struct rdb rdb;

/* Counters for litestream_stats(). */
typedef struct rdb_stats {
    uint64_t page_requests, page_bytes;      /* ranged GETs of frames (read-ahead included) */
    uint64_t pages_fetched, pages_readahead; /* pages decoded from them; those not asked for */
    uint64_t list_requests, meta_files;      /* listings; files whose header+index were fetched */
    uint64_t polls, poll_errors, read_errors;
    uint64_t cache_hits, cache_misses, cache_evictions, cache_bytes, cache_capacity;
    uint64_t txid;
    int64_t last_poll_ms; /* wall clock of the last successful poll, 0: never */
} rdb_stats;

/*
 * The shared state for c->replica: an existing one (another reference) or a new one, opened
 * (listing, plan, page indexes; waiting up to c->open_timeout_ms for an empty replica's first
 * file), its poller started. Errors name the replica.
 */
lv_err rdb_acquire(const vconf *c, rdb **out, char *err);
/* Drops a reference; the last stops the poller and frees everything. */
void rdb_release(rdb *d);

const char *rdb_describe(const rdb *d);
/* 0 for the new database of write mode until its first file. */
uint32_t rdb_page_size(rdb *d);

/* The newest page map, with a reference the caller drops with pagemap_unref. */
pagemap *rdb_latest(rdb *d);

/*
 * A page map of the state at time_ms (the last file whose header timestamp is at or before it),
 * built afresh from a listing: the caller owns the reference. LV_ENOTFOUND when the replica
 * holds nothing that old.
 */
lv_err rdb_build_at(rdb *d, int64_t time_ms, pagemap **out, char *err);

/*
 * Reads page pgno of version m into out (page size bytes). LV_ENOTFOUND for a page no file
 * holds; LV_ECONFLICT when the file that holds it is gone from the replica (compacted away and
 * deleted by retention): rdb_rebuild gives a map of the same TXID over the files there now. The
 * error names the key, the range and the cause.
 */
lv_err rdb_read_page(rdb *d, const pagemap *m, uint32_t pgno, uint8_t *out, char *err);

/*
 * A page map of exactly TXID txid built afresh from a listing (plan with that TXID as target):
 * the same pages as any other map of that TXID, from the files the replica holds now. The
 * caller owns the reference. Also publishes it as the newest map when that one is at txid.
 */
lv_err rdb_rebuild(rdb *d, uint64_t txid, pagemap **out, char *err);

/* ---- write mode (vfs/writer.c) ---- */

/* The replica handle (for the lease and uploads); valid while d lives. */
replica *rdb_replica(rdb *d);
/*
 * Lists the replica again and publishes its newest state as the newest map when it moved on (the
 * writer, once it holds the lease). LV_ENOTFOUND if the replica lost everything it held.
 */
lv_err rdb_refresh(rdb *d, char *err);
/*
 * Lays a level-0 file the writer has just uploaded (file[0..size)) over the newest map and
 * publishes the result; its pages (pgnos[0..n), images in pages) go into the cache. The first
 * file of a new database sets the page size.
 */
lv_err rdb_publish_local(rdb *d, const uint8_t *file, size_t size, const uint32_t *pgnos,
                         const uint8_t *pages, size_t n, char *err);

/* The hydrator (LITESTREAM_HYDRATION_PATH), NULL when hydration is off or did not start. */
struct hydrator *rdb_hydrator(rdb *d);

/* Seconds since the last successful poll, -1 if none yet. */
int64_t rdb_lag_seconds(rdb *d);
void rdb_get_stats(rdb *d, rdb_stats *out);
/* litestream_stats() as JSON, appended to out. */
void rdb_stats_json(rdb *d, lv_buf *out);

/* The log: level-filtered lines to stderr (read failures also go to sqlite3_log, from the
 * extension). */
void rdb_log(vconf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rdb_set_log_level(vconf_log_level level);

#endif
