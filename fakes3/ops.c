/*
 * ops: the S3 operations: what each checks before its body (fs3_op_begin) and what it does with
 * the store and answers once the body is in (fs3_op_apply). See request.h for where they run.
 *
 * Here: ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation, ListObjects (v1),
 * ListObjectsV2, PutObject, GetObject, HeadObject, DeleteObject, the admin endpoints
 * /_fakes3/health and /_fakes3/stats, the helpers ops.h shares, and the dispatch. CopyObject and
 * UploadPartCopy are in ops_copy.c, DeleteObjects in ops_delete.c, the multipart upload in
 * ops_multipart.c. GetObject/HeadObject serve ?partNumber=N. GetObjectTagging answers an empty tag
 * set, GetBucketVersioning an empty configuration, GetBucketAcl / GetObjectAcl the owner with
 * FULL_CONTROL; other bucket and object sub-resources (?policy, PUT ?acl...) answer 501
 * NotImplemented, naming the sub-resource.
 *
 * Threads: each call works on one request, on its connection's thread; shared state is the store.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "alloc.h"
#include "hex.h"
#include "httpsem.h"
#include "ops.h"

#define MAX_USER_METADATA 2048
#define MAX_CONFIG_BODY   (64 * 1024)

/* ---- PutObject ------------------------------------------------------------------------------- */

/* Headers PutObject stores and GetObject/HeadObject give back, besides x-amz-meta-*. */
static const char *const stored_headers[] = {"content-type",
                                             "cache-control",
                                             "content-disposition",
                                             "content-encoding",
                                             "content-language",
                                             "expires",
                                             "x-amz-storage-class",
                                             "x-amz-website-redirect-location",
                                             NULL};

/* Whether a request header (any case) is stored with the object. */
static int is_stored_header(const char *name, int with_checksums)
{
    if (strncasecmp(name, "x-amz-meta-", 11) == 0)
        return 1;
    if (fs3_ck_from_header(name) != FS3_CK_NONE)
        return with_checksums;
    for (size_t i = 0; stored_headers[i]; i++)
        if (strcasecmp(name, stored_headers[i]) == 0)
            return 1;
    return 0;
}

static char *lower_dup(const char *s)
{
    size_t n = strlen(s);
    char *d = lv_malloc(n + 1);
    if (d)
        for (size_t i = 0; i <= n; i++)
            d[i] = (char)tolower((unsigned char)s[i]);
    return d;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = lv_malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* A Content-Encoding list without "aws-chunked", the framing of the upload, not of the object
 * (S3 does not store it either). New string, possibly empty; NULL when out of memory. */
static char *without_aws_chunked(const char *v)
{
    lv_buf b;
    lv_buf_init(&b);
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if (t > p && !((size_t)(t - p) == 11 && strncasecmp(p, "aws-chunked", 11) == 0)) {
            if (b.len)
                lv_buf_putc(&b, ',');
            lv_buf_append(&b, p, (size_t)(t - p));
        }
        p = e;
    }
    return lv_buf_take(&b);
}

int fs3_ops_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return -1;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) /* v * 10 + d would overflow */
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Decodes a base64 Content-MD5 into 16 bytes; 0 on success. */
static int decode_md5(const char *b64, uint8_t out[16])
{
    unsigned char buf[24];
    if (strlen(b64) != 24 || strcmp(b64 + 22, "==") != 0)
        return -1;
    if (EVP_DecodeBlock(buf, (const unsigned char *)b64, 24) != 18)
        return -1;
    memcpy(out, buf, 16);
    return 0;
}

fs3_code fs3_ops_content_md5(fs3_req *r)
{
    const char *md5 = fs3_req_header(r, "Content-MD5");
    if (!md5)
        return FS3_OK;
    if (decode_md5(md5, r->content_md5) != 0)
        return FS3_INVALID_DIGEST;
    r->has_content_md5 = 1;
    return FS3_OK;
}

fs3_code fs3_ops_request_checksum(fs3_req *r, fs3_ck_alg *alg, const char **value)
{
    *alg = FS3_CK_NONE;
    *value = NULL;
    for (size_t i = 0; i < r->n_headers; i++) {
        fs3_ck_alg a = fs3_ck_from_header(r->headers[i].name);
        if (a == FS3_CK_NONE)
            continue;
        if (*alg != FS3_CK_NONE && a != *alg) {
            fs3_resp_error(r, FS3_INVALID_REQUEST,
                           "Expecting a single x-amz-checksum- header. Multiple checksum Types "
                           "are not allowed.",
                           NULL, 0);
            return FS3_INVALID_REQUEST;
        }
        if (!fs3_ck_value_valid(a, r->headers[i].value)) {
            char msg[96];
            snprintf(msg, sizeof msg, "Value for %s header is invalid.", fs3_ck_header(a));
            fs3_resp_error(r, FS3_INVALID_REQUEST, msg, NULL, 0);
            return FS3_INVALID_REQUEST;
        }
        *alg = a;
        *value = r->headers[i].value;
    }
    const char *trailer = fs3_req_header(r, "x-amz-trailer");
    if (trailer && *alg == FS3_CK_NONE) {
        while (*trailer == ' ')
            trailer++;
        *alg = fs3_ck_from_header(trailer);
    }
    return FS3_OK;
}

