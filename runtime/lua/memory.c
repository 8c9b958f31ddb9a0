/* The Lua state's allocator: accounting against the state's hard limit and
 * the running bounded call's, and a cache of small blocks by size class.
 * A request's Lua allocates hundreds of small objects that the collector
 * frees in bursts; glibc keeps only a few per size in its thread cache, so
 * most of them went through its slower bins (malloc and free were 13% of
 * the daemon's time answering a Lua route). The cache is bounded and is
 * given back by jr_lua_memory_drain once the state is closed. */
#include <stdlib.h>
#include <string.h>

#include "lua/runtime.h"

#define CLASS_SHIFT 4 /* classes are 16 bytes apart */
#define CACHE_BYTES (4u << 20)

struct free_block {
    struct free_block *next;
};

/* The class of a small size: its blocks are class_size(k) bytes. */
static size_t class_of(size_t size)
{
    return (size + ((1u << CLASS_SHIFT) - 1)) >> CLASS_SHIFT;
}

static size_t class_size(size_t k)
{
    return k << CLASS_SHIFT;
}

/* Under AddressSanitizer every block goes back to malloc, so that a use
 * after free in a binding is still caught. */
#if defined(__SANITIZE_ADDRESS__)
#define SMALL_MAX 0
#else
#define SMALL_MAX JR_LUA_SMALL_MAX
#endif

static void *block_get(struct jr_lua_memory *m, size_t size)
{
    if (size > SMALL_MAX)
        return malloc(size);
    size_t k = class_of(size);
    struct free_block *b = m->cache[k];
    if (!b)
        return malloc(class_size(k));
    m->cache[k] = b->next;
    m->cached -= class_size(k);
    return b;
}

static void block_put(struct jr_lua_memory *m, void *p, size_t size)
{
    if (size > SMALL_MAX) {
        free(p);
        return;
    }
    size_t k = class_of(size);
    if (m->cached + class_size(k) > CACHE_BYTES) {
        free(p);
        return;
    }
    struct free_block *b = p;
    b->next = m->cache[k];
    m->cache[k] = b;
    m->cached += class_size(k);
}

/* Allocations fail (Lua raises "not enough memory") past the state's hard
 * limit, or past the limit of the bounded call that is running. */
void *jr_lua_allocate(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct jr_lua_memory *m = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        if (ptr)
            block_put(m, ptr, old);
        m->used -= old;
        return NULL;
    }
    if (nsize > old) {
        size_t grow = nsize - old;
        if (m->hard_limit && m->used + grow > m->hard_limit)
            return NULL;
        if (m->call_limit && m->used + grow > m->call_limit)
            return NULL;
    }
    void *p;
    if (!ptr) {
        p = block_get(m, nsize);
    } else if (old > SMALL_MAX && nsize > SMALL_MAX) {
        p = realloc(ptr, nsize);
    } else if (old <= SMALL_MAX && nsize <= SMALL_MAX &&
               class_of(old) == class_of(nsize)) {
        p = ptr;
    } else {
        /* Across the small and large sizes, or between two classes. */
        p = block_get(m, nsize);
        if (p) {
            memcpy(p, ptr, old < nsize ? old : nsize);
            block_put(m, ptr, old);
        } else if (nsize < old) {
            /* Lua may assume a shrink succeeds; a block larger than its
             * class needs is safe to keep and later to cache. */
            p = ptr;
        }
    }
    if (!p)
        return NULL;
    m->used = m->used - old + nsize;
    return p;
}

void jr_lua_memory_drain(struct jr_lua_memory *m)
{
    for (size_t k = 0; k < sizeof m->cache / sizeof m->cache[0]; k++) {
        while (m->cache[k]) {
            struct free_block *b = m->cache[k];
            m->cache[k] = b->next;
            free(b);
        }
    }
    m->cached = 0;
}
