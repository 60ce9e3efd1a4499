/*
 * layout.h -- node order (layout.c): renumbering the nodes of a graph index
 * so that nodes a search visits one after the other lie close in memory.
 *
 * Prefix: layout_. Depends on storage.h (records, links, lists of slots),
 * labelmap.h, error.h. Included by index.c, whose hnswc_relayout and
 * hnswc_add_batch call in here; nothing here calls back into index.c.
 *
 * Locking: both functions take, in the lock order, reclaim_lock, the update
 * lock's write side and meta_lock, with no lock held by the caller: while
 * ids move, no search, add, removal, reclamation or lookup runs.
 */
#ifndef HNSWC_LAYOUT_H
#define HNSWC_LAYOUT_H

#include "index.h"

#include <stdbool.h>

/* Renumbers every slot of ix (a graph index) in breadth-first order of
 * layer 0 from the entry point (layout.c, "Order"): records, vectors,
 * links, labels, deletion marks, in-degrees, the lists of deleted, removed
 * and free slots and the entry point. HNSWC_ERR_NOMEM leaves ix as it was. */
hnswc_status layout_relayout(hnswc_index *ix);

/* The automatic relayout at the end of a batch add: relays out if the
 * policy is AUTO, ix is not mapped, and it holds at least twice the slots
 * of its last layout and at least HNSWC_RELAYOUT_AUTO_MIN (checked again
 * under the locks, so two batches ending together relay out once). Returns
 * true if it did. Out of memory: false, ix unchanged. */
bool layout_maybe_relayout(hnswc_index *ix);

#endif /* HNSWC_LAYOUT_H */
