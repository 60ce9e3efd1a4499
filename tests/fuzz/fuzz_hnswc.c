/*
 * fuzz_hnswc.c -- libFuzzer harness for hnswc's own file format.
 *
 * Every input goes through both loaders of the format: hnswc_deserialize
 * (from the fuzzer's buffer, sized exactly, so ASan sees any over-read) and
 * hnswc_load (the same bytes as a file), and through hnswc_probe_file. The
 * loaders must agree: both accept, or both reject with HNSWC_ERR_FORMAT and
 * leave *out NULL; the probe must call an accepted file hnswc's. The format
 * has two kinds (HNSW and flat) and hnswc 0.1's BFIndex files, all seeded.
 * An accepted index is then used and checked by fz_exercise (search, add,
 * update, delete, remove, serialize, save, reload).
 */
#include "fuzz_util.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hnswc_index *a = (hnswc_index *)data, *b = (hnswc_index *)data; /* must be reset */
    hnswc_status sa = hnswc_deserialize(data, size, &a);
    const char *path = fz_input_file(data, size);
    hnswc_status sb = hnswc_load(path, &b);
    fz_check(sa == sb, "hnswc_deserialize says %s, hnswc_load says %s", hnswc_status_string(sa),
             hnswc_status_string(sb));
    fz_count(sa == HNSWC_OK);
    /* the probe reads any file; one hnswc_load accepts is hnswc's */
    hnswc_file_info fi;
    fz_check(hnswc_probe_file(path, &fi) == HNSWC_OK, "hnswc_probe_file failed");
    fz_check(sa != HNSWC_OK || fi.kind == HNSWC_FILE_HNSWC, "a loadable hnswc file probed as %d",
             (int)fi.kind);
    if (sa != HNSWC_OK) {
        fz_check(sa == HNSWC_ERR_FORMAT, "a bad input gave %s, not HNSWC_ERR_FORMAT",
                 hnswc_status_string(sa));
        fz_check(a == NULL && b == NULL, "a failed load left *out set");
        return 0;
    }
    hnswc_free(b);
    fz_exercise(a);
    return 0;
}
