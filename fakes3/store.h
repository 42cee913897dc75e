/*
 * store: fakes3's buckets and objects, on disk (a data directory that survives restarts) or in
 * memory (--memory), behind one interface.
 *
 * Every object lives in ONE file: its bytes, then its metadata, then a fixed trailer (the layout is
 * drawn in store.c). An upload is streamed into a temp file beside the object's name (small ones
 * are buffered and written at once), the metadata and trailer are appended, the file is (with
 * --fsync) fdatasynced, and it is renamed over the object's name; so a
 * crash at any moment leaves either the old object or the new one, whole, never a mix of one's
 * data with the other's metadata. Object file names are the SHA-256 of the key in hex, so no key,
 * however hostile ("../../etc", "%2F", NUL bytes), names a path outside the data directory.
 *
 * The index (every bucket and, per bucket, every key in byte order with its metadata) is held in
 * memory, rebuilt from the files at start: listings and HEADs never touch the disk.
 *
 * Threads: any thread may call anything. One reader-writer lock guards the index; it is held for
 * lookups and listings (read) and for the short commit step of a write (write), which is where a
 * conditional write is decided: the precondition check, the rename into place and the index update
 * happen under the one lock, so of concurrent `If-None-Match: *` PUTs exactly one wins. File I/O
 * that is not a commit (writing an upload, fsync of its data) runs outside the lock.
 *
 * Objects handed out (fs3_object) are immutable and reference-counted: a reader keeps what it got
 * even if the key is overwritten or deleted meanwhile.
 *
 * Multipart uploads live in the store too, in the index of their bucket and (disk store) in a
 * folder of the bucket: the upload's metadata and one file per part, each in the object-file
 * format, so they survive a restart. Completing an upload assembles the listed parts into an
 * upload of the final key and commits it exactly like a PutObject (same lock, same conditions),
 * removing the upload in the same step.
 *
 * Results: an fs3_code (s3err.h) with detail in a caller buffer of LV_ERRLEN bytes.
 */
#ifndef FS3_STORE_H
#define FS3_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "checksum.h"
#include "s3err.h"

#define FS3_MAX_KEY_LEN     1024
#define FS3_MAX_BUCKET_LEN  63
#define FS3_ETAG_MAX        80 /* "hex32" or "hex32-N", without quotes, plus NUL */
#define FS3_UPLOAD_ID_LEN   48 /* hex: 16 digits of creation time and sequence, 32 random */
#define FS3_MIN_PART_SIZE   (5u * 1024 * 1024) /* every part but the last, at completion */
#define FS3_MAX_PART_NUMBER 10000

typedef struct fs3_store fs3_store;

/* A stored header: lower-case name ("content-type", "x-amz-meta-color") and value. */
typedef struct fs3_kv {
    char *name;
    char *value;
} fs3_kv;

/*
 * An object version: immutable once published. Readers get a reference from the store and give it
 * back with fs3_object_unref; the fields stay valid until then.
 */
typedef struct fs3_object {
    char *key; /* not NUL-free in general: use key_len */
    size_t key_len;
    uint64_t size;
    char etag[FS3_ETAG_MAX]; /* without quotes */
    int64_t mtime_ms;        /* Last-Modified, ms since the epoch */
    fs3_kv *headers;         /* stored response headers, in the order received */
    size_t n_headers;
    uint64_t *part_sizes; /* made by CompleteMultipartUpload: the size of each part, in order, */
    size_t n_parts;       /* for GET/HEAD ?partNumber=N; NULL and 0 for any other object */
    /* private to store.c */
    int refs;
    uint8_t *data; /* --memory: the bytes */
} fs3_object;

void fs3_object_ref(fs3_object *o);
void fs3_object_unref(fs3_object *o);
/* The value of a stored header (lower-case name), or NULL. */
const char *fs3_object_header(const fs3_object *o, const char *name);

typedef struct fs3_store_options {
    const char *dir; /* data directory (disk store) */
    int memory;      /* 1: keep everything in memory, ignore dir */
    int fsync;       /* 1: fsync files and directories before acknowledging */
} fs3_store_options;

/*
 * Opens (or creates) the store. A data directory that does not exist is created; an existing one
 * must be empty or a fakes3 data directory (a marker file says so), so fakes3 never sweeps its
 * temp folder through someone's home directory. Another fakes3 using the directory is refused.
 * Leftover temp files of a crashed run are removed. On success *out is the caller's to close.
 */
