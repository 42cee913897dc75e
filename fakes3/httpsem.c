/* httpsem: entity tags, byte ranges, dates and conditional requests (see httpsem.h). */
#include "httpsem.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int fs3_etag_list_matches(const char *list, const char *etag)
{
    if (!list || !etag)
        return 0;
    size_t elen = strlen(etag);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        if (*p == '*')
            return 1;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        const char *s, *e;
        if (*p == '"') {
            s = ++p;
            e = strchr(s, '"');
            if (!e)
                e = s + strlen(s);
            p = *e ? e + 1 : e;
        } else {
            s = p;
            while (*p && *p != ',' && *p != ' ' && *p != '\t')
                p++;
            e = p;
        }
        if ((size_t)(e - s) == elen && memcmp(s, etag, elen) == 0)
            return 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

/* Parses decimal digits at *p, saturating at UINT64_MAX; 0 if there are none. */
static int parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    int any = 0;
    while (isdigit((unsigned char)*s)) {
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        s++;
        any = 1;
    }
    *p = s;
    *out = v;
    return any;
}

fs3_range_kind fs3_parse_range(const char *header, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (!header)
        return FS3_RANGE_NONE;
    const char *p = header;
    while (*p == ' ')
        p++;
    if (strncasecmp(p, "bytes=", 6) != 0)
        return FS3_RANGE_NONE;
    p += 6;
    if (strchr(p, ','))
        return FS3_RANGE_NONE; /* several ranges: S3 serves the whole object */
    while (*p == ' ')
        p++;
    uint64_t a = 0, b = 0;
    int has_a = parse_u64(&p, &a);
    while (*p == ' ')
        p++;
    if (*p != '-')
        return FS3_RANGE_NONE;
    p++;
    while (*p == ' ')
        p++;
    int has_b = parse_u64(&p, &b);
    while (*p == ' ')
        p++;
    if (*p || (!has_a && !has_b))
        return FS3_RANGE_NONE;
    if (!has_a) { /* suffix: the last b bytes */
        if (b == 0 || size == 0)
            return FS3_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return FS3_RANGE_OK;
    }
    if (has_b && b < a)
        return FS3_RANGE_NONE;
    if (a >= size)
        return FS3_RANGE_UNSATISFIABLE;
    *first = a;
    *last = (!has_b || b >= size) ? size - 1 : b;
    return FS3_RANGE_OK;
}

int fs3_parse_http_date(const char *s, int64_t *unix_seconds)
{
    static const char *formats[] = {
        "%a, %d %b %Y %H:%M:%S GMT", /* RFC 1123 */
        "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
        "%a %b %e %H:%M:%S %Y",      /* asctime */
        "%Y-%m-%dT%H:%M:%SZ",        /* ISO 8601 */
        "%Y-%m-%dT%H:%M:%S",         /* ISO 8601 with a fraction, checked below */
    };
    if (!s)
        return -1;
    while (*s == ' ')
        s++;
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(s, formats[i], &tm);
        if (!end)
            continue;
        if (i == 4) { /* ".123Z" */
            if (*end != '.')
                continue;
            end++;
            while (isdigit((unsigned char)*end))
                end++;
            if (*end != 'Z')
                continue;
            end++;
        }
        while (*end == ' ')
            end++;
        if (*end)
            continue;
        *unix_seconds = (int64_t)timegm(&tm);
        return 0;
    }
    return -1;
}

void fs3_format_http_date(int64_t unix_seconds, char *out, size_t cap)
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm))
        snprintf(out, cap, "Thu, 01 Jan 1970 00:00:00 GMT");
}

void fs3_format_iso8601(int64_t unix_ms, char *out, size_t cap)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    char base[32];
    if (!gmtime_r(&t, &tm) || !strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm))
        snprintf(base, sizeof base, "1970-01-01T00:00:00");
    snprintf(out, cap, "%s.%03dZ", base, (int)(unix_ms % 1000));
}

fs3_code fs3_check_read_cond(const fs3_read_cond *c, const char *etag, int64_t mtime_ms)
{
    int64_t mtime = mtime_ms / 1000; /* Last-Modified has whole seconds */
    int64_t t;
    if (c->if_match) {
        if (!fs3_etag_list_matches(c->if_match, etag))
            return FS3_PRECONDITION_FAILED;
    } else if (c->if_unmodified_since && fs3_parse_http_date(c->if_unmodified_since, &t) == 0) {
        if (mtime > t)
            return FS3_PRECONDITION_FAILED;
    }
    if (c->if_none_match) {
        if (fs3_etag_list_matches(c->if_none_match, etag))
            return FS3_NOT_MODIFIED;
    } else if (c->if_modified_since && fs3_parse_http_date(c->if_modified_since, &t) == 0) {
        if (mtime <= t)
            return FS3_NOT_MODIFIED;
    }
    return FS3_OK;
}
