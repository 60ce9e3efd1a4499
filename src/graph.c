/*
 * graph.c -- the HNSW algorithm (Malkov & Yashunin, TPAMI 2018).
 *
 * The whole algorithm is in this file, in the paper's order:
 *
 *   level generator   floor(-ln(U) / ln(M))                    (Alg. 1)
 *   search_layer      beam search of width ef on one layer     (Alg. 2)
 *   select_neighbors  the paper's heuristic                    (Alg. 4)
 *   graph_insert      greedy descent, then search + connect    (Alg. 1)
 *   graph_search      greedy descent, then search layer 0      (Alg. 5)
 *
 * Concurrency (see docs/ARCHITECTURE.md, "Locking"):
 *   - link lists are read without locks, word by word, with acquire loads,
 *     and written under the node's striped link lock with release stores.
 *     A reader may see a list mid-rewrite, i.e. a mix of old and new ids;
 *     every id ever stored names a fully written node, so the worst case is
 *     a slightly stale neighbourhood for one step, never a bad memory access.
 *   - the release store of a link is what publishes a new node: a reader that
 *     loads the id (acquire) also sees the node's vector and header.
 *   - vectors are only rewritten under the update lock's write side, so no
 *     reader is computing with a vector while it changes.
 */
#include "graph.h"

#include "distance.h"
#include "error.h"
#include "heap.h"
#include "storage.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ========================================================================
 * Helpers
 * ======================================================================== */

/* Search scratch: a visited set and two heaps, pooled per index so that a
 * search allocates nothing in the common case. */
struct search_ctx {
    uint16_t *visited; /* visited[id] == epoch means seen in this search */
    size_t visited_cap;
    uint16_t epoch;
    heap_item *cand;   /* min-heap of candidates to expand   */
    size_t cand_cap;
    heap_item *top;    /* max-heap of the best ef found      */
    size_t heap_cap;
    heap_item *work;   /* neighbour selection while linking  */
    size_t work_cap;
    node_id *scratch;  /* neighbour ids gathered before distance batches */
    size_t scratch_cap;
    uint8_t *qcode;    /* SQ8: the query's code row                  */
    size_t qcode_cap;
    float *dvec;       /* SQ8, SQ8_ONLY: a row decoded (rerank)      */
    size_t dvec_cap;
    size_t beam;       /* the beam width this acquire sized it for */
    struct search_ctx *next; /* free-list link in the pool */
};

static inline float vec_distance(const hnswc_index *ix, const float *a, const float *b) {
    if (ix->metric == HNSWC_METRIC_L2)
        return ix->kernels->l2(a, b, ix->dim);
    return 1.0f - ix->kernels->dot(a, b, ix->dim);
}

/* ------------------------------------------------------------------------
 * What a walk compares against: a probe is the query (or the node being
 * linked) as f32, plus its code row when the walk reads codes (SQ8 with
 * codes_ready). Every distance in a walk goes through probe_dist, so one
 * walk never mixes code and f32 distances.
 * ------------------------------------------------------------------------ */

typedef struct probe {
    const float *f;   /* the f32 vector                                    */
    const uint8_t *c; /* its code row, or NULL: the walk reads f32 vectors */
} probe;

static inline float code_distance(const hnswc_index *ix, const uint8_t *a, const uint8_t *b) {
    return ix->metric == HNSWC_METRIC_L2 ? quant_sq8_l2(&ix->quant, ix->qkernels, a, b)
                                         : quant_sq8_ip(&ix->quant, ix->qkernels, a, b);
}

/* Distance from the probe to node id; with bound (L2 on f32 only), the
 * kernel may stop early once it knows the result is above it. (Rejected for
 * codes: the same early stop on code rows, the integer kernel run over
 * blocks of 256 codes with a test after each -- 0-8% fewer queries per
 * second at ef 10-40 on Fashion-MNIST, one thread, in two bench/ab.py runs
 * against the whole-row kernel, one with each built first; the extra calls
 * and horizontal sums cost more than the blocks they skip, and the whole
 * row is prefetched anyway.) */
static inline float probe_dist(const hnswc_index *ix, const probe *p, node_id id, float bound,
                               bool bounded) {
    if (p->c)
        return code_distance(ix, p->c, node_codes(ix, node_at(ix, id)));
    const float *v = node_vector(ix, id);
    if (bounded && ix->metric == HNSWC_METRIC_L2)
        return ix->kernels->l2_bounded(p->f, v, ix->dim, bound);
    return vec_distance(ix, p->f, v);
}

/* Distance between two stored nodes, on codes when the walk reads codes. */
static inline float pair_dist(const hnswc_index *ix, node_id a, node_id b, bool codes) {
    if (codes)
        return code_distance(ix, node_codes(ix, node_at(ix, a)), node_codes(ix, node_at(ix, b)));
    return vec_distance(ix, node_vector(ix, a), node_vector(ix, b));
}

static inline bool walk_on_codes(const hnswc_index *ix) {
    return atomic_load_explicit(&ix->codes_ready, memory_order_acquire) != 0;
}

/*
 * Which distances choose the links. A build on codes searches for an
 * insert's candidates on code rows (the bulk of its work), and where the
 * codes hold the data exactly (Fashion-MNIST's pixels with a step of 1:
 * codes_inexact is 0) it chooses the links on them too, which is the f32
 * choice. Where they do not (real values, SQ8 with f32 vectors), the
 * heuristic, the back-links and the repairs compare exact f32 distances
 * instead, and the candidates an insert's walk found on codes are scored
 * again exactly first (rescore_exact). Why: the heuristic keeps a candidate
 * only if it is closer to the new node than to every neighbour kept so far,
 * two distances of nearly the same size, and the code error (about 1% of a
 * neighbour's distance on a clustered 1,000,000 x 128 set) flips that test
 * often enough to cost the graph recall that no search can win back: that
 * set's graph built wholly on codes reached recall@10 0.9774 at ef 256, with
 * a walk on codes and with a walk on f32 alike, where hnswlib's graph
 * reached 0.9848; with the links chosen exactly, 0.9815-0.9831 (hnswlib
 * 0.9831-0.9848 in the same runs), for a build 1.25-1.3x as long
 * (docs/BENCHMARKS.md, round 6). Code-only storage has no f32 vectors and
 * keeps choosing on codes. (Not chosen, not measured: building wholly on
 * f32 where codes are inexact. The walks are most of a build's work, and
 * on codes they read a quarter of the bytes.)
 */
static inline bool links_on_codes(const hnswc_index *ix) {
    return walk_on_codes(ix) &&
           !(storage_has_vectors(ix) &&
             atomic_load_explicit(&ix->codes_inexact, memory_order_acquire));
}

static int by_distance(const void *a, const void *b) {
    float x = ((const heap_item *)a)->dist, y = ((const heap_item *)b)->dist;
    return (x > y) - (x < y);
}

/* Candidates c[0..n) that a walk on codes found for the f32 vector v, given
 * their exact distances to it and sorted by them again (links_on_codes is
 * false). Each costs a row of the cold array, as the search's re-rank does. */
static void rescore_exact(const hnswc_index *ix, const float *v, heap_item *c, size_t n) {
    for (size_t i = 0; i < n; i++)
        c[i].dist = vec_distance(ix, v, node_vector(ix, c[i].id));
    qsort(c, n, sizeof *c, by_distance);
}

static inline pthread_mutex_t *link_lock(hnswc_index *ix, node_id id) {
    return &ix->link_locks[id % LINK_LOCK_STRIPES];
}

/* ========================================================================
 * Level generator
 * ======================================================================== */

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Caller holds meta_lock (or owns the index alone): see graph.h. */
int graph_random_level(hnswc_index *ix) {
    /* U uniform in (0, 1]: never 0, so -ln(U) is finite */
    double u = (double)((splitmix64(&ix->rng) >> 11) + 1) * 0x1.0p-53;
    double level = floor(-log(u) * ix->level_mult);
    return level < HNSWC_MAX_LEVELS - 1 ? (int)level : HNSWC_MAX_LEVELS - 1;
}

/* ========================================================================
 * Search contexts: pooled scratch memory
 * ======================================================================== */

static bool grow_array(void **p, size_t *cap, size_t want, size_t item) {
    if (*cap >= want)
        return true;
    size_t n = *cap ? *cap : 64;
    while (n < want)
        n *= 2;
    if (n > SIZE_MAX / item)
        return false;
    void *q = realloc(*p, n * item);
    if (!q)
        return false;
    *p = q;
    *cap = n;
    return true;
}

/* Makes visited[] cover every id below the index's current capacity. */
static bool ctx_grow_visited(const hnswc_index *ix, search_ctx *sc) {
    size_t want = (size_t)atomic_load_explicit(&ix->capacity, memory_order_acquire);
    if (sc->visited_cap >= want)
        return true;
    uint16_t *v = realloc(sc->visited, want * sizeof *v);
    if (!v)
        return false;
    memset(v + sc->visited_cap, 0, (want - sc->visited_cap) * sizeof *v);
    sc->visited = v;
    sc->visited_cap = want;
    return true;
}

/* Starts a fresh visited set (an O(1) epoch bump, a clear every 65535). */
static void next_epoch(search_ctx *sc) {
    if (++sc->epoch == 0) {
        memset(sc->visited, 0, sc->visited_cap * sizeof *sc->visited);
        sc->epoch = 1;
    }
}

/*
 * Sizes sc for a beam of ef and starts a fresh visited epoch: what every
 * search and insert does to its context first, whether it came from the
 * pool (graph_ctx_acquire) or is one a batch thread holds from query to
 * query (graph_ctx_prepare). False when out of memory; sc keeps what was
 * grown and stays usable for smaller ef.
 *
 * The beam is bounded by the elements the index holds now: a beam of ef
 * never holds more results than there are elements, so an ef (or an
 * ef_construction) above the count buys nothing but would cost its full
 * size here -- 16 GiB of heaps for ef 2^31, from set_ef or from a 700-byte
 * file (issue 13). A search that sees the index grow past its beam simply
 * keeps the beam it started with; the results are those of ef = the count
 * at its start, which is exhaustive for the elements that existed then.
 * The caller uses sc->beam as its ef.
 */
