/*
 * make_seeds.c -- writes the seed corpora of the fuzz harnesses.
 *
 *   make_seeds CORPUS_DIR TEST_DATA_DIR
 *
 * Seeds are real, valid inputs, so that the fuzzer starts from deep inside
 * each format rather than having to discover its magic numbers:
 *
 *   hnswc/    indexes saved by the library itself: empty, one element,
 *             every metric, M = 2 (many layers), deleted elements,
 *             duplicate vectors, an element limit (max_elements), SQ8
 *             storage (untrained and trained), code-only SQ8 storage
 *             (untrained and trained), a flat index; an hnswc 0.1
 *             BFIndex file
 *   hnswlib/  the hnswlib fixtures of tests/data (written by hnswlib
 *             itself), plus small files in hnswlib's layout converted from
 *             the indexes above (small inputs fuzz faster), and a
 *             BruteforceSearch (exact index) file
 *   read_fvecs/ read_bvecs/ read_npy/ read_idx/ read_text/ read_hdf5/
 *             small files of each format (npy: float32, uint8, float64),
 *             plain and gzip-compressed where the format allows it
 *   read_auto/  all of the reader seeds (format detected from the contents)
 *   gt_cache/   a ground-truth cache file written by gt_cache_save
 *
 * Directories are named after the harnesses (build/fuzz/fuzz_NAME), files
 * after what they hold. Directories are created if missing; existing files
 * are overwritten.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <hdf5.h>
#include <zlib.h>

#include "gt.h"
#include "hnswc.h"

static const char *corpus;

static void die(const char *what) {
    fprintf(stderr, "make_seeds: %s: %s (%s)\n", what, strerror(errno), hnswc_errmsg(NULL));
    exit(1);
}

static char *path_of(const char *sub, const char *name) {
    static char p[4096];
    snprintf(p, sizeof p, "%s/%s", corpus, sub);
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        die(p);
    snprintf(p, sizeof p, "%s/%s/%s", corpus, sub, name);
    return p;
}

static void write_to(const char *path, const void *data, size_t size, int gz) {
    if (gz) {
        gzFile g = gzopen(path, "wb");
        if (!g || gzwrite(g, data, (unsigned)size) != (int)size || gzclose(g) != Z_OK)
            die(path);
        return;
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        die(path);
}

/* A reader seed goes to its format's corpus and to the auto corpus. */
static void reader_seed(const char *fmt, const char *name, const void *data, size_t size, int gz) {
    char sub[64], both[256];
    snprintf(sub, sizeof sub, "read_%s", fmt);
    write_to(path_of(sub, name), data, size, gz);
    snprintf(both, sizeof both, "%s-%s", fmt, name);
    write_to(path_of("read_auto", both), data, size, gz);
}

static void copy_file(const char *from, const char *sub, const char *name) {
    FILE *f = fopen(from, "rb");
    if (!f)
        die(from);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_to(path_of(sub, name), buf, n, 0);
}

/* ========================================================================
 * hnswc and hnswlib indexes
 * ======================================================================== */

static uint32_t rd32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t rd64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

typedef struct growbuf {
    unsigned char *p;
    size_t len, cap;
} growbuf;

static void gput(growbuf *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        if (!(b->p = realloc(b->p, b->cap)))
            die("realloc");
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}
static void g64(growbuf *b, uint64_t v) { gput(b, &v, 8); }
static void g32(growbuf *b, uint32_t v) { gput(b, &v, 4); }

/*
 * Rewrites hnswc's serialized form (layout in src/persist.c) in hnswlib's
 * saveIndex layout (src/hnswlib_import.c): same graph, same vectors.
 */
