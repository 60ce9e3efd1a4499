/*
 * persist.c -- hnswc's file format, for both kinds of index: save, load,
 * serialize, deserialize.
 *
 * Layout (all integers in the byte order of the writing host, recorded in
 * the header; docs/ARCHITECTURE.md has the same table):
 *
 *   header   8  magic "\x89HNSWC\r\n" (the high byte and CR LF catch 7-bit
 *               and text-mode mangling, as PNG's signature does)
 *            4  format version (1: f32 storage; 2: the storage field and,
 *               for SQ8 and SQ8_ONLY, a QUAN section; 3: max_elements at
 *               the end of PARM, any storage; 4: as 3, VECS's rows aligned
 *               and padded. Every graph is written as version 4, a flat
 *               index as version 1; all four are read.)
 *            4  byte-order mark 0x01020304
 *            4  number of sections (5 for HNSW, 6 with QUAN, 3 for flat)
 *            4  CRC-32C of the 20 bytes above
 *   section  4  tag (HNSW: "PARM", "NODE", "VECS", "LNK0", "LNKU";
 *               flat: "FLAT", "NODE", "VECS"; in that order)
 *            4  reserved, 0
 *            8  payload length in bytes
 *            .. payload
 *            4  CRC-32C of the payload
 *
 * The first section's tag is the kind of the index.
 *
 *   PARM  u32 dim, metric, M, ef_construction, ef_search, storage (0 in
 *         version 1); u64 seed, level generator state, count, deleted
 *         count, entry; versions 3, 4: u64 max_elements, 0 for none (72
 *         bytes, else 64)
 *   FLAT  u32 dim, metric, 0, 0; u64 count, deleted count, capacity
 *   NODE  per node: u64 label, i32 level (flat: 0), u32 flags (bit 1: deleted)
 *   VECS  per node: dim float32 (normalised, for cosine). Version 4: zero
 *         bytes to the next file offset that is a multiple of 64, then per
 *         node a row of dim float32 and zero bytes up to aligned_row()
 *         (dim * 4 rounded up to 64; below 64, to a power of two)
 *   CODE  in place of VECS, for a trained code-only index (storage 2,
 *         SQ8_ONLY, which has no f32 vectors): per node, its dim u8 codes
 *         (no padding). Its bias (inner product, cosine) is recomputed on
 *         load from the codes and QUAN, bit for bit. An untrained code-only
 *         index still holds f32 vectors and writes VECS. The tag says which
 *         (QUAN, which comes after, must agree: trained iff CODE).
 *   QUAN  (SQ8, SQ8_ONLY) u32 trained (0/1), f32 step, dim f32 offsets. SQ8's
 *         code rows are not stored: they are a function of these and the
 *         vectors and are recomputed on load (about 50 ms for Fashion-MNIST).
 *   LNK0  per node: u32 count, 2*M u32 links
 *   LNKU  per node with level > 0, per layer 1..level: u32 count, M links
 *
 * hnswc_load also reads the exact-index files of hnswc 0.1's Python
 * BFIndex ("legacy" below), converting them to a flat index.
 *
 * The loader trusts nothing: every length is checked against the bytes that
 * are really there before anything is allocated, every checksum is verified,
 * every link must name an existing node that lives on that layer, labels
 * must be unique, and nothing may follow the last section. A file that fails
 * any check is rejected with HNSWC_ERR_FORMAT and a message saying which.
 */
#define _DEFAULT_SOURCE /* flock (BSD, also in glibc and macOS), beside POSIX 2008 */
#include "persist.h"

#include "crc.h"
#include "error.h"
#include "flat.h"
#include "mapfile.h"
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FORMAT_VERSION 1u    /* f32 graphs, once; every flat index */
#define FORMAT_VERSION_SQ8 2u
/* With an element limit. Rejected alternative: the limit in a field of
 * version 1's PARM -- its only spare u32 is now the storage, and a limit
 * above 2^32 (Python users pass generous ones) would not fit. */
#define FORMAT_VERSION_LIMIT 3u
/* What every graph is written as: version 3's sections (PARM of 72 bytes,
 * max_elements 0 for none), with VECS's rows starting at a file offset
 * that is a multiple of VECS_ALIGN and padded to a multiple of it, so that
 * a mapped index (hnswc_open) reads vectors as aligned as a loaded one's
 * (measured: the file's 4-byte alignment cost 4-6 % of a search). Rejected:
 * padding only the section's start (rows of dim * 4 bytes are 64-byte
 * aligned only when dim is a multiple of 16), and keeping the lowest
 * version that holds an index (the old readers could read them, but a
 * mapped open of them is slower). */
#define FORMAT_VERSION_ALIGNED 4u
#define VECS_ALIGN 64u
#define BYTE_ORDER_MARK 0x01020304u
#define SECTION_COUNT 5u
#define FLAT_SECTION_COUNT 3u
#define HEADER_SIZE 24u
#define SECTION_HEAD 16u
#define SECTION_TAIL 4u
#define PARM_SIZE 64u       /* versions 1 and 2 */
#define PARM_SIZE_LIMIT 72u /* version 3: max_elements appended */
#define FLAT_SIZE 40u
#define NODE_RECORD 16u

static const unsigned char MAGIC[8] = {0x89, 'H', 'N', 'S', 'W', 'C', '\r', '\n'};

/* ========================================================================
 * Writing: a sink is a file descriptor or a memory buffer of known size
 * ======================================================================== */

/*
 * File mode writes whole WRITE_BLOCK blocks at file offsets that are
 * multiples of it (the last block short), from a buffer of its own: on
 * Linux (6.18, ext4 measured; any file system with large folios) a write
 * of 2 MiB at a 2 MiB-aligned offset puts that range in the page cache as
 * one 2 MiB folio, so a file just saved is mapped with huge pages by
 * hnswc_open (mapfile.c) as a file read back from disk is. Written through
 * stdio's 1 MiB buffer, the same file was cached in 1 MiB folios, which
 * x86 maps with 4 KiB pages: its first 10,000 queries mapped took 1.14-1.24x
 * a loaded index's time (the TLB), against 0.99-1.06x with huge pages
 * (docs/BENCHMARKS.md). Rejected: posix_fadvise (no advice asks for large
 * folios), MADV_COLLAPSE at open (it copies every vector page: the cost of
 * a load, paid by an open); a larger block (4 MiB gave the same folios).
 * Elsewhere the block is just a large write.
 */
#define WRITE_BLOCK ((size_t)2 << 20)

typedef struct sink {
    int fd;             /* file mode when >= 0 */
    unsigned char *mem; /* memory mode: the image; file mode: the block buffer */
    size_t len, cap;    /* memory mode: bytes written, room; file mode: fill */
    uint32_t crc;       /* of the current section's payload */
    bool failed;
    int err;            /* file mode: errno of the failed write */
} sink;

/* File mode: writes the buffer's len bytes, all of them (a short write
 * is retried for the rest, as write(2) allows). */
static void sink_flush(sink *s) {
    size_t done = 0;
    while (!s->failed && done < s->len) {
        ssize_t w = write(s->fd, s->mem + done, s->len - done);
        if (w > 0) {
            done += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            s->failed = true;
            s->err = w < 0 ? errno : EIO;
        }
    }
    s->len = 0;
}

static void put(sink *s, const void *p, size_t n) {
    if (s->failed || n == 0)
        return;
    s->crc = crc_32c(s->crc, p, n);
    if (s->fd >= 0) {
        const unsigned char *b = p;
        while (n > 0 && !s->failed) {
            size_t k = WRITE_BLOCK - s->len < n ? WRITE_BLOCK - s->len : n;
            memcpy(s->mem + s->len, b, k);
            s->len += k;
            b += k;
            n -= k;
            if (s->len == WRITE_BLOCK)
                sink_flush(s);
        }
    } else if (s->cap - s->len < n) {
        s->failed = true;
    } else {
        memcpy(s->mem + s->len, p, n);
        s->len += n;
    }
}

static void put_u32(sink *s, uint32_t v) { put(s, &v, 4); }
static void put_u64(sink *s, uint64_t v) { put(s, &v, 8); }

static void section_begin(sink *s, const char tag[4], uint64_t len) {
    put(s, tag, 4);
    put_u32(s, 0);
    put_u64(s, len);
    s->crc = 0;
}

static void section_end(sink *s) {
    uint32_t crc = s->crc;
    put_u32(s, crc);
}

typedef struct layout {
    bool codes;           /* the vectors section is CODE (trained SQ8_ONLY) */
    uint64_t count;
    uint64_t upper_words; /* sum over nodes of level * (M + 1) */
    uint64_t node_len, vecs_len, quan_len, lnk0_len, lnku_len;
    uint64_t vec_row;     /* bytes per vector row in VECS: dim * 4, padded in version 4 */
    uint64_t vecs_pad;    /* zero bytes at the start of VECS's payload (version 4) */
    uint64_t vecs_at;     /* file offset of the first row (graphs) */
    uint32_t sections;
    uint32_t version, parm_len;
    uint64_t max_elements; /* read under meta_lock: hnswc_set_max_elements is
                              a [writer] and may run during a save */
    uint64_t total;
} layout;