bool graph_ctx_prepare(const hnswc_index *ix, search_ctx *sc, size_t ef) {
    uint64_t count = atomic_load_explicit(&ix->count, memory_order_acquire);
    size_t beam = ef < count ? ef : (size_t)count;
    sc->beam = beam ? beam : 1;
    /* linking: the sorted beam, a backlink buffer, M chosen per layer */
    size_t work = sc->beam + 1 + 3 * ((size_t)ix->M0 + 1) + (size_t)HNSWC_MAX_LEVELS * ix->M;
    if (!ctx_grow_visited(ix, sc) ||
        !grow_array((void **)&sc->top, &sc->heap_cap, sc->beam + 2, sizeof(heap_item)) ||
        !grow_array((void **)&sc->cand, &sc->cand_cap, sc->beam + 2, sizeof(heap_item)) ||
        !grow_array((void **)&sc->work, &sc->work_cap, work, sizeof(heap_item)) ||
        !grow_array((void **)&sc->scratch, &sc->scratch_cap, (size_t)ix->M0 + 1, sizeof(node_id)) ||
        (ix->storage != HNSWC_STORAGE_F32 &&
         !grow_array((void **)&sc->qcode, &sc->qcode_cap, quant_sq8_row_bytes(&ix->quant), 1)) ||
        (ix->storage != HNSWC_STORAGE_F32 &&
         !grow_array((void **)&sc->dvec, &sc->dvec_cap, ix->dim, sizeof(float))))
        return false;
    next_epoch(sc);
    return true;
}

/* Takes a context from the pool (or makes one), prepared for ef. The pool
 * is logically part of the index's mutable state even for const (reader)
 * calls, hence the cast. */
search_ctx *graph_ctx_acquire(const hnswc_index *cix, size_t ef) {
    hnswc_index *ix = (hnswc_index *)cix;
    pthread_mutex_lock(&ix->pool_lock);
    search_ctx *sc = ix->pool;
    if (sc)
        ix->pool = sc->next;
    pthread_mutex_unlock(&ix->pool_lock);
    if (!sc && !(sc = calloc(1, sizeof *sc)))
        return NULL;
    if (!graph_ctx_prepare(ix, sc, ef)) {
        graph_ctx_release(ix, sc); /* keep what was grown */
        return NULL;
    }
    return sc;
}

void graph_ctx_release(const hnswc_index *cix, search_ctx *sc) {
    hnswc_index *ix = (hnswc_index *)cix;
    pthread_mutex_lock(&ix->pool_lock);
    sc->next = ix->pool;
    ix->pool = sc;
    pthread_mutex_unlock(&ix->pool_lock);
}

void graph_pool_free(hnswc_index *ix) {
    search_ctx *sc = ix->pool;
    while (sc) {
        search_ctx *next = sc->next;
        free(sc->visited);
        free(sc->cand);
        free(sc->top);
        free(sc->work);
        free(sc->scratch);
        free(sc->qcode);
        free(sc->dvec);
        free(sc);
        sc = next;
    }
    ix->pool = NULL;
}

size_t graph_pool_bytes(const hnswc_index *cix) {
    hnswc_index *ix = (hnswc_index *)cix;
    size_t bytes = 0;
    pthread_mutex_lock(&ix->pool_lock);
    for (search_ctx *sc = ix->pool; sc; sc = sc->next)
        bytes += sizeof *sc + sc->visited_cap * sizeof(uint16_t) +
                 (sc->heap_cap + sc->cand_cap + sc->work_cap) * sizeof(heap_item) +
                 sc->scratch_cap * sizeof(node_id) + sc->qcode_cap + sc->dvec_cap * sizeof(float);
    pthread_mutex_unlock(&ix->pool_lock);
    return bytes;
}

/* ========================================================================
 * Reading links
 * ======================================================================== */

static inline node_id link_at(_Atomic uint32_t *links, uint32_t j) {
    return atomic_load_explicit(&links[1 + j], memory_order_acquire);
}

/*
 * Prefetches the start of what a walk will read of node id: its code row
 * (codes) or its f32 vector. Issued for every unvisited neighbour as soon as
 * it is found, so the first cache lines of all of them are on the way at
 * once; prefetch_row then pulls in the rest of the row just before use.
 */
static inline void prefetch_node(const hnswc_index *ix, node_id id, bool codes) {
#if defined(__GNUC__)
    const char *v = codes ? (const char *)node_codes(ix, node_at(ix, id))
                          : (const char *)node_vector(ix, id);
    __builtin_prefetch(v);
    __builtin_prefetch(v + 64);
#else
    (void)ix;
    (void)id;
    (void)codes;
#endif
}

/*
 * Prefetches the WHOLE code row of node id (784 bytes = 13 lines on
 * Fashion-MNIST): the hardware prefetcher does not follow a walk's jumps,
 * and a row is small enough to fetch entirely, PREFETCH_AHEAD - 1
 * candidates before its distance is computed. For f32
 * rows (3,136 bytes) the same would flood the line-fill buffers, so only the
 * first two lines are requested, as before.
 */
static inline void prefetch_row(const hnswc_index *ix, node_id id, bool codes) {
#if defined(__GNUC__)
    if (!codes) {
        prefetch_node(ix, id, false);
        return;
    }
    const char *v = (const char *)node_codes(ix, node_at(ix, id));
    size_t bytes = ix->node_size - ix->vector_offset;
    for (size_t o = 0; o < bytes; o += 64)
        __builtin_prefetch(v + o);
#else
    (void)ix;
    (void)id;
    (void)codes;
#endif
}

/*
 * How many rows ahead of the distance being computed prefetch_row runs. One
 * row (13 lines of codes on Fashion-MNIST) is about one kernel's worth of
 * memory latency too few: measured in thread CPU time on Fashion-MNIST SQ8
 * (ef 12 and 24, fastest of 5 interleaved rounds, three runs), 2 rows gave
 * +2-6%, 3 rows +5-11% (with prefetch_links), 4 rows no more than 3.
 */
#define PREFETCH_AHEAD 3

/*
 * Prefetches the header and layer-0 links of node id (the first three
 * lines of its record: node_head and up to 2M = 32 links for M = 16). Issued
 * when a node enters the candidate queue: a candidate is expanded later, and
 * its record's first lines were not read when its distance was (that reads
 * the vector or code row only), so without this every expansion starts with
 * a cache miss that nothing overlaps. (Rejected: prefetching only the next
 * candidate to expand, at the moment the current one is popped -- too late
 * to hide much, and no better in the same measurement. Also rejected:
 * prefetching the first code line of each unvisited neighbour of the next
 * candidate while the current one is expanded -- with two query threads
 * 0-5% fewer queries per second at ef 12-40 in two bench/ab.py runs, each
 * build first once; the guesses cost bandwidth the two cores share.)
 */
static inline void prefetch_links(const hnswc_index *ix, node_id id) {
#if defined(__GNUC__)
    /* Every line the first 192 bytes touch, from the line the record starts
     * in: an F32 record (152 bytes for M 16) starts at any multiple of 8, so
     * its header and links may span 4 lines, and h, h + 64, h + 128 missed
     * the last for a quarter of them (bench/ab.py, one run: 0.5% more QPS,
     * within the noise; kept because it asks for exactly what is read) */
    uintptr_t h = (uintptr_t)node_at(ix, id);
    uintptr_t end = h + (ix->vector_offset < 192 ? ix->vector_offset : 192);
    for (uintptr_t line = h & ~(uintptr_t)63; line < end; line += 64)
        __builtin_prefetch((const void *)line);
#else
    (void)ix;
    (void)id;
#endif
}

/* ========================================================================
 * Tracing (hnswc_search_traced)
 *
 * The search is written once and compiled twice. greedy_descent_impl,
 * search_layer_impl and search_impl take a `tr` argument and are always
 * inlined; their callers pass either the constant NULL (every plain search
 * and every insert) or a real trace (graph_search_traced only). In the
 * untraced copies each TRACE(...) tests a NULL known at compile time and
 * vanishes, so tracing costs the plain search nothing -- not even a branch
 * -- and there is still one search loop to read and to change. (Rejected:
 * a run-time `if (trace)` in the one compiled loop, a predictable branch
 * but still a load and a test per neighbour; and a copy of the loop for
 * tracing, which would drift from the real one.)
 *
 * Whoever changes the search: keep each TRACE next to the step it reports,
 * and the traced search remains the search.
 * ======================================================================== */

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define COLD __attribute__((noinline, cold))
#else
#define ALWAYS_INLINE inline
#define COLD
#endif

_Static_assert(NODE_NONE == HNSWC_NO_NODE, "the public 'no node' is the internal one");

static COLD void trace_emit(const graph_trace *tr, hnswc_trace_kind kind, int layer, node_id node,
                            node_id from, float dist, uint32_t flags, uint64_t count) {
    hnswc_trace_event ev = {kind, layer, node, from, dist, flags, count};
    tr->fn(&ev, tr->data);
}

/* Reports an event if there is a trace; the arguments are only evaluated
 * then. */
#define TRACE(tr, ...)                    \
    do {                                  \
        if (tr)                           \
            trace_emit((tr), __VA_ARGS__); \
    } while (0)

/* The exact distance of v for a trace. The bounded L2 kernel returns early,
 * with a partial sum, once it is past `bound` (then only d >= bound is
 * known): recompute it in full. */
static COLD float trace_dist(const hnswc_index *ix, const probe *q, node_id id, float d,
                             float bound) {
    /* a walk on codes reports code distances, which are never cut short */
    return !q->c && ix->metric == HNSWC_METRIC_L2 && d >= bound
               ? vec_distance(ix, q->f, node_vector(ix, id))
               : d;
}

/* ========================================================================
 * Greedy descent through the upper layers
 * ======================================================================== */

/*
 * From `cur` at distance *cur_dist, moves to the closest neighbour while one
 * is closer, on each layer from `top` down to `bottom` + 1. A node `exclude`
 * (the node being re-linked) is given an infinite distance, so the walk
 * leaves it at the first step.
 */
/*
 * A caller's search walks only the elements a save would write: with
 * removed elements in limbo (remove.c: flagged NODE_REMOVED, possibly still
 * linked to until the sweep), graph_search and graph_search_range step
 * around them, so an index answers exactly as the file it saves to (which
 * holds neither them nor the links to them) does once loaded. Walking
 * through them, as inserts and repairs still do, made a reloaded index
 * answer differently: 6 of 2,000 queries on 100,000 elements with 1,000
 * removals pending (found by make soak, issue 13). Read per neighbour only
 * while removals are pending, so other searches pay nothing.
 */
static inline bool walk_skips(const hnswc_index *ix, bool limbo, node_id id) {
    return limbo &&
           (atomic_load_explicit(&node_at(ix, id)->flags, memory_order_acquire) & NODE_REMOVED);
}