fs3_code fs3_store_open(const fs3_store_options *opts, fs3_store **out, char *err);
void fs3_store_close(fs3_store *st);

/* Counts of what was loaded at open, for the start-up line. */
void fs3_store_counts(fs3_store *st, size_t *buckets, size_t *objects);

/* ---- buckets --------------------------------------------------------------------------------- */

/* 1 if name is a valid S3 bucket name (3-63 of a-z 0-9 . -, starting and ending alphanumeric). */
int fs3_bucket_name_valid(const char *name);

typedef struct fs3_bucket_info {
    char name[FS3_MAX_BUCKET_LEN + 1];
    int64_t created_ms;
} fs3_bucket_info;

/* All buckets in name order; *out is the caller's to lv_free (may be NULL when *n is 0). */
fs3_code fs3_store_list_buckets(fs3_store *st, fs3_bucket_info **out, size_t *n, char *err);
fs3_code fs3_store_create_bucket(fs3_store *st, const char *name, int64_t now_ms, char *err);
/* FS3_BUCKET_NOT_EMPTY when it holds an object. */
fs3_code fs3_store_delete_bucket(fs3_store *st, const char *name, char *err);
fs3_code fs3_store_head_bucket(fs3_store *st, const char *name, char *err);

/* ---- writing objects ------------------------------------------------------------------------- */

typedef struct fs3_put fs3_put; /* an upload in progress */

/*
 * Starts an upload of key into bucket (FS3_NO_SUCH_BUCKET if there is none). The data goes to a
 * temp file (or buffer) that no reader sees until fs3_store_put_commit. *out is the caller's:
 * it must end with exactly one of fs3_store_put_commit or fs3_put_abort.
 */
fs3_code fs3_store_put_begin(fs3_store *st, const char *bucket, const char *key, size_t key_len,
                             fs3_put **out, char *err);
fs3_code fs3_put_write(fs3_put *p, const void *data, size_t n, char *err);
uint64_t fs3_put_size(const fs3_put *p);
/* Throws the upload away (removes its temp file). NULL is a no-op. */
void fs3_put_abort(fs3_put *p);

/*
 * Hashes what is written to p from now on (fs3_put_write and fs3_put_copy): its MD5 if md5, and
 * the additional checksum alg unless FS3_CK_NONE. FS3_INTERNAL_ERROR when out of memory.
 */
fs3_code fs3_put_hash(fs3_put *p, int md5, fs3_ck_alg alg, char *err);
/* The MD5 of what was written (fs3_put_hash asked for it): 0, or -1. Call once. */
int fs3_put_md5(fs3_put *p, uint8_t out[16]);
/* The base64 checksum of what was written (FS3_CK_B64_MAX bytes): 0, or -1. Call once. */
int fs3_put_checksum(fs3_put *p, char *out);

/*
 * Marks p as a conditional write (If-None-Match / If-Match): if a delete of its key succeeds
 * before p commits, the commit is FS3_CONDITIONAL_REQUEST_CONFLICT (409), as S3 answers.
 */
void fs3_put_conditional(fs3_put *p);

/* Conditions of a write, as the request's headers gave them (NULL: absent). */
typedef struct fs3_write_cond {
    const char *if_match;      /* an ETag list or "*" */
    const char *if_none_match; /* "*" (S3 accepts only that on writes) */
} fs3_write_cond;

/*
 * Publishes the upload as the object's new version, with etag (no quotes), the headers to store
 * and mtime now_ms, if cond holds at that instant: FS3_PRECONDITION_FAILED if not (If-None-Match:
 * * and the key exists; If-Match and the ETag differs), FS3_NO_SUCH_KEY for If-Match on a missing
 * key. Consumes p whatever the outcome. On success, *out (if not NULL) is a reference to the new
 * version, the caller's to unref.
 */
fs3_code fs3_store_put_commit(fs3_store *st, fs3_put *p, const char *etag, const fs3_kv *headers,
                              size_t n_headers, const fs3_write_cond *cond, int64_t now_ms,
                              fs3_object **out, char *err);

/* Deletes key; deleting a key that does not exist succeeds (as S3). */
fs3_code fs3_store_delete(fs3_store *st, const char *bucket, const char *key, size_t key_len,
                          char *err);

/*
 * A DeleteObjects entry with an <ETag>: deletes key only if its ETag is etag (no quotes);
 * FS3_PRECONDITION_FAILED if not, FS3_NO_SUCH_KEY if there is no such key. etag NULL: as
 * fs3_store_delete. *deleted (if not NULL) is 1 when an object was removed.
 */
