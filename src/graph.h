/*
 * graph.h -- the HNSW algorithm (graph.c): level generator, insert, search,
 * the pooled search scratch, and graph statistics.
 *
 * Prefix: graph_. Depends on storage.h (records and links), heap.h,
 * distance.h, error.h. Included by index.c only: the facade takes the locks
 * and calls in here; nothing in graph.c calls back into index.c.
 */
#ifndef HNSWC_GRAPH_H
#define HNSWC_GRAPH_H

#include "heap.h"
#include "index.h"

#include <stdbool.h>

/* Scratch for one search or insert (visited set, heaps); opaque outside
 * graph.c. */
typedef struct search_ctx search_ctx;

/* A level for a new node, from the index's seeded generator. meta_lock held
 * (or ix not shared), so a single-threaded build draws the same levels in
 * the same order for a given seed. */
int graph_random_level(hnswc_index *ix);

/* Scratch for one search or insert, from the index's pool; NULL when out of
 * memory. Sized for a beam of min(ef, the element count): ef's size never
 * matters beyond what the index holds. Every acquire is paired with a
 * release. Takes pool_lock briefly. */
search_ctx *graph_ctx_acquire(const hnswc_index *ix, size_t ef);
void graph_ctx_release(const hnswc_index *ix, search_ctx *sc);
/* Frees the pool; nothing else may use ix. */
void graph_pool_free(hnswc_index *ix);
/* Bytes held by the pooled contexts. Takes pool_lock. */
size_t graph_pool_bytes(const hnswc_index *ix);

/* Links a node whose record is written into the graph. Cannot fail: out of
 * memory mid-way costs links, not the node (graph.c). update_lock read side
 * held (or write side, for a relink of an existing node). Takes entry_lock
 * and link locks inside. */
void graph_insert(hnswc_index *ix, search_ctx *sc, node_id id, bool relink);

/* k nearest of q (already normalised for cosine); results closest first.
 * out needs room for k + 1 items (the exact fallback uses it as a heap).
 * update_lock read side held. */
hnswc_status graph_search(const hnswc_index *ix, const float *q, size_t k, size_t ef,
                          hnswc_filter_fn filter, void *user, heap_item *out, size_t *n_out);

/* A search trace (hnswc_search_traced): where graph_search_traced reports
 * its events. */
typedef struct graph_trace {
    hnswc_trace_fn fn;
    void *data;
} graph_trace;

/* graph_search, reporting each step to tr (non-NULL). The same code as
 * graph_search, compiled a second time with the trace calls (graph.c,
 * "Tracing"). update_lock read side held. */
hnswc_status graph_search_traced(const hnswc_index *ix, const float *q, size_t k, size_t ef,
                                 hnswc_filter_fn filter, void *user, const graph_trace *tr,
                                 heap_item *out, size_t *n_out);

/* Exact k nearest by a full scan; out needs room for k + 1 items.
 * update_lock read side held. */
size_t graph_search_exact(const hnswc_index *ix, const float *q, size_t k,
                          hnswc_filter_fn filter, void *user, heap_item *out);

/* Degree, level and reachability statistics of the whole graph (out is
 * cleared first). No concurrent writer (the caller's contract). */
hnswc_status graph_stats(const hnswc_index *ix, hnswc_graph_stats *out);

#endif /* HNSWC_GRAPH_H */
