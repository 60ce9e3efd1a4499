/*
 * hnswc.h -- the one public header of libhnswc, an HNSW vector index in C11.
 *
 * HNSW (Malkov & Yashunin, "Efficient and robust approximate nearest
 * neighbor search using Hierarchical Navigable Small World graphs",
 * TPAMI 2018, arXiv:1603.09320) finds the k vectors closest to a query
 * among millions in well under a millisecond.
 *
 * The surface is deliberately small, in the style of SQLite's C API:
 *
 *   - one opaque handle, hnswc_index;
 *   - every fallible call returns an hnswc_status, and hnswc_errmsg() gives
 *     a human-readable message for the calling thread's last failure;
 *   - options are a struct in which zero always means "the default";
 *   - the library never prints, never aborts and never asserts on bad input,
 *     and a call that fails validation leaves the index exactly as it was.
 *
 * Thread safety is stated at each function as one of:
 *   [reader]    may run concurrently with any other [reader] or [writer] call;
 *   [writer]    may run concurrently with [reader] calls and other [writer]
 *               calls: the library does the locking;
 *   [exclusive with writers]  may run concurrently with [reader] calls, but
 *               the caller must ensure no [writer] call runs meanwhile;
 *   [exclusive] the caller must ensure no other call on the same index runs
 *               at the same time (only hnswc_free).
 *
 * Example:
 *
 *   hnswc_options o = {0};
 *   o.dim = 128;                       // everything else: defaults
 *   hnswc_index *ix;
 *   if (hnswc_create(&o, &ix) != HNSWC_OK) { puts(hnswc_errmsg(NULL)); ... }
 *   hnswc_add(ix, 42, vec, 0);
 *   uint64_t labels[10]; float dists[10]; size_t found;
 *   hnswc_search(ix, query, 10, 0, NULL, NULL, labels, dists, &found);
 *   hnswc_save(ix, "my.hnswc");
 *   hnswc_free(ix);
 */
#ifndef HNSWC_H
#define HNSWC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Version
 * ------------------------------------------------------------------------ */

#define HNSWC_VERSION_MAJOR 0
#define HNSWC_VERSION_MINOR 1
#define HNSWC_VERSION_PATCH 0
#define HNSWC_VERSION "0.1.0"
/* A single number for compile-time comparisons: MAJOR*10000 + MINOR*100 + PATCH. */
#define HNSWC_VERSION_NUMBER 100

#if defined(_WIN32) && defined(HNSWC_BUILD_SHARED)
#define HNSWC_API __declspec(dllexport)
#elif defined(__GNUC__)
#define HNSWC_API __attribute__((visibility("default")))
#else
#define HNSWC_API
#endif

/* The library's version string, e.g. "0.1.0". Thread safe. */
HNSWC_API const char *hnswc_version(void);

/* ------------------------------------------------------------------------
 * Status codes and error messages
 *
 * The numeric values are stable: new codes are only ever appended.
 * ------------------------------------------------------------------------ */

/* The index handle: opaque, created by hnswc_create or hnswc_load. */
typedef struct hnswc_index hnswc_index;

typedef enum hnswc_status {
    HNSWC_OK = 0,
    HNSWC_ERR_NULL = 1,        /* a required pointer argument was NULL          */
    HNSWC_ERR_INVALID = 2,     /* an argument is out of range (dim 0, M < 2, k 0) */
    HNSWC_ERR_NONFINITE = 3,   /* a vector holds NaN or infinity                */
    HNSWC_ERR_NOT_FOUND = 4,   /* no element has that label                     */
    HNSWC_ERR_OVERFLOW = 5,    /* a size computation would overflow             */
    HNSWC_ERR_NOMEM = 6,       /* out of memory                                 */
    HNSWC_ERR_IO = 7,          /* a file could not be opened, read or written   */
    HNSWC_ERR_FORMAT = 8,      /* a file is truncated, corrupted or not ours    */
    HNSWC_ERR_DELETED = 9,     /* the label is marked deleted (or already live) */
    HNSWC_ERR_THREAD = 10,     /* reserved: a batch whose threads cannot start
                                  runs on fewer threads instead of failing      */
    HNSWC_ERR_FULL = 11        /* the index holds max_elements elements         */
} hnswc_status;

/* A short, constant description of a status code ("out of memory"). Never NULL. */
HNSWC_API const char *hnswc_status_string(hnswc_status status);

/*
 * The message of the calling thread's most recent failed hnswc call, e.g.
 * "hnswc_add: vector component 17 is NaN". Messages are kept per thread, so
 * concurrent callers never see each other's messages; the `index` argument
 * may be NULL (it has to be after a failed hnswc_create or hnswc_load).
 * Returns "" if the thread has had no failure. The string stays valid until
 * the thread's next failing hnswc call.
 */
HNSWC_API const char *hnswc_errmsg(const hnswc_index *index);

/* ------------------------------------------------------------------------
 * Creating and freeing an index
 * ------------------------------------------------------------------------ */

/*
 * Distances follow hnswlib exactly, so results can be compared one to one:
 *   L2      squared Euclidean distance, sum (a_i - b_i)^2;
 *   IP      1 - dot(a, b);
 *   COSINE  1 - cos(a, b): vectors are normalised to unit length when they
 *           are added and when they are queried, then compared as IP.
 *           A zero vector is stored as is (its distance to anything is 1).
 */
typedef enum hnswc_metric {
    HNSWC_METRIC_L2 = 0,
    HNSWC_METRIC_IP = 1,
    HNSWC_METRIC_COSINE = 2
} hnswc_metric;

