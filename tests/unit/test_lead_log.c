/* test_lead_log.c - the leader's copy of its staged entries (actors/lead_log.c): copies
 * are independent of the caller's buffers, contiguous entries of one term accumulate, a
 * gap or another term replaces the copy, and count/take/drop work on index bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "actors/lead_log.h"

/* n entries from index `first`, data "e<index>" */
static raft_entry_t *make(uint64_t term, uint64_t first, size_t n, char (*buf)[16])
{
    raft_entry_t *e = calloc(n, sizeof *e);
    for (size_t i = 0; i < n; i++) {
        e[i].term = term;
        e[i].index = first + i;
        e[i].type = RAFT_ENTRY_NORMAL;
        snprintf(buf[i], 16, "e%llu", (unsigned long long)(first + i));
        e[i].data = (uint8_t *)buf[i];
        e[i].len = strlen(buf[i]);
    }
    return e;
}

static void test_copies_and_takes_in_order(void **state)
{
    (void)state;
    lead_log_t l = {0};
    char buf[8][16];
    raft_entry_t *e = make(3, 10, 3, buf);
    assert_int_equal(lead_log_add(&l, 3, e, 3), 0);
    memset(buf, 'x', sizeof buf); /* the copy must not point into the caller's memory */
    free(e);
    e = make(3, 13, 2, buf);
    assert_int_equal(lead_log_add(&l, 3, e, 2), 0); /* continues: 10..14 */
    free(e);
    assert_int_equal(l.n, 5);
    assert_int_equal(lead_log_count(&l, 9), 0);
    assert_int_equal(lead_log_count(&l, 12), 3);
    assert_int_equal(lead_log_count(&l, 100), 5);
    raft_entry_t out[2];
    lead_log_take(&l, out, 2);
    assert_int_equal(out[0].index, 10);
    assert_int_equal(out[1].index, 11);
    assert_memory_equal(out[0].data, "e10", 3);
    assert_memory_equal(out[1].data, "e11", 3);
    free(out[0].data);
    free(out[1].data);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.ents[0].index, 12);
    assert_memory_equal(l.ents[0].data, "e12", 3);
    lead_log_drop(&l, 13);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ents[0].index, 14);
    lead_log_drop(&l, 5); /* below the copy: nothing */
    assert_int_equal(l.n, 1);
    lead_log_clear(&l);
    assert_int_equal(l.n, 0);
}

static void test_gap_or_new_term_replaces(void **state)
{
    (void)state;
    lead_log_t l = {0};
    char buf[8][16];
    raft_entry_t *e = make(3, 10, 2, buf);
    lead_log_add(&l, 3, e, 2);
    free(e);
    e = make(3, 13, 1, buf); /* gap: 12 missing */
    lead_log_add(&l, 3, e, 1);
    free(e);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ents[0].index, 13);
    e = make(4, 14, 2, buf); /* next index but a new term: another leadership */
    lead_log_add(&l, 4, e, 2);
    free(e);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.term, 4);
    assert_int_equal(l.ents[0].index, 14);
    lead_log_clear(&l);
}

static void test_empty_entries_and_growth(void **state)
{
    (void)state;
    lead_log_t l = {0};
    assert_int_equal(lead_log_add(&l, 1, NULL, 0), 0);
    assert_int_equal(l.n, 0);
    lead_log_drop(&l, 7); /* an empty copy: nothing to drop (UBSan: no NULL memmove) */
    assert_int_equal(lead_log_count(&l, 7), 0);
    raft_entry_t e = {.term = 1, .index = 1, .type = RAFT_ENTRY_NOOP}; /* no data */
    for (uint64_t i = 1; i <= 1000; i++) {
        e.index = i;
        assert_int_equal(lead_log_add(&l, 1, &e, 1), 0);
    }
    assert_int_equal(l.n, 1000);
    assert_null(l.ents[999].data);
    assert_int_equal(lead_log_count(&l, 500), 500);
    lead_log_drop(&l, 1000);
    assert_int_equal(l.n, 0);
    lead_log_clear(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copies_and_takes_in_order),
        cmocka_unit_test(test_gap_or_new_term_replaces),
        cmocka_unit_test(test_empty_entries_and_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
