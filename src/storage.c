/*
 * storage.c -- node records in chunks that never move, the lifetime of an
 * index record, slot allocation and reuse, and the loaders' helpers
 * (storage.h has the record layout and each function's contract).
 *
 * Locking: every function that changes shared state is called with
 * hnswc_index.meta_lock held, or on an index no other thread can see yet
 * (while creating or loading).
 */
/* madvise and MADV_HUGEPAGE are not POSIX: glibc declares them under _DEFAULT_SOURCE */
#define _DEFAULT_SOURCE 1
#include "storage.h"

#include "distance.h"
#include "error.h"
#include "threads.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define DEFAULT_M 16u
#define DEFAULT_EF_CONSTRUCTION 200u
#define DEFAULT_EF_SEARCH 10u
#define DEFAULT_SEED 100u
#define DEFAULT_CAPACITY 1024u

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* ========================================================================
 * Lifetime
 * ======================================================================== */

/*
 * Mapped vectors. hnswc_open(HNSWC_OPEN_MMAP) keeps the file's VECS section
 * where it is, in a private mapping, instead of copying it into records:
 * the records hold header and links (and SQ8's code row), and vec_tab is
 * vchunks, whose first map_chunks entries point into the mapping at the
 * vector of each chunk's first id, at the file's stride: in format version
 * 4 rows of dim * 4 bytes rounded up to 64, starting at a file offset that
 * is a multiple of 64 (the mapping starts on a 2 MiB boundary), so vectors
 * are as aligned as a loaded index's; in versions 1 to 3 dim * 4 with no
 * padding, 4-byte aligned (the kernels load unaligned either way). The
 * mapping reserves room for every id of the last mapped chunk (mapfile.h:
 * the bytes after VECS in the file are copies nobody reads any more, then
 * anonymous memory), so the vector of a new element in that chunk is
 * written in place like any other, and the mapping never moves. Writes to
 * the file's pages copy them (MAP_PRIVATE): updates and adds behave exactly
 * as in a loaded index, and the file is never changed. Later chunks are
 * allocated as usual.
 *
 * Rejected: one record layout with the file's vectors copied into records
 * (that is hnswc_load), and a file format whose vector section is the
 * record array itself (records hold pointers and derived counts that would
 * have to be rewritten -- every page copied -- at open).
 */
static hnswc_status create(const hnswc_options *o, mapfile *map, char *vecs, size_t stride,
                           unsigned map_chunks, hnswc_index **out);

hnswc_status storage_create(const hnswc_options *o, hnswc_index **out) {
    return create(o, NULL, NULL, 0, 0, out);
}

hnswc_status storage_create_mapped(const hnswc_options *o, mapfile *map, char *vecs,
                                   size_t stride, unsigned chunks, hnswc_index **out) {
    return create(o, map, vecs, stride, chunks, out);
}

/* The label map's key of an entry: node id's label (labelmap.h, owned
 * maps). Every writer of a label holds meta_lock, which guards the map. */
static uint64_t label_of_node(const void *ix, uint32_t id) {
    return node_at((const hnswc_index *)ix, id)->label;
}

