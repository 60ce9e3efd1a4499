/*
 * test_limit.c -- hnswc_options.max_elements: the element limit (hnswlib's
 * max_elements), enforced by the library.
 *
 *  - New labels past the limit fail with HNSWC_ERR_FULL and change nothing;
 *    updates and reuse of deleted slots take no room.
 *  - A batch is counted before anything is added: one that does not fit is
 *    refused whole, one that fits exactly (repeats, updates, reused slots
 *    counted right) goes in whole.
 *  - hnswc_set_max_elements moves the limit, never below the count.
 *  - Concurrent batches: updates never crowd out adds (issue 13, defect 3:
 *    with the limit counted per batch row, a thread re-adding existing
 *    labels made another thread's adds fail at 3000 of 5000).
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 8 };

static hnswc_index *limited(uint64_t max_elements)
{
    hnswc_options o = {0};
    o.dim = DIM;
    o.M = 8;
    o.ef_construction = 40;
    o.max_elements = max_elements;
    hnswc_index *ix;
    tu_ok(hnswc_create(&o, &ix));
    return ix;
}

static uint64_t live(const hnswc_index *ix)
{
    hnswc_info i;
    tu_ok(hnswc_get_info(ix, &i));
    return i.live_count;
}

static void test_single_adds(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(1);
    float *v = tu_random_vectors(&r, 20, DIM, 0.f, 1.f);
    hnswc_index *ix = limited(10);
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.max_elements, 10);
    for (uint64_t i = 0; i < 10; i++)
        tu_ok(hnswc_add(ix, i, v + i * DIM, 0));
    tu_expect_err(hnswc_add(ix, 10, v + 10 * DIM, 0), HNSWC_ERR_FULL);
    assert_int_equal(tu_count(ix), 10);
    int del;
    tu_expect_err(hnswc_is_deleted(ix, 10, &del), HNSWC_ERR_NOT_FOUND);

    /* at the limit: an update takes no room */
    tu_ok(hnswc_add(ix, 3, v + 15 * DIM, 0));
    float got[DIM];
    tu_ok(hnswc_get_vector(ix, 3, got));
    assert_memory_equal(got, v + 15 * DIM, sizeof got);
    /* nor does a new label that takes over a deleted slot */
    tu_ok(hnswc_mark_deleted(ix, 4));
    tu_expect_err(hnswc_add(ix, 11, v + 11 * DIM, 0), HNSWC_ERR_FULL); /* no reuse asked */
    tu_ok(hnswc_add(ix, 11, v + 11 * DIM, HNSWC_ADD_REPLACE_DELETED));
    assert_int_equal(tu_count(ix), 10);
    assert_int_equal(live(ix), 10);

    /* the limit moves, never below the count; 0 lifts it */
    tu_expect_err(hnswc_set_max_elements(ix, 9), HNSWC_ERR_INVALID);
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.max_elements, 10);
    tu_ok(hnswc_set_max_elements(ix, 10)); /* equal to the count: fine */
    tu_ok(hnswc_set_max_elements(ix, 12));
    tu_ok(hnswc_add(ix, 12, v + 12 * DIM, 0));
    tu_ok(hnswc_add(ix, 13, v + 13 * DIM, 0));
    tu_expect_err(hnswc_add(ix, 14, v + 14 * DIM, 0), HNSWC_ERR_FULL);
    tu_ok(hnswc_set_max_elements(ix, 0));
    tu_ok(hnswc_add(ix, 14, v + 14 * DIM, 0));
    assert_int_equal(tu_count(ix), 13);
    tu_expect_err(hnswc_set_max_elements(NULL, 5), HNSWC_ERR_NULL);
    hnswc_free(ix);
    free(v);
}

