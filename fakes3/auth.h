/*
 * auth: decides whether a request is signed by the one key pair fakes3 knows, with AWS Signature
 * V4 in the Authorization header or in the query (presigned URL), using lib/sigv4.
 *
 * Outcomes, as S3 answers them: no signature -> AccessDenied; a SigV2 or unknown algorithm ->
 * InvalidRequest; a malformed header -> AuthorizationHeaderMalformed (also for a scope in another
 * region or service); another access key -> InvalidAccessKeyId; X-Amz-Date more than 15 minutes
 * from the server's clock -> RequestTimeTooSkewed; a presigned URL past its expiry -> AccessDenied;
 * a signature that does not match -> SignatureDoesNotMatch (with the canonical request and string
 * to sign we computed, for the error document).
 *
 * The payload hash: in the header form it is what x-amz-content-sha256 says. When that is a hex
 * SHA-256 the server compares it with the body it receives; when the header is missing (some
 * clients leave it out) the signature covers the body's hash itself, so verification waits for the
 * body (needs_body_hash) and is finished with fs3_auth_finish.
 *
 * Time comes in as now_ms; nothing here reads a clock. Thread-safe: no shared state.
 */
#ifndef FS3_AUTH_H
#define FS3_AUTH_H

#include <stdint.h>

#include "buf.h"
#include "s3err.h"
#include "sigv4.h"

#define FS3_MAX_SKEW_MS (15 * 60 * 1000)

typedef struct fs3_auth_config {
    const char *access_key;
    const char *secret_key;
    const char *region;
    int anonymous; /* accept every request, signed or not, without checking */
} fs3_auth_config;

typedef struct fs3_auth_input {
    const char *method;
    const char *path;     /* decoded */
    const char *raw_path; /* as received (still percent-encoded) */
    const char *query;    /* raw, without '?'; may be NULL */
    const sigv4_header *headers;
    size_t n_headers;
    int64_t now_ms;
} fs3_auth_input;

typedef struct fs3_auth_result {
    int signed_request; /* 1 when a signature was checked (or is pending the body) */
    int presigned;
    int needs_body_hash; /* header form without x-amz-content-sha256: call fs3_auth_finish */
    /* the payload hash the signature covers: hex, or a sentinel of sigv4.h */
    char payload_hash[SIGV4_HEX_LEN + 1 + 48];
    sigv4_auth claim;      /* what the request claimed (access key, scope, signature) */
    sigv4_result computed; /* our side of the computation (seed signature, signing key...) */
    /* for the error document: extra fields beside Code and Message */
    char detail_name[4][32];
    lv_buf detail_value[4];
    int n_detail;
    char message[512]; /* "" for S3's default message */
} fs3_auth_result;

void fs3_auth_result_init(fs3_auth_result *r);
void fs3_auth_result_free(fs3_auth_result *r);

/* Checks what can be checked before the body. FS3_OK means go on (see needs_body_hash). */
fs3_code fs3_auth_check(const fs3_auth_config *cfg, const fs3_auth_input *in, fs3_auth_result *r,
                        char *err);

/* Finishes a check that waited for the body's hex SHA-256. */
fs3_code fs3_auth_finish(const fs3_auth_config *cfg, const fs3_auth_input *in,
                         const char *body_sha256, fs3_auth_result *r, char *err);

#endif
