/*
 * test_remove.c -- true removal (hnswc_remove, hnswc_remove_batch) and
 * compaction (hnswc_compact): removed elements are never returned, recall
 * against brute force over what is left stays as high as a fresh build's,
 * no node is left unreachable, slots are reclaimed and reused, files
 * written afterwards hold only what is left and load back to the same
 * answers, and bad input changes nothing.
 *
 * The truth is kept in the test: the vector of every row and a gone[] flag
 * per row (removed, or marked deleted), against which brute force runs.
 * tu_check_result fails the test if a search returns a gone row.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 16, K = 10, EF = 64 };

static const hnswc_metric METRICS[] = {HNSWC_METRIC_L2, HNSWC_METRIC_IP, HNSWC_METRIC_COSINE};

/* Recall@K of nq random queries against brute force over rows not gone.
 * Fails on any returned gone row, wrong distance or order. */
static double recall_of(const hnswc_index *ix, hnswc_metric m, const float *data, size_t n,
                        const unsigned char *gone, uint64_t seed, size_t nq, size_t ef)
{
    tu_rng r = tu_rng_make(seed);
    size_t hits = 0, total = 0;
    float q[DIM];
    for (size_t t = 0; t < nq; t++) {
        for (int i = 0; i < DIM; i++)
            q[i] = (float)tu_uniform(&r) * 2.f - 1.f;
        size_t rows[K];
        double td[K];
        size_t tf = tu_brute_knn(m, data, n, DIM, gone, NULL, NULL, q, K, rows, td);
        uint64_t labels[K];
        float dists[K];
        size_t found;
        tu_ok(hnswc_search(ix, q, K, ef, NULL, NULL, labels, dists, &found));
        hits += tu_check_result(m, data, n, DIM, gone, NULL, NULL, q, K, labels, dists, found, tf,
                                td);
        total += tf;
    }
    return total ? (double)hits / (double)total : 1.0;
}

/* A fresh index of the rows not gone (same labels as the original). */
static hnswc_index *fresh_build(hnswc_metric m, const float *data, size_t n,
                                const unsigned char *gone)
{
    hnswc_index *ix = tu_create(DIM, m, 0, 0, 0, 0);
    for (size_t row = 0; row < n; row++)
        if (!gone[row])
            tu_ok(hnswc_add(ix, tu_label_of(row), data + row * DIM, 0));
    return ix;
}

static hnswc_info info_of(const hnswc_index *ix)
{
    hnswc_info i;
    tu_ok(hnswc_get_info(ix, &i));
    return i;
}

static uint64_t unreachable_of(const hnswc_index *ix)
{
    hnswc_graph_stats s;
    tu_ok(hnswc_get_graph_stats(ix, &s));
    return s.unreachable;
}

/* The element of `row` is gone: every lookup says so. */
static void assert_gone(hnswc_index *ix, size_t row)
{
    float v[DIM];
    int del;
    tu_expect_err(hnswc_get_vector(ix, tu_label_of(row), v), HNSWC_ERR_NOT_FOUND);
    tu_expect_err(hnswc_is_deleted(ix, tu_label_of(row), &del), HNSWC_ERR_NOT_FOUND);
    tu_expect_err(hnswc_remove(ix, tu_label_of(row)), HNSWC_ERR_NOT_FOUND);
    tu_expect_err(hnswc_mark_deleted(ix, tu_label_of(row)), HNSWC_ERR_NOT_FOUND);
}

/* Removes a random `frac` of the rows (gone[] updated), in one batch or one
 * at a time. */
static size_t remove_random(hnswc_index *ix, size_t n, unsigned char *gone, double frac,
                            uint64_t seed, int batch, unsigned threads)
{
    tu_rng r = tu_rng_make(seed);
    uint64_t *labels = tu_xmalloc(n * sizeof *labels);
    size_t k = 0;
    for (size_t row = 0; row < n; row++)
        if (!gone[row] && tu_uniform(&r) < frac) {
            gone[row] = 1;
            labels[k++] = tu_label_of(row);
        }
    if (batch)
        tu_ok(hnswc_remove_batch(ix, labels, k, threads));
    else
        for (size_t i = 0; i < k; i++)
            tu_ok(hnswc_remove(ix, labels[i]));
    free(labels);
    return k;
}

/* ------------------------------------------------------------------------
 * Removal: recall, reachability, lookups
 * ------------------------------------------------------------------------ */

