/*
 * test_sq8.c -- the SQ8 storage (hnswc_options.storage): a walk on one-byte
 * codes with an exact f32 re-rank.
 *
 *   - recall@10 at ef=100 on Fashion-MNIST (L2, IP, cosine) and on random
 *     real-valued data, against brute force; every returned distance must be
 *     the exact f32 distance (the re-rank), in ascending order;
 *   - SQ8 recall within 0.01 of an F32 index built the same way (one thread,
 *     same seed, so both builds are reproducible);
 *   - training: no codes below HNSWC_SQ8_TRAIN_MIN vectors (searches stay
 *     exact-distance and correct), trained once the threshold is crossed,
 *     by single adds as by a batch;
 *   - values outside the trained range are saturated and counted; results
 *     stay exact;
 *   - the re-rank that decodes codes while they reproduce every vector
 *     stops doing so once a row off the grid or outside the range comes in
 *     (an add after training, a row stored before it, a file);
 *   - file round trips: save/load and serialize/deserialize keep the storage,
 *     the quantiser and the results; a re-serialization is byte-identical;
 *     every graph is written as format 4 (older formats: test_mmap);
 *   - files of format 1 written before this change (tests/data/hnswc-v1-*)
 *     still load, with their vectors, deletions and exact results;
 *   - an unknown storage value is rejected.
 */
#include "testutil.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K = 10, EF = 100 };

static tu_fmnist fm;

static int group_setup(void **state)
{
    (void)state;
    /* smaller than test_recall.c's 10,000 x 200: each case builds two indexes */
    tu_fmnist_load(&fm, tu_scaled(5000, 2000), 100);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tu_fmnist_free(&fm);
    return 0;
}

/* Recall@10 at ef over nq queries; every result checked (exact distances). */
static double recall_of(hnswc_index *ix, hnswc_metric metric, const float *data, size_t n,
                        size_t dim, const float *queries, size_t nq, size_t ef)
{
    size_t hits = 0;
    for (size_t q = 0; q < nq; q++) {
        const float *query = queries + q * dim;
        size_t rows[K];
        double tdist[K];
        size_t tf = tu_brute_knn(metric, data, n, dim, NULL, NULL, NULL, query, K, rows, tdist);
        uint64_t labels[K];
        float dists[K];
        size_t found = 0;
        tu_ok(hnswc_search(ix, query, K, ef, NULL, NULL, labels, dists, &found));
        hits += tu_check_result(metric, data, n, dim, NULL, NULL, NULL, query, K, labels, dists,
                                found, tf, tdist);
    }
    return (double)hits / (double)(nq * K);
}

static void sq8_vs_f32(const char *what, hnswc_metric metric, const float *data, size_t n,
                       size_t dim, const float *queries, size_t nq, double min_recall)
{
    hnswc_index *f = tu_create_storage((uint32_t)dim, metric, HNSWC_STORAGE_F32);
    hnswc_index *c = tu_create_storage((uint32_t)dim, metric, HNSWC_STORAGE_SQ8);
    tu_add_rows(f, data, n, dim, 1);
    tu_add_rows(c, data, n, dim, 1);
    hnswc_info info;
    tu_ok(hnswc_get_info(c, &info));
    assert_int_equal(info.storage, HNSWC_STORAGE_SQ8);
    assert_int_equal(info.codes_trained, 1);
    double rf = recall_of(f, metric, data, n, dim, queries, nq, EF);
    double rc = recall_of(c, metric, data, n, dim, queries, nq, EF);
    print_message("%-14s %d n=%zu dim=%zu: recall@10 ef=%d f32 %.4f, sq8 %.4f\n", what,
                  (int)metric, n, dim, EF, rf, rc);
    if (rc < min_recall || rc < rf - 0.01)
        fail_msg("%s: sq8 recall %.4f (f32 %.4f, minimum %.2f)", what, rc, rf, min_recall);
    hnswc_free(f);
    hnswc_free(c);
}

static void test_fmnist_l2(void **s)
{
    (void)s;
    sq8_vs_f32("fashion-mnist", HNSWC_METRIC_L2, fm.data, fm.n, fm.dim, fm.queries, fm.nq, 0.99);
}

