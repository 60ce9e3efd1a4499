/*
 * test_threads.c -- the worker pool behind batch calls (src/threads.c).
 *
 * Since 0.2 the threads of a batch are kept between calls and reused, so
 * what could go wrong is what a pool adds:
 *  - a batch after a batch (on fewer, more, the same threads) must see the
 *    pool as it left it: results identical to a one-thread search, call
 *    after call;
 *  - a failed batch must leave the pool usable;
 *  - batches from several threads at once share one pool: all but one run
 *    on threads of their own, and every result is still right;
 *  - after fork() the child has none of the parent's workers and must start
 *    its own instead of waiting on the parent's forever.
 * ThreadSanitizer runs this file too (tests.mk, TSAN_TESTS), except the fork
 * test: TSan does not support threads started in a forked child.
 */
#include "testutil.h"

#include "error.h"
#include "threads.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

enum { DIM = 16, K = 5, EF = 40 };

typedef struct fixture {
    hnswc_index *ix;
    float *queries;
    size_t nq;
    uint64_t *ref_labels; /* one-thread results, nq * K */
    float *ref_dist;
} fixture;

static int setup(void **state) {
    fixture *f = tu_xcalloc(1, sizeof *f);
    tu_rng r = tu_rng_make(7);
    size_t n = tu_scaled(3000, 500);
    float *base = tu_random_vectors(&r, n, DIM, -1.0f, 1.0f);
    uint64_t *labels = tu_xmalloc(n * sizeof *labels);
    for (size_t i = 0; i < n; i++)
        labels[i] = 1000 + i;
    hnswc_options o = {0};
    o.dim = DIM;
    o.M = 8;
    o.ef_construction = 60;
    tu_ok(hnswc_create(&o, &f->ix));
    /* the build itself runs on the pool: 4 threads, then 2 for the rest */
    tu_ok(hnswc_add_batch(f->ix, base, labels, n / 2, 0, 4, NULL));
    tu_ok(hnswc_add_batch(f->ix, base + n / 2 * DIM, labels + n / 2, n - n / 2, 0, 2, NULL));
    free(base);
    free(labels);

    f->nq = 400;
    f->queries = tu_random_vectors(&r, f->nq, DIM, -1.0f, 1.0f);
    f->ref_labels = tu_xmalloc(f->nq * K * sizeof *f->ref_labels);
    f->ref_dist = tu_xmalloc(f->nq * K * sizeof *f->ref_dist);
    size_t *found = tu_xmalloc(f->nq * sizeof *found);
    tu_ok(hnswc_search_batch(f->ix, f->queries, f->nq, K, EF, NULL, NULL, 1, f->ref_labels,
                             f->ref_dist, found));
    for (size_t i = 0; i < f->nq; i++)
        assert_int_equal(found[i], K);
    free(found);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    hnswc_free(f->ix);
    free(f->queries);
    free(f->ref_labels);
    free(f->ref_dist);
    free(f);
    return 0;
}

/* Searches queries [first, first + n) on `threads` threads; returns how many
 * entries differ from the one-thread reference (labels or distance bits),
 * or -1 if the call failed. Thread safe (no cmocka calls). */
static long batch_mismatches(const fixture *f, size_t first, size_t n, unsigned threads) {
    uint64_t labels[64 * K];
    float dist[64 * K];
    size_t found[64];
    if (n > 64)
        return -1;
    if (hnswc_search_batch(f->ix, f->queries + first * DIM, n, K, EF, NULL, NULL, threads, labels,
                           dist, found) != HNSWC_OK)
        return -1;
    long bad = 0;
    for (size_t i = 0; i < n; i++) {
        bad += found[i] != K;
        for (size_t j = 0; j < K; j++) {
            size_t at = (first + i) * K + j;
            bad += labels[i * K + j] != f->ref_labels[at];
            bad += memcmp(&dist[i * K + j], &f->ref_dist[at], sizeof(float)) != 0;
        }
    }
    return bad;
}

/* Hundreds of small batches, the thread count changing from call to call
 * (the pool grows to 7 workers and serves calls wanting fewer). Most come
 * back to back, finding the workers still spinning after the previous
 * batch; every fifth comes after a pause longer than that spin, so its
 * workers are woken from parking -- both ways into a batch are taken. */