/*
 * Every metric, one at a time and in a batch: remove half of the elements.
 * Removed labels are gone for every call; the rest keep recall within 0.02
 * of a fresh build of the same rows (and at least 0.9), and no element is
 * unreachable from the entry point.
 */
static void test_remove_half_recall(void **s)
{
    (void)s;
    for (size_t mi = 0; mi < 3; mi++) {
        for (int batch = 0; batch < 2; batch++) {
            hnswc_metric m = METRICS[mi];
            tu_rng r = tu_rng_make(10 + mi);
            size_t n = tu_scaled(3000, 1200);
            float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
            unsigned char *gone = tu_xcalloc(n, 1);
            hnswc_index *ix = tu_create(DIM, m, 0, 0, 0, 0);
            tu_add_rows(ix, data, n, DIM, 2);

            size_t k = remove_random(ix, n, gone, 0.5, 20 + mi, batch, 2);
            hnswc_info in = info_of(ix);
            assert_int_equal(in.count, n - k);
            assert_int_equal(in.live_count, n - k);
            assert_int_equal(in.removed_total, k);
            for (size_t row = 0; row < n; row += 7)
                if (gone[row])
                    assert_gone(ix, row);

            hnswc_index *fresh = fresh_build(m, data, n, gone);
            double rr = recall_of(ix, m, data, n, gone, 30 + mi, 200, EF);
            double rf = recall_of(fresh, m, data, n, gone, 30 + mi, 200, EF);
            if (rr < 0.9 || rr < rf - 0.02)
                fail_msg("metric %d, %s: recall after removing half %.4f, fresh build %.4f", (int)m,
                         batch ? "batch" : "one by one", rr, rf);
            uint64_t ur = unreachable_of(ix), uf = unreachable_of(fresh);
            if (ur > uf)
                fail_msg("metric %d, %s: %llu unreachable after removal, %llu in a fresh build",
                         (int)m, batch ? "batch" : "one by one", (unsigned long long)ur,
                         (unsigned long long)uf);
            hnswc_free(fresh);
            hnswc_free(ix);
            free(gone);
            free(data);
        }
    }
}

/*
 * Clustered removal: every element in one region of space (x0 > 0.5, about a
 * quarter) goes at once, so whole neighbourhoods vanish and repairs must read
 * through removed nodes. Queries from everywhere, the region included, still
 * find the true neighbours among what is left.
 */
static void test_remove_cluster(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(41);
    size_t n = tu_scaled(3000, 1200);
    float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
    unsigned char *gone = tu_xcalloc(n, 1);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    tu_add_rows(ix, data, n, DIM, 2);
    uint64_t *labels = tu_xmalloc(n * sizeof *labels);
    size_t k = 0;
    for (size_t row = 0; row < n; row++)
        if (data[row * DIM] > 0.5f) {
            gone[row] = 1;
            labels[k++] = tu_label_of(row);
        }
    tu_ok(hnswc_remove_batch(ix, labels, k, 2));
    hnswc_index *fresh = fresh_build(HNSWC_METRIC_L2, data, n, gone);
    double rr = recall_of(ix, HNSWC_METRIC_L2, data, n, gone, 42, 300, EF);
    double rf = recall_of(fresh, HNSWC_METRIC_L2, data, n, gone, 42, 300, EF);
    if (rr < 0.9 || rr < rf - 0.02)
        fail_msg("recall after removing a cluster %.4f, fresh build %.4f", rr, rf);
    assert_true(unreachable_of(ix) <= unreachable_of(fresh));
    hnswc_free(fresh);
    hnswc_free(ix);
    free(labels);
    free(gone);
    free(data);
}

/*
 * Everything goes, one at a time, in insertion order (the first element is
 * the first entry point, and every removal of the entry point moves it):
 * after each step a search with ef above the count is exact. At the end the
 * index is empty, searches find nothing, and it works again from scratch.
 */
