/*
 * server: the libmicrohttpd glue and the request lifecycle (see server.h for the concurrency model
 * and request.h for the stages).
 *
 * libmicrohttpd calls on_request several times per request: once when the headers are in (stages
 * 1-3 run, and an error is answered right there), once per piece of body (stage 4), and once more
 * with no data when the body is complete (stages 5-6). uri_log runs before all of them and sees
 * the URI exactly as sent, before libmicrohttpd decodes it: the path is decoded once here, so an
 * encoded '/' or '%' in a key stays what the client meant. on_completed frees the request and
 * writes its log line, whether it ended well or the connection died; a request libmicrohttpd
 * abandons without calling it is freed with its connection instead (on_connection, fs3_conn).
 *
 * Faults (faults.h): on_request puts each routed S3 request to the fault engine before it is
 * authenticated and carries the decision out at the stages (request.h). While the server is
 * "down" (a down rule fired), the accept policy refuses new connections and on_request resets
 * requests on connections already open. Waits (fs3_server_sleep) are timed waits on one condition
 * variable, which fs3_server_stop broadcasts before it stops libmicrohttpd, so that joining the
 * connection threads never waits for a stall.
 *
 * Threads: every callback of one request runs on its connection's thread (on_connection's close
 * runs after that thread has ended); the server's own state (request-id counter, log file, fault
 * counters, down time) is shared and touched atomically or with one write(2) per line; sleep_mu
 * guards only `stopping` (and is never held while anything else is done).
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <microhttpd.h>

#include "alloc.h"
#include "faults.h"
#include "hex.h"
#include "httpsem.h"
#include "request.h"

struct fs3_server {
    fs3_config cfg;
    fs3_store *store;
    struct MHD_Daemon *daemon;
    int listen_fd;
    char address[128];
    int log_fd;
    atomic_ulong seq; /* request ids */
    uint64_t id_base; /* start time, so ids differ between runs */
    fs3_auth_config auth;
    /* answered requests by operation and status (100..599), for /_fakes3/stats */
    atomic_ulong counts[FS3_OP_COUNT][500];
    /* faults carried out, by action */
    atomic_ulong fault_counts[CHAOS_DOWN + 1];
    /* down: new connections refused until this CLOCK_MONOTONIC time (us); 0 when never down */
    _Atomic int64_t down_until;
    /* fs3_server_sleep waits on sleep_cv (CLOCK_MONOTONIC); stop sets stopping and wakes all */
    pthread_mutex_t sleep_mu;
    pthread_cond_t sleep_cv;
    int sleep_init; /* sleep_mu and sleep_cv were made */
    int stopping;
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int fs3_server_sleep(fs3_server *srv, int64_t us)
{
    int64_t end = mono_us() + (us > 0 ? us : 0);
    struct timespec ts = {.tv_sec = (time_t)(end / 1000000),
                          .tv_nsec = (long)(end % 1000000) * 1000};
    pthread_mutex_lock(&srv->sleep_mu);
    while (!srv->stopping && us > 0) {
        if (pthread_cond_timedwait(&srv->sleep_cv, &srv->sleep_mu, &ts) == ETIMEDOUT)
            break;
    }
    int stopping = srv->stopping;
    pthread_mutex_unlock(&srv->sleep_mu);
    return stopping;
}

void fs3_server_set_down(fs3_server *srv, int64_t us)
{
    int64_t until = mono_us() + (us > 0 ? us : 0);
    int64_t cur = atomic_load(&srv->down_until);
    /* the later end wins when two down rules fire together */
    while (cur < until && !atomic_compare_exchange_weak(&srv->down_until, &cur, until))
        ;
}

/* Whether the server is down right now: one atomic load while it never was. */
static int server_down(fs3_server *srv)
{
    int64_t until = atomic_load(&srv->down_until);
    return until != 0 && mono_us() < until;
}

void fs3_server_count_fault(fs3_server *srv, chaos_action a)
{
    if ((unsigned)a <= CHAOS_DOWN)
        atomic_fetch_add(&srv->fault_counts[a], 1);
}

void fs3_server_stats_json(const fs3_req *r, lv_buf *out)
{
    fs3_server *srv = r->srv;
    unsigned long total = 0;
    int any_op = 0;
    lv_buf_puts(out, "{\"operations\":{");
    for (int op = 0; op < FS3_OP_COUNT; op++) {
        int any = 0;
        for (int st = 0; st < 500; st++) {
            unsigned long n = atomic_load(&srv->counts[op][st]);
            if (!n)
                continue;
            total += n;
            if (!any)
                lv_buf_printf(out, "%s\"%s\":{", any_op ? "," : "", fs3_op_name((fs3_op)op));
            lv_buf_printf(out, "%s\"%d\":%lu", any ? "," : "", st + 100, n);
            any = any_op = 1;
        }
        if (any)
            lv_buf_putc(out, '}');
    }
    lv_buf_puts(out, "},\"faults\":{");
    int any_fault = 0;
    for (int a = CHAOS_NONE + 1; a <= CHAOS_DOWN; a++) {
        unsigned long n = atomic_load(&srv->fault_counts[a]);
        if (n) {
            lv_buf_printf(out, "%s\"%s\":%lu", any_fault ? "," : "",
                          chaos_action_name((chaos_action)a), n);
            any_fault = 1;
        }
    }
    lv_buf_printf(out, "},\"requests\":%lu}\n", total);
}

