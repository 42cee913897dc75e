/*
 * replica: the public face of the replica module (replica.h): opening, names and keys, and the
 * operations both backends share, dispatched to replica_file.c or replica_s3.c. The page-index
 * fetch (replica_fetch_meta) lives here, written once over the backends' read_many:
 *
 *   round 1, every file at once:
 *     size <= REPLICA_INDEX_TAIL   [0, size)                      the whole file
 *     otherwise                    [0, HEAD) and [size - TAIL, size)
 *   from the tail: the trailer and the index's length field (ltx_index_locate) give the index's
 *   offset; when the index starts before the tail fetched,
 *   round 2, only for those files, at once:  [index offset, size - TAIL)
 *
 * so any number of files costs two round trips at most (one when every index fits the tail).
 *
 * Threads: see replica_private.h; nothing here keeps state between calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "replica_private.h"

lv_err replica_open(const char *url, const replica_options *opts, replica **out, char *err)
{
    *out = NULL;
    lv_err rc = LV_OK;
    lv_buf d;
    lv_buf_init(&d);
    replica *r = lv_calloc(1, sizeof *r);
    if (!r)
        return lv_fail(err, LV_ENOMEM, "replica %s: out of memory", url);
    if ((rc = replica_url_parse(url, &r->url, err)) != LV_OK)
        goto done;
    r->kind = r->url.kind;
    if (r->kind == REPLICA_S3) {
        s3_config cfg;
        replica_url_s3_config(&r->url, opts ? opts->s3 : NULL, &cfg);
        if ((rc = s3_client_new(&cfg, &r->s3, err)) != LV_OK) {
            lv_wrap(err, rc, "replica %s: ", url);
            goto done;
        }
        lv_buf_printf(&d, "s3://%s%s%s (%s)", r->url.bucket, *r->url.prefix ? "/" : "",
                      r->url.prefix, s3_client_endpoint(r->s3));
    } else {
        lv_buf_printf(&d, "%s%s", r->url.dir[0] == '/' ? "file://" : "", r->url.dir);
    }
    if ((rc = lv_buf_ok(&d, err)) != LV_OK)
        goto done;
    r->describe = lv_buf_take(&d);
    if (!r->describe)
        rc = lv_fail(err, LV_ENOMEM, "replica %s: out of memory", url);
done:
    lv_buf_free(&d);
    if (rc) {
        replica_close(r);
        return rc;
    }
    *out = r;
    return LV_OK;
}

void replica_close(replica *r)
{
    if (!r)
        return;
    if (r->s3)
        s3_client_free(r->s3);
    replica_url_free(&r->url);
    lv_free(r->describe);
    lv_free(r);
}

const char *replica_describe(const replica *r)
{
    return r->describe;
}

s3_client *replica_s3(replica *r)
{
    return r->kind == REPLICA_S3 ? r->s3 : NULL;
}

void replica_name(uint64_t min_txid, uint64_t max_txid, char out[REPLICA_NAME_LEN])
{
    snprintf(out, REPLICA_NAME_LEN, "%016llx-%016llx.ltx", (unsigned long long)min_txid,
             (unsigned long long)max_txid);
}

void replica_level_prefix(const replica *r, int level, lv_buf *out)
{
    if (*r->url.prefix)
        lv_buf_printf(out, "%s/", r->url.prefix);
    lv_buf_printf(out, "%04x/", (unsigned)level);
}

/* LV_EINVAL unless level is 0..REPLICA_MAX_LEVEL (or -1 when all is allowed). */
static lv_err check_level(int level, int all, char *err)
{
    if (level < (all ? -1 : 0) || level > REPLICA_MAX_LEVEL)
        return lv_fail(err, LV_EINVAL, "level %d: want 0..%d%s", level, REPLICA_MAX_LEVEL,
                       all ? ", or -1 for all" : "");
    return LV_OK;
}