static void test_remove_everything(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(51);
    size_t n = 300;
    float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
    unsigned char *gone = tu_xcalloc(n, 1);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 4, 40, 0, 0);
    tu_add_rows(ix, data, n, DIM, 1);
    for (size_t row = 0; row < n; row++) {
        tu_ok(hnswc_remove(ix, tu_label_of(row)));
        gone[row] = 1;
        if (row % 37 == 0) {
            double rec = recall_of(ix, HNSWC_METRIC_L2, data, n, gone, 52 + row, 5, n);
            if (rec < 1.0)
                fail_msg("after removing %zu of %zu: recall %.3f at ef >= count", row + 1, n, rec);
        }
    }
    hnswc_info in = info_of(ix);
    assert_int_equal(in.count, 0);
    assert_int_equal(in.max_level, -1);
    uint64_t label;
    size_t found = 7;
    tu_ok(hnswc_search(ix, data, 1, 0, NULL, NULL, &label, NULL, &found));
    assert_int_equal(found, 0);
    tu_ok(hnswc_compact(ix, 1, NULL));
    assert_int_equal(info_of(ix).removed_slots, n);

    /* the index works again: all slots are reused */
    memset(gone, 0, n);
    tu_add_rows(ix, data, n, DIM, 1);
    in = info_of(ix);
    assert_int_equal(in.count, n);
    assert_int_equal(in.removed_slots, 0);
    assert_int_equal(in.reused_total, n);
    double rec = recall_of(ix, HNSWC_METRIC_L2, data, n, gone, 60, 50, EF);
    assert_true(rec > 0.95);
    free(gone);
    free(data);
    hnswc_free(ix);
}

/* ------------------------------------------------------------------------
 * Slots: reclaimed in groups, reused by adds
 * ------------------------------------------------------------------------ */

/*
 * A few single removals wait to be reclaimed (pending); hnswc_compact frees
 * them; adds take the freed slots: the index does not grow (slots, capacity)
 * and the new elements are found. A batch above the threshold (256) is
 * reclaimed by itself.
 */
static void test_slot_reuse(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(61);
    size_t n = 2000, extra = 400;
    float *data = tu_random_vectors(&r, n + extra, DIM, -1.f, 1.f);
    unsigned char *gone = tu_xcalloc(n + extra, 1);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, n);
    tu_add_rows(ix, data, n, DIM, 1);
    hnswc_info before = info_of(ix);

    for (size_t row = 0; row < 10; row++) {
        tu_ok(hnswc_remove(ix, tu_label_of(row)));
        gone[row] = 1;
    }
    hnswc_info in = info_of(ix);
    assert_int_equal(in.count, n - 10);
    assert_int_equal(in.removed_slots, 10);
    assert_int_equal(in.pending_slots, 10); /* below the threshold: not reclaimed yet */
    size_t removed = 7;
    tu_ok(hnswc_compact(ix, 1, &removed));
    assert_int_equal(removed, 0); /* no tombstones */
    in = info_of(ix);
    assert_int_equal(in.removed_slots, 10);
    assert_int_equal(in.pending_slots, 0);

    /* 300 more in one batch: reclaimed at once */
    uint64_t *labels = tu_xmalloc(300 * sizeof *labels);
    for (size_t i = 0; i < 300; i++) {
        labels[i] = tu_label_of(100 + i);
        gone[100 + i] = 1;
    }
    tu_ok(hnswc_remove_batch(ix, labels, 300, 2));
    in = info_of(ix);
    assert_int_equal(in.removed_slots, 310);
    assert_int_equal(in.pending_slots, 0);

    /* 310 new elements take the 310 free slots */
    for (size_t row = n; row < n + 310; row++)
        tu_ok(hnswc_add(ix, tu_label_of(row), data + row * DIM, 0));
    in = info_of(ix);
    assert_int_equal(in.count, n);
    assert_int_equal(in.removed_slots, 0);
    assert_int_equal(in.reused_total, 310);
    assert_int_equal(in.capacity, before.capacity);
    /* memory: the same records, plus the lists that track removal */
    if (in.memory_bytes > before.memory_bytes + 16384)
        fail_msg("memory grew from %llu to %llu bytes across removal and reuse",
                 (unsigned long long)before.memory_bytes, (unsigned long long)in.memory_bytes);
    for (size_t row = n; row < n + 310; row++) {
        float v[DIM];
        tu_ok(hnswc_get_vector(ix, tu_label_of(row), v));
        assert_memory_equal(v, data + row * DIM, sizeof v);
    }
    /* the rows never added (n + 310 ..) count as gone for the truth */
    for (size_t row = n + 310; row < n + extra; row++)
        gone[row] = 1;
    double rec = recall_of(ix, HNSWC_METRIC_L2, data, n + extra, gone, 62, 200, EF);
    assert_true(rec > 0.95);
    assert_int_equal(unreachable_of(ix), 0);
    free(labels);
    free(gone);
    free(data);
    hnswc_free(ix);
}