static ALWAYS_INLINE node_id greedy_descent_impl(const hnswc_index *ix, const probe *q, node_id cur,
                                                 float *cur_dist, int top, int bottom,
                                                 node_id exclude, bool limbo,
                                                 const graph_trace *tr) {
    const bool codes = q->c != NULL;
    for (int level = top; level > bottom; level--) {
        bool changed = true;
        while (changed) {
            changed = false;
            TRACE(tr, HNSWC_TRACE_EXPAND, level, cur, NODE_NONE, *cur_dist, 0, 0);
            node_id from = cur;
            _Atomic uint32_t *links = node_links(ix, node_at(ix, cur), level);
            uint32_t n = node_links_count(ix, links, level);
            /* the rows of the whole list on their way at once, as on layer
             * 0 (search_layer_impl): a descent evaluates ~30% of a search's
             * distances at ef 12 on Fashion-MNIST (73 of 245 a query), and
             * without this each one waited for its own row */
            for (uint32_t j = 0; j < n; j++)
                prefetch_node(ix, link_at(links, j), codes);
            for (uint32_t j = 0; j < n && j < PREFETCH_AHEAD - 1; j++)
                prefetch_row(ix, link_at(links, j), codes);
            for (uint32_t j = 0; j < n; j++) {
                node_id nb = link_at(links, j);
                if (j + PREFETCH_AHEAD - 1 < n)
                    prefetch_row(ix, link_at(links, j + PREFETCH_AHEAD - 1), codes);
                if (nb == exclude || walk_skips(ix, limbo, nb))
                    continue;
                float d = probe_dist(ix, q, nb, *cur_dist, true);
                TRACE(tr, HNSWC_TRACE_EVAL, level, nb, from, trace_dist(ix, q, nb, d, *cur_dist),
                      d < *cur_dist ? HNSWC_TRACE_QUEUED : 0, 0);
                if (d < *cur_dist) {
                    *cur_dist = d;
                    cur = nb;
                    changed = true;
                }
            }
        }
        TRACE(tr, HNSWC_TRACE_DESCEND, level - 1, cur, NODE_NONE, *cur_dist, 0, 0);
    }
    return cur;
}

static node_id greedy_descent(const hnswc_index *ix, const probe *q, node_id cur, float *cur_dist,
                              int top, int bottom, node_id exclude, bool limbo) {
    return greedy_descent_impl(ix, q, cur, cur_dist, top, bottom, exclude, limbo, NULL);
}

/* ========================================================================
 * Beam search on one layer (Algorithm 2)
 * ======================================================================== */

typedef struct layer_query {
    const probe *q;
    int level;
    size_t ef;
    node_id exclude;        /* never a result (the node being linked)      */
    bool skip_deleted;      /* deleted and removed nodes are walked, never
                               results; false when the index has neither  */
    bool limbo;             /* removed nodes are not walked either (a
                               caller's search with removals pending)     */
    hnswc_filter_fn filter; /* optional: results must pass it              */
    void *user;
} layer_query;

static inline bool is_result(const hnswc_index *ix, const layer_query *lq, node_id id) {
    if (id == lq->exclude)
        return false;
    if (!lq->skip_deleted && !lq->filter)
        return true; /* the common case: no need to touch the node's header */
    node_head *n = node_at(ix, id);
    if (lq->skip_deleted &&
        (atomic_load_explicit(&n->flags, memory_order_relaxed) & NODE_HIDDEN))
        return false;
    return !lq->filter || lq->filter(n->label, lq->user);
}

/* Grows the visited array when an id past its end shows up (the index grew
 * during this search). */
static inline bool visit(const hnswc_index *ix, search_ctx *sc, node_id id, hnswc_status *st) {
    if (id >= sc->visited_cap && !ctx_grow_visited(ix, sc)) {
        *st = hnswc_fail(HNSWC_ERR_NOMEM, "out of memory growing a search's visited set");
        return false;
    }
    if (sc->visited[id] == sc->epoch)
        return false;
    sc->visited[id] = sc->epoch;
    return true;
}

/*
 * Searches layer lq->level from entry point `ep` and leaves the best results
 * (at most ef) in the max-heap sc->top, their number in *n_top -- also when
 * it fails (out of memory growing its scratch), with what it had found. Stops when
 * the closest unexpanded candidate is farther than the worst of a full beam,
 * as in the paper; with a filter or tombstones the beam counts only nodes
 * that may be returned, so the walk goes on through the others.
 */
static ALWAYS_INLINE hnswc_status search_layer_impl(const hnswc_index *ix, search_ctx *sc,
                                                     const layer_query *lq, node_id ep,
                                                     float ep_dist, size_t *n_top,
                                                     size_t *n_visited, const graph_trace *tr) {
    hnswc_status st = HNSWC_OK;
    size_t nc = 0, nt = 0, seen = 1;
    float worst = INFINITY; /* distance of the beam's worst result */
    const bool codes = lq->q->c != NULL;

    *n_top = 0;
    visit(ix, sc, ep, &st);
    if (st != HNSWC_OK)
        return st;
    min_heap_push(sc->cand, &nc, (heap_item){ep_dist, ep});
    if (is_result(ix, lq, ep)) {
        max_heap_push(sc->top, &nt, (heap_item){ep_dist, ep});
        worst = ep_dist;
        TRACE(tr, HNSWC_TRACE_ENTER, lq->level, ep, NODE_NONE, ep_dist, 0, 0);
    }

    while (nc > 0) {
        if (sc->cand[0].dist > worst && nt >= lq->ef)
            break;
        heap_item c = min_heap_pop(sc->cand, &nc);
        TRACE(tr, HNSWC_TRACE_EXPAND, lq->level, c.id, NODE_NONE, c.dist, 0, 0);
        _Atomic uint32_t *links = node_links(ix, node_at(ix, c.id), lq->level);
        uint32_t n = node_links_count(ix, links, lq->level);

        /* gather the unvisited neighbours first and prefetch their vectors,
         * so the memory loads overlap instead of stalling one by one */
        uint32_t m = 0;
        for (uint32_t j = 0; j < n; j++) {
            node_id nb = link_at(links, j);
            if (walk_skips(ix, lq->limbo, nb))
                continue;
            if (visit(ix, sc, nb, &st)) {
                sc->scratch[m++] = nb;
                seen++;
                prefetch_node(ix, nb, codes);
            } else if (st != HNSWC_OK) {
                *n_top = nt; /* what was found so far: graph_insert uses it */
                return st;
            }
        }
        for (uint32_t j = 0; j < m && j < PREFETCH_AHEAD - 1; j++)
            prefetch_row(ix, sc->scratch[j], codes);
        for (uint32_t j = 0; j < m; j++) {
            node_id nb = sc->scratch[j];
            if (j + PREFETCH_AHEAD - 1 < m)
                prefetch_row(ix, sc->scratch[j + PREFETCH_AHEAD - 1], codes);
            /* with a full beam, an L2 candidate is only wanted if closer than
             * the worst result: the f32 kernel may stop as soon as it is not */
            bool bounded = nt >= lq->ef;
            float d = probe_dist(ix, lq->q, nb, worst, bounded);
            TRACE(tr, HNSWC_TRACE_EVAL, lq->level, nb, c.id,
                  trace_dist(ix, lq->q, nb, d, bounded ? worst : INFINITY),
                  nt < lq->ef || d < worst ? HNSWC_TRACE_QUEUED : 0, 0);
            if (nt < lq->ef || d < worst) {
                if (nc + 1 >= sc->cand_cap &&
                    !grow_array((void **)&sc->cand, &sc->cand_cap, nc + 2, sizeof(heap_item))) {
                    *n_top = nt;
                    return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory growing a search's queue");
                }
                min_heap_push(sc->cand, &nc, (heap_item){d, nb});
                prefetch_links(ix, nb);
                if (is_result(ix, lq, nb)) {
                    max_heap_push(sc->top, &nt, (heap_item){d, nb});
                    TRACE(tr, HNSWC_TRACE_ENTER, lq->level, nb, NODE_NONE, d, 0, 0);
                    if (nt > lq->ef) {
                        heap_item out = max_heap_pop(sc->top, &nt);
                        TRACE(tr, HNSWC_TRACE_LEAVE, lq->level, out.id, NODE_NONE, out.dist, 0, 0);
                    }
                    worst = sc->top[0].dist;
                }
            }
        }
    }
    TRACE(tr, HNSWC_TRACE_STOP, lq->level, NODE_NONE, NODE_NONE, nc ? sc->cand[0].dist : INFINITY,
          nc ? 0 : HNSWC_TRACE_EXHAUSTED, seen);
    *n_top = nt;
    if (n_visited) /* only meaningful when the walk ran out of candidates */
        *n_visited = nc == 0 ? seen : SIZE_MAX;
    return HNSWC_OK;
}

static hnswc_status search_layer(const hnswc_index *ix, search_ctx *sc, const layer_query *lq,
                                 node_id ep, float ep_dist, size_t *n_top, size_t *n_visited) {
    return search_layer_impl(ix, sc, lq, ep, ep_dist, n_top, n_visited, NULL);
}

static hnswc_status search_layer_traced(const hnswc_index *ix, search_ctx *sc,
                                        const layer_query *lq, node_id ep, float ep_dist,
                                        size_t *n_top, size_t *n_visited, const graph_trace *tr) {
    return search_layer_impl(ix, sc, lq, ep, ep_dist, n_top, n_visited, tr);
}

/* ========================================================================
 * Neighbour selection: the heuristic of Algorithm 4
 * ======================================================================== */

/*
 * From candidates c[0..n) sorted by ascending distance to the base node,
 * keeps a candidate only if it is closer to the base than to every candidate
 * already kept, up to max_out. This favours links in diverse directions over
 * the plain nearest, which is what keeps the graph navigable on clustered
 * data. Like hnswlib, pruned candidates are not used to fill up the list
 * (the paper's keepPrunedConnections = false): that measured no better.
 * Returns the number written to out (which must not alias c).
 */
static size_t select_neighbors(const hnswc_index *ix, const heap_item *c, size_t n,
                               size_t max_out, heap_item *out) {
    if (n < max_out) {
        memcpy(out, c, n * sizeof *c);
        return n;
    }
    size_t m = 0;
    const bool codes = links_on_codes(ix); /* the distances in c are of the same kind */
    for (size_t i = 0; i < n && m < max_out; i++) {
        bool keep = true;
        for (size_t r = 0; r < m; r++) {
            if (pair_dist(ix, c[i].id, out[r].id, codes) < c[i].dist) {
                keep = false;
                break;
            }
        }
        if (keep)
            out[m++] = c[i];
    }
    return m;
}

/* Replaces the link list with ids of sel[0..n). Caller holds the link lock. */
static void write_links(_Atomic uint32_t *links, const heap_item *sel, size_t n) {
    for (size_t j = 0; j < n; j++)
        atomic_store_explicit(&links[1 + j], sel[j].id, memory_order_release);
    atomic_store_explicit(&links[0], (uint32_t)n, memory_order_release);
}

static bool list_has(_Atomic uint32_t *links, uint32_t n, node_id id) {
    for (uint32_t j = 0; j < n; j++)
        if (link_at(links, j) == id)
            return true;
    return false;
}

static bool sel_has(const heap_item *sel, size_t n, node_id id) {
    for (size_t j = 0; j < n; j++)
        if (sel[j].id == id)
            return true;
    return false;
}

