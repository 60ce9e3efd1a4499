/*
 * test_persist.c -- save / load / serialize / deserialize.
 *
 *  - Round trips are exact: the same search results bit for bit, the same
 *    vectors, deleted marks, parameters and counts; saving twice, or saving
 *    a loaded index again, gives the same bytes; serialize gives the file's
 *    bytes.
 *  - Damaged input is always rejected with HNSWC_ERR_FORMAT (never a crash,
 *    never a half-loaded index): every truncation of a small index, single
 *    bit flips at every position, foreign files, a future format version,
 *    and -- with the checksums recomputed, so that only the loader's own
 *    validation stands in the way -- impossible parameters, links and labels.
 *  - Saving is atomic: a failed save leaves nothing behind, a successful one
 *    replaces the old file and leaves no temporary file.
 *
 * The structural tests rely on the file layout documented in
 * docs/ARCHITECTURE.md and src/persist.c (header of 24 bytes, then tagged,
 * length-prefixed, CRC-32C-checked sections); see "File layout" below.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { DIM = 16, K = 10 };

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

/* A random index of n elements with every 7th deleted. */
static hnswc_index *make_index(hnswc_metric m, size_t n, uint32_t dim, uint32_t M,
                               float **data_out)
{
    tu_rng r = tu_rng_make(1234 + n);
    float *data = tu_random_vectors(&r, n, dim, -1.f, 1.f);
    hnswc_index *ix = tu_create(dim, m, M, 0, 0, 0);
    tu_add_rows(ix, data, n, dim, 1);
    for (size_t i = 0; i < n; i += 7)
        tu_ok(hnswc_mark_deleted(ix, tu_label_of(i)));
    if (data_out)
        *data_out = data;
    else
        free(data);
    return ix;
}

/* Everything observable must be equal: info, vectors, deleted marks,
   labels, graph stats and search results (bit for bit). */
static void assert_same_index(const hnswc_index *a, const hnswc_index *b, size_t n, uint32_t dim,
                              const float *queries, size_t nq)
{
    hnswc_info ia, ib;
    tu_ok(hnswc_get_info(a, &ia));
    tu_ok(hnswc_get_info(b, &ib));
    assert_int_equal(ia.dim, ib.dim);
    assert_int_equal(ia.metric, ib.metric);
    assert_int_equal(ia.M, ib.M);
    assert_int_equal(ia.ef_construction, ib.ef_construction);
    assert_int_equal(ia.ef_search, ib.ef_search);
    assert_int_equal(ia.seed, ib.seed);
    assert_int_equal(ia.count, ib.count);
    assert_int_equal(ia.live_count, ib.live_count);
    assert_int_equal(ia.deleted_count, ib.deleted_count);
    assert_int_equal(ia.max_level, ib.max_level);
    assert_true(ib.capacity >= ib.count);

    float *va = tu_xmalloc(dim * sizeof *va), *vb = tu_xmalloc(dim * sizeof *vb);
    for (size_t i = 0; i < n; i++) {
        int da, db;
        hnswc_status sa = hnswc_get_vector(a, tu_label_of(i), va);
        assert_int_equal(hnswc_get_vector(b, tu_label_of(i), vb), sa);
        if (sa != HNSWC_OK)
            continue;
        assert_memory_equal(va, vb, dim * sizeof *va);
        tu_ok(hnswc_is_deleted(a, tu_label_of(i), &da));
        tu_ok(hnswc_is_deleted(b, tu_label_of(i), &db));
        assert_int_equal(da, db);
    }
    free(va);
    free(vb);

    uint64_t *la = tu_xmalloc(ia.count * sizeof *la), *lb = tu_xmalloc(ia.count * sizeof *lb);
    size_t na, nb;
    tu_ok(hnswc_get_labels(a, la, ia.count, &na));
    tu_ok(hnswc_get_labels(b, lb, ib.count, &nb));
    assert_int_equal(na, nb);
    assert_memory_equal(la, lb, na * sizeof *la); /* the same internal order, too */
    free(la);
    free(lb);

    hnswc_graph_stats ga, gb;
    tu_ok(hnswc_get_graph_stats(a, &ga));
    tu_ok(hnswc_get_graph_stats(b, &gb));
    assert_memory_equal(ga.level_counts, gb.level_counts, sizeof ga.level_counts);
    assert_int_equal(ga.links_total, gb.links_total);
    assert_int_equal(ga.one_way_links, gb.one_way_links);

    for (size_t q = 0; q < nq; q++) {
        uint64_t l1[K], l2[K];
        float d1[K], d2[K];
        size_t f1, f2;
        for (size_t ef = 10; ef <= 100; ef += 90) {
            tu_ok(hnswc_search(a, queries + q * dim, K, ef, NULL, NULL, l1, d1, &f1));
            tu_ok(hnswc_search(b, queries + q * dim, K, ef, NULL, NULL, l2, d2, &f2));
            assert_int_equal(f1, f2);
            assert_memory_equal(l1, l2, f1 * sizeof *l1);
            assert_memory_equal(d1, d2, f1 * sizeof *d1);
        }
    }
}

