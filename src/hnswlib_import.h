/*
 * hnswlib_import.h -- reading hnswlib's index files (hnswlib_import.c).
 *
 * Prefix: hnswlib_. The public hnswc_load_hnswlib is declared in
 * include/hnswc.h; what other modules use is declared here. Depends on
 * storage.h (the loader builds records through its loader helpers).
 */
#ifndef HNSWC_HNSWLIB_IMPORT_H
#define HNSWC_HNSWLIB_IMPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "hnswc.h"

/*
 * true if head[0 .. n-1] (a file's first bytes) is the header of an hnswlib
 * file of file_size bytes: an HNSW index whose fields agree with each other
 * (n >= 96; hnswlib has no magic number; the size is not checked, so a
 * truncated file still counts, for the loader to report), or a BFIndex
 * (BruteforceSearch) file, whose short header must agree with file_size
 * exactly (nothing else tells it apart). Then fills out's kind and hnswlib
 * fields (M 0 for a BFIndex). For hnswc_probe_file (fileprobe.c). Pure: no
 * I/O, no message.
 */
bool hnswlib_probe(const unsigned char *head, size_t n, uint64_t file_size,
                   hnswc_file_info *out);

#endif /* HNSWC_HNSWLIB_IMPORT_H */
