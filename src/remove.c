/*
 * remove.c -- true removal: elements leave the graph for good, the lists
 * that linked to them are repaired, and their slots are reclaimed for later
 * adds (remove.h has the contracts; docs/ARCHITECTURE.md, "Removal", the
 * design and the measurements behind it).
 *
 * A slot goes through three states:
 *
 *   element   READY                in the label map; a search may return it
 *   removed   READY | REMOVED      label gone, in the limbo list; still a
 *                                  record with links, so an insert or a
 *                                  repair that reaches it walks through it
 *                                  (never returning it); a caller's search
 *                                  steps around it, as a reloaded index
 *                                  would (graph.c, walk_skips); lists
 *                                  linking to it are being repaired
 *   free      REMOVED              in the free list; the next add takes it
 *                                  (storage_new_slot) and makes it an
 *                                  element again
 *
 * Removing (remove_labels, under the update lock's read side, concurrently
 * with searches, adds and other removals): flag the elements REMOVED and drop
 * their labels (meta_lock, all or nothing), move the entry point if it was
 * one of them (entry_lock), then repair the lists of their live neighbours on
 * every layer (graph_repair_list: candidates from the list's own members and
 * the removed node's, the insert heuristic). Most in-links are found that
 * way -- on Fashion-MNIST 77% of a node's layer-0 in-links come from its own
 * neighbours -- but not all: a node is linked to by nodes it pruned from its
 * own list. Those are found by the sweep.
 *
 * Reclaiming (reclaim, once enough removed slots wait, or hnswc_compact):
 *   1. sweep, read side: every element's lists on every layer are scanned
 *      against a bitmap of the removed ids, and every list that still links
 *      to one is repaired. One pass over the graph finds every in-link of a
 *      whole batch, which is why large batches skip the local repair.
 *   2. clear, read side: the removed nodes' own lists are dropped (their
 *      members' in-degrees go down); a member left with no layer-0 in-link
 *      gets one (graph_repair_link_orphans), as does a node whose last
 *      in-link a repair dropped from a full list; then a walk from the entry
 *      point finds islands cut off whole (graph_reconnect) and links them
 *      back: removal leaves no unreachable node behind.
 *   3. free, WRITE side: a removed node whose in-degree is 0 on every layer
 *      and that is not the entry point becomes free.
 *
 * Why no search ever follows a link into a reused slot as if it were the old
 * element -- the argument the code follows:
 *   (a) A removed node is never linked to again. Every link is written by
 *       graph.c's set_links or add_backlink, which check the target's REMOVED
 *       flag under the list's link lock. (A writer that checked just before
 *       the flag was set may still write one; (b) counts it.)
 *   (b) In-degrees are exact whenever no writer runs: every list write
 *       adjusts them under the list's lock, on every layer.
 *   (c) A slot is freed only under the update lock's WRITE side, i.e. with
 *       no search, add or removal running, and only if its in-degree is 0 on
 *       every layer and it is not the entry point. At that moment no list
 *       holds its id and no running operation holds it in a variable (none
 *       runs). Every later operation starts at the entry point and follows
 *       links; no link to the slot can appear (by (a): the flag was set
 *       before the write lock, and every writer starting after it sees the
 *       flag through the lock). So nobody reaches the id until an add takes
 *       the slot and publishes it anew, exactly as a fresh slot is published:
 *       record written first, then READY (release) and links (release).
 *   (d) The exact scan visits every slot but reads only READY ones; a free
 *       slot is not READY until its new record is complete.
 * So a freed slot needs no generation counter: the proof is the write
 * lock, which every reclamation takes once for all the slots it frees --
 * the cost that makes slots reclaimed in groups rather than one by one.
 */
#include "remove.h"

#include "error.h"
#include "graph.h"
#include "labelmap.h"
#include "storage.h"
#include "threads.h"

#include <stdlib.h>
#include <string.h>

/* Removed slots are reclaimed when at least this many wait (and at least
 * 1/RECLAIM_FRACTION of the slots in use): a sweep reads every list once, so
 * it is paid for by the removals it serves. */
#define RECLAIM_MIN 256u
#define RECLAIM_FRACTION 64u
/* Ids per item of the parallel sweep. */
#define SWEEP_BLOCK 512u

