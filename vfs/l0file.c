/*
 * l0file: one sync window as a level-0 LTX file in memory (the rules are in l0file.h).
 * Threads: no state.
 */
#include "l0file.h"

#include <string.h>

#include "alloc.h"

typedef struct membuf {
    uint8_t *data;
    size_t size, cap;
} membuf;

static lv_err mem_write(void *ctx, const void *buf, size_t n, char *err)
{
    membuf *m = ctx;
    if (m->size + n > m->cap) {
        size_t nc = m->cap ? m->cap : 4096;
        while (nc < m->size + n)
            nc *= 2;
        uint8_t *nd = lv_realloc(m->data, nc);
        if (!nd)
            return lv_fail(err, LV_ENOMEM, "level-0 file: out of memory at %zu bytes", nc);
        m->data = nd;
        m->cap = nc;
    }
    memcpy(m->data + m->size, buf, n);
    m->size += n;
    return LV_OK;
}

void l0file_result_free(l0file_result *r)
{
    lv_free(r->data);
    memset(r, 0, sizeof *r);
}

/* The input rules of l0file.h. */
static lv_err check_input(const l0file_input *in, uint32_t lock, char *err)
{
    if (!ltx_page_size_valid(in->page_size))
        return lv_fail(err, LV_EINVAL, "level-0 file: invalid page size %u", in->page_size);
    if (in->commit == 0)
        return lv_fail(err, LV_EINVAL, "level-0 file: commit of 0 pages");
    if (in->base_txid == 0 && in->base_commit != 0)
        return lv_fail(err, LV_EINVAL, "level-0 file: a new database with %u base pages",
                       in->base_commit);
    if (in->base_txid != 0 && !in->no_checksum && !in->base_page_checksum)
        return lv_fail(err, LV_EINVAL, "level-0 file: no base page checksum callback");
    if (in->n && (!in->pgnos || !in->pages))
        return lv_fail(err, LV_EINVAL, "level-0 file: pages missing");
    for (size_t i = 0; i < in->n; i++) {
        uint32_t p = in->pgnos[i];
        if (p == 0 || p > in->commit || p == lock || (i > 0 && p <= in->pgnos[i - 1]))
            return lv_fail(err, LV_EINVAL,
                           "level-0 file: dirty page %u (index %zu) is 0, the lock page, beyond "
                           "commit %u or out of order",
                           p, i, in->commit);
    }
    return LV_OK;
}

lv_err l0file_encode(const l0file_input *in, l0file_result *out, char *err)
{
    memset(out, 0, sizeof *out);
    uint32_t lock = ltx_lock_pgno(in->page_size);
    lv_err rc = check_input(in, lock, err);
    if (rc)
        return rc;
    int snapshot = in->base_txid == 0;
    size_t ps = in->page_size;
    membuf m = {0};
    ltx_encoder *e = NULL;
    uint8_t *zero = NULL;

    /* The new database checksum, as a raw XOR; bit 63 is forced at the end. */
    uint64_t sum = 0;
    int no_sum = in->no_checksum && !snapshot;
    if (!snapshot && !no_sum) {
        sum = in->base_checksum;
        for (size_t i = 0; i < in->n; i++) {
            uint32_t p = in->pgnos[i];
            uint64_t old;
            if (p <= in->base_commit) {
                rc = in->base_page_checksum(in->ctx, p, &old, err);
                if (rc)
                    goto done;
            } else {
                old = ltx_zero_pages_checksum(p, p, in->page_size);
            }
            sum ^= old ^ ltx_page_checksum(p, in->pages + i * ps, in->page_size);
        }
        /* Growth: the new pages count as zero pages until written (the dirty ones were swapped
         * in above). */
        if (in->commit > in->base_commit)
            sum ^= ltx_zero_pages_checksum(in->base_commit + 1, in->commit, in->page_size);
        /* Shrink: the pages beyond the new end go out. */
        for (uint32_t p = in->commit + 1; p <= in->base_commit && p != 0; p++) {
            if (p == lock)
                continue;
            uint64_t old;
            rc = in->base_page_checksum(in->ctx, p, &old, err);
            if (rc)
                goto done;
            sum ^= old;
        }
        sum |= LTX_CHECKSUM_FLAG;
    }

    ltx_header h;
    memset(&h, 0, sizeof h);
    h.page_size = in->page_size;
    h.commit = in->commit;
    h.min_txid = h.max_txid = in->base_txid + 1;
    h.timestamp = in->timestamp_ms;
    h.pre_apply_checksum = snapshot || no_sum ? 0 : in->base_checksum;
    if (no_sum)
        h.flags = LTX_HEADER_FLAG_NO_CHECKSUM;
    rc = ltx_encoder_open(&e, &h, mem_write, &m, err);
    if (rc)
        goto done;
    if (snapshot) {
        zero = lv_calloc(1, ps);
        if (!zero) {
            rc = lv_fail(err, LV_ENOMEM, "level-0 file: out of memory");
            goto done;
        }
        size_t i = 0;
        for (uint32_t p = 1; p <= in->commit; p++) {
            if (p == lock)
                continue;
            const uint8_t *img = zero;
            if (i < in->n && in->pgnos[i] == p)
                img = in->pages + i++ * ps;
            rc = ltx_encoder_page(e, p, img, err);
            if (rc)
                goto done;
        }
        sum = ltx_encoder_pages_checksum(e);
    } else {
        for (size_t i = 0; i < in->n; i++) {
            rc = ltx_encoder_page(e, in->pgnos[i], in->pages + i * ps, err);
            if (rc)
                goto done;
        }
    }
    ltx_encoder_set_post_apply(e, sum);
    rc = ltx_encoder_finish(e, &out->trailer, err);
    if (rc)
        goto done;
    out->data = m.data;
    out->size = m.size;
    out->header = h;
    out->checksum = sum;
    m.data = NULL;
done:
    ltx_encoder_free(e);
    lv_free(zero);
    lv_free(m.data);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}
