/*
 * ops_multipart: the multipart upload: CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
 * AbortMultipartUpload, ListParts, ListMultipartUploads (UploadPartCopy is in ops_copy.c).
 *
 * The store keeps uploads and parts (store.h); here are S3's request and response shapes:
 * UploadPart streams its body into a part exactly as PutObject streams an object (Content-MD5 and
 * x-amz-checksum-* checked, aws-chunked bodies decoded by the server), and
 * CompleteMultipartUpload answers 200 with its result document once the object is in place.
 *
 * Threads: one request, on its connection's thread.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "alloc.h"
#include "hex.h"
#include "httpsem.h"
#include "ops.h"

/* 10000 parts of ~120 bytes each, with room to spare */
#define MAX_COMPLETE_BODY (4 * 1024 * 1024)

static const char *upload_id(fs3_req *r)
{
    const char *id = fs3_query_get(&r->q, "uploadId", NULL);
    return id ? id : "";
}

/* NoSuchUpload with the id, as S3 words it. */
static void no_such_upload(fs3_req *r)
{
    const char *id = upload_id(r);
    fs3_xml_field f = {"UploadId", id, strlen(id)};
    fs3_resp_error(r, FS3_NO_SUCH_UPLOAD, NULL, &f, 1);
}

static void store_error(fs3_req *r, fs3_code rc)
{
    if (rc == FS3_NO_SUCH_UPLOAD)
        no_such_upload(r);
    else
        fs3_resp_error(r, rc, NULL, NULL, 0);
}

fs3_code fs3_ops_part_number(fs3_req *r, int *number)
{
    const char *pn = fs3_query_get(&r->q, "partNumber", NULL);
    uint64_t v = 0;
    if (!pn || fs3_ops_parse_u64(pn, &v) != 0 || v < 1 || v > FS3_MAX_PART_NUMBER) {
        fs3_xml_field f[2] = {{"ArgumentName", "partNumber", 10},
                              {"ArgumentValue", pn ? pn : "", pn ? strlen(pn) : 0}};
        fs3_resp_error(r, FS3_INVALID_ARGUMENT,
                       "Part number must be an integer between 1 and 10000, inclusive", f, 2);
        return FS3_INVALID_ARGUMENT;
    }
    *number = (int)v;
    return FS3_OK;
}

/* ---- CreateMultipartUpload ------------------------------------------------------------------- */

fs3_code fs3_begin_create_multipart(fs3_req *r)
{
    fs3_code rc = fs3_ops_collect_headers(r, 0);
    if (rc != FS3_OK)
        return rc;
    r->body_kind = FS3_BODY_DISCARD;
    return FS3_OK;
}

void fs3_apply_create_multipart(fs3_req *r)
{
    char id[FS3_UPLOAD_ID_LEN + 1];
    fs3_code rc =
        fs3_store_create_upload(r->store, r->route.bucket, r->route.key, r->route.key_len,
                                r->store_headers, r->n_store_headers, r->start_ms, id, r->err);
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        return;
    }
    lv_buf b;
    lv_buf_init(&b);
    fs3_xml_decl(&b);
    lv_buf_puts(&b, "<InitiateMultipartUploadResult xmlns=\"" FS3_XMLNS "\">");
    fs3_xml_elems(&b, "Bucket", r->route.bucket);
    fs3_xml_elem(&b, "Key", r->route.key, r->route.key_len);
    fs3_xml_elems(&b, "UploadId", id);
    lv_buf_puts(&b, "</InitiateMultipartUploadResult>");
    fs3_resp_xml(r, 200, &b);
    lv_buf_free(&b);
    const char *alg = fs3_req_header(r, "x-amz-checksum-algorithm");
    if (alg && fs3_ck_from_name(alg) != FS3_CK_NONE)
        fs3_resp_header(r, "x-amz-checksum-algorithm", alg);
}

/* ---- UploadPart ------------------------------------------------------------------------------ */

