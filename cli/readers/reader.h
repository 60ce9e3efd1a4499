/*
 * reader.h -- what the per-format readers in cli/readers/ share: a byte
 * source (a plain or gzip file, or standard input), element decoding, and
 * the reader of a row-major matrix that follows a header. Private to
 * cli/readers/; the commands use ../readers.h.
 *
 * Each format lives in its own file and has one entry point below:
 *   vecs.c   fvecs and bvecs          npy.c    NumPy .npy
 *   idx.c    MNIST idx                text.c   one vector per line
 *   hdf5.c   ann-benchmarks HDF5 (compiled in only with HDF5, see cli.mk)
 * dataset.c detects the format, dispatches, and checks the result.
 *
 * Error convention: errors.h (0 / -1 with the message recorded). Messages
 * name the file. Main thread only.
 */
#ifndef HNSWC_CLI_READERS_READER_H
#define HNSWC_CLI_READERS_READER_H

#include <stddef.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

#include "readers.h"

/* Largest dimension a file may declare: the library's limit. */
#define MAX_DIM 65536u

/* First allocation for data of unknown size (compressed files, pipes). */
#define GROW_START_BYTES (16u << 20)

/* ------------------------------------------------------------------------
 * Byte source (source.c)
 *
 * Reads through zlib when the tool is built with it (plain files pass
 * through unchanged, so every format may also come gzip-compressed);
 * without zlib, plain reads, and a gzip file is refused with a message
 * saying so. When a file is plain, its size is known up front and readers
 * check every header against it before allocating; when it is compressed
 * (or a pipe), buffers grow as data actually arrives, so a corrupted header
 * promising terabytes fails as "truncated" instead of exhausting memory.
 * ------------------------------------------------------------------------ */

typedef struct bsrc {
    void *gz;          /* zlib's gzFile when built with zlib, else NULL */
    int fd;            /* the descriptor read without zlib              */
    const char *path;  /* for messages                                  */
    int known_size;    /* plain regular file: size is exact             */
    uint64_t size;     /* bytes in the file when known_size             */
    uint64_t consumed; /* bytes delivered so far                        */
} bsrc;

/* Opens path read-only and rejects directories; on success *fd is open. */
int rd_open_file(const char *path, int *fd, struct stat *st);

/* Opens path ("-": a duplicate of standard input) for reading. */
int bsrc_open(bsrc *s, const char *path);
void bsrc_close(bsrc *s);

/*
 * Reads up to n bytes: returns how many (fewer only at the end of the data),
 * or -1 on a read error or a damaged compressed stream.
 */
long long bsrc_read_some(bsrc *s, void *buf, size_t n);

/* Reads exactly n bytes of `what`, or fails naming the file as truncated
 * (or empty, when nothing at all was there). */
int bsrc_read(bsrc *s, void *buf, size_t n, const char *what);

/* Fails if any byte follows the data read so far. */
int bsrc_expect_end(bsrc *s);

/* ------------------------------------------------------------------------
 * Elements and matrices (source.c)
 * ------------------------------------------------------------------------ */

/* How an element is stored in a file. */
typedef enum elem_kind { EL_U8, EL_F32LE, EL_F32BE, EL_F64LE, EL_F64BE } elem_kind;

size_t rd_elem_size(elem_kind k);

/*
 * Decodes `count` stored elements into floats. float64 values that are
 * finite but beyond float32's range cannot be converted (the conversion
 * would be undefined): returns the index of the first such element, or
 * `count` when all converted. NaN and infinities pass through, for
 * dataset_read's finiteness check to name.
 */
size_t rd_decode(const unsigned char *src, size_t count, elem_kind k, float *dst,
                 double *bad_value);

/*
 * The float32 of a float64 value: 0, or -1 if it is finite but beyond
 * float32's range. NaN and infinities convert as they are.
 */
static inline int rd_narrow(double v, float *out)
{
    if (isfinite(v) && fabs(v) > FLT_MAX)
        return -1; /* (float)v would be undefined behaviour */
    *out = (float)v;
    return 0;
}

/* Records "<path>: vector R, component C is V, outside the float32 range"
 * for element `element` (counted from the first) of rows of dim values. */
void rd_range_error(const char *path, size_t element, size_t dim, double value);

/* The dataset's record of the file's element type. */
source_type rd_source_of(elem_kind k);

/* Grows *data to hold `rows` rows of dim floats. */
int rd_grow_rows(float **data, size_t rows, size_t dim, const char *path);

/*
 * The buffers of a reader: `scratch_bytes` of raw file bytes, and room for
 * `rows` rows of dim floats. Returns 0, or -1 with both freed and the error
 * recorded.
 */
int rd_alloc_buffers(const char *path, size_t scratch_bytes, size_t rows, size_t dim,
                     unsigned char **scratch, float **data);

/* Hands a reader's result to *out, which takes ownership of data. */
void rd_set_result(dataset *out, size_t n, size_t dim, float *data, source_type source);

/*
 * Reads the n x dim elements that follow a header (npy, idx) into out (data,
 * n, dim, source), and checks that nothing follows them.
 */
int rd_read_matrix(bsrc *s, size_t n, size_t dim, elem_kind kind, dataset *out);

/* ------------------------------------------------------------------------
 * The formats, one entry point each
 * ------------------------------------------------------------------------ */

/* fvecs (kind EL_F32LE) or bvecs (EL_U8). vecs.c */
int reader_vecs(bsrc *s, elem_kind kind, dataset *out);

/* NumPy .npy, float32, float64 or uint8. npy.c */
int reader_npy(bsrc *s, dataset *out);

/* MNIST idx, uint8 or float32. idx.c */
int reader_idx(bsrc *s, dataset *out);

/* Text, one vector per line. text.c */
int reader_text(bsrc *s, dataset *out);

/* Dataset `name` of an HDF5 file; without HDF5 support, an error saying so.
 * hdf5.c */
int reader_hdf5(const char *path, const char *name, dataset *out);

#endif /* HNSWC_CLI_READERS_READER_H */
