/*
 * test_layout.c -- hnswc_relayout and the automatic relayout of batch adds.
 *
 * A relayout renumbers the nodes and moves their records; it must not change
 * the graph (which node links to which, in which order), the labels, the
 * vectors or the deletion marks. Searches visit neighbours in list order and
 * measure the same vectors, so every search result -- labels and distances,
 * bit for bit -- must be what it was before, at every ef; the data here are
 * random floats, so no two distances tie and the comparison is exact.
 * Checked for f32 and sq8 storage, with tombstones, with removals pending
 * and after removals + compact (free slots), after a save and load of the
 * relaid-out index, and for a mapped index. The inspection calls must
 * answer for the new layout: every label's node id leads to a node with
 * that label, and its links, read as labels, are the same lists as before.
 * (test_faults.c fails each allocation of a relayout in turn;
 * test_relayout_concurrency.c runs relayouts beside searches and adds.)
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { DIM = 12, K = 10, NQ = 200 };
static const size_t EFS[] = {10, 16, 40, 100};
#define N_EFS (sizeof EFS / sizeof EFS[0])

/* ========================================================================
 * Snapshots of what a caller sees
 * ======================================================================== */

/* Every search result for the queries at every ef, and a search_exact. */
typedef struct results {
    uint64_t labels[N_EFS + 1][NQ * K];
    float dists[N_EFS + 1][NQ * K];
    size_t found[N_EFS + 1][NQ];
} results;

static void search_all(const hnswc_index *ix, const float *q, results *r) {
    memset(r, 0, sizeof *r);
    for (size_t e = 0; e <= N_EFS; e++)
        for (size_t i = 0; i < NQ; i++) {
            if (e < N_EFS)
                tu_ok(hnswc_search(ix, q + i * DIM, K, EFS[e], NULL, NULL, r->labels[e] + i * K,
                                   r->dists[e] + i * K, &r->found[e][i]));
            else
                tu_ok(hnswc_search_exact(ix, q + i * DIM, K, NULL, NULL, r->labels[e] + i * K,
                                         r->dists[e] + i * K, &r->found[e][i]));
        }
}

static void expect_same_results(const results *a, const results *b) {
    for (size_t e = 0; e <= N_EFS; e++)
        for (size_t i = 0; i < NQ; i++) {
            assert_int_equal(a->found[e][i], b->found[e][i]);
            assert_memory_equal(a->labels[e] + i * K, b->labels[e] + i * K,
                                a->found[e][i] * sizeof(uint64_t));
            assert_memory_equal(a->dists[e] + i * K, b->dists[e] + i * K,
                                a->found[e][i] * sizeof(float));
        }
}

/* The graph as labels: per label (sorted), its level, deleted mark, vector
 * and, per layer, its links translated to labels, in list order. */
typedef struct graph_view {
    size_t n;
    uint64_t *labels;  /* sorted */
    char *text;        /* one line per label, comparable with strcmp */
} graph_view;

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static graph_view view_of(const hnswc_index *ix) {
    graph_view v = {0};
    hnswc_info in;
    tu_ok(hnswc_get_info(ix, &in));
    v.n = (size_t)in.count;
    v.labels = tu_xmalloc((v.n + 1) * sizeof *v.labels);
    size_t got = 0;
    tu_ok(hnswc_get_labels(ix, v.labels, v.n, &got));
    assert_int_equal(got, v.n);
    qsort(v.labels, v.n, sizeof *v.labels, cmp_u64);
    size_t cap = 256 + v.n * 64 * (size_t)(in.M * 2 + 8 + DIM), len = 0;
    v.text = tu_xmalloc(cap);
    v.text[0] = '\0';
    uint32_t links[256];
    for (size_t i = 0; i < v.n; i++) {
        uint32_t id;
        hnswc_node node;
        tu_ok(hnswc_node_id(ix, v.labels[i], &id));
        tu_ok(hnswc_node_info(ix, id, &node));
        assert_int_equal(node.label, v.labels[i]); /* the id leads to the label */
        float vec[DIM];
        tu_ok(hnswc_get_vector(ix, v.labels[i], vec));
        len += (size_t)snprintf(v.text + len, cap - len, "%llu L%d D%d",
                                (unsigned long long)v.labels[i], node.level, node.deleted);
        for (int d = 0; d < DIM; d++)
            len += (size_t)snprintf(v.text + len, cap - len, " %a", vec[d]);
        for (int l = 0; l <= node.level; l++) {
            size_t nl;
            tu_ok(hnswc_node_links(ix, id, l, links, 256, &nl));
            len += (size_t)snprintf(v.text + len, cap - len, " |");
            for (size_t j = 0; j < nl; j++) {
                /* a removed element awaiting reclamation has no label */
                hnswc_node t;
                if (hnswc_node_info(ix, links[j], &t) == HNSWC_OK)
                    len += (size_t)snprintf(v.text + len, cap - len, " %llu",
                                            (unsigned long long)t.label);
                else
                    len += (size_t)snprintf(v.text + len, cap - len, " removed");
            }
        }
        len += (size_t)snprintf(v.text + len, cap - len, "\n");
        assert_true(len < cap);
    }
    return v;
}

