/*
 * extension: the loadable SQLite extension litestream-vfs.so. Registers the VFS "litestream"
 * (not as the default) and the SQL functions litestream_*; a database opened with
 * file:app.db?vfs=litestream is read from its replica (config.h says where) through remote.c.
 *
 * Built the way SQLite's own shims are (ext/misc/cksumvfs.c, appendvfs.c): lfile begins with
 * sqlite3_file; every method is declared here and collected in one sqlite3_io_methods table;
 * files that are not the main database (temporary files) are opened by the default VFS in the
 * same memory, so szOsFile is the larger of the two; only sqlite3_litestreamvfs_init is exported.
 *
 * What SQLite sees of a remote database (read mode):
 *   - it is read-only (xOpen reports SQLITE_OPEN_READONLY: a write fails with SQLITE_READONLY,
 *     "attempt to write a readonly database"); journals are never made and WAL is refused;
 *   - page 1 comes with bytes 18-19 = 1 (a rollback-journal database, never WAL), the change
 *     counter (bytes 24-27) = the low 32 bits of the TXID the connection reads, and bytes 92-95
 *     different from it, so SQLite takes the database size from xFileSize (commit x page size).
 *     SQLite re-reads the counter when a read transaction starts and keeps its page cache while
 *     it is unchanged: while no new TXID arrives, every transaction reuses the cache; when one
 *     does, the cache is dropped once;
 *   - a read transaction (xLock SHARED from NONE) takes the newest page map, or the
 *     connection's time-travel map, and reads only from it until xUnlock(NONE): one TXID for the
 *     whole transaction, never older than the previous one in latest mode.
 *
 * PRAGMAs (SQLITE_FCNTL_PRAGMA; unknown ones fall through to SQLite) and functions:
 *   litestream_time [= 'latest' | '5 minutes ago' | RFC 3339 | ...], litestream_set_time(x),
 *   litestream_time(): the view's time; litestream_txid / litestream_txid(): 16 hex digits;
 *   litestream_lag / litestream_lag(): seconds since the last poll (-1 never);
 *   litestream_hydration_progress; litestream_stats(): JSON.
 * Errors carry their message (never a bare "SQL logic error").
 *
 * Threads: SQLite serialises calls on one connection; connections share an rdb (remote.c), which
 * is thread-safe. Memory: lib/ allocates with sqlite3_malloc (lv_alloc_set at load).
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "config.h"
#include "hydrate.h"
#include "memfile.h"
#include "pagemap.h"
#include "remote.h"
#include "timeexpr.h"
#include "writer.h"

#define VFS_NAME "litestream"

typedef struct lfile {
    sqlite3_file base; /* first: SQLite sees this */
    rdb *db;           /* read mode: our reference; write mode: the writer's */
    wdb *w;            /* write mode: the shared write state (a reference), else NULL */
    vconf cfg;
    pagemap *view;   /* the map of the read transaction in progress (a reference), or NULL */
    pagemap *travel; /* a time-travel map (a reference), or NULL for the latest */
    int64_t travel_ms;
    int lock;
    uint8_t *page; /* one page of scratch (the largest page size) */
} lfile;

#define MAX_PAGE_SIZE 65536

static sqlite3_vfs *orig_vfs; /* the default VFS: temporary files, time, randomness */

/* ---- io methods --------------------------------------------------------------------------- */

static int lf_close(sqlite3_file *);
static int lf_read(sqlite3_file *, void *, int iAmt, sqlite3_int64 iOfst);
static int lf_write(sqlite3_file *, const void *, int iAmt, sqlite3_int64 iOfst);
static int lf_truncate(sqlite3_file *, sqlite3_int64 size);
static int lf_sync(sqlite3_file *, int flags);
static int lf_file_size(sqlite3_file *, sqlite3_int64 *pSize);
static int lf_lock(sqlite3_file *, int);
static int lf_unlock(sqlite3_file *, int);
static int lf_check_reserved_lock(sqlite3_file *, int *pResOut);
static int lf_file_control(sqlite3_file *, int op, void *pArg);
static int lf_sector_size(sqlite3_file *);
static int lf_device_characteristics(sqlite3_file *);

