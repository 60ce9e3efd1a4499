/*
 * test_api.c -- the smaller parts of the contract: version and status
 * strings, hnswc_distance against hand-computed values, hnswc_get_info,
 * hnswc_get_labels, hnswc_get_graph_stats, growth from capacity 1,
 * determinism of single-threaded builds, and the batch calls (add_batch,
 * search_batch) against their one-at-a-time equivalents.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 16, K = 10 };

/* ------------------------------------------------------------------------
 * Version and status strings
 * ------------------------------------------------------------------------ */

static void test_version_and_strings(void **s)
{
    (void)s;
    assert_string_equal(hnswc_version(), HNSWC_VERSION);
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", HNSWC_VERSION_MAJOR, HNSWC_VERSION_MINOR,
             HNSWC_VERSION_PATCH);
    assert_string_equal(buf, HNSWC_VERSION);
    assert_int_equal(HNSWC_VERSION_NUMBER,
                     HNSWC_VERSION_MAJOR * 10000 + HNSWC_VERSION_MINOR * 100 + HNSWC_VERSION_PATCH);

    /* Every code has its own non-empty string; unknown codes too get one. */
    for (int a = 0; a <= HNSWC_ERR_FULL; a++) {
        const char *sa = hnswc_status_string((hnswc_status)a);
        assert_non_null(sa);
        assert_true(sa[0] != '\0');
        for (int b = 0; b < a; b++)
            assert_string_not_equal(sa, hnswc_status_string((hnswc_status)b));
    }
    assert_non_null(hnswc_status_string((hnswc_status)999));
    assert_non_null(hnswc_status_string((hnswc_status)-1));

    const char *simd = hnswc_simd_name();
    assert_non_null(simd);
    assert_true(strcmp(simd, "avx512") == 0 || strcmp(simd, "avx2") == 0 ||
                strcmp(simd, "sse2") == 0 || strcmp(simd, "neon") == 0 ||
                strcmp(simd, "scalar") == 0);
}

/* ------------------------------------------------------------------------
 * hnswc_distance: hnswlib's definitions (l2 squared, ip 1 - dot,
 * cosine 1 - cos) on hand-computed values, then on random vectors of every
 * length 1..70 (every SIMD tail) against the double loop.
 * ------------------------------------------------------------------------ */

static float dist_of(hnswc_metric m, const float *a, const float *b, size_t dim)
{
    float d = NAN;
    tu_ok(hnswc_distance(m, a, b, dim, &d));
    return d;
}

static void test_distance_values(void **s)
{
    (void)s;
    const float a[3] = {1, 2, 3}, b[3] = {4, 6, 3};
    assert_float_equal(dist_of(HNSWC_METRIC_L2, a, b, 3), 25.f, 0); /* squared, not 5 */
    assert_float_equal(dist_of(HNSWC_METRIC_L2, a, a, 3), 0.f, 0);
    assert_float_equal(dist_of(HNSWC_METRIC_IP, a, b, 3), 1.f - 25.f, 0); /* 1 - (4+12+9) */
    const float x[2] = {3, 4}, y[2] = {-4, 3}, z[2] = {6, 8}, w[2] = {-3, -4}, o[2] = {0, 0};
    assert_float_equal(dist_of(HNSWC_METRIC_IP, x, y, 2), 1.f, 0);
    assert_float_equal(dist_of(HNSWC_METRIC_COSINE, x, y, 2), 1.f, 1e-6);  /* orthogonal */
    assert_float_equal(dist_of(HNSWC_METRIC_COSINE, x, z, 2), 0.f, 1e-6);  /* parallel */
    assert_float_equal(dist_of(HNSWC_METRIC_COSINE, x, w, 2), 2.f, 1e-6);  /* opposite */
    assert_float_equal(dist_of(HNSWC_METRIC_COSINE, x, o, 2), 1.f, 1e-6);  /* zero vector */
    assert_float_equal(dist_of(HNSWC_METRIC_COSINE, o, o, 2), 1.f, 1e-6);
    const float u[4] = {1, 1, 1, 1}, v[4] = {1, 0, 0, 0};
    assert_float_equal(dist_of(HNSWC_METRIC_COSINE, u, v, 4), 0.5f, 1e-6); /* cos = 1/2 */
    assert_float_equal(dist_of(HNSWC_METRIC_IP, u, v, 4), 0.f, 0);
    assert_float_equal(dist_of(HNSWC_METRIC_L2, u, v, 4), 3.f, 0);

    tu_rng r = tu_rng_make(5);
    for (size_t dim = 1; dim <= 70; dim++) {
        float *p = tu_random_vectors(&r, 2, dim, -2.f, 2.f);
        for (int m = 0; m < 3; m++) {
            float got = dist_of((hnswc_metric)m, p, p + dim, dim);
            double want = tu_exact_dist((hnswc_metric)m, p, p + dim, dim);
            if (!tu_dist_close(got, want))
                fail_msg("hnswc_distance metric %d dim %zu: %.9g, exact %.9g", m, dim,
                         (double)got, want);
        }
        free(p);
    }
}

