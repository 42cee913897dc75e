/*
 * s3_xml: the S3 XML documents the client reads (error documents, ListObjectsV2 pages,
 * InitiateMultipartUpload, CompleteMultipartUpload, DeleteObjects results), with expat.
 *
 * One small walker serves every document: expat streams the elements, the walker keeps the path
 * of element names and the text of the current element, and on each end tag calls a per-document
 * handler with the path and the text (whitespace kept: keys may end in a space). A DOCTYPE stops
 * the parse (no entity expansion from a server). Threads: no state outside the call.
 */
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "s3_private.h"

#define XW_DEPTH 8

typedef struct xwalk xwalk;
/* Called at each end tag: path[0..depth) are the open elements, the last being the one ending. */
typedef void (*xw_end_fn)(xwalk *w, const char *const *path, int depth, const char *text,
                          size_t len);

struct xwalk {
    XML_Parser p;
    char names[XW_DEPTH][64];
    const char *path[XW_DEPTH];
    int depth; /* may exceed XW_DEPTH: deeper elements are ignored */
    lv_buf text;
    xw_end_fn end;
    void *ctx;
    int stop; /* the handler asked to stop */
    int oom;  /* an allocation failed: stop, LV_ENOMEM */
};

static const char *local_name(const char *name)
{
    const char *sep = strrchr(name, ' '); /* no namespace processing: this never splits */
    const char *colon = strrchr(name, ':');
    if (sep)
        name = sep + 1;
    else if (colon)
        name = colon + 1;
    return name;
}

static void XMLCALL xw_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    xwalk *w = ud;
    (void)attrs;
    if (w->depth < XW_DEPTH) {
        snprintf(w->names[w->depth], sizeof w->names[w->depth], "%s", local_name(name));
        w->path[w->depth] = w->names[w->depth];
    }
    w->depth++;
    lv_buf_reset(&w->text);
}

static void XMLCALL xw_end(void *ud, const XML_Char *name)
{
    xwalk *w = ud;
    (void)name;
    if (lv_buf_ok(&w->text, NULL) != LV_OK)
        w->oom = 1; /* never hand a handler text with a piece missing */
    if (w->depth <= XW_DEPTH && !w->stop && !w->oom)
        w->end(w, w->path, w->depth, w->text.data ? w->text.data : "", w->text.len);
    w->depth--;
    lv_buf_reset(&w->text);
    if (w->stop || w->oom)
        XML_StopParser(w->p, XML_FALSE);
}

static void XMLCALL xw_chars(void *ud, const XML_Char *s, int len)
{
    xwalk *w = ud;
    lv_buf_append(&w->text, s, (size_t)len);
}

static void XMLCALL xw_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal)
{
    xwalk *w = ud;
    (void)name, (void)sysid, (void)pubid, (void)has_internal;
    XML_StopParser(w->p, XML_FALSE);
}

/* Parses xml[0..n) with end; LV_ECORRUPT (detail naming what) when it is not well-formed. */
static lv_err xw_parse(const char *what, const char *xml, size_t n, xw_end_fn end, void *ctx,
                       int *stopped, char *err)
{
    xwalk w;
    memset(&w, 0, sizeof w);
    lv_buf_init(&w.text);
    w.end = end;
    w.ctx = ctx;
    w.p = XML_ParserCreate("UTF-8");
    if (!w.p)
        return lv_fail(err, LV_ENOMEM, "%s: cannot create an XML parser", what);
    XML_SetUserData(w.p, &w);
    XML_SetElementHandler(w.p, xw_start, xw_end);
    XML_SetCharacterDataHandler(w.p, xw_chars);
    XML_SetStartDoctypeDeclHandler(w.p, xw_doctype);
    lv_err rc = LV_OK;
    if (n > (size_t)INT32_MAX) {
        rc = lv_fail(err, LV_ECORRUPT, "%s: document too large", what);
        goto done;
    }
    /* S3 and MinIO keep a slow CompleteMultipartUpload alive by sending spaces before the
     * document; expat refuses an XML declaration that is not at byte 0, so skip them */
    while (n && (*xml == ' ' || *xml == '\t' || *xml == '\r' || *xml == '\n'))
        xml++, n--;
    enum XML_Status st = XML_Parse(w.p, xml, (int)n, XML_TRUE);
    if (w.oom) {
        rc = lv_fail(err, LV_ENOMEM, "%s: out of memory", what);
        goto done;
    }
    if (st == XML_STATUS_ERROR && XML_GetErrorCode(w.p) == XML_ERROR_ABORTED) {
        if (!w.stop) {
            rc = lv_fail(err, LV_ECORRUPT, "%s: DOCTYPE refused", what);
            goto done;
        }
    } else if (st != XML_STATUS_OK) {
        rc = lv_fail(err, LV_ECORRUPT, "%s: bad XML at line %lu: %s", what,
                     (unsigned long)XML_GetCurrentLineNumber(w.p),
                     XML_ErrorString(XML_GetErrorCode(w.p)));
        goto done;
    }
    if (lv_buf_ok(&w.text, NULL) != LV_OK)
        rc = lv_fail(err, LV_ENOMEM, "%s: out of memory", what);
done:
    if (stopped)
        *stopped = w.stop;
    XML_ParserFree(w.p);
    lv_buf_free(&w.text);
    return rc;
}