static void test_fmnist_cosine(void **s)
{
    (void)s;
    sq8_vs_f32("fashion-mnist", HNSWC_METRIC_COSINE, fm.data, fm.n, fm.dim, fm.queries, fm.nq,
               0.99);
}

/* Inner product on raw pixels plateaus near 0.87 for hnswlib itself
 * (test_recall.c); the bar is the same as there. */
static void test_fmnist_ip(void **s)
{
    (void)s;
    sq8_vs_f32("fashion-mnist", HNSWC_METRIC_IP, fm.data, fm.n < 3000 ? fm.n : 3000, fm.dim,
               fm.queries, fm.nq, 0.84);
}

/* Real-valued data, where codes are not exact. */
static void test_random_real(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(11);
    size_t n = tu_scaled(5000, 2000), nq = 100, dim = 24;
    float *data = tu_random_vectors(&r, n, dim, -2.f, 3.f);
    float *queries = tu_random_vectors(&r, nq, dim, -2.f, 3.f);
    sq8_vs_f32("random real", HNSWC_METRIC_L2, data, n, dim, queries, nq, 0.98);
    sq8_vs_f32("random real", HNSWC_METRIC_COSINE, data, n, dim, queries, nq, 0.98);
    free(data);
    free(queries);
}

/* A walk on codes never has a beam narrower than k + k/8 + 1 (hnswc.h,
 * hnswc_search): a search at ef k answers as one at that floor, bit for bit,
 * in SQ8 and SQ8_ONLY; real-valued data, so that the codes are not exact and
 * a beam of exactly k would answer differently. */
static void test_code_beam_floor(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(12);
    size_t n = HNSWC_SQ8_TRAIN_MIN + 1000, nq = 60, dim = 16;
    float *data = tu_random_vectors(&r, n, dim, -2.f, 3.f);
    float *queries = tu_random_vectors(&r, nq, dim, -2.f, 3.f);
    const hnswc_storage storages[2] = {HNSWC_STORAGE_SQ8, HNSWC_STORAGE_SQ8_ONLY};
    const size_t ks[3] = {1, 10, 24};
    for (int si = 0; si < 2; si++) {
        hnswc_index *ix = tu_create_storage((uint32_t)dim, HNSWC_METRIC_L2, storages[si]);
        tu_add_rows(ix, data, n, dim, 1);
        for (int ki = 0; ki < 3; ki++) {
            size_t k = ks[ki], floor = k + k / 8 + 1;
            uint64_t la[24], lb[24];
            float da[24], db[24];
            for (size_t q = 0; q < nq; q++) {
                size_t fa, fb;
                const float *query = queries + q * dim;
                tu_ok(hnswc_search(ix, query, k, k, NULL, NULL, la, da, &fa));
                tu_ok(hnswc_search(ix, query, k, floor, NULL, NULL, lb, db, &fb));
                assert_int_equal(fa, k);
                assert_int_equal(fb, k);
                assert_memory_equal(la, lb, k * sizeof *la);
                assert_memory_equal(da, db, k * sizeof *da);
            }
        }
        hnswc_free(ix);
    }
    free(data);
    free(queries);
}

/* ------------------------------------------------------------------------
 * Training and saturation
 * ------------------------------------------------------------------------ */

