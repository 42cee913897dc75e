/*
 * rule: the text syntax of a fault rule (see chaos.h): tokenizer, parser with errors that name the
 * bad word, canonical text, durations and rates, and the match test of one request.
 *
 * Words are split at blanks as a shell would: "..." (with \" and \\ inside) and '...' (literal)
 * quote spans that hold blanks, '=' or '#'; a word that starts with '#' starts a comment. A word
 * with an unquoted '=' is NAME=VALUE, any other word is a positional argument of the action.
 *
 * Threads: parsing touches only its own memory; chaos_rule_matches reads an immutable rule and
 * may run in any number of threads at once.
 */
#include "rule.h"

#include <ctype.h>
#include <fnmatch.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"

#define MAX_WORDS 64
#define US_MAX    (366LL * 24 * 3600 * 1000000) /* the longest duration a rule may hold */

/* ---- names ---------------------------------------------------------------------------------- */

static const char *const action_names[] = {
    [CHAOS_NONE] = "none",
    [CHAOS_LATENCY] = "latency",
    [CHAOS_ERROR] = "error",
    [CHAOS_RESET] = "reset",
    [CHAOS_CLOSE] = "close",
    [CHAOS_TRUNCATE] = "truncate",
    [CHAOS_STALL] = "stall",
    [CHAOS_BANDWIDTH] = "bandwidth",
    [CHAOS_LOST_RESPONSE] = "lost-response",
    [CHAOS_CRASH] = "crash",
    [CHAOS_DOWN] = "down",
};

const char *chaos_action_name(chaos_action a)
{
    if ((int)a < 0 || (size_t)a >= sizeof action_names / sizeof action_names[0])
        return "none";
    return action_names[a];
}

/*
 * Operation names a rule may name: S3's, as fakes3 logs them (fakes3/router.c), and the common S3
 * operations fakes3 does not serve yet, so that a rule written for a newer fakes3 still parses.
 * A name outside this list is a typo that would silently never match, so it is refused.
 */
static const char *const known_ops[] = {
    "AbortMultipartUpload", "CompleteMultipartUpload", "CopyObject", "CreateBucket",
    "CreateMultipartUpload", "DeleteBucket", "DeleteBucketPolicy", "DeleteBucketTagging",
    "DeleteObject", "DeleteObjects", "DeleteObjectTagging", "GetBucketAcl", "GetBucketLocation",
    "GetBucketPolicy", "GetBucketTagging", "GetBucketVersioning", "GetObject", "GetObjectAcl",
    "GetObjectAttributes", "GetObjectTagging", "HeadBucket", "HeadObject", "ListBuckets",
    "ListMultipartUploads", "ListObjects", "ListObjectsV2", "ListObjectVersions", "ListParts",
    "PutBucketAcl", "PutBucketPolicy", "PutBucketTagging", "PutBucketVersioning", "PutObject",
    "PutObjectAcl", "PutObjectTagging", "UploadPart", "UploadPartCopy",
    /* fakes3's own names for what is not an S3 operation */
    "Unknown", "BucketSubresource", "ObjectSubresource", "AdminHealth", "AdminStats", "AdminFaults",
    "AdminLog"};
#define NKNOWN_OPS (sizeof known_ops / sizeof known_ops[0])

static const char *const method_names[] = {"GET",    "HEAD",    "PUT",  "POST",
                                           "DELETE", "OPTIONS", "PATCH"};
#define NMETHODS (sizeof method_names / sizeof method_names[0])

_Static_assert(NKNOWN_OPS <= 64, "op_mask holds one bit per known operation");

/* FNV-1a of a NUL-terminated name. */
static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t known_hash[NKNOWN_OPS];
static pthread_once_t known_once = PTHREAD_ONCE_INIT;

static void hash_known_ops(void)
{
    for (size_t i = 0; i < NKNOWN_OPS; i++)
        known_hash[i] = name_hash(known_ops[i]);
}

uint64_t chaos_op_bit(const char *op)
{
    if (!op)
        return 0;
    pthread_once(&known_once, hash_known_ops);
    uint64_t h = name_hash(op);
    for (size_t i = 0; i < NKNOWN_OPS; i++)
        if (known_hash[i] == h && strcmp(known_ops[i], op) == 0)
            return 1ull << i;
    return 0;
}

unsigned chaos_method_bit(const char *m)
{
    if (!m)
        return 0;
    for (size_t i = 0; i < NMETHODS; i++)
        if (strcmp(m, method_names[i]) == 0)
            return 1u << i;
    return 0;
}

/* Edit distance of two short names, case-insensitive (for "did you mean"). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    size_t row[41];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0]; /* row[i-1][j-1] */
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t sub =
                prev + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t best = sub;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

/* The nearest of names[0..n) to s when it is close enough to be a typo, else NULL. */
static const char *nearest(const char *s, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(s, names[i]);
        if (d < bd) {
            bd = d;
            best = names[i];
        }
    }
    return best;
}

/* ---- errors --------------------------------------------------------------------------------- */

