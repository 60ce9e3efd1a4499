/*
 * layout.c -- node order: renumbering the slots of a graph index so that a
 * search's consecutive steps read records that lie close in memory
 * (layout.h has the contracts; docs/ARCHITECTURE.md, "Node order", the
 * design; docs/BENCHMARKS.md what it measured).
 *
 * Why. A search on Fashion-MNIST reads ~350 records a query, nearly every
 * one a cache miss; it is bound by how many misses are in flight, not by
 * arithmetic. Nodes are numbered in the order they were added, so the
 * neighbours of a node are spread over the whole index: every step is also
 * a TLB miss and the hardware prefetchers see nothing to follow. Numbered in
 * breadth-first order of layer 0 from the entry point, a node's neighbours
 * mostly sit a few records away from it and from each other, and the nodes
 * near the entry point that every search starts through are packed together.
 * A throwaway harness measured +11% / +13% QPS at ef 12 / 24 for that order
 * and +5% / +3% for a random permutation (the control: part of the gain is
 * only the memory being touched afresh).
 *
 * What moves. A node's id indexes: its record (header with the label,
 * level, flags, in-degree of layer 0 and the pointer to its upper-layer
 * block; layer-0 links; the vector or SQ8 code row), its f32 vector in the
 * cold array (SQ8, mapped indexes), and it appears as a value in every link
 * list on every layer, the label map, the entry word, the reuse list of
 * deleted slots, the limbo list of removed slots awaiting reclamation and
 * the free list. The upper-layer block (links, then per-layer in-degrees)
 * belongs to the node and moves with its header pointer; only the ids in it
 * are rewritten. In-degrees are counts, not ids: they move with their node.
 * Nothing else holds an id between calls (a search context's visited set is
 * cleared by its epoch at the start of every search).
 *
 * How. (1) The order: new_of[old] and order[new] = old. (2) Every link of
 * every slot is rewritten through new_of, in place. (3) The records (and
 * cold vectors) are permuted in place by following the permutation's
 * cycles: each cycle saves one record, moves the others one step along it
 * and writes the saved one last, so the extra memory is one record and one
 * vector. (4) The id lists, the label map's values and the entry word are
 * mapped through new_of. Everything that can fail (the two id arrays, the
 * bitmap of moved slots, the spare record) is allocated first; after that
 * nothing can fail, so a failed relayout leaves the index as it was.
 * Rejected: copying into a second set of chunks (sequential writes, but a
 * second copy of every record and vector -- 250 MB for Fashion-MNIST with
 * SQ8 -- for no measured gain in time), and a translation table between
 * public and internal ids (every step of every search would pay for it).
 *
 * Locks. Everything runs with reclaim_lock (a reclamation in progress holds
 * removed ids across its phases), the update lock's write side (searches,
 * adds and removals hold the read side) and meta_lock (label look-ups and
 * tombstone marks take only that), in that order, taken here.
 */
#include "layout.h"

#include "error.h"
#include "storage.h"

#include <stdlib.h>
#include <string.h>

/* ========================================================================
 * Order
 * ======================================================================== */

/*
 * Breadth-first search on layer 0 from the nodes already in order[0 .. *len)
 * (from the first), appending every slot it reaches for the first time.
 * Links are followed in list order: the order a search reads them in, so
 * the nodes one expansion measures lie next to each other.
 */
static void bfs0(const hnswc_index *ix, node_id *order, uint64_t *len, node_id *new_of) {
    for (uint64_t head = 0; head < *len; head++) {
        _Atomic uint32_t *links = node_at(ix, order[head])->l0;
        uint32_t d = node_links_count(ix, links, 0);
        for (uint32_t j = 0; j < d; j++) {
            node_id t = atomic_load_explicit(&links[1 + j], memory_order_relaxed);
            if (new_of[t] == NODE_NONE) {
                new_of[t] = (node_id)*len;
                order[(*len)++] = t;
            }
        }
    }
}

/*
 * Fills order (new -> old) and new_of (old -> new) for the n slots: the
 * nodes layer 0 reaches from the entry point, breadth-first, then the
 * elements and removed nodes it does not reach (islands, in id order), then
 * the free slots -- last, so that adds, which take free slots from the end
 * of the free list, and scans find the live nodes together.
 *
 * Measured and rejected: the nodes of the upper layers first (breadth-first
 * on each layer from the top down, each from every node ordered so far,
 * then layer 0 from all of them), to pack what a greedy descent reads:
 * Fashion-MNIST SQ8, bench/ab.py, the same graph in both, this order
 * 1.01x / 1.02x that one at recall 0.95 / 0.99 (1.00-1.06x per ef). The
 * descent reads a few dozen records a query; the beam search, hundreds.
 */
