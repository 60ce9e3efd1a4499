/*
 * soak.c -- the long concurrency soak (make soak; opt-in, not in make test).
 *
 *   soak [SECONDS] [ADDERS] [SEARCHERS] [DIR] [hnsw|sq8|flat]
 *
 * (sq8: HNSW walking on SQ8 codes, whose quantiser trains while the other
 * threads run, once the index reaches HNSWC_SQ8_TRAIN_MIN elements.)
 * (flat: the exact kind; recall must then be exactly 1.)
 * Whatever the kind, the deleter removes labels for good (hnswc_remove)
 * half of the time, and marks them deleted the other half.
 * For SECONDS (default 180), on one index, at the same time:
 *   ADDERS threads (default 3)   add new labels (each thread its own labels,
 *                                paced to reach 400 per second of the run,
 *                                at most 200,000), and update labels of
 *                                their own (a new vector, the element
 *                                re-linked), 30% of their calls;
 *   one deleter                  marks random added labels deleted or
 *                                removes them for good, half and half (only
 *                                labels nobody updates, so a deletion stays);
 *   SEARCHERS threads (default 3) search random queries (some with a filter,
 *                                some as batches on two threads), and check
 *                                every answer as it comes;
 *   one saver                    every ~2 s saves the index (alternating two
 *                                files) and loads the previous save back.
 * hnswc_save is [exclusive with writers], so the saver holds a gate that the
 * adders and the deleter take (read side) around each call; searches run
 * through saves. Everything else is as concurrent as the library allows.
 *
 * Checked while running (a violation is counted and the first one printed):
 *   - no search returns a label whose deletion (or removal) completed
 *     before the search started; labels are known ones, distinct, distances ascending, the
 *     filter obeyed;
 *   - every call succeeds; every mid-run save loads, its counts agree.
 * Checked after the threads stop:
 *   - every label added (and not removed) is present exactly once
 *     (hnswc_get_labels), and no other label; a removed one is not found;
 *   - counts agree: count, deleted and live, and each label's deleted mark;
 *   - each label holds the last vector its owner wrote;
 *   - recall@10 at ef 100 against brute force over the live elements;
 *   - the index saved and loaded again answers 500 queries identically, bit
 *     for bit, and serializes to the same bytes.
 * Prints the figures (docs/RELIABILITY.md quotes them) and exits 1 on any
 * violation. Run it under ThreadSanitizer with make soak-tsan.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include "hnswc.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { DIM = 16, K = 10, MAX_ADDERS = 16, MAX_SEARCHERS = 16 };
#define PER_ADDER 200000u /* labels each adder may create, at most */

/* ========================================================================
 * Shared state
 * ======================================================================== */

static hnswc_index *ix;
static unsigned n_adders, n_searchers;
static double run_seconds, t_start;
static uint32_t quota; /* labels each adder creates over the run */
static _Atomic bool stop;
static pthread_rwlock_t gate; /* read: a writer's call; write: a save */

/* Label of adder t's i-th element: t + n_adders * i + 1 (never 0). */
static uint64_t label_of(unsigned t, uint32_t i) { return (uint64_t)t + (uint64_t)n_adders * i + 1; }
static bool owner_of(uint64_t label, unsigned *t, uint32_t *i) {
    if (label == 0 || label > (uint64_t)n_adders * PER_ADDER)
        return false;
    *t = (unsigned)((label - 1) % n_adders);
    *i = (uint32_t)((label - 1) / n_adders);
    return true;
}
/* Every 4th element of an adder is never updated: those the deleter takes. */
static bool deletable(uint32_t i) { return i % 4 == 0; }

static _Atomic uint32_t added[MAX_ADDERS];  /* elements 0 .. added-1 of t are in */
static uint32_t *version;                   /* [t * PER_ADDER + i], owner-written */
static _Atomic uint64_t *deleted_at;        /* clock when the deletion completed; 0 live */
static _Atomic uint8_t *removed;            /* 1: removed for good */
static bool flat;                           /* the exact kind */
static bool sq8;                            /* HNSW walking on SQ8 codes */
static _Atomic uint64_t clock_;             /* bumped by every completed deletion */

