/*
 * replica_s3: the S3 backend of a replica, over lib/s3.h, with Litestream's S3 layout:
 *
 *   <prefix>/0000/0000000000000001-0000000000000001.ltx     level 0, one file per sync
 *   <prefix>/0001/0000000000000001-0000000000000002.ltx     levels 1..3: compactions
 *   <prefix>/0009/0000000000000001-0000000000000002.ltx     level 9: snapshots
 *   (levels as 4 lower-case hex digits; no "ltx/" segment; no leading '/' when the prefix is "")
 *
 * Round trips are what cost, so every operation is one batch: a listing of all levels is one
 * s3_list_many over the ten level prefixes; reads of many ranges are one s3_run; writes carry
 * x-amz-meta-litestream-timestamp (and If-None-Match: * when conditional).
 *
 * replica_s3_fetch downloads whole files in parallel. A file above REPLICA_FETCH_SPLIT bytes is
 * cut into ranged GETs of REPLICA_FETCH_PIECE bytes that run at once; its pieces reach the sink in
 * order: the piece at the file's delivery cursor streams straight to the sink ("live"), the
 * others are held in memory until the cursor reaches them. To bound that memory the pieces run in
 * windows (one s3_run each) holding at most REPLICA_FETCH_BUFFER bytes that could be held. When a
 * live piece's GET is retried, the bytes already delivered are skipped in the new attempt (LTX
 * files are immutable under their names), except for a file's first piece, where the caller's
 * sink is told to start over (restart = 1), which is exact.
 *
 * Threads: each call keeps its state on its own; s3_client is safe to share (s3.h). The sinks run
 * on the calling thread (inside s3_run).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "replica_private.h"

static char *key_of(replica *r, const replica_file *f)
{
    lv_buf k;
    lv_buf_init(&k);
    replica_file_key(r, f->level, f->min_txid, f->max_txid, &k);
    return lv_buf_take(&k);
}

static void free_keys(char **keys, size_t n)
{
    if (!keys)
        return;
    for (size_t i = 0; i < n; i++)
        lv_free(keys[i]);
    lv_free(keys);
}

/* Keys of files[0..n) (or of rs[i].file), newly allocated; NULL when out of memory. */
static char **keys_of(replica *r, const replica_file *files, const replica_range *rs, size_t n)
{
    char **keys = lv_calloc(n ? n : 1, sizeof *keys);
    if (!keys)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!(keys[i] = key_of(r, files ? &files[i] : rs[i].file))) {
            free_keys(keys, n);
            return NULL;
        }
    }
    return keys;
}

/* ---- list -------------------------------------------------------------------------------- */

typedef struct list_ctx {
    int levels[REPLICA_MAX_LEVEL + 1];  /* prefix index -> level */
    size_t plen[REPLICA_MAX_LEVEL + 1]; /* prefix lengths */
    replica_file_vec *out;
    lv_err rc;
    char *err;
} list_ctx;

static int list_cb(void *ctx, size_t which, const s3_entry *e)
{
    list_ctx *lc = ctx;
    size_t kl = strlen(e->key);
    if (kl < lc->plen[which])
        return 0;
    const char *name = e->key + lc->plen[which];
    replica_file f = {0};
    if (!replica_parse_name(name, kl - lc->plen[which], &f.min_txid, &f.max_txid))
        return 0; /* not an LTX name (or deeper down): ignored, as Litestream does */
    f.level = lc->levels[which];
    f.size = e->size;
    f.created_ms = e->mtime_ms;
    if ((lc->rc = replica_file_vec_push(lc->out, &f, lc->err)) != LV_OK)
        return 1;
    return 0;
}

lv_err replica_s3_list(replica *r, unsigned levels, replica_file_vec *out, char *err)
{
    lv_err rc = LV_OK;
    char *prefixes[REPLICA_MAX_LEVEL + 1] = {0};
    size_t np = 0;
    list_ctx lc;
    memset(&lc, 0, sizeof lc);
    lc.out = out;
    lc.err = err;
    for (int level = 0; level <= REPLICA_MAX_LEVEL; level++) {
        if (!(levels & (1u << level)))
            continue;
        lv_buf p;
        lv_buf_init(&p);
        replica_level_prefix(r, level, &p);
        lc.plen[np] = p.len;
        lc.levels[np] = level;
        if (!(prefixes[np] = lv_buf_take(&p))) {
            rc = lv_fail(err, LV_ENOMEM, "list %s: out of memory", r->describe);
            goto done;
        }
        np++;
    }
    rc = s3_list_many(r->s3, r->url.bucket, (const char *const *)prefixes, np, list_cb, &lc, err);
    if (rc == LV_OK && lc.rc != LV_OK)
        rc = lc.rc;
    else if (rc)
        lv_wrap(err, rc, "list %s: ", r->describe);
done:
    for (size_t i = 0; i < np; i++)
        lv_free(prefixes[i]);
    return rc;
}

