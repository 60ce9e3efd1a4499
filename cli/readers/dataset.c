/*
 * dataset.c -- the entry point of the readers (readers.h): format names,
 * format detection, dispatch to the reader of each format (one file each in
 * cli/readers/), and the checks every result gets.
 */
#include "reader.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "errors.h"

/* ------------------------------------------------------------------------
 * Format names and detection
 * ------------------------------------------------------------------------ */

static const char *const format_names[] = {"auto", "fvecs", "bvecs", "npy", "hdf5", "idx", "text"};

const char *source_type_name(source_type t)
{
    switch (t) {
    case SRC_FLOAT32: return "float32";
    case SRC_UINT8: return "uint8";
    case SRC_FLOAT64: return "float64";
    }
    return "?";
}

const char *input_format_name(input_format f)
{
    return (unsigned)f < sizeof format_names / sizeof format_names[0] ? format_names[f] : "?";
}

int input_format_parse(const char *s, input_format *out)
{
    for (size_t i = 0; i < sizeof format_names / sizeof format_names[0]; i++) {
        if (strcmp(s, format_names[i]) == 0) {
            *out = (input_format)i;
            return 0;
        }
    }
    cli_set_error("--input-format: expected auto, fvecs, bvecs, npy, hdf5, idx or text, got "
                  "'%s'",
                  s);
    return -1;
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t sl = strlen(suffix);
    return len >= sl && strncasecmp(s + len - sl, suffix, sl) == 0;
}

int dataset_detect(const char *path, input_format *out)
{
    if (strcmp(path, "-") == 0) {
        *out = FMT_TEXT;
        return 0;
    }
    /* By name first ("x.fvecs", "x.fvecs.gz", "train-images-idx3-ubyte.gz"). */
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    size_t len = strlen(base);
    if (ends_with(base, len, ".gz"))
        len -= 3;
    static const struct {
        const char *suffix;
        input_format f;
    } by_name[] = {{".fvecs", FMT_FVECS}, {".bvecs", FMT_BVECS}, {".npy", FMT_NPY},
                   {".hdf5", FMT_HDF5},   {".h5", FMT_HDF5},     {".he5", FMT_HDF5},
                   {".txt", FMT_TEXT},    {".csv", FMT_TEXT},    {".tsv", FMT_TEXT},
                   {"-ubyte", FMT_IDX},   {".ubyte", FMT_IDX},   {".idx", FMT_IDX}};
    for (size_t i = 0; i < sizeof by_name / sizeof by_name[0]; i++) {
        if (ends_with(base, len, by_name[i].suffix)) {
            *out = by_name[i].f;
            return 0;
        }
    }

    /* Then by the first bytes (decompressed if gzip). */
    bsrc s;
    if (bsrc_open(&s, path) != 0)
        return -1;
    unsigned char m[8] = {0};
    long long r = bsrc_read_some(&s, m, sizeof m);
    bsrc_close(&s);
    if (r < 0)
        return -1;
    if (r == 0) {
        cli_set_error("%s: the file is empty", path);
        return -1;
    }
    if (r >= 6 && memcmp(m, "\x93NUMPY", 6) == 0)
        *out = FMT_NPY;
    else if (r == 8 && memcmp(m, "\x89HDF\r\n\x1a\n", 8) == 0)
        *out = FMT_HDF5;
    else if (r >= 4 && m[0] == 0 && m[1] == 0 && (m[2] == 0x08 || m[2] == 0x0D) && m[3] >= 1 &&
             m[3] <= 4)
        *out = FMT_IDX;
    else {
        cli_set_error("%s: cannot tell the format from the name or the contents (name it "
                      ".fvecs, .bvecs, .npy, .hdf5, .txt or *-ubyte, or use --input-format)",
                      path);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Entry point
 * ------------------------------------------------------------------------ */

/* Rejects NaN and infinities, which an index cannot hold. Every source is
 * checked, uint8 ones too: a reader's idea of its source type must not be
 * what keeps a non-finite value out (an HDF5 "uint8" type of another
 * precision once converted to +inf). One pass over the data, next to
 * reading it. */
static int check_finite(const dataset *d, const char *path)
{
    size_t total = d->n * d->dim;
    for (size_t i = 0; i < total; i++) {
        if (!isfinite(d->data[i])) {
            cli_set_error("%s: vector %zu, component %zu is %s (vectors must be finite)", path,
                          i / d->dim, i % d->dim, isnan(d->data[i]) ? "NaN" : "infinite");
            return -1;
        }
    }
    return 0;
}

int dataset_read(const char *path, const read_options *options, dataset *out)
{
    memset(out, 0, sizeof *out);
    input_format f = options != NULL ? options->format : FMT_AUTO;
    if (f == FMT_AUTO && dataset_detect(path, &f) != 0)
        return -1;

    dataset d;
    memset(&d, 0, sizeof d);
    int rc;
    if (f == FMT_HDF5) {
        if (strcmp(path, "-") == 0) {
            cli_set_error("HDF5 cannot be read from standard input");
            return -1;
        }
        const char *name = options != NULL && options->hdf5_name ? options->hdf5_name : "train";
        rc = reader_hdf5(path, name, &d);
    } else {
        bsrc s;
        if (bsrc_open(&s, path) != 0)
            return -1;
        switch (f) {
        case FMT_FVECS: rc = reader_vecs(&s, EL_F32LE, &d); break;
        case FMT_BVECS: rc = reader_vecs(&s, EL_U8, &d); break;
        case FMT_NPY: rc = reader_npy(&s, &d); break;
        case FMT_IDX: rc = reader_idx(&s, &d); break;
        default: rc = reader_text(&s, &d); break;
        }
        bsrc_close(&s);
    }
    if (rc != 0)
        return -1;
    if (check_finite(&d, strcmp(path, "-") ? path : "standard input")) {
        dataset_free(&d);
        return -1;
    }
    d.format = f;
    *out = d;
    return 0;
}

void dataset_free(dataset *d)
{
    free(d->data);
    memset(d, 0, sizeof *d);
}

void dataset_truncate(dataset *d, size_t n)
{
    if (n < d->n)
        d->n = n; /* the tail stays allocated until dataset_free */
}
