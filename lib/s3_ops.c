/*
 * s3_ops: the operations of s3.h on the request engine of s3.c: s3_run (GET, HEAD, PUT with
 * multipart above part_size and the lost-response check, DELETE), s3_list / s3_list_many
 * (ListObjectsV2, every page), s3_delete_keys (DeleteObjects in batches of 1000).
 *
 * Each operation is a small state machine ("job") whose requests run in one engine: a done
 * callback decides the next step (the parts after CreateMultipartUpload, the Complete after the
 * last part, the Abort after a failure, the next page of a listing) and adds it to the same
 * engine, so everything a call needs shares one curl multi loop and the in-flight limit.
 *
 * Threads: every call runs in the caller's thread; callbacks (list cb, GET sink) are called from
 * it. Memory: lv_malloc; nothing outlives the call except what s3.h says the caller owns.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "hex.h"
#include "s3_private.h"

#define S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"

/* "OP s3://bucket/key", cut to fit, into r->what. */
static void set_what(s3_req *r, const char *op, const char *bucket, const char *key,
                     const char *extra)
{
    s3_fmt(r->what, sizeof r->what, "%s s3://%s/%s%s%s", op, bucket, key ? key : "",
           extra && *extra ? " " : "", extra ? extra : "");
}

/* ---- s3_run ---------------------------------------------------------------------------------- */

typedef struct run_job {
    s3_op *op;
    const char *bucket;
    s3_req main;  /* the request; for a multipart upload, CreateMultipartUpload */
    s3_req check; /* after a lost response and a 412: the stored object */
    char md5_hex[33];
    char md5_b64[25];
    unsigned retries; /* attempts beyond the first, over every request of the job */
    /* multipart */
    lv_buf upload_id;
    s3_req *parts;
    size_t n_parts, parts_left, failed_part; /* failed_part: n_parts when none failed */
    uint64_t part_size;
    s3_req complete, abort_req;
    lv_buf complete_body;
    int check_bytes;  /* the check compares the stored bytes (GET), not the ETag (HEAD) */
    lv_err saved_err; /* the failure to report once the Abort (or the check) has run */
    char saved_msg[LV_ERRLEN];
    int saved_status;
    char saved_code[64];
} run_job;

static void count(run_job *j, const s3_req *r)
{
    if (r->attempts > 1)
        j->retries += r->attempts - 1;
}

/* Ends the job with r's outcome (r may be NULL when the outcome is already in op->res). */
static void job_end(run_job *j, const s3_req *r)
{
    s3_result *res = &j->op->res;
    if (r) {
        res->err = r->err;
        res->status = r->status;
        s3_fmt(res->code, sizeof res->code, "%s", r->code);
        s3_fmt(res->msg, sizeof res->msg, "%s", r->msg);
        if (r->err == LV_OK) {
            if (r->etag[0])
                s3_fmt(res->etag, sizeof res->etag, "%s", r->etag);
            res->size = r->size;
            res->mtime_ms = r->mtime_ms;
        }
    }
    res->attempts = 1 + j->retries;
}

static void check_done(s3_engine *e, s3_req *r);

/* Keeps failed's outcome, to report once a follow-up request (Abort, check) has run. */
static void save_failure(run_job *j, const s3_req *failed)
{
    j->saved_err = failed->err;
    j->saved_status = failed->status;
    s3_fmt(j->saved_code, sizeof j->saved_code, "%s", failed->code);
    s3_fmt(j->saved_msg, sizeof j->saved_msg, "%s", failed->msg);
}

/* Queues the check: HEAD (the ETag), or GET (the bytes) when j->check_bytes. */
static void queue_check(s3_engine *e, run_job *j)
{
    s3_req *c = &j->check;
    s3_req_reset(c);
    c->method = j->check_bytes ? "GET" : "HEAD";
    c->key = j->op->key;
    c->to = S3_TO_RESP;
    c->done = check_done;
    c->job = j;
    set_what(c, c->method, j->bucket, j->op->key, "(checking a lost PUT response)");
    s3_eng_add(e, c);
}

