/*
 * ops_copy: CopyObject (PUT with x-amz-copy-source) and UploadPartCopy (the same onto a part of a
 * multipart upload, optionally a byte range of the source).
 *
 * The source is opened once (store.h: the reference pins the version, the open file its bytes)
 * and streamed into a new upload: on disk file to file with copy_file_range when nothing needs
 * hashing (a CopyObject of a single-part object keeps its MD5 ETag), never through memory whole.
 * The destination is committed like a PutObject: If-None-Match: * / If-Match decided atomically.
 *
 * Threads: one request, on its connection's thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "hex.h"
#include "httpsem.h"
#include "ops.h"

/* ---- the copy source ------------------------------------------------------------------------- */

fs3_code fs3_ops_copy_source(fs3_req *r, fs3_copy_source *cs)
{
    memset(cs, 0, sizeof *cs);
    const char *v = fs3_req_header(r, "x-amz-copy-source");
    if (!v)
        v = "";
    /* "?versionId=" is the one query a copy source has; in a key a '?' is %3F */
    size_t n = strlen(v);
    const char *q = strstr(v, "?versionId=");
    if (q)
        n = (size_t)(q - v);
    char *dec = lv_malloc(n + 1);
    if (!dec)
        return FS3_INTERNAL_ERROR;
    size_t dn = lv_uri_decode(v, n, dec);
    const char *p = dec, *end = dec + dn;
    if (p < end && *p == '/')
        p++;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    size_t blen = slash ? (size_t)(slash - p) : 0;
    if (!slash || blen == 0 || slash + 1 >= end) {
        lv_free(dec);
        fs3_resp_error(r, FS3_INVALID_ARGUMENT,
                       "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                       NULL, 0);
        return FS3_INVALID_ARGUMENT;
    }
    if (blen > FS3_MAX_BUCKET_LEN) {
        lv_free(dec);
        fs3_resp_error(r, FS3_INVALID_ARGUMENT, "Invalid copy source bucket name", NULL, 0);
        return FS3_INVALID_ARGUMENT;
    }
    memcpy(cs->bucket, p, blen);
    cs->bucket[blen] = '\0';
    const char *key = slash + 1;
    size_t klen = (size_t)(end - key);
    if (!fs3_bucket_name_valid(cs->bucket) || memchr(key, '\0', klen)) {
        lv_free(dec);
        fs3_resp_error(r, FS3_INVALID_ARGUMENT,
                       fs3_bucket_name_valid(cs->bucket) ? "Invalid copy source object key"
                                                         : "Invalid copy source bucket name",
                       NULL, 0);
        return FS3_INVALID_ARGUMENT;
    }
    if (klen > FS3_MAX_KEY_LEN) {
        lv_free(dec);
        fs3_resp_error(r, FS3_KEY_TOO_LONG, NULL, NULL, 0);
        return FS3_KEY_TOO_LONG;
    }
    memmove(dec, key, klen);
    dec[klen] = '\0';
    cs->key = dec;
    cs->key_len = klen;
    return FS3_OK;
}

void fs3_copy_source_free(fs3_copy_source *cs)
{
    lv_free(cs->key);
    cs->key = NULL;
}

fs3_code fs3_ops_open_copy_source(fs3_req *r, const fs3_copy_source *cs, fs3_object **obj,
                                  fs3_body *body)
{
    *obj = NULL;
    body->fd = -1;
    body->data = NULL;
    fs3_code rc = fs3_store_get(r->store, cs->bucket, cs->key, cs->key_len, obj, body, r->err);
    if (rc != FS3_OK) {
        if (rc == FS3_NO_SUCH_KEY || rc == FS3_NO_SUCH_BUCKET) {
            /* name the source, not the destination the route holds */
            fs3_xml_field f[2] = {{"BucketName", cs->bucket, strlen(cs->bucket)},
                                  {"Key", cs->key, cs->key_len}};
            const char *saved = r->route.key;
            r->route.key = NULL;
            char saved_bucket[sizeof r->route.bucket];
            memcpy(saved_bucket, r->route.bucket, sizeof saved_bucket);
            r->route.bucket[0] = '\0';
            fs3_resp_error(r, rc, NULL, f, rc == FS3_NO_SUCH_KEY ? 2 : 1);
            r->route.key = saved;
            memcpy(r->route.bucket, saved_bucket, sizeof saved_bucket);
        } else {
            fs3_resp_error(r, rc, NULL, NULL, 0);
        }
        return rc;
    }
    fs3_read_cond cond = {
        fs3_req_header(r, "x-amz-copy-source-if-match"),
        fs3_req_header(r, "x-amz-copy-source-if-none-match"),
        fs3_req_header(r, "x-amz-copy-source-if-modified-since"),
        fs3_req_header(r, "x-amz-copy-source-if-unmodified-since"),
    };
    rc = fs3_check_read_cond(&cond, (*obj)->etag, (*obj)->mtime_ms);
    if (rc != FS3_OK) {
        /* a copy answers 412 where a GET would answer 304 */
        const char *which = rc == FS3_PRECONDITION_FAILED
                                ? (cond.if_match ? "x-amz-copy-source-If-Match"
                                                 : "x-amz-copy-source-If-Unmodified-Since")
                                : (cond.if_none_match ? "x-amz-copy-source-If-None-Match"
                                                      : "x-amz-copy-source-If-Modified-Since");
        fs3_xml_field f = {"Condition", which, strlen(which)};
        snprintf(r->err, sizeof r->err, "copy source %s/%.*s: %s failed", cs->bucket,
                 (int)(cs->key_len > 200 ? 200 : cs->key_len), cs->key, which);
        fs3_resp_error(r, FS3_PRECONDITION_FAILED, NULL, &f, 1);
        if (body->fd >= 0)
            close(body->fd);
        body->fd = -1;
        fs3_object_unref(*obj);
        *obj = NULL;
        return FS3_PRECONDITION_FAILED;
    }
    return FS3_OK;
}

/* The source is too large for one copy (S3 copies at most 5 GiB in one request). */
static int too_large(fs3_req *r, uint64_t size)
{
    if (size <= r->cfg->max_object_size)
        return 0;
    char msg[160];
    snprintf(msg, sizeof msg,
             "The specified copy source is larger than the maximum allowable size for a copy "
             "source: %llu",
             (unsigned long long)r->cfg->max_object_size);
    fs3_resp_error(r, FS3_INVALID_REQUEST, msg, NULL, 0);
    return 1;
}

static void copy_result(fs3_req *r, const char *element, const fs3_object *o)
{
    char when[40];
    fs3_format_iso8601(o->mtime_ms, when, sizeof when);
    lv_buf b;
    lv_buf_init(&b);
    fs3_xml_decl(&b);
    lv_buf_printf(&b, "<%s xmlns=\"" FS3_XMLNS "\">", element);
    fs3_xml_elems(&b, "LastModified", when);
    lv_buf_printf(&b, "<ETag>&quot;%s&quot;</ETag>", o->etag);
    lv_buf_printf(&b, "</%s>", element);
    fs3_resp_xml(r, 200, &b);
    lv_buf_free(&b);
}

/* ---- CopyObject ------------------------------------------------------------------------------ */

/* x-amz-metadata-directive: 0 COPY (the default), 1 REPLACE, -1 anything else. */
static int directive(fs3_req *r)
{
    const char *d = fs3_req_header(r, "x-amz-metadata-directive");
    if (!d || strcasecmp(d, "COPY") == 0)
        return 0;
    return strcasecmp(d, "REPLACE") == 0 ? 1 : -1;
}

fs3_code fs3_begin_copy_object(fs3_req *r)
{
    fs3_copy_source cs;
    fs3_code rc = fs3_ops_copy_source(r, &cs);
    if (rc != FS3_OK)
        return rc;
    fs3_copy_source_free(&cs);
    if (directive(r) < 0) {
        fs3_resp_error(r, FS3_INVALID_ARGUMENT, "Unknown metadata directive.", NULL, 0);
        return FS3_INVALID_ARGUMENT;
    }
    if ((rc = fs3_ops_check_write_cond(r)) != FS3_OK ||
        (rc = fs3_ops_collect_headers(r, 0)) != FS3_OK)
        return rc;
    if ((rc = fs3_store_head_bucket(r->store, r->route.bucket, r->err)) != FS3_OK)
        return rc;
    r->body_kind = FS3_BODY_DISCARD;
    return FS3_OK;
}

/* The headers of the copy: the source's (COPY) or the request's (REPLACE); a storage class the
 * request names wins either way; the source's checksums go along when they cover its bytes
 * (single-part objects). Into a new array of n entries pointing at strings of src or r. */
static fs3_kv *copy_headers(fs3_req *r, const fs3_object *src, int replace, size_t *n)
{
    fs3_kv *h = lv_calloc(src->n_headers + r->n_store_headers + 1, sizeof *h);
    if (!h)
        return NULL;
    *n = 0;
    const char *sc = NULL;
    for (size_t i = 0; i < r->n_store_headers; i++)
        if (strcmp(r->store_headers[i].name, "x-amz-storage-class") == 0)
            sc = r->store_headers[i].value;
    int multipart = strchr(src->etag, '-') != NULL;
    for (size_t i = 0; i < src->n_headers; i++) {
        const char *name = src->headers[i].name;
        int ck = fs3_ck_from_header(name) != FS3_CK_NONE;
        if (ck ? multipart : (replace || (sc && strcmp(name, "x-amz-storage-class") == 0)))
            continue;
        h[(*n)++] = src->headers[i];
    }
    for (size_t i = 0; i < r->n_store_headers; i++) {
        int is_sc = strcmp(r->store_headers[i].name, "x-amz-storage-class") == 0;
        if (replace || is_sc)
            h[(*n)++] = r->store_headers[i];
    }
    return h;
}

void fs3_apply_copy_object(fs3_req *r)
{
    fs3_copy_source cs = {0};
    fs3_object *src = NULL, *dst = NULL;
    fs3_body body = {.fd = -1};
    fs3_kv *headers = NULL;
    fs3_put *p = NULL;
    int replace = directive(r) == 1;
    if (fs3_ops_copy_source(r, &cs) != FS3_OK ||
        fs3_ops_open_copy_source(r, &cs, &src, &body) != FS3_OK)
        goto done;
    if (strcmp(cs.bucket, r->route.bucket) == 0 && cs.key_len == r->route.key_len &&
        memcmp(cs.key, r->route.key, cs.key_len) == 0 && !replace &&
        !fs3_req_header(r, "x-amz-storage-class")) {
        fs3_resp_error(r, FS3_INVALID_REQUEST,
                       "This copy request is illegal because it is trying to copy an object to "
                       "itself without changing the object's metadata, storage class, website "
                       "redirect location or encryption attributes.",
                       NULL, 0);
        goto done;
    }
    if (too_large(r, src->size))
        goto done;
    size_t nh = 0;
    if (!(headers = copy_headers(r, src, replace, &nh))) {
        fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
        goto done;
    }
    fs3_code rc =
        fs3_store_put_begin(r->store, r->route.bucket, r->route.key, r->route.key_len, &p, r->err);
    /* a multipart source gets a plain MD5 ETag, as S3 gives a copy; a single-part one keeps its */
    int rehash = strchr(src->etag, '-') != NULL;
    if (rc == FS3_OK && rehash)
        rc = fs3_put_hash(p, 1, FS3_CK_NONE, r->err);
    fs3_write_cond cond = {fs3_req_header(r, "If-Match"), fs3_req_header(r, "If-None-Match")};
    if (rc == FS3_OK && (cond.if_match || cond.if_none_match))
        fs3_put_conditional(p);
    if (rc == FS3_OK)
        rc = fs3_put_copy(p, &body, 0, src->size, r->err);
    char etag[FS3_ETAG_MAX];
    snprintf(etag, sizeof etag, "%s", src->etag);
    if (rc == FS3_OK && rehash) {
        uint8_t md[16];
        if (fs3_put_md5(p, md) != 0)
            rc = FS3_INTERNAL_ERROR;
        else
            lv_hex_encode(md, 16, etag);
    }
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        goto done;
    }
    fs3_put *pp = p;
    p = NULL; /* the commit consumes it */
    rc = fs3_store_put_commit(r->store, pp, etag, headers, nh, &cond, r->start_ms, &dst, r->err);
    if (rc != FS3_OK) {
        fs3_ops_write_error(r, rc);
        goto done;
    }
    copy_result(r, "CopyObjectResult", dst);
done:
    fs3_put_abort(p);
    if (body.fd >= 0)
        close(body.fd);
    fs3_object_unref(src);
    fs3_object_unref(dst);
    lv_free(headers);
    fs3_copy_source_free(&cs);
}

