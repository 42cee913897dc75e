/* hydrate: a local copy of the database built in the background (see hydrate.h). */
#include "hydrate.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "crc64.h"
#include "ltx.h"
#include "restore.h"
#include "timeexpr.h"

#define META_MAGIC      "LVHYDR02"
#define META_SIZE       48
#define PATH_CAP        (VCONF_PATH_MAX + 16) /* the path and a ".meta.tmp" suffix */
#define SCAN_BYTES      (1u << 20)            /* read at a time when checksumming the file */
#define FOLLOW_RETRY_MS 1000 /* after a store error while following: try again after this */
#define EXIT_WAIT_MS    2000 /* the exit hook waits this long for an apply to finish */

struct hydrator {
    hydrator *next; /* in the registry of live hydrators (reg_mu) */
    rdb *d;
    char path[PATH_CAP];
    char meta[PATH_CAP];
    int keep;
    int slot;        /* in sig_paths (reserved in slot_taken) */
    atomic_int owns; /* the file at path is ours (locked): only then is it ever deleted */
    int64_t start_ms;
    pthread_t thread;
    int started;

    pthread_mutex_t mu; /* guards what follows, up to rw; never held across I/O */
    pthread_cond_t wake;
    int stopping, notified;
    hydrator_info info; /* all but reads */

    pthread_rwlock_t rw; /* guards serving*, fd and in_restore against readers and stop */
    uint64_t serving;    /* the TXID readers may read; 0: none (building, moving, failed) */
    uint32_t serving_pages, serving_ps;
    int fd;         /* the file; -1: none. Only the thread writes to it */
    int in_restore; /* restore_run is writing to fd (stop may turn fd read-only to end it) */

    pthread_mutex_t apply_mu; /* held by the thread while it changes the file; guards what
                               * follows against the exit hook and stop */
    atomic_int frozen;        /* the exit hook has taken the file over: no more changes */
    pagemap *fmap;            /* the map of the file's TXID; NULL: the file is empty */
    uint64_t txid;            /* the file's TXID (0: empty) */
    uint32_t pages, ps;
    uint64_t *sums; /* page checksums of the file (0: no page), n_sums of them */
    uint32_t n_sums;
    uint64_t dbsum; /* the XOR of sums, flagged: the database checksum of the file */
    int sums_valid; /* sums and dbsum describe the file */
    int verified;   /* the file is exactly the state of txid, checked: a meta may say so */

    atomic_uint_fast64_t reads;
};

/* ---- clocks --------------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the process-wide registry, the exit hook and the signal path --------------------------- */

/* Paths the signal handler unlinks (those whose file is ours), read without locks. */
static struct {
    volatile sig_atomic_t used;
    char path[PATH_CAP];
} sig_paths[HYDRATOR_MAX_LIVE];

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static hydrator *live;                    /* guarded by reg_mu */
static int slot_taken[HYDRATOR_MAX_LIVE]; /* guarded by reg_mu */
static int hooks_done;                    /* guarded by reg_mu */
static atomic_int exiting;                /* the exit hook ran: no file is created any more */
static struct sigaction sig_default;      /* SIG_DFL, prepared beforehand for the handler */

static void write_meta_locked(hydrator *h);

static void on_signal(int sig)
{
    int saved = errno;
    for (int i = 0; i < HYDRATOR_MAX_LIVE; i++)
        if (sig_paths[i].used)
            unlink(sig_paths[i].path);
    /* the default disposition, then the signal again: delivered when this handler returns */
    sigaction(sig, &sig_default, NULL);
    raise(sig);
    errno = saved;
}

/* At exit(): keep files get their meta (when READY), the others are deleted. */
static void exit_hook(void)
{
    atomic_store(&exiting, 1);
    pthread_mutex_lock(&reg_mu);
    for (hydrator *h = live; h; h = h->next) {
        if (!atomic_load(&h->owns))
            continue;
        int kept = 0;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += EXIT_WAIT_MS / 1000;
        if (pthread_mutex_timedlock(&h->apply_mu, &until) == 0) {
            atomic_store(&h->frozen, 1);
            if (h->keep && h->verified) {
                write_meta_locked(h);
                kept = 1;
            }
            pthread_mutex_unlock(&h->apply_mu);
        }
        if (!kept) {
            unlink(h->path);
            unlink(h->meta);
        }
        sig_paths[h->slot].used = 0;
    }
    pthread_mutex_unlock(&reg_mu);
}

/* Called with reg_mu held, once. */
static void install_hooks(void)
{
    atexit(exit_hook);
    memset(&sig_default, 0, sizeof sig_default);
    sig_default.sa_handler = SIG_DFL;
    sigemptyset(&sig_default.sa_mask);
    int sigs[] = {SIGTERM, SIGINT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) != 0)
            continue;
        /* never over an application's handler (nor over SIG_IGN) */
        if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigfillset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

