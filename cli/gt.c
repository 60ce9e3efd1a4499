/*
 * gt.c -- exact ground truth by brute force, and its cache (gt.h).
 */
#include "gt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "errors.h"
#include "platform.h"
#include "progress.h"

#define GT_MAGIC "HNSWCGT1"
#define GT_VERSION 1u
#define GT_HEADER 40u

void gt_free(ground_truth *gt)
{
    free(gt->labels);
    free(gt->distances);
    memset(gt, 0, sizeof *gt);
}

/* ------------------------------------------------------------------------
 * Cache key
 * ------------------------------------------------------------------------ */

/* FNV-1a 64 over n bytes, continuing from h (start with FNV_OFFSET). Chosen
 * for the cache key and the file checksum because it is a few lines and
 * fast enough for hashing a dataset once; it does not guard against
 * malice, only against accidents. */
#define FNV_OFFSET 14695981039346656037ull

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t hash_u64(uint64_t h, uint64_t v)
{
    unsigned char b[8];
    cli_put_le64(b, v);
    return fnv1a(h, b, 8);
}

/* Hashes floats by their little-endian bytes, whatever the host order, so a
 * cache file is valid on every machine. */
static uint64_t hash_floats(uint64_t h, const float *v, size_t n)
{
    unsigned char buf[4096];
    size_t per = sizeof buf / 4;
    for (size_t i = 0; i < n; i += per) {
        size_t m = n - i < per ? n - i : per;
        for (size_t j = 0; j < m; j++) {
            uint32_t u;
            memcpy(&u, &v[i + j], 4);
            cli_put_le32(buf + 4 * j, u);
        }
        h = fnv1a(h, buf, 4 * m);
    }
    return h;
}

uint64_t gt_key(const dataset *base, const dataset *queries, hnswc_metric metric, size_t k)
{
    uint64_t h = fnv1a(FNV_OFFSET, "hnswc-gt-v1", 11);
    h = hash_u64(h, (uint64_t)metric);
    h = hash_u64(h, k);
    h = hash_u64(h, base->n);
    h = hash_u64(h, base->dim);
    h = hash_floats(h, base->data, base->n * base->dim);
    h = hash_u64(h, queries->n);
    h = hash_u64(h, queries->dim);
    h = hash_floats(h, queries->data, queries->n * queries->dim);
    return h;
}

/* ------------------------------------------------------------------------
 * Cache file
 * ------------------------------------------------------------------------ */

/* Bytes of a cache file for nq x k, or 0 on overflow. */
static uint64_t cache_size(size_t nq, size_t k)
{
    if (k != 0 && nq > (UINT64_MAX - 64) / 12 / k)
        return 0;
    return GT_HEADER + (uint64_t)nq * k * 12 + 8;
}

int gt_cache_load(const char *path, uint64_t key, hnswc_metric metric, size_t nq, size_t k,
                  ground_truth *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        cli_set_error("%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    unsigned char *buf = NULL;
    struct stat st;
    uint64_t want = cache_size(nq, k);
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        cli_set_error("%s: not a regular file", path);
        goto done;
    }
    if (want == 0 || want > SIZE_MAX || (uint64_t)st.st_size != want) {
        cli_set_error("%s: %lld bytes where %llu were expected", path, (long long)st.st_size,
                      (unsigned long long)want);
        goto done;
    }
    buf = malloc((size_t)want);
    if (buf == NULL) {
        cli_set_error("%s: out of memory", path);
        goto done;
    }
    if (fread(buf, 1, (size_t)want, f) != (size_t)want) {
        cli_set_error("%s: read error", path);
        goto done;
    }
    size_t body = (size_t)want - 8;
    if (fnv1a(FNV_OFFSET, buf, body) != cli_get_le64(buf + body)) {
        cli_set_error("%s: checksum mismatch", path);
        goto done;
    }
    if (memcmp(buf, GT_MAGIC, 8) != 0 || cli_get_le32(buf + 8) != GT_VERSION ||
        cli_get_le32(buf + 12) != (uint32_t)metric || cli_get_le64(buf + 16) != key ||
        cli_get_le64(buf + 24) != nq || cli_get_le64(buf + 32) != k) {
        cli_set_error("%s: the header does not match this dataset", path);
        goto done;
    }
    size_t total = nq * k;
    out->labels = malloc(total * sizeof *out->labels);
    out->distances = malloc(total * sizeof *out->distances);
    if (out->labels == NULL || out->distances == NULL) {
        cli_set_error("%s: out of memory", path);
        gt_free(out);
        goto done;
    }
    const unsigned char *lp = buf + GT_HEADER, *dp = lp + total * 8;
    for (size_t i = 0; i < total; i++) {
        out->labels[i] = cli_get_le64(lp + 8 * i);
        uint32_t u = cli_get_le32(dp + 4 * i);
        memcpy(&out->distances[i], &u, 4);
    }
    out->nq = nq;
    out->k = k;
    rc = 1;
done:
    free(buf);
    fclose(f);
    return rc;
}

