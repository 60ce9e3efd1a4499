/*
 * testutil.h -- helpers shared by the cmocka tests in tests/c/.
 *
 * Everything here is written against the public header only; the point of
 * the tests is to check the library from the outside. The ground truth for
 * recall is a plain brute-force loop in double precision (tu_exact_dist),
 * deliberately independent of the library's own kernels and of
 * hnswc_search_exact.
 *
 * These helpers call cmocka's assert macros, so they must only be called from
 * the thread running the test (cmocka is not thread safe).
 */
#ifndef HNSWC_TESTUTIL_H
#define HNSWC_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "hnswc.h"

/* ------------------------------------------------------------------------
 * Random numbers: a small deterministic generator (splitmix64), so that
 * every run of a test sees the same data.
 * ------------------------------------------------------------------------ */

typedef struct tu_rng {
    uint64_t state;
} tu_rng;

tu_rng tu_rng_make(uint64_t seed);
uint64_t tu_next(tu_rng *r);
/* Uniform in [0, 1). */
double tu_uniform(tu_rng *r);
/* n floats uniform in [lo, hi). Returns a malloc'd array (never NULL). */
float *tu_random_vectors(tu_rng *r, size_t n, size_t dim, float lo, float hi);

/* malloc that fails the test instead of returning NULL. */
void *tu_xmalloc(size_t size);
void *tu_xcalloc(size_t n, size_t size);

/* ------------------------------------------------------------------------
 * Scale: sanitizer runs set HNSWC_TEST_SCALE (e.g. 0.2) to shrink data
 * sizes; the checks stay the same.
 * ------------------------------------------------------------------------ */

double tu_scale(void);
/* n * scale, but never less than min (nor more than n). */
size_t tu_scaled(size_t n, size_t min);

/* ------------------------------------------------------------------------
 * Fashion-MNIST (idx3, already decompressed by the make rule).
 * ------------------------------------------------------------------------ */

/*
 * Reads up to max_n images from the idx3 file named by environment variable
 * env_var (HNSWC_FMNIST_TRAIN or HNSWC_FMNIST_TEST), as floats 0..255.
 * FAILS the test (never skips) if the variable is unset or the file missing
 * or malformed. Returns a malloc'd n x dim array.
 */
float *tu_load_fmnist(const char *env_var, size_t max_n, size_t *n, size_t *dim);

/* The Fashion-MNIST fixture of a test file's group: up to max_train
 * training images (HNSWC_FMNIST_TRAIN) and max_test queries
 * (HNSWC_FMNIST_TEST) of the same dimension; tu_fmnist_free releases both. */
typedef struct tu_fmnist {
    float *data, *queries;
    size_t n, nq, dim;
} tu_fmnist;
void tu_fmnist_load(tu_fmnist *f, size_t max_train, size_t max_test);
void tu_fmnist_free(tu_fmnist *f);

/* ------------------------------------------------------------------------
 * Exact ground truth.
 * ------------------------------------------------------------------------ */

/* The distance as hnswlib defines it, in double, by a plain loop. */
double tu_exact_dist(hnswc_metric metric, const float *a, const float *b, size_t dim);

/*
 * A data set with labels: row i has label tu_label_of(i). Labels are made
 * different from row numbers so that a library confusing its internal ids
 * with labels is caught.
 */
static inline uint64_t tu_label_of(size_t row) { return 1000003u + (uint64_t)row * 7u; }
/* The row of a label, or SIZE_MAX if it is not one of ours. */
size_t tu_row_of(uint64_t label, size_t n);

/* Filter for brute force: row -> allowed? NULL allows all. */
typedef int (*tu_row_filter)(size_t row, void *user);

/*
 * Brute force k nearest rows of query among data[0..n) (rows where
 * row_ok(row) and (deleted == NULL || !deleted[row])): fills out_rows and
 * out_dists (k entries, ascending) and returns how many were found.
 */
size_t tu_brute_knn(hnswc_metric metric, const float *data, size_t n, size_t dim,
                    const unsigned char *deleted, tu_row_filter row_ok, void *user,
                    const float *query, size_t k, size_t *out_rows, double *out_dists);