/* A conditional write came back 412 (or NoSuchUpload) after an attempt whose response was lost
 * (or was a 5xx): read the stored object to see whether it is ours. */
static void start_check(s3_engine *e, run_job *j, const s3_req *failed)
{
    save_failure(j, failed);
    /* a single PUT: its ETag is the body's MD5; a multipart object: compare the bytes */
    j->check_bytes = j->parts != NULL;
    queue_check(e, j);
}

/* "\"<32 hex digits>\"": an ETag that is an MD5 (not under SSE-KMS or SSE-C, not multipart). */
static int etag_is_md5(const char *etag)
{
    if (strlen(etag) != 34 || etag[0] != '"' || etag[33] != '"')
        return 0;
    for (int i = 1; i < 33; i++)
        if (!strchr("0123456789abcdefABCDEF", etag[i]))
            return 0;
    return 1;
}

static void end_with_saved(run_job *j, const char *why)
{
    s3_result *res = &j->op->res;
    res->err = j->saved_err;
    res->status = j->saved_status;
    s3_fmt(res->code, sizeof res->code, "%s", j->saved_code);
    s3_fmt(res->msg, sizeof res->msg, "%s%s", j->saved_msg, why ? why : "");
    job_end(j, NULL);
}

static void check_done(s3_engine *e, s3_req *r)
{
    run_job *j = r->job;
    count(j, r);
    int ours = 0;
    if (r->err == LV_OK && !j->check_bytes && !etag_is_md5(r->etag)) {
        /* encrypted with KMS or a customer key: the ETag is no MD5; compare the bytes */
        j->check_bytes = 1;
        queue_check(e, j);
        return;
    }
    if (r->err == LV_OK) {
        if (j->check_bytes)
            ours = r->resp.len == j->op->body_len &&
                   (r->resp.len == 0 || memcmp(r->resp.data, j->op->body, r->resp.len) == 0);
        else {
            char want[40];
            s3_fmt(want, sizeof want, "\"%s\"", j->md5_hex);
            ours = strcmp(r->etag, want) == 0;
        }
    }
    if (ours) {
        s3_result *res = &j->op->res;
        res->err = LV_OK;
        res->status = j->saved_status;
        res->code[0] = res->msg[0] = '\0';
        res->recovered = 1;
        s3_fmt(res->etag, sizeof res->etag, "%s", r->etag);
        res->size = j->op->body_len;
        res->mtime_ms = r->mtime_ms;
        job_end(j, NULL);
    } else if (r->err == LV_OK || r->err == LV_ENOTFOUND) {
        j->saved_err = LV_ECONFLICT;
        end_with_saved(j, " (after a lost response; the stored object is not ours)");
    } else {
        end_with_saved(j, " (after a lost response; checking the stored object failed)");
    }
}

static int conditional(const s3_op *op)
{
    return (op->if_none_match && *op->if_none_match) || (op->if_match && *op->if_match);
}

static void single_done(s3_engine *e, s3_req *r)
{
    run_job *j = r->job;
    count(j, r);
    if (r->err == LV_ECONFLICT && j->op->kind == S3_PUT && r->lost && conditional(j->op)) {
        start_check(e, j, r);
        return;
    }
    job_end(j, r);
}

/* ---- multipart ---- */

static void abort_done(s3_engine *e, s3_req *r)
{
    (void)e;
    run_job *j = r->job;
    count(j, r);
    end_with_saved(j, NULL);
}

static void start_abort(s3_engine *e, run_job *j, const s3_req *failed)
{
    if (failed)
        save_failure(j, failed);
    s3_req *a = &j->abort_req;
    a->method = "DELETE";
    a->key = j->op->key;
    lv_buf_puts(&a->query, "uploadId=");
    lv_buf_uri_encode(&a->query, j->upload_id.data, j->upload_id.len, 0);
    a->to = S3_TO_RESP;
    a->done = abort_done;
    a->job = j;
    set_what(a, "AbortMultipartUpload", j->bucket, j->op->key, NULL);
    s3_eng_add(e, a);
}

