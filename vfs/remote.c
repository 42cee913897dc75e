/* remote: a replica shared by the connections that open it (see remote.h). */
#include "remote.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "cache.h"
#include "hydrate.h"
#include "replica.h"

#define READAHEAD_MAX 64 /* pages in one ranged GET at most */
/* polls stuck behind a gap at levels 0-1 before the poller plans over all levels */
#define GAP_POLLS_MAX 5
/* listings an open takes again when one raced a compaction, an upload or a deletion */
#define OPEN_RACES_MAX 3
/* the page size of the empty map of a new database (write mode), until its first file */
#define EMPTY_PAGE_SIZE 4096

struct rdb {
    rdb *next; /* in the registry */
    int refs;  /* guarded by the registry lock */
    vconf cfg;
    replica *rep;
    cache *cache;
    uint32_t page_size;

    pthread_mutex_t mu;
    pthread_cond_t wake; /* the poller sleeps on it; signalled to stop */
    int stopping;
    int poller_started;
    pthread_t poller;
    hydrator *hyd; /* the local copy being built or followed (LITESTREAM_HYDRATION_PATH), or NULL */

    /* guarded by mu */
    replica_file *files; /* the VFS's file numbers index this (append only) */
    size_t n_files, cap_files;
    pagemap *latest;
    rdb_stats st;
    uint32_t last_miss; /* read-ahead: the last page a miss fetched, and the window */
    unsigned window;
    int gap_logged;
    unsigned gap_polls; /* polls in a row that found only a gap (the poller's own) */

    /* the poller's own (no lock): per level 0 and 1, the highest TXID listed so far (the next
     * listing starts after it), and the files listed but not applied yet (beyond a gap) */
    uint64_t hw[2];
    replica_file *pool;
    size_t n_pool;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static rdb *registry;
static vconf_log_level log_level = VCONF_LOG_WARN;

/* ---- log ---------------------------------------------------------------------------------- */

void rdb_set_log_level(vconf_log_level level)
{
    log_level = level;
}

void rdb_log(vconf_log_level level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    static const char *names[] = {"error", "warn", "info", "debug"};
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "litestream-vfs %s: %s\n", names[level], line);
}

/* ---- clocks ------------------------------------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits on d->wake up to ms; returns nonzero when stopping. Called with d->mu held. */
static int sleep_locked(rdb *d, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    while (!d->stopping && pthread_cond_timedwait(&d->wake, &d->mu, &until) != ETIMEDOUT)
        ;
    return d->stopping;
}

/* ---- the file table ----------------------------------------------------------------------- */

/* The number of f in the table, adding it if new. Called with d->mu held. */
static lv_err file_number(rdb *d, const replica_file *f, uint32_t *no, char *err)
{
    for (size_t i = d->n_files; i-- > 0;) {
        const replica_file *g = &d->files[i];
        if (g->level == f->level && g->min_txid == f->min_txid && g->max_txid == f->max_txid &&
            g->size == f->size) {
            *no = (uint32_t)i;
            return LV_OK;
        }
    }
    if (d->n_files == d->cap_files) {
        size_t cap = d->cap_files ? d->cap_files * 2 : 64;
        replica_file *t = lv_realloc(d->files, cap * sizeof *t);
        if (!t)
            return lv_fail(err, LV_ENOMEM, "out of memory (file table of %zu)", cap);
        d->files = t;
        d->cap_files = cap;
    }
    d->files[d->n_files] = *f;
    *no = (uint32_t)d->n_files++;
    return LV_OK;
}

/*
 * Lays metas[0..n) over m in order, registering their files. m must be private to the caller.
 */
static lv_err apply_metas(rdb *d, pagemap *m, replica_meta *metas, size_t n, char *err)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t no = 0;
        pthread_mutex_lock(&d->mu);
        lv_err rc = file_number(d, &metas[i].file, &no, err);
        pthread_mutex_unlock(&d->mu);
        if (rc != LV_OK)
            return rc;
        rc = pagemap_apply(m, no, &metas[i].header, &metas[i].index, err);
        if (rc == LV_OK)
            pagemap_set_checksum(m, ltx_header_no_checksum(&metas[i].header)
                                        ? 0
                                        : metas[i].trailer.post_apply_checksum);
        if (rc != LV_OK) {
            lv_buf key;
            lv_buf_init(&key);
            replica_file_key(d->rep, metas[i].file.level, metas[i].file.min_txid,
                             metas[i].file.max_txid, &key);
            lv_wrap(err, rc, "%s: ", key.data ? key.data : "?");
            lv_buf_free(&key);
            return rc;
        }
    }
    return LV_OK;
}

/*
 * Puts into the cache the pages whose newest frame came with a file's head (replica_meta.head:
 * the start of a large file, all of a small one), so that reading them costs no GET: page 1 of a
 * snapshot at open, every page of a small level-0 file at a poll.
 */