/* ------------------------------------------------------------------------
 * Round trips
 * ------------------------------------------------------------------------ */

static void test_round_trip(void **s)
{
    (void)s;
    const hnswc_metric metrics[3] = {HNSWC_METRIC_L2, HNSWC_METRIC_IP, HNSWC_METRIC_COSINE};
    char *dir = tu_mkdtemp();
    char *p1 = tu_path(dir, "a.hnswc"), *p2 = tu_path(dir, "b.hnswc"), *p3 = tu_path(dir, "c.hnswc");
    size_t n = tu_scaled(3000, 1000), nq = 200;
    tu_rng r = tu_rng_make(55);
    float *queries = tu_random_vectors(&r, nq, DIM, -1.f, 1.f);

    for (int mi = 0; mi < 3; mi++) {
        float *data;
        hnswc_index *a = make_index(metrics[mi], n, DIM, 0, &data);
        tu_ok(hnswc_set_ef(a, 37)); /* the default ef is saved */

        /* File round trip. */
        tu_ok(hnswc_save(a, p1));
        hnswc_index *b = NULL;
        tu_ok(hnswc_load(p1, &b));
        assert_non_null(b);
        assert_same_index(a, b, n, DIM, queries, nq);
        hnswc_info info;
        tu_ok(hnswc_get_info(b, &info));
        assert_int_equal(info.ef_search, 37);

        /* Bytes: twice the same; a loaded index saves to the same bytes;
           serialize gives the file's bytes. */
        tu_ok(hnswc_save(a, p2));
        tu_ok(hnswc_save(b, p3));
        size_t s1, s2, s3, sm;
        unsigned char *f1 = tu_read_file(p1, &s1), *f2 = tu_read_file(p2, &s2),
                      *f3 = tu_read_file(p3, &s3);
        assert_non_null(f1);
        assert_non_null(f2);
        assert_non_null(f3);
        assert_int_equal(s1, s2);
        assert_memory_equal(f1, f2, s1);
        assert_int_equal(s1, s3);
        assert_memory_equal(f1, f3, s1);
        unsigned char *mem = tu_serialized(a, &sm);
        assert_int_equal(sm, s1);
        assert_memory_equal(mem, f1, s1);

        /* Memory round trip. */
        hnswc_index *c = NULL;
        tu_ok(hnswc_deserialize(mem, sm, &c));
        assert_same_index(a, c, n, DIM, queries, nq);
        print_message("metric %d: %zu elements, %zu bytes, identical after save/load and "
                      "serialize/deserialize\n", (int)metrics[mi], n, s1);

        /* A loaded index keeps working: add, update, delete, search. */
        float v[DIM];
        for (int i = 0; i < DIM; i++)
            v[i] = (float)i / DIM;
        tu_ok(hnswc_add(b, 7777777, v, 0));
        tu_ok(hnswc_add(b, tu_label_of(1), v, 0));
        tu_ok(hnswc_unmark_deleted(b, tu_label_of(0)));
        tu_ok(hnswc_mark_deleted(b, tu_label_of(2)));
        tu_ok(hnswc_get_info(b, &info));
        assert_int_equal(info.count, n + 1);
        if (metrics[mi] != HNSWC_METRIC_IP) {
            uint64_t l[2];
            float d[2];
            size_t found;
            tu_ok(hnswc_search(b, v, 2, 50, NULL, NULL, l, d, &found));
            assert_int_equal(found, 2);
            assert_true((l[0] == 7777777 && l[1] == tu_label_of(1)) ||
                        (l[1] == 7777777 && l[0] == tu_label_of(1)));
        }

        hnswc_free(a);
        hnswc_free(b);
        hnswc_free(c);
        free(f1);
        free(f2);
        free(f3);
        free(mem);
        free(data);
    }

    /* An empty index round-trips too. */
    hnswc_index *e = tu_create(5, HNSWC_METRIC_COSINE, 5, 50, 9, 0), *e2 = NULL;
    tu_ok(hnswc_save(e, p1));
    tu_ok(hnswc_load(p1, &e2));
    hnswc_info info;
    tu_ok(hnswc_get_info(e2, &info));
    assert_int_equal(info.count, 0);
    assert_int_equal(info.dim, 5);
    assert_int_equal(info.M, 5);
    assert_int_equal(info.max_level, -1);
    size_t found = 9;
    uint64_t l;
    tu_ok(hnswc_search(e2, queries, 1, 0, NULL, NULL, &l, NULL, &found));
    assert_int_equal(found, 0);
    hnswc_free(e);
    hnswc_free(e2);

    free(queries);
    free(p1);
    free(p2);
    free(p3);
    tu_rmdir(dir);
}

