/*
 * testutil.c -- helpers shared by the cmocka tests (see testutil.h).
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Random numbers
 * ------------------------------------------------------------------------ */

tu_rng tu_rng_make(uint64_t seed)
{
    tu_rng r = {seed * 0x9E3779B97F4A7C15ull + 1};
    return r;
}

uint64_t tu_next(tu_rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double tu_uniform(tu_rng *r) { return (double)(tu_next(r) >> 11) * (1.0 / 9007199254740992.0); }

void *tu_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        fail_msg("out of memory allocating %zu bytes", size);
    return p;
}

void *tu_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        fail_msg("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

float *tu_random_vectors(tu_rng *r, size_t n, size_t dim, float lo, float hi)
{
    float *v = tu_xmalloc(n * dim * sizeof *v);
    for (size_t i = 0; i < n * dim; i++)
        v[i] = lo + (float)tu_uniform(r) * (hi - lo);
    return v;
}

/* ------------------------------------------------------------------------
 * Scale
 * ------------------------------------------------------------------------ */

double tu_scale(void)
{
    const char *s = getenv("HNSWC_TEST_SCALE");
    if (s == NULL || *s == '\0')
        return 1.0;
    double v = strtod(s, NULL);
    return (v > 0.0 && v <= 1.0) ? v : 1.0;
}

size_t tu_scaled(size_t n, size_t min)
{
    size_t v = (size_t)((double)n * tu_scale());
    if (v < min)
        v = min;
    return v > n ? n : v;
}

/* ------------------------------------------------------------------------
 * Fashion-MNIST
 * ------------------------------------------------------------------------ */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

float *tu_load_fmnist(const char *env_var, size_t max_n, size_t *n, size_t *dim)
{
    /* A missing data set is a failure, not a skip: `make deps` installs it
       and the make rule decompresses it, so absence means a broken setup. */
    const char *path = getenv(env_var);
    if (path == NULL || *path == '\0')
        fail_msg("%s is not set (run the tests through `make test-c`)", env_var);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s=%s: %s", env_var, path, strerror(errno));
    unsigned char hdr[16];
    if (fread(hdr, 1, sizeof hdr, f) != sizeof hdr || be32(hdr) != 0x00000803u) {
        fclose(f);
        fail_msg("%s is not an idx3-ubyte file", path);
    }
    size_t total = be32(hdr + 4), d = (size_t)be32(hdr + 8) * be32(hdr + 12);
    size_t count = total < max_n ? total : max_n;
    unsigned char *raw = tu_xmalloc(count * d);
    size_t got = fread(raw, 1, count * d, f);
    fclose(f);
    if (got != count * d) {
        free(raw);
        fail_msg("%s is truncated", path);
    }
    float *v = tu_xmalloc(count * d * sizeof *v);
    for (size_t i = 0; i < count * d; i++)
        v[i] = (float)raw[i];
    free(raw);
    *n = count;
    *dim = d;
    return v;
}

void tu_fmnist_load(tu_fmnist *f, size_t max_train, size_t max_test)
{
    size_t qdim;
    f->data = tu_load_fmnist("HNSWC_FMNIST_TRAIN", max_train, &f->n, &f->dim);
    f->queries = tu_load_fmnist("HNSWC_FMNIST_TEST", max_test, &f->nq, &qdim);
    assert_int_equal(qdim, f->dim);
}

void tu_fmnist_free(tu_fmnist *f)
{
    free(f->data);
    free(f->queries);
    f->data = f->queries = NULL;
}

/* ------------------------------------------------------------------------
 * Exact ground truth
 * ------------------------------------------------------------------------ */

double tu_exact_dist(hnswc_metric metric, const float *a, const float *b, size_t dim)
{
    double s = 0.0, na = 0.0, nb = 0.0;
    switch (metric) {
    case HNSWC_METRIC_L2:
        for (size_t i = 0; i < dim; i++) {
            double d = (double)a[i] - (double)b[i];
            s += d * d;
        }
        return s;
    case HNSWC_METRIC_IP:
        for (size_t i = 0; i < dim; i++)
            s += (double)a[i] * (double)b[i];
        return 1.0 - s;
    case HNSWC_METRIC_COSINE:
        for (size_t i = 0; i < dim; i++) {
            s += (double)a[i] * (double)b[i];
            na += (double)a[i] * (double)a[i];
            nb += (double)b[i] * (double)b[i];
        }
        /* hnswlib: a zero vector stays zero, so its "cosine" distance is 1. */
        if (na == 0.0 || nb == 0.0)
            return 1.0;
        return 1.0 - s / (sqrt(na) * sqrt(nb));
    }
    fail_msg("tu_exact_dist: bad metric %d", (int)metric);
    return 0.0;
}

size_t tu_row_of(uint64_t label, size_t n)
{
    if (label < 1000003u || (label - 1000003u) % 7u != 0)
        return SIZE_MAX;
    uint64_t row = (label - 1000003u) / 7u;
    return row < n ? (size_t)row : SIZE_MAX;
}

size_t tu_brute_knn(hnswc_metric metric, const float *data, size_t n, size_t dim,
                    const unsigned char *deleted, tu_row_filter row_ok, void *user,
                    const float *query, size_t k, size_t *out_rows, double *out_dists)
{
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        if ((deleted && deleted[i]) || (row_ok && !row_ok(i, user)))
            continue;
        double d = tu_exact_dist(metric, data + i * dim, query, dim);
        if (found == k && d >= out_dists[k - 1])
            continue;
        /* Insertion into the sorted top-k list. */
        size_t j = found < k ? found++ : k - 1;
        while (j > 0 && out_dists[j - 1] > d) {
            out_dists[j] = out_dists[j - 1];
            out_rows[j] = out_rows[j - 1];
            j--;
        }
        out_dists[j] = d;
        out_rows[j] = i;
    }
    return found;
}

