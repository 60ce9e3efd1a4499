/*
 * fuzz_util.c -- the input file, the work directory, the count of accepted
 * inputs and the post-load checks shared by the harnesses (see fuzz_util.h).
 */
#include "fuzz_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ========================================================================
 * Failing
 * ======================================================================== */

void fz_die(const char *file, int line, const char *cond, const char *fmt, ...) {
    fprintf(stderr, "\n%s:%d: broken promise: %s\n  ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  last hnswc message: %s\n", hnswc_errmsg(NULL));
    abort();
}

/* ========================================================================
 * The input file and the work directory
 * ======================================================================== */

/* The input file lives in the work directory (a tmpfs when /dev/shm
 * exists), so the loaders see an ordinary regular file with a real path.
 * A memfd named by /proc/self/fd/N was used first and dropped: libhdf5
 * resolves the path with realpath(), which gives "/memfd:NAME (deleted)",
 * so H5Fopen failed on every input and the HDF5 harnesses never got past
 * the open. The count of accepted inputs below now makes run.sh fail a
 * harness that accepts nothing. */
const char *fz_input_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[512];
    if (fd < 0) {
        snprintf(path, sizeof path, "%s/input", fz_workdir());
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        fz_check(fd >= 0, "creating the input file %s failed", path);
    }
    fz_check(ftruncate(fd, 0) == 0, "ftruncate of the input file failed");
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
        fz_check(w > 0, "writing the input file failed");
        done += (size_t)w;
    }
    return path;
}

/* ========================================================================
 * Counting accepted inputs
 * ======================================================================== */

static unsigned long long n_inputs, n_accepted;

static void report_accepted(void) {
    /* parsed by tests/fuzz/run.sh */
    fprintf(stderr, "fz_inputs: %llu\nfz_accepted: %llu\n", n_inputs, n_accepted);
}

void fz_count(int accepted) {
    if (n_inputs++ == 0)
        atexit(report_accepted);
    n_accepted += accepted != 0;
}

static char workdir[256];

static void remove_workdir(void) {
    DIR *d = opendir(workdir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", workdir, e->d_name);
                unlink(p);
            }
        }
        closedir(d);
    }
    rmdir(workdir);
}

const char *fz_workdir(void) {
    if (!workdir[0]) {
        struct stat sb;
        const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : NULL;
        if (!base)
            base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(workdir, sizeof workdir, "%s/hnswc-fuzz-XXXXXX", base);
        fz_check(mkdtemp(workdir) != NULL, "mkdtemp(%s) failed", workdir);
        atexit(remove_workdir);
    }
    return workdir;
}

/* ========================================================================
 * Exercising a loaded index
 * ======================================================================== */

static int is_live(const hnswc_index *ix, uint64_t label) {
    int del = -1;
    hnswc_status st = hnswc_is_deleted(ix, label, &del);
    return st == HNSWC_OK && del == 0;
}

static int is_present(const hnswc_index *ix, uint64_t label) {
    int del;
    return hnswc_is_deleted(ix, label, &del) == HNSWC_OK;
}

static hnswc_info info_of(const hnswc_index *ix) {
    hnswc_info in;
    fz_check(hnswc_get_info(ix, &in) == HNSWC_OK, "hnswc_get_info failed");
    fz_check(in.count == in.live_count + in.deleted_count, "count %llu != live %llu + deleted %llu",
             (unsigned long long)in.count, (unsigned long long)in.live_count,
             (unsigned long long)in.deleted_count);
    return in;
}

/* Searches q with k; checks no deleted element comes back. */
static size_t search(const hnswc_index *ix, const float *q, size_t k, size_t ef, uint64_t *labels,
                     float *dists) {
    size_t found = SIZE_MAX;
    hnswc_status st = hnswc_search(ix, q, k, ef, NULL, NULL, labels, dists, &found);
    fz_check(st == HNSWC_OK, "hnswc_search(k %zu, ef %zu) failed: %s", k, ef,
             hnswc_status_string(st));
    fz_check(found <= k, "found %zu > k %zu", found, k);
    for (size_t i = 0; i < found; i++)
        fz_check(is_live(ix, labels[i]), "search returned label %llu, which is not live",
                 (unsigned long long)labels[i]);
    return found;
}

/* The bytes of hnswc_serialize, malloc'd. */
static unsigned char *serialized(const hnswc_index *ix, size_t *size) {
    void *buf;
    hnswc_status st = hnswc_serialize(ix, &buf, size);
    fz_check(st == HNSWC_OK, "hnswc_serialize failed: %s", hnswc_status_string(st));
    return buf;
}

static void check_same_bytes(const unsigned char *a, size_t na, const unsigned char *b, size_t nb,
                             const char *what) {
    fz_check(na == nb && memcmp(a, b, na) == 0, "%s: %zu bytes vs %zu, not the same", what, na, nb);
}

/* Largest |component| over all stored vectors, to tell whether distances
 * can overflow (then ties and infinities make exactness moot). */
