/*
 * s3err: the S3 error codes fakes3 answers with, each with its HTTP status and S3's default
 * message, so every failure a client sees is the error document S3 itself would send.
 *
 * fakes3's request path (store, auth, operations) returns an fs3_code rather than an lv_err: its
 * outcomes *are* S3's error codes, one to one (NoSuchKey, BucketNotEmpty, PreconditionFailed...),
 * and folding them into lv_err's few categories would lose what the client must be told. System
 * failures inside become FS3_INTERNAL_ERROR with the detail in the caller's error buffer.
 *
 * Constant tables only; safe from any thread.
 */
#ifndef FS3_S3ERR_H
#define FS3_S3ERR_H

typedef enum fs3_code {
    FS3_OK = 0,
    FS3_ACCESS_DENIED,
    FS3_AUTHORIZATION_HEADER_MALFORMED,
    FS3_AUTHORIZATION_QUERY_PARAMETERS_ERROR,
    FS3_BAD_DIGEST,
    FS3_BUCKET_ALREADY_OWNED_BY_YOU,
    FS3_BUCKET_NOT_EMPTY,
    FS3_CONDITIONAL_REQUEST_CONFLICT,
    FS3_ENTITY_TOO_LARGE,
    FS3_ENTITY_TOO_SMALL,
    FS3_INCOMPLETE_BODY,
    FS3_INTERNAL_ERROR,
    FS3_INVALID_ACCESS_KEY_ID,
    FS3_INVALID_ARGUMENT,
    FS3_INVALID_BUCKET_NAME,
    FS3_INVALID_DIGEST,
    FS3_INVALID_LOCATION_CONSTRAINT,
    FS3_INVALID_PART,
    FS3_INVALID_PART_ORDER,
    FS3_INVALID_RANGE,
    FS3_INVALID_REQUEST,
    FS3_KEY_TOO_LONG,
    FS3_MALFORMED_XML,
    FS3_METADATA_TOO_LARGE,
    FS3_METHOD_NOT_ALLOWED,
    FS3_MISSING_CONTENT_LENGTH,
    FS3_NO_SUCH_BUCKET,
    FS3_NO_SUCH_KEY,
    FS3_NO_SUCH_UPLOAD,
    FS3_NOT_IMPLEMENTED,
    FS3_NOT_MODIFIED, /* 304: not an error document, but decided like one */
    FS3_PRECONDITION_FAILED,
    FS3_REQUEST_TIME_TOO_SKEWED,
    FS3_SIGNATURE_DOES_NOT_MATCH,
    FS3_XAMZ_CONTENT_SHA256_MISMATCH,
    FS3_INVALID_PART_NUMBER, /* 416: GET/HEAD ?partNumber past the object's parts */
    FS3_CODE_COUNT
} fs3_code;

/* S3's name for the code ("NoSuchKey"); "InternalError" for an unknown value. */
const char *fs3_code_name(fs3_code code);
/* The HTTP status S3 answers with (404). */
int fs3_code_status(fs3_code code);
/* S3's default message ("The specified key does not exist."). */
const char *fs3_code_message(fs3_code code);

#endif