/* Version 4's VECS row for a vector of `bytes` (a multiple of 4): rounded
 * up to a multiple of VECS_ALIGN, or below it to the next power of two --
 * a row then never straddles a cache line, and a dim-4 index's vectors
 * take 16 bytes, not 64. */
static uint64_t aligned_row(uint64_t bytes) {
    if (bytes >= VECS_ALIGN)
        return (bytes + VECS_ALIGN - 1) / VECS_ALIGN * VECS_ALIGN;
    uint64_t r = 4;
    while (r < bytes)
        r *= 2;
    return r;
}

/* Sizes of everything for n nodes of a graph file of the given format
 * version (max_elements 0: none; codes: CODE instead of VECS, whose rows of
 * dim bytes are never padded). All products fit: n < 2^32, dim <= 2^16,
 * M0 <= 2^12, levels < 2^6. */
static void layout_of(uint32_t version, uint32_t dim, uint32_t M0, uint64_t count,
                      uint64_t upper_words, uint32_t storage, uint64_t max_elements, bool codes,
                      layout *l) {
    l->codes = codes;
    l->max_elements = max_elements;
    l->version = version;
    l->parm_len = version >= FORMAT_VERSION_LIMIT ? PARM_SIZE_LIMIT : PARM_SIZE;
    l->count = count;
    l->upper_words = upper_words;
    l->node_len = count * NODE_RECORD;
    const bool aligned = version >= FORMAT_VERSION_ALIGNED && !codes;
    uint64_t row = (uint64_t)dim * (codes ? 1u : 4u);
    uint64_t at = HEADER_SIZE + 3 * SECTION_HEAD + 2 * SECTION_TAIL + l->parm_len + l->node_len;
    l->vec_row = aligned ? aligned_row(row) : row;
    l->vecs_pad = aligned ? (VECS_ALIGN - at % VECS_ALIGN) % VECS_ALIGN : 0;
    l->vecs_at = at + l->vecs_pad;
    l->vecs_len = l->vecs_pad + count * l->vec_row;
    l->quan_len = storage == HNSWC_STORAGE_F32 ? 0 : 8u + (uint64_t)dim * 4u;
    l->sections = SECTION_COUNT + (storage == HNSWC_STORAGE_F32 ? 0u : 1u);
    l->lnk0_len = count * (1u + M0) * 4u;
    l->lnku_len = upper_words * 4u;
    l->total = HEADER_SIZE + l->sections * (SECTION_HEAD + SECTION_TAIL) + l->parm_len +
               l->node_len + l->vecs_len + l->quan_len + l->lnk0_len + l->lnku_len;
}

/*
 * Removed elements and free slots (remove.c) are not written: the elements
 * left are renumbered densely, in slot order, and links to anything not
 * written are dropped (a removed node still linked to is waiting for a
 * sweep). newid[slot] is the written id or NODE_NONE; NULL means "every slot
 * as it is", the case of an index that never removed anything, whose files
 * are the same as before removal existed.
 */
typedef struct numbering {
    uint32_t *newid; /* NULL: identity */
    uint64_t slots;  /* ids below this are considered */
    uint64_t entry;  /* the entry word in written ids */
} numbering;

static bool written(const hnswc_index *ix, node_id id) {
    return !(atomic_load(&node_at(ix, id)->flags) & NODE_REMOVED);
}

/* Builds the numbering; NOMEM only when there are removed slots to skip. */
static hnswc_status make_numbering(const hnswc_index *ix, numbering *nb, uint64_t *count) {
    nb->slots = atomic_load(&ix->count);
    nb->newid = NULL;
    nb->entry = atomic_load(&ix->entry);
    *count = nb->slots;
    if (storage_graph_slots(ix) == nb->slots && atomic_load(&ix->removed_pending) == 0)
        return HNSWC_OK;
    if (!(nb->newid = malloc((size_t)(nb->slots ? nb->slots : 1) * sizeof *nb->newid)))
        return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory renumbering the elements to save");
    uint64_t n = 0;
    for (uint64_t i = 0; i < nb->slots; i++)
        nb->newid[i] = written(ix, (node_id)i) ? (uint32_t)n++ : NODE_NONE;
    *count = n;
    /* removal moves the entry point off a removed node before it returns,
     * and a save runs with no writer: the entry is always written. The
     * fallback (highest-level element) only guards the file's validity. */
    if (nb->entry != ENTRY_EMPTY && nb->newid[entry_id(nb->entry)] != NODE_NONE) {
        nb->entry = entry_make(entry_level(nb->entry), nb->newid[entry_id(nb->entry)]);
    } else {
        int best = -1;
        nb->entry = ENTRY_EMPTY;
        for (uint64_t i = 0; i < nb->slots; i++)
            if (nb->newid[i] != NODE_NONE && node_level(node_at(ix, (node_id)i)) > best) {
                best = node_level(node_at(ix, (node_id)i));
                nb->entry = entry_make(best, nb->newid[i]);
            }
    }
    return HNSWC_OK;
}

static inline bool nb_keep(const numbering *nb, uint64_t i) {
    return !nb->newid || nb->newid[i] != NODE_NONE;
}

static void current_layout(const hnswc_index *ix, const numbering *nb, uint64_t count, layout *l) {
    uint64_t words = 0;
    for (uint64_t i = 0; i < nb->slots; i++)
        if (nb_keep(nb, i))
            words += (uint64_t)node_level(node_at(ix, (node_id)i)) * (ix->M + 1);
    pthread_mutex_lock((pthread_mutex_t *)&ix->meta_lock);
    uint64_t max_elements = ix->max_elements;
    pthread_mutex_unlock((pthread_mutex_t *)&ix->meta_lock);
    layout_of(FORMAT_VERSION_ALIGNED, ix->dim, ix->M0, count, words, (uint32_t)ix->storage,
              max_elements, !storage_has_vectors(ix), l);
}

/* One link list in written ids: count, then max ids, zero-filled. */
static void put_links(sink *s, const numbering *nb, _Atomic uint32_t *links, uint32_t c,
                      uint32_t max, uint32_t *buf) {
    memset(buf, 0, (1 + (size_t)max) * 4u);
    uint32_t w = 0;
    for (uint32_t j = 0; j < c; j++) {
        uint32_t id = atomic_load_explicit(&links[1 + j], memory_order_acquire);
        if (!nb->newid)
            buf[1 + w++] = id;
        else if (id < nb->slots && nb->newid[id] != NODE_NONE)
            buf[1 + w++] = nb->newid[id];
    }
    buf[0] = w;
    put(s, buf, (1 + (size_t)max) * 4u);
}


static void write_header(sink *s, uint32_t version, uint32_t sections) {
    uint32_t head[3] = {version, BYTE_ORDER_MARK, sections};
    unsigned char h[HEADER_SIZE];
    memcpy(h, MAGIC, 8);
    memcpy(h + 8, head, 12);
    uint32_t hcrc = crc_32c(0, h, 20);
    memcpy(h + 20, &hcrc, 4);
    put(s, h, HEADER_SIZE);
}

/* Writes a whole HNSW index, numbered by nb. Caller holds the update lock's
 * read side. */
static void write_graph(const hnswc_index *ix, const numbering *nb, const layout *l, sink *s) {
    write_header(s, l->version, l->sections);

    section_begin(s, "PARM", l->parm_len);
    put_u32(s, ix->dim);
    put_u32(s, (uint32_t)ix->metric);
    put_u32(s, ix->M);
    put_u32(s, ix->ef_construction);
    put_u32(s, atomic_load(&ix->ef_search));
    put_u32(s, (uint32_t)ix->storage);
    put_u64(s, ix->seed);
    put_u64(s, ix->rng);
    put_u64(s, l->count);
    put_u64(s, atomic_load(&ix->deleted_count));
    put_u64(s, nb->entry);
    if (l->version >= FORMAT_VERSION_LIMIT)
        put_u64(s, l->max_elements);
    section_end(s);

    section_begin(s, "NODE", l->node_len);
    for (uint64_t i = 0; i < nb->slots; i++) {
        if (!nb_keep(nb, i))
            continue;
        node_head *n = node_at(ix, (node_id)i);
        put_u64(s, n->label);
        put_u32(s, (uint32_t)node_level(n));
        put_u32(s, atomic_load(&n->flags) & NODE_DELETED ? 1u : 0u);
    }
    section_end(s);

    static const unsigned char zeros[VECS_ALIGN];
    size_t vbytes = (size_t)ix->dim * 4u, row_pad = (size_t)(l->vec_row - vbytes);
    section_begin(s, l->codes ? "CODE" : "VECS", l->vecs_len);
    put(s, zeros, (size_t)l->vecs_pad);
    for (uint64_t i = 0; i < nb->slots; i++) {
        if (!nb_keep(nb, i))
            continue;
        if (l->codes) { /* rows of dim bytes, never padded */
            put(s, node_codes(ix, node_at(ix, (node_id)i)), ix->dim);
        } else {
            put(s, node_vector(ix, (node_id)i), vbytes);
            put(s, zeros, row_pad);
        }
    }
    section_end(s);

    if (l->quan_len) {
        section_begin(s, "QUAN", l->quan_len);
        bool trained = atomic_load(&ix->codes_ready) != 0;
        put_u32(s, trained ? 1u : 0u);
        put(s, &ix->quant.step, 4);
        if (trained)
            put(s, ix->quant.lo, (size_t)ix->dim * 4u);
        else /* never trained: no offsets to keep */
            for (uint32_t i = 0; i < ix->dim; i++)
                put_u32(s, 0);
        section_end(s);
    }

    /* links are copied word by word through atomics into a plain buffer */
    uint32_t buf[1 + 2 * 2048];
    section_begin(s, "LNK0", l->lnk0_len);
    for (uint64_t i = 0; i < nb->slots; i++) {
        if (!nb_keep(nb, i))
            continue;
        node_head *n = node_at(ix, (node_id)i);
        put_links(s, nb, n->l0, node_links_count(ix, n->l0, 0), ix->M0, buf);
    }
    section_end(s);

    section_begin(s, "LNKU", l->lnku_len);
    for (uint64_t i = 0; i < nb->slots; i++) {
        if (!nb_keep(nb, i))
            continue;
        node_head *n = node_at(ix, (node_id)i);
        for (int lv = 1; lv <= node_level(n); lv++) {
            _Atomic uint32_t *links = node_links(ix, n, lv);
            put_links(s, nb, links, node_links_count(ix, links, lv), ix->M, buf);
        }
    }
    section_end(s);
}

