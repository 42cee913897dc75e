/*
 * s3: the S3 client's configuration, the client object (curl share, easy-handle pool, jitter
 * generator) and the request engine: a curl multi loop that runs s3_req requests, up to
 * max_inflight at once, signs each attempt with lib/sigv4.c, classifies what came back and
 * retries with exponential backoff and full jitter (see s3.h for the rules, s3_private.h for the
 * engine's shape). The operations of s3.h are in s3_ops.c.
 *
 * Time: signing reads cfg.now_ms (injectable); retry budgets, backoff and each attempt's stall
 * and deadline checks (on_progress) use the monotonic clock. Jitter comes from a xorshift64*
 * generator seeded with cfg.seed.
 *
 * Threads: a client is shared by any number of threads; each engine (one per s3_run, s3_list...)
 * belongs to the thread that runs it. The curl share (connections, DNS, TLS sessions) locks with
 * one mutex per data kind; c->mu guards the handle pool and the generator (held briefly, never
 * across I/O).
 */
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "s3_private.h"
#include "sigv4.h"

/* ---- small helpers --------------------------------------------------------------------------- */

void s3_fmt(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

int64_t s3_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_now_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void s3_md5(const void *data, size_t n, uint8_t md5[16])
{
    unsigned int len = 16;
    EVP_Digest(data, n, md5, &len, EVP_md5(), NULL);
}

void s3_b64_16(const uint8_t in[16], char out[25])
{
    EVP_EncodeBlock((unsigned char *)out, in, 16);
}

int64_t s3_parse_iso8601(const char *s)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return 0;
    int ms = 0;
    if (s[n] == '.') {
        int scale = 100;
        for (const char *p = s + n + 1; *p >= '0' && *p <= '9'; p++, scale /= 10)
            ms += (*p - '0') * scale;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static uint64_t rng_next(s3_client *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t x = c->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    pthread_mutex_unlock(&c->mu);
    return x * 0x2545F4914F6CDD1DULL;
}

/* ---- configuration --------------------------------------------------------------------------- */

void s3_config_init(s3_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_inflight = 16;
    c->connect_timeout_ms = 5000;
    c->stall_timeout_ms = 10000;
    c->retry_total_ms = 30000;
    c->retry_base_ms = 100;
    c->retry_cap_ms = 5000;
    c->max_attempts = 10;
    c->part_size = S3_MIN_PART;
    c->path_style = -1;
}

void s3_config_from_env(s3_config *c)
{
    const char *v;
    /* Litestream's own names first, so that the AWS ones, when set, win */
    if ((v = getenv("LITESTREAM_ACCESS_KEY_ID")) && *v)
        c->access_key = v;
    if ((v = getenv("LITESTREAM_SECRET_ACCESS_KEY")) && *v)
        c->secret_key = v;
    if ((v = getenv("LITESTREAM_S3_ENDPOINT")) && *v) {
        c->endpoint = v;
        c->path_style = 1;
    }
    if ((v = getenv("AWS_ACCESS_KEY_ID")) && *v)
        c->access_key = v;
    if ((v = getenv("AWS_SECRET_ACCESS_KEY")) && *v)
        c->secret_key = v;
    if ((v = getenv("AWS_SESSION_TOKEN")) && *v)
        c->session_token = v;
    if ((v = getenv("AWS_DEFAULT_REGION")) && *v)
        c->region = v;
    if ((v = getenv("AWS_REGION")) && *v)
        c->region = v;
    if ((v = getenv("AWS_ENDPOINT_URL")) && *v) {
        c->endpoint = v;
        c->path_style = 1;
    }
    if ((v = getenv("AWS_CA_BUNDLE")) && *v)
        c->ca_bundle = v;
}

/* ---- the client ------------------------------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    s3_share *s = ud;
    (void)h, (void)access;
    if (data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&s->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    s3_share *s = ud;
    (void)h;
    if (data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&s->locks[data]);
}

static void share_destroy(s3_share *s)
{
    if (!s)
        return;
    curl_share_cleanup(s->sh);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s->locks[i]);
    lv_free(s);
}

/* An idle share of the client, or a new one; NULL when out of memory. */
static s3_share *share_get(s3_client *c)
{
    s3_share *s = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->n_shares)
        s = c->shares[--c->n_shares];
    pthread_mutex_unlock(&c->mu);
    if (s)
        return s;
    s = lv_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->sh = curl_share_init();
    if (!s->sh) {
        lv_free(s);
        return NULL;
    }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s->locks[i], NULL);
    curl_share_setopt(s->sh, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(s->sh, CURLSHOPT_USERDATA, s);
    curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return s;
}

static void share_put(s3_client *c, s3_share *s)
{
    pthread_mutex_lock(&c->mu);
    if (s && c->n_shares < S3_SHARES_MAX) {
        c->shares[c->n_shares++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    share_destroy(s);
}

/* Splits endpoint into scheme and host[:port]; LV_EINVAL when it is not http(s)://host[:port][/].
 */
static lv_err parse_endpoint(s3_client *c, const char *ep, char *err)
{
    const char *rest;
    if (strncasecmp(ep, "http://", 7) == 0) {
        strcpy(c->scheme, "http");
        rest = ep + 7;
    } else if (strncasecmp(ep, "https://", 8) == 0) {
        strcpy(c->scheme, "https");
        rest = ep + 8;
    } else
        return lv_fail(err, LV_EINVAL, "S3 endpoint %s: not http:// or https://", ep);
    size_t n = strcspn(rest, "/?#");
    if (n == 0 || n >= sizeof c->hostport || strcspn(rest, " \t\r\n@") < n)
        return lv_fail(err, LV_EINVAL, "S3 endpoint %s: bad host", ep);
    if (rest[n] && !(rest[n] == '/' && rest[n + 1] == '\0'))
        return lv_fail(err, LV_EINVAL, "S3 endpoint %s: a path or query is not supported", ep);
    memcpy(c->hostport, rest, n);
    c->hostport[n] = '\0';
    s3_fmt(c->endpoint, sizeof c->endpoint, "%s://%s", c->scheme, c->hostport);
    return LV_OK;
}

/* c->style for cfg.path_style (1, 0, or anything else: choose) and c->hostport. */
static int choose_style(const s3_client *c, int path_style)
{
    if (path_style == 1 || path_style == 0)
        return path_style;
    const char *hp = c->hostport;
    size_t n;
    if (hp[0] == '[')
        return 1; /* an IPv6 address */
    n = strcspn(hp, ":");
    if (n == 9 && strncasecmp(hp, "localhost", 9) == 0)
        return 1;
    if (strspn(hp, "0123456789.") == n)
        return 1; /* an IPv4 address */
    static const char aws[] = ".amazonaws.com";
    size_t a = sizeof aws - 1;
    if (n <= a || strncasecmp(hp + n - a, aws, a) != 0)
        return 1; /* not AWS: MinIO, Ceph, R2, fakes3... all take path style */
    return -1;
}

int s3_path_style(const s3_client *c, const char *bucket)
{
    if (c->style >= 0)
        return c->style;
    /* a dotted bucket as a host name does not match AWS's wildcard certificate */
    return strchr(bucket, '.') && strcmp(c->scheme, "https") == 0;
}

lv_err s3_client_new(const s3_config *cfg, s3_client **out, char *err)
{
    *out = NULL;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return lv_fail(err, LV_ENET, "curl_global_init: %s", curl_easy_strerror(curl_init_rc));
    s3_client *c = lv_calloc(1, sizeof *c);
    if (!c)
        return lv_fail(err, LV_ENOMEM, "s3 client: out of memory");
    lv_err rc = LV_OK;
    c->cfg = *cfg;
    s3_config *k = &c->cfg;
    if (!k->region || !*k->region)
        k->region = "us-east-1";
    char aws[128];
    const char *ep = k->endpoint;
    if (!ep || !*ep) {
        s3_fmt(aws, sizeof aws, "https://s3.%s.amazonaws.com", k->region);
        ep = aws;
    }
    /* copy every string into one allocation */
    const char **fields[] = {&k->region, &k->access_key, &k->secret_key, &k->session_token,
                             &k->ca_bundle};
    size_t total = 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        total += *fields[i] ? strlen(*fields[i]) + 1 : 0;
    c->strings = lv_malloc(total + 1);
    if (!c->strings) {
        rc = lv_fail(err, LV_ENOMEM, "s3 client: out of memory");
        goto done;
    }
    char *p = c->strings;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (*fields[i]) {
            size_t n = strlen(*fields[i]) + 1;
            memcpy(p, *fields[i], n);
            *fields[i] = p;
            p += n;
        }
    }
    if ((rc = parse_endpoint(c, ep, err)) != LV_OK)
        goto done;
    k->endpoint = c->endpoint;
    c->style = choose_style(c, k->path_style);
    if (!k->access_key)
        k->access_key = "";
    if (!k->secret_key)
        k->secret_key = "";
    if (k->max_inflight == 0)
        k->max_inflight = 16;
    if (k->max_attempts == 0)
        k->max_attempts = 1;
    if (k->part_size < S3_MIN_PART)
        k->part_size = S3_MIN_PART;
    if (!k->now_ms)
        k->now_ms = real_now_ms;
    c->rng = k->seed ? k->seed : (uint64_t)real_now_ms(NULL) ^ (uint64_t)(uintptr_t)c;
    if (c->rng == 0)
        c->rng = 0x9E3779B97F4A7C15ULL;

    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    c = NULL;
done:
    if (c) {
        lv_free(c->strings);
        lv_free(c);
    }
    return rc;
}

void s3_client_free(s3_client *c)
{
    if (!c)
        return;
    /* pooled easy handles are detached from their share (pool_put), so the order is free */
    for (size_t i = 0; i < c->n_pool; i++)
        curl_easy_cleanup(c->pool[i]);
    for (size_t i = 0; i < c->n_shares; i++)
        share_destroy(c->shares[i]);
    pthread_mutex_destroy(&c->mu);
    lv_free(c->strings);
    lv_free(c);
}

const char *s3_client_endpoint(const s3_client *c)
{
    return c->endpoint;
}

static CURL *pool_get(s3_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->n_pool)
        h = c->pool[--c->n_pool];
    pthread_mutex_unlock(&c->mu);
    if (h)
        curl_easy_reset(h);
    else
        h = curl_easy_init();
    return h;
}

static void pool_put(s3_client *c, CURL *h)
{
    if (!h)
        return;
    curl_easy_setopt(h, CURLOPT_SHARE, NULL); /* its connection stays in the share's cache */
    curl_easy_reset(h); /* no pointer into the finished request stays behind */
    pthread_mutex_lock(&c->mu);
    if (c->n_pool < S3_POOL_MAX) {
        c->pool[c->n_pool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h)
        curl_easy_cleanup(h);
}

/* ---- requests -------------------------------------------------------------------------------- */

void s3_req_init(s3_req *r)
{
    memset(r, 0, sizeof *r);
    lv_buf_init(&r->query);
    lv_buf_init(&r->hdrs);
    lv_buf_init(&r->resp);
}

void s3_req_reset(s3_req *r)
{
    r->err = LV_OK;
    r->msg[0] = '\0';
    r->status = 0;
    r->code[0] = r->s3msg[0] = '\0';
    r->cerr = CURLE_OK;
    r->etag[0] = '\0';
    r->size = 0;
    r->mtime_ms = 0;
    r->attempts = 0;
    r->lost = 0;
    r->aborted = 0;
    r->region[0] = '\0';
    lv_buf_reset(&r->resp);
    r->sha256[0] = '\0';
}

void s3_req_free(s3_req *r)
{
    lv_buf_free(&r->query);
    lv_buf_free(&r->hdrs);
    lv_buf_free(&r->resp);
}

void s3_req_header(s3_req *r, const char *name, const char *value)
{
    lv_buf_append(&r->hdrs, name, strlen(name) + 1);
    lv_buf_append(&r->hdrs, value, strlen(value) + 1);
}

/* ---- curl callbacks -------------------------------------------------------------------------- */

/* Copies a header value into tmp[cap] (NUL-terminated); 0 when it does not fit. */
static int hdr_value(char *tmp, size_t cap, const char *v, size_t vlen)
{
    if (vlen >= cap)
        return 0;
    memcpy(tmp, v, vlen);
    tmp[vlen] = '\0';
    return 1;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    s3_req *r = ud;
    size_t n = size * nitems, len = n;
    while (len && (buf[len - 1] == '\r' || buf[len - 1] == '\n'))
        len--;
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* a new response (after a 100 Continue too): forget the previous one's headers */
        r->etag[0] = '\0';
        r->region[0] = '\0';
        r->size = 0;
        r->clen = 0;
        r->mtime_ms = 0;
        r->range_bad = 0;
        if (r->meta)
            lv_buf_reset(r->meta);
        return n;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon)
        return n;
    size_t nlen = (size_t)(colon - buf);
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
    while (vlen && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    char tmp[128];
    if (nlen == 4 && strncasecmp(buf, "etag", 4) == 0) {
        size_t k = vlen < sizeof r->etag - 1 ? vlen : sizeof r->etag - 1;
        memcpy(r->etag, v, k);
        r->etag[k] = '\0';
    } else if (nlen == 13 && strncasecmp(buf, "content-range", 13) == 0) {
        /* "bytes FIRST-LAST/SIZE": SIZE is the object's; FIRST must be the offset asked for */
        if (hdr_value(tmp, sizeof tmp, v, vlen)) {
            const char *p = strncasecmp(tmp, "bytes ", 6) == 0 ? tmp + 6 : tmp;
            if (strtoull(p, NULL, 10) != r->range_off)
                r->range_bad = 1;
            const char *slash = strchr(tmp, '/');
            if (slash && slash[1] != '*')
                r->size = strtoull(slash + 1, NULL, 10);
        }
    } else if (nlen == 14 && strncasecmp(buf, "content-length", 14) == 0) {
        if (hdr_value(tmp, sizeof tmp, v, vlen)) {
            r->clen = strtoull(tmp, NULL, 10);
            if (!r->expect_range)
                r->size = r->clen;
        }
    } else if (nlen == 13 && strncasecmp(buf, "last-modified", 13) == 0) {
        if (hdr_value(tmp, sizeof tmp, v, vlen)) {
            time_t t = curl_getdate(tmp, NULL);
            r->mtime_ms = t > 0 ? (int64_t)t * 1000 : 0;
        }
    } else if (nlen == 19 && strncasecmp(buf, "x-amz-bucket-region", 19) == 0) {
        if (!hdr_value(r->region, sizeof r->region, v, vlen))
            r->region[0] = '\0';
    } else if (r->meta && nlen > 11 && strncasecmp(buf, "x-amz-meta-", 11) == 0) {
        for (size_t i = 11; i < nlen; i++) {
            char ch = buf[i];
            lv_buf_putc(r->meta, (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch);
        }
        lv_buf_putc(r->meta, '\0');
        lv_buf_append(r->meta, v, vlen);
        lv_buf_putc(r->meta, '\0');
    }
    return n;
}

/*
 * A 200 answering a ranged GET (RFC 9110 lets a server ignore Range and send the whole object):
 * the part of data[0..*n) inside the range asked for, given that r->seen bytes came before it.
 */
static const char *range_part(const s3_req *r, const char *data, size_t *n)
{
    uint64_t from = r->seen, to = r->seen + *n;
    uint64_t lo = r->range_off, hi = r->range_off + r->range_len;
    if (r->range_len == S3_TO_END || hi < lo)
        hi = UINT64_MAX;
    if (to <= lo || from >= hi) {
        *n = 0;
        return data;
    }
    uint64_t a = from < lo ? lo - from : 0, b = to > hi ? hi - from : *n;
    *n = (size_t)(b - a);
    return data + a;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
    s3_req *r = ud;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300 && r->to != S3_TO_RESP) {
        const char *part = data;
        size_t pn = n;
        if (r->expect_range && status == 200)
            part = range_part(r, data, &pn);
        else if (r->expect_range && (status != 206 || r->range_bad))
            return n; /* refused in finish_attempt(); keep the wrong bytes from the caller */
        r->seen += n;
        if (pn == 0)
            return n;
        if (r->to == S3_TO_OUT) {
            lv_buf_append(r->out, part, pn);
            return lv_buf_ok(r->out, NULL) == LV_OK ? n : 0;
        }
        int restart = r->first_write && r->attempts > 1;
        r->first_write = 0;
        if (r->sink(r->sink_ctx, part, pn, restart)) {
            r->aborted = 1;
            return 0;
        }
        return n;
    }
    if (!(status >= 200 && status < 300) && r->resp.len + n > S3_ERRBODY_MAX)
        return n; /* an error document this large is cut; its start has the code */
    lv_buf_append(&r->resp, data, n);
    return lv_buf_ok(&r->resp, NULL) == LV_OK ? n : 0;
}

/*
 * Progress of an attempt (libcurl calls it about once a second even when nothing moves): ends
 * it when no byte has moved for its stall time, or when it is past its deadline (the retry
 * budget) and moving slower than S3_MIN_RATE on average.
 */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    s3_req *r = ud;
    (void)dltotal, (void)ultotal;
    int64_t now = s3_mono_ms();
    curl_off_t moved = dlnow + ulnow;
    if (moved != r->moved) {
        r->moved = moved;
        r->last_move = now;
    }
    if (now - r->last_move > (int64_t)r->stall_ms) {
        r->timed_out = 1;
        s3_fmt(r->why, sizeof r->why, "no byte moved for %lld ms", (long long)(now - r->last_move));
        return 1;
    }
    int64_t el = now - r->att_t0;
    if (now > r->deadline && el > 0 && (uint64_t)moved * 1000 / (uint64_t)el < S3_MIN_RATE) {
        r->timed_out = 1;
        s3_fmt(r->why, sizeof r->why,
               "the retry budget is spent and the transfer moves %llu bytes/s",
               (unsigned long long)((uint64_t)moved * 1000 / (uint64_t)el));
        return 1;
    }
    return 0;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    s3_req *r = ud;
    size_t n = size * nitems, left = r->body_len - r->body_pos;
    if (n > left)
        n = left;
    if (n)
        memcpy(buf, r->body + r->body_pos, n);
    r->body_pos += n;
    return n;
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
    s3_req *r = ud;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > r->body_len)
        return CURL_SEEKFUNC_FAIL;
    if (r->body_pos > 0) {
        /* libcurl sends a request again by itself when a reused connection dies before any
         * answer: the first send may have been applied. That is a lost response, and an attempt */
        r->lost = 1;
        r->attempts++;
    }
    r->body_pos = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/* ---- one attempt ----------------------------------------------------------------------------- */

/* Sets up r->easy for an attempt: URL, signed headers, body, callbacks, timeouts. */
static lv_err setup_attempt(s3_engine *e, s3_req *r, char *err)
{
    s3_client *c = e->c;
    const s3_config *k = &c->cfg;
    lv_err rc = LV_OK;
    lv_buf path, url, host;
    lv_buf_init(&path);
    lv_buf_init(&url);
    lv_buf_init(&host);
    sigv4_result sr;
    sigv4_result_init(&sr);
    sigv4_header *hv = NULL;

    /* path: /bucket/key (path style) or /key (virtual host), the key encoded once */
    int path_style = s3_path_style(c, e->bucket);
    if (path_style) {
        lv_buf_putc(&path, '/');
        lv_buf_uri_encode(&path, e->bucket, strlen(e->bucket), 0);
        lv_buf_puts(&host, c->hostport);
    } else {
        lv_buf_printf(&host, "%s.%s", e->bucket, c->hostport);
    }
    if (r->key || !path_style) /* "/bucket" for the bucket itself, no trailing slash */
        lv_buf_putc(&path, '/');
    if (r->key)
        lv_buf_uri_encode(&path, r->key, strlen(r->key), 1);
    if ((rc = lv_buf_ok(&path, err)) || (rc = lv_buf_ok(&host, err)))
        goto done;
    lv_buf_printf(&url, "%s://%s%s", c->scheme, host.data, path.data);
    if (r->query.len)
        lv_buf_printf(&url, "?%s", r->query.data);
    if ((rc = lv_buf_ok(&url, err)))
        goto done;

    if (r->has_body && !r->sha256[0]) {
        if (k->unsigned_payload)
            strcpy(r->sha256, SIGV4_UNSIGNED_PAYLOAD);
        else if ((rc = sigv4_sha256_hex(r->body, r->body_len, r->sha256, err)) != LV_OK)
            goto done;
    }
    const char *payload = r->has_body ? r->sha256 : SIGV4_EMPTY_SHA256;

    char amz_date[SIGV4_DATE_LEN + 1];
    if ((rc = sigv4_format_date(k->now_ms(k->clock_ctx) / 1000, amz_date, err)) != LV_OK)
        goto done;

    size_t n_extra = 0;
    for (size_t off = 0; off < r->hdrs.len; n_extra++)
        off += strlen(r->hdrs.data + off) + 1, off += strlen(r->hdrs.data + off) + 1;
    hv = lv_calloc(n_extra + 4, sizeof *hv);
    if (!hv) {
        rc = lv_fail(err, LV_ENOMEM, "%s: out of memory", r->what);
        goto done;
    }
    size_t nh = 0;
    hv[nh++] = (sigv4_header){"host", host.data};
    hv[nh++] = (sigv4_header){"x-amz-date", amz_date};
    hv[nh++] = (sigv4_header){"x-amz-content-sha256", payload};
    if (k->session_token && *k->session_token)
        hv[nh++] = (sigv4_header){"x-amz-security-token", k->session_token};
    for (size_t off = 0; off < r->hdrs.len;) {
        const char *name = r->hdrs.data + off;
        off += strlen(name) + 1;
        const char *value = r->hdrs.data + off;
        off += strlen(value) + 1;
        hv[nh++] = (sigv4_header){name, value};
    }
    sigv4_request req = {.method = r->method,
                         .path = path.data,
                         .query = r->query.len ? r->query.data : NULL,
                         .headers = hv,
                         .n_headers = nh,
                         .payload_hash = payload,
                         .flags = SIGV4_PATH_ENCODED};
    sigv4_credentials cred = {k->access_key, k->secret_key, k->session_token, k->region, "s3"};
    if ((rc = sigv4_sign(&req, &cred, amz_date, &sr, err)) != LV_OK) {
        lv_wrap(err, rc, "%s: signing: ", r->what);
        goto done;
    }

    struct curl_slist *sl = NULL, *t;
    lv_buf line;
    lv_buf_init(&line);
    for (size_t i = 0; i < nh; i++) {
        lv_buf_reset(&line);
        lv_buf_printf(&line, "%s: %s", hv[i].name, hv[i].value);
        if (lv_buf_ok(&line, NULL) != LV_OK || !(t = curl_slist_append(sl, line.data)))
            goto oom;
        sl = t;
    }
    lv_buf_reset(&line);
    lv_buf_printf(&line, "Authorization: %s", sr.authorization.data);
    const char *fixed[] = {"Expect:", "Accept:"};
    if (lv_buf_ok(&line, NULL) != LV_OK || !(t = curl_slist_append(sl, line.data)))
        goto oom;
    sl = t;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        /* no 100-continue round trip; no unsigned Accept */
        if (!(t = curl_slist_append(sl, fixed[i])))
            goto oom;
        sl = t;
    }
    lv_buf_free(&line);
    r->slist = sl;
    sl = NULL;
    if (0) {
    oom:
        lv_buf_free(&line);
        curl_slist_free_all(sl);
        rc = lv_fail(err, LV_ENOMEM, "%s: out of memory", r->what);
        goto done;
    }

    CURL *h = r->easy;
    curl_easy_setopt(h, CURLOPT_URL, url.data);
    curl_easy_setopt(h, CURLOPT_SHARE, e->share->sh);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->slist);
    curl_easy_setopt(h, CURLOPT_PRIVATE, r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)k->connect_timeout_ms);
    /* HTTP/1.1 only: S3 speaks nothing else, and an h2 upgrade adds failure modes (HTTP2,
     * HTTP2_STREAM) for nothing */
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    /* stalls and the retry budget: on_progress (to the millisecond); curl's own low-speed check
     * stays behind it as a backstop, a second later */
    int64_t now = s3_mono_ms(), left = (int64_t)k->retry_total_ms - (now - r->t0);
    r->stall_ms = r->stall_ms ? r->stall_ms : k->stall_timeout_ms;
    if (r->stall_ms == 0)
        r->stall_ms = 1;
    r->att_t0 = r->last_move = now;
    r->moved = 0;
    r->timed_out = 0;
    r->seen = 0;
    r->deadline = now + (left > 2 * (int64_t)r->stall_ms ? left : 2 * (int64_t)r->stall_ms);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, r);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)(r->stall_ms / 1000 + 2));
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L); /* keys may hold "/../": never squash them */
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (k->ca_bundle)
        curl_easy_setopt(h, CURLOPT_CAINFO, k->ca_bundle);
    if (k->skip_verify) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (strcmp(r->method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (r->has_body) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, r);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
        if (strcmp(r->method, "PUT") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    } else if (strcmp(r->method, "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    else
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
done:
    lv_free(hv);
    sigv4_result_free(&sr);
    lv_buf_free(&path);
    lv_buf_free(&url);
    lv_buf_free(&host);
    return rc;
}

/* ---- the engine ------------------------------------------------------------------------------ */

lv_err s3_eng_init(s3_engine *e, s3_client *c, const char *bucket, char *err)
{
    memset(e, 0, sizeof *e);
    e->c = c;
    e->bucket = bucket;
    e->share = share_get(c);
    if (!e->share)
        return lv_fail(err, LV_ENOMEM, "s3: curl_share_init failed (out of memory)");
    e->multi = curl_multi_init();
    if (!e->multi) {
        s3_eng_free(e);
        return lv_fail(err, LV_ENOMEM, "s3: curl_multi_init failed (out of memory)");
    }
    return LV_OK;
}

/* Takes r off the wire: out of the multi handle and the active list, its handle pooled. */
static void take_back(s3_engine *e, s3_req *r)
{
    for (s3_req **pp = &e->active_list; *pp; pp = &(*pp)->next_active) {
        if (*pp == r) {
            *pp = r->next_active;
            break;
        }
    }
    r->next_active = NULL;
    curl_multi_remove_handle(e->multi, r->easy);
    pool_put(e->c, r->easy);
    r->easy = NULL;
    curl_slist_free_all(r->slist);
    r->slist = NULL;
    e->active--;
}

void s3_eng_free(s3_engine *e)
{
    /* after a failure of the engine, requests may still be on the wire */
    while (e->active_list)
        take_back(e, e->active_list);
    if (e->multi)
        curl_multi_cleanup(e->multi);
    e->multi = NULL;
    if (e->share)
        share_put(e->c, e->share);
    e->share = NULL;
}

void s3_eng_add(s3_engine *e, s3_req *r)
{
    r->next = NULL;
    if (r->attempts == 0) {
        r->t0 = s3_mono_ms();
        r->not_before = 0;
    }
    if (e->tail)
        e->tail->next = r;
    else
        e->head = r;
    e->tail = r;
}

static int retryable_curl(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_COULDNT_RESOLVE_HOST: /* a DNS hiccup; the retry budget bounds a real failure */
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_SEND_FAIL_REWIND:
        return 1;
    default:
        return 0;
    }
}

/* What went wrong, worded to be followed by the endpoint. */
static const char *curl_phrase(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
        return "connection refused to";
    case CURLE_COULDNT_RESOLVE_HOST:
        return "cannot resolve the host of";
    case CURLE_RECV_ERROR:
        return "connection reset by";
    case CURLE_SEND_ERROR:
        return "send failed to";
    case CURLE_GOT_NOTHING:
        return "no response from";
    case CURLE_PARTIAL_FILE:
        return "short body (connection closed before Content-Length) from";
    case CURLE_OPERATION_TIMEDOUT:
        return "timed out talking to";
    case CURLE_SSL_CONNECT_ERROR:
        return "TLS handshake failed with";
    case CURLE_PEER_FAILED_VERIFICATION:
        return "untrusted TLS certificate from";
    case CURLE_WEIRD_SERVER_REPLY:
        return "a malformed HTTP response from";
    default:
        return "transfer failed with";
    }
}

