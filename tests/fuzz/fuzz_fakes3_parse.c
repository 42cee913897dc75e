/*
 * fuzz_fakes3_parse: libFuzzer target for the parsers of fakes3's request path, called directly
 * (no sockets, no threads: a hundred times faster than fuzz_fakes3_request, so it reaches deeper
 * into each one). The first byte of an input picks the parser ('0' to '9'; any byte works, taken
 * modulo 10 after subtracting '0', so that seed files stay text), the rest is its input:
 *
 *   0 route    "TARGET\nHOST\nCOPY-SOURCE" with a method from the second byte: the target decoded
 *              as server.c does (lv_uri_decode), fs3_query_parse, fs3_query_get, fs3_route_request
 *   1 range    fs3_parse_range on the text, against sizes 0, 1, 10, 2^63 and 2^64-1
 *   2 dates    fs3_parse_http_date; fs3_check_read_cond with four lines as the four headers
 *   3 etags    fs3_etag_list_matches, "LIST\nETAG"
 *   4 chunked  fs3_chunked_feed (unsigned; trailer flag from the second byte) in pieces whose
 *              sizes come from the input, then fs3_chunked_finish and the trailers
 *   5 chunked  the same with chunk signatures checked (a fixed key and seed signature)
 *   6 xml      fs3_xml_parse, a walk of the tree, fs3_xml_child; fs3_xml_parse_delete and
 *              fs3_xml_parse_complete (the DeleteObjects and CompleteMultipartUpload bodies)
 *   7 auth     a request head ("METHOD TARGET" then "Name: value" lines) through fs3_auth_check
 *              and, when it waits for the body, fs3_auth_finish, with and without --anonymous
 *   8 encode   lv_uri_decode, lv_buf_uri_encode, fs3_xml_text
 *   9 checksum "HEADER-NAME\nVALUE\nBODY": fs3_ck_from_header, fs3_ck_from_name,
 *              fs3_ck_value_valid and fs3_ck_equal for every algorithm, and each digest of BODY
 *              computed in one shot and streamed in pieces
 *
 * Beyond "no crash, no hang, no leak" it checks what the headers promise: a satisfiable range lies
 * inside the object; a route's key lies inside the path and is at most 1024 bytes, its bucket is a
 * valid name; the chunked decoder never yields more bytes than it was fed, counts what it yields,
 * and accepts nothing after an error; a date it formats parses back to the same second; a parsed
 * XML tree holds NUL-terminated text of the stated length; a Delete or CompleteMultipartUpload
 * list is within its limits when read and empty when refused; decoding what was percent-encoded
 * gives back the original; a checksum streamed in pieces equals the one-shot one, and is a valid
 * value of its algorithm. These functions live in router.c, httpsem.c, chunked.c, xml.c, auth.c and
 * lib/buf.c; a broken promise there is reported as a crash with the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "auth.h"
#include "buf.h"
#include "checksum.h"
#include "chunked.h"
#include "fuzz_common.h"
#include "httpsem.h"
#include "router.h"
#include "store.h"
#include "xml.h"

#define FIXED_NOW_MS 1704067200000LL /* 2024-01-01T00:00:00Z, as fuzz_fakes3_request */

/* A NUL-terminated copy of data[0..n) (NUL bytes inside stay: C-string users stop there). */
static char *dup_z(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);
    FUZZ_CHECK(s != NULL, "out of memory");
    memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* Splits s (modified) at '\n' into at most max fields; returns how many. */
static size_t split_lines(char *s, char **out, size_t max)
{
    size_t n = 0;
    out[n++] = s;
    for (char *p = s; *p && n < max; p++) {
        if (*p == '\n') {
            *p = '\0';
            out[n++] = p + 1;
        }
    }
    return n;
}