static const sqlite3_io_methods lf_methods = {
    1,                         /* iVersion: no shared memory (no WAL), no mmap */
    lf_close,                  /* xClose: drops the maps and the replica reference */
    lf_read,                   /* xRead: pages from the cache or ranged GETs */
    lf_write,                  /* xWrite: SQLITE_READONLY in read mode */
    lf_truncate,               /* xTruncate: SQLITE_READONLY in read mode */
    lf_sync,                   /* xSync: nothing to do (write mode commits at PHASETWO) */
    lf_file_size,              /* xFileSize: commit x page size of the view */
    lf_lock,                   /* xLock: SHARED starts a read transaction on one TXID */
    lf_unlock,                 /* xUnlock: NONE ends it */
    lf_check_reserved_lock,    /* xCheckReservedLock: never reserved */
    lf_file_control,           /* xFileControl: the litestream_* pragmas */
    lf_sector_size,            /* xSectorSize */
    lf_device_characteristics, /* xDeviceCharacteristics */
    0,
    0,
    0,
    0,
    0,
    0};

/* The map reads go through: the transaction's, else the time-travel one, else the newest. The
 * caller drops the reference. */
static pagemap *current_map(lfile *p)
{
    pagemap *m = p->view ? p->view : p->travel;
    if (m) {
        pagemap_ref(m);
        return m;
    }
    return rdb_latest(p->db);
}

/* The connection's maps that are old become nm (same TXID: the same pages, other files). */
static void replace_map(lfile *p, const pagemap *old, pagemap *nm)
{
    if (p->view == old) {
        pagemap_ref(nm);
        pagemap_unref(p->view);
        p->view = nm;
    }
    if (p->travel == old) {
        pagemap_ref(nm);
        pagemap_unref(p->travel);
        p->travel = nm;
    }
}

static void put_be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static int lf_close(sqlite3_file *f)
{
    lfile *p = (lfile *)f;
    pagemap_unref(p->view);
    pagemap_unref(p->travel);
    if (p->w)
        wdb_release(p->w);
    else
        rdb_release(p->db);
    sqlite3_free(p->page);
    return SQLITE_OK;
}

/* Write mode (no time travel): the buffer, then the replica, through the writer. */
static int write_mode_read(lfile *p, uint8_t *out, int amt, sqlite3_int64 off)
{
    uint32_t ps = wdb_page_size(p->w);
    uint64_t db_size = ps ? (uint64_t)wdb_pages(p->w, p) * ps : 0;
    uint64_t pos = (uint64_t)off, end = (uint64_t)off + (uint64_t)amt;
    while (pos < end) {
        if (pos >= db_size) {
            memset(out + (pos - (uint64_t)off), 0, (size_t)(end - pos));
            return SQLITE_IOERR_SHORT_READ;
        }
        uint32_t pgno = (uint32_t)(pos / ps + 1);
        uint32_t in_page = (uint32_t)(pos % ps);
        uint32_t n = ps - in_page;
        if (n > end - pos)
            n = (uint32_t)(end - pos);
        char err[LV_ERRLEN] = "";
        int rc = wdb_read(p->w, p, pgno, p->page, err);
        if (rc != SQLITE_OK) {
            sqlite3_log(rc, "litestream: %s: %s", rdb_describe(p->db), err);
            return rc;
        }
        if (pgno == 1)
            p->page[18] = p->page[19] = 1; /* a rollback journal, never WAL */
        memcpy(out + (pos - (uint64_t)off), p->page + in_page, n);
        pos += n;
    }
    return SQLITE_OK;
}