static int list_one_cb(void *ctx, const s3_entry *e)
{
    return list_cb(ctx, 0, e);
}

lv_err replica_s3_list_after(replica *r, int level, uint64_t after_txid, replica_file_vec *out,
                             char *err)
{
    list_ctx lc;
    memset(&lc, 0, sizeof lc);
    lc.out = out;
    lc.err = err;
    lc.levels[0] = level;
    lv_buf p, after;
    lv_buf_init(&p);
    lv_buf_init(&after);
    replica_level_prefix(r, level, &p);
    lc.plen[0] = p.len;
    /* names sort by min TXID first: every file with min > after_txid sorts after this one */
    lv_buf_printf(&after, "%s%016llx-ffffffffffffffff.ltx", p.data ? p.data : "",
                  (unsigned long long)after_txid);
    lv_err rc = lv_buf_ok(&p, err);
    if (rc == LV_OK)
        rc = lv_buf_ok(&after, err);
    if (rc == LV_OK)
        rc = s3_list(r->s3, r->url.bucket, p.data, after.data, list_one_cb, &lc, err);
    if (rc == LV_OK && lc.rc != LV_OK)
        rc = lc.rc;
    else if (rc)
        lv_wrap(err, rc, "list %s: ", r->describe);
    lv_buf_free(&p);
    lv_buf_free(&after);
    return rc;
}

/* ---- read -------------------------------------------------------------------------------- */

lv_err replica_s3_read_many(replica *r, replica_range *rs, size_t n, char *err)
{
    lv_err rc = LV_OK;
    char **keys = keys_of(r, NULL, rs, n);
    s3_op *ops = lv_calloc(n, sizeof *ops);
    if (!keys || !ops) {
        rc = lv_fail(err, LV_ENOMEM, "read from %s: out of memory", r->describe);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        s3_op_init(&ops[i]);
        ops[i].kind = S3_GET;
        ops[i].key = keys[i];
        ops[i].off = rs[i].off;
        ops[i].len = rs[i].len;
    }
    if ((rc = s3_run(r->s3, r->url.bucket, ops, n, err)) != LV_OK)
        goto done;
    for (size_t i = 0; i < n; i++) {
        rs[i].size = ops[i].res.size;
        if (rs[i].out.len == 0) {
            lv_buf_free(&rs[i].out);
            rs[i].out = ops[i].out;
            lv_buf_init(&ops[i].out);
        } else {
            lv_buf_append(&rs[i].out, ops[i].out.data, ops[i].out.len);
            if ((rc = lv_buf_ok(&rs[i].out, err)) != LV_OK)
                goto done;
        }
    }
done:
    if (ops)
        for (size_t i = 0; i < n; i++)
            s3_op_free(&ops[i]);
    lv_free(ops);
    free_keys(keys, n);
    return rc;
}

/* ---- fetch ------------------------------------------------------------------------------- */

typedef struct fetch_state fetch_state;

typedef struct fetch_piece {
    fetch_state *st;
    size_t file;        /* index into the caller's files */
    size_t idx;         /* piece number within its file */
    uint64_t off, len;  /* len 0: the whole object, length unknown (single piece) */
    uint64_t got;       /* bytes of the current attempt */
    uint64_t delivered; /* bytes of this piece handed to the caller's sink */
    uint64_t skip;      /* bytes of a retried attempt to drop (already delivered) */
    lv_buf held;        /* bytes received while not live */
    int live;           /* at its file's delivery cursor: bytes go straight to the sink */
    int complete;       /* every byte received */
    int finished;       /* every byte delivered */
} fetch_piece;

typedef struct fetch_file {
    size_t first, n; /* its pieces */
    size_t cursor;   /* the next piece to deliver, relative to first */
} fetch_file;

struct fetch_state {
    fetch_piece *pieces;
    fetch_file *files;
    size_t win_lo, win_hi; /* the pieces of the running window */
    replica_sink_fn sink;
    void *ctx;
    int aborted, oom;
};

static int deliver(fetch_state *st, fetch_piece *p, const void *data, size_t n, int restart)
{
    if (n == 0 && !restart)
        return 0;
    if (st->sink(st->ctx, p->file, data, n, restart) != 0) {
        st->aborted = 1;
        return 1;
    }
    p->delivered += n;
    return 0;
}

