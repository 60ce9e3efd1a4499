/*
 * test_mmap.c -- hnswc_open: an index opened in place (HNSWC_OPEN_MMAP).
 *
 *  - A mapped index is the loaded index: the same search results bit for
 *    bit, vectors, labels, marks and graph, and serializes to the file's
 *    own bytes, for every metric, F32 and SQ8, with the last chunk full or
 *    partly used.
 *  - Writes behave as documented: updates, adds (into the mapped chunk's
 *    room and past it), deletion marks and slot reuse give exactly what the
 *    same writes give on a loaded index, and the file never changes (copy
 *    on write); a mapped index saves over its own file and keeps working.
 *  - Damaged files: every truncation, every bit flip outside the vectors
 *    and impossible parameters with correct checksums are refused with
 *    HNSWC_ERR_FORMAT; damaged vectors are refused with HNSWC_OPEN_VERIFY
 *    and, without it, open and search without crashing (ASan/UBSan run it).
 *  - Arguments, flags, files of other kinds (flat: loaded, not mapped).
 * Concurrency is in test_mmap_concurrency.c (run under TSan).
 */
#include "testutil.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { K = 10 };

static const hnswc_metric METRICS[3] = {HNSWC_METRIC_L2, HNSWC_METRIC_IP, HNSWC_METRIC_COSINE};

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static hnswc_index *build(hnswc_metric m, hnswc_storage storage, size_t n, uint32_t dim,
                          uint64_t seed, float **data_out)
{
    tu_rng r = tu_rng_make(seed);
    float *data = tu_random_vectors(&r, n, dim, -1.f, 1.f);
    hnswc_options o;
    memset(&o, 0, sizeof o);
    o.dim = dim;
    o.metric = m;
    o.M = 8;
    o.ef_construction = 60;
    o.storage = storage;
    hnswc_index *ix = NULL;
    tu_ok(hnswc_create(&o, &ix));
    tu_add_rows(ix, data, n, dim, 1);
    for (size_t i = 0; i < n; i += 11)
        tu_ok(hnswc_mark_deleted(ix, tu_label_of(i)));
    if (data_out)
        *data_out = data;
    else
        free(data);
    return ix;
}

/* Same results bit for bit (labels, distances, count) for every query, at a
 * small and a large ef, and the same serialized bytes. */
static void assert_same(const hnswc_index *a, const hnswc_index *b, const float *queries,
                        size_t nq, uint32_t dim)
{
    tu_assert_same_search(a, b, queries, nq, dim, K, 10);
    tu_assert_same_search(a, b, queries, nq, dim, K, 200);
    size_t sa, sb;
    unsigned char *ia = tu_serialized(a, &sa), *ib = tu_serialized(b, &sb);
    assert_int_equal(sa, sb);
    assert_memory_equal(ia, ib, sa);
    free(ia);
    free(ib);
}

/* ------------------------------------------------------------------------
 * A mapped index is the loaded index
 * ------------------------------------------------------------------------ */