static void seed_from_heads(rdb *d, const pagemap *m, const replica_meta *metas, size_t n)
{
    uint8_t *page = lv_malloc(d->page_size ? d->page_size : pagemap_page_size(m));
    if (!page || !d->cache)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const replica_meta *me = &metas[i];
        for (size_t k = 0; k < me->index.n; k++) {
            const ltx_index_entry *ie = &me->index.entries[k];
            if (ie->offset + ie->size > me->head.len)
                break; /* frames are in file order: the rest lie beyond the head */
            const pagemap_entry *pe = pagemap_lookup(m, ie->pgno);
            if (!pe || pe->offset != ie->offset ||
                pagemap_file_txid(m, pe->file) != me->header.max_txid)
                continue; /* a newer file holds this page */
            if (ltx_frame_decode((const uint8_t *)me->head.data + ie->offset, ie->size,
                                 pagemap_page_size(m), ie->pgno, page, NULL, NULL) == LV_OK)
                cache_put(d->cache, ie->pgno, me->header.max_txid, page);
        }
    }
done:
    lv_free(page);
}

/* A page map from a plan: headers and indexes of every file at once, laid over each other. */
static lv_err build_from_plan(rdb *d, const replica_plan *plan, uint32_t page_size, pagemap **out,
                              char *err)
{
    *out = NULL;
    replica_meta *metas = lv_calloc(plan->n, sizeof *metas);
    if (!metas)
        return lv_fail(err, LV_ENOMEM, "out of memory");
    lv_err rc = replica_fetch_meta(d->rep, plan->files, plan->n, metas, err);
    if (rc != LV_OK) {
        lv_free(metas);
        return rc;
    }
    pthread_mutex_lock(&d->mu);
    d->st.meta_files += plan->n;
    pthread_mutex_unlock(&d->mu);
    if (!page_size)
        page_size = metas[plan->n - 1].header.page_size;
    pagemap *m = pagemap_new(page_size);
    if (!m)
        rc = lv_fail(err, LV_ENOMEM, "out of memory");
    else
        rc = apply_metas(d, m, metas, plan->n, err);
    if (rc == LV_OK && !d->cache) { /* the first map: now the page size is known */
        d->cache = cache_new(d->cfg.cache_size, pagemap_page_size(m));
        if (!d->cache)
            rc = lv_fail(err, LV_ENOMEM, "out of memory (page cache of %llu bytes)",
                         (unsigned long long)d->cfg.cache_size);
    }
    if (rc == LV_OK)
        seed_from_heads(d, m, metas, plan->n);
    replica_meta_free(metas, plan->n);
    lv_free(metas);
    if (rc != LV_OK) {
        pagemap_unref(m);
        return rc;
    }
    *out = m;
    return LV_OK;
}

static lv_err list_all(rdb *d, replica_file **files, size_t *n, char *err)
{
    pthread_mutex_lock(&d->mu);
    d->st.list_requests++;
    pthread_mutex_unlock(&d->mu);
    return replica_list(d->rep, -1, files, n, err);
}

/* ---- open --------------------------------------------------------------------------------- */

static void *poll_main(void *arg);

static lv_err open_latest(rdb *d, char *err)
{
    int64_t deadline = mono_ms() + d->cfg.open_timeout_ms;
    int races = 0; /* listings that raced an upload, a compaction or a deletion */
    for (;;) {
        replica_file *files = NULL;
        size_t n = 0;
        lv_err rc = list_all(d, &files, &n, err);
        replica_plan plan = {0};
        if (rc != LV_OK) /* the store failed, or the bucket does not exist: no waiting */
            return rc;
        replica_target latest = {0, 0};
        rc = replica_plan_restore(files, n, &latest, &plan, err);
        for (size_t i = 0; i < n; i++)
            if (files[i].level <= 1 && files[i].max_txid > d->hw[files[i].level])
                d->hw[files[i].level] = files[i].max_txid;
        lv_free(files);
        if (rc == LV_OK) {
            rc = build_from_plan(d, &plan, 0, &d->latest, err);
            lv_free(plan.files);
            /* a planned file deleted between the listing and the fetch: list again */
            if (rc != LV_ENOTFOUND || ++races > OPEN_RACES_MAX)
                return rc;
            rdb_log(VCONF_LOG_INFO, "%s: a file went away while opening (%s); listing again",
                    replica_describe(d->rep), err);
            continue;
        }
        if (rc == LV_ECONFLICT && ++races <= OPEN_RACES_MAX) { /* a gap: maybe a racing listing */
            rdb_log(VCONF_LOG_INFO, "%s: %s; listing again", replica_describe(d->rep), err);
            continue;
        }
        if (rc != LV_ENOTFOUND)
            return rc;
        if (d->cfg.write) { /* write mode: an empty replica is a new database */
            d->latest = pagemap_new(EMPTY_PAGE_SIZE);
            return d->latest ? LV_OK : lv_fail(err, LV_ENOMEM, "out of memory");
        }
        if (mono_ms() >= deadline)
            return lv_fail(err, LV_ENOTFOUND,
                           "the replica holds no LTX file yet (waited %lld ms: "
                           "LITESTREAM_OPEN_TIMEOUT / open_timeout)",
                           (long long)d->cfg.open_timeout_ms);
        rdb_log(VCONF_LOG_INFO, "%s: empty, waiting for its first LTX file",
                replica_describe(d->rep));
        pthread_mutex_lock(&d->mu);
        int64_t left = deadline - mono_ms();
        sleep_locked(d, left < d->cfg.poll_interval_ms ? (left > 0 ? left : 0)
                                                       : d->cfg.poll_interval_ms);
        pthread_mutex_unlock(&d->mu);
    }
}

