/*
 * storage.h -- node storage (storage.c): the record layout, the chunks that
 * hold the records, slot allocation and reuse, and the helpers the loaders
 * (persist.c, hnswlib_import.c) build an index with.
 *
 * Prefix: storage_ for functions, node_ for the record accessors below.
 * Depends on index.h (the index record), labelmap.h, error.h, distance.h.
 * Included by index.c, graph.c, persist.c and hnswlib_import.c.
 *
 * A node is one fixed-size record holding its header and layer-0 links,
 * and with SQ8 the code row the walk reads:
 *
 *   offset 0          node_head (label, upper lists, flags and level, indeg0)
 *   offsetof l0       uint32 count, then 2*M uint32 links        (atomic)
 *   vector_offset     SQ8: the code row (quant.h), 64-byte aligned;
 *                     F32: the end of the record (152 bytes for M 16)
 *
 * The f32 vectors live in an array apart (vchunks, chunked like the
 * records), rows of dim floats padded to 64 bytes (none for 784): with F32
 * the walk reads them there; with SQ8 only the exact re-rank, get_vector
 * and saving do, and a walk step touches header + links + codes only (784
 * bytes instead of 3,136 per Fashion-MNIST neighbour). SQ8_ONLY has the
 * array only until the quantiser is trained; then it is freed and the
 * record is everything (node_f32 decodes a row where a float vector is
 * needed). Why F32 keeps its vectors apart too (until 2026-12 they were in
 * the record, at offset 192): a record of header, links and a 64-byte
 * aligned vector is 3,328 bytes on Fashion-MNIST, 32 of them padding, and
 * without the padding (3,296, not a multiple of 64) every other vector
 * would start mid-line and span 50 lines instead of 49 -- 16-byte aligned
 * vectors cost 4-6% of search time (docs/ARCHITECTURE.md, "Huge pages for
 * the mapping"). Apart, both are dense and every row is aligned: 160 (now
 * 152, node_head below) + 3,136 bytes. Search speed: 0.96-1.00x main's at
 * equal ef in five one-process runs, against a spread of up to 2% between
 * two copies of one package: maybe 1-2% slower, not shown either way
 * (docs/BENCHMARKS.md, "Index memory"). A mapped index has always had
 * this layout.
 *
 * Records live in chunks that are allocated and never moved or freed while
 * the index lives: chunk c holds CHUNK0 << c records, so 23 chunks cover
 * every uint32 id and the chunk table is a fixed array that is never
 * reallocated. That is what lets readers hold node pointers while the index
 * grows (a single realloc'd array, as in hnswlib, would move them).
 */
#ifndef HNSWC_STORAGE_H
#define HNSWC_STORAGE_H

#include "index.h"

#include <stdbool.h>

/* node_head.flags bits */
#define NODE_READY 1u   /* vector and header written: visible to scans */
#define NODE_DELETED 2u /* tombstone: walked through, never returned    */
#define NODE_COMPACT_MARK 4u /* transient, under meta_lock: see storage_push_deleted */
/* Removed for good (remove.c): with NODE_READY, the element is gone but its
 * slot not reclaimed yet -- walked through by searches that still reach it,
 * never returned, never linked to again; without NODE_READY, the slot is
 * free and waits in the free list for an add. */
#define NODE_REMOVED 8u
/* Flags that keep a node out of search results. */
#define NODE_HIDDEN (NODE_DELETED | NODE_REMOVED)

/* The flags word also holds the node's top layer, in bits 16..23 (levels
 * are below HNSWC_MAX_LEVELS = 64): written with the flags by
 * storage_init_node and storage_free_slot, and kept by every other writer,
 * which only ever sets or clears flag bits (fetch_or / fetch_and). */
#define NODE_LEVEL_SHIFT 16u

/*
 * 20 bytes, then the layer-0 list: 152 bytes for M 16. The header was 28
 * (an 8-byte pointer to the upper lists and a 4-byte level of its own);
 * the level now shares the flags word and the upper lists are a 4-byte
 * index into an arena (storage.c, "Upper lists"). Both are needed for the
 * 8 bytes: the record must stay a multiple of 8 for the label, so one
 * alone saved nothing. (Rejected: the in-degree in the flags word as
 * well -- a 28-bit counter that a hub could overflow, and every layer's
 * in-degree is reached through one pointer type, node_indeg.)
 */