static void copy_text(char *dst, size_t cap, const char *text, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, text, len);
    dst[len] = '\0';
}

static int is(const char *const *path, int depth, int at, const char *name)
{
    return depth > at && strcmp(path[at], name) == 0;
}

/* ---- error documents ------------------------------------------------------------------------- */

typedef struct err_ctx {
    char *code;
    char *msg;
} err_ctx;

static void err_end(xwalk *w, const char *const *path, int depth, const char *text, size_t len)
{
    err_ctx *e = w->ctx;
    if (depth == 2 && is(path, depth, 0, "Error")) {
        if (strcmp(path[1], "Code") == 0)
            copy_text(e->code, 64, text, len);
        else if (strcmp(path[1], "Message") == 0)
            copy_text(e->msg, S3_MSG_LEN, text, len);
    }
}

void s3_xml_error(const char *xml, size_t n, char code[64], char msg[S3_MSG_LEN])
{
    err_ctx e = {code, msg};
    code[0] = msg[0] = '\0';
    if (n == 0)
        return;
    (void)xw_parse("error document", xml, n, err_end, &e, NULL, NULL);
}

/* ---- ListObjectsV2 --------------------------------------------------------------------------- */

typedef struct list_ctx {
    int (*cb)(void *ctx, const s3_entry *e);
    void *cb_ctx;
    s3_list_page *page;
    lv_buf key, etag;
    uint64_t size;
    int64_t mtime_ms;
    int have_key;
    int stop;
} list_ctx;

static void list_end(xwalk *w, const char *const *path, int depth, const char *text, size_t len)
{
    list_ctx *l = w->ctx;
    if (!is(path, depth, 0, "ListBucketResult"))
        return;
    if (depth == 2) {
        if (strcmp(path[1], "IsTruncated") == 0)
            l->page->truncated = len == 4 && memcmp(text, "true", 4) == 0;
        else if (strcmp(path[1], "NextContinuationToken") == 0) {
            lv_buf_reset(&l->page->next_token);
            lv_buf_append(&l->page->next_token, text, len);
        } else if (strcmp(path[1], "Contents") == 0 && l->have_key) {
            if (lv_buf_ok(&l->key, NULL) != LV_OK || lv_buf_ok(&l->etag, NULL) != LV_OK) {
                w->oom = 1;
                return;
            }
            s3_entry e = {l->key.data ? l->key.data : "", l->size, l->mtime_ms,
                          l->etag.data ? l->etag.data : ""};
            l->page->n++;
            if (l->cb(l->cb_ctx, &e)) {
                l->stop = 1;
                w->stop = 1;
            }
            lv_buf_reset(&l->key);
            lv_buf_reset(&l->etag);
            l->size = 0;
            l->mtime_ms = 0;
            l->have_key = 0;
        }
    } else if (depth == 3 && strcmp(path[1], "Contents") == 0) {
        if (strcmp(path[2], "Key") == 0) {
            lv_buf_reset(&l->key);
            lv_buf_append(&l->key, text, len);
            l->have_key = 1;
        } else if (strcmp(path[2], "Size") == 0) {
            char tmp[32];
            copy_text(tmp, sizeof tmp, text, len);
            l->size = strtoull(tmp, NULL, 10);
        } else if (strcmp(path[2], "LastModified") == 0) {
            char tmp[48];
            copy_text(tmp, sizeof tmp, text, len);
            l->mtime_ms = s3_parse_iso8601(tmp);
        } else if (strcmp(path[2], "ETag") == 0) {
            lv_buf_reset(&l->etag);
            lv_buf_append(&l->etag, text, len);
        }
    }
}

lv_err s3_xml_list(const char *xml, size_t n, int (*cb)(void *ctx, const s3_entry *e), void *ctx,
                   s3_list_page *page, int *stop, char *err)
{
    list_ctx l;
    memset(&l, 0, sizeof l);
    l.cb = cb;
    l.cb_ctx = ctx;
    l.page = page;
    lv_buf_init(&l.key);
    lv_buf_init(&l.etag);
    page->truncated = 0;
    page->n = 0;
    lv_buf_reset(&page->next_token);
    lv_err rc = xw_parse("ListObjectsV2 result", xml, n, list_end, &l, NULL, err);
    if (rc == LV_OK && (lv_buf_ok(&l.key, err) != LV_OK || lv_buf_ok(&l.etag, err) != LV_OK ||
                        (lv_buf_ok(&page->next_token, err) != LV_OK)))
        rc = LV_ENOMEM;
    *stop = l.stop;
    lv_buf_free(&l.key);
    lv_buf_free(&l.etag);
    return rc;
}