/* `bad rule "TEXT": detail`, the rule trimmed and cut to a length that leaves room for detail. */
static lv_err bad(char *err, const char *text, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static lv_err bad(char *err, const char *text, size_t len, const char *fmt, ...)
{
    if (!err)
        return LV_EINVAL;
    while (len && isspace((unsigned char)*text)) {
        text++;
        len--;
    }
    while (len && isspace((unsigned char)text[len - 1]))
        len--;
    int cut = 0;
    if (len > 96) {
        len = 96;
        while (len && ((unsigned char)text[len] & 0xc0) == 0x80) /* whole UTF-8 characters */
            len--;
        cut = 1;
    }
    char detail[LV_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return lv_fail(err, LV_EINVAL, "bad rule \"%.*s%s\": %s", (int)len, text, cut ? "..." : "",
                   detail);
}

/* ---- numbers -------------------------------------------------------------------------------- */

/* 10^k as a double: exact for k <= 22. */
static double pow10_of(int k)
{
    double p = 1;
    for (int i = 0; i < k; i++)
        p *= 10;
    return p;
}

/*
 * Reads digits [. digits] (and, when exp, [eE][+-]digits) at s, in C's own terms whatever the
 * locale (strtod would want a decimal comma under some): the value and where it ends, or NULL if
 * there is no number there. Up to 19 significant digits are kept; when the digits fit in 2^53 and
 * the power of ten in 22 the value is correctly rounded (an exact integer divided or multiplied by
 * an exact power of ten), which covers every number a rule carries.
 */
static const char *scan_number(const char *s, int exp, double *v)
{
    const char *p = s;
    uint64_t m = 0;
    int digits = 0, kept = 0, scale = 0; /* value = m * 10^scale */
    for (; isdigit((unsigned char)*p); p++, digits++) {
        if (kept < 19) {
            m = m * 10 + (uint64_t)(*p - '0');
            kept += m != 0;
        } else {
            scale++; /* a digit beyond what m holds: only its magnitude counts */
        }
    }
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++, digits++) {
            if (kept < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                kept += m != 0;
                scale--;
            }
        }
    }
    if (!digits)
        return NULL;
    if (exp && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        int neg = 0, e = 0;
        if (*q == '+' || *q == '-')
            neg = *q++ == '-';
        if (!isdigit((unsigned char)*q))
            return NULL;
        for (; isdigit((unsigned char)*q); q++)
            if (e < 10000)
                e = e * 10 + (*q - '0');
        scale += neg ? -e : e;
        p = q;
    }
    double x = (double)m;
    if (m == 0)
        x = 0;
    else if (scale < 0)
        x = scale >= -22 ? x / pow10_of(-scale)
                         : x / pow10_of(22) / pow10_of(-scale - 22 > 300 ? 300 : -scale - 22);
    else if (scale > 0)
        x = x * pow10_of(scale > 308 ? 308 : scale);
    *v = x;
    return p;
}

/* Parses "12", "1.5" at s: the number and where it ends; NULL if there is no number there. */
static const char *scan_decimal(const char *s, double *v)
{
    return scan_number(s, 0, v);
}

/* A duration: NULL on success, else why it is bad (a static string). */
static const char *duration_why(const char *s, int64_t *us)
{
    double v;
    if (*s == '-')
        return "a duration cannot be negative";
    const char *p = scan_decimal(s, &v);
    if (!p)
        return "not a duration (use 40ms, 1.5s, 2m, 250us)";
    double mult;
    if (*p == '\0' || strcmp(p, "ms") == 0)
        mult = 1e3;
    else if (strcmp(p, "us") == 0)
        mult = 1;
    else if (strcmp(p, "s") == 0)
        mult = 1e6;
    else if (strcmp(p, "m") == 0)
        mult = 60e6;
    else if (strcmp(p, "h") == 0)
        mult = 3600e6;
    else
        return "unknown unit (use us, ms, s, m or h; a bare number is ms)";
    double x = v * mult;
    if (x > (double)US_MAX)
        return "too long (at most 366 days)";
    *us = (int64_t)(x + 0.5); /* x >= 0; no libm (llround) needed */
    return NULL;
}

lv_err chaos_parse_duration(const char *s, int64_t *us, char *err)
{
    const char *why = duration_why(s, us);
    if (why)
        return lv_fail(err, LV_EINVAL, "bad duration \"%.64s\": %s", s, why);
    return LV_OK;
}

/* A byte count or rate with k/M/G (powers of 1024): NULL on success, else why it is bad. */
static const char *size_why(const char *s, uint64_t *bytes)
{
    double v;
    if (*s == '-')
        return "cannot be negative";
    const char *p = scan_decimal(s, &v);
    if (!p)
        return "not a number of bytes (use 65536, 64k, 1M, 1G)";
    double mult;
    if (*p == '\0')
        mult = 1;
    else if (strcmp(p, "k") == 0 || strcmp(p, "K") == 0)
        mult = 1024.0;
    else if (strcmp(p, "M") == 0)
        mult = 1024.0 * 1024;
    else if (strcmp(p, "G") == 0)
        mult = 1024.0 * 1024 * 1024;
    else
        return "unknown suffix (use k, M or G, powers of 1024)";
    double x = v * mult;
    if (x >= 0x1p62)
        return "too large";
    *bytes = (uint64_t)(x + 0.5);
    return NULL;
}

lv_err chaos_parse_rate(const char *s, uint64_t *bytes, char *err)
{
    const char *why = size_why(s, bytes);
    if (why)
        return lv_fail(err, LV_EINVAL, "bad rate \"%.64s\": %s", s, why);
    return LV_OK;
}

/* A whole number 0..2^62 written in decimal digits only. */
static int parse_count(const char *s, uint64_t *v)
{
    if (!*s)
        return 0;
    const uint64_t limit = 1ull << 62;
    uint64_t x = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return 0;
        uint64_t d = (uint64_t)(*p - '0');
        if (x > (limit - d) / 10)
            return 0; /* checked before the multiplication can wrap */
        x = x * 10 + d;
    }
    *v = x;
    return 1;
}

/* A probability: a decimal number, optionally with an exponent ("0.05", "5e-2"); no sign, no
 * inf, nan or hex. Locale-independent. */
static int parse_prob(const char *s, double *v)
{
    const char *end = scan_number(s, 1, v);
    return end && *end == '\0';
}

/* ---- canonical pieces ----------------------------------------------------------------------- */

void chaos_canon_duration(lv_buf *b, int64_t us)
{
    if (us != 0 && us % 3600000000LL == 0)
        lv_buf_printf(b, "%lldh", (long long)(us / 3600000000LL));
    else if (us != 0 && us % 60000000LL == 0)
        lv_buf_printf(b, "%lldm", (long long)(us / 60000000LL));
    else if (us != 0 && us % 1000000 == 0)
        lv_buf_printf(b, "%llds", (long long)(us / 1000000));
    else if (us % 1000 == 0)
        lv_buf_printf(b, "%lldms", (long long)(us / 1000));
    else
        lv_buf_printf(b, "%lldus", (long long)us);
}

