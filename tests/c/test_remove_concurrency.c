/*
 * test_remove_concurrency.c -- removal with everything else running at
 * once; must be clean under ThreadSanitizer (make test-c-tsan runs it).
 *
 * Threads, all on one index:
 *   - two removers: each removes its own share of the pre-added rows, in a
 *     random order, alone or in batches (hnswc_remove, hnswc_remove_batch),
 *     and stamps each row with a sequence number once its call has returned;
 *   - two adders: new rows (which take the slots removal frees) and updates
 *     of their own rows (in-place rewrites, the update lock's write side);
 *   - a marker: marks and unmarks rows nobody removes, now and then removing
 *     a tombstone of its own for good;
 *   - a compactor: hnswc_compact now and then (tombstones of its own rows);
 *   - two searchers and a batch searcher: every result is sane, and NO
 *     result is a row whose removal had returned before the search began;
 *   - a reader: get_vector (the stored vector, or NOT_FOUND once removed),
 *     info and get_labels.
 * Removers trigger reclamations (the write-side pass that frees slots) while
 * searches run, and adders reuse the freed slots at once; a search touching
 * a reused slot as its old element would be a data race on its record.
 *
 * At the end, with nothing running: every removed row is gone, every other
 * row holds its last vector, the counts agree, a compact leaves no slot
 * pending (nothing links to any removed node), recall is high, and the index
 * saves and loads.
 */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 16, K = 10 };

/* Row ranges (label = tu_label_of(row)). */
static size_t NR;    /* rows [0, NR): pre-added, removed by the two removers      */
static size_t NM;    /* rows [NR, NR + NM): pre-added, marked/unmarked, compacted */
static size_t NA;    /* per adder: new rows                                       */
static size_t TOTAL;

static size_t m_base(void) { return NR; }
static size_t a_base(int t) { return NR + NM + (size_t)t * NA; }

static void vector_of(size_t row, uint32_t version, float *out)
{
    tu_rng r = tu_rng_make((uint64_t)row * 7919u + version * 104729u + 3);
    for (int i = 0; i < DIM; i++)
        out[i] = (float)tu_uniform(&r);
}

/* Per row: the last version written (one writer per row), and for removable
 * rows the sequence number at which their removal returned (0: not yet). */
static uint32_t *last_version;
static _Atomic uint64_t *removed_at;
static _Atomic uint64_t seq = 1;
/* rows of the marker range removed for good (by the marker or a compact) */
static _Atomic unsigned char *m_removed;

/* ------------------------------------------------------------------------
 * Failures from worker threads (cmocka is not thread safe)
 * ------------------------------------------------------------------------ */


static hnswc_index *ix;
static atomic_int writers_running;
static atomic_size_t searches_done;

/* A result is sane, and holds no row whose removal returned at or before
 * `start` (the sequence number read before the search began). */
static void check_result(const uint64_t *labels, const float *dists, size_t found, uint64_t start,
                         const char *who)
{
    if (found > K) {
        tu_record("%s: n_found %zu > k", who, found);
        return;
    }
    for (size_t i = 0; i < found; i++) {
        size_t row = tu_row_of(labels[i], TOTAL);
        if (row == SIZE_MAX) {
            tu_record("%s: unknown label %llu", who, (unsigned long long)labels[i]);
            continue;
        }
        if (row < NR) {
            uint64_t at = atomic_load_explicit(&removed_at[row], memory_order_acquire);
            if (at != 0 && at <= start)
                tu_record("%s: row %zu returned by a search that began after its removal "
                       "returned (removed at %llu, search at %llu)", who, row,
                       (unsigned long long)at, (unsigned long long)start);
        }
        if (!isfinite(dists[i]) || (i > 0 && dists[i] < dists[i - 1]))
            tu_record("%s: bad distance order at %zu", who, i);
        for (size_t j = 0; j < i; j++)
            if (labels[j] == labels[i])
                tu_record("%s: label %llu twice", who, (unsigned long long)labels[i]);
    }
}

/* ------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------ */

/* Removes rows t, t+2, t+4, ... of [0, NR) in a random order: a third one at
 * a time, the rest in batches of 1..40. */
