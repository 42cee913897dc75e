/* config: a database's VFS settings from the environment and its URI (see config.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

lv_err vconf_parse_duration(const char *s, int64_t *ms, char *err)
{
    char *end;
    errno = 0;
    double v = s && *s && !isspace((unsigned char)*s) ? strtod(s, &end) : -1;
    if (v < 0 || errno || !isfinite(v) || end == s)
        goto bad;
    double scale;
    if (!*end || strcmp(end, "s") == 0)
        scale = 1000;
    else if (strcmp(end, "ms") == 0)
        scale = 1;
    else if (strcmp(end, "us") == 0)
        scale = 0.001;
    else if (strcmp(end, "m") == 0)
        scale = 60000;
    else if (strcmp(end, "h") == 0)
        scale = 3600000;
    else
        goto bad;
    if (v * scale > 1e13) /* about 300 years */
        goto bad;
    *ms = (int64_t)llround(v * scale);
    return LV_OK;
bad:
    return lv_fail(err, LV_EINVAL, "\"%s\" is not a duration (want e.g. 250ms, 1s, 1.5s, 2m, 1h)",
                   s ? s : "");
}

lv_err vconf_parse_size(const char *s, uint64_t *bytes, char *err)
{
    char *end;
    errno = 0;
    unsigned long long v = s && isdigit((unsigned char)*s) ? strtoull(s, &end, 10) : 0;
    if (!s || !isdigit((unsigned char)*s) || errno)
        goto bad;
    unsigned shift = 0;
    if (!*end || strcasecmp(end, "b") == 0)
        shift = 0;
    else if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kb") == 0 || strcasecmp(end, "kib") == 0)
        shift = 10;
    else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mb") == 0 || strcasecmp(end, "mib") == 0)
        shift = 20;
    else if (strcasecmp(end, "g") == 0 || strcasecmp(end, "gb") == 0 || strcasecmp(end, "gib") == 0)
        shift = 30;
    else
        goto bad;
    if (v > (UINT64_MAX >> shift))
        goto bad;
    *bytes = (uint64_t)v << shift;
    return LV_OK;
bad:
    return lv_fail(err, LV_EINVAL, "\"%s\" is not a size (want e.g. 1048576, 64k, 10M, 1G)",
                   s ? s : "");
}

lv_err vconf_parse_bool(const char *s, int *v, char *err)
{
    static const char *yes[] = {"1", "true", "on", "yes"}, *no[] = {"0", "false", "off", "no"};
    for (size_t i = 0; s && i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *v = 1;
            return LV_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *v = 0;
            return LV_OK;
        }
    }
    return lv_fail(err, LV_EINVAL, "\"%s\" is not a boolean (want 1/0, true/false, on/off)",
                   s ? s : "");
}

lv_err vconf_parse_log_level(const char *s, vconf_log_level *v, char *err)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; s && i < 4; i++) {
        if (strcasecmp(s, names[i]) == 0 || (i == 1 && strcasecmp(s, "warning") == 0)) {
            *v = (vconf_log_level)i;
            return LV_OK;
        }
    }
    return lv_fail(err, LV_EINVAL, "\"%s\" is not a log level (want error, warn, info or debug)",
                   s ? s : "");
}

static lv_err copy_path(char *dst, size_t cap, const char *v, char *err)
{
    size_t n = strlen(v);
    if (n >= cap)
        return lv_fail(err, LV_EINVAL, "longer than %zu bytes", cap - 1);
    memcpy(dst, v, n + 1);
    return LV_OK;
}

typedef enum kind { K_STRING, K_DURATION, K_SYNC, K_SIZE, K_BOOL, K_LOG } kind;

static const struct setting {
    const char *env;
    const char *uri; /* NULL: environment only */
    kind kind;
    size_t off;
    size_t cap; /* strings */
} settings[] = {
    {"LITESTREAM_REPLICA_URL", "replica", K_STRING, offsetof(vconf, replica),
     sizeof(((vconf *)0)->replica)},
    {"LITESTREAM_POLL_INTERVAL", "poll_interval", K_DURATION, offsetof(vconf, poll_interval_ms), 0},
    {"LITESTREAM_CACHE_SIZE", "cache_size", K_SIZE, offsetof(vconf, cache_size), 0},
    {"LITESTREAM_OPEN_TIMEOUT", "open_timeout", K_DURATION, offsetof(vconf, open_timeout_ms), 0},
    {"LITESTREAM_RETRY_TIMEOUT", "retry_timeout", K_DURATION, offsetof(vconf, retry_timeout_ms), 0},
    {"LITESTREAM_WRITE_ENABLED", "write", K_BOOL, offsetof(vconf, write), 0},
    {"LITESTREAM_SYNC_INTERVAL", "sync_interval", K_SYNC, offsetof(vconf, sync_interval_ms), 0},
    {"LITESTREAM_BUFFER_PATH", "buffer", K_STRING, offsetof(vconf, buffer),
     sizeof(((vconf *)0)->buffer)},
    {"LITESTREAM_BUFFER_MAX", "buffer_max", K_SIZE, offsetof(vconf, buffer_max), 0},
    {"LITESTREAM_LEASE_TTL", "lease_ttl", K_DURATION, offsetof(vconf, lease_ttl_ms), 0},
    {"LITESTREAM_COMPACTION", "compaction", K_BOOL, offsetof(vconf, compaction), 0},
    {"LITESTREAM_L1_INTERVAL", "l1_interval", K_DURATION, offsetof(vconf, level_interval_ms[1]), 0},
    {"LITESTREAM_L2_INTERVAL", "l2_interval", K_DURATION, offsetof(vconf, level_interval_ms[2]), 0},
    {"LITESTREAM_L3_INTERVAL", "l3_interval", K_DURATION, offsetof(vconf, level_interval_ms[3]), 0},
    {"LITESTREAM_SNAPSHOT_INTERVAL", "snapshot_interval", K_DURATION,
     offsetof(vconf, snapshot_interval_ms), 0},
    {"LITESTREAM_RETENTION", "retention", K_DURATION, offsetof(vconf, retention_ms), 0},
    {"LITESTREAM_L0_RETENTION", "l0_retention", K_DURATION, offsetof(vconf, l0_retention_ms), 0},
    {"LITESTREAM_HYDRATION_PATH", "hydration", K_STRING, offsetof(vconf, hydration),
     sizeof(((vconf *)0)->hydration)},
    {"LITESTREAM_HYDRATION_KEEP", "hydration_keep", K_BOOL, offsetof(vconf, hydration_keep), 0},
    {"LITESTREAM_LOG_LEVEL", NULL, K_LOG, offsetof(vconf, log_level), 0},
};

