/*
 * cmd_build.c -- "hnswc build": vectors from a file into a saved index.
 * Also the index loading and building helpers the other commands share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "progress.h"
#include "errors.h"
#include "output.h"
#include "platform.h"

/* ------------------------------------------------------------------------
 * Shared helpers
 * ------------------------------------------------------------------------ */

/* Records "<path>: <what>: <library message>" if st is a failure. */
static int check_file_status(hnswc_status st, const char *path, const char *what)
{
    if (st == HNSWC_OK)
        return 0;
    char buf[600];
    snprintf(buf, sizeof buf, "%s: %s", path, what);
    cli_set_lib_error(buf, st);
    return -1;
}

int cli_load_index(const char *path, int hnswlib_metric, unsigned open_flags, hnswc_index **out)
{
    const char *what = "cannot load the index";
    hnswc_file_info fi;
    hnswc_status st = hnswc_probe_file(path, &fi);
    if (st != HNSWC_OK)
        return check_file_status(st, path, what);
    if (fi.kind == HNSWC_FILE_HNSWLIB && hnswlib_metric < 0) {
        /* hnswlib files do not record their metric: guessing one would
         * give wrong distances without a word. M 0: its exact BFIndex. */
        char shape[40] = "";
        if (fi.M)
            snprintf(shape, sizeof shape, ", M %u", fi.M);
        cli_set_error("%s: %s: an hnswlib %s file (dimension %u, %llu elements%s), which "
                      "does not record its metric: give it with --hnswlib l2, --hnswlib ip or "
                      "--hnswlib cosine",
                      path, what, fi.M ? "index" : "BFIndex (exact index)", fi.dim,
                      (unsigned long long)fi.count, shape);
        return -1;
    }
    if (fi.kind == HNSWC_FILE_HNSWLIB && open_flags) {
        cli_set_error("%s: %s: an hnswlib file, which cannot be mapped (--mmap maps hnswc's own "
                      "files): drop --mmap, or convert it once with 'hnswc build'", path, what);
        return -1;
    }
    if (fi.kind == HNSWC_FILE_HNSWC || hnswlib_metric < 0) {
        if (check_file_status(hnswc_open(path, open_flags, out), path, what) != 0)
            return -1;
        hnswc_info info;
        if (hnswlib_metric >= 0 && hnswc_get_info(*out, &info) == HNSWC_OK &&
            (int)info.metric != hnswlib_metric) {
            /* --hnswlib on an hnswc file is harmless, unless its metric
             * says the user expects other distances than the file's. */
            cli_set_error("%s: an hnswc index of metric %s, not an hnswlib file of metric %s "
                          "(hnswc files record their metric: drop --hnswlib)",
                          path, cli_metric_name(info.metric),
                          cli_metric_name((hnswc_metric)hnswlib_metric));
            hnswc_free(*out);
            *out = NULL;
            return -1;
        }
        return 0;
    }
    return check_file_status(hnswc_load_hnswlib(path, (hnswc_metric)hnswlib_metric, out), path,
                             what);
}

int cli_resolve_base(const char *path, input_format *format, cli_common_args *c)
{
    if (*format == FMT_AUTO && dataset_detect(path, format) != 0)
        return -1;
    if (!c->metric_given && *format == FMT_HDF5) {
        hnswc_metric m;
        if (hdf5_read_metric(path, &m) > 0)
            c->metric = m;
    }
    return 0;
}

void cli_index_options(const cli_common_args *c, const dataset *d, hnswc_options *o)
{
    memset(o, 0, sizeof *o);
    o->dim = (uint32_t)d->dim;
    o->capacity = d->n;
    o->metric = c->metric;
    o->M = (uint32_t)c->M;
    o->ef_construction = (uint32_t)c->ef_construction;
    o->seed = c->seed;
    o->storage = c->storage;
}

int cli_save_index(const hnswc_index *ix, const char *path)
{
    return check_file_status(hnswc_save(ix, path), path, "cannot save the index");
}

const char *cli_dataset_kind(const dataset *d, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s", source_type_name(d->source),
             input_format_name(d->format));
    return buf;
}

