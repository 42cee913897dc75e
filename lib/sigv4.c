/*
 * sigv4: AWS Signature Version 4 signing and verification (see sigv4.h for the algorithm and the
 * canonical forms). No global state; OpenSSL's one-shot SHA256() and HMAC() (not deprecated in
 * OpenSSL 3) do the cryptography.
 */
#include "sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "alloc.h"
#include "hex.h"

void sigv4_result_init(sigv4_result *r)
{
    lv_buf_init(&r->canonical_request);
    lv_buf_init(&r->string_to_sign);
    lv_buf_init(&r->signed_headers);
    lv_buf_init(&r->scope);
    lv_buf_init(&r->authorization);
    lv_buf_init(&r->query);
    r->signature[0] = '\0';
    memset(r->signing_key, 0, sizeof r->signing_key);
}

void sigv4_result_free(sigv4_result *r)
{
    lv_buf_free(&r->canonical_request);
    lv_buf_free(&r->string_to_sign);
    lv_buf_free(&r->signed_headers);
    lv_buf_free(&r->scope);
    lv_buf_free(&r->authorization);
    lv_buf_free(&r->query);
    OPENSSL_cleanse(r->signing_key, sizeof r->signing_key);
    r->signature[0] = '\0';
}

static void result_reset(sigv4_result *r)
{
    lv_buf_reset(&r->canonical_request);
    lv_buf_reset(&r->string_to_sign);
    lv_buf_reset(&r->signed_headers);
    lv_buf_reset(&r->scope);
    lv_buf_reset(&r->authorization);
    lv_buf_reset(&r->query);
    r->signature[0] = '\0';
}

/* ---- canonical URI --------------------------------------------------------------------------- */

/*
 * Appends the path with "." and ".." segments resolved and empty segments dropped, as the generic
 * SigV4 algorithm normalizes it: "//a/./b/../c//" -> "/a/c/". Keeps a trailing slash.
 */
static lv_err normalize_path(const char *path, lv_buf *out, char *err)
{
    size_t n = strlen(path), nseg = 0;
    for (size_t i = 0; i < n; i++)
        nseg += path[i] == '/';
    nseg++;
    struct seg {
        size_t off, len;
    } *segs = lv_calloc(nseg, sizeof *segs);
    if (!segs)
        return lv_fail(err, LV_ENOMEM, "normalizing path: out of memory");
    size_t top = 0;
    size_t i = 0;
    const char *lastseg = path;
    while (i <= n) {
        size_t j = i;
        while (j < n && path[j] != '/')
            j++;
        size_t len = j - i;
        lastseg = path + i;
        if (len == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (top)
                top--;
        } else if (len > 0 && !(len == 1 && path[i] == '.')) {
            segs[top].off = i;
            segs[top].len = len;
            top++;
        }
        i = j + 1;
    }
    /* "/a/", "/a/." and "/a/b/.." all name a directory: keep the trailing slash */
    int trailing =
        strcmp(lastseg, "") == 0 || strcmp(lastseg, ".") == 0 || strcmp(lastseg, "..") == 0;
    if (top == 0) {
        lv_buf_putc(out, '/');
    } else {
        for (size_t k = 0; k < top; k++) {
            lv_buf_putc(out, '/');
            lv_buf_append(out, path + segs[k].off, segs[k].len);
        }
        if (trailing)
            lv_buf_putc(out, '/');
    }
    lv_free(segs);
    return lv_buf_ok(out, err);
}

lv_err sigv4_canonical_uri(const char *path, unsigned flags, lv_buf *out, char *err)
{
    if (!path || !*path) {
        lv_buf_putc(out, '/');
        return lv_buf_ok(out, err);
    }
    if (flags & SIGV4_PATH_ENCODED) {
        lv_buf_puts(out, path);
        return lv_buf_ok(out, err);
    }
    if (!(flags & SIGV4_NORMALIZE_PATH)) {
        lv_buf_uri_encode(out, path, strlen(path), 1);
        return lv_buf_ok(out, err);
    }
    lv_buf norm;
    lv_buf_init(&norm);
    lv_err rc = normalize_path(path, &norm, err);
    if (rc == LV_OK) {
        lv_buf_uri_encode(out, norm.data, norm.len, 1);
        rc = lv_buf_ok(out, err);
    }
    lv_buf_free(&norm);
    return rc;
}