static void rdb_free(rdb *d)
{
    if (!d)
        return;
    if (d->poller_started) { /* first: it notifies the hydrator */
        pthread_mutex_lock(&d->mu);
        d->stopping = 1;
        pthread_cond_signal(&d->wake);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->poller, NULL);
    }
    hydrator_stop(d->hyd); /* then the hydrator, which reads through d */
    d->hyd = NULL;
    pagemap_unref(d->latest);
    cache_free(d->cache);
    replica_close(d->rep);
    lv_free(d->files);
    lv_free(d->pool);
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->mu);
    lv_free(d);
}

static lv_err rdb_open(const vconf *c, rdb **out, char *err)
{
    *out = NULL;
    rdb *d = lv_calloc(1, sizeof *d);
    if (!d)
        return lv_fail(err, LV_ENOMEM, "out of memory");
    d->cfg = *c;
    d->window = 1;
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->wake, &ca);
    pthread_condattr_destroy(&ca);

    s3_config s3; /* the environment's settings, with this database's retry budget */
    s3_config_init(&s3);
    s3_config_from_env(&s3);
    s3.retry_total_ms = (unsigned)c->retry_timeout_ms;
    replica_options ro = {&s3};
    lv_err rc = replica_open(c->replica, &ro, &d->rep, err);
    if (rc == LV_OK)
        rc = open_latest(d, err);
    if (rc == LV_OK && pagemap_txid(d->latest))
        d->page_size = pagemap_page_size(d->latest);
    if (rc == LV_OK && !c->write) {
        if (pthread_create(&d->poller, NULL, poll_main, d) != 0)
            rc = lv_fail(err, LV_ENOMEM, "cannot start the poller thread");
        else
            d->poller_started = 1;
    }
    if (rc != LV_OK) {
        if (d->rep)
            lv_wrap(err, rc, "%s: ", replica_describe(d->rep));
        rdb_free(d);
        return rc;
    }
    d->st.txid = pagemap_txid(d->latest);
    d->st.last_poll_ms = wall_ms(); /* the open's listing is the first look at the replica */
    if (c->hydration[0]) {          /* never fatal: reads stay remote */
        char herr[LV_ERRLEN] = "";
        if (hydrator_start(d, c->hydration, c->hydration_keep, &d->hyd, herr) != LV_OK)
            rdb_log(VCONF_LOG_WARN, "%s: hydration off: %s", replica_describe(d->rep), herr);
    }
    rdb_log(VCONF_LOG_INFO, "%s: open at TXID %016llx, %u pages of %u bytes",
            replica_describe(d->rep), (unsigned long long)pagemap_txid(d->latest),
            pagemap_commit(d->latest), d->page_size);
    *out = d;
    return LV_OK;
}

lv_err rdb_acquire(const vconf *c, rdb **out, char *err)
{
    pthread_mutex_lock(&registry_mu);
    for (rdb *d = registry; d; d = d->next) {
        if (strcmp(d->cfg.replica, c->replica) == 0 && d->cfg.write == c->write) {
            if (d->cfg.cache_size != c->cache_size ||
                d->cfg.poll_interval_ms != c->poll_interval_ms ||
                d->cfg.retry_timeout_ms != c->retry_timeout_ms)
                rdb_log(VCONF_LOG_WARN,
                        "%s is open already: its first opener's cache_size, poll_interval and "
                        "retry_timeout apply (this open's differ)",
                        replica_describe(d->rep));
            d->refs++;
            pthread_mutex_unlock(&registry_mu);
            *out = d;
            return LV_OK;
        }
    }
    /* opened under the registry lock: two opens of one replica must not make two */
    lv_err rc = rdb_open(c, out, err);
    if (rc == LV_OK) {
        (*out)->refs = 1;
        (*out)->next = registry;
        registry = *out;
    }
    pthread_mutex_unlock(&registry_mu);
    return rc;
}

