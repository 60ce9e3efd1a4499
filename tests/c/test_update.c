/*
 * test_update.c -- changing an index after it is built: updating the vector
 * of an existing label, tombstones (mark / unmark deleted) and reusing the
 * slots of deleted elements (HNSWC_ADD_REPLACE_DELETED).
 *
 * The truth for each check is kept in the test: a copy of the current vector
 * of every row and a deleted[] flag per row, against which brute force runs.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 16, K = 10, EF = 100 };

static const hnswc_metric METRICS[] = {HNSWC_METRIC_L2, HNSWC_METRIC_IP, HNSWC_METRIC_COSINE};

/* What hnswc_get_vector should return for v: v itself, normalised for cosine. */
static void expected_stored(hnswc_metric m, const float *v, float *out)
{
    memcpy(out, v, DIM * sizeof *out);
    if (m != HNSWC_METRIC_COSINE)
        return;
    double s = 0;
    for (int i = 0; i < DIM; i++)
        s += (double)v[i] * v[i];
    if (s > 0)
        for (int i = 0; i < DIM; i++)
            out[i] = (float)(v[i] / sqrt(s));
}

static void assert_vector_is(const hnswc_index *ix, hnswc_metric m, uint64_t label,
                             const float *v)
{
    float got[DIM], want[DIM];
    tu_ok(hnswc_get_vector(ix, label, got));
    expected_stored(m, v, want);
    for (int i = 0; i < DIM; i++)
        if (fabsf(got[i] - want[i]) > 1e-6f * fmaxf(1.f, fabsf(want[i])))
            fail_msg("label %llu component %d: got %.9g, want %.9g", (unsigned long long)label,
                     i, (double)got[i], (double)want[i]);
    if (m != HNSWC_METRIC_COSINE)
        assert_memory_equal(got, v, sizeof got); /* stored bit for bit */
}

/* Filter admitting one label (*(uint64_t *)user). */
static int only_label(uint64_t label, void *user) { return label == *(const uint64_t *)user; }

/* Recall@10 of nq random queries against brute force over the live rows. */
static double recall_vs_truth(const hnswc_index *ix, hnswc_metric m, const float *data, size_t n,
                              const unsigned char *deleted, tu_rng *r, size_t nq)
{
    size_t hits = 0, total = 0;
    float q[DIM];
    for (size_t t = 0; t < nq; t++) {
        for (int i = 0; i < DIM; i++)
            q[i] = (float)tu_uniform(r) * 2.f - 1.f;
        size_t rows[K];
        double td[K];
        size_t tf = tu_brute_knn(m, data, n, DIM, deleted, NULL, NULL, q, K, rows, td);
        uint64_t labels[K];
        float dists[K];
        size_t found;
        tu_ok(hnswc_search(ix, q, K, EF, NULL, NULL, labels, dists, &found));
        hits += tu_check_result(m, data, n, DIM, deleted, NULL, NULL, q, K, labels, dists, found,
                                tf, td);
        total += tf;
    }
    return total ? (double)hits / (double)total : 1.0;
}

/* ------------------------------------------------------------------------
 * Updates
 * ------------------------------------------------------------------------ */

/*
 * For each metric: build, then give a quarter of the labels new vectors.
 * Each updated label returns its new vector, is the nearest neighbour of it
 * at distance ~0, the count does not change, and recall against the new
 * truth stays high.
 */
static void test_update_existing(void **s)
{
    (void)s;
    for (size_t mi = 0; mi < 3; mi++) {
        hnswc_metric m = METRICS[mi];
        tu_rng r = tu_rng_make(100 + mi);
        size_t n = tu_scaled(3000, 1000);
        float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
        hnswc_index *ix = tu_create(DIM, m, 0, 0, 0, 0);
        tu_add_rows(ix, data, n, DIM, 1);

        for (size_t row = 0; row < n; row += 4) {
            float *v = data + row * DIM;
            for (int i = 0; i < DIM; i++)
                v[i] = (float)tu_uniform(&r) * 2.f - 1.f;
            tu_ok(hnswc_add(ix, tu_label_of(row), v, 0));
        }
        hnswc_info info;
        tu_ok(hnswc_get_info(ix, &info));
        assert_int_equal(info.count, n);
        assert_int_equal(info.live_count, n);

        for (size_t row = 0; row < n; row += 4) {
            const float *v = data + row * DIM;
            assert_vector_is(ix, m, tu_label_of(row), v);
            uint64_t label;
            float dist;
            size_t found;
            if (m == HNSWC_METRIC_IP) {
                /* Under inner product a vector is not its own nearest
                   neighbour; scan for it alone and check 1 - |v|^2. */
                uint64_t only = tu_label_of(row);
                tu_ok(hnswc_search_exact(ix, v, 1, only_label, &only, &label, &dist, &found));
                assert_int_equal(found, 1);
                assert_int_equal(label, only);
                assert_true(tu_dist_close(dist, tu_exact_dist(m, v, v, DIM)));
                continue;
            }
            tu_ok(hnswc_search(ix, v, 1, EF, NULL, NULL, &label, &dist, &found));
            assert_int_equal(found, 1);
            if (label != tu_label_of(row) || fabsf(dist) > 1e-5f)
                fail_msg("metric %d: searching the new vector of label %llu found %llu at %g",
                         (int)m, (unsigned long long)tu_label_of(row),
                         (unsigned long long)label, (double)dist);
        }
        double rec = recall_vs_truth(ix, m, data, n, NULL, &r, 100);
        print_message("metric %d: recall@10 after updating 1/4 of %zu labels: %.4f\n", (int)m,
                      n, rec);
        assert_true(rec >= 0.98);
        hnswc_free(ix);
        free(data);
    }
}

