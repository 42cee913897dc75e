/*
 * cache: the page cache of one replica in one process: decoded page images, least recently used
 * evicted first, bounded by bytes, shared by every connection that opens the replica.
 *
 * A page image is named by its page number and the TXID of the LTX file it came from (the
 * "version"): two connections at different TXIDs (one time-travelling, one following the latest)
 * share the images they have in common and never see each other's others. An image never changes
 * once made, so there is nothing to invalidate: versions nobody asks for any more age out.
 *
 * Layout: a fixed table of entries (capacity / (page size + entry overhead) of them, page buffers
 * allocated on first use, so an idle cache costs little), chained hash buckets by (pgno, txid),
 * and one doubly linked LRU list through the entries, all by 32-bit index.
 *
 * Threads: every function may be called from any thread; one mutex guards the whole cache, held
 * for a lookup and one page copy, never across I/O. Memory: lv_malloc (the VFS routes it to
 * sqlite3_malloc).
 */
#ifndef VFS_CACHE_H
#define VFS_CACHE_H

#include <stdint.h>

typedef struct cache cache;

typedef struct cache_stats {
    uint64_t hits, misses, inserts, evictions;
    uint64_t entries;        /* images held now */
    uint64_t bytes;          /* page bytes held now */
    uint64_t capacity_bytes; /* the bound */
} cache_stats;

/*
 * A cache of up to capacity_bytes of page_size pages (at least 4 pages whatever the capacity).
 * NULL when out of memory. Free with cache_free.
 */
cache *cache_new(uint64_t capacity_bytes, uint32_t page_size);
void cache_free(cache *c);

uint32_t cache_page_size(const cache *c);

/* Copies the image of (pgno, txid) into out (page_size bytes) and returns 1, or returns 0. */
int cache_get(cache *c, uint32_t pgno, uint64_t txid, void *out);

/*
 * Stores a copy of page (page_size bytes) as (pgno, txid), evicting the least recently used image
 * when full. An image already there is only marked as used. Out of memory: nothing is stored
 * (a cache may always forget).
 */
void cache_put(cache *c, uint32_t pgno, uint64_t txid, const void *page);

void cache_get_stats(cache *c, cache_stats *out);

#endif
