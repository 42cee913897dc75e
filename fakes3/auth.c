/* auth: SigV4 verification of requests against fakes3's key pair (see auth.h). */
#include "auth.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "error.h"

void fs3_auth_result_init(fs3_auth_result *r)
{
    memset(r, 0, sizeof *r);
    sigv4_result_init(&r->computed);
    for (int i = 0; i < 4; i++)
        lv_buf_init(&r->detail_value[i]);
}

void fs3_auth_result_free(fs3_auth_result *r)
{
    sigv4_result_free(&r->computed);
    for (int i = 0; i < 4; i++)
        lv_buf_free(&r->detail_value[i]);
}

static void detail(fs3_auth_result *r, const char *name, const char *value, size_t len)
{
    if (r->n_detail >= 4)
        return;
    snprintf(r->detail_name[r->n_detail], sizeof r->detail_name[0], "%s", name);
    lv_buf_append(&r->detail_value[r->n_detail], value, len);
    r->n_detail++;
}

static void details(fs3_auth_result *r, const char *name, const char *value)
{
    detail(r, name, value, strlen(value));
}

static const char *header(const fs3_auth_input *in, const char *name)
{
    for (size_t i = 0; i < in->n_headers; i++)
        if (strcasecmp(in->headers[i].name, name) == 0)
            return in->headers[i].value;
    return NULL;
}