/*
 * The level generator's state is saved: adding to a loaded index gives the
 * same index as never having saved (single thread).
 */
static void test_resume_after_load(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(66);
    size_t n = 1200;
    float *data = tu_random_vectors(&r, n, DIM, 0.f, 1.f);
    hnswc_index *whole = tu_create(DIM, HNSWC_METRIC_L2, 8, 50, 3, 0);
    tu_add_rows(whole, data, n, DIM, 1);

    hnswc_index *half = tu_create(DIM, HNSWC_METRIC_L2, 8, 50, 3, 0);
    tu_add_rows(half, data, n / 2, DIM, 1);
    size_t sz;
    unsigned char *buf = tu_serialized(half, &sz);
    hnswc_free(half);
    tu_ok(hnswc_deserialize(buf, sz, &half));
    free(buf);
    for (size_t i = n / 2; i < n; i++)
        tu_ok(hnswc_add(half, tu_label_of(i), data + i * DIM, 0));

    size_t s1, s2;
    unsigned char *b1 = tu_serialized(whole, &s1), *b2 = tu_serialized(half, &s2);
    assert_int_equal(s1, s2);
    assert_memory_equal(b1, b2, s1);
    free(b1);
    free(b2);
    hnswc_free(whole);
    hnswc_free(half);
    free(data);
}

/* ------------------------------------------------------------------------
 * File layout (docs/ARCHITECTURE.md; the header and sections are parsed by
 * testutil's tu_parse_sections), for the structural tests:
 *   PARM payload: u32 dim, metric, M, ef_construction, ef_search, 0;
 *                 u64 seed, level generator state, count, deleted count, entry.
 *   NODE: per node u64 label, i32 level, u32 flags.
 *   LNK0: per node u32 count, 2*M u32 links.
 * Integers in host order (the byte-order mark says which).
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Truncation and bit flips
 * ------------------------------------------------------------------------ */

static void test_truncated(void **s)
{
    (void)s;
    char *dir = tu_mkdtemp();
    char *p = tu_path(dir, "t.hnswc");
    hnswc_index *ix = make_index(HNSWC_METRIC_L2, 40, 4, 4, NULL);
    size_t size;
    unsigned char *b = tu_serialized(ix, &size);
    hnswc_free(ix);
    tu_expect_load(b, size, p, HNSWC_OK, "the intact file");

    /* Every length short of the whole, in memory and on disk. */
    for (size_t len = 0; len < size; len++) {
        unsigned char *cut = tu_xmalloc(len);
        memcpy(cut, b, len);
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", len, size);
        tu_expect_load(cut, len, len % 3 == 0 ? p : NULL, HNSWC_ERR_FORMAT, what);
        free(cut);
    }
    /* Anything after the last section. */
    unsigned char *longer = tu_xmalloc(size + 8);
    memcpy(longer, b, size);
    memset(longer + size, 0, 8);
    tu_expect_load(longer, size + 1, p, HNSWC_ERR_FORMAT, "one trailing byte");
    tu_expect_load(longer, size + 8, p, HNSWC_ERR_FORMAT, "eight trailing bytes");
    print_message("%zu truncations of a %zu-byte file rejected\n", size, size);
    free(longer);
    free(b);
    free(p);
    tu_rmdir(dir);
}

static void test_bit_flips(void **s)
{
    (void)s;
    char *dir = tu_mkdtemp();
    char *p = tu_path(dir, "f.hnswc");
    hnswc_index *ix = make_index(HNSWC_METRIC_COSINE, 40, 4, 4, NULL);
    size_t size;
    unsigned char *b = tu_serialized(ix, &size);
    hnswc_free(ix);

    /* One bit at every byte (the bit cycles), and a whole-byte change at
       every byte: CRC-32C and the loader's checks catch all of them. The
       accepted positions are collected, so that a failure lists them all. */
    tu_rng r = tu_rng_make(4);
    size_t missed = 0;
    char where[256] = "";
    for (size_t pos = 0; pos < size; pos++) {
        unsigned char keep = b[pos];
        for (int kind = 0; kind < 2; kind++) {
            if (kind == 0)
                b[pos] ^= (unsigned char)(1u << (pos % 8));
            else
                b[pos] = keep ^ (unsigned char)(1 + tu_next(&r) % 255);
            hnswc_index *out = (hnswc_index *)(uintptr_t)0x1;
            hnswc_status st = hnswc_deserialize(b, size, &out);
            if (st == HNSWC_OK) {
                hnswc_free(out);
            } else {
                assert_int_equal(st, HNSWC_ERR_FORMAT);
                assert_null(out);
            }
            if (st == HNSWC_OK && missed++ < 12) {
                size_t len = strlen(where);
                snprintf(where + len, sizeof where - len, " %s@%zu", kind ? "byte" : "bit", pos);
            }
            if (kind == 0 && pos % 5 == 0) {
                tu_write_file(p, b, size);
                out = (hnswc_index *)(uintptr_t)0x1;
                hnswc_status fst = hnswc_load(p, &out);
                assert_int_equal(fst, st); /* the file loader agrees */
                hnswc_free(fst == HNSWC_OK ? out : NULL);
            }
            b[pos] = keep;
        }
    }
    if (missed)
        fail_msg("%zu of %zu corruptions of a %zu-byte file were accepted, at:%s", missed,
                 2 * size, size, where);
    tu_expect_load(b, size, p, HNSWC_OK, "the restored file");
    print_message("%zu single-bit and %zu single-byte corruptions rejected\n", size, size);
    free(b);
    free(p);
    tu_rmdir(dir);
}

