/*
 * ops.h: what the S3 operation files (ops.c, ops_copy.c, ops_delete.c, ops_multipart.c) share:
 * the headers an object stores, request parameters, digests of request bodies, and the begin/apply
 * pair of each operation outside ops.c. Internal to fakes3; see request.h for the stages.
 *
 * Each function works on one request, on its connection's thread.
 */
#ifndef FS3_OPS_H
#define FS3_OPS_H

#include <stdint.h>

#include "checksum.h"
#include "request.h"

#define FS3_OWNER_ID "fakes3"

/*
 * Collects the request headers an object keeps (Content-Type, Cache-Control, ..., x-amz-meta-*,
 * x-amz-checksum-<algorithm>) into r->store_headers, names lower-cased; checksums only if
 * with_checksums. FS3_METADATA_TOO_LARGE (answered) when x-amz-meta-* pass 2 KiB.
 */
fs3_code fs3_ops_collect_headers(fs3_req *r, int with_checksums);

/* A whole unsigned decimal; 0 on success. */
int fs3_ops_parse_u64(const char *s, uint64_t *out);

/*
 * Content-MD5, if sent: decoded into r->content_md5 (r->has_content_md5 set); FS3_INVALID_DIGEST
 * when it is not a base64 MD5.
 */
fs3_code fs3_ops_content_md5(fs3_req *r);

/*
 * The additional checksum a request announces: an x-amz-checksum-<algorithm> header (its value in
 * *value), or an x-amz-trailer naming one (*value NULL: it comes after the body). FS3_CK_NONE in
 * *alg when there is none. Answers InvalidRequest for two algorithms or a malformed value.
 */
/* Ends a streamed upload body: Content-MD5 and x-amz-checksum-* checked, the MD5 ETag into etag;
 * on failure the error response is set. */
fs3_code fs3_ops_finish_body(fs3_req *r, char etag[FS3_ETAG_MAX]);

fs3_code fs3_ops_request_checksum(fs3_req *r, fs3_ck_alg *alg, const char **value);

/*
 * Compares the checksum computed over the body with what the request sent (the header value, or
 * the trailer now in r->store_headers). Answers BadDigest as S3 does on a mismatch.
 */
fs3_code fs3_ops_verify_checksum(fs3_req *r, fs3_ck_alg alg, const char *header_value,
                                 const char *computed);

/*
 * For a buffered body (r->body): checks Content-MD5 (BadDigest) and an x-amz-checksum-* header
 * (BadDigest) when sent; with require, one of them must be there (InvalidRequest "Missing
 * required header for this request: Content-MD5", as S3 answers DeleteObjects).
 */
fs3_code fs3_ops_check_body_digests(fs3_req *r, int require);

/* Answers 501 for an If-None-Match other than "*" on a write; FS3_OK otherwise. */
fs3_code fs3_ops_check_write_cond(fs3_req *r);

/* Answers a failed conditional write (412 with the Condition, 404, 409) or another error. */
void fs3_ops_write_error(fs3_req *r, fs3_code rc);

/* <Owner><ID>fakes3</ID><DisplayName>fakes3</DisplayName></Owner> */
void fs3_ops_owner_xml(lv_buf *b, const char *element);

/* <name>s</name>, URL-encoded when url (encoding-type=url). */
void fs3_ops_list_elem(lv_buf *b, const char *name, const char *s, size_t n, int url);

/* An x-amz-copy-source: "[/]bucket/key[?versionId=...]", URL-encoded. */
typedef struct fs3_copy_source {
    char bucket[FS3_MAX_BUCKET_LEN + 1];
    char *key; /* owned: fs3_copy_source_free */
    size_t key_len;
} fs3_copy_source;

/* Parses the request's x-amz-copy-source; answers InvalidArgument when malformed. */
fs3_code fs3_ops_copy_source(fs3_req *r, fs3_copy_source *cs);
void fs3_copy_source_free(fs3_copy_source *cs);

/*
 * Opens the copy source and evaluates x-amz-copy-source-if-* against it (412 PreconditionFailed).
 * On FS3_OK, *obj and *body are the caller's (unref, close body->fd if >= 0); else answered.
 */
fs3_code fs3_ops_open_copy_source(fs3_req *r, const fs3_copy_source *cs, fs3_object **obj,
                                  fs3_body *body);

/* ops_copy.c */
fs3_code fs3_begin_copy_object(fs3_req *r);
void fs3_apply_copy_object(fs3_req *r);
fs3_code fs3_begin_upload_part_copy(fs3_req *r);
void fs3_apply_upload_part_copy(fs3_req *r);

/* ops_delete.c */
fs3_code fs3_begin_delete_objects(fs3_req *r);
void fs3_apply_delete_objects(fs3_req *r);

/* ops_multipart.c */
fs3_code fs3_begin_create_multipart(fs3_req *r);
void fs3_apply_create_multipart(fs3_req *r);
fs3_code fs3_begin_upload_part(fs3_req *r);
void fs3_apply_upload_part(fs3_req *r);
fs3_code fs3_begin_complete_multipart(fs3_req *r);
void fs3_apply_complete_multipart(fs3_req *r);
void fs3_apply_abort_multipart(fs3_req *r);
void fs3_apply_list_parts(fs3_req *r);
void fs3_apply_list_uploads(fs3_req *r);

/* The part number of an UploadPart(Copy) request, 1..10000; answers InvalidArgument if not. */
fs3_code fs3_ops_part_number(fs3_req *r, int *number);

/* admin_faults.c: /_fakes3/faults (the fault engine's run-time control). */
fs3_code fs3_begin_admin_faults(fs3_req *r);
void fs3_apply_admin_faults(fs3_req *r);

#endif