/*
 * What the graph walk reads (hnswc_options.storage). Returned distances are
 * exact f32 distances in F32 and SQ8 -- NOT in SQ8_ONLY (below).
 *   F32  the f32 vectors, in the node records (the default; hnswlib's way).
 *   SQ8  one byte per dimension (src/quant.h: an offset per dimension and one
 *        shared step, trained on the data) in the node records, with the f32
 *        vectors in a separate array that only the final re-rank reads: a
 *        search walks on codes with a beam of ef (at least k + k/8 + 1, see
 *        hnswc_search), then ranks the best 2k (at least k + 10) of the
 *        beam by exact f32 distance and returns the best k. The graph is built on
 *        the codes too: an insert's walk reads them, and where they do not
 *        hold the data exactly (values off the code's grid) the links are
 *        then chosen on exact f32 distances. The quantiser is trained once the index first holds
 *        HNSWC_SQ8_TRAIN_MIN vectors (counting the batch being added), on all
 *        of them; until then the walk reads f32. Later values outside the
 *        trained range are saturated (the walk is less precise for them;
 *        results stay exact).
 *   SQ8_ONLY  code-only SQ8, for the smallest memory: as SQ8, but once the
 *        quantiser is trained the f32 vectors are encoded and FREED, and
 *        none is kept: a node is its record (header, links, code row) and
 *        nothing else (Fashion-MNIST, M 16: 1,087 resident bytes per
 *        element, 0.33x hnswlib 0.8's 3,315; docs/BENCHMARKS.md). Until
 *        the index first holds HNSWC_SQ8_TRAIN_MIN vectors it keeps them
 *        in f32 exactly as SQ8 does (and is exact); the add that crosses the
 *        threshold trains, encodes every stored vector and frees them all.
 *        Then, and in every file saved after it:
 *          !! RETURNED DISTANCES ARE APPROXIMATE: the distance from the
 *          !! (f32, for cosine normalised) query to the DECODED stored
 *          !! vector lo_i + step * code_i (src/quant.h), computed by the
 *          !! float kernels -- the walk's candidates are re-ranked by it.
 *          !! Each decoded component is within step/2 of the stored value
 *          !! (for values inside the trained range; outside, they saturate
 *          !! to the range's end), so for L2 |sqrt(d) - sqrt(d_exact)| <=
 *          !! sqrt(dim) * step / 2. Results may differ from F32/SQ8 ones.
 *        hnswc_get_vector returns the decoded vector (approximate, as
 *        above), and a search's distance to an element is exactly the
 *        distance to that vector (L2, IP; cosine: to it as stored, not
 *        renormalised). On data whose values are small integers (pixels)
 *        the step is 1 and everything stays exact. HNSW only: a flat index
 *        refuses it (HNSWC_ERR_INVALID). hnswc_open(HNSWC_OPEN_MMAP) loads
 *        such a file as hnswc_load does (nothing is mapped).
 */
typedef enum hnswc_storage {
    HNSWC_STORAGE_F32 = 0,
    HNSWC_STORAGE_SQ8 = 1,
    HNSWC_STORAGE_SQ8_ONLY = 2
} hnswc_storage;

/*
 * When the nodes of a graph index are put in locality order (hnswc_relayout):
 *   AUTO    (default) at the end of an hnswc_add_batch that leaves the index
 *           holding at least twice the slots it held at its last relayout
 *           (or load) and at least HNSWC_RELAYOUT_AUTO_MIN: amortised O(1)
 *           per element added; and on an explicit hnswc_relayout call.
 *   MANUAL  only on an explicit hnswc_relayout call: internal ids
 *           (hnswc_node_id, ...) then change only when the caller asks.
 * Not saved in files (an option of the process holding the index): a loaded
 * or opened index starts AUTO; hnswc_set_relayout changes it.
 */
typedef enum hnswc_relayout_policy {
    HNSWC_RELAYOUT_AUTO = 0,
    HNSWC_RELAYOUT_MANUAL = 1
} hnswc_relayout_policy;
#define HNSWC_RELAYOUT_AUTO_MIN 4096u

#define HNSWC_SQ8_TRAIN_MIN 1000u

/*
 * The kind of an index, chosen once in hnswc_options.kind:
 *
 *   HNSW  the graph (the default): approximate, sub-linear searches.
 *   FLAT  an exact index: the vectors in rows, and every search compares
 *         the query with every live element (the kernels' exact distances,
 *         closest first). For ground truth, for small collections, and as
 *         hnswlib's BFIndex. Searches of a batch share each block of rows
 *         read from memory among several queries, on all cores.
 *
 * Both kinds are the same opaque hnswc_index behind the same calls: a
 * caller that loads a file need not know which kind it holds, and code
 * written for one kind works on the other. (Rejected: a separate handle
 * with its own hnswc_flat_* calls. It would double the API, and every tool
 * that opens, searches or describes an index would need two code paths.)
 * Where the kinds differ it is said at the call, under "Flat:":
 * graph-only parameters (M, ef_construction, ef_search, seed) are checked
 * but have no effect on a flat index, ef is ignored by its searches, and
 * hnswc_get_graph_stats has nothing to report.
 */
typedef enum hnswc_kind {
    HNSWC_KIND_HNSW = 0,
    HNSWC_KIND_FLAT = 1
} hnswc_kind;

/* Zero in any field means "the default" written beside it. */
typedef struct hnswc_options {
    uint32_t dim;             /* vector dimension; required, 1 .. 65536      */
    hnswc_metric metric;      /* default HNSWC_METRIC_L2                      */
    uint32_t M;               /* links per node on upper layers (2*M on layer
                                 0); default 16, range 2 .. 2048              */
    uint32_t ef_construction; /* beam width while building; default 200      */
    uint32_t ef_search;       /* default beam width of a search; default 10  */
    uint64_t seed;            /* seed of the level generator; default 100    */
    uint64_t capacity;        /* initial capacity hint (elements); the index
                                 grows past it on its own; default 1024
                                 (flat: room for exactly this many rows is
                                 reserved, none by default)                  */
    hnswc_kind kind;          /* default HNSWC_KIND_HNSW                      */
    hnswc_storage storage;    /* what the walk reads; default F32 (graph only) */
    uint64_t max_elements;    /* a limit on the elements stored (live and
                                 deleted, as hnswlib's max_elements): adds of
                                 new labels past it fail with HNSWC_ERR_FULL.
                                 Not a memory size (memory grows with the
                                 elements). Default 0: no limit beyond the
                                 2^32 - 2 an index can hold. Saved in files.
                                 HNSW only: 0 for a flat index (whose
                                 callers keep their own, as BFIndex does)   */
    hnswc_relayout_policy relayout; /* default AUTO (graph only; a flat
                                 index's rows need no relayout)              */
} hnswc_options;

/*
 * Creates an empty index. On success *out is the new index; on failure *out
 * is NULL and the status says why (HNSWC_ERR_INVALID for dim 0, M < 2, an
 * unknown metric or kind...). Thread safe.
 */
HNSWC_API hnswc_status hnswc_create(const hnswc_options *options, hnswc_index **out);

/* Frees the index and everything it owns. NULL is a no-op. [exclusive] */
HNSWC_API void hnswc_free(hnswc_index *index);

/* ------------------------------------------------------------------------
 * Adding vectors
 * ------------------------------------------------------------------------ */