/* Updating the same label many times in a row keeps one element. */
static void test_update_repeatedly(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(7);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    float *v = tu_random_vectors(&r, 200, DIM, 0.f, 1.f);
    for (size_t i = 0; i < 200; i++)
        tu_ok(hnswc_add(ix, 5, v + i * DIM, 0));
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.count, 1);
    assert_int_equal(info.live_count, 1);
    assert_vector_is(ix, HNSWC_METRIC_L2, 5, v + 199 * DIM);
    uint64_t label;
    float dist;
    size_t found;
    tu_ok(hnswc_search(ix, v, 3, 0, NULL, NULL, &label, &dist, &found));
    assert_int_equal(found, 1);
    assert_int_equal(label, 5);
    hnswc_free(ix);
    free(v);
}

/* ------------------------------------------------------------------------
 * Tombstones
 * ------------------------------------------------------------------------ */

static void assert_counts(const hnswc_index *ix, uint64_t count, uint64_t live, uint64_t deleted)
{
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    if (info.count != count || info.live_count != live || info.deleted_count != deleted)
        fail_msg("counts: count %llu live %llu deleted %llu, expected %llu %llu %llu",
                 (unsigned long long)info.count, (unsigned long long)info.live_count,
                 (unsigned long long)info.deleted_count, (unsigned long long)count,
                 (unsigned long long)live, (unsigned long long)deleted);
}

