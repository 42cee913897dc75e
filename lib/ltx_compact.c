/*
 * ltx_compact: merges contiguous LTX files into one (see ltx.h for the rules).
 *
 * A k-way merge over streaming decoders: every input is positioned on its next page; the smallest
 * pgno among them is written, taken from the newest input that has it, and every input holding
 * that pgno moves on. Inputs are in ascending pgno order, so one pass suffices and memory is one
 * page (and one read buffer) per input. Each input is verified to its last byte before the output
 * is finished, so a corrupt input fails the compaction.
 */
#include "ltx.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"

typedef unsigned long long ull;

typedef struct input {
    ltx_decoder *d;
    const char *name;
    uint32_t pgno; /* the page it is positioned on; 0 when it has ended */
    const uint8_t *page;
} input;

static const char *name_of(const ltx_source *s, size_t i, char *buf, size_t n)
{
    if (s->name)
        return s->name;
    snprintf(buf, n, "input %zu", i + 1);
    return buf;
}

static lv_err advance(input *in, char *err)
{
    ltx_frame_info fi;
    lv_err rc = ltx_decoder_next(in->d, &fi, &in->page, err);
    if (rc)
        return lv_wrap(err, rc, "%s: ", in->name);
    in->pgno = fi.pgno;
    return LV_OK;
}

static lv_err check_inputs(const input *in, size_t n, char *err)
{
    const ltx_header *first = ltx_decoder_header(in[0].d);
    for (size_t i = 1; i < n; i++) {
        const ltx_header *prev = ltx_decoder_header(in[i - 1].d);
        const ltx_header *h = ltx_decoder_header(in[i].d);
        if (h->page_size != first->page_size)
            return lv_fail(err, LV_EINVAL, "%s: page size %u differs from %s's %u", in[i].name,
                           h->page_size, in[0].name, first->page_size);
        if (h->min_txid != prev->max_txid + 1)
            return lv_fail(err, LV_EINVAL,
                           "non-contiguous transaction ids: %s (%016llx-%016llx) does not follow "
                           "%s (%016llx-%016llx)",
                           in[i].name, (ull)h->min_txid, (ull)h->max_txid, in[i - 1].name,
                           (ull)prev->min_txid, (ull)prev->max_txid);
    }
    return LV_OK;
}

lv_err ltx_compact(const ltx_source *inputs, size_t n, ltx_write_fn write, void *ctx,
                   ltx_header *h_out, ltx_trailer *t_out, char *err)
{
    if (n == 0)
        return lv_fail(err, LV_EINVAL, "compact: no input files");
    lv_err rc = LV_OK;
    ltx_encoder *e = NULL;
    char(*names)[32] = NULL;
    input *in = lv_calloc(n, sizeof *in);
    if (!in || !(names = lv_calloc(n, sizeof *names))) {
        rc = lv_fail(err, LV_ENOMEM, "compact: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        in[i].name = name_of(&inputs[i], i, names[i], sizeof names[i]);
        if ((rc = ltx_decoder_open(&in[i].d, inputs[i].read, inputs[i].ctx, err)) != LV_OK) {
            lv_wrap(err, rc, "%s: ", in[i].name);
            goto done;
        }
    }
    if ((rc = check_inputs(in, n, err)) != LV_OK)
        goto done;

    const ltx_header *first = ltx_decoder_header(in[0].d);
    const ltx_header *last = ltx_decoder_header(in[n - 1].d);
    uint32_t flags = 0;
    for (size_t i = 0; i < n; i++)
        flags |= ltx_decoder_header(in[i].d)->flags & LTX_HEADER_FLAG_NO_CHECKSUM;
    ltx_header h = {
        .flags = flags,
        .page_size = first->page_size,
        .commit = last->commit,
        .min_txid = first->min_txid,
        .max_txid = last->max_txid,
        .timestamp = last->timestamp,
        .pre_apply_checksum = flags ? 0 : first->pre_apply_checksum,
    };
    if ((rc = ltx_encoder_open(&e, &h, write, ctx, err)) != LV_OK)
        goto done;

    for (size_t i = 0; i < n; i++)
        if ((rc = advance(&in[i], err)) != LV_OK)
            goto done;
    for (;;) {
        uint32_t pgno = 0;
        size_t newest = 0;
        for (size_t i = 0; i < n; i++)
            if (in[i].pgno && (pgno == 0 || in[i].pgno <= pgno)) {
                pgno = in[i].pgno; /* ties go to the later input: the newest version */
                newest = i;
            }
        if (pgno == 0)
            break;
        if (pgno <= h.commit && (rc = ltx_encoder_page(e, pgno, in[newest].page, err)) != LV_OK)
            goto done;
        for (size_t i = 0; i < n; i++)
            if (in[i].pgno == pgno && (rc = advance(&in[i], err)) != LV_OK)
                goto done;
    }
    if (!flags)
        ltx_encoder_set_post_apply(e, ltx_decoder_trailer(in[n - 1].d)->post_apply_checksum);
    if ((rc = ltx_encoder_finish(e, t_out, err)) != LV_OK)
        goto done;
    if (h_out)
        *h_out = h;
done:
    ltx_encoder_free(e);
    if (in)
        for (size_t i = 0; i < n; i++)
            ltx_decoder_free(in[i].d);
    lv_free(in);
    lv_free(names);
    return rc;
}
