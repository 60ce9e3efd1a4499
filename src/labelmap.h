/*
 * labelmap.h -- the label map (labelmap.c): a hash map from the caller's
 * 64-bit labels to 32-bit slot ids.
 *
 * Prefix: label_map_. Self-contained (it knows nothing of nodes or of the
 * index), so any index kind can use it. Open addressing with linear probing
 * and backward-shift removal, so no tombstones accumulate.
 *
 * Locking: none inside. The owner guards it; in an hnswc_index that is
 * meta_lock (index.h).
 */
#ifndef HNSWC_LABELMAP_H
#define HNSWC_LABELMAP_H

#include "hnswc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LABEL_MAP_EMPTY UINT32_MAX /* a value never stored: marks an empty slot */

/* The key of value val, as its owner keeps it (label_map_init_owned). */
typedef uint64_t (*label_map_key_fn)(const void *ctx, uint32_t val);

/*
 * Two kinds of map. A plain map ({0}) stores each key: 12 bytes a slot.
 * An OWNED map (label_map_init_owned) does not: its owner keeps every
 * entry's key where key_of(key_ctx, val) finds it (an index: the label in
 * node val's record), and a slot holds the value and an 8-bit tag from the
 * key's hash, 5 bytes: a probe reads the owner's key only when the tag
 * matches (the entry sought, or one other in 256), so look-ups and a
 * loader's inserts read almost no record they did not already need;
 * growing and removing read the keys of the entries they move. The owner
 * must keep key_of(val) equal to the key entered with val for as long as
 * the entry is in the map, and guard both with the same lock. (Rejected:
 * 4-byte slots of values only -- every probe of an occupied slot would
 * read a random record, a cache miss per label when an index is opened;
 * and 32-bit tags, 8-byte slots, for a 256th of those reads.)
 */
typedef struct label_map {
    uint64_t *keys;  /* plain map: the keys; NULL in an owned map          */
    uint8_t *tags;   /* owned map: 8 bits of each key's hash; else NULL    */
    uint32_t *vals;  /* LABEL_MAP_EMPTY marks an empty slot */
    size_t cap;      /* a power of two, or 0 */
    size_t len;
    label_map_key_fn key_of; /* owned map only */
    const void *key_ctx;
} label_map;

/* Makes m an empty owned map (see above). */
void label_map_init_owned(label_map *m, label_map_key_fn key_of, const void *key_ctx);

/* Makes room for n entries in all, at a load factor of at most 1/2. */
hnswc_status label_map_reserve(label_map *m, size_t n);
/* true and *val set when key is present. */
bool label_map_find(const label_map *m, uint64_t key, uint32_t *val);
/* Inserts key, which must be absent; cannot fail after a reserve for it. */
hnswc_status label_map_put(label_map *m, uint64_t key, uint32_t val);

/* For loaders: fills an empty map with keys[i] -> i for i in 0 .. n-1
 * (n < 2^32), reserving room. HNSWC_ERR_FORMAT, with no message, when two
 * keys are equal: *other and *dup are their indexes (other < dup), and the
 * map holds part of the keys (a loader discards it); HNSWC_ERR_NOMEM;
 * HNSWC_ERR_INVALID if the map is not empty. */
hnswc_status label_map_fill(label_map *m, const uint64_t *keys, size_t n, size_t *dup,
                            uint32_t *other);
/* Sets the value of key, which must be present. */
void label_map_update(label_map *m, uint64_t key, uint32_t val);
/* Removes key if present. */
void label_map_remove(label_map *m, uint64_t key);

/* A set is a label map whose values are unused (0). Enters each of
 * keys[0 .. n-1] into set once; nothing is entered if it fails (NOMEM). */
hnswc_status label_map_put_distinct(label_map *set, const uint64_t *keys, size_t n);
/* The number of keys of `set` that m does not hold. */
size_t label_map_count_missing(const label_map *set, const label_map *m);
/* Frees the slots; an owned map stays owned (and empty). */
void label_map_free(label_map *m);
size_t label_map_bytes(const label_map *m);

#endif /* HNSWC_LABELMAP_H */
