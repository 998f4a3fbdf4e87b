/* arena.c - see arena.h. Blocks are big (1 MiB for a 64 MiB memtable; requests over a
 * quarter block get a block of their own) so that a memtable costs tens of allocations, not
 * millions. Blocks of MAP_MIN bytes or more are anonymous mappings of their own, not malloc:
 * glibc serves a freed 1 MiB chunk's size class from its heap afterwards (its mmap threshold
 * rises to the largest chunk freed), and a heap keeps what it frees, so every flushed
 * memtable stayed in the process's resident memory (~50 MiB of a 64 MiB write buffer). */
#include "engine/lsm/arena.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define MAP_MIN (64u << 10)

struct lsm_arena_block {
    lsm_arena_block_t *next;
    size_t size; /* of the whole block, header included; mapped when >= MAP_MIN */
    char data[];
};

static lsm_arena_block_t *block_alloc(size_t size)
{
    if (size < MAP_MIN)
        return malloc(size);
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

static void block_free(lsm_arena_block_t *b)
{
    if (b->size < MAP_MIN)
        free(b);
    else
        munmap(b, b->size);
}

void lsm_arena_init(lsm_arena_t *a, size_t block_size)
{
    a->block = block_size < 4096 ? 4096 : block_size;
    a->ptr = NULL;
    a->left = 0;
    a->blocks = NULL;
    atomic_init(&a->usage, 0);
}

static char *new_block(lsm_arena_t *a, size_t n)
{
    lsm_arena_block_t *b = block_alloc(sizeof *b + n);
    if (!b)
        return NULL;
    b->size = sizeof *b + n;
    b->next = a->blocks;
    a->blocks = b;
    atomic_fetch_add_explicit(&a->usage, sizeof *b + n, memory_order_relaxed);
    return b->data;
}

void *lsm_arena_alloc(lsm_arena_t *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n <= a->left) {
        char *p = a->ptr;
        a->ptr += n;
        a->left -= n;
        return p;
    }
    if (n > a->block / 4)
        return new_block(a, n); /* keep the current block for small entries */
    char *p = new_block(a, a->block);
    if (!p)
        return NULL;
    a->ptr = p + n;
    a->left = a->block - n;
    return p;
}

size_t lsm_arena_usage(const lsm_arena_t *a)
{
    return atomic_load_explicit(&a->usage, memory_order_relaxed);
}

void lsm_arena_free(lsm_arena_t *a)
{
    while (a->blocks) {
        lsm_arena_block_t *b = a->blocks;
        a->blocks = b->next;
        block_free(b);
    }
    a->ptr = NULL;
    a->left = 0;
}