static lv_err registry_add(hydrator *h, char *err)
{
    lv_err rc = LV_OK;
    pthread_mutex_lock(&reg_mu);
    for (hydrator *o = live; o; o = o->next) {
        if (strcmp(o->path, h->path) == 0) {
            rc = lv_fail(err, LV_ECONFLICT, "this process hydrates to %s already", h->path);
            goto done;
        }
    }
    h->slot = -1;
    for (int i = 0; i < HYDRATOR_MAX_LIVE; i++) {
        if (!slot_taken[i]) {
            h->slot = i;
            break;
        }
    }
    if (h->slot < 0) {
        rc = lv_fail(err, LV_ECONFLICT, "%d hydration files are live already", HYDRATOR_MAX_LIVE);
        goto done;
    }
    slot_taken[h->slot] = 1;
    sig_paths[h->slot].used = 0; /* set once the file is ours (open_file) */
    memcpy(sig_paths[h->slot].path, h->path, sizeof h->path);
    h->next = live;
    live = h;
    if (!hooks_done) {
        install_hooks();
        hooks_done = 1;
    }
done:
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

static void registry_remove(hydrator *h)
{
    pthread_mutex_lock(&reg_mu);
    for (hydrator **p = &live; *p; p = &(*p)->next) {
        if (*p == h) {
            *p = h->next;
            break;
        }
    }
    sig_paths[h->slot].used = 0;
    slot_taken[h->slot] = 0;
    pthread_mutex_unlock(&reg_mu);
}

/* ---- small file helpers --------------------------------------------------------------------- */

static lv_err pwrite_full(int fd, const void *buf, size_t n, uint64_t off, const char *path,
                          char *err)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return lv_fail(err, LV_EIO, "%s: write of %zu bytes at %llu: %s", path, n,
                           (unsigned long long)off, w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return LV_OK;
}

static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- state ---------------------------------------------------------------------------------- */

static void set_state(hydrator *h, hydrator_state s)
{
    pthread_mutex_lock(&h->mu);
    h->info.state = s;
    pthread_mutex_unlock(&h->mu);
}

static int stopping(hydrator *h)
{
    pthread_mutex_lock(&h->mu);
    int s = h->stopping;
    pthread_mutex_unlock(&h->mu);
    return s || atomic_load(&h->frozen);
}

/* Sleeps up to ms or until notified (full: the whole ms, notified or not); returns nonzero when
 * stopping. */
static int nap(hydrator *h, int64_t ms, int full)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&h->mu);
    while (!h->stopping && (full || !h->notified) &&
           pthread_cond_timedwait(&h->wake, &h->mu, &until) != ETIMEDOUT)
        ;
    h->notified = 0;
    int s = h->stopping;
    pthread_mutex_unlock(&h->mu);
    return s || atomic_load(&h->frozen);
}

static void progress_cb(void *ctx, uint64_t done, uint64_t total)
{
    hydrator *h = ctx;
    pthread_mutex_lock(&h->mu);
    h->info.progress = total ? (double)done * 99.9 / (double)total : 0;
    pthread_mutex_unlock(&h->mu);
}

/* Forgets the file's state (the thread's, under apply_mu). */
static void forget_file(hydrator *h)
{
    pagemap_unref(h->fmap);
    h->fmap = NULL;
    h->txid = 0;
    h->pages = h->ps = 0;
    lv_free(h->sums);
    h->sums = NULL;
    h->n_sums = 0;
    h->dbsum = 0;
    h->sums_valid = 0;
    h->verified = 0;
}

/* Stops serving and closes the file (readers see no file from now on). */
static void close_file(hydrator *h)
{
    pthread_rwlock_wrlock(&h->rw);
    h->serving = 0;
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    pthread_rwlock_unlock(&h->rw);
    sig_paths[h->slot].used = 0;
    atomic_store(&h->owns, 0);
}

/* ---- checksums ------------------------------------------------------------------------------ */

/* Room for page checksums of pages 1..pages (new ones zero). */
static lv_err sums_reserve(hydrator *h, uint32_t pages, char *err)
{
    if (pages <= h->n_sums)
        return LV_OK;
    uint64_t *t = lv_realloc(h->sums, (size_t)pages * sizeof *t);
    if (!t)
        return lv_fail(err, LV_ENOMEM, "out of memory (checksums of %u pages)", pages);
    memset(t + h->n_sums, 0, (size_t)(pages - h->n_sums) * sizeof *t);
    h->sums = t;
    h->n_sums = pages;
    return LV_OK;
}