static void complete_done(s3_engine *e, s3_req *r)
{
    run_job *j = r->job;
    if (r->err == LV_OK) {
        int is_error = 0;
        char etag[80], code[64], msg[S3_MSG_LEN], xerr[LV_ERRLEN];
        lv_err rc = s3_xml_complete(r->resp.data ? r->resp.data : "", r->resp.len, etag, &is_error,
                                    code, msg, xerr);
        const s3_config *k = &e->c->cfg;
        if (rc == LV_OK && is_error && r->attempts < k->max_attempts &&
            s3_mono_ms() - r->t0 < (int64_t)k->retry_total_ms) {
            /* S3 may answer 200 and then an <Error>: that is a 500, retried like one */
            r->not_before = s3_mono_ms() + s3_backoff_ms(e->c, r->attempts);
            s3_eng_add(e, r);
            return;
        }
        count(j, r);
        if (rc != LV_OK || is_error) {
            r->err = LV_ENET;
            if (rc != LV_OK)
                s3_fmt(r->msg, sizeof r->msg, "%s: %s", r->what, xerr);
            else
                s3_fmt(r->msg, sizeof r->msg, "%s: 200 with an error: %s: %s", r->what, code, msg);
            s3_fmt(r->code, sizeof r->code, "%s", code);
            start_abort(e, j, r);
            return;
        }
        if (etag[0])
            s3_fmt(r->etag, sizeof r->etag, "%s", etag);
        r->size = j->op->body_len;
        job_end(j, r);
        return;
    }
    count(j, r);
    int gone = r->err == LV_ENOTFOUND && strcmp(r->code, "NoSuchUpload") == 0;
    if (r->lost && ((r->err == LV_ECONFLICT && conditional(j->op)) || gone)) {
        start_check(e, j, r);
        return;
    }
    start_abort(e, j, r);
}

static void start_complete(s3_engine *e, run_job *j)
{
    s3_req *c = &j->complete;
    lv_buf *b = &j->complete_body;
    lv_buf_puts(b, "<CompleteMultipartUpload xmlns=\"" S3_XMLNS "\">");
    for (size_t i = 0; i < j->n_parts; i++) {
        lv_buf_printf(b, "<Part><PartNumber>%zu</PartNumber><ETag>", i + 1);
        lv_buf_xml_escape(b, j->parts[i].etag, strlen(j->parts[i].etag));
        lv_buf_puts(b, "</ETag></Part>");
    }
    lv_buf_puts(b, "</CompleteMultipartUpload>");
    c->method = "POST";
    c->key = j->op->key;
    lv_buf_puts(&c->query, "uploadId=");
    lv_buf_uri_encode(&c->query, j->upload_id.data, j->upload_id.len, 0);
    c->body = (const uint8_t *)b->data;
    c->body_len = b->len;
    c->has_body = 1;
    s3_req_header(c, "content-type", "application/xml");
    if (j->op->if_none_match && *j->op->if_none_match)
        s3_req_header(c, "if-none-match", j->op->if_none_match);
    if (j->op->if_match && *j->op->if_match)
        s3_req_header(c, "if-match", j->op->if_match);
    c->to = S3_TO_RESP;
    c->done = complete_done;
    c->job = j;
    /* S3 may take minutes to assemble the parts, sending nothing or a space now and then */
    c->stall_ms = e->c->cfg.stall_timeout_ms > S3_COMPLETE_STALL_MS ? e->c->cfg.stall_timeout_ms
                                                                    : S3_COMPLETE_STALL_MS;
    set_what(c, "PUT", j->bucket, j->op->key, "(CompleteMultipartUpload)");
    if (lv_buf_ok(b, NULL) != LV_OK || lv_buf_ok(&c->query, NULL) != LV_OK ||
        (lv_buf_ok(&c->hdrs, NULL) != LV_OK)) {
        j->saved_err = LV_ENOMEM;
        s3_fmt(j->saved_msg, sizeof j->saved_msg, "%s: out of memory", c->what);
        start_abort(e, j, NULL);
        return;
    }
    s3_eng_add(e, c);
}