/* ------------------------------------------------------------------------
 * Files with valid checksums but impossible contents: only the loader's
 * validation can reject them.
 * ------------------------------------------------------------------------ */

typedef void (*mutator)(unsigned char *b, const tu_section *secs, size_t nsec, uint32_t M);

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint64_t get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

#define PARM(b, secs, n) ((b) + tu_find_section(secs, n, "PARM")->payload)

static void m_version(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)s, (void)n, (void)M;
    put32(b + 8, 5); /* a future format version */
}
static void m_dim0(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    put32(PARM(b, s, n) + 0, 0);
}
static void m_dim_big(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    put32(PARM(b, s, n) + 0, 5); /* the vectors are 4 floats */
}
static void m_metric(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    put32(PARM(b, s, n) + 4, 3);
}
static void m_M1(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    put32(PARM(b, s, n) + 8, 1);
}
static void m_M_other(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    put32(PARM(b, s, n) + 8, M + 1); /* link lists are sized by M */
}
static void m_count_more(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    unsigned char *c = PARM(b, s, n) + 40;
    put64(c, get64(c) + 1);
}
static void m_count_less(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    unsigned char *c = PARM(b, s, n) + 40;
    put64(c, get64(c) - 1);
}
static void m_count_huge(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    put64(PARM(b, s, n) + 40, UINT64_MAX / 3);
}
static void m_max_below_count(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    unsigned char *p = PARM(b, s, n);
    put64(p + 64, get64(p + 40) - 1); /* max_elements one below the count */
}
static void m_deleted_count(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    unsigned char *c = PARM(b, s, n) + 48;
    put64(c, get64(c) + 1);
}
static void m_entry(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    unsigned char *p = PARM(b, s, n);
    put64(p + 56, get64(p + 40)); /* entry point == count: no such node */
}
static void m_dup_label(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    unsigned char *node = b + tu_find_section(s, n, "NODE")->payload;
    memcpy(node + 16, node, 8); /* node 1 gets node 0's label */
}
static void m_level_neg(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    put32(b + tu_find_section(s, n, "NODE")->payload + 8, (uint32_t)-5);
}
static void m_level_big(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    put32(b + tu_find_section(s, n, "NODE")->payload + 8, 1000);
}
static void m_link_range(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    const unsigned char *p = PARM(b, s, n);
    unsigned char *l0 = b + tu_find_section(s, n, "LNK0")->payload;
    put32(l0, 1);                            /* node 0: one link... */
    put32(l0 + 4, (uint32_t)get64(p + 40)); /* ...to node `count` */
}
static void m_link_count(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    put32(b + tu_find_section(s, n, "LNK0")->payload, 2 * M + 1);
}
static void m_link_huge(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    unsigned char *l0 = b + tu_find_section(s, n, "LNK0")->payload;
    put32(l0, 1);
    put32(l0 + 4, UINT32_MAX);
}
static void m_vector_nan(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    float nan = NAN;
    memcpy(b + tu_vecs_first(tu_find_section(s, n, "VECS")) + 4, &nan, 4);
}
static void m_section_len(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    const tu_section *v = tu_find_section(s, n, "VECS");
    put64(b + v->head + 8, (uint64_t)v->len + 4); /* lies about its length */
}
static void m_section_huge(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    put64(b + tu_find_section(s, n, "NODE")->head + 8, UINT64_MAX - 8);
}
static void m_tag(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)M;
    memcpy(b + tu_find_section(s, n, "LNK0")->head, "XXXX", 4);
}
static void m_sections(unsigned char *b, const tu_section *s, size_t n, uint32_t M)
{
    (void)s, (void)n, (void)M;
    put32(b + 16, 6);
}