static void test_identical_to_loaded(void **s)
{
    (void)s;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "a.hnswc");
    const uint32_t dim = 24;
    /* 3072 fills chunks 0 and 1 exactly; 2500 uses part of chunk 1 */
    const size_t sizes[2] = {tu_scaled(2500, 1500), 3072};
    tu_rng r = tu_rng_make(7);
    float *queries = tu_random_vectors(&r, 100, dim, -1.f, 1.f);
    for (int storage = 0; storage <= 1; storage++)
        for (int m = 0; m < 3; m++)
            for (int z = 0; z < 2; z++) {
                hnswc_index *built = build(METRICS[m], (hnswc_storage)storage, sizes[z], dim,
                                           100 + (uint64_t)m, NULL);
                tu_ok(hnswc_save(built, path));
                hnswc_free(built);
                hnswc_index *loaded = NULL, *plain = NULL;
                tu_ok(hnswc_load(path, &loaded));
                tu_ok(hnswc_open(path, 0, &plain)); /* flags 0: hnswc_load */
                hnswc_index *mapped = tu_open_mapped(path, 0);
                hnswc_index *verified = tu_open_mapped(path, HNSWC_OPEN_VERIFY);

                hnswc_info il, im, ip;
                tu_ok(hnswc_get_info(loaded, &il));
                tu_ok(hnswc_get_info(mapped, &im));
                tu_ok(hnswc_get_info(plain, &ip));
                assert_int_equal(il.mapped_bytes, 0);
                assert_int_equal(ip.mapped_bytes, 0);
                assert_int_equal(im.mapped_bytes, (uint64_t)sizes[z] * dim * 4);
                assert_int_equal(im.count, il.count);
                assert_int_equal(im.deleted_count, il.deleted_count);
                assert_int_equal(im.max_level, il.max_level);
                assert_int_equal(im.codes_trained, il.codes_trained);
                /* the vectors are not in the private memory */
                assert_true(im.memory_bytes + (uint64_t)sizes[z] * dim * 4 / 2 < il.memory_bytes);

                float *va = tu_xmalloc(dim * 4), *vb = tu_xmalloc(dim * 4);
                for (size_t i = 0; i < sizes[z]; i += 37) {
                    tu_ok(hnswc_get_vector(loaded, tu_label_of(i), va));
                    tu_ok(hnswc_get_vector(mapped, tu_label_of(i), vb));
                    assert_memory_equal(va, vb, dim * 4);
                }
                free(va);
                free(vb);
                assert_same(loaded, mapped, queries, 100, dim);
                assert_same(loaded, verified, queries, 20, dim);
                assert_same(loaded, plain, queries, 20, dim);

                /* the image is the file itself */
                size_t fsize, isize;
                unsigned char *file = tu_read_file(path, &fsize);
                unsigned char *img = tu_serialized(mapped, &isize);
                assert_int_equal(fsize, isize);
                assert_memory_equal(file, img, fsize);
                free(file);
                free(img);
                hnswc_free(loaded);
                hnswc_free(plain);
                hnswc_free(mapped);
                hnswc_free(verified);
            }
    free(queries);
    free(path);
    tu_rmdir(dir);
}

/* ------------------------------------------------------------------------
 * Writes: copy on write, exactly as on a loaded index
 * ------------------------------------------------------------------------ */

/* The same writes on both: updates (in place, in the file's pages), new
 * labels (into the room after the last mapped vector, then into new
 * chunks), marks, slot reuse, removal and compaction, adds into freed
 * slots. */
static void same_writes(hnswc_index *ix, size_t n, uint32_t dim, uint64_t seed)
{
    tu_rng r = tu_rng_make(seed);
    float *v = tu_random_vectors(&r, 3000, dim, -1.f, 1.f);
    for (size_t i = 0; i < 200; i++) /* updates of existing labels */
        tu_ok(hnswc_add(ix, tu_label_of(i * 3 + 1), v + i * dim, 0));
    for (size_t i = 0; i < 50; i++)
        tu_ok(hnswc_mark_deleted(ix, tu_label_of(i * 11 + 5))); /* build marked i * 11 */
    for (size_t i = 0; i < 30; i++) /* reuse of deleted slots */
        tu_ok(hnswc_add(ix, 900000000u + i, v + (200 + i) * dim, HNSWC_ADD_REPLACE_DELETED));
    for (size_t i = 0; i < 2500; i++) /* new labels: past the mapped chunk */
        tu_ok(hnswc_add(ix, tu_label_of(n + i), v + (300 + i) * dim, 0));
    tu_ok(hnswc_unmark_deleted(ix, tu_label_of(0)));
    tu_ok(hnswc_set_ef(ix, 33));
    /* true removal: slots freed, the graph repaired, freed slots reused
     * (their vectors rewritten in place, in the file's pages) */
    for (size_t i = 0; i < 40; i++)
        tu_ok(hnswc_remove(ix, tu_label_of(n + i * 13)));
    size_t compacted;
    tu_ok(hnswc_compact(ix, 1, &compacted));
    for (size_t i = 0; i < 30; i++)
        tu_ok(hnswc_add(ix, 800000000u + i, v + (2800 + i) * dim, 0));
    free(v);
}

/* Files of the older versions (1: f32, 2: SQ8, 3: either with a limit;
 * rewritten from version 4 by tu_downgrade as older libraries wrote them:
 * vectors unpadded, 4-byte aligned) open in place too, at their own stride:
 * the same results as loaded, and the same after the same writes (new
 * vectors go into the room after the file's last one at that stride). */
