/*
 * errors.c -- the tool's one recorded error message and how it is printed
 * (errors.h).
 */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>

/* One message, written by the main thread only (see errors.h). */
static char g_error[1024];

void cli_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_error, sizeof g_error, fmt, ap);
    va_end(ap);
    /* The tool promises one line per error: fold any newline that slipped in
     * (from a file name or a library message) into a space. */
    for (char *p = g_error; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

const char *cli_error(void)
{
    return g_error;
}

void cli_set_lib_error(const char *what, hnswc_status st)
{
    const char *msg = hnswc_errmsg(NULL);
    if (msg == NULL || msg[0] == '\0')
        msg = hnswc_status_string(st);
    cli_set_error("%s: %s", what, msg);
}

void cli_report(const char *cmd, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fflush(stdout);
    if (cmd != NULL)
        fprintf(stderr, "hnswc: %s: %s\n", cmd, line);
    else
        fprintf(stderr, "hnswc: %s\n", line);
}

int cli_fail(const char *cmd)
{
    cli_report(cmd, "%s", g_error[0] ? g_error : "failed");
    return CLI_EXIT_RUNTIME;
}

int cli_usage_fail(const char *cmd)
{
    cli_report(cmd, "%s (try 'hnswc %s --help')", g_error, cmd);
    return CLI_EXIT_USAGE;
}