/* A removed label can be added again, with another vector, into any slot. */
static void test_readd_removed_label(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(71);
    size_t n = 500;
    float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    tu_add_rows(ix, data, n, DIM, 1);
    float v[DIM], got[DIM];
    for (int i = 0; i < DIM; i++)
        v[i] = 5.f + (float)i; /* far from everything */
    uint64_t label = tu_label_of(17);
    for (int round = 0; round < 3; round++) {
        tu_ok(hnswc_remove(ix, label));
        tu_expect_err(hnswc_get_vector(ix, label, got), HNSWC_ERR_NOT_FOUND);
        if (round == 1)
            tu_ok(hnswc_compact(ix, 1, NULL)); /* once into a reused slot */
        tu_ok(hnswc_add(ix, label, v, 0));
        tu_ok(hnswc_get_vector(ix, label, got));
        assert_memory_equal(got, v, sizeof v);
        uint64_t l;
        float d;
        size_t found;
        tu_ok(hnswc_search(ix, v, 1, 0, NULL, NULL, &l, &d, &found));
        assert_int_equal(found, 1);
        assert_int_equal(l, label);
        assert_true(d == 0.f);
    }
    assert_int_equal(info_of(ix).count, n);
    free(data);
    hnswc_free(ix);
}

/* ------------------------------------------------------------------------
 * Tombstones and compaction
 * ------------------------------------------------------------------------ */

/* A tombstone can be removed; it then stops counting as deleted. */
static void test_remove_tombstone(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(81);
    size_t n = 400;
    float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    tu_add_rows(ix, data, n, DIM, 1);
    tu_ok(hnswc_mark_deleted(ix, tu_label_of(5)));
    tu_ok(hnswc_mark_deleted(ix, tu_label_of(6)));
    assert_int_equal(info_of(ix).deleted_count, 2);
    tu_ok(hnswc_remove(ix, tu_label_of(5)));
    hnswc_info in = info_of(ix);
    assert_int_equal(in.deleted_count, 1);
    assert_int_equal(in.count, n - 1);
    assert_int_equal(in.live_count, n - 2);
    tu_expect_err(hnswc_unmark_deleted(ix, tu_label_of(5)), HNSWC_ERR_NOT_FOUND);
    /* the remaining tombstone's slot is still reusable by replace_deleted */
    float v[DIM] = {0};
    tu_ok(hnswc_add(ix, 424242, v, HNSWC_ADD_REPLACE_DELETED));
    in = info_of(ix);
    assert_int_equal(in.deleted_count, 0);
    assert_int_equal(in.count, n - 1);
    free(data);
    hnswc_free(ix);
}

/*
 * Mark 30% deleted, compact: they are removed in one pass, the index holds
 * no tombstones, recall over what is left matches a fresh build, and the
 * serialized index is smaller by the removed records.
 */
static void test_compact(void **s)
{
    (void)s;
    for (size_t mi = 0; mi < 3; mi += 2) {
        hnswc_metric m = METRICS[mi];
        tu_rng r = tu_rng_make(91 + mi);
        size_t n = tu_scaled(3000, 1200);
        float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
        unsigned char *gone = tu_xcalloc(n, 1);
        hnswc_index *ix = tu_create(DIM, m, 0, 0, 0, 0);
        tu_add_rows(ix, data, n, DIM, 2);
        size_t marked = 0;
        for (size_t row = 0; row < n; row++)
            if (tu_uniform(&r) < 0.3) {
                tu_ok(hnswc_mark_deleted(ix, tu_label_of(row)));
                gone[row] = 1;
                marked++;
            }
        /* one unmarked again: it must stay */
        for (size_t row = 0; row < n; row++)
            if (gone[row]) {
                tu_ok(hnswc_unmark_deleted(ix, tu_label_of(row)));
                gone[row] = 0;
                marked--;
                break;
            }
        void *b1;
        size_t size1;
        tu_ok(hnswc_serialize(ix, &b1, &size1));
        hnswc_buffer_free(b1);

        size_t removed = 0;
        tu_ok(hnswc_compact(ix, 2, &removed));
        assert_int_equal(removed, marked);
        hnswc_info in = info_of(ix);
        assert_int_equal(in.deleted_count, 0);
        assert_int_equal(in.count, n - marked);
        assert_int_equal(in.pending_slots, 0);
        assert_int_equal(in.removed_slots, marked);
        for (size_t row = 0; row < n; row += 5)
            if (gone[row])
                assert_gone(ix, row);

        void *b2;
        size_t size2;
        tu_ok(hnswc_serialize(ix, &b2, &size2));
        /* every removed element took its label, level, flags, vector and
         * layer-0 list out of the file */
        size_t per_node = 16 + DIM * 4 + (1 + 2 * 16) * 4;
        if (size2 > size1 - marked * per_node)
            fail_msg("file %zu bytes before compact, %zu after (%zu removed)", size1, size2, marked);
        hnswc_buffer_free(b2);

        hnswc_index *fresh = fresh_build(m, data, n, gone);
        double rr = recall_of(ix, m, data, n, gone, 95, 200, EF);
        double rf = recall_of(fresh, m, data, n, gone, 95, 200, EF);
        if (rr < 0.9 || rr < rf - 0.02)
            fail_msg("recall after compact %.4f, fresh build %.4f", rr, rf);
        size_t again = 9;
        tu_ok(hnswc_compact(ix, 0, &again));
        assert_int_equal(again, 0);
        hnswc_free(fresh);
        hnswc_free(ix);
        free(gone);
        free(data);
    }
}