static void to_hnswlib(const unsigned char *s, growbuf *out) {
    const unsigned char *parm = s + 24 + 16;
    uint32_t dim = rd32(parm), M = rd32(parm + 8), efc = rd32(parm + 12);
    uint64_t count = rd64(parm + 40), entry = rd64(parm + 56);
    uint32_t M0 = 2 * M, version = rd32(s + 8);
    const unsigned char *node = parm + (version >= 3 ? 72 : 64) + 4 + 16;
    /* VECS: version 4 pads to a 64-byte file offset, then rows padded to
     * `row` bytes (src/persist.c, aligned_row) */
    const unsigned char *vecs = node + count * 16 + 4 + 16;
    uint64_t vecs_len = rd64(vecs - 8), pad = 0, row = (uint64_t)dim * 4;
    if (version >= 4) {
        pad = (64 - (uint64_t)(vecs - s) % 64) % 64;
        row = count ? (vecs_len - pad) / count : row;
    }
    const unsigned char *lnk0 = vecs + vecs_len + 4 + 16;
    vecs += pad;
    const unsigned char *lnku = lnk0 + count * (1 + M0) * 4 + 4 + 16;

    int32_t maxlevel = count ? (int32_t)(entry >> 32) - 1 : -1;
    uint64_t offset_data = 4 + 4 * (uint64_t)M0, label_offset = offset_data + 4 * (uint64_t)dim;
    g64(out, 0);
    g64(out, count + 7);
    g64(out, count);
    g64(out, label_offset + 8);
    g64(out, label_offset);
    g64(out, offset_data);
    gput(out, &maxlevel, 4);
    g32(out, count ? (uint32_t)entry : UINT32_MAX);
    g64(out, M);
    g64(out, M0);
    g64(out, M);
    double mult = 1.0 / log((double)M);
    gput(out, &mult, 8);
    g64(out, efc);
    for (uint64_t i = 0; i < count; i++) {
        const unsigned char *l = lnk0 + i * (1 + M0) * 4;
        uint16_t c = (uint16_t)rd32(l);
        unsigned char fl[2] = {(unsigned char)(rd32(node + i * 16 + 12) & 1), 0};
        gput(out, &c, 2);
        gput(out, fl, 2);
        gput(out, l + 4, M0 * 4);
        gput(out, vecs + i * row, dim * 4);
        gput(out, node + i * 16, 8);
    }
    for (uint64_t i = 0; i < count; i++) {
        int32_t level;
        memcpy(&level, node + i * 16 + 8, 4);
        uint32_t bytes = (uint32_t)level * (4 + 4 * M);
        g32(out, bytes);
        gput(out, lnku, bytes);
        lnku += bytes;
    }
}

static void index_seed_storage(const char *name, uint32_t dim, hnswc_metric metric, uint32_t M,
                               size_t n, size_t every_deleted, int duplicates,
                               hnswc_storage storage) {
    hnswc_options o = {0};
    o.dim = dim;
    o.metric = metric;
    o.M = M;
    o.storage = storage;
    o.ef_construction = 16;
    hnswc_index *ix;
    if (hnswc_create(&o, &ix) != HNSWC_OK)
        die("hnswc_create");
    uint64_t state = 42 + n;
    float *v = malloc(dim * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        for (uint32_t d = 0; d < dim; d++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            v[d] = duplicates && i % 2 ? v[d] : (float)((state >> 40) % 1000) / 100.0f - 5.0f;
        }
        if (hnswc_add(ix, 10 * i + 3, v, 0) != HNSWC_OK)
            die("hnswc_add");
    }
    for (size_t i = 0; every_deleted && i < n; i += every_deleted)
        if (hnswc_mark_deleted(ix, 10 * i + 3) != HNSWC_OK)
            die("hnswc_mark_deleted");
    if (hnswc_save(ix, path_of("hnswc", name)) != HNSWC_OK)
        die("hnswc_save");

    /* hnswlib has no SQ8: only f32 indexes have an hnswlib twin */
    if (storage == HNSWC_STORAGE_F32) {
        void *buf;
        size_t size;
        if (hnswc_serialize(ix, &buf, &size) != HNSWC_OK)
            die("hnswc_serialize");
        growbuf hl = {0};
        to_hnswlib(buf, &hl);
        write_to(path_of("hnswlib", name), hl.p, hl.len, 0);
        free(hl.p);
        hnswc_buffer_free(buf);
    }
    hnswc_free(ix);
    free(v);
}

static void index_seed(const char *name, uint32_t dim, hnswc_metric metric, uint32_t M, size_t n,
                       size_t every_deleted, int duplicates) {
    index_seed_storage(name, dim, metric, M, n, every_deleted, duplicates, HNSWC_STORAGE_F32);
}