static int lf_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    lfile *p = (lfile *)f;
    if (p->w && !p->travel)
        return write_mode_read(p, buf, amt, off);
    pagemap *m = current_map(p);
    uint32_t ps = pagemap_page_size(m);
    uint64_t db_size = (uint64_t)pagemap_commit(m) * ps;
    uint8_t *out = buf;
    int rc = SQLITE_OK;
    uint64_t pos = (uint64_t)off, end = (uint64_t)off + (uint64_t)amt;
    while (pos < end) {
        if (pos >= db_size) { /* beyond the end: zeros, and SQLite is told it was short */
            memset(out + (pos - (uint64_t)off), 0, (size_t)(end - pos));
            rc = SQLITE_IOERR_SHORT_READ;
            break;
        }
        uint32_t pgno = (uint32_t)(pos / ps + 1);
        uint32_t in_page = (uint32_t)(pos % ps);
        uint32_t n = ps - in_page;
        if (n > end - pos)
            n = (uint32_t)(end - pos);
        if (pgno == ltx_lock_pgno(ps)) {
            memset(p->page, 0, ps); /* never stored, never read by SQLite */
        } else {
            char err[LV_ERRLEN] = "";
            lv_err e = rdb_read_page(p->db, m, pgno, p->page, err);
            if (e == LV_ECONFLICT) { /* its file is gone: the same TXID over the files now there */
                pagemap *nm = NULL;
                char rerr[LV_ERRLEN] = "";
                if (rdb_rebuild(p->db, pagemap_txid(m), &nm, rerr) == LV_OK) {
                    replace_map(p, m, nm);
                    pagemap_unref(m);
                    m = nm;
                    e = rdb_read_page(p->db, m, pgno, p->page, err);
                } else {
                    sqlite3_log(SQLITE_IOERR_READ, "litestream: %s: rebuilding: %s",
                                rdb_describe(p->db), rerr);
                }
            }
            if (e != LV_OK) {
                sqlite3_log(SQLITE_IOERR_READ, "litestream: %s: %s", rdb_describe(p->db), err);
                rc = SQLITE_IOERR_READ;
                break;
            }
            if (pgno == 1) {
                uint32_t counter = (uint32_t)pagemap_txid(m);
                p->page[18] = 1; /* file format versions: legacy, a rollback journal */
                p->page[19] = 1;
                put_be32(p->page + 24, counter);
                put_be32(p->page + 92, ~counter); /* the header's page count is not trusted */
            }
        }
        memcpy(out + (pos - (uint64_t)off), p->page + in_page, n);
        pos += n;
    }
    pagemap_unref(m);
    return rc;
}

/* A write-mode failure: logged with its cause (SQLite only shows the code). */
static int write_failed(lfile *p, int rc, const char *what, const char *err)
{
    sqlite3_log(rc, "litestream: %s: %s: %s", rdb_describe(p->db), what, err);
    rdb_log(VCONF_LOG_ERROR, "%s: %s: %s", rdb_describe(p->db), what, err);
    return rc;
}

static int lf_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    lfile *p = (lfile *)f;
    if (!p->w || p->travel)
        return SQLITE_READONLY;
    uint32_t ps = wdb_page_size(p->w);
    if (!ps && off == 0)
        ps = (uint32_t)amt; /* a new database: the first write is page 1 */
    if (!ps || amt != (int)ps || off % ps != 0) {
        char err[LV_ERRLEN];
        snprintf(err, sizeof err, "a write of %d bytes at offset %lld is not one page of %u bytes",
                 amt, (long long)off, ps);
        return write_failed(p, SQLITE_IOERR_WRITE, "write", err);
    }
    char err[LV_ERRLEN] = "";
    int rc = wdb_write(p->w, p, (uint32_t)(off / ps + 1), buf, (uint32_t)amt, err);
    return rc == SQLITE_OK ? rc : write_failed(p, rc, "write", err);
}

static int lf_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    lfile *p = (lfile *)f;
    if (!p->w || p->travel)
        return SQLITE_READONLY;
    uint32_t ps = wdb_page_size(p->w);
    if (!ps)
        return SQLITE_OK; /* nothing was ever written */
    char err[LV_ERRLEN] = "";
    int rc = wdb_truncate(p->w, p, (uint32_t)((uint64_t)size / ps), err);
    return rc == SQLITE_OK ? rc : write_failed(p, rc, "truncate", err);
}

/* Nothing to make durable here: a write-mode commit happens at SQLITE_FCNTL_COMMIT_PHASETWO. */
static int lf_sync(sqlite3_file *f, int flags)
{
    (void)f, (void)flags;
    return SQLITE_OK;
}

static int lf_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    lfile *p = (lfile *)f;
    if (p->w && !p->travel) {
        *size = (sqlite3_int64)wdb_pages(p->w, p) * wdb_page_size(p->w);
        return SQLITE_OK;
    }
    pagemap *m = current_map(p);
    *size = (sqlite3_int64)pagemap_commit(m) * pagemap_page_size(m);
    pagemap_unref(m);
    return SQLITE_OK;
}

