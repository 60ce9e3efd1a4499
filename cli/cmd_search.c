/*
 * cmd_search.c -- "hnswc search": k nearest neighbours of query vectors, or
 * with --radius every element within a distance (hnswc_search_range).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "errors.h"
#include "labelfile.h"
#include "output.h"

/* ------------------------------------------------------------------------
 * The allowed-labels filter: read here, a library hnswc_labelset to search
 * ------------------------------------------------------------------------ */

/*
 * Reads the labels of `path` (labelfile.h) into *labels_out (malloc'd, NULL
 * when there are none) and makes *set the set of them
 * (hnswc_labelset_init sorts the array in place).
 */
static int label_set_read(const char *path, uint64_t **labels_out, hnswc_labelset *set)
{
    uint64_t *labels;
    size_t n;
    if (cli_read_label_file(path, &labels, &n) != 0)
        return -1;
    hnswc_status st = hnswc_labelset_init(set, labels, n);
    if (st != HNSWC_OK) { /* only for NULL arguments: an internal error */
        cli_set_lib_error(path, st);
        free(labels);
        return -1;
    }
    *labels_out = labels;
    return 0;
}

/* ------------------------------------------------------------------------
 * hnswc search
 * ------------------------------------------------------------------------ */

static const char usage_text[] =
    "usage: hnswc search [options] INDEX [QUERIES]\n"
    "\n"
    "Finds the k nearest neighbours in INDEX of each vector of QUERIES, or with\n"
    "--radius every element within that distance of it.\n"
    "QUERIES takes every format of 'hnswc build' (an HDF5 file: its 'test'\n"
    "dataset). Without QUERIES, or with '-', queries are read from standard\n"
    "input as text: one vector per line, numbers separated by blanks or commas.\n"
    "\n"
    "options:\n"
    "  -k, --k N              neighbours per query (default 10)\n"
    "  --ef N                 beam width (default: the index's; never below k)\n"
    "  --radius R             every element within distance R instead of the k\n"
    "                         nearest (the index's distance: squared for l2); --ef\n"
    "                         is then the width of the search that finds them\n"
    "  --filter FILE          only return labels listed in FILE, one per line\n"
    "  --format F             text, csv or json (default text)\n"
    "  --threads N            threads, 0 = all cores (default 0)\n"
    "  --dataset NAME         dataset of an HDF5 query file (default test)\n"
    "  --input-format F       auto, fvecs, bvecs, npy, hdf5, idx or text (default auto)\n"
    "  --hnswlib METRIC       INDEX is an hnswlib file (saveIndex) of metric l2, ip\n"
    "                         or cosine\n"
    "  --mmap                 map INDEX instead of reading it: opening costs only its\n"
    "                         metadata, vectors are read where they are as searches\n"
    "                         need them (same results; hnswc files only)\n"
    "  -h, --help             this help\n"
    "\n"
    "Output (query counts from 0, rank from 1; fewer than k lines for a query\n"
    "when fewer labels qualify):\n"
    "  text   columns: query rank label distance, after a header line\n"
    "  csv    query,rank,label,distance with a header row\n"
    "  json   {\"k\":K,\"ef\":EF,\"queries\":N,\"results\":[{\"query\":0,\"labels\":[...],\n"
    "          \"distances\":[...]},...]}\n"
    "         (with --radius, \"radius\":R instead of \"k\":K; each query lists\n"
    "          what lies within R, closest first)\n";

/* Own options; the shared ones (args.h) are parsed by cli_parse_command. */
enum { O_K, O_EF, O_RADIUS, O_FILTER, O_FORMAT, O_MMAP };

static const cli_opt options[] = {
    CLI_OPT_HELP,
    {"k", 'k', 1, O_K},
    {"ef", 0, 1, O_EF},
    {"radius", 0, 1, O_RADIUS},
    {"filter", 0, 1, O_FILTER},
    {"format", 0, 1, O_FORMAT},
    {"mmap", 0, 0, O_MMAP},
    CLI_OPT_THREADS,
    CLI_OPT_DATASET,
    CLI_OPT_INPUT_FORMAT,
    CLI_OPT_HNSWLIB,
    CLI_OPT_END,
};

typedef struct search_args {
    const char *index_path, *query_path, *filter_path;
    uint64_t k, ef; /* ef 0: the index's default */
    int k_given;
    double radius;  /* < 0: a k-NN search */
    out_format fmt;
    unsigned open_flags; /* --mmap: HNSWC_OPEN_MMAP */
} search_args;

/* --radius: a finite distance >= 0. */
static int parse_radius(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v) || v < 0 || v > 3.4e38) {
        cli_set_error("--radius: expected a non-negative number, got '%s'", s);
        return -1;
    }
    *out = v;
    return 0;
}