static void vector_of(uint64_t label, uint32_t ver, float *out) {
    uint64_t s = label * 0x9E3779B97F4A7C15ull + ver * 0xBF58476D1CE4E5B9ull + 1;
    for (int d = 0; d < DIM; d++) {
        s ^= s >> 33;
        s *= 0xff51afd7ed558ccdull;
        s ^= s >> 29;
        out[d] = (float)((s >> 11) * 0x1.0p-53) * 2.0f - 1.0f;
        s += 0x9E3779B97F4A7C15ull;
    }
}

/* Counters of what ran. */
static _Atomic uint64_t n_add, n_update, n_delete, n_remove, n_search, n_batch, n_save, n_reload;
static _Atomic uint64_t violations;

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...) {
    if (atomic_fetch_add(&violations, 1) < 5) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "soak: VIOLATION: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, " (%s)\n", hnswc_errmsg(NULL));
        va_end(ap);
    }
}

static uint64_t rnd(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ========================================================================
 * Threads
 * ======================================================================== */

static double now_s(void);

/*
 * Adds are paced so that the index grows over the whole run (quota labels
 * by the end) instead of filling up in the first seconds; ahead of the
 * pace, an adder updates now and then and otherwise waits.
 */
static void *adder(void *arg) {
    unsigned t = (unsigned)(uintptr_t)arg;
    uint64_t seed = 1000 + t;
    float v[DIM];
    while (!atomic_load(&stop)) {
        uint32_t have = atomic_load(&added[t]);
        double pace = (now_s() - t_start) / run_seconds;
        bool ahead = have >= quota || have >= 64 + pace * quota;
        unsigned dice = (unsigned)(rnd(&seed) % 10);
        if (ahead && dice != 0) {
            usleep(1000);
            continue;
        }
        bool update = have > 8 && (ahead || dice < 3);
        uint32_t i = have;
        if (update) {
            i = (uint32_t)(rnd(&seed) % have);
            if (deletable(i))
                i = i + 1 < have ? i + 1 : i - 1;
        }
        uint32_t ver = update ? version[t * PER_ADDER + i] + 1 : 0;
        vector_of(label_of(t, i), ver, v);
        pthread_rwlock_rdlock(&gate);
        hnswc_status st = hnswc_add(ix, label_of(t, i), v, 0);
        pthread_rwlock_unlock(&gate);
        if (st != HNSWC_OK) {
            violation("add of label %llu failed: %s", (unsigned long long)label_of(t, i),
                      hnswc_status_string(st));
            continue;
        }
        version[t * PER_ADDER + i] = ver;
        if (update) {
            atomic_fetch_add(&n_update, 1);
        } else {
            atomic_store(&added[t], have + 1);
            atomic_fetch_add(&n_add, 1);
        }
    }
    return NULL;
}

static void *deleter(void *arg) {
    (void)arg;
    uint64_t seed = 77;
    while (!atomic_load(&stop)) {
        unsigned t = (unsigned)(rnd(&seed) % n_adders);
        uint32_t have = atomic_load(&added[t]);
        if (have < 8) {
            usleep(1000);
            continue;
        }
        uint32_t i = (uint32_t)(rnd(&seed) % have) & ~3u; /* a deletable one */
        uint64_t l = label_of(t, i);
        if (atomic_load(&deleted_at[l])) {
            usleep(200);
            continue;
        }
        /* half of the time a removal for good (either kind, since issue 8):
         * the label is gone */
        bool remove = rnd(&seed) % 2;
        pthread_rwlock_rdlock(&gate);
        hnswc_status st = remove ? hnswc_remove(ix, l) : hnswc_mark_deleted(ix, l);
        pthread_rwlock_unlock(&gate);
        if (st != HNSWC_OK) {
            violation("%s of label %llu failed: %s", remove ? "remove" : "mark_deleted",
                      (unsigned long long)l, hnswc_status_string(st));
            continue;
        }
        if (remove)
            atomic_store(&removed[l], 1);
        atomic_store(&deleted_at[l], atomic_fetch_add(&clock_, 1) + 1);
        atomic_fetch_add(remove ? &n_remove : &n_delete, 1);
        usleep(200); /* deletions at a fraction of the rate of adds */
    }
    return NULL;
}

static int odd_only(uint64_t label, void *user) {
    (void)user;
    return label % 2 == 1;
}

/* One answer, checked: known labels, distinct, ascending, filter obeyed,
 * nothing whose deletion completed before the search started (c0). */
static void check_answer(const uint64_t *l, const float *d, size_t n, uint64_t c0, bool filtered) {
    for (size_t j = 0; j < n; j++) {
        unsigned t;
        uint32_t i;
        /* i == added[t]: the add in flight, already visible to searches */
        if (!owner_of(l[j], &t, &i) || i > atomic_load(&added[t])) {
            violation("search returned unknown label %llu", (unsigned long long)l[j]);
            continue;
        }
        uint64_t at = atomic_load(&deleted_at[l[j]]);
        if (at != 0 && at <= c0)
            violation("search returned label %llu, deleted before the search began",
                      (unsigned long long)l[j]);
        if (filtered && l[j] % 2 == 0)
            violation("search returned label %llu, which the filter rejects",
                      (unsigned long long)l[j]);
        if (j > 0 && (d[j] < d[j - 1] || l[j] == l[j - 1]))
            violation("search results out of order or repeated");
    }
}

static void *searcher(void *arg) {
    uint64_t seed = 5000 + (uintptr_t)arg;
    float q[4 * DIM];
    uint64_t l[4 * K];
    float d[4 * K];
    size_t found[4];
    while (!atomic_load(&stop)) {
        for (int j = 0; j < 4 * DIM; j++)
            q[j] = (float)((rnd(&seed) >> 11) * 0x1.0p-53) * 2.0f - 1.0f;
        uint64_t c0 = atomic_load(&clock_);
        unsigned kind = (unsigned)(rnd(&seed) % 8);
        hnswc_status st;
        if (kind == 0) { /* a batch on two threads */
            st = hnswc_search_batch(ix, q, 4, K, 64, NULL, NULL, 2, l, d, found);
            for (int b = 0; st == HNSWC_OK && b < 4; b++)
                check_answer(l + b * K, d + b * K, found[b], c0, false);
            atomic_fetch_add(&n_batch, 1);
        } else {
            bool filtered = kind == 1;
            st = hnswc_search(ix, q, K, 64, filtered ? odd_only : NULL, NULL, l, d, found);
            if (st == HNSWC_OK)
                check_answer(l, d, found[0], c0, filtered);
            atomic_fetch_add(&n_search, 1);
        }
        if (st != HNSWC_OK)
            violation("search failed: %s", hnswc_status_string(st));
    }
    return NULL;
}

static const char *save_dir;

static void *saver(void *arg) {
    (void)arg;
    char path[2][1024];
    snprintf(path[0], sizeof path[0], "%s/soak-a.hnswc", save_dir);
    snprintf(path[1], sizeof path[1], "%s/soak-b.hnswc", save_dir);
    for (unsigned round = 0; !atomic_load(&stop); round++) {
        for (int w = 0; w < 20 && !atomic_load(&stop); w++)
            usleep(100 * 1000);
        pthread_rwlock_wrlock(&gate);
        hnswc_info at_save;
        hnswc_get_info(ix, &at_save);
        hnswc_status st = hnswc_save(ix, path[round % 2]);
        pthread_rwlock_unlock(&gate);
        if (st != HNSWC_OK) {
            violation("save failed: %s", hnswc_status_string(st));
            continue;
        }
        atomic_fetch_add(&n_save, 1);
        hnswc_index *back = NULL;
        if ((st = hnswc_load(path[round % 2], &back)) != HNSWC_OK) {
            violation("loading a save made during the run failed: %s", hnswc_status_string(st));
            continue;
        }
        hnswc_info in;
        hnswc_get_info(back, &in);
        if (in.count != at_save.count || in.deleted_count != at_save.deleted_count ||
            in.live_count + in.deleted_count != in.count)
            violation("a save made during the run reloads with other counts");
        hnswc_free(back);
        atomic_fetch_add(&n_reload, 1);
    }
    unlink(path[0]);
    unlink(path[1]);
    return NULL;
}

/* ========================================================================
 * Final checks
 * ======================================================================== */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void final_checks(void) {
    uint64_t total = 0, dels = 0;
    for (unsigned t = 0; t < n_adders; t++)
        total += atomic_load(&added[t]);
    total -= atomic_load(&n_remove); /* the labels still there */
    uint64_t *labels = malloc((total ? total : 1) * sizeof *labels);
    size_t got = 0;
    if (hnswc_get_labels(ix, labels, total, &got) != HNSWC_OK || got != total)
        violation("hnswc_get_labels: %zu labels where %llu were added and not removed", got,
                  (unsigned long long)total);
    qsort(labels, got, sizeof *labels, cmp_u64);
    for (size_t j = 0; j < got; j++) {
        unsigned t;
        uint32_t i;
        if (j > 0 && labels[j] == labels[j - 1])
            violation("label %llu is present twice", (unsigned long long)labels[j]);
        if (!owner_of(labels[j], &t, &i) || i >= atomic_load(&added[t]))
            violation("label %llu is present but was never added", (unsigned long long)labels[j]);
        else if (atomic_load(&removed[labels[j]]))
            violation("label %llu is present but was removed", (unsigned long long)labels[j]);
    }

    float v[DIM], want[DIM];
    for (unsigned t = 0; t < n_adders; t++) {
        for (uint32_t i = 0; i < atomic_load(&added[t]); i++) {
            uint64_t l = label_of(t, i);
            int del = -1;
            if (atomic_load(&removed[l])) {
                if (hnswc_is_deleted(ix, l, &del) != HNSWC_ERR_NOT_FOUND)
                    violation("label %llu was removed but is still found", (unsigned long long)l);
                continue;
            }
            bool is_del = atomic_load(&deleted_at[l]) != 0;
            dels += is_del;
            if (hnswc_is_deleted(ix, l, &del) != HNSWC_OK || del != is_del)
                violation("label %llu: deleted mark %d, expected %d", (unsigned long long)l, del,
                          is_del);
            vector_of(l, version[t * PER_ADDER + i], want);
            if (hnswc_get_vector(ix, l, v) != HNSWC_OK || memcmp(v, want, sizeof v) != 0)
                violation("label %llu does not hold the last vector written",
                          (unsigned long long)l);
        }
    }
    hnswc_info in;
    hnswc_get_info(ix, &in);
    if (in.count != total || in.deleted_count != dels || in.live_count != total - dels)
        violation("counts: %llu elements, %llu deleted, %llu live; expected %llu, %llu, %llu",
                  (unsigned long long)in.count, (unsigned long long)in.deleted_count,
                  (unsigned long long)in.live_count, (unsigned long long)total,
                  (unsigned long long)dels, (unsigned long long)(total - dels));

    /* recall@10 at ef 100 against brute force over the live elements */
    enum { NQ = 200 };
    uint64_t seed = 99, hits = 0, wanted = 0;
    float *base = malloc(total * DIM * sizeof *base);
    uint64_t *blabel = malloc(total * sizeof *blabel);
    size_t nb = 0;
    for (unsigned t = 0; t < n_adders; t++)
        for (uint32_t i = 0; i < atomic_load(&added[t]); i++) {
            uint64_t l = label_of(t, i);
            if (atomic_load(&deleted_at[l]))
                continue;
            vector_of(l, version[t * PER_ADDER + i], base + nb * DIM);
            blabel[nb++] = l;
        }
    for (int qi = 0; qi < NQ; qi++) {
        float q[DIM];
        for (int d = 0; d < DIM; d++)
            q[d] = (float)((rnd(&seed) >> 11) * 0x1.0p-53) * 2.0f - 1.0f;
        double best[K];
        uint64_t bl[K];
        for (int k = 0; k < K; k++)
            best[k] = INFINITY, bl[k] = 0;
        for (size_t b = 0; b < nb; b++) {
            double s = 0;
            for (int d = 0; d < DIM; d++)
                s += ((double)q[d] - base[b * DIM + d]) * ((double)q[d] - base[b * DIM + d]);
            if (s >= best[K - 1])
                continue;
            int k = K - 1;
            while (k > 0 && best[k - 1] > s) {
                best[k] = best[k - 1];
                bl[k] = bl[k - 1];
                k--;
            }
            best[k] = s;
            bl[k] = blabel[b];
        }
        uint64_t l[K];
        float dd[K];
        size_t found = 0;
        hnswc_search(ix, q, K, 100, NULL, NULL, l, dd, &found);
        for (size_t j = 0; j < found; j++)
            for (int k = 0; k < K; k++)
                hits += l[j] == bl[k];
        wanted += nb < K ? nb : K;
    }
    double recall = wanted ? (double)hits / (double)wanted : 1.0;

    /* save, load: the same answers bit for bit, the same bytes */
    char path[1024];
    snprintf(path, sizeof path, "%s/soak-final.hnswc", save_dir);
    hnswc_index *back = NULL;
    if (hnswc_save(ix, path) != HNSWC_OK || hnswc_load(path, &back) != HNSWC_OK) {
        violation("the final save or load failed");
    } else {
        enum { NQ2 = 500 };
        float *q = malloc(NQ2 * DIM * sizeof *q);
        for (int j = 0; j < NQ2 * DIM; j++)
            q[j] = (float)((rnd(&seed) >> 11) * 0x1.0p-53) * 2.0f - 1.0f;
        uint64_t *la = malloc(NQ2 * K * sizeof *la), *lb = malloc(NQ2 * K * sizeof *lb);
        float *da = malloc(NQ2 * K * sizeof *da), *db = malloc(NQ2 * K * sizeof *db);
        size_t fa[NQ2], fb[NQ2];
        hnswc_search_batch(ix, q, NQ2, K, 64, NULL, NULL, 1, la, da, fa);
        hnswc_search_batch(back, q, NQ2, K, 64, NULL, NULL, 1, lb, db, fb);
        if (memcmp(la, lb, NQ2 * K * sizeof *la) || memcmp(da, db, NQ2 * K * sizeof *da) ||
            memcmp(fa, fb, sizeof fa))
            violation("the reloaded index answers differently");
        void *s1, *s2;
        size_t n1, n2;
        hnswc_serialize(ix, &s1, &n1);
        hnswc_serialize(back, &s2, &n2);
        if (n1 != n2 || memcmp(s1, s2, n1))
            violation("the reloaded index serializes differently");
        hnswc_buffer_free(s1);
        hnswc_buffer_free(s2);
        free(q), free(la), free(lb), free(da), free(db);
        hnswc_free(back);
    }
    unlink(path);

    printf("soak: final index: %llu elements, %llu deleted, %llu live", (unsigned long long)in.count,
           (unsigned long long)in.deleted_count, (unsigned long long)in.live_count);
    hnswc_graph_stats gs;
    if (!flat && hnswc_get_graph_stats(ix, &gs) == HNSWC_OK)
        printf("; %u layers, %llu unreachable on layer 0", gs.levels,
               (unsigned long long)gs.unreachable);
    printf("; recall@10 at ef 100: %.4f\n", recall);
    /* a flat index is exact: anything short of 1 is a wrong answer */
    if (recall < (flat ? 1.0 : 0.95))
        violation("recall@10 at ef 100 is %.4f, below %.2f", recall, flat ? 1.0 : 0.95);
    free(labels);
    free(base);
    free(blabel);
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 180;
    n_adders = argc > 2 ? (unsigned)atoi(argv[2]) : 3;
    n_searchers = argc > 3 ? (unsigned)atoi(argv[3]) : 3;
    save_dir = argc > 4 ? argv[4] : "/tmp";
    flat = argc > 5 && strcmp(argv[5], "flat") == 0;
    sq8 = argc > 5 && strcmp(argv[5], "sq8") == 0;
    run_seconds = seconds;
    quota = seconds * 400 < PER_ADDER ? (uint32_t)(seconds * 400) + 1000 : PER_ADDER;
    if (seconds <= 0 || n_adders < 1 || n_adders > MAX_ADDERS || n_searchers > MAX_SEARCHERS) {
        fprintf(stderr, "usage: soak [SECONDS] [ADDERS 1..16] [SEARCHERS 0..16] [DIR] [hnsw|sq8|flat]\n");
        return 2;
    }
    hnswc_options o = {0};
    o.dim = DIM;
    o.M = 12;
    o.ef_construction = 64;
    o.kind = flat ? HNSWC_KIND_FLAT : HNSWC_KIND_HNSW;
    o.storage = sq8 ? HNSWC_STORAGE_SQ8 : HNSWC_STORAGE_F32;
    if (hnswc_create(&o, &ix) != HNSWC_OK) {
        fprintf(stderr, "soak: %s\n", hnswc_errmsg(NULL));
        return 1;
    }
    version = calloc((size_t)n_adders * PER_ADDER, sizeof *version);
    deleted_at = calloc((size_t)n_adders * PER_ADDER + 1, sizeof *deleted_at);
    removed = calloc((size_t)n_adders * PER_ADDER + 1, sizeof *removed);
    pthread_rwlockattr_t ga;
    pthread_rwlockattr_init(&ga);
    pthread_rwlockattr_setkind_np(&ga, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&gate, &ga);

    printf("soak: %s index, %.0f s, %u adders, 1 deleter%s, %u searchers, 1 saver, dim %d\n",
           flat ? "flat" : sq8 ? "HNSW on SQ8 codes" : "HNSW", seconds, n_adders, " (and remover)", n_searchers,
           DIM);
    fflush(stdout);
    pthread_t th[MAX_ADDERS + MAX_SEARCHERS + 2];
    unsigned nt = 0;
    double t0 = t_start = now_s();
    for (unsigned t = 0; t < n_adders; t++)
        pthread_create(&th[nt++], NULL, adder, (void *)(uintptr_t)t);
    pthread_create(&th[nt++], NULL, deleter, NULL);
    for (unsigned s = 0; s < n_searchers; s++)
        pthread_create(&th[nt++], NULL, searcher, (void *)(uintptr_t)s);
    pthread_create(&th[nt++], NULL, saver, NULL);
    while (now_s() - t0 < seconds && atomic_load(&violations) == 0)
        usleep(200 * 1000);
    atomic_store(&stop, true);
    for (unsigned t = 0; t < nt; t++)
        pthread_join(th[t], NULL);
    double ran = now_s() - t0;

    printf("soak: ran %.1f s: %llu adds, %llu updates, %llu deletes, %llu removals, %llu "
           "searches, %llu search batches of 4, %llu saves (%llu reloaded)\n",
           ran, (unsigned long long)n_add, (unsigned long long)n_update,
           (unsigned long long)n_delete, (unsigned long long)n_remove, (unsigned long long)n_search,
           (unsigned long long)n_batch, (unsigned long long)n_save, (unsigned long long)n_reload);
    final_checks();
    hnswc_free(ix);
    free(version);
    free(deleted_at);
    free((void *)removed);
    uint64_t v = atomic_load(&violations);
    printf("soak: %s: %llu violations\n", v ? "FAILED" : "passed", (unsigned long long)v);
    return v ? 1 : 0;
}