static int lf_lock(sqlite3_file *f, int level)
{
    lfile *p = (lfile *)f;
    if (p->w && level >= SQLITE_LOCK_RESERVED && p->travel)
        return SQLITE_READONLY; /* a view of the past is read-only */
    if (p->w) {
        int rc = wdb_lock(p->w, p, p->lock, level);
        if (rc == SQLITE_OK && level > p->lock)
            p->lock = level;
        if (rc == SQLITE_OK && level == SQLITE_LOCK_SHARED && p->travel && !p->view)
            p->view = current_map(p);
        return rc;
    }
    if (level >= SQLITE_LOCK_RESERVED)
        return SQLITE_READONLY;
    if (level == SQLITE_LOCK_SHARED && p->lock == SQLITE_LOCK_NONE) {
        pagemap_unref(p->view);
        p->view = NULL;
        p->view = current_map(p); /* the transaction's one TXID */
    }
    if (level > p->lock)
        p->lock = level;
    return SQLITE_OK;
}

static int lf_unlock(sqlite3_file *f, int level)
{
    lfile *p = (lfile *)f;
    int rc = SQLITE_OK;
    char err[LV_ERRLEN] = "";
    if (p->w && (rc = wdb_unlock(p->w, p, p->lock, level, err)) != SQLITE_OK)
        write_failed(p, rc, "commit", err);
    if (level == SQLITE_LOCK_NONE) {
        pagemap_unref(p->view);
        p->view = NULL;
    }
    p->lock = level;
    return rc;
}

static int lf_check_reserved_lock(sqlite3_file *f, int *out)
{
    lfile *p = (lfile *)f;
    *out = p->w ? wdb_reserved_by_other(p->w, p) : 0;
    return SQLITE_OK;
}

static int lf_sector_size(sqlite3_file *f)
{
    (void)f;
    return 4096;
}

static int lf_device_characteristics(sqlite3_file *f)
{
    (void)f;
    return 0;
}

/* ---- pragmas ------------------------------------------------------------------------------ */

static const char *uri_lookup(void *ctx, const char *name);

/*
 * PRAGMA litestream_write_enabled = 1 | 0 on an open connection, outside a transaction: takes the
 * replica's write state (the lease; SQLITE_BUSY naming the holder if another writer has it), or
 * ships what is committed and goes back to read mode.
 */
static int set_write_mode(lfile *p, int on, char **result)
{
    if (on == (p->w != NULL))
        return SQLITE_OK;
    if (p->lock != SQLITE_LOCK_NONE) {
        *result = sqlite3_mprintf("litestream_write_enabled: not inside a transaction");
        return SQLITE_ERROR;
    }
    char err[LV_ERRLEN] = "";
    vconf c = p->cfg;
    c.write = on;
    if (on) {
        wdb *w = NULL;
        if (wdb_acquire(&c, &w, err) != LV_OK) {
            *result = sqlite3_mprintf("litestream_write_enabled: %s", err);
            return SQLITE_ERROR;
        }
        pagemap_unref(p->travel);
        p->travel = NULL;
        rdb_release(p->db);
        p->db = wdb_rdb(w);
        p->w = w;
    } else {
        rdb *db = NULL;
        uint64_t txid;
        if (wdb_sync(p->w, &txid, err) != LV_OK) {
            *result = sqlite3_mprintf("litestream_write_enabled: sync before leaving write mode: "
                                      "%s",
                                      err);
            return SQLITE_ERROR;
        }
        if (rdb_acquire(&c, &db, err) != LV_OK) {
            *result = sqlite3_mprintf("litestream_write_enabled: %s", err);
            return SQLITE_ERROR;
        }
        pagemap_unref(p->travel);
        p->travel = NULL;
        wdb_release(p->w);
        p->w = NULL;
        p->db = db;
    }
    p->cfg.write = on;
    return SQLITE_OK;
}

/*
 * One litestream_* pragma or function: name, value (NULL to read). On success *result is the
 * value (sqlite3_malloc'd, may be NULL for none); on failure *result is the message and the
 * return SQLITE_ERROR. SQLITE_NOTFOUND for a name that is not ours.
 */