static inline uint32_t indeg0(const hnswc_index *ix, node_id id) {
    return atomic_load_explicit(&node_at(ix, id)->indeg0, memory_order_relaxed);
}

/* Removed for good (remove.c): never linked to again. Acquire pairs with
 * the remover's release, though the proof in remove.c rests on the locks. */
static inline bool is_removed(const hnswc_index *ix, node_id id) {
    return atomic_load_explicit(&node_at(ix, id)->flags, memory_order_acquire) & NODE_REMOVED;
}

/*
 * Replaces the list of `node` on `level` with sel[0..n) (n <= max). Caller
 * holds the node's link lock. `newcomer` (or NODE_NONE) is a node offered to
 * the list that is not in it yet.
 *
 * On every layer this keeps the in-degree counts (node_indeg), and it never
 * writes a link to a removed node: every new link is written by this
 * function or add_backlink, under the list's lock, after checking the
 * target's NODE_REMOVED flag. remove.c relies on both to prove that a slot
 * it frees is unreachable (docs/ARCHITECTURE.md, "Removal").
 *
 * On layer 0 it also, where the list has room to spare, refuses to orphan:
 * a node about to lose its last layer-0 in-link (an old member of the list
 * with in-degree 1, or a newcomer nobody links to yet) is kept after the
 * chosen neighbours. Plain HNSW (and hnswlib) drops such nodes when the
 * heuristic prunes a full list -- most often exact duplicates -- and a
 * search can then never return them: about 0.2% of Fashion-MNIST.
 * Displacing chosen neighbours to make room was tried and rejected: under
 * inner product the chosen ones are the high-norm hubs the search navigates
 * by, and recall collapsed. Two prunes racing on different lists can still
 * both drop a node's last two links; that is rare and costs only that.
 * `fin` has room for max items.
 */
static void set_links(hnswc_index *ix, node_id node, int level, const heap_item *sel, size_t n,
                      size_t max, node_id newcomer, heap_item *fin) {
    _Atomic uint32_t *links = node_links(ix, node_at(ix, node), level);
    uint32_t n_old = node_links_count(ix, links, level);
    size_t n_fin = 0;
    for (size_t j = 0; j < n; j++)
        if (!is_removed(ix, sel[j].id))
            fin[n_fin++] = sel[j];
    for (uint32_t j = 0; level == 0 && j <= n_old && n_fin < max; j++) {
        node_id p = j < n_old ? link_at(links, j) : newcomer;
        if (p == NODE_NONE || p == node || is_removed(ix, p))
            continue;
        bool orphan = j < n_old ? indeg0(ix, p) <= 1 : indeg0(ix, p) == 0;
        if (orphan && !sel_has(fin, n_fin, p))
            fin[n_fin++] = (heap_item){INFINITY, p};
    }

    for (size_t j = 0; j < n_fin; j++)
        if (!list_has(links, n_old, fin[j].id))
            atomic_fetch_add_explicit(node_indeg(ix, node_at(ix, fin[j].id), level), 1,
                                      memory_order_relaxed);
    for (uint32_t j = 0; j < n_old; j++) {
        node_id o = link_at(links, j);
        if (!sel_has(fin, n_fin, o))
            atomic_fetch_sub_explicit(node_indeg(ix, node_at(ix, o), level), 1,
                                      memory_order_relaxed);
    }
    write_links(links, fin, n_fin);
}

/*
 * Adds a link from `node` to `newcomer` on `level`. If the list is full, the
 * list plus the newcomer is re-pruned with the same heuristic. `buf` has room
 * for 3 * (M0 + 1) items.
 */
static void add_backlink(hnswc_index *ix, node_id node, node_id newcomer, float dist, int level,
                         heap_item *buf) {
    size_t max = level == 0 ? ix->M0 : ix->M;
    node_head *nh = node_at(ix, node);
    _Atomic uint32_t *links = node_links(ix, nh, level);

    pthread_mutex_lock(link_lock(ix, node));
    if (is_removed(ix, node) || is_removed(ix, newcomer)) {
        /* a removed node gains no links, and nothing links to one */
        pthread_mutex_unlock(link_lock(ix, node));
        return;
    }
    uint32_t n = node_links_count(ix, links, level);
    for (uint32_t j = 0; j < n; j++) {
        if (link_at(links, j) == newcomer) { /* already linked (a re-link) */
            pthread_mutex_unlock(link_lock(ix, node));
            return;
        }
    }
    if (n < max) {
        atomic_fetch_add_explicit(node_indeg(ix, node_at(ix, newcomer), level), 1,
                                  memory_order_relaxed);
        atomic_store_explicit(&links[1 + n], newcomer, memory_order_release);
        atomic_store_explicit(&links[0], n + 1, memory_order_release);
    } else {
        heap_item *cand = buf, *sel = buf + max + 1, *fin = sel + max + 1;
        const bool codes = links_on_codes(ix); /* dist is of the same kind */
        cand[0] = (heap_item){dist, newcomer};
        for (uint32_t j = 0; j < n; j++) {
            node_id o = link_at(links, j);
            cand[j + 1] = (heap_item){pair_dist(ix, node, o, codes), o};
        }
        /* insertion sort: the list is short and almost sorted already */
        for (size_t i = 1; i <= n; i++) {
            heap_item x = cand[i];
            size_t k = i;
            while (k > 0 && cand[k - 1].dist > x.dist) {
                cand[k] = cand[k - 1];
                k--;
            }
            cand[k] = x;
        }
        size_t m = select_neighbors(ix, cand, n + 1, max, sel);
        set_links(ix, node, level, sel, m, max, newcomer, fin);
    }
    pthread_mutex_unlock(link_lock(ix, node));
}

/* ========================================================================
 * Repair around an updated node
 * ======================================================================== */

/*
 * When a node's vector is replaced, its old links no longer describe its
 * neighbourhood, and re-linking it would drop them: a node reachable only
 * through them would be orphaned. So first, as hnswlib's updatePoint does,
 * every old neighbour rebuilds its own list with the heuristic from the
 * 2-hop neighbourhood (the node, its neighbours and theirs), under the new
 * distances. Best effort: out of memory skips the repair, which costs graph
 * quality, never correctness. Caller holds the update lock's write side.
 */
static void repair_neighbourhood(hnswc_index *ix, search_ctx *sc, node_id id) {
    node_head *node = node_at(ix, id);
    size_t room = (size_t)ix->M0 * (ix->M0 + 1) + 1;
    node_id *cand = malloc(room * sizeof *cand);
    heap_item *scored = malloc(room * sizeof *scored);
    heap_item *sel = malloc(2 * ((size_t)ix->M0 + 1) * sizeof *sel);
    heap_item *fin = sel ? sel + ix->M0 + 1 : NULL;
    hnswc_status st = HNSWC_OK;
    for (int lc = 0; cand && scored && sel && lc <= node_level(node); lc++) {
        size_t max = lc == 0 ? ix->M0 : ix->M;
        _Atomic uint32_t *links = node_links(ix, node, lc);
        uint32_t n1 = node_links_count(ix, links, lc);
        size_t nc = 0;
        next_epoch(sc);
        visit(ix, sc, id, &st);
        cand[nc++] = id;
        for (uint32_t j = 0; j < n1; j++) {
            node_id nb = link_at(links, j);
            if (visit(ix, sc, nb, &st))
                cand[nc++] = nb;
        }
        size_t hop1_end = nc;
        for (size_t j = 1; j < hop1_end; j++) {
            _Atomic uint32_t *nl = node_links(ix, node_at(ix, cand[j]), lc);
            uint32_t n2 = node_links_count(ix, nl, lc);
            for (uint32_t t = 0; t < n2; t++) {
                node_id x = link_at(nl, t);
                if (visit(ix, sc, x, &st))
                    cand[nc++] = x;
            }
        }
        if (st != HNSWC_OK)
            break;
        const bool codes = links_on_codes(ix);
        for (size_t j = 1; j < hop1_end; j++) {
            node_id nb = cand[j];
            size_t m = 0;
            for (size_t t = 0; t < nc; t++)
                if (cand[t] != nb)
                    scored[m++] = (heap_item){pair_dist(ix, nb, cand[t], codes), cand[t]};
            qsort(scored, m, sizeof *scored, by_distance);
            /* prune only when the list must shrink, as add_backlink does: the
             * heuristic drops exact duplicates of a kept node, and a list
             * rebuilt with room to spare must not orphan them */
            size_t k = m <= max ? m : select_neighbors(ix, scored, m, max, sel);
            pthread_mutex_lock(link_lock(ix, nb));
            set_links(ix, nb, lc, m <= max ? scored : sel, k, max, NODE_NONE, fin);
            pthread_mutex_unlock(link_lock(ix, nb));
        }
    }
    next_epoch(sc);
    free(cand);
    free(scored);
    free(sel);
}

/* ========================================================================
 * Insertion (Algorithm 1)
 * ======================================================================== */

/*
 * Links node `id` (its record fully written) into the graph, using the
 * caller's search context `sc` (from graph_ctx_acquire with ef_construction,
 * taken before the node was allocated; its beam is the ef used). With
 * relink, the node is already in the graph (its vector was just replaced):
 * its own links are rebuilt the same way, excluding itself from the results.
 *
 * It cannot fail. The node is already stored and visible to scans when this
 * runs, so a failure here could only leave it unlinked (it used to become a
 * tombstone, and an update's old vector was lost). The one thing that can go
 * wrong is the scratch failing to grow mid-search (the index grew meanwhile,
 * or the candidate queue outgrew the beam); the layer's search then stops
 * and the node is linked to the best it had found, or to the layer's entry
 * point -- fewer or worse links, a cost in graph quality only, on a path
 * that only out of memory takes. (The search's message stays the thread's
 * last, although the add succeeds.)
 */
