/*
 * replica_file: the file backend of a replica, a directory laid out as Litestream's file replica
 * client lays it out:
 *
 *   <dir>/ltx/0/0000000000000001-0000000000000001.ltx
 *   <dir>/ltx/0/0000000000000002-0000000000000002.ltx
 *   <dir>/ltx/1/0000000000000001-0000000000000002.ltx
 *   <dir>/ltx/9/0000000000000001-0000000000000002.ltx     levels in decimal; 9: snapshots
 *
 * Anything else in a level directory (temp files ".<name>.tmp-XXXXXX", other names, folders) is
 * ignored. Writes go through a temp file in the level directory: write, set mtime to the LTX
 * header timestamp (as Litestream's os.Chtimes), fsync, link(2) into place (fails when the name
 * exists: the conditional write) or rename(2) over it, fsync the directory. A crash leaves at
 * most a temp file behind, never a partial file under a real name.
 *
 * Threads: no shared state; temp names are unique (mkstemp), so writers may run at once, and of
 * two conditional writers of one name exactly one wins (link is atomic).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "replica_private.h"

#define FILE_CHUNK (1u << 20)

static void level_dir(const replica *r, int level, lv_buf *out)
{
    lv_buf_printf(out, "%s/ltx/%d", r->url.dir, level);
}

lv_err replica_file_list(replica *r, unsigned levels, replica_file_vec *out, char *err)
{
    lv_err rc = LV_OK;
    lv_buf path;
    lv_buf_init(&path);
    DIR *d = NULL;
    for (int level = 0; level <= REPLICA_MAX_LEVEL; level++) {
        if (!(levels & (1u << level)))
            continue;
        lv_buf_reset(&path);
        level_dir(r, level, &path);
        if ((rc = lv_buf_ok(&path, err)) != LV_OK)
            goto done;
        d = opendir(path.data);
        if (!d) {
            if (errno == ENOENT || errno == ENOTDIR)
                continue; /* an empty level */
            rc = lv_fail(err, LV_EIO, "list %s: %s", path.data, strerror(errno));
            goto done;
        }
        struct dirent *e;
        errno = 0;
        while ((e = readdir(d)) != NULL) {
            replica_file f = {0};
            if (!replica_parse_name(e->d_name, strlen(e->d_name), &f.min_txid, &f.max_txid))
                continue;
            struct stat st;
            if (fstatat(dirfd(d), e->d_name, &st, 0) != 0) {
                if (errno == ENOENT)
                    continue; /* deleted while we listed */
                rc = lv_fail(err, LV_EIO, "stat %s/%s: %s", path.data, e->d_name, strerror(errno));
                goto done;
            }
            if (!S_ISREG(st.st_mode))
                continue;
            f.level = level;
            f.size = (uint64_t)st.st_size;
            f.created_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
            if ((rc = replica_file_vec_push(out, &f, err)) != LV_OK)
                goto done;
            errno = 0;
        }
        if (errno) {
            rc = lv_fail(err, LV_EIO, "list %s: %s", path.data, strerror(errno));
            goto done;
        }
        closedir(d);
        d = NULL;
    }
done:
    if (d)
        closedir(d);
    lv_buf_free(&path);
    return rc;
}

/* Opens the file of f read-only: fd, or -1 with err set (LV_ENOTFOUND when it is missing). */
static int open_file(replica *r, const replica_file *f, lv_buf *path, lv_err *rc, char *err)
{
    lv_buf_reset(path);
    replica_file_key(r, f->level, f->min_txid, f->max_txid, path);
    if ((*rc = lv_buf_ok(path, err)) != LV_OK)
        return -1;
    int fd = open(path->data, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        *rc = lv_fail(err, errno == ENOENT ? LV_ENOTFOUND : LV_EIO, "open %s: %s", path->data,
                      strerror(errno));
    return fd;
}

static lv_err pread_all(int fd, void *buf, size_t n, uint64_t off, const char *path, char *err)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = pread(fd, p, n, (off_t)off);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return lv_fail(err, LV_EIO, "read %s at %llu: %s", path, (unsigned long long)off,
                           strerror(errno));
        }
        if (got == 0)
            return lv_fail(err, LV_EIO, "read %s at %llu: unexpected end of file", path,
                           (unsigned long long)off);
        p += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return LV_OK;
}