static void test_training_threshold(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(5);
    size_t dim = 16, n = HNSWC_SQ8_TRAIN_MIN + 200;
    float *data = tu_random_vectors(&r, n, dim, 0.f, 1.f);
    hnswc_index *ix = tu_create_storage((uint32_t)dim, HNSWC_METRIC_L2, HNSWC_STORAGE_SQ8);
    hnswc_info info;
    /* single adds up to one short of the threshold: no codes yet */
    for (size_t i = 0; i + 1 < HNSWC_SQ8_TRAIN_MIN; i++)
        tu_ok(hnswc_add(ix, tu_label_of(i), data + i * dim, 0));
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.codes_trained, 0);
    double r0 = recall_of(ix, HNSWC_METRIC_L2, data, HNSWC_SQ8_TRAIN_MIN - 1, dim, data, 50, 50);
    assert_true(r0 >= 0.99);
    /* the add that reaches it trains on all, and codes are used from then on */
    size_t i = HNSWC_SQ8_TRAIN_MIN - 1;
    tu_ok(hnswc_add(ix, tu_label_of(i), data + i * dim, 0));
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.codes_trained, 1);
    assert_int_equal(info.codes_clipped, 0);
    for (i = HNSWC_SQ8_TRAIN_MIN; i < n; i++)
        tu_ok(hnswc_add(ix, tu_label_of(i), data + i * dim, 0));
    tu_ok(hnswc_get_info(ix, &info));
    uint64_t clipped0 = info.codes_clipped; /* later rows may fall just outside */
    assert_true(clipped0 < 200 * dim / 10);
    double r1 = recall_of(ix, HNSWC_METRIC_L2, data, n, dim, data + 7 * dim, 50, 50);
    assert_true(r1 >= 0.99);

    /* outside the trained range [0, 1): saturated, counted, still exact */
    float *far = tu_random_vectors(&r, 20, dim, 5.f, 6.f);
    float *all = tu_xmalloc((n + 20) * dim * sizeof *all);
    memcpy(all, data, n * dim * sizeof *all);
    memcpy(all + n * dim, far, 20 * dim * sizeof *all);
    for (size_t j = 0; j < 20; j++)
        tu_ok(hnswc_add(ix, tu_label_of(n + j), far + j * dim, 0));
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.codes_clipped - clipped0, 20 * dim);
    double r2 = recall_of(ix, HNSWC_METRIC_L2, all, n + 20, dim, far, 20, 100);
    print_message("saturated vectors: recall@10 at ef=100 = %.4f\n", r2);
    assert_true(r2 >= 0.9);
    free(all);
    free(far);
    free(data);
    hnswc_free(ix);
}

static void test_batch_trains(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(6);
    size_t dim = 8, n = HNSWC_SQ8_TRAIN_MIN;
    float *data = tu_random_vectors(&r, n, dim, -1.f, 1.f);
    hnswc_index *ix = tu_create_storage((uint32_t)dim, HNSWC_METRIC_IP, HNSWC_STORAGE_SQ8);
    tu_add_rows(ix, data, n, dim, 2);
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.codes_trained, 1);
    assert_true(recall_of(ix, HNSWC_METRIC_IP, data, n, dim, data, 40, 64) >= 0.97);
    free(data);
    hnswc_free(ix);
}

/* ------------------------------------------------------------------------
 * Codes that reproduce their vectors (graph.c, rerank; index.h,
 * codes_inexact): while every row's code decodes to it bit for bit, the
 * re-rank decodes codes instead of reading the f32 copy. A row that is off
 * the code's grid or outside its range must turn that off, whichever way it
 * came in (an add after training, the training batch, a file): searched
 * for, such a row is found at distance exactly 0, which a decoded row (off
 * by 0.25, or saturated) would not give.
 * ------------------------------------------------------------------------ */

/* Searches row v of label `label` for itself: nearest, at distance 0. */
static void finds_itself(hnswc_index *ix, const float *v, uint64_t label)
{
    uint64_t l[K];
    float d[K];
    size_t found = 0;
    tu_ok(hnswc_search(ix, v, K, 64, NULL, NULL, l, d, &found));
    assert_true(found >= 1);
    assert_int_equal(l[0], label);
    assert_true(d[0] == 0.0f);
}

