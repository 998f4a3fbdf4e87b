/* manifest.c - encoding and decoding of version edits (manifest.h). */
#include "engine/lsm/manifest.h"

#include <stdlib.h>

#include "engine/error.h"
#include "engine/lsm/dbformat.h"
#include "engine/lsm/lsm.h"

enum { TAG_LOG = 1, TAG_NEXT_FILE = 2, TAG_LAST_SEQ = 3, TAG_DELETED = 4, TAG_ADDED = 5 };

void lsm_edit_init(lsm_edit_t *e)
{
    memset(e, 0, sizeof *e);
}

void lsm_edit_free(lsm_edit_t *e)
{
    for (size_t i = 0; i < e->nadded; i++) {
        lsm_buf_free(&e->added[i].smallest);
        lsm_buf_free(&e->added[i].largest);
    }
    free(e->added);
    free(e->deleted);
    lsm_edit_init(e);
}

int lsm_edit_delete_file(lsm_edit_t *e, int level, uint64_t number)
{
    if (e->ndeleted == e->cap_deleted) {
        size_t cap = e->cap_deleted ? e->cap_deleted * 2 : 8;
        void *v = realloc(e->deleted, cap * sizeof *e->deleted);
        if (!v)
            return SHOAL_ENOMEM;
        e->deleted = v;
        e->cap_deleted = cap;
    }
    e->deleted[e->ndeleted].level = level;
    e->deleted[e->ndeleted].number = number;
    e->ndeleted++;
    return 0;
}

int lsm_edit_add_file(lsm_edit_t *e, int level, uint64_t number, uint64_t size,
                      lsm_slice_t smallest, lsm_slice_t largest)
{
    if (e->nadded == e->cap_added) {
        size_t cap = e->cap_added ? e->cap_added * 2 : 8;
        void *v = realloc(e->added, cap * sizeof *e->added);
        if (!v)
            return SHOAL_ENOMEM;
        e->added = v;
        e->cap_added = cap;
    }
    lsm_edit_file_t *f = &e->added[e->nadded];
    memset(f, 0, sizeof *f);
    f->level = level;
    f->number = number;
    f->size = size;
    e->nadded++;
    if (lsm_buf_append(&f->smallest, smallest.data, smallest.len) ||
        lsm_buf_append(&f->largest, largest.data, largest.len))
        return SHOAL_ENOMEM;
    return 0;
}

int lsm_edit_encode(const lsm_edit_t *e, lsm_buf_t *out)
{
    int rc = 0;
    if (e->has_log_number && !rc)
        rc = lsm_buf_append_varint(out, TAG_LOG) || lsm_buf_append_varint(out, e->log_number);
    if (e->has_next_file && !rc)
        rc = lsm_buf_append_varint(out, TAG_NEXT_FILE) ||
             lsm_buf_append_varint(out, e->next_file);
    if (e->has_last_seq && !rc)
        rc = lsm_buf_append_varint(out, TAG_LAST_SEQ) || lsm_buf_append_varint(out, e->last_seq);
    for (size_t i = 0; i < e->ndeleted && !rc; i++)
        rc = lsm_buf_append_varint(out, TAG_DELETED) ||
             lsm_buf_append_varint(out, (uint64_t)e->deleted[i].level) ||
             lsm_buf_append_varint(out, e->deleted[i].number);
    for (size_t i = 0; i < e->nadded && !rc; i++) {
        const lsm_edit_file_t *f = &e->added[i];
        rc = lsm_buf_append_varint(out, TAG_ADDED) ||
             lsm_buf_append_varint(out, (uint64_t)f->level) ||
             lsm_buf_append_varint(out, f->number) || lsm_buf_append_varint(out, f->size) ||
             lsm_buf_append_lenprefixed(out, f->smallest.data, f->smallest.len) ||
             lsm_buf_append_lenprefixed(out, f->largest.data, f->largest.len);
    }
    return rc ? SHOAL_ENOMEM : 0;
}

static const char *get_level(const char *p, const char *end, int *level)
{
    uint64_t v;
    p = lsm_get_varint64(p, end, &v);
    if (!p || v >= LSM_MAX_LEVELS)
        return NULL;
    *level = (int)v;
    return p;
}

static const char *decode_added(const char *p, const char *end, lsm_edit_t *e, int *rc)
{
    int level;
    uint64_t number, size;
    lsm_slice_t smallest, largest;
    if (!(p = get_level(p, end, &level)) || !(p = lsm_get_varint64(p, end, &number)) ||
        !(p = lsm_get_varint64(p, end, &size)) ||
        !(p = lsm_get_lenprefixed(p, end, &smallest)) ||
        !(p = lsm_get_lenprefixed(p, end, &largest)) || !lsm_ikey_valid(smallest) ||
        !lsm_ikey_valid(largest) || lsm_ikey_cmp(smallest, largest) > 0)
        return NULL;
    *rc = lsm_edit_add_file(e, level, number, size, smallest, largest);
    return p;
}

int lsm_edit_decode(lsm_slice_t in, lsm_edit_t *e)
{
    int rc = 0;
    lsm_edit_init(e);
    if (in.len == 0)
        return 0; /* an empty edit is valid (and may come with a NULL pointer) */
    const char *p = in.data, *end = in.data + in.len;
    while (p && p < end && rc == 0) {
        uint64_t tag, number;
        int level;
        if (!(p = lsm_get_varint64(p, end, &tag)))
            break;
        switch (tag) {
        case TAG_LOG:
            p = lsm_get_varint64(p, end, &e->log_number);
            e->has_log_number = true;
            break;
        case TAG_NEXT_FILE:
            p = lsm_get_varint64(p, end, &e->next_file);
            e->has_next_file = true;
            break;
        case TAG_LAST_SEQ:
            p = lsm_get_varint64(p, end, &e->last_seq);
            e->has_last_seq = true;
            if (p && e->last_seq > LSM_MAX_SEQ)
                p = NULL;
            break;
        case TAG_DELETED:
            if ((p = get_level(p, end, &level)) && (p = lsm_get_varint64(p, end, &number)))
                rc = lsm_edit_delete_file(e, level, number);
            break;
        case TAG_ADDED: p = decode_added(p, end, e, &rc); break;
        default: p = NULL;
        }
    }
    if (!p || rc) {
        lsm_edit_free(e);
        return rc ? rc : SHOAL_ECORRUPT;
    }
    return 0;
}
