/*
 * npy.c -- NumPy .npy files.
 *
 * A magic "\x93NUMPY", a version byte pair, a little-endian header length
 * (2 bytes in version 1, 4 in versions 2 and 3), then a Python dict literal
 * such as {'descr': '<f4', 'fortran_order': False, 'shape': (100, 16), },
 * then the array's bytes. Read: 2-D arrays in C order of float32, float64
 * (NumPy's default dtype; converted to float32, values beyond float32's
 * range rejected) and uint8, either byte order.
 */
#include "reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "errors.h"

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

/* The element kind of a dtype string; -1 if unsupported. '|' and '=' mean
 * "no order" and "native": only uint8 may say so, as NumPy writes '|u1'
 * (a multi-byte '=' dtype is never written by NumPy, which resolves it). */
static int npy_kind(const char *descr, elem_kind *kind)
{
    static const struct {
        const char *descr;
        elem_kind kind;
    } known[] = {{"<f4", EL_F32LE}, {">f4", EL_F32BE}, {"<f8", EL_F64LE}, {">f8", EL_F64BE},
                 {"|u1", EL_U8},    {"<u1", EL_U8},    {">u1", EL_U8}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(descr, known[i].descr) == 0) {
            *kind = known[i].kind;
            return 0;
        }
    }
    return -1;
}

/* Reads the preamble and the header dict into a new string (*h). */
static int npy_header(bsrc *s, char **h)
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
        hlen = cli_get_le16(lb);
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (bsrc_read(s, lb, 4, "the .npy header length") != 0)
            return -1;
        hlen = cli_get_le32(lb);
    } else {
        cli_set_error("%s: unsupported .npy format version %d.%d", s->path, pre[6], pre[7]);
        return -1;
    }
    if (hlen == 0 || hlen > (1u << 20)) {
        cli_set_error("%s: implausible .npy header length %lu", s->path, (unsigned long)hlen);
        return -1;
    }
    *h = malloc(hlen + 1);
    if (*h == NULL) {
        cli_set_error("%s: out of memory", s->path);
        return -1;
    }
    if (bsrc_read(s, *h, hlen, "the .npy header") != 0) {
        free(*h);
        *h = NULL;
        return -1;
    }
    (*h)[hlen] = '\0';
    return 0;
}

int reader_npy(bsrc *s, dataset *out)
{
    char *h;
    if (npy_header(s, &h) != 0)
        return -1;

    int rc = -1;
    const char *p = npy_find(h, "descr");
    char descr[16] = "";
    if (p != NULL && (*p == '\'' || *p == '"')) {
        const char *q = strchr(p + 1, *p);
        if (q != NULL && (size_t)(q - p - 1) < sizeof descr)
            memcpy(descr, p + 1, (size_t)(q - p - 1));
    }
    elem_kind kind;
    if (npy_kind(descr, &kind) != 0) {
        if (descr[0] == '\0')
            cli_set_error("%s: the .npy header has no readable 'descr' (structured arrays are "
                          "not supported)",
                          s->path);
        else
            cli_set_error("%s: unsupported dtype '%s' (need float32 '<f4', float64 '<f8' or "
                          "uint8 '|u1')",
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
    if (rd_read_matrix(s, (size_t)dims[0], (size_t)dims[1], kind, out) != 0)
        goto done;
    rc = 0;
done:
    free(h);
    return rc;
}