/* ---- helpers for ops.c ----------------------------------------------------------------------- */

const char *fs3_req_header(fs3_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void fs3_resp_header(fs3_req *r, const char *name, const char *value)
{
    lv_buf_append(&r->resp.headers, name, strlen(name) + 1);
    lv_buf_append(&r->resp.headers, value, strlen(value) + 1);
}

/* Drops whatever body the response had. */
static void resp_clear_body(fs3_resp *resp)
{
    if (resp->fd >= 0)
        close(resp->fd);
    resp->fd = -1;
    fs3_object_unref(resp->mem_obj);
    resp->mem_obj = NULL;
    resp->mem = NULL;
    resp->off = resp->len = 0;
    lv_buf_reset(&resp->body);
}

void fs3_resp_error(fs3_req *r, fs3_code code, const char *message, const fs3_xml_field *extra,
                    size_t n_extra)
{
    resp_clear_body(&r->resp);
    lv_buf_reset(&r->resp.headers);
    r->code = code;
    r->resp.status = fs3_code_status(code);
    if (code == FS3_NOT_MODIFIED)
        return; /* 304: headers only (the operation adds ETag and Last-Modified) */
    fs3_xml_field f[8];
    size_t n = 0;
    for (size_t i = 0; i < n_extra && n < 6; i++)
        f[n++] = extra[i];
    if (r->route.bucket[0] && (code == FS3_NO_SUCH_BUCKET || code == FS3_BUCKET_NOT_EMPTY ||
                               code == FS3_BUCKET_ALREADY_OWNED_BY_YOU || code == FS3_NO_SUCH_KEY))
        f[n++] = (fs3_xml_field){"BucketName", r->route.bucket, strlen(r->route.bucket)};
    if (r->route.key && code == FS3_NO_SUCH_KEY)
        f[n++] = (fs3_xml_field){"Key", r->route.key, r->route.key_len};
    fs3_xml_error(&r->resp.body, code, message, f, n, r->raw_path ? r->raw_path : "/", r->id);
    fs3_resp_header(r, "Content-Type", "application/xml");
}

void fs3_resp_xml(fs3_req *r, int status, lv_buf *doc)
{
    resp_clear_body(&r->resp);
    lv_buf_free(&r->resp.body);
    r->resp.body = *doc;
    lv_buf_init(doc);
    r->resp.status = status;
    fs3_resp_header(r, "Content-Type", "application/xml");
}

/* An error from the authentication stage, with the fields auth.c gathered. */
static void resp_auth_error(fs3_req *r, fs3_code code)
{
    fs3_xml_field f[4];
    int n = 0;
    for (int i = 0; i < r->auth.n_detail; i++) {
        if (r->auth.detail_value[i].oom)
            continue;
        f[n].name = r->auth.detail_name[i];
        f[n].value = r->auth.detail_value[i].data ? r->auth.detail_value[i].data : "";
        f[n].len = r->auth.detail_value[i].len;
        n++;
    }
    fs3_resp_error(r, code, r->auth.message[0] ? r->auth.message : NULL, f, (size_t)n);
}

/* ---- request lifecycle ----------------------------------------------------------------------- */

static void request_free(fs3_req *r);

static void free_cb(void *p)
{
    lv_free(p);
}

static void unref_cb(void *p)
{
    fs3_object_unref(p);
}

/* Stage 6: hands the response to libmicrohttpd. */
static enum MHD_Result send_response(fs3_server *srv, fs3_req *r)
{
    (void)srv;
    r->phase = 2;
    fs3_resp *resp = &r->resp;
    struct MHD_Response *m = NULL;
    if (resp->body.oom || resp->headers.oom)
        return MHD_NO; /* out of memory building the answer: drop the connection */
    r->bytes_out = resp->fd >= 0 || resp->mem_obj ? resp->len : resp->body.len;
    /* FS3_STAGE_SENDING: a truncated or paced body (the fault's own reader), if one; else ours */
    m = fs3_faults_response(r);
    if (!m && resp->fd >= 0 && resp->len > 0) {
        m = MHD_create_response_from_fd_at_offset64(resp->len, resp->fd, (int64_t)resp->off);
        if (m)
            resp->fd = -1; /* libmicrohttpd closes it */
    } else if (!m && resp->mem_obj && resp->len > 0) {
        m = MHD_create_response_from_buffer_with_free_callback_cls(
            (size_t)resp->len, (void *)(resp->mem + resp->off), unref_cb, resp->mem_obj);
        if (m)
            resp->mem_obj = NULL; /* released by unref_cb */
    } else if (!m && resp->body.len > 0) {
        size_t len = resp->body.len;
        char *data = lv_buf_take(&resp->body);
        if (data) {
            m = MHD_create_response_from_buffer_with_free_callback_cls(len, data, free_cb, data);
            if (!m)
                lv_free(data);
        }
    } else if (!m) {
        m = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!m)
        return MHD_NO;
    char id2[40];
    snprintf(id2, sizeof id2, "fakes3/%s", r->id);
    MHD_add_response_header(m, "x-amz-request-id", r->id);
    MHD_add_response_header(m, "x-amz-id-2", id2);
    MHD_add_response_header(m, "Server", "fakes3");
    const char *p = resp->headers.data, *end = p ? p + resp->headers.len : NULL;
    while (p && p < end) {
        const char *name = p;
        const char *value = name + strlen(name) + 1;
        MHD_add_response_header(m, name, value);
        p = value + strlen(value) + 1;
    }
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)resp->status, m);
    MHD_destroy_response(m);
    return ok;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    fs3_req *r = cls;
    if (r->n_headers == r->cap_headers) {
        size_t cap = r->cap_headers ? r->cap_headers * 2 : 32;
        sigv4_header *h = lv_realloc(r->headers, cap * sizeof *h);
        if (!h) {
            r->headers_oom = 1;
            return MHD_NO;
        }
        r->headers = h;
        r->cap_headers = cap;
    }
    r->headers[r->n_headers].name = key;
    r->headers[r->n_headers].value = value ? value : "";
    r->n_headers++;
    return MHD_YES;
}

