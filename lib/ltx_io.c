/* ltx_io: read and write callbacks over file descriptors and memory (see ltx.h, "streams"). */
#include "ltx.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "ltx_private.h"

lv_err ltx_fd_write(void *ctx, const void *buf, size_t n, char *err)
{
    int fd = *(int *)ctx;
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return lv_fail(err, LV_EIO, "write: %s", strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return LV_OK;
}

lv_err ltx_fd_read(void *ctx, void *buf, size_t n, size_t *got, char *err)
{
    int fd = *(int *)ctx;
    uint8_t *p = buf;
    size_t total = 0;
    while (total < n) {
        ssize_t r = read(fd, p + total, n - total);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return lv_fail(err, LV_EIO, "read: %s", strerror(errno));
        }
        if (r == 0)
            break;
        total += (size_t)r;
    }
    *got = total;
    return LV_OK;
}

lv_err ltx_mem_read(void *ctx, void *buf, size_t n, size_t *got, char *err)
{
    (void)err;
    ltx_mem_reader *m = ctx;
    size_t left = m->pos < m->size ? m->size - m->pos : 0;
    size_t k = n < left ? n : left;
    if (k)
        memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    *got = k;
    return LV_OK;
}

lv_err ltx_pread_full(int fd, void *buf, size_t n, uint64_t off, char *err)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return lv_fail(err, LV_EIO, "read at offset %llu: %s", (unsigned long long)off,
                           strerror(errno));
        if (r == 0)
            return lv_fail(err, LV_EIO, "read at offset %llu: unexpected end of file",
                           (unsigned long long)off);
        p += r;
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    return LV_OK;
}

lv_err ltx_pwrite_full(int fd, const void *buf, size_t n, uint64_t off, char *err)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return lv_fail(err, LV_EIO, "write at offset %llu: %s", (unsigned long long)off,
                           strerror(errno));
        p += w;
        off += (uint64_t)w;
        n -= (size_t)w;
    }
    return LV_OK;
}