/* Reads the whole file (pages of ps) and fills sums and dbsum. */
static lv_err scan_file(hydrator *h, uint32_t pages, uint32_t ps, char *err)
{
    struct stat st;
    if (!ltx_page_size_valid(ps))
        return lv_fail(err, LV_EINVAL, "%s: page size %u", h->path, ps);
    if (fstat(h->fd, &st) != 0)
        return lv_fail(err, LV_EIO, "%s: stat: %s", h->path, strerror(errno));
    if ((uint64_t)st.st_size != (uint64_t)pages * ps)
        return lv_fail(err, LV_ECORRUPT, "%s: %lld bytes, not %u pages of %u", h->path,
                       (long long)st.st_size, pages, ps);
    lv_free(h->sums);
    h->sums = NULL;
    h->n_sums = 0;
    h->sums_valid = 0;
    lv_err rc = sums_reserve(h, pages, err);
    if (rc != LV_OK)
        return rc;
    uint32_t per = SCAN_BYTES / ps ? SCAN_BYTES / ps : 1;
    uint8_t *buf = lv_malloc((size_t)per * ps);
    if (!buf)
        return lv_fail(err, LV_ENOMEM, "out of memory");
    uint32_t lock = ltx_lock_pgno(ps);
    uint64_t sum = pages ? LTX_CHECKSUM_FLAG : 0;
    for (uint32_t first = 1; first <= pages;) {
        uint32_t n = pages - first + 1 < per ? pages - first + 1 : per;
        if (pread_full(h->fd, buf, (size_t)n * ps, (uint64_t)(first - 1) * ps) != 0) {
            rc = lv_fail(err, LV_EIO, "%s: read at page %u: %s", h->path, first,
                         errno ? strerror(errno) : "short");
            break;
        }
        for (uint32_t i = 0; i < n; i++) {
            uint32_t p = first + i;
            if (p == lock)
                continue;
            h->sums[p - 1] = ltx_page_checksum(p, buf + (size_t)i * ps, ps);
            sum = ltx_db_checksum_update(sum, 0, h->sums[p - 1]);
        }
        first += n;
    }
    lv_free(buf);
    if (rc == LV_OK) {
        h->dbsum = sum;
        h->sums_valid = 1;
    }
    return rc;
}

/* ---- the meta file -------------------------------------------------------------------------- */

/* Writes <path>.meta for the file's state (temp, fsync, rename, fsync of the folder). Called with
 * apply_mu held or the thread joined, the file verified. Failures are logged: no meta, no reuse. */
