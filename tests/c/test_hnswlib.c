/*
 * test_hnswlib.c -- hnswc_load_hnswlib on files written by hnswlib itself.
 *
 * The fixtures in tests/data (made once by make_hnswlib_fixtures.py with
 * Debian's hnswlib 0.6.2, M=8, 300 vectors of dim 8, every 17th marked
 * deleted) come with hnswlib's own answers to 20 queries. A loaded index
 * must hold the same vectors, labels and deleted marks and give the same
 * answers; it must then save and load in hnswc's format unchanged.
 *
 * hnswlib's format has no magic and no checksum, so the loader can only
 * check consistency: every truncation and a set of inconsistent headers and
 * records must be rejected with HNSWC_ERR_FORMAT, and random damage must
 * never crash it (under ASan this is the loader's fuzz test).
 *
 * The fixture directory comes from HNSWC_TEST_DATA (set by tests/tests.mk).
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Fixtures
 * ------------------------------------------------------------------------ */

typedef struct expect {
    uint32_t n, dim, nq, k;
    uint64_t *labels;
    float *vectors;
    unsigned char *deleted;
    float *queries;
    uint64_t *res_labels;
    float *res_dists;
} expect;

static char *fixture_path(const char *name)
{
    const char *dir = getenv("HNSWC_TEST_DATA");
    if (dir == NULL || *dir == '\0')
        fail_msg("HNSWC_TEST_DATA is not set (run the tests through `make test-c`)");
    return tu_path(dir, name);
}

/* Reads `name` (from HNSWC_TEST_DATA); fails the test if it is missing. */
static unsigned char *read_fixture(const char *name, size_t *size)
{
    char *p = fixture_path(name);
    unsigned char *b = tu_read_file(p, size);
    if (b == NULL)
        fail_msg("cannot read the fixture %s", p);
    free(p);
    return b;
}

static const unsigned char *take(const unsigned char **p, const unsigned char *end, size_t n)
{
    if ((size_t)(end - *p) < n)
        fail_msg("the .expect fixture is truncated");
    const unsigned char *r = *p;
    *p += n;
    return r;
}

static void *copy_out(const unsigned char **p, const unsigned char *end, size_t n)
{
    void *d = tu_xmalloc(n);
    memcpy(d, take(p, end, n), n);
    return d;
}

static expect load_expect(const char *space)
{
    char name[64];
    snprintf(name, sizeof name, "hnswlib-%s-d8.expect", space);
    size_t size;
    unsigned char *b = read_fixture(name, &size);
    const unsigned char *p = b, *end = b + size;
    expect e;
    memcpy(&e.n, take(&p, end, 4), 4);
    memcpy(&e.dim, take(&p, end, 4), 4);
    memcpy(&e.nq, take(&p, end, 4), 4);
    memcpy(&e.k, take(&p, end, 4), 4);
    e.labels = copy_out(&p, end, (size_t)e.n * 8);
    e.vectors = copy_out(&p, end, (size_t)e.n * e.dim * 4);
    e.deleted = copy_out(&p, end, e.n);
    e.queries = copy_out(&p, end, (size_t)e.nq * e.dim * 4);
    e.res_labels = copy_out(&p, end, (size_t)e.nq * e.k * 8);
    e.res_dists = copy_out(&p, end, (size_t)e.nq * e.k * 4);
    assert_true(p == end);
    free(b);
    return e;
}

static void free_expect(expect *e)
{
    free(e->labels);
    free(e->vectors);
    free(e->deleted);
    free(e->queries);
    free(e->res_labels);
    free(e->res_dists);
}

/* ------------------------------------------------------------------------
 * Loading gives hnswlib's index
 * ------------------------------------------------------------------------ */

static void check_loaded(const hnswc_index *ix, const expect *e, hnswc_metric m, const char *what)
{
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    uint64_t ndel = 0;
    for (uint32_t i = 0; i < e->n; i++)
        ndel += e->deleted[i];
    assert_int_equal(info.dim, e->dim);
    assert_int_equal(info.metric, m);
    assert_int_equal(info.M, 8);
    assert_int_equal(info.count, e->n);
    assert_int_equal(info.deleted_count, ndel);
    assert_int_equal(info.live_count, e->n - ndel);
    assert_int_equal(info.max_elements, e->n + 50); /* the file's limit (fixture: N + 50) */

    /* Vectors (normalised for cosine, as hnswlib stores them) and marks. */
    float v[8];
    for (uint32_t i = 0; i < e->n; i++) {
        const float *want = e->vectors + (size_t)i * e->dim;
        tu_ok(hnswc_get_vector(ix, e->labels[i], v));
        double norm = 0;
        for (uint32_t j = 0; j < e->dim; j++)
            norm += (double)want[j] * want[j];
        norm = m == HNSWC_METRIC_COSINE ? sqrt(norm) : 1.0;
        for (uint32_t j = 0; j < e->dim; j++)
            if (fabs(v[j] - want[j] / norm) > 1e-6)
                fail_msg("%s: label %llu component %u: %.9g, expected %.9g", what,
                         (unsigned long long)e->labels[i], j, (double)v[j], want[j] / norm);
        int d;
        tu_ok(hnswc_is_deleted(ix, e->labels[i], &d));
        assert_int_equal(d, e->deleted[i]);
    }

    /* hnswlib's answers, label for label. */
    size_t differ = 0;
    for (uint32_t q = 0; q < e->nq; q++) {
        uint64_t labels[16];
        float dists[16];
        size_t found;
        tu_ok(hnswc_search(ix, e->queries + (size_t)q * e->dim, e->k, 50, NULL, NULL, labels,
                           dists, &found));
        assert_int_equal(found, e->k);
        for (uint32_t i = 0; i < e->k; i++) {
            size_t at = (size_t)q * e->k + i;
            if (labels[i] != e->res_labels[at])
                differ++;
            if (!tu_dist_close(dists[i], e->res_dists[at]))
                fail_msg("%s: query %u result %u: distance %.9g, hnswlib %.9g", what, q, i,
                         (double)dists[i], (double)e->res_dists[at]);
        }
    }
    if (differ)
        fail_msg("%s: %zu of %u result labels differ from hnswlib's", what, differ,
                 e->nq * e->k);
}