static lv_err status_err(int status)
{
    if (status == 404)
        return LV_ENOTFOUND;
    if (status == 412 || status == 409)
        return LV_ECONFLICT;
    if (status == 403)
        return LV_EACCESS;
    if (status >= 300 && status < 500) /* a redirect is a wrong region or endpoint: final */
        return LV_EINVAL;
    return LV_ENET;
}

static const char *status_code(int status)
{
    switch (status) {
    case 301:
        return "PermanentRedirect";
    case 307:
        return "TemporaryRedirect";
    case 400:
        return "BadRequest";
    case 403:
        return "Forbidden";
    case 404:
        return "NotFound";
    case 409:
        return "Conflict";
    case 412:
        return "PreconditionFailed";
    case 416:
        return "InvalidRange";
    case 500:
        return "InternalError";
    case 501:
        return "NotImplemented";
    case 503:
        return "ServiceUnavailable";
    default:
        return "";
    }
}

/* Fills r->err and r->msg for a request that ended (for good) unsuccessfully. */
static void final_message(s3_engine *e, s3_req *r)
{
    char tail[64] = "";
    double secs = (double)(s3_mono_ms() - r->t0) / 1000.0;
    if (r->attempts > 1)
        s3_fmt(tail, sizeof tail, " after %u attempts (%.1f s)", r->attempts, secs);
    if (r->aborted) {
        r->err = LV_EINVAL;
        s3_fmt(r->msg, sizeof r->msg, "%s: aborted by the caller", r->what);
    } else if (r->cerr == CURLE_OUT_OF_MEMORY) {
        r->err = LV_ENOMEM;
        s3_fmt(r->msg, sizeof r->msg, "%s: out of memory for the response", r->what);
    } else if (r->cerr != CURLE_OK) {
        r->err = LV_ENET;
        s3_fmt(r->msg, sizeof r->msg, "%s: %s %s%s: %s", r->what, curl_phrase(r->cerr),
               e->c->endpoint, tail, r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->cerr));
    } else if (r->region[0] &&
               ((r->status >= 300 && r->status < 400) ||
                strcmp(r->code, "AuthorizationHeaderMalformed") == 0 ||
                strcmp(r->code, "PermanentRedirect") == 0) &&
               strcmp(r->region, e->c->cfg.region) != 0) {
        /* signed for one region, the bucket lives in another: say which */
        r->err = LV_EINVAL;
        s3_fmt(r->msg, sizeof r->msg,
               "%s: %d %s: the bucket is in %s, not %s; set AWS_REGION=%s or ?region=%s", r->what,
               r->status, r->code, r->region, e->c->cfg.region, r->region, r->region);
    } else {
        r->err = status_err(r->status);
        s3_fmt(r->msg, sizeof r->msg, "%s: %d %s%s%s%s", r->what, r->status, r->code, tail,
               r->s3msg[0] ? ": " : "", r->s3msg);
    }
}

