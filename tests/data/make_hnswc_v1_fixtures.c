/* Writes tests/data/hnswc-v1-{l2,ip,cosine}-d8.bin: format-1 files made by the
 * library as of main d6738b2 (before the SQ8 storage), for test_sq8.c's check that
 * older files still load. Build against that commit's libhnswc.a and run with
 * the output folder as argument. The vectors are those of fixture_vector() in
 * test_sq8.c (the same LCG). */
#include "hnswc.h"
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    for (int m = 0; m < 3; m++) {
        hnswc_options o = {0};
        o.dim = 8; o.metric = (hnswc_metric)m; o.M = 8; o.ef_construction = 50; o.seed = 7;
        hnswc_index *ix; if (hnswc_create(&o, &ix)) return 1;
        unsigned long long s = 12345;
        for (int i = 0; i < 300; i++) {
            float v[8];
            for (int d = 0; d < 8; d++) { s = s * 6364136223846793005ull + 1442695040888963407ull; v[d] = (float)((s >> 33) % 1000) / 100.0f - 3.0f; }
            if (hnswc_add(ix, 1000 + i, v, 0)) return 2;
        }
        hnswc_mark_deleted(ix, 1003);
        char path[256]; const char *nm[] = {"l2", "ip", "cosine"};
        snprintf(path, sizeof path, "%s/hnswc-v1-%s-d8.bin", argv[1], nm[m]);
        if (hnswc_save(ix, path)) return 3;
        hnswc_free(ix);
    }
    return 0;
}