static void view_free(graph_view *v) {
    free(v->labels);
    free(v->text);
}

/* The node id of each label of v (sorted), malloc'd. */
static uint32_t *ids_of(const hnswc_index *ix, const graph_view *v) {
    uint32_t *ids = tu_xmalloc((v->n + 1) * sizeof *ids);
    for (size_t i = 0; i < v->n; i++)
        tu_ok(hnswc_node_id(ix, v->labels[i], &ids[i]));
    return ids;
}

/* How many labels of v have a node id in ix other than in `was`. */
static size_t ids_moved(const hnswc_index *ix, const graph_view *v, const uint32_t *was) {
    uint32_t *now = ids_of(ix, v);
    size_t moved = 0;
    for (size_t i = 0; i < v->n; i++)
        moved += now[i] != was[i];
    free(now);
    return moved;
}

/* ========================================================================
 * Building
 * ======================================================================== */

static float *data;   /* rows of DIM floats */
static float *queries;
enum { NDATA = 6000 };

static int setup(void **s) {
    (void)s;
    tu_rng r = tu_rng_make(11);
    data = tu_random_vectors(&r, NDATA, DIM, -1.f, 1.f);
    queries = tu_random_vectors(&r, NQ, DIM, -1.f, 1.f);
    return 0;
}

static int teardown(void **s) {
    (void)s;
    free(data);
    free(queries);
    return 0;
}

static hnswc_index *make(hnswc_storage storage, hnswc_relayout_policy policy) {
    hnswc_options o = {0};
    o.dim = DIM;
    o.M = 6;
    o.ef_construction = 40;
    o.storage = storage;
    o.relayout = policy;
    hnswc_index *ix = NULL;
    tu_ok(hnswc_create(&o, &ix));
    return ix;
}

static hnswc_index *clone_of(const hnswc_index *ix) {
    size_t n;
    unsigned char *b = tu_serialized(ix, &n);
    hnswc_index *c = NULL;
    tu_ok(hnswc_deserialize(b, n, &c));
    free(b);
    return c;
}

static uint64_t relayouts_of(const hnswc_index *ix) {
    hnswc_info in;
    tu_ok(hnswc_get_info(ix, &in));
    return in.relayouts;
}

/* The entry point is the first node of the new order, and on the top layer. */
static void expect_entry_first(const hnswc_index *ix) {
    hnswc_info in;
    tu_ok(hnswc_get_info(ix, &in));
    if (in.count == 0)
        return;
    hnswc_node n0;
    tu_ok(hnswc_node_info(ix, 0, &n0));
    assert_int_equal(n0.level, in.max_level);
}

/*
 * Relays out ix in place and checks that nothing a caller sees by label
 * changed -- results, graph, vectors, marks, counts -- while ids did, that
 * a second relayout keeps the order, and that the relaid-out index saves
 * and loads into the same index with the same answers.
 */