fs3_code fs3_ops_verify_checksum(fs3_req *r, fs3_ck_alg alg, const char *header_value,
                                 const char *computed)
{
    const char *want = header_value;
    if (!want) /* a trailer: finish_streaming put it with the headers to store */
        for (size_t i = 0; i < r->n_store_headers; i++)
            if (strcmp(r->store_headers[i].name, fs3_ck_header(alg)) == 0)
                want = r->store_headers[i].value;
    if (!want)
        return FS3_OK; /* announced, never sent: nothing to compare */
    if (!fs3_ck_value_valid(alg, want)) {
        char msg[96];
        snprintf(msg, sizeof msg, "Value for %s trailing header is invalid.", fs3_ck_header(alg));
        fs3_resp_error(r, FS3_INVALID_REQUEST, msg, NULL, 0);
        return FS3_INVALID_REQUEST;
    }
    if (!fs3_ck_equal(alg, want, computed)) {
        char msg[96];
        snprintf(msg, sizeof msg, "The %s you specified did not match the calculated checksum.",
                 fs3_ck_name(alg));
        snprintf(r->err, sizeof r->err, "%s: sent %s, computed %s", fs3_ck_header(alg), want,
                 computed);
        fs3_resp_error(r, FS3_BAD_DIGEST, msg, NULL, 0);
        return FS3_BAD_DIGEST;
    }
    return FS3_OK;
}

fs3_code fs3_ops_check_body_digests(fs3_req *r, int require)
{
    fs3_ck_alg alg;
    const char *value;
    fs3_code rc = fs3_ops_request_checksum(r, &alg, &value);
    if (rc != FS3_OK)
        return rc;
    if (require && !r->has_content_md5 && !value) {
        fs3_resp_error(r, FS3_INVALID_REQUEST,
                       "Missing required header for this request: Content-MD5", NULL, 0);
        return FS3_INVALID_REQUEST;
    }
    const char *data = r->body.data ? r->body.data : "";
    if (r->has_content_md5) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        if (!EVP_Digest(data, r->body.len, md, &n, EVP_md5(), NULL)) {
            fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
            return FS3_INTERNAL_ERROR;
        }
        if (n != 16 || memcmp(md, r->content_md5, 16) != 0) {
            fs3_resp_error(r, FS3_BAD_DIGEST, NULL, NULL, 0);
            return FS3_BAD_DIGEST;
        }
    }
    if (value) {
        char got[FS3_CK_B64_MAX];
        if (fs3_ck_compute(alg, data, r->body.len, got) != 0) {
            fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
            return FS3_INTERNAL_ERROR;
        }
        return fs3_ops_verify_checksum(r, alg, value, got);
    }
    return FS3_OK;
}

fs3_code fs3_ops_check_write_cond(fs3_req *r)
{
    const char *inm = fs3_req_header(r, "If-None-Match");
    if (inm && strcmp(inm, "*") != 0) {
        fs3_xml_field f = {"Header", "If-None-Match", 13};
        fs3_resp_error(r, FS3_NOT_IMPLEMENTED,
                       "A header you provided implies functionality that is not implemented "
                       "(a write accepts only If-None-Match: *)",
                       &f, 1);
        return FS3_NOT_IMPLEMENTED;
    }
    return FS3_OK;
}

void fs3_ops_write_error(fs3_req *r, fs3_code rc)
{
    if (rc == FS3_PRECONDITION_FAILED) {
        const char *which = fs3_req_header(r, "If-None-Match") ? "If-None-Match" : "If-Match";
        fs3_xml_field f = {"Condition", which, strlen(which)};
        fs3_resp_error(r, rc, NULL, &f, 1);
    } else {
        fs3_resp_error(r, rc, NULL, NULL, 0);
    }
}

fs3_code fs3_ops_collect_headers(fs3_req *r, int with_checksums)
{
    r->store_headers = lv_calloc(r->n_headers ? r->n_headers : 1, sizeof *r->store_headers);
    if (!r->store_headers)
        return FS3_INTERNAL_ERROR;
    size_t meta_size = 0;
    for (size_t i = 0; i < r->n_headers; i++) {
        if (!is_stored_header(r->headers[i].name, with_checksums))
            continue; /* most headers: no copy made */
        char *lname = lower_dup(r->headers[i].name);
        if (!lname)
            return FS3_INTERNAL_ERROR;
        char *value = strcmp(lname, "content-encoding") == 0
                          ? without_aws_chunked(r->headers[i].value)
                          : dup_str(r->headers[i].value);
        if (value && !*value) { /* Content-Encoding: aws-chunked alone: nothing to store */
            lv_free(lname);
            lv_free(value);
            continue;
        }
        if (!value) {
            lv_free(lname);
            return FS3_INTERNAL_ERROR;
        }
        if (strncmp(lname, "x-amz-meta-", 11) == 0)
            meta_size += strlen(lname) - 11 + strlen(value);
        r->store_headers[r->n_store_headers].name = lname;
        r->store_headers[r->n_store_headers].value = value;
        r->n_store_headers++;
    }
    if (meta_size > MAX_USER_METADATA) {
        char size[32], max[32];
        snprintf(size, sizeof size, "%zu", meta_size);
        snprintf(max, sizeof max, "%d", MAX_USER_METADATA);
        fs3_xml_field f[2] = {{"Size", size, strlen(size)}, {"MaxSizeAllowed", max, strlen(max)}};
        fs3_resp_error(r, FS3_METADATA_TOO_LARGE, NULL, f, 2);
        return FS3_METADATA_TOO_LARGE;
    }
    return FS3_OK;
}