static void *remover(void *arg)
{
    int t = (int)(intptr_t)arg;
    tu_rng r = tu_rng_make(900 + (uint64_t)t);
    size_t n = 0;
    size_t *rows = tu_xmalloc((NR / 2 + 1) * sizeof *rows);
    for (size_t row = (size_t)t; row < NR; row += 2)
        rows[n++] = row;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(tu_next(&r) % i), x = rows[i - 1];
        rows[i - 1] = rows[j];
        rows[j] = x;
    }
    uint64_t batch[40];
    for (size_t i = 0; i < n;) {
        size_t m = tu_next(&r) % 3 == 0 ? 1 : 1 + (size_t)(tu_next(&r) % 40);
        if (m > n - i)
            m = n - i;
        for (size_t j = 0; j < m; j++)
            batch[j] = tu_label_of(rows[i + j]);
        if (m == 1)
            TU_WCHECK(hnswc_remove(ix, batch[0]));
        else
            TU_WCHECK(hnswc_remove_batch(ix, batch, m, 1 + (unsigned)(tu_next(&r) % 2)));
        uint64_t s = atomic_fetch_add(&seq, 1) + 1;
        for (size_t j = 0; j < m; j++)
            atomic_store_explicit(&removed_at[rows[i + j]], s, memory_order_release);
        /* removing again is an error that changes nothing */
        if (m == 1 && hnswc_remove(ix, batch[0]) != HNSWC_ERR_NOT_FOUND)
            tu_record("remover: a second removal of row %zu did not fail", rows[i]);
        i += m;
    }
    free(rows);
    atomic_fetch_sub(&writers_running, 1);
    return NULL;
}

/* Adds its new rows and updates one of them every fourth add. */
static void *adder(void *arg)
{
    int t = (int)(intptr_t)arg;
    tu_rng r = tu_rng_make(700 + (uint64_t)t);
    float v[DIM];
    size_t base = a_base(t);
    for (size_t i = 0; i < NA; i++) {
        vector_of(base + i, 0, v);
        TU_WCHECK(hnswc_add(ix, tu_label_of(base + i), v, 0));
        last_version[base + i] = 0;
        if (i % 4 == 3) {
            size_t row = base + (size_t)(tu_next(&r) % (i + 1));
            uint32_t ver = ++last_version[row];
            vector_of(row, ver, v);
            TU_WCHECK(hnswc_add(ix, tu_label_of(row), v, 0));
        }
    }
    atomic_fetch_sub(&writers_running, 1);
    return NULL;
}

/* Marks and unmarks rows of the marker range; every 25th marked row is
 * removed for good instead of unmarked. The rest are left marked at the end
 * for the last compact. */
static void *marker(void *arg)
{
    (void)arg;
    tu_rng r = tu_rng_make(800);
    for (size_t i = 0; i < NM * 2; i++) {
        size_t row = m_base() + (size_t)(tu_next(&r) % NM);
        if (atomic_load(&m_removed[row - m_base()]))
            continue;
        hnswc_status st = hnswc_mark_deleted(ix, tu_label_of(row));
        if (st == HNSWC_ERR_DELETED) { /* already marked: unmark */
            st = hnswc_unmark_deleted(ix, tu_label_of(row));
            if (st != HNSWC_OK && st != HNSWC_ERR_NOT_FOUND)
                tu_record("marker: unmark: %s", hnswc_errmsg(NULL));
        } else if (st == HNSWC_OK && i % 25 == 0) {
            st = hnswc_remove(ix, tu_label_of(row));
            if (st == HNSWC_OK)
                atomic_store(&m_removed[row - m_base()], 1);
            else if (st != HNSWC_ERR_NOT_FOUND) /* a compact may have taken it */
                tu_record("marker: remove: %s", hnswc_errmsg(NULL));
        } else if (st != HNSWC_OK && st != HNSWC_ERR_NOT_FOUND) {
            tu_record("marker: mark: %s", hnswc_errmsg(NULL));
        }
    }
    atomic_fetch_sub(&writers_running, 1);
    return NULL;
}

