/*
 * readers.c -- vector file readers (fvecs, bvecs, npy, hdf5, idx, text).
 * See readers.h for the formats and the contract.
 *
 * Everything but HDF5 is read through zlib's gz* functions, which pass plain
 * files through unchanged, so each format may also come gzip-compressed.
 * When a file is plain, its size is known up front and every header is
 * checked against it before anything is allocated; when it is compressed
 * (or a pipe), buffers grow as data actually arrives, so a corrupted header
 * promising terabytes fails as "truncated" instead of exhausting memory.
 */
#include "readers.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>
#include <zlib.h>

#include "util.h"

#define MAX_DIM 65536u

/* First allocation for data of unknown size (compressed files, pipes). */
#define GROW_START_BYTES (16u << 20)

/* ------------------------------------------------------------------------
 * Byte source: a plain or gzip file, or standard input
 * ------------------------------------------------------------------------ */

typedef struct bsrc {
    gzFile gz;
    const char *path;  /* for messages                                  */
    int known_size;    /* plain regular file: size is exact            */
    uint64_t size;     /* bytes in the file when known_size            */
    uint64_t consumed; /* bytes delivered so far                       */
} bsrc;

/* Opens path read-only and rejects directories; on success *fd is open. */
static int open_file(const char *path, int *fd, struct stat *st)
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

/* Opens path ("-": a duplicate of standard input) for reading. */
static int bsrc_open(bsrc *s, const char *path)
{
    memset(s, 0, sizeof *s);
    int fd;
    struct stat st;
    if (strcmp(path, "-") == 0) {
        s->path = "standard input";
        fd = dup(STDIN_FILENO);
        if (fd < 0) {
            cli_set_error("standard input: %s", strerror(errno));
            return -1;
        }
    } else {
        s->path = path;
        if (open_file(path, &fd, &st) != 0)
            return -1;
        unsigned char magic[2];
        int gz = pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
        s->known_size = S_ISREG(st.st_mode) && !gz;
        s->size = s->known_size ? (uint64_t)st.st_size : 0;
    }
    s->gz = gzdopen(fd, "rb");
    if (s->gz == NULL) {
        close(fd);
        cli_set_error("%s: out of memory", s->path);
        return -1;
    }
    gzbuffer(s->gz, 128u << 10);
    return 0;
}

static void bsrc_close(bsrc *s)
{
    if (s->gz != NULL)
        gzclose(s->gz);
    s->gz = NULL;
}

/*
 * Reads up to n bytes: returns how many (fewer only at the end of the data),
 * or -1 on a read error or a damaged compressed stream.
 */
static long long bsrc_read_some(bsrc *s, void *buf, size_t n)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n) {
        size_t want = n - got;
        if (want > (1u << 30))
            want = 1u << 30; /* gzread takes an unsigned int */
        int r = gzread(s->gz, p + got, (unsigned)want);
        int zerr = Z_OK;
        const char *zmsg = gzerror(s->gz, &zerr);
        if (r < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR)) {
            cli_set_error("%s: %s", s->path, zerr == Z_ERRNO ? strerror(errno) : zmsg);
            return -1;
        }
        if (r == 0) {
            /* zlib reports a gzip stream that stops mid-way as a plain end
             * of data with Z_BUF_ERROR; it is a truncated file. */
            if (zerr == Z_BUF_ERROR) {
                cli_set_error("%s: the compressed data is truncated", s->path);
                return -1;
            }
            break;
        }
        got += (size_t)r;
    }
    s->consumed += got;
    return (long long)got;
}

/* Reads exactly n bytes of `what`, or fails naming the file as truncated. */
static int bsrc_read(bsrc *s, void *buf, size_t n, const char *what)
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

/* Fails if any byte follows the data just read. */
static int bsrc_expect_end(bsrc *s)
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
 * Element decoding and the row-major matrix reader
 * ------------------------------------------------------------------------ */

typedef enum elem_kind { EL_U8, EL_F32LE, EL_F32BE } elem_kind;