static void part_done(s3_engine *e, s3_req *r)
{
    run_job *j = r->job;
    count(j, r);
    if (r->err != LV_OK && (j->failed_part == j->n_parts || r->idx < j->failed_part))
        j->failed_part = r->idx;
    if (--j->parts_left)
        return;
    if (j->failed_part < j->n_parts)
        start_abort(e, j, &j->parts[j->failed_part]);
    else
        start_complete(e, j);
}

static void create_done(s3_engine *e, s3_req *r)
{
    run_job *j = r->job;
    count(j, r);
    char xerr[LV_ERRLEN];
    if (r->err != LV_OK) {
        job_end(j, r);
        return;
    }
    if (s3_xml_upload_id(r->resp.data ? r->resp.data : "", r->resp.len, &j->upload_id, xerr)) {
        r->err = LV_ENET;
        s3_fmt(r->msg, sizeof r->msg, "%s: %s", r->what, xerr);
        job_end(j, r);
        return;
    }
    const s3_op *op = j->op;
    uint64_t ps = j->part_size;
    size_t n = (size_t)((op->body_len + ps - 1) / ps);
    j->parts = lv_calloc(n, sizeof *j->parts);
    if (!j->parts) {
        j->saved_err = LV_ENOMEM;
        s3_fmt(j->saved_msg, sizeof j->saved_msg, "%s: out of memory", r->what);
        start_abort(e, j, NULL);
        return;
    }
    j->n_parts = j->parts_left = j->failed_part = n;
    for (size_t i = 0; i < n; i++) {
        s3_req *p = &j->parts[i];
        s3_req_init(p);
        p->method = "PUT";
        p->key = op->key;
        lv_buf_printf(&p->query, "partNumber=%zu&uploadId=", i + 1);
        lv_buf_uri_encode(&p->query, j->upload_id.data, j->upload_id.len, 0);
        p->body = (const uint8_t *)op->body + i * ps;
        p->body_len = (size_t)(i + 1 < n ? ps : op->body_len - i * ps);
        p->has_body = 1;
        if (op->content_md5) {
            uint8_t md5[16];
            char b64[25];
            s3_md5(p->body, p->body_len, md5);
            s3_b64_16(md5, b64);
            s3_req_header(p, "content-md5", b64); /* copied */
        }
        p->to = S3_TO_RESP;
        p->done = part_done;
        p->job = j;
        p->idx = i;
        char extra[48];
        s3_fmt(extra, sizeof extra, "(part %zu of %zu)", i + 1, n);
        set_what(p, "PUT", j->bucket, op->key, extra);
        s3_eng_add(e, p);
    }
}

static void headers_from_op(s3_req *r, const s3_op *op)
{
    for (size_t i = 0; i < op->n_headers; i++)
        s3_req_header(r, op->headers[i].name, op->headers[i].value);
}