/* Flags for hnswc_add and hnswc_add_batch. */
#define HNSWC_ADD_REPLACE_DELETED 1u /* a new label may take over the slot of an
                                        element marked deleted (hnswlib's
                                        replace_deleted=True)                  */

/*
 * Adds `vector` (dim floats) under `label`. If the label exists already, its
 * vector is replaced and the element re-linked (hnswlib's behaviour); if the
 * label exists but is marked deleted, it is replaced and becomes live again.
 * The vector is copied; the caller keeps ownership of it.
 *
 * Errors: HNSWC_ERR_NULL, HNSWC_ERR_INVALID (unknown flag), HNSWC_ERR_NONFINITE,
 * HNSWC_ERR_NOMEM, HNSWC_ERR_OVERFLOW (more than 2^32 - 2 elements),
 * HNSWC_ERR_FULL (a new label, and the index holds max_elements elements;
 * updating an existing label or reusing a deleted slot takes no room).
 * Out of memory is always found before anything changes: a failed add
 * leaves the index exactly as it was. (If the search's scratch cannot grow
 * once the element is stored, the element is linked to the neighbours found
 * so far and the add succeeds. SQ8: the add that trains the quantiser
 * trains it first, so it may fail with the quantiser trained and the
 * elements unchanged -- SQ8_ONLY: and their f32 vectors already encoded
 * and freed; see docs/RELIABILITY.md.)
 *
 * [writer] An add of a new label runs concurrently with searches and other
 * adds. An add that overwrites storage in place (updating an existing label,
 * or reusing a deleted slot) waits for running searches and adds to finish
 * and holds off new ones while it runs.
 *
 * Flat: every add waits for running searches (a row may move when the rows
 * grow) and is never left half done: it succeeds or changes nothing.
 */
HNSWC_API hnswc_status hnswc_add(hnswc_index *index, uint64_t label, const float *vector,
                                 unsigned flags);

/*
 * Adds n vectors (n * dim floats, row after row) under labels[0 .. n-1] on
 * num_threads threads (0 = all cores). Every vector is checked before any is
 * added, so a NaN anywhere rejects the whole batch with nothing changed. If
 * memory runs out midway, what was added stays valid and *n_added (may be
 * NULL) says how many went in; their order is then unspecified when threads
 * > 1. A label repeated within the batch ends with the last vector given for
 * it when num_threads is 1, and with one of them otherwise.
 *
 * With a max_elements limit, the room a batch needs (its distinct labels not
 * in the index, less the deleted slots it may reuse) is counted and held for
 * it before anything is added: a batch that does not fit fails whole with
 * HNSWC_ERR_FULL and nothing changed (hnswlib adds part of it first), and
 * updates of existing labels take no room, however many batches run at
 * once. Only a race that empties the deleted slots a replacing batch counted
 * on can make it stop midway with HNSWC_ERR_FULL. [writer]
 *
 * Node order: a successful batch that leaves a graph index at least twice
 * as large as at its last relayout (HNSWC_RELAYOUT_AUTO, the default; not
 * a mapped index) ends with hnswc_relayout, so internal ids change then
 * (labels never do). It takes the update lock's write side for O(slots):
 * searches wait meanwhile. Its failure (out of memory) is not the batch's:
 * the index keeps its old order and the batch returns HNSWC_OK.
 *
 * Flat: the batch is all or nothing (room for all of it is made first), it
 * keeps the batch order whatever num_threads is (copying rows does not
 * need threads), and a repeated label ends with its last vector.
 */
HNSWC_API hnswc_status hnswc_add_batch(hnswc_index *index, const float *vectors,
                                       const uint64_t *labels, size_t n, unsigned flags,
                                       unsigned num_threads, size_t *n_added);

/*
 * Sets *n_new to the number of distinct labels among labels[0 .. n-1] that
 * the index does not hold (live or deleted): the elements an add of them
 * would create (without HNSWC_ADD_REPLACE_DELETED, which may reuse deleted
 * slots instead). For callers that keep an element limit, as hnswlib's
 * max_elements, or that reserve room for a batch. labels may be NULL when
 * n is 0. Errors: HNSWC_ERR_NULL, HNSWC_ERR_NOMEM (a scratch set of n
 * labels). [reader] (under concurrent adds, a snapshot)
 */
HNSWC_API hnswc_status hnswc_count_new_labels(const hnswc_index *index, const uint64_t *labels,
                                              size_t n, size_t *n_new);

/* ------------------------------------------------------------------------
 * Searching
 * ------------------------------------------------------------------------ */

/*
 * A filter: returns non-zero if the element with `label` may be returned.
 * It is called from the searching thread (from worker threads in batch
 * searches, possibly concurrently) and must not call back into the index.
 * Filtered-out elements are still walked through, never returned.
 */
typedef int (*hnswc_filter_fn)(uint64_t label, void *user_data);

/*
 * Finds up to k elements closest to `query` (dim floats), closest first.
 * labels[] and distances[] must have room for k entries; *n_found is set to
 * the number found, which is less than k when fewer live elements pass the
 * filter (not an error). Entries past *n_found are left untouched.
 *
 * ef is the beam width: 0 means the index's default (hnswc_set_ef); a value
 * below k is raised to k, and with SQ8 or SQ8_ONLY storage (once trained)
 * to k + k/8 + 1 (12 for k 10): a beam of exactly k on codes cannot give
 * back a true neighbour the codes rank just past k. filter may be NULL. distances may be NULL. The
 * beam never holds more than the elements there are, so an ef or a k above
 * the element count costs what the index holds, not what they say; with ef
 * at least the element count the search is exact.
 *
 * SQ8_ONLY (trained): distances and ranking are those of the decoded
 * vectors, NOT exact (see hnswc_storage); so is "exact" above.
 *
 * Errors: HNSWC_ERR_NULL, HNSWC_ERR_INVALID (k == 0), HNSWC_ERR_NONFINITE,
 * HNSWC_ERR_NOMEM. [reader]
 *
 * Flat: exact, whatever ef (which is still checked). Of elements at equal
 * distance, the one stored first (earlier in hnswc_get_labels' order) is
 * preferred and comes first.
 */
HNSWC_API hnswc_status hnswc_search(const hnswc_index *index, const float *query, size_t k,
                                    size_t ef, hnswc_filter_fn filter, void *user_data,
                                    uint64_t *labels, float *distances, size_t *n_found);

