/*
 * fuzz_hnswlib.c -- libFuzzer harness for hnswc_load_hnswlib, the reader of
 * hnswlib's index files -- saveIndex's graphs and BruteforceSearch's exact
 * indexes -- and for hnswc_probe_file on the same bytes (no magic, no
 * checksum: consistency checks are all that stands between a hostile file
 * and the index).
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
    const char *path = fz_input_file(data, size);
    hnswc_status st = hnswc_load_hnswlib(path, metric, &ix);
    fz_count(st == HNSWC_OK);
    /* the probe reads any file; one the loader accepts is hnswlib's, and an
     * exact (BFIndex) file loads as a flat index and probes with M 0 */
    hnswc_file_info fi;
    fz_check(hnswc_probe_file(path, &fi) == HNSWC_OK, "hnswc_probe_file failed");
    if (st == HNSWC_OK) {
        hnswc_info in;
        fz_check(hnswc_get_info(ix, &in) == HNSWC_OK, "hnswc_get_info failed");
        fz_check(fi.kind == HNSWC_FILE_HNSWLIB, "a loadable hnswlib file probed as %d",
                 (int)fi.kind);
        fz_check((fi.M == 0) == (in.kind == HNSWC_KIND_FLAT), "probe M %u, loaded kind %d",
                 fi.M, (int)in.kind);
    }
    if (st != HNSWC_OK) {
        fz_check(st == HNSWC_ERR_FORMAT, "a bad input gave %s, not HNSWC_ERR_FORMAT",
                 hnswc_status_string(st));
        fz_check(ix == NULL, "a failed load left *out set");
        return 0;
    }
    fz_exercise(ix);
    return 0;
}
