/*
 * compact: one pass of Litestream's compaction, snapshots and retention over a replica (see
 * compact.h for the steps and the rules). ltxctl compact is a command line over it; the
 * write-mode VFS runs it in its background thread.
 *
 * A pass keeps one listing of every level (taken at the start, filtered by max_txid) in memory as
 * a sorted set, and updates it as it writes and deletes, so that each step decides from what the
 * steps before it left (a dry run updates it the same way without touching the store).
 *
 * Threads: no global state; everything lives in the pass's own struct on the caller's stack.
 * The replica handle is shared with the caller's other threads (it is thread-safe); the report
 * callback is called from the calling thread.
 */
#include "compact.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "ltx.h"
#include "restore.h"
#include "timeexpr.h"

typedef unsigned long long ull;

#define KEY_LEN  1200 /* a key: a prefix of up to 1024 bytes and the level and TXIDs */
#define LINE_LEN 4096 /* one report line (two keys at most) */

void compact_options_default(compact_options *o)
{
    memset(o, 0, sizeof *o);
    o->interval_ms[1] = 30 * 1000;
    o->interval_ms[2] = 5 * 60 * 1000;
    o->interval_ms[3] = 60 * 60 * 1000;
    o->snapshot_interval_ms = 24 * 60 * 60 * 1000LL;
    o->retention_ms = 24 * 60 * 60 * 1000LL;
    o->l0_retention_ms = 5 * 60 * 1000;
}

/* ---- the file set -------------------------------------------------------------------------- */

/* The files of a replica in listing order (level, then TXIDs); v is owned (lv_free). */
typedef struct fileset {
    replica_file *v;
    size_t n, cap;
} fileset;

static int cmp_file(const void *a, const void *b)
{
    const replica_file *x = a, *y = b;
    if (x->level != y->level)
        return x->level < y->level ? -1 : 1;
    if (x->min_txid != y->min_txid)
        return x->min_txid < y->min_txid ? -1 : 1;
    if (x->max_txid != y->max_txid)
        return x->max_txid < y->max_txid ? -1 : 1;
    return 0;
}