/*
 * Searches n queries (n * dim floats) on num_threads threads (0 = all cores).
 * Results for query i go to labels[i*k ..] and distances[i*k ..] (distances
 * may be NULL) and its count to n_found[i]; unfilled entries are set to label
 * UINT64_MAX and distance +infinity. A batch with a query that is not
 * finite fails whole (HNSWC_ERR_NONFINITE, the message naming the first such
 * query): every output then reads "nothing found", as if none had run.
 * Results are those of hnswc_search for each query. A batch of 32 queries
 * or more runs its walks in an order of its own (sorted by where in the
 * graph each begins, which keeps the caches warm from one walk to the
 * next), and holds the index's update lock (read side) for the whole call:
 * a writer that needs it exclusively (an update of an existing label, the
 * reuse or reclamation of deleted slots, a relayout) waits for the batch.
 * [reader]
 *
 * Flat: queries are scanned in groups, so that each block of rows read from
 * memory serves every query of a group while it is in the cache; groups run
 * on the threads. The filter is called only for elements close enough to
 * enter a query's results, as in a single search.
 */
HNSWC_API hnswc_status hnswc_search_batch(const hnswc_index *index, const float *queries,
                                          size_t n, size_t k, size_t ef, hnswc_filter_fn filter,
                                          void *user_data, unsigned num_threads,
                                          uint64_t *labels, float *distances, size_t *n_found);

/*
 * Exact search: the same contract as hnswc_search, but by a full scan of all
 * live elements. Slow; meant for ground truth and for small indexes. [reader]
 * Flat: the same as hnswc_search. (For many queries, a flat index and
 * hnswc_search_batch are much faster than this call in a loop.)
 */
HNSWC_API hnswc_status hnswc_search_exact(const hnswc_index *index, const float *query,
                                          size_t k, hnswc_filter_fn filter, void *user_data,
                                          uint64_t *labels, float *distances, size_t *n_found);

/*
 * Range search results: every element found, closest first. The caller
 * zero-initialises the struct (hnswc_range_result r = {0};), passes it to
 * any number of hnswc_search_range calls -- each replaces the contents,
 * reusing and growing the buffers, which the library allocates -- and
 * finally frees the buffers with hnswc_range_result_free.
 */
typedef struct hnswc_range_result {
    uint64_t *labels;  /* count labels, closest first                       */
    float *distances;  /* count distances, ascending                        */
    size_t count;
    size_t capacity;   /* room in labels and distances (the library's)      */
} hnswc_range_result;

/*
 * Finds every element whose distance to `query` is at most `radius` (in the
 * metric's distance, as hnswc_search reports it: squared L2 for L2), closest
 * first, into *result (see hnswc_range_result). filter works as in
 * hnswc_search.
 *
 * ef is the beam width of the search that finds the ball (0 = the index's
 * default); every neighbour of an element found inside the ball is then
 * examined, so the whole ball is found as long as the beam reaches it --
 * with ef at least the number of elements, the answer is exact. The recall
 * against an exact scan on Fashion-MNIST is in docs/BENCHMARKS.md.
 *
 * Errors: HNSWC_ERR_NULL, HNSWC_ERR_INVALID (radius NaN or negative, ef
 * above 2^31), HNSWC_ERR_NONFINITE (query), HNSWC_ERR_NOMEM (result->count
 * is then 0; the buffers stay the caller's to free). [reader]
 */
HNSWC_API hnswc_status hnswc_search_range(const hnswc_index *index, const float *query,
                                          float radius, size_t ef, hnswc_filter_fn filter,
                                          void *user_data, hnswc_range_result *result);

/* Frees the buffers of a range result and zeroes it. NULL is a no-op. */
HNSWC_API void hnswc_range_result_free(hnswc_range_result *result);

/* ------------------------------------------------------------------------
 * Label sets: the filter "only these labels"
 *
 * The most common filter, in one place for every caller: the allowed labels
 * are sorted once, then each call of the filter is a binary search (no
 * allocation, safe from any number of search threads at once).
 *
 *   uint64_t allowed[] = {7, 3, 42, 3};
 *   hnswc_labelset set;
 *   hnswc_labelset_init(&set, allowed, 4);   // sorts allowed: {3, 7, 42}
 *   hnswc_search(ix, q, 10, 0, hnswc_labelset_filter, &set, labels, dists, &found);
 * ------------------------------------------------------------------------ */

typedef struct hnswc_labelset {
    const uint64_t *labels; /* ascending, distinct; the caller's array      */
    size_t n;               /* number of distinct labels                    */
} hnswc_labelset;

/*
 * Sorts labels[0 .. n-1] in place (ascending, duplicates moved out of the
 * first set->n entries) and makes *set refer to them. The array stays the
 * caller's: it must outlive the set and not change while the set is used.
 * n == 0 makes an empty set, which allows nothing (labels may then be NULL).
 * Errors: HNSWC_ERR_NULL (set NULL, or labels NULL with n > 0; *set is then
 * empty). Thread safe (touches only its arguments).
 */
HNSWC_API hnswc_status hnswc_labelset_init(hnswc_labelset *set, uint64_t *labels, size_t n);

/*
 * An hnswc_filter_fn: non-zero if `label` is in the hnswc_labelset that
 * `labelset` points to (0 for NULL). Pass the set as the filter's user_data.
 * Reads the set only: any number of threads at once.
 */
HNSWC_API int hnswc_labelset_filter(uint64_t label, void *labelset);

/* ------------------------------------------------------------------------
 * Elements by label
 *
 * Flat: the internal order of hnswc_get_labels is the order of the rows,
 * which hnswc_remove changes (the last row moves into the hole).
 * ------------------------------------------------------------------------ */

/*
 * Copies the stored vector of `label` into out (dim floats). For the cosine
 * metric this is the normalised vector, as in hnswlib. Elements marked
 * deleted can still be read. SQ8_ONLY (trained): the DECODED vector, an
 * approximation of the one added (hnswc_storage says how close).
 * Errors: HNSWC_ERR_NULL, HNSWC_ERR_NOT_FOUND.
 * [reader]
 */
HNSWC_API hnswc_status hnswc_get_vector(const hnswc_index *index, uint64_t label, float *out);

/* Sets *is_deleted to 1 if the label is marked deleted, else 0. [reader] */
HNSWC_API hnswc_status hnswc_is_deleted(const hnswc_index *index, uint64_t label,
                                        int *is_deleted);

/*
 * Writes the labels of all elements, live and deleted, into out (room for
 * `capacity` entries) in internal order and sets *n_written. If capacity is
 * too small, nothing is written, *n_written is set to the count needed and
 * HNSWC_ERR_INVALID is returned. [reader]
 */