static lv_err set(vconf *c, const struct setting *s, const char *v, char *err)
{
    char *p = (char *)c + s->off;
    switch (s->kind) {
    case K_STRING:
        return copy_path(p, s->cap, v, err);
    case K_DURATION:
        return vconf_parse_duration(v, (int64_t *)(void *)p, err);
    case K_SYNC: /* as Litestream reads it: 0 is the default, a negative duration "on close only" */
        if (v[0] == '-') {
            int64_t ms;
            lv_err rc = vconf_parse_duration(v + 1, &ms, err);
            if (rc == LV_OK)
                *(int64_t *)(void *)p = -1;
            return rc;
        } else {
            lv_err rc = vconf_parse_duration(v, (int64_t *)(void *)p, err);
            if (rc == LV_OK && *(int64_t *)(void *)p == 0)
                *(int64_t *)(void *)p = 1000;
            return rc;
        }
    case K_SIZE:
        return vconf_parse_size(v, (uint64_t *)(void *)p, err);
    case K_BOOL:
        return vconf_parse_bool(v, (int *)(void *)p, err);
    case K_LOG:
        return vconf_parse_log_level(v, (vconf_log_level *)(void *)p, err);
    }
    return LV_EINVAL;
}

/* ${TMPDIR:-/tmp}/litestream-vfs-<uid>/<FNV-1a 64 of the replica URL>.wbuf */
static void default_buffer(vconf *c)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *s = c->replica; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > VCONF_PATH_MAX - 64)
        tmp = "/tmp";
    snprintf(c->buffer, sizeof c->buffer, "%s/litestream-vfs-%u/%016llx.wbuf", tmp,
             (unsigned)getuid(), (unsigned long long)h);
}

lv_err vconf_load(vconf *c, vconf_lookup_fn uri, void *uri_ctx, char *err)
{
    memset(c, 0, sizeof *c);
    c->poll_interval_ms = 1000;
    c->cache_size = 10u << 20;
    c->open_timeout_ms = 30000;
    c->retry_timeout_ms = 30000;
    c->sync_interval_ms = 1000;
    c->log_level = VCONF_LOG_WARN;
    c->buffer_max = 1u << 30;
    c->lease_ttl_ms = 30000;
    c->compaction = 1;
    c->level_interval_ms[1] = 30000;
    c->level_interval_ms[2] = 5 * 60000;
    c->level_interval_ms[3] = 3600000;
    c->snapshot_interval_ms = 24 * 3600000;
    c->retention_ms = 24 * 3600000;
    c->l0_retention_ms = 5 * 60000;
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        const struct setting *s = &settings[i];
        const char *v = getenv(s->env);
        if (v && *v && set(c, s, v, err) != LV_OK)
            return lv_wrap(err, LV_EINVAL, "%s: ", s->env);
        v = s->uri && uri ? uri(uri_ctx, s->uri) : NULL;
        if (v && set(c, s, v, err) != LV_OK)
            return lv_wrap(err, LV_EINVAL, "URI parameter %s: ", s->uri);
    }
    if (!c->replica[0])
        return lv_fail(err, LV_EINVAL,
                       "no replica: set LITESTREAM_REPLICA_URL or open with the URI parameter "
                       "replica=s3://bucket/path (or file:///dir)");
    if (c->poll_interval_ms < 1)
        return lv_fail(err, LV_EINVAL, "the poll interval must be at least 1ms");
    if (c->retry_timeout_ms < 1 || c->retry_timeout_ms > UINT32_MAX)
        return lv_fail(err, LV_EINVAL, "the retry timeout must be between 1ms and 49 days");
    if (c->lease_ttl_ms < 1000)
        return lv_fail(err, LV_EINVAL, "the lease TTL must be at least 1s");
    if (!c->buffer[0])
        default_buffer(c);
    return LV_OK;
}
