/*
 * s3_private: what the files of the S3 client share (s3.c: configuration, client, the request
 * engine; s3_ops.c: the operations of s3.h built on the engine; s3_xml.c: S3's XML documents).
 * Nothing outside lib/s3*.c includes it.
 *
 * The engine runs HTTP requests (s3_req) in one curl multi handle, up to max_inflight at once,
 * each retried on its own (see s3.h). A request finishes by calling its done callback in the
 * engine's thread, which may add more requests to the same engine (the next page of a listing,
 * the parts of a multipart upload, the check after a lost response): so a whole s3_run, with all
 * its follow-up requests, is one loop over one multi handle.
 *
 * Threads: an engine belongs to the thread that runs it. The client is shared: its pools of easy
 * handles and curl shares, and its jitter generator, are guarded by its mutex.
 */
#ifndef LV_S3_PRIVATE_H
#define LV_S3_PRIVATE_H

#include <curl/curl.h>
#include <pthread.h>

#include "s3.h"

#define S3_MIN_PART    (5u << 20)
#define S3_MAX_PARTS   10000
#define S3_ERRBODY_MAX (64u << 10) /* error documents beyond this are cut */
#define S3_POOL_MAX    64          /* idle easy handles kept by a client */
#define S3_SHARES_MAX  16          /* idle curl shares kept by a client */
#define S3_WHAT_LEN    160         /* "GET s3://bucket/key bytes=0-99", cut to fit */
#define S3_MSG_LEN     160         /* S3's <Message>, cut to fit */
/* CompleteMultipartUpload may take minutes, keeping the connection alive with spaces (AWS) or
 * silent for 10 s at a time (MinIO): its stall time is at least this */
#define S3_COMPLETE_STALL_MS (5u * 60 * 1000)
/* an attempt past the retry budget goes on while it moves at least this many bytes a second on
 * average (a large transfer in good health finishes; a trickle does not) */
#define S3_MIN_RATE (256u << 10)

struct s3_client {
    s3_config cfg;      /* string pointers point at the copies below */
    char *strings;      /* one allocation holding the copied strings */
    char endpoint[512]; /* "http://127.0.0.1:9000", no trailing '/' */
    char scheme[8];     /* "http" or "https" */
    char hostport[256]; /* "127.0.0.1:9000" (as the Host header carries it) */
    int style;          /* 1: path style; 0: virtual host; -1: virtual host unless the bucket
                         * name has a '.' and the scheme is https (see s3_path_style) */

    pthread_mutex_t mu; /* guards pool, n_pool, shares, n_shares and rng */
    CURL *pool[S3_POOL_MAX];
    size_t n_pool;
    struct s3_share *shares[S3_SHARES_MAX];
    size_t n_shares;
    uint64_t rng;
};

/*
 * A curl share: connection cache, DNS cache and TLS sessions. libcurl does not support one
 * connection cache used by several threads at the same time (CURLSHOPT_SHARE(3)), so a client
 * keeps a pool of them and each engine (one call) takes one for its duration: connections persist
 * from call to call, and calls running at once in several threads each have their own. The lock
 * callbacks are set all the same (a share moves between threads from call to call).
 */
typedef struct s3_share {
    CURLSH *sh;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
} s3_share;

typedef struct s3_engine s3_engine;
typedef struct s3_req s3_req;
/* Called once when a request has finished (succeeded or failed for good); may add requests. */
typedef void (*s3_done_fn)(s3_engine *e, s3_req *r);

/* Where a successful response body goes. */
typedef enum s3_body_to { S3_TO_RESP = 0, S3_TO_OUT, S3_TO_SINK } s3_body_to;

struct s3_req {
    /* ---- the request, set before s3_eng_add (strings borrowed unless said) ---- */
    const char *method; /* "GET" "HEAD" "PUT" "POST" "DELETE" */
    const char *key;    /* raw key; NULL: the bucket itself */
    lv_buf query;       /* percent-encoded query without '?' (owned) */
    lv_buf hdrs;        /* extra headers to sign and send, "name\0value\0"... (owned) */
    const uint8_t *body;
    size_t body_len;
    int has_body;           /* send body (PUT/POST), even when empty */
    char what[S3_WHAT_LEN]; /* for messages: "GET s3://bucket/key bytes=0-99" */
    s3_body_to to;
    lv_buf *out; /* S3_TO_OUT: appended to (cut back to its length at the start on retry) */
    int (*sink)(void *ctx, const void *data, size_t n, int restart);
    void *sink_ctx;
    lv_buf *meta;                  /* x-amz-meta-* headers land here when set */
    int expect_range;              /* a Range was sent: a 200 instead of 206 is cut to the range */
    uint64_t range_off, range_len; /* the range asked for (range_len S3_TO_END: to the end) */
    unsigned stall_ms;             /* no byte moving this long ends an attempt; 0: the config's */
    int range_bad;                 /* the 206's Content-Range starts elsewhere than range_off */
    s3_done_fn done;
    void *job; /* the caller's, for done */
    size_t idx;