static int get_or_set(lfile *p, const char *name, const char *value, char **result)
{
    *result = NULL;
    char err[LV_ERRLEN] = "";
    if (sqlite3_stricmp(name, "litestream_write_enabled") == 0) {
        if (value) {
            int on = 0;
            if (vconf_parse_bool(value, &on, err) != LV_OK) {
                *result = sqlite3_mprintf("litestream_write_enabled: %s", err);
                return SQLITE_ERROR;
            }
            return set_write_mode(p, on, result);
        }
        *result = sqlite3_mprintf("%d", p->w ? 1 : 0);
        return *result ? SQLITE_OK : SQLITE_NOMEM;
    }
    if (sqlite3_stricmp(name, "litestream_txid") == 0 ||
        sqlite3_stricmp(name, "litestream_lag") == 0 ||
        sqlite3_stricmp(name, "litestream_hydration_progress") == 0 ||
        sqlite3_stricmp(name, "litestream_hydration_file") == 0 ||
        sqlite3_stricmp(name, "litestream_stats") == 0) {
        if (value) {
            *result = sqlite3_mprintf("%s is read-only", name);
            return SQLITE_ERROR;
        }
        if (sqlite3_stricmp(name, "litestream_txid") == 0 && p->w && !p->travel) {
            *result = sqlite3_mprintf("%016llx", (unsigned long long)wdb_txid(p->w));
        } else if (sqlite3_stricmp(name, "litestream_txid") == 0) {
            pagemap *m = current_map(p);
            *result = sqlite3_mprintf("%016llx", (unsigned long long)pagemap_txid(m));
            pagemap_unref(m);
        } else if (sqlite3_stricmp(name, "litestream_lag") == 0) {
            /* the writer is the replica's source: no lag */
            *result = sqlite3_mprintf("%lld", p->w ? 0LL : (long long)rdb_lag_seconds(p->db));
        } else if (sqlite3_stricmp(name, "litestream_hydration_progress") == 0) {
            hydrator_info hi;
            hydrator_stats(rdb_hydrator(p->db), &hi);
            *result = sqlite3_mprintf("%.1f", hi.progress);
        } else if (sqlite3_stricmp(name, "litestream_hydration_file") == 0) {
            /* the file while it is in use; empty when hydration is off or failed to start */
            *result = sqlite3_mprintf("%s", rdb_hydrator(p->db) ? p->cfg.hydration : "");
        } else {
            lv_buf b;
            lv_buf_init(&b);
            rdb_stats_json(p->db, &b);
            if (p->w && b.len && b.data[b.len - 1] == '}') { /* {..., "write": {...}} */
                b.len--;
                lv_buf_puts(&b, ",\"write\":");
                wdb_stats_json(p->w, &b);
                lv_buf_putc(&b, '}');
            }
            *result = sqlite3_mprintf("%s", b.data ? b.data : "{}");
            lv_buf_free(&b);
        }
        return *result ? SQLITE_OK : SQLITE_NOMEM;
    }
    if (sqlite3_stricmp(name, "litestream_time") != 0)
        return SQLITE_NOTFOUND;
    if (!value) {
        char t[LV_TIME_RFC3339_LEN];
        if (p->travel) {
            lv_time_format(p->travel_ms, 1, t);
        } else {
            pagemap *m = current_map(p);
            lv_time_format(pagemap_timestamp(m), 1, t);
            pagemap_unref(m);
        }
        *result = sqlite3_mprintf("%s", t);
        return *result ? SQLITE_OK : SQLITE_NOMEM;
    }
    if (lv_time_is_latest(value)) {
        pagemap_unref(p->travel);
        p->travel = NULL;
        p->travel_ms = 0;
        return SQLITE_OK;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t ms;
    if (lv_time_parse(value, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, &ms, err) !=
        LV_OK) {
        *result = sqlite3_mprintf("litestream_time: %s", err);
        return SQLITE_ERROR;
    }
    pagemap *m = NULL;
    lv_err rc = rdb_build_at(p->db, ms, &m, err);
    if (rc != LV_OK) {
        char t[LV_TIME_RFC3339_LEN];
        lv_time_format(ms, 1, t);
        *result = sqlite3_mprintf("litestream_time %s: %s", t, err);
        return SQLITE_ERROR;
    }
    pagemap_unref(p->travel);
    p->travel = m;
    p->travel_ms = ms;
    return SQLITE_OK;
}

/* A pragma or function; a set answers with the value read afterwards (a statement that returns
 * no row confuses some bindings: Python's sqlite3 reports MemoryError). */
static int do_pragma(lfile *p, const char *name, const char *value, char **result)
{
    int rc = get_or_set(p, name, value, result);
    if (rc == SQLITE_OK && value && !*result)
        rc = get_or_set(p, name, NULL, result);
    return rc;
}

static int lf_file_control(sqlite3_file *f, int op, void *arg)
{
    lfile *p = (lfile *)f;
    switch (op) {
    case SQLITE_FCNTL_PRAGMA: {
        char **a = arg;
        char *result = NULL;
        int rc = do_pragma(p, a[1], a[2], &result);
        if (rc != SQLITE_NOTFOUND)
            a[0] = result;
        return rc;
    }
    case SQLITE_FCNTL_COMMIT_PHASETWO: { /* the pager committed: so does the write buffer */
        if (!p->w)
            return SQLITE_NOTFOUND;
        char err[LV_ERRLEN] = "";
        int rc = wdb_commit(p->w, p, err);
        return rc == SQLITE_OK ? rc : write_failed(p, rc, "commit", err);
    }
    case SQLITE_FCNTL_VFSNAME:
        *(char **)arg = sqlite3_mprintf("%s", VFS_NAME);
        return SQLITE_OK;
    default:
        return SQLITE_NOTFOUND;
    }
}

/* ---- the VFS ------------------------------------------------------------------------------ */

static const char *uri_lookup(void *ctx, const char *name)
{
    return sqlite3_uri_parameter((const char *)ctx, name);
}

static int lv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_MAIN_DB)) {
        if (flags & SQLITE_OPEN_WAL) {
            f->pMethods = NULL;
            return SQLITE_CANTOPEN; /* never WAL */
        }
        if (flags & (SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_SUPER_JOURNAL)) {
            memfile_open(f); /* write mode's rollback journal: in memory (memfile.h says why) */
            if (out_flags)
                *out_flags = flags;
            return SQLITE_OK;
        }
        return orig_vfs->xOpen(orig_vfs, name, f, flags, out_flags); /* temporary files */
    }
    lfile *p = (lfile *)f;
    memset(p, 0, sizeof *p);
    char err[LV_ERRLEN] = "";
    int rc = SQLITE_CANTOPEN;
    if (vconf_load(&p->cfg, uri_lookup, (void *)name, err) != LV_OK)
        goto fail;
    if (p->cfg.write) {
        lv_err e = wdb_acquire(&p->cfg, &p->w, err);
        if (e == LV_ECONFLICT)
            rc = SQLITE_BUSY; /* another writer: err names it */
        if (e != LV_OK)
            goto fail;
        p->db = wdb_rdb(p->w);
    } else if (rdb_acquire(&p->cfg, &p->db, err) != LV_OK) {
        goto fail;
    }
    p->page = sqlite3_malloc64(MAX_PAGE_SIZE);
    if (!p->page) {
        if (p->w)
            wdb_release(p->w);
        else
            rdb_release(p->db);
        rc = SQLITE_NOMEM;
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    /* read-write for SQLite (so PRAGMA litestream_write_enabled can switch modes); read mode
     * refuses the write lock with SQLITE_READONLY */
    if (out_flags)
        *out_flags = flags;
    p->base.pMethods = &lf_methods;
    return SQLITE_OK;
fail:
    f->pMethods = NULL; /* xClose is not called for a failed open */
    sqlite3_log(rc, "litestream: cannot open %s: %s", name ? name : "?", err);
    rdb_log(VCONF_LOG_ERROR, "cannot open %s: %s", name ? name : "?", err);
    return rc;
}