fs3_code fs3_store_delete_if(fs3_store *st, const char *bucket, const char *key, size_t key_len,
                             const char *etag, int *deleted, char *err);

/* ---- reading objects ------------------------------------------------------------------------- */

/* Where a reader finds an object's bytes: an open file (disk) or memory. */
typedef struct fs3_body {
    int fd;              /* disk: open read-only, data at offset 0; the caller closes it. -1 */
    const uint8_t *data; /* memory: valid while the caller holds the object reference */
    uint64_t size;       /* the object's size (the file holds metadata after it) */
} fs3_body;

/*
 * Looks key up: *obj gets a reference (the caller unrefs it). If body is not NULL the bytes are
 * opened too, as the same version as *obj.
 */
fs3_code fs3_store_get(fs3_store *st, const char *bucket, const char *key, size_t key_len,
                       fs3_object **obj, fs3_body *body, char *err);

/* ---- listing --------------------------------------------------------------------------------- */

typedef struct fs3_list_params {
    const char *prefix; /* keys must start with it; may be empty */
    size_t prefix_len;
    const char *delimiter; /* roll keys up to common prefixes at its first occurrence after the
                              prefix; NULL or empty for none */
    size_t delimiter_len;
    const char *after; /* list only what sorts after it (start-after, marker, continuation) */
    size_t after_len;
    int after_is_prefix; /* `after` was a common prefix: skip every key under it too */
    size_t max_keys;     /* keys plus common prefixes to return */
} fs3_list_params;

typedef struct fs3_list_entry {
    int is_prefix; /* 1: a common prefix (only key/key_len are set) */
    char *key;     /* owned by the result */
    size_t key_len;
    uint64_t size;
    char etag[FS3_ETAG_MAX];
    int64_t mtime_ms;
} fs3_list_entry;

typedef struct fs3_list_result {
    fs3_list_entry *entries; /* keys and common prefixes merged in byte order */
    size_t n;
    int truncated; /* more entries follow the last one */
} fs3_list_result;

/* Lists a bucket (FS3_NO_SUCH_BUCKET if there is none). *out is freed with fs3_list_free. */
fs3_code fs3_store_list(fs3_store *st, const char *bucket, const fs3_list_params *p,
                        fs3_list_result *out, char *err);
void fs3_list_free(fs3_list_result *r);

/*
 * Appends len bytes of an object opened with fs3_store_get (src), from offset off, to the upload
 * p: CopyObject and UploadPartCopy. Unhashed disk-to-disk copies go through copy_file_range (the
 * kernel copies, or reflinks where the file system can), so no copy passes through memory whole.
 * FS3_INTERNAL_ERROR if the source is shorter than off + len or on I/O errors.
 */
fs3_code fs3_put_copy(fs3_put *p, const fs3_body *src, uint64_t off, uint64_t len, char *err);

/* ---- multipart uploads ----------------------------------------------------------------------- */

/* 1 if id has the form of an upload id (FS3_UPLOAD_ID_LEN lower-case hex digits). */
int fs3_upload_id_valid(const char *id);

/*
 * Creates an upload of key in bucket whose object will carry headers (copied). The id, opaque and
 * unguessable (128 random bits), goes to id_out. FS3_NO_SUCH_BUCKET if there is no bucket.
 */
fs3_code fs3_store_create_upload(fs3_store *st, const char *bucket, const char *key, size_t key_len,
                                 const fs3_kv *headers, size_t n_headers, int64_t now_ms,
                                 char id_out[FS3_UPLOAD_ID_LEN + 1], char *err);

/* Aborts an upload and deletes its parts. FS3_NO_SUCH_UPLOAD if there is no such upload of key. */
fs3_code fs3_store_abort_upload(fs3_store *st, const char *bucket, const char *key, size_t key_len,
                                const char *id, char *err);

/*
 * Starts part `number` (1..FS3_MAX_PART_NUMBER) of an upload: the data goes to an fs3_put like an
 * object's (write, copy, hash, abort as above) and is published with fs3_store_part_commit, which
 * replaces any earlier part of that number. FS3_NO_SUCH_UPLOAD if there is no such upload of key.
 */
fs3_code fs3_store_part_begin(fs3_store *st, const char *bucket, const char *key, size_t key_len,
                              const char *id, int number, fs3_put **out, char *err);
/* Publishes a part with etag (its MD5, no quotes) and headers (its checksums). Consumes p.
 * FS3_NO_SUCH_UPLOAD if the upload was aborted or completed meanwhile. *out as for put_commit. */
