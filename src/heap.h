/*
 * heap.h -- binary heaps of (distance, id), for graph.c and index.c.
 *
 * Prefix: min_heap_, max_heap_. Header only and self-contained (an id is any
 * uint32 slot id), so any index kind can use it.
 *
 * Hand-written rather than a generic priority queue: the comparisons inline
 * and the items are 8 bytes, which is most of a search loop's overhead.
 * The caller owns the array and guarantees room for one more item per push.
 */
#ifndef HNSWC_HEAP_H
#define HNSWC_HEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct heap_item {
    float dist;
    uint32_t id; /* a node_id */
} heap_item;

static inline void min_heap_push(heap_item *h, size_t *n, heap_item x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].dist <= x.dist)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static inline heap_item min_heap_pop(heap_item *h, size_t *n) {
    heap_item top = h[0], last = h[--(*n)];
    size_t i = 0, len = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= len)
            break;
        if (c + 1 < len && h[c + 1].dist < h[c].dist)
            c++;
        if (last.dist <= h[c].dist)
            break;
        h[i] = h[c];
        i = c;
    }
    if (len > 0)
        h[i] = last;
    return top;
}

static inline void max_heap_push(heap_item *h, size_t *n, heap_item x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].dist >= x.dist)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static inline heap_item max_heap_pop(heap_item *h, size_t *n) {
    heap_item top = h[0], last = h[--(*n)];
    size_t i = 0, len = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= len)
            break;
        if (c + 1 < len && h[c + 1].dist > h[c].dist)
            c++;
        if (last.dist >= h[c].dist)
            break;
        h[i] = h[c];
        i = c;
    }
    if (len > 0)
        h[i] = last;
    return top;
}

/* Empties a max-heap into out[] in ascending order of distance. */
static inline void max_heap_drain_sorted(heap_item *h, size_t *n, heap_item *out) {
    for (size_t i = *n; i > 0; i--)
        out[i - 1] = max_heap_pop(h, n);
}

#endif /* HNSWC_HEAP_H */