/* v (>= 0) with prec digits after the point, rounded, into out[n]; 0 when it does not fit. */
static int fmt_fixed(char *out, size_t n, double v, int prec)
{
    double scaled = v * pow10_of(prec);
    if (!(scaled < 0x1p63))
        return 0;
    uint64_t x = (uint64_t)(scaled + 0.5);
    char frac[24] = "";
    for (int i = prec - 1; i >= 0; i--, x /= 10)
        frac[i] = (char)('0' + x % 10);
    frac[prec] = '\0';
    char whole[24];
    int k = 0;
    do {
        whole[k++] = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    size_t need = (size_t)k + (prec ? 1 + (size_t)prec : 0) + 1;
    if (need > n)
        return 0;
    char *o = out;
    while (k)
        *o++ = whole[--k];
    if (prec) {
        *o++ = '.';
        memcpy(o, frac, (size_t)prec);
        o += prec;
    }
    *o = '\0';
    return 1;
}

/*
 * Plain decimal (never an exponent, never a locale's decimal comma) with the smallest number of
 * digits after the point that reads back as the same double; 17 when none up to 17 does (then
 * the nearest such decimal). The numbers written are probabilities and percentiles (0..100).
 */
static void fmt_double(char *out, size_t n, double v)
{
    char buf[48], *tmp = buf;
    if (v < 0) {
        *tmp++ = '-';
        v = -v;
    }
    size_t cap = sizeof buf - (size_t)(tmp - buf);
    int prec = 0;
    for (; prec < 17; prec++) {
        double back;
        if (fmt_fixed(tmp, cap, v, prec) && scan_number(tmp, 0, &back) && back == v)
            break;
    }
    if (!fmt_fixed(tmp, cap, v, prec))
        snprintf(tmp, cap, "%llu", (unsigned long long)v);
    size_t len = strlen(buf);
    if (n == 0)
        return;
    if (len >= n)
        len = n - 1;
    memcpy(out, buf, len);
    out[len] = '\0';
}

static void put_double(lv_buf *b, double v)
{
    char tmp[40];
    fmt_double(tmp, sizeof tmp, v);
    lv_buf_puts(b, tmp);
}

/* Trims "41.20" to "41.2" and "40.0" to "40". */
static void trim_zeros(char *s)
{
    char *dot = strchr(s, '.');
    if (!dot)
        return;
    char *e = s + strlen(s);
    while (e > dot + 1 && e[-1] == '0')
        e--;
    if (e == dot + 1)
        e = dot;
    *e = '\0';
}

void chaos_human_duration(char *out, size_t n, int64_t us)
{
    char num[48];
    const char *unit;
    if (us < 1000) {
        snprintf(num, sizeof num, "%lld", (long long)us);
        unit = "us";
    } else if (us < 1000000) {
        snprintf(num, sizeof num, "%.1f", (double)us / 1e3);
        unit = "ms";
    } else {
        snprintf(num, sizeof num, "%.3f", (double)us / 1e6);
        unit = "s";
    }
    trim_zeros(num);
    snprintf(out, n, "%s%s", num, unit);
}

void chaos_canon_size(lv_buf *b, uint64_t v)
{
    if (v != 0 && v % (1024ull * 1024 * 1024) == 0)
        lv_buf_printf(b, "%lluG", (unsigned long long)(v / (1024ull * 1024 * 1024)));
    else if (v != 0 && v % (1024ull * 1024) == 0)
        lv_buf_printf(b, "%lluM", (unsigned long long)(v / (1024ull * 1024)));
    else if (v != 0 && v % 1024 == 0)
        lv_buf_printf(b, "%lluk", (unsigned long long)(v / 1024));
    else
        lv_buf_printf(b, "%llu", (unsigned long long)v);
}

/* A word as the tokenizer reads it back: bare when it can be, else "..." with \" and \\. */
static void put_word(lv_buf *b, const char *s, int positional)
{
    int quote = *s == '\0' || *s == '#';
    for (const char *p = s; *p && !quote; p++)
        if (isspace((unsigned char)*p) || *p == '"' || *p == '\'' || (positional && *p == '='))
            quote = 1;
    if (!quote) {
        lv_buf_puts(b, s);
        return;
    }
    lv_buf_putc(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            lv_buf_putc(b, '\\');
        lv_buf_putc(b, *p);
    }
    lv_buf_putc(b, '"');
}

/* ---- default S3 errors ---------------------------------------------------------------------- */

typedef struct s3_default {
    int status;
    const char *code, *message;
} s3_default;

/*
 * S3's own code and message for a status where S3 has one. 429 is not a status S3 sends (it
 * throttles with 503 SlowDown), but S3-compatible stores do; SlowDown is the code every AWS SDK
 * treats as throttling, so a 429 rule exercises the same retry path. A 2xx "error" is S3's
 * 200-with-an-error-document (CompleteMultipartUpload, CopyObject), so it defaults to
 * InternalError.
 */
static const s3_default s3_defaults[] = {
    {301, "PermanentRedirect",
     "The bucket you are attempting to access must be addressed using the specified endpoint."},
    {304, "NotModified", "Not Modified"},
    {307, "TemporaryRedirect", "You are being redirected to the bucket while DNS updates."},
    {400, "BadRequest", "Bad Request"},
    {401, "Unauthorized", "Unauthorized"},
    {403, "AccessDenied", "Access Denied"},
    {404, "NoSuchKey", "The specified key does not exist."},
    {405, "MethodNotAllowed", "The specified method is not allowed against this resource."},
    {408, "RequestTimeout",
     "Your socket connection to the server was not read from or written to within the timeout "
     "period."},
    {409, "OperationAborted",
     "A conflicting conditional operation is currently in progress against this resource. Try "
     "again."},
    {411, "MissingContentLength", "You must provide the Content-Length HTTP header."},
    {412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"},
    {416, "InvalidRange", "The requested range is not satisfiable"},
    {429, "SlowDown", "Please reduce your request rate."},
    {500, "InternalError", "We encountered an internal error. Please try again."},
    {501, "NotImplemented", "A header you provided implies functionality that is not implemented."},
    {502, "BadGateway", "Bad Gateway"},
    {503, "SlowDown", "Please reduce your request rate."},
    {504, "GatewayTimeout", "Gateway Timeout"},
};

static void default_error(int status, const char **code, const char **message)
{
    for (size_t i = 0; i < sizeof s3_defaults / sizeof s3_defaults[0]; i++)
        if (s3_defaults[i].status == status) {
            *code = s3_defaults[i].code;
            *message = s3_defaults[i].message;
            return;
        }
    if (status >= 400 && status < 500) {
        *code = "BadRequest";
        *message = "Bad Request";
    } else {
        *code = "InternalError";
        *message = "We encountered an internal error. Please try again.";
    }
}

/* ---- tokenizer ------------------------------------------------------------------------------ */

typedef struct word {
    char *s; /* unquoted content, NUL-terminated, in the parser's store */
    int eq;  /* offset of the first unquoted '=' in s, or -1 */
} word;

/* Splits text into words; NULL on success, else why (a static string). */
static const char *tokenize(const char *text, size_t len, char *store, word *w, int *nw)
{
    size_t i = 0, pos = 0;
    *nw = 0;
    for (;;) {
        while (i < len && isspace((unsigned char)text[i]))
            i++;
        if (i >= len || text[i] == '#')
            return NULL;
        if (*nw == MAX_WORDS)
            return "too many words";
        char *out = store + pos;
        size_t n = 0;
        int eq = -1;
        while (i < len && !isspace((unsigned char)text[i])) {
            char c = text[i];
            if (c == '"' || c == '\'') {
                i++;
                while (i < len && text[i] != c) {
                    if (c == '"' && text[i] == '\\' && i + 1 < len &&
                        (text[i + 1] == '"' || text[i + 1] == '\\'))
                        i++;
                    out[n++] = text[i++];
                }
                if (i >= len)
                    return c == '"' ? "a \" quote is not closed" : "a ' quote is not closed";
                i++;
                continue;
            }
            if (c == '=' && eq < 0)
                eq = (int)n;
            out[n++] = c;
            i++;
        }
        out[n] = '\0';
        w[*nw].s = out;
        w[*nw].eq = eq;
        (*nw)++;
        pos += n + 1;
    }
}

/* Whether s[0..n) is valid UTF-8 (no overlongs, no surrogates). */
static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1;
            min = 0x80;
            c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2;
            min = 0x800;
            c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3;
            min = 0x10000;
            c &= 0x07;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            c = (c << 6) | (s[i + j] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* ---- the parser ----------------------------------------------------------------------------- */

static const struct {
    const char *name;
    chaos_action a;
} actions[] = {
    {"latency", CHAOS_LATENCY},     {"error", CHAOS_ERROR},
    {"reset", CHAOS_RESET},         {"close", CHAOS_CLOSE},
    {"truncate", CHAOS_TRUNCATE},   {"stall", CHAOS_STALL},
    {"bandwidth", CHAOS_BANDWIDTH}, {"lost-response", CHAOS_LOST_RESPONSE},
    {"crash", CHAOS_CRASH},         {"down", CHAOS_DOWN},
};
#define NACTIONS (sizeof actions / sizeof actions[0])

static const char *const key_names[] = {"op",     "method", "bucket", "key",    "range",
                                        "header", "nth",    "delay",  "jitter", "p",
                                        "times",  "after",  "for"};
#define NKEYS (sizeof key_names / sizeof key_names[0])

/* Bits for "this key was given" (header may repeat, the others may not). */
enum {
    K_OP,
    K_METHOD,
    K_BUCKET,
    K_KEY,
    K_RANGE,
    K_HEADER,
    K_NTH,
    K_DELAY,
    K_JITTER,
    K_P,
    K_TIMES,
    K_AFTER,
    K_FOR
};

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = lv_malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

void chaos_rule_free(chaos_rule *r)
{
    if (!r)
        return;
    lv_free(r->canon);
    lv_free(r->bucket_glob);
    lv_free(r->key_glob);
    for (int i = 0; i < r->nheaders; i++) {
        lv_free(r->headers[i].name);
        lv_free(r->headers[i].value);
    }
    lv_free(r);
}

/* An HTTP header name: RFC 9110 token characters. */
static int is_token(const char *s, size_t n)
{
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && !strchr("!#$%&'*+-.^_`|~", c))
            return 0;
    }
    return 1;
}

/* A percentile key "p50", "p99.9": its q (0..100), or -1 if name is not one. */
static double percentile_key(const char *name)
{
    if (name[0] != 'p' || !isdigit((unsigned char)name[1]))
        return -1;
    double q;
    const char *end = scan_decimal(name + 1, &q);
    if (!end || *end)
        return -1;
    return q;
}

/* The parser's state while it reads one rule. */
typedef struct parse_ctx {
    const char *text;
    size_t len;
    char *err;
    chaos_rule *r;
    unsigned given; /* 1 << K_... */
    int npos;
    const char *pos[4];
    int nuser_pct;
    double upct_q[CHAOS_MAX_PCTS];
    int64_t upct_us[CHAOS_MAX_PCTS];
} parse_ctx;

#define BAD(...) bad(c->err, c->text, c->len, __VA_ARGS__)

static lv_err parse_ops(parse_ctx *c, const char *v)
{
    chaos_rule *r = c->r;
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char name[64];
        if (n == 0)
            return BAD("op=%.60s: an empty operation name", v);
        if (n >= sizeof name)
            return BAD("op=: unknown S3 operation \"%.40s...\"", p);
        memcpy(name, p, n);
        name[n] = '\0';
        const char *canon = NULL;
        size_t idx = 0;
        for (size_t i = 0; i < NKNOWN_OPS; i++)
            if (strcasecmp(name, known_ops[i]) == 0) {
                canon = known_ops[i];
                idx = i;
            }
        if (!canon) {
            const char *near = nearest(name, known_ops, NKNOWN_OPS);
            if (near)
                return BAD("op=: unknown S3 operation \"%s\" (did you mean %s?)", name, near);
            return BAD("op=: unknown S3 operation \"%s\" (GetObject, PutObject, ...)", name);
        }
        for (int i = 0; i < r->nops; i++)
            if (r->op_name[i] == canon)
                return BAD("op=: %s is named twice", canon);
        if (r->nops == CHAOS_MAX_OPS)
            return BAD("op=: more than %d operations", CHAOS_MAX_OPS);
        r->op_name[r->nops] = canon;
        r->op_mask |= 1ull << idx;
        r->nops++;
        if (!comma)
            return LV_OK;
        p = comma + 1;
    }
}