/* ---- canonical query ------------------------------------------------------------------------- */

typedef struct qparam {
    char *name;  /* encoded, lv_malloc'd */
    char *value; /* encoded, lv_malloc'd */
} qparam;

static int qparam_cmp(const void *a, const void *b)
{
    const qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Decodes then re-encodes s[0..n) into a new string; NULL on allocation failure. */
static char *reencode(const char *s, size_t n, size_t *decoded_len, char **decoded)
{
    char *dec = lv_malloc(n + 1);
    if (!dec)
        return NULL;
    size_t dn = lv_uri_decode(s, n, dec);
    lv_buf b;
    lv_buf_init(&b);
    lv_buf_uri_encode(&b, dec, dn, 0);
    if (decoded) {
        *decoded = dec;
        *decoded_len = dn;
    } else {
        lv_free(dec);
    }
    char *r = lv_buf_take(&b);
    if (!r && decoded) {
        lv_free(*decoded);
        *decoded = NULL;
    }
    return r;
}

lv_err sigv4_canonical_query(const char *query, lv_buf *out, char *err)
{
    if (!query || !*query)
        return lv_buf_ok(out, err);
    size_t n = strlen(query), cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += query[i] == '&';
    lv_err rc = LV_OK;
    size_t count = 0;
    qparam *params = lv_calloc(cap, sizeof *params);
    if (!params)
        return lv_fail(err, LV_ENOMEM, "canonical query: out of memory");
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && query[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(query + i, '=', j - i);
            size_t name_len = eq ? (size_t)(eq - (query + i)) : j - i;
            char *decoded = NULL;
            size_t decoded_len = 0;
            char *name = reencode(query + i, name_len, &decoded_len, &decoded);
            if (!name) {
                rc = lv_fail(err, LV_ENOMEM, "canonical query: out of memory");
                goto done;
            }
            /* a request never signs its own signature */
            int skip = decoded_len == 15 && memcmp(decoded, "X-Amz-Signature", 15) == 0;
            lv_free(decoded);
            if (skip) {
                lv_free(name);
            } else {
                char *value = eq ? reencode(eq + 1, (size_t)(query + j - eq - 1), NULL, NULL)
                                 : reencode("", 0, NULL, NULL);
                if (!value) {
                    lv_free(name);
                    rc = lv_fail(err, LV_ENOMEM, "canonical query: out of memory");
                    goto done;
                }
                params[count].name = name;
                params[count].value = value;
                count++;
            }
        }
        i = j + 1;
    }
    qsort(params, count, sizeof *params, qparam_cmp);
    for (size_t k = 0; k < count; k++) {
        if (k)
            lv_buf_putc(out, '&');
        lv_buf_puts(out, params[k].name);
        lv_buf_putc(out, '=');
        lv_buf_puts(out, params[k].value);
    }
    rc = lv_buf_ok(out, err);
done:
    for (size_t k = 0; k < count; k++) {
        lv_free(params[k].name);
        lv_free(params[k].value);
    }
    lv_free(params);
    return rc;
}

