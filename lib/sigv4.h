/*
 * sigv4: AWS Signature Version 4, for a client that signs requests (the S3 client) and for a
 * server that verifies them (fakes3), in the Authorization-header form and the presigned (query)
 * form, plus the chunk signatures of aws-chunked streaming uploads.
 *
 * The computation, stage by stage (every stage is a function here, so tests can check each one):
 *
 *   canonical request   METHOD \n canonical URI \n canonical query \n
 *                       canonical headers (name:value\n each) \n signed headers \n payload hash
 *   string to sign      AWS4-HMAC-SHA256 \n amz-date \n scope \n hex(SHA-256(canonical request))
 *   scope               YYYYMMDD/region/service/aws4_request
 *   signing key         HMAC(HMAC(HMAC(HMAC("AWS4" secret, YYYYMMDD), region), service),
 *                       "aws4_request")
 *   signature           hex(HMAC(signing key, string to sign))
 *
 * Canonical forms:
 *   - URI: the *decoded* path, each byte outside A-Z a-z 0-9 - . _ ~ and '/' percent-encoded once
 *     (upper-case hex). S3 never normalizes the path; the generic algorithm (other services, and
 *     the published test cases with normalize=true) first removes "." and ".." segments and empty
 *     segments (SIGV4_NORMALIZE_PATH). SIGV4_PATH_ENCODED takes the path as already canonical.
 *   - query: split on '&', each name and value percent-decoded then encoded as above, sorted by
 *     name then value (byte order), "name=value" joined with '&'; X-Amz-Signature is left out.
 *   - headers: names lower-cased; each value trimmed, inner runs of white space (including folded
 *     lines) collapsed to one space; repeated headers joined with ',' in the order received.
 *   - payload hash: hex SHA-256 of the body, or one of the sentinels below (S3 takes it from the
 *     x-amz-content-sha256 header; presigned S3 URLs use UNSIGNED-PAYLOAD).
 *
 * Time is an input: every function takes the request time as an amz-date string
 * ("20150830T123600Z"); nothing here reads the clock. Skew and expiry are the caller's to judge
 * (sigv4_parse_date turns the string into seconds).
 *
 * Cryptography: OpenSSL 3 (SHA-256, HMAC-SHA256). Memory: lv_buf / lv_malloc. Errors: an lv_err
 * with the detail in a caller buffer of LV_ERRLEN bytes (may be NULL). Threads: no global state;
 * every function may run in any thread.
 */
#ifndef LV_SIGV4_H
#define LV_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

#define SIGV4_ALGORITHM       "AWS4-HMAC-SHA256"
#define SIGV4_CHUNK_ALGORITHM "AWS4-HMAC-SHA256-PAYLOAD"

/* Payload-hash sentinels (values of x-amz-content-sha256). */
#define SIGV4_UNSIGNED_PAYLOAD           "UNSIGNED-PAYLOAD"
#define SIGV4_STREAMING_PAYLOAD          "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
#define SIGV4_STREAMING_PAYLOAD_TRAILER  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
#define SIGV4_STREAMING_UNSIGNED_TRAILER "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
/* SHA-256 of nothing: the payload hash of an empty body. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#define SIGV4_DATE_LEN 16 /* strlen("20150830T123600Z") */
#define SIGV4_HEX_LEN  64 /* a hex SHA-256 or signature, without the NUL */
#define SIGV4_KEY_LEN  32 /* a signing key, bytes */

/* Flags of a request (sigv4_request.flags). */
#define SIGV4_NORMALIZE_PATH 0x1u /* remove dot and empty segments first (never for S3) */
#define SIGV4_PATH_ENCODED   0x2u /* path is already canonical: use it byte for byte */

/* One header as received or as to be sent. Both strings are borrowed. */
typedef struct sigv4_header {
    const char *name;
    const char *value;
} sigv4_header;

/* A request to sign or verify. Every pointer is borrowed for the length of the call. */
typedef struct sigv4_request {
    const char *method;          /* "GET" */
    const char *path;            /* decoded path ("/bucket/my key"); NULL or "" means "/" */
    const char *query;           /* raw query string without '?', encoded or not; may be NULL */
    const sigv4_header *headers; /* every header (the signer signs all of them) */
    size_t n_headers;
    const char *payload_hash; /* hex SHA-256 of the body or a sentinel; NULL: empty body */
    unsigned flags;           /* SIGV4_NORMALIZE_PATH, SIGV4_PATH_ENCODED */
} sigv4_request;