/* Journals and WAL files of our databases never exist; other names are the default VFS's. */
static int lv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    size_t n = strlen(name);
    if ((n > 8 && strcmp(name + n - 8, "-journal") == 0) ||
        (n > 4 && strcmp(name + n - 4, "-wal") == 0)) {
        *out = 0;
        return SQLITE_OK;
    }
    return orig_vfs->xAccess(orig_vfs, name, flags, out);
}

/* A database's name is a label (its data is the replica's): kept as given. */
static int lv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    sqlite3_snprintf(n, out, "%s", name);
    return (int)strlen(name) < n ? SQLITE_OK : SQLITE_CANTOPEN;
}

static int lv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    size_t n = strlen(name);
    if (n > 8 && strcmp(name + n - 8, "-journal") == 0)
        return SQLITE_OK; /* journals live in memory (memfile.h) */
    return orig_vfs->xDelete(orig_vfs, name, sync_dir);
}

static void *lv_dlopen(sqlite3_vfs *vfs, const char *path)
{
    (void)vfs;
    return orig_vfs->xDlOpen(orig_vfs, path);
}

static void lv_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
    (void)vfs;
    orig_vfs->xDlError(orig_vfs, n, msg);
}

static void (*lv_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return orig_vfs->xDlSym(orig_vfs, h, sym);
}