void replica_file_key(const replica *r, int level, uint64_t min_txid, uint64_t max_txid,
                      lv_buf *out)
{
    char name[REPLICA_NAME_LEN];
    replica_name(min_txid, max_txid, name);
    if (r->kind == REPLICA_S3) {
        replica_level_prefix(r, level, out);
        lv_buf_puts(out, name);
    } else {
        lv_buf_printf(out, "%s/ltx/%d/%s", r->url.dir, level, name);
    }
}

void replica_object_key(const replica *r, const char *name, lv_buf *out)
{
    if (r->kind == REPLICA_S3)
        lv_buf_printf(out, "%s%s%s", r->url.prefix, *r->url.prefix ? "/" : "", name);
    else
        lv_buf_printf(out, "%s/%s", r->url.dir, name);
}

const char *replica_bucket(const replica *r)
{
    return r->kind == REPLICA_S3 ? r->url.bucket : NULL;
}

static int hex16(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return 0; /* upper case is not a Litestream name */
        x = x << 4 | d;
    }
    *v = x;
    return 1;
}

int replica_parse_name(const char *name, size_t len, uint64_t *min_txid, uint64_t *max_txid)
{
    uint64_t a, b;
    if (len != 37 || name[16] != '-' || memcmp(name + 33, ".ltx", 4) != 0)
        return 0;
    if (!hex16(name, &a) || !hex16(name + 17, &b))
        return 0;
    if (a == 0 || b == 0 || a > b)
        return 0;
    *min_txid = a;
    *max_txid = b;
    return 1;
}

void replica_format_time(int64_t ms, char *out, size_t cap)
{
    int64_t sec = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
        rem += 1000;
        sec -= 1;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, cap, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)rem);
}

lv_err replica_file_vec_push(replica_file_vec *fv, const replica_file *f, char *err)
{
    if (fv->n == fv->cap) {
        size_t cap = fv->cap ? 2 * fv->cap : 64;
        replica_file *v = lv_realloc(fv->v, cap * sizeof *v);
        if (!v)
            return lv_fail(err, LV_ENOMEM, "out of memory listing %zu files", fv->n);
        fv->v = v;
        fv->cap = cap;
    }
    fv->v[fv->n++] = *f;
    return LV_OK;
}

static int cmp_file(const void *pa, const void *pb)
{
    const replica_file *a = pa, *b = pb;
    if (a->level != b->level)
        return a->level < b->level ? -1 : 1;
    if (a->min_txid != b->min_txid)
        return a->min_txid < b->min_txid ? -1 : 1;
    if (a->max_txid != b->max_txid)
        return a->max_txid < b->max_txid ? -1 : 1;
    return 0;
}

lv_err replica_list(replica *r, int level, replica_file **files, size_t *n, char *err)
{
    *files = NULL;
    *n = 0;
    lv_err rc = check_level(level, 1, err);
    if (rc != LV_OK)
        return rc;
    unsigned levels = level < 0 ? REPLICA_ALL_LEVELS : 1u << level;
    replica_file_vec fv = {0};
    rc = r->kind == REPLICA_S3 ? replica_s3_list(r, levels, &fv, err)
                               : replica_file_list(r, levels, &fv, err);
    if (rc) {
        lv_free(fv.v);
        return rc;
    }
    if (fv.n > 1)
        qsort(fv.v, fv.n, sizeof *fv.v, cmp_file);
    *files = fv.v;
    *n = fv.n;
    return LV_OK;
}

lv_err replica_list_after(replica *r, int level, uint64_t after_txid, replica_file **files,
                          size_t *n, char *err)
{
    *files = NULL;
    *n = 0;
    lv_err rc = check_level(level, 0, err);
    if (rc != LV_OK)
        return rc;
    replica_file_vec fv = {0};
    rc = r->kind == REPLICA_S3 ? replica_s3_list_after(r, level, after_txid, &fv, err)
                               : replica_file_list(r, 1u << level, &fv, err);
    if (rc) {
        lv_free(fv.v);
        return rc;
    }
    size_t k = 0; /* the file backend reads the whole directory: keep the new ones */
    for (size_t i = 0; i < fv.n; i++)
        if (fv.v[i].min_txid > after_txid)
            fv.v[k++] = fv.v[i];
    fv.n = k;
    if (fv.n > 1)
        qsort(fv.v, fv.n, sizeof *fv.v, cmp_file);
    *files = fv.v;
    *n = fv.n;
    return LV_OK;
}