/* Compacts now and then while the others run. */
static void *compactor(void *arg)
{
    (void)arg;
    while (atomic_load(&writers_running) > 1) { /* until the others are done */
        size_t removed = 0;
        TU_WCHECK(hnswc_compact(ix, 2, &removed));
        for (int i = 0; i < 20 && atomic_load(&writers_running) > 1; i++) {
            float q[DIM];
            vector_of(TOTAL + (size_t)i, 9, q);
            uint64_t l[K];
            float d[K];
            size_t f;
            TU_WCHECK(hnswc_search(ix, q, K, 16, NULL, NULL, l, d, &f));
        }
    }
    atomic_fetch_sub(&writers_running, 1);
    return NULL;
}

static void *searcher(void *arg)
{
    int t = (int)(intptr_t)arg;
    tu_rng r = tu_rng_make(600 + (uint64_t)t);
    float q[DIM];
    uint64_t labels[K];
    float dists[K];
    while (atomic_load(&writers_running) > 0) {
        for (int i = 0; i < DIM; i++)
            q[i] = (float)tu_uniform(&r);
        uint64_t start = atomic_load_explicit(&seq, memory_order_acquire);
        size_t found = 0;
        TU_WCHECK(hnswc_search(ix, q, K, 16 + (size_t)(tu_next(&r) % 32), NULL, NULL, labels, dists,
                            &found));
        check_result(labels, dists, found, start, "searcher");
        atomic_fetch_add(&searches_done, 1);
    }
    return NULL;
}

static void *batch_searcher(void *arg)
{
    (void)arg;
    enum { NQ = 8 };
    tu_rng r = tu_rng_make(650);
    float q[NQ * DIM];
    uint64_t labels[NQ * K];
    float dists[NQ * K];
    size_t found[NQ];
    while (atomic_load(&writers_running) > 0) {
        for (int i = 0; i < NQ * DIM; i++)
            q[i] = (float)tu_uniform(&r);
        uint64_t start = atomic_load_explicit(&seq, memory_order_acquire);
        TU_WCHECK(hnswc_search_batch(ix, q, NQ, K, 24, NULL, NULL, 2, labels, dists, found));
        for (int i = 0; i < NQ; i++)
            check_result(labels + i * K, dists + i * K, found[i], start, "batch searcher");
    }
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    tu_rng r = tu_rng_make(660);
    float v[DIM], want[DIM];
    uint64_t *labels = tu_xmalloc(TOTAL * sizeof *labels);
    while (atomic_load(&writers_running) > 0) {
        size_t row = (size_t)(tu_next(&r) % NR);
        uint64_t before = atomic_load_explicit(&removed_at[row], memory_order_acquire);
        hnswc_status st = hnswc_get_vector(ix, tu_label_of(row), v);
        if (st == HNSWC_OK) {
            if (before != 0)
                tu_record("reader: row %zu readable after its removal returned", row);
            vector_of(row, 0, want);
            if (memcmp(v, want, sizeof v) != 0)
                tu_record("reader: row %zu has a wrong vector", row);
        } else if (st != HNSWC_ERR_NOT_FOUND) {
            tu_record("reader: get_vector: %s", hnswc_errmsg(NULL));
        }
        hnswc_info in;
        TU_WCHECK(hnswc_get_info(ix, &in));
        if (in.count > TOTAL || in.live_count > in.count || in.pending_slots > in.removed_slots)
            tu_record("reader: inconsistent info (count %llu, live %llu, pending %llu, removed %llu)",
                   (unsigned long long)in.count, (unsigned long long)in.live_count,
                   (unsigned long long)in.pending_slots, (unsigned long long)in.removed_slots);
        size_t n;
        hnswc_status gs = hnswc_get_labels(ix, labels, TOTAL, &n);
        if (gs != HNSWC_OK || n > TOTAL)
            tu_record("reader: get_labels: %s", hnswc_errmsg(NULL));
    }
    free(labels);
    return NULL;
}

/* ------------------------------------------------------------------------
 * The test
 * ------------------------------------------------------------------------ */

