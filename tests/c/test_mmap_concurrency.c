/*
 * test_mmap_concurrency.c -- a mapped index (hnswc_open, HNSWC_OPEN_MMAP)
 * searched on three threads while a batch on two more adds new labels (their
 * vectors written in place after the file's, in the mapping's room) and
 * updates mapped vectors (copy on write, under the update lock's write
 * side). Searches must always succeed with k results, and every vector
 * written must read back. make test-c-tsan runs it under ThreadSanitizer
 * (kept apart from test_mmap.c, whose thousands of damaged files are too
 * slow there).
 */
#include "testutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { K = 10 };

static hnswc_index *build(size_t n, uint32_t dim, uint64_t seed)
{
    return tu_build_random(n, dim, 8, 60, seed);
}

/* ------------------------------------------------------------------------
 * Concurrency: searches while another thread writes (TSan)
 * ------------------------------------------------------------------------ */

typedef struct worker {
    hnswc_index *ix;
    const float *queries;
    size_t nq;
    uint32_t dim;
    int failed;
} worker;

static void *searcher(void *arg)
{
    worker *w = arg;
    for (int round = 0; round < 3; round++)
        for (size_t q = 0; q < w->nq; q++) {
            uint64_t l[K];
            float d[K];
            size_t found;
            if (hnswc_search(w->ix, w->queries + q * w->dim, K, 40, NULL, NULL, l, d, &found) !=
                    HNSWC_OK ||
                found != K)
                w->failed = 1;
        }
    return NULL;
}

static void test_concurrent(void **s)
{
    (void)s;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "c.hnswc");
    const uint32_t dim = 16;
    const size_t n = tu_scaled(2500, 1500);
    hnswc_index *built = build(n, dim, 4);
    tu_ok(hnswc_save(built, path));
    hnswc_free(built);
    hnswc_index *ix = tu_open_mapped(path, 0);
    tu_rng r = tu_rng_make(12);
    size_t nq = 60, nw = 600;
    float *queries = tu_random_vectors(&r, nq, dim, -1.f, 1.f);
    float *adds = tu_random_vectors(&r, nw, dim, -1.f, 1.f);
    worker w[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (worker){ix, queries, nq, dim, 0};
        assert_int_equal(pthread_create(&t[i], NULL, searcher, &w[i]), 0);
    }
    /* new labels (in place after the file's vectors, then a new chunk) and
     * updates of mapped vectors (the write side of the update lock) */
    uint64_t *labels = tu_xmalloc(nw * sizeof *labels);
    for (size_t i = 0; i < nw; i++)
        labels[i] = i % 3 == 0 ? tu_label_of(i) : tu_label_of(n + i);
    size_t added;
    tu_ok(hnswc_add_batch(ix, adds, labels, nw, 0, 2, &added));
    assert_int_equal(added, nw);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failed, 0);
    }
    /* every vector written is there */
    float *v = tu_xmalloc(dim * 4);
    for (size_t i = 0; i < nw; i++) {
        tu_ok(hnswc_get_vector(ix, labels[i], v));
        assert_memory_equal(v, adds + i * dim, dim * 4);
    }
    free(v);
    free(labels);
    free(queries);
    free(adds);
    hnswc_free(ix);
    free(path);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
