/*
 * test_inspect.c -- looking inside the graph: hnswc_node_id, hnswc_node_info,
 * hnswc_node_links, and the traced search hnswc_search_traced.
 *
 * The traced search must be the plain search: same results, same walk. The
 * walk of a plain search is observed from outside through its filter: the
 * filter is called once for every node the layer-0 search queues, in order,
 * and with a filter that rejects everything the beam never fills, so every
 * node visited is queued: the plain search's filter calls then count
 * exactly the nodes it visited, which the trace's STOP event must report.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 8, N = 3000, M = 8, MAXEV = 1 << 16 };

typedef struct log_t {
    hnswc_trace_event ev[MAXEV];
    size_t n;
} log_t;

static void record(const hnswc_trace_event *e, void *user)
{
    log_t *l = user;
    assert_true(l->n < MAXEV);
    l->ev[l->n++] = *e;
}

typedef struct calls_t {
    uint64_t labels[N * 2];
    size_t n;
    int accept;
} calls_t;

static int counting_filter(uint64_t label, void *user)
{
    calls_t *c = user;
    if (c->n < N * 2)
        c->labels[c->n] = label;
    c->n++;
    return c->accept;
}

static hnswc_index *build(float **data_out, hnswc_metric metric)
{
    tu_rng r = tu_rng_make(7);
    float *data = tu_random_vectors(&r, N, DIM, -1, 1);
    hnswc_options o = {0};
    o.dim = DIM;
    o.M = M;
    o.metric = metric;
    o.ef_construction = 64;
    hnswc_index *ix;
    assert_int_equal(hnswc_create(&o, &ix), HNSWC_OK);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(hnswc_add(ix, tu_label_of(i), data + i * DIM, 0), HNSWC_OK);
    *data_out = data;
    return ix;
}

/* ------------------------------------------------------------------------
 * Nodes and links
 * ------------------------------------------------------------------------ */

static void test_nodes_and_links(void **s)
{
    (void)s;
    float *data;
    hnswc_index *ix = build(&data, HNSWC_METRIC_L2);
    hnswc_info info;
    assert_int_equal(hnswc_get_info(ix, &info), HNSWC_OK);
    hnswc_graph_stats gs;
    assert_int_equal(hnswc_get_graph_stats(ix, &gs), HNSWC_OK);
    uint64_t *labels = tu_xmalloc(N * sizeof *labels);
    size_t nl;
    assert_int_equal(hnswc_get_labels(ix, labels, N, &nl), HNSWC_OK);
    assert_int_equal(nl, N);

    uint64_t level_counts[HNSWC_MAX_LEVELS] = {0}, total0 = 0, one_way = 0;
    uint32_t links[2 * M], back[2 * M];
    int top = -1;
    for (uint32_t id = 0; id < N; id++) {
        hnswc_node nd;
        assert_int_equal(hnswc_node_info(ix, id, &nd), HNSWC_OK);
        /* ids are positions in hnswc_get_labels' output */
        assert_true(nd.label == labels[id]);
        uint32_t again;
        assert_int_equal(hnswc_node_id(ix, nd.label, &again), HNSWC_OK);
        assert_int_equal(again, id);
        assert_int_equal(nd.deleted, 0);
        level_counts[nd.level]++;
        top = nd.level > top ? nd.level : top;
        for (int layer = 0; layer <= nd.level; layer++) {
            size_t n;
            assert_int_equal(hnswc_node_links(ix, id, layer, links, 2 * M, &n), HNSWC_OK);
            assert_true(n <= (layer == 0 ? 2u * M : (unsigned)M));
            for (size_t j = 0; j < n; j++) {
                hnswc_node t;
                assert_int_equal(hnswc_node_info(ix, links[j], &t), HNSWC_OK);
                assert_true(t.level >= layer);   /* a link stays on its layer */
                assert_true(links[j] != id);
                if (layer == 0) {
                    size_t nb;
                    assert_int_equal(hnswc_node_links(ix, links[j], 0, back, 2 * M, &nb),
                                     HNSWC_OK);
                    int found = 0;
                    for (size_t t2 = 0; t2 < nb; t2++)
                        found |= back[t2] == id;
                    one_way += !found;
                }
            }
            if (layer == 0)
                total0 += n;
        }
        /* the layer above the top is refused */
        size_t n = 99;
        assert_int_equal(hnswc_node_links(ix, id, nd.level + 1, links, 2 * M, &n),
                         HNSWC_ERR_INVALID);
    }
    /* the same graph hnswc_get_graph_stats describes */
    assert_int_equal(top, info.max_level);
    for (int l = 0; l <= top; l++)
        assert_int_equal(level_counts[l], gs.level_counts[l]);
    assert_int_equal(total0, gs.links_total);
    assert_int_equal(one_way, gs.one_way_links);
    free(labels);
    free(data);
    hnswc_free(ix);
}

