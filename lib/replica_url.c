/*
 * replica_url: parses replica URLs (see replica.h and docs/replica.md) into a replica_url, and
 * turns one into S3 settings.
 *
 *   s3://BUCKET[/PREFIX][?NAME=VALUE&...]
 *       PREFIX is percent-decoded and cleaned as Go's path.Clean would (then the leading '/'
 *       dropped, as Litestream does): empty segments and "." go, ".." removes the segment before
 *       it. The bucket's root is the empty prefix.
 *       NAME: endpoint (implies path style), region, force-path-style | forcePathStyle,
 *       skip-verify | skipVerify, sign-payload | signPayload, part-size | partSize (bytes).
 *       Boolean values as Go's strconv.ParseBool (1 t T TRUE true True, 0 f F FALSE false
 *       False); a name without a value means true. Any other name is an error that names it: a
 *       typo must not be silently ignored.
 *   file:///DIR (or file://localhost/DIR, or file:/DIR), percent-decoded; no query.
 *   DIR (a plain path, absolute or relative), taken as it is.
 *
 * Precedence of S3 settings: defaults < environment < replica_options.s3 (which, when given,
 * replaces the environment) < the URL's query.
 *
 * Threads: no shared state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "replica_private.h"

static char *dup_n(const char *s, size_t n)
{
    char *p = lv_malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* Percent-decodes s[0..n) (and '+' as a space when plus_space) into a new string. */