static void test_tombstones(void **s)
{
    (void)s;
    for (size_t mi = 0; mi < 3; mi++) {
        hnswc_metric m = METRICS[mi];
        tu_rng r = tu_rng_make(200 + mi);
        size_t n = tu_scaled(4000, 1000);
        float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
        unsigned char *deleted = tu_xcalloc(n, 1);
        hnswc_index *ix = tu_create(DIM, m, 0, 0, 0, 0);
        tu_add_rows(ix, data, n, DIM, 1);

        /* Delete 40%, with a pattern that also hits the first rows (often the
           entry point). */
        size_t ndel = 0;
        for (size_t row = 0; row < n; row++)
            if (row % 5 < 2) {
                tu_ok(hnswc_mark_deleted(ix, tu_label_of(row)));
                deleted[row] = 1;
                ndel++;
            }
        assert_counts(ix, n, n - ndel, ndel);

        /* Deleted elements keep their vectors, report is_deleted. */
        for (size_t row = 0; row < 10; row++) {
            int d = -1;
            tu_ok(hnswc_is_deleted(ix, tu_label_of(row), &d));
            assert_int_equal(d, deleted[row]);
            assert_vector_is(ix, m, tu_label_of(row), data + row * DIM);
        }
        /* Never returned, the best live ones still found. */
        double rec = recall_vs_truth(ix, m, data, n, deleted, &r, 100);
        print_message("metric %d: recall@10 with 40%% of %zu deleted: %.4f\n", (int)m, n, rec);
        assert_true(rec >= 0.98);

        /* Searching a deleted element's own vector does not find it. */
        for (size_t row = 0; row < 50; row += 5) {
            uint64_t labels[K];
            float dists[K];
            size_t found;
            tu_ok(hnswc_search(ix, data + row * DIM, K, EF, NULL, NULL, labels, dists, &found));
            for (size_t i = 0; i < found; i++)
                assert_true(labels[i] != tu_label_of(row));
            tu_ok(hnswc_search_exact(ix, data + row * DIM, K, NULL, NULL, labels, dists, &found));
            for (size_t i = 0; i < found; i++)
                assert_true(labels[i] != tu_label_of(row));
        }

        /* Errors: double mark, unmark of a live one, unknown labels; nothing
           changes. */
        tu_expect_err(hnswc_mark_deleted(ix, tu_label_of(0)), HNSWC_ERR_DELETED);
        tu_expect_err(hnswc_unmark_deleted(ix, tu_label_of(2)), HNSWC_ERR_DELETED);
        tu_expect_err(hnswc_mark_deleted(ix, 42), HNSWC_ERR_NOT_FOUND);
        tu_expect_err(hnswc_unmark_deleted(ix, 42), HNSWC_ERR_NOT_FOUND);
        int d;
        tu_expect_err(hnswc_is_deleted(ix, 42, &d), HNSWC_ERR_NOT_FOUND);
        assert_counts(ix, n, n - ndel, ndel);

        /* Unmark half of the deleted: they come back. */
        for (size_t row = 0; row < n; row++)
            if (row % 5 == 0) {
                tu_ok(hnswc_unmark_deleted(ix, tu_label_of(row)));
                deleted[row] = 0;
                ndel--;
            }
        assert_counts(ix, n, n - ndel, ndel);
        rec = recall_vs_truth(ix, m, data, n, deleted, &r, 50);
        assert_true(rec >= 0.98);
        for (size_t row = 0; row < 50 && m != HNSWC_METRIC_IP; row += 5) {
            /* (under inner product a vector is not its own nearest) */
            uint64_t label;
            float dist;
            size_t found;
            tu_ok(hnswc_search(ix, data + row * DIM, 1, EF, NULL, NULL, &label, &dist, &found));
            assert_int_equal(label, tu_label_of(row));
        }

        /* Updating a deleted label makes it live again with the new vector. */
        float v[DIM];
        for (int i = 0; i < DIM; i++)
            v[i] = (float)tu_uniform(&r);
        tu_ok(hnswc_add(ix, tu_label_of(1), v, 0));
        memcpy(data + 1 * DIM, v, sizeof v);
        deleted[1] = 0;
        ndel--;
        assert_counts(ix, n, n - ndel, ndel);
        tu_ok(hnswc_is_deleted(ix, tu_label_of(1), &d));
        assert_int_equal(d, 0);
        assert_vector_is(ix, m, tu_label_of(1), v);

        /* Everything deleted: searches find nothing, without error. */
        for (size_t row = 0; row < n; row++)
            if (!deleted[row]) {
                tu_ok(hnswc_mark_deleted(ix, tu_label_of(row)));
                deleted[row] = 1;
            }
        assert_counts(ix, n, 0, n);
        uint64_t labels[K];
        float dists[K];
        size_t found = 99;
        tu_ok(hnswc_search(ix, data, K, EF, NULL, NULL, labels, dists, &found));
        assert_int_equal(found, 0);
        found = 99;
        tu_ok(hnswc_search_exact(ix, data, K, NULL, NULL, labels, dists, &found));
        assert_int_equal(found, 0);

        hnswc_free(ix);
        free(data);
        free(deleted);
    }
}

/* ------------------------------------------------------------------------
 * HNSWC_ADD_REPLACE_DELETED
 * ------------------------------------------------------------------------ */