static void load_and_check(const char *space, hnswc_metric m)
{
    char name[64];
    snprintf(name, sizeof name, "hnswlib-%s-d8.bin", space);
    char *path = fixture_path(name);
    expect e = load_expect(space);
    hnswc_index *ix = NULL;
    tu_ok(hnswc_load_hnswlib(path, m, &ix));
    check_loaded(ix, &e, m, name);

    /* Into hnswc's own format and back: the same index. */
    void *buf;
    size_t size;
    tu_ok(hnswc_serialize(ix, &buf, &size));
    hnswc_index *again = NULL;
    tu_ok(hnswc_deserialize(buf, size, &again));
    hnswc_buffer_free(buf);
    check_loaded(again, &e, m, "re-serialized");

    /* And it keeps working: a new element is found. */
    float v[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    tu_ok(hnswc_add(again, 999999, v, 0));
    uint64_t label;
    size_t found;
    tu_ok(hnswc_search(again, v, 1, 0, NULL, NULL, &label, NULL, &found));
    assert_int_equal(label, 999999);

    hnswc_free(ix);
    hnswc_free(again);
    free_expect(&e);
    free(path);
}

static void test_load_l2(void **s)
{
    (void)s;
    load_and_check("l2", HNSWC_METRIC_L2);
}

static void test_load_cosine(void **s)
{
    (void)s;
    load_and_check("cosine", HNSWC_METRIC_COSINE);
}

/* ------------------------------------------------------------------------
 * Damaged files
 * ------------------------------------------------------------------------ */

static hnswc_status load_bytes(const char *path, const unsigned char *b, size_t size,
                               hnswc_index **out)
{
    tu_write_file(path, b, size);
    *out = (hnswc_index *)(uintptr_t)0x1;
    hnswc_status st = hnswc_load_hnswlib(path, HNSWC_METRIC_L2, out);
    if (st != HNSWC_OK && *out != NULL)
        fail_msg("hnswc_load_hnswlib failed (%s) but left *out set", hnswc_status_string(st));
    return st;
}

static void test_truncated(void **s)
{
    (void)s;
    size_t size;
    unsigned char *b = read_fixture("hnswlib-l2-d8.bin", &size);
    char *dir = tu_mkdtemp();
    char *p = tu_path(dir, "t.bin");
    /* Every length through the header and the first records, then a
       sample (every 7th) up to the end. */
    size_t tried = 0;
    for (size_t len = 0; len < size; len += len < 1024 ? 1 : 7) {
        hnswc_index *ix;
        hnswc_status st = load_bytes(p, b, len, &ix);
        if (st != HNSWC_ERR_FORMAT)
            fail_msg("hnswlib file truncated to %zu of %zu bytes: %s, expected FORMAT", len, size,
                     hnswc_status_string(st));
        tried++;
    }
    /* Trailing bytes are not hnswlib's either. */
    unsigned char *longer = tu_xmalloc(size + 1);
    memcpy(longer, b, size);
    longer[size] = 0;
    hnswc_index *ix;
    assert_int_equal(load_bytes(p, longer, size + 1, &ix), HNSWC_ERR_FORMAT);
    print_message("%zu truncations of a %zu-byte hnswlib file rejected\n", tried, size);
    free(longer);
    free(b);
    free(p);
    tu_rmdir(dir);
}

static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static uint64_t get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* hnswlib's header: size_t fields at 0..40, int maxlevel at 48, u32 entry at
   52, size_t maxM 56, maxM0 64, M 72, double mult 80 (hnswc derives the
   level multiplier from M, so mult is not checked here), size_t efc 88; the
   element records (size_data_per_element bytes each) from 96. */
enum { H_MAXEL = 8, H_COUNT = 16, H_SIZE = 24, H_LABEL = 32, H_DATA = 40, H_MAXLEVEL = 48,
       H_ENTRY = 52, H_MAXM0 = 64, RECORDS = 96 };

static void test_inconsistent(void **s)
{
    (void)s;
    size_t size;
    unsigned char *b = read_fixture("hnswlib-l2-d8.bin", &size);
    char *dir = tu_mkdtemp();
    char *p = tu_path(dir, "i.bin");
    uint64_t count = get64(b + H_COUNT), rec = get64(b + H_SIZE);
    assert_int_equal(count, 300);
    uint64_t label_off = get64(b + H_LABEL);

    static const char *what[] = {
        "count above max_elements", "count 0 with elements following",
        "record size wrong",        "label offset outside the record",
        "data offset outside the record", "negative max level",
        "max level 200",            "entry point out of range",
        "maxM0 0",                  "maxM0 not 2*M",
        "link count above maxM0",   "link to a missing element",
        "duplicate label",          "offsetLevel0 not 0",
        "NaN in a vector",
    };
    for (size_t c = 0; c < sizeof what / sizeof what[0]; c++) {
        unsigned char *m = tu_xmalloc(size);
        memcpy(m, b, size);
        unsigned char *m0 = m + RECORDS, *m1 = m0 + rec; /* records of elements 0, 1 */
        float nan = NAN;
        switch (c) {
        case 0: put64(m + H_MAXEL, count - 1); break;
        case 1: put64(m + H_COUNT, 0); break;
        case 2: put64(m + H_SIZE, rec + 4); break;
        case 3: put64(m + H_LABEL, rec); break;
        case 4: put64(m + H_DATA, rec - 4); break;
        case 5: put32(m + H_MAXLEVEL, (uint32_t)-1); break;
        case 6: put32(m + H_MAXLEVEL, 200); break;
        case 7: put32(m + H_ENTRY, (uint32_t)count); break;
        case 8: put64(m + H_MAXM0, 0); break;
        case 9: put64(m + H_MAXM0, get64(m + H_MAXM0) - 1); break;
        case 10: put32(m0, (uint32_t)get64(m + H_MAXM0) + 1); break;
        case 11: put32(m0, 1); put32(m0 + 4, (uint32_t)count); break;
        case 12: memcpy(m1 + label_off, m0 + label_off, 8); break;
        case 13: put64(m, 8); break;
        default: memcpy(m0 + get64(m + H_DATA), &nan, 4); break;
        }
        hnswc_index *ix;
        hnswc_status st = load_bytes(p, m, size, &ix);
        if (st != HNSWC_ERR_FORMAT) {
            hnswc_free(st == HNSWC_OK ? ix : NULL);
            fail_msg("hnswlib file with %s: %s, expected FORMAT", what[c],
                     hnswc_status_string(st));
        }
        assert_true(hnswc_errmsg(NULL)[0] != '\0');
        free(m);
    }
    free(b);
    free(p);
    tu_rmdir(dir);
}

/* Random damage: accepted or FORMAT, never a crash; what is accepted works. */
static void test_fuzz(void **s)
{
    (void)s;
    size_t size;
    unsigned char *b = read_fixture("hnswlib-l2-d8.bin", &size);
    char *dir = tu_mkdtemp();
    char *p = tu_path(dir, "f.bin");
    tu_rng r = tu_rng_make(31);
    size_t rounds = tu_scaled(1500, 400), accepted = 0;
    const float q[8] = {0.5f, -0.5f, 0.25f, 0, 1, -1, 0.1f, 0.2f};
    for (size_t i = 0; i < rounds; i++) {
        unsigned char *m = tu_xmalloc(size);
        memcpy(m, b, size);
        size_t changes = 1 + tu_next(&r) % 4;
        for (size_t c = 0; c < changes; c++) {
            /* Half the changes in the header and first records, where the
               structure is. */
            size_t pos = (size_t)(tu_next(&r) % (tu_next(&r) % 2 ? 512 : size));
            m[pos] = tu_next(&r) % 3 ? (unsigned char)tu_next(&r) : m[pos] ^ 0x80;
        }
        hnswc_index *ix;
        hnswc_status st = load_bytes(p, m, size, &ix);
        if (st == HNSWC_OK) {
            accepted++;
            uint64_t labels[10];
            float dists[10];
            size_t found;
            hnswc_info info;
            tu_ok(hnswc_get_info(ix, &info));
            if (info.dim == 8)
                tu_ok(hnswc_search(ix, q, 10, 50, NULL, NULL, labels, dists, &found));
            hnswc_graph_stats g;
            tu_ok(hnswc_get_graph_stats(ix, &g));
            hnswc_free(ix);
        } else if (st != HNSWC_ERR_FORMAT) {
            fail_msg("fuzz round %zu: %s, expected OK or FORMAT", i, hnswc_status_string(st));
        }
        free(m);
    }
    print_message("fuzz: %zu damaged hnswlib files: %zu accepted, %zu rejected\n", rounds,
                  accepted, rounds - accepted);
    free(b);
    free(p);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_l2),
        cmocka_unit_test(test_load_cosine),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_inconsistent),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
