/*
 * fuzz_hnswlib.c -- libFuzzer harness for hnswc_load_hnswlib, the reader of
 * hnswlib's index files (no magic, no checksum: consistency checks are all
 * that stands between a hostile file and the index).
 *
 * hnswlib's files do not record the metric; the harness picks it from the
 * input's length, so every metric sees every shape of file. A rejected file
 * must give HNSWC_ERR_FORMAT and leave *out NULL; an accepted one is used
 * and checked by fz_exercise.
 */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hnswc_metric metric = (hnswc_metric)(size % 3);
    hnswc_index *ix = (hnswc_index *)data; /* must be reset */
    hnswc_status st = hnswc_load_hnswlib(fz_memfile(data, size), metric, &ix);
    if (st != HNSWC_OK) {
        fz_check(st == HNSWC_ERR_FORMAT, "a bad input gave %s, not HNSWC_ERR_FORMAT",
                 hnswc_status_string(st));
        fz_check(ix == NULL, "a failed load left *out set");
        return 0;
    }
    fz_exercise(ix);
    return 0;
}