static void test_remove_concurrent_stress(void **s)
{
    (void)s;
    NR = tu_scaled(3000, 800);
    NM = tu_scaled(600, 200);
    NA = tu_scaled(1500, 400);
    TOTAL = NR + NM + 2 * NA;
    last_version = tu_xcalloc(TOTAL, sizeof *last_version);
    removed_at = tu_xcalloc(NR, sizeof *removed_at);
    m_removed = tu_xcalloc(NM, sizeof *m_removed);

    ix = tu_create(DIM, HNSWC_METRIC_L2, 8, 60, 5, 0);
    float *pre = tu_xmalloc((NR + NM) * DIM * sizeof *pre);
    uint64_t *labels = tu_xmalloc((NR + NM) * sizeof *labels);
    for (size_t row = 0; row < NR + NM; row++) {
        vector_of(row, 0, pre + row * DIM);
        labels[row] = tu_label_of(row);
    }
    tu_ok(hnswc_add_batch(ix, pre, labels, NR + NM, 0, 2, NULL));

    pthread_t th[11];
    int nt = 0;
    atomic_store(&writers_running, 6);
    pthread_create(&th[nt++], NULL, remover, (void *)(intptr_t)0);
    pthread_create(&th[nt++], NULL, remover, (void *)(intptr_t)1);
    pthread_create(&th[nt++], NULL, adder, (void *)(intptr_t)0);
    pthread_create(&th[nt++], NULL, adder, (void *)(intptr_t)1);
    pthread_create(&th[nt++], NULL, marker, NULL);
    pthread_create(&th[nt++], NULL, compactor, NULL);
    pthread_create(&th[nt++], NULL, searcher, (void *)(intptr_t)0);
    pthread_create(&th[nt++], NULL, searcher, (void *)(intptr_t)1);
    pthread_create(&th[nt++], NULL, batch_searcher, NULL);
    pthread_create(&th[nt++], NULL, reader, NULL);
    for (int i = 0; i < nt; i++)
        pthread_join(th[i], NULL);
    tu_assert_no_failures();
    assert_true(atomic_load(&searches_done) > 0);

    /* quiescent: every removable row is gone, every added row current */
    float v[DIM], want[DIM];
    for (size_t row = 0; row < NR; row++)
        tu_expect_err(hnswc_get_vector(ix, tu_label_of(row), v), HNSWC_ERR_NOT_FOUND);
    size_t m_gone = 0;
    for (size_t i = 0; i < NM; i++) {
        hnswc_status st = hnswc_get_vector(ix, tu_label_of(m_base() + i), v);
        m_gone += st == HNSWC_ERR_NOT_FOUND;
        if (atomic_load(&m_removed[i]))
            assert_int_equal(st, HNSWC_ERR_NOT_FOUND);
    }
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < NA; i++) {
            size_t row = a_base(t) + i;
            tu_ok(hnswc_get_vector(ix, tu_label_of(row), v));
            vector_of(row, last_version[row], want);
            assert_memory_equal(v, want, sizeof v);
        }
    hnswc_info in;
    tu_ok(hnswc_get_info(ix, &in));
    assert_int_equal(in.count, NM - m_gone + 2 * NA);
    assert_true(in.reused_total > 0); /* adds took slots freed meanwhile */

    /* a last compact removes the tombstones left and reclaims every slot:
     * nothing links to a removed node any more */
    size_t removed;
    tu_ok(hnswc_compact(ix, 2, &removed));
    tu_ok(hnswc_get_info(ix, &in));
    assert_int_equal(in.deleted_count, 0);
    assert_int_equal(in.pending_slots, 0);
    assert_int_equal(in.count, NM - m_gone - removed + 2 * NA);

    /* recall over what is left (the adders' rows and the unmarked ones) */
    size_t n_left = 0;
    float *left = tu_xmalloc(TOTAL * DIM * sizeof *left);
    uint64_t *left_labels = tu_xmalloc(TOTAL * sizeof *left_labels);
    for (size_t row = m_base(); row < TOTAL; row++) {
        if (hnswc_get_vector(ix, tu_label_of(row), left + n_left * DIM) == HNSWC_OK)
            left_labels[n_left++] = tu_label_of(row);
    }
    assert_int_equal(n_left, in.count);
    tu_rng r = tu_rng_make(61);
    size_t hits = 0;
    for (int t = 0; t < 100; t++) {
        float q[DIM];
        for (int i = 0; i < DIM; i++)
            q[i] = (float)tu_uniform(&r);
        size_t rows[K];
        double td[K];
        size_t tf = tu_brute_knn(HNSWC_METRIC_L2, left, n_left, DIM, NULL, NULL, NULL, q, K, rows,
                                 td);
        uint64_t l[K];
        float d[K];
        size_t f;
        tu_ok(hnswc_search(ix, q, K, 64, NULL, NULL, l, d, &f));
        assert_int_equal(f, tf);
        for (size_t i = 0; i < f; i++)
            hits += d[i] <= td[K - 1] * (1 + 1e-5) + 1e-6;
    }
    assert_true(hits >= 95 * K);

    void *buf;
    size_t size;
    tu_ok(hnswc_serialize(ix, &buf, &size));
    hnswc_index *loaded;
    tu_ok(hnswc_deserialize(buf, size, &loaded));
    hnswc_info li;
    tu_ok(hnswc_get_info(loaded, &li));
    assert_int_equal(li.count, in.count);
    hnswc_free(loaded);
    hnswc_buffer_free(buf);

    free(left);
    free(left_labels);
    free(pre);
    free(labels);
    free(last_version);
    free((void *)removed_at);
    free((void *)m_removed);
    hnswc_free(ix);
}

