/*
 * labelmap.c -- the label map: open addressing with linear probing and
 * backward-shift removal (labelmap.h has the contract).
 *
 * Locking: none inside; the owner guards the map (meta_lock in an index).
 */
#include "labelmap.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_label(uint64_t x) {
    /* splitmix64's finaliser: labels are often 0, 1, 2, ... and need mixing */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* An owned map's tag: the hash's top byte (the slot comes from the low
 * bits, so the tag still tells apart keys of one probe run). */
static uint8_t tag_of(uint64_t h) { return (uint8_t)(h >> 56); }

/* ========================================================================
 * Slots: the one place that knows a plain map from an owned one
 * ======================================================================== */

static inline bool owned(const label_map *m) { return m->key_of != NULL; }

static inline uint64_t slot_key(const label_map *m, size_t j) {
    return owned(m) ? m->key_of(m->key_ctx, m->vals[j]) : m->keys[j];
}

/* Whether slot j (occupied) holds key, whose hash is h. */
static inline bool slot_holds(const label_map *m, size_t j, uint64_t key, uint64_t h) {
    if (!owned(m))
        return m->keys[j] == key;
    return m->tags[j] == tag_of(h) && m->key_of(m->key_ctx, m->vals[j]) == key;
}

static inline void slot_set(label_map *m, size_t j, uint64_t key, uint64_t h, uint32_t val) {
    if (owned(m))
        m->tags[j] = tag_of(h);
    else
        m->keys[j] = key;
    m->vals[j] = val;
}

static inline void slot_move(label_map *m, size_t to, size_t from) {
    if (owned(m))
        m->tags[to] = m->tags[from];
    else
        m->keys[to] = m->keys[from];
    m->vals[to] = m->vals[from];
}

void label_map_init_owned(label_map *m, label_map_key_fn key_of, const void *key_ctx) {
    memset(m, 0, sizeof *m);
    m->key_of = key_of;
    m->key_ctx = key_ctx;
}

/* ========================================================================
 * Operations
 * ======================================================================== */

static hnswc_status label_map_rehash(label_map *m, size_t new_cap) {
    if (new_cap > SIZE_MAX / sizeof(uint64_t))
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "label map of %zu slots overflows", new_cap);
    label_map g = *m; /* the grown map: same kind, new slots */
    g.keys = NULL;
    g.tags = NULL;
    g.cap = new_cap;
    if (owned(m))
        g.tags = malloc(new_cap * sizeof *g.tags);
    else
        g.keys = malloc(new_cap * sizeof *g.keys);
    g.vals = malloc(new_cap * sizeof *g.vals);
    if ((!g.keys && !g.tags) || !g.vals) {
        free(g.keys);
        free(g.tags);
        free(g.vals);
        return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory growing the label map to %zu slots",
                          new_cap);
    }
    for (size_t i = 0; i < new_cap; i++)
        g.vals[i] = LABEL_MAP_EMPTY;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->vals[i] == LABEL_MAP_EMPTY)
            continue;
        uint64_t key = slot_key(m, i), h = hash_label(key);
        size_t j = (size_t)h & (new_cap - 1);
        while (g.vals[j] != LABEL_MAP_EMPTY)
            j = (j + 1) & (new_cap - 1);
        slot_set(&g, j, key, h, m->vals[i]);
    }
    free(m->keys);
    free(m->tags);
    free(m->vals);
    *m = g;
    return HNSWC_OK;
}

hnswc_status label_map_reserve(label_map *m, size_t n) {
    if (n > SIZE_MAX / 4)
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "label map for %zu entries overflows", n);
    size_t want = 16;
    while (want < 2 * n)
        want *= 2;
    return want > m->cap ? label_map_rehash(m, want) : HNSWC_OK;
}

/* The slot holding key, or SIZE_MAX. */
static size_t label_map_slot(const label_map *m, uint64_t key) {
    if (m->cap == 0)
        return SIZE_MAX;
    uint64_t h = hash_label(key);
    for (size_t j = (size_t)h & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        if (m->vals[j] == LABEL_MAP_EMPTY)
            return SIZE_MAX;
        if (slot_holds(m, j, key, h))
            return j;
    }
}

bool label_map_find(const label_map *m, uint64_t key, uint32_t *val) {
    size_t j = label_map_slot(m, key);
    if (j == SIZE_MAX)
        return false;
    *val = m->vals[j];
    return true;
}

hnswc_status label_map_put(label_map *m, uint64_t key, uint32_t val) {
    hnswc_status st = label_map_reserve(m, m->len + 1);
    if (st != HNSWC_OK)
        return st;
    uint64_t h = hash_label(key);
    size_t j = (size_t)h & (m->cap - 1);
    while (m->vals[j] != LABEL_MAP_EMPTY)
        j = (j + 1) & (m->cap - 1);
    slot_set(m, j, key, h, val);
    m->len++;
    return HNSWC_OK;
}