/* ---- canonical headers ----------------------------------------------------------------------- */

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Appends a header value trimmed, with every inner run of white space made one space. */
static void append_header_value(lv_buf *out, const char *v)
{
    while (*v && is_ws(*v))
        v++;
    while (*v) {
        if (is_ws(*v)) {
            while (*v && is_ws(*v))
                v++;
            if (*v)
                lv_buf_putc(out, ' ');
        } else {
            const char *s = v;
            while (*v && !is_ws(*v))
                v++;
            lv_buf_append(out, s, (size_t)(v - s));
        }
    }
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

lv_err sigv4_signed_headers(const sigv4_header *headers, size_t n, lv_buf *out, char *err)
{
    lv_err rc = LV_OK;
    size_t made = 0;
    char **names = lv_calloc(n ? n : 1, sizeof *names);
    if (!names)
        return lv_fail(err, LV_ENOMEM, "signed headers: out of memory");
    for (; made < n; made++) {
        size_t len = strlen(headers[made].name);
        names[made] = lv_malloc(len + 1);
        if (!names[made]) {
            rc = lv_fail(err, LV_ENOMEM, "signed headers: out of memory");
            goto done;
        }
        for (size_t k = 0; k <= len; k++)
            names[made][k] = (char)tolower((unsigned char)headers[made].name[k]);
    }
    qsort(names, n, sizeof *names, name_cmp);
    for (size_t k = 0; k < n; k++) {
        if (k && strcmp(names[k], names[k - 1]) == 0)
            continue;
        if (k)
            lv_buf_putc(out, ';');
        lv_buf_puts(out, names[k]);
    }
    rc = lv_buf_ok(out, err);
done:
    for (size_t k = 0; k < made; k++)
        lv_free(names[k]);
    lv_free(names);
    return rc;
}

lv_err sigv4_canonical_headers(const sigv4_header *headers, size_t n, const char *signed_headers,
                               lv_buf *out, char *err)
{
    const char *p = signed_headers;
    if (!p || !*p)
        return lv_fail(err, LV_EINVAL, "no signed headers");
    while (*p) {
        const char *e = strchr(p, ';');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0)
            return lv_fail(err, LV_EINVAL, "empty name in signed headers \"%s\"", signed_headers);
        int found = 0;
        for (size_t i = 0; i < n; i++) {
            if (strlen(headers[i].name) != len || strncasecmp(headers[i].name, p, len) != 0)
                continue;
            if (!found) {
                for (size_t k = 0; k < len; k++)
                    lv_buf_putc(out, (char)tolower((unsigned char)p[k]));
                lv_buf_putc(out, ':');
            } else {
                lv_buf_putc(out, ',');
            }
            append_header_value(out, headers[i].value ? headers[i].value : "");
            found = 1;
        }
        if (!found)
            return lv_fail(err, LV_EINVAL, "signed header \"%.*s\" is not in the request",
                           (int)(len > 100 ? 100 : len), p);
        lv_buf_putc(out, '\n');
        p += len;
        if (*p == ';')
            p++;
    }
    return lv_buf_ok(out, err);
}

lv_err sigv4_canonical_request(const sigv4_request *req, const char *signed_headers, lv_buf *out,
                               char *err)
{
    lv_err rc;
    lv_buf_puts(out, req->method);
    lv_buf_putc(out, '\n');
    if ((rc = sigv4_canonical_uri(req->path, req->flags, out, err)) != LV_OK)
        return rc;
    lv_buf_putc(out, '\n');
    if ((rc = sigv4_canonical_query(req->query, out, err)) != LV_OK)
        return rc;
    lv_buf_putc(out, '\n');
    if ((rc = sigv4_canonical_headers(req->headers, req->n_headers, signed_headers, out, err)))
        return rc;
    lv_buf_putc(out, '\n');
    lv_buf_puts(out, signed_headers);
    lv_buf_putc(out, '\n');
    lv_buf_puts(out, req->payload_hash ? req->payload_hash : SIGV4_EMPTY_SHA256);
    return lv_buf_ok(out, err);
}

/* ---- string to sign, key, signature ---------------------------------------------------------- */

static int valid_date(const char *d)
{
    if (!d || strlen(d) != SIGV4_DATE_LEN || d[8] != 'T' || d[15] != 'Z')
        return 0;
    for (int i = 0; i < 15; i++)
        if (i != 8 && !isdigit((unsigned char)d[i]))
            return 0;
    return 1;
}

lv_err sigv4_scope(const char *amz_date, const char *region, const char *service, lv_buf *out,
                   char *err)
{
    if (!amz_date || strlen(amz_date) < 8)
        return lv_fail(err, LV_EINVAL, "scope: bad date \"%s\"", amz_date ? amz_date : "");
    lv_buf_printf(out, "%.8s/%s/%s/aws4_request", amz_date, region, service);
    return lv_buf_ok(out, err);
}

lv_err sigv4_sha256_hex(const void *data, size_t n, char out[SIGV4_HEX_LEN + 1], char *err)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    if (!SHA256(data, n, md))
        return lv_fail(err, LV_EIO, "SHA-256 failed");
    lv_hex_encode(md, sizeof md, out);
    return LV_OK;
}

lv_err sigv4_string_to_sign(const char *amz_date, const char *scope, const char *canonical_request,
                            size_t canonical_len, lv_buf *out, char *err)
{
    char hash[SIGV4_HEX_LEN + 1];
    lv_err rc = sigv4_sha256_hex(canonical_request, canonical_len, hash, err);
    if (rc)
        return rc;
    lv_buf_printf(out, SIGV4_ALGORITHM "\n%s\n%s\n%s", amz_date, scope, hash);
    return lv_buf_ok(out, err);
}

