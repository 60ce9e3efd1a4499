/*
 * source.c -- the byte source every reader but HDF5's reads through, element
 * decoding, and the matrix reader (reader.h).
 *
 * CLI_HAVE_ZLIB comes from the build's configuration header (cli/cli.mk).
 */
#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if CLI_HAVE_ZLIB
#include <zlib.h>
#endif

#include "bytes.h"
#include "errors.h"

/* ------------------------------------------------------------------------
 * Opening
 * ------------------------------------------------------------------------ */

int rd_open_file(const char *path, int *fd, struct stat *st)
{
    *fd = open(path, O_RDONLY);
    if (*fd < 0) {
        cli_set_error("%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(*fd, st) != 0) {
        cli_set_error("%s: %s", path, strerror(errno));
        close(*fd);
        return -1;
    }
    if (S_ISDIR(st->st_mode)) {
        cli_set_error("%s: is a directory", path);
        close(*fd);
        return -1;
    }
    return 0;
}

/* 1 if the next two bytes of fd are gzip's magic (1f 8b). Reads them with
 * pread on files and peeks nowhere else: a pipe cannot be rewound. */
static int starts_like_gzip(int fd)
{
    unsigned char magic[2];
    return pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

int bsrc_open(bsrc *s, const char *path)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    int fd;
    struct stat st;
    int gz = 0;
    if (strcmp(path, "-") == 0) {
        s->path = "standard input";
        fd = dup(STDIN_FILENO);
        if (fd < 0) {
            cli_set_error("standard input: %s", strerror(errno));
            return -1;
        }
    } else {
        s->path = path;
        if (rd_open_file(path, &fd, &st) != 0)
            return -1;
        gz = starts_like_gzip(fd);
        s->known_size = S_ISREG(st.st_mode) && !gz;
        s->size = s->known_size ? (uint64_t)st.st_size : 0;
    }
#if CLI_HAVE_ZLIB
    (void)gz;
    gzFile g = gzdopen(fd, "rb");
    if (g == NULL) {
        close(fd);
        cli_set_error("%s: out of memory", s->path);
        return -1;
    }
    gzbuffer(g, 128u << 10);
    s->gz = g;
#else
    if (gz) {
        close(fd);
        cli_set_error("%s: gzip-compressed, but this hnswc was built without zlib support "
                      "(decompress it with gunzip, or rebuild hnswc with zlib1g-dev installed)",
                      s->path);
        return -1;
    }
    s->fd = fd;
#endif
    return 0;
}

void bsrc_close(bsrc *s)
{
#if CLI_HAVE_ZLIB
    if (s->gz != NULL)
        gzclose((gzFile)s->gz);
#endif
    if (s->fd >= 0)
        close(s->fd);
    s->gz = NULL;
    s->fd = -1;
}

/* ------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------ */

#if CLI_HAVE_ZLIB
/* One gzread of at most 1 GiB (it takes an unsigned int); 0 at the end of
 * the data, -1 with the message recorded on an error. */
static long long read_chunk(bsrc *s, unsigned char *p, size_t want)
{
    gzFile g = (gzFile)s->gz;
    int r = gzread(g, p, (unsigned)(want > (1u << 30) ? 1u << 30 : want));
    int zerr = Z_OK;
    const char *zmsg = gzerror(g, &zerr);
    if (r < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR)) {
        cli_set_error("%s: %s", s->path, zerr == Z_ERRNO ? strerror(errno) : zmsg);
        return -1;
    }
    /* zlib reports a gzip stream that stops mid-way as a plain end of data
     * with Z_BUF_ERROR; it is a truncated file. */
    if (r == 0 && zerr == Z_BUF_ERROR) {
        cli_set_error("%s: the compressed data is truncated", s->path);
        return -1;
    }
    return r;
}
#else
/* One read(2) of at most 1 GiB, retried on EINTR; as above. */
static long long read_chunk(bsrc *s, unsigned char *p, size_t want)
{
    for (;;) {
        ssize_t r = read(s->fd, p, want > (1u << 30) ? 1u << 30 : want);
        if (r >= 0)
            return (long long)r;
        if (errno != EINTR) {
            cli_set_error("%s: %s", s->path, strerror(errno));
            return -1;
        }
    }
}
#endif

long long bsrc_read_some(bsrc *s, void *buf, size_t n)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n) {
        long long r = read_chunk(s, p + got, n - got);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    s->consumed += got;
    return (long long)got;
}

int bsrc_read(bsrc *s, void *buf, size_t n, const char *what)
{
    uint64_t at = s->consumed;
    long long r = bsrc_read_some(s, buf, n);
    if (r < 0)
        return -1;
    if ((size_t)r < n) {
        if (at == 0 && r == 0)
            cli_set_error("%s: the file is empty", s->path);
        else
            cli_set_error("%s: the file is truncated (it ends inside %s, at byte %llu)", s->path,
                          what, (unsigned long long)(at + (uint64_t)r));
        return -1;
    }
    return 0;
}

