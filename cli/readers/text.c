/*
 * text.c -- text vectors: one vector per line, numbers separated by blanks,
 * commas or semicolons; empty lines and lines starting with '#' are
 * skipped. Every line must hold as many numbers as the first.
 */
#include "reader.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

static int is_sep(char c)
{
    return c == ' ' || c == '\t' || c == ',' || c == '\r' || c == ';';
}

int reader_text(bsrc *s, dataset *out)
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
    rd_set_result(out, rows, dim, vals, SRC_FLOAT32);
    return 0;
oom:
    cli_set_error("%s: out of memory", s->path);
fail:
    free(buf);
    free(vals);
    return -1;
}
