/*
 * replica_private: what the files of the replica module share (replica.c, replica_url.c,
 * replica_file.c, replica_s3.c, replica_plan.c). Nothing outside lib/replica*.c includes it.
 *
 * A replica is one of two backends behind the same few internal operations:
 *
 *   list       the files of some levels (a bitmask), unsorted; replica_list sorts
 *   read_many  ranges of several files at once, each into its own buffer (one round trip on S3)
 *   fetch      whole files to a sink, in order of their bytes
 *   write      one whole LTX file under its name
 *   delete     files, missing ones ignored
 *
 * replica.c dispatches on `kind` and builds replica_read and replica_fetch_meta on read_many, so
 * the index-fetch logic is written once for both backends.
 *
 * Threads: a replica is immutable after replica_open; every operation keeps its state on the
 * stack or in the call's own allocations, so calls from several threads may overlap.
 */
#ifndef LV_REPLICA_PRIVATE_H
#define LV_REPLICA_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "replica.h"

typedef enum replica_kind { REPLICA_FILE = 1, REPLICA_S3 = 2 } replica_kind;

/* What a URL names, before any client exists (replica_url.c). Strings owned (lv_free). */
typedef struct replica_url {
    replica_kind kind;
    char *bucket; /* s3 */
    char *prefix; /* s3: cleaned, no leading or trailing '/', "" for the bucket's root */
    char *dir;    /* file: the directory (trailing '/' removed) */
    /* s3 query overrides; a field applies only when its has_ flag is set */
    char *endpoint;
    char *region;
    int has_path_style, path_style;
    int has_skip_verify, skip_verify;
    int has_sign_payload, sign_payload;
    int has_part_size;
    uint64_t part_size;
} replica_url;

/* Parses url into *u (zeroed first). LV_EINVAL with what is wrong. Free with replica_url_free. */
lv_err replica_url_parse(const char *url, replica_url *u, char *err);
void replica_url_free(replica_url *u);
/*
 * The S3 settings for u: base (opts->s3, or the defaults overlaid with the environment when
 * base is NULL) overlaid with the URL's query. Strings in *cfg point into u, base or the
 * environment: valid while they are.
 */
void replica_url_s3_config(const replica_url *u, const s3_config *base, s3_config *cfg);

struct replica {
    replica_kind kind;
    replica_url url;
    char *describe; /* replica_describe's string */
    s3_client *s3;  /* REPLICA_S3 */
};

/* A range of one file for read_many: off, len (S3_TO_END: to the end) in; out, size out. */
typedef struct replica_range {
    const replica_file *file;
    uint64_t off, len;
    lv_buf out;    /* the bytes, appended; the caller frees */
    uint64_t size; /* the whole file's size as the store reports it now */
} replica_range;

typedef int (*replica_sink_fn)(void *ctx, size_t which, const void *data, size_t len, int restart);

/* S3: "<prefix>/<LLLL>/" (no leading '/' when the prefix is empty), appended to out. */
void replica_level_prefix(const replica *r, int level, lv_buf *out);

/* Level bit for list: 1u << level. */
#define REPLICA_ALL_LEVELS ((1u << (REPLICA_MAX_LEVEL + 1)) - 1)

/* Growable array of listed files (append, then sort). */
typedef struct replica_file_vec {
    replica_file *v;
    size_t n, cap;
} replica_file_vec;
lv_err replica_file_vec_push(replica_file_vec *fv, const replica_file *f, char *err);

/* The file name "<16 hex>-<16 hex>.ltx" (22+16 chars and NUL: 38 bytes). */
#define REPLICA_NAME_LEN 38
void replica_name(uint64_t min_txid, uint64_t max_txid, char out[REPLICA_NAME_LEN]);
/* RFC 3339 UTC with milliseconds: "2026-01-02T03:04:05.678Z" (at least 25 bytes). */
void replica_format_time(int64_t ms, char *out, size_t cap);

/* file backend (replica_file.c) */
lv_err replica_file_list(replica *r, unsigned levels, replica_file_vec *out, char *err);
lv_err replica_file_read_many(replica *r, replica_range *rs, size_t n, char *err);
lv_err replica_file_fetch(replica *r, const replica_file *files, size_t n, replica_sink_fn sink,
                          void *ctx, char *err);
lv_err replica_file_write(replica *r, const ltx_header *h, int level, const void *data, size_t len,
                          int if_absent, char *err);
lv_err replica_file_delete(replica *r, const replica_file *files, size_t n, char *err);

/* s3 backend (replica_s3.c) */
lv_err replica_s3_list(replica *r, unsigned levels, replica_file_vec *out, char *err);
/* One level, only names after "<after_txid>-ffffffffffffffff.ltx" (ListObjectsV2 start-after). */
lv_err replica_s3_list_after(replica *r, int level, uint64_t after_txid, replica_file_vec *out,
                             char *err);
lv_err replica_s3_read_many(replica *r, replica_range *rs, size_t n, char *err);
lv_err replica_s3_fetch(replica *r, const replica_file *files, size_t n, replica_sink_fn sink,
                        void *ctx, char *err);
lv_err replica_s3_write(replica *r, const ltx_header *h, int level, const void *data, size_t len,
                        int if_absent, char *err);
lv_err replica_s3_delete(replica *r, const replica_file *files, size_t n, char *err);

/* Pieces of replica_s3_fetch: files above REPLICA_FETCH_SPLIT bytes go as ranged GETs of
 * REPLICA_FETCH_PIECE bytes, at most REPLICA_FETCH_BUFFER bytes of them held out of order. */
#define REPLICA_FETCH_SPLIT  (8u << 20)
#define REPLICA_FETCH_PIECE  (8u << 20)
#define REPLICA_FETCH_BUFFER (128u << 20)

#endif