static void make_order(const hnswc_index *ix, uint64_t n, node_id *order, node_id *new_of) {
    for (uint64_t i = 0; i < n; i++)
        new_of[i] = NODE_NONE;
    uint64_t len = 0;
    uint64_t e = atomic_load(&ix->entry);
    if (e != ENTRY_EMPTY) {
        node_id ep = entry_id(e);
        new_of[ep] = 0;
        order[len++] = ep;
        bfs0(ix, order, &len, new_of);
    }
    for (int pass = 0; pass < 2; pass++) /* unreached READY slots, then free */
        for (uint64_t i = 0; i < n; i++) {
            bool ready = atomic_load_explicit(&node_at(ix, (node_id)i)->flags,
                                              memory_order_relaxed) & NODE_READY;
            if (new_of[i] == NODE_NONE && ready == (pass == 0)) {
                new_of[i] = (node_id)len;
                order[len++] = (node_id)i;
            }
        }
}

/* ========================================================================
 * Applying a permutation (every lock held)
 * ======================================================================== */

static void map_list(const node_id *new_of, _Atomic uint32_t *links, uint32_t d) {
    for (uint32_t j = 0; j < d; j++)
        atomic_store_explicit(&links[1 + j],
                              new_of[atomic_load_explicit(&links[1 + j], memory_order_relaxed)],
                              memory_order_relaxed);
}

static void map_ids(const node_id *new_of, node_id *ids, size_t len) {
    for (size_t i = 0; i < len; i++)
        ids[i] = new_of[ids[i]];
}

/* The f32 vector lives apart from the record (SQ8's cold array, a mapped
 * index's vectors) and must move too; in an F32 record it moves with it. */
static bool vectors_apart(const hnswc_index *ix) { return ix->vec_tab == ix->vchunks; }

/*
 * Moves record (and vector) `from` to slot `to`; from == NODE_NONE moves
 * the spare copies instead. Records are copied bytewise: no other thread
 * is in the index (the write side), and the copy carries every field as
 * it is, atomics included.
 */
static void move_slot(hnswc_index *ix, node_id to, node_id from, void *spare_rec,
                      float *spare_vec) {
    size_t vbytes = (size_t)ix->dim * sizeof(float);
    memcpy(node_at(ix, to), from == NODE_NONE ? spare_rec : (void *)node_at(ix, from),
           ix->node_size);
    if (vectors_apart(ix))
        memcpy(node_vector(ix, to), from == NODE_NONE ? spare_vec : node_vector(ix, from), vbytes);
}

/* Permutes the records in place along the cycles of `order` (slot s
 * receives the record of order[s]); `moved` is a zeroed bitmap of n bits. */
static void permute_records(hnswc_index *ix, uint64_t n, const node_id *order, uint64_t *moved,
                            void *spare_rec, float *spare_vec) {
    for (uint64_t s = 0; s < n; s++) {
        if (order[s] == s || (moved[s / 64] >> (s % 64) & 1))
            continue;
        /* save the record of slot s, then pull each slot's new record along
         * the cycle until the one that wants s's */
        memcpy(spare_rec, node_at(ix, (node_id)s), ix->node_size);
        if (vectors_apart(ix))
            memcpy(spare_vec, node_vector(ix, (node_id)s), (size_t)ix->dim * sizeof(float));
        node_id j = (node_id)s;
        for (;;) {
            node_id src = order[j];
            moved[j / 64] |= (uint64_t)1 << (j % 64);
            if (src == s) {
                move_slot(ix, j, NODE_NONE, spare_rec, spare_vec);
                break;
            }
            move_slot(ix, j, src, spare_rec, spare_vec);
            j = src;
        }
    }
}

