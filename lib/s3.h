/*
 * s3: an S3 client on libcurl (transfers, TLS, connection reuse) and lib/sigv4.c (signing, the
 * same code fakes3 verifies with). What the replica layer, ltxctl and the VFS need, no more:
 * GET (with a range), HEAD, PUT (conditional, metadata, Content-MD5, multipart above a part
 * size), ListObjectsV2 (prefix, start-after, every page), DeleteObjects (batches of 1000).
 *
 * Round trips are what cost, so requests go in batches: s3_run takes an array of operations and
 * keeps up to max_inflight of them on the wire at once (curl multi), each retried on its own.
 * A single request is a batch of one. Connections persist across calls (a shared connection
 * cache), so a batch after the first pays no TCP or TLS handshake.
 *
 * Reliability, per operation:
 *   - retried with exponential backoff and full jitter (base retry_base_ms, cap retry_cap_ms) on
 *     HTTP 5xx (not 501 NotImplemented), 429, SlowDown, RequestTimeout, connection failures and
 *     resets, DNS failures, malformed responses, timeouts, and short bodies (a body shorter than
 *     its Content-Length is an error, never data); 4xx other than those, and 3xx, are final.
 *     HTTP/1.1 only (S3 speaks nothing else);
 *   - connect_timeout_ms per connection; an attempt with no byte moving for stall_timeout_ms
 *     (to the millisecond; a CompleteMultipartUpload: at least 5 minutes, as S3 may take that
 *     long, sending nothing or a space now and then) fails;
 *   - retry_total_ms is the budget of an operation: no retry starts past it, and an attempt
 *     still running past it (or past twice its stall time, if that is later: an attempt always
 *     gets that long) is ended unless it moves at least 256 KiB/s on average. So a large transfer
 *     in good health finishes however long it takes, and a trickle ends soon after the budget.
 *     Then the result says what failed:
 *     "GET s3://bucket/key bytes=0-99: 503 SlowDown after 6 attempts (10.2 s): <message>";
 *   - a conditional PUT (If-None-Match: *, If-Match) whose earlier attempt may have been applied
 *     unheard (no response after it was sent, or a 5xx other than 503: a 500 can come after the
 *     write) and whose retry gets 412 is checked against the stored object (its ETag against the
 *     body's MD5; the stored bytes for a multipart upload, or when the ETag is not an MD5, as
 *     under SSE-KMS or SSE-C) before it is reported: when the stored object is ours, the PUT
 *     succeeded (result.recovered = 1); otherwise LV_ECONFLICT;
 *   - a bucket in another region than the one signed for (301 PermanentRedirect, or 400
 *     AuthorizationHeaderMalformed, with x-amz-bucket-region) is LV_EINVAL and says so: "the
 *     bucket is in eu-west-1, not us-east-1; set AWS_REGION=eu-west-1 or ?region=eu-west-1".
 *     There is no region discovery and no redirect following.
 *
 * Credentials come from s3_config, filled by the caller or from the environment
 * (s3_config_from_env); there is no profile file, instance metadata (IMDS), ECS or web-identity
 * provider.
 *
 * Addressing: path style (http://host/bucket/key) or virtual host (http://bucket.host/key); see
 * s3_config.path_style for how it is chosen.
 * Keys are any bytes; they are percent-encoded once (SigV4's rules) in the URL and signed as such.
 * http and https; https verifies with the system CA store, or ca_bundle, unless skip_verify.
 *
 * Threads: an s3_client may be used from several threads at once (each s3_run has its own curl
 * multi handle and takes one of the client's pooled connection caches for its duration, so
 * connections persist between calls and concurrent calls never share one). Memory: lv_malloc.
 * Time: the clock
 * and the jitter seed are injectable (s3_config), so tests can fix both.
 */
#ifndef LV_S3_H
#define LV_S3_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

#define S3_TO_END UINT64_MAX /* a range length: to the end of the object */