void graph_insert(hnswc_index *ix, search_ctx *sc, node_id id, bool relink) {
    node_head *node = node_at(ix, id);
    /* with codes, the graph is built on them too: the node's own code row
     * is the probe, and every distance below is between code rows */
    const probe pq = {storage_has_vectors(ix) ? node_vector(ix, id) : NULL,
                      walk_on_codes(ix) ? node_codes(ix, node) : NULL};
    const probe *q = &pq;
    int level = node_level(node);

    if (relink)
        repair_neighbourhood(ix, sc, id);

    uint64_t e = atomic_load_explicit(&ix->entry, memory_order_acquire);
    bool holds_entry_lock = false;
    if (!relink && (e == ENTRY_EMPTY || level > entry_level(e))) {
        /* this node may become the entry point: serialise with other such */
        pthread_mutex_lock(&ix->entry_lock);
        holds_entry_lock = true;
        e = atomic_load_explicit(&ix->entry, memory_order_acquire);
        if (e == ENTRY_EMPTY) {
            atomic_store_explicit(&ix->entry, entry_make(level, id), memory_order_release);
            pthread_mutex_unlock(&ix->entry_lock);
            return;
        }
    }

    node_id ep = entry_id(e);
    int top = entry_level(e);
    float ep_dist = ep == id ? INFINITY : probe_dist(ix, q, ep, 0.0f, false);
    if (level < top)
        ep = greedy_descent(ix, q, ep, &ep_dist, top, level, id, false);

    /*
     * Three steps, so that the node is never reachable before it is complete:
     * (1) search every layer and choose the neighbours, (2) write all of the
     * node's own lists, (3) only then link back to it. Had the node been
     * linked back on an upper layer before its layer-0 list existed, another
     * insert could descend to it, find it alone on layer 0 and link only to
     * it, and that link would be lost when the list was written. (hnswlib
     * prevents the same by holding the new node's lock for its whole
     * insertion and locking every list a construction search reads.)
     */
    int lmax = level < top ? level : top;
    heap_item *sorted = sc->work;                            /* the beam */
    heap_item *backlink_buf = sorted + sc->beam + 1;         /* 3 * (M0 + 1) */
    heap_item *chosen = backlink_buf + 3 * ((size_t)ix->M0 + 1); /* M per layer */
    size_t n_chosen[HNSWC_MAX_LEVELS] = {0};

    for (int lc = lmax; lc >= 0; lc--) {
        layer_query lq = {q, lc, sc->beam, id, storage_has_hidden(ix), false, NULL, NULL};
        size_t nt = 0;
        hnswc_status st = search_layer(ix, sc, &lq, ep, ep_dist, &nt, NULL);
        next_epoch(sc);
        if (st == HNSWC_OK && nt == 0 && lq.skip_deleted) {
            /* everything near is deleted: link through tombstones rather than
             * leave the node unreachable */
            lq.skip_deleted = false;
            st = search_layer(ix, sc, &lq, ep, ep_dist, &nt, NULL);
            next_epoch(sc);
        }
        if (st != HNSWC_OK && nt == 0 && ep != id) {
            /* out of memory before anything was found: the entry point */
            sc->top[0] = (heap_item){ep_dist, ep};
            nt = 1;
        }
        if (nt == 0)
            continue;
        size_t n_sorted = nt;
        max_heap_drain_sorted(sc->top, &nt, sorted);
        ep = sorted[0].id; /* the closest found: entry point one layer down */
        ep_dist = sorted[0].dist; /* of the walk's kind, as the next walk needs */
        if (q->c && !links_on_codes(ix))
            rescore_exact(ix, q->f, sorted, n_sorted);
        /* Like hnswlib, M neighbours are chosen on every layer; layer-0 lists
         * reach 2M through the links added back by later nodes. */
        n_chosen[lc] = select_neighbors(ix, sorted, n_sorted, ix->M, chosen + (size_t)lc * ix->M);
    }

    pthread_mutex_lock(link_lock(ix, id));
    for (int lc = 0; lc <= lmax; lc++)
        set_links(ix, id, lc, chosen + (size_t)lc * ix->M, n_chosen[lc],
                  lc == 0 ? ix->M0 : ix->M, NODE_NONE, backlink_buf);
    pthread_mutex_unlock(link_lock(ix, id));
    for (int lc = 0; lc <= lmax; lc++) {
        const heap_item *c = chosen + (size_t)lc * ix->M;
        for (size_t j = 0; j < n_chosen[lc]; j++)
            add_backlink(ix, c[j].id, id, c[j].dist, lc, backlink_buf);
    }

    if (holds_entry_lock) {
        /* a node removed meanwhile must not become the entry point: the
         * remover checks the entry under entry_lock after flagging it */
        if (level > entry_level(atomic_load(&ix->entry)) && !is_removed(ix, id))
            atomic_store_explicit(&ix->entry, entry_make(level, id), memory_order_release);
        pthread_mutex_unlock(&ix->entry_lock);
    }
}

/* ========================================================================
 * Repair after removals (driven by remove.c)
 *
 * remove.c decides what is removed, finds the lists that link to removed
 * nodes, and frees slots; the graph work is here, next to the heuristic it
 * shares with inserts. Every function below is called with the update
 * lock's read side held, so no slot is freed meanwhile: a removed node that
 * is still linked to keeps its record and its links (docs/ARCHITECTURE.md,
 * "Removal"), which is what lets a repair read through it.
 * ======================================================================== */

/* Candidate ids a repair collects: the list's own live members and, through
 * each removed member, that member's live members -- two removed hops deep,
 * which clustered removals (a whole class at once) need. Bounded so that the
 * scratch never grows: beyond it candidates are dropped, which costs quality
 * on pathological lists, never correctness. */
#define REPAIR_CAND_LISTS 16u /* candidate room, in list lengths (M0) */
#define REPAIR_REMOVED_LISTS 4u

struct graph_repair_scratch {
    node_id *ids;        /* candidates, then deduplicated */
    size_t ids_cap;
    node_id *removed;    /* removed members to read through */
    size_t removed_cap;
    node_id *own;        /* M0: the list's live members before the repair */
    heap_item *items;    /* candidates with their distance to the node */
    heap_item *sel;      /* M0 + 1: chosen */
    heap_item *buf;      /* 3 * (M0 + 1): set_links' and add_backlink's room */
    node_id *orphans;    /* nodes a repair left with no layer-0 in-link */
    size_t n_orphans, orphans_cap;
};

graph_repair_scratch *graph_repair_scratch_new(const hnswc_index *ix) {
    graph_repair_scratch *rs = calloc(1, sizeof *rs);
    if (!rs)
        return NULL;
    size_t m0 = (size_t)ix->M0 + 1;
    rs->ids_cap = REPAIR_CAND_LISTS * m0;
    rs->removed_cap = REPAIR_REMOVED_LISTS * m0;
    rs->ids = malloc(rs->ids_cap * sizeof *rs->ids);
    rs->removed = malloc(rs->removed_cap * sizeof *rs->removed);
    rs->own = malloc(m0 * sizeof *rs->own);
    rs->items = malloc(rs->ids_cap * sizeof *rs->items);
    rs->sel = malloc(m0 * sizeof *rs->sel);
    rs->buf = malloc(3 * m0 * sizeof *rs->buf);
    if (!rs->ids || !rs->removed || !rs->own || !rs->items || !rs->sel || !rs->buf) {
        graph_repair_scratch_free(rs);
        return NULL;
    }
    return rs;
}

void graph_repair_scratch_free(graph_repair_scratch *rs) {
    if (!rs)
        return;
    free(rs->ids);
    free(rs->removed);
    free(rs->own);
    free(rs->items);
    free(rs->sel);
    free(rs->buf);
    free(rs->orphans);
    free(rs);
}

/* Notes a node to re-link later (graph_repair_link_orphans). Best effort:
 * out of memory forgets it, which costs that node its reachability, as a
 * prune race would. */
static void note_orphan(graph_repair_scratch *rs, node_id id) {
    if (rs->n_orphans == rs->orphans_cap &&
        !grow_array((void **)&rs->orphans, &rs->orphans_cap, rs->n_orphans + 1, sizeof(node_id)))
        return;
    rs->orphans[rs->n_orphans++] = id;
}

static int by_id(const void *a, const void *b) {
    node_id x = *(const node_id *)a, y = *(const node_id *)b;
    return (x > y) - (x < y);
}

/*
 * Rebuilds the list of `node` on `level` if it links to removed nodes.
 *
 * Candidates: its live members and the live members of its removed ones
 * (read through removed nodes two hops deep). Choice: as an insert chooses,
 * the heuristic of Algorithm 4 first; then the nearest of the remaining
 * candidates fill the list up to the length it had, so a repaired list is
 * neither sparser nor denser than before. Measured on 20,000 Fashion-MNIST
 * vectors with half removed (recall@10 vs a fresh build of the rest, ef 10
 * / 32 / 64): the heuristic alone (what add_backlink does with a full list)
 * left lists half as long as they were and gave 0.927 / 0.993 / 0.9985
 * against 0.965 / 0.998 / 0.9992; keeping the length gives 0.977 / 0.998 /
 * 0.9993. Filling every repaired list to 2M was better still at equal ef
 * but doubled the degree, and full lists leave orphan protection no room.
 *
 * set_links keeps in-degrees and protects orphans where there is room; a
 * member dropped from a full list with no in-link left is noted in rs for
 * graph_repair_link_orphans. Takes node's link lock, and holds it while
 * computing distances, so no other writer changes the list between reading
 * and rewriting it (a few hundred distances, less than one insert's
 * search). A removed node's own list is not repaired: it is dropped whole
 * when its slot is reclaimed. Returns true if the list was rewritten.
 */
bool graph_repair_list(hnswc_index *ix, node_id node, int level, graph_repair_scratch *rs) {
    node_head *nh = node_at(ix, node);
    size_t max = level == 0 ? ix->M0 : ix->M;
    _Atomic uint32_t *links = node_links(ix, nh, level);

    pthread_mutex_lock(link_lock(ix, node));
    if (is_removed(ix, node)) {
        pthread_mutex_unlock(link_lock(ix, node));
        return false;
    }
    uint32_t n = node_links_count(ix, links, level);
    size_t nc = 0, nr = 0, n_own = 0;
    for (uint32_t j = 0; j < n; j++) {
        node_id m = link_at(links, j);
        if (is_removed(ix, m)) {
            rs->removed[nr++] = m; /* nr <= M0 < removed_cap */
        } else {
            rs->ids[nc++] = m;
            rs->own[n_own++] = m;
        }
    }
    if (nr == 0) {
        pthread_mutex_unlock(link_lock(ix, node));
        return false;
    }
    /* read through removed members: the first nr are one hop away, those
     * appended while reading them two hops (read too, but not further) */
    size_t hop1 = nr;
    for (size_t r = 0; r < nr; r++) {
        /* a removed node still linked to is not freed (remove.c), so its
         * record and its lists on this layer are still there */
        _Atomic uint32_t *rl = node_links(ix, node_at(ix, rs->removed[r]), level);
        uint32_t rn = node_links_count(ix, rl, level);
        for (uint32_t t = 0; t < rn; t++) {
            node_id y = link_at(rl, t);
            if (y == node)
                continue;
            if (!is_removed(ix, y)) {
                if (nc < rs->ids_cap)
                    rs->ids[nc++] = y;
            } else if (r < hop1 && nr < rs->removed_cap) {
                rs->removed[nr++] = y;
            }
        }
    }
    /* duplicates out (a node reached through several removed members) */
    qsort(rs->ids, nc, sizeof *rs->ids, by_id);
    size_t u = 0;
    for (size_t i = 0; i < nc; i++)
        if (u == 0 || rs->ids[i] != rs->ids[u - 1])
            rs->ids[u++] = rs->ids[i];
    nc = u;

    /* distances of the kind the heuristic compares (links_on_codes) */
    const bool codes = links_on_codes(ix);
    for (size_t i = 0; i < nc; i++)
        rs->items[i] = (heap_item){pair_dist(ix, node, rs->ids[i], codes), rs->ids[i]};
    qsort(rs->items, nc, sizeof *rs->items, by_distance);
    size_t len = n < max ? n : max; /* the length the list had */
    size_t k;
    if (nc <= len) {
        memcpy(rs->sel, rs->items, nc * sizeof *rs->sel);
        k = nc;
    } else {
        k = select_neighbors(ix, rs->items, nc, len, rs->sel);
        for (size_t i = 0; i < nc && k < len; i++)
            if (!sel_has(rs->sel, k, rs->items[i].id))
                rs->sel[k++] = rs->items[i];
    }
    set_links(ix, node, level, rs->sel, k, max, NODE_NONE, rs->buf);
    if (level == 0) {
        uint32_t now = node_links_count(ix, links, 0);
        for (size_t i = 0; i < n_own; i++)
            if (indeg0(ix, rs->own[i]) == 0 && !list_has(links, now, rs->own[i]))
                note_orphan(rs, rs->own[i]);
    }
    pthread_mutex_unlock(link_lock(ix, node));
    return true;
}

