/*
 * hydrate: LITESTREAM_HYDRATION_PATH. A background thread builds a local copy of the database
 * (one file, the raw pages of one TXID, as SQLite would lay them out) while reads go to object
 * storage; once the copy is complete and verified, reads of the TXID it is at are served from it.
 *
 * The life of a hydration file (one thread, "hydrator", per hydrator_start):
 *
 *   1. build     restore the state of m0 = rdb_latest(d) (lib/restore: the plan's files streamed
 *                in parallel, several ranged GETs in flight, pages written in order, every
 *                checksum verified) straight into the file, with a target TXID of m0's.
 *                Progress (0..99.9 %) follows the restore's bytes.
 *                Or, with keep=1 and a kept file (see below), reuse it instead.
 *   2. catch up  while rdb_latest(d) is at a newer TXID than the file (T): every page whose
 *                newest image comes from a file ending after T (pagemap_file_txid > T), and every
 *                page beyond the old end, is read with rdb_read_page and written; the file is cut
 *                to commit * page size; its TXID becomes the new map's. A page whose image comes
 *                from a file ending at or before T has not changed since T, whichever file holds
 *                it: so a compaction (the map rebuilt over other files) costs no rewrite. Read
 *                mode gets new maps from the poller; write mode from the syncer
 *                (rdb_publish_local): one mechanism.
 *   3. verify    the file holds exactly commit pages, and its database checksum (kept per page,
 *                8 bytes a page) equals pagemap_checksum of the map when the chain carries one.
 *   4. ready     cutover: hydrator_read serves pages of the file's TXID from now on.
 *   5. follow    every 50 ms (or at hydrator_notify) the file moves to the newest TXID as in 2,
 *                its checksum updated page by page and compared with the map's again.
 *
 * Answers never change: hydrator_read(h, T, ...) serves a page only while the file is at T (the
 * caller's map TXID), under a read lock; the thread moves the file to a new TXID by first taking
 * the write lock to mark it "moving" (no TXID: readers go remote), then writing without the lock,
 * then taking it again to set the new TXID. A reader never waits: it only tries the read lock
 * (a writer waiting or holding it sends the read remote).
 *
 * The file is a temporary. Without keep it is truncated at start whatever it held (a file left
 * by a killed process is never trusted), deleted by hydrator_stop, by an atexit hook, and by a
 * SIGTERM/SIGINT handler (installed only where the disposition is SIG_DFL, never over an
 * application's handler: it unlinks the registered paths, a fixed table prepared beforehand, and
 * re-raises the signal with the default disposition). A file is flock'ed while in use: a second
 * process (or hydrator) on the same path fails to hydrate instead of truncating it.
 *
 * Keep (LITESTREAM_HYDRATION_KEEP=1): on a clean stop (hydrator_stop or exit(), not a signal) of
 * a READY hydrator the file is fsync'd and <path>.meta written next to it (temp, fsync, rename):
 *
 *   offset  size  field
 *        0     8  "LVHYDR02"
 *        8     8  TXID of the file               (big-endian, as every field)
 *       16     8  database checksum of the file
 *       24     4  page size
 *       28     4  page count
 *       32     8  header timestamp (ms) of the replica's file that gave that TXID
 *       40     8  CRC-64 of bytes 0..39
 *
 * At the next start with keep, the file is reused only if: the meta is valid; the file has
 * page count * page size bytes and its database checksum equals the meta's (nothing changed it);
 * the replica still gives that TXID (the newest map, or rdb_rebuild at it: LV_ENOTFOUND when
 * retention moved past it) with the same page size, page count and, when the chain carries one,
 * the same checksum; when it carries none (Litestream's NoChecksum files), the same header
 * timestamp of the file that gave the TXID (a replica replaced by another database of the same
 * shape is told apart by it; a compaction ending at that TXID keeps its last input's timestamp,
 * and any other difference only costs a rebuild). The meta is deleted before the file is touched (a
 * crash from then on leaves a file without meta: discarded next time). Then it catches up as in 2.
 * Otherwise it is deleted and rebuilt, and the log says why.
 *
 * Failures (store down, disk full, a checksum that does not match): state FAILED with the reason
 * (stats, and rdb_log at warn level), the file deleted, reads stay remote (hydrator_read returns
 * 0); the build is tried again every HYDRATOR_RETRY_MS, HYDRATOR_RETRIES times. After cutover a
 * store error while catching up only delays (the file stays "moving", reads remote, tried again
 * at the next tick); a write error or a checksum mismatch fails as above.
 *
 * Threads: one per hydrator (the hydrator thread) does all file writes. h->mu guards the state,
 * the stats, the error text and the stop flag, never held across I/O; h->rw guards the TXID
 * readers may use (serving) and the fd against readers; h->apply_mu is held by the thread while
 * it changes the file (I/O under it: only the exit hook ever waits for it, at most 2 s, to
 * freeze the file at a TXID before writing the meta; hydrator_stop joins the thread instead). The
 * process-wide registry (live hydrators, the signal-safe path table) has its own mutex.
 * hydrator_read, hydrator_stats, hydrator_notify may be called from any thread. Memory: lv_malloc.
 */
