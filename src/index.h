/*
 * index.h -- the index record: struct hnswc_index, its lock order and the
 * entry-point word. Shared by every module that works on an index.
 *
 * Nothing here is public; include/hnswc.h is the contract with users, and
 * index.c (the public facade) is implemented against it. This header holds
 * only what every module needs to agree on; each module's functions are in
 * its own header (docs/ARCHITECTURE.md, "Modules"):
 *
 *   error.h      hnswc_fail, the per-thread message            (error.c)
 *   distance.h   SIMD kernels, hnswc_normalize                 (distance.c)
 *   heap.h       heaps of (distance, id)                       (header only)
 *   labelmap.h   label -> slot id hash map                     (labelmap.c)
 *   storage.h    node records, chunks, slots, loader helpers   (storage.c)
 *   graph.h      HNSW insert and search, scratch pool, stats   (graph.c)
 *   threads.h    parallel_for                                  (threads.c)
 *   remove.h     true removal, graph repair, slot reclamation  (remove.c)
 *   persist.h    CRC-32C of hnswc's file format                (persist.c)
 *   flat.h       the exact (flat) index, index_kind()          (flat.c)
 */
#ifndef HNSWC_INDEX_H
#define HNSWC_INDEX_H

#include "hnswc.h"
#include "labelmap.h"
#include "mapfile.h"
#include "quant.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* A slot: the internal id of an element, an index into the node records. */
typedef uint32_t node_id;
#define NODE_NONE UINT32_MAX /* == LABEL_MAP_EMPTY: never a slot */
#define HNSWC_MAX_ELEMENTS ((uint64_t)UINT32_MAX - 1)

/* The parameter ranges hnswc_create accepts; the loaders hold files to the
 * same ranges, so a file can hold nothing the API would refuse. */
#define HNSWC_MAX_DIM 65536u
#define HNSWC_MAX_M 2048u
#define HNSWC_MAX_EF ((uint32_t)1 << 31)

/* Record chunks (storage.h): chunk c holds 1 << (CHUNK0_BITS + c) records. */
#define CHUNK0_BITS 10u /* the first chunk holds 1024 records */
#define MAX_CHUNKS 23u  /* enough for every uint32 id */

/* The upper-list arena (storage.c, "Upper lists"): chunk c holds
 * 1 << (UPPER_CHUNK0_BITS + c) units of M + 2 words; 28 chunks cover every
 * uint32 unit number. */
#define UPPER_CHUNK0_BITS 4u
#define UPPER_MAX_CHUNKS 28u

#define LINK_LOCK_STRIPES 4096u

struct hnswc_kernels; /* distance.h */
struct search_ctx;    /* graph.c: pooled search scratch */

struct hnswc_index {
    /* HNSWC_KIND_HNSW. The first member of every index record: a flat
     * index (flat.h) starts with it too, and the facade reads it through
     * index_kind() before it treats a handle as either record. */
    hnswc_kind kind;

    /* --- parameters (constant after create/load) --- */
    uint32_t dim;
    hnswc_metric metric;
    uint32_t M;               /* links per node on layers >= 1 */
    uint32_t M0;              /* links per node on layer 0 = 2*M */
    uint32_t ef_construction;
    uint64_t seed;
    double level_mult;        /* 1 / ln(M) */
    const struct hnswc_kernels *kernels;
    size_t node_size;         /* bytes per record */
    size_t vector_offset;     /* offset of the vector (F32) or of the code
                                 row (SQ8) in a record                     */

    /* --- what the walk reads (storage.h: node_vector, node_codes) --- */
    hnswc_storage storage;
    /* Where the f32 vectors are: vec_tab is `chunks` (F32: inside the
     * records) or `vchunks` (SQ8, or a mapped index: an array apart, with
     * the same chunking), or NULL (SQ8_ONLY once trained: there are none;
     * storage_has_vectors). */
    char *const *vec_tab;
    size_t vec_stride, vec_offset;
    char *vchunks[MAX_CHUNKS];  /* written once each, under meta_lock */
    /* A mapped index (hnswc_open with HNSWC_OPEN_MMAP, storage.c "Mapped
     * vectors"): vchunks[0 .. map_chunks-1] point into `map`, the file's
     * vector section, and are not freed; later chunks are allocated. */
    mapfile map;
    unsigned map_chunks;
    uint64_t map_bytes;         /* the file's vectors read in place         */
    quant_sq8 quant;            /* SQ8: trained once, under update_lock's
                                   write side, before codes_ready is set   */
    const quant_kernels *qkernels;
    /* SQ8: every node's code row is written and the walk reads codes. Set
     * once (release) under the write side of update_lock. */
    _Atomic int codes_ready;
    _Atomic uint64_t codes_clipped;
    /* SQ8 with f32 vectors: 0 while every row's code decodes to its f32
     * vector bit for bit (quant_sq8_reproduces), so that the re-rank may
     * decode codes instead of reading the cold array (graph.c, rerank).
     * Sticky: set (release) when a row written with codes is not
     * reproduced, before that row can be linked; cleared only where every
     * row is checked again (storage_train_codes, a load). */
    _Atomic int codes_inexact;