static void test_invalid_contents(void **s)
{
    (void)s;
    static const struct {
        const char *what;
        mutator fn;
    } cases[] = {
        {"future format version", m_version},
        {"dim 0", m_dim0},
        {"dim larger than the vectors", m_dim_big},
        {"unknown metric", m_metric},
        {"M = 1", m_M1},
        {"M not matching the link lists", m_M_other},
        {"count one more than the nodes", m_count_more},
        {"count one less than the nodes", m_count_less},
        {"count absurdly large", m_count_huge},
        {"more elements than max_elements", m_max_below_count},
        {"deleted count wrong", m_deleted_count},
        {"entry point out of range", m_entry},
        {"duplicate label", m_dup_label},
        {"negative level", m_level_neg},
        {"level 1000", m_level_big},
        {"link to a node that does not exist", m_link_range},
        {"link count above 2M", m_link_count},
        {"link UINT32_MAX", m_link_huge},
        {"NaN in a stored vector", m_vector_nan},
        {"tu_section length wrong", m_section_len},
        {"tu_section length near 2^64", m_section_huge},
        {"unknown tu_section tag", m_tag},
        {"tu_section count 6", m_sections},
    };
    char *dir = tu_mkdtemp();
    char *p = tu_path(dir, "v.hnswc");
    const uint32_t M = 4;
    size_t rejected = 0;
    /* files of format 4 (what hnswc_save writes) without an element limit
     * (max_elements 0) and with one */
    for (int limited = 0; limited < 2; limited++) {
        hnswc_index *ix = make_index(HNSWC_METRIC_L2, 40, 4, M, NULL);
        if (limited)
            tu_ok(hnswc_set_max_elements(ix, 1000));
        size_t size;
        unsigned char *b = tu_serialized(ix, &size);
        hnswc_free(ix);
        uint32_t version;
        memcpy(&version, b + 8, 4);
        assert_int_equal(version, 4);
        tu_section secs[8];
        size_t nsec = tu_parse_sections(b, size, secs, 8);
        assert_int_equal(nsec, 5);

        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            unsigned char *m = tu_xmalloc(size);
            memcpy(m, b, size);
            cases[c].fn(m, secs, nsec, M);
            tu_fix_crcs(m, secs, nsec);
            tu_expect_load(m, size, p, HNSWC_ERR_FORMAT, cases[c].what);
            free(m);
            rejected++;
        }
        free(b);
    }
    print_message("%zu files with valid checksums and invalid contents rejected\n", rejected);
    free(p);
    tu_rmdir(dir);
}

/*
 * Random changes with the checksums fixed: the loader may accept some (a
 * changed float, label or level generator state is still a valid index) but
 * must never crash, and what it accepts must be searchable and saveable.
 * Under ASan this is the loader's fuzz test.
 */
