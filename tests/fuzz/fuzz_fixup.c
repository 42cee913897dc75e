/* fuzz_fixup: rewrites the checksums of a fuzzed LTX file (see fuzz_fixup.h). */
#include "fuzz_fixup.h"

#include <stdlib.h>
#include <string.h>

#include "crc64.h"
#include "ltx.h"

/* Incremental post-apply is worked out only when the database is at most this big. */
#define MAX_SIM_BYTES (4u << 20)

static const uint8_t zero_page[LTX_MAX_PAGE_SIZE];

static uint32_t get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* The state of one walk over the copy. */
typedef struct walk {
    ltx_header h;
    uint8_t *out; /* the copy being fixed */
    size_t n;
    uint8_t *page;   /* scratch: one decoded page */
    uint32_t *pgnos; /* each frame's pgno and page checksum, in file order */
    uint64_t *sums;
    size_t frames;
    size_t end;   /* offset of the zero page header */
    uint64_t crc; /* the file checksum's CRC so far */
} walk;

/* From the first frame to the zero page header, hashing as the file checksum does; 0 or -1. */
static int walk_frames(walk *w)
{
    const size_t fh = LTX_PAGE_HEADER_SIZE + LTX_SIZE_PREFIX_SIZE;
    uint32_t ps = w->h.page_size;
    for (size_t pos = LTX_HEADER_SIZE;;) {
        if (w->n - pos < LTX_PAGE_HEADER_SIZE)
            return -1;
        const uint8_t *f = w->out + pos;
        uint32_t pgno = get_be32(f);
        uint16_t flags = (uint16_t)(f[4] << 8 | f[5]);
        if (pgno == 0 && flags == 0) {
            w->end = pos;
            return 0;
        }
        if (flags != LTX_PAGE_FLAG_SIZE || w->n - pos < fh)
            return -1;
        size_t len = fh + get_be32(f + LTX_PAGE_HEADER_SIZE);
        if (len > w->n - pos || ltx_frame_decode(f, len, ps, 0, w->page, NULL, NULL) != LV_OK)
            return -1;
        w->crc = crc64_update(w->crc, f, fh);
        w->crc = crc64_update(w->crc, w->page, ps);
        w->pgnos[w->frames] = pgno;
        w->sums[w->frames++] = ltx_page_checksum(pgno, w->page, ps);
        pos += len;
    }
}

/* The checksum of page pgno after the apply: from the file, else the base, else a zero hole. */
static uint64_t page_after(const fixup_base *b, const uint64_t *from_file, uint32_t pgno,
                           uint32_t ps)
{
    if (from_file[pgno])
        return from_file[pgno];
    if (pgno <= b->page_count)
        return ltx_page_checksum(pgno, b->pages + (size_t)(pgno - 1) * ps, ps);
    return ltx_page_checksum(pgno, zero_page, ps);
}

/* The database checksum the base has after the file is applied; -1 if too big to work out. */
static int incremental_post(const walk *w, const fixup_base *b, uint64_t *out)
{
    uint32_t ps = w->h.page_size, commit = w->h.commit, lock = ltx_lock_pgno(ps);
    if ((uint64_t)commit * ps > MAX_SIM_BYTES || (b->page_count && b->page_size != ps))
        return -1;
    uint64_t *from_file = calloc((size_t)commit + 1, sizeof *from_file);
    if (!from_file)
        abort();
    for (size_t i = 0; i < w->frames; i++)
        if (w->pgnos[i] <= commit)
            from_file[w->pgnos[i]] = w->sums[i];
    uint64_t sum = 0;
    for (uint32_t pgno = 1; pgno <= commit; pgno++)
        if (pgno != lock)
            sum ^= page_after(b, from_file, pgno, ps);
    free(from_file);
    *out = LTX_CHECKSUM_FLAG | sum;
    return 0;
}

/* Rewrites the post-apply checksum where it can be known. */
static void fix_post_apply(const walk *w, const fixup_base *b)
{
    uint64_t post = 0;
    if (ltx_header_no_checksum(&w->h))
        return;
    if (ltx_header_is_snapshot(&w->h)) {
        for (size_t i = 0; i < w->frames; i++)
            post ^= w->sums[i];
        post |= LTX_CHECKSUM_FLAG;
    } else if (incremental_post(w, b, &post) != 0) {
        return;
    }
    put_be64(w->out + w->n - LTX_TRAILER_SIZE, post);
}

/* Header, frames, post-apply and file checksum, in the order the file checksum needs them. */
static int fix(walk *w, const fixup_base *b)
{
    if (!ltx_header_is_snapshot(&w->h) && !ltx_header_no_checksum(&w->h)) {
        put_be64(w->out + 40, b->page_count ? b->checksum : LTX_CHECKSUM_FLAG);
        if (ltx_header_decode(&w->h, w->out, w->n, NULL) != LV_OK)
            return -1;
    }
    w->crc = crc64_update(0, w->out, LTX_HEADER_SIZE);
    if (walk_frames(w) != 0 || w->n - LTX_TRAILER_SIZE < w->end + LTX_PAGE_HEADER_SIZE)
        return -1;
    fix_post_apply(w, b);
    w->crc = crc64_update(w->crc, w->out + w->end, w->n - 8 - w->end);
    put_be64(w->out + w->n - 8, LTX_CHECKSUM_FLAG | w->crc);
    return 0;
}

uint8_t *fuzz_fixup(const uint8_t *in, size_t n, const fixup_base *base)
{
    walk w = {.n = n};
    if (n < LTX_HEADER_SIZE + LTX_PAGE_HEADER_SIZE + LTX_TRAILER_SIZE ||
        ltx_header_decode(&w.h, in, n, NULL) != LV_OK)
        return NULL;
    size_t max_frames = (n - LTX_HEADER_SIZE) / (LTX_PAGE_HEADER_SIZE + LTX_SIZE_PREFIX_SIZE) + 1;
    w.out = malloc(n);
    w.page = malloc(w.h.page_size);
    w.pgnos = malloc(max_frames * sizeof *w.pgnos);
    w.sums = malloc(max_frames * sizeof *w.sums);
    if (!w.out || !w.page || !w.pgnos || !w.sums)
        abort();
    memcpy(w.out, in, n);
    int ok = fix(&w, base) == 0 && memcmp(w.out, in, n) != 0;
    free(w.page);
    free(w.pgnos);
    free(w.sums);
    if (!ok) {
        free(w.out);
        return NULL;
    }
    return w.out;
}