    /* ---- the outcome, valid in done ---- */
    lv_err err;
    char msg[LV_ERRLEN];
    int status; /* last HTTP status; 0: none */
    char code[64];
    char s3msg[S3_MSG_LEN];
    CURLcode cerr;
    char etag[80];
    uint64_t size;
    int64_t mtime_ms;
    unsigned attempts;
    int lost;        /* some attempt sent the request and may have been applied unheard */
    char region[32]; /* x-amz-bucket-region of the last response, or "" */
    lv_buf resp;     /* S3_TO_RESP body, or an error document (owned) */

    /* ---- engine state ---- */
    char sha256[65]; /* body hash, computed on the first attempt */
    size_t out_base;
    size_t body_pos;
    int first_write;
    int aborted; /* the sink asked to stop */
    int64_t t0, not_before;
    uint64_t seen;       /* body bytes of this attempt's response so far */
    uint64_t clen;       /* Content-Length of this attempt's response */
    int64_t att_t0;      /* when this attempt started */
    int64_t deadline;    /* past this (monotonic ms) a slow attempt is ended */
    int64_t last_move;   /* when a byte last moved (stall detection) */
    curl_off_t moved;    /* bytes up and down so far in this attempt */
    int timed_out;       /* the progress callback ended the attempt (stall or deadline) */
    char why[96];        /* ... and why (curl overwrites errbuf with "Callback aborted") */
    s3_req *next_active; /* the engine's list of requests on the wire */
    CURL *easy;
    struct curl_slist *slist;
    char errbuf[CURL_ERROR_SIZE];
    s3_req *next;
};

struct s3_engine {
    s3_client *c;
    s3_share *share; /* taken from the client for the engine's life */
    const char *bucket;
    s3_req *head, *tail; /* waiting to start (a retry waits for its not_before) */
    s3_req *active_list; /* on the wire (added to multi): s3_eng_free takes them back */
    size_t active;
    CURLM *multi;
};

/* ---- s3.c ---- */
/* snprintf into dst[cap] (cutting what does not fit: messages are one line, best effort). */
void s3_fmt(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void s3_req_init(s3_req *r);
/* Clears the outcome (and the attempts) so r can be sent again, e.g. for the next page. */
void s3_req_reset(s3_req *r);
void s3_req_free(s3_req *r);
/* Appends a header to send and sign. */
void s3_req_header(s3_req *r, const char *name, const char *value);

lv_err s3_eng_init(s3_engine *e, s3_client *c, const char *bucket, char *err);
void s3_eng_add(s3_engine *e, s3_req *r);
/*
 * Runs until no request is left. LV_OK, or a failure of the engine itself (not of a request):
 * then requests may be left unfinished (their done not called); s3_eng_free takes back their
 * curl handles.
 */
lv_err s3_eng_run(s3_engine *e, char *err);
void s3_eng_free(s3_engine *e);
/* Whether requests to bucket use path style (1) or virtual host (0) on c. */
int s3_path_style(const s3_client *c, const char *bucket);
/* The backoff before attempt attempts+1: full jitter under base * 2^(attempts-1), capped. */
int64_t s3_backoff_ms(s3_client *c, unsigned attempts);

/* Monotonic milliseconds (for retry budgets; signing uses cfg.now_ms). */
int64_t s3_mono_ms(void);
/* MD5 of data, raw (16 bytes). */
void s3_md5(const void *data, size_t n, uint8_t md5[16]);
/* Base64 of 16 bytes into out (25 bytes). */
void s3_b64_16(const uint8_t in[16], char out[25]);
/* Parses "2026-11-21T09:32:32.000Z" into ms since the epoch; 0 when it is not one. */
int64_t s3_parse_iso8601(const char *s);

/* ---- s3_xml.c ---- */
/* Reads <Error><Code><Message> from an error document (code and msg left empty when absent). */
void s3_xml_error(const char *xml, size_t n, char code[64], char msg[S3_MSG_LEN]);

/* One page of ListObjectsV2: cb for each <Contents>; *stop set when cb returned nonzero. */
typedef struct s3_list_page {
    int truncated;
    lv_buf next_token;
    size_t n; /* entries seen */
} s3_list_page;
lv_err s3_xml_list(const char *xml, size_t n, int (*cb)(void *ctx, const s3_entry *e), void *ctx,
                   s3_list_page *page, int *stop, char *err);

/* The <UploadId> of InitiateMultipartUploadResult, into out. */
lv_err s3_xml_upload_id(const char *xml, size_t n, lv_buf *out, char *err);
/*
 * CompleteMultipartUploadResult: its <ETag> into etag; or, when S3 answered 200 with an <Error>
 * document, *is_error = 1 with its code and message.
 */
lv_err s3_xml_complete(const char *xml, size_t n, char etag[80], int *is_error, char code[64],
                       char msg[S3_MSG_LEN], char *err);
/* DeleteResult: the number of <Error> entries, and the first one's key, code and message. */
lv_err s3_xml_delete_result(const char *xml, size_t n, size_t *n_errors, lv_buf *key, char code[64],
                            char msg[S3_MSG_LEN], char *err);

#endif