/* Relative tolerance of a distance compared with the exact one. */
int tu_dist_close(double got, double exact);

/*
 * Checks one search result against the truth for a query:
 *   - the labels are ours, distinct, allowed (row_ok) and not deleted;
 *   - each distance equals the exact distance of that label's vector;
 *   - distances ascend.
 * Returns the number of hits: returned rows whose exact distance is within
 * the true k nearest (ties at the k-th distance count as hits). Fails the
 * test on any violation.
 */
size_t tu_check_result(hnswc_metric metric, const float *data, size_t n, size_t dim,
                       const unsigned char *deleted, tu_row_filter row_ok, void *user,
                       const float *query, size_t k, const uint64_t *labels,
                       const float *dists, size_t n_found, size_t true_found,
                       const double *true_dists);

/* ------------------------------------------------------------------------
 * Building indexes.
 * ------------------------------------------------------------------------ */

/* Creates an index (fails the test if it cannot). */
hnswc_index *tu_create(uint32_t dim, hnswc_metric metric, uint32_t M, uint32_t efc,
                       uint64_t seed, uint64_t capacity);
/* Creates an index of the given storage, every other option at its
 * default (fails the test if it cannot). */
hnswc_index *tu_create_storage(uint32_t dim, hnswc_metric metric, hnswc_storage storage);
/* An L2 index (M, ef_construction efc) holding n random vectors of dim
 * components in [-1, 1) from seed, under tu_label_of(row). */
hnswc_index *tu_build_random(size_t n, uint32_t dim, uint32_t M, uint32_t efc, uint64_t seed);
/* Adds rows [0, n) of data under tu_label_of(row) with add_batch. */
void tu_add_rows(hnswc_index *ix, const float *data, size_t n, size_t dim, unsigned threads);
uint64_t tu_count(const hnswc_index *ix);
/* Opens path with hnswc_open(HNSWC_OPEN_MMAP | flags) (fails the test if it
 * cannot). */
hnswc_index *tu_open_mapped(const char *path, unsigned flags);
/* Asserts that a and b give the same k results, bit for bit (count, labels,
 * distances), for each of the nq queries (dim floats each) at this ef. */
void tu_assert_same_search(const hnswc_index *a, const hnswc_index *b, const float *queries,
                           size_t nq, size_t dim, size_t k, size_t ef);