/*
 * Room for n more bytes at the end of b (which stays NUL-terminated once they are written and
 * len is advanced): a pointer to them, or NULL (b unchanged) when out of memory. Reading into
 * place saves a copy of every byte.
 */
static uint8_t *buf_grow(lv_buf *b, size_t n)
{
    if (b->oom || n > (size_t)-1 / 2 - b->len)
        return NULL;
    size_t need = b->len + n + 1;
    if (need > b->cap) {
        char *p = lv_realloc(b->data, need);
        if (!p)
            return NULL;
        b->data = p;
        b->cap = need;
    }
    return (uint8_t *)b->data + b->len;
}

lv_err replica_file_read_many(replica *r, replica_range *rs, size_t n, char *err)
{
    lv_err rc = LV_OK;
    lv_buf path;
    lv_buf_init(&path);
    int fd = -1;
    for (size_t i = 0; i < n; i++) {
        replica_range *rg = &rs[i];
        if ((fd = open_file(r, rg->file, &path, &rc, err)) < 0)
            goto done;
        struct stat st;
        if (fstat(fd, &st) != 0) {
            rc = lv_fail(err, LV_EIO, "stat %s: %s", path.data, strerror(errno));
            goto done;
        }
        uint64_t size = (uint64_t)st.st_size;
        rg->size = size;
        /* as S3: a range starting at or after the end is refused (416), a long one is cut */
        if (rg->off >= size && !(rg->off == 0 && size == 0)) {
            rc = lv_fail(err, LV_EINVAL, "read %s: range at %llu is beyond its %llu bytes",
                         path.data, (unsigned long long)rg->off, (unsigned long long)size);
            goto done;
        }
        uint64_t want = size - rg->off;
        if (rg->len != S3_TO_END && rg->len < want)
            want = rg->len;
        if (want > 0) {
            uint8_t *p = want == (size_t)want ? buf_grow(&rg->out, (size_t)want) : NULL;
            if (!p) {
                rc = lv_fail(err, LV_ENOMEM, "read %s: out of memory for %llu bytes", path.data,
                             (unsigned long long)want);
                goto done;
            }
            if ((rc = pread_all(fd, p, (size_t)want, rg->off, path.data, err)) != LV_OK)
                goto done;
            rg->out.len += (size_t)want;
            rg->out.data[rg->out.len] = 0;
        }
        close(fd);
        fd = -1;
    }
done:
    if (fd >= 0)
        close(fd);
    lv_buf_free(&path);
    return rc;
}

lv_err replica_file_fetch(replica *r, const replica_file *files, size_t n, replica_sink_fn sink,
                          void *ctx, char *err)
{
    lv_err rc = LV_OK;
    lv_buf path;
    lv_buf_init(&path);
    int fd = -1;
    uint8_t *buf = lv_malloc(FILE_CHUNK);
    if (!buf)
        return lv_fail(err, LV_ENOMEM, "fetch from %s: out of memory", r->describe);
    for (size_t i = 0; i < n; i++) {
        if ((fd = open_file(r, &files[i], &path, &rc, err)) < 0)
            goto done;
        for (;;) {
            ssize_t got = read(fd, buf, FILE_CHUNK);
            if (got < 0) {
                if (errno == EINTR)
                    continue;
                rc = lv_fail(err, LV_EIO, "read %s: %s", path.data, strerror(errno));
                goto done;
            }
            if (got == 0)
                break;
            if (sink(ctx, i, buf, (size_t)got, 0) != 0) {
                rc = lv_fail(err, LV_EINVAL, "fetch %s: aborted by the caller", path.data);
                goto done;
            }
        }
        close(fd);
        fd = -1;
    }
done:
    if (fd >= 0)
        close(fd);
    lv_free(buf);
    lv_buf_free(&path);
    return rc;
}

/* mkdir that accepts an existing directory. */
static lv_err mkdir_one(const char *p, char *err)
{
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        return lv_fail(err, LV_EIO, "mkdir %s: %s", p, strerror(errno));
    return LV_OK;
}

static lv_err fsync_dir(const char *p, char *err)
{
    int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return lv_fail(err, LV_EIO, "open %s: %s", p, strerror(errno));
    int ok = fsync(fd) == 0;
    int e = errno;
    close(fd);
    if (!ok)
        return lv_fail(err, LV_EIO, "fsync %s: %s", p, strerror(e));
    return LV_OK;
}