static fs3_code begin_put_object(fs3_req *r)
{
    const char *cl = r->chunked ? NULL : fs3_req_header(r, "Content-Length");
    uint64_t len = r->chunked ? (uint64_t)r->decoded_length : 0;
    if (cl || r->chunked) {
        if (cl && fs3_ops_parse_u64(cl, &len) != 0) {
            fs3_resp_error(r, FS3_INVALID_ARGUMENT, "Content-Length is not a number.", NULL, 0);
            return FS3_INVALID_ARGUMENT;
        }
        if (len > r->cfg->max_object_size) {
            char proposed[32], max[32];
            snprintf(proposed, sizeof proposed, "%llu", (unsigned long long)len);
            snprintf(max, sizeof max, "%llu", (unsigned long long)r->cfg->max_object_size);
            fs3_xml_field f[2] = {{"ProposedSize", proposed, strlen(proposed)},
                                  {"MaxSizeAllowed", max, strlen(max)}};
            fs3_resp_error(r, FS3_ENTITY_TOO_LARGE, NULL, f, 2);
            return FS3_ENTITY_TOO_LARGE;
        }
    } else if (!fs3_req_header(r, "Transfer-Encoding")) {
        return FS3_MISSING_CONTENT_LENGTH;
    }
    fs3_code rc = fs3_ops_content_md5(r);
    if (rc != FS3_OK || (rc = fs3_ops_check_write_cond(r)) != FS3_OK ||
        (rc = fs3_ops_collect_headers(r, 1)) != FS3_OK)
        return rc;
    fs3_ck_alg alg;
    const char *ck_value;
    if ((rc = fs3_ops_request_checksum(r, &alg, &ck_value)) != FS3_OK)
        return rc;
    r->md5 = EVP_MD_CTX_new();
    if (!r->md5 || !EVP_DigestInit_ex(r->md5, EVP_md5(), NULL))
        return FS3_INTERNAL_ERROR;
    rc = fs3_store_put_begin(r->store, r->route.bucket, r->route.key, r->route.key_len, &r->put,
                             r->err);
    if (rc != FS3_OK)
        return rc;
    if ((rc = fs3_put_hash(r->put, 0, alg, r->err)) != FS3_OK)
        return rc;
    /* a conditional write: a delete of the key from now until the commit is a 409 */
    if (fs3_req_header(r, "If-None-Match") || fs3_req_header(r, "If-Match"))
        fs3_put_conditional(r->put);
    r->body_kind = FS3_BODY_PUT;
    return FS3_OK;
}

/*
 * Ends a streamed upload body (PutObject, UploadPart): checks Content-MD5 and any x-amz-checksum-*
 * against what arrived, and writes the MD5 ETag (hex) into etag. On failure the error response is
 * set and the code returned.
 */