/* ------------------------------------------------------------------------
 * hnswc_get_info and defaults
 * ------------------------------------------------------------------------ */

/*
 * What an F32 element costs (issue 7: no more than hnswlib's 3,276-byte
 * record plus its side tables on Fashion-MNIST): an index reserving 3,072
 * ids against one reserving 1,024 holds 2,048 more records and vectors and
 * 6,144 more label-map slots (the map is reserved for twice the capacity,
 * in powers of two). At dim 784 and M 16 a record is 152 bytes (header 20,
 * layer-0 list 132), a vector 3,136 apart from it, a slot 5 bytes (id and
 * hash tag; the label stays in the record). Before: 3,328-byte records
 * (the vector inside, 64-byte aligned) and 12-byte slots. Nothing is added:
 * memory_bytes counts what was allocated, touched or not.
 */
static void test_f32_bytes_per_element(void **s)
{
    (void)s;
    uint64_t mem[2];
    for (int i = 0; i < 2; i++) {
        hnswc_options o;
        memset(&o, 0, sizeof o);
        o.dim = 784;
        o.M = 16;
        o.capacity = i ? 3072 : 1024; /* chunks 0, and 0 and 1 */
        hnswc_index *ix = NULL;
        tu_ok(hnswc_create(&o, &ix));
        hnswc_info info;
        tu_ok(hnswc_get_info(ix, &info));
        assert_int_equal(info.capacity, o.capacity);
        mem[i] = info.memory_bytes;
        hnswc_free(ix);
    }
    assert_true(mem[1] - mem[0] <= 2048u * (152u + 3136u) + 6144u * 5u);
}

static void test_info(void **s)
{
    (void)s;
    hnswc_options o;
    memset(&o, 0, sizeof o);
    o.dim = 7;
    hnswc_index *ix = NULL;
    tu_ok(hnswc_create(&o, &ix));
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    /* Zero means the documented default. */
    assert_int_equal(info.dim, 7);
    assert_int_equal(info.metric, HNSWC_METRIC_L2);
    assert_int_equal(info.M, 16);
    assert_int_equal(info.ef_construction, 200);
    assert_int_equal(info.ef_search, 10);
    assert_int_equal(info.seed, 100);
    assert_int_equal(info.count, 0);
    assert_int_equal(info.live_count, 0);
    assert_int_equal(info.deleted_count, 0);
    assert_true(info.capacity >= 1024);
    assert_int_equal(info.max_level, -1);
    assert_true(info.memory_bytes > 0);
    assert_non_null(info.simd);
    assert_string_equal(info.simd, hnswc_simd_name());
    hnswc_free(ix);

    /* Explicit values are kept. */
    o.dim = 65536;
    o.metric = HNSWC_METRIC_COSINE;
    o.M = 2;
    o.ef_construction = 7;
    o.ef_search = 33;
    o.seed = 12345;
    o.capacity = 3;
    tu_ok(hnswc_create(&o, &ix));
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.dim, 65536);
    assert_int_equal(info.metric, HNSWC_METRIC_COSINE);
    assert_int_equal(info.M, 2);
    assert_int_equal(info.ef_construction, 7);
    assert_int_equal(info.ef_search, 33);
    assert_int_equal(info.seed, 12345);
    assert_true(info.capacity >= 3);
    hnswc_free(ix);

    o.dim = DIM;
    o.M = 2048;
    o.capacity = 0;
    tu_ok(hnswc_create(&o, &ix));
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.M, 2048);
    /* set_ef and reserve show in the info; reserve never shrinks. */
    tu_ok(hnswc_set_ef(ix, 77));
    tu_ok(hnswc_reserve(ix, 5000));
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.ef_search, 77);
    assert_true(info.capacity >= 5000);
    uint64_t cap = info.capacity, mem = info.memory_bytes;
    tu_ok(hnswc_reserve(ix, 10));
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.capacity, cap);
    assert_int_equal(info.memory_bytes, mem);
    tu_ok(hnswc_set_ef(ix, (size_t)1 << 31)); /* the top of the range */
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.ef_search, (uint32_t)1 << 31);

    /* After adds: counts, a level, memory grows. */
    tu_rng r = tu_rng_make(1);
    float *data = tu_random_vectors(&r, 100, DIM, 0.f, 1.f);
    tu_add_rows(ix, data, 100, DIM, 1);
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.count, 100);
    assert_int_equal(info.live_count, 100);
    assert_int_equal(info.deleted_count, 0);
    assert_true(info.max_level >= 0);
    assert_true(info.memory_bytes >= mem);
    assert_true(info.memory_bytes >= 100 * DIM * sizeof(float));
    hnswc_free(ix);
    free(data);
}