fs3_code fs3_store_part_commit(fs3_store *st, fs3_put *p, const char *etag, const fs3_kv *headers,
                               size_t n_headers, int64_t now_ms, fs3_object **out, char *err);

typedef struct fs3_part_entry {
    int number;
    uint64_t size;
    char etag[FS3_ETAG_MAX];
    int64_t mtime_ms;
    char ck_header[32]; /* the part's x-amz-checksum-* header and value, or "" */
    char ck_value[FS3_CK_B64_MAX];
} fs3_part_entry;

typedef struct fs3_parts_page {
    fs3_part_entry *parts; /* by part number */
    size_t n;
    int truncated;
    int64_t initiated_ms;
    char storage_class[32]; /* the upload's x-amz-storage-class, "STANDARD" by default */
} fs3_parts_page;

/* ListParts: up to max parts numbered above after. *out is freed with fs3_parts_page_free. */
fs3_code fs3_store_list_parts(fs3_store *st, const char *bucket, const char *key, size_t key_len,
                              const char *id, int after, size_t max, fs3_parts_page *out,
                              char *err);
void fs3_parts_page_free(fs3_parts_page *pg);

typedef struct fs3_uploads_params {
    const char *prefix; /* may be empty */
    size_t prefix_len;
    const char *delimiter; /* NULL or empty for none */
    size_t delimiter_len;
    const char *key_marker; /* resume after this key (NULL or empty: from the start) */
    size_t key_marker_len;
    const char *id_marker; /* with key_marker: also the uploads of key_marker after this id */
    size_t max;            /* uploads plus common prefixes to return */
} fs3_uploads_params;

typedef struct fs3_upload_entry {
    int is_prefix; /* a common prefix: only key/key_len are set */
    char *key;     /* owned by the page */
    size_t key_len;
    char id[FS3_UPLOAD_ID_LEN + 1];
    int64_t initiated_ms;
    char storage_class[32];
} fs3_upload_entry;

typedef struct fs3_uploads_page {
    fs3_upload_entry *entries; /* by key, then by id (which is creation order) */
    size_t n;
    int truncated;
} fs3_uploads_page;

/* ListMultipartUploads. *out is freed with fs3_uploads_page_free. */
fs3_code fs3_store_list_uploads(fs3_store *st, const char *bucket, const fs3_uploads_params *p,
                                fs3_uploads_page *out, char *err);
void fs3_uploads_page_free(fs3_uploads_page *pg);

/* A part list entry of CompleteMultipartUpload (xml.h has the same shape; this one is the
 * store's view). */
typedef struct fs3_part_ref {
    long number;
    const char *etag; /* no quotes */
} fs3_part_ref;

/* Which part made a completion fail, for the error document. */
typedef struct fs3_complete_fail {
    size_t index; /* into the request's list */
    uint64_t size;
} fs3_complete_fail;

/*
 * CompleteMultipartUpload: checks the list (ascending part numbers, else FS3_INVALID_PART_ORDER;
 * every part uploaded with that ETag, else FS3_INVALID_PART; every part but the last at least
 * FS3_MIN_PART_SIZE, else FS3_ENTITY_TOO_SMALL; *fail says which), assembles the parts into an
 * upload of the key (never the whole object in memory on disk), and commits it as
 * fs3_store_put_commit does, with the ETag hex(MD5(the parts' binary MD5s)) "-" N and the
 * upload's headers, removing the upload in the same locked step. Errors also FS3_NO_SUCH_UPLOAD,
 * FS3_PRECONDITION_FAILED, FS3_NO_SUCH_KEY (If-Match on no key), FS3_CONDITIONAL_REQUEST_CONFLICT
 * (the key was deleted since the upload began and cond has a condition: the upload is dropped,
 * as S3 asks for a new one then). *out as for put_commit.
 */
fs3_code fs3_store_complete_upload(fs3_store *st, const char *bucket, const char *key,
                                   size_t key_len, const char *id, const fs3_part_ref *parts,
                                   size_t n, const fs3_write_cond *cond, int64_t now_ms,
                                   fs3_object **out, fs3_complete_fail *fail, char *err);

/* The multipart ETag of n parts given by their hex MD5s: hex(MD5(bin md5 1 .. bin md5 n)) "-" n
 * into out (FS3_ETAG_MAX). -1 if an MD5 is not 32 hex digits. */
int fs3_multipart_etag(const char *const *part_md5s, size_t n, char *out);

#endif