static void test_exact_codes(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(77);
    size_t dim = 16, n = HNSWC_SQ8_TRAIN_MIN + 100;
    float *data = tu_xmalloc((n + 2) * dim * sizeof *data);
    for (size_t i = 0; i < n * dim; i++) /* pixels: codes reproduce them */
        data[i] = (float)(tu_next(&r) % 256);
    for (size_t j = 0; j < dim; j++) { /* the full range in every column */
        data[j] = 0.0f;
        data[dim + j] = 255.0f;
    }
    float *off = data + n * dim, *clip = off + dim; /* off the grid; saturated */
    memcpy(off, data + 5 * dim, dim * sizeof *off);
    off[3] += 0.25f;
    memcpy(clip, data + 6 * dim, dim * sizeof *clip);
    clip[7] = 300.0f;
    for (int path = 0; path < 3; path++) {
        hnswc_index *ix = tu_create_storage((uint32_t)dim, HNSWC_METRIC_L2, HNSWC_STORAGE_SQ8);
        if (path == 1) { /* stored before the training, which codes it */
            float keep[16];
            memcpy(keep, data + 9 * dim, sizeof keep);
            memcpy(data + 9 * dim, off, dim * sizeof *off);
            for (size_t i = 0; i < n; i++)
                tu_ok(hnswc_add(ix, tu_label_of(i), data + i * dim, 0));
            finds_itself(ix, off, tu_label_of(9));
            memcpy(data + 9 * dim, keep, sizeof keep);
            hnswc_free(ix);
            continue;
        }
        tu_add_rows(ix, data, n, dim, 2);
        hnswc_info info;
        tu_ok(hnswc_get_info(ix, &info));
        assert_int_equal(info.codes_trained, 1);
        for (size_t i = 0; i < n; i += 97) /* the decoding re-rank */
            finds_itself(ix, data + i * dim, tu_label_of(i));
        /* path 0: added after training; path 2: the same, through a file */
        tu_ok(hnswc_add(ix, tu_label_of(n), off, 0));
        tu_ok(hnswc_add(ix, tu_label_of(n + 1), clip, 0));
        if (path == 2) {
            void *buf = NULL;
            size_t size = 0;
            tu_ok(hnswc_serialize(ix, &buf, &size));
            hnswc_free(ix);
            tu_ok(hnswc_deserialize(buf, size, &ix));
            hnswc_buffer_free(buf);
        }
        finds_itself(ix, off, tu_label_of(n));
        finds_itself(ix, clip, tu_label_of(n + 1));
        for (size_t i = 0; i < n; i += 97)
            finds_itself(ix, data + i * dim, tu_label_of(i));
        hnswc_free(ix);
    }
    free(data);
}

/*
 * Where codes do not hold the data exactly, an insert's links are chosen on
 * exact distances (graph.c, links_on_codes): its walk finds the candidates
 * on codes, and the heuristic then compares f32 distances. A node whose
 * choice the two kinds decide differently, with M 2 on a line (step 1, so
 * a code is the value rounded):
 *
 *     C 110.0 (code 110)   B 110.3 (110)   q 110.45 (110)   A 110.55 (111)
 *
 * Exact: A (0.1 away) is kept first, then B (0.15 from q, 0.25 from A):
 * {A, B}. On codes, B and C tie with q at 0 and are both kept before A,
 * 1 away: {B, C} -- a link to C, three times as far as A, and none to the
 * nearest node. The background (1,000 integer points, x in 0..50 and
 * 200..255, y in 0..9) trains the quantiser (lo 0, step 1) and lies 60 or
 * more away: it is reached by the walk but pruned by the heuristic.
 */
