/*
 * pagemap: where every page of a database lives at one TXID: page number -> (LTX file, frame
 * offset, frame size). Built by laying the page indexes of a restore plan's files over each other
 * in plan order (a later file's frame wins), then kept current by laying each new file over it.
 *
 * A pagemap is immutable once published: readers hold a reference to the version they started
 * a read transaction on, and the poller builds the next version as a copy (pagemap_clone) with
 * the new files applied, then publishes it. Versions are reference-counted and freed by their
 * last holder. A dense array by page number: 16 bytes a page (4 MiB for a 1 GiB database of
 * 4 KiB pages), one lookup an index.
 *
 *   entries[pgno - 1] = { offset: u64, size: u32, file: u32 }     size 0: no frame (lock page)
 *
 * `file` numbers the files of the replica as the VFS registers them (its own table: key, level,
 * TXIDs); the pagemap keeps each file's max TXID, which names the image's version in the page
 * cache (the bytes of page P in a file whose range ends at T are P as of T, whichever file).
 *
 * Threads: a version being built belongs to one thread; a published one is read-only and may be
 * read by any number of threads; the reference count is atomic. Memory: lv_malloc.
 */
#ifndef VFS_PAGEMAP_H
#define VFS_PAGEMAP_H

#include <stdint.h>

#include "error.h"
#include "ltx.h"

typedef struct pagemap_entry {
    uint64_t offset; /* of the frame in its file */
    uint32_t size;   /* of the frame; 0: no frame for this page */
    uint32_t file;   /* the VFS's number for the file */
} pagemap_entry;

typedef struct pagemap pagemap;

/* An empty map (no pages, TXID 0) for page_size pages; NULL when out of memory. Reference 1. */
pagemap *pagemap_new(uint32_t page_size);
/* A private copy of m, reference 1, to apply new files to; NULL when out of memory. */
pagemap *pagemap_clone(const pagemap *m);
void pagemap_ref(pagemap *m);
/* Drops a reference; the last one frees the map. NULL is ignored. */
void pagemap_unref(pagemap *m);

/*
 * Lays one file's page index over a map being built: every page in idx now lives in `file`, and
 * the database now has h->commit pages (pages beyond it are dropped: a database that shrank).
 * The file must continue the map: h->min_txid <= txid + 1 (overlap is fine: compacted files
 * straddle), and h->max_txid > txid; else LV_EINVAL and the map is unchanged. The page size must
 * match (LV_ECORRUPT). Out of memory: LV_ENOMEM, the map unchanged.
 */
lv_err pagemap_apply(pagemap *m, uint32_t file, const ltx_header *h, const ltx_page_index *idx,
                     char *err);

/* The entry of pgno, or NULL beyond the database's end or for a page no file holds. */
const pagemap_entry *pagemap_lookup(const pagemap *m, uint32_t pgno);
/* The max TXID of file (as applied), the page image's version; 0 for a file never applied. */
uint64_t pagemap_file_txid(const pagemap *m, uint32_t file);

uint64_t pagemap_txid(const pagemap *m);   /* the TXID the map is at (0: empty) */
uint32_t pagemap_commit(const pagemap *m); /* pages in the database */
uint32_t pagemap_page_size(const pagemap *m);
int64_t pagemap_timestamp(const pagemap *m); /* header timestamp of the last file applied */
/* The database checksum at the map's TXID (the last file's post-apply; 0: unknown, as after a
 * NoChecksum file). Set by whoever applies the file, on a map private to it. */
void pagemap_set_checksum(pagemap *m, uint64_t checksum);
uint64_t pagemap_checksum(const pagemap *m);

#endif
