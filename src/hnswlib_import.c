/*
 * hnswlib_import.c -- reads index files written by hnswlib's saveIndex
 * (hnswlib 0.6 to 0.8 share one layout), so users can switch to hnswc
 * without rebuilding their indexes.
 *
 * hnswlib's layout (native byte order, no magic, no checksum):
 *
 *   size_t offsetLevel0 (0), max_elements, cur_element_count,
 *          size_data_per_element, label_offset, offsetData;
 *   int    maxlevel;  uint32 enterpoint_node;
 *   size_t maxM, maxM0, M;  double mult;  size_t ef_construction;
 *   cur_element_count records of size_data_per_element bytes:
 *          u16 link count, u8 flags (bit 0: deleted), u8 unused,
 *          maxM0 u32 links, dim float32 vector, size_t label;
 *   then per element: u32 byte size of its upper link lists (level *
 *          (4 + 4 * maxM)), followed by those lists: u32 count, maxM links.
 *
 * With no magic and no checksum, a foreign file can only be told apart by
 * consistency: every field must agree with the others and with the file's
 * size, or the file is rejected. The metric is not stored; the caller says.
 *
 * The graph is taken over as it is (same links, levels, entry point), so
 * searches give hnswlib's results.
 *
 * hnswlib's exact index (BruteforceSearch, Python's hnswlib.BFIndex) saves
 *
 *   size_t max_elements, size_per_element (dim * 4 + 8), cur_element_count;
 *   max_elements records of size_per_element bytes: dim float32, size_t label
 *
 * (records past cur_element_count unused), and loads as a flat index. The
 * two are told apart by the same consistency: an HNSW file starts with
 * offsetLevel0 = 0, which as a BruteforceSearch file would claim room for
 * no element and be exactly 24 bytes long, shorter than any HNSW file.
 */
#include "error.h"
#include "flat.h"
#include "hnswlib_import.h"
#include "storage.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HEADER_BYTES 96u

typedef struct hl_header {
    uint64_t offset_level0, max_elements, count, size_data, label_offset, offset_data;
    int32_t maxlevel;
    uint32_t entry;
    uint64_t maxM, maxM0, M;
    double mult;
    uint64_t ef_construction;
} hl_header;

static hnswc_status bad(const char *path, const char *msg) {
    return hnswc_fail(HNSWC_ERR_FORMAT, "hnswc_load_hnswlib: %s: %s", path, msg);
}

static bool read_exact(FILE *f, void *dst, size_t n) { return fread(dst, 1, n, f) == n; }

static void parse_header(const unsigned char *b, hl_header *h) {
    uint64_t *first[6] = {&h->offset_level0, &h->max_elements, &h->count,
                          &h->size_data, &h->label_offset, &h->offset_data};
    for (int i = 0; i < 6; i++)
        memcpy(first[i], b + 8 * i, 8);
    memcpy(&h->maxlevel, b + 48, 4);
    memcpy(&h->entry, b + 52, 4);
    memcpy(&h->maxM, b + 56, 8);
    memcpy(&h->maxM0, b + 64, 8);
    memcpy(&h->M, b + 72, 8);
    memcpy(&h->mult, b + 80, 8);
    memcpy(&h->ef_construction, b + 88, 8);
}

/* Field-by-field consistency: NULL and *dim set, or what is wrong. No
 * message is recorded, so hnswlib_probe can ask too (a message with values
 * is formatted into a per-thread buffer). The file's size is checked by the
 * loader (a truncated hnswlib file is still one). */