static void test_links_chosen_exactly(void **s)
{
    (void)s;
    hnswc_options o = {0};
    o.dim = 2;
    o.M = 2;
    o.storage = HNSWC_STORAGE_SQ8;
    o.relayout = HNSWC_RELAYOUT_MANUAL;
    hnswc_index *ix = NULL;
    tu_ok(hnswc_create(&o, &ix));
    const float far_end[2] = {255.0f, 0.0f}; /* x spans 0..255: step 1 */
    tu_ok(hnswc_add(ix, 1, far_end, 0));
    uint64_t label = 2;
    for (int x = 0; x < 255 && label <= HNSWC_SQ8_TRAIN_MIN; x += x == 50 ? 150 : 1)
        for (int y = 0; y < 10 && label <= HNSWC_SQ8_TRAIN_MIN; y++) {
            const float v[2] = {(float)x, (float)y};
            tu_ok(hnswc_add(ix, label++, v, 0));
        }
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.codes_trained, 1);
    const float c[2] = {110.0f, 0.0f}, b[2] = {110.3f, 0.0f}, a[2] = {110.55f, 0.0f},
                q[2] = {110.45f, 0.0f};
    tu_ok(hnswc_add(ix, 9001, c, 0));
    tu_ok(hnswc_add(ix, 9002, b, 0));
    tu_ok(hnswc_add(ix, 9003, a, 0));
    tu_ok(hnswc_add(ix, 9004, q, 0));
    uint32_t id_a, id_b, id_c, id_q, links[4];
    tu_ok(hnswc_node_id(ix, 9001, &id_c));
    tu_ok(hnswc_node_id(ix, 9002, &id_b));
    tu_ok(hnswc_node_id(ix, 9003, &id_a));
    tu_ok(hnswc_node_id(ix, 9004, &id_q));
    size_t n = 0;
    tu_ok(hnswc_node_links(ix, id_q, 0, links, 4, &n));
    bool has_a = false, has_b = false, has_c = false;
    for (size_t i = 0; i < n; i++) {
        has_a |= links[i] == id_a;
        has_b |= links[i] == id_b;
        has_c |= links[i] == id_c;
    }
    if (n != 2 || !has_a || !has_b || has_c)
        fail_msg("q's layer-0 list: %zu links, A %d, B %d, C %d; the exact choice is {A, B}", n,
                 has_a, has_b, has_c);
    hnswc_free(ix);
}

/*
 * Pixels and pixel queries: the walk's code distances are the f32 ones,
 * and the re-rank is skipped where they provably are (graph.c,
 * codes_are_distances: below 2^24). Every returned distance must still be
 * the f32 kernel's, bit for bit (hnswc_distance), and the results the
 * exact k nearest, on each path: queries near a tight cluster of small
 * values (distances far below 2^24: the skip), queries of values near 0
 * or 255 among vectors of such values (distances about 2 * 10^7, above
 * 2^24: the re-rank runs), and an off-grid query (not reproduced by its
 * code: the re-rank runs).
 */
/* A pixel near 0 or near 255: far from the others in about half the
 * dimensions, with odd squares, so that sums above 2^24 round. */
static float far_value(tu_rng *r)
{
    unsigned v = (unsigned)(tu_next(r) % 21);
    return (float)(tu_next(r) % 2 ? 255 - v : v);
}

static void test_code_distances_exact(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(4242);
    size_t dim = 784, n = HNSWC_SQ8_TRAIN_MIN + 500, nq = 24;
    float *data = tu_xmalloc(n * dim * sizeof *data);
    float *queries = tu_xmalloc(nq * dim * sizeof *queries);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < dim; j++) {
            float base = (float)((j * 37) % 8);
            data[i * dim + j] = i % 2 ? far_value(&r) : base + (float)(tu_next(&r) % 5);
        }
    for (size_t j = 0; j < dim; j++) { /* the full range in every column: step 1 */
        data[j] = 0.0f;
        data[dim + j] = 255.0f;
    }
    for (size_t q = 0; q < nq; q++)
        for (size_t j = 0; j < dim; j++)
            queries[q * dim + j] = q % 2 ? far_value(&r)
                                         : (float)((j * 37) % 8) + (float)(tu_next(&r) % 5);
    queries[(nq - 1) * dim + 5] += 0.5f; /* off the grid */
    hnswc_index *ix = tu_create_storage((uint32_t)dim, HNSWC_METRIC_L2, HNSWC_STORAGE_SQ8);
    tu_add_rows(ix, data, n, dim, 2);
    size_t big = 0;
    for (size_t q = 0; q < nq; q++) {
        const float *query = queries + q * dim;
        size_t rows[K];
        double tdist[K];
        size_t tf = tu_brute_knn(HNSWC_METRIC_L2, data, n, dim, NULL, NULL, NULL, query, K, rows,
                                 tdist);
        uint64_t labels[K];
        float dists[K];
        size_t found = 0;
        tu_ok(hnswc_search(ix, query, K, n, NULL, NULL, labels, dists, &found));
        assert_int_equal(tu_check_result(HNSWC_METRIC_L2, data, n, dim, NULL, NULL, NULL, query, K,
                                         labels, dists, found, tf, tdist),
                         K);
        for (size_t i = 0; i < found; i++) {
            float want;
            uint32_t row = (uint32_t)((labels[i] - tu_label_of(0)) / 7u);
            tu_ok(hnswc_distance(HNSWC_METRIC_L2, query, data + (size_t)row * dim, dim, &want));
            assert_memory_equal(&dists[i], &want, sizeof want);
            big += dists[i] >= 16777216.0f;
        }
    }
    assert_true(big > 0); /* the far queries took the re-rank */
    hnswc_free(ix);
    free(data);
    free(queries);
}