fs3_code fs3_ops_finish_body(fs3_req *r, char etag[FS3_ETAG_MAX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(r->md5, md, &mdlen);
    if (r->has_content_md5 && (mdlen != 16 || memcmp(md, r->content_md5, 16) != 0)) {
        fs3_resp_error(r, FS3_BAD_DIGEST, NULL, NULL, 0);
        return FS3_BAD_DIGEST;
    }
    fs3_ck_alg alg;
    const char *ck_value;
    fs3_code rc = fs3_ops_request_checksum(r, &alg, &ck_value);
    if (rc != FS3_OK)
        return rc;
    char ck[FS3_CK_B64_MAX];
    if (alg != FS3_CK_NONE && (fs3_put_checksum(r->put, ck) != 0 ||
                               fs3_ops_verify_checksum(r, alg, ck_value, ck) != FS3_OK)) {
        if (!r->code)
            fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
        return FS3_BAD_DIGEST;
    }
    lv_hex_encode(md, 16, etag);
    return FS3_OK;
}

static void apply_put_object(fs3_req *r)
{
    char etag[FS3_ETAG_MAX];
    if (fs3_ops_finish_body(r, etag) != FS3_OK)
        return;
    fs3_write_cond cond = {fs3_req_header(r, "If-Match"), fs3_req_header(r, "If-None-Match")};
    fs3_put *p = r->put;
    r->put = NULL; /* commit consumes it */
    fs3_code rc = fs3_store_put_commit(r->store, p, etag, r->store_headers, r->n_store_headers,
                                       &cond, r->start_ms, NULL, r->err);
    if (rc != FS3_OK) {
        fs3_ops_write_error(r, rc);
        return;
    }
    char quoted[FS3_ETAG_MAX + 2];
    snprintf(quoted, sizeof quoted, "\"%s\"", etag);
    r->resp.status = 200;
    fs3_resp_header(r, "ETag", quoted);
    for (size_t i = 0; i < r->n_store_headers; i++)
        if (strncmp(r->store_headers[i].name, "x-amz-checksum-", 15) == 0)
            fs3_resp_header(r, r->store_headers[i].name, r->store_headers[i].value);
}

/* ---- GetObject / HeadObject ------------------------------------------------------------------ */

static void object_headers(fs3_req *r, const fs3_object *o, int full)
{
    char buf[64], quoted[FS3_ETAG_MAX + 2];
    snprintf(quoted, sizeof quoted, "\"%s\"", o->etag);
    fs3_resp_header(r, "ETag", quoted);
    fs3_format_http_date(o->mtime_ms / 1000, buf, sizeof buf);
    fs3_resp_header(r, "Last-Modified", buf);
    if (!full)
        return;
    fs3_resp_header(r, "Accept-Ranges", "bytes");
    const char *mode = fs3_req_header(r, "x-amz-checksum-mode");
    int checksums = mode && strcasecmp(mode, "ENABLED") == 0 && !fs3_req_header(r, "Range") &&
                    !fs3_query_get(&r->q, "partNumber", NULL);
    int has_type = 0;
    static const char *const overrides[][2] = {
        {"response-content-type", "content-type"},
        {"response-content-language", "content-language"},
        {"response-expires", "expires"},
        {"response-cache-control", "cache-control"},
        {"response-content-disposition", "content-disposition"},
        {"response-content-encoding", "content-encoding"},
    };
    for (size_t i = 0; i < o->n_headers; i++) {
        const char *n = o->headers[i].name;
        if (strncmp(n, "x-amz-checksum-", 15) == 0 && !checksums)
            continue;
        if (strcmp(n, "x-amz-storage-class") == 0 && strcmp(o->headers[i].value, "STANDARD") == 0)
            continue;
        int overridden = 0;
        for (size_t k = 0; k < sizeof overrides / sizeof *overrides; k++)
            if (strcmp(n, overrides[k][1]) == 0 && fs3_query_get(&r->q, overrides[k][0], NULL))
                overridden = 1;
        if (overridden)
            continue;
        if (strcmp(n, "content-type") == 0) {
            has_type = 1;
            fs3_resp_header(r, "Content-Type", o->headers[i].value);
        } else {
            fs3_resp_header(r, n, o->headers[i].value);
        }
    }
    for (size_t k = 0; k < sizeof overrides / sizeof *overrides; k++) {
        const char *v = fs3_query_get(&r->q, overrides[k][0], NULL);
        if (v) {
            fs3_resp_header(r, overrides[k][1], v);
            if (k == 0)
                has_type = 1;
        }
    }
    if (!has_type)
        fs3_resp_header(r, "Content-Type", "binary/octet-stream");
}

/*
 * GET/HEAD ?partNumber=N: 0 when absent, N (1..10000), or -1 with the error answered. S3 refuses
 * it beside a Range header.
 */
static long part_number_param(fs3_req *r)
{
    const char *pn = fs3_query_get(&r->q, "partNumber", NULL);
    if (!pn)
        return 0;
    uint64_t n = 0;
    if (fs3_ops_parse_u64(pn, &n) != 0 || n < 1 || n > FS3_MAX_PART_NUMBER) {
        fs3_xml_field f[2] = {{"ArgumentName", "partNumber", 10},
                              {"ArgumentValue", pn, strlen(pn)}};
        fs3_resp_error(r, FS3_INVALID_ARGUMENT,
                       "Part number must be an integer between 1 and 10000, inclusive", f, 2);
        return -1;
    }
    if (fs3_req_header(r, "Range")) {
        fs3_resp_error(r, FS3_INVALID_REQUEST,
                       "Cannot specify both Range header and partNumber query parameter", NULL, 0);
        return -1;
    }
    return (long)n;
}

/*
 * The bytes of part n of o into [*first, *last]: a completed multipart upload's part n, or for
 * any other object part 1, the whole object (as S3). -1 when there is no such part.
 */
static int part_range(const fs3_object *o, long n, uint64_t *first, uint64_t *last)
{
    if (!o->n_parts) {
        if (n != 1 || o->size == 0)
            return -1;
        *first = 0;
        *last = o->size - 1;
        return 0;
    }
    if ((size_t)n > o->n_parts)
        return -1;
    uint64_t off = 0;
    for (long i = 0; i < n - 1; i++)
        off += o->part_sizes[i];
    if (o->part_sizes[n - 1] == 0)
        return -1;
    *first = off;
    *last = off + o->part_sizes[n - 1] - 1;
    return 0;
}

static void apply_get_object(fs3_req *r)
{
    fs3_object *o = NULL;
    fs3_body body = {.fd = -1};
    long part = part_number_param(r);
    if (part < 0)
        return;
    fs3_code rc =
        fs3_store_get(r->store, r->route.bucket, r->route.key, r->route.key_len, &o, &body, r->err);
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        return;
    }
    fs3_read_cond cond = {
        fs3_req_header(r, "If-Match"),
        fs3_req_header(r, "If-None-Match"),
        fs3_req_header(r, "If-Modified-Since"),
        fs3_req_header(r, "If-Unmodified-Since"),
    };
    rc = fs3_check_read_cond(&cond, o->etag, o->mtime_ms);
    if (rc != FS3_OK) {
        if (rc == FS3_PRECONDITION_FAILED) {
            const char *which = cond.if_match ? "If-Match" : "If-Unmodified-Since";
            fs3_xml_field f = {"Condition", which, strlen(which)};
            fs3_resp_error(r, rc, NULL, &f, 1);
        } else {
            fs3_resp_error(r, rc, NULL, NULL, 0);
            object_headers(r, o, 0);
        }
        goto done;
    }
    uint64_t first = 0, last = 0;
    fs3_range_kind rk = FS3_RANGE_NONE;
    if (part) {
        /* an empty single-part object's part 1 is the whole (empty) object, with 200 */
        if (part == 1 && o->size == 0 && !o->n_parts)
            rk = FS3_RANGE_NONE;
        else if (part_range(o, part, &first, &last) == 0)
            rk = FS3_RANGE_OK;
        else {
            char count[32];
            snprintf(count, sizeof count, "%zu", o->n_parts ? o->n_parts : (size_t)1);
            fs3_xml_field f[2] = {{"PartNumberRequested", fs3_query_get(&r->q, "partNumber", NULL),
                                   strlen(fs3_query_get(&r->q, "partNumber", NULL))},
                                  {"ActualPartCount", count, strlen(count)}};
            fs3_resp_error(r, FS3_INVALID_PART_NUMBER, NULL, f, 2);
            goto done;
        }
    } else {
        rk = fs3_parse_range(fs3_req_header(r, "Range"), o->size, &first, &last);
    }
    if (rk == FS3_RANGE_UNSATISFIABLE) {
        char size[32], cr[48];
        const char *range = fs3_req_header(r, "Range");
        snprintf(size, sizeof size, "%llu", (unsigned long long)o->size);
        fs3_xml_field f[2] = {{"RangeRequested", range, strlen(range)},
                              {"ActualObjectSize", size, strlen(size)}};
        fs3_resp_error(r, FS3_INVALID_RANGE, NULL, f, 2);
        snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)o->size);
        fs3_resp_header(r, "Content-Range", cr);
        goto done;
    }
    r->resp.status = 200;
    object_headers(r, o, 1);
    if (rk == FS3_RANGE_OK) {
        char cr[80];
        snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)first,
                 (unsigned long long)last, (unsigned long long)o->size);
        fs3_resp_header(r, "Content-Range", cr);
        if (part && o->n_parts) {
            char count[32];
            snprintf(count, sizeof count, "%zu", o->n_parts);
            fs3_resp_header(r, "x-amz-mp-parts-count", count);
        }
        r->resp.status = 206;
        r->resp.off = first;
        r->resp.len = last - first + 1;
    } else {
        r->resp.off = 0;
        r->resp.len = o->size;
    }
    /* the bytes: the open file, or the object itself (its reference passes to the response) */
    if (body.fd >= 0) {
        r->resp.fd = body.fd;
        body.fd = -1;
    } else {
        r->resp.mem_obj = o;
        r->resp.mem = body.data;
        o = NULL;
    }
