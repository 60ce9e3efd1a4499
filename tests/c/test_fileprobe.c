/*
 * test_fileprobe.c -- hnswc_probe_file: hnswc's own files (also damaged
 * ones), hnswlib's files (the fixtures written by hnswlib itself, also
 * truncated) with what their header says, and files of neither kind; the
 * kind it reports is the loader that then succeeds. Bad arguments, missing
 * files and directories are errors with a status and message.
 *
 * The hnswlib fixtures come from HNSWC_TEST_DATA (set by tests/tests.mk).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *fixture(const char *name)
{
    const char *dir = getenv("HNSWC_TEST_DATA");
    if (dir == NULL)
        fail_msg("HNSWC_TEST_DATA is not set (run the tests through `make test-c`)");
    return tu_path(dir, name);
}

static hnswc_file_info probe(const char *path)
{
    hnswc_file_info fi;
    memset(&fi, 0xAB, sizeof fi); /* every field must be written */
    tu_ok(hnswc_probe_file(path, &fi));
    return fi;
}

static void test_hnswc_files(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "ix.hnswc");
    tu_rng r = tu_rng_make(9);
    float *v = tu_random_vectors(&r, 50, 6, -1, 1);
    hnswc_index *ix = tu_create(6, HNSWC_METRIC_IP, 4, 20, 1, 50);
    tu_add_rows(ix, v, 50, 6, 1);
    tu_ok(hnswc_save(ix, path));

    hnswc_file_info fi = probe(path);
    assert_int_equal(fi.kind, HNSWC_FILE_HNSWC);
    assert_int_equal(fi.dim, 0); /* hnswlib fields: zero for hnswc files */
    assert_int_equal(fi.count, 0);
    assert_int_equal(fi.max_elements, 0);
    hnswc_index *back = NULL;
    tu_ok(hnswc_load(path, &back));
    hnswc_free(back);

    /* damaged after the magic, or cut short: still hnswc's, for hnswc_load
     * to say what is wrong */
    size_t size;
    unsigned char *raw = tu_read_file(path, &size);
    raw[size / 2] ^= 0x10;
    tu_write_file(path, raw, size);
    assert_int_equal(probe(path).kind, HNSWC_FILE_HNSWC);
    tu_expect_err(hnswc_load(path, &back), HNSWC_ERR_FORMAT);
    tu_write_file(path, raw, 8);
    assert_int_equal(probe(path).kind, HNSWC_FILE_HNSWC);
    tu_expect_err(hnswc_load(path, &back), HNSWC_ERR_FORMAT);

    free(raw);
    free(v);
    hnswc_free(ix);
    free(path);
    tu_rmdir(dir);
}

static void test_hnswlib_files(void **state)
{
    (void)state;
    /* tests/data/make_hnswlib_fixtures.py: 300 vectors of dimension 8,
     * max_elements 350, M 8, ef_construction 100 */
    const char *names[] = {"hnswlib-l2-d8.bin", "hnswlib-cosine-d8.bin"};
    for (size_t i = 0; i < 2; i++) {
        char *path = fixture(names[i]);
        hnswc_file_info fi = probe(path);
        assert_int_equal(fi.kind, HNSWC_FILE_HNSWLIB);
        assert_int_equal(fi.dim, 8);
        assert_int_equal(fi.count, 300);
        assert_int_equal(fi.max_elements, 350);
        assert_int_equal(fi.M, 8);
        assert_int_equal(fi.ef_construction, 100);
        hnswc_index *ix = NULL;
        tu_ok(hnswc_load_hnswlib(path, HNSWC_METRIC_L2, &ix));
        hnswc_free(ix);
        tu_expect_err(hnswc_load(path, &ix), HNSWC_ERR_FORMAT);

        /* truncated: still hnswlib's, and its loader reports the truncation */
        char *dir = tu_mkdtemp();
        char *cut = tu_path(dir, "cut.bin");
        size_t size;
        unsigned char *raw = tu_read_file(path, &size);
        tu_write_file(cut, raw, size / 2);
        assert_int_equal(probe(cut).kind, HNSWC_FILE_HNSWLIB);
        tu_expect_err(hnswc_load_hnswlib(cut, HNSWC_METRIC_L2, &ix), HNSWC_ERR_FORMAT);
        assert_non_null(strstr(hnswc_errmsg(NULL), "truncated"));
        /* a header field changed: no longer consistent, so not hnswlib's */
        uint64_t maxM0;
        memcpy(&maxM0, raw + 64, 8);
        maxM0 += 1;
        memcpy(raw + 64, &maxM0, 8);
        tu_write_file(cut, raw, size);
        assert_int_equal(probe(cut).kind, HNSWC_FILE_UNKNOWN);
        free(raw);
        free(cut);
        tu_rmdir(dir);
        free(path);
    }
}

static void test_other_files(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "x");
    unsigned char buf[4096];
    tu_rng r = tu_rng_make(4);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)tu_next(&r);
    const size_t sizes[] = {0, 1, 7, 8, 95, 96, 97, sizeof buf};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        tu_write_file(path, buf, sizes[i]);
        assert_int_equal(probe(path).kind, HNSWC_FILE_UNKNOWN);
    }
    memset(buf, 0, sizeof buf); /* all zeros: offsetLevel0 is 0, M is not */
    tu_write_file(path, buf, sizeof buf);
    assert_int_equal(probe(path).kind, HNSWC_FILE_UNKNOWN);
    memcpy(buf, "\x93NUMPY", 6); /* another format's magic */
    tu_write_file(path, buf, sizeof buf);
    assert_int_equal(probe(path).kind, HNSWC_FILE_UNKNOWN);
    free(path);
    tu_rmdir(dir);
}

static void test_errors(void **state)
{
    (void)state;
    hnswc_file_info fi;
    tu_expect_err(hnswc_probe_file(NULL, &fi), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_probe_file("x", NULL), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_probe_file("/nonexistent/hnswc/file", &fi), HNSWC_ERR_IO);
    assert_non_null(strstr(hnswc_errmsg(NULL), "/nonexistent/hnswc/file"));
    assert_int_equal(fi.kind, HNSWC_FILE_UNKNOWN);
    char *dir = tu_mkdtemp();
    tu_expect_err(hnswc_probe_file(dir, &fi), HNSWC_ERR_IO);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hnswc_files),
        cmocka_unit_test(test_hnswlib_files),
        cmocka_unit_test(test_other_files),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