static void test_node_errors(void **s)
{
    (void)s;
    float *data;
    hnswc_index *ix = build(&data, HNSWC_METRIC_L2);
    hnswc_node nd;
    uint32_t id, links[2 * M];
    size_t n;
    assert_int_equal(hnswc_node_info(NULL, 0, &nd), HNSWC_ERR_NULL);
    assert_int_equal(hnswc_node_info(ix, 0, NULL), HNSWC_ERR_NULL);
    assert_int_equal(hnswc_node_info(ix, N, &nd), HNSWC_ERR_NOT_FOUND);
    assert_int_equal(hnswc_node_info(ix, HNSWC_NO_NODE, &nd), HNSWC_ERR_NOT_FOUND);
    assert_true(strstr(hnswc_errmsg(NULL), "hnswc_node_info") != NULL);
    assert_int_equal(hnswc_node_id(ix, 5, &id), HNSWC_ERR_NOT_FOUND);
    assert_int_equal(hnswc_node_id(NULL, 5, &id), HNSWC_ERR_NULL);
    assert_int_equal(hnswc_node_id(ix, tu_label_of(3), NULL), HNSWC_ERR_NULL);
    assert_int_equal(hnswc_node_links(ix, 0, 0, NULL, 2 * M, &n), HNSWC_ERR_NULL);
    assert_int_equal(hnswc_node_links(ix, 0, 0, links, 2 * M, NULL), HNSWC_ERR_NULL);
    assert_int_equal(hnswc_node_links(ix, N, 0, links, 2 * M, &n), HNSWC_ERR_NOT_FOUND);
    assert_int_equal(hnswc_node_links(ix, 0, -1, links, 2 * M, &n), HNSWC_ERR_INVALID);
    /* too little room: nothing written, the count needed returned */
    assert_int_equal(hnswc_node_links(ix, 0, 0, links, 2 * M, &n), HNSWC_OK);
    size_t need = n;
    assert_true(need > 1);
    uint32_t small[2] = {123456, 123456};
    assert_int_equal(hnswc_node_links(ix, 0, 0, small, 1, &n), HNSWC_ERR_INVALID);
    assert_int_equal(n, need);
    assert_int_equal(small[0], 123456);
    /* deleted marks show */
    assert_int_equal(hnswc_mark_deleted(ix, tu_label_of(10)), HNSWC_OK);
    assert_int_equal(hnswc_node_id(ix, tu_label_of(10), &id), HNSWC_OK);
    assert_int_equal(hnswc_node_info(ix, id, &nd), HNSWC_OK);
    assert_int_equal(nd.deleted, 1);
    free(data);
    hnswc_free(ix);
}

/* ------------------------------------------------------------------------
 * The traced search is the plain search
 * ------------------------------------------------------------------------ */

static size_t count_kind(const log_t *l, hnswc_trace_kind k, int layer)
{
    size_t c = 0;
    for (size_t i = 0; i < l->n; i++)
        c += l->ev[i].kind == k && (layer < 0 || l->ev[i].layer == layer);
    return c;
}