static void fuzz_route(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "PUT", "POST", "DELETE", "HEAD", "PATCH"};
    if (size < 1)
        return;
    const char *method = methods[data[0] % 6];
    char *s = dup_z(data + 1, size - 1);
    char *f[3] = {NULL, NULL, NULL};
    size_t nf = split_lines(s, f, 3);
    const char *target = f[0];
    const char *host = nf > 1 ? f[1] : NULL;
    const char *copy = nf > 2 ? f[2] : NULL;
    /* as server.c: the path up to '?' decoded once, the query parsed on its own */
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    char *path = malloc(plen + 1);
    FUZZ_CHECK(path != NULL, "out of memory");
    size_t path_len = lv_uri_decode(target, plen, path);
    FUZZ_CHECK(path_len <= plen && path[path_len] == '\0', "decoded %zu of %zu", path_len, plen);
    fs3_query query;
    if (fs3_query_parse(q ? q + 1 : NULL, &query) == 0) {
        for (size_t i = 0; i < query.n; i++) {
            FUZZ_CHECK(query.params[i].name && query.params[i].value, "param %zu", i);
            FUZZ_CHECK(strlen(query.params[i].value) <= query.params[i].value_len &&
                           query.params[i].value[query.params[i].value_len] == '\0',
                       "param %zu value_len %zu", i, query.params[i].value_len);
            size_t len = 0;
            const char *v = fs3_query_get(&query, query.params[i].name, &len);
            FUZZ_CHECK(v != NULL, "fs3_query_get missed %s", query.params[i].name);
        }
        fs3_route route;
        char err[LV_ERRLEN];
        fuzz_err_reset(err);
        fs3_code rc =
            fs3_route_request(method, path, path_len, &query, host, "localhost", copy, &route, err);
        if (rc == FS3_OK) {
            FUZZ_CHECK(route.op > FS3_OP_UNKNOWN && route.op < FS3_OP_COUNT, "op %d", route.op);
            FUZZ_CHECK(!route.bucket[0] || fs3_bucket_name_valid(route.bucket), "bucket %s",
                       route.bucket);
            if (route.key) {
                FUZZ_CHECK(route.key >= path && route.key + route.key_len <= path + path_len,
                           "key outside the path");
                FUZZ_CHECK(route.key_len <= FS3_MAX_KEY_LEN, "key of %zu bytes", route.key_len);
                FUZZ_CHECK(route.bucket[0], "a key without a bucket");
            }
            FUZZ_CHECK(strcmp(fs3_op_name(route.op), "Unknown") != 0, "op %d unnamed", route.op);
        } else {
            FUZZ_CHECK(memchr(err, '\0', LV_ERRLEN) != NULL, "route error not terminated");
        }
        fs3_query_free(&query);
    }
    free(path);
    free(s);
}

static void fuzz_range(const uint8_t *data, size_t size)
{
    static const uint64_t sizes[] = {0, 1, 10, UINT64_C(1) << 63, UINT64_MAX};
    char *s = dup_z(data, size);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t first = 0, last = 0;
        fs3_range_kind k = fs3_parse_range(s, sizes[i], &first, &last);
        FUZZ_CHECK(k == FS3_RANGE_NONE || k == FS3_RANGE_OK || k == FS3_RANGE_UNSATISFIABLE,
                   "kind %d", (int)k);
        if (k == FS3_RANGE_OK)
            FUZZ_CHECK(first <= last && last < sizes[i], "range %llu-%llu of %llu",
                       (unsigned long long)first, (unsigned long long)last,
                       (unsigned long long)sizes[i]);
    }
    free(s);
}

static void fuzz_dates(const uint8_t *data, size_t size)
{
    char *s = dup_z(data, size);
    int64_t secs = 0;
    if (fs3_parse_http_date(s, &secs) == 0 && secs >= 0 && secs < INT64_C(253402300800)) {
        char out[64];
        int64_t again = -1;
        fs3_format_http_date(secs, out, sizeof out);
        FUZZ_CHECK(fs3_parse_http_date(out, &again) == 0 && again == secs,
                   "%lld formats as \"%s\", which parses as %lld", (long long)secs, out,
                   (long long)again);
    }
    char *f[4] = {NULL, NULL, NULL, NULL};
    split_lines(s, f, 4);
    fs3_read_cond c = {f[0], f[1], f[2], f[3]};
    fs3_code rc = fs3_check_read_cond(&c, "0123456789abcdef0123456789abcdef", FIXED_NOW_MS);
    FUZZ_CHECK(rc == FS3_OK || rc == FS3_PRECONDITION_FAILED || rc == FS3_NOT_MODIFIED, "code %d",
               (int)rc);
    char iso[40];
    fs3_format_iso8601(secs * 1000, iso, sizeof iso);
    free(s);
}

static void fuzz_etags(const uint8_t *data, size_t size)
{
    char *s = dup_z(data, size);
    char *f[2] = {NULL, NULL};
    size_t n = split_lines(s, f, 2);
    int m = fs3_etag_list_matches(f[0], n > 1 ? f[1] : "0123456789abcdef0123456789abcdef");
    FUZZ_CHECK(m == 0 || m == 1, "matches %d", m);
    if (strcmp(f[0], "*") == 0)
        FUZZ_CHECK(m == 1, "\"*\" did not match");
    free(s);
}