static uint64_t reclaim_threshold(const hnswc_index *ix) {
    uint64_t t = storage_graph_slots(ix) / RECLAIM_FRACTION;
    return t > RECLAIM_MIN ? t : RECLAIM_MIN;
}

static inline uint32_t flags_of(const hnswc_index *ix, node_id id) {
    return atomic_load_explicit(&node_at(ix, id)->flags, memory_order_acquire);
}

/* ========================================================================
 * Repair scratch for parallel workers
 *
 * Allocated before anything changes, one per thread that can run, so that a
 * repair never fails for memory halfway through.
 * ======================================================================== */

typedef struct repair_scratches {
    graph_repair_scratch **by_slot; /* one per thread of the repairing parallel_for */
    size_t n;
} repair_scratches;

static void scratches_free(repair_scratches *p) {
    for (size_t i = 0; i < p->n; i++)
        graph_repair_scratch_free(p->by_slot[i]);
    free(p->by_slot);
}

/* t scratches: one per slot of a parallel_for on t threads (threads.h:
 * items of one slot never run at once, so a slot's scratch needs no lock);
 * the serial steps use the first. */
static hnswc_status scratches_init(repair_scratches *p, const hnswc_index *ix, unsigned t) {
    memset(p, 0, sizeof *p);
    p->by_slot = calloc(t, sizeof *p->by_slot);
    for (; p->by_slot && p->n < t; p->n++)
        if (!(p->by_slot[p->n] = graph_repair_scratch_new(ix)))
            break;
    if (p->n < t) {
        scratches_free(p);
        return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory allocating repair scratch");
    }
    return HNSWC_OK;
}

/* Re-links the nodes the repairs noted as orphaned (no worker runs). sc may
 * be NULL (see graph.h). */
static void scratches_link_orphans(hnswc_index *ix, repair_scratches *p, search_ctx *sc) {
    for (size_t i = 0; i < p->n; i++)
        graph_repair_link_orphans(ix, sc, p->by_slot[i]);
}

/* ========================================================================
 * The entry point
 * ======================================================================== */

/*
 * If the entry point has been removed, moves it to an element on the
 * highest layer: first among the removed node's own neighbours, top layer
 * down (a neighbour on its top layer is as high as any node can be), else by
 * a scan of all slots (the removed node was alone on its layer). Caller holds
 * the update lock's read side; takes entry_lock, which also orders this with
 * an insert that is about to make its node the entry (graph_insert checks
 * its node is not removed under the same lock).
 */
static void move_entry(hnswc_index *ix) {
    pthread_mutex_lock(&ix->entry_lock);
    uint64_t e = atomic_load(&ix->entry);
    if (e != ENTRY_EMPTY && (flags_of(ix, entry_id(e)) & NODE_REMOVED)) {
        node_head *xh = node_at(ix, entry_id(e));
        node_id best = NODE_NONE;
        int best_level = -1;
        for (int l = node_level(xh); l >= 0 && best_level < node_level(xh); l--) {
            _Atomic uint32_t *links = node_links(ix, xh, l);
            uint32_t n = node_links_count(ix, links, l);
            for (uint32_t j = 0; j < n; j++) {
                node_id y = atomic_load_explicit(&links[1 + j], memory_order_acquire);
                if (node_is_element(flags_of(ix, y)) && node_level(node_at(ix, y)) > best_level) {
                    best = y;
                    best_level = node_level(node_at(ix, y));
                }
            }
        }
        if (best_level < node_level(xh)) {
            uint64_t count = atomic_load(&ix->count);
            for (uint64_t i = 0; i < count && best_level < node_level(xh); i++) {
                node_head *h = node_at(ix, (node_id)i);
                if (node_is_element(flags_of(ix, (node_id)i)) && node_level(h) > best_level) {
                    best = (node_id)i;
                    best_level = node_level(h);
                }
            }
        }
        atomic_store(&ix->entry, best == NODE_NONE ? ENTRY_EMPTY : entry_make(best_level, best));
    }
    pthread_mutex_unlock(&ix->entry_lock);
}

/* ========================================================================
 * Marking elements removed (meta_lock held)
 * ======================================================================== */