/* ------------------------------------------------------------------------
 * hnswc_get_labels
 * ------------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_get_labels(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(2);
    size_t n = 500;
    float *data = tu_random_vectors(&r, n, DIM, 0.f, 1.f);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);

    uint64_t *out = tu_xmalloc((n + 1) * sizeof *out);
    size_t written = 99;
    tu_ok(hnswc_get_labels(ix, out, n, &written)); /* empty index */
    assert_int_equal(written, 0);

    tu_add_rows(ix, data, n, DIM, 1);
    tu_ok(hnswc_mark_deleted(ix, tu_label_of(3))); /* deleted ones are listed too */

    /* Too small: INVALID, the needed count, nothing written. */
    for (size_t i = 0; i <= n; i++)
        out[i] = 0xdeadbeef;
    tu_expect_err(hnswc_get_labels(ix, out, n - 1, &written), HNSWC_ERR_INVALID);
    assert_int_equal(written, n);
    for (size_t i = 0; i <= n; i++)
        assert_int_equal(out[i], 0xdeadbeef);
    tu_expect_err(hnswc_get_labels(ix, out, 0, &written), HNSWC_ERR_INVALID);
    assert_int_equal(written, n);

    /* Exactly enough, and more than enough. */
    for (size_t cap = n; cap <= n + 1; cap++) {
        tu_ok(hnswc_get_labels(ix, out, cap, &written));
        assert_int_equal(written, n);
        qsort(out, n, sizeof *out, cmp_u64);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(out[i], tu_label_of(i)); /* tu_label_of is increasing */
    }
    hnswc_free(ix);
    free(out);
    free(data);
}

/* ------------------------------------------------------------------------
 * hnswc_get_graph_stats on a fresh graph of random data
 * ------------------------------------------------------------------------ */