static lv_err hmac(const void *key, size_t key_len, const void *msg, size_t len,
                   uint8_t out[SIGV4_KEY_LEN], char *err)
{
    unsigned int md_len = 0;
    if (!HMAC(EVP_sha256(), key, (int)key_len, msg, len, out, &md_len) || md_len != SIGV4_KEY_LEN)
        return lv_fail(err, LV_EIO, "HMAC-SHA256 failed");
    return LV_OK;
}

lv_err sigv4_signing_key(const char *secret_key, const char *date, const char *region,
                         const char *service, uint8_t key[SIGV4_KEY_LEN], char *err)
{
    lv_err rc = LV_OK;
    if (!date || strlen(date) < 8)
        return lv_fail(err, LV_EINVAL, "signing key: bad date");
    size_t slen = strlen(secret_key);
    char *k0 = lv_malloc(slen + 5);
    if (!k0)
        return lv_fail(err, LV_ENOMEM, "signing key: out of memory");
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret_key, slen + 1);
    uint8_t a[SIGV4_KEY_LEN], b[SIGV4_KEY_LEN];
    if ((rc = hmac(k0, slen + 4, date, 8, a, err)) ||
        (rc = hmac(a, sizeof a, region, strlen(region), b, err)) ||
        (rc = hmac(b, sizeof b, service, strlen(service), a, err)) ||
        (rc = hmac(a, sizeof a, "aws4_request", 12, key, err)))
        goto done;
done:
    OPENSSL_cleanse(k0, slen + 4);
    OPENSSL_cleanse(a, sizeof a);
    OPENSSL_cleanse(b, sizeof b);
    lv_free(k0);
    return rc;
}

lv_err sigv4_hmac_hex(const uint8_t key[SIGV4_KEY_LEN], const char *msg, size_t len,
                      char out[SIGV4_HEX_LEN + 1], char *err)
{
    uint8_t md[SIGV4_KEY_LEN];
    lv_err rc = hmac(key, SIGV4_KEY_LEN, msg, len, md, err);
    if (rc == LV_OK)
        lv_hex_encode(md, sizeof md, out);
    return rc;
}

lv_err sigv4_chunk_signature(const uint8_t key[SIGV4_KEY_LEN], const char *amz_date,
                             const char *scope, const char *previous_signature,
                             const char *chunk_sha256, char out[SIGV4_HEX_LEN + 1], char *err)
{
    char sts[512];
    int n =
        snprintf(sts, sizeof sts, SIGV4_CHUNK_ALGORITHM "\n%s\n%s\n%s\n" SIGV4_EMPTY_SHA256 "\n%s",
                 amz_date, scope, previous_signature, chunk_sha256);
    if (n < 0 || (size_t)n >= sizeof sts)
        return lv_fail(err, LV_EINVAL, "chunk signature: scope or signature too long");
    return sigv4_hmac_hex(key, sts, (size_t)n, out, err);
}

/* ---- dates ----------------------------------------------------------------------------------- */

lv_err sigv4_format_date(int64_t unix_seconds, char out[SIGV4_DATE_LEN + 1], char *err)
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return lv_fail(err, LV_EINVAL, "date out of range: %lld", (long long)unix_seconds);
    if (strftime(out, SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != SIGV4_DATE_LEN)
        return lv_fail(err, LV_EINVAL, "date out of range: %lld", (long long)unix_seconds);
    return LV_OK;
}

lv_err sigv4_parse_date(const char *amz_date, int64_t *unix_seconds, char *err)
{
    if (!valid_date(amz_date))
        return lv_fail(err, LV_EINVAL, "bad amz-date \"%.40s\" (want YYYYMMDDTHHMMSSZ)",
                       amz_date ? amz_date : "");
    int v[6];
    static const int off[6] = {0, 4, 6, 9, 11, 13}, len[6] = {4, 2, 2, 2, 2, 2};
    for (int i = 0; i < 6; i++) {
        v[i] = 0;
        for (int k = 0; k < len[i]; k++)
            v[i] = v[i] * 10 + (amz_date[off[i] + k] - '0');
    }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
        return lv_fail(err, LV_EINVAL, "bad amz-date \"%s\"", amz_date);
    struct tm tm = {0};
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    *unix_seconds = (int64_t)timegm(&tm);
    return LV_OK;
}