done:
    if (body.fd >= 0)
        close(body.fd);
    fs3_object_unref(o);
}

/* ---- buckets --------------------------------------------------------------------------------- */

void fs3_ops_owner_xml(lv_buf *b, const char *element)
{
    lv_buf_printf(b,
                  "<%s><ID>" FS3_OWNER_ID "</ID><DisplayName>" FS3_OWNER_ID "</DisplayName></%s>",
                  element, element);
}

static void apply_list_buckets(fs3_req *r)
{
    fs3_bucket_info *v = NULL;
    size_t n = 0;
    fs3_code rc = fs3_store_list_buckets(r->store, &v, &n, r->err);
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        return;
    }
    lv_buf b;
    lv_buf_init(&b);
    fs3_xml_decl(&b);
    lv_buf_puts(&b, "<ListAllMyBucketsResult xmlns=\"" FS3_XMLNS "\">");
    fs3_ops_owner_xml(&b, "Owner");
    lv_buf_puts(&b, "<Buckets>");
    for (size_t i = 0; i < n; i++) {
        char when[40];
        fs3_format_iso8601(v[i].created_ms, when, sizeof when);
        lv_buf_puts(&b, "<Bucket>");
        fs3_xml_elems(&b, "Name", v[i].name);
        fs3_xml_elems(&b, "CreationDate", when);
        lv_buf_puts(&b, "</Bucket>");
    }
    lv_buf_puts(&b, "</Buckets></ListAllMyBucketsResult>");
    lv_free(v);
    fs3_resp_xml(r, 200, &b);
    lv_buf_free(&b);
}

static void apply_create_bucket(fs3_req *r)
{
    /* an optional CreateBucketConfiguration: its LocationConstraint must be this region */
    size_t i = 0;
    while (i < r->body.len && isspace((unsigned char)r->body.data[i]))
        i++;
    if (i < r->body.len) {
        fs3_xml_node *root = NULL;
        fs3_code rc = fs3_xml_parse(r->body.data, r->body.len, &root, r->err);
        if (rc != FS3_OK) {
            fs3_resp_error(r, rc, NULL, NULL, 0);
            return;
        }
        const fs3_xml_node *lc = fs3_xml_child(root, "LocationConstraint");
        int bad = strcmp(root->name, "CreateBucketConfiguration") != 0 ||
                  (lc && lc->text_len && strcmp(lc->text, r->cfg->region) != 0);
        fs3_xml_free(root);
        if (bad) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "The specified location-constraint is not valid (this server is %s)",
                     r->cfg->region);
            fs3_resp_error(r, FS3_INVALID_LOCATION_CONSTRAINT, msg, NULL, 0);
            return;
        }
    }
    fs3_code rc = fs3_store_create_bucket(r->store, r->route.bucket, r->start_ms, r->err);
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        return;
    }
    char loc[FS3_MAX_BUCKET_LEN + 2];
    snprintf(loc, sizeof loc, "/%s", r->route.bucket);
    r->resp.status = 200;
    fs3_resp_header(r, "Location", loc);
}

static void apply_delete_bucket(fs3_req *r)
{
    fs3_code rc = fs3_store_delete_bucket(r->store, r->route.bucket, r->err);
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        return;
    }
    r->resp.status = 204;
}

static void apply_head_bucket(fs3_req *r)
{
    fs3_code rc = fs3_store_head_bucket(r->store, r->route.bucket, r->err);
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        return;
    }
    r->resp.status = 200;
    fs3_resp_header(r, "x-amz-bucket-region", r->cfg->region);
}

static void apply_get_bucket_location(fs3_req *r)
{
    fs3_code rc = fs3_store_head_bucket(r->store, r->route.bucket, r->err);
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        return;
    }
    lv_buf b;
    lv_buf_init(&b);
    fs3_xml_decl(&b);
    lv_buf_puts(&b, "<LocationConstraint xmlns=\"" FS3_XMLNS "\">");
    if (strcmp(r->cfg->region, "us-east-1") != 0) /* S3 answers us-east-1 as empty */
        fs3_xml_text(&b, r->cfg->region, strlen(r->cfg->region));
    lv_buf_puts(&b, "</LocationConstraint>");
    fs3_resp_xml(r, 200, &b);
    lv_buf_free(&b);
}