static void test_graph_stats(void **s)
{
    (void)s;
    const uint32_t Ms[] = {4, 16};
    for (size_t mi = 0; mi < 2; mi++) {
        uint32_t M = Ms[mi];
        tu_rng r = tu_rng_make(3);
        size_t n = tu_scaled(5000, 2000);
        float *data = tu_random_vectors(&r, n, DIM, 0.f, 1.f);
        hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, M, 0, 0, 0);

        hnswc_graph_stats g;
        tu_ok(hnswc_get_graph_stats(ix, &g)); /* empty */
        assert_int_equal(g.nodes, 0);
        assert_int_equal(g.links_total, 0);
        assert_int_equal(g.unreachable, 0);

        /* One thread: this is about the statistics of a sound graph (parallel
           builds: test_concurrency.c). */
        tu_add_rows(ix, data, n, DIM, 1);
        hnswc_info info;
        tu_ok(hnswc_get_info(ix, &info));
        memset(&g, 0xff, sizeof g);
        tu_ok(hnswc_get_graph_stats(ix, &g));
        print_message("M=%u n=%zu: levels %u, level 0..2: %llu %llu %llu, degree0 %u..%u "
                      "mean %.2f, unreachable %llu, one-way %llu of %llu\n",
                      M, n, g.levels, (unsigned long long)g.level_counts[0],
                      (unsigned long long)g.level_counts[1], (unsigned long long)g.level_counts[2],
                      g.degree0_min, g.degree0_max, g.degree0_mean,
                      (unsigned long long)g.unreachable, (unsigned long long)g.one_way_links,
                      (unsigned long long)g.links_total);
        assert_int_equal(g.nodes, n);
        assert_int_equal((int32_t)g.levels, info.max_level + 1);
        assert_true(g.levels >= 2 && g.levels <= HNSWC_MAX_LEVELS);
        uint64_t sum = 0;
        for (uint32_t l = 0; l < HNSWC_MAX_LEVELS; l++) {
            if (l >= g.levels)
                assert_int_equal(g.level_counts[l], 0);
            sum += g.level_counts[l];
        }
        assert_int_equal(sum, n);
        assert_true(g.level_counts[g.levels - 1] >= 1);
        /* Levels are geometric with p = 1/M: about n/M nodes reach level 1. */
        double up = (double)(n - g.level_counts[0]) / (double)n;
        assert_true(up > 0.5 / M && up < 2.0 / M);
        /* Layer 0 holds at most 2M links per node, everyone has one, and the
           entry point reaches everything. */
        assert_true(g.degree0_max <= 2 * M);
        assert_true(g.degree0_min >= 1);
        assert_true(g.degree0_mean >= g.degree0_min && g.degree0_mean <= g.degree0_max);
        assert_true(fabs(g.degree0_mean * (double)n - (double)g.links_total) < 1.0);
        if (M >= 16)
            assert_int_equal(g.unreachable, 0);
        else /* a few nodes can lose all in-links to pruning at tiny M */
            assert_true(g.unreachable * 100 < n);
        assert_true(g.one_way_links <= g.links_total);
        hnswc_free(ix);
        free(data);
    }
}

/* ------------------------------------------------------------------------
 * Growth from capacity 1
 * ------------------------------------------------------------------------ */

static void test_growth(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(4);
    size_t n = tu_scaled(5000, 2000);
    float *data = tu_random_vectors(&r, n, DIM, 0.f, 1.f);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 1);
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    assert_true(info.capacity >= 1);
    uint64_t grew = 0, last_cap = info.capacity;
    for (size_t i = 0; i < n; i++) {
        tu_ok(hnswc_add(ix, tu_label_of(i), data + i * DIM, 0));
        tu_ok(hnswc_get_info(ix, &info));
        assert_int_equal(info.count, i + 1);
        assert_true(info.capacity >= info.count);
        if (info.capacity != last_cap)
            grew++;
        last_cap = info.capacity;
    }
    assert_true(grew >= 1);
    /* Everything is there and is its own nearest neighbour. */
    size_t self = 0;
    for (size_t i = 0; i < n; i++) {
        float v[DIM];
        tu_ok(hnswc_get_vector(ix, tu_label_of(i), v));
        assert_memory_equal(v, data + i * DIM, sizeof v);
        uint64_t label;
        float dist;
        size_t found;
        tu_ok(hnswc_search(ix, data + i * DIM, 1, 100, NULL, NULL, &label, &dist, &found));
        self += found == 1 && label == tu_label_of(i) && dist == 0.f;
    }
    print_message("grown from capacity 1 to %llu (%llu growths): %zu of %zu found themselves\n",
                  (unsigned long long)last_cap, (unsigned long long)grew, self, n);
    assert_int_equal(self, n);
    hnswc_free(ix);
    free(data);
}

/* ------------------------------------------------------------------------
 * Determinism: the same seed and a single thread give the same index.
 * ------------------------------------------------------------------------ */

static hnswc_index *build_one_by_one(const float *data, size_t n, uint64_t seed)
{
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 8, 64, seed, 16);
    for (size_t i = 0; i < n; i++)
        tu_ok(hnswc_add(ix, tu_label_of(i), data + i * DIM, 0));
    return ix;
}

static void search_all(const hnswc_index *ix, const float *queries, size_t nq, uint64_t *labels,
                       float *dists)
{
    for (size_t q = 0; q < nq; q++) {
        size_t found;
        tu_ok(hnswc_search(ix, queries + q * DIM, K, 20, NULL, NULL, labels + q * K,
                           dists + q * K, &found));
        assert_int_equal(found, K);
    }
}