static void flat_layout(const flat_index *fx, layout *l) {
    memset(l, 0, sizeof *l);
    l->count = fx->count;
    l->node_len = fx->count * NODE_RECORD;
    l->vec_row = fx->dim * 4u;
    l->vecs_len = fx->count * fx->dim * 4u;
    l->total = HEADER_SIZE + FLAT_SECTION_COUNT * (SECTION_HEAD + SECTION_TAIL) + FLAT_SIZE +
               l->node_len + l->vecs_len;
}

/* Writes a whole flat index. Caller holds its lock's read side. */
static void write_flat(const flat_index *fx, const layout *l, sink *s) {
    write_header(s, FORMAT_VERSION, FLAT_SECTION_COUNT);
    section_begin(s, "FLAT", FLAT_SIZE);
    put_u32(s, fx->dim);
    put_u32(s, (uint32_t)fx->metric);
    put_u32(s, 0);
    put_u32(s, 0);
    put_u64(s, l->count);
    put_u64(s, fx->deleted_count);
    put_u64(s, fx->capacity);
    section_end(s);

    section_begin(s, "NODE", l->node_len);
    for (uint64_t i = 0; i < l->count; i++) {
        put_u64(s, fx->labels[i]);
        put_u32(s, 0); /* level */
        put_u32(s, fx->deleted[i]);
    }
    section_end(s);

    section_begin(s, "VECS", l->vecs_len);
    put(s, fx->vectors, (size_t)l->vecs_len);
    section_end(s);
}

/*
 * An image of either kind: image_begin takes the kind's lock (read side:
 * searches go on, writers wait or, for HNSW, must not run), numbers the
 * elements of an HNSW index that removed some (make_numbering: NOMEM, the
 * lock released, is its one failure) and measures the file exactly;
 * image_write writes it; image_end releases the lock and the numbering.
 */
typedef struct image {
    layout l;
    numbering nb; /* HNSW only */
} image;

static hnswc_status image_begin(const hnswc_index *ix, image *im) {
    memset(im, 0, sizeof *im);
    if (index_kind(ix) == HNSWC_KIND_FLAT) {
        pthread_rwlock_rdlock(&flat_of(ix)->lock);
        flat_layout(flat_of(ix), &im->l);
        return HNSWC_OK;
    }
    pthread_rwlock_rdlock((pthread_rwlock_t *)&ix->update_lock);
    uint64_t count;
    hnswc_status st = make_numbering(ix, &im->nb, &count);
    if (st != HNSWC_OK) {
        pthread_rwlock_unlock((pthread_rwlock_t *)&ix->update_lock);
        return st;
    }
    current_layout(ix, &im->nb, count, &im->l);
    return HNSWC_OK;
}

static void image_write(const hnswc_index *ix, const image *im, sink *s) {
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        write_flat(flat_of(ix), &im->l, s);
    else
        write_graph(ix, &im->nb, &im->l, s);
}

static void image_end(const hnswc_index *ix, image *im) {
    if (index_kind(ix) == HNSWC_KIND_FLAT) {
        pthread_rwlock_unlock(&flat_of(ix)->lock);
    } else {
        free(im->nb.newid);
        pthread_rwlock_unlock((pthread_rwlock_t *)&ix->update_lock);
    }
}

/* ========================================================================
 * Saving: temporary file, fsync, rename
 * ======================================================================== */

/* The directory of path into buf ("." or "/" when it has none or is at the
 * root); false if it does not fit. */
static bool dir_of(const char *path, char *buf, size_t size) {
    const char *slash = strrchr(path, '/');
    size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    if (n + 1 > size)
        return false;
    memcpy(buf, !slash ? "." : path, n);
    buf[n] = '\0';
    return true;
}

/*
 * The temporary files of saves that died.
 *
 * A save writes PATH.tmp.XXXXXX (mkstemp) and renames it over PATH. A
 * process killed in between leaves that file behind, and nothing else would
 * ever remove it (issue 13: 68 files, 830 MB after 100 kills). So each save
 * first removes the leftovers of earlier saves to the same PATH -- only
 * those provably abandoned:
 *
 *   - named PATH's name + ".tmp." + 6 characters of mkstemp's alphabet, in
 *     PATH's directory: no other file is ever looked at;
 *   - a regular file (not a link, a directory or a fifo) of our own user;
 *   - not locked: a saver takes an exclusive flock on its temporary file
 *     right after creating it and holds it until after the rename. flock
 *     locks belong to the open file, the kernel drops them when the process
 *     dies however it dies, and they conflict between two opens in one
 *     process too (POSIX fcntl locks do not, so a second thread's cleanup
 *     would take a live file). A lock we can take means its saver is gone;
 *     no pid is involved, so pid reuse and pid namespaces cannot fool it;
 *   - locked once: a saver makes its file 0644 only after locking it
 *     (mkstemp creates 0600), so a 0600 file may be one whose saver is
 *     between mkstemp and flock; it is taken only when over a minute old;
 *   - still the file we locked (same inode) when it is unlinked.
 *
 * Rejected: O_TMPFILE + linkat (no name until complete, nothing to leak) is
 * Linux-only, needs /proc or CAP_DAC_READ_SEARCH to link, and still needs a
 * named step before rename() can replace PATH; a pid in the name is fooled
 * by pid reuse and by other pid namespaces; age alone would take the file
 * of a slow live save.
 *
 * Limits: where flock is unsupported (some network file systems) a saver
 * keeps its file 0600, and one older than a minute can be taken from a
 * live save, which then fails cleanly (the rename finds nothing); each save
 * reads PATH's directory once.
 */
#define TMP_INFIX ".tmp."
#define TMP_RANDOM 6         /* the XXXXXX of mkstemp */
#define TMP_UNLOCKED_AGE 60  /* seconds: a 0600 leftover older than this is stale */

static bool is_mkstemp_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Removes the abandoned temporary files of earlier saves to path. Best
 * effort: a leftover costs disk space, never correctness, so errors are
 * ignored. */
static void remove_stale_temps(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t blen = strlen(base);
    char dir[4096];
    DIR *d = dir_of(path, dir, sizeof dir) ? opendir(dir) : NULL;
    if (!d)
        return;
    int dfd = dirfd(d);
    uid_t me = geteuid();
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strncmp(n, base, blen) != 0 || strncmp(n + blen, TMP_INFIX, 5) != 0 ||
            strlen(n + blen + 5) != TMP_RANDOM)
            continue;
        bool shape = true;
        for (int i = 0; i < TMP_RANDOM; i++)
            shape = shape && is_mkstemp_char(n[blen + 5 + i]);
        if (!shape)
            continue;
        int fd = openat(dfd, n, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat st, again;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == me &&
            ((st.st_mode & 0777) == 0644 || now - st.st_mtime > TMP_UNLOCKED_AGE) &&
            flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            fstatat(dfd, n, &again, AT_SYMLINK_NOFOLLOW) == 0 && again.st_dev == st.st_dev &&
            again.st_ino == st.st_ino)
            unlinkat(dfd, n, 0);
        close(fd); /* drops the lock */
    }
    closedir(d);
}

