/*
 * labelfile.c -- files of labels, one per line (labelfile.h).
 */
#include "labelfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "args.h"
#include "errors.h"

int cli_read_label_file(const char *path, uint64_t **labels_out, size_t *n_out)
{
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "r");
    if (f == NULL) {
        cli_set_error("%s: %s", path, strerror(errno));
        return -1;
    }
    const char *name = is_stdin ? "standard input" : path;
    char *line = NULL;
    size_t linecap = 0, lineno = 0, cap = 0, n = 0;
    uint64_t *labels = NULL;
    ssize_t len;
    errno = 0;
    while ((len = getline(&line, &linecap, f)) >= 0) {
        lineno++;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        size_t tl = 0;
        while (p[tl] != '\0' && !isspace((unsigned char)p[tl]))
            tl++;
        if (tl == 0 || p[0] == '#')
            continue;
        char *rest = p + tl;
        while (isspace((unsigned char)*rest))
            rest++;
        p[tl] = '\0';
        uint64_t v;
        if (*rest != '\0' || cli_parse_u64("label", p, 0, UINT64_MAX, &v) != 0) {
            cli_set_error("%s: line %zu: expected one label (a whole number) per line", name,
                          lineno);
            goto fail;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 256;
            uint64_t *nl = nc < SIZE_MAX / sizeof *nl ? realloc(labels, nc * sizeof *nl) : NULL;
            if (nl == NULL) {
                cli_set_error("%s: out of memory", name);
                goto fail;
            }
            labels = nl;
            cap = nc;
        }
        labels[n++] = v;
    }
    if (ferror(f)) {
        cli_set_error("%s: %s", name, strerror(errno ? errno : EIO));
        goto fail;
    }
    free(line);
    if (!is_stdin)
        fclose(f);
    *labels_out = labels;
    *n_out = n;
    return 0;
fail:
    free(line);
    free(labels);
    if (!is_stdin)
        fclose(f);
    return -1;
}
