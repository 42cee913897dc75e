/*
 * test_s3_client: lib/s3.c against a real fakes3 (auth on, tu_fakes3_start) on 127.0.0.1: GET,
 * HEAD, PUT, DELETE, ranges, multipart above part_size, conditional writes, metadata, listings
 * (prefix, start-after, pagination past 1000 keys, several prefixes at once), DeleteObjects of
 * 2500 keys, keys with spaces, unicode and reserved characters, the error categories (wrong
 * secret, missing key, missing bucket, server down within the retry bound), batches, sinks, the
 * injected clock, and one client used from four threads at once. Plus the XML readers (s3_xml.c)
 * on documents written here. Faults through fakes3 --fault; and a scripted HTTP server (a thread
 * here, "canned") for the answers fakes3 cannot be made to give: a slow CompleteMultipartUpload
 * with leading spaces, a bucket in another region, a server that ignores Range, a malformed
 * response, a lost PUT under SSE-KMS (ETag not an MD5).
 *
 * Each test starts its own fakes3 (in memory) or scripted server. Threads: the threaded test runs
 * four; the scripted server runs one per connection.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../lib/s3_private.h"
#include "s3.h"
#include "testutil.h"

#define BUCKET TU_FAKES3_BUCKET

static tu_fakes3 fk;
static s3_client *cl;

static s3_client *client_for(const char *endpoint, const char *secret, void (*tweak)(s3_config *))
{
    s3_config cfg;
    s3_config_init(&cfg);
    cfg.endpoint = endpoint;
    cfg.path_style = 1;
    cfg.access_key = TU_FAKES3_KEY;
    cfg.secret_key = secret;
    cfg.seed = 42;
    if (tweak)
        tweak(&cfg);
    s3_client *c = NULL;
    char err[LV_ERRLEN] = "";
    lv_err rc = s3_client_new(&cfg, &c, err);
    ck_assert_msg(rc == LV_OK, "s3_client_new: %s", err);
    return c;
}

static void setup(void)
{
    tu_fakes3_start(&fk, NULL);
    cl = client_for(fk.endpoint, TU_FAKES3_SECRET, NULL);
}

static void teardown(void)
{
    s3_client_free(cl);
    cl = NULL;
    tu_fakes3_stop(&fk);
}

static uint8_t *random_bytes(size_t n, uint64_t seed)
{
    uint8_t *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    uint64_t s = seed ? seed : 1;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = tu_rand(&s);
        memcpy(p + i, &v, n - i < 8 ? n - i : 8);
    }
    return p;
}

static void put_ok(const char *key, const void *body, size_t n, const s3_op *opts, s3_result *res)
{
    char err[LV_ERRLEN] = "";
    lv_err rc = s3_put(cl, BUCKET, key, body, n, opts, res, err);
    ck_assert_msg(rc == LV_OK, "PUT %s: %s", key, err);
}

static void get_eq(const char *key, uint64_t off, uint64_t len, const void *want, size_t n)
{
    lv_buf out;
    lv_buf_init(&out);
    char err[LV_ERRLEN] = "";
    s3_result res;
    lv_err rc = s3_get(cl, BUCKET, key, off, len, &out, &res, err);
    ck_assert_msg(rc == LV_OK, "GET %s: %s", key, err);
    ck_assert_msg(out.len == n, "GET %s off %llu: %zu bytes, want %zu", key,
                  (unsigned long long)off, out.len, n);
    ck_assert_msg(n == 0 || memcmp(out.data, want, n) == 0, "GET %s: wrong bytes", key);
    lv_buf_free(&out);
}

/* ---- basic operations ------------------------------------------------------------------------ */

START_TEST(test_put_get_head_delete)
{
    const char *body = "hello, object store";
    size_t n = strlen(body);
    s3_result res;
    put_ok("a/hello.txt", body, n, NULL, &res);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(res.etag, "\"ee1db6aa9820372cbfba04a2813c4951\"");
    ck_assert_uint_eq(res.attempts, 1);

    get_eq("a/hello.txt", 0, 0, body, n);                 /* whole, no Range */
    get_eq("a/hello.txt", 0, S3_TO_END, body, n);         /* whole */
    get_eq("a/hello.txt", 7, 6, body + 7, 6);             /* a-b */
    get_eq("a/hello.txt", 7, S3_TO_END, body + 7, n - 7); /* a-to-end */
    get_eq("a/hello.txt", n - 1, 100, body + n - 1, 1);   /* past the end: what there is */

    /* the size of the whole object comes back with a range */
    lv_buf out;
    lv_buf_init(&out);
    lv_buf_puts(&out, "prefix:"); /* GET appends */
    char err[LV_ERRLEN];
    ck_assert_int_eq(s3_get(cl, BUCKET, "a/hello.txt", 0, 5, &out, &res, err), LV_OK);
    ck_assert_str_eq(out.data, "prefix:hello");
    ck_assert_uint_eq(res.size, n);
    ck_assert_int_eq(res.status, 206);
    ck_assert_int_gt(res.mtime_ms, 1600000000000LL);
    lv_buf_free(&out);

    /* a range past the end is 416: the caller's mistake */
    lv_buf_init(&out);
    ck_assert_int_eq(s3_get(cl, BUCKET, "a/hello.txt", 1000, 10, &out, &res, err), LV_EINVAL);
    ck_assert_int_eq(res.status, 416);
    lv_buf_free(&out);

    ck_assert_int_eq(s3_head(cl, BUCKET, "a/hello.txt", &res, err), LV_OK);
    ck_assert_uint_eq(res.size, n);
    ck_assert_str_eq(res.etag, "\"ee1db6aa9820372cbfba04a2813c4951\"");

    s3_op op;
    s3_op_init(&op);
    op.kind = S3_DELETE;
    op.key = "a/hello.txt";
    ck_assert_int_eq(s3_run(cl, BUCKET, &op, 1, err), LV_OK);
    s3_op_free(&op);
    ck_assert_int_eq(s3_head(cl, BUCKET, "a/hello.txt", &res, err), LV_ENOTFOUND);
    ck_assert_int_eq(res.status, 404);
    ck_assert_ptr_nonnull(strstr(err, "HEAD s3://" BUCKET "/a/hello.txt"));

    /* an empty object */
    put_ok("empty", "", 0, NULL, &res);
    get_eq("empty", 0, S3_TO_END, "", 0);
}
END_TEST

START_TEST(test_metadata_and_md5)
{
    s3_header h[] = {{"x-amz-meta-litestream-timestamp", "2026-11-21T09:00:00Z"},
                     {"X-Amz-Meta-Mixed-Case", "Value With Spaces"},
                     {"content-type", "application/octet-stream"}};
    s3_op opts;
    s3_op_init(&opts);
    opts.headers = h;
    opts.n_headers = 3;
    opts.content_md5 = 1;
    s3_result res;
    put_ok("meta", "data", 4, &opts, &res);

    s3_op op;
    s3_op_init(&op);
    op.kind = S3_HEAD;
    op.key = "meta";
    char err[LV_ERRLEN];
    ck_assert_int_eq(s3_run(cl, BUCKET, &op, 1, err), LV_OK);
    int seen = 0;
    for (size_t off = 0; off < op.meta.len;) {
        const char *name = op.meta.data + off;
        off += strlen(name) + 1;
        const char *value = op.meta.data + off;
        off += strlen(value) + 1;
        if (strcmp(name, "litestream-timestamp") == 0) {
            ck_assert_str_eq(value, "2026-11-21T09:00:00Z");
            seen |= 1;
        } else if (strcmp(name, "mixed-case") == 0) {
            ck_assert_str_eq(value, "Value With Spaces");
            seen |= 2;
        }
    }
    ck_assert_int_eq(seen, 3);
    s3_op_free(&op);
}
END_TEST

/* ---- multipart ------------------------------------------------------------------------------- */

START_TEST(test_multipart)
{
    size_t n = 20u << 20;
    uint8_t *body = random_bytes(n, 7);
    s3_op opts;
    s3_op_init(&opts);
    opts.content_md5 = 1;
    s3_result res;
    put_ok("big/object", body, n, &opts, &res);
    size_t el = strlen(res.etag);
    ck_assert_msg(el > 4 && strcmp(res.etag + el - 3, "-4\"") == 0, "multipart ETag %s", res.etag);
    ck_assert_uint_eq(res.size, n);
    get_eq("big/object", 0, S3_TO_END, body, n);
    get_eq("big/object", (5u << 20) - 10, 20, body + (5u << 20) - 10, 20); /* across parts */

    /* a conditional multipart PUT: the condition is on the Complete */
    opts.if_none_match = "*";
    char err[LV_ERRLEN];
    ck_assert_int_eq(s3_put(cl, BUCKET, "big/object", body, n, &opts, &res, err), LV_ECONFLICT);
    ck_assert_int_eq(res.status, 412);
    ck_assert_str_eq(res.code, "PreconditionFailed");
    put_ok("big/other", body, n, &opts, &res);

    /* exactly part_size is one PUT */
    put_ok("big/exact", body, 5u << 20, NULL, &res);
    ck_assert_ptr_null(strchr(res.etag, '-'));
    free(body);
}
END_TEST

/* ---- conditional writes ---------------------------------------------------------------------- */