static void test_older_versions(void **s)
{
    (void)s;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "old.hnswc");
    const uint32_t dim = 24; /* 96 bytes: version 4 pads rows to 128 */
    const size_t n = 2500;
    tu_rng r = tu_rng_make(12);
    float *queries = tu_random_vectors(&r, 60, dim, -1.f, 1.f);
    for (int storage = 0; storage <= 1; storage++) {
        hnswc_index *built = build(HNSWC_METRIC_L2, (hnswc_storage)storage, n, dim, 21, NULL);
        size_t size;
        unsigned char *b = tu_serialized(built, &size);
        hnswc_free(built);
        const uint32_t versions[2] = {storage ? 2u : 1u, 3u};
        for (int k = 0; k < 2; k++) {
            size_t osize;
            unsigned char *o = tu_downgrade(b, size, dim, versions[k], &osize);
            assert_true(osize < size); /* no padding (and no max_elements below 3) */
            tu_write_file(path, o, osize);
            hnswc_index *loaded = NULL;
            tu_ok(hnswc_load(path, &loaded));
            hnswc_index *mapped = tu_open_mapped(path, 0), *verified = tu_open_mapped(path, HNSWC_OPEN_VERIFY);
            hnswc_info im;
            tu_ok(hnswc_get_info(mapped, &im));
            assert_int_equal(im.mapped_bytes, (uint64_t)n * dim * 4);
            assert_same(loaded, mapped, queries, 60, dim);
            assert_same(loaded, verified, queries, 20, dim);
            size_t isize; /* saved again: version 4, the bytes we started from */
            unsigned char *img = tu_serialized(mapped, &isize);
            assert_int_equal(isize, size);
            assert_memory_equal(img, b, size);
            free(img);
            same_writes(loaded, n, dim, 31);
            same_writes(mapped, n, dim, 31);
            assert_same(loaded, mapped, queries, 60, dim);
            /* the file is untouched */
            size_t fsize;
            unsigned char *f = tu_read_file(path, &fsize);
            assert_int_equal(fsize, osize);
            assert_memory_equal(f, o, osize);
            free(f);
            hnswc_free(loaded);
            hnswc_free(mapped);
            hnswc_free(verified);
            free(o);
        }
        free(b);
    }
    free(queries);
    free(path);
    tu_rmdir(dir);
}

static void test_writes_copy_on_write(void **s)
{
    (void)s;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "w.hnswc"), *other = tu_path(dir, "x.hnswc");
    const uint32_t dim = 16;
    const size_t n = 2500; /* chunk 1 ends at id 3071: room for 572 in place */
    tu_rng r = tu_rng_make(8);
    float *queries = tu_random_vectors(&r, 100, dim, -1.f, 1.f);
    for (int storage = 0; storage <= 1; storage++) {
        hnswc_index *built = build(HNSWC_METRIC_L2, (hnswc_storage)storage, n, dim, 5, NULL);
        tu_ok(hnswc_save(built, path));
        hnswc_free(built);
        size_t before_size;
        unsigned char *before = tu_read_file(path, &before_size);

        hnswc_index *loaded = NULL;
        tu_ok(hnswc_load(path, &loaded));
        hnswc_index *mapped = tu_open_mapped(path, 0);
        /* a second mapping of the same file: must not see the first's writes */
        hnswc_index *bystander = tu_open_mapped(path, 0);
        same_writes(loaded, n, dim, 99);
        same_writes(mapped, n, dim, 99);
        assert_same(loaded, mapped, queries, 100, dim);

        /* the file and the other mapping are untouched */
        size_t after_size;
        unsigned char *after = tu_read_file(path, &after_size);
        assert_int_equal(before_size, after_size);
        assert_memory_equal(before, after, before_size);
        size_t bsize;
        unsigned char *bimg = tu_serialized(bystander, &bsize);
        assert_int_equal(bsize, before_size);
        assert_memory_equal(bimg, before, bsize);
        free(bimg);
        free(after);

        /* saved over its own file: the mapping stays valid (the old file
         * lives on while mapped), and the new file holds the writes */
        tu_ok(hnswc_save(mapped, path));
        tu_ok(hnswc_save(loaded, other));
        size_t s1, s2;
        unsigned char *f1 = tu_read_file(path, &s1), *f2 = tu_read_file(other, &s2);
        assert_int_equal(s1, s2);
        assert_memory_equal(f1, f2, s1);
        free(f1);
        free(f2);
        assert_same(loaded, mapped, queries, 20, dim);
        bimg = tu_serialized(bystander, &bsize); /* still the old file's index */
        assert_memory_equal(bimg, before, bsize);
        free(bimg);
        hnswc_index *reopened = tu_open_mapped(path, HNSWC_OPEN_VERIFY);
        assert_same(loaded, reopened, queries, 20, dim);

        free(before);
        hnswc_free(reopened);
        hnswc_free(bystander);
        hnswc_free(loaded);
        hnswc_free(mapped);
    }
    free(queries);
    free(path);
    free(other);
    tu_rmdir(dir);
}