typedef struct node_head {
    uint64_t label;            /* written before the node is published, or
                                  under the update lock's write side; with
                                  meta_lock held either way (the label map
                                  reads it, labelmap.h)                    */
    uint32_t upper;            /* the node's block in the upper-list arena
                                  (node_upper), or 0 when its level is 0  */
    _Atomic uint32_t flags;    /* NODE_READY | NODE_DELETED | NODE_REMOVED,
                                  and the level (NODE_LEVEL_SHIFT)         */
    _Atomic uint32_t indeg0;   /* layer-0 links pointing here: pruning never
                                  takes a node's last one (graph.c), and a
                                  removed slot is freed only at 0 on every
                                  layer (remove.c)                         */
    _Atomic uint32_t l0[];     /* count, then 2*M links                    */
} node_head;

/* The top layer of node n. Relaxed: written before the node is published
 * (or with the write side held), like the level field it replaces. */
static inline int node_level(const node_head *n) {
    return (int)(atomic_load_explicit(&((node_head *)n)->flags, memory_order_relaxed) >>
                 NODE_LEVEL_SHIFT);
}

/* ========================================================================
 * Record accessors (lock-free: chunks never move)
 * ======================================================================== */

static inline node_head *node_at(const hnswc_index *ix, node_id id) {
    /* chunk c holds ids [CHUNK0*(2^c - 1), CHUNK0*(2^(c+1) - 1)) */
    uint64_t v = (uint64_t)id + (1u << CHUNK0_BITS);
    unsigned hb = 63u - (unsigned)__builtin_clzll(v);
    unsigned c = hb - CHUNK0_BITS;
    uint64_t off = v - ((uint64_t)1 << hb);
    return (node_head *)(ix->chunks[c] + off * ix->node_size);
}

/* The f32 vector of node `id`, in the record (F32) or the cold array (SQ8). */
static inline float *node_vector(const hnswc_index *ix, node_id id) {
    uint64_t v = (uint64_t)id + (1u << CHUNK0_BITS);
    unsigned hb = 63u - (unsigned)__builtin_clzll(v);
    uint64_t off = v - ((uint64_t)1 << hb);
    return (float *)(ix->vec_tab[hb - CHUNK0_BITS] + off * ix->vec_stride + ix->vec_offset);
}

/* The code row of a node (SQ8 only). */
static inline uint8_t *node_codes(const hnswc_index *ix, const node_head *n) {
    return (uint8_t *)n + ix->vector_offset;
}

/* Whether the index keeps f32 vectors: always, but for SQ8_ONLY once
 * trained (storage_train_codes freed them; vec_tab is then NULL and
 * node_vector must not be called). Changes only under the update lock's
 * write side, so it is stable for whoever holds either side. */
static inline bool storage_has_vectors(const hnswc_index *ix) {
    return ix->vec_tab != NULL;
}

/* The f32 vector of node id: node_vector where there is one, else (code
 * only) its row decoded into buf (dim floats), which is returned. */
static inline const float *node_f32(const hnswc_index *ix, node_id id, float *buf) {
    if (storage_has_vectors(ix))
        return node_vector(ix, id);
    quant_sq8_decode(&ix->quant, node_codes(ix, node_at(ix, id)), buf);
    return buf;
}

/* The upper lists of node n (level > 0): level * (1 + M) words -- count,
 * M links per layer 1..level -- then level words: the in-degree on layers
 * 1..level. Block u of the arena is units u .. u+level-1 of M + 2 words,
 * unit u in arena chunk c at offset off (the records' numbering, with
 * UPPER_CHUNK0_BITS). Chunks never move: lock-free like node_at. */
static inline _Atomic uint32_t *storage_upper_block(const hnswc_index *ix, uint32_t u) {
    uint64_t v = (uint64_t)u + (1u << UPPER_CHUNK0_BITS);
    unsigned hb = 63u - (unsigned)__builtin_clzll(v);
    uint64_t off = v - ((uint64_t)1 << hb);
    return ix->upper_chunks[hb - UPPER_CHUNK0_BITS] + off * (ix->M + 2);
}

static inline _Atomic uint32_t *node_upper(const hnswc_index *ix, const node_head *n) {
    return storage_upper_block(ix, n->upper);
}

/* The list on `level` >= 1 in a node's upper block (node_upper). */
static inline _Atomic uint32_t *upper_links(const hnswc_index *ix, _Atomic uint32_t *upper,
                                            int level) {
    return upper + (size_t)(level - 1) * (ix->M + 1);
}