static void test_batches_reuse_the_pool(void **state) {
    const fixture *f = *state;
    static const unsigned threads[] = {2, 3, 8, 2, 4, 1, 5};
    size_t first = 0;
    for (unsigned call = 0; call < 300; call++) {
        size_t n = 1 + call % 37;
        if (first + n > f->nq)
            first = 0;
        if (call % 5 == 4) /* threads.c: WORKER_SPIN_NS is 50 us */
            nanosleep(&(struct timespec){.tv_nsec = 300000}, NULL);
        assert_int_equal(batch_mismatches(f, first, n, threads[call % 7]), 0);
        first += n;
    }
}

/* A copy of the fixture's first n queries, to spoil one of (malloc'd). */
static float *first_queries(const fixture *f, size_t n) {
    float *q = tu_xmalloc(n * DIM * sizeof *q);
    memcpy(q, f->queries, n * DIM * sizeof *q);
    return q;
}

/* A batch that fails (a NaN query) on the pool, then good batches: the
 * pool must not be left busy or with a worker inside the failed batch. */
static void test_failed_batch_leaves_pool_usable(void **state) {
    const fixture *f = *state;
    size_t n = 40;
    float *q = first_queries(f, n);
    q[17 * DIM + 3] = NAN;
    uint64_t labels[40 * K];
    size_t found[40];
    for (int round = 0; round < 20; round++) {
        assert_int_equal(hnswc_search_batch(f->ix, q, n, K, EF, NULL, NULL, 4, labels, NULL, found),
                         HNSWC_ERR_NONFINITE);
        assert_int_equal(batch_mismatches(f, 0, 40, 4), 0);
    }
    free(q);
}

typedef struct caller {
    const fixture *f;
    unsigned threads;
    size_t first;
    _Atomic long *mismatches;
} caller;

static void *caller_main(void *arg) {
    caller *c = arg;
    for (unsigned call = 0; call < 60; call++) {
        size_t n = 8 + call % 25;
        size_t first = (c->first + call * 13) % (c->f->nq - n);
        long bad = batch_mismatches(c->f, first, n, c->threads);
        atomic_fetch_add(c->mismatches, bad < 0 ? 1000000 : bad);
    }
    return NULL;
}

/* Four callers at once, each wanting 3 threads: one has the pool at a
 * time, the others start threads of their own; every result stays right. */