static fs3_auth_input auth_input(fs3_req *r)
{
    fs3_auth_input in = {
        .method = r->method,
        .path = r->path,
        .raw_path = r->raw_path,
        .query = r->raw_query,
        .headers = r->headers,
        .n_headers = r->n_headers,
        .now_ms = r->start_ms,
    };
    return in;
}

/*
 * A STREAMING-* payload: the body is aws-chunked. Sets up the decoder, which checks every chunk
 * signature against the request's own (the seed) when the payload is signed.
 */
static fs3_code begin_streaming(fs3_server *srv, fs3_req *r)
{
    const char *ph = r->auth.payload_hash;
    if (r->route.op != FS3_OP_PUT_OBJECT && r->route.op != FS3_OP_UPLOAD_PART) {
        fs3_resp_error(r, FS3_NOT_IMPLEMENTED,
                       "aws-chunked (STREAMING-*) payloads are accepted on PutObject and "
                       "UploadPart only.",
                       NULL, 0);
        return FS3_NOT_IMPLEMENTED;
    }
    const char *dl = fs3_req_header(r, "x-amz-decoded-content-length");
    char *end = NULL;
    long long v = dl ? strtoll(dl, &end, 10) : -1;
    if (!dl || !*dl || *end || v < 0) {
        fs3_resp_error(r, FS3_MISSING_CONTENT_LENGTH,
                       "A streaming upload needs a valid x-amz-decoded-content-length.", NULL, 0);
        return FS3_MISSING_CONTENT_LENGTH;
    }
    r->decoded_length = v;
    int is_signed = strcmp(ph, SIGV4_STREAMING_PAYLOAD) == 0 ||
                    strcmp(ph, SIGV4_STREAMING_PAYLOAD_TRAILER) == 0;
    fs3_chunked_params p = {
        /* with --anonymous there is no key to check the chunks with: they are only decoded */
        .signed_chunks = is_signed && !srv->cfg.anonymous,
        .trailer = strstr(ph, "-TRAILER") != NULL,
        .signing_key = r->auth.computed.signing_key,
        .amz_date = r->auth.claim.amz_date,
        .scope = r->auth.computed.scope.data,
        .seed_signature = r->auth.computed.signature,
    };
    r->chunked = fs3_chunked_new(&p);
    if (!r->chunked) {
        fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
        return FS3_INTERNAL_ERROR;
    }
    return FS3_OK;
}

/* Per-connection memory of libmicrohttpd: the request line and headers must fit in it (less a
 * little for its own records); beyond, it answers 414 or 431 itself (see check_framing). */
#define CONN_MEMORY_LIMIT (128 * 1024)

/*
 * 1 if the request line held a NUL byte. libmicrohttpd hands the URI over as a C string, so such
 * a URI reaches uri_log cut short at the NUL ("PUT /b/a<NUL>b" would become key "a"). Version 0.9
 * parses the request line in place: the URI, then one separator, then the version, all in one
 * buffer, and it decodes the URI in place, so url is where the URI began on the wire and the
 * version starts one byte after its end. A URI shorter than that gap was cut by a NUL. Later
 * versions are not known to keep that layout: there the check is skipped (they may reject the
 * NUL themselves; otherwise the URI is taken up to it).
 */
static int request_line_has_nul(const char *url, const char *version, size_t uri_len)
{
#if MHD_VERSION < 0x01000000
    if (!url || !version || !*version)
        return 0;
    uintptr_t u = (uintptr_t)url, v = (uintptr_t)version;
    return v > u && v - u <= CONN_MEMORY_LIMIT && v - u - 1 > uri_len;
#else
    (void)url;
    (void)version;
    (void)uri_len;
    return 0;
#endif
}

/*
 * HTTP framing that libmicrohttpd 0.9 lets through but a server must not guess at (RFC 9112
 * section 6): a request line cut by a NUL, Content-Length headers that disagree (libmicrohttpd
 * would read the first and take the rest of the body for the next request), a Content-Length of
 * 2^64-1 (libmicrohttpd's marker for "unknown": it would wait forever), Transfer-Encoding
 * beside Content-Length (the request-smuggling shape), and a transfer coding other than chunked
 * (libmicrohttpd would wait for the end of a body it cannot delimit until the client gives up).
 * Each is answered at once, before any body is read; libmicrohttpd then closes the connection,
 * as the RFC asks, since what follows cannot be framed.
 *
 * What libmicrohttpd rejects itself never reaches fakes3, and gets its own small HTML page, not
 * an S3 error document (it has no hook to replace them): a request line without a version or
 * with HTTP/0.9 (400), an HTTP version other than 1.x (505), a header line without a colon (400),
 * a Content-Length that is not a number (400) or over 2^64 (413), malformed chunked framing (400
 * or 413), a request line or header section that does not fit in CONN_MEMORY_LIMIT (414, 431).
 */
