/*
 * ltx_apply: applies an LTX stream to a database file, keeping the database checksum up to date
 * incrementally (see ltx.h). For each page: the old version's checksum out, the new one's in;
 * at the end, the pages cut off by a shrinking commit out. The new page's checksum costs nothing:
 * it is the change in the decoder's running fold.
 *
 * Crash ordering: pages are written in place and the file is truncated last, so a crash part-way
 * leaves a database that is neither the old nor the new state. The caller owns atomicity (apply
 * to a copy and rename, or restore from scratch): this function is for restore and hydration.
 */
#include "ltx.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "ltx_private.h"

typedef unsigned long long ull;

/* The database checksum with pgno's current version taken out (if it exists in the file). */
static lv_err take_out(int fd, uint32_t pgno, uint32_t ps, uint8_t *scratch, uint64_t *sum,
                       char *err)
{
    lv_err rc = ltx_pread_full(fd, scratch, ps, (uint64_t)(pgno - 1) * ps, err);
    if (rc == LV_OK)
        *sum = ltx_db_checksum_update(*sum, ltx_page_checksum(pgno, scratch, ps), 0);
    return rc;
}

lv_err ltx_apply(int db_fd, ltx_read_fn read, void *ctx, uint64_t *db_checksum, ltx_header *h_out,
                 char *err)
{
    ltx_decoder *d = NULL;
    uint8_t *scratch = NULL;
    lv_err rc = ltx_decoder_open(&d, read, ctx, err);
    if (rc)
        return rc;
    const ltx_header *h = ltx_decoder_header(d);
    uint32_t ps = h->page_size, lock = ltx_lock_pgno(ps);
    int snapshot = ltx_header_is_snapshot(h), tracked = !ltx_header_no_checksum(h);

    struct stat st;
    if (fstat(db_fd, &st) != 0) {
        rc = lv_fail(err, LV_EIO, "database: stat: %s", strerror(errno));
        goto done;
    }
    if (st.st_size > 0) {
        uint32_t db_ps, db_pages;
        if ((rc = ltx_db_geometry(db_fd, &db_ps, &db_pages, err)) != LV_OK)
            goto done;
        if (db_ps != ps && !snapshot) { /* a snapshot may change the page size */
            rc = lv_fail(err, LV_EINVAL, "database page size is %u, the LTX file's is %u", db_ps,
                         ps);
            goto done;
        }
    }
    uint32_t old_count = (uint32_t)((uint64_t)st.st_size / ps);
    uint64_t sum = *db_checksum;
    if (snapshot) {
        sum = 0; /* a snapshot replaces every page */
    } else if (tracked && ltx_db_checksum_update(sum, 0, 0) != h->pre_apply_checksum) {
        rc = lv_fail(err, LV_ECHECKSUM, "pre-apply checksum mismatch: %016llx <> %016llx",
                     (ull)ltx_db_checksum_update(sum, 0, 0), (ull)h->pre_apply_checksum);
        goto done;
    }
    /* Growth the file does not carry (pages past the old end it skips) reads back as zeros, so
     * those pages count as zero pages: next_new is the first one not yet accounted for. */
    uint64_t next_new = (uint64_t)old_count + 1;
    if (!(scratch = lv_malloc(ps))) {
        rc = lv_fail(err, LV_ENOMEM, "apply: out of memory");
        goto done;
    }

    for (;;) {
        ltx_frame_info fi;
        const uint8_t *page;
        uint64_t before = ltx_decoder_pages_checksum(d);
        if ((rc = ltx_decoder_next(d, &fi, &page, err)) != LV_OK) {
            lv_wrap(err, rc, "database partly written: ");
            goto done;
        }
        if (fi.pgno == 0)
            break;
        if (!snapshot && fi.pgno <= old_count &&
            (rc = take_out(db_fd, fi.pgno, ps, scratch, &sum, err)) != LV_OK)
            goto done;
        if (!snapshot && fi.pgno >= next_new) {
            sum = ltx_db_checksum_update(
                sum, 0, ltx_zero_pages_checksum((uint32_t)next_new, fi.pgno - 1, ps));
            next_new = fi.pgno + 1;
        }
        if ((rc = ltx_pwrite_full(db_fd, page, ps, (uint64_t)(fi.pgno - 1) * ps, err)) != LV_OK)
            goto done;
        /* The new page's checksum is the change in the decoder's fold (bit 63 is restored). */
        sum = ltx_db_checksum_update(sum, 0, before ^ ltx_decoder_pages_checksum(d));
    }
    if (!snapshot && next_new <= h->commit)
        sum = ltx_db_checksum_update(sum, 0,
                                     ltx_zero_pages_checksum((uint32_t)next_new, h->commit, ps));
    if (!snapshot)
        for (uint32_t pgno = h->commit + 1; pgno <= old_count; pgno++)
            if (pgno != lock && (rc = take_out(db_fd, pgno, ps, scratch, &sum, err)) != LV_OK)
                goto done;
    if ((uint64_t)st.st_size != (uint64_t)h->commit * ps &&
        ftruncate(db_fd, (off_t)((uint64_t)h->commit * ps)) != 0) {
        rc = lv_fail(err, LV_EIO, "database: truncate to %u pages: %s", h->commit, strerror(errno));
        goto done;
    }
    sum = ltx_db_checksum_update(sum, 0, 0);
    if (tracked && sum != ltx_decoder_trailer(d)->post_apply_checksum) {
        rc = lv_fail(err, LV_ECHECKSUM, "post-apply checksum mismatch: %016llx <> %016llx",
                     (ull)sum, (ull)ltx_decoder_trailer(d)->post_apply_checksum);
        goto done;
    }
    *db_checksum = sum;
    if (h_out)
        *h_out = *h;
done:
    lv_free(scratch);
    ltx_decoder_free(d);
    return rc;
}