typedef struct sink_state {
    uint64_t bytes;
    int fail_at; /* the call at which the sink refuses, or -1 */
    int calls;
    int failed; /* it did: the failure's detail is the sink's to give, not the decoder's */
} sink_state;

static fs3_code count_sink(void *ctx, const char *data, size_t n)
{
    sink_state *st = ctx;
    volatile char touch = n ? data[0] ^ data[n - 1] : 0; /* ASan checks the bytes are there */
    (void)touch;
    if (st->calls++ == st->fail_at) {
        st->failed = 1;
        return FS3_ENTITY_TOO_LARGE;
    }
    st->bytes += n; /* what the sink took */
    return FS3_OK;
}

static void fuzz_chunked(const uint8_t *data, size_t size, int signed_chunks)
{
    if (size < 2)
        return;
    static const uint8_t key[SIGV4_KEY_LEN] = {1, 2,  3,  4,  5,  6,  7,  8,
                                               9, 10, 11, 12, 13, 14, 15, 16};
    fs3_chunked_params p = {
        .signed_chunks = signed_chunks,
        .trailer = data[0] & 1,
        .signing_key = key,
        .amz_date = "20240101T000000Z",
        .scope = "20240101/us-east-1/s3/aws4_request",
        .seed_signature = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    };
    sink_state st = {0, (data[0] & 0x80) ? (data[1] & 7) : -1, 0, 0};
    unsigned piece_seed = data[1];
    data += 2;
    size -= 2;
    fs3_chunked *d = fs3_chunked_new(&p);
    FUZZ_CHECK(d != NULL, "fs3_chunked_new failed");
    char err[LV_ERRLEN];
    size_t off = 0;
    fs3_code rc = FS3_OK;
    while (off < size) {
        /* piece sizes 1..64 from a small generator seeded by the input: splits land anywhere */
        piece_seed = piece_seed * 1103515245u + 12345u;
        size_t n = 1 + (piece_seed >> 16) % 64;
        if (n > size - off)
            n = size - off;
        fuzz_err_reset(err);
        rc = fs3_chunked_feed(d, (const char *)data + off, n, count_sink, &st, err);
        off += n;
        if (rc != FS3_OK) {
            if (st.failed)
                FUZZ_CHECK(rc == FS3_ENTITY_TOO_LARGE, "the sink's code became %s",
                           fs3_code_name(rc));
            else
                FUZZ_CHECK(memchr(err, '\0', LV_ERRLEN) != NULL, "feed error not terminated");
            break;
        }
    }
    FUZZ_CHECK(st.bytes <= size, "decoded %llu bytes out of %zu", (unsigned long long)st.bytes,
               size);
    FUZZ_CHECK(fs3_chunked_decoded(d) == st.bytes, "decoded() %llu, sink got %llu",
               (unsigned long long)fs3_chunked_decoded(d), (unsigned long long)st.bytes);
    if (rc != FS3_OK) {
        uint64_t before = st.bytes;
        FUZZ_CHECK(fs3_chunked_feed(d, "0\r\n\r\n", 5, count_sink, &st, err) != FS3_OK,
                   "the decoder took more input after an error");
        FUZZ_CHECK(st.bytes == before, "data after an error");
        FUZZ_CHECK(fs3_chunked_finish(d, err) != FS3_OK, "finished after an error");
    } else {
        fs3_code fin = fs3_chunked_finish(d, err);
        if (fin == FS3_OK) {
            size_t nt = 0;
            const fs3_kv *t = fs3_chunked_trailers(d, &nt);
            for (size_t i = 0; i < nt; i++)
                FUZZ_CHECK(t[i].name && t[i].value, "trailer %zu", i);
        }
    }
    fs3_chunked_free(d);
}

static void walk(const fs3_xml_node *n, int depth, size_t *count)
{
    for (; n; n = n->next) {
        FUZZ_CHECK(depth < 1000, "tree deeper than 1000");
        FUZZ_CHECK(n->name && n->text, "node without name or text");
        FUZZ_CHECK(strlen(n->text) == n->text_len, "text_len %zu for %zu bytes", n->text_len,
                   strlen(n->text));
        (*count)++;
        walk(n->child, depth + 1, count);
    }
}