/* The exact (flat) kind: hnswc's file of one, hnswc 0.1's BFIndex file and
 * hnswlib's BruteforceSearch file, with the same 10 rows of dim 4. */
static void flat_seeds(void) {
    enum { N = 10, D = 4, MAX = 16 };
    float v[N * D];
    uint64_t labels[N];
    for (int i = 0; i < N; i++) {
        labels[i] = 100 + 3 * (uint64_t)i;
        for (int d = 0; d < D; d++)
            v[i * D + d] = (float)((i * 7 + d * 3) % 11) * 0.25f - 1.0f;
    }
    hnswc_options o = {0};
    o.kind = HNSWC_KIND_FLAT;
    o.dim = D;
    o.metric = HNSWC_METRIC_COSINE;
    o.capacity = MAX;
    hnswc_index *ix;
    size_t added;
    if (hnswc_create(&o, &ix) != HNSWC_OK || hnswc_add_batch(ix, v, labels, N, 0, 1, &added) ||
        hnswc_mark_deleted(ix, labels[3]) != HNSWC_OK ||
        hnswc_save(ix, path_of("hnswc", "flat-cosine-d4-n10")) != HNSWC_OK)
        die("flat index");
    hnswc_free(ix);

    /* "HNSWCBF1", u32 version 1, metric, dim, 0, u64 count, max_elements,
     * next label, vectors, labels, CRC-32 (IEEE) of all before */
    unsigned char b[48 + N * (D * 4 + 8) + 4];
    memset(b, 0, sizeof b);
    memcpy(b, "HNSWCBF1", 8);
    uint32_t head[4] = {1, HNSWC_METRIC_L2, D, 0};
    uint64_t counts[3] = {N, MAX, N + 5};
    memcpy(b + 8, head, 16);
    memcpy(b + 24, counts, 24);
    memcpy(b + 48, v, sizeof v);
    memcpy(b + 48 + sizeof v, labels, sizeof labels);
    uint32_t crc = (uint32_t)crc32(0, b, sizeof b - 4);
    memcpy(b + sizeof b - 4, &crc, 4);
    write_to(path_of("hnswc", "bfindex-0.1-l2-d4-n10"), b, sizeof b, 0);

    /* hnswlib BruteforceSearch: u64 max, u64 size per element, u64 count,
     * then max records of dim floats and a u64 label */
    unsigned char h[24 + MAX * (D * 4 + 8)];
    memset(h, 0, sizeof h);
    uint64_t hh[3] = {MAX, D * 4 + 8, N};
    memcpy(h, hh, 24);
    for (int i = 0; i < N; i++) {
        memcpy(h + 24 + i * (D * 4 + 8), v + i * D, D * 4);
        memcpy(h + 24 + i * (D * 4 + 8) + D * 4, &labels[i], 8);
    }
    write_to(path_of("hnswlib", "bruteforce-d4-n10"), h, sizeof h, 0);
}

/* ========================================================================
 * Vector files
 * ======================================================================== */

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void vecs_seeds(void) {
    unsigned char b[256];
    size_t n = 0;
    for (int r = 0; r < 4; r++) {
        int32_t d = 3;
        memcpy(b + n, &d, 4);
        n += 4;
        for (int j = 0; j < 3; j++) {
            float x = (float)(r * 3 + j) - 4.5f;
            memcpy(b + n, &x, 4);
            n += 4;
        }
    }
    reader_seed("fvecs", "4x3", b, n, 0);
    reader_seed("fvecs", "4x3.gz", b, n, 1);

    n = 0;
    for (int r = 0; r < 3; r++) {
        int32_t d = 5;
        memcpy(b + n, &d, 4);
        n += 4;
        for (int j = 0; j < 5; j++)
            b[n++] = (unsigned char)(r * 40 + j * 7);
    }
    reader_seed("bvecs", "3x5", b, n, 0);
    reader_seed("bvecs", "3x5.gz", b, n, 1);
}