static lv_err parse_methods(parse_ctx *c, const char *v)
{
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char name[16];
        if (n == 0)
            return BAD("method=%.60s: an empty method", v);
        unsigned bit = 0;
        if (n < sizeof name) {
            for (size_t i = 0; i < n; i++)
                name[i] = (char)toupper((unsigned char)p[i]);
            name[n] = '\0';
            bit = chaos_method_bit(name);
        }
        if (!bit)
            return BAD("method=: unknown HTTP method \"%.*s\" (GET, HEAD, PUT, POST, DELETE, "
                       "OPTIONS, PATCH)",
                       (int)(n > 40 ? 40 : n), p);
        if (c->r->method_mask & bit)
            return BAD("method=: %s is named twice", name);
        c->r->method_mask |= bit;
        if (!comma)
            return LV_OK;
        p = comma + 1;
    }
}

static lv_err parse_header(parse_ctx *c, const char *v)
{
    chaos_rule *r = c->r;
    const char *colon = strchr(v, ':');
    size_t n = colon ? (size_t)(colon - v) : strlen(v);
    if (!is_token(v, n))
        return BAD("header=%.60s: \"%.*s\" is not a header name", v, (int)(n > 60 ? 60 : n), v);
    if (r->nheaders == CHAOS_MAX_HEADERS)
        return BAD("more than %d header= keys", CHAOS_MAX_HEADERS);
    for (const char *p = colon ? colon + 1 : ""; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return BAD("header=%.60s: a control character in the value", v);
    chaos_header_match *h = &r->headers[r->nheaders];
    h->name = lv_malloc(n + 1);
    if (!h->name)
        return lv_fail(c->err, LV_ENOMEM, "out of memory parsing a rule");
    memcpy(h->name, v, n);
    h->name[n] = '\0';
    r->nheaders++; /* from here chaos_rule_free frees name */
    if (colon) {
        h->value = dup_str(colon + 1);
        if (!h->value)
            return lv_fail(c->err, LV_ENOMEM, "out of memory parsing a rule");
    }
    return LV_OK;
}

/*
 * Most globs are a name, "prefix*", "*suffix" or "*": those are matched without fnmatch(3), which
 * costs tens of nanoseconds, so a long list of rules for other keys stays cheap to scan.
 */
enum { GLOB_FNMATCH, GLOB_EXACT, GLOB_PREFIX, GLOB_SUFFIX, GLOB_ANY };

static unsigned char glob_kind(const char *g)
{
    size_t n = strlen(g), stars = 0;
    for (const char *p = g; *p; p++) {
        if (*p == '?' || *p == '[' || *p == '\\')
            return GLOB_FNMATCH;
        stars += *p == '*';
    }
    if (stars == 0)
        return GLOB_EXACT;
    if (stars > 1)
        return GLOB_FNMATCH;
    if (n == 1)
        return GLOB_ANY;
    if (g[n - 1] == '*')
        return GLOB_PREFIX;
    if (g[0] == '*')
        return GLOB_SUFFIX;
    return GLOB_FNMATCH;
}

/* Whether s (of length *ls, worked out here on first need) matches glob g of length lg. */
static int glob_match(const char *g, size_t lg, unsigned char kind, const char *s, size_t *ls)
{
    if (kind == GLOB_ANY)
        return 1;
    if (kind == GLOB_FNMATCH)
        return fnmatch(g, s, 0) == 0;
    if (*ls == SIZE_MAX)
        *ls = strlen(s);
    switch (kind) {
    case GLOB_EXACT:
        return *ls == lg && memcmp(g, s, lg) == 0;
    case GLOB_PREFIX:
        return *ls >= lg - 1 && memcmp(g, s, lg - 1) == 0;
    default: /* GLOB_SUFFIX */
        return *ls >= lg - 1 && memcmp(s + *ls - (lg - 1), g + 1, lg - 1) == 0;
    }
}

static lv_err parse_glob(parse_ctx *c, const char *key, const char *v, char **out)
{
    if (strlen(v) > 1024)
        return BAD("%s=: a glob longer than 1024 bytes", key);
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return BAD("%s=: a control character in the glob", key);
    *out = dup_str(v);
    if (!*out)
        return lv_fail(c->err, LV_ENOMEM, "out of memory parsing a rule");
    return LV_OK;
}

static lv_err parse_key(parse_ctx *c, const char *name, const char *v)
{
    chaos_rule *r = c->r;
    const char *why;
    double q = percentile_key(name);
    if (q >= 0) {
        if (r->action != CHAOS_LATENCY)
            return BAD("%s= is a latency percentile; it is only for latency", name);
        if (q > 100)
            return BAD("%s=: a percentile must be between p0 and p100", name);
        for (int i = 0; i < c->nuser_pct; i++)
            if (c->upct_q[i] == q)
                return BAD("%s= is given twice", name);
        if (c->nuser_pct == CHAOS_MAX_PCTS - 2)
            return BAD("more than %d percentiles", CHAOS_MAX_PCTS - 2);
        int64_t us;
        if (!*v)
            return BAD("%s= needs a duration", name);
        if ((why = duration_why(v, &us)))
            return BAD("%s=%.40s: %s", name, v, why);
        c->upct_q[c->nuser_pct] = q;
        c->upct_us[c->nuser_pct] = us;
        c->nuser_pct++;
        return LV_OK;
    }
    int k = -1;
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(name, key_names[i]) == 0)
            k = (int)i;
    if (k < 0) {
        const char *near = nearest(name, key_names, NKEYS);
        if (near)
            return BAD("unknown key \"%.40s\" (did you mean %s=?)", name, near);
        return BAD("unknown key \"%.40s\"", name);
    }
    if (k != K_HEADER && (c->given & (1u << k)))
        return BAD("%s= is given twice", name);
    c->given |= 1u << k;
    if (!*v)
        return BAD("%s= needs a value", name);
    uint64_t n;
    switch (k) {
    case K_OP:
        return parse_ops(c, v);
    case K_METHOD:
        return parse_methods(c, v);
    case K_BUCKET:
        r->bucket_kind = glob_kind(v);
        r->bucket_len = strlen(v);
        return parse_glob(c, "bucket", v, &r->bucket_glob);
    case K_KEY:
        r->key_kind = glob_kind(v);
        r->key_len = strlen(v);
        return parse_glob(c, "key", v, &r->key_glob);
    case K_RANGE:
        if (strcmp(v, "yes") == 0)
            r->range = 1;
        else if (strcmp(v, "no") == 0)
            r->range = 0;
        else
            return BAD("range=%.40s: range must be yes or no", v);
        return LV_OK;
    case K_HEADER:
        return parse_header(c, v);
    case K_NTH:
        if (!parse_count(v, &n) || n < 1)
            return BAD("nth=%.40s: nth must be a whole number from 1", v);
        r->nth = n;
        return LV_OK;
    case K_TIMES:
        if (!parse_count(v, &n) || n < 1)
            return BAD("times=%.40s: times must be a whole number from 1", v);
        r->times = n;
        return LV_OK;
    case K_AFTER:
        if (!parse_count(v, &n))
            return BAD("after=%.40s: after must be a whole number", v);
        r->after = n;
        return LV_OK;
    case K_P: {
        double p;
        if (!parse_prob(v, &p) || p < 0 || p > 1)
            return BAD("p must be between 0 and 1 (got \"%.40s\")", v);
        r->has_p = 1;
        r->p = p == 0 ? 0 : p; /* "-0" is 0 */
        return LV_OK;
    }
    case K_DELAY:
    case K_JITTER:
    case K_FOR: {
        int64_t us;
        if ((why = duration_why(v, &us)))
            return BAD("%s=%.40s: %s", name, v, why);
        if (k == K_DELAY)
            r->delay_us = us;
        else if (k == K_JITTER)
            r->jitter_us = us;
        else if (us <= 0)
            return BAD("for=%.40s: for must be longer than 0", v);
        else
            r->for_us = us;
        return LV_OK;
    }
    }
    return BAD("unknown key \"%.40s\"", name);
}

