/*
 * idx.c -- MNIST and Fashion-MNIST idx files.
 *
 * Magic: two zero bytes, an element type (0x08 unsigned byte, 0x0D float32,
 * ...), the number of dimensions; then one big-endian uint32 per dimension,
 * then the data, big-endian, row-major. An n x rows x cols image file is
 * read as n vectors of rows*cols values.
 */
#include "reader.h"

#include <string.h>

#include "bytes.h"
#include "errors.h"

int reader_idx(bsrc *s, dataset *out)
{
    unsigned char m[4];
    if (bsrc_read(s, m, 4, "the idx magic") != 0)
        return -1;
    static const unsigned char known_types[] = {0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E};
    if (m[0] != 0 || m[1] != 0 || memchr(known_types, m[2], sizeof known_types) == NULL) {
        cli_set_error("%s: not an idx file (bad magic %02x %02x %02x %02x)", s->path, m[0], m[1],
                      m[2], m[3]);
        return -1;
    }
    elem_kind kind;
    if (m[2] == 0x08)
        kind = EL_U8;
    else if (m[2] == 0x0D)
        kind = EL_F32BE;
    else {
        cli_set_error("%s: idx element type 0x%02x is not supported (need 0x08 unsigned byte "
                      "or 0x0D float)",
                      s->path, m[2]);
        return -1;
    }
    int nd = m[3];
    if (nd == 1) {
        cli_set_error("%s: a one-dimensional idx file (labels?), not vectors", s->path);
        return -1;
    }
    if (nd < 2 || nd > 4) {
        cli_set_error("%s: an idx file with %d dimensions; need 2 to 4", s->path, nd);
        return -1;
    }
    unsigned char db[16];
    if (bsrc_read(s, db, (size_t)nd * 4, "the idx dimensions") != 0)
        return -1;
    uint64_t n = cli_get_be32(db);
    uint64_t dim = 1;
    for (int i = 1; i < nd; i++) {
        dim *= cli_get_be32(db + 4 * i);
        if (dim > MAX_DIM)
            break;
    }
    if (n == 0) {
        cli_set_error("%s: the idx file holds no vectors", s->path);
        return -1;
    }
    if (dim < 1 || dim > MAX_DIM) {
        cli_set_error("%s: vectors of %llu values; need 1..%u", s->path,
                      (unsigned long long)dim, MAX_DIM);
        return -1;
    }
    return rd_read_matrix(s, (size_t)n, (size_t)dim, kind, out);
}