static void fuzz_xml(const uint8_t *data, size_t size)
{
    fs3_xml_node *root = NULL;
    char err[LV_ERRLEN];
    fuzz_err_reset(err);
    fs3_code rc = fs3_xml_parse((const char *)data, size, &root, err);
    if (rc == FS3_OK) {
        FUZZ_CHECK(root != NULL, "parsed without a root");
        size_t count = 0;
        walk(root, 0, &count);
        fs3_xml_child(root, "LocationConstraint");
        fs3_xml_child(root, "Object");
        fs3_xml_free(root);
    } else {
        FUZZ_CHECK(rc == FS3_MALFORMED_XML || rc == FS3_INTERNAL_ERROR, "code %d", (int)rc);
        FUZZ_CHECK(memchr(err, '\0', LV_ERRLEN) != NULL, "xml error not terminated");
    }
    fs3_delete_list del;
    memset(&del, 0x5a, sizeof del); /* a failure must leave it empty whatever it held */
    rc = fs3_xml_parse_delete((const char *)data, size, &del, err);
    if (rc == FS3_OK) {
        FUZZ_CHECK(del.n >= 1 && del.n <= FS3_MAX_DELETE_KEYS, "%zu keys", del.n);
        for (size_t i = 0; i < del.n; i++)
            FUZZ_CHECK(del.items[i].key && del.items[i].key_len > 0, "key %zu empty", i);
    } else {
        FUZZ_CHECK(del.n == 0, "a refused Delete body left %zu keys", del.n);
    }
    fs3_delete_list_free(&del);
    fs3_complete_list cl;
    memset(&cl, 0x5a, sizeof cl);
    rc = fs3_xml_parse_complete((const char *)data, size, &cl, err);
    if (rc == FS3_OK) {
        FUZZ_CHECK(cl.n >= 1 && cl.n <= FS3_MAX_PARTS, "%zu parts", cl.n);
        for (size_t i = 0; i < cl.n; i++)
            FUZZ_CHECK(memchr(cl.parts[i].etag, '\0', FS3_ETAG_MAX) != NULL,
                       "part %zu: etag not terminated", i);
    } else {
        FUZZ_CHECK(cl.n == 0, "a refused CompleteMultipartUpload body left %zu parts", cl.n);
    }
    fs3_complete_list_free(&cl);
}

static void fuzz_checksum(const uint8_t *data, size_t size)
{
    char *s = dup_z(data, size);
    char *f[3] = {NULL, NULL, NULL};
    size_t nf = split_lines(s, f, 3);
    fs3_ck_alg h = fs3_ck_from_header(f[0]), a = fs3_ck_from_name(f[0]);
    FUZZ_CHECK(h >= FS3_CK_NONE && h < FS3_CK_COUNT && a >= FS3_CK_NONE && a < FS3_CK_COUNT,
               "algorithms %d %d", (int)h, (int)a);
    const char *value = nf > 1 ? f[1] : "";
    /* the body: everything after the second line, as bytes (NULs included) */
    const uint8_t *body = data;
    size_t body_len = 0;
    if (nf > 2) {
        body = data + (size_t)(f[2] - s);
        body_len = size - (size_t)(f[2] - s);
    }
    for (int alg = FS3_CK_NONE + 1; alg < FS3_CK_COUNT; alg++) {
        int valid = fs3_ck_value_valid((fs3_ck_alg)alg, value);
        FUZZ_CHECK(valid == 0 || valid == 1, "value_valid %d", valid);
        if (valid)
            FUZZ_CHECK(fs3_ck_equal((fs3_ck_alg)alg, value, value) == 1, "%s != itself", value);
        char once[FS3_CK_B64_MAX], streamed[FS3_CK_B64_MAX];
        FUZZ_CHECK(fs3_ck_compute((fs3_ck_alg)alg, body, body_len, once) == 0, "compute");
        fs3_ck c;
        FUZZ_CHECK(fs3_ck_init(&c, (fs3_ck_alg)alg) == 0, "init");
        for (size_t off = 0, step = 1; off < body_len; off += step, step = step * 3 % 61 + 1)
            fs3_ck_update(&c, body + off, step < body_len - off ? step : body_len - off);
        fs3_ck_final(&c, streamed);
        fs3_ck_free(&c);
        FUZZ_CHECK(strcmp(once, streamed) == 0, "%s: one shot %s, streamed %s",
                   fs3_ck_name((fs3_ck_alg)alg), once, streamed);
        FUZZ_CHECK(fs3_ck_value_valid((fs3_ck_alg)alg, once) == 1, "%s: computed %s invalid",
                   fs3_ck_name((fs3_ck_alg)alg), once);
    }
    free(s);
}

