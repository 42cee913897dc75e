/*
 * test_sigv4: lib/sigv4 against the published SigV4 test suite (../shared/testdata/sigv4, every
 * case folder found there), stage by stage and byte for byte, in both the Authorization-header
 * and the presigned (query) form; server-side verification of each expected signed request; the
 * aws-chunked chunk signatures of the AWS documentation's example; and the edges of the
 * canonical forms, the parsers and out-of-memory paths.
 *
 * Single-threaded (lv_alloc_fail_after is process-wide).
 */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "alloc.h"
#include "sigv4.h"
#include "testutil.h"

/* ---- the vector cases ------------------------------------------------------------------------ */

#define MAX_CASES 256

static char *g_cases[MAX_CASES];
static int g_ncases;

static int case_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the case folders (every directory holding a context.json), sorted. */
static void load_cases(void)
{
    /* outside a test, so no ck_assert here (Check cannot report it): plain exits */
    const char *root = getenv("LTXVFS_TESTDATA");
    if (!root || !*root) {
        fprintf(stderr, "test_sigv4: LTXVFS_TESTDATA is not set (run through ctest)\n");
        exit(1);
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/sigv4", root);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "test_sigv4: cannot open %s\n", dir);
        exit(1);
    }
    char path[4096 + 512];
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        struct stat st;
        snprintf(path, sizeof path, "%s/%s/context.json", dir, e->d_name);
        if (stat(path, &st) != 0)
            continue;
        if (g_ncases == MAX_CASES) {
            fprintf(stderr, "test_sigv4: more than %d cases\n", MAX_CASES);
            exit(1);
        }
        g_cases[g_ncases++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(g_cases, (size_t)g_ncases, sizeof *g_cases, case_cmp);
}

/* A whole file of a case as a NUL-terminated string (caller frees). */
static char *case_file(const char *name, const char *file)
{
    char rel[1024];
    snprintf(rel, sizeof rel, "sigv4/%s/%s", name, file);
    size_t n;
    uint8_t *data = tu_read_file(tu_testdata(rel), &n);
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, data, n);
    s[n] = '\0';
    free(data);
    return s;
}

/* An HTTP request as the case files write it. */
typedef struct http_req {
    char *method, *path, *query; /* query NULL when the target has no '?' */
    sigv4_header headers[64];
    size_t n_headers;
    char *body;
    size_t body_len;
    char *store[256]; /* everything allocated, freed by req_free */
    size_t nstore;
} http_req;

static char *keep(http_req *r, char *s)
{
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_lt(r->nstore, 256);
    r->store[r->nstore++] = s;
    return s;
}

static void req_free(http_req *r)
{
    for (size_t i = 0; i < r->nstore; i++)
        free(r->store[i]);
    memset(r, 0, sizeof *r);
}

/*
 * Parses "METHOD target HTTP/1.1", headers (a line starting with white space continues the
 * previous value: obsolete line folding), an empty line and the body. The target may hold spaces
 * and raw UTF-8, as the cases write it.
 */
static void parse_request(const char *text, http_req *r)
{
    memset(r, 0, sizeof *r);
    const char *eol = strchr(text, '\n');
    size_t llen = eol ? (size_t)(eol - text) : strlen(text);
    char *line = keep(r, strndup(text, llen));
    char *sp1 = strchr(line, ' '), *sp2 = strrchr(line, ' ');
    ck_assert_msg(sp1 && sp2 && sp2 > sp1, "bad request line: %s", line);
    *sp1 = '\0';
    *sp2 = '\0';
    r->method = line;
    char *target = sp1 + 1;
    char *q = strchr(target, '?');
    if (q) {
        *q = '\0';
        r->query = q + 1;
    }
    r->path = target;
    const char *p = eol ? eol + 1 : text + llen;
    char *last_value = NULL;
    while (*p) {
        eol = strchr(p, '\n');
        llen = eol ? (size_t)(eol - p) : strlen(p);
        const char *next = eol ? eol + 1 : p + llen;
        if (llen && p[llen - 1] == '\r')
            llen--;
        if (llen == 0) {
            p = next;
            break;
        }
        if ((*p == ' ' || *p == '\t') && last_value) {
            /* a folded line: append it, with the line break, to the previous value */
            size_t a = strlen(last_value);
            char *v = malloc(a + 1 + llen + 1);
            ck_assert_ptr_nonnull(v);
            memcpy(v, last_value, a);
            v[a] = '\n';
            memcpy(v + a + 1, p, llen);
            v[a + 1 + llen] = '\0';
            keep(r, v);
            r->headers[r->n_headers - 1].value = v;
            last_value = v;
        } else {
            char *h = keep(r, strndup(p, llen));
            char *colon = strchr(h, ':');
            ck_assert_msg(colon != NULL, "bad header line: %s", h);
            *colon = '\0';
            ck_assert_uint_lt(r->n_headers, 64);
            r->headers[r->n_headers].name = h;
            r->headers[r->n_headers].value = colon + 1;
            r->n_headers++;
            last_value = colon + 1;
        }
        p = next;
    }
    r->body = keep(r, strdup(p));
    r->body_len = strlen(p);
}

