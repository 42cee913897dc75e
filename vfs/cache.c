/* cache: an LRU cache of page images by (pgno, txid), bounded by bytes (see cache.h). */
#include "cache.h"

#include <pthread.h>
#include <string.h>

#include "alloc.h"

#define NIL UINT32_MAX

typedef struct entry {
    uint64_t txid;
    uint32_t pgno;
    uint32_t next_in_bucket;
    uint32_t lru_prev, lru_next; /* lru_prev towards the most recently used end */
    uint8_t *page;               /* NULL until the entry is first used */
} entry;

struct cache {
    pthread_mutex_t mu;
    uint32_t page_size;
    uint32_t n_entries; /* the table's size: the most images held at once */
    uint32_t used;      /* entries handed out so far; the rest are fresh */
    entry *entries;
    uint32_t *buckets;           /* n_buckets heads, NIL when empty */
    uint32_t mask;               /* n_buckets - 1 */
    uint32_t lru_head, lru_tail; /* most and least recently used */
    cache_stats st;
};

/* What one entry costs beside its page: the entry and its share of the bucket array. */
#define ENTRY_OVERHEAD (sizeof(entry) + 2 * sizeof(uint32_t))

static uint32_t hash(uint32_t pgno, uint64_t txid)
{
    uint64_t h = ((uint64_t)pgno << 32 ^ txid) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32);
}

cache *cache_new(uint64_t capacity_bytes, uint32_t page_size)
{
    if (page_size == 0)
        return NULL;
    uint64_t n = capacity_bytes / (page_size + ENTRY_OVERHEAD);
    if (n < 4)
        n = 4;
    if (n > (1u << 30))
        n = 1u << 30;
    uint32_t nb = 1;
    while (nb < n)
        nb <<= 1;
    cache *c = lv_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->entries = lv_calloc(n, sizeof(entry));
    c->buckets = lv_malloc((size_t)nb * sizeof(uint32_t));
    if (!c->entries || !c->buckets || pthread_mutex_init(&c->mu, NULL) != 0) {
        lv_free(c->entries);
        lv_free(c->buckets);
        lv_free(c);
        return NULL;
    }
    memset(c->buckets, 0xff, (size_t)nb * sizeof(uint32_t));
    c->page_size = page_size;
    c->n_entries = (uint32_t)n;
    c->mask = nb - 1;
    c->lru_head = c->lru_tail = NIL;
    c->st.capacity_bytes = capacity_bytes;
    return c;
}

void cache_free(cache *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->used; i++)
        lv_free(c->entries[i].page);
    lv_free(c->entries);
    lv_free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    lv_free(c);
}

uint32_t cache_page_size(const cache *c)
{
    return c->page_size;
}

static void lru_unlink(cache *c, uint32_t i)
{
    entry *e = &c->entries[i];
    if (e->lru_prev != NIL)
        c->entries[e->lru_prev].lru_next = e->lru_next;
    else
        c->lru_head = e->lru_next;
    if (e->lru_next != NIL)
        c->entries[e->lru_next].lru_prev = e->lru_prev;
    else
        c->lru_tail = e->lru_prev;
}

static void lru_push_front(cache *c, uint32_t i)
{
    entry *e = &c->entries[i];
    e->lru_prev = NIL;
    e->lru_next = c->lru_head;
    if (c->lru_head != NIL)
        c->entries[c->lru_head].lru_prev = i;
    c->lru_head = i;
    if (c->lru_tail == NIL)
        c->lru_tail = i;
}

static uint32_t find(cache *c, uint32_t pgno, uint64_t txid)
{
    uint32_t i = c->buckets[hash(pgno, txid) & c->mask];
    while (i != NIL && (c->entries[i].pgno != pgno || c->entries[i].txid != txid))
        i = c->entries[i].next_in_bucket;
    return i;
}

static void bucket_remove(cache *c, uint32_t i)
{
    uint32_t *link = &c->buckets[hash(c->entries[i].pgno, c->entries[i].txid) & c->mask];
    while (*link != i)
        link = &c->entries[*link].next_in_bucket;
    *link = c->entries[i].next_in_bucket;
}

int cache_get(cache *c, uint32_t pgno, uint64_t txid, void *out)
{
    pthread_mutex_lock(&c->mu);
    uint32_t i = find(c, pgno, txid);
    if (i == NIL) {
        c->st.misses++;
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    if (c->lru_head != i) {
        lru_unlink(c, i);
        lru_push_front(c, i);
    }
    memcpy(out, c->entries[i].page, c->page_size);
    c->st.hits++;
    pthread_mutex_unlock(&c->mu);
    return 1;
}

void cache_put(cache *c, uint32_t pgno, uint64_t txid, const void *page)
{
    pthread_mutex_lock(&c->mu);
    uint32_t i = find(c, pgno, txid);
    if (i != NIL) { /* another reader stored it first: the same bytes */
        if (c->lru_head != i) {
            lru_unlink(c, i);
            lru_push_front(c, i);
        }
        goto done;
    }
    if (c->used < c->n_entries) { /* a fresh entry */
        uint8_t *p = lv_malloc(c->page_size);
        if (!p)
            goto done;
        i = c->used++;
        c->entries[i].page = p;
        c->st.entries++;
        c->st.bytes += c->page_size;
    } else { /* recycle the least recently used */
        i = c->lru_tail;
        lru_unlink(c, i);
        bucket_remove(c, i);
        c->st.evictions++;
    }
    entry *e = &c->entries[i];
    e->pgno = pgno;
    e->txid = txid;
    memcpy(e->page, page, c->page_size);
    uint32_t *head = &c->buckets[hash(pgno, txid) & c->mask];
    e->next_in_bucket = *head;
    *head = i;
    lru_push_front(c, i);
    c->st.inserts++;
done:
    pthread_mutex_unlock(&c->mu);
}

void cache_get_stats(cache *c, cache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}