lv_err replica_file_write(replica *r, const ltx_header *h, int level, const void *data, size_t len,
                          int if_absent, char *err)
{
    lv_err rc = LV_OK;
    lv_buf dir, tmp, dst;
    lv_buf_init(&dir);
    lv_buf_init(&tmp);
    lv_buf_init(&dst);
    int fd = -1, tmp_exists = 0;
    char name[REPLICA_NAME_LEN];
    replica_name(h->min_txid, h->max_txid, name);

    /* <dir>, <dir>/ltx, <dir>/ltx/<L> */
    lv_buf_puts(&dir, r->url.dir);
    if ((rc = lv_buf_ok(&dir, err)) != LV_OK || (rc = mkdir_one(dir.data, err)) != LV_OK)
        goto done;
    lv_buf_puts(&dir, "/ltx");
    if ((rc = lv_buf_ok(&dir, err)) != LV_OK || (rc = mkdir_one(dir.data, err)) != LV_OK)
        goto done;
    lv_buf_printf(&dir, "/%d", level);
    if ((rc = lv_buf_ok(&dir, err)) != LV_OK || (rc = mkdir_one(dir.data, err)) != LV_OK)
        goto done;
    lv_buf_printf(&tmp, "%s/.%s.tmp-XXXXXX", dir.data, name);
    lv_buf_printf(&dst, "%s/%s", dir.data, name);
    if ((rc = lv_buf_ok(&tmp, err)) != LV_OK || (rc = lv_buf_ok(&dst, err)) != LV_OK)
        goto done;

    fd = mkostemp(tmp.data, O_CLOEXEC);
    if (fd < 0) {
        rc = lv_fail(err, LV_EIO, "create %s: %s", tmp.data, strerror(errno));
        goto done;
    }
    tmp_exists = 1;
    if ((rc = ltx_fd_write(&fd, data, len, err)) != LV_OK) {
        lv_wrap(err, rc, "%s: ", tmp.data);
        goto done;
    }
    /* mtime (and atime) = the header timestamp, as Litestream's file client does */
    int64_t ts = h->timestamp;
    int64_t sec = ts / 1000, ms = ts % 1000;
    if (ms < 0) {
        ms += 1000;
        sec--;
    }
    struct timespec times[2];
    times[0].tv_sec = times[1].tv_sec = (time_t)sec;
    times[0].tv_nsec = times[1].tv_nsec = (long)ms * 1000000;
    if (futimens(fd, times) != 0) {
        rc = lv_fail(err, LV_EIO, "set times of %s: %s", tmp.data, strerror(errno));
        goto done;
    }
    /* the bytes are durable before the name points at them: a crash leaves only the temp file */
    if (fsync(fd) != 0) {
        rc = lv_fail(err, LV_EIO, "fsync %s: %s", tmp.data, strerror(errno));
        goto done;
    }
    close(fd);
    fd = -1;
    if (if_absent) {
        if (link(tmp.data, dst.data) != 0) {
            if (errno == EEXIST)
                rc = lv_fail(err, LV_ECONFLICT, "%s already exists", dst.data);
            else
                rc = lv_fail(err, LV_EIO, "link %s: %s", dst.data, strerror(errno));
            goto done;
        }
        /* a crash here leaves the temp name too: junk that listings ignore */
    } else {
        if (rename(tmp.data, dst.data) != 0) {
            rc = lv_fail(err, LV_EIO, "rename to %s: %s", dst.data, strerror(errno));
            goto done;
        }
        tmp_exists = 0;
    }
    /* the name is durable once the directory is */
    rc = fsync_dir(dir.data, err);
done:
    if (fd >= 0)
        close(fd);
    if (tmp_exists)
        unlink(tmp.data);
    lv_buf_free(&dir);
    lv_buf_free(&tmp);
    lv_buf_free(&dst);
    return rc;
}

lv_err replica_file_delete(replica *r, const replica_file *files, size_t n, char *err)
{
    lv_err rc = LV_OK;
    lv_buf path;
    lv_buf_init(&path);
    for (size_t i = 0; i < n; i++) {
        lv_buf_reset(&path);
        replica_file_key(r, files[i].level, files[i].min_txid, files[i].max_txid, &path);
        if ((rc = lv_buf_ok(&path, err)) != LV_OK)
            goto done;
        if (unlink(path.data) != 0 && errno != ENOENT) {
            rc = lv_fail(err, LV_EIO, "delete %s: %s", path.data, strerror(errno));
            goto done;
        }
    }
done:
    lv_buf_free(&path);
    return rc;
}
