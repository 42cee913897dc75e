/* timeexpr: user time expressions and RFC 3339 (see timeexpr.h). */
#include "timeexpr.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MS_PER_SEC  1000LL
#define MS_PER_MIN  (60 * MS_PER_SEC)
#define MS_PER_HOUR (60 * MS_PER_MIN)
#define MS_PER_DAY  (24 * MS_PER_HOUR)

/* Howard Hinnant's days_from_civil: exact for every proleptic Gregorian date. */
int64_t lv_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void lv_time_format(int64_t ms, int with_ms, char out[LV_TIME_RFC3339_LEN])
{
    int64_t days = ms >= 0 ? ms / MS_PER_DAY : -((-ms + MS_PER_DAY - 1) / MS_PER_DAY);
    int64_t rest = ms - days * MS_PER_DAY;
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    unsigned h = (unsigned)(rest / MS_PER_HOUR), mi = (unsigned)(rest / MS_PER_MIN % 60),
             s = (unsigned)(rest / MS_PER_SEC % 60), frac = (unsigned)(rest % 1000);
    if (with_ms)
        snprintf(out, LV_TIME_RFC3339_LEN, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", (long long)y,
                 mo, d, h, mi, s, frac);
    else
        snprintf(out, LV_TIME_RFC3339_LEN, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, mo, d,
                 h, mi, s);
}

/* Exactly n decimal digits at *p, advancing it; -1 if they are not there. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return v;
}

static int days_in_month(int64_t y, unsigned m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* RFC 3339 (and a date alone) from s up to end. 0, or -1 with err set. */
static int parse_rfc3339(const char *s, const char *end, int64_t *ms, char *err)
{
    const char *p = s;
    int y = digits(&p, 4);
    if (y < 0 || *p++ != '-')
        goto bad;
    int mo = digits(&p, 2);
    if (mo < 1 || mo > 12 || *p++ != '-')
        goto bad;
    int d = digits(&p, 2);
    if (d < 1 || d > days_in_month(y, (unsigned)mo))
        goto bad;
    int64_t t = lv_days_from_civil(y, (unsigned)mo, (unsigned)d) * MS_PER_DAY;
    if (p == end) {
        *ms = t;
        return 0;
    }
    if (*p != 'T' && *p != 't' && *p != ' ')
        goto bad;
    p++;
    int h = digits(&p, 2);
    if (h < 0 || h > 23 || *p++ != ':')
        goto bad;
    int mi = digits(&p, 2);
    if (mi < 0 || mi > 59 || *p++ != ':')
        goto bad;
    int sec = digits(&p, 2);
    if (sec < 0 || sec > 60) /* 60: a leap second, read as the next second */
        goto bad;
    t += h * MS_PER_HOUR + mi * MS_PER_MIN + sec * MS_PER_SEC;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !isdigit((unsigned char)*p))
            goto bad;
        int scale = 100;
        while (p < end && isdigit((unsigned char)*p)) {
            t += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }
    if (p < end && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < end && (*p == '+' || *p == '-')) {
        int sign = *p++ == '-' ? -1 : 1;
        int oh = digits(&p, 2), om = 0;
        if (oh < 0 || oh > 23)
            goto bad;
        if (p < end && *p == ':')
            p++;
        if (p < end) {
            om = digits(&p, 2);
            if (om < 0 || om > 59)
                goto bad;
        }
        t -= sign * (oh * MS_PER_HOUR + om * MS_PER_MIN);
    } else {
        goto bad; /* a time without a zone would mean the local zone: refuse to guess */
    }
    if (p != end)
        goto bad;
    *ms = t;
    return 0;
bad:
    lv_fail(err, LV_EINVAL,
            "\"%.*s\" is not a time: want RFC 3339 (2026-01-02T03:04:05Z, with an offset or Z), "
            "a date (2026-01-02), now, yesterday, latest or \"N minutes ago\"",
            (int)(end - s), s);
    return -1;
}

