/*
 * labelset.h -- sets of labels: sorting a label array into a set, and
 * membership by binary search. The public face is hnswc_labelset_* in
 * include/hnswc.h (the filter every binding uses for "only these labels");
 * the two helpers below are what it is made of, for any src/ module that
 * needs a sorted set of labels.
 *
 * Pure functions on the caller's arrays: no allocation, no locking, thread
 * safe as long as no one writes the array meanwhile.
 */
#ifndef HNSWC_LABELSET_H
#define HNSWC_LABELSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Sorts labels[0 .. n-1] ascending in place and moves the distinct values to
 * the front; returns their count. O(n log n) worst case (introsort), no
 * allocation.
 */
size_t labelset_sort_unique(uint64_t *labels, size_t n);

/* true if `label` is in sorted[0 .. n-1] (ascending). O(log n). */
bool labelset_contains(const uint64_t *sorted, size_t n, uint64_t label);

#endif /* HNSWC_LABELSET_H */