/*
 * Drops every link of the removed node `id` (its lists become empty; the
 * in-degrees of its former members go down). Former layer-0 members left
 * with no in-link at all, and not removed themselves, are noted in rs for
 * graph_repair_link_orphans. Takes the node's link lock.
 */
void graph_clear_links(hnswc_index *ix, node_id id, graph_repair_scratch *rs) {
    node_head *nh = node_at(ix, id);
    pthread_mutex_lock(link_lock(ix, id));
    for (int level = 0; level <= node_level(nh); level++) {
        _Atomic uint32_t *links = node_links(ix, nh, level);
        uint32_t n = node_links_count(ix, links, level);
        atomic_store_explicit(&links[0], 0, memory_order_release);
        for (uint32_t j = 0; j < n; j++) {
            node_id m = link_at(links, j);
            uint32_t left = atomic_fetch_sub_explicit(node_indeg(ix, node_at(ix, m), level), 1,
                                                      memory_order_relaxed) - 1;
            if (level == 0 && left == 0 && !is_removed(ix, m))
                note_orphan(rs, m);
        }
    }
    pthread_mutex_unlock(link_lock(ix, id));
}

/*
 * Gives `id`, a layer-0 node no list links to any more, an in-link again, so
 * that searches can reach it: first from its own nearest live members, as an
 * insert links back to its chosen neighbours; if none of them keeps it, by
 * linking it afresh like a new node (a search for its vector from the entry
 * point; skipped when sc is NULL). Best effort: a concurrent prune can take
 * the link away again, as for any node. sc: from graph_ctx_acquire(ix,
 * ef_construction), or NULL.
 */
static void link_orphan(hnswc_index *ix, search_ctx *sc, node_id id, graph_repair_scratch *rs) {
    node_head *nh = node_at(ix, id);
    if (indeg0(ix, id) > 0 || is_removed(ix, id))
        return;
    const bool codes = links_on_codes(ix); /* add_backlink compares the same kind */
    uint32_t n = node_links_count(ix, nh->l0, 0);
    size_t nc = 0;
    for (uint32_t j = 0; j < n && nc < rs->ids_cap; j++) {
        node_id m = link_at(nh->l0, j);
        if (!is_removed(ix, m))
            rs->items[nc++] = (heap_item){pair_dist(ix, id, m, codes), m};
    }
    qsort(rs->items, nc, sizeof *rs->items, by_distance);
    for (size_t j = 0; j < nc && indeg0(ix, id) == 0; j++)
        add_backlink(ix, rs->items[j].id, id, rs->items[j].dist, 0, rs->buf);
    if (indeg0(ix, id) == 0 && sc)
        graph_insert(ix, sc, id, false);
}

void graph_repair_link_orphans(hnswc_index *ix, search_ctx *sc, graph_repair_scratch *rs) {
    /* link_orphan may note more (a re-link prunes lists too): take turns */
    while (rs->n_orphans > 0)
        link_orphan(ix, sc, rs->orphans[--rs->n_orphans], rs);
}

/*
 * Removing many nodes can cut off an island: a few nodes that still link to
 * each other (so none is an orphan) but that no path from the entry point
 * reaches any more, because every bridge to them was removed. On
 * Fashion-MNIST with half of 60,000 removed, 24 nodes ended up so, against 4
 * in a fresh build. So after a reclamation, a breadth-first walk of layer 0
 * from the entry point finds the elements not reached, and each gets an
 * in-link from the nearest reached node that a search for its vector finds
 * (the first whose list keeps it), which brings its whole island back.
 *
 * The walk costs about what the sweep did (every layer-0 list once); it
 * runs beside searches and adds, so a node being linked at that moment may
 * be taken for unreached and get one link more, which does no harm. Best
 * effort: out of memory skips it. Returns the number of nodes re-linked.
 */
size_t graph_reconnect(hnswc_index *ix, search_ctx *sc, graph_repair_scratch *rs) {
    uint64_t e = atomic_load_explicit(&ix->entry, memory_order_acquire);
    uint64_t count = atomic_load_explicit(&ix->count, memory_order_acquire);
    if (e == ENTRY_EMPTY || count == 0 || !sc)
        return 0;
    uint8_t *seen = calloc((size_t)count, 1);
    node_id *queue = malloc((size_t)count * sizeof *queue);
    if (!seen || !queue) {
        free(seen);
        free(queue);
        return 0;
    }
    size_t head = 0, tail = 0, fixed = 0;
    queue[tail++] = entry_id(e);
    seen[entry_id(e)] = 1;
    size_t ef = sc->beam < rs->ids_cap ? sc->beam : rs->ids_cap;
    for (uint64_t u = 0; u <= count; u++) {
        /* the walk from what is queued (the entry, then each re-linked node) */
        while (head < tail) {
            node_head *h = node_at(ix, queue[head++]);
            uint32_t n = node_links_count(ix, h->l0, 0);
            for (uint32_t j = 0; j < n; j++) {
                node_id b = link_at(h->l0, j);
                if (b < count && !seen[b]) {
                    seen[b] = 1;
                    queue[tail++] = b;
                }
            }
        }
        if (u == count)
            break;
        node_head *uh = node_at(ix, (node_id)u);
        if (seen[u] || !node_is_element(atomic_load_explicit(&uh->flags, memory_order_acquire)))
            continue;
        /* not reached: search for it from the entry point, as an insert
         * would (on codes when the walk reads codes; the results scored
         * exactly where the links are chosen so, links_on_codes, since
         * add_backlink below compares distances of that kind) */
        const probe pq = {storage_has_vectors(ix) ? node_vector(ix, (node_id)u) : NULL,
                          walk_on_codes(ix) ? node_codes(ix, uh) : NULL};
        uint64_t e2 = atomic_load_explicit(&ix->entry, memory_order_acquire);
        node_id ep = entry_id(e2);
        if (ep == (node_id)u)
            continue;
        float ep_dist = probe_dist(ix, &pq, ep, 0.0f, false);
        ep = greedy_descent(ix, &pq, ep, &ep_dist, entry_level(e2), 0, (node_id)u, false);
        layer_query lq = {&pq, 0, ef, (node_id)u, false, false, NULL, NULL};
        size_t nt = 0;
        next_epoch(sc);
        hnswc_status st = search_layer(ix, sc, &lq, ep, ep_dist, &nt, NULL);
        next_epoch(sc);
        if (st != HNSWC_OK)
            continue;
        size_t nr = nt;
        max_heap_drain_sorted(sc->top, &nt, rs->items);
        if (pq.c && !links_on_codes(ix))
            rescore_exact(ix, pq.f, rs->items, nr);
        for (size_t i = 0; i < nr; i++) {
            node_id v = rs->items[i].id;
            if (v >= count || !seen[v] || is_removed(ix, v))
                continue;
            add_backlink(ix, v, (node_id)u, rs->items[i].dist, 0, rs->buf);
            _Atomic uint32_t *vl = node_at(ix, v)->l0;
            if (list_has(vl, node_links_count(ix, vl, 0), (node_id)u)) {
                seen[u] = 1;
                queue[tail++] = (node_id)u;
                fixed++;
                break;
            }
        }
    }
    free(seen);
    free(queue);
    return fixed;
}

/* ========================================================================
 * Exact search
 * ======================================================================== */

/* Full scan of live elements into heap[0..k), closest first; returns how
 * many. heap needs room for k + 1 items; dbuf dim floats where a code-only
 * index decodes each row (NULL for the other storages). Caller holds the
 * update lock's read side. */
size_t graph_search_exact(const hnswc_index *ix, const float *q, size_t k,
                          hnswc_filter_fn filter, void *user, heap_item *heap, float *dbuf) {
    uint64_t count = atomic_load_explicit(&ix->count, memory_order_acquire);
    size_t n = 0;
    for (uint64_t i = 0; i < count; i++) {
        node_head *nh = node_at(ix, (node_id)i);
        uint32_t f = atomic_load_explicit(&nh->flags, memory_order_acquire);
        if (!(f & NODE_READY) || (f & NODE_HIDDEN))
            continue;
        float d = vec_distance(ix, q, node_f32(ix, (node_id)i, dbuf));
        if (n == k && d >= heap[0].dist)
            continue;
        if (filter && !filter(nh->label, user))
            continue;
        max_heap_push(heap, &n, (heap_item){d, (node_id)i});
        if (n > k)
            max_heap_pop(heap, &n);
    }
    size_t found = n;
    max_heap_drain_sorted(heap, &n, heap);
    return found;
}

/* ========================================================================
 * Search (Algorithm 5)
 * ======================================================================== */

/*
 * The pool of the exact re-rank: the best RERANK_POOL(k) of the beam by code
 * distance. Each re-ranked candidate costs a full f32 vector from the cold
 * array (3,136 bytes on Fashion-MNIST, four times a code row), so re-ranking
 * the whole beam at ef 48 would read as much as a fifth of the walk's
 * traffic again. Twice k (at least k + 10) keeps every true neighbour whose
 * code distance ranks it up to twice as far as it is: on Fashion-MNIST codes
 * are exact, and on real-valued data the code error of one step in 255 moves
 * ranks by far less than k.
 */
#define RERANK_POOL(k) ((k) + ((k) > 10 ? (k) : 10))