static void test_replace_deleted(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(300);
    size_t n = tu_scaled(3000, 1000), nnew = n / 5;
    /* Rows [n, n + nnew) are the replacements, so the truth is one array. */
    float *data = tu_random_vectors(&r, n + nnew, DIM, 0.f, 1.f);
    unsigned char *deleted = tu_xcalloc(n + nnew, 1);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    tu_add_rows(ix, data, n, DIM, 1);

    /* Delete a quarter. */
    size_t ndel = 0;
    for (size_t row = 0; row < n; row += 4) {
        tu_ok(hnswc_mark_deleted(ix, tu_label_of(row)));
        deleted[row] = 1;
        ndel++;
    }
    assert_true(ndel >= nnew);
    /* New labels with the flag take deleted slots: the count does not grow. */
    for (size_t j = 0; j < nnew; j++)
        tu_ok(hnswc_add(ix, tu_label_of(n + j), data + (n + j) * DIM, HNSWC_ADD_REPLACE_DELETED));
    assert_counts(ix, n, n - ndel + nnew, ndel - nnew);

    /* Each new label is found at distance 0 with its vector. */
    for (size_t j = 0; j < nnew; j++) {
        const float *v = data + (n + j) * DIM;
        assert_vector_is(ix, HNSWC_METRIC_L2, tu_label_of(n + j), v);
        uint64_t label;
        float dist;
        size_t found;
        tu_ok(hnswc_search(ix, v, 1, EF, NULL, NULL, &label, &dist, &found));
        assert_int_equal(label, tu_label_of(n + j));
        assert_true(dist == 0.f);
    }
    /* Exactly nnew of the deleted labels are gone, the rest still deleted. */
    size_t gone = 0;
    for (size_t row = 0; row < n; row += 4) {
        int d;
        float v[DIM];
        hnswc_status st = hnswc_is_deleted(ix, tu_label_of(row), &d);
        if (st == HNSWC_ERR_NOT_FOUND) {
            gone++;
            tu_expect_err(hnswc_get_vector(ix, tu_label_of(row), v), HNSWC_ERR_NOT_FOUND);
            tu_expect_err(hnswc_unmark_deleted(ix, tu_label_of(row)), HNSWC_ERR_NOT_FOUND);
            deleted[row] = 2; /* replaced: no longer in the index */
        } else {
            assert_int_equal(st, HNSWC_OK);
            assert_int_equal(d, 1);
        }
    }
    assert_int_equal(gone, nnew);

    /* get_labels agrees: the old labels that went are not listed. */
    size_t cap = n + nnew, nl;
    uint64_t *labels = tu_xmalloc(cap * sizeof *labels);
    tu_ok(hnswc_get_labels(ix, labels, cap, &nl));
    assert_int_equal(nl, n);
    for (size_t i = 0; i < nl; i++) {
        size_t row = tu_row_of(labels[i], n + nnew);
        assert_true(row != SIZE_MAX);
        assert_true(deleted[row] != 2);
    }
    free(labels);

    /* Searches over all of it still return the best live elements. */
    for (size_t row = 0; row < n; row++)
        if (deleted[row] == 2)
            deleted[row] = 1;
    double rec = recall_vs_truth(ix, HNSWC_METRIC_L2, data, n + nnew, deleted, &r, 100);
    print_message("recall@10 after replacing %zu deleted slots: %.4f\n", nnew, rec);
    assert_true(rec >= 0.98);

    /* Without deleted slots left, the flag simply adds. */
    size_t left = ndel - nnew;
    float v[DIM];
    for (size_t j = 0; j < left + 3; j++) {
        for (int i = 0; i < DIM; i++)
            v[i] = (float)tu_uniform(&r);
        tu_ok(hnswc_add(ix, 900000000u + j, v, HNSWC_ADD_REPLACE_DELETED));
    }
    assert_counts(ix, n + 3, n + 3, 0);
    /* And without the flag, a new label never takes a deleted slot. */
    tu_ok(hnswc_mark_deleted(ix, 900000000u));
    tu_ok(hnswc_add(ix, 910000000u, v, 0));
    assert_counts(ix, n + 4, n + 3, 1);
    int d;
    tu_ok(hnswc_is_deleted(ix, 900000000u, &d));
    assert_int_equal(d, 1);

    hnswc_free(ix);
    free(data);
    free(deleted);
}

/*
 * Marking and unmarking one label over and over must not grow the index:
 * the list of slots kept for reuse once grew by one entry per mark.
 */
static void test_mark_unmark_cycles_bounded(void **state)
{
    (void)state;
    hnswc_index *ix = tu_create(8, HNSWC_METRIC_L2, 8, 40, 1, 0);
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(hnswc_add(ix, 7, v, 0), HNSWC_OK);
    hnswc_info before, after;
    assert_int_equal(hnswc_get_info(ix, &before), HNSWC_OK);
    for (int i = 0; i < 200000; i++) {
        assert_int_equal(hnswc_mark_deleted(ix, 7), HNSWC_OK);
        assert_int_equal(hnswc_unmark_deleted(ix, 7), HNSWC_OK);
    }
    assert_int_equal(hnswc_get_info(ix, &after), HNSWC_OK);
    assert_int_equal(after.deleted_count, 0);
    if (after.memory_bytes > before.memory_bytes + 4096)
        fail_msg("200,000 mark/unmark cycles grew the index from %llu to %llu bytes",
                 (unsigned long long)before.memory_bytes, (unsigned long long)after.memory_bytes);
    hnswc_free(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_update_existing),
        cmocka_unit_test(test_update_repeatedly),
        cmocka_unit_test(test_tombstones),
        cmocka_unit_test(test_replace_deleted),
        cmocka_unit_test(test_mark_unmark_cycles_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