static void check_same_walk(hnswc_index *ix, const float *q, size_t k, size_t ef, log_t *log,
                            calls_t *calls)
{
    uint64_t la[64], lb[64];
    float da[64], db[64];
    size_t fa, fb;
    /* results */
    log->n = 0;
    assert_int_equal(hnswc_search(ix, q, k, ef, NULL, NULL, la, da, &fa), HNSWC_OK);
    assert_int_equal(hnswc_search_traced(ix, q, k, ef, NULL, NULL, record, log, lb, db, &fb),
                     HNSWC_OK);
    assert_int_equal(fa, fb);
    assert_memory_equal(la, lb, fa * sizeof *la);
    assert_memory_equal(da, db, fa * sizeof *da);
    int exact = count_kind(log, HNSWC_TRACE_EXACT, -1) > 0;

    /* structure: entry on the top layer, one descent per layer, one stop */
    hnswc_info info;
    assert_int_equal(hnswc_get_info(ix, &info), HNSWC_OK);
    assert_int_equal(log->ev[0].kind, HNSWC_TRACE_ENTRY);
    assert_int_equal(log->ev[0].layer, info.max_level);
    assert_int_equal(count_kind(log, HNSWC_TRACE_DESCEND, -1), (size_t)info.max_level);
    assert_int_equal(count_kind(log, HNSWC_TRACE_STOP, 0), 1);

    /* every distance reported is exact, and every eval names its source */
    uint32_t start0 = HNSWC_NO_NODE;
    uint64_t visited = 0;
    for (size_t i = 0; i < log->n; i++) {
        const hnswc_trace_event *e = &log->ev[i];
        if ((e->kind == HNSWC_TRACE_ENTRY || e->kind == HNSWC_TRACE_DESCEND) && e->layer == 0)
            start0 = e->node;
        if (e->kind == HNSWC_TRACE_STOP)
            visited = e->count;
        if (e->kind == HNSWC_TRACE_EVAL || e->kind == HNSWC_TRACE_EXPAND ||
            e->kind == HNSWC_TRACE_ENTRY) {
            hnswc_node nd;
            uint32_t id;
            float v[DIM], d;
            assert_int_equal(hnswc_node_info(ix, e->node, &nd), HNSWC_OK);
            assert_int_equal(hnswc_node_id(ix, nd.label, &id), HNSWC_OK);
            assert_int_equal(hnswc_get_vector(ix, nd.label, v), HNSWC_OK);
            assert_int_equal(hnswc_distance(info.metric, q, v, DIM, &d), HNSWC_OK);
            assert_true(fabsf(d - e->dist) <= 1e-5f * (1 + fabsf(d)));
            assert_true(e->kind != HNSWC_TRACE_EVAL || e->from != HNSWC_NO_NODE);
        }
    }
    assert_true(start0 != HNSWC_NO_NODE);
    assert_int_equal(visited, 1 + count_kind(log, HNSWC_TRACE_EVAL, 0));

    /* the plain search queues what the trace says it queued, in order */
    calls->n = 0;
    calls->accept = 1;
    assert_int_equal(hnswc_search(ix, q, k, ef, counting_filter, calls, la, NULL, &fa), HNSWC_OK);
    hnswc_node nd;
    assert_int_equal(hnswc_node_info(ix, start0, &nd), HNSWC_OK);
    size_t j = 0;
    assert_true(calls->n >= 1);
    assert_true(calls->labels[j++] == nd.label);
    for (size_t i = 0; i < log->n; i++) {
        const hnswc_trace_event *e = &log->ev[i];
        if (e->kind == HNSWC_TRACE_EVAL && e->layer == 0 && (e->flags & HNSWC_TRACE_QUEUED)) {
            assert_int_equal(hnswc_node_info(ix, e->node, &nd), HNSWC_OK);
            assert_true(j < calls->n);
            assert_true(calls->labels[j++] == nd.label);
        }
    }
    if (!exact) /* the exact scan consults the filter too */
        assert_int_equal(j, calls->n);
}

static void test_trace_is_the_plain_search(void **s)
{
    (void)s;
    static log_t log;
    static calls_t calls;
    for (int metric = 0; metric < 3; metric++) {
        float *data;
        hnswc_index *ix = build(&data, (hnswc_metric)metric);
        tu_rng r = tu_rng_make(99);
        float *qs = tu_random_vectors(&r, 60, DIM, -1, 1);
        const size_t efs[] = {1, 5, 10, 40, 200};
        for (size_t e = 0; e < sizeof efs / sizeof *efs; e++)
            for (size_t i = 0; i < 12; i++)
                check_same_walk(ix, qs + (e * 12 + i) * DIM, e == 0 ? 1 : 10, efs[e], &log,
                                &calls);
        free(qs);
        free(data);
        hnswc_free(ix);
    }
}

/* With a filter that rejects everything, a plain search visits exactly the
 * nodes it calls the filter on; the trace must count as many. */
