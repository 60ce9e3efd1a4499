/*
 * commands.h -- the subcommands of hnswc and the helpers they share.
 *
 * Each cmd_* takes the words from the subcommand name on (argv[0] is
 * "build", "search"...) and returns the process exit status: 0, 1 for a
 * runtime error, 2 for bad usage, having printed one line for an error.
 */
#ifndef HNSWC_CLI_COMMANDS_H
#define HNSWC_CLI_COMMANDS_H

#include "args.h"
#include "hnswc.h"
#include "readers.h"

int cmd_build(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_remove(int argc, char **argv);  /* cmd_remove.c */
int cmd_compact(int argc, char **argv); /* cmd_remove.c */

/*
 * Loads an index file: hnswc's own format, or with hnswlib_metric >= 0 a
 * file from hnswlib's saveIndex with that metric. The file's kind comes
 * from hnswc_probe_file: an hnswlib file without hnswlib_metric fails with
 * a message asking for --hnswlib (its metric is not in the file), and an
 * hnswc file is loaded as such even with hnswlib_metric, unless its metric
 * differs. open_flags (HNSWC_OPEN_MMAP: search --mmap) go to hnswc_open for
 * hnswc's files; an hnswlib file cannot be mapped, and is refused with
 * them. Records an error naming the file on failure.
 */
int cli_load_index(const char *path, int hnswlib_metric, unsigned open_flags, hnswc_index **out);

/*
 * Settles how the vectors to index are read: detects *format from `path`
 * unless it already names one, and for an HDF5 file takes c->metric from
 * its "distance" attribute unless --metric was given. Records an error
 * naming the file on failure.
 */
int cli_resolve_base(const char *path, input_format *format, cli_common_args *c);

/*
 * The index options of the shared flags (metric, M, ef_construction, seed;
 * 0 leaves the library's default) for the vectors of d (dim, capacity).
 * Every other field is 0.
 */
void cli_index_options(const cli_common_args *c, const dataset *d, hnswc_options *o);

/*
 * Creates an index with `options` (dim set by the caller) and adds all of
 * d's rows under labels 0 .. n-1, in chunks on `threads` threads (0 = all
 * cores), showing progress on stderr when show_progress is set. On success
 * *out owns the new index and *seconds is the wall time of the adds.
 */
int cli_build_index(const dataset *d, const hnswc_options *options, unsigned threads,
                    int show_progress, hnswc_index **out, double *seconds);

/* Saves ix to path; records an error naming the file on failure. */
int cli_save_index(const hnswc_index *ix, const char *path);

/* "uint8 idx" / "float32 npy": how a dataset was stored, for summaries. */
const char *cli_dataset_kind(const dataset *d, char *buf, size_t len);

#endif /* HNSWC_CLI_COMMANDS_H */
