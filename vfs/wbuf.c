/*
 * wbuf: the local write buffer (format, recovery and crash points are drawn in wbuf.h).
 *
 * In memory: a hash table pgno -> (offset of the newest committed record, offset of the open
 * transaction's record), and the list of pgnos the open transaction touched. Page images stay in
 * the file and are read back with pread. Threads: every entry point takes w->mu; file I/O happens
 * under it (local and short; no sleeping).
 */
#include "wbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "alloc.h"
#include "crc64.h"
#include "ltx.h"

#define TAG_PAGE    0x50414745u /* "PAGE" */
#define TAG_COMMIT  0x434d4954u /* "CMIT" */
#define REC_HDR     8u          /* tag u32, pgno or commit u32 */
#define COMMIT_SIZE 16u         /* tag, commit, crc u64 */

typedef struct slot {
    uint32_t pgno;      /* 0: empty */
    uint64_t committed; /* offset of the page record's image; 0: not in the window */
    uint64_t pending;   /* the open transaction's; 0: none */
} slot;

/* Everything that a scan of the log rebuilds; swapped whole so a failed rebuild changes nothing. */
typedef struct wstate {
    slot *tab;
    size_t cap, used;   /* power of two; used = keys */
    uint32_t *pend;     /* pgnos the open transaction wrote (distinct) */
    size_t npend, capp; /* */
    uint32_t commit;    /* db pages after the last commit */
    uint32_t shrunk_to; /* smallest size seen in the window (base commit included) */
    uint64_t committed_end;
    uint64_t end;
    uint64_t tx_crc; /* CRC of the open transaction's bytes so far */
    uint64_t txs;
} wstate;

struct wbuf {
    pthread_mutex_t mu;
    char *path;
    int fd;
    int lock_fd; /* <path>.lock, flock'ed for the buffer's life: one user of a buffer at a time */
    unsigned flags;
    uint64_t max_bytes;
    uint32_t page_size, lock_pgno;
    uint64_t base_txid, base_checksum;
    uint32_t base_commit;
    int in_tx;
    uint8_t *scratch; /* one record: REC_HDR + page */
    wstate st;
};

/* ---- small helpers ---- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static lv_err pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *path,
                         char *err)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t k = pwrite(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return lv_fail(err, LV_EIO, "write buffer %s: write at %llu: %s", path,
                           (unsigned long long)off, k < 0 ? strerror(errno) : "short write");
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return LV_OK;
}

/* Reads up to n bytes; *got < n only at the end of the file. */
static lv_err pread_some(int fd, void *buf, size_t n, uint64_t off, size_t *got, const char *path,
                         char *err)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t k = pread(fd, p + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return lv_fail(err, LV_EIO, "write buffer %s: read at %llu: %s", path,
                           (unsigned long long)(off + done), strerror(errno));
        if (k == 0)
            break;
        done += (size_t)k;
    }
    *got = done;
    return LV_OK;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = lv_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* ---- the in-memory state ---- */

static void state_free(wstate *s)
{
    lv_free(s->tab);
    lv_free(s->pend);
    memset(s, 0, sizeof *s);
}

static size_t hash32(uint32_t k, size_t cap)
{
    return (size_t)((k * 2654435761u) & (cap - 1));
}

static slot *tab_find(const wstate *s, uint32_t pgno)
{
    if (!s->cap)
        return NULL;
    for (size_t i = hash32(pgno, s->cap);; i = (i + 1) & (s->cap - 1)) {
        if (s->tab[i].pgno == pgno)
            return &s->tab[i];
        if (s->tab[i].pgno == 0)
            return NULL;
    }
}

/* The slot for pgno, created if needed; NULL only when memory runs out (state unchanged). */
static slot *tab_get(wstate *s, uint32_t pgno)
{
    slot *e = tab_find(s, pgno);
    if (e)
        return e;
    if ((s->used + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        slot *nt = lv_calloc(ncap, sizeof *nt);
        if (!nt)
            return NULL;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->tab[i].pgno)
                continue;
            size_t j = hash32(s->tab[i].pgno, ncap);
            while (nt[j].pgno)
                j = (j + 1) & (ncap - 1);
            nt[j] = s->tab[i];
        }
        lv_free(s->tab);
        s->tab = nt;
        s->cap = ncap;
    }
    size_t i = hash32(pgno, s->cap);
    while (s->tab[i].pgno)
        i = (i + 1) & (s->cap - 1);
    s->tab[i].pgno = pgno;
    s->used++;
    return &s->tab[i];
}