/*
 * A loader's whole map at once. Entered in the order of their keys' home
 * slots (a counting sort by the home's high bits, buckets of FILL_BUCKET
 * slots), the table is written from start to end instead of at random: a
 * key at a time, in the file's order, was a cache miss or two per label --
 * a third of opening a mapped Fashion-MNIST index, prefetching included.
 * Linear probing gives the same lookups whatever the order of insertion.
 * Rejected: building the map lazily at the first label lookup (a file with
 * two elements of one label must be refused when opened, which needs this
 * pass anyway).
 */
#define FILL_BUCKET_BITS 6

hnswc_status label_map_fill(label_map *m, const uint64_t *keys, size_t n, size_t *dup,
                            uint32_t *other) {
    if (m->len != 0 || n > (size_t)LABEL_MAP_EMPTY)
        return hnswc_fail(HNSWC_ERR_INVALID, "label_map_fill: the map is not empty");
    hnswc_status st = label_map_reserve(m, n);
    if (st != HNSWC_OK || n == 0)
        return st;
    const size_t mask = m->cap - 1;
    const size_t nb = (m->cap >> FILL_BUCKET_BITS) + 1;
    uint32_t *at = calloc(nb + 1, sizeof *at);
    uint32_t *order = malloc(n * sizeof *order);
    if (!at || !order) {
        free(at);
        free(order);
        return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory building a label map of %zu labels", n);
    }
    for (size_t i = 0; i < n; i++)
        at[(((size_t)hash_label(keys[i]) & mask) >> FILL_BUCKET_BITS) + 1]++;
    for (size_t b = 1; b <= nb; b++)
        at[b] += at[b - 1];
    for (size_t i = 0; i < n; i++)
        order[at[((size_t)hash_label(keys[i]) & mask) >> FILL_BUCKET_BITS]++] = (uint32_t)i;
    free(at);
    for (size_t k = 0; k < n; k++) {
        const uint32_t i = order[k];
        const uint64_t key = keys[i], h = hash_label(key);
        size_t j = (size_t)h & mask;
        /* an entry's key is keys[its value] here, plain map or owned: an
         * owned map compares its tag first and never reads the owner */
        for (; m->vals[j] != LABEL_MAP_EMPTY; j = (j + 1) & mask)
            if ((!owned(m) || m->tags[j] == tag_of(h)) && keys[m->vals[j]] == key) {
                /* report the later of the two in the caller's order */
                *dup = m->vals[j] > i ? m->vals[j] : i;
                *other = m->vals[j] > i ? i : m->vals[j];
                free(order);
                return HNSWC_ERR_FORMAT;
            }
        slot_set(m, j, key, h, i);
        m->len++;
    }
    free(order);
    return HNSWC_OK;
}

void label_map_update(label_map *m, uint64_t key, uint32_t val) {
    size_t j = label_map_slot(m, key);
    if (j != SIZE_MAX)
        m->vals[j] = val;
}

hnswc_status label_map_put_distinct(label_map *set, const uint64_t *keys, size_t n) {
    /* reserved up front, so the puts below cannot fail half way */
    hnswc_status st = label_map_reserve(set, set->len + n);
    uint32_t unused;
    for (size_t i = 0; st == HNSWC_OK && i < n; i++)
        if (!label_map_find(set, keys[i], &unused))
            st = label_map_put(set, keys[i], 0);
    return st;
}

size_t label_map_count_missing(const label_map *set, const label_map *m) {
    size_t missing = 0;
    uint32_t unused;
    for (size_t j = 0; j < set->cap; j++)
        if (set->vals[j] != LABEL_MAP_EMPTY && !label_map_find(m, slot_key(set, j), &unused))
            missing++;
    return missing;
}

/* Backward-shift deletion: moves later entries of the probe run back into
 * the hole, so lookups never need tombstones. */
void label_map_remove(label_map *m, uint64_t key) {
    size_t i = label_map_slot(m, key);
    if (i == SIZE_MAX)
        return;
    size_t mask = m->cap - 1;
    for (size_t j = (i + 1) & mask; m->vals[j] != LABEL_MAP_EMPTY; j = (j + 1) & mask) {
        size_t home = (size_t)hash_label(slot_key(m, j)) & mask;
        /* entry j may move to the hole i if its home is not in (i, j] */
        bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            slot_move(m, i, j);
            i = j;
        }
    }
    m->vals[i] = LABEL_MAP_EMPTY;
    m->len--;
}

void label_map_free(label_map *m) {
    label_map_key_fn key_of = m->key_of;
    const void *key_ctx = m->key_ctx;
    free(m->keys);
    free(m->tags);
    free(m->vals);
    memset(m, 0, sizeof *m);
    m->key_of = key_of;
    m->key_ctx = key_ctx;
}

size_t label_map_bytes(const label_map *m) {
    return m->cap * ((owned(m) ? sizeof(uint8_t) : sizeof(uint64_t)) + sizeof(uint32_t));
}