static void check_relayout(hnswc_index *ix, const char *what) {
    results *before = tu_xmalloc(sizeof *before), *after = tu_xmalloc(sizeof *after);
    search_all(ix, queries, before);
    graph_view vb = view_of(ix);
    uint32_t *ids = ids_of(ix, &vb);
    hnswc_info ib, ia;
    tu_ok(hnswc_get_info(ix, &ib));

    tu_ok(hnswc_relayout(ix));
    search_all(ix, queries, after);
    expect_same_results(before, after);
    graph_view va = view_of(ix);
    assert_string_equal(vb.text, va.text);
    tu_ok(hnswc_get_info(ix, &ia));
    assert_int_equal(ia.count, ib.count);
    assert_int_equal(ia.live_count, ib.live_count);
    assert_int_equal(ia.deleted_count, ib.deleted_count);
    assert_int_equal(ia.pending_slots, ib.pending_slots);
    assert_int_equal(ia.removed_slots, ib.removed_slots);
    assert_int_equal(ia.max_level, ib.max_level);
    assert_int_equal(ia.relayouts, ib.relayouts + 1);
    expect_entry_first(ix);
    size_t moved = ids_moved(ix, &vb, ids);
    print_message("%-40s %zu elements, %zu ids moved\n", what, vb.n, moved);
    if (vb.n > 100)
        assert_true(moved > vb.n / 2); /* it did renumber */

    /* a relayout of a relaid-out index keeps its order */
    free(ids);
    ids = ids_of(ix, &vb);
    tu_ok(hnswc_relayout(ix));
    assert_int_equal(ids_moved(ix, &vb, ids), 0);

    /* save and load: the same index, the same answers (a file holds no
     * pending removal: compare with pending removals reclaimed) */
    if (ia.pending_slots == 0) {
        hnswc_index *loaded = clone_of(ix);
        size_t n1, n2;
        unsigned char *b1 = tu_serialized(ix, &n1), *b2 = tu_serialized(loaded, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(b1, b2, n1);
        free(b1);
        free(b2);
        search_all(loaded, queries, after);
        expect_same_results(before, after);
        assert_int_equal(ids_moved(loaded, &vb, ids), 0);
        hnswc_free(loaded);
    }

    free(ids);
    view_free(&vb);
    view_free(&va);
    free(before);
    free(after);
}

/* ========================================================================
 * Tests
 * ======================================================================== */

static void test_f32_and_sq8(void **s) {
    (void)s;
    size_t n = tu_scaled(NDATA, 1500);
    for (int st = 0; st < 2; st++) {
        hnswc_index *ix = make(st ? HNSWC_STORAGE_SQ8 : HNSWC_STORAGE_F32, HNSWC_RELAYOUT_MANUAL);
        tu_add_rows(ix, data, n, DIM, 2);
        assert_int_equal(relayouts_of(ix), 0); /* MANUAL */
        check_relayout(ix, st ? "sq8" : "f32");
        hnswc_free(ix);

        /* tombstones (a fresh index: the first one is in order now) */
        ix = make(st ? HNSWC_STORAGE_SQ8 : HNSWC_STORAGE_F32, HNSWC_RELAYOUT_MANUAL);
        tu_add_rows(ix, data, n, DIM, 2);
        for (size_t i = 0; i < n; i += 7)
            tu_ok(hnswc_mark_deleted(ix, tu_label_of(i)));
        check_relayout(ix, st ? "sq8, tombstones" : "f32, tombstones");
        hnswc_index *re = ix;
        /* marks move with their node: unmark and replace work on the new ids */
        tu_ok(hnswc_unmark_deleted(re, tu_label_of(7)));
        int del;
        tu_ok(hnswc_is_deleted(re, tu_label_of(7), &del));
        assert_int_equal(del, 0);
        hnswc_free(ix);
    }
}

/* Removals pending (fewer than a reclamation waits for), then removals
 * reclaimed by a compact (free slots, taken by the next adds). */
static void test_removals(void **s) {
    (void)s;
    size_t n = tu_scaled(NDATA, 1500);
    hnswc_index *ix = make(HNSWC_STORAGE_F32, HNSWC_RELAYOUT_MANUAL);
    tu_add_rows(ix, data, n - 100, DIM, 2);
    uint64_t gone[40];
    for (size_t i = 0; i < 40; i++)
        gone[i] = tu_label_of(3 + 11 * i);
    tu_ok(hnswc_remove_batch(ix, gone, 40, 1));
    hnswc_info in;
    tu_ok(hnswc_get_info(ix, &in));
    assert_true(in.pending_slots > 0);
    check_relayout(ix, "f32, removals pending");
    hnswc_index *re = ix;
    /* the pending removals are reclaimed in the new layout, then reused */
    size_t removed;
    tu_ok(hnswc_compact(re, 1, &removed));
    tu_ok(hnswc_get_info(re, &in));
    assert_int_equal(in.pending_slots, 0);
    assert_int_equal(in.removed_slots, 40);
    for (size_t i = n - 100; i < n - 80; i++)
        tu_ok(hnswc_add(re, tu_label_of(i), data + i * DIM, 0));
    tu_ok(hnswc_get_info(re, &in));
    assert_int_equal(in.removed_slots, 20); /* free slots were taken */
    hnswc_graph_stats g;
    tu_ok(hnswc_get_graph_stats(re, &g));
    assert_int_equal(g.unreachable, 0);
    hnswc_free(ix);

    /* reclaimed: free slots go last, and adds take them afterwards */
    ix = make(HNSWC_STORAGE_F32, HNSWC_RELAYOUT_MANUAL);
    tu_add_rows(ix, data, n - 100, DIM, 2);
    tu_ok(hnswc_remove_batch(ix, gone, 40, 1));
    tu_ok(hnswc_compact(ix, 1, &removed));
    for (size_t i = 0; i < n - 100; i += 13)
        if (i < 3 || (i - 3) % 11 != 0 || i >= 3 + 11 * 40) /* not removed */
            tu_ok(hnswc_mark_deleted(ix, tu_label_of(i)));
    check_relayout(ix, "f32, compacted + tombstones");
    re = ix;
    uint32_t id;
    for (size_t i = n - 100; i < n - 60; i++) {
        tu_ok(hnswc_add(re, tu_label_of(i), data + i * DIM, 0));
        tu_ok(hnswc_node_id(re, tu_label_of(i), &id));
    }
    tu_ok(hnswc_get_info(re, &in));
    assert_int_equal(in.removed_slots, 0);
    hnswc_free(ix);
}

static void test_small(void **s) {
    (void)s;
    hnswc_index *ix = make(HNSWC_STORAGE_F32, HNSWC_RELAYOUT_AUTO);
    tu_ok(hnswc_relayout(ix)); /* empty */
    assert_int_equal(relayouts_of(ix), 1);
    tu_ok(hnswc_add(ix, 42, data, 0));
    tu_ok(hnswc_relayout(ix)); /* one element */
    uint32_t id;
    tu_ok(hnswc_node_id(ix, 42, &id));
    assert_int_equal(id, 0);
    uint64_t l;
    float d;
    size_t found;
    tu_ok(hnswc_search(ix, data, 1, 10, NULL, NULL, &l, &d, &found));
    assert_int_equal(found, 1);
    assert_int_equal(l, 42);
    check_relayout(ix, "one element");
    /* a few elements, everything removed and reclaimed: no entry point */
    for (size_t i = 1; i < 30; i++)
        tu_ok(hnswc_add(ix, 42 + i, data + i * DIM, 0));
    check_relayout(ix, "30 elements");
    for (size_t i = 0; i < 30; i++)
        tu_ok(hnswc_remove(ix, 42 + i));
    size_t removed;
    tu_ok(hnswc_compact(ix, 1, &removed));
    tu_ok(hnswc_relayout(ix));
    hnswc_info in;
    tu_ok(hnswc_get_info(ix, &in));
    assert_int_equal(in.count, 0);
    tu_ok(hnswc_add(ix, 7, data, 0));
    tu_ok(hnswc_search(ix, data, 1, 10, NULL, NULL, &l, &d, &found));
    assert_int_equal(found, 1);
    assert_int_equal(l, 7);
    hnswc_free(ix);
}

/* When batch adds relay out by themselves: once the index holds at least
 * HNSWC_RELAYOUT_AUTO_MIN slots and twice what it held at its last layout. */
static void test_automatic(void **s) {
    (void)s;
    enum { STEP = 1000 };
    hnswc_index *ix = make(HNSWC_STORAGE_SQ8, HNSWC_RELAYOUT_AUTO);
    hnswc_index *man = make(HNSWC_STORAGE_SQ8, HNSWC_RELAYOUT_MANUAL);
    uint64_t *labels = tu_xmalloc(NDATA * sizeof *labels);
    for (size_t i = 0; i < NDATA; i++)
        labels[i] = tu_label_of(i);
    uint64_t want = 0;
    for (size_t done = 0; done < NDATA; done += STEP) {
        tu_ok(hnswc_add_batch(ix, data + done * DIM, labels + done, STEP, 0, 1, NULL));
        tu_ok(hnswc_add_batch(man, data + done * DIM, labels + done, STEP, 0, 1, NULL));
        /* 1000 .. 4000: below the minimum; 5000: the first; 6000 < 2 * 5000 */
        if (done + STEP == 5000)
            want = 1;
        assert_int_equal(relayouts_of(ix), want);
        assert_int_equal(relayouts_of(man), 0);
    }
    /* the same graph (one thread: the same build), another order */
    results *a = tu_xmalloc(sizeof *a), *b = tu_xmalloc(sizeof *b);
    search_all(ix, queries, a);
    search_all(man, queries, b);
    expect_same_results(a, b);
    graph_view va = view_of(ix), vm = view_of(man);
    assert_string_equal(va.text, vm.text);
    uint32_t *man_ids = ids_of(man, &va);
    assert_true(ids_moved(ix, &va, man_ids) > NDATA / 2);
    free(man_ids);
    expect_entry_first(ix);

    /* single adds never relay out; a loaded index counts from its size */
    for (size_t i = 0; i < 3; i++)
        tu_ok(hnswc_add(ix, 900000 + i, data + i * DIM, 0));
    assert_int_equal(relayouts_of(ix), 1);
    hnswc_index *loaded = clone_of(ix);
    hnswc_info in;
    tu_ok(hnswc_get_info(loaded, &in));
    assert_int_equal(in.relayouts, 0);
    assert_int_equal(in.relayout, HNSWC_RELAYOUT_AUTO); /* not saved: the default */
    tu_ok(hnswc_add_batch(loaded, data, labels, 100, 0, 1, NULL)); /* updates */
    assert_int_equal(relayouts_of(loaded), 0);

    /* set_relayout turns it on and off */
    tu_ok(hnswc_set_relayout(man, HNSWC_RELAYOUT_AUTO));
    tu_ok(hnswc_add_batch(man, data, labels, 10, 0, 1, NULL)); /* 6000 >= 2 * 0 */
    assert_int_equal(relayouts_of(man), 1);
    tu_ok(hnswc_get_info(man, &in));
    assert_int_equal(in.relayout, HNSWC_RELAYOUT_AUTO);

    view_free(&va);
    view_free(&vm);
    free(a);
    free(b);
    free(labels);
    hnswc_free(loaded);
    hnswc_free(man);
    hnswc_free(ix);
}

/* A mapped index relays out like a loaded one (its vectors become private
 * copies); the automatic relayout leaves it alone. */
static void test_mapped(void **s) {
    (void)s;
    size_t n = tu_scaled(NDATA, 1500);
    hnswc_index *ix = make(HNSWC_STORAGE_F32, HNSWC_RELAYOUT_MANUAL);
    tu_add_rows(ix, data, n, DIM, 2);
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof path, "%s/ix.hnswc", dir);
    tu_ok(hnswc_save(ix, path));
    hnswc_index *m = NULL;
    tu_ok(hnswc_open(path, HNSWC_OPEN_MMAP, &m));
    results *a = tu_xmalloc(sizeof *a), *b = tu_xmalloc(sizeof *b);
    search_all(ix, queries, a);
    graph_view v = view_of(ix);
    uint32_t *was = ids_of(ix, &v);
    tu_ok(hnswc_relayout(m));
    search_all(m, queries, b);
    expect_same_results(a, b);
    graph_view vm = view_of(m);
    assert_string_equal(v.text, vm.text);
    assert_true(ids_moved(m, &v, was) > n / 2);
    free(was);

    /* automatic: skipped for a mapped index, even past twice its size */
    hnswc_index *m2 = NULL;
    tu_ok(hnswc_open(path, HNSWC_OPEN_MMAP, &m2));
    uint64_t *labels = tu_xmalloc(n * sizeof *labels);
    for (size_t i = 0; i < n; i++)
        labels[i] = 5000000 + i;
    tu_ok(hnswc_add_batch(m2, data, labels, n, 0, 2, NULL));
    assert_int_equal(relayouts_of(m2), 0);
    free(labels);
    hnswc_free(m2);

    view_free(&v);
    view_free(&vm);
    free(a);
    free(b);
    hnswc_free(m);
    hnswc_free(ix);
    unlink(path);
    rmdir(dir);
    free(dir);
}

