#include <hnswc.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(call) do { hnswc_status s_ = (call); if (s_ != HNSWC_OK) { \
    fprintf(stderr, "%s: %s\n", #call, hnswc_errmsg(NULL)); exit(1); } } while (0)

enum { DIM = 32, N = 5000, K = 5 };

int main(void)
{
    static float data[N][DIM];
    for (int i = 0; i < N; i++)                     /* some random vectors */
        for (int j = 0; j < DIM; j++)
            data[i][j] = (float)rand() / (float)RAND_MAX;

    hnswc_options opt = {0};                        /* zero means default */
    opt.dim = DIM;
    opt.metric = HNSWC_METRIC_L2;
    hnswc_index *index;
    CHECK(hnswc_create(&opt, &index));
    for (int i = 0; i < N; i++)
        CHECK(hnswc_add(index, (uint64_t)i, data[i], 0));

    uint64_t labels[K];
    float dists[K];
    size_t found;
    CHECK(hnswc_search(index, data[42], K, 100, NULL, NULL, labels, dists, &found));
    for (size_t i = 0; i < found; i++)
        printf("label %llu  distance %.4f\n", (unsigned long long)labels[i], dists[i]);

    CHECK(hnswc_save(index, "quickstart.hnswc"));   /* atomic, checksummed */
    hnswc_free(index);
    CHECK(hnswc_load("quickstart.hnswc", &index));
    uint64_t again[K];
    CHECK(hnswc_search(index, data[42], K, 100, NULL, NULL, again, NULL, &found));
    printf("after reload the nearest is still %llu\n", (unsigned long long)again[0]);
    hnswc_free(index);
    return found == K && again[0] == labels[0] && labels[0] == 42 ? 0 : 1;
}