#ifndef VFS_HYDRATE_H
#define VFS_HYDRATE_H

#include <stdint.h>

#include "buf.h"
#include "error.h"
#include "remote.h"

#define HYDRATOR_RETRY_MS  5000 /* between build attempts after a failure */
#define HYDRATOR_RETRIES   3    /* build attempts after the first */
#define HYDRATOR_FOLLOW_MS 50   /* how often the thread looks at rdb_latest after cutover */
#define HYDRATOR_MAX_LIVE  16   /* hydration files one process can have at once */

typedef struct hydrator hydrator;

typedef enum hydrator_state {
    HYDRATOR_IDLE = 0,    /* not started yet */
    HYDRATOR_BUILDING,    /* restoring (or checking a kept file) */
    HYDRATOR_CATCHING_UP, /* moving the file to the newest TXID before cutover */
    HYDRATOR_READY,       /* serving reads (at times "moving": between two TXIDs) */
    HYDRATOR_FAILED       /* no file; reads remote; error says why */
} hydrator_state;

typedef struct hydrator_info {
    hydrator_state state;
    double progress;           /* percent, 0..100; 100 only when READY */
    uint64_t txid;             /* the TXID the file is at (0: none yet) */
    uint32_t pages, page_size; /* of the file */
    uint64_t bytes_written;    /* page bytes written to the file (restore and catch-up) */
    uint64_t bytes_downloaded; /* LTX bytes the restores fetched */
    uint64_t restores;         /* full restores started (0 when a kept file was reused) */
    int reused;                /* 1: a kept file was reused */
    uint64_t txids_applied;    /* TXIDs the file moved through after its build */
    uint64_t reads;            /* pages hydrator_read served */
    unsigned attempts;         /* builds started */
    int64_t cutover_ms;        /* from hydrator_start to READY; -1 until then */
    char error[LV_ERRLEN];     /* the last failure ("" if none) */
} hydrator_info;

/*
 * Starts hydrating d into path (keep: reuse and keep the file across clean exits, see the top).
 * Returns at once; the work is the thread's. d must outlive the hydrator (hydrator_stop before
 * rdb_release). Errors (the hydrator is not started, *out NULL): LV_EINVAL for an empty or too
 * long path, LV_ECONFLICT when this process hydrates to path already or HYDRATOR_MAX_LIVE are
 * live, LV_ENOMEM. Free with hydrator_stop.
 */
lv_err hydrator_start(rdb *d, const char *path, int keep, hydrator **out, char *err);

/*
 * Stops and joins the thread (a restore in progress is cut short: its writes are made to fail);
 * deletes the file unless keep (then, when the file was READY, writes <path>.meta; else deletes
 * both), frees h. NULL is ignored. After the exit hook ran (the process is ending) it does
 * nothing: the hook has dealt with the file.
 */
void hydrator_stop(hydrator *h);

/* Wakes the thread to look at rdb_latest now (after a poll or a sync published a new map). */
void hydrator_notify(hydrator *h);

/*
 * Page pgno of TXID txid into out (page_size bytes), from the file: 1 when served, 0 when the
 * caller must read it remotely (not READY, the file at another TXID or moving, another page size,
 * a page beyond the file's end, a read error). Never blocks on the thread. Raw bytes as stored:
 * the caller patches page 1 as it does remote reads.
 */
int hydrator_read(hydrator *h, uint64_t txid, uint32_t pgno, uint8_t *out, uint32_t page_size);

/* A snapshot of the state and counters. h may be NULL (state IDLE, progress 0). */
void hydrator_stats(hydrator *h, hydrator_info *out);
/* "idle", "building", "catching_up", "ready", "failed". */
const char *hydrator_state_name(hydrator_state s);
/*
 * The "hydration" member of litestream_stats(), appended to out: {"state":"ready",
 * "progress":100.0,"path":...,"txid":"...",...}; h NULL: {"state":"off"}.
 */
void hydrator_stats_json(hydrator *h, lv_buf *out);

#endif
