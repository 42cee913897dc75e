/* memfile: an sqlite3_file in memory (see memfile.h). */
#include "memfile.h"

#include <string.h>

#include "alloc.h"

static int mf_close(sqlite3_file *f)
{
    memfile *m = (memfile *)f;
    lv_free(m->data);
    m->data = NULL;
    m->size = m->cap = 0;
    return SQLITE_OK;
}

static int mf_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    memfile *m = (memfile *)f;
    size_t n = 0;
    if ((size_t)off < m->size)
        n = m->size - (size_t)off < (size_t)amt ? m->size - (size_t)off : (size_t)amt;
    if (n)
        memcpy(buf, m->data + off, n);
    if (n < (size_t)amt) {
        memset((unsigned char *)buf + n, 0, (size_t)amt - n);
        return SQLITE_IOERR_SHORT_READ;
    }
    return SQLITE_OK;
}

static int mf_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    memfile *m = (memfile *)f;
    size_t end = (size_t)off + (size_t)amt;
    if (end > m->cap) {
        size_t cap = m->cap ? m->cap : 8192;
        while (cap < end)
            cap *= 2;
        unsigned char *d = lv_realloc(m->data, cap);
        if (!d)
            return SQLITE_IOERR_NOMEM;
        m->data = d;
        m->cap = cap;
    }
    if ((size_t)off > m->size) /* a hole reads as zeros */
        memset(m->data + m->size, 0, (size_t)off - m->size);
    memcpy(m->data + off, buf, (size_t)amt);
    if (end > m->size)
        m->size = end;
    return SQLITE_OK;
}

static int mf_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    memfile *m = (memfile *)f;
    if ((size_t)size < m->size)
        m->size = (size_t)size;
    return SQLITE_OK;
}

static int mf_sync(sqlite3_file *f, int flags)
{
    (void)f, (void)flags;
    return SQLITE_OK;
}

static int mf_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    *size = (sqlite3_int64)((memfile *)f)->size;
    return SQLITE_OK;
}

static int mf_lock(sqlite3_file *f, int level)
{
    (void)f, (void)level;
    return SQLITE_OK;
}

static int mf_check_reserved_lock(sqlite3_file *f, int *out)
{
    (void)f;
    *out = 0;
    return SQLITE_OK;
}

static int mf_file_control(sqlite3_file *f, int op, void *arg)
{
    (void)f, (void)op, (void)arg;
    return SQLITE_NOTFOUND;
}

static int mf_sector_size(sqlite3_file *f)
{
    (void)f;
    return 4096;
}

static int mf_device_characteristics(sqlite3_file *f)
{
    (void)f;
    return SQLITE_IOCAP_ATOMIC | SQLITE_IOCAP_SAFE_APPEND | SQLITE_IOCAP_SEQUENTIAL |
           SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

static const sqlite3_io_methods mf_methods = {
    1,                         /* iVersion */
    mf_close,                  /* xClose */
    mf_read,                   /* xRead */
    mf_write,                  /* xWrite */
    mf_truncate,               /* xTruncate */
    mf_sync,                   /* xSync */
    mf_file_size,              /* xFileSize */
    mf_lock,                   /* xLock */
    mf_lock,                   /* xUnlock */
    mf_check_reserved_lock,    /* xCheckReservedLock */
    mf_file_control,           /* xFileControl */
    mf_sector_size,            /* xSectorSize */
    mf_device_characteristics, /* xDeviceCharacteristics */
    0,
    0,
    0,
    0,
    0,
    0};

void memfile_open(sqlite3_file *f)
{
    memfile *m = (memfile *)f;
    memset(m, 0, sizeof *m);
    m->base.pMethods = &mf_methods;
}
