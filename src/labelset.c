/*
 * labelset.c -- label sets: the filter "only these labels" shared by every
 * binding (the CLI's --filter FILE, Python's knn_query(filter=[...])), so
 * that none of them sorts and bisects on its own.
 *
 * A set is the caller's own array, sorted and deduplicated in place, then
 * searched by bisection. Rejected: a hash set (faster lookups for huge sets,
 * but it allocates, so it could fail with NOMEM and would need a free call;
 * a search does O(ef * M) lookups, where log2(n) compares are cheap), and
 * the C library's qsort (a comparison callback per compare, and glibc's
 * qsort allocates a merge buffer behind the caller's back).
 */
#include "labelset.h"

#include "error.h"

/* ------------------------------------------------------------------------
 * Sorting: introsort on uint64 (quicksort, heapsort past a depth limit so
 * the worst case stays O(n log n), insertion sort for short runs)
 * ------------------------------------------------------------------------ */

#define SHORT_RUN 16

static void insertion_sort(uint64_t *a, size_t n) {
    for (size_t i = 1; i < n; i++) {
        uint64_t x = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > x) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

static void sift_down(uint64_t *a, size_t i, size_t n) {
    uint64_t x = a[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && a[c + 1] > a[c])
            c++;
        if (a[c] <= x)
            break;
        a[i] = a[c];
        i = c;
    }
    a[i] = x;
}

static void heap_sort(uint64_t *a, size_t n) {
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (size_t end = n; end-- > 1;) {
        uint64_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end);
    }
}

static void swap_u64(uint64_t *a, uint64_t *b) {
    uint64_t t = *a;
    *a = *b;
    *b = t;
}

/*
 * Hoare partition around the median of a[0], a[n/2], a[n-1] (n > SHORT_RUN):
 * returns p with every a[< p] <= pivot <= every a[>= p], 0 < p < n.
 */
static size_t partition(uint64_t *a, size_t n) {
    size_t mid = n / 2;
    if (a[mid] < a[0])
        swap_u64(&a[mid], &a[0]);
    if (a[n - 1] < a[0])
        swap_u64(&a[n - 1], &a[0]);
    if (a[n - 1] < a[mid])
        swap_u64(&a[n - 1], &a[mid]);
    uint64_t pivot = a[mid];
    size_t i = 0, j = n - 1;
    for (;;) {
        while (a[i] < pivot)
            i++;
        while (a[j] > pivot)
            j--;
        if (i >= j)
            return j + 1;
        swap_u64(&a[i], &a[j]);
        i++;
        j--;
    }
}

static void intro_sort(uint64_t *a, size_t n, int depth) {
    /* Recurse into the smaller side and loop on the larger: the stack stays
     * O(log n) deep whatever the input. */
    while (n > SHORT_RUN) {
        if (depth-- == 0) {
            heap_sort(a, n);
            return;
        }
        size_t p = partition(a, n);
        if (p < n - p) {
            intro_sort(a, p, depth);
            a += p;
            n -= p;
        } else {
            intro_sort(a + p, n - p, depth);
            n = p;
        }
    }
    insertion_sort(a, n);
}

size_t labelset_sort_unique(uint64_t *labels, size_t n) {
    if (n < 2)
        return n;
    int depth = 0;
    for (size_t m = n; m > 1; m >>= 1)
        depth += 2;
    intro_sort(labels, n, depth);
    size_t u = 1;
    for (size_t i = 1; i < n; i++)
        if (labels[i] != labels[u - 1])
            labels[u++] = labels[i];
    return u;
}

bool labelset_contains(const uint64_t *sorted, size_t n, uint64_t label) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] < label)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && sorted[lo] == label;
}

/* ------------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------------ */

hnswc_status hnswc_labelset_init(hnswc_labelset *set, uint64_t *labels, size_t n) {
    if (!set)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_labelset_init: set is NULL");
    set->labels = labels;
    set->n = 0;
    if (!labels && n > 0)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_labelset_init: labels is NULL but n is %zu", n);
    set->n = labelset_sort_unique(labels, n);
    return HNSWC_OK;
}

int hnswc_labelset_filter(uint64_t label, void *labelset) {
    const hnswc_labelset *set = labelset;
    return set && labelset_contains(set->labels, set->n, label);
}