static fs3_code check_framing(fs3_req *r, const char *url, const char *version)
{
    if (request_line_has_nul(url, version, strlen(r->raw_uri))) {
        snprintf(r->err, sizeof r->err, "NUL byte in the request line");
        fs3_resp_error(r, FS3_INVALID_REQUEST, "The request line contains a NUL byte.", NULL, 0);
        return FS3_INVALID_REQUEST;
    }
    const char *cl = NULL, *te = NULL;
    int n_te = 0;
    for (size_t i = 0; i < r->n_headers; i++) {
        const sigv4_header *h = &r->headers[i];
        if (strcasecmp(h->name, "Content-Length") == 0) {
            if (cl && strcmp(cl, h->value) != 0) {
                snprintf(r->err, sizeof r->err, "Content-Length %s and %s", cl, h->value);
                fs3_resp_error(r, FS3_INVALID_REQUEST,
                               "Multiple Content-Length headers with different values.", NULL, 0);
                return FS3_INVALID_REQUEST;
            }
            cl = h->value;
            /* libmicrohttpd has taken it for a number below 2^64 (else it answered 400 or 413
             * itself); 2^64-1 though is its "length unknown" marker, with which it would read a
             * body that never ends */
            if (strtoull(cl, NULL, 10) == UINT64_MAX) {
                snprintf(r->err, sizeof r->err, "Content-Length %s", cl);
                fs3_resp_error(r, FS3_INVALID_ARGUMENT, "Content-Length is too large.", NULL, 0);
                return FS3_INVALID_ARGUMENT;
            }
        } else if (strcasecmp(h->name, "Transfer-Encoding") == 0) {
            te = h->value;
            n_te++;
        }
    }
    if (!te)
        return FS3_OK;
    if (cl) {
        snprintf(r->err, sizeof r->err, "Transfer-Encoding %s with Content-Length %s", te, cl);
        fs3_resp_error(r, FS3_INVALID_REQUEST,
                       "A request cannot have both Transfer-Encoding and Content-Length.", NULL, 0);
        return FS3_INVALID_REQUEST;
    }
    /* libmicrohttpd decodes exactly one coding, "chunked", and only from the first header */
    if (n_te > 1 || strcasecmp(te, "chunked") != 0) {
        fs3_xml_field f = {"Header", "Transfer-Encoding", 17};
        snprintf(r->err, sizeof r->err, "Transfer-Encoding %s", te);
        fs3_resp_error(r, FS3_NOT_IMPLEMENTED,
                       "A header you provided implies functionality that is not implemented "
                       "(Transfer-Encoding other than chunked).",
                       &f, 1);
        return FS3_NOT_IMPLEMENTED;
    }
    return FS3_OK;
}

static fs3_code begin_checks(fs3_server *srv, fs3_req *r);

static int is_admin(fs3_op op)
{
    return op == FS3_OP_ADMIN_HEALTH || op == FS3_OP_ADMIN_STATS || op == FS3_OP_ADMIN_FAULTS;
}

/* Stage 1, the fault decision, stages 2-3. GO_ON to read the body; ANSWER: the answer (an error)
 * is in r->resp, to be sent without reading the body; DROP: close the connection. */
static fs3_fault_step begin(fs3_server *srv, fs3_req *r, const char *url, const char *version)
{
    fs3_code rc;
    /* 1. parse and route */
    const char *q = strchr(r->raw_uri, '?');
    size_t plen = q ? (size_t)(q - r->raw_uri) : strlen(r->raw_uri);
    r->raw_path = lv_malloc(strlen(r->raw_uri) + 2);
    r->path = lv_malloc(plen + 1);
    if (!r->raw_path || !r->path) {
        fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
        return FS3_FAULT_ANSWER;
    }
    memcpy(r->raw_path, r->raw_uri, plen);
    r->raw_path[plen] = '\0';
    if (q) {
        r->raw_query = r->raw_path + plen + 1;
        strcpy(r->raw_query, q + 1);
    }
    r->path_len = lv_uri_decode(r->raw_path, plen, r->path);
    if (memchr(r->path, '\0', r->path_len)) {
        fs3_resp_error(r, FS3_INVALID_ARGUMENT, "Object keys and paths cannot contain NUL.", NULL,
                       0);
        return FS3_FAULT_ANSWER;
    }
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_header, r);
    if (r->headers_oom) {
        fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
        return FS3_FAULT_ANSWER;
    }
    if (check_framing(r, url, version) != FS3_OK)
        return FS3_FAULT_ANSWER;
    if (fs3_query_parse(r->raw_query, &r->q) != 0) {
        fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
        return FS3_FAULT_ANSWER;
    }
    rc = fs3_route_request(r->method, r->path, r->path_len, &r->q, fs3_req_header(r, "Host"),
                           srv->cfg.vhost_domain, fs3_req_header(r, "x-amz-copy-source"), &r->route,
                           r->err);
    if (rc != FS3_OK) {
        fs3_resp_error(r, rc, NULL, NULL, 0);
        return FS3_FAULT_ANSWER;
    }
    /* the fault engine decides once, knowing the operation, bucket and key; what acts before the
     * body (delays, error, reset, close, stall, down, crash before) acts now */
    if (!is_admin(r->route.op)) {
        fs3_faults_decide(r);
        fs3_fault_step step = fs3_faults_at(r, FS3_STAGE_ROUTED);
        if (step != FS3_FAULT_GO_ON)
            return step;
    }
    return begin_checks(srv, r) == FS3_OK ? FS3_FAULT_GO_ON : FS3_FAULT_ANSWER;
}