/* Room in the limbo list for `more` ids, and in the free list for every id
 * that can end up there, so that nothing fails once elements are flagged. */
static hnswc_status reserve_lists(hnswc_index *ix, size_t more) {
    size_t want = ix->limbo_len + more;
    if (want > ix->limbo_cap) {
        size_t cap = ix->limbo_cap ? ix->limbo_cap : 64;
        while (cap < want)
            cap *= 2;
        node_id *p = realloc(ix->limbo_ids, cap * sizeof *p);
        if (!p)
            return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory growing the removed list");
        ix->limbo_ids = p;
        ix->limbo_cap = cap;
    }
    return storage_reserve_free(ix, want);
}

/*
 * Looks up every label: each must name an element (NOT_FOUND otherwise: never
 * added, or removed already), and none may come twice (INVALID). Duplicates
 * are found with the transient NODE_COMPACT_MARK bit, set and cleared here
 * under meta_lock (as storage_push_deleted uses it), so no memory is needed.
 */
static hnswc_status lookup(hnswc_index *ix, const char *fn, const uint64_t *labels, size_t n,
                           node_id *ids) {
    for (size_t i = 0; i < n; i++) {
        if (!label_map_find(&ix->labels, labels[i], &ids[i]) ||
            !(flags_of(ix, ids[i]) & NODE_READY))
            return hnswc_fail(HNSWC_ERR_NOT_FOUND, "%s: no element has label %llu (never "
                              "added, or removed already)%s", fn, (unsigned long long)labels[i],
                              n > 1 ? "; nothing was removed" : "");
    }
    hnswc_status st = HNSWC_OK;
    size_t marked = 0;
    for (; marked < n; marked++) {
        if (atomic_fetch_or(&node_at(ix, ids[marked])->flags, NODE_COMPACT_MARK) &
            NODE_COMPACT_MARK) {
            st = hnswc_fail(HNSWC_ERR_INVALID, "%s: label %llu is given twice; nothing was "
                            "removed", fn, (unsigned long long)labels[marked]);
            break;
        }
    }
    for (size_t i = 0; i < marked; i++)
        atomic_fetch_and(&node_at(ix, ids[i])->flags, ~NODE_COMPACT_MARK);
    return st;
}

/*
 * Element `id` becomes removed: flagged, its label out of the map, a
 * tombstone no longer (a removed slot is never reused as a tombstone is),
 * into the limbo list (room reserved). removed_pending goes up first, so a
 * search that sees the flag also knows it must check flags.
 */
static void flag_removed(hnswc_index *ix, node_id id) {
    node_head *h = node_at(ix, id);
    atomic_fetch_add(&ix->removed_pending, 1);
    atomic_fetch_add(&ix->removed_total, 1);
    uint32_t old = atomic_fetch_or(&h->flags, NODE_REMOVED);
    if (old & NODE_DELETED) {
        atomic_fetch_and(&h->flags, ~NODE_DELETED);
        atomic_fetch_sub(&ix->deleted_count, 1);
    }
    label_map_remove(&ix->labels, h->label);
    ix->limbo_ids[ix->limbo_len++] = id;
}

/* ========================================================================
 * Local repair: the live neighbours of the removed nodes
 * ======================================================================== */

typedef struct local_job {
    hnswc_index *ix;
    const node_id *ids;
    repair_scratches *scratch;
} local_job;

/*
 * Repairs the lists of removed node ids[i]'s live neighbours, every layer,
 * then drops its own lists. Dropping them now rather than at reclamation
 * matters for reachability: a neighbour that only the removed node linked
 * to would otherwise stay unreachable until then. (The sweep then repairs
 * the in-links not found here from the lists' own members only, having no
 * removed list to read through; it is a few links.) Nodes left with no
 * in-link are noted in the scratch for the caller to re-link.
 */