static lv_err read_many(replica *r, replica_range *rs, size_t n, char *err)
{
    if (n == 0)
        return LV_OK;
    return r->kind == REPLICA_S3 ? replica_s3_read_many(r, rs, n, err)
                                 : replica_file_read_many(r, rs, n, err);
}

lv_err replica_read(replica *r, const replica_file *f, uint64_t off, uint64_t len, lv_buf *out,
                    char *err)
{
    replica_range rg;
    memset(&rg, 0, sizeof rg);
    rg.file = f;
    rg.off = off;
    rg.len = len;
    lv_buf_init(&rg.out);
    if (len == 0) /* nothing asked: nothing to fetch (an S3 GET of length 0 means "whole") */
        return LV_OK;
    lv_err rc = read_many(r, &rg, 1, err);
    if (rc == LV_OK && len != S3_TO_END && rg.out.len != len) {
        /* a range is all of it or an error: a short one is a file cut, or listed wrong */
        lv_buf key;
        lv_buf_init(&key);
        replica_file_key(r, f->level, f->min_txid, f->max_txid, &key);
        rc = lv_fail(err, LV_ECORRUPT, "%s: range at %llu: got %zu of %llu bytes",
                     key.data ? key.data : "?", (unsigned long long)off, rg.out.len,
                     (unsigned long long)len);
        lv_buf_free(&key);
    }
    if (rc == LV_OK) {
        if (out->len == 0) {
            lv_buf_free(out);
            *out = rg.out;
            lv_buf_init(&rg.out);
        } else {
            lv_buf_append(out, rg.out.data, rg.out.len);
            rc = lv_buf_ok(out, err);
        }
    }
    lv_buf_free(&rg.out);
    return rc;
}

lv_err replica_fetch(replica *r, const replica_file *files, size_t n,
                     int (*sink)(void *ctx, size_t which, const void *data, size_t len,
                                 int restart),
                     void *ctx, char *err)
{
    if (n == 0)
        return LV_OK;
    return r->kind == REPLICA_S3 ? replica_s3_fetch(r, files, n, sink, ctx, err)
                                 : replica_file_fetch(r, files, n, sink, ctx, err);
}

/* ---- fetch_meta ------------------------------------------------------------------------- */

/* Per file: which ranges of round 1 (head, tail; head == tail for a whole file), round 2. */
typedef struct meta_job {
    size_t head, tail;
    uint64_t tail_off; /* file offset of the tail's first byte */
    uint64_t index_off, index_size;
    int need_more; /* the index starts before tail_off */
    size_t more;   /* its range in round 2 */
} meta_job;

void replica_meta_free(replica_meta *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) {
        ltx_index_free(&m[i].index);
        lv_buf_free(&m[i].head);
    }
}

/* Checks what a range brought: the right number of bytes of a file of the listed size. */
static lv_err check_range(replica *r, const replica_range *rg, uint64_t want, char *err)
{
    const replica_file *f = rg->file;
    if ((rg->size != 0 && rg->size != f->size) || rg->out.len != want) {
        lv_buf key;
        lv_buf_init(&key);
        replica_file_key(r, f->level, f->min_txid, f->max_txid, &key);
        char listed[96] = "";
        if (rg->size != 0 && rg->size != f->size)
            snprintf(listed, sizeof listed, " (listed as %llu bytes, but it has %llu)",
                     (unsigned long long)f->size, (unsigned long long)rg->size);
        lv_err rc = lv_fail(err, LV_ECORRUPT, "%s: range at %llu: got %zu of %llu bytes%s",
                            key.data ? key.data : "?", (unsigned long long)rg->off, rg->out.len,
                            (unsigned long long)want, listed);
        lv_buf_free(&key);
        return rc;
    }
    return LV_OK;
}

