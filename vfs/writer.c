/* writer: write mode's shared state, syncer and lock table (see writer.h). */
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "compact.h"
#include "crc64.h"
#include "l0file.h"
#include "lease.h"
#include "ltx.h"
#include "wbuf.h"

#define SYNC_MAGIC      "LVSYNC01"
#define SYNC_RECORD     64
#define SYNC_ATTEMPTS   32 /* upload attempts of one TXID remembered (the oldest dropped) */
#define SUM_KNOWN       LTX_CHECKSUM_FLAG /* every real page checksum has bit 63 set */
#define ERROR_LOG_EVERY 30000             /* ms between two logs of the same failing sync */

/* What an upload carried, to recognise it in the store later (see writer.h, "Sync"). */
typedef struct sync_record {
    uint64_t txid, base_txid, mark;
    uint32_t commit, page_size;
    uint64_t checksum; /* the new database checksum */
    uint64_t size, crc;
} sync_record;

struct wdb {
    wdb *next; /* in the registry */
    int refs;  /* guarded by the registry lock */
    vconf cfg;
    rdb *db;
    replica *rep;
    lease *lease;
    char *sync_path; /* <buffer>.sync */

    pthread_mutex_t mu;
    pthread_cond_t wake;
    /* guarded by mu */
    wbuf *buf; /* NULL for a new database until its first write */
    uint32_t page_size;
    int shared;              /* connections holding SHARED or more */
    const void *writer;      /* the connection holding RESERVED or more */
    int pending;             /* the writer waits for EXCLUSIVE */
    int exclusive;           /* the writer holds EXCLUSIVE */
    int in_tx;               /* the buffer's transaction is open */
    uint32_t tx_pages;       /* its database size */
    int tx_failed;           /* a write of it failed: SQLite rolls it back whole; so do we */
    uint64_t *sums;          /* checksum of each base page, SUM_KNOWN set when known */
    uint32_t n_sums;         /* entries in sums */
    char stopped[LV_ERRLEN]; /* not empty: writes refused, this is why */
    int stopping;
    uint64_t txid; /* durable */
    uint64_t syncs, sync_errors, compactions, compaction_errors;
    int64_t last_sync_ms;
    char last_error[LV_ERRLEN];
    int64_t last_error_log_ms;