/* ---- signing --------------------------------------------------------------------------------- */

/*
 * The stages shared by signing and verifying: from req and a signed-headers list, fill r's
 * canonical request, scope, string to sign, signing key and signature.
 */
static lv_err compute(const sigv4_request *req, const char *signed_headers, const char *secret_key,
                      const char *region, const char *service, const char *amz_date,
                      sigv4_result *r, char *err)
{
    lv_err rc;
    if (!valid_date(amz_date))
        return lv_fail(err, LV_EINVAL, "bad amz-date \"%.40s\"", amz_date ? amz_date : "");
    if (r->signed_headers.data != signed_headers) {
        lv_buf_reset(&r->signed_headers);
        lv_buf_puts(&r->signed_headers, signed_headers);
    }
    if ((rc = sigv4_canonical_request(req, signed_headers, &r->canonical_request, err)) ||
        (rc = sigv4_scope(amz_date, region, service, &r->scope, err)) ||
        (rc = sigv4_string_to_sign(amz_date, r->scope.data, r->canonical_request.data,
                                   r->canonical_request.len, &r->string_to_sign, err)) ||
        (rc = sigv4_signing_key(secret_key, amz_date, region, service, r->signing_key, err)) ||
        (rc = sigv4_hmac_hex(r->signing_key, r->string_to_sign.data, r->string_to_sign.len,
                             r->signature, err)))
        return rc;
    return lv_buf_ok(&r->signed_headers, err);
}

lv_err sigv4_sign(const sigv4_request *req, const sigv4_credentials *creds, const char *amz_date,
                  sigv4_result *out, char *err)
{
    lv_err rc;
    result_reset(out);
    if ((rc = sigv4_signed_headers(req->headers, req->n_headers, &out->signed_headers, err)))
        return rc;
    if ((rc = compute(req, out->signed_headers.data, creds->secret_key, creds->region,
                      creds->service, amz_date, out, err)))
        return rc;
    lv_buf_printf(&out->authorization,
                  SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=%s, "
                                  "Signature=%s",
                  creds->access_key, out->scope.data, out->signed_headers.data, out->signature);
    return lv_buf_ok(&out->authorization, err);
}

lv_err sigv4_presign(const sigv4_request *req, const sigv4_credentials *creds, const char *amz_date,
                     long expires, sigv4_result *out, char *err)
{
    lv_err rc;
    result_reset(out);
    if (expires < 1 || expires > 604800)
        return lv_fail(err, LV_EINVAL, "presign: expiry %ld s is not within 1 s .. 7 days",
                       expires);
    if ((rc = sigv4_signed_headers(req->headers, req->n_headers, &out->signed_headers, err)) ||
        (rc = sigv4_scope(amz_date, creds->region, creds->service, &out->scope, err)))
        return rc;
    /* the query with the X-Amz-* parameters, in the order the AWS SDKs write them */
    lv_buf *q = &out->query;
    if (req->query && *req->query) {
        lv_buf_puts(q, req->query);
        lv_buf_putc(q, '&');
    }
    lv_buf_puts(q, "X-Amz-Algorithm=" SIGV4_ALGORITHM "&X-Amz-Credential=");
    lv_buf_uri_encode(q, creds->access_key, strlen(creds->access_key), 0);
    lv_buf_puts(q, "%2F");
    lv_buf_uri_encode(q, out->scope.data, out->scope.len, 0);
    lv_buf_printf(q, "&X-Amz-Date=%s&X-Amz-SignedHeaders=", amz_date);
    lv_buf_uri_encode(q, out->signed_headers.data, out->signed_headers.len, 0);
    lv_buf_printf(q, "&X-Amz-Expires=%ld", expires);
    if (creds->session_token) {
        lv_buf_puts(q, "&X-Amz-Security-Token=");
        lv_buf_uri_encode(q, creds->session_token, strlen(creds->session_token), 0);
    }
    if ((rc = lv_buf_ok(q, err)))
        return rc;
    sigv4_request signed_req = *req;
    signed_req.query = q->data;
    lv_buf_reset(&out->scope); /* compute() rebuilds it */
    if ((rc = compute(&signed_req, out->signed_headers.data, creds->secret_key, creds->region,
                      creds->service, amz_date, out, err)))
        return rc;
    lv_buf_printf(q, "&X-Amz-Signature=%s", out->signature);
    return lv_buf_ok(q, err);
}