HNSWC_API hnswc_status hnswc_get_labels(const hnswc_index *index, uint64_t *out,
                                        size_t capacity, size_t *n_written);

/* ------------------------------------------------------------------------
 * Tombstones
 *
 * A deleted element stays in the graph to keep it navigable but is never
 * returned by a search. It can be unmarked, or its slot can be taken over by
 * a new label (HNSWC_ADD_REPLACE_DELETED).
 * ------------------------------------------------------------------------ */

/* Errors: HNSWC_ERR_NOT_FOUND, HNSWC_ERR_DELETED (already deleted). [writer] */
HNSWC_API hnswc_status hnswc_mark_deleted(hnswc_index *index, uint64_t label);

/* Errors: HNSWC_ERR_NOT_FOUND, HNSWC_ERR_DELETED (not deleted). [writer] */
HNSWC_API hnswc_status hnswc_unmark_deleted(hnswc_index *index, uint64_t label);

/* ------------------------------------------------------------------------
 * Removal
 *
 * A removed element leaves the graph for good: every list that linked to it
 * is rebuilt from its other members and the removed element's own, with the
 * heuristic inserts use; the entry point moves if it was the removed
 * element; its label is free at once, and its slot (record, upper-layer
 * links) is reclaimed and then taken by later adds. Unlike a tombstone
 * (hnswc_mark_deleted), it costs searches nothing once reclaimed and cannot
 * be brought back.
 *
 * Slots are reclaimed in groups, because proving that no running search can
 * still reach a slot means waiting for the searches in flight (docs/
 * ARCHITECTURE.md, "Removal"): when enough removed slots are waiting
 * (1/64 of the index, at least 256), the removal that crossed the line
 * reclaims them all; hnswc_compact reclaims at once. Until then a removed
 * element is invisible to every search started after its removal returned,
 * and its label can be added again (into another slot).
 * ------------------------------------------------------------------------ */

/*
 * Removes the element with `label` for good, whether live or marked deleted.
 * Errors: HNSWC_ERR_NULL, HNSWC_ERR_NOT_FOUND (no element has the label:
 * never added, or removed already), HNSWC_ERR_NOMEM; nothing changes then.
 * No search started after this call returns finds the element.
 * Flat: the last row moves into the hole (hnswlib BFIndex's delete_vector);
 * there is no graph to repair and no slot to reclaim.
 *
 * [writer] Runs concurrently with searches, adds and other removes. It waits
 * only for adds that overwrite storage in place (hnswc_add's updates), and,
 * when it reclaims slots, for the searches and adds already running to end
 * (new ones wait meanwhile, as for an update).
 */
HNSWC_API hnswc_status hnswc_remove(hnswc_index *index, uint64_t label);

/*
 * Removes labels[0 .. n-1] as hnswc_remove does, all or nothing: if any label
 * is unknown (or already removed) or given twice, the call fails with
 * HNSWC_ERR_NOT_FOUND or HNSWC_ERR_INVALID and nothing is removed. A large
 * batch is repaired in one pass over the whole graph on num_threads threads
 * (0 = all cores), which is much cheaper than one removal at a time. [writer]
 */
HNSWC_API hnswc_status hnswc_remove_batch(hnswc_index *index, const uint64_t *labels, size_t n,
                                          unsigned num_threads);

/*
 * Turns every element marked deleted into a true removal, repairs the graph
 * in one pass on num_threads threads (0 = all cores) and reclaims every
 * removed slot now. *n_removed (may be NULL) is set to the number of
 * tombstones removed. An index saved afterwards holds neither tombstones nor
 * removed slots, so its file is smaller. Errors: HNSWC_ERR_NULL,
 * HNSWC_ERR_NOMEM (nothing removed). [writer]
 */
HNSWC_API hnswc_status hnswc_compact(hnswc_index *index, unsigned num_threads,
                                     size_t *n_removed);

/* ------------------------------------------------------------------------
 * Node order
 *
 * A search is bound by memory latency: each step reads the record of a
 * node it has not seen. Nodes added in the caller's order lie in memory in
 * that order, so the neighbours of a node are scattered over the whole
 * index. A relayout renumbers the nodes in breadth-first order of the
 * graph from the entry point (docs/ARCHITECTURE.md, "Node order"), so
 * that neighbours tend to share pages and cache sets; on Fashion-MNIST
 * that answers more queries per second (docs/BENCHMARKS.md).
 * ------------------------------------------------------------------------ */

/*
 * Relays out the nodes of a graph index in locality order. Nothing a caller
 * sees by label changes: labels, vectors, deletion marks, the graph itself
 * (which nodes link to which) and so every search result (labels and
 * distances) stay the same. What changes is the internal id of every node:
 * hnswc_node_id, hnswc_node_info / hnswc_node_links, traced searches and the
 * order of hnswc_get_labels and of a saved file answer for the new layout
 * from the moment it returns. Pending removals are carried over (their
 * slots are renumbered too); free slots go last.
 *
 * Memory, transiently: 8 bytes and one bit per slot, plus one record and
 * one vector (the records are permuted in place). Errors: HNSWC_ERR_NULL, HNSWC_ERR_NOMEM (nothing
 * changed). A flat index: HNSWC_OK, nothing to do (its rows are dense).
 * An index opened with HNSWC_OPEN_MMAP can be relaid out, but the file's
 * vectors it moves are copied into this process's memory (MAP_PRIVATE), so
 * it then holds what a loaded index holds; the automatic relayout skips
 * mapped indexes for that reason.
 *
 * Takes O(slots) time (a pass over every record; 260 ms for 60,000
 * Fashion-MNIST vectors). [writer] It waits for running searches, adds and
 * removals to end, and every other call waits while it runs.
 */
HNSWC_API hnswc_status hnswc_relayout(hnswc_index *index);

/*
 * Sets when the index is relaid out on its own (hnswc_relayout_policy).
 * Errors: HNSWC_ERR_NULL, HNSWC_ERR_INVALID (unknown policy). Flat: checked,
 * then without effect. [writer]
 */
HNSWC_API hnswc_status hnswc_set_relayout(hnswc_index *index, hnswc_relayout_policy policy);

/* ------------------------------------------------------------------------
 * Parameters, counts and statistics
 * ------------------------------------------------------------------------ */