/* Rewrites every id in ix through new_of and permutes the n slots. */
static void apply(hnswc_index *ix, uint64_t n, const node_id *order, const node_id *new_of,
                  uint64_t *moved, void *spare_rec, float *spare_vec) {
    /* links, before the records move: slot i is still old node i */
    for (uint64_t i = 0; i < n; i++) {
        node_head *h = node_at(ix, (node_id)i);
        if (!(atomic_load_explicit(&h->flags, memory_order_relaxed) & NODE_READY))
            continue; /* a free slot: no links (storage_free_slot) */
        for (int l = 0; l <= node_level(h); l++) {
            _Atomic uint32_t *links = node_links(ix, h, l);
            map_list(new_of, links, node_links_count(ix, links, l));
        }
    }
    permute_records(ix, n, order, moved, spare_rec, spare_vec);

    for (size_t i = 0; i < ix->labels.cap; i++)
        if (ix->labels.vals[i] != LABEL_MAP_EMPTY)
            ix->labels.vals[i] = new_of[ix->labels.vals[i]];
    map_ids(new_of, ix->deleted_ids, ix->deleted_ids_len);
    map_ids(new_of, ix->limbo_ids, ix->limbo_len);
    map_ids(new_of, ix->free_ids, ix->free_len);
    uint64_t e = atomic_load(&ix->entry);
    if (e != ENTRY_EMPTY)
        atomic_store(&ix->entry, entry_make(entry_level(e), new_of[entry_id(e)]));
}

/* ========================================================================
 * Entry points
 * ======================================================================== */

/* Every lock held. `automatic`: only if the index doubled since its last
 * layout (checked here, under the locks). */
static hnswc_status relayout_locked(hnswc_index *ix, bool automatic, bool *done) {
    *done = false;
    uint64_t n = atomic_load(&ix->count);
    if (automatic && (n < HNSWC_RELAYOUT_AUTO_MIN || n < 2 * atomic_load(&ix->layout_count)))
        return HNSWC_OK;
    if (n <= 1) {
        atomic_store(&ix->layout_count, n);
        atomic_fetch_add(&ix->relayouts, 1);
        *done = true;
        return HNSWC_OK;
    }
    /* everything that can fail, first */
    node_id *order = malloc((size_t)n * sizeof *order);
    node_id *new_of = malloc((size_t)n * sizeof *new_of);
    uint64_t *moved = calloc((size_t)(n + 63) / 64, sizeof *moved);
    /* aligned_alloc wants a multiple of the alignment: an F32 record (152
     * bytes for M 16) is not one, and sanitizers refuse it */
    void *spare_rec = aligned_alloc(64, (ix->node_size + 63) / 64 * 64);
    float *spare_vec = vectors_apart(ix) ? malloc((size_t)ix->dim * sizeof *spare_vec) : NULL;
    hnswc_status st = HNSWC_OK;
    if (!order || !new_of || !moved || !spare_rec || (vectors_apart(ix) && !spare_vec)) {
        st = hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_relayout: out of memory for the order of %llu "
                        "slots (%llu bytes)", (unsigned long long)n,
                        (unsigned long long)(n * 2 * sizeof(node_id) + n / 8 + ix->node_size));
    } else {
        make_order(ix, n, order, new_of);
        apply(ix, n, order, new_of, moved, spare_rec, spare_vec);
        atomic_store(&ix->layout_count, n);
        atomic_fetch_add(&ix->relayouts, 1);
        *done = true;
    }
    free(order);
    free(new_of);
    free(moved);
    free(spare_rec);
    free(spare_vec);
    return st;
}

static hnswc_status relayout(hnswc_index *ix, bool automatic, bool *done) {
    pthread_mutex_lock(&ix->reclaim_lock);
    pthread_rwlock_wrlock(&ix->update_lock);
    pthread_mutex_lock(&ix->meta_lock);
    hnswc_status st = relayout_locked(ix, automatic, done);
    pthread_mutex_unlock(&ix->meta_lock);
    pthread_rwlock_unlock(&ix->update_lock);
    pthread_mutex_unlock(&ix->reclaim_lock);
    return st;
}

hnswc_status layout_relayout(hnswc_index *ix) {
    bool done;
    return relayout(ix, false, &done);
}

bool layout_maybe_relayout(hnswc_index *ix) {
    /* the cheap test first, without a lock: most batches end here */
    if (atomic_load_explicit(&ix->relayout_policy, memory_order_relaxed) != HNSWC_RELAYOUT_AUTO ||
        ix->map_chunks > 0)
        return false;
    uint64_t n = atomic_load(&ix->count);
    if (n < HNSWC_RELAYOUT_AUTO_MIN || n < 2 * atomic_load(&ix->layout_count))
        return false;
    bool done;
    return relayout(ix, true, &done) == HNSWC_OK && done;
}