static void test_fuzz_with_valid_crc(void **s)
{
    (void)s;
    const uint32_t M = 4;
    hnswc_index *ix = make_index(HNSWC_METRIC_L2, 60, 4, M, NULL);
    size_t size;
    unsigned char *b = tu_serialized(ix, &size);
    hnswc_free(ix);
    tu_section secs[8];
    size_t nsec = tu_parse_sections(b, size, secs, 8);
    tu_rng r = tu_rng_make(99);
    size_t accepted = 0, rejected = 0, rounds = tu_scaled(4000, 1000);
    const float q[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    for (size_t i = 0; i < rounds; i++) {
        unsigned char *m = tu_xmalloc(size);
        memcpy(m, b, size);
        size_t changes = 1 + tu_next(&r) % 3;
        for (size_t c = 0; c < changes; c++) {
            size_t pos = (size_t)(tu_next(&r) % size);
            switch (tu_next(&r) % 4) {
            case 0: m[pos] ^= (unsigned char)(1u << (tu_next(&r) % 8)); break;
            case 1: m[pos] = (unsigned char)tu_next(&r); break;
            case 2: m[pos] = 0xff; break;
            default: m[pos] = 0; break;
            }
        }
        tu_fix_crcs(m, secs, nsec);
        hnswc_index *out = NULL;
        hnswc_status st = hnswc_deserialize(m, size, &out);
        if (st == HNSWC_OK) {
            accepted++;
            uint64_t labels[K];
            float dists[K];
            size_t found;
            hnswc_info info;
            tu_ok(hnswc_get_info(out, &info));
            if (info.dim == 4) {
                tu_ok(hnswc_search(out, q, K, 50, NULL, NULL, labels, dists, &found));
                tu_ok(hnswc_search_exact(out, q, K, NULL, NULL, labels, dists, &found));
            }
            hnswc_graph_stats g;
            tu_ok(hnswc_get_graph_stats(out, &g));
            void *again;
            size_t again_size;
            tu_ok(hnswc_serialize(out, &again, &again_size));
            hnswc_buffer_free(again);
            hnswc_free(out);
        } else {
            rejected++;
            assert_int_equal(st, HNSWC_ERR_FORMAT);
            assert_null(out);
        }
        free(m);
    }
    print_message("fuzz: %zu mutated files (checksums fixed): %zu accepted, %zu rejected\n",
                  rounds, accepted, rejected);
    free(b);
}

/* ------------------------------------------------------------------------
 * Foreign files
 * ------------------------------------------------------------------------ */

static void test_foreign_files(void **s)
{
    (void)s;
    char *dir = tu_mkdtemp();
    char *p = tu_path(dir, "foreign");
    tu_rng r = tu_rng_make(3);

    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)tu_next(&r);
    tu_expect_load(junk, sizeof junk, p, HNSWC_ERR_FORMAT, "random bytes");
    tu_expect_load(junk, 0, p, HNSWC_ERR_FORMAT, "an empty file");
    const char *text = "dim,metric\n16,l2\nThis is a text file, not an index.\n";
    tu_expect_load((const unsigned char *)text, strlen(text), p, HNSWC_ERR_FORMAT, "a text file");
    /* The magic alone, and the magic followed by noise. */
    static const unsigned char magic[8] = {0x89, 'H', 'N', 'S', 'W', 'C', '\r', '\n'};
    memcpy(junk, magic, 8);
    tu_expect_load(junk, 8, p, HNSWC_ERR_FORMAT, "the magic alone");
    tu_expect_load(junk, sizeof junk, p, HNSWC_ERR_FORMAT, "the magic and noise");
    /* A valid header (checksum right) announcing a future version. */
    memset(junk + 8, 0, 16);
    put32(junk + 8, 99);
    put32(junk + 12, 0x01020304u);
    put32(junk + 16, 5);
    put32(junk + 20, tu_crc32c(junk, 20));
    tu_expect_load(junk, sizeof junk, p, HNSWC_ERR_FORMAT, "format version 99");
    tu_expect_load(junk, 24, p, HNSWC_ERR_FORMAT, "a header of version 99 alone");
    /* A header in the other byte order: not ours to read on this host. */
    put32(junk + 8, 0x01000000u);
    put32(junk + 12, 0x04030201u);
    put32(junk + 16, 0x05000000u);
    put32(junk + 20, tu_crc32c(junk, 20));
    tu_expect_load(junk, sizeof junk, p, HNSWC_ERR_FORMAT, "the other byte order");

    /* Not a file: IO. */
    hnswc_index *ix = (hnswc_index *)(uintptr_t)0x1;
    tu_expect_err(hnswc_load(dir, &ix), HNSWC_ERR_IO);
    assert_null(ix);
    char *missing = tu_path(dir, "no/such/file");
    tu_expect_err(hnswc_load(missing, &ix), HNSWC_ERR_IO);
    free(missing);
    tu_expect_err(hnswc_load("/dev/null", &ix), HNSWC_ERR_IO);

    free(p);
    tu_rmdir(dir);
}

/* ------------------------------------------------------------------------
 * Atomic save
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * max_elements is part of the file; files of format 1 (without it) load
 * ------------------------------------------------------------------------ */

static void test_max_elements_round_trip(void **s)
{
    (void)s;
    char *dir = tu_mkdtemp();
    char *p = tu_path(dir, "m.hnswc");
    tu_rng r = tu_rng_make(77);
    float *data = tu_random_vectors(&r, 30, 4, -1.f, 1.f);
    hnswc_options o = {0};
    o.dim = 4;
    o.max_elements = 10000; /* far above what is stored, and the capacity */
    hnswc_index *ix;
    tu_ok(hnswc_create(&o, &ix));
    tu_add_rows(ix, data, 30, 4, 1);
    tu_ok(hnswc_save(ix, p));
    hnswc_index *back;
    tu_ok(hnswc_load(p, &back));
    hnswc_info info;
    tu_ok(hnswc_get_info(back, &info));
    assert_int_equal(info.max_elements, 10000);
    assert_int_equal(info.count, 30);
    assert_true(info.capacity < 10000); /* a limit, not a size */
    hnswc_free(back);

    /* the limit set later is saved too, in files and buffers; so is none */
    static const uint64_t limits[] = {30, 0, (uint64_t)1 << 40};
    for (size_t i = 0; i < 3; i++) {
        tu_ok(hnswc_set_max_elements(ix, limits[i]));
        size_t size;
        unsigned char *b = tu_serialized(ix, &size);
        tu_ok(hnswc_deserialize(b, size, &back));
        tu_ok(hnswc_get_info(back, &info));
        assert_int_equal(info.max_elements, limits[i]);
        if (limits[i] == 30) /* and it binds after the load */
            tu_expect_err(hnswc_add(back, 1, data, 0), HNSWC_ERR_FULL);
        hnswc_free(back);
        free(b);
    }
    hnswc_free(ix);
    free(data);
    free(p);
    tu_rmdir(dir);
}

/*
 * tests/data/hnswc-v1-l2-d4.hnswc was written by libhnswc 0.1 (format 1,
 * no max_elements; tests/data/make_hnswc_v1_fixture.c): 100 vectors of dim
 * 4, v[j] = ((7i + 3j) mod 17) / 17 + i / 1000, under label 10 i, label 50
 * deleted. It loads with no limit, answers exactly, takes new elements, and
 * is saved as format 1 again while it has no limit, as format 3 with one.
 */
