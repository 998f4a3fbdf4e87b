/* arena.c - see arena.h. Blocks are big (2 MiB for a write buffer of 64 MiB or more, else
 * 1/64 of it; requests over a quarter block get a block of their own) so that a memtable
 * costs tens of allocations, not millions.
 *
 * Blocks of exactly LSM_ARENA_HUGE bytes are anonymous mappings aligned to 2 MiB and marked
 * MADV_HUGEPAGE, not malloc, for two measured reasons:
 * - a random insert walks ~20 skiplist nodes spread over the whole memtable, each a cache
 *   miss and, with 4 KiB pages, a TLB miss too (a nested page walk in a VM); one huge page
 *   per block covers the memtable with 32 TLB entries. perf: the insert was 47% of a
 *   compression-off fillrandom, 85% of it on the first load of a node;
 * - glibc keeps freed 1 MiB chunks in its heap (its mmap threshold rises to the largest
 *   chunk freed), so every flushed memtable stayed resident; an unmapped block is gone.
 * Plain 4 KiB mappings (tried before) paid a page fault per 4 KiB of every new memtable;
 * a huge block costs one fault per 2 MiB. Where THP is off the advice is ignored and the
 * block is ordinary pages. */
#include "engine/lsm/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

struct lsm_arena_block {
    lsm_arena_block_t *next;
    size_t size; /* of the whole block, header included; mapped when LSM_ARENA_HUGE */
    char data[];
};

/* Maps 2 MiB at a 2 MiB boundary (map twice that, unmap the ends) so one huge page can
 * back it. */
static void *map_huge(void)
{
    const size_t H = LSM_ARENA_HUGE;
    char *m = mmap(NULL, 2 * H, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    char *al = (char *)(((uintptr_t)m + H - 1) & ~(uintptr_t)(H - 1));
    if (al > m)
        munmap(m, (size_t)(al - m));
    if (al + H < m + 2 * H)
        munmap(al + H, (size_t)(m + 2 * H - (al + H)));
#ifdef MADV_HUGEPAGE
    madvise(al, H, MADV_HUGEPAGE);
#endif
    return al;
}

static lsm_arena_block_t *block_alloc(size_t size)
{
    return size == LSM_ARENA_HUGE ? map_huge() : malloc(size);
}

static void block_free(lsm_arena_block_t *b)
{
    if (b->size == LSM_ARENA_HUGE)
        munmap(b, b->size);
    else
        free(b);
}

void lsm_arena_init(lsm_arena_t *a, size_t block_size)
{
    a->block = block_size < 4096 ? 4096 : block_size;
    a->ptr = NULL;
    a->left = 0;
    a->blocks = NULL;
    atomic_init(&a->usage, 0);
}

/* n: bytes of data wanted in the block, header not included. */
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
    size_t data = a->block - sizeof(lsm_arena_block_t); /* whole blocks of a->block bytes */
    char *p = new_block(a, data);
    if (!p)
        return NULL;
    a->ptr = p + n;
    a->left = data - n;
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