static const char *header_problem(const hl_header *h, uint32_t *dim) {
    static _Thread_local char why[160];
    if (h->offset_level0 != 0 || h->M < 2 || h->M > HNSWC_MAX_M || h->maxM != h->M ||
        h->maxM0 != 2 * h->M)
        return "not an hnswlib index (its M fields are inconsistent)";
    if (h->offset_data != 4 + 4 * h->maxM0 || h->label_offset <= h->offset_data ||
        (h->label_offset - h->offset_data) % 4 != 0 || h->size_data != h->label_offset + 8)
        return "not an hnswlib index (its record layout is inconsistent)";
    uint64_t d = (h->label_offset - h->offset_data) / 4;
    if (d == 0 || d > HNSWC_MAX_DIM) {
        snprintf(why, sizeof why, "dim %llu is out of range (1 .. %u)", (unsigned long long)d,
                 HNSWC_MAX_DIM);
        return why;
    }
    if (h->count > h->max_elements || h->count > HNSWC_MAX_ELEMENTS)
        return "element count out of range";
    /* the range hnswc_create accepts: an ef_construction above the element
     * count costs nothing more (graph_ctx_acquire), one beyond it is not a
     * file hnswlib wrote for any real use */
    if (h->ef_construction == 0 || h->ef_construction > HNSWC_MAX_EF) {
        snprintf(why, sizeof why, "ef_construction %llu is out of range (1 .. %u)",
                 (unsigned long long)h->ef_construction, HNSWC_MAX_EF);
        return why;
    }
    if (h->count == 0 ? h->maxlevel != -1
                      : (h->maxlevel < 0 || h->maxlevel >= HNSWC_MAX_LEVELS || h->entry >= h->count))
        return "entry point or top level out of range";
    *dim = (uint32_t)d;
    return NULL;
}

/* Pass 1: the size words of the upper link lists give every level. */
static hnswc_status read_levels(FILE *f, const char *path, const hl_header *h, uint64_t file_size,
                                int *levels) {
    uint64_t per_level = 4 + 4 * h->maxM;
    uint64_t pos = HEADER_BYTES + h->count * h->size_data;
    if (fseek(f, (long)pos, SEEK_SET) != 0)
        return hnswc_fail(HNSWC_ERR_IO, "hnswc_load_hnswlib: %s: seek failed", path);
    int top = -1;
    for (uint64_t i = 0; i < h->count; i++) {
        uint32_t size;
        if (!read_exact(f, &size, 4))
            return bad(path, "truncated in the upper link lists");
        if (size % per_level != 0 || size / per_level >= HNSWC_MAX_LEVELS)
            return bad(path, "an upper link list has an impossible size");
        levels[i] = (int)(size / per_level);
        top = levels[i] > top ? levels[i] : top;
        pos += 4 + size;
        if (pos > file_size || fseek(f, (long)pos, SEEK_SET) != 0)
            return bad(path, "truncated in the upper link lists");
    }
    if (pos != file_size)
        return bad(path, "unexpected bytes after the last element");
    if (h->count > 0 && (top != h->maxlevel || levels[h->entry] != h->maxlevel))
        return bad(path, "entry point is not on the top layer");
    return HNSWC_OK;
}

/* Pass 2: level-0 records (links, vector, label, deleted mark). */
static hnswc_status read_level0(FILE *f, const char *path, const hl_header *h, hnswc_index *ix,
                                uint64_t *deleted) {
    unsigned char *rec = malloc((size_t)h->size_data);
    uint32_t *ids = malloc((size_t)h->maxM0 * 4);
    hnswc_status st = rec && ids ? HNSWC_OK : hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_load_hnswlib: out of memory");
    if (st == HNSWC_OK && fseek(f, HEADER_BYTES, SEEK_SET) != 0)
        st = hnswc_fail(HNSWC_ERR_IO, "hnswc_load_hnswlib: %s: seek failed", path);
    for (uint64_t i = 0; st == HNSWC_OK && i < h->count; i++) {
        if (!read_exact(f, rec, (size_t)h->size_data)) {
            st = bad(path, "truncated in the element records");
            break;
        }
        node_head *n = node_at(ix, (node_id)i);
        uint16_t count;
        memcpy(&count, rec, 2);
        memcpy(ids, rec + 4, (size_t)h->maxM0 * 4);
        memcpy(&n->label, rec + h->label_offset, 8);
        float *v = node_vector(ix, (node_id)i);
        memcpy(v, rec + h->offset_data, (size_t)ix->dim * 4);
        for (uint32_t d = 0; d < ix->dim && st == HNSWC_OK; d++)
            if (!isfinite(v[d]))
                st = bad(path, "a vector holds NaN or infinity");
        if (st == HNSWC_OK)
            st = storage_set_links(ix, n->l0, count, ids, ix->M0, 0, NULL, path);
        bool del = rec[2] & 1;
        /* or, not store: the flags word holds the level too (storage.h) */
        atomic_fetch_or(&n->flags, NODE_READY | (del ? NODE_DELETED : 0));
        *deleted += del;
    }
    free(rec);
    free(ids);
    return st;
}