static void test_batches_are_counted_first(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(2);
    float *v = tu_random_vectors(&r, 64, DIM, 0.f, 1.f);
    uint64_t lab[64];
    hnswc_index *ix = limited(20);
    for (uint64_t i = 0; i < 64; i++)
        lab[i] = 100 + i;
    tu_ok(hnswc_add_batch(ix, v, lab, 15, 0, 2, NULL)); /* 15 of 20 */

    /* 6 new ones do not fit: nothing at all is added, on any thread count */
    for (unsigned threads = 1; threads <= 3; threads++) {
        size_t added = 99;
        tu_expect_err(hnswc_add_batch(ix, v, lab + 15, 6, 0, threads, &added), HNSWC_ERR_FULL);
        assert_int_equal(added, 0);
        assert_int_equal(tu_count(ix), 15);
    }
    /* 5 new ones with 10 updates and repeats of a new label: fits exactly */
    uint64_t mix[20];
    for (int i = 0; i < 10; i++)
        mix[i] = 100 + (uint64_t)i;       /* existing */
    for (int i = 0; i < 5; i++)
        mix[10 + i] = 200 + (uint64_t)i;  /* new */
    for (int i = 0; i < 5; i++)
        mix[15 + i] = 200;                /* a new label again */
    size_t added = 0;
    tu_ok(hnswc_add_batch(ix, v, mix, 20, 0, 2, &added));
    assert_int_equal(added, 20);
    assert_int_equal(tu_count(ix), 20);
    /* full: a batch of updates only still goes in, a new label does not */
    tu_ok(hnswc_add_batch(ix, v + 8 * DIM, lab, 15, 0, 2, NULL));
    tu_expect_err(hnswc_add_batch(ix, v, lab + 40, 1, 0, 1, NULL), HNSWC_ERR_FULL);
    /* replacing batches may count the deleted slots they take over */
    for (uint64_t i = 0; i < 4; i++)
        tu_ok(hnswc_mark_deleted(ix, 100 + i));
    tu_expect_err(hnswc_add_batch(ix, v, lab + 40, 5, HNSWC_ADD_REPLACE_DELETED, 2, NULL),
                  HNSWC_ERR_FULL);
    tu_ok(hnswc_add_batch(ix, v, lab + 40, 4, HNSWC_ADD_REPLACE_DELETED, 2, NULL));
    assert_int_equal(tu_count(ix), 20);
    assert_int_equal(live(ix), 20);
    /* an empty batch and no limit: nothing to count */
    tu_ok(hnswc_add_batch(ix, v, lab, 0, 0, 1, NULL));
    hnswc_free(ix);

    ix = limited(0);
    tu_ok(hnswc_add_batch(ix, v, lab, 64, 0, 2, NULL));
    assert_int_equal(tu_count(ix), 64);
    hnswc_free(ix);
    free(v);
}

/* ------------------------------------------------------------------------
 * Concurrency: issue 13's scenario, in C
 * ------------------------------------------------------------------------ */

enum { MAX = 5000, START = 1000, UPDATED = 500, STEP = 250 };

typedef struct shared {
    hnswc_index *ix;
    const float *v;
    atomic_int stop;
    atomic_int update_failures;
    atomic_long updates;
} shared;

static void *updater(void *arg)
{
    shared *sh = arg;
    uint64_t lab[UPDATED];
    for (uint64_t i = 0; i < UPDATED; i++)
        lab[i] = i;
    while (!atomic_load(&sh->stop)) {
        if (hnswc_add_batch(sh->ix, sh->v, lab, UPDATED, 0, 1, NULL) != HNSWC_OK)
            atomic_fetch_add(&sh->update_failures, 1);
        atomic_fetch_add(&sh->updates, 1);
    }
    return NULL;
}

static void test_updates_never_crowd_out_adds(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(3);
    size_t total = MAX + STEP;
    float *v = tu_random_vectors(&r, total, DIM, 0.f, 1.f);
    uint64_t *lab = tu_xmalloc(total * sizeof *lab);
    for (size_t i = 0; i < total; i++)
        lab[i] = i;
    hnswc_index *ix = limited(MAX);
    tu_ok(hnswc_add_batch(ix, v, lab, START, 0, 2, NULL));

    shared sh = {ix, v, 0, 0, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, updater, &sh), 0);
    /* wait until the updater is busy, so the adds overlap its batches */
    while (atomic_load(&sh.updates) < 1)
        sched_yield();
    size_t have = START, failed_at = 0;
    while (have < MAX) {
        hnswc_status st = hnswc_add_batch(ix, v + have * DIM, lab + have, STEP, 0, 1, NULL);
        if (st != HNSWC_OK) {
            failed_at = have;
            break;
        }
        have += STEP;
    }
    /* full now, even with updates in flight: one more is refused */
    hnswc_status extra = hnswc_add_batch(ix, v + MAX * DIM, lab + MAX, STEP, 0, 1, NULL);
    atomic_store(&sh.stop, 1);
    pthread_join(t, NULL);
    if (failed_at)
        fail_msg("adds refused at %zu of %d while another thread updated labels: %s", failed_at,
                 MAX, hnswc_errmsg(NULL));
    assert_int_equal(extra, HNSWC_ERR_FULL);
    assert_int_equal(atomic_load(&sh.update_failures), 0);
    assert_int_equal(tu_count(ix), MAX);
    print_message("%d adds of %d beside %ld update batches of %d\n", (MAX - START) / STEP, STEP,
                  atomic_load(&sh.updates), UPDATED);
    hnswc_free(ix);
    free(lab);
    free(v);
}