static void test_determinism(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(6);
    size_t n = tu_scaled(3000, 1000), nq = 200;
    float *data = tu_random_vectors(&r, n, DIM, 0.f, 1.f);
    float *queries = tu_random_vectors(&r, nq, DIM, 0.f, 1.f);
    uint64_t *l1 = tu_xmalloc(nq * K * sizeof *l1), *l2 = tu_xmalloc(nq * K * sizeof *l2);
    float *d1 = tu_xmalloc(nq * K * sizeof *d1), *d2 = tu_xmalloc(nq * K * sizeof *d2);

    hnswc_index *a = build_one_by_one(data, n, 42);
    hnswc_index *b = build_one_by_one(data, n, 42);
    search_all(a, queries, nq, l1, d1);
    search_all(b, queries, nq, l2, d2);
    assert_memory_equal(l1, l2, nq * K * sizeof *l1);
    assert_memory_equal(d1, d2, nq * K * sizeof *d1);
    hnswc_graph_stats ga, gb;
    tu_ok(hnswc_get_graph_stats(a, &ga));
    tu_ok(hnswc_get_graph_stats(b, &gb));
    assert_memory_equal(ga.level_counts, gb.level_counts, sizeof ga.level_counts);
    assert_int_equal(ga.links_total, gb.links_total);
    /* The same bytes on disk, too. */
    void *ba, *bb;
    size_t sa, sb;
    tu_ok(hnswc_serialize(a, &ba, &sa));
    tu_ok(hnswc_serialize(b, &bb, &sb));
    assert_int_equal(sa, sb);
    assert_memory_equal(ba, bb, sa);
    hnswc_buffer_free(ba);
    hnswc_buffer_free(bb);

    /* add_batch on one thread is the same as adding one by one. */
    hnswc_index *c = tu_create(DIM, HNSWC_METRIC_L2, 8, 64, 42, 16);
    tu_add_rows(c, data, n, DIM, 1);
    search_all(c, queries, nq, l2, d2);
    assert_memory_equal(l1, l2, nq * K * sizeof *l1);
    assert_memory_equal(d1, d2, nq * K * sizeof *d1);

    /* Another seed draws other levels (an index that ignored the seed would
       give identical level counts; results may or may not differ). */
    hnswc_index *d = build_one_by_one(data, n, 43);
    hnswc_graph_stats gd;
    tu_ok(hnswc_get_graph_stats(d, &gd));
    assert_true(memcmp(ga.level_counts, gd.level_counts, sizeof ga.level_counts) != 0 ||
                ga.links_total != gd.links_total);

    hnswc_free(a);
    hnswc_free(b);
    hnswc_free(c);
    hnswc_free(d);
    free(data);
    free(queries);
    free(l1);
    free(l2);
    free(d1);
    free(d2);
}

/* ------------------------------------------------------------------------
 * Batch calls
 * ------------------------------------------------------------------------ */

static int even_rows(uint64_t label, void *user)
{
    size_t row = tu_row_of(label, *(const size_t *)user);
    return row != SIZE_MAX && row % 2 == 0;
}

static int first_three(uint64_t label, void *user)
{
    size_t row = tu_row_of(label, *(const size_t *)user);
    return row < 3;
}