static void test_arguments(void **s) {
    (void)s;
    tu_expect_err(hnswc_relayout(NULL), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_set_relayout(NULL, HNSWC_RELAYOUT_AUTO), HNSWC_ERR_NULL);
    hnswc_index *ix = make(HNSWC_STORAGE_F32, HNSWC_RELAYOUT_AUTO);
    tu_expect_err(hnswc_set_relayout(ix, (hnswc_relayout_policy)2), HNSWC_ERR_INVALID);
    hnswc_free(ix);
    hnswc_options o = {0};
    o.dim = DIM;
    o.relayout = (hnswc_relayout_policy)7;
    tu_expect_err(hnswc_create(&o, &ix), HNSWC_ERR_INVALID);
    /* a flat index: nothing to do */
    o.relayout = HNSWC_RELAYOUT_AUTO;
    o.kind = HNSWC_KIND_FLAT;
    tu_ok(hnswc_create(&o, &ix));
    tu_add_rows(ix, data, 10, DIM, 1);
    tu_ok(hnswc_relayout(ix));
    tu_ok(hnswc_set_relayout(ix, HNSWC_RELAYOUT_MANUAL));
    hnswc_info in;
    tu_ok(hnswc_get_info(ix, &in));
    assert_int_equal(in.relayouts, 0);
    hnswc_free(ix);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_and_sq8),
        cmocka_unit_test(test_removals),
        cmocka_unit_test(test_small),
        cmocka_unit_test(test_automatic),
        cmocka_unit_test(test_mapped),
        cmocka_unit_test(test_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
