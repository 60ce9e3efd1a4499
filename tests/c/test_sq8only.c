/*
 * test_sq8only.c -- code-only storage (HNSWC_STORAGE_SQ8_ONLY): SQ8 codes and
 * no f32 copy once the quantiser is trained, approximate distances.
 *
 *   - Fashion-MNIST (pixels: step 1, codes exact): recall@10 against brute
 *     force as high as SQ8's, exact distances, and the memory a node costs
 *     (hnswc_info.memory_bytes) well under SQ8's;
 *   - real-valued data, L2 / IP / cosine: recall@10 against brute force on
 *     the ORIGINAL vectors; every returned distance within the stated
 *     quantisation bound of the exact one (hnswc.h: for L2
 *     |sqrt(d) - sqrt(d_exact)| <= sqrt(dim) * step / 2; for IP and cosine
 *     |d - d_exact| <= |q| * sqrt(dim) * step / 2), and equal to the
 *     distance to hnswc_get_vector's decoded vector (bit for bit for L2 and
 *     IP); get_vector within step / 2 of what was added;
 *   - the training threshold: f32 and exact below HNSWC_SQ8_TRAIN_MIN, the
 *     vectors freed (memory drops) at the add that crosses it, by single
 *     adds as by a threaded batch; updates, deletion marks, removal, slot
 *     reuse, compact, exact and range search afterwards;
 *   - files: save/load, serialize/deserialize and hnswc_open (mmap: loaded,
 *     nothing mapped) keep results bit for bit; re-serialization is byte
 *     identical; a trained file has CODE instead of VECS (dim bytes a node);
 *     inconsistent or damaged files are refused with HNSWC_ERR_FORMAT;
 *   - training while other threads search and read vectors (ASan, TSan);
 *   - a flat index refuses it; unknown storage values are refused.
 */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K = 10, EF = 100 };

static tu_fmnist fm;

static int group_setup(void **state)
{
    (void)state;
    tu_fmnist_load(&fm, tu_scaled(5000, 2000), 100);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tu_fmnist_free(&fm);
    return 0;
}

/* The step the quantiser trains to on rows [0, n) (normalised for cosine):
 * the widest per-dimension range over 255 (src/quant.h). */
static double step_of(hnswc_metric metric, const float *data, size_t n, size_t dim)
{
    double width = 0.0;
    float *row = tu_xmalloc(dim * sizeof *row);
    double *lo = tu_xmalloc(dim * sizeof *lo), *hi = tu_xmalloc(dim * sizeof *hi);
    for (size_t i = 0; i < n; i++) {
        memcpy(row, data + i * dim, dim * sizeof *row);
        if (metric == HNSWC_METRIC_COSINE) {
            double s = 0;
            for (size_t d = 0; d < dim; d++)
                s += (double)row[d] * row[d];
            for (size_t d = 0; d < dim; d++)
                row[d] = (float)(row[d] / sqrt(s));
        }
        for (size_t d = 0; d < dim; d++) {
            lo[d] = i == 0 || row[d] < lo[d] ? row[d] : lo[d];
            hi[d] = i == 0 || row[d] > hi[d] ? row[d] : hi[d];
        }
    }
    for (size_t d = 0; d < dim; d++)
        width = hi[d] - lo[d] > width ? hi[d] - lo[d] : width;
    free(row);
    free(lo);
    free(hi);
    return width / 255.0;
}

static double norm_of(const float *v, size_t dim)
{
    double s = 0;
    for (size_t d = 0; d < dim; d++)
        s += (double)v[d] * v[d];
    return sqrt(s);
}

/*
 * Recall@10 at ef against brute force on the original rows, and every
 * returned distance checked: within the quantisation bound of the exact
 * one, ascending, and equal to the distance to the decoded vector.
 */