int gt_cache_save(const char *path, uint64_t key, hnswc_metric metric, const ground_truth *gt)
{
    uint64_t size = cache_size(gt->nq, gt->k);
    if (size == 0 || size > SIZE_MAX || gt->distances == NULL) {
        cli_set_error("%s: nothing to cache", path);
        return -1;
    }
    /* Built in memory, then written in one go: it is small (12 bytes per
     * neighbour) and the checksum covers every byte. */
    unsigned char *buf = malloc((size_t)size);
    char *tmp = malloc(strlen(path) + 32);
    if (buf == NULL || tmp == NULL) {
        free(buf);
        free(tmp);
        cli_set_error("out of memory");
        return -1;
    }
    memcpy(buf, GT_MAGIC, 8);
    cli_put_le32(buf + 8, GT_VERSION);
    cli_put_le32(buf + 12, (uint32_t)metric);
    cli_put_le64(buf + 16, key);
    cli_put_le64(buf + 24, gt->nq);
    cli_put_le64(buf + 32, gt->k);
    size_t total = gt->nq * gt->k;
    unsigned char *lp = buf + GT_HEADER, *dp = lp + total * 8;
    for (size_t i = 0; i < total; i++) {
        cli_put_le64(lp + 8 * i, gt->labels[i]);
        uint32_t u;
        memcpy(&u, &gt->distances[i], 4);
        cli_put_le32(dp + 4 * i, u);
    }
    size_t body = (size_t)size - 8;
    cli_put_le64(buf + body, fnv1a(FNV_OFFSET, buf, body));

    sprintf(tmp, "%s.tmp.%ld", path, (long)getpid());
    int rc = -1;
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        cli_set_error("%s: %s", tmp, strerror(errno));
        goto done;
    }
    int ok = fwrite(buf, 1, (size_t)size, f) == (size_t)size;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    int err = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        cli_set_error("%s: %s", path, strerror(ok ? errno : err));
        remove(tmp);
        goto done;
    }
    rc = 0;
done:
    free(buf);
    free(tmp);
    return rc;
}

int gt_mkdirs(const char *dir)
{
    size_t len = strlen(dir);
    char *p = malloc(len + 1);
    if (p == NULL) {
        cli_set_error("out of memory");
        return -1;
    }
    memcpy(p, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        struct stat st;
        if (stat(p, &st) != 0) {
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                cli_set_error("%s: %s", p, strerror(errno));
                free(p);
                return -1;
            }
        } else if (!S_ISDIR(st.st_mode)) {
            cli_set_error("%s: not a directory", p);
            free(p);
            return -1;
        }
        p[i] = c;
    }
    free(p);
    return 0;
}

/* ------------------------------------------------------------------------
 * Brute force: the library's exact (flat) index
 *
 * The base vectors go into a flat index under their row numbers, and the
 * queries are searched with hnswc_search_batch on all cores: the library
 * scans the rows in cache-sized tiles shared by groups of queries, with the
 * same kernels (and normalisation for cosine) as every other search, and
 * breaks ties by row, so the result does not depend on the threads. The
 * queries go in chunks only so that the progress display moves.
 * ------------------------------------------------------------------------ */

/* Queries per hnswc_search_batch call: enough to give every thread full
 * groups (the library groups up to 64), few enough for a lively display. */
#define QUERY_CHUNK_PER_THREAD 256u

int gt_compute(const dataset *base, const dataset *queries, hnswc_metric metric, size_t k,
               unsigned threads, int show_progress, ground_truth *out)
{
    memset(out, 0, sizeof *out);
    if (base->dim != queries->dim) {
        cli_set_error("the queries have dimension %zu but the base vectors %zu", queries->dim,
                      base->dim);
        return -1;
    }
    size_t nq = queries->n;
    if (k == 0 || nq > SIZE_MAX / sizeof(uint64_t) / k || base->n > SIZE_MAX / sizeof(uint64_t)) {
        cli_set_error("too many queries");
        return -1;
    }
    hnswc_options o;
    memset(&o, 0, sizeof o);
    o.kind = HNSWC_KIND_FLAT;
    o.dim = (uint32_t)base->dim;
    o.metric = metric;
    o.capacity = base->n;
    hnswc_index *ix = NULL;
    uint64_t *rows = malloc((base->n ? base->n : 1) * sizeof *rows);
    size_t *found = malloc((nq ? nq : 1) * sizeof *found);
    size_t cells = nq * k > 0 ? nq * k : 1;
    out->labels = malloc(cells * sizeof *out->labels);
    out->distances = malloc(cells * sizeof *out->distances);
    if (rows == NULL || found == NULL || out->labels == NULL || out->distances == NULL) {
        cli_set_error("out of memory for the ground truth");
        goto fail;
    }
    hnswc_status st = hnswc_create(&o, &ix);
    for (size_t i = 0; i < base->n; i++)
        rows[i] = (uint64_t)i;
    if (st == HNSWC_OK)
        st = hnswc_add_batch(ix, base->data, rows, base->n, 0, 1, NULL);
    if (st != HNSWC_OK) {
        cli_set_lib_error("ground truth: cannot hold the base vectors", st);
        goto fail;
    }

    unsigned nt = threads ? threads : cli_num_cpus();
    size_t chunk = (size_t)nt * QUERY_CHUNK_PER_THREAD;
    progress pr;
    progress_start(&pr, "ground truth", "queries", nq, show_progress);
    for (size_t q0 = 0; q0 < nq; q0 += chunk) {
        size_t m = nq - q0 < chunk ? nq - q0 : chunk;
        st = hnswc_search_batch(ix, queries->data + q0 * base->dim, m, k, 0, NULL, NULL, threads,
                                out->labels + q0 * k, out->distances + q0 * k, found + q0);
        if (st != HNSWC_OK) {
            progress_abort(&pr);
            cli_set_lib_error("ground truth", st);
            goto fail;
        }
        progress_update(&pr, q0 + m);
    }
    progress_finish(&pr);
    out->nq = nq;
    out->k = k;
    hnswc_free(ix);
    free(rows);
    free(found);
    return 0;

fail:
    hnswc_free(ix);
    free(rows);
    free(found);
    gt_free(out);
    return -1;
}