/* cli_own_option_fn of "search". */
static int search_option(void *ctx, int id, const char *val)
{
    search_args *a = ctx;
    switch (id) {
    case CLI_POSITIONAL: {
        const char **const slots[] = {&a->index_path, &a->query_path};
        return cli_take_positional(val, slots, 2, "");
    }
    case O_K: a->k_given = 1; return cli_parse_u64("--k", val, 1, 1000000, &a->k);
    case O_RADIUS: return parse_radius(val, &a->radius);
    case O_EF: return cli_parse_u64("--ef", val, 1, 1u << 31, &a->ef);
    case O_FILTER: a->filter_path = val; return 0;
    case O_FORMAT: return out_format_parse(val, &a->fmt);
    case O_MMAP: a->open_flags = HNSWC_OPEN_MMAP; return 0;
    }
    return 0;
}

/*
 * --radius: every element within `radius` of each query, one query after
 * another (hnswc_search_range; one result buffer reused for all), printed as
 * it comes. Returns the exit status, an error recorded on failure.
 */
static int range_search(const hnswc_index *ix, const dataset *q, double radius, size_t ef,
                        hnswc_labelset *filter, out_format fmt)
{
    hnswc_range_result res = {0};
    range_print_begin(stdout, fmt, q->n, radius, ef);
    for (size_t i = 0; i < q->n; i++) {
        hnswc_status st = hnswc_search_range(ix, q->data + i * q->dim, (float)radius, ef,
                                             filter ? hnswc_labelset_filter : NULL, filter, &res);
        if (st != HNSWC_OK) {
            hnswc_range_result_free(&res);
            cli_set_lib_error("range search failed", st);
            return CLI_EXIT_RUNTIME;
        }
        range_print_query(stdout, fmt, i, res.labels, res.distances, res.count);
    }
    range_print_end(stdout, fmt, q->n);
    hnswc_range_result_free(&res);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_set_error("cannot write the results: %s", strerror(errno));
        return CLI_EXIT_RUNTIME;
    }
    return CLI_EXIT_OK;
}

int cmd_search(int argc, char **argv)
{
    const char *cmd = "search";
    search_args a = {NULL, NULL, NULL, 10, 0, 0, -1.0, OUT_TEXT, 0};
    cli_common_args c;
    cli_common_init(&c, "test");
    int done = cli_parse_command(cmd, usage_text, argc, argv, options, &c, search_option, &a);
    if (done != CLI_GO_ON)
        return done;
    const char *index_path = a.index_path, *query_path = a.query_path;
    const char *filter_path = a.filter_path;
    uint64_t k = a.k, ef = a.ef;
    if (index_path == NULL) {
        cli_set_error("missing the INDEX file");
        return cli_usage_fail(cmd);
    }
    if (query_path == NULL)
        query_path = "-";
    if (a.radius >= 0 && a.k_given) {
        cli_set_error("give -k (the k nearest) or --radius (all within a distance), not both");
        return cli_usage_fail(cmd);
    }

    int rc = CLI_EXIT_RUNTIME;
    hnswc_index *ix = NULL;
    dataset q = {0};
    uint64_t *allowed = NULL;
    hnswc_labelset filter = {NULL, 0};
    uint64_t *labels = NULL;
    float *dists = NULL;
    size_t *found = NULL;

    if (cli_load_index(index_path, c.hnswlib_metric, a.open_flags, &ix) != 0)
        goto out;
    hnswc_info info;
    hnswc_status st = hnswc_get_info(ix, &info);
    if (st != HNSWC_OK) {
        cli_set_lib_error("cannot read the index parameters", st);
        goto out;
    }
    if (dataset_read(query_path, &c.read, &q) != 0)
        goto out;
    if (q.dim != info.dim) {
        cli_set_error("the queries have dimension %zu but the index %s has dimension %u", q.dim,
                      index_path, info.dim);
        goto out;
    }
    if (filter_path != NULL && label_set_read(filter_path, &allowed, &filter) != 0)
        goto out;

    if (a.radius >= 0) {
        rc = range_search(ix, &q, a.radius, (size_t)ef, filter_path != NULL ? &filter : NULL,
                          a.fmt);
        goto out;
    }
    if (q.n > SIZE_MAX / sizeof(uint64_t) / k) {
        cli_set_error("too many queries for k = %llu", (unsigned long long)k);
        goto out;
    }
    labels = malloc(q.n * k * sizeof *labels);
    dists = malloc(q.n * k * sizeof *dists);
    found = malloc(q.n * sizeof *found);
    if (labels == NULL || dists == NULL || found == NULL) {
        cli_set_error("out of memory for %zu x %llu results", q.n, (unsigned long long)k);
        goto out;
    }
    st = hnswc_search_batch(ix, q.data, q.n, (size_t)k, (size_t)ef,
                            filter_path != NULL ? hnswc_labelset_filter : NULL, &filter,
                            (unsigned)c.threads, labels, dists, found);
    if (st != HNSWC_OK) {
        cli_set_lib_error("search failed", st);
        goto out;
    }
    print_results(stdout, a.fmt, q.n, (size_t)k, (size_t)ef, labels, dists, found);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_set_error("cannot write the results: %s", strerror(errno));
        goto out;
    }
    rc = CLI_EXIT_OK;
out:
    if (rc != CLI_EXIT_OK)
        cli_fail(cmd);
    free(labels);
    free(dists);
    free(found);
    free(allowed);
    dataset_free(&q);
    hnswc_free(ix);
    return rc;
}