static lv_err wrap_key(replica *r, const replica_file *f, lv_err rc, char *err)
{
    lv_buf key;
    lv_buf_init(&key);
    replica_file_key(r, f->level, f->min_txid, f->max_txid, &key);
    lv_wrap(err, rc, "%s: ", key.data ? key.data : "?");
    lv_buf_free(&key);
    return rc;
}

lv_err replica_fetch_meta(replica *r, const replica_file *files, size_t n, replica_meta *out,
                          char *err)
{
    lv_err rc = LV_OK;
    meta_job *jobs = NULL;
    replica_range *rs = NULL, *more = NULL;
    size_t nr = 0, nmore = 0;
    lv_buf idx;
    lv_buf_init(&idx);
    if (n == 0)
        return LV_OK;
    memset(out, 0, n * sizeof *out);
    jobs = lv_calloc(n, sizeof *jobs);
    rs = lv_calloc(2 * n, sizeof *rs);
    if (!jobs || !rs) {
        rc = lv_fail(err, LV_ENOMEM, "fetch_meta from %s: out of memory", r->describe);
        goto done;
    }
    /* round 1 */
    for (size_t i = 0; i < n; i++) {
        const replica_file *f = &files[i];
        if (f->size < LTX_HEADER_SIZE + LTX_TAIL_SIZE) {
            rc = wrap_key(r, f,
                          lv_fail(err, LV_ECORRUPT,
                                  "%llu bytes: too small for an LTX file (is the size known?)",
                                  (unsigned long long)f->size),
                          err);
            goto done;
        }
        jobs[i].head = nr;
        rs[nr].file = f;
        if (f->size <= REPLICA_INDEX_TAIL) {
            rs[nr].off = 0;
            rs[nr].len = f->size;
            jobs[i].tail = nr;
            jobs[i].tail_off = 0;
            nr++;
        } else {
            rs[nr].off = 0;
            rs[nr].len = REPLICA_META_HEAD; /* < REPLICA_INDEX_TAIL < size */
            nr++;
            jobs[i].tail = nr;
            jobs[i].tail_off = f->size - REPLICA_INDEX_TAIL;
            rs[nr].file = f;
            rs[nr].off = jobs[i].tail_off;
            rs[nr].len = REPLICA_INDEX_TAIL;
            nr++;
        }
    }
    for (size_t i = 0; i < nr; i++)
        lv_buf_init(&rs[i].out);
    if ((rc = read_many(r, rs, nr, err)) != LV_OK)
        goto done;

    for (size_t i = 0; i < n; i++) {
        const replica_file *f = &files[i];
        meta_job *j = &jobs[i];
        replica_range *head = &rs[j->head], *tail = &rs[j->tail];
        if ((rc = check_range(r, head, head->len, err)) != LV_OK ||
            (rc = check_range(r, tail, tail->len, err)) != LV_OK)
            goto done;
        ltx_header *h = &out[i].header;
        if ((rc = ltx_header_decode(h, (const uint8_t *)head->out.data, head->out.len, err)) !=
            LV_OK) {
            rc = wrap_key(r, f, rc, err);
            goto done;
        }
        if (h->min_txid != f->min_txid || h->max_txid != f->max_txid) {
            rc = wrap_key(r, f,
                          lv_fail(err, LV_ECORRUPT,
                                  "the header says TXIDs %016llx-%016llx, not those of its name",
                                  (unsigned long long)h->min_txid, (unsigned long long)h->max_txid),
                          err);
            goto done;
        }
        const uint8_t *t = (const uint8_t *)tail->out.data + tail->out.len - LTX_TAIL_SIZE;
        if ((rc = ltx_index_locate(t, f->size, &j->index_off, &j->index_size, &out[i].trailer,
                                   err)) != LV_OK ||
            (rc = ltx_trailer_validate(&out[i].trailer, h, err)) != LV_OK) {
            rc = wrap_key(r, f, rc, err);
            goto done;
        }
        if (j->index_off < j->tail_off) {
            j->need_more = 1;
            nmore++;
        }
    }

    /* round 2: the start of every index larger than its tail */
    if (nmore) {
        more = lv_calloc(nmore, sizeof *more);
        if (!more) {
            rc = lv_fail(err, LV_ENOMEM, "fetch_meta from %s: out of memory", r->describe);
            goto done;
        }
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (!jobs[i].need_more)
                continue;
            jobs[i].more = k;
            more[k].file = &files[i];
            more[k].off = jobs[i].index_off;
            more[k].len = jobs[i].tail_off - jobs[i].index_off;
            lv_buf_init(&more[k].out);
            k++;
        }
        if ((rc = read_many(r, more, nmore, err)) != LV_OK)
            goto done;
    }

    for (size_t i = 0; i < n; i++) {
        const replica_file *f = &files[i];
        meta_job *j = &jobs[i];
        const replica_range *tail = &rs[j->tail];
        const uint8_t *ib;
        /* the index ends where the trailer starts: size - 16 */
        uint64_t in_tail_end = f->size - LTX_TRAILER_SIZE - j->tail_off;
        if (j->need_more) {
            const replica_range *m = &more[j->more];
            if ((rc = check_range(r, m, m->len, err)) != LV_OK)
                goto done;
            lv_buf_reset(&idx);
            lv_buf_append(&idx, m->out.data, m->out.len);
            lv_buf_append(&idx, tail->out.data, (size_t)in_tail_end);
            if ((rc = lv_buf_ok(&idx, err)) != LV_OK)
                goto done;
            ib = (const uint8_t *)idx.data;
        } else {
            ib = (const uint8_t *)tail->out.data + (j->index_off - j->tail_off);
        }
        if ((rc = ltx_index_parse(ib, (size_t)j->index_size, j->index_off, &out[i].header,
                                  &out[i].index, err)) != LV_OK) {
            rc = wrap_key(r, f, rc, err);
            goto done;
        }
        out[i].file = *f;
        out[i].file.created_ms = out[i].header.timestamp;
        /* the head goes to the caller as it is (moved, not copied) */
        out[i].head = rs[j->head].out;
        lv_buf_init(&rs[j->head].out);
    }