/* Allocates an index for validated options. Used by create and the loaders. */
static hnswc_status create(const hnswc_options *o, mapfile *map, char *vecs, size_t stride,
                           unsigned map_chunks, hnswc_index **out) {
    hnswc_index *ix = calloc(1, sizeof *ix);
    if (!ix) {
        if (map)
            mapfile_unmap(map);
        return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory allocating an index");
    }
    ix->dim = o->dim;
    ix->metric = o->metric;
    ix->M = o->M ? o->M : DEFAULT_M;
    ix->M0 = 2 * ix->M;
    ix->ef_construction = o->ef_construction ? o->ef_construction : DEFAULT_EF_CONSTRUCTION;
    atomic_init(&ix->ef_search, o->ef_search ? o->ef_search : DEFAULT_EF_SEARCH);
    ix->seed = o->seed ? o->seed : DEFAULT_SEED;
    ix->max_elements = o->max_elements;
    ix->rng = ix->seed;
    ix->level_mult = 1.0 / log((double)ix->M);
    ix->kernels = hnswc_kernels_get();
    ix->storage = o->storage;
    /* the f32 vectors live apart in every mode ("Records and vectors" above) */
    ix->vec_tab = ix->vchunks;
    ix->vec_stride = round_up((size_t)ix->dim * sizeof(float), 64);
    ix->vec_offset = 0;
    if (ix->storage != HNSWC_STORAGE_F32) { /* SQ8, SQ8_ONLY (until trained: alike) */
        ix->vector_offset = round_up(sizeof(node_head) + (1 + (size_t)ix->M0) * sizeof(uint32_t), 64);
        if (!quant_sq8_init(&ix->quant, ix->dim, ix->metric != HNSWC_METRIC_L2)) {
            free(ix);
            if (map)
                mapfile_unmap(map);
            return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory allocating a quantiser");
        }
        ix->qkernels = quant_kernels_get();
        ix->node_size = ix->vector_offset + round_up(quant_sq8_row_bytes(&ix->quant), 64);
    } else {
        /* header and links only, 8-byte aligned for the label and pointer:
         * 152 bytes for M 16 (node_size = vector_offset: no row follows) */
        ix->vector_offset = round_up(offsetof(node_head, l0) + (1 + (size_t)ix->M0) * sizeof(uint32_t),
                                     _Alignof(node_head));
        ix->node_size = ix->vector_offset;
    }
    if (map) { /* "Mapped vectors" above */
        ix->vec_stride = stride; /* the file's: dim * 4, or rounded up to 64 (version 4) */
        ix->map = *map;
        memset(map, 0, sizeof *map);
        ix->map_chunks = map_chunks;
        for (unsigned c = 0; c < map_chunks; c++)
            ix->vchunks[c] = vecs + (c ? storage_chunk_end(c - 1) : 0) * ix->vec_stride;
    }
    atomic_init(&ix->entry, ENTRY_EMPTY);
    atomic_init(&ix->memory_bytes, sizeof *ix);
    atomic_init(&ix->relayout_policy, (int)o->relayout);

    ix->kind = HNSWC_KIND_HNSW;
    /* writers preferred: a steady stream of searches must not starve an
     * in-place update */
    parallel_rwlock_init(&ix->update_lock);
    pthread_mutex_init(&ix->meta_lock, NULL);
    pthread_mutex_init(&ix->entry_lock, NULL);
    pthread_mutex_init(&ix->pool_lock, NULL);
    pthread_mutex_init(&ix->reclaim_lock, NULL);
    pthread_mutex_init(&ix->indeg_lock, NULL);
    for (unsigned i = 0; i < LINK_LOCK_STRIPES; i++)
        pthread_mutex_init(&ix->link_locks[i], NULL);

    /* the labels are in the records: the map keeps only ids (labelmap.h) */
    label_map_init_owned(&ix->labels, label_of_node, ix);
    uint64_t cap = o->capacity ? o->capacity : DEFAULT_CAPACITY;
    hnswc_status st = storage_reserve(ix, cap);
    if (st == HNSWC_OK)
        st = label_map_reserve(&ix->labels, cap < ((size_t)1 << 20) ? (size_t)cap : (size_t)1 << 20);
    if (st != HNSWC_OK) {
        storage_destroy(ix); /* no search scratch exists yet */
        return st;
    }
    *out = ix;
    return HNSWC_OK;
}

void storage_destroy(hnswc_index *ix) {
    if (!ix)
        return;
    for (unsigned c = 0; c < UPPER_MAX_CHUNKS; c++)
        free((void *)ix->upper_chunks[c]);
    for (unsigned c = 0; c < MAX_CHUNKS; c++) {
        free(ix->chunks[c]);
        if (c >= ix->map_chunks)
            free(ix->vchunks[c]);
        ix->chunks[c] = ix->vchunks[c] = NULL;
    }
    mapfile_unmap(&ix->map);
    quant_sq8_free(&ix->quant);
    free(ix->deleted_ids);
    free(ix->limbo_ids);
    free(ix->free_ids);
    label_map_free(&ix->labels);
    pthread_rwlock_destroy(&ix->update_lock);
    pthread_mutex_destroy(&ix->meta_lock);
    pthread_mutex_destroy(&ix->entry_lock);
    pthread_mutex_destroy(&ix->pool_lock);
    pthread_mutex_destroy(&ix->reclaim_lock);
    pthread_mutex_destroy(&ix->indeg_lock);
    for (unsigned i = 0; i < LINK_LOCK_STRIPES; i++)
        pthread_mutex_destroy(&ix->link_locks[i]);
    free(ix);
}

/* ========================================================================
 * Chunks
 * ======================================================================== */

static uint64_t chunk_len(unsigned c) { return (uint64_t)1 << (CHUNK0_BITS + c); }

/*
 * Asks for transparent huge pages on the records of a large chunk: a walk
 * jumps between random records, and with 4 KiB pages nearly every step is
 * also a TLB miss. Best effort (madvise may fail or THP may be off); only the
 * 2 MiB-aligned middle of the block can be backed by huge pages.
 */
