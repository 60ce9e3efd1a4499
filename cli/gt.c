/*
 * gt.c -- exact ground truth by brute force, and its cache (gt.h).
 */
#include "gt.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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
 * Brute force
 *
 * Work is split into blocks of QUERY_BLOCK queries that threads claim from
 * an atomic counter. Within a block, base vectors are visited in slices that
 * fit in the L2 cache and compared with every query of the block, so each
 * base vector is fetched from memory once per block rather than once per
 * query.
 * ------------------------------------------------------------------------ */

#define QUERY_BLOCK 32
#define BASE_SLICE_BYTES (256u << 10)

typedef struct gt_job {
    const float *base;
    size_t nb;
    const float *queries;
    size_t nq;
    size_t dim;
    hnswc_metric metric; /* as passed to hnswc_distance (IP for cosine) */
    size_t k;
    uint64_t *labels;
    float *dists;

    atomic_size_t next_block;
    atomic_size_t done;
    atomic_int failed;
    pthread_mutex_t err_lock;
    char err[256];
} gt_job;

/* (d, l) orders before (e, m): smaller distance, then smaller row. */
static int before(float d, uint64_t l, float e, uint64_t m)
{
    return d < e || (d == e && l < m);
}

/* Max-heap of the k best so far (the worst at the top). */
typedef struct topk {
    float *d;
    uint64_t *l;
    size_t size, k;
} topk;

/*
 * Fills the hole at the root with (d, l): the worse child moves up into the
 * hole while it is worse than (d, l), so the worst stays at the top.
 */
static void topk_sift_down(topk *t, float d, uint64_t l)
{
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= t->size)
            break;
        if (c + 1 < t->size && before(t->d[c], t->l[c], t->d[c + 1], t->l[c + 1]))
            c++;
        if (!before(d, l, t->d[c], t->l[c]))
            break;
        t->d[i] = t->d[c];
        t->l[i] = t->l[c];
        i = c;
    }
    t->d[i] = d;
    t->l[i] = l;
}

static void topk_push(topk *t, float d, uint64_t l)
{
    if (t->size >= t->k) {
        /* Full: (d, l) replaces the worst at the root if it is better. */
        if (before(d, l, t->d[0], t->l[0]))
            topk_sift_down(t, d, l);
        return;
    }
    size_t i = t->size++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(t->d[parent], t->l[parent], d, l))
            break;
        t->d[i] = t->d[parent];
        t->l[i] = t->l[parent];
        i = parent;
    }
    t->d[i] = d;
    t->l[i] = l;
}

/* Writes the heap's contents closest first into out_d/out_l (k slots). */
static void topk_drain(topk *t, float *out_d, uint64_t *out_l)
{
    for (size_t j = t->size; j < t->k; j++) {
        out_d[j] = INFINITY;
        out_l[j] = UINT64_MAX;
    }
    /* Pop the worst into the last free slot until empty. */
    while (t->size > 0) {
        size_t last = t->size - 1;
        out_d[last] = t->d[0];
        out_l[last] = t->l[0];
        float d = t->d[last];
        uint64_t l = t->l[last];
        t->size = last;
        if (last == 0)
            break;
        /* Re-insert the former last element from the root. */
        topk_sift_down(t, d, l);
    }
}

static void job_fail(gt_job *job, const char *msg)
{
    pthread_mutex_lock(&job->err_lock);
    if (!atomic_load(&job->failed))
        snprintf(job->err, sizeof job->err, "%s", msg);
    atomic_store(&job->failed, 1);
    pthread_mutex_unlock(&job->err_lock);
}

/* Thread body: claims query blocks until none is left or one fails. */
static void *gt_worker(void *arg)
{
    gt_job *job = arg;
    size_t qb = QUERY_BLOCK;
    float *hd = malloc(qb * job->k * sizeof *hd);
    uint64_t *hl = malloc(qb * job->k * sizeof *hl);
    topk heaps[QUERY_BLOCK];
    if (hd == NULL || hl == NULL) {
        job_fail(job, "out of memory");
        goto out;
    }
    size_t slice = BASE_SLICE_BYTES / (job->dim * sizeof(float));
    if (slice < 1)
        slice = 1;
    size_t nblocks = (job->nq + qb - 1) / qb;
    for (;;) {
        size_t blk = atomic_fetch_add(&job->next_block, 1);
        if (blk >= nblocks || atomic_load(&job->failed))
            break;
        size_t q0 = blk * qb, q1 = q0 + qb < job->nq ? q0 + qb : job->nq;
        for (size_t q = q0; q < q1; q++)
            heaps[q - q0] = (topk){hd + (q - q0) * job->k, hl + (q - q0) * job->k, 0, job->k};
        for (size_t b0 = 0; b0 < job->nb; b0 += slice) {
            size_t b1 = b0 + slice < job->nb ? b0 + slice : job->nb;
            for (size_t q = q0; q < q1; q++) {
                const float *qv = job->queries + q * job->dim;
                topk *t = &heaps[q - q0];
                for (size_t b = b0; b < b1; b++) {
                    float d;
                    hnswc_status st =
                        hnswc_distance(job->metric, qv, job->base + b * job->dim, job->dim, &d);
                    if (st != HNSWC_OK) {
                        job_fail(job, hnswc_status_string(st));
                        goto out;
                    }
                    topk_push(t, d, (uint64_t)b);
                }
            }
        }
        for (size_t q = q0; q < q1; q++)
            topk_drain(&heaps[q - q0], job->dists + q * job->k, job->labels + q * job->k);
        atomic_fetch_add(&job->done, q1 - q0);
    }
out:
    free(hd);
    free(hl);
    return NULL;
}