START_TEST(test_conditional)
{
    s3_op opts;
    s3_op_init(&opts);
    opts.if_none_match = "*";
    s3_result res;
    char err[LV_ERRLEN];
    put_ok("cond", "one", 3, &opts, &res);
    ck_assert_int_eq(res.recovered, 0);
    char etag1[80];
    strcpy(etag1, res.etag);
    ck_assert_int_eq(s3_put(cl, BUCKET, "cond", "two", 3, &opts, &res, err), LV_ECONFLICT);
    ck_assert_int_eq(res.status, 412);
    ck_assert_int_eq(res.recovered, 0);
    ck_assert_ptr_nonnull(strstr(err, "PUT s3://" BUCKET "/cond"));
    ck_assert_ptr_nonnull(strstr(err, "412 PreconditionFailed"));
    get_eq("cond", 0, S3_TO_END, "one", 3);

    opts.if_none_match = NULL;
    opts.if_match = "\"00000000000000000000000000000000\"";
    ck_assert_int_eq(s3_put(cl, BUCKET, "cond", "two", 3, &opts, &res, err), LV_ECONFLICT);
    opts.if_match = etag1;
    put_ok("cond", "two", 3, &opts, &res);
    get_eq("cond", 0, S3_TO_END, "two", 3);
}
END_TEST

/* ---- listings -------------------------------------------------------------------------------- */

typedef struct keys_seen {
    char **keys;
    uint64_t *sizes;
    size_t n, cap;
    size_t stop_after; /* 0: never */
} keys_seen;

static int collect(void *ctx, const s3_entry *e)
{
    keys_seen *k = ctx;
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 64;
        k->keys = realloc(k->keys, k->cap * sizeof *k->keys);
        k->sizes = realloc(k->sizes, k->cap * sizeof *k->sizes);
    }
    k->keys[k->n] = strdup(e->key);
    k->sizes[k->n++] = e->size;
    ck_assert_int_gt(e->mtime_ms, 1600000000000LL);
    ck_assert_int_eq(e->etag[0], '"');
    return k->stop_after && k->n >= k->stop_after;
}

static void keys_free(keys_seen *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->keys[i]);
    free(k->keys);
    free(k->sizes);
    memset(k, 0, sizeof *k);
}

/* PUTs keys "<prefix>NNNNN" for i in [0, n) in one batch; each body is the key. */
static void put_many(const char *prefix, size_t n)
{
    s3_op *ops = calloc(n, sizeof *ops);
    char **names = calloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        names[i] = malloc(strlen(prefix) + 16);
        sprintf(names[i], "%s%05zu", prefix, i);
        s3_op_init(&ops[i]);
        ops[i].kind = S3_PUT;
        ops[i].key = names[i];
        ops[i].body = names[i];
        ops[i].body_len = strlen(names[i]);
    }
    char err[LV_ERRLEN] = "";
    lv_err rc = s3_run(cl, BUCKET, ops, n, err);
    ck_assert_msg(rc == LV_OK, "batch PUT: %s", err);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(ops[i].res.err, LV_OK);
        s3_op_free(&ops[i]);
        free(names[i]);
    }
    free(ops);
    free(names);
}

START_TEST(test_list)
{
    put_many("many/", 1500);
    put_many("other/", 3);
    put_many("manyx", 2);
    char err[LV_ERRLEN];
    keys_seen k = {0};
    ck_assert_int_eq(s3_list(cl, BUCKET, "many/", NULL, collect, &k, err), LV_OK);
    ck_assert_uint_eq(k.n, 1500); /* two pages */
    for (size_t i = 0; i < k.n; i++) {
        char want[32];
        sprintf(want, "many/%05zu", i);
        ck_assert_str_eq(k.keys[i], want);
        ck_assert_uint_eq(k.sizes[i], strlen(want));
    }
    keys_free(&k);

    ck_assert_int_eq(s3_list(cl, BUCKET, "many/", "many/01200", collect, &k, err), LV_OK);
    ck_assert_uint_eq(k.n, 299);
    ck_assert_str_eq(k.keys[0], "many/01201");
    keys_free(&k);

    /* the whole bucket, and a stop from the callback (past the first page) */
    ck_assert_int_eq(s3_list(cl, BUCKET, "", NULL, collect, &k, err), LV_OK);
    ck_assert_uint_eq(k.n, 1505);
    keys_free(&k);
    k.stop_after = 1001;
    ck_assert_int_eq(s3_list(cl, BUCKET, "", NULL, collect, &k, err), LV_OK);
    ck_assert_uint_eq(k.n, 1001);
    keys_free(&k);

    ck_assert_int_eq(s3_list(cl, BUCKET, "nothing/", NULL, collect, &k, err), LV_OK);
    ck_assert_uint_eq(k.n, 0);
    ck_assert_int_eq(s3_list(cl, "no-such-bucket", "", NULL, collect, &k, err), LV_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err, "NoSuchBucket"));
}
END_TEST

typedef struct many_seen {
    size_t count[4];
    char last[4][64];
} many_seen;

static int collect_many(void *ctx, size_t which, const s3_entry *e)
{
    many_seen *m = ctx;
    ck_assert_uint_lt(which, 4);
    ck_assert_msg(strcmp(m->last[which], e->key) < 0, "prefix %zu out of order: %s after %s", which,
                  e->key, m->last[which]);
    snprintf(m->last[which], sizeof m->last[which], "%s", e->key);
    m->count[which]++;
    return 0;
}

START_TEST(test_list_many)
{
    put_many("l/0000/", 1100);
    put_many("l/0001/", 10);
    put_many("l/0009/", 2);
    const char *prefixes[] = {"l/0000/", "l/0001/", "l/0002/", "l/0009/"};
    many_seen m;
    memset(&m, 0, sizeof m);
    char err[LV_ERRLEN];
    ck_assert_int_eq(s3_list_many(cl, BUCKET, prefixes, 4, collect_many, &m, err), LV_OK);
    ck_assert_uint_eq(m.count[0], 1100);
    ck_assert_uint_eq(m.count[1], 10);
    ck_assert_uint_eq(m.count[2], 0);
    ck_assert_uint_eq(m.count[3], 2);
    ck_assert_str_eq(m.last[0], "l/0000/01099");
}
END_TEST

START_TEST(test_delete_keys)
{
    put_many("del/", 2500);
    const char **keys = calloc(2501, sizeof *keys);
    char(*names)[32] = calloc(2501, sizeof *names);
    for (size_t i = 0; i < 2500; i++) {
        sprintf(names[i], "del/%05zu", i);
        keys[i] = names[i];
    }
    keys[2500] = "del/not-there"; /* not an error */
    char err[LV_ERRLEN];
    ck_assert_int_eq(s3_delete_keys(cl, BUCKET, keys, 2501, err), LV_OK);
    keys_seen k = {0};
    ck_assert_int_eq(s3_list(cl, BUCKET, "del/", NULL, collect, &k, err), LV_OK);
    ck_assert_uint_eq(k.n, 0);
    ck_assert_int_eq(s3_delete_keys(cl, "no-such-bucket", keys, 3, err), LV_ENOTFOUND);
    free(keys);
    free(names);
}
END_TEST

/* ---- keys ------------------------------------------------------------------------------------ */

START_TEST(test_odd_keys)
{
    static const char *const keys[] = {
        "with space",
        "dir/ünïcødé/файл",
        "plus+equals=amp&q?hash#pct%25",
        "trailing ",
        "pct%",
        "tilde~star*paren()comma,semi;colon:at@",
        "a//double/",
        "dollar$quote'\"<>[]{}|\\^`!",
        "dots/./x/../y",
    };
    size_t n = sizeof keys / sizeof keys[0];
    char err[LV_ERRLEN];
    s3_result res;
    for (size_t i = 0; i < n; i++) {
        put_ok(keys[i], keys[i], strlen(keys[i]), NULL, &res);
        get_eq(keys[i], 0, S3_TO_END, keys[i], strlen(keys[i]));
        ck_assert_int_eq(s3_head(cl, BUCKET, keys[i], &res, err), LV_OK);
        keys_seen k = {0};
        ck_assert_int_eq(s3_list(cl, BUCKET, keys[i], NULL, collect, &k, err), LV_OK);
        ck_assert_uint_ge(k.n, 1);
        ck_assert_str_eq(k.keys[0], keys[i]); /* raw, trailing space kept */
        keys_free(&k);
    }
    ck_assert_int_eq(s3_delete_keys(cl, BUCKET, (const char *const *)keys, n, err), LV_OK);
    keys_seen k = {0};
    ck_assert_int_eq(s3_list(cl, BUCKET, "", NULL, collect, &k, err), LV_OK);
    ck_assert_uint_eq(k.n, 0);
}
END_TEST

static void virtual_host(s3_config *c)
{
    c->path_style = 0;
}