static void write_meta_locked(hydrator *h)
{
    uint8_t m[META_SIZE];
    memcpy(m, META_MAGIC, 8);
    put_be(m + 8, h->txid, 8);
    put_be(m + 16, h->dbsum, 8);
    put_be(m + 24, h->ps, 4);
    put_be(m + 28, h->pages, 4);
    put_be(m + 32, h->fmap ? (uint64_t)pagemap_timestamp(h->fmap) : 0, 8);
    put_be(m + 40, crc64_update(0, m, 40), 8);
    char tmp[PATH_CAP + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", h->meta);
    /* the file's bytes are on disk before a meta vouches for them; a crash before the rename
     * leaves no meta (the file is discarded next time) */
    int ok = h->fd >= 0 && fsync(h->fd) == 0;
    int fd = ok ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    ok = fd >= 0 && write(fd, m, sizeof m) == (ssize_t)sizeof m && fsync(fd) == 0;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, h->meta) == 0;
    if (ok) {
        char dir[PATH_CAP];
        snprintf(dir, sizeof dir, "%s", h->path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *(slash == dir ? slash + 1 : slash) = 0;
        int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        rdb_log(VCONF_LOG_INFO, "hydration %s: kept at TXID %016llx (%s)", h->path,
                (unsigned long long)h->txid, h->meta);
    } else {
        rdb_log(VCONF_LOG_WARN, "hydration %s: cannot write %s: %s (the file will be rebuilt)",
                h->path, h->meta, strerror(errno));
        unlink(tmp);
    }
}

/* Reads and checks <path>.meta. */
static lv_err read_meta(hydrator *h, uint64_t *txid, uint64_t *sum, uint32_t *ps, uint32_t *pages,
                        int64_t *stamp, char *err)
{
    int fd = open(h->meta, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lv_fail(err, LV_ENOTFOUND, "%s: %s", h->meta, strerror(errno));
    uint8_t m[META_SIZE + 1];
    ssize_t n = read(fd, m, sizeof m);
    close(fd);
    if (n != META_SIZE || memcmp(m, META_MAGIC, 8) != 0 ||
        get_be(m + 40, 8) != crc64_update(0, m, 40))
        return lv_fail(err, LV_ECORRUPT, "%s: not a valid hydration meta file", h->meta);
    *txid = get_be(m + 8, 8);
    *sum = get_be(m + 16, 8);
    *ps = (uint32_t)get_be(m + 24, 4);
    *pages = (uint32_t)get_be(m + 28, 4);
    *stamp = (int64_t)get_be(m + 32, 8);
    if (!*txid || !ltx_page_size_valid(*ps))
        return lv_fail(err, LV_ECORRUPT, "%s: TXID %016llx, page size %u", h->meta,
                       (unsigned long long)*txid, *ps);
    return LV_OK;
}

/* ---- building ------------------------------------------------------------------------------- */

/* Opens (creating) and locks the file; it becomes h->fd. */
static lv_err open_file(hydrator *h, char *err)
{
    if (atomic_load(&exiting))
        return lv_fail(err, LV_EINVAL, "the process is exiting");
    int fd = open(h->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) { /* its folder: made once, as Litestream does */
        char dir[PATH_CAP];
        snprintf(dir, sizeof dir, "%s", h->path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = 0;
            mkdir(dir, 0755);
            fd = open(h->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        }
    }
    if (fd < 0)
        return lv_fail(err, LV_EIO, "%s: open: %s", h->path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return lv_fail(err, LV_ECONFLICT, "%s: in use by another process (%s)", h->path,
                       strerror(e));
    }
    pthread_rwlock_wrlock(&h->rw);
    h->fd = fd;
    pthread_rwlock_unlock(&h->rw);
    /* ours from here: the exit hook and the signal path delete it (a signal in the moment
     * between the open and here leaves a file the next open discards) */
    atomic_store(&h->owns, 1);
    atomic_signal_fence(memory_order_seq_cst); /* the path is complete before it is used */
    sig_paths[h->slot].used = 1;
    return LV_OK;
}

/* The kept file, if it can be trusted (see the top); LV_OK: h describes it, sums included. */
static lv_err try_reuse(hydrator *h, char *err)
{
    uint64_t txid = 0, sum = 0;
    uint32_t ps = 0, pages = 0;
    int64_t stamp = 0;
    lv_err rc = read_meta(h, &txid, &sum, &ps, &pages, &stamp, err);
    if (rc != LV_OK)
        return rc;
    /* from here the file may change: without its meta it is never trusted again */
    unlink(h->meta);
    pthread_mutex_lock(&h->apply_mu);
    rc = scan_file(h, pages, ps, err);
    if (rc == LV_OK && h->dbsum != sum)
        rc = lv_fail(err, LV_ECHECKSUM,
                     "%s: database checksum %016llx, the meta says %016llx (the file changed)",
                     h->path, (unsigned long long)h->dbsum, (unsigned long long)sum);
    pthread_mutex_unlock(&h->apply_mu);
    if (rc != LV_OK)
        return rc;
    pagemap *m = rdb_latest(h->d);
    if (pagemap_txid(m) < txid) {
        rc = lv_fail(err, LV_ECONFLICT, "the replica is at TXID %016llx, behind the kept %016llx",
                     (unsigned long long)pagemap_txid(m), (unsigned long long)txid);
        pagemap_unref(m);
        return rc;
    }
    if (pagemap_txid(m) != txid) {
        pagemap_unref(m);
        m = NULL;
        rc = rdb_rebuild(h->d, txid, &m, err);
        if (rc != LV_OK)
            return lv_wrap(err, rc, "the replica no longer gives the kept TXID %016llx: ",
                           (unsigned long long)txid);
    }
    if (pagemap_page_size(m) != ps || pagemap_commit(m) != pages ||
        (pagemap_checksum(m) && pagemap_checksum(m) != sum)) {
        rc = lv_fail(err, LV_ECHECKSUM,
                     "TXID %016llx of the replica is %u pages of %u, checksum %016llx; the kept "
                     "file %u pages of %u, checksum %016llx (another database)",
                     (unsigned long long)txid, pagemap_commit(m), pagemap_page_size(m),
                     (unsigned long long)pagemap_checksum(m), pages, ps, (unsigned long long)sum);
        pagemap_unref(m);
        return rc;
    }
    if (!pagemap_checksum(m) && pagemap_timestamp(m) != stamp) {
        char a[LV_TIME_RFC3339_LEN], b[LV_TIME_RFC3339_LEN];
        lv_time_format(pagemap_timestamp(m), 1, a);
        lv_time_format(stamp, 1, b);
        rc = lv_fail(err, LV_ECHECKSUM,
                     "TXID %016llx of the replica (no checksum) comes from a file of %s, the kept "
                     "file from one of %s (another database, or recompacted)",
                     (unsigned long long)txid, a, b);
        pagemap_unref(m);
        return rc;
    }
    if (!pagemap_checksum(m))
        rdb_log(VCONF_LOG_INFO,
                "hydration %s: the replica carries no checksum at TXID %016llx: the kept file is "
                "trusted by its own checksum, the TXID and the timestamp of the file that gave it",
                h->path, (unsigned long long)txid);
    pthread_mutex_lock(&h->apply_mu);
    h->fmap = m;
    h->txid = txid;
    h->pages = pages;
    h->ps = ps;
    pthread_mutex_unlock(&h->apply_mu);
    return LV_OK;
}

/* Restores the newest state into the file. */
static lv_err restore(hydrator *h, char *err)
{
    pagemap *m0 = rdb_latest(h->d);
    lv_err rc = LV_OK;
    pthread_mutex_lock(&h->apply_mu);
    forget_file(h);
    pthread_mutex_unlock(&h->apply_mu);
    if (ftruncate(h->fd, 0) != 0) {
        rc = lv_fail(err, LV_EIO, "%s: truncate: %s", h->path, strerror(errno));
        goto done;
    }
    if (!pagemap_txid(m0)) /* a new database (write mode): nothing yet, catch up from empty */
        goto done;
    pthread_mutex_lock(&h->mu);
    h->info.restores++;
    pthread_mutex_unlock(&h->mu);
    replica_target t = {pagemap_txid(m0), 0};
    restore_options o = {progress_cb, h, 0};
    restore_result res = {0};
    pthread_rwlock_wrlock(&h->rw);
    h->in_restore = 1;
    int fd = h->fd;
    pthread_rwlock_unlock(&h->rw);
    rc = restore_run(rdb_replica(h->d), &t, fd, &o, &res, err);
    pthread_rwlock_wrlock(&h->rw);
    h->in_restore = 0;
    pthread_rwlock_unlock(&h->rw);
    pthread_mutex_lock(&h->mu);
    h->info.bytes_downloaded += res.bytes_downloaded;
    if (rc == LV_OK)
        h->info.bytes_written += (uint64_t)res.pages * res.page_size;
    pthread_mutex_unlock(&h->mu);
    if (rc != LV_OK) {
        lv_wrap(err, rc, "restoring TXID %016llx: ", (unsigned long long)pagemap_txid(m0));
        goto done;
    }
    if (res.max_txid != pagemap_txid(m0) || res.pages != pagemap_commit(m0) ||
        res.page_size != pagemap_page_size(m0)) {
        rc = lv_fail(err, LV_ECORRUPT,
                     "the restore gave TXID %016llx, %u pages of %u; the page map says %016llx, "
                     "%u pages of %u",
                     (unsigned long long)res.max_txid, res.pages, res.page_size,
                     (unsigned long long)pagemap_txid(m0), pagemap_commit(m0),
                     pagemap_page_size(m0));
        goto done;
    }
    pthread_mutex_lock(&h->apply_mu);
    h->fmap = m0;
    m0 = NULL;
    h->txid = res.max_txid;
    h->pages = res.pages;
    h->ps = res.page_size;
    pthread_mutex_unlock(&h->apply_mu);
done:
    pagemap_unref(m0);
    return rc;
}

/* Page pgno of *m into out; a map whose file is gone is rebuilt at its TXID (*m replaced). */
static lv_err read_page(hydrator *h, pagemap **m, uint32_t pgno, uint8_t *out, char *err)
{
    lv_err rc = rdb_read_page(h->d, *m, pgno, out, err);
    if (rc == LV_ECONFLICT) {
        pagemap *nm = NULL;
        rc = rdb_rebuild(h->d, pagemap_txid(*m), &nm, err);
        if (rc == LV_OK) {
            pagemap_unref(*m);
            *m = nm;
            rc = rdb_read_page(h->d, *m, pgno, out, err);
        }
    }
    return rc;
}

/*
 * Moves the file to the state of m (the caller's reference passes here): the pages changed
 * since the file's TXID (see hydrate.h, step 2), the new end. serving: the file is READY (readers
 * are held off while it moves). LV_EINVAL with an empty err when frozen by the exit hook.
 */
static lv_err apply(hydrator *h, pagemap *m, int serving, char *err)
{
    lv_err rc = LV_OK;
    uint8_t *buf = NULL;
    uint64_t written = 0;
    uint32_t ps = pagemap_page_size(m), newc = pagemap_commit(m);
    pthread_mutex_lock(&h->apply_mu);
    if (atomic_load(&h->frozen)) {
        pthread_mutex_unlock(&h->apply_mu);
        pagemap_unref(m);
        err[0] = 0;
        return LV_EINVAL;
    }
    if (h->ps && ps != h->ps) {
        rc = lv_fail(err, LV_ECORRUPT, "the page size changed from %u to %u", h->ps, ps);
        goto done;
    }
    h->verified = 0;
    if (serving) { /* readers at the old TXID are done once the lock is ours; new ones go remote */
        pthread_rwlock_wrlock(&h->rw);
        h->serving = 0;
        pthread_rwlock_unlock(&h->rw);
    }
    buf = lv_malloc(ps);
    if (!buf) {
        rc = lv_fail(err, LV_ENOMEM, "out of memory");
        goto done;
    }
    if (h->sums_valid && (rc = sums_reserve(h, newc, err)) != LV_OK)
        goto done;
    uint32_t lock = ltx_lock_pgno(ps);
    for (uint32_t p = 1; p <= newc; p++) {
        if (p == lock)
            continue;
        /* the newest image of p comes from a file that ends at or before the file's TXID: p has
         * not changed since (whichever file holds it now: a compaction moves pages, not bytes) */
        const pagemap_entry *b = pagemap_lookup(m, p);
        if (b && p <= h->pages && pagemap_file_txid(m, b->file) <= h->txid)
            continue;
        if (!b)
            memset(buf, 0, ps);
        else if ((rc = read_page(h, &m, p, buf, err)) != LV_OK)
            goto done;
        if ((rc = pwrite_full(h->fd, buf, ps, (uint64_t)(p - 1) * ps, h->path, err)) != LV_OK)
            goto done;
        written += ps;
        if (h->sums_valid) {
            uint64_t s = ltx_page_checksum(p, buf, ps);
            h->dbsum = ltx_db_checksum_update(h->dbsum, h->sums[p - 1], s);
            h->sums[p - 1] = s;
        }
    }
    if (h->sums_valid) /* pages beyond the new end (any an earlier attempt wrote too) */
        for (uint32_t p = newc + 1; p <= h->n_sums; p++)
            if (h->sums[p - 1]) {
                h->dbsum = ltx_db_checksum_update(h->dbsum, h->sums[p - 1], 0);
                h->sums[p - 1] = 0;
            }
    if (ftruncate(h->fd, (off_t)((uint64_t)newc * ps)) != 0) {
        rc = lv_fail(err, LV_EIO, "%s: truncate to %u pages: %s", h->path, newc, strerror(errno));
        goto done;
    }
    if (h->sums_valid && pagemap_checksum(m) && pagemap_checksum(m) != h->dbsum) {
        rc = lv_fail(err, LV_ECHECKSUM,
                     "%s at TXID %016llx: database checksum %016llx, the replica says %016llx",
                     h->path, (unsigned long long)pagemap_txid(m), (unsigned long long)h->dbsum,
                     (unsigned long long)pagemap_checksum(m));
        goto done;
    }
    pagemap_unref(h->fmap);
    h->fmap = m;
    m = NULL;
    h->txid = pagemap_txid(h->fmap);
    h->pages = newc;
    h->ps = ps;
    h->verified = h->sums_valid;
    pthread_mutex_lock(&h->mu);
    h->info.txid = h->txid;
    h->info.pages = newc;
    h->info.page_size = ps;
    pthread_mutex_unlock(&h->mu);
    if (serving && h->verified) {
        pthread_rwlock_wrlock(&h->rw);
        h->serving = h->txid;
        h->serving_pages = newc;
        h->serving_ps = ps;
        pthread_rwlock_unlock(&h->rw);
    }
done:
    pthread_mutex_unlock(&h->apply_mu);
    pthread_mutex_lock(&h->mu);
    h->info.bytes_written += written;
    pthread_mutex_unlock(&h->mu);
    pagemap_unref(m);
    lv_free(buf);
    return rc;
}

/* Until the file is at the newest TXID (and at some TXID at all). */
static lv_err catch_up(hydrator *h, char *err)
{
    for (;;) {
        if (stopping(h))
            return lv_fail(err, LV_EINVAL, "stopped");
        pagemap *m = rdb_latest(h->d);
        uint64_t t = pagemap_txid(m);
        if (t == h->txid && t) {
            pagemap_unref(m);
            return LV_OK;
        }
        if (t < h->txid) {
            pagemap_unref(m);
            return lv_fail(err, LV_ECONFLICT, "the replica went back from TXID %016llx to %016llx",
                           (unsigned long long)h->txid, (unsigned long long)t);
        }
        if (!t) { /* a new database without its first file yet */
            pagemap_unref(m);
            nap(h, HYDRATOR_FOLLOW_MS, 0);
            continue;
        }
        lv_err rc = apply(h, m, 0, err);
        if (rc != LV_OK)
            return rc;
    }
}

/* One build: the file at the newest TXID, verified, READY. */
static lv_err build(hydrator *h, char *err)
{
    pthread_mutex_lock(&h->mu);
    h->info.state = HYDRATOR_BUILDING;
    h->info.attempts++;
    h->info.progress = 0;
    pthread_mutex_unlock(&h->mu);
    lv_err rc = open_file(h, err);
    if (rc != LV_OK)
        return rc;
    int reused = 0;
    if (h->keep) {
        char why[LV_ERRLEN] = "";
        lv_err r = try_reuse(h, why);
        if (r == LV_OK) {
            reused = 1;
            rdb_log(VCONF_LOG_INFO, "hydration %s: reusing the kept file at TXID %016llx", h->path,
                    (unsigned long long)h->txid);
        } else {
            rdb_log(r == LV_ENOTFOUND ? VCONF_LOG_INFO : VCONF_LOG_WARN,
                    "hydration %s: not reusing the kept file, rebuilding: %s", h->path, why);
            unlink(h->meta);
        }
    } else {
        unlink(h->meta); /* a keep run's leftover: never trusted without keep */
    }
    pthread_mutex_lock(&h->mu);
    h->info.reused = reused;
    pthread_mutex_unlock(&h->mu);
    if (!reused && (rc = restore(h, err)) != LV_OK)
        return rc;
    if (stopping(h))
        return lv_fail(err, LV_EINVAL, "stopped");
    set_state(h, HYDRATOR_CATCHING_UP);
    if ((rc = catch_up(h, err)) != LV_OK)
        return rc;

    pthread_mutex_lock(&h->apply_mu);
    if (atomic_load(&h->frozen)) {
        pthread_mutex_unlock(&h->apply_mu);
        return lv_fail(err, LV_EINVAL, "stopped");
    }
    if (!h->sums_valid)
        rc = scan_file(h, h->pages, h->ps, err);
    else if (rc == LV_OK) { /* kept and caught up: the size still has to be right */
        struct stat st;
        if (fstat(h->fd, &st) != 0 || (uint64_t)st.st_size != (uint64_t)h->pages * h->ps)
            rc = lv_fail(err, LV_ECORRUPT, "%s: not %u pages of %u", h->path, h->pages, h->ps);
    }
    if (rc == LV_OK && pagemap_checksum(h->fmap) && pagemap_checksum(h->fmap) != h->dbsum)
        rc = lv_fail(err, LV_ECHECKSUM,
                     "%s at TXID %016llx: database checksum %016llx, the replica says %016llx",
                     h->path, (unsigned long long)h->txid, (unsigned long long)h->dbsum,
                     (unsigned long long)pagemap_checksum(h->fmap));
    if (rc == LV_OK) {
        h->verified = 1;
        pthread_rwlock_wrlock(&h->rw); /* cutover */
        h->serving = h->txid;
        h->serving_pages = h->pages;
        h->serving_ps = h->ps;
        pthread_rwlock_unlock(&h->rw);
    }
    uint64_t txid = h->txid;
    uint32_t pages = h->pages;
    pthread_mutex_unlock(&h->apply_mu);
    if (rc != LV_OK)
        return rc;
    pthread_mutex_lock(&h->mu);
    h->info.state = HYDRATOR_READY;
    h->info.progress = 100.0;
    h->info.txid = txid;
    h->info.pages = pages;
    h->info.page_size = h->ps;
    h->info.cutover_ms = mono_ms() - h->start_ms;
    h->info.error[0] = 0;
    int64_t ms = h->info.cutover_ms;
    pthread_mutex_unlock(&h->mu);
    rdb_log(VCONF_LOG_INFO, "hydration %s: ready at TXID %016llx, %u pages, after %lld ms%s",
            h->path, (unsigned long long)txid, pages, (long long)ms,
            reused ? " (kept file reused)" : "");
    return LV_OK;
}

/* After cutover: follows the newest TXID until stopped (LV_OK) or a failure that ends the file. */
static lv_err follow(hydrator *h, char *err)
{
    int64_t wait = HYDRATOR_FOLLOW_MS;
    while (!nap(h, wait, 0)) {
        wait = HYDRATOR_FOLLOW_MS;
        pagemap *m = rdb_latest(h->d);
        uint64_t t = pagemap_txid(m), from = h->txid;
        if (t == from) {
            pagemap_unref(m);
            continue;
        }
        if (t < from) {
            pagemap_unref(m);
            return lv_fail(err, LV_ECONFLICT, "the replica went back from TXID %016llx to %016llx",
                           (unsigned long long)from, (unsigned long long)t);
        }
        lv_err rc = apply(h, m, 1, err);
        if (rc == LV_OK) {
            pthread_mutex_lock(&h->mu);
            h->info.txids_applied++;
            h->info.error[0] = 0;
            pthread_mutex_unlock(&h->mu);
            rdb_log(VCONF_LOG_DEBUG, "hydration %s: at TXID %016llx", h->path,
                    (unsigned long long)t);
            continue;
        }
        if (atomic_load(&h->frozen))
            return LV_OK;
        if (rc == LV_ENET || rc == LV_ECONFLICT || rc == LV_ENOTFOUND || rc == LV_EACCESS) {
            /* the store: the file waits "moving" (reads remote) and tries again */
            rdb_log(VCONF_LOG_WARN, "hydration %s: moving to TXID %016llx: %s (trying again)",
                    h->path, (unsigned long long)t, err);
            pthread_mutex_lock(&h->mu);
            snprintf(h->info.error, sizeof h->info.error, "%s", err);
            pthread_mutex_unlock(&h->mu);
            wait = FOLLOW_RETRY_MS;
            continue;
        }
        return rc;
    }
    return LV_OK;
}

/* A failed build or file: the reason in the stats and the log, the file gone. */
static void fail(hydrator *h, lv_err rc, const char *err)
{
    pthread_mutex_lock(&h->apply_mu);
    forget_file(h);
    if (!atomic_load(&h->frozen) && atomic_load(&h->owns))
        unlink(h->path); /* while it is still locked: never another process's file */
    pthread_mutex_unlock(&h->apply_mu);
    close_file(h);
    pthread_mutex_lock(&h->mu);
    h->info.state = HYDRATOR_FAILED;
    h->info.progress = 0;
    h->info.txid = 0;
    h->info.pages = h->info.page_size = 0;
    snprintf(h->info.error, sizeof h->info.error, "%s: %s", lv_strerror(rc), err);
    unsigned attempts = h->info.attempts;
    pthread_mutex_unlock(&h->mu);
    rdb_log(VCONF_LOG_WARN, "hydration %s failed (attempt %u), reads stay remote: %s: %s", h->path,
            attempts, lv_strerror(rc), err);
}

static void *thread_main(void *arg)
{
    hydrator *h = arg;
    unsigned failures = 0;
    for (;;) {
        char err[LV_ERRLEN] = "";
        lv_err rc = build(h, err);
        if (rc == LV_OK) {
            failures = 0;
            rc = follow(h, err);
        }
        if (stopping(h))
            break;
        fail(h, rc, err);
        if (failures++ >= HYDRATOR_RETRIES || nap(h, HYDRATOR_RETRY_MS, 1))
            break;
    }
    if (atomic_load(&h->frozen)) /* the process is exiting: nobody will join this thread */
        pthread_detach(pthread_self());
    return NULL;
}

/* ---- the interface -------------------------------------------------------------------------- */

lv_err hydrator_start(rdb *d, const char *path, int keep, hydrator **out, char *err)
{
    *out = NULL;
    if (!path || !*path || strlen(path) >= VCONF_PATH_MAX)
        return lv_fail(err, LV_EINVAL, "hydration path: empty or longer than %d bytes",
                       VCONF_PATH_MAX - 1);
    hydrator *h = lv_calloc(1, sizeof *h);
    if (!h)
        return lv_fail(err, LV_ENOMEM, "out of memory");
    h->d = d;
    h->keep = keep;
    h->fd = -1;
    h->start_ms = mono_ms();
    h->info.cutover_ms = -1;
    snprintf(h->path, sizeof h->path, "%s", path);
    snprintf(h->meta, sizeof h->meta, "%s.meta", path);
    atomic_init(&h->frozen, 0);
    atomic_init(&h->owns, 0);
    atomic_init(&h->reads, 0);
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->apply_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_rwlockattr_t ra; /* a waiting writer turns readers away (they go remote) */
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&h->rw, &ra);
    pthread_rwlockattr_destroy(&ra);

    /* registered (for the exit hook and the signal path) before the file exists */
    lv_err rc = registry_add(h, err);
    if (rc != LV_OK)
        goto fail;
    if (pthread_create(&h->thread, NULL, thread_main, h) != 0) {
        registry_remove(h);
        rc = lv_fail(err, LV_ENOMEM, "cannot start the hydrator thread");
        goto fail;
    }
    h->started = 1;
    *out = h;
    return LV_OK;
fail:
    pthread_rwlock_destroy(&h->rw);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->apply_mu);
    pthread_mutex_destroy(&h->mu);
    lv_free(h);
    return rc;
}

void hydrator_stop(hydrator *h)
{
    if (!h)
        return;
    if (atomic_load(&h->frozen)) /* after the exit hook (the process is ending): its thread may
                                  * still run and will detach itself; h stays */
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = 1;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->mu);
    /* a restore in progress cannot be interrupted: its writes are made to fail instead (the fd
     * becomes a read-only one), so it ends at its next page run */
    pthread_rwlock_wrlock(&h->rw);
    if (h->in_restore && h->fd >= 0) {
        int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (ro >= 0) {
            dup2(ro, h->fd);
            close(ro);
        }
    }
    pthread_rwlock_unlock(&h->rw);
    if (h->started)
        pthread_join(h->thread, NULL);

    pthread_mutex_lock(&reg_mu); /* not while the exit hook looks at it */
    int kept = 0;
    if (!atomic_load(&h->frozen) && atomic_load(&h->owns)) {
        if (h->keep && h->verified) {
            write_meta_locked(h);
            kept = 1;
        }
        if (!kept) {
            unlink(h->path);
            unlink(h->meta);
        }
    }
    pthread_mutex_unlock(&reg_mu);
    registry_remove(h);
    close_file(h);
    forget_file(h);
    pthread_rwlock_destroy(&h->rw);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->apply_mu);
    pthread_mutex_destroy(&h->mu);
    lv_free(h);
}