static void lv_dlclose(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    orig_vfs->xDlClose(orig_vfs, h);
}

static int lv_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return orig_vfs->xRandomness(orig_vfs, n, out);
}

static int lv_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return orig_vfs->xSleep(orig_vfs, us);
}

static int lv_current_time(sqlite3_vfs *vfs, double *t)
{
    (void)vfs;
    return orig_vfs->xCurrentTime(orig_vfs, t);
}

static int lv_get_last_error(sqlite3_vfs *vfs, int n, char *msg)
{
    (void)vfs;
    return orig_vfs->xGetLastError ? orig_vfs->xGetLastError(orig_vfs, n, msg) : 0;
}

static int lv_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *t)
{
    (void)vfs;
    return orig_vfs->xCurrentTimeInt64(orig_vfs, t);
}

static sqlite3_vfs litestream_vfs = {
    2,                     /* iVersion */
    0,                     /* szOsFile: set at load, max(lfile, the default VFS's file) */
    1024,                  /* mxPathname */
    0,                     /* pNext */
    VFS_NAME,              /* zName */
    0,                     /* pAppData */
    lv_open,               /* xOpen */
    lv_delete,             /* xDelete */
    lv_access,             /* xAccess */
    lv_full_pathname,      /* xFullPathname */
    lv_dlopen,             /* xDlOpen */
    lv_dlerror,            /* xDlError */
    lv_dlsym,              /* xDlSym */
    lv_dlclose,            /* xDlClose */
    lv_randomness,         /* xRandomness */
    lv_sleep,              /* xSleep */
    lv_current_time,       /* xCurrentTime */
    lv_get_last_error,     /* xGetLastError */
    lv_current_time_int64, /* xCurrentTimeInt64 */
    0,
    0,
    0};

/* ---- SQL functions ------------------------------------------------------------------------ */

/* The main database of the function's connection, if it is ours. */
static lfile *main_file(sqlite3_context *ctx)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(sqlite3_context_db_handle(ctx), "main", SQLITE_FCNTL_FILE_POINTER,
                             &f) != SQLITE_OK ||
        !f || f->pMethods != &lf_methods) {
        sqlite3_result_error(ctx,
                             "litestream: the main database is not opened through the litestream "
                             "VFS (open it as file:NAME?vfs=litestream)",
                             -1);
        return NULL;
    }
    return (lfile *)f;
}

/* litestream_txid(), litestream_time(), litestream_lag(), litestream_stats(),
 * litestream_set_time(x): the pragma of the same name (user data). */
static void fn_pragma(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    lfile *p = main_file(ctx);
    if (!p)
        return;
    const char *name = sqlite3_user_data(ctx);
    const char *value = NULL;
    if (argc == 1) {
        value = (const char *)sqlite3_value_text(argv[0]);
        if (!value) {
            sqlite3_result_error(ctx, "litestream_set_time: want a time or 'latest'", -1);
            return;
        }
    }
    char *result = NULL;
    int rc = do_pragma(p, name, value, &result);
    if (rc == SQLITE_OK) {
        if (!result)
            sqlite3_result_null(ctx);
        else if (strcmp(name, "litestream_lag") == 0)
            sqlite3_result_int64(ctx, atoll(result));
        else
            sqlite3_result_text(ctx, result, -1, SQLITE_TRANSIENT);
    } else if (rc == SQLITE_NOMEM) {
        sqlite3_result_error_nomem(ctx);
    } else {
        sqlite3_result_error(ctx, result ? result : "litestream: failed", -1);
    }
    sqlite3_free(result);
}