int tu_dist_close(double got, double exact)
{
    /* Float kernels vs a double loop: relative 1e-4, with an absolute floor
       of 1e-4 for distances near 0 (1 - dot cancels). */
    return fabs(got - exact) <= 1e-4 * fmax(fabs(exact), 1.0);
}

size_t tu_check_result(hnswc_metric metric, const float *data, size_t n, size_t dim,
                       const unsigned char *deleted, tu_row_filter row_ok, void *user,
                       const float *query, size_t k, const uint64_t *labels,
                       const float *dists, size_t n_found, size_t true_found,
                       const double *true_dists)
{
    if (n_found > k)
        fail_msg("n_found %zu > k %zu", n_found, k);
    if (n_found != true_found)
        fail_msg("n_found %zu but %zu eligible elements exist (k %zu)", n_found, true_found, k);
    size_t hits = 0;
    double kth = true_found ? true_dists[true_found - 1] : 0.0;
    for (size_t i = 0; i < n_found; i++) {
        size_t row = tu_row_of(labels[i], n);
        if (row == SIZE_MAX)
            fail_msg("result %zu: label %llu was never added", i, (unsigned long long)labels[i]);
        for (size_t j = 0; j < i; j++)
            if (labels[j] == labels[i])
                fail_msg("result %zu: label %llu returned twice", i,
                         (unsigned long long)labels[i]);
        if (deleted && deleted[row])
            fail_msg("result %zu: label %llu is deleted", i, (unsigned long long)labels[i]);
        if (row_ok && !row_ok(row, user))
            fail_msg("result %zu: label %llu is filtered out", i, (unsigned long long)labels[i]);
        double exact = tu_exact_dist(metric, data + row * dim, query, dim);
        if (dists) {
            if (!tu_dist_close(dists[i], exact))
                fail_msg("result %zu: label %llu distance %.9g, exact %.9g", i,
                         (unsigned long long)labels[i], (double)dists[i], exact);
            if (i > 0 && dists[i] < dists[i - 1])
                fail_msg("result %zu: distances not ascending (%.9g after %.9g)", i,
                         (double)dists[i], (double)dists[i - 1]);
        }
        if (exact <= kth || tu_dist_close(exact, kth))
            hits++;
    }
    return hits;
}

/* ------------------------------------------------------------------------
 * Building indexes
 * ------------------------------------------------------------------------ */

