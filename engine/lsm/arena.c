/* arena.c - see arena.h. Blocks are big (1 MiB for a 64 MiB memtable; requests over a
 * quarter block get a block of their own) so that a memtable costs tens of mallocs, not
 * millions. */
#include "engine/lsm/arena.h"

#include <stdint.h>
#include <stdlib.h>

struct lsm_arena_block {
    lsm_arena_block_t *next;
    char data[];
};

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
    lsm_arena_block_t *b = malloc(sizeof *b + n);
    if (!b)
        return NULL;
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
        free(b);
    }
    a->ptr = NULL;
    a->left = 0;
}