/* Adds f, keeping the order (a file already there is replaced). -1 when out of memory. */
static int set_add(fileset *s, const replica_file *f)
{
    for (size_t i = 0; i < s->n; i++)
        if (cmp_file(&s->v[i], f) == 0) {
            s->v[i] = *f;
            return 0;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        replica_file *v = lv_realloc(s->v, cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *f;
    qsort(s->v, s->n, sizeof *s->v, cmp_file);
    return 0;
}

static void set_remove(fileset *s, const replica_file *f)
{
    for (size_t i = 0; i < s->n; i++)
        if (cmp_file(&s->v[i], f) == 0) {
            memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
            s->n--;
            return;
        }
}

/* The files of one level, in TXID order; *out points into the set (valid until it changes). */
static size_t level_files(const fileset *s, int level, const replica_file **out)
{
    size_t first = 0, n = 0;
    while (first < s->n && s->v[first].level != level)
        first++;
    while (first + n < s->n && s->v[first + n].level == level)
        n++;
    *out = s->v ? s->v + first : NULL; /* an empty set may have no array */
    return n;
}

/* ---- a pass -------------------------------------------------------------------------------- */

typedef struct pass {
    replica *r;
    const compact_options *o;
    compact_report_fn report;
    void *ctx;
    compact_stats *st; /* never NULL here: the caller's, or one of our own */
    char *err;         /* the caller's, may be NULL */
    fileset set;
} pass;

static void say(pass *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(pass *p, const char *fmt, ...)
{
    if (!p->report)
        return;
    char line[LINE_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->report(p->ctx, line);
}

static void key_of(const pass *p, const replica_file *f, char *out, size_t cap)
{
    lv_buf b;
    lv_buf_init(&b);
    replica_file_key(p->r, f->level, f->min_txid, f->max_txid, &b);
    snprintf(out, cap, "%s", b.data && !b.oom ? b.data : "?");
    lv_buf_free(&b);
}

static lv_err oom(pass *p)
{
    return lv_fail(p->err, LV_ENOMEM, "out of memory");
}

static int64_t truncate_time(int64_t now, int64_t interval)
{
    if (interval <= 0)
        return now;
    int64_t q = now / interval;
    if (now % interval < 0)
        q--;
    return q * interval;
}

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

/* Whole files into bufs[i] (restarts handled). */
typedef struct fetch_ctx {
    lv_buf *bufs;
} fetch_ctx;

static int fetch_sink(void *ctx, size_t which, const void *data, size_t len, int restart)
{
    fetch_ctx *f = ctx;
    if (restart)
        lv_buf_reset(&f->bufs[which]);
    lv_buf_append(&f->bufs[which], data, len);
    return f->bufs[which].oom;
}

static lv_err buf_write(void *ctx, const void *data, size_t n, char *err)
{
    lv_buf_append(ctx, data, n);
    return lv_buf_ok(ctx, err);
}

/*
 * After a conditional write lost: either the end of the pass (stop_on_conflict) or a line, a
 * count, and the file in the set as if we had written it (the same inputs give the same file).
 */
static lv_err lost_race(pass *p, const char *step, const replica_file *f, const char *key,
                        const char *detail)
{
    if (p->o->stop_on_conflict && f->level == REPLICA_SNAPSHOT_LEVEL)
        return lv_fail(p->err, LV_ECONFLICT, "%s: already exists: %s", key, detail);
    if (p->o->stop_on_conflict)
        return lv_fail(p->err, LV_ECONFLICT,
                       "%s: already exists: another compactor got there first (%s)", key, detail);
    say(p, "%s: %s already exists: another compactor got there first", step, key);
    p->st->conflicts++;
    return set_add(&p->set, f) == 0 ? LV_OK : oom(p);
}

/* Merges the due files of level dst-1 into dst. */
static lv_err compact_level(pass *p, int dst, int forced)
{
    const compact_options *o = p->o;
    const replica_file *src, *dfiles;
    size_t nsrc = level_files(&p->set, dst - 1, &src), ndst = level_files(&p->set, dst, &dfiles);
    uint64_t dst_max = 0;
    int64_t newest = 0;
    char e2[LV_ERRLEN] = "", key[KEY_LEN], when[LV_TIME_RFC3339_LEN], step[32];
    snprintf(step, sizeof step, "L%d -> L%d", dst - 1, dst);
    for (size_t i = 0; i < ndst; i++) {
        if (dfiles[i].max_txid > dst_max)
            dst_max = dfiles[i].max_txid;
        if (dfiles[i].created_ms > newest)
            newest = dfiles[i].created_ms;
    }
    size_t first = 0;
    while (first < nsrc && src[first].min_txid <= dst_max)
        first++;
    size_t n = nsrc - first;
    if (n == 0) {
        say(p, "%s: nothing new to compact", step);
        return LV_OK;
    }
    int64_t interval = o->interval_ms[dst], boundary = truncate_time(o->now_ms, interval);
    if (!forced && ndst > 0 && newest >= boundary && interval > 0) {
        lv_time_format(boundary + interval, 0, when);
        say(p, "%s: not due (%zu file%s waiting; next at %s)", step, n, plural(n), when);
        return LV_OK;
    }
    /* The inputs must follow each other and the level they go to, except across a hole a
     * snapshot covers: retention deletes the files of dst-1 below its floor whether or not dst
     * has taken them (a short retention, a long pause), and then dst goes on above the hole, as
     * Litestream's compactor does (a restore starts from the snapshot). Files of dst-1 below
     * such a hole are left out. */
    uint64_t snap_max = 0;
    const replica_file *snaps;
    size_t ns = level_files(&p->set, REPLICA_SNAPSHOT_LEVEL, &snaps);
    for (size_t i = 0; i < ns; i++)
        if (snaps[i].max_txid > snap_max)
            snap_max = snaps[i].max_txid;
    for (size_t i = first; i < nsrc; i++) {
        uint64_t want = i > first ? src[i - 1].max_txid + 1 : dst_max + 1;
        if (src[i].min_txid == want || (i == first && dst_max == 0))
            continue;
        if (snap_max + 1 >= src[i].min_txid) {
            first = i;
            continue;
        }
        key_of(p, &src[i], key, sizeof key);
        return lv_fail(p->err, LV_ECONFLICT,
                       "%s: L%d has a gap: the file starts at TXID %016llx, expected %016llx", key,
                       dst - 1, (ull)src[i].min_txid, (ull)want);
    }
    n = nsrc - first;
    replica_file *in = lv_malloc(n * sizeof *in);
    if (!in)
        return oom(p);
    memcpy(in, src + first, n * sizeof *in);
    replica_file out = {dst, in[0].min_txid, in[n - 1].max_txid, 0, o->now_ms};
    key_of(p, &out, key, sizeof key);
    if (o->dry_run) {
        say(p, "%s: would compact %zu file%s into %s", step, n, plural(n), key);
        lv_free(in);
        p->st->compactions[dst]++;
        return set_add(&p->set, &out) == 0 ? LV_OK : oom(p);
    }

    lv_err rc = LV_ENOMEM;
    lv_buf *bufs = lv_calloc(n, sizeof *bufs);
    ltx_source *srcs = lv_calloc(n, sizeof *srcs);
    ltx_mem_reader *readers = lv_calloc(n, sizeof *readers);
    char **names = lv_calloc(n, sizeof *names);
    lv_buf merged;
    lv_buf_init(&merged);
    ltx_header h;
    if (!bufs || !srcs || !readers || !names) {
        rc = oom(p);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        lv_buf_init(&bufs[i]);
    fetch_ctx fc = {bufs};
    if ((rc = replica_fetch(p->r, in, n, fetch_sink, &fc, e2)) != LV_OK) {
        lv_fail(p->err, rc, "%s: %s: %s", replica_describe(p->r), step, e2);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        char k[KEY_LEN];
        key_of(p, &in[i], k, sizeof k);
        names[i] = lv_malloc(strlen(k) + 1);
        if (!names[i]) {
            rc = oom(p);
            goto done;
        }
        strcpy(names[i], k);
        readers[i] = (ltx_mem_reader){(const uint8_t *)bufs[i].data, bufs[i].len, 0};
        srcs[i] = (ltx_source){ltx_mem_read, &readers[i], names[i]};
    }
    if ((rc = ltx_compact(srcs, n, buf_write, &merged, &h, NULL, e2)) != LV_OK) {
        lv_fail(p->err, rc, "%s: compaction failed: %s", key, e2);
        goto done;
    }
    /* Conditional: a compactor that got there first wrote the same file (same inputs). */
    rc = replica_write(p->r, dst, merged.data, merged.len, 1, e2);
    if (rc == LV_ECONFLICT) {
        rc = lost_race(p, step, &out, key, e2);
        goto done;
    }
    if (rc != LV_OK) {
        lv_fail(p->err, rc, "%s: %s", key, e2);
        goto done;
    }
    out.size = merged.len;
    p->st->compactions[dst]++;
    p->st->bytes_written += merged.len;
    say(p, "%s: compacted %zu file%s (TXID %016llx-%016llx) into %s, %zu bytes", step, n, plural(n),
        (ull)out.min_txid, (ull)out.max_txid, key, merged.len);
    rc = set_add(&p->set, &out) == 0 ? LV_OK : oom(p);
done:
    for (size_t i = 0; bufs && i < n; i++)
        lv_buf_free(&bufs[i]);
    for (size_t i = 0; names && i < n; i++)
        lv_free(names[i]);
    lv_free(bufs);
    lv_free(srcs);
    lv_free(readers);
    lv_free(names);
    lv_free(in);
    lv_buf_free(&merged);
    return rc;
}

static lv_err pread_full(int fd, void *buf, size_t n, uint64_t off, char *err)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return lv_fail(err, LV_EIO, "read at %llu: %s", (ull)(off + got), strerror(errno));
        if (k == 0)
            return lv_fail(err, LV_EIO, "read at %llu: unexpected end of file", (ull)(off + got));
        got += (size_t)k;
    }
    return LV_OK;
}

lv_err compact_encode_snapshot(int fd, uint64_t max_txid, int64_t timestamp_ms, lv_buf *out,
                               ltx_header *h, ltx_trailer *t, char *err)
{
    uint32_t ps, count;
    ltx_encoder *e = NULL;
    uint8_t *buf = NULL;
    lv_err rc = ltx_db_geometry(fd, &ps, &count, err);
    if (rc)
        return rc;
    if (count == 0)
        return lv_fail(err, LV_EINVAL, "the database is empty");
    ltx_header hdr = {.page_size = ps,
                      .commit = count,
                      .min_txid = 1,
                      .max_txid = max_txid,
                      .timestamp = timestamp_ms};
    uint32_t per = (1u << 20) / ps ? (1u << 20) / ps : 1, lock = ltx_lock_pgno(ps);
    buf = lv_malloc((size_t)per * ps);
    if (!buf)
        return lv_fail(err, LV_ENOMEM, "out of memory");
    if ((rc = ltx_encoder_open(&e, &hdr, buf_write, out, err)) != LV_OK)
        goto done;
    for (uint32_t first = 1; first <= count;) {
        uint32_t k = count - first + 1 < per ? count - first + 1 : per;
        if ((rc = pread_full(fd, buf, (size_t)k * ps, (uint64_t)(first - 1) * ps, err)) != LV_OK)
            goto done;
        for (uint32_t i = 0; i < k; i++)
            if (first + i != lock &&
                (rc = ltx_encoder_page(e, first + i, buf + (size_t)i * ps, err)) != LV_OK)
                goto done;
        first += k;
    }
    if ((rc = ltx_encoder_finish(e, t, err)) != LV_OK)
        goto done;
    if (h)
        *h = hdr;
done:
    ltx_encoder_free(e);
    lv_free(buf);
    return rc;
}

/* A snapshot of the latest state at level 9, when due. */
static lv_err snapshot_step(pass *p, int forced)
{
    const compact_options *o = p->o;
    const replica_file *snaps;
    size_t ns = level_files(&p->set, REPLICA_SNAPSHOT_LEVEL, &snaps);
    char e2[LV_ERRLEN] = "", key[KEY_LEN], when[LV_TIME_RFC3339_LEN];
    uint64_t top = 0;
    for (size_t i = 0; i < p->set.n; i++)
        if (p->set.v[i].max_txid > top)
            top = p->set.v[i].max_txid;
    if (top == 0) {
        say(p, "snapshot: the replica is empty");
        return LV_OK;
    }
    const replica_file *newest = ns ? &snaps[ns - 1] : NULL;
    if (newest && newest->max_txid >= top) {
        say(p, "snapshot: the newest snapshot already reaches TXID %016llx", (ull)newest->max_txid);
        return LV_OK;
    }
    if (!forced && o->snapshot_interval_ms < 0) {
        say(p, "snapshot: not due (snapshots are off)");
        return LV_OK;
    }
    if (!forced && newest && o->now_ms - newest->created_ms < o->snapshot_interval_ms) {
        lv_time_format(newest->created_ms + o->snapshot_interval_ms, 0, when);
        say(p, "snapshot: not due (next at %s)", when);
        return LV_OK;
    }
    replica_file snap = {REPLICA_SNAPSHOT_LEVEL, 1, top, 0, o->now_ms};
    key_of(p, &snap, key, sizeof key);
    if (o->dry_run) {
        say(p, "snapshot: would write %s", key);
        p->st->snapshots++;
        return set_add(&p->set, &snap) == 0 ? LV_OK : oom(p);
    }

    lv_err rc;
    int fd = -1;
    lv_buf out;
    lv_buf_init(&out);
    restore_result res;
    ltx_header h;
    ltx_trailer t;
    char path[4096];
    snprintf(path, sizeof path, "%s/ltxvfs-snapshot-XXXXXX",
             o->tmp_dir && *o->tmp_dir ? o->tmp_dir : "/tmp");
    fd = mkstemp(path);
    if (fd < 0) {
        rc = lv_fail(p->err, LV_EIO, "%s: create a temporary file: %s", path, strerror(errno));
        goto done;
    }
    unlink(path);                     /* gone when closed, whatever happens */
    replica_target at_top = {top, 0}; /* what was listed, whatever lands meanwhile */
    if ((rc = restore_run(p->r, &at_top, fd, NULL, &res, e2)) != LV_OK) {
        lv_fail(p->err, rc, "%s: snapshot: restore: %s", replica_describe(p->r), e2);
        goto done;
    }
    if (res.max_txid != top) {
        rc = lv_fail(p->err, LV_ECONFLICT,
                     "%s: snapshot: the restore reached TXID %016llx, the listing %016llx",
                     replica_describe(p->r), (ull)res.max_txid, (ull)top);
        goto done;
    }
    if ((rc = compact_encode_snapshot(fd, top, o->now_ms, &out, &h, &t, e2)) != LV_OK) {
        lv_fail(p->err, rc, "%s: snapshot: %s", key, e2);
        goto done;
    }
    /* Conditional: a snapshot 1..top another compactor wrote holds the same state. */
    rc = replica_write(p->r, REPLICA_SNAPSHOT_LEVEL, out.data, out.len, 1, e2);
    if (rc == LV_ECONFLICT) {
        rc = lost_race(p, "snapshot", &snap, key, e2);
        goto done;
    }
    if (rc != LV_OK) {
        lv_fail(p->err, rc, "%s: %s", key, e2);
        goto done;
    }
    snap.size = out.len;
    p->st->snapshots++;
    p->st->bytes_written += out.len;
    say(p, "snapshot: wrote %s, %u pages, %zu bytes", key, h.commit, out.len);
    rc = set_add(&p->set, &snap) == 0 ? LV_OK : oom(p);
done:
    if (fd >= 0)
        close(fd);
    lv_buf_free(&out);
    return rc;
}

/* Deletes (or in a dry run, names) del[0..n), saying why. */
static lv_err delete_files(pass *p, const replica_file *del, size_t n, const char *why)
{
    char e2[LV_ERRLEN] = "", key[KEY_LEN];
    lv_err rc;
    if (n == 0)
        return LV_OK;
    if (!p->o->dry_run && (rc = replica_delete(p->r, del, n, e2)) != LV_OK)
        return lv_fail(p->err, rc, "%s: retention: %s", replica_describe(p->r), e2);
    for (size_t i = 0; i < n; i++) {
        key_of(p, &del[i], key, sizeof key);
        say(p, "retention: %s %s (%s)", p->o->dry_run ? "would delete" : "deleted", key, why);
        set_remove(&p->set, &del[i]);
    }
    p->st->deleted += (unsigned)n;
    return LV_OK;
}

static lv_err retention_step(pass *p)
{
    const compact_options *o = p->o;
    fileset *set = &p->set;
    lv_err rc;
    replica_file *del = lv_malloc((set->n + 1) * sizeof *del);
    size_t nd = 0;
    const replica_file *l0, *l1, *snaps;
    if (!del)
        return oom(p);

    /* L0: files L1 covers, once older than the L0 retention; stop at the first younger one,
     * so no hole opens; never the newest L0 file. */
    size_t n0 = level_files(set, 0, &l0), n1 = level_files(set, 1, &l1);
    if (o->l0_retention_ms > 0 && n1 > 0) {
        uint64_t max1 = 0;
        for (size_t i = 0; i < n1; i++)
            if (l1[i].max_txid > max1)
                max1 = l1[i].max_txid;
        size_t i = 0;
        for (; i < n0; i++) {
            if (l0[i].created_ms > o->now_ms - o->l0_retention_ms)
                break;
            if (l0[i].max_txid <= max1)
                del[nd++] = l0[i];
        }
        if (i == n0 && nd > 0 && del[nd - 1].max_txid == l0[n0 - 1].max_txid)
            nd--;
    }
    if ((rc = delete_files(p, del, nd, "L0, covered by L1")) != LV_OK)
        goto done;
    nd = 0;

    /* Snapshots older than the retention, always keeping the newest; then what they covered in
     * levels 1..3, keeping each level's last file. */
    size_t ns = level_files(set, REPLICA_SNAPSHOT_LEVEL, &snaps);
    uint64_t floor = 0;
    if (o->retention_ms > 0) {
        for (size_t i = 0; i + 1 < ns; i++)
            if (snaps[i].created_ms < o->now_ms - o->retention_ms) {
                del[nd++] = snaps[i];
                if (snaps[i].max_txid > floor)
                    floor = snaps[i].max_txid;
            }
    }
    if ((rc = delete_files(p, del, nd, "snapshot older than the retention")) != LV_OK)
        goto done;
    nd = 0;
    if (floor > 0) {
        for (int level = 1; level < REPLICA_SNAPSHOT_LEVEL; level++) {
            const replica_file *lf;
            size_t n = level_files(set, level, &lf);
            for (size_t i = 0; i + 1 < n; i++)
                if (lf[i].max_txid < floor)
                    del[nd++] = lf[i];
        }
    }
    rc = delete_files(p, del, nd, "below the oldest snapshot kept");
done:
    lv_free(del);
    return rc;
}

lv_err compact_pass(replica *r, const compact_options *o, compact_report_fn report, void *ctx,
                    compact_stats *stats, char *err)
{
    compact_stats own;
    memset(&own, 0, sizeof own);
    pass p = {r, o, report, ctx, stats ? stats : &own, err, {NULL, 0, 0}};
    char e2[LV_ERRLEN] = "";
    lv_err rc;
    if (!r || !o)
        return lv_fail(err, LV_EINVAL, "compact_pass: no replica or no options");
    if (o->only_level < 0 || o->only_level > COMPACT_MAX_LEVEL)
        return lv_fail(err, LV_EINVAL, "compact_pass: only_level %d: want 0..%d", o->only_level,
                       COMPACT_MAX_LEVEL);
    if ((rc = replica_list(r, -1, &p.set.v, &p.set.n, e2)) != LV_OK)
        return lv_fail(err, rc, "%s: %s", replica_describe(r), e2);
    p.set.cap = p.set.n;
    if (o->max_txid > 0) { /* what the caller has not confirmed is not there */
        size_t k = 0;
        for (size_t i = 0; i < p.set.n; i++)
            if (p.set.v[i].max_txid <= o->max_txid)
                p.set.v[k++] = p.set.v[i];
        p.set.n = k;
    }
    for (int dst = 1; dst <= COMPACT_MAX_LEVEL; dst++) {
        if (o->only_level && dst != o->only_level)
            continue;
        if ((rc = compact_level(&p, dst, o->only_level == dst)) != LV_OK)
            goto done;
    }
    if (!o->only_level) {
        if ((rc = snapshot_step(&p, o->force_snapshot)) != LV_OK)
            goto done;
        if ((rc = retention_step(&p)) != LV_OK)
            goto done;
    }
    rc = LV_OK;
done:
    lv_free(p.set.v);
    return rc;
}