void rdb_release(rdb *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&registry_mu);
    if (--d->refs > 0) {
        pthread_mutex_unlock(&registry_mu);
        return;
    }
    for (rdb **p = &registry; *p; p = &(*p)->next) {
        if (*p == d) {
            *p = d->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_mu);
    rdb_free(d);
}

const char *rdb_describe(const rdb *d)
{
    return replica_describe(d->rep);
}

uint32_t rdb_page_size(rdb *d)
{
    pthread_mutex_lock(&d->mu);
    uint32_t ps = d->page_size;
    pthread_mutex_unlock(&d->mu);
    return ps;
}

pagemap *rdb_latest(rdb *d)
{
    pthread_mutex_lock(&d->mu);
    pagemap *m = d->latest;
    pagemap_ref(m);
    pthread_mutex_unlock(&d->mu);
    return m;
}

lv_err rdb_rebuild(rdb *d, uint64_t txid, pagemap **out, char *err)
{
    *out = NULL;
    replica_file *files = NULL;
    size_t n = 0;
    replica_plan plan = {0};
    lv_err rc = list_all(d, &files, &n, err);
    if (rc == LV_OK) {
        replica_target t = {txid, 0};
        rc = replica_plan_restore(files, n, &t, &plan, err);
    }
    lv_free(files);
    pagemap *m = NULL;
    if (rc == LV_OK)
        rc = build_from_plan(d, &plan, d->page_size, &m, err);
    lv_free(plan.files);
    if (rc == LV_OK && pagemap_txid(m) != txid) {
        rc = lv_fail(err, LV_ENOTFOUND,
                     "no files left that give TXID %016llx (the plan reaches %016llx)",
                     (unsigned long long)txid, (unsigned long long)pagemap_txid(m));
        pagemap_unref(m);
        m = NULL;
    }
    if (rc != LV_OK)
        return rc;
    pthread_mutex_lock(&d->mu);
    if (pagemap_txid(d->latest) == txid) { /* the newest map moves to the files there now */
        pagemap_ref(m);
        pagemap_unref(d->latest);
        d->latest = m;
    }
    pthread_mutex_unlock(&d->mu);
    rdb_log(VCONF_LOG_INFO, "%s: page map of TXID %016llx rebuilt over the files there now",
            replica_describe(d->rep), (unsigned long long)txid);
    *out = m;
    return LV_OK;
}

replica *rdb_replica(rdb *d)
{
    return d->rep;
}

/* Publishes m (the caller's reference passes to d) as the newest map. */
static void publish(rdb *d, pagemap *m)
{
    pthread_mutex_lock(&d->mu);
    if (!d->page_size)
        d->page_size = pagemap_page_size(m);
    pagemap_unref(d->latest);
    d->latest = m;
    d->st.txid = pagemap_txid(m);
    pthread_mutex_unlock(&d->mu);
    if (d->hyd)
        hydrator_notify(d->hyd);
}

hydrator *rdb_hydrator(rdb *d)
{
    return d->hyd;
}

lv_err rdb_refresh(rdb *d, char *err)
{
    replica_file *files = NULL;
    size_t n = 0;
    replica_plan plan = {0};
    lv_err rc = list_all(d, &files, &n, err);
    if (rc == LV_OK) {
        replica_target latest = {0, 0};
        rc = replica_plan_restore(files, n, &latest, &plan, err);
    }
    lv_free(files);
    if (rc == LV_ENOTFOUND && plan.n == 0) { /* empty */
        lv_free(plan.files);
        pagemap *cur = rdb_latest(d);
        uint64_t had = pagemap_txid(cur);
        pagemap_unref(cur);
        if (had)
            return lv_fail(err, LV_ENOTFOUND,
                           "the replica is empty now, but held TXID %016llx at open",
                           (unsigned long long)had);
        return LV_OK;
    }
    pagemap *m = NULL;
    if (rc == LV_OK) {
        pagemap *cur = rdb_latest(d);
        int same = pagemap_txid(cur) == plan.max_txid;
        pagemap_unref(cur);
        if (!same)
            rc = build_from_plan(d, &plan, d->page_size, &m, err);
    }
    lv_free(plan.files);
    if (rc != LV_OK)
        return rc;
    if (m) {
        rdb_log(VCONF_LOG_INFO, "%s: now at TXID %016llx", replica_describe(d->rep),
                (unsigned long long)pagemap_txid(m));
        publish(d, m);
    }
    return LV_OK;
}

