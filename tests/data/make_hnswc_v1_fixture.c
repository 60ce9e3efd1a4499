/*
 * Wrote tests/data/hnswc-v1-l2-d4.hnswc, built against libhnswc 0.1 (commit
 * b227555, file format 1, before max_elements was saved) -- kept to show
 * how the fixture was made, not built by the tests:
 *
 *   cc -std=c11 -Iinclude make_hnswc_v1_fixture.c build/libhnswc.a -lpthread -lm
 *   ./a.out tests/data/hnswc-v1-l2-d4.hnswc
 *
 * tests/c/test_persist.c (test_format_1_files_load) checks what it holds.
 */
#include <hnswc.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 1;
    hnswc_options o = {0};
    o.dim = 4;
    o.M = 4;
    o.ef_construction = 32;
    o.ef_search = 20;
    hnswc_index *ix;
    if (hnswc_create(&o, &ix) != HNSWC_OK)
        return 1;
    for (int i = 0; i < 100; i++) {
        float v[4];
        for (int j = 0; j < 4; j++)
            v[j] = (float)((i * 7 + j * 3) % 17) / 17.0f + (float)i / 1000.0f;
        if (hnswc_add(ix, (uint64_t)i * 10, v, 0) != HNSWC_OK)
            return 2;
    }
    if (hnswc_mark_deleted(ix, 50) != HNSWC_OK)
        return 3;
    if (hnswc_save(ix, argv[1]) != HNSWC_OK) {
        puts(hnswc_errmsg(NULL));
        return 4;
    }
    hnswc_free(ix);
    return 0;
}
