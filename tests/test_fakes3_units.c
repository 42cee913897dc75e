/*
 * test_fakes3_units: the parts of fakes3 that need no socket, tested directly: byte ranges,
 * entity-tag lists, HTTP dates and conditional reads (httpsem.c), request routing and query
 * parsing (router.c), and the object store (store.c) on disk and in memory: writes, conditional
 * commits, listings with prefix, delimiter and continuation, persistence across a reopen, the
 * refusal of foreign or locked data directories, removal of leftover temp files, skipping of
 * damaged object files, and keys that must never name a path outside the data directory; and the
 * aws-chunked decoder (chunked.c) on the AWS documentation's signed example, split every way.
 *
 * The tests link only lib/ (CTest builds every tests/test_*.c the same way), so the fakes3
 * sources under test are compiled into this file. Single-threaded.
 */
#include "../fakes3/checksum.c"
#include "../fakes3/chunked.c"
#include "../fakes3/httpsem.c"
#include "../fakes3/router.c"
#include "../fakes3/s3err.c"
#include "../fakes3/store.c"

#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "testutil.h"

/* ---- httpsem --------------------------------------------------------------------------------- */

START_TEST(test_ranges)
{
    static const struct {
        const char *h;
        uint64_t size;
        fs3_range_kind kind;
        uint64_t first, last;
    } cases[] = {
        {NULL, 10, FS3_RANGE_NONE, 0, 0},
        {"bytes=0-4", 10, FS3_RANGE_OK, 0, 4},
        {"bytes=0-0", 10, FS3_RANGE_OK, 0, 0},
        {"bytes=5-", 10, FS3_RANGE_OK, 5, 9},
        {"bytes=-3", 10, FS3_RANGE_OK, 7, 9},
        {"bytes=-30", 10, FS3_RANGE_OK, 0, 9},
        {"bytes=8-100", 10, FS3_RANGE_OK, 8, 9},
        {"bytes=9-9", 10, FS3_RANGE_OK, 9, 9},
        {"bytes= 2 - 3 ", 10, FS3_RANGE_OK, 2, 3},
        {"BYTES=1-2", 10, FS3_RANGE_OK, 1, 2},
        {"bytes=10-", 10, FS3_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=10-20", 10, FS3_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=-0", 10, FS3_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=0-", 0, FS3_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=-5", 0, FS3_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=99999999999999999999999999-", 10, FS3_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=0-99999999999999999999999999", 10, FS3_RANGE_OK, 0, 9},
        {"bytes=5-2", 10, FS3_RANGE_NONE, 0, 0},
        {"bytes=0-1,3-4", 10, FS3_RANGE_NONE, 0, 0},
        {"bytes=-", 10, FS3_RANGE_NONE, 0, 0},
        {"bytes=a-b", 10, FS3_RANGE_NONE, 0, 0},
        {"items=0-1", 10, FS3_RANGE_NONE, 0, 0},
        {"bytes=1-2x", 10, FS3_RANGE_NONE, 0, 0},
        {"", 10, FS3_RANGE_NONE, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint64_t a = 0, b = 0;
        fs3_range_kind k = fs3_parse_range(cases[i].h, cases[i].size, &a, &b);
        ck_assert_msg(k == cases[i].kind, "%s on %llu: kind %d, want %d",
                      cases[i].h ? cases[i].h : "(none)", (unsigned long long)cases[i].size, k,
                      cases[i].kind);
        if (k == FS3_RANGE_OK)
            ck_assert_msg(a == cases[i].first && b == cases[i].last, "%s: %llu-%llu", cases[i].h,
                          (unsigned long long)a, (unsigned long long)b);
    }
}
END_TEST

START_TEST(test_etags)
{
    const char *e = "0123456789abcdef0123456789abcdef";
    ck_assert(fs3_etag_list_matches("*", e));
    ck_assert(fs3_etag_list_matches("\"0123456789abcdef0123456789abcdef\"", e));
    ck_assert(fs3_etag_list_matches("0123456789abcdef0123456789abcdef", e));
    ck_assert(fs3_etag_list_matches("W/\"0123456789abcdef0123456789abcdef\"", e));
    ck_assert(fs3_etag_list_matches("\"x\", \"0123456789abcdef0123456789abcdef\"", e));
    ck_assert(!fs3_etag_list_matches("\"x\", \"y\"", e));
    ck_assert(!fs3_etag_list_matches("\"0123456789abcdef0123456789abcde\"", e));
    ck_assert(!fs3_etag_list_matches("", e));
    ck_assert(!fs3_etag_list_matches("\"", e));
    ck_assert(!fs3_etag_list_matches(NULL, e));
    ck_assert(fs3_etag_list_matches("\"abc-2\"", "abc-2"));
}
END_TEST

START_TEST(test_dates)
{
    int64_t t;
    ck_assert_int_eq(fs3_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    ck_assert_int_eq(t, 784111777);
    ck_assert_int_eq(fs3_parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
    ck_assert_int_eq(t, 784111777);
    ck_assert_int_eq(fs3_parse_http_date("Sun Nov  6 08:49:37 1994", &t), 0);
    ck_assert_int_eq(t, 784111777);
    ck_assert_int_eq(fs3_parse_http_date("1994-11-06T08:49:37Z", &t), 0);
    ck_assert_int_eq(t, 784111777);
    ck_assert_int_eq(fs3_parse_http_date("1994-11-06T08:49:37.123Z", &t), 0);
    ck_assert_int_eq(t, 784111777);
    ck_assert_int_eq(fs3_parse_http_date("yesterday", &t), -1);
    ck_assert_int_eq(fs3_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT junk", &t), -1);
    ck_assert_int_eq(fs3_parse_http_date(NULL, &t), -1);
    char out[64];
    fs3_format_http_date(784111777, out, sizeof out);
    ck_assert_str_eq(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    fs3_format_iso8601(784111777123ll, out, sizeof out);
    ck_assert_str_eq(out, "1994-11-06T08:49:37.123Z");
}
END_TEST

START_TEST(test_read_conditions)
{
    const char *e = "abc";
    int64_t mtime = 784111777500ll; /* 08:49:37.5: Last-Modified says 08:49:37 */
    const char *before = "Sun, 06 Nov 1994 08:49:36 GMT", *same = "Sun, 06 Nov 1994 08:49:37 GMT",
               *after = "Sun, 06 Nov 1994 08:49:38 GMT";
    static const fs3_read_cond none;
    ck_assert_int_eq(fs3_check_read_cond(&none, e, mtime), FS3_OK);
    fs3_read_cond c = {.if_match = "\"abc\""};
    ck_assert_int_eq(fs3_check_read_cond(&c, e, mtime), FS3_OK);
    c = (fs3_read_cond){.if_match = "\"x\""};
    ck_assert_int_eq(fs3_check_read_cond(&c, e, mtime), FS3_PRECONDITION_FAILED);
    c = (fs3_read_cond){.if_none_match = "\"abc\""};
    ck_assert_int_eq(fs3_check_read_cond(&c, e, mtime), FS3_NOT_MODIFIED);
    c = (fs3_read_cond){.if_none_match = "*"};
    ck_assert_int_eq(fs3_check_read_cond(&c, e, mtime), FS3_NOT_MODIFIED);
    c = (fs3_read_cond){.if_modified_since = same};
    ck_assert_int_eq(fs3_check_read_cond(&c, e, mtime), FS3_NOT_MODIFIED);
    c = (fs3_read_cond){.if_modified_since = before};
    ck_assert_int_eq(fs3_check_read_cond(&c, e, mtime), FS3_OK);
    c = (fs3_read_cond){.if_unmodified_since = same};
    ck_assert_int_eq(fs3_check_read_cond(&c, e, mtime), FS3_OK);
    c = (fs3_read_cond){.if_unmodified_since = before};
    ck_assert_int_eq(fs3_check_read_cond(&c, e, mtime), FS3_PRECONDITION_FAILED);
    c = (fs3_read_cond){.if_unmodified_since = "garbage"};
    ck_assert_int_eq(fs3_check_read_cond(&c, e, mtime), FS3_OK);
    /* If-Match decides over If-Unmodified-Since; If-None-Match over If-Modified-Since */
    c = (fs3_read_cond){.if_match = "\"abc\"", .if_unmodified_since = before};
    ck_assert_int_eq(fs3_check_read_cond(&c, e, mtime), FS3_OK);
    c = (fs3_read_cond){.if_none_match = "\"x\"", .if_modified_since = after};
    ck_assert_int_eq(fs3_check_read_cond(&c, e, mtime), FS3_OK);
    /* 412 comes before 304 */
    c = (fs3_read_cond){.if_match = "\"x\"", .if_none_match = "\"abc\""};
    ck_assert_int_eq(fs3_check_read_cond(&c, e, mtime), FS3_PRECONDITION_FAILED);
}
END_TEST

/* ---- router ---------------------------------------------------------------------------------- */

static fs3_code route(const char *method, const char *path, const char *query, const char *host,
                      fs3_route *out)
{
    fs3_query q;
    ck_assert_int_eq(fs3_query_parse(query, &q), 0);
    fs3_code rc =
        fs3_route_request(method, path, strlen(path), &q, host, "localhost", NULL, out, NULL);
    fs3_query_free(&q);
    return rc;
}

START_TEST(test_routes)
{
    static const struct {
        const char *method, *path, *query, *host;
        fs3_op op;
        const char *bucket, *key;
    } cases[] = {
        {"GET", "/", NULL, "127.0.0.1:9000", FS3_OP_LIST_BUCKETS, "", NULL},
        {"PUT", "/b1b", NULL, NULL, FS3_OP_CREATE_BUCKET, "b1b", NULL},
        {"PUT", "/b1b/", NULL, NULL, FS3_OP_CREATE_BUCKET, "b1b", NULL},
        {"DELETE", "/b1b", NULL, NULL, FS3_OP_DELETE_BUCKET, "b1b", NULL},
        {"HEAD", "/b1b", NULL, NULL, FS3_OP_HEAD_BUCKET, "b1b", NULL},
        {"GET", "/b1b", "location", NULL, FS3_OP_GET_BUCKET_LOCATION, "b1b", NULL},
        {"GET", "/b1b", "list-type=2&prefix=a", NULL, FS3_OP_LIST_OBJECTS_V2, "b1b", NULL},
        {"GET", "/b1b", "prefix=a", NULL, FS3_OP_LIST_OBJECTS, "b1b", NULL},
        {"GET", "/b1b", "uploads", NULL, FS3_OP_LIST_MULTIPART_UPLOADS, "b1b", NULL},
        {"GET", "/b1b", "versioning", NULL, FS3_OP_GET_BUCKET_VERSIONING, "b1b", NULL},
        {"PUT", "/b1b", "versioning", NULL, FS3_OP_BUCKET_SUBRESOURCE, "b1b", NULL},
        {"GET", "/b1b", "acl", NULL, FS3_OP_GET_BUCKET_ACL, "b1b", NULL},
        {"GET", "/b1b", "policy", NULL, FS3_OP_BUCKET_SUBRESOURCE, "b1b", NULL},
        {"POST", "/b1b", "delete", NULL, FS3_OP_DELETE_OBJECTS, "b1b", NULL},
        {"PUT", "/b1b/k", NULL, NULL, FS3_OP_PUT_OBJECT, "b1b", "k"},
        {"GET", "/b1b/a/b/../c", NULL, NULL, FS3_OP_GET_OBJECT, "b1b", "a/b/../c"},
        {"GET", "/b1b//x", NULL, NULL, FS3_OP_GET_OBJECT, "b1b", "/x"},
        {"HEAD", "/b1b/k", NULL, NULL, FS3_OP_HEAD_OBJECT, "b1b", "k"},
        {"DELETE", "/b1b/k", NULL, NULL, FS3_OP_DELETE_OBJECT, "b1b", "k"},
        {"POST", "/b1b/k", "uploads", NULL, FS3_OP_CREATE_MULTIPART_UPLOAD, "b1b", "k"},
        {"PUT", "/b1b/k", "partNumber=1&uploadId=x", NULL, FS3_OP_UPLOAD_PART, "b1b", "k"},
        {"POST", "/b1b/k", "uploadId=x", NULL, FS3_OP_COMPLETE_MULTIPART_UPLOAD, "b1b", "k"},
        {"DELETE", "/b1b/k", "uploadId=x", NULL, FS3_OP_ABORT_MULTIPART_UPLOAD, "b1b", "k"},
        {"GET", "/b1b/k", "uploadId=x", NULL, FS3_OP_LIST_PARTS, "b1b", "k"},
        {"GET", "/b1b/k", "tagging", NULL, FS3_OP_GET_OBJECT_TAGGING, "b1b", "k"},
        {"GET", "/b1b/k", "acl", NULL, FS3_OP_GET_OBJECT_ACL, "b1b", "k"},
        {"PUT", "/b1b/k", "acl", NULL, FS3_OP_OBJECT_SUBRESOURCE, "b1b", "k"},
        {"GET", "/b1b/k", "partNumber=2", NULL, FS3_OP_GET_OBJECT, "b1b", "k"},
        {"HEAD", "/b1b/k", "partNumber=2", NULL, FS3_OP_HEAD_OBJECT, "b1b", "k"},
        {"PUT", "/b1b/k", "tagging", NULL, FS3_OP_OBJECT_SUBRESOURCE, "b1b", "k"},
        {"GET", "/b1b/k", "response-content-type=a", NULL, FS3_OP_GET_OBJECT, "b1b", "k"},
        /* virtual-host style */
        {"GET", "/", "list-type=2", "photos.localhost:9000", FS3_OP_LIST_OBJECTS_V2, "photos",
         NULL},
        {"GET", "/a/b", NULL, "Photos.LOCALHOST", FS3_OP_GET_OBJECT, "photos", "a/b"},
        {"PUT", "/", NULL, "photos.localhost", FS3_OP_CREATE_BUCKET, "photos", NULL},
        {"GET", "/_fakes3/health", NULL, NULL, FS3_OP_ADMIN_HEALTH, "", NULL},
        {"GET", "/_fakes3/stats", NULL, NULL, FS3_OP_ADMIN_STATS, "", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fs3_route r;
        fs3_code rc = route(cases[i].method, cases[i].path, cases[i].query, cases[i].host, &r);
        ck_assert_msg(rc == FS3_OK, "%s %s: %s", cases[i].method, cases[i].path, fs3_code_name(rc));
        ck_assert_msg(r.op == cases[i].op, "%s %s?%s: %s, want %s", cases[i].method, cases[i].path,
                      cases[i].query ? cases[i].query : "", fs3_op_name(r.op),
                      fs3_op_name(cases[i].op));
        ck_assert_str_eq(r.bucket, cases[i].bucket);
        if (cases[i].key) {
            ck_assert_ptr_nonnull(r.key);
            ck_assert_uint_eq(r.key_len, strlen(cases[i].key));
            ck_assert(memcmp(r.key, cases[i].key, r.key_len) == 0);
        } else {
            ck_assert_ptr_null(r.key);
        }
    }
    fs3_route r;
    /* Host "localhost" alone names no bucket: "/x" is path style, and "x" is too short */
    ck_assert_int_eq(route("GET", "/x", NULL, "localhost:9000", &r), FS3_INVALID_BUCKET_NAME);
    ck_assert_int_eq(route("GET", "/Bad_Bucket/k", NULL, NULL, &r), FS3_INVALID_BUCKET_NAME);
    ck_assert_int_eq(route("GET", "/ab/k", NULL, NULL, &r), FS3_INVALID_BUCKET_NAME);
    ck_assert_int_eq(route("GET", "/192.168.1.1/k", NULL, NULL, &r), FS3_INVALID_BUCKET_NAME);
    ck_assert_int_eq(route("GET", "/a..b/k", NULL, NULL, &r), FS3_INVALID_BUCKET_NAME);
    ck_assert_int_eq(route("PATCH", "/b1b/k", NULL, NULL, &r), FS3_METHOD_NOT_ALLOWED);
    ck_assert_int_eq(route("DELETE", "/", NULL, NULL, &r), FS3_METHOD_NOT_ALLOWED);
    ck_assert_int_eq(route("GET", "relative", NULL, NULL, &r), FS3_INVALID_REQUEST);
    ck_assert_int_eq(route("GET", "/_fakes3/nothing", NULL, NULL, &r), FS3_INVALID_REQUEST);
    char path[1100] = "/b1b/";
    memset(path + 5, 'k', 1024);
    path[5 + 1024] = '\0';
    ck_assert_int_eq(route("PUT", path, NULL, NULL, &r), FS3_OK);
    strcat(path, "k");
    ck_assert_int_eq(route("PUT", path, NULL, NULL, &r), FS3_KEY_TOO_LONG);
}
END_TEST

START_TEST(test_query)
{
    fs3_query q;
    ck_assert_int_eq(fs3_query_parse("a=1&b=x%20y+z&&c&d=&e=%2F%zz", &q), 0);
    ck_assert_uint_eq(q.n, 5);
    size_t len;
    ck_assert_str_eq(fs3_query_get(&q, "a", NULL), "1");
    ck_assert_str_eq(fs3_query_get(&q, "b", &len), "x y z");
    ck_assert_uint_eq(len, 5);
    ck_assert_str_eq(fs3_query_get(&q, "c", NULL), "");
    ck_assert_str_eq(fs3_query_get(&q, "d", NULL), "");
    ck_assert_str_eq(fs3_query_get(&q, "e", NULL), "/%zz");
    ck_assert_ptr_null(fs3_query_get(&q, "f", NULL));
    fs3_query_free(&q);
    ck_assert_int_eq(fs3_query_parse(NULL, &q), 0);
    ck_assert_uint_eq(q.n, 0);
    fs3_query_free(&q);
}
END_TEST

/* ---- store ----------------------------------------------------------------------------------- */

static char *g_dir; /* a fresh data directory per test (disk) */

static char *fresh_dir(void)
{
    char tmpl[] = "/tmp/test_fakes3_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    char *d = malloc(strlen(tmpl) + 8);
    sprintf(d, "%s/data", tmpl);
    return d;
}

static void remove_tree(const char *d)
{
    char cmd[600];
    char *parent = strdup(d);
    *strrchr(parent, '/') = '\0';
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", parent);
    ck_assert_int_eq(system(cmd), 0);
    free(parent);
}

static fs3_store *open_store(int memory)
{
    fs3_store_options o = {.dir = g_dir, .memory = memory};
    fs3_store *st = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_msg(fs3_store_open(&o, &st, err) == FS3_OK, "open: %s", err);
    return st;
}

static fs3_code put(fs3_store *st, const char *bucket, const char *key, const char *data,
                    const char *if_match, const char *if_none_match)
{
    fs3_put *p = NULL;
    char err[LV_ERRLEN];
    fs3_code rc = fs3_store_put_begin(st, bucket, key, strlen(key), &p, err);
    if (rc != FS3_OK)
        return rc;
    /* in two pieces, as a body arrives */
    size_t n = strlen(data), half = n / 2;
    ck_assert_int_eq(fs3_put_write(p, data, half, err), FS3_OK);
    ck_assert_int_eq(fs3_put_write(p, data + half, n - half, err), FS3_OK);
    ck_assert_uint_eq(fs3_put_size(p), n);
    char etag[FS3_ETAG_MAX];
    snprintf(etag, sizeof etag, "etag-of-%s", data);
    fs3_kv h[] = {{"content-type", "text/plain"}, {"x-amz-meta-key", (char *)key}};
    fs3_write_cond cond = {if_match, if_none_match};
    return fs3_store_put_commit(st, p, etag, h, 2, &cond, 1700000000123ll, NULL, err);
}

/* The object's bytes, read through fs3_store_get, as a new string (caller frees). */
static char *get(fs3_store *st, const char *bucket, const char *key)
{
    fs3_object *o = NULL;
    fs3_body b;
    char err[LV_ERRLEN];
    fs3_code rc = fs3_store_get(st, bucket, key, strlen(key), &o, &b, err);
    if (rc != FS3_OK)
        return NULL;
    char *s = calloc(1, o->size + 1);
    if (b.fd >= 0) {
        ck_assert_int_eq(pread(b.fd, s, o->size, 0), (ssize_t)o->size);
        close(b.fd);
    } else {
        memcpy(s, b.data, o->size);
    }
    ck_assert_str_eq(fs3_object_header(o, "content-type"), "text/plain");
    ck_assert_str_eq(fs3_object_header(o, "x-amz-meta-key"), key);
    ck_assert_int_eq(o->mtime_ms, 1700000000123ll);
    fs3_object_unref(o);
    return s;
}

/* "k1,p/,k2": the entries of a listing, prefixes marked with a trailing '/' as they end. */
static char *list(fs3_store *st, const char *prefix, const char *delim, const char *after,
                  int after_is_prefix, size_t max, int *truncated)
{
    fs3_list_params p = {
        .prefix = prefix,
        .prefix_len = strlen(prefix),
        .delimiter = delim,
        .delimiter_len = delim ? strlen(delim) : 0,
        .after = after,
        .after_len = after ? strlen(after) : 0,
        .after_is_prefix = after_is_prefix,
        .max_keys = max,
    };
    fs3_list_result r;
    char err[LV_ERRLEN];
    ck_assert_int_eq(fs3_store_list(st, "bkt", &p, &r, err), FS3_OK);
    static char out[4096];
    out[0] = '\0';
    for (size_t i = 0; i < r.n; i++) {
        if (i)
            strcat(out, ",");
        strcat(out, r.entries[i].is_prefix ? "P:" : "");
        strncat(out, r.entries[i].key, r.entries[i].key_len);
    }
    *truncated = r.truncated;
    fs3_list_free(&r);
    return out;
}

static void store_basics(int memory)
{
    char err[LV_ERRLEN];
    fs3_store *st = open_store(memory);
    ck_assert_int_eq(fs3_store_create_bucket(st, "bkt", 1000, err), FS3_OK);
    ck_assert_int_eq(fs3_store_create_bucket(st, "bkt", 1000, err),
                     FS3_BUCKET_ALREADY_OWNED_BY_YOU);
    ck_assert_int_eq(fs3_store_create_bucket(st, "Bad", 1000, err), FS3_INVALID_BUCKET_NAME);
    ck_assert_int_eq(fs3_store_head_bucket(st, "bkt", err), FS3_OK);
    ck_assert_int_eq(fs3_store_head_bucket(st, "nope", err), FS3_NO_SUCH_BUCKET);
    ck_assert_int_eq(put(st, "nope", "k", "v", NULL, NULL), FS3_NO_SUCH_BUCKET);

    const char *keys[] = {"a/1", "a/2",          "a/b/3",    "b/1",   "c",
                          "d",   "../../escape", "%2F..%2F", "x/./y", "\xe2\x9c\x93"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        ck_assert_int_eq(put(st, "bkt", keys[i], keys[i], NULL, NULL), FS3_OK);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char *v = get(st, "bkt", keys[i]);
        ck_assert_ptr_nonnull(v);
        ck_assert_str_eq(v, keys[i]);
        free(v);
    }
    ck_assert_ptr_null(get(st, "bkt", "missing"));

    /* conditional commits */
    ck_assert_int_eq(put(st, "bkt", "c", "new", NULL, "*"), FS3_PRECONDITION_FAILED);
    ck_assert_int_eq(put(st, "bkt", "c", "new", "\"wrong\"", NULL), FS3_PRECONDITION_FAILED);
    ck_assert_int_eq(put(st, "bkt", "never", "new", "\"etag-of-c\"", NULL), FS3_NO_SUCH_KEY);
    ck_assert_int_eq(put(st, "bkt", "c", "C2", "\"etag-of-c\"", NULL), FS3_OK);
    ck_assert_int_eq(put(st, "bkt", "e", "E", NULL, "*"), FS3_OK);
    char *v = get(st, "bkt", "c");
    ck_assert_str_eq(v, "C2");
    free(v);

    /* listings */
    int t;
    ck_assert_str_eq(list(st, "", NULL, NULL, 0, 1000, &t),
                     "%2F..%2F,../../escape,a/1,a/2,a/b/3,b/1,c,d,e,x/./y,\xe2\x9c\x93");
    ck_assert_int_eq(t, 0);
    ck_assert_str_eq(list(st, "", "/", NULL, 0, 1000, &t),
                     "%2F..%2F,P:../,P:a/,P:b/,c,d,e,P:x/,\xe2\x9c\x93");
    ck_assert_str_eq(list(st, "a/", "/", NULL, 0, 1000, &t), "a/1,a/2,P:a/b/");
    ck_assert_str_eq(list(st, "a/", NULL, NULL, 0, 1000, &t), "a/1,a/2,a/b/3");
    ck_assert_str_eq(list(st, "a", "/", NULL, 0, 1000, &t), "P:a/");
    ck_assert_str_eq(list(st, "zzz", NULL, NULL, 0, 1000, &t), "");
    /* pages of two, resuming after a key or after a common prefix */
    ck_assert_str_eq(list(st, "", "/", NULL, 0, 2, &t), "%2F..%2F,P:../");
    ck_assert_int_eq(t, 1);
    ck_assert_str_eq(list(st, "", "/", "../", 1, 2, &t), "P:a/,P:b/");
    ck_assert_int_eq(t, 1);
    ck_assert_str_eq(list(st, "", "/", "b/", 1, 2, &t), "c,d");
    ck_assert_str_eq(list(st, "", "/", "d", 0, 2, &t), "e,P:x/");
    ck_assert_int_eq(t, 1);
    ck_assert_str_eq(list(st, "", "/", "x/", 1, 2, &t), "\xe2\x9c\x93");
    ck_assert_int_eq(t, 0);
    /* start-after that is not a key; max-keys 0 */
    ck_assert_str_eq(list(st, "a/", NULL, "a/10", 0, 1000, &t), "a/2,a/b/3");
    ck_assert_str_eq(list(st, "", NULL, NULL, 0, 0, &t), "");
    ck_assert_int_eq(t, 0);
    /* a multi-byte delimiter */
    ck_assert_str_eq(list(st, "", "/b", NULL, 0, 1000, &t),
                     "%2F..%2F,../../escape,a/1,a/2,P:a/b,b/1,c,d,e,x/./y,\xe2\x9c\x93");

    ck_assert_int_eq(fs3_store_delete_bucket(st, "bkt", err), FS3_BUCKET_NOT_EMPTY);
    ck_assert_int_eq(fs3_store_delete(st, "bkt", "c", 1, err), FS3_OK);
    ck_assert_int_eq(fs3_store_delete(st, "bkt", "c", 1, err), FS3_OK);
    ck_assert_int_eq(fs3_store_delete(st, "nope", "c", 1, err), FS3_NO_SUCH_BUCKET);
    ck_assert_ptr_null(get(st, "bkt", "c"));

    size_t nb, no;
    fs3_store_counts(st, &nb, &no);
    ck_assert_uint_eq(nb, 1);
    ck_assert_uint_eq(no, 10);
    fs3_bucket_info *bi;
    ck_assert_int_eq(fs3_store_list_buckets(st, &bi, &nb, err), FS3_OK);
    ck_assert_uint_eq(nb, 1);
    ck_assert_str_eq(bi[0].name, "bkt");
    ck_assert_int_eq(bi[0].created_ms, 1000);
    lv_free(bi);
    fs3_store_close(st);
}

START_TEST(test_store_memory)
{
    store_basics(1);
}
END_TEST

/* Counts the regular files under dir (recursively), and checks none is a symlink. */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        ck_assert_int_eq(lstat(p, &st), 0);
        ck_assert(!S_ISLNK(st.st_mode));
        n += S_ISDIR(st.st_mode) ? count_files(p) : 1;
    }
    closedir(d);
    return n;
}

START_TEST(test_store_disk)
{
    g_dir = fresh_dir();
    store_basics(0);
    /* everything is inside the data directory: marker, lock, bucket file, 10 objects */
    ck_assert_int_eq(count_files(g_dir), 3 + 10);
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", g_dir);
    *strrchr(parent, '/') = '\0';
    ck_assert_int_eq(count_files(parent), 3 + 10);

    /* a restart finds everything again; a crash's leftovers in tmp/ are swept */
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/tmp/123-4.put", g_dir);
    tu_write_file(p, "partial", 7);
    fs3_store *st = open_store(0);
    ck_assert_int_ne(access(p, F_OK), 0);
    size_t nb, no;
    fs3_store_counts(st, &nb, &no);
    ck_assert_uint_eq(nb, 1);
    ck_assert_uint_eq(no, 10);
    char *v = get(st, "bkt", "../../escape");
    ck_assert_str_eq(v, "../../escape");
    free(v);

    /* a second store on the same directory is refused while the first holds it */
    fs3_store_options o = {.dir = g_dir};
    fs3_store *st2 = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_int_ne(fs3_store_open(&o, &st2, err), FS3_OK);
    ck_assert_ptr_nonnull(strstr(err, "in use by another fakes3"));
    fs3_store_close(st);

    /* a damaged object file is skipped at load, the rest still load */
    char h[65];
    key_hash("d", 1, h);
    snprintf(p, sizeof p, "%s/buckets/bkt/objects/%.2s/%s", g_dir, h, h);
    ck_assert_int_eq(truncate(p, 5), 0);
    key_hash("e", 1, h);
    snprintf(p, sizeof p, "%s/buckets/bkt/objects/%.2s/%s", g_dir, h, h);
    char other[PATH_MAX];
    key_hash("zz", 2, h);
    snprintf(other, sizeof other, "%s/buckets/bkt/objects/%.2s/%s", g_dir, h, h);
    ck_assert_int_eq(rename(p, other), 0); /* a name that is not its key's hash */
    st = open_store(0);
    fs3_store_counts(st, &nb, &no);
    ck_assert_uint_eq(no, 8);
    ck_assert_ptr_null(get(st, "bkt", "d"));
    ck_assert_ptr_null(get(st, "bkt", "e"));
    fs3_store_close(st);
    remove_tree(g_dir);
    free(g_dir);
}
END_TEST

START_TEST(test_store_foreign_dir)
{
    g_dir = fresh_dir();
    ck_assert_int_eq(mkdir(g_dir, 0755), 0);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/precious.txt", g_dir);
    tu_write_file(p, "mine", 4);
    fs3_store_options o = {.dir = g_dir};
    fs3_store *st = NULL;
    char err[LV_ERRLEN] = "";
    ck_assert_int_ne(fs3_store_open(&o, &st, err), FS3_OK);
    ck_assert_ptr_nonnull(strstr(err, "not a fakes3 data directory"));
    ck_assert_int_eq(count_files(g_dir), 1);
    /* a file where the directory should be */
    o.dir = p;
    ck_assert_int_ne(fs3_store_open(&o, &st, err), FS3_OK);
    ck_assert_ptr_nonnull(strstr(err, "not a directory"));
    remove_tree(g_dir);
    free(g_dir);
}
END_TEST

START_TEST(test_store_abort_and_delete_bucket)
{
    g_dir = fresh_dir();
    char err[LV_ERRLEN];
    fs3_store *st = open_store(0);
    ck_assert_int_eq(fs3_store_create_bucket(st, "bkt", 1, err), FS3_OK);
    fs3_put *p = NULL;
    ck_assert_int_eq(fs3_store_put_begin(st, "bkt", "k", 1, &p, err), FS3_OK);
    ck_assert_int_eq(fs3_put_write(p, "abc", 3, err), FS3_OK);
    fs3_put_abort(p); /* a cut-off upload: nothing visible, nothing left */
    ck_assert_ptr_null(get(st, "bkt", "k"));
    char tmpd[PATH_MAX];
    snprintf(tmpd, sizeof tmpd, "%s/tmp", g_dir);
    ck_assert_int_eq(count_files(tmpd), 0);
    /* the bucket is deleted during an upload: the commit fails cleanly */
    ck_assert_int_eq(fs3_store_put_begin(st, "bkt", "k", 1, &p, err), FS3_OK);
    ck_assert_int_eq(fs3_store_delete_bucket(st, "bkt", err), FS3_OK);
    ck_assert_int_eq(fs3_store_put_commit(st, p, "e", NULL, 0, NULL, 1, NULL, err),
                     FS3_NO_SUCH_BUCKET);
    ck_assert_int_eq(count_files(tmpd), 0);
    ck_assert_int_eq(count_files(g_dir), 2); /* marker and lock */
    fs3_store_close(st);
    remove_tree(g_dir);
    free(g_dir);
}
END_TEST

/* ---- aws-chunked ----------------------------------------------------------------------------- */

/*
 * The AWS documentation's example ("Transferring Payload in Multiple Chunks"): 65,536 and 1,024
 * bytes of 'a' and the final chunk, with the documented signatures (tests/test_sigv4.c checks the
 * seed signature from the request itself).
 */
#define DOC_SEED   "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define DOC_SIG1   "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
#define DOC_SIG2   "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
#define DOC_SIG3   "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
#define DOC_DATE   "20130524T000000Z"
#define DOC_SCOPE  "20130524/us-east-1/s3/aws4_request"
#define DOC_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static char *doc_body(size_t *len)
{
    size_t cap = 66824 + 1;
    char *b = malloc(cap), *p = b;
    p += sprintf(p, "10000;chunk-signature=" DOC_SIG1 "\r\n");
    memset(p, 'a', 65536);
    p += 65536;
    p += sprintf(p, "\r\n400;chunk-signature=" DOC_SIG2 "\r\n");
    memset(p, 'a', 1024);
    p += 1024;
    p += sprintf(p, "\r\n0;chunk-signature=" DOC_SIG3 "\r\n\r\n");
    *len = (size_t)(p - b);
    return b;
}

typedef struct sink_state {
    size_t n;
    int all_a;
} sink_state;

static fs3_code count_sink(void *ctx, const char *data, size_t n)
{
    sink_state *s = ctx;
    for (size_t i = 0; i < n; i++)
        s->all_a &= data[i] == 'a';
    s->n += n;
    return FS3_OK;
}

static fs3_chunked *doc_decoder(void)
{
    uint8_t key[SIGV4_KEY_LEN];
    ck_assert_int_eq(sigv4_signing_key(DOC_SECRET, DOC_DATE, "us-east-1", "s3", key, NULL), LV_OK);
    fs3_chunked_params p = {.signed_chunks = 1,
                            .signing_key = key,
                            .amz_date = DOC_DATE,
                            .scope = DOC_SCOPE,
                            .seed_signature = DOC_SEED};
    fs3_chunked *d = fs3_chunked_new(&p);
    ck_assert_ptr_nonnull(d);
    return d;
}

/* Feeds body in pieces of `step` bytes (0: pieces of varying size). */
static fs3_code feed_all(fs3_chunked *d, const char *body, size_t len, size_t step, sink_state *s)
{
    size_t off = 0, k = 1;
    char err[LV_ERRLEN];
    while (off < len) {
        size_t n = step ? step : (k * 7919) % 5000 + 1;
        if (n > len - off)
            n = len - off;
        fs3_code rc = fs3_chunked_feed(d, body + off, n, count_sink, s, err);
        if (rc != FS3_OK)
            return rc;
        off += n;
        k++;
    }
    return fs3_chunked_finish(d, err);
}

START_TEST(test_chunked_doc_example)
{
    size_t len;
    char *body = doc_body(&len);
    ck_assert_uint_eq(len, 66824); /* the documented Content-Length */
    const size_t steps[] = {0, 1, 2, 3, 86, 88, 4096, 66824};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        fs3_chunked *d = doc_decoder();
        sink_state s = {0, 1};
        ck_assert_msg(feed_all(d, body, len, steps[i], &s) == FS3_OK, "step %zu", steps[i]);
        ck_assert_uint_eq(s.n, 66560);
        ck_assert(s.all_a);
        ck_assert_uint_eq(fs3_chunked_decoded(d), 66560);
        fs3_chunked_free(d);
    }
    /* one changed data byte, one changed signature digit: the chunk signature no longer holds */
    const size_t flips[] = {100, 88 + 65536 + 2 + 30, 88 + 20};
    for (size_t i = 0; i < sizeof flips / sizeof *flips; i++) {
        char *bad = malloc(len);
        memcpy(bad, body, len);
        bad[flips[i]] = bad[flips[i]] == 'a' ? 'b' : (bad[flips[i]] == '0' ? '1' : '0');
        fs3_chunked *d = doc_decoder();
        sink_state s = {0, 1};
        fs3_code rc = feed_all(d, bad, len, 1000, &s);
        ck_assert_msg(rc == FS3_SIGNATURE_DOES_NOT_MATCH || rc == FS3_INVALID_REQUEST,
                      "flip at %zu: %s", flips[i], fs3_code_name(rc));
        fs3_chunked_free(d);
        free(bad);
    }
    /* cut short anywhere: never complete */
    const size_t cuts[] = {0, 10, 88, 65624, 66823};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        fs3_chunked *d = doc_decoder();
        sink_state s = {0, 1};
        ck_assert_int_eq(feed_all(d, body, cuts[i], 0, &s), FS3_INCOMPLETE_BODY);
        fs3_chunked_free(d);
    }
    free(body);
}
END_TEST

static fs3_code decode_unsigned(const char *body, int trailer, sink_state *s, fs3_chunked **out)
{
    fs3_chunked_params p = {.trailer = trailer};
    fs3_chunked *d = fs3_chunked_new(&p);
    ck_assert_ptr_nonnull(d);
    fs3_code rc = feed_all(d, body, strlen(body), 0, s);
    if (out)
        *out = d;
    else
        fs3_chunked_free(d);
    return rc;
}

START_TEST(test_chunked_framing)
{
    sink_state s = {0, 1};
    fs3_chunked *d;
    ck_assert_int_eq(
        decode_unsigned("3\r\naaa\r\n0\r\nx-amz-checksum-crc32: abc= \r\n\r\n", 1, &s, &d), FS3_OK);
    ck_assert_uint_eq(s.n, 3);
    size_t n;
    const fs3_kv *t = fs3_chunked_trailers(d, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(t[0].name, "x-amz-checksum-crc32");
    ck_assert_str_eq(t[0].value, "abc=");
    fs3_chunked_free(d);
    ck_assert_int_eq(decode_unsigned("A\r\naaaaaaaaaa\r\n0\r\n\r\n", 0, &s, NULL), FS3_OK);
    const char *bad[] = {"3\r\naaaa\r\n0\r\n\r\n",              /* more data than the size */
                         "3\naaa\r\n0\r\n\r\n",                 /* bare LF */
                         "zz\r\n",                              /* no size */
                         "ffffffffffffffff\r\n",                /* absurd size */
                         "3;chunk-signature=abc\r\naaa\r\n",    /* malformed signature */
                         "0\r\nx-amz-checksum-crc32:x\r\n\r\n", /* a trailer nobody announced */
                         "0\r\n\r\nextra",                      /* data after the end */
                         "3 \r\naaa\r\n0\r\n\r\n",              /* junk after the size */
                         NULL};
    for (int i = 0; bad[i]; i++) {
        s = (sink_state){0, 1};
        fs3_code rc = decode_unsigned(bad[i], 0, &s, NULL);
        ck_assert_msg(rc != FS3_OK, "accepted case %d", i);
    }
    /* a line that never ends is bounded */
    char *longline = malloc(10000);
    memset(longline, '1', 9999);
    longline[9999] = '\0';
    s = (sink_state){0, 1};
    ck_assert_int_eq(decode_unsigned(longline, 0, &s, NULL), FS3_INVALID_REQUEST);
    free(longline);
    /* signed mode refuses an unsigned chunk */
    fs3_chunked *sd = doc_decoder();
    char err[LV_ERRLEN];
    ck_assert_int_eq(fs3_chunked_feed(sd, "3\r\naaa", 6, count_sink, &s, err),
                     FS3_SIGNATURE_DOES_NOT_MATCH);
    fs3_chunked_free(sd);
}
END_TEST

static Suite *units_suite(void)
{
    Suite *s = suite_create("fakes3_units");
    TCase *tc = tcase_create("httpsem");
    tcase_add_test(tc, test_ranges);
    tcase_add_test(tc, test_etags);
    tcase_add_test(tc, test_dates);
    tcase_add_test(tc, test_read_conditions);
    suite_add_tcase(s, tc);
    tc = tcase_create("router");
    tcase_add_test(tc, test_routes);
    tcase_add_test(tc, test_query);
    suite_add_tcase(s, tc);
    tc = tcase_create("store");
    tcase_add_test(tc, test_store_memory);
    tcase_add_test(tc, test_store_disk);
    tcase_add_test(tc, test_store_foreign_dir);
    tcase_add_test(tc, test_store_abort_and_delete_bucket);
    suite_add_tcase(s, tc);
    tc = tcase_create("chunked");
    tcase_add_test(tc, test_chunked_doc_example);
    tcase_add_test(tc, test_chunked_framing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(units_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