static void v1_vector(size_t i, float v[4])
{
    for (int j = 0; j < 4; j++)
        v[j] = (float)(((int)i * 7 + j * 3) % 17) / 17.0f + (float)i / 1000.0f;
}

/*
 * Format 4: VECS's rows start 64-byte aligned in the file and are padded
 * (to 64, or below 64 bytes to a power of two), the padding is zero and a
 * file whose padding is not is refused; files of versions 1 to 3 holding
 * the same index (rewritten by tu_downgrade as older libraries wrote them)
 * load to the same index, which saves back to the same version-4 bytes.
 */
static void test_format_4_alignment(void **s)
{
    (void)s;
    const uint32_t dims[5] = {1, 3, 4, 24, 49}; /* rows of 4, 16, 16, 128, 256 bytes */
    tu_rng r = tu_rng_make(5);
    float q[49];
    for (int d = 0; d < 5; d++) {
        uint32_t dim = dims[d];
        for (int limited = 0; limited < 2; limited++) {
            hnswc_index *ix = make_index(HNSWC_METRIC_L2, 70 + (size_t)d, dim, 4, NULL);
            if (limited)
                tu_ok(hnswc_set_max_elements(ix, 5000));
            size_t size;
            unsigned char *b = tu_serialized(ix, &size);
            tu_section secs[8];
            size_t ns = tu_parse_sections(b, size, secs, 8);
            const tu_section *v = tu_find_section(secs, ns, "VECS");
            size_t first = tu_vecs_first(v), row = tu_vecs_row(dim), count = 70 + (size_t)d;
            assert_int_equal(first % 64, 0);
            assert_int_equal(v->len, first - v->payload + count * row);
            for (size_t i = 0; i < count; i++) { /* the vectors, then zeros */
                float want[49];
                tu_ok(hnswc_get_vector(ix, tu_label_of(i), want));
                assert_memory_equal(b + first + i * row, want, (size_t)dim * 4);
                for (size_t k = (size_t)dim * 4; k < row; k++)
                    assert_int_equal(b[first + i * row + k], 0);
            }
            for (size_t k = v->payload; k < first; k++)
                assert_int_equal(b[k], 0);

            /* a byte of padding that is not zero, checksums right */
            size_t pads[2] = {first > v->payload ? v->payload : 0,
                              row > (size_t)dim * 4 ? first + 5 * row + row - 1 : 0};
            for (int k = 0; k < 2; k++) {
                if (!pads[k])
                    continue;
                unsigned char *m = tu_xmalloc(size);
                memcpy(m, b, size);
                m[pads[k]] = 1;
                tu_fix_crcs(m, secs, ns);
                tu_expect_load(m, size, NULL, HNSWC_ERR_FORMAT, "padding not zero");
                assert_non_null(strstr(hnswc_errmsg(NULL), "padding"));
                free(m);
            }

            /* the same index in the older versions */
            for (uint32_t ver = 1; ver <= 3; ver++) {
                if (ver < 3 && limited)
                    continue; /* a limit needs version 3 */
                if (ver == 2)
                    continue; /* version 2 is SQ8 only: test_sq8 and test_mmap */
                size_t osize;
                unsigned char *o = tu_downgrade(b, size, dim, ver, &osize);
                hnswc_index *back;
                tu_ok(hnswc_deserialize(o, osize, &back));
                for (int i = 0; i < 5; i++) {
                    for (uint32_t j = 0; j < dim; j++)
                        q[j] = (float)tu_uniform(&r) * 2.f - 1.f;
                    uint64_t la[5], lb[5];
                    float da[5], db[5];
                    size_t fa, fb;
                    tu_ok(hnswc_search(ix, q, 5, 20, NULL, NULL, la, da, &fa));
                    tu_ok(hnswc_search(back, q, 5, 20, NULL, NULL, lb, db, &fb));
                    assert_int_equal(fa, fb);
                    assert_memory_equal(la, lb, fa * sizeof *la);
                    assert_memory_equal(da, db, fa * sizeof *da);
                }
                size_t again_size;
                unsigned char *again = tu_serialized(back, &again_size);
                assert_int_equal(again_size, size); /* saved as version 4: the same bytes */
                assert_memory_equal(again, b, size);
                free(again);
                hnswc_free(back);
                free(o);
            }
            free(b);
            hnswc_free(ix);
        }
    }
}