static double check_code_only(hnswc_index *ix, hnswc_metric metric, const float *data, size_t n,
                              size_t dim, const float *queries, size_t nq, size_t ef, double step)
{
    size_t hits = 0;
    double worst = 0.0;
    float *dec = tu_xmalloc(dim * sizeof *dec), *qn = tu_xmalloc(dim * sizeof *qn);
    const double half = sqrt((double)dim) * step / 2.0;
    for (size_t q = 0; q < nq; q++) {
        const float *query = queries + q * dim;
        size_t rows[K];
        double tdist[K];
        size_t tf = tu_brute_knn(metric, data, n, dim, NULL, NULL, NULL, query, K, rows, tdist);
        uint64_t labels[K];
        float dists[K];
        size_t found = 0;
        tu_ok(hnswc_search(ix, query, K, ef, NULL, NULL, labels, dists, &found));
        assert_int_equal(found, tf);
        memcpy(qn, query, dim * sizeof *qn);
        double qnorm = norm_of(query, dim);
        if (metric == HNSWC_METRIC_COSINE)
            for (size_t d = 0; d < dim; d++)
                qn[d] = (float)(qn[d] / qnorm);
        for (size_t i = 0; i < found; i++) {
            size_t row = tu_row_of(labels[i], n);
            assert_true(row < n);
            if (i > 0)
                assert_true(dists[i] >= dists[i - 1]);
            double exact = tu_exact_dist(metric, query, data + row * dim, dim);
            /* the bound of hnswc.h, plus float rounding */
            double err, bound;
            if (metric == HNSWC_METRIC_L2) {
                err = fabs(sqrt(fmax(dists[i], 0.0)) - sqrt(exact));
                bound = half + 1e-3 * fmax(1.0, sqrt(exact));
            } else {
                err = fabs(dists[i] - exact);
                bound = (metric == HNSWC_METRIC_IP ? qnorm : 1.0) * half + 1e-4 * fmax(1.0, fabs(exact));
            }
            if (err > bound)
                fail_msg("query %zu result %zu: distance %g, exact %g: error %g above the "
                         "bound %g", q, i, (double)dists[i], exact, err, bound);
            worst = err / bound > worst ? err / bound : worst;
            /* the distance IS the distance to the decoded vector */
            tu_ok(hnswc_get_vector(ix, labels[i], dec));
            float again;
            if (metric == HNSWC_METRIC_COSINE) { /* to it as stored, not renormalised */
                double dot = 0;
                for (size_t d = 0; d < dim; d++)
                    dot += (double)qn[d] * dec[d];
                assert_true(fabs(dists[i] - (1.0 - dot)) <= 1e-4);
            } else {
                tu_ok(hnswc_distance(metric, query, dec, dim, &again));
                assert_memory_equal(&again, &dists[i], sizeof again);
            }
        }
        /* hits: returned rows whose exact distance is within the true k-th */
        for (size_t i = 0; i < found; i++) {
            double exact = tu_exact_dist(metric, query, data + tu_row_of(labels[i], n) * dim, dim);
            hits += exact <= tdist[tf - 1] + 1e-6 * fmax(1.0, fabs(tdist[tf - 1]));
        }
    }
    print_message("  worst distance error: %.2f of the bound\n", worst);
    free(dec);
    free(qn);
    return (double)hits / (double)(nq * K);
}

/* ------------------------------------------------------------------------
 * Recall, distances, memory
 * ------------------------------------------------------------------------ */

