/*
 * remove.h -- true removal (remove.c): taking elements out of the graph for
 * good, repairing the lists that linked to them, and reclaiming their slots
 * once no search can reach them.
 *
 * Prefix: remove_. Depends on graph.h (the repair itself: candidates and the
 * insert heuristic), storage.h (records, flags, free slots), labelmap.h,
 * threads.h, error.h. Included by index.c, whose hnswc_remove,
 * hnswc_remove_batch and hnswc_compact validate their arguments and call in
 * here; nothing here calls back into index.c.
 *
 * The argument that a freed slot is never mistaken for its old element is in
 * remove.c's header comment and in docs/ARCHITECTURE.md, "Removal".
 */
#ifndef HNSWC_REMOVE_H
#define HNSWC_REMOVE_H

#include "index.h"

/*
 * Removes the elements labels[0..n) (checked non-NULL by the caller), all or
 * nothing: an unknown label gives HNSWC_ERR_NOT_FOUND, a label given twice
 * HNSWC_ERR_INVALID, and nothing changes. `fn` names the public call in
 * messages. Takes the update lock's read side, then the others inside it.
 */
hnswc_status remove_labels(hnswc_index *ix, const char *fn, const uint64_t *labels, size_t n,
                           unsigned num_threads);

/* Removes every tombstone and reclaims every removed slot now. */
hnswc_status remove_compact(hnswc_index *ix, unsigned num_threads, size_t *n_removed);

#endif /* HNSWC_REMOVE_H */
