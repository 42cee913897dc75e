/*
 * restore: plan, parallel download, streaming decode and merge of a replica's files (restore.h).
 *
 * The download engine ("a job") runs replica_fetch over a group of files and hands each file's
 * bytes, as they arrive, to a decoder thread of its own through a bounded queue:
 *
 *   replica_fetch (calling thread)        decoder threads, one per file of the group
 *     sink(which, bytes) --copy--> queue[which] --w_read--> ltx_decoder --pages--> run buffer
 *     (blocks while the queue holds                                   --pwrite of runs--> out_fd
 *      RESTORE_QUEUE_BYTES)
 *
 * A sink call with restart set starts that file over: the decoder that already read bytes of the
 * earlier attempt stops at the marker and decodes again from the new first byte. Pages are
 * written only by the file that owns them (the owner map, built from the page indexes of the later
 * files before anything is downloaded), so the decoders need no order between them and the result
 * is the same as applying the files one after another.
 *
 * Threads: the queue of each worker is guarded by its mutex; the results of a worker are written
 * by its thread only and read after the join. job.failed is read by the sink without the lock
 * (an atomic).
 */
#include "restore.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"

typedef unsigned long long ull;

#define RUN_BYTES (1u << 20) /* a run of adjacent pages is written with one pwrite of this much */

typedef struct chunk {
    struct chunk *next;
    size_t len, pos;
    int restart;
    uint8_t data[];
} chunk;

typedef struct job job;

typedef struct worker {
    job *j;
    size_t index; /* in the whole list (the plan), for the owner map */
    const replica_file *file;
    pthread_t thread;
    int started;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    chunk *head, *tail;
    size_t queued;
    int eof, abort, finished; /* set under mu */
    int consumed;             /* bytes of the current attempt were read (under mu) */
    int restart_pending;
    int aborted; /* the decoder stopped because the download did */

    /* results, written by the worker thread only */
    lv_err rc;
    char err[LV_ERRLEN];
    ltx_header h;
    ltx_trailer t;
    uint32_t pages;
    uint32_t written; /* pages written to the output */
    uint64_t pages_xor, loser_xor;

    uint8_t *run;
    uint32_t run_first, run_n, run_cap;
} worker;

struct job {
    replica *r;
    int restore; /* 1: write owned pages to out_fd */
    int out_fd;
    const uint16_t *owner; /* NULL: the only file owns every page */
    uint32_t final_commit;
    uint32_t base_limit; /* the smallest commit after the base: its pages above are cut off */
    int fail_fast;
    atomic_int failed;

    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
    uint64_t done, total, downloaded;

    worker *w;
    size_t n;
};

/* ---- the queue ---------------------------------------------------------------------------- */

static void queue_free(worker *w)
{
    chunk *c = w->head;
    while (c) {
        chunk *next = c->next;
        lv_free(c);
        c = next;
    }
    w->head = w->tail = NULL;
    w->queued = 0;
}

