/*
 * cmd_bench.c -- "hnswc bench": build an index of a dataset, sweep ef, and
 * report recall@k against exact ground truth, queries per second on one and
 * on all threads, latency percentiles, build time and memory, as a table
 * and as JSON (schema described in the help text; bench/compare.py reads
 * it, so change it only by adding fields).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "gt.h"
#include "errors.h"
#include "output.h"
#include "platform.h"

static const char usage_text[] =
    "usage: hnswc bench [options] BASE [QUERIES]\n"
    "       hnswc bench [options] --base FILE [--queries FILE]\n"
    "\n"
    "Builds an index of BASE, computes (and caches) the exact k nearest\n"
    "neighbours of every query, then for each ef measures recall@k, queries per\n"
    "second on 1 thread (hnswc_search in a loop) and on all threads\n"
    "(hnswc_search_batch), and the latency percentiles of the 1-thread run.\n"
    "BASE and QUERIES take every format of 'hnswc build'. For an HDF5 file\n"
    "(ann-benchmarks) QUERIES defaults to the same file; its 'train' and 'test'\n"
    "datasets are used, and its 'neighbors' dataset serves as ground truth when\n"
    "it applies (whole base, same metric, at least k columns).\n"
    "\n"
    "options:\n"
    "  --base FILE            the vectors to index\n"
    "  --queries FILE         the query vectors\n"
    "  --base-dataset NAME    HDF5 dataset of the base (default train)\n"
    "  --queries-dataset NAME HDF5 dataset of the queries (default test)\n"
    "  --metric METRIC        l2, ip or cosine (default: the HDF5 'distance'\n"
    "                         attribute, else l2)\n"
    "  -k, --k N              neighbours per query, recall@k (default 10)\n"
    "  --ef LIST              comma-separated ef values (default 10,20,40,80,120,200,400);\n"
    "                         an ef below k searches with ef = k\n"
    "  -M N                   links per node (default 16)\n"
    "  --ef-construction N    beam width while building (default 200)\n"
    "  --threads N            threads for building, ground truth and the\n"
    "                         all-threads run, 0 = all cores (default 0)\n"
    "  --seed N               seed of the level generator (default 100)\n"
    "  --storage S            what searches walk on: f32 vectors (default), sq8 (one-byte\n"
    "                         codes with an exact f32 re-rank: faster) or sq8-only\n"
    "                         (codes only, smallest memory: APPROXIMATE distances)\n"
    "  --nb N                 use only the first N base vectors\n"
    "  --nq N                 use only the first N queries\n"
    "  --gt-cache DIR         ground-truth cache folder (default\n"
    "                         $XDG_CACHE_HOME/hnswc or ~/.cache/hnswc)\n"
    "  --no-gt-cache          neither read nor write the cache\n"
    "  --json FILE            also write the results as JSON ('-': stdout; the\n"
    "                         table then goes to stderr)\n"
    "  --save FILE            save the built index\n"
    "  -q, --quiet            no progress and no table\n"
    "  -h, --help             this help\n"
    "\n"
    "JSON output (schema \"hnswc-bench/1\"; fields are only ever added):\n"
    "  {\n"
    "    \"schema\": \"hnswc-bench/1\",\n"
    "    \"hnswc_version\": \"0.1.0\",   \"simd\": \"avx2\",\n"
    "    \"dataset\": {\"base\": PATH, \"base_dataset\": NAME|null,\n"
    "                \"queries\": PATH, \"queries_dataset\": NAME|null,\n"
    "                \"n\": INT, \"nq\": INT, \"dim\": INT,\n"
    "                \"source_type\": \"float32\"|\"uint8\"|\"float64\",\n"
    "                \"metric\": \"l2\"|\"ip\"|\"cosine\"},\n"
    "    \"params\": {\"M\": INT, \"ef_construction\": INT, \"k\": INT,\n"
    "               \"threads\": INT (all-threads count), \"seed\": INT},\n"
    "    \"build\": {\"seconds\": NUM, \"vectors_per_second\": NUM,\n"
    "              \"memory_bytes\": INT (hnswc_info.memory_bytes)},\n"
    "    \"ground_truth\": {\"source\": \"computed\"|\"cache\"|\"hdf5\",\n"
    "                     \"seconds\": NUM, \"cache_file\": PATH|null},\n"
    "    \"results\": [ {\"ef\": INT, \"recall\": NUM (0..1, recall@k),\n"
    "                  \"recall_ties\": NUM|null,\n"
    "                  \"qps_1thread\": NUM, \"qps_all_threads\": NUM,\n"
    "                  \"latency_p50_us\": NUM, \"latency_p99_us\": NUM}, ... ]\n"
    "  }\n"
    "recall = (returned labels that are among the exact k nearest) / (exact\n"
    "neighbours), over all queries. recall_ties also counts a returned label\n"
    "whose distance is no greater than the exact k-th distance (ties), and is\n"
    "null when the ground truth has no distances (HDF5 'neighbors'). Latencies\n"
    "are per query, 1 thread, in microseconds (nearest-rank percentiles).\n";

/* Own options; the shared ones (args.h) are parsed by cli_parse_command. */
enum {
    O_BASE,
    O_QUERIES,
    O_BASE_DS,
    O_QUERIES_DS,
    O_K,
    O_EF,
    O_NB,
    O_NQ,
    O_GT_CACHE,
    O_NO_GT_CACHE,
    O_JSON,
    O_SAVE
};

