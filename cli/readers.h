/*
 * readers.h -- loading vector files of every format the tool accepts into
 * one in-memory shape: n rows of dim float32, row after row.
 *
 * Formats:
 *   fvecs   per row: int32 dim (little-endian), dim float32
 *   bvecs   per row: int32 dim (little-endian), dim uint8
 *   npy     NumPy .npy v1-v3, dtype float32 ('<f4', '>f4'), float64 ('<f8',
 *           '>f8', NumPy's default) or uint8 ('|u1'), C order, shape (n, dim)
 *   hdf5    a 2-D float or uint8 dataset of an HDF5 file (ann-benchmarks
 *           files: "train", "test", "neighbors"); only when the tool is
 *           built with HDF5 (cli/cli.mk), else a clear error
 *   idx     MNIST / Fashion-MNIST idx files: magic 00 00 08 03 (uint8, 3-D,
 *           n x rows x cols -> n x rows*cols), also 2-D and float32 (0x0D)
 *   text    one vector per line, numbers separated by blanks or commas;
 *           empty lines and lines starting with '#' are skipped
 * fvecs, bvecs, npy, idx and text files may also be gzip-compressed (when
 * the tool is built with zlib, else a clear error).
 *
 * Every read is bounds-checked: a short, empty or malformed file, a header
 * that does not match the file size, rows of different dimensions, or a
 * number that is not finite each fail with one message naming the file.
 * uint8 values convert to float exactly (0 .. 255); float64 values are
 * rounded to float32, and one beyond float32's range (about 3.4e38) fails.
 *
 * The code: cli/readers/, one file per format (reader.h lists them).
 *
 * Thread safety: call from the main thread only (errors go through
 * cli_set_error).
 */
#ifndef HNSWC_CLI_READERS_H
#define HNSWC_CLI_READERS_H

#include <stddef.h>
#include <stdint.h>

#include "hnswc.h"

typedef enum input_format {
    FMT_AUTO = 0, /* by file name, then by the first bytes */
    FMT_FVECS,
    FMT_BVECS,
    FMT_NPY,
    FMT_HDF5,
    FMT_IDX,
    FMT_TEXT
} input_format;

typedef enum source_type { SRC_FLOAT32 = 0, SRC_UINT8 = 1, SRC_FLOAT64 = 2 } source_type;

/* "float32", "uint8", "float64". */
const char *source_type_name(source_type t);

typedef struct dataset {
    size_t n;           /* rows                                        */
    size_t dim;         /* floats per row, 1 .. 65536                  */
    float *data;        /* n * dim floats, owned (free with dataset_free) */
    source_type source; /* element type in the file                    */
    input_format format;
} dataset;

/* Where the HDF5 reader looks, and which format to assume. */
typedef struct read_options {
    input_format format;   /* FMT_AUTO to detect                           */
    const char *hdf5_name; /* dataset inside an HDF5 file ("train", "test") */
} read_options;

/*
 * Reads `path` ("-" reads text from standard input) into *out. On failure
 * *out is left empty and the error is recorded. The result holds at least
 * one row.
 */
int dataset_read(const char *path, const read_options *options, dataset *out);

/* Frees the data; the struct may be reused. */
void dataset_free(dataset *d);

/* Keeps only the first n rows (n <= d->n). */
void dataset_truncate(dataset *d, size_t n);

/* "fvecs", "npy", ...; and the reverse (for --input-format). */
const char *input_format_name(input_format f);
int input_format_parse(const char *s, input_format *out);

/* The format `path` would be read as (after detection); -1 on error. */
int dataset_detect(const char *path, input_format *out);

/*
 * The metric named by an HDF5 file's "distance" attribute (ann-benchmarks:
 * "euclidean" -> L2, "angular" -> cosine, "dot"/"ip" -> IP).
 * Returns 1 and sets *out if found and known, 0 if absent or unknown,
 * -1 on error (and always -1, with the message, in a build without HDF5).
 */
int hdf5_read_metric(const char *path, hnswc_metric *out);

/*
 * Reads a 2-D integer dataset (ann-benchmarks "neighbors": row i holds the
 * 0-based base rows closest to query i). Returns 1 with *rows x *cols values
 * in *out (malloc'd) if present, 0 if the file has no such dataset, -1 on
 * error (negative entries included; always, in a build without HDF5).
 */
int hdf5_read_neighbors(const char *path, const char *name, size_t *rows, size_t *cols,
                        uint64_t **out);

#endif /* HNSWC_CLI_READERS_H */