int bsrc_expect_end(bsrc *s)
{
    unsigned char extra;
    long long r = bsrc_read_some(s, &extra, 1);
    if (r < 0)
        return -1;
    if (r > 0) {
        cli_set_error("%s: unexpected data after the last vector (at byte %llu)", s->path,
                      (unsigned long long)(s->consumed - 1));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Elements
 * ------------------------------------------------------------------------ */

size_t rd_elem_size(elem_kind k)
{
    switch (k) {
    case EL_U8: return 1;
    case EL_F32LE:
    case EL_F32BE: return 4;
    case EL_F64LE:
    case EL_F64BE: return 8;
    }
    return 1;
}

source_type rd_source_of(elem_kind k)
{
    switch (k) {
    case EL_U8: return SRC_UINT8;
    case EL_F64LE:
    case EL_F64BE: return SRC_FLOAT64;
    default: return SRC_FLOAT32;
    }
}

size_t rd_decode(const unsigned char *src, size_t count, elem_kind k, float *dst,
                 double *bad_value)
{
    switch (k) {
    case EL_U8:
        for (size_t i = 0; i < count; i++)
            dst[i] = (float)src[i];
        break;
    case EL_F32LE:
    case EL_F32BE:
        for (size_t i = 0; i < count; i++)
            dst[i] = cli_get_f32(src + 4 * i, k == EL_F32BE);
        break;
    case EL_F64LE:
    case EL_F64BE:
        for (size_t i = 0; i < count; i++) {
            double v = cli_get_f64(src + 8 * i, k == EL_F64BE);
            if (rd_narrow(v, &dst[i]) != 0) {
                *bad_value = v;
                return i;
            }
        }
        break;
    }
    return count;
}

void rd_range_error(const char *path, size_t element, size_t dim, double value)
{
    cli_set_error("%s: vector %zu, component %zu is %g, outside the float32 range (vectors "
                  "are stored as float32, whose largest magnitude is about 3.4e38)",
                  path, element / dim, element % dim, value);
}

/* ------------------------------------------------------------------------
 * Buffers and the row-major matrix reader
 * ------------------------------------------------------------------------ */

int rd_grow_rows(float **data, size_t rows, size_t dim, const char *path)
{
    if (rows > SIZE_MAX / sizeof(float) / dim) {
        cli_set_error("%s: too many vectors to hold in memory", path);
        return -1;
    }
    float *p = realloc(*data, rows * dim * sizeof(float));
    if (p == NULL) {
        cli_set_error("%s: out of memory for %zu vectors of dimension %zu", path, rows, dim);
        return -1;
    }
    *data = p;
    return 0;
}

void rd_set_result(dataset *out, size_t n, size_t dim, float *data, source_type source)
{
    out->n = n;
    out->dim = dim;
    out->data = data;
    out->source = source;
}

int rd_alloc_buffers(const char *path, size_t scratch_bytes, size_t rows, size_t dim,
                     unsigned char **scratch, float **data)
{
    *data = NULL;
    *scratch = malloc(scratch_bytes);
    if (*scratch == NULL || rd_grow_rows(data, rows, dim, path) != 0) {
        if (*scratch == NULL)
            cli_set_error("%s: out of memory", path);
        free(*scratch);
        free(*data);
        return -1;
    }
    return 0;
}

int rd_read_matrix(bsrc *s, size_t n, size_t dim, elem_kind kind, dataset *out)
{
    size_t es = rd_elem_size(kind);
    if (n > SIZE_MAX / sizeof(double) / dim) {
        cli_set_error("%s: the header promises %zu x %zu values, too many to hold in memory",
                      s->path, n, dim);
        return -1;
    }
    if (s->known_size) {
        uint64_t need = (uint64_t)n * dim * es; /* n*dim*8 fits: checked above */
        uint64_t left = s->size - s->consumed;
        if (left < need) {
            cli_set_error("%s: the file is truncated: the header promises %zu x %zu values "
                          "(%llu bytes) but only %llu bytes follow",
                          s->path, n, dim, (unsigned long long)need, (unsigned long long)left);
            return -1;
        }
        if (left > need) {
            cli_set_error("%s: %llu unexpected bytes after the %zu x %zu values the header "
                          "promises",
                          s->path, (unsigned long long)(left - need), n, dim);
            return -1;
        }
    }

    size_t cap = n;
    if (!s->known_size) {
        size_t start = GROW_START_BYTES / (dim * sizeof(float));
        cap = start < 1 ? 1 : start < n ? start : n;
    }
    size_t chunk_rows = 65536 / dim;
    if (chunk_rows < 1)
        chunk_rows = 1;
    float *data;
    unsigned char *scratch;
    if (rd_alloc_buffers(s->path, chunk_rows * dim * es, cap, dim, &scratch, &data) != 0)
        return -1;

    for (size_t done = 0; done < n;) {
        if (done == cap) {
            cap = cap > n / 2 ? n : cap * 2;
            if (rd_grow_rows(&data, cap, dim, s->path) != 0)
                goto fail;
        }
        size_t rows = cap - done < chunk_rows ? cap - done : chunk_rows;
        if (bsrc_read(s, scratch, rows * dim * es, "the vector data") != 0)
            goto fail;
        double bad;
        size_t ok = rd_decode(scratch, rows * dim, kind, data + done * dim, &bad);
        if (ok < rows * dim) {
            rd_range_error(s->path, done * dim + ok, dim, bad);
            goto fail;
        }
        done += rows;
    }
    if (!s->known_size && bsrc_expect_end(s) != 0)
        goto fail;
    free(scratch);
    rd_set_result(out, n, dim, data, rd_source_of(kind));
    return 0;
fail:
    free(scratch);
    free(data);
    return -1;
}