hnswc_index *tu_create(uint32_t dim, hnswc_metric metric, uint32_t M, uint32_t efc,
                       uint64_t seed, uint64_t capacity)
{
    hnswc_options o;
    memset(&o, 0, sizeof o);
    o.dim = dim;
    o.metric = metric;
    o.M = M;
    o.ef_construction = efc;
    o.seed = seed;
    o.capacity = capacity;
    hnswc_index *ix = NULL;
    tu_ok(hnswc_create(&o, &ix));
    assert_non_null(ix);
    return ix;
}

hnswc_index *tu_create_storage(uint32_t dim, hnswc_metric metric, hnswc_storage storage)
{
    hnswc_options o = {0};
    o.dim = dim;
    o.metric = metric;
    o.storage = storage;
    hnswc_index *ix = NULL;
    tu_ok(hnswc_create(&o, &ix));
    return ix;
}

void tu_add_rows(hnswc_index *ix, const float *data, size_t n, size_t dim, unsigned threads)
{
    uint64_t *labels = tu_xmalloc(n * sizeof *labels);
    for (size_t i = 0; i < n; i++)
        labels[i] = tu_label_of(i);
    size_t added = 0;
    (void)dim;
    hnswc_status st = hnswc_add_batch(ix, data, labels, n, 0, threads, &added);
    free(labels);
    if (st != HNSWC_OK)
        fail_msg("hnswc_add_batch: %s: %s", hnswc_status_string(st), hnswc_errmsg(NULL));
    assert_int_equal(added, n);
}

hnswc_index *tu_build_random(size_t n, uint32_t dim, uint32_t M, uint32_t efc, uint64_t seed)
{
    tu_rng r = tu_rng_make(seed);
    float *data = tu_random_vectors(&r, n, dim, -1.f, 1.f);
    hnswc_index *ix = tu_create(dim, HNSWC_METRIC_L2, M, efc, 0, 0);
    tu_add_rows(ix, data, n, dim, 1);
    free(data);
    return ix;
}

uint64_t tu_count(const hnswc_index *ix)
{
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    return info.count;
}

hnswc_index *tu_open_mapped(const char *path, unsigned flags)
{
    hnswc_index *ix = NULL;
    tu_ok(hnswc_open(path, HNSWC_OPEN_MMAP | flags, &ix));
    assert_non_null(ix);
    return ix;
}

void tu_assert_same_search(const hnswc_index *a, const hnswc_index *b, const float *queries,
                           size_t nq, size_t dim, size_t k, size_t ef)
{
    uint64_t *la = tu_xmalloc(2 * k * sizeof *la), *lb = la + k;
    float *da = tu_xmalloc(2 * k * sizeof *da), *db = da + k;
    for (size_t q = 0; q < nq; q++) {
        size_t fa, fb;
        tu_ok(hnswc_search(a, queries + q * dim, k, ef, NULL, NULL, la, da, &fa));
        tu_ok(hnswc_search(b, queries + q * dim, k, ef, NULL, NULL, lb, db, &fb));
        assert_int_equal(fa, fb);
        assert_memory_equal(la, lb, fa * sizeof *la);
        assert_memory_equal(da, db, fa * sizeof *da);
    }
    free(la);
    free(da);
}

/* ------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------ */

char *tu_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    char *dir = tu_xmalloc(strlen(base) + 32);
    sprintf(dir, "%s/hnswc-test-XXXXXX", base);
    if (mkdtemp(dir) == NULL)
        fail_msg("mkdtemp(%s): %s", dir, strerror(errno));
    return dir;
}

void tu_rmdir(char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char *p = tu_path(dir, e->d_name);
            if (remove(p) != 0)
                rmdir(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

char *tu_path(const char *dir, const char *name)
{
    char *p = tu_xmalloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

unsigned char *tu_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, len = 0;
    unsigned char *buf = tu_xmalloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                fail_msg("out of memory reading %s", path);
            }
            buf = nb;
        }
    }
    fclose(f);
    /* Shrink to the exact size so that ASan catches reads past the end when
       the buffer is handed to hnswc_deserialize. */
    unsigned char *exact = tu_xmalloc(len ? len : 1);
    memcpy(exact, buf, len);
    free(buf);
    *size = len;
    return exact;
}

