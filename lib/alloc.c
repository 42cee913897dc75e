/* alloc: the allocation wrapper of lib/ with test-time failure injection (see alloc.h). */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static lv_allocator g_alloc = {malloc, realloc, free};
/* Atomics: lib/ allocates from several threads at once (the S3 client, the VFS poller). */
static atomic_long g_fail_after = -1; /* allocations left before failing; -1: never fail */
static atomic_long g_count;           /* allocations since the last lv_alloc_fail_after */

static int should_fail(void)
{
    atomic_fetch_add_explicit(&g_count, 1, memory_order_relaxed);
    long left = atomic_load_explicit(&g_fail_after, memory_order_relaxed);
    while (left > 0) { /* take one of the allocations left, unless another thread did */
        if (atomic_compare_exchange_weak_explicit(&g_fail_after, &left, left - 1,
                                                  memory_order_relaxed, memory_order_relaxed))
            return 0;
    }
    return left == 0;
}

void *lv_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return g_alloc.malloc_fn(n ? n : 1);
}

void *lv_calloc(size_t count, size_t size)
{
    if (size && count > (size_t)-1 / size)
        return NULL;
    void *p = lv_malloc(count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *lv_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return g_alloc.realloc_fn(p, n ? n : 1);
}

void lv_free(void *p)
{
    if (p)
        g_alloc.free_fn(p);
}

void lv_alloc_set(const lv_allocator *a)
{
    if (a)
        g_alloc = *a;
    else
        g_alloc = (lv_allocator){malloc, realloc, free};
}

long lv_alloc_fail_after(long n)
{
    long c = atomic_exchange_explicit(&g_count, 0, memory_order_relaxed);
    atomic_store_explicit(&g_fail_after, n, memory_order_relaxed);
    return c;
}