/* ---- multipart ------------------------------------------------------------------------------- */

static void upload_end(xwalk *w, const char *const *path, int depth, const char *text, size_t len)
{
    lv_buf *out = w->ctx;
    if (depth == 2 && is(path, depth, 0, "InitiateMultipartUploadResult") &&
        strcmp(path[1], "UploadId") == 0) {
        lv_buf_reset(out);
        lv_buf_append(out, text, len);
    }
}

lv_err s3_xml_upload_id(const char *xml, size_t n, lv_buf *out, char *err)
{
    lv_buf_reset(out);
    lv_err rc = xw_parse("CreateMultipartUpload result", xml, n, upload_end, out, NULL, err);
    if (rc)
        return rc;
    if (lv_buf_ok(out, err) != LV_OK)
        return LV_ENOMEM;
    if (out->len == 0)
        return lv_fail(err, LV_ECORRUPT, "CreateMultipartUpload result: no UploadId");
    return LV_OK;
}

typedef struct complete_ctx {
    char *etag;
    int *is_error;
    char *code;
    char *msg;
} complete_ctx;

static void complete_end(xwalk *w, const char *const *path, int depth, const char *text, size_t len)
{
    complete_ctx *c = w->ctx;
    if (depth == 2 && is(path, depth, 0, "CompleteMultipartUploadResult") &&
        strcmp(path[1], "ETag") == 0)
        copy_text(c->etag, 80, text, len);
    if (is(path, depth, 0, "Error")) {
        *c->is_error = 1;
        if (depth == 2 && strcmp(path[1], "Code") == 0)
            copy_text(c->code, 64, text, len);
        else if (depth == 2 && strcmp(path[1], "Message") == 0)
            copy_text(c->msg, S3_MSG_LEN, text, len);
    }
}

lv_err s3_xml_complete(const char *xml, size_t n, char etag[80], int *is_error, char code[64],
                       char msg[S3_MSG_LEN], char *err)
{
    complete_ctx c = {etag, is_error, code, msg};
    etag[0] = code[0] = msg[0] = '\0';
    *is_error = 0;
    return xw_parse("CompleteMultipartUpload result", xml, n, complete_end, &c, NULL, err);
}

/* ---- DeleteObjects --------------------------------------------------------------------------- */

typedef struct delete_ctx {
    size_t *n_errors;
    lv_buf *key;
    char *code;
    char *msg;
    lv_buf cur_key;
    char cur_code[64];
    char cur_msg[S3_MSG_LEN];
} delete_ctx;

static void delete_end(xwalk *w, const char *const *path, int depth, const char *text, size_t len)
{
    delete_ctx *d = w->ctx;
    if (!is(path, depth, 0, "DeleteResult") || !is(path, depth, 1, "Error"))
        return;
    if (depth == 3) {
        if (strcmp(path[2], "Key") == 0) {
            lv_buf_reset(&d->cur_key);
            lv_buf_append(&d->cur_key, text, len);
        } else if (strcmp(path[2], "Code") == 0)
            copy_text(d->cur_code, sizeof d->cur_code, text, len);
        else if (strcmp(path[2], "Message") == 0)
            copy_text(d->cur_msg, sizeof d->cur_msg, text, len);
    } else if (depth == 2) {
        if ((*d->n_errors)++ == 0) {
            lv_buf_reset(d->key);
            lv_buf_append(d->key, d->cur_key.data ? d->cur_key.data : "", d->cur_key.len);
            memcpy(d->code, d->cur_code, sizeof d->cur_code);
            memcpy(d->msg, d->cur_msg, sizeof d->cur_msg);
        }
        lv_buf_reset(&d->cur_key);
        d->cur_code[0] = d->cur_msg[0] = '\0';
    }
}

lv_err s3_xml_delete_result(const char *xml, size_t n, size_t *n_errors, lv_buf *key, char code[64],
                            char msg[S3_MSG_LEN], char *err)
{
    delete_ctx d;
    memset(&d, 0, sizeof d);
    d.n_errors = n_errors;
    d.key = key;
    d.code = code;
    d.msg = msg;
    lv_buf_init(&d.cur_key);
    *n_errors = 0;
    code[0] = msg[0] = '\0';
    lv_buf_reset(key);
    lv_err rc = xw_parse("DeleteObjects result", xml, n, delete_end, &d, NULL, err);
    lv_buf_free(&d.cur_key);
    return rc;
}