fs3_code fs3_begin_upload_part(fs3_req *r)
{
    int number;
    fs3_code rc = fs3_ops_part_number(r, &number);
    if (rc != FS3_OK)
        return rc;
    const char *cl = r->chunked ? NULL : fs3_req_header(r, "Content-Length");
    uint64_t len = r->chunked ? (uint64_t)r->decoded_length : 0;
    if (cl && fs3_ops_parse_u64(cl, &len) != 0) {
        fs3_resp_error(r, FS3_INVALID_ARGUMENT, "Content-Length is not a number.", NULL, 0);
        return FS3_INVALID_ARGUMENT;
    }
    if (!cl && !r->chunked && !fs3_req_header(r, "Transfer-Encoding"))
        return FS3_MISSING_CONTENT_LENGTH;
    if (len > r->cfg->max_object_size) {
        char proposed[32], max[32];
        snprintf(proposed, sizeof proposed, "%llu", (unsigned long long)len);
        snprintf(max, sizeof max, "%llu", (unsigned long long)r->cfg->max_object_size);
        fs3_xml_field f[2] = {{"ProposedSize", proposed, strlen(proposed)},
                              {"MaxSizeAllowed", max, strlen(max)}};
        fs3_resp_error(r, FS3_ENTITY_TOO_LARGE, NULL, f, 2);
        return FS3_ENTITY_TOO_LARGE;
    }
    if ((rc = fs3_ops_content_md5(r)) != FS3_OK)
        return rc;
    fs3_ck_alg alg;
    const char *ck_value;
    if ((rc = fs3_ops_request_checksum(r, &alg, &ck_value)) != FS3_OK)
        return rc;
    /* a part keeps only its checksum (the object's headers came with CreateMultipartUpload) */
    if ((rc = fs3_ops_collect_headers(r, 1)) != FS3_OK)
        return rc;
    size_t k = 0;
    for (size_t i = 0; i < r->n_store_headers; i++) {
        if (fs3_ck_from_header(r->store_headers[i].name) != FS3_CK_NONE) {
            r->store_headers[k++] = r->store_headers[i];
        } else {
            lv_free(r->store_headers[i].name);
            lv_free(r->store_headers[i].value);
        }
    }
    r->n_store_headers = k;
    r->md5 = EVP_MD_CTX_new();
    if (!r->md5 || !EVP_DigestInit_ex(r->md5, EVP_md5(), NULL))
        return FS3_INTERNAL_ERROR;
    rc = fs3_store_part_begin(r->store, r->route.bucket, r->route.key, r->route.key_len,
                              upload_id(r), number, &r->put, r->err);
    if (rc == FS3_NO_SUCH_UPLOAD) {
        no_such_upload(r);
        return rc;
    }
    if (rc != FS3_OK || (rc = fs3_put_hash(r->put, 0, alg, r->err)) != FS3_OK)
        return rc;
    r->body_kind = FS3_BODY_PUT;
    return FS3_OK;
}

void fs3_apply_upload_part(fs3_req *r)
{
    char etag[FS3_ETAG_MAX];
    if (fs3_ops_finish_body(r, etag) != FS3_OK)
        return;
    fs3_put *p = r->put;
    r->put = NULL; /* the commit consumes it */
    fs3_code rc = fs3_store_part_commit(r->store, p, etag, r->store_headers, r->n_store_headers,
                                        r->start_ms, NULL, r->err);
    if (rc != FS3_OK) {
        store_error(r, rc);
        return;
    }
    char quoted[FS3_ETAG_MAX + 2];
    snprintf(quoted, sizeof quoted, "\"%s\"", etag);
    r->resp.status = 200;
    fs3_resp_header(r, "ETag", quoted);
    for (size_t i = 0; i < r->n_store_headers; i++)
        fs3_resp_header(r, r->store_headers[i].name, r->store_headers[i].value);
}

/* ---- CompleteMultipartUpload ----------------------------------------------------------------- */

fs3_code fs3_begin_complete_multipart(fs3_req *r)
{
    fs3_code rc = fs3_ops_content_md5(r);
    if (rc != FS3_OK || (rc = fs3_ops_check_write_cond(r)) != FS3_OK)
        return rc;
    r->body_kind = FS3_BODY_BUFFER;
    r->body_limit = MAX_COMPLETE_BODY;
    return FS3_OK;
}