static void test_fmnist_l2(void **s)
{
    (void)s;
    hnswc_index *c = tu_create_storage((uint32_t)fm.dim, HNSWC_METRIC_L2, HNSWC_STORAGE_SQ8);
    hnswc_index *o = tu_create_storage((uint32_t)fm.dim, HNSWC_METRIC_L2, HNSWC_STORAGE_SQ8_ONLY);
    tu_add_rows(c, fm.data, fm.n, fm.dim, 1);
    tu_add_rows(o, fm.data, fm.n, fm.dim, 1);
    hnswc_info ic, io;
    tu_ok(hnswc_get_info(c, &ic));
    tu_ok(hnswc_get_info(o, &io));
    assert_int_equal(io.storage, HNSWC_STORAGE_SQ8_ONLY);
    assert_int_equal(io.codes_trained, 1);
    double step = step_of(HNSWC_METRIC_L2, fm.data, fm.n, fm.dim);
    assert_true(step == 1.0); /* pixels 0..255: codes are the data */
    double ro = check_code_only(o, HNSWC_METRIC_L2, fm.data, fm.n, fm.dim, fm.queries,
                                        fm.nq, EF, step);
    /* SQ8 with the same seed and one thread builds the same graph on the
     * same codes, and its re-rank gives the same (exact) distances */
    for (size_t q = 0; q < fm.nq; q++) {
        uint64_t la[K], lb[K];
        float da[K], db[K];
        size_t fa, fb;
        tu_ok(hnswc_search(c, fm.queries + q * fm.dim, K, EF, NULL, NULL, la, da, &fa));
        tu_ok(hnswc_search(o, fm.queries + q * fm.dim, K, EF, NULL, NULL, lb, db, &fb));
        assert_int_equal(fa, fb);
        assert_memory_equal(la, lb, fa * sizeof *la);
        for (size_t i = 0; i < fa; i++)
            assert_true(fabs(da[i] - db[i]) <= 1e-4 * fmax(1.0, da[i]));
    }
    print_message("fashion-mnist n=%zu: recall@10 ef=%d sq8-only %.4f; memory %.0f vs %.0f "
                  "bytes per element (sq8-only / sq8 = %.3f)\n", fm.n, EF, ro,
                  (double)io.memory_bytes / (double)fm.n, (double)ic.memory_bytes / (double)fm.n,
                  (double)io.memory_bytes / (double)ic.memory_bytes);
    assert_true(ro >= 0.99);
    /* records of 1,024 bytes against 1,024 + 3,136 (both over the same
     * chunk capacity): under a third, whatever the side tables cost */
    assert_true((double)io.memory_bytes < 0.33 * (double)ic.memory_bytes);
    hnswc_free(c);
    hnswc_free(o);
}

/* Real-valued data: codes are not exact. */
static void real_valued(hnswc_metric metric, double min_recall)
{
    tu_rng r = tu_rng_make(21 + (uint64_t)metric);
    size_t n = tu_scaled(4000, 1500), nq = 60, dim = 24;
    float *data = tu_random_vectors(&r, n, dim, -2.f, 3.f);
    float *queries = tu_random_vectors(&r, nq, dim, -2.f, 3.f);
    hnswc_index *ix = tu_create_storage((uint32_t)dim, metric, HNSWC_STORAGE_SQ8_ONLY);
    tu_add_rows(ix, data, n, dim, 2); /* one batch: trained on all of it */
    double step = step_of(metric, data, n, dim);
    double rec = check_code_only(ix, metric, data, n, dim, queries, nq, EF, step);
    print_message("random real metric %d n=%zu dim=%zu: recall@10 ef=%d %.4f (step %.4g)\n",
                  (int)metric, n, dim, EF, rec, step);
    if (rec < min_recall)
        fail_msg("metric %d: recall %.4f below %.2f", (int)metric, rec, min_recall);
    /* get_vector: within step / 2 of what was added (normalised: cosine) */
    float *dec = tu_xmalloc(dim * sizeof *dec);
    for (size_t i = 0; i < n; i += 97) {
        tu_ok(hnswc_get_vector(ix, tu_label_of(i), dec));
        double nrm = metric == HNSWC_METRIC_COSINE ? norm_of(data + i * dim, dim) : 1.0;
        for (size_t d = 0; d < dim; d++)
            assert_true(fabs(dec[d] - data[i * dim + d] / nrm) <= step / 2 * 1.001 + 1e-6);
    }
    free(dec);
    free(data);
    free(queries);
    hnswc_free(ix);
}

static void test_real_l2(void **s) { (void)s; real_valued(HNSWC_METRIC_L2, 0.95); }
static void test_real_ip(void **s) { (void)s; real_valued(HNSWC_METRIC_IP, 0.90); }
static void test_real_cosine(void **s) { (void)s; real_valued(HNSWC_METRIC_COSINE, 0.95); }