done:
    if (rs)
        for (size_t i = 0; i < nr; i++)
            lv_buf_free(&rs[i].out);
    if (more)
        for (size_t i = 0; i < nmore; i++)
            lv_buf_free(&more[i].out);
    lv_free(rs);
    lv_free(more);
    lv_free(jobs);
    lv_buf_free(&idx);
    if (rc) {
        replica_meta_free(out, n);
        memset(out, 0, n * sizeof *out);
    }
    return rc;
}

/* ---- write, delete ---------------------------------------------------------------------- */

lv_err replica_write(replica *r, int level, const void *data, size_t len, int if_absent, char *err)
{
    if (check_level(level, 0, err) != LV_OK)
        return LV_EINVAL;
    if (len < LTX_HEADER_SIZE + LTX_TAIL_SIZE)
        return lv_fail(err, LV_EINVAL, "%zu bytes: too small for an LTX file", len);
    ltx_header h;
    lv_err rc = ltx_header_decode(&h, data, len, err);
    if (rc)
        return lv_wrap(err, rc, "write to %s: ", r->describe);
    return r->kind == REPLICA_S3 ? replica_s3_write(r, &h, level, data, len, if_absent, err)
                                 : replica_file_write(r, &h, level, data, len, if_absent, err);
}

lv_err replica_delete(replica *r, const replica_file *files, size_t n, char *err)
{
    if (n == 0)
        return LV_OK;
    for (size_t i = 0; i < n; i++)
        if (check_level(files[i].level, 0, err) != LV_OK)
            return LV_EINVAL;
    return r->kind == REPLICA_S3 ? replica_s3_delete(r, files, n, err)
                                 : replica_file_delete(r, files, n, err);
}
