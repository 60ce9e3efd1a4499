/*
 * test_bounds.c -- sizes from a caller or a file are bounded by what the
 * index can use (issue 13, defects 1 and 2).
 *
 *  - A search's or an insert's scratch grows with what it holds, never with
 *    ef or ef_construction: the largest values the API accepts (2^31), from
 *    hnswc_create, hnswc_set_ef, a search's ef argument, an hnswc file or an
 *    hnswlib file, cost an index of 50 elements no more memory than ef 10,
 *    and every search and add succeeds. (They used to make every search and
 *    add ask for 16 GiB and fail with HNSWC_ERR_NOMEM.)
 *  - ef_construction above the element count buys nothing: an index built
 *    with ef_construction 2^31 is the same graph, link for link, as one
 *    built with ef_construction = its element count.
 *  - Parameters beyond what the API accepts are rejected, from the API with
 *    HNSWC_ERR_INVALID, from a file with HNSWC_ERR_FORMAT and a message
 *    naming the field and the limit.
 *
 * Memory is measured with hnswc_get_info's memory_bytes, which counts the
 * pooled search scratch, so a regression shows even where the operating
 * system would have let a 16 GiB allocation succeed.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 4, N = 50, K = 5 };
#define EF_MAX ((size_t)1 << 31)
/* Scratch for N elements is a few kilobytes; allow generous slack. */
#define SLACK (256u << 10)

static float *data;

static int setup(void **s) {
    (void)s;
    tu_rng r = tu_rng_make(13);
    data = tu_random_vectors(&r, N, DIM, -1.f, 1.f);
    return 0;
}

static int teardown(void **s) {
    (void)s;
    free(data);
    return 0;
}

static uint64_t memory_of(const hnswc_index *ix) {
    hnswc_info in;
    tu_ok(hnswc_get_info(ix, &in));
    return in.memory_bytes;
}

/* Searches every row with ef (0: the index's default) and checks each finds
 * itself first; returns the memory the index holds afterwards. */
static uint64_t search_all(const hnswc_index *ix, size_t ef) {
    for (size_t i = 0; i < N; i++) {
        uint64_t labels[K];
        float dists[K];
        size_t found = 0;
        tu_ok(hnswc_search(ix, data + i * DIM, K, ef, NULL, NULL, labels, dists, &found));
        assert_int_equal(found, K);
        assert_int_equal(labels[0], tu_label_of(i));
        assert_true(dists[0] == 0.0f);
    }
    return memory_of(ix);
}

/* hnswc's format (src/persist.c): the PARM payload starts at byte 40 (a
 * 24-byte header, a 16-byte section head) and is 72 bytes in the version
 * hnswc_save writes (4), its CRC after. */
enum { PARM = 40, PARM_M = PARM + 8, PARM_EFC = PARM + 12, PARM_EF = PARM + 16 };

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

static void set_parm(unsigned char *b, size_t at, uint32_t v) {
    put32(b + at, v);
    put32(b + PARM + 72, tu_crc32c(b + PARM, 72));
}

/* ------------------------------------------------------------------------
 * From the API
 * ------------------------------------------------------------------------ */

static void test_huge_ef_construction(void **s) {
    (void)s;
    /* the same data, ef_construction = N and 2^31 */
    hnswc_index *small = tu_create(DIM, HNSWC_METRIC_L2, 4, N, 3, 0);
    hnswc_index *huge = tu_create(DIM, HNSWC_METRIC_L2, 4, (uint32_t)EF_MAX, 3, 0);
    uint64_t before = memory_of(huge);
    tu_add_rows(small, data, N, DIM, 1);
    tu_add_rows(huge, data, N, DIM, 1); /* used to fail: NOMEM on every add */
    uint64_t after = memory_of(huge);
    if (after > before + SLACK + (uint64_t)N * 1024)
        fail_msg("50 adds with ef_construction 2^31 grew the index from %llu to %llu bytes",
                 (unsigned long long)before, (unsigned long long)after);

    /* the same graph: only the ef_construction field of the files differs */
    size_t ns, nh;
    unsigned char *bs = tu_serialized(small, &ns), *bh = tu_serialized(huge, &nh);
    assert_int_equal(ns, nh);
    set_parm(bh, PARM_EFC, N);
    assert_memory_equal(bs, bh, ns);
    free(bs);
    free(bh);

    search_all(huge, 0);
    hnswc_free(small);
    hnswc_free(huge);
}