/* ------------------------------------------------------------------------
 * Training, then everything that writes
 * ------------------------------------------------------------------------ */

static void test_training_threshold(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(5);
    size_t dim = 16, n = HNSWC_SQ8_TRAIN_MIN + 300;
    float *data = tu_random_vectors(&r, n, dim, 0.f, 1.f);
    hnswc_index *ix = tu_create_storage((uint32_t)dim, HNSWC_METRIC_L2, HNSWC_STORAGE_SQ8_ONLY);
    hnswc_info before, after;
    float v[16];
    for (size_t i = 0; i + 1 < HNSWC_SQ8_TRAIN_MIN; i++)
        tu_ok(hnswc_add(ix, tu_label_of(i), data + i * dim, 0));
    tu_ok(hnswc_get_info(ix, &before));
    assert_int_equal(before.codes_trained, 0);
    /* untrained: f32, exact vectors and distances */
    tu_ok(hnswc_get_vector(ix, tu_label_of(5), v));
    assert_memory_equal(v, data + 5 * dim, sizeof v);
    size_t m = HNSWC_SQ8_TRAIN_MIN - 1;
    for (size_t q = 0; q < 20; q++) {
        uint64_t labels[K];
        float dists[K];
        size_t found, rows[K];
        double tdist[K];
        size_t tf = tu_brute_knn(HNSWC_METRIC_L2, data, m, dim, NULL, NULL, NULL, data + q * dim,
                                 K, rows, tdist);
        tu_ok(hnswc_search(ix, data + q * dim, K, 50, NULL, NULL, labels, dists, &found));
        tu_check_result(HNSWC_METRIC_L2, data, m, dim, NULL, NULL, NULL, data + q * dim, K,
                        labels, dists, found, tf, tdist);
    }
    /* the add that reaches the threshold trains, encodes and frees */
    tu_ok(hnswc_add(ix, tu_label_of(m), data + m * dim, 0));
    tu_ok(hnswc_get_info(ix, &after));
    assert_int_equal(after.codes_trained, 1);
    assert_int_equal(after.codes_clipped, 0);
    /* the cold array was capacity * 64 bytes (16 floats, 64-byte rows) */
    assert_true(after.memory_bytes + before.capacity * 64 <= before.memory_bytes + 4096);
    for (size_t i = m + 1; i < n; i++)
        tu_ok(hnswc_add(ix, tu_label_of(i), data + i * dim, 0));
    double step = step_of(HNSWC_METRIC_L2, data, HNSWC_SQ8_TRAIN_MIN, dim);
    tu_ok(hnswc_get_vector(ix, tu_label_of(5), v));
    for (size_t d = 0; d < dim; d++)
        assert_true(fabs(v[d] - data[5 * dim + d]) <= step / 2 * 1.001);

    /* an update: the label's vector is replaced (re-encoded) and found */
    float moved[16];
    for (size_t d = 0; d < dim; d++)
        moved[d] = 0.5f;
    tu_ok(hnswc_add(ix, tu_label_of(7), moved, 0));
    uint64_t labels[K];
    float dists[K];
    size_t found;
    tu_ok(hnswc_search(ix, moved, 1, 50, NULL, NULL, labels, dists, &found));
    assert_int_equal(found, 1);
    assert_int_equal(labels[0], tu_label_of(7));
    tu_ok(hnswc_get_vector(ix, tu_label_of(7), v));
    for (size_t d = 0; d < dim; d++)
        assert_true(fabs(v[d] - 0.5f) <= step / 2 * 1.001);

    /* outside the trained range: saturated and counted */
    float far[16];
    for (size_t d = 0; d < dim; d++)
        far[d] = 4.0f;
    tu_ok(hnswc_add(ix, 1, far, 0));
    tu_ok(hnswc_get_info(ix, &after));
    assert_true(after.codes_clipped >= dim);
    tu_ok(hnswc_get_vector(ix, 1, v));
    for (size_t d = 0; d < dim; d++)
        assert_true(v[d] <= 1.0f + (float)step); /* the range's end, not 4 */

    /* deletion marks, removal and slot reuse, compact */
    tu_ok(hnswc_mark_deleted(ix, tu_label_of(10)));
    tu_ok(hnswc_search(ix, data + 10 * dim, K, 50, NULL, NULL, labels, dists, &found));
    for (size_t i = 0; i < found; i++)
        assert_true(labels[i] != tu_label_of(10));
    for (size_t i = 20; i < 60; i++)
        tu_ok(hnswc_remove(ix, tu_label_of(i)));
    for (size_t i = 20; i < 60; i++) /* back, into the freed slots */
        tu_ok(hnswc_add(ix, tu_label_of(i), data + i * dim, 0));
    size_t removed = 0;
    tu_ok(hnswc_compact(ix, 2, &removed));
    assert_int_equal(removed, 1);
    for (size_t q = 20; q < 60; q += 7) {
        tu_ok(hnswc_search(ix, data + q * dim, 1, 50, NULL, NULL, labels, dists, &found));
        assert_int_equal(found, 1);
        assert_int_equal(labels[0], tu_label_of(q));
    }

    /* exact and range search: by the decoded vectors, consistently; a
     * search whose ef covers every element is the exact one (hnswc.h) */
    uint64_t el[K];
    float ed[K];
    size_t ef;
    tu_ok(hnswc_search_exact(ix, data + 30 * dim, K, NULL, NULL, el, ed, &ef));
    tu_ok(hnswc_search(ix, data + 30 * dim, K, (size_t)1 << 20, NULL, NULL, labels, dists,
                       &found));
    assert_int_equal(ef, K);
    assert_int_equal(found, K);
    assert_memory_equal(ed, dists, K * sizeof *ed); /* k-th distance and all */
    hnswc_range_result rr = {0};
    tu_ok(hnswc_search_range(ix, data + 30 * dim, ed[K - 1], 400, NULL, NULL, &rr));
    assert_true(rr.count >= K);
    for (size_t i = 0; i < rr.count; i++) {
        assert_true(rr.distances[i] <= ed[K - 1]);
        tu_ok(hnswc_get_vector(ix, rr.labels[i], v));
        float again;
        tu_ok(hnswc_distance(HNSWC_METRIC_L2, data + 30 * dim, v, dim, &again));
        assert_memory_equal(&again, &rr.distances[i], sizeof again);
    }
    hnswc_range_result_free(&rr);
    free(data);
    hnswc_free(ix);
}