static const cli_opt options[] = {
    CLI_OPT_HELP,
    {"base", 0, 1, O_BASE},
    {"queries", 0, 1, O_QUERIES},
    {"base-dataset", 0, 1, O_BASE_DS},
    {"queries-dataset", 0, 1, O_QUERIES_DS},
    CLI_OPT_METRIC,
    {"k", 'k', 1, O_K},
    {"ef", 0, 1, O_EF},
    CLI_OPT_M,
    CLI_OPT_EF_CONSTRUCTION,
    CLI_OPT_THREADS,
    CLI_OPT_SEED,
    CLI_OPT_STORAGE,
    {"nb", 0, 1, O_NB},
    {"nq", 0, 1, O_NQ},
    {"gt-cache", 0, 1, O_GT_CACHE},
    {"no-gt-cache", 0, 0, O_NO_GT_CACHE},
    {"json", 0, 1, O_JSON},
    {"save", 0, 1, O_SAVE},
    CLI_OPT_QUIET,
    CLI_OPT_END,
};

/* Everything the command line sets. */
typedef struct bench_args {
    cli_common_args c; /* metric, M, ef_construction, threads, seed, quiet */
    const char *base, *queries, *base_ds, *queries_ds;
    const char *gt_dir, *json, *save;
    const char *ef_list;
    int no_cache;
    uint64_t k, nb, nq;
    uint64_t *efs;
    size_t n_efs;
} bench_args;

/* One row of the sweep. */
typedef struct bench_row {
    uint64_t ef;
    double recall, recall_ties, qps1, qps_all, p50_us, p99_us;
} bench_row;

typedef struct bench_run {
    dataset base, queries;
    int base_hdf5, queries_hdf5;
    hnswc_index *ix;
    double build_s;
    uint64_t memory;
    ground_truth gt;
    const char *gt_source;
    double gt_s;
    char gt_file[1024];
    unsigned threads; /* resolved "all threads" count */
    bench_row *rows;
} bench_run;

/* ------------------------------------------------------------------------
 * Arguments
 * ------------------------------------------------------------------------ */