static void fsync_parent_dir(const char *path) {
    /* best effort: makes the rename itself durable */
    char dir[4096];
    int fd = dir_of(path, dir, sizeof dir) ? open(dir, O_RDONLY | O_DIRECTORY) : -1;
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

hnswc_status hnswc_save(const hnswc_index *ix, const char *path) {
    if (!ix || !path)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_save: %s is NULL", ix ? "path" : "index");
    if (!*path)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_save: path is empty");
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_save: out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, TMP_INFIX "XXXXXX", 12);

    remove_stale_temps(path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        hnswc_status st = hnswc_fail(HNSWC_ERR_IO, "hnswc_save: cannot create a file beside %s: %s",
                                     path, strerror(errno));
        free(tmp);
        return st;
    }
    /* locked for the whole save, then 0644 (an index is not a secret): the
     * mark that a leftover of ours was locked (remove_stale_temps) */
    bool locked = flock(fd, LOCK_EX) == 0;
    if (locked)
        fchmod(fd, 0644);
    unsigned char *block = malloc(WRITE_BLOCK);
    if (!block) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_save: out of memory");
    }

    image im;
    hnswc_status ist = image_begin(ix, &im);
    if (ist != HNSWC_OK) {
        free(block);
        close(fd);
        unlink(tmp);
        free(tmp);
        return ist;
    }
    sink s = {.fd = fd, .mem = block};
    image_write(ix, &im, &s);
    image_end(ix, &im);
    sink_flush(&s); /* the last, short block */
    free(block);

    int err = s.failed ? s.err : 0;
    if (!locked)
        fchmod(fd, 0644);
    if (!err && fsync(fd) != 0)
        err = errno ? errno : EIO;
    /* Renamed (or removed) while still locked, closed -- and so unlocked --
     * after. Once fsync has succeeded, close() cannot lose what it made
     * durable; its result is not the save's. */
    if (!err && rename(tmp, path) != 0)
        err = errno;
    if (err)
        unlink(tmp);
    close(fd);
    if (err) {
        free(tmp);
        return hnswc_fail(HNSWC_ERR_IO, "hnswc_save: writing %s failed: %s (the previous file, "
                          "if any, is untouched)", path, strerror(err));
    }
    fsync_parent_dir(path);
    free(tmp);
    return HNSWC_OK;
}

hnswc_status hnswc_serialize(const hnswc_index *ix, void **buffer, size_t *size) {
    if (buffer)
        *buffer = NULL;
    if (size)
        *size = 0;
    if (!ix || !buffer || !size)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_serialize: %s is NULL",
                          !ix ? "index" : !buffer ? "buffer" : "size");
    image im;
    hnswc_status st = image_begin(ix, &im);
    if (st != HNSWC_OK)
        return st;
    unsigned char *mem = im.l.total <= SIZE_MAX ? malloc((size_t)im.l.total) : NULL;
    if (!mem) {
        st = hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_serialize: out of memory for %llu bytes",
                        (unsigned long long)im.l.total);
    } else {
        sink s = {.fd = -1, .mem = mem, .cap = (size_t)im.l.total};
        image_write(ix, &im, &s);
        if (s.failed || s.len != im.l.total) { /* cannot happen: the layout is exact */
            free(mem);
            st = hnswc_fail(HNSWC_ERR_INVALID, "hnswc_serialize: index changed while serialized");
        } else {
            *buffer = mem;
            *size = s.len;
        }
    }
    image_end(ix, &im);
    return st;
}

void hnswc_buffer_free(void *buffer) { free(buffer); }

/* ========================================================================
 * Reading: a source is a FILE or a memory buffer; every read is checked
 * ======================================================================== */

typedef struct source {
    FILE *f;
    const unsigned char *mem;
    size_t pos, len;        /* memory mode */
    uint64_t remaining;     /* bytes left in the input */
    uint32_t crc;
    const char *what;       /* "file" or "buffer", for messages */
    /* hnswc_open(HNSWC_OPEN_MMAP): mem is this mapping of the file, and a
     * graph's vectors stay in it (load_graph takes it over); NULL else. */
    mapfile *map;
    bool verify;            /* with map: check the vectors too (VERIFY) */
    /* memory mode: bytes ahead whose checksum is already in crc (a section
     * summed in one call when opened: a call per record cost a fifth of
     * opening a mapped index) */
    uint64_t summed;
} source;

static hnswc_status fmt_err(const source *src, const char *msg) {
    return hnswc_fail(HNSWC_ERR_FORMAT, "hnswc_load: %s: %s", src->what, msg);
}

static hnswc_status take(source *src, void *dst, size_t n) {
    if (n > src->remaining)
        return fmt_err(src, "truncated (it ends in the middle of a section)");
    if (src->f) {
        if (fread(dst, 1, n, src->f) != n)
            return ferror(src->f) ? hnswc_fail(HNSWC_ERR_IO, "hnswc_load: read error: %s",
                                               strerror(errno))
                                  : fmt_err(src, "truncated (it ends in the middle of a section)");
    } else {
        memcpy(dst, src->mem + src->pos, n);
        src->pos += n;
    }
    src->remaining -= n;
    if (src->summed >= n)
        src->summed -= n;
    else
        src->crc = crc_32c(src->crc, dst, n);
    return HNSWC_OK;
}

/* Checks a section header just read: its tag and exact length. */
static hnswc_status section_check(source *src, const unsigned char h[SECTION_HEAD],
                                  const char tag[4], uint64_t want_len) {
    uint64_t len;
    uint32_t reserved;
    memcpy(&len, h + 8, 8);
    memcpy(&reserved, h + 4, 4);
    if (memcmp(h, tag, 4) != 0 || reserved != 0) {
        char msg[80];
        snprintf(msg, sizeof msg, "section %.4s expected, found a corrupted section header", tag);
        return fmt_err(src, msg);
    }
    if (len != want_len) {
        char msg[120];
        snprintf(msg, sizeof msg, "section %.4s is %llu bytes, its parameters say %llu", tag,
                 (unsigned long long)len, (unsigned long long)want_len);
        return fmt_err(src, msg);
    }
    src->crc = 0;
    return HNSWC_OK;
}

/* n bytes: in place when the source is memory already summed, else copied
 * into buf (and summed). *out points to them either way. The caller reads
 * them with memcpy (no alignment). A libc memcpy call per 16-byte NODE
 * record was 4 % of opening a mapped index. */
static hnswc_status take_view(source *src, void *buf, size_t n, const unsigned char **out) {
    if (src->mem && src->summed >= n && n <= src->remaining) {
        *out = src->mem + src->pos;
        src->pos += n;
        src->remaining -= n;
        src->summed -= n;
        return HNSWC_OK;
    }
    *out = buf;
    return take(src, buf, n);
}

/* n_words u32s: in place when the source is memory already summed and the
 * bytes are aligned for uint32_t (a mapped file: always), else copied into
 * buf. *out points to them either way. */
static hnswc_status take_words(source *src, uint32_t *buf, size_t n_words, const uint32_t **out) {
    size_t n = n_words * 4;
    if (src->mem && src->summed >= n && ((uintptr_t)(src->mem + src->pos) & 3u) == 0) {
        *out = (const uint32_t *)(const void *)(src->mem + src->pos);
        src->pos += n;
        src->remaining -= n;
        src->summed -= n;
        return HNSWC_OK;
    }
    *out = buf;
    return take(src, buf, n);
}

/* Memory mode: passes over n bytes without reading or summing them. */
static hnswc_status skip(source *src, uint64_t n) {
    if (n > src->remaining)
        return fmt_err(src, "truncated (it ends in the middle of a section)");
    src->pos += (size_t)n;
    src->remaining -= n;
    return HNSWC_OK;
}

/* Reads a section header, checks its tag and exact length. In memory
 * mode the whole payload is summed at once (not a mapped index's vectors:
 * they are summed only with verify, by pass_mapped_vectors).
 * section_open_head: the same, its header `h` read by the caller. */
static hnswc_status section_open_head(source *src, const unsigned char h[SECTION_HEAD],
                                      const char tag[4], uint64_t want_len) {
    hnswc_status st = section_check(src, h, tag, want_len);
    if (st == HNSWC_OK && src->mem && want_len <= src->remaining &&
        !(src->map && memcmp(tag, "VECS", 4) == 0)) {
        src->crc = crc_32c(0, src->mem + src->pos, (size_t)want_len);
        src->summed = want_len;
    }
    return st;
}

static hnswc_status section_open(source *src, const char tag[4], uint64_t want_len) {
    unsigned char h[SECTION_HEAD];
    hnswc_status st = take(src, h, sizeof h);
    return st == HNSWC_OK ? section_open_head(src, h, tag, want_len) : st;
}

static hnswc_status section_close(source *src, const char tag[4]) {
    uint32_t want = src->crc, got;
    src->summed = 0; /* the payload was read whole: nothing is left of it */
    hnswc_status st = take(src, &got, 4);
    if (st != HNSWC_OK)
        return st;
    if (got != want) {
        char msg[80];
        snprintf(msg, sizeof msg, "checksum of section %.4s does not match (corrupted)", tag);
        return fmt_err(src, msg);
    }
    return HNSWC_OK;
}

/* A fixed-size section whose header `head` the caller has read: checked,
 * its payload into b (len bytes), its checksum verified. */
static hnswc_status read_fixed_section(source *src, const unsigned char *head, const char tag[4],
                                       unsigned char *b, size_t len) {
    hnswc_status st = section_check(src, head, tag, len);
    if (st == HNSWC_OK)
        st = take(src, b, len);
    return st == HNSWC_OK ? section_close(src, tag) : st;
}

/* A node above layer 0 while a graph is read: its upper block (storage.h)
 * and top layer. */