static void advise_huge_pages(void *p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (e > a)
        (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

/*
 * Huge pages and the last chunk. Chunks double, so the last one is mostly
 * reserved room: 4,512 of its 32,768 ids are unused at Fashion-MNIST's
 * 60,000. Room never touched is not resident, but in a range advised for
 * huge pages the first touch of a 2 MiB page faults all of it in, so the
 * page where the elements end cost up to 2 MiB of nothing -- per array (the
 * records and the vectors), 0 to 70 bytes per Fashion-MNIST element, varying
 * with where the allocator placed the chunk. So a chunk is advised only as
 * far as the capacity asked for covers it (rounded down to 2 MiB: an index
 * loaded or built to its capacity has no huge page partly used at its end;
 * that page is faulted 4 KiB at a time), and the rest of the chunk when an
 * add first takes an id beyond (storage_new_slot: the index is growing
 * past what was asked for, and huge pages pay again). huge_upto records how
 * far the advice goes. (Rejected: no advice on the last chunk -- a walk
 * through it would miss the TLB as a mapped index with small pages does,
 * 1.2x slower in docs/BENCHMARKS.md's measurement.)
 */
static void advise_chunk(hnswc_index *ix, unsigned c, uint64_t records) {
    advise_huge_pages(ix->chunks[c], (size_t)records * ix->node_size);
    /* the vectors apart, unless mapped (mapfile.c advises the mapping) */
    if (ix->vec_tab == ix->vchunks && c >= ix->map_chunks)
        advise_huge_pages(ix->vchunks[c], (size_t)records * ix->vec_stride);
    ix->huge_upto = (c ? storage_chunk_end(c - 1) : 0) + records;
}

/*
 * A chunk's memory (records or vectors), freed with free(). 64-byte aligned
 * (an SQ8 record is a multiple of 64 bytes, so every code row starts on a
 * cache line, which the SIMD loads like; so is a row of the vector array,
 * vec_stride), and a chunk of 2 MiB or more starts on a 2 MiB boundary: only
 * whole, aligned 2 MiB pages can be huge (advise_huge_pages), and a chunk at
 * malloc's usual 16 bytes past a page had its first and last 2 MiB in small
 * pages -- half of a 4 MiB chunk, an eighth of a 16 MiB one. The size is
 * rounded up to the alignment, as aligned_alloc asks; the rounding is address
 * space, never touched. Measured on Fashion-MNIST with SQ8 against 64-byte
 * alignment (bench/ab.py, one process, four runs; docs/BENCHMARKS.md
 * round 6): at equal ef 1.00-1.03x with one query thread and 0.98-1.01x
 * with two where this build's index was built first, 1.00-1.04x and
 * 1.01-1.07x where the other's was (the index built first tends to be the
 * slower) -- about +1%, never a loss beyond the noise; the resident size
 * after a load did not change (bench/memory.py).
 */
static void *chunk_alloc(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    if (bytes > SIZE_MAX - huge) /* the rounding below must not wrap */
        return NULL;
    if (bytes < huge)
        return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    return aligned_alloc(huge, (bytes + huge - 1) & ~(huge - 1));
}

/*
 * Allocates chunks until at least `capacity` records fit. Chunks already
 * allocated are never touched, so pointers into them stay valid. On failure
 * the chunks allocated so far are kept (they are valid, only unused).
 */
hnswc_status storage_reserve(hnswc_index *ix, uint64_t capacity) {
    if (capacity > HNSWC_MAX_ELEMENTS + 1)
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "capacity %llu is above the maximum of %llu elements",
                          (unsigned long long)capacity, (unsigned long long)HNSWC_MAX_ELEMENTS);
    uint64_t have = atomic_load(&ix->capacity);
    for (unsigned c = 0; have < capacity && c < MAX_CHUNKS; c++) {
        if (ix->chunks[c])
            continue;
        uint64_t n = chunk_len(c);
        if (n > SIZE_MAX / ix->node_size)
            return hnswc_fail(HNSWC_ERR_OVERFLOW, "chunk of %llu records overflows size_t",
                              (unsigned long long)n);
        size_t bytes = (size_t)n * ix->node_size; /* chunk_alloc: alignment */
        char *p = chunk_alloc(bytes);
        if (!p)
            return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory allocating %zu bytes of node storage",
                              bytes);
        size_t vbytes = 0;
        /* the vectors apart (every mode's, but code only's once trained
         * and a mapped index's mapped chunks), chunked alike */
        if (ix->vec_tab == ix->vchunks && !ix->vchunks[c]) {
            vbytes = (size_t)n * ix->vec_stride;
            char *vp = n > SIZE_MAX / ix->vec_stride ? NULL : chunk_alloc(vbytes);
            if (!vp) {
                free(p);
                return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory allocating %zu bytes of vector "
                                  "storage", vbytes);
            }
            ix->vchunks[c] = vp;
        }
        ix->chunks[c] = p;
        /* as far as `capacity` reaches ("Huge pages and the last chunk") */
        if (c > 0 && ix->huge_upto < have) /* the chunk before, if advised in part */
            advise_chunk(ix, c - 1, chunk_len(c - 1));
        advise_chunk(ix, c, capacity - have < n ? capacity - have : n);
        have += n;
        atomic_store(&ix->capacity, have);
        atomic_fetch_add(&ix->memory_bytes, bytes + vbytes);
    }
    return HNSWC_OK;
}

/* ========================================================================
 * Upper lists (meta_lock held, or the update lock's write side)
 * ======================================================================== */

/*
 * A node above layer 0 (1 in M) has level * (M + 2) words of upper lists
 * and in-degrees (storage.h, node_upper). They were a calloc'd block each,
 * reached through an 8-byte pointer in the record; they are blocks of an
 * arena now, reached through a 4-byte unit number, which (with the level
 * moved into the flags word) takes the record from 160 to 152 bytes for
 * M 16 and saves malloc's header per block. The arena is chunked like the
 * records (chunk c: 16 << c units of M + 2 words, allocated when first
 * needed, never moved or freed while the index lives), so readers follow a
 * unit number without a lock. A block never straddles two chunks (the end
 * of a chunk too short for the next block stays unused, at most 62 units
 * once per chunk), and unit 0 is never handed out: it means "none". A
 * freed block (storage_free_slot) goes on the free list of its level,
 * linked through its first word, for the next node of that level.
 * (Rejected: blocks split and merged across levels -- a node above layer 1
 * is 1 in M^2, and exact-size reuse keeps a remove-and-add cycle flat.)
 */