/* cli_own_option_fn of "bench". */
static int bench_option(void *ctx, int id, const char *val)
{
    bench_args *a = ctx;
    switch (id) {
    case CLI_POSITIONAL: {
        const char **const slots[] = {&a->base, &a->queries};
        return cli_take_positional(val, slots, 2, "");
    }
    case O_BASE: a->base = val; return 0;
    case O_QUERIES: a->queries = val; return 0;
    case O_BASE_DS: a->base_ds = val; return 0;
    case O_QUERIES_DS: a->queries_ds = val; return 0;
    case O_K: return cli_parse_u64("--k", val, 1, 10000, &a->k);
    case O_EF: a->ef_list = val; return 0;
    case O_NB: return cli_parse_u64("--nb", val, 1, UINT64_MAX, &a->nb);
    case O_NQ: return cli_parse_u64("--nq", val, 1, UINT64_MAX, &a->nq);
    case O_GT_CACHE: a->gt_dir = val; return 0;
    case O_NO_GT_CACHE: a->no_cache = 1; return 0;
    case O_JSON: a->json = val; return 0;
    case O_SAVE: a->save = val; return 0;
    }
    return 0;
}

/*
 * Like cli_parse_command: CLI_GO_ON with a->efs allocated, or the exit
 * status (nothing allocated).
 */
static int parse_args(int argc, char **argv, bench_args *a)
{
    const char *cmd = "bench";
    memset(a, 0, sizeof *a);
    cli_common_init(&a->c, NULL);
    a->k = 10;
    a->base_ds = "train";
    a->queries_ds = "test";
    a->ef_list = "10,20,40,80,120,200,400";
    int done = cli_parse_command(cmd, usage_text, argc, argv, options, &a->c, bench_option, a);
    if (done != CLI_GO_ON)
        return done;
    if (a->base == NULL) {
        cli_set_error("missing the BASE file (--base)");
        return cli_usage_fail(cmd);
    }
    if (cli_parse_u64_list("--ef", a->ef_list, 1, 1u << 31, &a->efs, &a->n_efs) != 0)
        return cli_usage_fail(cmd);
    return CLI_GO_ON;
}

/* ------------------------------------------------------------------------
 * Steps
 * ------------------------------------------------------------------------ */

static int load_data(bench_args *a, bench_run *r)
{
    input_format bf = FMT_AUTO, qf;
    if (cli_resolve_base(a->base, &bf, &a->c) != 0)
        return -1;
    r->base_hdf5 = bf == FMT_HDF5;
    if (a->queries == NULL) {
        if (!r->base_hdf5) {
            cli_set_error("missing the QUERIES file (--queries); only an HDF5 file holds both");
            return -1;
        }
        a->queries = a->base;
    }
    if (dataset_detect(a->queries, &qf) != 0)
        return -1;
    r->queries_hdf5 = qf == FMT_HDF5;
    read_options bo = {bf, a->base_ds}, qo = {qf, a->queries_ds};
    if (dataset_read(a->base, &bo, &r->base) != 0)
        return -1;
    if (dataset_read(a->queries, &qo, &r->queries) != 0)
        return -1;
    if (r->base.dim != r->queries.dim) {
        cli_set_error("the queries have dimension %zu but the base vectors %zu", r->queries.dim,
                      r->base.dim);
        return -1;
    }
    if (a->nb > 0)
        dataset_truncate(&r->base, (size_t)(a->nb < r->base.n ? a->nb : r->base.n));
    if (a->nq > 0)
        dataset_truncate(&r->queries, (size_t)(a->nq < r->queries.n ? a->nq : r->queries.n));
    return 0;
}

/*
 * The "neighbors" dataset of an ann-benchmarks file, when it is ground
 * truth for this run: queries from the same file, the whole base, the
 * file's own metric, and at least k columns. Returns 1 if used.
 */
static int gt_from_hdf5(const bench_args *a, bench_run *r)
{
    if (!r->base_hdf5 || !r->queries_hdf5 || strcmp(a->base, a->queries) != 0 ||
        strcmp(a->base_ds, "train") != 0 || strcmp(a->queries_ds, "test") != 0 || a->nb != 0)
        return 0;
    hnswc_metric fm;
    if (hdf5_read_metric(a->base, &fm) <= 0 || fm != a->c.metric)
        return 0;
    size_t rows, cols;
    uint64_t *nb = NULL;
    if (hdf5_read_neighbors(a->base, "neighbors", &rows, &cols, &nb) <= 0)
        return 0; /* absent or unreadable: compute instead */
    size_t nq = r->queries.n, k = (size_t)a->k;
    int ok = rows >= nq && cols >= k;
    for (size_t i = 0; ok && i < nq * cols; i++)
        ok = nb[i] < r->base.n;
    if (!ok) {
        free(nb);
        return 0;
    }
    r->gt.labels = malloc(nq * k * sizeof *r->gt.labels);
    if (r->gt.labels == NULL) {
        free(nb);
        return 0;
    }
    for (size_t q = 0; q < nq; q++)
        memcpy(r->gt.labels + q * k, nb + q * cols, k * sizeof *nb);
    free(nb);
    r->gt.nq = nq;
    r->gt.k = k;
    r->gt.distances = NULL;
    r->gt_source = "hdf5";
    return 1;
}