/* Who signs, and for which region and service. Borrowed strings. */
typedef struct sigv4_credentials {
    const char *access_key;
    const char *secret_key;
    const char *session_token; /* NULL when there is none */
    const char *region;        /* "us-east-1" */
    const char *service;       /* "s3" */
} sigv4_credentials;

/*
 * Everything a signing or a verification computed, kept for tests, for error documents (S3 puts
 * the canonical request and string to sign in SignatureDoesNotMatch) and for the chunk signatures
 * that follow a streaming upload's seed signature. Owns its buffers: sigv4_result_free.
 */
typedef struct sigv4_result {
    lv_buf canonical_request;
    lv_buf string_to_sign;
    lv_buf signed_headers; /* "host;x-amz-date" */
    lv_buf scope;          /* "20150830/us-east-1/service/aws4_request" */
    lv_buf authorization;  /* header form: the Authorization value */
    lv_buf query;          /* query form: the request's query, the X-Amz-* parameters and
                              X-Amz-Signature, ready to put after '?' */
    char signature[SIGV4_HEX_LEN + 1];
    uint8_t signing_key[SIGV4_KEY_LEN];
} sigv4_result;

void sigv4_result_init(sigv4_result *r);
void sigv4_result_free(sigv4_result *r);

/* ---- stages ---------------------------------------------------------------------------------- */

/* Appends the canonical URI of path (see the top of this file) to out. */
lv_err sigv4_canonical_uri(const char *path, unsigned flags, lv_buf *out, char *err);

/* Appends the canonical query string of query (raw, without '?'; NULL is empty) to out. */
lv_err sigv4_canonical_query(const char *query, lv_buf *out, char *err);

/*
 * Appends the signed-headers list of headers to out: lower-case names, sorted, each once, joined
 * with ';'.
 */
lv_err sigv4_signed_headers(const sigv4_header *headers, size_t n, lv_buf *out, char *err);

/*
 * Appends the canonical headers block for the names in signed_headers (';'-separated, used in the
 * order given) to out, one "name:value\n" line each. LV_EINVAL if a signed header is not among
 * headers.
 */
lv_err sigv4_canonical_headers(const sigv4_header *headers, size_t n, const char *signed_headers,
                               lv_buf *out, char *err);

/* Appends the whole canonical request of req, signing the headers named in signed_headers. */
lv_err sigv4_canonical_request(const sigv4_request *req, const char *signed_headers, lv_buf *out,
                               char *err);

/* Appends "YYYYMMDD/region/service/aws4_request" for amz_date to out. */
lv_err sigv4_scope(const char *amz_date, const char *region, const char *service, lv_buf *out,
                   char *err);

/* Appends the string to sign for a canonical request to out. */
lv_err sigv4_string_to_sign(const char *amz_date, const char *scope, const char *canonical_request,
                            size_t canonical_len, lv_buf *out, char *err);

/* The signing key for a secret, a date (YYYYMMDD, or a whole amz-date), region and service. */
lv_err sigv4_signing_key(const char *secret_key, const char *date, const char *region,
                         const char *service, uint8_t key[SIGV4_KEY_LEN], char *err);

/* hex(HMAC-SHA256(key, msg)) into out (65 bytes). */
lv_err sigv4_hmac_hex(const uint8_t key[SIGV4_KEY_LEN], const char *msg, size_t len,
                      char out[SIGV4_HEX_LEN + 1], char *err);

/* hex(SHA-256(data)) into out (65 bytes). */
lv_err sigv4_sha256_hex(const void *data, size_t n, char out[SIGV4_HEX_LEN + 1], char *err);

/*
 * The signature of one chunk of an aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) body: the
 * HMAC, under the request's signing key, of
 *   AWS4-HMAC-SHA256-PAYLOAD \n amz-date \n scope \n previous signature \n
 *   hex(SHA-256("")) \n hex(SHA-256(chunk data))
 * where the previous signature is the request's (the seed) for the first chunk, and the final
 * chunk is the empty one. chunk_sha256 is the hex SHA-256 of the chunk's data, so a server can
 * hash the data as it arrives.
 */
