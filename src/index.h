/*
 * index.h -- the internals of an hnswc_index, shared by the src/ files.
 *
 * Nothing here is public; include/hnswc.h is the contract with users.
 *
 * Files:
 *   error.c      status strings, per-thread error messages
 *   distance.c   SIMD kernels and their run-time dispatch
 *   storage.c    node storage (chunks that never move) and the label map
 *   graph.c      the HNSW algorithm: insert, search, neighbour selection
 *   index.c      the public API: validation, locking, batches
 *   threads.c    the parallel-for used by the batch calls
 *   persist.c    hnswc's file format: save, load, (de)serialize
 *   hnswlib_import.c  reading hnswlib's index files
 */
#ifndef HNSWC_INDEX_H
#define HNSWC_INDEX_H

#include "hnswc.h"
#include "distance.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ========================================================================
 * Errors (error.c)
 * ======================================================================== */

/*
 * Records `status` with a printf-style message as the calling thread's last
 * error and returns status, so that a failure reads `return hnswc_fail(...)`.
 */
hnswc_status hnswc_fail(hnswc_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The calling thread's last message, for copying it to another thread. */
const char *hnswc_last_message(void);

/* ========================================================================
 * Node storage (storage.c)
 *
 * A node is one fixed-size record holding its header, its layer-0 links and
 * its vector, so that a search touches one contiguous block per node:
 *
 *   offset 0          node_head (label, level, flags, upper links pointer)
 *   offsetof l0       uint32 count, then 2*M uint32 links        (atomic)
 *   vector_offset     dim floats, 64-byte aligned
 *
 * Records live in chunks that are allocated and never moved or freed while
 * the index lives: chunk c holds CHUNK0 << c records, so 23 chunks cover
 * every uint32 id and the chunk table is a fixed array that is never
 * reallocated. That is what lets readers hold node pointers while the index
 * grows (a single realloc'd array, as in hnswlib, would move them).
 * ======================================================================== */

typedef uint32_t node_id;
#define NODE_NONE UINT32_MAX
#define HNSWC_MAX_ELEMENTS ((uint64_t)UINT32_MAX - 1)

#define CHUNK0_BITS 10u /* the first chunk holds 1024 records */
#define MAX_CHUNKS 23u

/* node_head.flags bits */
#define NODE_READY 1u   /* vector and header written: visible to scans */
#define NODE_DELETED 2u /* tombstone: walked through, never returned    */
#define NODE_COMPACT_MARK 4u /* transient, under meta_lock: see push_deleted */

typedef struct node_head {
    uint64_t label;            /* written before the node is published, or
                                  under the update lock's write side       */
    _Atomic uint32_t *upper;   /* level * (1 + M) words: count, M links per
                                  layer 1..level; NULL when level is 0     */
    int32_t level;             /* top layer of this node                   */
    _Atomic uint32_t flags;    /* NODE_READY | NODE_DELETED                */
    _Atomic uint32_t indeg0;   /* layer-0 links pointing here: pruning never
                                  takes a node's last one (graph.c)        */
    _Atomic uint32_t l0[];     /* count, then 2*M links                    */
} node_head;

/* Open-addressing hash map from label to node id (linear probing, with
 * backward-shift removal so no tombstones accumulate). Guarded by
 * hnswc_index.meta_lock. */
typedef struct label_map {
    uint64_t *keys;
    node_id *vals;   /* NODE_NONE marks an empty slot */
    size_t cap;      /* a power of two, or 0 */
    size_t len;
} label_map;

/* ========================================================================
 * Search scratch (graph.c): a visited set and two heaps, pooled per index so
 * that a search allocates nothing in the common case.
 * ======================================================================== */

typedef struct heap_item {
    float dist;
    node_id id;
} heap_item;

typedef struct search_ctx {
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
    struct search_ctx *next; /* free-list link in the pool */
} search_ctx;

/* ========================================================================
 * The index
 * ======================================================================== */

struct hnswc_index {
    /* --- parameters (constant after create/load) --- */
    uint32_t dim;
    hnswc_metric metric;
    uint32_t M;               /* links per node on layers >= 1 */
    uint32_t M0;              /* links per node on layer 0 = 2*M */
    uint32_t ef_construction;
    uint64_t seed;
    double level_mult;        /* 1 / ln(M) */
    const hnswc_kernels *kernels;
    size_t node_size;         /* bytes per record */
    size_t vector_offset;     /* offset of the vector in a record */

    _Atomic uint32_t ef_search;

    /* --- storage --- */
    char *chunks[MAX_CHUNKS]; /* written once each, under meta_lock */
    _Atomic uint64_t capacity; /* records in allocated chunks */
    _Atomic uint64_t count;    /* records handed out (ids 0 .. count-1) */
    _Atomic uint64_t deleted_count;
    _Atomic uint64_t memory_bytes;

    /*
     * Entry point: (max_level + 1) << 32 | id, or ENTRY_EMPTY. One atomic word
     * so readers see a consistent pair without a lock.
     */
    _Atomic uint64_t entry;

    /* --- locks, in the order they may be taken --- */
    /*
     * update_lock: read side for searches, for adds of new labels and for
     * anything reading vectors; write side for the rare adds that overwrite a
     * record in place (label update, reuse of a deleted slot), because a
     * vector cannot be rewritten while a reader may be computing with it.
     */
    pthread_rwlock_t update_lock;
    /* meta_lock: the label map, slot allocation, chunk growth, the level
     * generator and the list of deleted slots. Held briefly, never while
     * searching. */
    pthread_mutex_t meta_lock;
    /* entry_lock: held for the whole insertion of a node that raises the top
     * level, so two such inserts do not race to replace the entry point. */
    pthread_mutex_t entry_lock;
    /* link_locks: striped locks over node ids; held while a node's link
     * lists are rewritten. At most one is held at a time. Readers take none:
     * links are read and written with atomics. */
#define LINK_LOCK_STRIPES 4096u
    pthread_mutex_t link_locks[LINK_LOCK_STRIPES];
    /* pool_lock: the free list of search contexts. */
    pthread_mutex_t pool_lock;

    /* --- guarded by meta_lock --- */
    label_map labels;
    uint64_t rng;             /* level generator state */
    node_id *deleted_ids;     /* candidates for slot reuse (may be stale) */
    size_t deleted_ids_len, deleted_ids_cap;

    /* --- guarded by pool_lock --- */
    search_ctx *pool;
};

#define ENTRY_EMPTY UINT64_MAX

/* The entry word: (top layer + 1) << 32 | id. Written only here. */
static inline uint64_t entry_make(int level, node_id id) {
    return ((uint64_t)(uint32_t)(level + 1) << 32) | id;
}
static inline int entry_level(uint64_t e) { return (int)(e >> 32) - 1; }
static inline node_id entry_id(uint64_t e) { return (node_id)e; }

static inline node_head *node_at(const hnswc_index *ix, node_id id) {
    /* chunk c holds ids [CHUNK0*(2^c - 1), CHUNK0*(2^(c+1) - 1)) */
    uint64_t v = (uint64_t)id + (1u << CHUNK0_BITS);
    unsigned hb = 63u - (unsigned)__builtin_clzll(v);
    unsigned c = hb - CHUNK0_BITS;
    uint64_t off = v - ((uint64_t)1 << hb);
    return (node_head *)(ix->chunks[c] + off * ix->node_size);
}

static inline float *node_vector(const hnswc_index *ix, const node_head *n) {
    return (float *)((char *)n + ix->vector_offset);
}

/* Link list of node n on layer `level` (<= n->level): word 0 is the count. */
static inline _Atomic uint32_t *node_links(const hnswc_index *ix, node_head *n, int level) {
    return level == 0 ? n->l0 : n->upper + (size_t)(level - 1) * (ix->M + 1);
}

/* The number of links in a list, never more than the list has room for
 * (a reader may race with a rewrite; a loaded file is checked anyway). */
static inline uint32_t links_count(const hnswc_index *ix, _Atomic uint32_t *links, int level) {
    uint32_t n = atomic_load_explicit(&links[0], memory_order_acquire);
    uint32_t max = level == 0 ? ix->M0 : ix->M;
    return n <= max ? n : max;
}

static inline pthread_mutex_t *link_lock(hnswc_index *ix, node_id id) {
    return &ix->link_locks[id % LINK_LOCK_STRIPES];
}

static inline float index_distance(const hnswc_index *ix, const float *a, const float *b) {
    if (ix->metric == HNSWC_METRIC_L2)
        return ix->kernels->l2(a, b, ix->dim);
    return 1.0f - ix->kernels->dot(a, b, ix->dim);
}

/* storage.c */
hnswc_status storage_reserve(hnswc_index *ix, uint64_t capacity); /* meta_lock held */
void storage_free(hnswc_index *ix);
hnswc_status label_map_reserve(label_map *m, size_t n);
bool label_map_find(const label_map *m, uint64_t key, node_id *val);
hnswc_status label_map_put(label_map *m, uint64_t key, node_id val); /* key absent */
void label_map_remove(label_map *m, uint64_t key);
void label_map_free(label_map *m);
size_t label_map_bytes(const label_map *m);

/* index.c: helpers shared with persist.c and hnswlib_import.c */
hnswc_status index_new(const hnswc_options *opts, hnswc_index **out);
/* Allocates node `id`'s upper link lists for `level`; id < capacity. */
hnswc_status index_init_node(hnswc_index *ix, node_id id, uint64_t label, int level);
/* Checks and copies a stored link list (see index.c). */
hnswc_status index_set_links(hnswc_index *ix, _Atomic uint32_t *dst, uint32_t count,
                             const uint32_t *ids, uint32_t max, int level, const char *what);
/* After a loader has filled count nodes: builds the label map and the
 * deleted list, and checks labels are unique. */
hnswc_status index_finish_load(hnswc_index *ix);

/* graph.c */
int graph_random_level(hnswc_index *ix); /* meta_lock held */
/* Scratch for one search or insert, from the index's pool; NULL when out of
 * memory. Every acquire is paired with a release. */
search_ctx *graph_ctx_acquire(const hnswc_index *ix, size_t ef);
void graph_ctx_release(const hnswc_index *ix, search_ctx *sc);
/* Links a node whose record is written into the graph. update_lock read side
 * held (or write side, for a relink of an existing node). */
hnswc_status graph_insert(hnswc_index *ix, search_ctx *sc, node_id id, bool relink);
/* k nearest of q (already normalised for cosine); results closest first.
 * out needs room for k + 1 items (the exact fallback uses it as a heap). */
hnswc_status graph_search(const hnswc_index *ix, const float *q, size_t k, size_t ef,
                          hnswc_filter_fn filter, void *user, heap_item *out, size_t *n_out);
/* Exact k nearest by a full scan; out needs room for k + 1 items. */
size_t graph_search_exact(const hnswc_index *ix, const float *q, size_t k,
                          hnswc_filter_fn filter, void *user, heap_item *out);
void graph_pool_free(hnswc_index *ix);
size_t graph_pool_bytes(const hnswc_index *ix);

/* threads.c: runs fn(ctx, i) for i in [0, n) on up to num_threads threads
 * (0 = all cores), the calling thread included. fn returns HNSWC_OK or an
 * error; after the first error no new items start, and the first error's
 * status is returned with its message copied to the calling thread. */
typedef hnswc_status (*parallel_fn)(void *ctx, size_t i);
hnswc_status parallel_for(size_t n, unsigned num_threads, parallel_fn fn, void *ctx);
unsigned hnswc_cpu_count(void);

/* persist.c: CRC-32C, also used by the hnswlib importer's tests */
uint32_t hnswc_crc32c(uint32_t crc, const void *data, size_t len);

#endif /* HNSWC_INDEX_H */