START_TEST(test_virtual_host)
{
    /* http://test-bucket.localhost:PORT/key (curl resolves *.localhost to the loopback) */
    char ep[64];
    snprintf(ep, sizeof ep, "http://localhost:%s", strrchr(fk.endpoint, ':') + 1);
    s3_client *c = client_for(ep, TU_FAKES3_SECRET, virtual_host);
    char err[LV_ERRLEN];
    s3_result res;
    ck_assert_msg(s3_put(c, BUCKET, "vh/with space+plus", "virtual", 7, NULL, &res, err) == LV_OK,
                  "%s", err);
    get_eq("vh/with space+plus", 0, S3_TO_END, "virtual", 7); /* read back path style */
    lv_buf out;
    lv_buf_init(&out);
    ck_assert_int_eq(s3_get(c, BUCKET, "vh/with space+plus", 1, 3, &out, &res, err), LV_OK);
    ck_assert_uint_eq(out.len, 3);
    ck_assert_int_eq(memcmp(out.data, "irt", 3), 0);
    lv_buf_free(&out);
    keys_seen k = {0};
    ck_assert_int_eq(s3_list(c, BUCKET, "vh/", NULL, collect, &k, err), LV_OK);
    ck_assert_uint_eq(k.n, 1);
    ck_assert_str_eq(k.keys[0], "vh/with space+plus");
    keys_free(&k);
    const char *keys[] = {"vh/with space+plus"};
    ck_assert_int_eq(s3_delete_keys(c, BUCKET, keys, 1, err), LV_OK);
    ck_assert_int_eq(s3_head(c, BUCKET, keys[0], &res, err), LV_ENOTFOUND);
    s3_client_free(c);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------------------- */

START_TEST(test_errors)
{
    char err[LV_ERRLEN];
    s3_result res;
    lv_buf out;
    lv_buf_init(&out);
    ck_assert_int_eq(s3_get(cl, BUCKET, "missing", 0, S3_TO_END, &out, &res, err), LV_ENOTFOUND);
    ck_assert_str_eq(res.code, "NoSuchKey");
    ck_assert_str_eq(err, res.msg);
    ck_assert_ptr_nonnull(strstr(err, "GET s3://" BUCKET "/missing: 404 NoSuchKey"));
    ck_assert_uint_eq(out.len, 0);
    ck_assert_uint_eq(res.attempts, 1); /* a 404 is final */
    ck_assert_int_eq(s3_get(cl, "no-such-bucket", "k", 0, 10, &out, &res, err), LV_ENOTFOUND);
    ck_assert_str_eq(res.code, "NoSuchBucket");
    ck_assert_ptr_nonnull(strstr(err, "bytes=0-9"));
    ck_assert_int_eq(s3_put(cl, "no-such-bucket", "k", "x", 1, NULL, &res, err), LV_ENOTFOUND);

    s3_client *bad = client_for(fk.endpoint, "wrong-secret", NULL);
    ck_assert_int_eq(s3_get(bad, BUCKET, "k", 0, S3_TO_END, &out, &res, err), LV_EACCESS);
    ck_assert_int_eq(res.status, 403);
    ck_assert_ptr_nonnull(strstr(err, "SignatureDoesNotMatch"));
    ck_assert_int_eq(s3_put(bad, BUCKET, "k", "x", 1, NULL, &res, err), LV_EACCESS);
    keys_seen k = {0};
    ck_assert_int_eq(s3_list(bad, BUCKET, "", NULL, collect, &k, err), LV_EACCESS);
    s3_client_free(bad);
    lv_buf_free(&out);

    /* endpoints that are not one */
    s3_config cfg;
    s3_config_init(&cfg);
    s3_client *c = NULL;
    const char *bad_eps[] = {"ftp://x", "http://", "http://host/path", "127.0.0.1:9000"};
    for (size_t i = 0; i < 4; i++) {
        cfg.endpoint = bad_eps[i];
        ck_assert_int_eq(s3_client_new(&cfg, &c, err), LV_EINVAL);
        ck_assert_ptr_null(c);
    }
    cfg.endpoint = "https://s3.example.com/";
    ck_assert_int_eq(s3_client_new(&cfg, &c, err), LV_OK);
    ck_assert_str_eq(s3_client_endpoint(c), "https://s3.example.com");
    s3_client_free(c);
    cfg.endpoint = NULL;
    cfg.region = "eu-west-3";
    ck_assert_int_eq(s3_client_new(&cfg, &c, err), LV_OK);
    ck_assert_str_eq(s3_client_endpoint(c), "https://s3.eu-west-3.amazonaws.com");
    s3_client_free(c);
}
END_TEST

static void fast_retries(s3_config *c)
{
    c->retry_total_ms = 1500;
    c->retry_base_ms = 50;
    c->retry_cap_ms = 400;
    c->max_attempts = 100;
}

START_TEST(test_server_down)
{
    /* a port nothing listens on: bind one, then close it */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &al), 0);
    close(s);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", ntohs(a.sin_port));
    s3_client *c = client_for(ep, TU_FAKES3_SECRET, fast_retries);

    char err[LV_ERRLEN];
    s3_result res;
    lv_buf out;
    lv_buf_init(&out);
    int64_t t0 = s3_mono_ms();
    ck_assert_int_eq(s3_get(c, BUCKET, "k", 0, 100, &out, &res, err), LV_ENET);
    int64_t el = s3_mono_ms() - t0;
    ck_assert_msg(el < 5000, "gave up after %lld ms", (long long)el);
    ck_assert_msg(el >= 100, "gave up after only %lld ms", (long long)el);
    ck_assert_uint_gt(res.attempts, 1);
    ck_assert_int_eq(res.status, 0);
    ck_assert_msg(strstr(err, ep) && strstr(err, "connection refused") &&
                      strstr(err, "GET s3://" BUCKET "/k bytes=0-99") && strstr(err, "attempts"),
                  "message: %s", err);
    keys_seen k = {0};
    t0 = s3_mono_ms();
    ck_assert_int_eq(s3_list(c, BUCKET, "", NULL, collect, &k, err), LV_ENET);
    ck_assert_int_lt(s3_mono_ms() - t0, 5000);
    ck_assert_ptr_nonnull(strstr(err, ep));
    lv_buf_free(&out);
    s3_client_free(c);
}
END_TEST

/* ---- batches, sinks, clock ------------------------------------------------------------------- */

static void inflight16(s3_config *c)
{
    c->max_inflight = 16;
}

START_TEST(test_batch_gets)
{
    enum { N = 64, SZ = 100000 };
    s3_client *c = client_for(fk.endpoint, TU_FAKES3_SECRET, inflight16);
    uint8_t *data[N];
    char names[N][32];
    s3_op ops[N];
    for (int i = 0; i < N; i++) {
        data[i] = random_bytes(SZ, (uint64_t)i + 100);
        sprintf(names[i], "batch/%02d", i);
        s3_op_init(&ops[i]);
        ops[i].kind = S3_PUT;
        ops[i].key = names[i];
        ops[i].body = data[i];
        ops[i].body_len = SZ;
    }
    char err[LV_ERRLEN];
    ck_assert_int_eq(s3_run(c, BUCKET, ops, N, err), LV_OK);
    for (int i = 0; i < N; i++) {
        s3_op_free(&ops[i]);
        s3_op_init(&ops[i]);
        ops[i].kind = S3_GET;
        ops[i].key = names[i];
        ops[i].off = (uint64_t)i * 100;
        ops[i].len = 1000;
    }
    s3_op_init(&ops[N - 1]);
    ops[N - 1].key = "batch/missing"; /* one failure does not stop the others */
    ck_assert_int_eq(s3_run(c, BUCKET, ops, N, err), LV_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err, "batch/missing"));
    for (int i = 0; i < N - 1; i++) {
        ck_assert_int_eq(ops[i].res.err, LV_OK);
        ck_assert_uint_eq(ops[i].out.len, 1000);
        ck_assert_int_eq(memcmp(ops[i].out.data, data[i] + i * 100, 1000), 0);
        ck_assert_uint_eq(ops[i].res.size, SZ);
    }
    ck_assert_int_eq(ops[N - 1].res.err, LV_ENOTFOUND);
    for (int i = 0; i < N; i++) {
        s3_op_free(&ops[i]);
        free(data[i]);
    }
    s3_client_free(c);
}
END_TEST

typedef struct sink_state {
    lv_buf got;
    size_t calls, restarts, abort_at;
} sink_state;

static int sink(void *ctx, const void *data, size_t n, int restart)
{
    sink_state *s = ctx;
    if (restart) {
        s->restarts++;
        lv_buf_reset(&s->got);
    }
    s->calls++;
    lv_buf_append(&s->got, data, n);
    return s->abort_at && s->got.len >= s->abort_at;
}

START_TEST(test_sink)
{
    size_t n = 3u << 20;
    uint8_t *body = random_bytes(n, 3);
    s3_result res;
    put_ok("sink", body, n, NULL, &res);
    sink_state st;
    memset(&st, 0, sizeof st);
    lv_buf_init(&st.got);
    s3_op op;
    s3_op_init(&op);
    op.key = "sink";
    op.off = 10;
    op.sink = sink;
    op.sink_ctx = &st;
    char err[LV_ERRLEN];
    ck_assert_int_eq(s3_run(cl, BUCKET, &op, 1, err), LV_OK);
    ck_assert_uint_eq(st.got.len, n - 10);
    ck_assert_int_eq(memcmp(st.got.data, body + 10, n - 10), 0);
    ck_assert_uint_eq(op.out.len, 0);
    ck_assert_uint_eq(st.restarts, 0);

    lv_buf_reset(&st.got);
    st.abort_at = 100000;
    ck_assert_int_eq(s3_run(cl, BUCKET, &op, 1, err), LV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "aborted by the caller"));
    ck_assert_uint_eq(op.res.attempts, 1);
    s3_op_free(&op);
    lv_buf_free(&st.got);
    free(body);
}
END_TEST

static int64_t clock_2015(void *ctx)
{
    (void)ctx;
    return 1440938160000LL; /* 2015-08-30T12:36:00Z */
}

