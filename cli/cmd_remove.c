/*
 * cmd_remove.c -- "hnswc remove" and "hnswc compact": take elements out of
 * an index file for good (hnswc_remove_batch, hnswc_compact) and write it
 * back.
 *
 * Both load the index, make one library call, and save it (atomically:
 * hnswc_save writes a temporary file and renames it, so a failure leaves
 * the old file as it was). A saved index holds only its elements, so the
 * file shrinks by what was removed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "errors.h"
#include "labelfile.h"
#include "output.h"

/* ------------------------------------------------------------------------
 * Shared by both commands
 * ------------------------------------------------------------------------ */

enum { O_LABELS, O_OUTPUT };

typedef struct edit_args {
    const char *index_path, *labels_path, *output_path;
} edit_args;

static int edit_option(void *ctx, int id, const char *val)
{
    edit_args *a = ctx;
    switch (id) {
    case CLI_POSITIONAL: {
        const char **const slots[] = {&a->index_path};
        return cli_take_positional(val, slots, 1, "");
    }
    case O_LABELS: a->labels_path = val; return 0;
    case O_OUTPUT: a->output_path = val; return 0;
    }
    return 0;
}

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/*
 * Checks the positional INDEX and where the result goes: --output, else
 * INDEX itself -- unless INDEX is an hnswlib file, which is not overwritten
 * with hnswc's format behind the user's back. Returns the output path, or
 * NULL after recording a usage error.
 */
static const char *output_of(const edit_args *a, const cli_common_args *c)
{
    if (a->index_path == NULL) {
        cli_set_error("missing the INDEX file");
        return NULL;
    }
    if (a->output_path != NULL)
        return a->output_path;
    if (c->hnswlib_metric >= 0) {
        cli_set_error("INDEX is an hnswlib file: give --output for the result (hnswc's format)");
        return NULL;
    }
    return a->index_path;
}

/* Prints what changed, unless quiet. */
static void report(int quiet, const char *what, size_t n, const char *output,
                   long long before, long long after, const hnswc_index *ix)
{
    if (quiet)
        return;
    hnswc_info info;
    if (hnswc_get_info(ix, &info) != HNSWC_OK)
        return;
    char b1[32], b2[32];
    printf("%s %zu element%s; %llu left (%llu live, %llu deleted); %s: %s -> %s\n", what, n,
           n == 1 ? "" : "s", (unsigned long long)info.count, (unsigned long long)info.live_count,
           (unsigned long long)info.deleted_count, output,
           before >= 0 ? cli_human_bytes((uint64_t)before, b1, sizeof b1) : "?",
           after >= 0 ? cli_human_bytes((uint64_t)after, b2, sizeof b2) : "?");
}

/* ------------------------------------------------------------------------
 * hnswc remove
 * ------------------------------------------------------------------------ */

static const char remove_usage[] =
    "usage: hnswc remove [options] INDEX --labels FILE\n"
    "\n"
    "Removes the elements whose labels FILE lists (one per line; blank lines and\n"
    "lines starting with '#' are skipped; '-' reads standard input) from INDEX\n"
    "for good and saves the index: the graph is repaired around them, and the\n"
    "file shrinks by what was removed. All or nothing: a label that is not in\n"
    "the index, or one listed twice, fails the command and changes nothing.\n"
    "Marked-deleted elements can be removed too ('hnswc compact' removes all).\n"
    "\n"
    "options:\n"
    "  --labels FILE          the labels to remove (required)\n"
    "  -o, --output FILE      write the result there (default: INDEX itself)\n"
    "  --threads N            threads for the repair, 0 = all cores (default 0)\n"
    "  --hnswlib METRIC       INDEX is an hnswlib file (saveIndex) of metric l2, ip\n"
    "                         or cosine; the result is in hnswc's format, so\n"
    "                         --output is required\n"
    "  -q, --quiet            print nothing on success\n"
    "  -h, --help             this help\n"
    "\n"
    "On success one line tells how many elements were removed and left, and the\n"
    "file's size before and after.\n";