static void test_batch_trains(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(6);
    size_t dim = 8, n = HNSWC_SQ8_TRAIN_MIN;
    float *data = tu_random_vectors(&r, n, dim, -1.f, 1.f);
    hnswc_index *ix = tu_create_storage((uint32_t)dim, HNSWC_METRIC_COSINE, HNSWC_STORAGE_SQ8_ONLY);
    tu_add_rows(ix, data, n, dim, 2);
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.codes_trained, 1);
    double step = step_of(HNSWC_METRIC_COSINE, data, n, dim);
    double rec = check_code_only(ix, HNSWC_METRIC_COSINE, data, n, dim, data, 40, 64, step);
    assert_true(rec >= 0.9);
    free(data);
    hnswc_free(ix);
}

/* Searches, get_vector and info running while adds cross the threshold:
 * the training frees the f32 vectors under the update lock's write side,
 * so no reader may still hold one (ASan: no use after free; TSan-clean
 * by the same lock as SQ8's training). */
typedef struct race {
    hnswc_index *ix;
    const float *data;
    size_t dim;
    atomic_int stop;
    atomic_size_t added;
} race;

static void *race_reader(void *arg)
{
    race *r = arg;
    uint64_t labels[K];
    float dists[K], v[16];
    size_t found;
    for (size_t i = 0; !atomic_load(&r->stop); i++) {
        size_t have = atomic_load(&r->added);
        TU_WCHECK(hnswc_search(r->ix, r->data + (i % 500) * r->dim, K, 32, NULL, NULL, labels,
                               dists, &found));
        for (size_t j = 1; j < found; j++)
            if (dists[j] < dists[j - 1])
                tu_record("distances out of order");
        if (have > 0)
            TU_WCHECK(hnswc_get_vector(r->ix, tu_label_of(i % have), v));
    }
    return NULL;
}