static size_t elem_size(elem_kind k)
{
    return k == EL_U8 ? 1 : 4;
}

static void decode(const unsigned char *src, size_t count, elem_kind k, float *dst)
{
    if (k == EL_U8) {
        for (size_t i = 0; i < count; i++)
            dst[i] = (float)src[i];
        return;
    }
    int swap = (k == EL_F32LE) != cli_host_is_le();
    for (size_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, src + 4 * i, 4);
        if (swap)
            u = cli_bswap32(u);
        memcpy(&dst[i], &u, 4);
    }
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

/* Grows *data to hold `rows` rows of dim floats. */
static int grow_rows(float **data, size_t rows, size_t dim, const char *path)
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

/* The dataset's record of the file's element type. */
static source_type source_of(elem_kind k)
{
    return k == EL_U8 ? SRC_UINT8 : SRC_FLOAT32;
}

/* Hands a reader's result to *out, which takes ownership of data. */
static void dataset_set(dataset *out, size_t n, size_t dim, float *data, source_type source)
{
    out->n = n;
    out->dim = dim;
    out->data = data;
    out->source = source;
}

/*
 * The buffers of a reader: `scratch_bytes` of raw file bytes, and room for
 * `rows` rows of dim floats. Returns 0, or -1 with both freed and the error
 * recorded.
 */
static int alloc_buffers(const char *path, size_t scratch_bytes, size_t rows, size_t dim,
                         unsigned char **scratch, float **data)
{
    *data = NULL;
    *scratch = malloc(scratch_bytes);
    if (*scratch == NULL || grow_rows(data, rows, dim, path) != 0) {
        if (*scratch == NULL)
            cli_set_error("%s: out of memory", path);
        free(*scratch);
        free(*data);
        return -1;
    }
    return 0;
}

/*
 * Reads the n x dim elements that follow a header (npy, idx) into out (data,
 * n, dim, source), and checks that nothing follows them.
 */