void fs3_apply_complete_multipart(fs3_req *r)
{
    fs3_complete_list list = {0};
    fs3_part_ref *refs = NULL;
    fs3_object *o = NULL;
    if (fs3_ops_check_body_digests(r, 0) != FS3_OK)
        return;
    fs3_code rc =
        fs3_xml_parse_complete(r->body.data ? r->body.data : "", r->body.len, &list, r->err);
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        return;
    }
    refs = lv_calloc(list.n, sizeof *refs);
    if (!refs) {
        fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
        goto done;
    }
    for (size_t i = 0; i < list.n; i++) {
        refs[i].number = list.parts[i].number;
        refs[i].etag = list.parts[i].etag;
    }
    fs3_write_cond cond = {fs3_req_header(r, "If-Match"), fs3_req_header(r, "If-None-Match")};
    fs3_complete_fail fail;
    rc = fs3_store_complete_upload(r->store, r->route.bucket, r->route.key, r->route.key_len,
                                   upload_id(r), refs, list.n, &cond, r->start_ms, &o, &fail,
                                   r->err);
    if (rc == FS3_INVALID_PART || rc == FS3_ENTITY_TOO_SMALL || rc == FS3_INVALID_PART_ORDER) {
        const char *id = upload_id(r);
        char num[24], size[24], min[24], etag[FS3_ETAG_MAX + 2];
        const fs3_complete_part *pt = &list.parts[fail.index];
        snprintf(num, sizeof num, "%ld", pt->number);
        snprintf(etag, sizeof etag, "\"%s\"", pt->etag);
        snprintf(size, sizeof size, "%llu", (unsigned long long)fail.size);
        snprintf(min, sizeof min, "%u", FS3_MIN_PART_SIZE);
        fs3_xml_field f[4];
        size_t nf = 0;
        if (rc == FS3_ENTITY_TOO_SMALL) {
            f[nf++] = (fs3_xml_field){"ProposedSize", size, strlen(size)};
            f[nf++] = (fs3_xml_field){"MinSizeAllowed", min, strlen(min)};
        } else {
            f[nf++] = (fs3_xml_field){"UploadId", id, strlen(id)};
        }
        f[nf++] = (fs3_xml_field){"PartNumber", num, strlen(num)};
        f[nf++] = (fs3_xml_field){"ETag", etag, strlen(etag)};
        fs3_resp_error(r, rc, NULL, f, nf);
        goto done;
    }
    if (rc == FS3_PRECONDITION_FAILED || rc == FS3_NO_SUCH_KEY ||
        rc == FS3_CONDITIONAL_REQUEST_CONFLICT) {
        fs3_ops_write_error(r, rc);
        goto done;
    }
    if (rc != FS3_OK) {
        store_error(r, rc);
        goto done;
    }
    lv_buf b;
    lv_buf_init(&b);
    fs3_xml_decl(&b);
    lv_buf_puts(&b, "<CompleteMultipartUploadResult xmlns=\"" FS3_XMLNS "\">");
    const char *host = fs3_req_header(r, "Host");
    lv_buf_puts(&b, "<Location>http://");
    fs3_xml_text(&b, host ? host : "localhost", strlen(host ? host : "localhost"));
    if (!r->route.virtual_host) {
        lv_buf_putc(&b, '/');
        lv_buf_puts(&b, r->route.bucket);
    }
    lv_buf_putc(&b, '/');
    lv_buf enc;
    lv_buf_init(&enc);
    lv_buf_uri_encode(&enc, r->route.key, r->route.key_len, 1);
    fs3_xml_text(&b, enc.data ? enc.data : "", enc.len);
    if (enc.oom)
        b.oom = 1;
    lv_buf_free(&enc);
    lv_buf_puts(&b, "</Location>");
    fs3_xml_elems(&b, "Bucket", r->route.bucket);
    fs3_xml_elem(&b, "Key", r->route.key, r->route.key_len);
    lv_buf_printf(&b, "<ETag>&quot;%s&quot;</ETag>", o->etag);
    lv_buf_puts(&b, "</CompleteMultipartUploadResult>");
    fs3_resp_xml(r, 200, &b);
    lv_buf_free(&b);
done:
    fs3_object_unref(o);
    lv_free(refs);
    fs3_complete_list_free(&list);
}

/* ---- AbortMultipartUpload -------------------------------------------------------------------- */