int cli_build_index(const dataset *d, const hnswc_options *options, unsigned threads,
                    int show_progress, hnswc_index **out, double *seconds)
{
    hnswc_index *ix = NULL;
    hnswc_status st = hnswc_create(options, &ix);
    if (st != HNSWC_OK) {
        cli_set_lib_error("cannot create the index", st);
        return -1;
    }
    st = hnswc_reserve(ix, d->n);
    if (st != HNSWC_OK) {
        cli_set_lib_error("cannot reserve room for the vectors", st);
        hnswc_free(ix);
        return -1;
    }

    /* Adding in chunks lets the progress display move; 1% per chunk keeps
     * the cost of starting the worker threads again negligible. */
    size_t chunk = d->n / 100;
    if (chunk < 512)
        chunk = 512;
    if (chunk > d->n)
        chunk = d->n;
    uint64_t *labels = malloc(chunk * sizeof *labels);
    if (labels == NULL) {
        cli_set_error("out of memory");
        hnswc_free(ix);
        return -1;
    }

    progress pr;
    progress_start(&pr, "build", "vectors", d->n, show_progress);
    double t0 = cli_now();
    for (size_t i = 0; i < d->n; i += chunk) {
        size_t c = d->n - i < chunk ? d->n - i : chunk;
        for (size_t j = 0; j < c; j++)
            labels[j] = (uint64_t)(i + j);
        st = hnswc_add_batch(ix, d->data + i * d->dim, labels, c, 0, threads, NULL);
        if (st != HNSWC_OK) {
            progress_abort(&pr);
            cli_set_lib_error("cannot add the vectors", st);
            free(labels);
            hnswc_free(ix);
            return -1;
        }
        progress_update(&pr, i + c);
    }
    /* The batches relaid the index out each time it doubled (hnswc_add_batch),
     * so up to half of it is still in insertion order: a build ends with
     * the whole of it in order. Counted in the build time. */
    hnswc_info info;
    if (hnswc_get_info(ix, &info) == HNSWC_OK && info.relayout == HNSWC_RELAYOUT_AUTO &&
        (st = hnswc_relayout(ix)) != HNSWC_OK) {
        progress_abort(&pr);
        cli_set_lib_error("cannot relay out the index", st);
        free(labels);
        hnswc_free(ix);
        return -1;
    }
    *seconds = cli_now() - t0;
    progress_finish(&pr);
    free(labels);
    *out = ix;
    return 0;
}

/* ------------------------------------------------------------------------
 * hnswc build
 * ------------------------------------------------------------------------ */

static const char usage_text[] =
    "usage: hnswc build [options] INPUT -o INDEX\n"
    "\n"
    "Builds an HNSW index of the vectors in INPUT (with --exact, an exact\n"
    "index) and saves it to INDEX. Vector i of the file (counting from 0)\n"
    "gets label i.\n"
    "\n"
    "INPUT formats (recognised by name, else by contents; optionally gzipped):\n"
    "  *.fvecs, *.bvecs    TEXMEX vectors, float32 / uint8\n"
    "  *.npy               NumPy array of shape (n, dim), float32, float64 or uint8\n"
    "  *.hdf5, *.h5        ann-benchmarks file: its 'train' dataset (see --dataset)\n"
    "  *-ubyte             MNIST / Fashion-MNIST idx images (n x rows*cols)\n"
    "  *.txt, *.csv, -     text, one vector per line ('-': standard input)\n"
    "uint8 values become the floats 0..255 exactly; float64 values are rounded to\n"
    "float32 (a value beyond float32's range is an error). HDF5 and gzipped files\n"
    "need a tool built with HDF5 and zlib ('hnswc --version' says).\n"
    "\n"
    "options:\n"
    "  -o, --output FILE      the index file to write (required)\n"
    "  --exact                an exact index instead: every search compares the query\n"
    "                         with every vector (ground truth, small collections);\n"
    "                         no graph, so -M, --ef-construction, --ef-search and\n"
    "                         --seed do not apply\n"
    "  --metric METRIC        l2 (squared Euclidean), ip (1 - dot) or cosine;\n"
    "                         default: an HDF5 file's 'distance' attribute, else l2\n"
    "  -M N                   links per node, 2..2048 (default 16)\n"
    "  --ef-construction N    beam width while building (default 200)\n"
    "  --ef-search N          default beam width of searches, kept in the file (default 10)\n"
    "  --threads N            threads, 0 = all cores (default 0)\n"
    "  --seed N               seed of the level generator (default 100)\n"
    "  --storage S            what searches walk on: f32 vectors (default), sq8 (one-byte\n"
    "                         codes with an exact f32 re-rank: faster) or sq8-only\n"
    "                         (codes only, smallest memory: APPROXIMATE distances)\n"
    "  --dataset NAME         dataset of an HDF5 file (default train)\n"
    "  --input-format F       auto, fvecs, bvecs, npy, hdf5, idx or text (default auto)\n"
    "  -q, --quiet            no progress display and no summary\n"
    "  -h, --help             this help\n"
    "\n"
    "Progress goes to stderr: a bar with the rate and ETA on a terminal, else a\n"
    "line every 10%. The summary goes to stdout.\n";