lv_err rdb_publish_local(rdb *d, const uint8_t *file, size_t size, const uint32_t *pgnos,
                         const uint8_t *pages, size_t n, char *err)
{
    ltx_header h;
    ltx_trailer t;
    ltx_page_index idx = {0};
    uint64_t ioff = 0, isize = 0;
    lv_err rc = ltx_header_decode(&h, file, size, err);
    if (rc == LV_OK && size < LTX_HEADER_SIZE + LTX_TAIL_SIZE)
        rc = lv_fail(err, LV_ECORRUPT, "a level-0 file of %zu bytes", size);
    if (rc == LV_OK)
        rc = ltx_index_locate(file + size - LTX_TAIL_SIZE, size, &ioff, &isize, &t, err);
    if (rc == LV_OK)
        rc = ltx_index_parse(file + ioff, (size_t)isize, ioff, &h, &idx, err);
    if (rc != LV_OK)
        return lv_wrap(err, rc, "publishing TXID %016llx: ", (unsigned long long)h.max_txid);

    replica_file f = {0, h.min_txid, h.max_txid, size, h.timestamp};
    pagemap *cur = rdb_latest(d);
    pagemap *m = pagemap_txid(cur) ? pagemap_clone(cur) : pagemap_new(h.page_size);
    pagemap_unref(cur);
    uint32_t no = 0;
    if (!m) {
        rc = lv_fail(err, LV_ENOMEM, "out of memory (page map)");
        goto done;
    }
    pthread_mutex_lock(&d->mu);
    rc = file_number(d, &f, &no, err);
    if (rc == LV_OK && !d->cache) {
        d->cache = cache_new(d->cfg.cache_size, h.page_size);
        if (!d->cache)
            rc = lv_fail(err, LV_ENOMEM, "out of memory (page cache of %llu bytes)",
                         (unsigned long long)d->cfg.cache_size);
    }
    pthread_mutex_unlock(&d->mu);
    if (rc == LV_OK)
        rc = pagemap_apply(m, no, &h, &idx, err);
    if (rc != LV_OK) {
        pagemap_unref(m);
        goto done;
    }
    pagemap_set_checksum(m, ltx_header_no_checksum(&h) ? 0 : t.post_apply_checksum);
    for (size_t i = 0; i < n; i++) /* the bytes just shipped: no GET for them */
        cache_put(d->cache, pgnos[i], h.max_txid, pages + i * (size_t)h.page_size);
    publish(d, m);
done:
    ltx_index_free(&idx);
    return rc;
}

/* ---- polling ------------------------------------------------------------------------------ */

/*
 * Chains, from txid, the files of files[0..n) that continue it (the one reaching furthest first;
 * ties: smaller min, then higher level), into *chain (lv_free). *gap_at is the min TXID of a file
 * beyond a gap, 0 when none.
 */
static lv_err chain_from(uint64_t txid, const replica_file *files, size_t n, replica_file **chain,
                         size_t *n_chain, uint64_t *gap_at, char *err)
{
    *chain = NULL;
    *n_chain = 0;
    *gap_at = 0;
    if (!n)
        return LV_OK;
    replica_file *c = lv_malloc(n * sizeof *c);
    if (!c)
        return lv_fail(err, LV_ENOMEM, "out of memory");
    size_t k = 0;
    for (;;) {
        const replica_file *best = NULL;
        for (size_t i = 0; i < n; i++) {
            const replica_file *f = &files[i];
            if (f->min_txid > txid + 1 || f->max_txid <= txid)
                continue;
            if (!best || f->max_txid > best->max_txid ||
                (f->max_txid == best->max_txid &&
                 (f->min_txid < best->min_txid ||
                  (f->min_txid == best->min_txid && f->level > best->level))))
                best = f;
        }
        if (!best)
            break;
        c[k++] = *best;
        txid = best->max_txid;
    }
    for (size_t i = 0; i < n; i++)
        if (files[i].min_txid > txid + 1 && (!*gap_at || files[i].min_txid < *gap_at))
            *gap_at = files[i].min_txid;
    *chain = c;
    *n_chain = k;
    return LV_OK;
}

/*
 * Lists levels 0 and 1 after their watermarks and adds the new files to the pool, keeping only
 * files that reach beyond txid. Resets the watermarks when asked (after a file vanished).
 */
static lv_err refill_pool(rdb *d, uint64_t txid, int *covered, char *err)
{
    *covered = 0;
    replica_file *l[2] = {NULL, NULL};
    size_t n[2] = {0, 0};
    lv_err rc = LV_OK;
    for (int level = 0; level < 2 && rc == LV_OK; level++)
        rc = replica_list_after(d->rep, level, d->hw[level], &l[level], &n[level], err);
    pthread_mutex_lock(&d->mu);
    d->st.list_requests += 2;
    pthread_mutex_unlock(&d->mu);
    if (rc == LV_OK) {
        replica_file *pool = lv_realloc(d->pool, (d->n_pool + n[0] + n[1] + 1) * sizeof *pool);
        if (!pool) {
            rc = lv_fail(err, LV_ENOMEM, "out of memory");
        } else {
            d->pool = pool;
            for (int level = 0; level < 2; level++) {
                for (size_t i = 0; i < n[level]; i++) {
                    if (level == 1 && l[level][i].max_txid <= txid)
                        *covered = 1; /* a compaction of what the map has: its L0 files will go */
                    pool[d->n_pool++] = l[level][i];
                    if (l[level][i].max_txid > d->hw[level])
                        d->hw[level] = l[level][i].max_txid;
                }
            }
            size_t k = 0;
            for (size_t i = 0; i < d->n_pool; i++)
                if (pool[i].max_txid > txid)
                    pool[k++] = pool[i];
            d->n_pool = k;
        }
    }
    lv_free(l[0]);
    lv_free(l[1]);
    return rc;
}