/* ---- listing --------------------------------------------------------------------------------- */

void fs3_ops_list_elem(lv_buf *b, const char *name, const char *s, size_t n, int url)
{
    if (!url) {
        fs3_xml_elem(b, name, s, n);
        return;
    }
    lv_buf enc;
    lv_buf_init(&enc);
    lv_buf_uri_encode(&enc, s, n, 1);
    fs3_xml_elem(b, name, enc.data ? enc.data : "", enc.len);
    if (enc.oom)
        b->oom = 1;
    lv_buf_free(&enc);
}

/* Continuation tokens: 'k' (a key) or 'p' (a common prefix) and the item in hex. Opaque to
 * clients, as S3's are. */
static void token_encode(lv_buf *b, const fs3_list_entry *e)
{
    static const char digits[] = "0123456789abcdef";
    lv_buf_putc(b, e->is_prefix ? 'p' : 'k');
    for (size_t i = 0; i < e->key_len; i++) {
        lv_buf_putc(b, digits[(unsigned char)e->key[i] >> 4]);
        lv_buf_putc(b, digits[(unsigned char)e->key[i] & 15]);
    }
}

static int token_decode(const char *t, size_t n, char *out, size_t *len, int *is_prefix)
{
    if (n < 1 || (t[0] != 'k' && t[0] != 'p') || (n - 1) % 2 || (n - 1) / 2 > FS3_MAX_KEY_LEN)
        return -1;
    *is_prefix = t[0] == 'p';
    *len = (n - 1) / 2;
    return lv_hex_decode(t + 1, (uint8_t *)out, *len);
}

static void apply_list_objects(fs3_req *r, int v2)
{
    const fs3_query *q = &r->q;
    size_t prefix_len = 0, delim_len = 0, sa_len = 0, tok_len = 0, marker_len = 0;
    const char *prefix = fs3_query_get(q, "prefix", &prefix_len);
    const char *delim = fs3_query_get(q, "delimiter", &delim_len);
    const char *start_after = v2 ? fs3_query_get(q, "start-after", &sa_len) : NULL;
    const char *token = v2 ? fs3_query_get(q, "continuation-token", &tok_len) : NULL;
    const char *marker = v2 ? NULL : fs3_query_get(q, "marker", &marker_len);
    const char *enc = fs3_query_get(q, "encoding-type", NULL);
    const char *mk = fs3_query_get(q, "max-keys", NULL);
    const char *fo = fs3_query_get(q, "fetch-owner", NULL);
    int url = 0, owner = !v2 || (fo && strcmp(fo, "true") == 0);
    if (enc) {
        if (strcmp(enc, "url") != 0) {
            fs3_resp_error(r, FS3_INVALID_ARGUMENT, "Invalid Encoding Method specified in Request",
                           NULL, 0);
            return;
        }
        url = 1;
    }
    uint64_t max_keys = 1000;
    if (mk && (fs3_ops_parse_u64(mk, &max_keys) != 0)) {
        fs3_resp_error(r, FS3_INVALID_ARGUMENT,
                       "Provided max-keys not an integer or within "
                       "integer range",
                       NULL, 0);
        return;
    }
    if (max_keys > 1000)
        max_keys = 1000;
    if (delim && delim_len == 0)
        delim = NULL;

    fs3_list_params p = {
        .prefix = prefix ? prefix : "",
        .prefix_len = prefix_len,
        .delimiter = delim,
        .delimiter_len = delim_len,
        .max_keys = (size_t)max_keys,
    };
    char after[FS3_MAX_KEY_LEN + 1];
    if (token) {
        size_t alen = 0;
        int is_prefix = 0;
        if (token_decode(token, tok_len, after, &alen, &is_prefix) != 0) {
            fs3_resp_error(r, FS3_INVALID_ARGUMENT, "The continuation token provided is incorrect",
                           NULL, 0);
            return;
        }
        p.after = after;
        p.after_len = alen;
        p.after_is_prefix = is_prefix;
    } else if (start_after && sa_len) {
        p.after = start_after;
        p.after_len = sa_len;
    } else if (marker && marker_len) {
        p.after = marker;
        p.after_len = marker_len;
        /* a NextMarker that was a common prefix: carry on after everything under it */
        p.after_is_prefix = delim && marker_len >= delim_len &&
                            memcmp(marker + marker_len - delim_len, delim, delim_len) == 0 &&
                            marker_len >= prefix_len && memcmp(marker, p.prefix, prefix_len) == 0;
    }

    fs3_list_result res;
    fs3_code rc = fs3_store_list(r->store, r->route.bucket, &p, &res, r->err);
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        return;
    }
    lv_buf b;
    lv_buf_init(&b);
    fs3_xml_decl(&b);
    lv_buf_puts(&b, "<ListBucketResult xmlns=\"" FS3_XMLNS "\">");
    fs3_xml_elems(&b, "Name", r->route.bucket);
    fs3_ops_list_elem(&b, "Prefix", p.prefix, p.prefix_len, url);
    if (!v2)
        fs3_ops_list_elem(&b, "Marker", marker ? marker : "", marker_len, url);
    if (!v2 && res.truncated && res.n) {
        const fs3_list_entry *last = &res.entries[res.n - 1];
        fs3_ops_list_elem(&b, "NextMarker", last->key, last->key_len, url);
    }
    lv_buf_printf(&b, "<MaxKeys>%llu</MaxKeys>", (unsigned long long)max_keys);
    if (delim)
        fs3_ops_list_elem(&b, "Delimiter", delim, delim_len, url);
    if (url)
        lv_buf_puts(&b, "<EncodingType>url</EncodingType>");
    if (v2)
        lv_buf_printf(&b, "<KeyCount>%zu</KeyCount>", res.n);
    lv_buf_printf(&b, "<IsTruncated>%s</IsTruncated>", res.truncated ? "true" : "false");
    if (v2 && token)
        fs3_xml_elem(&b, "ContinuationToken", token, tok_len);
    if (v2 && res.truncated && res.n) {
        lv_buf_puts(&b, "<NextContinuationToken>");
        token_encode(&b, &res.entries[res.n - 1]);
        lv_buf_puts(&b, "</NextContinuationToken>");
    }
    if (v2 && start_after)
        fs3_ops_list_elem(&b, "StartAfter", start_after, sa_len, url);
    for (size_t i = 0; i < res.n; i++) {
        const fs3_list_entry *e = &res.entries[i];
        if (e->is_prefix)
            continue;
        char when[40];
        fs3_format_iso8601(e->mtime_ms, when, sizeof when);
        lv_buf_puts(&b, "<Contents>");
        fs3_ops_list_elem(&b, "Key", e->key, e->key_len, url);
        fs3_xml_elems(&b, "LastModified", when);
        lv_buf_printf(&b, "<ETag>&quot;%s&quot;</ETag><Size>%llu</Size>", e->etag,
                      (unsigned long long)e->size);
        if (owner)
            fs3_ops_owner_xml(&b, "Owner");
        lv_buf_puts(&b, "<StorageClass>STANDARD</StorageClass></Contents>");
    }
    for (size_t i = 0; i < res.n; i++) {
        const fs3_list_entry *e = &res.entries[i];
        if (!e->is_prefix)
            continue;
        lv_buf_puts(&b, "<CommonPrefixes>");
        fs3_ops_list_elem(&b, "Prefix", e->key, e->key_len, url);
        lv_buf_puts(&b, "</CommonPrefixes>");
    }
    lv_buf_puts(&b, "</ListBucketResult>");
    fs3_list_free(&res);
    fs3_resp_xml(r, 200, &b);
    lv_buf_free(&b);
}