/*
 * The live piece of a file is finished: move the cursor on, delivering pieces already held and
 * making the next one that is still running live.
 */
static int advance(fetch_state *st, size_t file)
{
    fetch_file *ff = &st->files[file];
    for (;;) {
        fetch_piece *p = &st->pieces[ff->first + ff->cursor];
        if (!p->live || !p->complete)
            return 0;
        p->live = 0;
        p->finished = 1;
        ff->cursor++;
        if (ff->cursor == ff->n)
            return 0;
        size_t qi = ff->first + ff->cursor;
        if (qi < st->win_lo || qi >= st->win_hi)
            return 0; /* in a later window: live when it starts */
        fetch_piece *q = &st->pieces[qi];
        q->live = 1;
        int rc = deliver(st, q, q->held.data, q->held.len, 0);
        lv_buf_free(&q->held);
        if (rc)
            return 1;
    }
}

static int piece_sink(void *ctx, const void *data, size_t n, int restart)
{
    fetch_piece *p = ctx;
    fetch_state *st = p->st;
    if (st->aborted || st->oom)
        return 1;
    int user_restart = 0;
    if (restart) {
        p->got = 0;
        if (p->finished) {
            /* delivered in full already: the retry's bytes are the same; drop them */
        } else if (p->live) {
            if (p->idx == 0) {
                p->delivered = 0;
                user_restart = 1;
            } else {
                p->skip = p->delivered;
            }
        } else {
            lv_buf_reset(&p->held);
        }
        p->complete = 0;
    }
    p->got += n;
    if (p->finished) {
        if (p->len && p->got >= p->len)
            p->complete = 1;
        return 0;
    }
    if (p->live) {
        const char *d = data;
        if (p->skip) {
            size_t k = p->skip < n ? (size_t)p->skip : n;
            d += k;
            n -= k;
            p->skip -= k;
        }
        if (deliver(st, p, d, n, user_restart))
            return 1;
    } else {
        /* the whole piece at once: appends then never move what is held */
        if (p->held.cap < p->len + 1 && p->len < SIZE_MAX / 2) {
            char *grown = lv_realloc(p->held.data, (size_t)p->len + 1);
            if (!grown) {
                st->oom = 1;
                return 1;
            }
            p->held.data = grown;
            p->held.cap = (size_t)p->len + 1;
        }
        lv_buf_append(&p->held, data, n);
        if (p->held.oom) {
            st->oom = 1;
            return 1;
        }
    }
    if (p->len && p->got == p->len) {
        p->complete = 1;
        if (p->live && advance(st, p->file))
            return 1;
    }
    return 0;
}