/* ------------------------------------------------------------------------
 * Files after removal
 * ------------------------------------------------------------------------ */

/* Same labels, same results (labels and distances) for the same queries. */
static void assert_same_answers(const hnswc_index *a, const hnswc_index *b, uint64_t seed)
{
    hnswc_info ia = info_of(a), ib = info_of(b);
    assert_int_equal(ia.count, ib.count);
    assert_int_equal(ia.deleted_count, ib.deleted_count);
    assert_int_equal(ia.max_level, ib.max_level);
    size_t na, nb;
    uint64_t *la = tu_xmalloc((ia.count + 1) * sizeof *la), *lb = tu_xmalloc((ib.count + 1) * sizeof *lb);
    tu_ok(hnswc_get_labels(a, la, ia.count, &na));
    tu_ok(hnswc_get_labels(b, lb, ib.count, &nb));
    assert_int_equal(na, ia.count);
    assert_int_equal(nb, ib.count);
    assert_memory_equal(la, lb, na * sizeof *la); /* saved in slot order */
    free(la);
    free(lb);
    tu_rng r = tu_rng_make(seed);
    for (int t = 0; t < 50; t++) {
        float q[DIM];
        for (int i = 0; i < DIM; i++)
            q[i] = (float)tu_uniform(&r) * 2.f - 1.f;
        uint64_t l1[K], l2[K];
        float d1[K], d2[K];
        size_t f1, f2;
        tu_ok(hnswc_search(a, q, K, 32, NULL, NULL, l1, d1, &f1));
        tu_ok(hnswc_search(b, q, K, 32, NULL, NULL, l2, d2, &f2));
        assert_int_equal(f1, f2);
        assert_memory_equal(l1, l2, f1 * sizeof *l1);
        assert_memory_equal(d1, d2, f1 * sizeof *d1);
    }
}

/*
 * After removals -- some reclaimed, some pending, some tombstones, some slots
 * reused -- save and load: the loaded index gives the same answers, holds
 * only the elements, saves again byte for byte, and can go on removing and
 * adding.
 */
static void test_save_load_after_remove(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(101);
    size_t n = 2000;
    float *data = tu_random_vectors(&r, n + 100, DIM, -1.f, 1.f);
    unsigned char *gone = tu_xcalloc(n + 100, 1);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    tu_add_rows(ix, data, n, DIM, 1);
    remove_random(ix, n, gone, 0.3, 102, 1, 2);  /* reclaimed */
    for (size_t row = n; row < n + 50; row++)     /* into reclaimed slots */
        tu_ok(hnswc_add(ix, tu_label_of(row), data + row * DIM, 0));
    remove_random(ix, n, gone, 0.02, 103, 0, 1);  /* pending */
    for (size_t row = 0; row < n; row += 50)
        if (!gone[row])
            tu_ok(hnswc_mark_deleted(ix, tu_label_of(row)));
    assert_true(info_of(ix).pending_slots > 0);

    char *dir = tu_mkdtemp();
    char *p1 = tu_path(dir, "a.hnswc"), *p2 = tu_path(dir, "b.hnswc");
    tu_ok(hnswc_save(ix, p1));
    hnswc_index *loaded;
    tu_ok(hnswc_load(p1, &loaded));
    assert_same_answers(ix, loaded, 104);
    hnswc_info li = info_of(loaded);
    assert_int_equal(li.removed_slots, 0);
    assert_int_equal(li.count + 0, info_of(ix).count);
    assert_int_equal(unreachable_of(loaded), 0);
    tu_ok(hnswc_save(loaded, p2));
    size_t s1, s2;
    unsigned char *f1 = tu_read_file(p1, &s1), *f2 = tu_read_file(p2, &s2);
    assert_int_equal(s1, s2);
    assert_memory_equal(f1, f2, s1);
    free(f1);
    free(f2);

    /* serialize gives the same bytes as the file */
    void *buf;
    size_t bs;
    tu_ok(hnswc_serialize(ix, &buf, &bs));
    f1 = tu_read_file(p1, &s1);
    assert_int_equal(bs, s1);
    assert_memory_equal(buf, f1, s1);
    free(f1);
    hnswc_buffer_free(buf);

    /* the loaded index goes on */
    remove_random(loaded, n, gone, 0.2, 105, 1, 2);
    for (size_t row = n + 50; row < n + 100; row++)
        tu_ok(hnswc_add(loaded, tu_label_of(row), data + row * DIM, 0));
    for (size_t row = 0; row < n; row += 50)
        gone[row] = 1; /* tombstones: never returned */
    double rec = recall_of(loaded, HNSWC_METRIC_L2, data, n + 100, gone, 106, 200, EF);
    assert_true(rec > 0.95);

    hnswc_free(loaded);
    hnswc_free(ix);
    free(p1);
    free(p2);
    tu_rmdir(dir);
    free(gone);
    free(data);
}

