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
 * Huge pages: the range starts on a 2 MiB boundary (file offset 0 there)
 * and is advised MADV_HUGEPAGE, so that where the page cache holds the
 * file in 2 MiB folios the kernel maps them with one entry each (a search
 * jumps between random vectors: with 4 KiB pages nearly every distance
 * also missed the TLB -- measured: the first queries 1.24x slower than on
 * a loaded index, whose records are on huge pages, against 0.98x for the
 * same vectors on huge pages). The page cache holds such folios when the
 * file was read from disk: through a mapping so advised and, on Linux 6.18
 * with ext4, by read() too (measured: FilePmdMapped). A file still cached
 * as it was written (just saved, or copied onto the host) is held in small
 * folios and mapped with 4 KiB pages. Best effort either way.
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

#define HUGE_ALIGN ((size_t)2 << 20)

hnswc_status mapfile_map(int fd, uint64_t file_size, uint64_t len, mapfile *m, const char *what) {
    memset(m, 0, sizeof *m);
#if defined(MAP_ANONYMOUS)
    if (file_size == 0 || len < file_size)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_open: %s: nothing to map", what);
    if (len > SIZE_MAX / 2 - HUGE_ALIGN)
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "hnswc_open: %s: %llu bytes cannot be mapped here",
                          what, (unsigned long long)len);
    /* MAP_NORESERVE: the room is address space; only pages written cost
     * memory (the kernel ignores it where overcommit is strict) */
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || (size_t)page > HUGE_ALIGN)
        page = 4096;
    len = (len + (uint64_t)page - 1) / (uint64_t)page * (uint64_t)page; /* whole pages */
    size_t want = (size_t)len + HUGE_ALIGN;
    char *raw = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (raw == MAP_FAILED)
        return hnswc_fail(errno == ENOMEM ? HNSWC_ERR_NOMEM : HNSWC_ERR_IO,
                          "hnswc_open: cannot reserve %llu bytes of address space for %s: %s",
                          (unsigned long long)len, what, strerror(errno));
    /* keep the 2 MiB-aligned middle, give back the ends */
    char *r = raw + ((HUGE_ALIGN - (uintptr_t)raw % HUGE_ALIGN) % HUGE_ALIGN);
    if (r > raw)
        munmap(raw, (size_t)(r - raw));
    if (raw + want > r + len)
        munmap(r + len, (size_t)(raw + want - (r + len)));
    void *f = mmap(r, (size_t)file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (f == MAP_FAILED) {
        int err = errno;
        munmap(r, (size_t)len);
        return hnswc_fail(err == ENOMEM ? HNSWC_ERR_NOMEM : HNSWC_ERR_IO,
                          "hnswc_open: cannot map %s: %s", what, strerror(err));
    }
#if defined(MADV_HUGEPAGE)
    (void)madvise(r, (size_t)len, MADV_HUGEPAGE); /* best effort, see above */
#endif
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
