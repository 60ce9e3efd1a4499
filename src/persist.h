/*
 * persist.h -- hnswc's own file format (persist.c).
 *
 * Prefix: persist_. The public save/load/serialize/deserialize calls are
 * implemented in persist.c and declared in include/hnswc.h; what is shared
 * with other modules is declared here. Depends on storage.h (the loader
 * builds records through the storage module's loader helpers).
 */
#ifndef HNSWC_PERSIST_H
#define HNSWC_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * true if head[0 .. n-1] (a file's first bytes) starts with hnswc's magic
 * number, or hnswc 0.1 BFIndex's: hnswc_load reads the file. For
 * hnswc_probe_file (fileprobe.c). Pure.
 */
bool persist_probe(const unsigned char *head, size_t n);

#endif /* HNSWC_PERSIST_H */