static void npy_seed(const char *name, const char *descr, int rows, int cols, size_t item) {
    unsigned char b[512];
    char dict[128];
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }",
                      descr, rows, cols);
    size_t head = 10 + (size_t)dl + 1;
    size_t padded = (head + 63) / 64 * 64;
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    uint16_t hl = (uint16_t)(padded - 10);
    memcpy(b + 8, &hl, 2);
    memcpy(b + 10, dict, (size_t)dl);
    memset(b + 10 + dl, ' ', padded - 10 - (size_t)dl - 1);
    b[padded - 1] = '\n';
    size_t n = padded;
    for (int i = 0; i < rows * cols; i++) {
        if (item == 4) {
            float x = (float)i * 0.25f - 1.0f;
            memcpy(b + n, &x, 4);
        } else if (item == 8) {
            double x = (double)i * 0.125 - 0.5;
            memcpy(b + n, &x, 8);
        } else {
            b[n] = (unsigned char)(i * 11);
        }
        n += item;
    }
    reader_seed("npy", name, b, n, 0);
    char gzname[64];
    snprintf(gzname, sizeof gzname, "%s.gz", name);
    reader_seed("npy", gzname, b, n, 1);
}

static void idx_seeds(void) {
    unsigned char b[256];
    /* uint8, 3-D: 2 images of 2 x 3 */
    memcpy(b, "\0\0\x08\x03", 4);
    put_be32(b + 4, 2);
    put_be32(b + 8, 2);
    put_be32(b + 12, 3);
    for (int i = 0; i < 12; i++)
        b[16 + i] = (unsigned char)(i * 20);
    reader_seed("idx", "u8-2x2x3", b, 28, 0);
    reader_seed("idx", "u8-2x2x3.gz", b, 28, 1);
    /* float32 big-endian, 2-D: 3 x 4 */
    memcpy(b, "\0\0\x0d\x02", 4);
    put_be32(b + 4, 3);
    put_be32(b + 8, 4);
    for (int i = 0; i < 12; i++) {
        float x = (float)i / 3.0f;
        uint32_t u;
        memcpy(&u, &x, 4);
        put_be32(b + 12 + 4 * i, u);
    }
    reader_seed("idx", "f32-3x4", b, 60, 0);
}

static void text_seeds(void) {
    const char *t1 = "# one vector per line\n1 2 3\n4,5,6\n\n-7.5e-1\t8 9e2\n";
    reader_seed("text", "3x3", t1, strlen(t1), 0);
    reader_seed("text", "3x3.gz", t1, strlen(t1), 1);
    const char *t2 = "0.5\n";
    reader_seed("text", "1x1", t2, strlen(t2), 0);
}

static void h5_write(hid_t f, const char *name, hid_t type, int rows, int cols, const void *data) {
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (sp < 0 || ds < 0 || H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        die("HDF5 write");
    H5Dclose(ds);
    H5Sclose(sp);
}

static void hdf5_seed(const char *name, int u8, const char *metric) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/.tmp.h5", corpus);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        die("H5Fcreate");
    float tf[4 * 3], qf[2 * 3];
    unsigned char tu[4 * 3], qu[2 * 3];
    for (int i = 0; i < 12; i++) {
        tf[i] = (float)i * 0.5f;
        tu[i] = (unsigned char)(i * 9);
    }
    for (int i = 0; i < 6; i++) {
        qf[i] = (float)i;
        qu[i] = (unsigned char)(i * 30);
    }
    int32_t nb[2 * 2] = {0, 1, 3, 2};
    h5_write(f, "train", u8 ? H5T_NATIVE_UCHAR : H5T_NATIVE_FLOAT, 4, 3, u8 ? (void *)tu : (void *)tf);
    h5_write(f, "test", u8 ? H5T_NATIVE_UCHAR : H5T_NATIVE_FLOAT, 2, 3, u8 ? (void *)qu : (void *)qf);
    h5_write(f, "neighbors", H5T_NATIVE_INT32, 2, 2, nb);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, strlen(metric));
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t at = H5Acreate2(f, "distance", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (at < 0 || H5Awrite(at, st, metric) < 0)
        die("HDF5 attribute");
    H5Aclose(at);
    H5Sclose(sp);
    H5Tclose(st);
    H5Fclose(f);
    FILE *in = fopen(tmp, "rb");
    if (!in)
        die(tmp);
    static unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    remove(tmp);
    reader_seed("hdf5", name, buf, n, 0);
}