static hnswc_status upper_alloc(hnswc_index *ix, int level, uint32_t *out) {
    const size_t unit_bytes = ((size_t)ix->M + 2) * sizeof(uint32_t);
    uint32_t u = ix->upper_free[level];
    if (u) {
        _Atomic uint32_t *b = storage_upper_block(ix, u);
        ix->upper_free[level] = atomic_load_explicit(&b[0], memory_order_relaxed);
        memset((void *)b, 0, (size_t)level * unit_bytes);
        *out = u;
        return HNSWC_OK;
    }
    uint64_t next = ix->upper_next ? ix->upper_next : 1, end;
    unsigned c;
    for (;;) { /* the chunk of unit `next`, and the first unit after it */
        unsigned hb = 63u - (unsigned)__builtin_clzll(next + (1u << UPPER_CHUNK0_BITS));
        c = hb - UPPER_CHUNK0_BITS;
        end = ((uint64_t)2 << hb) - (1u << UPPER_CHUNK0_BITS);
        if (next + (uint64_t)level <= end)
            break;
        next = end;
    }
    if (c >= UPPER_MAX_CHUNKS)
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "the upper layers' links outgrow 2^32 blocks");
    if (!ix->upper_chunks[c]) {
        uint64_t units = (uint64_t)1 << (UPPER_CHUNK0_BITS + c);
        void *p = units > SIZE_MAX / unit_bytes ? NULL : malloc((size_t)units * unit_bytes);
        if (!p)
            return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory allocating links of level %d", level);
        ix->upper_chunks[c] = p;
        atomic_fetch_add(&ix->memory_bytes, (size_t)units * unit_bytes);
    }
    *out = (uint32_t)next;
    memset((void *)storage_upper_block(ix, *out), 0, (size_t)level * unit_bytes);
    ix->upper_next = next + (uint64_t)level;
    return HNSWC_OK;
}

static void upper_release(hnswc_index *ix, uint32_t u, int level) {
    atomic_store_explicit(&storage_upper_block(ix, u)[0], ix->upper_free[level],
                          memory_order_relaxed);
    ix->upper_free[level] = u;
}

/* ========================================================================
 * Slots (meta_lock held)
 * ======================================================================== */

/*
 * Gives node `id` its header and upper link lists. For a fresh slot and for
 * loaders; the caller publishes it afterwards.
 */
hnswc_status storage_init_node(hnswc_index *ix, node_id id, uint64_t label, int level) {
    if (level < 0 || level >= HNSWC_MAX_LEVELS) /* callers check; the flags word needs it */
        return hnswc_fail(HNSWC_ERR_INVALID, "level %d out of range", level);
    uint32_t upper = 0;
    hnswc_status st;
    if (level > 0 && (st = upper_alloc(ix, level, &upper)) != HNSWC_OK)
        return st;
    node_head *n = node_at(ix, id);
    n->label = label;
    n->upper = upper;
    atomic_store_explicit(&n->flags, (uint32_t)level << NODE_LEVEL_SHIFT, memory_order_relaxed);
    atomic_store_explicit(&n->indeg0, 0, memory_order_relaxed);
    atomic_store_explicit(&n->l0[0], 0, memory_order_relaxed);
    return HNSWC_OK;
}

/*
 * Takes a slot for `label` (which is not in the map): a free slot if any,
 * else a fresh one whose id it publishes in the count. Nothing changes if it
 * fails. Caller holds meta_lock. The level comes from the caller
 * (graph_random_level): drawing it here would make storage depend on the
 * graph module.
 *
 * A free slot is taken under the update lock's read side, like a fresh one,
 * with searches running: remove.c frees a slot only when no link leads to it
 * and no operation that could have seen one is still running, so nobody but
 * this add can reach the id until it is linked again.
 */
hnswc_status storage_new_slot(hnswc_index *ix, uint64_t label, int level, node_id *id_out) {
    hnswc_status st;
    if (ix->free_len > 0) {
        node_id id = ix->free_ids[ix->free_len - 1];
        if ((st = label_map_reserve(&ix->labels, ix->labels.len + 1)) != HNSWC_OK ||
            (st = storage_init_node(ix, id, label, level)) != HNSWC_OK)
            return st;
        label_map_put(&ix->labels, label, id); /* room reserved: cannot fail */
        ix->free_len--;
        atomic_fetch_sub(&ix->free_count, 1);
        atomic_fetch_add(&ix->reused_total, 1);
        *id_out = id;
        return HNSWC_OK;
    }
    uint64_t n = atomic_load(&ix->count);
    if (n >= HNSWC_MAX_ELEMENTS)
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "hnswc_add: the index holds the maximum of %llu elements",
                          (unsigned long long)HNSWC_MAX_ELEMENTS);
    st = HNSWC_OK;
    if (n >= atomic_load(&ix->capacity) && (st = storage_reserve(ix, n + 1)) != HNSWC_OK)
        return st;
    if (n >= ix->huge_upto) { /* growing past the capacity asked for: the whole chunk */
        unsigned c = 63u - (unsigned)__builtin_clzll(n + (1u << CHUNK0_BITS)) - CHUNK0_BITS;
        advise_chunk(ix, c, chunk_len(c));
    }
    if ((st = label_map_reserve(&ix->labels, ix->labels.len + 1)) != HNSWC_OK)
        return st;
    if ((st = storage_init_node(ix, (node_id)n, label, level)) != HNSWC_OK)
        return st;
    label_map_put(&ix->labels, label, (node_id)n); /* room reserved: cannot fail */
    /* publish last: a scan that sees the new count finds flags == 0 (not
     * ready) until the vector is written */
    atomic_store_explicit(&ix->count, n + 1, memory_order_release);
    *id_out = (node_id)n;
    return HNSWC_OK;
}

