/*
 * ltx_db: the bridge between LTX and SQLite database files: a file's geometry, its database
 * checksum, and a snapshot of it. Files are read with pread in runs of pages, so these work on
 * databases of any size with a fixed amount of memory.
 */
#include "ltx.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "ltx_private.h"

#define RUN_BYTES (1024 * 1024) /* read this much at a time */

typedef unsigned long long ull;

lv_err ltx_db_geometry(int fd, uint32_t *page_size, uint32_t *page_count, char *err)
{
    struct stat st;
    *page_size = 0;
    *page_count = 0;
    if (fstat(fd, &st) != 0)
        return lv_fail(err, LV_EIO, "stat: %s", strerror(errno));
    if (st.st_size == 0)
        return LV_OK; /* an empty file is an empty database */
    uint8_t hdr[100];
    if (st.st_size < (off_t)sizeof hdr)
        return lv_fail(err, LV_ECORRUPT, "not a SQLite database: %lld bytes",
                       (long long)st.st_size);
    lv_err rc = ltx_pread_full(fd, hdr, sizeof hdr, 0, err);
    if (rc)
        return rc;
    if (memcmp(hdr, "SQLite format 3", 16) != 0)
        return lv_fail(err, LV_ECORRUPT, "not a SQLite database: bad header string");
    uint32_t ps = ltx_be16(hdr + 16);
    if (ps == 1)
        ps = 65536;
    if (!ltx_page_size_valid(ps))
        return lv_fail(err, LV_ECORRUPT, "SQLite header: invalid page size %u", ps);
    if ((uint64_t)st.st_size % ps != 0)
        return lv_fail(err, LV_ECORRUPT, "file size %lld is not a multiple of the page size %u",
                       (long long)st.st_size, ps);
    if ((uint64_t)st.st_size / ps > UINT32_MAX)
        return lv_fail(err, LV_EUNSUPPORTED, "database of %lld bytes has too many pages",
                       (long long)st.st_size);
    *page_size = ps;
    *page_count = (uint32_t)((uint64_t)st.st_size / ps);
    return LV_OK;
}

/* Calls fn for every page 1..page_count but the lock page, reading RUN_BYTES at a time. */
typedef lv_err (*page_fn)(void *ctx, uint32_t pgno, const uint8_t *page, char *err);

static lv_err each_page(int fd, uint32_t ps, uint32_t page_count, page_fn fn, void *ctx, char *err)
{
    uint32_t per_run = RUN_BYTES / ps ? RUN_BYTES / ps : 1;
    uint8_t *buf = lv_malloc((size_t)per_run * ps);
    if (!buf)
        return lv_fail(err, LV_ENOMEM, "out of memory");
    uint32_t lock = ltx_lock_pgno(ps);
    lv_err rc = LV_OK;
    for (uint32_t first = 1; first <= page_count;) {
        uint32_t n = page_count - first + 1 < per_run ? page_count - first + 1 : per_run;
        if ((rc = ltx_pread_full(fd, buf, (size_t)n * ps, (uint64_t)(first - 1) * ps, err)) !=
            LV_OK)
            goto done;
        for (uint32_t i = 0; i < n; i++) {
            if (first + i == lock)
                continue;
            if ((rc = fn(ctx, first + i, buf + (size_t)i * ps, err)) != LV_OK)
                goto done;
        }
        first += n;
    }
done:
    lv_free(buf);
    return rc;
}

typedef struct {
    uint32_t ps;
    uint64_t sum;
} sum_ctx;

static lv_err sum_page(void *ctx, uint32_t pgno, const uint8_t *page, char *err)
{
    (void)err;
    sum_ctx *s = ctx;
    s->sum = ltx_db_checksum_update(s->sum, 0, ltx_page_checksum(pgno, page, s->ps));
    return LV_OK;
}

lv_err ltx_db_checksum_fd(int fd, uint32_t page_size, uint32_t page_count, uint64_t *out, char *err)
{
    if (!ltx_page_size_valid(page_size) && page_count > 0)
        return lv_fail(err, LV_EINVAL, "invalid page size %u", page_size);
    sum_ctx s = {page_size, 0};
    lv_err rc = page_count ? each_page(fd, page_size, page_count, sum_page, &s, err) : LV_OK;
    if (rc == LV_OK)
        *out = page_count ? s.sum : 0;
    return rc;
}

static lv_err encode_page(void *ctx, uint32_t pgno, const uint8_t *page, char *err)
{
    return ltx_encoder_page(ctx, pgno, page, err);
}

lv_err ltx_encode_db(int db_fd, int64_t timestamp_ms, ltx_write_fn write, void *ctx, ltx_header *h,
                     ltx_trailer *t, char *err)
{
    uint32_t ps, count;
    lv_err rc = ltx_db_geometry(db_fd, &ps, &count, err);
    if (rc)
        return rc;
    if (count == 0)
        return lv_fail(err, LV_EINVAL, "the database is empty: nothing to snapshot");
    ltx_header hdr = {
        .page_size = ps, .commit = count, .min_txid = 1, .max_txid = 1, .timestamp = timestamp_ms};
    ltx_encoder *e;
    if ((rc = ltx_encoder_open(&e, &hdr, write, ctx, err)) != LV_OK)
        return rc;
    if ((rc = each_page(db_fd, ps, count, encode_page, e, err)) == LV_OK &&
        (rc = ltx_encoder_finish(e, t, err)) == LV_OK && h)
        *h = hdr;
    ltx_encoder_free(e);
    return rc;
}
