/*
 * replica: a Litestream replica, the LTX files of one database in object storage or a directory,
 * behind one interface with two backends, and the restore plan over its files.
 *
 * URLs
 *   s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&force-path-style=true
 *       (also skip-verify=true, sign-payload=false; camelCase spellings as Litestream accepts them:
 *       forcePathStyle, skipVerify, signPayload). endpoint implies path style. Query values
 *       override the environment (s3_config_from_env), which overrides the defaults.
 *   file:///abs/dir  (or a plain path: /abs/dir, ./rel/dir)
 *
 * Layout (as Litestream writes it; DESIGN.md "Object storage layout"):
 *
 *   s3    <prefix>/<LLLL>/<MIN>-<MAX>.ltx      LLLL: level, 4 lower-case hex digits (0009)
 *   file  <dir>/ltx/<L>/<MIN>-<MAX>.ltx        L: level in decimal
 *         MIN, MAX: the TXID range, 16 lower-case hex digits each
 *
 * Names that do not match ^[0-9a-f]{16}-[0-9a-f]{16}\.ltx$ are ignored. Levels are 0..9: 0 one
 * file per sync, 1..3 compactions, 9 snapshots (REPLICA_SNAPSHOT_LEVEL).
 *
 * Writes: S3 PUT with x-amz-meta-litestream-timestamp (the LTX header timestamp, RFC 3339 UTC with
 * milliseconds), conditional (If-None-Match: *) when asked; the file backend writes a temp file,
 * fsyncs, and links it into place (link(2) fails if the name exists: the same condition), and sets
 * the mtime to the header timestamp as Litestream does.
 *
 * Threads: a replica may be used from several threads at once. Memory: lv_malloc; every array
 * returned is the caller's to free with lv_free (and ltx_index_free for indexes).
 */
#ifndef LV_REPLICA_H
#define LV_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"
#include "ltx.h"
#include "s3.h"

#define REPLICA_SNAPSHOT_LEVEL 9
#define REPLICA_MAX_LEVEL      9
#define REPLICA_INDEX_TAIL     32768 /* first guess at the bytes holding index and trailer */
#define REPLICA_META_HEAD                                                                          \
    8292 /* bytes read from a file's start: its header and, mostly, the                            \
          * first frame of 4 KiB pages (page 1 of a snapshot) */

/* One LTX file of a replica, as a listing shows it. */
typedef struct replica_file {
    int level;
    uint64_t min_txid, max_txid;
    uint64_t size;
    int64_t created_ms; /* LIST LastModified / file mtime; or the header timestamp once known */
} replica_file;

typedef struct replica replica;

/* Options beyond the URL; NULL means all defaults. */
typedef struct replica_options {
    const s3_config *s3; /* base S3 settings (NULL: s3_config_init + s3_config_from_env); the URL
                          * query overrides them */
} replica_options;

/*
 * Opens the replica a URL names. Does no I/O beyond parsing (a missing bucket shows up at the
 * first listing). Errors: LV_EINVAL with what is wrong with the URL. Close with replica_close.
 */
lv_err replica_open(const char *url, const replica_options *opts, replica **out, char *err);
void replica_close(replica *r);
/* "s3://bucket/prefix (http://127.0.0.1:9000)" or "file:///dir": for messages. */
const char *replica_describe(const replica *r);
/* The S3 client of an s3 replica (NULL for file), for callers that want its batch interface. */
s3_client *replica_s3(replica *r);

/* The key or path of a file: "prefix/0000/0000000000000001-0000000000000001.ltx". */
void replica_file_key(const replica *r, int level, uint64_t min_txid, uint64_t max_txid,
                      lv_buf *out);
/*
 * The key or path of another object of the replica, beside its levels: "<prefix>/<name>" (s3;
 * "<name>" when the prefix is empty) or "<dir>/<name>" (file). For lock.json (lib/lease.h).
 */
void replica_object_key(const replica *r, const char *name, lv_buf *out);
/* The bucket of an s3 replica; NULL for a file replica. Valid while r is open. */
const char *replica_bucket(const replica *r);

/* Parses "<16 hex>-<16 hex>.ltx": 1 and the TXIDs, or 0 (not an LTX name). */
int replica_parse_name(const char *name, size_t len, uint64_t *min_txid, uint64_t *max_txid);

/*
 * The files of one level in ascending (min_txid, max_txid) order, or of every level at once
 * (level -1: all levels listed in parallel, sorted by level then TXIDs). *files is the caller's
 * (lv_free); an empty or missing level is no files, not an error.
 */
