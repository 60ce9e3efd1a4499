/*
 * labelfile.h -- files of labels, one per line, as `hnswc search --filter`
 * and `hnswc remove --labels` read them: whole numbers, blank lines and
 * lines starting with '#' skipped.
 *
 * Thread safety: main thread only (errors go through cli_set_error).
 */
#ifndef HNSWC_CLI_LABELFILE_H
#define HNSWC_CLI_LABELFILE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Reads the labels of `path` ("-" for standard input) in file order into
 * *labels (malloc'd; NULL when there are none) and their number into *n.
 * Returns 0, or -1 after recording an error naming the file and line.
 */
int cli_read_label_file(const char *path, uint64_t **labels, size_t *n);

#endif /* HNSWC_CLI_LABELFILE_H */