/* ---- UploadPartCopy -------------------------------------------------------------------------- */

/* Parses x-amz-copy-source-range "bytes=first-last"; 0 on success. */
static int parse_copy_range(const char *v, uint64_t *first, uint64_t *last)
{
    if (strncmp(v, "bytes=", 6) != 0)
        return -1;
    const char *dash = strchr(v + 6, '-');
    if (!dash || dash == v + 6 || dash - (v + 6) > 20 || strlen(dash + 1) > 20)
        return -1;
    char a[24], b[24];
    memcpy(a, v + 6, (size_t)(dash - (v + 6)));
    a[dash - (v + 6)] = '\0';
    snprintf(b, sizeof b, "%s", dash + 1);
    if (fs3_ops_parse_u64(a, first) != 0 || fs3_ops_parse_u64(b, last) != 0 || *first > *last)
        return -1;
    return 0;
}

static const char range_form[] =
    "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last "
    "are the zero-based offsets of the first and last bytes to copy";

fs3_code fs3_begin_upload_part_copy(fs3_req *r)
{
    int number;
    fs3_code rc = fs3_ops_part_number(r, &number);
    if (rc != FS3_OK)
        return rc;
    fs3_copy_source cs;
    if ((rc = fs3_ops_copy_source(r, &cs)) != FS3_OK)
        return rc;
    fs3_copy_source_free(&cs);
    const char *range = fs3_req_header(r, "x-amz-copy-source-range");
    uint64_t a, b;
    if (range && parse_copy_range(range, &a, &b) != 0) {
        fs3_resp_error(r, FS3_INVALID_ARGUMENT, range_form, NULL, 0);
        return FS3_INVALID_ARGUMENT;
    }
    r->body_kind = FS3_BODY_DISCARD;
    return FS3_OK;
}