/*
 * The smallest case of the race the reclamation must survive: one thread
 * removes and re-adds (the new element takes the freed slot) while searches
 * run with ef large enough to touch every node.
 */
static void *hammer_search(void *arg)
{
    (void)arg;
    float q[DIM];
    tu_rng r = tu_rng_make(31);
    while (atomic_load(&writers_running) > 0) {
        for (int i = 0; i < DIM; i++)
            q[i] = (float)tu_uniform(&r);
        uint64_t start = atomic_load_explicit(&seq, memory_order_acquire);
        uint64_t l[K];
        float d[K];
        size_t f;
        TU_WCHECK(hnswc_search(ix, q, K, 400, NULL, NULL, l, d, &f));
        check_result(l, d, f, start, "hammer");
    }
    return NULL;
}

static void test_reuse_under_searches(void **s)
{
    (void)s;
    NR = 300;
    NM = 0;
    NA = 0;
    TOTAL = NR + 100000;
    removed_at = tu_xcalloc(NR, sizeof *removed_at);
    atomic_store(&seq, 1);
    ix = tu_create(DIM, HNSWC_METRIC_L2, 4, 40, 9, 0);
    float v[DIM];
    for (size_t row = 0; row < NR; row++) {
        vector_of(row, 0, v);
        tu_ok(hnswc_add(ix, tu_label_of(row), v, 0));
    }
    atomic_store(&writers_running, 1);
    pthread_t th[2];
    pthread_create(&th[0], NULL, hammer_search, NULL);
    pthread_create(&th[1], NULL, hammer_search, NULL);
    /* rows NR.. are added under new labels into the freed slots; the rows
     * removed are < NR (checked) or earlier new rows (not checked) */
    size_t next = NR, rounds = tu_scaled(60, 15);
    uint64_t batch[50];
    for (size_t round = 0; round < rounds; round++) {
        for (size_t j = 0; j < 50; j++)
            batch[j] = tu_label_of(round < NR / 50 ? round * 50 + j : next - 300 + j);
        if (hnswc_remove_batch(ix, batch, 50, 1) != HNSWC_OK)
            tu_record("remove_batch: %s", hnswc_errmsg(NULL));
        size_t done = hnswc_compact(ix, 1, NULL) == HNSWC_OK;
        if (!done)
            tu_record("compact: %s", hnswc_errmsg(NULL));
        uint64_t stamp = atomic_fetch_add(&seq, 1) + 1;
        if (round < NR / 50)
            for (size_t j = 0; j < 50; j++)
                atomic_store_explicit(&removed_at[round * 50 + j], stamp, memory_order_release);
        for (size_t j = 0; j < 50; j++, next++) {
            vector_of(next, 0, v);
            if (hnswc_add(ix, tu_label_of(next), v, 0) != HNSWC_OK)
                tu_record("add: %s", hnswc_errmsg(NULL));
        }
    }
    atomic_store(&writers_running, 0);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    tu_assert_no_failures();
    hnswc_info in;
    tu_ok(hnswc_get_info(ix, &in));
    assert_int_equal(in.count, NR);
    assert_int_equal(in.count + in.removed_slots, NR); /* every add took a freed slot */
    free((void *)removed_at);
    hnswc_free(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remove_concurrent_stress),
        cmocka_unit_test(test_reuse_under_searches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