/* ---- the rest -------------------------------------------------------------------------------- */

/*
 * Answers 200 with the XML document doc (after the declaration) if the request's target exists:
 * the object when object, else the bucket; else the error (NoSuchKey, NoSuchBucket).
 */
static void answer_if_exists(fs3_req *r, int object, const char *doc)
{
    fs3_code rc;
    if (object) {
        fs3_object *o = NULL;
        rc = fs3_store_get(r->store, r->route.bucket, r->route.key, r->route.key_len, &o, NULL,
                           r->err);
        fs3_object_unref(o);
    } else {
        rc = fs3_store_head_bucket(r->store, r->route.bucket, r->err);
    }
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        return;
    }
    lv_buf b;
    lv_buf_init(&b);
    fs3_xml_decl(&b);
    lv_buf_puts(&b, doc);
    fs3_resp_xml(r, 200, &b);
    lv_buf_free(&b);
}

/*
 * GetObjectTagging: fakes3 keeps no tags, so an existing object has an empty tag set. Clients ask
 * for it before a multipart copy (the aws CLI does, and gives up on an error).
 */
static const char tagging_doc[] = "<Tagging xmlns=\"" FS3_XMLNS "\"><TagSet></TagSet></Tagging>";

/* GetBucketVersioning: fakes3 keeps one version of each key; a bucket never versioned answers an
 * empty VersioningConfiguration, as S3 does. */
static const char versioning_doc[] = "<VersioningConfiguration xmlns=\"" FS3_XMLNS "\"/>";

/* GetBucketAcl / GetObjectAcl: fakes3 has one owner, who has FULL_CONTROL of everything (the
 * "private" canned ACL, S3's default). */
static const char acl_doc[] =
    "<AccessControlPolicy xmlns=\"" FS3_XMLNS "\"><Owner><ID>" FS3_OWNER_ID
    "</ID><DisplayName>" FS3_OWNER_ID "</DisplayName></Owner><AccessControlList><Grant><Grantee "
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
    "xsi:type=\"CanonicalUser\"><ID>" FS3_OWNER_ID "</ID><DisplayName>" FS3_OWNER_ID
    "</DisplayName></Grantee><Permission>FULL_CONTROL</Permission>"
    "</Grant></AccessControlList></AccessControlPolicy>";

static void apply_delete_object(fs3_req *r)
{
    /* If-Match: delete only that version (S3's conditional delete): 412 when the ETag differs */
    const char *im = fs3_req_header(r, "If-Match");
    char etag[128] = "";
    if (im) {
        size_t n = strlen(im);
        if (n >= 2 && im[0] == '"' && im[n - 1] == '"') {
            im++;
            n -= 2;
        }
        if (n >= sizeof etag) {
            fs3_resp_error(r, FS3_PRECONDITION_FAILED, NULL, NULL, 0);
            return;
        }
        memcpy(etag, im, n);
        etag[n] = 0;
    }
    fs3_code rc = fs3_store_delete_if(r->store, r->route.bucket, r->route.key, r->route.key_len,
                                      im ? etag : NULL, NULL, r->err);
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        return;
    }
    r->resp.status = 204;
}

static void apply_health(fs3_req *r)
{
    size_t nb = 0, no = 0;
    fs3_store_counts(r->store, &nb, &no);
    r->resp.status = 200;
    lv_buf_printf(&r->resp.body, "{\"status\":\"ok\",\"buckets\":%zu,\"objects\":%zu}\n", nb, no);
    fs3_resp_header(r, "Content-Type", "application/json");
}