static hnswc_status local_item(void *ctx, size_t i, unsigned slot) {
    local_job *j = ctx;
    hnswc_index *ix = j->ix;
    graph_repair_scratch *rs = j->scratch->by_slot[slot];
    node_head *xh = node_at(ix, j->ids[i]);
    for (int l = 0; l <= node_level(xh); l++) {
        _Atomic uint32_t *links = node_links(ix, xh, l);
        uint32_t n = node_links_count(ix, links, l);
        for (uint32_t t = 0; t < n; t++) {
            node_id y = atomic_load_explicit(&links[1 + t], memory_order_acquire);
            if (!(flags_of(ix, y) & NODE_REMOVED))
                graph_repair_list(ix, y, l, rs);
        }
    }
    graph_clear_links(ix, j->ids[i], rs);
    return HNSWC_OK;
}

/* ========================================================================
 * Reclamation: sweep, clear, free
 * ======================================================================== */

typedef struct reclaim_res {
    node_id *ids;      /* the removed nodes this reclamation handles */
    size_t ids_cap, n;
    uint64_t *bits;    /* bitmap of ids, over ids < nbits */
    uint64_t nbits;
    repair_scratches scratch; /* one per thread of the sweep */
    unsigned threads;
    search_ctx *sc;    /* for graph_repair_link_orphans */
} reclaim_res;

static void reclaim_free(hnswc_index *ix, reclaim_res *r) {
    free(r->ids);
    free(r->bits);
    if (r->sc)
        graph_ctx_release(ix, r->sc);
    scratches_free(&r->scratch);
}

/*
 * Everything a reclamation needs, allocated before it starts (and, for
 * hnswc_compact, before anything is removed), for up to `extra` more
 * removed nodes than wait now.
 */
static hnswc_status reclaim_prepare(hnswc_index *ix, size_t extra, unsigned num_threads,
                                    reclaim_res *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_lock(&ix->meta_lock);
    r->ids_cap = ix->limbo_len + extra;
    r->nbits = atomic_load(&ix->capacity);
    pthread_mutex_unlock(&ix->meta_lock);
    r->threads = parallel_threads((size_t)(r->nbits / SWEEP_BLOCK + 1), num_threads);
    r->ids = malloc((r->ids_cap ? r->ids_cap : 1) * sizeof *r->ids);
    r->bits = calloc((size_t)(r->nbits + 63) / 64, sizeof *r->bits);
    r->sc = graph_ctx_acquire(ix, ix->ef_construction);
    hnswc_status st = HNSWC_OK;
    if (!r->ids || !r->bits || !r->sc)
        st = hnswc_fail(HNSWC_ERR_NOMEM, "out of memory preparing to reclaim removed slots");
    else
        st = scratches_init(&r->scratch, ix, r->threads);
    if (st != HNSWC_OK) {
        free(r->ids);
        free(r->bits);
        if (r->sc)
            graph_ctx_release(ix, r->sc);
        memset(r, 0, sizeof *r);
    }
    return st;
}

static inline bool bit_test(const reclaim_res *r, node_id id) {
    return id < r->nbits && (r->bits[id / 64] >> (id % 64) & 1u);
}

typedef struct sweep_job {
    hnswc_index *ix;
    reclaim_res *r;
    uint64_t count;
} sweep_job;

/* Repairs every list, in slots [b*SWEEP_BLOCK, ...), that links to a node of
 * the bitmap. Slots being written (not READY) are skipped: an insert that
 * linked to a removed node before it was flagged leaves a link that keeps
 * the node from being freed until a later sweep. */
static hnswc_status sweep_item(void *ctx, size_t b, unsigned slot) {
    sweep_job *j = ctx;
    hnswc_index *ix = j->ix;
    graph_repair_scratch *rs = j->r->scratch.by_slot[slot];
    uint64_t end = (uint64_t)(b + 1) * SWEEP_BLOCK;
    for (uint64_t i = (uint64_t)b * SWEEP_BLOCK; i < end && i < j->count; i++) {
        node_head *h = node_at(ix, (node_id)i);
        if (!node_is_element(flags_of(ix, (node_id)i)))
            continue;
        for (int l = 0; l <= node_level(h); l++) {
            _Atomic uint32_t *links = node_links(ix, h, l);
            uint32_t n = node_links_count(ix, links, l);
            for (uint32_t t = 0; t < n; t++) {
                if (bit_test(j->r, atomic_load_explicit(&links[1 + t], memory_order_relaxed))) {
                    graph_repair_list(ix, (node_id)i, l, rs);
                    break;
                }
            }
        }
    }
    return HNSWC_OK;
}

