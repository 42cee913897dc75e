/*
 * request: one S3 request as it moves through fakes3, shared by server.c (the HTTP lifecycle) and
 * ops.c (the S3 operations). Internal to fakes3.
 *
 * The stages, in order; server.c runs them, and faults.c carries out the fault engine's decision
 * at the points marked (see faults.h for what each action does where):
 *
 *   1. parse and route   the raw URI (before libmicrohttpd decodes it), path decoded once, query,
 *                        Host: which operation, bucket and key (router.c)
 *                                                  -> decide, FS3_STAGE_ROUTED (delays, error,
 *                                                     reset, close, stall, down, crash before)
 *   2. authenticate      SigV4 header or presigned query (auth.c)
 *   3. begin             the operation's checks that need no body, and where the body goes
 *                        (ops.c: fs3_op_begin)
 *   4. read the body     aws-chunked framing decoded and chunk signatures checked (chunked.c),
 *                        streamed to the store or a bounded buffer, hashed (MD5, SHA-256)
 *   5. apply             the operation against the store (ops.c: fs3_op_apply)
 *                                                  -> FS3_STAGE_STORED (lost-response,
 *                                                     crash after)
 *   6. send              the response is handed to libmicrohttpd
 *                                                  -> FS3_STAGE_SENDING (truncate, bandwidth)
 *
 * An error at any stage becomes S3's XML error document; an error before the body is answered at
 * once, without reading (or acknowledging with 100-continue) the body.
 *
 * Threads: a request belongs to its connection's thread for its whole life.
 */
#ifndef FS3_REQUEST_H
#define FS3_REQUEST_H

#include <stdint.h>

#include <microhttpd.h>
#include <openssl/evp.h>

#include "auth.h"
#include "buf.h"
#include "chaos.h"
#include "chunked.h"
#include "router.h"
#include "s3err.h"
#include "server.h"
#include "store.h"
#include "xml.h"

typedef enum fs3_body_kind {
    FS3_BODY_DISCARD, /* counted and hashed, then dropped */
    FS3_BODY_BUFFER,  /* kept in memory up to body_limit (XML bodies) */
    FS3_BODY_PUT      /* streamed into a store upload */
} fs3_body_kind;

/* The response being built. */
typedef struct fs3_resp {
    int status;
    lv_buf headers;      /* "name\0value\0" pairs, in order */
    lv_buf body;         /* an XML or JSON document, or empty */
    int fd;              /* >= 0: the body is len bytes of this file from off */
    fs3_object *mem_obj; /* not NULL: the body is len bytes at mem (a reference held) */
    const uint8_t *mem;
    uint64_t off, len;
} fs3_resp;

struct fs3_req {
    fs3_server *srv;
    const fs3_config *cfg;
    fs3_store *store;
    struct MHD_Connection *conn;
    char id[17];      /* x-amz-request-id */
    int64_t start_ms; /* from the injected clock */

    /* 1. parse and route */
    const char *method;
    char *raw_uri;   /* as received */
    char *raw_path;  /* raw_uri up to '?' (own copy) */
    char *raw_query; /* after '?', or NULL (points into raw_path's allocation) */
    char *path;      /* raw_path percent-decoded once */
    size_t path_len;
    fs3_query q;
    sigv4_header *headers; /* every request header, in order (strings owned by libmicrohttpd) */
    size_t n_headers, cap_headers;
    int headers_oom;
    fs3_route route;

    /* the fault engine's decision, made once right after routing (faults.c); action CHAOS_NONE
     * and an empty summary when no rule fired or the request is not put to the engine */
    chaos_decision fault;

    /* 2. authenticate */
    fs3_auth_result auth;

    /* 3-4. body */
    int phase; /* 0: not started, 1: receiving the body, 2: answered */
    fs3_body_kind body_kind;
    size_t body_limit;
    lv_buf body;
    fs3_put *put;
    fs3_chunked *chunked;   /* aws-chunked bodies (STREAMING-* payloads): the decoder */
    int64_t decoded_length; /* x-amz-decoded-content-length, or -1 */
    uint64_t body_bytes;    /* body bytes after aws-chunked decoding */
    EVP_MD_CTX *md5;        /* when the operation needs the body's MD5 */
    EVP_MD_CTX *sha256;     /* when the payload hash must be checked or computed */
    uint64_t bytes_in;
    fs3_code body_code; /* the first failure while receiving; the body is then drained */
    char body_err[LV_ERRLEN];

    /* per-operation state made at begin, used at apply */
    uint8_t content_md5[16];
    int has_content_md5;
    fs3_kv *store_headers; /* what PutObject stores, names lower-case (owned) */
    size_t n_store_headers;

    /* 5-6. result */
    fs3_resp resp;
    fs3_code code;      /* FS3_OK or the error answered (for the log) */
    uint64_t bytes_out; /* body bytes of the response (HEAD: what GET would send) */
    char err[LV_ERRLEN];
};

/* A request header (case-insensitive name), or NULL. */
const char *fs3_req_header(fs3_req *r, const char *name);

/* Response building, for ops.c. */
void fs3_resp_header(fs3_req *r, const char *name, const char *value);
/* An S3 error document for code; message NULL means S3's default for it. */
void fs3_resp_error(fs3_req *r, fs3_code code, const char *message, const fs3_xml_field *extra,
                    size_t n_extra);
/* A 200 (or status) response with an XML body already built in doc (taken over, left empty). */
void fs3_resp_xml(fs3_req *r, int status, lv_buf *doc);

/*
 * The server's counts of answered requests by operation and status, as a JSON object
 * {"requests":N,"operations":{"PutObject":{"200":3,"412":1},...}} appended to out.
 */
void fs3_server_stats_json(const fs3_req *r, lv_buf *out);

/*
 * For faults.c: the server's side of carrying out a decision.
 *
 * fs3_server_sleep waits us microseconds (CLOCK_MONOTONIC: waiting is real, whatever the
 * injected clock says), or less if the server is stopping: 1 then, else 0. Safe from any thread.
 */
int fs3_server_sleep(fs3_server *srv, int64_t us);
/* The server refuses every new connection (and drops requests on open ones) for us from now. */
void fs3_server_set_down(fs3_server *srv, int64_t us);
/* Counts a fault carried out, for /_fakes3/stats. */
void fs3_server_count_fault(fs3_server *srv, chaos_action a);
/* Writes r's request-log line now (completed: false), for a crash that will never get to it. */
void fs3_server_log_now(fs3_req *r);

/* ops.c: the operation's checks before the body, and where the body goes. */
fs3_code fs3_op_begin(fs3_req *r);
/* ops.c: applies the operation (the body is complete and verified) and builds the response. */
void fs3_op_apply(fs3_req *r);

#endif
