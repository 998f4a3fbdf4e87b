/* manifest.h - version edits: the records of the MANIFEST file.
 *
 * The manifest is a record log (wal.h) of edits; replaying them from the first gives the
 * set of live tables per level, the WAL that holds writes not yet in tables, the next file
 * number and the last sequence number. An edit is one record, so it applies whole or not at
 * all: the manifest is the atomic commit point of every flush, compaction and ingest.
 *
 * Encoding: a sequence of (varint tag, fields):
 *   1 log_number: varint          2 next_file: varint          3 last_seq: varint
 *   4 deleted file: varint level, varint number
 *   5 added file: varint level, varint number, varint size, lenprefixed smallest internal key,
 *                 lenprefixed largest internal key
 * Unknown tags are refused (SHOAL_ECORRUPT): a newer format must not be half-understood. */
#ifndef SHOAL_LSM_MANIFEST_H
#define SHOAL_LSM_MANIFEST_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/lsm/coding.h"

typedef struct {
    int level;
    uint64_t number, size;
    lsm_buf_t smallest, largest; /* internal keys */
} lsm_edit_file_t;

typedef struct {
    bool has_log_number, has_next_file, has_last_seq;
    uint64_t log_number, next_file, last_seq;
    struct {
        int level;
        uint64_t number;
    } *deleted;
    size_t ndeleted, cap_deleted;
    lsm_edit_file_t *added;
    size_t nadded, cap_added;
} lsm_edit_t;

void lsm_edit_init(lsm_edit_t *e);
void lsm_edit_free(lsm_edit_t *e);
int lsm_edit_delete_file(lsm_edit_t *e, int level, uint64_t number);
/* Copies the keys. */
int lsm_edit_add_file(lsm_edit_t *e, int level, uint64_t number, uint64_t size,
                      lsm_slice_t smallest, lsm_slice_t largest);
int lsm_edit_encode(const lsm_edit_t *e, lsm_buf_t *out);
/* Decodes into a freshly initialised edit; SHOAL_ECORRUPT on malformed input (then e is
 * freed). Checks levels < LSM_MAX_LEVELS and that keys are well-formed internal keys. */
int lsm_edit_decode(lsm_slice_t in, lsm_edit_t *e);

#endif