/*
 * With removals pending (in limbo until the sweep, and maybe still linked
 * to), an index answers exactly as the file it saves to does once loaded:
 * the file holds neither the removed elements nor the links to them, so a
 * search must step around them too. It used to walk through them: on this
 * index (M 4, 5,000 elements, 250 removals pending, ef 10) 17 of the 1,000
 * queries answered differently after a reload (found by make soak, issue
 * 13: 6 of 2,000 on 100,000 elements).
 */
static void test_reload_answers_while_removals_pending(void **s)
{
    (void)s;
    enum { N = 5000, GONE = 250, NQ = 1000, SMALL_EF = 10 };
    tu_rng r = tu_rng_make(111);
    float *data = tu_random_vectors(&r, N, DIM, -1.f, 1.f);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 4, 40, 7, 0);
    tu_add_rows(ix, data, N, DIM, 1);
    for (size_t i = 0; i < GONE; i++)
        tu_ok(hnswc_remove(ix, tu_label_of((i * 7919) % N)));
    assert_int_equal(info_of(ix).pending_slots, GONE); /* below the reclaim line */
    void *buf;
    size_t size;
    tu_ok(hnswc_serialize(ix, &buf, &size));
    hnswc_index *back;
    tu_ok(hnswc_deserialize(buf, size, &back));
    hnswc_buffer_free(buf);
    float *q = tu_random_vectors(&r, NQ, DIM, -1.f, 1.f);
    static uint64_t la[NQ * K], lb[NQ * K];
    static float da[NQ * K], db[NQ * K];
    static size_t fa[NQ], fb[NQ];
    tu_ok(hnswc_search_batch(ix, q, NQ, K, SMALL_EF, NULL, NULL, 1, la, da, fa));
    tu_ok(hnswc_search_batch(back, q, NQ, K, SMALL_EF, NULL, NULL, 1, lb, db, fb));
    size_t differ = 0;
    for (size_t j = 0; j < NQ; j++)
        differ += fa[j] != fb[j] || memcmp(la + j * K, lb + j * K, K * sizeof *la) ||
                  memcmp(da + j * K, db + j * K, K * sizeof *da);
    if (differ)
        fail_msg("%zu of %d queries answer differently after a reload", differ, NQ);
    /* range search steps around them the same way */
    hnswc_range_result ra = {0}, rb = {0};
    for (size_t j = 0; j < 200; j++) {
        tu_ok(hnswc_search_range(ix, q + j * DIM, 0.5f, SMALL_EF, NULL, NULL, &ra));
        tu_ok(hnswc_search_range(back, q + j * DIM, 0.5f, SMALL_EF, NULL, NULL, &rb));
        assert_int_equal(ra.count, rb.count);
        assert_memory_equal(ra.labels, rb.labels, ra.count * sizeof *ra.labels);
        assert_memory_equal(ra.distances, rb.distances, ra.count * sizeof *ra.distances);
    }
    hnswc_range_result_free(&ra);
    hnswc_range_result_free(&rb);
    free(q);
    hnswc_free(back);
    hnswc_free(ix);
    free(data);
}