static void test_huge_ef(void **s) {
    (void)s;
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 4, 32, 3, 0);
    tu_add_rows(ix, data, N, DIM, 1);
    uint64_t base = search_all(ix, 10);

    /* as a search's argument, and as the index's default */
    uint64_t m = search_all(ix, EF_MAX);
    if (m > base + SLACK)
        fail_msg("searches with ef 2^31 grew the index from %llu to %llu bytes",
                 (unsigned long long)base, (unsigned long long)m);
    tu_ok(hnswc_set_ef(ix, EF_MAX));
    m = search_all(ix, 0);
    if (m > base + SLACK)
        fail_msg("set_ef(2^31) grew the index from %llu to %llu bytes", (unsigned long long)base,
                 (unsigned long long)m);

    /* a batch of searches on two threads */
    uint64_t labels[N * K];
    float dists[N * K];
    size_t found[N];
    tu_ok(hnswc_search_batch(ix, data, N, K, EF_MAX, NULL, NULL, 2, labels, dists, found));
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(found[i], K);
        assert_int_equal(labels[i * K], tu_label_of(i));
    }

    /* k far above the element count: every element, nothing more */
    enum { BIGK = 100000 };
    uint64_t *bl = tu_xmalloc(BIGK * sizeof *bl);
    float *bd = tu_xmalloc(BIGK * sizeof *bd);
    size_t n = 0;
    tu_ok(hnswc_search(ix, data, BIGK, 0, NULL, NULL, bl, bd, &n));
    assert_int_equal(n, N);
    tu_ok(hnswc_search_exact(ix, data, BIGK, NULL, NULL, bl, bd, &n));
    assert_int_equal(n, N);
    free(bl);
    free(bd);

    /* above what the API accepts: rejected, nothing changed */
    tu_expect_err(hnswc_set_ef(ix, (size_t)1 << 40), HNSWC_ERR_INVALID);
    hnswc_info in;
    tu_ok(hnswc_get_info(ix, &in));
    assert_int_equal(in.ef_search, EF_MAX);
    uint64_t l;
    float d;
    tu_expect_err(hnswc_search(ix, data, 1, (size_t)1 << 40, NULL, NULL, &l, &d, &n),
                  HNSWC_ERR_INVALID);
    hnswc_options o = {0};
    o.dim = DIM;
    o.ef_construction = (uint32_t)EF_MAX + 1;
    hnswc_index *bad = NULL;
    tu_expect_err(hnswc_create(&o, &bad), HNSWC_ERR_INVALID);
    assert_null(bad);
    hnswc_free(ix);
}

/* SQ8 storage walks on codes and re-ranks the whole beam in f32: the beam is
 * bounded the same way. */
static void test_huge_ef_sq8(void **s) {
    (void)s;
    enum { NS = HNSWC_SQ8_TRAIN_MIN + 24 };
    tu_rng r = tu_rng_make(17);
    float *v = tu_random_vectors(&r, NS, DIM, -1.f, 1.f);
    hnswc_options o = {0};
    o.dim = DIM;
    o.M = 8;
    o.ef_construction = (uint32_t)EF_MAX;
    o.storage = HNSWC_STORAGE_SQ8;
    hnswc_index *ix = NULL;
    tu_ok(hnswc_create(&o, &ix));
    tu_add_rows(ix, v, NS, DIM, 1);
    hnswc_info in;
    tu_ok(hnswc_get_info(ix, &in));
    assert_int_equal(in.codes_trained, 1);
    uint64_t labels[K], exact[K];
    float dists[K], edists[K];
    size_t found, efound;
    tu_ok(hnswc_search(ix, v, K, 10, NULL, NULL, labels, dists, &found));
    uint64_t base = memory_of(ix);
    tu_ok(hnswc_search(ix, v, K, EF_MAX, NULL, NULL, labels, dists, &found));
    uint64_t m = memory_of(ix);
    if (m > base + SLACK + (uint64_t)NS * 32)
        fail_msg("an SQ8 search with ef 2^31 grew the index from %llu to %llu bytes",
                 (unsigned long long)base, (unsigned long long)m);
    /* ef >= the count: exact, the re-rank in f32 */
    tu_ok(hnswc_search_exact(ix, v, K, NULL, NULL, exact, edists, &efound));
    assert_int_equal(found, efound);
    assert_memory_equal(dists, edists, found * sizeof *dists);
    hnswc_free(ix);
    free(v);
}

/* ------------------------------------------------------------------------
 * From files
 * ------------------------------------------------------------------------ */

/* A small hnswc file with ef_construction and ef_search at 2^31 (the
 * issue's 708-byte file did this): loads, and searches and adds work in
 * bounded memory. */
static void test_file_huge_ef(void **s) {
    (void)s;
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 4, 32, 3, 0);
    tu_add_rows(ix, data, N, DIM, 1);
    size_t size;
    unsigned char *b = tu_serialized(ix, &size);
    hnswc_free(ix);
    set_parm(b, PARM_EFC, (uint32_t)EF_MAX);
    set_parm(b, PARM_EF, (uint32_t)EF_MAX);

    hnswc_index *back = NULL;
    tu_ok(hnswc_deserialize(b, size, &back));
    uint64_t base = memory_of(back);
    uint64_t m = search_all(back, 0);
    float v[DIM] = {0.25f, 0.5f, 0.75f, 1.0f};
    tu_ok(hnswc_add(back, 424242, v, 0));
    tu_ok(hnswc_add(back, tu_label_of(3), v, 0)); /* an update relinks */
    m = memory_of(back);
    if (m > base + SLACK)
        fail_msg("a file with ef 2^31 grew the index from %llu to %llu bytes",
                 (unsigned long long)base, (unsigned long long)m);
    hnswc_free(back);
    free(b);
}