/* Pops a slot still marked deleted from the reuse list, if any. meta_lock. */
bool storage_pop_deleted(hnswc_index *ix, node_id *id) {
    while (ix->deleted_ids_len > 0) {
        node_id cand = ix->deleted_ids[--ix->deleted_ids_len];
        /* a removed element is never DELETED (remove.c clears the flag) */
        if (atomic_load(&node_at(ix, cand)->flags) & NODE_DELETED) {
            *id = cand;
            return true;
        }
    }
    return false;
}

/*
 * Appends a slot to the reuse list. Unmarking leaves a stale entry behind
 * (storage_pop_deleted skips those), so the list is compacted -- stale entries and
 * duplicates dropped -- when it outgrows twice the deleted count; without
 * that, mark/unmark cycles would grow it without bound. meta_lock held.
 */
hnswc_status storage_push_deleted(hnswc_index *ix, node_id id) {
    if (ix->deleted_ids_len >= 2 * atomic_load(&ix->deleted_count) + 64) {
        size_t w = 0;
        for (size_t r = 0; r < ix->deleted_ids_len; r++) {
            node_head *n = node_at(ix, ix->deleted_ids[r]);
            uint32_t f = atomic_load(&n->flags);
            /* the COMPACT_MARK bit (never otherwise set) marks a kept entry */
            if ((f & NODE_DELETED) && !(f & NODE_COMPACT_MARK)) {
                atomic_fetch_or(&n->flags, NODE_COMPACT_MARK);
                ix->deleted_ids[w++] = ix->deleted_ids[r];
            }
        }
        for (size_t r = 0; r < w; r++)
            atomic_fetch_and(&node_at(ix, ix->deleted_ids[r])->flags, ~NODE_COMPACT_MARK);
        ix->deleted_ids_len = w;
    }
    if (ix->deleted_ids_len == ix->deleted_ids_cap) {
        size_t cap = ix->deleted_ids_cap ? 2 * ix->deleted_ids_cap : 64;
        node_id *p = realloc(ix->deleted_ids, cap * sizeof *p);
        if (!p)
            return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory growing the deleted list");
        ix->deleted_ids = p;
        ix->deleted_ids_cap = cap;
    }
    ix->deleted_ids[ix->deleted_ids_len++] = id;
    return HNSWC_OK;
}

/* ========================================================================
 * Free slots (meta_lock held)
 * ======================================================================== */

static bool grow_ids(node_id **ids, size_t *cap, size_t want) {
    if (*cap >= want)
        return true;
    size_t n = *cap ? *cap : 64;
    while (n < want)
        n *= 2;
    node_id *p = realloc(*ids, n * sizeof *p);
    if (!p)
        return false;
    *ids = p;
    *cap = n;
    return true;
}

hnswc_status storage_reserve_free(hnswc_index *ix, size_t more) {
    if (!grow_ids(&ix->free_ids, &ix->free_cap, ix->free_len + more))
        return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory growing the free slot list");
    return HNSWC_OK;
}

/*
 * The slot of a removed element becomes free. The caller (remove.c) holds the
 * update lock's write side, so no reader is looking at the record, and has
 * checked that no list links to it and that it is not the entry point.
 * Its layer-0 record stays as it is until an add rewrites it; only the upper
 * links are given back now.
 */
void storage_free_slot(hnswc_index *ix, node_id id) {
    node_head *n = node_at(ix, id);
    if (n->upper)
        upper_release(ix, n->upper, node_level(n));
    n->upper = 0;
    atomic_store_explicit(&n->l0[0], 0, memory_order_relaxed);
    /* level 0 with it: a free slot has no upper lists */
    atomic_store_explicit(&n->flags, NODE_REMOVED, memory_order_release);
    ix->free_ids[ix->free_len++] = id; /* room reserved by storage_reserve_free */
    atomic_fetch_add(&ix->free_count, 1);
}