/* Sets up and queues the first request of op's job. */
static void job_start(s3_engine *e, run_job *j)
{
    s3_op *op = j->op;
    s3_req *r = &j->main;
    r->key = op->key;
    r->job = j;
    r->done = single_done;
    r->to = S3_TO_RESP;
    char extra[64] = "";
    switch (op->kind) {
    case S3_GET: {
        r->method = "GET";
        uint64_t len = op->len == 0 ? S3_TO_END : op->len;
        if (op->off != 0 || len != S3_TO_END) {
            char range[64];
            if (len == S3_TO_END || op->off + len < op->off)
                s3_fmt(range, sizeof range, "bytes=%llu-", (unsigned long long)op->off);
            else
                s3_fmt(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)op->off,
                       (unsigned long long)(op->off + len - 1));
            s3_req_header(r, "range", range);
            r->expect_range = 1;
            r->range_off = op->off;
            r->range_len = len;
            s3_fmt(extra, sizeof extra, "%s", range);
        }
        if (op->sink) {
            r->to = S3_TO_SINK;
            r->sink = op->sink;
            r->sink_ctx = op->sink_ctx;
        } else {
            r->to = S3_TO_OUT;
            r->out = &op->out;
        }
        break;
    }
    case S3_HEAD:
        r->method = "HEAD";
        r->meta = &op->meta;
        break;
    case S3_DELETE:
        r->method = "DELETE";
        if (op->if_match && *op->if_match) /* conditional delete: 412 when the ETag differs */
            s3_req_header(r, "if-match", op->if_match);
        break;
    case S3_PUT: {
        int multipart = op->body_len > e->c->cfg.part_size;
        if (op->content_md5 || conditional(op)) {
            uint8_t md5[16];
            s3_md5(op->body, op->body_len, md5);
            lv_hex_encode(md5, 16, j->md5_hex);
            s3_b64_16(md5, j->md5_b64);
        }
        headers_from_op(r, op);
        if (multipart) {
            uint64_t ps = e->c->cfg.part_size;
            while ((op->body_len + ps - 1) / ps > S3_MAX_PARTS)
                ps *= 2;
            j->part_size = ps;
            r->method = "POST";
            lv_buf_puts(&r->query, "uploads");
            r->has_body = 1; /* empty */
            r->done = create_done;
            set_what(r, "PUT", j->bucket, op->key, "(CreateMultipartUpload)");
            s3_eng_add(e, r);
            return;
        }
        r->method = "PUT";
        r->body = op->body;
        r->body_len = op->body_len;
        r->has_body = 1;
        if (op->content_md5)
            s3_req_header(r, "content-md5", j->md5_b64);
        if (op->if_none_match && *op->if_none_match)
            s3_req_header(r, "if-none-match", op->if_none_match);
        if (op->if_match && *op->if_match)
            s3_req_header(r, "if-match", op->if_match);
        break;
    }
    }
    set_what(r, r->method, j->bucket, op->key, extra);
    s3_eng_add(e, r);
}

static void job_free(run_job *j)
{
    s3_req_free(&j->main);
    s3_req_free(&j->check);
    s3_req_free(&j->complete);
    s3_req_free(&j->abort_req);
    for (size_t i = 0; j->parts && i < j->n_parts; i++)
        s3_req_free(&j->parts[i]);
    lv_free(j->parts);
    lv_buf_free(&j->upload_id);
    lv_buf_free(&j->complete_body);
}

void s3_op_init(s3_op *op)
{
    memset(op, 0, sizeof *op);
    op->kind = S3_GET;
    op->len = S3_TO_END;
    lv_buf_init(&op->out);
    lv_buf_init(&op->meta);
}

void s3_op_free(s3_op *op)
{
    lv_buf_free(&op->out);
    lv_buf_free(&op->meta);
}

lv_err s3_run(s3_client *c, const char *bucket, s3_op *ops, size_t n, char *err)
{
    if (n == 0)
        return LV_OK;
    run_job *jobs = lv_calloc(n, sizeof *jobs);
    if (!jobs)
        return lv_fail(err, LV_ENOMEM, "s3_run: out of memory for %zu operations", n);
    s3_engine e;
    lv_err rc = s3_eng_init(&e, c, bucket, err);
    if (rc != LV_OK) {
        lv_free(jobs);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        run_job *j = &jobs[i];
        j->op = &ops[i];
        j->bucket = bucket;
        memset(&ops[i].res, 0, sizeof ops[i].res);
        s3_req_init(&j->main);
        s3_req_init(&j->check);
        s3_req_init(&j->complete);
        s3_req_init(&j->abort_req);
        lv_buf_init(&j->upload_id);
        lv_buf_init(&j->complete_body);
        if (!ops[i].key) {
            ops[i].res.err = lv_fail(ops[i].res.msg, LV_EINVAL, "operation %zu: no key", i);
            continue;
        }
        job_start(&e, j);
        if (lv_buf_ok(&j->main.hdrs, NULL) != LV_OK || (lv_buf_ok(&j->main.query, NULL) != LV_OK)) {
            rc = lv_fail(err, LV_ENOMEM, "s3_run: out of memory");
            goto done;
        }
    }
    rc = s3_eng_run(&e, err);
    if (rc != LV_OK)
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].res.err != LV_OK) {
            rc = ops[i].res.err;
            if (err)
                s3_fmt(err, LV_ERRLEN, "%s", ops[i].res.msg);
            break;
        }
    }
