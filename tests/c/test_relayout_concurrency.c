/*
 * test_relayout_concurrency.c -- relayouts while everything else runs; must
 * be clean under ThreadSanitizer (make test-c-tsan runs it).
 *
 * Threads, all on one index (automatic relayout on):
 *   - an adder: new rows in batches, so the index crosses
 *     HNSWC_RELAYOUT_AUTO_MIN and doubles: the batch adds relay it out by
 *     themselves (checked at the end by the counter);
 *   - a relayouter: hnswc_relayout again and again;
 *   - two searchers (one by hnswc_search_batch): every result names a row
 *     that was added and not removed, with its exact distance;
 *   - a marker: marks and unmarks tombstones, looks labels up by id
 *     (hnswc_node_id, hnswc_node_info: ids move, labels never do);
 *   - a remover: removes rows one at a time, so that reclamations (which
 *     hold removed ids across their phases) run beside relayouts.
 * At the end, with nothing running: every remaining row holds its vector
 * and its tombstone state, no node is unreachable, and a final relayout
 * changes no result.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 8, K = 5 };
enum { N0 = 2000, TOTAL = 9000, BATCH = 250 };
/* rows [0, NREM) are removed by the remover; [NREM, NMARK) marked and
 * unmarked by the marker; the rest is left alone */
enum { NREM = 600, NMARK = 900 };

static hnswc_index *ix;
static float *data;
static _Atomic unsigned char removed[NREM];
static atomic_int adding = 1;

static void check_results(const float *q, const uint64_t *labels, const float *dists, size_t n,
                          const char *who) {
    for (size_t i = 0; i < n; i++) {
        size_t row = tu_row_of(labels[i], TOTAL);
        /* (a row of a batch still running may be found already) */
        if (row == SIZE_MAX) {
            tu_record("%s: label %llu is none of ours", who, (unsigned long long)labels[i]);
            return;
        }
        double want = tu_exact_dist(HNSWC_METRIC_L2, q, data + row * DIM, DIM);
        if (!tu_dist_close(dists[i], want))
            tu_record("%s: row %zu at %g, exact %g", who, row, (double)dists[i], want);
    }
}

static void *searcher(void *arg) {
    int batch = (int)(intptr_t)arg;
    tu_rng r = tu_rng_make(100 + (uint64_t)batch);
    uint64_t labels[4 * K];
    float dists[4 * K], q[4 * DIM];
    size_t found[4];
    while (atomic_load(&adding)) {
        for (int i = 0; i < 4 * DIM; i++)
            q[i] = (float)tu_uniform(&r) * 2.f - 1.f;
        if (batch) {
            TU_WCHECK(hnswc_search_batch(ix, q, 4, K, 24, NULL, NULL, 1, labels, dists, found));
            for (int j = 0; j < 4; j++)
                check_results(q + j * DIM, labels + j * K, dists + j * K, found[j], "batch");
        } else {
            TU_WCHECK(hnswc_search(ix, q, K, 24, NULL, NULL, labels, dists, found));
            check_results(q, labels, dists, found[0], "search");
        }
    }
    return NULL;
}

static void *adder(void *arg) {
    (void)arg;
    uint64_t labels[BATCH];
    for (size_t at = N0; at < TOTAL; at += BATCH) {
        for (size_t i = 0; i < BATCH; i++)
            labels[i] = tu_label_of(at + i);
        TU_WCHECK(hnswc_add_batch(ix, data + at * DIM, labels, BATCH, 0, 2, NULL));
    }
    atomic_store(&adding, 0);
    return NULL;
}

static void *relayouter(void *arg) {
    (void)arg;
    /* at most 200: each is a pass over every record, slow under TSan */
    for (int i = 0; i < 200 && atomic_load(&adding); i++)
        TU_WCHECK(hnswc_relayout(ix));
    return NULL;
}