typedef struct upper_ref {
    _Atomic uint32_t *upper;
    int level;
} upper_ref;

#define RECORD_AHEAD 8 /* records prefetched ahead of the one written */
#if defined(__GNUC__)
#define PREFETCH_W(p) __builtin_prefetch((p), 1)
#else
#define PREFETCH_W(p) ((void)(p))
#endif

typedef struct parm {
    uint32_t dim, metric, M, efc, ef, storage;
    uint64_t seed, rng, count, deleted, entry, max_elements;
} parm;

/* A parameter outside what hnswc_create accepts, named with its bounds. */
static hnswc_status param_err(const source *src, const char *field, uint64_t v, uint64_t lo,
                              uint64_t hi) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s %llu is out of range (%llu .. %llu)", field,
             (unsigned long long)v, (unsigned long long)lo, (unsigned long long)hi);
    return fmt_err(src, msg);
}

/* The PARM section, whose header `head` the caller has read. */
static hnswc_status read_parm(source *src, const unsigned char *head, uint32_t version, parm *p) {
    unsigned char b[PARM_SIZE_LIMIT];
    size_t len = version >= FORMAT_VERSION_LIMIT ? PARM_SIZE_LIMIT : PARM_SIZE;
    hnswc_status st = read_fixed_section(src, head, "PARM", b, len);
    if (st != HNSWC_OK)
        return st;
    uint32_t *u32s[6] = {&p->dim, &p->metric, &p->M, &p->efc, &p->ef, &p->storage};
    uint64_t *u64s[5] = {&p->seed, &p->rng, &p->count, &p->deleted, &p->entry};
    for (int i = 0; i < 6; i++)
        memcpy(u32s[i], b + 4 * i, 4);
    for (int i = 0; i < 5; i++)
        memcpy(u64s[i], b + 24 + 8 * i, 8);
    p->max_elements = 0; /* versions 1 and 2: no limit; 3 and 4: 0 is none */
    if (version >= FORMAT_VERSION_LIMIT)
        memcpy(&p->max_elements, b + PARM_SIZE, 8);
    if (p->dim == 0 || p->dim > HNSWC_MAX_DIM)
        return param_err(src, "dim", p->dim, 1, HNSWC_MAX_DIM);
    if (p->metric > HNSWC_METRIC_COSINE)
        return fmt_err(src, "unknown metric");
    if (p->M < 2 || p->M > HNSWC_MAX_M)
        return param_err(src, "M", p->M, 2, HNSWC_MAX_M);
    if (p->efc == 0 || p->efc > HNSWC_MAX_EF)
        return param_err(src, "ef_construction", p->efc, 1, HNSWC_MAX_EF);
    if (p->ef == 0 || p->ef > HNSWC_MAX_EF)
        return param_err(src, "ef_search", p->ef, 1, HNSWC_MAX_EF);
    if (version == FORMAT_VERSION && p->storage != 0)
        return fmt_err(src, "reserved field is not zero");
    if (version == FORMAT_VERSION_SQ8 && p->storage != HNSWC_STORAGE_SQ8 &&
        p->storage != HNSWC_STORAGE_SQ8_ONLY)
        return fmt_err(src, "unknown storage");
    if (version >= FORMAT_VERSION_LIMIT && p->storage > HNSWC_STORAGE_SQ8_ONLY)
        return fmt_err(src, "unknown storage");
    if (p->count > HNSWC_MAX_ELEMENTS)
        return fmt_err(src, "element count out of range");
    if (p->deleted > p->count)
        return fmt_err(src, "more deleted elements than elements");
    if (p->max_elements && p->count > p->max_elements)
        return fmt_err(src, "more elements than its max_elements");
    if (p->count == 0 ? p->entry != ENTRY_EMPTY
                      : (p->entry == ENTRY_EMPTY || (uint32_t)p->entry >= p->count ||
                         (p->entry >> 32) == 0 || (p->entry >> 32) > HNSWC_MAX_LEVELS))
        return fmt_err(src, "entry point out of range");
    return HNSWC_OK;
}

/* ========================================================================
 * Opening in place: hnswc_open(HNSWC_OPEN_MMAP)
 *
 * The file is mapped (mapfile.h), and read through the same validating
 * reader as hnswc_load with the mapping as its memory source: header, PARM,
 * NODE, QUAN, LNK0 and LNKU are checked as always (lengths, checksums,
 * ranges, links) and copied into the records. Only VECS is not read: the
 * index's vectors are the mapping's (storage.c, "Mapped vectors"), so
 * opening costs what the metadata costs, and the vector pages come in as
 * searches touch them. Without HNSWC_OPEN_VERIFY the vectors' checksum and
 * finiteness are not checked: a damaged vector gives wrong distances, never
 * a crash (every length and id is checked; nothing is indexed by a value
 * read from VECS). With it they are, reading every vector once (what
 * hnswc_load costs less the copy). SQ8 computes its code rows from the
 * vectors at open, as hnswc_load does: that reads every vector too.
 * ======================================================================== */

/* The chunks that hold count elements: chunks 0 .. *chunks-1, ids
 * 0 .. the returned cover - 1. */
static uint64_t chunk_cover(uint64_t count, unsigned *chunks) {
    unsigned c = 0;
    uint64_t cover = 0;
    while (cover < count && c < MAX_CHUNKS)
        cover = storage_chunk_end(c++);
    *chunks = c;
    return cover;
}

/*
 * The anonymous room a mapping of the file needs after its end: the
 * vectors of ids count .. the end of the chunk of the last element
 * (storage.c: a new element's vector in that chunk is written in place).
 * From the header and PARM, read with pread before mapping; 0 for anything
 * but a graph file whose vectors could fit in its size (the reader then
 * says what is wrong). Never more than the file's size.
 */
static uint64_t map_room(int fd, uint64_t size) {
    unsigned char b[HEADER_SIZE + SECTION_HEAD + PARM_SIZE_LIMIT];
    if (pread(fd, b, sizeof b, 0) != (ssize_t)sizeof b || memcmp(b, MAGIC, 8) != 0 ||
        memcmp(b + HEADER_SIZE, "PARM", 4) != 0)
        return 0;
    const unsigned char *parm = b + HEADER_SIZE + SECTION_HEAD;
    uint32_t version, dim;
    uint64_t count;
    memcpy(&version, b + 8, 4);
    memcpy(&dim, parm, 4);
    memcpy(&count, parm + 40, 8);
    if (dim == 0 || dim > HNSWC_MAX_DIM || count == 0 || count > HNSWC_MAX_ELEMENTS)
        return 0;
    layout l; /* the row: version 4 pads it */
    layout_of(version, dim, 4, count, 0, 0, 0, false, &l);
    if (count > size / l.vec_row)
        return 0;
    unsigned chunks;
    return (chunk_cover(count, &chunks) - count) * l.vec_row;
}

/* The index of a graph file being opened in place, its first vector at
 * offset l->vecs_at of the mapping, rows l->vec_row bytes apart; takes the
 * mapping over. */
static hnswc_status create_mapped(source *src, const hnswc_options *o, const layout *l,
                                  hnswc_index **ix) {
    unsigned chunks;
    uint64_t cover = chunk_cover(l->count, &chunks);
    if (l->vecs_at > src->map->len || cover > (src->map->len - l->vecs_at) / l->vec_row)
        return fmt_err(src, "changed while it was being opened"); /* the room was for another size */
    return storage_create_mapped(o, src->map, src->map->base + l->vecs_at, (size_t)l->vec_row,
                                 chunks, ix);
}

/* Are the n bytes at p all zero? (VECS's padding: a file is byte-exact,
 * so padding that is not zero is damage.) */
