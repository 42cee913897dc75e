/*
 * compact: one pass of what Litestream's Store does to a replica over time (reference:
 * litestream-vfs-behavior.md 1.2, 1.4, 2.8, 2.9), for `ltxctl compact URL` and for the write-mode
 * VFS's background thread:
 *
 *   1. compaction L0->L1, L1->L2, L2->L3: the files of level dst-1 newer than dst's max TXID are
 *      merged with ltx_compact into one file "<min>-<max>.ltx" at dst, written conditionally
 *      (If-None-Match: *), when dst is due: it has no file yet, or its newest file was created
 *      before now truncated to the level's interval (30s, 5m, 1h by default);
 *   2. a snapshot at level 9 (the latest state restored and encoded as TXID 1..max) when the
 *      newest snapshot is older than the snapshot interval (24h) or force_snapshot, and it would
 *      reach further than the newest snapshot;
 *   3. retention: L0 files covered by L1 and older than the L0 retention (5m), walking in order
 *      and stopping at the first younger file, never the newest L0 file; snapshots older than the
 *      retention (24h) except the newest, and then in levels 1..3 the files below the newest
 *      deleted snapshot's TXID, keeping each level's last file.
 *
 * The pass works from one listing of every level taken at its start (the files it writes or
 * deletes are added to or taken from it as it goes). A compaction or snapshot another compactor
 * wrote first (the conditional write lost) is reported and counted, and the pass goes on with
 * that file as if it had written it: the same inputs give the same file.
 *
 * Every step reports one line saying what it did or why not, worded as ltxctl prints them
 * ("L0 -> L1: compacted 5 files (TXID ...) into KEY, N bytes", "snapshot: not due (next at T)",
 * "retention: deleted KEY (L0, covered by L1)"). A dry run reports the same without writing,
 * deleting or downloading.
 *
 * Threads: no global state. compact_pass may run in one thread (a background thread) while other
 * threads use the same replica handle (replica.h: a replica may be used from several threads);
 * two passes over one replica at once are safe for the store (conditional writes, deletes of
 * covered files only) but wasteful. restore_run's decoder threads live inside a snapshot step.
 * The report callback is called from the calling thread. Memory: lv_malloc (lib/alloc.h); a
 * snapshot is built in memory (its whole LTX file) before it is written, plus a temporary file
 * holding the restored database (unlinked at once).
 */
#ifndef LV_COMPACT_H
#define LV_COMPACT_H

#include <stdint.h>

#include "error.h"
#include "replica.h"

#define COMPACT_MAX_LEVEL 3 /* levels 1..COMPACT_MAX_LEVEL are compactions */

/* Settings of one pass; compact_options_default fills Litestream's defaults. */
typedef struct compact_options {
    int64_t interval_ms[4];       /* [1..3]: how often L1, L2, L3 are due: 30s, 5m, 1h ([0] unused);
                                   * 0: always due */
    int64_t snapshot_interval_ms; /* 24h; a snapshot at level 9 when the newest is older;
                                   * <0 never */
    int64_t retention_ms;         /* 24h; snapshots older are deleted (the newest kept), and the
                                   * compactions below them; 0 keep */
    int64_t l0_retention_ms;      /* 5m; L0 files covered by L1 and older are deleted (never the
                                   * newest L0); 0 keep */
    int only_level;               /* 0: every due step; 1..3: only that level, due or not, no
                                   * snapshot, no retention */
    int force_snapshot;           /* write a snapshot whatever its interval */
    int dry_run;                  /* report what would be done; write, delete, download nothing */
    int64_t now_ms;               /* the clock the decisions use (the caller's; injected) */
    uint64_t max_txid;            /* 0: everything listed; else ignore files whose max TXID is
                                   * above it (a writer compacts only what it has confirmed) */
    /* Added for ltxctl: */
    int stop_on_conflict; /* 1: a lost conditional write ends the pass with LV_ECONFLICT
                           * ("KEY: already exists: ..."), as ltxctl compact always did;
                           * 0 (default): report it, count it, go on */
    const char *tmp_dir;  /* where the snapshot step restores the database to (a temporary
                           * file, unlinked at once); NULL: "/tmp". Read during the call
                           * only. */
} compact_options;

/* Fills *o with the defaults above; now_ms 0 (set it), max_txid 0, no flags. */
void compact_options_default(compact_options *o);

/* What a pass did (in a dry run: what it would have done; bytes_written stays 0). */
typedef struct compact_stats {
    unsigned compactions[4]; /* [1..3]: files written at L1, L2, L3 ([0] unused) */
    unsigned snapshots;      /* snapshots written */
    unsigned deleted;        /* files deleted by retention */
    uint64_t bytes_written;  /* bytes of the files written */
    unsigned conflicts;      /* conditional writes lost to another compactor (not written by us,
                              * not counted above) */
} compact_stats;

/*
 * One line per step (what it did or why not), as ltxctl prints them, without a newline; line is
 * valid during the call only. NULL: silent.
 */
typedef void (*compact_report_fn)(void *ctx, const char *line);

/*
 * One pass over replica r: due compactions L0->L1->L2->L3, a due snapshot, retention (see the
 * top). Writes are conditional (If-None-Match: *); a file another compactor wrote first is not an
 * error (reported, counted in stats->conflicts, the pass goes on) unless o->stop_on_conflict.
 * Errors name the key and the cause ("KEY: compaction failed: ...", "URL: retention: ...") and
 * stop the pass. A hole in a level (the inputs of a compaction do not follow each other or the
 * level they go to) is LV_ECONFLICT ("KEY: L0 has a gap: ..."), as it may be a listing that raced
 * an upload; one a snapshot covers is not a hole (retention made it: the level goes on above it).
 * On an error what was written or deleted before stays (every state of the replica along the way
 * restores to the same database). stats (may be NULL) is added to, also on failure. err: LV_ERRLEN
 * bytes, may be NULL.
 */
lv_err compact_pass(replica *r, const compact_options *o, compact_report_fn report, void *ctx,
                    compact_stats *stats, char *err);

/*
 * A snapshot of the SQLite database on fd (its page size from its header, every page of the file
 * but the lock page) covering TXIDs 1..max_txid, stamped timestamp_ms, appended to out through
 * the LTX encoder. *h and *t (may be NULL) receive its header and trailer. LV_EINVAL for an empty
 * database, LV_ECORRUPT for a file that is not one. On failure out holds a partial file: the
 * caller discards it.
 */
lv_err compact_encode_snapshot(int fd, uint64_t max_txid, int64_t timestamp_ms, lv_buf *out,
                               ltx_header *h, ltx_trailer *t, char *err);

#endif
