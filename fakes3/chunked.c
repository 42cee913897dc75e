/* chunked: the aws-chunked decoder and chunk-signature check (see chunked.h). */
#include "chunked.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "alloc.h"
#include "error.h"
#include "hex.h"

#define MAX_LINE     4096
#define MAX_TRAILERS 16

typedef enum state {
    ST_HEADER,   /* reading "<hex size>[;chunk-signature=...]\r\n" */
    ST_DATA,     /* reading the chunk's bytes */
    ST_DATA_END, /* reading the "\r\n" after them */
    ST_TRAILER,  /* after the final chunk: trailer lines, or the empty line that ends the body */
    ST_DONE,
    ST_FAILED
} state;

struct fs3_chunked {
    fs3_chunked_params p;
    uint8_t key[SIGV4_KEY_LEN];
    char amz_date[SIGV4_DATE_LEN + 1];
    char scope[128];
    char prev_sig[SIGV4_HEX_LEN + 1];
    state st;
    char line[MAX_LINE];
    size_t line_len;
    uint64_t remaining; /* of the current chunk's data */
    uint64_t decoded;
    int final_chunk; /* the chunk being read is the empty final one */
    char chunk_sig[SIGV4_HEX_LEN + 1];
    EVP_MD_CTX *sha;
    fs3_kv trailers[MAX_TRAILERS];
    size_t n_trailers;
};

fs3_chunked *fs3_chunked_new(const fs3_chunked_params *p)
{
    fs3_chunked *d = lv_calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->p = *p;
    if (p->signed_chunks) {
        if (!p->signing_key || !p->amz_date || !p->scope || !p->seed_signature ||
            strlen(p->scope) >= sizeof d->scope || strlen(p->seed_signature) != SIGV4_HEX_LEN) {
            lv_free(d);
            return NULL;
        }
        memcpy(d->key, p->signing_key, SIGV4_KEY_LEN);
        snprintf(d->amz_date, sizeof d->amz_date, "%s", p->amz_date);
        snprintf(d->scope, sizeof d->scope, "%s", p->scope);
        memcpy(d->prev_sig, p->seed_signature, SIGV4_HEX_LEN + 1);
        d->sha = EVP_MD_CTX_new();
        if (!d->sha) {
            lv_free(d);
            return NULL;
        }
    }
    d->p.signing_key = NULL; /* copied; the caller's pointers need not outlive this call */
    d->p.amz_date = d->p.scope = d->p.seed_signature = NULL;
    d->st = ST_HEADER;
    return d;
}

void fs3_chunked_free(fs3_chunked *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_trailers; i++) {
        lv_free(d->trailers[i].name);
        lv_free(d->trailers[i].value);
    }
    if (d->sha)
        EVP_MD_CTX_free(d->sha);
    OPENSSL_cleanse(d->key, sizeof d->key);
    lv_free(d);
}

static fs3_code fail(fs3_chunked *d, fs3_code code, char *err, const char *why)
{
    d->st = ST_FAILED;
    lv_fail(err, LV_ECORRUPT, "aws-chunked body: %s", why);
    return code;
}

/* Parses a chunk header line: size and (if present) signature. */
static fs3_code parse_header(fs3_chunked *d, char *err)
{
    const char *s = d->line;
    uint64_t size = 0;
    size_t digits = 0;
    while (isxdigit((unsigned char)*s)) {
        if (++digits > 15)
            return fail(d, FS3_INVALID_REQUEST, err, "chunk size too large");
        int v = isdigit((unsigned char)*s) ? *s - '0' : (tolower((unsigned char)*s) - 'a' + 10);
        size = size * 16 + (uint64_t)v;
        s++;
    }
    if (!digits)
        return fail(d, FS3_INVALID_REQUEST, err, "chunk header without a size");
    d->chunk_sig[0] = '\0';
    while (*s == ';') {
        s++;
        const char *eq = strchr(s, '=');
        const char *end = strchr(s, ';');
        if (!end)
            end = s + strlen(s);
        if (eq && eq < end && (size_t)(eq - s) == 15 && memcmp(s, "chunk-signature", 15) == 0) {
            size_t n = (size_t)(end - eq - 1);
            if (n != SIGV4_HEX_LEN)
                return fail(d, FS3_SIGNATURE_DOES_NOT_MATCH, err, "malformed chunk-signature");
            memcpy(d->chunk_sig, eq + 1, n);
            d->chunk_sig[n] = '\0';
            for (size_t i = 0; i < n; i++)
                d->chunk_sig[i] = (char)tolower((unsigned char)d->chunk_sig[i]);
        }
        s = end;
    }
    if (*s)
        return fail(d, FS3_INVALID_REQUEST, err, "malformed chunk header");
    if (d->p.signed_chunks && !d->chunk_sig[0])
        return fail(d, FS3_SIGNATURE_DOES_NOT_MATCH, err, "a chunk without chunk-signature");
    d->remaining = size;
    d->final_chunk = size == 0;
    if (d->sha && !EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL))
        return fail(d, FS3_INTERNAL_ERROR, err, "SHA-256 failed");
    return FS3_OK;
}