typedef struct s3_config {
    /* Where: "http://127.0.0.1:9000", "https://s3.eu-west-1.amazonaws.com". NULL: AWS for
     * region ("https://s3.<region>.amazonaws.com"). */
    const char *endpoint;
    const char *region; /* NULL: "us-east-1" */
    const char *access_key;
    const char *secret_key;
    const char *session_token; /* sent as x-amz-security-token when set */
    /* 1: path style; 0: virtual host; -1 (s3_config_init's default): choose: virtual host on
     * *.amazonaws.com endpoints, except for a bucket with a '.' over https (it would not match
     * the wildcard certificate); path style everywhere else (IP addresses, localhost, MinIO,
     * Ceph, R2, ...). */
    int path_style;
    int skip_verify;       /* https without certificate checks */
    const char *ca_bundle; /* a PEM file of CA certificates instead of the system store */
    int unsigned_payload;  /* sign PUT bodies as UNSIGNED-PAYLOAD (no body SHA-256) */

    unsigned max_inflight;       /* requests on the wire at once per s3_run; default 16 */
    unsigned connect_timeout_ms; /* default 5000 */
    unsigned stall_timeout_ms;   /* an attempt with no byte moving this long fails; 10000 */
    unsigned retry_total_ms;     /* an operation's budget (see the top); default 30000 */
    unsigned retry_base_ms;      /* first backoff; default 100 */
    unsigned retry_cap_ms;       /* largest backoff; default 5000 */
    unsigned max_attempts;       /* default 10 */
    uint64_t part_size;          /* PUT bodies above this go multipart; default 5 MiB (min) */

    int64_t (*now_ms)(void *ctx); /* wall clock for signing (ms since the epoch); NULL: real */
    void *clock_ctx;
    uint64_t seed; /* backoff jitter; 0: from the clock */
} s3_config;

/* Fills c with the defaults above and every pointer NULL. */
void s3_config_init(s3_config *c);
/*
 * Overlays the environment as the AWS tools read it: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN, AWS_REGION (or AWS_DEFAULT_REGION), AWS_ENDPOINT_URL (which implies path
 * style), AWS_CA_BUNDLE; and Litestream's names as fallbacks, used when the AWS one is unset:
 * LITESTREAM_ACCESS_KEY_ID, LITESTREAM_SECRET_ACCESS_KEY, LITESTREAM_S3_ENDPOINT (which implies
 * path style). The environment is the only source of credentials (no profile, no IMDS). The
 * strings point into the environment (valid until it changes).
 */
void s3_config_from_env(s3_config *c);

typedef struct s3_client s3_client;

/* A client for cfg (strings copied). Errors: LV_EINVAL for a bad endpoint. Free with
 * s3_client_free. */
lv_err s3_client_new(const s3_config *cfg, s3_client **out, char *err);
void s3_client_free(s3_client *c);
/* "http://127.0.0.1:9000" (what error messages name). Valid while c lives. */
const char *s3_client_endpoint(const s3_client *c);

typedef enum s3_op_kind { S3_GET, S3_HEAD, S3_PUT, S3_DELETE } s3_op_kind;

/* A header to send (x-amz-meta-*, Content-Type, ...). Strings borrowed for the call. */
typedef struct s3_header {
    const char *name;
    const char *value;
} s3_header;

/* What came back for one operation. */
typedef struct s3_result {
    lv_err err;          /* LV_OK; LV_ENOTFOUND (404 NoSuchKey/NoSuchBucket); LV_ECONFLICT (412,
                          * 409); LV_EACCESS (403); LV_EINVAL (416, other 4xx, 3xx: a wrong
                          * region or endpoint); LV_ECORRUPT (a 206 for another range than
                          * asked); LV_ENOMEM; LV_ENET (5xx, the network, after retries) */
    int status;          /* the last HTTP status (0: no response) */
    char code[64];       /* S3 error code of the last response, or "" */
    char etag[80];       /* ETag as sent, with its quotes */
    uint64_t size;       /* the object's whole size (from Content-Range or Content-Length) */
    int64_t mtime_ms;    /* Last-Modified, ms since the epoch (0 when absent) */
    unsigned attempts;   /* how many were made */
    int recovered;       /* PUT: a lost response was recognised as ours (see the top) */
    char msg[LV_ERRLEN]; /* the failure in one line, naming operation, key, status and code */
} s3_result;