/* Asserts that status == expect and that hnswc_errmsg is non-empty. */
#define tu_expect_err(call, expect)                                                    \
    do {                                                                               \
        hnswc_status st_ = (call);                                                     \
        if (st_ != (expect))                                                           \
            fail_msg("%s:%d: %s returned %d (%s), expected %d (%s)", __FILE__,         \
                     __LINE__, #call, (int)st_, hnswc_status_string(st_), (int)(expect), \
                     hnswc_status_string(expect));                                     \
        const char *m_ = hnswc_errmsg(NULL);                                           \
        if (m_ == NULL || m_[0] == '\0')                                               \
            fail_msg("%s:%d: %s failed but hnswc_errmsg is empty", __FILE__, __LINE__, \
                     #call);                                                           \
    } while (0)

/* Asserts that a call returns HNSWC_OK, printing the message if not. */
#define tu_ok(call)                                                                    \
    do {                                                                               \
        hnswc_status st_ = (call);                                                     \
        if (st_ != HNSWC_OK)                                                           \
            fail_msg("%s:%d: %s returned %d (%s): %s", __FILE__, __LINE__, #call,      \
                     (int)st_, hnswc_status_string(st_), hnswc_errmsg(NULL));          \
    } while (0)

/* ------------------------------------------------------------------------
 * Files.
 * ------------------------------------------------------------------------ */

/* A fresh empty directory under $TMPDIR (or /tmp); malloc'd path. */
char *tu_mkdtemp(void);
/* Removes a directory made by tu_mkdtemp and the plain files in it; frees path. */
void tu_rmdir(char *dir);
/* dir "/" name, malloc'd. */
char *tu_path(const char *dir, const char *name);
/* Whole file into a malloc'd buffer (exactly size bytes, or 1 if empty); NULL if unreadable. */
unsigned char *tu_read_file(const char *path, size_t *size);
/* Writes a file; fails the test on error. */
void tu_write_file(const char *path, const void *data, size_t size);
/* Names of the entries in dir (excluding . and ..), count returned. */
size_t tu_dir_entries(const char *dir, char names[][256], size_t max);
int tu_exists(const char *path);

/* ------------------------------------------------------------------------
 * hnswc's file layout (docs/ARCHITECTURE.md), for structural tests of the
 * loaders:
 *   header 24 bytes: magic[8], u32 version, u32 byte-order mark,
 *                    u32 section count, u32 CRC-32C of the 20 bytes before;
 *   sections: u32 tag, u32 reserved, u64 payload length, payload,
 *             u32 CRC-32C of the payload.
 * Integers in host order (the byte-order mark says which).
 * ------------------------------------------------------------------------ */

/* The index serialized (hnswc_serialize) into a buffer of exactly *size
 * bytes from our own malloc, so that ASan catches a loader reading past its
 * end; the caller frees it. */
unsigned char *tu_serialized(const hnswc_index *ix, size_t *size);

/* CRC-32C, bit by bit: slow and obviously right. */
uint32_t tu_crc32c(const unsigned char *p, size_t n);
/* CRC-32 (IEEE, zlib's), the same way: hnswc 0.1's BFIndex files. */
uint32_t tu_crc32_ieee(const unsigned char *p, size_t n);

typedef struct tu_section {
    char tag[5];
    size_t head;    /* offset of the section header */
    size_t payload; /* offset of the payload        */
    size_t len;     /* payload length               */
} tu_section;

/* Splits a valid file into its sections; fails the test if it cannot. */
size_t tu_parse_sections(const unsigned char *b, size_t size, tu_section *out, size_t max);
/* The section with that tag; fails the test if there is none. */
const tu_section *tu_find_section(const tu_section *secs, size_t n, const char *tag);
/* Recomputes the header's and every section's CRC after a change. */
void tu_fix_crcs(unsigned char *b, const tu_section *secs, size_t n);
/* Format version 4's VECS (docs/ARCHITECTURE.md, "File format"): the file
 * offset of the first row (the payload's start rounded up to 64) and the
 * bytes of a row of dim floats (dim * 4 rounded up to 64, or below 64 to
 * the next power of two). */
size_t tu_vecs_first(const tu_section *vecs);
size_t tu_vecs_row(uint32_t dim);
/* A graph file of version 4 (b, size; vectors of dim floats) rewritten as
 * an older version -- 1 (f32, no limit), 2 (SQ8, no limit) or 3 -- as
 * older libraries wrote them: PARM without max_elements below 3 (it must
 * be 0), VECS unpadded, checksums right. Malloc'd; its size in *out_size. */
unsigned char *tu_downgrade(const unsigned char *b, size_t size, uint32_t dim, uint32_t version,
                            size_t *out_size);
/* Loads b from memory and (if file is not NULL) from that file, and opens
 * that file in place with HNSWC_OPEN_VERIFY; all must return `expect`, and
 * a failure must leave *out NULL with a message. */
void tu_expect_load(const unsigned char *b, size_t size, const char *file, hnswc_status expect,
                    const char *what);


/* ------------------------------------------------------------------------
 * Failures seen by worker threads (cmocka's checks are not thread safe):
 * tu_record counts them and keeps the first message; tu_assert_no_failures,
 * on the test's own thread after the workers joined, fails with them.
 * ------------------------------------------------------------------------ */
void tu_record(const char *fmt, ...);
void tu_assert_no_failures(void);

/* A library call in a worker thread that must return HNSWC_OK. */
#define TU_WCHECK(call)                                                                \
    do {                                                                               \
        hnswc_status st_ = (call);                                                     \
        if (st_ != HNSWC_OK)                                                           \
            tu_record("%s:%d: %s: %s (%s)", __FILE__, __LINE__, #call,                 \
                      hnswc_status_string(st_), hnswc_errmsg(NULL));                   \
    } while (0)

#endif /* HNSWC_TESTUTIL_H */