void fs3_apply_abort_multipart(fs3_req *r)
{
    fs3_code rc = fs3_store_abort_upload(r->store, r->route.bucket, r->route.key, r->route.key_len,
                                         upload_id(r), r->err);
    if (rc != FS3_OK) {
        store_error(r, rc);
        return;
    }
    r->resp.status = 204;
}

/* ---- listings -------------------------------------------------------------------------------- */

/* A max-parts / max-uploads value: default 1000, at most 1000; -1 (answered) if malformed. */
static long max_param(fs3_req *r, const char *name)
{
    const char *v = fs3_query_get(&r->q, name, NULL);
    uint64_t n = 1000;
    if (v && fs3_ops_parse_u64(v, &n) != 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "Provided %s not an integer or within integer range", name);
        fs3_xml_field f[2] = {{"ArgumentName", name, strlen(name)},
                              {"ArgumentValue", v, strlen(v)}};
        fs3_resp_error(r, FS3_INVALID_ARGUMENT, msg, f, 2);
        return -1;
    }
    return n > 1000 ? 1000 : (long)n;
}

/* encoding-type: 0 none, 1 url, -1 (answered) another. */
static int encoding(fs3_req *r)
{
    const char *enc = fs3_query_get(&r->q, "encoding-type", NULL);
    if (!enc)
        return 0;
    if (strcmp(enc, "url") != 0) {
        fs3_resp_error(r, FS3_INVALID_ARGUMENT, "Invalid Encoding Method specified in Request",
                       NULL, 0);
        return -1;
    }
    return 1;
}

void fs3_apply_list_parts(fs3_req *r)
{
    long max = max_param(r, "max-parts");
    int url = encoding(r);
    if (max < 0 || url < 0)
        return;
    const char *m = fs3_query_get(&r->q, "part-number-marker", NULL);
    uint64_t after = 0;
    if (m && *m && (fs3_ops_parse_u64(m, &after) != 0 || after > FS3_MAX_PART_NUMBER)) {
        fs3_xml_field f[2] = {{"ArgumentName", "part-number-marker", 18},
                              {"ArgumentValue", m, strlen(m)}};
        fs3_resp_error(r, FS3_INVALID_ARGUMENT,
                       "Provided part-number-marker not an integer or within integer range", f, 2);
        return;
    }
    fs3_parts_page pg;
    fs3_code rc = fs3_store_list_parts(r->store, r->route.bucket, r->route.key, r->route.key_len,
                                       upload_id(r), (int)after, (size_t)max, &pg, r->err);
    if (rc != FS3_OK) {
        store_error(r, rc);
        return;
    }
    lv_buf b;
    lv_buf_init(&b);
    fs3_xml_decl(&b);
    lv_buf_puts(&b, "<ListPartsResult xmlns=\"" FS3_XMLNS "\">");
    fs3_xml_elems(&b, "Bucket", r->route.bucket);
    fs3_ops_list_elem(&b, "Key", r->route.key, r->route.key_len, url);
    fs3_xml_elems(&b, "UploadId", upload_id(r));
    if (url)
        lv_buf_puts(&b, "<EncodingType>url</EncodingType>");
    fs3_ops_owner_xml(&b, "Initiator");
    fs3_ops_owner_xml(&b, "Owner");
    fs3_xml_elems(&b, "StorageClass", pg.storage_class);
    lv_buf_printf(&b, "<PartNumberMarker>%llu</PartNumberMarker>", (unsigned long long)after);
    if (pg.n)
        lv_buf_printf(&b, "<NextPartNumberMarker>%d</NextPartNumberMarker>",
                      pg.parts[pg.n - 1].number);
    lv_buf_printf(&b, "<MaxParts>%ld</MaxParts><IsTruncated>%s</IsTruncated>", max,
                  pg.truncated ? "true" : "false");
    for (size_t i = 0; i < pg.n; i++) {
        const fs3_part_entry *e = &pg.parts[i];
        char when[40];
        fs3_format_iso8601(e->mtime_ms, when, sizeof when);
        lv_buf_printf(&b, "<Part><PartNumber>%d</PartNumber>", e->number);
        fs3_xml_elems(&b, "LastModified", when);
        lv_buf_printf(&b, "<ETag>&quot;%s&quot;</ETag><Size>%llu</Size>", e->etag,
                      (unsigned long long)e->size);
        fs3_ck_alg alg = e->ck_header[0] ? fs3_ck_from_header(e->ck_header) : FS3_CK_NONE;
        if (alg != FS3_CK_NONE)
            fs3_xml_elems(&b, fs3_ck_element(alg), e->ck_value);
        lv_buf_puts(&b, "</Part>");
    }
    lv_buf_puts(&b, "</ListPartsResult>");
    fs3_parts_page_free(&pg);
    fs3_resp_xml(r, 200, &b);
    lv_buf_free(&b);
}