/* ---- verifying ------------------------------------------------------------------------------- */

/* Copies src[0..n) into dst (size cap) or fails when it does not fit or is empty. */
static int copy_field(char *dst, size_t cap, const char *src, size_t n)
{
    if (n == 0 || n >= cap)
        return 0;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 1;
}

/* Splits "AK/20150830/us-east-1/s3/aws4_request" into out. Returns 0 when malformed. */
static int parse_credential(const char *s, size_t n, sigv4_auth *out)
{
    /* the access key may itself not hold '/', but split from the right to be safe */
    const char *end = s + n, *parts[5];
    size_t lens[5];
    const char *p = end;
    for (int k = 4; k >= 1; k--) {
        const char *q = p;
        while (q > s && q[-1] != '/')
            q--;
        if (q == s)
            return 0;
        parts[k] = q;
        lens[k] = (size_t)(p - q);
        p = q - 1;
    }
    parts[0] = s;
    lens[0] = (size_t)(p - s);
    if (lens[4] != 12 || memcmp(parts[4], "aws4_request", 12) != 0 || lens[1] != 8)
        return 0;
    for (int i = 0; i < 8; i++)
        if (!isdigit((unsigned char)parts[1][i]))
            return 0;
    return copy_field(out->access_key, sizeof out->access_key, parts[0], lens[0]) &&
           copy_field(out->date, sizeof out->date, parts[1], lens[1]) &&
           copy_field(out->region, sizeof out->region, parts[2], lens[2]) &&
           copy_field(out->service, sizeof out->service, parts[3], lens[3]);
}

static int valid_signature(const char *s, size_t n)
{
    if (n != SIGV4_HEX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

static void auth_clear(sigv4_auth *out)
{
    memset(out, 0, sizeof *out);
    out->expires = -1;
}

lv_err sigv4_parse_authorization(const char *value, sigv4_auth *out, char *err)
{
    auth_clear(out);
    const char *p = value;
    while (*p == ' ')
        p++;
    size_t alen = strlen(SIGV4_ALGORITHM);
    if (strncmp(p, SIGV4_ALGORITHM, alen) != 0 || (p[alen] != ' ' && p[alen] != '\t'))
        return lv_fail(err, LV_EUNSUPPORTED, "Authorization is not " SIGV4_ALGORITHM);
    p += alen;
    int have_cred = 0, have_sh = 0, have_sig = 0;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *eq = strchr(p, '=');
        if (!eq)
            return lv_fail(err, LV_EINVAL, "malformed Authorization near \"%.30s\"", p);
        const char *v = eq + 1, *e = v;
        while (*e && *e != ',' && *e != ' ')
            e++;
        size_t klen = (size_t)(eq - p), vlen = (size_t)(e - v);
        if (klen == 10 && memcmp(p, "Credential", 10) == 0) {
            if (!parse_credential(v, vlen, out))
                return lv_fail(err, LV_EINVAL, "malformed Credential \"%.*s\"",
                               (int)(vlen > 120 ? 120 : vlen), v);
            have_cred = 1;
        } else if (klen == 13 && memcmp(p, "SignedHeaders", 13) == 0) {
            if (!copy_field(out->signed_headers, sizeof out->signed_headers, v, vlen))
                return lv_fail(err, LV_EINVAL, "SignedHeaders empty or too long");
            have_sh = 1;
        } else if (klen == 9 && memcmp(p, "Signature", 9) == 0) {
            if (!valid_signature(v, vlen))
                return lv_fail(err, LV_EINVAL, "Signature is not 64 hex digits");
            copy_field(out->signature, sizeof out->signature, v, vlen);
            have_sig = 1;
        }
        p = e;
    }
    if (!have_cred || !have_sh || !have_sig)
        return lv_fail(err, LV_EINVAL, "Authorization lacks %s",
                       !have_cred ? "Credential"
                       : !have_sh ? "SignedHeaders"
                                  : "Signature");
    return LV_OK;
}

/* Finds parameter name in a raw query; decodes its value into dst (cap bytes). 0: absent. */
static int query_param(const char *query, const char *name, char *dst, size_t cap, int *too_long)
{
    size_t nlen = strlen(name);
    const char *p = query;
    *too_long = 0;
    while (p && *p) {
        const char *e = strchr(p, '&');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > nlen && p[nlen] == '=' && memcmp(p, name, nlen) == 0) {
            size_t vlen = len - nlen - 1;
            if (vlen >= cap) {
                *too_long = 1;
                return 1;
            }
            lv_uri_decode(p + nlen + 1, vlen, dst);
            return 1;
        }
        p = e ? e + 1 : NULL;
    }
    return 0;
}

