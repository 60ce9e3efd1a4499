/*
 * fuzz_reader.c -- libFuzzer harness for the command-line tool's vector
 * file readers (cli/readers.h), one binary per format: the build compiles
 * this file with -DFZ_FORMAT=FMT_FVECS, FMT_NPY, ... (FMT_AUTO detects the
 * format from the contents, as the tool does for a file without a known
 * extension). Compressed inputs (gzip) reach the same readers.
 *
 * A rejected file must leave a message (cli_error) and an empty dataset. An
 * accepted one must hold 1 .. 65536 finite floats per row and at least one
 * row, and is then indexed the way `hnswc build` would: the first rows are
 * added, searched, and each row's own vector must come back at distance 0
 * from an exact L2 search.
 *
 * For HDF5, the two other readers of such files (the metric attribute and
 * the ground-truth "neighbors" dataset) run on every input too.
 */
#include "fuzz_util.h"
#include "readers.h"

/* The CLI's last error message (declared here rather than through the CLI's
 * error header, whose name is not part of the readers' interface). */
const char *cli_error(void);

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef FZ_FORMAT
#error "compile with -DFZ_FORMAT=FMT_... (and -DFZ_IS_HDF5=1 for FMT_HDF5)"
#endif

#define FZ_ROWS 32 /* rows indexed per accepted input */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void index_rows(const dataset *d) {
    size_t n = d->n < FZ_ROWS ? d->n : FZ_ROWS;
    hnswc_options o = {0};
    o.dim = (uint32_t)d->dim;
    o.M = 4;
    o.ef_construction = 16;
    o.capacity = n;
    hnswc_index *ix = NULL;
    hnswc_status st = hnswc_create(&o, &ix);
    fz_check(st == HNSWC_OK, "hnswc_create(dim %zu) failed: %s", d->dim, hnswc_errmsg(NULL));
    uint64_t labels[FZ_ROWS];
    for (size_t i = 0; i < n; i++)
        labels[i] = i;
    size_t added = 0;
    st = hnswc_add_batch(ix, d->data, labels, n, 0, 1, &added);
    fz_check(st == HNSWC_OK && added == n, "adding %zu rows read from the file failed: %s", n,
             hnswc_errmsg(NULL));
    for (size_t i = 0; i < n; i++) {
        const float *row = d->data + i * d->dim;
        uint64_t l;
        float dist;
        size_t found = 0;
        fz_check(hnswc_search_exact(ix, row, 1, NULL, NULL, &l, &dist, &found) == HNSWC_OK &&
                     found == 1 && dist == 0.0f,
                 "row %zu is not found at distance 0", i);
        fz_check(hnswc_search(ix, row, 1, 0, NULL, NULL, &l, &dist, &found) == HNSWC_OK &&
                     found == 1,
                 "row %zu: search failed", i);
    }
    hnswc_free(ix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_input_file(data, size);
    read_options ro = {FZ_FORMAT, "train"};
    dataset d;
    memset(&d, 0xa5, sizeof d); /* must be reset */
    int accepted = dataset_read(path, &ro, &d) == 0;
    fz_count(accepted);
    if (!accepted) {
        fz_check(cli_error()[0] != '\0', "a rejected file left no message");
        fz_check(d.data == NULL && d.n == 0, "a rejected file left a dataset behind");
    } else {
        fz_check(d.n >= 1 && d.dim >= 1 && d.dim <= 65536 && d.data != NULL,
                 "accepted a dataset of %zu rows of dim %zu", d.n, d.dim);
        for (size_t i = 0; i < d.n * d.dim; i++)
            fz_check(isfinite(d.data[i]), "accepted a non-finite value at %zu", i);
        index_rows(&d);
        dataset_free(&d);
    }
#if FZ_IS_HDF5 /* (FZ_FORMAT is an enum constant, which #if cannot compare) */
    hnswc_metric m;
    int r = hdf5_read_metric(path, &m);
    fz_check(r >= -1 && r <= 1, "hdf5_read_metric returned %d", r);
    if (r == 1)
        fz_check((unsigned)m <= HNSWC_METRIC_COSINE, "unknown metric %d", (int)m);
    size_t rows = 0, cols = 0;
    uint64_t *nb = NULL;
    r = hdf5_read_neighbors(path, "neighbors", &rows, &cols, &nb);
    fz_check(r >= -1 && r <= 1, "hdf5_read_neighbors returned %d", r);
    if (r == 1)
        fz_check(nb != NULL || rows * cols == 0, "neighbors accepted without data");
    free(nb);
#endif
    return 0;
}