static int read_matrix(bsrc *s, size_t n, size_t dim, elem_kind kind, dataset *out)
{
    size_t es = elem_size(kind);
    if (n > SIZE_MAX / sizeof(float) / dim) {
        cli_set_error("%s: the header promises %zu x %zu values, too many to hold in memory",
                      s->path, n, dim);
        return -1;
    }
    if (s->known_size) {
        uint64_t need = (uint64_t)n * dim * es; /* n*dim*4 fits: checked above */
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
    if (alloc_buffers(s->path, chunk_rows * dim * es, cap, dim, &scratch, &data) != 0)
        return -1;

    for (size_t done = 0; done < n;) {
        if (done == cap) {
            cap = cap > n / 2 ? n : cap * 2;
            if (grow_rows(&data, cap, dim, s->path) != 0)
                goto fail;
        }
        size_t rows = cap - done < chunk_rows ? cap - done : chunk_rows;
        if (bsrc_read(s, scratch, rows * dim * es, "the vector data") != 0)
            goto fail;
        decode(scratch, rows * dim, kind, data + done * dim);
        done += rows;
    }
    if (!s->known_size && bsrc_expect_end(s) != 0)
        goto fail;
    free(scratch);
    dataset_set(out, n, dim, data, source_of(kind));
    return 0;
fail:
    free(scratch);
    free(data);
    return -1;
}

/* ------------------------------------------------------------------------
 * fvecs and bvecs
 * ------------------------------------------------------------------------ */

static int read_vecs(bsrc *s, elem_kind kind, dataset *out)
{
    const char *fmt = kind == EL_U8 ? "bvecs" : "fvecs";
    size_t es = elem_size(kind);
    unsigned char h[4];
    if (bsrc_read(s, h, 4, "the first row header") != 0)
        return -1;
    int32_t d;
    {
        uint32_t u = le32(h);
        memcpy(&d, &u, 4);
    }
    if (d < 1 || (uint32_t)d > MAX_DIM) {
        cli_set_error("%s: the first row declares dimension %ld, outside 1..%u (not a .%s "
                      "file?)",
                      s->path, (long)d, MAX_DIM, fmt);
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
    if (alloc_buffers(s->path, dim * es, cap, dim, &row, &data) != 0)
        return -1;

    size_t n = 0;
    char what[64];
    for (;;) {
        if (n == cap) {
            if (cap > SIZE_MAX / 2 || grow_rows(&data, cap * 2, dim, s->path) != 0) {
                if (cap > SIZE_MAX / 2)
                    cli_set_error("%s: too many vectors", s->path);
                goto fail;
            }
            cap *= 2;
        }
        snprintf(what, sizeof what, "row %zu of dimension %zu", n, dim);
        if (bsrc_read(s, row, dim * es, what) != 0)
            goto fail;
        decode(row, dim, kind, data + n * dim);
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
        uint32_t u = le32(h);
        int32_t d2;
        memcpy(&d2, &u, 4);
        if (d2 != d) {
            cli_set_error("%s: row %zu has dimension %ld but row 0 has %zu (all rows must have "
                          "the same dimension)",
                          s->path, n, (long)d2, dim);
            goto fail;
        }
    }
    free(row);
    dataset_set(out, n, dim, data, source_of(kind));
    return 0;
fail:
    free(row);
    free(data);
    return -1;
}

/* ------------------------------------------------------------------------
 * NumPy .npy
 *
 * A magic "\x93NUMPY", a version byte pair, a little-endian header length
 * (2 bytes in version 1, 4 in versions 2 and 3), then a Python dict literal
 * such as {'descr': '<f4', 'fortran_order': False, 'shape': (100, 16), }.
 * ------------------------------------------------------------------------ */

/* Points just past "'key':" (either quote style) and any blanks, or NULL. */
static const char *npy_find(const char *h, const char *key)
{
    char pat[40];
    const char quotes[2] = {'\'', '"'};
    for (int q = 0; q < 2; q++) {
        snprintf(pat, sizeof pat, "%c%s%c", quotes[q], key, quotes[q]);
        const char *p = strstr(h, pat);
        if (p == NULL)
            continue;
        p += strlen(pat);
        while (*p == ' ')
            p++;
        if (*p != ':')
            return NULL;
        p++;
        while (*p == ' ')
            p++;
        return p;
    }
    return NULL;
}

/* Parses "(a, b, ...)" into up to 8 values; returns the count or -1. */
static int npy_shape(const char *p, uint64_t *dims)
{
    if (*p != '(')
        return -1;
    p++;
    int nd = 0;
    for (;;) {
        while (*p == ' ')
            p++;
        if (*p == ')')
            return nd;
        if (*p < '0' || *p > '9' || nd == 8)
            return -1;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno != 0)
            return -1;
        dims[nd++] = v;
        p = end;
        if (*p == 'L') /* Python 2 long literals */
            p++;
        while (*p == ' ')
            p++;
        if (*p == ',')
            p++;
        else if (*p != ')')
            return -1;
    }
}

static int read_npy(bsrc *s, dataset *out)
{
    unsigned char pre[8];
    if (bsrc_read(s, pre, 8, "the .npy preamble") != 0)
        return -1;
    if (memcmp(pre, "\x93NUMPY", 6) != 0) {
        cli_set_error("%s: not a .npy file (bad magic)", s->path);
        return -1;
    }
    uint32_t hlen;
    unsigned char lb[4];
    if (pre[6] == 1) {
        if (bsrc_read(s, lb, 2, "the .npy header length") != 0)
            return -1;
        hlen = (uint32_t)lb[0] | (uint32_t)lb[1] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (bsrc_read(s, lb, 4, "the .npy header length") != 0)
            return -1;
        hlen = le32(lb);
    } else {
        cli_set_error("%s: unsupported .npy format version %d.%d", s->path, pre[6], pre[7]);
        return -1;
    }
    if (hlen == 0 || hlen > (1u << 20)) {
        cli_set_error("%s: implausible .npy header length %lu", s->path, (unsigned long)hlen);
        return -1;
    }
    char *h = malloc(hlen + 1);
    if (h == NULL) {
        cli_set_error("%s: out of memory", s->path);
        return -1;
    }
    if (bsrc_read(s, h, hlen, "the .npy header") != 0) {
        free(h);
        return -1;
    }
    h[hlen] = '\0';

    int rc = -1;
    const char *p = npy_find(h, "descr");
    char descr[16] = "";
    if (p != NULL && (*p == '\'' || *p == '"')) {
        const char *q = strchr(p + 1, *p);
        if (q != NULL && (size_t)(q - p - 1) < sizeof descr)
            memcpy(descr, p + 1, (size_t)(q - p - 1));
    }
    elem_kind kind;
    if (strcmp(descr, "<f4") == 0)
        kind = EL_F32LE;
    else if (strcmp(descr, ">f4") == 0)
        kind = EL_F32BE;
    else if (strcmp(descr, "|u1") == 0 || strcmp(descr, "<u1") == 0 ||
             strcmp(descr, ">u1") == 0)
        kind = EL_U8;
    else {
        if (descr[0] == '\0')
            cli_set_error("%s: the .npy header has no readable 'descr' (structured arrays are "
                          "not supported)",
                          s->path);
        else
            cli_set_error("%s: unsupported dtype '%s' (need float32 '<f4' or uint8 '|u1')",
                          s->path, descr);
        goto done;
    }

    p = npy_find(h, "fortran_order");
    if (p == NULL || (strncmp(p, "False", 5) != 0 && strncmp(p, "True", 4) != 0)) {
        cli_set_error("%s: the .npy header has no 'fortran_order'", s->path);
        goto done;
    }
    if (p[0] == 'T') {
        cli_set_error("%s: Fortran-ordered arrays are not supported (save "
                      "np.ascontiguousarray(a) instead)",
                      s->path);
        goto done;
    }

    uint64_t dims[8];
    p = npy_find(h, "shape");
    int nd = p != NULL ? npy_shape(p, dims) : -1;
    if (nd < 0) {
        cli_set_error("%s: the .npy header has no readable 'shape'", s->path);
        goto done;
    }
    if (nd != 2) {
        cli_set_error("%s: the array has %d dimensions; need 2 (n vectors x dim)", s->path, nd);
        goto done;
    }
    if (dims[0] == 0) {
        cli_set_error("%s: the array holds no vectors", s->path);
        goto done;
    }
    if (dims[1] < 1 || dims[1] > MAX_DIM) {
        cli_set_error("%s: dimension %llu is outside 1..%u", s->path,
                      (unsigned long long)dims[1], MAX_DIM);
        goto done;
    }
    if (dims[0] > SIZE_MAX) {
        cli_set_error("%s: too many vectors", s->path);
        goto done;
    }
    if (read_matrix(s, (size_t)dims[0], (size_t)dims[1], kind, out) != 0)
        goto done;
    rc = 0;
done:
    free(h);
    return rc;
}

/* ------------------------------------------------------------------------
 * idx (MNIST, Fashion-MNIST)
 *
 * Magic: two zero bytes, an element type (0x08 unsigned byte, 0x0D float32,
 * ...), the number of dimensions; then one big-endian uint32 per dimension,
 * then the data, big-endian, row-major.
 * ------------------------------------------------------------------------ */

static int read_idx(bsrc *s, dataset *out)
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
    uint64_t n = be32(db);
    uint64_t dim = 1;
    for (int i = 1; i < nd; i++) {
        dim *= be32(db + 4 * i);
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
    return read_matrix(s, (size_t)n, (size_t)dim, kind, out);
}

/* ------------------------------------------------------------------------
 * Text: one vector per line
 * ------------------------------------------------------------------------ */

static int is_sep(char c)
{
    return c == ' ' || c == '\t' || c == ',' || c == '\r' || c == ';';
}

static int read_text(bsrc *s, dataset *out)
{
    /* Text inputs are small (queries typed or piped in): read it all. */
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    float *vals = NULL;
    size_t nvals = 0, vcap = 0;
    size_t dim = 0, rows = 0;
    if (buf == NULL)
        goto oom;
    for (;;) {
        if (cap - len < 2) {
            if (cap > SIZE_MAX / 2)
                goto oom;
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL)
                goto oom;
            buf = nb;
            cap *= 2;
        }
        long long r = bsrc_read_some(s, buf + len, cap - len - 1);
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        cli_set_error("%s: contains NUL bytes: not a text file", s->path);
        goto fail;
    }

    size_t lineno = 0;
    for (char *line = buf; line < buf + len;) {
        char *nl = strchr(line, '\n');
        char *next = nl != NULL ? nl + 1 : buf + len;
        if (nl != NULL)
            *nl = '\0';
        lineno++;
        char *p = line;
        while (is_sep(*p))
            p++;
        if (*p == '\0' || *p == '#') {
            line = next;
            continue;
        }
        size_t count = 0;
        while (*p != '\0') {
            char *end;
            float v = strtof(p, &end);
            if (end == p || (*end != '\0' && !is_sep(*end))) {
                size_t tl = 0;
                while (p[tl] != '\0' && !is_sep(p[tl]) && tl < 40)
                    tl++;
                cli_set_error("%s: line %zu: '%.*s' is not a number", s->path, lineno, (int)tl,
                              p);
                goto fail;
            }
            if (!isfinite(v)) {
                cli_set_error("%s: line %zu: '%.*s' is not a finite float32 number", s->path,
                              lineno, (int)(end - p > 40 ? 40 : end - p), p);
                goto fail;
            }
            if (nvals == vcap) {
                size_t nc = vcap ? vcap * 2 : 1024;
                float *nv = nc < SIZE_MAX / sizeof(float) ? realloc(vals, nc * sizeof(float))
                                                          : NULL;
                if (nv == NULL)
                    goto oom;
                vals = nv;
                vcap = nc;
            }
            vals[nvals++] = v;
            count++;
            p = end;
            while (is_sep(*p))
                p++;
        }
        if (rows == 0) {
            if (count > MAX_DIM) {
                cli_set_error("%s: line %zu has %zu numbers, more than the maximum dimension %u",
                              s->path, lineno, count, MAX_DIM);
                goto fail;
            }
            dim = count;
        } else if (count != dim) {
            cli_set_error("%s: line %zu has %zu numbers but the first vector has %zu", s->path,
                          lineno, count, dim);
            goto fail;
        }
        rows++;
        line = next;
    }
    if (rows == 0) {
        cli_set_error("%s: no vectors (expected one vector per line, numbers separated by "
                      "blanks or commas)",
                      s->path);
        goto fail;
    }
    free(buf);
    dataset_set(out, rows, dim, vals, SRC_FLOAT32);
    return 0;
oom:
    cli_set_error("%s: out of memory", s->path);
fail:
    free(buf);
    free(vals);
    return -1;
}