static void fuzz_auth(const uint8_t *data, size_t size)
{
    char *s = dup_z(data, size);
    char *lines[64];
    size_t n = split_lines(s, lines, 64);
    /* line 0: "METHOD TARGET" */
    char *method = lines[0], *target = strchr(lines[0], ' ');
    if (target)
        *target++ = '\0';
    else
        target = "/";
    char *q = strchr(target, '?');
    char *raw_path = dup_z((const uint8_t *)target, q ? (size_t)(q - target) : strlen(target));
    char *path = malloc(strlen(raw_path) + 1);
    FUZZ_CHECK(path != NULL, "out of memory");
    lv_uri_decode(raw_path, strlen(raw_path), path);
    sigv4_header h[63];
    size_t nh = 0;
    for (size_t i = 1; i < n; i++) {
        char *colon = strchr(lines[i], ':');
        if (!colon)
            continue;
        *colon = '\0';
        h[nh].name = lines[i];
        h[nh].value = colon + 1 + (colon[1] == ' ');
        nh++;
    }
    for (int anonymous = 0; anonymous < 2; anonymous++) {
        fs3_auth_config cfg = {"fuzzkey", "fuzzsecret", "us-east-1", anonymous};
        fs3_auth_input in = {method, path, raw_path, q ? q + 1 : NULL, h, nh, FIXED_NOW_MS};
        fs3_auth_result r;
        fs3_auth_result_init(&r);
        char err[LV_ERRLEN];
        fuzz_err_reset(err);
        fs3_code rc = fs3_auth_check(&cfg, &in, &r, err);
        if (rc == FS3_OK && r.needs_body_hash)
            rc = fs3_auth_finish(&cfg, &in, SIGV4_EMPTY_SHA256, &r, err);
        if (rc != FS3_OK)
            FUZZ_CHECK(memchr(r.message, '\0', sizeof r.message) != NULL, "message unterminated");
        if (anonymous)
            FUZZ_CHECK(rc == FS3_OK, "--anonymous refused a request with %s", fs3_code_name(rc));
        fs3_auth_result_free(&r);
    }
    free(path);
    free(raw_path);
    free(s);
}

static void fuzz_encode(const uint8_t *data, size_t size)
{
    char *dec = malloc(size + 1);
    FUZZ_CHECK(dec != NULL, "out of memory");
    size_t n = lv_uri_decode((const char *)data, size, dec);
    FUZZ_CHECK(n <= size, "decoded %zu from %zu", n, size);
    for (int keep_slash = 0; keep_slash < 2; keep_slash++) {
        lv_buf b;
        lv_buf_init(&b);
        lv_buf_uri_encode(&b, dec, n, keep_slash);
        FUZZ_CHECK(!b.oom, "out of memory");
        char *back = malloc(b.len + 1);
        FUZZ_CHECK(back != NULL, "out of memory");
        size_t m = lv_uri_decode(b.data ? b.data : "", b.len, back);
        FUZZ_CHECK(m == n && memcmp(back, dec, n) == 0, "encode then decode changed %zu bytes", n);
        free(back);
        lv_buf_free(&b);
    }
    lv_buf x;
    lv_buf_init(&x);
    fs3_xml_text(&x, (const char *)data, size);
    for (size_t i = 0; i < x.len; i++)
        FUZZ_CHECK(x.data[i] != '<' && x.data[i] != '>', "unescaped markup at %zu", i);
    lv_buf_free(&x);
    free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t which = (uint8_t)(data[0] - '0');
    data++;
    size--;
    switch (which % 10) {
    case 0:
        fuzz_route(data, size);
        break;
    case 1:
        fuzz_range(data, size);
        break;
    case 2:
        fuzz_dates(data, size);
        break;
    case 3:
        fuzz_etags(data, size);
        break;
    case 4:
        fuzz_chunked(data, size, 0);
        break;
    case 5:
        fuzz_chunked(data, size, 1);
        break;
    case 6:
        fuzz_xml(data, size);
        break;
    case 7:
        fuzz_auth(data, size);
        break;
    case 8:
        fuzz_encode(data, size);
        break;
    case 9:
        fuzz_checksum(data, size);
        break;
    }
    return 0;
}