static void gt_seed(void) {
    uint64_t labels[2 * 3] = {0, 1, 2, 5, 4, UINT64_MAX};
    float dists[2 * 3] = {0.f, 1.f, 2.5f, 0.5f, 0.75f, INFINITY};
    ground_truth gt = {2, 3, labels, dists};
    if (gt_cache_save(path_of("gt_cache", "2x3"), 0x123456789abcdefull, HNSWC_METRIC_L2, &gt) != 0)
        die("gt_cache_save");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: make_seeds CORPUS_DIR TEST_DATA_DIR\n");
        return 2;
    }
    corpus = argv[1];
    if (mkdir(corpus, 0755) != 0 && errno != EEXIST)
        die(corpus);

    index_seed("empty-l2-d4", 4, HNSWC_METRIC_L2, 4, 0, 0, 0);
    index_seed("one-l2-d1", 1, HNSWC_METRIC_L2, 4, 1, 0, 0);
    index_seed("cosine-d3-n5", 3, HNSWC_METRIC_COSINE, 4, 5, 0, 0);
    index_seed("ip-d4-n20-del", 4, HNSWC_METRIC_IP, 4, 20, 6, 0);
    index_seed("l2-d8-n30-M2-del", 8, HNSWC_METRIC_L2, 2, 30, 7, 0);
    index_seed("l2-d2-n12-dup", 2, HNSWC_METRIC_L2, 3, 12, 0, 1);
    /* an element limit (max_elements in PARM, format versions 3 and 4) */
    {
        hnswc_options o = {0};
        o.dim = 3;
        o.M = 3;
        o.ef_construction = 16;
        o.max_elements = 12;
        hnswc_index *ix;
        float v[3] = {0.5f, -1.0f, 2.0f};
        if (hnswc_create(&o, &ix) != HNSWC_OK)
            die("hnswc_create with max_elements");
        for (uint64_t i = 0; i < 9; i++) {
            v[i % 3] += 0.75f;
            if (hnswc_add(ix, 70 + i, v, 0) != HNSWC_OK)
                die("hnswc_add");
        }
        if (hnswc_save(ix, path_of("hnswc", "limit-12-l2-d3-n9")) != HNSWC_OK)
            die("hnswc_save");
        hnswc_free(ix);
    }
    /* SQ8 storage (format version 2): not yet trained, and trained (the
     * quantiser trains at HNSWC_SQ8_TRAIN_MIN elements) */
    index_seed_storage("sq8-untrained-l2-d3-n8", 3, HNSWC_METRIC_L2, 3, 8, 0, 0,
                       HNSWC_STORAGE_SQ8);
    index_seed_storage("sq8-trained-ip-d2-n1000", 2, HNSWC_METRIC_IP, 2, HNSWC_SQ8_TRAIN_MIN, 50, 0,
                       HNSWC_STORAGE_SQ8);
    /* code-only SQ8 (storage 2): untrained (f32 VECS), and trained (CODE
     * in place of VECS, the bias rebuilt at load) */
    index_seed_storage("sq8only-untrained-l2-d3-n8", 3, HNSWC_METRIC_L2, 3, 8, 0, 0,
                       HNSWC_STORAGE_SQ8_ONLY);
    index_seed_storage("sq8only-trained-cosine-d3-n1000", 3, HNSWC_METRIC_COSINE, 2,
                       HNSWC_SQ8_TRAIN_MIN, 40, 1, HNSWC_STORAGE_SQ8_ONLY);

    flat_seeds();

    char p[4096];
    const char *fixtures[] = {"hnswlib-l2-d8.bin", "hnswlib-cosine-d8.bin"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", argv[2], fixtures[i]);
        copy_file(p, "hnswlib", fixtures[i]);
    }

    vecs_seeds();
    npy_seed("f4-4x3", "<f4", 4, 3, 4);
    npy_seed("u1-2x5", "|u1", 2, 5, 1);
    npy_seed("f8-3x2", "<f8", 3, 2, 8);
    idx_seeds();
    text_seeds();
    hdf5_seed("f32-euclidean", 0, "euclidean");
    hdf5_seed("u8-angular", 1, "angular");
    gt_seed();
    return 0;
}