void storage_write_vector(hnswc_index *ix, node_id id, const float *v) {
    if (!storage_has_vectors(ix)) {
        /* code only: v (for cosine, v times its normalising factor, which
         * is bit for bit the normalised vector) straight into the row */
        float scale = ix->metric == HNSWC_METRIC_COSINE ? hnswc_norm_scale(v, ix->dim) : 1.0f;
        uint32_t clipped = quant_sq8_encode_scaled(&ix->quant, v, scale,
                                                   node_codes(ix, node_at(ix, id)));
        if (clipped)
            atomic_fetch_add_explicit(&ix->codes_clipped, clipped, memory_order_relaxed);
        return;
    }
    float *dst = node_vector(ix, id);
    memcpy(dst, v, (size_t)ix->dim * sizeof(float));
    if (ix->metric == HNSWC_METRIC_COSINE)
        hnswc_normalize(dst, ix->dim);
    if (atomic_load_explicit(&ix->codes_ready, memory_order_relaxed)) {
        uint8_t *row = node_codes(ix, node_at(ix, id));
        uint32_t clipped = quant_sq8_encode(&ix->quant, dst, row);
        if (clipped)
            atomic_fetch_add_explicit(&ix->codes_clipped, clipped, memory_order_relaxed);
        storage_note_codes(ix, id);
    }
}

/*
 * Keeps codes_inexact (index.h) true to row id: set if its code does not
 * reproduce its f32 vector. Called after every code row is written beside
 * a vector, before the node is linked: the release store happens before
 * the links that publish the node, so a search that reaches the node reads
 * the flag as set (graph.c, rerank, loads it after the walk). Costs one
 * pass over the row per write while the flag is clear, none after.
 */
void storage_note_codes(hnswc_index *ix, node_id id) {
    if (!storage_has_vectors(ix) ||
        atomic_load_explicit(&ix->codes_inexact, memory_order_relaxed))
        return;
    if (!quant_sq8_reproduces(&ix->quant, node_codes(ix, node_at(ix, id)), node_vector(ix, id)))
        atomic_store_explicit(&ix->codes_inexact, 1, memory_order_release);
}

/* Write side of update_lock held, or the index not shared yet. */
void storage_encode_rows(hnswc_index *ix, uint64_t count) {
    atomic_store(&ix->codes_inexact, 0); /* every element's row is checked below */
    for (uint64_t i = 0; i < count; i++) {
        node_head *n = node_at(ix, (node_id)i);
        quant_sq8_encode(&ix->quant, node_vector(ix, (node_id)i), node_codes(ix, n));
        if (atomic_load(&n->flags) & NODE_READY) /* not a free slot */
            storage_note_codes(ix, (node_id)i);
    }
}

/* Write side of update_lock held: no reader or writer is in the index. */
hnswc_status storage_train_codes(hnswc_index *ix, const float *extra, size_t n) {
    float *tmp = NULL;
    if (ix->metric == HNSWC_METRIC_COSINE && n > 0 &&
        !(tmp = malloc((size_t)ix->dim * sizeof *tmp)))
        return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory training the quantiser");
    uint64_t count = atomic_load(&ix->count);
    for (uint64_t i = 0; i < count; i++) /* stored: normalised already */
        if (atomic_load(&node_at(ix, (node_id)i)->flags) & NODE_READY)
            quant_sq8_observe(&ix->quant, node_vector(ix, (node_id)i));
    for (size_t r = 0; r < n; r++) {
        const float *x = extra + r * ix->dim;
        if (tmp) {
            memcpy(tmp, x, (size_t)ix->dim * sizeof *tmp);
            hnswc_normalize(tmp, ix->dim);
            x = tmp;
        }
        quant_sq8_observe(&ix->quant, x);
    }
    free(tmp);
    if (ix->quant.observed == 0)
        return HNSWC_OK; /* nothing to train on yet */
    quant_sq8_fit(&ix->quant);
    storage_encode_rows(ix, count);
    if (ix->storage == HNSWC_STORAGE_SQ8_ONLY)
        storage_drop_vectors(ix);
    atomic_store_explicit(&ix->codes_ready, 1, memory_order_release);
    return HNSWC_OK;
}

/*
 * Code only: the cold array goes, chunk by chunk. Nothing can fail here, so
 * training never leaves half the vectors gone. (Rejected: keeping the cold
 * array and writing nothing more to it -- it is three quarters of the
 * index's memory on Fashion-MNIST, and the point of the mode.)
 */
void storage_drop_vectors(hnswc_index *ix) {
    if (!storage_has_vectors(ix))
        return;
    for (unsigned c = 0; c < MAX_CHUNKS; c++) {
        if (!ix->vchunks[c])
            continue;
        if (c >= ix->map_chunks) { /* a mapped file's vectors are unmapped with it */
            free(ix->vchunks[c]);
            atomic_fetch_sub(&ix->memory_bytes, (size_t)chunk_len(c) * ix->vec_stride);
        }
        ix->vchunks[c] = NULL;
    }
    ix->vec_tab = NULL;
}

/* ========================================================================
 * Loader helpers
 * ======================================================================== */

/*
 * For loaders: checks a stored link list of `count` ids (at most `max`) on
 * `level` -- each must name an existing node that lives on that layer -- and
 * copies it into dst, zero-filling the rest. `levels` (one byte a node, or
 * NULL: read from the records) gives the layers; `what` names the file.
 *
 * Layer 0 needs no look-up (every node lives there): its ids are checked
 * against the count in one branch-free pass the compiler vectorises, then
 * copied whole (the index is not shared yet: plain stores). On layers
 * above, the look-up reads `levels`, 1 byte a node and in cache, instead of
 * a random record: a cache miss per upper link was a tenth of opening a
 * mapped index.
 */
