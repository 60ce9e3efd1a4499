/*
 * args.h -- reading the command line: the option parser, the parsing of
 * option values (numbers, lists, metrics), the flags several subcommands
 * share, and the option loop every subcommand runs.
 *
 * A subcommand lists the shared flags it accepts in its cli_opt table with
 * the CLI_OPT_* entries below, next to its own options (whose ids must stay
 * below CLI_O_SHARED). cli_parse_command() then parses every shared flag
 * the same way for every command (same ranges, same messages) into a
 * cli_common_args, and hands the command's own options and positional
 * words to a callback of the command.
 *
 * Thread safety: main thread only (errors go through cli_set_error).
 */
#ifndef HNSWC_CLI_ARGS_H
#define HNSWC_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "hnswc.h"
#include "readers.h"

/* ------------------------------------------------------------------------
 * The option parser
 *
 * Accepted spellings: --name VALUE, --name=VALUE, -x VALUE, -xVALUE, and
 * flags --name / -x. "--" ends the options; "-" alone is a positional
 * argument (standard input). An option that takes a value always takes the
 * next word, even one starting with '-', so "--k -3" reports a bad number
 * rather than an unknown option.
 * ------------------------------------------------------------------------ */

typedef struct cli_opt {
    const char *name; /* long name without the leading "--"             */
    char short_name;  /* one-letter alias, or 0                          */
    int has_value;    /* 1 if the option takes a value                   */
    int id;           /* returned by cli_next                            */
} cli_opt;

typedef struct cli_parser {
    int argc;
    char **argv;
    int i;           /* next word to look at                            */
    int no_options;  /* set after "--"                                  */
} cli_parser;

enum { CLI_END = -1, CLI_POSITIONAL = -2, CLI_BAD = -3 };

/* argv[0] is the subcommand name and is skipped. */
void cli_parser_init(cli_parser *p, int argc, char **argv);

/*
 * The next option (returns its id and sets *value for options with a value,
 * NULL for flags), a positional argument (CLI_POSITIONAL, *value = the word),
 * the end (CLI_END), or a usage error (CLI_BAD, message recorded).
 * `opts` ends with an entry whose name is NULL.
 */
int cli_next(cli_parser *p, const cli_opt *opts, const char **value);

/* ------------------------------------------------------------------------
 * Option values
 * ------------------------------------------------------------------------ */

/*
 * Parses a whole decimal number in [min, max] for option `opt` ("--k").
 * Rejects signs, blanks, trailing characters and overflow with a message.
 */
int cli_parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* A comma-separated list of numbers in [min, max]; *out is malloc'd. */
int cli_parse_u64_list(const char *opt, const char *s, uint64_t min, uint64_t max,
                       uint64_t **out, size_t *n);

/* "l2", "ip" or "cosine" (also "euclidean", "angular", "dot"). */
int cli_parse_metric(const char *s, hnswc_metric *out);

/* ------------------------------------------------------------------------
 * Shared flags
 * ------------------------------------------------------------------------ */

enum {
    CLI_O_SHARED = 1000, /* a command's own option ids stay below this */
    CLI_O_HELP = CLI_O_SHARED,
    CLI_O_QUIET,
    CLI_O_THREADS,
    CLI_O_METRIC,
    CLI_O_M,
    CLI_O_EF_CONSTRUCTION,
    CLI_O_SEED,
    CLI_O_STORAGE,
    CLI_O_DATASET,
    CLI_O_INPUT_FORMAT,
    CLI_O_HNSWLIB
};

/* Entries of a cli_opt table. */
#define CLI_OPT_HELP {"help", 'h', 0, CLI_O_HELP}
#define CLI_OPT_QUIET {"quiet", 'q', 0, CLI_O_QUIET}
#define CLI_OPT_THREADS {"threads", 0, 1, CLI_O_THREADS}
#define CLI_OPT_METRIC {"metric", 0, 1, CLI_O_METRIC}
#define CLI_OPT_M {"M", 'M', 1, CLI_O_M}
#define CLI_OPT_EF_CONSTRUCTION {"ef-construction", 0, 1, CLI_O_EF_CONSTRUCTION}
#define CLI_OPT_SEED {"seed", 0, 1, CLI_O_SEED}
#define CLI_OPT_STORAGE {"storage", 0, 1, CLI_O_STORAGE}
#define CLI_OPT_DATASET {"dataset", 0, 1, CLI_O_DATASET}
#define CLI_OPT_INPUT_FORMAT {"input-format", 0, 1, CLI_O_INPUT_FORMAT}
#define CLI_OPT_HNSWLIB {"hnswlib", 0, 1, CLI_O_HNSWLIB}
#define CLI_OPT_END {NULL, 0, 0, 0}

/* What the shared flags set; a command reads only the fields of its flags. */
typedef struct cli_common_args {
    int quiet;                /* -q, --quiet                                    */
    uint64_t threads;         /* --threads, 0 = all cores                       */
    hnswc_metric metric;      /* --metric (default l2)                          */
    int metric_given;         /* --metric was on the command line               */
    uint64_t M;               /* -M, 0 = the library's default                  */
    uint64_t ef_construction; /* --ef-construction, 0 = the library's default   */
    uint64_t seed;            /* --seed, 0 = the library's default              */
    hnswc_storage storage;    /* --storage f32|sq8|sq8-only (default f32)       */
    read_options read;        /* --input-format, --dataset                      */
    int hnswlib_metric;       /* --hnswlib: its metric, or -1 for hnswc's format */
} cli_common_args;

/* The defaults; `hdf5_name` is the dataset --dataset replaces ("train"). */
void cli_common_init(cli_common_args *c, const char *hdf5_name);

/* ------------------------------------------------------------------------
 * The option loop
 * ------------------------------------------------------------------------ */

/* cli_parse_command's answer when the command should go on. */
enum { CLI_GO_ON = -1 };

/*
 * A command's part of the loop: one of its own options (`id` from its
 * table, `value` NULL for a flag) or CLI_POSITIONAL with the word. Returns
 * 0, or -1 after recording the message of a usage error.
 */
typedef int (*cli_own_option_fn)(void *ctx, int id, const char *value);

/*
 * Parses the words of subcommand `cmd` (argv[0] is its name) against
 * `opts`: shared flags into *c (initialised by the caller), the rest to
 * own(ctx, ...). Returns CLI_GO_ON when the command should go on, else the
 * exit status it should return: CLI_EXIT_OK after printing `usage` on
 * stdout for -h/--help (parsing stops at that word), CLI_EXIT_USAGE after
 * reporting a usage error on stderr.
 */
int cli_parse_command(const char *cmd, const char *usage, int argc, char **argv,
                      const cli_opt *opts, cli_common_args *c, cli_own_option_fn own, void *ctx);

/*
 * Stores a positional word in the first of the n slots still NULL. With
 * none left, records "unexpected argument 'WORD'" followed by `hint` ("" or
 * " (why)") and returns -1.
 */
int cli_take_positional(const char *word, const char **const slots[], size_t n,
                        const char *hint);

#endif /* HNSWC_CLI_ARGS_H */
