/*
 * bench_mmap.c -- an index opened in place (hnswc_open, HNSWC_OPEN_MMAP)
 * against the same index loaded (hnswc_load), in one process (make bench).
 *
 *   open      the time to open the file: hnswc_load and hnswc_open(MMAP)
 *             (and MMAP|VERIFY) in turn, fastest of --open-rounds each (an
 *             open of a few tens of milliseconds is often preempted on a
 *             shared machine: it takes more rounds to see one that is not);
 *   first     the first --nq queries after opening, one thread, k 10: each
 *             round opens both afresh, then their queries alternate in
 *             chunks of --chunk (mapped chunk 0, loaded chunk 0, loaded
 *             chunk 1, mapped chunk 1, ...), and the fastest of the rounds
 *             counts per chunk and index. The mapped index's first chunks
 *             pay its page faults; the sums give the ratio.
 *
 * Both run from a warm page cache (the state of a serving host; a cold disk
 * is not measured: hnswc_load would read all of the file, a mapped index
 * the pages its queries touch), in three states of that cache:
 *
 *   saved     the index just saved by hnswc_save (INDEX.bench-copy, loaded
 *             and saved): the page cache holds the file as hnswc_save's
 *             writes left it -- 2 MiB blocks at 2 MiB offsets, which this
 *             kernel caches in 2 MiB folios (persist.c, "Writing");
 *   copied    a copy written by 1 MiB writes and fsynced (as a copying tool
 *             or hnswc_save before 2026-12-02 writes it): cached in smaller
 *             folios, so a mapping of it uses 4 KiB pages;
 *   read      the same copy dropped from the cache (posix_fadvise DONTNEED)
 *             and read back through one mapped open with VERIFY (every
 *             vector touched through the 2 MiB-aligned, MADV_HUGEPAGE
 *             mapping of mapfile.c): cached in 2 MiB folios, as a file read
 *             from disk is (by read() too, on this kernel), so mappings use
 *             huge pages.
 * FilePmdMapped (from /proc/self/smaps_rollup) says how much of the file
 * the mapped index maps with huge pages in each state. The copy is removed
 * at the end.
 * Results are compared too: the two indexes must answer every query with
 * the same labels and distances, bit for bit. Timings are reported as
 * ratios (docs/BENCHMARKS.md); absolute times of a shared machine mean
 * little.
 *
 * usage: bench_mmap --index FILE --queries T10K-IDX3[.gz] [--nq N]
 *                   [--rounds R] [--open-rounds R] [--chunk C] [--ef EF]
 *                   [--json OUT]
 */
#define _POSIX_C_SOURCE 200809L
#include "hnswc.h"

#include <fcntl.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

enum { K = 10 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(const char *what) {
    fprintf(stderr, "bench_mmap: %s\n", what);
    exit(1);
}

static void check(hnswc_status st, const char *what) {
    if (st != HNSWC_OK) {
        fprintf(stderr, "bench_mmap: %s: %s\n", what, hnswc_errmsg(NULL));
        exit(1);
    }
}

/* An idx3 image file (optionally gzipped) as floats 0..255. */
static float *read_idx3(const char *path, size_t max_n, size_t *n, size_t *dim) {
    gzFile f = gzopen(path, "rb");
    if (!f)
        die("cannot open the query file");
    unsigned char h[16];
    if (gzread(f, h, 16) != 16 || h[2] != 8 || h[3] != 3)
        die("the query file is not idx3 of bytes");
    size_t cnt = (size_t)h[4] << 24 | (size_t)h[5] << 16 | (size_t)h[6] << 8 | h[7];
    size_t rows = (size_t)h[8] << 24 | (size_t)h[9] << 16 | (size_t)h[10] << 8 | h[11];
    size_t cols = (size_t)h[12] << 24 | (size_t)h[13] << 16 | (size_t)h[14] << 8 | h[15];
    *n = cnt < max_n ? cnt : max_n;
    *dim = rows * cols;
    unsigned char *b = malloc(*n * *dim);
    float *v = malloc(*n * *dim * sizeof *v);
    if (!b || !v || gzread(f, b, (unsigned)(*n * *dim)) != (int)(*n * *dim))
        die("cannot read the queries");
    for (size_t i = 0; i < *n * *dim; i++)
        v[i] = b[i];
    free(b);
    gzclose(f);
    return v;
}

/* Writes a copy of src to dst by 1 MiB writes and fsyncs it: its pages
 * stay in the cache as the writes left them. */
static void copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    if (!in || !out)
        die("cannot copy the index file");
    static char buf[1 << 20];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            die("cannot write the copy of the index file");
    if (ferror(in) || fflush(out) != 0 || fsync(fileno(out)) != 0)
        die("cannot write the copy of the index file");
    fclose(in);
    fclose(out);
}