/* Stages 2-3. FS3_OK to go on and read the body; otherwise the error is in r->resp. */
static fs3_code begin_checks(fs3_server *srv, fs3_req *r)
{
    fs3_code rc;
    /* 2. authenticate */
    fs3_auth_input in = auth_input(r);
    rc = fs3_auth_check(&srv->auth, &in, &r->auth, r->err);
    if (rc != FS3_OK) {
        resp_auth_error(r, rc);
        return rc;
    }
    /* 3. the operation's own checks, and where the body goes */
    const char *ph = r->auth.payload_hash;
    r->decoded_length = -1;
    if (strncmp(ph, "STREAMING-", 10) == 0 && (rc = begin_streaming(srv, r)) != FS3_OK)
        return rc;
    if (r->auth.needs_body_hash || strlen(ph) == SIGV4_HEX_LEN) {
        r->sha256 = EVP_MD_CTX_new();
        if (!r->sha256 || !EVP_DigestInit_ex(r->sha256, EVP_sha256(), NULL)) {
            fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
            return FS3_INTERNAL_ERROR;
        }
    }
    rc = fs3_op_begin(r);
    if (rc != FS3_OK && r->resp.status == 0)
        fs3_resp_error(r, rc, NULL, NULL, 0);
    return rc;
}

/* Stage 4, after any aws-chunked decoding: body bytes to where the operation wants them. */
static fs3_code sink(void *ctx, const char *data, size_t n)
{
    fs3_req *r = ctx;
    fs3_code rc = FS3_OK;
    r->body_bytes += n;
    if (r->md5)
        EVP_DigestUpdate(r->md5, data, n);
    switch (r->body_kind) {
    case FS3_BODY_DISCARD:
        break;
    case FS3_BODY_BUFFER:
        if (r->body.len + n > r->body_limit) {
            snprintf(r->body_err, sizeof r->body_err, "request body over %zu bytes", r->body_limit);
            lv_buf_free(&r->body);
            rc = FS3_MALFORMED_XML;
        } else {
            lv_buf_append(&r->body, data, n);
        }
        break;
    case FS3_BODY_PUT:
        if (r->body_bytes > r->cfg->max_object_size) {
            snprintf(r->body_err, sizeof r->body_err, "upload over %llu bytes",
                     (unsigned long long)r->cfg->max_object_size);
            rc = FS3_ENTITY_TOO_LARGE;
        } else {
            rc = fs3_put_write(r->put, data, n, r->body_err);
        }
        break;
    }
    return rc;
}

/* Stage 4: one piece of the body as received. */
static void receive(fs3_req *r, const char *data, size_t n)
{
    r->bytes_in += n;
    if (r->body_code != FS3_OK)
        return; /* failed already: drain */
    if (r->sha256)
        EVP_DigestUpdate(r->sha256, data, n);
    if (r->chunked)
        r->body_code = fs3_chunked_feed(r->chunked, data, n, sink, r, r->body_err);
    else
        r->body_code = sink(r, data, n);
    if (r->body_code != FS3_OK && r->put) {
        fs3_put_abort(r->put);
        r->put = NULL;
    }
}

/* The end of an aws-chunked body: complete, of the announced length; its checksum trailers are
 * stored like the headers. */
static fs3_code finish_streaming(fs3_req *r)
{
    fs3_code rc = fs3_chunked_finish(r->chunked, r->err);
    if (rc != FS3_OK)
        return rc;
    if (r->decoded_length >= 0 && (uint64_t)r->decoded_length != r->body_bytes) {
        snprintf(r->err, sizeof r->err, "decoded %llu bytes, x-amz-decoded-content-length %lld",
                 (unsigned long long)r->body_bytes, (long long)r->decoded_length);
        return FS3_INCOMPLETE_BODY;
    }
    size_t n = 0;
    const fs3_kv *t = fs3_chunked_trailers(r->chunked, &n);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(t[i].name, "x-amz-checksum-", 15) != 0)
            continue;
        fs3_kv *h = lv_realloc(r->store_headers, (r->n_store_headers + 1) * sizeof *h);
        if (!h)
            return FS3_INTERNAL_ERROR;
        r->store_headers = h;
        h[r->n_store_headers].name = lv_malloc(strlen(t[i].name) + 1);
        h[r->n_store_headers].value = lv_malloc(strlen(t[i].value) + 1);
        if (!h[r->n_store_headers].name || !h[r->n_store_headers].value) {
            lv_free(h[r->n_store_headers].name);
            lv_free(h[r->n_store_headers].value);
            return FS3_INTERNAL_ERROR;
        }
        strcpy(h[r->n_store_headers].name, t[i].name);
        strcpy(h[r->n_store_headers].value, t[i].value);
        r->n_store_headers++;
    }
    return FS3_OK;
}