/* An ltx_read_fn over the worker's queue: blocks until bytes, the end, an abort or a restart. */
static lv_err w_read(void *ctx, void *buf, size_t n, size_t *got, char *err)
{
    worker *w = ctx;
    uint8_t *out = buf;
    lv_err rc = LV_OK;
    *got = 0;
    pthread_mutex_lock(&w->mu);
    while (*got < n) {
        while (!w->head && !w->eof && !w->abort)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->abort) {
            w->aborted = 1;
            rc = lv_fail(err, LV_EIO, "download aborted");
            break;
        }
        if (!w->head)
            break; /* the end of the stream */
        chunk *c = w->head;
        if (c->restart) {
            if (w->consumed) {
                w->restart_pending = 1;
                rc = lv_fail(err, LV_EIO, "download restarted");
                break;
            }
            c->restart = 0;
        }
        size_t k = c->len - c->pos;
        if (k > n - *got)
            k = n - *got;
        memcpy(out + *got, c->data + c->pos, k);
        c->pos += k;
        *got += k;
        w->consumed = 1;
        if (c->pos == c->len) {
            w->head = c->next;
            if (!w->head)
                w->tail = NULL;
            w->queued -= c->len;
            lv_free(c);
            pthread_cond_broadcast(&w->cv);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* ---- pages into the output -------------------------------------------------------------- */

static lv_err run_flush(worker *w, char *err)
{
    if (w->run_n == 0)
        return LV_OK;
    uint32_t ps = w->h.page_size;
    size_t n = (size_t)w->run_n * ps, done = 0;
    off_t off = (off_t)((uint64_t)(w->run_first - 1) * ps);
    while (done < n) {
        ssize_t k = pwrite(w->j->out_fd, w->run + done, n - done, off + (off_t)done);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return lv_fail(err, LV_EIO, "write the database at offset %llu: %s",
                           (ull)(off + (off_t)done), strerror(errno));
        }
        done += (size_t)k;
    }
    w->run_n = 0;
    return LV_OK;
}

static lv_err take_page(worker *w, uint32_t pgno, const uint8_t *page, char *err)
{
    job *j = w->j;
    uint32_t ps = w->h.page_size;
    int mine;
    if (w->index == 0) /* the base: pages no later file replaces or cuts off */
        mine = pgno <= j->base_limit && (!j->owner || j->owner[pgno] == 0);
    else
        mine = pgno <= j->final_commit && j->owner[pgno] == (uint16_t)w->index;
    if (!mine) {
        w->loser_xor ^= ltx_page_checksum(pgno, page, ps);
        return LV_OK;
    }
    w->written++;
    if (!w->run) {
        w->run_cap = RUN_BYTES / ps ? RUN_BYTES / ps : 1;
        w->run = lv_malloc((size_t)w->run_cap * ps);
        if (!w->run)
            return lv_fail(err, LV_ENOMEM, "out of memory");
    }
    if (w->run_n > 0 && (pgno != w->run_first + w->run_n || w->run_n == w->run_cap)) {
        lv_err rc = run_flush(w, err);
        if (rc)
            return rc;
    }
    if (w->run_n == 0)
        w->run_first = pgno;
    memcpy(w->run + (size_t)w->run_n * ps, page, ps);
    w->run_n++;
    return LV_OK;
}

/* ---- one file ---------------------------------------------------------------------------- */

static lv_err decode_one(worker *w, char *err)
{
    ltx_decoder *d = NULL;
    ltx_frame_info fi;
    const uint8_t *page;
    lv_err rc = ltx_decoder_open(&d, w_read, w, err);
    if (rc)
        return rc;
    w->h = *ltx_decoder_header(d);
    if (w->h.min_txid != w->file->min_txid || w->h.max_txid != w->file->max_txid) {
        rc = lv_fail(err, LV_ECORRUPT, "header TXIDs %016llx-%016llx do not match the file name",
                     (ull)w->h.min_txid, (ull)w->h.max_txid);
        goto done;
    }
    for (;;) {
        if ((rc = ltx_decoder_next(d, &fi, &page, err)) != LV_OK)
            goto done;
        if (fi.pgno == 0)
            break;
        w->pages++;
        if (w->j->restore && (rc = take_page(w, fi.pgno, page, err)) != LV_OK)
            goto done;
    }
    if (w->j->restore && (rc = run_flush(w, err)) != LV_OK)
        goto done;
    w->t = *ltx_decoder_trailer(d);
    w->pages_xor = ltx_decoder_pages_checksum(d);
done:
    ltx_decoder_free(d);
    return rc;
}

static void *w_main(void *arg)
{
    worker *w = arg;
    lv_err rc;
    for (;;) {
        w->pages = w->written = 0;
        w->pages_xor = w->loser_xor = 0;
        w->run_n = 0;
        rc = decode_one(w, w->err);
        pthread_mutex_lock(&w->mu);
        int again = rc != LV_OK && w->restart_pending && !w->abort;
        if (again) {
            w->restart_pending = 0;
            w->consumed = 0;
        }
        pthread_mutex_unlock(&w->mu);
        if (!again)
            break;
    }
    w->rc = rc;
    if (rc != LV_OK)
        atomic_store(&w->j->failed, 1);
    /* Whatever still arrives for this file is dropped from now on. */
    pthread_mutex_lock(&w->mu);
    w->finished = 1;
    queue_free(w);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* replica_fetch's sink: copies the bytes into the file's queue (waiting for room). */
static int sink(void *ctx, size_t which, const void *data, size_t len, int restart)
{
    job *j = ctx;
    if (j->fail_fast && atomic_load(&j->failed))
        return 1;
    if (which >= j->n)
        return 1;
    worker *w = &j->w[which];
    chunk *c = lv_malloc(sizeof *c + len);
    if (!c) {
        pthread_mutex_lock(&w->mu);
        if (!w->finished)
            atomic_store(&j->failed, 1);
        pthread_mutex_unlock(&w->mu);
        return 1;
    }
    c->next = NULL;
    c->len = len;
    c->pos = 0;
    c->restart = restart;
    if (len)
        memcpy(c->data, data, len);

    pthread_mutex_lock(&w->mu);
    while (!w->finished && w->queued >= RESTORE_QUEUE_BYTES)
        pthread_cond_wait(&w->cv, &w->mu);
    if (w->finished) {
        lv_free(c);
    } else {
        if (w->tail)
            w->tail->next = c;
        else
            w->head = c;
        w->tail = c;
        w->queued += len;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);

    j->downloaded += len;
    j->done += len;
    if (j->progress)
        j->progress(j->progress_ctx, j->done < j->total ? j->done : j->total, j->total);
    return 0;
}

/*
 * Downloads and decodes files[0..n) (indexes first..first+n-1 of the whole list) with one
 * decoder thread each. Every worker's result is in j->w[i] afterwards. Returns the download's
 * error (a worker's failure is not one).
 */
static lv_err run_group(job *j, const replica_file *files, size_t n, size_t first, char *err)
{
    lv_err rc = LV_OK;
    j->w = lv_calloc(n, sizeof *j->w);
    j->n = n;
    if (!j->w)
        return lv_fail(err, LV_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        worker *w = &j->w[i];
        w->j = j;
        w->index = first + i;
        w->file = &files[i];
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (size_t i = 0; i < n; i++) {
        int e = pthread_create(&j->w[i].thread, &attr, w_main, &j->w[i]);
        if (e != 0) {
            rc = lv_fail(err, LV_ENOMEM, "start a decoder thread: %s", strerror(e));
            break;
        }
        j->w[i].started = 1;
    }
    pthread_attr_destroy(&attr);

    if (rc == LV_OK)
        rc = replica_fetch(j->r, files, n, sink, j, err);

    for (size_t i = 0; i < n; i++) {
        worker *w = &j->w[i];
        pthread_mutex_lock(&w->mu);
        w->eof = 1;
        if (rc != LV_OK)
            w->abort = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    for (size_t i = 0; i < n; i++) {
        worker *w = &j->w[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        else {
            w->rc = LV_EIO;
            lv_fail(w->err, LV_EIO, "not downloaded");
        }
    }
    return rc;
}

static void group_free(job *j)
{
    for (size_t i = 0; j->w && i < j->n; i++) {
        worker *w = &j->w[i];
        queue_free(w);
        lv_free(w->run);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
    }
    lv_free(j->w);
    j->w = NULL;
    j->n = 0;
}

static unsigned concurrency_of(const restore_options *o)
{
    return o && o->concurrency ? o->concurrency : RESTORE_CONCURRENCY;
}

/* "prefix/0000/...ltx" of f into out (a buffer of LV_ERRLEN). */
static void key_of(replica *r, const replica_file *f, char *out, size_t cap)
{
    lv_buf b;
    lv_buf_init(&b);
    replica_file_key(r, f->level, f->min_txid, f->max_txid, &b);
    snprintf(out, cap, "%s", b.data && !b.oom ? b.data : "?");
    lv_buf_free(&b);
}

/* ---- public ----------------------------------------------------------------------------- */

lv_err restore_plan(replica *r, const replica_target *target, replica_plan *plan, char *err)
{
    replica_file *files = NULL;
    replica_meta *metas = NULL;
    size_t n = 0;
    replica_target latest = {0, 0};
    memset(plan, 0, sizeof *plan);
    if (!target)
        target = &latest;
    lv_err rc = replica_list(r, -1, &files, &n, err);
    if (rc)
        goto done;
    if (target->time_ms != 0 && n > 0) {
        /* A time target compares header timestamps, not upload times (as Litestream does). */
        metas = lv_calloc(n, sizeof *metas);
        if (!metas) {
            rc = lv_fail(err, LV_ENOMEM, "out of memory");
            goto done;
        }
        if ((rc = replica_fetch_meta(r, files, n, metas, err)) != LV_OK) {
            lv_free(metas);
            metas = NULL;
            goto done;
        }
        for (size_t i = 0; i < n; i++)
            files[i].created_ms = metas[i].file.created_ms;
        replica_meta_free(metas, n);
        lv_free(metas);
        metas = NULL;
    }
    rc = replica_plan_restore(files, n, target, plan, err);
done:
    lv_free(files);
    return rc;
}

lv_err restore_check_chain(replica *r, const replica_file *files, const ltx_header *h,
                           const ltx_trailer *t, size_t n, char *err)
{
    char key[LV_ERRLEN], prev[LV_ERRLEN];
    for (size_t k = 0; k < n; k++) {
        key_of(r, &files[k], key, sizeof key);
        if (h[k].min_txid != files[k].min_txid || h[k].max_txid != files[k].max_txid)
            return lv_fail(err, LV_ECORRUPT,
                           "%s: header TXIDs %016llx-%016llx do not match the file name", key,
                           (ull)h[k].min_txid, (ull)h[k].max_txid);
        if (k == 0) {
            if (h[0].min_txid != 1)
                return lv_fail(err, LV_ECORRUPT,
                               "%s: the chain starts at TXID %016llx, not with a snapshot", key,
                               (ull)h[0].min_txid);
            continue;
        }
        key_of(r, &files[k - 1], prev, sizeof prev);
        if (h[k].page_size != h[0].page_size)
            return lv_fail(err, LV_ECORRUPT, "%s: page size %u, but %u before it", key,
                           h[k].page_size, h[0].page_size);
        if (h[k].min_txid > h[k - 1].max_txid + 1)
            return lv_fail(err, LV_ECORRUPT,
                           "non-contiguous ltx files: have up to TXID %016llx but the next file "
                           "starts at %016llx (%s)",
                           (ull)h[k - 1].max_txid, (ull)h[k].min_txid, key);
        if (h[k].max_txid <= h[k - 1].max_txid)
            return lv_fail(err, LV_ECORRUPT, "%s: does not go beyond TXID %016llx of %s", key,
                           (ull)h[k - 1].max_txid, prev);
        int tracked = !ltx_header_no_checksum(&h[k]) && !ltx_header_is_snapshot(&h[k]);
        int prev_tracked = !ltx_header_no_checksum(&h[k - 1]);
        if (tracked && prev_tracked && h[k].min_txid == h[k - 1].max_txid + 1 &&
            h[k].pre_apply_checksum != t[k - 1].post_apply_checksum)
            return lv_fail(err, LV_ECHECKSUM,
                           "%s: pre-apply checksum %016llx does not match the post-apply "
                           "checksum %016llx of %s",
                           key, (ull)h[k].pre_apply_checksum, (ull)t[k - 1].post_apply_checksum,
                           prev);
    }
    return LV_OK;
}

lv_err restore_verify_files(replica *r, const replica_file *files, size_t n,
                            const restore_options *o, restore_file_check *out, char *err)
{
    job j;
    memset(&j, 0, sizeof j);
    atomic_init(&j.failed, 0);
    j.r = r;
    j.out_fd = -1;
    if (o) {
        j.progress = o->progress;
        j.progress_ctx = o->progress_ctx;
    }
    for (size_t i = 0; i < n; i++)
        j.total += files[i].size;
    unsigned group = concurrency_of(o);
    lv_err rc = LV_OK;
    for (size_t first = 0; first < n && rc == LV_OK; first += group) {
        size_t cnt = n - first < group ? n - first : group;
        rc = run_group(&j, files + first, cnt, first, err);
        for (size_t i = 0; i < cnt && rc == LV_OK; i++) {
            worker *w = &j.w[i];
            restore_file_check *c = &out[first + i];
            memset(c, 0, sizeof *c);
            c->rc = w->rc;
            if (w->rc != LV_OK) {
                memcpy(c->err, w->err, sizeof c->err);
                continue;
            }
            c->header = w->h;
            c->trailer = w->t;
            c->pages = w->pages;
            c->pages_checksum = w->pages_xor;
        }
        group_free(&j);
    }
    return rc;
}

lv_err restore_run(replica *r, const replica_target *target, int out_fd, const restore_options *o,
                   restore_result *res, char *err)
{
    replica_plan plan = {NULL, 0, 0};
    replica_meta *metas = NULL;
    uint16_t *owner = NULL;
    ltx_header *hs = NULL;
    ltx_trailer *ts = NULL;
    uint64_t *sums = NULL;
    uint32_t *written = NULL, *expect = NULL, *limit = NULL, base_limit = UINT32_MAX;
    size_t n = 0;
    job j;
    char key[LV_ERRLEN];
    lv_err rc;

    memset(&j, 0, sizeof j);
    atomic_init(&j.failed, 0);
    if (res)
        memset(res, 0, sizeof *res);

    if ((rc = restore_plan(r, target, &plan, err)) != LV_OK)
        goto done;
    n = plan.n;
    if (n > UINT16_MAX) {
        rc = lv_fail(err, LV_EUNSUPPORTED, "a restore plan of %zu files is too long", n);
        goto done;
    }

    uint32_t final_commit = 0;
    if (n > 1) {
        /* Which file owns each page of the result: the last one that has it. */
        metas = lv_calloc(n - 1, sizeof *metas);
        if (!metas) {
            rc = lv_fail(err, LV_ENOMEM, "out of memory");
            goto done;
        }
        if ((rc = replica_fetch_meta(r, plan.files + 1, n - 1, metas, err)) != LV_OK) {
            lv_free(metas);
            metas = NULL;
            goto done;
        }
        final_commit = metas[n - 2].header.commit;
        owner = lv_calloc((size_t)final_commit + 1, sizeof *owner);
        expect = lv_calloc(n, sizeof *expect);
        limit = lv_calloc(n, sizeof *limit);
        if (!owner || !expect || !limit) {
            rc = lv_fail(err, LV_ENOMEM, "out of memory");
            goto done;
        }
        /* A page of file k survives unless a later file has it too, or a later file's commit
         * cut the database below it (growing again later gives a zero page, as apply does). */
        limit[n - 1] = UINT32_MAX;
        for (size_t k = n - 1; k > 0; k--) {
            uint32_t c = metas[k - 1].header.commit;
            limit[k - 1] = limit[k] < c ? limit[k] : c;
        }
        for (size_t k = 1; k < n; k++) {
            const ltx_page_index *idx = &metas[k - 1].index;
            for (size_t e = 0; e < idx->n; e++) {
                uint32_t p = idx->entries[e].pgno;
                if (p <= final_commit && p <= limit[k])
                    owner[p] = (uint16_t)k;
            }
        }
        base_limit = limit[0];
        for (uint32_t p = 1; p <= final_commit; p++)
            if (owner[p] != 0)
                expect[owner[p]]++;
        replica_meta_free(metas, n - 1);
        lv_free(metas);
        metas = NULL;
    }

    if (ftruncate(out_fd, 0) != 0) {
        rc = lv_fail(err, LV_EIO, "truncate the output: %s", strerror(errno));
        goto done;
    }

    hs = lv_calloc(n, sizeof *hs);
    ts = lv_calloc(n, sizeof *ts);
    sums = lv_calloc(n, sizeof *sums);
    written = lv_calloc(n, sizeof *written);
    if (!hs || !ts || !sums || !written) {
        rc = lv_fail(err, LV_ENOMEM, "out of memory");
        goto done;
    }
    j.r = r;
    j.restore = 1;
    j.out_fd = out_fd;
    j.owner = owner;
    j.final_commit = final_commit;
    j.base_limit = base_limit;
    j.fail_fast = 1;
    if (o) {
        j.progress = o->progress;
        j.progress_ctx = o->progress_ctx;
    }
    for (size_t i = 0; i < n; i++)
        j.total += plan.files[i].size;

    unsigned group = concurrency_of(o);
    for (size_t first = 0; first < n; first += group) {
        size_t cnt = n - first < group ? n - first : group;
        lv_err frc = run_group(&j, plan.files + first, cnt, first, err);
        /* A decoder's failure explains an aborted download better than the abort does (no
         * workers at all when their allocation failed). */
        for (size_t i = 0; j.w && i < cnt; i++) {
            worker *w = &j.w[i];
            if (w->rc != LV_OK && !w->aborted) {
                key_of(r, w->file, key, sizeof key);
                rc = lv_fail(err, w->rc, "%s: %s", key, w->err);
                group_free(&j);
                goto done;
            }
        }
        if (frc != LV_OK) {
            rc = frc;
            group_free(&j);
            goto done;
        }
        for (size_t i = 0; i < cnt; i++) {
            worker *w = &j.w[i];
            hs[first + i] = w->h;
            ts[first + i] = w->t;
            sums[first + i] = w->pages_xor ^ w->loser_xor;
            written[first + i] = w->written;
        }
        group_free(&j);
    }

    if ((rc = restore_check_chain(r, plan.files, hs, ts, n, err)) != LV_OK)
        goto done;
    uint32_t ps = hs[0].page_size;
    if (n == 1)
        final_commit = hs[0].commit;
    else if (hs[n - 1].commit != final_commit) {
        key_of(r, &plan.files[n - 1], key, sizeof key);
        rc = lv_fail(err, LV_ECORRUPT, "%s: commit %u, but its header said %u a moment ago", key,
                     hs[n - 1].commit, final_commit);
        goto done;
    }
    for (size_t k = 1; k < n; k++)
        if (written[k] != expect[k]) {
            key_of(r, &plan.files[k], key, sizeof key);
            rc = lv_fail(err, LV_ECORRUPT,
                         "%s: wrote %u pages, but its page index promised %u (changed while "
                         "restoring?)",
                         key, written[k], expect[k]);
            goto done;
        }

    /* The result's checksum: every page decoded, minus the ones not written, plus zero pages
     * where the database grew beyond what the base left with no later file holding the page. */
    uint64_t sum = 0;
    for (size_t k = 0; k < n; k++)
        sum ^= sums[k];
    uint32_t base_top = hs[0].commit < base_limit ? hs[0].commit : base_limit;
    if (owner && final_commit > base_top) {
        uint32_t p = base_top + 1;
        while (p <= final_commit) {
            if (owner[p] != 0) {
                p++;
                continue;
            }
            uint32_t q = p;
            while (q + 1 <= final_commit && owner[q + 1] == 0)
                q++;
            sum ^= ltx_zero_pages_checksum(p, q, ps);
            p = q + 1;
        }
    }
    sum |= LTX_CHECKSUM_FLAG;
    int verified = 0;
    if (!ltx_header_no_checksum(&hs[n - 1])) {
        if (sum != ts[n - 1].post_apply_checksum) {
            key_of(r, &plan.files[n - 1], key, sizeof key);
            rc = lv_fail(err, LV_ECHECKSUM,
                         "database checksum after restore %016llx does not match the post-apply "
                         "checksum %016llx of %s",
                         (ull)sum, (ull)ts[n - 1].post_apply_checksum, key);
            goto done;
        }
        verified = 1;
    }
    if (ftruncate(out_fd, (off_t)((uint64_t)final_commit * ps)) != 0) {
        rc = lv_fail(err, LV_EIO, "truncate the output to %u pages: %s", final_commit,
                     strerror(errno));
        goto done;
    }
    if (res) {
        res->plan_len = n;
        res->max_txid = hs[n - 1].max_txid;
        res->pages = final_commit;
        res->page_size = final_commit ? ps : 0;
        res->bytes_downloaded = j.downloaded;
        res->checksum = sum;
        res->checksum_verified = verified;
        res->timestamp_ms = hs[n - 1].timestamp;
    }
    rc = LV_OK;

done:
    if (res && rc != LV_OK)
        res->bytes_downloaded = j.downloaded;
    lv_free(plan.files);
    lv_free(owner);
    lv_free(expect);
    lv_free(limit);
    lv_free(hs);
    lv_free(ts);
    lv_free(sums);
    lv_free(written);
    return rc;
}