static void *marker(void *arg) {
    (void)arg;
    tu_rng r = tu_rng_make(5);
    while (atomic_load(&adding)) {
        size_t row = NREM + (size_t)(tu_next(&r) % (NMARK - NREM));
        int del = 0;
        TU_WCHECK(hnswc_is_deleted(ix, tu_label_of(row), &del));
        TU_WCHECK(del ? hnswc_unmark_deleted(ix, tu_label_of(row))
                      : hnswc_mark_deleted(ix, tu_label_of(row)));
        uint32_t id;
        hnswc_node node;
        TU_WCHECK(hnswc_node_id(ix, tu_label_of(row), &id));
        /* the id may have moved since: any answer but a crash or a race */
        (void)hnswc_node_info(ix, id, &node);
        uint32_t links[64];
        size_t nl;
        (void)hnswc_node_links(ix, id, 0, links, 64, &nl);
    }
    return NULL;
}

static void *remover(void *arg) {
    (void)arg;
    for (size_t row = 0; row < NREM && atomic_load(&adding); row++) {
        TU_WCHECK(hnswc_remove(ix, tu_label_of(row)));
        atomic_store(&removed[row], 1);
    }
    return NULL;
}

static void test_relayout_concurrent(void **s) {
    (void)s;
    tu_rng r = tu_rng_make(3);
    data = tu_random_vectors(&r, TOTAL, DIM, -1.f, 1.f);
    hnswc_options o = {0};
    o.dim = DIM;
    o.M = 6;
    o.ef_construction = 32;
    o.storage = HNSWC_STORAGE_SQ8;
    tu_ok(hnswc_create(&o, &ix));
    tu_add_rows(ix, data, N0, DIM, 2); /* below the automatic minimum */

    pthread_t t[6];
    void *(*fns[6])(void *) = {adder, relayouter, searcher, searcher, marker, remover};
    for (int i = 0; i < 6; i++)
        assert_int_equal(pthread_create(&t[i], NULL, fns[i], (void *)(intptr_t)(i == 3)), 0);
    for (int i = 0; i < 6; i++)
        pthread_join(t[i], NULL);
    tu_assert_no_failures();

    hnswc_info in;
    tu_ok(hnswc_get_info(ix, &in));
    print_message("relayouts: %llu (explicit and automatic), rows removed: %zu\n",
                  (unsigned long long)in.relayouts, (size_t)in.removed_total);
    assert_true(in.relayouts >= 2);
    size_t n_removed = 0;
    for (size_t row = 0; row < TOTAL; row++) {
        float v[DIM];
        hnswc_status st = hnswc_get_vector(ix, tu_label_of(row), v);
        if (row < NREM && atomic_load(&removed[row])) {
            assert_int_equal(st, HNSWC_ERR_NOT_FOUND);
            n_removed++;
            continue;
        }
        tu_ok(st);
        assert_memory_equal(v, data + row * DIM, sizeof v);
        uint32_t id;
        hnswc_node node;
        tu_ok(hnswc_node_id(ix, tu_label_of(row), &id));
        tu_ok(hnswc_node_info(ix, id, &node));
        assert_int_equal(node.label, tu_label_of(row));
    }
    assert_int_equal(in.count, TOTAL - n_removed);
    /* removals still pending are reclaimed (a walk steps around them) */
    size_t compacted;
    tu_ok(hnswc_compact(ix, 1, &compacted));
    hnswc_graph_stats g;
    tu_ok(hnswc_get_graph_stats(ix, &g));
    assert_int_equal(g.unreachable, 0);

    /* with nothing running, a relayout changes no result */
    enum { NQ = 50 };
    float *q = tu_random_vectors(&r, NQ, DIM, -1.f, 1.f);
    uint64_t la[NQ * K], lb[NQ * K];
    float da[NQ * K], db[NQ * K];
    size_t fa[NQ], fb[NQ];
    tu_ok(hnswc_search_batch(ix, q, NQ, K, 32, NULL, NULL, 1, la, da, fa));
    tu_ok(hnswc_relayout(ix));
    tu_ok(hnswc_search_batch(ix, q, NQ, K, 32, NULL, NULL, 1, lb, db, fb));
    assert_memory_equal(fa, fb, sizeof fa);
    assert_memory_equal(la, lb, sizeof la);
    assert_memory_equal(da, db, sizeof da);
    free(q);
    hnswc_free(ix);
    free(data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relayout_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