/* The positional arguments of the action, now that every word has been read. */
static lv_err parse_positionals(parse_ctx *c)
{
    chaos_rule *r = c->r;
    const char *an = chaos_action_name(r->action);
    int max = 0;
    switch (r->action) {
    case CHAOS_LATENCY:
    case CHAOS_STALL:
    case CHAOS_CRASH:
        max = 1;
        break;
    case CHAOS_ERROR:
        max = 3;
        break;
    case CHAOS_TRUNCATE:
    case CHAOS_BANDWIDTH:
    case CHAOS_DOWN:
        max = 1;
        break;
    default:
        max = 0;
    }
    if (c->npos > max) {
        if (max == 0)
            return BAD("%s takes no argument, got \"%.40s\"", an, c->pos[0]);
        return BAD("too many arguments for %s: \"%.40s\"", an, c->pos[max]);
    }
    const char *a0 = c->npos > 0 ? c->pos[0] : NULL;
    const char *why;
    switch (r->action) {
    case CHAOS_LATENCY:
        if (a0 && c->nuser_pct)
            return BAD("latency takes a duration or percentiles (p50=...), not both");
        if (!a0 && !c->nuser_pct)
            return BAD("latency needs a duration (latency 40ms) or percentiles (latency p50=40ms "
                       "p99=200ms)");
        if (a0 && (why = duration_why(a0, &r->latency_us)))
            return BAD("latency \"%.40s\": %s", a0, why);
        break;
    case CHAOS_ERROR: {
        if (!a0)
            return BAD("error needs an HTTP status (error 503)");
        uint64_t st;
        if (!parse_count(a0, &st))
            return BAD("error \"%.40s\": not an HTTP status", a0);
        if (st < 200 || st > 599) /* 1xx is no final answer: a client would wait on */
            return BAD("error %.40s: the HTTP status must be between 200 and 599", a0);
        r->status = (int)st;
        const char *code, *msg;
        default_error(r->status, &code, &msg);
        if (c->npos > 1) {
            code = c->pos[1];
            size_t n = strlen(code);
            if (n == 0 || n >= sizeof r->code)
                return BAD("error code \"%.40s\": between 1 and %zu characters", code,
                           sizeof r->code - 1);
            for (const char *p = code; *p; p++)
                if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
                    return BAD("error code \"%.40s\": letters and digits only (SlowDown)", code);
            r->code_given = 1;
        }
        if (c->npos > 2) {
            msg = c->pos[2];
            if (strlen(msg) >= sizeof r->message)
                return BAD("error message \"%.30s...\": longer than %zu bytes", msg,
                           sizeof r->message - 1);
            for (const char *p = msg; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                    return BAD("error message \"%.40s\": a control character", msg);
            r->message_given = 1;
        }
        snprintf(r->code, sizeof r->code, "%s", code);
        snprintf(r->message, sizeof r->message, "%s", msg);
        break;
    }
    case CHAOS_TRUNCATE:
        if (!a0)
            return BAD("truncate needs a byte count (truncate 100)");
        if ((why = size_why(a0, &r->bytes)))
            return BAD("truncate \"%.40s\": %s", a0, why);
        break;
    case CHAOS_BANDWIDTH:
        if (!a0)
            return BAD("bandwidth needs a rate in bytes per second (bandwidth 64k)");
        if ((why = size_why(a0, &r->bytes)))
            return BAD("bandwidth \"%.40s\": %s", a0, why);
        if (r->bytes == 0)
            return BAD("bandwidth \"%.40s\": the rate must be at least 1 byte per second", a0);
        break;
    case CHAOS_STALL:
        r->duration_us = -1;
        if (a0 && (why = duration_why(a0, &r->duration_us)))
            return BAD("stall \"%.40s\": %s", a0, why);
        break;
    case CHAOS_DOWN:
        if (!a0)
            return BAD("down needs a duration (down 10s)");
        if ((why = duration_why(a0, &r->duration_us)))
            return BAD("down \"%.40s\": %s", a0, why);
        if (r->duration_us <= 0)
            return BAD("down \"%.40s\": the duration must be longer than 0", a0);
        break;
    case CHAOS_CRASH:
        if (a0) {
            if (strcmp(a0, "before") == 0)
                r->after_apply = 0;
            else if (strcmp(a0, "after") == 0)
                r->after_apply = 1;
            else
                return BAD("crash \"%.40s\": crash takes before or after", a0);
            r->crash_given = 1;
        }
        break;
    default:
        break;
    }
    return LV_OK;
}

/* Sorts the user's percentiles, checks they grow, and adds p0 = 0 and p100 = the largest. */
static lv_err finish_percentiles(parse_ctx *c)
{
    chaos_rule *r = c->r;
    int n = c->nuser_pct;
    if (!n)
        return LV_OK;
    for (int i = 1; i < n; i++) /* insertion sort by q; n is small */
        for (int j = i; j > 0 && c->upct_q[j - 1] > c->upct_q[j]; j--) {
            double tq = c->upct_q[j];
            c->upct_q[j] = c->upct_q[j - 1];
            c->upct_q[j - 1] = tq;
            int64_t tu = c->upct_us[j];
            c->upct_us[j] = c->upct_us[j - 1];
            c->upct_us[j - 1] = tu;
        }
    for (int i = 1; i < n; i++)
        if (c->upct_us[i] < c->upct_us[i - 1]) {
            char a[40], b[40];
            fmt_double(a, sizeof a, c->upct_q[i]);
            fmt_double(b, sizeof b, c->upct_q[i - 1]);
            return BAD("p%s= is shorter than p%s=: percentiles must not decrease", a, b);
        }
    int k = 0;
    if (c->upct_q[0] != 0) {
        r->pct_q[k] = 0;
        r->pct_us[k] = 0;
        r->pct_given[k] = 0;
        k++;
    }
    for (int i = 0; i < n; i++) {
        r->pct_q[k] = c->upct_q[i];
        r->pct_us[k] = c->upct_us[i];
        r->pct_given[k] = 1;
        k++;
    }
    if (c->upct_q[n - 1] != 100) {
        r->pct_q[k] = 100;
        r->pct_us[k] = c->upct_us[n - 1];
        r->pct_given[k] = 0;
        k++;
    }
    r->npct = k;
    r->latency_us = -1;
    return LV_OK;
}

lv_err chaos_rule_parse(const char *text, size_t len, int allow_empty, chaos_rule **out, char *err)
{
    *out = NULL;
    lv_err rc = LV_OK;
    char *store = NULL;
    chaos_rule *r = NULL;
    parse_ctx ctx = {.text = text, .len = len, .err = err};
    parse_ctx *c = &ctx;
    word w[MAX_WORDS];
    int nw = 0;

    if (len > CHAOS_MAX_RULELEN) {
        rc = BAD("longer than %d bytes", CHAOS_MAX_RULELEN);
        goto done;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\0') {
            rc = BAD("a NUL byte at offset %zu", i);
            goto done;
        }
        if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f) {
            rc = BAD("a control character (0x%02x) at offset %zu", ch, i);
            goto done;
        }
    }
    if (!valid_utf8((const unsigned char *)text, len)) {
        rc = BAD("not valid UTF-8");
        goto done;
    }
    store = lv_malloc(len + 1);
    if (!store) {
        rc = lv_fail(err, LV_ENOMEM, "out of memory parsing a rule");
        goto done;
    }
    const char *why = tokenize(text, len, store, w, &nw);
    if (why) {
        rc = BAD("%s", why);
        goto done;
    }
    if (nw == 0) {
        if (!allow_empty)
            rc = BAD("empty rule");
        goto done;
    }
    r = lv_calloc(1, sizeof *r);
    if (!r) {
        rc = lv_fail(err, LV_ENOMEM, "out of memory parsing a rule");
        goto done;
    }
    r->range = -1;
    r->for_us = -1;
    r->latency_us = -1;
    c->r = r;

    if (w[0].eq >= 0) {
        rc =
            BAD("a rule starts with an action (latency, error, reset, ...), not \"%.40s\"", w[0].s);
        goto done;
    }
    int found = 0;
    for (size_t i = 0; i < NACTIONS; i++)
        if (strcmp(w[0].s, actions[i].name) == 0) {
            r->action = actions[i].a;
            found = 1;
        }
    if (!found) {
        const char *names[NACTIONS];
        for (size_t i = 0; i < NACTIONS; i++)
            names[i] = actions[i].name;
        const char *near = nearest(w[0].s, names, NACTIONS);
        if (near)
            rc = BAD("unknown action \"%.40s\" (did you mean %s?)", w[0].s, near);
        else
            rc = BAD("unknown action \"%.40s\" (latency, error, reset, close, truncate, stall, "
                     "bandwidth, lost-response, crash, down)",
                     w[0].s);
        goto done;
    }
    for (int i = 1; i < nw; i++) {
        if (w[i].eq < 0) {
            if (c->npos < 4)
                c->pos[c->npos] = w[i].s;
            c->npos++;
            continue;
        }
        w[i].s[w[i].eq] = '\0';
        const char *name = w[i].s, *value = w[i].s + w[i].eq + 1;
        if (!*name) {
            rc = BAD("\"=%.40s\": a key is missing before '='", value);
            goto done;
        }
        if ((rc = parse_key(c, name, value)) != LV_OK)
            goto done;
    }
    if (c->npos > 4)
        c->npos = 4;
    if ((rc = parse_positionals(c)) != LV_OK)
        goto done;
    if ((rc = finish_percentiles(c)) != LV_OK)
        goto done;
    if (r->nth && (c->given & ((1u << K_AFTER) | (1u << K_TIMES)))) {
        rc = BAD("nth= cannot be combined with after= or times= (nth=N is after=N-1 times=1)");
        goto done;
    }
    if (r->nth) {
        r->after = r->nth - 1;
        r->times = 1;
    }
    lv_buf canon;
    lv_buf_init(&canon);
    chaos_rule_canon(r, &canon);
    r->canon = lv_buf_take(&canon);
    if (!r->canon)
        rc = lv_fail(err, LV_ENOMEM, "out of memory parsing a rule");