lv_err sigv4_parse_presigned(const char *query, sigv4_auth *out, char *err)
{
    auth_clear(out);
    out->presigned = 1;
    char v[2048];
    int too_long;
    if (!query_param(query, "X-Amz-Algorithm", v, sizeof v, &too_long))
        return lv_fail(err, LV_ENOTFOUND, "no X-Amz-Algorithm: not a presigned request");
    if (too_long || strcmp(v, SIGV4_ALGORITHM) != 0)
        return lv_fail(err, LV_EUNSUPPORTED, "X-Amz-Algorithm is not " SIGV4_ALGORITHM);
    if (!query_param(query, "X-Amz-Credential", v, sizeof v, &too_long) || too_long ||
        !parse_credential(v, strlen(v), out))
        return lv_fail(err, LV_EINVAL, "X-Amz-Credential missing or malformed");
    if (!query_param(query, "X-Amz-Date", v, sizeof v, &too_long) || too_long || !valid_date(v))
        return lv_fail(err, LV_EINVAL, "X-Amz-Date missing or malformed");
    memcpy(out->amz_date, v, SIGV4_DATE_LEN + 1);
    if (!query_param(query, "X-Amz-SignedHeaders", out->signed_headers, sizeof out->signed_headers,
                     &too_long) ||
        too_long || !out->signed_headers[0])
        return lv_fail(err, LV_EINVAL, "X-Amz-SignedHeaders missing or malformed");
    if (!query_param(query, "X-Amz-Signature", v, sizeof v, &too_long) || too_long ||
        !valid_signature(v, strlen(v)))
        return lv_fail(err, LV_EINVAL, "X-Amz-Signature missing or malformed");
    memcpy(out->signature, v, SIGV4_HEX_LEN + 1);
    if (!query_param(query, "X-Amz-Expires", v, sizeof v, &too_long) || too_long)
        return lv_fail(err, LV_EINVAL, "X-Amz-Expires missing");
    char *end;
    long ex = strtol(v, &end, 10);
    if (!v[0] || *end || ex < 0)
        return lv_fail(err, LV_EINVAL, "X-Amz-Expires \"%.20s\" is not a number of seconds", v);
    out->expires = ex;
    return LV_OK;
}

lv_err sigv4_verify(const sigv4_request *req, sigv4_auth *auth, const char *secret_key,
                    sigv4_result *out, char *err)
{
    lv_err rc;
    result_reset(out);
    if (!auth->presigned) {
        const char *d = NULL;
        for (size_t i = 0; i < req->n_headers; i++)
            if (strcasecmp(req->headers[i].name, "x-amz-date") == 0)
                d = req->headers[i].value;
        if (!d)
            return lv_fail(err, LV_EINVAL, "no X-Amz-Date header");
        while (*d == ' ')
            d++;
        if (!valid_date(d))
            return lv_fail(err, LV_EINVAL, "X-Amz-Date \"%.40s\" is malformed", d);
        memcpy(auth->amz_date, d, SIGV4_DATE_LEN);
        auth->amz_date[SIGV4_DATE_LEN] = '\0';
    }
    if (memcmp(auth->date, auth->amz_date, 8) != 0)
        return lv_fail(err, LV_EINVAL, "credential date %s is not the day of %s", auth->date,
                       auth->amz_date);
    if ((rc = compute(req, auth->signed_headers, secret_key, auth->region, auth->service,
                      auth->amz_date, out, err)))
        return rc;
    char want[SIGV4_HEX_LEN + 1];
    for (int i = 0; i <= SIGV4_HEX_LEN; i++)
        want[i] = (char)tolower((unsigned char)auth->signature[i]);
    if (CRYPTO_memcmp(want, out->signature, SIGV4_HEX_LEN) != 0)
        return lv_fail(err, LV_ECHECKSUM, "signature does not match");
    return LV_OK;
}