/* litestream_sync(): ships what is committed now; the durable TXID, 16 hex digits. */
static void fn_sync(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc, (void)argv;
    lfile *p = main_file(ctx);
    if (!p)
        return;
    if (!p->w) {
        sqlite3_result_error(ctx,
                             "litestream_sync: the database is not open in write mode "
                             "(LITESTREAM_WRITE_ENABLED=true or write=1)",
                             -1);
        return;
    }
    char err[LV_ERRLEN] = "";
    uint64_t txid = 0;
    if (wdb_sync(p->w, &txid, err) != LV_OK) {
        char *msg = sqlite3_mprintf("litestream_sync: %s", err);
        sqlite3_result_error(ctx, msg ? msg : "litestream_sync: failed", -1);
        sqlite3_free(msg);
        return;
    }
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)txid);
    sqlite3_result_text(ctx, hex, 16, SQLITE_TRANSIENT);
}

static int register_functions(sqlite3 *db, char **err, const sqlite3_api_routines *api)
{
    (void)err, (void)api;
    static const struct {
        const char *sql_name;
        const char *pragma;
        int argc;
        int flags;
    } fns[] = {
        {"litestream_txid", "litestream_txid", 0, 0},
        {"litestream_time", "litestream_time", 0, 0},
        {"litestream_lag", "litestream_lag", 0, 0},
        {"litestream_stats", "litestream_stats", 0, 0},
        {"litestream_set_time", "litestream_time", 1, SQLITE_DIRECTONLY},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        int rc =
            sqlite3_create_function_v2(db, fns[i].sql_name, fns[i].argc, SQLITE_UTF8 | fns[i].flags,
                                       (void *)fns[i].pragma, fn_pragma, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return rc;
    }
    return sqlite3_create_function_v2(db, "litestream_sync", 0, SQLITE_UTF8 | SQLITE_DIRECTONLY,
                                      NULL, fn_sync, NULL, NULL, NULL);
}

/* ---- entry point -------------------------------------------------------------------------- */

static void *sq_malloc(size_t n)
{
    return sqlite3_malloc64(n ? n : 1);
}

static void *sq_realloc(void *p, size_t n)
{
    return sqlite3_realloc64(p, n ? n : 1);
}

static void sq_free(void *p)
{
    sqlite3_free(p);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
    int sqlite3_litestreamvfs_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi)
{
    SQLITE_EXTENSION_INIT2(pApi);
    if (sqlite3_libversion_number() < 3031000) {
        *pzErrMsg = sqlite3_mprintf("litestream-vfs needs SQLite 3.31.0 or newer, not %s",
                                    sqlite3_libversion());
        return SQLITE_ERROR;
    }
    if (!sqlite3_vfs_find(VFS_NAME)) {
        orig_vfs = sqlite3_vfs_find(NULL);
        if (!orig_vfs)
            return SQLITE_ERROR;
        static const lv_allocator sq = {sq_malloc, sq_realloc, sq_free};
        lv_alloc_set(&sq);
        const char *level = getenv("LITESTREAM_LOG_LEVEL");
        vconf_log_level lvl;
        if (level && *level && vconf_parse_log_level(level, &lvl, NULL) == LV_OK)
            rdb_set_log_level(lvl);
        litestream_vfs.szOsFile =
            (int)sizeof(lfile) > orig_vfs->szOsFile ? (int)sizeof(lfile) : orig_vfs->szOsFile;
        /* LITESTREAM_VFS_DEFAULT=1: every database opened from now on is a replica, for clients
         * that cannot name a VFS (better-sqlite3 is built without URI filenames) */
        int make_default = 0;
        const char *dflt = getenv("LITESTREAM_VFS_DEFAULT");
        if (dflt && *dflt && vconf_parse_bool(dflt, &make_default, NULL) != LV_OK) {
            *pzErrMsg = sqlite3_mprintf("LITESTREAM_VFS_DEFAULT=%s: want 1 or 0", dflt);
            return SQLITE_ERROR;
        }
        int rc = sqlite3_vfs_register(&litestream_vfs, make_default);
        if (rc != SQLITE_OK)
            return rc;
        rc = sqlite3_auto_extension((void (*)(void))register_functions);
        if (rc != SQLITE_OK)
            return rc;
    }
    int rc = register_functions(db, pzErrMsg, pApi);
    return rc == SQLITE_OK ? SQLITE_OK_LOAD_PERMANENTLY : rc;
}