static void old_clock(s3_config *c)
{
    c->now_ms = clock_2015;
}

START_TEST(test_injected_clock)
{
    /* the signing date comes from the injected clock: ten years off is refused */
    s3_client *c = client_for(fk.endpoint, TU_FAKES3_SECRET, old_clock);
    char err[LV_ERRLEN];
    s3_result res;
    ck_assert_int_eq(s3_head(c, BUCKET, "x", &res, err), LV_EACCESS);
    ck_assert_int_eq(res.status, 403);
    lv_buf out;
    lv_buf_init(&out);
    ck_assert_int_eq(s3_get(c, BUCKET, "x", 0, 1, &out, &res, err), LV_EACCESS);
    ck_assert_str_eq(res.code, "RequestTimeTooSkewed");
    lv_buf_free(&out);
    s3_client_free(c);
}
END_TEST

/* Client-side TCP sockets (any state, TIME_WAIT too) whose remote port is port. */
static int sockets_to(int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned rport;
        if (sscanf(line, " %*d: %*x:%*x %*x:%x", &rport) == 1 && (int)rport == port)
            n++;
    }
    fclose(f);
    return n;
}

START_TEST(test_connection_reuse)
{
    int port = atoi(strrchr(fk.endpoint, ':') + 1);
    char err[LV_ERRLEN];
    s3_result res;
    put_ok("reuse", "x", 1, NULL, &res);
    int before = sockets_to(port);
    /* twenty calls one after the other: one connection, kept from call to call (a new
     * connection per call would leave a TIME_WAIT socket behind each) */
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(s3_head(cl, BUCKET, "reuse", &res, err), LV_OK);
        lv_buf out;
        lv_buf_init(&out);
        ck_assert_int_eq(s3_get(cl, BUCKET, "reuse", 0, 1, &out, &res, err), LV_OK);
        lv_buf_free(&out);
    }
    int after = sockets_to(port);
    ck_assert_msg(after <= before + 1, "%d client sockets to fakes3 before, %d after 40 calls",
                  before, after);
    ck_assert_int_ge(after, 1);
}
END_TEST

#include "alloc.h"

START_TEST(test_alloc_failures)
{
    /* every allocation of lib/ failing in turn: each call fails cleanly or succeeds, never
     * crashes or leaks (the sanitizer build checks the leaks) */
    size_t n = 6u << 20; /* multipart */
    uint8_t *body = random_bytes(n, 9);
    s3_result res;
    put_ok("oom/a", "abc", 3, NULL, &res);
    int ok_runs = 0;
    for (long k = 0; k < 400; k++) {
        char err[LV_ERRLEN] = "";
        lv_alloc_fail_after(k);
        s3_client *c = NULL;
        s3_config cfg;
        s3_config_init(&cfg);
        cfg.endpoint = fk.endpoint;
        cfg.path_style = 1;
        cfg.access_key = TU_FAKES3_KEY;
        cfg.secret_key = TU_FAKES3_SECRET;
        cfg.max_attempts = 1;
        int all = 0;
        if (s3_client_new(&cfg, &c, err) == LV_OK) {
            lv_buf out;
            lv_buf_init(&out);
            s3_op opts;
            s3_op_init(&opts);
            opts.if_none_match = "*";
            opts.content_md5 = 1;
            char key[32];
            snprintf(key, sizeof key, "oom/mp%ld", k);
            const char *keys[] = {key, "oom/none"};
            keys_seen ks = {0};
            /* the server is fine: a failure can only be the allocation, and says so (review
             * 14: a buffer that cannot grow used to be reported as a network failure) */
            lv_err g = s3_get(c, BUCKET, "oom/a", 0, 2, &out, NULL, err);
            ck_assert_msg(g == LV_OK || g == LV_ENOMEM, "k %ld: %s: %s", k, lv_strerror(g), err);
            all = g == LV_OK;
            all &= s3_put(c, BUCKET, key, body, n, &opts, &res, err) == LV_OK;
            all &= s3_list(c, BUCKET, "oom/", NULL, collect, &ks, err) == LV_OK;
            all &= s3_delete_keys(c, BUCKET, keys, 2, err) == LV_OK;
            keys_free(&ks);
            lv_buf_free(&out);
            s3_client_free(c);
        }
        long used = lv_alloc_fail_after(-1);
        if (all)
            ok_runs++;
        if (all && used < k)
            break; /* every allocation of the sequence succeeded */
    }
    ck_assert_int_ge(ok_runs, 1);
    free(body);
}
END_TEST

/* ---- threads --------------------------------------------------------------------------------- */

typedef struct thread_arg {
    int id;
    int failures;
    char msg[LV_ERRLEN];
} thread_arg;

static void *worker(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 40 && !a->failures; i++) {
        char key[64], body[64];
        snprintf(key, sizeof key, "t%d/%03d", a->id, i);
        snprintf(body, sizeof body, "thread %d object %d", a->id, i);
        char err[LV_ERRLEN] = "";
        if (s3_put(cl, BUCKET, key, body, strlen(body), NULL, NULL, err) != LV_OK) {
            a->failures++;
            snprintf(a->msg, sizeof a->msg, "%s", err);
            break;
        }
        lv_buf out;
        lv_buf_init(&out);
        if (s3_get(cl, BUCKET, key, 0, S3_TO_END, &out, NULL, err) != LV_OK ||
            out.len != strlen(body) || memcmp(out.data, body, out.len) != 0) {
            a->failures++;
            snprintf(a->msg, sizeof a->msg, "GET %s: %s", key, err);
        }
        lv_buf_free(&out);
    }
    return NULL;
}

START_TEST(test_threads)
{
    pthread_t t[4];
    thread_arg a[4];
    for (int i = 0; i < 4; i++) {
        memset(&a[i], 0, sizeof a[i]);
        a[i].id = i;
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(a[i].failures == 0, "thread %d: %s", i, a[i].msg);
    }
    keys_seen k = {0};
    char err[LV_ERRLEN];
    ck_assert_int_eq(s3_list(cl, BUCKET, "t", NULL, collect, &k, err), LV_OK);
    ck_assert_uint_eq(k.n, 160);
    keys_free(&k);
}
END_TEST

/* ---- faults (fakes3 --fault) ---------------------------------------------------------------- */

static void quick_retries(s3_config *c)
{
    c->retry_base_ms = 10;
    c->retry_cap_ms = 200;
    c->max_attempts = 10;
    c->retry_total_ms = 30000;
    c->stall_timeout_ms = 1000;
}

/* Starts fakes3 with args and a client with quick retries on it (cl). */
static void start_faulty(const char *const *args)
{
    tu_fakes3_start(&fk, args);
    cl = client_for(fk.endpoint, TU_FAKES3_SECRET, quick_retries);
}

START_TEST(test_faults_get)
{
    /* about 27% of GETs fail: a 503, a reset, or a body cut after 100 bytes */
    const char *args[] = {"--seed",  "7",
                          "--fault", "error 503 SlowDown op=GetObject p=0.1",
                          "--fault", "reset op=GetObject p=0.1",
                          "--fault", "truncate 100 op=GetObject p=0.1",
                          NULL};
    start_faulty(args);
    enum { N = 40, SZ = 200000 };
    uint8_t *data = random_bytes(SZ, 11);
    char names[N][32];
    s3_op ops[N];
    for (int i = 0; i < N; i++) {
        sprintf(names[i], "f/%02d", i);
        s3_result res;
        put_ok(names[i], data, SZ, NULL, &res);
    }
    for (int i = 0; i < N; i++) {
        s3_op_init(&ops[i]);
        ops[i].key = names[i];
        if (i % 2) { /* half whole, half ranges */
            ops[i].off = (uint64_t)i * 1000;
            ops[i].len = 50000;
        }
    }
    char err[LV_ERRLEN];
    ck_assert_msg(s3_run(cl, BUCKET, ops, N, err) == LV_OK, "%s", err);
    unsigned attempts = 0, retried = 0;
    for (int i = 0; i < N; i++) {
        size_t off = i % 2 ? (size_t)i * 1000 : 0, len = i % 2 ? 50000 : SZ;
        ck_assert_uint_eq(ops[i].out.len, len);
        ck_assert_msg(memcmp(ops[i].out.data, data + off, len) == 0, "GET %d: wrong bytes", i);
        attempts += ops[i].res.attempts;
        retried += ops[i].res.attempts > 1;
        s3_op_free(&ops[i]);
    }
    ck_assert_msg(retried >= 3 && attempts > N, "%u attempts for %d GETs, %u retried", attempts, N,
                  retried);

    /* to a sink: a retried attempt starts the range over with restart = 1 */
    size_t restarts = 0;
    for (int i = 0; i < N; i++) {
        sink_state st;
        memset(&st, 0, sizeof st);
        lv_buf_init(&st.got);
        s3_op op;
        s3_op_init(&op);
        op.key = names[i];
        op.sink = sink;
        op.sink_ctx = &st;
        ck_assert_msg(s3_run(cl, BUCKET, &op, 1, err) == LV_OK, "%s", err);
        ck_assert_uint_eq(st.got.len, SZ);
        ck_assert_int_eq(memcmp(st.got.data, data, SZ), 0);
        restarts += st.restarts;
        s3_op_free(&op);
        lv_buf_free(&st.got);
    }
    ck_assert_msg(restarts >= 1, "no truncated body was restarted");
    free(data);
    s3_client_free(cl);
    tu_fakes3_stop(&fk);
}
END_TEST