/* Stage 5: the body is complete: verify it, then apply the operation. */
static void finish(fs3_server *srv, fs3_req *r)
{
    if (r->body_code != FS3_OK) {
        snprintf(r->err, sizeof r->err, "%s", r->body_err);
        fs3_resp_error(r, r->body_code, NULL, NULL, 0);
        return;
    }
    if (r->body.oom) {
        fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
        return;
    }
    if (r->chunked) {
        fs3_code rc = finish_streaming(r);
        if (rc != FS3_OK) {
            fs3_resp_error(r, rc, NULL, NULL, 0);
            return;
        }
    }
    if (r->sha256) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        char hex[SIGV4_HEX_LEN + 1];
        EVP_DigestFinal_ex(r->sha256, md, &mdlen);
        lv_hex_encode(md, mdlen, hex);
        if (r->auth.needs_body_hash) {
            fs3_auth_input in = auth_input(r);
            fs3_code rc = fs3_auth_finish(&srv->auth, &in, hex, &r->auth, r->err);
            if (rc != FS3_OK) {
                resp_auth_error(r, rc);
                return;
            }
        } else if (strcasecmp(hex, r->auth.payload_hash) != 0) {
            fs3_xml_field f[2] = {
                {"ClientComputedContentSHA256", r->auth.payload_hash, strlen(r->auth.payload_hash)},
                {"S3ComputedContentSHA256", hex, strlen(hex)},
            };
            snprintf(r->err, sizeof r->err, "body SHA-256 %s", hex);
            fs3_resp_error(r, FS3_XAMZ_CONTENT_SHA256_MISMATCH, NULL, f, 2);
            return;
        }
    }
    fs3_op_apply(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    fs3_server *srv = cls;
    fs3_req *r = *req_cls;
    if (!r)
        return MHD_NO; /* uri_log could not allocate */
    if (r->phase == 0) {
        r->phase = 1;
        r->conn = conn;
        r->method = method;
        if (server_down(srv)) { /* a connection opened before the server went down */
            fs3_faults_refuse(r);
            return MHD_NO;
        }
        switch (begin(srv, r, url, version)) {
        case FS3_FAULT_GO_ON:
            return MHD_YES;
        case FS3_FAULT_ANSWER:
            return send_response(srv, r); /* without reading the body */
        default:
            return MHD_NO;
        }
    }
    if (r->phase == 2) { /* answered already; whatever body still comes is dropped */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        receive(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    finish(srv, r);
    if (fs3_faults_at(r, FS3_STAGE_STORED) == FS3_FAULT_DROP)
        return MHD_NO;
    return send_response(srv, r);
}

/*
 * One per connection (libmicrohttpd's socket context, made and freed by on_connection): the
 * request uri_log made on it, until on_completed takes it back. libmicrohttpd 0.9.75 does not
 * always call on_completed for a request it gives up on itself: when a query's parameters fill
 * its per-connection memory after uri_log ran, it closes the connection without a word, and the
 * request would leak (a client could repeat that without end). So a request still here when the
 * next one starts on the connection, or when the connection closes, is freed then.
 */
typedef struct fs3_conn {
    fs3_req *req;
} fs3_conn;

static fs3_conn *conn_state(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        conn ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
    return ci ? ci->socket_context : NULL;
}

/* Creates the request before libmicrohttpd decodes the URI; the result becomes *req_cls. */
static void *uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
    fs3_server *srv = cls;
    fs3_conn *c = conn_state(conn);
    if (c) { /* one abandoned before this one started: nothing refers to it any more */
        request_free(c->req);
        c->req = NULL;
    }
    fs3_req *r = lv_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    size_t n = strlen(uri);
    r->raw_uri = lv_malloc(n + 1);
    if (!r->raw_uri) {
        lv_free(r);
        return NULL;
    }
    memcpy(r->raw_uri, uri, n + 1);
    r->srv = srv;
    r->cfg = &srv->cfg;
    r->store = srv->store;
    r->start_ms = srv->cfg.clock(srv->cfg.clock_ctx);
    unsigned long seq = atomic_fetch_add(&srv->seq, 1);
    snprintf(r->id, sizeof r->id, "%016llX", (unsigned long long)(srv->id_base + seq));
    r->resp.fd = -1;
    lv_buf_init(&r->resp.headers);
    lv_buf_init(&r->resp.body);
    lv_buf_init(&r->body);
    fs3_auth_result_init(&r->auth);
    if (c)
        c->req = r;
    return r;
}

/* Appends s as the inside of a JSON string. */
static void json_str(lv_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            lv_buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            lv_buf_printf(b, "\\u%04x", c);
        else
            lv_buf_putc(b, (char)c);
    }
}