static bool all_zero(const unsigned char *p, size_t n) {
    unsigned char acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* One VECS row (vector, then padding) in memory: finite, padding zero. */
static hnswc_status check_row(const source *src, const unsigned char *row, uint32_t dim,
                              size_t row_bytes) {
    const float *v = (const float *)(const void *)row;
    for (uint32_t d = 0; d < dim; d++)
        if (!isfinite(v[d]))
            return fmt_err(src, "a vector holds NaN or infinity");
    if (!all_zero(row + (size_t)dim * 4, row_bytes - (size_t)dim * 4))
        return fmt_err(src, "the padding of a vector is not zero");
    return HNSWC_OK;
}

/* VECS of a mapped index, its header read: the payload is passed over, or
 * with verify summed and checked in place (padding zero, vectors finite). */
static hnswc_status pass_mapped_vectors(source *src, const layout *l, uint32_t dim) {
    if (l->vecs_len > src->remaining)
        return fmt_err(src, "truncated (it ends in the middle of a section)");
    if (src->verify) {
        const unsigned char *p = src->mem + src->pos;
        src->crc = crc_32c(src->crc, p, (size_t)l->vecs_len);
        if (!all_zero(p, (size_t)l->vecs_pad))
            return fmt_err(src, "the padding before the vectors is not zero");
        p += l->vecs_pad;
        for (uint64_t i = 0; i < l->count; i++, p += l->vec_row) {
            hnswc_status st = check_row(src, p, dim, (size_t)l->vec_row);
            if (st != HNSWC_OK)
                return st;
        }
    }
    return skip(src, l->vecs_len);
}

/* An HNSW index, after the header; `head` is the PARM section's header. */
static hnswc_status load_graph(source *src, const unsigned char *head, uint32_t version,
                               uint32_t nsec, hnswc_index **out) {
    parm p;
    hnswc_status st;
    if ((st = read_parm(src, head, version, &p)) != HNSWC_OK)
        return st;
    /* code only: a trained index has no f32 vectors to map (CODE); an
     * untrained one would free them at training. Read from the mapping
     * as from memory (hnswc_open unmaps it after), as hnswc_load reads. */
    const bool code_only = p.storage == HNSWC_STORAGE_SQ8_ONLY;
    if (code_only)
        src->map = NULL;

    hnswc_options o = {0};
    o.dim = p.dim;
    o.metric = (hnswc_metric)p.metric;
    o.M = p.M;
    o.ef_construction = p.efc;
    o.ef_search = p.ef;
    o.seed = p.seed;
    o.capacity = p.count ? p.count : 1;
    o.storage = (hnswc_storage)p.storage;
    o.max_elements = p.max_elements;

    /* the smallest possible file for these parameters (no upper layers)
     * must fit in what is left, before anything is allocated */
    layout l;
    layout_of(version, p.dim, 2 * p.M, p.count, 0, p.storage, p.max_elements, code_only, &l);
    if (nsec != l.sections) /* version 3: 6 sections only with SQ8's QUAN */
        return fmt_err(src, "wrong number of sections");
    if (l.total - HEADER_SIZE - l.parm_len - SECTION_HEAD - SECTION_TAIL > src->remaining)
        return fmt_err(src, "truncated (shorter than its element count requires)");

    hnswc_index *ix;
    /* l.vecs_at: where VECS's first row is; every length before it is
     * checked exactly */
    if (src->map)
        st = create_mapped(src, &o, &l, &ix);
    else
        st = storage_create(&o, &ix);
    if (st != HNSWC_OK)
        return st;
    ix->rng = p.rng;

    /* NODE: each node's header and upper lists, a deleted one listed, its
     * label kept for the label map (built at once after the loop:
     * storage_load_labels; read back from the records it cost a pass over
     * them). `levels`: a byte a node, for the upper links' checks
     * (storage_set_links). */
    uint64_t upper_words = 0, deleted = 0;
    int max_level = -1;
    uint8_t *levels = malloc(p.count ? (size_t)p.count : 1);
    /* the nodes above layer 0 and their upper blocks, in id order: LNKU
     * is read through these, not through the records (a cache miss per
     * upper node) */
    upper_ref *ups = NULL;
    size_t n_ups = 0, ups_cap = 0;
    uint64_t *labels = malloc((p.count ? (size_t)p.count : 1) * sizeof *labels);
    if (!levels || !labels)
        st = hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_load: out of memory");
    if (st == HNSWC_OK)
        st = section_open(src, "NODE", l.node_len);
    for (uint64_t i = 0; st == HNSWC_OK && i < p.count; i++) {
        unsigned char buf[NODE_RECORD];
        const unsigned char *rec;
        uint64_t label;
        int32_t level;
        uint32_t flags;
        if ((st = take_view(src, buf, sizeof buf, &rec)) != HNSWC_OK)
            break;
        memcpy(&label, rec, 8);
        memcpy(&level, rec + 8, 4);
        memcpy(&flags, rec + 12, 4);
        if (level < 0 || level >= HNSWC_MAX_LEVELS || flags > 1) {
            st = fmt_err(src, "an element has an invalid level or flags");
            break;
        }
        /* the upper links claimed so far must fit in what is left of the
         * input, checked before they are allocated: otherwise a short file
         * claiming high levels everywhere would cost far more memory than
         * its own size before being rejected */
        upper_words += (uint64_t)level * (p.M + 1);
        if (upper_words * 4 > src->remaining) {
            st = fmt_err(src, "truncated (shorter than its elements' levels require)");
            break;
        }
        /* the records are written in id order: asked for a few ahead (a
         * write to a record not in the cache stalled this loop) */
        if (i + RECORD_AHEAD < p.count)
            PREFETCH_W(node_at(ix, (node_id)(i + RECORD_AHEAD)));
        if ((st = storage_init_node(ix, (node_id)i, label, level)) != HNSWC_OK)
            break;
        /* relaxed: the index is not shared yet (a sequentially consistent
         * store is a full barrier per element) */
        atomic_store_explicit(&ix->count, i + 1, memory_order_relaxed); /* for storage_destroy */
        node_head *n = node_at(ix, (node_id)i);
        /* or, not store: the flags word holds the level too (storage.h) */
        atomic_fetch_or_explicit(&n->flags, NODE_READY | (flags ? NODE_DELETED : 0),
                                 memory_order_relaxed);
        levels[i] = (uint8_t)level;
        labels[i] = label;
        if (level > 0 && n_ups == ups_cap) {
            size_t cap = ups_cap ? 2 * ups_cap : 256;
            upper_ref *g = realloc(ups, cap * sizeof *g);
            if (!g) {
                st = hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_load: out of memory");
                break;
            }
            ups = g;
            ups_cap = cap;
        }
        if (level > 0)
            ups[n_ups++] = (upper_ref){node_upper(ix, n), level};
        if (flags && (st = storage_push_deleted(ix, (node_id)i)) != HNSWC_OK)
            break;
        deleted += flags;
        max_level = level > max_level ? level : max_level;
    }
    if (st == HNSWC_OK)
        st = section_close(src, "NODE");
    if (st == HNSWC_OK)
        st = storage_load_labels(ix, labels, src->what);
    free(labels);
    if (st == HNSWC_OK && deleted != p.deleted)
        st = fmt_err(src, "deleted count does not match the elements");
    if (st == HNSWC_OK && p.count > 0 &&
        (entry_level(p.entry) != max_level || node_level(node_at(ix, entry_id(p.entry))) != max_level))
        st = fmt_err(src, "entry point is not on the top layer");
    /* code only: the smaller CODE section, until its tag says which */
    layout_of(version, ix->dim, ix->M0, p.count, upper_words, p.storage, p.max_elements,
              code_only, &l);
    if (st == HNSWC_OK && l.total - HEADER_SIZE - l.parm_len - 2 * (SECTION_HEAD + SECTION_TAIL) -
                                  l.node_len > src->remaining)
        st = fmt_err(src, "truncated (shorter than its element count requires)");

    /* VECS, or CODE (a trained code-only index: the quantiser's codes) */
    bool codes = false;
    if (st == HNSWC_OK && code_only) {
        unsigned char h[SECTION_HEAD];
        if ((st = take(src, h, sizeof h)) == HNSWC_OK) {
            codes = memcmp(h, "CODE", 4) == 0;
            layout_of(version, ix->dim, ix->M0, p.count, upper_words, p.storage,
                      p.max_elements, codes, &l);
            st = section_open_head(src, h, codes ? "CODE" : "VECS", l.vecs_len);
        }
        if (st == HNSWC_OK && codes)
            storage_drop_vectors(ix); /* untouched yet: costs nothing */
    } else if (st == HNSWC_OK) {
        st = section_open(src, "VECS", l.vecs_len);
    }
    for (uint64_t i = 0; st == HNSWC_OK && codes && i < p.count; i++) /* padding, bias: after QUAN */
        st = take(src, node_codes(ix, node_at(ix, (node_id)i)), p.dim);
    if (st == HNSWC_OK && src->map) { /* they stay where they are */
        if (src->pos + l.vecs_pad != l.vecs_at)
            st = fmt_err(src, "the vector section is not where its lengths put it");
        else
            st = pass_mapped_vectors(src, &l, p.dim);
    }
    /* read: version 4's padding (under VECS_ALIGN bytes, before the rows
     * and after each vector) into pad, checked zero; CODE has none */
    unsigned char pad[VECS_ALIGN];
    const size_t row_pad = codes ? 0 : (size_t)(l.vec_row - (uint64_t)p.dim * 4u);
    if (st == HNSWC_OK && !src->map && !codes &&
        (st = take(src, pad, (size_t)l.vecs_pad)) == HNSWC_OK && !all_zero(pad, (size_t)l.vecs_pad))
        st = fmt_err(src, "the padding before the vectors is not zero");
    for (uint64_t i = 0; st == HNSWC_OK && !src->map && !codes && i < p.count; i++) {
        float *v = node_vector(ix, (node_id)i);
        if ((st = take(src, v, (size_t)p.dim * 4u)) != HNSWC_OK ||
            (st = take(src, pad, row_pad)) != HNSWC_OK)
            break;
        for (uint32_t d = 0; d < p.dim; d++)
            if (!isfinite(v[d])) {
                st = fmt_err(src, "a vector holds NaN or infinity");
                break;
            }
        if (st == HNSWC_OK && !all_zero(pad, row_pad))
            st = fmt_err(src, "the padding of a vector is not zero");
    }
    if (st == HNSWC_OK) /* mapped, unverified: the checksum is not compared */
        st = src->map && !src->verify ? skip(src, SECTION_TAIL)
                                      : section_close(src, codes ? "CODE" : "VECS");

    /* QUAN: the quantiser; the code rows are recomputed from the vectors */
    if (st == HNSWC_OK && l.quan_len) {
        unsigned char *qb = malloc((size_t)l.quan_len);
        if (!qb)
            st = hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_load: out of memory");
        if (st == HNSWC_OK)
            st = section_open(src, "QUAN", l.quan_len);
        if (st == HNSWC_OK)
            st = take(src, qb, (size_t)l.quan_len);
        if (st == HNSWC_OK)
            st = section_close(src, "QUAN");
        uint32_t trained = 0;
        float step = 0.0f;
        if (st == HNSWC_OK) {
            memcpy(&trained, qb, 4);
            memcpy(&step, qb + 4, 4);
            if (trained > 1)
                st = fmt_err(src, "invalid quantiser state");
            else if (code_only && codes != (trained == 1))
                st = fmt_err(src, codes ? "codes (CODE) without a trained quantiser"
                                        : "a trained code-only index without its codes (CODE)");
        }
        if (st == HNSWC_OK && trained) {
            float *lo = (float *)(void *)(qb + 8); /* malloc'd: aligned for float */
            if (!quant_sq8_set(&ix->quant, step, lo)) {
                st = fmt_err(src, "invalid quantiser (step or offsets)");
            } else if (codes) { /* the rows' padding and bias, from their codes */
                for (uint64_t i = 0; i < p.count; i++) {
                    uint8_t *row = node_codes(ix, node_at(ix, (node_id)i));
                    quant_sq8_set_codes(&ix->quant, row, row);
                }
                atomic_store(&ix->codes_ready, 1);
            } else { /* encoding reads every vector, mapped ones too */
                storage_encode_rows(ix, p.count);
                atomic_store(&ix->codes_ready, 1);
            }
        }
        free(qb);
    }

    /* LNK0 and LNKU (in-degrees are counted at the first write:
     * storage.c, "In-degrees") */
    uint32_t *w = malloc((1 + (size_t)ix->M0) * 4u);
    if (!w && st == HNSWC_OK)
        st = hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_load: out of memory");
    if (st == HNSWC_OK)
        st = section_open(src, "LNK0", l.lnk0_len);
    /* in memory, summed and aligned (a mapped file: always): all at once */
    if (st == HNSWC_OK && src->mem && src->summed >= l.lnk0_len &&
        ((uintptr_t)(src->mem + src->pos) & 3u) == 0) {
        st = storage_load_links0(ix, (const uint32_t *)(const void *)(src->mem + src->pos),
                                 src->what);
        if (st == HNSWC_OK) {
            src->pos += (size_t)l.lnk0_len;
            src->remaining -= l.lnk0_len;
            src->summed -= l.lnk0_len;
        }
    } else {
        for (uint64_t i = 0; st == HNSWC_OK && i < p.count; i++) {
            const uint32_t *r;
            if ((st = take_words(src, w, 1 + (size_t)ix->M0, &r)) != HNSWC_OK ||
                (st = storage_set_links(ix, node_at(ix, (node_id)i)->l0, r[0], r + 1, ix->M0, 0,
                                        levels, src->what)) != HNSWC_OK)
                break;
        }
    }
    if (st == HNSWC_OK)
        st = section_close(src, "LNK0");
    if (st == HNSWC_OK)
        st = section_open(src, "LNKU", l.lnku_len);
    for (size_t k = 0; st == HNSWC_OK && k < n_ups; k++) {
        if (k + 4 < n_ups) /* a block of its own, somewhere in the heap */
            PREFETCH_W(ups[k + 4].upper);
        for (int lv = 1; st == HNSWC_OK && lv <= ups[k].level; lv++) {
            const uint32_t *r;
            if ((st = take_words(src, w, 1 + (size_t)ix->M, &r)) == HNSWC_OK)
                st = storage_set_links(ix, upper_links(ix, ups[k].upper, lv), r[0], r + 1, ix->M,
                                       lv, levels, src->what);
        }
    }
    if (st == HNSWC_OK)
        st = section_close(src, "LNKU");
    free(w);
    free(levels);
    free(ups);

    if (st == HNSWC_OK && src->remaining > 0)
        st = fmt_err(src, "unexpected bytes after the last section");
    if (st == HNSWC_OK) {
        atomic_store(&ix->deleted_count, p.deleted);
        atomic_store(&ix->entry, p.entry);
        st = storage_finish_load(ix, true, src->what);
    }
    if (st == HNSWC_OK && ix->map_chunks)
        ix->map_bytes = l.count * p.dim * 4u; /* the vectors themselves, not version 4's padding */
    if (st != HNSWC_OK) {
        storage_destroy(ix);
        return st;
    }
    *out = ix;
    return HNSWC_OK;
}

/*
 * The rows to reserve for a flat index read from a file: the capacity its
 * saver had (Python's max_elements), but never more than the rows it holds
 * plus the larger of as many again and FILE_RESERVE_BYTES of rows. A
 * capacity in a file is a number anyone can write: 700 bytes claiming 2^32
 * rows asked for 64 GiB (issue 13's first defect, in the flat loader).
 * Adds grow the index past what is reserved, so a smaller reserve costs
 * only an earlier reallocation; hnswc_get_info reports what was reserved.
 */
#define FILE_RESERVE_BYTES ((uint64_t)256 << 20)

static uint64_t file_reserve(uint32_t dim, uint64_t count, uint64_t capacity) {
    uint64_t row = (uint64_t)dim * 4 + sizeof(uint64_t) + 1; /* vector, label, mark */
    uint64_t room = FILE_RESERVE_BYTES / row;
    room = count > room ? count : room;
    return capacity - count > room ? count + room : capacity;
}

/* A flat index, after the header; `head` is the FLAT section's header. */
static hnswc_status load_flat(source *src, const unsigned char *head, hnswc_index **out) {
    unsigned char b[FLAT_SIZE];
    hnswc_status st = read_fixed_section(src, head, "FLAT", b, sizeof b);
    if (st != HNSWC_OK)
        return st;
    uint32_t dim, metric, zero[2];
    uint64_t count, deleted, capacity;
    memcpy(&dim, b, 4);
    memcpy(&metric, b + 4, 4);
    memcpy(zero, b + 8, 8);
    memcpy(&count, b + 16, 8);
    memcpy(&deleted, b + 24, 8);
    memcpy(&capacity, b + 32, 8);
    if (dim == 0 || dim > 65536)
        return fmt_err(src, "dimension out of range");
    if (metric > HNSWC_METRIC_COSINE)
        return fmt_err(src, "unknown metric");
    if (zero[0] != 0 || zero[1] != 0)
        return fmt_err(src, "reserved field is not zero");
    if (count > HNSWC_MAX_ELEMENTS || capacity > HNSWC_MAX_ELEMENTS || count > capacity)
        return fmt_err(src, "element count or capacity out of range");
    if (deleted > count)
        return fmt_err(src, "more deleted elements than elements");
    /* the rest of the file must hold count elements before any is
     * allocated; the capacity is reserved only once the file is read */
    layout l;
    flat_index probe = {.dim = dim, .count = count};
    flat_layout(&probe, &l);
    if (l.total - HEADER_SIZE - FLAT_SIZE - SECTION_HEAD - SECTION_TAIL > src->remaining)
        return fmt_err(src, "truncated (shorter than its element count requires)");

    hnswc_options o = {0};
    o.kind = HNSWC_KIND_FLAT;
    o.dim = dim;
    o.metric = (hnswc_metric)metric;
    o.capacity = count;
    flat_index *fx;
    if ((st = flat_create(&o, &fx)) != HNSWC_OK)
        return st;
    st = section_open(src, "NODE", l.node_len);
    for (uint64_t i = 0; st == HNSWC_OK && i < count; i++) {
        unsigned char rec[NODE_RECORD];
        int32_t level;
        uint32_t flags;
        if ((st = take(src, rec, sizeof rec)) != HNSWC_OK)
            break;
        memcpy(&fx->labels[i], rec, 8);
        memcpy(&level, rec + 8, 4);
        memcpy(&flags, rec + 12, 4);
        if (level != 0 || flags > 1)
            st = fmt_err(src, "an element has an invalid level or flags");
        fx->deleted[i] = (uint8_t)flags;
    }
    if (st == HNSWC_OK)
        st = section_close(src, "NODE");
    if (st == HNSWC_OK)
        st = section_open(src, "VECS", l.vecs_len);
    if (st == HNSWC_OK)
        st = take(src, fx->vectors, (size_t)l.vecs_len);
    if (st == HNSWC_OK)
        st = section_close(src, "VECS");
    if (st == HNSWC_OK && src->remaining > 0)
        st = fmt_err(src, "unexpected bytes after the last section");
    if (st == HNSWC_OK)
        st = flat_finish_load(fx, count, "hnswc_load", src->what);
    if (st == HNSWC_OK && fx->deleted_count != deleted)
        st = fmt_err(src, "deleted count does not match the elements");
    if (st != HNSWC_OK) {
        flat_destroy(fx);
        return st;
    }
    /* best effort: the room the saved index had (within file_reserve's
     * bound); rows are allocated, not touched, so unused room costs address
     * space, not memory */
    if (capacity > count)
        flat_reserve(fx, file_reserve(dim, count, capacity));
    *out = (hnswc_index *)(void *)fx;
    return HNSWC_OK;
}

/* ========================================================================
 * Legacy: hnswc 0.1's Python BFIndex.save_index files
 *
 *   "HNSWCBF1" | u32 version 1 | u32 metric | u32 dim | u32 0 |
 *   u64 count | u64 max_elements | u64 next label |
 *   f32 vectors[count * dim] | u64 labels[count] | u32 CRC-32 (IEEE) of all before
 *
 * little-endian (the writer refused other hosts). Read as a flat index whose
 * capacity is max_elements where that is possible. The next label (the
 * Python counter for ids=None) has no place in a flat index and is dropped,
 * as hnswlib's own BFIndex files never had it.
 * ======================================================================== */

static const unsigned char LEGACY_MAGIC[8] = {'H', 'N', 'S', 'W', 'C', 'B', 'F', '1'};
#define LEGACY_HEAD 48u

static bool host_is_little_endian(void) {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* After the 24 bytes `h` (magic included) were read. */
static hnswc_status load_legacy(source *src, const unsigned char *h, hnswc_index **out) {
    if (!host_is_little_endian())
        return fmt_err(src, "written on a machine of the other byte order");
    unsigned char rest[LEGACY_HEAD - HEADER_SIZE];
    hnswc_status st = take(src, rest, sizeof rest);
    if (st != HNSWC_OK)
        return st;
    uint32_t crc = crc_32_ieee(0, h, HEADER_SIZE);
    crc = crc_32_ieee(crc, rest, sizeof rest);
    uint32_t head[4];
    uint64_t count, max_elements;
    memcpy(head, h + 8, 16);
    memcpy(&count, rest, 8);
    memcpy(&max_elements, rest + 8, 8);
    if (head[0] != 1)
        return fmt_err(src, "unsupported BFIndex file version");
    if (head[1] > HNSWC_METRIC_COSINE || head[2] == 0 || head[2] > 65536 || head[3] != 0)
        return fmt_err(src, "a BFIndex file with impossible parameters");
    uint64_t row = (uint64_t)head[2] * 4 + 8;
    if (count > HNSWC_MAX_ELEMENTS || count > src->remaining / row ||
        count * row + 4 != src->remaining)
        return fmt_err(src, "a BFIndex file that is truncated or has bytes after its end");

    hnswc_options o = {0};
    o.kind = HNSWC_KIND_FLAT;
    o.dim = head[2];
    o.metric = (hnswc_metric)head[1];
    o.capacity = count;
    flat_index *fx;
    if ((st = flat_create(&o, &fx)) != HNSWC_OK)
        return st;
    size_t vbytes = (size_t)count * head[2] * 4, lbytes = (size_t)count * 8;
    uint32_t want;
    if ((st = take(src, fx->vectors, vbytes)) == HNSWC_OK &&
        (st = take(src, fx->labels, lbytes)) == HNSWC_OK &&
        (st = take(src, &want, 4)) == HNSWC_OK) {
        crc = crc_32_ieee(crc, fx->vectors, vbytes);
        crc = crc_32_ieee(crc, fx->labels, lbytes);
        if (crc != want)
            st = fmt_err(src, "checksum of the BFIndex file does not match (corrupted)");
    }
    if (st == HNSWC_OK) {
        memset(fx->deleted, 0, (size_t)count);
        st = flat_finish_load(fx, count, "hnswc_load", src->what);
    }
    if (st != HNSWC_OK) {
        flat_destroy(fx);
        return st;
    }
    if (max_elements > count && max_elements <= HNSWC_MAX_ELEMENTS)
        flat_reserve(fx, file_reserve(head[2], count, max_elements)); /* as in load_flat */
    *out = (hnswc_index *)(void *)fx;
    return HNSWC_OK;
}

/* ========================================================================
 * Loading: the header, then the kind named by the first section
 * ======================================================================== */

static hnswc_status load_from(source *src, hnswc_index **out) {
    unsigned char h[HEADER_SIZE];
    src->crc = 0;
    hnswc_status st = take(src, h, sizeof h);
    if (st != HNSWC_OK)
        return st == HNSWC_ERR_FORMAT ? fmt_err(src, "too short to be an hnswc index") : st;
    if (memcmp(h, LEGACY_MAGIC, 8) == 0)
        return load_legacy(src, h, out);
    if (memcmp(h, MAGIC, 8) != 0)
        return fmt_err(src, "not an hnswc index (wrong magic number)");
    uint32_t version, bom, nsec, hcrc;
    memcpy(&version, h + 8, 4);
    memcpy(&bom, h + 12, 4);
    memcpy(&nsec, h + 16, 4);
    memcpy(&hcrc, h + 20, 4);
    if (crc_32c(0, h, 20) != hcrc)
        return fmt_err(src, "header checksum does not match (corrupted)");
    if (version < FORMAT_VERSION || version > FORMAT_VERSION_ALIGNED) {
        char msg[120];
        snprintf(msg, sizeof msg, "format version %u; this library reads versions %u to %u",
                 version, FORMAT_VERSION, FORMAT_VERSION_ALIGNED);
        return fmt_err(src, msg);
    }
    if (bom != BYTE_ORDER_MARK)
        return fmt_err(src, "written on a machine of the other byte order");
    unsigned char head[SECTION_HEAD];
    if ((st = take(src, head, sizeof head)) != HNSWC_OK)
        return st;
    bool flat = memcmp(head, "FLAT", 4) == 0;
    if (flat ? nsec != FLAT_SECTION_COUNT || version != FORMAT_VERSION
             : nsec != SECTION_COUNT + (version == FORMAT_VERSION_SQ8 ? 1u : 0u) &&
                   !(version >= FORMAT_VERSION_LIMIT && nsec == SECTION_COUNT + 1u))
        return fmt_err(src, "wrong number of sections"); /* versions 3, 4: load_graph checks */
    return flat ? load_flat(src, head, out) : load_graph(src, head, version, nsec, out);
}

hnswc_status hnswc_load(const char *path, hnswc_index **out) {
    if (out)
        *out = NULL;
    if (!path || !out)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_load: %s is NULL", path ? "out" : "path");
    FILE *f = fopen(path, "rb");
    if (!f)
        return hnswc_fail(errno == ENOMEM ? HNSWC_ERR_NOMEM : HNSWC_ERR_IO,
                          "hnswc_load: cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return hnswc_fail(HNSWC_ERR_IO, "hnswc_load: %s is not a regular file", path);
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    source src = {.f = f, .remaining = (uint64_t)sb.st_size, .what = path};
    hnswc_status st = load_from(&src, out);
    fclose(f);
    return st;
}

hnswc_status hnswc_open(const char *path, unsigned flags, hnswc_index **out) {
    if (out)
        *out = NULL;
    if (!path || !out)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_open: %s is NULL", path ? "out" : "path");
    if (flags & ~(unsigned)(HNSWC_OPEN_MMAP | HNSWC_OPEN_VERIFY))
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_open: unknown flags 0x%x",
                          flags & ~(unsigned)(HNSWC_OPEN_MMAP | HNSWC_OPEN_VERIFY));
    if (!(flags & HNSWC_OPEN_MMAP))
        return hnswc_load(path, out); /* which verifies everything */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hnswc_fail(errno == ENOMEM ? HNSWC_ERR_NOMEM : HNSWC_ERR_IO,
                          "hnswc_open: cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return hnswc_fail(HNSWC_ERR_IO, "hnswc_open: %s is not a regular file", path);
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < HEADER_SIZE) {
        close(fd);
        return hnswc_fail(HNSWC_ERR_FORMAT, "hnswc_load: %s: too short to be an hnswc index", path);
    }
    mapfile m;
    hnswc_status st = mapfile_map(fd, size, size + map_room(fd, size), &m, path);
    close(fd); /* the mapping holds the file */
    if (st != HNSWC_OK)
        return st;
    /* a flat or hnswc 0.1 file is read out of the mapping (copied) as
     * hnswc_load reads it; only a graph keeps the mapping */
    source src = {.mem = (const unsigned char *)m.base, .len = (size_t)size, .remaining = size,
                  .what = path, .map = &m, .verify = (flags & HNSWC_OPEN_VERIFY) != 0};
    st = load_from(&src, out);
    mapfile_unmap(&m); /* a no-op once the index took it over */
    return st;
}

hnswc_status hnswc_deserialize(const void *buffer, size_t size, hnswc_index **out) {
    if (out)
        *out = NULL;
    if (!buffer || !out)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_deserialize: %s is NULL", buffer ? "out" : "buffer");
    source src = {.mem = buffer, .len = size, .remaining = size, .what = "buffer"};
    return load_from(&src, out);
}

/* persist.h: does the file start with a magic hnswc_load reads? (for
 * hnswc_probe_file) */
bool persist_probe(const unsigned char *head, size_t n) {
    return n >= sizeof MAGIC &&
           (memcmp(head, MAGIC, sizeof MAGIC) == 0 || memcmp(head, LEGACY_MAGIC, 8) == 0);
}
