/*
 * fileprobe.c -- hnswc_probe_file: which loader reads a file (fileprobe.h).
 *
 * Only the first FILEPROBE_HEAD bytes are read, so asking is cheap whatever
 * the file; the loaders still check everything. Rejected:
 * trying hnswc_load and then hnswc_load_hnswlib (what the Python binding
 * did): it reads a whole index to learn its kind, and a damaged hnswc file
 * then reports hnswlib's complaint on top of its own.
 */
#include "fileprobe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "hnswlib_import.h"
#include "persist.h"

hnswc_status hnswc_probe_file(const char *path, hnswc_file_info *out) {
    if (!out)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_probe_file: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_probe_file: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f)
        return hnswc_fail(HNSWC_ERR_IO, "hnswc_probe_file: cannot open %s: %s", path,
                          strerror(errno));
    struct stat sb;
    unsigned char head[FILEPROBE_HEAD];
    size_t n = 0;
    hnswc_status st = HNSWC_OK;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode))
        st = hnswc_fail(HNSWC_ERR_IO, "hnswc_probe_file: %s is not a regular file", path);
    else {
        n = fread(head, 1, sizeof head, f);
        if (n < sizeof head && ferror(f))
            st = hnswc_fail(HNSWC_ERR_IO, "hnswc_probe_file: cannot read %s", path);
    }
    fclose(f);
    if (st != HNSWC_OK)
        return st;
    if (persist_probe(head, n))
        out->kind = HNSWC_FILE_HNSWC;
    else if (!hnswlib_probe(head, n, (uint64_t)sb.st_size, out))
        out->kind = HNSWC_FILE_UNKNOWN;
    return HNSWC_OK;
}