/* An empty index maps nothing and takes adds. */
static void test_empty(void **s)
{
    (void)s;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "e.hnswc");
    hnswc_index *e = tu_create(4, HNSWC_METRIC_L2, 4, 0, 0, 0);
    tu_ok(hnswc_save(e, path));
    hnswc_free(e);
    hnswc_index *m = tu_open_mapped(path, HNSWC_OPEN_VERIFY);
    hnswc_info info;
    tu_ok(hnswc_get_info(m, &info));
    assert_int_equal(info.count, 0);
    assert_int_equal(info.mapped_bytes, 0);
    const float v[4] = {1, 2, 3, 4};
    tu_ok(hnswc_add(m, 5, v, 0));
    uint64_t l;
    float d;
    size_t found;
    tu_ok(hnswc_search(m, v, 1, 0, NULL, NULL, &l, &d, &found));
    assert_int_equal(found, 1);
    assert_int_equal(l, 5);
    hnswc_free(m);
    free(path);
    tu_rmdir(dir);
}

/* ------------------------------------------------------------------------
 * Damaged and hostile files
 * ------------------------------------------------------------------------ */

/* Writes b to path (in place: an open with O_TRUNC per case cost half a
 * millisecond here) and opens it mapped (with `flags`): must return expect,
 * and when it opens, searches must run. */
static void expect_open(const char *path, const unsigned char *b, size_t size, unsigned flags,
                        hnswc_status expect, uint32_t dim)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    assert_int_equal(pwrite(fd, b, size, 0), (ssize_t)size);
    close(fd);
    hnswc_index *ix = (hnswc_index *)1;
    hnswc_status st = hnswc_open(path, HNSWC_OPEN_MMAP | flags, &ix);
    if (st != expect)
        fail_msg("hnswc_open of %zu bytes: %d (%s), expected %d: %s", size, (int)st,
                 hnswc_status_string(st), (int)expect, hnswc_errmsg(NULL));
    if (st != HNSWC_OK) {
        assert_null(ix);
        assert_true(hnswc_errmsg(NULL)[0] != '\0');
        return;
    }
    float *q = tu_xcalloc(dim, sizeof *q);
    uint64_t l[K];
    float d[K];
    size_t found;
    for (int i = 0; i < 3; i++) {
        q[0] = (float)i - 1.f;
        tu_ok(hnswc_search(ix, q, K, 50, NULL, NULL, l, d, &found));
        tu_ok(hnswc_search_exact(ix, q, K, NULL, NULL, l, d, &found));
    }
    free(q);
    hnswc_free(ix);
}