/* get_labels lists exactly the elements left, live and tombstoned. */
static void test_labels_after_remove(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(111);
    size_t n = 600;
    float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
    unsigned char *gone = tu_xcalloc(n, 1);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    tu_add_rows(ix, data, n, DIM, 1);
    size_t k = remove_random(ix, n, gone, 0.4, 112, 0, 1);
    for (size_t row = 0; row < n; row += 10) /* tombstones are listed too */
        if (!gone[row])
            tu_ok(hnswc_mark_deleted(ix, tu_label_of(row)));
    size_t need;
    tu_expect_err(hnswc_get_labels(ix, NULL, 0, &need), HNSWC_ERR_INVALID);
    assert_int_equal(need, n - k);
    uint64_t *labels = tu_xmalloc(need * sizeof *labels);
    size_t got;
    tu_ok(hnswc_get_labels(ix, labels, need, &got));
    assert_int_equal(got, need);
    unsigned char *seen = tu_xcalloc(n, 1);
    for (size_t i = 0; i < got; i++) {
        size_t row = tu_row_of(labels[i], n);
        assert_true(row != SIZE_MAX);
        assert_false(gone[row]);
        assert_false(seen[row]);
        seen[row] = 1;
    }
    free(seen);
    free(labels);
    free(gone);
    free(data);
    hnswc_free(ix);
}

/* ------------------------------------------------------------------------
 * Bad input: a clear error, nothing changes
 * ------------------------------------------------------------------------ */

static void test_remove_bad_input(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(121);
    size_t n = 300;
    float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    tu_add_rows(ix, data, n, DIM, 1);
    void *b0;
    size_t s0;
    tu_ok(hnswc_serialize(ix, &b0, &s0));

    tu_expect_err(hnswc_remove(NULL, 1), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_remove(ix, 12345), HNSWC_ERR_NOT_FOUND);
    assert_non_null(strstr(hnswc_errmsg(NULL), "12345"));
    tu_expect_err(hnswc_remove_batch(NULL, NULL, 0, 1), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_remove_batch(ix, NULL, 3, 1), HNSWC_ERR_NULL);
    tu_ok(hnswc_remove_batch(ix, NULL, 0, 1)); /* nothing to do */
    tu_expect_err(hnswc_compact(NULL, 1, NULL), HNSWC_ERR_NULL);

    /* an unknown label anywhere in a batch: nothing removed */
    uint64_t labels[5] = {tu_label_of(1), tu_label_of(2), 999, tu_label_of(3), tu_label_of(4)};
    tu_expect_err(hnswc_remove_batch(ix, labels, 5, 2), HNSWC_ERR_NOT_FOUND);
    assert_non_null(strstr(hnswc_errmsg(NULL), "999"));
    /* a label given twice: nothing removed */
    labels[2] = tu_label_of(1);
    tu_expect_err(hnswc_remove_batch(ix, labels, 5, 2), HNSWC_ERR_INVALID);
    /* a label removed already (and one present): nothing removed */
    tu_ok(hnswc_remove(ix, tu_label_of(9)));
    uint64_t two[2] = {tu_label_of(8), tu_label_of(9)};
    tu_expect_err(hnswc_remove_batch(ix, two, 2, 1), HNSWC_ERR_NOT_FOUND);
    float v[DIM];
    for (size_t row = 0; row < 9; row++)
        tu_ok(hnswc_get_vector(ix, tu_label_of(row), v));
    hnswc_info in = info_of(ix);
    assert_int_equal(in.count, n - 1);
    assert_int_equal(in.removed_total, 1);

    /* and the index is as it was, but for the one removal */
    tu_ok(hnswc_add(ix, tu_label_of(9), data + 9 * DIM, 0));
    assert_int_equal(info_of(ix).count, n);
    hnswc_buffer_free(b0);
    free(data);
    hnswc_free(ix);
}

/*
 * A flat index: a batch is all or nothing, compact drops the marked rows
 * (the rest keep their order), and searches are exact before and after.
 */