static double max_abs(const hnswc_index *ix, const uint64_t *labels, size_t n, float *buf,
                      uint32_t dim) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        fz_check(hnswc_get_vector(ix, labels[i], buf) == HNSWC_OK, "hnswc_get_vector failed");
        for (uint32_t d = 0; d < dim; d++)
            m = fabs(buf[d]) > m ? fabs(buf[d]) : m;
    }
    return m;
}

#define FZ_K 8

/* hnswc_relayout, then the same counts and graph shape as before. */
static void relayout_check(hnswc_index *ix, hnswc_info in, bool flat, hnswc_graph_stats gs) {
    hnswc_status st = hnswc_relayout(ix);
    fz_check(st == HNSWC_OK, "hnswc_relayout failed: %s", hnswc_errmsg(NULL));
    hnswc_info now = info_of(ix);
    fz_check(now.count == in.count && now.live_count == in.live_count &&
                 now.deleted_count == in.deleted_count && now.max_level == in.max_level,
             "a relayout changed the counts or the top level");
    if (flat)
        return;
    hnswc_graph_stats g2;
    fz_check(hnswc_get_graph_stats(ix, &g2) == HNSWC_OK, "graph stats after a relayout failed");
    fz_check(g2.nodes == gs.nodes && g2.links_total == gs.links_total &&
                 g2.one_way_links == gs.one_way_links && g2.unreachable == gs.unreachable &&
                 g2.degree0_min == gs.degree0_min && g2.degree0_max == gs.degree0_max,
             "a relayout changed the graph's shape");
}