/*
 * Sweep, clear, free (the header comment), for the removed nodes waiting
 * now (as many as r has room for; later ones wait for the next time).
 * Takes reclaim_lock, so one reclamation runs at a time, then the update
 * lock's read side for the sweep, then its write side to free. Returns the
 * number of slots freed. Consumes r.
 */
static size_t reclaim_run(hnswc_index *ix, reclaim_res *r) {
    pthread_mutex_lock(&ix->reclaim_lock);
    pthread_rwlock_rdlock(&ix->update_lock);
    pthread_mutex_lock(&ix->meta_lock);
    uint64_t count = atomic_load(&ix->count);
    for (size_t i = 0; i < ix->limbo_len && r->n < r->ids_cap; i++) {
        node_id id = ix->limbo_ids[i];
        if (id < r->nbits) {
            r->ids[r->n++] = id;
            r->bits[id / 64] |= (uint64_t)1 << (id % 64);
        }
    }
    pthread_mutex_unlock(&ix->meta_lock);

    size_t freed = 0;
    if (r->n > 0) {
        move_entry(ix);
        /* 1. sweep: every list still linking to one of them is repaired */
        sweep_job sj = {ix, r, count < r->nbits ? count : r->nbits};
        parallel_for((size_t)((sj.count + SWEEP_BLOCK - 1) / SWEEP_BLOCK), r->threads, sweep_item,
                     &sj); /* items cannot fail */
        /* 2. clear: their own lists go; nodes left with no in-link, by the
         * sweep's repairs or by this, get a new one */
        graph_repair_scratch *rs = r->scratch.by_slot[0];
        for (size_t i = 0; i < r->n; i++)
            graph_clear_links(ix, r->ids[i], rs);
        scratches_link_orphans(ix, &r->scratch, r->sc);
        /* islands: nodes that link to each other but that no path from the
         * entry point reaches any more */
        graph_reconnect(ix, r->sc, rs);
    }
    pthread_rwlock_unlock(&ix->update_lock);

    if (r->n > 0) {
        /* 3. free, with nothing else running: (c) in the header comment */
        pthread_rwlock_wrlock(&ix->update_lock);
        pthread_mutex_lock(&ix->meta_lock);
        uint64_t e = atomic_load(&ix->entry);
        for (size_t i = 0; i < r->n; i++) {
            node_id id = r->ids[i];
            node_head *h = node_at(ix, id);
            bool linked = e != ENTRY_EMPTY && entry_id(e) == id;
            for (int l = 0; l <= node_level(h) && !linked; l++)
                linked = atomic_load(node_indeg(ix, h, l)) != 0;
            if (!linked) {
                storage_free_slot(ix, id); /* room reserved when it was removed */
                atomic_fetch_sub(&ix->removed_pending, 1);
                freed++;
            }
        }
        /* the limbo list keeps what was not freed, and what came meanwhile */
        size_t w = 0;
        for (size_t i = 0; i < ix->limbo_len; i++)
            if (flags_of(ix, ix->limbo_ids[i]) & NODE_READY)
                ix->limbo_ids[w++] = ix->limbo_ids[i];
        ix->limbo_len = w;
        pthread_mutex_unlock(&ix->meta_lock);
        pthread_rwlock_unlock(&ix->update_lock);
    }
    pthread_mutex_unlock(&ix->reclaim_lock);
    reclaim_free(ix, r);
    return freed;
}

/* Reclaims if enough removed slots wait. Best effort: the removals are
 * complete either way, and out of memory here only postpones reclamation. */
static void maybe_reclaim(hnswc_index *ix, unsigned num_threads) {
    if (atomic_load(&ix->removed_pending) < reclaim_threshold(ix))
        return;
    reclaim_res r;
    if (reclaim_prepare(ix, 0, num_threads, &r) == HNSWC_OK)
        reclaim_run(ix, &r);
}

/* ========================================================================
 * Entry points (called by index.c's public functions)
 * ======================================================================== */