static void log_request(fs3_server *srv, fs3_req *r, enum MHD_RequestTerminationCode toe)
{
    int64_t now = srv->cfg.clock(srv->cfg.clock_ctx);
    char when[40];
    fs3_format_iso8601(now, when, sizeof when);
    lv_buf b;
    lv_buf_init(&b);
    lv_buf_printf(&b,
                  "{\"time\":\"%s\",\"request_id\":\"%s\",\"method\":\"%s\",\"operation\":\"%s\"",
                  when, r->id, r->method ? r->method : "", fs3_op_name(r->route.op));
    lv_buf_puts(&b, ",\"bucket\":\"");
    lv_buf_uri_encode(&b, r->route.bucket, strlen(r->route.bucket), 1);
    lv_buf_puts(&b, "\",\"key\":\"");
    if (r->route.key)
        lv_buf_uri_encode(&b, r->route.key, r->route.key_len, 1);
    const char *range = r->conn ? fs3_req_header(r, "Range") : NULL;
    lv_buf_puts(&b, "\",\"range\":\"");
    if (range)
        lv_buf_uri_encode(&b, range, strlen(range), 1);
    const char *code = r->code ? fs3_code_name(r->code) : "";
    if (!r->code && r->fault.action == CHAOS_ERROR)
        code = r->fault.code;
    lv_buf_printf(&b, "\",\"status\":%d,\"error\":\"", r->resp.status);
    json_str(&b, code);
    lv_buf_printf(&b,
                  "\",\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%lld,\"completed\":%s,"
                  "\"fault\":\"",
                  (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out,
                  (long long)(now - r->start_ms),
                  toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "true" : "false");
    json_str(&b, r->fault.summary);
    lv_buf_puts(&b, "\"}\n");
    if (!b.oom) {
        /* one write per line: lines from different threads never interleave (O_APPEND) */
        ssize_t w = write(srv->log_fd, b.data, b.len);
        (void)w;
    }
    lv_buf_free(&b);
}

void fs3_server_log_now(fs3_req *r)
{
    if (r->srv->log_fd >= 0)
        log_request(r->srv, r, MHD_REQUEST_TERMINATED_WITH_ERROR);
}

/* Frees a request and everything it holds (an upload cut off mid-body: its temp file goes). */
static void request_free(fs3_req *r)
{
    if (!r)
        return;
    fs3_put_abort(r->put);
    fs3_chunked_free(r->chunked);
    if (r->md5)
        EVP_MD_CTX_free(r->md5);
    if (r->sha256)
        EVP_MD_CTX_free(r->sha256);
    for (size_t i = 0; i < r->n_store_headers; i++) {
        lv_free(r->store_headers[i].name);
        lv_free(r->store_headers[i].value);
    }
    lv_free(r->store_headers);
    resp_clear_body(&r->resp);
    lv_buf_free(&r->resp.body);
    lv_buf_free(&r->resp.headers);
    lv_buf_free(&r->body);
    fs3_auth_result_free(&r->auth);
    fs3_query_free(&r->q);
    lv_free(r->headers);
    lv_free(r->path);
    lv_free(r->raw_path);
    lv_free(r->raw_uri);
    lv_free(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    fs3_server *srv = cls;
    fs3_req *r = *req_cls;
    if (!r)
        return;
    *req_cls = NULL;
    fs3_conn *c = conn_state(conn);
    if (c && c->req == r)
        c->req = NULL;
    if (r->phase && r->resp.status >= 100 && r->resp.status < 600 &&
        (unsigned)r->route.op < FS3_OP_COUNT)
        atomic_fetch_add(&srv->counts[r->route.op][r->resp.status - 100], 1);
    if (srv->log_fd >= 0 && r->phase)
        log_request(srv, r, toe);
    request_free(r);
}

/* A connection opens (its state is made) or has closed (its state goes, with any request that
 * libmicrohttpd abandoned on it). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)conn;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = lv_calloc(1, sizeof(fs3_conn)); /* NULL: no safety net, no harm */
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        fs3_conn *c = *socket_context;
        request_free(c->req);
        lv_free(c);
        *socket_context = NULL;
    }
}

/* While the server is down (a down rule fired), every new connection is refused: libmicrohttpd
 * closes it at once, before reading anything. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addr;
    (void)addrlen;
    return server_down(cls) ? MHD_NO : MHD_YES;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fputs("fakes3: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* ---- start and stop -------------------------------------------------------------------------- */

/* Splits "host:port", "[v6]:port" or ":port" (host 127.0.0.1). */
static lv_err split_listen(const char *s, char *host, size_t hcap, char *port, size_t pcap,
                           char *err)
{
    const char *colon;
    size_t hlen;
    const char *h = s;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return lv_fail(err, LV_EINVAL, "--listen %s: want [ADDRESS]:PORT for IPv6", s);
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            return lv_fail(err, LV_EINVAL, "--listen %s: want ADDRESS:PORT", s);
        hlen = (size_t)(colon - s);
    }
    const char *p = colon + 1;
    if (!*p || strlen(p) >= pcap || strspn(p, "0123456789") != strlen(p) || atol(p) > 65535)
        return lv_fail(err, LV_EINVAL, "--listen %s: bad port \"%s\"", s, p);
    if (hlen >= hcap)
        return lv_fail(err, LV_EINVAL, "--listen %s: address too long", s);
    if (hlen == 0) {
        snprintf(host, hcap, "127.0.0.1");
    } else {
        memcpy(host, h, hlen);
        host[hlen] = '\0';
    }
    snprintf(port, pcap, "%s", p);
    return LV_OK;
}