/* ------------------------------------------------------------------------
 * HDF5 (ann-benchmarks files)
 *
 * The library's own error printing is switched off: failures become one
 * message of ours.
 * ------------------------------------------------------------------------ */

/* Opens an HDF5 file read-only with a clear message on failure. */
static hid_t h5_open(const char *path)
{
    int fd;
    struct stat st;
    if (open_file(path, &fd, &st) != 0)
        return -1;
    close(fd);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        cli_set_error("%s: not an HDF5 file, or a damaged one", path);
    return f;
}

/* 1 if `name` exists in f, 0 if not (intermediate groups missing too). */
static int h5_has(hid_t f, const char *name)
{
    return H5Lexists(f, name, H5P_DEFAULT) > 0 &&
           H5Oexists_by_name(f, name, H5P_DEFAULT) > 0;
}

/* Opens a 2-D dataset and reads its shape. */
static hid_t h5_open_2d(hid_t f, const char *path, const char *name, hsize_t dims[2])
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) {
        cli_set_error("%s: '%s' is not a dataset", path, name);
        return -1;
    }
    hid_t sp = H5Dget_space(d);
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd != 2) {
        if (nd < 0)
            cli_set_error("%s: cannot read the shape of dataset '%s'", path, name);
        else
            cli_set_error("%s: dataset '%s' has %d dimensions; need 2 (n x dim)", path, name,
                          nd);
        if (sp >= 0)
            H5Sclose(sp);
        H5Dclose(d);
        return -1;
    }
    H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    return d;
}

