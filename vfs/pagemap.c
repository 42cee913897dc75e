/* pagemap: page number -> LTX frame at one TXID, immutable versions (see pagemap.h). */
#include "pagemap.h"

#include <stdatomic.h>
#include <string.h>

#include "alloc.h"

struct pagemap {
    atomic_int refs;
    uint32_t page_size;
    uint32_t commit; /* pages in the database */
    uint32_t cap;    /* entries allocated */
    pagemap_entry *entries;
    uint64_t *file_txid; /* by file number */
    uint32_t n_files;    /* file_txid's length */
    uint64_t txid;
    int64_t timestamp;
    uint64_t checksum;
};

pagemap *pagemap_new(uint32_t page_size)
{
    pagemap *m = lv_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    atomic_init(&m->refs, 1);
    m->page_size = page_size;
    return m;
}

pagemap *pagemap_clone(const pagemap *src)
{
    pagemap *m = pagemap_new(src->page_size);
    if (!m)
        return NULL;
    m->commit = src->commit;
    m->txid = src->txid;
    m->timestamp = src->timestamp;
    m->checksum = src->checksum;
    if (src->commit) {
        m->entries = lv_malloc((size_t)src->commit * sizeof *m->entries);
        if (!m->entries)
            goto oom;
        memcpy(m->entries, src->entries, (size_t)src->commit * sizeof *m->entries);
        m->cap = src->commit;
    }
    if (src->n_files) {
        m->file_txid = lv_malloc((size_t)src->n_files * sizeof *m->file_txid);
        if (!m->file_txid)
            goto oom;
        memcpy(m->file_txid, src->file_txid, (size_t)src->n_files * sizeof *m->file_txid);
        m->n_files = src->n_files;
    }
    return m;
oom:
    pagemap_unref(m);
    return NULL;
}

void pagemap_ref(pagemap *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void pagemap_unref(pagemap *m)
{
    if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    lv_free(m->entries);
    lv_free(m->file_txid);
    lv_free(m);
}

lv_err pagemap_apply(pagemap *m, uint32_t file, const ltx_header *h, const ltx_page_index *idx,
                     char *err)
{
    if (h->page_size != m->page_size)
        return lv_fail(err, LV_ECORRUPT, "page size %u, the database's is %u", h->page_size,
                       m->page_size);
    if (h->min_txid > m->txid + 1 || h->max_txid <= m->txid)
        return lv_fail(err, LV_EINVAL,
                       "TXIDs %016llx-%016llx do not continue the database at %016llx",
                       (unsigned long long)h->min_txid, (unsigned long long)h->max_txid,
                       (unsigned long long)m->txid);
    for (size_t i = 0; i < idx->n; i++)
        if (idx->entries[i].pgno == 0 || idx->entries[i].pgno > h->commit)
            return lv_fail(err, LV_ECORRUPT, "page %u beyond the file's commit of %u pages",
                           idx->entries[i].pgno, h->commit);
    /* allocate first, so that a failure leaves the map as it was */
    if (h->commit > m->cap) {
        uint32_t cap = m->cap ? m->cap : 64;
        while (cap < h->commit)
            cap = cap > UINT32_MAX / 2 ? h->commit : cap * 2;
        pagemap_entry *e = lv_realloc(m->entries, (size_t)cap * sizeof *e);
        if (!e)
            return lv_fail(err, LV_ENOMEM, "page map of %u pages", cap);
        m->entries = e;
        m->cap = cap;
    }
    if (file >= m->n_files) {
        uint32_t n = file + 1 > m->n_files * 2 ? file + 1 : m->n_files * 2;
        uint64_t *t = lv_realloc(m->file_txid, (size_t)n * sizeof *t);
        if (!t)
            return lv_fail(err, LV_ENOMEM, "page map file table of %u", n);
        memset(t + m->n_files, 0, (size_t)(n - m->n_files) * sizeof *t);
        m->file_txid = t;
        m->n_files = n;
    }
    if (h->commit > m->commit) /* grown: new pages have no frame until a file gives one */
        memset(m->entries + m->commit, 0, (size_t)(h->commit - m->commit) * sizeof *m->entries);
    m->commit = h->commit; /* shrunk: pages beyond are simply out of range */
    for (size_t i = 0; i < idx->n; i++) {
        pagemap_entry *e = &m->entries[idx->entries[i].pgno - 1];
        e->offset = idx->entries[i].offset;
        e->size = idx->entries[i].size;
        e->file = file;
    }
    m->file_txid[file] = h->max_txid;
    m->txid = h->max_txid;
    m->timestamp = h->timestamp;
    return LV_OK;
}

const pagemap_entry *pagemap_lookup(const pagemap *m, uint32_t pgno)
{
    if (pgno == 0 || pgno > m->commit || m->entries[pgno - 1].size == 0)
        return NULL;
    return &m->entries[pgno - 1];
}

uint64_t pagemap_file_txid(const pagemap *m, uint32_t file)
{
    return file < m->n_files ? m->file_txid[file] : 0;
}

uint64_t pagemap_txid(const pagemap *m)
{
    return m->txid;
}

uint32_t pagemap_commit(const pagemap *m)
{
    return m->commit;
}

uint32_t pagemap_page_size(const pagemap *m)
{
    return m->page_size;
}

int64_t pagemap_timestamp(const pagemap *m)
{
    return m->timestamp;
}

void pagemap_set_checksum(pagemap *m, uint64_t checksum)
{
    m->checksum = checksum;
}

uint64_t pagemap_checksum(const pagemap *m)
{
    return m->checksum;
}