static void test_trace_visits_what_plain_search_visits(void **s)
{
    (void)s;
    static log_t log;
    static calls_t plain, traced;
    float *data;
    hnswc_index *ix = build(&data, HNSWC_METRIC_L2);
    hnswc_graph_stats gs;
    assert_int_equal(hnswc_get_graph_stats(ix, &gs), HNSWC_OK);
    assert_int_equal(gs.unreachable, 0); /* else the exact fallback would run */
    tu_rng r = tu_rng_make(5);
    float *qs = tu_random_vectors(&r, 10, DIM, -1, 1);
    for (size_t i = 0; i < 10; i++) {
        uint64_t lab[4];
        size_t f;
        plain.n = traced.n = 0;
        plain.accept = traced.accept = 0;
        log.n = 0;
        assert_int_equal(hnswc_search(ix, qs + i * DIM, 4, 10, counting_filter, &plain, lab,
                                      NULL, &f), HNSWC_OK);
        assert_int_equal(f, 0);
        assert_int_equal(hnswc_search_traced(ix, qs + i * DIM, 4, 10, counting_filter, &traced,
                                             record, &log, lab, NULL, &f), HNSWC_OK);
        assert_int_equal(count_kind(&log, HNSWC_TRACE_EXACT, -1), 0);
        uint64_t visited = 0;
        for (size_t j = 0; j < log.n; j++)
            if (log.ev[j].kind == HNSWC_TRACE_STOP) {
                visited = log.ev[j].count;
                assert_true(log.ev[j].flags & HNSWC_TRACE_EXHAUSTED);
            }
        assert_int_equal(visited, plain.n);
        assert_int_equal(visited, N); /* every node is reachable */
        assert_int_equal(traced.n, plain.n);
        assert_memory_equal(traced.labels, plain.labels, plain.n * sizeof *plain.labels);
    }
    free(qs);
    free(data);
    hnswc_free(ix);
}

static void test_trace_edges(void **s)
{
    (void)s;
    static log_t log;
    hnswc_options o = {0};
    o.dim = DIM;
    hnswc_index *ix;
    assert_int_equal(hnswc_create(&o, &ix), HNSWC_OK);
    float q[DIM] = {0}, d[2];
    uint64_t l[2];
    size_t f = 9;
    /* empty index: no events, no results */
    log.n = 0;
    assert_int_equal(hnswc_search_traced(ix, q, 2, 0, NULL, NULL, record, &log, l, d, &f),
                     HNSWC_OK);
    assert_int_equal(f, 0);
    assert_int_equal(log.n, 0);
    /* one node: entry, the beam takes it, expands it, stops exhausted */
    assert_int_equal(hnswc_add(ix, 42, q, 0), HNSWC_OK);
    assert_int_equal(hnswc_search_traced(ix, q, 2, 0, NULL, NULL, record, &log, l, d, &f),
                     HNSWC_OK);
    assert_int_equal(f, 1);
    assert_true(l[0] == 42);
    assert_true(log.n >= 4);
    assert_int_equal(log.ev[0].kind, HNSWC_TRACE_ENTRY);
    assert_int_equal(count_kind(&log, HNSWC_TRACE_ENTER, 0), 1);
    assert_int_equal(count_kind(&log, HNSWC_TRACE_EXPAND, 0), 1);
    assert_int_equal(log.ev[log.n - 1].kind, HNSWC_TRACE_STOP);
    assert_int_equal(log.ev[log.n - 1].count, 1);
    /* a NULL trace is a plain search; bad input is refused as by hnswc_search */
    assert_int_equal(hnswc_search_traced(ix, q, 2, 0, NULL, NULL, NULL, NULL, l, d, &f),
                     HNSWC_OK);
    assert_int_equal(f, 1);
    assert_int_equal(hnswc_search_traced(ix, q, 0, 0, NULL, NULL, record, &log, l, d, &f),
                     HNSWC_ERR_INVALID);
    assert_int_equal(hnswc_search_traced(ix, NULL, 1, 0, NULL, NULL, record, &log, l, d, &f),
                     HNSWC_ERR_NULL);
    q[3] = NAN;
    log.n = 0;
    assert_int_equal(hnswc_search_traced(ix, q, 1, 0, NULL, NULL, record, &log, l, d, &f),
                     HNSWC_ERR_NONFINITE);
    assert_int_equal(log.n, 0);
    hnswc_free(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nodes_and_links),
        cmocka_unit_test(test_node_errors),
        cmocka_unit_test(test_trace_is_the_plain_search),
        cmocka_unit_test(test_trace_visits_what_plain_search_visits),
        cmocka_unit_test(test_trace_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