done:
    s3_eng_free(&e);
    for (size_t i = 0; i < n; i++)
        job_free(&jobs[i]);
    lv_free(jobs);
    return rc;
}

/* Runs the one operation op, copies its result to res (may be NULL) and frees op. */
static lv_err run_one(s3_client *c, const char *bucket, s3_op *op, s3_result *res, char *err)
{
    lv_err rc = s3_run(c, bucket, op, 1, err);
    if (res)
        *res = op->res;
    s3_op_free(op);
    return rc;
}

lv_err s3_get(s3_client *c, const char *bucket, const char *key, uint64_t off, uint64_t len,
              lv_buf *out, s3_result *res, char *err)
{
    s3_op op;
    s3_op_init(&op);
    op.kind = S3_GET;
    op.key = key;
    op.off = off;
    op.len = len;
    op.out = *out; /* appended to in place: the caller's buffer is lent and given back */
    lv_err rc = s3_run(c, bucket, &op, 1, err);
    *out = op.out;
    lv_buf_init(&op.out);
    if (res)
        *res = op.res;
    s3_op_free(&op);
    return rc;
}

lv_err s3_head(s3_client *c, const char *bucket, const char *key, s3_result *res, char *err)
{
    s3_op op;
    s3_op_init(&op);
    op.kind = S3_HEAD;
    op.key = key;
    return run_one(c, bucket, &op, res, err);
}

lv_err s3_put(s3_client *c, const char *bucket, const char *key, const void *body, size_t len,
              const s3_op *opts, s3_result *res, char *err)
{
    s3_op op;
    s3_op_init(&op);
    if (opts) {
        op.if_none_match = opts->if_none_match;
        op.if_match = opts->if_match;
        op.headers = opts->headers;
        op.n_headers = opts->n_headers;
        op.content_md5 = opts->content_md5;
    }
    op.kind = S3_PUT;
    op.key = key;
    op.body = body;
    op.body_len = len;
    return run_one(c, bucket, &op, res, err);
}

/* ---- listings -------------------------------------------------------------------------------- */

typedef struct list_job {
    size_t which;
    const char *prefix;
    const char *start_after;
    s3_req req;
    s3_list_page page;
    int (*cb)(void *ctx, size_t which, const s3_entry *e);
    void *ctx;
    int stopped;
    lv_err err;
    char msg[LV_ERRLEN];
} list_job;

static void list_query(list_job *l, const char *token)
{
    lv_buf *q = &l->req.query;
    lv_buf_reset(q);
    /* in canonical (sorted) order, as signed */
    if (token) {
        lv_buf_puts(q, "continuation-token=");
        lv_buf_uri_encode(q, token, strlen(token), 0);
        lv_buf_putc(q, '&');
    }
    lv_buf_puts(q, "list-type=2&max-keys=1000");
    if (l->prefix && *l->prefix) {
        lv_buf_puts(q, "&prefix=");
        lv_buf_uri_encode(q, l->prefix, strlen(l->prefix), 0);
    }
    if (!token && l->start_after && *l->start_after) {
        lv_buf_puts(q, "&start-after=");
        lv_buf_uri_encode(q, l->start_after, strlen(l->start_after), 0);
    }
}

static int list_entry(void *ctx, const s3_entry *e)
{
    list_job *l = ctx;
    return l->cb(l->ctx, l->which, e);
}

static void list_done(s3_engine *e, s3_req *r)
{
    list_job *l = r->job;
    if (r->err != LV_OK) {
        l->err = r->err;
        s3_fmt(l->msg, sizeof l->msg, "%s", r->msg);
        return;
    }
    int stop = 0;
    char xerr[LV_ERRLEN];
    lv_err rc = s3_xml_list(r->resp.data ? r->resp.data : "", r->resp.len, list_entry, l, &l->page,
                            &stop, xerr);
    if (rc != LV_OK) {
        l->err = rc == LV_ENOMEM ? rc : LV_ENET;
        s3_fmt(l->msg, sizeof l->msg, "%s: %s", r->what, xerr);
        return;
    }
    if (stop) {
        l->stopped = 1;
        return;
    }
    if (!l->page.truncated)
        return;
    if (l->page.next_token.len == 0) {
        l->err = LV_ENET;
        s3_fmt(l->msg, sizeof l->msg, "%s: a truncated page without NextContinuationToken",
               r->what);
        return;
    }
    list_query(l, l->page.next_token.data);
    if (lv_buf_ok(&r->query, NULL) != LV_OK) {
        l->err = LV_ENOMEM;
        s3_fmt(l->msg, sizeof l->msg, "%s: out of memory", r->what);
        return;
    }
    s3_req_reset(r);
    s3_eng_add(e, r);
}