void tu_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        fail_msg("cannot create %s: %s", path, strerror(errno));
    int write_failed = size != 0 && fwrite(data, 1, size, f) != size;
    int close_failed = fclose(f) != 0; /* always close, even after a failed write */
    if (write_failed || close_failed)
        fail_msg("cannot write %s", path);
}

size_t tu_dir_entries(const char *dir, char names[][256], size_t max)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        fail_msg("opendir(%s): %s", dir, strerror(errno));
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n < max)
            snprintf(names[n], 256, "%s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

int tu_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ------------------------------------------------------------------------
 * hnswc's file layout
 * ------------------------------------------------------------------------ */

/* A reflected CRC-32 with polynomial poly, bit by bit. */
static uint32_t crc_bits(uint32_t poly, const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ poly : c >> 1;
    }
    return ~c;
}

uint32_t tu_crc32c(const unsigned char *p, size_t n) { return crc_bits(0x82f63b78u, p, n); }

uint32_t tu_crc32_ieee(const unsigned char *p, size_t n) { return crc_bits(0xedb88320u, p, n); }

size_t tu_parse_sections(const unsigned char *b, size_t size, tu_section *out, size_t max)
{
    static const unsigned char magic[8] = {0x89, 'H', 'N', 'S', 'W', 'C', '\r', '\n'};
    assert_true(size >= 24);
    assert_memory_equal(b, magic, 8);
    uint32_t crc;
    memcpy(&crc, b + 20, 4);
    assert_int_equal(crc, tu_crc32c(b, 20)); /* our CRC agrees with the library's */
    size_t off = 24, n = 0;
    while (off < size) {
        assert_true(n < max && off + 16 <= size);
        uint64_t len;
        memcpy(out[n].tag, b + off, 4);
        out[n].tag[4] = '\0';
        memcpy(&len, b + off + 8, 8);
        out[n].head = off;
        out[n].payload = off + 16;
        out[n].len = (size_t)len;
        assert_true(off + 16 + len + 4 <= size);
        memcpy(&crc, b + off + 16 + len, 4);
        assert_int_equal(crc, tu_crc32c(b + off + 16, (size_t)len));
        off += 16 + (size_t)len + 4;
        n++;
    }
    assert_int_equal(off, size);
    return n;
}

const tu_section *tu_find_section(const tu_section *secs, size_t n, const char *tag)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(secs[i].tag, tag) == 0)
            return &secs[i];
    fail_msg("no section %s in the file", tag);
    return NULL;
}

void tu_fix_crcs(unsigned char *b, const tu_section *secs, size_t n)
{
    uint32_t c = tu_crc32c(b, 20);
    memcpy(b + 20, &c, 4);
    for (size_t i = 0; i < n; i++) {
        c = tu_crc32c(b + secs[i].payload, secs[i].len);
        memcpy(b + secs[i].payload + secs[i].len, &c, 4);
    }
}

size_t tu_vecs_first(const tu_section *vecs) { return (vecs->payload + 63) / 64 * 64; }

size_t tu_vecs_row(uint32_t dim)
{
    size_t bytes = (size_t)dim * 4, r = 4;
    if (bytes >= 64)
        return (bytes + 63) / 64 * 64;
    while (r < bytes)
        r *= 2;
    return r;
}