static void short_budget(s3_config *c)
{
    quick_retries(c);
    c->retry_total_ms = 1500;
    c->max_attempts = 6;
}

START_TEST(test_faults_message)
{
    /* every GET is a 503 SlowDown: the message says what failed and how often */
    const char *args[] = {"--fault", "error 503 SlowDown op=GetObject", NULL};
    tu_fakes3_start(&fk, args);
    cl = client_for(fk.endpoint, TU_FAKES3_SECRET, short_budget);
    s3_result res;
    put_ok("k", "0123456789", 10, NULL, &res);
    lv_buf out;
    lv_buf_init(&out);
    char err[LV_ERRLEN];
    int64_t t0 = s3_mono_ms();
    ck_assert_int_eq(s3_get(cl, BUCKET, "k", 0, 5, &out, &res, err), LV_ENET);
    ck_assert_int_lt(s3_mono_ms() - t0, 5000);
    ck_assert_int_eq(res.status, 503);
    ck_assert_str_eq(res.code, "SlowDown");
    ck_assert_uint_eq(res.attempts, 6);
    ck_assert_msg(
        strncmp(err, "GET s3://" BUCKET "/k bytes=0-4: 503 SlowDown after 6 attempts (",
                strlen("GET s3://" BUCKET "/k bytes=0-4: 503 SlowDown after 6 attempts (")) == 0,
        "message: %s", err);
    ck_assert_ptr_nonnull(strstr(err, " s): "));
    lv_buf_free(&out);
    s3_client_free(cl);
    tu_fakes3_stop(&fk);
}
END_TEST

START_TEST(test_faults_stall)
{
    /* the first GET gets no answer: the stall timeout (1 s) ends it and the retry reads */
    const char *args[] = {"--fault", "stall op=GetObject nth=1", NULL};
    start_faulty(args);
    s3_result res;
    put_ok("s", "stalled", 7, NULL, &res);
    int64_t t0 = s3_mono_ms();
    get_eq("s", 0, S3_TO_END, "stalled", 7);
    int64_t el = s3_mono_ms() - t0;
    ck_assert_msg(el >= 900 && el < 10000, "stalled GET took %lld ms", (long long)el);
    s3_client_free(cl);
    tu_fakes3_stop(&fk);
}
END_TEST

START_TEST(test_faults_lost_response)
{
    /* the first PUT is applied, then its connection reset: the retry gets 412, and the stored
     * object is ours */
    const char *args[] = {"--fault", "lost-response op=PutObject nth=1", "--fault",
                          "lost-response op=CompleteMultipartUpload nth=1", NULL};
    start_faulty(args);
    s3_op opts;
    s3_op_init(&opts);
    opts.if_none_match = "*";
    s3_result res;
    char err[LV_ERRLEN];
    ck_assert_msg(s3_put(cl, BUCKET, "lost", "mine", 4, &opts, &res, err) == LV_OK, "%s", err);
    ck_assert_int_eq(res.recovered, 1);
    ck_assert_uint_ge(res.attempts, 2);
    get_eq("lost", 0, S3_TO_END, "mine", 4);

    /* the same for a multipart upload: its Complete's answer is lost */
    size_t n = 12u << 20;
    uint8_t *body = random_bytes(n, 5);
    ck_assert_msg(s3_put(cl, BUCKET, "lost-mp", body, n, &opts, &res, err) == LV_OK, "%s", err);
    ck_assert_int_eq(res.recovered, 1);
    get_eq("lost-mp", 0, S3_TO_END, body, n);

    /* no lost response: a plain conflict, never "recovered" */
    ck_assert_int_eq(s3_put(cl, BUCKET, "lost", "mine", 4, &opts, &res, err), LV_ECONFLICT);
    ck_assert_int_eq(res.recovered, 0);
    free(body);
    s3_client_free(cl);
    tu_fakes3_stop(&fk);
}
END_TEST

START_TEST(test_faults_inflight)
{
    /* every GET waits 200 ms in fakes3: 64 GETs at max_inflight 16 take four rounds (at least
     * 800 ms if the limit holds), far less than one after the other (12.8 s) */
    const char *args[] = {"--fault", "latency 200ms op=GetObject", NULL};
    tu_fakes3_start(&fk, args);
    cl = client_for(fk.endpoint, TU_FAKES3_SECRET, inflight16);
    enum { N = 64 };
    char names[N][16];
    s3_op ops[N];
    for (int i = 0; i < N; i++) {
        sprintf(names[i], "lat/%02d", i);
        s3_op_init(&ops[i]);
        ops[i].kind = S3_PUT;
        ops[i].key = names[i];
        ops[i].body = names[i];
        ops[i].body_len = strlen(names[i]);
    }
    char err[LV_ERRLEN];
    ck_assert_msg(s3_run(cl, BUCKET, ops, N, err) == LV_OK, "%s", err);
    for (int i = 0; i < N; i++) {
        s3_op_free(&ops[i]);
        s3_op_init(&ops[i]);
        ops[i].key = names[i];
    }
    int64_t t0 = s3_mono_ms();
    ck_assert_msg(s3_run(cl, BUCKET, ops, N, err) == LV_OK, "%s", err);
    int64_t el = s3_mono_ms() - t0;
    for (int i = 0; i < N; i++) {
        ck_assert_uint_eq(ops[i].out.len, strlen(names[i]));
        s3_op_free(&ops[i]);
    }
    ck_assert_msg(el >= 780, "64 GETs of 200 ms at max_inflight 16 took %lld ms", (long long)el);
    ck_assert_msg(el < 6000, "64 GETs of 200 ms at max_inflight 16 took %lld ms", (long long)el);
    s3_client_free(cl);
    tu_fakes3_stop(&fk);
}
END_TEST

START_TEST(test_faults_other_writer)
{
    /* another client writes the key first; our conditional PUT's first attempt gets a 500 (it
     * may have been applied: review 2), the retry gets 412, the check finds the stored object is
     * not ours: a conflict */
    const char *args[] = {"--fault", "error 500 InternalError op=PutObject nth=2", "--fault",
                          "reset op=PutObject nth=4", NULL};
    start_faulty(args);
    s3_result res;
    put_ok("contested", "theirs", 6, NULL, &res); /* PutObject 1: the other writer */
    s3_op opts;
    s3_op_init(&opts);
    opts.if_none_match = "*";
    char err[LV_ERRLEN];
    ck_assert_int_eq(s3_put(cl, BUCKET, "contested", "ours!!", 6, &opts, &res, err), LV_ECONFLICT);
    ck_assert_int_eq(res.recovered, 0);
    ck_assert_msg(res.attempts >= 2, "%u attempts, status %d: %s", res.attempts, res.status, err);
    ck_assert_int_eq(res.status, 412);
    ck_assert_msg(strstr(err, "not ours") != NULL, "message: %s", err);
    get_eq("contested", 0, S3_TO_END, "theirs", 6);

    /* the same with the first attempt reset (PutObject 4). Whether the check runs depends on
     * timing: when the reset comes before curl has sent the body, curl resends the request on a
     * new connection by itself, and nothing can have been applied. Either way: a conflict */
    put_ok("contested2", "theirs", 6, NULL, &res); /* PutObject 3 */
    ck_assert_int_eq(s3_put(cl, BUCKET, "contested2", "ours!!", 6, &opts, &res, err), LV_ECONFLICT);
    ck_assert_int_eq(res.recovered, 0);
    ck_assert_int_eq(res.status, 412);
    get_eq("contested2", 0, S3_TO_END, "theirs", 6);
    s3_client_free(cl);
    tu_fakes3_stop(&fk);
}
END_TEST

/* ---- a scripted HTTP server: what fakes3 cannot be made to say --------------------------------
 */

/*
 * A thread on 127.0.0.1 that reads requests (headers, then Content-Length bytes of body) and
 * answers each with what the test's answer function writes. One thread per connection, so a
 * client's pool of connections works as with a real server.
 */
typedef struct canned canned;
/* Writes the answer to request number nth (1-based, over all connections) on fd: returns 0 to
 * keep the connection, 1 to close it. */
typedef int (*canned_fn)(canned *s, int fd, int nth, const char *method, const char *target,
                         const char *headers);
struct canned {
    int lfd, port;
    volatile int stop;
    canned_fn answer;
    void *ctx;
    pthread_t accept_th;
    pthread_t conn_th[64];
    int n_conn;
    pthread_mutex_t mu;
    int n_req;
    char log[64][200]; /* "METHOD target" of each request */
};

typedef struct canned_conn {
    canned *s;
    int fd;
} canned_conn;

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w, n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* A response with a body and the given extra header lines ("Name: v\r\n"...). */
static void send_resp(int fd, const char *status, const char *extra, const char *body)
{
    char head[1024];
    snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Length: %zu\r\n%s\r\n", status,
             strlen(body), extra ? extra : "");
    send_str(fd, head);
    send_str(fd, body);
}