static lv_err poll_once(rdb *d, char *err)
{
    pagemap *cur = rdb_latest(d);
    uint64_t txid = pagemap_txid(cur);
    replica_file *chain = NULL;
    size_t n_chain = 0;
    replica_meta *metas = NULL;
    pagemap *next = NULL;
    int covered = 0;
    lv_err rc = refill_pool(d, txid, &covered, err);
    if (rc != LV_OK)
        goto done;
    if (covered) { /* point the map at the compaction before retention deletes the L0 files */
        pagemap *re = NULL;
        char rerr[LV_ERRLEN] = "";
        if (rdb_rebuild(d, txid, &re, rerr) == LV_OK) {
            pagemap_unref(cur);
            cur = re;
        } else {
            rdb_log(VCONF_LOG_WARN, "%s: rebuilding at TXID %016llx: %s", replica_describe(d->rep),
                    (unsigned long long)txid, rerr);
        }
    }
    uint64_t gap_at;
    if ((rc = chain_from(txid, d->pool, d->n_pool, &chain, &n_chain, &gap_at, err)) != LV_OK)
        goto done;
    int stuck = gap_at && !n_chain;
    if (stuck) {
        pthread_mutex_lock(&d->mu);
        int logged = d->gap_logged;
        d->gap_logged = 1;
        pthread_mutex_unlock(&d->mu);
        if (!logged)
            rdb_log(VCONF_LOG_WARN,
                    "%s: at TXID %016llx, the next file at levels 0-1 starts at %016llx; waiting "
                    "for a compaction to bridge the gap",
                    replica_describe(d->rep), (unsigned long long)txid, (unsigned long long)gap_at);
        if (++d->gap_polls >= GAP_POLLS_MAX) {
            /* levels 0-1 will not bridge it (e.g. a reader paused past their retention): plan
             * across every level, as an open does, and move on if that reaches further */
            d->gap_polls = 0;
            pagemap *next_all = NULL;
            replica_file *files = NULL;
            size_t n = 0;
            replica_plan plan = {0};
            rc = list_all(d, &files, &n, err);
            if (rc == LV_OK) {
                replica_target latest = {0, 0};
                rc = replica_plan_restore(files, n, &latest, &plan, err);
            }
            lv_free(files);
            if (rc == LV_OK && plan.max_txid > txid)
                rc = build_from_plan(d, &plan, d->page_size, &next_all, err);
            lv_free(plan.files);
            if (rc != LV_OK)
                goto done;
            if (next_all) {
                next = next_all;
                stuck = 0;
            }
        }
    } else {
        d->gap_polls = 0;
    }
    if (n_chain) {
        metas = lv_calloc(n_chain, sizeof *metas);
        if (!metas) {
            rc = lv_fail(err, LV_ENOMEM, "out of memory");
            goto done;
        }
        if ((rc = replica_fetch_meta(d->rep, chain, n_chain, metas, err)) != LV_OK) {
            lv_free(metas);
            metas = NULL;
            if (rc == LV_ENOTFOUND) { /* removed meanwhile (retention): list afresh next time */
                d->n_pool = 0;
                d->hw[0] = txid;
                d->hw[1] = 0;
            }
            goto done;
        }
        next = pagemap_clone(cur);
        if (!next) {
            rc = lv_fail(err, LV_ENOMEM, "out of memory");
            goto done;
        }
        if ((rc = apply_metas(d, next, metas, n_chain, err)) != LV_OK)
            goto done;
        seed_from_heads(d, next, metas, n_chain);
    }
    pthread_mutex_lock(&d->mu);
    d->st.meta_files += n_chain;
    if (next && d->latest == cur) { /* publish */
        pagemap *old = d->latest;
        d->latest = next;
        next = NULL;
        pagemap_unref(old);
        d->st.txid = pagemap_txid(d->latest);
        d->gap_logged = 0;
        rdb_log(VCONF_LOG_DEBUG, "%s: now at TXID %016llx (%zu new files)",
                replica_describe(d->rep), (unsigned long long)d->st.txid, n_chain);
    }
    d->st.polls++;
    if (!stuck) /* a poll that is stuck behind a gap is no sign of freshness */
        d->st.last_poll_ms = wall_ms();
    pthread_mutex_unlock(&d->mu);
    if (d->hyd)
        hydrator_notify(d->hyd);
done:
    if (metas) {
        replica_meta_free(metas, n_chain);
        lv_free(metas);
    }
    pagemap_unref(next);
    pagemap_unref(cur);
    lv_free(chain);
    return rc;
}