static void test_batches(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(8);
    size_t n = tu_scaled(4000, 1500), nq = tu_scaled(300, 100);
    float *data = tu_random_vectors(&r, n, DIM, 0.f, 1.f);
    float *queries = tu_random_vectors(&r, nq, DIM, 0.f, 1.f);

    /* add_batch on 3 threads: everything added, n_added right. */
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    uint64_t *labels = tu_xmalloc(n * sizeof *labels);
    for (size_t i = 0; i < n; i++)
        labels[i] = tu_label_of(i);
    size_t added = 0;
    tu_ok(hnswc_add_batch(ix, data, labels, n / 2, 0, 3, &added));
    assert_int_equal(added, n / 2);
    tu_ok(hnswc_add_batch(ix, data + (n / 2) * DIM, labels + n / 2, n - n / 2, 0, 0, NULL));
    assert_int_equal(tu_count(ix), n);
    for (size_t i = 0; i < n; i += 7) {
        float v[DIM];
        tu_ok(hnswc_get_vector(ix, labels[i], v));
        assert_memory_equal(v, data + i * DIM, sizeof v);
    }
    /* n = 0 adds nothing. */
    added = 77;
    tu_ok(hnswc_add_batch(ix, data, labels, 0, 0, 2, &added));
    assert_int_equal(added, 0);
    assert_int_equal(tu_count(ix), n);

    /* search_batch == hnswc_search per query, on 1 and on 4 threads (a
       search does not depend on which thread runs it), with and without a
       filter, with and without distances. */
    uint64_t *bl = tu_xmalloc(nq * K * sizeof *bl), *sl = tu_xmalloc(nq * K * sizeof *sl);
    float *bd = tu_xmalloc(nq * K * sizeof *bd), *sd = tu_xmalloc(nq * K * sizeof *sd);
    size_t *bf = tu_xmalloc(nq * sizeof *bf), *sf = tu_xmalloc(nq * sizeof *sf);
    hnswc_filter_fn filters[] = {NULL, even_rows};
    size_t hits = 0;
    for (int fi = 0; fi < 2; fi++) {
        for (size_t q = 0; q < nq; q++)
            tu_ok(hnswc_search(ix, queries + q * DIM, K, 50, filters[fi], &n, sl + q * K,
                               sd + q * K, &sf[q]));
        const unsigned threads[] = {1, 4, 0};
        for (int ti = 0; ti < 3; ti++) {
            memset(bl, 0, nq * K * sizeof *bl);
            tu_ok(hnswc_search_batch(ix, queries, nq, K, 50, filters[fi], &n, threads[ti], bl, bd,
                                     bf));
            assert_memory_equal(bf, sf, nq * sizeof *bf);
            assert_memory_equal(bl, sl, nq * K * sizeof *bl);
            assert_memory_equal(bd, sd, nq * K * sizeof *bd);
            tu_ok(hnswc_search_batch(ix, queries, nq, K, 50, filters[fi], &n, threads[ti], bl,
                                     NULL, bf));
            assert_memory_equal(bl, sl, nq * K * sizeof *bl);
        }
        /* And the results are right. */
        for (size_t q = 0; q < nq && fi == 0; q++) {
            size_t rows[K];
            double td[K];
            size_t tf = tu_brute_knn(HNSWC_METRIC_L2, data, n, DIM, NULL, NULL, NULL,
                                     queries + q * DIM, K, rows, td);
            hits += tu_check_result(HNSWC_METRIC_L2, data, n, DIM, NULL, NULL, NULL,
                                    queries + q * DIM, K, bl + q * K, bd + q * K, bf[q], tf, td);
        }
    }
    double rec = (double)hits / (double)(nq * K);
    print_message("search_batch recall@10 at ef=50: %.4f\n", rec);
    assert_true(rec >= 0.97);

    /* Unfilled entries: UINT64_MAX and +infinity. */
    tu_ok(hnswc_search_batch(ix, queries, nq, K, 50, first_three, &n, 2, bl, bd, bf));
    for (size_t q = 0; q < nq; q++) {
        assert_int_equal(bf[q], 3);
        for (size_t i = 3; i < K; i++) {
            assert_int_equal(bl[q * K + i], UINT64_MAX);
            assert_true(isinf(bd[q * K + i]) && bd[q * K + i] > 0);
        }
    }

    /* A label repeated in a single-threaded batch ends with the last vector. */
    uint64_t rep[3] = {5, 6, 5};
    tu_ok(hnswc_add_batch(ix, queries, rep, 3, 0, 1, NULL));
    assert_int_equal(tu_count(ix), n + 2);
    float v[DIM];
    tu_ok(hnswc_get_vector(ix, 5, v));
    assert_memory_equal(v, queries + 2 * DIM, sizeof v);

    hnswc_free(ix);
    free(data);
    free(queries);
    free(labels);
    free(bl);
    free(sl);
    free(bd);
    free(sd);
    free(bf);
    free(sf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_strings),
        cmocka_unit_test(test_distance_values),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_f32_bytes_per_element),
        cmocka_unit_test(test_get_labels),
        cmocka_unit_test(test_graph_stats),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