static void *canned_conn_main(void *p)
{
    canned_conn *cc = p;
    canned *s = cc->s;
    int fd = cc->fd;
    free(cc);
    char buf[1 << 16];
    size_t have = 0;
    for (;;) {
        char *end = NULL;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            struct pollfd pf = {.fd = fd, .events = POLLIN};
            int pr = poll(&pf, 1, 100);
            if (s->stop)
                goto out;
            if (pr <= 0)
                continue;
            ssize_t r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
            if (r <= 0)
                goto out;
            have += (size_t)r;
            buf[have] = '\0';
        }
        size_t hlen = (size_t)(end - buf) + 4;
        char headers[8192];
        size_t cp = hlen < sizeof headers - 1 ? hlen : sizeof headers - 1;
        memcpy(headers, buf, cp);
        headers[cp] = '\0';
        char method[16] = "", target[180] = "";
        sscanf(headers, "%15s %179s", method, target);
        unsigned long long clen = 0;
        for (char *h = headers; (h = strchr(h, '\n')); h++)
            if (strncasecmp(h + 1, "content-length:", 15) == 0)
                clen = strtoull(h + 16, NULL, 10);
        /* drop the body */
        size_t in_buf = have - hlen;
        unsigned long long left = clen;
        if (in_buf >= left) {
            memmove(buf, buf + hlen + left, in_buf - left);
            have = in_buf - left;
            left = 0;
        } else {
            left -= in_buf;
            have = 0;
        }
        while (left) {
            ssize_t r = recv(fd, buf, left < sizeof buf ? left : sizeof buf, 0);
            if (r <= 0)
                goto out;
            left -= (unsigned long long)r;
        }
        pthread_mutex_lock(&s->mu);
        int nth = ++s->n_req;
        if (nth <= 64)
            snprintf(s->log[nth - 1], sizeof s->log[0], "%s %s", method, target);
        pthread_mutex_unlock(&s->mu);
        if (s->answer(s, fd, nth, method, target, headers))
            break;
    }
out:
    close(fd);
    return NULL;
}

static void *canned_accept_main(void *p)
{
    canned *s = p;
    while (!s->stop) {
        struct pollfd pf = {.fd = s->lfd, .events = POLLIN};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        canned_conn *cc = malloc(sizeof *cc);
        cc->s = s;
        cc->fd = fd;
        pthread_mutex_lock(&s->mu);
        int ok = s->n_conn < 64;
        if (ok && pthread_create(&s->conn_th[s->n_conn], NULL, canned_conn_main, cc) == 0)
            s->n_conn++;
        else
            ok = 0;
        pthread_mutex_unlock(&s->mu);
        if (!ok) {
            close(fd);
            free(cc);
        }
    }
    return NULL;
}

static void canned_start(canned *s, canned_fn answer, void *ctx)
{
    memset(s, 0, sizeof *s);
    s->answer = answer;
    s->ctx = ctx;
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    ck_assert_int_eq(listen(s->lfd, 16), 0);
    s->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&s->accept_th, NULL, canned_accept_main, s), 0);
}

static void canned_stop(canned *s)
{
    s->stop = 1;
    pthread_join(s->accept_th, NULL);
    for (int i = 0; i < s->n_conn; i++)
        pthread_join(s->conn_th[i], NULL);
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
}

/* How many requests began with prefix ("POST /b/k?uploadId"). */
static int canned_count(canned *s, const char *prefix)
{
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_req && i < 64; i++)
        n += strncmp(s->log[i], prefix, strlen(prefix)) == 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static s3_client *canned_client(canned *s, void (*tweak)(s3_config *))
{
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", s->port);
    return client_for(ep, TU_FAKES3_SECRET, tweak);
}

/* A multipart upload whose Complete answers 200 at once, then nothing for 1.5 s, then a space,
 * then nothing for 1.5 s, then the document after a newline and spaces (as AWS and MinIO do) */
static int answer_slow_complete(canned *s, int fd, int nth, const char *method, const char *target,
                                const char *headers)
{
    (void)s, (void)nth, (void)headers;
    if (strcmp(method, "POST") == 0 && strstr(target, "?uploads")) {
        send_resp(fd, "200 OK", NULL,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult>"
                  "<Bucket>b</Bucket><Key>k</Key><UploadId>u1</UploadId>"
                  "</InitiateMultipartUploadResult>");
        return 0;
    }
    if (strcmp(method, "PUT") == 0 && strstr(target, "partNumber=")) {
        send_resp(fd, "200 OK", "ETag: \"0123456789abcdef0123456789abcdef\"\r\n", "");
        return 0;
    }
    if (strcmp(method, "POST") == 0 && strstr(target, "uploadId=u1")) {
        send_str(fd,
                 "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nConnection: close\r\n\r\n");
        usleep(1500 * 1000);
        send_str(fd, " ");
        usleep(1500 * 1000);
        send_str(fd,
                 "\n  <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult>"
                 "<Bucket>b</Bucket><Key>k</Key><ETag>\"slow-2\"</ETag>"
                 "</CompleteMultipartUploadResult>");
        return 1;
    }
    send_resp(fd, "400 Bad Request", NULL, "<Error><Code>Unexpected</Code></Error>");
    return 0;
}

static void one_second_stall(s3_config *c)
{
    quick_retries(c);
    c->stall_timeout_ms = 1000;
}

START_TEST(test_slow_complete)
{
    /* review 1: a Complete silent for longer than the stall time, whose document comes after
     * whitespace, succeeded: one attempt, its ETag, no Abort */
    canned s;
    canned_start(&s, answer_slow_complete, NULL);
    cl = canned_client(&s, one_second_stall);
    size_t n = (5u << 20) + 1000;
    uint8_t *body = random_bytes(n, 3);
    s3_result res;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(s3_put(cl, "b", "k", body, n, NULL, &res, err) == LV_OK, "%s", err);
    ck_assert_str_eq(res.etag, "\"slow-2\"");
    ck_assert_uint_eq(res.attempts, 1);
    ck_assert_int_eq(canned_count(&s, "POST /b/k?uploadId"), 1);
    ck_assert_int_eq(canned_count(&s, "DELETE"), 0);
    free(body);
    s3_client_free(cl);
    canned_stop(&s);
}
END_TEST

/* A bucket in eu-west-1 asked through us-east-1: HEAD gets a bare 301, GET a 400
 * AuthorizationHeaderMalformed, both with x-amz-bucket-region */
static int answer_wrong_region(canned *s, int fd, int nth, const char *method, const char *target,
                               const char *headers)
{
    (void)s, (void)nth, (void)target, (void)headers;
    if (strcmp(method, "HEAD") == 0) {
        send_str(fd, "HTTP/1.1 301 Moved Permanently\r\nx-amz-bucket-region: eu-west-1\r\n"
                     "Content-Length: 0\r\n\r\n");
        return 0;
    }
    send_resp(fd, "400 Bad Request", "x-amz-bucket-region: eu-west-1\r\n",
              "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' "
              "is wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region></Error>");
    return 0;
}

START_TEST(test_wrong_region)
{
    /* review 4: said as such, final (LV_EINVAL, one attempt) */
    canned s;
    canned_start(&s, answer_wrong_region, NULL);
    cl = canned_client(&s, quick_retries);
    s3_result res;
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(s3_head(cl, "b", "k", &res, err), LV_EINVAL);
    ck_assert_uint_eq(res.attempts, 1);
    ck_assert_int_eq(res.status, 301);
    ck_assert_msg(strstr(err, "301 PermanentRedirect: the bucket is in eu-west-1") &&
                      strstr(err, "?region=eu-west-1") && strstr(err, "AWS_REGION=eu-west-1"),
                  "message: %s", err);
    lv_buf out;
    lv_buf_init(&out);
    ck_assert_int_eq(s3_get(cl, "b", "k", 0, S3_TO_END, &out, &res, err), LV_EINVAL);
    ck_assert_uint_eq(res.attempts, 1);
    ck_assert_msg(strstr(err, "400 AuthorizationHeaderMalformed: the bucket is in eu-west-1"),
                  "message: %s", err);
    lv_buf_free(&out);
    s3_client_free(cl);
    canned_stop(&s);
}
END_TEST

/* GETs answered 200 with the whole object, Range or not; "/b/shifted" gets a 206 for the wrong
 * range; "/b/weird" gets a malformed response the first time */
static int answer_no_range(canned *s, int fd, int nth, const char *method, const char *target,
                           const char *headers)
{
    (void)s, (void)nth, (void)method, (void)headers;
    if (strcmp(target, "/b/shifted") == 0) {
        send_resp(fd, "206 Partial Content", "Content-Range: bytes 0-3/10\r\n", "0123");
        return 0;
    }
    if (strcmp(target, "/b/weird") == 0 && canned_count(s, "GET /b/weird") == 1) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n");
        return 1;
    }
    send_resp(fd, "200 OK", NULL, "0123456789");
    return 0;
}