done:
    lv_free(store);
    if (rc != LV_OK || (r && nw == 0)) {
        chaos_rule_free(r);
        r = NULL;
    }
    *out = r;
    return rc;
}

/* ---- canonical text ------------------------------------------------------------------------- */

static void put_key_word(lv_buf *b, const char *key, const char *value)
{
    lv_buf_printf(b, " %s=", key);
    put_word(b, value, 0);
}

void chaos_rule_canon(const chaos_rule *r, lv_buf *b)
{
    lv_buf_puts(b, chaos_action_name(r->action));
    switch (r->action) {
    case CHAOS_LATENCY:
        if (r->npct == 0) {
            lv_buf_putc(b, ' ');
            chaos_canon_duration(b, r->latency_us);
        }
        for (int i = 0; i < r->npct; i++) {
            if (!r->pct_given[i])
                continue;
            lv_buf_puts(b, " p");
            put_double(b, r->pct_q[i]);
            lv_buf_putc(b, '=');
            chaos_canon_duration(b, r->pct_us[i]);
        }
        break;
    case CHAOS_ERROR:
        lv_buf_printf(b, " %d ", r->status);
        put_word(b, r->code, 1);
        if (r->message_given) {
            lv_buf_putc(b, ' ');
            put_word(b, r->message, 1);
        }
        break;
    case CHAOS_TRUNCATE:
    case CHAOS_BANDWIDTH:
        lv_buf_putc(b, ' ');
        chaos_canon_size(b, r->bytes);
        break;
    case CHAOS_STALL:
        if (r->duration_us >= 0) {
            lv_buf_putc(b, ' ');
            chaos_canon_duration(b, r->duration_us);
        }
        break;
    case CHAOS_DOWN:
        lv_buf_putc(b, ' ');
        chaos_canon_duration(b, r->duration_us);
        break;
    case CHAOS_CRASH:
        lv_buf_puts(b, r->after_apply ? " after" : " before");
        break;
    default:
        break;
    }
    if (r->nops) {
        lv_buf_puts(b, " op=");
        for (int i = 0; i < r->nops; i++)
            lv_buf_printf(b, "%s%s", i ? "," : "", r->op_name[i]);
    }
    if (r->method_mask) {
        lv_buf_puts(b, " method=");
        int first = 1;
        for (size_t i = 0; i < NMETHODS; i++)
            if (r->method_mask & (1u << i)) {
                lv_buf_printf(b, "%s%s", first ? "" : ",", method_names[i]);
                first = 0;
            }
    }
    if (r->bucket_glob)
        put_key_word(b, "bucket", r->bucket_glob);
    if (r->key_glob)
        put_key_word(b, "key", r->key_glob);
    if (r->range >= 0)
        lv_buf_puts(b, r->range ? " range=yes" : " range=no");
    for (int i = 0; i < r->nheaders; i++) {
        lv_buf_puts(b, " header=");
        lv_buf tmp;
        lv_buf_init(&tmp);
        lv_buf_puts(&tmp, r->headers[i].name);
        if (r->headers[i].value) {
            lv_buf_putc(&tmp, ':');
            lv_buf_puts(&tmp, r->headers[i].value);
        }
        if (tmp.oom)
            b->oom = 1;
        else
            put_word(b, tmp.data, 0);
        lv_buf_free(&tmp);
    }
    if (r->delay_us) {
        lv_buf_puts(b, " delay=");
        chaos_canon_duration(b, r->delay_us);
    }
    if (r->jitter_us) {
        lv_buf_puts(b, " jitter=");
        chaos_canon_duration(b, r->jitter_us);
    }
    if (r->has_p) {
        lv_buf_puts(b, " p=");
        put_double(b, r->p);
    }
    if (r->nth) {
        lv_buf_printf(b, " nth=%llu", (unsigned long long)r->nth);
    } else {
        if (r->times)
            lv_buf_printf(b, " times=%llu", (unsigned long long)r->times);
        if (r->after)
            lv_buf_printf(b, " after=%llu", (unsigned long long)r->after);
    }
    if (r->for_us >= 0) {
        lv_buf_puts(b, " for=");
        chaos_canon_duration(b, r->for_us);
    }
}