hnswc_status storage_set_links(hnswc_index *ix, _Atomic uint32_t *dst, uint32_t count,
                               const uint32_t *ids, uint32_t max, int level, const uint8_t *levels,
                               const char *what) {
    if (count > max)
        return hnswc_fail(HNSWC_ERR_FORMAT, "hnswc_load: %s: a link list on layer %d holds %u "
                          "links, more than its %u", what, level, count, max);
    const uint64_t n = atomic_load_explicit(&ix->count, memory_order_relaxed);
    uint32_t out = 0;
    for (uint32_t j = 0; j < count; j++)
        out |= (uint64_t)ids[j] >= n;
    if (out) {
        uint32_t j = 0;
        while ((uint64_t)ids[j] < n)
            j++;
        return hnswc_fail(HNSWC_ERR_FORMAT, "hnswc_load: %s: a link points to element %u of %llu",
                          what, ids[j], (unsigned long long)n);
    }
    for (uint32_t j = 0; level > 0 && j < count; j++)
        if ((levels ? (int)levels[ids[j]] : node_level(node_at(ix, ids[j]))) < level)
            return hnswc_fail(HNSWC_ERR_FORMAT, "hnswc_load: %s: a link on layer %d points to an "
                              "element that is not on that layer", what, level);
    /* not shared yet: a plain copy (relaxed stores one by one were not
     * vectorised) */
    uint32_t *d = (uint32_t *)(void *)dst;
    d[0] = count;
    memcpy(d + 1, ids, (size_t)count * sizeof *ids);
    memset(d + 1 + count, 0, (size_t)(max - count) * sizeof *ids);
    return HNSWC_OK;
}

/*
 * For loaders: a whole LNK0 section in memory (a mapped or deserialized
 * file, its checksum already summed): count + 1 records of 1 + M0 words,
 * each a count and M0 ids. Each is checked as storage_set_links checks
 * layer 0 and copied into its node, in one loop without a call per record
 * (a call, a memcpy and a memset per node were a fifth of opening a mapped
 * index).
 */
hnswc_status storage_load_links0(hnswc_index *ix, const uint32_t *words, const char *what) {
    const uint64_t n = atomic_load_explicit(&ix->count, memory_order_relaxed);
    const uint32_t n32 = (uint32_t)n, M0 = ix->M0; /* n <= HNSWC_MAX_ELEMENTS < 2^32 */
    for (uint64_t i = 0; i < n; i++, words += 1 + (size_t)M0) {
        const uint32_t *restrict w = words;
        const uint32_t c = w[0];
        if (c > M0)
            return hnswc_fail(HNSWC_ERR_FORMAT, "hnswc_load: %s: a link list on layer 0 holds "
                              "%u links, more than its %u", what, c, M0);
        /* One branch-free pass the compiler vectorises: the ids past the
         * count are masked to zero (whatever the file holds there), every
         * id is checked against the element count, and the list is
         * stored (not shared yet: plain stores). A scalar loop zeroing the
         * slots past the count was a third of this function. */
        uint32_t *restrict d = (uint32_t *)(void *)node_at(ix, (node_id)i)->l0;
#if defined(__GNUC__)
        if (i + 4 < n) { /* the record a few ahead, every line of its list */
            const char *a = (const char *)node_at(ix, (node_id)(i + 4))->l0;
            for (size_t b = 0; b < (1 + (size_t)M0) * 4; b += 64)
                __builtin_prefetch(a + b, 1);
        }
#endif
        uint32_t out = 0;
        d[0] = c;
        for (uint32_t j = 0; j < M0; j++) {
            const uint32_t v = w[1 + j] & (j < c ? ~0u : 0u);
            d[1 + j] = v;
            out |= v >= n32; /* n32 >= 1 here: a masked 0 passes */
        }
        if (out) {
            uint32_t j = 1;
            while (w[j] < n32)
                j++;
            return hnswc_fail(HNSWC_ERR_FORMAT, "hnswc_load: %s: a link points to element %u "
                              "of %llu", what, w[j], (unsigned long long)n);
        }
    }
    return HNSWC_OK;
}

/*
 * For loaders: the label map of nodes 0 .. count-1, labels[i] being node
 * i's (label_map_fill: entered in table order, not one random probe walk a
 * label). Two elements with one label make the file invalid.
 */
hnswc_status storage_load_labels(hnswc_index *ix, const uint64_t *labels, const char *what) {
    size_t n = (size_t)atomic_load_explicit(&ix->count, memory_order_relaxed), dup;
    uint32_t other;
    hnswc_status st = label_map_fill(&ix->labels, labels, n, &dup, &other);
    if (st == HNSWC_ERR_FORMAT)
        st = hnswc_fail(HNSWC_ERR_FORMAT, "hnswc_load: %s: elements %u and %zu have the same "
                        "label %llu", what, other, dup, (unsigned long long)labels[dup]);
    return st;
}