int64_t s3_backoff_ms(s3_client *c, unsigned attempts)
{
    const s3_config *k = &c->cfg;
    uint64_t ceil = k->retry_base_ms;
    for (unsigned i = 1; i < attempts && ceil < k->retry_cap_ms; i++)
        ceil *= 2;
    if (ceil > k->retry_cap_ms)
        ceil = k->retry_cap_ms;
    return (int64_t)(rng_next(c) % (ceil + 1));
}

/* Ends r for good: a failed GET gives back none of its bytes (s3.h). */
static void end_failed(s3_engine *e, s3_req *r)
{
    if (r->to == S3_TO_OUT && r->out && r->out->data && r->out->len > r->out_base) {
        r->out->len = r->out_base;
        r->out->data[r->out_base] = '\0';
    }
    r->done(e, r);
}

/* An attempt ended (cc from curl): decide success, a retry, or the end. */
static void finish_attempt(s3_engine *e, s3_req *r, CURLcode cc)
{
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    take_back(e, r);

    if (cc == CURLE_ABORTED_BY_CALLBACK && r->timed_out) {
        cc = CURLE_OPERATION_TIMEDOUT; /* on_progress: a stall, or past the budget */
        s3_fmt(r->errbuf, sizeof r->errbuf, "%s", r->why);
    }
    if (cc == CURLE_WRITE_ERROR && !r->aborted)
        cc = CURLE_OUT_OF_MEMORY; /* on_write refuses bytes only when a buffer cannot grow */
    r->cerr = cc;
    r->status = cc == CURLE_OK ? (int)status : 0;
    r->code[0] = r->s3msg[0] = '\0';
    if (cc == CURLE_OUT_OF_MEMORY) {
        final_message(e, r);
        end_failed(e, r);
        return;
    }
    if (cc == CURLE_OK && (r->status < 200 || r->status >= 300)) {
        s3_xml_error(r->resp.data, r->resp.len, r->code, r->s3msg);
        if (!r->code[0])
            s3_fmt(r->code, sizeof r->code, "%s", status_code(r->status));
    }
    if (cc == CURLE_OK && r->expect_range && r->status == 206 && r->range_bad) {
        r->err = LV_ECORRUPT;
        s3_fmt(r->msg, sizeof r->msg, "%s: a 206 whose Content-Range does not start at %llu",
               r->what, (unsigned long long)r->range_off);
        end_failed(e, r);
        return;
    }
    /* The request may have been applied without us hearing of it: no response after it was
     * sent, or a 5xx (a 500 may come after the write; a 503 SlowDown is a refusal before it) */
    if (cc != CURLE_OK && cc != CURLE_COULDNT_CONNECT && cc != CURLE_COULDNT_RESOLVE_HOST &&
        cc != CURLE_SSL_CONNECT_ERROR)
        r->lost = 1;
    if (cc == CURLE_OK && r->status >= 500 && r->status != 503)
        r->lost = 1;

    if (cc == CURLE_OK && r->status >= 200 && r->status < 300) {
        if (r->has_body && strcmp(r->method, "PUT") == 0 && !r->size)
            r->size = r->body_len;
        if (r->expect_range && r->status == 200)
            r->size = r->clen; /* the whole object came; on_write kept the range */
        r->err = LV_OK;
        r->msg[0] = '\0';
        r->done(e, r);
        return;
    }
    /* 501 NotImplemented will not change; everything else 5xx may */
    int again = cc != CURLE_OK ? retryable_curl(cc) && !r->aborted
                               : (r->status >= 500 && r->status != 501) || r->status == 429 ||
                                     strcmp(r->code, "SlowDown") == 0 ||
                                     strcmp(r->code, "RequestTimeout") == 0;
    const s3_config *k = &e->c->cfg;
    if (again && r->attempts < k->max_attempts) {
        int64_t delay = s3_backoff_ms(e->c, r->attempts);
        int64_t now = s3_mono_ms();
        if (now + delay - r->t0 < (int64_t)k->retry_total_ms) {
            r->not_before = now + delay;
            s3_eng_add(e, r);
            return;
        }
    }
    final_message(e, r);
    end_failed(e, r);
}