typedef struct hnswc_info {
    uint32_t dim;
    hnswc_metric metric;
    uint32_t M;
    uint32_t ef_construction;
    uint32_t ef_search;      /* default ef of a search                        */
    uint64_t seed;
    uint64_t count;          /* elements stored, live + deleted (removed ones
                                are not stored)                               */
    uint64_t live_count;     /* elements a search can return                  */
    uint64_t deleted_count;  /* elements marked deleted                       */
    uint64_t capacity;       /* elements that fit before the next growth      */
    int32_t max_level;       /* top layer of the graph; -1 when empty         */
    uint64_t memory_bytes;   /* bytes allocated by the index                  */
    const char *simd;        /* distance kernels in use, see hnswc_simd_name  */
    hnswc_kind kind;         /* HNSW or FLAT                                  */
    hnswc_storage storage;   /* what the walk reads                           */
    int codes_trained;       /* SQ8, SQ8_ONLY: 1 once the quantiser is trained
                                (SQ8_ONLY: and the f32 vectors are gone)      */
    uint64_t codes_clipped;  /* SQ8, SQ8_ONLY: components saturated since
                                training                                      */
    uint64_t max_elements;   /* the limit on count; 0 when there is none      */
    uint64_t removed_slots;  /* slots of removed elements not taken again yet
                                (reclaimed, or waiting to be); flat: 0        */
    uint64_t pending_slots;  /* of those, still waiting to be reclaimed       */
    uint64_t removed_total;  /* elements removed since create/load            */
    uint64_t reused_total;   /* adds that took a removed element's slot       */
    uint64_t mapped_bytes;   /* hnswc_open(HNSWC_OPEN_MMAP): the file's vectors
                                searched in place, in the page cache that
                                processes share; not in memory_bytes (nor
                                are the pages a write copied, which become
                                this process's); 0 when not mapped           */
    hnswc_relayout_policy relayout; /* when the nodes are relaid out          */
    uint64_t relayouts;      /* relayouts since create/load (explicit and
                                automatic); flat: 0                           */
} hnswc_info;

/*
 * Fills *out. [reader] (counts are a consistent-enough snapshot under writes)
 * Flat: M, ef_construction, ef_search and seed are 0, max_level is -1, and
 * capacity is the rows reserved (kept by save and load; a file's is trusted
 * up to its rows plus the larger of as many again and 256 MiB of rows).
 */
HNSWC_API hnswc_status hnswc_get_info(const hnswc_index *index, hnswc_info *out);

/* Sets the default ef of searches (1 .. 2^31; above the element count it
 * costs no more than the element count). [writer]
 * Flat: checked, then without effect (every search is exact). */
HNSWC_API hnswc_status hnswc_set_ef(hnswc_index *index, size_t ef);

/*
 * Sets the limit on the elements stored (hnswc_options.max_elements; 0 for
 * none), as hnswlib's resize_index does: it moves the limit, the memory
 * grows by itself. Errors: HNSWC_ERR_INVALID if the index already holds
 * more than max_elements elements, or is flat (nothing changes). [writer]
 */
HNSWC_API hnswc_status hnswc_set_max_elements(hnswc_index *index, uint64_t max_elements);

/*
 * Makes room for at least `capacity` elements now, so that later adds do not
 * have to grow the index. Never shrinks and never moves existing elements.
 * [writer]
 */
HNSWC_API hnswc_status hnswc_reserve(hnswc_index *index, uint64_t capacity);

#define HNSWC_MAX_LEVELS 64

/* The shape and health of the graph, for tools such as `hnswc info`. */
typedef struct hnswc_graph_stats {
    uint64_t nodes;                       /* elements stored                      */
    uint64_t level_counts[HNSWC_MAX_LEVELS]; /* elements whose top layer is i     */
    uint32_t levels;                      /* max_level + 1                        */
    uint32_t degree0_min;                 /* out-degree on layer 0                */
    uint32_t degree0_max;
    double degree0_mean;
    uint64_t unreachable;                 /* layer-0 nodes not reachable from the
                                             entry point                          */
    uint64_t one_way_links;               /* layer-0 links a->b with no b->a      */
    uint64_t links_total;                 /* layer-0 links in all                 */
} hnswc_graph_stats;

/* Walks the whole graph (O(n * M)). [exclusive with writers]
 * Flat: HNSWC_ERR_INVALID (there is no graph). */
HNSWC_API hnswc_status hnswc_get_graph_stats(const hnswc_index *index, hnswc_graph_stats *out);

/* ------------------------------------------------------------------------
 * Looking inside: nodes, links and traced searches
 *
 * For tools that draw or debug the graph (hnswc.viz, `hnswc export`). A node
 * is named by its internal id, 0 .. count-1 (hnswc_info.count): the position
 * of its label in hnswc_get_labels' output. An id keeps its node for the
 * life of the index and across save and load; a label that takes over a
 * deleted slot (HNSWC_ADD_REPLACE_DELETED) takes over its id too.
 *
 * Flat: there is no graph; the four calls below return HNSWC_ERR_INVALID.
 * ------------------------------------------------------------------------ */

/* No node: the `from` of events that have none. Never a valid id. */
#define HNSWC_NO_NODE UINT32_MAX

/* The id of `label`'s node. Errors: HNSWC_ERR_NULL, HNSWC_ERR_NOT_FOUND.
 * [reader] */
HNSWC_API hnswc_status hnswc_node_id(const hnswc_index *index, uint64_t label, uint32_t *id);

typedef struct hnswc_node {
    uint64_t label;
    int32_t level;   /* top layer: the node has links on layers 0 .. level */
    int32_t deleted; /* 1 if marked deleted, else 0                        */
} hnswc_node;

/* What node `id` is. Errors: HNSWC_ERR_NULL, HNSWC_ERR_NOT_FOUND (no such
 * id, a node still being added, or a removed element). [reader] */
HNSWC_API hnswc_status hnswc_node_info(const hnswc_index *index, uint32_t id, hnswc_node *out);

/*
 * Copies the ids that node `id` links to on `layer` (0 .. its level) into
 * out, in stored order, and sets *n_links. Links are directed: b in a's list
 * does not put a in b's. Room for 2*M ids always suffices (layers above 0
 * hold at most M). With less room than the list needs, nothing is written,
 * *n_links is set to the count needed and HNSWC_ERR_INVALID is returned; a
 * layer outside 0 .. level is HNSWC_ERR_INVALID too.
 *
 * [reader] A list that a concurrent add is rewriting is read the way a
 * search reads it, word by word: the copy may mix the old and the new list,
 * and every id in it names a node.
 */
HNSWC_API hnswc_status hnswc_node_links(const hnswc_index *index, uint32_t id, int layer,
                                        uint32_t *out, size_t capacity, size_t *n_links);