/*
 * One operation of a batch. Set the inputs; s3_run fills the outputs.
 *   GET:    off, len (S3_TO_END: to the end; len 0 means the same as S3_TO_END, so off 0 and
 *           len 0 is the whole object without a Range header); the body goes to out
 *           (appended; on failure out is left as it was), or to sink when set. A server that
 *           ignores Range and answers 200 with the whole object is accepted: only the bytes of
 *           the range asked for are kept (RFC 9110 allows it).
 *   HEAD:   size, etag, mtime_ms and the x-amz-meta-* headers (into meta, "name\0value\0").
 *   PUT:    body/body_len, if_none_match ("*"), if_match (an ETag), headers, content_md5.
 *   DELETE: the key; if_match (an ETag) makes it conditional (412 -> LV_ECONFLICT).
 */
typedef struct s3_op {
    s3_op_kind kind;
    const char *key;
    uint64_t off, len;
    const void *body;
    size_t body_len;
    const char *if_none_match;
    const char *if_match;
    const s3_header *headers;
    size_t n_headers;
    int content_md5;
    /* GET: when set, body bytes are handed here as they arrive instead of going to out; a
     * retried attempt restarts from the first byte of the range (restart = 1 on its first call).
     * Return nonzero to abort the operation (err LV_EINVAL "aborted by the caller"). */
    int (*sink)(void *ctx, const void *data, size_t n, int restart);
    void *sink_ctx;

    lv_buf out;  /* GET body, when no sink (the caller frees it with lv_buf_free) */
    lv_buf meta; /* HEAD: x-amz-meta-* pairs, "name\0value\0", names lower-case, prefix removed */
    s3_result res;
} s3_op;

/* Zeroes op and readies its buffers (kind S3_GET, len S3_TO_END). Free with s3_op_free. */
void s3_op_init(s3_op *op);
void s3_op_free(s3_op *op);

/*
 * Runs ops[0..n) against bucket, up to max_inflight at once, each retried on its own, and
 * returns when every one has finished. Returns LV_OK when all succeeded, or the err of the first
 * (by index) that failed, with its msg copied into err. Each op's res says how it ended.
 */
lv_err s3_run(s3_client *c, const char *bucket, s3_op *ops, size_t n, char *err);

/* Conveniences over s3_run for one operation; res may be NULL. */
lv_err s3_get(s3_client *c, const char *bucket, const char *key, uint64_t off, uint64_t len,
              lv_buf *out, s3_result *res, char *err);
lv_err s3_head(s3_client *c, const char *bucket, const char *key, s3_result *res, char *err);
lv_err s3_put(s3_client *c, const char *bucket, const char *key, const void *body, size_t len,
              const s3_op *opts, s3_result *res,
              char *err); /* opts: conditions, headers; may be NULL */

/* One entry of a listing. */
typedef struct s3_entry {
    const char *key; /* valid during the callback */
    uint64_t size;
    int64_t mtime_ms;
    const char *etag;
} s3_entry;

/*
 * ListObjectsV2 of every key under prefix after start_after (NULL: from the start), following
 * continuation tokens to the end, calling cb for each key in order; cb returning nonzero stops the
 * listing (LV_OK). A missing bucket is LV_ENOTFOUND.
 */
lv_err s3_list(s3_client *c, const char *bucket, const char *prefix, const char *start_after,
               int (*cb)(void *ctx, const s3_entry *e), void *ctx, char *err);

/*
 * Runs several listings at once (one per prefix, each paginated to the end), as s3_list does
 * each. cb gets the index of the prefix; calls for one prefix come in key order, but calls for
 * different prefixes may interleave. cb is called from the calling thread only.
 */
lv_err s3_list_many(s3_client *c, const char *bucket, const char *const *prefixes, size_t n,
                    int (*cb)(void *ctx, size_t which, const s3_entry *e), void *ctx, char *err);

/*
 * DeleteObjects of keys[0..n), in batches of up to 1000 (with Content-MD5), run in parallel.
 * A key that does not exist is not an error. LV_OK, or the first failure: a per-key error reported
 * by S3 names the key and its code.
 */
lv_err s3_delete_keys(s3_client *c, const char *bucket, const char *const *keys, size_t n,
                      char *err);

#endif