/* Pass 3: upper link lists, checked against the levels from pass 1. */
static hnswc_status read_upper(FILE *f, const char *path, const hl_header *h, hnswc_index *ix) {
    uint32_t *w = malloc((1 + (size_t)h->maxM) * 4);
    if (!w)
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_load_hnswlib: out of memory");
    hnswc_status st = HNSWC_OK;
    if (fseek(f, (long)(HEADER_BYTES + h->count * h->size_data), SEEK_SET) != 0)
        st = hnswc_fail(HNSWC_ERR_IO, "hnswc_load_hnswlib: %s: seek failed", path);
    for (uint64_t i = 0; st == HNSWC_OK && i < h->count; i++) {
        node_head *n = node_at(ix, (node_id)i);
        uint32_t size;
        if (!read_exact(f, &size, 4)) {
            st = bad(path, "truncated in the upper link lists");
            break;
        }
        for (int lv = 1; st == HNSWC_OK && lv <= node_level(n); lv++) {
            if (!read_exact(f, w, (1 + (size_t)h->maxM) * 4)) {
                st = bad(path, "truncated in the upper link lists");
                break;
            }
            /* the count is a u16 in the low half of the first word */
            st = storage_set_links(ix, node_links(ix, n, lv), w[0] & 0xffffu, w + 1, ix->M, lv, NULL,
                                   path);
        }
    }
    free(w);
    return st;
}

/* ========================================================================
 * BruteforceSearch files
 * ======================================================================== */

#define BF_HEADER 24u

/* Whether the first 24 bytes b and the file size fit the layout exactly;
 * sets *dim, *max_elements, *count. */
static bool bf_recognise(const unsigned char *b, uint64_t file_size, uint32_t *dim,
                         uint64_t *max_elements, uint64_t *count) {
    uint64_t per;
    memcpy(max_elements, b, 8);
    memcpy(&per, b + 8, 8);
    memcpy(count, b + 16, 8);
    if (file_size < BF_HEADER || per < 12 || (per - 8) % 4 != 0 || (per - 8) / 4 > 65536)
        return false;
    if (*max_elements > (file_size - BF_HEADER) / per ||
        file_size != BF_HEADER + *max_elements * per || *count > *max_elements)
        return false;
    *dim = (uint32_t)((per - 8) / 4);
    return true;
}

static hnswc_status bf_load(FILE *f, const char *path, hnswc_metric metric, uint32_t dim,
                            uint64_t max_elements, uint64_t count, hnswc_index **out) {
    if (count > HNSWC_MAX_ELEMENTS)
        return bad(path, "element count out of range");
    hnswc_options o = {0};
    o.kind = HNSWC_KIND_FLAT;
    o.dim = dim;
    o.metric = metric;
    o.capacity = count;
    flat_index *fx;
    hnswc_status st = flat_create(&o, &fx);
    if (st != HNSWC_OK)
        return st;
    if (fseek(f, BF_HEADER, SEEK_SET) != 0)
        st = hnswc_fail(HNSWC_ERR_IO, "hnswc_load_hnswlib: %s: seek failed", path);
    for (uint64_t i = 0; st == HNSWC_OK && i < count; i++) {
        if (!read_exact(f, fx->vectors + (size_t)i * dim, (size_t)dim * 4) ||
            !read_exact(f, &fx->labels[i], 8))
            st = bad(path, "truncated in the element records");
        fx->deleted[i] = 0;
    }
    if (st == HNSWC_OK)
        st = flat_finish_load(fx, count, "hnswc_load_hnswlib", path);
    if (st != HNSWC_OK) {
        flat_destroy(fx);
        return st;
    }
    /* best effort: the room hnswlib had (its rows are in the file, so this
     * is bounded by the file's size) */
    if (max_elements > count && max_elements <= HNSWC_MAX_ELEMENTS)
        flat_reserve(fx, max_elements);
    *out = (hnswc_index *)(void *)fx;
    return HNSWC_OK;
}

/* ========================================================================
 * Entry point
 * ======================================================================== */