/* Many threads adding new labels at once never take the index past its
 * limit, and fill it exactly. */
typedef struct racer {
    hnswc_index *ix;
    const float *v;
    uint64_t first;
    int full;
} racer;

static void *race_adds(void *arg)
{
    racer *rc = arg;
    for (uint64_t i = 0; i < 100; i++) {
        uint64_t lab[5];
        for (int j = 0; j < 5; j++)
            lab[j] = rc->first + i * 5 + (uint64_t)j;
        hnswc_status st = i % 2 ? hnswc_add(rc->ix, lab[0], rc->v, 0)
                                : hnswc_add_batch(rc->ix, rc->v, lab, 5, 0, 1, NULL);
        if (st == HNSWC_ERR_FULL)
            rc->full++;
        else if (st != HNSWC_OK)
            rc->full = -1000000;
    }
    return NULL;
}

static void test_racing_adds_stop_at_the_limit(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(4);
    float *v = tu_random_vectors(&r, 5, DIM, 0.f, 1.f);
    hnswc_index *ix = limited(700); /* 4 threads would add 4 * 300 */
    racer rc[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        rc[i] = (racer){ix, v, (uint64_t)i * 1000000, 0};
        assert_int_equal(pthread_create(&t[i], NULL, race_adds, &rc[i]), 0);
    }
    int full = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_true(rc[i].full >= 0);
        full += rc[i].full;
    }
    assert_true(full > 0);
    uint64_t n = tu_count(ix);
    assert_true(n <= 700);
    assert_true(n > 700 - 5); /* only batches of 5 can have left a gap */
    hnswc_free(ix);
    free(v);
}

/* The limit is the HNSW kind's; SQ8 storage keeps it through a save (file
 * format 3 with its QUAN section); a flat index refuses one. */
static void test_kinds_and_storage(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(5);
    float *v = tu_random_vectors(&r, 300, DIM, 0.f, 1.f);
    uint64_t lab[300];
    for (uint64_t i = 0; i < 300; i++)
        lab[i] = i;
    hnswc_options o = {0};
    o.dim = DIM;
    o.storage = HNSWC_STORAGE_SQ8;
    o.max_elements = 300;
    hnswc_index *ix, *back;
    tu_ok(hnswc_create(&o, &ix));
    tu_ok(hnswc_add_batch(ix, v, lab, 300, 0, 2, NULL));
    void *buf;
    size_t size;
    tu_ok(hnswc_serialize(ix, &buf, &size));
    uint32_t version, sections;
    memcpy(&version, (char *)buf + 8, 4);
    memcpy(&sections, (char *)buf + 16, 4);
    assert_int_equal(version, 4);
    assert_int_equal(sections, 6);
    tu_ok(hnswc_deserialize(buf, size, &back));
    hnswc_buffer_free(buf);
    hnswc_info info;
    tu_ok(hnswc_get_info(back, &info));
    assert_int_equal(info.max_elements, 300);
    assert_int_equal(info.storage, HNSWC_STORAGE_SQ8);
    tu_expect_err(hnswc_add(back, 1000, v, 0), HNSWC_ERR_FULL);
    hnswc_free(back);
    hnswc_free(ix);

    o.storage = HNSWC_STORAGE_F32;
    o.kind = HNSWC_KIND_FLAT;
    tu_expect_err(hnswc_create(&o, &ix), HNSWC_ERR_INVALID);
    assert_null(ix);
    o.max_elements = 0;
    tu_ok(hnswc_create(&o, &ix));
    tu_expect_err(hnswc_set_max_elements(ix, 10), HNSWC_ERR_INVALID);
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.max_elements, 0);
    hnswc_free(ix);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_adds),
        cmocka_unit_test(test_batches_are_counted_first),
        cmocka_unit_test(test_updates_never_crowd_out_adds),
        cmocka_unit_test(test_racing_adds_stop_at_the_limit),
        cmocka_unit_test(test_kinds_and_storage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