/*
 * Opens HDF5 file path and its 2-D dataset `name`, and reads its shape.
 * Returns 1 with *f and *d open (close them with h5_close), 0 if the file
 * has no such dataset, -1 on error (recorded); on 0 and -1 nothing is left
 * open.
 */
static int h5_open_matrix(const char *path, const char *name, hid_t *f, hid_t *d,
                          hsize_t dims[2])
{
    *f = h5_open(path);
    if (*f < 0)
        return -1;
    int found = h5_has(*f, name);
    *d = found ? h5_open_2d(*f, path, name, dims) : -1;
    if (*d < 0) {
        H5Fclose(*f);
        return found ? -1 : 0;
    }
    return 1;
}

/*
 * Reads all of dataset d (named `name` in path), converted to `mem_type`,
 * into a new buffer of `bytes` bytes; NULL with the error recorded.
 */
static void *h5_read_all(hid_t d, hid_t mem_type, size_t bytes, const char *path,
                         const char *name)
{
    void *buf = malloc(bytes);
    if (buf == NULL) {
        cli_set_error("%s: out of memory for dataset '%s'", path, name);
        return NULL;
    }
    if (H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        cli_set_error("%s: cannot read dataset '%s' (damaged file?)", path, name);
        free(buf);
        return NULL;
    }
    return buf;
}