static void test_bad_storage(void **s)
{
    (void)s;
    hnswc_options o = {0};
    o.dim = 4;
    o.storage = (hnswc_storage)7;
    hnswc_index *ix = NULL;
    tu_expect_err(hnswc_create(&o, &ix), HNSWC_ERR_INVALID);
    assert_null(ix);
}

/* ------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------ */

static void same_results(hnswc_index *a, hnswc_index *b, const float *queries, size_t nq,
                         size_t dim)
{
    tu_assert_same_search(a, b, queries, nq, dim, K, 40);
}

static void test_round_trip(void **s)
{
    (void)s;
    for (int trained = 0; trained < 2; trained++) {
        for (int m = 0; m < 3; m++) {
            tu_rng r = tu_rng_make(40 + (uint64_t)m);
            size_t dim = 12, n = trained ? HNSWC_SQ8_TRAIN_MIN + 100 : 300;
            float *data = tu_random_vectors(&r, n, dim, -1.f, 2.f);
            hnswc_index *ix = tu_create_storage((uint32_t)dim, (hnswc_metric)m, HNSWC_STORAGE_SQ8);
            tu_add_rows(ix, data, n, dim, 1);
            tu_ok(hnswc_mark_deleted(ix, tu_label_of(3)));

            char *dir = tu_mkdtemp(), *path = tu_path(dir, "sq8.hnswc");
            tu_ok(hnswc_save(ix, path));
            size_t fsize;
            unsigned char *file = tu_read_file(path, &fsize);
            assert_non_null(file);
            uint32_t version;
            memcpy(&version, file + 8, 4);
            assert_int_equal(version, 4); /* every graph (older versions: test_mmap) */
            hnswc_index *back = NULL;
            tu_ok(hnswc_load(path, &back));
            hnswc_info info;
            tu_ok(hnswc_get_info(back, &info));
            assert_int_equal(info.storage, HNSWC_STORAGE_SQ8);
            assert_int_equal(info.codes_trained, trained);
            assert_int_equal(info.deleted_count, 1);
            same_results(ix, back, data, 30, dim);

            void *buf = NULL, *buf2 = NULL;
            size_t size = 0, size2 = 0;
            tu_ok(hnswc_serialize(ix, &buf, &size));
            assert_int_equal(size, fsize);
            assert_memory_equal(buf, file, size);
            hnswc_index *back2 = NULL;
            tu_ok(hnswc_deserialize(buf, size, &back2));
            tu_ok(hnswc_serialize(back2, &buf2, &size2));
            assert_int_equal(size, size2);
            assert_memory_equal(buf, buf2, size);
            same_results(ix, back2, data, 30, dim);

            /* a corrupted quantiser is caught by the checksum */
            unsigned char *bad = tu_xmalloc(size);
            memcpy(bad, buf, size);
            size_t quan = 0;
            for (size_t i = 0; i + 4 <= size; i++)
                if (memcmp(bad + i, "QUAN", 4) == 0) {
                    quan = i;
                    break;
                }
            assert_true(quan > 0);
            bad[quan + 16 + 5] ^= 0x40;
            hnswc_index *x = NULL;
            tu_expect_err(hnswc_deserialize(bad, size, &x), HNSWC_ERR_FORMAT);
            assert_null(x);

            free(bad);
            hnswc_buffer_free(buf);
            hnswc_buffer_free(buf2);
            free(file);
            hnswc_free(back);
            hnswc_free(back2);
            hnswc_free(ix);
            free(path);
            tu_rmdir(dir);
            free(data);
        }
    }
}