START_TEST(test_range_ignored)
{
    /* review 17: a server may ignore Range (RFC 9110): the client keeps the range asked for;
     * review 7: a 206 for another range is refused; review 6: a malformed reply is retried */
    canned s;
    canned_start(&s, answer_no_range, NULL);
    cl = canned_client(&s, quick_retries);
    struct {
        uint64_t off, len;
        const char *want;
    } cases[] = {{0, 5, "01234"}, {3, 4, "3456"}, {8, S3_TO_END, "89"}, {7, 100, "789"}};
    char err[LV_ERRLEN] = "";
    s3_result res;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lv_buf out;
        lv_buf_init(&out);
        ck_assert_msg(s3_get(cl, "b", "k", cases[i].off, cases[i].len, &out, &res, err) == LV_OK,
                      "case %zu: %s", i, err);
        ck_assert_uint_eq(out.len, strlen(cases[i].want));
        ck_assert_int_eq(memcmp(out.data, cases[i].want, out.len), 0);
        ck_assert_uint_eq(res.size, 10);
        lv_buf_free(&out);
    }
    /* to a sink too */
    sink_state st;
    memset(&st, 0, sizeof st);
    lv_buf_init(&st.got);
    s3_op op;
    s3_op_init(&op);
    op.key = "k";
    op.off = 2;
    op.len = 3;
    op.sink = sink;
    op.sink_ctx = &st;
    ck_assert_msg(s3_run(cl, "b", &op, 1, err) == LV_OK, "%s", err);
    ck_assert_uint_eq(st.got.len, 3);
    ck_assert_int_eq(memcmp(st.got.data, "234", 3), 0);
    s3_op_free(&op);
    lv_buf_free(&st.got);

    lv_buf out;
    lv_buf_init(&out);
    ck_assert_int_eq(s3_get(cl, "b", "shifted", 4, 4, &out, &res, err), LV_ECORRUPT);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_msg(strstr(err, "does not start at 4"), "message: %s", err);
    ck_assert_int_eq(s3_get(cl, "b", "weird", 0, S3_TO_END, &out, &res, err), LV_OK);
    ck_assert_uint_eq(res.attempts, 2);
    ck_assert_uint_eq(out.len, 10);
    lv_buf_free(&out);
    s3_client_free(cl);
    canned_stop(&s);
}
END_TEST

/* A PUT under SSE-KMS: the first attempt's answer never comes (connection closed), the retry
 * gets 412, HEAD's ETag is not an MD5; GET returns the stored bytes (ctx: "mine" or others) */
static int answer_kms(canned *s, int fd, int nth, const char *method, const char *target,
                      const char *headers)
{
    (void)nth, (void)target, (void)headers;
    if (strcmp(method, "PUT") == 0) {
        if (canned_count(s, "PUT") == 1)
            return 1; /* applied, never answered */
        send_resp(fd, "412 Precondition Failed", NULL,
                  "<Error><Code>PreconditionFailed</Code></Error>");
        return 0;
    }
    const char *stored = s->ctx;
    char extra[128];
    snprintf(extra, sizeof extra,
             "ETag: \"kms-not-an-md5\"\r\nx-amz-server-side-encryption: aws:kms\r\n");
    if (strcmp(method, "HEAD") == 0) {
        char head[256];
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n%s\r\n",
                 strlen(stored), extra);
        send_str(fd, head);
        return 0;
    }
    send_resp(fd, "200 OK", extra, stored);
    return 0;
}

START_TEST(test_lost_response_kms)
{
    /* review 10: the ETag is no MD5: the check compares the bytes */
    const char *stored[] = {"mine", "them"};
    for (int i = 0; i < 2; i++) {
        canned s;
        canned_start(&s, answer_kms, (void *)stored[i]);
        cl = canned_client(&s, quick_retries);
        s3_op opts;
        s3_op_init(&opts);
        opts.if_none_match = "*";
        s3_result res;
        char err[LV_ERRLEN] = "";
        lv_err rc = s3_put(cl, "b", "k", "mine", 4, &opts, &res, err);
        if (i == 0) {
            ck_assert_msg(rc == LV_OK, "%s", err);
            ck_assert_int_eq(res.recovered, 1);
        } else {
            ck_assert_int_eq(rc, LV_ECONFLICT);
            ck_assert_msg(strstr(err, "not ours"), "message: %s", err);
        }
        ck_assert_int_eq(canned_count(&s, "GET /b/k"), 1);
        s3_client_free(cl);
        canned_stop(&s);
    }
}
END_TEST

START_TEST(test_faults_500_applied)
{
    /* review 2: a 500 may come after the write was applied; the retry's 412 then runs the
     * check, which finds our bytes (stored by an earlier PUT of the same body: from the outside
     * the same as our 500'd write having landed) */
    const char *args[] = {"--fault", "error 500 InternalError op=PutObject nth=2", NULL};
    start_faulty(args);
    s3_result res;
    put_ok("five", "same body", 9, NULL, &res); /* PutObject 1 */
    s3_op opts;
    s3_op_init(&opts);
    opts.if_none_match = "*";
    char err[LV_ERRLEN] = "";
    ck_assert_msg(s3_put(cl, BUCKET, "five", "same body", 9, &opts, &res, err) == LV_OK, "%s", err);
    ck_assert_int_eq(res.recovered, 1);
    ck_assert_uint_ge(res.attempts, 2);
    s3_client_free(cl);
    tu_fakes3_stop(&fk);
}
END_TEST

START_TEST(test_faults_501_final)
{
    /* review 6: 501 NotImplemented does not change on a retry */
    const char *args[] = {"--fault", "error 501 NotImplemented op=GetObject", NULL};
    start_faulty(args);
    s3_result res;
    put_ok("k", "x", 1, NULL, &res);
    lv_buf out;
    lv_buf_init(&out);
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(s3_get(cl, BUCKET, "k", 0, S3_TO_END, &out, &res, err), LV_ENET);
    ck_assert_int_eq(res.status, 501);
    ck_assert_uint_eq(res.attempts, 1);
    lv_buf_free(&out);
    s3_client_free(cl);
    tu_fakes3_stop(&fk);
}
END_TEST

static void two_attempts(s3_config *c)
{
    quick_retries(c);
    c->max_attempts = 2;
}

START_TEST(test_faults_failed_get_keeps_buffer)
{
    /* review 13: every GET body is cut after 100 bytes; the caller's buffer is as it was */
    const char *args[] = {"--fault", "truncate 100 op=GetObject", NULL};
    tu_fakes3_start(&fk, args);
    cl = client_for(fk.endpoint, TU_FAKES3_SECRET, two_attempts);
    uint8_t *data = random_bytes(5000, 9);
    s3_result res;
    put_ok("cut", data, 5000, NULL, &res);
    lv_buf out;
    lv_buf_init(&out);
    lv_buf_puts(&out, "abc");
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(s3_get(cl, BUCKET, "cut", 0, S3_TO_END, &out, &res, err), LV_ENET);
    ck_assert_uint_eq(res.attempts, 2);
    ck_assert_uint_eq(out.len, 3);
    ck_assert_str_eq(out.data, "abc");
    lv_buf_free(&out);
    free(data);
    s3_client_free(cl);
    tu_fakes3_stop(&fk);
}
END_TEST

static void trickle_budget(s3_config *c)
{
    quick_retries(c);
    c->retry_total_ms = 1500;
    c->stall_timeout_ms = 1000;
}

START_TEST(test_faults_trickle)
{
    /* review 11: 200 KB at 2 KB/s would take 100 s; the attempt ends soon after the retry
     * budget (1.5 s, at least twice the stall time) because it moves far below S3_MIN_RATE */
    const char *args[] = {"--fault", "bandwidth 2k op=GetObject", NULL};
    tu_fakes3_start(&fk, args);
    cl = client_for(fk.endpoint, TU_FAKES3_SECRET, trickle_budget);
    uint8_t *data = random_bytes(200000, 4);
    s3_result res;
    put_ok("slow", data, 200000, NULL, &res);
    lv_buf out;
    lv_buf_init(&out);
    char err[LV_ERRLEN] = "";
    int64_t t0 = s3_mono_ms();
    ck_assert_int_eq(s3_get(cl, BUCKET, "slow", 0, S3_TO_END, &out, &res, err), LV_ENET);
    int64_t el = s3_mono_ms() - t0;
    ck_assert_msg(el >= 1500 && el < 10000, "the trickle lasted %lld ms", (long long)el);
    ck_assert_msg(strstr(err, "retry budget"), "message: %s", err);
    ck_assert_uint_eq(out.len, 0);
    lv_buf_free(&out);
    free(data);
    s3_client_free(cl);
    tu_fakes3_stop(&fk);
}
END_TEST

static void auto_style(s3_config *c)
{
    c->path_style = -1; /* as s3_config_init leaves it */
}

