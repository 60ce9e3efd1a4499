/*
 * main.c -- entry point of the hnswc command-line tool: dispatches to the
 * subcommands (build, search, info, bench, export, remove, compact) and prints
 * the overall usage.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "hnswc.h"
#include "errors.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"build", cmd_build, "build an index from a vector file"},
    {"search", cmd_search, "query an index (from a file or standard input)"},
    {"info", cmd_info, "parameters, counts, memory and graph health of an index"},
    {"bench", cmd_bench, "recall, QPS, latency, build time and memory on a dataset"},
    {"export", cmd_export, "the graph of one layer as Graphviz dot or JSON"},
    {"remove", cmd_remove, "remove elements from an index file for good"},
    {"compact", cmd_compact, "remove every marked-deleted element of an index file"},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fputs("usage: hnswc <command> [options] ...\n"
          "\n"
          "HNSW approximate nearest-neighbour search.\n"
          "\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fputs("\n"
          "'hnswc <command> --help' describes a command's options.\n"
          "'hnswc --version' prints the versions of the tool and the library.\n"
          "\n"
          "Exit status: 0 on success, 1 on a runtime error (a missing or malformed\n"
          "file, a dimension mismatch...), 2 on bad usage.\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_report(NULL, "missing command (try 'hnswc --help')");
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        if (strcmp(cmd, "help") == 0 && argc > 2) {
            /* "hnswc help build" is "hnswc build --help". */
            for (size_t i = 0; i < N_COMMANDS; i++) {
                if (strcmp(argv[2], commands[i].name) == 0) {
                    char *sub[] = {argv[2], "--help", NULL};
                    return commands[i].run(2, sub);
                }
            }
            cli_report(NULL, "unknown command '%s' (try 'hnswc --help')", argv[2]);
            return CLI_EXIT_USAGE;
        }
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("hnswc %s (libhnswc %s, distance kernels: %s)\n", HNSWC_VERSION, hnswc_version(),
               hnswc_simd_name());
        /* The optional libraries (cli/cli.mk), from the build's cli_config.h. */
        printf("HDF5 files: %s; gzipped files: %s\n",
               CLI_HAVE_HDF5 ? "yes" : "no (built without HDF5 support)",
               CLI_HAVE_ZLIB ? "yes" : "no (built without zlib support)");
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    cli_report(NULL, "unknown command '%s' (try 'hnswc --help')", cmd);
    return CLI_EXIT_USAGE;
}