/* Checks the signature of the chunk just read. */
static fs3_code verify_chunk(fs3_chunked *d, char *err)
{
    if (!d->p.signed_chunks)
        return FS3_OK;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hash[SIGV4_HEX_LEN + 1], want[SIGV4_HEX_LEN + 1];
    if (!EVP_DigestFinal_ex(d->sha, md, &mdlen))
        return fail(d, FS3_INTERNAL_ERROR, err, "SHA-256 failed");
    lv_hex_encode(md, mdlen, hash);
    if (sigv4_chunk_signature(d->key, d->amz_date, d->scope, d->prev_sig, hash, want, NULL) !=
        LV_OK)
        return fail(d, FS3_INTERNAL_ERROR, err, "chunk signature computation failed");
    if (CRYPTO_memcmp(want, d->chunk_sig, SIGV4_HEX_LEN) != 0) {
        char why[160];
        snprintf(why, sizeof why, "chunk signature mismatch after %llu bytes",
                 (unsigned long long)d->decoded);
        return fail(d, FS3_SIGNATURE_DOES_NOT_MATCH, err, why);
    }
    memcpy(d->prev_sig, d->chunk_sig, SIGV4_HEX_LEN + 1);
    return FS3_OK;
}

/* Keeps a trailer line "name:value". */
static fs3_code add_trailer(fs3_chunked *d, char *err)
{
    char *colon = strchr(d->line, ':');
    if (!colon || colon == d->line)
        return fail(d, FS3_INVALID_REQUEST, err, "malformed trailer line");
    if (d->n_trailers == MAX_TRAILERS)
        return fail(d, FS3_INVALID_REQUEST, err, "too many trailer lines");
    *colon = '\0';
    const char *v = colon + 1;
    while (*v == ' ')
        v++;
    size_t nl = strlen(d->line), vl = strlen(v);
    fs3_kv *kv = &d->trailers[d->n_trailers];
    kv->name = lv_malloc(nl + 1);
    kv->value = lv_malloc(vl + 1);
    if (!kv->name || !kv->value) {
        lv_free(kv->name);
        lv_free(kv->value);
        return fail(d, FS3_INTERNAL_ERROR, err, "out of memory");
    }
    for (size_t i = 0; i <= nl; i++)
        kv->name[i] = (char)tolower((unsigned char)d->line[i]);
    memcpy(kv->value, v, vl + 1);
    while (vl && (kv->value[vl - 1] == ' ' || kv->value[vl - 1] == '\t'))
        kv->value[--vl] = '\0';
    d->n_trailers++;
    return FS3_OK;
}

/* Appends bytes to the current line; 1 when a whole line ("...\r\n") is in d->line. */
static int take_line(fs3_chunked *d, const char **p, const char *end, fs3_code *rc, char *err)
{
    while (*p < end) {
        char c = *(*p)++;
        if (c == '\n') {
            if (d->line_len == 0 || d->line[d->line_len - 1] != '\r') {
                *rc = fail(d, FS3_INVALID_REQUEST, err, "line not ended by CRLF");
                return 0;
            }
            d->line[--d->line_len] = '\0';
            return 1;
        }
        if (d->line_len == MAX_LINE - 1) {
            *rc = fail(d, FS3_INVALID_REQUEST, err, "line too long");
            return 0;
        }
        d->line[d->line_len++] = c;
    }
    return 0;
}

fs3_code fs3_chunked_feed(fs3_chunked *d, const char *data, size_t n, fs3_chunk_sink sink,
                          void *ctx, char *err)
{
    const char *p = data, *end = data + n;
    fs3_code rc = FS3_OK;
    while (p < end) {
        switch (d->st) {
        case ST_HEADER:
            if (!take_line(d, &p, end, &rc, err))
                return rc;
            d->line_len = 0;
            if ((rc = parse_header(d, err)) != FS3_OK)
                return rc;
            if (d->final_chunk) {
                if ((rc = verify_chunk(d, err)) != FS3_OK)
                    return rc;
                d->st = ST_TRAILER;
            } else {
                d->st = ST_DATA;
            }
            break;
        case ST_DATA: {
            size_t take = (size_t)(end - p) < d->remaining ? (size_t)(end - p) : d->remaining;
            if (d->sha)
                EVP_DigestUpdate(d->sha, p, take);
            if ((rc = sink(ctx, p, take)) != FS3_OK) {
                d->st = ST_FAILED;
                return rc;
            }
            d->decoded += take;
            d->remaining -= take;
            p += take;
            if (d->remaining == 0)
                d->st = ST_DATA_END;
            break;
        }
        case ST_DATA_END:
            if (!take_line(d, &p, end, &rc, err))
                return rc;
            if (d->line_len != 0)
                return fail(d, FS3_INVALID_REQUEST, err, "chunk data longer than its size");
            d->line_len = 0;
            if ((rc = verify_chunk(d, err)) != FS3_OK)
                return rc;
            d->st = ST_HEADER;
            break;
        case ST_TRAILER:
            if (!take_line(d, &p, end, &rc, err))
                return rc;
            if (d->line_len == 0) {
                d->st = ST_DONE;
            } else {
                if (!d->p.trailer)
                    return fail(d, FS3_INVALID_REQUEST, err, "trailer lines without x-amz-trailer");
                if ((rc = add_trailer(d, err)) != FS3_OK)
                    return rc;
                d->line_len = 0;
            }
            break;
        case ST_DONE:
            return fail(d, FS3_INVALID_REQUEST, err, "data after the final chunk");
        case ST_FAILED:
            return fail(d, FS3_INVALID_REQUEST, err, "decoding already failed");
        }
    }
    return FS3_OK;
}

fs3_code fs3_chunked_finish(const fs3_chunked *d, char *err)
{
    if (d->st != ST_DONE) {
        lv_fail(err, LV_ECORRUPT, "aws-chunked body ended before its final chunk");
        return FS3_INCOMPLETE_BODY;
    }
    return FS3_OK;
}

uint64_t fs3_chunked_decoded(const fs3_chunked *d)
{
    return d->decoded;
}

const fs3_kv *fs3_chunked_trailers(const fs3_chunked *d, size_t *n)
{
    *n = d->n_trailers;
    return d->trailers;
}