static void test_concurrent_batches_share_the_pool(void **state) {
    const fixture *f = *state;
    _Atomic long mismatches = 0;
    pthread_t t[4];
    caller c[4];
    for (unsigned i = 0; i < 4; i++) {
        c[i] = (caller){f, 3, i * 50, &mismatches};
        assert_int_equal(pthread_create(&t[i], NULL, caller_main, &c[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&mismatches), 0);
}

/* fork() after the pool exists: the child must search on threads of its
 * own (the parent's workers do not exist in it). A child that waits on the
 * parent's pool would hang: the alarm turns that into a failure. */
static void test_batches_after_fork(void **state) {
#if defined(UNDER_TSAN)
    (void)state;
    skip();
#else
    const fixture *f = *state;
    assert_int_equal(batch_mismatches(f, 0, 30, 2), 0); /* the pool exists */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(60);
        long bad = 0;
        for (unsigned call = 0; call < 20; call++)
            bad += batch_mismatches(f, call * 10, 10, 2 + call % 3);
        _exit(bad == 0 ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* and the parent's pool is still the parent's */
    assert_int_equal(batch_mismatches(f, 100, 30, 2), 0);
#endif
}

/*
 * Batches of 32 queries or more are searched in an order of their own
 * (index.c, "Ordered batches": each query's descent first, then the walks
 * sorted by where they begin). The results must be those of single
 * searches, bit for bit, on every storage and metric, with a filter, and
 * with removed elements pending (a walk then steps around them).
 */
typedef struct ordered_case {
    hnswc_storage storage;
    hnswc_metric metric;
    bool filter;
    bool removals;
} ordered_case;

static int odd_labels(uint64_t label, void *user) {
    (void)user;
    return (int)(label & 1u);
}

static void check_ordered_case(const ordered_case *c) {
    enum { N = 2500, NQ = 300, KK = 7 };
    tu_rng r = tu_rng_make(11);
    float *base = tu_random_vectors(&r, N, DIM, -1.0f, 1.0f);
    float *queries = tu_random_vectors(&r, NQ, DIM, -1.0f, 1.0f);
    hnswc_options o = {0};
    o.dim = DIM;
    o.M = 8;
    o.ef_construction = 60;
    o.metric = c->metric;
    o.storage = c->storage;
    hnswc_index *ix;
    tu_ok(hnswc_create(&o, &ix));
    uint64_t *ids = tu_xmalloc(N * sizeof *ids);
    for (size_t i = 0; i < N; i++)
        ids[i] = i;
    tu_ok(hnswc_add_batch(ix, base, ids, N, 0, 2, NULL));
    free(ids);
    if (c->removals)
        for (uint64_t label = 0; label < N; label += 7)
            tu_ok(hnswc_remove(ix, label));
    hnswc_filter_fn filter = c->filter ? odd_labels : NULL;
    uint64_t *labels = tu_xmalloc(NQ * KK * sizeof *labels);
    float *dist = tu_xmalloc(NQ * KK * sizeof *dist);
    size_t *found = tu_xmalloc(NQ * sizeof *found);
    for (unsigned threads = 1; threads <= 3; threads += 2) {
        tu_ok(hnswc_search_batch(ix, queries, NQ, KK, 30, filter, NULL, threads, labels, dist,
                                 found));
        for (size_t i = 0; i < NQ; i++) {
            uint64_t one_labels[KK];
            float one_dist[KK];
            size_t one_found = 0;
            tu_ok(hnswc_search(ix, queries + i * DIM, KK, 30, filter, NULL, one_labels, one_dist,
                               &one_found));
            assert_int_equal(found[i], one_found);
            assert_true(one_found > 0);
            for (size_t j = 0; j < one_found; j++) {
                assert_int_equal(labels[i * KK + j], one_labels[j]);
                assert_memory_equal(&dist[i * KK + j], &one_dist[j], sizeof(float));
            }
        }
    }
    free(labels);
    free(dist);
    free(found);
    free(base);
    free(queries);
    hnswc_free(ix);
}

static void test_ordered_batches_equal_single_searches(void **state) {
    (void)state;
    static const ordered_case cases[] = {
        {HNSWC_STORAGE_F32, HNSWC_METRIC_L2, false, false},
        {HNSWC_STORAGE_SQ8, HNSWC_METRIC_L2, false, false},
        {HNSWC_STORAGE_SQ8_ONLY, HNSWC_METRIC_L2, false, false},
        {HNSWC_STORAGE_F32, HNSWC_METRIC_COSINE, false, false},
        {HNSWC_STORAGE_SQ8, HNSWC_METRIC_IP, true, false},
        {HNSWC_STORAGE_SQ8, HNSWC_METRIC_L2, true, true},
        {HNSWC_STORAGE_F32, HNSWC_METRIC_L2, false, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_ordered_case(&cases[i]);
}

/* A non-finite query in an ordered batch: the batch fails whole, every
 * output reads "nothing found", the message names the first bad query. */
static void test_ordered_batch_with_a_bad_query(void **state) {
    const fixture *f = *state;
    size_t n = 200;
    float *q = first_queries(f, n);
    q[120 * DIM + 5] = INFINITY;
    q[170 * DIM] = NAN;
    uint64_t *labels = tu_xmalloc(n * K * sizeof *labels);
    float *dist = tu_xmalloc(n * K * sizeof *dist);
    size_t *found = tu_xmalloc(n * sizeof *found);
    for (unsigned threads = 1; threads <= 4; threads += 3) {
        assert_int_equal(hnswc_search_batch(f->ix, q, n, K, EF, NULL, NULL, threads, labels, dist,
                                            found),
                         HNSWC_ERR_NONFINITE);
        assert_non_null(strstr(hnswc_errmsg(NULL), "vector 120"));
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(found[i], 0);
            for (size_t j = 0; j < K; j++) {
                assert_true(labels[i * K + j] == UINT64_MAX);
                assert_true(isinf(dist[i * K + j]) && dist[i * K + j] > 0);
            }
        }
    }
    free(q);
    free(labels);
    free(dist);
    free(found);
}

/* ------------------------------------------------------------------------
 * parallel_for's slots (threads.h), called directly
 * ------------------------------------------------------------------------ */

enum { SLOT_ITEMS = 2000, SLOT_MAX = 8 };

typedef struct slot_record {
    unsigned threads;               /* parallel_threads for the call */
    _Atomic unsigned ran[SLOT_ITEMS];
    _Atomic int inside[SLOT_MAX];   /* items of a slot running now */
    _Atomic unsigned used[SLOT_MAX];
    _Atomic int bad;                /* a slot out of range, or two at once */
} slot_record;

static hnswc_status slot_item(void *ctx, size_t i, unsigned slot) {
    slot_record *rec = ctx;
    if (slot >= rec->threads || slot >= SLOT_MAX || i >= SLOT_ITEMS) {
        atomic_store(&rec->bad, 1);
        return HNSWC_OK;
    }
    if (atomic_fetch_add(&rec->inside[slot], 1) != 0)
        atomic_store(&rec->bad, 1);
    atomic_fetch_add(&rec->ran[i], 1);
    atomic_fetch_add(&rec->used[slot], 1);
    for (volatile unsigned s = 0; s < 1000; s++) /* a little work, so that threads overlap */
        ;
    atomic_fetch_sub(&rec->inside[slot], 1);
    return HNSWC_OK;
}

/* Every item runs once; every slot is below parallel_threads, and no two
 * items of one slot run at once (what lets a batch keep a thread's scratch
 * in an array by slot, unlocked). Run with the pool free and with it busy
 * (a batch inside a batch item starts threads of its own). */
static void test_slots_are_per_thread(void **state) {
    (void)state;
    static const unsigned threads[] = {0, 1, 2, 3, 5, 8};
    static const size_t sizes[] = {1, 3, 17, SLOT_ITEMS};
    slot_record *rec = tu_xcalloc(1, sizeof *rec);
    for (size_t a = 0; a < sizeof threads / sizeof threads[0]; a++)
        for (size_t b = 0; b < sizeof sizes / sizeof sizes[0]; b++) {
            memset(rec, 0, sizeof *rec);
            unsigned want = threads[a] ? threads[a] : parallel_cpu_count();
            rec->threads = parallel_threads(sizes[b], threads[a]);
            assert_int_equal(rec->threads, sizes[b] < want ? sizes[b] : want);
            if (rec->threads > SLOT_MAX)
                continue; /* a machine with more cores than the record */
            tu_ok(parallel_for(sizes[b], threads[a], slot_item, rec));
            tu_ok(parallel_for_each(sizes[b], threads[a], slot_item, rec));
            assert_false(atomic_load(&rec->bad));
            for (size_t i = 0; i < sizes[b]; i++)
                assert_int_equal(atomic_load(&rec->ran[i]), 2);
        }
    assert_int_equal(parallel_threads(0, 4), 1);
    free(rec);
}

typedef struct nested_job {
    slot_record outer, inner;
} nested_job;

/* An item of an outer batch that runs a whole batch itself: the pool is
 * busy, so the inner batch runs on threads started for it, and its slots
 * are its own (0 .. its threads), whatever the outer slot. */
static hnswc_status nested_item(void *ctx, size_t i, unsigned slot) {
    nested_job *nj = ctx;
    slot_item(&nj->outer, i, slot);
    if (i == 0)
        return parallel_for(SLOT_ITEMS, nj->inner.threads, slot_item, &nj->inner);
    return HNSWC_OK;
}

static void test_slots_of_a_nested_batch(void **state) {
    (void)state;
    nested_job *nj = tu_xcalloc(1, sizeof *nj);
    nj->outer.threads = parallel_threads(64, 2);
    nj->inner.threads = parallel_threads(SLOT_ITEMS, 3);
    tu_ok(parallel_for(64, 2, nested_item, nj));
    assert_false(atomic_load(&nj->outer.bad));
    assert_false(atomic_load(&nj->inner.bad));
    for (size_t i = 0; i < SLOT_ITEMS; i++)
        assert_int_equal(atomic_load(&nj->inner.ran[i]), 1);
    free(nj);
}

/* parallel_for_passes: both passes' items once each, `between` once after
 * the whole first pass and before any of the second, the same slot for a
 * thread in both; a failure in the first pass stops everything after it. */
typedef struct passes_record {
    unsigned threads;
    size_t n, fail_at;
    _Atomic unsigned first[SLOT_ITEMS], second[SLOT_ITEMS];
    _Atomic size_t first_done, second_started;
    _Atomic unsigned between_calls;
    size_t first_done_at_between, second_started_at_between;
    _Atomic int bad;
    _Atomic(const void *) slot_owner[SLOT_MAX]; /* a thread-local's address */
} passes_record;

static _Thread_local char thread_marker;

static void passes_note_slot(passes_record *rec, unsigned slot) {
    if (slot >= rec->threads || slot >= SLOT_MAX) {
        atomic_store(&rec->bad, 1);
        return;
    }
    const void *none = NULL;
    if (!atomic_compare_exchange_strong(&rec->slot_owner[slot], &none, &thread_marker) &&
        none != &thread_marker)
        atomic_store(&rec->bad, 1); /* another thread had this slot */
}

static hnswc_status passes_first(void *ctx, size_t i, unsigned slot) {
    passes_record *rec = ctx;
    passes_note_slot(rec, slot);
    for (volatile unsigned s = 0; s < 500; s++) /* a little work */
        ;
    if (i == rec->fail_at)
        return hnswc_fail(HNSWC_ERR_INVALID, "passes_first: item %zu fails", i);
    atomic_fetch_add(&rec->first[i], 1);
    atomic_fetch_add(&rec->first_done, 1);
    return HNSWC_OK;
}

static void passes_between(void *ctx) {
    passes_record *rec = ctx;
    atomic_fetch_add(&rec->between_calls, 1);
    rec->first_done_at_between = atomic_load(&rec->first_done);
    rec->second_started_at_between = atomic_load(&rec->second_started);
}

static hnswc_status passes_second(void *ctx, size_t i, unsigned slot) {
    passes_record *rec = ctx;
    passes_note_slot(rec, slot);
    atomic_fetch_add(&rec->second_started, 1);
    if (atomic_load(&rec->between_calls) != 1)
        atomic_store(&rec->bad, 1);
    atomic_fetch_add(&rec->second[i], 1);
    return HNSWC_OK;
}

static void test_two_passes(void **state) {
    (void)state;
    static const unsigned threads[] = {1, 2, 3, 5};
    static const size_t sizes[] = {1, 7, SLOT_ITEMS};
    passes_record *rec = tu_xcalloc(1, sizeof *rec);
    for (size_t a = 0; a < sizeof threads / sizeof threads[0]; a++)
        for (size_t b = 0; b < sizeof sizes / sizeof sizes[0]; b++) {
            size_t n = sizes[b];
            memset(rec, 0, sizeof *rec);
            rec->threads = parallel_threads(n, threads[a]);
            rec->n = n;
            rec->fail_at = SIZE_MAX;
            tu_ok(parallel_for_passes(n, threads[a], passes_first, passes_between, passes_second,
                                      rec));
            assert_false(atomic_load(&rec->bad));
            assert_int_equal(atomic_load(&rec->between_calls), 1);
            assert_int_equal(rec->first_done_at_between, n);
            assert_int_equal(rec->second_started_at_between, 0);
            for (size_t i = 0; i < n; i++) {
                assert_int_equal(atomic_load(&rec->first[i]), 1);
                assert_int_equal(atomic_load(&rec->second[i]), 1);
            }
        }
    /* a first-pass failure: its status and message, no `between`, no
     * second pass; then the pool works again */
    for (unsigned t = 1; t <= 3; t++) {
        memset(rec, 0, sizeof *rec);
        rec->threads = parallel_threads(SLOT_ITEMS, t);
        rec->n = SLOT_ITEMS;
        rec->fail_at = 123;
        assert_int_equal(parallel_for_passes(SLOT_ITEMS, t, passes_first, passes_between,
                                             passes_second, rec),
                         HNSWC_ERR_INVALID);
        assert_non_null(strstr(hnswc_errmsg(NULL), "item 123 fails"));
        assert_int_equal(atomic_load(&rec->between_calls), 0);
        assert_int_equal(atomic_load(&rec->second_started), 0);
        assert_false(atomic_load(&rec->bad));
    }
    memset(rec, 0, sizeof *rec);
    rec->threads = parallel_threads(SLOT_ITEMS, 2);
    rec->fail_at = SIZE_MAX;
    tu_ok(parallel_for_passes(SLOT_ITEMS, 2, passes_first, passes_between, passes_second, rec));
    assert_int_equal(atomic_load(&rec->second_started), SLOT_ITEMS);
    free(rec);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_reuse_the_pool),
        cmocka_unit_test(test_failed_batch_leaves_pool_usable),
        cmocka_unit_test(test_concurrent_batches_share_the_pool),
        cmocka_unit_test(test_batches_after_fork),
        cmocka_unit_test(test_ordered_batches_equal_single_searches),
        cmocka_unit_test(test_ordered_batch_with_a_bad_query),
        cmocka_unit_test(test_slots_are_per_thread),
        cmocka_unit_test(test_slots_of_a_nested_batch),
        cmocka_unit_test(test_two_passes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