static lv_err list_run(s3_client *c, const char *bucket, const char *const *prefixes,
                       const char *start_after, size_t n,
                       int (*cb)(void *ctx, size_t which, const s3_entry *e), void *ctx, char *err)
{
    if (n == 0)
        return LV_OK;
    list_job *jobs = lv_calloc(n, sizeof *jobs);
    if (!jobs)
        return lv_fail(err, LV_ENOMEM, "list: out of memory");
    s3_engine e;
    lv_err rc = s3_eng_init(&e, c, bucket, err);
    if (rc != LV_OK) {
        lv_free(jobs);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        list_job *l = &jobs[i];
        l->which = i;
        l->prefix = prefixes[i] ? prefixes[i] : "";
        l->start_after = start_after;
        l->cb = cb;
        l->ctx = ctx;
        lv_buf_init(&l->page.next_token);
        s3_req_init(&l->req);
        l->req.method = "GET";
        l->req.key = NULL;
        l->req.to = S3_TO_RESP;
        l->req.done = list_done;
        l->req.job = l;
        set_what(&l->req, "LIST", bucket, l->prefix, NULL);
        list_query(l, NULL);
        if (lv_buf_ok(&l->req.query, NULL) != LV_OK) {
            rc = lv_fail(err, LV_ENOMEM, "list: out of memory");
            goto done;
        }
        s3_eng_add(&e, &l->req);
    }
    rc = s3_eng_run(&e, err);
    if (rc != LV_OK)
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].err != LV_OK) {
            rc = jobs[i].err;
            if (err)
                s3_fmt(err, LV_ERRLEN, "%s", jobs[i].msg);
            break;
        }
    }
done:
    s3_eng_free(&e);
    for (size_t i = 0; i < n; i++) {
        s3_req_free(&jobs[i].req);
        lv_buf_free(&jobs[i].page.next_token);
    }
    lv_free(jobs);
    return rc;
}

typedef struct one_list {
    int (*cb)(void *ctx, const s3_entry *e);
    void *ctx;
} one_list;

static int one_list_cb(void *ctx, size_t which, const s3_entry *e)
{
    one_list *o = ctx;
    (void)which;
    return o->cb(o->ctx, e);
}

lv_err s3_list(s3_client *c, const char *bucket, const char *prefix, const char *start_after,
               int (*cb)(void *ctx, const s3_entry *e), void *ctx, char *err)
{
    one_list o = {cb, ctx};
    const char *prefixes[1] = {prefix};
    return list_run(c, bucket, prefixes, start_after, 1, one_list_cb, &o, err);
}

lv_err s3_list_many(s3_client *c, const char *bucket, const char *const *prefixes, size_t n,
                    int (*cb)(void *ctx, size_t which, const s3_entry *e), void *ctx, char *err)
{
    return list_run(c, bucket, prefixes, NULL, n, cb, ctx, err);
}

/* ---- DeleteObjects --------------------------------------------------------------------------- */

#define S3_DELETE_BATCH 1000

typedef struct del_job {
    s3_req req;
    lv_buf body;
    char md5_b64[25];
    size_t first, n;
    lv_err err;
    char msg[LV_ERRLEN];
} del_job;

