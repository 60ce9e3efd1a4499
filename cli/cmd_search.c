/*
 * cmd_search.c -- "hnswc search": k nearest neighbours of query vectors.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "errors.h"
#include "output.h"

/* ------------------------------------------------------------------------
 * The allowed-labels filter: read here, a library hnswc_labelset to search
 * ------------------------------------------------------------------------ */

/*
 * Reads one label per line (blank lines and '#' comments are skipped) into
 * *labels_out (malloc'd, NULL when there are none) and makes *set the set of
 * them (hnswc_labelset_init sorts the array in place).
 */
static int label_set_read(const char *path, uint64_t **labels_out, hnswc_labelset *set)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        cli_set_error("%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t linecap = 0, lineno = 0, cap = 0;
    uint64_t *labels = NULL;
    size_t n = 0;
    ssize_t len;
    errno = 0;
    while ((len = getline(&line, &linecap, f)) >= 0) {
        lineno++;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        size_t tl = 0;
        while (p[tl] != '\0' && !isspace((unsigned char)p[tl]))
            tl++;
        if (tl == 0 || p[0] == '#')
            continue;
        char *rest = p + tl;
        while (isspace((unsigned char)*rest))
            rest++;
        p[tl] = '\0';
        uint64_t v;
        if (*rest != '\0' || cli_parse_u64("label", p, 0, UINT64_MAX, &v) != 0) {
            cli_set_error("%s: line %zu: expected one label (a whole number) per line", path,
                          lineno);
            goto fail;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 256;
            uint64_t *nl = nc < SIZE_MAX / sizeof *nl ? realloc(labels, nc * sizeof *nl) : NULL;
            if (nl == NULL) {
                cli_set_error("%s: out of memory", path);
                goto fail;
            }
            labels = nl;
            cap = nc;
        }
        labels[n++] = v;
    }
    if (ferror(f)) {
        cli_set_error("%s: %s", path, strerror(errno ? errno : EIO));
        goto fail;
    }
    free(line);
    fclose(f);
    hnswc_status st = hnswc_labelset_init(set, labels, n);
    if (st != HNSWC_OK) { /* only for NULL arguments: an internal error */
        cli_set_lib_error(path, st);
        free(labels);
        return -1;
    }
    *labels_out = labels;
    return 0;
fail:
    free(line);
    free(labels);
    fclose(f);
    return -1;
}

/* ------------------------------------------------------------------------
 * hnswc search
 * ------------------------------------------------------------------------ */

static const char usage_text[] =
    "usage: hnswc search [options] INDEX [QUERIES]\n"
    "\n"
    "Finds the k nearest neighbours in INDEX of each vector of QUERIES.\n"
    "QUERIES takes every format of 'hnswc build' (an HDF5 file: its 'test'\n"
    "dataset). Without QUERIES, or with '-', queries are read from standard\n"
    "input as text: one vector per line, numbers separated by blanks or commas.\n"
    "\n"
    "options:\n"
    "  -k, --k N              neighbours per query (default 10)\n"
    "  --ef N                 beam width (default: the index's; never below k)\n"
    "  --filter FILE          only return labels listed in FILE, one per line\n"
    "  --format F             text, csv or json (default text)\n"
    "  --threads N            threads, 0 = all cores (default 0)\n"
    "  --dataset NAME         dataset of an HDF5 query file (default test)\n"
    "  --input-format F       auto, fvecs, bvecs, npy, hdf5, idx or text (default auto)\n"
    "  --hnswlib METRIC       INDEX is an hnswlib file (saveIndex) of metric l2, ip\n"
    "                         or cosine\n"
    "  -h, --help             this help\n"
    "\n"
    "Output (query counts from 0, rank from 1; fewer than k lines for a query\n"
    "when fewer labels qualify):\n"
    "  text   columns: query rank label distance, after a header line\n"
    "  csv    query,rank,label,distance with a header row\n"
    "  json   {\"k\":K,\"ef\":EF,\"queries\":N,\"results\":[{\"query\":0,\"labels\":[...],\n"
    "          \"distances\":[...]},...]}\n";

/* Own options; the shared ones (args.h) are parsed by cli_parse_command. */
enum { O_K, O_EF, O_FILTER, O_FORMAT };

static const cli_opt options[] = {
    CLI_OPT_HELP,
    {"k", 'k', 1, O_K},
    {"ef", 0, 1, O_EF},
    {"filter", 0, 1, O_FILTER},
    {"format", 0, 1, O_FORMAT},
    CLI_OPT_THREADS,
    CLI_OPT_DATASET,
    CLI_OPT_INPUT_FORMAT,
    CLI_OPT_HNSWLIB,
    CLI_OPT_END,
};

typedef struct search_args {
    const char *index_path, *query_path, *filter_path;
    uint64_t k, ef; /* ef 0: the index's default */
    out_format fmt;
} search_args;

/* cli_own_option_fn of "search". */
static int search_option(void *ctx, int id, const char *val)
{
    search_args *a = ctx;
    switch (id) {
    case CLI_POSITIONAL: {
        const char **const slots[] = {&a->index_path, &a->query_path};
        return cli_take_positional(val, slots, 2, "");
    }
    case O_K: return cli_parse_u64("--k", val, 1, 1000000, &a->k);
    case O_EF: return cli_parse_u64("--ef", val, 1, 1u << 31, &a->ef);
    case O_FILTER: a->filter_path = val; return 0;
    case O_FORMAT: return out_format_parse(val, &a->fmt);
    }
    return 0;
}

int cmd_search(int argc, char **argv)
{
    const char *cmd = "search";
    search_args a = {NULL, NULL, NULL, 10, 0, OUT_TEXT};
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

    int rc = CLI_EXIT_RUNTIME;
    hnswc_index *ix = NULL;
    dataset q = {0};
    uint64_t *allowed = NULL;
    hnswc_labelset filter = {NULL, 0};
    uint64_t *labels = NULL;
    float *dists = NULL;
    size_t *found = NULL;

    if (cli_load_index(index_path, c.hnswlib_metric, &ix) != 0)
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