static void add_header(http_req *r, const char *name, const char *value)
{
    ck_assert_uint_lt(r->n_headers, 64);
    r->headers[r->n_headers].name = keep(r, strdup(name));
    r->headers[r->n_headers].value = keep(r, strdup(value));
    r->n_headers++;
}

/* The value of a header of r (first match, case-insensitive), or NULL. */
static const char *header_of(const http_req *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* The context of a case. */
typedef struct ctx {
    json_t *json;
    sigv4_credentials creds;
    char amz_date[SIGV4_DATE_LEN + 1];
    long expires;
    int normalize, sign_body, omit_token;
} ctx;

static void load_ctx(const char *name, ctx *c)
{
    char *text = case_file(name, "context.json");
    json_error_t jerr;
    c->json = json_loads(text, 0, &jerr);
    free(text);
    ck_assert_msg(c->json != NULL, "%s/context.json: %s", name, jerr.text);
    json_t *cr = tu_jget(c->json, "credentials");
    c->creds.access_key = tu_jstr(cr, "access_key_id");
    c->creds.secret_key = tu_jstr(cr, "secret_access_key");
    json_t *tok = json_object_get(cr, "token");
    c->creds.session_token = tok ? json_string_value(tok) : NULL;
    c->creds.region = tu_jstr(c->json, "region");
    c->creds.service = tu_jstr(c->json, "service");
    c->expires = (long)tu_jint(c->json, "expiration_in_seconds");
    c->normalize = json_is_true(tu_jget(c->json, "normalize"));
    c->sign_body = json_is_true(tu_jget(c->json, "sign_body"));
    json_t *omit = json_object_get(c->json, "omit_session_token");
    c->omit_token = omit && json_is_true(omit);
    /* "2015-08-30T12:36:00Z" -> "20150830T123600Z" */
    const char *ts = tu_jstr(c->json, "timestamp");
    ck_assert_uint_eq(strlen(ts), 20);
    snprintf(c->amz_date, sizeof c->amz_date, "%.4s%.2s%.2sT%.2s%.2s%.2sZ", ts, ts + 5, ts + 8,
             ts + 11, ts + 14, ts + 17);
}

/* Asserts that got equals the case file `file`, byte for byte. */
static void expect_file(const char *name, const char *file, const char *got)
{
    char *want = case_file(name, file);
    ck_assert_msg(strcmp(want, got) == 0, "%s/%s differs\n--- want\n%s\n--- got\n%s", name, file,
                  want, got);
    free(want);
}

static sigv4_request request_of(const http_req *r, const ctx *c, const char *payload_hash)
{
    sigv4_request req = {
        .method = r->method,
        .path = r->path,
        .query = r->query,
        .headers = r->headers,
        .n_headers = r->n_headers,
        .payload_hash = payload_hash,
        .flags = c->normalize ? SIGV4_NORMALIZE_PATH : 0,
    };
    return req;
}

/* Signs the case in the header form and checks every stage against header-*.txt. */
static void check_header_form(const char *name, const ctx *c, const char *request_text)
{
    http_req r;
    parse_request(request_text, &r);
    char body_hash[SIGV4_HEX_LEN + 1], err[LV_ERRLEN];
    ck_assert_int_eq(sigv4_sha256_hex(r.body, r.body_len, body_hash, err), LV_OK);
    /* what a signer adds before signing: the date, the token, the payload hash when signed */
    add_header(&r, "X-Amz-Date", c->amz_date);
    if (c->creds.session_token && !c->omit_token)
        add_header(&r, "X-Amz-Security-Token", c->creds.session_token);
    if (c->sign_body)
        add_header(&r, "x-amz-content-sha256", body_hash);
    sigv4_credentials creds = c->creds;
    if (c->omit_token)
        creds.session_token = NULL;
    sigv4_request req = request_of(&r, c, body_hash);
    sigv4_result res;
    sigv4_result_init(&res);
    lv_err rc = sigv4_sign(&req, &creds, c->amz_date, &res, err);
    ck_assert_msg(rc == LV_OK, "%s: sign: %s", name, err);
    expect_file(name, "header-canonical-request.txt", res.canonical_request.data);
    expect_file(name, "header-string-to-sign.txt", res.string_to_sign.data);
    expect_file(name, "header-signature.txt", res.signature);

    /* the Authorization header of the expected signed request is exactly ours */
    char *signed_text = case_file(name, "header-signed-request.txt");
    http_req s;
    parse_request(signed_text, &s);
    const char *authz = header_of(&s, "Authorization");
    ck_assert_ptr_nonnull(authz);
    ck_assert_str_eq(authz, res.authorization.data);
    sigv4_result_free(&res);
    req_free(&r);

    /* a server verifies the expected signed request as received */
    sigv4_auth auth;
    rc = sigv4_parse_authorization(authz, &auth, err);
    ck_assert_msg(rc == LV_OK, "%s: parse Authorization: %s", name, err);
    ck_assert_str_eq(auth.access_key, c->creds.access_key);
    ck_assert_str_eq(auth.region, c->creds.region);
    ck_assert_str_eq(auth.service, c->creds.service);
    http_req recv;
    memset(&recv, 0, sizeof recv);
    recv = s;
    recv.n_headers = 0;
    for (size_t i = 0; i < s.n_headers; i++)
        if (strcasecmp(s.headers[i].name, "Authorization") != 0)
            recv.headers[recv.n_headers++] = s.headers[i];
    char recv_hash[SIGV4_HEX_LEN + 1];
    ck_assert_int_eq(sigv4_sha256_hex(s.body, s.body_len, recv_hash, err), LV_OK);
    req = request_of(&recv, c, recv_hash);
    sigv4_result_init(&res);
    rc = sigv4_verify(&req, &auth, c->creds.secret_key, &res, err);
    ck_assert_msg(rc == LV_OK, "%s: verify header form: %s", name, err);
    expect_file(name, "header-canonical-request.txt", res.canonical_request.data);
    ck_assert_str_eq(auth.amz_date, c->amz_date);
    /* the wrong secret, or one changed byte of the body, does not verify */
    rc = sigv4_verify(&req, &auth, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEX", &res, err);
    ck_assert_int_eq(rc, LV_ECHECKSUM);
    req.payload_hash = SIGV4_UNSIGNED_PAYLOAD;
    rc = sigv4_verify(&req, &auth, c->creds.secret_key, &res, err);
    ck_assert_int_eq(rc, LV_ECHECKSUM);
    sigv4_result_free(&res);
    free(signed_text);
    req_free(&s);
}

/* Presigns the case and checks every stage against query-*.txt. */
static void check_query_form(const char *name, const ctx *c, const char *request_text)
{
    http_req r;
    parse_request(request_text, &r);
    char body_hash[SIGV4_HEX_LEN + 1], err[LV_ERRLEN];
    ck_assert_int_eq(sigv4_sha256_hex(r.body, r.body_len, body_hash, err), LV_OK);
    sigv4_credentials creds = c->creds;
    if (c->omit_token)
        creds.session_token = NULL; /* added after signing, so not signed */
    sigv4_request req = request_of(&r, c, body_hash);
    sigv4_result res;
    sigv4_result_init(&res);
    lv_err rc = sigv4_presign(&req, &creds, c->amz_date, c->expires, &res, err);
    ck_assert_msg(rc == LV_OK, "%s: presign: %s", name, err);
    expect_file(name, "query-canonical-request.txt", res.canonical_request.data);
    expect_file(name, "query-string-to-sign.txt", res.string_to_sign.data);
    expect_file(name, "query-signature.txt", res.signature);

    char *signed_text = case_file(name, "query-signed-request.txt");
    http_req s;
    parse_request(signed_text, &s);
    /* the signed query is exactly ours, parameter order included (unless a token was put in
     * after signing) */
    if (!c->omit_token)
        ck_assert_str_eq(s.query, res.query.data);
    sigv4_result_free(&res);
    req_free(&r);

    /* a server verifies the expected presigned request as received */
    sigv4_auth auth;
    rc = sigv4_parse_presigned(s.query, &auth, err);
    ck_assert_msg(rc == LV_OK, "%s: parse presigned: %s", name, err);
    ck_assert_int_eq(auth.expires, c->expires);
    ck_assert_str_eq(auth.amz_date, c->amz_date);
    char recv_hash[SIGV4_HEX_LEN + 1];
    ck_assert_int_eq(sigv4_sha256_hex(s.body, s.body_len, recv_hash, err), LV_OK);
    req = request_of(&s, c, recv_hash);
    sigv4_result_init(&res);
    rc = sigv4_verify(&req, &auth, c->creds.secret_key, &res, err);
    if (c->omit_token) {
        /* the token came after the signature: a server must refuse it */
        ck_assert_int_eq(rc, LV_ECHECKSUM);
    } else {
        ck_assert_msg(rc == LV_OK, "%s: verify query form: %s", name, err);
        expect_file(name, "query-canonical-request.txt", res.canonical_request.data);
    }
    sigv4_result_free(&res);
    free(signed_text);
    req_free(&s);
}

START_TEST(test_vector)
{
    ck_assert_int_lt(_i, g_ncases);
    const char *name = g_cases[_i];
    ctx c;
    load_ctx(name, &c);
    char *request_text = case_file(name, "request.txt");
    check_header_form(name, &c, request_text);
    check_query_form(name, &c, request_text);
    free(request_text);
    json_decref(c.json);
}
END_TEST

START_TEST(test_vectors_present)
{
    /* the suite has 38 cases; the loop above runs every folder found, this catches an empty dir */
    ck_assert_int_ge(g_ncases, 38);
}
END_TEST

/* ---- aws-chunked ----------------------------------------------------------------------------- */

/*
 * The example of the AWS S3 documentation, "Signature Calculations for the Authorization Header:
 * Transferring Payload in Multiple Chunks (Chunked Upload)": a 66,560-byte object of 'a' sent as
 * chunks of 65,536 and 1,024 bytes and the final empty chunk.
 */
START_TEST(test_chunked_aws_example)
{
    const char *amz_date = "20130524T000000Z";
    sigv4_header headers[] = {
        {"Host", "s3.amazonaws.com"},
        {"x-amz-date", amz_date},
        {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
        {"x-amz-content-sha256", SIGV4_STREAMING_PAYLOAD},
        {"Content-Encoding", "aws-chunked"},
        {"x-amz-decoded-content-length", "66560"},
        {"Content-Length", "66824"},
    };
    sigv4_request req = {
        .method = "PUT",
        .path = "/examplebucket/chunkObject.txt",
        .headers = headers,
        .n_headers = sizeof headers / sizeof *headers,
        .payload_hash = SIGV4_STREAMING_PAYLOAD,
    };
    sigv4_credentials creds = {
        .access_key = "AKIAIOSFODNN7EXAMPLE",
        .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        .region = "us-east-1",
        .service = "s3",
    };
    char err[LV_ERRLEN];
    sigv4_result res;
    sigv4_result_init(&res);
    ck_assert_int_eq(sigv4_sign(&req, &creds, amz_date, &res, err), LV_OK);
    ck_assert_str_eq(res.canonical_request.data,
                     "PUT\n/examplebucket/chunkObject.txt\n\n"
                     "content-encoding:aws-chunked\ncontent-length:66824\nhost:s3.amazonaws.com\n"
                     "x-amz-content-sha256:STREAMING-AWS4-HMAC-SHA256-PAYLOAD\n"
                     "x-amz-date:20130524T000000Z\nx-amz-decoded-content-length:66560\n"
                     "x-amz-storage-class:REDUCED_REDUNDANCY\n\n"
                     "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                     "x-amz-decoded-content-length;x-amz-storage-class\n"
                     "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    /* the seed signature */
    ck_assert_str_eq(res.signature,
                     "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");

    static char data[65536];
    memset(data, 'a', sizeof data);
    char hash[SIGV4_HEX_LEN + 1], sig1[SIGV4_HEX_LEN + 1], sig2[SIGV4_HEX_LEN + 1],
        sig3[SIGV4_HEX_LEN + 1];
    ck_assert_int_eq(sigv4_sha256_hex(data, 65536, hash, err), LV_OK);
    ck_assert_int_eq(sigv4_chunk_signature(res.signing_key, amz_date, res.scope.data, res.signature,
                                           hash, sig1, err),
                     LV_OK);
    ck_assert_str_eq(sig1, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
    ck_assert_int_eq(sigv4_sha256_hex(data, 1024, hash, err), LV_OK);
    ck_assert_int_eq(
        sigv4_chunk_signature(res.signing_key, amz_date, res.scope.data, sig1, hash, sig2, err),
        LV_OK);
    ck_assert_str_eq(sig2, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497");
    ck_assert_int_eq(sigv4_chunk_signature(res.signing_key, amz_date, res.scope.data, sig2,
                                           SIGV4_EMPTY_SHA256, sig3, err),
                     LV_OK);
    ck_assert_str_eq(sig3, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9");

    /* the documented Content-Length is the chunk framing of those three chunks */
    size_t framed = 0;
    const size_t sizes[] = {65536, 1024, 0};
    for (int i = 0; i < 3; i++) {
        char line[128];
        int n = snprintf(line, sizeof line, "%zx;chunk-signature=%s\r\n", sizes[i], sig1);
        framed += (size_t)n + sizes[i] + 2;
    }
    ck_assert_uint_eq(framed, 66824);
    sigv4_result_free(&res);
}
END_TEST

/* ---- canonical forms ------------------------------------------------------------------------- */

static char *canon_uri(const char *path, unsigned flags)
{
    static char out[1024];
    lv_buf b;
    lv_buf_init(&b);
    ck_assert_int_eq(sigv4_canonical_uri(path, flags, &b, NULL), LV_OK);
    snprintf(out, sizeof out, "%s", b.data);
    lv_buf_free(&b);
    return out;
}

START_TEST(test_canonical_uri)
{
    /* S3: no normalization, each byte encoded once, '/' kept */
    ck_assert_str_eq(canon_uri("/bucket/a b/../c//d", 0), "/bucket/a%20b/../c//d");
    ck_assert_str_eq(canon_uri("/bucket/100%/x+y=z&w", 0), "/bucket/100%25/x%2By%3Dz%26w");
    ck_assert_str_eq(canon_uri("/b/\xe1\x88\xb4~-._", 0), "/b/%E1%88%B4~-._");
    ck_assert_str_eq(canon_uri("", 0), "/");
    ck_assert_str_eq(canon_uri(NULL, 0), "/");
    /* already canonical: used as it is */
    ck_assert_str_eq(canon_uri("/b/a%20b", SIGV4_PATH_ENCODED), "/b/a%20b");
    /* the generic algorithm */
    ck_assert_str_eq(canon_uri("/a/b/..", SIGV4_NORMALIZE_PATH), "/a/");
    ck_assert_str_eq(canon_uri("/a/./b", SIGV4_NORMALIZE_PATH), "/a/b");
    ck_assert_str_eq(canon_uri("/../../a", SIGV4_NORMALIZE_PATH), "/a");
    ck_assert_str_eq(canon_uri("//", SIGV4_NORMALIZE_PATH), "/");
    ck_assert_str_eq(canon_uri("/a b//c/", SIGV4_NORMALIZE_PATH), "/a%20b/c/");
}
END_TEST

static char *canon_query(const char *q)
{
    static char out[1024];
    lv_buf b;
    lv_buf_init(&b);
    ck_assert_int_eq(sigv4_canonical_query(q, &b, NULL), LV_OK);
    snprintf(out, sizeof out, "%s", b.data ? b.data : "");
    lv_buf_free(&b);
    return out;
}

START_TEST(test_canonical_query)
{
    ck_assert_str_eq(canon_query(NULL), "");
    ck_assert_str_eq(canon_query(""), "");
    /* sorted by name then value, names without '=' get an empty value, empty pieces dropped */
    ck_assert_str_eq(canon_query("b=2&a=2&a=1&&uploads"), "a=1&a=2&b=2&uploads=");
    /* a name that is a prefix of another sorts first (by name, not by "name=value") */
    ck_assert_str_eq(canon_query("Param-3=x&Param=y"), "Param=y&Param-3=x");
    /* encoded and raw input give the same form; '+' is a plus, '/' is encoded */
    ck_assert_str_eq(canon_query("prefix=a%20b/c&delimiter=%2F"), "delimiter=%2F&prefix=a%20b%2Fc");
    ck_assert_str_eq(canon_query("prefix=a b/c"), "prefix=a%20b%2Fc");
    ck_assert_str_eq(canon_query("k=a+b"), "k=a%2Bb");
    ck_assert_str_eq(canon_query("k=%zz%4"), "k=%25zz%254");
    /* the signature itself is never part of the canonical query */
    ck_assert_str_eq(canon_query("X-Amz-Signature=abc&a=1"), "a=1");
    ck_assert_str_eq(canon_query("X-Amz-Signature"), "");
}
END_TEST

START_TEST(test_canonical_headers)
{
    sigv4_header h[] = {
        {"Host", "example.com"}, {"X-Multi", "  a   b\t\tc  "}, {"x-multi", "d"},
        {"X-Empty", ""},         {"Zed", " folded\n   line "},
    };
    lv_buf b;
    lv_buf_init(&b);
    char err[LV_ERRLEN];
    ck_assert_int_eq(sigv4_signed_headers(h, 5, &b, err), LV_OK);
    ck_assert_str_eq(b.data, "host;x-empty;x-multi;zed");
    lv_buf_reset(&b);
    ck_assert_int_eq(sigv4_canonical_headers(h, 5, "host;x-empty;x-multi;zed", &b, err), LV_OK);
    ck_assert_str_eq(b.data, "host:example.com\nx-empty:\nx-multi:a b c,d\nzed:folded line\n");
    lv_buf_reset(&b);
    ck_assert_int_eq(sigv4_canonical_headers(h, 5, "host;x-missing", &b, err), LV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "x-missing"));
    ck_assert_int_eq(sigv4_canonical_headers(h, 5, "host;;zed", &b, err), LV_EINVAL);
    ck_assert_int_eq(sigv4_canonical_headers(h, 5, "", &b, err), LV_EINVAL);
    lv_buf_free(&b);
}
END_TEST

/* ---- dates ----------------------------------------------------------------------------------- */

START_TEST(test_dates)
{
    char out[SIGV4_DATE_LEN + 1], err[LV_ERRLEN];
    int64_t t;
    ck_assert_int_eq(sigv4_parse_date("20150830T123600Z", &t, err), LV_OK);
    ck_assert_int_eq(t, 1440938160);
    ck_assert_int_eq(sigv4_format_date(t, out, err), LV_OK);
    ck_assert_str_eq(out, "20150830T123600Z");
    ck_assert_int_eq(sigv4_format_date(0, out, err), LV_OK);
    ck_assert_str_eq(out, "19700101T000000Z");
    const char *bad[] = {"",
                         "20150830T123600",
                         "20150830 123600Z",
                         "2015083OT123600Z",
                         "20151330T123600Z",
                         "20150830T253600Z",
                         "20150830T123600Zx",
                         NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(sigv4_parse_date(bad[i], &t, err) == LV_EINVAL, "accepted \"%s\"", bad[i]);
    ck_assert_int_eq(sigv4_parse_date(NULL, &t, err), LV_EINVAL);
}
END_TEST

/* ---- parsing what a request claims --------------------------------------------------------- */

START_TEST(test_parse_authorization)
{
    sigv4_auth a;
    char err[LV_ERRLEN];
    const char *sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    char v[512];
    snprintf(v, sizeof v,
             "AWS4-HMAC-SHA256 Credential=AKID/20150830/eu-west-1/s3/aws4_request,"
             "SignedHeaders=host;x-amz-date,Signature=%s",
             sig);
    ck_assert_int_eq(sigv4_parse_authorization(v, &a, err), LV_OK);
    ck_assert_str_eq(a.access_key, "AKID");
    ck_assert_str_eq(a.date, "20150830");
    ck_assert_str_eq(a.region, "eu-west-1");
    ck_assert_str_eq(a.service, "s3");
    ck_assert_str_eq(a.signed_headers, "host;x-amz-date");
    ck_assert_str_eq(a.signature, sig);
    ck_assert_int_eq(a.presigned, 0);

    ck_assert_int_eq(sigv4_parse_authorization("AWS AKID:c2lnbmF0dXJl", &a, err), LV_EUNSUPPORTED);
    ck_assert_int_eq(sigv4_parse_authorization("AWS4-HMAC-SHA256X Credential=a", &a, err),
                     LV_EUNSUPPORTED);
    const char *bad[] = {
        "AWS4-HMAC-SHA256 ",
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/s3/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKID/2015083/us-east-1/s3/aws4_request, SignedHeaders=host, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/s3/aws5_request, SignedHeaders=host, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "AWS4-HMAC-SHA256 Credential=20150830/us-east-1/s3/aws4_request, SignedHeaders=host, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/s3/aws4_request, SignedHeaders=host, "
        "Signature=5fa00fa3",
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/s3/aws4_request, SignedHeaders=, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "AWS4-HMAC-SHA256 garbage",
        NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(sigv4_parse_authorization(bad[i], &a, err) == LV_EINVAL, "accepted %s",
                      bad[i]);
}
END_TEST

START_TEST(test_parse_presigned)
{
    sigv4_auth a;
    char err[LV_ERRLEN];
    ck_assert_int_eq(sigv4_parse_presigned("list-type=2&prefix=a", &a, err), LV_ENOTFOUND);
    ck_assert_int_eq(sigv4_parse_presigned(NULL, &a, err), LV_ENOTFOUND);
    ck_assert_int_eq(sigv4_parse_presigned("X-Amz-Algorithm=AWS4-HMAC-SHA1", &a, err),
                     LV_EUNSUPPORTED);
    const char *base = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20150830%2Fus-"
                       "east-1%2Fs3%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-"
                       "SignedHeaders=host&X-Amz-Signature=5fa00fa31553b73ebf1942676e86291e8372ff"
                       "2a2260956d9b8aae1d763fbf31";
    ck_assert_int_eq(sigv4_parse_presigned(base, &a, err), LV_EINVAL); /* no X-Amz-Expires */
    char q[1024];
    snprintf(q, sizeof q, "%s&X-Amz-Expires=-5", base);
    ck_assert_int_eq(sigv4_parse_presigned(q, &a, err), LV_EINVAL);
    snprintf(q, sizeof q, "%s&X-Amz-Expires=600", base);
    ck_assert_int_eq(sigv4_parse_presigned(q, &a, err), LV_OK);
    ck_assert_int_eq(a.presigned, 1);
    ck_assert_int_eq(a.expires, 600);
    ck_assert_str_eq(a.access_key, "AK");
    ck_assert_str_eq(a.amz_date, "20150830T123600Z");
}
END_TEST

/* A client signs, a server verifies: round trip in both forms with an S3-style request. */
START_TEST(test_s3_round_trip)
{
    const char *amz_date = "20240102T030405Z";
    sigv4_header h[] = {
        {"Host", "127.0.0.1:9000"},
        {"X-Amz-Date", amz_date},
        {"X-Amz-Content-Sha256", SIGV4_UNSIGNED_PAYLOAD},
        {"X-Amz-Meta-Note", "  two  spaces "},
    };
    sigv4_request req = {
        .method = "PUT",
        .path = "/bucket/dir/a key+%.txt",
        .query = "x-id=PutObject",
        .headers = h,
        .n_headers = 4,
        .payload_hash = SIGV4_UNSIGNED_PAYLOAD,
    };
    sigv4_credentials creds = {"fakes3", "fakes3secret", NULL, "us-east-1", "s3"};
    char err[LV_ERRLEN];
    sigv4_result res, chk;
    sigv4_result_init(&res);
    sigv4_result_init(&chk);
    ck_assert_int_eq(sigv4_sign(&req, &creds, amz_date, &res, err), LV_OK);
    ck_assert_ptr_nonnull(strstr(res.canonical_request.data, "/bucket/dir/a%20key%2B%25.txt\n"));
    sigv4_auth a;
    ck_assert_int_eq(sigv4_parse_authorization(res.authorization.data, &a, err), LV_OK);
    ck_assert_int_eq(sigv4_verify(&req, &a, "fakes3secret", &chk, err), LV_OK);
    ck_assert_str_eq(chk.signature, res.signature);
    /* the credential day must be the day of X-Amz-Date */
    memcpy(a.date, "20240103", 8);
    ck_assert_int_eq(sigv4_verify(&req, &a, "fakes3secret", &chk, err), LV_EINVAL);

    /* presigned, with only Host signed */
    sigv4_request pre = req;
    pre.n_headers = 1;
    pre.query = NULL;
    pre.method = "GET";
    ck_assert_int_eq(sigv4_presign(&pre, &creds, amz_date, 300, &res, err), LV_OK);
    ck_assert_ptr_nonnull(strstr(res.canonical_request.data, "\nUNSIGNED-PAYLOAD"));
    ck_assert_int_eq(sigv4_parse_presigned(res.query.data, &a, err), LV_OK);
    sigv4_request got = pre;
    got.query = res.query.data;
    ck_assert_int_eq(sigv4_verify(&got, &a, "fakes3secret", &chk, err), LV_OK);
    got.method = "DELETE";
    ck_assert_int_eq(sigv4_verify(&got, &a, "fakes3secret", &chk, err), LV_ECHECKSUM);
    ck_assert_int_eq(sigv4_presign(&pre, &creds, amz_date, 0, &res, err), LV_EINVAL);
    ck_assert_int_eq(sigv4_presign(&pre, &creds, amz_date, 604801, &res, err), LV_EINVAL);
    sigv4_result_free(&res);
    sigv4_result_free(&chk);
}
END_TEST

/* Every allocation failure during signing and verifying is reported cleanly (ASan: no leak). */
START_TEST(test_out_of_memory)
{
    sigv4_header h[] = {{"Host", "h"}, {"X-Amz-Date", "20240102T030405Z"}, {"B", "2"}};
    sigv4_request req = {.method = "GET",
                         .path = "/a/b c",
                         .query = "z=1&a=2",
                         .headers = h,
                         .n_headers = 3,
                         .flags = SIGV4_NORMALIZE_PATH};
    sigv4_credentials creds = {"AK", "SK", "TOKEN", "us-east-1", "s3"};
    char err[LV_ERRLEN];
    int ok_sign = 0, ok_presign = 0;
    for (long n = 0; n < 200 && !(ok_sign && ok_presign); n++) {
        sigv4_result res;
        sigv4_result_init(&res);
        lv_alloc_fail_after(n);
        lv_err rc1 = sigv4_sign(&req, &creds, "20240102T030405Z", &res, err);
        lv_alloc_fail_after(-1);
        ck_assert(rc1 == LV_OK || rc1 == LV_ENOMEM);
        ok_sign |= rc1 == LV_OK;
        lv_alloc_fail_after(n);
        lv_err rc2 = sigv4_presign(&req, &creds, "20240102T030405Z", 60, &res, err);
        lv_alloc_fail_after(-1);
        ck_assert(rc2 == LV_OK || rc2 == LV_ENOMEM);
        ok_presign |= rc2 == LV_OK;
        sigv4_result_free(&res);
    }
    ck_assert(ok_sign && ok_presign);
}
END_TEST

static Suite *sigv4_suite(void)
{
    Suite *s = suite_create("sigv4");
    TCase *tc = tcase_create("vectors");
    tcase_add_test(tc, test_vectors_present);
    tcase_add_loop_test(tc, test_vector, 0, g_ncases);
    suite_add_tcase(s, tc);
    tc = tcase_create("forms");
    tcase_add_test(tc, test_chunked_aws_example);
    tcase_add_test(tc, test_canonical_uri);
    tcase_add_test(tc, test_canonical_query);
    tcase_add_test(tc, test_canonical_headers);
    tcase_add_test(tc, test_dates);
    tcase_add_test(tc, test_parse_authorization);
    tcase_add_test(tc, test_parse_presigned);
    tcase_add_test(tc, test_s3_round_trip);
    tcase_add_test(tc, test_out_of_memory);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    load_cases();
    SRunner *sr = srunner_create(sigv4_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    for (int i = 0; i < g_ncases; i++)
        free(g_cases[i]);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