    _Atomic uint32_t ef_search;

    /* --- storage (storage.c) --- */
    char *chunks[MAX_CHUNKS]; /* written once each, under meta_lock */
    _Atomic uint64_t capacity; /* records in allocated chunks */
    uint64_t huge_upto;        /* ids below it lie in memory advised for huge
                                  pages (storage.c, "Chunks"); meta_lock  */
    /* The upper-list arena (storage.c, "Upper lists"), under meta_lock or
     * the update lock's write side; chunk pointers written once each. */
    _Atomic uint32_t *upper_chunks[UPPER_MAX_CHUNKS];
    uint64_t upper_next;                 /* the first unit never handed out */
    uint32_t upper_free[HNSWC_MAX_LEVELS]; /* per level, freed blocks, linked
                                            through their first word; 0: none */
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
     * generator, the list of deleted slots and the DELETED flags. Held
     * briefly, never while searching. */
    pthread_mutex_t meta_lock;
    /* entry_lock: held for the whole insertion of a node that raises the top
     * level, so two such inserts do not race to replace the entry point. */
    pthread_mutex_t entry_lock;
    /* link_locks: striped locks over node ids; held while a node's link
     * lists are rewritten. At most one is held at a time. Readers take none:
     * links are read and written with atomics. */
    pthread_mutex_t link_locks[LINK_LOCK_STRIPES];
    /* pool_lock: the free list of search contexts. */
    pthread_mutex_t pool_lock;

    /* --- guarded by meta_lock --- */
    /* The element limit (hnswc_options.max_elements; 0: none). New slots are
     * taken only while count + reserved < max_elements, or from a batch's
     * own reservation; `reserved` is the room batches in flight counted and
     * hold for their new labels (index.c, "Adding"). */
    uint64_t max_elements;
    uint64_t reserved;
    label_map labels;
    uint64_t rng;             /* level generator state (graph.c) */
    node_id *deleted_ids;     /* candidates for slot reuse (may be stale) */
    size_t deleted_ids_len, deleted_ids_cap;

    /* --- guarded by pool_lock --- */
    struct search_ctx *pool;

    /* --- removal (remove.c; docs/ARCHITECTURE.md, "Removal") --- */
    /*
     * reclaim_lock: outermost of all, held by the one thread that reclaims
     * removed slots (remove_reclaim). It is taken with no other lock held.
     */
    pthread_mutex_t reclaim_lock;
    /* Removed elements whose slots are not free yet: a search must skip
     * them (they are flagged NODE_REMOVED and may still be linked to). */
    _Atomic uint64_t removed_pending;
    /* Slots freed by removal and not taken again (ids below count). */
    _Atomic uint64_t free_count;
    _Atomic uint64_t removed_total; /* removals since create/load */
    _Atomic uint64_t reused_total;  /* adds that took a freed slot */
    /* guarded by meta_lock: */
    node_id *limbo_ids;       /* removed, awaiting reclamation */
    size_t limbo_len, limbo_cap;
    node_id *free_ids;        /* free slots, taken by storage_new_slot */
    size_t free_len, free_cap;

    /* --- node order (layout.c; docs/ARCHITECTURE.md, "Node order") --- */
    /* HNSWC_RELAYOUT_AUTO: a batch add that leaves the index at least twice
     * as large as at its last relayout (and at least LAYOUT_AUTO_MIN slots)
     * relays it out. Not saved in files: an option of this process. */
    _Atomic int relayout_policy;
    /* Slots (count) when the order was last made: by a relayout, or by a
     * load (a file is taken as laid out as it was saved). Written under
     * the update lock's write side; read by batch adds without a lock. */
    _Atomic uint64_t layout_count;
    _Atomic uint64_t relayouts;     /* relayouts since create/load */

    /* --- in-degrees counted lazily (storage.c, "In-degrees") --- */
    /* Nonzero after a load: the in-degree words (indeg0, the upper blocks'
     * counts) are not counted yet. Only writers of links read them, and
     * every writer calls storage_ensure_indegrees (update lock held) before
     * it writes a link; the first one counts them all under indeg_lock and
     * clears this (release). A leaf lock: nothing is taken inside it. */
    _Atomic int indeg_stale;
    pthread_mutex_t indeg_lock;
};

#define ENTRY_EMPTY UINT64_MAX

/* The entry word: (top layer + 1) << 32 | id. */
static inline uint64_t entry_make(int level, node_id id) {
    return ((uint64_t)(uint32_t)(level + 1) << 32) | id;
}
static inline int entry_level(uint64_t e) { return (int)(e >> 32) - 1; }
static inline node_id entry_id(uint64_t e) { return (node_id)e; }

#endif /* HNSWC_INDEX_H */
