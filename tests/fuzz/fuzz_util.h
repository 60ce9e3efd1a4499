/*
 * fuzz_util.h -- what the libFuzzer harnesses in tests/fuzz/ share.
 *
 * The harnesses feed hostile bytes to every input path of hnswc: the two
 * index loaders (hnswc's format from a buffer and from a file, hnswlib's
 * format) and the command-line tool's readers. A crash, a sanitizer report,
 * a hang, an allocation above libFuzzer's -malloc_limit_mb, or a broken
 * promise checked here (fz_check) is a finding.
 *
 * Loaders that take a path read the input from a regular file in the work
 * directory (on /dev/shm when it exists: no disk traffic per input). Each
 * harness counts the inputs it accepted (fz_count); run.sh fails a harness
 * that accepted none, since it then tests nothing past the first checks.
 *
 * Everything here aborts on a violated promise (libFuzzer then saves the
 * input); nothing here is thread safe (libFuzzer runs one input at a time).
 */
#ifndef HNSWC_FUZZ_UTIL_H
#define HNSWC_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "hnswc.h"

/* Aborts with a message naming the broken promise when cond is false. */
#define fz_check(cond, ...)                                                             \
    do {                                                                                \
        if (!(cond))                                                                    \
            fz_die(__FILE__, __LINE__, #cond, __VA_ARGS__);                             \
    } while (0)

void fz_die(const char *file, int line, const char *cond, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((noreturn, format(printf, 4, 5)))
#endif
    ;

/*
 * Replaces the contents of the harness's input file with data and returns
 * its path (fz_workdir()/input), valid for the life of the process.
 */
const char *fz_input_file(const uint8_t *data, size_t size);

/*
 * Counts one input, accepted (loaded or read successfully) or not; at exit
 * the totals are printed to stderr as "fz_inputs: N" and "fz_accepted: M"
 * (tests/fuzz/run.sh reads them).
 */
void fz_count(int accepted);

/*
 * A private directory for saves (under /dev/shm when it exists, so that the
 * fsync of every save costs nothing), made on first use and removed at exit.
 */
const char *fz_workdir(void);

/*
 * Uses an index the way a program would after a successful load, and checks
 * what the library promises about it:
 *   - its counts agree; graph stats and info succeed;
 *   - searches succeed with the default ef and with the largest ef the API
 *     accepts (2^31), whose cost must be bounded by the index, not by ef;
 *     no result is a deleted element; with ef >= count the search is exact
 *     (same distances as hnswc_search_exact) when the distances are finite;
 *   - an add of a new label, an update of an existing one and a
 *     mark_deleted succeed (an index at its element limit refuses the new
 *     label with HNSWC_ERR_FULL, changing nothing, and takes it once the
 *     limit is raised), and the added vector is found (exact search);
 *     the new label is then removed (hnswc_remove, either kind): gone,
 *     the count back, never returned, and a second removal finds nothing;
 *     graph statistics work for HNSW and are refused for flat;
 *   - saved and loaded again, it serializes to the same bytes.
 * Takes ownership of ix (frees it).
 */
void fz_exercise(hnswc_index *ix);

#endif /* HNSWC_FUZZ_UTIL_H */
