/*
 * test_indegree.c -- the in-degrees of a loaded or opened index are counted
 * at its first write, not when it is read (storage.c, "In-degrees"). White
 * box: it reads the index record (index.h, storage.h).
 *
 *  - After hnswc_deserialize, hnswc_load and hnswc_open(MMAP) they are not
 *    counted (indeg_stale), and searches leave them so.
 *  - The first add, update, removal or compaction counts them: afterwards
 *    every in-degree of every node on every layer equals a recount from
 *    the links, and stays so through further writes.
 *  - The same writes on the index and on its loaded or mapped copy give the
 *    same graph, byte for byte (pruning's orphan protection and removal
 *    read in-degrees, so counts that were wrong -- or never counted --
 *    change which links are kept).
 *  - First writers racing (two threads adding, one removing, two
 *    searching, released together on a mapped index): the count is made
 *    once, before any link is written, and is exact afterwards
 *    (make test-c-tsan runs this under ThreadSanitizer).
 */
#include "testutil.h"

#include "storage.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 12, K = 10 };

static hnswc_index *build(size_t n, uint64_t seed)
{
    return tu_build_random(n, DIM, 6, 40, seed);
}

static bool stale(const hnswc_index *ix)
{
    return atomic_load(&ix->indeg_stale) != 0;
}

/* Every slot's in-degree on every layer equals a recount from the links. */
static void expect_exact(hnswc_index *ix)
{
    assert_false(stale(ix));
    uint64_t n = atomic_load(&ix->count);
    uint32_t *deg = tu_xmalloc((size_t)(n ? n : 1) * sizeof *deg);
    for (int lv = 0; lv < HNSWC_MAX_LEVELS; lv++) {
        memset(deg, 0, (size_t)n * sizeof *deg);
        bool any = false;
        for (uint64_t i = 0; i < n; i++) {
            node_head *h = node_at(ix, (node_id)i);
            if (node_level(h) < lv)
                continue;
            any = true;
            _Atomic uint32_t *links = node_links(ix, h, lv);
            uint32_t d = node_links_count(ix, links, lv);
            for (uint32_t j = 0; j < d; j++)
                deg[atomic_load(&links[1 + j])]++;
        }
        if (!any)
            break;
        for (uint64_t i = 0; i < n; i++) {
            node_head *h = node_at(ix, (node_id)i);
            if (node_level(h) < lv)
                continue;
            uint32_t got = atomic_load(node_indeg(ix, h, lv));
            if (got != deg[i])
                fail_msg("node %llu layer %d: in-degree %u, its links say %u",
                         (unsigned long long)i, lv, got, deg[i]);
        }
    }
    free(deg);
}

static void search_some(const hnswc_index *ix, tu_rng *r)
{
    float *q = tu_random_vectors(r, 20, DIM, -1.f, 1.f);
    for (size_t i = 0; i < 20; i++) {
        uint64_t l[K];
        float d[K];
        size_t found;
        tu_ok(hnswc_search(ix, q + i * DIM, K, 30, NULL, NULL, l, d, &found));
        assert_int_equal(found, K);
    }
    free(q);
}

/* ------------------------------------------------------------------------
 * Counted at the first write, and exact
 * ------------------------------------------------------------------------ */

typedef enum first_write { W_ADD, W_UPDATE, W_REMOVE, W_COMPACT } first_write;

static void first_write_counts(first_write how)
{
    const size_t n = 1500;
    hnswc_index *built = build(n, 7);
    for (size_t i = 0; i < n; i += 13)
        tu_ok(hnswc_mark_deleted(built, tu_label_of(i)));
    void *buf;
    size_t size;
    tu_ok(hnswc_serialize(built, &buf, &size));
    hnswc_free(built);
    hnswc_index *ix = NULL;
    tu_ok(hnswc_deserialize(buf, size, &ix));
    hnswc_buffer_free(buf);
    assert_true(stale(ix));
    tu_rng r = tu_rng_make(3);
    search_some(ix, &r);
    assert_true(stale(ix)); /* searches never count */

    float *v = tu_random_vectors(&r, 1, DIM, -1.f, 1.f);
    uint64_t gone = tu_label_of(5);
    size_t removed;
    switch (how) {
    case W_ADD: tu_ok(hnswc_add(ix, tu_label_of(n), v, 0)); break;
    case W_UPDATE: tu_ok(hnswc_add(ix, tu_label_of(2), v, 0)); break;
    case W_REMOVE: tu_ok(hnswc_remove_batch(ix, &gone, 1, 1)); break;
    case W_COMPACT:
        tu_ok(hnswc_compact(ix, 1, &removed));
        assert_true(removed > 0);
        break;
    }
    expect_exact(ix);
    /* and through more writes of every kind */
    float *more = tu_random_vectors(&r, 200, DIM, -1.f, 1.f);
    for (size_t i = 0; i < 200; i++)
        tu_ok(hnswc_add(ix, i % 4 == 0 ? tu_label_of(i + 20) : tu_label_of(n + 1 + i),
                        more + i * DIM, 0));
    uint64_t rm[100];
    for (size_t i = 0; i < 100; i++)
        rm[i] = tu_label_of(2 + 13 * i); /* never marked deleted: compact took those */
    tu_ok(hnswc_remove_batch(ix, rm, 100, 1));
    expect_exact(ix);
    search_some(ix, &r);
    free(more);
    free(v);
    hnswc_free(ix);
}