static void test_flat_batch_and_compact(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(131);
    size_t n = 500;
    float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
    unsigned char *gone = tu_xcalloc(n, 1);
    hnswc_options o = {0};
    o.dim = DIM;
    o.kind = HNSWC_KIND_FLAT;
    hnswc_index *ix;
    tu_ok(hnswc_create(&o, &ix));
    tu_add_rows(ix, data, n, DIM, 1);

    uint64_t bad[3] = {tu_label_of(1), 4242, tu_label_of(2)};
    tu_expect_err(hnswc_remove_batch(ix, bad, 3, 1), HNSWC_ERR_NOT_FOUND);
    bad[1] = tu_label_of(1);
    tu_expect_err(hnswc_remove_batch(ix, bad, 3, 1), HNSWC_ERR_INVALID);
    assert_int_equal(info_of(ix).count, n);

    uint64_t *labels = tu_xmalloc(n * sizeof *labels);
    size_t k = 0;
    for (size_t row = 0; row < n; row += 3) {
        labels[k++] = tu_label_of(row);
        gone[row] = 1;
    }
    tu_ok(hnswc_remove_batch(ix, labels, k, 1));
    assert_int_equal(info_of(ix).count, n - k);
    size_t marked = 0;
    for (size_t row = 1; row < n; row += 5)
        if (!gone[row]) {
            tu_ok(hnswc_mark_deleted(ix, tu_label_of(row)));
            gone[row] = 1;
            marked++;
        }
    size_t removed = 0;
    tu_ok(hnswc_compact(ix, 1, &removed));
    assert_int_equal(removed, marked);
    hnswc_info in = info_of(ix);
    assert_int_equal(in.count, n - k - marked);
    assert_int_equal(in.deleted_count, 0);
    for (size_t row = 0; row < n; row++)
        if (gone[row])
            assert_gone(ix, row);
    /* exact: recall 1 at any ef */
    assert_true(recall_of(ix, HNSWC_METRIC_L2, data, n, gone, 132, 50, 1) == 1.0);
    free(labels);
    free(gone);
    free(data);
    hnswc_free(ix);
}

/*
 * SQ8 storage (the walk reads one-byte codes; repairs compare codes as
 * inserts do): removing half, one at a time and in a batch, keeps recall
 * with a fresh SQ8 build of the rest, leaves no unreachable node, and range
 * search at ef >= the count is still exact (radii compared in f32).
 */
static hnswc_index *sq8_index(void)
{
    hnswc_options o = {0};
    o.dim = DIM;
    o.storage = HNSWC_STORAGE_SQ8;
    hnswc_index *ix;
    tu_ok(hnswc_create(&o, &ix));
    return ix;
}

static void test_remove_sq8(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(141);
    size_t n = tu_scaled(3000, 1500);
    float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
    unsigned char *gone = tu_xcalloc(n, 1);
    hnswc_index *ix = sq8_index();
    tu_add_rows(ix, data, n, DIM, 2);
    assert_int_equal(info_of(ix).codes_trained, 1);
    remove_random(ix, n, gone, 0.1, 142, 0, 1);
    remove_random(ix, n, gone, 0.45, 143, 1, 2);
    hnswc_index *fresh = sq8_index();
    for (size_t row = 0; row < n; row++)
        if (!gone[row])
            tu_ok(hnswc_add(fresh, tu_label_of(row), data + row * DIM, 0));
    double rr = recall_of(ix, HNSWC_METRIC_L2, data, n, gone, 144, 200, EF);
    double rf = recall_of(fresh, HNSWC_METRIC_L2, data, n, gone, 144, 200, EF);
    if (rr < 0.9 || rr < rf - 0.02)
        fail_msg("SQ8: recall after removal %.4f, fresh build %.4f", rr, rf);
    assert_true(unreachable_of(ix) <= unreachable_of(fresh));
    /* exact at ef >= count: every removed row absent, every other found */
    hnswc_range_result res = {0};
    tu_ok(hnswc_search_range(ix, data, 1e9f, n, NULL, NULL, &res));
    size_t left = 0;
    for (size_t row = 0; row < n; row++)
        left += !gone[row];
    assert_int_equal(res.count, left);
    for (size_t i = 0; i < res.count; i++)
        assert_false(gone[tu_row_of(res.labels[i], n)]);
    hnswc_range_result_free(&res);
    hnswc_free(fresh);
    hnswc_free(ix);
    free(gone);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remove_half_recall),
        cmocka_unit_test(test_remove_cluster),
        cmocka_unit_test(test_remove_everything),
        cmocka_unit_test(test_slot_reuse),
        cmocka_unit_test(test_readd_removed_label),
        cmocka_unit_test(test_remove_tombstone),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_save_load_after_remove),
        cmocka_unit_test(test_reload_answers_while_removals_pending),
        cmocka_unit_test(test_labels_after_remove),
        cmocka_unit_test(test_remove_bad_input),
        cmocka_unit_test(test_flat_batch_and_compact),
        cmocka_unit_test(test_remove_sq8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