static const struct unit {
    const char *name;
    int64_t ms;
} units[] = {
    {"ms", 1},
    {"msec", 1},
    {"msecs", 1},
    {"millisecond", 1},
    {"milliseconds", 1},
    {"s", MS_PER_SEC},
    {"sec", MS_PER_SEC},
    {"secs", MS_PER_SEC},
    {"second", MS_PER_SEC},
    {"seconds", MS_PER_SEC},
    {"m", MS_PER_MIN},
    {"min", MS_PER_MIN},
    {"mins", MS_PER_MIN},
    {"minute", MS_PER_MIN},
    {"minutes", MS_PER_MIN},
    {"h", MS_PER_HOUR},
    {"hr", MS_PER_HOUR},
    {"hrs", MS_PER_HOUR},
    {"hour", MS_PER_HOUR},
    {"hours", MS_PER_HOUR},
    {"d", MS_PER_DAY},
    {"day", MS_PER_DAY},
    {"days", MS_PER_DAY},
    {"w", 7 * MS_PER_DAY},
    {"wk", 7 * MS_PER_DAY},
    {"wks", 7 * MS_PER_DAY},
    {"week", 7 * MS_PER_DAY},
    {"weeks", 7 * MS_PER_DAY},
};

/* "N UNIT ago" / "NUNIT ago" between s and end. 1 parsed, 0 not this form, -1 error (err set). */
static int parse_ago(const char *s, const char *end, int64_t now_ms, int64_t *ms, char *err)
{
    if (end - s < 4 || strncasecmp(end - 3, "ago", 3) != 0 || !isdigit((unsigned char)*s))
        return 0;
    const char *p = s;
    double n = 0;
    while (p < end && isdigit((unsigned char)*p))
        n = n * 10 + (*p++ - '0');
    if (p < end && *p == '.') {
        p++;
        double scale = 0.1;
        while (p < end && isdigit((unsigned char)*p)) {
            n += (*p++ - '0') * scale;
            scale /= 10;
        }
    }
    while (p < end && isspace((unsigned char)*p))
        p++;
    const char *u = p;
    while (p < end && isalpha((unsigned char)*p))
        p++;
    size_t ulen = (size_t)(p - u);
    const char *ago = p;
    while (ago < end && isspace((unsigned char)*ago))
        ago++;
    if (ago == p || end - ago != 3) /* "ago" must be its own word */
        goto bad;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strlen(units[i].name) == ulen && strncasecmp(units[i].name, u, ulen) == 0) {
            double off = n * (double)units[i].ms;
            if (off > 1e15) /* about 31,700 years: nothing is that old */
                goto bad;
            *ms = now_ms - (int64_t)llround(off);
            return 1;
        }
    }
bad:
    lv_fail(err, LV_EINVAL,
            "\"%.*s\": want \"N UNIT ago\" with UNIT one of ms, s, sec, second(s), m, min, "
            "minute(s), h, hr, hour(s), d, day(s), w, wk, week(s)",
            (int)(end - s), s);
    return -1;
}

static void trim(const char **s, const char **end)
{
    while (**s && isspace((unsigned char)**s))
        (*s)++;
    *end = *s + strlen(*s);
    while (*end > *s && isspace((unsigned char)(*end)[-1]))
        (*end)--;
}

int lv_time_is_latest(const char *s)
{
    const char *end;
    trim(&s, &end);
    return end - s == 6 && strncasecmp(s, "latest", 6) == 0;
}

lv_err lv_time_parse(const char *s, int64_t now_ms, int64_t *ms, char *err)
{
    if (!s)
        return lv_fail(err, LV_EINVAL, "no time given");
    const char *end;
    trim(&s, &end);
    size_t n = (size_t)(end - s);
    if (n == 3 && strncasecmp(s, "now", 3) == 0) {
        *ms = now_ms;
        return LV_OK;
    }
    if (n == 9 && strncasecmp(s, "yesterday", 9) == 0) {
        *ms = now_ms - MS_PER_DAY;
        return LV_OK;
    }
    int rc = parse_ago(s, end, now_ms, ms, err);
    if (rc != 0)
        return rc > 0 ? LV_OK : LV_EINVAL;
    return parse_rfc3339(s, end, ms, err) == 0 ? LV_OK : LV_EINVAL;
}