hnswc_status remove_labels(hnswc_index *ix, const char *fn, const uint64_t *labels, size_t n,
                           unsigned num_threads) {
    if (n == 0)
        return HNSWC_OK;
    /* a batch that triggers a reclamation anyway is repaired by its sweep
     * alone: one pass over the graph instead of a repair per element */
    bool sweep_only = n >= reclaim_threshold(ix);
    node_id *ids = malloc(n * sizeof *ids);
    if (!ids)
        return hnswc_fail(HNSWC_ERR_NOMEM, "%s: out of memory for %zu labels", fn, n);
    repair_scratches scratch;
    hnswc_status st =
        sweep_only ? HNSWC_OK : scratches_init(&scratch, ix, parallel_threads(n, num_threads));
    if (st != HNSWC_OK) {
        free(ids);
        return st;
    }

    pthread_rwlock_rdlock(&ix->update_lock);
    /* before the first link write, and before anything changes (storage.c,
     * "In-degrees") */
    st = storage_ensure_indegrees(ix);
    if (st == HNSWC_OK) {
        pthread_mutex_lock(&ix->meta_lock);
        st = reserve_lists(ix, n);
        if (st == HNSWC_OK)
            st = lookup(ix, fn, labels, n, ids);
        if (st == HNSWC_OK)
            for (size_t i = 0; i < n; i++)
                flag_removed(ix, ids[i]);
        pthread_mutex_unlock(&ix->meta_lock);
    }
    if (st == HNSWC_OK) {
        move_entry(ix);
        if (!sweep_only) {
            local_job j = {ix, ids, &scratch};
            /* on the calling thread alone for one item or one thread */
            parallel_for(n, num_threads, local_item, &j); /* items cannot fail */
            /* nodes left with no in-link get one (without a context, only
             * from their nearest members) */
            search_ctx *sc = graph_ctx_acquire(ix, ix->ef_construction);
            scratches_link_orphans(ix, &scratch, sc);
            if (sc)
                graph_ctx_release(ix, sc);
        }
    }
    pthread_rwlock_unlock(&ix->update_lock);
    if (!sweep_only)
        scratches_free(&scratch);
    free(ids);
    if (st == HNSWC_OK)
        maybe_reclaim(ix, num_threads);
    return st;
}

hnswc_status remove_compact(hnswc_index *ix, unsigned num_threads, size_t *n_removed) {
    /* everything is allocated before a tombstone is touched: a failed call
     * removes nothing */
    pthread_mutex_lock(&ix->meta_lock);
    size_t want = ix->deleted_ids_len;
    pthread_mutex_unlock(&ix->meta_lock);
    reclaim_res r;
    hnswc_status st = reclaim_prepare(ix, want, num_threads, &r);
    if (st != HNSWC_OK)
        return st;

    size_t removed = 0;
    pthread_rwlock_rdlock(&ix->update_lock);
    /* before the first link write (storage.c, "In-degrees"); out of memory
     * here leaves n 0: nothing is removed */
    st = storage_ensure_indegrees(ix);
    pthread_mutex_lock(&ix->meta_lock);
    /* tombstones marked since the size was read wait for the next compact */
    size_t n = st != HNSWC_OK ? 0 : ix->deleted_ids_len < want ? ix->deleted_ids_len : want;
    if (st == HNSWC_OK)
        st = reserve_lists(ix, n);
    if (st == HNSWC_OK) {
        for (size_t i = 0; i < n; i++) {
            node_id id = ix->deleted_ids[i];
            /* the list may hold stale entries (unmarked, or listed twice):
             * flag_removed clears DELETED, so a repeat is skipped */
            uint32_t f = flags_of(ix, id);
            if ((f & NODE_DELETED) && node_is_element(f)) {
                flag_removed(ix, id);
                removed++;
            }
        }
        /* what was listed is removed now; later marks append again */
        if (n > 0)
            memmove(ix->deleted_ids, ix->deleted_ids + n,
                    (ix->deleted_ids_len - n) * sizeof *ix->deleted_ids);
        ix->deleted_ids_len -= n;
    }
    pthread_mutex_unlock(&ix->meta_lock);
    pthread_rwlock_unlock(&ix->update_lock);
    if (st != HNSWC_OK) {
        reclaim_free(ix, &r);
        return st;
    }
    reclaim_run(ix, &r);
    if (n_removed)
        *n_removed = removed;
    return HNSWC_OK;
}