/* A normalised copy for the cosine metric (zero vectors stay zero). */
static float *normalized_copy(const float *v, size_t n, size_t dim)
{
    float *c = malloc(n * dim * sizeof *c);
    if (c == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const float *src = v + i * dim;
        float *dst = c + i * dim;
        double ss = 0;
        for (size_t j = 0; j < dim; j++)
            ss += (double)src[j] * src[j];
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 1.0f;
        for (size_t j = 0; j < dim; j++)
            dst[j] = src[j] * inv;
    }
    return c;
}

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
    if (k == 0 || nq > SIZE_MAX / sizeof(uint64_t) / k) {
        cli_set_error("too many queries");
        return -1;
    }
    gt_job *job = calloc(1, sizeof *job);
    float *nbase = NULL, *nqueries = NULL;
    pthread_t *tids = NULL;
    out->labels = malloc(nq * k * sizeof *out->labels);
    out->distances = malloc(nq * k * sizeof *out->distances);
    if (job == NULL || out->labels == NULL || out->distances == NULL) {
        cli_set_error("out of memory for the ground truth");
        goto fail_early;
    }

    /* Cosine is IP on unit vectors: normalise once rather than per pair. */
    const float *bp = base->data, *qp = queries->data;
    hnswc_metric dm = metric;
    if (metric == HNSWC_METRIC_COSINE) {
        nbase = normalized_copy(base->data, base->n, base->dim);
        nqueries = normalized_copy(queries->data, nq, queries->dim);
        if (nbase == NULL || nqueries == NULL) {
            cli_set_error("out of memory for the ground truth");
            goto fail_early;
        }
        bp = nbase;
        qp = nqueries;
        dm = HNSWC_METRIC_IP;
    }

    *job = (gt_job){.base = bp,
                    .nb = base->n,
                    .queries = qp,
                    .nq = nq,
                    .dim = base->dim,
                    .metric = dm,
                    .k = k,
                    .labels = out->labels,
                    .dists = out->distances};
    atomic_init(&job->next_block, 0);
    atomic_init(&job->done, 0);
    atomic_init(&job->failed, 0);
    pthread_mutex_init(&job->err_lock, NULL);

    unsigned nt = threads ? threads : cli_num_cpus();
    size_t nblocks = (nq + QUERY_BLOCK - 1) / QUERY_BLOCK;
    if (nt > nblocks)
        nt = (unsigned)nblocks;
    tids = malloc(nt * sizeof *tids);
    if (tids == NULL) {
        cli_set_error("out of memory");
        pthread_mutex_destroy(&job->err_lock);
        goto fail_early;
    }
    unsigned started = 0;
    while (started < nt && pthread_create(&tids[started], NULL, gt_worker, job) == 0)
        started++;
    if (started == 0) {
        cli_set_error("cannot start a thread for the ground truth");
        pthread_mutex_destroy(&job->err_lock);
        goto fail_early;
    }

    progress pr;
    progress_start(&pr, "ground truth", "queries", nq, show_progress);
    for (;;) {
        size_t done = atomic_load(&job->done);
        progress_update(&pr, done);
        if (done >= nq || atomic_load(&job->failed))
            break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    pthread_mutex_destroy(&job->err_lock);
    if (atomic_load(&job->failed)) {
        progress_abort(&pr);
        cli_set_error("ground truth: %s", job->err);
        goto fail_early;
    }
    progress_finish(&pr);
    out->nq = nq;
    out->k = k;
    free(tids);
    free(nbase);
    free(nqueries);
    free(job);
    return 0;

fail_early:
    free(tids);
    free(nbase);
    free(nqueries);
    free(job);
    gt_free(out);
    return -1;
}