static lv_err start_attempt(s3_engine *e, s3_req *r, char *err)
{
    r->easy = pool_get(e->c);
    if (!r->easy)
        return lv_fail(err, LV_ENOMEM, "%s: curl_easy_init failed", r->what);
    r->attempts++;
    r->errbuf[0] = '\0';
    r->body_pos = 0;
    r->first_write = 1;
    r->aborted = 0;
    r->region[0] = '\0';
    lv_buf_reset(&r->resp);
    if (r->to == S3_TO_OUT) {
        if (r->attempts == 1)
            r->out_base = r->out->len;
        else if (r->out->data) { /* a retry starts the range over */
            r->out->len = r->out_base;
            r->out->data[r->out_base] = '\0';
        }
    }
    if (r->meta)
        lv_buf_reset(r->meta);
    lv_err rc = setup_attempt(e, r, err);
    if (rc == LV_OK) {
        CURLMcode mc = curl_multi_add_handle(e->multi, r->easy);
        if (mc != CURLM_OK)
            rc = lv_fail(err, LV_ENOMEM, "%s: curl_multi_add_handle: %s", r->what,
                         curl_multi_strerror(mc));
    }
    if (rc != LV_OK) {
        curl_slist_free_all(r->slist);
        r->slist = NULL;
        pool_put(e->c, r->easy);
        r->easy = NULL;
        return rc;
    }
    e->active++;
    r->next_active = e->active_list;
    e->active_list = r;
    return LV_OK;
}