static void test_first_add(void **s) { (void)s; first_write_counts(W_ADD); }
static void test_first_update(void **s) { (void)s; first_write_counts(W_UPDATE); }
static void test_first_remove(void **s) { (void)s; first_write_counts(W_REMOVE); }
static void test_first_compact(void **s) { (void)s; first_write_counts(W_COMPACT); }

/* ------------------------------------------------------------------------
 * The same writes, the same graph
 * ------------------------------------------------------------------------ */

/* Adds, updates, removals and slot reuse, one thread: deterministic. */
static void writes(hnswc_index *ix, size_t n)
{
    tu_rng r = tu_rng_make(99);
    float *v = tu_random_vectors(&r, 400, DIM, -1.f, 1.f);
    for (size_t i = 0; i < 250; i++) /* new labels, and updates of old ones */
        tu_ok(hnswc_add(ix, i % 5 == 0 ? tu_label_of(i * 3) : tu_label_of(n + i), v + i * DIM, 0));
    uint64_t rm[150];
    for (size_t i = 0; i < 150; i++)
        rm[i] = tu_label_of(1 + 7 * i);
    tu_ok(hnswc_remove_batch(ix, rm, 150, 1));
    for (size_t i = 250; i < 400; i++) /* into freed slots */
        tu_ok(hnswc_add(ix, tu_label_of(n + i), v + i * DIM, 0));
    free(v);
}

static void test_same_graph(void **s)
{
    (void)s;
    const size_t n = 1200;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "g.hnswc");
    hnswc_index *orig = build(n, 11);
    tu_ok(hnswc_save(orig, path));
    hnswc_index *loaded = NULL, *mapped = NULL;
    tu_ok(hnswc_load(path, &loaded));
    tu_ok(hnswc_open(path, HNSWC_OPEN_MMAP, &mapped));
    assert_true(stale(loaded));
    assert_true(stale(mapped));

    writes(orig, n);
    writes(loaded, n);
    writes(mapped, n);
    void *a, *b, *c;
    size_t na, nb, nc;
    tu_ok(hnswc_serialize(orig, &a, &na));
    tu_ok(hnswc_serialize(loaded, &b, &nb));
    tu_ok(hnswc_serialize(mapped, &c, &nc));
    assert_int_equal(na, nb);
    assert_int_equal(na, nc);
    assert_memory_equal(a, b, na);
    assert_memory_equal(a, c, na);
    expect_exact(loaded);
    expect_exact(mapped);
    hnswc_buffer_free(a);
    hnswc_buffer_free(b);
    hnswc_buffer_free(c);
    hnswc_free(orig);
    hnswc_free(loaded);
    hnswc_free(mapped);
    free(path);
    tu_rmdir(dir);
}

/* ------------------------------------------------------------------------
 * First writers racing (TSan)
 * ------------------------------------------------------------------------ */

typedef struct racer {
    hnswc_index *ix;
    pthread_barrier_t *go;
    int role; /* 0, 1: add; 2: remove; 3, 4: search */
    size_t n;
    int failed;
} racer;

static void *race(void *arg)
{
    racer *w = arg;
    tu_rng r = tu_rng_make(100 + (uint64_t)w->role);
    float *v = tu_random_vectors(&r, 120, DIM, -1.f, 1.f);
    pthread_barrier_wait(w->go);
    for (size_t i = 0; i < 120; i++) {
        uint64_t l[K];
        float d[K];
        size_t found;
        hnswc_status st = HNSWC_OK;
        if (w->role < 2)
            st = hnswc_add(w->ix, tu_label_of(w->n + (size_t)w->role * 1000 + i), v + i * DIM, 0);
        else if (w->role == 2 && i < 60)
            st = hnswc_remove(w->ix, tu_label_of(5 * i + 2));
        else if (w->role > 2)
            st = hnswc_search(w->ix, v + i * DIM, K, 30, NULL, NULL, l, d, &found);
        if (st != HNSWC_OK)
            w->failed = 1;
    }
    free(v);
    return NULL;
}

static void test_racing_first_writers(void **s)
{
    (void)s;
    const size_t n = tu_scaled(1500, 800);
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "r.hnswc");
    hnswc_index *built = build(n, 21);
    tu_ok(hnswc_save(built, path));
    hnswc_free(built);
    hnswc_index *ix = NULL;
    tu_ok(hnswc_open(path, HNSWC_OPEN_MMAP, &ix));
    assert_true(stale(ix));
    enum { T = 5 };
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, T);
    racer w[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        w[i] = (racer){ix, &go, i, n, 0};
        assert_int_equal(pthread_create(&t[i], NULL, race, &w[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failed, 0);
    }
    pthread_barrier_destroy(&go);
    expect_exact(ix);
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.count, n + 240 - 60);
    hnswc_free(ix);
    free(path);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_add),
        cmocka_unit_test(test_first_update),
        cmocka_unit_test(test_first_remove),
        cmocka_unit_test(test_first_compact),
        cmocka_unit_test(test_same_graph),
        cmocka_unit_test(test_racing_first_writers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