static void test_training_under_readers(void **s)
{
    (void)s;
    tu_rng rng = tu_rng_make(9);
    size_t dim = 16, n = HNSWC_SQ8_TRAIN_MIN + 200;
    float *data = tu_random_vectors(&rng, n, dim, -1.f, 1.f);
    race r = {tu_create_storage((uint32_t)dim, HNSWC_METRIC_COSINE, HNSWC_STORAGE_SQ8_ONLY), data, dim, 0, 0};
    tu_ok(hnswc_add(r.ix, tu_label_of(0), data, 0));
    atomic_store(&r.added, 1);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, race_reader, &r), 0);
    for (size_t i = 1; i < n; i += 50) { /* batches of 50 on 2 threads */
        size_t m = n - i < 50 ? n - i : 50;
        uint64_t labels[50];
        for (size_t j = 0; j < m; j++)
            labels[j] = tu_label_of(i + j);
        tu_ok(hnswc_add_batch(r.ix, data + i * dim, labels, m, 0, 2, NULL));
        atomic_store(&r.added, i + m);
    }
    atomic_store(&r.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    tu_assert_no_failures();
    hnswc_info info;
    tu_ok(hnswc_get_info(r.ix, &info));
    assert_int_equal(info.codes_trained, 1);
    assert_int_equal(info.count, n);
    free(data);
    hnswc_free(r.ix);
}