/* Closes a dataset's type and the dataset (either may be -1) and the file. */
static void h5_close(hid_t t, hid_t d, hid_t f)
{
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    H5Fclose(f);
}

static int read_hdf5(const char *path, const char *name, dataset *out)
{
    hid_t f, d;
    hsize_t dims[2];
    int got = h5_open_matrix(path, name, &f, &d, dims);
    if (got <= 0) {
        if (got == 0)
            cli_set_error("%s: no dataset '%s' in this HDF5 file (choose one with --dataset)",
                          path, name);
        return -1;
    }
    int rc = -1;
    float *data = NULL;
    hid_t t = H5Dget_type(d);
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    int is_u8 = cls == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    if (cls != H5T_FLOAT && !is_u8) {
        cli_set_error("%s: dataset '%s' holds neither floats nor uint8 values", path, name);
        goto done;
    }
    if (dims[0] == 0) {
        cli_set_error("%s: dataset '%s' holds no vectors", path, name);
        goto done;
    }
    if (dims[1] < 1 || dims[1] > MAX_DIM) {
        cli_set_error("%s: dataset '%s' has dimension %llu, outside 1..%u", path, name,
                      (unsigned long long)dims[1], MAX_DIM);
        goto done;
    }
    if (dims[0] > SIZE_MAX / sizeof(float) / dims[1]) {
        cli_set_error("%s: dataset '%s' is too large", path, name);
        goto done;
    }
    /* HDF5 converts any float width, or uint8, to float32 on the way. */
    data = h5_read_all(d, H5T_NATIVE_FLOAT, (size_t)dims[0] * (size_t)dims[1] * sizeof(float),
                       path, name);
    if (data == NULL)
        goto done;
    dataset_set(out, (size_t)dims[0], (size_t)dims[1], data, is_u8 ? SRC_UINT8 : SRC_FLOAT32);
    data = NULL;
    rc = 0;
done:
    free(data);
    h5_close(t, d, f);
    return rc;
}