lv_err sigv4_chunk_signature(const uint8_t key[SIGV4_KEY_LEN], const char *amz_date,
                             const char *scope, const char *previous_signature,
                             const char *chunk_sha256, char out[SIGV4_HEX_LEN + 1], char *err);

/* ---- dates ----------------------------------------------------------------------------------- */

/* Formats seconds since the epoch (UTC) as an amz-date into out (17 bytes). */
lv_err sigv4_format_date(int64_t unix_seconds, char out[SIGV4_DATE_LEN + 1], char *err);
/* Parses an amz-date ("20150830T123600Z", exactly) into seconds since the epoch. */
lv_err sigv4_parse_date(const char *amz_date, int64_t *unix_seconds, char *err);

/* ---- client ---------------------------------------------------------------------------------- */

/*
 * Signs req in the Authorization-header form at amz_date. Every header in req is signed, so
 * req->headers must already hold what should be signed and sent: Host, X-Amz-Date (= amz_date),
 * X-Amz-Content-Sha256 for S3 (= req->payload_hash) and X-Amz-Security-Token when there is a
 * session token. The Authorization value lands in out->authorization. out must be initialised;
 * its previous content is replaced.
 */
lv_err sigv4_sign(const sigv4_request *req, const sigv4_credentials *creds, const char *amz_date,
                  sigv4_result *out, char *err);

/*
 * Presigns req at amz_date for expires seconds: appends X-Amz-Algorithm, X-Amz-Credential,
 * X-Amz-Date, X-Amz-SignedHeaders, X-Amz-Expires, X-Amz-Security-Token (if any) and then
 * X-Amz-Signature to req->query, into out->query. Every header in req is signed (usually Host
 * alone). For S3, req->payload_hash is UNSIGNED-PAYLOAD.
 */
lv_err sigv4_presign(const sigv4_request *req, const sigv4_credentials *creds, const char *amz_date,
                     long expires, sigv4_result *out, char *err);

/* ---- server ---------------------------------------------------------------------------------- */

/* What a request claims about its signature, from the Authorization header or the query. */
typedef struct sigv4_auth {
    int presigned; /* 1: from the query string */
    char access_key[128];
    char date[9]; /* YYYYMMDD of the credential scope */
    char region[64];
    char service[64];
    char signed_headers[2048];
    char signature[SIGV4_HEX_LEN + 1];
    char amz_date[SIGV4_DATE_LEN + 1]; /* presigned: X-Amz-Date; header form: set by verify */
    long expires;                      /* presigned: X-Amz-Expires; -1 otherwise */
} sigv4_auth;

/*
 * Parses an Authorization header value ("AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3/
 * aws4_request, SignedHeaders=host;x-amz-date, Signature=..."). LV_EUNSUPPORTED for another
 * algorithm (e.g. SigV2's "AWS AK:sig"), LV_EINVAL for a malformed one.
 */
lv_err sigv4_parse_authorization(const char *value, sigv4_auth *out, char *err);

/*
 * Parses the X-Amz-* parameters of a presigned query string. LV_ENOTFOUND if the query has no
 * X-Amz-Algorithm (not presigned), LV_EUNSUPPORTED for another algorithm, LV_EINVAL if a
 * parameter is missing or malformed.
 */
lv_err sigv4_parse_presigned(const char *query, sigv4_auth *out, char *err);

/*
 * Recomputes the signature of req as auth describes it (its signed headers, scope and date) with
 * secret_key, and compares it with auth->signature in constant time. For the header form the date
 * comes from the X-Amz-Date header (copied into auth->amz_date). The credential date must be the
 * day of the amz-date. Returns LV_OK when they match, LV_ECHECKSUM when they do not (the
 * computation is in out, for the error document), LV_EINVAL for a request that cannot be
 * canonicalized (a signed header missing, no date). Does not judge time: the caller checks skew
 * and expiry.
 */
lv_err sigv4_verify(const sigv4_request *req, sigv4_auth *auth, const char *secret_key,
                    sigv4_result *out, char *err);

#endif