/* This thread's CPU time (user + system, page faults included): an open
 * of a few tens of milliseconds on a machine at load 10 spends most of its
 * wall time waiting for a core, so the CPU time is reported beside it. */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double last_cpu; /* of the last open_with */

static hnswc_index *open_with(const char *path, unsigned flags, double *secs) {
    hnswc_index *ix = NULL;
    double c0 = cpu_now(), t0 = now();
    check(flags ? hnswc_open(path, flags, &ix) : hnswc_load(path, &ix), path);
    *secs = now() - t0;
    last_cpu = cpu_now() - c0;
    return ix;
}

/* Queries [from, to) on ix; labels and distances into out. */
static double run_chunk(const hnswc_index *ix, const float *q, size_t dim, size_t from, size_t to,
                        size_t ef, uint64_t *labels, float *dists) {
    double t0 = now();
    for (size_t i = from; i < to; i++) {
        size_t found;
        check(hnswc_search(ix, q + i * dim, K, ef, NULL, NULL, labels + i * K, dists + i * K,
                           &found),
              "search");
        for (size_t j = found; j < K; j++) {
            labels[i * K + j] = UINT64_MAX;
            dists[i * K + j] = -1.f;
        }
    }
    return now() - t0;
}

/* Drops the file's pages from the page cache (clean, unmapped pages: all
 * of them here). */
static void drop(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fdatasync(fd) != 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0)
        die("cannot drop the index file from the page cache");
    close(fd);
}