/* Own options; the shared ones (args.h) are parsed by cli_parse_command. */
enum { O_OUTPUT, O_EFS, O_EXACT };

static const cli_opt options[] = {
    CLI_OPT_HELP,
    {"output", 'o', 1, O_OUTPUT},
    CLI_OPT_METRIC,
    CLI_OPT_M,
    CLI_OPT_EF_CONSTRUCTION,
    {"ef-search", 0, 1, O_EFS},
    {"exact", 0, 0, O_EXACT},
    CLI_OPT_THREADS,
    CLI_OPT_SEED,
    CLI_OPT_STORAGE,
    CLI_OPT_DATASET,
    CLI_OPT_INPUT_FORMAT,
    CLI_OPT_QUIET,
    CLI_OPT_END,
};

typedef struct build_args {
    const char *input, *output;
    uint64_t ef_search; /* 0 = the library's default */
    int exact;          /* --exact: HNSWC_KIND_FLAT */
} build_args;

/* cli_own_option_fn of "build". */
static int build_option(void *ctx, int id, const char *val)
{
    build_args *b = ctx;
    switch (id) {
    case CLI_POSITIONAL: {
        const char **const slots[] = {&b->input};
        return cli_take_positional(val, slots, 1, " (the index file goes after -o)");
    }
    case O_OUTPUT: b->output = val; return 0;
    case O_EFS: return cli_parse_u64("--ef-search", val, 1, 1u << 31, &b->ef_search);
    case O_EXACT: b->exact = 1; return 0;
    }
    return 0;
}

int cmd_build(int argc, char **argv)
{
    const char *cmd = "build";
    build_args b = {NULL, NULL, 0, 0};
    cli_common_args c;
    cli_common_init(&c, "train");
    int done = cli_parse_command(cmd, usage_text, argc, argv, options, &c, build_option, &b);
    if (done != CLI_GO_ON)
        return done;
    const char *input = b.input, *output = b.output;
    if (input == NULL) {
        cli_set_error("missing the INPUT file");
        return cli_usage_fail(cmd);
    }
    if (output == NULL) {
        cli_set_error("missing -o INDEX, the index file to write");
        return cli_usage_fail(cmd);
    }
    if (b.exact && (c.M || c.ef_construction || b.ef_search || c.seed)) {
        cli_set_error("--exact builds an index without a graph: %s does not apply",
                      c.M ? "-M" : c.ef_construction ? "--ef-construction"
                                 : b.ef_search       ? "--ef-search" : "--seed");
        return cli_usage_fail(cmd);
    }

    if (cli_resolve_base(input, &c.read.format, &c) != 0)
        return cli_fail(cmd);
    dataset d;
    if (dataset_read(input, &c.read, &d) != 0)
        return cli_fail(cmd);

    hnswc_options o;
    cli_index_options(&c, &d, &o);
    o.ef_search = (uint32_t)b.ef_search;
    o.kind = b.exact ? HNSWC_KIND_FLAT : HNSWC_KIND_HNSW;
    hnswc_index *ix = NULL;
    double secs = 0;
    if (cli_build_index(&d, &o, (unsigned)c.threads, !c.quiet, &ix, &secs) != 0) {
        dataset_free(&d);
        return cli_fail(cmd);
    }
    if (cli_save_index(ix, output) != 0) {
        hnswc_free(ix);
        dataset_free(&d);
        return cli_fail(cmd);
    }
    if (!c.quiet) {
        hnswc_info info;
        char kind[32], mem[32];
        char shape[64] = "exact index";
        if (hnswc_get_info(ix, &info) == HNSWC_OK) {
            if (info.kind == HNSWC_KIND_HNSW)
                snprintf(shape, sizeof shape, "M %u, ef_construction %u", info.M,
                         info.ef_construction);
            printf("built %s: %zu vectors of dimension %zu (%s), metric %s, %s, in %.2f s "
                   "(%.0f vectors/s), index memory %s\n",
                   output, d.n, d.dim, cli_dataset_kind(&d, kind, sizeof kind),
                   cli_metric_name(info.metric), shape, secs, secs > 0 ? (double)d.n / secs : 0.0,
                   cli_human_bytes(info.memory_bytes, mem, sizeof mem));
        }
    }
    hnswc_free(ix);
    dataset_free(&d);
    if (fflush(stdout) != 0) {
        cli_set_error("cannot write to standard output");
        return cli_fail(cmd);
    }
    return CLI_EXIT_OK;
}
