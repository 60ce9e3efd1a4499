/*
 * vecs.c -- fvecs and bvecs (TEXMEX): per row, a little-endian int32
 * dimension, then that many float32 (fvecs) or uint8 (bvecs) values.
 */
#include "reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "errors.h"

/* The int32 dimension of a row header. */
static long row_dim(const unsigned char h[4])
{
    uint32_t u = cli_get_le32(h);
    int32_t d;
    memcpy(&d, &u, 4);
    return d;
}

int reader_vecs(bsrc *s, elem_kind kind, dataset *out)
{
    const char *fmt = kind == EL_U8 ? "bvecs" : "fvecs";
    size_t es = rd_elem_size(kind);
    unsigned char h[4];
    if (bsrc_read(s, h, 4, "the first row header") != 0)
        return -1;
    long d = row_dim(h);
    if (d < 1 || (unsigned long)d > MAX_DIM) {
        cli_set_error("%s: the first row declares dimension %ld, outside 1..%u (not a .%s "
                      "file?)",
                      s->path, d, MAX_DIM, fmt);
        return -1;
    }
    size_t dim = (size_t)d;
    size_t row_bytes = 4 + dim * es;

    /* The file size only sizes the buffer: rows are checked one by one, so
     * the message names the first row that is wrong (a different dimension,
     * or cut short). */
    size_t cap;
    if (s->known_size) {
        cap = (size_t)(s->size / row_bytes);
        if (cap < 1)
            cap = 1;
    } else {
        cap = GROW_START_BYTES / (dim * sizeof(float));
        if (cap < 1)
            cap = 1;
    }

    float *data;
    unsigned char *row;
    if (rd_alloc_buffers(s->path, dim * es, cap, dim, &row, &data) != 0)
        return -1;

    size_t n = 0;
    char what[64];
    for (;;) {
        if (n == cap) {
            if (cap > SIZE_MAX / 2 || rd_grow_rows(&data, cap * 2, dim, s->path) != 0) {
                if (cap > SIZE_MAX / 2)
                    cli_set_error("%s: too many vectors", s->path);
                goto fail;
            }
            cap *= 2;
        }
        snprintf(what, sizeof what, "row %zu of dimension %zu", n, dim);
        if (bsrc_read(s, row, dim * es, what) != 0)
            goto fail;
        double unused;
        rd_decode(row, dim, kind, data + n * dim, &unused); /* float32, uint8: never fails */
        n++;

        long long r = bsrc_read_some(s, h, 4);
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        if (r < 4) {
            cli_set_error("%s: the file is truncated (it ends inside the header of row %zu)",
                          s->path, n);
            goto fail;
        }
        long d2 = row_dim(h);
        if (d2 != d) {
            cli_set_error("%s: row %zu has dimension %ld but row 0 has %zu (all rows must have "
                          "the same dimension)",
                          s->path, n, d2, dim);
            goto fail;
        }
    }
    free(row);
    rd_set_result(out, n, dim, data, rd_source_of(kind));
    return 0;
fail:
    free(row);
    free(data);
    return -1;
}