/*
 * The events of a traced search, in the order they happen. A search starts
 * at the entry point on the top layer (ENTRY), walks greedily down the upper
 * layers -- EXPAND the current node, EVAL each of its neighbours, move to
 * any closer one (EVAL with HNSWC_TRACE_QUEUED) and repeat until none is
 * closer, then DESCEND a layer from there -- and on layer 0 runs a beam
 * search: the entry point enters the beam (ENTER); repeatedly the closest
 * unexpanded candidate is EXPANDed and its neighbours not yet visited are
 * EVALuated; those closer than the beam's worst (or all, while the beam has
 * fewer than ef) are queued as candidates and ENTER the beam, and a beam
 * over ef lets its worst LEAVE. The search STOPs when the closest candidate
 * is farther than the beam's worst; if instead it ran out of candidates
 * having missed some nodes, the results come from an EXACT scan.
 */
typedef enum hnswc_trace_kind {
    HNSWC_TRACE_ENTRY = 0,   /* node: the entry point; layer: the top layer       */
    HNSWC_TRACE_EXPAND = 1,  /* node's links on layer are read next               */
    HNSWC_TRACE_EVAL = 2,    /* node, a neighbour of `from`, is compared to the
                                query (on layer 0: its first visit); flags: QUEUED */
    HNSWC_TRACE_ENTER = 3,   /* node entered the beam (layer 0)                    */
    HNSWC_TRACE_LEAVE = 4,   /* node left the beam, pushed out by a closer one     */
    HNSWC_TRACE_DESCEND = 5, /* the search goes down to `layer`, starting at node  */
    HNSWC_TRACE_STOP = 6,    /* the beam search ended; count: nodes it visited;
                                flags: EXHAUSTED if it ran out of candidates,
                                else dist is the closest candidate left          */
    HNSWC_TRACE_EXACT = 7    /* the results come from an exact scan of count
                                elements instead (see hnswc_search)              */
} hnswc_trace_kind;

#define HNSWC_TRACE_QUEUED 1u    /* EVAL: became the current node (layers > 0) or
                                    a candidate (layer 0)                          */
#define HNSWC_TRACE_EXHAUSTED 1u /* STOP: no candidate was left                    */

typedef struct hnswc_trace_event {
    hnswc_trace_kind kind;
    int32_t layer;
    uint32_t node;  /* the node the event is about (an id), or HNSWC_NO_NODE   */
    uint32_t from;  /* EVAL: the node whose links were read; else HNSWC_NO_NODE */
    float dist;     /* distance from the query to node, exactly as a search
                       computes it (STOP: see above)                           */
    uint32_t flags;
    uint64_t count; /* STOP, EXACT; else 0                                     */
} hnswc_trace_event;

/* Receives each event of a traced search, on the searching thread. It must
 * not call into the index (the search holds its read lock). */
typedef void (*hnswc_trace_fn)(const hnswc_trace_event *event, void *trace_data);

/*
 * hnswc_search, reporting each step of the search to trace(event,
 * trace_data). The search is the same code as hnswc_search's, so it finds
 * the same results and visits the same nodes; the trace only adds the
 * calls (an untraced search pays nothing for them: docs/ARCHITECTURE.md).
 * trace may be NULL (then this is hnswc_search). Arguments and errors as
 * hnswc_search; no event is reported for a call rejected by validation.
 * [reader]
 */
HNSWC_API hnswc_status hnswc_search_traced(const hnswc_index *index, const float *query, size_t k,
                                           size_t ef, hnswc_filter_fn filter, void *user_data,
                                           hnswc_trace_fn trace, void *trace_data,
                                           uint64_t *labels, float *distances, size_t *n_found);

/* ------------------------------------------------------------------------
 * Persistence
 *
 * hnswc's own file format (docs/ARCHITECTURE.md): magic, format version, byte
 * order, every parameter, and a CRC-32C per section. Saving is atomic: the
 * index is written to a temporary file in the same directory, fsync'd and
 * renamed over `path`, so a crash or a full disk never damages a previous
 * file. Loading validates everything and rejects a truncated, corrupted or
 * foreign file with HNSWC_ERR_FORMAT, including parameters outside what
 * hnswc_create accepts (the message names the field and its range).
 *
 * Versions: a graph is saved as format version 4 (its vectors 64-byte
 * aligned in the file, for hnswc_open's mapped indexes), which hnswc
 * releases from before version 4 existed refuse ("format version 4");
 * files of versions 1 to 3 are still read, and saved again as version 4.
 *
 * The file names the kind of index it holds, and hnswc_load returns an index
 * of that kind (check hnswc_info.kind where it matters). hnswc_load also
 * reads the exact-index files of hnswc 0.1's Python BFIndex.save_index
 * ("HNSWCBF1"), as a flat index.
 * ------------------------------------------------------------------------ */

/*
 * Temporary files: a save killed before it finishes leaves its temporary
 * file, `path`.tmp.XXXXXX, behind. They do not accumulate: every save to
 * `path` first removes those left by saves to `path` that died -- only
 * files of that exact name shape, regular, owned by the calling user, and
 * not locked: a live saver holds an flock on its file, which the kernel
 * drops when the process dies, so no pid is trusted and concurrent savers
 * (threads or processes) never lose their file. One killed in the instant
 * between creating and locking its file is removed once a minute old.
 * Where flock does not work (some network file systems), see
 * docs/RELIABILITY.md.
 *
 * Errors: HNSWC_ERR_IO (with the system's reason: no space, permissions...;
 * the previous file is untouched and no temporary file stays),
 * HNSWC_ERR_NOMEM. [exclusive with writers]: searches may run during a save.
 * (Flat: [writer]; a save waits for a running add, and adds for the save.)
 */
HNSWC_API hnswc_status hnswc_save(const hnswc_index *index, const char *path);

/* Loads an index saved by hnswc_save. Thread safe. */
HNSWC_API hnswc_status hnswc_load(const char *path, hnswc_index **out);

/* Flags for hnswc_open. */
#define HNSWC_OPEN_MMAP 1u   /* map the file's vectors instead of reading them */
#define HNSWC_OPEN_VERIFY 2u /* with MMAP: check the vectors' checksum and
                                values at open too (reads every vector once) */