lv_err replica_s3_fetch(replica *r, const replica_file *files, size_t n, replica_sink_fn sink,
                        void *ctx, char *err)
{
    lv_err rc = LV_OK;
    fetch_state st;
    memset(&st, 0, sizeof st);
    st.sink = sink;
    st.ctx = ctx;
    char **keys = keys_of(r, files, NULL, n);
    s3_op *ops = NULL;
    size_t np = 0;
    st.files = lv_calloc(n, sizeof *st.files);
    if (!keys || !st.files) {
        rc = lv_fail(err, LV_ENOMEM, "fetch from %s: out of memory", r->describe);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t size = files[i].size;
        st.files[i].first = np;
        st.files[i].n = size > REPLICA_FETCH_SPLIT
                            ? (size_t)((size + REPLICA_FETCH_PIECE - 1) / REPLICA_FETCH_PIECE)
                            : 1;
        np += st.files[i].n;
    }
    st.pieces = lv_calloc(np, sizeof *st.pieces);
    if (!st.pieces) {
        rc = lv_fail(err, LV_ENOMEM, "fetch from %s: out of memory", r->describe);
        goto done;
    }
    size_t max_window = 0;
    for (size_t i = 0; i < n; i++) {
        fetch_file *ff = &st.files[i];
        for (size_t k = 0; k < ff->n; k++) {
            fetch_piece *p = &st.pieces[ff->first + k];
            p->st = &st;
            p->file = i;
            p->idx = k;
            lv_buf_init(&p->held);
            if (ff->n == 1) {
                p->off = 0;
                p->len = 0; /* whole object, no Range header */
            } else {
                p->off = (uint64_t)k * REPLICA_FETCH_PIECE;
                p->len = files[i].size - p->off < REPLICA_FETCH_PIECE ? files[i].size - p->off
                                                                      : REPLICA_FETCH_PIECE;
            }
        }
    }

    /* windows: consecutive pieces, at most REPLICA_FETCH_BUFFER bytes of them possibly held */
    size_t lo = 0;
    while (lo < np) {
        uint64_t held = 0;
        size_t hi = lo;
        while (hi < np) {
            fetch_piece *p = &st.pieces[hi];
            /* a file's first piece in the window is live from the start: never held */
            int starts = hi == lo || st.pieces[hi - 1].file != p->file;
            uint64_t h = starts ? 0 : p->len;
            if (hi > lo && held + h > REPLICA_FETCH_BUFFER)
                break;
            held += h;
            hi++;
        }
        if (hi - lo > max_window) {
            s3_op *grown = lv_realloc(ops, (hi - lo) * sizeof *ops);
            if (!grown) {
                rc = lv_fail(err, LV_ENOMEM, "fetch from %s: out of memory", r->describe);
                goto done;
            }
            ops = grown;
            max_window = hi - lo;
        }
        st.win_lo = lo;
        st.win_hi = hi;
        for (size_t i = lo; i < hi; i++) {
            fetch_piece *p = &st.pieces[i];
            fetch_file *ff = &st.files[p->file];
            if (ff->first + ff->cursor == i)
                p->live = 1;
            s3_op *op = &ops[i - lo];
            s3_op_init(op);
            op->kind = S3_GET;
            op->key = keys[p->file];
            op->off = p->off;
            op->len = p->len;
            op->sink = piece_sink;
            op->sink_ctx = p;
        }
        rc = s3_run(r->s3, r->url.bucket, ops, hi - lo, err);
        for (size_t i = 0; i < hi - lo; i++)
            s3_op_free(&ops[i]);
        if (st.oom) {
            rc =
                lv_fail(err, LV_ENOMEM, "fetch from %s: out of memory holding pieces", r->describe);
            goto done;
        }
        if (st.aborted) {
            rc = lv_fail(err, LV_EINVAL, "fetch from %s: aborted by the caller", r->describe);
            goto done;
        }
        if (rc) {
            lv_wrap(err, rc, "fetch from %s: ", r->describe);
            goto done;
        }
        for (size_t i = lo; i < hi; i++) {
            fetch_piece *p = &st.pieces[i];
            if (p->len && (!p->complete || p->got != p->len)) {
                rc = lv_fail(err, LV_ENET, "fetch s3://%s/%s bytes=%llu-%llu: got %llu bytes",
                             r->url.bucket, keys[p->file], (unsigned long long)p->off,
                             (unsigned long long)(p->off + p->len - 1), (unsigned long long)p->got);
                goto done;
            }
            if (p->len == 0) {
                p->complete = 1;
                p->finished = 1;
            }
        }
        lo = hi;
    }

done:
    if (st.pieces)
        for (size_t i = 0; i < np; i++)
            lv_buf_free(&st.pieces[i].held);
    lv_free(st.pieces);
    lv_free(st.files);
    lv_free(ops);
    free_keys(keys, n);
    return rc;
}

/* ---- write, delete ----------------------------------------------------------------------- */

lv_err replica_s3_write(replica *r, const ltx_header *h, int level, const void *data, size_t len,
                        int if_absent, char *err)
{
    lv_err rc;
    char ts[40];
    replica_format_time(h->timestamp, ts, sizeof ts);
    s3_header hdr = {"x-amz-meta-litestream-timestamp", ts};
    s3_op opts;
    s3_op_init(&opts);
    opts.kind = S3_PUT;
    opts.headers = &hdr;
    opts.n_headers = 1;
    opts.content_md5 = 1;
    if (if_absent)
        opts.if_none_match = "*";
    char *key = key_of(
        r, &(replica_file){.level = level, .min_txid = h->min_txid, .max_txid = h->max_txid});
    if (!key) {
        s3_op_free(&opts);
        return lv_fail(err, LV_ENOMEM, "write to %s: out of memory", r->describe);
    }
    s3_result res;
    memset(&res, 0, sizeof res);
    rc = s3_put(r->s3, r->url.bucket, key, data, len, &opts, &res, err);
    if (rc == LV_ECONFLICT)
        lv_fail(err, LV_ECONFLICT, "s3://%s/%s already exists (%s)", r->url.bucket, key,
                res.msg[0] ? res.msg : "412 PreconditionFailed");
    s3_op_free(&opts);
    lv_free(key);
    return rc;
}

lv_err replica_s3_delete(replica *r, const replica_file *files, size_t n, char *err)
{
    char **keys = keys_of(r, files, NULL, n);
    if (!keys)
        return lv_fail(err, LV_ENOMEM, "delete from %s: out of memory", r->describe);
    lv_err rc = s3_delete_keys(r->s3, r->url.bucket, (const char *const *)keys, n, err);
    free_keys(keys, n);
    return rc;
}