/* kB of file pages this process maps with huge pages (-1: unknown). */
static long file_pmd_kb(void) {
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    long kb = -1;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "FilePmdMapped: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

typedef struct result {
    double open_load, open_map, open_verify; /* fastest, seconds */
    double cpu_load, cpu_map;                /* fastest CPU time of the same opens */
    double q_map, q_load, first_chunk_ratio; /* sums of the fastest chunks */
    long pmd_kb;
    size_t mismatches;
    hnswc_info im, il;
} result;

static void measure(const char *index, const float *q, size_t nq, size_t dim, size_t ef,
                    size_t rounds, size_t open_rounds, size_t chunk, result *res) {
    memset(res, 0, sizeof *res);
    /* ---- open ---- */
    res->open_load = res->open_map = res->open_verify = 1e30;
    res->cpu_load = res->cpu_map = 1e30;
    for (size_t r = 0; r < open_rounds; r++) {
        for (int turn = 0; turn < 3; turn++) {
            int which = (int)((turn + r) % 3); /* rotate who goes first */
            unsigned flags = which == 0 ? 0 : which == 1 ? HNSWC_OPEN_MMAP
                                                         : HNSWC_OPEN_MMAP | HNSWC_OPEN_VERIFY;
            double t;
            hnswc_index *ix = open_with(index, flags, &t);
            hnswc_free(ix);
            double *best = which == 0 ? &res->open_load : which == 1 ? &res->open_map
                                                                     : &res->open_verify;
            if (t < *best)
                *best = t;
            double *cbest = which == 0 ? &res->cpu_load : which == 1 ? &res->cpu_map : NULL;
            if (cbest && last_cpu < *cbest)
                *cbest = last_cpu;
        }
    }

    /* ---- the first nq queries ---- */
    size_t nchunks = (nq + chunk - 1) / chunk;
    double *bm = malloc(nchunks * sizeof *bm), *bl = malloc(nchunks * sizeof *bl);
    uint64_t *lm = malloc(nq * K * sizeof *lm), *ll = malloc(nq * K * sizeof *ll);
    float *dm = malloc(nq * K * sizeof *dm), *dl = malloc(nq * K * sizeof *dl);
    if (!bm || !bl || !lm || !ll || !dm || !dl)
        die("out of memory");
    for (size_t c = 0; c < nchunks; c++)
        bm[c] = bl[c] = 1e30;
    for (size_t r = 0; r < rounds; r++) {
        double t;
        hnswc_index *loaded = open_with(index, 0, &t);
        hnswc_index *mapped = open_with(index, HNSWC_OPEN_MMAP, &t);
        for (size_t c = 0; c < nchunks; c++) {
            size_t from = c * chunk, to = from + chunk < nq ? from + chunk : nq;
            int mapped_first = (int)((c + r) % 2 == 0);
            for (int turn = 0; turn < 2; turn++) {
                int m = turn == 0 ? mapped_first : !mapped_first;
                double dt = run_chunk(m ? mapped : loaded, q, dim, from, to, ef, m ? lm : ll,
                                      m ? dm : dl);
                double *best = m ? &bm[c] : &bl[c];
                if (dt < *best)
                    *best = dt;
            }
        }
        if (memcmp(lm, ll, nq * K * sizeof *lm) != 0 || memcmp(dm, dl, nq * K * sizeof *dm) != 0)
            res->mismatches++;
        res->pmd_kb = file_pmd_kb();
        check(hnswc_get_info(mapped, &res->im), "info");
        check(hnswc_get_info(loaded, &res->il), "info");
        hnswc_free(loaded);
        hnswc_free(mapped);
    }
    for (size_t c = 0; c < nchunks; c++) {
        res->q_map += bm[c];
        res->q_load += bl[c];
    }
    res->first_chunk_ratio = bm[0] / bl[0];
    free(bm);
    free(bl);
    free(lm);
    free(ll);
    free(dm);
    free(dl);
}

static void print(const char *state, const result *r, size_t nq, size_t chunk) {
    printf("  [%s] open: hnswc_load %.1f ms, hnswc_open(MMAP) %.2f ms, MMAP|VERIFY %.1f ms: "
           "load / mmap = %.1fx (target >= 20x)\n", state, r->open_load * 1e3, r->open_map * 1e3,
           r->open_verify * 1e3, r->open_load / r->open_map);
    printf("  [%s] open, CPU time of this thread: hnswc_load %.1f ms, hnswc_open(MMAP) %.2f ms: "
           "load / mmap = %.1fx\n", state, r->cpu_load * 1e3, r->cpu_map * 1e3,
           r->cpu_load / r->cpu_map);
    printf("  [%s] first %zu queries: mapped / loaded = %.3f (target <= 1.2); first chunk of "
           "%zu: %.3f; huge-page-mapped file pages: %ld kB\n", state, nq, r->q_map / r->q_load,
           chunk, r->first_chunk_ratio, r->pmd_kb);
}

static void json_state(FILE *f, const char *state, const result *r) {
    fprintf(f, "\"%s\":{\"open_load_s\":%.6f,\"open_mmap_s\":%.6f,\"open_mmap_verify_s\":%.6f,"
               "\"open_ratio\":%.3f,\"open_load_cpu_s\":%.6f,\"open_mmap_cpu_s\":%.6f,"
               "\"open_cpu_ratio\":%.3f,\"queries_mapped_s\":%.6f,\"queries_loaded_s\":%.6f,"
               "\"queries_ratio\":%.4f,\"first_chunk_ratio\":%.4f,\"file_pmd_mapped_kb\":%ld,"
               "\"identical\":%s}",
            state, r->open_load, r->open_map, r->open_verify, r->open_load / r->open_map,
            r->cpu_load, r->cpu_map, r->cpu_load / r->cpu_map, r->q_map,
            r->q_load, r->q_map / r->q_load, r->first_chunk_ratio, r->pmd_kb,
            r->mismatches ? "false" : "true");
}

int main(int argc, char **argv) {
    const char *index = NULL, *queries = NULL, *json = NULL;
    size_t nq = 10000, rounds = 5, open_rounds = 15, chunk = 1000, ef = 64;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            die("every option takes a value");
        if (!strcmp(a, "--index"))
            index = v;
        else if (!strcmp(a, "--queries"))
            queries = v;
        else if (!strcmp(a, "--json"))
            json = v;
        else if (!strcmp(a, "--nq"))
            nq = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--rounds"))
            rounds = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--open-rounds"))
            open_rounds = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--chunk"))
            chunk = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--ef"))
            ef = strtoul(v, NULL, 10);
        else
            die("unknown option");
        i++;
    }
    if (!index || !queries || !nq || !rounds || !open_rounds || !chunk)
        die("usage: bench_mmap --index FILE --queries IDX3 [--nq N] [--rounds R] "
            "[--open-rounds R] [--chunk C] [--ef EF] [--json OUT]");
    size_t n, dim;
    float *q = read_idx3(queries, nq, &n, &dim);
    nq = n;

    /* the file's format version (bytes 8..11): version 4 aligns the
     * vectors in the file; an index built by an older library is 1 */
    uint32_t version = 0;
    FILE *vf = fopen(index, "rb");
    if (!vf || fseek(vf, 8, SEEK_SET) != 0 || fread(&version, 4, 1, vf) != 1)
        die("cannot read the index file's header");
    fclose(vf);

    result saved, copied, huge;
    char copy[4096];
    if (snprintf(copy, sizeof copy, "%s.bench-copy", index) >= (int)sizeof copy)
        die("the index path is too long");
    double t;
    hnswc_index *orig = open_with(index, 0, &t);
    check(hnswc_save(orig, copy), "saving the copy"); /* cached as hnswc_save wrote it */
    hnswc_free(orig);
    measure(copy, q, nq, dim, ef, rounds, open_rounds, chunk, &saved);
    copy_file(index, copy); /* cached as 1 MiB writes leave it */
    measure(copy, q, nq, dim, ef, rounds, open_rounds, chunk, &copied);

    /* drop the copy from the cache and read it back through a mapping */
    drop(copy);
    hnswc_free(open_with(copy, HNSWC_OPEN_MMAP | HNSWC_OPEN_VERIFY, &t));
    measure(copy, q, nq, dim, ef, rounds, open_rounds, chunk, &huge);
    unlink(copy);

    printf("bench_mmap: %s (format version %u), %zu queries (k %d, ef %zu, 1 thread), fastest "
           "of %zu rounds (opens: of %zu), warm page cache\n", index, version, nq, K, ef, rounds,
           open_rounds);
    print("saved", &saved, nq, chunk);
    print("copied", &copied, nq, chunk);
    print("read", &huge, nq, chunk);
    printf("  memory: loaded %.1f MiB private; mapped %.1f MiB private + %.1f MiB mapped\n",
           copied.il.memory_bytes / 1048576.0, copied.im.memory_bytes / 1048576.0,
           copied.im.mapped_bytes / 1048576.0);
    int same = !saved.mismatches && !copied.mismatches && !huge.mismatches;
    printf("  results identical (labels and distances, bit for bit): %s\n", same ? "yes" : "NO");
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f)
            die("cannot write the JSON file");
        fprintf(f, "{\"index\":\"%s\",\"format_version\":%u,\"nq\":%zu,\"k\":%d,\"ef\":%zu,\"rounds\":%zu,"
                   "\"open_rounds\":%zu,\"chunk\":%zu,\"simd\":\"%s\","
                   "\"loaded_memory_bytes\":%llu,\"mapped_memory_bytes\":%llu,"
                   "\"mapped_bytes\":%llu,",
                index, version, nq, K, ef, rounds, open_rounds, chunk, hnswc_simd_name(),
                (unsigned long long)copied.il.memory_bytes,
                (unsigned long long)copied.im.memory_bytes,
                (unsigned long long)copied.im.mapped_bytes);
        json_state(f, "saved", &saved);
        fputc(',', f);
        json_state(f, "copied", &copied);
        fputc(',', f);
        json_state(f, "read", &huge);
        fprintf(f, "}\n");
        fclose(f);
    }
    free(q);
    return same ? 0 : 1;
}
