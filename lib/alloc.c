/* alloc: the allocation wrapper of lib/ with test-time failure injection (see alloc.h). */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

static lv_allocator g_alloc = {malloc, realloc, free};
static long g_fail_after = -1; /* allocations left before failing; -1: never fail */
static long g_count;           /* allocations since the last lv_alloc_fail_after */

static int should_fail(void)
{
    g_count++;
    if (g_fail_after < 0)
        return 0;
    if (g_fail_after == 0)
        return 1;
    g_fail_after--;
    return 0;
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
    long c = g_count;
    g_count = 0;
    g_fail_after = n;
    return c;
}