static void test_f32_written_as_version_4(void **s)
{
    (void)s;
    hnswc_index *ix = tu_create_storage(4, HNSWC_METRIC_L2, HNSWC_STORAGE_F32);
    float v[4] = {1, 2, 3, 4};
    tu_ok(hnswc_add(ix, 1, v, 0));
    void *buf = NULL;
    size_t size = 0;
    tu_ok(hnswc_serialize(ix, &buf, &size));
    uint32_t version;
    memcpy(&version, (unsigned char *)buf + 8, 4);
    assert_int_equal(version, 4); /* the version every graph is written as */
    hnswc_buffer_free(buf);
    hnswc_free(ix);
}

/* The vectors of tests/data/make_hnswc_v1_fixtures.c. */
static void fixture_vectors(float *out, size_t n)
{
    unsigned long long s = 12345;
    for (size_t i = 0; i < n * 8; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        out[i] = (float)((s >> 33) % 1000) / 100.0f - 3.0f;
    }
}

static void test_v1_files_load(void **s)
{
    (void)s;
    const char *dir = getenv("HNSWC_TEST_DATA");
    assert_non_null(dir);
    const char *names[3] = {"l2", "ip", "cosine"};
    float data[300 * 8];
    fixture_vectors(data, 300);
    for (int m = 0; m < 3; m++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/hnswc-v1-%s-d8.bin", dir, names[m]);
        hnswc_index *ix = NULL;
        tu_ok(hnswc_load(path, &ix));
        hnswc_info info;
        tu_ok(hnswc_get_info(ix, &info));
        assert_int_equal(info.storage, HNSWC_STORAGE_F32);
        assert_int_equal(info.count, 300);
        assert_int_equal(info.deleted_count, 1);
        for (size_t i = 0; i < 300; i += 37) {
            float v[8], want[8];
            tu_ok(hnswc_get_vector(ix, 1000 + i, v));
            memcpy(want, data + i * 8, sizeof want);
            if (m == HNSWC_METRIC_COSINE) {
                double norm = 0;
                for (int d = 0; d < 8; d++)
                    norm += (double)want[d] * want[d];
                for (int d = 0; d < 8; d++)
                    assert_true(fabs(v[d] - want[d] / sqrt(norm)) < 1e-6);
            } else {
                assert_memory_equal(v, want, sizeof v);
            }
        }
        int del = 0;
        tu_ok(hnswc_is_deleted(ix, 1003, &del));
        assert_int_equal(del, 1);
        /* exact search over the loaded vectors agrees with brute force */
        unsigned char deleted[300] = {0};
        deleted[3] = 1;
        for (size_t q = 0; q < 300; q += 29) {
            size_t rows[K];
            double tdist[K];
            size_t tf = tu_brute_knn((hnswc_metric)m, data, 300, 8, deleted, NULL, NULL,
                                     data + q * 8, K, rows, tdist);
            uint64_t labels[K];
            float dists[K];
            size_t found;
            tu_ok(hnswc_search(ix, data + q * 8, K, 300, NULL, NULL, labels, dists, &found));
            assert_int_equal(found, tf);
            for (size_t j = 0; j < found; j++)
                assert_true(tu_dist_close(dists[j], tdist[j]));
        }
        hnswc_free(ix);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_storage),
        cmocka_unit_test(test_f32_written_as_version_4),
        cmocka_unit_test(test_v1_files_load),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_training_threshold),
        cmocka_unit_test(test_batch_trains),
        cmocka_unit_test(test_exact_codes),
        cmocka_unit_test(test_links_chosen_exactly),
        cmocka_unit_test(test_code_distances_exact),
        cmocka_unit_test(test_random_real),
        cmocka_unit_test(test_code_beam_floor),
        cmocka_unit_test(test_fmnist_l2),
        cmocka_unit_test(test_fmnist_cosine),
        cmocka_unit_test(test_fmnist_ip),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