static void test_format_1_files_load(void **s)
{
    (void)s;
    const char *data_dir = getenv("HNSWC_TEST_DATA");
    assert_non_null(data_dir);
    char *p = tu_path(data_dir, "hnswc-v1-l2-d4.hnswc");
    hnswc_index *ix;
    tu_ok(hnswc_load(p, &ix));
    free(p);
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.dim, 4);
    assert_int_equal(info.M, 4);
    assert_int_equal(info.ef_construction, 32);
    assert_int_equal(info.ef_search, 20);
    assert_int_equal(info.count, 100);
    assert_int_equal(info.deleted_count, 1);
    assert_int_equal(info.max_elements, 0);
    for (size_t i = 0; i < 100; i++) {
        float want[4], got[4];
        v1_vector(i, want);
        tu_ok(hnswc_get_vector(ix, i * 10, got));
        assert_memory_equal(want, got, sizeof want);
        int del;
        tu_ok(hnswc_is_deleted(ix, i * 10, &del));
        assert_int_equal(del, i == 5);
        if (i != 5) { /* its own nearest, at distance 0 */
            uint64_t lab;
            float d;
            size_t found;
            tu_ok(hnswc_search(ix, want, 1, 100, NULL, NULL, &lab, &d, &found));
            assert_int_equal(found, 1);
            assert_int_equal(lab, i * 10);
            assert_true(d == 0.0f);
        }
    }
    float v[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    tu_ok(hnswc_add(ix, 5000, v, 0));
    size_t size;
    unsigned char *b = tu_serialized(ix, &size);
    uint32_t version;
    memcpy(&version, b + 8, 4);
    assert_int_equal(version, 4); /* every graph is written as format 4 */
    hnswc_index *back;
    tu_ok(hnswc_deserialize(b, size, &back));
    assert_int_equal(tu_count(back), 101);
    hnswc_free(back);
    free(b);
    tu_ok(hnswc_set_max_elements(ix, 500));
    b = tu_serialized(ix, &size);
    memcpy(&version, b + 8, 4);
    assert_int_equal(version, 4);
    tu_ok(hnswc_deserialize(b, size, &back));
    tu_ok(hnswc_get_info(back, &info));
    assert_int_equal(info.max_elements, 500);
    assert_int_equal(info.count, 101);
    hnswc_free(back);
    free(b);
    hnswc_free(ix);
}

static void test_atomic_save(void **s)
{
    (void)s;
    char names[16][256];
    char *dir = tu_mkdtemp();
    hnswc_index *ix = make_index(HNSWC_METRIC_L2, 300, DIM, 0, NULL);
    size_t want_size;
    unsigned char *want = tu_serialized(ix, &want_size);

    /* Into a directory that does not exist: IO, nothing created. */
    char *nodir = tu_path(dir, "missing");
    char *inside = tu_path(nodir, "x.hnswc");
    tu_expect_err(hnswc_save(ix, inside), HNSWC_ERR_IO);
    assert_false(tu_exists(nodir));
    assert_int_equal(tu_dir_entries(dir, names, 16), 0);

    /* Over an existing file: replaced, no temporary file left. */
    char *path = tu_path(dir, "idx.hnswc");
    tu_write_file(path, "old contents", 12);
    tu_ok(hnswc_save(ix, path));
    size_t got_size;
    unsigned char *got = tu_read_file(path, &got_size);
    assert_int_equal(got_size, want_size);
    assert_memory_equal(got, want, want_size);
    free(got);
    size_t n = tu_dir_entries(dir, names, 16);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "idx.hnswc");

    /* Over a larger index file: the result is exactly the new one. */
    hnswc_index *big = make_index(HNSWC_METRIC_L2, 900, DIM, 0, NULL);
    tu_ok(hnswc_save(big, path));
    tu_ok(hnswc_save(ix, path));
    got = tu_read_file(path, &got_size);
    assert_int_equal(got_size, want_size);
    assert_memory_equal(got, want, want_size);
    free(got);
    hnswc_free(big);

    /* Onto a path that is a directory: IO, the directory and the rest of
       the folder untouched, no temporary file left. */
    char *sub = tu_path(dir, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    tu_expect_err(hnswc_save(ix, sub), HNSWC_ERR_IO);
    n = tu_dir_entries(dir, names, 16);
    assert_int_equal(n, 2);
    struct stat st;
    assert_int_equal(stat(sub, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(tu_dir_entries(sub, names, 16), 0);

    /* The saved file still loads. */
    hnswc_index *back = NULL;
    tu_ok(hnswc_load(path, &back));
    assert_int_equal(tu_count(back), 300);
    hnswc_free(back);

    hnswc_free(ix);
    free(want);
    free(nodir);
    free(inside);
    free(path);
    free(sub);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_resume_after_load),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_invalid_contents),
        cmocka_unit_test(test_fuzz_with_valid_crc),
        cmocka_unit_test(test_foreign_files),
        cmocka_unit_test(test_max_elements_round_trip),
        cmocka_unit_test(test_format_1_files_load),
        cmocka_unit_test(test_format_4_alignment),
        cmocka_unit_test(test_atomic_save),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
