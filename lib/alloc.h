/*
 * alloc: the one allocation wrapper of the shared library (lib/).
 *
 * Every allocation in lib/ goes through lv_malloc/lv_realloc/lv_free so that
 *   - a component can route them to its own allocator (the VFS sets sqlite3_malloc and friends,
 *     so SQLite's out-of-memory testing covers our code too), and
 *   - a test can make the Nth allocation fail and check that nothing leaks or crashes, the way
 *     SQLite and Lua test their out-of-memory paths (lv_alloc_fail_after).
 *
 * Threads: the hooks and the failure counter are process-wide; set them before any other thread
 * allocates (at start-up, or in a single-threaded test).
 */
#ifndef LV_ALLOC_H
#define LV_ALLOC_H

#include <stddef.h>

typedef struct lv_allocator {
    void *(*malloc_fn)(size_t n);
    void *(*realloc_fn)(void *p, size_t n);
    void (*free_fn)(void *p);
} lv_allocator;

/* Returns memory the caller frees with lv_free, or NULL on failure (n == 0 allocates 1 byte). */
void *lv_malloc(size_t n);
/* As lv_malloc, zero-filled; NULL if count * size overflows. */
void *lv_calloc(size_t count, size_t size);
/* As realloc; on failure p is untouched and still owned by the caller. */
void *lv_realloc(void *p, size_t n);
void lv_free(void *p);

/* Installs allocator hooks (NULL restores the C library's). */
void lv_alloc_set(const lv_allocator *a);

/*
 * Test hook: after `n` more successful allocations, every allocation fails until this is called
 * again; n < 0 turns failures off. Returns the number of allocations made since the last call.
 */
long lv_alloc_fail_after(long n);

#endif