/* The cache folder: --gt-cache, else $XDG_CACHE_HOME/hnswc, else ~/.cache/hnswc. */
static int cache_dir(const bench_args *a, char *buf, size_t len)
{
    if (a->no_cache)
        return 0;
    if (a->gt_dir != NULL)
        snprintf(buf, len, "%s", a->gt_dir);
    else if (getenv("XDG_CACHE_HOME") != NULL && getenv("XDG_CACHE_HOME")[0] == '/')
        snprintf(buf, len, "%s/hnswc", getenv("XDG_CACHE_HOME"));
    else if (getenv("HOME") != NULL && getenv("HOME")[0] != '\0')
        snprintf(buf, len, "%s/.cache/hnswc", getenv("HOME"));
    else
        return 0;
    return 1;
}

static int ground_truth_step(const bench_args *a, bench_run *r)
{
    const char *cmd = "bench";
    double t0 = cli_now();
    if (gt_from_hdf5(a, r)) {
        r->gt_s = cli_now() - t0;
        if (!a->c.quiet)
            fprintf(stderr, "ground truth: the HDF5 file's 'neighbors' dataset\n");
        return 0;
    }
    char dir[900];
    int use_cache = cache_dir(a, dir, sizeof dir);
    uint64_t key = 0;
    if (use_cache) {
        key = gt_key(&r->base, &r->queries, a->c.metric, (size_t)a->k);
        snprintf(r->gt_file, sizeof r->gt_file, "%s/gt-%016llx.bin", dir,
                 (unsigned long long)key);
        int got = gt_cache_load(r->gt_file, key, a->c.metric, r->queries.n, (size_t)a->k, &r->gt);
        if (got == 1) {
            r->gt_source = "cache";
            r->gt_s = cli_now() - t0;
            if (!a->c.quiet)
                fprintf(stderr, "ground truth: loaded from the cache %s\n", r->gt_file);
            return 0;
        }
        if (got < 0)
            cli_report(cmd, "warning: ignoring a damaged ground-truth cache file (%s); "
                            "recomputing",
                       cli_error());
    }
    if (gt_compute(&r->base, &r->queries, a->c.metric, (size_t)a->k, (unsigned)a->c.threads,
                   !a->c.quiet, &r->gt) != 0)
        return -1;
    r->gt_source = "computed";
    r->gt_s = cli_now() - t0;
    if (use_cache) {
        if (gt_mkdirs(dir) != 0 || gt_cache_save(r->gt_file, key, a->c.metric, &r->gt) != 0) {
            cli_report(cmd, "warning: cannot write the ground-truth cache: %s", cli_error());
            r->gt_file[0] = '\0';
        } else if (!a->c.quiet) {
            fprintf(stderr, "ground truth: computed in %.2f s, cached in %s\n", r->gt_s,
                    r->gt_file);
        }
    } else if (!a->c.quiet) {
        fprintf(stderr, "ground truth: computed in %.2f s (not cached)\n", r->gt_s);
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const double *sorted, size_t n, double pct)
{
    size_t rank = (size_t)(pct / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

/*
 * Fraction of the exact neighbours found, over all queries.
 * With ties set (and distances known), a returned label also counts when its
 * distance is no greater than the exact k-th distance: among equidistant
 * vectors any is a correct answer (compare.py's definition).
 */
static double recall(const ground_truth *gt, const uint64_t *labels, const float *dists,
                     const size_t *found, size_t k, int ties)
{
    uint64_t hits = 0, total = 0;
    for (size_t q = 0; q < gt->nq; q++) {
        const uint64_t *exact = gt->labels + q * gt->k;
        size_t ne = 0;
        while (ne < k && exact[ne] != UINT64_MAX)
            ne++;
        total += ne;
        if (ties) {
            /* Distances of the same pair may differ in the last bits between
             * the index and the brute force (cosine normalisation): allow a
             * relative 1e-6. */
            float kth = ne ? gt->distances[q * gt->k + ne - 1] : 0;
            double limit = (double)kth + 1e-6 * (fabs((double)kth) > 1 ? fabs((double)kth) : 1);
            size_t n = found[q] < ne ? found[q] : ne;
            for (size_t j = 0; j < n; j++)
                hits += (double)dists[q * k + j] <= limit;
            continue;
        }
        for (size_t j = 0; j < found[q]; j++)
            for (size_t e = 0; e < ne; e++)
                if (labels[q * k + j] == exact[e]) {
                    hits++;
                    break;
                }
    }
    return total ? (double)hits / (double)total : 1.0;
}

static int sweep(const bench_args *a, bench_run *r)
{
    size_t nq = r->queries.n, k = (size_t)a->k, dim = r->queries.dim;
    uint64_t *labels = malloc(nq * k * sizeof *labels);
    float *dists = malloc(nq * k * sizeof *dists);
    size_t *found = malloc(nq * sizeof *found);
    double *lat = malloc(nq * sizeof *lat);
    r->rows = calloc(a->n_efs, sizeof *r->rows);
    int rc = -1;
    if (labels == NULL || dists == NULL || found == NULL || lat == NULL || r->rows == NULL) {
        cli_set_error("out of memory for the search results");
        goto out;
    }

    /* Warm-up, untimed: first-touch page faults and cold caches would
     * otherwise be charged to the first ef of the sweep. */
    size_t warm = nq < 200 ? nq : 200;
    for (size_t q = 0; q < warm; q++) {
        hnswc_status st = hnswc_search(r->ix, r->queries.data + q * dim, k, (size_t)a->efs[0],
                                       NULL, NULL, labels, dists, &found[0]);
        if (st != HNSWC_OK) {
            cli_set_lib_error("search failed", st);
            goto out;
        }
    }

    for (size_t e = 0; e < a->n_efs; e++) {
        size_t ef = (size_t)a->efs[e];
        bench_row *row = &r->rows[e];
        row->ef = a->efs[e];

        /* One thread: hnswc_search per query, each one timed. */
        double t0 = cli_now();
        for (size_t q = 0; q < nq; q++) {
            double s = cli_now();
            hnswc_status st = hnswc_search(r->ix, r->queries.data + q * dim, k, ef, NULL, NULL,
                                           labels + q * k, dists + q * k, &found[q]);
            lat[q] = cli_now() - s;
            if (st != HNSWC_OK) {
                cli_set_lib_error("search failed", st);
                goto out;
            }
        }
        double t1 = cli_now() - t0;
        row->recall = recall(&r->gt, labels, dists, found, k, 0);
        row->recall_ties =
            r->gt.distances != NULL ? recall(&r->gt, labels, dists, found, k, 1) : NAN;
        row->qps1 = t1 > 0 ? (double)nq / t1 : 0;
        qsort(lat, nq, sizeof *lat, cmp_double);
        row->p50_us = percentile(lat, nq, 50) * 1e6;
        row->p99_us = percentile(lat, nq, 99) * 1e6;

        /* All threads: one batch call. */
        t0 = cli_now();
        hnswc_status st = hnswc_search_batch(r->ix, r->queries.data, nq, k, ef, NULL, NULL,
                                             (unsigned)a->c.threads, labels, dists, found);
        double tb = cli_now() - t0;
        if (st != HNSWC_OK) {
            cli_set_lib_error("batch search failed", st);
            goto out;
        }
        row->qps_all = tb > 0 ? (double)nq / tb : 0;
    }
    rc = 0;
out:
    free(labels);
    free(dists);
    free(found);
    free(lat);
    return rc;
}

/* ------------------------------------------------------------------------
 * Reports
 * ------------------------------------------------------------------------ */

static void print_table(FILE *f, const bench_args *a, const bench_run *r)
{
    char mem[32], kind[32];
    fprintf(f, "dataset: %s (%zu x %zu, %s), %zu queries, metric %s, k %llu\n", a->base,
            r->base.n, r->base.dim, cli_dataset_kind(&r->base, kind, sizeof kind), r->queries.n,
            cli_metric_name(a->c.metric), (unsigned long long)a->k);
    hnswc_info info;
    if (hnswc_get_info(r->ix, &info) == HNSWC_OK)
        fprintf(f, "build: %.2f s (%.0f vectors/s) on %u threads, M %u, ef_construction %u, "
                   "memory %s, kernels %s\n",
                r->build_s, r->build_s > 0 ? (double)r->base.n / r->build_s : 0.0, r->threads,
                info.M, info.ef_construction, cli_human_bytes(r->memory, mem, sizeof mem),
                info.simd ? info.simd : "?");
    fprintf(f, "ground truth: %s (%.2f s)\n\n", r->gt_source, r->gt_s);
    char h_recall[32], h_all[32];
    snprintf(h_recall, sizeof h_recall, "recall@%llu", (unsigned long long)a->k);
    snprintf(h_all, sizeof h_all, "QPS %u thr", r->threads);
    fprintf(f, "%8s %10s %12s %12s %10s %10s\n", "ef", h_recall, "QPS 1 thr", h_all, "p50 us",
            "p99 us");
    for (size_t e = 0; e < a->n_efs; e++) {
        const bench_row *w = &r->rows[e];
        fprintf(f, "%8llu %10.4f %12.0f %12.0f %10.1f %10.1f\n", (unsigned long long)w->ef,
                w->recall, w->qps1, w->qps_all, w->p50_us, w->p99_us);
    }
}

/* Writes ', "name": ' and v (cli_json_number, 6 digits). */
static void json_number_field(FILE *f, const char *name, double v)
{
    fprintf(f, ", \"%s\": ", name);
    cli_json_number(f, v, 6);
}

static void print_json(FILE *f, const bench_args *a, const bench_run *r)
{
    hnswc_info info;
    memset(&info, 0, sizeof info);
    hnswc_get_info(r->ix, &info);
    fprintf(f, "{\n  \"schema\": \"hnswc-bench/1\",\n  \"hnswc_version\": ");
    cli_json_string(f, hnswc_version());
    fprintf(f, ",\n  \"simd\": ");
    cli_json_string(f, hnswc_simd_name());
    fprintf(f, ",\n  \"dataset\": {\"base\": ");
    cli_json_string(f, a->base);
    fprintf(f, ", \"base_dataset\": ");
    cli_json_string(f, r->base_hdf5 ? a->base_ds : NULL);
    fprintf(f, ", \"queries\": ");
    cli_json_string(f, a->queries);
    fprintf(f, ", \"queries_dataset\": ");
    cli_json_string(f, r->queries_hdf5 ? a->queries_ds : NULL);
    fprintf(f, ",\n              \"n\": %zu, \"nq\": %zu, \"dim\": %zu, \"source_type\": \"%s\", "
               "\"metric\": \"%s\"},\n",
            r->base.n, r->queries.n, r->base.dim,
            source_type_name(r->base.source), cli_metric_name(a->c.metric));
    fprintf(f, "  \"params\": {\"M\": %u, \"ef_construction\": %u, \"k\": %llu, \"threads\": %u, "
               "\"seed\": %llu},\n",
            info.M, info.ef_construction, (unsigned long long)a->k, r->threads,
            (unsigned long long)info.seed);
    fprintf(f, "  \"build\": {\"seconds\": ");
    cli_json_number(f, r->build_s, 6);
    json_number_field(f, "vectors_per_second",
                      r->build_s > 0 ? (double)r->base.n / r->build_s : 0.0);
    fprintf(f, ", \"memory_bytes\": %llu},\n", (unsigned long long)r->memory);
    fprintf(f, "  \"ground_truth\": {\"source\": \"%s\", \"seconds\": ", r->gt_source);
    cli_json_number(f, r->gt_s, 6);
    fprintf(f, ", \"cache_file\": ");
    cli_json_string(f, r->gt_file[0] ? r->gt_file : NULL);
    fprintf(f, "},\n  \"results\": [");
    for (size_t e = 0; e < a->n_efs; e++) {
        const bench_row *w = &r->rows[e];
        fprintf(f, "%s\n    {\"ef\": %llu", e ? "," : "", (unsigned long long)w->ef);
        json_number_field(f, "recall", w->recall);
        json_number_field(f, "recall_ties", w->recall_ties);
        json_number_field(f, "qps_1thread", w->qps1);
        json_number_field(f, "qps_all_threads", w->qps_all);
        json_number_field(f, "latency_p50_us", w->p50_us);
        json_number_field(f, "latency_p99_us", w->p99_us);
        fputc('}', f);
    }
    fprintf(f, "\n  ]\n}\n");
}

static int write_json(const bench_args *a, const bench_run *r)
{
    if (strcmp(a->json, "-") == 0) {
        print_json(stdout, a, r);
        return fflush(stdout) == 0 ? 0 : (cli_set_error("cannot write to standard output"), -1);
    }
    FILE *f = fopen(a->json, "w");
    if (f == NULL) {
        cli_set_error("%s: %s", a->json, strerror(errno));
        return -1;
    }
    print_json(f, a, r);
    int ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        cli_set_error("%s: write error", a->json);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * hnswc bench
 * ------------------------------------------------------------------------ */

int cmd_bench(int argc, char **argv)
{
    const char *cmd = "bench";
    bench_args a;
    int done = parse_args(argc, argv, &a);
    if (done != CLI_GO_ON)
        return done;

    /* Without QUERIES the base must be an HDF5 file, which holds both: a
     * usage error, but one that needs the base's format to see. */
    input_format bf;
    if (a.queries == NULL && dataset_detect(a.base, &bf) == 0 && bf != FMT_HDF5) {
        cli_set_error("missing the QUERIES file (--queries); only an HDF5 file holds both");
        free(a.efs);
        return cli_usage_fail(cmd);
    }

    int rc = CLI_EXIT_RUNTIME;
    bench_run r;
    memset(&r, 0, sizeof r);
    r.threads = a.c.threads ? (unsigned)a.c.threads : cli_num_cpus();
    if (load_data(&a, &r) != 0)
        goto out;
    if (ground_truth_step(&a, &r) != 0)
        goto out;

    hnswc_options o;
    cli_index_options(&a.c, &r.base, &o);
    if (cli_build_index(&r.base, &o, (unsigned)a.c.threads, !a.c.quiet, &r.ix, &r.build_s) != 0)
        goto out;
    hnswc_info info;
    hnswc_status st = hnswc_get_info(r.ix, &info);
    if (st != HNSWC_OK) {
        cli_set_lib_error("cannot read the index parameters", st);
        goto out;
    }
    r.memory = info.memory_bytes;
    if (a.save != NULL && cli_save_index(r.ix, a.save) != 0)
        goto out;
    if (sweep(&a, &r) != 0)
        goto out;

    int json_stdout = a.json != NULL && strcmp(a.json, "-") == 0;
    if (!a.c.quiet) {
        print_table(json_stdout ? stderr : stdout, &a, &r);
        fflush(stdout);
    }
    if (a.json != NULL && write_json(&a, &r) != 0)
        goto out;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_set_error("cannot write to standard output");
        goto out;
    }
    rc = CLI_EXIT_OK;
out:
    if (rc != CLI_EXIT_OK)
        cli_fail(cmd);
    free(a.efs);
    free(r.rows);
    gt_free(&r.gt);
    hnswc_free(r.ix);
    dataset_free(&r.base);
    dataset_free(&r.queries);
    return rc;
}