void hydrator_notify(hydrator *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->notified = 1;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->mu);
}

int hydrator_read(hydrator *h, uint64_t txid, uint32_t pgno, uint8_t *out, uint32_t page_size)
{
    if (!h || !txid || !pgno)
        return 0;
    if (pthread_rwlock_tryrdlock(&h->rw) != 0)
        return 0; /* the file is moving: never wait for it */
    int ok = 0;
    if (h->serving == txid && h->serving_ps == page_size && pgno <= h->serving_pages && h->fd >= 0)
        ok = pread_full(h->fd, out, page_size, (uint64_t)(pgno - 1) * page_size) == 0;
    pthread_rwlock_unlock(&h->rw);
    if (ok)
        atomic_fetch_add(&h->reads, 1);
    return ok;
}

void hydrator_stats(hydrator *h, hydrator_info *out)
{
    memset(out, 0, sizeof *out);
    out->cutover_ms = -1;
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    *out = h->info;
    pthread_mutex_unlock(&h->mu);
    out->reads = atomic_load(&h->reads);
}

const char *hydrator_state_name(hydrator_state s)
{
    switch (s) {
    case HYDRATOR_IDLE:
        return "idle";
    case HYDRATOR_BUILDING:
        return "building";
    case HYDRATOR_CATCHING_UP:
        return "catching_up";
    case HYDRATOR_READY:
        return "ready";
    case HYDRATOR_FAILED:
        return "failed";
    }
    return "?";
}

