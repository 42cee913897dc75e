/* s3err: the table of S3 error codes, statuses and default messages (see s3err.h). */
#include "s3err.h"

static const struct {
    const char *name;
    int status;
    const char *message;
} codes[FS3_CODE_COUNT] = {
    [FS3_OK] = {"OK", 200, "OK"},
    [FS3_ACCESS_DENIED] = {"AccessDenied", 403, "Access Denied"},
    [FS3_AUTHORIZATION_HEADER_MALFORMED] = {"AuthorizationHeaderMalformed", 400,
                                            "The authorization header is malformed."},
    [FS3_AUTHORIZATION_QUERY_PARAMETERS_ERROR] = {"AuthorizationQueryParametersError", 400,
                                                  "Error parsing the X-Amz-Credential parameter."},
    [FS3_BAD_DIGEST] = {"BadDigest", 400,
                        "The Content-MD5 you specified did not match what we received."},
    [FS3_BUCKET_ALREADY_OWNED_BY_YOU] = {"BucketAlreadyOwnedByYou", 409,
                                         "Your previous request to create the named bucket "
                                         "succeeded and you already own it."},
    [FS3_BUCKET_NOT_EMPTY] = {"BucketNotEmpty", 409, "The bucket you tried to delete is not empty"},
    [FS3_CONDITIONAL_REQUEST_CONFLICT] = {"ConditionalRequestConflict", 409,
                                          "A conflicting operation occurred. If using PutObject "
                                          "you can retry the request. If using multipart upload "
                                          "you should initiate another CreateMultipartUpload "
                                          "request and re-upload each part."},
    [FS3_ENTITY_TOO_SMALL] = {"EntityTooSmall", 400,
                              "Your proposed upload is smaller than the minimum allowed object "
                              "size."},
    [FS3_ENTITY_TOO_LARGE] = {"EntityTooLarge", 400,
                              "Your proposed upload exceeds the maximum allowed size"},
    [FS3_INCOMPLETE_BODY] = {"IncompleteBody", 400,
                             "You did not provide the number of bytes specified by the "
                             "Content-Length HTTP header."},
    [FS3_INTERNAL_ERROR] = {"InternalError", 500,
                            "We encountered an internal error. Please try again."},
    [FS3_INVALID_ACCESS_KEY_ID] = {"InvalidAccessKeyId", 403,
                                   "The AWS Access Key Id you provided does not exist in our "
                                   "records."},
    [FS3_INVALID_ARGUMENT] = {"InvalidArgument", 400, "Invalid Argument"},
    [FS3_INVALID_BUCKET_NAME] = {"InvalidBucketName", 400, "The specified bucket is not valid."},
    [FS3_INVALID_DIGEST] = {"InvalidDigest", 400, "The Content-MD5 you specified is not valid."},
    [FS3_INVALID_LOCATION_CONSTRAINT] = {"InvalidLocationConstraint", 400,
                                         "The specified location-constraint is not valid"},
    [FS3_INVALID_PART] = {"InvalidPart", 400,
                          "One or more of the specified parts could not be found.  The part may "
                          "not have been uploaded, or the specified entity tag may not match the "
                          "part's entity tag."},
    [FS3_INVALID_PART_ORDER] = {"InvalidPartOrder", 400,
                                "The list of parts was not in ascending order. Parts must be "
                                "ordered by part number."},
    [FS3_INVALID_RANGE] = {"InvalidRange", 416, "The requested range is not satisfiable"},
    [FS3_INVALID_PART_NUMBER] = {"InvalidPartNumber", 416,
                                 "The requested partnumber is not satisfiable"},
    [FS3_INVALID_REQUEST] = {"InvalidRequest", 400, "Invalid Request"},
    [FS3_KEY_TOO_LONG] = {"KeyTooLongError", 400, "Your key is too long"},
    [FS3_MALFORMED_XML] = {"MalformedXML", 400,
                           "The XML you provided was not well-formed or did not validate "
                           "against our published schema"},
    [FS3_METADATA_TOO_LARGE] = {"MetadataTooLarge", 400,
                                "Your metadata headers exceed the maximum allowed metadata "
                                "size."},
    [FS3_METHOD_NOT_ALLOWED] = {"MethodNotAllowed", 405,
                                "The specified method is not allowed against this resource."},
    [FS3_MISSING_CONTENT_LENGTH] = {"MissingContentLength", 411,
                                    "You must provide the Content-Length HTTP header."},
    [FS3_NO_SUCH_BUCKET] = {"NoSuchBucket", 404, "The specified bucket does not exist"},
    [FS3_NO_SUCH_KEY] = {"NoSuchKey", 404, "The specified key does not exist."},
    [FS3_NO_SUCH_UPLOAD] = {"NoSuchUpload", 404,
                            "The specified upload does not exist. The upload ID may be invalid, "
                            "or the upload may have been aborted or completed."},
    [FS3_NOT_IMPLEMENTED] = {"NotImplemented", 501,
                             "A header or query you provided implies functionality that is not "
                             "implemented."},
    [FS3_NOT_MODIFIED] = {"NotModified", 304, "Not Modified"},
    [FS3_PRECONDITION_FAILED] = {"PreconditionFailed", 412,
                                 "At least one of the pre-conditions you specified did not "
                                 "hold"},
    [FS3_REQUEST_TIME_TOO_SKEWED] = {"RequestTimeTooSkewed", 403,
                                     "The difference between the request time and the current "
                                     "time is too large."},
    [FS3_SIGNATURE_DOES_NOT_MATCH] = {"SignatureDoesNotMatch", 403,
                                      "The request signature we calculated does not match the "
                                      "signature you provided. Check your key and signing "
                                      "method."},
    [FS3_XAMZ_CONTENT_SHA256_MISMATCH] = {"XAmzContentSHA256Mismatch", 400,
                                          "The provided 'x-amz-content-sha256' header does not "
                                          "match what was computed."},
};

static int valid(fs3_code code)
{
    return (int)code >= 0 && code < FS3_CODE_COUNT && codes[code].name;
}

const char *fs3_code_name(fs3_code code)
{
    return valid(code) ? codes[code].name : codes[FS3_INTERNAL_ERROR].name;
}

int fs3_code_status(fs3_code code)
{
    return valid(code) ? codes[code].status : 500;
}

const char *fs3_code_message(fs3_code code)
{
    return valid(code) ? codes[code].message : codes[FS3_INTERNAL_ERROR].message;
}
