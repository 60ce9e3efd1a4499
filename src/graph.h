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
/* Makes an acquired context ready for another search or insert of beam ef
 * (what acquire does to it: size, fresh visited set), for a caller that
 * keeps one across many; false when out of memory (it stays acquired). */
bool graph_ctx_prepare(const hnswc_index *ix, search_ctx *sc, size_t ef);
/*
 * The context of one search or insert in a batch. With held NULL: acquire
 * (pool_lock), and graph_ctx_put releases it. Else the calling thread's
 * context kept across the batch: *held prepared for ef, or, while *held is
 * NULL, an acquired one that *held then keeps (graph_ctx_put leaves it;
 * the batch releases it after its last item). NULL when out of memory.
 * Why: on two threads, the pool's mutex and contexts whose visited sets
 * moved between the cores' caches from item to item cost every item of a
 * batch. One *held belongs to one thread at a time (threads.h: slots).
 */
search_ctx *graph_ctx_take(const hnswc_index *ix, search_ctx **held, size_t ef);
void graph_ctx_put(const hnswc_index *ix, search_ctx **held, search_ctx *sc);
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
 * update_lock read side held. `start`: NODE_NONE, or where
 * graph_search_entry found this query's walk begins (below).
 * `held`: NULL (scratch from the pool for this search), or the calling
 * thread's context in a batch (graph_ctx_take). */
hnswc_status graph_search(const hnswc_index *ix, const float *q, size_t k, size_t ef,
                          hnswc_filter_fn filter, void *user, node_id start, search_ctx **held,
                          heap_item *out, size_t *n_out);

/*
 * A search in two halves, for batches that order their queries
 * (index.c, hnswc_search_batch): graph_search_entry makes the greedy
 * descent through the upper layers and sets *start to the node of layer 0
 * where the beam search would begin (NODE_NONE for an empty index);
 * graph_search given that start begins there, with the results it would
 * give with NODE_NONE while the index does not change in between (start
 * is only where the walk begins: with NODE_NONE, or a node removed
 * meanwhile, it makes the descent itself). The node ids stay valid while
 * the caller holds the update lock's read side across both calls (what
 * renumbers or frees slots takes the write side). `held` as for
 * graph_search. Errors: HNSWC_ERR_NOMEM.
 */
hnswc_status graph_search_entry(const hnswc_index *ix, const float *q, search_ctx **held,
                                node_id *start);

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

/* A growable list of (distance, id), for range search results. */
typedef struct graph_hits {
    heap_item *items;
    size_t n, cap;
} graph_hits;

/* Every element within `radius` of q (normalised for cosine), closest
 * first, into out (grown with realloc; the caller frees out->items): a beam
 * search of width ef seeds a flood through the ball (graph.c, "Range
 * search"). update_lock read side held. */
hnswc_status graph_search_range(const hnswc_index *ix, const float *q, float radius, size_t ef,
                                hnswc_filter_fn filter, void *user, graph_hits *out);

/* Exact k nearest by a full scan; out needs room for k + 1 items; dbuf
 * dim floats of scratch for a code-only index (NULL otherwise: see
 * storage.h, node_f32). update_lock read side held. */
size_t graph_search_exact(const hnswc_index *ix, const float *q, size_t k,
                          hnswc_filter_fn filter, void *user, heap_item *out, float *dbuf);

/* --- Repair after removals (remove.c drives these; see graph.c) ---
 * All with the update lock's read side held. */

/* Scratch for repairs (candidate buffers sized from M); NULL when out of
 * memory. Not shared between threads. */
typedef struct graph_repair_scratch graph_repair_scratch;
graph_repair_scratch *graph_repair_scratch_new(const hnswc_index *ix);
void graph_repair_scratch_free(graph_repair_scratch *rs);

/* If node's list on `level` links to removed nodes, rebuilds it from its
 * live members and those of the removed ones (the insert heuristic, then the
 * nearest, up to the list's old length). Takes node's link lock. Nodes left
 * with no layer-0 in-link are noted in rs. Returns true if rewritten. */
bool graph_repair_list(hnswc_index *ix, node_id node, int level, graph_repair_scratch *rs);

/* Empties every list of removed node `id`, noting in rs the former layer-0
 * members left with no in-link. Takes id's link lock. */
void graph_clear_links(hnswc_index *ix, node_id id, graph_repair_scratch *rs);

/* Gives every node noted in rs a layer-0 in-link again (from its nearest
 * members, else -- when sc is not NULL -- by linking it afresh), and
 * empties the note. sc from graph_ctx_acquire with ef_construction. */
void graph_repair_link_orphans(hnswc_index *ix, search_ctx *sc, graph_repair_scratch *rs);

/* Walks layer 0 from the entry point and gives every element it does not
 * reach an in-link from the nearest reached node a search finds (an island
 * cut off by removals). Returns how many. sc as above (NULL: nothing). */
size_t graph_reconnect(hnswc_index *ix, search_ctx *sc, graph_repair_scratch *rs);

/* Degree, level and reachability statistics of the whole graph (out is
 * cleared first). No concurrent writer (the caller's contract). */
hnswc_status graph_stats(const hnswc_index *ix, hnswc_graph_stats *out);

#endif /* HNSWC_GRAPH_H */