START_TEST(test_path_style_auto)
{
    /* review 3: left to choose, an IP endpoint gets path style (virtual host would ask for
     * test-bucket.127.0.0.1, which does not resolve) */
    s3_config cfg;
    s3_config_init(&cfg);
    ck_assert_int_eq(cfg.path_style, -1);
    s3_client *c = client_for(fk.endpoint, TU_FAKES3_SECRET, auto_style);
    char err[LV_ERRLEN] = "";
    s3_result res;
    ck_assert_msg(s3_put(c, BUCKET, "auto", "chosen", 6, NULL, &res, err) == LV_OK, "%s", err);
    ck_assert_int_eq(s3_path_style(c, BUCKET), 1);
    s3_client_free(c);
    get_eq("auto", 0, S3_TO_END, "chosen", 6);

    struct {
        const char *endpoint, *bucket;
        int style, want;
    } cases[] = {
        {"https://s3.eu-west-1.amazonaws.com", "plain", -1, 0},
        {"https://s3.eu-west-1.amazonaws.com", "dotted.name", -1, 1},
        {"http://s3.eu-west-1.amazonaws.com", "dotted.name", -1, 0},
        {NULL, "plain", -1, 0},
        {"http://localhost:9000", "plain", -1, 1},
        {"http://10.1.2.3:9000", "plain", -1, 1},
        {"http://[::1]:9000", "plain", -1, 1},
        {"https://minio.example.com", "plain", -1, 1},
        {"https://abc.r2.cloudflarestorage.com", "plain", -1, 1},
        {"https://minio.example.com", "plain", 0, 0},
        {"https://s3.amazonaws.com", "plain", 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s3_config_init(&cfg);
        cfg.endpoint = cases[i].endpoint;
        cfg.path_style = cases[i].style;
        ck_assert_int_eq(s3_client_new(&cfg, &c, err), LV_OK);
        ck_assert_msg(s3_path_style(c, cases[i].bucket) == cases[i].want, "case %zu: %s %s", i,
                      cases[i].endpoint ? cases[i].endpoint : "(AWS)", cases[i].bucket);
        s3_client_free(c);
    }
}
END_TEST

START_TEST(test_resolve_retried)
{
    /* review 6: a host that does not resolve is retried (a DNS hiccup) within the budget */
    s3_client *c = client_for("http://no-such-host.invalid:9000", TU_FAKES3_SECRET, short_budget);
    s3_result res;
    char err[LV_ERRLEN] = "";
    ck_assert_int_eq(s3_head(c, BUCKET, "k", &res, err), LV_ENET);
    ck_assert_uint_ge(res.attempts, 2);
    ck_assert_msg(strstr(err, "cannot resolve"), "message: %s", err);
    s3_client_free(c);
}
END_TEST

START_TEST(test_env_litestream)
{
    /* review 5: Litestream's variables as fallbacks; the AWS ones win when both are set */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_ENDPOINT_URL");
    setenv("LITESTREAM_ACCESS_KEY_ID", "lk", 1);
    setenv("LITESTREAM_SECRET_ACCESS_KEY", "ls", 1);
    setenv("LITESTREAM_S3_ENDPOINT", "http://minio:9000", 1);
    s3_config cfg;
    s3_config_init(&cfg);
    s3_config_from_env(&cfg);
    ck_assert_str_eq(cfg.access_key, "lk");
    ck_assert_str_eq(cfg.secret_key, "ls");
    ck_assert_str_eq(cfg.endpoint, "http://minio:9000");
    ck_assert_int_eq(cfg.path_style, 1);
    setenv("AWS_ACCESS_KEY_ID", "ak", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "as", 1);
    s3_config_init(&cfg);
    s3_config_from_env(&cfg);
    ck_assert_str_eq(cfg.access_key, "ak");
    ck_assert_str_eq(cfg.secret_key, "as");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("LITESTREAM_ACCESS_KEY_ID");
    unsetenv("LITESTREAM_SECRET_ACCESS_KEY");
    unsetenv("LITESTREAM_S3_ENDPOINT");
}
END_TEST

START_TEST(test_xml_leading_space)
{
    /* review 1a: whitespace before the declaration */
    char etag[80], code[64], msg[S3_MSG_LEN], err[LV_ERRLEN];
    int is_error = 0;
    const char *cr = "  \n \r\n<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                     "<CompleteMultipartUploadResult><ETag>\"x-2\"</ETag>"
                     "</CompleteMultipartUploadResult>";
    ck_assert_msg(s3_xml_complete(cr, strlen(cr), etag, &is_error, code, msg, err) == LV_OK, "%s",
                  err);
    ck_assert_str_eq(etag, "\"x-2\"");
    const char *ce = "      <?xml version=\"1.0\"?><Error><Code>InternalError</Code></Error>";
    ck_assert_int_eq(s3_xml_complete(ce, strlen(ce), etag, &is_error, code, msg, err), LV_OK);
    ck_assert_int_eq(is_error, 1);
    ck_assert_str_eq(code, "InternalError");
}
END_TEST

/* ---- XML readers ----------------------------------------------------------------------------- */

START_TEST(test_xml)
{
    char code[64], msg[S3_MSG_LEN], err[LV_ERRLEN];
    const char *e = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce "
                    "your request rate.</Message><Resource>/b/k</Resource></Error>";
    s3_xml_error(e, strlen(e), code, msg);
    ck_assert_str_eq(code, "SlowDown");
    ck_assert_str_eq(msg, "Please reduce your request rate.");
    s3_xml_error("not xml", 7, code, msg);
    ck_assert_str_eq(code, "");

    const char *bomb = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]>"
                       "<Error><Code>&a;</Code></Error>";
    s3_xml_error(bomb, strlen(bomb), code, msg);
    ck_assert_str_eq(code, "");

    const char *page = "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                       "<IsTruncated>true</IsTruncated>"
                       "<NextContinuationToken>tok/+=</NextContinuationToken>"
                       "<Contents><Key>a &amp; b </Key><Size>12</Size>"
                       "<LastModified>2026-11-21T09:32:32.250Z</LastModified>"
                       "<ETag>&quot;abc&quot;</ETag></Contents>"
                       "<Contents><Key>\xc3\xbc</Key><Size>0</Size></Contents></ListBucketResult>";
    keys_seen k = {0};
    s3_list_page p = {0};
    lv_buf_init(&p.next_token);
    int stop = 0;
    /* collect() wants an mtime and an ETag on every entry: check the first one only */
    k.stop_after = 1;
    ck_assert_int_eq(s3_xml_list(page, strlen(page), collect, &k, &p, &stop, err), LV_OK);
    ck_assert_int_eq(stop, 1);
    ck_assert_str_eq(k.keys[0], "a & b ");
    ck_assert_uint_eq(k.sizes[0], 12);
    ck_assert_int_eq(p.truncated, 1);
    ck_assert_str_eq(p.next_token.data, "tok/+=");
    keys_free(&k);
    ck_assert_int_eq(s3_parse_iso8601("2026-11-21T09:32:32.250Z") % 1000, 250);
    ck_assert_int_eq(s3_xml_list("<ListBucketResult>", 18, collect, &k, &p, &stop, err),
                     LV_ECORRUPT);
    lv_buf_free(&p.next_token);

    lv_buf key;
    lv_buf_init(&key);
    size_t ne;
    const char *dr = "<DeleteResult><Deleted><Key>x</Key></Deleted><Error><Key>k 1</Key>"
                     "<Code>AccessDenied</Code><Message>no</Message></Error><Error><Key>k2</Key>"
                     "<Code>InternalError</Code></Error></DeleteResult>";
    ck_assert_int_eq(s3_xml_delete_result(dr, strlen(dr), &ne, &key, code, msg, err), LV_OK);
    ck_assert_uint_eq(ne, 2);
    ck_assert_str_eq(key.data, "k 1");
    ck_assert_str_eq(code, "AccessDenied");
    ck_assert_str_eq(msg, "no");
    lv_buf_free(&key);

    char etag[80];
    int is_error;
    const char *cr = "<CompleteMultipartUploadResult><ETag>\"x-2\"</ETag>"
                     "</CompleteMultipartUploadResult>";
    ck_assert_int_eq(s3_xml_complete(cr, strlen(cr), etag, &is_error, code, msg, err), LV_OK);
    ck_assert_str_eq(etag, "\"x-2\"");
    ck_assert_int_eq(is_error, 0);
    ck_assert_int_eq(s3_xml_complete(e, strlen(e), etag, &is_error, code, msg, err), LV_OK);
    ck_assert_int_eq(is_error, 1);
    ck_assert_str_eq(code, "SlowDown");
}
END_TEST

static Suite *s3_suite(void)
{
    Suite *s = suite_create("s3_client");
    TCase *tc = tcase_create("fakes3");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_put_get_head_delete);
    tcase_add_test(tc, test_metadata_and_md5);
    tcase_add_test(tc, test_multipart);
    tcase_add_test(tc, test_conditional);
    tcase_add_test(tc, test_list);
    tcase_add_test(tc, test_list_many);
    tcase_add_test(tc, test_delete_keys);
    tcase_add_test(tc, test_odd_keys);
    tcase_add_test(tc, test_virtual_host);
    tcase_add_test(tc, test_path_style_auto);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_server_down);
    tcase_add_test(tc, test_batch_gets);
    tcase_add_test(tc, test_sink);
    tcase_add_test(tc, test_injected_clock);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_connection_reuse);
    tcase_add_test(tc, test_alloc_failures);
    suite_add_tcase(s, tc);
    TCase *tf = tcase_create("faults");
    tcase_set_timeout(tf, 120);
    tcase_add_test(tf, test_faults_get);
    tcase_add_test(tf, test_faults_message);
    tcase_add_test(tf, test_faults_stall);
    tcase_add_test(tf, test_faults_lost_response);
    tcase_add_test(tf, test_faults_other_writer);
    tcase_add_test(tf, test_faults_inflight);
    tcase_add_test(tf, test_faults_500_applied);
    tcase_add_test(tf, test_faults_501_final);
    tcase_add_test(tf, test_faults_failed_get_keeps_buffer);
    tcase_add_test(tf, test_faults_trickle);
    suite_add_tcase(s, tf);
    TCase *tn = tcase_create("scripted");
    tcase_set_timeout(tn, 120);
    tcase_add_test(tn, test_slow_complete);
    tcase_add_test(tn, test_wrong_region);
    tcase_add_test(tn, test_range_ignored);
    tcase_add_test(tn, test_lost_response_kms);
    tcase_add_test(tn, test_resolve_retried);
    tcase_add_test(tn, test_env_litestream);
    suite_add_tcase(s, tn);
    TCase *tx = tcase_create("xml");
    tcase_add_test(tx, test_xml);
    tcase_add_test(tx, test_xml_leading_space);
    suite_add_tcase(s, tx);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(s3_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