/*
 * The narrowest beam of a walk on codes. With a beam of exactly k the walk
 * ends holding the k best by code distance, and the re-rank can only reorder
 * them: a true neighbour that the codes rank just past k is lost for good.
 * On Fashion-MNIST under a random rotation, sq8 at ef 10 (k 10) found 0.0055
 * less recall@10 than f32 traversal, and within 0.0004 of it from ef 12 up
 * (docs/bench-results/ab-rotated-speed3.json), so a little slack, growing
 * with k, is the floor. (Rejected: a floor of RERANK_POOL(k), twice k, which
 * would make ef 10 cost what ef 20 does where 12 suffices.)
 */
#define CODE_BEAM_MIN(k) ((k) + (k) / 8 + 1)

/*
 * The exact re-rank of a walk on codes. `pool` is the beam, a max-heap of nt
 * items by code distance (consumed: the worst are popped until `keep` are
 * left, the pool size); each remaining item gets its exact f32 distance
 * from the cold array (code only: its distance to the decoded row, dbuf
 * being dim floats to decode into), and the best k are written to out,
 * closest first; returns how many. out has room for k + 1 items (used as a
 * max-heap).
 *
 * The pool is visited closest (by code) first, so the k-th best exact
 * distance is known early, and for L2, once k are held, each further row
 * goes through the bounded kernel, which stops reading it as soon as its
 * partial sum is past that k-th distance: most of the pool's second half
 * then costs a third of a row. The partial sums only grow, so a row it stops
 * is one the full kernel would also have refused, and a row it does not
 * stop gets the plain kernel's bits (distance.c): the results are those of
 * the full re-rank. (Rejected: skipping rows by a bound from the code
 * distance alone, which needs a per-row quantisation error stored in the
 * record and only pays where codes are nearly exact.)
 */
static size_t rerank(const hnswc_index *ix, const float *q, heap_item *pool, size_t nt,
                     size_t k, size_t keep, heap_item *out, float *dbuf) {
    while (nt > keep)
        max_heap_pop(pool, &nt);
    size_t np = nt;
    max_heap_drain_sorted(pool, &nt, pool); /* ascending code distance, in place */
    /* decode the code rows (the walk has just read them: cached) when there
     * is no f32 copy, or when every code reproduces its f32 vector bit for
     * bit (codes_inexact, index.h; loaded after the walk, see storage.c,
     * storage_note_codes): the kernel then sees the same floats and gives
     * the same distances without the cold rows, 3,136 bytes each on
     * Fashion-MNIST, whose pixels the codes hold exactly: +6% to +9% at
     * ef 10-48 there. Real-valued data (off the grid) reads the cold
     * rows as before. */
    const bool decode = !storage_has_vectors(ix) ||
                        !atomic_load_explicit(&ix->codes_inexact, memory_order_acquire);
    for (size_t i = 0; i < np; i++) /* the first lines of every row, at once */
        prefetch_node(ix, pool[i].id, decode);
    const bool l2 = ix->metric == HNSWC_METRIC_L2;
    size_t n = 0;
    for (size_t i = 0; i < np; i++) {
        const float *v = dbuf;
        if (decode)
            quant_sq8_decode(&ix->quant, node_codes(ix, node_at(ix, pool[i].id)), dbuf);
        else
            v = node_vector(ix, pool[i].id);
        float d = n == k && l2 ? ix->kernels->l2_bounded(q, v, ix->dim, out[0].dist)
                               : vec_distance(ix, q, v);
        if (n == k && d >= out[0].dist)
            continue;
        max_heap_push(out, &n, (heap_item){d, pool[i].id});
        if (n > k)
            max_heap_pop(out, &n);
    }
    size_t found = n;
    max_heap_drain_sorted(out, &n, out);
    return found;
}

/*
 * What a search's walk compares against: q, and when the walk reads codes
 * (SQ8, codes_ready) its code row, written into sc->qcode. A query outside
 * the trained range is saturated: that only makes the walk coarser.
 */
static inline probe query_probe(const hnswc_index *ix, search_ctx *sc, const float *q) {
    probe pq = {q, NULL};
    if (walk_on_codes(ix)) {
        (void)quant_sq8_encode(&ix->quant, q, sc->qcode);
        pq.c = sc->qcode;
    }
    return pq;
}

/*
 * True when the walk's code distances of the pool -- the beam, a max-heap
 * of nt items -- are the exact f32 distances, bit for bit, so that the
 * re-rank would only read them again: L2; the query's code decodes to the
 * query (which also rules out a saturated component) and every stored row
 * to its vector (codes_inexact 0, loaded after the walk as rerank loads it);
 * step 1 and integral offsets (quant_sq8.integral), so every decoded value
 * is an integer; and the largest distance in the pool below 2^24. Then
 * q_i - x_i, its square and every partial sum of the f32 kernel (in any
 * order, fused or not) are integers below 2^24, computed exactly, and the
 * kernel returns the integer sum the code kernel computed, which step^2 = 1
 * and the float conversion keep exact. This is Fashion-MNIST's case (pixels
 * 0..255 with a step of 1, queries pixels too): a re-rank of 20 decoded rows
 * measured 5.6% + 1.8% of a one-thread search at ef 12 (decoding, then the
 * float kernel; perf, docs/BENCHMARKS.md round 6). Checked here, after the
 * walk and only for a search that ends in a re-rank, not where the query is
 * coded: an ordered batch's descents and range searches have no use for it.
 */
static bool codes_are_distances(const hnswc_index *ix, const probe *pq, const heap_item *pool,
                                size_t nt) {
    return ix->quant.integral && ix->metric == HNSWC_METRIC_L2 && storage_has_vectors(ix) &&
           (nt == 0 || pool[0].dist < 16777216.0f) &&
           !atomic_load_explicit(&ix->codes_inexact, memory_order_acquire) &&
           quant_sq8_reproduces(&ix->quant, pq->c, pq->f);
}

/*
 * A search's greedy descent from the entry point (entry word e) through
 * the upper layers: returns the node of layer 0 where its beam search
 * begins, its distance in *dist. Removed elements in limbo are stepped
 * around when `limbo`.
 */
static ALWAYS_INLINE node_id descend_to_layer0(const hnswc_index *ix, const probe *pq,
                                               uint64_t e, bool limbo, float *dist,
                                               const graph_trace *tr) {
    node_id ep = entry_id(e);
    *dist = probe_dist(ix, pq, ep, 0.0f, false);
    TRACE(tr, HNSWC_TRACE_ENTRY, entry_level(e), ep, NODE_NONE, *dist, 0, 0);
    return tr ? greedy_descent_impl(ix, pq, ep, dist, entry_level(e), 0, NODE_NONE, limbo, tr)
              : greedy_descent(ix, pq, ep, dist, entry_level(e), 0, NODE_NONE, limbo);
}

search_ctx *graph_ctx_take(const hnswc_index *ix, search_ctx **held, size_t ef) {
    if (!held)
        return graph_ctx_acquire(ix, ef);
    if (*held)
        return graph_ctx_prepare(ix, *held, ef) ? *held : NULL;
    return *held = graph_ctx_acquire(ix, ef);
}

void graph_ctx_put(const hnswc_index *ix, search_ctx **held, search_ctx *sc) {
    if (!held)
        graph_ctx_release(ix, sc);
}

/*
 * The k nearest results for q, closest first, into out[0..*n_out). Caller
 * holds the update lock's read side. Deleted nodes and nodes the filter
 * rejects are walked through but never returned.
 */
static ALWAYS_INLINE hnswc_status search_impl(const hnswc_index *ix, const float *q, size_t k,
                                              size_t ef, hnswc_filter_fn filter, void *user,
                                              heap_item *out, size_t *n_out,
                                              const graph_trace *tr, node_id start,
                                              search_ctx **held) {
    *n_out = 0;
    uint64_t e = atomic_load_explicit(&ix->entry, memory_order_acquire);
    if (e == ENTRY_EMPTY)
        return HNSWC_OK;
    if (ef < k)
        ef = k;
    if (walk_on_codes(ix) && ef < CODE_BEAM_MIN(k))
        ef = CODE_BEAM_MIN(k);
    search_ctx *sc = graph_ctx_take(ix, held, ef);
    if (!sc)
        return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory allocating search scratch");

    /* SQ8: the query is coded with the index's quantiser and the whole walk
     * compares code rows; only the re-rank below reads f32 vectors */
    probe pq = query_probe(ix, sc, q);
    /* removed elements in limbo are stepped around (walk_skips), so they
     * count neither as seen nor as reachable */
    uint64_t pending = atomic_load_explicit(&ix->removed_pending, memory_order_acquire);
    bool limbo = pending != 0;
    float ep_dist;
    node_id ep;
    if (start != NODE_NONE && !walk_skips(ix, limbo, start)) {
        /* the descent was made before, by graph_search_entry; the distance
         * is taken again, since the walk may have moved to codes since
         * (codes_ready) */
        ep = start;
        ep_dist = probe_dist(ix, &pq, ep, 0.0f, false);
    } else {
        ep = descend_to_layer0(ix, &pq, e, limbo, &ep_dist, tr);
    }

    layer_query lq = {&pq, 0, sc->beam, NODE_NONE, storage_has_hidden(ix), limbo, filter, user};
    size_t nt = 0, visited = 0;
    hnswc_status st = tr ? search_layer_traced(ix, sc, &lq, ep, ep_dist, &nt, &visited, tr)
                         : search_layer(ix, sc, &lq, ep, ep_dist, &nt, &visited);
    /* free slots are never reached, nor (above) removed ones */
    uint64_t count = storage_graph_slots(ix) - pending;
    if (st == HNSWC_OK && visited < count) {
        /*
         * The walk ran out of candidates -- everything reachable was seen,
         * as happens when ef is at least the number of elements, or with a
         * selective filter or many tombstones -- yet nodes remain that it
         * never saw: the layer-0 graph is directed and need not be strongly
         * connected, and the greedy descent can land in a pocket that does
         * not lead back out (small M, duplicates, updates). Plain HNSW
         * returns short or wrong results here; a full scan gives the exact
         * answer, at about the cost the walk had already paid. So a search
         * with ef >= the element count is always exact.
         */
        TRACE(tr, HNSWC_TRACE_EXACT, 0, NODE_NONE, NODE_NONE, 0.0f, 0, count);
        *n_out = graph_search_exact(ix, q, k, filter, user, out, sc->dvec);
    } else if (st == HNSWC_OK && pq.c) {
        /* Code only, with a beam holding every element (ef >= the count):
         * the whole beam, so that the search is the exact scan by decoded
         * distance, as hnswc.h promises (the pool's order is the codes',
         * which may differ from the decoded distances' at float rounding).
         * Rows decode from the cache; with f32 vectors the cold array's
         * cost keeps the pool small. */
        size_t keep = !storage_has_vectors(ix) && sc->beam >= count ? nt : RERANK_POOL(k);
        while (nt > keep)
            max_heap_pop(sc->top, &nt); /* the pool, as rerank takes it */
        if (codes_are_distances(ix, &pq, sc->top, nt)) {
            while (nt > k)
                max_heap_pop(sc->top, &nt);
            *n_out = nt;
            max_heap_drain_sorted(sc->top, &nt, out);
        } else {
            *n_out = rerank(ix, q, sc->top, nt, k, keep, out, sc->dvec);
        }
    } else if (st == HNSWC_OK) {
        while (nt > k)
            max_heap_pop(sc->top, &nt);
        *n_out = nt;
        max_heap_drain_sorted(sc->top, &nt, out);
    }
    graph_ctx_put(ix, held, sc);
    return st;
}