static lv_err bind_listen(fs3_server *srv, char *err)
{
    char host[256], port[16];
    lv_err rc = split_listen(srv->cfg.listen, host, sizeof host, port, sizeof port, err);
    if (rc)
        return rc;
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0)
        return lv_fail(err, LV_EINVAL, "--listen %s: cannot resolve \"%s\": %s", srv->cfg.listen,
                       host, gai_strerror(gai));
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        rc = lv_fail(err, LV_EIO, "socket: %s", strerror(errno));
        goto done;
    }
    int one = 1;
    /* SO_REUSEADDR lets a restart bind while old connections linger in TIME_WAIT; on Linux it
     * does not let two servers listen on one port, so a taken port still fails below */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        int e = errno;
        if (e == EADDRINUSE)
            rc = lv_fail(err, LV_EIO,
                         "cannot listen on %s: the address is already in use (another fakes3 or "
                         "server holds the port; pick another with --listen)",
                         srv->cfg.listen);
        else if (e == EACCES)
            rc = lv_fail(err, LV_EIO, "cannot listen on %s: permission denied", srv->cfg.listen);
        else if (e == EADDRNOTAVAIL)
            rc = lv_fail(err, LV_EIO, "cannot listen on %s: not an address of this machine",
                         srv->cfg.listen);
        else
            rc = lv_fail(err, LV_EIO, "cannot listen on %s: %s", srv->cfg.listen, strerror(e));
        close(fd);
        goto done;
    }
    if (listen(fd, 1024) != 0) {
        rc = lv_fail(err, LV_EIO, "listen on %s: %s", srv->cfg.listen, strerror(errno));
        close(fd);
        goto done;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char abuf[INET6_ADDRSTRLEN] = "?";
    int bound_port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, abuf, sizeof abuf);
            bound_port = ntohs(s6->sin6_port);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, abuf, sizeof abuf);
            bound_port = ntohs(s4->sin_port);
        }
    }
    snprintf(srv->address, sizeof srv->address, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d",
             abuf, bound_port);
    srv->listen_fd = fd;
done:
    freeaddrinfo(ai);
    return rc;
}

lv_err fs3_server_bind(const fs3_config *cfg, fs3_server **out, char *err)
{
    *out = NULL;
    fs3_server *srv = lv_calloc(1, sizeof *srv);
    if (!srv)
        return lv_fail(err, LV_ENOMEM, "out of memory");
    srv->cfg = *cfg;
    srv->listen_fd = -1;
    srv->log_fd = -1;
    srv->auth.access_key = cfg->access_key;
    srv->auth.secret_key = cfg->secret_key;
    srv->auth.region = cfg->region;
    srv->auth.anonymous = cfg->anonymous;
    srv->id_base = (uint64_t)cfg->clock(cfg->clock_ctx) << 16;
    atomic_init(&srv->seq, 0);
    atomic_init(&srv->down_until, 0);
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) {
        lv_free(srv);
        return lv_fail(err, LV_ENOMEM, "out of memory");
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&srv->sleep_cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        lv_free(srv);
        return lv_fail(err, LV_ENOMEM, "out of memory");
    }
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&srv->sleep_mu, NULL);
    srv->sleep_init = 1;
    lv_err rc = bind_listen(srv, err);
    if (rc == LV_OK && cfg->log_path) {
        srv->log_fd = open(cfg->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (srv->log_fd < 0)
            rc = lv_fail(err, LV_EIO, "cannot open log %s: %s", cfg->log_path, strerror(errno));
    }
    if (rc != LV_OK) {
        fs3_server_stop(srv);
        return rc;
    }
    *out = srv;
    return LV_OK;
}

lv_err fs3_server_serve(fs3_server *srv, fs3_store *st, char *err)
{
    const fs3_config *cfg = &srv->cfg;
    srv->store = st;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (strchr(srv->address, '['))
        flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(
        flags, 0, accept_policy, srv, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, MHD_OPTION_URI_LOG_CALLBACK, uri_log, srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        cfg->idle_timeout ? cfg->idle_timeout : (unsigned)FS3_DEFAULT_IDLE_TIMEOUT,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY_LIMIT, MHD_OPTION_END);
    if (!srv->daemon)
        return lv_fail(err, LV_EIO, "cannot start the HTTP server on %s", srv->address);
    return LV_OK;
}

const char *fs3_server_address(const fs3_server *srv)
{
    return srv->address;
}

unsigned fs3_server_connections(const fs3_server *srv)
{
    if (!srv->daemon)
        return 0;
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info ? info->num_connections : 0;
}

void fs3_server_stop(fs3_server *srv)
{
    if (!srv)
        return;
    if (srv->sleep_init) { /* wake every delayed or stalled request first: their threads are joined
                            */
        pthread_mutex_lock(&srv->sleep_mu);
        srv->stopping = 1;
        pthread_cond_broadcast(&srv->sleep_cv);
        pthread_mutex_unlock(&srv->sleep_mu);
    }
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon); /* ends connections, joins their threads, closes the socket */
    else if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->log_fd >= 0)
        close(srv->log_fd);
    if (srv->sleep_init) {
        pthread_cond_destroy(&srv->sleep_cv);
        pthread_mutex_destroy(&srv->sleep_mu);
    }
    lv_free(srv);
}