static char *decode_n(const char *s, size_t n, int plus_space)
{
    char *p = lv_malloc(n + 1);
    if (!p)
        return NULL;
    if (!plus_space) {
        lv_uri_decode(s, n, p);
        return p;
    }
    /* a query uses '+' for a space (Go's ParseQuery); lv_uri_decode keeps '+' as it is */
    char *tmp = lv_malloc(n + 1);
    if (!tmp) {
        lv_free(p);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        tmp[i] = s[i] == '+' ? ' ' : s[i];
    lv_uri_decode(tmp, n, p);
    lv_free(tmp);
    return p;
}

void replica_url_free(replica_url *u)
{
    lv_free(u->bucket);
    lv_free(u->prefix);
    lv_free(u->dir);
    lv_free(u->endpoint);
    lv_free(u->region);
    memset(u, 0, sizeof *u);
}

/*
 * path.Clean, then without a leading or trailing '/': "a//b/./c/../d/" -> "a/b/d". Returns a
 * new string (possibly ""), NULL when out of memory.
 */
static char *clean_prefix(const char *p)
{
    size_t n = strlen(p);
    char *out = lv_malloc(n + 1);
    if (!out)
        return NULL;
    size_t len = 0;
    const char *s = p, *end = p + n;
    while (s < end) {
        const char *e = memchr(s, '/', (size_t)(end - s));
        if (!e)
            e = end;
        size_t seg = (size_t)(e - s);
        if (seg == 0 || (seg == 1 && s[0] == '.')) {
            /* empty or ".": nothing */
        } else if (seg == 2 && s[0] == '.' && s[1] == '.') {
            /* "..": drop the last segment (at the root, nothing: path.Clean("/..") is "/") */
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--; /* its '/' */
        } else {
            if (len > 0)
                out[len++] = '/';
            memcpy(out + len, s, seg);
            len += seg;
        }
        s = e + 1;
    }
    out[len] = 0;
    return out;
}

/* strconv.ParseBool, plus "" meaning true. 1 and *v, or 0 for a value that is not a bool. */
static int parse_bool(const char *s, int *v)
{
    static const char *const yes[] = {"", "1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (strcmp(s, yes[i]) == 0)
            return *v = 1, 1;
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (strcmp(s, no[i]) == 0)
            return *v = 0, 1;
    return 0;
}

static int valid_bucket(const char *b, char *bad)
{
    for (const char *p = b; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_')) {
            *bad = c;
            return 0;
        }
    }
    return 1;
}

#define KNOWN_PARAMS "endpoint, region, force-path-style, skip-verify, sign-payload, part-size"

/* One query parameter. 0, or 1 when name is unknown; LV_EINVAL for a bad value. */
static lv_err apply_param(replica_url *u, const char *name, const char *value, int *unknown,
                          char *err)
{
    int b;
    *unknown = 0;
    if (strcmp(name, "endpoint") == 0) {
        size_t skip = strncmp(value, "http://", 7) == 0    ? 7
                      : strncmp(value, "https://", 8) == 0 ? 8
                                                           : 0;
        if (skip == 0 || value[skip] == 0 || value[skip] == '/')
            return lv_fail(err, LV_EINVAL,
                           "endpoint \"%s\": want http://HOST[:PORT] or https://HOST[:PORT]",
                           value);
        char *e = dup_n(value, strlen(value));
        if (!e)
            return lv_fail(err, LV_ENOMEM, "out of memory");
        lv_free(u->endpoint);
        u->endpoint = e;
    } else if (strcmp(name, "region") == 0) {
        if (!*value)
            return lv_fail(err, LV_EINVAL, "region: empty value");
        char *e = dup_n(value, strlen(value));
        if (!e)
            return lv_fail(err, LV_ENOMEM, "out of memory");
        lv_free(u->region);
        u->region = e;
    } else if (strcmp(name, "force-path-style") == 0 || strcmp(name, "forcePathStyle") == 0) {
        if (!parse_bool(value, &b))
            return lv_fail(err, LV_EINVAL, "%s=\"%s\": want true or false", name, value);
        u->has_path_style = 1;
        u->path_style = b;
    } else if (strcmp(name, "skip-verify") == 0 || strcmp(name, "skipVerify") == 0) {
        if (!parse_bool(value, &b))
            return lv_fail(err, LV_EINVAL, "%s=\"%s\": want true or false", name, value);
        u->has_skip_verify = 1;
        u->skip_verify = b;
    } else if (strcmp(name, "sign-payload") == 0 || strcmp(name, "signPayload") == 0) {
        if (!parse_bool(value, &b))
            return lv_fail(err, LV_EINVAL, "%s=\"%s\": want true or false", name, value);
        u->has_sign_payload = 1;
        u->sign_payload = b;
    } else if (strcmp(name, "part-size") == 0 || strcmp(name, "partSize") == 0) {
        char *end = NULL;
        unsigned long long v = *value ? strtoull(value, &end, 10) : 0;
        if (!*value || *end || value[0] == '-' || v < (5ull << 20))
            return lv_fail(err, LV_EINVAL, "%s=\"%s\": want a number of bytes, at least 5242880",
                           name, value);
        u->has_part_size = 1;
        u->part_size = v;
    } else {
        *unknown = 1;
    }
    return LV_OK;
}

static lv_err parse_query(replica_url *u, const char *q, char *err)
{
    lv_err rc = LV_OK;
    lv_buf unknown;
    lv_buf_init(&unknown);
    const char *s = q;
    while (*s) {
        size_t n = strcspn(s, "&");
        if (n > 0) {
            const char *eq = memchr(s, '=', n);
            size_t nl = eq ? (size_t)(eq - s) : n;
            char *name = decode_n(s, nl, 1);
            char *value = eq ? decode_n(eq + 1, n - nl - 1, 1) : dup_n("", 0);
            if (!name || !value) {
                lv_free(name);
                lv_free(value);
                rc = lv_fail(err, LV_ENOMEM, "out of memory");
                goto done;
            }
            int unk = 0;
            rc = apply_param(u, name, value, &unk, err);
            if (unk) {
                if (unknown.len)
                    lv_buf_puts(&unknown, ", ");
                lv_buf_puts(&unknown, name);
            }
            lv_free(name);
            lv_free(value);
            if (rc)
                goto done;
        }
        s += n;
        if (*s == '&')
            s++;
    }
    if (unknown.len) {
        if ((rc = lv_buf_ok(&unknown, err)) != LV_OK)
            goto done;
        rc = lv_fail(err, LV_EINVAL, "unknown query parameter%s %s (known: " KNOWN_PARAMS ")",
                     strchr(unknown.data, ',') ? "s" : "", unknown.data);
    }
done:
    lv_buf_free(&unknown);
    return rc;
}

/* Whether s ends with suffix (ASCII case-insensitive). */
static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/*
 * A bucket written as a host name, as Litestream accepts it: AWS's virtual-host forms
 * BUCKET.s3.REGION.amazonaws.com, BUCKET.s3-REGION.amazonaws.com and BUCKET.s3.amazonaws.com
 * become the bucket and its region; other host names of known stores (and other AWS forms) are
 * refused with the form to use, rather than taken as a bucket of that name.
 */
static lv_err host_form(replica_url *u, char *err)
{
    char *b = u->bucket;
    if (ends_with(b, ".amazonaws.com")) {
        size_t n = strlen(b) - strlen(".amazonaws.com");
        char *s3 = b[0] ? strstr(b + 1, ".s3") : NULL; /* after at least one character */
        if (s3 && s3 < b + n) {
            const char *r = s3 + 3, *end = b + n;
            int ok = 0;
            char *region = NULL;
            if (r == end)
                ok = 1; /* BUCKET.s3.amazonaws.com */
            else if ((*r == '.' || *r == '-') && r + 1 < end &&
                     !memchr(r + 1, '.', (size_t)(end - r - 1))) {
                ok = 1; /* BUCKET.s3.REGION / BUCKET.s3-REGION */
                if (!(region = dup_n(r + 1, (size_t)(end - r - 1))))
                    return lv_fail(err, LV_ENOMEM, "out of memory");
            }
            if (ok) {
                *s3 = '\0'; /* the bucket is what comes before ".s3" */
                lv_free(u->region);
                u->region = region;
                return LV_OK;
            }
        }
        return lv_fail(err, LV_EINVAL,
                       "bucket \"%s\" is a host name: write s3://BUCKET/PATH?region=REGION", b);
    }
    static const char *const hosts[] = {
        ".backblazeb2.com", ".digitaloceanspaces.com",   ".linodeobjects.com", ".filebase.com",
        ".scw.cloud",       ".r2.cloudflarestorage.com", ".localhost"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
        if (ends_with(b, hosts[i]) || strcasecmp(b, "localhost") == 0)
            return lv_fail(err, LV_EINVAL,
                           "bucket \"%s\" is a host name: write "
                           "s3://BUCKET/PATH?endpoint=https://HOST",
                           b);
    return LV_OK;
}

static lv_err parse_s3(replica_url *u, const char *rest, char *err)
{
    u->kind = REPLICA_S3;
    size_t an = strcspn(rest, "/?");
    if (an == 0)
        return lv_fail(err, LV_EINVAL, "no bucket: want s3://BUCKET/PREFIX");
    if (memchr(rest, '@', an))
        return lv_fail(err, LV_EINVAL,
                       "credentials in the URL are not supported: use AWS_ACCESS_KEY_ID and "
                       "AWS_SECRET_ACCESS_KEY");
    if (!(u->bucket = dup_n(rest, an)))
        return lv_fail(err, LV_ENOMEM, "out of memory");
    char bad;
    if (!valid_bucket(u->bucket, &bad)) {
        if (bad == ':')
            return lv_fail(err, LV_EINVAL,
                           "bucket \"%s\": ':' is not allowed (give a host and port as "
                           "?endpoint=http://HOST:PORT)",
                           u->bucket);
        return lv_fail(err, LV_EINVAL, "bucket \"%s\": invalid character '%c'", u->bucket, bad);
    }
    lv_err rc = host_form(u, err);
    if (rc != LV_OK)
        return rc;
    const char *p = rest + an;
    size_t pn = strcspn(p, "?");
    char *raw = decode_n(p, pn, 0);
    if (!raw)
        return lv_fail(err, LV_ENOMEM, "out of memory");
    u->prefix = clean_prefix(raw);
    lv_free(raw);
    if (!u->prefix)
        return lv_fail(err, LV_ENOMEM, "out of memory");
    if (p[pn] == '?')
        return parse_query(u, p + pn + 1, err);
    return LV_OK;
}

static lv_err set_dir(replica_url *u, const char *path, size_t n, int decode, char *err)
{
    u->kind = REPLICA_FILE;
    char *d = decode ? decode_n(path, n, 0) : dup_n(path, n);
    if (!d)
        return lv_fail(err, LV_ENOMEM, "out of memory");
    /* collapse "//" and drop a trailing '/' (but keep "/") */
    size_t k = 0;
    for (size_t i = 0; d[i]; i++) {
        if (d[i] == '/' && k > 0 && d[k - 1] == '/')
            continue;
        d[k++] = d[i];
    }
    while (k > 1 && d[k - 1] == '/')
        k--;
    d[k] = 0;
    u->dir = d;
    if (k == 0)
        return lv_fail(err, LV_EINVAL, "empty directory");
    return LV_OK;
}

static lv_err parse_file(replica_url *u, const char *rest, char *err)
{
    size_t an = strcspn(rest, "/");
    if (!(an == 0 || (an == 9 && strncmp(rest, "localhost", 9) == 0)))
        return lv_fail(err, LV_EINVAL, "file URL with host \"%.*s\": want file:///ABSOLUTE/DIR",
                       (int)an, rest);
    const char *p = rest + an;
    if (*p != '/')
        return lv_fail(err, LV_EINVAL, "no directory: want file:///ABSOLUTE/DIR");
    if (strchr(p, '?'))
        return lv_fail(err, LV_EINVAL, "file URLs take no query parameters (write '?' as %%3F)");
    return set_dir(u, p, strlen(p), 1, err);
}

lv_err replica_url_parse(const char *url, replica_url *u, char *err)
{
    memset(u, 0, sizeof *u);
    lv_err rc;
    if (!url || !*url)
        return lv_fail(err, LV_EINVAL, "replica URL: empty");
    if (strchr(url, '#')) {
        rc = lv_fail(err, LV_EINVAL, "unexpected '#' (write it as %%23)");
    } else if (strncmp(url, "s3://", 5) == 0) {
        rc = parse_s3(u, url + 5, err);
    } else if (strncmp(url, "file://", 7) == 0) {
        rc = parse_file(u, url + 7, err);
    } else if (strncmp(url, "file:", 5) == 0) {
        if (url[5] == '/')
            rc = parse_file(u, url + 5, err); /* file:/abs/dir, as Go's url.Parse reads it */
        else
            rc = lv_fail(err, LV_EINVAL, "want file:///ABSOLUTE/DIR");
    } else if (strncmp(url, "s3:", 3) == 0) {
        rc = lv_fail(err, LV_EINVAL, "want s3://BUCKET/PREFIX");
    } else {
        const char *sep = strstr(url, "://");
        if (sep && sep > url && !memchr(url, '/', (size_t)(sep - url))) {
            rc = lv_fail(err, LV_EINVAL, "unsupported scheme \"%.*s\" (want s3:// or file://)",
                         (int)(sep - url), url);
        } else {
            rc = set_dir(u, url, strlen(url), 0, err);
        }
    }
    if (rc) {
        replica_url_free(u);
        return lv_wrap(err, rc, "replica URL \"%s\": ", url);
    }
    return LV_OK;
}

void replica_url_s3_config(const replica_url *u, const s3_config *base, s3_config *cfg)
{
    if (base) {
        *cfg = *base;
    } else {
        s3_config_init(cfg);
        s3_config_from_env(cfg);
    }
    if (u->endpoint) {
        cfg->endpoint = u->endpoint;
        cfg->path_style = 1; /* a custom endpoint implies path style (as Litestream) */
    }
    if (u->region)
        cfg->region = u->region;
    if (u->has_path_style)
        cfg->path_style = u->path_style;
    if (u->has_skip_verify)
        cfg->skip_verify = u->skip_verify;
    if (u->has_sign_payload)
        cfg->unsigned_payload = !u->sign_payload;
    if (u->has_part_size)
        cfg->part_size = u->part_size;
}