static const cli_opt remove_options[] = {
    CLI_OPT_HELP,
    {"labels", 0, 1, O_LABELS},
    {"output", 'o', 1, O_OUTPUT},
    CLI_OPT_THREADS,
    CLI_OPT_HNSWLIB,
    CLI_OPT_QUIET,
    CLI_OPT_END,
};

int cmd_remove(int argc, char **argv)
{
    const char *cmd = "remove";
    edit_args a = {NULL, NULL, NULL};
    cli_common_args c;
    cli_common_init(&c, "train");
    int done = cli_parse_command(cmd, remove_usage, argc, argv, remove_options, &c, edit_option,
                                 &a);
    if (done != CLI_GO_ON)
        return done;
    const char *output = output_of(&a, &c);
    if (output == NULL)
        return cli_usage_fail(cmd);
    if (a.labels_path == NULL) {
        cli_set_error("missing --labels FILE (the labels to remove)");
        return cli_usage_fail(cmd);
    }

    int rc = CLI_EXIT_RUNTIME;
    hnswc_index *ix = NULL;
    uint64_t *labels = NULL;
    size_t n = 0;
    long long before = file_size(a.index_path);
    if (cli_read_label_file(a.labels_path, &labels, &n) != 0)
        goto out;
    if (cli_load_index(a.index_path, c.hnswlib_metric, 0, &ix) != 0)
        goto out;
    hnswc_status st = hnswc_remove_batch(ix, labels, n, (unsigned)c.threads);
    if (st != HNSWC_OK) {
        cli_set_lib_error("nothing removed", st);
        goto out;
    }
    if (cli_save_index(ix, output) != 0)
        goto out;
    report(c.quiet, "removed", n, output, before, file_size(output), ix);
    rc = CLI_EXIT_OK;
out:
    if (rc != CLI_EXIT_OK)
        cli_fail(cmd);
    free(labels);
    hnswc_free(ix);
    return rc;
}

/* ------------------------------------------------------------------------
 * hnswc compact
 * ------------------------------------------------------------------------ */

static const char compact_usage[] =
    "usage: hnswc compact [options] INDEX\n"
    "\n"
    "Removes every element marked deleted from INDEX for good, repairing the\n"
    "graph in one pass, and saves the index, which shrinks by what was removed.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE      write the result there (default: INDEX itself)\n"
    "  --threads N            threads for the repair, 0 = all cores (default 0)\n"
    "  --hnswlib METRIC       INDEX is an hnswlib file (saveIndex) of metric l2, ip\n"
    "                         or cosine; the result is in hnswc's format, so\n"
    "                         --output is required\n"
    "  -q, --quiet            print nothing on success\n"
    "  -h, --help             this help\n";

static const cli_opt compact_options[] = {
    CLI_OPT_HELP,
    {"output", 'o', 1, O_OUTPUT},
    CLI_OPT_THREADS,
    CLI_OPT_HNSWLIB,
    CLI_OPT_QUIET,
    CLI_OPT_END,
};

int cmd_compact(int argc, char **argv)
{
    const char *cmd = "compact";
    edit_args a = {NULL, NULL, NULL};
    cli_common_args c;
    cli_common_init(&c, "train");
    int done = cli_parse_command(cmd, compact_usage, argc, argv, compact_options, &c,
                                 edit_option, &a);
    if (done != CLI_GO_ON)
        return done;
    const char *output = output_of(&a, &c);
    if (output == NULL)
        return cli_usage_fail(cmd);

    int rc = CLI_EXIT_RUNTIME;
    hnswc_index *ix = NULL;
    long long before = file_size(a.index_path);
    if (cli_load_index(a.index_path, c.hnswlib_metric, 0, &ix) != 0)
        goto out;
    size_t removed = 0;
    hnswc_status st = hnswc_compact(ix, (unsigned)c.threads, &removed);
    if (st != HNSWC_OK) {
        cli_set_lib_error("nothing removed", st);
        goto out;
    }
    if (cli_save_index(ix, output) != 0)
        goto out;
    report(c.quiet, "removed", removed, output, before, file_size(output), ix);
    rc = CLI_EXIT_OK;
out:
    if (rc != CLI_EXIT_OK)
        cli_fail(cmd);
    hnswc_free(ix);
    return rc;
}