lv_err replica_list(replica *r, int level, replica_file **files, size_t *n, char *err);

/*
 * The files of one level whose min TXID is above after_txid, in ascending order: what a poller
 * that has seen the level up to after_txid needs. On S3 the listing starts after the key of the
 * last TXID seen (ListObjectsV2 start-after), so a poll reads only the new entries, not the
 * whole level.
 */
lv_err replica_list_after(replica *r, int level, uint64_t after_txid, replica_file **files,
                          size_t *n, char *err);

/*
 * Bytes [off, off+len) of a file (len S3_TO_END: to its end; len 0: nothing, no request),
 * appended to out. All of them or an error: a range that comes back short (the file is smaller
 * than off+len) is LV_ECORRUPT "KEY: range at OFF: got N of LEN bytes"; a range starting at or
 * past the end is LV_EINVAL (S3's 416). On error out is unchanged.
 */
lv_err replica_read(replica *r, const replica_file *f, uint64_t off, uint64_t len, lv_buf *out,
                    char *err);
/*
 * Whole files at once, in parallel, each handed to sink in order of its bytes (large files are
 * fetched as several ranges at once and delivered in order). sink's restart flag: start over.
 */
lv_err replica_fetch(replica *r, const replica_file *files, size_t n,
                     int (*sink)(void *ctx, size_t which, const void *data, size_t len,
                                 int restart),
                     void *ctx, char *err);

/* The header and page index of one file (replica_fetch_meta fills one per file). */
typedef struct replica_meta {
    replica_file file;
    ltx_header header;
    ltx_trailer trailer;
    ltx_page_index index; /* free with ltx_index_free */
    lv_buf head;          /* the file's first bytes as fetched (the whole file when it is no larger
                           * than REPLICA_INDEX_TAIL): frames inside need no GET of their own */
} replica_meta;

/*
 * Headers, trailers and page indexes of files[0..n), all fetched at once: one ranged GET of the
 * first REPLICA_META_HEAD bytes and one of the last REPLICA_INDEX_TAIL bytes per file (or the
 * whole file when it is smaller), and a second GET only for an index larger than that. out[i]
 * matches files[i]; out[i].file.created_ms is set to the header timestamp; out[i].head keeps the
 * first bytes. On error every out[i] is freed. Free with replica_meta_free.
 */
lv_err replica_fetch_meta(replica *r, const replica_file *files, size_t n, replica_meta *out,
                          char *err);
void replica_meta_free(replica_meta *m, size_t n);

/*
 * Writes a whole LTX file at level (its TXIDs and timestamp taken from its header).
 * if_absent: fail with LV_ECONFLICT when the file exists (S3 If-None-Match: *; file: link(2)).
 */
lv_err replica_write(replica *r, int level, const void *data, size_t len, int if_absent, char *err);
/* Deletes files (S3: DeleteObjects in batches of 1000). Missing files are not an error. */
lv_err replica_delete(replica *r, const replica_file *files, size_t n, char *err);

/* The restore plan: which files, applied in order, give the state at a TXID. */
typedef struct replica_target {
    uint64_t txid;   /* 0: the latest */
    int64_t time_ms; /* 0: none; else the last state created at or before this time */
} replica_target;

typedef struct replica_plan {
    replica_file *files; /* in order: newest usable snapshot first, then the chain */
    size_t n;
    uint64_t max_txid; /* the TXID the plan reaches */
} replica_plan;

/*
 * Plans from a listing (all levels), as Litestream's CalcRestorePlan does: the newest snapshot
 * allowed by the target, then repeatedly, among files of levels 0..8 with min <= reached+1 and
 * max > reached (and allowed by the target), the one reaching furthest (ties: smaller min, then
 * higher level, then earlier created_ms). Latest mode fails on a gap with LV_ECONFLICT
 * ("non-contiguous ltx files: have up to TXID X but the next file starts at Y"): a gap may be
 * transient (a listing that raced an upload in flight or a compaction that deleted the files it
 * replaced), so a caller may list again and retry; one that stays is a replica missing a file.
 * No file, or a target not reached, is LV_ENOTFOUND. For a time target created_ms must be the
 * header timestamps (replica_fetch_meta). A pure function: no I/O. plan->files is the caller's
 * (lv_free).
 */
lv_err replica_plan_restore(const replica_file *files, size_t n, const replica_target *target,
                            replica_plan *plan, char *err);

#endif