static void test_truncated_and_flipped(void **s)
{
    (void)s;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "t.hnswc");
    const uint32_t dim = 4;
    for (int storage = 0; storage <= 1; storage++) {
        hnswc_index *ix = build(HNSWC_METRIC_L2, (hnswc_storage)storage, 40, dim, 3, NULL);
        size_t size;
        unsigned char *b = tu_serialized(ix, &size);
        hnswc_free(ix);
        tu_section secs[8];
        size_t ns = tu_parse_sections(b, size, secs, 8);
        const tu_section *vecs = tu_find_section(secs, ns, "VECS");

        for (size_t cut = 0; cut < size; cut++) /* every truncation */
            expect_open(path, b, cut, 0, HNSWC_ERR_FORMAT, dim);
        /* one more byte at the end */
        unsigned char *longer = tu_xmalloc(size + 1);
        memcpy(longer, b, size);
        longer[size] = 0;
        expect_open(path, longer, size + 1, 0, HNSWC_ERR_FORMAT, dim);
        free(longer);

        /* a bit flipped anywhere but in the vectors (and their checksum,
         * unread without VERIFY) is refused; in the vectors, VERIFY refuses
         * and an unverified open still searches safely */
        for (size_t i = 0; i < size; i++) {
            int in_vecs = i >= vecs->payload && i < vecs->payload + vecs->len + 4;
            b[i] ^= (unsigned char)(1u << (i % 8));
            expect_open(path, b, size, 0, in_vecs ? HNSWC_OK : HNSWC_ERR_FORMAT, dim);
            if (in_vecs)
                expect_open(path, b, size, HNSWC_OPEN_VERIFY, HNSWC_ERR_FORMAT, dim);
            b[i] ^= (unsigned char)(1u << (i % 8));
        }
        expect_open(path, b, size, HNSWC_OPEN_VERIFY, HNSWC_OK, dim);

        /* NaN, infinity and huge values in the vectors, checksums right */
        const float bad[3] = {NAN, INFINITY, 3e38f};
        for (int k = 0; k < 3; k++) {
            unsigned char *c = tu_xmalloc(size);
            memcpy(c, b, size);
            size_t first = tu_vecs_first(vecs), row = tu_vecs_row(dim);
            for (size_t j = 0; j < 40 * dim; j += 3) /* vector floats only, not padding */
                memcpy(c + first + j / dim * row + j % dim * 4, &bad[k], 4);
            tu_fix_crcs(c, secs, ns);
            expect_open(path, c, size, 0, HNSWC_OK, dim);
            expect_open(path, c, size, HNSWC_OPEN_VERIFY, k < 2 ? HNSWC_ERR_FORMAT : HNSWC_OK,
                        dim);
            free(c);
        }

        /* impossible parameters with right checksums: a count that would
         * map (and reserve room for) far more than the file */
        const tu_section *parm = tu_find_section(secs, ns, "PARM");
        const uint64_t counts[4] = {41, 1u << 20, (uint64_t)UINT32_MAX - 1, UINT64_MAX};
        for (int k = 0; k < 4; k++) {
            unsigned char *c = tu_xmalloc(size);
            memcpy(c, b, size);
            memcpy(c + parm->payload + 40, &counts[k], 8);
            tu_fix_crcs(c, secs, ns);
            expect_open(path, c, size, 0, HNSWC_ERR_FORMAT, dim);
            free(c);
        }
        /* a link out of range */
        const tu_section *l0 = tu_find_section(secs, ns, "LNK0");
        unsigned char *c = tu_xmalloc(size);
        memcpy(c, b, size);
        uint32_t far = 1000;
        memcpy(c + l0->payload + 4, &far, 4);
        tu_fix_crcs(c, secs, ns);
        expect_open(path, c, size, 0, HNSWC_ERR_FORMAT, dim);
        free(c);
        free(b);
    }
    free(path);
    tu_rmdir(dir);
}

/* ------------------------------------------------------------------------
 * Arguments and other files
 * ------------------------------------------------------------------------ */

static void test_arguments(void **s)
{
    (void)s;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "a.hnswc"), *missing = tu_path(dir, "missing.hnswc");
    hnswc_index *ix = (hnswc_index *)1;
    tu_expect_err(hnswc_open(NULL, HNSWC_OPEN_MMAP, &ix), HNSWC_ERR_NULL);
    assert_null(ix);
    tu_expect_err(hnswc_open(path, HNSWC_OPEN_MMAP, NULL), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_open(path, 4, &ix), HNSWC_ERR_INVALID);
    tu_expect_err(hnswc_open(missing, HNSWC_OPEN_MMAP, &ix), HNSWC_ERR_IO);
    tu_expect_err(hnswc_open(dir, HNSWC_OPEN_MMAP, &ix), HNSWC_ERR_IO);
    assert_null(ix);
    tu_write_file(path, "", 0);
    tu_expect_err(hnswc_open(path, HNSWC_OPEN_MMAP, &ix), HNSWC_ERR_FORMAT);
    tu_write_file(path, "not an index at all, not at all", 31);
    tu_expect_err(hnswc_open(path, HNSWC_OPEN_MMAP, &ix), HNSWC_ERR_FORMAT);
    assert_null(ix);

    /* a flat index is loaded (read out of the mapping), not mapped */
    hnswc_options o;
    memset(&o, 0, sizeof o);
    o.dim = 8;
    o.kind = HNSWC_KIND_FLAT;
    hnswc_index *flat = NULL;
    tu_ok(hnswc_create(&o, &flat));
    tu_rng r = tu_rng_make(3);
    float *data = tu_random_vectors(&r, 100, 8, -1.f, 1.f);
    tu_add_rows(flat, data, 100, 8, 1);
    tu_ok(hnswc_save(flat, path));
    hnswc_index *m = tu_open_mapped(path, 0);
    hnswc_info info;
    tu_ok(hnswc_get_info(m, &info));
    assert_int_equal(info.kind, HNSWC_KIND_FLAT);
    assert_int_equal(info.mapped_bytes, 0);
    assert_int_equal(info.count, 100);
    assert_same(flat, m, data, 20, 8);
    hnswc_free(m);
    hnswc_free(flat);
    free(data);
    free(path);
    free(missing);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identical_to_loaded),
        cmocka_unit_test(test_writes_copy_on_write),
        cmocka_unit_test(test_older_versions),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_truncated_and_flipped),
        cmocka_unit_test(test_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
