/*
 * mapfile.h -- a file mapped privately (copy on write), followed by writable
 * anonymous room (mapfile.c). What hnswc_open(HNSWC_OPEN_MMAP) keeps its
 * vectors in.
 *
 * Prefix: mapfile_. Depends on error.h only. Included by storage.h (the
 * index record owns its mapping) and persist.c (which makes it).
 *
 * The mapping is MAP_PRIVATE and readable and writable: pages nobody
 * writes are the page cache's own (shared by every process that maps the
 * file), a page written is copied for this process first, and the file
 * itself never changes. The anonymous room after the file's end lets the
 * index write vectors of new elements past the file's last vector without
 * moving anything (storage.c, "Mapped vectors").
 *
 * A file truncated by someone else while it is mapped makes an access to a
 * page past its new end raise SIGBUS: that cannot be checked for. hnswc_save
 * never truncates: it writes a new file and renames it over the old one,
 * whose pages stay valid for as long as they are mapped.
 */
#ifndef HNSWC_MAPFILE_H
#define HNSWC_MAPFILE_H

#include "hnswc.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mapfile {
    char *base;         /* NULL when nothing is mapped                   */
    size_t len;         /* bytes reserved: the file, then anonymous room */
    uint64_t file_size; /* bytes of the file at base                     */
} mapfile;

/*
 * Maps file_size bytes (> 0) of the open regular file fd, privately, and
 * anonymous zero memory after them up to `len` (>= file_size) bytes in all.
 * `what` names the file in messages. On failure *m is all zero and the
 * status is HNSWC_ERR_IO (the system's reason), HNSWC_ERR_NOMEM (address
 * space) or HNSWC_ERR_OVERFLOW (len does not fit size_t). fd may be closed
 * afterwards. Thread safe.
 */
hnswc_status mapfile_map(int fd, uint64_t file_size, uint64_t len, mapfile *m, const char *what);

/* Unmaps and zeroes *m; a zero *m is a no-op. */
void mapfile_unmap(mapfile *m);

#endif /* HNSWC_MAPFILE_H */