unsigned char *tu_downgrade(const unsigned char *b, size_t size, uint32_t dim, uint32_t version,
                            size_t *out_size)
{
    tu_section secs[8];
    size_t ns = tu_parse_sections(b, size, secs, 8);
    uint32_t v;
    memcpy(&v, b + 8, 4);
    assert_int_equal(v, 4);
    unsigned char *o = tu_xmalloc(size), *w = o;
    memcpy(w, b, 24);
    memcpy(w + 8, &version, 4);
    uint32_t c = tu_crc32c(w, 20);
    memcpy(w + 20, &c, 4);
    w += 24;
    size_t count = tu_find_section(secs, ns, "NODE")->len / 16, row = tu_vecs_row(dim);
    for (size_t i = 0; i < ns; i++) {
        const unsigned char *src = b + secs[i].payload;
        unsigned char *head = w, *payload = w + 16;
        uint64_t len = secs[i].len;
        memcpy(head, b + secs[i].head, 16);
        if (strcmp(secs[i].tag, "PARM") == 0 && version < 3) {
            uint64_t max;
            memcpy(&max, src + 64, 8);
            assert_int_equal(max, 0); /* a limit needs version 3 */
            len = 64;
            memcpy(payload, src, 64);
        } else if (strcmp(secs[i].tag, "VECS") == 0) {
            const unsigned char *first = b + tu_vecs_first(&secs[i]);
            len = (uint64_t)count * dim * 4;
            for (size_t k = 0; k < count; k++)
                memcpy(payload + k * dim * 4, first + k * row, (size_t)dim * 4);
        } else {
            memcpy(payload, src, (size_t)len);
        }
        memcpy(head + 8, &len, 8);
        c = tu_crc32c(payload, (size_t)len);
        memcpy(payload + len, &c, 4);
        w = payload + len + 4;
    }
    *out_size = (size_t)(w - o);
    return o;
}

void tu_expect_load(const unsigned char *b, size_t size, const char *file, hnswc_status expect,
                    const char *what)
{
    hnswc_index *ix = (hnswc_index *)(uintptr_t)0x1;
    hnswc_status st = hnswc_deserialize(b, size, &ix);
    if (st != expect)
        fail_msg("%s: hnswc_deserialize returned %s (%s), expected %s", what,
                 hnswc_status_string(st), hnswc_errmsg(NULL), hnswc_status_string(expect));
    if (st != HNSWC_OK) {
        assert_null(ix);
        assert_true(hnswc_errmsg(NULL)[0] != '\0');
    }
    hnswc_free(st == HNSWC_OK ? ix : NULL);
    if (file == NULL)
        return;
    tu_write_file(file, b, size);
    ix = (hnswc_index *)(uintptr_t)0x1;
    st = hnswc_load(file, &ix);
    if (st != expect)
        fail_msg("%s: hnswc_load returned %s (%s), expected %s", what, hnswc_status_string(st),
                 hnswc_errmsg(NULL), hnswc_status_string(expect));
    if (st != HNSWC_OK)
        assert_null(ix);
    hnswc_free(st == HNSWC_OK ? ix : NULL);
    /* opened in place and verified: the mapped reader checks all that the
     * loader checks (its own code for NODE, LNK0 and labels) */
    ix = (hnswc_index *)(uintptr_t)0x1;
    st = hnswc_open(file, HNSWC_OPEN_MMAP | HNSWC_OPEN_VERIFY, &ix);
    if (st != expect)
        fail_msg("%s: hnswc_open(MMAP | VERIFY) returned %s (%s), expected %s", what,
                 hnswc_status_string(st), hnswc_errmsg(NULL), hnswc_status_string(expect));
    if (st != HNSWC_OK)
        assert_null(ix);
    hnswc_free(st == HNSWC_OK ? ix : NULL);
}

/* ========================================================================
 * Failures from worker threads
 * ======================================================================== */

static pthread_mutex_t tu_fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char tu_first_failure[512];
static atomic_int tu_failures;

void tu_record(const char *fmt, ...)
{
    pthread_mutex_lock(&tu_fail_lock);
    if (atomic_fetch_add(&tu_failures, 1) == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tu_first_failure, sizeof tu_first_failure, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&tu_fail_lock);
}

void tu_assert_no_failures(void)
{
    if (atomic_load(&tu_failures) != 0)
        fail_msg("%d failures in worker threads; first: %s", atomic_load(&tu_failures),
                 tu_first_failure);
}

unsigned char *tu_serialized(const hnswc_index *ix, size_t *size)
{
    void *buf;
    tu_ok(hnswc_serialize(ix, &buf, size));
    assert_non_null(buf);
    unsigned char *copy = tu_xmalloc(*size);
    memcpy(copy, buf, *size);
    hnswc_buffer_free(buf);
    return copy;
}