void fs3_apply_list_uploads(fs3_req *r)
{
    long max = max_param(r, "max-uploads");
    int url = encoding(r);
    if (max < 0 || url < 0)
        return;
    fs3_uploads_params p = {0};
    const char *prefix = fs3_query_get(&r->q, "prefix", &p.prefix_len);
    const char *delim = fs3_query_get(&r->q, "delimiter", &p.delimiter_len);
    const char *km = fs3_query_get(&r->q, "key-marker", &p.key_marker_len);
    const char *im = fs3_query_get(&r->q, "upload-id-marker", NULL);
    p.prefix = prefix ? prefix : "";
    p.delimiter = delim && p.delimiter_len ? delim : NULL;
    p.key_marker = km;
    p.id_marker = km && p.key_marker_len ? im : NULL;
    p.max = (size_t)max;
    fs3_uploads_page pg;
    fs3_code rc = fs3_store_list_uploads(r->store, r->route.bucket, &p, &pg, r->err);
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        return;
    }
    lv_buf b;
    lv_buf_init(&b);
    fs3_xml_decl(&b);
    lv_buf_puts(&b, "<ListMultipartUploadsResult xmlns=\"" FS3_XMLNS "\">");
    fs3_xml_elems(&b, "Bucket", r->route.bucket);
    fs3_ops_list_elem(&b, "KeyMarker", km ? km : "", km ? p.key_marker_len : 0, url);
    fs3_xml_elems(&b, "UploadIdMarker", p.id_marker ? p.id_marker : "");
    if (pg.truncated && pg.n) {
        const fs3_upload_entry *last = &pg.entries[pg.n - 1];
        fs3_ops_list_elem(&b, "NextKeyMarker", last->key, last->key_len, url);
        fs3_xml_elems(&b, "NextUploadIdMarker", last->is_prefix ? "" : last->id);
    }
    if (p.delimiter)
        fs3_ops_list_elem(&b, "Delimiter", p.delimiter, p.delimiter_len, url);
    fs3_ops_list_elem(&b, "Prefix", p.prefix, p.prefix_len, url);
    if (url)
        lv_buf_puts(&b, "<EncodingType>url</EncodingType>");
    lv_buf_printf(&b, "<MaxUploads>%ld</MaxUploads><IsTruncated>%s</IsTruncated>", max,
                  pg.truncated ? "true" : "false");
    for (size_t i = 0; i < pg.n; i++) {
        const fs3_upload_entry *e = &pg.entries[i];
        if (e->is_prefix)
            continue;
        char when[40];
        fs3_format_iso8601(e->initiated_ms, when, sizeof when);
        lv_buf_puts(&b, "<Upload>");
        fs3_ops_list_elem(&b, "Key", e->key, e->key_len, url);
        fs3_xml_elems(&b, "UploadId", e->id);
        fs3_ops_owner_xml(&b, "Initiator");
        fs3_ops_owner_xml(&b, "Owner");
        fs3_xml_elems(&b, "StorageClass", e->storage_class);
        fs3_xml_elems(&b, "Initiated", when);
        lv_buf_puts(&b, "</Upload>");
    }
    for (size_t i = 0; i < pg.n; i++) {
        const fs3_upload_entry *e = &pg.entries[i];
        if (!e->is_prefix)
            continue;
        lv_buf_puts(&b, "<CommonPrefixes>");
        fs3_ops_list_elem(&b, "Prefix", e->key, e->key_len, url);
        lv_buf_puts(&b, "</CommonPrefixes>");
    }
    lv_buf_puts(&b, "</ListMultipartUploadsResult>");
    fs3_uploads_page_free(&pg);
    fs3_resp_xml(r, 200, &b);
    lv_buf_free(&b);
}