void fs3_apply_upload_part_copy(fs3_req *r)
{
    fs3_copy_source cs = {0};
    fs3_object *src = NULL, *part = NULL;
    fs3_body body = {.fd = -1};
    fs3_put *p = NULL;
    int number = 0;
    fs3_code rc;
    const char *id = fs3_query_get(&r->q, "uploadId", NULL);
    if (fs3_ops_part_number(r, &number) != FS3_OK || fs3_ops_copy_source(r, &cs) != FS3_OK)
        goto done;
    /* the upload first: a missing one is NoSuchUpload whatever the source */
    rc = fs3_store_part_begin(r->store, r->route.bucket, r->route.key, r->route.key_len, id, number,
                              &p, r->err);
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        goto done;
    }
    if (fs3_ops_open_copy_source(r, &cs, &src, &body) != FS3_OK)
        goto done;
    uint64_t first = 0, last = src->size ? src->size - 1 : 0, len = src->size;
    const char *range = fs3_req_header(r, "x-amz-copy-source-range");
    if (range) {
        parse_copy_range(range, &first, &last); /* checked at begin */
        if (last >= src->size) {
            char msg[128];
            snprintf(msg, sizeof msg,
                     "Range specified is not valid for source object of size: %llu",
                     (unsigned long long)src->size);
            fs3_resp_error(r, FS3_INVALID_ARGUMENT, msg, NULL, 0);
            goto done;
        }
        len = last - first + 1;
    } else if (too_large(r, src->size)) {
        goto done;
    }
    if ((rc = fs3_put_hash(p, 1, FS3_CK_NONE, r->err)) != FS3_OK ||
        (rc = fs3_put_copy(p, &body, first, len, r->err)) != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        goto done;
    }
    uint8_t md[16];
    char etag[FS3_ETAG_MAX];
    if (fs3_put_md5(p, md) != 0) {
        fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
        goto done;
    }
    lv_hex_encode(md, 16, etag);
    fs3_put *pp = p;
    p = NULL;
    rc = fs3_store_part_commit(r->store, pp, etag, NULL, 0, r->start_ms, &part, r->err);
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        goto done;
    }
    copy_result(r, "CopyPartResult", part);
done:
    fs3_put_abort(p);
    if (body.fd >= 0)
        close(body.fd);
    fs3_object_unref(src);
    fs3_object_unref(part);
    fs3_copy_source_free(&cs);
}
