/*
 * faults: the fault engine's decisions carried out on the wire (see faults.h for what each action
 * does at which stage, request.h for the stages).
 *
 * Resets: SO_LINGER {1, 0} on the connection's socket, then connect(AF_UNSPEC), which on Linux
 * disconnects a TCP socket at once with a RST (tcp_disconnect), whatever libmicrohttpd does with
 * the socket afterwards (its shutdown(SHUT_WR) before closing would otherwise send a FIN first,
 * and the client would see an empty reply rather than a reset). The linger 0 makes the close a
 * RST too, should the disconnect not be available.
 *
 * Truncate and bandwidth: a libmicrohttpd callback response of the body's full size (so the
 * Content-Length is announced), whose reader serves the body from where fs3_resp had it (file,
 * object in memory, or buffer). Truncate's reader returns MHD_CONTENT_READER_END_WITH_ERROR at
 * BYTES, which makes libmicrohttpd close the connection mid-body; bandwidth's reader hands out
 * slices of about 1/50 s of RATE and sleeps until each slice is due, so the body takes
 * size / RATE seconds from its first byte.
 *
 * Threads: everything runs on the request's connection thread (the readers too: one thread per
 * connection); sleeps go through fs3_server_sleep so a stopping server wakes them.
 */
#include "faults.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "request.h"

/* A stall checks this often whether its client has gone away. */
#define STALL_SLICE_US 100000

static const char *req_header(void *ctx, const char *name)
{
    return fs3_req_header(ctx, name);
}

void fs3_faults_decide(fs3_req *r)
{
    r->fault.action = CHAOS_NONE;
    r->fault.summary[0] = '\0';
    chaos_engine *e = r->cfg->faults;
    if (!e)
        return;
    /* route.key points into the decoded path, which ends with the key and a NUL */
    const char *key = r->route.key && r->route.key[r->route.key_len] == '\0' ? r->route.key : NULL;
    chaos_request q = {
        .op = fs3_op_name(r->route.op),
        .method = r->method ? r->method : "",
        .bucket = r->route.bucket,
        .key = key,
        .has_range = fs3_req_header(r, "Range") != NULL,
        .header = req_header,
        .header_ctx = r,
    };
    chaos_engine_decide(e, &q, &r->fault);
}

static int conn_fd(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        conn ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
    return ci ? ci->connect_fd : -1;
}

void fs3_faults_reset(struct MHD_Connection *conn)
{
    int fd = conn_fd(conn);
    if (fd < 0)
        return;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    struct sockaddr sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_family = AF_UNSPEC;
    (void)connect(fd, &sa, sizeof sa);
}

void fs3_faults_refuse(fs3_req *r)
{
    r->fault.action = CHAOS_DOWN;
    snprintf(r->fault.summary, sizeof r->fault.summary, "down: connection refused");
    fs3_server_count_fault(r->srv, CHAOS_DOWN);
    fs3_faults_reset(r->conn);
}

void fs3_faults_error(fs3_req *r, int status, const char *code, const char *message)
{
    /* an empty error document for this request, then the fields fs3_resp_error would write, with
     * a code of the rule's choosing (s3err.h knows only fakes3's own) */
    fs3_resp_error(r, FS3_INTERNAL_ERROR, NULL, NULL, 0);
    lv_buf_reset(&r->resp.body);
    r->code = FS3_OK; /* the log takes the code from the decision */
    r->resp.status = status;
    lv_buf *b = &r->resp.body;
    fs3_xml_decl(b);
    lv_buf_puts(b, "<Error>");
    fs3_xml_elems(b, "Code", code);
    fs3_xml_elems(b, "Message", message);
    fs3_xml_elems(b, "Resource", r->raw_path ? r->raw_path : "/");
    fs3_xml_elems(b, "RequestId", r->id);
    fs3_xml_elems(b, "HostId", "fakes3");
    lv_buf_puts(b, "</Error>");
}