static int is_hex64(const char *s)
{
    if (strlen(s) != SIGV4_HEX_LEN)
        return 0;
    for (int i = 0; i < SIGV4_HEX_LEN; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Recomputes and compares; on a mismatch tries the path exactly as received (some clients sign
 * the path they send, already encoded, without re-encoding it). */
static fs3_code verify(const fs3_auth_config *cfg, const fs3_auth_input *in, fs3_auth_result *r,
                       char *err)
{
    sigv4_request req = {
        .method = in->method,
        .path = in->path,
        .query = in->query,
        .headers = in->headers,
        .n_headers = in->n_headers,
        .payload_hash = r->payload_hash,
    };
    char verr[LV_ERRLEN];
    lv_err rc = sigv4_verify(&req, &r->claim, cfg->secret_key, &r->computed, verr);
    if (rc == LV_ECHECKSUM && in->raw_path && strcmp(in->raw_path, in->path) != 0) {
        sigv4_result alt;
        sigv4_result_init(&alt);
        sigv4_request raw = req;
        raw.path = in->raw_path;
        raw.flags = SIGV4_PATH_ENCODED;
        if (sigv4_verify(&raw, &r->claim, cfg->secret_key, &alt, NULL) == LV_OK) {
            sigv4_result_free(&r->computed);
            r->computed = alt;
            return FS3_OK;
        }
        sigv4_result_free(&alt);
    }
    if (rc == LV_OK)
        return FS3_OK;
    if (rc == LV_ECHECKSUM) {
        lv_fail(err, LV_ECHECKSUM, "signature mismatch for access key %s", r->claim.access_key);
        details(r, "AWSAccessKeyId", r->claim.access_key);
        if (r->computed.string_to_sign.data)
            detail(r, "StringToSign", r->computed.string_to_sign.data,
                   r->computed.string_to_sign.len);
        details(r, "SignatureProvided", r->claim.signature);
        if (r->computed.canonical_request.data)
            detail(r, "CanonicalRequest", r->computed.canonical_request.data,
                   r->computed.canonical_request.len);
        return FS3_SIGNATURE_DOES_NOT_MATCH;
    }
    if (rc == LV_ENOMEM) {
        lv_fail(err, LV_ENOMEM, "%s", verr);
        return FS3_INTERNAL_ERROR;
    }
    /* a signed header that is not there, a date that does not fit the scope... */
    lv_fail(err, LV_EINVAL, "%s", verr);
    snprintf(r->message, sizeof r->message, "%s", verr);
    return r->presigned ? FS3_AUTHORIZATION_QUERY_PARAMETERS_ERROR
                        : FS3_AUTHORIZATION_HEADER_MALFORMED;
}

/* Checks the parts of the claim that do not need the signature: key, region, service, time. */
static fs3_code check_claim(const fs3_auth_config *cfg, const fs3_auth_input *in,
                            fs3_auth_result *r, char *err)
{
    sigv4_auth *c = &r->claim;
    if (strcmp(c->access_key, cfg->access_key) != 0) {
        lv_fail(err, LV_EINVAL, "unknown access key %s", c->access_key);
        details(r, "AWSAccessKeyId", c->access_key);
        return FS3_INVALID_ACCESS_KEY_ID;
    }
    if (strcmp(c->region, cfg->region) != 0) {
        lv_fail(err, LV_EINVAL, "signed for region %s, this server is %s", c->region, cfg->region);
        snprintf(r->message, sizeof r->message,
                 "The authorization header is malformed; the region '%s' is wrong; expecting '%s'",
                 c->region, cfg->region);
        details(r, "Region", cfg->region);
        return r->presigned ? FS3_AUTHORIZATION_QUERY_PARAMETERS_ERROR
                            : FS3_AUTHORIZATION_HEADER_MALFORMED;
    }
    if (strcmp(c->service, "s3") != 0) {
        lv_fail(err, LV_EINVAL, "signed for service %s", c->service);
        snprintf(r->message, sizeof r->message,
                 "The authorization header is malformed; incorrect service \"%s\". This endpoint "
                 "belongs to \"s3\".",
                 c->service);
        return r->presigned ? FS3_AUTHORIZATION_QUERY_PARAMETERS_ERROR
                            : FS3_AUTHORIZATION_HEADER_MALFORMED;
    }
    const char *date = r->presigned ? c->amz_date : header(in, "x-amz-date");
    while (date && *date == ' ')
        date++;
    int64_t t;
    if (!date || sigv4_parse_date(date, &t, NULL) != LV_OK) {
        lv_fail(err, LV_EINVAL, "no valid X-Amz-Date");
        if (r->presigned)
            return FS3_AUTHORIZATION_QUERY_PARAMETERS_ERROR;
        snprintf(r->message, sizeof r->message,
                 "AWS authentication requires a valid Date or x-amz-date header");
        return FS3_ACCESS_DENIED;
    }
    int64_t req_ms = t * 1000;
    if (r->presigned) {
        if (c->expires > 604800) {
            lv_fail(err, LV_EINVAL, "X-Amz-Expires %ld", c->expires);
            snprintf(r->message, sizeof r->message,
                     "X-Amz-Expires must be less than a week (in seconds) that is 604800");
            return FS3_AUTHORIZATION_QUERY_PARAMETERS_ERROR;
        }
        if (in->now_ms > req_ms + (int64_t)c->expires * 1000) {
            lv_fail(err, LV_EINVAL, "presigned URL expired");
            snprintf(r->message, sizeof r->message, "Request has expired");
            return FS3_ACCESS_DENIED;
        }
        if (req_ms > in->now_ms + FS3_MAX_SKEW_MS) {
            lv_fail(err, LV_EINVAL, "presigned URL dated in the future");
            snprintf(r->message, sizeof r->message, "Request is not valid yet");
            return FS3_ACCESS_DENIED;
        }
        return FS3_OK;
    }
    int64_t skew = req_ms - in->now_ms;
    if (skew > FS3_MAX_SKEW_MS || skew < -FS3_MAX_SKEW_MS) {
        lv_fail(err, LV_EINVAL, "X-Amz-Date %s is %lld s from the server's time", date,
                (long long)(skew / 1000));
        char now[SIGV4_DATE_LEN + 1];
        if (sigv4_format_date(in->now_ms / 1000, now, NULL) == LV_OK)
            details(r, "ServerTime", now);
        details(r, "RequestTime", date);
        details(r, "MaxAllowedSkewMilliseconds", "900000");
        return FS3_REQUEST_TIME_TOO_SKEWED;
    }
    return FS3_OK;
}

fs3_code fs3_auth_check(const fs3_auth_config *cfg, const fs3_auth_input *in, fs3_auth_result *r,
                        char *err)
{
    if (cfg->anonymous) {
        const char *h = header(in, "x-amz-content-sha256");
        snprintf(r->payload_hash, sizeof r->payload_hash, "%s", h ? h : SIGV4_UNSIGNED_PAYLOAD);
        return FS3_OK;
    }
    const char *authz = header(in, "authorization");
    char perr[LV_ERRLEN];
    lv_err prc;
    if (authz) {
        prc = sigv4_parse_authorization(authz, &r->claim, perr);
        if (prc == LV_EUNSUPPORTED) {
            lv_fail(err, LV_EUNSUPPORTED, "%s", perr);
            snprintf(r->message, sizeof r->message,
                     "The authorization mechanism you have provided is not supported. Please use "
                     "AWS4-HMAC-SHA256.");
            return FS3_INVALID_REQUEST;
        }
        if (prc != LV_OK) {
            lv_fail(err, LV_EINVAL, "%s", perr);
            snprintf(r->message, sizeof r->message, "The authorization header is malformed: %.200s",
                     perr);
            return FS3_AUTHORIZATION_HEADER_MALFORMED;
        }
    } else {
        prc = sigv4_parse_presigned(in->query, &r->claim, perr);
        if (prc == LV_ENOTFOUND) {
            lv_fail(err, LV_EINVAL, "the request is not signed");
            return FS3_ACCESS_DENIED;
        }
        if (prc == LV_EUNSUPPORTED) {
            lv_fail(err, LV_EUNSUPPORTED, "%s", perr);
            snprintf(r->message, sizeof r->message,
                     "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
            return FS3_AUTHORIZATION_QUERY_PARAMETERS_ERROR;
        }
        if (prc != LV_OK) {
            lv_fail(err, LV_EINVAL, "%s", perr);
            snprintf(r->message, sizeof r->message, "%s", perr);
            return FS3_AUTHORIZATION_QUERY_PARAMETERS_ERROR;
        }
        r->presigned = 1;
    }
    r->signed_request = 1;
    fs3_code rc = check_claim(cfg, in, r, err);
    if (rc != FS3_OK)
        return rc;

    const char *ph = header(in, "x-amz-content-sha256");
    while (ph && *ph == ' ')
        ph++;
    if (r->presigned) {
        /* presigned URLs cover no payload (S3 signs UNSIGNED-PAYLOAD) */
        snprintf(r->payload_hash, sizeof r->payload_hash, SIGV4_UNSIGNED_PAYLOAD);
    } else if (!ph) {
        /* the signature covers the body's hash: a request without a body can be checked now */
        const char *cl = header(in, "content-length");
        int chunked = header(in, "transfer-encoding") != NULL;
        if (!chunked && (!cl || strcmp(cl, "0") == 0)) {
            snprintf(r->payload_hash, sizeof r->payload_hash, SIGV4_EMPTY_SHA256);
        } else {
            r->needs_body_hash = 1;
            return FS3_OK;
        }
    } else if (is_hex64(ph) || strcmp(ph, SIGV4_UNSIGNED_PAYLOAD) == 0 ||
               strcmp(ph, SIGV4_STREAMING_PAYLOAD) == 0 ||
               strcmp(ph, SIGV4_STREAMING_PAYLOAD_TRAILER) == 0 ||
               strcmp(ph, SIGV4_STREAMING_UNSIGNED_TRAILER) == 0) {
        snprintf(r->payload_hash, sizeof r->payload_hash, "%s", ph);
    } else {
        lv_fail(err, LV_EINVAL, "bad x-amz-content-sha256");
        snprintf(r->message, sizeof r->message,
                 "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                 "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 value.");
        return FS3_INVALID_ARGUMENT;
    }
    return verify(cfg, in, r, err);
}

fs3_code fs3_auth_finish(const fs3_auth_config *cfg, const fs3_auth_input *in,
                         const char *body_sha256, fs3_auth_result *r, char *err)
{
    snprintf(r->payload_hash, sizeof r->payload_hash, "%s", body_sha256);
    r->needs_body_hash = 0;
    return verify(cfg, in, r, err);
}