static void test_refused(void **s)
{
    (void)s;
    hnswc_options o = {0};
    o.dim = 4;
    o.kind = HNSWC_KIND_FLAT;
    o.storage = HNSWC_STORAGE_SQ8_ONLY;
    hnswc_index *ix = NULL;
    tu_expect_err(hnswc_create(&o, &ix), HNSWC_ERR_INVALID);
    assert_null(ix);
    assert_non_null(strstr(hnswc_errmsg(NULL), "flat"));
    o.kind = HNSWC_KIND_HNSW;
    o.storage = (hnswc_storage)3;
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

/* Changes one byte of a copy of b at `at`, fixes every CRC and expects
 * the loaders to refuse it. */
static void expect_refused(const unsigned char *b, size_t size, const tu_section *secs,
                           size_t nsec, size_t at, unsigned char value, const char *what)
{
    unsigned char *bad = tu_xmalloc(size);
    memcpy(bad, b, size);
    bad[at] = value;
    tu_fix_crcs(bad, secs, nsec);
    tu_expect_load(bad, size, NULL, HNSWC_ERR_FORMAT, what);
    free(bad);
}

static void test_round_trip(void **s)
{
    (void)s;
    for (int trained = 0; trained < 2; trained++) {
        for (int m = 0; m < 3; m++) {
            tu_rng r = tu_rng_make(40 + (uint64_t)m);
            size_t dim = 13, n = trained ? HNSWC_SQ8_TRAIN_MIN + 100 : 300;
            float *data = tu_random_vectors(&r, n, dim, -1.f, 2.f);
            hnswc_index *ix = tu_create_storage((uint32_t)dim, (hnswc_metric)m, HNSWC_STORAGE_SQ8_ONLY);
            tu_add_rows(ix, data, n, dim, 1);
            tu_ok(hnswc_mark_deleted(ix, tu_label_of(3)));
            tu_ok(hnswc_remove(ix, tu_label_of(4)));

            char *dir = tu_mkdtemp(), *path = tu_path(dir, "sq8only.hnswc");
            tu_ok(hnswc_save(ix, path));
            size_t fsize;
            unsigned char *file = tu_read_file(path, &fsize);
            assert_non_null(file);
            uint32_t version;
            memcpy(&version, file + 8, 4);
            assert_int_equal(version, 4); /* every graph is written as version 4 */
            tu_section secs[8];
            size_t nsec = tu_parse_sections(file, fsize, secs, 8);
            assert_int_equal(nsec, 6);
            assert_string_equal(secs[2].tag, trained ? "CODE" : "VECS");
            if (trained) /* CODE: rows of dim bytes, never padded */
                assert_int_equal(secs[2].len, (n - 1) * dim);
            else /* VECS: padded to a 64-byte offset, rows of 13 floats padded to 64 bytes */
                assert_int_equal(secs[2].len,
                                 (64 - secs[2].payload % 64) % 64 + (n - 1) * 64);

            hnswc_index *back = NULL, *mapped = NULL;
            tu_ok(hnswc_load(path, &back));
            tu_ok(hnswc_open(path, HNSWC_OPEN_MMAP, &mapped));
            hnswc_info info;
            tu_ok(hnswc_get_info(mapped, &info));
            assert_int_equal(info.mapped_bytes, 0);
            tu_ok(hnswc_get_info(back, &info));
            assert_int_equal(info.storage, HNSWC_STORAGE_SQ8_ONLY);
            assert_int_equal(info.codes_trained, trained);
            assert_int_equal(info.deleted_count, 1);
            assert_int_equal(info.count, n - 1);
            same_results(ix, back, data, 30, dim);
            same_results(ix, mapped, data, 30, dim);

            size_t size = 0, size2 = 0;
            unsigned char *buf = tu_serialized(ix, &size);
            assert_int_equal(size, fsize);
            assert_memory_equal(buf, file, size);
            hnswc_index *back2 = NULL;
            tu_ok(hnswc_deserialize(buf, size, &back2));
            unsigned char *buf2 = tu_serialized(back2, &size2);
            assert_int_equal(size, size2);
            assert_memory_equal(buf, buf2, size);
            same_results(ix, back2, data, 30, dim);
            /* and it keeps working: adds after a load */
            tu_ok(hnswc_add(back2, 77, data, 0));

            /* hostile: QUAN's trained flag flipped (CODE without a trained
             * quantiser, or a trained code-only index with f32 vectors) */
            const tu_section *quan = tu_find_section(secs, nsec, "QUAN");
            expect_refused(buf, size, secs, nsec, quan->payload, (unsigned char)!trained,
                           "code-only: trained flag against the vectors section");
            /* a storage value no library knows */
            expect_refused(buf, size, secs, nsec, secs[0].payload + 20, 3, "storage 3");
            /* a truncated vectors section */
            tu_expect_load(buf, size - 7, NULL, HNSWC_ERR_FORMAT, "truncated code-only file");

            free(buf);
            free(buf2);
            free(file);
            hnswc_free(back);
            hnswc_free(back2);
            hnswc_free(mapped);
            hnswc_free(ix);
            free(path);
            tu_rmdir(dir);
            free(data);
        }
    }
}

/* An SQ8 file relabelled code-only: a trained quantiser with f32 vectors
 * (VECS) is not a code-only index and is refused, not half-loaded. */
static void test_sq8_file_is_not_code_only(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(3);
    size_t dim = 6, n = HNSWC_SQ8_TRAIN_MIN;
    float *data = tu_random_vectors(&r, n, dim, 0.f, 1.f);
    hnswc_index *ix = tu_create_storage((uint32_t)dim, HNSWC_METRIC_L2, HNSWC_STORAGE_SQ8);
    tu_add_rows(ix, data, n, dim, 1);
    size_t size;
    unsigned char *buf = tu_serialized(ix, &size);
    tu_section secs[8];
    size_t nsec = tu_parse_sections(buf, size, secs, 8);
    expect_refused(buf, size, secs, nsec, secs[0].payload + 20, HNSWC_STORAGE_SQ8_ONLY,
                   "trained SQ8 file marked code-only");
    free(buf);
    free(data);
    hnswc_free(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fmnist_l2),
        cmocka_unit_test(test_real_l2),
        cmocka_unit_test(test_real_ip),
        cmocka_unit_test(test_real_cosine),
        cmocka_unit_test(test_training_threshold),
        cmocka_unit_test(test_batch_trains),
        cmocka_unit_test(test_training_under_readers),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_sq8_file_is_not_code_only),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