hnswc_status graph_search(const hnswc_index *ix, const float *q, size_t k, size_t ef,
                          hnswc_filter_fn filter, void *user, node_id start, search_ctx **held,
                          heap_item *out, size_t *n_out) {
    return search_impl(ix, q, k, ef, filter, user, out, n_out, NULL, start, held);
}

hnswc_status graph_search_entry(const hnswc_index *ix, const float *q, search_ctx **held,
                                node_id *start) {
    *start = NODE_NONE;
    uint64_t e = atomic_load_explicit(&ix->entry, memory_order_acquire);
    if (e == ENTRY_EMPTY)
        return HNSWC_OK;
    search_ctx *sc = graph_ctx_take(ix, held, 1);
    if (!sc)
        return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory allocating search scratch");
    probe pq = query_probe(ix, sc, q);
    bool limbo = atomic_load_explicit(&ix->removed_pending, memory_order_acquire) != 0;
    float ep_dist;
    *start = descend_to_layer0(ix, &pq, e, limbo, &ep_dist, NULL);
    graph_ctx_put(ix, held, sc);
    return HNSWC_OK;
}

hnswc_status graph_search_traced(const hnswc_index *ix, const float *q, size_t k, size_t ef,
                                 hnswc_filter_fn filter, void *user, const graph_trace *tr,
                                 heap_item *out, size_t *n_out) {
    return search_impl(ix, q, k, ef, filter, user, out, n_out, tr, NODE_NONE, NULL);
}

/* ========================================================================
 * Range search
 *
 * Every element within `radius` of q. HNSW has no range query of its own;
 * this one is built from the k-NN search without touching its loop:
 *
 *   1. the usual descent and beam search of width ef on layer 0: its
 *      results within the radius are the seeds (if the nearest result is
 *      outside, the ball is taken to be empty, as a k-NN search would);
 *   2. a flood from the seeds: every neighbour of a node inside the ball is
 *      measured, and joins (and is expanded) if it is inside too. The ball's
 *      elements are close to each other, so the ball is nearly always
 *      connected through its own nodes; a larger ef seeds more of it (an
 *      element cut off from every seed is the one way to miss);
 *   3. when the beam search ran out of candidates having seen fewer nodes
 *      than the graph holds, the exact scan answers instead, as in
 *      graph_search: so ef >= the element count is exact.
 *
 * Tombstones, removed nodes and filtered-out nodes inside the ball are
 * walked through (they keep it connected) but never returned. Rejected: a
 * second search_layer with a radius stop condition (a copy of the hot loop
 * to keep in step), and doubling ef until the beam's worst result is outside
 * the radius (repeats the whole search, and its cost grows with the ball).
 * ======================================================================== */

static bool hits_push(graph_hits *h, float dist, node_id id) {
    if (h->n == h->cap && !grow_array((void **)&h->items, &h->cap, h->n + 1, sizeof(heap_item)))
        return false;
    h->items[h->n++] = (heap_item){dist, id};
    return true;
}

/* Every READY, visible element within radius, by a full scan. */
static hnswc_status range_exact(const hnswc_index *ix, const float *q, float radius,
                                hnswc_filter_fn filter, void *user, graph_hits *out,
                                float *dbuf) {
    uint64_t count = atomic_load_explicit(&ix->count, memory_order_acquire);
    for (uint64_t i = 0; i < count; i++) {
        node_head *nh = node_at(ix, (node_id)i);
        uint32_t f = atomic_load_explicit(&nh->flags, memory_order_acquire);
        if (!(f & NODE_READY) || (f & NODE_HIDDEN))
            continue;
        float d = vec_distance(ix, q, node_f32(ix, (node_id)i, dbuf));
        if (d <= radius && (!filter || filter(nh->label, user)) && !hits_push(out, d, (node_id)i))
            return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory growing range search results");
    }
    return HNSWC_OK;
}

hnswc_status graph_search_range(const hnswc_index *ix, const float *q, float radius, size_t ef,
                                hnswc_filter_fn filter, void *user, graph_hits *out) {
    out->n = 0;
    uint64_t e = atomic_load_explicit(&ix->entry, memory_order_acquire);
    if (e == ENTRY_EMPTY)
        return HNSWC_OK;
    search_ctx *sc = graph_ctx_acquire(ix, ef);
    if (!sc)
        return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory allocating search scratch");

    /* the walk as graph_search walks (on codes when they are in use);
     * every distance compared with the radius is exact f32 */
    probe pq = query_probe(ix, sc, q);
    uint64_t pending = atomic_load_explicit(&ix->removed_pending, memory_order_acquire);
    bool limbo = pending != 0; /* as graph_search: limbo stepped around */
    float ep_dist;
    node_id ep = descend_to_layer0(ix, &pq, e, limbo, &ep_dist, NULL);
    layer_query lq = {&pq, 0, sc->beam, NODE_NONE, storage_has_hidden(ix), limbo, filter, user};
    size_t nt = 0, visited = 0;
    hnswc_status st = search_layer(ix, sc, &lq, ep, ep_dist, &nt, &visited);
    if (st == HNSWC_OK && visited < storage_graph_slots(ix) - pending) {
        st = range_exact(ix, q, radius, filter, user, out, sc->dvec); /* step 3 */
    } else if (st == HNSWC_OK) {
        /* step 1: the seeds -- every node the beam kept, with its exact
         * distance -- in a fresh visited set (the beam saw more than it
         * kept), and the flood's bound: the radius, or the beam's worst
         * if that is farther */
        next_epoch(sc);
        float bound = radius;
        for (size_t i = 0; i < nt && st == HNSWC_OK; i++) {
            node_id id = sc->top[i].id;
            float d = pq.c ? vec_distance(ix, q, node_f32(ix, id, sc->dvec)) : sc->top[i].dist;
            bound = d > bound ? d : bound;
            if (visit(ix, sc, id, &st) && !hits_push(out, d, id))
                st = hnswc_fail(HNSWC_ERR_NOMEM, "out of memory growing range search results");
        }
        /* step 2: the flood; out doubles as its queue (every node within
         * the bound, returnable or not) */
        for (size_t i = 0; i < out->n && st == HNSWC_OK; i++) {
            _Atomic uint32_t *links = node_links(ix, node_at(ix, out->items[i].id), 0);
            uint32_t n = node_links_count(ix, links, 0);
            for (uint32_t j = 0; j < n && st == HNSWC_OK; j++) {
                node_id nb = link_at(links, j);
                if (walk_skips(ix, limbo, nb) || !visit(ix, sc, nb, &st))
                    continue;
                float d = vec_distance(ix, q, node_f32(ix, nb, sc->dvec));
                if (d <= bound && !hits_push(out, d, nb))
                    st = hnswc_fail(HNSWC_ERR_NOMEM, "out of memory growing range search results");
            }
        }
        /* only what lies inside and may be returned stays */
        size_t w = 0;
        for (size_t i = 0; i < out->n; i++)
            if (out->items[i].dist <= radius && is_result(ix, &lq, out->items[i].id))
                out->items[w++] = out->items[i];
        out->n = w;
    }
    graph_ctx_release(ix, sc);
    if (st != HNSWC_OK) {
        out->n = 0;
        return st;
    }
    qsort(out->items, out->n, sizeof *out->items, by_distance);
    return HNSWC_OK;
}

/* ========================================================================
 * Statistics
 * ======================================================================== */

/*
 * Per-node degrees, levels and one-way links, then a breadth-first walk of
 * layer 0 from the entry point for the nodes no search can reach. No
 * concurrent writer (hnswc_get_graph_stats's contract), so no lock.
 */
hnswc_status graph_stats(const hnswc_index *ix, hnswc_graph_stats *out) {
    memset(out, 0, sizeof *out);
    uint64_t n = atomic_load(&ix->count);
    if (n == 0)
        return HNSWC_OK;
    uint8_t *seen = calloc((size_t)n, 1);
    node_id *queue = malloc((size_t)n * sizeof *queue);
    if (!seen || !queue) {
        free(seen);
        free(queue);
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_get_graph_stats: out of memory");
    }
    /* free slots and removed elements awaiting reclamation are not counted
     * (node_is_element); nor are links to them */
    out->degree0_min = UINT32_MAX;
    for (uint64_t i = 0; i < n; i++) {
        node_head *h = node_at(ix, (node_id)i);
        if (!node_is_element(atomic_load(&h->flags)))
            continue;
        out->nodes++;
        out->level_counts[node_level(h)]++;
        if ((uint32_t)node_level(h) + 1 > out->levels)
            out->levels = (uint32_t)node_level(h) + 1;
        uint32_t deg = node_links_count(ix, h->l0, 0);
        out->degree0_min = deg < out->degree0_min ? deg : out->degree0_min;
        out->degree0_max = deg > out->degree0_max ? deg : out->degree0_max;
        out->links_total += deg;
        for (uint32_t j = 0; j < deg; j++) {
            node_id b = atomic_load(&h->l0[1 + j]);
            node_head *bh = node_at(ix, b);
            uint32_t bdeg = node_links_count(ix, bh->l0, 0);
            bool back = false;
            for (uint32_t t = 0; t < bdeg && !back; t++)
                back = atomic_load(&bh->l0[1 + t]) == (node_id)i;
            out->one_way_links += !back;
        }
    }
    if (out->nodes == 0)
        out->degree0_min = 0;
    else
        out->degree0_mean = (double)out->links_total / (double)out->nodes;

    /* breadth-first walk of layer 0 from the entry point */
    uint64_t e = atomic_load(&ix->entry);
    size_t head = 0, tail = 0, reached = 0;
    if (e != ENTRY_EMPTY) {
        queue[tail++] = (node_id)e;
        seen[(node_id)e] = 1;
    }
    while (head < tail) {
        node_head *h = node_at(ix, queue[head++]);
        reached += node_is_element(atomic_load(&h->flags));
        uint32_t deg = node_links_count(ix, h->l0, 0);
        for (uint32_t j = 0; j < deg; j++) {
            node_id b = atomic_load(&h->l0[1 + j]);
            if (!seen[b]) {
                seen[b] = 1;
                queue[tail++] = b;
            }
        }
    }
    out->unreachable = out->nodes - reached;
    free(seen);
    free(queue);
    return HNSWC_OK;
}
