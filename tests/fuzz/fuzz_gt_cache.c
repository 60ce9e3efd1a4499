/*
 * fuzz_gt_cache.c -- libFuzzer harness for the ground-truth cache files of
 * `hnswc bench` (cli/gt.h): a file in the cache directory is input like any
 * other.
 *
 * The cache is checked by an FNV-1a checksum over everything before it and
 * by a header that must match the run (key, metric, nq, k). So that the
 * fuzzer reaches past both, the harness takes the expected values from the
 * input's own header and recomputes the checksum on a copy; the checks
 * themselves are covered by the inputs where it cannot (too short).
 */
#include "fuzz_util.h"
#include "gt.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The CLI's last error message (see fuzz_reader.c). */
const char *cli_error(void);

/* FNV-1a 64, the cache's checksum (gt.h), written out here: the harness
 * checks the CLI's files, it does not borrow the CLI's code to do so. */
static uint64_t fnv1a64(const uint8_t *p, size_t n) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    fz_check(copy != NULL, "out of memory in the harness");
    memcpy(copy, data, size);
    uint64_t key = 0, nq = 1, k = 1;
    hnswc_metric metric = HNSWC_METRIC_L2;
    if (size >= 48) {
        metric = (hnswc_metric)(copy[12] % 3);
        key = get64(copy + 16);
        nq = get64(copy + 24);
        k = get64(copy + 32);
        uint64_t h = fnv1a64(copy, size - 8);
        for (int i = 0; i < 8; i++)
            copy[size - 8 + i] = (uint8_t)(h >> (8 * i));
    }
    ground_truth gt;
    memset(&gt, 0xa5, sizeof gt);
    int r = gt_cache_load(fz_input_file(copy, size), key, metric, (size_t)nq, (size_t)k, &gt);
    fz_check(r == 1 || r == -1, "gt_cache_load returned %d for an existing file", r);
    fz_count(r == 1);
    if (r == 1) {
        fz_check(gt.nq == nq && gt.k == k && gt.labels && gt.distances, "inconsistent cache");
        /* every entry is readable (ASan checks the bounds) */
        uint64_t sum = 0;
        for (size_t i = 0; i < gt.nq * gt.k; i++)
            sum += gt.labels[i] + (gt.distances[i] > 0);
        (void)sum;
        gt_free(&gt);
    } else {
        fz_check(cli_error()[0] != '\0' && gt.labels == NULL, "a rejected cache left state");
    }
    free(copy);
    return 0;
}
