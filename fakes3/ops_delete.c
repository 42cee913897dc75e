/*
 * ops_delete: DeleteObjects (POST /bucket?delete): up to 1000 keys in an XML body that must carry
 * Content-MD5 or an x-amz-checksum-* header (both checked), answered per key with <Deleted> or
 * <Error> (only the errors in Quiet mode). A key that does not exist counts as deleted, as S3
 * counts it. An <ETag> in an <Object> makes that delete conditional (PreconditionFailed per key).
 *
 * Threads: one request, on its connection's thread; each key is one store delete.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "ops.h"

/* The body: 1000 keys of up to 1024 bytes, room for escaping them; more is MalformedXML. */
#define MAX_DELETE_BODY (8 * 1024 * 1024)

fs3_code fs3_begin_delete_objects(fs3_req *r)
{
    fs3_code rc = fs3_ops_content_md5(r);
    if (rc != FS3_OK)
        return rc;
    fs3_ck_alg alg;
    const char *value;
    if ((rc = fs3_ops_request_checksum(r, &alg, &value)) != FS3_OK)
        return rc;
    if (!r->has_content_md5 && !value) {
        fs3_resp_error(r, FS3_INVALID_REQUEST,
                       "Missing required header for this request: Content-MD5", NULL, 0);
        return FS3_INVALID_REQUEST;
    }
    if ((rc = fs3_store_head_bucket(r->store, r->route.bucket, r->err)) != FS3_OK)
        return rc;
    r->body_kind = FS3_BODY_BUFFER;
    r->body_limit = MAX_DELETE_BODY;
    return FS3_OK;
}

void fs3_apply_delete_objects(fs3_req *r)
{
    if (fs3_ops_check_body_digests(r, 1) != FS3_OK)
        return;
    fs3_delete_list d;
    fs3_code rc = fs3_xml_parse_delete(r->body.data ? r->body.data : "", r->body.len, &d, r->err);
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        return;
    }
    fs3_code *codes = lv_calloc(d.n, sizeof *codes);
    if (!codes) {
        fs3_delete_list_free(&d);
        fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
        return;
    }
    for (size_t i = 0; i < d.n; i++) {
        const fs3_delete_item *it = &d.items[i];
        char err[LV_ERRLEN];
        if (it->key_len > FS3_MAX_KEY_LEN)
            codes[i] = FS3_KEY_TOO_LONG;
        else
            codes[i] = fs3_store_delete_if(r->store, r->route.bucket, it->key, it->key_len,
                                           it->etag, NULL, err);
        if (codes[i] == FS3_NO_SUCH_BUCKET) { /* the bucket went away meanwhile */
            lv_free(codes);
            fs3_delete_list_free(&d);
            fs3_resp_error(r, FS3_NO_SUCH_BUCKET, NULL, NULL, 0);
            return;
        }
        if (codes[i] != FS3_OK && !r->err[0])
            snprintf(r->err, sizeof r->err, "%s", err); /* the first failure, for the log */
    }
    lv_buf b;
    lv_buf_init(&b);
    fs3_xml_decl(&b);
    lv_buf_puts(&b, "<DeleteResult xmlns=\"" FS3_XMLNS "\">");
    for (size_t i = 0; i < d.n; i++) {
        const fs3_delete_item *it = &d.items[i];
        if (codes[i] == FS3_OK) {
            if (d.quiet)
                continue;
            lv_buf_puts(&b, "<Deleted>");
            fs3_xml_elem(&b, "Key", it->key, it->key_len);
            lv_buf_puts(&b, "</Deleted>");
        } else {
            lv_buf_puts(&b, "<Error>");
            fs3_xml_elem(&b, "Key", it->key, it->key_len);
            fs3_xml_elems(&b, "Code", fs3_code_name(codes[i]));
            fs3_xml_elems(&b, "Message", fs3_code_message(codes[i]));
            lv_buf_puts(&b, "</Error>");
        }
    }
    lv_buf_puts(&b, "</DeleteResult>");
    lv_free(codes);
    fs3_delete_list_free(&d);
    fs3_resp_xml(r, 200, &b);
    lv_buf_free(&b);
}