/* Records a page record of the open transaction at image offset off. */
static int state_page(wstate *s, uint32_t pgno, uint64_t off)
{
    if (s->npend == s->capp) {
        size_t nc = s->capp ? s->capp * 2 : 32;
        uint32_t *np = lv_realloc(s->pend, nc * sizeof *np);
        if (!np)
            return -1;
        s->pend = np;
        s->capp = nc;
    }
    slot *e = tab_get(s, pgno);
    if (!e)
        return -1;
    if (!e->pending)
        s->pend[s->npend++] = pgno;
    e->pending = off;
    return 0;
}

static void state_rollback(wstate *s)
{
    for (size_t i = 0; i < s->npend; i++) {
        slot *e = tab_find(s, s->pend[i]);
        if (e)
            e->pending = 0;
    }
    s->npend = 0;
    s->tx_crc = 0;
    s->end = s->committed_end;
}

static void state_commit(wstate *s, uint32_t commit, uint64_t end)
{
    for (size_t i = 0; i < s->npend; i++) {
        slot *e = tab_find(s, s->pend[i]);
        if (e) {
            /* a page this transaction wrote beyond its own end (it grew, then shrank back, as
             * a rolled-back growth does) is not part of the database */
            e->committed = s->pend[i] <= commit ? e->pending : 0;
            e->pending = 0;
        }
    }
    s->npend = 0;
    if (commit < s->commit || commit < s->shrunk_to) {
        for (size_t i = 0; i < s->cap; i++)
            if (s->tab[i].pgno > commit)
                s->tab[i].committed = 0;
        if (commit < s->shrunk_to)
            s->shrunk_to = commit;
    }
    s->commit = commit;
    s->committed_end = end;
    s->end = end;
    s->tx_crc = 0;
    s->txs++;
}

/*
 * Scans the log of fd (file size `size`) from the header on into a fresh state. With keep_open,
 * well-formed page records after the last commit become the open transaction (used on a file this
 * process wrote); otherwise the scan stops at the last valid commit. Returns LV_ENOMEM or LV_EIO;
 * a torn or invalid tail is not an error (s->committed_end says where the valid log ends).
 */
static lv_err scan(wbuf *w, int fd, uint64_t size, int keep_open, wstate *s, char *err)
{
    memset(s, 0, sizeof *s);
    s->commit = s->shrunk_to = w->base_commit;
    s->committed_end = s->end = WBUF_HEADER_SIZE;
    uint64_t pos = WBUF_HEADER_SIZE;
    uint8_t *rec = w->scratch;
    size_t ps = w->page_size;
    lv_err rc = LV_OK;
    while (pos + REC_HDR <= size) {
        size_t got;
        rc = pread_some(fd, rec, REC_HDR, pos, &got, w->path, err);
        if (rc)
            goto fail;
        if (got < REC_HDR)
            break;
        uint32_t tag = get32(rec), val = get32(rec + 4);
        if (tag == TAG_PAGE) {
            if (val == 0 || val == w->lock_pgno || pos + REC_HDR + ps > size)
                break;
            rc = pread_some(fd, rec + REC_HDR, ps, pos + REC_HDR, &got, w->path, err);
            if (rc)
                goto fail;
            if (got < ps)
                break;
            if (state_page(s, val, pos + REC_HDR) != 0) {
                rc = lv_fail(err, LV_ENOMEM, "write buffer %s: out of memory recovering it",
                             w->path);
                goto fail;
            }
            s->tx_crc = crc64_update(s->tx_crc, rec, REC_HDR + ps);
            pos += REC_HDR + ps;
            s->end = pos;
        } else if (tag == TAG_COMMIT) {
            uint8_t c[8];
            if (pos + COMMIT_SIZE > size)
                break;
            rc = pread_some(fd, c, 8, pos + REC_HDR, &got, w->path, err);
            if (rc)
                goto fail;
            if (got < 8)
                break;
            uint64_t crc = crc64_update(s->tx_crc, rec, REC_HDR);
            if (crc != get64(c))
                break;
            pos += COMMIT_SIZE;
            state_commit(s, val, pos);
        } else {
            break;
        }
    }
    if (!keep_open)
        state_rollback(s);
    return LV_OK;
fail:
    state_free(s);
    return rc;
}

