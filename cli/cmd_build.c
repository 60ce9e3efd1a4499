/*
 * cmd_build.c -- "hnswc build": vectors from a file into a saved index.
 * Also the index loading and building helpers the other commands share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "progress.h"
#include "util.h"

/* ------------------------------------------------------------------------
 * Shared helpers
 * ------------------------------------------------------------------------ */

int cli_load_index(const char *path, int hnswlib_metric, hnswc_index **out)
{
    hnswc_status st = hnswlib_metric >= 0
                          ? hnswc_load_hnswlib(path, (hnswc_metric)hnswlib_metric, out)
                          : hnswc_load(path, out);
    if (st != HNSWC_OK) {
        char what[600];
        snprintf(what, sizeof what, "%s: cannot load the index", path);
        cli_set_lib_error(what, st);
        return -1;
    }
    return 0;
}

const char *cli_dataset_kind(const dataset *d, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s", d->source == SRC_UINT8 ? "uint8" : "float32",
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
    "Builds an HNSW index of the vectors in INPUT and saves it to INDEX.\n"
    "Vector i of the file (counting from 0) gets label i.\n"
    "\n"
    "INPUT formats (recognised by name, else by contents; optionally gzipped):\n"
    "  *.fvecs, *.bvecs    TEXMEX vectors, float32 / uint8\n"
    "  *.npy               NumPy array of shape (n, dim), float32 or uint8\n"
    "  *.hdf5, *.h5        ann-benchmarks file: its 'train' dataset (see --dataset)\n"
    "  *-ubyte             MNIST / Fashion-MNIST idx images (n x rows*cols)\n"
    "  *.txt, *.csv, -     text, one vector per line ('-': standard input)\n"
    "uint8 values become the floats 0..255 exactly.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE      the index file to write (required)\n"
    "  --metric METRIC        l2 (squared Euclidean), ip (1 - dot) or cosine;\n"
    "                         default: an HDF5 file's 'distance' attribute, else l2\n"
    "  -M N                   links per node, 2..2048 (default 16)\n"
    "  --ef-construction N    beam width while building (default 200)\n"
    "  --ef-search N          default beam width of searches, kept in the file (default 10)\n"
    "  --threads N            threads, 0 = all cores (default 0)\n"
    "  --seed N               seed of the level generator (default 100)\n"
    "  --dataset NAME         dataset of an HDF5 file (default train)\n"
    "  --input-format F       auto, fvecs, bvecs, npy, hdf5, idx or text (default auto)\n"
    "  -q, --quiet            no progress display and no summary\n"
    "  -h, --help             this help\n"
    "\n"
    "Progress goes to stderr: a bar with the rate and ETA on a terminal, else a\n"
    "line every 10%. The summary goes to stdout.\n";

enum {
    O_HELP,
    O_OUTPUT,
    O_METRIC,
    O_M,
    O_EFC,
    O_EFS,
    O_THREADS,
    O_SEED,
    O_DATASET,
    O_INFMT,
    O_QUIET
};

static const cli_opt options[] = {
    {"help", 'h', 0, O_HELP},
    {"output", 'o', 1, O_OUTPUT},
    {"metric", 0, 1, O_METRIC},
    {"M", 'M', 1, O_M},
    {"ef-construction", 0, 1, O_EFC},
    {"ef-search", 0, 1, O_EFS},
    {"threads", 0, 1, O_THREADS},
    {"seed", 0, 1, O_SEED},
    {"dataset", 0, 1, O_DATASET},
    {"input-format", 0, 1, O_INFMT},
    {"quiet", 'q', 0, O_QUIET},
    {NULL, 0, 0, 0},
};

int cmd_build(int argc, char **argv)
{
    const char *cmd = "build";
    const char *input = NULL, *output = NULL;
    hnswc_options o;
    memset(&o, 0, sizeof o);
    int metric_given = 0, quiet = 0;
    uint64_t v, threads = 0;
    read_options ro = {FMT_AUTO, "train"};

    cli_parser p;
    cli_parser_init(&p, argc, argv);
    const char *val;
    int id;
    while ((id = cli_next(&p, options, &val)) != CLI_END) {
        int bad = 0;
        switch (id) {
        case CLI_BAD: return cli_usage_fail(cmd);
        case CLI_POSITIONAL:
            if (input != NULL) {
                cli_set_error("unexpected argument '%s' (the index file goes after -o)", val);
                return cli_usage_fail(cmd);
            }
            input = val;
            break;
        case O_HELP: fputs(usage_text, stdout); return CLI_EXIT_OK;
        case O_OUTPUT: output = val; break;
        case O_METRIC:
            bad = cli_parse_metric(val, &o.metric);
            metric_given = 1;
            break;
        case O_M:
            bad = cli_parse_u64("-M", val, 2, 2048, &v);
            o.M = (uint32_t)v;
            break;
        case O_EFC:
            bad = cli_parse_u64("--ef-construction", val, 1, 1u << 31, &v);
            o.ef_construction = (uint32_t)v;
            break;
        case O_EFS:
            bad = cli_parse_u64("--ef-search", val, 1, 1u << 31, &v);
            o.ef_search = (uint32_t)v;
            break;
        case O_THREADS: bad = cli_parse_u64("--threads", val, 0, 4096, &threads); break;
        case O_SEED: bad = cli_parse_u64("--seed", val, 0, UINT64_MAX, &o.seed); break;
        case O_DATASET: ro.hdf5_name = val; break;
        case O_INFMT: bad = input_format_parse(val, &ro.format); break;
        case O_QUIET: quiet = 1; break;
        }
        if (bad)
            return cli_usage_fail(cmd);
    }
    if (input == NULL) {
        cli_set_error("missing the INPUT file");
        return cli_usage_fail(cmd);
    }
    if (output == NULL) {
        cli_set_error("missing -o INDEX, the index file to write");
        return cli_usage_fail(cmd);
    }

    input_format fmt = ro.format;
    if (fmt == FMT_AUTO && dataset_detect(input, &fmt) != 0)
        return cli_fail(cmd);
    if (!metric_given && fmt == FMT_HDF5) {
        hnswc_metric m;
        if (hdf5_read_metric(input, &m) > 0)
            o.metric = m;
    }
    ro.format = fmt;
    dataset d;
    if (dataset_read(input, &ro, &d) != 0)
        return cli_fail(cmd);

    o.dim = (uint32_t)d.dim;
    o.capacity = d.n;
    hnswc_index *ix = NULL;
    double secs = 0;
    if (cli_build_index(&d, &o, (unsigned)threads, !quiet, &ix, &secs) != 0) {
        dataset_free(&d);
        return cli_fail(cmd);
    }
    hnswc_status st = hnswc_save(ix, output);
    if (st != HNSWC_OK) {
        char what[600];
        snprintf(what, sizeof what, "%s: cannot save the index", output);
        cli_set_lib_error(what, st);
        hnswc_free(ix);
        dataset_free(&d);
        return cli_fail(cmd);
    }
    if (!quiet) {
        hnswc_info info;
        char kind[32], mem[32];
        if (hnswc_get_info(ix, &info) == HNSWC_OK)
            printf("built %s: %zu vectors of dimension %zu (%s), metric %s, M %u, "
                   "ef_construction %u, in %.2f s (%.0f vectors/s), index memory %s\n",
                   output, d.n, d.dim, cli_dataset_kind(&d, kind, sizeof kind),
                   cli_metric_name(info.metric), info.M, info.ef_construction, secs,
                   secs > 0 ? (double)d.n / secs : 0.0,
                   cli_human_bytes(info.memory_bytes, mem, sizeof mem));
    }
    hnswc_free(ix);
    dataset_free(&d);
    if (fflush(stdout) != 0) {
        cli_set_error("cannot write to standard output");
        return cli_fail(cmd);
    }
    return CLI_EXIT_OK;
}
