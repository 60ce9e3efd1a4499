/*
 * mapfile.c -- a file mapped privately, with writable room after it
 * (mapfile.h has the contract).
 *
 * How the room is made: one anonymous mapping of the whole length reserves
 * the address range, then the file is mapped over its start with MAP_FIXED.
 * MAP_FIXED only ever replaces our own fresh reservation here, never another
 * mapping. Beyond the file's last page the anonymous pages stay; the bytes
 * between the file's end and the end of its last page read as zero and,
 * the mapping being private, may be written (no SIGBUS inside that page).
 *
 * Rejected: mapping the file alone and growing with mremap (Linux only, and
 * the range after the mapping may be taken); MAP_SHARED (a write to a
 * mapped index would change the file under other processes, and a torn
 * write could corrupt it); PROT_READ only (adds and updates of a mapped
 * index would then need a second storage path).
 */
#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS, MAP_NORESERVE */
#include "mapfile.h"

#include "error.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

hnswc_status mapfile_map(int fd, uint64_t file_size, uint64_t len, mapfile *m, const char *what) {
    memset(m, 0, sizeof *m);
#if defined(MAP_ANONYMOUS)
    if (file_size == 0 || len < file_size)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_open: %s: nothing to map", what);
    if (len > SIZE_MAX / 2)
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "hnswc_open: %s: %llu bytes cannot be mapped here",
                          what, (unsigned long long)len);
    /* MAP_NORESERVE: the room is address space; only pages written cost
     * memory (the kernel ignores it where overcommit is strict) */
    void *r = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED)
        return hnswc_fail(errno == ENOMEM ? HNSWC_ERR_NOMEM : HNSWC_ERR_IO,
                          "hnswc_open: cannot reserve %llu bytes of address space for %s: %s",
                          (unsigned long long)len, what, strerror(errno));
    void *f = mmap(r, (size_t)file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (f == MAP_FAILED) {
        int err = errno;
        munmap(r, (size_t)len);
        return hnswc_fail(err == ENOMEM ? HNSWC_ERR_NOMEM : HNSWC_ERR_IO,
                          "hnswc_open: cannot map %s: %s", what, strerror(err));
    }
    m->base = r;
    m->len = (size_t)len;
    m->file_size = file_size;
    return HNSWC_OK;
#else
    (void)fd;
    (void)file_size;
    (void)len;
    return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_open: %s: this build cannot map files", what);
#endif
}

void mapfile_unmap(mapfile *m) {
    if (m->base)
        munmap(m->base, m->len);
    memset(m, 0, sizeof *m);
}