hnswc_status hnswc_load_hnswlib(const char *path, hnswc_metric metric, hnswc_index **out) {
    if (out)
        *out = NULL;
    if (!path || !out)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_load_hnswlib: %s is NULL", path ? "out" : "path");
    if ((unsigned)metric > HNSWC_METRIC_COSINE)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_load_hnswlib: unknown metric %d", (int)metric);
    FILE *f = fopen(path, "rb");
    if (!f)
        return hnswc_fail(errno == ENOMEM ? HNSWC_ERR_NOMEM : HNSWC_ERR_IO,
                          "hnswc_load_hnswlib: cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    unsigned char hb[HEADER_BYTES];
    hl_header h;
    uint32_t dim = 0;
    hnswc_status st = HNSWC_OK;
    uint64_t bf_max, bf_count;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = hnswc_fail(HNSWC_ERR_IO, "hnswc_load_hnswlib: %s is not a regular file", path);
    } else if ((uint64_t)sb.st_size >= BF_HEADER && read_exact(f, hb, BF_HEADER) &&
               bf_recognise(hb, (uint64_t)sb.st_size, &dim, &bf_max, &bf_count)) {
        st = bf_load(f, path, metric, dim, bf_max, bf_count, out);
        fclose(f);
        return st;
    } else if ((uint64_t)sb.st_size < HEADER_BYTES ||
               fseek(f, 0, SEEK_SET) != 0 || !read_exact(f, hb, HEADER_BYTES)) {
        st = bad(path, "too short to be an hnswlib index");
    }
    if (st == HNSWC_OK) {
        parse_header(hb, &h);
        const char *why = header_problem(&h, &dim);
        /* level-0 records plus one size word per element must fit */
        if (!why && h.count * h.size_data + 4 * h.count > (uint64_t)sb.st_size - HEADER_BYTES)
            why = "truncated (shorter than its element count requires)";
        st = why ? bad(path, why) : HNSWC_OK;
    }
    int *levels = NULL;
    if (st == HNSWC_OK && !(levels = malloc((size_t)(h.count ? h.count : 1) * sizeof *levels)))
        st = hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_load_hnswlib: out of memory");
    if (st == HNSWC_OK)
        st = read_levels(f, path, &h, (uint64_t)sb.st_size, levels);

    hnswc_index *ix = NULL;
    if (st == HNSWC_OK) {
        hnswc_options o = {0};
        o.dim = dim;
        o.metric = metric;
        o.M = (uint32_t)h.M;
        o.ef_construction = (uint32_t)h.ef_construction;
        o.capacity = h.count ? h.count : 1;
        o.max_elements = h.max_elements; /* hnswlib keeps its limit: so do we */
        st = storage_create(&o, &ix);
    }
    for (uint64_t i = 0; st == HNSWC_OK && i < h.count; i++) {
        if ((st = storage_init_node(ix, (node_id)i, 0, levels[i])) == HNSWC_OK)
            atomic_store(&ix->count, i + 1); /* so that storage_destroy releases it */
    }
    uint64_t deleted = 0;
    if (st == HNSWC_OK)
        st = read_level0(f, path, &h, ix, &deleted);
    if (st == HNSWC_OK)
        st = read_upper(f, path, &h, ix);
    if (st == HNSWC_OK) {
        atomic_store(&ix->deleted_count, deleted);
        if (h.count > 0)
            atomic_store(&ix->entry, entry_make(h.maxlevel, h.entry));
        st = storage_finish_load(ix, false, path);
    }
    free(levels);
    fclose(f);
    if (st != HNSWC_OK) {
        storage_destroy(ix);
        return st;
    }
    *out = ix;
    return HNSWC_OK;
}

/* hnswlib_import.h: the header check alone, no message (for hnswc_probe_file). */
bool hnswlib_probe(const unsigned char *head, size_t n, uint64_t file_size,
                   hnswc_file_info *out) {
    hl_header h;
    uint32_t dim;
    uint64_t max_elements, count;
    if (n >= BF_HEADER && bf_recognise(head, file_size, &dim, &max_elements, &count)) {
        out->kind = HNSWC_FILE_HNSWLIB;
        out->dim = dim;
        out->count = count;
        out->max_elements = max_elements;
        return true;
    }
    if (n < HEADER_BYTES)
        return false;
    parse_header(head, &h);
    if (header_problem(&h, &dim))
        return false;
    out->kind = HNSWC_FILE_HNSWLIB;
    out->dim = dim;
    out->count = h.count;
    out->max_elements = h.max_elements;
    out->M = (uint32_t)h.M;
    out->ef_construction = (uint32_t)h.ef_construction;
    return true;
}