static void del_done(s3_engine *e, s3_req *r)
{
    (void)e;
    del_job *d = r->job;
    if (r->err != LV_OK) {
        d->err = r->err;
        s3_fmt(d->msg, sizeof d->msg, "%s", r->msg);
        return;
    }
    size_t n_errors = 0;
    lv_buf key;
    lv_buf_init(&key);
    char code[64], msg[S3_MSG_LEN], xerr[LV_ERRLEN];
    lv_err rc = s3_xml_delete_result(r->resp.data ? r->resp.data : "", r->resp.len, &n_errors, &key,
                                     code, msg, xerr);
    if (rc != LV_OK) {
        d->err = LV_ENET;
        s3_fmt(d->msg, sizeof d->msg, "%s: %s", r->what, xerr);
    } else if (n_errors) {
        d->err = strcmp(code, "AccessDenied") == 0 ? LV_EACCESS : LV_ENET;
        s3_fmt(d->msg, sizeof d->msg, "%s: key %s: %s: %s (%zu keys failed)", r->what,
               key.data ? key.data : "", code, msg, n_errors);
    }
    lv_buf_free(&key);
}

lv_err s3_delete_keys(s3_client *c, const char *bucket, const char *const *keys, size_t n,
                      char *err)
{
    if (n == 0)
        return LV_OK;
    size_t nb = (n + S3_DELETE_BATCH - 1) / S3_DELETE_BATCH;
    del_job *jobs = lv_calloc(nb, sizeof *jobs);
    if (!jobs)
        return lv_fail(err, LV_ENOMEM, "DeleteObjects: out of memory");
    s3_engine e;
    lv_err rc = s3_eng_init(&e, c, bucket, err);
    if (rc != LV_OK) {
        lv_free(jobs);
        return rc;
    }
    for (size_t b = 0; b < nb; b++) {
        del_job *d = &jobs[b];
        s3_req_init(&d->req);
        lv_buf_init(&d->body);
        d->first = b * S3_DELETE_BATCH;
        d->n = n - d->first < S3_DELETE_BATCH ? n - d->first : S3_DELETE_BATCH;
        lv_buf_puts(&d->body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete xmlns=\"" S3_XMLNS
                              "\"><Quiet>true</Quiet>");
        for (size_t i = d->first; i < d->first + d->n; i++) {
            lv_buf_puts(&d->body, "<Object><Key>");
            lv_buf_xml_escape(&d->body, keys[i], strlen(keys[i]));
            lv_buf_puts(&d->body, "</Key></Object>");
        }
        lv_buf_puts(&d->body, "</Delete>");
        if ((rc = lv_buf_ok(&d->body, err)) != LV_OK)
            goto done;
        uint8_t md5[16];
        s3_md5(d->body.data, d->body.len, md5);
        s3_b64_16(md5, d->md5_b64);
        s3_req *r = &d->req;
        r->method = "POST";
        r->key = NULL;
        lv_buf_puts(&r->query, "delete");
        r->body = (const uint8_t *)d->body.data;
        r->body_len = d->body.len;
        r->has_body = 1;
        s3_req_header(r, "content-md5", d->md5_b64);
        s3_req_header(r, "content-type", "application/xml");
        r->to = S3_TO_RESP;
        r->done = del_done;
        r->job = d;
        char extra[64];
        s3_fmt(extra, sizeof extra, "(keys %zu-%zu of %zu)", d->first + 1, d->first + d->n, n);
        set_what(r, "DeleteObjects", bucket, "", extra);
        if ((rc = lv_buf_ok(&r->query, err)) != LV_OK || (rc = lv_buf_ok(&r->hdrs, err)) != LV_OK)
            goto done;
        s3_eng_add(&e, r);
    }
    rc = s3_eng_run(&e, err);
    if (rc != LV_OK)
        goto done;
    for (size_t b = 0; b < nb; b++) {
        if (jobs[b].err != LV_OK) {
            rc = jobs[b].err;
            if (err)
                s3_fmt(err, LV_ERRLEN, "%s", jobs[b].msg);
            break;
        }
    }
done:
    s3_eng_free(&e);
    for (size_t b = 0; b < nb; b++) {
        s3_req_free(&jobs[b].req);
        lv_buf_free(&jobs[b].body);
    }
    lv_free(jobs);
    return rc;
}