/*
 * Opens an index saved by hnswc_save, as hnswc_load does (flags 0: it is
 * hnswc_load) or, with HNSWC_OPEN_MMAP, IN PLACE: the file is mapped
 * privately and the vectors are searched where they are, so
 *   - opening costs what the metadata costs (parameters, labels, links:
 *     read, checked and copied as hnswc_load does), not the vectors;
 *   - vector pages come in from the page cache as searches touch them, and
 *     processes that open the same file share one copy of them;
 *   - results are identical to those of the loaded index, bit for bit.
 * A mapped index allows everything a loaded one does (adds, updates,
 * deletion marks, saves, also over its own file): a write to a page of the
 * file copies that page for this index first (copy on write, MAP_PRIVATE),
 * so the file never changes and other processes never see the write.
 * hnswc_info.mapped_bytes says how much is mapped.
 *
 * Checks: everything but the vectors is verified as hnswc_load verifies it
 * (lengths, checksums, ranges, links), so a truncated or hostile file is
 * refused with HNSWC_ERR_FORMAT and nothing is mapped. The vectors'
 * checksum and values are checked only with HNSWC_OPEN_VERIFY (which reads
 * them all); unverified, a damaged vector gives wrong distances, never a
 * crash. SQ8 indexes recompute their code rows from the vectors at open (as
 * hnswc_load does), which reads every vector: their opening is not faster.
 *
 * Speed: searches read the vectors through the page cache's own pages; the
 * mapping asks for huge pages, which the kernel gives where the page cache
 * holds the file in 2 MiB folios (as it does, on Linux 6.18 with ext4,
 * once the file was read from disk, and for a file just written by
 * hnswc_save, which writes 2 MiB blocks). On a file cached in small pages
 * (as copied by cp), searches are slower than on a loaded index (TLB
 * misses; docs/BENCHMARKS.md). The first add, update or removal after an
 * open (or a load) first counts the in-degrees of the graph, which writers
 * need (a pass over the links; about 6 ms for Fashion-MNIST's 60,000).
 *
 * Limits: the file must not be truncated or rewritten in place while it is
 * open: touching a page past a new end raises SIGBUS, and unwritten pages
 * show the new bytes. hnswc_save never does either (it renames a new file
 * over the old one; the old stays readable for whoever maps it). A flat
 * index (and hnswc 0.1 BFIndex) file is loaded as hnswc_load loads it
 * (mapped_bytes 0): its rows are not mapped yet; so is an SQ8_ONLY file
 * (a trained one holds no f32 vectors to map, only codes). Address space is reserved
 * for up to twice the file's vectors (new vectors of the last chunk go in
 * place).
 *
 * Errors: HNSWC_ERR_NULL, HNSWC_ERR_INVALID (unknown flag), HNSWC_ERR_IO
 * (cannot open or map the file), HNSWC_ERR_FORMAT, HNSWC_ERR_NOMEM.
 * Thread safe.
 */
HNSWC_API hnswc_status hnswc_open(const char *path, unsigned flags, hnswc_index **out);

/*
 * The same format in memory (for pickling and for embedding). hnswc_serialize
 * returns a buffer from malloc() that the caller frees with hnswc_buffer_free.
 * [exclusive with writers]
 */
HNSWC_API hnswc_status hnswc_serialize(const hnswc_index *index, void **buffer, size_t *size);
HNSWC_API void hnswc_buffer_free(void *buffer);
HNSWC_API hnswc_status hnswc_deserialize(const void *buffer, size_t size, hnswc_index **out);

/*
 * Loads an index file written by hnswlib's saveIndex (hnswlib 0.6 to 0.8).
 * hnswlib's files do not record the metric, so the caller gives it; the
 * dimension is read from the file. Links, levels, labels and deleted marks
 * are kept, so search results match hnswlib's. A file of hnswlib's exact
 * index (BruteforceSearch, Python's hnswlib.BFIndex) loads as a flat index
 * whose capacity is the file's max_elements. Thread safe.
 */
HNSWC_API hnswc_status hnswc_load_hnswlib(const char *path, hnswc_metric metric,
                                          hnswc_index **out);

/*
 * Which loader reads an index file: hnswc_probe_file looks at its first 96
 * bytes only (cheap), so a tool can say "this is an hnswlib file" instead
 * of "wrong magic number". The loaders still check everything: a damaged
 * or truncated file is still of its kind, and its loader says what is wrong.
 */
typedef enum hnswc_file_kind {
    HNSWC_FILE_UNKNOWN = 0, /* neither format (or too short to tell)           */
    HNSWC_FILE_HNSWC = 1,   /* starts with hnswc's magic (or hnswc 0.1 BFIndex's,
                               "HNSWCBF1"): hnswc_load                         */
    HNSWC_FILE_HNSWLIB = 2  /* an hnswlib saveIndex header (hnswlib has no magic:
                               its fields agree), or an hnswlib BFIndex file
                               (its header agrees with the file's size exactly):
                               hnswc_load_hnswlib                             */
} hnswc_file_kind;

typedef struct hnswc_file_info {
    hnswc_file_kind kind;
    /* For HNSWC_FILE_HNSWLIB, what its header says (0 otherwise; hnswc's
     * files are described by hnswc_get_info once loaded). hnswlib files do
     * not record the metric: the caller must know it. */
    uint32_t dim;
    uint64_t count;        /* elements stored, deleted ones included         */
    uint64_t max_elements; /* hnswlib's max_elements when it was saved       */
    uint32_t M;            /* 0 for an hnswlib BFIndex (exact index) file:
                              hnswc_load_hnswlib returns a flat index        */
    uint32_t ef_construction;
} hnswc_file_info;

/*
 * Fills *out with the kind of the file at `path`. A file of neither kind is
 * not an error (kind HNSWC_FILE_UNKNOWN). Errors: HNSWC_ERR_NULL,
 * HNSWC_ERR_IO (cannot open or read it, or not a regular file). Thread safe.
 */
HNSWC_API hnswc_status hnswc_probe_file(const char *path, hnswc_file_info *out);

/* ------------------------------------------------------------------------
 * Distance kernels
 * ------------------------------------------------------------------------ */

/*
 * The instruction set of the distance kernels chosen at run time for this
 * CPU: "avx512", "avx2", "sse2", "neon" or "scalar". The choice can be
 * lowered (never raised past what the CPU has) with the environment variable
 * HNSWC_SIMD set to one of those names, read once. Thread safe.
 */
HNSWC_API const char *hnswc_simd_name(void);

/*
 * The distance between two dim-vectors under `metric`, exactly as the index
 * computes it (for cosine, both are normalised first). Thread safe.
 */
HNSWC_API hnswc_status hnswc_distance(hnswc_metric metric, const float *a, const float *b,
                                      size_t dim, float *out);

#ifdef __cplusplus
}
#endif

#endif /* HNSWC_H */