void fz_exercise(hnswc_index *ix) {
    hnswc_info in = info_of(ix);
    bool flat = in.kind == HNSWC_KIND_FLAT;
    hnswc_graph_stats gs;
    hnswc_status gst = hnswc_get_graph_stats(ix, &gs);
    if (flat)
        fz_check(gst == HNSWC_ERR_INVALID, "graph stats of a flat index: %s",
                 hnswc_status_string(gst));
    else
        fz_check(gst == HNSWC_OK && gs.nodes == in.count, "hnswc_get_graph_stats failed or "
                 "disagrees with the count");

    size_t n = (size_t)in.count, written = 0;
    uint64_t *all = malloc((n ? n : 1) * sizeof *all);
    float *q = malloc(in.dim * sizeof *q), *v = malloc(in.dim * sizeof *v);
    fz_check(all && q && v, "out of memory in the harness");
    fz_check(hnswc_get_labels(ix, all, n, &written) == HNSWC_OK && written == n,
             "hnswc_get_labels failed");

    /* the query: the first element's vector, or a constant for an empty index */
    if (n > 0)
        fz_check(hnswc_get_vector(ix, all[0], q) == HNSWC_OK, "hnswc_get_vector failed");
    else
        for (uint32_t d = 0; d < in.dim; d++)
            q[d] = 0.5f;
    double big = n > 0 ? max_abs(ix, all, n, v, in.dim) : 0;
    /* below this, no distance can overflow or turn NaN */
    int finite = big * big * 4.0 * in.dim < 1e36;

    uint64_t la[FZ_K], lb[FZ_K];
    float da[FZ_K], db[FZ_K];
    size_t k = n < FZ_K ? (n ? n : 1) : FZ_K;
    search(ix, q, k, 0, la, da);

    /* The largest ef the API accepts must cost what the index holds, not
     * what ef says (issue 13: it used to allocate 2^31 heap items). */
    uint64_t mem0 = in.memory_bytes;
    size_t fa = search(ix, q, k, (size_t)1 << 31, la, da);
    uint64_t mem1 = info_of(ix).memory_bytes;
    fz_check(mem1 <= mem0 + (1u << 20) + 64 * (uint64_t)n,
             "a search with ef 2^31 grew the index's memory from %llu to %llu bytes",
             (unsigned long long)mem0, (unsigned long long)mem1);

    /* ef >= count: exact, by the walk or by the fallback scan */
    size_t fb = SIZE_MAX;
    fz_check(hnswc_search_exact(ix, q, k, NULL, NULL, lb, db, &fb) == HNSWC_OK,
             "hnswc_search_exact failed");
    fz_check(fa == fb, "ef 2^31 found %zu, the exact search %zu", fa, fb);
    if (finite)
        for (size_t i = 0; i < fa; i++)
            fz_check(da[i] == db[i], "result %zu: distance %g with ef 2^31, %g exact", i,
                     (double)da[i], (double)db[i]);

    /* relayout (hnswc_relayout): ids move, nothing seen by label does --
     * the graph's shape, the element count, and the distances a search
     * returns (labels may differ only among equal distances: the exact
     * scan breaks ties by id) */
    {
        float d0[FZ_K], d1[FZ_K];
        uint64_t l0[FZ_K];
        size_t f0 = search(ix, q, k, 0, l0, d0);
        relayout_check(ix, in, flat, gs);
        size_t f1 = search(ix, q, k, 0, l0, d1);
        fz_check(f0 == f1, "a relayout changed the results found: %zu, then %zu", f0, f1);
        if (finite)
            for (size_t i = 0; i < f0; i++)
                fz_check(d0[i] == d1[i], "result %zu: distance %g before a relayout, %g after",
                         i, (double)d0[i], (double)d1[i]);
        size_t fe = search(ix, q, k, (size_t)1 << 31, la, da);
        fz_check(fe == fb, "after a relayout, ef 2^31 found %zu, the exact search %zu", fe, fb);
        if (finite)
            for (size_t i = 0; i < fe; i++)
                fz_check(da[i] == db[i], "after a relayout, result %zu: distance %g, %g exact",
                         i, (double)da[i], (double)db[i]);
    }

    /* add a new label, update an old one, delete the new one */
    uint64_t fresh = UINT64_MAX;
    while (is_present(ix, fresh))
        fresh--;
    memcpy(v, q, in.dim * sizeof *v);
    v[0] = v[0] < 0 ? v[0] + 1.0f : v[0] - 1.0f;
    hnswc_status st = hnswc_add(ix, fresh, v, 0);
    if (st == HNSWC_ERR_FULL) {
        /* an element limit (max_elements, from hnswc's file or hnswlib's)
         * the index is at: refused, nothing changed; raised, the add goes in */
        fz_check(in.max_elements != 0 && in.count >= in.max_elements,
                 "HNSWC_ERR_FULL with %llu elements and max_elements %llu",
                 (unsigned long long)in.count, (unsigned long long)in.max_elements);
        fz_check(info_of(ix).count == in.count, "a refused add changed the count");
        st = hnswc_set_max_elements(ix, in.count + 1);
        fz_check(st == HNSWC_OK, "raising max_elements failed: %s", hnswc_status_string(st));
        st = hnswc_add(ix, fresh, v, 0);
    }
    fz_check(st == HNSWC_OK, "hnswc_add of a new label failed: %s", hnswc_status_string(st));
    hnswc_info after = info_of(ix);
    fz_check(after.count == in.count + 1 && after.live_count == in.live_count + 1,
             "an add did not add one live element");
    /* (not with code-only storage once trained: v is stored encoded, and
     * its decoded self is what the search measures) */
    if (in.metric == HNSWC_METRIC_L2 &&
        !(after.storage == HNSWC_STORAGE_SQ8_ONLY && after.codes_trained)) {
        size_t f1 = 0;
        fz_check(hnswc_search_exact(ix, v, 1, NULL, NULL, lb, db, &f1) == HNSWC_OK && f1 == 1,
                 "exact search after an add failed");
        fz_check(db[0] == 0.0f, "the added vector is not found at distance 0 (%g)", (double)db[0]);
    }
    if (n > 0) {
        st = hnswc_add(ix, all[0], v, 0);
        fz_check(st == HNSWC_OK, "hnswc_add updating a label failed: %s", hnswc_status_string(st));
        fz_check(info_of(ix).count == after.count, "an update changed the count");
    }
    fz_check(hnswc_mark_deleted(ix, fresh) == HNSWC_OK, "mark_deleted of the new label failed");
    size_t fc = search(ix, v, k, (size_t)1 << 31, la, da);
    for (size_t i = 0; i < fc; i++)
        fz_check(la[i] != fresh, "a deleted label was returned");
    /* removal (both kinds): the label gone, the count back to where it
     * was before the add; the live count unchanged (the label was marked
     * deleted; the update above may have revived all[0]); no search
     * returns it */
    uint64_t live_before = info_of(ix).live_count;
    st = hnswc_remove(ix, fresh);
    fz_check(st == HNSWC_OK, "hnswc_remove gave %s", hnswc_status_string(st));
    fz_check(!is_present(ix, fresh), "a removed label is still there");
    fz_check(info_of(ix).count == in.count, "a removal did not give the count back");
    fz_check(info_of(ix).live_count == live_before, "a removal changed the live count");
    fc = search(ix, v, k, (size_t)1 << 31, la, da);
    for (size_t i = 0; i < fc; i++)
        fz_check(la[i] != fresh, "a removed label was returned");
    st = hnswc_remove(ix, fresh);
    fz_check(st == HNSWC_ERR_NOT_FOUND, "removing a removed label gave %s",
             hnswc_status_string(st));

    /* round trip: saved and loaded again, the same bytes (hnswc_save and
     * hnswc_serialize write the same format; hnswc_deserialize and
     * hnswc_load read it with one parser, which fuzz_hnswc checks agree) */
    size_t s1, s2;
    unsigned char *b1 = serialized(ix, &s1);
    char path[320];
    snprintf(path, sizeof path, "%s/index.hnswc", fz_workdir());
    st = hnswc_save(ix, path);
    fz_check(st == HNSWC_OK, "hnswc_save failed: %s", hnswc_errmsg(NULL));
    hnswc_index *back = NULL;
    st = hnswc_load(path, &back);
    fz_check(st == HNSWC_OK, "loading a saved index failed: %s", hnswc_errmsg(NULL));
    unsigned char *b2 = serialized(back, &s2);
    check_same_bytes(b1, s1, b2, s2, "serialize vs save -> load -> serialize");
    hnswc_free(back);

    hnswc_buffer_free(b1);
    hnswc_buffer_free(b2);
    free(all);
    free(q);
    free(v);
    hnswc_free(ix);
}