/* Link list of node n on layer `level` (<= its level): word 0 is the count. */
static inline _Atomic uint32_t *node_links(const hnswc_index *ix, node_head *n, int level) {
    return level == 0 ? n->l0 : upper_links(ix, node_upper(ix, n), level);
}

/* The number of lists on `level` that hold a link to n (level <= its
 * level). Kept by every writer of a list, under that list's link lock
 * (graph.c); exact whenever no writer is running. */
static inline _Atomic uint32_t *node_indeg(const hnswc_index *ix, node_head *n, int level) {
    return level == 0 ? &n->indeg0
                      : node_upper(ix, n) + (size_t)node_level(n) * (ix->M + 1) +
                            (size_t)(level - 1);
}

/* The number of links in a list, never more than the list has room for
 * (a reader may race with a rewrite; a loaded file is checked anyway). */
static inline uint32_t node_links_count(const hnswc_index *ix, _Atomic uint32_t *links, int level) {
    uint32_t n = atomic_load_explicit(&links[0], memory_order_acquire);
    uint32_t max = level == 0 ? ix->M0 : ix->M;
    return n <= max ? n : max;
}

/* A node that is an element of the index (live or tombstoned): written
 * (READY) and not removed. Free slots, removed elements awaiting
 * reclamation and slots still being written are not. */
static inline bool node_is_element(uint32_t flags) {
    return (flags & (NODE_READY | NODE_REMOVED)) == NODE_READY;
}

/* A search must check flags (tombstones or removed nodes may be reached). */
static inline bool storage_has_hidden(const hnswc_index *ix) {
    return atomic_load_explicit(&ix->deleted_count, memory_order_acquire) +
               atomic_load_explicit(&ix->removed_pending, memory_order_acquire) > 0;
}

/* Slots in use by the graph: every id below count except the free ones. */
static inline uint64_t storage_graph_slots(const hnswc_index *ix) {
    return atomic_load_explicit(&ix->count, memory_order_acquire) -
           atomic_load_explicit(&ix->free_count, memory_order_acquire);
}

/* ========================================================================
 * Lifetime of an index record
 * ======================================================================== */

/* Allocates an index for validated options (zero fields take the defaults),
 * with its locks, its first chunks and label map room. Used by hnswc_create
 * and the loaders. Nothing is left allocated on failure. */
hnswc_status storage_create(const hnswc_options *opts, hnswc_index **out);

/*
 * As storage_create, for an index whose f32 vectors stay in a mapped file:
 * the vectors of the ids of chunks 0 .. chunks-1 are at `vecs` (inside
 * *map, dim floats each, `stride` bytes apart from id 0 -- the file's row:
 * dim * 4, or that rounded up to 64 in format version 4 -- and room for
 * every id of those chunks). The index takes *map over (zeroing it), also when
 * this fails; storage_destroy unmaps it. The records then hold no vector
 * (F32) or only the code row (SQ8).
 */
hnswc_status storage_create_mapped(const hnswc_options *opts, mapfile *map, char *vecs,
                                   size_t stride, unsigned chunks, hnswc_index **out);

/* The number of ids in chunks 0 .. c: the first id of chunk c + 1. */
static inline uint64_t storage_chunk_end(unsigned c) {
    return ((uint64_t)2 << (CHUNK0_BITS + c)) - ((uint64_t)1 << CHUNK0_BITS);
}

/* Frees the records, the label map, the deleted list, the locks, the
 * mapping (if any) and ix.
 * The graph's scratch pool must be freed first (graph_pool_free), or never
 * used (a loader's index). No other thread may use ix. */
void storage_destroy(hnswc_index *ix);

/* Allocates chunks until at least `capacity` records fit; chunks already
 * allocated never move. meta_lock held (or ix not shared yet). */
hnswc_status storage_reserve(hnswc_index *ix, uint64_t capacity);

/* ========================================================================
 * Slots (meta_lock held)
 * ======================================================================== */

/* Gives node `id` (< capacity) its header and upper link lists for `level`;
 * flags 0 (not READY). The caller publishes it. */
hnswc_status storage_init_node(hnswc_index *ix, node_id id, uint64_t label, int level);

/* Takes a slot for `label` (not in the label map) on layer `level`: a free
 * slot left by a removal if there is one (remove.c guarantees nobody can
 * still reach it), else a fresh one, publishing the new count. Enters the
 * label; the node is not READY. Nothing changes if it fails. */