static void header_encode(const wbuf *w, uint64_t base_txid, uint64_t base_checksum,
                          uint32_t base_commit, uint8_t h[WBUF_HEADER_SIZE])
{
    memset(h, 0, WBUF_HEADER_SIZE);
    memcpy(h, WBUF_MAGIC, 8);
    put32(h + 8, 1);
    put32(h + 12, w->page_size);
    put64(h + 16, base_txid);
    put64(h + 24, base_checksum);
    put32(h + 32, base_commit);
    put64(h + 56, crc64_update(0, h, 56));
}

static lv_err fsync_dir(const char *path, char *err)
{
    char *dir = dup_str(path);
    if (!dir)
        return lv_fail(err, LV_ENOMEM, "write buffer %s: out of memory", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    lv_err rc = LV_OK;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        rc = lv_fail(err, LV_EIO, "write buffer %s: fsync of folder %s: %s", path, dir,
                     strerror(errno));
    if (fd >= 0)
        close(fd);
    lv_free(dir);
    return rc;
}

/*
 * Writes "<path>.tmp": the header for the given base, then bytes [from, to) of the current file
 * (whole records). Returns the open descriptor of the temp file (fsync'd) in *fd_out and its name
 * in *tmp_out (caller frees); on failure the temp file is removed.
 */
static lv_err write_tmp(wbuf *w, uint64_t base_txid, uint64_t base_checksum, uint32_t base_commit,
                        uint64_t from, uint64_t to, int *fd_out, char **tmp_out, char *err)
{
    lv_err rc = LV_OK;
    size_t n = strlen(w->path);
    char *tmp = lv_malloc(n + 5);
    uint8_t *buf = NULL;
    int fd = -1;
    if (!tmp) {
        rc = lv_fail(err, LV_ENOMEM, "write buffer %s: out of memory", w->path);
        goto done;
    }
    memcpy(tmp, w->path, n);
    memcpy(tmp + n, ".tmp", 5);
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = lv_fail(err, LV_EIO, "write buffer %s: create: %s", tmp, strerror(errno));
        goto done;
    }
    uint8_t h[WBUF_HEADER_SIZE];
    header_encode(w, base_txid, base_checksum, base_commit, h);
    rc = pwrite_all(fd, h, sizeof h, 0, tmp, err);
    if (rc)
        goto done;
    const size_t chunk = 1u << 20;
    if (to > from) {
        buf = lv_malloc(chunk);
        if (!buf) {
            rc = lv_fail(err, LV_ENOMEM, "write buffer %s: out of memory", w->path);
            goto done;
        }
    }
    for (uint64_t off = from; off < to;) {
        size_t want = (size_t)(to - off < chunk ? to - off : chunk), got;
        rc = pread_some(w->fd, buf, want, off, &got, w->path, err);
        if (rc)
            goto done;
        if (got < want) {
            rc = lv_fail(err, LV_EIO, "write buffer %s: shorter than expected", w->path);
            goto done;
        }
        rc = pwrite_all(fd, buf, got, WBUF_HEADER_SIZE + (off - from), tmp, err);
        if (rc)
            goto done;
        off += got;
    }
    if (fsync(fd) != 0) {
        rc = lv_fail(err, LV_EIO, "write buffer %s: fsync: %s", tmp, strerror(errno));
        goto done;
    }
done:
    lv_free(buf);
    if (rc) {
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        lv_free(tmp);
        return rc;
    }
    *fd_out = fd;
    *tmp_out = tmp;
    return LV_OK;
}

/* ---- open, create, close ---- */

static wbuf *wbuf_new(const char *path, uint32_t page_size, uint64_t max_bytes, unsigned flags)
{
    wbuf *w = lv_calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->fd = w->lock_fd = -1;
    w->path = dup_str(path);
    w->scratch = lv_malloc(REC_HDR + (size_t)page_size);
    if (!w->path || !w->scratch || pthread_mutex_init(&w->mu, NULL) != 0) {
        lv_free(w->path);
        lv_free(w->scratch);
        lv_free(w);
        return NULL;
    }
    w->page_size = page_size;
    w->lock_pgno = ltx_lock_pgno(page_size);
    w->max_bytes = max_bytes;
    w->flags = flags;
    return w;
}

/*
 * Takes <path>.lock exclusively (a file of its own: wbuf_mark_synced renames new files over the
 * buffer, so a lock on the buffer's own inode would not last). Two processes, or two handles in
 * one, pointed at one buffer would each append at their own end and lose the other's commits.
 */