static void json_str(lv_buf *b, const char *s)
{
    lv_buf_putc(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            lv_buf_putc(b, '\\');
            lv_buf_putc(b, (char)c);
        } else if (c < 0x20) {
            lv_buf_printf(b, "\\u%04x", c);
        } else {
            lv_buf_putc(b, (char)c);
        }
    }
    lv_buf_putc(b, '"');
}

void hydrator_stats_json(hydrator *h, lv_buf *out)
{
    if (!h) {
        lv_buf_puts(out, "{\"state\":\"off\"}");
        return;
    }
    hydrator_info s;
    hydrator_stats(h, &s);
    lv_buf_printf(out,
                  "{\"state\":\"%s\",\"progress\":%.1f,\"path\":", hydrator_state_name(s.state),
                  s.progress);
    json_str(out, h->path);
    lv_buf_printf(out,
                  ",\"txid\":\"%016llx\",\"pages\":%u,\"page_size\":%u,\"bytes_written\":%llu,"
                  "\"bytes_downloaded\":%llu,\"restores\":%llu,\"reused\":%s,"
                  "\"txids_applied\":%llu,\"reads\":%llu,\"attempts\":%u,\"cutover_ms\":%lld,"
                  "\"keep\":%s,\"error\":",
                  (unsigned long long)s.txid, s.pages, s.page_size,
                  (unsigned long long)s.bytes_written, (unsigned long long)s.bytes_downloaded,
                  (unsigned long long)s.restores, s.reused ? "true" : "false",
                  (unsigned long long)s.txids_applied, (unsigned long long)s.reads, s.attempts,
                  (long long)s.cutover_ms, h->keep ? "true" : "false");
    json_str(out, s.error);
    lv_buf_putc(out, '}');
}