hnswc_status storage_new_slot(hnswc_index *ix, uint64_t label, int level, node_id *id);

/* Pops a slot still marked deleted from the reuse list, if any. */
bool storage_pop_deleted(hnswc_index *ix, node_id *id);

/* Appends a slot to the reuse list (before it is marked DELETED). */
hnswc_status storage_push_deleted(hnswc_index *ix, node_id id);

/* Makes room in the free list for `more` slots (so that freeing cannot
 * fail later). */
hnswc_status storage_reserve_free(hnswc_index *ix, size_t more);

/* Frees slot `id` of a removed element that nothing links to any more and
 * no thread can still reach (remove.c's reclamation, update lock's write
 * side held): its upper links are released, its flags become NODE_REMOVED
 * alone (not READY) and it joins the free list (room reserved). */
void storage_free_slot(hnswc_index *ix, node_id id);


/* Copies vector v into node id's record, normalised for cosine, and writes
 * its code row when codes are in use. The node is not READY yet, or the
 * update lock's write side is held. */
void storage_write_vector(hnswc_index *ix, node_id id, const float *v);
/* Sets codes_inexact (index.h) if row id's code does not reproduce its f32
 * vector; nothing without f32 vectors. See storage.c. */
void storage_note_codes(hnswc_index *ix, node_id id);

/* Writes the code row of every slot below count from its f32 vector with
 * the trained quantiser, and recomputes codes_inexact over the elements'
 * rows (free slots do not count), in the same pass. Training and loading
 * use it: the update lock's write side held, or the index not shared yet. */
void storage_encode_rows(hnswc_index *ix, uint64_t count);

/* SQ8: trains the quantiser on every stored vector and the n rows of
 * `extra` (not yet stored, unnormalised), writes every stored node's code
 * row and sets codes_ready; SQ8_ONLY then frees the f32 vectors
 * (storage_drop_vectors). Update lock's write side held. Out of memory
 * (normalising an extra row for cosine) leaves codes off. */
hnswc_status storage_train_codes(hnswc_index *ix, const float *extra, size_t n);

/* SQ8_ONLY: frees the f32 vectors (the cold array) for good; from now on
 * the code rows are all there is (storage_has_vectors is false). Update
 * lock's write side held, or ix not shared yet (a loader). */
void storage_drop_vectors(hnswc_index *ix);

/* ========================================================================
 * Loader helpers (ix not shared yet)
 * ======================================================================== */

/* Checks a stored link list of `count` ids (at most `max`) on `level` --
 * each must name an existing node that lives on that layer (its level from
 * `levels`, a byte a node, or from the records when NULL) -- and copies it
 * into dst, zero-filling the rest. `what` names the file in messages. */
hnswc_status storage_set_links(hnswc_index *ix, _Atomic uint32_t *dst, uint32_t count,
                               const uint32_t *ids, uint32_t max, int level, const uint8_t *levels,
                               const char *what);

/* The same checks and copies for every node's layer-0 list at once, from
 * a whole LNK0 payload in memory (count records of 1 + M0 words). */
hnswc_status storage_load_links0(hnswc_index *ix, const uint32_t *words, const char *what);

/* Builds the label map of nodes 0 .. count-1 from labels[i], node i's, in
 * an empty map; two equal labels make the file invalid (HNSWC_ERR_FORMAT). */
hnswc_status storage_load_labels(hnswc_index *ix, const uint64_t *labels, const char *what);

/* After a loader has filled count nodes: marks the in-degrees for counting
 * at the first write (storage_ensure_indegrees) and, unless `labels_done`
 * (the loader called storage_load_labels and listed deleted slots itself),
 * builds the label map and the deleted list from the records, checking
 * labels are unique. */
hnswc_status storage_finish_load(hnswc_index *ix, bool labels_done, const char *what);

/* ========================================================================
 * In-degrees (storage.c, "In-degrees")
 * ======================================================================== */

/* Counts the in-degrees of a loaded index if they are not counted yet.
 * Every operation that writes links calls it, with the update lock held
 * (either side), before its first link write; the first caller counts
 * (O(links), under indeg_lock), the others wait for it, later calls cost
 * an atomic load. HNSWC_ERR_NOMEM if the count could not be made: nothing
 * changed, and the caller fails without writing. */
hnswc_status storage_ensure_indegrees(hnswc_index *ix);

#endif /* HNSWC_STORAGE_H */