lv_err s3_eng_run(s3_engine *e, char *err)
{
    const s3_config *k = &e->c->cfg;
    while (e->head || e->active) {
        int64_t now = s3_mono_ms(), wake = -1;
        /* start what may start, in order */
        s3_req *prev = NULL, *r = e->head;
        while (r && e->active < k->max_inflight) {
            s3_req *next = r->next;
            if (r->not_before <= now) {
                if (prev)
                    prev->next = next;
                else
                    e->head = next;
                if (e->tail == r)
                    e->tail = prev;
                r->next = NULL;
                lv_err rc = start_attempt(e, r, r->msg);
                if (rc != LV_OK) {
                    /* the request fails for good; the engine carries on with the rest */
                    r->err = rc;
                    end_failed(e, r);
                }
            } else {
                if (wake < 0 || r->not_before < wake)
                    wake = r->not_before;
                prev = r;
            }
            r = next;
        }
        for (s3_req *q = r; q; q = q->next) /* not scanned above: the in-flight limit was hit */
            if (q->not_before > now && (wake < 0 || q->not_before < wake))
                wake = q->not_before;

        int running = 0;
        CURLMcode mc = curl_multi_perform(e->multi, &running);
        if (mc != CURLM_OK)
            return lv_fail(err, LV_ENET, "curl_multi_perform: %s", curl_multi_strerror(mc));
        CURLMsg *m;
        int left;
        int finished = 0;
        while ((m = curl_multi_info_read(e->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            s3_req *d = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&d);
            finish_attempt(e, d, m->data.result);
            finished = 1;
        }
        if (finished)
            continue; /* done callbacks may have queued work */
        if (!e->head && !e->active)
            break;
        long timeout = 1000;
        if (e->active) {
            long t = -1;
            curl_multi_timeout(e->multi, &t);
            if (t >= 0 && t < timeout)
                timeout = t;
        }
        if (wake >= 0) {
            int64_t d = wake - s3_mono_ms();
            if (d < timeout)
                timeout = d < 0 ? 0 : (long)d;
        }
        if (e->head && e->active < k->max_inflight && wake < 0)
            timeout = 0;
        if (timeout > 0) {
            mc = curl_multi_poll(e->multi, NULL, 0, (int)timeout, NULL);
            if (mc != CURLM_OK)
                return lv_fail(err, LV_ENET, "curl_multi_poll: %s", curl_multi_strerror(mc));
        }
    }
    return LV_OK;
}