static void expect_format(const unsigned char *b, size_t size, const char *field) {
    hnswc_index *ix = NULL;
    tu_expect_err(hnswc_deserialize(b, size, &ix), HNSWC_ERR_FORMAT);
    assert_null(ix);
    if (strstr(hnswc_errmsg(NULL), field) == NULL)
        fail_msg("the message \"%s\" does not name %s", hnswc_errmsg(NULL), field);
}

/* Beyond what hnswc_create accepts: rejected, the message names the field. */
static void test_file_out_of_bounds(void **s) {
    (void)s;
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 4, 32, 3, 0);
    tu_add_rows(ix, data, N, DIM, 1);
    size_t size;
    unsigned char *b = tu_serialized(ix, &size);
    hnswc_free(ix);
    static const struct {
        size_t at;
        uint32_t value;
        const char *field;
    } cases[] = {
        {PARM_EFC, (uint32_t)EF_MAX + 1, "ef_construction"},
        {PARM_EFC, UINT32_MAX, "ef_construction"},
        {PARM_EFC, 0, "ef_construction"},
        {PARM_EF, (uint32_t)EF_MAX + 1, "ef_search"},
        {PARM_EF, 0, "ef_search"},
        {PARM, 0, "dim"},
        {PARM, 65537, "dim"},
        {PARM_M, 4097, "M"},
        {PARM_M, 1, "M"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        unsigned char *m = tu_xmalloc(size);
        memcpy(m, b, size);
        set_parm(m, cases[c].at, cases[c].value);
        expect_format(m, size, cases[c].field);
        free(m);
    }
    free(b);
}

/* hnswlib's header (src/hnswlib_import.c): ef_construction is the size_t
 * at byte 88. No checksum. */
static unsigned char *hnswlib_fixture(size_t *size, char **path_out, char **dir_out) {
    const char *d = getenv("HNSWC_TEST_DATA");
    if (d == NULL)
        fail_msg("HNSWC_TEST_DATA is not set (make test-c sets it)");
    char *p = tu_path(d, "hnswlib-l2-d8.bin");
    unsigned char *b = tu_read_file(p, size);
    assert_non_null(b);
    free(p);
    *dir_out = tu_mkdtemp();
    *path_out = tu_path(*dir_out, "patched.bin");
    return b;
}

static void test_hnswlib_file_ef(void **s) {
    (void)s;
    size_t size;
    char *path, *dir;
    unsigned char *b = hnswlib_fixture(&size, &path, &dir);
    uint64_t efc = EF_MAX;
    memcpy(b + 88, &efc, 8);
    tu_write_file(path, b, size);
    hnswc_index *ix = NULL;
    tu_ok(hnswc_load_hnswlib(path, HNSWC_METRIC_L2, &ix));
    uint64_t base = memory_of(ix);
    float v[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    uint64_t l[K];
    float dd[K];
    size_t found;
    tu_ok(hnswc_add(ix, 31337, v, 0)); /* used to fail: NOMEM */
    tu_ok(hnswc_search(ix, v, K, EF_MAX, NULL, NULL, l, dd, &found));
    assert_int_equal(found, K);
    assert_int_equal(l[0], 31337);
    uint64_t m = memory_of(ix);
    if (m > base + SLACK)
        fail_msg("an hnswlib file with ef_construction 2^31 grew the index from %llu to %llu",
                 (unsigned long long)base, (unsigned long long)m);
    hnswc_free(ix);

    /* above 2^31: rejected, naming the field */
    const uint64_t bad[] = {EF_MAX + 1, (uint64_t)1 << 40, UINT64_MAX, 0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(b + 88, &bad[i], 8);
        tu_write_file(path, b, size);
        ix = NULL;
        tu_expect_err(hnswc_load_hnswlib(path, HNSWC_METRIC_L2, &ix), HNSWC_ERR_FORMAT);
        assert_null(ix);
        if (strstr(hnswc_errmsg(NULL), "ef_construction") == NULL)
            fail_msg("the message \"%s\" does not name ef_construction", hnswc_errmsg(NULL));
    }
    free(b);
    free(path);
    tu_rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huge_ef_construction),
        cmocka_unit_test(test_huge_ef),
        cmocka_unit_test(test_huge_ef_sq8),
        cmocka_unit_test(test_file_huge_ef),
        cmocka_unit_test(test_file_out_of_bounds),
        cmocka_unit_test(test_hnswlib_file_ef),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