/*
 * After a loader has filled all nodes: the in-degrees are left to count
 * (below); with `labels_done` false, the label map is built and the
 * deleted slots listed here, from the records (a loader that had the
 * labels at hand did both itself: storage_load_labels, storage_push_deleted).
 * Two elements with one label make the file invalid.
 */
hnswc_status storage_finish_load(hnswc_index *ix, bool labels_done, const char *what) {
    uint64_t n = atomic_load(&ix->count);
    /* a file is taken as laid out as it was saved: the automatic relayout
     * (layout.c) waits until the index doubles from here */
    atomic_store(&ix->layout_count, n);
    atomic_store_explicit(&ix->indeg_stale, 1, memory_order_relaxed); /* not shared yet */
    if (labels_done)
        return HNSWC_OK;
    uint64_t *labels = malloc((size_t)(n ? n : 1) * sizeof *labels);
    if (!labels)
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_load: out of memory");
    for (uint64_t i = 0; i < n; i++)
        labels[i] = node_at(ix, (node_id)i)->label;
    hnswc_status st = storage_load_labels(ix, labels, what);
    free(labels);
    for (uint64_t i = 0; st == HNSWC_OK && i < n; i++)
        if (atomic_load_explicit(&node_at(ix, (node_id)i)->flags, memory_order_relaxed) & NODE_DELETED)
            st = storage_push_deleted(ix, (node_id)i);
    return st;
}

/* ========================================================================
 * In-degrees
 *
 * How many lists link to a node, per layer: pruning keeps a node's last
 * layer-0 in-link (graph.c, set_links) and removal frees a slot only at
 * in-degree 0 on every layer (remove.c). They are derived from the links,
 * not stored in files, and only writers of links use them. So a loaded or
 * opened index does not count them when it is read (that was a fifth of
 * opening a mapped index: a random increment per link, then a store per
 * node), but when its first writer asks: an index that is only searched
 * never counts them.
 *
 * The contract that makes the count exact: every operation that writes
 * links (an add or an update: index.c, add_one; a removal or a compaction:
 * remove.c) calls storage_ensure_indegrees with the update lock held, read
 * or write side, before it writes its first link. Then while the first
 * caller counts, no link is being written: every other writer is either
 * waiting in this function or has not reached it, and a relayout (which
 * rewrites ids) holds the write side. Searches may read links meanwhile;
 * they never read in-degrees. Rejected: counting under the update lock's
 * write side (an add holds the read side, and the lock cannot be
 * upgraded; dropping and retaking it would let the index change between),
 * and counting at the first write of each node (a node's in-degree depends
 * on every other node's lists).
 * ======================================================================== */

/* Counts every in-degree from the links. indeg_lock held, no link writer
 * running (above). Out of memory changes nothing. */
static hnswc_status count_indegrees(hnswc_index *ix) {
    uint64_t n = atomic_load(&ix->count);
    /* layer 0 in a plain array (4 bytes a node: in cache), then stored in
     * order; an atomic increment in a random record per link is several
     * times slower */
    uint32_t *deg = calloc(n ? (size_t)n : 1, sizeof *deg);
    if (!deg)
        return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory counting in-degrees");
    for (uint64_t i = 0; i < n; i++) {
        node_head *h = node_at(ix, (node_id)i);
        uint32_t d = node_links_count(ix, h->l0, 0);
        for (uint32_t j = 0; j < d; j++)
            deg[atomic_load_explicit(&h->l0[1 + j], memory_order_relaxed)]++;
    }
    for (uint64_t i = 0; i < n; i++) {
        node_head *h = node_at(ix, (node_id)i);
        atomic_store_explicit(&h->indeg0, deg[i], memory_order_relaxed);
        for (int lv = 1; lv <= node_level(h); lv++) /* zeroed first: counted below */
            atomic_store_explicit(node_indeg(ix, h, lv), 0, memory_order_relaxed);
    }
    free(deg);
    /* the upper layers (few nodes) in place; no other thread writes them */
    for (uint64_t i = 0; i < n; i++) {
        node_head *h = node_at(ix, (node_id)i);
        for (int lv = 1; lv <= node_level(h); lv++) {
            _Atomic uint32_t *links = node_links(ix, h, lv);
            uint32_t d = node_links_count(ix, links, lv);
            for (uint32_t j = 0; j < d; j++) {
                node_id t = atomic_load_explicit(&links[1 + j], memory_order_relaxed);
                _Atomic uint32_t *c = node_indeg(ix, node_at(ix, t), lv);
                atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                                      memory_order_relaxed);
            }
        }
    }
    return HNSWC_OK;
}

hnswc_status storage_ensure_indegrees(hnswc_index *ix) {
    if (!atomic_load_explicit(&ix->indeg_stale, memory_order_acquire))
        return HNSWC_OK;
    hnswc_status st = HNSWC_OK;
    pthread_mutex_lock(&ix->indeg_lock);
    if (atomic_load_explicit(&ix->indeg_stale, memory_order_relaxed) &&
        (st = count_indegrees(ix)) == HNSWC_OK)
        atomic_store_explicit(&ix->indeg_stale, 0, memory_order_release);
    pthread_mutex_unlock(&ix->indeg_lock);
    return st;
}