static void *poll_main(void *arg)
{
    rdb *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!sleep_locked(d, d->cfg.poll_interval_ms)) {
        pthread_mutex_unlock(&d->mu);
        char err[LV_ERRLEN] = "";
        if (poll_once(d, err) != LV_OK) {
            rdb_log(VCONF_LOG_WARN, "%s: poll failed: %s", replica_describe(d->rep), err);
            pthread_mutex_lock(&d->mu);
            d->st.poll_errors++;
            pthread_mutex_unlock(&d->mu);
        }
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* ---- time travel -------------------------------------------------------------------------- */

lv_err rdb_build_at(rdb *d, int64_t time_ms, pagemap **out, char *err)
{
    *out = NULL;
    replica_file *files = NULL;
    size_t n = 0;
    replica_meta *metas = NULL;
    replica_plan plan = {0};
    lv_err rc = list_all(d, &files, &n, err);
    if (rc != LV_OK)
        goto done;
    if (!n) {
        rc = lv_fail(err, LV_ENOTFOUND, "the replica holds no LTX file");
        goto done;
    }
    /* the plan needs header timestamps: every file's header (and index) in one batch */
    metas = lv_calloc(n, sizeof *metas);
    if (!metas) {
        rc = lv_fail(err, LV_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = replica_fetch_meta(d->rep, files, n, metas, err)) != LV_OK) {
        lv_free(metas);
        metas = NULL;
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        files[i] = metas[i].file; /* created_ms: the header timestamp */
    replica_target t = {0, time_ms};
    if ((rc = replica_plan_restore(files, n, &t, &plan, err)) != LV_OK)
        goto done;
    pagemap *m = pagemap_new(d->page_size);
    if (!m) {
        rc = lv_fail(err, LV_ENOMEM, "out of memory");
        goto done;
    }
    /* lay the plan's files in plan order, from the metas already fetched */
    for (size_t p = 0; p < plan.n && rc == LV_OK; p++) {
        for (size_t i = 0; i < n; i++) {
            if (metas[i].file.level == plan.files[p].level &&
                metas[i].file.min_txid == plan.files[p].min_txid &&
                metas[i].file.max_txid == plan.files[p].max_txid) {
                rc = apply_metas(d, m, &metas[i], 1, err);
                break;
            }
        }
    }
    if (rc != LV_OK)
        pagemap_unref(m);
    else
        *out = m;
done:
    if (metas) {
        replica_meta_free(metas, n);
        lv_free(metas);
    }
    lv_free(plan.files);
    lv_free(files);
    return rc;
}

/* ---- page reads --------------------------------------------------------------------------- */

lv_err rdb_read_page(rdb *d, const pagemap *m, uint32_t pgno, uint8_t *out, char *err)
{
    const pagemap_entry *e = pagemap_lookup(m, pgno);
    if (!e)
        return lv_fail(err, LV_ENOTFOUND, "page %u: in no LTX file (database of %u pages)", pgno,
                       pagemap_commit(m));
    uint64_t version = pagemap_file_txid(m, e->file);
    if (cache_get(d->cache, pgno, version, out))
        return LV_OK;
    /* the local copy, while it is at exactly this map's TXID */
    if (d->hyd && hydrator_read(d->hyd, pagemap_txid(m), pgno, out, pagemap_page_size(m)))
        return LV_OK;

    /* read-ahead: while misses run sequentially, take the next frames of the same file too */
    pthread_mutex_lock(&d->mu);
    unsigned window = pgno == d->last_miss + 1 ? d->window * 2 : 1;
    if (window > READAHEAD_MAX)
        window = READAHEAD_MAX;
    replica_file file = d->files[e->file];
    pthread_mutex_unlock(&d->mu);

    uint64_t start = e->offset, end = e->offset + e->size;
    uint32_t last = pgno;
    uint8_t *scratch = window > 1 ? lv_malloc(d->page_size) : NULL; /* read-ahead pages */
    while (scratch && last - pgno + 1 < window) {
        const pagemap_entry *n = pagemap_lookup(m, last + 1);
        if (!n || n->file != e->file || n->offset != end ||
            cache_get(d->cache, last + 1, version, scratch))
            break;
        end += n->size;
        last++;
    }

    lv_buf buf;
    lv_buf_init(&buf);
    lv_err rc = replica_read(d->rep, &file, start, end - start, &buf, err);
    if (rc == LV_ENOTFOUND) /* the file is gone (retention after a compaction): see rdb_rebuild */
        rc = LV_ECONFLICT;
    if (rc == LV_OK && buf.len != end - start)
        rc = lv_fail(err, LV_ECORRUPT, "%zu bytes came back, not %llu", buf.len,
                     (unsigned long long)(end - start));
    uint32_t decoded = 0;
    if (rc == LV_OK) {
        const uint8_t *p = (const uint8_t *)buf.data;
        for (uint32_t g = pgno; g <= last; g++) {
            const pagemap_entry *x = pagemap_lookup(m, g);
            char ferr[LV_ERRLEN] = "";
            uint8_t *dst = g == pgno ? out : scratch;
            lv_err frc = ltx_frame_decode(p + (x->offset - start), x->size, d->page_size, g, dst,
                                          NULL, ferr);
            if (frc != LV_OK) {
                if (g == pgno) {
                    rc = lv_fail(err, frc, "frame at offset %llu: %s",
                                 (unsigned long long)x->offset, ferr);
                    break;
                }
                rdb_log(VCONF_LOG_WARN, "%s: page %u (read ahead): %s", rdb_describe(d), g, ferr);
                break;
            }
            cache_put(d->cache, g, version, dst);
            decoded++;
        }
    }
    lv_buf_free(&buf);
    lv_free(scratch);

    pthread_mutex_lock(&d->mu);
    d->st.page_requests++;
    if (rc == LV_OK) {
        d->st.page_bytes += end - start;
        d->st.pages_fetched += decoded;
        d->st.pages_readahead += decoded ? decoded - 1 : 0;
        d->last_miss = last;
        d->window = window;
    } else {
        d->st.read_errors++;
    }
    pthread_mutex_unlock(&d->mu);
    if (rc != LV_OK) {
        lv_buf key;
        lv_buf_init(&key);
        replica_file_key(d->rep, file.level, file.min_txid, file.max_txid, &key);
        lv_wrap(err, rc, "page %u: %s bytes=%llu-%llu: ", pgno, key.data ? key.data : "?",
                (unsigned long long)start, (unsigned long long)(end - 1));
        lv_buf_free(&key);
        /* a file gone is the caller's to recover from (rdb_rebuild): not an error yet */
        rdb_log(rc == LV_ECONFLICT ? VCONF_LOG_INFO : VCONF_LOG_ERROR, "%s: %s", rdb_describe(d),
                err);
    }
    return rc;
}

/* ---- stats -------------------------------------------------------------------------------- */

int64_t rdb_lag_seconds(rdb *d)
{
    pthread_mutex_lock(&d->mu);
    int64_t last = d->st.last_poll_ms;
    pthread_mutex_unlock(&d->mu);
    return last ? (wall_ms() - last) / 1000 : -1;
}

void rdb_get_stats(rdb *d, rdb_stats *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->st;
    pthread_mutex_unlock(&d->mu);
    cache_stats cs = {0};
    if (d->cache)
        cache_get_stats(d->cache, &cs);
    out->cache_hits = cs.hits;
    out->cache_misses = cs.misses;
    out->cache_evictions = cs.evictions;
    out->cache_bytes = cs.bytes;
    out->cache_capacity = cs.capacity_bytes;
}

void rdb_stats_json(rdb *d, lv_buf *out)
{
    rdb_stats s;
    rdb_get_stats(d, &s);
    lv_buf_puts(out, "{\"replica\":\"");
    for (const char *c = rdb_describe(d); *c; c++) {
        if (*c == '"' || *c == '\\')
            lv_buf_putc(out, '\\');
        if ((unsigned char)*c >= 0x20)
            lv_buf_putc(out, *c);
    }
    lv_buf_printf(out,
                  "\",\"txid\":\"%016llx\",\"lag\":%lld,"
                  "\"cache\":{\"hits\":%llu,\"misses\":%llu,\"evictions\":%llu,\"bytes\":%llu,"
                  "\"capacity\":%llu},"
                  "\"requests\":{\"pages\":%llu,\"page_bytes\":%llu,\"pages_fetched\":%llu,"
                  "\"pages_readahead\":%llu,\"lists\":%llu,\"indexes\":%llu},"
                  "\"polls\":%llu,\"poll_errors\":%llu,\"read_errors\":%llu,\"hydration\":",
                  (unsigned long long)s.txid, (long long)rdb_lag_seconds(d),
                  (unsigned long long)s.cache_hits, (unsigned long long)s.cache_misses,
                  (unsigned long long)s.cache_evictions, (unsigned long long)s.cache_bytes,
                  (unsigned long long)s.cache_capacity, (unsigned long long)s.page_requests,
                  (unsigned long long)s.page_bytes, (unsigned long long)s.pages_fetched,
                  (unsigned long long)s.pages_readahead, (unsigned long long)s.list_requests,
                  (unsigned long long)s.meta_files, (unsigned long long)s.polls,
                  (unsigned long long)s.poll_errors, (unsigned long long)s.read_errors);
    hydrator_stats_json(d->hyd, out);
    lv_buf_putc(out, '}');
}