static lv_err take_lock(wbuf *w, char *err)
{
    size_t n = strlen(w->path);
    char *lp = lv_malloc(n + 6);
    if (!lp)
        return lv_fail(err, LV_ENOMEM, "write buffer %s: out of memory", w->path);
    memcpy(lp, w->path, n);
    memcpy(lp + n, ".lock", 6);
    lv_err rc = LV_OK;
    w->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (w->lock_fd < 0)
        rc = lv_fail(err, LV_EIO, "write buffer %s: %s: %s", w->path, lp, strerror(errno));
    else if (flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0)
        rc = lv_fail(err, errno == EWOULDBLOCK ? LV_ECONFLICT : LV_EIO,
                     "write buffer %s is in use (%s is locked by another writer): %s", w->path, lp,
                     strerror(errno));
    lv_free(lp);
    return rc;
}

void wbuf_close(wbuf *w)
{
    if (!w)
        return;
    if (w->lock_fd >= 0)
        close(w->lock_fd); /* releases the flock */
    if (w->fd >= 0)
        close(w->fd);
    state_free(&w->st);
    pthread_mutex_destroy(&w->mu);
    lv_free(w->path);
    lv_free(w->scratch);
    lv_free(w);
}

lv_err wbuf_create(wbuf **out, const char *path, uint32_t page_size, uint64_t base_txid,
                   uint64_t base_checksum, uint32_t base_commit, uint64_t max_bytes, unsigned flags,
                   char *err)
{
    *out = NULL;
    if (!ltx_page_size_valid(page_size))
        return lv_fail(err, LV_EINVAL, "write buffer %s: invalid page size %u", path, page_size);
    wbuf *w = wbuf_new(path, page_size, max_bytes, flags);
    if (!w)
        return lv_fail(err, LV_ENOMEM, "write buffer %s: out of memory", path);
    char *tmp = NULL;
    int fd = -1;
    lv_err rc = take_lock(w, err);
    if (rc)
        goto done;
    rc = write_tmp(w, base_txid, base_checksum, base_commit, 0, 0, &fd, &tmp, err);
    if (rc)
        goto done;
    /* A crash before the rename leaves only the temp file; after it, the empty buffer. */
    if (rename(tmp, path) != 0) {
        rc = lv_fail(err, LV_EIO, "write buffer %s: rename: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        goto done;
    }
    w->fd = fd;
    rc = fsync_dir(path, err);
    if (rc)
        goto done;
    w->base_txid = base_txid;
    w->base_checksum = base_checksum;
    w->base_commit = base_commit;
    w->st.commit = w->st.shrunk_to = base_commit;
    w->st.committed_end = w->st.end = WBUF_HEADER_SIZE;
done:
    lv_free(tmp);
    if (rc) {
        wbuf_close(w);
        return rc;
    }
    *out = w;
    return LV_OK;
}

lv_err wbuf_open(wbuf **out, const char *path, uint64_t max_bytes, unsigned flags, wbuf_info *info,
                 char *err)
{
    *out = NULL;
    wbuf *w = NULL;
    lv_err rc = LV_OK;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return lv_fail(err, errno == ENOENT ? LV_ENOTFOUND : LV_EIO, "write buffer %s: open: %s",
                       path, strerror(errno));
    uint8_t h[WBUF_HEADER_SIZE];
    size_t got;
    rc = pread_some(fd, h, sizeof h, 0, &got, path, err);
    if (rc)
        goto done;
    if (got < sizeof h || memcmp(h, WBUF_MAGIC, 8) != 0 || get32(h + 8) != 1 ||
        get64(h + 56) != crc64_update(0, h, 56) || !ltx_page_size_valid(get32(h + 12))) {
        rc = lv_fail(err, LV_ECORRUPT, "write buffer %s: not a write buffer (bad header)", path);
        goto done;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0) {
        rc = lv_fail(err, LV_EIO, "write buffer %s: seek: %s", path, strerror(errno));
        goto done;
    }
    w = wbuf_new(path, get32(h + 12), max_bytes, flags);
    if (!w) {
        rc = lv_fail(err, LV_ENOMEM, "write buffer %s: out of memory", path);
        goto done;
    }
    w->base_txid = get64(h + 16);
    w->base_checksum = get64(h + 24);
    w->base_commit = get32(h + 32);
    if ((rc = take_lock(w, err)) != LV_OK)
        goto done;
    rc = scan(w, fd, (uint64_t)size, 0, &w->st, err);
    if (rc)
        goto done;
    if ((uint64_t)size > w->st.committed_end) {
        /* Drop the torn tail now, so that later appends never sit after garbage. */
        if (ftruncate(fd, (off_t)w->st.committed_end) != 0 || fsync(fd) != 0) {
            rc = lv_fail(err, LV_EIO, "write buffer %s: truncating the torn tail: %s", path,
                         strerror(errno));
            goto done;
        }
    }
    w->fd = fd;
    fd = -1;
    /* A temp file left by a crash inside wbuf_mark_synced or wbuf_create is never the buffer. */
    char *tmp = lv_malloc(strlen(path) + 5);
    if (tmp) {
        sprintf(tmp, "%s.tmp", path);
        unlink(tmp);
        lv_free(tmp);
    }
    if (info) {
        wbuf_get_info(w, info);
        info->dropped_bytes = (uint64_t)size - w->st.committed_end;
    }
done:
    if (fd >= 0)
        close(fd);
    if (rc) {
        wbuf_close(w);
        return rc;
    }
    *out = w;
    return LV_OK;
}

void wbuf_get_info(wbuf *w, wbuf_info *info)
{
    pthread_mutex_lock(&w->mu);
    memset(info, 0, sizeof *info);
    info->page_size = w->page_size;
    info->base_txid = w->base_txid;
    info->base_checksum = w->base_checksum;
    info->base_commit = w->base_commit;
    info->commit = w->st.commit;
    info->txs = w->st.txs;
    for (size_t i = 0; i < w->st.cap; i++)
        if (w->st.tab[i].pgno && w->st.tab[i].committed)
            info->dirty_pages++;
    info->bytes = w->st.end;
    info->in_tx = w->in_tx;
    pthread_mutex_unlock(&w->mu);
}

/* ---- the writer's transaction ---- */

static lv_err bound_check(wbuf *w, uint64_t add, char *err)
{
    if (w->max_bytes && w->st.end + add > w->max_bytes)
        return lv_fail(err, LV_ENOMEM,
                       "write buffer %s full: %llu bytes would pass its bound of %llu bytes "
                       "(unsynced commits; is the store reachable?)",
                       w->path, (unsigned long long)(w->st.end + add),
                       (unsigned long long)w->max_bytes);
    return LV_OK;
}

lv_err wbuf_begin(wbuf *w, char *err)
{
    lv_err rc = LV_OK;
    pthread_mutex_lock(&w->mu);
    if (w->in_tx)
        rc = lv_fail(err, LV_EINVAL, "write buffer %s: a transaction is already open", w->path);
    else
        w->in_tx = 1;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

lv_err wbuf_page(wbuf *w, uint32_t pgno, const void *page, char *err)
{
    lv_err rc = LV_OK;
    pthread_mutex_lock(&w->mu);
    size_t ps = w->page_size;
    if (!w->in_tx) {
        rc = lv_fail(err, LV_EINVAL, "write buffer %s: page %u outside a transaction", w->path,
                     pgno);
        goto done;
    }
    if (pgno == 0 || pgno == w->lock_pgno) {
        rc = lv_fail(err, LV_EINVAL, "write buffer %s: page %u cannot be written%s", w->path, pgno,
                     pgno ? " (the lock page)" : "");
        goto done;
    }
    /* Room for this record and the commit record that must follow it. */
    rc = bound_check(w, REC_HDR + ps + COMMIT_SIZE, err);
    if (rc)
        goto done;
    uint64_t off = w->st.end;
    slot *e0 = tab_find(&w->st, pgno);
    uint64_t prev = e0 ? e0->pending : 0;
    /* Make sure the bookkeeping can take the page before anything reaches the file. */
    if (state_page(&w->st, pgno, off + REC_HDR) != 0) {
        rc = lv_fail(err, LV_ENOMEM, "write buffer %s: out of memory for page %u", w->path, pgno);
        goto done;
    }
    put32(w->scratch, TAG_PAGE);
    put32(w->scratch + 4, pgno);
    memcpy(w->scratch + REC_HDR, page, ps);
    rc = pwrite_all(w->fd, w->scratch, REC_HDR + ps, off, w->path, err);
    if (rc) {
        /* Undo the bookkeeping; bytes past st.end are ignored and overwritten later. */
        tab_find(&w->st, pgno)->pending = prev;
        if (!prev)
            w->st.npend--; /* state_page appended pgno last */
        goto done;
    }
    w->st.tx_crc = crc64_update(w->st.tx_crc, w->scratch, REC_HDR + ps);
    w->st.end = off + REC_HDR + ps;
done:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

lv_err wbuf_commit(wbuf *w, uint32_t commit_pages, char *err)
{
    lv_err rc = LV_OK;
    pthread_mutex_lock(&w->mu);
    if (!w->in_tx) {
        rc = lv_fail(err, LV_EINVAL, "write buffer %s: commit without a transaction", w->path);
        goto done;
    }
    rc = bound_check(w, COMMIT_SIZE, err);
    if (rc)
        goto done;
    uint8_t c[COMMIT_SIZE];
    put32(c, TAG_COMMIT);
    put32(c + 4, commit_pages);
    put64(c + 8, crc64_update(w->st.tx_crc, c, REC_HDR));
    /* The page records are already written; this record is what makes them count. */
    rc = pwrite_all(w->fd, c, sizeof c, w->st.end, w->path, err);
    if (rc)
        goto done;
    if ((w->flags & WBUF_SYNC_COMMIT) && fdatasync(w->fd) != 0) {
        rc = lv_fail(err, LV_EIO, "write buffer %s: fdatasync: %s", w->path, strerror(errno));
        /* the caller is told the commit failed: a recovery must not find it committed */
        if (ftruncate(w->fd, (off_t)w->st.end) != 0)
            lv_wrap(err, rc, "(and the commit record could not be taken back: %s) ",
                    strerror(errno));
        goto done;
    }
    state_commit(&w->st, commit_pages, w->st.end + COMMIT_SIZE);
    w->in_tx = 0;
done:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

lv_err wbuf_rollback(wbuf *w, char *err)
{
    lv_err rc = LV_OK;
    pthread_mutex_lock(&w->mu);
    if (!w->in_tx)
        goto done;
    /* A crash before the truncate leaves records without a commit record: recovery drops them. */
    if (ftruncate(w->fd, (off_t)w->st.committed_end) != 0) {
        rc = lv_fail(err, LV_EIO, "write buffer %s: rollback truncate: %s", w->path,
                     strerror(errno));
        goto done;
    }
    state_rollback(&w->st);
    w->in_tx = 0;
done:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* ---- reads ---- */

lv_err wbuf_lookup(wbuf *w, uint32_t pgno, int pending, void *out, int *found, char *err)
{
    lv_err rc = LV_OK;
    *found = 0;
    pthread_mutex_lock(&w->mu);
    slot *e = tab_find(&w->st, pgno);
    uint64_t off = 0;
    if (e)
        off = pending && e->pending ? e->pending : e->committed;
    if (off) {
        size_t got;
        rc = pread_some(w->fd, out, w->page_size, off, &got, w->path, err);
        if (rc == LV_OK && got < w->page_size)
            rc = lv_fail(err, LV_EIO, "write buffer %s: page %u at %llu is short", w->path, pgno,
                         (unsigned long long)off);
        if (rc == LV_OK)
            *found = 1;
    } else if (pgno > w->st.shrunk_to && pgno != w->lock_pgno) {
        /* Dropped by a shrink in this window and not rewritten: its base image is gone. */
        memset(out, 0, w->page_size);
        *found = 1;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

uint32_t wbuf_commit_pages(wbuf *w)
{
    pthread_mutex_lock(&w->mu);
    uint32_t c = w->st.commit;
    pthread_mutex_unlock(&w->mu);
    return c;
}

/* ---- the syncer ---- */

void wbuf_dirty_free(wbuf_dirty *d)
{
    lv_free(d->pgnos);
    lv_free(d->pages);
    memset(d, 0, sizeof *d);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

lv_err wbuf_dirty_get(wbuf *w, wbuf_dirty *d, char *err)
{
    memset(d, 0, sizeof *d);
    lv_err rc = LV_OK;
    pthread_mutex_lock(&w->mu);
    const wstate *s = &w->st;
    size_t ps = w->page_size, n = 0;
    /* The window's pages, plus zero images for pages a shrink dropped and nothing rewrote. */
    uint32_t zlo = s->shrunk_to, zhi = s->commit < w->base_commit ? s->commit : w->base_commit;
    size_t maxn = 0;
    for (size_t i = 0; i < s->cap; i++)
        if (s->tab[i].pgno && s->tab[i].committed)
            maxn++;
    if (zhi > zlo)
        maxn += zhi - zlo;
    d->pgnos = lv_malloc((maxn ? maxn : 1) * sizeof *d->pgnos);
    d->pages = lv_malloc((maxn ? maxn : 1) * ps);
    if (!d->pgnos || !d->pages) {
        rc = lv_fail(err, LV_ENOMEM, "write buffer %s: out of memory for %zu dirty pages", w->path,
                     maxn);
        goto done;
    }
    for (size_t i = 0; i < s->cap; i++)
        if (s->tab[i].pgno && s->tab[i].committed)
            d->pgnos[n++] = s->tab[i].pgno;
    for (uint32_t p = zlo + 1; zhi > zlo && p <= zhi; p++) {
        slot *e = tab_find(s, p);
        if ((!e || !e->committed) && p != w->lock_pgno)
            d->pgnos[n++] = p;
    }
    qsort(d->pgnos, n, sizeof *d->pgnos, cmp_u32);
    for (size_t i = 0; i < n; i++) {
        slot *e = tab_find(s, d->pgnos[i]);
        uint8_t *dst = d->pages + i * ps;
        if (!e || !e->committed) {
            memset(dst, 0, ps);
            continue;
        }
        size_t got;
        rc = pread_some(w->fd, dst, ps, e->committed, &got, w->path, err);
        if (rc == LV_OK && got < ps)
            rc = lv_fail(err, LV_EIO, "write buffer %s: page %u is short", w->path, d->pgnos[i]);
        if (rc)
            goto done;
    }
    d->n = n;
    d->page_size = w->page_size;
    d->base_txid = w->base_txid;
    d->base_checksum = w->base_checksum;
    d->base_commit = w->base_commit;
    d->commit = s->commit;
    d->txs = s->txs;
    d->mark = s->committed_end;
done:
    pthread_mutex_unlock(&w->mu);
    if (rc)
        wbuf_dirty_free(d);
    return rc;
}

lv_err wbuf_mark_synced(wbuf *w, const wbuf_dirty *d, uint64_t new_txid, uint64_t new_checksum,
                        char *err)
{
    lv_err rc = LV_OK;
    char *tmp = NULL;
    int fd = -1;
    wstate ns;
    memset(&ns, 0, sizeof ns);
    pthread_mutex_lock(&w->mu);
    if (d->base_txid != w->base_txid || d->mark < WBUF_HEADER_SIZE ||
        d->mark > w->st.committed_end || d->page_size != w->page_size) {
        rc = lv_fail(err, LV_EINVAL,
                     "write buffer %s: mark_synced for base TXID %llu, but the buffer is at %llu",
                     w->path, (unsigned long long)d->base_txid, (unsigned long long)w->base_txid);
        goto done;
    }
    uint64_t old_txid = w->base_txid, old_sum = w->base_checksum;
    uint32_t old_commit = w->base_commit;
    /* The rest of the log (later commits and the open transaction) becomes the new window. */
    rc = write_tmp(w, new_txid, new_checksum, d->commit, d->mark, w->st.end, &fd, &tmp, err);
    if (rc)
        goto done;
    w->base_txid = new_txid;
    w->base_checksum = new_checksum;
    w->base_commit = d->commit;
    uint64_t tail = w->st.end - d->mark;
    rc = scan(w, fd, WBUF_HEADER_SIZE + tail, 1, &ns, err);
    if (rc == LV_OK && ns.end != WBUF_HEADER_SIZE + tail)
        rc = lv_fail(err, LV_ECORRUPT, "write buffer %s: rewritten log does not scan to its end",
                     w->path);
    if (rc == LV_OK && rename(tmp, w->path) != 0)
        rc = lv_fail(err, LV_EIO, "write buffer %s: rename: %s", w->path, strerror(errno));
    if (rc) {
        w->base_txid = old_txid;
        w->base_checksum = old_sum;
        w->base_commit = old_commit;
        close(fd);
        unlink(tmp);
        state_free(&ns);
        goto done;
    }
    /* Renamed: from here the new file is the buffer, whatever happens to the folder's fsync. */
    close(w->fd);
    w->fd = fd;
    state_free(&w->st);
    w->st = ns;
    rc = fsync_dir(w->path, err);
done:
    pthread_mutex_unlock(&w->mu);
    lv_free(tmp);
    return rc;
}