int hdf5_read_metric(const char *path, hnswc_metric *out)
{
    hid_t f = h5_open(path);
    if (f < 0)
        return -1;
    int rc = 0;
    char value[64] = "";
    hid_t a = -1, t = -1, mt = -1, sp = -1;
    if (H5Aexists(f, "distance") <= 0)
        goto done;
    a = H5Aopen(f, "distance", H5P_DEFAULT);
    t = a >= 0 ? H5Aget_type(a) : -1;
    sp = a >= 0 ? H5Aget_space(a) : -1;
    if (t < 0 || sp < 0 || H5Tget_class(t) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1)
        goto done;
    /* The memory type must use the file's character set: h5py writes UTF-8,
     * and HDF5 has no conversion between UTF-8 and ASCII strings. */
    mt = H5Tcopy(H5T_C_S1);
    if (mt < 0 || H5Tset_cset(mt, H5Tget_cset(t)) < 0)
        goto done;
    if (H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        if (H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Aread(a, mt, &s) < 0 || s == NULL)
            goto done;
        snprintf(value, sizeof value, "%s", s);
        H5free_memory(s);
    } else {
        size_t size = H5Tget_size(t);
        if (size == 0 || size >= sizeof value)
            goto done;
        if (H5Tset_size(mt, size + 1) < 0 || H5Aread(a, mt, value) < 0)
            goto done;
        value[size] = '\0';
    }
    if (cli_parse_metric(value, out) == 0)
        rc = 1;
done:
    if (mt >= 0)
        H5Tclose(mt);
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    H5Fclose(f);
    return rc;
}

int hdf5_read_neighbors(const char *path, const char *name, size_t *rows, size_t *cols,
                        uint64_t **out)
{
    hid_t f, d;
    hsize_t dims[2];
    int got = h5_open_matrix(path, name, &f, &d, dims);
    if (got <= 0)
        return got;
    int rc = -1;
    int64_t *raw = NULL;
    hid_t t = H5Dget_type(d);
    if (t < 0 || H5Tget_class(t) != H5T_INTEGER) {
        cli_set_error("%s: dataset '%s' does not hold integers", path, name);
        goto done;
    }
    if (dims[0] == 0 || dims[1] == 0 || dims[0] > SIZE_MAX / sizeof(int64_t) / dims[1]) {
        cli_set_error("%s: dataset '%s' has an unusable shape", path, name);
        goto done;
    }
    size_t total = (size_t)dims[0] * (size_t)dims[1];
    raw = h5_read_all(d, H5T_NATIVE_INT64, total * sizeof *raw, path, name);
    if (raw == NULL)
        goto done;
    for (size_t i = 0; i < total; i++) {
        if (raw[i] < 0) {
            cli_set_error("%s: dataset '%s' holds a negative row number", path, name);
            goto done;
        }
    }
    /* int64 and uint64 have the same size: convert in place. */
    uint64_t *u = (uint64_t *)(void *)raw;
    for (size_t i = 0; i < total; i++) {
        int64_t v = raw[i];
        u[i] = (uint64_t)v;
    }
    *rows = (size_t)dims[0];
    *cols = (size_t)dims[1];
    *out = u;
    raw = NULL;
    rc = 1;
done:
    free(raw);
    h5_close(t, d, f);
    return rc;
}

/* ------------------------------------------------------------------------
 * Format names and detection
 * ------------------------------------------------------------------------ */

static const char *const format_names[] = {"auto", "fvecs", "bvecs", "npy", "hdf5", "idx", "text"};

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

/* Rejects NaN and infinities, which an index cannot hold. */
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
        rc = read_hdf5(path, name, &d);
    } else {
        bsrc s;
        if (bsrc_open(&s, path) != 0)
            return -1;
        switch (f) {
        case FMT_FVECS: rc = read_vecs(&s, EL_F32LE, &d); break;
        case FMT_BVECS: rc = read_vecs(&s, EL_U8, &d); break;
        case FMT_NPY: rc = read_npy(&s, &d); break;
        case FMT_IDX: rc = read_idx(&s, &d); break;
        default: rc = read_text(&s, &d); break;
        }
        bsrc_close(&s);
    }
    if (rc != 0)
        return -1;
    if (d.source == SRC_FLOAT32 && check_finite(&d, strcmp(path, "-") ? path : "standard input")) {
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
