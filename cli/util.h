/*
 * util.h -- small shared pieces of the hnswc command-line tool: error
 * reporting, option parsing, number parsing, clocks and hashing.
 *
 * Error convention of the whole tool: a function that can fail returns 0 on
 * success and -1 on failure after recording one human-readable line with
 * cli_set_error(). The subcommand then prints it as
 *     hnswc: <subcommand>: <message>
 * and exits with CLI_EXIT_RUNTIME (1), or CLI_EXIT_USAGE (2) for bad usage.
 *
 * The recorded message lives in one static buffer: only the main thread may
 * call cli_set_error() (worker threads hand their errors to the main thread).
 */
#ifndef HNSWC_CLI_UTIL_H
#define HNSWC_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hnswc.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_RUNTIME = 1, CLI_EXIT_USAGE = 2 };

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* Records the message of the current failure (main thread only). */
void cli_set_error(const char *fmt, ...) CLI_PRINTF(1, 2);

/* The last recorded message ("" if none). */
const char *cli_error(void);

/* Records "<what>: <library message>" for a failed libhnswc call. */
void cli_set_lib_error(const char *what, hnswc_status st);

/* Prints "hnswc: <cmd>: <message>" on stderr, one line. */
void cli_report(const char *cmd, const char *fmt, ...) CLI_PRINTF(2, 3);

/* Prints the recorded message for `cmd` and returns CLI_EXIT_RUNTIME. */
int cli_fail(const char *cmd);

/* Prints the recorded message plus a hint to --help; returns CLI_EXIT_USAGE. */
int cli_usage_fail(const char *cmd);

/* ------------------------------------------------------------------------
 * Option parsing
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
    char short_buf[3];
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
 * Values
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
const char *cli_metric_name(hnswc_metric m);

/* Number of online CPUs (at least 1). */
unsigned cli_num_cpus(void);

/* Seconds on a monotonic clock. */
double cli_now(void);

/* "12.3 MiB" style rendering of a byte count into buf. */
const char *cli_human_bytes(uint64_t bytes, char *buf, size_t len);

/* ------------------------------------------------------------------------
 * Hashing and byte order
 * ------------------------------------------------------------------------ */

#define CLI_FNV_OFFSET 14695981039346656037ull

/* FNV-1a 64 over n bytes, continuing from h (start with CLI_FNV_OFFSET). */
uint64_t cli_fnv1a(uint64_t h, const void *data, size_t n);

/* 1 if this machine stores integers little-endian. */
int cli_host_is_le(void);

uint32_t cli_bswap32(uint32_t v);
uint64_t cli_bswap64(uint64_t v);

/* ------------------------------------------------------------------------
 * JSON
 * ------------------------------------------------------------------------ */

/* Writes s as a JSON string literal (quoted, escaped). NULL -> null. */
void cli_json_string(FILE *f, const char *s);

/* Writes a finite double with %.*g; NaN and infinities become null. */
void cli_json_number(FILE *f, double v, int digits);

#endif /* HNSWC_CLI_UTIL_H */