/* ---- matching ------------------------------------------------------------------------------- */

void chaos_req_facts_init(chaos_req_facts *f, const chaos_request *req)
{
    f->op_bit = chaos_op_bit(req->op);
    f->method_bit = -1u;
    f->bucket_len = SIZE_MAX;
    f->key_len = SIZE_MAX;
}

int chaos_rule_matches(const chaos_rule *r, const chaos_request *req, chaos_req_facts *f)
{
    if (r->op_mask && !(r->op_mask & f->op_bit))
        return 0;
    if (r->method_mask) {
        if (f->method_bit == -1u)
            f->method_bit = chaos_method_bit(req->method);
        if (!(r->method_mask & f->method_bit))
            return 0;
    }
    if (r->range >= 0 && (req->has_range != 0) != r->range)
        return 0;
    if (r->bucket_glob && !glob_match(r->bucket_glob, r->bucket_len, r->bucket_kind,
                                      req->bucket ? req->bucket : "", &f->bucket_len))
        return 0;
    if (r->key_glob &&
        (!req->key || !glob_match(r->key_glob, r->key_len, r->key_kind, req->key, &f->key_len)))
        return 0;
    for (int i = 0; i < r->nheaders; i++) {
        const char *v = req->header ? req->header(req->header_ctx, r->headers[i].name) : NULL;
        if (!v)
            return 0;
        if (r->headers[i].value && strcmp(v, r->headers[i].value) != 0)
            return 0;
    }
    return 1;
}
