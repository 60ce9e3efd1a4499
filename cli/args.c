/*
 * args.c -- the shared command-line flags and the option loop of every
 * subcommand. See args.h for the contracts.
 */
#include "args.h"

#include <stdio.h>
#include <string.h>

void cli_common_init(cli_common_args *c, const char *hdf5_name)
{
    memset(c, 0, sizeof *c);
    c->metric = HNSWC_METRIC_L2;
    c->read.format = FMT_AUTO;
    c->read.hdf5_name = hdf5_name;
    c->hnswlib_metric = -1;
}

/*
 * Applies shared flag `id` (every id from CLI_O_SHARED on). The ranges are
 * the library's (include/hnswc.h); --threads stops at 4096 so a typo cannot
 * ask for millions of threads. Returns 0, or -1 with the message recorded.
 */
static int shared_option(cli_common_args *c, int id, const char *val)
{
    hnswc_metric m;
    switch (id) {
    case CLI_O_QUIET: c->quiet = 1; return 0;
    case CLI_O_THREADS: return cli_parse_u64("--threads", val, 0, 4096, &c->threads);
    case CLI_O_METRIC:
        c->metric_given = 1;
        return cli_parse_metric(val, &c->metric);
    case CLI_O_M: return cli_parse_u64("-M", val, 2, 2048, &c->M);
    case CLI_O_EF_CONSTRUCTION:
        return cli_parse_u64("--ef-construction", val, 1, 1u << 31, &c->ef_construction);
    case CLI_O_SEED: return cli_parse_u64("--seed", val, 0, UINT64_MAX, &c->seed);
    case CLI_O_STORAGE:
        if (strcmp(val, "f32") == 0) {
            c->storage = HNSWC_STORAGE_F32;
        } else if (strcmp(val, "sq8") == 0) {
            c->storage = HNSWC_STORAGE_SQ8;
        } else {
            cli_set_error("--storage: expected f32 or sq8, got '%s'", val);
            return -1;
        }
        return 0;
    case CLI_O_DATASET: c->read.hdf5_name = val; return 0;
    case CLI_O_INPUT_FORMAT: return input_format_parse(val, &c->read.format);
    case CLI_O_HNSWLIB:
        if (cli_parse_metric(val, &m) != 0)
            return -1;
        c->hnswlib_metric = (int)m;
        return 0;
    default:
        /* Only reachable if a CLI_OPT_* entry has no case above. */
        cli_set_error("internal error: unhandled option %d", id);
        return -1;
    }
}

int cli_parse_command(const char *cmd, const char *usage, int argc, char **argv,
                      const cli_opt *opts, cli_common_args *c, cli_own_option_fn own, void *ctx)
{
    cli_parser p;
    cli_parser_init(&p, argc, argv);
    const char *val;
    int id;
    while ((id = cli_next(&p, opts, &val)) != CLI_END) {
        if (id == CLI_BAD)
            return cli_usage_fail(cmd);
        if (id == CLI_O_HELP) {
            /* At once: the words after --help may be anything. */
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        }
        int bad = id >= CLI_O_SHARED ? shared_option(c, id, val) : own(ctx, id, val);
        if (bad)
            return cli_usage_fail(cmd);
    }
    return CLI_GO_ON;
}

int cli_take_positional(const char *word, const char **const slots[], size_t n,
                        const char *hint)
{
    for (size_t i = 0; i < n; i++) {
        if (*slots[i] == NULL) {
            *slots[i] = word;
            return 0;
        }
    }
    cli_set_error("unexpected argument '%s'%s", word, hint);
    return -1;
}