    pthread_mutex_t sync_mu; /* one sync at a time; guards tried */
    /* the uploads of the next TXID so far whose outcome is unknown: any of them may have landed
     * (each attempt carries what was committed by then, so they differ) */
    sync_record tried[SYNC_ATTEMPTS];
    size_t n_tried;
    pthread_t syncer;
    int syncer_started;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static wdb *registry;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *desc(wdb *w)
{
    return replica_describe(w->rep);
}

/* ---- the sync record file ------------------------------------------------------------------ */

static void put64(uint8_t *b, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

static void encode_record(const sync_record *r, uint8_t out[SYNC_RECORD])
{
    memset(out, 0, SYNC_RECORD);
    memcpy(out, SYNC_MAGIC, 8);
    put64(out + 8, r->txid);
    put64(out + 16, r->base_txid);
    put64(out + 24, r->mark);
    put64(out + 32, (uint64_t)r->commit << 32 | r->page_size);
    put64(out + 40, r->checksum);
    put64(out + 48, r->size);
    put64(out + 56, r->crc);
}

static int decode_record(const uint8_t in[SYNC_RECORD], sync_record *r)
{
    if (memcmp(in, SYNC_MAGIC, 8) != 0)
        return 0;
    r->txid = get64(in + 8);
    r->base_txid = get64(in + 16);
    r->mark = get64(in + 24);
    uint64_t cp = get64(in + 32);
    r->commit = (uint32_t)(cp >> 32);
    r->page_size = (uint32_t)cp;
    r->checksum = get64(in + 40);
    r->size = get64(in + 48);
    r->crc = get64(in + 56);
    return r->txid != 0;
}

/*
 * <buffer>.sync holds the records of every upload attempt of the next TXID whose outcome is
 * unknown, the one about to go first (so any of them can be recognised after a crash). It is
 * replaced whole (<buffer>.sync.tmp, fdatasync, rename): a kill at any moment leaves the old
 * records or the new ones, never an empty file (rewriting it in place lost every record to a
 * kill between the truncation and the write, and the buffer was then set aside).
 */
static lv_err write_records(wdb *w, const sync_record *cur, char *err)
{
    uint8_t b[(SYNC_ATTEMPTS + 1) * SYNC_RECORD];
    size_t n = 0;
    encode_record(cur, b);
    for (n = 1; n <= w->n_tried; n++)
        encode_record(&w->tried[n - 1], b + n * SYNC_RECORD);
    char tmp[VCONF_PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", w->sync_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return lv_fail(err, LV_EIO, "%s: %s", tmp, strerror(errno));
    lv_err rc = LV_OK;
    if (write(fd, b, n * SYNC_RECORD) != (ssize_t)(n * SYNC_RECORD) || fdatasync(fd) != 0)
        rc = lv_fail(err, LV_EIO, "%s: %s", tmp, strerror(errno));
    close(fd);
    if (rc == LV_OK && rename(tmp, w->sync_path) != 0)
        rc = lv_fail(err, LV_EIO, "%s: rename: %s", w->sync_path, strerror(errno));
    if (rc != LV_OK)
        unlink(tmp);
    return rc;
}

/* An attempt whose outcome is unknown: remembered (the oldest goes when the table is full). */
static void remember_attempt(wdb *w, const sync_record *r)
{
    if (w->n_tried == SYNC_ATTEMPTS) {
        memmove(w->tried, w->tried + 1, (SYNC_ATTEMPTS - 1) * sizeof *w->tried);
        w->n_tried--;
    }
    w->tried[w->n_tried++] = *r;
}

static size_t read_records(const char *path, sync_record out[SYNC_ATTEMPTS + 1])
{
    uint8_t b[(SYNC_ATTEMPTS + 1) * SYNC_RECORD];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    size_t k = 0;
    for (size_t i = 0; i <= SYNC_ATTEMPTS && n >= (ssize_t)((i + 1) * SYNC_RECORD); i++)
        if (decode_record(b + i * SYNC_RECORD, &out[k]))
            k++;
    return k;
}

/* ---- is a stored file ours? ---------------------------------------------------------------- */

/*
 * Reads level-0 file txid from the store and compares it with the records: the index of the
 * record it matches (size and CRC-64), or -1 (another writer's). LV_ENOTFOUND: no such file.
 */
static lv_err stored_matches(wdb *w, uint64_t txid, const sync_record *recs, size_t n, int *which,
                             char *err)
{
    *which = -1;
    lv_buf body;
    lv_buf_init(&body);
    replica_file f = {0, txid, txid, 0, 0};
    lv_err rc = replica_read(w->rep, &f, 0, S3_TO_END, &body, err);
    if (rc == LV_OK) {
        uint64_t crc = crc64_update(0, body.data, body.len);
        for (size_t i = 0; i < n; i++)
            if (recs[i].txid == txid && recs[i].size == body.len && recs[i].crc == crc)
                *which = (int)i;
        if (*which < 0)
            rdb_log(VCONF_LOG_WARN,
                    "%s: level-0 TXID %016llx is stored (%zu bytes, CRC-64 %016llx) and none of "
                    "the %zu upload record(s) in %s matches it",
                    desc(w), (unsigned long long)txid, body.len, (unsigned long long)crc, n,
                    w->sync_path);
    }
    lv_buf_free(&body);
    return rc;
}

/* ---- the checksum table -------------------------------------------------------------------- */

/* Called with mu held. */
static void sum_set(wdb *w, uint32_t pgno, uint64_t sum)
{
    if (pgno > w->n_sums) {
        uint32_t n = w->n_sums ? w->n_sums : 1024;
        while (n < pgno)
            n = n > UINT32_MAX / 2 ? pgno : n * 2;
        uint64_t *t = lv_realloc(w->sums, (size_t)n * sizeof *t);
        if (!t)
            return; /* unknown stays unknown: read again at sync time */
        memset(t + w->n_sums, 0, (size_t)(n - w->n_sums) * sizeof *t);
        w->sums = t;
        w->n_sums = n;
    }
    w->sums[pgno - 1] = sum | SUM_KNOWN;
}

/* Reads page pgno of the newest map (the base) into out, rebuilding the map when its file is
 * gone (compacted away). Records its checksum. */
static lv_err read_base(wdb *w, uint32_t pgno, uint8_t *out, char *err)
{
    pagemap *m = rdb_latest(w->db);
    lv_err rc;
    if (pgno > pagemap_commit(m)) {
        memset(out, 0, pagemap_page_size(m));
        rc = LV_OK;
    } else {
        rc = rdb_read_page(w->db, m, pgno, out, err);
        if (rc == LV_ECONFLICT) {
            pagemap *nm = NULL;
            rc = rdb_rebuild(w->db, pagemap_txid(m), &nm, err);
            if (rc == LV_OK) {
                rc = rdb_read_page(w->db, nm, pgno, out, err);
                pagemap_unref(nm);
            }
        }
    }
    uint32_t ps = pagemap_page_size(m);
    pagemap_unref(m);
    if (rc == LV_OK && pgno != ltx_lock_pgno(ps)) {
        pthread_mutex_lock(&w->mu);
        int known = pgno <= w->n_sums && (w->sums[pgno - 1] & SUM_KNOWN);
        pthread_mutex_unlock(&w->mu);
        if (!known) { /* computed once a page: a CRC-64 of it */
            uint64_t sum = ltx_page_checksum(pgno, out, ps);
            pthread_mutex_lock(&w->mu);
            sum_set(w, pgno, sum);
            pthread_mutex_unlock(&w->mu);
        }
    }
    return rc;
}

/* l0file's callback: the checksum of pgno's base image, from the table or read. */
static lv_err base_sum(void *ctx, uint32_t pgno, uint64_t *sum, char *err)
{
    wdb *w = ctx;
    pthread_mutex_lock(&w->mu);
    uint64_t s = pgno <= w->n_sums ? w->sums[pgno - 1] : 0;
    uint32_t ps = w->page_size;
    pthread_mutex_unlock(&w->mu);
    if (s & SUM_KNOWN) {
        *sum = s;
        return LV_OK;
    }
    uint8_t *page = lv_malloc(ps);
    if (!page)
        return lv_fail(err, LV_ENOMEM, "out of memory");
    lv_err rc = read_base(w, pgno, page, err);
    if (rc == LV_OK)
        *sum = ltx_page_checksum(pgno, page, ps);
    lv_free(page);
    return rc;
}

/* ---- stopping --------------------------------------------------------------------------- */

/* The writer may not write any more (lease lost, another writer's file): said once, kept. */
static void stop_writer(wdb *w, const char *why)
{
    pthread_mutex_lock(&w->mu);
    int first = !w->stopped[0];
    if (first)
        snprintf(w->stopped, sizeof w->stopped, "%s", why);
    pthread_mutex_unlock(&w->mu);
    if (first)
        rdb_log(VCONF_LOG_ERROR,
                "%s: writes stopped: %s (the write buffer %s is kept with what was not shipped)",
                desc(w), why, w->cfg.buffer);
}

/* ---- sync ---------------------------------------------------------------------------------- */

/* Makes sure the lease holds for a while yet (renewing it when a third of its TTL is gone). */
static lv_err hold_lease(wdb *w, char *err)
{
    int64_t left = lease_expires_ms(w->lease) - wall_ms();
    if (left > w->cfg.lease_ttl_ms * 2 / 3)
        return LV_OK;
    lv_err rc = lease_renew(w->lease, err);
    if (rc == LV_ECONFLICT) {
        stop_writer(w, err);
        return rc;
    }
    if (rc != LV_OK && lease_expires_ms(w->lease) - wall_ms() < 1000)
        return lv_wrap(err, rc, "the lease expires and cannot be renewed: ");
    return LV_OK; /* a failed renewal with time left: try again at the next tick */
}

/* After file (TXID r->txid) is in the store: the map, the checksums, the buffer, the record. */
static lv_err settle(wdb *w, const sync_record *r, const wbuf_dirty *d, const l0file_result *res,
                     const uint8_t *stored, size_t stored_len, char *err)
{
    lv_err rc;
    if (res)
        rc = rdb_publish_local(w->db, res->data, res->size, d->pgnos, d->pages, d->n, err);
    else
        rc = rdb_publish_local(w->db, stored, stored_len, NULL, NULL, 0, err);
    if (rc != LV_OK)
        return rc;
    pthread_mutex_lock(&w->mu);
    if (res) {
        for (size_t i = 0; i < d->n; i++)
            sum_set(
                w, d->pgnos[i],
                ltx_page_checksum(d->pgnos[i], d->pages + i * (size_t)d->page_size, d->page_size));
    } else { /* a file recognised from a record: its pages are not at hand */
        memset(w->sums, 0, (size_t)w->n_sums * sizeof *w->sums);
    }
    for (uint32_t p = r->commit + 1; p <= w->n_sums; p++)
        w->sums[p - 1] = 0;
    pthread_mutex_unlock(&w->mu);
    wbuf_dirty md = {0};
    md.page_size = r->page_size;
    md.base_txid = r->base_txid;
    md.commit = r->commit;
    md.mark = r->mark;
    rc = wbuf_mark_synced(w->buf, &md, r->txid, r->checksum, err);
    if (rc != LV_OK)
        return rc; /* the record stays: the next sync recognises the file again */
    unlink(w->sync_path);
    pthread_mutex_lock(&w->mu);
    w->txid = r->txid;
    w->syncs++;
    w->last_sync_ms = wall_ms();
    pthread_mutex_unlock(&w->mu);
    rdb_log(VCONF_LOG_DEBUG, "%s: TXID %016llx is durable", desc(w), (unsigned long long)r->txid);
    return LV_OK;
}

/*
 * One sync of what is committed now. *again = 1 when an earlier upload turned out to have
 * landed: what is left goes up as the next TXID (the caller loops). Called with sync_mu held.
 */
static lv_err sync_once(wdb *w, int *again, char *err)
{
    *again = 0;
    pthread_mutex_lock(&w->mu);
    wbuf *buf = w->buf;
    int stopped = w->stopped[0] != 0;
    pthread_mutex_unlock(&w->mu);
    if (stopped)
        return lv_fail(err, LV_ECONFLICT, "%s", w->stopped);
    if (!buf)
        return LV_OK; /* a new database nothing was written to */
    wbuf_dirty d;
    lv_err rc = wbuf_dirty_get(buf, &d, err);
    if (rc != LV_OK || d.txs == 0) {
        wbuf_dirty_free(&d);
        return rc;
    }
    l0file_result res = {0};
    rc = hold_lease(w, err);
    if (rc != LV_OK)
        goto done;
    l0file_input in = {
        .page_size = d.page_size,
        .base_txid = d.base_txid,
        .base_checksum = d.base_checksum,
        .base_commit = d.base_commit,
        .commit = d.commit,
        .n = d.n,
        .pgnos = d.pgnos,
        .pages = d.pages,
        .timestamp_ms = wall_ms(),
        .base_page_checksum = base_sum,
        .ctx = w,
        .no_checksum = d.base_txid != 0 && d.base_checksum == 0,
    };
    rc = l0file_encode(&in, &res, err);
    if (rc != LV_OK)
        goto done;
    sync_record r = {d.base_txid + 1, d.base_txid,  d.mark,   d.commit,
                     d.page_size,     res.checksum, res.size, crc64_update(0, res.data, res.size)};
    rc = write_records(w, &r, err);
    if (rc != LV_OK)
        goto done;
    rc = replica_write(w->rep, 0, res.data, res.size, 1, err);
    if (rc == LV_OK) {
        w->n_tried = 0;
        rc = settle(w, &r, &d, &res, NULL, 0, err);
        goto done;
    }
    if (rc != LV_ECONFLICT) { /* unknown whether it landed: remember it */
        remember_attempt(w, &r);
        goto done;
    }
    /* 412: the file exists. Ours (this upload, or an earlier one that was answered with an
     * error after all)? */
    lv_buf body;
    lv_buf_init(&body);
    replica_file f = {0, r.txid, r.txid, 0, 0};
    char rerr[LV_ERRLEN] = "";
    lv_err grc = replica_read(w->rep, &f, 0, S3_TO_END, &body, rerr);
    int which = -2; /* -1: this upload; >= 0: tried[which] */
    if (grc == LV_OK) {
        uint64_t crc = crc64_update(0, body.data, body.len);
        if (r.size == body.len && r.crc == crc)
            which = -1;
        for (size_t i = 0; which == -2 && i < w->n_tried; i++)
            if (w->tried[i].txid == r.txid && w->tried[i].size == body.len &&
                w->tried[i].crc == crc)
                which = (int)i;
    }
    if (grc != LV_OK) {
        rc = lv_fail(err, grc, "TXID %016llx exists already; reading it back: %s",
                     (unsigned long long)r.txid, rerr);
    } else if (which == -1) {
        w->n_tried = 0;
        rc = settle(w, &r, &d, &res, NULL, 0, err);
    } else if (which >= 0) {
        rdb_log(VCONF_LOG_INFO, "%s: an earlier upload of TXID %016llx had landed", desc(w),
                (unsigned long long)r.txid);
        sync_record landed = w->tried[which];
        w->n_tried = 0;
        rc = settle(w, &landed, &d, NULL, (const uint8_t *)body.data, body.len, err);
        *again = rc == LV_OK;
    } else {
        char why[LV_ERRLEN];
        snprintf(why, sizeof why,
                 "level-0 file of TXID %016llx was written by another writer (the upload got "
                 "412 and the stored file is not ours)",
                 (unsigned long long)r.txid);
        stop_writer(w, why);
        rc = lv_fail(err, LV_ECONFLICT, "%s", why);
    }
    lv_buf_free(&body);
done:
    l0file_result_free(&res);
    wbuf_dirty_free(&d);
    return rc;
}

static lv_err do_sync(wdb *w, char *err)
{
    pthread_mutex_lock(&w->sync_mu);
    lv_err rc;
    int again = 0, rounds = 0;
    do
        rc = sync_once(w, &again, err);
    while (rc == LV_OK && again && ++rounds < 4);
    pthread_mutex_unlock(&w->sync_mu);
    pthread_mutex_lock(&w->mu);
    if (rc != LV_OK) {
        w->sync_errors++;
        snprintf(w->last_error, sizeof w->last_error, "%s", err);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

lv_err wdb_sync(wdb *w, uint64_t *txid, char *err)
{
    lv_err rc = do_sync(w, err);
    *txid = wdb_txid(w);
    return rc;
}

uint64_t wdb_txid(wdb *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t t = w->txid;
    pthread_mutex_unlock(&w->mu);
    return t;
}

/* ---- compaction ---------------------------------------------------------------------------- */

static void compact_report(void *ctx, const char *line)
{
    rdb_log(VCONF_LOG_DEBUG, "%s: compaction: %s", desc(ctx), line);
}

static void run_compaction(wdb *w)
{
    compact_options o;
    compact_options_default(&o);
    for (int l = 1; l <= 3; l++)
        o.interval_ms[l] = w->cfg.level_interval_ms[l];
    o.snapshot_interval_ms = w->cfg.snapshot_interval_ms;
    o.retention_ms = w->cfg.retention_ms;
    o.l0_retention_ms = w->cfg.l0_retention_ms;
    o.now_ms = wall_ms();
    o.max_txid = wdb_txid(w);
    char dir[VCONF_PATH_MAX]; /* a snapshot's restore goes beside the buffer, not to /tmp */
    snprintf(dir, sizeof dir, "%s", w->cfg.buffer);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        o.tmp_dir = dir;
    }
    if (!o.max_txid)
        return;
    char err[LV_ERRLEN] = "";
    compact_stats st = {0};
    lv_err rc = compact_pass(w->rep, &o, compact_report, w, &st, err);
    pthread_mutex_lock(&w->mu);
    if (rc == LV_OK)
        w->compactions += st.compactions[1] + st.compactions[2] + st.compactions[3] + st.snapshots;
    else
        w->compaction_errors++;
    pthread_mutex_unlock(&w->mu);
    if (rc != LV_OK)
        rdb_log(VCONF_LOG_WARN, "%s: compaction: %s", desc(w), err);
}

/* ---- the syncer ---------------------------------------------------------------------------- */

static void *syncer_main(void *arg)
{
    wdb *w = arg;
    int64_t now = wall_ms();
    int64_t next_sync = w->cfg.sync_interval_ms > 0 ? now + w->cfg.sync_interval_ms : INT64_MAX;
    int64_t next_renew = now + w->cfg.lease_ttl_ms / 3;
    int64_t compact_every = w->cfg.level_interval_ms[1] > 0 ? w->cfg.level_interval_ms[1] : 1000;
    int64_t next_compact = w->cfg.compaction ? now + compact_every : INT64_MAX;
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        now = wall_ms();
        int64_t next = next_sync < next_renew ? next_sync : next_renew;
        if (next_compact < next)
            next = next_compact;
        if (next > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ms = next - now;
            ts.tv_sec += ms / 1000;
            ts.tv_nsec += (ms % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&w->wake, &w->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&w->mu);
        char err[LV_ERRLEN] = "";
        if (now >= next_sync) {
            if (do_sync(w, err) != LV_OK) {
                pthread_mutex_lock(&w->mu);
                int log = now - w->last_error_log_ms >= ERROR_LOG_EVERY;
                if (log)
                    w->last_error_log_ms = now;
                pthread_mutex_unlock(&w->mu);
                if (log)
                    rdb_log(VCONF_LOG_WARN, "%s: sync failed (will retry; commits stay in %s): %s",
                            desc(w), w->cfg.buffer, err);
            }
            next_sync = wall_ms() + w->cfg.sync_interval_ms;
        }
        if (now >= next_renew) {
            pthread_mutex_lock(&w->sync_mu); /* lease_renew must not overlap a sync's renewal */
            lv_err rc = lease_renew(w->lease, err);
            pthread_mutex_unlock(&w->sync_mu);
            if (rc == LV_ECONFLICT)
                stop_writer(w, err);
            else if (rc != LV_OK)
                rdb_log(VCONF_LOG_WARN, "%s: lease renewal failed (will retry): %s", desc(w), err);
            next_renew = wall_ms() + (rc == LV_OK ? w->cfg.lease_ttl_ms / 3 : 1000);
        }
        if (now >= next_compact) {
            run_compaction(w);
            next_compact = wall_ms() + compact_every;
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- open ---------------------------------------------------------------------------------- */

/* mkdir -p of path's folder (0700 for the ones made here). */
static void make_parent(const char *path)
{
    char dir[VCONF_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *s = dir + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        mkdir(dir, 0700);
        *s = '/';
    }
}

/* Moves the buffer aside (its window cannot be shipped any more) and says so. */
static void orphan_buffer(wdb *w, wbuf *b, const char *why)
{
    wbuf_info info;
    wbuf_get_info(b, &info);
    char aside[VCONF_PATH_MAX + 64];
    snprintf(aside, sizeof aside, "%s.orphaned-%016llx", w->cfg.buffer,
             (unsigned long long)info.base_txid);
    int moved = rename(w->cfg.buffer, aside) == 0;
    wbuf_close(b);
    unlink(w->sync_path);
    rdb_log(VCONF_LOG_ERROR,
            "%s: the write buffer %s held %llu unshipped transaction(s) on top of TXID %016llx, "
            "but %s: they are NOT in the replica; %s",
            desc(w), w->cfg.buffer, (unsigned long long)info.txs,
            (unsigned long long)info.base_txid, why,
            moved ? "the buffer is kept as" : "and it could not be moved aside to");
    if (moved)
        rdb_log(VCONF_LOG_ERROR, "%s: kept: %s", desc(w), aside);
}

/*
 * The buffer for the replica's state now (see writer.h, open step 3). Sets w->buf (NULL for a
 * new database without a buffer yet) and w->txid.
 */
static lv_err open_buffer(wdb *w, char *err)
{
    pagemap *m = rdb_latest(w->db);
    uint64_t rtxid = pagemap_txid(m);
    uint64_t rsum = pagemap_checksum(m);
    uint32_t rcommit = pagemap_commit(m);
    uint32_t rps = rtxid ? pagemap_page_size(m) : 0;
    pagemap_unref(m);
    w->txid = rtxid;
    make_parent(w->cfg.buffer);
    char stale[VCONF_PATH_MAX + 16]; /* a record being written when a process died */
    snprintf(stale, sizeof stale, "%s.tmp", w->sync_path);
    unlink(stale);

    wbuf *b = NULL;
    wbuf_info info;
    lv_err rc = wbuf_open(&b, w->cfg.buffer, w->cfg.buffer_max, 0, &info, err);
    if (rc == LV_OK) {
        if (info.dropped_bytes)
            rdb_log(VCONF_LOG_WARN,
                    "%s: write buffer %s: %llu bytes of an unfinished transaction "
                    "dropped",
                    desc(w), w->cfg.buffer, (unsigned long long)info.dropped_bytes);
        if (info.base_txid + 1 == rtxid) { /* an upload that landed before a crash? */
            sync_record recs[SYNC_ATTEMPTS + 1];
            size_t n = read_records(w->sync_path, recs);
            int which = -1;
            char rerr[LV_ERRLEN] = "";
            if (n && stored_matches(w, rtxid, recs, n, &which, rerr) == LV_OK && which >= 0 &&
                recs[which].base_txid == info.base_txid) {
                wbuf_dirty md = {0};
                md.page_size = recs[which].page_size;
                md.base_txid = recs[which].base_txid;
                md.commit = recs[which].commit;
                md.mark = recs[which].mark;
                rc = wbuf_mark_synced(b, &md, recs[which].txid, recs[which].checksum, err);
                if (rc != LV_OK) {
                    wbuf_close(b);
                    return rc;
                }
                unlink(w->sync_path);
                rdb_log(VCONF_LOG_INFO,
                        "%s: TXID %016llx from the write buffer had landed "
                        "before the last exit",
                        desc(w), (unsigned long long)rtxid);
                wbuf_get_info(b, &info);
            }
        }
        char why[LV_ERRLEN] = "";
        if (info.base_txid != rtxid)
            snprintf(why, sizeof why, "the replica is at TXID %016llx (another writer wrote it)",
                     (unsigned long long)rtxid);
        else if (rtxid && info.page_size != rps)
            snprintf(why, sizeof why, "its page size is %u and the replica's %u", info.page_size,
                     rps);
        if (why[0]) {
            orphan_buffer(w, b, why);
            b = NULL;
        } else {
            if (info.txs)
                rdb_log(VCONF_LOG_INFO,
                        "%s: write buffer %s holds %llu unshipped "
                        "transaction(s): the next sync ships them",
                        desc(w), w->cfg.buffer, (unsigned long long)info.txs);
            w->buf = b;
            w->page_size = info.page_size;
            return LV_OK;
        }
    } else if (rc != LV_ENOTFOUND) {
        return rc;
    }
    unlink(w->sync_path);
    if (!rtxid)
        return LV_OK; /* a new database: the buffer comes with the first write's page size */
    rc = wbuf_create(&w->buf, w->cfg.buffer, rps, rtxid, rsum, rcommit, w->cfg.buffer_max, 0, err);
    if (rc == LV_OK)
        w->page_size = rps;
    return rc;
}

static void wdb_free(wdb *w)
{
    if (!w)
        return;
    if (w->syncer_started) {
        pthread_mutex_lock(&w->mu);
        w->stopping = 1;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->syncer, NULL);
    }
    int left = 0; /* transactions still to ship */
    if (w->buf && w->lease) {
        char err[LV_ERRLEN] = "";
        if (do_sync(w, err) != LV_OK) {
            wbuf_info info;
            wbuf_get_info(w->buf, &info);
            left = 1;
            rdb_log(VCONF_LOG_ERROR,
                    "%s: the last sync failed: %s; %llu committed transaction(s) on top of TXID "
                    "%016llx stay in the write buffer %s and ship at the next open with it",
                    desc(w), err, (unsigned long long)info.txs, (unsigned long long)info.base_txid,
                    w->cfg.buffer);
        }
    }
    if (w->buf) {
        wbuf_info info;
        wbuf_get_info(w->buf, &info);
        wbuf_close(w->buf);
        if (!left && info.txs == 0 && !info.in_tx) { /* nothing to keep */
            char lock[VCONF_PATH_MAX + 8];
            snprintf(lock, sizeof lock, "%s.lock", w->cfg.buffer);
            unlink(w->cfg.buffer);
            unlink(lock);
        }
    }
    if (w->lease) {
        char err[LV_ERRLEN] = "";
        if (lease_release(w->lease, err) != LV_OK)
            rdb_log(VCONF_LOG_WARN, "%s: giving the lease back: %s", desc(w), err);
    }
    rdb_release(w->db);
    lv_free(w->sums);
    lv_free(w->sync_path);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->sync_mu);
    lv_free(w);
}

static lv_err wdb_open(const vconf *c, wdb **out, char *err)
{
    *out = NULL;
    wdb *w = lv_calloc(1, sizeof *w);
    if (!w)
        return lv_fail(err, LV_ENOMEM, "out of memory");
    w->cfg = *c;
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->sync_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);
    size_t n = strlen(c->buffer);
    w->sync_path = lv_malloc(n + 6);
    if (!w->sync_path) {
        lv_free(w);
        return lv_fail(err, LV_ENOMEM, "out of memory");
    }
    memcpy(w->sync_path, c->buffer, n);
    memcpy(w->sync_path + n, ".sync", 6);

    lv_err rc = rdb_acquire(c, &w->db, err);
    if (rc != LV_OK)
        goto fail;
    w->rep = rdb_replica(w->db);
    rc = lease_acquire(w->rep, c->lease_ttl_ms, NULL, NULL, &w->lease, err);
    if (rc != LV_OK)
        goto fail;
    rc = rdb_refresh(w->db, err);
    if (rc == LV_OK)
        rc = open_buffer(w, err);
    if (rc != LV_OK)
        goto fail;
    if (pthread_create(&w->syncer, NULL, syncer_main, w) != 0) {
        rc = lv_fail(err, LV_ENOMEM, "cannot start the syncer thread");
        goto fail;
    }
    w->syncer_started = 1;
    rdb_log(VCONF_LOG_INFO, "%s: writing (lease generation %lld, durable TXID %016llx, buffer %s)",
            desc(w), (long long)lease_generation(w->lease), (unsigned long long)w->txid, c->buffer);
    *out = w;
    return LV_OK;
fail:
    if (w->db)
        lv_wrap(err, rc, "%s: ", desc(w));
    wdb_free(w);
    return rc;
}

lv_err wdb_acquire(const vconf *c, wdb **out, char *err)
{
    pthread_mutex_lock(&registry_mu);
    for (wdb *w = registry; w; w = w->next) {
        if (strcmp(w->cfg.replica, c->replica) == 0) {
            w->refs++;
            pthread_mutex_unlock(&registry_mu);
            *out = w;
            return LV_OK;
        }
    }
    /* opened under the registry lock: two opens of one replica must make one writer */
    lv_err rc = wdb_open(c, out, err);
    if (rc == LV_OK) {
        (*out)->refs = 1;
        (*out)->next = registry;
        registry = *out;
    }
    pthread_mutex_unlock(&registry_mu);
    return rc;
}

void wdb_release(wdb *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&registry_mu);
    if (--w->refs > 0) {
        pthread_mutex_unlock(&registry_mu);
        return;
    }
    for (wdb **p = &registry; *p; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_mu);
    wdb_free(w);
}

rdb *wdb_rdb(wdb *w)
{
    return w->db;
}

/* ---- locks ------------------------------------------------------------------------------- */

int wdb_lock(wdb *w, const void *owner, int cur, int level)
{
    int rc = SQLITE_OK;
    pthread_mutex_lock(&w->mu);
    if (level == SQLITE_LOCK_SHARED) {
        if (cur == SQLITE_LOCK_NONE) {
            if ((w->pending || w->exclusive) && w->writer != owner)
                rc = SQLITE_BUSY;
            else
                w->shared++;
        }
    } else if (level == SQLITE_LOCK_RESERVED) {
        if (w->stopped[0])
            rc = SQLITE_READONLY;
        else if (w->writer && w->writer != owner)
            rc = SQLITE_BUSY;
        else
            w->writer = owner;
    } else if (level >= SQLITE_LOCK_PENDING) {
        if (w->stopped[0]) {
            rc = SQLITE_READONLY;
        } else if (w->writer && w->writer != owner) {
            rc = SQLITE_BUSY;
        } else {
            w->writer = owner;
            w->pending = 1;
            if (level == SQLITE_LOCK_EXCLUSIVE) {
                if (w->shared > 1) {
                    rc = SQLITE_BUSY; /* stays PENDING: no new reader gets in */
                } else {
                    w->exclusive = 1;
                    w->pending = 0;
                }
            }
        }
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/*
 * Commits the open transaction. Called with mu held. A transaction one of whose writes failed is
 * dropped instead: SQLite (its pager in the error state) rolls the whole transaction back, and
 * the state before it is what the buffer holds without it.
 */
static int commit_locked(wdb *w, char *err)
{
    if (!w->in_tx)
        return SQLITE_OK;
    if (w->tx_failed) {
        wbuf_rollback(w->buf, NULL);
        w->in_tx = w->tx_failed = 0;
        return SQLITE_OK;
    }
    lv_err rc = wbuf_commit(w->buf, w->tx_pages, err);
    if (rc != LV_OK) {
        wbuf_rollback(w->buf, NULL);
        w->in_tx = 0;
        return rc == LV_ENOMEM ? SQLITE_FULL : SQLITE_IOERR_FSYNC;
    }
    w->in_tx = 0;
    return SQLITE_OK;
}

int wdb_unlock(wdb *w, const void *owner, int cur, int level, char *err)
{
    int rc = SQLITE_OK;
    pthread_mutex_lock(&w->mu);
    if (level < SQLITE_LOCK_RESERVED && w->writer == owner) {
        if (w->in_tx) { /* never committed (SQLite rolled it back): what it wrote goes */
            if (wbuf_rollback(w->buf, err) != LV_OK)
                rc = SQLITE_IOERR_UNLOCK;
            w->in_tx = w->tx_failed = 0;
        }
        w->writer = NULL;
        w->pending = w->exclusive = 0;
    }
    if (level == SQLITE_LOCK_NONE && cur >= SQLITE_LOCK_SHARED && w->shared > 0)
        w->shared--;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int wdb_reserved_by_other(wdb *w, const void *owner)
{
    pthread_mutex_lock(&w->mu);
    int r = w->writer && w->writer != owner;
    pthread_mutex_unlock(&w->mu);
    return r;
}

/* ---- pages ------------------------------------------------------------------------------- */

uint32_t wdb_page_size(wdb *w)
{
    pthread_mutex_lock(&w->mu);
    uint32_t ps = w->page_size;
    pthread_mutex_unlock(&w->mu);
    return ps;
}

uint32_t wdb_pages(wdb *w, const void *owner)
{
    pthread_mutex_lock(&w->mu);
    uint32_t n = 0;
    if (w->in_tx && w->writer == owner)
        n = w->tx_pages;
    else if (w->buf)
        n = wbuf_commit_pages(w->buf);
    pthread_mutex_unlock(&w->mu);
    return n;
}

int wdb_read(wdb *w, const void *owner, uint32_t pgno, uint8_t *out, char *err)
{
    pthread_mutex_lock(&w->mu);
    wbuf *b = w->buf;
    int pending = w->in_tx && w->writer == owner;
    pthread_mutex_unlock(&w->mu);
    if (b) { /* the buffer first; then the map (published before the buffer drops a window) */
        int found = 0;
        lv_err rc = wbuf_lookup(b, pgno, pending, out, &found, err);
        if (rc != LV_OK)
            return SQLITE_IOERR_READ;
        if (found)
            return SQLITE_OK;
    }
    return read_base(w, pgno, out, err) == LV_OK ? SQLITE_OK : SQLITE_IOERR_READ;
}

int wdb_write(wdb *w, const void *owner, uint32_t pgno, const void *page, uint32_t size, char *err)
{
    int rc = SQLITE_OK;
    lv_err e = LV_OK;
    pthread_mutex_lock(&w->mu);
    if (w->stopped[0]) {
        lv_fail(err, LV_ECONFLICT, "writes stopped: %s", w->stopped);
        rc = SQLITE_READONLY;
        goto done;
    }
    if (w->writer != owner) {
        lv_fail(err, LV_EINVAL, "a write without the write lock");
        rc = SQLITE_IOERR_WRITE;
        goto done;
    }
    if (!w->buf) { /* a new database: its first write sets the page size */
        if (!ltx_page_size_valid(size)) {
            lv_fail(err, LV_EINVAL, "a first write of %u bytes is not a page", size);
            rc = SQLITE_IOERR_WRITE;
            goto done;
        }
        e = wbuf_create(&w->buf, w->cfg.buffer, size, 0, 0, 0, w->cfg.buffer_max, 0, err);
        if (e != LV_OK) {
            rc = SQLITE_IOERR_WRITE;
            goto done;
        }
        w->page_size = size;
    }
    if (size != w->page_size) {
        lv_fail(err, LV_EUNSUPPORTED,
                "a write of %u bytes to a database of %u-byte pages (changing the page size of a "
                "replica is not supported)",
                size, w->page_size);
        rc = SQLITE_IOERR_WRITE;
        goto done;
    }
    if (!w->in_tx) {
        e = wbuf_begin(w->buf, err);
        if (e != LV_OK) {
            rc = SQLITE_IOERR_WRITE;
            goto done;
        }
        w->in_tx = 1;
        w->tx_pages = wbuf_commit_pages(w->buf);
    }
    if (pgno == ltx_lock_pgno(w->page_size))
        goto done; /* never holds data; SQLite does not write it, but be safe */
    e = wbuf_page(w->buf, pgno, page, err);
    if (e != LV_OK) {
        rc = e == LV_ENOMEM ? SQLITE_FULL : SQLITE_IOERR_WRITE;
        if (e == LV_ENOMEM)
            lv_wrap(err, e,
                    "the write buffer is full (LITESTREAM_BUFFER_MAX / buffer_max; the "
                    "store is not taking syncs?): ");
        goto done;
    }
    if (pgno > w->tx_pages)
        w->tx_pages = pgno;
done:
    if (rc != SQLITE_OK && w->in_tx)
        w->tx_failed = 1;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int wdb_truncate(wdb *w, const void *owner, uint32_t pages, char *err)
{
    pthread_mutex_lock(&w->mu);
    int rc = SQLITE_OK;
    if (w->writer != owner || !w->buf) {
        lv_fail(err, LV_EINVAL, "a truncate without the write lock");
        rc = SQLITE_IOERR_TRUNCATE;
    } else {
        if (!w->in_tx) {
            if (wbuf_begin(w->buf, err) != LV_OK) {
                pthread_mutex_unlock(&w->mu);
                return SQLITE_IOERR_TRUNCATE;
            }
            w->in_tx = 1;
        }
        w->tx_pages = pages;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int wdb_commit(wdb *w, const void *owner, char *err)
{
    pthread_mutex_lock(&w->mu);
    int rc = w->writer == owner ? commit_locked(w, err) : SQLITE_OK;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* ---- stats ------------------------------------------------------------------------------- */

static void json_string(lv_buf *out, const char *s)
{
    lv_buf_putc(out, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            lv_buf_putc(out, '\\');
        if ((unsigned char)*s >= 0x20)
            lv_buf_putc(out, *s);
    }
    lv_buf_putc(out, '"');
}

void wdb_stats_json(wdb *w, lv_buf *out)
{
    wbuf_info info = {0};
    pthread_mutex_lock(&w->mu);
    if (w->buf)
        wbuf_get_info(w->buf, &info);
    lv_buf_printf(out,
                  "{\"txid\":\"%016llx\",\"pending_txs\":%llu,\"dirty_pages\":%zu,"
                  "\"buffer_bytes\":%llu,\"syncs\":%llu,\"sync_errors\":%llu,"
                  "\"last_sync_ms\":%lld,\"compactions\":%llu,\"compaction_errors\":%llu,"
                  "\"stopped\":%d,\"last_error\":",
                  (unsigned long long)w->txid, (unsigned long long)info.txs, info.dirty_pages,
                  (unsigned long long)info.bytes, (unsigned long long)w->syncs,
                  (unsigned long long)w->sync_errors, (long long)w->last_sync_ms,
                  (unsigned long long)w->compactions, (unsigned long long)w->compaction_errors,
                  w->stopped[0] != 0);
    json_string(out, w->stopped[0] ? w->stopped : w->last_error);
    lv_buf_puts(out, ",\"buffer\":");
    json_string(out, w->cfg.buffer);
    pthread_mutex_unlock(&w->mu);
    lv_buf_puts(out, ",\"lease\":{\"owner\":");
    json_string(out, lease_holder(w->lease));
    lv_buf_printf(out, ",\"generation\":%lld,\"expires_ms\":%lld,\"lost\":%d}}",
                  (long long)lease_generation(w->lease), (long long)lease_expires_ms(w->lease),
                  lease_lost(w->lease));
}
