/*
 * gt.h -- exact ground truth for "hnswc bench": the library's exact (flat)
 * index searched in batches on all cores, and a small on-disk cache of its
 * results.
 *
 * Cache file (all integers and floats little-endian):
 *   offset 0   8 bytes   magic "HNSWCGT1"
 *          8   uint32    format version, 1
 *         12   uint32    metric (0 l2, 1 ip, 2 cosine)
 *         16   uint64    key (gt_key)
 *         24   uint64    nq, queries
 *         32   uint64    k, neighbours per query
 *         40   uint64    labels[nq * k], closest first (0-based base rows;
 *                        UINT64_MAX where fewer than k exist)
 *          .   float32   distances[nq * k]
 *          .   uint64    FNV-1a 64 of every byte before it
 * The file is named gt-<key as 16 hex digits>.bin and is written to a
 * temporary name first, then renamed, so a reader never sees half a file.
 * A file that fails any check is reported as corrupted and recomputed.
 */
#ifndef HNSWC_CLI_GT_H
#define HNSWC_CLI_GT_H

#include <stddef.h>
#include <stdint.h>

#include "hnswc.h"
#include "readers.h"

typedef struct ground_truth {
    size_t nq;
    size_t k;
    uint64_t *labels; /* nq * k, closest first, UINT64_MAX past the end   */
    float *distances; /* nq * k, or NULL when taken from an HDF5 file     */
} ground_truth;

void gt_free(ground_truth *gt);

/*
 * Cache key: FNV-1a 64 of the base and query vectors (as float32, after
 * conversion), their shapes, the metric and k.
 */
uint64_t gt_key(const dataset *base, const dataset *queries, hnswc_metric metric, size_t k);

/*
 * Loads a cache file. Returns 1 if it is valid for (key, nq, k), 0 if there
 * is no such file, -1 if it exists but is damaged or does not match (the
 * reason recorded with cli_set_error).
 */
int gt_cache_load(const char *path, uint64_t key, hnswc_metric metric, size_t nq, size_t k,
                  ground_truth *out);

/* Writes a cache file atomically (temporary file + rename). */
int gt_cache_save(const char *path, uint64_t key, hnswc_metric metric, const ground_truth *gt);

/*
 * The exact k nearest base rows of every query under `metric`, on `threads`
 * threads (0 = all cores), with a progress display on stderr if asked. Ties
 * in distance go to the smaller row number, so the result does not depend
 * on the number of threads. The base vectors are copied into a flat index
 * for the time of the call (as much memory again as the base).
 */
int gt_compute(const dataset *base, const dataset *queries, hnswc_metric metric, size_t k,
               unsigned threads, int show_progress, ground_truth *out);

/* Creates a directory and its parents (like mkdir -p). */
int gt_mkdirs(const char *dir);

#endif /* HNSWC_CLI_GT_H */
