/*
 * errors.h -- the error convention of the hnswc command-line tool.
 *
 * A function that can fail returns 0 on success and -1 on failure after
 * recording one human-readable line with cli_set_error(). The subcommand
 * then prints it as
 *     hnswc: <subcommand>: <message>
 * and exits with CLI_EXIT_RUNTIME (1), or CLI_EXIT_USAGE (2) for bad usage.
 *
 * The recorded message lives in one static buffer: only the main thread may
 * call cli_set_error() (worker threads hand their errors to the main thread).
 */
#ifndef HNSWC_CLI_ERRORS_H
#define HNSWC_CLI_ERRORS_H

#include "hnswc.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_RUNTIME = 1, CLI_EXIT_USAGE = 2 };

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

#endif /* HNSWC_CLI_ERRORS_H */
