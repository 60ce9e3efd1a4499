/*
 * flat.h -- the exact (flat) index (flat.c): vectors in rows, and every
 * search compares the query with every live row.
 *
 * Prefix: flat_. Depends on labelmap.h, heap.h, threads.h, distance.h,
 * error.h. Included by index.c (the facade dispatches here when
 * hnswc_options.kind is HNSWC_KIND_FLAT), persist.c and hnswlib_import.c
 * (the loaders build a flat index through the loader helpers below).
 *
 * The public handle: a flat index is handed out as an hnswc_index *. Its
 * record starts with the same first member as struct hnswc_index (index.h),
 * the kind, so the facade reads the kind through index_kind() and then
 * treats the handle as one record or the other; nothing else may be read
 * through the wrong type. (Rejected: a small handle pointing to either
 * record, which would have meant a second allocation and an indirection in
 * every call of the graph's hot paths; and embedding the flat state in the
 * graph record, which would cost a flat index the graph's 4096 link locks.)
 *
 * Every function here gets arguments the facade has validated (pointers,
 * flags, finite vectors, k and sizes in range) and does its own locking:
 *
 *   lock (rwlock, writers preferred)
 *     read side:  searches, get_vector, is_deleted, get_labels, info,
 *                 count_new, and the savers (persist.c)
 *     write side: adds, remove (one or a batch), compact, mark/unmark,
 *                 reserve
 *
 * Adds take the write side because growing the rows moves them, and a row
 * is rewritten in place on an update; a flat add is a copy, so holding off
 * searches for it costs little.
 */
#ifndef HNSWC_FLAT_H
#define HNSWC_FLAT_H

#include "hnswc.h"
#include "labelmap.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hnswc_kernels; /* distance.h */

typedef struct flat_index {
    hnswc_kind kind;          /* HNSWC_KIND_FLAT; first, as in struct hnswc_index */
    uint32_t dim;
    hnswc_metric metric;
    const struct hnswc_kernels *kernels;

    pthread_rwlock_t lock;

    /* --- guarded by lock --- */
    float *vectors;           /* capacity rows of dim floats, 64-byte aligned;
                                 normalised for cosine                      */
    uint64_t *labels;         /* the label of each row                      */
    uint8_t *deleted;         /* 1: row marked deleted                      */
    uint64_t count;           /* rows in use: 0 .. count-1                  */
    uint64_t capacity;        /* rows allocated                             */
    uint64_t deleted_count;
    label_map map;            /* label -> row                               */
} flat_index;

/* The kind of any handle: the first member of both records. */
static inline hnswc_kind index_kind(const hnswc_index *ix) {
    return *(const hnswc_kind *)(const void *)ix;
}

/* The flat record behind a handle whose kind is HNSWC_KIND_FLAT. */
static inline flat_index *flat_of(const hnswc_index *ix) {
    return (flat_index *)(void *)ix;
}

/* ========================================================================
 * Lifetime
 * ======================================================================== */

/* A new empty index for validated options (dim, metric; capacity rows are
 * reserved). Nothing is left allocated on failure. */
hnswc_status flat_create(const hnswc_options *o, flat_index **out);

/* Frees everything. No other thread may use fx. */
void flat_destroy(flat_index *fx);

/* Room for at least `capacity` rows (<= HNSWC_MAX_ELEMENTS, checked by the
 * caller). Takes the write side. Nothing changes on failure. */
hnswc_status flat_reserve(flat_index *fx, uint64_t capacity);

/* ========================================================================
 * The calls behind the public API (arguments validated by index.c)
 * ======================================================================== */

/* Adds or updates n rows (checked finite) under labels; all or nothing. */
hnswc_status flat_add(flat_index *fx, const float *vectors, const uint64_t *labels, size_t n,
                      unsigned flags);

/* Removes a row for good; the last row moves into its place. */
hnswc_status flat_remove(flat_index *fx, const char *fn, uint64_t label);

hnswc_status flat_set_deleted(flat_index *fx, const char *fn, uint64_t label, bool del);

/* hnswc_remove_batch: all or nothing (NOT_FOUND, INVALID for a label given
 * twice), then as flat_remove for each. */
hnswc_status flat_remove_batch(flat_index *fx, const char *fn, const uint64_t *labels, size_t n);

/* hnswc_compact: every row marked deleted removed; *n_removed how many. */
hnswc_status flat_compact(flat_index *fx, size_t *n_removed);

/* hnswc_search_range: every live row within radius of query (raw:
 * normalised here for cosine), closest first, into res (grown; count set
 * only on success). */
hnswc_status flat_search_range(const flat_index *fx, const float *query, float radius,
                               hnswc_filter_fn filter, void *user, hnswc_range_result *res);

/*
 * The k nearest live rows of each of n queries (raw: normalised here for
 * cosine), closest first, on num_threads threads (0: all cores). Query i
 * writes n_found[i] results to labels[i*k ..] and distances[i*k ..]
 * (distances may be NULL) and leaves the entries past them untouched.
 */
hnswc_status flat_search(const flat_index *fx, const float *queries, size_t n, size_t k,
                         hnswc_filter_fn filter, void *user, unsigned num_threads,
                         uint64_t *labels, float *distances, size_t *n_found);

/* The element of `label`: its stored vector into `vector` (dim floats) if
 * that is not NULL, else its deletion mark into *is_deleted. */
hnswc_status flat_lookup(const flat_index *fx, const char *fn, uint64_t label, float *vector,
                         int *is_deleted);
hnswc_status flat_get_labels(const flat_index *fx, uint64_t *out, size_t capacity,
                             size_t *n_written);
void flat_get_info(const flat_index *fx, hnswc_info *out);
hnswc_status flat_count_new(const flat_index *fx, const uint64_t *labels, size_t n,
                            size_t *n_new);

/* ========================================================================
 * Loader helpers (fx not shared yet)
 *
 * A loader creates the index with flat_create (capacity = the rows it
 * will fill, at least), writes count rows straight into fx->vectors,
 * fx->labels and fx->deleted, then calls flat_finish_load.
 * ======================================================================== */

/* Checks and adopts count filled rows: labels unique, flags 0 or 1,
 * vectors finite; builds the label map and the deleted count. fn and what
 * (the loader, the file) begin the message of HNSWC_ERR_FORMAT. */
hnswc_status flat_finish_load(flat_index *fx, uint64_t count, const char *fn, const char *what);

#endif /* HNSWC_FLAT_H */