static void apply_stats(fs3_req *r)
{
    r->resp.status = 200;
    fs3_server_stats_json(r, &r->resp.body);
    fs3_resp_header(r, "Content-Type", "application/json");
}

static int implemented(fs3_op op)
{
    return op > FS3_OP_UNKNOWN && op != FS3_OP_BUCKET_SUBRESOURCE &&
           op != FS3_OP_OBJECT_SUBRESOURCE && op < FS3_OP_COUNT;
}

fs3_code fs3_op_begin(fs3_req *r)
{
    if (!implemented(r->route.op)) {
        char msg[200];
        const char *sub = fs3_route_subresource(&r->q, r->route.op);
        if (*sub)
            snprintf(msg, sizeof msg,
                     "%s on the %s sub-resource ?%s is not implemented by fakes3 (it answers "
                     "GET ?acl, GET ?versioning and GET ?tagging only).",
                     r->method, r->route.op == FS3_OP_BUCKET_SUBRESOURCE ? "bucket" : "object",
                     sub);
        else
            snprintf(msg, sizeof msg, "%s is not implemented by this fakes3 yet.",
                     fs3_op_name(r->route.op));
        fs3_resp_error(r, FS3_NOT_IMPLEMENTED, msg, NULL, 0);
        return FS3_NOT_IMPLEMENTED;
    }
    switch (r->route.op) {
    case FS3_OP_PUT_OBJECT:
        return begin_put_object(r);
    case FS3_OP_CREATE_BUCKET:
        r->body_kind = FS3_BODY_BUFFER;
        r->body_limit = MAX_CONFIG_BODY;
        return FS3_OK;
    case FS3_OP_COPY_OBJECT:
        return fs3_begin_copy_object(r);
    case FS3_OP_UPLOAD_PART_COPY:
        return fs3_begin_upload_part_copy(r);
    case FS3_OP_DELETE_OBJECTS:
        return fs3_begin_delete_objects(r);
    case FS3_OP_CREATE_MULTIPART_UPLOAD:
        return fs3_begin_create_multipart(r);
    case FS3_OP_UPLOAD_PART:
        return fs3_begin_upload_part(r);
    case FS3_OP_COMPLETE_MULTIPART_UPLOAD:
        return fs3_begin_complete_multipart(r);
    case FS3_OP_ADMIN_FAULTS:
        return fs3_begin_admin_faults(r);
    default:
        r->body_kind = FS3_BODY_DISCARD;
        return FS3_OK;
    }
}

void fs3_op_apply(fs3_req *r)
{
    switch (r->route.op) {
    case FS3_OP_LIST_BUCKETS:
        apply_list_buckets(r);
        break;
    case FS3_OP_GET_OBJECT_TAGGING:
        answer_if_exists(r, 1, tagging_doc);
        break;
    case FS3_OP_GET_BUCKET_VERSIONING:
        answer_if_exists(r, 0, versioning_doc);
        break;
    case FS3_OP_GET_BUCKET_ACL:
        answer_if_exists(r, 0, acl_doc);
        break;
    case FS3_OP_GET_OBJECT_ACL:
        answer_if_exists(r, 1, acl_doc);
        break;
    case FS3_OP_CREATE_BUCKET:
        apply_create_bucket(r);
        break;
    case FS3_OP_DELETE_BUCKET:
        apply_delete_bucket(r);
        break;
    case FS3_OP_HEAD_BUCKET:
        apply_head_bucket(r);
        break;
    case FS3_OP_GET_BUCKET_LOCATION:
        apply_get_bucket_location(r);
        break;
    case FS3_OP_LIST_OBJECTS:
        apply_list_objects(r, 0);
        break;
    case FS3_OP_LIST_OBJECTS_V2:
        apply_list_objects(r, 1);
        break;
    case FS3_OP_PUT_OBJECT:
        apply_put_object(r);
        break;
    case FS3_OP_GET_OBJECT:
    case FS3_OP_HEAD_OBJECT:
        apply_get_object(r);
        break;
    case FS3_OP_DELETE_OBJECT:
        apply_delete_object(r);
        break;
    case FS3_OP_ADMIN_HEALTH:
        apply_health(r);
        break;
    case FS3_OP_ADMIN_STATS:
        apply_stats(r);
        break;
    case FS3_OP_COPY_OBJECT:
        fs3_apply_copy_object(r);
        break;
    case FS3_OP_UPLOAD_PART_COPY:
        fs3_apply_upload_part_copy(r);
        break;
    case FS3_OP_DELETE_OBJECTS:
        fs3_apply_delete_objects(r);
        break;
    case FS3_OP_CREATE_MULTIPART_UPLOAD:
        fs3_apply_create_multipart(r);
        break;
    case FS3_OP_UPLOAD_PART:
        fs3_apply_upload_part(r);
        break;
    case FS3_OP_COMPLETE_MULTIPART_UPLOAD:
        fs3_apply_complete_multipart(r);
        break;
    case FS3_OP_ABORT_MULTIPART_UPLOAD:
        fs3_apply_abort_multipart(r);
        break;
    case FS3_OP_LIST_PARTS:
        fs3_apply_list_parts(r);
        break;
    case FS3_OP_LIST_MULTIPART_UPLOADS:
        fs3_apply_list_uploads(r);
        break;
    case FS3_OP_ADMIN_FAULTS:
        fs3_apply_admin_faults(r);
        break;
    default:
        fs3_resp_error(r, FS3_NOT_IMPLEMENTED, NULL, NULL, 0);
        break;
    }
}