/* The client closed its end (or the connection broke) while we held the request. */
static int client_gone(struct MHD_Connection *conn)
{
    int fd = conn_fd(conn);
    if (fd < 0)
        return 0;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Holds the request for us (< 0: without end). 0 to serve it afterwards; 1 when the server is
 * stopping or the client left. */
static int stall(fs3_req *r, int64_t us)
{
    int64_t end = us < 0 ? INT64_MAX : mono_us() + us;
    for (;;) {
        int64_t left = end - mono_us();
        if (left <= 0)
            return 0;
        if (fs3_server_sleep(r->srv, left < STALL_SLICE_US ? left : STALL_SLICE_US))
            return 1;
        if (client_gone(r->conn))
            return 1;
    }
}

/* No cleanup, no flush: like kill -9 at this point. The log line goes first (one write(2)), so
 * the log shows which request it was. */
static _Noreturn void crash(fs3_req *r)
{
    fs3_server_log_now(r);
    raise(SIGKILL);
    _exit(137); /* not reached: SIGKILL cannot be caught or blocked */
}

fs3_fault_step fs3_faults_at(fs3_req *r, fs3_stage stage)
{
    chaos_decision *d = &r->fault;
    if (d->action == CHAOS_NONE)
        return FS3_FAULT_GO_ON;
    if (stage == FS3_STAGE_ROUTED) {
        fs3_server_count_fault(r->srv, d->action);
        if (d->delay_us > 0 && fs3_server_sleep(r->srv, d->delay_us))
            return FS3_FAULT_DROP;
        switch (d->action) {
        case CHAOS_ERROR:
            fs3_faults_error(r, d->status, d->code, d->message);
            return FS3_FAULT_ANSWER;
        case CHAOS_RESET:
            fs3_faults_reset(r->conn);
            return FS3_FAULT_DROP;
        case CHAOS_CLOSE:
            return FS3_FAULT_DROP;
        case CHAOS_DOWN:
            fs3_server_set_down(r->srv, d->duration_us);
            fs3_faults_reset(r->conn);
            return FS3_FAULT_DROP;
        case CHAOS_STALL:
            return stall(r, d->duration_us) ? FS3_FAULT_DROP : FS3_FAULT_GO_ON;
        case CHAOS_CRASH:
            if (!d->after_apply)
                crash(r);
            return FS3_FAULT_GO_ON;
        default: /* latency: the delay was all; the rest acts later */
            return FS3_FAULT_GO_ON;
        }
    }
    if (stage == FS3_STAGE_STORED) {
        if (d->action == CHAOS_LOST_RESPONSE) {
            fs3_faults_reset(r->conn);
            return FS3_FAULT_DROP;
        }
        if (d->action == CHAOS_CRASH && d->after_apply)
            crash(r);
    }
    return FS3_FAULT_GO_ON;
}

/* ---- truncate and bandwidth ------------------------------------------------------------------ */

typedef struct fault_body {
    fs3_server *srv;
    int fd;             /* >= 0: the body is in this file from off */
    fs3_object *obj;    /* not NULL: the body is at mem + off (a reference held) */
    const uint8_t *mem; /* the object's bytes, or data */
    char *data;         /* a buffer of ours (lv_malloc), or NULL */
    uint64_t off, len;  /* where and how long the body is */
    uint64_t limit;     /* truncate: bytes sent before the connection is closed */
    uint64_t rate;      /* bandwidth: bytes per second; 0 for none */
    int64_t start_us;   /* when the first byte was asked for */
} fault_body;

static ssize_t body_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    fault_body *b = cls;
    if (pos >= b->limit)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (pos >= b->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    uint64_t n = b->len - pos;
    if (n > b->limit - pos)
        n = b->limit - pos;
    if (n > max)
        n = max;
    if (b->rate) {
        uint64_t slice = b->rate / 50;
        if (slice < 1)
            slice = 1;
        if (n > slice)
            n = slice;
        if (pos == 0)
            b->start_us = mono_us();
        /* the slice is due when pos + n bytes at RATE have taken their time */
        int64_t due = b->start_us + (int64_t)((double)(pos + n) * 1e6 / (double)b->rate);
        int64_t wait = due - mono_us();
        if (wait > 0 && fs3_server_sleep(b->srv, wait))
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (b->fd >= 0) {
        ssize_t got = pread(b->fd, buf, (size_t)n, (off_t)(b->off + pos));
        return got > 0 ? got : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    memcpy(buf, b->mem + b->off + pos, (size_t)n);
    return (ssize_t)n;
}

static void body_free(void *cls)
{
    fault_body *b = cls;
    if (b->fd >= 0)
        close(b->fd);
    fs3_object_unref(b->obj);
    lv_free(b->data);
    lv_free(b);
}

struct MHD_Response *fs3_faults_response(fs3_req *r)
{
    const chaos_decision *d = &r->fault;
    if (d->action != CHAOS_TRUNCATE && d->action != CHAOS_BANDWIDTH)
        return NULL;
    fs3_resp *resp = &r->resp;
    uint64_t len = resp->fd >= 0 || resp->mem_obj ? resp->len : resp->body.len;
    if (len == 0)
        return NULL;
    if (d->action == CHAOS_TRUNCATE && d->bytes >= len)
        return NULL; /* nothing to cut: the whole body goes */
    fault_body *b = lv_calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->srv = r->srv;
    b->fd = -1;
    b->len = len;
    b->limit = d->action == CHAOS_TRUNCATE ? d->bytes : UINT64_MAX;
    b->rate = d->action == CHAOS_BANDWIDTH ? (d->bytes ? d->bytes : 1) : 0;
    size_t block = 64 * 1024;
    if (b->rate && b->rate / 50 < block)
        block = b->rate / 50 > 0 ? (size_t)(b->rate / 50) : 1;
    struct MHD_Response *m = MHD_create_response_from_callback(len, block, body_read, b, body_free);
    if (!m) {
        lv_free(b);
        return NULL;
    }
    if (d->action == CHAOS_TRUNCATE)
        r->bytes_out = d->bytes; /* what the log reports: the bytes sent, not those announced */
    /* the response is made: now take the body over (body_free releases it with the response) */
    if (resp->fd >= 0) {
        b->fd = resp->fd;
        b->off = resp->off;
        resp->fd = -1;
    } else if (resp->mem_obj) {
        b->obj = resp->mem_obj;
        b->mem = resp->mem;
        b->off = resp->off;
        resp->mem_obj = NULL;
        resp->mem = NULL;
    } else {
        b->data = lv_buf_take(&resp->body);
        b->mem = (const uint8_t *)b->data;
        if (!b->data) {
            MHD_destroy_response(m);
            return NULL;
        }
    }
    return m;
}
